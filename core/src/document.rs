//! The keys file as an editable document: a change rewrites only the records it touches, and
//! every other record, and every top-level field besides `keys`, is written back as it was read.

use std::borrow::Cow;
use std::cell::RefCell;
use std::io;

use serde::de::{self, MapAccess};
use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};
use serde_json::value::RawValue;

use crate::walk::{walk, Walker};
use crate::{push_json_string, record_id, Error, KeyRecord, KeySet};

/// The top-level field of a keys file naming the first of the changes stored beside it that
/// the file does not hold (absent: 0); see the store.
pub const NEXT_CHANGE: &str = "next_change";

/// A whole keys file, read for editing. It borrows the text it was read from, and reads each
/// key only when asked for it.
#[derive(Debug)]
pub struct Document<'a> {
    /// The text read (empty for a new file).
    source: &'a str,
    records: Vec<Record<'a>>,
    /// Top-level fields other than `keys`, in file order.
    extra: Vec<(Cow<'a, str>, Cow<'a, RawValue>)>,
    changed: bool,
    /// The ids of the keys added, changed or removed, in the order of their first change.
    touched: Vec<String>,
    /// The ids looked up, in order (see [`Document::looked_up`]).
    looked_up: RefCell<Vec<String>>,
}

#[derive(Debug)]
enum Record<'a> {
    /// As read: its text.
    Kept(&'a RawValue),
    /// Added or changed.
    Written(Box<KeyRecord>),
}

impl Record<'_> {
    /// Whether this is the key with `id`. A record read is only parsed for its id when its
    /// text contains the id as a JSON string (or an escape), so finding a key costs a text
    /// search, not a parse of every record.
    fn has_id(&self, id: &str, quoted: &str) -> bool {
        match self {
            Record::Written(r) => r.id == id,
            Record::Kept(text) => {
                // A file may write the id with escapes (`\u00e9`, `\/`), which no text search
                // finds: a record with any escape is parsed.
                let text = text.get();
                (text.contains(quoted) || text.contains('\\'))
                    && record_id(text).is_some_and(|found| found == id)
            }
        }
    }
}

impl<'a> Document<'a> {
    /// A file with no keys yet.
    pub fn empty() -> Document<'static> {
        Document {
            source: "",
            records: Vec::new(),
            extra: Vec::new(),
            changed: false,
            touched: Vec::new(),
            looked_up: RefCell::default(),
        }
    }

    /// Reads a keys file's structure: the `keys` array and each key's id. The keys themselves
    /// are read when asked for; [`Document::to_json`] checks the whole file before it is written.
    pub fn parse(bytes: &'a [u8]) -> Result<Document<'a>, Error> {
        let source = crate::error::json_text(bytes)?;
        let mut parts = Parts::default();
        walk(source, &mut parts)?;
        Ok(Document {
            source,
            records: parts.keys.into_iter().map(Record::Kept).collect(),
            extra: (parts.extra.into_iter())
                .map(|(name, value)| (name, Cow::Borrowed(value)))
                .collect(),
            changed: false,
            touched: Vec::new(),
            looked_up: RefCell::default(),
        })
    }

    /// A document holding only `records`: the part of a keys file a change touches, for a
    /// writer that does not read the rest (see [`Document::looked_up`]).
    pub fn of_keys(records: Vec<KeyRecord>) -> Document<'static> {
        let mut file = Document::empty();
        file.records = (records.into_iter())
            .map(|r| Record::Written(Box::new(r)))
            .collect();
        file
    }

    /// Every id looked up so far (by [`Document::get`], [`Document::remove`] and
    /// [`Document::replace`]), each once: the keys an edit of a partial document needs.
    pub fn looked_up(&self) -> Vec<String> {
        self.looked_up.borrow().clone()
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Whether anything was added, changed or removed.
    pub fn is_changed(&self) -> bool {
        self.changed
    }

    /// Every key, in file order.
    pub fn records(&self) -> impl Iterator<Item = Result<KeyRecord, Error>> + '_ {
        self.records.iter().map(|r| self.read(r))
    }

    /// The text of each key as read, in file order; `None` for a key added or changed since.
    pub fn texts(&self) -> impl Iterator<Item = Option<&'a str>> + '_ {
        self.records.iter().map(|r| match r {
            Record::Kept(text) => Some(text.get()),
            Record::Written(_) => None,
        })
    }

    /// The key with this id; an [`Error::DuplicateId`] when the file holds it more than once.
    pub fn get(&self, id: &str) -> Option<Result<KeyRecord, Error>> {
        match self.position(id) {
            Ok(i) => i.map(|i| self.read(&self.records[i])),
            Err(e) => Some(Err(e)),
        }
    }

    /// The ids of the keys added, changed or removed since the file was read, each once.
    pub fn touched(&self) -> &[String] {
        &self.touched
    }

    fn touch(&mut self, id: &str) {
        self.changed = true;
        if !self.touched.iter().any(|t| t == id) {
            self.touched.push(id.to_string());
        }
    }

    /// A top-level field other than `keys`, as read or set.
    pub fn field(&self, name: &str) -> Option<&RawValue> {
        (self.extra.iter())
            .find(|(n, _)| n == name)
            .map(|(_, value)| &**value)
    }

    /// Sets a top-level field other than `keys` (where it was, or after the others).
    pub fn set_field(&mut self, name: &str, value: Box<RawValue>) {
        match self.extra.iter_mut().find(|(n, _)| n == name) {
            Some((_, old)) => *old = Cow::Owned(value),
            None => (self.extra).push((Cow::Owned(name.to_string()), Cow::Owned(value))),
        }
        self.changed = true;
    }

    /// Removes a top-level field other than `keys`.
    pub fn remove_field(&mut self, name: &str) {
        let before = self.extra.len();
        self.extra.retain(|(n, _)| n != name);
        self.changed |= self.extra.len() < before;
    }

    /// Adds a key at the end.
    pub fn push(&mut self, record: KeyRecord) {
        self.touch(&record.id);
        self.records.push(Record::Written(Box::new(record)));
    }

    /// Removes the key with this id and returns it; removes nothing, and is an
    /// [`Error::DuplicateId`], when the file holds it more than once.
    pub fn remove(&mut self, id: &str) -> Option<Result<KeyRecord, Error>> {
        let i = match self.position(id) {
            Ok(i) => i?,
            Err(e) => return Some(Err(e)),
        };
        let removed = self.records.remove(i);
        self.touch(id);
        Some(self.read(&removed))
    }

    /// Replaces the key with the same id; `false` when there is none, or more than one.
    pub fn replace(&mut self, record: KeyRecord) -> bool {
        let Ok(Some(i)) = self.position(&record.id) else {
            return false;
        };
        self.touch(&record.id);
        self.records[i] = Record::Written(Box::new(record));
        true
    }

    /// Where the key with `id` is. Every change by id finds its key here, so all of them
    /// refuse a file that holds the id twice (which key would they change?) as the verifier
    /// refuses to load it, rather than change the first and leave the other verifying.
    fn position(&self, id: &str) -> Result<Option<usize>, Error> {
        {
            let mut looked_up = self.looked_up.borrow_mut();
            if !looked_up.iter().any(|seen| seen == id) {
                looked_up.push(id.to_string());
            }
        }
        let mut quoted = String::with_capacity(id.len() + 2);
        push_json_string(&mut quoted, id);
        let mut found = (self.records.iter().enumerate())
            .filter(|(_, r)| r.has_id(id, &quoted))
            .map(|(i, _)| i);
        match (found.next(), found.next()) {
            (first, None) => Ok(first),
            (_, Some(_)) => Err(Error::DuplicateId { id: id.to_string() }),
        }
    }

    fn read(&self, record: &Record) -> Result<KeyRecord, Error> {
        match record {
            Record::Written(r) => Ok((**r).clone()),
            Record::Kept(text) => serde_json::from_str(text.get()).map_err(|e| {
                // Positions within the record, made positions within the file.
                let offset = text.get().as_ptr() as usize - self.source.as_ptr() as usize;
                crate::error::json_error_at(self.source, offset, &e)
            }),
        }
    }

    /// The file as text, pretty-printed with two-space indentation like the original wrote it
    /// (records kept as read keep their own layout), checked to be a file the verifier accepts:
    /// a writer can never store a file the server would reject.
    pub fn to_json(&self) -> Result<String, Error> {
        let mut out = String::with_capacity(self.source.len() + 256);
        // Where the file's changes begin is written first, for readers that look only there.
        out.push_str("{\n  ");
        if let Some(next) = self.field(NEXT_CHANGE) {
            push_json_string(&mut out, NEXT_CHANGE);
            out.push_str(": ");
            out.push_str(next.get());
            out.push_str(",\n  ");
        }
        out.push_str("\"keys\": [");
        for (i, record) in self.records.iter().enumerate() {
            out.push_str(if i == 0 { "\n    " } else { ",\n    " });
            match record {
                Record::Kept(text) => out.push_str(text.get()),
                Record::Written(r) => {
                    let mut text = Vec::new();
                    let nested = Nested(PrettyFormatter::new());
                    let mut serializer = serde_json::Serializer::with_formatter(&mut text, nested);
                    r.serialize(&mut serializer).map_err(Error::from)?;
                    out.push_str(&String::from_utf8_lossy(&text));
                }
            }
        }
        out.push_str(if self.records.is_empty() {
            "]"
        } else {
            "\n  ]"
        });
        for (name, value) in self.extra.iter().filter(|(name, _)| name != NEXT_CHANGE) {
            out.push_str(",\n  ");
            push_json_string(&mut out, name);
            out.push_str(": ");
            out.push_str(value.get());
        }
        out.push_str("\n}\n");
        KeySet::from_json(out.as_bytes())?;
        Ok(out)
    }
}

/// serde_json's two-space layout for a record inside the `keys` array: every new line it starts
/// is indented four spaces more. Raw values (fields this version does not know) are written as
/// they were read, so rewriting a record does not indent them further each time.
struct Nested(PrettyFormatter<'static>);

/// A writer that indents each new line written through it by four spaces.
struct Indented<'w, W: ?Sized>(&'w mut W);

impl<W: ?Sized + io::Write> io::Write for Indented<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for (i, line) in buf.split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                self.0.write_all(b"\n    ")?;
            }
            self.0.write_all(line)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// The pretty printer's line breaks, indented; everything else written as it is.
impl Formatter for Nested {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(&mut Indented(w))
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(&mut Indented(w))
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(&mut Indented(w), first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(&mut Indented(w))
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(&mut Indented(w))
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(&mut Indented(w))
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(&mut Indented(w), first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(&mut Indented(w))
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(&mut Indented(w))
    }
}

/// A keys file's parts as read: the `keys` array as record texts, other members kept.
#[derive(Default)]
struct Parts<'a> {
    keys: Vec<&'a RawValue>,
    extra: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'de> Walker<'de> for Parts<'de> {
    type Record = &'de RawValue;

    /// How serde words any list: what this reader has always said of a `keys` that is not one.
    const KEYS_EXPECTED: &'static str = "a sequence";

    fn record<E: de::Error>(&mut self, _: usize, record: &'de RawValue) -> Result<(), E> {
        self.keys.push(record);
        Ok(())
    }

    fn other<A: MapAccess<'de>>(
        &mut self,
        name: Cow<'de, str>,
        map: &mut A,
    ) -> Result<(), A::Error> {
        self.extra.push((name, map.next_value()?));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn record(id: &str, hash: &str) -> KeyRecord {
        KeyRecord {
            id: id.into(),
            secret_hash: Some(hash.into()),
            name: id.to_uppercase(),
            ..KeyRecord::default()
        }
    }

    #[test]
    fn a_file_written_here_reads_back_byte_for_byte() {
        let mut file = Document::empty();
        file.push(record("key_a", ABC));
        let text = file.to_json().unwrap();
        assert_eq!(
            text,
            format!(
                "{{\n  \"keys\": [\n    {{\n      \"id\": \"key_a\",\n      \"secret_hash\": \"{ABC}\",\n      \"name\": \"KEY_A\",\n      \"metadata\": {{}}\n    }}\n  ]\n}}\n"
            )
        );
        let again = Document::parse(text.as_bytes()).unwrap();
        assert_eq!(again.to_json().unwrap(), text);
        assert!(!again.is_changed());
        assert_eq!(
            Document::empty().to_json().unwrap(),
            "{\n  \"keys\": []\n}\n"
        );
    }

    #[test]
    fn untouched_records_and_fields_survive_as_they_were() {
        let text = format!(
            r#"{{"version": 3, "keys": [{{"id": "key_a", "secret": "s",  "scopes": ["read"], "metadata": {{"team": "x"}}}},
               {{"id": "key_b", "secret_hash": "{ABC}", "disabled": false}}], "note": {{"a":  1}}}}"#
        );
        let mut file = Document::parse(text.as_bytes()).unwrap();
        assert_eq!(file.len(), 2);
        let b = file.remove("key_b").unwrap().unwrap();
        assert_eq!(b.disabled, Some(false));
        let out = file.to_json().unwrap();
        assert!(
            out.contains(
                r#"{"id": "key_a", "secret": "s",  "scopes": ["read"], "metadata": {"team": "x"}}"#
            ),
            "{out}"
        );
        assert!(
            out.contains("\"version\": 3") && out.contains(r#""note": {"a":  1}"#),
            "{out}"
        );
        let a = file.get("key_a").unwrap().unwrap();
        assert_eq!(a.scope_list(), ["read"]);
    }

    #[test]
    fn replace_rewrites_one_record() {
        let text = format!(
            r#"{{"keys": [{{"id": "a", "secret": "x"}}, {{"id": "b", "secret_hash": "{ABC}"}}]}}"#
        );
        let mut file = Document::parse(text.as_bytes()).unwrap();
        let mut b = file.get("b").unwrap().unwrap();
        b.name = "renamed".into();
        assert!(file.replace(b));
        assert!(!file.replace(record("c", ABC)));
        let out = file.to_json().unwrap();
        assert!(out.contains(r#"{"id": "a", "secret": "x"}"#), "{out}");
        assert!(out.contains("\"name\": \"renamed\""), "{out}");
    }

    #[test]
    fn a_change_by_an_id_the_file_holds_twice_is_refused() {
        let text = format!(
            r#"{{"keys": [{{"id": "a", "secret": "x"}}, {{"id": "b", "secret_hash": "{ABC}"}},
                         {{"id": "a", "secret": "y"}}]}}"#
        );
        let twice = Error::DuplicateId { id: "a".into() };
        let mut file = Document::parse(text.as_bytes()).unwrap();
        assert_eq!(file.get("a").unwrap(), Err(twice.clone()));
        assert_eq!(file.remove("a").unwrap(), Err(twice));
        assert!(!file.replace(record("a", ABC)));
        assert_eq!((file.len(), file.is_changed()), (3, false));
        // A key the file holds once is still found.
        assert_eq!(file.get("b").unwrap().unwrap().id, "b");
    }

    #[test]
    fn refuses_to_write_a_file_the_verifier_would_reject() {
        let mut file = Document::empty();
        file.push(record("a", ABC));
        file.push(record("a", &"00".repeat(32)));
        assert_eq!(file.to_json(), Err(Error::DuplicateId { id: "a".into() }));
    }

    #[test]
    fn structure_errors_name_the_position() {
        let err = |text: &str| Document::parse(text.as_bytes()).unwrap_err().to_string();
        assert_eq!(
            err(r#"{"kees": []}"#),
            "invalid JSON at line 1, column 12: missing field `keys`"
        );
        assert_eq!(
            err("[]"),
            "invalid JSON at line 1, column 1: expected an object with a `keys` array"
        );
        // A bad record is found when it is read, at the position the verifier reports.
        let text = b"{\"keys\": [\n {\"id\": \"a\", \"name\": 7}]}";
        let file = Document::parse(text).unwrap();
        let err = file.get("a").unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid JSON at line 2, column 22: invalid type: integer `7`, expected a string"
        );
        assert_eq!(Err(err), KeySet::from_json(text).map(|_| ()));
    }
}

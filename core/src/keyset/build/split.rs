//! A large keys file read on two threads: the `keys` array cut at a record boundary near its
//! middle, each half folded into a builder of its own, the halves joined in file order; any
//! file this cannot read exactly as the one-thread walk would is left to that walk.

use std::thread;

use serde::de::{self, IgnoredAny};

use super::{by_hash, check_ids, shrink, Builder, NO_CREDITS};
use crate::keyset::raw::RecordFields;
use crate::keyset::Packed;
use crate::keyset::MIN_RECORD;
use crate::walk::{walk, Walker};

/// The smallest file worth a second thread.
pub(super) const MIN_SPLIT: usize = 4 << 20;

/// A record this deep (in opening brackets) might pass alone and fail inside the file: serde_json
/// bounds nesting from where a parse starts, and a record read alone starts two levels higher.
const DEEP: usize = 100;

/// Reads `text`, a keys file of at least `min` bytes, into `builder` (empty) on two threads, and
/// says whether it did (its caller sees to [`two_cores`]). It does not when the file is smaller,
/// opens otherwise than `{"keys": [` (or `{"next_change": N, "keys": [`, as folds write it), or
/// has anything wrong in it: the one-thread walk then reads it, and words the error.
pub(super) fn load(text: &str, builder: &mut Builder, min: usize) -> bool {
    match read(text, min) {
        Some(read) => {
            *builder = read;
            true
        }
        None => false,
    }
}

fn read(text: &str, min: usize) -> Option<Builder> {
    if text.len() < min {
        return None;
    }
    let start = array_start(text)?;
    let middle = boundary_after(text, start.max(text.len() / 2))?;
    let (first, second) = thread::scope(|scope| {
        let second = thread::Builder::new()
            .name("keys-split".into())
            .spawn_scoped(scope, || records(text, middle, None))
            .ok()?;
        let first = records(text, start, Some(middle));
        Some((first?, second.join().ok().flatten()))
    })?;
    let (mut builder, end) = match (first.end, second) {
        // The first half ended where the second began: the cut was between two records.
        (None, Some(second)) => {
            let mut builder = first.builder;
            join(&mut builder, second.builder)?;
            (builder, second.end?)
        }
        // The cut was not between two records (it was inside a string, say), so the first
        // thread read on to the end.
        (Some(end), _) => (first.builder, end),
        (None, None) => return None,
    };
    if !rest_is_valid(&text[..start], &text[end..]) {
        return None;
    }
    index(&mut builder.set);
    Some(builder)
}

/// The records read from one place in the array, and where the array's `]` ended (`None`: the
/// reading stopped at the place it was asked to).
struct Part {
    builder: Builder,
    end: Option<usize>,
}

/// Reads the records from `at` (a record, or the `]` of an empty array) to the end of the array,
/// or until the next record would begin at `stop`; `None` when anything is wrong.
fn records(text: &str, mut at: usize, stop: Option<usize>) -> Option<Part> {
    let bytes = text.as_bytes();
    let mut builder = Builder {
        set: Packed::default(),
        warnings: Vec::new(),
        error: None,
    };
    // Room for every key from here on, as a paced load reserves it (see `from_json_paced`):
    // the first half's builder then takes the second's keys without growing, and neither
    // copies itself as it grows.
    let rest = text.len() - at;
    builder.set.text.reserve(rest);
    builder.set.entries.reserve(rest / MIN_RECORD);
    at = skip_space(bytes, at);
    if bytes.get(at) == Some(&b']') {
        return Some(Part {
            builder,
            end: Some(at + 1),
        });
    }
    let mut index = 0;
    loop {
        if Some(at) == stop {
            return Some(Part { builder, end: None });
        }
        let mut stream = serde_json::Deserializer::from_str(&text[at..]).into_iter();
        let raw: RecordFields = stream.next()?.ok()?;
        let record = &bytes[at..at + stream.byte_offset()];
        if record.len() >= 2 * DEEP && openings(record) >= DEEP {
            return None;
        }
        // The index only names a record in an error, and an error sends the file to the
        // one-thread walk.
        builder.add(index, raw).ok()?;
        index += 1;
        at = skip_space(bytes, at + record.len());
        match bytes.get(at)? {
            b',' => at = skip_space(bytes, at + 1),
            b']' => {
                return Some(Part {
                    builder,
                    end: Some(at + 1),
                })
            }
            _ => return None,
        }
        if bytes.get(at) == Some(&b']') {
            // A trailing comma.
            return None;
        }
    }
}

/// Appends the keys of `second` to `first`, moving their ranges of text and their places in the
/// entries and credits; `None` when the joined text would be too large for a range (the
/// one-thread walk says so).
fn join(first: &mut Builder, second: Builder) -> Option<()> {
    let set = &mut first.set;
    let text = u32::try_from(set.text.len()).ok()?;
    u32::try_from(set.text.len() + second.set.text.len()).ok()?;
    let keys = u32::try_from(set.entries.len()).ok()?;
    let credits = u32::try_from(set.credits.len()).ok()?;
    set.text.push_str(&second.set.text);
    set.entries.reserve(second.set.entries.len());
    for mut entry in second.set.entries {
        for span in [
            &mut entry.id,
            &mut entry.name,
            &mut entry.metadata,
            &mut entry.scopes,
        ] {
            span.start += text;
        }
        if entry.credits != NO_CREDITS {
            entry.credits += credits;
        }
        set.entries.push(entry);
    }
    set.previous
        .extend(second.set.previous.into_iter().map(|mut previous| {
            previous.key += keys;
            previous
        }));
    set.credits.extend(second.set.credits);
    first.warnings.extend(second.warnings);
    Some(())
}

/// Indexes `set` as [`super::index`] does, its ids checked on a second thread while this one
/// indexes the secrets; leaves it unindexed when a key is there twice, for that index to find
/// and word.
fn index(set: &mut Packed) {
    shrink(set);
    let set_ = &*set;
    let indexed = thread::scope(|scope| {
        let ids = thread::Builder::new()
            .name("keys-split".into())
            .spawn_scoped(scope, || check_ids(set_, &mut || {}, |_, _| Err(())).ok())
            .ok()?;
        let by_hash = by_hash(set_, &mut || {}, |_, _| Err(())).ok()?;
        Some((ids.join().ok()??, by_hash))
    });
    if let Some((ids, by_hash)) = indexed {
        set.ids = ids;
        set.by_hash = by_hash;
    }
}

/// Whether this process may run on two cores at once (and can start a thread).
pub(super) fn two_cores() -> bool {
    thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
}

/// Where the first record of `keys` (or its `]`) may begin, when the file opens with
/// `{"keys": [`, or with `{"next_change": N, "keys": [` as a fold writes it (whitespace aside).
fn array_start(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = token(bytes, 0, b"{")?;
    if let Some(after) = token(bytes, at, b"\"next_change\"") {
        let after = skip_space(bytes, token(bytes, after, b":")?);
        let digits = bytes[after..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        // Whether the number is one JSON reads (`007` is not), the walk of what surrounds the
        // array checks.
        at = token(bytes, after + digits, b",")?;
    }
    for expected in [&b"\"keys\""[..], b":", b"["] {
        at = token(bytes, at, expected)?;
    }
    Some(at)
}

/// Where `expected` ends, when it is next in `bytes` from `at` (whitespace aside).
fn token(bytes: &[u8], at: usize, expected: &[u8]) -> Option<usize> {
    let at = skip_space(bytes, at);
    bytes[at..]
        .starts_with(expected)
        .then_some(at + expected.len())
}

/// The first place from `from` that looks like the start of a record after another: `}`, a
/// comma, then `{`, whitespace aside. It may be inside a string or a nested value; the first
/// half's reader finds out.
fn boundary_after(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = from;
    loop {
        at += bytes.get(at..)?.iter().position(|&b| b == b'}')? + 1;
        let comma = skip_space(bytes, at);
        if bytes.get(comma) == Some(&b',') {
            let next = skip_space(bytes, comma + 1);
            if bytes.get(next) == Some(&b'{') {
                return Some(next);
            }
        }
    }
}

/// Whether what precedes the `keys` array (`head`, up to its `[`) and what follows it (`rest`)
/// are what the one-thread walk would accept there: other members (but no second `keys`), the
/// object's end, then only whitespace. Checked by that walk, on the same text with an empty
/// `keys`.
fn rest_is_valid(head: &str, rest: &str) -> bool {
    let mut file = String::with_capacity(head.len() + rest.len() + 1);
    file.push_str(head);
    file.push(']');
    file.push_str(rest);
    walk(&file, &mut NoRecords).is_ok()
}

/// A walk that meets no record.
struct NoRecords;

impl<'de> Walker<'de> for NoRecords {
    type Record = IgnoredAny;

    fn record<E: de::Error>(&mut self, _: usize, _: IgnoredAny) -> Result<(), E> {
        Err(E::custom("unexpected record"))
    }
}

/// How many `{` and `[` `bytes` holds (in strings too), counted a block at a time so that the
/// count is vectorised.
fn openings(bytes: &[u8]) -> usize {
    bytes
        .chunks(128)
        .map(|block| {
            let n: u8 = block
                .iter()
                .map(|&b| u8::from(b == b'{') + u8::from(b == b'['))
                .sum();
            usize::from(n)
        })
        .sum()
}

/// The first position from `at` that is not JSON whitespace.
fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{hash_secret, Error, Key, KeySet, Warning};

    /// The file `text` as two threads read it (`None`: they left it to the one-thread walk),
    /// checked against the one-thread walk's reading of it.
    fn split(text: &str) -> Option<Result<(KeySet, Vec<Warning>), Error>> {
        let mut builder = Builder {
            set: Packed::default(),
            warnings: Vec::new(),
            error: None,
        };
        if !load(text, &mut builder, 0) {
            return None;
        }
        let split = (builder.finish(&mut || {})).map(|(packed, warnings)| {
            let set = KeySet {
                base: std::sync::Arc::new(packed),
                top: None,
            };
            (set, warnings)
        });
        match (KeySet::from_json(text.as_bytes()), &split) {
            (Ok((one, one_warnings)), Ok((two, two_warnings))) => {
                assert_eq!(
                    two.keys().collect::<Vec<_>>(),
                    one.keys().collect::<Vec<_>>()
                );
                assert_eq!(two_warnings, &one_warnings);
                assert_eq!(two.base.by_hash.len(), one.base.by_hash.len());
                assert_eq!(two.base.ids.len(), one.base.ids.len());
            }
            (Err(one), Err(two)) => assert_eq!(two, &one),
            (one, two) => panic!("one thread: {one:?}, two: {two:?}"),
        }
        Some(split)
    }

    /// A record of every kind the loader keeps, with `name` as its name.
    fn record(i: usize, name: &str) -> String {
        let name = serde_json::to_string(name).unwrap();
        match i % 5 {
            0 => format!(r#"{{"id": "key_{i}", "secret": "sec_{i}", "name": {name}}}"#),
            1 => format!(
                r#"{{
      "id": "key_\u0030{i}", "secret_hash": "{}", "name": {name},
      "metadata": {{"team": "a b", "n": [1, {{"x": "}}, {{"}}], "e": "\"\\"}},
      "scopes": ["keys:read"], "expires_at": "soon"
    }}"#,
                hash_secret(&format!("sec_{i}")).to_hex()
            ),
            2 => format!(
                r#"{{"id": "key_{i}", "secret": "sec_{i}", "name": {name},
                    "rate_limit": {{"requests": 5, "per_seconds": 1}},
                    "credits": {{"amount": {i}}}, "disabled": true, "unknown": [[{{}}]]}}"#
            ),
            3 => format!(
                r#"{{"id": "key_{i}", "secret": "sec_{i}", "name": {name},
                    "previous_secret_hash": "{}", "previous_expires_at": "2026-11-25T01:17:14Z"}}"#,
                hash_secret(&format!("old_{i}")).to_hex()
            ),
            _ => format!(
                r#"{{"name": {name}, "credits": {{"amount": 1}}, "id": "key_{i}", "secret": "sec_{i}",
                    "expires_at": "2030-01-01T00:00:00Z", "metadata": null}}"#
            ),
        }
    }

    /// A keys file of `n` records named by `name`, then `after` (other members, the end).
    fn file(n: usize, name: impl Fn(usize) -> String, after: &str) -> String {
        let records: Vec<String> = (0..n).map(|i| record(i, &name(i))).collect();
        format!(
            "{{\n  \"keys\": [\n    {}\n  ]{after}",
            records.join(",\n    ")
        )
    }

    #[test]
    fn two_threads_read_a_file_as_one_does() {
        for n in [2, 3, 10, 101] {
            let text = file(n, |i| format!("Key {i}"), "\n}\n");
            let (set, warnings) = split(&text).unwrap().unwrap();
            assert_eq!(set.len(), n);
            assert_eq!(warnings.len(), (0..n).filter(|i| i % 5 == 1).count());
            for i in 0..n {
                let id = set.find(&format!("sec_{i}"), 0).map(Key::id);
                let zero = if i % 5 == 1 { "0" } else { "" };
                assert_eq!(id, Some(format!("key_{zero}{i}").as_str()));
            }
            let previous = set.find("old_3", 0).map(Key::id);
            assert_eq!(previous, (n > 3).then_some("key_3"));
        }
    }

    #[test]
    fn a_cut_inside_a_string_or_a_value_leaves_the_first_thread_to_read_on() {
        // Names that look like the end of one record and the start of the next, wherever the
        // middle falls.
        for name in [r#"}, {"#, "},\n{", r#"a\"}, {\"id\": \"x"#] {
            let text = file(40, |_| name.into(), "}");
            let (set, _) = split(&text).unwrap().unwrap();
            assert_eq!(set.len(), 40);
            assert!(set.keys().all(|k| k.name() == name));
        }
    }

    #[test]
    fn what_follows_the_array_is_read_as_the_one_thread_walk_reads_it() {
        let members = ",\n  \"version\": 2, \"other\": {\"keys\": [1]}\n}\n \t";
        assert_eq!(
            split(&file(20, |i| i.to_string(), members))
                .unwrap()
                .unwrap()
                .0
                .len(),
            20
        );
        assert_eq!(
            split(&file(20, |i| i.to_string(), "} "))
                .unwrap()
                .unwrap()
                .0
                .len(),
            20
        );
        for wrong in [",\n \"keys\": []}", "", "}}", "} x", ",}", " ,"] {
            let text = file(20, |i| i.to_string(), wrong);
            assert!(split(&text).is_none(), "{wrong:?}");
            assert!(KeySet::from_json(text.as_bytes()).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn a_file_a_fold_wrote_is_read_on_two_threads_as_one_reads_it() {
        let records = file(40, |i| format!("Key {i}"), "\n}\n");
        let body = records.trim_start_matches("{\n  \"keys\": ");
        let folded = format!("{{\n  \"next_change\": 128,\n  \"keys\": {body}");
        assert_eq!(split(&folded).unwrap().unwrap().0.len(), 40);
        let compact = format!("{{\"next_change\":0,\"keys\":{body}");
        assert_eq!(split(&compact).unwrap().unwrap().0.len(), 40);
        // What the one-thread walk refuses, or reads otherwise, is left to it.
        for head in [
            "{\"next_change\": 007, \"keys\": ",
            "{\"next_change\": , \"keys\": ",
            "{\"next_change\": -1, \"keys\": ",
            "{\"next_change\": 1.5, \"keys\": ",
            "{\"next_change\": 1 \"keys\": ",
        ] {
            assert!(split(&format!("{head}{body}")).is_none(), "{head}");
        }
        let again = format!(
            "{{\"next_change\": 1, \"keys\": {}",
            body.replacen("\n}", ", \"next_change\": 2\n}", 1)
        );
        // A second `next_change` after the array: the helper checks that both read it alike.
        split(&again);
    }

    #[test]
    fn any_other_shape_is_left_to_the_one_thread_walk() {
        let records = file(20, |i| i.to_string(), "}");
        let body = records.trim_start_matches("{\n  \"keys\": ");
        for text in [
            format!("{{\"version\": 2, \"keys\": {body}"),
            format!("{{\"k\\u0065ys\": {body}"),
            records.replacen("},\n    {", "},\n    5,\n    {", 1),
            records.replacen("},\n    {", "},\n    ,{", 1),
            records.replacen("\n  ]", ",\n  ]", 1),
            records.replacen("\"key_10\"", "\"\"", 1),
            records.replacen("\"sec_18\"", "7", 1),
        ] {
            assert!(split(&text).is_none(), "{text}");
        }
    }

    #[test]
    fn a_key_twice_across_the_halves_is_found_by_the_index() {
        for (from, to, error) in [
            (
                "\"key_18\"",
                "\"key_2\"",
                Error::DuplicateId { id: "key_2".into() },
            ),
            (
                "\"sec_17\"",
                "\"sec_2\"",
                Error::DuplicateSecret {
                    first: "key_2".into(),
                    second: "key_17".into(),
                },
            ),
        ] {
            let text = file(20, |i| i.to_string(), "}").replacen(from, to, 1);
            assert_eq!(split(&text).unwrap().err(), Some(error));
        }
    }

    #[test]
    fn an_empty_array_or_a_single_key_is_read_on_one_thread() {
        assert!(split("{\"keys\": []}").is_none());
        assert!(split(&file(1, |_| "a".into(), "}")).is_none());
    }

    #[test]
    fn a_deeply_nested_record_is_left_to_the_one_thread_walk() {
        // serde_json bounds nesting at 128 levels from where it starts: a record read alone
        // could pass where the walk of the file, two levels down, fails. (The record holds
        // three objects besides.)
        for depth in [DEEP - 10, 124, 125, 126, 127] {
            let deep = "[".repeat(depth) + &"]".repeat(depth);
            let text = file(20, |i| i.to_string(), "}").replacen(
                "\"unknown\": [[{}]]",
                &format!("\"unknown\": {deep}"),
                1,
            );
            let two = split(&text);
            assert_eq!(two.is_none(), depth >= DEEP, "{depth}");
        }
    }
}

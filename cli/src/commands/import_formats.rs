//! The files `import` reads (a keys file, a JSON array of keys, JSON Lines, CSV), each staged
//! as the keys file of the keys it adds, every `secret_hash` in lowercase hex, with where in
//! the file each key came from.

use std::collections::HashMap;
use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;

use heare_auth_core::{Error, KeySet};

use super::hash_encoding::normalise_hash;
use crate::check::error_message;

/// How an imported file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    /// A keys file (`{"keys": [...]}`) or a JSON array of keys.
    Json,
    /// JSON Lines: one key per line, blank lines skipped.
    JsonLines,
    /// CSV (RFC 4180) with a header row naming the fields.
    Csv,
}

impl ImportFormat {
    /// The words `--format` takes, for a message.
    pub const WORDS: &'static str = "json, jsonl or csv";

    /// The format `--format` names.
    pub fn named(word: &str) -> Option<ImportFormat> {
        match word {
            "json" => Some(ImportFormat::Json),
            "jsonl" | "ndjson" => Some(ImportFormat::JsonLines),
            "csv" => Some(ImportFormat::Csv),
            _ => None,
        }
    }

    /// The format a file's extension tells (`.jsonl`, `.ndjson`, `.csv`, in either case);
    /// anything else is read as JSON, a keys file.
    pub fn of_file(path: &str) -> ImportFormat {
        let extension = std::path::Path::new(path)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("jsonl" | "ndjson") => ImportFormat::JsonLines,
            Some("csv") => ImportFormat::Csv,
            _ => ImportFormat::Json,
        }
    }

    /// Stages the keys of `source`, the file's text; the errors that stop it from being read
    /// at all (invalid JSON, an unknown CSV column...), one line each.
    pub fn stage(self, source: &str) -> Result<Staged<'_>, Vec<String>> {
        let source = source.strip_prefix('\u{feff}').unwrap_or(source);
        match self {
            ImportFormat::Json => stage_json(source),
            ImportFormat::JsonLines => stage_json_lines(source),
            ImportFormat::Csv => stage_csv(source),
        }
    }
}

/// The CSV columns, in the order a staged key has its fields.
const COLUMNS: [&str; 7] = [
    "id",
    "secret_hash",
    "name",
    "created_at",
    "expires_at",
    "scopes",
    "metadata",
];

/// The keys of an imported file as a keys file, and where each came from.
#[derive(Debug)]
pub struct Staged<'s> {
    /// `{"keys": [...]}`: each key as the file gave it, but for its `secret_hash`, in lowercase
    /// hex.
    pub text: String,
    /// Where each key is in the file (`line 3`, `keys[2]`), by its position in `text`.
    pub places: Vec<String>,
    /// Each key's id, where it has one.
    pub ids: Vec<Option<String>>,
    /// What is wrong with a key before the server's rules are applied (a `secret_hash` that is
    /// not a SHA-256, a CSV cell that is not JSON): its position, and the message, naming its
    /// place.
    pub problems: Vec<(usize, String)>,
    /// The file's text.
    source: &'s str,
    /// The spans of `text` copied from the file: where in `text`, where in the file, how long.
    copies: Vec<(usize, usize, usize)>,
}

impl Staged<'_> {
    /// Where the `index`th key is, and its id if it has one: `line 3: key key_a`, `line 3`.
    pub fn about(&self, index: usize) -> String {
        about(&self.places[index], self.ids[index].as_deref())
    }

    /// The position in the file of the 1-based `line` and `column` (in bytes) of `text`, when it
    /// is in a part copied from the file.
    pub fn file_position(&self, line: usize, column: usize) -> Option<(usize, usize)> {
        let line_start = match line {
            1 => 0,
            n => self.text.match_indices('\n').nth(n - 2)?.0 + 1,
        };
        let at = line_start + column.checked_sub(1)?;
        let &(into, from, _) = self
            .copies
            .iter()
            .find(|&&(into, _, len)| (into..into + len).contains(&at))?;
        Some(position(&self.source.as_bytes()[..from + (at - into)]))
    }
}

/// `line 3: key key_a`, or `line 3` for a key without an id.
pub fn about(place: &str, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("{place}: key {}", heare_auth_core::visible(id)),
        None => place.to_string(),
    }
}

/// 1-based line and column (in bytes) of the byte just after `before`.
pub fn position(before: &[u8]) -> (usize, usize) {
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (line, before.len() - line_start + 1)
}

/// Builds a staged file from pieces of the source and new text.
struct Builder<'s> {
    staged: Staged<'s>,
}

impl<'s> Builder<'s> {
    fn new(source: &'s str) -> Builder<'s> {
        Builder {
            staged: Staged {
                text: String::new(),
                places: Vec::new(),
                ids: Vec::new(),
                problems: Vec::new(),
                source,
                copies: Vec::new(),
            },
        }
    }

    fn insert(&mut self, text: &str) {
        self.staged.text.push_str(text);
    }

    /// Copies `range` of the source, each of `replacements` (ranges within it, in order) put
    /// in place of what it covers.
    fn copy(&mut self, range: Range<usize>, replacements: &[(Range<usize>, String)]) {
        let mut at = range.start;
        for (covered, text) in replacements {
            self.copy_plain(at..covered.start);
            self.insert(text);
            at = covered.end;
        }
        self.copy_plain(at..range.end);
    }

    fn copy_plain(&mut self, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        let staged = &mut self.staged;
        staged
            .copies
            .push((staged.text.len(), range.start, range.len()));
        staged.text.push_str(&staged.source[range]);
    }

    /// Adds a key found at `place`, with its id; `problem` is what is wrong with it, if
    /// anything.
    fn key(&mut self, place: String, id: Option<String>, problem: Option<String>) {
        let staged = &mut self.staged;
        if let Some(problem) = problem {
            let about = about(&place, id.as_deref());
            staged
                .problems
                .push((staged.places.len(), format!("{about}: {problem}")));
        }
        staged.places.push(place);
        staged.ids.push(id);
    }
}

/// What the staging makes of one JSON key: its id, and its `secret_hash` rewritten (the span
/// of its JSON string in the source, and the lowercase hex as a JSON string) or its problem.
struct Scanned {
    id: Option<String>,
    replacement: Option<(Range<usize>, String)>,
    problem: Option<String>,
}

/// Reads a key's id and `secret_hash`; one that is not an object, or not a string, is left as it
/// is for the server's rules to name.
fn scan(source: &str, record: &RawValue) -> Scanned {
    let mut scanned = Scanned {
        id: None,
        replacement: None,
        problem: None,
    };
    let Ok(fields) = serde_json::from_str::<HashMap<String, &RawValue>>(record.get()) else {
        return scanned;
    };
    scanned.id = fields
        .get("id")
        .and_then(|v| serde_json::from_str::<String>(v.get()).ok());
    let Some(hash) = fields.get("secret_hash") else {
        return scanned;
    };
    let Ok(text) = serde_json::from_str::<String>(hash.get()) else {
        return scanned;
    };
    match normalise_hash(&text) {
        Ok(hex) if hex == text => {}
        Ok(hex) => {
            let start = hash.get().as_ptr() as usize - source.as_ptr() as usize;
            scanned.replacement = Some((start..start + hash.get().len(), format!("\"{hex}\"")));
        }
        Err(problem) => scanned.problem = Some(format!("field `secret_hash` {problem}")),
    }
    scanned
}

/// The `keys` array of a keys file, each key as its text.
#[derive(Deserialize)]
struct KeysFile<'a> {
    #[serde(borrow)]
    keys: Vec<&'a RawValue>,
}

/// A keys file, or a JSON array of keys (`[...]`), staged in place: the file itself, so that a
/// position in the staged text is one in the file.
fn stage_json(source: &str) -> Result<Staged<'_>, Vec<String>> {
    let bare = source.trim_start().starts_with('[');
    let records = match bare {
        true => serde_json::from_str::<Vec<&RawValue>>(source)
            .map_err(|e| vec![Error::from(e).to_string()])?,
        false => match serde_json::from_str::<KeysFile>(source) {
            Ok(file) => file.keys,
            // Not a keys file: the server's reasons.
            Err(e) => {
                let errors: Vec<String> = KeySet::check(source.as_bytes())
                    .errors
                    .iter()
                    .map(error_message)
                    .collect();
                return Err(match errors.is_empty() {
                    true => vec![Error::from(e).to_string()],
                    false => errors,
                });
            }
        },
    };
    let mut builder = Builder::new(source);
    let mut replacements = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let scanned = scan(source, record);
        replacements.extend(scanned.replacement);
        let place = match bare {
            true => format!("[{i}]"),
            false => format!("keys[{i}]"),
        };
        builder.key(place, scanned.id, scanned.problem);
    }
    if bare {
        builder.insert("{\"keys\": ");
    }
    builder.copy(0..source.len(), &replacements);
    if bare {
        builder.insert("}");
    }
    Ok(builder.staged)
}

/// JSON Lines: each line that is not blank one key, staged as one record of the keys file.
fn stage_json_lines(source: &str) -> Result<Staged<'_>, Vec<String>> {
    let mut builder = Builder::new(source);
    let mut broken = Vec::new();
    builder.insert("{\"keys\": [\n");
    let mut start = 0;
    for (n, line) in source.split_inclusive('\n').enumerate() {
        let line_start = start;
        start += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        if content.trim_ascii().is_empty() {
            continue;
        }
        let record = match serde_json::from_str::<&RawValue>(content) {
            Ok(record) => record,
            Err(e) => {
                broken.push(match Error::from(e) {
                    Error::Json {
                        column, message, ..
                    } => Error::Json {
                        line: n + 1,
                        column,
                        message,
                    },
                    other => other,
                });
                continue;
            }
        };
        if !builder.staged.places.is_empty() {
            builder.insert(",\n");
        }
        let scanned = scan(source, record);
        builder.copy(
            line_start..line_start + content.len(),
            scanned.replacement.as_slice(),
        );
        builder.key(format!("line {}", n + 1), scanned.id, scanned.problem);
    }
    builder.insert("\n]}");
    match broken.is_empty() {
        true => Ok(builder.staged),
        false => Err(broken.iter().map(Error::to_string).collect()),
    }
}

/// CSV: a header row of field names, then one key per row, each staged as a record written
/// anew (its positions are not the file's).
fn stage_csv(source: &str) -> Result<Staged<'_>, Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::Headers)
        .from_reader(source.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| vec![csv_error(source, &e)])?
        .clone();
    let columns = columns(&headers)?;
    let mut builder = Builder::new(source);
    let mut broken = Vec::new();
    builder.insert("{\"keys\": [\n");
    for row in reader.records() {
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                broken.push(csv_error(source, &e));
                continue;
            }
        };
        let line = line_of(source, row.position());
        let cells: Vec<(usize, &str)> = columns
            .iter()
            .copied()
            .zip(row.iter())
            .filter(|(_, cell)| !cell.trim_ascii().is_empty())
            .collect();
        let id = cells
            .iter()
            .find(|(c, _)| COLUMNS[*c] == "id")
            .map(|(_, cell)| cell.to_string());
        let mut fields = Vec::with_capacity(cells.len());
        let mut problem = None;
        // In the order of COLUMNS, whatever the header's.
        for (c, name) in COLUMNS.iter().enumerate() {
            let Some(&(_, cell)) = cells.iter().find(|(column, _)| *column == c) else {
                continue;
            };
            match cell_json(name, cell) {
                Ok(json) => fields.push(format!("\"{name}\": {json}")),
                Err(reason) => {
                    problem.get_or_insert(format!("field `{name}` {reason}"));
                }
            }
        }
        if !builder.staged.places.is_empty() {
            builder.insert(",\n");
        }
        builder.insert(&format!("{{{}}}", fields.join(", ")));
        builder.key(format!("line {line}"), id, problem);
    }
    builder.insert("\n]}");
    match broken.is_empty() {
        true => Ok(builder.staged),
        false => Err(broken),
    }
}

/// The position in [`COLUMNS`] of each column of the header row; refuses an unknown or
/// repeated column, and a header without `id` or `secret_hash`.
fn columns(headers: &csv::StringRecord) -> Result<Vec<usize>, Vec<String>> {
    let expected = format!("expected {}", COLUMNS.join(", "));
    if headers.iter().all(str::is_empty) {
        return Err(vec![format!("line 1: no header row: {expected}")]);
    }
    let mut errors = Vec::new();
    let mut columns = Vec::with_capacity(headers.len());
    for name in headers {
        match COLUMNS.iter().position(|c| *c == name) {
            None => errors.push(format!(
                "line 1: unknown column `{}`: {expected}",
                name.escape_debug()
            )),
            Some(c) if columns.contains(&c) => {
                errors.push(format!("line 1: column `{name}` is given twice"))
            }
            Some(c) => columns.push(c),
        }
    }
    for (required, why) in [
        ("id", "every key keeps its id"),
        ("secret_hash", "the SHA-256 of each key's secret"),
    ] {
        if !headers.iter().any(|name| name == required) {
            errors.push(format!("line 1: no `{required}` column: {why}"));
        }
    }
    match errors.is_empty() {
        true => Ok(columns),
        false => Err(errors),
    }
}

/// A CSV cell as the JSON value of its field: text as a string, `metadata` as the JSON it
/// holds, `scopes` as a JSON array of strings or a comma-separated list, `secret_hash` as
/// lowercase hex. The error says what is wrong, after the field's name.
fn cell_json(column: &str, cell: &str) -> Result<String, String> {
    let string = |text: &str| serde_json::to_string(text).map_err(|e| e.to_string());
    match column {
        "secret_hash" => match normalise_hash(cell) {
            Ok(hex) => string(&hex),
            Err(problem) => Err(problem.to_string()),
        },
        "metadata" => match serde_json::from_str::<&RawValue>(cell) {
            Ok(json) => Ok(json.get().to_string()),
            Err(e) => Err(format!("is not JSON: {}", json_reason(e))),
        },
        "scopes" if cell.trim_ascii_start().starts_with('[') => {
            match serde_json::from_str::<Vec<String>>(cell) {
                Ok(scopes) => serde_json::to_string(&scopes).map_err(|e| e.to_string()),
                Err(e) => Err(format!(
                    "is not a JSON array of strings: {}",
                    json_reason(e)
                )),
            }
        }
        "scopes" => {
            let scopes: Vec<&str> = cell.split(',').map(str::trim_ascii).collect();
            serde_json::to_string(&scopes).map_err(|e| e.to_string())
        }
        _ => string(cell),
    }
}

/// A JSON error's reason and its column within the cell.
fn json_reason(e: serde_json::Error) -> String {
    match Error::from(e) {
        Error::Json {
            column, message, ..
        } => format!("{message} at character {column}"),
        other => other.to_string(),
    }
}

/// What the CSV reader found wrong, and the line.
fn csv_error(source: &str, e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => format!(
            "line {}: {len} fields, but the header row has {expected_len}",
            line_of(source, pos.as_ref())
        ),
        _ => match e.position() {
            Some(pos) => format!("line {}: {e}", line_of(source, Some(pos))),
            None => e.to_string(),
        },
    }
}

/// The line on which the CSV record at `position` begins. (The reader's own line count lags a
/// line behind in a file whose lines end in CRLF: it counts the LF of the record before as it
/// reads the next record, and the record's byte offset can be that LF.)
fn line_of(source: &str, position: Option<&csv::Position>) -> usize {
    let Some(byte) = position.and_then(|p| usize::try_from(p.byte()).ok()) else {
        return 0;
    };
    let bytes = source.as_bytes();
    let start = byte.min(bytes.len());
    let first = bytes[start..]
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .map_or(bytes.len(), |n| start + n);
    position_line(&bytes[..first])
}

/// The 1-based line of the byte just after `before`.
fn position_line(before: &[u8]) -> usize {
    position(before).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use heare_auth_core::{hash_secret, Document};

    fn hex(secret: &str) -> String {
        hash_secret(secret).to_hex()
    }

    /// The staged keys, as a keys file reads them: (id, name, scopes, metadata).
    fn keys(staged: &Staged) -> Vec<(String, String, Vec<String>, String)> {
        Document::parse(staged.text.as_bytes())
            .unwrap()
            .records()
            .map(|r| {
                let r = r.unwrap();
                let scopes = r.scope_list().to_vec();
                (r.id, r.name, scopes, r.metadata.get().to_string())
            })
            .collect()
    }

    #[test]
    fn csv_cells_are_quoted_as_rfc_4180_says_and_keys_named_by_the_line_they_start_on() {
        let text = format!(
            "\u{feff}id,name,scopes,metadata,secret_hash\r\n\
             key_a,\"Two\r\nlines, \"\"quoted\"\"\",\"[\"\"a:read\"\",\"\"b\"\"]\",\"{{\"\"k\"\": [1, 2.50]}}\",{}\r\n\
             \r\n\
             key_b,  B  ,\" a , b \",,{}\r\n",
            hex("a"),
            hex("b")
        );
        let staged = ImportFormat::Csv.stage(&text).unwrap();
        assert_eq!(staged.places, ["line 2", "line 5"]);
        assert_eq!(staged.ids, [Some("key_a".into()), Some("key_b".into())]);
        assert!(staged.problems.is_empty());
        assert_eq!(
            keys(&staged),
            [
                (
                    "key_a".into(),
                    "Two\r\nlines, \"quoted\"".into(),
                    vec!["a:read".into(), "b".into()],
                    r#"{"k": [1, 2.50]}"#.into()
                ),
                (
                    "key_b".into(),
                    "  B  ".into(),
                    vec!["a".into(), "b".into()],
                    "{}".into()
                ),
            ]
        );
        // Written anew, so no position in the staged file is one in the CSV.
        assert_eq!(staged.file_position(2, 3), None);
    }

    #[test]
    fn a_keys_file_is_staged_as_it_is_when_its_hashes_are_lowercase_hex() {
        let text = format!(
            "{{\"version\": 2,\n \"keys\": [{{\"id\": \"a\", \"secret_hash\": \"{}\", \"x\": [1]}}]}}",
            hex("a")
        );
        let staged = ImportFormat::Json.stage(&text).unwrap();
        assert_eq!(staged.text, text);
        assert_eq!(staged.file_position(2, 5), Some((2, 5)));
        // Rewritten, the hash is longer, and what follows it is placed where it is in the file.
        let b64 = "ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=";
        let text =
            format!("{{\"keys\": [{{\"id\": \"a\", \"secret_hash\": \"{b64}\", \"x\": [1]}}]}}");
        let staged = ImportFormat::Json.stage(&text).unwrap();
        assert_eq!(
            staged.text,
            text.replace(b64, &hex("a")),
            "the SHA-256 of `a` in base64 is written in hex"
        );
        let x = text.find("\"x\"").unwrap() + 1;
        let staged_x = staged.text.find("\"x\"").unwrap() + 1;
        assert_eq!(staged.file_position(1, staged_x), Some((1, x)));
        // Inside the new hash there is no position in the file.
        assert_eq!(staged.file_position(1, x + 5), None);
    }

    #[test]
    fn json_lines_skip_blank_lines_and_may_end_in_crlf() {
        let text = format!(
            "\u{feff}{{\"id\": \"a\", \"secret_hash\": \"{}\"}}\r\n\r\n  \t\n{{\"id\": \"b\", \"secret_hash\": \"{}\"}}",
            hex("a"),
            hex("b")
        );
        let staged = ImportFormat::JsonLines.stage(&text).unwrap();
        assert_eq!(staged.places, ["line 1", "line 4"]);
        assert_eq!(keys(&staged).len(), 2);
        // Empty, a file has no keys.
        for format in [ImportFormat::Json, ImportFormat::JsonLines] {
            let empty = match format {
                ImportFormat::Json => "[]",
                _ => "\n\n",
            };
            assert!(format.stage(empty).unwrap().places.is_empty(), "{format:?}");
        }
    }

    #[test]
    fn a_file_that_is_not_json_is_refused_where_it_breaks() {
        assert_eq!(
            ImportFormat::Json
                .stage("[{\"id\": \"a\"},\n 7 x")
                .unwrap_err(),
            ["invalid JSON at line 2, column 4: expected `,` or `]`"]
        );
        assert_eq!(
            ImportFormat::Json.stage("").unwrap_err(),
            ["invalid JSON at line 1, column 1: expected an object with a `keys` array"]
        );
    }
}

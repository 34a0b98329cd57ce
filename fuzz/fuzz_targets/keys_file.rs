//! Fuzzes the keys-file loader. A file that loads is read by the CLI, written back untouched and
//! with every record rewritten, and loads again as the same key set; its secrets, and a key
//! added to it, verify alike after the save. A file that does not load is an error naming a
//! position in it or a key, the CLI's writer refuses it too, and the checker agrees.

#![no_main]

use heare_auth_core::{hash_secret, visible, Error, Document, KeyRecord, KeySet, Warning};
use heare_auth_fuzz::{assert_same_keys, instants};
use libfuzzer_sys::fuzz_target;

/// No scopes demanded.
const NONE: &[&str] = &[];

fuzz_target!(|data: &[u8]| {
    match KeySet::from_json(data) {
        Ok((set, warnings)) => loads(data, &set, &warnings),
        Err(e) => rejected(data, &e),
    }
});

/// A file the verifier loads.
fn loads(data: &[u8], set: &KeySet, warnings: &[Warning]) {
    let checked = KeySet::check(data);
    assert!(
        checked.errors.is_empty(),
        "the checker rejects a file that loads: {checked:?}"
    );
    assert_eq!(checked.warnings, warnings, "the checker's warnings");
    assert_eq!(checked.records, set.len(), "the checker's count");

    let file = match Document::parse(data) {
        Ok(file) => file,
        Err(e) => panic!("the verifier loads the file but the CLI cannot read it: {e}"),
    };
    assert_eq!(file.len(), set.len());

    // Written back untouched: every record as it was read.
    let untouched = reload(&file, "untouched");
    assert_same_keys(set, &untouched);

    // Every record read into the CLI's type and written back from it.
    let records: Vec<KeyRecord> = match file.records().collect() {
        Ok(records) => records,
        Err(e) => panic!("the verifier loads the file but the CLI cannot read a key: {e}"),
    };
    let mut edited = match Document::parse(data) {
        Ok(file) => file,
        Err(e) => panic!("read once, not twice: {e}"),
    };
    for record in &records {
        assert!(
            edited.replace(record.clone()),
            "key {:?} not found",
            record.id
        );
    }
    let text = to_json(&edited, "rewritten");
    let rewritten = load(&text, "rewritten");
    assert_same_keys(set, &rewritten);
    let again = Document::parse(text.as_bytes()).expect("a file just written reads back");
    let read_back: Vec<KeyRecord> = again.records().collect::<Result<_, _>>().expect("its keys");
    assert_eq!(read_back.len(), records.len());
    for (a, b) in records.iter().zip(&read_back) {
        assert!(
            a == b,
            "a key changed by a write and a read: {a:?} != {b:?}"
        );
    }

    // Every plaintext secret verifies the same, at every instant that matters, after the save.
    let nows = instants(set);
    for secret in records.iter().filter_map(|r| r.secret.as_deref()) {
        for &now in &nows {
            let (a, b) = (
                set.verify(secret, now, NONE),
                rewritten.verify(secret, now, NONE),
            );
            assert_eq!(a.code(), b.code(), "at {now}");
            assert_eq!(a.key().map(|k| k.id()), b.key().map(|k| k.id()), "at {now}");
        }
    }

    added_key_verifies(data, edited, set, &records);
}

/// A key added through the CLI's editing API verifies after a save and a load, and every key
/// that was there verifies as before.
fn added_key_verifies(data: &[u8], mut file: Document, set: &KeySet, records: &[KeyRecord]) {
    let secret = format!(
        "sec_fuzz_{}",
        &hash_secret(&String::from_utf8_lossy(data)).to_hex()[..24]
    );
    let taken = |id: &str| records.iter().any(|r| r.id == id);
    let id = (0..)
        .map(|n| format!("key_fuzz{n}"))
        .find(|id| !taken(id))
        .unwrap_or_default();
    file.push(KeyRecord {
        id: id.clone(),
        secret_hash: Some(hash_secret(&secret).to_hex()),
        name: "added by the fuzzer".into(),
        ..KeyRecord::default()
    });
    let text = match file.to_json() {
        Ok(text) => text,
        // The file already has this secret (as a key's or a previous one): not a finding.
        Err(Error::DuplicateSecret { second, .. }) if second == id => return,
        Err(e) => panic!("adding a key: {e}"),
    };
    let grown = load(&text, "with a key added");
    assert_eq!(grown.len(), set.len() + 1);
    for now in instants(set) {
        let outcome = grown.verify(&secret, now, NONE);
        assert_eq!(
            outcome.valid_key().map(|k| k.id()),
            Some(id.as_str()),
            "at {now}"
        );
        for secret in records.iter().filter_map(|r| r.secret.as_deref()) {
            let (a, b) = (
                set.verify(secret, now, NONE),
                grown.verify(secret, now, NONE),
            );
            assert_eq!(a.code(), b.code(), "at {now}");
        }
    }
}

/// The text the CLI writes for `file`, which it must be able to write.
fn to_json(file: &Document, what: &str) -> String {
    match file.to_json() {
        Ok(text) => text,
        Err(e) => panic!("the CLI cannot write a file the verifier loads ({what}): {e}"),
    }
}

/// Writes `file` out and loads it.
fn reload(file: &Document, what: &str) -> KeySet {
    load(&to_json(file, what), what)
}

/// Loads a file the CLI wrote.
fn load(text: &str, what: &str) -> KeySet {
    match KeySet::from_json(text.as_bytes()) {
        Ok((set, _)) => set,
        Err(e) => panic!("a file the CLI wrote ({what}) does not load: {e}"),
    }
}

/// A file the verifier rejects: the error says where, the CLI does not write it, and the
/// checker's first error is the loader's.
fn rejected(data: &[u8], e: &Error) {
    let message = e.to_string();
    match e {
        Error::Json { line, column, .. } => {
            assert!(
                message.contains(&format!("line {line}, column {column}")),
                "{message}"
            );
            assert!(
                within(data, *line, *column),
                "{message}: not a position in the file"
            );
        }
        Error::MissingField { key, .. }
        | Error::InvalidField { key, .. }
        | Error::MetadataTooLarge { key, .. } => {
            assert!(names_a_key(key), "{message}");
            assert!(message.contains(&format!("key {}:", visible(key))), "{message}");
        }
        Error::DuplicateId { id } => {
            assert!(!id.is_empty() && message.contains(&*visible(id)), "{message}");
        }
        Error::DuplicateSecret { first, second } => {
            assert!(
                !first.is_empty() && !second.is_empty(),
                "{message}: names no key"
            );
            assert!(
                message.contains(&format!("keys {} and {}", visible(first), visible(second))),
                "{message}"
            );
        }
        _ => panic!("a load error that names neither a position nor a key: {e:?}"),
    }
    // The checker's first error is the loader's.
    let checked = KeySet::check(data);
    assert_eq!(
        checked.errors.first().map(|c| &c.error),
        Some(e),
        "the checker's first error is not the loader's"
    );
    if let Ok(file) = Document::parse(data) {
        assert!(
            file.to_json().is_err(),
            "the CLI would write a file the verifier rejects: {message}"
        );
        // Reading each key must not panic either.
        file.records().for_each(drop);
    }
}

/// Whether a 1-based line and column are in `data` (or just after its last byte).
fn within(data: &[u8], line: usize, column: usize) -> bool {
    let Some(text) = data.split(|&b| b == b'\n').nth(line.wrapping_sub(1)) else {
        return false;
    };
    (1..=text.len() + 1).contains(&column)
}

/// A key's id, or `keys[N]` for a key that has none.
fn names_a_key(key: &str) -> bool {
    match key.strip_prefix("keys[").and_then(|k| k.strip_suffix(']')) {
        Some(index) => index.parse::<usize>().is_ok(),
        None => !key.is_empty(),
    }
}

//! Times parsing and indexing one keys file: `load KEYS_FILE` prints milliseconds and the key count.
//! The file is read first, so only `KeySet::from_json` is timed (`make bench` runs it).

use std::time::Instant;

use heare_auth_core::KeySet;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: load KEYS_FILE")?;
    let bytes = std::fs::read(&path)?;
    let start = Instant::now();
    let (set, _) = KeySet::from_json(&bytes)?;
    let elapsed = start.elapsed();
    println!(
        "{:.1} ms {} keys",
        elapsed.as_secs_f64() * 1000.0,
        set.len()
    );
    Ok(())
}

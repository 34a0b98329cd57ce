//! Counting things in messages: `1 key`, `2 keys`.

/// `n` and `word`, with an `s` unless `n` is 1: `1 key`, `0 keys`, `2 plaintext secrets`.
pub fn count(n: usize, word: &str) -> String {
    match n {
        1 => format!("1 {word}"),
        n => format!("{n} {word}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_is_singular() {
        assert_eq!(count(0, "key"), "0 keys");
        assert_eq!(count(1, "key"), "1 key");
        assert_eq!(count(2, "plaintext secret"), "2 plaintext secrets");
    }
}

//! How large a key's metadata may be: bounds on its nesting and its size, enforced wherever
//! metadata comes in (the keys file as loaded, and what the CLI is given), so that no output of
//! it can grow out of proportion to the file.

use crate::bounds::{MetadataBound, MAX_METADATA_BYTES, MAX_METADATA_DEPTH};
use crate::Error;

/// Checks valid JSON text against [`MAX_METADATA_DEPTH`] and [`MAX_METADATA_BYTES`], in one
/// pass over it. The depth found is the deepest level; the size, the text's compact length.
/// Past a bound, an [`Error::OversizedMetadata`].
pub fn check_metadata(json: &str) -> Result<(), Error> {
    let (mut depth, mut deepest, mut spaces) = (0usize, 0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in json.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b' ' | b'\n' | b'\r' | b'\t' => spaces += 1,
            _ => {}
        }
    }
    let size = json.len() - spaces;
    let over = |bound: MetadataBound, found| Error::OversizedMetadata {
        bound,
        limit: bound.limit(),
        found,
    };
    if deepest > MAX_METADATA_DEPTH {
        return Err(over(MetadataBound::Depth, deepest));
    }
    if size > MAX_METADATA_BYTES {
        return Err(over(MetadataBound::Bytes, size));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        "[".repeat(levels) + &"]".repeat(levels)
    }

    #[test]
    fn depth_counts_objects_and_arrays_not_brackets_in_strings() {
        assert_eq!(check_metadata(r#"{"a": {"b": [1, "[[[{{{"]}}"#), Ok(()));
        assert_eq!(check_metadata(&nested(MAX_METADATA_DEPTH)), Ok(()));
        assert_eq!(
            check_metadata(&nested(MAX_METADATA_DEPTH + 1)),
            Err(Error::OversizedMetadata {
                bound: MetadataBound::Depth,
                limit: 32,
                found: 33
            })
        );
        assert_eq!(
            check_metadata(&nested(20_000)).unwrap_err().to_string(),
            "is nested 20000 levels deep; at most 32 levels are allowed"
        );
    }

    #[test]
    fn size_is_the_compact_length() {
        let fits = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_METADATA_BYTES - 8));
        assert_eq!(fits.len(), MAX_METADATA_BYTES);
        assert_eq!(check_metadata(&fits), Ok(()));
        // Whitespace outside strings does not count; inside them it does.
        let spaced = fits.replace(':', " :\n\t ");
        assert_eq!(check_metadata(&spaced), Ok(()));
        let over = fits.replace("\"x", "\" x");
        assert_eq!(
            check_metadata(&over),
            Err(Error::OversizedMetadata {
                bound: MetadataBound::Bytes,
                limit: MAX_METADATA_BYTES,
                found: MAX_METADATA_BYTES + 1
            })
        );
    }
}

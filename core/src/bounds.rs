//! The bounds of a key's metadata: how deep it may nest and how large it may be, named apart from
//! the check ([`crate::check_metadata`]) so that the error that reports them needs only this.

/// The most levels of nested objects and arrays a key's metadata may have (`{"a": {"b": 1}}`
/// has 2). The original service's metadata is flat; 32 leaves room for any real document.
pub const MAX_METADATA_DEPTH: usize = 32;

/// The most bytes a key's metadata may take as compact JSON (no whitespace outside strings).
/// `/verify` returns it with every answer; 16 KiB is far more than a label needs.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Which bound of metadata was passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataBound {
    /// [`MAX_METADATA_DEPTH`]: levels of nested objects and arrays.
    Depth,
    /// [`MAX_METADATA_BYTES`]: bytes of compact JSON.
    Bytes,
}

impl MetadataBound {
    /// The bound itself.
    pub fn limit(self) -> usize {
        match self {
            MetadataBound::Depth => MAX_METADATA_DEPTH,
            MetadataBound::Bytes => MAX_METADATA_BYTES,
        }
    }
}

//! What a place that holds the keys file must do: read it, tell its version cheaply, replace
//! it only if nobody else did in between, and keep the numbered changes and an index beside it.

use crate::Error;

/// One version of the stored object, as the backend holds it (possibly encrypted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// The stored bytes.
    pub bytes: Vec<u8>,
    /// An opaque version: the S3 ETag, or a digest of a local file's content.
    pub version: String,
    /// The store's clock when it answered (an S3 `Date` header), to show clock skew.
    pub date: Option<String>,
}

/// What a conditional write did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Put {
    /// The object was written; its version, when the store said it.
    Written(Option<String>),
    /// The object changed since it was read (or now exists); nothing was written.
    Conflict,
}

/// One version of a stored object, read a part at a time.
pub trait Parts {
    /// Up to `len` bytes at `start` (fewer at the end of the object); `None` when the object is
    /// no longer the version this was opened on (or is gone).
    fn read_at(&self, start: u64, len: usize) -> Result<Option<Vec<u8>>, Error>;
}

/// A place that holds one object and can replace it conditionally.
pub trait Backend: Send + Sync {
    /// Where the object is, for messages: `./keys.json`, `s3://bucket/keys.json`.
    fn location(&self) -> &str;

    /// Reads the object; `None` when it does not exist.
    fn get(&self) -> Result<Option<Object>, Error>;

    /// [`Backend::get`], calling `pace` between pieces of the work it does on the CPU, for a
    /// reader that shares a core with request handlers (the file backend reads and digests the
    /// file in pieces; others read it whole).
    fn get_paced(&self, pace: &mut dyn FnMut()) -> Result<Option<Object>, Error> {
        let _ = pace;
        self.get()
    }

    /// The current version without the content where the backend can do that cheaply.
    fn version(&self) -> Result<Option<String>, Error> {
        Ok(self.get()?.map(|o| o.version))
    }

    /// Checks, before the first write, that writes here can be made safely (the S3 backend
    /// probes the store's conditional writes); the file backend always can.
    fn check_writes(&self) -> Result<(), Error> {
        Ok(())
    }

    /// Writes `bytes` only if the object is still at `expected` (`None`: only if it does not
    /// exist).
    fn put(&self, bytes: &[u8], expected: Option<&str>) -> Result<Put, Error>;

    /// After a write that took `took`, whether it must be confirmed by reading the file again
    /// (and seeing the change there). The file backend's writes are atomic under its lock: no.
    /// An S3-compatible store's conditional check may not be atomic with its write (s3s-fs, for
    /// one, also stores an object's ETag after its content), so this waits for a write that
    /// raced ours to land, and asks for the content to be read again.
    fn settle(&self, _took: std::time::Duration) -> bool {
        false
    }

    /// The sequence numbers of the changes stored beside the object, from `from` on, in order.
    fn list_changes(&self, from: u64) -> Result<Vec<u64>, Error>;

    /// Reads change `seq`; `None` when there is none.
    fn get_change(&self, seq: u64) -> Result<Option<Vec<u8>>, Error>;

    /// Writes change `seq` only if there is none yet ([`Put::Conflict`]: another writer has
    /// it).
    fn create_change(&self, seq: u64, bytes: &[u8]) -> Result<Put, Error>;

    /// Deletes change `seq` (nothing when there is none).
    fn delete_change(&self, seq: u64) -> Result<(), Error>;

    /// The keys object, to read in parts, if it is now at `version`; `None` when it is not,
    /// or when this backend reads it only whole.
    fn snapshot_parts(&self, version: &str) -> Result<Option<Box<dyn Parts + '_>>, Error> {
        let _ = version;
        Ok(None)
    }

    /// The index stored beside the keys object (see the store's `index`), to read in parts;
    /// `None` when there is none.
    fn index_parts(&self) -> Result<Option<Box<dyn Parts + '_>>, Error> {
        Ok(None)
    }

    /// Replaces the index beside the keys object, whole (it is only ever read whole as it was
    /// written, or not found).
    fn put_index(&self, bytes: &[u8]) -> Result<(), Error> {
        let _ = bytes;
        Ok(())
    }
}

/// The name of the index beside the changes (it is no change's name).
pub(crate) const INDEX_NAME: &str = "index";

/// The name of change `seq`: zero-padded, so that names sort as numbers do.
pub(crate) fn change_name(seq: u64) -> String {
    format!("{seq:020}.json")
}

/// The sequence number a change's name holds; `None` for another name.
pub(crate) fn change_seq(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    match digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
        true => digits.parse().ok(),
        false => None,
    }
}

//! The live key set: an `Arc<KeySet>` behind a `RwLock`, replaced whole by reloads.

use parking_lot::{Mutex, RwLock};
use std::sync::Arc;

use heare_auth_core::KeySet;

use crate::store::Store;
use crate::Error;

/// The key set being served and the store it is loaded from.
pub struct Keys {
    current: RwLock<Arc<KeySet>>,
    store: Box<dyn Store>,
    /// Serialises reloads so an older read never replaces a newer one.
    reloading: Mutex<()>,
}

impl Keys {
    /// Loads the store once; an error here is a start-up failure.
    pub fn load(store: Box<dyn Store>) -> Result<Keys, Error> {
        let set = read(store.as_ref())?;
        Ok(Keys {
            current: RwLock::new(Arc::new(set)),
            store,
            reloading: Mutex::new(()),
        })
    }

    /// The set to verify against. The read lock is held only to clone the `Arc`.
    pub fn current(&self) -> Arc<KeySet> {
        self.current.read().clone()
    }

    /// Re-reads the store and swaps the new set in. I/O and parsing happen outside the key-set
    /// lock, so verification never waits on them. On error the old set stays.
    pub fn reload(&self) -> Result<usize, Error> {
        let _one_at_a_time = self.reloading.lock();
        let set = Arc::new(read(self.store.as_ref())?);
        let count = set.len();
        *self.current.write() = set;
        Ok(count)
    }

    /// Where the keys come from, for messages.
    pub fn location(&self) -> String {
        self.store.location()
    }
}

/// Reads and parses the store's file, logging keys that load with warnings.
fn read(store: &dyn Store) -> Result<KeySet, Error> {
    let snapshot = store.load()?;
    let (set, warnings) = KeySet::from_json(snapshot.bytes_or_empty())
        .map_err(|e| Error::keys(&store.location(), e))?;
    for w in warnings {
        log::warn!(warning:% = w; "key_warning");
    }
    Ok(set)
}

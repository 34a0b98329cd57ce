//! Editing one key by id: find it, edit it, put it back, under the store's update, which may
//! apply the edit again to a fresh file or to its own write read back.

use heare_auth_core::{Document, KeyRecord};
use heare_auth_store::Store;

use crate::CliError;

/// A key after `disable`, `enable` or `set-rate-limit`.
#[derive(Debug)]
pub struct Toggled {
    /// The key as it now is.
    pub record: KeyRecord,
    /// Whether this command changed it (`false`: it already was as asked).
    pub changed: bool,
}

/// Applies `edit` to the key `id` in the store: `edit` returns the key changed, or `None` when
/// it already is as asked (so that, applied again, it finds nothing left to do). Fails, writing
/// nothing, when no key has the id or the file holds it more than once.
pub(super) fn edit_key(
    store: &Store,
    id: &str,
    mut edit: impl FnMut(&KeyRecord) -> Option<KeyRecord>,
) -> Result<Toggled, CliError> {
    let mut current = None;
    let changed = store.update(|file: &mut Document| {
        let record = find(store, file, id)?;
        current = Some(match edit(&record) {
            Some(edited) => {
                file.replace(edited.clone());
                edited
            }
            None => record,
        });
        Ok::<(), CliError>(())
    })?;
    let record = current.ok_or_else(|| CliError::NotFound(id.to_string()))?;
    Ok(Toggled { record, changed })
}

/// The key `id` in `file`, read from `store`.
pub(super) fn find(store: &Store, file: &Document, id: &str) -> Result<KeyRecord, CliError> {
    match file.get(id) {
        Some(record) => record.map_err(CliError::keys(store.location())),
        None => Err(CliError::NotFound(id.to_string())),
    }
}

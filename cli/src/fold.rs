//! The fold a change can make due (every 64th change to a large keys file): run by the command
//! that made it, once its answer is out, at the lowest priority, so that it keeps no one waiting
//! (a server on the same host, the admin reading the answer).

use heare_auth_store::Store;

/// The nice value a fold runs at: the lowest priority of the normal class, which still gets a
/// share of a busy core, so the fold always ends.
const NICE: i32 = 19;

/// Folds the changes into the keys file when the command's change made a fold due. The change
/// is stored whether or not the fold is done: a fold that fails is said on stderr and left to
/// the next writer (or `heare-auth compact`).
pub fn if_due(store: &Store) {
    if !store.take_fold_due() {
        return;
    }
    // Not allowed to lower it (a sandbox): the fold runs as it is.
    let _ = rustix::process::setpriority_process(None, NICE);
    if let Err(e) = store.compact() {
        eprintln!(
            "Warning: the change is saved, but folding the changes into the keys file failed \
             ({e}); the next change or `heare-auth compact` folds them."
        );
    }
}

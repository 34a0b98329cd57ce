//! The store: a backend plus the storage secret. The keys file is a snapshot and the numbered
//! changes after it: read whole, polled change by change, changed by appending one change
//! made exclusive by a conditional write, and folded into a new snapshot now and then.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand_core::{OsRng, RngCore};
use serde_json::value::RawValue;

use heare_auth_core::{decrypt_file, encrypt_file, record_id, Document, KeyRecord, NEXT_CHANGE};

use crate::backend::{Backend, Put};
use crate::changes::{next_change, Change, Net};
use crate::index::{self, Indexed};
use crate::Error;

/// An edit of the keys, as [`Store::update`] takes it.
type Edit<'e, E> = dyn FnMut(&mut Document<'_>) -> Result<(), E> + 'e;

/// The keys file as read: plaintext bytes (decrypted if needed), the version they came from,
/// and the first change they do not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Plaintext JSON, or `None` when the object does not exist yet (zero keys).
    pub bytes: Option<Vec<u8>>,
    /// Version of the stored snapshot; `None` when it does not exist.
    pub version: Option<String>,
    /// The first change not in `bytes`.
    pub next: u64,
}

/// The contents of a keys file with no keys.
pub const EMPTY_FILE: &[u8] = br#"{"keys": []}"#;

impl Snapshot {
    /// The bytes, with a missing object read as an empty key list.
    pub fn bytes_or_empty(&self) -> &[u8] {
        self.bytes.as_deref().unwrap_or(EMPTY_FILE)
    }
}

/// The keys as stored: a snapshot and the changes after it, in order.
#[derive(Debug)]
pub struct State {
    /// The snapshot, as read (`next`: where its changes begin).
    pub snapshot: Snapshot,
    /// The changes after it, in order, none missing.
    pub changes: Vec<Change>,
}

impl State {
    /// The first change not yet made.
    pub fn next(&self) -> u64 {
        self.changes
            .last()
            .map_or(self.snapshot.next, |c| c.seq + 1)
    }

    /// The whole keys file with its changes applied (the snapshot's text itself when no change
    /// writes or deletes a key).
    pub fn folded(&self) -> Result<Cow<'_, [u8]>, heare_auth_core::Error> {
        let plain = self.snapshot.bytes_or_empty();
        if self.changes.iter().all(Change::is_note) {
            return Ok(Cow::Borrowed(plain));
        }
        let mut file = Document::parse(plain)?;
        for change in &self.changes {
            change.apply_to(&mut file)?;
        }
        file.set_field(NEXT_CHANGE, number(self.next()));
        Ok(Cow::Owned(file.to_json()?.into_bytes()))
    }
}

/// What a writer knows of the keys without reading the keys file: each key as it was before
/// change [`Base::next`].
pub trait Base {
    /// The first change the keys do not hold.
    fn next(&self) -> u64;
    /// The key with this id; `None` when there was none.
    fn get(&self, id: &str) -> Result<Option<KeyRecord>, Error>;
}

/// The keys of a snapshot read for an update.
struct Parsed<'a> {
    file: Document<'a>,
    /// The text of each record of `file`, in order.
    records: Vec<&'a str>,
    text: &'a [u8],
    next: u64,
    location: &'a str,
}

impl<'a> Parsed<'a> {
    fn new(text: &'a [u8], next: u64, location: &'a str) -> Result<Parsed<'a>, Error> {
        let file = Document::parse(text).map_err(|e| Error::keys(location, e))?;
        let records = file.texts().flatten().collect();
        Ok(Parsed {
            file,
            records,
            text,
            next,
            location,
        })
    }

    /// The key with this id, found where its id is in the text: a search of the text and a
    /// parse of one record, not of every one.
    fn find(&self, id: &str) -> Option<Result<Option<KeyRecord>, Error>> {
        let mut quoted = String::with_capacity(id.len() + 2);
        heare_auth_core::push_json_string(&mut quoted, id);
        let mut found = None;
        for at in memchr::memmem::find_iter(self.text, quoted.as_bytes()) {
            let base = self.text.as_ptr() as usize;
            let start = |record: &&str| record.as_ptr() as usize - base;
            let i = (self.records.partition_point(|r| start(r) <= at)).checked_sub(1)?;
            let record = self.records[i];
            if record_id(record).as_deref() != Some(id) {
                continue;
            }
            if found.is_some() {
                // Twice in the file: as the whole document would, refuse to choose.
                return None;
            }
            found = Some(
                serde_json::from_str(record).map_err(|e| Error::keys(self.location, e.into())),
            );
        }
        found.map(|record| record.map(Some))
    }
}

impl Base for Parsed<'_> {
    fn next(&self) -> u64 {
        self.next
    }

    fn get(&self, id: &str) -> Result<Option<KeyRecord>, Error> {
        // An id written with escapes, or held twice, is left to the document's own search.
        if let Some(found) = self.find(id) {
            return found;
        }
        self.file
            .get(id)
            .transpose()
            .map_err(|e| Error::keys(self.location, e))
    }
}

/// Writes that failed so far, and whether one got no answer.
#[derive(Default)]
struct Failures {
    writes: u32,
    unanswered: bool,
}

/// `n` as a JSON value.
fn number(n: u64) -> Box<RawValue> {
    RawValue::from_string(n.to_string()).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// How many changes after the snapshot make a writer fold them into a new one.
pub const COMPACT_AFTER: usize = 64;
/// The size of a keys file up to which every change is folded into it at once: a small file
/// stays whole, as older readers expect, for the cost of a rewrite no larger than this.
pub const FOLD_BELOW: usize = 64 * 1024;
/// How long a change folded into a snapshot is kept: readers behind the snapshot may still
/// apply it, and a writer that read the keys before the fold cannot reuse its number (see
/// [`WRITE_WINDOW`]).
const KEEP_FOLDED: Duration = Duration::from_secs(600);
/// The longest a writer may take from reading the keys to writing its change; past it, it
/// reads them again. Well under [`KEEP_FOLDED`], which must hold whatever the clocks of the
/// writers disagree by: a change number is only reused once its change is removed.
const WRITE_WINDOW: Duration = Duration::from_secs(60);
/// How many times a read starts again because a compaction removed changes it was reading.
const MAX_READS: u32 = 8;

/// How many times an update re-reads and re-applies its change after a conflicting write.
const MAX_ATTEMPTS: u32 = 64;
/// How many writes that failed (maybe landing, maybe not) an update makes before giving up.
const MAX_FAILED_WRITES: u32 = 3;
/// How many reads that returned damaged content an update makes before giving up.
const MAX_DAMAGED_READS: u32 = 4;

/// A keys-file store: a backend plus the optional `STORAGE_SECRET` that encrypts it.
pub struct Store {
    backend: Box<dyn Backend>,
    storage_secret: Option<String>,
    /// Whether a change appended to a large keys file calls for a fold (see
    /// [`Store::take_fold_due`]).
    fold_due: AtomicBool,
}

impl Store {
    /// A store over `backend`; with a secret, writes are encrypted and encrypted files readable.
    pub fn new(backend: Box<dyn Backend>, storage_secret: Option<String>) -> Store {
        Store {
            backend,
            storage_secret,
            fold_due: AtomicBool::new(false),
        }
    }

    /// Where the keys file is, for messages.
    pub fn location(&self) -> &str {
        self.backend.location()
    }

    /// Whether writes are encrypted (`STORAGE_SECRET` is set).
    pub fn encrypts(&self) -> bool {
        self.storage_secret.is_some()
    }

    /// The backend, for what only it can tell (see `heare-auth doctor`).
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// Reads the current keys file: the snapshot with its changes applied.
    pub fn load(&self) -> Result<Snapshot, Error> {
        self.load_paced(&mut || {})
    }

    /// [`Store::load`], calling `pace` between pieces of the reading (see
    /// [`Backend::get_paced`]).
    pub fn load_paced(&self, pace: &mut dyn FnMut()) -> Result<Snapshot, Error> {
        let state = self.read_paced(pace)?;
        let next = state.next();
        let bytes = match state.folded().map_err(|e| self.invalid(e))? {
            Cow::Borrowed(_) => state.snapshot.bytes,
            Cow::Owned(folded) => Some(folded),
        };
        Ok(Snapshot {
            bytes,
            version: state.snapshot.version,
            next,
        })
    }

    /// Reads the snapshot and the changes after it, calling `pace` as [`Store::load_paced`]
    /// does. Starts again when a compaction removes changes as they are read.
    pub fn read_paced(&self, pace: &mut dyn FnMut()) -> Result<State, Error> {
        for _ in 0..MAX_READS {
            let snapshot = self.snapshot_paced(pace)?;
            if let Some(changes) = self.changes_after(snapshot.next)? {
                return Ok(State { snapshot, changes });
            }
        }
        Err(Error::Contended {
            location: self.location().to_string(),
            attempts: MAX_READS,
        })
    }

    /// [`Store::read_paced`], unpaced.
    pub fn read(&self) -> Result<State, Error> {
        self.read_paced(&mut || {})
    }

    /// Reads and decrypts the snapshot alone.
    fn snapshot_paced(&self, pace: &mut dyn FnMut()) -> Result<Snapshot, Error> {
        match self.backend.get_paced(pace)? {
            None => Ok(Snapshot {
                bytes: None,
                version: None,
                next: 0,
            }),
            Some(object) => {
                let plain = match self.decrypt(&object.bytes)? {
                    Cow::Owned(plain) => plain,
                    Cow::Borrowed(_) => object.bytes,
                };
                let next = next_change(&plain).map_err(|e| self.invalid(e))?;
                Ok(Snapshot {
                    bytes: Some(plain),
                    version: Some(object.version),
                    next,
                })
            }
        }
    }

    /// The changes from `from` on, in order; `None` when change `from` is gone but later ones
    /// are there (a compaction removed it: read the snapshot again).
    pub fn changes_after(&self, from: u64) -> Result<Option<Vec<Change>>, Error> {
        let seqs = self.backend.list_changes(from)?;
        let mut changes = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if seq != from + changes.len() as u64 {
                // Each change is written after the one before it exists: one missing was
                // removed by a compaction. At the start, this reader is behind the snapshot.
                match changes.is_empty() {
                    true => return Ok(None),
                    false => break,
                }
            }
            match self.read_change(seq)? {
                Some(change) => changes.push(change),
                None => return Ok(None),
            }
        }
        Ok(Some(changes))
    }

    /// Reads change `seq`.
    fn read_change(&self, seq: u64) -> Result<Option<Change>, Error> {
        let Some(bytes) = self.backend.get_change(seq)? else {
            return Ok(None);
        };
        let plain = self.decrypt(&bytes)?;
        let change = Change::parse(&plain).map_err(|e| self.invalid(e))?;
        match change.seq == seq {
            true => Ok(Some(change)),
            false => Err(self.invalid(heare_auth_core::Error::Json {
                line: 1,
                column: 1,
                message: format!("change {seq} says it is change {}", change.seq),
            })),
        }
    }

    /// The snapshot's version, without its content where the backend can tell it cheaply.
    pub fn version(&self) -> Result<Option<String>, Error> {
        self.backend.version()
    }

    /// Applies `edit` to the keys file: one read, the edit, and, if it changed anything, one
    /// change appended, written only if nobody has written that change yet. When someone
    /// did, the edit is applied again after the changes made meanwhile, so `edit` must be
    /// idempotent ("ensure the key exists"). The change holds only the keys the edit touched.
    /// A write whose outcome is unknown (a timeout, a cut connection, a 5xx: it may have
    /// landed) is settled by reading the change back; where the store's conditional writes may
    /// not be atomic (S3-compatible stores differ), the change is read back after the write
    /// too. Nothing is written when `edit` fails or the keys it touched would not load.
    /// Returns whether the change is now stored because of this call (`false`: there was
    /// nothing to change). After three failed writes it gives up; if one of them got no
    /// answer, it may land yet, and the error says so.
    ///
    /// A small keys file is edited whole, checked whole, and folded with the change at once,
    /// so that it always holds every key. In a large one `edit` sees only the keys it looks up
    /// (see [`Document::of_keys`]): it must find keys by id, not read them all (use
    /// [`Store::update_whole`] for that); the file is read, but neither checked nor written
    /// whole; every [`COMPACT_AFTER`]th change makes a fold due ([`Store::take_fold_due`]), for
    /// the caller to run [`Store::compact`] once its answer is out.
    pub fn update<E: From<Error>>(
        &self,
        edit: impl FnMut(&mut Document<'_>) -> Result<(), E>,
    ) -> Result<bool, E> {
        self.update_as(edit, false)
    }

    /// [`Store::update`] for an edit that reads every key (`migrate`, `import`): it sees the
    /// whole file, whatever its size.
    pub fn update_whole<E: From<Error>>(
        &self,
        edit: impl FnMut(&mut Document<'_>) -> Result<(), E>,
    ) -> Result<bool, E> {
        self.update_as(edit, true)
    }

    /// [`Store::update`] for a writer that knows the keys as they were before change
    /// `base.next()` (a server, from the keys it serves): it reads only the changes after
    /// those, and the keys `edit` looks up from `base`, never the keys file.
    ///
    /// It does not fold: when a fold is due, [`Store::take_fold_due`] says so, for the caller
    /// to run [`Store::compact`] where it costs no one a wait.
    pub fn update_on<E: From<Error>>(
        &self,
        base: &dyn Base,
        mut edit: impl FnMut(&mut Document<'_>) -> Result<(), E>,
    ) -> Result<bool, E> {
        self.backend.check_writes()?;
        self.append_on(base, None, &mut edit)
    }

    /// Whether a change made by [`Store::update`] or [`Store::update_on`] since the last call
    /// calls for a fold.
    pub fn take_fold_due(&self) -> bool {
        self.fold_due.swap(false, Ordering::Relaxed)
    }

    fn update_as<E: From<Error>>(
        &self,
        mut edit: impl FnMut(&mut Document<'_>) -> Result<(), E>,
        whole: bool,
    ) -> Result<bool, E> {
        self.backend.check_writes()?;
        if !whole {
            if let Some(done) = self.update_indexed(&mut edit) {
                return done;
            }
        }
        let mut failures = Failures::default();
        let mut damaged_reads = 0;
        // Whether a read of this update found the file: if a later one does not, it was
        // deleted meanwhile, and writing the edit to an empty file would drop every key.
        let mut existed = false;
        for attempt in 0..MAX_ATTEMPTS {
            let read_at = Instant::now();
            let state = match self.read() {
                Ok(state) => state,
                // Writes landing as we read (in a store that keeps an object's content and
                // checksum apart) look like this; so does damage in transfer, for a while.
                Err(Error::Damaged { .. }) if damaged_reads + 1 < MAX_DAMAGED_READS => {
                    damaged_reads += 1;
                    backoff(attempt);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            match (&state.snapshot.version, existed) {
                (Some(_), _) => existed = true,
                (None, true) => return Err(self.vanished().into()),
                (None, false) => {}
            }
            if !whole && state.snapshot.bytes_or_empty().len() > FOLD_BELOW {
                let plain = state.snapshot.bytes_or_empty();
                let base = Parsed::new(plain, state.snapshot.next, self.location())?;
                // The next writer finds its keys through the index.
                if let Some(version) = &state.snapshot.version {
                    self.write_index(&base.file, plain, version, base.next);
                }
                return self.append_on(&base, Some(state.changes), &mut edit);
            }
            let folded = state.folded().map_err(|e| self.invalid(e))?;
            let mut file = Document::parse(&folded).map_err(|e| self.invalid(e))?;
            edit(&mut file)?;
            if !file.is_changed() {
                return Ok(false);
            }
            let seq = state.next();
            file.set_field(NEXT_CHANGE, number(seq + 1));
            // Checks that the file with the change loads, as every reader will load it.
            let text = file.to_json().map_err(|e| self.invalid(e))?;
            let change = Change::between(seq, unix_ms(), &file).map_err(|e| self.invalid(e))?;
            drop(file);
            if read_at.elapsed() > WRITE_WINDOW {
                continue;
            }
            if !self.land(seq, &self.encrypt(change.to_json()), &mut failures)? {
                backoff(attempt);
                continue;
            }
            if state.changes.len() + 1 >= COMPACT_AFTER || text.len() <= FOLD_BELOW {
                // The change is stored; a fold that fails is left to the next writer.
                let _ = self.fold(&state, text.into_bytes(), seq + 1);
            }
            return Ok(true);
        }
        Err(self.contended().into())
    }

    /// [`Store::update`] through the index of the snapshot: `None` when there is no index of
    /// the snapshot as it is now (or it cannot be read), or when it proved unsound; the update
    /// then reads the snapshot.
    fn update_indexed<E: From<Error>>(&self, edit: &mut Edit<'_, E>) -> Option<Result<bool, E>> {
        if self.encrypts() {
            return None;
        }
        let indexed = Indexed::open(&*self.backend).ok()??;
        let since = match self.changes_after(indexed.next()) {
            Ok(since) => since?,
            Err(e) => return Some(Err(e.into())),
        };
        let done = self.append_on(&indexed, Some(since), edit);
        (!indexed.is_unsound()).then_some(done)
    }

    /// Writes the index of `text`, the snapshot at `version` read into `file`, when it is
    /// large enough to be changed without being read, and stored in plaintext (an index
    /// would tell which keys an encrypted file holds). A failure is left to the next writer,
    /// which then reads the snapshot whole, as without one.
    fn write_index(&self, file: &Document<'_>, text: &[u8], version: &str, next: u64) {
        if self.encrypts() || text.len() <= FOLD_BELOW {
            return;
        }
        if let Some(index) = index::build(file, text, version, next) {
            let _ = self.backend.put_index(&index);
        }
    }

    /// Applies `edit` to the keys `base` holds with `since` (the changes after them, read
    /// now when `None`) applied, and appends the change it makes, noting when a fold is due.
    fn append_on<E: From<Error>>(
        &self,
        base: &dyn Base,
        since: Option<Vec<Change>>,
        edit: &mut Edit<'_, E>,
    ) -> Result<bool, E> {
        let mut since = match since {
            Some(since) => since,
            None => match self.changes_after(base.next())? {
                Some(since) => since,
                // This writer fell behind a fold: it reads the file.
                None => return self.update(edit),
            },
        };
        let mut failures = Failures::default();
        for attempt in 0..MAX_ATTEMPTS {
            let read_at = Instant::now();
            // Each key the edit looks up, as it is after the changes since `base`.
            let mut known: Vec<(String, Option<KeyRecord>)> = Vec::new();
            let net = Net::of(&since);
            let file = loop {
                let records = known.iter().filter_map(|(_, r)| r.clone()).collect();
                let mut file = Document::of_keys(records);
                let result = edit(&mut file);
                let missing: Vec<String> = (file.looked_up().into_iter())
                    .filter(|id| known.iter().all(|(k, _)| k != id))
                    .collect();
                if missing.is_empty() {
                    result?;
                    break file;
                }
                for id in missing {
                    let record = match net.get(&id) {
                        Some(state) => state.map_err(|e| self.invalid(e))?,
                        None => base.get(&id)?,
                    };
                    known.push((id, record));
                }
            };
            if !file.is_changed() {
                return Ok(false);
            }
            // Checks that the keys the change touches (and those it looked up) load.
            file.to_json().map_err(|e| self.invalid(e))?;
            let seq = since.last().map_or(base.next(), |c| c.seq + 1);
            let change = Change::between(seq, unix_ms(), &file).map_err(|e| self.invalid(e))?;
            drop(file);
            let landed = read_at.elapsed() <= WRITE_WINDOW
                && self.land(seq, &self.encrypt(change.to_json()), &mut failures)?;
            if landed {
                if (seq + 1).is_multiple_of(COMPACT_AFTER as u64) {
                    self.fold_due.store(true, Ordering::Relaxed);
                }
                return Ok(true);
            }
            backoff(attempt);
            match self.changes_after(seq)? {
                Some(more) => since.extend(more),
                None => return self.update(edit),
            }
        }
        Err(self.contended().into())
    }

    /// Writes change `seq` and finds out whether it landed: `Ok(false)` when another writer
    /// has that number. A write whose outcome is unknown is settled by reading the change back;
    /// after [`MAX_FAILED_WRITES`] failed ones it gives up.
    fn land(&self, seq: u64, bytes: &[u8], failures: &mut Failures) -> Result<bool, Error> {
        let started = Instant::now();
        match self.backend.create_change(seq, bytes) {
            Ok(Put::Conflict) => Ok(false),
            Ok(Put::Written(_)) => match self.backend.settle(started.elapsed()) {
                false => Ok(true),
                true => Ok(self.backend.get_change(seq)?.as_deref() == Some(bytes)),
            },
            Err(e @ (Error::Unavailable { .. } | Error::Unanswered { .. })) => {
                failures.unanswered |= matches!(e, Error::Unanswered { .. });
                match self.backend.get_change(seq) {
                    Ok(Some(stored)) => Ok(stored == bytes),
                    Ok(None) => {
                        failures.writes += 1;
                        match failures.writes == MAX_FAILED_WRITES {
                            true if failures.unanswered => Err(self.may_land_yet(&e)),
                            true => Err(e),
                            false => Ok(false),
                        }
                    }
                    Err(read) => Err(self.outcome_unknown(&e, &read)),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn contended(&self) -> Error {
        Error::Contended {
            location: self.location().to_string(),
            attempts: MAX_ATTEMPTS,
        }
    }

    /// Folds every change into a new snapshot, so that a reader of the keys file alone (an
    /// older version, another tool) sees every key as it is, and removes the changes folded.
    /// Returns how many changes it folded (none when every change after the snapshot is only
    /// the note of a fold).
    pub fn compact(&self) -> Result<usize, Error> {
        self.backend.check_writes()?;
        for attempt in 0..MAX_ATTEMPTS {
            let state = self.read()?;
            if state.changes.iter().all(Change::is_note) {
                self.remove_changes_before(state.snapshot.next)?;
                return Ok(0);
            }
            let mut file =
                Document::parse(state.snapshot.bytes_or_empty()).map_err(|e| self.invalid(e))?;
            for change in &state.changes {
                change.apply_to(&mut file).map_err(|e| self.invalid(e))?;
            }
            let next = state.next();
            file.set_field(NEXT_CHANGE, number(next));
            let text = file.to_json().map_err(|e| self.invalid(e))?;
            drop(file);
            match self.fold(&state, text.into_bytes(), next)? {
                true => {
                    self.remove_changes_before(next)?;
                    return Ok(state.changes.len());
                }
                false => backoff(attempt),
            }
        }
        Err(Error::Contended {
            location: self.location().to_string(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Writes `text`, the snapshot of `state` holding every change before `next`, in place of
    /// `state`'s, if nobody replaced that meanwhile; then notes it in the changes (so that
    /// readers holding those changes need not read it) and removes the changes the old
    /// snapshot held (the ones it did not hold stay, for readers still applying them).
    /// `false`: another writer replaced the snapshot first.
    fn fold(&self, state: &State, text: Vec<u8>, next: u64) -> Result<bool, Error> {
        let bytes = self.encrypt(text);
        let expected = state.snapshot.version.as_deref();
        let version = match self.backend.put(&bytes, expected)? {
            Put::Conflict => return Ok(false),
            Put::Written(version) => version,
        };
        // The index of the new snapshot, for the writers after this one.
        if let Some(version) = version.as_deref() {
            if !self.encrypts() && bytes.len() > FOLD_BELOW {
                if let Ok(file) = Document::parse(&bytes) {
                    self.write_index(&file, &bytes, version, next);
                }
            }
        }
        if let Some(version) = version {
            let mut seq = next;
            for _ in 0..MAX_ATTEMPTS {
                let note =
                    Change::compacted(seq, unix_ms(), version.clone(), expected.map(String::from));
                let note = self.encrypt(note.to_json());
                match self.backend.create_change(seq, &note)? {
                    Put::Written(_) => break,
                    Put::Conflict => {
                        seq = (self.backend.list_changes(seq)?.last()).map_or(seq, |s| s + 1)
                    }
                }
            }
        }
        self.remove_changes_before(state.snapshot.next)?;
        Ok(true)
    }

    /// Removes the changes before `seq` that are older than [`KEEP_FOLDED`].
    fn remove_changes_before(&self, seq: u64) -> Result<(), Error> {
        let now = unix_ms();
        let keep = KEEP_FOLDED.as_millis() as u64;
        for old in self.backend.list_changes(0)? {
            if old >= seq {
                break;
            }
            // One that cannot be read is left for whoever can.
            if let Ok(Some(change)) = self.read_change(old) {
                if now.saturating_sub(change.at) > keep {
                    self.backend.delete_change(old)?;
                }
            }
        }
        Ok(())
    }

    /// The file was there when this update read it, and gone when it read it again.
    fn vanished(&self) -> Error {
        Error::unavailable(
            self.location(),
            "the keys file was deleted while this change was being made; nothing was written \
             (restore the file, or write an empty one to start afresh)",
        )
    }

    /// A write failed without saying whether it landed, and reading the file back failed too.
    fn outcome_unknown(&self, write: &Error, read: &Error) -> Error {
        Error::unavailable(
            self.location(),
            format!(
                "{}; reading the file back then failed too ({}), so whether the change was \
                 saved is unknown: check before trying again",
                message(write),
                message(read)
            ),
        )
    }

    /// Writes failed, the last as `write`, and each was read back and not found; but one got
    /// no answer, and a write in flight can land after the reads.
    fn may_land_yet(&self, write: &Error) -> Error {
        Error::unavailable(
            self.location(),
            format!(
                "{}; the change was not in the file read back after each of {MAX_FAILED_WRITES} \
                 writes, but a write that got no answer may land yet, so whether the change \
                 was saved is unknown: check before trying again",
                message(write)
            ),
        )
    }

    fn invalid(&self, e: heare_auth_core::Error) -> Error {
        Error::keys(self.location(), e)
    }

    fn decrypt<'b>(&self, bytes: &'b [u8]) -> Result<Cow<'b, [u8]>, Error> {
        decrypt_file(bytes, self.storage_secret.as_deref()).map_err(|e| self.invalid(e))
    }

    fn encrypt(&self, plaintext: Vec<u8>) -> Vec<u8> {
        let Some(secret) = &self.storage_secret else {
            return plaintext;
        };
        let mut iv = [0u8; 16];
        OsRng.fill_bytes(&mut iv);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        encrypt_file(&plaintext, secret, iv, now)
    }
}

/// This machine's clock, in Unix ms.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An error's message without its location.
fn message(e: &Error) -> String {
    match e {
        Error::Unavailable { message, .. }
        | Error::Unanswered { message, .. }
        | Error::Damaged { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Sleeps a random time that grows with the attempt, so racing writers spread out.
fn backoff(attempt: u32) {
    let ceiling_ms = 5u64 << attempt.min(6); // 5 ms .. 320 ms
    let jitter = u64::from(OsRng.next_u32()) % ceiling_ms;
    std::thread::sleep(Duration::from_millis(1 + jitter));
}

//! The keys writer: one thread, at the loader's low priority, that makes the management API's
//! changes to the store one at a time, so that no store I/O runs on an HTTP worker, and that
//! has the loader serve each change before it is answered.

use std::sync::mpsc::{self, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use tokio::sync::oneshot;

use heare_auth_core::Prefixes;
use heare_auth_store::Store;

use super::problem::Problem;
use crate::counts::Counts;
use crate::live::Live;
use crate::loader::LoaderHandle;
use crate::reply::Reply;
use crate::Error;

/// Changes waiting for the writer at most; past it, a change is refused (503) at once rather
/// than queued behind minutes of others.
pub const QUEUE: usize = 64;

/// What a change runs with.
pub struct Context {
    /// The store, written as the CLI writes it (and folded on a thread of its own).
    pub store: Arc<Store>,
    /// The loader, asked to serve each change made.
    pub loader: LoaderHandle,
    /// The prefixes of the secrets and ids made.
    pub prefixes: Prefixes,
    /// When keys were last used, for the keys shown in answers.
    pub counts: Arc<Counts>,
    /// The keys served: a change looks up the keys it touches there, and reads only the
    /// changes made since, not the keys file.
    pub live: Arc<Live>,
}

/// Folds the store's changes into its keys file on a `keys-fold` thread at the lowest priority,
/// unless one is still folding: the writer goes on making changes meanwhile.
fn fold(store: &Arc<Store>, folding: &mut Option<JoinHandle<()>>) {
    if folding.as_ref().is_some_and(|f| !f.is_finished()) {
        return;
    }
    let store = Arc::clone(store);
    let spawned = thread::Builder::new()
        .name("keys-fold".into())
        .spawn(move || {
            crate::loader::lower_priority();
            match store.compact() {
                Ok(folded) => log::info!(changes = folded; "keys_folded"),
                Err(e) => log::warn!(error:% = e; "keys_fold_failed"),
            }
        });
    match spawned {
        Ok(handle) => *folding = Some(handle),
        Err(e) => log::warn!(error:% = e; "keys_fold_failed"),
    }
}

impl Context {
    /// Applies `edit` to the store: a large keys file as [`Store::update_on`] does, from the
    /// keys served, reading only the changes made since; a small one as the CLI does, whole
    /// (and folded at once).
    pub fn update<E: From<heare_auth_store::Error>>(
        &self,
        edit: impl FnMut(&mut heare_auth_core::Document<'_>) -> Result<(), E>,
    ) -> Result<bool, E> {
        let served = self.live.current();
        match served.catalog() {
            Some(catalog) if catalog.file_len() > heare_auth_store::FOLD_BELOW => {
                self.store.update_on(&Served(catalog, served.next()), edit)
            }
            _ => self.store.update(edit),
        }
    }
}

/// The keys served, as a writer's base.
struct Served<'a>(&'a crate::catalog::Catalog, u64);

impl heare_auth_store::Base for Served<'_> {
    fn next(&self) -> u64 {
        self.1
    }

    fn get(&self, id: &str) -> Result<Option<heare_auth_core::KeyRecord>, heare_auth_store::Error> {
        Ok(self.0.find(id))
    }
}

/// A change to make, and its answer.
pub type Job = Box<dyn FnOnce(&Context) -> Reply + Send>;

/// A job as queued: its answer goes back to the request that asked for it.
type Queued = Box<dyn FnOnce(&Context) + Send>;

/// The running writer thread.
pub struct Writer {
    jobs: mpsc::SyncSender<Queued>,
    thread: JoinHandle<()>,
}

/// Hands changes to the writer; cheap to clone.
#[derive(Clone)]
pub struct WriterHandle(mpsc::SyncSender<Queued>);

impl Writer {
    /// Starts the `keys-writer` thread over `context`.
    pub fn start(context: Context) -> Result<Writer, Error> {
        let (jobs, received) = mpsc::sync_channel::<Queued>(QUEUE);
        let thread = thread::Builder::new()
            .name("keys-writer".into())
            .spawn(move || {
                // A change to a small keys file rewrites it: as with whole loads, requests
                // come first.
                crate::loader::lower_priority();
                let mut folding: Option<JoinHandle<()>> = None;
                for job in received {
                    job(&context);
                    if context.store.take_fold_due() {
                        fold(&context.store, &mut folding);
                    }
                }
                if let Some(folding) = folding {
                    let _ = folding.join();
                }
            })
            .map_err(|e| Error::start("start the keys writer", e))?;
        Ok(Writer { jobs, thread })
    }

    /// A handle for the request path.
    pub fn handle(&self) -> WriterHandle {
        WriterHandle(self.jobs.clone())
    }

    /// Stops the thread once every handle is dropped, after the changes queued.
    pub fn stop(self) {
        drop(self.jobs);
        let _ = self.thread.join();
    }
}

impl WriterHandle {
    /// Makes a change on the writer thread and returns its answer.
    pub async fn run(&self, job: Job) -> Reply {
        let (answer, reply) = oneshot::channel();
        let queued: Queued = Box::new(move |context| {
            let _ = answer.send(job(context));
        });
        match self.0.try_send(queued) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Problem::unavailable(format!(
                    "{QUEUE} changes are waiting to be written; retry shortly"
                ))
                .reply()
            }
            Err(TrySendError::Disconnected(_)) => {
                return Problem::unavailable("the keys writer has stopped").reply()
            }
        }
        reply
            .await
            .unwrap_or_else(|_| Problem::unavailable("the keys writer has stopped").reply())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::Loader;
    use crate::reload::Reloader;
    use heare_auth_store::StoreConfig;
    use std::future::Future;
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    fn store(dir: &tempfile::TempDir) -> Store {
        let path = dir.path().join("keys.json");
        StoreConfig::file(path.to_str().unwrap()).open().unwrap()
    }

    #[test]
    fn changes_run_one_at_a_time_and_a_full_queue_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let reloader = Reloader::load_with_retry(store(&dir), Duration::ZERO, false).unwrap();
        let reloader_live = reloader.live();
        let loader = Loader::start(reloader, None).unwrap();
        let writer = Writer::start(Context {
            store: Arc::new(store(&dir)),
            loader: loader.handle(),
            prefixes: Prefixes::default(),
            counts: Arc::new(Counts::new(false)),
            live: reloader_live,
        })
        .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // The first change holds the writer until the queue behind it is full.
        let (held, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        let handle = writer.handle();
        let first = {
            let (held, release) = (held.clone(), release.clone());
            let handle = handle.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                runtime.block_on(handle.run(Box::new(move |_| {
                    held.wait();
                    release.wait();
                    Reply::json(200, "first")
                })))
            })
        };
        held.wait();
        let queued: Vec<_> = (0..QUEUE)
            .map(|i| {
                let handle = handle.clone();
                let job: Job = Box::new(move |_| Reply::json(200, format!("{i}")));
                let answer = async move { handle.run(job).await };
                // Queued at the first poll, answered once the writer gets to it.
                let mut answer = Box::pin(answer);
                let waker = std::task::Waker::noop();
                let polled = answer
                    .as_mut()
                    .poll(&mut std::task::Context::from_waker(waker));
                assert!(polled.is_pending());
                answer
            })
            .collect();
        let refused = runtime.block_on(handle.run(Box::new(|_| Reply::json(200, "late"))));
        assert_eq!(refused.status, 503);
        assert!(
            refused.body.contains("waiting to be written"),
            "{}",
            refused.body
        );
        release.wait();
        assert_eq!(first.join().unwrap().body, "first");
        for (i, answer) in queued.into_iter().enumerate() {
            assert_eq!(runtime.block_on(answer).body, i.to_string());
        }
        drop(handle);
        writer.stop();
        loader.stop();
    }
}

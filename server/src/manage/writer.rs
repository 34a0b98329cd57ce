//! The keys writer: one thread, at the loader's low priority, that makes the management API's
//! changes to the store one at a time, so that no store I/O runs on an HTTP worker, and that
//! has the loader serve each change before it is answered.

use std::sync::mpsc::{self, TrySendError};
use std::thread::{self, JoinHandle};

use tokio::sync::oneshot;

use heare_auth_store::Store;

use super::problem::Problem;
use crate::loader::LoaderHandle;
use crate::reply::Reply;
use crate::Error;

/// Changes waiting for the writer at most; past it, a change is refused (503) at once rather
/// than queued behind minutes of others.
pub const QUEUE: usize = 64;

/// What a change runs with.
pub struct Context {
    /// The store, written as the CLI writes it.
    pub store: Store,
    /// The loader, asked to serve each change made.
    pub loader: LoaderHandle,
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
                // A change rewrites the whole file: as with reloads, requests come first.
                crate::loader::lower_priority();
                for job in received {
                    job(&context);
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

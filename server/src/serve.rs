//! Start-up, the named worker threads, and graceful shutdown on SIGTERM/SIGINT.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tiny_http::Server;

use crate::app::App;
use crate::config::Config;
use crate::keys::Keys;
use crate::Error;

/// Loads the keys, binds, serves until SIGTERM or SIGINT, then finishes requests in flight.
pub fn run(config: &Config) -> Result<(), Error> {
    let mut signals = Signals::new([SIGTERM, SIGINT])
        .map_err(|e| Error::Config(format!("cannot install signal handlers: {e}")))?;
    let keys = Keys::load_with_retry(config.store.open()?, config.startup_timeout)?;
    let server = Server::http((config.host.as_str(), config.port)).map_err(|e| {
        Error::Config(format!(
            "cannot listen on {}:{}: {e}",
            config.host, config.port
        ))
    })?;
    let address = server.server_addr().to_ip().map_or_else(
        || format!("{}:{}", config.host, config.port),
        |a| a.to_string(),
    );
    log::info!(
        keys_loaded = keys.current().len(), address = address.as_str(),
        keys_source = keys.location().as_str(), threads = config.threads;
        "startup"
    );
    crate::logging::flush();
    let app = Arc::new(App { keys });
    let server = Arc::new(server);
    let stopping = Arc::new(AtomicBool::new(false));
    let workers = (0..config.threads)
        .map(|i| {
            let (app, server, stopping) = (app.clone(), server.clone(), stopping.clone());
            thread::Builder::new()
                .name(format!("http-worker-{i}"))
                .spawn(move || work(&app, &server, &stopping))
                .map_err(|e| Error::Config(format!("cannot start worker threads: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let (stop_polling, stopped) = mpsc::channel::<()>();
    let poller = match config.refresh_interval {
        None => None,
        Some(interval) => {
            let app = app.clone();
            let spawned = thread::Builder::new()
                .name("keys-poller".into())
                .spawn(move || poll(&app, interval, &stopped));
            Some(spawned.map_err(|e| Error::Config(format!("cannot start the poller: {e}")))?)
        }
    };

    let signal = signals.forever().next().unwrap_or(SIGTERM);
    log::info!(signal = signal; "shutdown");
    stopping.store(true, Ordering::SeqCst);
    // Each unblock wakes one worker after the requests already queued; one per worker.
    for _ in &workers {
        server.unblock();
    }
    for worker in workers {
        let _ = worker.join();
    }
    drop(stop_polling);
    if let Some(poller) = poller {
        let _ = poller.join();
    }
    Ok(())
}

/// Every `interval`, reloads the keys if the stored file changed; a failure keeps the old set.
fn poll(app: &App, interval: Duration, stop: &mpsc::Receiver<()>) {
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(interval) {
        match app.keys.poll() {
            Ok(None) => {}
            Ok(Some(count)) => log::info!(keys_loaded = count, trigger = "poll"; "refresh_success"),
            Err(e) => log::error!(error:% = e, trigger = "poll"; "refresh_failed"),
        }
    }
}

fn work(app: &App, server: &Server, stopping: &AtomicBool) {
    loop {
        match server.recv() {
            Ok(mut request) => {
                let reply = app.handle(&mut request);
                // A client that hung up is not an error worth a log line per request.
                let _ = request.respond(reply.into_response());
            }
            Err(_) if stopping.load(Ordering::SeqCst) => return,
            Err(e) => log::warn!(error:% = e; "accept_failed"),
        }
    }
}

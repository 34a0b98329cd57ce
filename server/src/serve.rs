//! Start-up, serving, and graceful shutdown on SIGTERM/SIGINT.

use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::app::App;
use crate::config::Config;
use crate::counts::sync::Syncer;
use crate::counts::Counts;
use crate::loader::Loader;
use crate::manage::writer::{Context, Writer};
use crate::metrics::Stats;
use crate::reload::Reloader;
use crate::rlimit::raise_nofile;
use crate::transport::{self, Listener};
use crate::Error;

/// Loads the keys, binds, serves until SIGTERM or SIGINT, then finishes requests in flight.
pub fn run(config: &Config) -> Result<(), Error> {
    let mut signals =
        Signals::new([SIGTERM, SIGINT]).map_err(|e| Error::start("install signal handlers", e))?;
    let nofile = raise_nofile();
    let management = config.settings.management;
    let reloader =
        Reloader::load_with_retry(config.store.open()?, config.startup_timeout, management)?;
    let (keys, health) = (reloader.live(), reloader.health());
    let listener = Listener::bind(&config.host, config.port, config.limits.backlog)?;
    let address = listener.local_addr()?.to_string();
    let metrics_listener = match &config.metrics_addr {
        None => None,
        Some((host, port)) => Some(Listener::bind(host, *port, config.limits.backlog)?),
    };
    let metrics_address = match &metrics_listener {
        Some(l) => l.local_addr()?.to_string(),
        None => String::new(),
    };
    let mut limits = config.limits.clone();
    let room = nofile.connections(usize::MAX);
    let max_connections = limits.connection_cap(room);
    limits.max_connections = Some(max_connections);
    log::info!(
        keys_loaded = keys.current().len(), address = address.as_str(), management_api = management,
        keys_source = reloader.location(), threads = config.threads,
        metrics_address = metrics_address.as_str(),
        max_connections = max_connections,
        nofile_soft = nofile.soft.unwrap_or(u64::MAX), nofile_hard = nofile.hard.unwrap_or(u64::MAX);
        "startup"
    );
    if max_connections > room {
        log::warn!(max_connections = max_connections, descriptors_free = room; "max_connections_above_nofile");
    }
    crate::logging::flush();
    let loader = Loader::start(reloader, config.refresh_interval)?;
    let counts = Arc::new(Counts::new(config.counters.is_some()));
    let writer = match management {
        true => Some(Writer::start(Context {
            store: Arc::new(config.store.open()?),
            loader: loader.handle(),
            prefixes: config.settings.prefixes.clone(),
            counts: counts.clone(),
            live: keys.clone(),
        })?),
        false => None,
    };
    let stats = Arc::new(Stats::default());
    let syncer = match &config.counters {
        Some(counters) => Some(Syncer::start(counts.clone(), counters.clone(), &keys)?),
        None => None,
    };
    let app = Arc::new(App::new(
        keys,
        health,
        stats.clone(),
        config.settings.clone(),
        counts,
    ));
    let listeners = transport::Listeners {
        main: listener,
        metrics: metrics_listener,
    };
    let running = transport::start(
        listeners,
        app,
        (
            loader.handle(),
            writer.as_ref().map(Writer::handle),
            syncer.as_ref().map(Syncer::handle),
        ),
        limits,
        config.threads,
        stats,
    )?;

    let signal = signals.forever().next().unwrap_or(SIGTERM);
    log::info!(signal = signal; "shutdown");
    running.stop(config.limits.shutdown_timeout);
    if let Some(writer) = writer {
        writer.stop();
    }
    if let Some(syncer) = syncer {
        syncer.stop();
    }
    loader.stop();
    Ok(())
}

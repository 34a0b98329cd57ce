//! One client connection: hyper reads its requests, each is read within its limits and handed to
//! the synchronous handlers, and its watchdog closes it when the client is too slow.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit};

use super::watch::{Phase, Watch, Watched};
use super::Shared;
use crate::app::{Handled, Request, Route, MAX_BODY};
use crate::reply::Reply;

/// Serves one connection until the client closes it, a deadline passes, or the server stops.
/// `_slot` is this connection's place under the connection cap, released when it ends.
pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    _slot: OwnedSemaphorePermit,
    mut stopping: watch::Receiver<bool>,
) {
    let watch = Arc::new(Watch::new());
    let io = TokioIo::new(Watched {
        stream,
        watch: watch.clone(),
    });
    let service = {
        let (shared, watch) = (shared.clone(), watch.clone());
        service_fn(move |request| respond(request, peer, shared.clone(), watch.clone()))
    };
    let conn = shared.http.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        phase = watch.expired(&shared.limits) => return shared.stats.timed_out(phase),
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    // Stopping: finish the request in flight (if any) under the same deadlines, then close.
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        _ = conn.as_mut() => {}
        phase = watch.expired(&shared.limits) => shared.stats.timed_out(phase),
    }
}

async fn respond(
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
    shared: Arc<Shared>,
    watch: Arc<Watch>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    watch.set(Phase::Busy);
    let reply = answer(request, peer, &shared).await;
    watch.set(Phase::Idle);
    Ok(reply.into_response())
}

async fn answer(request: hyper::Request<Incoming>, peer: SocketAddr, shared: &Shared) -> Reply {
    let (parts, body) = request.into_parts();
    let route = match shared.metrics_only {
        false => Route::of(&parts.method, parts.uri.path()),
        true => Route::of_metrics_listener(&parts.method, parts.uri.path()),
    };
    let app = &shared.app;
    let body = if route.reads_body() {
        if let Some(reply) = app.before_body(route, &parts.headers) {
            return reply;
        }
        match read_body(body, shared).await {
            Ok(body) => body,
            Err(reply) => return reply,
        }
    } else {
        Bytes::new()
    };
    let request = Request {
        peer,
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
    };
    match app.handle(route, &request) {
        Handled::Reply(reply) => reply,
        Handled::Reload => app.refreshed(shared.loader.reload().await),
    }
}

/// Reads a request body of at most [`MAX_BODY`] bytes within the body timeout.
async fn read_body(body: Incoming, shared: &Shared) -> Result<Bytes, Reply> {
    let read = Limited::new(body, MAX_BODY).collect();
    match tokio::time::timeout(shared.limits.body_timeout, read).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(crate::app::too_large()),
        Ok(Err(e)) => {
            Err(Reply::error(400, &format!("could not read the request body: {e}")).closing())
        }
        Err(_) => {
            shared.stats.body_timeouts.fetch_add(1, Ordering::Relaxed);
            Err(Reply::error(408, "the request body did not arrive in time").closing())
        }
    }
}

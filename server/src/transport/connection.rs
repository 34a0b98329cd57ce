//! One client connection: hyper reads its requests, each is read within its limits and handed to
//! the synchronous handlers, and its watchdog closes it when the client is too slow.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::{service_fn, HttpService};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::watch::{Phase, Watch, Watched};
use super::Shared;
use crate::app::{Handled, Request, Route};
use crate::limits::LINGER;
use crate::limits::{MAX_BODY, MAX_MANAGE_BODY};
use crate::reply::Reply;

/// Serves one connection until the client closes it, a deadline passes, the connection cap
/// takes it back ([`Watch::evict`]), or the server stops.
pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    watch: Arc<Watch>,
    shared: Arc<Shared>,
    mut stopping: watch::Receiver<bool>,
) {
    let io = Watched::new(stream, watch.clone());
    let service = {
        let (shared, watch) = (shared.clone(), watch.clone());
        service_fn(move |request| respond(request, peer, shared.clone(), watch.clone()))
    };
    let mut conn = shared.http.serve_connection(TokioIo::new(io), service);
    let too_slow = tokio::select! {
        _ = &mut conn => return,
        phase = watch.expired(&shared.limits) => Some(phase),
        _ = watch.evicted() => return,
        _ = stopping.wait_for(|stop| *stop) => None,
    };
    if too_slow.is_none() {
        // Stopping: finish the request in flight (if any) under the same deadlines, then close.
        Pin::new(&mut conn).graceful_shutdown();
    }
    let phase = match too_slow {
        Some(phase) => phase,
        None => tokio::select! {
            _ = &mut conn => return,
            phase = watch.expired(&shared.limits) => phase,
            _ = watch.evicted() => return,
        },
    };
    cut_off(conn, phase, &shared).await;
}

/// The answer to a request whose headers did not arrive within `HEADER_TIMEOUT`.
const HEADER_TIMEOUT_BODY: &str = r#"{"error":"the request headers did not arrive in time"}"#;

/// Ends a connection whose client was too slow. A request whose headers did not arrive in
/// time is answered 408 first, unless part of an earlier response is still unsent (its client
/// is not reading, and a 408 would land inside that response); an idle connection just closes.
async fn cut_off<S>(conn: http1::Connection<TokioIo<Watched>, S>, phase: Phase, shared: &Shared)
where
    S: HttpService<Incoming, ResBody = Full<Bytes>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    super::timed_out(&shared.stats, phase);
    let io = conn.into_parts().io.into_inner();
    if phase != Phase::Head || io.unsent {
        return;
    }
    let reply = format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nserver: heare-auth\r\n\
         connection: close\r\ncontent-length: {}\r\ndate: {}\r\n\r\n{HEADER_TIMEOUT_BODY}",
        HEADER_TIMEOUT_BODY.len(),
        httpdate::fmt_http_date(std::time::SystemTime::now()),
    );
    // Nothing is waiting to be sent, so the socket takes these few bytes at once; should it
    // not, the client gets the close alone.
    if !matches!(io.stream.try_write(reply.as_bytes()), Ok(n) if n == reply.len()) {
        return;
    }
    // Close gracefully: the client may still be sending, and closing a socket with unread
    // bytes resets it, which may discard the 408 before the client reads it.
    let stream = io.stream;
    let _ = socket2::SockRef::from(&stream).shutdown(std::net::Shutdown::Write);
    let drain = async {
        let mut sink = [0u8; 1024];
        loop {
            if stream.readable().await.is_err() {
                return;
            }
            match stream.try_read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

async fn respond(
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
    shared: Arc<Shared>,
    watch: Arc<Watch>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    watch.then(Phase::Busy);
    let id = crate::request_id::of(request.headers());
    let mut reply = answer(request, peer, &id, &shared, &watch).await;
    reply.headers.push((crate::request_id::HEADER, id));
    watch.set(Phase::Idle);
    Ok(reply.into_response())
}

async fn answer(
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
    request_id: &str,
    shared: &Shared,
    watch: &Watch,
) -> Reply {
    let (parts, body) = request.into_parts();
    if let Some(refused) = super::strict::refuse(&parts) {
        return refused;
    }
    let route = match shared.metrics_only {
        false => Route::of(parts.method.as_str(), parts.uri.path()),
        true => Route::of_metrics_listener(parts.method.as_str(), parts.uri.path()),
    };
    let app = &shared.app;
    let reads_body = app.reads_body(route);
    let early = match reads_body {
        true => app.before_body(route, &parts.headers),
        false => None,
    };
    if let Some(reply) = early {
        return if reply.close || discard(body, shared, watch).await {
            reply
        } else {
            reply.closing()
        };
    }
    let (body, whole) = if reads_body {
        match read_body(body, route, shared, watch).await {
            Ok(body) => (body, true),
            Err(reply) => return reply,
        }
    } else {
        (Bytes::new(), discard(body, shared, watch).await)
    };
    let request = Request {
        peer,
        request_id,
        authority: parts.uri.authority().map(|a| a.as_str()),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
    };
    let reply = match app.handle(route, &request) {
        Handled::Reply(reply) => reply,
        Handled::Reload => app.refreshed(shared.loader.reload().await),
        Handled::Write(job) => match &shared.writer {
            Some(writer) => writer.run(job).await,
            None => crate::manage::Problem::unavailable("the keys writer is not running").reply(),
        },
        Handled::Count(job) => {
            let busy = || {
                crate::manage::Problem::unavailable("the shared counts are busy; retry shortly")
                    .reply()
            };
            match &shared.counts {
                Some(counts) => counts.run(job, busy).await,
                None => busy(),
            }
        }
    };
    if whole {
        reply
    } else {
        reply.closing()
    }
}

/// Reads and drops a body the answer does not need, within the limits of [`read_body`], so that
/// the connection can carry the next request; false when it could not be read whole, and the
/// answer must close the connection (hyper closes it anyway, unannounced, when a body is left
/// unread, and a client that sent its next request meanwhile would get no answer).
async fn discard(body: Incoming, shared: &Shared, watch: &Watch) -> bool {
    body.is_end_stream()
        || read_body(body, Route::NotFound, shared, watch)
            .await
            .is_ok()
}

/// Reads a request body of at most [`MAX_BODY`] bytes ([`MAX_MANAGE_BODY`] for a management
/// write) within the body timeout.
async fn read_body(
    body: Incoming,
    route: Route,
    shared: &Shared,
    watch: &Watch,
) -> Result<Bytes, Reply> {
    let limit = match route {
        Route::Manage(_) => MAX_MANAGE_BODY,
        _ => MAX_BODY,
    };
    let read = Limited::new(body, limit).collect();
    watch.then(Phase::Body);
    let read = tokio::time::timeout(shared.limits.body_timeout, read).await;
    watch.then(Phase::Busy);
    match read {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(match route {
            Route::Manage(_) => crate::manage::Problem::too_large(MAX_MANAGE_BODY)
                .reply()
                .closing(),
            _ => crate::app::too_large(),
        }),
        Ok(Err(e)) => {
            Err(Reply::error(400, &format!("could not read the request body: {e}")).closing())
        }
        Err(_) => {
            shared.stats.body_timeouts.fetch_add(1, Ordering::Relaxed);
            Err(Reply::error(408, "the request body did not arrive in time").closing())
        }
    }
}

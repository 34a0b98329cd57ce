//! What `/metrics` exposes, in the Prometheus text format. Verifications and their latency are
//! counted per worker thread, each in counters only it writes, so counting never contends;
//! a scrape adds them up.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use heare_auth_core::Code;
use parking_lot::Mutex;

use crate::health::Trigger;

/// The routes whose verifications are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    /// `POST /verify`.
    Verify = 0,
    /// `/auth`.
    Auth = 1,
}

const ROUTES: [&str; 2] = ["/verify", "/auth"];

/// Upper bounds of the latency histogram's buckets, in seconds (a handler takes microseconds).
const BUCKETS: [f64; 10] = [
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.025,
];

/// One thread's counters.
#[derive(Default)]
struct Counters {
    /// Per route: one count per code, at the code's [`Code::position`].
    verifications: [[AtomicU64; Code::ALL.len()]; ROUTES.len()],
    /// Per route: one count per bucket, then the count above the last bucket.
    latency: [[AtomicU64; BUCKETS.len() + 1]; ROUTES.len()],
    latency_ns: [AtomicU64; ROUTES.len()],
    /// Per route: secrets refused for a wrong checksum, before any lookup (also counted as
    /// `NOT_FOUND` verifications, which is what they were answered).
    refused_checksum: [AtomicU64; ROUTES.len()],
}

/// The server's metrics: per-thread counters, and what the transport and the keys report.
pub struct Metrics {
    /// Tells this `Metrics` apart in a thread's list of counters.
    id: usize,
    threads: Mutex<Vec<Arc<Counters>>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        Metrics {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            threads: Mutex::new(Vec::new()),
        }
    }
}

thread_local! {
    /// This thread's counters, per `Metrics` (a process holds one; tests hold several).
    static MINE: RefCell<Vec<(usize, Arc<Counters>)>> = const { RefCell::new(Vec::new()) };
}

impl Metrics {
    /// Counts one verification on `route` that ended with `code` and took `took`.
    pub fn verification(&self, route: Counted, code: Code, took: Duration) {
        let (route, code) = (route as usize, code.position());
        self.with_mine(|c| {
            c.verifications[route][code].fetch_add(1, Ordering::Relaxed);
            let seconds = took.as_secs_f64();
            let bucket = BUCKETS
                .iter()
                .position(|&le| seconds <= le)
                .unwrap_or(BUCKETS.len());
            c.latency[route][bucket].fetch_add(1, Ordering::Relaxed);
            let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
            c.latency_ns[route].fetch_add(ns, Ordering::Relaxed);
        });
    }

    /// Counts one secret on `route` refused for its checksum before any lookup, besides its
    /// verification.
    pub fn refused_checksum(&self, route: Counted) {
        let route = route as usize;
        self.with_mine(|c| {
            c.refused_checksum[route].fetch_add(1, Ordering::Relaxed);
        });
    }

    fn with_mine(&self, f: impl FnOnce(&Counters)) {
        let id = self.id;
        MINE.with_borrow_mut(|mine| {
            if let Some((_, counters)) = mine.iter().find(|(m, _)| *m == id) {
                return f(counters);
            }
            let counters = Arc::new(Counters::default());
            self.threads.lock().push(counters.clone());
            f(&counters);
            mine.push((id, counters));
        });
    }

    /// The verification counts and the latency histogram, summed over the threads.
    fn write_verifications(&self, out: &mut String) {
        let threads = self.threads.lock().clone();
        let sum =
            |read: &dyn Fn(&Counters) -> u64| -> u64 { threads.iter().map(|c| read(c)).sum() };
        family(
            out,
            "heare_auth_verifications_total",
            "counter",
            "Verifications by route and code.",
        );
        for (r, route) in ROUTES.iter().enumerate() {
            for code in Code::ALL {
                let n = sum(&|t| t.verifications[r][code.position()].load(Ordering::Relaxed));
                let _ = writeln!(
                    out,
                    "heare_auth_verifications_total{{route=\"{route}\",code=\"{}\"}} {n}",
                    code.as_str()
                );
            }
        }
        family(
            out,
            "heare_auth_verification_duration_seconds",
            "histogram",
            "Time the handler took to answer a verification, in seconds.",
        );
        for (r, route) in ROUTES.iter().enumerate() {
            let mut cumulative = 0;
            for (b, le) in BUCKETS
                .iter()
                .map(|b| b.to_string())
                .chain(["+Inf".into()])
                .enumerate()
            {
                cumulative += sum(&|t| t.latency[r][b].load(Ordering::Relaxed));
                let _ = writeln!(
                    out,
                    "heare_auth_verification_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let ns = sum(&|t| t.latency_ns[r].load(Ordering::Relaxed));
            let _ = writeln!(
                out,
                "heare_auth_verification_duration_seconds_sum{{route=\"{route}\"}} {}",
                ns as f64 / 1e9
            );
            let _ = writeln!(
                out,
                "heare_auth_verification_duration_seconds_count{{route=\"{route}\"}} {cumulative}"
            );
        }
        family(
            out,
            "heare_auth_refused_before_lookup_total",
            "counter",
            "Verifications refused before any lookup, by route and reason: checksum, a secret of \
             the checksummed format whose checksum is wrong (a typo or a guess). Each is also a \
             NOT_FOUND in heare_auth_verifications_total, the answer it got.",
        );
        for (r, route) in ROUTES.iter().enumerate() {
            let n = sum(&|t| t.refused_checksum[r].load(Ordering::Relaxed));
            let _ = writeln!(
                out,
                "heare_auth_refused_before_lookup_total{{route=\"{route}\",reason=\"checksum\"}} {n}"
            );
        }
    }
}

/// What the rest of the server reports at a scrape.
pub struct Readings {
    /// Keys being served.
    pub keys_loaded: usize,
    /// Unix seconds of the last successful load of a key set.
    pub last_load_secs: Option<f64>,
    /// Failed reloads by trigger: the periodic check, then `/refresh`.
    pub reload_failures: [(Trigger, u64); 2],
    /// Connections open now.
    pub open_connections: u64,
    /// Connections or requests the transport cut off, by timeout, and the times it reached
    /// the connection cap.
    pub rejections: [(&'static str, u64); 9],
    /// `accept` calls that failed.
    pub accept_errors: u64,
    /// Whether the shared counts (Redis) answer; `None` when there are none.
    pub redis_up: Option<bool>,
    /// Replicas sharing the counts, as last heard.
    pub replicas: i64,
}

impl Metrics {
    /// The whole exposition.
    pub fn render(&self, snapshot: &Readings) -> String {
        let mut out = String::with_capacity(8192);
        self.write_verifications(&mut out);
        gauge(
            &mut out,
            "heare_auth_keys_loaded",
            "Keys being served.",
            snapshot.keys_loaded as f64,
        );
        if let Some(up) = snapshot.redis_up {
            gauge(
                &mut out,
                "heare_auth_redis_up",
                "1 when the shared counts (REDIS_URL) answer, 0 while each replica counts alone.",
                f64::from(u8::from(up)),
            );
            gauge(
                &mut out,
                "heare_auth_redis_replicas",
                "Replicas that exchanged counts with Redis in the last 3 seconds, as last heard.",
                snapshot.replicas as f64,
            );
        }
        if let Some(t) = snapshot.last_load_secs {
            gauge(
                &mut out,
                "heare_auth_last_load_timestamp_seconds",
                "Unix time of the last successful load of the keys.",
                t,
            );
        }
        family(
            &mut out,
            "heare_auth_reload_failures_total",
            "counter",
            "Reloads of the keys that failed, by trigger; the keys served stayed as they were.",
        );
        for (trigger, n) in snapshot.reload_failures {
            let _ = writeln!(
                out,
                "heare_auth_reload_failures_total{{trigger=\"{}\"}} {n}",
                trigger.as_str()
            );
        }
        gauge(
            &mut out,
            "heare_auth_open_connections",
            "HTTP connections open now.",
            snapshot.open_connections as f64,
        );
        family(
            &mut out,
            "heare_auth_transport_rejections_total",
            "counter",
            "Connections and requests the transport cut off, by reason: a timeout \
             (first_request_timeout, header_timeout, body_timeout, idle_timeout); connections \
             closed at the cap to make room for a waiting client (evicted_idle, evicted_slow: \
             headers or body arriving for 0.5 s or more); new connections closed at once from an \
             address over MAX_CONNECTIONS_PER_PEER (peer_cap), or, at the cap, from one holding \
             half the connections while others waited (peer_share); connection_cap: times all MAX_CONNECTIONS \
             slots were taken and accepting paused until one freed (not the connections that \
             waited).",
        );
        for (reason, n) in snapshot.rejections {
            let _ = writeln!(
                out,
                "heare_auth_transport_rejections_total{{reason=\"{reason}\"}} {n}"
            );
        }
        family(
            &mut out,
            "heare_auth_accept_errors_total",
            "counter",
            "Calls to accept that failed (out of descriptors, say); the server goes on accepting.",
        );
        let _ = writeln!(
            out,
            "heare_auth_accept_errors_total {}",
            snapshot.accept_errors
        );
        family(
            &mut out,
            "heare_auth_build_info",
            "gauge",
            "The running version (always 1).",
        );
        let _ = writeln!(
            out,
            "heare_auth_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    family(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

/// What the transport counted, for `/metrics`: connections it holds, clients it cut off, and
/// what held back accepting.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections open now.
    pub open: AtomicUsize,
    /// New connections closed for sending no request within `FIRST_REQUEST_TIMEOUT`.
    pub first_request_timeouts: AtomicU64,
    /// Connections closed for sitting idle past `IDLE_TIMEOUT`.
    pub idle_timeouts: AtomicU64,
    /// Connections cut off because a request's headers took longer than `HEADER_TIMEOUT`
    /// (answered 408 first, unless a response was still unsent).
    pub header_timeouts: AtomicU64,
    /// Requests answered 408 because the body took longer than `BODY_TIMEOUT`.
    pub body_timeouts: AtomicU64,
    /// Times an accept loop found every `MAX_CONNECTIONS` slot taken and paused accepting
    /// until one freed. Not the connections that waited in the backlog meanwhile: the kernel
    /// holds those, unseen.
    pub at_capacity: AtomicU64,
    /// Idle connections closed at the cap to make room for a waiting client.
    pub evicted_idle: AtomicU64,
    /// Connections closed at the cap whose request's headers or body were arriving slowly.
    pub evicted_slow: AtomicU64,
    /// Connections closed at once because their peer held `MAX_CONNECTIONS_PER_PEER`.
    pub peer_cap: AtomicU64,
    /// Connections closed at once, at the cap, because their peer held half the connections
    /// or more, none could be closed to make room, and other clients waited behind them.
    pub peer_share: AtomicU64,
    /// `accept` calls that failed, for whatever reason.
    pub accept_errors: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Readings {
        Readings {
            keys_loaded: 3,
            redis_up: Some(false),
            replicas: 2,
            last_load_secs: Some(1_795_564_800.5),
            reload_failures: [(Trigger::Poll, 2), (Trigger::Refresh, 0)],
            open_connections: 4,
            rejections: [
                ("first_request_timeout", 11),
                ("header_timeout", 1),
                ("body_timeout", 3),
                ("idle_timeout", 5),
                ("evicted_idle", 13),
                ("evicted_slow", 17),
                ("peer_cap", 19),
                ("peer_share", 23),
                ("connection_cap", 2),
            ],
            accept_errors: 7,
        }
    }

    #[test]
    fn counts_from_every_thread_add_up() {
        let metrics = Arc::new(Metrics::default());
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let metrics = metrics.clone();
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        metrics.verification(
                            Counted::Verify,
                            Code::Valid,
                            Duration::from_micros(7),
                        );
                    }
                    metrics.verification(Counted::Auth, Code::Disabled, Duration::from_millis(3));
                    metrics.refused_checksum(Counted::Auth);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = metrics.render(&snapshot());
        for line in [
            r#"heare_auth_verifications_total{route="/verify",code="VALID"} 30"#,
            r#"heare_auth_verifications_total{route="/auth",code="DISABLED"} 3"#,
            r#"heare_auth_verifications_total{route="/auth",code="VALID"} 0"#,
            r#"heare_auth_verification_duration_seconds_bucket{route="/verify",le="0.000005"} 0"#,
            r#"heare_auth_verification_duration_seconds_bucket{route="/verify",le="0.00001"} 30"#,
            r#"heare_auth_verification_duration_seconds_bucket{route="/auth",le="0.001"} 0"#,
            r#"heare_auth_verification_duration_seconds_bucket{route="/auth",le="0.005"} 3"#,
            r#"heare_auth_verification_duration_seconds_bucket{route="/auth",le="+Inf"} 3"#,
            r#"heare_auth_verification_duration_seconds_count{route="/verify"} 30"#,
            "# TYPE heare_auth_refused_before_lookup_total counter",
            r#"heare_auth_refused_before_lookup_total{route="/verify",reason="checksum"} 0"#,
            r#"heare_auth_refused_before_lookup_total{route="/auth",reason="checksum"} 3"#,
            "heare_auth_keys_loaded 3",
            "heare_auth_redis_up 0",
            "heare_auth_redis_replicas 2",
            "heare_auth_last_load_timestamp_seconds 1795564800.5",
            r#"heare_auth_reload_failures_total{trigger="poll"} 2"#,
            "heare_auth_open_connections 4",
            r#"heare_auth_transport_rejections_total{reason="idle_timeout"} 5"#,
            r#"heare_auth_build_info{version="0.1.0"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        // A second Metrics on the same threads counts apart.
        let other = Metrics::default();
        other.verification(Counted::Verify, Code::Valid, Duration::ZERO);
        assert!(other
            .render(&snapshot())
            .contains(r#"heare_auth_verifications_total{route="/verify",code="VALID"} 1"#));
    }

    #[test]
    fn transport_counters_are_counters_by_reason() {
        let text = Metrics::default().render(&snapshot());
        for line in [
            "# TYPE heare_auth_transport_rejections_total counter",
            r#"heare_auth_transport_rejections_total{reason="header_timeout"} 1"#,
            r#"heare_auth_transport_rejections_total{reason="body_timeout"} 3"#,
            r#"heare_auth_transport_rejections_total{reason="idle_timeout"} 5"#,
            r#"heare_auth_transport_rejections_total{reason="connection_cap"} 2"#,
            r#"heare_auth_transport_rejections_total{reason="first_request_timeout"} 11"#,
            r#"heare_auth_transport_rejections_total{reason="evicted_idle"} 13"#,
            r#"heare_auth_transport_rejections_total{reason="evicted_slow"} 17"#,
            r#"heare_auth_transport_rejections_total{reason="peer_cap"} 19"#,
            r#"heare_auth_transport_rejections_total{reason="peer_share"} 23"#,
            "# HELP heare_auth_accept_errors_total Calls to accept that failed (out of descriptors, say); the server goes on accepting.",
            "# TYPE heare_auth_accept_errors_total counter",
            "heare_auth_accept_errors_total 7",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        // Each family's HELP is one line: the exposition format has no continuation lines.
        let help = text
            .lines()
            .find(|l| l.starts_with("# HELP heare_auth_transport_rejections_total "))
            .unwrap();
        assert!(
            help.ends_with("(not the connections that waited)."),
            "{help}"
        );
    }
}

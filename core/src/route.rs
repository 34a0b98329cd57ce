//! The route table: where a request goes, from its method and path alone, the same for the
//! server and for an edge worker.

/// The methods `/verify` and `/refresh` allow: the value of a 405's `Allow`.
const POST: &str = "POST";
/// The methods `/health`, `/ready` and `/metrics` allow: the value of a 405's `Allow`.
const GET_HEAD: &str = "GET, HEAD";

/// Where a request goes, decided from its method and path alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `POST /verify`.
    Verify,
    /// `POST /refresh`.
    Refresh,
    /// `/auth` and any path under it, any method: forward authentication for proxies.
    Auth,
    /// `GET /health`: alive.
    Health,
    /// `GET /ready`: keys loaded and the store read recently.
    Ready,
    /// `GET /metrics`; `public` on the `METRICS_ADDR` listener, loopback-only on the main one.
    Metrics {
        /// Whether any peer may read them.
        public: bool,
    },
    /// A known path with another method; the methods it allows.
    MethodNotAllowed(&'static str),
    /// Any other path.
    NotFound,
}

impl Route {
    /// The route table. `method` is the request's method as sent (methods are case-sensitive),
    /// `path` its path without the query.
    pub fn of(method: &str, path: &str) -> Route {
        match (method, path) {
            ("POST", "/verify") => Route::Verify,
            ("POST", "/refresh") => Route::Refresh,
            ("GET" | "HEAD", "/health") => Route::Health,
            ("GET" | "HEAD", "/ready") => Route::Ready,
            ("GET" | "HEAD", "/metrics") => Route::Metrics { public: false },
            // Envoy's ext_authz appends the original path to its path prefix.
            (_, p) if p == "/auth" || p.starts_with("/auth/") => Route::Auth,
            (_, "/verify" | "/refresh") => Route::MethodNotAllowed(POST),
            (_, "/health" | "/ready" | "/metrics") => Route::MethodNotAllowed(GET_HEAD),
            _ => Route::NotFound,
        }
    }

    /// The route table of the `METRICS_ADDR` listener: `/metrics`, for any peer.
    pub fn of_metrics_listener(method: &str, path: &str) -> Route {
        match (method, path) {
            ("GET" | "HEAD", "/metrics") => Route::Metrics { public: true },
            (_, "/metrics") => Route::MethodNotAllowed(GET_HEAD),
            _ => Route::NotFound,
        }
    }

    /// Whether the handler reads the request body (the transport reads it first, within the
    /// body limit and timeout).
    pub fn reads_body(self) -> bool {
        self == Route::Verify
    }

    /// The route's name, as the shared vectors and the WebAssembly package spell it:
    /// `verify`, `refresh`, `auth`, `health`, `ready`, `metrics`, `method_not_allowed` or
    /// `not_found`.
    pub fn name(self) -> &'static str {
        match self {
            Route::Verify => "verify",
            Route::Refresh => "refresh",
            Route::Auth => "auth",
            Route::Health => "health",
            Route::Ready => "ready",
            Route::Metrics { .. } => "metrics",
            Route::MethodNotAllowed(_) => "method_not_allowed",
            Route::NotFound => "not_found",
        }
    }

    /// The value of the `Allow` header of a 405; `None` for any other route.
    pub fn allow(self) -> Option<&'static str> {
        match self {
            Route::MethodNotAllowed(allow) => Some(allow),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_goes_wherever_get_goes() {
        for path in ["/health", "/ready", "/metrics"] {
            assert_eq!(Route::of("HEAD", path), Route::of("GET", path), "{path}");
        }
        assert_eq!(Route::of("HEAD", "/verify"), Route::MethodNotAllowed(POST));
    }

    #[test]
    fn methods_are_case_sensitive_and_paths_exact() {
        assert_eq!(
            Route::of("get", "/health"),
            Route::MethodNotAllowed(GET_HEAD)
        );
        assert_eq!(Route::of("GET", "/health/"), Route::NotFound);
        assert_eq!(Route::of("GET", "/Auth"), Route::NotFound);
        assert_eq!(Route::of("GET", "/authz"), Route::NotFound);
        assert_eq!(Route::of("DELETE", "/auth/x/y"), Route::Auth);
    }

    #[test]
    fn the_metrics_listener_serves_metrics_alone() {
        assert_eq!(
            Route::of_metrics_listener("HEAD", "/metrics"),
            Route::Metrics { public: true }
        );
        assert_eq!(
            Route::of_metrics_listener("POST", "/metrics").allow(),
            Some(GET_HEAD)
        );
        for path in ["/health", "/verify", "/auth"] {
            assert_eq!(Route::of_metrics_listener("GET", path), Route::NotFound);
        }
    }
}

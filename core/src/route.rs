//! The route table: where a request goes, from its method and path alone, the same for the
//! server and for an edge worker.

/// The methods `/verify` and `/refresh` allow: the value of a 405's `Allow`.
const POST: &str = "POST";
/// The methods `/health`, `/ready` and `/metrics` allow: the value of a 405's `Allow`.
const GET_HEAD: &str = "GET, HEAD";
/// The methods `/keys` allows.
const KEYS: &str = "GET, HEAD, POST";
/// The methods `/keys/{id}` allows.
const KEY: &str = "GET, HEAD, PATCH, DELETE";

/// An operation of the management API; the key's id is the path's second segment
/// ([`key_id_segment`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Manage {
    /// `GET /keys`: a page of keys.
    List,
    /// `POST /keys`: a new key.
    Create,
    /// `GET /keys/{id}`.
    Show,
    /// `PATCH /keys/{id}`: name, metadata, scopes, expiry, rate limit.
    Update,
    /// `DELETE /keys/{id}`.
    Delete,
    /// `POST /keys/{id}/rotate`.
    Rotate,
    /// `POST /keys/{id}/disable`.
    Disable,
    /// `POST /keys/{id}/enable`.
    Enable,
    /// `GET /keys/{id}/usage`: when the key was last used, and how much.
    Usage,
    /// A management path with another method; the methods it allows.
    MethodNotAllowed(&'static str),
}

impl Manage {
    /// The management table: `None` for a path outside `/keys`.
    fn of(method: &str, path: &str) -> Option<Manage> {
        let rest = path.strip_prefix("/keys")?;
        if rest.is_empty() {
            return Some(match method {
                "GET" | "HEAD" => Manage::List,
                "POST" => Manage::Create,
                _ => Manage::MethodNotAllowed(KEYS),
            });
        }
        let (_, action) = split_key_path(rest.strip_prefix('/')?)?;
        Some(match (method, action) {
            ("GET" | "HEAD", None) => Manage::Show,
            ("PATCH", None) => Manage::Update,
            ("DELETE", None) => Manage::Delete,
            (_, None) => Manage::MethodNotAllowed(KEY),
            ("POST", Some("rotate")) => Manage::Rotate,
            ("POST", Some("disable")) => Manage::Disable,
            ("POST", Some("enable")) => Manage::Enable,
            (_, Some("rotate" | "disable" | "enable")) => Manage::MethodNotAllowed(POST),
            ("GET" | "HEAD", Some("usage")) => Manage::Usage,
            (_, Some("usage")) => Manage::MethodNotAllowed(GET_HEAD),
            _ => return None,
        })
    }

    /// Whether it changes the store.
    pub fn writes(self) -> bool {
        matches!(
            self,
            Manage::Create
                | Manage::Update
                | Manage::Delete
                | Manage::Rotate
                | Manage::Disable
                | Manage::Enable
        )
    }
}

/// `{id}` and the action after it of the part of a path after `/keys/`; `None` when the id is
/// empty or more segments follow.
fn split_key_path(rest: &str) -> Option<(&str, Option<&str>)> {
    let (id, action) = match rest.split_once('/') {
        Some((id, action)) if !action.contains('/') => (id, Some(action)),
        Some(_) => return None,
        None => (rest, None),
    };
    (!id.is_empty()).then_some((id, action))
}

/// The `{id}` segment of a management path (`/keys/{id}` or `/keys/{id}/rotate`), as sent
/// (percent-encoded); `None` for any other path.
pub fn key_id_segment(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/keys/")?;
    split_key_path(rest).map(|(id, _)| id)
}

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
    /// The management API: `/keys` and the paths under it, served only with
    /// `MANAGEMENT_API=1` (404 otherwise, whatever the method).
    Manage(Manage),
    /// `GET /openapi.yaml`: the HTTP contract.
    OpenApi,
    /// A known path with another method; the methods it allows.
    MethodNotAllowed(&'static str),
    /// Any other path.
    NotFound,
}

impl Route {
    /// The route table. `method` is the request's method as sent (methods are case-sensitive),
    /// `path` its path without the query.
    pub fn of(method: &str, path: &str) -> Route {
        if let Some(op) = Manage::of(method, path) {
            return Route::Manage(op);
        }
        match (method, path) {
            ("POST", "/verify") => Route::Verify,
            ("POST", "/refresh") => Route::Refresh,
            ("GET" | "HEAD", "/health") => Route::Health,
            ("GET" | "HEAD", "/ready") => Route::Ready,
            ("GET" | "HEAD", "/metrics") => Route::Metrics { public: false },
            ("GET" | "HEAD", "/openapi.yaml") => Route::OpenApi,
            // Envoy's ext_authz appends the original path to its path prefix.
            (_, p) if p == "/auth" || p.starts_with("/auth/") => Route::Auth,
            (_, "/verify" | "/refresh") => Route::MethodNotAllowed(POST),
            (_, "/health" | "/ready" | "/metrics" | "/openapi.yaml") => {
                Route::MethodNotAllowed(GET_HEAD)
            }
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
        match self {
            Route::Verify => true,
            Route::Manage(op) => op.writes(),
            _ => false,
        }
    }

    /// The route's name, as the shared vectors and the WebAssembly package spell it:
    /// `verify`, `refresh`, `auth`, `health`, `ready`, `metrics`, `manage`, `openapi`,
    /// `method_not_allowed` or `not_found`.
    pub fn name(self) -> &'static str {
        match self {
            Route::Verify => "verify",
            Route::Refresh => "refresh",
            Route::Auth => "auth",
            Route::Health => "health",
            Route::Ready => "ready",
            Route::Metrics { .. } => "metrics",
            Route::Manage(_) => "manage",
            Route::OpenApi => "openapi",
            Route::MethodNotAllowed(_) => "method_not_allowed",
            Route::NotFound => "not_found",
        }
    }

    /// The value of the `Allow` header of a 405; `None` for any other route (a management
    /// path's methods are [`Manage::MethodNotAllowed`]'s, for the server to send when it serves
    /// the management API).
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
    fn the_management_table_knows_each_operation_and_its_methods() {
        let cases = [
            ("GET", "/keys", Manage::List),
            ("HEAD", "/keys", Manage::List),
            ("POST", "/keys", Manage::Create),
            ("PUT", "/keys", Manage::MethodNotAllowed(KEYS)),
            ("GET", "/keys/key_1", Manage::Show),
            ("PATCH", "/keys/key_1", Manage::Update),
            ("DELETE", "/keys/key_1", Manage::Delete),
            ("POST", "/keys/key_1", Manage::MethodNotAllowed(KEY)),
            ("POST", "/keys/key_1/rotate", Manage::Rotate),
            ("POST", "/keys/key_1/disable", Manage::Disable),
            ("POST", "/keys/key_1/enable", Manage::Enable),
            ("GET", "/keys/key_1/rotate", Manage::MethodNotAllowed(POST)),
            ("GET", "/keys/key_1/usage", Manage::Usage),
            ("HEAD", "/keys/key_1/usage", Manage::Usage),
            (
                "POST",
                "/keys/key_1/usage",
                Manage::MethodNotAllowed(GET_HEAD),
            ),
        ];
        for (method, path, op) in cases {
            assert_eq!(
                Route::of(method, path),
                Route::Manage(op),
                "{method} {path}"
            );
        }
        for path in [
            "/keys/",
            "/keys//rotate",
            "/keys/a/b/c",
            "/keys/a/undo",
            "/keysx",
        ] {
            assert_eq!(Route::of("GET", path), Route::NotFound, "{path}");
            assert_eq!(Route::of("POST", path), Route::NotFound, "{path}");
        }
        assert_eq!(key_id_segment("/keys/key%2F1/rotate"), Some("key%2F1"));
        assert_eq!(key_id_segment("/keys/key_1"), Some("key_1"));
        assert_eq!(key_id_segment("/keys"), None);
        assert!(Route::of("PATCH", "/keys/k").reads_body());
        assert!(!Route::of("GET", "/keys/k").reads_body());
        // Off by default: the server's answer, and so the route's, has no `Allow`.
        assert_eq!(Route::of("PUT", "/keys/k").allow(), None);
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

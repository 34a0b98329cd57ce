//! heare-auth behind real proxies: nginx (`auth_request`) and Caddy (`forward_auth`) run the
//! recipes of deploy/proxies/ on loopback, in front of an upstream that echoes what reached it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use heare_auth_tests::{read_head, read_response, Head, RawResponse, Server, TempDir};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const READ: &str = "sec_0proxyReadOnly";
const DISABLED: &str = "sec_0proxyDisabled";
const EXPIRED: &str = "sec_0proxyExpired";
const NAMED: &str = "sec_0proxyNotAscii";
const ROTATED: &str = "sec_0proxyRotatedNew";
const ROTATED_OLD: &str = "sec_0proxyRotatedOld";
const LIMITED: &str = "sec_0proxyLimited";
/// The requests `LIMITED` may make (in an hour, so none comes back during a test).
const LIMIT: usize = 3;

const REALM: &str = r#"Bearer realm="heare-auth""#;
const INVALID: &str = r#"Bearer realm="heare-auth", error="invalid_token""#;
const NO_ADMIN: &str = r#"Bearer realm="heare-auth", error="insufficient_scope", scope="admin""#;

fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The keys file: one key of each kind a proxy has to tell apart.
fn keys_file(dir: &TempDir) -> PathBuf {
    let keys = json!({"keys": [
        {"id": "key_0Read", "secret_hash": sha256_hex(READ), "name": "Reader",
         "scopes": ["read"], "metadata": {"team": "edge", "tier": 2}},
        {"id": "key_0Off", "secret_hash": sha256_hex(DISABLED), "name": "Off",
         "scopes": ["read"], "disabled": true},
        {"id": "key_0Old", "secret_hash": sha256_hex(EXPIRED), "name": "Old",
         "scopes": ["read"], "expires_at": "2020-01-01"},
        {"id": "key_0Named", "secret_hash": sha256_hex(NAMED), "name": "Zoë's ✓ service",
         "scopes": ["read", "write"]},
        {"id": "key_0Rotated", "secret_hash": sha256_hex(ROTATED), "name": "Rotated",
         "previous_secret_hash": sha256_hex(ROTATED_OLD),
         "previous_expires_at": "2099-01-01T00:00:00Z"},
        {"id": "key_0Limited", "secret_hash": sha256_hex(LIMITED), "name": "Limited",
         "scopes": ["read"], "rate_limit": {"requests": LIMIT, "per_seconds": 3600}},
    ]});
    let path = dir.path("keys.json");
    std::fs::write(&path, keys.to_string()).unwrap();
    path
}

/// The upstream API: answers every request 200 with what it received, as JSON.
struct Upstream {
    port: u16,
    served: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopped) = (served.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let count = count.clone();
                thread::spawn(move || echo(stream, &count));
            }
        });
        Upstream { port, served, stop }
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads one request and answers it with `{"method", "path", "headers": [[name, value]...],
/// "body"}`, every header as it arrived (duplicates too), then closes the connection. Counts the
/// request before answering, so that a client that has the answer sees it counted.
fn echo(stream: TcpStream, served: &AtomicUsize) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let Some(Head { start, headers }) = read_head(&mut reader)? else {
        return Ok(());
    };
    let mut parts = start.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(std::io::Error::other)?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = find("content-length").and_then(|v| v.parse().ok()) {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    }
    let answer = json!({
        "method": method,
        "path": path,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    })
    .to_string();
    served.fetch_add(1, Ordering::SeqCst);
    let mut stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    )?;
    stream.flush()
}

/// What the upstream received, as it echoed it.
struct Echoed {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Echoed {
    fn parse(response: &RawResponse) -> Echoed {
        let v: Value = serde_json::from_str(&response.body)
            .unwrap_or_else(|_| panic!("not the upstream's echo: {response:?}"));
        let headers = v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| {
                let text = |i: usize| pair[i].as_str().unwrap().to_string();
                (text(0), text(1))
            })
            .collect();
        let text = |field: &str| v[field].as_str().unwrap().to_string();
        Echoed {
            method: text("method"),
            path: text("path"),
            headers,
            body: text("body"),
        }
    }

    /// Every value of a header, in order.
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one value of a header, failing if it came more than once.
    fn one(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(
            all.len() <= 1,
            "{name} reached the upstream {} times",
            all.len()
        );
        all.first().copied()
    }

    /// The key's identity as the upstream got it: id, decoded name, scopes, decoded metadata.
    fn identity(&self) -> (Option<&str>, Option<String>, Option<&str>, Option<Value>) {
        let name = self.one("x-key-name").map(percent_decode);
        let metadata = self.one("x-key-metadata").map(|b64| {
            let json = URL_SAFE_NO_PAD
                .decode(b64)
                .expect("X-Key-Metadata is base64url");
            serde_json::from_slice(&json).expect("X-Key-Metadata is JSON")
        });
        (
            self.one("x-key-id"),
            name,
            self.one("x-key-scopes"),
            metadata,
        )
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = text
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("X-Key-Name decodes to UTF-8")
}

/// Installs nginx and Caddy when missing (tests/tools/ensure-proxies.sh); never skips.
fn ensure_proxies() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/ensure-proxies.sh");
        let status = Command::new("bash").arg(&script).status().expect("bash");
        assert!(
            status.success(),
            "tests/tools/ensure-proxies.sh could not install nginx and caddy; \
             these tests need both (apt-get install nginx-light caddy)"
        );
    });
}

/// A command found on PATH or in the sbin directories (where Debian puts nginx).
fn program(name: &str) -> PathBuf {
    ensure_proxies();
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed, even after ensure-proxies.sh"))
}

/// A shipped recipe, read from deploy/proxies/.
fn recipe(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/proxies")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// `text` with each of `count` occurrences of `from` replaced: fails when the recipe no longer
/// has the shape this test expects.
fn replace(text: &str, from: &str, to: &str, count: usize) -> String {
    assert_eq!(
        text.matches(from).count(),
        count,
        "deploy/proxies: expected {from:?} {count} times"
    );
    text.replace(from, to)
}

/// Where the recipes' two hosts are here.
struct Upstreams {
    auth: u16,
    api: u16,
}

/// deploy/proxies/nginx.conf pointed at loopback, with its pid, logs and temporary files in
/// `dir`.
fn nginx_conf(dir: &Path, ports: &Upstreams, listen: u16, own: u16) -> String {
    let d = dir.display();
    let text = recipe("nginx.conf");
    let text = replace(
        &text,
        "listen 8081;",
        &format!("listen 127.0.0.1:{own};"),
        1,
    );
    let text = replace(
        &text,
        "server heare-auth:8080;",
        &format!("server 127.0.0.1:{};", ports.auth),
        1,
    );
    let text = replace(
        &text,
        "server api:3000;",
        &format!("server 127.0.0.1:{};", ports.api),
        1,
    );
    let text = replace(
        &text,
        "listen 80;",
        &format!("listen 127.0.0.1:{listen};"),
        1,
    );
    let http = format!(
        "http {{\n    access_log {d}/access.log;\n    client_body_temp_path {d}/body;\n    \
         proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    \
         uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n"
    );
    let text = replace(&text, "\nhttp {\n", &format!("\n{http}"), 1);
    format!("daemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log notice;\n{text}")
}

/// deploy/proxies/Caddyfile pointed at loopback, on plain HTTP, without the admin API.
fn caddyfile(ports: &Upstreams, listen: u16, own: u16) -> String {
    let text = recipe("Caddyfile");
    let text = replace(
        &text,
        "reverse_proxy heare-auth:8080\n",
        &format!("reverse_proxy 127.0.0.1:{}\n", ports.auth),
        2,
    );
    let text = replace(
        &text,
        "\nauth.example.com {",
        &format!("\nhttp://127.0.0.1:{own} {{"),
        1,
    );
    let text = replace(
        &text,
        " heare-auth:8080 {",
        &format!(" 127.0.0.1:{} {{", ports.auth),
        2,
    );
    let text = replace(
        &text,
        "reverse_proxy api:3000 {",
        &format!("reverse_proxy 127.0.0.1:{} {{", ports.api),
        1,
    );
    replace(
        &text,
        "api.example.com {",
        &format!(
            "{{\n\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n}}\n\n\
             http://127.0.0.1:{listen} {{"
        ),
        1,
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Nginx,
    Caddy,
}

/// A proxy process on 127.0.0.1:`port` (and heare-auth's own API on `own`), stopped on drop.
struct Proxy {
    kind: Kind,
    child: Child,
    port: u16,
    own: u16,
    dir: TempDir,
}

impl Proxy {
    /// Starts `kind` in front of heare-auth and the upstream, on a free port, and waits until
    /// it accepts connections.
    fn start(kind: Kind, ports: &Upstreams) -> Proxy {
        Proxy::start_edited(kind, ports, |text| text)
    }

    /// Starts `kind` with its configuration passed through `edit` first.
    fn start_edited(kind: Kind, ports: &Upstreams, edit: impl Fn(String) -> String) -> Proxy {
        let dir = TempDir::new(&format!("{kind:?}").to_lowercase());
        // nginx's workers run as nobody when the master is root: let them into the directory.
        std::fs::set_permissions(
            dir.root(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        for _attempt in 0..5 {
            let (port, own) = (free_port(), free_port());
            let mut child = match kind {
                Kind::Nginx => {
                    let conf = dir.path("nginx.conf");
                    std::fs::write(&conf, edit(nginx_conf(dir.root(), ports, port, own))).unwrap();
                    Command::new(program("nginx"))
                        .arg("-p")
                        .arg(dir.root())
                        .arg("-c")
                        .arg(&conf)
                        .arg("-e")
                        .arg(dir.path("error.log"))
                        .stdout(Stdio::null())
                        .stderr(log_file(&dir, "stderr.log"))
                        .spawn()
                        .expect("spawn nginx")
                }
                Kind::Caddy => {
                    let conf = dir.path("Caddyfile");
                    std::fs::write(&conf, edit(caddyfile(ports, port, own))).unwrap();
                    caddy_command(&dir)
                        .arg("run")
                        .arg("--config")
                        .arg(&conf)
                        .args(["--adapter", "caddyfile"])
                        .stdout(Stdio::null())
                        .stderr(log_file(&dir, "stderr.log"))
                        .spawn()
                        .expect("spawn caddy")
                }
            };
            if wait_until_listening(&mut child, port, &dir)
                && wait_until_listening(&mut child, own, &dir)
            {
                return Proxy {
                    kind,
                    child,
                    port,
                    own,
                    dir,
                };
            }
            // It exited: most likely the port was taken in the meantime, so try another.
        }
        panic!("{kind:?} did not start: {}", logs(&dir));
    }

    /// Sends one request (`Connection: close`) and reads the answer, which must not be a 500.
    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> RawResponse {
        let response = self.exchange(method, path, headers, body);
        assert_ne!(
            response.status,
            500,
            "{:?} answered 500 to {method} {path} {headers:?}: {response:?}\n{}",
            self.kind,
            logs(&self.dir)
        );
        response
    }

    /// Sends one request (`Connection: close`) and reads the answer, whatever it is.
    fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> RawResponse {
        self.exchange_on(self.port, method, path, headers, body)
    }

    /// [`Proxy::exchange`] on `port`: the API's, or heare-auth's own ([`Proxy::own`]).
    fn exchange_on(
        &self,
        port: u16,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> RawResponse {
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        request.push_str(body);
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        read_response(&mut BufReader::new(stream))
            .unwrap()
            .unwrap_or_else(|| panic!("{:?} closed without answering", self.kind))
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> RawResponse {
        self.send("GET", path, headers, "")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: nginx's master then stops its workers too.
        let _ = Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `port` until `child` accepts connections on it; false when it exited first.
fn wait_until_listening(child: &mut Child, port: u16, dir: &TempDir) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("no proxy listened on {port} within 15 s: {}", logs(dir));
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn log_file(dir: &TempDir, name: &str) -> Stdio {
    Stdio::from(std::fs::File::create(dir.path(name)).unwrap())
}

/// Every log the proxy wrote, for failure messages.
fn logs(dir: &TempDir) -> String {
    ["stderr.log", "error.log"]
        .iter()
        .filter_map(|name| {
            let text = std::fs::read_to_string(dir.path(name)).ok()?;
            Some(format!("--- {name}\n{text}"))
        })
        .collect()
}

/// Caddy with its configuration and data directories in `dir`, so nothing outside is touched.
fn caddy_command(dir: &TempDir) -> Command {
    let mut cmd = Command::new(program("caddy"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.root())
        .env("XDG_CONFIG_HOME", dir.path("config"))
        .env("XDG_DATA_HOME", dir.path("data"));
    cmd
}

/// heare-auth, the upstream, and `kind` in front of both.
struct Setup {
    proxy: Proxy,
    upstream: Upstream,
    _server: Server,
    _keys: TempDir,
}

impl Setup {
    fn start(kind: Kind) -> Setup {
        Setup::start_with(kind, &[])
    }

    /// With heare-auth's environment extended by `env`.
    fn start_with(kind: Kind, env: &[(&str, &str)]) -> Setup {
        let keys = TempDir::new(&format!("{kind:?}-keys").to_lowercase());
        let file = keys_file(&keys);
        let server = Server::start(&[&[("KEYS_FILE", file.to_str().unwrap())], env].concat());
        let upstream = Upstream::start();
        let ports = Upstreams {
            auth: server.addr().port(),
            api: upstream.port,
        };
        let proxy = Proxy::start(kind, &ports);
        Setup {
            proxy,
            upstream,
            _server: server,
            _keys: keys,
        }
    }

    /// A request the proxy must refuse with `status` and `challenge`, without reaching the
    /// upstream; `code` is heare-auth's, which Caddy passes on and nginx replaces with its page.
    fn refused(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        (status, challenge, code): (u16, &str, &str),
    ) {
        let served = self.upstream.served();
        let response = self.proxy.get(path, headers);
        let what = format!("{:?} {path} {headers:?}", self.proxy.kind);
        assert_eq!(response.status, status, "{what}: {response:?}");
        assert_eq!(
            response.header("www-authenticate"),
            Some(challenge),
            "{what}"
        );
        if self.proxy.kind == Kind::Caddy {
            let body: Value = serde_json::from_str(&response.body).unwrap();
            assert_eq!(body["code"], code, "{what}");
        }
        assert_eq!(
            self.upstream.served(),
            served,
            "{what} reached the upstream"
        );
    }

    /// A request the proxy must let through: what the upstream received.
    fn passed(&self, path: &str, headers: &[(&str, &str)]) -> Echoed {
        let response = self.proxy.get(path, headers);
        assert_eq!(
            response.status, 200,
            "{:?} {path} {headers:?}: {response:?}",
            self.proxy.kind
        );
        Echoed::parse(&response)
    }

    /// Spends `LIMITED`'s requests: each passes with the key's identity.
    fn spend_the_limit(&self) {
        for n in 1..=LIMIT {
            let got = self.passed("/things", &[("X-API-Key", LIMITED)]);
            let kind = self.proxy.kind;
            assert_eq!(got.one("x-key-id"), Some("key_0Limited"), "{kind:?}: #{n}");
        }
    }

    /// `LIMITED` once more, over its limit: the answer, after checking that the upstream never
    /// saw the request.
    fn over_the_limit(&self) -> RawResponse {
        let served = self.upstream.served();
        let response = self
            .proxy
            .exchange("GET", "/things", &[("X-API-Key", LIMITED)], "");
        let kind = self.proxy.kind;
        assert_eq!(
            self.upstream.served(),
            served,
            "{kind:?}: over the limit, yet passed"
        );
        response
    }
}

/// Every case, through either proxy.
fn forward_auth_through(kind: Kind) {
    let setup = Setup::start(kind);
    let bearer = |secret: &str| format!("Bearer {secret}");

    // Refused: 401 with heare-auth's challenge, never a 500, never at the upstream.
    let missing = (401, REALM, "MISSING_KEY");
    setup.refused("/things", &[], missing);
    setup.refused(
        "/things",
        &[("Authorization", "Basic dXNlcjpwYXNz")],
        missing,
    );
    for (headers, code) in [
        (vec![("Authorization", bearer("sec_0nothing"))], "NOT_FOUND"),
        (vec![("X-API-Key", "sec_0nothing".to_string())], "NOT_FOUND"),
        (vec![("Authorization", bearer(DISABLED))], "DISABLED"),
        (vec![("X-API-Key", DISABLED.to_string())], "DISABLED"),
        (vec![("Authorization", bearer(EXPIRED))], "EXPIRED"),
        (vec![("X-API-Key", EXPIRED.to_string())], "EXPIRED"),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        setup.refused("/things", &headers, (401, INVALID, code));
    }
    // Identity headers without a key do not make one.
    setup.refused(
        "/things",
        &[("X-Key-Id", "key_0Read"), ("X-Key-Scopes", "read,admin")],
        missing,
    );

    // A valid key, either way it is sent: the upstream gets its identity, and not the key.
    let reader = (
        Some("key_0Read"),
        Some("Reader".to_string()),
        Some("read"),
        Some(json!({"team": "edge", "tier": 2})),
    );
    let read_bearer = bearer(READ);
    for headers in [
        [("Authorization", read_bearer.as_str())],
        [("X-API-Key", READ)],
    ] {
        let got = setup.passed("/things?page=2", &headers);
        assert_eq!(
            (got.method.as_str(), got.path.as_str()),
            ("GET", "/things?page=2")
        );
        assert_eq!(got.identity(), reader, "{kind:?} {headers:?}");
        assert_eq!(got.all("authorization"), Vec::<&str>::new(), "{kind:?}");
        assert_eq!(got.all("x-api-key"), Vec::<&str>::new(), "{kind:?}");
    }

    // A name that is not ASCII arrives percent-encoded; scopes comma-separated.
    let got = setup.passed("/things", &[("X-API-Key", NAMED)]);
    assert_eq!(
        got.one("x-key-name"),
        Some("Zo%C3%AB's%20%E2%9C%93%20service")
    );
    assert_eq!(
        got.identity(),
        (
            Some("key_0Named"),
            Some("Zoë's ✓ service".to_string()),
            Some("read,write"),
            Some(json!({}))
        )
    );

    // A rotated key: its new secret and its previous one (in its grace period) are one key.
    // It has no scopes, so heare-auth's X-Key-Scopes is empty: nginx sends no header with an
    // empty value; Caddy 2.6 (Debian's) sends it empty, later releases leave it out.
    let rotated = |got: &Echoed| {
        let (id, name, scopes, metadata) = got.identity();
        let empty = match kind {
            Kind::Nginx => scopes.is_none(),
            Kind::Caddy => scopes.is_none_or(str::is_empty),
        };
        assert!(empty, "{kind:?}: X-Key-Scopes {scopes:?}");
        assert_eq!(
            (id, name, metadata),
            (
                Some("key_0Rotated"),
                Some("Rotated".to_string()),
                Some(json!({}))
            ),
            "{kind:?}"
        );
    };
    for secret in [ROTATED, ROTATED_OLD] {
        rotated(&setup.passed("/things", &[("Authorization", &bearer(secret))]));
    }

    // Identity headers a client sends never reach the upstream: heare-auth's replace them.
    let forged = [
        ("X-Key-Id", "key_0Admin"),
        ("X-Key-Name", "Mallory"),
        ("X-Key-Scopes", "read,admin"),
        ("X-Key-Metadata", "eyJyb2xlIjoiYWRtaW4ifQ"),
    ];
    let got = setup.passed("/things", &[&[("X-API-Key", READ)][..], &forged].concat());
    assert_eq!(got.identity(), reader, "{kind:?}: forged headers");
    // A key without scopes is the case where a proxy could keep the client's X-Key-Scopes.
    rotated(&setup.passed(
        "/things",
        &[&[("X-API-Key", ROTATED_OLD)][..], &forged].concat(),
    ));

    // /admin/ demands the scope `admin`: 403 with the challenge naming it.
    let no_admin = (403, NO_ADMIN, "INSUFFICIENT_SCOPE");
    setup.refused("/admin/users", &[("X-API-Key", READ)], no_admin);
    setup.refused("/admin/users?scope=read", &[("X-API-Key", READ)], no_admin);
    setup.refused("/admin/users", &[("X-API-Key", NAMED)], no_admin);
    setup.refused(
        "/admin/users",
        &[("X-API-Key", EXPIRED)],
        (401, INVALID, "EXPIRED"),
    );
    setup.refused("/admin/users", &[], missing);
    // The location decides the scopes, not the client's query.
    let got = setup.passed("/things?scope=admin", &[("X-API-Key", READ)]);
    assert_eq!(got.path, "/things?scope=admin");
    assert_eq!(got.one("x-key-id"), Some("key_0Read"));

    // A body goes to the upstream, not to heare-auth.
    let body = r#"{"order": 1234}"#;
    let response = setup.proxy.send(
        "POST",
        "/orders",
        &[("X-API-Key", READ), ("Content-Type", "application/json")],
        body,
    );
    assert_eq!(response.status, 200, "{kind:?}: {response:?}");
    let got = Echoed::parse(&response);
    assert_eq!(
        (got.method.as_str(), got.body.as_str(), got.one("x-key-id")),
        ("POST", body, Some("key_0Read"))
    );
    let response = setup
        .proxy
        .send("DELETE", "/orders/1", &[("X-API-Key", DISABLED)], "");
    assert_eq!(response.status, 401, "{kind:?}: {response:?}");
}

#[test]
fn nginx_auth_request_lets_valid_keys_through_with_their_identity() {
    forward_auth_through(Kind::Nginx);
}

#[test]
fn caddy_forward_auth_lets_valid_keys_through_with_their_identity() {
    forward_auth_through(Kind::Caddy);
}

#[test]
fn nginx_never_sees_a_status_it_turns_into_500() {
    let setup = Setup::start(Kind::Nginx);
    let requests: [&[(&str, &str)]; 5] = [
        &[],
        &[("X-API-Key", READ)],
        &[("X-API-Key", DISABLED)],
        &[("Authorization", "Bearer")],
        &[
            ("Authorization", "Bearer sec_0nothing"),
            ("X-API-Key", READ),
        ],
    ];
    let mut statuses = BTreeMap::new();
    for path in ["/", "/things", "/admin/", "/admin/users?scope=admin"] {
        for headers in requests {
            let status = setup.proxy.get(path, headers).status;
            *statuses.entry(status).or_insert(0) += 1;
        }
    }
    assert_eq!(
        statuses.keys().copied().collect::<Vec<u16>>(),
        [200, 401, 403]
    );
    let errors = std::fs::read_to_string(setup.proxy.dir.path("error.log")).unwrap();
    assert!(
        !errors.contains("auth request unexpected status"),
        "{errors}"
    );
}

#[test]
fn nginx_needs_rate_limit_status_403_or_401_for_keys_over_their_limit() {
    // At the default, 429, nginx answers 500: why the recipe asks for RATE_LIMIT_STATUS.
    let setup = Setup::start(Kind::Nginx);
    setup.spend_the_limit();
    assert_eq!(setup.over_the_limit().status, 500);
    let errors = std::fs::read_to_string(setup.proxy.dir.path("error.log")).unwrap();
    assert!(
        errors.contains("auth request unexpected status: 429"),
        "{errors}"
    );

    // With 403 or 401, the client gets that status (never a 500) and heare-auth's Retry-After,
    // each time it asks again; a 401 comes with the challenge of a key not accepted.
    for (status, challenge) in [("403", None), ("401", Some(INVALID))] {
        let setup = Setup::start_with(Kind::Nginx, &[("RATE_LIMIT_STATUS", status)]);
        setup.spend_the_limit();
        for _ in 0..2 {
            let response = setup.over_the_limit();
            assert_eq!(response.status.to_string(), status, "{response:?}");
            assert_eq!(response.header("www-authenticate"), challenge);
            let retry: u64 = response.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=3600).contains(&retry), "Retry-After: {retry}");
        }
        let errors = std::fs::read_to_string(setup.proxy.dir.path("error.log")).unwrap();
        assert!(!errors.contains("unexpected status"), "{errors}");
        // Other keys are not held back by this one's limit.
        let got = setup.passed("/things", &[("X-API-Key", READ)]);
        assert_eq!(got.one("x-key-id"), Some("key_0Read"));
    }
}

#[test]
fn caddy_hands_a_429_to_the_client_as_heare_auth_wrote_it() {
    // forward_auth copies any answer but a 2xx to the client, so Caddy needs no
    // RATE_LIMIT_STATUS: the client sees the 429, its Retry-After and heare-auth's JSON.
    let setup = Setup::start(Kind::Caddy);
    setup.spend_the_limit();
    let response = setup.over_the_limit();
    assert_eq!(response.status, 429, "{response:?}");
    let retry: u64 = response.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "Retry-After: {retry}");
    let body: Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(body["code"], "RATE_LIMITED", "{body}");
    assert_eq!(response.header("www-authenticate"), None);
    let got = setup.passed("/things", &[("X-API-Key", READ)]);
    assert_eq!(got.one("x-key-id"), Some("key_0Read"));
}

#[test]
fn the_shipped_recipes_are_valid_configurations() {
    // nginx: the recipe with its two hosts (which must resolve) pointed at loopback.
    let dir = TempDir::new("recipes");
    let ports = Upstreams {
        auth: 8080,
        api: 3000,
    };
    let conf = dir.path("nginx.conf");
    std::fs::write(
        &conf,
        nginx_conf(dir.root(), &ports, free_port(), free_port()),
    )
    .unwrap();
    let out = Command::new(program("nginx"))
        .arg("-t")
        .arg("-p")
        .arg(dir.root())
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.path("error.log"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("test is successful"),
        "{text}"
    );

    // Caddy: the recipe exactly as shipped (Caddy resolves upstreams when it dials them), and
    // as formatted as `caddy fmt` would have it.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/proxies/Caddyfile");
    let out = caddy_command(&dir)
        .arg("validate")
        .arg("--config")
        .arg(&shipped)
        .args(["--adapter", "caddyfile"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("Valid configuration"),
        "{text}"
    );
    assert!(!text.contains("not formatted"), "{text}");
    let out = caddy_command(&dir)
        .arg("fmt")
        .arg(&shipped)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), recipe("Caddyfile"));
}

/// heare-auth's own API through a recipe's second server: `POST /verify` passes; `/refresh`,
/// `/metrics` and `/ready` are kept for heare-auth's machine (404 from the proxy); and were the
/// recipe changed to pass everything on, heare-auth itself refuses them, since the proxy says
/// the request was forwarded.
fn own_api_through(kind: Kind) {
    let keys = TempDir::new(&format!("{kind:?}-own").to_lowercase());
    let file = keys_file(&keys);
    let server = Server::start(&[("KEYS_FILE", file.to_str().unwrap())]);
    let upstream = Upstream::start();
    let ports = Upstreams {
        auth: server.addr().port(),
        api: upstream.port,
    };
    let verify = |proxy: &Proxy, secret: &str| {
        let body = format!(r#"{{"api_key": "{secret}"}}"#);
        let headers = [("Content-Type", "application/json")];
        proxy.exchange_on(proxy.own, "POST", "/verify", &headers, &body)
    };
    let proxy = Proxy::start(kind, &ports);
    let valid = verify(&proxy, READ);
    assert_eq!(valid.status, 200, "{kind:?}: {valid:?}");
    let body: Value = serde_json::from_str(&valid.body).unwrap();
    assert_eq!(body["key_id"], "key_0Read", "{kind:?}");
    assert_eq!(verify(&proxy, "sec_0unknown").status, 403, "{kind:?}");
    for (method, path) in [("POST", "/refresh"), ("GET", "/metrics"), ("GET", "/ready")] {
        let kept = proxy.exchange_on(proxy.own, method, path, &[], "");
        assert_eq!(kept.status, 404, "{kind:?} {path}: {kept:?}");
    }
    assert_eq!(
        upstream.served(),
        0,
        "{kind:?}: heare-auth's API reached the API"
    );
    drop(proxy);

    // The recipe changed to pass every path on: heare-auth refuses what it keeps for its
    // machine, naming the header the proxy added.
    let everything = |text: String| match kind {
        Kind::Nginx => replace(
            &replace(
                &replace(
                    &text,
                    "        location = /refresh { return 404; }\n",
                    "",
                    1,
                ),
                "        location = /metrics { return 404; }\n",
                "",
                1,
            ),
            "location / { return 404; }",
            "location / { proxy_pass http://heare_auth; \
             proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }",
            1,
        ),
        Kind::Caddy => replace(
            &text,
            "\thandle {\n\t\trespond 404\n\t}",
            &format!(
                "\thandle {{\n\t\treverse_proxy 127.0.0.1:{}\n\t}}",
                ports.auth
            ),
            1,
        ),
    };
    let proxy = Proxy::start_edited(kind, &ports, everything);
    let refresh = proxy.exchange_on(proxy.own, "POST", "/refresh", &[], "");
    assert_eq!(refresh.status, 403, "{kind:?}: {refresh:?}");
    let body: Value = serde_json::from_str(&refresh.body).unwrap();
    assert_eq!(
        body["error"],
        "Refresh endpoint only accessible from localhost, not through a proxy \
         (the request carries x-forwarded-for)",
        "{kind:?}"
    );
    let metrics = proxy.exchange_on(proxy.own, "GET", "/metrics", &[], "");
    assert_eq!(metrics.status, 403, "{kind:?}: {metrics:?}");
    assert!(!metrics.body.contains("heare_auth_"), "{kind:?}");
    assert_eq!(verify(&proxy, READ).status, 200, "{kind:?}");
    assert!(server
        .logs()
        .iter()
        .all(|l| !(l["event"] == "refresh_success" && l["trigger"] == "refresh")));
}

#[test]
fn nginx_passes_on_heare_auth_s_own_verify_and_keeps_refresh_and_metrics_local() {
    own_api_through(Kind::Nginx);
}

#[test]
fn caddy_passes_on_heare_auth_s_own_verify_and_keeps_refresh_and_metrics_local() {
    own_api_through(Kind::Caddy);
}

//! Test harness: builds the real binaries once, runs servers on ephemeral loopback ports, runs
//! the CLI, and collects every line both of them log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod s3_proxy;

pub use s3_proxy::{Behaviour, Fault, FaultKind, S3Proxy};

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where everything the binaries print during the tests is copied when `HEARE_AUTH_TRANSCRIPT`
/// names a directory (as `make test` does), for `tests/tools/check-transcript.py` to search for
/// secrets: server logs, CLI output, and HTTP answers read here. Each process writes files of
/// its own.
fn transcript_dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(std::env::var_os("HEARE_AUTH_TRANSCRIPT")?);
        std::fs::create_dir_all(&dir).unwrap();
        Some(dir)
    })
    .as_deref()
}

/// A file name unique to this process and this call: `KIND-PID-N.txt`.
fn transcript_file(kind: &str) -> Option<PathBuf> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Some(transcript_dir()?.join(format!("{kind}-{}-{n}.txt", std::process::id())))
}

/// Copies `text` (what a binary printed or answered) into the transcript, as `kind`.
pub fn transcribe(kind: &str, text: &str) -> Option<PathBuf> {
    let path = transcript_file(kind)?;
    std::fs::write(&path, text).unwrap();
    Some(path)
}

/// Runs a server command to its end (one that fails to start, or `--help`), copying what it
/// printed into the transcript.
pub fn server_output(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run heare-auth-server");
    let text = format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    transcribe("server", &text);
    out
}

/// Appends `text` to this process's transcript file of `kind`.
fn transcribe_more(kind: &str, text: &str) {
    use std::io::Write;
    let Some(dir) = transcript_dir() else { return };
    let path = dir.join(format!("{kind}-{}.txt", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// Notes secrets this suite made or used, and which transcript file (if any) may show each:
/// the `create` or `rotate` output that issued it.
fn note_secrets<'a>(secrets: impl Iterator<Item = &'a str>, issued_in: Option<&Path>) {
    let issuer = issued_in.map_or("-".into(), |p| p.file_name().unwrap().to_string_lossy());
    let lines: String = secrets.map(|s| format!("{s}\t{issuer}\n")).collect();
    transcribe_more("secrets", &lines);
}

/// The secrets in `text`: its `sec_…` tokens, and its words of the checksummed format under
/// any other prefix (`SECRET_PREFIX`).
fn secrets_in(text: &str) -> impl Iterator<Item = &str> {
    let sec = text.match_indices("sec_").map(move |(at, _)| {
        let len = text[at + 4..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(text.len() - at - 4);
        &text[at..at + 4 + len]
    });
    let own = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| {
            !word.starts_with("sec_")
                && heare_auth_core::form(word) == heare_auth_core::Form::Checksummed
        });
    sec.chain(own)
}

/// Copies an HTTP answer into the transcript, in a file of its own; `issued` is the secret it
/// issued (a management API create or rotate), which only that file may show.
pub fn transcribe_answer(text: &str, issued: Option<&str>) {
    let path = transcribe("http", text);
    if let Some(secret) = issued {
        note_secrets(std::iter::once(secret), path.as_deref());
    }
}

/// Notes a secret that the tests presented (in a header, say): no transcript may show it.
pub fn note_presented(secret: &str) {
    note_secrets(std::iter::once(secret), None);
}

/// Copies a CLI run into the transcript; the secrets a `create` or `rotate` printed are noted
/// as issued by it.
fn transcribe_cli(args: &[&str], output: &Output) {
    let (out, err) = (stdout(output), stderr(output));
    let text = format!(
        "$ heare-auth {}\n--- stdout\n{out}--- stderr\n{err}",
        args.join(" ")
    );
    let Some(path) = transcribe("cli", &text) else {
        return;
    };
    if matches!(args.first(), Some(&"create" | &"rotate")) && output.status.success() {
        note_secrets(secrets_in(&out), Some(&path));
    }
}

/// Directory holding the freshly built binaries.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "heare-auth-server",
                "-p",
                "heare-auth",
            ])
            .status()
            .expect("cargo build");
        assert!(status.success(), "building the binaries failed");
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
        target.join("debug")
    })
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    /// A new directory whose name starts with `heare-auth-e2e-NAME-`.
    pub fn new(name: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("heare-auth-e2e-{name}-"))
            .tempdir()
            .unwrap();
        TempDir(dir)
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        self.0.path()
    }

    /// A path inside it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

/// A running `heare-auth-server` on 127.0.0.1 with an ephemeral port.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the server with extra environment variables and waits for its `startup` line.
    pub fn start(env: &[(&str, &str)]) -> Server {
        Server::spawn(Command::new(bin_dir().join("heare-auth-server")), env)
    }

    /// Starts the server as an unprivileged user (`nobody`, when the tests run as root), so that
    /// file permissions apply to it.
    pub fn start_unprivileged(env: &[(&str, &str)]) -> Server {
        Server::spawn(unprivileged(&bin_dir().join("heare-auth-server")), env)
    }

    /// Starts the server with its open-file limit (soft and hard) set to `nofile`.
    pub fn start_with_nofile(env: &[(&str, &str)], nofile: u32) -> Server {
        Server::start_under_ulimit(env, &format!("-n {nofile}"))
    }

    /// Starts the server under `ulimit ARGS` (`-S -n 100`: a soft open-file limit of 100).
    pub fn start_under_ulimit(env: &[(&str, &str)], args: &str) -> Server {
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(format!("ulimit {args} && exec \"$0\" \"$@\""))
            .arg(bin_dir().join("heare-auth-server"));
        Server::spawn(cmd, env)
    }

    fn spawn(mut cmd: Command, env: &[(&str, &str)]) -> Server {
        cmd.args(["--host", "127.0.0.1", "--port", "0"])
            .env_clear()
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn heare-auth-server");
        // The server prints nothing on stdout; whatever it might is kept for the search.
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stdout).read_to_string(&mut text);
            if !text.is_empty() {
                transcribe_more("server-stdout", &text);
            }
        });
        let logs: Arc<Mutex<Vec<String>>> = Default::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let mine = logs.clone();
        let mut transcript = transcript_file("server").map(|p| std::fs::File::create(p).unwrap());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(file) = &mut transcript {
                    use std::io::Write;
                    writeln!(file, "{line}").unwrap();
                }
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["event"] == "startup" {
                        let _ = tx.send(v["address"].as_str().unwrap_or_default().to_string());
                    }
                }
                mine.lock().unwrap().push(line);
            }
        });
        let address = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start: {:?}", logs.lock().unwrap());
            }
        };
        Server {
            child,
            url: format!("http://{address}"),
            logs,
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.url.trim_start_matches("http://").parse().unwrap()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Starts the server on a local keys file.
    pub fn with_file(path: &Path) -> Server {
        Server::start(&[("KEYS_FILE", path.to_str().unwrap())])
    }

    /// The server's log lines so far, parsed.
    pub fn logs(&self) -> Vec<serde_json::Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|_| panic!("log line is not JSON: {l}"))
            })
            .collect()
    }

    /// Waits until a log line with this event appears (or times out). Log lines reach the file
    /// within the server's flush interval.
    pub fn wait_for_event(&self, event: &str, timeout: Duration) -> Option<serde_json::Value> {
        self.wait_for_log(timeout, |v| v["event"] == event)
    }

    /// Waits until a log line matching `pred` appears (or times out); the latest such line.
    pub fn wait_for_log(
        &self,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(v) = self.logs().into_iter().rev().find(&pred) {
                return Some(v);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `POST /verify {"api_key": key}`: (status, body).
    pub fn verify(&self, key: &str) -> (u16, serde_json::Value) {
        note_secrets(secrets_in(key), None);
        let body = serde_json::json!({ "api_key": key }).to_string();
        self.post("/verify", &body, &[("Content-Type", "application/json")])
    }

    /// A POST with a raw body and headers: (status, JSON body).
    pub fn post(
        &self,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let mut req = ureq::post(&format!("{}{path}", self.url));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        response(req.send_string(body))
    }

    /// A request with any method and no body: (status, JSON body).
    pub fn call(&self, method: &str, path: &str) -> (u16, serde_json::Value) {
        response(ureq::request(method, &format!("{}{path}", self.url)).call())
    }

    /// `POST /refresh` from loopback: (status, body).
    pub fn refresh(&self) -> (u16, serde_json::Value) {
        self.post("/refresh", "", &[])
    }

    /// Sends `signal` (e.g. "TERM") and waits for exit; returns the exit code.
    pub fn stop_with(mut self, signal: &str) -> Option<i32> {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-s", signal, &pid])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "server ignored SIG{signal}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn response(result: Result<ureq::Response, ureq::Error>) -> (u16, serde_json::Value) {
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = resp.status();
    let head: String = resp
        .headers_names()
        .iter()
        .map(|name| format!("{name}: {}\n", resp.header(name).unwrap_or_default()))
        .collect();
    let mut text = String::new();
    resp.into_reader().read_to_string(&mut text).unwrap();
    transcribe_more("http", &format!("{status}\n{head}{text}\n"));
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("status {status}: body is not JSON: {text:?}"));
    (status, body)
}

/// Runs the `heare-auth` CLI with a clean environment plus `env`.
pub fn cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    cli_with_stdin(args, env, "")
}

/// Runs the CLI as an unprivileged user (see [`Server::start_unprivileged`]).
pub fn cli_unprivileged(args: &[&str], env: &[(&str, &str)]) -> Output {
    let output = unprivileged(&bin_dir().join("heare-auth"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("spawn heare-auth");
    transcribe_cli(args, &output);
    output
}

/// The user id unprivileged runs use: `nobody` when the tests run as root, else the caller.
pub fn unprivileged_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .unwrap();
    if uid == 0 {
        65534
    } else {
        uid
    }
}

/// A command running `program` as [`unprivileged_uid`], through `setpriv` when that means
/// dropping root.
fn unprivileged(program: &Path) -> Command {
    if unprivileged_uid() == 65534 {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// Runs the CLI with `stdin` piped in (so stdin is not a terminal).
pub fn cli_with_stdin(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut child = Command::new(bin_dir().join("heare-auth"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn heare-auth");
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        let _ = input.write_all(stdin.as_bytes());
    }
    let output = child.wait_with_output().unwrap();
    transcribe_cli(args, &output);
    output
}

/// Stdout of a CLI run as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr of a CLI run as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Path of a tool installed by the project's scripts into `.cache/tools`, installing it first.
pub fn tool(name: &str, script: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join(".cache/tools/bin").join(name);
    let status = Command::new("bash")
        .arg(root.join("tests/tools").join(script))
        .status()
        .expect("bash");
    assert!(status.success(), "tests/tools/{script} failed");
    path
}

/// A file installed by one of the project's scripts (`tests/tools/SCRIPT`), by its path from the
/// repository's root, installing it first.
pub fn tool_path(path: &str, script: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new("bash")
        .arg(root.join("tests/tools").join(script))
        .status()
        .expect("bash");
    assert!(status.success(), "tests/tools/{script} failed");
    root.join(path)
}

/// Parses a Prometheus exposition with the reference client's parser: sample name and labels
/// (as `name{k="v",...}`, labels sorted) to value.
pub fn parse_exposition(text: &str) -> std::collections::BTreeMap<String, f64> {
    let python = tool_path(".cache/venv/bin/python", "ensure-python-tools.sh");
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the exposition:\n{text}"
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The TCP port `pid` listens on, read from /proc (for servers told to pick a free port).
pub fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(
                link.strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT, st 0A is LISTEN, column 9 is the inode.
            if cols.len() > 9 && cols[3] == "0A" && inodes.iter().any(|i| i == cols[9]) {
                let port = cols[1].rsplit(':').next()?;
                return u16::from_str_radix(port, 16).ok();
            }
        }
    }
    None
}

/// Credentials the test S3 server checks every request's SigV4 signature against.
pub const S3_ACCESS_KEY: &str = "heare-test-access";
/// See [`S3_ACCESS_KEY`].
pub const S3_SECRET_KEY: &str = "heare-test-secret-0123456789";
/// The bucket every test S3 server has.
pub const S3_BUCKET: &str = "heare-keys";

/// A real S3-protocol server (s3s-fs) on 127.0.0.1 over a temporary directory.
pub struct S3Server {
    child: Option<Child>,
    /// Port it listens on (kept across restarts).
    pub port: u16,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The data directory; the bucket is its sub-directory.
    pub data: TempDir,
}

impl S3Server {
    /// Starts s3s-fs with one bucket, on a free port.
    pub fn start(name: &str) -> S3Server {
        let data = TempDir::new(&format!("s3-{name}"));
        std::fs::create_dir_all(data.path(S3_BUCKET)).unwrap();
        let mut server = S3Server {
            child: None,
            port: 0,
            endpoint: String::new(),
            data,
        };
        server.restart();
        server
    }

    /// (Re)starts the server on its port (a free one the first time) and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let bin = tool("s3s-fs", "ensure-s3s-fs.sh");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
                .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
                .arg(self.data.root())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn s3s-fs");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                if let Some(port) = listening_port(child.id()) {
                    self.port = port;
                    self.endpoint = format!("http://127.0.0.1:{port}");
                    self.child = Some(child);
                    return;
                }
                if child.try_wait().unwrap().is_some() {
                    break; // e.g. the old port is briefly unavailable; try again
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills the server (an outage); [`S3Server::restart`] brings it back with the same data.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Environment that points the server and the CLI at `key` in this store.
    pub fn env(&self, key: &str) -> Vec<(String, String)> {
        [
            ("S3_BUCKET", S3_BUCKET),
            ("S3_KEY", key),
            ("S3_REGION", "us-east-1"),
            ("S3_ENDPOINT", self.endpoint.as_str()),
            ("S3_TIMEOUT", "2"),
            ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Where s3s-fs keeps the object `key` on disk (to damage it behind the server's back).
    pub fn object_file(&self, key: &str) -> PathBuf {
        self.data.path(S3_BUCKET).join(key)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real Redis (Debian's `redis-server`) on 127.0.0.1, keeping its data in a temporary
/// directory with every write appended to its log, so that it keeps its data across a restart.
pub struct RedisServer {
    child: Option<Child>,
    /// Port it listens on (kept across restarts).
    pub port: u16,
    data: TempDir,
    /// With TLS only: the directory of its certificate (`redis.pem`, `redis.key`) and of the
    /// authority that issued it (`ca.pem`).
    tls: Option<PathBuf>,
}

impl RedisServer {
    /// Starts Redis on a free port, installing it first if need be.
    pub fn start(name: &str) -> RedisServer {
        RedisServer::start_with(name, false)
    }

    /// Starts Redis serving TLS only, with a certificate for 127.0.0.1 from an authority made
    /// for it (`ca_file`), by openssl.
    pub fn start_tls(name: &str) -> RedisServer {
        RedisServer::start_with(name, true)
    }

    fn start_with(name: &str, tls: bool) -> RedisServer {
        let status = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/ensure-redis.sh"))
            .status()
            .expect("bash");
        assert!(status.success(), "tests/tools/ensure-redis.sh failed");
        let data = TempDir::new(&format!("redis-{name}"));
        let tls = tls.then(|| make_certificates(&data.path("tls")));
        let mut server = RedisServer {
            child: None,
            port: 0,
            data,
            tls,
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:PORT`, or `rediss://` with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The authority that issued a TLS server's certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.tls.as_ref().expect("a TLS server").join("ca.pem")
    }

    /// (Re)starts Redis on its port (a free one the first time) and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let port = match self.port {
                0 => std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port(),
                port => port,
            };
            let mut command = Command::new("redis-server");
            command.args(["--bind", "127.0.0.1"]);
            match &self.tls {
                None => command.args(["--port", &port.to_string()]),
                Some(dir) => command
                    .args(["--port", "0", "--tls-port", &port.to_string()])
                    .arg("--tls-cert-file")
                    .arg(dir.join("redis.pem"))
                    .arg("--tls-key-file")
                    .arg(dir.join("redis.key"))
                    .arg("--tls-ca-cert-file")
                    .arg(dir.join("ca.pem"))
                    .args(["--tls-auth-clients", "no"]),
            };
            let child = command
                .args([
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                ])
                .arg("--dir")
                .arg(self.data.root())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            self.child = Some(child);
            self.port = port;
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                if self.cli(&["PING"]).as_deref() == Some("PONG") {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            self.kill();
            assert!(Instant::now() < deadline, "redis-server did not start");
        }
    }

    /// Runs `redis-cli` against it: its output, trimmed; `None` when it failed.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let mut command = Command::new("redis-cli");
        if let Some(dir) = &self.tls {
            command.arg("--tls").arg("--cacert").arg(dir.join("ca.pem"));
        }
        let out = command
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !text.starts_with("Could not connect")).then_some(text)
    }

    /// Sends `signal` (`STOP`, `CONT`) to the server.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args(["-s", signal, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Kills the server (an outage); [`RedisServer::restart`] brings it back with its data.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Makes, in `dir`, an authority (`ca.pem`) and a certificate it issued for 127.0.0.1
/// (`redis.pem`, `redis.key`), with openssl; returns `dir`.
fn make_certificates(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=heare-auth test authority",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "redis.key",
            "-out",
            "redis.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "redis.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "redis.pem",
            "-days",
            "2",
            "-extfile",
            "ext",
        ],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir.to_path_buf()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-s", "CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}

/// Borrows an owned environment as `(&str, &str)` pairs.
pub fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// An HTTP/1.1 response read off a raw socket.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// Header lines as (lower-case name, value).
    pub headers: Vec<(String, String)>,
    /// The body (by `Content-Length`).
    pub body: String,
}

impl RawResponse {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The head of an HTTP/1.1 message read off a socket, a request's or a response's.
#[derive(Debug)]
pub struct Head {
    /// The request line or the status line, without its line break.
    pub start: String,
    /// Header lines as (name as sent, value), in order, repeated names kept.
    pub headers: Vec<(String, String)>,
}

/// Reads a message's head from `reader`: its first line, then header lines up to the empty
/// line (a line without a colon is skipped); `None` when the connection closed first.
pub fn read_head(reader: &mut impl BufRead) -> std::io::Result<Option<Head>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let start = line.trim_end().to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    Ok(Some(Head { start, headers }))
}

/// Reads one response from `reader`, its body by `Content-Length`; `None` when the connection
/// closed first.
pub fn read_response(reader: &mut impl BufRead) -> std::io::Result<Option<RawResponse>> {
    let Some(head) = read_head(reader)? else {
        return Ok(None);
    };
    let length: usize = head
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    raw_response(head, &body).map(Some)
}

/// Reads one response whose body ends where the connection does: the answer to a request
/// with `Connection: close`, or to a `HEAD`, whose `Content-Length` counts a body not sent.
pub fn read_response_to_close(reader: &mut impl BufRead) -> std::io::Result<RawResponse> {
    let head = read_head(reader)?.ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before answering")
    })?;
    let mut body = Vec::new();
    reader.read_to_end(&mut body)?;
    raw_response(head, &body)
}

/// A response of this head and body, copied to the transcript.
fn raw_response(head: Head, body: &[u8]) -> std::io::Result<RawResponse> {
    let status = head
        .start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not a status line: {:?}", head.start)))?;
    let headers = head
        .headers
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .collect();
    let response = RawResponse {
        status,
        headers,
        body: String::from_utf8_lossy(body).into_owned(),
    };
    let head: String = response
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\n"))
        .collect();
    transcribe_more("http", &format!("{status}\n{head}{}\n", response.body));
    Ok(response)
}

/// A `POST /verify` request for `secret` as raw bytes; `extra` headers end with `\r\n` each.
pub fn verify_request(secret: &str, extra: &str) -> String {
    let body = serde_json::json!({ "api_key": secret }).to_string();
    format!(
        "POST /verify HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

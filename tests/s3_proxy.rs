//! A front for the test S3 server that can change what passes through it: it forwards every
//! request to s3s-fs, signing it again (SigV4) for the host and headers it really sends. It
//! can drop the conditional-write headers on the way, like a store that accepts conditional
//! writes but ignores their conditions (Garage 2.x does), and inject faults into chosen
//! requests for the keys object: delays, cut connections, cut or damaged bodies, error
//! statuses, and writes that land while their answer is lost, cut short or garbled.

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::{read_head, S3_ACCESS_KEY, S3_SECRET_KEY};

/// A running front on 127.0.0.1, forwarding to an s3s-fs port; stops when dropped.
pub struct S3Proxy {
    /// `http://127.0.0.1:PORT`, to use as `S3_ENDPOINT`.
    pub endpoint: String,
    stop: Arc<AtomicBool>,
    port: u16,
    shared: Arc<Shared>,
}

/// What the connection threads share with the test.
#[derive(Default)]
struct Shared {
    fault: Mutex<Option<Fault>>,
    /// `METHOD path` of every request for the keys object (with ` bytes=…` for a GET of a
    /// range), and whether a fault hit it.
    seen: Mutex<Vec<(String, bool)>>,
    /// Bodies damaged so far.
    corrupted: std::sync::atomic::AtomicUsize,
}

/// A fault injected into requests for the keys object (the object named `keys.json`), its
/// changes (`keys.json.changes/...`) and their listings; the probe objects beside it pass
/// untouched.
#[derive(Clone, Copy, Debug)]
pub struct Fault {
    /// `GET`, `HEAD`, `PUT`, `DELETE`, `LIST` (a listing of the changes), or `*` for every
    /// method.
    pub method: &'static str,
    /// What happens to them.
    pub kind: FaultKind,
    /// How many matching requests it hits before passing the rest; `None`: until cleared.
    pub times: Option<u32>,
    /// Whether it hits the keys object alone, letting its changes and their listings pass.
    pub object_only: bool,
}

/// What a fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Holds the request this long before forwarding it (a write may land after the client
    /// gave up).
    Delay(Duration),
    /// Closes the connection without forwarding or answering anything.
    Cut,
    /// Answers this status with an S3 error document, forwarding nothing.
    Status(u16),
    /// Forwards the request line, the headers and half the body, then closes both sides: an
    /// upload cut short.
    CutUpload,
    /// Forwards the request, lets it land, then closes the client's connection unanswered.
    LoseAnswer,
    /// Forwards the request, lets it land, then relays the first half of the answer's status
    /// line and headers and closes.
    CutAnswer,
    /// Forwards the request, lets it land, then relays the answer with the digits of its
    /// status code turned into letters (`200` into `rpp`).
    GarbleAnswer,
    /// Relays the answer's headers and half its body, then closes.
    TruncateBody,
    /// Relays the answer with the middle byte of its body changed (same length, same
    /// headers), alternately by its lowest and its second-lowest bit, so that two reads in a
    /// row differ, as damage in transfer does.
    CorruptBody,
}

impl Fault {
    /// `kind` on every `method` request for the keys object until cleared.
    pub fn always(method: &'static str, kind: FaultKind) -> Fault {
        Fault {
            method,
            kind,
            times: None,
            object_only: false,
        }
    }

    /// `kind` on the next `times` `method` requests for the keys object.
    pub fn times(method: &'static str, kind: FaultKind, times: u32) -> Fault {
        Fault {
            method,
            kind,
            times: Some(times),
            object_only: false,
        }
    }

    /// The same fault, hitting the keys object alone: a writer's changes land, its folds
    /// into the object do not.
    pub fn object_only(self) -> Fault {
        Fault {
            object_only: true,
            ..self
        }
    }
}

/// What the front does to requests.
#[derive(Clone, Copy, Debug, Default)]
pub struct Behaviour {
    /// Drop `If-Match` and `If-None-Match`: conditional writes are accepted and ignored.
    pub strip_conditions: bool,
}

impl S3Proxy {
    /// Starts a front forwarding to `127.0.0.1:upstream`.
    pub fn start(upstream: u16, behaviour: Behaviour) -> S3Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let shared = Arc::new(Shared::default());
        let sharing = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let shared = sharing.clone();
                std::thread::spawn(move || {
                    let _ = forward(client, upstream, behaviour, &shared);
                });
            }
        });
        S3Proxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            stop,
            port,
            shared,
        }
    }

    /// Injects `fault` (replacing any other) into the requests that follow.
    pub fn inject(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap() = Some(fault);
    }

    /// Lets every request through again.
    pub fn clear(&self) {
        *self.shared.fault.lock().unwrap() = None;
    }

    /// `METHOD path` of the requests for the keys object so far (` bytes=…` after a GET of a
    /// range), and whether a fault hit each.
    pub fn seen(&self) -> Vec<(String, bool)> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// How many requests for the keys object a fault hit so far.
    pub fn faulted(&self) -> usize {
        self.seen().iter().filter(|(_, hit)| *hit).count()
    }
}

/// Whether a request is for the keys object or its changes: the object itself, a change
/// (`keys.json.changes/N.json`), or a listing of the changes.
fn keys_request(target: &str) -> bool {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    path.ends_with("/keys.json")
        || path.contains("/keys.json.changes/")
        || query.contains("prefix=keys.json.changes")
}

impl Shared {
    /// The fault that hits this request, if any, counting it down; records the request.
    fn take(&self, method: &str, target: &str, range: Option<&str>) -> Option<FaultKind> {
        if !keys_request(target) {
            return None;
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        // A listing is a GET of the bucket; faults name it `LIST`.
        let method = match method == "GET" && query.contains("prefix=") {
            true => "LIST",
            false => method,
        };
        let mut fault = self.fault.lock().unwrap();
        let hit = match fault.as_mut() {
            Some(f)
                if (f.method == "*" || f.method == method)
                    && (!f.object_only || path.ends_with("/keys.json")) =>
            {
                let kind = f.kind;
                if let Some(times) = &mut f.times {
                    *times -= 1;
                    if *times == 0 {
                        *fault = None;
                    }
                }
                Some(kind)
            }
            _ => None,
        };
        let range = range.map(|r| format!(" {r}")).unwrap_or_default();
        self.seen
            .lock()
            .unwrap()
            .push((format!("{method} {path}{range}"), hit.is_some()));
        hit
    }
}

impl Drop for S3Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One request: read it, rewrite and re-sign it, send it upstream, relay the answer, close;
/// with a fault, do what it says instead.
fn forward(
    client: TcpStream,
    upstream: u16,
    behaviour: Behaviour,
    shared: &Shared,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let Some(head) = read_head(&mut reader)? else {
        return Ok(());
    };
    let request_line = format!("{}\r\n", head.start);
    let mut headers: Vec<(String, String)> = head
        .headers
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .collect();
    let length: usize = header(&headers, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;

    let mut fields = request_line.split_whitespace();
    let method = fields.next().unwrap_or("").to_string();
    let target = fields.next().unwrap_or("");
    let fault = shared.take(&method, target, header(&headers, "range"));
    let mut client = client;
    match fault {
        Some(FaultKind::Cut) => return client.shutdown(Shutdown::Both),
        Some(FaultKind::Status(status)) => {
            let body = format!(
                "<?xml version=\"1.0\"?><Error><Code>Injected{status}</Code>\
                 <Message>injected by the test front</Message></Error>"
            );
            write!(
                client,
                "HTTP/1.1 {status} Injected\r\ncontent-type: application/xml\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )?;
            return client.shutdown(Shutdown::Both);
        }
        Some(FaultKind::Delay(delay)) => std::thread::sleep(delay),
        _ => {}
    }

    let host = format!("127.0.0.1:{upstream}");
    headers.retain(|(name, _)| {
        !(name == "connection"
            || behaviour.strip_conditions && (name == "if-match" || name == "if-none-match"))
    });
    for (name, value) in &mut headers {
        if name == "host" {
            *value = host.clone();
        }
    }
    sign(&request_line, &mut headers);

    let mut out = TcpStream::connect(&host)?;
    let mut request = request_line.clone();
    for (name, value) in &headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("connection: close\r\n\r\n");
    out.write_all(request.as_bytes())?;
    if fault == Some(FaultKind::CutUpload) {
        out.write_all(&body[..body.len() / 2])?;
        out.flush()?;
        // Give the store time to read what was sent before the connection drops.
        std::thread::sleep(Duration::from_millis(50));
        out.shutdown(Shutdown::Both)?;
        return client.shutdown(Shutdown::Both);
    }
    out.write_all(&body)?;
    let mut response = Vec::new();
    out.read_to_end(&mut response)?;
    let body_at = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    match fault {
        Some(FaultKind::LoseAnswer) => return client.shutdown(Shutdown::Both),
        Some(FaultKind::CutAnswer) => response.truncate(body_at / 2),
        // `HTTP/1.1 200 OK`: the status code is bytes 9 to 11.
        Some(FaultKind::GarbleAnswer) => {
            for byte in response.iter_mut().skip(9).take(3) {
                *byte ^= 0x40;
            }
        }
        Some(FaultKind::TruncateBody) => {
            let half = body_at + (response.len() - body_at) / 2;
            response.truncate(half);
        }
        Some(FaultKind::CorruptBody) if response.len() > body_at => {
            let middle = body_at + (response.len() - body_at) / 2;
            let n = shared.corrupted.fetch_add(1, Ordering::SeqCst);
            response[middle] ^= 0x01 << (n % 2);
        }
        _ => {}
    }
    client.write_all(&response)?;
    client.shutdown(Shutdown::Both)
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Replaces the `authorization` header with an AWS Signature Version 4 over the request as it
/// now is, signing every header it has, with the test server's credentials and the client's
/// date, region and payload hash.
fn sign(request_line: &str, headers: &mut Vec<(String, String)>) {
    let Some(authorization) = header(headers, "authorization").map(String::from) else {
        return;
    };
    // Credential=AK/DATE/REGION/s3/aws4_request
    let scope = authorization
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split(',').next())
        .and_then(|c| c.split_once('/'))
        .map(|(_, scope)| scope.to_string())
        .unwrap_or_default();
    let mut parts = scope.split('/');
    let (date, region) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let amz_date = header(headers, "x-amz-date").unwrap_or("").to_string();
    let payload = header(headers, "x-amz-content-sha256")
        .unwrap_or("UNSIGNED-PAYLOAD")
        .to_string();
    headers.retain(|(name, _)| name != "authorization");

    let mut fields = request_line.split_whitespace();
    let method = fields.next().unwrap_or("GET");
    let target = fields.next().unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    params.sort();
    let query: Vec<String> = params
        .iter()
        .map(|p| {
            if p.contains('=') {
                p.to_string()
            } else {
                format!("{p}=")
            }
        })
        .collect();
    let mut signed: Vec<(String, String)> = headers.clone();
    signed.sort();
    let canonical_headers: String = signed
        .iter()
        .map(|(n, v)| format!("{n}:{}\n", v.trim()))
        .collect();
    let signed_names: Vec<&str> = signed.iter().map(|(n, _)| n.as_str()).collect();
    let signed_names = signed_names.join(";");
    let canonical = format!(
        "{method}\n{path}\n{}\n{canonical_headers}\n{signed_names}\n{payload}",
        query.join("&")
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{S3_SECRET_KEY}").as_bytes(), date);
    for part in [region, "s3", "aws4_request"] {
        key = hmac(&key, part);
    }
    let signature = hex(&hmac(&key, &to_sign));
    headers.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={S3_ACCESS_KEY}/{scope}, SignedHeaders={signed_names}, Signature={signature}"
        ),
    ));
}

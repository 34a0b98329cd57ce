//! A front for the test S3 server that can change what passes through it: it forwards every
//! request to s3s-fs, signing it again (SigV4) for the host and headers it really sends, and
//! can drop the conditional-write headers on the way, like a store that accepts conditional
//! writes but ignores their conditions (Garage 2.x does).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::{S3_ACCESS_KEY, S3_SECRET_KEY};

/// A running front on 127.0.0.1, forwarding to an s3s-fs port; stops when dropped.
pub struct S3Proxy {
    /// `http://127.0.0.1:PORT`, to use as `S3_ENDPOINT`.
    pub endpoint: String,
    stop: Arc<AtomicBool>,
    port: u16,
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
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                std::thread::spawn(move || {
                    let _ = forward(client, upstream, behaviour);
                });
            }
        });
        S3Proxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            stop,
            port,
        }
    }
}

impl Drop for S3Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One request: read it, rewrite and re-sign it, send it upstream, relay the answer, close.
fn forward(client: TcpStream, upstream: u16, behaviour: Behaviour) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let length: usize = header(&headers, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;

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
    out.write_all(&body)?;
    let mut response = Vec::new();
    out.read_to_end(&mut response)?;
    let mut client = client;
    client.write_all(&response)?;
    client.shutdown(std::net::Shutdown::Both)
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

//! An S3 object (AWS S3, R2, MinIO, Garage, ...): ETag versions, conditional PUTs, checksums,
//! timeouts; its changes are objects under `KEY.changes/`, each created `If-None-Match: *`,
//! and so is the index of the snapshot (`KEY.changes/index`), read in ranges `If-Match` the
//! version first read.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use rand_core::{OsRng, RngCore};
use s3::creds::Credentials;
use s3::{Bucket, Region};
use sha2::{Digest, Sha256};

use crate::backend::{change_name, change_seq, Backend, Object, Parts, Put, INDEX_NAME};
use crate::Error;

/// Where the keys object is, and the credentials to reach it.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// `S3_BUCKET`.
    pub bucket: String,
    /// `S3_KEY` (default `keys.json`).
    pub key: String,
    /// `S3_REGION` (default `us-east-1`).
    pub region: String,
    /// A custom endpoint (`S3_ENDPOINT`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`); addressed
    /// path-style.
    pub endpoint: Option<String>,
    /// Bound on every request (`S3_TIMEOUT` seconds, default 10).
    pub timeout: Duration,
    /// `AWS_ACCESS_KEY_ID`; when absent, rust-s3's chain (profile, STS, container, instance).
    pub access_key: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_key: Option<String>,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<String>,
    /// `S3_UNSAFE_WRITES=1`: write without conditions, for stores that do not honour them.
    pub unsafe_writes: bool,
}

/// Never prints the secret key or the session token.
impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .field("access_key", &self.access_key)
            .field("unsafe_writes", &self.unsafe_writes)
            .finish_non_exhaustive()
    }
}

impl S3Config {
    /// Where the keys object is, as messages name it: `s3://BUCKET/KEY`.
    pub fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// The keys file as one S3 object.
pub struct S3Backend {
    bucket: Box<Bucket>,
    /// The same bucket, asking GETs for the object's stored checksum.
    reader: Box<Bucket>,
    key: String,
    location: String,
    unsafe_writes: bool,
    /// Whether the store honours conditional writes, found out once per process.
    /// What the probe of conditional writes found, once it found an answer (an outage is no
    /// answer: the next write probes again).
    conditions: Mutex<Option<Result<(), Error>>>,
}

/// Bounds on the wait, after a write, for a racing write to land (see [`Backend::settle`]).
const SETTLE_MIN: Duration = Duration::from_millis(50);
const SETTLE_MAX: Duration = Duration::from_secs(1);
/// Asks a GET to answer with the checksum stored with the object.
const CHECKSUM_MODE: &str = "x-amz-checksum-mode";
/// The SHA-256 of an object's content, base64, sent with every write and checked on every read.
const CHECKSUM: &str = "x-amz-checksum-sha256";
/// How many times a damaged body is read before the read fails.
const DAMAGED_READS: u32 = 4;
/// An ETag no object has: a PUT conditional on it must be refused.
const NO_SUCH_ETAG: &str = "\"heare-auth-probe-never-matches\"";

impl S3Backend {
    /// Resolves credentials (environment, profile, then the rest of rust-s3's chain) and
    /// prepares the client. Sends nothing.
    pub fn new(config: &S3Config) -> Result<S3Backend, Error> {
        let location = config.location();
        let fail = |what: String| Error::unavailable(&location, what);
        // We retry at our own level (polls, update conflicts, start-up), never inside a call.
        s3::set_retries(0);
        let credentials = Credentials::new(
            config.access_key.as_deref(),
            config.secret_key.as_deref(),
            None,
            config.session_token.as_deref(),
            None,
        )
        .map_err(|e| {
            fail(format!(
                "no S3 credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY): {e}"
            ))
        })?;
        let region = match &config.endpoint {
            Some(endpoint) => Region::Custom {
                region: config.region.clone(),
                endpoint: endpoint.trim_end_matches('/').to_string(),
            },
            None => config
                .region
                .parse()
                .map_err(|e| fail(format!("invalid S3_REGION '{}': {e}", config.region)))?,
        };
        let mut bucket =
            Bucket::new(&config.bucket, region, credentials).map_err(|e| fail(e.to_string()))?;
        if config.endpoint.is_some() {
            bucket = bucket.with_path_style();
        }
        bucket.set_request_timeout(Some(config.timeout));
        let mut reader = bucket.clone();
        reader.add_header(CHECKSUM_MODE, "ENABLED");
        Ok(S3Backend {
            bucket,
            reader,
            key: config.key.clone(),
            location,
            unsafe_writes: config.unsafe_writes,
            conditions: Mutex::new(None),
        })
    }

    fn fail(&self, what: impl std::fmt::Display) -> Error {
        Error::unavailable(&self.location, what)
    }

    /// Turns an error status into a message naming the cause.
    fn status_error(&self, operation: &str, status: u16, body: &[u8]) -> Error {
        let body = String::from_utf8_lossy(body);
        let code = xml_tag(&body, "Code");
        let message = xml_tag(&body, "Message");
        let cause = match (status, code) {
            (403, Some("SignatureDoesNotMatch")) => {
                "access denied: wrong AWS_SECRET_ACCESS_KEY (SignatureDoesNotMatch)".to_string()
            }
            (403, Some("InvalidAccessKeyId")) => {
                "access denied: unknown AWS_ACCESS_KEY_ID (InvalidAccessKeyId)".to_string()
            }
            (403, _) => {
                "access denied (403): check the credentials and the bucket policy".to_string()
            }
            (404, Some("NoSuchBucket")) => "the bucket does not exist (NoSuchBucket)".to_string(),
            (s, Some(c)) => format!("HTTP {s} {c}"),
            (s, None) => format!("HTTP {s}"),
        };
        let detail = message.map(|m| format!(": {m}")).unwrap_or_default();
        self.fail(format!("{operation} failed: {cause}{detail}"))
    }
}

/// The text of the first `<tag>…</tag>` in an S3 error document.
fn xml_tag<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..end])
}

/// How a body read differs from what the store says it holds.
enum Damage {
    /// Shorter or longer than its `Content-Length`.
    Short(String),
    /// Not matching the SHA-256 stored with it: (the body's digest, the stored checksum).
    Checksum((String, String)),
}

/// What is wrong with a body, if anything. Objects written here carry a checksum; objects
/// written by other tools may not, and are taken as they come.
fn damage(headers: &std::collections::HashMap<String, String>, body: &[u8]) -> Option<Damage> {
    let length = header(headers, "content-length").and_then(|l| l.parse::<usize>().ok());
    if let Some(length) = length.filter(|length| *length != body.len()) {
        return Some(Damage::Short(format!(
            "{} bytes of {length}: the transfer was cut short",
            body.len()
        )));
    }
    let stored = header(headers, CHECKSUM)?;
    let digest = sha256_base64(body);
    (stored != digest).then_some(Damage::Checksum((digest, stored)))
}

/// The SHA-256 of `bytes`, base64, as S3 checksums are written.
fn sha256_base64(bytes: &[u8]) -> String {
    BASE64.encode(Sha256::digest(bytes))
}

fn header(headers: &std::collections::HashMap<String, String>, name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

fn etag(headers: &std::collections::HashMap<String, String>) -> Option<String> {
    header(headers, "etag")
}

impl Backend for S3Backend {
    fn location(&self) -> &str {
        &self.location
    }

    fn get(&self) -> Result<Option<Object>, Error> {
        self.get_object(&self.key)
    }

    fn version(&self) -> Result<Option<String>, Error> {
        let (head, status) = self
            .bucket
            .head_object(&self.key)
            .map_err(|e| self.fail(format!("HEAD failed: {e}")))?;
        match status {
            200 => head
                .e_tag
                .map(Some)
                .ok_or_else(|| self.fail("HEAD answered without an ETag")),
            // HEAD has no body to tell a missing key from a missing bucket; GET will say.
            404 => self.get().map(|o| o.map(|o| o.version)),
            status => Err(self.status_error("HEAD", status, &[])),
        }
    }

    fn check_writes(&self) -> Result<(), Error> {
        if self.unsafe_writes {
            return Ok(());
        }
        let mut found = self
            .conditions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(result) = &*found {
            return result.clone();
        }
        let result = self.probe();
        if !matches!(
            result,
            Err(Error::Unavailable { .. } | Error::Unanswered { .. })
        ) {
            *found = Some(result.clone());
        }
        result
    }

    fn put(&self, bytes: &[u8], expected: Option<&str>) -> Result<Put, Error> {
        if self.unsafe_writes {
            return self.put_object(&self.key, bytes, None);
        }
        match expected {
            Some(etag) => self.put_object(&self.key, bytes, Some(("If-Match", etag))),
            None => self.put_object(&self.key, bytes, Some(("If-None-Match", "*"))),
        }
    }

    fn settle(&self, took: Duration) -> bool {
        if self.unsafe_writes {
            return false;
        }
        // A write that passed the store's check alongside ours lands within about one PUT.
        std::thread::sleep((took * 2).clamp(SETTLE_MIN, SETTLE_MAX));
        true
    }

    fn list_changes(&self, from: u64) -> Result<Vec<u64>, Error> {
        use s3::request::Request;
        let prefix = self.changes_prefix();
        // Every name before `from`'s sorts before it.
        let start_after = from.checked_sub(1).map(|before| self.change_key(before));
        let mut seqs = Vec::new();
        let mut token = None;
        loop {
            let command = s3::command::Command::ListObjectsV2 {
                prefix: prefix.clone(),
                delimiter: None,
                continuation_token: token.take(),
                start_after: start_after.clone(),
                max_keys: None,
            };
            let response = s3::request::blocking::AttoRequest::new(&self.bucket, "/", command)
                .and_then(|request| request.response_data(false))
                .map_err(|e| self.fail(format!("LIST failed: {e}")))?;
            let body = String::from_utf8_lossy(response.as_slice()).into_owned();
            if !(200..300).contains(&response.status_code()) {
                return Err(self.status_error("LIST", response.status_code(), body.as_bytes()));
            }
            let mut rest = body.as_str();
            while let Some(start) = rest.find("<Key>") {
                rest = &rest[start + 5..];
                let end = rest.find("</Key>").unwrap_or(rest.len());
                let name = rest[..end]
                    .strip_prefix(prefix.as_str())
                    .unwrap_or_default();
                seqs.extend(change_seq(name).filter(|&seq| seq >= from));
                rest = &rest[end..];
            }
            match (
                xml_tag(&body, "IsTruncated"),
                xml_tag(&body, "NextContinuationToken"),
            ) {
                (Some("true"), Some(next)) => token = Some(next.to_string()),
                _ => break,
            }
        }
        seqs.sort_unstable();
        Ok(seqs)
    }

    fn get_change(&self, seq: u64) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.get_object(&self.change_key(seq))?.map(|o| o.bytes))
    }

    fn create_change(&self, seq: u64, bytes: &[u8]) -> Result<Put, Error> {
        let condition = (!self.unsafe_writes).then_some(("If-None-Match", "*"));
        self.put_object(&self.change_key(seq), bytes, condition)
    }

    fn snapshot_parts(&self, version: &str) -> Result<Option<Box<dyn Parts + '_>>, Error> {
        // Absent keys are told by the index alone: the object must be this version now.
        if self.version()?.as_deref() != Some(version) {
            return Ok(None);
        }
        Ok(Some(Box::new(S3Parts {
            backend: self,
            key: self.key.clone(),
            etag: Mutex::new(Some(version.to_string())),
        })))
    }

    fn index_parts(&self) -> Result<Option<Box<dyn Parts + '_>>, Error> {
        let parts = S3Parts {
            backend: self,
            key: format!("{}{INDEX_NAME}", self.changes_prefix()),
            etag: Mutex::new(None),
        };
        // Its first part says whether there is one, and its version.
        match parts.read_at(0, 1)? {
            Some(_) => Ok(Some(Box::new(parts))),
            None => Ok(None),
        }
    }

    fn put_index(&self, bytes: &[u8]) -> Result<(), Error> {
        let key = format!("{}{INDEX_NAME}", self.changes_prefix());
        self.put_object(&key, bytes, None).map(drop)
    }

    fn delete_change(&self, seq: u64) -> Result<(), Error> {
        let response = self
            .bucket
            .delete_object(self.change_key(seq))
            .map_err(|e| self.fail(format!("DELETE failed: {e}")))?;
        match response.status_code() {
            200..=299 | 404 => Ok(()),
            status => Err(self.status_error("DELETE", status, response.bytes())),
        }
    }
}

/// One version of an object, read in ranges: the first read learns the version (its ETag),
/// each later one asks for it (`If-Match`).
struct S3Parts<'b> {
    backend: &'b S3Backend,
    key: String,
    etag: Mutex<Option<String>>,
}

impl Parts for S3Parts<'_> {
    fn read_at(&self, start: u64, len: usize) -> Result<Option<Vec<u8>>, Error> {
        let backend = self.backend;
        if len == 0 {
            return Ok(Some(Vec::new()));
        }
        let known = self
            .etag
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut bucket = backend.bucket.clone();
        if let Some(etag) = &known {
            bucket.add_header("If-Match", etag);
        }
        let response = bucket
            .get_object_range(&self.key, start, Some(start + len as u64 - 1))
            .map_err(|e| backend.fail(format!("GET failed: {e}")))?;
        match response.status_code() {
            200 | 206 => {
                let headers = response.headers();
                let etag = etag(&headers);
                if etag.is_none() || (known.is_some() && etag != known) {
                    return Ok(None);
                }
                let body = response.bytes();
                // A store that ignores the range sends the whole object.
                let body = match response.status_code() {
                    200 => body.get(start as usize..).unwrap_or_default(),
                    _ => body,
                };
                let length = header(&headers, "content-length").and_then(|l| l.parse().ok());
                if response.status_code() == 206 && length.is_some_and(|l: usize| l != body.len()) {
                    return Err(Error::Damaged {
                        location: backend.location.clone(),
                        message: "GET returned a part cut short".into(),
                    });
                }
                *self.etag.lock().unwrap_or_else(PoisonError::into_inner) = etag;
                Ok(Some(body[..body.len().min(len)].to_vec()))
            }
            // Past the end of the object.
            416 => Ok(Some(Vec::new())),
            412 | 404 => Ok(None),
            status => Err(backend.status_error("GET", status, response.bytes())),
        }
    }
}

impl S3Backend {
    /// Reads `key`, its content checked against its length and stored checksum; `None` when
    /// it does not exist.
    fn get_object(&self, key: &str) -> Result<Option<Object>, Error> {
        // A body that does not match its checksum, as last read: (its digest, the checksum).
        let mut mismatch: Option<(String, String)> = None;
        let mut reads = 1;
        loop {
            let response = self
                .reader
                .get_object(key)
                .map_err(|e| self.fail(format!("GET failed: {e}")))?;
            return match response.status_code() {
                200 => {
                    let headers = response.headers();
                    let version =
                        etag(&headers).ok_or_else(|| self.fail("GET answered without an ETag"))?;
                    let body = response.bytes();
                    let damage = match damage(&headers, body) {
                        None => None,
                        // The same content and checksum twice in a row is what the store holds,
                        // not damage in transfer (which does not repeat itself): a store that
                        // keeps content and checksum apart (s3s-fs does) can pair one write's
                        // content with another's checksum when two writes race.
                        Some(Damage::Checksum(pair)) if mismatch.as_ref() == Some(&pair) => None,
                        Some(Damage::Checksum(pair)) => {
                            mismatch = Some(pair);
                            Some(
                                "content that does not match its stored SHA-256 checksum: it \
                                  was damaged in transfer"
                                    .to_string(),
                            )
                        }
                        Some(Damage::Short(message)) => Some(message),
                    };
                    if let Some(damage) = damage {
                        if reads < DAMAGED_READS {
                            // 25 ms, 50 ms, ... with jitter, so racing readers spread out.
                            let ceiling = 25u64 << reads;
                            let wait = ceiling / 2 + u64::from(OsRng.next_u32()) % ceiling;
                            std::thread::sleep(Duration::from_millis(wait));
                            reads += 1;
                            continue;
                        }
                        return Err(Error::Damaged {
                            location: self.location.clone(),
                            message: format!("GET returned {damage} ({reads} reads)"),
                        });
                    }
                    Ok(Some(Object {
                        bytes: body.to_vec(),
                        version,
                        date: header(&headers, "date"),
                    }))
                }
                404 if xml_tag(&String::from_utf8_lossy(response.bytes()), "Code")
                    != Some("NoSuchBucket") =>
                {
                    Ok(None)
                }
                status => Err(self.status_error("GET", status, response.bytes())),
            };
        }
    }

    /// The name of change `seq`, beside the keys object.
    fn change_key(&self, seq: u64) -> String {
        format!("{}{}", self.changes_prefix(), change_name(seq))
    }

    fn changes_prefix(&self) -> String {
        format!("{}.changes/", self.key)
    }

    /// One PUT of `bytes` to `key`, with an optional condition header.
    fn put_object(
        &self,
        key: &str,
        bytes: &[u8],
        condition: Option<(&str, &str)>,
    ) -> Result<Put, Error> {
        let mut request = self
            .bucket
            .put_object_builder(key, bytes)
            .with_content_type("application/json")
            .with_header(CHECKSUM, sha256_base64(bytes).as_str())
            .map_err(|e| self.fail(format!("PUT failed: {e}")))?;
        if let Some((header, value)) = condition {
            request = request
                .with_header(header, value)
                .map_err(|e| self.fail(format!("PUT failed: {e}")))?;
        }
        let response = request.execute().map_err(|e| Error::Unanswered {
            location: self.location.clone(),
            message: format!("PUT failed: {e}"),
        })?;
        match response.status_code() {
            200..=299 => Ok(Put::Written(etag(&response.headers()))),
            // 409 ConditionalRequestConflict: another conditional write is in progress.
            412 | 409 if condition.is_some() => Ok(Put::Conflict),
            status @ (400 | 501) if condition.is_some() => Err(Error::ConditionsRejected {
                location: self.location.clone(),
                status,
            }),
            status => Err(self.status_error("PUT", status, response.bytes())),
        }
    }

    /// Finds out whether the store honours conditional writes, on an object of its own beside
    /// the keys object (which is never touched), deleted afterwards: after an unconditional
    /// write, a write `If-None-Match: *` and one `If-Match` a made-up ETag must both be refused.
    fn probe(&self) -> Result<(), Error> {
        // A name of its own, so that processes probing at once do not see each other's probe.
        let key = format!("{}.heare-auth-probe-{:016x}", self.key, OsRng.next_u64());
        let body = b"heare-auth checks that this store honours conditional writes";
        self.put_object(&key, body, None)?;
        let checks = [("If-None-Match", "*"), ("If-Match", NO_SUCH_ETAG)];
        let mut result = Ok(());
        for condition in checks {
            match self.put_object(&key, body, Some(condition)) {
                Ok(Put::Conflict) => {}
                Ok(Put::Written(_)) => {
                    result = Err(Error::ConditionsIgnored {
                        location: self.location.clone(),
                    });
                    break;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let _ = self.bucket.delete_object(&key);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::xml_tag;

    #[test]
    fn reads_s3_error_codes() {
        let body =
            "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>gone</Message></Error>";
        assert_eq!(xml_tag(body, "Code"), Some("NoSuchKey"));
        assert_eq!(xml_tag(body, "Message"), Some("gone"));
        assert_eq!(xml_tag(body, "RequestId"), None);
        assert_eq!(xml_tag("", "Code"), None);
    }
}

/// How the backend reports stores that do not honour conditional writes. No real S3 server
/// misbehaves like this on purpose, so these answer from a scripted HTTP endpoint on loopback.
#[cfg(test)]
mod misbehaving_store_tests {
    use super::*;

    /// Answers every request with `status` and an ETag, from a thread that lives as long as
    /// the test process.
    fn store_answering(status: u16) -> S3Backend {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(n) = lower.strip_prefix("content-length:") {
                        length = n.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nETag: \"abc\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        let config = S3Config {
            bucket: "b".into(),
            key: "keys.json".into(),
            region: "us-east-1".into(),
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            timeout: Duration::from_secs(2),
            access_key: Some("AK".into()),
            secret_key: Some("SK".into()),
            session_token: None,
            unsafe_writes: false,
        };
        S3Backend::new(&config).unwrap()
    }

    #[test]
    fn a_store_that_ignores_conditions_is_found_out_before_any_write() {
        let backend = store_answering(200);
        let ignored = Error::ConditionsIgnored {
            location: "s3://b/keys.json".into(),
        };
        assert_eq!(backend.check_writes(), Err(ignored.clone()));
        // Once per process.
        assert_eq!(backend.check_writes(), Err(ignored));
    }

    #[test]
    fn a_store_that_rejects_conditions_is_reported() {
        for status in [400, 501] {
            let backend = store_answering(status);
            assert_eq!(
                backend.put(b"{}", None),
                Err(Error::ConditionsRejected {
                    location: "s3://b/keys.json".into(),
                    status
                })
            );
        }
    }
}

//! Choosing the store from the environment: S3 when `S3_BUCKET` is set, else a local file.

use std::time::Duration;

use crate::{Error, FileBackend, InvalidSetting, S3Backend, S3Config, Store};
use heare_auth_core::{parse_seconds, Zero};

/// Default path of the local keys file.
pub const DEFAULT_KEYS_FILE: &str = "./keys.json";

/// Which store to use, as the environment chose it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A local file (`KEYS_FILE`, default `./keys.json`).
    File(String),
    /// An S3 object (`S3_BUCKET`, `S3_KEY`, `S3_REGION`, `S3_ENDPOINT`).
    S3(S3Config),
}

/// The store selection shared by the server and the CLI.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Where the keys file is.
    pub location: Location,
    /// `STORAGE_SECRET`: encrypts what is written; needed to read encrypted files.
    pub storage_secret: Option<String>,
}

/// Never prints the storage secret.
impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("location", &self.location)
            .field("encrypted", &self.storage_secret.is_some())
            .finish()
    }
}

impl StoreConfig {
    /// A plaintext local file.
    pub fn file(path: &str) -> StoreConfig {
        StoreConfig {
            location: Location::File(path.to_string()),
            storage_secret: None,
        }
    }

    /// Chooses the store from environment variables, read through `env`.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<StoreConfig, Error> {
        let set = |name: &str| env(name).filter(|v| !v.is_empty());
        let location = match set("S3_BUCKET") {
            None => {
                Location::File(set("KEYS_FILE").unwrap_or_else(|| DEFAULT_KEYS_FILE.to_string()))
            }
            Some(bucket) => {
                let timeout = match set("S3_TIMEOUT") {
                    None => Duration::from_secs(10),
                    Some(t) => parse_seconds(&t, Zero::Refused).ok_or_else(|| {
                        InvalidSetting::new("S3_TIMEOUT", Zero::Refused.expected(), &t)
                    })?,
                };
                let unsafe_writes = match set("S3_UNSAFE_WRITES").as_deref() {
                    None | Some("0") => false,
                    Some("1") => true,
                    Some(other) => {
                        return Err(InvalidSetting::new("S3_UNSAFE_WRITES", "1 or 0", other).into())
                    }
                };
                Location::S3(S3Config {
                    bucket,
                    key: set("S3_KEY").unwrap_or_else(|| "keys.json".into()),
                    region: set("S3_REGION").unwrap_or_else(|| "us-east-1".into()),
                    endpoint: set("S3_ENDPOINT")
                        .or_else(|| set("AWS_ENDPOINT_URL_S3"))
                        .or_else(|| set("AWS_ENDPOINT_URL")),
                    timeout,
                    access_key: set("AWS_ACCESS_KEY_ID"),
                    secret_key: set("AWS_SECRET_ACCESS_KEY"),
                    session_token: set("AWS_SESSION_TOKEN"),
                    unsafe_writes,
                })
            }
        };
        Ok(StoreConfig {
            location,
            storage_secret: set("STORAGE_SECRET"),
        })
    }

    /// Opens the store (for S3: resolves credentials; no request is sent yet).
    pub fn open(&self) -> Result<Store, Error> {
        let backend: Box<dyn crate::Backend> = match &self.location {
            Location::File(path) => Box::new(FileBackend::new(path)),
            Location::S3(config) => Box::new(S3Backend::new(config)?),
        };
        Ok(Store::new(backend, self.storage_secret.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<StoreConfig, Error> {
        StoreConfig::from_env(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn file_is_the_default() {
        assert_eq!(from(&[]), Ok(StoreConfig::file("./keys.json")));
        assert_eq!(
            from(&[("KEYS_FILE", "/k.json"), ("S3_BUCKET", "")]),
            Ok(StoreConfig::file("/k.json"))
        );
    }

    #[test]
    fn s3_bucket_selects_s3_with_the_original_defaults() {
        let c = from(&[
            ("S3_BUCKET", "b"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("STORAGE_SECRET", "x"),
            ("AWS_ACCESS_KEY_ID", "AK"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret"),
        ])
        .unwrap();
        assert_eq!(
            c.location,
            Location::S3(S3Config {
                bucket: "b".into(),
                key: "keys.json".into(),
                region: "us-east-1".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
                timeout: Duration::from_secs(10),
                access_key: Some("AK".into()),
                secret_key: Some("very-secret".into()),
                session_token: None,
                unsafe_writes: false,
            })
        );
        assert_eq!(c.storage_secret.as_deref(), Some("x"));
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("\"x\"") && !debug.contains("very-secret"),
            "{debug}"
        );
        let c = from(&[
            ("S3_BUCKET", "b"),
            ("S3_KEY", "prod/keys.json"),
            ("S3_REGION", "eu-west-1"),
            ("S3_ENDPOINT", "http://a"),
            ("AWS_ENDPOINT_URL_S3", "http://b"),
            ("S3_TIMEOUT", "2.5"),
        ])
        .unwrap();
        let Location::S3(s3) = c.location else {
            panic!("not S3")
        };
        assert_eq!(
            (s3.key.as_str(), s3.region.as_str(), s3.endpoint.as_deref()),
            ("prod/keys.json", "eu-west-1", Some("http://a"))
        );
        assert_eq!(s3.timeout, Duration::from_millis(2500));
        assert_eq!(
            from(&[("S3_BUCKET", "b"), ("S3_TIMEOUT", "soon")]),
            Err(Error::Setting(InvalidSetting::new(
                "S3_TIMEOUT",
                "a positive number of seconds",
                "soon"
            )))
        );
        assert_eq!(
            from(&[("S3_BUCKET", "b"), ("S3_UNSAFE_WRITES", "yes")]),
            Err(Error::Setting(InvalidSetting::new(
                "S3_UNSAFE_WRITES",
                "1 or 0",
                "yes"
            )))
        );
        let Location::S3(s3) = from(&[("S3_BUCKET", "b"), ("S3_UNSAFE_WRITES", "1")])
            .unwrap()
            .location
        else {
            panic!("not S3")
        };
        assert!(s3.unsafe_writes);
    }

    #[test]
    fn an_s3_store_is_named_by_its_bucket_and_key() {
        let Location::S3(s3) = from(&[("S3_BUCKET", "b"), ("S3_KEY", "prod/keys.json")])
            .unwrap()
            .location
        else {
            panic!("not S3")
        };
        assert_eq!(s3.location(), "s3://b/prod/keys.json");
    }
}

//! One record of the keys file as the loader and the checker read it, before any rule is applied.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::secret_field::read;

/// The verifier's view of one record: unknown fields are skipped, strings borrowed when possible,
/// and a secret or hash of the wrong type refused without its value.
#[derive(Deserialize)]
#[serde(expecting = "a key (a JSON object)")]
pub(super) struct RecordFields<'a> {
    #[serde(borrow)]
    pub(super) id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "read::secret")]
    pub(super) secret: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "read::secret_hash")]
    pub(super) secret_hash: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) expires_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) metadata: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) scopes: Option<&'a RawValue>,
    pub(super) disabled: Option<bool>,
    #[serde(borrow)]
    pub(super) rate_limit: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) credits: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "read::previous_secret_hash")]
    pub(super) previous_secret_hash: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) previous_expires_at: Option<Cow<'a, str>>,
}

//! The counts replicas share in Redis (or Valkey): rate-limit buckets, credits spent, usage per
//! key and day, and when each key was last used; the one script that changes them, and reads.

use std::fmt;
use std::time::Duration;

use crate::Error;

/// Days of usage kept per key.
pub const USAGE_DAYS: i64 = 90;

/// The most names one read asks for at once (a command's arguments, or a pipeline's commands),
/// so that no answer grows without bound with the number of keys.
const READ_CHUNK: usize = 1000;

/// Where the shared counts are: `REDIS_URL`, `REDIS_PREFIX` before every name, and
/// `REDIS_CA_FILE`, the certificates a `rediss://` server's is checked against.
#[derive(Clone, PartialEq, Eq)]
pub struct CountersConfig {
    url: String,
    /// Put before every Redis key, so that deployments can share one Redis.
    pub prefix: String,
    /// PEM certificates of the authorities a `rediss://` server's certificate must come from,
    /// instead of the public ones.
    ca: Option<Vec<u8>>,
}

/// The URL without its password, for logs and errors.
impl fmt::Display for CountersConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redacted(&self.url))
    }
}

impl fmt::Debug for CountersConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountersConfig({self}, prefix {:?})", self.prefix)
    }
}

/// `url` with any password replaced by `***`.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a redis:// URL)".into();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        None => url.to_string(),
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(name, _)| name);
            let shown = if user.is_empty() { "" } else { user };
            format!("{scheme}://{shown}:***@{host}{path}")
        }
    }
}

/// The default `REDIS_PREFIX`.
pub const DEFAULT_PREFIX: &str = "heare-auth:";

impl CountersConfig {
    /// `REDIS_URL` (`redis://` or `rediss://`, with a password and a database if need be) and
    /// `REDIS_PREFIX`; `None` when `REDIS_URL` is unset or empty: counts stay in each replica.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Option<CountersConfig>, Error> {
        let Some(url) = env("REDIS_URL").filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let schemes = url.starts_with("redis://") || url.starts_with("rediss://");
        if !schemes || redis::Client::open(url.as_str()).is_err() {
            return Err(Error::Setting(crate::InvalidSetting::new(
                "REDIS_URL",
                "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or rediss://...",
                &redacted(&url),
            )));
        }
        let prefix = env("REDIS_PREFIX").unwrap_or_else(|| DEFAULT_PREFIX.into());
        if prefix.len() > 64 || prefix.chars().any(|c| c.is_control() || c == ' ') {
            return Err(Error::Setting(crate::InvalidSetting::new(
                "REDIS_PREFIX",
                "at most 64 characters, no spaces or control characters",
                &prefix,
            )));
        }
        let ca = match env("REDIS_CA_FILE").filter(|f| !f.is_empty()) {
            None => None,
            Some(_) if !url.starts_with("rediss://") => {
                return Err(Error::Setting(crate::InvalidSetting::new(
                    "REDIS_CA_FILE",
                    "set only with a rediss:// REDIS_URL",
                    &redacted(&url),
                )))
            }
            Some(file) => Some(std::fs::read(&file).map_err(|e| {
                Error::Setting(crate::InvalidSetting::new(
                    "REDIS_CA_FILE",
                    "a readable file of PEM certificates",
                    &format!("{file} ({e})"),
                ))
            })?),
        };
        Ok(Some(CountersConfig { url, prefix, ca }))
    }

    /// Connects, waiting at most `timeout` for the connection and for each answer after it.
    pub fn connect(&self, timeout: Duration) -> Result<Counters, Error> {
        let fail = |e: redis::RedisError| self.error(&e);
        if self.url.starts_with("rediss://") {
            // Two TLS providers are linked in (the S3 client's dependencies bring both); TLS to
            // Redis uses the process's default, chosen here.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = match &self.ca {
            None => redis::Client::open(self.url.as_str()),
            Some(pem) => {
                let certificates = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                };
                redis::Client::build_with_tls(self.url.as_str(), certificates)
            }
        }
        .map_err(fail)?;
        let con = client.get_connection_with_timeout(timeout).map_err(fail)?;
        con.set_read_timeout(Some(timeout)).map_err(fail)?;
        con.set_write_timeout(Some(timeout)).map_err(fail)?;
        Ok(Counters {
            con,
            prefix: self.prefix.clone(),
            location: self.to_string(),
        })
    }

    fn error(&self, e: &redis::RedisError) -> Error {
        Error::Counters {
            location: self.to_string(),
            message: e.to_string().replace(&self.url, &redacted(&self.url)),
        }
    }
}

/// A connection to the shared counts.
pub struct Counters {
    con: redis::Connection,
    prefix: String,
    location: String,
}

/// One change to the shared counts, in an [`Exchange`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A key's rate-limit bucket (a token bucket kept as the time it is next full): take
    /// `charge` tokens already spent, give `give` back, and lease up to `want` more. Answers
    /// the tokens leased and those left in the bucket.
    Rate {
        /// The key's id.
        id: String,
        /// Microseconds to earn one token.
        interval_us: i64,
        /// How far ahead of now the bucket may be full and still hold a token.
        burst_us: i64,
        /// Tokens spent beyond those leased.
        charge: i64,
        /// Tokens wanted.
        want: i64,
        /// Unused tokens given back.
        give: i64,
    },
    /// A key's credits in one period, kept as what was spent of `allowance`: take `charge`
    /// credits spent beyond those leased, give `give` back, and lease up to `want` more.
    /// Answers the credits leased and those left.
    Credits {
        /// The pool ([`heare_auth_core::Credits::pool`]).
        pool: String,
        /// The period's balance before any spending.
        allowance: i64,
        /// Credits spent beyond those leased.
        charge: i64,
        /// Credits wanted.
        want: i64,
        /// Unused credits given back.
        give: i64,
        /// Seconds the count is kept after this exchange; 0: for ever.
        keep_secs: i64,
    },
    /// A key's verifications on one day (days since the epoch, UTC). Answers nothing.
    Usage {
        /// The key's id.
        id: String,
        /// Days since the epoch.
        day: i64,
        /// Valid verifications.
        valid: i64,
        /// Refused ones.
        refused: i64,
    },
    /// The sender is present: answers how many senders exchanged within `within_ms`, this
    /// one included.
    Present {
        /// How recently a sender must have exchanged to count.
        within_ms: i64,
    },
    /// When a key was last used (Unix ms), kept if later than what is there. Answers nothing.
    LastUsed {
        /// The key's id.
        id: String,
        /// Unix ms.
        at: i64,
    },
}

/// Changes sent at once, atomically, by one sender, one exchange after another: sent again
/// after a failure, an exchange is applied at most once, and its first answer given again.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The sender (a replica), unique to it.
    pub sender: String,
    /// The exchange's number: each of a sender's is greater than the one before.
    pub seq: u64,
    /// The changes.
    pub ops: Vec<Op>,
}

/// What an exchange answered, per op: `Rate` and `Credits` give `[leased, left]`, `Present`
/// `[senders]`.
pub type Answers = Vec<i64>;

/// Changes every count of an exchange, once: the sender's last exchange number is kept (for a
/// day) with its answer, which a repeat gets back without changing anything.
const EXCHANGE: &str = r"
local last = redis.call('GET', KEYS[1])
if last then
  local nl = string.find(last, '\n', 1, true)
  if nl and string.sub(last, 1, nl - 1) == ARGV[1] then
    return cjson.decode(string.sub(last, nl + 1))
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
local a = 2
for k = 2, #KEYS do
  local kind = ARGV[a]
  if kind == 'r' then
    local interval, burst = tonumber(ARGV[a+1]), tonumber(ARGV[a+2])
    local charge, want, give = tonumber(ARGV[a+3]), tonumber(ARGV[a+4]), tonumber(ARGV[a+5])
    a = a + 6
    local tat = tonumber(redis.call('GET', KEYS[k]) or '0')
    if tat < now then tat = now end
    tat = tat + (charge - give) * interval
    if tat < now then tat = now end
    local room = math.floor((burst + interval - (tat - now)) / interval)
    if room < 0 then room = 0 end
    local leased = math.min(want, room)
    tat = tat + leased * interval
    redis.call('SET', KEYS[k], string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
    out[#out + 1] = leased
    out[#out + 1] = room - leased
  elseif kind == 'c' then
    local allowance, charge, want = tonumber(ARGV[a+1]), tonumber(ARGV[a+2]), tonumber(ARGV[a+3])
    local give, keep = tonumber(ARGV[a+4]), tonumber(ARGV[a+5])
    a = a + 6
    local spent = tonumber(redis.call('GET', KEYS[k]) or '0') + charge - give
    if spent < 0 then spent = 0 end
    local room = allowance - spent
    if room < 0 then room = 0 end
    local leased = math.min(want, room)
    spent = spent + leased
    if keep > 0 then
      redis.call('SET', KEYS[k], string.format('%d', spent), 'EX', keep)
    else
      redis.call('SET', KEYS[k], string.format('%d', spent))
    end
    local left = allowance - spent
    if left < 0 then left = 0 end
    out[#out + 1] = leased
    out[#out + 1] = left
  elseif kind == 'u' then
    local valid, refused, keep = ARGV[a+1], ARGV[a+2], ARGV[a+3]
    a = a + 4
    if valid ~= '0' then redis.call('HINCRBY', KEYS[k], 'valid', valid) end
    if refused ~= '0' then redis.call('HINCRBY', KEYS[k], 'refused', refused) end
    redis.call('EXPIRE', KEYS[k], keep)
  elseif kind == 'p' then
    local ms = math.floor(now / 1000)
    redis.call('ZADD', KEYS[k], ms, ARGV[a+1])
    redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', ms - tonumber(ARGV[a+2]))
    out[#out + 1] = redis.call('ZCARD', KEYS[k])
    a = a + 3
  elseif kind == 'l' then
    redis.call('ZADD', KEYS[k], 'GT', ARGV[a+2], ARGV[a+1])
    a = a + 3
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. '\n' .. cjson.encode(out), 'EX', 86400)
return out
";

impl Counters {
    fn key(&self, parts: fmt::Arguments) -> String {
        format!("{}{parts}", self.prefix)
    }

    fn error(&self, e: &redis::RedisError) -> Error {
        Error::Counters {
            location: self.location.clone(),
            message: e.to_string(),
        }
    }

    /// Applies `exchange` (once, however often it is sent) and returns its answers.
    pub fn exchange(&mut self, exchange: &Exchange) -> Result<Answers, Error> {
        let script = redis::Script::new(EXCHANGE);
        let mut call = script.prepare_invoke();
        call.key(self.key(format_args!("exchange:{}", exchange.sender)));
        call.arg(exchange.seq);
        let usage_keep = (USAGE_DAYS + 1) * 86_400;
        for op in &exchange.ops {
            match op {
                Op::Rate {
                    id,
                    interval_us,
                    burst_us,
                    charge,
                    want,
                    give,
                } => {
                    call.key(self.key(format_args!("rate:{id}")));
                    call.arg("r")
                        .arg(interval_us)
                        .arg(burst_us)
                        .arg(charge)
                        .arg(want)
                        .arg(give);
                }
                Op::Credits {
                    pool,
                    allowance,
                    charge,
                    want,
                    give,
                    keep_secs,
                } => {
                    call.key(self.key(format_args!("credits:{pool}")));
                    call.arg("c")
                        .arg(allowance)
                        .arg(charge)
                        .arg(want)
                        .arg(give)
                        .arg(keep_secs);
                }
                Op::Usage {
                    id,
                    day,
                    valid,
                    refused,
                } => {
                    call.key(self.key(format_args!("usage:{id}:{day}")));
                    call.arg("u").arg(valid).arg(refused).arg(usage_keep);
                }
                Op::Present { within_ms } => {
                    call.key(self.key(format_args!("present")));
                    call.arg("p").arg(&exchange.sender).arg(within_ms);
                }
                Op::LastUsed { id, at } => {
                    call.key(self.key(format_args!("last-used")));
                    call.arg("l").arg(id).arg(at);
                }
            }
        }
        call.invoke::<Answers>(&mut self.con).map_err(|e| {
            let outage = e.is_io_error() || e.is_timeout() || e.is_connection_dropped();
            match outage {
                true => self.error(&e),
                false => Error::CountersRefused {
                    location: self.location.clone(),
                    message: e.to_string(),
                },
            }
        })
    }

    /// Valid and refused verifications of key `id` on each of `days`.
    pub fn usage(&mut self, id: &str, days: &[i64]) -> Result<Vec<(u64, u64)>, Error> {
        let mut each = self.usage_of_each(&[id], days)?;
        Ok(each.pop().unwrap_or_default())
    }

    /// Valid and refused verifications of each of `ids` on each of `days`, read in one
    /// pipeline per 1000 counts.
    pub fn usage_of_each(
        &mut self,
        ids: &[&str],
        days: &[i64],
    ) -> Result<Vec<Vec<(u64, u64)>>, Error> {
        if days.is_empty() {
            return Ok(vec![Vec::new(); ids.len()]);
        }
        let names: Vec<String> = ids
            .iter()
            .flat_map(|id| days.iter().map(move |day| (id, day)))
            .map(|(id, day)| self.key(format_args!("usage:{id}:{day}")))
            .collect();
        let mut counts = Vec::with_capacity(names.len());
        for chunk in names.chunks(READ_CHUNK) {
            let mut pipe = redis::pipe();
            for name in chunk {
                pipe.cmd("HMGET").arg(name).arg("valid").arg("refused");
            }
            let read: Vec<(Option<u64>, Option<u64>)> =
                pipe.query(&mut self.con).map_err(|e| self.error(&e))?;
            counts.extend(
                read.into_iter()
                    .map(|(v, r)| (v.unwrap_or(0), r.unwrap_or(0))),
            );
        }
        Ok(counts.chunks(days.len()).map(<[_]>::to_vec).collect())
    }

    /// When each of `ids` was last used (Unix ms), as far as the shared counts know: one
    /// `ZMSCORE` per 1000 ids.
    pub fn last_used(&mut self, ids: &[&str]) -> Result<Vec<Option<i64>>, Error> {
        let mut all = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(READ_CHUNK) {
            let scores: Vec<Option<f64>> = redis::cmd("ZMSCORE")
                .arg(self.key(format_args!("last-used")))
                .arg(chunk)
                .query(&mut self.con)
                .map_err(|e| self.error(&e))?;
            all.extend(scores.into_iter().map(|s| s.map(|s| s as i64)));
        }
        Ok(all)
    }

    /// The keys used at or after `since` (Unix ms), and when, at most `count` from `offset`
    /// in the order they were last used.
    pub fn used_since(
        &mut self,
        since: i64,
        offset: usize,
        count: usize,
    ) -> Result<Vec<(String, i64)>, Error> {
        let found: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(self.key(format_args!("last-used")))
            .arg(since)
            .arg("+inf")
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(offset)
            .arg(count)
            .arg("WITHSCORES")
            .query(&mut self.con)
            .map_err(|e| self.error(&e))?;
        Ok(found.into_iter().map(|(id, at)| (id, at as i64)).collect())
    }

    /// The credits spent in each of `pools`, as [`Counters::credits_spent`] gives them.
    pub fn credits_spent_in(&mut self, pools: &[String]) -> Result<Vec<u64>, Error> {
        let mut spent = Vec::with_capacity(pools.len());
        for chunk in pools.chunks(READ_CHUNK) {
            let keys: Vec<String> = chunk
                .iter()
                .map(|pool| self.key(format_args!("credits:{pool}")))
                .collect();
            let values: Vec<Option<i64>> = redis::cmd("MGET")
                .arg(keys)
                .query(&mut self.con)
                .map_err(|e| self.error(&e))?;
            spent.extend(values.into_iter().map(|v| v.unwrap_or(0).max(0) as u64));
        }
        Ok(spent)
    }

    /// The credits spent in `pool` ([`heare_auth_core::Credits::pool`]), those leased to
    /// replicas and not given back included.
    pub fn credits_spent(&mut self, pool: &str) -> Result<u64, Error> {
        let spent: Option<i64> = redis::cmd("GET")
            .arg(self.key(format_args!("credits:{pool}")))
            .query(&mut self.con)
            .map_err(|e| self.error(&e))?;
        Ok(spent.unwrap_or(0).max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redacted("redis://:hunter2@cache:6379/2"),
            "redis://:***@cache:6379/2"
        );
        assert_eq!(
            redacted("rediss://app:hunter2@cache/0"),
            "rediss://app:***@cache/0"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        let env = |url: &'static str| move |name: &str| (name == "REDIS_URL").then(|| url.into());
        let err = CountersConfig::from_env(env("http://:hunter2@x/"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("REDIS_URL") && !err.contains("hunter2"),
            "{err}"
        );
        let config = CountersConfig::from_env(env("redis://:hunter2@127.0.0.1:1/3"))
            .unwrap()
            .unwrap();
        assert_eq!(config.prefix, DEFAULT_PREFIX);
        assert!(!format!("{config} {config:?}").contains("hunter2"));
        assert!(CountersConfig::from_env(|_| None).unwrap().is_none());
    }

    #[test]
    fn an_authority_file_is_for_tls_and_must_be_readable() {
        let env = |url: &'static str, ca: &'static str| {
            move |name: &str| match name {
                "REDIS_URL" => Some(url.to_string()),
                "REDIS_CA_FILE" => Some(ca.to_string()),
                _ => None,
            }
        };
        let err = CountersConfig::from_env(env("redis://:hunter2@127.0.0.1/", "/etc/hostname"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("REDIS_CA_FILE") && err.contains("rediss://") && !err.contains("hunter2"),
            "{err}"
        );
        let err = CountersConfig::from_env(env("rediss://127.0.0.1/", "/nonexistent/ca.pem"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("REDIS_CA_FILE") && err.contains("/nonexistent/ca.pem"),
            "{err}"
        );
        let config = CountersConfig::from_env(env("rediss://127.0.0.1/", "/etc/hostname"));
        assert!(config.unwrap().is_some());
    }
}

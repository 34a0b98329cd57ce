//! What a verification spends of a key's credits, from a balance counted by the caller (the
//! server's counters, an edge worker's own store): the rule is the same everywhere.

use crate::{Outcome, Verified};

/// `outcome` for a request of `cost` credits, given `balance`, what is left of the key's
/// credits, and what is left after it. A valid key whose balance is below the cost (or is 0,
/// for a request that only checks it with a cost of 0) is [`Outcome::UsageExceeded`], its
/// balance untouched; one that can pay stays valid with `balance - cost` left. For any other
/// outcome, a key without credits, or no balance given, the outcome stands and nothing is
/// left to report.
pub fn spend(outcome: Outcome<'_>, balance: Option<u64>, cost: u64) -> (Outcome<'_>, Option<u64>) {
    let credited = outcome.valid_key().is_some_and(|k| k.credits().is_some());
    match balance.filter(|_| credited) {
        None => (outcome, None),
        Some(balance) if balance < cost.max(1) => (outcome.exhausted(), Some(balance)),
        Some(balance) => (outcome, Some(balance - cost)),
    }
}

impl Verified<'_, '_> {
    /// Spends an answered request's cost from `balance`, as [`spend`] does; a rejected request
    /// stays as it is.
    pub fn spend(&mut self, balance: Option<u64>) {
        if let Verified::Answered {
            outcome,
            cost,
            remaining,
            ..
        } = self
        {
            (*outcome, *remaining) = spend(*outcome, balance, *cost);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{verify_request, Code, KeySet};

    const FILE: &[u8] = br#"{"keys": [
        {"id": "key_c", "secret": "sec_c", "scopes": ["read"],
         "credits": {"amount": 5, "refill": {"amount": 5, "every": "day"}, "since": "2026-12-06"}},
        {"id": "key_free", "secret": "sec_free"},
        {"id": "key_off", "secret": "sec_off", "disabled": true, "credits": {"amount": 5}}
    ]}"#;

    fn keys() -> KeySet {
        KeySet::from_json(FILE).unwrap().0
    }

    #[test]
    fn a_valid_key_pays_from_its_balance_or_is_refused() {
        let keys = keys();
        let ask = |secret: &str, balance, cost| {
            let (outcome, left) = spend(keys.verify(secret, 0, &[] as &[&str]), balance, cost);
            (outcome.code(), left)
        };
        assert_eq!(ask("sec_c", Some(5), 1), (Code::Valid, Some(4)));
        assert_eq!(ask("sec_c", Some(5), 5), (Code::Valid, Some(0)));
        assert_eq!(ask("sec_c", Some(4), 5), (Code::UsageExceeded, Some(4)));
        assert_eq!(ask("sec_c", Some(0), 1), (Code::UsageExceeded, Some(0)));
        // A cost of 0 checks the balance: any credit left passes, none is refused.
        assert_eq!(ask("sec_c", Some(1), 0), (Code::Valid, Some(1)));
        assert_eq!(ask("sec_c", Some(0), 0), (Code::UsageExceeded, Some(0)));
        // Nothing counted, nothing to spend: the key verifies as it would without credits.
        assert_eq!(ask("sec_c", None, 1), (Code::Valid, None));
        // No credits, or not valid: the balance plays no part.
        assert_eq!(ask("sec_free", Some(0), 1), (Code::Valid, None));
        assert_eq!(ask("sec_off", Some(0), 1), (Code::Disabled, None));
        assert_eq!(ask("sec_nope", Some(0), 1), (Code::NotFound, None));
        let (scoped, left) = spend(keys.verify("sec_c", 0, &["write"]), Some(0), 1);
        assert_eq!((scoped.code(), left), (Code::InsufficientScope, None));
    }

    #[test]
    fn a_request_spends_its_cost_and_says_what_is_left() {
        let keys = keys();
        let answer = |body: &str, balance| {
            let mut verified = verify_request(&keys, None, body.as_bytes(), 0);
            verified.spend(balance);
            (verified.status(), verified.to_json())
        };
        let valid = answer(r#"{"api_key": "sec_c", "cost": 3}"#, Some(10));
        assert_eq!(valid.0, 200);
        assert!(
            valid.1.ends_with(r#""expires_at":null,"remaining":7}"#),
            "{}",
            valid.1
        );
        assert_eq!(
            answer(r#"{"api_key": "sec_c"}"#, Some(0)),
            (
                403,
                r#"{"valid":false,"error":"Usage exceeded","code":"USAGE_EXCEEDED","remaining":0}"#
                    .into()
            )
        );
        let free = answer(r#"{"api_key": "sec_free", "cost": 3}"#, Some(10));
        assert!(!free.1.contains("remaining"), "{}", free.1);
        assert_eq!(answer("[]", Some(10)).0, 400);
    }
}

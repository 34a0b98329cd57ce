//! A replica's share of a key's rate limit when replicas share it: tokens leased from the
//! shared bucket ahead of use, so that a request never waits on Redis, and at most one lease
//! spent on credit before the bucket is asked.

/// What a replica holds of one key's shared bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lease {
    /// Tokens leased and not spent; below zero, tokens spent on credit, charged at the next
    /// exchange.
    held: i64,
    /// What the bucket had left after the last exchange; `None` before the first.
    seen: Option<i64>,
    /// Tokens asked for since the last exchange, granted or not: sizes the next lease.
    demand: i64,
    /// Exchanges in a row without demand.
    idle: u32,
}

/// What one exchange asks of the shared bucket for a key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ask {
    /// Tokens spent on credit, to charge.
    pub charge: i64,
    /// Tokens wanted.
    pub want: i64,
    /// Unused tokens given back.
    pub give: i64,
}

/// Exchanges without demand after which a replica gives back the tokens it holds.
const IDLE_EXCHANGES: u32 = 20;

impl Lease {
    /// Takes a token for a request: from those held, or on credit while the credit stays
    /// within `cap` tokens and within what the bucket had left when last seen.
    pub fn take(&mut self, cap: i64) -> bool {
        self.demand += 1;
        if self.held > 0 {
            self.held -= 1;
            return true;
        }
        let debt = 1 - self.held;
        if debt <= cap && self.seen.is_none_or(|left| left >= debt) {
            self.held -= 1;
            return true;
        }
        false
    }

    /// What to ask at the next exchange, the credit taken out of what is held (it is charged
    /// by the exchange) and the tokens given back out of it; `None`: nothing to ask.
    /// Leases are sized to twice the demand since the last exchange, at most `cap`.
    pub fn plan(&mut self, cap: i64) -> Option<Ask> {
        let charge = (-self.held).max(0);
        self.held += charge;
        let mut ask = Ask {
            charge,
            ..Ask::default()
        };
        if self.demand > 0 {
            self.idle = 0;
            ask.want = ((2 * self.demand).clamp(1, cap.max(1)) - self.held).max(0);
        } else {
            self.idle += 1;
            if self.idle >= IDLE_EXCHANGES {
                ask.give = self.held;
            }
        }
        self.held -= ask.give;
        self.demand = 0;
        (ask != Ask::default()).then_some(ask)
    }

    /// Whether the lease holds nothing and nobody asked for it: it can be forgotten.
    pub fn is_settled(&self) -> bool {
        self.held == 0 && self.demand == 0
    }

    /// Takes in the exchange's answer: `leased` tokens, `left` in the bucket after it.
    pub fn settle(&mut self, leased: i64, left: i64) {
        self.held += leased;
        self.seen = Some(left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_request_is_taken_on_credit_then_the_lease_pays_for_the_next() {
        let mut lease = Lease::default();
        assert!(lease.take(4));
        let ask = lease.plan(4).unwrap();
        assert_eq!(
            ask,
            Ask {
                charge: 1,
                want: 2,
                give: 0
            }
        );
        lease.settle(2, 10);
        assert!(lease.take(4) && lease.take(4));
        // Then on credit, as far as the bucket had left and the cap allow.
        assert!(lease.take(4) && lease.take(4) && lease.take(4) && lease.take(4));
        assert!(!lease.take(4));
        let ask = lease.plan(4).unwrap();
        assert_eq!(ask.charge, 4);
        assert_eq!(ask.want, 4);
    }

    #[test]
    fn an_empty_bucket_stops_credit_until_the_next_exchange() {
        let mut lease = Lease::default();
        assert!(lease.take(8));
        let ask = lease.plan(8).unwrap();
        lease.settle(0, 0);
        assert_eq!(ask.charge, 1);
        assert!(!lease.take(8));
        assert!(!lease.take(8));
        // Refused requests are demand: the next exchange asks for a lease.
        let ask = lease.plan(8).unwrap();
        assert_eq!(
            ask,
            Ask {
                charge: 0,
                want: 4,
                give: 0
            }
        );
        lease.settle(1, 0);
        assert!(lease.take(8));
        assert!(!lease.take(8));
    }

    #[test]
    fn an_idle_lease_is_given_back_and_then_settled() {
        let mut lease = Lease::default();
        lease.take(3);
        lease.plan(3);
        lease.settle(3, 5);
        for _ in 1..IDLE_EXCHANGES {
            assert_eq!(lease.plan(3), None);
        }
        assert_eq!(
            lease.plan(3),
            Some(Ask {
                charge: 0,
                want: 0,
                give: 3
            })
        );
        assert!(lease.is_settled());
    }

    #[test]
    fn never_more_than_cap_on_credit_whatever_the_bucket_said() {
        let mut lease = Lease::default();
        lease.settle(0, 1_000_000);
        let taken = (0..100).filter(|_| lease.take(5)).count();
        assert_eq!(taken, 5);
    }
}

//! A replica's share of a pool that replicas share (a key's rate-limit bucket, or its credits):
//! tokens leased from the pool ahead of use, so that a request never waits on Redis, and a
//! bounded number spent on credit before the pool is asked.
//!
//! A replica holds, or spends on credit, at most its *room*: one lease (`cap`), or its share of
//! what the pool had left when last asked (divided by the replicas that share it; the pool
//! full before it was asked), whichever is more. Together the replicas therefore overshoot a pool by at most one lease each (their
//! shares of what is left cover the rest), and a replica alone never does.

/// What a replica holds of one shared pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lease {
    /// Tokens leased and not spent; below zero, tokens spent on credit, charged at the next
    /// exchange.
    held: i64,
    /// What the pool had left after the last exchange; `None` before the first.
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

/// How a pool is shared: the lease a replica may always take, and how many replicas share it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// Tokens a replica may hold or spend on credit whatever is left (at least 1).
    pub cap: i64,
    /// Replicas sharing the pool (at least 1).
    pub replicas: i64,
    /// What the pool holds when full: taken as what it has left before it was asked.
    pub full: i64,
}

/// Exchanges without demand after which a replica gives back the tokens it holds.
const IDLE_EXCHANGES: u32 = 20;
/// Exchanges after giving back that only look at the pool.
const LOOKS: u32 = 4;

impl Lease {
    /// What this replica may hold or spend on credit: the lease, or its share of what the
    /// pool had left when last seen (of the full pool before it was seen), whichever is more.
    fn room(&self, share: Share) -> i64 {
        let left = self.seen.unwrap_or(share.full);
        share.cap.max(1).max(left / share.replicas.max(1))
    }

    /// Takes `n` tokens for a request: from those held, or on credit while what the pool had
    /// left when last seen (`full` before the first exchange) covers the credit, and the
    /// credit stays within the room that `share` gives (`None`: no limit but the pool, while
    /// the pool cannot be asked).
    pub fn take(&mut self, n: i64, share: Option<Share>, full: i64) -> bool {
        self.demand += n;
        if self.held >= n {
            self.held -= n;
            return true;
        }
        let debt = n - self.held;
        let within = share.is_none_or(|share| debt <= self.room(share));
        if within && self.seen.unwrap_or(full) >= debt {
            self.held -= n;
            return true;
        }
        false
    }

    /// What is left of the pool as this replica knows it: what it had left when last seen
    /// (`full` before the first exchange), and what is held here, less what was spent on
    /// credit.
    pub fn left(&self, full: i64) -> i64 {
        self.seen.unwrap_or(full).saturating_add(self.held)
    }

    /// What to ask at the next exchange, the credit taken out of what is held (it is charged
    /// by the exchange) and the tokens given back out of it; `None`: nothing to ask.
    /// Leases are sized to twice the demand since the last exchange, at most the room `share`
    /// gives.
    pub fn plan(&mut self, share: Share) -> Option<Ask> {
        let charge = (-self.held).max(0);
        self.held += charge;
        let mut ask = Ask {
            charge,
            ..Ask::default()
        };
        if self.demand > 0 {
            self.idle = 0;
            ask.want = ((2 * self.demand).clamp(1, self.room(share)) - self.held).max(0);
        } else {
            self.idle = self.idle.saturating_add(1);
            if self.idle >= IDLE_EXCHANGES {
                ask.give = self.held;
            }
        }
        self.held -= ask.give;
        self.demand = 0;
        // Until the answer, what the pool had left is less what this exchange charges (and
        // more what it gives back). What it asks for is not taken out: credit taken meanwhile
        // is paid by the lease when it comes, or charged at the next exchange, so a request
        // is not refused while the tokens it would spend are on their way here.
        if let Some(left) = &mut self.seen {
            *left -= ask.charge - ask.give;
        }
        // After giving back, a few exchanges only look, to see what the other replicas gave
        // back too: the room of the next burst depends on it.
        let looking = (IDLE_EXCHANGES + 1..=IDLE_EXCHANGES + LOOKS).contains(&self.idle);
        (ask != Ask::default() || looking).then_some(ask)
    }

    /// Learns what the pool has left, when no exchange has told yet.
    pub fn learn(&mut self, left: i64) {
        self.seen.get_or_insert(left);
    }

    /// Whether the lease holds nothing, nobody asked for it and it looked at the pool after
    /// giving back: it can be left until it is used again.
    pub fn is_settled(&self) -> bool {
        self.held == 0 && self.demand == 0 && self.idle > IDLE_EXCHANGES + LOOKS
    }

    /// Takes in the exchange's answer: `leased` tokens, `left` in the pool after it.
    pub fn settle(&mut self, leased: i64, left: i64) {
        self.held += leased;
        self.seen = Some(left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lease of `cap` among eight replicas, of a pool that holds eight leases when full.
    fn s(cap: i64) -> Share {
        Share {
            cap,
            replicas: 8,
            full: 8 * cap,
        }
    }

    #[test]
    fn the_first_request_is_taken_on_credit_then_the_lease_pays_for_the_next() {
        let mut lease = Lease::default();
        assert!(lease.take(1, Some(s(4)), i64::MAX));
        let ask = lease.plan(s(4)).unwrap();
        assert_eq!(
            ask,
            Ask {
                charge: 1,
                want: 2,
                give: 0
            }
        );
        lease.settle(2, 10);
        assert!(lease.take(1, Some(s(4)), i64::MAX) && lease.take(1, Some(s(4)), i64::MAX));
        // Then on credit, as far as the bucket had left and the cap allow.
        assert!(
            lease.take(1, Some(s(4)), i64::MAX)
                && lease.take(1, Some(s(4)), i64::MAX)
                && lease.take(1, Some(s(4)), i64::MAX)
                && lease.take(1, Some(s(4)), i64::MAX)
        );
        assert!(!lease.take(1, Some(s(4)), i64::MAX));
        let ask = lease.plan(s(4)).unwrap();
        assert_eq!(ask.charge, 4);
        assert_eq!(ask.want, 4);
    }

    #[test]
    fn an_empty_bucket_stops_credit_until_the_next_exchange() {
        let mut lease = Lease::default();
        assert!(lease.take(1, Some(s(8)), i64::MAX));
        let ask = lease.plan(s(8)).unwrap();
        lease.settle(0, 0);
        assert_eq!(ask.charge, 1);
        assert!(!lease.take(1, Some(s(8)), i64::MAX));
        assert!(!lease.take(1, Some(s(8)), i64::MAX));
        // Refused requests are demand: the next exchange asks for a lease.
        let ask = lease.plan(s(8)).unwrap();
        assert_eq!(
            ask,
            Ask {
                charge: 0,
                want: 4,
                give: 0
            }
        );
        lease.settle(1, 0);
        assert!(lease.take(1, Some(s(8)), i64::MAX));
        assert!(!lease.take(1, Some(s(8)), i64::MAX));
    }

    #[test]
    fn credit_taken_while_an_exchange_is_under_way_counts_what_it_charges() {
        let mut lease = Lease::default();
        lease.learn(10);
        let alone = Share {
            cap: 1,
            replicas: 1,
            full: 10,
        };
        assert_eq!((0..6).filter(|_| lease.take(1, Some(alone), 0)).count(), 6);
        let ask = lease.plan(alone).unwrap();
        assert_eq!((ask.charge, ask.want), (6, 10));
        // Under way: 6 charged of 10, so 4 are left to take on credit, and no more.
        assert_eq!((0..9).filter(|_| lease.take(1, Some(alone), 0)).count(), 4);
        // The lease (the 4 left) pays for them: nothing held, nothing owed, nothing left.
        lease.settle(4, 0);
        assert_eq!(lease.left(0), 0);
        assert!(!lease.take(1, Some(alone), 0));
        assert_eq!(lease.plan(alone).map(|ask| ask.charge), Some(0));
    }

    #[test]
    fn a_replica_alone_refuses_nothing_while_its_lease_is_on_the_way() {
        // Five credits, a replica alone: two taken before the first exchange, the other
        // three while its answer is awaited, then none.
        let mut lease = Lease::default();
        let alone = Share {
            cap: 1,
            replicas: 1,
            full: 5,
        };
        lease.learn(5);
        assert!(lease.take(1, Some(alone), 5) && lease.take(1, Some(alone), 5));
        let ask = lease.plan(alone).unwrap();
        assert_eq!((ask.charge, ask.want), (2, 4));
        assert_eq!((0..7).filter(|_| lease.take(1, Some(alone), 5)).count(), 3);
        // The balance had 3 after the charge and leases them all.
        lease.settle(3, 0);
        assert_eq!(lease.left(5), 0);
        assert!(!lease.take(1, Some(alone), 5));
    }

    #[test]
    fn an_idle_lease_is_given_back_and_then_settled() {
        let mut lease = Lease::default();
        lease.take(1, Some(s(3)), i64::MAX);
        lease.plan(s(3));
        lease.settle(3, 5);
        for _ in 1..IDLE_EXCHANGES {
            assert_eq!(lease.plan(s(3)), None);
        }
        assert_eq!(
            lease.plan(s(3)),
            Some(Ask {
                charge: 0,
                want: 0,
                give: 3
            })
        );
        for _ in 0..LOOKS {
            assert!(!lease.is_settled());
            assert_eq!(lease.plan(s(3)), Some(Ask::default()));
        }
        assert_eq!(lease.plan(s(3)), None);
        assert!(lease.is_settled());
    }

    #[test]
    fn without_a_cap_credit_runs_to_what_the_pool_had_left() {
        let mut lease = Lease::default();
        assert!(lease.take(3, None, 5));
        assert!(!lease.take(3, None, 5));
        assert_eq!(lease.left(5), 2);
        assert!(lease.take(2, None, 5));
        assert!(!lease.take(1, None, 5));
        assert_eq!(lease.left(5), 0);
        // Once seen, what the pool said counts, not `full`.
        lease.plan(s(10));
        lease.settle(0, 4);
        assert_eq!(lease.left(5), 4);
    }

    #[test]
    fn credit_is_one_lease_or_an_eighth_of_what_the_pool_had_left() {
        let mut lease = Lease::default();
        // Before the pool was seen: one lease.
        let taken = (0..100)
            .filter(|_| lease.take(1, Some(s(5)), i64::MAX))
            .count();
        assert_eq!(taken, 5);
        lease.plan(s(5));
        lease.settle(0, 800);
        let taken = (0..200)
            .filter(|_| lease.take(1, Some(s(5)), i64::MAX))
            .count();
        assert_eq!(taken, 100);
        lease.plan(s(5));
        lease.settle(0, 16);
        let taken = (0..200)
            .filter(|_| lease.take(1, Some(s(5)), i64::MAX))
            .count();
        assert_eq!(taken, 5);
    }
}

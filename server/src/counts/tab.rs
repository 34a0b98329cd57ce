//! A replica's count of one key's credits for the period it is in: a lease of the period's
//! shared balance when replicas share it, or the whole balance when this replica counts alone.

use heare_auth_core::{Credits, Period, UnixMillis};

use super::lease::{Lease, Share};

/// One key's credits as a replica counts them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tab {
    /// The credits counted (a key whose credits are set again starts a new tab).
    pub credits: Credits,
    /// The period counted.
    pub period: Period,
    /// What this replica holds of the period's balance, or spent on credit.
    pub lease: Lease,
}

/// Credits spent on credit in a period that ended before they were charged: still owed to its
/// balance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owed {
    /// The credits, for the period's pool.
    pub credits: Credits,
    /// The period.
    pub period: Period,
    /// Credits spent on credit.
    pub spent: i64,
}

/// Credits a replica may spend on credit of a shared balance of `allowance`: a hundredth of it
/// (at least 1), so that three replicas together overspend it by at most 3%.
pub fn credit_cap(allowance: u64) -> i64 {
    i64::try_from(allowance / 100).unwrap_or(i64::MAX).max(1)
}

impl Tab {
    /// A tab for `credits` at `now`, nothing spent yet.
    pub fn new(credits: Credits, now: UnixMillis) -> Tab {
        Tab {
            credits,
            period: credits.period(now),
            lease: Lease::default(),
        }
    }

    /// The period's balance before anything is spent.
    pub fn allowance(&self) -> u64 {
        self.credits.allowance(self.period)
    }

    fn full(&self) -> i64 {
        i64::try_from(self.allowance()).unwrap_or(i64::MAX)
    }

    /// Moves to the period of `now` (and to `credits`, when they were set again): what this
    /// tab spent on credit is returned, owed to its period's balance.
    pub fn roll(&mut self, credits: Credits, now: UnixMillis) -> Option<Owed> {
        let period = credits.period(now);
        if (credits, period) == (self.credits, self.period) {
            return None;
        }
        let spent = -self.lease.left(0).min(0);
        let owed = Owed {
            credits: self.credits,
            period: self.period,
            spent,
        };
        *self = Tab::new(credits, now);
        (spent > 0).then_some(owed)
    }

    /// What is left, as this replica knows.
    pub fn remaining(&self) -> u64 {
        u64::try_from(self.lease.left(self.full())).unwrap_or(0)
    }

    /// Spends `cost` credits: `Ok` with what is left after, or `Err` with what is left when
    /// it does not cover `cost` (a cost of 0 checks that something is left). `share`: how the
    /// balance is shared (`None`: this replica counts alone, or cannot ask the shared balance).
    pub fn spend(&mut self, cost: u64, share: Option<Share>) -> Result<u64, u64> {
        let left = self.remaining();
        let n = i64::try_from(cost).unwrap_or(i64::MAX);
        if cost == 0 {
            return if left > 0 { Ok(left) } else { Err(0) };
        }
        match self.lease.take(n, share, self.full()) {
            true => Ok(self.remaining()),
            false => Err(left),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heare_auth_core::Refill;

    const DAY: UnixMillis = 86_400_000;

    fn credits(amount: u64) -> Credits {
        Credits {
            amount,
            refill: Some(Refill::parse("5/day").unwrap()),
            since: 0,
        }
    }

    #[test]
    fn alone_spending_stops_at_zero_and_a_zero_cost_only_checks() {
        let mut tab = Tab::new(credits(3), 0);
        assert_eq!(tab.spend(0, None), Ok(3));
        assert_eq!(tab.spend(2, None), Ok(1));
        assert_eq!(tab.spend(2, None), Err(1));
        assert_eq!(tab.spend(1, None), Ok(0));
        assert_eq!(tab.spend(0, None), Err(0));
        assert_eq!(tab.spend(1, None), Err(0));
    }

    #[test]
    fn shared_spending_on_credit_stops_at_the_cap_until_the_balance_is_asked() {
        let mut tab = Tab::new(credits(1000), 0);
        let share = Share {
            cap: credit_cap(1000),
            replicas: 100,
            full: 1000,
        };
        assert_eq!(share.cap, 10);
        assert_eq!(
            (0..20)
                .filter(|_| tab.spend(1, Some(share)).is_ok())
                .count(),
            10
        );
        let ask = tab.lease.plan(share).unwrap();
        assert_eq!((ask.charge, ask.want), (10, 10));
        // The balance (990 left after the charge) leases 10 more, leaving 980.
        tab.lease.settle(10, 980);
        assert_eq!(tab.remaining(), 990);
        assert_eq!(tab.spend(4, Some(share)), Ok(986));
    }

    #[test]
    fn a_new_period_refills_and_what_was_spent_on_credit_is_owed_to_the_old() {
        let mut tab = Tab::new(credits(3), 0);
        assert_eq!(tab.spend(3, None), Ok(0));
        assert_eq!(tab.roll(credits(3), DAY - 1), None);
        let owed = tab.roll(credits(3), DAY).unwrap();
        assert_eq!((owed.period, owed.spent), (0, 3));
        assert_eq!(tab.remaining(), 5);
        // Credits set again: a new tab, whatever the period.
        let again = Credits {
            since: DAY + 5,
            ..credits(9)
        };
        assert_eq!(tab.roll(again, DAY + 10), None);
        assert_eq!(tab.remaining(), 9);
    }
}

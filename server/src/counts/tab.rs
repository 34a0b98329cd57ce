//! A replica's running count of one key's credits: what the shared count said was spent, what
//! this replica sent since and what it has not sent yet; the balance is what is left of them.

use heare_auth_core::{Credits, Period, UnixMillis};

/// One key's credits as a replica counts them, for the period it is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tab {
    /// The credits counted (a key whose credits are set again starts a new tab).
    pub credits: Credits,
    /// The period counted.
    pub period: Period,
    /// Spent in the period, as the shared count last said (this replica's sent spending
    /// included); 0 without shared counts.
    pub seen: u64,
    /// Spent here and sent, not yet answered.
    pub sending: u64,
    /// Spent here, not yet sent.
    pub unsent: u64,
}

/// Credits spent in a period that ended before they were sent: still owed to its count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owed {
    /// The credits, for the period's pool.
    pub credits: Credits,
    /// The period.
    pub period: Period,
    /// Credits spent.
    pub spent: u64,
}

impl Tab {
    /// A tab for `credits` at `now`, nothing spent yet.
    pub fn new(credits: Credits, now: UnixMillis) -> Tab {
        Tab {
            credits,
            period: credits.period(now),
            seen: 0,
            sending: 0,
            unsent: 0,
        }
    }

    /// Moves to the period of `now` (and to `credits`, when they were set again): what this
    /// tab had not sent is returned, owed to its period's count (what it was sending is sent
    /// by the exchange under way, whose answer is then not this tab's).
    pub fn roll(&mut self, credits: Credits, now: UnixMillis) -> Option<Owed> {
        let period = credits.period(now);
        if (credits, period) == (self.credits, self.period) {
            return None;
        }
        let owed = Owed {
            credits: self.credits,
            period: self.period,
            spent: self.unsent,
        };
        *self = Tab::new(credits, now);
        (owed.spent > 0).then_some(owed)
    }

    /// What is left: the period's allowance less every credit known spent.
    pub fn remaining(&self) -> u64 {
        let spent = self.seen + self.sending + self.unsent;
        self.credits.allowance(self.period).saturating_sub(spent)
    }

    /// Spends `cost` credits: `Ok` with what is left after, or `Err` with what is left when
    /// it does not cover `cost` (a cost of 0 checks that something is left).
    pub fn spend(&mut self, cost: u64) -> Result<u64, u64> {
        let left = self.remaining();
        if left < cost.max(1) {
            return Err(left);
        }
        self.unsent += cost;
        Ok(left - cost)
    }

    /// What the next exchange sends: the spending not sent yet, which is now being sent.
    pub fn plan(&mut self) -> u64 {
        self.sending += self.unsent;
        self.unsent = 0;
        self.sending
    }

    /// Takes in the exchange's answer: `spent` in the period in all.
    pub fn settle(&mut self, sent: u64, spent: u64) {
        self.sending -= sent.min(self.sending);
        self.seen = spent;
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
    fn spending_stops_at_zero_and_a_zero_cost_only_checks() {
        let mut tab = Tab::new(credits(3), 0);
        assert_eq!(tab.spend(0), Ok(3));
        assert_eq!(tab.spend(2), Ok(1));
        assert_eq!(tab.spend(2), Err(1));
        assert_eq!(tab.spend(1), Ok(0));
        assert_eq!(tab.spend(0), Err(0));
        assert_eq!(tab.spend(1), Err(0));
    }

    #[test]
    fn what_others_spent_counts_once_it_is_seen() {
        let mut tab = Tab::new(credits(10), 0);
        assert_eq!(tab.spend(2), Ok(8));
        assert_eq!(tab.plan(), 2);
        assert_eq!(tab.spend(1), Ok(7));
        // The shared count holds our 2 and 5 spent elsewhere.
        tab.settle(2, 7);
        assert_eq!(tab.remaining(), 2);
        assert_eq!(tab.plan(), 1);
        assert_eq!(tab.spend(3), Err(2));
    }

    #[test]
    fn a_new_period_refills_and_what_was_unsent_is_owed_to_the_old() {
        let mut tab = Tab::new(credits(3), 0);
        assert_eq!(tab.spend(3), Ok(0));
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

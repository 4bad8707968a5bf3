//! The node's economics, over the last hour and since start: what it was paid, what its
//! proving cost (`bidding.cost_per_hour` for the time it was busy), the penalties (collateral
//! forfeited by deadline misses), the margin, its bids by outcome and win rate, skips by
//! reason, deadline misses, and the stake and collateral at risk. Fed by the bidder and the prover as things happen; read by `/status`, `provernet node
//! status` and the metrics.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// The window of [`EconomicsReport::last_hour`], seconds.
pub const WINDOW_SECS: u64 = 3_600;

/// Entries kept for the window at most: a node bidding a thousand times a second for an hour
/// keeps its last 100,000 (the totals since start are unaffected).
const MAX_ENTRIES: usize = 100_000;

/// One thing that counts for the economics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Entry {
    /// The network paid this for an accepted proof (base fee included), ledger units.
    Paid(u128),
    /// A proof kept the machine busy this long (its share when proofs ran at once), costing
    /// this at the configured cost per hour, ledger units.
    Proved {
        /// Machine seconds.
        busy_secs: f64,
        /// Their cost.
        cost: u128,
    },
    /// The network accepted a bid.
    Bid,
    /// The network refused a bid.
    Refused,
    /// A bid won its auction.
    Won,
    /// A bid lost.
    Lost,
    /// A bid's request closed unassigned.
    Expired,
    /// A request was skipped, for this reason.
    Skipped(&'static str),
    /// A won job missed its deadline: its collateral is the network's.
    DeadlineMissed {
        /// The collateral it forfeited, ledger units; none where the network's API cannot
        /// tell (the Succinct API).
        forfeited: Option<u128>,
    },
}

/// The figures of one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// Paid for accepted proofs, ledger units (decimal).
    pub revenue: String,
    /// Proving cost: `cost_per_hour` × busy hours, ledger units (decimal).
    pub cost: String,
    /// Revenue less cost and penalties, ledger units (decimal, may be negative).
    pub margin: String,
    /// Collateral forfeited by deadline misses, ledger units (decimal); a miss whose amount the
    /// network's API cannot tell adds nothing.
    #[serde(default = "zero")]
    pub penalties: String,
    /// Machine seconds spent proving.
    pub busy_secs: f64,
    /// Bids the network accepted.
    pub bids: u64,
    /// Bids the network refused.
    pub refused: u64,
    /// Auctions won.
    pub won: u64,
    /// Auctions lost.
    pub lost: u64,
    /// Bids whose request closed unassigned.
    pub expired: u64,
    /// Won over won and lost; none before any auction ended.
    pub win_rate: Option<f64>,
    /// Requests skipped, by reason.
    pub skips: BTreeMap<String, u64>,
    /// Won jobs that missed their deadline (each forfeits its collateral).
    pub deadline_misses: u64,
}

/// A `/status` from before penalties were reported had none.
fn zero() -> String {
    "0".into()
}

#[derive(Debug, Default, Clone)]
struct Sums {
    revenue: u128,
    cost: u128,
    penalties: u128,
    busy_secs: f64,
    bids: u64,
    refused: u64,
    won: u64,
    lost: u64,
    expired: u64,
    skips: BTreeMap<&'static str, u64>,
    deadline_misses: u64,
}

impl Sums {
    fn add(&mut self, entry: Entry) {
        match entry {
            Entry::Paid(amount) => self.revenue = self.revenue.saturating_add(amount),
            Entry::Proved { busy_secs, cost } => {
                self.busy_secs += busy_secs.max(0.0);
                self.cost = self.cost.saturating_add(cost);
            }
            Entry::Bid => self.bids += 1,
            Entry::Refused => self.refused += 1,
            Entry::Won => self.won += 1,
            Entry::Lost => self.lost += 1,
            Entry::Expired => self.expired += 1,
            Entry::Skipped(reason) => *self.skips.entry(reason).or_default() += 1,
            Entry::DeadlineMissed { forfeited } => {
                self.deadline_misses += 1;
                self.penalties = self.penalties.saturating_add(forfeited.unwrap_or(0));
            }
        }
    }

    fn tally(&self) -> Tally {
        let signed = |amount: u128| i128::try_from(amount).unwrap_or(i128::MAX);
        // A forfeited collateral is money lost, as much as the machine's time.
        let margin = signed(self.revenue)
            .saturating_sub(signed(self.cost))
            .saturating_sub(signed(self.penalties));
        let decided = self.won + self.lost;
        Tally {
            revenue: self.revenue.to_string(),
            cost: self.cost.to_string(),
            margin: margin.to_string(),
            penalties: self.penalties.to_string(),
            busy_secs: self.busy_secs,
            bids: self.bids,
            refused: self.refused,
            won: self.won,
            lost: self.lost,
            expired: self.expired,
            win_rate: (decided > 0).then(|| self.won as f64 / decided as f64),
            skips: self.skips.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            deadline_misses: self.deadline_misses,
        }
    }
}

/// The prover's stake as the network last reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StakeAtRisk {
    /// Total stake, ledger units (decimal).
    pub stake: String,
    /// Stake locked as collateral for assigned requests: what missed deadlines would forfeit.
    pub collateral: String,
    /// Unix seconds of the reading.
    pub at: u64,
}

/// What `/status` shows of the economics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EconomicsReport {
    /// The last [`WINDOW_SECS`].
    pub last_hour: Tally,
    /// Since the node started.
    pub since_start: Tally,
    /// The prover's stake and collateral; none where the network's API cannot tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stake: Option<StakeAtRisk>,
}

/// The running economics: totals since start, and the entries of the last hour.
#[derive(Debug, Default)]
pub struct Economics {
    total: Sums,
    recent: VecDeque<(u64, Entry)>,
    stake: Option<StakeAtRisk>,
}

impl Economics {
    /// Counts `entry` at unix seconds `now`.
    pub fn record(&mut self, now: u64, entry: Entry) {
        self.total.add(entry);
        self.recent.push_back((now, entry));
        if self.recent.len() > MAX_ENTRIES {
            self.recent.pop_front();
        }
    }

    /// Keeps the network's latest reading of the prover's stake.
    pub fn set_stake(&mut self, stake: StakeAtRisk) {
        self.stake = Some(stake);
    }

    /// The report at unix seconds `now` (entries older than the window are dropped).
    pub fn report(&mut self, now: u64) -> EconomicsReport {
        let since = now.saturating_sub(WINDOW_SECS);
        while self.recent.front().is_some_and(|(at, _)| *at < since) {
            self.recent.pop_front();
        }
        let mut hour = Sums::default();
        for (_, entry) in &self.recent {
            hour.add(*entry);
        }
        EconomicsReport {
            last_hour: hour.tally(),
            since_start: self.total.tally(),
            stake: self.stake.clone(),
        }
    }
}

/// What `busy_secs` of proving cost at `cost_per_hour`, ledger units (rounded up).
pub fn proving_cost(cost_per_hour: u128, busy_secs: f64) -> u128 {
    let cost = cost_per_hour as f64 * busy_secs.max(0.0) / 3_600.0;
    if cost.is_finite() { cost.ceil() as u128 } else { u128::MAX }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hour_forgets_what_since_start_keeps() {
        let mut e = Economics::default();
        e.record(1_000, Entry::Paid(5_000));
        e.record(1_000, Entry::Proved { busy_secs: 36.0, cost: proving_cost(360_000, 36.0) });
        e.record(1_000, Entry::Bid);
        e.record(1_001, Entry::Won);
        e.record(4_000, Entry::Bid);
        e.record(4_001, Entry::Lost);
        e.record(4_002, Entry::Skipped("below cost"));
        e.record(4_003, Entry::DeadlineMissed { forfeited: Some(250) });
        let report = e.report(4_700);
        let total = &report.since_start;
        assert_eq!((total.revenue.as_str(), total.cost.as_str()), ("5000", "3600"));
        assert_eq!(total.margin, "1150", "paid less cost less the penalty");
        assert_eq!((total.bids, total.won, total.lost), (2, 1, 1));
        assert_eq!(total.win_rate, Some(0.5));
        let hour = &report.last_hour;
        assert_eq!((hour.revenue.as_str(), hour.cost.as_str()), ("0", "0"), "older than an hour");
        assert_eq!((hour.bids, hour.won, hour.lost, hour.deadline_misses), (1, 0, 1, 1));
        assert_eq!(hour.win_rate, Some(0.0));
        assert_eq!(hour.skips.get("below cost"), Some(&1));
        assert_eq!(total.penalties, "250");
        assert_eq!((hour.penalties.as_str(), hour.margin.as_str()), ("250", "-250"));
    }

    #[test]
    fn penalties_sum_what_each_miss_forfeited_and_come_off_the_margin() {
        let mut e = Economics::default();
        e.record(10, Entry::Paid(1_000));
        e.record(11, Entry::DeadlineMissed { forfeited: Some(300) });
        e.record(12, Entry::DeadlineMissed { forfeited: Some(200) });
        // The Succinct API cannot tell the collateral: the miss counts, its amount does not.
        e.record(13, Entry::DeadlineMissed { forfeited: None });
        let report = e.report(20);
        for t in [&report.since_start, &report.last_hour] {
            assert_eq!((t.deadline_misses, t.penalties.as_str()), (3, "500"));
            assert_eq!(t.margin, "500");
        }
        let old: Tally = serde_json::from_str(
            r#"{"revenue":"1","cost":"0","margin":"1",
            "busy_secs":0.0,"bids":0,"refused":0,"won":0,"lost":0,"expired":0,"win_rate":null,
            "skips":{},"deadline_misses":0}"#,
        )
        .expect("a report from before penalties reads");
        assert_eq!(old.penalties, "0");
    }

    #[test]
    fn a_loss_shows_as_a_negative_margin_and_no_auction_as_no_win_rate() {
        let mut e = Economics::default();
        e.record(10, Entry::Proved { busy_secs: 3_600.0, cost: proving_cost(7, 3_600.0) });
        let report = e.report(10);
        assert_eq!(report.since_start.margin, "-7");
        assert_eq!(report.since_start.win_rate, None);
        assert_eq!(proving_cost(1, f64::INFINITY), u128::MAX);
    }
}

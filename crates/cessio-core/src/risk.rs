//! F9 risk rules (art. 122-bis DL 34/2020): pure evaluators the platform runs on every
//! communication; a hit is a reason to suspend it (R-SUSP) and is recorded with its reason.
//!
//! Rules, each with a stable code ([`RiskRule::code`]) and an Italian reason:
//!
//! - **party** ([`RiskRule::PartyUnknown`], [`RiskRule::PartyDeceased`]): the cedente or the
//!   cessionario is not in the registry, or is deceased.
//! - **amount** ([`RiskRule::AmountAboveHistory`]): the amount is far above the cedente's
//!   history. Formula: hit when `amount > max(k × p95, floor)`, where `p95` is the 95th
//!   percentile (nearest rank: the value at position ⌈0.95·n⌉ of the n past amounts sorted
//!   ascending) of the cedente's past communicated amounts, `k` is
//!   [`RiskConfig::history_multiplier`] and `floor` is [`RiskConfig::history_floor`]. With no
//!   history the threshold is the floor alone, so a new party's first large cession is
//!   flagged and small ones are not.
//! - **cycle** ([`RiskRule::Cycle`]): the credit would pass again through a party that
//!   already held it: the cessionario appears in the chain of holders (any length).
//! - **velocity** ([`RiskRule::Velocity`]): at least [`RiskConfig::velocity_max_cessions`]
//!   cessions of the same credit, this one included, within
//!   [`RiskConfig::velocity_window_hours`].
//!
//! Defaults are documented on [`RiskConfig`]; the operator may change them in settings
//! (serde, every field optional).

use std::collections::HashMap;
use std::hash::Hash;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::money::Cents;

/// Thresholds of the risk rules. Every field has a default, so a settings file may name only
/// what it changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskConfig {
    /// `k` of the amount rule. Default 5: five times what the party usually moves.
    pub history_multiplier: u32,
    /// `floor` of the amount rule. Default €50.000,00: below it no amount is unusual
    /// enough to suspend a communication.
    pub history_floor: Cents,
    /// Window of the velocity rule, in hours. Default 168 (7 days).
    pub velocity_window_hours: u32,
    /// Cessions of one credit within the window (this one included) that trigger the
    /// velocity rule. Default 3: the whole R-CHAIN allowance used within a week.
    pub velocity_max_cessions: u32,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            history_multiplier: 5,
            history_floor: Cents::new(5_000_000),
            velocity_window_hours: 168,
            velocity_max_cessions: 3,
        }
    }
}

/// What the registry says of a party.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegistryStatus {
    Registered,
    Deceased,
    NotRegistered,
}

/// The side of a communication a party is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Cedente,
    Cessionario,
}

impl Side {
    fn as_it(self) -> &'static str {
        match self {
            Side::Cedente => "cedente",
            Side::Cessionario => "cessionario",
        }
    }
}

/// Which risk rule hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskRule {
    PartyUnknown,
    PartyDeceased,
    AmountAboveHistory,
    Cycle,
    Velocity,
}

impl RiskRule {
    /// Stable code recorded with the hit.
    pub const fn code(self) -> &'static str {
        match self {
            RiskRule::PartyUnknown => "risk_party_unknown",
            RiskRule::PartyDeceased => "risk_party_deceased",
            RiskRule::AmountAboveHistory => "risk_amount_above_history",
            RiskRule::Cycle => "risk_cycle",
            RiskRule::Velocity => "risk_velocity",
        }
    }

    /// Every hit is a ground for R-SUSP.
    pub const fn spec_rule(self) -> &'static str {
        "R-SUSP"
    }
}

/// One hit: the rule and an Italian reason with the figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RiskHit {
    pub rule: RiskRule,
    pub reason: String,
}

/// Party rule for one side.
pub fn check_party(side: Side, cf: &str, status: RegistryStatus) -> Option<RiskHit> {
    match status {
        RegistryStatus::Registered => None,
        RegistryStatus::NotRegistered => Some(RiskHit {
            rule: RiskRule::PartyUnknown,
            reason: format!("Il {} {cf} non è presente nell'anagrafe", side.as_it()),
        }),
        RegistryStatus::Deceased => Some(RiskHit {
            rule: RiskRule::PartyDeceased,
            reason: format!("Il {} {cf} risulta deceduto", side.as_it()),
        }),
    }
}

/// The 95th percentile (nearest rank) of `amounts`; `None` when empty.
pub fn p95(amounts: &[Cents]) -> Option<Cents> {
    if amounts.is_empty() {
        return None;
    }
    let mut sorted = amounts.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    // ⌈0.95·n⌉ in integers, 1-based.
    let rank = (95 * n).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// What the amount rule needs of a history: how many amounts, and their 95th percentile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryStats {
    pub len: usize,
    pub p95: Option<Cents>,
}

impl HistoryStats {
    pub fn of(amounts: &[Cents]) -> Self {
        HistoryStats {
            len: amounts.len(),
            p95: p95(amounts),
        }
    }
}

/// A growing history's [`HistoryStats`], kept as amounts are added (O(log n) each), for a
/// bulk file whose every row is compared with the rows before it: sorting the whole
/// history again for each row made a large file of one beneficiary quadratic.
#[derive(Clone, Debug, Default)]
pub struct RunningHistory {
    /// The ⌈0.95·n⌉ smallest amounts, largest on top: the top is the 95th percentile.
    low: std::collections::BinaryHeap<Cents>,
    /// The others, smallest on top.
    high: std::collections::BinaryHeap<std::cmp::Reverse<Cents>>,
}

impl RunningHistory {
    pub fn stats(&self) -> HistoryStats {
        HistoryStats {
            len: self.low.len() + self.high.len(),
            p95: self.low.peek().copied(),
        }
    }

    pub fn push(&mut self, amount: Cents) {
        use std::cmp::Reverse;
        if self.low.peek().is_some_and(|top| amount <= *top) {
            self.low.push(amount);
        } else {
            self.high.push(Reverse(amount));
        }
        let n = self.low.len() + self.high.len();
        let rank = (95 * n).div_ceil(100).max(1);
        while self.low.len() > rank {
            if let Some(top) = self.low.pop() {
                self.high.push(Reverse(top));
            }
        }
        while self.low.len() < rank {
            match self.high.pop() {
                Some(Reverse(least)) => self.low.push(least),
                None => break,
            }
        }
    }
}

/// The amount rule's threshold: `max(k × p95(history), floor)`.
pub fn amount_threshold(history: &[Cents], config: &RiskConfig) -> Cents {
    threshold_of(HistoryStats::of(history), config)
}

fn threshold_of(history: HistoryStats, config: &RiskConfig) -> Cents {
    let scaled = history.p95.map_or(Cents::ZERO, |p| {
        p.checked_mul(i64::from(config.history_multiplier))
            .unwrap_or(Cents::MAX)
    });
    scaled.max(config.history_floor)
}

/// Amount rule.
pub fn check_amount(amount: Cents, history: &[Cents], config: &RiskConfig) -> Option<RiskHit> {
    check_amount_of(amount, HistoryStats::of(history), config)
}

/// Amount rule, on a history's figures.
pub fn check_amount_of(
    amount: Cents,
    history: HistoryStats,
    config: &RiskConfig,
) -> Option<RiskHit> {
    let threshold = threshold_of(history, config);
    (amount > threshold).then(|| RiskHit {
        rule: RiskRule::AmountAboveHistory,
        reason: format!(
            "Importo {amount} molto superiore allo storico del cedente: soglia {threshold} ({} volte il 95° percentile di {} operazioni precedenti, minimo {})",
            config.history_multiplier,
            history.len,
            config.history_floor
        ),
    })
}

/// A cycle in a chain of holders: the holder at `first` appears again `length` steps later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cycle {
    pub first: usize,
    pub length: usize,
}

/// The first repetition in a chain of holders (first holder first), if any: O(n).
pub fn find_cycle<T: Eq + Hash>(holders: &[T]) -> Option<Cycle> {
    let mut seen: HashMap<&T, usize> = HashMap::with_capacity(holders.len());
    for (i, h) in holders.iter().enumerate() {
        if let Some(&first) = seen.get(h) {
            return Some(Cycle {
                first,
                length: i - first,
            });
        }
        seen.insert(h, i);
    }
    None
}

/// Cycle rule: would ceding to `next` bring the credit back to a party that already held
/// it? `holders` is the chain so far, first holder first, the cedente last.
pub fn check_cycle<T: Eq + Hash>(holders: &[T], next: &T, next_cf: &str) -> Option<RiskHit> {
    let position = holders.iter().rposition(|h| h == next)?;
    let length = holders.len() - position;
    Some(RiskHit {
        rule: RiskRule::Cycle,
        reason: format!(
            "Il credito tornerebbe al soggetto {next_cf}, che lo ha già detenuto: ciclo di {length} passaggi"
        ),
    })
}

/// Velocity rule: `previous` are the registration instants of earlier cessions of the same
/// credit; the new one is at `now`.
pub fn check_velocity(
    previous: &[DateTime<Utc>],
    now: DateTime<Utc>,
    config: &RiskConfig,
) -> Option<RiskHit> {
    let window = Duration::hours(i64::from(config.velocity_window_hours));
    let since = now - window;
    let recent = previous
        .iter()
        .filter(|t| **t > since && **t <= now)
        .count()
        + 1;
    let max = usize::try_from(config.velocity_max_cessions).unwrap_or(usize::MAX);
    (recent >= max).then(|| RiskHit {
        rule: RiskRule::Velocity,
        reason: format!(
            "{recent} cessioni dello stesso credito in {} ore (soglia {max})",
            config.velocity_window_hours
        ),
    })
}

/// Everything the risk rules look at for one cession.
#[derive(Clone, Debug)]
pub struct RiskInput<'a, T> {
    pub cedente_cf: &'a str,
    pub cedente: RegistryStatus,
    pub cessionario_cf: &'a str,
    pub cessionario: RegistryStatus,
    /// Identity of the cessionario as it appears in `holders`.
    pub cessionario_id: &'a T,
    pub amount: Cents,
    /// The amounts of the cedente's earlier communications.
    pub cedente_history: HistoryStats,
    /// Holders of the credit so far, first holder first, the cedente last.
    pub holders: &'a [T],
    /// Registration instants of earlier cessions of the same credit.
    pub previous_cessions: &'a [DateTime<Utc>],
    pub now: DateTime<Utc>,
}

/// Runs every rule; the hits in a fixed order (party, amount, cycle, velocity).
pub fn evaluate<T: Eq + Hash>(input: &RiskInput<'_, T>, config: &RiskConfig) -> Vec<RiskHit> {
    [
        check_party(Side::Cedente, input.cedente_cf, input.cedente),
        check_party(Side::Cessionario, input.cessionario_cf, input.cessionario),
        check_amount_of(input.amount, input.cedente_history, config),
        check_cycle(input.holders, input.cessionario_id, input.cessionario_cf),
        check_velocity(input.previous_cessions, input.now, config),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn eur(e: i64) -> Cents {
        Cents::new(e * 100)
    }

    fn t(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, day, hour, 0, 0).unwrap()
    }

    #[test]
    fn r_susp_risk_party_not_in_registry_or_deceased() {
        assert_eq!(
            check_party(Side::Cedente, "X", RegistryStatus::Registered),
            None
        );
        let hit = check_party(
            Side::Cessionario,
            "RSSMRA45C12F205C",
            RegistryStatus::NotRegistered,
        )
        .unwrap();
        assert_eq!(hit.rule.code(), "risk_party_unknown");
        assert_eq!(
            hit.reason,
            "Il cessionario RSSMRA45C12F205C non è presente nell'anagrafe"
        );
        let hit = check_party(Side::Cedente, "RSSMRA45C12F205C", RegistryStatus::Deceased).unwrap();
        assert_eq!(hit.rule, RiskRule::PartyDeceased);
        assert!(hit.reason.contains("deceduto"));
    }

    #[test]
    fn r_susp_risk_p95_nearest_rank() {
        assert_eq!(p95(&[]), None);
        assert_eq!(p95(&[eur(7)]), Some(eur(7)));
        let hundred: Vec<Cents> = (1..=100).map(eur).collect();
        assert_eq!(p95(&hundred), Some(eur(95)));
        let twenty: Vec<Cents> = (1..=20).rev().map(eur).collect();
        assert_eq!(p95(&twenty), Some(eur(19)));
    }

    #[test]
    fn r_susp_risk_amount_running_history_agrees_with_sorting_each_prefix() {
        let mut running = RunningHistory::default();
        let mut seen = Vec::new();
        let mut x: u64 = 7;
        assert_eq!(running.stats(), HistoryStats::of(&seen));
        for _ in 0..2_000 {
            // A small LCG: repeats and runs up and down, as real amounts have.
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let amount = Cents::new(i64::try_from(x >> 52).unwrap_or(0));
            running.push(amount);
            seen.push(amount);
            assert_eq!(
                running.stats(),
                HistoryStats::of(&seen),
                "after {}",
                seen.len()
            );
        }
    }

    #[test]
    fn r_susp_risk_amount_far_above_history() {
        let config = RiskConfig::default();
        let history: Vec<Cents> = (1..=100).map(|i| eur(i * 1_000)).collect();
        // p95 = €95.000,00; k = 5 → threshold €475.000,00.
        assert_eq!(amount_threshold(&history, &config), eur(475_000));
        assert_eq!(check_amount(eur(475_000), &history, &config), None);
        let hit = check_amount(Cents::new(47_500_001), &history, &config).unwrap();
        assert_eq!(hit.rule, RiskRule::AmountAboveHistory);
        assert!(hit.reason.contains("475.000,00 €"), "{}", hit.reason);
    }

    #[test]
    fn r_susp_risk_amount_floor_applies_without_history() {
        let config = RiskConfig::default();
        assert_eq!(amount_threshold(&[], &config), eur(50_000));
        assert_eq!(check_amount(eur(50_000), &[], &config), None);
        assert!(check_amount(Cents::new(5_000_001), &[], &config).is_some());
        // Small history: the floor still wins.
        assert_eq!(amount_threshold(&[eur(100)], &config), eur(50_000));
    }

    #[test]
    fn r_susp_risk_cycle_of_length_2() {
        let chain = ["A", "B"];
        let hit = check_cycle(&chain, &"A", "AAA").unwrap();
        assert_eq!(hit.rule, RiskRule::Cycle);
        assert!(
            hit.reason.ends_with("ciclo di 2 passaggi"),
            "{}",
            hit.reason
        );
        assert_eq!(
            find_cycle(&["A", "B", "A"]),
            Some(Cycle {
                first: 0,
                length: 2
            })
        );
    }

    #[test]
    fn r_susp_risk_cycle_of_length_5() {
        let chain = [1, 2, 3, 4, 5];
        let hit = check_cycle(&chain, &1, "00743110157").unwrap();
        assert!(
            hit.reason.ends_with("ciclo di 5 passaggi"),
            "{}",
            hit.reason
        );
        assert_eq!(
            find_cycle(&[9, 1, 2, 3, 4, 5, 1]),
            Some(Cycle {
                first: 1,
                length: 5
            })
        );
    }

    #[test]
    fn r_susp_risk_no_cycle_on_a_long_chain_of_distinct_holders() {
        let chain: Vec<u32> = (0..10_000).collect();
        assert_eq!(find_cycle(&chain), None);
        assert_eq!(check_cycle(&chain, &10_000, "X"), None);
        // The most recent passage is reported.
        assert!(
            check_cycle(&[1, 2, 1, 3], &1, "X")
                .unwrap()
                .reason
                .ends_with("ciclo di 2 passaggi")
        );
    }

    #[test]
    fn r_susp_risk_many_cessions_in_a_short_window() {
        let config = RiskConfig::default();
        // Two earlier within 7 days + this one = 3: hit.
        let hit = check_velocity(&[t(1, 10), t(5, 10)], t(7, 9), &config).unwrap();
        assert_eq!(hit.rule, RiskRule::Velocity);
        assert_eq!(
            hit.reason,
            "3 cessioni dello stesso credito in 168 ore (soglia 3)"
        );
        // The first is exactly 7 days old: outside the window.
        assert_eq!(
            check_velocity(&[t(1, 10), t(5, 10)], t(8, 10), &config),
            None
        );
        assert_eq!(check_velocity(&[], t(8, 10), &config), None);
    }

    #[test]
    fn r_susp_risk_config_defaults_and_partial_settings() {
        let config: RiskConfig = toml::from_str("history_multiplier = 10").unwrap();
        assert_eq!(config.history_multiplier, 10);
        assert_eq!(config.history_floor, Cents::new(5_000_000));
        assert!(toml::from_str::<RiskConfig>("unknown = 1").is_err());
    }

    #[test]
    fn r_susp_risk_evaluate_collects_every_hit_in_order() {
        let holders = ["A", "B", "C"];
        let input = RiskInput {
            cedente_cf: "C",
            cedente: RegistryStatus::Registered,
            cessionario_cf: "A",
            cessionario: RegistryStatus::Deceased,
            cessionario_id: &"A",
            amount: eur(1_000_000),
            cedente_history: HistoryStats::default(),
            holders: &holders,
            previous_cessions: &[t(1, 0), t(2, 0)],
            now: t(3, 0),
        };
        let rules: Vec<RiskRule> = evaluate(&input, &RiskConfig::default())
            .into_iter()
            .map(|h| h.rule)
            .collect();
        assert_eq!(
            rules,
            [
                RiskRule::PartyDeceased,
                RiskRule::AmountAboveHistory,
                RiskRule::Cycle,
                RiskRule::Velocity
            ]
        );
    }
}

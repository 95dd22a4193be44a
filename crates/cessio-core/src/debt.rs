//! A party's overdue-debt position (SPEC F5, F9 party registry): the input of R-BAN-100K and
//! R-BAN-1500. The platform stores it per party; this module only says which part of it the
//! law counts.
//!
//! What counts (seed S3, circ. 16/E/2024):
//! - only loads entrusted to the collection agent for **erariali** taxes and their
//!   accessories, and loads from **acts of the Agenzia delle Entrate** (recovery acts
//!   included), whose payment term has passed; other debts (INPS contributions, local
//!   taxes) do not count;
//! - minus any amount under a suspension (judicial or administrative);
//! - nothing of a load in an instalment plan still in force; the whole residual of a plan
//!   that lapsed (decadenza) counts again.
//!
//! R-BAN-1500 (art. 31 DL 78/2010) counts the erariali loads only.

use serde::{Deserialize, Serialize};

use crate::money::Cents;

/// What an overdue load is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DebtKind {
    /// Erariali taxes and their accessories (IRPEF, IRES, IVA, registro...).
    Erariale,
    /// Other acts of the Agenzia delle Entrate, recovery of undue credits included.
    AttoAgenzia,
    /// Anything else (INPS contributions, local taxes): never counted.
    Altro,
}

/// State of the instalment plan (rateazione, art. 19 DPR 602/1973, or a rottamazione paid
/// in instalments) covering a load.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum InstalmentPlan {
    #[default]
    None,
    /// Granted and not lapsed: the load does not count.
    InForce,
    /// Lapsed (decadenza): the whole residual counts again.
    Lapsed,
}

/// One load entrusted to the collection agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DebtLoad {
    pub kind: DebtKind,
    /// Residual unpaid amount.
    pub amount: Cents,
    /// Part of `amount` under a suspension (judicial or administrative).
    pub suspended: Cents,
    pub plan: InstalmentPlan,
    /// Whether the payment term has passed (only overdue loads count).
    pub overdue: bool,
}

impl DebtLoad {
    /// An overdue load with no suspension and no plan.
    pub fn overdue(kind: DebtKind, amount: Cents) -> DebtLoad {
        DebtLoad {
            kind,
            amount,
            suspended: Cents::ZERO,
            plan: InstalmentPlan::None,
            overdue: true,
        }
    }

    /// The part of this load the law counts: zero when not overdue or in a live plan,
    /// otherwise the amount minus the suspended part (never below zero).
    pub fn counted(&self) -> Cents {
        if !self.overdue || self.plan == InstalmentPlan::InForce || self.kind == DebtKind::Altro {
            return Cents::ZERO;
        }
        self.amount
            .checked_sub(self.suspended)
            .filter(|c| !c.is_negative())
            .unwrap_or(Cents::ZERO)
    }
}

/// A party's overdue-debt position: every load entrusted to the collection agent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DebtPosition {
    pub loads: Vec<DebtLoad>,
}

impl DebtPosition {
    pub fn new(loads: Vec<DebtLoad>) -> DebtPosition {
        DebtPosition { loads }
    }

    /// The amount R-BAN-100K compares with its threshold: erariali loads and acts of the
    /// Agenzia, counted as [`DebtLoad::counted`]. A sum that would overflow saturates at
    /// [`Cents::MAX`], which is above any threshold: the safe direction.
    pub fn counted_for_ban_100k(&self) -> Cents {
        saturating_sum(self.loads.iter().map(DebtLoad::counted))
    }

    /// The amount R-BAN-1500 compares with its threshold: erariali loads only.
    pub fn counted_erariali(&self) -> Cents {
        saturating_sum(
            self.loads
                .iter()
                .filter(|l| l.kind == DebtKind::Erariale)
                .map(DebtLoad::counted),
        )
    }
}

fn saturating_sum(amounts: impl Iterator<Item = Cents>) -> Cents {
    amounts.fold(Cents::ZERO, |acc, c| {
        acc.checked_add(c).unwrap_or(Cents::MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(euros: i64) -> Cents {
        Cents::new(euros * 100)
    }

    #[test]
    fn r_ban_100k_debt_counts_overdue_erariali_and_agency_acts() {
        let position = DebtPosition::new(vec![
            DebtLoad::overdue(DebtKind::Erariale, eur(60_000)),
            DebtLoad::overdue(DebtKind::AttoAgenzia, eur(50_000)),
            DebtLoad::overdue(DebtKind::Altro, eur(1_000_000)),
        ]);
        assert_eq!(position.counted_for_ban_100k(), eur(110_000));
        assert_eq!(position.counted_erariali(), eur(60_000));
    }

    #[test]
    fn r_ban_100k_debt_excludes_suspended_part_live_plans_and_not_yet_due() {
        let suspended = DebtLoad {
            suspended: eur(30_000),
            ..DebtLoad::overdue(DebtKind::Erariale, eur(100_000))
        };
        let in_plan = DebtLoad {
            plan: InstalmentPlan::InForce,
            ..DebtLoad::overdue(DebtKind::Erariale, eur(500_000))
        };
        let not_due = DebtLoad {
            overdue: false,
            ..DebtLoad::overdue(DebtKind::Erariale, eur(500_000))
        };
        let over_suspended = DebtLoad {
            suspended: eur(20),
            ..DebtLoad::overdue(DebtKind::Erariale, eur(10))
        };
        let position = DebtPosition::new(vec![suspended, in_plan, not_due, over_suspended]);
        assert_eq!(position.counted_for_ban_100k(), eur(70_000));
    }

    #[test]
    fn r_ban_100k_debt_lapsed_plan_counts_whole_residual() {
        let lapsed = DebtLoad {
            plan: InstalmentPlan::Lapsed,
            ..DebtLoad::overdue(DebtKind::Erariale, eur(120_000))
        };
        assert_eq!(
            DebtPosition::new(vec![lapsed]).counted_for_ban_100k(),
            eur(120_000)
        );
    }

    #[test]
    fn r_ban_100k_debt_sum_saturates_instead_of_overflowing() {
        let big = DebtLoad::overdue(DebtKind::Erariale, Cents::MAX);
        let position = DebtPosition::new(vec![big.clone(), big]);
        assert_eq!(position.counted_for_ban_100k(), Cents::MAX);
    }
}

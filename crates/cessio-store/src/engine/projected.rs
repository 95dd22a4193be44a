//! What a batch adds to F1's summary and to the parties' feeds, computed from its plan.
//!
//! Both are projections of the transfers: `verify` recomputes them from the whole history
//! (`summary_recompute_sql`, `feed::FEED_MISSING_SQL`). They used to be brought up to date
//! by set-based statements that read the batch's transfers back from the database and
//! looked up each movement's rata three times: on SQLite a tenth of a bulk import. The
//! writer already holds the transfers and the new rate, so only the rate and answered
//! movements of earlier batches are loaded ([`wanted`]), once each, and a batch writes
//! each changed row once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use cessio_core::ledger::{PartyId, Phase, RataId, TransferId, TransferKind};
use cessio_core::money::Cents;

use super::rows::{Plan, TransferRow};
use crate::StoreError;
use crate::model::SummaryKey;
use crate::summary_days::{answer_state, rome_day};

/// What F1 groups a movement's rata by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RataFacts {
    pub type_key: String,
    pub year: i64,
    pub codice_tributo: String,
}

/// What the summary and the feed need of a movement: of each the batch wrote, and of each
/// earlier one it answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MovementFacts {
    pub rata: RataId,
    pub kind: TransferKind,
    pub amount: Cents,
    pub party: Option<PartyId>,
    pub counterparty: Option<PartyId>,
}

impl From<&TransferRow> for MovementFacts {
    fn from(t: &TransferRow) -> Self {
        MovementFacts {
            rata: t.rata,
            kind: t.kind,
            amount: t.amount,
            party: t.party,
            counterparty: t.counterparty,
        }
    }
}

/// The rows a batch changes: amounts to add to the summary (keys in order, no zero), and
/// the (party, transfer) pairs the feed gains (in order, each once).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Projected {
    pub summary: Vec<(SummaryKey, i64)>,
    /// The same amounts by the Rome day (`yyyymmdd`) of the movement or answer that moved
    /// them, for F1 as of a past day (`crate::summary_days`): (key, day, delta), in order.
    pub days: Vec<(SummaryKey, i32, i64)>,
    pub feed: Vec<(PartyId, TransferId)>,
}

/// What [`projected`] needs from earlier batches: the rate the batch moved but did not
/// create, and the movements it answered that were written before it (each loaded with
/// its own rata's facts).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub rata: Vec<RataId>,
    pub answered: Vec<TransferId>,
}

pub fn wanted(plan: &Plan) -> Wanted {
    let new_rata: HashSet<RataId> = plan.rate().map(|r| r.id).collect();
    let new_transfers: HashSet<TransferId> = plan.transfers.iter().map(|t| t.id).collect();
    let rata: BTreeSet<RataId> = plan
        .transfers
        .iter()
        .map(|t| t.rata)
        .filter(|r| !new_rata.contains(r))
        .collect();
    let answered: BTreeSet<TransferId> = plan
        .transfers
        .iter()
        .filter_map(|t| t.pending_id)
        .filter(|p| !new_transfers.contains(p))
        .collect();
    Wanted {
        rata: rata.into_iter().collect(),
        answered: answered.into_iter().collect(),
    }
}

/// Computes [`Projected`] for `plan`, given what [`wanted`] named: `rata` and `answered`
/// as loaded from the database.
pub fn projected(
    plan: &Plan,
    mut rata: HashMap<RataId, RataFacts>,
    mut answered: HashMap<TransferId, MovementFacts>,
) -> Result<Projected, StoreError> {
    for c in &plan.credits {
        for r in &c.rate {
            let facts = RataFacts {
                type_key: c.type_key.clone(),
                year: i64::from(r.year.get()),
                codice_tributo: r.codice_tributo.clone(),
            };
            rata.insert(r.id, facts);
        }
    }
    answered.extend(
        plan.transfers
            .iter()
            .map(|t| (t.id, MovementFacts::from(t))),
    );
    let facts = |id: RataId| rata.get(&id).ok_or(StoreError::UnknownRata { rata: id });
    let mut summary: BTreeMap<(SummaryKey, i32), i64> = BTreeMap::new();
    let mut feed: BTreeSet<(PartyId, TransferId)> = BTreeSet::new();
    for t in &plan.transfers {
        let day = rome_day(t.at_micros);
        feed.extend(t.party.into_iter().chain(t.counterparty).map(|p| (p, t.id)));
        if let Some(state) = match t.phase {
            Phase::Posted => Some("accepted"),
            Phase::Pending => Some("pending"),
            Phase::PostPending | Phase::VoidPending => None,
        } {
            add_sides(
                &mut summary,
                facts(t.rata)?,
                &MovementFacts::from(t),
                (state, day),
                t.amount.get(),
            );
        }
        let Some(pending) = t.pending_id else {
            continue;
        };
        let o = answered.get(&pending).ok_or_else(|| StoreError::Backend {
            reason: format!(
                "il movimento {pending}, a cui il movimento {} risponde, non è nel registro",
                t.id
            ),
        })?;
        feed.extend(o.party.into_iter().chain(o.counterparty).map(|p| (p, t.id)));
        let outcome = answer_state(t.phase == Phase::PostPending, t.party == o.party);
        let f = facts(o.rata)?;
        add_sides(&mut summary, f, o, ("pending", day), -o.amount.get());
        add_sides(&mut summary, f, o, (outcome, day), o.amount.get());
    }
    summary.retain(|_, amount| *amount != 0);
    let mut totals: BTreeMap<SummaryKey, i64> = BTreeMap::new();
    for ((key, _), amount) in &summary {
        *totals.entry(key.clone()).or_default() += amount;
    }
    totals.retain(|_, amount| *amount != 0);
    Ok(Projected {
        summary: totals.into_iter().collect(),
        days: summary
            .into_iter()
            .map(|((key, day), amount)| (key, day, amount))
            .collect(),
        feed: feed.into_iter().collect(),
    })
}

/// The two sides of a movement as F1 counts them: its party (sent,
/// unless it moved within one party) and its counterparty (received).
fn add_sides(
    summary: &mut BTreeMap<(SummaryKey, i32), i64>,
    f: &RataFacts,
    m: &MovementFacts,
    (state, day): (&str, i32),
    amount: i64,
) {
    let mut add = |party: PartyId, received: i64| {
        let key = (
            party,
            f.type_key.clone(),
            f.year,
            f.codice_tributo.clone(),
            received,
            m.kind.as_str().to_owned(),
            state.to_owned(),
        );
        *summary.entry((key, day)).or_default() += amount;
    };
    if let Some(p) = m.party
        && m.counterparty != Some(p)
    {
        add(p, 0);
    }
    if let Some(c) = m.counterparty {
        add(c, 1);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};

    use cessio_core::ledger::GENESIS_HASH;
    use cessio_core::time::RefYear;

    use super::*;
    use crate::model::{Credit, CreditOrigin, Rata};

    fn row(
        id: TransferId,
        rata: RataId,
        (kind, phase, pending_id): (TransferKind, Phase, Option<TransferId>),
        party: Option<PartyId>,
        counterparty: Option<PartyId>,
        amount: i64,
    ) -> TransferRow {
        TransferRow {
            id,
            operation: id,
            rata,
            debit: 1,
            credit: 2,
            amount: Cents::new(amount),
            kind,
            phase,
            pending_id,
            at_micros: 0,
            acting_user: "u".into(),
            party,
            counterparty,
            disclose: false,
            hash: GENESIS_HASH,
        }
    }

    fn key(party: PartyId, f: (&str, i64, &str), received: i64, state: &str) -> SummaryKey {
        (
            party,
            f.0.into(),
            f.1,
            f.2.into(),
            received,
            "cession".into(),
            state.into(),
        )
    }

    /// A batch that issues a credit, cedes part of it, refuses that cession and accepts one
    /// sent in an earlier batch: each movement counted on its sides, an answer moving its
    /// movement's amount from pending to the outcome, rows that net to zero left out, and
    /// what the batch did not write asked for once; what is not loaded is an error.
    #[test]
    fn a_batch_projects_its_movements_and_answers() {
        let rata = |id, year| Rata {
            id,
            credit: 1,
            index: 0,
            year: RefYear::new(year),
            amount: Cents::new(100),
            codice_tributo: "7701".into(),
            codice_univoco: format!("U{id}"),
        };
        let plan = Plan {
            credits: vec![Credit {
                id: 1,
                protocol: "P".into(),
                type_key: "superbonus".into(),
                beneficiary: 5,
                holder: 5,
                origin: CreditOrigin::Cessione,
                expense_year: 2023,
                communicated_on: NaiveDate::from_ymd_opt(2024, 3, 1).expect("a date"),
                tracciabile: true,
                created_at: Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap(),
                rate: vec![rata(10, 2024), rata(11, 2025)],
                split_of: None,
                beneficiary_no_tax_area: false,
            }],
            transfers: vec![
                row(
                    1,
                    10,
                    (TransferKind::Issue, Phase::Posted, None),
                    None,
                    Some(5),
                    100,
                ),
                row(
                    2,
                    10,
                    (TransferKind::Cession, Phase::Pending, None),
                    Some(5),
                    Some(7),
                    60,
                ),
                row(
                    3,
                    10,
                    (TransferKind::Cession, Phase::VoidPending, Some(2)),
                    Some(7),
                    Some(5),
                    60,
                ),
                row(
                    4,
                    20,
                    (TransferKind::Cession, Phase::PostPending, Some(99)),
                    Some(8),
                    Some(3),
                    30,
                ),
            ],
            ..Plan::default()
        };
        let want = wanted(&plan);
        assert_eq!(
            want,
            Wanted {
                rata: vec![20],
                answered: vec![99]
            }
        );
        let facades = RataFacts {
            type_key: "bonus_facciate".into(),
            year: 2022,
            codice_tributo: "6923".into(),
        };
        let earlier = MovementFacts {
            rata: 20,
            kind: TransferKind::Cession,
            amount: Cents::new(30),
            party: Some(3),
            counterparty: Some(8),
        };
        let got = projected(
            &plan,
            HashMap::from([(20, facades.clone())]),
            HashMap::from([(99, earlier)]),
        )
        .expect("everything wanted is loaded");
        let sb = ("superbonus", 2024, "7701");
        let bf = ("bonus_facciate", 2022, "6923");
        let issue = (
            5,
            "superbonus".into(),
            2024,
            "7701".into(),
            1,
            "issue".into(),
            "accepted".into(),
        );
        let mut want: Vec<(SummaryKey, i64)> = vec![
            (issue, 100),
            (key(5, sb, 0, "refused"), 60),
            (key(7, sb, 1, "refused"), 60),
            (key(3, bf, 0, "pending"), -30),
            (key(3, bf, 0, "accepted"), 30),
            (key(8, bf, 1, "pending"), -30),
            (key(8, bf, 1, "accepted"), 30),
        ];
        want.sort();
        assert_eq!(got.summary, want);
        // Every movement of the batch is of one instant, so of one day.
        let on_the_day: Vec<_> = want
            .iter()
            .map(|(k, a)| (k.clone(), 19_700_101, *a))
            .collect();
        assert_eq!(got.days, on_the_day);
        assert_eq!(
            got.feed,
            vec![(3, 4), (5, 1), (5, 2), (5, 3), (7, 2), (7, 3), (8, 4)]
        );
        assert_eq!(
            projected(&plan, HashMap::new(), HashMap::from([(99, earlier)])),
            Err(StoreError::UnknownRata { rata: 20 })
        );
        assert!(matches!(
            projected(&plan, HashMap::from([(20, facades)]), HashMap::new()),
            Err(StoreError::Backend { .. })
        ));
    }
}

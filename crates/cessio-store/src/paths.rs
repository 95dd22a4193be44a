//! §5 paths kept with the projections: what each holding's path says (R-CHAIN, R-ONCE,
//! R-BANK-CLIENT), so that F1, F2 and a cession read it rather than replay the rata's
//! history.
//!
//! A holder's path is what the accepted movements that brought the rata to it say
//! (`cessio-app`'s `chain::replay_chain`, which stays the definition): an option
//! communication gives the first holder an empty path; a cession gives its cessionario the
//! path its cedente had when the cession was registered, counted one more by the rules of
//! its day; where a holder received the rata along more than one path, the most
//! restrictive counts (each count at its largest, the bank-client mark if any path had it,
//! the latest day of receipt).
//!
//! Two tables keep it:
//! - `cession_paths`: per cession, the path it carries ([`CarriedPath`], decided by the app
//!   with the cession's §5 check, on the cedente's kept path) and the Rome day it was
//!   registered. Written with the cession, recorded in the log, rebuilt from it by `verify`.
//! - `holding_paths`: per holder account that received the rata by an option or a cession
//!   (registered, answered or not) or had a seizure, the merged path. Written by the writer
//!   in the batch that registers, accepts or seizes ([`changes`]); `verify` recomputes it
//!   from the transfers and `cession_paths` ([`RECOMPUTE_SQL`], [`DIFF_SQL`]).
//!
//! Two marks send a holding back to the replay: `seized` (a seizure's days move the
//! holding's last day of use, which the replay reads from the history) and `unknown` (a
//! cession accepted without a recorded path: one registered before paths were kept, or
//! written by a caller that did not say). The migration that created the tables fills
//! `holding_paths` from the history with the same query, so a register written before has
//! its older cessions' holdings marked `unknown` rather than guessed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use cessio_core::ledger::{AccountId, Phase, TransferId, TransferKind};
use serde::{Deserialize, Serialize};

use crate::engine::{Plan, TransferRow};

/// What an accepted cession gives its cessionario's path: the cedente's counts after this
/// cession (`cessio_core::chain::next_counts`) and whether it was an R-BANK-CLIENT cession,
/// as the app decided them with the cession's §5 check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedPath {
    pub before_cutoff: u32,
    pub from_cutoff: u32,
    pub bank_client: bool,
}

/// A cession's row of `cession_paths`: the path it carries and the Rome day (`yyyymmdd`)
/// of its registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CessionPath {
    pub transfer: TransferId,
    pub path: CarriedPath,
    pub day: i32,
}

/// A holding's row of `holding_paths`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldingPath {
    pub before_cutoff: u32,
    pub from_cutoff: u32,
    /// Received by an R-BANK-CLIENT cession: it may not be ceded further.
    pub bank_client: bool,
    /// The Rome day (`yyyymmdd`) of the latest accepted cession that reached it; `None`
    /// for a holding received by the option communication only.
    pub received_on: Option<i32>,
    /// A seizure moved part of it: its days are read from the history.
    pub seized: bool,
    /// A cession reached it without a recorded path: the path is read from the history.
    pub unknown: bool,
}

impl HoldingPath {
    /// Whether the kept row says all of the holding's path, or the history must be read.
    pub fn is_complete(&self) -> bool {
        !self.seized && !self.unknown
    }

    /// An accepted cession reaches the holding: the most restrictive path counts.
    fn accept(&mut self, carried: Option<&CessionPath>) {
        match carried {
            Some(c) => {
                self.before_cutoff = self.before_cutoff.max(c.path.before_cutoff);
                self.from_cutoff = self.from_cutoff.max(c.path.from_cutoff);
                self.bank_client |= c.path.bank_client;
                self.received_on = self.received_on.max(Some(c.day));
            }
            None => self.unknown = true,
        }
    }
}

/// An option communication or a cession registered to a holder (answered or not): its
/// holding has a §5 path from then on.
fn registers(t: &TransferRow) -> bool {
    matches!(t.kind, TransferKind::Issue | TransferKind::Cession)
        && matches!(t.phase, Phase::Posted | Phase::Pending)
        && t.counterparty.is_some()
}

/// The movement whose carried path a row accepts: a cession posted at once, or the
/// acceptance of a pending one.
fn accepted_cession(t: &TransferRow) -> Option<TransferId> {
    if t.kind != TransferKind::Cession || t.counterparty.is_none() {
        return None;
    }
    match t.phase {
        Phase::Posted => Some(t.id),
        Phase::PostPending => t.pending_id,
        Phase::Pending | Phase::VoidPending => None,
    }
}

/// A holder's amount moved to the rata's seized account.
fn seizes(t: &TransferRow) -> bool {
    t.kind == TransferKind::Seize
        && t.phase == Phase::Posted
        && t.party.is_some()
        && t.counterparty.is_none()
}

/// What [`changes`] needs from earlier batches: the kept rows of the accounts the batch
/// reaches, and the carried paths of the cessions it accepts that earlier batches
/// registered.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PathsWanted {
    pub accounts: Vec<AccountId>,
    pub cessions: Vec<TransferId>,
}

pub fn wanted(plan: &Plan) -> PathsWanted {
    let new_accounts: HashSet<AccountId> = plan.new_accounts.iter().map(|a| a.id).collect();
    let registered: HashSet<TransferId> = plan.cession_paths.iter().map(|c| c.transfer).collect();
    let mut accounts = BTreeSet::new();
    let mut cessions = BTreeSet::new();
    for t in &plan.transfers {
        let accepted = accepted_cession(t);
        if registers(t) || accepted.is_some() {
            accounts.insert(t.credit);
        }
        if seizes(t) {
            accounts.insert(t.debit);
        }
        if let Some(c) = accepted.filter(|c| !registered.contains(c)) {
            cessions.insert(c);
        }
    }
    accounts.retain(|a| !new_accounts.contains(a));
    PathsWanted {
        accounts: accounts.into_iter().collect(),
        cessions: cessions.into_iter().collect(),
    }
}

/// The rows of `holding_paths` the batch changes, in account order, each with its image
/// after the batch. `kept` and `carried` are what [`wanted`] named, as stored.
pub fn changes(
    plan: &Plan,
    kept: &HashMap<AccountId, HoldingPath>,
    carried: &HashMap<TransferId, CessionPath>,
) -> Vec<(AccountId, HoldingPath)> {
    let here: HashMap<TransferId, &CessionPath> =
        plan.cession_paths.iter().map(|c| (c.transfer, c)).collect();
    let mut rows: BTreeMap<AccountId, HoldingPath> = BTreeMap::new();
    for t in &plan.transfers {
        let accepted = accepted_cession(t);
        if registers(t) || accepted.is_some() {
            let row = rows
                .entry(t.credit)
                .or_insert_with(|| kept.get(&t.credit).copied().unwrap_or_default());
            if let Some(c) = accepted {
                row.accept(here.get(&c).copied().or_else(|| carried.get(&c)));
            }
        }
        if seizes(t) {
            rows.entry(t.debit)
                .or_insert_with(|| kept.get(&t.debit).copied().unwrap_or_default())
                .seized = true;
        }
    }
    rows.into_iter()
        .filter(|(account, row)| kept.get(account) != Some(row))
        .collect()
}

/// `holding_paths` as the history gives it, one row per account: what `verify` compares
/// the table with and what the migration that created it filled it with.
pub const RECOMPUTE_SQL: &str = "SELECT account,
        CAST(MAX(before_cutoff) AS BIGINT) AS before_cutoff,
        CAST(MAX(from_cutoff) AS BIGINT) AS from_cutoff,
        CAST(MAX(bank_client) AS BIGINT) AS bank_client,
        CAST(MAX(received_on) AS BIGINT) AS received_on,
        CAST(MAX(seized) AS BIGINT) AS seized,
        CAST(MAX(unknown) AS BIGINT) AS unknown
   FROM (SELECT t.credit AS account,
                CASE WHEN acc THEN COALESCE(cp.before_cutoff, 0) ELSE 0 END AS before_cutoff,
                CASE WHEN acc THEN COALESCE(cp.from_cutoff, 0) ELSE 0 END AS from_cutoff,
                CASE WHEN acc THEN COALESCE(cp.bank_client, 0) ELSE 0 END AS bank_client,
                CASE WHEN acc THEN cp.received_on END AS received_on,
                0 AS seized,
                CASE WHEN acc AND cp.transfer IS NULL THEN 1 ELSE 0 END AS unknown
           FROM (SELECT t.credit, t.id,
                        (t.kind = 'cession' AND (t.phase = 'posted' OR a.id IS NOT NULL)) AS acc
                   FROM transfers t
                   LEFT JOIN transfers a ON a.pending_id = t.id AND a.phase = 'post_pending'
                  WHERE t.kind IN ('issue', 'cession') AND t.phase IN ('posted', 'pending')
                    AND t.counterparty IS NOT NULL) t
           LEFT JOIN cession_paths cp ON cp.transfer = t.id
         UNION ALL
         SELECT debit, 0, 0, 0, NULL, 1, 0
           FROM transfers
          WHERE kind = 'seize' AND phase = 'posted' AND party IS NOT NULL AND counterparty IS NULL) p
  GROUP BY account";

/// The columns [`crate::rows::holding_path`] reads, in order.
pub const HOLDING_PATH_COLUMNS: &str =
    "account, before_cutoff, from_cutoff, bank_client, received_on, seized, unknown";
/// The columns [`crate::rows::cession_path`] reads, in order.
pub const CESSION_PATH_COLUMNS: &str =
    "transfer, before_cutoff, from_cutoff, bank_client, received_on";

/// The kept rows of the accounts `list` names, in account order: `= $1` for one, or the
/// backend's way to name a list (`= ANY($1)`, `IN (?, …)`).
pub fn holding_paths_sql(list: &str) -> String {
    format!(
        "SELECT {HOLDING_PATH_COLUMNS} FROM holding_paths WHERE account {list} ORDER BY account"
    )
}
/// The carried paths of the cessions `list` names, as [`holding_paths_sql`] names them.
pub fn cession_paths_sql(list: &str) -> String {
    format!("SELECT {CESSION_PATH_COLUMNS} FROM cession_paths WHERE transfer {list}")
}
pub const INSERT_CESSION_PATH: &str =
    "INSERT INTO cession_paths (transfer, before_cutoff, from_cutoff, bank_client, received_on)
     VALUES ($1, $2, $3, $4, $5)";
pub const UPSERT_HOLDING_PATH: &str = "INSERT INTO holding_paths (account, before_cutoff, from_cutoff, bank_client, received_on, seized, unknown)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (account) DO UPDATE SET before_cutoff = excluded.before_cutoff,
        from_cutoff = excluded.from_cutoff, bank_client = excluded.bank_client,
        received_on = excluded.received_on, seized = excluded.seized, unknown = excluded.unknown";

/// A kept row's values as the tables hold them, in [`HOLDING_PATH_COLUMNS`]' order.
pub fn holding_path_values(account: AccountId, p: &HoldingPath) -> [Option<i64>; 7] {
    [
        Some(account),
        Some(i64::from(p.before_cutoff)),
        Some(i64::from(p.from_cutoff)),
        Some(i64::from(p.bank_client)),
        p.received_on.map(i64::from),
        Some(i64::from(p.seized)),
        Some(i64::from(p.unknown)),
    ]
}

/// A carried path's values as `cession_paths` holds them, in [`CESSION_PATH_COLUMNS`]' order.
pub fn cession_path_values(c: &CessionPath) -> [i64; 5] {
    [
        c.transfer,
        i64::from(c.path.before_cutoff),
        i64::from(c.path.from_cutoff),
        i64::from(c.path.bank_client),
        i64::from(c.day),
    ]
}

/// Fills `holding_paths` from the history, as the migration that created it does.
pub fn fill_sql() -> String {
    format!(
        "INSERT INTO holding_paths (account, {}) {RECOMPUTE_SQL}",
        COLUMNS.join(", ")
    )
}

/// The columns of `holding_paths` after its key, in the order [`DIFF_SQL`] gives them.
pub const COLUMNS: [&str; 6] = [
    "before_cutoff",
    "from_cutoff",
    "bank_client",
    "received_on",
    "seized",
    "unknown",
];

/// Where `holding_paths` and the history differ: (account, the stored row's presence and
/// columns, the history's), the first hundred in account order; a missing `received_on`
/// reads 0. The two sides are grouped together (one sort, which spills to disk rather
/// than grow), as F1's summary is compared.
pub fn diff_sql() -> String {
    let n = COLUMNS.len() + 1;
    // One side's presence and columns, named c0… on the stored side (the union's names
    // come from its first select), zeros in the other side's places.
    let values = |prefix: &str| -> Vec<String> {
        std::iter::once("1".to_string())
            .chain(COLUMNS.iter().map(|c| match *c {
                "received_on" => format!("COALESCE({prefix}{c}, 0)"),
                _ => format!("{prefix}{c}"),
            }))
            .map(|v| format!("CAST({v} AS BIGINT)"))
            .collect()
    };
    let zeros = vec!["CAST(0 AS BIGINT)".to_string(); n];
    let stored: Vec<String> = values("h.")
        .into_iter()
        .chain(zeros.iter().cloned())
        .enumerate()
        .map(|(i, v)| format!("{v} AS c{i}"))
        .collect();
    let history: Vec<String> = zeros.into_iter().chain(values("r.")).collect();
    let sums: Vec<String> = (0..2 * n)
        .map(|i| format!("CAST(SUM(c{i}) AS BIGINT)"))
        .collect();
    let differs: Vec<String> = (0..n)
        .map(|i| format!("SUM(c{i}) <> SUM(c{})", i + n))
        .collect();
    format!(
        "SELECT account, {sums}
           FROM (SELECT h.account AS account, {stored} FROM holding_paths h
                 UNION ALL
                 SELECT r.account, {history} FROM ({RECOMPUTE_SQL}) r) d
          GROUP BY account
         HAVING {differs}
          ORDER BY account
          LIMIT 100",
        sums = sums.join(", "),
        stored = stored.join(", "),
        history = history.join(", "),
        differs = differs.join(" OR "),
    )
}

/// One row of [`diff_sql`]: the account, then the stored side and the history's, each its
/// presence (0 or 1) and [`COLUMNS`].
pub type PathDifference = (AccountId, [i64; 7], [i64; 7]);

/// Reports each difference [`diff_sql`] found, naming the account and the first column
/// that differs.
pub fn check(
    report: &mut crate::verify::VerifyReport,
    differences: impl IntoIterator<Item = PathDifference>,
) {
    use crate::verify::{MAX_PROBLEMS, Problem};
    for (account, stored, history) in differences {
        if report.problems.len() >= MAX_PROBLEMS {
            break;
        }
        let problem = match (stored[0], history[0]) {
            (0, _) => Problem::Row {
                table: "holding_paths",
                key: account,
                column: None,
                expected: "a row".into(),
                found: "none".into(),
            },
            (_, 0) => Problem::Row {
                table: "holding_paths",
                key: account,
                column: None,
                expected: "no row".into(),
                found: "a row".into(),
            },
            _ => {
                let i = (1..=COLUMNS.len())
                    .find(|i| stored[*i] != history[*i])
                    .unwrap_or(1);
                Problem::Row {
                    table: "holding_paths",
                    key: account,
                    column: Some(COLUMNS[i - 1]),
                    expected: history[i].to_string(),
                    found: stored[i].to_string(),
                }
            }
        };
        report.problems.push(problem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cessio_core::ledger::GENESIS_HASH;
    use cessio_core::money::Cents;

    fn row(id: TransferId, kind: TransferKind, phase: Phase, credit: AccountId) -> TransferRow {
        TransferRow {
            id,
            operation: 1,
            rata: 1,
            debit: 1,
            credit,
            amount: Cents::new(100),
            kind,
            phase,
            pending_id: None,
            at_micros: 0,
            acting_user: "t".into(),
            party: Some(1),
            counterparty: Some(2),
            disclose: false,
            hash: GENESIS_HASH,
        }
    }

    fn carried(transfer: TransferId, before: u32, from: u32, bank: bool, day: i32) -> CessionPath {
        CessionPath {
            transfer,
            path: CarriedPath {
                before_cutoff: before,
                from_cutoff: from,
                bank_client: bank,
            },
            day,
        }
    }

    fn plan(transfers: Vec<TransferRow>, cession_paths: Vec<CessionPath>) -> Plan {
        Plan {
            transfers,
            cession_paths,
            ..Plan::default()
        }
    }

    #[test]
    fn r_chain_the_most_restrictive_of_two_paths_counts() {
        let mut answer = row(3, TransferKind::Cession, Phase::PostPending, 7);
        answer.pending_id = Some(2);
        let plan = plan(
            vec![
                row(1, TransferKind::Cession, Phase::Posted, 7),
                row(2, TransferKind::Cession, Phase::Pending, 7),
                answer,
            ],
            vec![
                carried(1, 2, 0, false, 20_230_101),
                carried(2, 0, 1, true, 20_230_301),
            ],
        );
        let rows = changes(&plan, &HashMap::new(), &HashMap::new());
        assert_eq!(
            rows,
            vec![(
                7,
                HoldingPath {
                    before_cutoff: 2,
                    from_cutoff: 1,
                    bank_client: true,
                    received_on: Some(20_230_301),
                    seized: false,
                    unknown: false,
                }
            )]
        );
    }

    #[test]
    fn r_chain_a_pending_cession_gives_a_path_only_when_accepted() {
        let first = plan(
            vec![row(5, TransferKind::Cession, Phase::Pending, 9)],
            vec![carried(5, 1, 0, false, 20_230_101)],
        );
        assert_eq!(
            changes(&first, &HashMap::new(), &HashMap::new()),
            vec![(9, HoldingPath::default())],
            "registered: the holding has a path, still the first holder's"
        );
        // Accepted in a later batch: the carried path comes from the store.
        let mut answer = row(8, TransferKind::Cession, Phase::PostPending, 9);
        answer.pending_id = Some(5);
        let later = plan(vec![answer], Vec::new());
        assert_eq!(
            wanted(&later),
            PathsWanted {
                accounts: vec![9],
                cessions: vec![5]
            }
        );
        let kept = HashMap::from([(9, HoldingPath::default())]);
        let stored = HashMap::from([(5, carried(5, 1, 0, false, 20_230_101))]);
        assert_eq!(
            changes(&later, &kept, &stored)[0].1.before_cutoff,
            1,
            "accepted: the cedente's path counted one more"
        );
        // Refused: nothing changes.
        let mut answer = row(8, TransferKind::Cession, Phase::VoidPending, 9);
        answer.pending_id = Some(5);
        let refused = plan(vec![answer], Vec::new());
        assert!(changes(&refused, &kept, &stored).is_empty());
    }

    #[test]
    fn a_cession_without_a_recorded_path_and_a_seizure_send_the_holding_to_its_history() {
        let mut seize = row(2, TransferKind::Seize, Phase::Posted, 100);
        seize.debit = 4;
        seize.counterparty = None;
        let plan = plan(
            vec![row(1, TransferKind::Cession, Phase::Posted, 3), seize],
            Vec::new(),
        );
        let rows: HashMap<AccountId, HoldingPath> =
            changes(&plan, &HashMap::new(), &HashMap::new())
                .into_iter()
                .collect();
        assert!(rows[&3].unknown && !rows[&3].is_complete());
        assert!(rows[&4].seized && !rows[&4].is_complete());
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn an_option_communication_gives_the_first_holder_an_empty_path() {
        let issued = plan(
            vec![row(1, TransferKind::Issue, Phase::Posted, 3)],
            Vec::new(),
        );
        assert_eq!(
            changes(&issued, &HashMap::new(), &HashMap::new()),
            vec![(3, HoldingPath::default())]
        );
        // A split's rate reach their holder otherwise: no path.
        let split = plan(
            vec![row(1, TransferKind::Split, Phase::Posted, 3)],
            Vec::new(),
        );
        assert!(changes(&split, &HashMap::new(), &HashMap::new()).is_empty());
    }
}

//! `cessio verify`: recompute every balance from the append-only history and check
//! R-CONSERVE, R-HISTORY and the hash chain. Backends stream rows in id order into a
//! [`Verifier`]; the checks live here once.
//!
//! The whole check, in order: the log's chain; each projection rebuilt from the log and
//! compared with its table row by row (`projections::Projections`,
//! `projections::TableCheck`); the head, which must name the log's last entry and, in its
//! counters, the last ids the log gave; then the transfers (their chain and its anchors in
//! the log, every balance, each account's last transfer, R-CONSERVE) and F1's
//! `party_summary` and `party_summary_days`, recomputed from the history
//! (`crate::summary_days` compares the kept days). The tamper suite
//! (`r_history_verify_names_every_tampered_table_and_key` in each backend, cases in
//! `contract::TAMPERS`) edits, deletes and inserts a row in every table, one at a time.
//!
//! Outside the log, so outside this check: the web layer's `web_sessions`, `login_flows`
//! and `login_attempts` (short-lived and swept; they decide no fact of the register) and
//! `schema_migrations`.
//!
//! What the check holds in memory, and so what grows with the register: a 16-byte
//! fingerprint per projected row, the log's anchor per entry that moved money, and per
//! account its balance replayed from the transfers and its rata, per rata its accounts'
//! sum. The rest streams or is compared by the database: the log and the transfers are
//! read in order, F1's summary is compared by one query (`crate::summary_diff_sql`), its
//! kept days a party at a time, the feeds and each account's last transfer by queries.

use std::collections::HashMap;
use std::num::NonZeroI64;

use cessio_core::ledger::{
    Account, AccountId, AccountKind, Balance, GENESIS_HASH, Hash, PendingTransfer, RataId,
    TransferId, chain_hash, hash_to_hex, replay_entry,
};
use cessio_core::money::Cents;
use serde::Serialize;

use crate::engine::{Head, TransferRow};
use crate::id_map::{IdBits, IdMap};
use crate::model::SummaryKey;
use crate::projections::{Anchor, anchor};
use cessio_core::ledger::PartyId;

/// One thing found wrong. The first one names the first broken row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// A transfer id is missing or out of order: a row was deleted or inserted.
    Gap {
        expected: TransferId,
        found: TransferId,
    },
    /// The stored hash does not match the recomputed chain: the row or one before it
    /// was edited.
    HashMismatch { transfer: TransferId },
    /// The entry contradicts the history before it.
    Inconsistent {
        transfer: TransferId,
        reason: String,
    },
    /// The stored running balance differs from the history.
    BalanceMismatch {
        account: AccountId,
        stored: Balance,
        recomputed: Balance,
    },
    /// An account other than issuance holds a negative amount (R-CONSERVE).
    Negative { account: AccountId },
    /// The rata's accounts do not sum to zero, or more was issued than the rata's amount.
    Conserve { rata: RataId, reason: String },
    /// The ledger head does not match the last row: the newest rows were removed.
    Head { reason: String },
    /// F1's summary differs from the history for a party.
    Summary { party: PartyId, reason: String },
    /// A party's feed lacks a movement that concerns it (`missing`), or holds one that
    /// does not.
    Feed {
        party: PartyId,
        transfer: TransferId,
        missing: bool,
    },
    /// The last transfer an account records is not the last one that moved it: F1's kept
    /// cedibilità would miss what moved it.
    LastTransfer {
        account: AccountId,
        stored: TransferId,
        recomputed: TransferId,
    },
    /// An entry of the log is missing or out of order: one was deleted or inserted.
    LogGap { expected: i64, found: i64 },
    /// An entry of the log does not match the chain: it or one before it was edited.
    LogHash { seq: i64 },
    /// An entry of the log cannot be what the writer wrote.
    LogEntry { seq: i64, reason: String },
    /// A transfer's hash differs from the one the log recorded with the change that
    /// appended it, or the transfer is missing: the transfers' chain was rewritten.
    Anchor {
        transfer: TransferId,
        reason: String,
    },
    /// A stored row differs from the one the log rebuilds: `column` names the first
    /// differing column, or none when the whole row is missing or was never written.
    Row {
        table: &'static str,
        key: i64,
        column: Option<&'static str>,
        expected: String,
        found: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Gap { expected, found } => write!(
                f,
                "transfer {found}: expected id {expected} (a row was deleted or inserted)"
            ),
            Problem::HashMismatch { transfer } => write!(
                f,
                "transfer {transfer}: hash does not match the chain (the row was edited)"
            ),
            Problem::Inconsistent { transfer, reason } => {
                write!(f, "transfer {transfer}: {reason}")
            }
            Problem::BalanceMismatch {
                account,
                stored,
                recomputed,
            } => write!(
                f,
                "account {account}: stored balance {stored:?} differs from history {recomputed:?}"
            ),
            Problem::Negative { account } => {
                write!(f, "account {account}: negative amount (R-CONSERVE)")
            }
            Problem::Conserve { rata, reason } => write!(f, "rata {rata}: {reason} (R-CONSERVE)"),
            Problem::Head { reason } => write!(f, "ledger head: {reason}"),
            Problem::Summary { party, reason } => {
                write!(f, "party {party}: F1 summary {reason}")
            }
            Problem::Feed {
                party,
                transfer,
                missing,
            } => write!(
                f,
                "party_feed ({party}, {transfer}): {}",
                if *missing {
                    "expected a row (the transfer concerns the party)"
                } else {
                    "expected no row (the transfer does not concern the party)"
                }
            ),
            Problem::LastTransfer {
                account,
                stored,
                recomputed,
            } => write!(
                f,
                "account {account}: last transfer recorded {stored}, history says {recomputed}"
            ),
            Problem::LogGap { expected, found } => write!(
                f,
                "log entry {found}: expected {expected} (an entry was deleted or inserted)"
            ),
            Problem::LogHash { seq } => write!(
                f,
                "log entry {seq}: hash does not match the chain (the entry was edited)"
            ),
            Problem::LogEntry { seq, reason } => write!(f, "log entry {seq}: {reason}"),
            Problem::Anchor { transfer, reason } => write!(f, "transfer {transfer}: {reason}"),
            Problem::Row {
                table,
                key,
                column: Some(column),
                expected,
                found,
            } => write!(
                f,
                "{table} {key} column {column}: expected {expected}, found {found}"
            ),
            Problem::Row {
                table,
                key,
                column: None,
                expected,
                found,
            } => write!(f, "{table} {key}: expected {expected}, found {found}"),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Entries of the log read, and rows of its projections compared with them.
    pub log_entries: u64,
    pub projected_rows: u64,
    pub transfers: u64,
    pub accounts: u64,
    pub rate: u64,
    pub last_hash: String,
    /// The log's last entry and its hash, as read from the log: copied somewhere the
    /// database's writers cannot reach, it shows a later rewrite of the whole log.
    pub log_seq: i64,
    pub log_hash: String,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reports the accounts [`crate::LAST_TRANSFER_CHECK_SQL`] found: (account, stored,
/// recomputed).
pub fn check_last_transfers(
    report: &mut VerifyReport,
    found: impl IntoIterator<Item = (AccountId, TransferId, TransferId)>,
) {
    for (account, stored, recomputed) in found {
        if report.problems.len() >= MAX_PROBLEMS {
            break;
        }
        report.problems.push(Problem::LastTransfer {
            account,
            stored,
            recomputed,
        });
    }
}

/// Reports each difference [`crate::summary_diff_sql`] found between the stored F1
/// summary and the history: (key, stored, history).
pub fn check_summary(
    report: &mut VerifyReport,
    differences: impl IntoIterator<Item = (SummaryKey, i64, i64)>,
) {
    for (key, stored, want) in differences {
        if report.problems.len() >= MAX_PROBLEMS {
            break;
        }
        let (party, type_key, year, code, received, kind, state) = key;
        report.problems.push(Problem::Summary {
            party,
            reason: format!(
                "{type_key} {year} {code} {} {kind} {state}: stored {stored}, history {want}",
                if received == 1 { "received" } else { "sent" }
            ),
        });
    }
}

/// Reports the differences between the parties' feeds and the history: the pairs
/// [`crate::feed::FEED_MISSING_SQL`] and [`crate::feed::FEED_EXTRA_SQL`] found.
pub fn check_feed(
    report: &mut VerifyReport,
    missing: impl IntoIterator<Item = (PartyId, TransferId)>,
    extra: impl IntoIterator<Item = (PartyId, TransferId)>,
) {
    let found = missing
        .into_iter()
        .map(|k| (k, true))
        .chain(extra.into_iter().map(|k| (k, false)));
    for ((party, transfer), missing) in found {
        if report.problems.len() >= MAX_PROBLEMS {
            break;
        }
        report.problems.push(Problem::Feed {
            party,
            transfer,
            missing,
        });
    }
}

/// Bounded so that a badly broken store still gives a readable report.
pub const MAX_PROBLEMS: usize = 100;

#[derive(Debug)]
pub struct Verifier {
    previous: Hash,
    last_id: TransferId,
    transfers: u64,
    /// Per account, its balance replayed from the transfers and the rata they moved it in.
    accounts: IdMap<Replayed>,
    pending: HashMap<TransferId, PendingTransfer>,
    /// The pending transfers already posted or voided.
    resolved: IdBits,
    /// The log's anchors in transfer order, and the next one a transfer must meet.
    anchors: Vec<(TransferId, Anchor)>,
    next_anchor: usize,
    problems: Vec<Problem>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            previous: GENESIS_HASH,
            last_id: 0,
            transfers: 0,
            accounts: IdMap::default(),
            pending: HashMap::new(),
            resolved: IdBits::default(),
            anchors: Vec::new(),
            next_anchor: 0,
            problems: Vec::new(),
        }
    }
}

impl Verifier {
    pub fn new() -> Self {
        Verifier::default()
    }

    /// After the log was read: its problems come first, and the transfers must match the
    /// hashes it recorded.
    pub fn after_log(log: &mut crate::projections::Projections, head: &Head) -> (Self, LogSummary) {
        let mut v = Verifier {
            accounts: IdMap::new(head.last_account),
            resolved: IdBits::new(head.last_transfer),
            ..Verifier::new()
        };
        let summary = LogSummary::check(log, head);
        v.problems = std::mem::take(&mut log.problems);
        v.problems.extend(summary.problems.iter().cloned());
        v.anchors = std::mem::take(&mut log.anchors);
        // In log order they are in transfer order; a reordered log (already named by its
        // chain) must not hide an anchor.
        if !v.anchors.is_sorted_by_key(|(id, _)| *id) {
            v.anchors.sort_by_key(|(id, _)| *id);
        }
        (v, summary)
    }

    /// Adds the problems found comparing a projection with its table.
    pub fn table_checked(&mut self, rows: u64, problems: Vec<Problem>, report: &mut LogSummary) {
        report.rows += rows;
        for p in problems {
            self.problem(p);
        }
    }

    fn problem(&mut self, p: Problem) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }

    fn unseen_anchor(&mut self, transfer: TransferId) {
        self.problem(Problem::Anchor {
            transfer,
            reason: "recorded by the log but not among the transfers".into(),
        });
    }

    /// Feed rows in id order.
    pub fn feed(&mut self, row: &TransferRow) {
        self.transfers += 1;
        if row.id != self.last_id + 1 {
            self.problem(Problem::Gap {
                expected: self.last_id + 1,
                found: row.id,
            });
        }
        self.last_id = row.id;
        let expected = chain_hash(&self.previous, &row.fields());
        if expected != row.hash {
            self.problem(Problem::HashMismatch { transfer: row.id });
        }
        while let Some(&(id, logged)) = self.anchors.get(self.next_anchor) {
            if id > row.id {
                break;
            }
            self.next_anchor += 1;
            if id < row.id {
                self.unseen_anchor(id);
            } else if logged != anchor(&row.hash) {
                self.problem(Problem::Anchor {
                    transfer: row.id,
                    reason: format!(
                        "hash differs from the one the log recorded ({}…)",
                        hash_to_hex(&logged)
                    ),
                });
            }
        }
        // Continue from the stored hash so that one edited row is reported once.
        self.previous = row.hash;
        let Some(rata) = NonZeroI64::new(row.rata) else {
            self.problem(Problem::Inconsistent {
                transfer: row.id,
                reason: "no rata".into(),
            });
            return;
        };
        for account in [row.debit, row.credit] {
            let first = self
                .accounts
                .get_or_insert_with(account, || Replayed {
                    balance: Balance::default(),
                    rata,
                })
                .rata;
            if first != rata {
                self.problem(Problem::Inconsistent {
                    transfer: row.id,
                    reason: format!("account {account} used for two rate"),
                });
            }
        }
        if let Err(reason) = replay_entry(
            &mut ReplayedBalances(&mut self.accounts),
            &mut self.pending,
            &mut self.resolved,
            &row.fields(),
        ) {
            self.problem(Problem::Inconsistent {
                transfer: row.id,
                reason,
            });
        }
    }

    /// Compares the history with the stored accounts, rate (id, amount) and head.
    pub fn finish(
        self,
        accounts: impl IntoIterator<Item = Account>,
        rate: impl IntoIterator<Item = (RataId, Cents)>,
        head: &Head,
    ) -> VerifyReport {
        let mut check = self.accounts(head);
        for a in accounts {
            check.feed(a);
        }
        for (rata, amount) in rate {
            check.rata(rata, amount);
        }
        check.finish()
    }

    /// After the transfers: checks the head and the anchors no transfer matched, then
    /// takes the stored accounts one at a time ([`AccountsCheck::feed`]).
    pub fn accounts(mut self, head: &Head) -> AccountsCheck {
        if head.last_transfer != self.last_id || head.last_hash != self.previous {
            self.problem(Problem::Head {
                reason: format!(
                    "head names transfer {} but the history ends at {}",
                    head.last_transfer, self.last_id
                ),
            });
        }
        while let Some(&(id, _)) = self.anchors.get(self.next_anchor) {
            self.next_anchor += 1;
            self.unseen_anchor(id);
        }
        self.anchors = Vec::new();
        let recomputed = std::mem::take(&mut self.accounts);
        self.resolved = IdBits::default();
        AccountsCheck {
            v: self,
            recomputed,
            accounts: 0,
            rate: 0,
            per_rata: IdMap::new(head.last_rata),
        }
    }
}

/// An account as the transfers leave it: 40 bytes (the rata is never zero, so an absent
/// account costs no more than a present one).
#[derive(Debug)]
struct Replayed {
    balance: Balance,
    rata: NonZeroI64,
}

/// The replayed accounts as `replay_entry` moves them: `Verifier::feed` has put both
/// accounts of the transfer in before.
struct ReplayedBalances<'a>(&'a mut IdMap<Replayed>);

impl cessio_core::ledger::Balances<Balance> for ReplayedBalances<'_> {
    fn balance_mut(&mut self, account: AccountId) -> &mut Balance {
        &mut self
            .0
            .get_or_insert_with(account, || Replayed {
                balance: Balance::default(),
                rata: NonZeroI64::MAX,
            })
            .balance
    }
}

/// What a rata's accounts sum to, and what its issuance account gave out (posted and
/// pending), once that account is seen. In cents as `i64`, 24 bytes a rata where `i128`s
/// took 64: a sum that leaves `i64` is itself a breach of R-CONSERVE, and is named so.
#[derive(Debug, Default)]
struct RataSum {
    sum: i64,
    issued: i64,
    issuance_seen: bool,
    overflow: bool,
}

/// The stored accounts compared with the balances the transfers gave them, one at a time
/// in any order, then each rata's sum (R-CONSERVE).
#[derive(Debug)]
pub struct AccountsCheck {
    v: Verifier,
    recomputed: IdMap<Replayed>,
    accounts: u64,
    rate: u64,
    per_rata: IdMap<RataSum>,
}

impl AccountsCheck {
    pub fn feed(&mut self, a: Account) {
        self.accounts += 1;
        let history = self
            .recomputed
            .remove(a.id)
            .map_or_else(Balance::default, |r| r.balance);
        if history != a.balance {
            self.v.problem(Problem::BalanceMismatch {
                account: a.id,
                stored: a.balance,
                recomputed: history,
            });
        }
        let b = a.balance;
        if !a.kind.may_go_negative()
            && (b.available().is_none_or(|v| v.is_negative()) || b.credits_pending.is_negative())
        {
            self.v.problem(Problem::Negative { account: a.id });
        }
        let entry = self.per_rata.get_mut_or_default(a.rata);
        let net = i128::from(b.credits_posted.get()) - i128::from(b.debits_posted.get())
            + i128::from(b.credits_pending.get())
            - i128::from(b.debits_pending.get());
        match i64::try_from(i128::from(entry.sum) + net) {
            Ok(sum) => entry.sum = sum,
            Err(_) => entry.overflow = true,
        }
        if a.kind == AccountKind::Issuance {
            let out = i128::from(b.debits_posted.get()) + i128::from(b.debits_pending.get());
            entry.issuance_seen = true;
            match i64::try_from(out) {
                Ok(out) => entry.issued = out,
                Err(_) => entry.overflow = true,
            }
        }
    }

    /// Checks one rata (id, amount) against its accounts' sums; after every account.
    pub fn rata(&mut self, rata: RataId, amount: Cents) {
        self.rate += 1;
        let Some(RataSum {
            sum,
            issued,
            issuance_seen,
            overflow,
        }) = self.per_rata.remove(rata)
        else {
            return;
        };
        if overflow {
            self.v.problem(Problem::Conserve {
                rata,
                reason: "its accounts sum beyond what cents can count".into(),
            });
        } else if sum != 0 {
            self.v.problem(Problem::Conserve {
                rata,
                reason: format!("accounts sum to {sum} cents, not zero"),
            });
        }
        if issuance_seen && !overflow && issued != 0 && issued != amount.get() {
            self.v.problem(Problem::Conserve {
                rata,
                reason: format!(
                    "issued {issued} cents but the rata amounts to {}",
                    amount.get()
                ),
            });
        }
    }

    /// After every rata: the accounts of rate that do not exist, and the report.
    pub fn finish(self) -> VerifyReport {
        let AccountsCheck {
            v: mut this,
            recomputed,
            accounts,
            rate,
            per_rata,
        } = self;
        for account in recomputed.ids() {
            this.problem(Problem::Inconsistent {
                transfer: 0,
                reason: format!(
                    "account {account} appears in the history but not among the accounts"
                ),
            });
        }
        for rata in per_rata.ids() {
            this.problem(Problem::Conserve {
                rata,
                reason: "accounts of a rata that does not exist".into(),
            });
        }
        VerifyReport {
            log_entries: 0,
            projected_rows: 0,
            transfers: this.transfers,
            accounts,
            rate,
            last_hash: hash_to_hex(&this.previous),
            log_seq: 0,
            log_hash: String::new(),
            problems: this.problems,
        }
    }
}

/// What reading the log found about the head, and the rows compared.
#[derive(Debug, Default)]
pub struct LogSummary {
    pub entries: u64,
    pub rows: u64,
    last_seq: i64,
    last_hash: cessio_core::ledger::Hash,
    problems: Vec<Problem>,
}

impl LogSummary {
    /// The head must name the log's last entry, and its counters the last id each
    /// projection got from the log.
    fn check(log: &crate::projections::Projections, head: &Head) -> LogSummary {
        use crate::log::{ACCOUNTS, CREDITS, OPERATIONS, PARTIES, RATE};
        let mut problems = Vec::new();
        if head.log_seq != log.last_seq || head.log_hash != log.last_hash {
            problems.push(Problem::Head {
                reason: format!(
                    "head names log entry {} but the log ends at {}",
                    head.log_seq, log.last_seq
                ),
            });
        }
        for (name, stored, spec) in [
            ("last_operation", head.last_operation, &OPERATIONS),
            ("last_party", head.last_party, &PARTIES),
            ("last_credit", head.last_credit, &CREDITS),
            ("last_rata", head.last_rata, &RATE),
            ("last_account", head.last_account, &ACCOUNTS),
        ] {
            let logged = log.last_id(spec);
            if stored != logged {
                problems.push(Problem::Head {
                    reason: format!("{name} is {stored} but the log's last is {logged}"),
                });
            }
        }
        LogSummary {
            entries: log.entries,
            rows: 0,
            last_seq: log.last_seq,
            last_hash: log.last_hash,
            problems,
        }
    }

    pub fn into_report(self, report: &mut VerifyReport) {
        report.log_entries = self.entries;
        report.projected_rows = self.rows;
        report.log_seq = self.last_seq;
        report.log_hash = hash_to_hex(&self.last_hash);
    }
}

#[cfg(test)]
mod tests {
    use cessio_core::ledger::{Phase, TransferKind};

    use super::*;
    use crate::projections::Projections;

    /// A chain of `n` issues of 100 cents from account 1 to account 2, hashed as the
    /// writer hashes them.
    fn chain(n: i64, amount: impl Fn(i64) -> i64, rata: impl Fn(i64) -> i64) -> Vec<TransferRow> {
        let mut previous = GENESIS_HASH;
        (1..=n)
            .map(|id| {
                let mut row = TransferRow {
                    id,
                    operation: id,
                    rata: rata(id),
                    debit: 1,
                    credit: 2,
                    amount: Cents::new(amount(id)),
                    kind: TransferKind::Issue,
                    phase: Phase::Posted,
                    pending_id: None,
                    at_micros: id,
                    acting_user: "op".into(),
                    party: None,
                    counterparty: None,
                    disclose: false,
                    hash: GENESIS_HASH,
                };
                row.hash = chain_hash(&previous, &row.fields());
                previous = row.hash;
                row
            })
            .collect()
    }

    fn problems(anchors: &[(i64, &TransferRow)], rows: &[TransferRow]) -> Vec<String> {
        let mut log = Projections::new();
        log.anchors = anchors
            .iter()
            .map(|(id, r)| (*id, anchor(&r.hash)))
            .collect();
        let head = Head {
            last_operation: 0,
            last_transfer: rows.last().map_or(0, |r| r.id),
            last_hash: rows.last().map_or(GENESIS_HASH, |r| r.hash),
            last_party: 0,
            last_credit: 0,
            last_rata: 1,
            last_account: 2,
            last_protocol: String::new(),
            log_seq: 0,
            log_hash: GENESIS_HASH,
        };
        let (mut v, _) = Verifier::after_log(&mut log, &head);
        for r in rows {
            v.feed(r);
        }
        let report = v.accounts(&head).finish();
        report.problems.iter().map(ToString::to_string).collect()
    }

    fn anchored(anchors: &[(i64, &TransferRow)], rows: &[TransferRow]) -> Vec<String> {
        problems(anchors, rows)
            .into_iter()
            .filter(|p| p.contains("log recorded") || p.contains("not among the transfers"))
            .collect()
    }

    #[test]
    fn r_conserve_an_account_moved_in_two_rate_is_named() {
        let rows = chain(2, |_| 100, |id| id);
        let found = problems(&[], &rows);
        assert!(
            found.contains(&"transfer 2: account 1 used for two rate".to_string()),
            "{found:?}"
        );
        let rows = chain(2, |_| 100, |_| 0);
        assert!(problems(&[], &rows).contains(&"transfer 1: no rata".to_string()));
    }

    #[test]
    fn an_account_replayed_costs_forty_bytes_present_or_not() {
        assert_eq!(std::mem::size_of::<Option<Replayed>>(), 40);
    }

    #[test]
    fn r_history_a_rewritten_and_rehashed_chain_differs_from_the_log_s_anchors() {
        let written = chain(4, |_| 100, |_| 1);
        let anchors = [(2, &written[1]), (4, &written[3])];
        assert_eq!(anchored(&anchors, &written), Vec::<String>::new());
        // The same chain with transfer 3 changed and every hash after it recomputed: its
        // own chain holds, the log's anchor at 4 does not.
        let rewritten = chain(4, |id| if id == 3 { 99 } else { 100 }, |_| 1);
        let found = anchored(&anchors, &rewritten);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("transfer 4: hash differs from the one the log recorded"));
        // The log anchors a transfer the table no longer has.
        let found = anchored(&anchors, &written[..3]);
        assert_eq!(
            found,
            vec!["transfer 4: recorded by the log but not among the transfers"]
        );
    }
}

//! A party's feed: every movement that concerns it, in the order the ledger registered
//! them, read from where a reader left off. The events of the API come from it, so they
//! cannot disagree with the ledger they describe.
//!
//! A movement concerns the parties on its two sides and, when it answers a pending one,
//! the two sides of that one too: a refusal's row names only the cessionario who gave it,
//! yet the cedente is told. Finding those answers by joining every pending movement a
//! party ever sent would read its whole history on each poll, so the writer keeps an
//! index of them, `party_feed` (party, transfer), filled in the batch's transaction with
//! the pairs [`crate::engine::projected`] computes from the batch's plan. It is a
//! projection of the transfers alone: `verify` recomputes it ([`FEED_MISSING_SQL`],
//! [`FEED_EXTRA_SQL`]) and names each difference. The suspensions that concern a party
//! are read from the operator's register, which is indexed by party already.

use chrono::{DateTime, Utc};

use cessio_core::ledger::{PartyId, Phase, RataId, TransferId, TransferKind};
use cessio_core::money::Cents;

use crate::model::OperatorEventQuery;
use crate::rows::{Columns, micros_to_time};

/// Each transfer with every party it concerns (possibly NULL, filtered by the caller):
/// `{filter}` selects the transfers (`t`).
fn concerned(filter: &str) -> String {
    format!(
        "SELECT t.party AS p, t.id AS transfer FROM transfers t WHERE {filter}
         UNION ALL SELECT t.counterparty, t.id FROM transfers t WHERE {filter}
         UNION ALL SELECT o.party, t.id FROM transfers t JOIN transfers o ON o.id = t.pending_id WHERE {filter}
         UNION ALL SELECT o.counterparty, t.id FROM transfers t JOIN transfers o ON o.id = t.pending_id WHERE {filter}"
    )
}

/// The feed rebuilt from the whole history, for the migration that creates it.
pub fn feed_fill_sql() -> String {
    format!(
        "INSERT INTO party_feed (party, transfer)
         SELECT DISTINCT c.p, c.transfer FROM ({}) c WHERE c.p IS NOT NULL",
        concerned("1 = 1")
    )
}

/// At most this many differences of each kind are listed by `verify`.
const FEED_PROBLEMS: usize = 20;

/// (party, transfer) the history says concern each other but the feed lacks, for `verify`.
/// Compared in the database, so that `verify` holds none of it in memory.
pub static FEED_MISSING_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT c.p, c.transfer FROM ({}) c WHERE c.p IS NOT NULL
         EXCEPT SELECT party, transfer FROM party_feed
         ORDER BY 1, 2 LIMIT {FEED_PROBLEMS}",
        concerned("1 = 1")
    )
});

/// (party, transfer) the feed holds that the history does not give, for `verify`.
pub static FEED_EXTRA_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT party, transfer FROM party_feed
         EXCEPT SELECT c.p, c.transfer FROM ({}) c WHERE c.p IS NOT NULL
         ORDER BY 1, 2 LIMIT {FEED_PROBLEMS}",
        concerned("1 = 1")
    )
});

/// One movement of a party's feed, with what a reader needs to name it: the movement it
/// answers, if any, and its rata and credit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedRow {
    pub transfer: TransferId,
    pub operation: i64,
    pub at: DateTime<Utc>,
    pub kind: TransferKind,
    pub phase: Phase,
    pub amount: Cents,
    pub party: Option<PartyId>,
    pub counterparty: Option<PartyId>,
    /// The movement this one answers (`post_pending` or `void_pending`).
    pub answers: Option<Answered>,
    pub rata: RataId,
    pub codice_univoco: String,
    pub year: i64,
    pub protocol: String,
    pub type_key: String,
    /// The rata this one's credit was split from (a rata of a ten-instalment split).
    pub split_of: Option<RataId>,
}

/// The pending movement an answer answers: who sent it to whom, and its amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answered {
    pub transfer: TransferId,
    pub party: Option<PartyId>,
    pub counterparty: Option<PartyId>,
    pub amount: Cents,
}

/// The columns [`FeedRow`] is read from, in order.
pub const FEED_COLUMNS: &str =
    "t.id, t.operation, t.at, t.kind, t.phase, t.amount, t.party, t.counterparty,
        o.id, o.party, o.counterparty, o.amount,
        r.id, r.codice_univoco, r.year, c.protocol, c.type_key, c.split_of";

const FEED_JOINS: &str = "JOIN rate r ON r.id = t.rata
           JOIN credits c ON c.id = r.credit
           LEFT JOIN transfers o ON o.id = t.pending_id";

/// A page of a party's feed: `?1` the party, `?2` the last transfer read, `?3` the rows.
pub fn feed_page_sql(placeholder: impl Fn(usize) -> String) -> String {
    let (party, after, limit) = (placeholder(1), placeholder(2), placeholder(3));
    format!(
        "SELECT {FEED_COLUMNS}
           FROM party_feed f
           JOIN transfers t ON t.id = f.transfer
           {FEED_JOINS}
          WHERE f.party = {party} AND f.transfer > {after}
          ORDER BY f.transfer
          LIMIT {limit}"
    )
}

/// The movements `ids` (`marks`: the backend's list of them), as the feed reads them: the
/// movements a suspension names.
pub fn feed_rows_sql(marks: &str) -> String {
    format!(
        "SELECT {FEED_COLUMNS} FROM transfers t {FEED_JOINS} WHERE t.id IN ({marks}) ORDER BY t.id"
    )
}

/// Where a party's feed ends now: its last transfer and the last entry of the operator's
/// register about its suspensions (0 when none). A reader that wants only what comes next
/// starts there. `?1` is the party.
pub fn feed_end_sql(placeholder: impl Fn(usize) -> String) -> String {
    let p = placeholder(1);
    format!(
        "SELECT (SELECT COALESCE(MAX(transfer), 0) FROM party_feed WHERE party = {p}),
                (SELECT COALESCE(MAX(id), 0) FROM operator_events
                  WHERE (party = {p} OR counterparty = {p}) AND kind IN ('{}', '{}'))",
        crate::SUSPENSION_EVENT,
        crate::SUSPENSION_END_EVENT
    )
}

/// `SELECT {FEED_COLUMNS}`, as [`feed_page_sql`] reads it.
pub fn feed_row<R: Columns>(r: &R) -> Result<FeedRow, R::Error> {
    let answers = match r.opt_int(8)? {
        Some(transfer) => Some(Answered {
            transfer,
            party: r.opt_int(9)?,
            counterparty: r.opt_int(10)?,
            amount: Cents::new(r.opt_int(11)?.unwrap_or(0)),
        }),
        None => None,
    };
    Ok(FeedRow {
        transfer: r.int(0)?,
        operation: r.int(1)?,
        at: micros_to_time(r.int(2)?),
        // `verify` reports an unknown kind or phase; a reader is shown a neutral one.
        kind: TransferKind::parse(&r.text(3)?).unwrap_or(TransferKind::Correction),
        phase: Phase::parse(&r.text(4)?).unwrap_or(Phase::Posted),
        amount: Cents::new(r.int(5)?),
        party: r.opt_int(6)?,
        counterparty: r.opt_int(7)?,
        answers,
        rata: r.int(12)?,
        codice_univoco: r.text(13)?,
        year: r.int(14)?,
        protocol: r.text(15)?,
        type_key: r.text(16)?,
        split_of: r.opt_int(17)?,
    })
}

/// The suspensions and their ends that concern a party, after the last one read: the
/// operator's register selected as the feed needs it.
pub fn suspensions_after(party: PartyId, after: i64, limit: usize) -> OperatorEventQuery {
    OperatorEventQuery {
        kinds: vec![
            crate::SUSPENSION_EVENT.to_string(),
            crate::SUSPENSION_END_EVENT.to_string(),
        ],
        party: Some(party),
        after: Some(after),
        limit: Some(limit),
        ..OperatorEventQuery::default()
    }
}

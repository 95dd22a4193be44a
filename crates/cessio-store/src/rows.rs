//! Rows into the model, written once for both backends.
//!
//! Each backend hands over rows of its own type, and the two databases store a few columns
//! differently (a date is `DATE` in PostgreSQL and ISO text in SQLite, small numbers are
//! `INTEGER` there and 64-bit here). [`Columns`] reads a row by position in the model's
//! terms, so that what each column means is said here, against the column lists below,
//! rather than twice.

use cessio_core::cf::CodiceFiscale;
use cessio_core::ledger::{Account, AccountKind, Balance, Phase, TransferKind, hash_from_hex};
use cessio_core::money::Cents;
use cessio_core::time::RefYear;
use chrono::{DateTime, NaiveDate, Utc};

use crate::engine::TransferRow;
use crate::model::{
    Answer, Credit, CreditOrigin, Delegation, DelegationScope, HoldingInfo, OperationEntry, Party,
    PartyEntry, PartyKind, Rata, Role, User,
};

// The column lists are macros so that the statements of [`crate::sql`] can be built from
// them at compile time (`concat!` takes literals only).
macro_rules! transfer_columns {
    () => {
        "id, operation, rata, debit, credit, amount, kind, phase, pending_id, at, acting_user, party, counterparty, disclose, hash"
    };
}
macro_rules! account_columns {
    () => {
        "a.id, a.rata, a.kind, a.party, a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted"
    };
}
macro_rules! delegation_columns {
    () => {
        "id, user_id, party, scope, valid_until, created_at, granted_by, revoked_at, revoked_by"
    };
}
macro_rules! user_columns {
    () => {
        "u.id, u.username, u.display_name, u.password_hash, u.pin_hash, u.pin_failures, u.party, u.role"
    };
}
macro_rules! party_columns {
    () => {
        "id, cf, name, kind, deceased"
    };
}
macro_rules! credit_columns {
    () => {
        "id, protocol, type_key, beneficiary, holder, origin, expense_year, communicated_on, tracciabile, created_at, split_of, no_tax_area"
    };
}
macro_rules! rata_columns {
    () => {
        "id, credit, idx, year, amount, codice_tributo, codice_univoco"
    };
}
pub(crate) use {
    credit_columns, delegation_columns, party_columns, rata_columns, transfer_columns, user_columns,
};

/// The columns [`transfer`] reads, in order.
pub const TRANSFER_COLUMNS: &str = transfer_columns!();
/// The columns [`account`] reads, of `accounts a`.
pub const ACCOUNT_COLUMNS: &str = account_columns!();
/// The columns [`delegation`] reads.
pub const DELEGATION_COLUMNS: &str = delegation_columns!();
/// The columns [`user`] reads, of `users u`.
pub const USER_COLUMNS: &str = user_columns!();
/// The columns [`party`] reads.
pub const PARTY_COLUMNS: &str = party_columns!();
/// The columns [`credit`] reads (its rate apart, by [`rata`]).
pub const CREDIT_COLUMNS: &str = credit_columns!();
/// The columns [`rata`] reads.
pub const RATA_COLUMNS: &str = rata_columns!();

/// A row read by position, as the model needs it. `Error` is the backend's own, so that a
/// mapper fits where the backend's driver expects its error.
pub trait Columns {
    type Error;
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    fn flag(&self, i: usize) -> Result<bool, Self::Error>;
    fn date(&self, i: usize) -> Result<NaiveDate, Self::Error>;
    fn opt_date(&self, i: usize) -> Result<Option<NaiveDate>, Self::Error>;
    /// A value the column holds but the model refuses (a codice fiscale that does not
    /// parse): tampering or a broken migration, reported rather than replaced.
    fn invalid(&self, i: usize, e: Box<dyn std::error::Error + Send + Sync>) -> Self::Error;
}

pub fn micros_to_time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

fn small<T: TryFrom<i64> + Default>(v: i64) -> T {
    T::try_from(v).unwrap_or_default()
}

/// `SELECT {ACCOUNT_COLUMNS}` from the row's first column on.
pub fn account<R: Columns>(r: &R) -> Result<Account, R::Error> {
    let party = r.int(3)?;
    Ok(Account {
        id: r.int(0)?,
        rata: r.int(1)?,
        kind: AccountKind::parse(&r.text(2)?).unwrap_or(AccountKind::Holder),
        party: (party != 0).then_some(party),
        balance: Balance {
            debits_pending: Cents::new(r.int(4)?),
            debits_posted: Cents::new(r.int(5)?),
            credits_pending: Cents::new(r.int(6)?),
            credits_posted: Cents::new(r.int(7)?),
        },
    })
}

/// `SELECT {DELEGATION_COLUMNS}`.
pub fn delegation<R: Columns>(r: &R) -> Result<Delegation, R::Error> {
    Ok(Delegation {
        id: r.int(0)?,
        user: r.int(1)?,
        party: r.int(2)?,
        scope: DelegationScope::parse(&r.text(3)?).unwrap_or(DelegationScope::Consultazione),
        until: r.opt_date(4)?,
        granted_at: micros_to_time(r.int(5)?),
        granted_by: r.opt_text(6)?,
        revoked_at: r.opt_int(7)?.map(micros_to_time),
        revoked_by: r.opt_text(8)?,
    })
}

/// `SELECT {ACCOUNT_COLUMNS}`, then the rata's columns from 8, then the credit's type,
/// traceability, the time of the cession that brought the holding and the credit's date
/// of communication (see `HoldingQuery::sql`).
pub fn holding_info<R: Columns>(r: &R) -> Result<HoldingInfo, R::Error> {
    Ok(HoldingInfo {
        account: account(r)?,
        rata: rata_at(r, 8)?,
        type_key: r.text(15)?,
        tracciabile: r.flag(16)?,
        received_by_cession_at: r.opt_int(17)?.map(micros_to_time),
        communicated_on: r.date(18)?,
    })
}

/// `SELECT {PARTY_COLUMNS}`.
pub fn party<R: Columns>(r: &R) -> Result<Party, R::Error> {
    let cf = r.text(1)?;
    Ok(Party {
        id: r.int(0)?,
        cf: CodiceFiscale::parse(&cf).map_err(|e| r.invalid(1, Box::new(e)))?,
        name: r.text(2)?,
        kind: PartyKind::parse(&r.text(3)?).unwrap_or(PartyKind::Person),
        deceased: r.flag(4)?,
    })
}

/// `SELECT {TRANSFER_COLUMNS}`.
pub fn transfer<R: Columns>(r: &R) -> Result<TransferRow, R::Error> {
    Ok(TransferRow {
        id: r.int(0)?,
        operation: r.int(1)?,
        rata: r.int(2)?,
        debit: r.int(3)?,
        credit: r.int(4)?,
        amount: Cents::new(r.int(5)?),
        // An unknown kind or phase is tampering: mapped to a value the hash will not
        // match rather than failing the whole verification.
        kind: TransferKind::parse(&r.text(6)?).unwrap_or(TransferKind::Correction),
        phase: Phase::parse(&r.text(7)?).unwrap_or(Phase::Posted),
        pending_id: r.opt_int(8)?,
        at_micros: r.int(9)?,
        acting_user: r.text(10)?,
        party: r.opt_int(11)?,
        counterparty: r.opt_int(12)?,
        disclose: r.flag(13)?,
        hash: hash_from_hex(&r.text(14)?).unwrap_or_default(),
    })
}

/// [`crate::sql::OPERATION_ENTRY`]'s columns.
pub fn operation_entry<R: Columns>(r: &R) -> Result<OperationEntry, R::Error> {
    Ok(OperationEntry {
        id: r.int(0)?,
        kind: r.text(1)?,
        acting_user: r.text(2)?,
        on_behalf_of: r.opt_int(3)?,
        at: micros_to_time(r.int(4)?),
        receipt: serde_json::from_str(&r.text(5)?).map_err(|e| r.invalid(5, Box::new(e)))?,
        log_seq: r.int(6)?,
        log_hash: r.text(7)?,
    })
}

/// `SELECT {USER_COLUMNS}`.
pub fn user<R: Columns>(r: &R) -> Result<User, R::Error> {
    Ok(User {
        id: r.int(0)?,
        username: r.text(1)?,
        display_name: r.text(2)?,
        password_hash: r.text(3)?,
        pin_hash: r.text(4)?,
        pin_failures: u32::try_from(r.int(5)?).unwrap_or(u32::MAX),
        party: r.opt_int(6)?,
        role: Role::parse(&r.text(7)?).unwrap_or(Role::User),
    })
}

/// `SELECT {CREDIT_COLUMNS}`, without its rate.
pub fn credit<R: Columns>(r: &R) -> Result<Credit, R::Error> {
    Ok(Credit {
        id: r.int(0)?,
        protocol: r.text(1)?,
        type_key: r.text(2)?,
        beneficiary: r.int(3)?,
        holder: r.int(4)?,
        origin: CreditOrigin::parse(&r.text(5)?).unwrap_or(CreditOrigin::Granted),
        expense_year: small(r.int(6)?),
        communicated_on: r.date(7)?,
        tracciabile: r.flag(8)?,
        created_at: micros_to_time(r.int(9)?),
        rate: Vec::new(),
        split_of: r.opt_int(10)?,
        beneficiary_no_tax_area: r.flag(11)?,
    })
}

/// Each rata with its credit, as [`crate::Store::rate_with_credits`] returns them: the two
/// are read apart (each by primary key), and a credit is read once for all its rate.
pub fn rate_with_credits(rate: Vec<Rata>, credits: Vec<Credit>) -> Vec<(Rata, Credit)> {
    let credits: std::collections::HashMap<i64, Credit> =
        credits.into_iter().map(|c| (c.id, c)).collect();
    let mut out: Vec<(Rata, Credit)> = rate
        .into_iter()
        .filter_map(|r| credits.get(&r.credit).map(|c| (r, c.clone())))
        .collect();
    out.sort_by_key(|(r, _)| r.id);
    out
}

/// The distinct credits of these rate, for the second read of
/// [`crate::Store::rate_with_credits`].
pub fn credits_of(rate: &[Rata]) -> Vec<i64> {
    let mut ids: Vec<i64> = rate.iter().map(|r| r.credit).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// `SELECT {RATA_COLUMNS}`.
pub fn rata<R: Columns>(r: &R) -> Result<Rata, R::Error> {
    rata_at(r, 0)
}

fn rata_at<R: Columns>(r: &R, from: usize) -> Result<Rata, R::Error> {
    Ok(Rata {
        id: r.int(from)?,
        credit: r.int(from + 1)?,
        index: small(r.int(from + 2)?),
        year: RefYear::new(small(r.int(from + 3)?)),
        amount: Cents::new(r.int(from + 4)?),
        codice_tributo: r.text(from + 5)?,
        codice_univoco: r.text(from + 6)?,
    })
}

/// One row of [`crate::EntryQuery::sql`]; answers after `until` (micros) count as not
/// given.
pub fn entry<R: Columns>(r: &R, until: i64) -> Result<PartyEntry, R::Error> {
    let phase = r.text(3)?;
    let answer = match (r.opt_text(8)?, r.opt_int(9)?) {
        (Some(p), Some(at)) if at <= until => Some(Answer {
            accepted: p == "post_pending",
            at: micros_to_time(at),
            by: r.opt_int(21)?,
        }),
        _ => None,
    };
    Ok(PartyEntry {
        transfer: r.int(0)?,
        at: micros_to_time(r.int(1)?),
        kind: TransferKind::parse(&r.text(2)?).unwrap_or(TransferKind::Correction),
        pending: phase == "pending",
        amount: Cents::new(r.int(4)?),
        party: r.opt_int(5)?,
        counterparty: r.opt_int(6)?,
        disclose: r.flag(7)?,
        answer,
        rata: r.int(10)?,
        rata_index: small(r.int(11)?),
        year: RefYear::new(small(r.int(12)?)),
        codice_tributo: r.text(13)?,
        codice_univoco: r.text(14)?,
        credit: r.int(15)?,
        type_key: r.text(16)?,
        protocol: r.text(17)?,
        tracciabile: r.flag(18)?,
        origin: CreditOrigin::parse(&r.text(19)?).unwrap_or(CreditOrigin::Granted),
        communicated_on: r.date(20)?,
    })
}

/// A row of [`crate::summary_days::HISTORY_SQL`].
pub fn history_movement<R: Columns>(
    r: &R,
) -> Result<crate::summary_days::HistoryMovement, R::Error> {
    let answer = match r.opt_int(9)? {
        Some(at) => {
            let accepted = r.opt_text(10)?.as_deref() == Some("post_pending");
            Some((at, accepted, r.opt_int(11)? == r.opt_int(0)?))
        }
        None => None,
    };
    Ok(crate::summary_days::HistoryMovement {
        party: r.opt_int(0)?,
        counterparty: r.opt_int(1)?,
        type_key: r.text(2)?,
        year: r.int(3)?,
        codice_tributo: r.text(4)?,
        kind: r.text(5)?,
        posted: r.text(6)? == "posted",
        at_micros: r.int(7)?,
        amount: r.int(8)?,
        answer,
    })
}

/// The summary key in a row's first seven columns.
fn summary_key<R: Columns>(r: &R) -> Result<crate::SummaryKey, R::Error> {
    Ok((
        r.int(0)?,
        r.text(1)?,
        r.int(2)?,
        r.text(3)?,
        r.int(4)?,
        r.text(5)?,
        r.text(6)?,
    ))
}

/// A row of [`crate::summary_days::STORED_SQL`].
pub fn summary_day<R: Columns>(r: &R) -> Result<crate::summary_days::DayRow, R::Error> {
    Ok((summary_key(r)?, small(r.int(7)?), r.int(8)?))
}

/// A row of [`crate::summary_diff_sql`]: the key, the stored amount, the history's.
pub fn summary_difference<R: Columns>(r: &R) -> Result<(crate::SummaryKey, i64, i64), R::Error> {
    Ok((summary_key(r)?, r.int(7)?, r.int(8)?))
}

fn count<T: TryFrom<i64> + Default>(v: i64) -> T {
    small(v)
}

/// A row of `holding_paths`, as [`crate::paths::HOLDING_PATH_COLUMNS`] lists it.
pub fn holding_path<R: Columns>(
    r: &R,
) -> Result<(cessio_core::ledger::AccountId, crate::paths::HoldingPath), R::Error> {
    Ok((
        r.int(0)?,
        crate::paths::HoldingPath {
            before_cutoff: count(r.int(1)?),
            from_cutoff: count(r.int(2)?),
            bank_client: r.int(3)? != 0,
            received_on: r.opt_int(4)?.map(count),
            seized: r.int(5)? != 0,
            unknown: r.int(6)? != 0,
        },
    ))
}

/// A row of `cession_paths`, as [`crate::paths::CESSION_PATH_COLUMNS`] lists it.
pub fn cession_path<R: Columns>(r: &R) -> Result<crate::paths::CessionPath, R::Error> {
    Ok(crate::paths::CessionPath {
        transfer: r.int(0)?,
        path: crate::paths::CarriedPath {
            before_cutoff: count(r.int(1)?),
            from_cutoff: count(r.int(2)?),
            bank_client: r.int(3)? != 0,
        },
        day: count(r.int(4)?),
    })
}

/// A row of [`crate::paths::diff_sql`].
pub fn path_difference<R: Columns>(r: &R) -> Result<crate::paths::PathDifference, R::Error> {
    let mut stored = [0i64; 7];
    let mut history = [0i64; 7];
    for i in 0..7 {
        stored[i] = r.int(1 + i)?;
        history[i] = r.int(8 + i)?;
    }
    Ok((r.int(0)?, stored, history))
}

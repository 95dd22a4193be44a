//! The receipt of an operation: what was done, when, by whom and for whom, each rata it
//! moved with its codice univoco and amount, and the operation's place in the hash-chained
//! log. Built from the store's record of the operation (its receipt, transfers, the
//! transfers its answers answered, their credits and parties), never from the clock: the
//! same operation always gives the same receipt.
//!
//! Who may have it: a user who may see a party the operation concerns (the party it was
//! made for, or one its transfers name as cedente, cessionario or holder), a delegate of
//! such a party, the operator. Asked through another party, it does not exist: the same
//! refusal as an unknown id, so that ids cannot be probed.

use cessio_core::ledger::{PartyId, Phase, TransferId, TransferKind};
use cessio_core::money::Cents;
use cessio_store::OperationRecord;
use cessio_store::engine::TransferRow;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{App, AppError, Principal};

/// What an operation was, as its receipt names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// F8: an option communication, or a credit granted to its first holder.
    Communication,
    /// F2.
    Cession,
    /// F3, whole (R-ANSWER): one group, or many by list.
    Acceptance,
    Refusal,
    /// F5: an F24's reservation, its use, its release.
    F24Reservation,
    F24Use,
    F24Release,
    /// F6 and its annulment.
    Split,
    SplitAnnulment,
    /// F7.
    Reduction,
    /// R-F24-CHOICE.
    F24Choice,
    /// Anything else recorded for the party (a delegation, an operator's action).
    Other,
}

/// What one row of the receipt did to one rata.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowKind {
    Communicated,
    Granted,
    Ceded,
    Accepted,
    Refused,
    Reserved,
    Used,
    Released,
    Split,
    SplitIssued,
    SplitAnnulled,
    Reduced,
    Expired,
    Seized,
    Corrected,
}

/// A party as the receipt names it; `name` is `None` where the viewer may not see it (the
/// cedente did not authorise showing it to the cessionario).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceiptParty {
    pub cf: String,
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceiptRow {
    pub kind: RowKind,
    /// The protocol of the communication the rata belongs to.
    pub protocol: String,
    pub codice_univoco: String,
    pub type_name: String,
    pub year: u16,
    pub codice_tributo: String,
    pub amount: Cents,
    /// Cedente, or the holder an amount left.
    pub from: Option<ReceiptParty>,
    /// Cessionario, or the holder an amount reached.
    pub to: Option<ReceiptParty>,
}

/// Everything a printed receipt shows, in the register's terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OperationReceipt {
    /// The protocol of the operation: its id, as every receipt of the API returns it.
    pub operation_id: i64,
    pub kind: OperationKind,
    /// When it was registered (the clock's time at the decision).
    pub at: DateTime<Utc>,
    pub acting_user: String,
    /// The party it was made for.
    pub party: Option<ReceiptParty>,
    /// The communication it created, for an option communication or a split.
    pub communication_protocol: Option<String>,
    pub rows: Vec<ReceiptRow>,
    /// The sum of the amounts the operation moved.
    pub total: Cents,
    /// The operation's entry in the log: position and hash (R-HISTORY).
    pub log_seq: i64,
    pub log_hash: String,
}

impl App {
    /// The receipt of operation `id`, asked for by `p` as `party`. An operation that does
    /// not concern the party is not found, as an unknown one.
    pub async fn operation_receipt(
        &self,
        p: &Principal,
        party: PartyId,
        id: i64,
    ) -> Result<OperationReceipt, AppError> {
        self.authorize_view(p, party).await?;
        let not_found = AppError::NotFound { what: "Operazione" };
        let record = match self.store.operation_record(id).await? {
            Some(r) if r.concerns(party) => r,
            _ => return Err(not_found),
        };
        Ok(self.receipt_of(&record, party, p.is_operator()))
    }

    /// The receipt of the operation that recorded movement `transfer` (a row of F4), on
    /// the same terms as [`App::operation_receipt`].
    pub async fn movement_receipt(
        &self,
        p: &Principal,
        party: PartyId,
        transfer: TransferId,
    ) -> Result<OperationReceipt, AppError> {
        self.authorize_view(p, party).await?;
        match self.store.transfer(transfer).await? {
            Some(t) => self.operation_receipt(p, party, t.operation).await,
            None => Err(AppError::NotFound { what: "Operazione" }),
        }
    }

    fn receipt_of(
        &self,
        record: &OperationRecord,
        viewer: PartyId,
        operator: bool,
    ) -> OperationReceipt {
        let named = |id: Option<PartyId>, shown: bool| {
            let party = record.party(id?)?;
            Some(ReceiptParty {
                cf: party.cf.as_str().to_string(),
                name: shown.then(|| party.name.clone()),
            })
        };
        let rows: Vec<ReceiptRow> = record
            .transfers
            .iter()
            .filter_map(|t| {
                let (kind, cession) = row_kind(t, record);
                let (credit, rata) = record.rata(t.rata)?;
                // R-HISTORY's visibility (SPEC §2): the cessionario sees the cedente's
                // name only if the cedente authorised it.
                let from = cession.party;
                let from_shown = operator || cession.disclose || from == Some(viewer);
                Some(ReceiptRow {
                    kind,
                    protocol: credit.protocol.clone(),
                    codice_univoco: rata.codice_univoco.clone(),
                    type_name: self
                        .catalogue
                        .get(&credit.type_key)
                        .map_or_else(|| credit.type_key.clone(), |t| t.name.clone()),
                    year: rata.year.get(),
                    codice_tributo: rata.codice_tributo.clone(),
                    amount: t.amount,
                    from: named(from, from_shown),
                    to: named(cession.counterparty, true),
                })
            })
            .collect();
        let entry = &record.entry;
        OperationReceipt {
            operation_id: entry.id,
            kind: operation_kind(&entry.kind, &rows),
            at: entry.at,
            acting_user: entry.acting_user.clone(),
            party: named(entry.on_behalf_of.or(entry.receipt.party), true),
            communication_protocol: entry.receipt.credit.as_ref().map(|c| c.protocol.clone()),
            total: entry.receipt.amount,
            rows,
            log_seq: entry.log_seq,
            log_hash: entry.log_hash.clone(),
        }
    }
}

/// An operation's or a movement's id as a path gives it: a positive whole number.
pub fn parse_receipt_id(field: &str, s: &str) -> Result<i64, AppError> {
    match s.trim().parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(AppError::invalid(
            field,
            format!(
                "'{}' non è un identificativo: indicare il numero (intero positivo) restituito con l'operazione",
                s.chars().take(40).collect::<String>()
            ),
        )),
    }
}

/// What a transfer did, and the transfer that says between whom: an answer is recorded
/// under the answering party, so its cedente and cessionario are the answered transfer's.
fn row_kind<'a>(t: &'a TransferRow, record: &'a OperationRecord) -> (RowKind, &'a TransferRow) {
    let answered = t.pending_id.and_then(|p| record.answered(p)).unwrap_or(t);
    let kind = match (t.kind, t.phase) {
        (TransferKind::Issue, Phase::Pending) => RowKind::Communicated,
        (TransferKind::Issue, Phase::Posted) if record.entry.kind == "split" => {
            RowKind::SplitIssued
        }
        (TransferKind::Issue, Phase::Posted) => RowKind::Granted,
        (TransferKind::Cession, Phase::Pending | Phase::Posted) => RowKind::Ceded,
        (TransferKind::Issue | TransferKind::Cession, Phase::PostPending) => RowKind::Accepted,
        (TransferKind::Issue | TransferKind::Cession, Phase::VoidPending) => RowKind::Refused,
        (TransferKind::Use, Phase::Pending) => RowKind::Reserved,
        (TransferKind::Use, Phase::Posted | Phase::PostPending) => RowKind::Used,
        (TransferKind::Use, Phase::VoidPending) => RowKind::Released,
        (TransferKind::Split, _) if record.entry.kind == "split" => RowKind::Split,
        (TransferKind::Split, _) => RowKind::SplitAnnulled,
        (TransferKind::Reduce, _) => RowKind::Reduced,
        (TransferKind::Expire, _) => RowKind::Expired,
        (TransferKind::Seize, _) => RowKind::Seized,
        (TransferKind::Correction, _) => RowKind::Corrected,
    };
    (kind, answered)
}

/// The operation's kind: by its command where that says it, else by what its rows did.
fn operation_kind(command: &str, rows: &[ReceiptRow]) -> OperationKind {
    match command {
        "issue_credit" => return OperationKind::Communication,
        "split" => return OperationKind::Split,
        "f24_choice" => return OperationKind::F24Choice,
        "transfer" => {}
        _ => return OperationKind::Other,
    }
    match rows.first().map(|r| r.kind) {
        Some(RowKind::Ceded) => OperationKind::Cession,
        Some(RowKind::Accepted) => OperationKind::Acceptance,
        Some(RowKind::Refused) => OperationKind::Refusal,
        Some(RowKind::Reserved) => OperationKind::F24Reservation,
        Some(RowKind::Used) => OperationKind::F24Use,
        Some(RowKind::Released) => OperationKind::F24Release,
        Some(RowKind::SplitAnnulled) => OperationKind::SplitAnnulment,
        Some(RowKind::Reduced) => OperationKind::Reduction,
        Some(RowKind::Communicated | RowKind::Granted) => OperationKind::Communication,
        _ => OperationKind::Other,
    }
}

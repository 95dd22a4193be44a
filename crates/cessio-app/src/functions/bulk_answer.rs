//! F3 for a back office: accept or refuse a list of communications and cessions named by
//! their protocol or by a rata's codice univoco (as F4 finds them), each row with its own
//! outcome. The rows that can be answered are answered together, in one operation: whole
//! or not at all (R-ANSWER), a retry with the same key applies nothing twice. A row that
//! names nothing awaiting the party's answer, or what is suspended (R-SUSP) or not yet
//! answerable (R-WAIT5), is refused on its own with the rule, and the others go ahead.
//!
//! One request answers at most `Operation::MAX_MOVEMENTS` movements, the store's bound on
//! one operation: a larger list is refused whole, to be sent in parts.

use std::collections::HashMap;

use cessio_core::ledger::PartyId;
use cessio_core::money::Cents;
use cessio_store::{Operation, PartyEntry};
use serde::{Deserialize, Serialize};

use super::answer_receipt;
use super::origination::Pin;
use crate::{App, AppError, IncomingFilter, Principal, fingerprint};

/// What one row of a bulk answer did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BulkAnswerRow {
    /// 1-based position in the list.
    pub line: usize,
    pub code: String,
    /// Movements the row answered (a communication's protocol names all its rate).
    pub operations: usize,
    pub amount: Cents,
    /// Why the row was not answered; `None` when it was.
    pub error: Option<BulkAnswerError>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BulkAnswerError {
    /// The refusal's code: `not_awaiting` (nothing awaits the party's answer under it), or
    /// the rule's (`r_susp_suspended`, `answer_too_early`).
    pub code: String,
    pub rule: Option<String>,
    pub message: String,
}

impl From<AppError> for BulkAnswerError {
    fn from(e: AppError) -> Self {
        BulkAnswerError {
            code: e.code().to_string(),
            rule: e.rule().map(str::to_string),
            message: e.to_string(),
        }
    }
}

/// The outcome of a bulk answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BulkAnswerReport {
    /// The operation that answered the rows; `None` when no row could be answered.
    pub operation_id: Option<i64>,
    pub accepted: bool,
    /// Movements answered, and their amount.
    pub operations: usize,
    pub amount: Cents,
    /// The same key was answered before: the totals are that answer's, and its rows were
    /// in its response (they are no longer awaiting, so they are not listed again).
    pub replayed: bool,
    pub rows: Vec<BulkAnswerRow>,
}

/// Most rows a bulk answer takes.
pub const BULK_ANSWER_MAX_ROWS: usize = Operation::MAX_MOVEMENTS;

impl App {
    /// F3 by a list of protocols or codici univoci (R-ANSWER, R-SUSP, R-WAIT5 per row).
    pub async fn answer_codes(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        party: PartyId,
        codes: &[String],
        accept: bool,
    ) -> Result<BulkAnswerReport, AppError> {
        self.answer_codes_as(p, key, Pin::Check(pin), party, codes, accept)
            .await
    }

    /// [`App::answer_codes`], or a part of a bulk job's list on the strength of the PIN the
    /// job's submission checked.
    pub(crate) async fn answer_codes_as(
        &self,
        p: &Principal,
        key: &str,
        pin: Pin<'_>,
        party: PartyId,
        codes: &[String],
        accept: bool,
    ) -> Result<BulkAnswerReport, AppError> {
        self.authorize_act(p, party).await?;
        let codes = normalized(codes)?;
        let fp = fingerprint("answer_codes", Some(party), &(&codes, accept));
        if let Some(r) = self.replay(p, key, &fp).await? {
            let receipt = answer_receipt(&r, accept);
            return Ok(BulkAnswerReport {
                operation_id: Some(receipt.operation_id),
                accepted: accept,
                operations: receipt.operations,
                amount: receipt.amount,
                replayed: true,
                rows: Vec::new(),
            });
        }
        if let Pin::Check(pin) = pin {
            self.check_pin(p, pin).await?;
        }
        let (rows, chosen) = self.select_codes(party, &codes).await?;
        let chosen: Vec<&PartyEntry> = chosen.iter().collect();
        if chosen.is_empty() {
            return Ok(BulkAnswerReport {
                operation_id: None,
                accepted: accept,
                operations: 0,
                amount: Cents::ZERO,
                replayed: false,
                rows,
            });
        }
        if chosen.len() > Operation::MAX_MOVEMENTS {
            return Err(AppError::invalid(
                "codes",
                format!(
                    "una risposta comprende al massimo {} operazioni ({} indicate): inviare l'elenco in più parti",
                    Operation::MAX_MOVEMENTS,
                    chosen.len()
                ),
            ));
        }
        let receipt = self
            .answer_entries(p, key, party, &chosen, accept, fp)
            .await?;
        Ok(BulkAnswerReport {
            operation_id: Some(receipt.operation_id),
            accepted: accept,
            operations: receipt.operations,
            amount: receipt.amount,
            replayed: receipt.replayed,
            rows,
        })
    }

    /// What a bulk answer of `codes` would answer, row by row, without answering: the
    /// confirmation a page shows before the PIN.
    pub async fn preview_answer_codes(
        &self,
        p: &Principal,
        party: PartyId,
        codes: &[String],
    ) -> Result<BulkAnswerReport, AppError> {
        self.authorize_act(p, party).await?;
        let codes = normalized(codes)?;
        let (rows, chosen) = self.select_codes(party, &codes).await?;
        Ok(BulkAnswerReport {
            operation_id: None,
            accepted: false,
            operations: chosen.len(),
            amount: Cents::checked_sum(chosen.iter().map(|e| e.amount)).unwrap_or(Cents::MAX),
            replayed: false,
            rows,
        })
    }

    /// Each row's outcome, and the movements the answerable rows name (each once).
    async fn select_codes(
        &self,
        party: PartyId,
        codes: &[String],
    ) -> Result<(Vec<BulkAnswerRow>, Vec<PartyEntry>), AppError> {
        let filter = IncomingFilter::default();
        let entries = self.awaiting(party, &filter).await?;
        let awaiting = self.incoming_entries(&entries, party, &filter);
        let mut by_code: HashMap<&str, Vec<&PartyEntry>> = HashMap::new();
        for e in &awaiting {
            by_code.entry(e.protocol.as_str()).or_default().push(e);
            by_code
                .entry(e.codice_univoco.as_str())
                .or_default()
                .push(e);
        }
        let suspended = {
            let transfers: Vec<_> = awaiting.iter().map(|e| e.transfer).collect();
            self.suspended_until(&transfers).await?
        };
        let today = self.today();
        let mut chosen: Vec<&PartyEntry> = Vec::new();
        let mut taken = std::collections::HashSet::new();
        let mut rows = Vec::with_capacity(codes.len());
        for (i, code) in codes.iter().enumerate() {
            let found = by_code.get(code.as_str()).map_or(&[][..], Vec::as_slice);
            let refusal = if found.is_empty() {
                Some(BulkAnswerError {
                    code: "not_awaiting".into(),
                    rule: None,
                    message: format!(
                        "«{code}» non indica una comunicazione o una cessione in attesa della risposta di questo soggetto"
                    ),
                })
            } else if let Some(until) = found
                .iter()
                .filter_map(|e| suspended.get(&e.transfer))
                .max()
            {
                Some(App::r_susp_answer(*until).into())
            } else {
                found
                    .iter()
                    .filter_map(|e| self.earliest_answer(e))
                    .filter(|d| *d > today)
                    .max()
                    .map(|d| AppError::r_wait5(d).into())
            };
            let mut row = BulkAnswerRow {
                line: i + 1,
                code: code.clone(),
                operations: 0,
                amount: Cents::ZERO,
                error: refusal,
            };
            if row.error.is_none() {
                // A movement named twice (its protocol and its code, or a repeated row) is
                // answered once, on the first row that names it.
                for e in found.iter().filter(|e| taken.insert(e.transfer)) {
                    row.operations += 1;
                    row.amount = row.amount.checked_add(e.amount).unwrap_or(Cents::MAX);
                    chosen.push(e);
                }
            }
            rows.push(row);
        }
        Ok((rows, chosen.into_iter().cloned().collect()))
    }
}

/// The codes as the register writes them, between 1 and `BULK_ANSWER_MAX_ROWS`.
fn normalized(codes: &[String]) -> Result<Vec<String>, AppError> {
    if codes.is_empty() || codes.len() > BULK_ANSWER_MAX_ROWS {
        return Err(AppError::invalid(
            "codes",
            format!("da 1 a {BULK_ANSWER_MAX_ROWS} protocolli o codici univoci"),
        ));
    }
    Ok(codes.iter().map(|c| c.trim().to_uppercase()).collect())
}

//! F3 Accettazione: what a party received and must answer, and its answer (R-ANSWER).
//!
//! F3 counts what it selects (`Store::count_entries`) before reading it, so a bank with
//! tens of thousands awaiting an answer is told to narrow its selection (R-1000) without
//! them all being read.

use std::collections::BTreeMap;

use cessio_core::ledger::{PartyId, TransferId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::rules;
use cessio_core::time::rome_date;
use cessio_store::{Command, EntryQuery, EntryRole, PartyEntry, StoreError, TransferRequest};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::party_ref;
use crate::{App, AppError, PartyRef, Principal, fingerprint};

/// F3 filters (R-1000).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncomingFilter {
    #[serde(default)]
    pub type_key: Option<String>,
    #[serde(default)]
    pub year: Option<u16>,
    #[serde(default)]
    pub cedente_cf: Option<String>,
}

/// F3: a group of received operations, answered whole (R-ANSWER).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IncomingGroup {
    pub type_key: String,
    pub type_name: String,
    pub year: u16,
    pub cedente: PartyRef,
    pub operations: usize,
    pub amount: Cents,
    /// R-WAIT5: the first day the whole group may be answered, when that is in the future.
    pub answerable_from: Option<NaiveDate>,
    /// R-SUSP: operations of the group suspended today, and the last day of the latest
    /// suspension; the group cannot be answered while any is suspended.
    #[serde(default)]
    pub suspended: usize,
    #[serde(default)]
    pub suspended_until: Option<NaiveDate>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AnswerReceipt {
    pub operation_id: i64,
    pub accepted: bool,
    pub operations: usize,
    pub amount: Cents,
    pub replayed: bool,
}

fn is_awaiting_answer(e: &PartyEntry) -> bool {
    e.pending && e.answer.is_none()
}

impl App {
    /// What the party must still answer, selected in the store by type, year and cedente.
    pub(super) async fn awaiting(
        &self,
        party: PartyId,
        filter: &IncomingFilter,
    ) -> Result<Vec<PartyEntry>, AppError> {
        Ok(match self.awaiting_query(party, filter).await? {
            Some(query) => self.store.find_entries(&query).await?,
            None => Vec::new(),
        })
    }

    /// What F3 selects in the store; `None` when the filter names a cedente no party is.
    async fn awaiting_query(
        &self,
        party: PartyId,
        filter: &IncomingFilter,
    ) -> Result<Option<EntryQuery>, AppError> {
        let cedente = match filter.cedente_cf.as_deref().map(str::trim) {
            Some(cf) if !cf.is_empty() => match self.party_by_cf(cf).await {
                Ok(p) => Some(p.id),
                Err(AppError::CfUnknown { .. }) => return Ok(None),
                Err(e) => return Err(e),
            },
            _ => None,
        };
        Ok(Some(EntryQuery {
            role: EntryRole::Received,
            awaiting_answer: true,
            cessions_only: true,
            counterparty: cedente,
            type_key: filter.type_key.clone(),
            year: filter.year,
            ..EntryQuery::of(party)
        }))
    }

    /// The entries that `awaiting` selected, checked once more in memory: the store's
    /// selection is an optimisation, this is the rule.
    pub(super) fn incoming_entries<'e>(
        &self,
        entries: &'e [PartyEntry],
        party: PartyId,
        filter: &IncomingFilter,
    ) -> Vec<&'e PartyEntry> {
        entries
            .iter()
            .filter(|e| {
                e.counterparty == Some(party)
                    && is_awaiting_answer(e)
                    && matches!(e.kind, TransferKind::Issue | TransferKind::Cession)
                    && filter.type_key.as_ref().is_none_or(|t| *t == e.type_key)
                    && filter.year.is_none_or(|y| y == e.year.get())
            })
            .collect()
    }

    pub(super) fn earliest_answer(&self, e: &PartyEntry) -> Option<NaiveDate> {
        rules::wait5_applies(e.kind == TransferKind::Issue, e.tracciabile)
            .then(|| rules::wait5_earliest_answer(rome_date(e.at)))
    }

    /// F3: what the party received and must answer, grouped by type, year and cedente.
    pub async fn incoming(
        &self,
        p: &Principal,
        party: PartyId,
        filter: &IncomingFilter,
    ) -> Result<Vec<IncomingGroup>, AppError> {
        self.authorize_view(p, party).await?;
        let Some(query) = self.awaiting_query(party, filter).await? else {
            return Ok(Vec::new());
        };
        // R-1000 from the database's count: a bank with 100,000 pending is told how many
        // without all of them being read first. The store applies F3's whole filter, so
        // the count is the list's.
        let found = self.store.count_entries(&query, usize::MAX).await?;
        if found > rules::ACCEPTANCE_LIST_LIMIT {
            return Err(AppError::FiltersRequired {
                limit: rules::ACCEPTANCE_LIST_LIMIT,
                found,
            });
        }
        let entries = self.store.find_entries(&query).await?;
        let matching = self.incoming_entries(&entries, party, filter);
        // More may have arrived between the count and the read.
        if matching.len() > rules::ACCEPTANCE_LIST_LIMIT {
            return Err(AppError::FiltersRequired {
                limit: rules::ACCEPTANCE_LIST_LIMIT,
                found: matching.len(),
            });
        }
        let parties = self.party_map(&entries).await?;
        let today = self.today();
        let transfers: Vec<TransferId> = matching.iter().map(|e| e.transfer).collect();
        let suspended = self.suspended_until(&transfers).await?;
        let mut groups: BTreeMap<(String, u16, String), IncomingGroup> = BTreeMap::new();
        for e in matching {
            let cedente = party_ref(&parties, e.party, e.disclose);
            let g = groups
                .entry((e.type_key.clone(), e.year.get(), cedente.cf.clone()))
                .or_insert_with(|| IncomingGroup {
                    type_key: e.type_key.clone(),
                    type_name: self.type_name(&e.type_key),
                    year: e.year.get(),
                    cedente: cedente.clone(),
                    operations: 0,
                    amount: Cents::ZERO,
                    answerable_from: None,
                    suspended: 0,
                    suspended_until: None,
                });
            if let Some(until) = suspended.get(&e.transfer) {
                g.suspended += 1;
                g.suspended_until = Some(g.suspended_until.map_or(*until, |x| x.max(*until)));
            }
            g.operations += 1;
            g.amount = g.amount.checked_add(e.amount).unwrap_or(Cents::MAX);
            if let Some(d) = self.earliest_answer(e).filter(|d| *d > today) {
                g.answerable_from = Some(g.answerable_from.map_or(d, |x| x.max(d)));
            }
        }
        Ok(groups.into_values().collect())
    }

    /// F3: accept or refuse a whole group, or everything the filter selects ("Accetta
    /// tutti" with no filter). Irreversible and whole (R-ANSWER).
    pub async fn answer(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        party: PartyId,
        selection: &IncomingFilter,
        accept: bool,
    ) -> Result<AnswerReceipt, AppError> {
        self.authorize_act(p, party).await?;
        let fp = fingerprint("answer", Some(party), &(selection, accept));
        if let Some(r) = self.replay(p, key, &fp).await? {
            return Ok(answer_receipt(&r, accept));
        }
        self.check_pin(p, pin).await?;
        let entries = self.awaiting(party, selection).await?;
        let matching = self.incoming_entries(&entries, party, selection);
        if matching.is_empty() {
            return Err(AppError::Conflict {
                reason: "non ci sono operazioni in attesa di risposta con questi criteri".into(),
            });
        }
        if matching.len() > cessio_store::Operation::MAX_MOVEMENTS {
            return Err(AppError::invalid(
                "filtri",
                format!(
                    "una risposta comprende al massimo {} operazioni ({} selezionate): rispondere per tipo, anno o cedente",
                    cessio_store::Operation::MAX_MOVEMENTS,
                    matching.len()
                ),
            ));
        }
        let today = self.today();
        let transfers: Vec<TransferId> = matching.iter().map(|e| e.transfer).collect();
        if let Some(until) = self.suspended_until(&transfers).await?.into_values().max() {
            return Err(App::r_susp_answer(until));
        }
        if let Some(latest) = matching
            .iter()
            .filter_map(|e| self.earliest_answer(e))
            .filter(|d| *d > today)
            .max()
        {
            return Err(AppError::r_wait5(latest));
        }
        self.answer_entries(p, key, party, &matching, accept, fp)
            .await
    }

    pub(crate) async fn answer_entries(
        &self,
        p: &Principal,
        key: &str,
        party: PartyId,
        entries: &[&PartyEntry],
        accept: bool,
        fp: String,
    ) -> Result<AnswerReceipt, AppError> {
        let moves: Vec<TransferRequest> = entries
            .iter()
            .map(|e| {
                if accept {
                    TransferRequest::Post {
                        pending: e.transfer,
                    }
                } else {
                    TransferRequest::Void {
                        pending: e.transfer,
                    }
                }
            })
            .collect();
        let amount = entries.iter().fold(Cents::ZERO, |a, e| {
            a.checked_add(e.amount).unwrap_or(Cents::MAX)
        });
        let receipt = self
            .submit(self.operation(p, key, Some(party), Command::Transfer(moves), fp)?)
            .await
            .map_err(|e| match e {
                AppError::Store(StoreError::Ledger(
                    cessio_core::ledger::LedgerError::PendingAlreadyResolved { .. },
                )) => AppError::Conflict {
                    reason: "una delle operazioni è stata nel frattempo accettata o rifiutata: ricaricare l'elenco".into(),
                },
                other => other,
            })?;
        // A retry racing its first request gets the first request's receipt from the
        // store (replayed): its amount is of the operations selected then.
        debug_assert!(receipt.replayed || receipt.amount == amount);
        Ok(answer_receipt(&receipt, accept))
    }
}

pub(crate) fn answer_receipt(r: &cessio_store::Receipt, accepted: bool) -> AnswerReceipt {
    AnswerReceipt {
        operation_id: r.operation_id,
        accepted,
        operations: r.transfers.len(),
        amount: r.amount,
        replayed: r.replayed,
    }
}

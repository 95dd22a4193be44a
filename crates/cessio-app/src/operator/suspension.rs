//! R-SUSP: the operator suspends a communication awaiting its answer, then releases or voids it.

use std::collections::HashMap;

use cessio_core::ledger::{PartyId, Phase, RataId, TransferId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::suspension::{SuspError, Suspension, SuspensionEnd};
use cessio_core::time::rome_date;
use cessio_store::engine::TransferRow;
use cessio_store::{
    Command, OperatorEvent, OperatorEventQuery, SUSPENSION_END_EVENT, SUSPENSION_EVENT,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{App, AppError, Principal, fingerprint};

fn susp_error(e: &SuspError) -> AppError {
    AppError::Rule {
        rule: e.rule(),
        code: e.code(),
        detail: e.to_string(),
    }
}

/// Where a suspended communication stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuspensionState {
    /// Suspended today: it cannot be answered.
    Suspended,
    /// Released by the operator, or its last day passed without a decision: it takes effect.
    Released,
    /// Voided: "non effettuata".
    Voided,
}

/// A suspension of one communication, as the operator and F3 see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Suspension")]
pub struct SuspensionView {
    pub transfer: TransferId,
    pub rata: RataId,
    pub kind: TransferKind,
    pub cedente_cf: String,
    pub cessionario_cf: String,
    pub amount: Cents,
    pub registered_at: DateTime<Utc>,
    pub from: NaiveDate,
    pub until: NaiveDate,
    pub reason: String,
    /// The risk rule that suspended it automatically, if one did.
    pub risk_rule: Option<String>,
    pub state: SuspensionState,
    pub ended_at: Option<DateTime<Utc>>,
}

/// The suspension entries of one transfer, folded into its state.
#[derive(Clone, Debug)]
struct SuspensionRecord {
    suspension: Suspension,
    reason: String,
    risk_rule: Option<String>,
    ended: Option<(SuspensionEnd, DateTime<Utc>)>,
}

impl SuspensionRecord {
    fn state(&self, today: NaiveDate) -> SuspensionState {
        match self.ended {
            Some((SuspensionEnd::Voided, _)) => SuspensionState::Voided,
            Some((SuspensionEnd::Released, _)) => SuspensionState::Released,
            None => match cessio_core::suspension::outcome_on(&self.suspension, today) {
                Some(_) => SuspensionState::Released,
                None => SuspensionState::Suspended,
            },
        }
    }
}

fn fold_suspensions(events: &[OperatorEvent]) -> HashMap<TransferId, SuspensionRecord> {
    let mut out: HashMap<TransferId, SuspensionRecord> = HashMap::new();
    for e in events {
        let Some(t) = e.transfer else { continue };
        match e.kind.as_str() {
            SUSPENSION_EVENT => {
                if let Some(suspension) = cessio_store::suspension_in(&e.data) {
                    out.insert(
                        t,
                        SuspensionRecord {
                            suspension,
                            reason: e.data["reason"].as_str().unwrap_or_default().to_string(),
                            risk_rule: e.data["risk_rule"].as_str().map(str::to_string),
                            ended: None,
                        },
                    );
                }
            }
            SUSPENSION_END_EVENT => {
                if let Some(r) = out.get_mut(&t) {
                    let end = if e.data["outcome"].as_str() == Some("voided") {
                        SuspensionEnd::Voided
                    } else {
                        SuspensionEnd::Released
                    };
                    r.ended = Some((end, e.at));
                }
            }
            _ => {}
        }
    }
    out
}

impl App {
    /// The pending communication a transfer id names, with whether it was answered.
    async fn communication(&self, transfer: TransferId) -> Result<(TransferRow, bool), AppError> {
        let row = self
            .store
            .transfer(transfer)
            .await?
            .filter(|r| {
                r.phase == Phase::Pending
                    && matches!(r.kind, TransferKind::Issue | TransferKind::Cession)
            })
            .ok_or(AppError::NotFound {
                what: "Comunicazione in attesa",
            })?;
        let answered = self
            .store
            .history(row.rata)
            .await?
            .iter()
            .any(|r| r.pending_id == Some(transfer));
        Ok((row, answered))
    }

    async fn suspension_records(
        &self,
        transfer: Option<TransferId>,
    ) -> Result<HashMap<TransferId, SuspensionRecord>, AppError> {
        let events = self
            .store
            .operator_events(&OperatorEventQuery {
                kinds: vec![SUSPENSION_EVENT.into(), SUSPENSION_END_EVENT.into()],
                transfer,
                ..OperatorEventQuery::default()
            })
            .await?;
        Ok(fold_suspensions(&events))
    }

    /// The transfers among `transfers` that are suspended today, with their last day.
    pub(crate) async fn suspended_until(
        &self,
        transfers: &[TransferId],
    ) -> Result<HashMap<TransferId, NaiveDate>, AppError> {
        if transfers.is_empty() {
            return Ok(HashMap::new());
        }
        let today = self.today_rome();
        let records = if transfers.len() == 1 {
            self.suspension_records(transfers.first().copied()).await?
        } else {
            self.suspension_records(None).await?
        };
        Ok(transfers
            .iter()
            .filter_map(|t| {
                records
                    .get(t)
                    .filter(|r| r.state(today) == SuspensionState::Suspended)
                    .map(|r| (*t, r.suspension.until))
            })
            .collect())
    }

    /// Every movement suspended today, with its last day (suspensions are few: the whole
    /// register's are read).
    pub(crate) async fn suspended_today(&self) -> Result<HashMap<TransferId, NaiveDate>, AppError> {
        let today = self.today_rome();
        Ok(self
            .suspension_records(None)
            .await?
            .into_iter()
            .filter(|(_, r)| r.state(today) == SuspensionState::Suspended)
            .map(|(t, r)| (t, r.suspension.until))
            .collect())
    }

    async fn suspension_view(
        &self,
        row: &TransferRow,
        record: &SuspensionRecord,
    ) -> Result<SuspensionView, AppError> {
        let parties: Vec<PartyId> = [row.party, row.counterparty]
            .into_iter()
            .flatten()
            .collect();
        let cfs = self.cf_of(&parties).await?;
        let cf = |p: Option<PartyId>| p.and_then(|p| cfs.get(&p).cloned()).unwrap_or_default();
        Ok(SuspensionView {
            transfer: row.id,
            rata: row.rata,
            kind: row.kind,
            cedente_cf: cf(row.party),
            cessionario_cf: cf(row.counterparty),
            amount: row.amount,
            registered_at: DateTime::from_timestamp_micros(row.at_micros).unwrap_or_default(),
            from: record.suspension.from,
            until: record.suspension.until,
            reason: record.reason.clone(),
            risk_rule: record.risk_rule.clone(),
            state: record.state(self.today_rome()),
            ended_at: record.ended.map(|(_, at)| at),
        })
    }

    /// R-SUSP: the operator suspends a communication still waiting for its answer, within
    /// 5 working days of its registration, for `days` days (at most 30).
    pub async fn suspend(
        &self,
        p: &Principal,
        transfer: TransferId,
        days: u32,
        reason: &str,
    ) -> Result<SuspensionView, AppError> {
        Self::require_operator(p)?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(AppError::invalid(
                "reason",
                "indicare il motivo della sospensione (al massimo 500 caratteri)",
            ));
        }
        self.suspend_transfer(p, transfer, days, reason, None).await
    }

    pub(crate) async fn suspend_transfer(
        &self,
        p: &Principal,
        transfer: TransferId,
        days: u32,
        reason: &str,
        risk_rule: Option<&str>,
    ) -> Result<SuspensionView, AppError> {
        let (row, answered) = self.communication(transfer).await?;
        if answered {
            return Err(AppError::Conflict {
                reason: "la comunicazione ha già avuto risposta: non può più essere sospesa".into(),
            });
        }
        if self
            .suspension_records(Some(transfer))
            .await?
            .contains_key(&transfer)
        {
            return Err(AppError::Conflict {
                reason: "la comunicazione è già stata sospesa: una sola sospensione per comunicazione (R-SUSP)".into(),
            });
        }
        let registered = DateTime::from_timestamp_micros(row.at_micros).unwrap_or_default();
        let suspension = cessio_core::suspension::suspend(
            rome_date(registered),
            self.today_rome(),
            days,
            &self.law,
        )
        .map_err(|e| susp_error(&e))?;
        let event = self.actor_event(
            p,
            SUSPENSION_EVENT,
            Some(transfer),
            row.party,
            row.counterparty,
            serde_json::json!({
                "from": suspension.from,
                "until": suspension.until,
                "reason": reason,
                "risk_rule": risk_rule,
            }),
        );
        // Through the writer, which decides R-SUSP again on the state it writes on: an
        // answer committed meanwhile refuses the suspension. One suspension per
        // communication, so the communication names the request.
        let fp = fingerprint("suspend", None, &transfer);
        let key = cessio_store::IdempotencyKey::parse(&format!("susp:{transfer}"))?;
        let receipt = self
            .submit(self.operation_with_key(
                p,
                key,
                None,
                Command::OperatorEvent { event, void: None },
                fp,
            )?)
            .await?;
        if receipt.replayed {
            return Err(AppError::Conflict {
                reason: "la comunicazione è già stata sospesa: una sola sospensione per comunicazione (R-SUSP)".into(),
            });
        }
        let record = SuspensionRecord {
            suspension,
            reason: reason.to_string(),
            risk_rule: risk_rule.map(str::to_string),
            ended: None,
        };
        self.suspension_view(&row, &record).await
    }

    /// R-SUSP: the operator ends a suspension: released (the communication takes effect
    /// and may be answered) or voided ("non effettuata": the pending transfer is voided and
    /// the amounts are back where they were). A void after the last day is refused.
    pub async fn end_suspension(
        &self,
        p: &Principal,
        key: &str,
        transfer: TransferId,
        end: SuspensionEnd,
    ) -> Result<SuspensionView, AppError> {
        Self::require_operator(p)?;
        let fp = fingerprint("end_suspension", None, &(transfer, end));
        let replayed = self.replay(p, key, &fp).await?.is_some();
        let row = self
            .store
            .transfer(transfer)
            .await?
            .ok_or(AppError::NotFound {
                what: "Comunicazione sospesa",
            })?;
        let records = self.suspension_records(Some(transfer)).await?;
        let record = records.get(&transfer).ok_or(AppError::NotFound {
            what: "Comunicazione sospesa",
        })?;
        if replayed || record.ended.is_some() {
            if replayed || record.ended.map(|(e, _)| e) == Some(end) {
                return self.suspension_view(&row, record).await;
            }
            return Err(AppError::Conflict {
                reason: "la sospensione è già stata chiusa dall'operatore".into(),
            });
        }
        let end =
            cessio_core::suspension::end_suspension(&record.suspension, end, self.today_rome())
                .map_err(|e| susp_error(&e))?;
        let event = self.actor_event(
            p,
            SUSPENSION_END_EVENT,
            Some(transfer),
            row.party,
            row.counterparty,
            serde_json::json!({
                "outcome": end,
                "reason": if end == SuspensionEnd::Voided { "non effettuata" } else { "rilasciata" },
            }),
        );
        let at = event.at;
        // One operation: the end recorded, and for "non effettuata" the communication
        // voided, decided by the writer on an open suspension (R-SUSP).
        let void = (end == SuspensionEnd::Voided).then_some(transfer);
        self.submit(self.operation(p, key, None, Command::OperatorEvent { event, void }, fp)?)
            .await?;
        let ended = SuspensionRecord {
            ended: Some((end, at)),
            ..record.clone()
        };
        self.suspension_view(&row, &ended).await
    }

    /// R-SUSP: every suspension, the open ones (suspended today) first when `open_only`.
    pub async fn suspensions(
        &self,
        p: &Principal,
        open_only: bool,
    ) -> Result<Vec<SuspensionView>, AppError> {
        Self::require_operator(p)?;
        let today = self.today_rome();
        let records = self.suspension_records(None).await?;
        let mut ids: Vec<&TransferId> = records.keys().collect();
        ids.sort_unstable();
        let mut out = Vec::new();
        for t in ids {
            let record = &records[t];
            if open_only && record.state(today) != SuspensionState::Suspended {
                continue;
            }
            if let Some(row) = self.store.transfer(*t).await? {
                out.push(self.suspension_view(&row, record).await?);
            }
        }
        Ok(out)
    }

    /// F3's refusal while a communication is suspended (R-SUSP).
    pub(crate) fn r_susp_answer(until: NaiveDate) -> AppError {
        AppError::Rule {
            rule: "R-SUSP",
            code: cessio_core::suspension::ANSWER_REFUSED,
            detail: cessio_core::suspension::answer_refused(until),
        }
    }
}

//! F9, the Agency's functions (operator only, each recorded under the operator's name):
//!
//! - **Registry**: the deceased flag of a party; the current-account clients of a bank that
//!   are not consumers (R-BANK-CLIENT reads them).
//! - **R-SUSP**: suspend a communication (a pending option communication or cession) within
//!   5 working days of its registration, for at most 30 days (`cessio_core::suspension`);
//!   then release it (it takes effect when answered) or void it ("non effettuata": the
//!   pending transfer is voided, so the amounts are where they were before it). While
//!   suspended it cannot be answered (F3); its amounts are pending, so neither side can use
//!   or cede them.
//! - **Risk rules** (`cessio_core::risk`) on every communication (F8 and F2), thresholds from
//!   [`crate::Settings`]; each hit is recorded with its code and Italian reason, listed for the
//!   operator, and suspends the communication when `risk_auto_suspend_days` is set.
//! - **R-SEIZE**: seize a holder's available amount of a rata (moved to the rata's `seized`
//!   account) and release it (moved back); the deadline extension is read by
//!   [`App::seizure_extension`].
//! - **Annulment on request**: an accepted cession whose amounts the cessionario has neither
//!   used nor ceded goes back to the cedente, with the request's reference recorded.
//!
//! Suspensions, risk hits, bank clients and annulments are entries of the operator's
//! append-only register (`Store::append_operator_event`); seizures and annulments move
//! amounts in the ledger, whose history is the record.

use std::collections::{HashMap, HashSet};

use cessio_core::chain::BankClient;
use cessio_core::ledger::{AccountKind, PartyId, Phase, RataId, TransferId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::risk::{RegistryStatus, RiskHit, RiskInput};
use cessio_core::suspension::{SuspError, Suspension, SuspensionEnd};
use cessio_core::time::rome_date;
use cessio_store::engine::TransferRow;
use cessio_store::{
    AccountRef, Command, EntryQuery, EntryRole, NewOperatorEvent, OperatorEvent,
    OperatorEventQuery, Party, TransferRequest,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::chain::{BANK_CLIENT_EVENT, BankClientEntry};
use crate::{App, AppError, Principal, fingerprint};

const SUSPEND_EVENT: &str = "suspension";
const SUSPENSION_END_EVENT: &str = "suspension_end";
const RISK_EVENT: &str = "risk_hit";
const ANNULMENT_EVENT: &str = "annulment";
const SEIZURE_EVENT: &str = "seizure";

fn it_date(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

fn susp_error(e: &SuspError) -> AppError {
    AppError::Rule {
        rule: e.rule(),
        code: e.code(),
        detail: e.to_string(),
    }
}

/// Where a suspended communication stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// One recorded risk hit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskHitView {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The communication: its first pending transfer.
    pub transfer: Option<TransferId>,
    pub cedente_cf: String,
    pub cessionario_cf: String,
    /// Stable code of the rule (`risk_cycle`, `risk_velocity`...).
    pub rule: String,
    pub reason: String,
    /// The communication was suspended because of it.
    pub suspended: bool,
}

/// Which risk hits the operator lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskHitFilter {
    /// Hits where this party is cedente or cessionario.
    #[serde(default)]
    pub party_cf: Option<String>,
    /// Hits recorded on or after this day.
    #[serde(default)]
    pub since: Option<NaiveDate>,
    /// Only this rule code.
    #[serde(default)]
    pub rule: Option<String>,
}

/// R-SEIZE: the state of a seizure after an operator's action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeizureView {
    pub rata: RataId,
    pub holder_cf: String,
    /// Amount under seizure now (zero once released).
    pub seized: Cents,
    /// Days by which ended seizures extend the usage deadline.
    pub extension_days: u32,
    pub operation_id: i64,
    pub replayed: bool,
}

/// Annulment on request: what went back to the cedente.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnulmentReceipt {
    pub operation_id: i64,
    /// The accepted cession that was annulled.
    pub transfer: TransferId,
    pub amount: Cents,
    pub reference: String,
    pub replayed: bool,
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
        let date = |k: &str| {
            e.data
                .get(k)
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse::<NaiveDate>().ok())
        };
        match e.kind.as_str() {
            SUSPEND_EVENT => {
                if let (Some(from), Some(until)) = (date("from"), date("until")) {
                    out.insert(
                        t,
                        SuspensionRecord {
                            suspension: Suspension { from, until },
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
    fn actor_event(
        &self,
        p: &Principal,
        kind: &str,
        transfer: Option<TransferId>,
        party: Option<PartyId>,
        counterparty: Option<PartyId>,
        data: serde_json::Value,
    ) -> NewOperatorEvent {
        NewOperatorEvent {
            kind: kind.to_string(),
            at: self.now(),
            actor: p.actor(),
            transfer,
            party,
            counterparty,
            data,
        }
    }

    async fn cf_of(&self, ids: &[PartyId]) -> Result<HashMap<PartyId, String>, AppError> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        Ok(self
            .store
            .parties(&ids)
            .await?
            .into_iter()
            .map(|p| (p.id, p.cf.as_str().to_string()))
            .collect())
    }

    // ----- registry -----

    /// F9: the operator records that a party is deceased (or corrects it).
    pub async fn set_deceased(
        &self,
        p: &Principal,
        cf: &str,
        deceased: bool,
    ) -> Result<Party, AppError> {
        Self::require_operator(p)?;
        let party = self.party_by_cf(cf).await?;
        self.store
            .set_deceased(party.id, deceased, &p.actor(), self.now())
            .await?;
        self.store
            .party(party.id)
            .await?
            .ok_or(AppError::NotFound { what: "Soggetto" })
    }

    /// R-BANK-CLIENT: the operator records a bank's current-account client and whether it
    /// is a consumer, a non-consumer or a cliente professionale (`no` ends the relation).
    pub async fn set_bank_client(
        &self,
        p: &Principal,
        bank_cf: &str,
        client_cf: &str,
        relation: BankClient,
    ) -> Result<BankClientEntry, AppError> {
        Self::require_operator(p)?;
        let bank = self.party_by_cf(bank_cf).await?;
        if bank.kind != cessio_store::PartyKind::Bank {
            return Err(AppError::invalid(
                "bank_cf",
                format!("{} non è registrato come banca", bank.cf),
            ));
        }
        let client = self.party_by_cf(client_cf).await?;
        if client.id == bank.id {
            return Err(AppError::invalid(
                "client_cf",
                "il correntista deve essere diverso dalla banca",
            ));
        }
        let event = self.actor_event(
            p,
            BANK_CLIENT_EVENT,
            None,
            Some(bank.id),
            Some(client.id),
            serde_json::json!({ "relation": relation }),
        );
        let at = event.at;
        self.store.append_operator_event(event).await?;
        Ok(BankClientEntry {
            bank_cf: bank.cf.as_str().to_string(),
            client_cf: client.cf.as_str().to_string(),
            relation,
            recorded_at: at,
        })
    }

    /// R-BANK-CLIENT: a bank's current relations (the last recorded per client, without
    /// ended ones).
    pub async fn bank_clients(
        &self,
        p: &Principal,
        bank_cf: &str,
    ) -> Result<Vec<BankClientEntry>, AppError> {
        Self::require_operator(p)?;
        let bank = self.party_by_cf(bank_cf).await?;
        let events = self
            .store
            .operator_events(&OperatorEventQuery {
                kinds: vec![BANK_CLIENT_EVENT.into()],
                party: Some(bank.id),
                ..OperatorEventQuery::default()
            })
            .await?;
        let mut last: HashMap<PartyId, (BankClient, DateTime<Utc>)> = HashMap::new();
        for e in events.iter().filter(|e| e.party == Some(bank.id)) {
            if let Some(client) = e.counterparty {
                let relation =
                    serde_json::from_value(e.data["relation"].clone()).unwrap_or(BankClient::No);
                last.insert(client, (relation, e.at));
            }
        }
        let ids: Vec<PartyId> = last.keys().copied().collect();
        let cfs = self.cf_of(&ids).await?;
        let mut out: Vec<BankClientEntry> = last
            .into_iter()
            .filter(|(_, (r, _))| *r != BankClient::No)
            .map(|(client, (relation, at))| BankClientEntry {
                bank_cf: bank.cf.as_str().to_string(),
                client_cf: cfs.get(&client).cloned().unwrap_or_default(),
                relation,
                recorded_at: at,
            })
            .collect();
        out.sort_by(|a, b| a.client_cf.cmp(&b.client_cf));
        Ok(out)
    }

    // ----- R-SUSP -----

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
                kinds: vec![SUSPEND_EVENT.into(), SUSPENSION_END_EVENT.into()],
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

    async fn suspend_transfer(
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
            SUSPEND_EVENT,
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
            code: "r_susp_suspended",
            detail: format!(
                "La comunicazione è sospesa per controlli (art. 122-bis DL 34/2020) fino al {}: potrà essere accettata o rifiutata solo dopo l'esito (R-SUSP)",
                it_date(until)
            ),
        }
    }

    // ----- risk rules -----

    /// Evaluates the risk rules on a communication from `cedente` to `cessionario` of
    /// `amount` of `rata` (or, for an option communication, `rata` = None), before it is
    /// submitted: the chain and the velocity are read as they are before it.
    pub(crate) async fn risk_of(
        &self,
        cedente: &Party,
        cessionario: &Party,
        amount: Cents,
        rata: Option<RataId>,
        cedente_history: &[Cents],
    ) -> Result<Vec<RiskHit>, AppError> {
        let status = |p: &Party| {
            if p.deceased {
                RegistryStatus::Deceased
            } else {
                RegistryStatus::Registered
            }
        };
        let (holders, previous) = match rata {
            Some(r) => {
                let ledger = self.rata_ledger(r).await?;
                (ledger.path_to(cedente.id), ledger.cession_instants.clone())
            }
            None => (Vec::new(), Vec::new()),
        };
        Ok(cessio_core::risk::evaluate(
            &RiskInput {
                cedente_cf: cedente.cf.as_str(),
                cedente: status(cedente),
                cessionario_cf: cessionario.cf.as_str(),
                cessionario: status(cessionario),
                cessionario_id: &cessionario.id,
                amount,
                cedente_history,
                holders: &holders,
                previous_cessions: &previous,
                now: self.now(),
            },
            &self.settings.risk,
        ))
    }

    /// The amounts of a party's earlier communications (the amount rule's history).
    pub(crate) async fn sent_amounts(&self, party: PartyId) -> Result<Vec<Cents>, AppError> {
        Ok(self
            .store
            .find_entries(&EntryQuery {
                role: EntryRole::Sent,
                cessions_only: true,
                ..EntryQuery::of(party)
            })
            .await?
            .iter()
            .filter(|e| e.party == Some(party))
            .map(|e| e.amount)
            .collect())
    }

    /// Records the hits of a communication just registered and, when configured,
    /// suspends it. The communication has already been acknowledged: a failure here is
    /// logged, never turned into a refusal of what was registered.
    pub(crate) async fn record_risk(
        &self,
        p: &Principal,
        transfer: TransferId,
        cedente: PartyId,
        cessionario: PartyId,
        hits: &[RiskHit],
    ) {
        if hits.is_empty() {
            return;
        }
        let suspend_days = self.settings.risk_auto_suspend_days;
        for hit in hits {
            let event = self.actor_event(
                p,
                RISK_EVENT,
                Some(transfer),
                Some(cedente),
                Some(cessionario),
                serde_json::json!({
                    "rule": hit.rule.code(),
                    "reason": hit.reason,
                    "suspended": suspend_days.is_some(),
                }),
            );
            if let Err(e) = self.store.append_operator_event(event).await {
                tracing::error!(error = %e, transfer, "risk hit not recorded");
            }
        }
        if let (Some(days), Some(first)) = (suspend_days, hits.first()) {
            let reason = format!("Sospensione automatica: {}", first.reason);
            if let Err(e) = self
                .suspend_transfer(p, transfer, days, &reason, Some(first.rule.code()))
                .await
            {
                tracing::error!(error = %e, transfer, "automatic suspension failed");
            }
        }
    }

    /// F9: the risk hits recorded, oldest first.
    pub async fn risk_hits(
        &self,
        p: &Principal,
        filter: &RiskHitFilter,
    ) -> Result<Vec<RiskHitView>, AppError> {
        Self::require_operator(p)?;
        let party = match filter.party_cf.as_deref().map(str::trim) {
            Some(cf) if !cf.is_empty() => Some(self.party_by_cf(cf).await?.id),
            _ => None,
        };
        let events = self
            .store
            .operator_events(&OperatorEventQuery {
                kinds: vec![RISK_EVENT.into()],
                party,
                since: filter.since.map(cessio_core::time::rome_start_of_day),
                ..OperatorEventQuery::default()
            })
            .await?;
        let ids: Vec<PartyId> = events
            .iter()
            .flat_map(|e| [e.party, e.counterparty])
            .flatten()
            .collect();
        let cfs = self.cf_of(&ids).await?;
        let cf = |p: Option<PartyId>| p.and_then(|p| cfs.get(&p).cloned()).unwrap_or_default();
        Ok(events
            .iter()
            .filter(|e| {
                filter
                    .rule
                    .as_deref()
                    .is_none_or(|r| e.data["rule"].as_str() == Some(r))
            })
            .map(|e| RiskHitView {
                id: e.id,
                at: e.at,
                transfer: e.transfer,
                cedente_cf: cf(e.party),
                cessionario_cf: cf(e.counterparty),
                rule: e.data["rule"].as_str().unwrap_or_default().to_string(),
                reason: e.data["reason"].as_str().unwrap_or_default().to_string(),
                suspended: e.data["suspended"].as_bool().unwrap_or(false),
            })
            .collect())
    }

    // ----- R-SEIZE -----

    /// Amount of `holder`'s holding of `rata` under seizure now: seized minus released.
    fn seized_amount(history: &[TransferRow], holder: PartyId) -> Cents {
        history
            .iter()
            .filter(|r| r.kind == TransferKind::Seize && r.phase == Phase::Posted)
            .fold(Cents::ZERO, |acc, r| {
                if r.party == Some(holder) && r.counterparty.is_none() {
                    acc.checked_add(r.amount).unwrap_or(Cents::MAX)
                } else if r.counterparty == Some(holder) && r.party.is_none() {
                    acc.checked_sub(r.amount).unwrap_or(Cents::ZERO)
                } else {
                    acc
                }
            })
    }

    async fn seizure_view(
        &self,
        holder: &Party,
        rata: RataId,
        receipt: &cessio_store::Receipt,
    ) -> Result<SeizureView, AppError> {
        let history = self.store.history(rata).await?;
        let state = self.seizure_extension(holder.id, rata).await?;
        Ok(SeizureView {
            rata,
            holder_cf: holder.cf.as_str().to_string(),
            seized: Self::seized_amount(&history, holder.id),
            extension_days: state.extension_days,
            operation_id: receipt.operation_id,
            replayed: receipt.replayed,
        })
    }

    /// R-SEIZE: the operator seizes the holder's available amount of a rata: it leaves the
    /// holder's availability until released.
    pub async fn seize(
        &self,
        p: &Principal,
        key: &str,
        holder_cf: &str,
        rata: RataId,
        reference: &str,
    ) -> Result<SeizureView, AppError> {
        Self::require_operator(p)?;
        let holder = self.party_by_cf(holder_cf).await?;
        let fp = fingerprint("seize", Some(holder.id), &(rata, reference));
        if let Some(r) = self.replay(p, key, &fp).await? {
            return self.seizure_view(&holder, rata, &r).await;
        }
        let reference = reference.trim();
        if reference.is_empty() || reference.chars().count() > 200 {
            return Err(AppError::invalid(
                "reference",
                "indicare il provvedimento di sequestro (al massimo 200 caratteri)",
            ));
        }
        let history = self.store.history(rata).await?;
        if Self::seized_amount(&history, holder.id).is_positive() {
            return Err(AppError::Conflict {
                reason: "il credito di questo soggetto è già sotto sequestro (R-SEIZE)".into(),
            });
        }
        let available = self
            .store
            .account(rata, AccountRef::Holder(holder.id))
            .await?
            .and_then(|a| a.balance.available())
            .unwrap_or(Cents::ZERO);
        if !available.is_positive() {
            return Err(AppError::Conflict {
                reason: "il soggetto non ha importi disponibili di questa rata da sequestrare"
                    .into(),
            });
        }
        let receipt = self
            .submit(self.operation(
                p,
                key,
                Some(holder.id),
                Command::Transfer(vec![TransferRequest::Move {
                    rata,
                    from: AccountRef::Holder(holder.id),
                    to: AccountRef::System(AccountKind::Seized),
                    amount: available,
                    kind: TransferKind::Seize,
                    pending: false,
                    disclose: false,
                }]),
                fp,
            )?)
            .await?;
        let event = self.actor_event(
            p,
            SEIZURE_EVENT,
            receipt.transfers.first().copied(),
            Some(holder.id),
            None,
            serde_json::json!({ "rata": rata, "reference": reference, "amount": available }),
        );
        if let Err(e) = self.store.append_operator_event(event).await {
            tracing::error!(error = %e, rata, "seizure reference not recorded");
        }
        self.seizure_view(&holder, rata, &receipt).await
    }

    /// R-SEIZE: the seizure ends: the amount is the holder's again, and the usage deadline
    /// moves later by the seizure's length ([`App::seizure_extension`]).
    pub async fn release_seizure(
        &self,
        p: &Principal,
        key: &str,
        holder_cf: &str,
        rata: RataId,
    ) -> Result<SeizureView, AppError> {
        Self::require_operator(p)?;
        let holder = self.party_by_cf(holder_cf).await?;
        let fp = fingerprint("release_seizure", Some(holder.id), &rata);
        if let Some(r) = self.replay(p, key, &fp).await? {
            return self.seizure_view(&holder, rata, &r).await;
        }
        let history = self.store.history(rata).await?;
        let seized = Self::seized_amount(&history, holder.id);
        if !seized.is_positive() {
            return Err(AppError::Conflict {
                reason: "non c'è un sequestro aperto su questa rata per questo soggetto".into(),
            });
        }
        let receipt = self
            .submit(self.operation(
                p,
                key,
                Some(holder.id),
                Command::Transfer(vec![TransferRequest::Move {
                    rata,
                    from: AccountRef::System(AccountKind::Seized),
                    to: AccountRef::Holder(holder.id),
                    amount: seized,
                    kind: TransferKind::Seize,
                    pending: false,
                    disclose: false,
                }]),
                fp,
            )?)
            .await?;
        self.seizure_view(&holder, rata, &receipt).await
    }

    // ----- annulment on request -----

    /// F9: the operator annuls an accepted cession on both parties' documented request. The
    /// cessionario must not have used, ceded or reserved anything of that rata since the
    /// acceptance; the amount returns to the cedente as after a refusal, and the request's
    /// reference is recorded.
    pub async fn annul_acceptance(
        &self,
        p: &Principal,
        key: &str,
        transfer: TransferId,
        reference: &str,
    ) -> Result<AnnulmentReceipt, AppError> {
        Self::require_operator(p)?;
        let reference = reference.trim().to_string();
        let fp = fingerprint("annul_acceptance", None, &(transfer, &reference));
        if let Some(r) = self.replay(p, key, &fp).await? {
            return Ok(AnnulmentReceipt {
                operation_id: r.operation_id,
                transfer,
                amount: r.amount,
                reference,
                replayed: true,
            });
        }
        if reference.is_empty() || reference.chars().count() > 200 {
            return Err(AppError::invalid(
                "reference",
                "indicare il riferimento della richiesta delle parti (al massimo 200 caratteri)",
            ));
        }
        let row = self
            .store
            .transfer(transfer)
            .await?
            .filter(|r| r.kind == TransferKind::Cession && r.phase == Phase::Pending)
            .ok_or(AppError::NotFound { what: "Cessione" })?;
        let (Some(cedente), Some(cessionario)) = (row.party, row.counterparty) else {
            return Err(AppError::NotFound { what: "Cessione" });
        };
        let history = self.store.history(row.rata).await?;
        let acceptance = history
            .iter()
            .find(|r| r.pending_id == Some(transfer))
            .filter(|r| r.phase == Phase::PostPending)
            .ok_or_else(|| AppError::Conflict {
                reason: "la cessione non è stata accettata: non c'è un'accettazione da annullare"
                    .into(),
            })?;
        let voided: std::collections::HashSet<TransferId> = history
            .iter()
            .filter(|r| r.phase == Phase::VoidPending)
            .filter_map(|r| r.pending_id)
            .collect();
        // Anything moved out of the cessionario's holding after the acceptance: an F24
        // use or reservation, a cession (pending or accepted), a split, a reduction, a
        // seizure, an earlier annulment.
        let moved_out = history.iter().any(|r| {
            r.id > acceptance.id
                && r.debit == row.credit
                && matches!(r.phase, Phase::Posted | Phase::Pending)
                && !voided.contains(&r.id)
        });
        if moved_out {
            return Err(AppError::Rule {
                rule: "F9-ANNUL",
                code: "annulment_not_allowed",
                detail: format!(
                    "Il cessionario ha già utilizzato, ceduto o prenotato importi di questa rata dopo l'accettazione del {}: l'accettazione non può essere annullata",
                    it_date(rome_date(
                        DateTime::from_timestamp_micros(acceptance.at_micros).unwrap_or_default()
                    ))
                ),
            });
        }
        let receipt = self
            .submit(self.operation(
                p,
                key,
                Some(cessionario),
                Command::Transfer(vec![TransferRequest::Move {
                    rata: row.rata,
                    from: AccountRef::Holder(cessionario),
                    to: AccountRef::Holder(cedente),
                    amount: row.amount,
                    kind: TransferKind::Correction,
                    pending: false,
                    disclose: false,
                }]),
                fp,
            )?)
            .await?;
        let event = self.actor_event(
            p,
            ANNULMENT_EVENT,
            Some(transfer),
            Some(cedente),
            Some(cessionario),
            serde_json::json!({
                "reference": reference,
                "correction": receipt.transfers.first(),
                "amount": row.amount,
            }),
        );
        if let Err(e) = self.store.append_operator_event(event).await {
            tracing::error!(error = %e, transfer, "annulment reference not recorded");
        }
        Ok(AnnulmentReceipt {
            operation_id: receipt.operation_id,
            transfer,
            amount: receipt.amount,
            reference,
            replayed: receipt.replayed,
        })
    }

    /// F9: the annulments on request recorded (transfer annulled, reference, when).
    pub async fn annulments(&self, p: &Principal) -> Result<Vec<OperatorEvent>, AppError> {
        Self::require_operator(p)?;
        Ok(self
            .store
            .operator_events(&OperatorEventQuery {
                kinds: vec![ANNULMENT_EVENT.into()],
                ..OperatorEventQuery::default()
            })
            .await?)
    }

    /// The cessions involving `party` whose acceptance the operator annulled on request
    /// (F4 shows them as such, not as accepted).
    pub(crate) async fn annulled_acceptances(
        &self,
        party: PartyId,
    ) -> Result<HashSet<TransferId>, AppError> {
        Ok(self
            .reads
            .operator_events(&OperatorEventQuery {
                kinds: vec![ANNULMENT_EVENT.into()],
                party: Some(party),
                ..OperatorEventQuery::default()
            })
            .await?
            .into_iter()
            .filter_map(|e| e.transfer)
            .collect())
    }
}

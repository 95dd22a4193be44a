//! The risk rules on every communication (F8, F2): evaluated, recorded, listed for the operator.

use std::collections::HashMap;

use cessio_core::ledger::{PartyId, RataId, TransferId};
use cessio_core::money::Cents;
use cessio_core::risk::{HistoryStats, RegistryStatus, RiskHit, RiskInput, RunningHistory};
use cessio_store::{OperatorEventQuery, Party};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{App, AppError, Principal};

const RISK_EVENT: &str = "risk_hit";

/// The cedenti's histories the amount rule compares with, read once per party and kept up
/// to date with what the same request registers: a file of thousands of communications of
/// one beneficiary reads its history once, not once a row (which made each row slower than
/// the one before). What others register meanwhile is not seen until the next request: a
/// risk signal, not a refusal, may lag by one file.
#[derive(Debug, Default)]
pub(crate) struct SentHistories(HashMap<PartyId, Vec<Cents>>);

impl SentHistories {
    /// Reads `party`'s history unless it is kept already: call before registering, so that
    /// what is registered next is not part of its own history.
    pub(crate) async fn load(&mut self, app: &App, party: PartyId) -> Result<(), AppError> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.0.entry(party) {
            slot.insert(app.sent_amounts(party).await?);
        }
        Ok(())
    }

    /// The history `load` read, with what was recorded since.
    pub(crate) fn of(&self, party: PartyId) -> &[Cents] {
        self.0.get(&party).map_or(&[], Vec::as_slice)
    }

    /// Adds what `party` has just sent.
    pub(crate) fn record(&mut self, party: PartyId, amounts: impl IntoIterator<Item = Cents>) {
        if let Some(h) = self.0.get_mut(&party) {
            h.extend(amounts);
        }
    }
}

/// The cedenti's histories kept between requests for a cession's amount rule: each as the
/// figures the rule needs, with the id of the last movement read. A request reads only
/// what the cedente sent after it, where it read the whole history each time (54,874
/// movements for the largest bank at scale 0.01, on every one of its cessions).
#[derive(Debug, Default)]
pub(crate) struct KeptHistories {
    parties: HashMap<PartyId, (TransferId, RunningHistory)>,
    /// The amounts the kept histories hold in all.
    amounts: usize,
}

/// Amounts kept in all (8 bytes each) before the kept histories are dropped and read
/// afresh: the memory stays bounded whatever the register's size.
const KEPT_AMOUNTS: usize = 4_000_000;

impl KeptHistories {
    fn take(&mut self, party: PartyId) -> Option<(TransferId, RunningHistory)> {
        let kept = self.parties.remove(&party)?;
        self.amounts -= kept.1.stats().len;
        Some(kept)
    }

    fn keep(&mut self, party: PartyId, mark: TransferId, history: RunningHistory) {
        // A request of the same cedente that finished meanwhile kept its own: replaced.
        self.take(party);
        let len = history.stats().len;
        if self.amounts + len > KEPT_AMOUNTS {
            self.parties.clear();
            self.amounts = 0;
        }
        if len <= KEPT_AMOUNTS {
            self.amounts += len;
            self.parties.insert(party, (mark, history));
        }
    }
}

/// One recorded risk hit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "RiskHit")]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

impl App {
    /// Evaluates the risk rules on a communication from `cedente` to `cessionario` of
    /// `amount` of `rata` (or, for an option communication, `rata` = None), before it is
    /// submitted: the chain and the velocity are read as they are before it.
    pub(crate) async fn risk_of(
        &self,
        cedente: &Party,
        cessionario: &Party,
        amount: Cents,
        rata: Option<RataId>,
        cedente_history: cessio_core::risk::HistoryStats,
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
            .sent_amounts(party, 0)
            .await?
            .into_iter()
            .map(|(_, amount)| amount)
            .collect())
    }

    /// F9's amount rule for one cedente: the figures of everything it has sent, from the
    /// kept history extended with what it sent since. Exact, because transfers are
    /// appended in id order and never change. Two requests of one cedente at once: the
    /// second finds nothing kept and reads the whole history, as before.
    pub(crate) async fn sent_stats(&self, party: PartyId) -> Result<HistoryStats, AppError> {
        let kept = self.sent_kept.lock().ok().and_then(|mut k| k.take(party));
        let (mut mark, mut history) = kept.unwrap_or_default();
        for (id, amount) in self.store.sent_amounts(party, mark).await? {
            history.push(amount);
            mark = mark.max(id);
        }
        let stats = history.stats();
        if let Ok(mut k) = self.sent_kept.lock() {
            k.keep(party, mark, history);
        }
        Ok(stats)
    }

    /// One hit, through the writer, so that a file's hits are committed with the batches
    /// that register its rows instead of each in a transaction of its own. One hit of a
    /// rule per communication: the key names both.
    async fn record_risk_hit(
        &self,
        p: &Principal,
        transfer: TransferId,
        hit: &RiskHit,
        event: cessio_store::NewOperatorEvent,
    ) -> Result<(), AppError> {
        let rule = hit.rule.code();
        let key = cessio_store::IdempotencyKey::parse(&format!("risk:{transfer}:{rule}"))?;
        let operation = self.operation_with_key(
            p,
            key,
            None,
            cessio_store::Command::OperatorEvent { event, void: None },
            crate::fingerprint("risk", None, &(transfer, rule)),
        )?;
        self.submit(operation).await?;
        Ok(())
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
            if let Err(e) = self.record_risk_hit(p, transfer, hit, event).await {
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
}

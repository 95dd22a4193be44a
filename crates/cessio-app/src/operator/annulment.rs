//! Annulment on request: an accepted cession goes back to the cedente, its reference recorded.

use std::collections::HashSet;

use cessio_core::ledger::{PartyId, Phase, TransferId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::time::rome_date;
use cessio_store::{AccountRef, OperatorEvent, OperatorEventQuery};
use chrono::DateTime;
use serde::{Deserialize, Serialize};

use super::{it_date, one_move};
use crate::{App, AppError, Principal, fingerprint};

const ANNULMENT_EVENT: &str = "annulment";

/// Annulment on request: what went back to the cedente.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AnnulmentReceipt {
    pub operation_id: i64,
    /// The accepted cession that was annulled.
    pub transfer: TransferId,
    pub amount: Cents,
    pub reference: String,
    pub replayed: bool,
}

impl App {
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
                one_move(
                    row.rata,
                    AccountRef::Holder(cessionario),
                    AccountRef::Holder(cedente),
                    row.amount,
                    TransferKind::Correction,
                ),
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
        let query = &OperatorEventQuery {
            kinds: vec![ANNULMENT_EVENT.into()],
            party: Some(party),
            ..OperatorEventQuery::default()
        };
        Ok(self
            .listing_read(party, |s| async move { s.operator_events(query).await })
            .await?
            .into_iter()
            .filter_map(|e| e.transfer)
            .collect())
    }
}

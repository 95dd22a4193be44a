//! R-SEIZE: the operator seizes a holder's available amount of a rata, and releases it.

use cessio_core::ledger::{AccountKind, PartyId, Phase, RataId, TransferKind};
use cessio_core::money::Cents;
use cessio_store::engine::TransferRow;
use cessio_store::{AccountRef, Party};
use serde::{Deserialize, Serialize};

use super::one_move;
use crate::{App, AppError, Principal, fingerprint};

const SEIZURE_EVENT: &str = "seizure";

/// R-SEIZE: the state of a seizure after an operator's action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Seizure")]
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

impl App {
    /// Amount of `holder`'s holding of `rata` under seizure now: seized minus released, as
    /// the writer counts it.
    fn seized_amount(history: &[TransferRow], holder: PartyId) -> Cents {
        let rows: Vec<cessio_store::engine::SeizureRow> = history
            .iter()
            .filter(|r| r.kind == TransferKind::Seize && r.phase == Phase::Posted)
            .map(|r| (r.party, r.counterparty, r.amount))
            .collect();
        cessio_store::engine::seized_from(&rows, holder)
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
                one_move(
                    rata,
                    AccountRef::Holder(holder.id),
                    AccountRef::System(AccountKind::Seized),
                    available,
                    TransferKind::Seize,
                ),
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
                one_move(
                    rata,
                    AccountRef::System(AccountKind::Seized),
                    AccountRef::Holder(holder.id),
                    seized,
                    TransferKind::Seize,
                ),
                fp,
            )?)
            .await?;
        self.seizure_view(&holder, rata, &receipt).await
    }
}

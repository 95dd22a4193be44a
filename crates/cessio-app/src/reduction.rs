//! F7 Riduzione del credito (art. 25 DL 104/2023): the holder declares that an amount of a
//! rata has become unusable (other than by expiry), with the date it learned of it.
//!
//! The rule is core's (`cessio_core::reduction::check_reduction`: at most 30 days from the
//! knowledge, not in the future, whole within the residual); this module turns an accepted
//! declaration into one posted transfer holder → the rata's reduced account. Irreversible:
//! nothing moves credit out of a reduced account.

use cessio_core::ledger::{AccountKind, PartyId, RataId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::reduction::{ReductionError, check_reduction};
use cessio_store::{AccountRef, Command, HoldingQuery, TransferRequest};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::f24::law;
use crate::{App, AppError, Principal, fingerprint};

/// A refusal of F7, naming the rule.
fn reduction_error(e: &ReductionError) -> AppError {
    AppError::Rule {
        rule: e.rule(),
        code: e.code(),
        detail: e.to_string(),
    }
}

/// F7 done: `amount` of `rata` left the holder's availability for good.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReductionReceipt {
    pub operation_id: i64,
    pub at: DateTime<Utc>,
    pub rata: RataId,
    pub amount: Cents,
    pub known_on: NaiveDate,
    pub replayed: bool,
}

impl App {
    /// F7: declares `amount` of the party's holding of `rata` unusable, the holder having
    /// learned of it on `known_on`. Whole or nothing; needs the PIN unless signed in with
    /// SPID.
    #[expect(
        clippy::too_many_arguments,
        reason = "the request's fields, as the other use cases take them"
    )]
    pub async fn reduce(
        &self,
        p: &Principal,
        key: &str,
        pin: Option<&str>,
        party: PartyId,
        rata: RataId,
        amount: Cents,
        known_on: NaiveDate,
    ) -> Result<ReductionReceipt, AppError> {
        self.authorize_act(p, party).await?;
        let fp = fingerprint("reduce", Some(party), &(rata, amount, known_on));
        let receipt_of = |r: cessio_store::Receipt| ReductionReceipt {
            operation_id: r.operation_id,
            at: r.at,
            rata,
            amount: r.amount,
            known_on,
            replayed: r.replayed,
        };
        if let Some(r) = self.replay(p, key, &fp).await? {
            return Ok(receipt_of(r));
        }
        self.check_pin(p, pin).await?;
        let residual = self
            .store
            .holding_infos(&HoldingQuery::of_rata(party, rata))
            .await?
            .into_iter()
            .find(|h| h.rata.id == rata)
            .ok_or(AppError::NotFound { what: "Rata" })?
            .account
            .balance
            .available()
            .unwrap_or(Cents::ZERO);
        check_reduction(amount, residual, known_on, self.today(), law()?)
            .map_err(|e| reduction_error(&e))?;
        let moves = vec![TransferRequest::Move {
            rata,
            from: AccountRef::Holder(party),
            to: AccountRef::System(AccountKind::Reduced),
            amount,
            kind: TransferKind::Reduce,
            pending: false,
            disclose: false,
            path: None,
        }];
        let receipt = self
            .submit(self.operation(p, key, Some(party), Command::Transfer(moves), fp)?)
            .await
            .map_err(|e| {
                e.when_taken_meanwhile(|requested, available| {
                    reduction_error(&ReductionError::OverResidual {
                        requested,
                        residual: available,
                    })
                })
            })?;
        Ok(receipt_of(receipt))
    }
}

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

use std::collections::HashMap;

use cessio_core::ledger::{PartyId, RataId, TransferId, TransferKind};
use cessio_core::money::Cents;
use cessio_store::{AccountRef, Command, NewOperatorEvent, TransferRequest};
use chrono::NaiveDate;

use crate::{App, AppError, Principal};

mod annulment;
mod registry;
pub(crate) mod risk;
mod seizure;
mod suspension;

pub use annulment::*;
pub use risk::*;
pub use seizure::*;
pub use suspension::*;

fn it_date(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

/// An operator's decision moves one amount at once: it takes effect on the spot (nothing to
/// answer) and shows no name to the other side.
fn one_move(
    rata: RataId,
    from: AccountRef,
    to: AccountRef,
    amount: Cents,
    kind: TransferKind,
) -> Command {
    Command::Transfer(vec![TransferRequest::Move {
        rata,
        from,
        to,
        amount,
        kind,
        pending: false,
        disclose: false,
        path: None,
    }])
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

    pub(crate) async fn cf_of(
        &self,
        ids: &[PartyId],
    ) -> Result<HashMap<PartyId, String>, AppError> {
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
}

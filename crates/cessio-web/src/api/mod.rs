//! The JSON API under `/api/v1`, grouped by function, and what its handlers share.

use cessio_app::{AppError, Principal};
use cessio_core::ledger::PartyId;
use cessio_store::PartyKind;
use serde::{Deserialize, Serialize};

use crate::{ApiError, WebState};

pub(crate) mod acceptance;
pub(crate) mod cession;
pub(crate) mod credits;
pub(crate) mod delegations;
pub(crate) mod monitoring;
pub(crate) mod movements;
pub(crate) mod operator;
pub(crate) mod origination;
pub(crate) mod registry;
pub(crate) mod rent;
pub(crate) mod session;

type ApiResult<T> = Result<T, ApiError>;

#[derive(Serialize)]
struct PartyView {
    id: PartyId,
    cf: String,
    name: String,
    kind: PartyKind,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct PinBody {
    #[serde(default)]
    pin: Option<String>,
}

/// Resolves the party in the path. For users, an unregistered code is answered exactly like
/// a party they may not see (the app's own authorisation refusal), so codes cannot be
/// probed; the app function then checks the user's rights, once.
async fn party_in_path(state: &WebState, p: &Principal, cf: &str) -> ApiResult<PartyId> {
    match state.app.party_by_cf(cf).await {
        Ok(party) => Ok(party.id),
        Err(AppError::CfUnknown { .. }) if !p.is_operator() => {
            Err(ApiError(AppError::not_your_party()))
        }
        Err(e) => Err(e.into()),
    }
}

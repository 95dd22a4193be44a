//! The JSON API under `/api/v1`, grouped by function, and what its handlers share.

use cessio_app::{AppError, Principal};
use cessio_core::ledger::PartyId;
use cessio_store::PartyKind;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, Auth, WebState};

pub(crate) mod acceptance;
pub(crate) mod cession;
pub(crate) mod credits;
pub(crate) mod delegations;
pub(crate) mod events;
pub(crate) mod jobs;
pub(crate) mod monitoring;
pub(crate) mod movements;
pub(crate) mod operator;
pub(crate) mod origination;
pub(crate) mod receipts;
pub(crate) mod registry;
pub(crate) mod rent;
pub(crate) mod session;
pub(crate) mod webhooks;

type ApiResult<T> = Result<T, ApiError>;

#[derive(Serialize, JsonSchema)]
/// A party the user may act for.
#[schemars(rename = "PartySummary")]
pub(crate) struct PartyView {
    id: PartyId,
    cf: String,
    name: String,
    kind: PartyKind,
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PinRequest")]
pub(crate) struct PinBody {
    #[serde(default)]
    pin: Option<String>,
}

/// The authenticated user and the party the path's `{cf}` names, resolved as
/// [`party_in_path`] does: a handler that takes it cannot skip either.
pub(crate) struct AuthParty(pub Principal, pub PartyId);

impl FromRequestParts<WebState> for AuthParty {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        let Auth(p) = Auth::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Path(cf) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let party = party_in_path(state, &p, &cf)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(AuthParty(p, party))
    }
}

/// Resolves the party in the path. For users, an unregistered code is answered exactly like
/// a party they may not see (the app's own authorisation refusal), so codes cannot be
/// probed; the app function then checks the user's rights, once.
pub(crate) async fn party_in_path(state: &WebState, p: &Principal, cf: &str) -> ApiResult<PartyId> {
    match state.app.party_by_cf(cf).await {
        Ok(party) => Ok(party.id),
        Err(AppError::CfUnknown { .. }) if !p.is_operator() => {
            Err(ApiError(AppError::not_your_party()))
        }
        Err(e) => Err(e.into()),
    }
}

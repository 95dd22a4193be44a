//! Delegations over HTTP (§2): by the operator, by the titolare, held by an intermediary.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use cessio_store::DelegationScope;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiResult, AuthParty, PartyView};
use crate::paging::{NoFilter, PagedQuery};
use crate::{ApiJson, Auth, IdempotencyKey, WebState};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Delegation")]
pub(crate) struct DelegationBody {
    username: String,
    party_cf: String,
    /// Disposizione unless given, as before delegations had a scope.
    #[serde(default)]
    scope: Option<DelegationScope>,
    /// The last day it holds, included; absent: until revoked.
    #[serde(default)]
    until: Option<chrono::NaiveDate>,
}

pub(crate) async fn delegate(
    State(state): State<WebState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<DelegationBody>,
) -> ApiResult<StatusCode> {
    let scope = b.scope.unwrap_or(DelegationScope::Disposizione);
    state
        .app
        .delegate_with(&p, &b.username, &b.party_cf, scope, b.until)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The titolare's grant: the intermediary's username, the scope and the last day (none:
/// until revoked), with the PIN.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "GrantDelegationRequest")]
pub(crate) struct GrantBody {
    /// The intermediary's username.
    username: String,
    scope: DelegationScope,
    /// The last day it holds, included (Rome time); absent: until revoked.
    #[serde(default)]
    until: Option<chrono::NaiveDate>,
    #[serde(default)]
    pin: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RevokeDelegationRequest")]
pub(crate) struct RevokeBody {
    username: String,
    #[serde(default)]
    pin: Option<String>,
}

pub(crate) async fn party_delegations(
    State(state): State<WebState>,
    AuthParty(p, party): AuthParty,
    query: PagedQuery<NoFilter>,
) -> ApiResult<Response> {
    let page = state
        .app
        .delegations_granted_page(&p, party, &query.page)
        .await?;
    Ok(query.respond(page))
}

pub(crate) async fn grant_delegation(
    State(state): State<WebState>,
    IdempotencyKey(key): IdempotencyKey,
    AuthParty(p, party): AuthParty,
    ApiJson(b): ApiJson<GrantBody>,
) -> ApiResult<(StatusCode, Json<cessio_app::DelegationReceipt>)> {
    let receipt = state
        .app
        .grant_delegation(
            &p,
            &key,
            b.pin.as_deref(),
            party,
            &b.username,
            b.scope,
            b.until,
        )
        .await?;
    state.metrics.operation("grant_delegation");
    Ok((StatusCode::CREATED, Json(receipt)))
}

pub(crate) async fn revoke_party_delegation(
    State(state): State<WebState>,
    IdempotencyKey(key): IdempotencyKey,
    AuthParty(p, party): AuthParty,
    ApiJson(b): ApiJson<RevokeBody>,
) -> ApiResult<Json<cessio_app::DelegationReceipt>> {
    let receipt = state
        .app
        .revoke_delegation_by_titolare(&p, &key, b.pin.as_deref(), party, &b.username)
        .await?;
    state.metrics.operation("revoke_delegation");
    Ok(Json(receipt))
}

/// One party an intermediary holds a delegation for.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "HeldDelegation")]
pub(crate) struct HeldView {
    party: PartyView,
    scope: DelegationScope,
    until: Option<chrono::NaiveDate>,
    granted_at: chrono::DateTime<chrono::Utc>,
}

pub(crate) async fn held_delegations(
    State(state): State<WebState>,
    Auth(p): Auth,
    query: PagedQuery<NoFilter>,
) -> ApiResult<Response> {
    let held = state.app.delegations_held_page(&p, &query.page).await?;
    let rows = held
        .rows
        .into_iter()
        .map(|h| HeldView {
            party: PartyView {
                id: h.party.id,
                cf: h.party.cf.as_str().to_string(),
                name: h.party.name,
                kind: h.party.kind,
            },
            scope: h.scope,
            until: h.until,
            granted_at: h.granted_at,
        })
        .collect();
    Ok(query.respond(cessio_app::Page {
        rows,
        next: held.next,
    }))
}

pub(crate) async fn revoke_delegation(
    State(state): State<WebState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<DelegationBody>,
) -> ApiResult<StatusCode> {
    state
        .app
        .revoke_delegation(&p, &b.username, &b.party_cf)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

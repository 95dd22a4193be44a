//! The operator's registry over HTTP: parties, users, PIN unlocks.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cessio_store::{PartyKind, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ApiResult;
use crate::{ApiJson, Auth, IdempotencyKey, WebState};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PartyRequest")]
pub(crate) struct PartyBody {
    cf: String,
    name: String,
    kind: PartyKind,
}

pub(crate) async fn register_party(
    State(state): State<WebState>,
    Auth(p): Auth,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<PartyBody>,
) -> ApiResult<(StatusCode, Json<cessio_store::Party>)> {
    let party = state
        .app
        .register_party(&p, &key, &body.cf, &body.name, body.kind)
        .await?;
    state.metrics.operation("register_party");
    Ok((StatusCode::CREATED, Json(party)))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "UserRequest")]
pub(crate) struct UserBody {
    username: String,
    display_name: String,
    password: String,
    pin: String,
    #[serde(default)]
    party_cf: Option<String>,
    role: Role,
}

/// What was created, by its id.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Created {
    /// The id of what was created.
    id: i64,
}

pub(crate) async fn create_user(
    State(state): State<WebState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<UserBody>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    let id = state
        .app
        .create_user(
            &p,
            &b.username,
            &b.display_name,
            &b.password,
            &b.pin,
            b.party_cf.as_deref(),
            b.role,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

pub(crate) async fn unlock_pin(
    State(state): State<WebState>,
    Auth(p): Auth,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    state.app.unlock_pin(&p, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! Webhook subscriptions over HTTP: subscribe an address to a party's events, list them
//! with where each delivery stands, end one.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cessio_app::{WebhookCreated, WebhookView};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiResult, AuthParty, party_in_path};
use crate::{ApiJson, Auth, WebState};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookRequest {
    /// `https://…`; `http://` only to 127.0.0.1 or localhost.
    url: String,
}

#[derive(Serialize, JsonSchema)]
pub(crate) struct WebhookList {
    webhooks: Vec<WebhookView>,
}

pub(crate) async fn subscribe(
    State(state): State<WebState>,
    AuthParty(p, party): AuthParty,
    ApiJson(b): ApiJson<WebhookRequest>,
) -> ApiResult<(StatusCode, Json<WebhookCreated>)> {
    let created = state.app.subscribe_webhook(&p, party, &b.url).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub(crate) async fn list(
    State(state): State<WebState>,
    AuthParty(p, party): AuthParty,
) -> ApiResult<Json<WebhookList>> {
    let webhooks = state.app.webhooks(&p, party).await?;
    Ok(Json(WebhookList { webhooks }))
}

pub(crate) async fn revoke(
    State(state): State<WebState>,
    Auth(p): Auth,
    Path((cf, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id: i64 = id.parse().ok().filter(|id| *id > 0).ok_or_else(|| {
        cessio_app::AppError::invalid("id", "l'identificativo del webhook è un numero positivo")
    })?;
    let party = party_in_path(&state, &p, &cf).await?;
    state.app.revoke_webhook(&p, party, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

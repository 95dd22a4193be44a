//! F2 over HTTP: the CF check, the cedible holdings, the cession.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use cessio_app::CessionLine;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ApiResult, AuthParty};
use crate::paging::{NoFilter, PagedQuery};
use crate::{ApiJson, Auth, IdempotencyKey, WebState};

pub(crate) async fn check_cf(
    State(state): State<WebState>,
    Auth(_): Auth,
    Path(cf): Path<String>,
) -> ApiResult<Json<cessio_app::CfCheck>> {
    Ok(Json(state.app.check_cf(&cf).await?))
}

pub(crate) async fn cedible(
    State(state): State<WebState>,
    AuthParty(p, party): AuthParty,
    query: PagedQuery<NoFilter>,
) -> ApiResult<Response> {
    let page = state.app.cedible_page(&p, party, &query.page).await?;
    Ok(query.respond(page))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CessionRequest")]
pub(crate) struct CessionBody {
    lines: Vec<CessionLine>,
    /// "Autorizzo il cessionario a visualizzare il mio nominativo".
    disclose_name: bool,
    #[serde(default)]
    pin: Option<String>,
}

pub(crate) async fn cede(
    State(state): State<WebState>,
    IdempotencyKey(key): IdempotencyKey,
    AuthParty(p, party): AuthParty,
    ApiJson(b): ApiJson<CessionBody>,
) -> ApiResult<(StatusCode, Json<cessio_app::CessionReceipt>)> {
    let receipt = state
        .app
        .cede(&p, &key, b.pin.as_deref(), party, &b.lines, b.disclose_name)
        .await?;
    state.metrics.operation("cede");
    Ok((StatusCode::CREATED, Json(receipt)))
}

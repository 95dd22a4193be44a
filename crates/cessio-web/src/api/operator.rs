//! F9 over HTTP, under `/api/v1/operator`: the party registry (deceased flag, bank clients),
//! suspensions (R-SUSP), risk hits, seizures (R-SEIZE) and annulments on request. Each
//! handler translates one request into one app call; the app checks the operator role and
//! every rule.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use cessio_app::{AnnulmentReceipt, BankClientEntry, RiskHitFilter, SeizureView, SuspensionView};
use cessio_core::chain::BankClient;
use cessio_core::ledger::{RataId, TransferId};
use cessio_core::suspension::SuspensionEnd;
use schemars::JsonSchema;
use serde::Deserialize;

use super::ApiResult;
use crate::paging::{NoFilter, PagedQuery};
use crate::{ApiJson, Auth, IdempotencyKey, WebState};

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/operator/parties/{cf}/deceased", post(set_deceased))
        .route("/operator/bank-clients", post(set_bank_client))
        .route("/operator/banks/{cf}/clients", get(bank_clients))
        .route("/operator/suspensions", post(suspend).get(suspensions))
        .route("/operator/suspensions/{transfer}/end", post(end_suspension))
        .route("/operator/risk-hits", get(risk_hits))
        .route("/operator/seizures", post(seize))
        .route("/operator/seizures/release", post(release_seizure))
        .route("/operator/annulments", post(annul_acceptance))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DeceasedRequest")]
pub(crate) struct DeceasedBody {
    deceased: bool,
}

async fn set_deceased(
    State(state): State<WebState>,
    Auth(p): Auth,
    Path(cf): Path<String>,
    ApiJson(b): ApiJson<DeceasedBody>,
) -> ApiResult<Json<cessio_store::Party>> {
    Ok(Json(state.app.set_deceased(&p, &cf, b.deceased).await?))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "BankClientRequest")]
pub(crate) struct BankClientBody {
    bank_cf: String,
    client_cf: String,
    relation: BankClient,
}

async fn set_bank_client(
    State(state): State<WebState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<BankClientBody>,
) -> ApiResult<(StatusCode, Json<BankClientEntry>)> {
    let entry = state
        .app
        .set_bank_client(&p, &b.bank_cf, &b.client_cf, b.relation)
        .await?;
    Ok((StatusCode::CREATED, Json(entry)))
}

async fn bank_clients(
    State(state): State<WebState>,
    Auth(p): Auth,
    Path(cf): Path<String>,
    query: PagedQuery<NoFilter>,
) -> ApiResult<Response> {
    let page = state.app.bank_clients_page(&p, &cf, &query.page).await?;
    Ok(query.respond(page))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SuspendRequest")]
pub(crate) struct SuspendBody {
    transfer: TransferId,
    days: u32,
    reason: String,
}

async fn suspend(
    State(state): State<WebState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<SuspendBody>,
) -> ApiResult<(StatusCode, Json<SuspensionView>)> {
    let view = state.app.suspend(&p, b.transfer, b.days, &b.reason).await?;
    state.metrics.operation("suspend");
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SuspensionsQuery {
    #[serde(default)]
    open_only: bool,
}

async fn suspensions(
    State(state): State<WebState>,
    Auth(p): Auth,
    query: PagedQuery<SuspensionsQuery>,
) -> ApiResult<Response> {
    let page = state
        .app
        .suspensions_page(&p, query.filter.open_only, &query.page)
        .await?;
    Ok(query.respond(page))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SuspensionEndRequest")]
pub(crate) struct EndBody {
    outcome: SuspensionEnd,
}

async fn end_suspension(
    State(state): State<WebState>,
    Auth(p): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Path(transfer): Path<TransferId>,
    ApiJson(b): ApiJson<EndBody>,
) -> ApiResult<Json<SuspensionView>> {
    let view = state
        .app
        .end_suspension(&p, &key, transfer, b.outcome)
        .await?;
    state.metrics.operation("end_suspension");
    Ok(Json(view))
}

async fn risk_hits(
    State(state): State<WebState>,
    Auth(p): Auth,
    query: PagedQuery<RiskHitFilter>,
) -> ApiResult<Response> {
    let page = state
        .app
        .risk_hits_page(&p, &query.filter, &query.page)
        .await?;
    Ok(query.respond(page))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SeizeRequest")]
pub(crate) struct SeizeBody {
    holder_cf: String,
    rata: RataId,
    reference: String,
}

async fn seize(
    State(state): State<WebState>,
    Auth(p): Auth,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(b): ApiJson<SeizeBody>,
) -> ApiResult<(StatusCode, Json<SeizureView>)> {
    let view = state
        .app
        .seize(&p, &key, &b.holder_cf, b.rata, &b.reference)
        .await?;
    state.metrics.operation("seize");
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SeizureReleaseRequest")]
pub(crate) struct ReleaseBody {
    holder_cf: String,
    rata: RataId,
}

async fn release_seizure(
    State(state): State<WebState>,
    Auth(p): Auth,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(b): ApiJson<ReleaseBody>,
) -> ApiResult<Json<SeizureView>> {
    let view = state
        .app
        .release_seizure(&p, &key, &b.holder_cf, b.rata)
        .await?;
    state.metrics.operation("release_seizure");
    Ok(Json(view))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AnnulmentRequest")]
pub(crate) struct AnnulBody {
    transfer: TransferId,
    reference: String,
}

async fn annul_acceptance(
    State(state): State<WebState>,
    Auth(p): Auth,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(b): ApiJson<AnnulBody>,
) -> ApiResult<(StatusCode, Json<AnnulmentReceipt>)> {
    let receipt = state
        .app
        .annul_acceptance(&p, &key, b.transfer, &b.reference)
        .await?;
    state.metrics.operation("annul_acceptance");
    Ok((StatusCode::CREATED, Json(receipt)))
}

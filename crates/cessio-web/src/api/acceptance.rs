//! F3 over HTTP: what a party must answer, and its answer.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use cessio_app::IncomingFilter;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ApiResult, AuthParty};
use crate::paging::PagedQuery;
use crate::{ApiJson, IdempotencyKey, WebState};

pub(crate) async fn incoming(
    State(state): State<WebState>,
    AuthParty(p, party): AuthParty,
    query: PagedQuery<IncomingFilter>,
) -> ApiResult<Response> {
    let page = state
        .app
        .incoming_page(&p, party, &query.filter, &query.page)
        .await?;
    Ok(query.respond(page))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AnswerRequest")]
pub(crate) struct AnswerBody {
    accept: bool,
    #[serde(default)]
    type_key: Option<String>,
    #[serde(default)]
    year: Option<u16>,
    #[serde(default)]
    cedente_cf: Option<String>,
    #[serde(default)]
    pin: Option<String>,
}

pub(crate) async fn answer(
    State(state): State<WebState>,
    IdempotencyKey(key): IdempotencyKey,
    AuthParty(p, party): AuthParty,
    ApiJson(b): ApiJson<AnswerBody>,
) -> ApiResult<Json<cessio_app::AnswerReceipt>> {
    let selection = IncomingFilter {
        type_key: b.type_key,
        year: b.year,
        cedente_cf: b.cedente_cf,
    };
    let receipt = state
        .app
        .answer(&p, &key, b.pin.as_deref(), party, &selection, b.accept)
        .await?;
    state
        .metrics
        .operation(if b.accept { "accept" } else { "refuse" });
    Ok(Json(receipt))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AnswerCodesRequest")]
pub(crate) struct AnswerCodesBody {
    accept: bool,
    codes: Vec<String>,
    #[serde(default)]
    pin: Option<String>,
}

/// F3 by a list of protocols or codici univoci, each row with its outcome.
pub(crate) async fn answer_codes(
    State(state): State<WebState>,
    IdempotencyKey(key): IdempotencyKey,
    AuthParty(p, party): AuthParty,
    ApiJson(b): ApiJson<AnswerCodesBody>,
) -> ApiResult<Json<cessio_app::BulkAnswerReport>> {
    let report = state
        .app
        .answer_codes(&p, &key, b.pin.as_deref(), party, &b.codes, b.accept)
        .await?;
    if report.operations > 0 && !report.replayed {
        state
            .metrics
            .operation(if b.accept { "accept" } else { "refuse" });
    }
    Ok(Json(report))
}

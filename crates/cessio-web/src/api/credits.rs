//! F5 Gestione F24, F6 Ulteriore rateazione and F7 Riduzione over HTTP, under
//! `/api/v1/parties/{cf}/...`, with the operator's debt position and year-end close. Each
//! handler translates one request into one app call; the app checks authorisation, the PIN
//! and every rule. Every mutating call takes an `Idempotency-Key`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use cessio_app::{
    ChoiceReceipt, CloseYearReport, DebtPositionReceipt, F24DebitInput, F24Form, F24LineInput,
    F24Outcome, F24Reservation, ReductionReceipt, SplitAnnulReceipt, SplitPreview, SplitReceipt,
    SplitTarget,
};
use cessio_core::debt::DebtPosition;
use cessio_core::ledger::RataId;
use cessio_core::money::Cents;
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ApiResult, AuthParty, PinBody, party_in_path};
use crate::paging::{NoFilter, PagedQuery};
use crate::{ApiJson, Auth, IdempotencyKey, WebState};

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/parties/{cf}/f24-availability", get(f24_availability))
        .route("/parties/{cf}/f24-choices", get(f24_choices))
        .route("/parties/{cf}/f24-choices/{rata}", post(f24_choice))
        .route("/parties/{cf}/f24", post(reserve_f24))
        .route("/parties/{cf}/f24/{id}/confirm", post(end_f24::<true>))
        .route("/parties/{cf}/f24/{id}/discard", post(end_f24::<false>))
        .route("/parties/{cf}/split/preview", post(split_preview))
        .route("/parties/{cf}/split", post(split_rata))
        .route("/parties/{cf}/split/{id}/annul", post(annul_split))
        .route("/parties/{cf}/reductions", post(reduce))
        .route("/parties/{cf}/debt-position", put(set_debt_position))
        .route("/close-year/{year}", post(close_year))
}

async fn f24_availability(
    State(state): State<WebState>,
    AuthParty(p, party): AuthParty,
    query: PagedQuery<NoFilter>,
) -> ApiResult<Response> {
    let page = state
        .app
        .f24_availability_page(&p, party, &query.page)
        .await?;
    Ok(query.respond(page))
}

async fn f24_choices(
    State(state): State<WebState>,
    AuthParty(p, party): AuthParty,
    query: PagedQuery<NoFilter>,
) -> ApiResult<Response> {
    let page = state.app.f24_choices_page(&p, party, &query.page).await?;
    Ok(query.respond(page))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ChoiceRequest")]
pub(crate) struct ChoiceBody {
    /// true: declare the choice to use the rata in F24; false: revoke it (R-F24-CHOICE).
    declare: bool,
    #[serde(default)]
    pin: Option<String>,
}

async fn f24_choice(
    State(state): State<WebState>,
    Auth(p): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Path((cf, rata)): Path<(String, RataId)>,
    ApiJson(b): ApiJson<ChoiceBody>,
) -> ApiResult<Json<ChoiceReceipt>> {
    let party = party_in_path(&state, &p, &cf).await?;
    let pin = b.pin.as_deref();
    let receipt = if b.declare {
        state
            .app
            .declare_f24_choice(&p, &key, pin, party, rata)
            .await?
    } else {
        state
            .app
            .revoke_f24_choice(&p, &key, pin, party, rata)
            .await?
    };
    state.metrics.operation("f24_choice");
    Ok(Json(receipt))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "F24Request")]
pub(crate) struct ReserveBody {
    payment_date: NaiveDate,
    lines: Vec<F24LineInput>,
    /// What the F24 pays. The credits may not exceed it (R-F24-BALANCE); from 1/1/2025
    /// required of banks, financial intermediaries and insurers offsetting building credits,
    /// which may not pay INPS or INAIL (R-BAN-BANK-INPS).
    #[serde(default)]
    debits: Vec<F24DebitInput>,
    #[serde(default)]
    pin: Option<String>,
}

async fn reserve_f24(
    State(state): State<WebState>,
    IdempotencyKey(key): IdempotencyKey,
    AuthParty(p, party): AuthParty,
    ApiJson(b): ApiJson<ReserveBody>,
) -> ApiResult<(StatusCode, Json<F24Reservation>)> {
    let r = state
        .app
        .reserve_f24(
            &p,
            &key,
            b.pin.as_deref(),
            party,
            F24Form {
                payment_date: b.payment_date,
                lines: &b.lines,
                debits: &b.debits,
            },
        )
        .await?;
    state.metrics.operation("reserve_f24");
    Ok((StatusCode::CREATED, Json(r)))
}

/// The second phase of an F24: `CONFIRM` uses the reserved amounts, otherwise they are
/// released. One handler for both, as the two calls differ only in that.
async fn end_f24<const CONFIRM: bool>(
    State(state): State<WebState>,
    Auth(p): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Path((cf, id)): Path<(String, i64)>,
    ApiJson(b): ApiJson<PinBody>,
) -> ApiResult<Json<F24Outcome>> {
    let party = party_in_path(&state, &p, &cf).await?;
    let pin = b.pin.as_deref();
    let r = if CONFIRM {
        state.app.confirm_f24(&p, &key, pin, party, id).await?
    } else {
        state.app.discard_f24(&p, &key, pin, party, id).await?
    };
    state.metrics.operation(if CONFIRM {
        "confirm_f24"
    } else {
        "discard_f24"
    });
    Ok(Json(r))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SplitPreviewRequest")]
pub(crate) struct SplitPreviewBody {
    rata: RataId,
    amount: Cents,
}

async fn split_preview(
    State(state): State<WebState>,
    AuthParty(p, party): AuthParty,
    ApiJson(b): ApiJson<SplitPreviewBody>,
) -> ApiResult<Json<SplitPreview>> {
    Ok(Json(
        state.app.split_preview(&p, party, b.rata, b.amount).await?,
    ))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SplitRequest")]
pub(crate) struct SplitBody {
    rata: RataId,
    amount: Cents,
    #[serde(default)]
    pin: Option<String>,
}

async fn split_rata(
    State(state): State<WebState>,
    IdempotencyKey(key): IdempotencyKey,
    AuthParty(p, party): AuthParty,
    ApiJson(b): ApiJson<SplitBody>,
) -> ApiResult<(StatusCode, Json<SplitReceipt>)> {
    let r = state
        .app
        .split_rata(&p, &key, b.pin.as_deref(), party, b.rata, b.amount)
        .await?;
    state.metrics.operation("split_rata");
    Ok((StatusCode::CREATED, Json(r)))
}

/// `{id}` is the split credit (`split_credit` of the split's receipt).
async fn annul_split(
    State(state): State<WebState>,
    Auth(p): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Path((cf, id)): Path<(String, i64)>,
    ApiJson(b): ApiJson<PinBody>,
) -> ApiResult<Json<SplitAnnulReceipt>> {
    let party = party_in_path(&state, &p, &cf).await?;
    let r = state
        .app
        .annul_split(&p, &key, b.pin.as_deref(), party, SplitTarget::Credit(id))
        .await?;
    state.metrics.operation("annul_split");
    Ok(Json(r))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ReductionRequest")]
pub(crate) struct ReductionBody {
    rata: RataId,
    amount: Cents,
    known_on: NaiveDate,
    #[serde(default)]
    pin: Option<String>,
}

async fn reduce(
    State(state): State<WebState>,
    IdempotencyKey(key): IdempotencyKey,
    AuthParty(p, party): AuthParty,
    ApiJson(b): ApiJson<ReductionBody>,
) -> ApiResult<(StatusCode, Json<ReductionReceipt>)> {
    let r = state
        .app
        .reduce(
            &p,
            &key,
            b.pin.as_deref(),
            party,
            b.rata,
            b.amount,
            b.known_on,
        )
        .await?;
    state.metrics.operation("reduce");
    Ok((StatusCode::CREATED, Json(r)))
}

async fn set_debt_position(
    State(state): State<WebState>,
    IdempotencyKey(key): IdempotencyKey,
    AuthParty(p, party): AuthParty,
    ApiJson(position): ApiJson<DebtPosition>,
) -> ApiResult<Json<DebtPositionReceipt>> {
    let r = state
        .app
        .set_debt_position(&p, &key, party, &position)
        .await?;
    state.metrics.operation("set_debt_position");
    Ok(Json(r))
}

/// The close is idempotent by content; the key is required like on every mutating call.
async fn close_year(
    State(state): State<WebState>,
    Auth(p): Auth,
    IdempotencyKey(_key): IdempotencyKey,
    Path(year): Path<u16>,
) -> ApiResult<Json<CloseYearReport>> {
    let r = state.app.close_year(&p, year).await?;
    state.metrics.operation("close_year");
    Ok(Json(r))
}

//! F8 over HTTP: one option communication, an annulment (a bulk file is a job: `jobs.rs`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cessio_app::{AppError, OptionInput};
use schemars::JsonSchema;

use super::{ApiResult, PinBody};
use crate::{ApiJson, Auth, IdempotencyKey, WebState};

// The body as the document describes it. The handler takes the PIN and the declaration
// out and reads the rest as an `OptionInput`, since serde's `flatten` does not refuse
// unknown fields.
/// An option communication (F8), with the PIN and the beneficiary's no-tax-area
/// declaration beside its fields.
#[derive(JsonSchema)]
#[schemars(rename = "OptionInput", deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "describes the body; the handler reads it by parts"
)]
pub(crate) struct OptionRequest {
    #[schemars(flatten)]
    input: OptionInput,
    pin: Option<String>,
    /// Beneficiario nella no tax area (R-ECO-2018).
    no_tax_area: Option<bool>,
}

pub(crate) async fn communicate(
    State(state): State<WebState>,
    Auth(p): Auth,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(mut body): ApiJson<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<cessio_app::Communicated>)> {
    // The PIN travels beside the communication's fields; `flatten` and
    // `deny_unknown_fields` do not combine in serde, so it is taken out by hand and the
    // rest must be exactly an `OptionInput` (unknown fields refused).
    let pin = body
        .as_object_mut()
        .and_then(|o| o.remove("pin"))
        .and_then(|v| v.as_str().map(str::to_string));
    // R-ECO-2018: the beneficiary's no-tax-area declaration, beside the input like the PIN.
    let no_tax_area = match body.as_object_mut().and_then(|o| o.remove("no_tax_area")) {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => b,
        Some(_) => {
            return Err(AppError::invalid("no_tax_area", "deve essere true o false").into());
        }
    };
    let input: OptionInput =
        serde_json::from_value(body).map_err(|e| AppError::invalid("body", e.to_string()))?;
    let credit = state
        .app
        .communicate_option_declaring(&p, &key, pin.as_deref(), &input, no_tax_area)
        .await?;
    state.metrics.operation("communicate_option");
    Ok((StatusCode::CREATED, Json(credit)))
}

pub(crate) async fn annul_communication(
    State(state): State<WebState>,
    Auth(p): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<PinBody>,
) -> ApiResult<Json<cessio_app::AnswerReceipt>> {
    let receipt = state
        .app
        .annul_option(&p, &key, b.pin.as_deref(), id)
        .await?;
    state.metrics.operation("annul_option");
    Ok(Json(receipt))
}

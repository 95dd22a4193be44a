//! R-RENT over HTTP: the rent credit calculator.

use axum::Json;
use axum::extract::State;

use super::ApiResult;
use crate::{ApiJson, Auth, WebState};

/// R-RENT: the rent credit month by month (a calculator: it writes nothing).
pub(crate) async fn rent_credit(
    State(state): State<WebState>,
    Auth(p): Auth,
    ApiJson(input): ApiJson<cessio_core::rent::RentInput>,
) -> ApiResult<Json<cessio_core::rent::RentCredit>> {
    Ok(Json(state.app.rent_credit(&p, &input)?))
}

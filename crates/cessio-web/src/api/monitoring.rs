//! F1 over HTTP: Monitoraggio, now or at the end of a past day.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;

use super::{ApiResult, party_in_path};
use crate::{ApiQuery, Auth, WebState};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct AsOfQuery {
    #[serde(default)]
    as_of: Option<chrono::NaiveDate>,
}

pub(crate) async fn monitoring(
    State(state): State<WebState>,
    Auth(p): Auth,
    Path(cf): Path<String>,
    ApiQuery(q): ApiQuery<AsOfQuery>,
) -> ApiResult<Json<Vec<cessio_app::MonitorRow>>> {
    let party = party_in_path(&state, &p, &cf).await?;
    Ok(Json(state.app.monitoring(&p, party, q.as_of).await?))
}

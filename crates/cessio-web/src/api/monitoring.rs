//! F1 over HTTP: Monitoraggio, now or at the end of a past day, a page at a time.

use axum::extract::State;
use axum::response::Response;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ApiResult, AuthParty};
use crate::WebState;
use crate::paging::PagedQuery;

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AsOfQuery {
    #[serde(default)]
    as_of: Option<chrono::NaiveDate>,
}

pub(crate) async fn monitoring(
    State(state): State<WebState>,
    AuthParty(p, party): AuthParty,
    query: PagedQuery<AsOfQuery>,
) -> ApiResult<Response> {
    let page = state
        .app
        .monitoring_page(&p, party, query.filter.as_of, &query.page)
        .await?;
    Ok(query.respond(page))
}

//! F1 over HTTP: Monitoraggio, now or at the end of a past day, a page at a time.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::{ApiResult, party_in_path};
use crate::paging::PagedQuery;
use crate::{Auth, WebState};

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
    query: PagedQuery<AsOfQuery>,
) -> ApiResult<Response> {
    let party = party_in_path(&state, &p, &cf).await?;
    let page = state
        .app
        .monitoring_page(&p, party, query.filter.as_of, &query.page)
        .await?;
    Ok(query.respond(page))
}

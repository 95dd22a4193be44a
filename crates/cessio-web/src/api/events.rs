//! A party's events over HTTP: read after a cursor, waiting for the first when asked.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use cessio_app::{EventPage, EventsFrom};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ApiResult, AuthParty};
use crate::{ApiQuery, WebState};

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsQuery {
    /// The `after` of the read before; `end` for only what happens next; none for all.
    #[serde(default)]
    after: Option<String>,
    /// Events at most in one read.
    #[serde(default)]
    #[schemars(range(min = 1, max = cessio_app::PAGE_MAX))]
    limit: Option<usize>,
    /// Seconds to wait for a first event when there is none yet (long polling).
    #[serde(default)]
    #[schemars(range(max = cessio_app::WAIT_MAX.as_secs()))]
    wait: Option<u64>,
}

pub(crate) async fn events(
    State(state): State<WebState>,
    AuthParty(p, party): AuthParty,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Json<EventPage>> {
    let from = EventsFrom::parse(q.after.as_deref());
    let wait = Duration::from_secs(q.wait.unwrap_or(0));
    let page = state.app.events(&p, party, &from, q.limit, wait).await?;
    Ok(Json(page))
}

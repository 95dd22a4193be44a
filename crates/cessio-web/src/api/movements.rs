//! F4 over HTTP: Lista movimenti, a page at a time, and its CSV export.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use cessio_app::MovementFilter;

use super::{ApiResult, AuthParty};
use crate::paging::PagedQuery;
use crate::{ApiQuery, WebState};

/// A page of F4 in registration order (`limit`, `cursor`; the next page in `Link`): over
/// the API the rows past R-300's 300 are reached page by page, up to R-50000.
pub(crate) async fn movements(
    State(state): State<WebState>,
    AuthParty(p, party): AuthParty,
    query: PagedQuery<MovementFilter>,
) -> ApiResult<Response> {
    let page = state
        .app
        .movements_page(&p, party, &query.filter, &query.page)
        .await?;
    Ok(query.respond(page))
}

pub(crate) async fn movements_csv(
    State(state): State<WebState>,
    AuthParty(p, party): AuthParty,
    ApiQuery(filter): ApiQuery<MovementFilter>,
) -> ApiResult<Response> {
    let export = state.app.movements_export(&p, party, &filter).await?;
    Ok(csv_download(export))
}

/// F4's export as a download, sent as it is read (R-50000 was checked before the first
/// byte). A failure after the first byte can no longer change the status: the response is
/// cut short, so that the client sees an incomplete transfer, never a shorter file.
pub(crate) fn csv_download(export: cessio_app::MovementExport) -> Response {
    let pieces = futures_util::stream::unfold(export, |mut export| async move {
        let piece = export.next_csv().await?;
        if let Err(e) = &piece {
            tracing::warn!(error = %e, "F4 export cut short");
        }
        Some((piece, export))
    });
    let mut response = axum::body::Body::from_stream(pieces).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"lista-movimenti.csv\""),
    );
    response
}

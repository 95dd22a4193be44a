//! Paged JSON lists on the wire: `limit` and `cursor` taken out of the query string (the
//! rest are the list's filters), and the next page's address in a `Link` header
//! (RFC 8288, `rel="next"`), the body staying a plain array. The cursor and the paging
//! rules are the app's (`cessio_app::PageRequest`).

use axum::Json;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use cessio_app::{Page, PageRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Problem;

/// The filters of a list that has none: any other query parameter than `limit` and
/// `cursor` is refused, as on the lists with filters.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoFilter {}

/// A list's query string, split: the page asked for, the filters, and what is needed to
/// write the next page's link.
#[derive(Debug)]
pub struct PagedQuery<T> {
    pub page: PageRequest,
    pub filter: T,
    /// The path and the filters as sent, repeated in the next page's link.
    path: String,
    filter_pairs: Vec<(String, String)>,
}

fn invalid_query(detail: impl std::fmt::Display) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_query",
        format!("Parametri non validi: {detail}"),
    )
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for PagedQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or("")).map_err(invalid_query)?;
        let mut page = PageRequest::default();
        let mut filter_pairs = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            match name.as_str() {
                "limit" => {
                    let limit = value.parse().map_err(|_| {
                        invalid_query(format!("limit: «{value}» non è un numero di righe"))
                    })?;
                    page.limit = Some(limit);
                }
                "cursor" => page.cursor = Some(value),
                _ => filter_pairs.push((name, value)),
            }
        }
        // Pairs of strings always encode; the filters are read from them as from a query.
        let rest = serde_urlencoded::to_string(&filter_pairs).unwrap_or_default();
        let filter = serde_urlencoded::from_str(&rest).map_err(invalid_query)?;
        // Behind a nested router the path seen here is the inner one.
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(parts.uri.path(), |u| u.0.path())
            .to_string();
        Ok(PagedQuery {
            page,
            filter,
            path,
            filter_pairs,
        })
    }
}

impl<T> PagedQuery<T> {
    /// The page as a JSON array, with the next page's link when there is one.
    pub fn respond<R: Serialize>(&self, page: Page<R>) -> Response {
        let mut response = Json(page.rows).into_response();
        let Some(next) = page.next else {
            return response;
        };
        let mut pairs = self.filter_pairs.clone();
        if let Some(limit) = self.page.limit {
            pairs.push(("limit".into(), limit.to_string()));
        }
        pairs.push(("cursor".into(), next));
        let link = serde_urlencoded::to_string(&pairs)
            .ok()
            .and_then(|q| HeaderValue::try_from(format!("<{}?{q}>; rel=\"next\"", self.path)).ok());
        if let Some(link) = link {
            response.headers_mut().insert(header::LINK, link);
        }
        response
    }
}

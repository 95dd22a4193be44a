//! Extractors: the client's address, JSON and query errors as problems, the Idempotency-Key, Auth.

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use cessio_app::{AppError, Principal};
use serde::de::DeserializeOwned;

use crate::{ApiError, Problem, SESSION_COOKIE, WebState};

/// The client's address: the connection's peer, or, when the peer is a trusted proxy, the
/// last address its `X-Forwarded-For` adds. Unknown (0.0.0.0) where the server was not
/// started by [`serve`](crate::serve) (in-process tests).
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<WebState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        if !state.trusted_proxies.contains(&peer) {
            return Ok(ClientIp(peer));
        }
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|a| a.trim().parse::<IpAddr>().ok());
        Ok(ClientIp(forwarded.unwrap_or(peer)))
    }
}

/// JSON bodies whose errors are problems too (malformed JSON, unknown fields, wrong types).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(e) => Err(json_problem(&e)),
        }
    }
}

fn json_problem(e: &JsonRejection) -> Problem {
    let status = e.status();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "content_type",
        _ => "invalid_json",
    };
    Problem::new(
        status,
        code,
        format!("Richiesta non valida: {}", e.body_text()),
    )
}

/// Query strings whose errors are problems too.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(query_problem(&e)),
        }
    }
}

fn query_problem(e: &QueryRejection) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_query",
        format!("Parametri non validi: {}", e.body_text()),
    )
}

/// The `Idempotency-Key` every mutating call carries.
#[derive(Debug)]
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get("idempotency-key");
        if header.is_some_and(|v| {
            !v.as_bytes()
                .iter()
                .all(|b| *b == b' ' || b.is_ascii_graphic())
        }) {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "idempotency_key_invalid",
                "L'intestazione Idempotency-Key ammette solo caratteri ASCII visibili (da 1 a 100)",
            ));
        }
        header
            .and_then(|v| v.to_str().ok())
            .map(|s| IdempotencyKey(s.trim().to_string()))
            .filter(|k| !k.0.is_empty())
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "idempotency_key_required",
                    "Ogni operazione richiede l'intestazione Idempotency-Key (un identificativo scelto dal client, lo stesso se si ripete la richiesta)",
                )
            })
    }
}

pub(crate) fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The authenticated user: a bearer token, or the session cookie.
#[derive(Debug)]
pub struct Auth(pub Principal);

impl FromRequestParts<WebState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, ApiError> {
        if let Some(bearer) = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            return Ok(Auth(state.app.principal_for_token(bearer.trim()).await?));
        }
        let Some(id) = cookie_value(&parts.headers, SESSION_COOKIE) else {
            return Err(AppError::Unauthenticated.into());
        };
        let session = state
            .live_session(id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        Ok(Auth(state.app.refresh(&session.principal).await?))
    }
}

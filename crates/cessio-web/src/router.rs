//! The routes of the API, the pages and the probes, and the layers every request goes through.
//!
//! Every response goes through `deadline` (a 408 that says what to do for that kind of
//! request), `security_headers` and `bare_errors_as_problems`; pages add their own headers
//! (`ui::page_headers`: scripts and styles only from the site's own files, no framing).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use crate::api::acceptance::{answer, answer_codes, incoming};
use crate::api::cession::{cede, cedible, check_cf};
use crate::api::delegations::{
    delegate, grant_delegation, held_delegations, party_delegations, revoke_delegation,
    revoke_party_delegation,
};
use crate::api::events::events;
use crate::api::monitoring::monitoring;
use crate::api::movements::{movements, movements_csv};
use crate::api::origination::{annul_communication, communicate};
use crate::api::registry::{create_user, register_party, unlock_pin};
use crate::api::rent::rent_credit;
use crate::api::session::{create_token, login, logout, me, revoke_token};
use crate::{MAX_BODY_BYTES, Metrics, Problem, WebState, api, health, metrics, openapi, ui};

pub fn router(state: WebState) -> Router {
    Metrics::keep_up(&state.metrics);
    let api = Router::new()
        .route("/session", post(login).delete(logout))
        .route("/me", get(me))
        .route("/tokens", post(create_token))
        .route("/tokens/{id}", delete(revoke_token))
        .route("/cf/{cf}", get(check_cf))
        .route("/rent-credit", post(rent_credit))
        .route("/parties", post(register_party))
        .route("/users", post(create_user))
        .route("/users/{username}/pin-unlock", post(unlock_pin))
        .route("/delegations", post(delegate))
        .route("/delegations/revoke", post(revoke_delegation))
        .route("/me/delegations", get(held_delegations))
        .route(
            "/parties/{cf}/delegations",
            get(party_delegations).post(grant_delegation),
        )
        .route(
            "/parties/{cf}/delegations/revoke",
            post(revoke_party_delegation),
        )
        .route("/communications", post(communicate))
        .route(
            "/communications/bulk",
            post(crate::api::jobs::import_and_wait).layer(axum::extract::DefaultBodyLimit::max(
                cessio_core::csv::MAX_IMPORT_BYTES,
            )),
        )
        .route(
            "/jobs/import",
            post(crate::api::jobs::submit_import).layer(axum::extract::DefaultBodyLimit::max(
                cessio_core::csv::MAX_IMPORT_BYTES,
            )),
        )
        .route("/jobs/{id}", get(crate::api::jobs::job))
        .route("/jobs/{id}/rows", get(crate::api::jobs::rows))
        .route("/communications/{id}/annul", post(annul_communication))
        .route("/parties/{cf}/monitoring", get(monitoring))
        .route("/parties/{cf}/cedible", get(cedible))
        .route("/parties/{cf}/cessions", post(cede))
        .route("/parties/{cf}/incoming", get(incoming))
        .route("/parties/{cf}/incoming/answer", post(answer))
        .route("/parties/{cf}/incoming/answer-codes", post(answer_codes))
        .route(
            "/parties/{cf}/incoming/answer-jobs",
            post(crate::api::jobs::submit_answer)
                .layer(axum::extract::DefaultBodyLimit::max(ANSWER_JOB_BODY_MAX)),
        )
        .route("/parties/{cf}/movements", get(movements))
        .route("/parties/{cf}/movements.csv", get(movements_csv))
        .route("/parties/{cf}/events", get(events))
        .route(
            "/parties/{cf}/webhooks",
            get(api::webhooks::list).post(api::webhooks::subscribe),
        )
        .route("/parties/{cf}/webhooks/{id}", delete(api::webhooks::revoke))
        .route(
            "/parties/{cf}/operations/{id}/receipt.pdf",
            get(api::receipts::receipt_pdf),
        )
        .route("/openapi.json", get(openapi::document))
        .merge(api::operator::routes())
        .merge(api::credits::routes());
    Router::new()
        .nest("/api/v1", api)
        .route("/api/v1", get(index))
        .merge(ui::routes())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::render))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(middleware::from_fn(bare_errors_as_problems))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// The largest answer job's body: [`cessio_app::ANSWER_JOB_MAX_ROWS`] codici univoci of
/// about 30 characters, quoted, with room to spare.
const ANSWER_JOB_BODY_MAX: usize = 8 * 1024 * 1024;

/// Bounds every request, reading its body included. What the answer tells the client to do
/// depends on what the request was, so that it never promises what the endpoint does not
/// do: an operation under an Idempotency-Key may have been applied by the writer and is
/// repeated under the same key; a bulk file may have been registered in part and is sent
/// again whole (its rows are named by their content, so none registers twice).
async fn deadline(State(state): State<WebState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let keyed = req.headers().contains_key("idempotency-key");
    let safe = req.method().is_safe();
    match tokio::time::timeout(state.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            let seconds = state.request_timeout.as_secs();
            let then = if route.as_deref() == Some("/api/v1/communications/bulk") {
                "Il file è stato preso in carico come lavoro, che prosegue: inviarlo di nuovo, uguale, ne dà lo stato o l'esito, e nessuna riga è registrata due volte"
            } else if keyed {
                "Se era un'operazione, ripeterla con la stessa Idempotency-Key: non sarà mai eseguita due volte"
            } else if safe {
                "Riprovare, eventualmente restringendo la ricerca"
            } else {
                "L'operazione potrebbe essere stata eseguita: verificarne l'esito prima di ripeterla"
            };
            Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!("La richiesta non è stata completata entro {seconds} secondi. {then}"),
            )
            .into_response()
        }
    }
}

/// Every refusal is a problem: the framework's own (a body over the limit, a missing or
/// wrong content type, a path parameter of the wrong type, an unknown method) come as bare
/// text, and are rewritten here with a stable `code`. Pages (HTML) are left as they are.
async fn bare_errors_as_problems(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/problem+json") || content_type.starts_with("text/html")
    {
        return response;
    }
    let (code, detail) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            "Il corpo della richiesta supera il limite consentito: nulla è stato registrato",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "content_type",
            "Tipo di contenuto non accettato (Content-Type): nulla è stato registrato",
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "Metodo non consentito per questa risorsa",
        ),
        StatusCode::NOT_FOUND => ("not_found", "Risorsa inesistente"),
        StatusCode::LENGTH_REQUIRED => (
            "length_required",
            "Manca la lunghezza del corpo (Content-Length)",
        ),
        StatusCode::URI_TOO_LONG => ("uri_too_long", "Indirizzo della richiesta troppo lungo"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            "headers_too_large",
            "Intestazioni della richiesta troppo grandi",
        ),
        s if s.is_server_error() => (
            "internal_error",
            "Errore interno del registro: nulla è stato registrato; riprovare tra poco",
        ),
        _ => (
            "bad_request",
            "Richiesta non valida: controllarne l'indirizzo, le intestazioni e il corpo",
        ),
    };
    let mut problem = Problem::new(status, code, detail).into_response();
    // The methods a 405 allows stay with it.
    if let Some(allow) = response.headers().get(header::ALLOW) {
        problem.headers_mut().insert(header::ALLOW, allow.clone());
    }
    problem
}

/// Headers of every response: nothing that carries personal data or a secret is kept by a
/// cache or a proxy (`no-store`, unless the response chose its own policy, as the static
/// assets do), nothing is sniffed into another type, and no address leaks to other sites.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::REFERRER_POLICY) {
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}

async fn observe(State(state): State<WebState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().clone();
    let started = Instant::now();
    let response = next.run(req).await;
    state.metrics.observe(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Where to go from the root: the API and its description.
async fn index() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "name": "Cessio — Piattaforma cessione crediti",
        "api": "/api/v1",
        "openapi": "/api/v1/openapi.json",
        "login": "POST /api/v1/session {\"username\", \"password\"}",
        "health": "/healthz",
        "ready": "/readyz",
        "metrics": "/metrics"
    }))
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not_found", "Risorsa inesistente")
}

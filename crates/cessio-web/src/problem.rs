//! Errors on the wire: `application/problem+json` (RFC 9457) with a stable `code`, the rule
//! that refused and an Italian `detail`. This is the one place that knows HTTP statuses.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cessio_app::AppError;
use schemars::{JsonSchema, Schema};
use serde::Serialize;
use serde_json::{Value, json};

use crate::codes::{CODES, statuses};

/// A refusal or an error (RFC 9457).
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(transform = list_codes)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: &'static str,
    pub status: u16,
    /// Codice stabile del rifiuto: x-codes dà di ciascuno gli stati HTTP, la regola e il
    /// significato.
    pub code: String,
    /// Spiegazione in italiano.
    pub detail: String,
    /// Regola della specifica (R-…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
    /// Sent as the `Retry-After` header, not in the body.
    #[serde(skip)]
    pub retry_after_secs: Option<u64>,
}

/// `code` is one of the catalogue's, each described in `x-codes` with the statuses
/// `status_of` gives it and its rule.
fn list_codes(schema: &mut Schema) {
    let codes: Vec<&str> = CODES.iter().map(|c| c.code).collect();
    let described: serde_json::Map<String, Value> = CODES
        .iter()
        .map(|c| {
            let mut entry = json!({ "status": statuses(c), "description": c.description });
            if let Some(rule) = c.rule {
                entry["rule"] = json!(rule);
            }
            (c.code.to_string(), entry)
        })
        .collect();
    if let Some(code) = schema
        .get_mut("properties")
        .and_then(|p| p.get_mut("code"))
        .and_then(Value::as_object_mut)
    {
        code.insert("enum".into(), json!(codes));
    }
    schema.insert("x-codes".into(), Value::Object(described));
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Problem {
            type_uri: format!("https://cessio.example/problems/{code}"),
            title: status.canonical_reason().unwrap_or("Errore"),
            status: status.as_u16(),
            code: code.to_string(),
            detail: detail.into(),
            rule: None,
            retry_after_secs: None,
        }
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_secs = Some(seconds);
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after_secs;
        let mut response = (status, Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The HTTP status of each code: of every refusal of the app, and of the codes this crate
/// sends itself (which name the same status where they are raised), so that the catalogue
/// (`crate::codes`) and the OpenAPI document take every status from here.
pub fn status_of(code: &str) -> StatusCode {
    match code {
        "bad_request" | "idempotency_key_required" => StatusCode::BAD_REQUEST,
        "unauthenticated" | "login_failed" => StatusCode::UNAUTHORIZED,
        "forbidden" | "pin_required" | "pin_wrong" | "delegation_view_only" => {
            StatusCode::FORBIDDEN
        }
        "pin_locked" => StatusCode::LOCKED,
        "not_found" => StatusCode::NOT_FOUND,
        "method_not_allowed" => StatusCode::METHOD_NOT_ALLOWED,
        "request_timeout" => StatusCode::REQUEST_TIMEOUT,
        "length_required" => StatusCode::LENGTH_REQUIRED,
        "body_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "uri_too_long" => StatusCode::URI_TOO_LONG,
        "content_type" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "too_many_attempts" => StatusCode::TOO_MANY_REQUESTS,
        "headers_too_large" => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "conflict"
        | "insufficient_available"
        | "pending_already_resolved"
        | "party_exists"
        | "user_exists" => StatusCode::CONFLICT,
        "database_unavailable" | "busy" | "not_ready" => StatusCode::SERVICE_UNAVAILABLE,
        "database_error" | "internal_error" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        let status = status_of(code);
        // A server error is logged in full and told to the client without internals.
        let detail = if status.is_server_error() {
            tracing::error!(error = %self.0, "request failed");
            "Errore interno del registro: l'operazione non è stata eseguita; riprovare tra poco (con la stessa Idempotency-Key)".to_string()
        } else {
            self.0.to_string()
        };
        let mut p = Problem::new(status, code, detail);
        p.rule = self.0.rule();
        p.into_response()
    }
}

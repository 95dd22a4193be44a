//! The probes: `/healthz` says the process answers HTTP (liveness: no database, no lock,
//! the same answer however large the register), `/readyz` that the register can serve
//! (readiness: the writer and the database answer within [`READY_WITHIN`]).

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cessio_app::Check;

use crate::WebState;

/// How long each part of readiness may take to answer: well under a probe's usual timeout
/// (Kubernetes: 1 s by default, often raised), far above a healthy answer (milliseconds).
pub const READY_WITHIN: Duration = Duration::from_millis(800);

/// Liveness: the process accepts connections and its runtime runs requests. Deliberately
/// touches nothing else, so that a slow or lost database never gets a live server
/// restarted (readiness takes it out of rotation instead).
pub async fn healthz() -> &'static str {
    "ok"
}

fn describe(check: &Check) -> String {
    match check {
        Check::Ok => "ok".into(),
        // The code, not the database's own words: the probe is answered to anyone.
        Check::Failed(e) => format!("errore ({})", e.code()),
        Check::TimedOut(after) => format!("nessuna risposta entro {} ms", after.as_millis()),
    }
}

fn part_name(part: &str) -> &'static str {
    match part {
        "writer" => "il processo di scrittura",
        "database" => "il database",
        _ => "la replica di lettura",
    }
}

/// Readiness: 200 with each part's state when all answer; otherwise 503, a problem naming
/// the parts that did not, with `checks` giving each part's state.
pub async fn readyz(State(state): State<WebState>) -> Response {
    let readiness = state.app.readiness(READY_WITHIN).await;
    let mut checks = serde_json::Map::new();
    let mut failed = Vec::new();
    for (part, check) in readiness.parts() {
        checks.insert(part.into(), describe(check).into());
        match check {
            Check::Ok => {}
            Check::Failed(e) => {
                tracing::warn!(part, error = %e, "readiness: failed");
                failed.push(format!("{}: {}", part_name(part), describe(check)));
            }
            Check::TimedOut(_) => {
                tracing::warn!(part, "readiness: no answer in time");
                failed.push(format!("{}: {}", part_name(part), describe(check)));
            }
        }
    }
    if failed.is_empty() {
        let body = serde_json::json!({ "status": "ready", "checks": checks });
        return (StatusCode::OK, axum::Json(body)).into_response();
    }
    let code = "not_ready";
    let body = serde_json::json!({
        "type": format!("https://cessio.example/problems/{code}"),
        "title": "Service Unavailable",
        "status": 503,
        "code": code,
        "detail": format!("Il registro non è pronto: {}", failed.join("; ")),
        "checks": checks,
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    // Readiness is asked again by the probe; a client may wait this long.
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

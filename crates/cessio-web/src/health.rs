//! The probes: `/healthz` says the process answers HTTP (liveness: no database, no lock,
//! the same answer however large the register), `/readyz` that the register can serve
//! (readiness: the writer and the database answer within [`READY_WITHIN`]).
//!
//! `/healthz` touches nothing but the runtime: a slow or lost database must not get a live
//! server restarted. `/readyz` pings the writer through its queue and reads the ledger
//! head from the database (and from the replica, when reads go to one); a 503 names each
//! part that failed and how (an error code or the timeout, never the database's own words).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cessio_app::{Check, Readiness};

use crate::{Problem, WebState};

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

/// Readiness: 200 with each part's state when the parts that count answer (a read
/// replica that does not is reported, not counted: the primary takes its reads);
/// otherwise 503, a problem naming the parts that did not, with `checks` giving each
/// part's state.
pub async fn readyz(State(state): State<WebState>) -> Response {
    let readiness = state.app.readiness(READY_WITHIN).await;
    let mut checks = serde_json::Map::new();
    let mut failed = Vec::new();
    for (part, check) in readiness.parts() {
        checks.insert(part.into(), describe(check).into());
        if let Check::Failed(e) = check {
            tracing::warn!(part, error = %e, "readiness: failed");
        }
        if !check.is_ok() && Readiness::required(part) {
            failed.push(format!("{}: {}", part_name(part), describe(check)));
        }
    }
    if failed.is_empty() {
        let body = serde_json::json!({ "status": "ready", "checks": checks });
        return (StatusCode::OK, axum::Json(body)).into_response();
    }
    let problem = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        format!("Il registro non è pronto: {}", failed.join("; ")),
    )
    // The probe asks again; a client may wait this long.
    .retry_after(5);
    let mut body = serde_json::to_value(&problem).unwrap_or_default();
    body["checks"] = checks.into();
    let mut response = problem.into_response();
    *response.body_mut() = axum::body::Body::from(body.to_string());
    response
}

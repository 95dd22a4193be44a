//! Bulk jobs over HTTP: a file of communications (F8) or a list of codes to answer (F3)
//! taken at once (`202 Accepted` and the job's address), then followed: where the job
//! stands, and each row's outcome, a page at a time.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cessio_app::{AppError, BulkJob, ImportReport};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ApiResult, AuthParty};
use crate::paging::{NoFilter, PagedQuery};
use crate::{ApiJson, Auth, WebState};

/// How long `POST /communications/bulk` waits for its job before answering with the job
/// to follow instead of the report: well within the request's time limit.
const BULK_WAIT: Duration = Duration::from_secs(45);

/// Starts a runner for the jobs that wait, beside the request. Any number may run: each
/// job is leased to one; `cessio serve` also looks for jobs left by a process that
/// stopped.
pub(crate) fn run_jobs(state: &WebState) {
    let app = state.app.clone();
    tokio::spawn(async move {
        if let Err(e) = app.run_bulk_jobs().await {
            tracing::warn!(error = %e, "bulk job runner stopped");
        }
    });
}

fn accepted(job: BulkJob) -> Response {
    let mut response = (StatusCode::ACCEPTED, Json(&job)).into_response();
    if let Ok(at) = HeaderValue::try_from(format!("/api/v1/jobs/{}", job.id)) {
        response.headers_mut().insert(header::LOCATION, at);
    }
    response
}

fn job_id(id: &str) -> Result<i64, AppError> {
    id.parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| AppError::invalid("id", "l'identificativo del lavoro è un numero positivo"))
}

/// Submits the CSV file of the body (the PIN, for users, in the `X-Cessio-Pin` header) and
/// starts a runner.
async fn submit_file(
    state: &WebState,
    p: &cessio_app::Principal,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<BulkJob, AppError> {
    let pin = headers.get("x-cessio-pin").and_then(|v| v.to_str().ok());
    let job = state.app.submit_import_job(p, pin, body).await?;
    run_jobs(state);
    Ok(job)
}

/// F8 as a job.
pub(crate) async fn submit_import(
    State(state): State<WebState>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    Ok(accepted(submit_file(&state, &p, &headers, &body).await?))
}

/// F8 bulk, answering with the report when the file's job ends within [`BULK_WAIT`], with
/// the job to follow (`202`) otherwise.
pub(crate) async fn import_and_wait(
    State(state): State<WebState>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let job = submit_file(&state, &p, &headers, &body).await?;
    // Within the request's own time limit, with room to write the report.
    let wait = BULK_WAIT.min(state.request_timeout.mul_f64(0.75));
    let job = state.app.wait_bulk_job(&p, job.id, wait).await?;
    if job.state != cessio_app::BulkJobState::Done {
        return Ok(accepted(job));
    }
    let report: ImportReport = state.app.bulk_import_report(&p, job.id).await?;
    Ok(Json(report).into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AnswerJobRequest")]
pub(crate) struct AnswerJobBody {
    accept: bool,
    codes: Vec<String>,
    #[serde(default)]
    pin: Option<String>,
}

/// F3 as a job: accept or refuse every protocol or codice univoco of the list.
pub(crate) async fn submit_answer(
    State(state): State<WebState>,
    AuthParty(p, party): AuthParty,
    ApiJson(b): ApiJson<AnswerJobBody>,
) -> ApiResult<Response> {
    let job = state
        .app
        .submit_answer_job(&p, b.pin.as_deref(), party, &b.codes, b.accept)
        .await?;
    run_jobs(&state);
    Ok(accepted(job))
}

pub(crate) async fn job(
    State(state): State<WebState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<BulkJob>> {
    Ok(Json(state.app.bulk_job(&p, job_id(&id)?).await?))
}

pub(crate) async fn rows(
    State(state): State<WebState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    q: PagedQuery<NoFilter>,
) -> ApiResult<Response> {
    let page = state.app.bulk_job_rows(&p, job_id(&id)?, &q.page).await?;
    Ok(q.respond(page))
}

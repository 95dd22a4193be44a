//! A bulk job's page: where a file of communications or a list of answers stands while it
//! is worked through (the page reloads itself every two seconds), then each row's outcome,
//! a thousand rows a page, and for an answer the receipt of each operation it made.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use cessio_app::{
    AnswerJobRow, BulkJob, BulkJobKind, BulkJobRow, BulkJobState, ImportReport, PageRequest,
};
use cessio_store::Party;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{message, page as layout_page};
use super::{Ui, error_page, party_for, party_home, render_status};
use crate::WebState;

/// Rows of the outcome table per page.
const ROWS_PER_PAGE: usize = 1_000;

/// Where a job submitted for `party` is followed.
pub fn href(party: &Party, id: i64) -> String {
    format!("{}/lavori/{id}", party_home(party))
}

#[derive(Deserialize, Default)]
pub struct RowsQuery {
    /// The next page's cursor, from the link under the table.
    #[serde(default)]
    pagina: Option<String>,
}

pub async fn page(
    State(state): State<WebState>,
    ui: Ui,
    Path((cf, id)): Path<(String, String)>,
    Query(q): Query<RowsQuery>,
) -> Response {
    let party = match party_for(&state, &ui, &cf).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let job = match id.parse::<i64>() {
        Ok(id) => state.app.bulk_job(&ui.user, id).await,
        Err(_) => Err(cessio_app::AppError::NotFound { what: "Lavoro" }),
    };
    let job = match job {
        Ok(job) => job,
        Err(e) => return error_page(Some(&ui), &e),
    };
    let ended = matches!(job.state, BulkJobState::Done | BulkJobState::Failed);
    let rows = if ended {
        let request = PageRequest {
            limit: Some(ROWS_PER_PAGE),
            cursor: q.pagina,
        };
        match state.app.bulk_job_rows(&ui.user, job.id, &request).await {
            Ok(page) => Some(page),
            Err(e) => return error_page(Some(&ui), &e),
        }
    } else {
        None
    };
    let title = title(&job);
    let next = rows.as_ref().and_then(|r| r.next.clone()).map(|cursor| {
        let query = serde_urlencoded::to_string([("pagina", cursor)]).unwrap_or_default();
        format!("{}?{query}", href(&party, job.id))
    });
    let body = html! {
        h1 { (title) }
        (summary(&job))
        @if let Some(page) = &rows {
            @match job.kind {
                BulkJobKind::Import => (import_rows(&job, &page.rows)),
                BulkJobKind::Answer => (answer_rows(&party, &page.rows)),
            }
            @if let Some(next) = &next {
                a.btn.btn-outline-primary.me-2 href=(next) { "Righe successive" }
            }
        }
        @match job.kind {
            BulkJobKind::Import => a.btn.btn-outline-primary href={ (party_home(&party)) "/comunicazioni" } { "Torna alle comunicazioni" },
            BulkJobKind::Answer => a.btn.btn-outline-primary href={ (party_home(&party)) "/accettazione" } { "Torna all'accettazione" },
        }
    };
    let mut response = render_status(
        StatusCode::OK,
        layout_page(ui.party_shell(title, &party), body),
    );
    if !ended {
        // The page follows the job by reloading itself, without a script.
        response
            .headers_mut()
            .insert("refresh", HeaderValue::from_static("2"));
    }
    response
}

fn title(job: &BulkJob) -> &'static str {
    match (job.kind, job.state, job.accept) {
        (_, BulkJobState::Failed, _) => "Lavoro interrotto",
        (_, BulkJobState::Queued | BulkJobState::Running, _) => "Lavoro in corso",
        (BulkJobKind::Import, BulkJobState::Done, _) => "Esito del file",
        (BulkJobKind::Answer, BulkJobState::Done, Some(false)) => "Crediti rifiutati per elenco",
        (BulkJobKind::Answer, BulkJobState::Done, _) => "Crediti accettati per elenco",
    }
}

fn summary(job: &BulkJob) -> Markup {
    let (applied, already) = match job.kind {
        BulkJobKind::Import => ("Registrate", "già registrate in precedenza"),
        BulkJobKind::Answer => ("Eseguite", "già eseguite in precedenza"),
    };
    html! {
        @match job.state {
            BulkJobState::Queued | BulkJobState::Running => {
                div.alert.alert-info role="status" {
                    p { "Lavoro " (job.id) ": righe elaborate " (job.done_rows) " di " (job.total_rows) ". La pagina si aggiorna da sola; si può anche chiuderla: il lavoro prosegue." }
                    progress.w-100 max=(job.total_rows.max(1)) value=(job.done_rows) aria-label="Avanzamento del lavoro" {}
                }
            }
            BulkJobState::Failed => {
                div.alert.alert-danger role="alert" {
                    p { "Il lavoro " (job.id) " si è fermato dopo " (job.done_rows) " righe di " (job.total_rows) ": "
                        (message(job.error.as_deref().unwrap_or("motivo non registrato"))) }
                    p.mb-0 { "Inviare di nuovo lo stesso elenco o file lo riprende da dove si era fermato: nessuna riga è eseguita due volte." }
                }
            }
            BulkJobState::Done => {
                div.alert.alert-success role="status" {
                    p.mb-0 { (applied) " " (job.applied) ", " (already) " " (job.already) ", scartate " (job.refused) " (lavoro " (job.id) ", " (job.total_rows) " righe)." }
                }
            }
        }
    }
}

fn import_rows(job: &BulkJob, rows: &[BulkJobRow]) -> Markup {
    let report = ImportReport {
        registered: usize::try_from(job.applied).unwrap_or(0),
        already_registered: usize::try_from(job.already).unwrap_or(0),
        refused: usize::try_from(job.refused).unwrap_or(0),
        rows: rows
            .iter()
            .filter_map(|r| match r {
                BulkJobRow::Import(row) => Some(row.clone()),
                BulkJobRow::Answer(_) => None,
            })
            .collect(),
    };
    super::communications::rows_table(&report)
}

fn answer_rows(party: &Party, rows: &[BulkJobRow]) -> Markup {
    let rows: Vec<&AnswerJobRow> = rows
        .iter()
        .filter_map(|r| match r {
            BulkJobRow::Answer(row) => Some(row),
            BulkJobRow::Import(_) => None,
        })
        .collect();
    let mut operations: Vec<i64> = rows.iter().filter_map(|r| r.operation_id).collect();
    operations.sort_unstable();
    operations.dedup();
    html! {
        @if !operations.is_empty() {
            h2.h5 { "Ricevute" }
            ul {
                @for id in &operations {
                    li { "Operazione " (id) ": " a href=(super::receipts::operation_href(party, *id)) download { "Scarica ricevuta (PDF)" } }
                }
            }
        }
        (super::answer_list::codes_table("Esito di ogni riga", rows.iter().map(|r| {
            let outcome = html! {
                @match (&r.error, r.already_answered) {
                    (Some(e), _) => { "Non eseguita: " (message(&e.message)) }
                    (None, true) => { "Già eseguita (operazione " (r.operation_id.unwrap_or_default()) ")" }
                    (None, false) if r.operations == 0 => { "Già compresa in una riga precedente" }
                    (None, false) => { "Eseguita" }
                }
            };
            (r.line, r.code.as_str(), r.operations, r.amount, outcome)
        })))
    }
}

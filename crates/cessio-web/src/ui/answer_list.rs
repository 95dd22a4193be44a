//! F3 by a list: the protocols or codici univoci pasted from a back office's file, checked
//! row by row and shown before anything is answered (what each row would answer, and why a
//! row cannot be), then answered with the PIN, irreversibly,
//! as a bulk job (`App::submit_answer_job`), whose page keeps every row's outcome and the
//! operation's receipt.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use cessio_app::{AppError, BulkAnswerRow};
use cessio_store::Party;
use maud::{Markup, html};
use serde::Deserialize;

use super::acceptance::{confirm_controls, confirmation};
use super::layout::{FieldErrors, amount, csrf_field, error_summary, message, page as layout_page};
use super::posted::{PartyForm, posted};
use super::{Ui, error_page, field_of, party_for, party_home, pin_of, render_status};
use crate::{WebState, random_token};

#[derive(Deserialize, Default)]
pub struct ListForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    step: String,
    #[serde(default)]
    codici: String,
    #[serde(default)]
    esito: String,
    #[serde(default)]
    chiave: String,
    #[serde(default)]
    pin: String,
}

posted!(ListForm);

/// The codes of the text area: one per line, or separated by spaces, commas or semicolons
/// (as a column copied from a spreadsheet or a CSV file arrives).
fn codes_of(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// "1 operazione", "3 operazioni".
fn operations(n: usize) -> String {
    if n == 1 {
        "1 operazione".into()
    } else {
        format!("{n} operazioni")
    }
}

fn list_path(party: &Party) -> String {
    format!("{}/accettazione/elenco", party_home(party))
}

pub async fn page(State(state): State<WebState>, ui: Ui, Path(cf): Path<String>) -> Response {
    match party_for(&state, &ui, &cf).await {
        Ok(party) => form_page(&ui, &party, &ListForm::default(), &FieldErrors::default()),
        Err(r) => r,
    }
}

fn form_page(ui: &Ui, party: &Party, f: &ListForm, errors: &FieldErrors) -> Response {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let accept = f.esito != "rifiuta";
    render_status(
        status,
        layout_page(
            ui.party_shell("Risposta per elenco", party),
            html! {
                h1 { "Risposta per elenco" }
                p.lead { "Per accettare o rifiutare insieme molte comunicazioni e cessioni ricevute: incollare i protocolli o i codici univoci delle rate, uno per riga. Prima della risposta si vede che cosa comprende ogni riga." }
                (error_summary(errors))
                form method="post" novalidate {
                    (csrf_field(&ui.csrf))
                    input type="hidden" name="step" value="verifica";
                    div.form-group.mb-4 {
                        label.active for="codici" { "Protocolli o codici univoci (obbligatorio)" }
                        textarea.form-control.is-invalid[errors.of("codici").is_some()] #codici name="codici" rows="8"
                            aria-describedby="codici-aiuto" aria-invalid=[errors.of("codici").map(|_| "true")] { (f.codici) }
                        small.form-text #codici-aiuto { "Fino a 10.000, uno per riga (vanno bene anche spazi, virgole o punti e virgola). Un protocollo comprende tutte le rate della comunicazione in attesa di risposta." }
                        @if let Some(e) = errors.of("codici") {
                            div.invalid-feedback.d-block #codici-errore { (message(e)) }
                        }
                    }
                    fieldset.mb-4 {
                        legend.h6 { "Risposta" }
                        div.form-check {
                            input.form-check-input type="radio" #esito-accetta name="esito" value="accetta" checked[accept];
                            label.form-check-label for="esito-accetta" { "Accetta" }
                        }
                        div.form-check {
                            input.form-check-input type="radio" #esito-rifiuta name="esito" value="rifiuta" checked[!accept];
                            label.form-check-label for="esito-rifiuta" { "Rifiuta" }
                        }
                    }
                    button.btn.btn-primary.me-2 type="submit" { "Verifica l'elenco" }
                    a.btn.btn-outline-primary href={ (party_home(party)) "/accettazione" } { "Torna all'accettazione" }
                }
            },
        ),
    )
}

pub async fn submit(
    State(state): State<WebState>,
    PartyForm(ui, party, mut f): PartyForm<ListForm>,
) -> Response {
    let codes = codes_of(&f.codici);
    let mut errors = FieldErrors::default();
    if codes.is_empty() {
        errors.field(
            "codici",
            "Indicare almeno un protocollo o un codice univoco",
        );
        return form_page(&ui, &party, &f, &errors);
    }
    // An answer is irreversible: only the two words the form sends are read as one.
    let accept = match f.esito.as_str() {
        "accetta" => true,
        "rifiuta" => false,
        _ => return error_page(Some(&ui), &AppError::invalid("esito", "accetta o rifiuta")),
    };
    if f.step != "esegui" {
        f.chiave = random_token();
        return confirm_page(&state, &ui, &party, &f, accept, &errors, StatusCode::OK).await;
    }
    let pin = pin_of(&f.pin);
    let submitted = state
        .app
        .submit_answer_job(&ui.user, pin, party.id, &codes, accept)
        .await;
    match submitted {
        Ok(job) => {
            crate::api::jobs::run_jobs(&state);
            super::see_other(&super::jobs::href(&party, job.id))
        }
        Err(e) => {
            match field_of(&e) {
                Some(id) => errors.field(id, super::refusal(&e)),
                None => errors.form(super::refusal(&e)),
            }
            let status = crate::problem::status_of(e.code());
            confirm_page(&state, &ui, &party, &f, accept, &errors, status).await
        }
    }
}

/// The rows as they would be answered, and the PIN; the form's `chiave` keys the answer.
async fn confirm_page(
    state: &WebState,
    ui: &Ui,
    party: &Party,
    f: &ListForm,
    accept: bool,
    errors: &FieldErrors,
    status: StatusCode,
) -> Response {
    let preview = match state
        .app
        .preview_answer_codes(&ui.user, party.id, &codes_of(&f.codici))
        .await
    {
        Ok(p) => p,
        Err(e) => {
            let mut errors = FieldErrors::default();
            errors.field("codici", super::refusal(&e));
            return form_page(ui, party, f, &errors);
        }
    };
    let verb = if accept { "accettare" } else { "rifiutare" };
    let title = if accept {
        "Conferma l'accettazione per elenco"
    } else {
        "Conferma il rifiuto per elenco"
    };
    confirmation(
        ui,
        party,
        title,
        errors,
        status,
        html! {
                @if preview.operations == 0 {
                    p.lead { "Nessuna riga dell'elenco indica operazioni a cui si può rispondere ora." }
                } @else {
                    div.alert.alert-warning role="alert" {
                        p.mb-0 {
                            "Stai per " strong { (verb) } " " (operations(preview.operations)) " per un totale di " strong { (amount(preview.amount)) } ". "
                            strong { "L'operazione è irreversibile" } ". Le righe che non si possono eseguire restano senza risposta."
                        }
                    }
                }
                (rows_table(&preview.rows, "Righe dell'elenco"))
                @if preview.operations > 0 {
                    form method="post" action=(list_path(party)) novalidate {
                        (csrf_field(&ui.csrf))
                        input type="hidden" name="step" value="esegui";
                        input type="hidden" name="codici" value=(f.codici);
                        (confirm_controls(ui, accept, &f.chiave, errors))
                        a.btn.btn-outline-primary href=(list_path(party)) { "Annulla" }
                    }
                } @else {
                    a.btn.btn-outline-primary href=(list_path(party)) { "Torna all'elenco" }
                }
        },
    )
}

fn rows_table(rows: &[BulkAnswerRow], caption: &str) -> Markup {
    codes_table(
        caption,
        rows.iter().map(|r| {
            let outcome = html! {
                @match &r.error {
                    Some(e) => { "Non eseguibile: " (message(&e.message)) }
                    None if r.operations == 0 => { "Già compresa in una riga precedente" }
                    None => { "Eseguibile" }
                }
            };
            (r.line, r.code.as_str(), r.operations, r.amount, outcome)
        }),
    )
}

/// A list of codes row by row: line, code, the operations it names and their amount, and
/// what became (or would become) of it. Also the answer job's page.
pub(super) fn codes_table<'a>(
    caption: &str,
    rows: impl Iterator<Item = (usize, &'a str, usize, cessio_core::money::Cents, Markup)>,
) -> Markup {
    html! {
        div.table-responsive tabindex="0" role="region" aria-label="Tabella (scorrevole)" {
            table.table.cessio-table {
                caption { (caption) }
                thead {
                    tr {
                        th.cessio-amount scope="col" { "Riga" }
                        th scope="col" { "Protocollo o codice" }
                        th.cessio-amount scope="col" { "Operazioni" }
                        th.cessio-amount scope="col" { "Importo" }
                        th scope="col" { "Esito" }
                    }
                }
                tbody {
                    @for (line, code, operations, sum, outcome) in rows {
                        tr {
                            td.cessio-amount { (line) }
                            td { span.cessio-code { (code) } }
                            td.cessio-amount { (operations) }
                            td.cessio-amount { (amount(sum)) }
                            td { (outcome) }
                        }
                    }
                }
            }
        }
    }
}

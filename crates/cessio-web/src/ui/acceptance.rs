//! F3 Accettazione: received operations grouped by type, year and cedente; the filters
//! first when more than 1,000 match (R-1000); accept or refuse a group or everything
//! selected, after a confirmation that says the answer is irreversible (R-ANSWER).

use super::posted::{PartyForm, posted};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use cessio_app::{AppError, IncomingFilter, IncomingGroup};
use cessio_core::money::Cents;
use cessio_store::Party;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{
    Field, FieldErrors, amount, csrf_field, date, error_summary, page as layout_page, parse_year,
    pin_field, rule_links,
};
use super::{Notice, Ui, error_page, field_of, party_for, party_home, pin_of, render_status};
use crate::{WebState, random_token};

/// The filters, as typed (kept verbatim to show them back).
#[derive(Deserialize, Default, Clone, Debug)]
pub struct Filters {
    #[serde(default)]
    tipo: String,
    #[serde(default)]
    anno: String,
    #[serde(default)]
    cedente: String,
}

impl Filters {
    fn parse(&self, errors: &mut FieldErrors) -> IncomingFilter {
        let year = match parse_year(&self.anno) {
            Ok(y) => y,
            Err(e) => {
                errors.field("anno", e);
                None
            }
        };
        IncomingFilter {
            type_key: Some(self.tipo.trim().to_string()).filter(|s| !s.is_empty()),
            year,
            cedente_cf: Some(self.cedente.trim().to_string()).filter(|s| !s.is_empty()),
        }
    }

    fn is_empty(&self) -> bool {
        self.tipo.trim().is_empty() && self.anno.trim().is_empty() && self.cedente.trim().is_empty()
    }
}

pub async fn page(
    State(state): State<WebState>,
    ui: Ui,
    Path(cf): Path<String>,
    Query(filters): Query<Filters>,
) -> Response {
    let party = match party_for(&state, &ui, &cf).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let notice = ui.take_notice(&state).await;
    let mut errors = FieldErrors::default();
    let filter = filters.parse(&mut errors);
    let mut too_many = None;
    let groups = if errors.is_empty() {
        match state.app.incoming(&ui.user, party.id, &filter).await {
            Ok(g) => g,
            Err(AppError::FiltersRequired { limit, found }) => {
                too_many = Some((limit, found));
                Vec::new()
            }
            Err(e) => return error_page(Some(&ui), &e),
        }
    } else {
        Vec::new()
    };
    let mut shell = ui.party_shell("Accettazione crediti", &party);
    shell.notice = notice;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render_status(
        status,
        layout_page(
            shell,
            html! {
                h1 { "Accettazione crediti" }
                p.lead { "Le cessioni e gli sconti ricevuti, per tipo di credito, anno e cedente. L'accettazione e il rifiuto valgono per l'intero gruppo e sono irreversibili." }
                (error_summary(&errors))
                @if let Some((limit, found)) = too_many {
                    div.alert.alert-warning role="status" {
                        h2.h5 { "Troppe operazioni da mostrare" }
                        p.mb-0 { (super::layout::message(&format!("Le operazioni in attesa di risposta sono {found}, più di {limit}: indicare almeno un filtro (tipo, anno o cedente) per vederle (R-1000)."))) }
                    }
                }
                p { a href={ (party_home(&party)) "/accettazione/elenco" } { "Rispondi per elenco di protocolli o codici univoci" } }
                (filter_form(&state, &filters, &errors))
                @if too_many.is_none() && errors.is_empty() {
                    (group_table(&ui, &party, &filters, &groups))
                }
            },
        ),
    )
}

fn type_options(state: &WebState, selected: &str) -> Markup {
    html! {
        option value="" selected[selected.is_empty()] { "Tutti i tipi" }
        @for t in state.app.catalogue.types() {
            option value=(t.key) selected[t.key == selected] { (t.name) }
        }
    }
}

fn filter_form(state: &WebState, f: &Filters, errors: &FieldErrors) -> Markup {
    html! {
        form.mb-4 method="get" role="search" aria-label="Filtri" {
            div.row.g-3 {
                div.col-md-4 {
                    div.select-wrapper.mb-4 {
                        label for="tipo" { "Tipo di credito" }
                        select #tipo name="tipo" { (type_options(state, &f.tipo)) }
                    }
                }
                div.col-md-2 { (Field::text("anno", "Anno di riferimento", &f.anno).inputmode("numeric").render(errors)) }
                div.col-md-4 { (Field::text("cedente", "Codice fiscale del cedente", &f.cedente).cf().render(errors)) }
                div.col-md-2.d-flex.align-items-start.pt-md-4 {
                    button.btn.btn-primary type="submit" { "Filtra" }
                }
            }
        }
    }
}

fn group_table(ui: &Ui, party: &Party, f: &Filters, groups: &[IncomingGroup]) -> Markup {
    let total = Cents::checked_sum(groups.iter().map(|g| g.amount)).unwrap_or(Cents::MAX);
    let operations: usize = groups.iter().map(|g| g.operations).sum();
    html! {
        @if groups.is_empty() {
            p { "Nessuna operazione in attesa di risposta" @if !f.is_empty() { " con questi filtri" } "." }
        } @else {
            div.table-responsive tabindex="0" role="region" aria-label="Tabella (scorrevole)" {
                table.table.cessio-table {
                    caption { (operations) " operazioni in attesa di risposta, " (amount(total)) }
                    thead {
                        tr {
                            th scope="col" { "Tipo di credito" }
                            th scope="col" { "Anno" }
                            th scope="col" { "Cedente" }
                            th.cessio-amount scope="col" { "Operazioni" }
                            th.cessio-amount scope="col" { "Importo" }
                            th scope="col" { "Risposta" }
                        }
                    }
                    tbody {
                        @for g in groups {
                            tr {
                                td { (g.type_name) }
                                td { (g.year) }
                                td {
                                    span.cessio-code { (g.cedente.cf) }
                                    @if let Some(n) = &g.cedente.name { br; (n) }
                                }
                                td.cessio-amount { (g.operations) }
                                td.cessio-amount { (amount(g.amount)) }
                                td {
                                    @if g.suspended > 0 {
                                        "Sospesa dall'Agenzia"
                                        @if let Some(d) = g.suspended_until { " fino al " (date(d)) }
                                        ": non si può rispondere" (rule_links(&["R-SUSP"]))
                                    } @else if let Some(d) = g.answerable_from {
                                        "Rispondibile dal " (date(d)) (rule_links(&["R-WAIT5"]))
                                    } @else {
                                        form.d-inline method="post" {
                                            (csrf_field(&ui.csrf))
                                            input type="hidden" name="step" value="conferma";
                                            input type="hidden" name="tipo" value=(g.type_key);
                                            input type="hidden" name="anno" value=(g.year);
                                            input type="hidden" name="cedente" value=(g.cedente.cf);
                                            button.btn.btn-success.btn-sm.me-1 type="submit" name="esito" value="accetta"
                                                aria-label={ "Accetta " (g.type_name) " " (g.year) " da " (g.cedente.cf) } { "Accetta" }
                                            button.btn.btn-danger.btn-sm type="submit" name="esito" value="rifiuta"
                                                aria-label={ "Rifiuta " (g.type_name) " " (g.year) " da " (g.cedente.cf) } { "Rifiuta" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form method="post" {
                (csrf_field(&ui.csrf))
                input type="hidden" name="step" value="conferma";
                input type="hidden" name="tipo" value=(f.tipo);
                input type="hidden" name="anno" value=(f.anno);
                input type="hidden" name="cedente" value=(f.cedente);
                // Both go through the same irreversible confirmation, with the count and total.
                button.btn.btn-outline-success.me-2 type="submit" name="esito" value="accetta" {
                    @if f.is_empty() { "Accetta tutti" } @else { "Accetta tutti quelli filtrati" }
                }
                button.btn.btn-outline-danger type="submit" name="esito" value="rifiuta" {
                    @if f.is_empty() { "Rifiuta tutti" } @else { "Rifiuta tutti quelli filtrati" }
                }
            }
            p.mt-2 { a href=(party_home(party)) { "Torna alla home" } }
        }
    }
}

#[derive(Deserialize)]
pub struct AnswerForm {
    #[serde(default)]
    csrf: String,
    step: String,
    #[serde(default)]
    tipo: String,
    #[serde(default)]
    anno: String,
    #[serde(default)]
    cedente: String,
    esito: String,
    #[serde(default)]
    chiave: String,
    #[serde(default)]
    pin: String,
}

pub async fn submit(
    State(state): State<WebState>,
    PartyForm(ui, party, f): PartyForm<AnswerForm>,
) -> Response {
    let filters = Filters {
        tipo: f.tipo.clone(),
        anno: f.anno.clone(),
        cedente: f.cedente.clone(),
    };
    let mut errors = FieldErrors::default();
    let selection = filters.parse(&mut errors);
    if !errors.is_empty() {
        return error_page(Some(&ui), &AppError::invalid("anno", "anno non valido"));
    }
    // An answer is irreversible: only the two words the forms send are read as one.
    let accept = match f.esito.as_str() {
        "accetta" => true,
        "rifiuta" => false,
        _ => return error_page(Some(&ui), &AppError::invalid("esito", "accetta o rifiuta")),
    };
    if f.step == "esegui" {
        let pin = pin_of(&f.pin);
        match state
            .app
            .answer(&ui.user, &f.chiave, pin, party.id, &selection, accept)
            .await
        {
            Ok(r) => {
                let title = if r.accepted {
                    "Crediti accettati"
                } else {
                    "Crediti rifiutati"
                };
                let mut notice = Notice::success(title)
                    .receipt(&party, r.operation_id)
                    .line("Protocollo dell'operazione", r.operation_id.to_string())
                    .line("Operazioni", r.operations.to_string())
                    .line("Importo", amount(r.amount));
                if !r.accepted {
                    notice = notice.line("Effetto", "gli importi tornano disponibili al cedente");
                }
                if r.replayed {
                    notice = notice.line("Nota", "risposta già registrata: nulla è stato ripetuto");
                }
                ui.leave_notice(&state, notice).await;
                return super::see_other(&format!("{}/accettazione", party_home(&party)));
            }
            Err(e) => {
                match field_of(&e) {
                    Some(fid) => errors.field(fid, super::refusal(&e)),
                    None => errors.form(super::refusal(&e)),
                }
                let status = crate::problem::status_of(e.code());
                return confirm_page(
                    &state, &ui, &party, &filters, &selection, accept, &f.chiave, &errors, status,
                )
                .await;
            }
        }
    }
    confirm_page(
        &state,
        &ui,
        &party,
        &filters,
        &selection,
        accept,
        &random_token(),
        &errors,
        StatusCode::OK,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn confirm_page(
    state: &WebState,
    ui: &Ui,
    party: &Party,
    filters: &Filters,
    selection: &IncomingFilter,
    accept: bool,
    key: &str,
    errors: &FieldErrors,
    status: StatusCode,
) -> Response {
    let groups = match state.app.incoming(&ui.user, party.id, selection).await {
        Ok(g) => g,
        Err(e) => return error_page(Some(ui), &e),
    };
    let total = Cents::checked_sum(groups.iter().map(|g| g.amount)).unwrap_or(Cents::MAX);
    let operations: usize = groups.iter().map(|g| g.operations).sum();
    let verb = if accept { "accettare" } else { "rifiutare" };
    let title = if accept {
        "Conferma l'accettazione"
    } else {
        "Conferma il rifiuto"
    };
    confirmation(
        ui,
        party,
        title,
        errors,
        status,
        html! {
                @if groups.is_empty() {
                    p.lead { "Non ci sono più operazioni in attesa di risposta con questi criteri." }
                    a.btn.btn-outline-primary href={ (party_home(party)) "/accettazione" } { "Torna all'accettazione" }
                } @else {
                    div.alert.alert-warning role="alert" {
                        p.mb-0 {
                            "Stai per " strong { (verb) } " " (operations) " operazioni per un totale di " strong { (amount(total)) } ". "
                            strong { "L'operazione è irreversibile" } ": "
                            @if accept { "i crediti accettati entrano nella tua disponibilità e non potranno essere restituiti al cedente." }
                            @else { "gli importi rifiutati tornano al cedente e non potranno più essere accettati." }
                        }
                    }
                    ul {
                        @for g in &groups {
                            li { (g.type_name) " " (g.year) " da " span.cessio-code { (g.cedente.cf) } ": " (g.operations) " operazioni, " (amount(g.amount)) }
                        }
                    }
                    form method="post" novalidate {
                        (csrf_field(&ui.csrf))
                        input type="hidden" name="step" value="esegui";
                        input type="hidden" name="tipo" value=(filters.tipo);
                        input type="hidden" name="anno" value=(filters.anno);
                        input type="hidden" name="cedente" value=(filters.cedente);
                        (confirm_controls(ui, accept, key, errors))
                        a.btn.btn-outline-primary href={ (party_home(party)) "/accettazione" } { "Annulla" }
                    }
                }
        },
    )
}

/// The confirmation of an answer, by group or by list: its title, the errors, then `body`.
pub(super) fn confirmation(
    ui: &Ui,
    party: &Party,
    title: &str,
    errors: &FieldErrors,
    status: StatusCode,
    body: Markup,
) -> Response {
    render_status(
        status,
        layout_page(
            ui.party_shell(title, party),
            html! {
                h1 { (title) }
                (error_summary(errors))
                (body)
            },
        ),
    )
}

/// What an answer's confirmation form ends with: the answer, its key, the PIN, the button.
pub(super) fn confirm_controls(ui: &Ui, accept: bool, key: &str, errors: &FieldErrors) -> Markup {
    html! {
        input type="hidden" name="esito" value=(if accept { "accetta" } else { "rifiuta" });
        input type="hidden" name="chiave" value=(key);
        (pin_field(&ui.user, errors))
        button.btn.btn-primary.me-2 type="submit" { @if accept { "Confermo l'accettazione" } @else { "Confermo il rifiuto" } }
    }
}

posted!(AnswerForm);

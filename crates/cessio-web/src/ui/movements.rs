//! F4 Lista movimenti: every filter of the guide, at most 300 rows shown and
//! 50,000 exported (R-50000), and above either the user is told to narrow the filters.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use cessio_app::{AppError, CedibilitaClass, MovementFilter, MovementRow, MovementState};
use cessio_core::catalogue::Catalogue;
use cessio_core::ledger::TransferKind;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{
    Field, FieldErrors, amount, datetime, error_summary, page as layout_page, parse_date,
    parse_year, type_name,
};
use super::{Ui, error_page, party_for, render_status};
use crate::WebState;

#[derive(Deserialize, Default, Debug, Clone)]
pub struct Filters {
    #[serde(default)]
    registrate_dal: String,
    #[serde(default)]
    registrate_al: String,
    #[serde(default)]
    risposta_dal: String,
    #[serde(default)]
    risposta_al: String,
    #[serde(default)]
    cedente: String,
    #[serde(default)]
    cessionario: String,
    #[serde(default)]
    stato: String,
    #[serde(default)]
    tipo: String,
    #[serde(default)]
    codice_tributo: String,
    #[serde(default)]
    anno: String,
    #[serde(default)]
    codice: String,
    #[serde(default)]
    tracciabili: String,
    #[serde(default)]
    cedute_dal: String,
    #[serde(default)]
    cedute_al: String,
    #[serde(default)]
    cedibilita: String,
}

fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|v| !v.is_empty())
}

impl Filters {
    fn parse(&self, errors: &mut FieldErrors) -> MovementFilter {
        let mut date = |id: &str, v: &str| match parse_date(v) {
            Ok(d) => d,
            Err(e) => {
                errors.field(id, e);
                None
            }
        };
        let registered_from = date("registrate_dal", &self.registrate_dal);
        let registered_to = date("registrate_al", &self.registrate_al);
        let answered_from = date("risposta_dal", &self.risposta_dal);
        let answered_to = date("risposta_al", &self.risposta_al);
        let ceded_from = date("cedute_dal", &self.cedute_dal);
        let ceded_to = date("cedute_al", &self.cedute_al);
        let year = match parse_year(&self.anno) {
            Ok(y) => y,
            Err(e) => {
                errors.field("anno", e);
                None
            }
        };
        let state = match self.stato.as_str() {
            "in_attesa" => Some(MovementState::InAttesa),
            "sospesa" => Some(MovementState::Sospesa),
            "accettato" => Some(MovementState::Accettato),
            "rifiutato" => Some(MovementState::Rifiutato),
            "annullato" => Some(MovementState::Annullato),
            "non_effettuata" => Some(MovementState::NonEffettuata),
            "accettazione_annullata" => Some(MovementState::AccettazioneAnnullata),
            _ => None,
        };
        let cedibilita = match self.cedibilita.as_str() {
            "chiunque" => Some(CedibilitaClass::Anyone),
            "una_volta" => Some(CedibilitaClass::Once),
            "non_banche" => Some(CedibilitaClass::AnyoneExceptBanks),
            "qualificati" => Some(CedibilitaClass::QualifiedOnly),
            "correntisti" => Some(CedibilitaClass::OwnBankClientsOnly),
            "non_cedibile" => Some(CedibilitaClass::NotCedible),
            _ => None,
        };
        let tracciabile = match self.tracciabili.as_str() {
            "si" => Some(true),
            "no" => Some(false),
            _ => None,
        };
        MovementFilter {
            registered_from,
            registered_to,
            answered_from,
            answered_to,
            cedente_cf: opt(&self.cedente),
            cessionario_cf: opt(&self.cessionario),
            state,
            type_key: opt(&self.tipo),
            codice_tributo: opt(&self.codice_tributo),
            year,
            code: opt(&self.codice),
            tracciabile,
            ceded_from,
            ceded_to,
            cedibilita,
        }
    }
}

fn parse_query(raw: Option<&str>) -> Result<Filters, String> {
    serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|e| e.to_string())
}

pub async fn page(
    State(state): State<WebState>,
    ui: Ui,
    Path(cf): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let party = match party_for(&state, &ui, &cf).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut errors = FieldErrors::default();
    let filters = parse_query(raw.as_deref()).unwrap_or_else(|e| {
        errors.form(format!("Filtri non validi: {e}"));
        Filters::default()
    });
    let searched = raw.as_deref().is_some_and(|q| !q.is_empty());
    let filter = filters.parse(&mut errors);
    let mut rows = None;
    let mut too_many = None;
    // Over the 300 rows the table shows, the export is still offered up to
    // 50,000 (R-50000), with the count: only the on-screen table needs narrower filters.
    let mut exportable = None;
    if searched && errors.is_empty() {
        match state.app.movements(&ui.user, party.id, &filter).await {
            Ok(r) => rows = Some(r),
            Err(e @ AppError::TooManyRows { .. }) => {
                too_many = Some(super::refusal(&e));
                match state.app.movements_count(&ui.user, party.id, &filter).await {
                    Ok(count) => exportable = count,
                    Err(e) => return error_page(Some(&ui), &e),
                }
            }
            Err(
                e @ AppError::Rule {
                    code: "filter_required",
                    ..
                },
            ) => errors.form(e.to_string()),
            Err(AppError::Invalid { field, reason }) => {
                let id = match field.as_str() {
                    "registered_from" => Some("registrate_dal"),
                    "registered_to" => Some("registrate_al"),
                    "answered_from" => Some("risposta_dal"),
                    "answered_to" => Some("risposta_al"),
                    "ceded_from" => Some("cedute_dal"),
                    "ceded_to" => Some("cedute_al"),
                    _ => None,
                };
                match id {
                    Some(id) => errors.field(id, reason),
                    None => errors.form(reason),
                }
            }
            Err(e) => return error_page(Some(&ui), &e),
        }
    }
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let csv_href = format!(
        "/soggetti/{}/movimenti.csv?{}",
        party.cf.as_str(),
        raw.as_deref().unwrap_or("")
    );
    render_status(
        status,
        layout_page(
            ui.party_shell("Lista movimenti", &party),
            html! {
                h1 { "Lista movimenti" }
                p.lead { "Le comunicazioni di cessione in cui il soggetto è cedente o cessionario. Indicare almeno un filtro oltre alla tracciabilità." }
                (error_summary(&errors))
                (filter_form(&state, &filters, &errors))
                @if let Some(message) = &too_many {
                    @if let Some(count) = exportable {
                        div.alert.alert-info role="status" {
                            p { (super::layout::thousands(count)) " " (super::layout::message("movimenti corrispondono ai filtri: la tabella ne mostra al massimo 300, restringere i filtri per vederli qui (R-300).")) }
                            p.mb-0 {
                                a href=(csv_href) download="lista-movimenti.csv" { "Esporta tutti in CSV (" (super::layout::thousands(count)) " righe)" }
                            }
                        }
                    } @else {
                        div.alert.alert-warning role="status" { (super::layout::message(&format!("{message}. La ricerca supera anche le 50.000 righe esportabili (R-50000)."))) }
                    }
                }
                @if let Some(rows) = &rows {
                    @if rows.is_empty() {
                        p { "Nessun movimento con questi filtri." }
                    } @else {
                        p {
                            (rows.len()) " movimenti. "
                            a href=(csv_href) download="lista-movimenti.csv" { "Esporta in CSV" }
                            " (fino a 50.000 righe)"
                        }
                        (table(&state.app.catalogue, party.cf.as_str(), rows))
                    }
                }
            },
        ),
    )
}

fn select(id: &str, label: &str, options: &[(&str, &str)], selected: &str) -> Markup {
    html! {
        div.select-wrapper.mb-4 {
            label for=(id) { (label) }
            select id=(id) name=(id) {
                @for (value, text) in options {
                    option value=(value) selected[*value == selected] { (text) }
                }
            }
        }
    }
}

fn filter_form(state: &WebState, f: &Filters, errors: &FieldErrors) -> Markup {
    let mut types: Vec<(&str, &str)> = vec![("", "Tutti i tipi")];
    for t in state.app.catalogue.types() {
        types.push((t.key.as_str(), t.name.as_str()));
    }
    html! {
        form.mb-4 method="get" role="search" aria-label="Filtri della lista movimenti" novalidate {
            fieldset {
                legend.h5 { "Periodi" }
                div.row.g-3 {
                    div.col-md-3 { (Field::text("registrate_dal", "Registrate dal", &f.registrate_dal).hint("gg/mm/aaaa").render(errors)) }
                    div.col-md-3 { (Field::text("registrate_al", "Registrate al", &f.registrate_al).hint("gg/mm/aaaa").render(errors)) }
                    div.col-md-3 { (Field::text("risposta_dal", "Risposta dal", &f.risposta_dal).hint("gg/mm/aaaa").render(errors)) }
                    div.col-md-3 { (Field::text("risposta_al", "Risposta al", &f.risposta_al).hint("gg/mm/aaaa").render(errors)) }
                    div.col-md-3 { (Field::text("cedute_dal", "Cedute dal", &f.cedute_dal).hint("data di cessione, gg/mm/aaaa").render(errors)) }
                    div.col-md-3 { (Field::text("cedute_al", "Cedute al", &f.cedute_al).hint("data di cessione, gg/mm/aaaa").render(errors)) }
                }
            }
            fieldset {
                legend.h5 { "Soggetti e crediti" }
                div.row.g-3 {
                    div.col-md-3 { (Field::text("cedente", "Codice fiscale del cedente", &f.cedente).hint("anche solo l'inizio").render(errors)) }
                    div.col-md-3 { (Field::text("cessionario", "Codice fiscale del cessionario", &f.cessionario).hint("anche solo l'inizio").render(errors)) }
                    div.col-md-3 {
                        (select("stato", "Stato", &[("", "Tutti"), ("in_attesa", "In attesa di risposta"), ("sospesa", "Sospese dall'Agenzia"), ("accettato", "Accettati"), ("rifiutato", "Rifiutati"), ("annullato", "Annullati dal mittente"), ("non_effettuata", "Non effettuate (sospese e annullate)"), ("accettazione_annullata", "Accettazioni annullate su richiesta")], &f.stato))
                    }
                    div.col-md-3 { (select("tipo", "Tipo di credito", &types, &f.tipo)) }
                    div.col-md-3 { (Field::text("codice_tributo", "Codice tributo", &f.codice_tributo).inputmode("numeric").render(errors)) }
                    div.col-md-3 { (Field::text("anno", "Anno di riferimento", &f.anno).inputmode("numeric").render(errors)) }
                    div.col-md-3 { (Field::text("codice", "Protocollo o codice univoco", &f.codice).render(errors)) }
                    div.col-md-3 { (select("tracciabili", "Tracciabilità", &[("", "Tutti"), ("si", "Solo tracciabili"), ("no", "Solo non tracciabili")], &f.tracciabili)) }
                    div.col-md-3 { (select("cedibilita", "Tipologia per cedibilità", &[("", "Tutte"), ("chiunque", "Cedibili a chiunque"), ("una_volta", "Cedibili una sola volta"), ("non_banche", "Non a banche"), ("qualificati", "Solo a soggetti qualificati"), ("correntisti", "Solo a correntisti della banca"), ("non_cedibile", "Non cedibili")], &f.cedibilita)) }
                }
            }
            button.btn.btn-primary type="submit" { "Cerca" }
        }
    }
}

fn kind_label(k: TransferKind) -> &'static str {
    match k {
        TransferKind::Issue => "Comunicazione dell'opzione",
        TransferKind::Cession => "Cessione",
        _ => "Altro",
    }
}

fn table(catalogue: &Catalogue, cf: &str, rows: &[MovementRow]) -> Markup {
    html! {
        div.table-responsive tabindex="0" role="region" aria-label="Tabella (scorrevole)" {
            table.table.table-striped.cessio-table {
                caption { "Movimenti" }
                thead {
                    tr {
                        th scope="col" { "Id" }
                        th scope="col" { "Registrato il" }
                        th scope="col" { "Data cessione" }
                        th scope="col" { "Operazione" }
                        th scope="col" { "Cedente" }
                        th scope="col" { "Cessionario" }
                        th scope="col" { "Tipo" }
                        th scope="col" { "Codice tributo" }
                        th scope="col" { "Anno" }
                        th.cessio-amount scope="col" { "Importo" }
                        th scope="col" { "Stato" }
                        th scope="col" { "Risposta il" }
                        th scope="col" { "Codice univoco / protocollo" }
                        th scope="col" { "Cedibilità" }
                        th scope="col" { "Ricevuta" }
                    }
                }
                tbody {
                    @for r in rows {
                        tr {
                            td { (r.id) }
                            td { (datetime(r.registered_at)) }
                            td { (super::layout::date(r.ceded_on)) }
                            td { (kind_label(r.kind)) }
                            td { span.cessio-code { (r.cedente.cf) } @if let Some(n) = &r.cedente.name { br; (n) } }
                            td { span.cessio-code { (r.cessionario.cf) } @if let Some(n) = &r.cessionario.name { br; (n) } }
                            td { (type_name(catalogue, &r.type_key)) }
                            td { (r.codice_tributo) }
                            td { (r.year) }
                            td.cessio-amount { (amount(r.amount)) }
                            td { (r.state_text()) }
                            td { @if let Some(a) = r.answered_at { (datetime(a)) } }
                            td.cessio-code { @if r.tracciabile { (r.codice_univoco) } @else { (r.protocol) } }
                            td { (r.cedibilita) }
                            td { a href=(super::receipts::movement_href(cf, r.id)) download aria-label=(format!("Scarica ricevuta (PDF) del movimento {}", r.id)) { "Scarica ricevuta (PDF)" } }
                        }
                    }
                }
            }
        }
    }
}

/// The same filters as a CSV file (R-50000). A refusal is a page that says why, since
/// the link was followed by a person.
pub async fn csv(
    State(state): State<WebState>,
    ui: Ui,
    Path(cf): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let party = match party_for(&state, &ui, &cf).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut errors = FieldErrors::default();
    let filters = match parse_query(raw.as_deref()) {
        Ok(f) => f,
        Err(e) => return error_page(Some(&ui), &AppError::invalid("filtri", e)),
    };
    let filter = filters.parse(&mut errors);
    if let Some((_, message)) = errors.0.first() {
        return error_page(Some(&ui), &AppError::invalid("filtri", message.clone()));
    }
    match state
        .app
        .movements_export(&ui.user, party.id, &filter)
        .await
    {
        Ok(export) => crate::csv_download(export),
        Err(e) => error_page(Some(&ui), &e),
    }
}

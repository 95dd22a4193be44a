//! F8 option communications for a beneficiary: one by form, many by CSV file with the
//! outcome of every row, and the annulment of those not yet answered (R-OPT-ANNUL).

use super::posted::{PartyForm, posted};
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use cessio_app::{AppError, ImportReport, MovementFilter, MovementRow, MovementState, OptionInput};
use cessio_core::catalogue::Origin;
use cessio_core::ledger::TransferKind;
use cessio_core::money::Cents;
use cessio_core::opt_stop::{
    BarriereSubject, DeclaredException, ExceptionCode, Fact, OptStopTable,
};
use cessio_store::Party;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{
    Field, FieldErrors, amount, csrf_field, datetime, error_summary, page as layout_page,
    parse_date, parse_year, pin_field, type_name,
};
use super::{Notice, Ui, field_of, party_for, party_home, pin_of, render_status};
use crate::{WebState, random_token};

/// Longest value a date field of the exception may hold before it is read: a date is ten
/// characters, and an error message must not echo a pasted page back.
const MAX_DATE_CHARS: usize = 20;

#[derive(Deserialize, Default, Debug, Clone)]
pub struct SingleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    chiave: String,
    #[serde(default)]
    tipo: String,
    #[serde(default)]
    anno_spesa: String,
    #[serde(default)]
    origine: String,
    #[serde(default)]
    cf_cessionario: String,
    #[serde(default)]
    importo: String,
    #[serde(default)]
    data_comunicazione: String,
    #[serde(default)]
    eccezione: String,
    #[serde(default)]
    no_tax_area: String,
    // The facts of the exception (R-OPT-STOP), named as `Fact::column` and the CSV columns.
    #[serde(default)]
    data_cilas: String,
    #[serde(default)]
    data_delibera: String,
    #[serde(default)]
    data_titolo: String,
    #[serde(default)]
    data_inizio_lavori: String,
    #[serde(default)]
    data_accordo: String,
    #[serde(default)]
    acconto_versato: String,
    #[serde(default)]
    dichiarazione_congiunta: String,
    #[serde(default)]
    data_preliminare: String,
    #[serde(default)]
    data_piano: String,
    #[serde(default)]
    data_domanda_contributo: String,
    #[serde(default)]
    data_fattura: String,
    #[serde(default)]
    requisito_barriere: String,
    #[serde(default)]
    pin: String,
}

impl SingleForm {
    /// What the form holds for one fact of the exception.
    fn fact(&self, fact: Fact) -> &str {
        match fact {
            Fact::CilasFiled => &self.data_cilas,
            Fact::Resolution => &self.data_delibera,
            Fact::PermitApplied => &self.data_titolo,
            Fact::WorksStarted => &self.data_inizio_lavori,
            Fact::Agreement => &self.data_accordo,
            Fact::DepositPaid => &self.acconto_versato,
            Fact::JointDeclaration => &self.dichiarazione_congiunta,
            Fact::ContractRegistered => &self.data_preliminare,
            Fact::PlanApproved => &self.data_piano,
            Fact::AidApplied => &self.data_domanda_contributo,
            Fact::Invoice => &self.data_fattura,
            Fact::BarriereSubject => &self.requisito_barriere,
        }
    }
}

pub async fn page(State(state): State<WebState>, ui: Ui, Path(cf): Path<String>) -> Response {
    let party = match party_for(&state, &ui, &cf).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let notice = ui.take_notice(&state).await;
    let form = SingleForm {
        chiave: random_token(),
        origine: "sconto".into(),
        ..SingleForm::default()
    };
    show(
        &state,
        &ui,
        &party,
        &form,
        &FieldErrors::default(),
        None,
        notice,
        StatusCode::OK,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn show(
    state: &WebState,
    ui: &Ui,
    party: &Party,
    form: &SingleForm,
    errors: &FieldErrors,
    report: Option<(&ImportReport, &FieldErrors)>,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let pending = pending_communications(state, ui, party).await;
    let mut shell = ui.party_shell("Comunicazioni dell'opzione", party);
    shell.notice = notice;
    let upload_errors = report.map(|(_, e)| e.clone()).unwrap_or_default();
    render_status(
        status,
        layout_page(
            shell,
            html! {
                h1 { "Comunicazioni dell'opzione" }
                p.lead { "Sconto in fattura o cessione del credito per le spese di " strong { (party.name) } " (beneficiario). Il fornitore o il primo cessionario dovrà poi accettarla." }
                (single_form(state, ui, form, errors))
                hr.my-5;
                (upload_form(ui, &upload_errors))
                hr.my-5;
                (pending_list(state, ui, party, &pending))
            },
        ),
    )
}

fn single_form(state: &WebState, ui: &Ui, f: &SingleForm, errors: &FieldErrors) -> Markup {
    html! {
        section aria-labelledby="singola-titolo" {
            h2.h3 #singola-titolo { "Una comunicazione" }
            (error_summary(errors))
            form method="post" novalidate {
                (csrf_field(&ui.csrf))
                input type="hidden" name="chiave" value=(f.chiave);
                div.row.g-3 {
                    div.col-md-6 {
                        div.select-wrapper.mb-4 {
                            label for="tipo" { "Tipo di credito (obbligatorio)" }
                            select #tipo name="tipo" required {
                                option value="" selected[f.tipo.is_empty()] { "Scegli il tipo" }
                                @for t in state.app.catalogue.types() {
                                    option value=(t.key) selected[t.key == f.tipo] { (t.name) }
                                }
                            }
                            @if let Some(e) = errors.of("tipo") { div.invalid-feedback.d-block #tipo-errore { (super::layout::message(e)) } }
                        }
                    }
                    div.col-md-3 { (Field::text("anno_spesa", "Anno della spesa", &f.anno_spesa).required().inputmode("numeric").render(errors)) }
                    div.col-md-3 {
                        fieldset.mb-4 {
                            legend.h6 { "Opzione" }
                            div.form-check.form-check-inline {
                                input #origine-sconto type="radio" name="origine" value="sconto" checked[f.origine != "cessione"];
                                label for="origine-sconto" { "Sconto in fattura" }
                            }
                            div.form-check.form-check-inline {
                                input #origine-cessione type="radio" name="origine" value="cessione" checked[f.origine == "cessione"];
                                label for="origine-cessione" { "Cessione del credito" }
                            }
                        }
                    }
                    div.col-md-6 { (Field::text("cf_cessionario", "Codice fiscale del fornitore o primo cessionario", &f.cf_cessionario).required().cf().render(errors)) }
                    div.col-md-3 { (Field::text("importo", "Importo totale del credito", &f.importo).required().inputmode("decimal").hint("per esempio 12.345,67").render(errors)) }
                    div.col-md-3 { (Field::text("data_comunicazione", "Data della comunicazione", &f.data_comunicazione).hint("gg/mm/aaaa; vuota: oggi").render(errors)) }
                    div.col-12 { (exception_fields(&state.app.opt_stop, f, errors)) }
                    div.col-12 {
                        div.form-check.mb-4 {
                            input #no_tax_area type="checkbox" name="no_tax_area" value="si" checked[f.no_tax_area == "si"] aria-describedby="no_tax_area-aiuto";
                            label for="no_tax_area" { "Il beneficiario è nella no tax area" }
                            small.form-text.d-block #no_tax_area-aiuto { (super::layout::message("Solo per l'ecobonus delle spese 2017–2021 (art. 14): consente la cessione a banche e intermediari finanziari, anche nelle cessioni successive (R-ECO-2018).")) }
                        }
                    }
                }
                (pin_field(&ui.user, errors))
                button.btn.btn-primary type="submit" { "Invia la comunicazione" }
            }
        }
    }
}

/// R-OPT-STOP: the list of exceptions and every fact any of them may need. Without
/// JavaScript the page cannot show only the chosen exception's facts, so each field says
/// which exceptions (by their number in the list) need it.
fn exception_fields(table: &OptStopTable, f: &SingleForm, errors: &FieldErrors) -> Markup {
    let exceptions = table.exceptions();
    let hint = |fact: Fact| -> String {
        let numbers: Vec<String> = exceptions
            .iter()
            .enumerate()
            .filter(|(_, e)| e.facts().contains(&fact))
            .map(|(i, _)| (i + 1).to_string())
            .collect();
        format!("Serve per le eccezioni {}.", numbers.join(", "))
    };
    let from = super::layout::date(table.from);
    let select_error = errors.of("eccezione");
    html! {
        fieldset.mb-4 {
            legend.h6 { "Eccezione al blocco delle opzioni (DL 11/2023 art. 2)" }
            div.select-wrapper.mb-4 {
                label for="eccezione" { "Eccezione" }
                select #eccezione name="eccezione" aria-describedby="eccezione-aiuto" aria-invalid=[select_error.map(|_| "true")] {
                    option value="" selected[f.eccezione.is_empty()] { "Nessuna" }
                    @for (i, e) in exceptions.iter().enumerate() {
                        option value=(e.code) selected[e.code.as_str() == f.eccezione.trim()] { (i + 1) ". " (e.label) }
                    }
                }
                small.form-text #eccezione-aiuto { "Dal " (from) " i bonus edilizi ammettono l'opzione solo in uno di questi casi, indicando i dati che il caso richiede. Una descrizione libera non è un'eccezione." }
                @if let Some(e) = select_error { div.invalid-feedback.d-block #eccezione-errore { (e) } }
            }
            div.row.g-3 {
                @for fact in Fact::ALL.into_iter().filter(|f| f.is_date()) {
                    @let h = hint(fact);
                    div.col-md-4 { (Field::text(fact.column(), fact.label(), f.fact(fact)).hint(&h).render(errors)) }
                }
            }
            @for fact in [Fact::DepositPaid, Fact::JointDeclaration] {
                @let id = fact.column();
                @let error = errors.of(id);
                div.form-check.mb-3 {
                    input id=(id) type="checkbox" name=(id) value="si" checked[f.fact(fact) == "si"] aria-describedby={ (id) "-aiuto" };
                    label for=(id) { (fact.label()) }
                    small.form-text.d-block id={ (id) "-aiuto" } { (hint(fact)) }
                    @if let Some(e) = error { div.invalid-feedback.d-block id={ (id) "-errore" } { (e) } }
                }
            }
            @let id = Fact::BarriereSubject.column();
            @let error = errors.of(id);
            div.select-wrapper.mb-4 {
                label for=(id) { (Fact::BarriereSubject.label()) }
                select id=(id) name=(id) aria-describedby={ (id) "-aiuto" } aria-invalid=[error.map(|_| "true")] {
                    option value="" selected[f.requisito_barriere.is_empty()] { "Non indicato" }
                    @for s in BarriereSubject::ALL {
                        option value=(s.key()) selected[s.key() == f.requisito_barriere] { (s.label()) }
                    }
                }
                small.form-text id={ (id) "-aiuto" } { (hint(Fact::BarriereSubject)) }
                @if let Some(e) = error { div.invalid-feedback.d-block id={ (id) "-errore" } { (e) } }
            }
        }
    }
}

/// The exception the form declares, if any; errors go next to their fields.
fn to_exception(f: &SingleForm, errors: &mut FieldErrors) -> Option<DeclaredException> {
    let mut scratch: Vec<(Fact, Option<chrono::NaiveDate>)> = Vec::new();
    let mut any_fact = false;
    for fact in Fact::ALL.into_iter().filter(|f| f.is_date()) {
        let value = f.fact(fact).trim();
        any_fact |= !value.is_empty();
        if value.chars().count() > MAX_DATE_CHARS {
            errors.field(
                fact.column(),
                "Data non valida: scrivere gg/mm/aaaa, per esempio 10/01/2023",
            );
            continue;
        }
        match parse_date(value) {
            Ok(on) => scratch.push((fact, on)),
            Err(e) => errors.field(fact.column(), e),
        }
    }
    let deposit_paid = f.acconto_versato == "si";
    let joint_declaration = f.dichiarazione_congiunta == "si";
    let subject = match f.requisito_barriere.trim() {
        "" => None,
        value => match BarriereSubject::parse(value) {
            Some(s) => Some(s),
            None => {
                errors.field(
                    Fact::BarriereSubject.column(),
                    "Scegliere un requisito dall'elenco",
                );
                None
            }
        },
    };
    any_fact |= deposit_paid || joint_declaration || subject.is_some();
    if f.eccezione.trim().is_empty() {
        if any_fact {
            errors.field(
                "eccezione",
                "Scegliere l'eccezione a cui si riferiscono i dati indicati",
            );
        }
        return None;
    }
    let code = match ExceptionCode::parse(&f.eccezione) {
        Ok(code) => code,
        Err(_) => {
            errors.field("eccezione", "Scegliere un'eccezione dall'elenco");
            return None;
        }
    };
    let mut declared = DeclaredException::new(code);
    for (fact, on) in scratch {
        declared.set_date(fact, on);
    }
    declared.deposit_paid = deposit_paid;
    declared.joint_declaration = joint_declaration;
    declared.barriere_subject = subject;
    Some(declared)
}

fn upload_form(ui: &Ui, errors: &FieldErrors) -> Markup {
    html! {
        section aria-labelledby="file-titolo" {
            h2.h3 #file-titolo { "Da file CSV" }
            p {
                "Una riga per comunicazione, separatore «;», con l'intestazione "
                code { "cf_beneficiario;tipo;anno_spesa;origine;cf_cessionario;importo;data_comunicazione" }
                " (colonne facoltative " code { "riferimento" } "; " code { "no_tax_area" } " con " code { "si" } " per l'ecobonus 2017–2021; per le comunicazioni dal 17/02/2023 " code { "eccezione" } " con il codice dell'eccezione, per esempio " code { "SB_CILAS_NON_COND" } ", e i suoi dati nelle colonne con i nomi dei campi qui sopra: "
                @for (i, fact) in Fact::ALL.iter().enumerate() { @if i > 0 { ", " } code { (fact.column()) } }
                "). Ogni riga valida è registrata; le altre sono elencate con il motivo. Ricaricare lo stesso file non registra nulla due volte."
            }
            (error_summary(errors))
            form method="post" action="comunicazioni/file" enctype="multipart/form-data" novalidate {
                (csrf_field(&ui.csrf))
                div.mb-4 {
                    label.form-label for="file" { "File CSV (massimo 32 MB)" }
                    input.form-control #file type="file" name="file" accept=".csv,text/csv" required;
                    @if let Some(e) = errors.of("file") { div.invalid-feedback.d-block #file-errore { (super::layout::message(e)) } }
                }
                @if ui.user.method != cessio_app::LoginMethod::Strong {
                    (Field::text("pin-file", "PIN dispositivo", "").kind("password").required().autocomplete("off").inputmode("numeric").render(errors))
                }
                button.btn.btn-primary type="submit" { "Carica il file" }
            }
        }
    }
}

/// A file's rows and what became of each (the bulk job's page shows it).
pub(super) fn rows_table(r: &ImportReport) -> Markup {
    html! {
        div.table-responsive tabindex="0" role="region" aria-label="Tabella (scorrevole)" {
            table.table.cessio-table {
                caption { "Esito riga per riga" }
                thead { tr { th scope="col" { "Riga" } th scope="col" { "Riferimento" } th scope="col" { "Esito" } th scope="col" { "Protocollo o motivo" } } }
                tbody {
                    @for row in &r.rows {
                        tr {
                            td { (row.line) }
                            td { (row.reference.as_deref().unwrap_or("")) }
                            td {
                                @if row.already_registered { "Già registrata" }
                                @else if row.protocol.is_some() { "Registrata" }
                                @else { "Scartata" }
                            }
                            td {
                                @if let Some(p) = &row.protocol { span.cessio-code { (p) } }
                                @if let Some(m) = &row.message { (m) }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn pending_communications(
    state: &WebState,
    ui: &Ui,
    party: &Party,
) -> Result<Vec<MovementRow>, AppError> {
    let filter = MovementFilter {
        cedente_cf: Some(party.cf.as_str().to_string()),
        state: Some(MovementState::InAttesa),
        ..MovementFilter::default()
    };
    let rows = state.app.movements(&ui.user, party.id, &filter).await?;
    let mut sent: Vec<MovementRow> = rows
        .into_iter()
        .filter(|r| r.kind == TransferKind::Issue && r.cedente.cf == party.cf.as_str())
        .collect();
    // One line per communication, not per rata.
    sent.sort_by_key(|r| (r.credit, r.id));
    sent.dedup_by_key(|r| r.credit);
    Ok(sent)
}

fn pending_list(
    state: &WebState,
    ui: &Ui,
    party: &Party,
    pending: &Result<Vec<MovementRow>, AppError>,
) -> Markup {
    html! {
        section aria-labelledby="attesa-titolo" {
            h2.h3 #attesa-titolo { "Comunicazioni in attesa di risposta" }
            p { (super::layout::message("Si possono annullare fino al giorno 5 del mese successivo all'invio, se non ancora accettate (R-OPT-ANNUL).")) }
            @match pending {
                Err(e) => { div.alert.alert-warning role="status" { (super::layout::message(&super::refusal(e))) } }
                Ok(rows) if rows.is_empty() => { p { "Nessuna." } }
                Ok(rows) => {
                    div.table-responsive tabindex="0" role="region" aria-label="Tabella (scorrevole)" {
                        table.table.cessio-table {
                            caption { "Comunicazioni inviate non ancora accettate" }
                            thead { tr {
                                th scope="col" { "Protocollo" } th scope="col" { "Registrata il" } th scope="col" { "Tipo" }
                                th scope="col" { "Fornitore o cessionario" } th scope="col" { "Annullamento" }
                            } }
                            tbody {
                                @for r in rows {
                                    tr {
                                        td.cessio-code { (r.protocol) }
                                        td { (datetime(r.registered_at)) }
                                        td { (type_name(&state.app.catalogue, &r.type_key)) }
                                        td.cessio-code { (r.cessionario.cf) }
                                        td {
                                            form method="post" action={ (party_home(party)) "/comunicazioni/annulla" } {
                                                (csrf_field(&ui.csrf))
                                                input type="hidden" name="credito" value=(r.credit);
                                                input type="hidden" name="chiave" value=(random_token());
                                                @if ui.user.method != cessio_app::LoginMethod::Strong {
                                                    label.visually-hidden for={ "pin-annulla-" (r.credit) } { "PIN per annullare la comunicazione " (r.protocol) }
                                                    input.form-control.form-control-sm.d-inline-block.w-auto.me-2 id={ "pin-annulla-" (r.credit) } type="password" name="pin" autocomplete="off" inputmode="numeric" placeholder="PIN";
                                                }
                                                button.btn.btn-outline-danger.btn-sm type="submit" { "Annulla" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn to_input(party: &Party, f: &SingleForm, errors: &mut FieldErrors) -> Option<OptionInput> {
    if f.tipo.trim().is_empty() {
        errors.field("tipo", "Scegliere il tipo di credito");
    }
    let year = match parse_year(&f.anno_spesa) {
        Ok(Some(y)) => Some(y),
        Ok(None) => {
            errors.field("anno_spesa", "Indicare l'anno della spesa");
            None
        }
        Err(e) => {
            errors.field("anno_spesa", e);
            None
        }
    };
    if f.cf_cessionario.trim().is_empty() {
        errors.field(
            "cf_cessionario",
            "Indicare il codice fiscale del fornitore o cessionario",
        );
    }
    let total = match Cents::parse_positive_amount(&f.importo) {
        Ok(a) => Some(a),
        Err(e) => {
            errors.field("importo", e.to_string());
            None
        }
    };
    let date = match parse_date(&f.data_comunicazione) {
        Ok(d) => d,
        Err(e) => {
            errors.field("data_comunicazione", e);
            None
        }
    };
    let exception = to_exception(f, errors);
    let origin = if f.origine == "cessione" {
        Origin::Cessione
    } else {
        Origin::Sconto
    };
    if !errors.is_empty() {
        return None;
    }
    Some(OptionInput {
        beneficiary_cf: party.cf.as_str().to_string(),
        type_key: f.tipo.trim().to_string(),
        expense_year: year?,
        origin,
        holder_cf: f.cf_cessionario.trim().to_string(),
        total: total?,
        communicated_on: date,
        exception,
    })
}

/// The form field an F8 refusal concerns.
fn option_field(e: &AppError) -> Option<&'static str> {
    match e {
        AppError::Invalid { field, .. } => match field.as_str() {
            "type_key" => Some("tipo"),
            "expense_year" => Some("anno_spesa"),
            "holder_cf" => Some("cf_cessionario"),
            "total" => Some("importo"),
            "communicated_on" => Some("data_comunicazione"),
            _ => None,
        },
        AppError::Cf(_) | AppError::CfUnknown { .. } => Some("cf_cessionario"),
        AppError::Rule { rule: "R-PA", .. } => Some("cf_cessionario"),
        AppError::OptStop(e) => Some(e.fact().map_or("eccezione", Fact::column)),
        AppError::Amount(_) => Some("importo"),
        other => field_of(other),
    }
}

pub async fn submit(
    State(state): State<WebState>,
    PartyForm(ui, party, f): PartyForm<SingleForm>,
) -> Response {
    let mut errors = FieldErrors::default();
    let Some(input) = to_input(&party, &f, &mut errors) else {
        return show(
            &state,
            &ui,
            &party,
            &f,
            &errors,
            None,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let pin = pin_of(&f.pin);
    match state
        .app
        .communicate_option_declaring(&ui.user, &f.chiave, pin, &input, f.no_tax_area == "si")
        .await
    {
        Ok(done) => {
            let credit = &done.credit;
            let total =
                Cents::checked_sum(credit.rate.iter().map(|r| r.amount)).unwrap_or(Cents::MAX);
            let mut notice = Notice::success("Comunicazione registrata")
                .receipt(&party, done.operation_id)
                .line("Protocollo", credit.protocol.clone())
                .line("Importo", amount(total))
                .line("Rate", credit.rate.len().to_string())
                .line("Tracciabile", if credit.tracciabile { "sì" } else { "no" })
                .line(
                    "Stato",
                    "in attesa di accettazione del fornitore o cessionario",
                );
            for r in &credit.rate {
                notice = notice.line(
                    format!("Rata {} ({})", r.index, r.year),
                    format!(
                        "{} — codice tributo {} — {}",
                        amount(r.amount),
                        r.codice_tributo,
                        r.codice_univoco
                    ),
                );
            }
            ui.leave_notice(&state, notice).await;
            super::see_other(&format!("{}/comunicazioni", party_home(&party)))
        }
        Err(e) => {
            match option_field(&e) {
                Some(id) => errors.field(id, super::refusal(&e)),
                None => errors.form(super::refusal(&e)),
            }
            let status = crate::problem::status_of(e.code());
            // A refused request changed nothing: the same key may carry the corrected one
            // only if it is the same request, so a correction gets a new key.
            let form = SingleForm {
                chiave: if matches!(e, AppError::PinWrong { .. } | AppError::PinRequired) {
                    f.chiave.clone()
                } else {
                    random_token()
                },
                ..f
            };
            show(&state, &ui, &party, &form, &errors, None, None, status).await
        }
    }
}

pub async fn upload(
    State(state): State<WebState>,
    ui: Ui,
    Path(cf): Path<String>,
    mut multipart: Multipart,
) -> Response {
    let mut csrf = String::new();
    let mut pin = String::new();
    let mut file: Option<Vec<u8>> = None;
    let mut errors = FieldErrors::default();
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_string();
                match name.as_str() {
                    "csrf" => csrf = field.text().await.unwrap_or_default(),
                    "pin-file" => pin = field.text().await.unwrap_or_default(),
                    "file" => match field.bytes().await {
                        Ok(b) => file = Some(b.to_vec()),
                        Err(e) => errors.field("file", format!("File non leggibile: {e}")),
                    },
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(e) => {
                errors.field("file", format!("Invio non valido: {}", e.body_text()));
                break;
            }
        }
    }
    let party = match ui.form_party(&state, &csrf, &cf).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let form = SingleForm {
        chiave: random_token(),
        origine: "sconto".into(),
        ..SingleForm::default()
    };
    let bytes = match file {
        Some(b) if !b.is_empty() => b,
        _ => {
            if errors.is_empty() {
                errors.field("file", "Scegliere un file CSV");
            }
            let report = ImportReport::default();
            return show(
                &state,
                &ui,
                &party,
                &form,
                &FieldErrors::default(),
                Some((&report, &errors)),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let pin = pin_of(&pin);
    match state.app.submit_import_job(&ui.user, pin, &bytes).await {
        Ok(job) => {
            crate::api::jobs::run_jobs(&state);
            super::see_other(&super::jobs::href(&party, job.id))
        }
        Err(e) => {
            let id = if field_of(&e).is_some() {
                "pin-file"
            } else {
                "file"
            };
            errors.field(id, super::refusal(&e));
            let status = crate::problem::status_of(e.code());
            let report = ImportReport::default();
            show(
                &state,
                &ui,
                &party,
                &form,
                &FieldErrors::default(),
                Some((&report, &errors)),
                None,
                status,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct AnnulForm {
    #[serde(default)]
    csrf: String,
    credito: i64,
    chiave: String,
    #[serde(default)]
    pin: String,
}

pub async fn annul(
    State(state): State<WebState>,
    PartyForm(ui, party, f): PartyForm<AnnulForm>,
) -> Response {
    let pin = pin_of(&f.pin);
    match state
        .app
        .annul_option(&ui.user, &f.chiave, pin, f.credito)
        .await
    {
        Ok(r) => {
            ui.leave_notice(
                &state,
                Notice::success("Comunicazione annullata")
                    .line("Protocollo dell'operazione", r.operation_id.to_string())
                    .line("Importo", amount(r.amount)),
            )
            .await;
            super::see_other(&format!("{}/comunicazioni", party_home(&party)))
        }
        Err(e) => {
            let form = SingleForm {
                chiave: random_token(),
                origine: "sconto".into(),
                ..SingleForm::default()
            };
            let mut errors = FieldErrors::default();
            errors.form(format!("Annullamento non eseguito: {}", super::refusal(&e)));
            let status = crate::problem::status_of(e.code());
            show(&state, &ui, &party, &form, &errors, None, None, status).await
        }
    }
}

posted!(AnnulForm, SingleForm);

//! F5 Gestione F24: what is usable by codice tributo and year, the F24 choice of
//! tracciabili rate, and an F24 reserved first (prenotato), then confirmed or discarded.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use cessio_app::{AppError, F24DebitInput, F24Form, F24LineInput, F24Reservation};
use cessio_core::f24::F24Choice;
use cessio_core::f24_debits::F24Section;
use cessio_core::money::Cents;
use cessio_core::time::rome_date;
use cessio_store::Party;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{
    Field, FieldErrors, amount, csrf_field, date, error_summary, page as layout_page, parse_date,
    parse_year, pin_field,
};
use super::posted::{PartyForm, posted};
use super::{
    Notice, Ui, error_page, field_of, party_for, party_home, pin_of, render_status, see_other,
};
use crate::{WebState, random_token};

/// Lines an F24 form offers; more can be sent through the API.
const FORM_LINES: usize = 5;
/// Debit lines on the page; the API takes up to `MAX_DEBIT_LINES`.
const DEBIT_LINES: usize = 6;

#[derive(Deserialize, Default)]
pub struct F24Query {
    /// A reservation just made, to confirm or discard.
    #[serde(default)]
    prenotazione: Option<i64>,
}

pub async fn page(
    State(state): State<WebState>,
    ui: Ui,
    Path(cf): Path<String>,
    Query(q): Query<F24Query>,
) -> Response {
    let party = match party_for(&state, &ui, &cf).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let notice = ui.take_notice(&state).await;
    show(
        &state,
        &ui,
        &party,
        &ReserveForm::default(),
        &FieldErrors::default(),
        q.prenotazione,
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
    form: &ReserveForm,
    errors: &FieldErrors,
    reservation: Option<i64>,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let availability = match state.app.f24_availability(&ui.user, party.id).await {
        Ok(a) => a,
        Err(e) => return error_page(Some(ui), &e),
    };
    let choices = match state.app.f24_choices(&ui.user, party.id).await {
        Ok(c) => c,
        Err(e) => return error_page(Some(ui), &e),
    };
    let base = format!("{}/f24", party_home(party));
    let mut shell = ui.party_shell("Gestione F24", party);
    shell.notice = notice;
    let today = rome_date(state.app.now());
    let key = if form.chiave.is_empty() {
        random_token()
    } else {
        form.chiave.clone()
    };
    render_status(
        status,
        layout_page(
            shell,
            html! {
                h1 { "Gestione F24 (compensazione)" }
                p.lead { "I crediti si usano in compensazione per codice tributo e anno di riferimento: il modello F24 prima è prenotato, poi confermato (utilizzato) o scartato (la prenotazione si libera)." }
                @if let Some(id) = reservation {
                    (end_forms(ui, &base, id))
                }
                section.mb-5 aria-labelledby="disp-titolo" {
                    h2.h3 #disp-titolo { "Disponibilità" }
                    @if availability.is_empty() {
                        p { "Nessun credito utilizzabile in F24." }
                    } @else {
                        div.table-responsive tabindex="0" role="region" aria-label="Tabella (scorrevole)" {
                            table.table.cessio-table {
                                caption { "Importi per codice tributo e anno di riferimento" }
                                thead { tr {
                                    th scope="col" { "Codice tributo" } th scope="col" { "Anno" } th scope="col" { "Tipo" }
                                    th.cessio-amount scope="col" { "Utilizzabile oggi" } th.cessio-amount scope="col" { "Prenotato in F24" }
                                    th.cessio-amount scope="col" { "Ceduto in attesa di risposta" }
                                    th.cessio-amount scope="col" { "In attesa della scelta" } th.cessio-amount scope="col" { "Anni futuri" }
                                    th scope="col" { "Ultimo giorno" } th.cessio-amount scope="col" { "Scaduto" }
                                } }
                                tbody {
                                    @for r in &availability {
                                        tr {
                                            th scope="row" { (r.codice_tributo) }
                                            td { (r.year) }
                                            td { (r.type_name) }
                                            td.cessio-amount { strong { (amount(r.usable)) } }
                                            td.cessio-amount { (amount(r.reserved)) }
                                            td.cessio-amount { (amount(r.pending_in_cession)) }
                                            td.cessio-amount { (amount(r.awaiting_choice)) }
                                            td.cessio-amount {
                                                (amount(r.not_yet_usable))
                                                @if let Some(d) = r.usable_from { br; small { "dal " (date(d)) } }
                                            }
                                            td { @if let Some(d) = r.last_day { (date(d)) } }
                                            td.cessio-amount { (amount(r.expired)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                (reserve_form(ui, &base, form, &key, today, errors))
                (choice_table(ui, &base, &choices))
            },
        ),
    )
}

fn end_forms(ui: &Ui, base: &str, id: i64) -> Markup {
    html! {
        section.alert.alert-info aria-labelledby="prenotazione-titolo" {
            h2.h4 #prenotazione-titolo { "Prenotazione n. " (id) ": conferma o scarta" }
            p { "Confermando, gli importi sono utilizzati in via definitiva; scartando, la prenotazione si libera e gli importi tornano disponibili." }
            form method="post" action={ (base) "/fine" } novalidate {
                (csrf_field(&ui.csrf))
                input type="hidden" name="prenotazione" value=(id);
                input type="hidden" name="chiave" value=(random_token());
                @if ui.user.method != cessio_app::LoginMethod::Strong {
                    div.form-group.mb-3 {
                        label.active for="pin-fine" { "PIN dispositivo" }
                        input.form-control #pin-fine type="password" name="pin" autocomplete="off" inputmode="numeric";
                    }
                }
                button.btn.btn-primary.me-2 type="submit" name="esito" value="conferma" { "Conferma l'utilizzo" }
                button.btn.btn-outline-danger type="submit" name="esito" value="scarta" { "Scarta il modello" }
            }
        }
    }
}

fn reserve_form(
    ui: &Ui,
    base: &str,
    f: &ReserveForm,
    key: &str,
    today: chrono::NaiveDate,
    errors: &FieldErrors,
) -> Markup {
    let payment = if f.data.is_empty() {
        date(today)
    } else {
        f.data.clone()
    };
    html! {
        section.mb-5 aria-labelledby="f24-titolo" {
            h2.h3 #f24-titolo { "Nuovo modello F24" }
            p { (super::layout::message("Se una riga supera l'importo utilizzabile, l'intero modello è scartato (R-F24-OVER).")) }
            (error_summary(errors))
            form method="post" action=(base) novalidate {
                (csrf_field(&ui.csrf))
                input type="hidden" name="chiave" value=(key);
                (Field::text("data", "Data di pagamento", &payment).required().hint("gg/mm/aaaa").render(errors))
                div.table-responsive tabindex="0" role="region" aria-label="Tabella (scorrevole)" {
                    table.table.cessio-table {
                        caption { "Righe del modello (sezione crediti)" }
                        thead { tr { th scope="col" { "Riga" } th scope="col" { "Codice tributo" } th scope="col" { "Anno di riferimento" } th scope="col" { "Importo a credito compensato" } } }
                        tbody {
                            @for i in 0..FORM_LINES {
                                @let line = f.lines.get(i).cloned().unwrap_or_default();
                                @let (code_id, year_id, amount_id) = (format!("codice_{i}"), format!("anno_{i}"), format!("importo_{i}"));
                                tr {
                                    td { (i + 1) }
                                    td {
                                        label.visually-hidden for=(code_id) { "Codice tributo della riga " (i + 1) }
                                        input.form-control.cessio-table-input id=(code_id) name=(code_id) value=(line.0) inputmode="numeric";
                                    }
                                    td {
                                        label.visually-hidden for=(year_id) { "Anno della riga " (i + 1) }
                                        input.form-control.cessio-table-input id=(year_id) name=(year_id) value=(line.1) inputmode="numeric";
                                    }
                                    td {
                                        label.visually-hidden for=(amount_id) { "Importo della riga " (i + 1) }
                                        input.form-control.cessio-table-input.is-invalid[errors.of(&amount_id).is_some()]
                                            id=(amount_id) name=(amount_id) value=(line.2) inputmode="decimal"
                                            aria-describedby=[errors.of(&amount_id).map(|_| format!("{amount_id}-errore"))];
                                        @if let Some(e) = errors.of(&amount_id) { div.invalid-feedback.d-block id={ (amount_id) "-errore" } { (super::layout::message(e)) } }
                                    }
                                }
                            }
                        }
                    }
                }
                (debit_table(f, errors))
                (pin_field(&ui.user, errors))
                button.btn.btn-primary type="submit" { "Prenota il modello F24" }
            }
        }
    }
}

/// The debits the F24 pays. Needed to check that the credits do not exceed them
/// (R-F24-BALANCE), and from 2025 for banks, intermediaries and insurers, whose building
/// credits may not pay INPS contributions or INAIL premiums (R-BAN-BANK-INPS).
fn debit_table(f: &ReserveForm, errors: &FieldErrors) -> Markup {
    html! {
        p.mt-3 { (super::layout::message("Righe a debito: i tributi, i contributi e i premi che il modello paga. I crediti compensati non possono superarle (R-F24-BALANCE). Dal 2025 banche, intermediari finanziari e assicurazioni le devono indicare: i crediti dei bonus edilizi non pagano contributi INPS e premi INAIL (R-BAN-BANK-INPS).")) }
        div.table-responsive tabindex="0" role="region" aria-label="Tabella (scorrevole)" {
            table.table.cessio-table {
                caption { "Righe del modello (sezioni a debito)" }
                thead { tr { th scope="col" { "Riga" } th scope="col" { "Sezione" } th scope="col" { "Codice tributo o causale" } th scope="col" { "Importo a debito" } } }
                tbody {
                    @for i in 0..DEBIT_LINES {
                        @let line = f.debits.get(i).cloned().unwrap_or_default();
                        @let (section_id, code_id, amount_id) = (format!("debito_sezione_{i}"), format!("debito_codice_{i}"), format!("debito_importo_{i}"));
                        tr {
                            td { (i + 1) }
                            td {
                                label.visually-hidden for=(section_id) { "Sezione della riga a debito " (i + 1) }
                                select.form-select.cessio-table-input id=(section_id) name=(section_id) {
                                    @for s in F24Section::ALL {
                                        option value=(s.as_str()) selected[line.0 == s.as_str()] { (s.label()) }
                                    }
                                }
                            }
                            td {
                                label.visually-hidden for=(code_id) { "Codice della riga a debito " (i + 1) }
                                input.form-control.cessio-table-input id=(code_id) name=(code_id) value=(line.1);
                            }
                            td {
                                label.visually-hidden for=(amount_id) { "Importo della riga a debito " (i + 1) }
                                input.form-control.cessio-table-input.is-invalid[errors.of(&amount_id).is_some()]
                                    id=(amount_id) name=(amount_id) value=(line.2) inputmode="decimal"
                                    aria-describedby=[errors.of(&amount_id).map(|_| format!("{amount_id}-errore"))];
                                @if let Some(e) = errors.of(&amount_id) { div.invalid-feedback.d-block id={ (amount_id) "-errore" } { (super::layout::message(e)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn choice_label(c: &F24Choice) -> String {
    match c {
        F24Choice::NotDeclared => "Non dichiarata".into(),
        F24Choice::Declared { on } => format!("Dichiarata il {}", date(*on)),
        F24Choice::Revoked { on } => format!("Revocata il {}", date(*on)),
    }
}

fn choice_table(ui: &Ui, base: &str, choices: &[cessio_app::ChoiceRow]) -> Markup {
    let tracciabili: Vec<_> = choices.iter().filter(|c| c.tracciabile).collect();
    html! {
        section aria-labelledby="scelta-titolo" {
            h2.h3 #scelta-titolo { "Scelta di utilizzo in F24 (rate tracciabili)" }
            p { (super::layout::message("Una rata tracciabile si usa in F24 solo dopo averlo scelto; finché la scelta vale non è cedibile. La scelta si può revocare (R-F24-CHOICE).")) }
            @if tracciabili.is_empty() {
                p { "Nessuna rata tracciabile." }
            } @else {
                div.table-responsive tabindex="0" role="region" aria-label="Tabella (scorrevole)" {
                    table.table.cessio-table {
                        caption { "Rate tracciabili" }
                        thead { tr {
                            th scope="col" { "Codice univoco" } th scope="col" { "Codice tributo" } th scope="col" { "Anno" }
                            th.cessio-amount scope="col" { "Disponibile" } th scope="col" { "Scelta" } th scope="col" { "Azione" }
                        } }
                        tbody {
                            @for c in tracciabili {
                                @let declared = matches!(c.choice, F24Choice::Declared { .. });
                                tr {
                                    td.cessio-code { (c.codice_univoco) }
                                    td { (c.codice_tributo) }
                                    td { (c.year) }
                                    td.cessio-amount { (amount(c.available)) }
                                    td { (choice_label(&c.choice)) }
                                    td {
                                        form method="post" action={ (base) "/scelta" } {
                                            (csrf_field(&ui.csrf))
                                            input type="hidden" name="rata" value=(c.rata);
                                            input type="hidden" name="chiave" value=(random_token());
                                            input type="hidden" name="azione" value=(if declared { "revoca" } else { "dichiara" });
                                            @if ui.user.method != cessio_app::LoginMethod::Strong {
                                                label.visually-hidden for={ "pin-scelta-" (c.rata) } { "PIN per la rata " (c.codice_univoco) }
                                                input.form-control.form-control-sm.d-inline-block.w-auto.me-2 id={ "pin-scelta-" (c.rata) } type="password" name="pin" autocomplete="off" inputmode="numeric" placeholder="PIN";
                                            }
                                            button.btn.btn-outline-primary.btn-sm type="submit" {
                                                @if declared { "Revoca la scelta" } @else { "Scegli l'utilizzo in F24" }
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

/// What the F24 form sent, kept verbatim to show it back.
#[derive(Debug, Default)]
struct ReserveForm {
    chiave: String,
    data: String,
    lines: Vec<(String, String, String)>,
    /// (sezione, codice, importo) of the debit lines.
    debits: Vec<(String, String, String)>,
}

impl ReserveForm {
    fn from_pairs(pairs: &[(String, String)]) -> (String, Self, String) {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let lines = (0..FORM_LINES)
            .map(|i| {
                (
                    get(&format!("codice_{i}")),
                    get(&format!("anno_{i}")),
                    get(&format!("importo_{i}")),
                )
            })
            .collect();
        let debits = (0..DEBIT_LINES)
            .map(|i| {
                (
                    get(&format!("debito_sezione_{i}")),
                    get(&format!("debito_codice_{i}")),
                    get(&format!("debito_importo_{i}")),
                )
            })
            .collect();
        (
            get("csrf"),
            ReserveForm {
                chiave: get("chiave"),
                data: get("data"),
                lines,
                debits,
            },
            get("pin"),
        )
    }
}

pub async fn reserve(
    State(state): State<WebState>,
    PartyForm(ui, party, pairs): PartyForm<Vec<(String, String)>>,
) -> Response {
    let (_, form, pin) = ReserveForm::from_pairs(&pairs);
    let mut errors = FieldErrors::default();
    let payment = match parse_date(&form.data) {
        Ok(Some(d)) => Some(d),
        Ok(None) => {
            errors.field("data", "Indicare la data di pagamento");
            None
        }
        Err(e) => {
            errors.field("data", e);
            None
        }
    };
    let mut lines = Vec::new();
    for (i, (code, year, value)) in form.lines.iter().enumerate() {
        if code.trim().is_empty() && year.trim().is_empty() && value.trim().is_empty() {
            continue;
        }
        let amount_id = format!("importo_{i}");
        let year = match parse_year(year) {
            Ok(Some(y)) => Some(y),
            _ => {
                errors.field(
                    &amount_id,
                    format!("Riga {}: indicare l'anno in quattro cifre", i + 1),
                );
                None
            }
        };
        let value = match Cents::parse_positive_amount(value) {
            Ok(a) => Some(a),
            Err(e) => {
                errors.field(&amount_id, format!("Riga {}: {e}", i + 1));
                None
            }
        };
        if code.trim().is_empty() {
            errors.field(
                &amount_id,
                format!("Riga {}: indicare il codice tributo", i + 1),
            );
        }
        if let (Some(year), Some(amount)) = (year, value) {
            lines.push(F24LineInput {
                codice_tributo: code.trim().to_string(),
                year,
                amount,
            });
        }
    }
    if lines.is_empty() && errors.is_empty() {
        errors.form("Compilare almeno una riga del modello");
    }
    let mut debits = Vec::new();
    for (i, (section, code, value)) in form.debits.iter().enumerate() {
        if code.trim().is_empty() && value.trim().is_empty() {
            continue;
        }
        let amount_id = format!("debito_importo_{i}");
        match Cents::parse_positive_amount(value) {
            Ok(amount) => debits.push(F24DebitInput {
                section: section.clone(),
                code: code.trim().to_string(),
                amount,
            }),
            Err(e) => errors.field(&amount_id, format!("Riga a debito {}: {e}", i + 1)),
        }
    }
    let (Some(payment), true) = (payment, errors.is_empty()) else {
        return show(
            &state,
            &ui,
            &party,
            &form,
            &errors,
            None,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let pin = pin_of(&pin);
    match state
        .app
        .reserve_f24(
            &ui.user,
            &form.chiave,
            pin,
            party.id,
            F24Form {
                payment_date: payment,
                lines: &lines,
                debits: &debits,
            },
        )
        .await
    {
        Ok(r) => {
            ui.leave_notice(&state, reservation_notice(&party, &r))
                .await;
            see_other(&format!(
                "{}/f24?prenotazione={}",
                party_home(&party),
                r.reservation
            ))
        }
        Err(e) => {
            match field_of(&e).map(str::to_string).or_else(|| debit_field(&e)) {
                Some(f) => errors.field(&f, super::refusal(&e)),
                None => errors.form(super::refusal(&e)),
            }
            let status = crate::problem::status_of(e.code());
            // A refused F24 reserved nothing; a corrected one is a new request.
            let form = ReserveForm {
                chiave: if matches!(e, AppError::PinWrong { .. } | AppError::PinRequired) {
                    form.chiave
                } else {
                    random_token()
                },
                ..form
            };
            show(&state, &ui, &party, &form, &errors, None, None, status).await
        }
    }
}

/// The page's field for a refused debit line (`debits[i].code` → `debito_importo_i`).
fn debit_field(e: &AppError) -> Option<String> {
    let AppError::Invalid { field, .. } = e else {
        return None;
    };
    let i: usize = field
        .strip_prefix("debits[")?
        .split(']')
        .next()?
        .parse()
        .ok()?;
    Some(format!("debito_importo_{i}"))
}

/// The reservation is the operation that made it: its receipt is the reservation's.
fn reservation_notice(party: &Party, r: &F24Reservation) -> Notice {
    let mut n = Notice::success("Modello F24 prenotato")
        .receipt(party, r.reservation)
        .line("Prenotazione", r.reservation.to_string())
        .line("Data di pagamento", date(r.payment_date))
        .line("Importo", amount(r.amount));
    if r.replayed {
        n = n.line(
            "Nota",
            "richiesta già ricevuta: nulla è stato prenotato due volte",
        );
    }
    for l in &r.lines {
        n = n.line(
            format!("Codice tributo {} anno {}", l.codice_tributo, l.year),
            amount(l.amount),
        );
    }
    for d in &r.debits {
        n = n.line(
            format!("A debito, sezione {} codice {}", d.section.label(), d.code),
            amount(d.amount),
        );
    }
    n
}

#[derive(Deserialize)]
pub struct EndForm {
    #[serde(default)]
    csrf: String,
    prenotazione: i64,
    chiave: String,
    esito: String,
    #[serde(default)]
    pin: String,
}

pub async fn end(
    State(state): State<WebState>,
    PartyForm(ui, party, f): PartyForm<EndForm>,
) -> Response {
    let pin = pin_of(&f.pin);
    let confirm = f.esito == "conferma";
    let result = if confirm {
        state
            .app
            .confirm_f24(&ui.user, &f.chiave, pin, party.id, f.prenotazione)
            .await
    } else {
        state
            .app
            .discard_f24(&ui.user, &f.chiave, pin, party.id, f.prenotazione)
            .await
    };
    match result {
        Ok(o) => {
            let title = if o.confirmed {
                "Modello F24 confermato: importi utilizzati"
            } else {
                "Modello F24 scartato: prenotazione liberata"
            };
            ui.leave_notice(
                &state,
                Notice::success(title)
                    .receipt(&party, o.operation_id)
                    .line("Prenotazione", o.reservation.to_string())
                    .line("Protocollo dell'operazione", o.operation_id.to_string())
                    .line("Importo", amount(o.amount)),
            )
            .await;
            see_other(&format!("{}/f24", party_home(&party)))
        }
        Err(e) => {
            let mut errors = FieldErrors::default();
            errors.form(format!(
                "Prenotazione n. {}: {}",
                f.prenotazione,
                super::refusal(&e)
            ));
            let status = crate::problem::status_of(e.code());
            show(
                &state,
                &ui,
                &party,
                &ReserveForm::default(),
                &errors,
                Some(f.prenotazione),
                None,
                status,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct ChoiceForm {
    #[serde(default)]
    csrf: String,
    rata: i64,
    chiave: String,
    azione: String,
    #[serde(default)]
    pin: String,
}

pub async fn choice(
    State(state): State<WebState>,
    PartyForm(ui, party, f): PartyForm<ChoiceForm>,
) -> Response {
    let pin = pin_of(&f.pin);
    let declare = f.azione != "revoca";
    let result = if declare {
        state
            .app
            .declare_f24_choice(&ui.user, &f.chiave, pin, party.id, f.rata)
            .await
    } else {
        state
            .app
            .revoke_f24_choice(&ui.user, &f.chiave, pin, party.id, f.rata)
            .await
    };
    match result {
        Ok(r) => {
            ui.leave_notice(
                &state,
                Notice::success(if declare {
                    "Scelta di utilizzo in F24 registrata: la rata non è più cedibile"
                } else {
                    "Scelta revocata: la rata è di nuovo cedibile"
                })
                .line("Protocollo dell'operazione", r.operation_id.to_string())
                .line("Stato", choice_label(&r.choice)),
            )
            .await;
            see_other(&format!("{}/f24", party_home(&party)))
        }
        Err(e) => {
            let mut errors = FieldErrors::default();
            errors.form(format!("Scelta non registrata: {}", super::refusal(&e)));
            let status = crate::problem::status_of(e.code());
            show(
                &state,
                &ui,
                &party,
                &ReserveForm::default(),
                &errors,
                None,
                None,
                status,
            )
            .await
        }
    }
}

posted!(ChoiceForm, EndForm);

//! The Agency operator's pages: party registry, users, delegations, PIN unlock. Each form
//! posts, then returns here with the outcome; refusals sit next to their field.

use super::PageForm as Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use cessio_app::AppError;
use cessio_core::debt::{DebtKind, DebtLoad, DebtPosition, InstalmentPlan};
use cessio_core::money::Cents;
use cessio_store::{PartyKind, Role};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{
    Field, FieldErrors, amount, csrf_field, error_summary, kind_label, page as layout_page,
};
use super::{Notice, Ui, party_home, render_status, see_other};
use crate::{WebState, random_token};

/// Which form a refusal belongs to, so that it is shown there.
#[derive(Default)]
struct Outcome {
    form: &'static str,
    errors: FieldErrors,
    party: PartyForm,
    user: UserForm,
    delegation: DelegationForm,
    unlock: UnlockForm,
    debt: Vec<(String, String)>,
}

pub async fn page(State(state): State<WebState>, ui: Ui) -> Response {
    if !ui.user.is_operator() {
        return super::error_page(
            Some(&ui),
            &AppError::forbidden("funzione riservata agli operatori dell'Agenzia"),
        );
    }
    let notice = ui.take_notice(&state).await;
    show(&ui, notice, &Outcome::default(), StatusCode::OK)
}

fn show(ui: &Ui, notice: Option<Notice>, o: &Outcome, status: StatusCode) -> Response {
    let errors_for = |form: &str| {
        if o.form == form {
            o.errors.clone()
        } else {
            FieldErrors::default()
        }
    };
    let mut shell = ui.shell("Funzioni dell'operatore");
    shell.notice = notice;
    shell.crumbs = vec![("Home".into(), "/soggetti".into())];
    render_status(
        status,
        layout_page(
            shell,
            html! {
                h1 { "Funzioni dell'operatore" }
                p.lead { "Anagrafe dei soggetti, utenze, deleghe agli intermediari e sblocco del PIN. Ogni operazione è registrata con il nome dell'operatore." }
                p { a href="/operatore/controlli" { "Controlli: sospensioni, segnalazioni di rischio, pignoramenti, annullamenti su richiesta, decessi, clienti delle banche" } }
                div.row {
                    div.col-lg-6.mb-5 { (party_form(ui, &o.party, &errors_for("soggetto"))) }
                    div.col-lg-6.mb-5 { (user_form(ui, &o.user, &errors_for("utente"))) }
                    div.col-lg-6.mb-5 { (delegation_form(ui, &o.delegation, &errors_for("delega"))) }
                    div.col-lg-6.mb-5 { (unlock_form(ui, &o.unlock, &errors_for("pin"))) }
                    div.col-12.mb-5 { (debt_form(ui, &o.debt, &errors_for("debito"))) }
                    div.col-lg-6.mb-5 { (close_year_form(ui, &errors_for("chiusura"))) }
                }
            },
        ),
    )
}

#[derive(Deserialize, Default, Clone)]
pub struct PartyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    chiave: String,
    #[serde(default)]
    cf: String,
    #[serde(default)]
    nome: String,
    #[serde(default)]
    natura: String,
}

fn kind_key(k: PartyKind) -> &'static str {
    match k {
        PartyKind::Person => "persona",
        PartyKind::Company => "impresa",
        PartyKind::Bank => "banca",
        PartyKind::FinancialIntermediary => "intermediario",
        PartyKind::Insurer => "assicurazione",
        PartyKind::PublicAdministration => "pa",
    }
}

fn party_form(ui: &Ui, f: &PartyForm, errors: &FieldErrors) -> Markup {
    let key = if f.chiave.is_empty() {
        random_token()
    } else {
        f.chiave.clone()
    };
    html! {
        section aria-labelledby="soggetto-titolo" {
            h2.h4 #soggetto-titolo { "Registra un soggetto" }
            (error_summary(errors))
            form method="post" action="/operatore/soggetti" novalidate {
                (csrf_field(&ui.csrf))
                input type="hidden" name="chiave" value=(key);
                (Field::text("cf", "Codice fiscale o partita IVA", &f.cf).required().render(errors))
                (Field::text("nome", "Nome o denominazione", &f.nome).required().render(errors))
                div.select-wrapper.mb-4 {
                    label for="natura" { "Natura (obbligatorio)" }
                    select #natura name="natura" {
                        @for k in PartyKind::ALL {
                            option value=(kind_key(k)) selected[f.natura == kind_key(k)] { (kind_label(k)) }
                        }
                    }
                }
                button.btn.btn-primary type="submit" { "Registra" }
            }
        }
    }
}

pub async fn register_party(
    State(state): State<WebState>,
    ui: Ui,
    Form(f): Form<PartyForm>,
) -> Response {
    if let Err(r) = ui.check_csrf(&f.csrf) {
        return r;
    }
    let kind = PartyKind::ALL
        .into_iter()
        .find(|k| kind_key(*k) == f.natura)
        .unwrap_or(PartyKind::Person);
    let mut errors = FieldErrors::default();
    if f.nome.trim().is_empty() {
        errors.field("nome", "Indicare il nome o la denominazione");
    }
    if errors.is_empty() {
        match state
            .app
            .register_party(&ui.user, &f.chiave, &f.cf, f.nome.trim(), kind)
            .await
        {
            Ok(p) => {
                ui.leave_notice(
                    &state,
                    Notice::success("Soggetto registrato")
                        .line("Codice fiscale", p.cf.as_str())
                        .line("Nome", p.name.clone())
                        .line("Pagina del soggetto", party_home(&p)),
                )
                .await;
                return see_other("/operatore");
            }
            Err(e) => match &e {
                AppError::Cf(_) => errors.field("cf", super::refusal(&e)),
                _ => errors.form(super::refusal(&e)),
            },
        }
    }
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    let o = Outcome {
        form: "soggetto",
        errors,
        party: PartyForm {
            chiave: random_token(),
            ..f
        },
        ..Outcome::default()
    };
    show(&ui, None, &o, status)
}

#[derive(Deserialize, Default, Clone)]
pub struct UserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    nome: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    pin: String,
    #[serde(default)]
    cf_soggetto: String,
    #[serde(default)]
    ruolo: String,
}

fn user_form(ui: &Ui, f: &UserForm, errors: &FieldErrors) -> Markup {
    html! {
        section aria-labelledby="utente-titolo" {
            h2.h4 #utente-titolo { "Crea un'utenza" }
            (error_summary(errors))
            form method="post" action="/operatore/utenti" novalidate {
                (csrf_field(&ui.csrf))
                (Field::text("username", "Nome utente", &f.username).required().autocomplete("off").render(errors))
                (Field::text("nome", "Nome da mostrare", &f.nome).required().render(errors))
                (Field::text("password", "Password iniziale", "").kind("password").required().autocomplete("new-password").hint("almeno 12 caratteri").render(errors))
                (Field::text("pin", "PIN dispositivo", "").kind("password").required().autocomplete("off").inputmode("numeric").render(errors))
                (Field::text("cf_soggetto", "Codice fiscale del soggetto titolare (vuoto per un intermediario)", &f.cf_soggetto).render(errors))
                div.select-wrapper.mb-4 {
                    label for="ruolo" { "Ruolo" }
                    select #ruolo name="ruolo" {
                        option value="utente" selected[f.ruolo != "operatore"] { "Utente (titolare o intermediario)" }
                        option value="operatore" selected[f.ruolo == "operatore"] { "Operatore dell'Agenzia" }
                    }
                }
                button.btn.btn-primary type="submit" { "Crea l'utenza" }
            }
        }
    }
}

pub async fn create_user(
    State(state): State<WebState>,
    ui: Ui,
    Form(f): Form<UserForm>,
) -> Response {
    if let Err(r) = ui.check_csrf(&f.csrf) {
        return r;
    }
    let role = if f.ruolo == "operatore" {
        Role::Operator
    } else {
        Role::User
    };
    let party_cf = Some(f.cf_soggetto.trim()).filter(|s| !s.is_empty());
    let mut errors = FieldErrors::default();
    match state
        .app
        .create_user(
            &ui.user,
            f.username.trim(),
            f.nome.trim(),
            &f.password,
            &f.pin,
            party_cf,
            role,
        )
        .await
    {
        Ok(_) => {
            ui.leave_notice(
                &state,
                Notice::success("Utenza creata").line("Nome utente", f.username.trim()),
            )
            .await;
            return see_other("/operatore");
        }
        Err(e) => match &e {
            AppError::Invalid { field, .. } => {
                let id = match field.as_str() {
                    "username" => "username",
                    "display_name" => "nome",
                    "password" => "password",
                    "pin" => "pin",
                    _ => "cf_soggetto",
                };
                errors.field(id, e.to_string());
            }
            AppError::Cf(_) | AppError::CfUnknown { .. } => {
                errors.field("cf_soggetto", e.to_string())
            }
            _ => errors.form(e.to_string()),
        },
    }
    let o = Outcome {
        form: "utente",
        errors,
        user: f,
        ..Outcome::default()
    };
    show(&ui, None, &o, StatusCode::UNPROCESSABLE_ENTITY)
}

/// What the delegation form shows back after a refusal.
#[derive(Default, Clone)]
struct DelegationForm {
    username: String,
    cf_soggetto: String,
}

fn delegation_form(ui: &Ui, f: &DelegationForm, errors: &FieldErrors) -> Markup {
    html! {
        section aria-labelledby="delega-titolo" {
            h2.h4 #delega-titolo { "Deleghe agli intermediari" }
            (error_summary(errors))
            form method="post" action="/operatore/deleghe" novalidate {
                (csrf_field(&ui.csrf))
                (Field::text("delega-username", "Nome utente dell'intermediario", &f.username).required().autocomplete("off").render(errors))
                (Field::text("delega-cf", "Codice fiscale del soggetto che delega", &f.cf_soggetto).required().render(errors))
                button.btn.btn-primary.me-2 type="submit" name="azione" value="conferisci" { "Conferisci la delega" }
                button.btn.btn-outline-danger type="submit" name="azione" value="revoca" { "Revoca la delega" }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct DelegationPost {
    #[serde(default)]
    csrf: String,
    #[serde(default, rename = "delega-username")]
    username: String,
    #[serde(default, rename = "delega-cf")]
    cf_soggetto: String,
    #[serde(default)]
    azione: String,
}

pub async fn delegation(
    State(state): State<WebState>,
    ui: Ui,
    Form(f): Form<DelegationPost>,
) -> Response {
    if let Err(r) = ui.check_csrf(&f.csrf) {
        return r;
    }
    let revoke = f.azione == "revoca";
    let result = if revoke {
        state
            .app
            .revoke_delegation(&ui.user, f.username.trim(), f.cf_soggetto.trim())
            .await
    } else {
        state
            .app
            .delegate(&ui.user, f.username.trim(), f.cf_soggetto.trim())
            .await
    };
    let mut errors = FieldErrors::default();
    match result {
        Ok(()) => {
            ui.leave_notice(
                &state,
                Notice::success(if revoke {
                    "Delega revocata"
                } else {
                    "Delega conferita"
                })
                .line("Intermediario", f.username.trim())
                .line("Soggetto", f.cf_soggetto.trim()),
            )
            .await;
            return see_other("/operatore");
        }
        Err(e) => match &e {
            AppError::Cf(_) | AppError::CfUnknown { .. } => {
                errors.field("delega-cf", e.to_string())
            }
            AppError::NotFound { .. } => errors.field("delega-username", e.to_string()),
            _ => errors.form(e.to_string()),
        },
    }
    let o = Outcome {
        form: "delega",
        errors,
        delegation: DelegationForm {
            username: f.username,
            cf_soggetto: f.cf_soggetto,
        },
        ..Outcome::default()
    };
    show(&ui, None, &o, StatusCode::UNPROCESSABLE_ENTITY)
}

#[derive(Deserialize, Default, Clone)]
pub struct UnlockForm {
    #[serde(default)]
    csrf: String,
    #[serde(default, rename = "sblocco-username")]
    username: String,
}

fn unlock_form(ui: &Ui, f: &UnlockForm, errors: &FieldErrors) -> Markup {
    html! {
        section aria-labelledby="pin-titolo" {
            h2.h4 #pin-titolo { "Sblocco del PIN" }
            p { "Azzera i tentativi errati di un'utenza il cui PIN si è bloccato." }
            (error_summary(errors))
            form method="post" action="/operatore/pin" novalidate {
                (csrf_field(&ui.csrf))
                (Field::text("sblocco-username", "Nome utente", &f.username).required().autocomplete("off").render(errors))
                button.btn.btn-primary type="submit" { "Sblocca il PIN" }
            }
        }
    }
}

pub async fn unlock_pin(
    State(state): State<WebState>,
    ui: Ui,
    Form(f): Form<UnlockForm>,
) -> Response {
    if let Err(r) = ui.check_csrf(&f.csrf) {
        return r;
    }
    let mut errors = FieldErrors::default();
    match state.app.unlock_pin(&ui.user, f.username.trim()).await {
        Ok(()) => {
            ui.leave_notice(
                &state,
                Notice::success("PIN sbloccato").line("Nome utente", f.username.trim()),
            )
            .await;
            return see_other("/operatore");
        }
        Err(e) => match &e {
            AppError::NotFound { .. } => errors.field("sblocco-username", e.to_string()),
            _ => errors.form(e.to_string()),
        },
    }
    let o = Outcome {
        form: "pin",
        errors,
        unlock: f,
        ..Outcome::default()
    };
    show(&ui, None, &o, StatusCode::UNPROCESSABLE_ENTITY)
}

/// Loads a debt-position form offers (the API takes any number).
const DEBT_LOADS: usize = 3;

fn value<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

fn debt_form(ui: &Ui, f: &[(String, String)], errors: &FieldErrors) -> Markup {
    let key = match value(f, "chiave") {
        "" => random_token(),
        k => k.to_string(),
    };
    html! {
        section aria-labelledby="debito-titolo" {
            h2.h4 #debito-titolo { "Posizione debitoria" }
            p.small.mb-2 { (super::layout::rule_links(&["R-BAN-100K", "R-BAN-1500"])) }
            p { "I carichi affidati all'agente della riscossione: la compensazione è bloccata oltre 100.000,00 € di carichi erariali e atti dell'Agenzia scaduti, non sospesi e non in una rateazione in corso. L'ultima posizione registrata sostituisce le precedenti." }
            (error_summary(errors))
            form method="post" action="/operatore/debiti" novalidate {
                (csrf_field(&ui.csrf))
                input type="hidden" name="chiave" value=(key);
                (Field::text("debito-cf", "Codice fiscale del soggetto", value(f, "debito-cf")).required().render(errors))
                div.table-responsive tabindex="0" role="region" aria-label="Tabella (scorrevole)" {
                    table.table.cessio-table {
                        caption { "Carichi (righe vuote ignorate; nessuna riga: nessun debito)" }
                        thead { tr {
                            th scope="col" { "Carico" } th scope="col" { "Natura" } th scope="col" { "Importo residuo" }
                            th scope="col" { "Di cui sospeso" } th scope="col" { "Rateazione" } th scope="col" { "Scaduto" }
                        } }
                        tbody {
                            @for i in 0..DEBT_LOADS {
                                @let (kind, amount, suspended, plan, overdue) = (format!("natura_{i}"), format!("importo_{i}"), format!("sospeso_{i}"), format!("piano_{i}"), format!("scaduto_{i}"));
                                tr {
                                    td { (i + 1) }
                                    td {
                                        label.visually-hidden for=(kind) { "Natura del carico " (i + 1) }
                                        select.form-select id=(kind) name=(kind) {
                                            @for (v, t) in [("erariale", "Tributi erariali"), ("atto_agenzia", "Atto dell'Agenzia"), ("altro", "Altro (non conta)")] {
                                                option value=(v) selected[value(f, &kind) == v] { (t) }
                                            }
                                        }
                                    }
                                    td {
                                        label.visually-hidden for=(amount) { "Importo del carico " (i + 1) }
                                        input.form-control.cessio-table-input.is-invalid[errors.of(&amount).is_some()] id=(amount) name=(amount) value=(value(f, &amount)) inputmode="decimal"
                                            aria-describedby=[errors.of(&amount).map(|_| format!("{amount}-errore"))];
                                        @if let Some(e) = errors.of(&amount) { div.invalid-feedback.d-block id={ (amount) "-errore" } { (super::layout::message(e)) } }
                                    }
                                    td {
                                        label.visually-hidden for=(suspended) { "Parte sospesa del carico " (i + 1) }
                                        input.form-control.cessio-table-input.is-invalid[errors.of(&suspended).is_some()] id=(suspended) name=(suspended) value=(value(f, &suspended)) inputmode="decimal"
                                            aria-describedby=[errors.of(&suspended).map(|_| format!("{suspended}-errore"))];
                                        @if let Some(e) = errors.of(&suspended) { div.invalid-feedback.d-block id={ (suspended) "-errore" } { (super::layout::message(e)) } }
                                    }
                                    td {
                                        label.visually-hidden for=(plan) { "Rateazione del carico " (i + 1) }
                                        select.form-select id=(plan) name=(plan) {
                                            @for (v, t) in [("nessuna", "Nessuna"), ("in_corso", "In corso"), ("decaduta", "Decaduta")] {
                                                option value=(v) selected[value(f, &plan) == v] { (t) }
                                            }
                                        }
                                    }
                                    td {
                                        div.form-check.mb-0 {
                                            input id=(overdue) type="checkbox" name=(overdue) value="si" checked[value(f, &overdue) == "si" || value(f, "chiave").is_empty()];
                                            label for=(overdue) { span.visually-hidden { "Carico " (i + 1) " " } "scaduto" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                button.btn.btn-primary type="submit" { "Registra la posizione" }
            }
        }
    }
}

pub async fn debt_position(
    State(state): State<WebState>,
    ui: Ui,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = ui.check_csrf(value(&pairs, "csrf")) {
        return r;
    }
    let mut errors = FieldErrors::default();
    let mut loads = Vec::new();
    for i in 0..DEBT_LOADS {
        let amount_id = format!("importo_{i}");
        let suspended_id = format!("sospeso_{i}");
        let typed = value(&pairs, &amount_id).trim();
        if typed.is_empty() {
            continue;
        }
        let amount = match Cents::parse_amount(typed) {
            Ok(a) if !a.is_negative() => Some(a),
            Ok(_) => {
                errors.field(
                    &amount_id,
                    format!("Carico {}: l'importo non può essere negativo", i + 1),
                );
                None
            }
            Err(e) => {
                errors.field(&amount_id, format!("Carico {}: {e}", i + 1));
                None
            }
        };
        let suspended = match value(&pairs, &suspended_id).trim() {
            "" => Some(Cents::ZERO),
            t => match Cents::parse_amount(t) {
                Ok(a) if !a.is_negative() => Some(a),
                Ok(_) => {
                    errors.field(
                        &suspended_id,
                        format!("Carico {}: l'importo non può essere negativo", i + 1),
                    );
                    None
                }
                Err(e) => {
                    errors.field(&suspended_id, format!("Carico {}: {e}", i + 1));
                    None
                }
            },
        };
        let kind = match value(&pairs, &format!("natura_{i}")) {
            "atto_agenzia" => DebtKind::AttoAgenzia,
            "altro" => DebtKind::Altro,
            _ => DebtKind::Erariale,
        };
        let plan = match value(&pairs, &format!("piano_{i}")) {
            "in_corso" => InstalmentPlan::InForce,
            "decaduta" => InstalmentPlan::Lapsed,
            _ => InstalmentPlan::None,
        };
        if let (Some(amount), Some(suspended)) = (amount, suspended) {
            loads.push(DebtLoad {
                kind,
                amount,
                suspended,
                plan,
                overdue: value(&pairs, &format!("scaduto_{i}")) == "si",
            });
        }
    }
    let party = if errors.is_empty() {
        match state.app.party_by_cf(value(&pairs, "debito-cf")).await {
            Ok(p) => Some(p),
            Err(e) => {
                errors.field("debito-cf", e.to_string());
                None
            }
        }
    } else {
        None
    };
    if let Some(party) = party {
        let position = DebtPosition::new(loads);
        match state
            .app
            .set_debt_position(&ui.user, value(&pairs, "chiave"), party.id, &position)
            .await
        {
            Ok(r) => {
                ui.leave_notice(
                    &state,
                    Notice::success("Posizione debitoria registrata")
                        .line(
                            "Soggetto",
                            format!("{} ({})", party.name, party.cf.as_str()),
                        )
                        .line("Conta per R-BAN-100K", amount(r.counted_for_ban_100k))
                        .line(
                            "Conta per R-BAN-1500 (erariali)",
                            amount(r.counted_erariali),
                        )
                        .line("Protocollo dell'operazione", r.operation_id.to_string()),
                )
                .await;
                return see_other("/operatore");
            }
            Err(e) => errors.form(e.to_string()),
        }
    }
    let mut kept: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, _)| k != "chiave" && k != "csrf")
        .collect();
    kept.push(("chiave".into(), random_token()));
    let o = Outcome {
        form: "debito",
        errors,
        debt: kept,
        ..Outcome::default()
    };
    show(&ui, None, &o, StatusCode::UNPROCESSABLE_ENTITY)
}

fn close_year_form(ui: &Ui, errors: &FieldErrors) -> Markup {
    html! {
        section aria-labelledby="chiusura-titolo" {
            h2.h4 #chiusura-titolo { "Chiusura dell'anno (scadenza dei crediti non utilizzati)" }
            p { (super::layout::message("Dal 1° gennaio sposta tra i crediti scaduti ogni importo il cui ultimo giorno di utilizzo è caduto nell'anno indicato o prima (R-F24-WINDOW-121, R-F24-WINDOW-122). Ripeterla non scade nulla due volte.")) }
            (error_summary(errors))
            form method="post" action="/operatore/chiusura" novalidate {
                (csrf_field(&ui.csrf))
                (Field::text("anno-chiusura", "Anno da chiudere", "").required().inputmode("numeric").render(errors))
                button.btn.btn-primary type="submit" { "Chiudi l'anno" }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct CloseYearForm {
    #[serde(default)]
    csrf: String,
    #[serde(default, rename = "anno-chiusura")]
    year: String,
}

pub async fn close_year(
    State(state): State<WebState>,
    ui: Ui,
    Form(f): Form<CloseYearForm>,
) -> Response {
    if let Err(r) = ui.check_csrf(&f.csrf) {
        return r;
    }
    let mut errors = FieldErrors::default();
    match super::layout::parse_year(&f.year) {
        Ok(Some(year)) => match state.app.close_year(&ui.user, year).await {
            Ok(r) => {
                ui.leave_notice(
                    &state,
                    Notice::success(format!("Anno {} chiuso", r.year))
                        .line(
                            "Posizioni scadute in questa esecuzione",
                            r.holdings.to_string(),
                        )
                        .line("Importo scaduto", amount(r.amount)),
                )
                .await;
                return see_other("/operatore");
            }
            Err(e) => errors.field("anno-chiusura", e.to_string()),
        },
        Ok(None) => errors.field("anno-chiusura", "Indicare l'anno"),
        Err(e) => errors.field("anno-chiusura", e),
    }
    let o = Outcome {
        form: "chiusura",
        errors,
        ..Outcome::default()
    };
    show(&ui, None, &o, StatusCode::UNPROCESSABLE_ENTITY)
}

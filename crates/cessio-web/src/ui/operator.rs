//! The Agency operator's pages: party registry, users, delegations, PIN unlock. Each form
//! posts, then returns here with the outcome; refusals sit next to their field.

use super::PageForm as Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use cessio_app::AppError;
use cessio_store::{PartyKind, Role};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{
    Field, FieldErrors, csrf_field, error_summary, kind_label, page as layout_page,
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
}

pub async fn page(State(state): State<WebState>, ui: Ui) -> Response {
    if !ui.user.is_operator() {
        return super::error_page(
            Some(&ui),
            &AppError::forbidden("funzione riservata agli operatori dell'Agenzia"),
        );
    }
    let notice = ui.take_notice(&state);
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
                div.row {
                    div.col-lg-6.mb-5 { (party_form(ui, &o.party, &errors_for("soggetto"))) }
                    div.col-lg-6.mb-5 { (user_form(ui, &o.user, &errors_for("utente"))) }
                    div.col-lg-6.mb-5 { (delegation_form(ui, &o.delegation, &errors_for("delega"))) }
                    div.col-lg-6.mb-5 { (unlock_form(ui, &o.unlock, &errors_for("pin"))) }
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
                );
                return see_other("/operatore");
            }
            Err(e) => match &e {
                AppError::Cf(_) => errors.field("cf", e.to_string()),
                _ => errors.form(e.to_string()),
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
            );
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
            );
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
            );
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

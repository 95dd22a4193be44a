//! Deleghe: the titolare of a party delegates an intermediary (its studio) for
//! consultazione or also disposizione, until a day or until revoked, and revokes it, with
//! the PIN; the list shows every delegation granted, active and past, with who and when.
//! The app decides who may (the titolare or the operator); this page only asks and shows.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use cessio_app::{AppError, DelegationState, DelegationView};
use cessio_store::{DelegationScope, Party};
use maud::{Markup, html};

use super::layout::{
    Field, FieldErrors, csrf_field, date, datetime, error_summary, form_value, page as layout_page,
    parse_date, pin_field, pin_input,
};
use super::posted::PartyForm;
use super::{Notice, Ui, error_page, party_for, party_home, pin_of, render_status, see_other};
use crate::{WebState, random_token};

pub fn scope_label(scope: DelegationScope) -> &'static str {
    match scope {
        DelegationScope::Consultazione => "Consultazione",
        DelegationScope::Disposizione => "Consultazione e disposizione",
    }
}

/// "fino al 31/12/2024 (incluso)" or "fino a revoca".
pub fn until_label(until: Option<chrono::NaiveDate>) -> String {
    until.map_or_else(
        || "fino a revoca".to_string(),
        |d| format!("fino al {} (incluso)", date(d)),
    )
}

fn state_label(s: DelegationState) -> &'static str {
    match s {
        DelegationState::Active => "Attiva",
        DelegationState::Expired => "Scaduta",
        DelegationState::Revoked => "Revocata",
    }
}

pub async fn page(State(state): State<WebState>, ui: Ui, Path(cf): Path<String>) -> Response {
    let party = match party_for(&state, &ui, &cf).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let notice = ui.take_notice(&state).await;
    show(
        &state,
        &ui,
        &party,
        notice,
        &FieldErrors::default(),
        &[],
        StatusCode::OK,
    )
    .await
}

async fn show(
    state: &WebState,
    ui: &Ui,
    party: &Party,
    notice: Option<Notice>,
    errors: &FieldErrors,
    typed: &[(String, String)],
    status: StatusCode,
) -> Response {
    let rows = match state.app.delegations_granted(&ui.user, party.id).await {
        Ok(rows) => rows,
        Err(e) => return error_page(Some(ui), &e),
    };
    let active: Vec<&DelegationView> = rows
        .iter()
        .filter(|d| d.state == DelegationState::Active)
        .collect();
    let base = format!("{}/deleghe", party_home(party));
    let mut shell = ui.party_shell("Deleghe", party);
    shell.notice = notice;
    let scope_typed = form_value(typed, "ambito");
    render_status(
        status,
        layout_page(
            shell,
            html! {
                h1 { "Deleghe a un intermediario" }
                p.lead { "Chi delegate (per esempio lo studio che segue i vostri crediti) opera per " (party.name) " con la propria utenza. La delega vale dal momento della concessione fino all'ultimo giorno indicato, incluso, o fino alla revoca; la revoca ha effetto subito. Ogni concessione e revoca resta registrata." }
                (error_summary(errors))
                section.mb-5 aria-labelledby="concedi-titolo" {
                    h2.h3 #concedi-titolo { "Concedere una delega" }
                    form method="post" action=(base) novalidate {
                        (csrf_field(&ui.csrf))
                        input type="hidden" name="step" value="concedi";
                        input type="hidden" name="chiave" value=(random_token());
                        (Field::text("intermediario", "Nome utente dell'intermediario", form_value(typed, "intermediario")).required().autocomplete("off").hint("Il nome con cui l'intermediario accede alla piattaforma: chiederlo all'intermediario.").render(errors))
                        fieldset.mb-4 aria-describedby=[errors.of("ambito").map(|_| "ambito-errore")] {
                            legend.h6 { "Che cosa può fare" }
                            div.form-check {
                                input.form-check-input #ambito-consultazione type="radio" name="ambito" value="consultazione" checked[scope_typed != "disposizione"];
                                label.form-check-label for="ambito-consultazione" { "Solo consultazione: vede crediti, monitoraggio e movimenti" }
                            }
                            div.form-check {
                                input.form-check-input #ambito-disposizione type="radio" name="ambito" value="disposizione" checked[scope_typed == "disposizione"];
                                label.form-check-label for="ambito-disposizione" { "Consultazione e disposizione: anche cede, accetta, comunica, usa in F24 e ripartisce" }
                            }
                            @if let Some(e) = errors.of("ambito") {
                                div.invalid-feedback.d-block #ambito-errore { (e) }
                            }
                        }
                        (Field::text("fino-al", "Ultimo giorno di validità (facoltativo)", form_value(typed, "fino-al")).hint("gg/mm/aaaa, incluso; vuoto: fino a revoca").render(errors))
                        (pin_field(&ui.user, errors))
                        button.btn.btn-primary type="submit" { "Concedi la delega" }
                    }
                }
                @if !active.is_empty() {
                    section.mb-5 aria-labelledby="revoca-titolo" {
                        h2.h3 #revoca-titolo { "Revocare una delega" }
                        form method="post" action=(base) novalidate {
                            (csrf_field(&ui.csrf))
                            input type="hidden" name="step" value="revoca";
                            input type="hidden" name="chiave" value=(random_token());
                            div.select-wrapper.mb-4 {
                                label for="revoca-intermediario" { "Intermediario" }
                                select #revoca-intermediario name="revoca-intermediario" aria-describedby=[errors.of("revoca-intermediario").map(|_| "revoca-intermediario-errore")] {
                                    @for d in &active {
                                        option value=(d.delegate_username) selected[d.delegate_username == form_value(typed, "revoca-intermediario")] {
                                            (d.delegate_name) " (" (d.delegate_username) ") — " (scope_label(d.scope)) ", " (until_label(d.until))
                                        }
                                    }
                                }
                                @if let Some(e) = errors.of("revoca-intermediario") {
                                    div.invalid-feedback.d-block #revoca-intermediario-errore { (e) }
                                }
                            }
                            (revoke_pin_field(ui, errors))
                            button.btn.btn-outline-danger type="submit" { "Revoca la delega" }
                        }
                    }
                }
                section aria-labelledby="elenco-titolo" {
                    h2.h3 #elenco-titolo { "Deleghe concesse" }
                    @if rows.is_empty() {
                        p { "Nessuna delega concessa." }
                    } @else {
                        (list(&rows))
                    }
                }
            },
        ),
    )
}

/// The revocation's PIN field: its own id, so that the page has one `pin` field only.
fn revoke_pin_field(ui: &Ui, errors: &FieldErrors) -> Markup {
    if ui.user.method == cessio_app::LoginMethod::Strong {
        return html! {};
    }
    pin_input("pin-revoca", errors)
}

fn list(rows: &[DelegationView]) -> Markup {
    html! {
        div.table-responsive tabindex="0" role="region" aria-label="Deleghe concesse (scorrevole)" {
            table.table.cessio-table {
                caption { "Dalla più recente" }
                thead {
                    tr {
                        th scope="col" { "Intermediario" }
                        th scope="col" { "Ambito" }
                        th scope="col" { "Validità" }
                        th scope="col" { "Stato" }
                        th scope="col" { "Concessa" }
                        th scope="col" { "Revocata" }
                    }
                }
                tbody {
                    @for d in rows {
                        tr {
                            td { (d.delegate_name) " (" (d.delegate_username) ")" }
                            td { (scope_label(d.scope)) }
                            td { (until_label(d.until)) }
                            td { (state_label(d.state)) }
                            td { (datetime(d.granted_at)) @if let Some(by) = &d.granted_by { " da " (by) } }
                            td {
                                @if let Some(at) = d.revoked_at {
                                    (datetime(at)) @if let Some(by) = &d.revoked_by { " da " (by) }
                                } @else { "—" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Where the app's refusal goes on this page's forms.
fn field_for(e: &AppError, revoking: bool) -> Option<&'static str> {
    match e {
        AppError::PinRequired | AppError::PinWrong { .. } | AppError::PinLocked { .. } => {
            Some(if revoking { "pin-revoca" } else { "pin" })
        }
        AppError::NotFound { .. } | AppError::Invalid { .. } => Some(if revoking {
            "revoca-intermediario"
        } else {
            "intermediario"
        }),
        AppError::Rule {
            code: "delegation_until_past",
            ..
        } => Some("fino-al"),
        _ => None,
    }
}

pub async fn submit(
    State(state): State<WebState>,
    PartyForm(ui, party, pairs): PartyForm<Vec<(String, String)>>,
) -> Response {
    let mut errors = FieldErrors::default();
    let key = form_value(&pairs, "chiave");
    let back = format!("{}/deleghe", party_home(&party));
    let invalid = StatusCode::UNPROCESSABLE_ENTITY;
    let revoking = form_value(&pairs, "step") == "revoca";
    let result: Result<Notice, AppError> = if revoking {
        let username = form_value(&pairs, "revoca-intermediario");
        state
            .app
            .revoke_delegation_by_titolare(
                &ui.user,
                key,
                pin_of(form_value(&pairs, "pin-revoca")),
                party.id,
                username,
            )
            .await
            .map(|r| {
                Notice::success("Delega revocata: ha effetto da subito")
                    .line("Intermediario", r.delegate_username)
                    .line("Revocata il", datetime(r.at))
            })
    } else {
        let username = form_value(&pairs, "intermediario");
        if username.is_empty() {
            errors.field(
                "intermediario",
                "Indicare il nome utente dell'intermediario",
            );
        }
        let scope = DelegationScope::parse(form_value(&pairs, "ambito"));
        if scope.is_none() {
            errors.field("ambito", "Scegliere che cosa può fare l'intermediario");
        }
        let until = parse_date(form_value(&pairs, "fino-al")).unwrap_or_else(|e| {
            errors.field("fino-al", e);
            None
        });
        let Some(scope) = scope.filter(|_| errors.is_empty()) else {
            return show(&state, &ui, &party, None, &errors, &pairs, invalid).await;
        };
        state
            .app
            .grant_delegation(
                &ui.user,
                key,
                pin_of(form_value(&pairs, "pin")),
                party.id,
                username,
                scope,
                until,
            )
            .await
            .map(|r| {
                Notice::success("Delega concessa")
                    .line("Intermediario", r.delegate_username)
                    .line("Ambito", scope_label(scope))
                    .line("Validità", until_label(r.until))
            })
    };
    match result {
        Ok(notice) => {
            ui.leave_notice(&state, notice).await;
            see_other(&back)
        }
        Err(e) => {
            match field_for(&e, revoking) {
                Some(f) => errors.field(f, e.to_string()),
                None => errors.form(e.to_string()),
            }
            let status = crate::problem::status_of(e.code());
            show(&state, &ui, &party, None, &errors, &pairs, status).await
        }
    }
}

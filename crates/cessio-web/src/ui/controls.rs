//! F9 controls for the Agency's operator: open suspensions (release or void), recorded risk
//! hits, and the forms to suspend a communication (R-SUSP), seize or release a rata
//! (R-SEIZE), annul an acceptance on request, mark a party deceased and record a bank's
//! current-account clients (R-BANK-CLIENT).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use cessio_app::{AppError, RiskHitFilter, SuspensionState};
use cessio_core::chain::BankClient;
use cessio_core::suspension::SuspensionEnd;
use maud::html;

use super::PageForm as Form;
use super::layout::{
    Field, FieldErrors, amount, csrf_field, date, datetime, error_summary, form_value,
    page as layout_page,
};
use super::{Notice, Ui, error_page, render_status, see_other};
use crate::{WebState, random_token};

/// Risk hits listed at once (the API filters by party, day and rule).
const HITS_SHOWN: usize = 200;

pub async fn page(State(state): State<WebState>, ui: Ui) -> Response {
    let notice = ui.take_notice(&state).await;
    show(&state, &ui, notice, &FieldErrors::default(), StatusCode::OK).await
}

async fn show(
    state: &WebState,
    ui: &Ui,
    notice: Option<Notice>,
    errors: &FieldErrors,
    status: StatusCode,
) -> Response {
    let suspensions = match state.app.suspensions(&ui.user, true).await {
        Ok(s) => s,
        Err(e) => return error_page(Some(ui), &e),
    };
    let mut hits = match state
        .app
        .risk_hits(&ui.user, &RiskHitFilter::default())
        .await
    {
        Ok(h) => h,
        Err(e) => return error_page(Some(ui), &e),
    };
    hits.sort_by_key(|h| std::cmp::Reverse(h.at));
    let total_hits = hits.len();
    hits.truncate(HITS_SHOWN);
    let mut shell = ui.shell("Controlli dell'Agenzia");
    shell.notice = notice;
    shell.crumbs = vec![
        ("Home".into(), "/soggetti".into()),
        ("Funzioni dell'operatore".into(), "/operatore".into()),
    ];
    let action = |name: &str| {
        html! {
            (csrf_field(&ui.csrf))
            input type="hidden" name="azione" value=(name);
            input type="hidden" name="chiave" value=(random_token());
        }
    };
    render_status(
        status,
        layout_page(
            shell,
            html! {
                h1 { "Controlli dell'Agenzia" }
                (error_summary(errors))
                section.mb-5 aria-labelledby="sosp-titolo" {
                    h2.h3 #sosp-titolo { "Comunicazioni sospese" }
                    p.small.mb-2 { (super::layout::rule_links(&["R-SUSP"])) }
                    @if suspensions.is_empty() {
                        p { "Nessuna comunicazione sospesa." }
                    } @else {
                        div.table-responsive tabindex="0" role="region" aria-label="Tabella (scorrevole)" {
                            table.table.cessio-table {
                                caption { "Sospensioni in corso: alla fine si rilasciano (hanno effetto) o si annullano (non effettuate)" }
                                thead { tr {
                                    th scope="col" { "Movimento" } th scope="col" { "Cedente" } th scope="col" { "Cessionario" }
                                    th.cessio-amount scope="col" { "Importo" } th scope="col" { "Sospesa" } th scope="col" { "Motivo" } th scope="col" { "Esito" }
                                } }
                                tbody {
                                    @for s in suspensions.iter().filter(|s| s.state == SuspensionState::Suspended) {
                                        tr {
                                            td { (s.transfer) }
                                            td.cessio-code { (s.cedente_cf) }
                                            td.cessio-code { (s.cessionario_cf) }
                                            td.cessio-amount { (amount(s.amount)) }
                                            td { "dal " (date(s.from)) " al " (date(s.until)) }
                                            td { (s.reason) @if let Some(r) = &s.risk_rule { br; small { "regola " (r) } } }
                                            td {
                                                form method="post" action="/operatore/controlli" {
                                                    (action("fine-sospensione"))
                                                    input type="hidden" name="movimento" value=(s.transfer);
                                                    button.btn.btn-success.btn-sm.me-1 type="submit" name="esito" value="rilascia" { "Rilascia" }
                                                    button.btn.btn-danger.btn-sm type="submit" name="esito" value="annulla" { "Non effettuata" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    form.row.g-2 method="post" action="/operatore/controlli" novalidate {
                        (action("sospendi"))
                        div.col-md-3 { (Field::text("movimento", "Movimento da sospendere", "").inputmode("numeric").render(errors)) }
                        div.col-md-2 { (Field::text("giorni", "Giorni (max 30)", "30").inputmode("numeric").render(errors)) }
                        div.col-md-5 { (Field::text("motivo", "Motivo", "").render(errors)) }
                        div.col-md-2.pt-md-4 { button.btn.btn-primary type="submit" { "Sospendi" } }
                    }
                }
                section.mb-5 aria-labelledby="rischio-titolo" {
                    h2.h3 #rischio-titolo { "Segnalazioni dei controlli di rischio" }
                    p { (total_hits) " segnalazioni" @if total_hits > HITS_SHOWN { " (le " (HITS_SHOWN) " più recenti)" } "." }
                    @if !hits.is_empty() {
                        div.table-responsive tabindex="0" role="region" aria-label="Tabella (scorrevole)" {
                            table.table.table-striped.cessio-table {
                                caption { "Segnalazioni, dalla più recente" }
                                thead { tr {
                                    th scope="col" { "Data" } th scope="col" { "Regola" } th scope="col" { "Motivo" }
                                    th scope="col" { "Cedente" } th scope="col" { "Cessionario" } th scope="col" { "Movimento" } th scope="col" { "Sospesa" }
                                } }
                                tbody {
                                    @for h in &hits {
                                        tr {
                                            td { (datetime(h.at)) }
                                            td.cessio-code { (h.rule) }
                                            td { (h.reason) }
                                            td.cessio-code { (h.cedente_cf) }
                                            td.cessio-code { (h.cessionario_cf) }
                                            td { @if let Some(t) = h.transfer { (t) } }
                                            td { @if h.suspended { "sì" } @else { "no" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                div.row {
                    section.col-lg-6.mb-5 aria-labelledby="pign-titolo" {
                        h2.h4 #pign-titolo { "Pignoramento di una rata" }
                        p.small.mb-2 { (super::layout::rule_links(&["R-SEIZE"])) }
                        p { "Il pignoramento toglie la rata dalla disponibilità del titolare; alla fine il termine di utilizzo si allunga della sua durata." }
                        form method="post" action="/operatore/controlli" novalidate {
                            (action("pignoramento"))
                            (Field::text("titolare", "Codice fiscale del titolare", "").render(errors))
                            (Field::text("rata", "Rata (identificativo)", "").inputmode("numeric").render(errors))
                            (Field::text("riferimento", "Riferimento dell'atto", "").render(errors))
                            button.btn.btn-primary.me-2 type="submit" name="esito" value="pignora" { "Pignora" }
                            button.btn.btn-outline-primary type="submit" name="esito" value="rilascia" { "Rilascia" }
                        }
                    }
                    section.col-lg-6.mb-5 aria-labelledby="ann-titolo" {
                        h2.h4 #ann-titolo { "Annullamento di un'accettazione su richiesta" }
                        p { "Se entrambe le parti documentano un errore e gli importi sono ancora interamente inutilizzati e non ceduti, tornano al cedente come dopo un rifiuto." }
                        form method="post" action="/operatore/controlli" novalidate {
                            (action("annulla-accettazione"))
                            (Field::text("movimento-accettato", "Movimento accettato", "").inputmode("numeric").render(errors))
                            (Field::text("richiesta", "Riferimento della richiesta (PEC)", "").render(errors))
                            button.btn.btn-primary type="submit" { "Annulla l'accettazione" }
                        }
                    }
                    section.col-lg-6.mb-5 aria-labelledby="decesso-titolo" {
                        h2.h4 #decesso-titolo { "Soggetto deceduto" }
                        form method="post" action="/operatore/controlli" novalidate {
                            (action("decesso"))
                            (Field::text("cf-deceduto", "Codice fiscale", "").render(errors))
                            button.btn.btn-primary.me-2 type="submit" name="esito" value="si" { "Segna come deceduto" }
                            button.btn.btn-outline-primary type="submit" name="esito" value="no" { "Togli l'indicazione" }
                        }
                    }
                    section.col-lg-6.mb-5 aria-labelledby="clienti-titolo" {
                        h2.h4 #clienti-titolo { "Clienti di conto corrente di una banca" }
                        p.small.mb-2 { (super::layout::rule_links(&["R-BANK-CLIENT"])) }
                        form method="post" action="/operatore/controlli" novalidate {
                            (action("cliente-banca"))
                            (Field::text("banca", "Codice fiscale della banca", "").render(errors))
                            (Field::text("cliente", "Codice fiscale del cliente", "").render(errors))
                            div.select-wrapper.mb-4 {
                                label for="relazione" { "Rapporto" }
                                select #relazione name="relazione" {
                                    option value="non_consumatore" { "Cliente non consumatore" }
                                    option value="professionale" { "Cliente professionale privato" }
                                    option value="consumatore" { "Cliente consumatore" }
                                    option value="nessuno" { "Nessun rapporto (chiude)" }
                                }
                            }
                            button.btn.btn-primary type="submit" { "Registra" }
                        }
                    }
                }
            },
        ),
    )
}

fn number(pairs: &[(String, String)], name: &str, errors: &mut FieldErrors) -> Option<i64> {
    match form_value(pairs, name).parse::<i64>() {
        Ok(n) if n > 0 => Some(n),
        _ => {
            errors.field(name, "Indicare un numero intero positivo");
            None
        }
    }
}

pub async fn submit(
    State(state): State<WebState>,
    ui: Ui,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = ui.check_csrf(form_value(&pairs, "csrf")) {
        return r;
    }
    let mut errors = FieldErrors::default();
    let key = form_value(&pairs, "chiave");
    let outcome: Result<Notice, AppError> = match form_value(&pairs, "azione") {
        "sospendi" => {
            let transfer = number(&pairs, "movimento", &mut errors);
            let days = number(&pairs, "giorni", &mut errors);
            match (transfer, days) {
                (Some(t), Some(d)) => state
                    .app
                    .suspend(
                        &ui.user,
                        t,
                        u32::try_from(d).unwrap_or(u32::MAX),
                        form_value(&pairs, "motivo"),
                    )
                    .await
                    .map(|s| {
                        Notice::success("Comunicazione sospesa")
                            .line("Movimento", s.transfer.to_string())
                            .line("Fino al", date(s.until))
                    }),
                _ => {
                    return show(&state, &ui, None, &errors, StatusCode::UNPROCESSABLE_ENTITY)
                        .await;
                }
            }
        }
        "fine-sospensione" => {
            let Some(t) = number(&pairs, "movimento", &mut errors) else {
                return show(&state, &ui, None, &errors, StatusCode::UNPROCESSABLE_ENTITY).await;
            };
            let end = if form_value(&pairs, "esito") == "annulla" {
                SuspensionEnd::Voided
            } else {
                SuspensionEnd::Released
            };
            state
                .app
                .end_suspension(&ui.user, key, t, end)
                .await
                .map(|s| {
                    Notice::success(if s.state == SuspensionState::Voided {
                        "Comunicazione non effettuata: gli importi sono tornati"
                    } else {
                        "Sospensione rilasciata: la comunicazione ha effetto"
                    })
                    .line("Movimento", s.transfer.to_string())
                })
        }
        "pignoramento" => {
            let Some(rata) = number(&pairs, "rata", &mut errors) else {
                return show(&state, &ui, None, &errors, StatusCode::UNPROCESSABLE_ENTITY).await;
            };
            let holder = form_value(&pairs, "titolare");
            let result = if form_value(&pairs, "esito") == "rilascia" {
                state.app.release_seizure(&ui.user, key, holder, rata).await
            } else {
                state
                    .app
                    .seize(
                        &ui.user,
                        key,
                        holder,
                        rata,
                        form_value(&pairs, "riferimento"),
                    )
                    .await
            };
            result.map(|s| {
                Notice::success("Pignoramento registrato")
                    .line("Rata", s.rata.to_string())
                    .line("Importo pignorato ora", amount(s.seized))
                    .line(
                        "Proroga del termine di utilizzo",
                        format!("{} giorni", s.extension_days),
                    )
            })
        }
        "annulla-accettazione" => {
            let Some(t) = number(&pairs, "movimento-accettato", &mut errors) else {
                return show(&state, &ui, None, &errors, StatusCode::UNPROCESSABLE_ENTITY).await;
            };
            state
                .app
                .annul_acceptance(&ui.user, key, t, form_value(&pairs, "richiesta"))
                .await
                .map(|r| {
                    Notice::success("Accettazione annullata: gli importi sono tornati al cedente")
                        .line("Movimento", r.transfer.to_string())
                        .line("Importo", amount(r.amount))
                        .line("Riferimento", r.reference)
                })
        }
        "decesso" => state
            .app
            .set_deceased(
                &ui.user,
                form_value(&pairs, "cf-deceduto"),
                form_value(&pairs, "esito") == "si",
            )
            .await
            .map(|p| {
                Notice::success("Anagrafe aggiornata")
                    .line("Soggetto", format!("{} ({})", p.name, p.cf.as_str()))
                    .line("Deceduto", if p.deceased { "sì" } else { "no" })
            }),
        "cliente-banca" => {
            let relation = match form_value(&pairs, "relazione") {
                "professionale" => BankClient::Professional,
                "consumatore" => BankClient::Consumer,
                "nessuno" => BankClient::No,
                _ => BankClient::NonConsumer,
            };
            state
                .app
                .set_bank_client(
                    &ui.user,
                    form_value(&pairs, "banca"),
                    form_value(&pairs, "cliente"),
                    relation,
                )
                .await
                .map(|_| Notice::success("Rapporto di conto corrente registrato"))
        }
        _ => Err(AppError::invalid("azione", "azione sconosciuta")),
    };
    match outcome {
        Ok(notice) => {
            ui.leave_notice(&state, notice).await;
            see_other("/operatore/controlli")
        }
        Err(e) => {
            errors.form(super::refusal(&e));
            let status = crate::problem::status_of(e.code());
            show(&state, &ui, None, &errors, status).await
        }
    }
}

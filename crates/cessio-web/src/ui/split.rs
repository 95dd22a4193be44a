//! F6 ulteriore rateazione (ten-instalment split) with its recap before confirming and its
//! annulment, and F7 riduzione del credito: both on the holdings of the party.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use cessio_app::{AppError, ChoiceRow, SplitPreview, SplitTarget};
use cessio_core::catalogue::Catalogue;
use cessio_core::money::Cents;
use cessio_store::Party;
use maud::{Markup, html};

use super::layout::{
    Field, FieldErrors, amount, csrf_field, date, error_summary, form_value, page as layout_page,
    parse_date, pin_field, type_name,
};
use super::posted::PartyForm;
use super::{
    Notice, Ui, error_page, field_of, party_for, party_home, pin_of, render_status, see_other,
};
use crate::{WebState, random_token};

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
        None,
        StatusCode::OK,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn show(
    state: &WebState,
    ui: &Ui,
    party: &Party,
    notice: Option<Notice>,
    errors: &FieldErrors,
    typed: &[(String, String)],
    preview: Option<&SplitPreview>,
    status: StatusCode,
) -> Response {
    let holdings: Vec<ChoiceRow> = match state.app.f24_choices(&ui.user, party.id).await {
        Ok(rows) => rows
            .into_iter()
            .filter(|r| r.available.is_positive())
            .collect(),
        Err(e) => return error_page(Some(ui), &e),
    };
    let base = format!("{}/rateazione", party_home(party));
    let mut shell = ui.party_shell("Rateazione e riduzione", party);
    shell.notice = notice;
    render_status(
        status,
        layout_page(
            shell,
            html! {
                h1 { "Ulteriore rateazione e riduzione del credito" }
                (error_summary(errors))
                @if let Some(p) = preview {
                    (recap(ui, &base, p, form_value(typed, "chiave")))
                }
                section.mb-5 aria-labelledby="rate-titolo" {
                    h2.h3 #rate-titolo { "Ripartire una rata in dieci rate annuali (art. 9 c. 4 DL 176/2022)" }
                    p { (super::layout::message("Il residuo scelto di una rata ammessa diventa dieci rate annuali uguali dall'anno successivo, utilizzabili solo in F24 dal titolare (codici 7771, 7772, 7773): non si potranno cedere (R-SPLIT-NOCEDE). Prima della conferma si vede il riepilogo.")) }
                    form method="post" action=(base) novalidate {
                        (csrf_field(&ui.csrf))
                        input type="hidden" name="step" value="anteprima";
                        (rata_select(&state.app.catalogue, "rata-split", "Rata da ripartire", &holdings, form_value(typed, "rata-split")))
                        (Field::text("importo-split", "Importo da ripartire", form_value(typed, "importo-split")).inputmode("decimal").hint("tutto o parte del residuo, per esempio 1.000,00").render(errors))
                        button.btn.btn-primary type="submit" { "Vedi il riepilogo" }
                    }
                }
                section.mb-5 aria-labelledby="annulla-titolo" {
                    h2.h3 #annulla-titolo { "Annullare una rateazione" }
                    p { (super::layout::message("Le dieci rate non ancora usate tornano a essere la rata originaria, con codice, anno e termine di allora. Se anche una parte è già stata usata o prenotata in F24, l'annullamento è rifiutato per intero (R-SPLIT-ANNUL).")) }
                    form method="post" action=(base) novalidate {
                        (csrf_field(&ui.csrf))
                        input type="hidden" name="step" value="annulla";
                        input type="hidden" name="chiave" value=(random_token());
                        (Field::text("rata-originaria", "Rata originaria ripartita (identificativo)", form_value(typed, "rata-originaria")).inputmode("numeric").render(errors))
                        (pin_field(&ui.user, errors))
                        button.btn.btn-outline-danger type="submit" { "Annulla la rateazione" }
                    }
                }
                section aria-labelledby="rid-titolo" {
                    h2.h3 #rid-titolo { "Riduzione del credito (art. 25 DL 104/2023)" }
                    p { "Dichiara che una parte di una rata non è più utilizzabile, indicando quando lo si è saputo (al massimo 30 giorni fa). È definitiva: l'importo esce per sempre dalla disponibilità." }
                    form method="post" action=(base) novalidate {
                        (csrf_field(&ui.csrf))
                        input type="hidden" name="step" value="riduci";
                        input type="hidden" name="chiave" value=(random_token());
                        (rata_select(&state.app.catalogue, "rata-rid", "Rata", &holdings, form_value(typed, "rata-rid")))
                        (Field::text("importo-rid", "Importo da ridurre", form_value(typed, "importo-rid")).inputmode("decimal").render(errors))
                        (Field::text("conosciuto", "Data in cui se ne è avuta conoscenza", form_value(typed, "conosciuto")).hint("gg/mm/aaaa").render(errors))
                        (pin_field(&ui.user, errors))
                        button.btn.btn-outline-danger type="submit" { "Riduci il credito" }
                    }
                }
            },
        ),
    )
}

fn rata_select(
    catalogue: &Catalogue,
    id: &str,
    label: &str,
    holdings: &[ChoiceRow],
    selected: &str,
) -> Markup {
    html! {
        div.select-wrapper.mb-4 {
            label for=(id) { (label) }
            select id=(id) name=(id) {
                @for h in holdings {
                    @let value = h.rata.to_string();
                    option value=(value) selected[value == selected] {
                        (type_name(catalogue, &h.type_key)) " " (h.year) " — codice " (h.codice_tributo) " — " (h.codice_univoco) " — disponibile " (amount(h.available))
                    }
                }
            }
        }
    }
}

fn recap(ui: &Ui, base: &str, p: &SplitPreview, key: &str) -> Markup {
    html! {
        section.alert.alert-info.mb-5 aria-labelledby="riepilogo-titolo" {
            h2.h4 #riepilogo-titolo { "Riepilogo: " (amount(p.amount)) " della rata " (p.codice_tributo) " " (p.year) " in dieci rate" }
            div.table-responsive tabindex="0" role="region" aria-label="Tabella (scorrevole)" {
                table.table.cessio-table {
                    caption { "Le dieci rate" }
                    thead { tr { th scope="col" { "Anno" } th.cessio-amount scope="col" { "Importo" } th scope="col" { "Ultimo giorno di utilizzo" } th scope="col" { "Codice tributo" } } }
                    tbody {
                        @for r in &p.rate {
                            tr { td { (r.year) } td.cessio-amount { (amount(r.amount)) } td { (date(r.last_day_of_use)) } td { (r.codice_tributo) } }
                        }
                    }
                }
            }
            form method="post" action=(base) novalidate {
                (csrf_field(&ui.csrf))
                input type="hidden" name="step" value="conferma";
                input type="hidden" name="chiave" value=(if key.is_empty() { random_token() } else { key.to_string() });
                input type="hidden" name="rata-split" value=(p.rata);
                input type="hidden" name="centesimi" value=(p.amount.get());
                (pin_field(&ui.user, &FieldErrors::default()))
                button.btn.btn-primary type="submit" { "Conferma la rateazione" }
            }
        }
    }
}

fn rata_of(pairs: &[(String, String)], name: &str, errors: &mut FieldErrors) -> Option<i64> {
    let v = form_value(pairs, name)
        .parse::<i64>()
        .ok()
        .filter(|v| *v > 0);
    if v.is_none() {
        errors.field(name, "Scegliere la rata");
    }
    v
}

fn amount_of(pairs: &[(String, String)], name: &str, errors: &mut FieldErrors) -> Option<Cents> {
    match Cents::parse_positive_amount(form_value(pairs, name)) {
        Ok(a) => Some(a),
        Err(e) => {
            errors.field(name, e.to_string());
            None
        }
    }
}

pub async fn submit(
    State(state): State<WebState>,
    PartyForm(ui, party, pairs): PartyForm<Vec<(String, String)>>,
) -> Response {
    let mut errors = FieldErrors::default();
    let pin = pin_of(form_value(&pairs, "pin"));
    let key = form_value(&pairs, "chiave");
    let back = format!("{}/rateazione", party_home(&party));
    let invalid = StatusCode::UNPROCESSABLE_ENTITY;
    let result: Result<Notice, AppError> = match form_value(&pairs, "step") {
        "anteprima" => {
            let rata = rata_of(&pairs, "rata-split", &mut errors);
            let amount_cents = amount_of(&pairs, "importo-split", &mut errors);
            let (Some(rata), Some(a)) = (rata, amount_cents) else {
                return show(&state, &ui, &party, None, &errors, &pairs, None, invalid).await;
            };
            return match state.app.split_preview(&ui.user, party.id, rata, a).await {
                Ok(p) => {
                    let mut typed = pairs.clone();
                    typed.push(("chiave".into(), random_token()));
                    show(
                        &state,
                        &ui,
                        &party,
                        None,
                        &errors,
                        &typed,
                        Some(&p),
                        StatusCode::OK,
                    )
                    .await
                }
                Err(e) => {
                    errors.field("importo-split", e.to_string());
                    let status = crate::problem::status_of(e.code());
                    show(&state, &ui, &party, None, &errors, &pairs, None, status).await
                }
            };
        }
        "conferma" => {
            let rata = rata_of(&pairs, "rata-split", &mut errors);
            let cents = form_value(&pairs, "centesimi")
                .parse::<i64>()
                .ok()
                .map(Cents::new);
            let (Some(rata), Some(a)) = (rata, cents) else {
                errors.form("Riepilogo incompleto: ripetere la scelta");
                return show(&state, &ui, &party, None, &errors, &pairs, None, invalid).await;
            };
            state
                .app
                .split_rata(&ui.user, key, pin, party.id, rata, a)
                .await
                .map(|r| {
                    let mut n = Notice::success("Rateazione registrata")
                        .receipt(&party, r.operation_id)
                        .line("Protocollo", r.protocol.clone())
                        .line("Importo ripartito", amount(r.amount));
                    for x in &r.rate {
                        n = n.line(
                            format!("{} (codice {})", x.year, x.codice_tributo),
                            format!(
                                "{} fino al {} — {}",
                                amount(x.amount),
                                date(x.last_day_of_use),
                                x.codice_univoco
                            ),
                        );
                    }
                    n
                })
        }
        "annulla" => {
            let Some(rata) = rata_of(&pairs, "rata-originaria", &mut errors) else {
                return show(&state, &ui, &party, None, &errors, &pairs, None, invalid).await;
            };
            state
                .app
                .annul_split(
                    &ui.user,
                    key,
                    pin,
                    party.id,
                    SplitTarget::OriginalRata(rata),
                )
                .await
                .map(|r| {
                    Notice::success("Rateazione annullata: la rata originaria è tornata")
                        .receipt(&party, r.operation_id)
                        .line("Codice tributo", r.restored.codice_tributo.clone())
                        .line("Anno", r.restored.year.to_string())
                        .line("Importo", amount(r.restored.amount))
                        .line(
                            "Ultimo giorno di utilizzo",
                            date(r.restored.last_day_of_use),
                        )
                })
        }
        "riduci" => {
            let rata = rata_of(&pairs, "rata-rid", &mut errors);
            let a = amount_of(&pairs, "importo-rid", &mut errors);
            let known = match parse_date(form_value(&pairs, "conosciuto")) {
                Ok(Some(d)) => Some(d),
                Ok(None) => {
                    errors.field("conosciuto", "Indicare la data");
                    None
                }
                Err(e) => {
                    errors.field("conosciuto", e);
                    None
                }
            };
            let (Some(rata), Some(a), Some(known)) = (rata, a, known) else {
                return show(&state, &ui, &party, None, &errors, &pairs, None, invalid).await;
            };
            state
                .app
                .reduce(&ui.user, key, pin, party.id, rata, a, known)
                .await
                .map(|r| {
                    Notice::success("Riduzione registrata: l'importo non è più disponibile")
                        .receipt(&party, r.operation_id)
                        .line("Importo", amount(r.amount))
                        .line("Conosciuto il", date(r.known_on))
                })
        }
        _ => Err(AppError::invalid("step", "passo sconosciuto")),
    };
    match result {
        Ok(notice) => {
            ui.leave_notice(&state, notice).await;
            see_other(&back)
        }
        Err(e) => {
            match field_of(&e) {
                Some(f) => errors.field(f, e.to_string()),
                None => errors.form(e.to_string()),
            }
            let status = crate::problem::status_of(e.code());
            show(&state, &ui, &party, None, &errors, &pairs, None, status).await
        }
    }
}

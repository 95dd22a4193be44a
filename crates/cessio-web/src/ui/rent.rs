//! R-RENT: the rent credit of art. 28 DL 34/2020 computed from the tenant's figures, month
//! by month, with the reason for every month that gives nothing.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use cessio_core::money::Cents;
use cessio_core::rent::{
    Activity, LeaseKind, MonthOutcome, RentCredit, RentInput, RentMonth, month_name,
};
use cessio_store::Party;
use maud::html;

use super::layout::{
    Field, FieldErrors, amount, csrf_field, date, error_summary, form_value, page as layout_page,
    parse_date,
};
use super::posted::PartyForm;
use super::{Ui, party_for, render_status};
use crate::WebState;

/// March–May, or April–June for seasonal hotels and agritourism.
const MONTHS: [u32; 4] = [3, 4, 5, 6];

pub async fn page(State(state): State<WebState>, ui: Ui, Path(cf): Path<String>) -> Response {
    let party = match party_for(&state, &ui, &cf).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    show(
        &ui,
        &party,
        &[],
        &FieldErrors::default(),
        None,
        StatusCode::OK,
    )
}

fn show(
    ui: &Ui,
    party: &Party,
    typed: &[(String, String)],
    errors: &FieldErrors,
    result: Option<&RentCredit>,
    status: StatusCode,
) -> Response {
    let select = |id: &str, label: &str, options: &[(&str, &str)]| {
        html! {
            div.select-wrapper.mb-4 {
                label for=(id) { (label) }
                select id=(id) name=(id) {
                    @for (v, t) in options {
                        option value=(v) selected[form_value(typed, id) == *v] { (t) }
                    }
                }
            }
        }
    };
    render_status(
        status,
        layout_page(
            ui.party_shell("Credito sui canoni di locazione", party),
            html! {
                h1 { "Credito d'imposta sui canoni di locazione (art. 28 DL 34/2020)" }
                p.lead { (super::layout::message("Il 60 % del canone per immobili non abitativi, il 30 % per l'affitto d'azienda, per ogni mese in cui il fatturato è calato almeno della metà rispetto allo stesso mese del 2019 (R-RENT).")) }
                @if let Some(r) = result {
                    section.alert.alert-success aria-labelledby="esito-titolo" {
                        h2.h4 #esito-titolo { "Credito spettante: " (amount(r.total)) }
                        div.table-responsive tabindex="0" role="region" aria-label="Tabella (scorrevole)" {
                            table.table.cessio-table {
                                caption { "Mese per mese" }
                                thead { tr { th scope="col" { "Mese" } th scope="col" { "Esito" } th.cessio-amount scope="col" { "Credito" } th scope="col" { "Utilizzabile dal" } } }
                                tbody {
                                    @for m in &r.months {
                                        tr {
                                            th scope="row" { (month_name(m.month)) }
                                            @match &m.outcome {
                                                MonthOutcome::Eligible { credit, usable_from } => {
                                                    td { "Spetta" }
                                                    td.cessio-amount { (amount(*credit)) }
                                                    td { @if let Some(d) = usable_from { (date(*d)) } @else { "dopo il pagamento del canone" } }
                                                }
                                                MonthOutcome::NotEligible(why) => {
                                                    td { "Non spetta: " (why.to_string()) }
                                                    td.cessio-amount { (amount(Cents::ZERO)) }
                                                    td {}
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        @if r.rounded_down { p.mb-0 { "Le frazioni di centesimo sono state troncate." } }
                    }
                }
                (error_summary(errors))
                form method="post" novalidate {
                    (csrf_field(&ui.csrf))
                    div.row.g-3 {
                        div.col-md-4 { (select("contratto", "Contratto", &[("non_abitativo", "Locazione di immobile non abitativo (60 %)"), ("azienda", "Affitto d'azienda (30 %)")])) }
                        div.col-md-4 { (select("attivita", "Attività", &[("ordinaria", "Ordinaria"), ("albergo", "Alberghiera"), ("agriturismo", "Agrituristica"), ("ente", "Ente non commerciale, attività istituzionale")])) }
                        div.col-md-4 {
                            div.form-check.mt-4 {
                                input #stagionale type="checkbox" name="stagionale" value="si" checked[form_value(typed, "stagionale") == "si"];
                                label for="stagionale" { "Attività stagionale (aprile–giugno)" }
                            }
                        }
                        div.col-md-4 { (Field::text("ricavi", "Ricavi 2019", form_value(typed, "ricavi")).inputmode("decimal").render(errors)) }
                    }
                    div.table-responsive tabindex="0" role="region" aria-label="Tabella (scorrevole)" {
                        table.table.cessio-table {
                            caption { "Mesi (lasciare vuoti quelli senza canone)" }
                            thead { tr { th scope="col" { "Mese" } th scope="col" { "Canone" } th scope="col" { "Fatturato 2019" } th scope="col" { "Fatturato 2020" } th scope="col" { "Pagato il" } } }
                            tbody {
                                @for m in MONTHS {
                                    tr {
                                        th scope="row" { (month_name(m)) }
                                        @for (field, label) in [("canone", "Canone"), ("prima", "Fatturato 2019"), ("dopo", "Fatturato 2020"), ("pagato", "Pagato il")] {
                                            @let id = format!("{field}_{m}");
                                            td {
                                                label.visually-hidden for=(id) { (label) " di " (month_name(m)) }
                                                input.form-control.cessio-table-input.is-invalid[errors.of(&id).is_some()] id=(id) name=(id) value=(form_value(typed, &id))
                                                    aria-describedby=[errors.of(&id).map(|_| format!("{id}-errore"))];
                                                @if let Some(e) = errors.of(&id) { div.invalid-feedback.d-block id={ (id) "-errore" } { (super::layout::message(e)) } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    button.btn.btn-primary type="submit" { "Calcola" }
                }
            },
        ),
    )
}

fn cents(pairs: &[(String, String)], id: &str, errors: &mut FieldErrors) -> Option<Cents> {
    match form_value(pairs, id) {
        "" => Some(Cents::ZERO),
        t => match Cents::parse_amount(t) {
            Ok(a) => Some(a),
            Err(e) => {
                errors.field(id, e.to_string());
                None
            }
        },
    }
}

pub async fn submit(
    State(state): State<WebState>,
    PartyForm(ui, party, pairs): PartyForm<Vec<(String, String)>>,
) -> Response {
    let mut errors = FieldErrors::default();
    let revenue = cents(&pairs, "ricavi", &mut errors);
    let mut months = Vec::new();
    for m in MONTHS {
        let id = |f: &str| format!("{f}_{m}");
        if ["canone", "prima", "dopo", "pagato"]
            .iter()
            .all(|f| form_value(&pairs, &id(f)).is_empty())
        {
            continue;
        }
        let rent = cents(&pairs, &id("canone"), &mut errors);
        let before = cents(&pairs, &id("prima"), &mut errors);
        let after = cents(&pairs, &id("dopo"), &mut errors);
        let paid = match parse_date(form_value(&pairs, &id("pagato"))) {
            Ok(d) => Some(d),
            Err(e) => {
                errors.field(&id("pagato"), e);
                None
            }
        };
        if let (Some(rent), Some(before), Some(after), Some(paid_on)) = (rent, before, after, paid)
        {
            months.push(RentMonth {
                month: m,
                rent,
                turnover_before: before,
                turnover: after,
                paid_on,
            });
        }
    }
    let Some(revenue_before) = revenue.filter(|_| errors.is_empty()) else {
        return show(
            &ui,
            &party,
            &pairs,
            &errors,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    let input = RentInput {
        lease: if form_value(&pairs, "contratto") == "azienda" {
            LeaseKind::BusinessLease
        } else {
            LeaseKind::NonResidential
        },
        activity: match form_value(&pairs, "attivita") {
            "albergo" => Activity::Hotel,
            "agriturismo" => Activity::Agritourism,
            "ente" => Activity::NonCommercialInstitutional,
            _ => Activity::Ordinary,
        },
        seasonal: form_value(&pairs, "stagionale") == "si",
        promiscuous: false,
        revenue_before,
        months,
    };
    match state.app.rent_credit(&ui.user, &input) {
        Ok(r) => show(&ui, &party, &pairs, &errors, Some(&r), StatusCode::OK),
        Err(e) => {
            errors.form(e.to_string());
            show(
                &ui,
                &party,
                &pairs,
                &errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    }
}

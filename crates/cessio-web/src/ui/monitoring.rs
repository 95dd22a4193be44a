//! F1 Monitoraggio: the table per credit type and reference year, and a chart of the
//! residual credit by year drawn on the server (SVG, no script).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use cessio_app::MonitorRow;
use cessio_core::money::Cents;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Field, FieldErrors, amount, error_summary, page as layout_page, parse_date};
use super::{Ui, error_page, party_for, render, render_status};
use crate::WebState;

#[derive(Deserialize, Default)]
pub struct MonitoringQuery {
    /// "Situazione al": the end of a past day.
    #[serde(default)]
    al: Option<String>,
}

pub async fn page(
    State(state): State<WebState>,
    ui: Ui,
    Path(cf): Path<String>,
    Query(q): Query<MonitoringQuery>,
) -> Response {
    let party = match party_for(&state, &ui, &cf).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let typed = q.al.unwrap_or_default();
    let mut errors = FieldErrors::default();
    let as_of = match parse_date(&typed) {
        Ok(d) => d,
        Err(e) => {
            errors.field("al", e);
            None
        }
    };
    let rows = if errors.is_empty() {
        match state.app.monitoring(&ui.user, party.id, as_of).await {
            Ok(r) => r,
            Err(e @ cessio_app::AppError::Invalid { .. }) => {
                errors.field("al", e.to_string());
                Vec::new()
            }
            Err(e) => return error_page(Some(&ui), &e),
        }
    } else {
        Vec::new()
    };
    let status = if errors.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let body = html! {
        h1 { "Monitoraggio crediti" }
        p.lead {
            @if let Some(d) = as_of { "Situazione alla fine del " (super::layout::date(d)) "." }
            @else { "Situazione ad oggi, per tipo di credito e anno di riferimento." }
        }
        (error_summary(&errors))
        form.row.g-2.mb-4 method="get" {
            div.col-md-6 {
                (Field::text("al", "Situazione al (facoltativo)", &typed).hint("gg/mm/aaaa: la situazione alla fine di quel giorno").render(&errors))
            }
            div.col-md-6.d-flex.align-items-start.pt-md-4 {
                button.btn.btn-primary.me-2 type="submit" { "Aggiorna" }
                a.btn.btn-outline-primary href="?" { "Ad oggi" }
            }
        }
        @if rows.is_empty() && errors.is_empty() {
            p { "Nessun credito per questo soggetto." }
        } @else if !rows.is_empty() {
            (chart(&rows))
            (table(&rows))
        }
    };
    let markup = layout_page(ui.party_shell("Monitoraggio crediti", &party), body);
    if status == axum::http::StatusCode::OK {
        render(markup)
    } else {
        render_status(status, markup)
    }
}

fn table(rows: &[MonitorRow]) -> Markup {
    html! {
        div.table-responsive tabindex="0" role="region" aria-label="Tabella (scorrevole)" {
            table.table.table-striped.cessio-table {
                caption { (super::layout::message("Crediti per tipo e anno di riferimento. «Con limiti»: cedibili solo a soggetti qualificati, ai clienti della propria banca o non a banche (R-CHAIN, R-BANK-CLIENT, R-ECO-2018)")) }
                thead {
                    tr {
                        th scope="col" { "Tipo di credito" }
                        th scope="col" { "Anno" }
                        th.cessio-amount scope="col" { "Ricevuti in attesa" }
                        th.cessio-amount scope="col" { "Ricevuti accettati" }
                        th.cessio-amount scope="col" { "Ricevuti rifiutati" }
                        th.cessio-amount scope="col" { "Ceduti accettati" }
                        th.cessio-amount scope="col" { "Ceduti in attesa" }
                        th.cessio-amount scope="col" { "Utilizzati in F24" }
                        th.cessio-amount scope="col" { "Prenotati in F24" }
                        th.cessio-amount scope="col" { "Scaduti" }
                        th.cessio-amount scope="col" { "Residuo cedibile" }
                        th.cessio-amount scope="col" { "di cui con limiti (§5)" }
                        th.cessio-amount scope="col" { "Residuo solo F24" }
                    }
                }
                tbody {
                    @for r in rows {
                        tr {
                            th scope="row" { (r.type_name) }
                            td { (r.year) }
                            td.cessio-amount { (amount(r.received_pending)) }
                            td.cessio-amount { (amount(r.received_accepted)) }
                            td.cessio-amount { (amount(r.received_refused)) }
                            td.cessio-amount { (amount(r.ceded_accepted)) }
                            td.cessio-amount { (amount(r.ceded_pending)) }
                            td.cessio-amount { (amount(r.used_done)) }
                            td.cessio-amount { (amount(r.used_reserved)) }
                            td.cessio-amount { (amount(r.expired)) }
                            td.cessio-amount { strong { (amount(r.residual_cedible)) } }
                            td.cessio-amount { (amount(r.residual_restricted)) }
                            td.cessio-amount { (amount(r.residual_not_cedible)) }
                        }
                    }
                }
            }
        }
    }
}

/// Residual credit by reference year: cedible and usable only in F24, stacked.
fn chart(rows: &[MonitorRow]) -> Markup {
    let mut by_year: BTreeMap<u16, (i64, i64)> = BTreeMap::new();
    for r in rows {
        let e = by_year.entry(r.year).or_default();
        e.0 = e.0.saturating_add(r.residual_cedible.get());
        e.1 = e.1.saturating_add(r.residual_not_cedible.get());
    }
    let max = by_year
        .values()
        .map(|(a, b)| a.saturating_add(*b))
        .max()
        .unwrap_or(0)
        .max(1);
    let (width, height, top, bottom, left) = (720i64, 260i64, 24i64, 40i64, 8i64);
    let plot = height - top - bottom;
    let n = by_year.len().max(1) as i64;
    let slot = (width - 2 * left) / n;
    let bar = (slot * 6 / 10).clamp(8, 80);
    let scaled = |v: i64| -> i64 { ((v as i128) * (plot as i128) / (max as i128)) as i64 };
    html! {
        figure.mb-4 {
            svg.cessio-chart role="img" aria-labelledby="grafico-titolo grafico-desc"
                viewBox={ "0 0 " (width) " " (height) } width=(width) height=(height)
                xmlns="http://www.w3.org/2000/svg" {
                title #grafico-titolo { "Credito residuo per anno di riferimento" }
                desc #grafico-desc {
                    @for (year, (c, nc)) in &by_year {
                        (year) ": cedibile " (amount(Cents::new(*c))) ", solo F24 " (amount(Cents::new(*nc))) ". "
                    }
                }
                line x1=(left) y1=(top + plot) x2=(width - left) y2=(top + plot) stroke="#5c6f82" stroke-width="1" {}
                // The scale: the tallest bar's exact amount.
                line x1=(left) y1=(top) x2=(width - left) y2=(top) stroke="#c5c7c9" stroke-width="1" stroke-dasharray="4 4" {}
                text x=(width - left) y=(top - 6) text-anchor="end" font-size="12" fill="#1a1a1a" { "massimo " (amount(Cents::new(max))) }
                @for (i, (year, (c, nc))) in by_year.iter().enumerate() {
                    @let x = left + (i as i64) * slot + (slot - bar) / 2;
                    @let hc = scaled(*c);
                    @let hn = scaled(*nc);
                    @let total = c.saturating_add(*nc);
                    rect x=(x) y=(top + plot - hc) width=(bar) height=(hc) fill="#0066cc" {}
                    rect x=(x) y=(top + plot - hc - hn) width=(bar) height=(hn) fill="#5c6f82" {}
                    text x=(x + bar / 2) y=(top + plot + 18) text-anchor="middle" font-size="13" fill="#1a1a1a" { (year) }
                    // Exact amounts or none: a rounded figure would be a silent rounding.
                    @if slot >= 110 {
                        text x=(x + bar / 2) y=(top + plot - hc - hn - 6) text-anchor="middle" font-size="11" fill="#1a1a1a" { (amount(Cents::new(total))) }
                    }
                }
            }
            figcaption {
                span.cessio-legend-swatch.cedibile aria-hidden="true" {} "Residuo cedibile "
                span.cessio-legend-swatch.non-cedibile.ms-3 aria-hidden="true" {} "Residuo utilizzabile solo in F24"
            }
        }
    }
}

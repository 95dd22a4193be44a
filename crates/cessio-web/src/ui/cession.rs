//! F2 Cessione: the cedible holdings with the amount prefilled at the maximum, one
//! cessionario per row or one for all the selected rows, a summary checked by the app
//! exactly as the cession will be, then PIN and confirmation, then the receipt.

use std::collections::HashMap;

use super::posted::PartyForm;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use cessio_app::{AppError, CedibleHolding, CessionLine};
use cessio_core::ledger::RataId;
use cessio_core::money::Cents;
use cessio_store::Party;
use maud::{Markup, html};

use super::layout::{
    Field, FieldErrors, amount, amount_input, csrf_field, error_summary, page as layout_page,
    pin_field,
};
use super::{
    Notice, Ui, error_page, field_of, party_for, party_home, pin_of, render, render_status,
};
use crate::{WebState, random_token};

/// What the user typed in one row of the list.
#[derive(Debug, Default, Clone)]
struct RowInput {
    selected: bool,
    amount: String,
    cf: String,
}

#[derive(Debug, Default)]
struct ListInput {
    rows: HashMap<RataId, RowInput>,
    cf_all: String,
}

impl ListInput {
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut input = ListInput::default();
        for (k, v) in pairs {
            if k == "sel" {
                if let Ok(r) = v.parse() {
                    input.rows.entry(r).or_default().selected = true;
                }
            } else if k == "cf_tutti" {
                input.cf_all = v.clone();
            } else if let Some(r) = k.strip_prefix("importo_").and_then(|r| r.parse().ok()) {
                input.rows.entry(r).or_default().amount = v.clone();
            } else if let Some(r) = k.strip_prefix("cf_").and_then(|r| r.parse().ok()) {
                input.rows.entry(r).or_default().cf = v.clone();
            }
        }
        input
    }
}

fn field(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

pub async fn page(State(state): State<WebState>, ui: Ui, Path(cf): Path<String>) -> Response {
    let party = match party_for(&state, &ui, &cf).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let holdings = match state.app.cedible(&ui.user, party.id).await {
        Ok(h) => h,
        Err(e) => return error_page(Some(&ui), &e),
    };
    let notice = ui.take_notice(&state).await;
    let mut shell = ui.party_shell("Cessione crediti", &party);
    shell.notice = notice;
    render(layout_page(
        shell,
        list(
            &ui,
            &party,
            &holdings,
            &ListInput::default(),
            &FieldErrors::default(),
        ),
    ))
}

fn row_id(rata: RataId, what: &str) -> String {
    format!("{what}_{rata}")
}

fn list(
    ui: &Ui,
    party: &Party,
    holdings: &[CedibleHolding],
    input: &ListInput,
    errors: &FieldErrors,
) -> Markup {
    html! {
        h1 { "Cessione crediti" }
        @if holdings.is_empty() {
            p.lead { "Nessuna rata cedibile: i crediti ricevuti diventano cedibili quando sono accettati." }
            a href=(party_home(party)) { "Torna alla home" }
        } @else {
            p.lead { "Seleziona le rate da cedere. L'importo proposto è il massimo cedibile; le rate tracciabili si cedono solo per intero." }
            (error_summary(errors))
            form method="post" novalidate {
                (csrf_field(&ui.csrf))
                input type="hidden" name="step" value="riepilogo";
                div.row.g-2.mb-3 {
                    div.col-md-6 {
                        (Field::text("cf_tutti", "Un cessionario per più righe", &input.cf_all)
                            .hint("Il suo codice fiscale vale per le righe selezionate che non ne hanno uno proprio.")
                            .cf().render(errors))
                    }
                    div.col-md-6.d-flex.align-items-start.pt-md-4 {
                        button.btn.btn-outline-primary type="button" data-copy-cf="cf_tutti" { "Copia nelle righe selezionate" }
                    }
                }
                div.table-responsive tabindex="0" role="region" aria-label="Tabella (scorrevole)" {
                    table.table.cessio-table {
                        caption { "Rate cedibili" }
                        thead {
                            tr {
                                th scope="col" {
                                    div.form-check.mb-0 {
                                        input #sel-tutte type="checkbox" data-select-all="sel";
                                        label for="sel-tutte" { span.visually-hidden { "Seleziona tutte le righe" } "Tutte" }
                                    }
                                }
                                th scope="col" { "Tipo di credito" }
                                th scope="col" { "Anno" }
                                th scope="col" { "Codice tributo" }
                                th scope="col" { "Codice univoco / protocollo" }
                                th.cessio-amount scope="col" { "Massimo cedibile" }
                                th scope="col" { "Cedibilità" }
                                th scope="col" { "Importo da cedere" }
                                th scope="col" { "Codice fiscale del cessionario" }
                            }
                        }
                        tbody {
                            @for h in holdings {
                                @let row = input.rows.get(&h.rata).cloned().unwrap_or_default();
                                @let sel_id = row_id(h.rata, "sel");
                                @let amount_id = row_id(h.rata, "importo");
                                @let cf_id = row_id(h.rata, "cf");
                                @let amount_value = if row.amount.is_empty() { amount_input(h.max_cedibile) } else { row.amount.clone() };
                                @let amount_error = errors.of(&amount_id);
                                @let cf_error = errors.of(&cf_id);
                                tr data-row {
                                    td {
                                        div.form-check.mb-0 {
                                            input id=(sel_id) type="checkbox" name="sel" value=(h.rata) checked[row.selected];
                                            label for=(sel_id) { span.visually-hidden { "Seleziona la rata " (h.codice_univoco) } }
                                        }
                                    }
                                    td { (h.type_name) }
                                    td { (h.year) }
                                    td { (h.codice_tributo) }
                                    td.cessio-code { @if h.tracciabile { (h.codice_univoco) } @else { (h.protocol) } }
                                    td.cessio-amount { (amount(h.max_cedibile)) }
                                    td { (h.cedibilita.label) }
                                    td {
                                        @if h.partial_allowed {
                                            label.visually-hidden for=(amount_id) { "Importo da cedere della rata " (h.codice_univoco) }
                                            input.form-control.cessio-table-input.is-invalid[amount_error.is_some()]
                                                id=(amount_id) name=(amount_id) value=(amount_value) inputmode="decimal"
                                                aria-invalid=[amount_error.map(|_| "true")]
                                                aria-describedby=[amount_error.map(|_| format!("{amount_id}-errore"))];
                                        } @else {
                                            input type="hidden" name=(amount_id) value=(amount_input(h.max_cedibile));
                                            span { (amount(h.max_cedibile)) } br;
                                            small.text-muted { (super::layout::message("solo per intero (R-PARTIAL)")) }
                                        }
                                        @if let Some(e) = amount_error {
                                            div.invalid-feedback.d-block id={ (amount_id) "-errore" } { (super::layout::message(e)) }
                                        }
                                    }
                                    td {
                                        label.visually-hidden for=(cf_id) { "Codice fiscale del cessionario della rata " (h.codice_univoco) }
                                        input.form-control.cessio-table-input.is-invalid[cf_error.is_some()]
                                            id=(cf_id) name=(cf_id) value=(row.cf) autocomplete="off" data-row-cf
                                            data-cf-mark={ (cf_id) "-verifica" }
                                            aria-invalid=[cf_error.map(|_| "true")]
                                            aria-describedby=[cf_error.map(|_| format!("{cf_id}-errore"))];
                                        @if let Some(e) = cf_error {
                                            div.invalid-feedback.d-block id={ (cf_id) "-errore" } { (super::layout::message(e)) }
                                        }
                                        div.cessio-cf-mark id={ (cf_id) "-verifica" } aria-live="polite" {}
                                    }
                                }
                            }
                        }
                    }
                }
                button.btn.btn-primary type="submit" { "Prosegui al riepilogo" }
            }
        }
    }
}

/// A line the summary shows and the confirmation sends.
#[derive(Debug, Clone)]
struct Line {
    holding: CedibleHolding,
    amount: Cents,
    cf: String,
}

impl Line {
    fn to_app(&self) -> CessionLine {
        CessionLine {
            rata: self.holding.rata,
            cessionario_cf: self.cf.clone(),
            amount: Some(self.amount),
        }
    }
}

pub async fn submit(
    State(state): State<WebState>,
    PartyForm(ui, party, pairs): PartyForm<Vec<(String, String)>>,
) -> Response {
    let holdings = match state.app.cedible(&ui.user, party.id).await {
        Ok(h) => h,
        Err(e) => return error_page(Some(&ui), &e),
    };
    match field(&pairs, "step").as_str() {
        "conferma" => confirm(&state, &ui, &party, &holdings, &pairs).await,
        "modifica" => {
            let input = confirmed_as_input(&pairs);
            render(layout_page(
                ui.party_shell("Cessione crediti", &party),
                list(&ui, &party, &holdings, &input, &FieldErrors::default()),
            ))
        }
        _ => summary_step(&state, &ui, &party, &holdings, &pairs).await,
    }
}

async fn summary_step(
    state: &WebState,
    ui: &Ui,
    party: &Party,
    holdings: &[CedibleHolding],
    pairs: &[(String, String)],
) -> Response {
    let input = ListInput::from_pairs(pairs);
    let mut errors = FieldErrors::default();
    let mut lines = Vec::new();
    for h in holdings {
        let Some(row) = input.rows.get(&h.rata).filter(|r| r.selected) else {
            continue;
        };
        let cf_id = row_id(h.rata, "cf");
        let amount_id = row_id(h.rata, "importo");
        let cf = if row.cf.trim().is_empty() {
            input.cf_all.trim().to_string()
        } else {
            row.cf.trim().to_string()
        };
        if cf.is_empty() {
            errors.field(
                &cf_id,
                format!(
                    "Rata {}: indicare il codice fiscale del cessionario",
                    h.codice_univoco
                ),
            );
        }
        let amount = match Cents::parse_positive_amount(&row.amount) {
            Ok(a) => Some(a),
            Err(e) => {
                errors.field(&amount_id, format!("Rata {}: {e}", h.codice_univoco));
                None
            }
        };
        if let Some(amount) = amount.filter(|_| !cf.is_empty()) {
            lines.push(Line {
                holding: h.clone(),
                amount,
                cf,
            });
        }
    }
    if lines.is_empty() && errors.is_empty() {
        errors.form("Selezionare almeno una rata da cedere");
    }
    if errors.is_empty() {
        let app_lines: Vec<CessionLine> = lines.iter().map(Line::to_app).collect();
        match state
            .app
            .preview_cession(&ui.user, party.id, &app_lines)
            .await
        {
            Ok(outcomes) => {
                for (line, outcome) in lines.iter().zip(outcomes) {
                    if let Some(e) = outcome {
                        let id = match &e {
                            AppError::Cf(_)
                            | AppError::CfUnknown { .. }
                            | AppError::Rule { rule: "R-PA", .. } => {
                                row_id(line.holding.rata, "cf")
                            }
                            AppError::Invalid { field, .. } if field == "cessionario_cf" => {
                                row_id(line.holding.rata, "cf")
                            }
                            _ => row_id(line.holding.rata, "importo"),
                        };
                        errors.field(
                            &id,
                            format!(
                                "Rata {}: {}",
                                line.holding.codice_univoco,
                                super::refusal(&e)
                            ),
                        );
                    }
                }
            }
            Err(e) => errors.form(super::refusal(&e)),
        }
    }
    if !errors.is_empty() {
        return render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            layout_page(
                ui.party_shell("Cessione crediti", party),
                list(ui, party, holdings, &input, &errors),
            ),
        );
    }
    render(layout_page(
        ui.party_shell("Riepilogo della cessione", party),
        summary(ui, &lines, &random_token(), false, &FieldErrors::default()),
    ))
}

fn summary(ui: &Ui, lines: &[Line], key: &str, disclose: bool, errors: &FieldErrors) -> Markup {
    let total = Cents::checked_sum(lines.iter().map(|l| l.amount)).unwrap_or(Cents::MAX);
    html! {
        h1 { "Riepilogo della cessione" }
        p.lead { "Controlla le righe: dopo la conferma la cessione è comunicata al cessionario, che potrà accettarla o rifiutarla." }
        (error_summary(errors))
        div.table-responsive tabindex="0" role="region" aria-label="Tabella (scorrevole)" {
            table.table.cessio-table {
                caption { "Rate da cedere" }
                thead {
                    tr {
                        th scope="col" { "Tipo di credito" }
                        th scope="col" { "Anno" }
                        th scope="col" { "Codice tributo" }
                        th scope="col" { "Codice univoco / protocollo" }
                        th scope="col" { "Cessionario" }
                        th.cessio-amount scope="col" { "Importo" }
                    }
                }
                tbody {
                    @for l in lines {
                        tr {
                            td { (l.holding.type_name) }
                            td { (l.holding.year) }
                            td { (l.holding.codice_tributo) }
                            td.cessio-code { @if l.holding.tracciabile { (l.holding.codice_univoco) } @else { (l.holding.protocol) } }
                            td.cessio-code { (l.cf) }
                            td.cessio-amount { (amount(l.amount)) }
                        }
                    }
                }
                tfoot {
                    tr {
                        th scope="row" colspan="5" { "Totale" }
                        td.cessio-amount { strong { (amount(total)) } }
                    }
                }
            }
        }
        form method="post" novalidate {
            (csrf_field(&ui.csrf))
            input type="hidden" name="chiave" value=(key);
            @for l in lines {
                input type="hidden" name="l_rata" value=(l.holding.rata);
                input type="hidden" name="l_importo" value=(l.amount.get());
                input type="hidden" name="l_cf" value=(l.cf);
            }
            @let consent_error = errors.of("autorizzo");
            div.form-check.mb-4 {
                input.is-invalid[consent_error.is_some()] #autorizzo type="checkbox" name="autorizzo" value="si" required
                    checked[disclose]
                    aria-invalid=[consent_error.map(|_| "true")]
                    aria-describedby=[consent_error.map(|_| "autorizzo-errore")];
                label for="autorizzo" { "Si autorizza il cessionario alla visualizzazione, in fase di accettazione o rifiuto, del nominativo del cedente (obbligatorio per proseguire)" }
                @if let Some(e) = consent_error {
                    div.invalid-feedback.d-block #autorizzo-errore { (super::layout::message(e)) }
                }
            }
            (pin_field(&ui.user, errors))
            button.btn.btn-primary.me-2 type="submit" name="step" value="conferma" { "Conferma la cessione" }
            button.btn.btn-outline-primary type="submit" name="step" value="modifica" { "Modifica" }
        }
    }
}

/// The lines of a confirmation, as the summary sent them: what the app is asked to do.
fn confirmed_lines(pairs: &[(String, String)]) -> Result<Vec<CessionLine>, String> {
    let values = |name: &str| -> Vec<&str> {
        pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let (ratas, amounts, cfs) = (values("l_rata"), values("l_importo"), values("l_cf"));
    if ratas.is_empty() || ratas.len() != amounts.len() || ratas.len() != cfs.len() {
        return Err("riepilogo incompleto".into());
    }
    let mut lines = Vec::with_capacity(ratas.len());
    for ((rata, amount), cf) in ratas.into_iter().zip(amounts).zip(cfs) {
        let rata: RataId = rata.parse().map_err(|_| "riepilogo alterato".to_string())?;
        let cents: i64 = amount
            .parse()
            .map_err(|_| "riepilogo alterato".to_string())?;
        lines.push(CessionLine {
            rata,
            cessionario_cf: cf.to_string(),
            amount: Some(Cents::new(cents)),
        });
    }
    Ok(lines)
}

/// The summary's lines with what the page shows of each holding; `None` when a rata is
/// no longer cedible (ceded or used in the meantime).
fn shown_lines(holdings: &[CedibleHolding], lines: &[CessionLine]) -> Option<Vec<Line>> {
    let by_rata: HashMap<RataId, &CedibleHolding> = holdings.iter().map(|h| (h.rata, h)).collect();
    lines
        .iter()
        .map(|l| {
            by_rata.get(&l.rata).map(|h| Line {
                holding: (*h).clone(),
                amount: l.amount.unwrap_or(h.max_cedibile),
                cf: l.cessionario_cf.clone(),
            })
        })
        .collect()
}

/// Back from the summary to the list, with what the user had chosen.
fn confirmed_as_input(pairs: &[(String, String)]) -> ListInput {
    let mut input = ListInput::default();
    let ratas = pairs.iter().filter(|(k, _)| k == "l_rata");
    let amounts = pairs.iter().filter(|(k, _)| k == "l_importo");
    let cfs = pairs.iter().filter(|(k, _)| k == "l_cf");
    for (((_, r), (_, a)), (_, c)) in ratas.zip(amounts).zip(cfs) {
        if let (Ok(r), Ok(a)) = (r.parse(), a.parse::<i64>()) {
            input.rows.insert(
                r,
                RowInput {
                    selected: true,
                    amount: amount_input(Cents::new(a)),
                    cf: c.clone(),
                },
            );
        }
    }
    input
}

async fn confirm(
    state: &WebState,
    ui: &Ui,
    party: &Party,
    holdings: &[CedibleHolding],
    pairs: &[(String, String)],
) -> Response {
    let key = field(pairs, "chiave");
    let disclose = field(pairs, "autorizzo") == "si";
    let pin = field(pairs, "pin");
    let refused = |reason: String| {
        let mut errors = FieldErrors::default();
        errors.form(format!(
            "La cessione non è stata eseguita: {reason}. Ripetere la selezione."
        ));
        render_status(
            StatusCode::CONFLICT,
            layout_page(
                ui.party_shell("Cessione crediti", party),
                list(ui, party, holdings, &ListInput::default(), &errors),
            ),
        )
    };
    let app_lines = match confirmed_lines(pairs) {
        Ok(l) => l,
        Err(reason) => return refused(reason),
    };
    let pin = pin_of(&pin);
    // Read before ceding: afterwards the rate are no longer in the cedible list.
    let shown = shown_lines(holdings, &app_lines);
    // The app first looks the key up: a confirmation posted twice gets the first receipt
    // even though its rate are no longer cedible.
    match state
        .app
        .cede(&ui.user, &key, pin, party.id, &app_lines, disclose)
        .await
    {
        Ok(receipt) => {
            let mut notice = Notice::success("Cessione comunicata")
                .receipt(party, receipt.operation_id)
                .line(
                    "Protocollo dell'operazione",
                    receipt.operation_id.to_string(),
                )
                .line("Registrata il", super::layout::datetime(receipt.at))
                .line("Importo totale", amount(receipt.amount))
                .line("Rate cedute", app_lines.len().to_string())
                .line(
                    "Stato",
                    "In attesa di risposta del cessionario (accettazione o rifiuto)",
                );
            if receipt.replayed {
                notice = notice.line("Nota", "richiesta già ricevuta: nessuna cessione ripetuta");
            }
            for l in shown.iter().flatten() {
                notice = notice.line(
                    format!("Rata {}", l.holding.codice_univoco),
                    format!("{} a {}", amount(l.amount), l.cf),
                );
            }
            ui.leave_notice(state, notice).await;
            super::see_other(&format!("{}/cessione", party_home(party)))
        }
        Err(e) => {
            let Some(lines) = shown else {
                return refused(
                    "una rata del riepilogo non è più cedibile (ceduta o utilizzata nel frattempo)"
                        .into(),
                );
            };
            let mut errors = FieldErrors::default();
            match field_of(&e) {
                Some(f) => errors.field(f, super::refusal(&e)),
                None => errors.form(super::refusal(&e)),
            }
            let status = crate::problem::status_of(e.code());
            render_status(
                status,
                layout_page(
                    ui.party_shell("Riepilogo della cessione", party),
                    summary(ui, &lines, &key, disclose, &errors),
                ),
            )
        }
    }
}

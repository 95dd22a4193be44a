//! The page shell and the small components every page shares: header, the party the user
//! is working for, notices, error summaries linked to their fields, Italian formats.
//!
//! A page never shows a catalogue key: a credit type is its Italian name (`type_name`).
//! Bootstrap Italia draws a field's label over the top edge of its box, so
//! `assets/cessio/cessio.css` gives every field that room; the browser journeys' audit
//! keeps headings, legends and labels apart.

use cessio_app::Principal;
use cessio_core::catalogue::Catalogue;
use cessio_core::money::Cents;
use cessio_core::time::to_rome;
use cessio_store::{Party, PartyKind};
use chrono::{DateTime, NaiveDate, Utc};
use maud::{DOCTYPE, Markup, html};

use super::assets::url;
use super::rules;
use super::{Notice, NoticeKind};

/// The trimmed value of the field `name` of a form read as name-value pairs (forms whose
/// fields repeat or vary by row); empty when it was not sent.
pub fn form_value<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.trim())
}

/// `1.234,56 €`.
pub fn amount(c: Cents) -> String {
    c.to_string()
}

/// `1.234,56`: the amount as a person would type it back into a field.
pub fn amount_input(c: Cents) -> String {
    c.to_string().trim_end_matches(" €").to_string()
}

/// `12.345`: a count with the Italian thousands separator.
pub fn thousands(n: usize) -> String {
    cessio_core::money::thousands(u64::try_from(n).unwrap_or(u64::MAX))
}

/// `gg/mm/aaaa`.
pub fn date(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

/// `gg/mm/aaaa hh:mm`, Europe/Rome.
pub fn datetime(t: DateTime<Utc>) -> String {
    to_rome(t).format("%d/%m/%Y %H:%M").to_string()
}

pub fn kind_label(k: PartyKind) -> &'static str {
    match k {
        PartyKind::Person => "Persona fisica",
        PartyKind::Company => "Impresa o ente",
        PartyKind::Bank => "Banca",
        PartyKind::FinancialIntermediary => "Intermediario finanziario",
        PartyKind::Insurer => "Impresa di assicurazione",
        PartyKind::PublicAdministration => "Pubblica amministrazione",
    }
}

/// The Italian name of a credit type, as the catalogue gives it ("Bonus facciate" for
/// `bonus_facciate`). A key the catalogue no longer has is shown as it is rather than
/// hidden: the row still has to be recognisable.
pub fn type_name<'a>(catalogue: &'a Catalogue, key: &'a str) -> &'a str {
    catalogue.get(key).map_or(key, |t| t.name.as_str())
}

/// Errors of a form: each tied to the id of its field, or to none (the whole form).
#[derive(Debug, Default, Clone)]
pub struct FieldErrors(pub Vec<(Option<String>, String)>);

impl FieldErrors {
    pub fn field(&mut self, id: &str, message: impl Into<String>) {
        self.0.push((Some(id.to_string()), message.into()));
    }

    pub fn form(&mut self, message: impl Into<String>) {
        self.0.push((None, message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn of(&self, id: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f.as_deref() == Some(id))
            .map(|(_, m)| m.as_str())
    }
}

/// A message as a page shows it: the sentence without the rule ids in parentheses that
/// the app writes into it ("… solo per intero (R-PARTIAL)"), and those ids, in order and
/// once each. Only ids the Regole page explains are taken out; any other parenthesis stays.
pub fn plain_message(text: &str) -> (String, Vec<&'static str>) {
    let mut plain = String::with_capacity(text.len());
    let mut ids: Vec<&'static str> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('(') {
        let Some(len) = rest[open..].find(')') else {
            break;
        };
        let close = open + len;
        plain.push_str(&rest[..open]);
        let named: Option<Vec<&'static str>> = rest[open + 1..close]
            .split(',')
            .map(|id| rules::find(id.trim()).map(|r| r.id))
            .collect();
        match named {
            Some(named) => {
                plain.truncate(plain.trim_end().len());
                for id in named {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
            None => plain.push_str(&rest[open..=close]),
        }
        rest = &rest[close + 1..];
    }
    plain.push_str(rest);
    plain.truncate(plain.trim_end().len());
    (plain, ids)
}

/// The links from a message to the rules it names on the Regole page.
pub fn rule_links(ids: &[&str]) -> Markup {
    html! {
        @for id in ids {
            " "
            a.cessio-rule-link href=(rules::href(id)) { "Regola " (id) }
        }
    }
}

/// A message in plain Italian followed by the links to its rules.
pub fn message(text: &str) -> Markup {
    let (plain, ids) = plain_message(text);
    html! { (plain) (rule_links(&ids)) }
}

/// The error summary at the top of a form: each message links to its field, and the
/// summary takes focus order first so that screen readers announce it.
pub fn error_summary(errors: &FieldErrors) -> Markup {
    html! {
        @if !errors.is_empty() {
            div.alert.alert-danger role="alert" aria-labelledby="errori-titolo" tabindex="-1" id="errori" {
                h2.h5 #errori-titolo { "L'operazione non è stata eseguita" }
                ul.mb-0 {
                    @for (field, text) in &errors.0 {
                        @let (plain, ids) = plain_message(text);
                        li {
                            // The rule's link goes under the field's, never inside it nor on
                            // the same line as its wrapped text.
                            @if let Some(f) = field {
                                a href={ "#" (f) } { (plain) }
                            } @else {
                                (plain)
                            }
                            @if !ids.is_empty() {
                                span.d-block { (rule_links(&ids)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A labelled text input with its error, in Bootstrap Italia's form markup.
pub struct Field<'a> {
    pub id: &'a str,
    pub label: &'a str,
    pub value: &'a str,
    pub hint: Option<&'a str>,
    pub kind: &'a str,
    pub required: bool,
    pub autocomplete: Option<&'a str>,
    pub cf_mark: bool,
    pub inputmode: Option<&'a str>,
}

impl<'a> Field<'a> {
    pub fn text(id: &'a str, label: &'a str, value: &'a str) -> Self {
        Field {
            id,
            label,
            value,
            hint: None,
            kind: "text",
            required: false,
            autocomplete: None,
            cf_mark: false,
            inputmode: None,
        }
    }

    pub fn hint(mut self, hint: &'a str) -> Self {
        self.hint = Some(hint);
        self
    }

    pub fn kind(mut self, kind: &'a str) -> Self {
        self.kind = kind;
        self
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn autocomplete(mut self, a: &'a str) -> Self {
        self.autocomplete = Some(a);
        self
    }

    pub fn cf(mut self) -> Self {
        self.cf_mark = true;
        self.autocomplete = Some("off");
        self
    }

    pub fn inputmode(mut self, m: &'a str) -> Self {
        self.inputmode = Some(m);
        self
    }

    pub fn render(&self, errors: &FieldErrors) -> Markup {
        let error = errors.of(self.id);
        let hint_id = format!("{}-aiuto", self.id);
        let error_id = format!("{}-errore", self.id);
        let mark_id = format!("{}-verifica", self.id);
        let described = match (self.hint.is_some(), error.is_some()) {
            (true, true) => Some(format!("{hint_id} {error_id}")),
            (true, false) => Some(hint_id.clone()),
            (false, true) => Some(error_id.clone()),
            (false, false) => None,
        };
        html! {
            div.form-group.mb-4 {
                label.active for=(self.id) { (self.label) @if self.required { " (obbligatorio)" } }
                input.form-control.is-invalid[error.is_some()]
                    type=(self.kind) id=(self.id) name=(self.id) value=(self.value)
                    required[self.required]
                    autocomplete=[self.autocomplete]
                    inputmode=[self.inputmode]
                    aria-invalid=[error.map(|_| "true")]
                    aria-describedby=[described]
                    data-cf-mark=[self.cf_mark.then_some(mark_id.as_str())];
                @if let Some(h) = self.hint {
                    small.form-text #(hint_id) { (h) }
                }
                @if let Some(e) = error {
                    div.invalid-feedback.d-block #(error_id) { (message(e)) }
                }
                @if self.cf_mark {
                    div.cessio-cf-mark #(mark_id) aria-live="polite" {}
                }
            }
        }
    }
}

/// The PIN field of every dispositive form; absent for strong logins, which need no PIN.
pub fn pin_field(user: &Principal, errors: &FieldErrors) -> Markup {
    if user.method == cessio_app::LoginMethod::Strong {
        return html! {
            p.text-muted { "Accesso con identità digitale: non serve il PIN per confermare." }
        };
    }
    pin_input("pin", errors)
}

/// The PIN input itself, named `name`: a page with two dispositive forms names each its own,
/// so that the page has one `pin` field only.
pub fn pin_input(name: &str, errors: &FieldErrors) -> Markup {
    Field::text(name, "PIN dispositivo", "")
        .kind("password")
        .required()
        .autocomplete("off")
        .inputmode("numeric")
        .hint("Il PIN ricevuto con le credenziali: dopo 5 tentativi errati si blocca.")
        .render(errors)
}

pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// What the shell of a page needs to know.
#[derive(Debug, Default)]
pub struct Shell<'a> {
    pub title: &'a str,
    pub user: Option<&'a Principal>,
    pub party: Option<&'a Party>,
    pub csrf: Option<&'a str>,
    pub notice: Option<Notice>,
    /// (label, href) from the home to the page's parent.
    pub crumbs: Vec<(String, String)>,
}

pub fn page(shell: Shell<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="it" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // No icon file: browsers would otherwise ask for /favicon.ico on every page.
                link rel="icon" href="data:,";
                title { (shell.title) " — Cessio, piattaforma cessione crediti" }
                link rel="stylesheet" href=(url("bootstrap-italia/css/bootstrap-italia.min.css"));
                link rel="stylesheet" href=(url("cessio/fonts.css"));
                link rel="stylesheet" href=(url("cessio/cessio.css"));
                script src=(url("cessio/cessio.js")) defer {}
            }
            body {
                div.skiplinks {
                    a.visually-hidden-focusable href="#contenuto" { "Vai al contenuto principale" }
                }
                (header(&shell))
                main #contenuto.container.my-4 tabindex="-1" {
                    @if !shell.crumbs.is_empty() {
                        nav.breadcrumb-container aria-label="Percorso" {
                            ol.breadcrumb {
                                @for (label, href) in &shell.crumbs {
                                    li.breadcrumb-item { a href=(href) { (label) } span.separator { "/" } }
                                }
                                li.breadcrumb-item.active aria-current="page" { (shell.title) }
                            }
                        }
                    }
                    @if let Some(p) = shell.party {
                        (party_banner(p, shell.user))
                    }
                    @if let Some(n) = &shell.notice {
                        (notice(n))
                    }
                    (body)
                }
                footer.it-footer {
                    div.it-footer-main {
                        div.container.py-4 {
                            p.mb-1.text-white { "Cessio — piattaforma per la cessione dei crediti d'imposta (artt. 121 e 122 DL 34/2020)." }
                            p.mb-1.text-white { small { "Importi in euro; date e orari Europe/Rome." } }
                            // The header links the Guida; the rules behind every refusal are here.
                            p.mb-0 { a.cessio-header-link href="/regole" { "Le regole della piattaforma e le loro fonti" } }
                        }
                    }
                }
            }
        }
    }
}

fn header(shell: &Shell<'_>) -> Markup {
    html! {
        header.it-header-wrapper {
            div.it-header-slim-wrapper {
                div.container {
                    div.row { div.col-12 {
                        div.it-header-slim-wrapper-content {
                            // On a phone the slim header keeps only what acts: the guide and Esci.
                            span.d-none.d-lg-block.navbar-brand { "Agenzia delle Entrate — servizi" }
                            div.it-header-slim-right-zone {
                                a.cessio-header-link.me-3 href="/guida" { "Guida" }
                                @if let (Some(u), Some(csrf)) = (shell.user, shell.csrf) {
                                    span.d-none.d-md-inline.text-white.me-3 {
                                        (u.display_name)
                                        @if u.is_operator() { " (operatore)" }
                                    }
                                    form method="post" action="/esci" {
                                        (csrf_field(csrf))
                                        button.btn.btn-primary.btn-sm type="submit" { "Esci" }
                                    }
                                }
                            }
                        }
                    } }
                }
            }
            div.it-nav-wrapper {
                div.it-header-center-wrapper {
                    div.container {
                        div.row { div.col-12 {
                            div.it-header-center-content-wrapper {
                                div.it-brand-wrapper {
                                    a href="/" {
                                        div.it-brand-text {
                                            div.it-brand-title { "Cessio" }
                                            div.it-brand-tagline.d-none.d-md-block { "Piattaforma cessione crediti" }
                                        }
                                    }
                                }
                            }
                        } }
                    }
                }
            }
        }
    }
}

fn party_banner(p: &Party, user: Option<&Principal>) -> Markup {
    html! {
        section.cessio-party-banner aria-label="Soggetto per cui si opera" {
            div.d-flex.flex-wrap.justify-content-between.align-items-center {
                div {
                    "Stai operando per: "
                    strong { (p.name) }
                    " — codice fiscale "
                    span.cessio-code { (p.cf.as_str()) }
                    " (" (kind_label(p.kind)) ")"
                }
                @if user.is_some() {
                    a href="/soggetti" { "Cambia soggetto" }
                }
            }
        }
    }
}

pub fn notice(n: &Notice) -> Markup {
    let class = match n.kind {
        NoticeKind::Success => "alert alert-success",
        NoticeKind::Info => "alert alert-info",
        NoticeKind::Warning => "alert alert-warning",
    };
    html! {
        div class=(class) role="status" {
            h2.h5 { (n.title) }
            @if !n.lines.is_empty() {
                dl.row.mb-0.cessio-receipt {
                    @for (label, value) in &n.lines {
                        dt.col-sm-4 { (label) }
                        dd.col-sm-8 { (value) }
                    }
                }
            }
            @if let Some(href) = &n.receipt {
                p.mt-3.mb-0 { a.btn.btn-outline-primary.btn-sm href=(href) download { "Scarica ricevuta (PDF)" } }
            }
        }
    }
}

/// A whole page that only says something went wrong (no form to return to).
pub fn message_page(
    shell: Shell<'_>,
    heading: &str,
    text: &str,
    back: Option<(&str, &str)>,
) -> Markup {
    page(
        shell,
        html! {
            h1 { (heading) }
            p.lead { (message(text)) }
            @if let Some((label, href)) = back {
                a.btn.btn-outline-primary href=(href) { (label) }
            }
        },
    )
}

/// A date typed by a person: `gg/mm/aaaa` (also `g/m/aaaa`) or the ISO `aaaa-mm-gg` that
/// date pickers send. Empty is `None`.
pub fn parse_date(input: &str) -> Result<Option<NaiveDate>, String> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(s, "%d/%m/%Y")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y-%m-%d"))
        .map(Some)
        .map_err(|_| format!("«{s}» non è una data: scrivere gg/mm/aaaa, per esempio 31/12/2024"))
}

/// An optional whole number typed in a field (a year, say).
pub fn parse_year(input: &str) -> Result<Option<u16>, String> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<u16>()
        .ok()
        .filter(|y| (2000..=2100).contains(y))
        .map(Some)
        .ok_or_else(|| format!("«{s}» non è un anno: scrivere quattro cifre, per esempio 2024"))
}

#[cfg(test)]
mod tests {
    use super::plain_message;

    #[test]
    fn plain_message_takes_the_rule_out_of_the_sentence() {
        let (plain, ids) = plain_message(
            "Questa rata è tracciabile e si cede solo per intero: importo 1.000,00 €, richiesti 1,00 € (R-PARTIAL)",
        );
        assert_eq!(
            plain,
            "Questa rata è tracciabile e si cede solo per intero: importo 1.000,00 €, richiesti 1,00 €"
        );
        assert_eq!(ids, ["R-PARTIAL"]);
    }

    #[test]
    fn plain_message_keeps_other_parentheses_and_punctuation() {
        let (plain, ids) = plain_message(
            "Accettabile dal 12/03/2024 (5 giorni lavorativi dalla registrazione) (R-WAIT5).",
        );
        assert_eq!(
            plain,
            "Accettabile dal 12/03/2024 (5 giorni lavorativi dalla registrazione)."
        );
        assert_eq!(ids, ["R-WAIT5"]);
        let (plain, ids) = plain_message("Usare il modello F24 (F24) o (R-NOT-A-RULE)");
        assert_eq!(plain, "Usare il modello F24 (F24) o (R-NOT-A-RULE)");
        assert!(ids.is_empty());
        let (plain, ids) = plain_message("Parentesi aperta (R-CHAIN");
        assert_eq!(
            (plain.as_str(), ids.len()),
            ("Parentesi aperta (R-CHAIN", 0)
        );
    }

    #[test]
    fn plain_message_takes_several_rules_once_each_in_order() {
        let (plain, ids) =
            plain_message("Con limiti (R-CHAIN, R-BANK-CLIENT, R-ECO-2018): vedi sotto (R-CHAIN)");
        assert_eq!(plain, "Con limiti: vedi sotto");
        assert_eq!(ids, ["R-CHAIN", "R-BANK-CLIENT", "R-ECO-2018"]);
        let (plain, ids) = plain_message("Manca l'autorizzazione (F2)");
        assert_eq!(
            (plain.as_str(), ids),
            ("Manca l'autorizzazione", vec!["F2"])
        );
    }

    #[test]
    fn a_message_links_each_rule_to_its_entry() {
        let html = super::message("Solo per intero (R-PARTIAL)").into_string();
        assert_eq!(
            html,
            "Solo per intero <a class=\"cessio-rule-link\" href=\"/regole#r-partial\">Regola R-PARTIAL</a>"
        );
    }

    #[test]
    fn the_error_summary_links_the_field_and_the_rule_apart() {
        let mut errors = super::FieldErrors::default();
        errors.field("importo_1", "Rata 1: solo per intero (R-PARTIAL)");
        let html = super::error_summary(&errors).into_string();
        assert!(
            html.contains("<a href=\"#importo_1\">Rata 1: solo per intero</a><span class=\"d-block\"> <a class=\"cessio-rule-link\" href=\"/regole#r-partial\">Regola R-PARTIAL</a></span>"),
            "{html}"
        );
        assert!(!html.contains("(R-PARTIAL)"));
    }

    #[test]
    fn thousands_use_the_italian_separator() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(300), "300");
        assert_eq!(super::thousands(1_000), "1.000");
        assert_eq!(super::thousands(49_488), "49.488");
        assert_eq!(super::thousands(1_234_567), "1.234.567");
    }

    use super::*;

    #[test]
    fn dates_are_read_in_italian_or_iso_form() {
        let d = NaiveDate::from_ymd_opt(2024, 12, 31);
        assert_eq!(parse_date("31/12/2024"), Ok(d));
        assert_eq!(parse_date(" 2024-12-31 "), Ok(d));
        assert_eq!(parse_date(""), Ok(None));
        assert!(parse_date("31/02/2024").is_err());
        assert!(parse_date("12/31/2024").is_err());
        assert_eq!(
            date(NaiveDate::from_ymd_opt(2024, 1, 5).unwrap_or_default()),
            "05/01/2024"
        );
    }

    #[test]
    fn amounts_are_shown_italian_style() {
        assert_eq!(amount(Cents::new(123_456)), "1.234,56 €");
        assert_eq!(amount_input(Cents::new(123_456)), "1.234,56");
    }
}

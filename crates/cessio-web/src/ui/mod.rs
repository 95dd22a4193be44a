//! The web interface: server-rendered Italian pages on Bootstrap Italia.
//!
//! Architecture invariant: like the JSON API, pages translate between forms and the app
//! layer and decide nothing themselves; every refusal shown is the app's, next to the field
//! it concerns. Pages work without JavaScript (forms post, then redirect); the one script
//! only adds live codice fiscale checks and select-all.
//!
//! The party a user works for is part of the URL (`/soggetti/{cf}/…`), not of the session:
//! an intermediary with two clients open in two tabs can never act on the wrong one.

// A page's refusal is the whole response, built once per request and returned at once;
// boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use cessio_app::{AppError, Principal};
use cessio_store::Party;
use maud::{Markup, html};

use crate::{SESSION_COOKIE, WebState, cookie_value, problem::status_of};

mod acceptance;
mod answer_list;
pub mod assets;
mod cession;
mod communications;
mod controls;
mod delegations;
mod f24;
mod guide;
mod jobs;
mod layout;
mod login;
mod monitoring;
mod movements;
mod operator;
mod posted;
mod receipts;
mod rent;
mod rules;
mod split;

pub use layout::FieldErrors;
use layout::{Shell, message_page, page};
pub use login::{PendingStrongLogin, StrongLogin};

/// A message carried from a form's post to the page it redirects to (kept in the session,
/// in the store, so the process that shows it need not be the one that left it).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Notice {
    pub kind: NoticeKind,
    pub title: String,
    pub lines: Vec<(String, String)>,
    /// The address of the confirmed operation's receipt, offered as a download.
    #[serde(default)]
    pub receipt: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NoticeKind {
    Success,
    Info,
    Warning,
}

impl Notice {
    pub fn success(title: impl Into<String>) -> Self {
        Notice {
            kind: NoticeKind::Success,
            title: title.into(),
            lines: Vec::new(),
            receipt: None,
        }
    }

    /// Offers the PDF receipt of operation `operation_id`, made for `party`.
    pub fn receipt(mut self, party: &Party, operation_id: i64) -> Self {
        self.receipt = Some(receipts::operation_href(party, operation_id));
        self
    }

    pub fn line(mut self, label: impl Into<String>, value: impl Into<String>) -> Self {
        self.lines.push((label.into(), value.into()));
        self
    }
}

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/", get(root))
        .route("/accesso", get(login::page).post(login::submit))
        .route("/accesso/spid", get(login::strong_start))
        .route("/accesso/spid/ritorno", get(login::strong_return))
        .route("/oidc/jwks.json", get(login::relying_party_jwks))
        .route("/esci", post(login::logout))
        .route("/guida", get(guide::show))
        .route("/regole", get(rules::show))
        .route("/soggetti", get(choose_party))
        .route("/soggetti/{cf}", get(home))
        .route("/soggetti/{cf}/monitoraggio", get(monitoring::page))
        .route(
            "/soggetti/{cf}/cessione",
            get(cession::page).post(cession::submit),
        )
        .route(
            "/soggetti/{cf}/accettazione",
            get(acceptance::page).post(acceptance::submit),
        )
        .route(
            "/soggetti/{cf}/accettazione/elenco",
            get(answer_list::page).post(answer_list::submit),
        )
        .route("/soggetti/{cf}/f24", get(f24::page).post(f24::reserve))
        .route("/soggetti/{cf}/f24/fine", post(f24::end))
        .route("/soggetti/{cf}/f24/scelta", post(f24::choice))
        .route(
            "/soggetti/{cf}/rateazione",
            get(split::page).post(split::submit),
        )
        .route("/soggetti/{cf}/canoni", get(rent::page).post(rent::submit))
        .route(
            "/soggetti/{cf}/deleghe",
            get(delegations::page).post(delegations::submit),
        )
        .route("/soggetti/{cf}/lavori/{id}", get(jobs::page))
        .route("/soggetti/{cf}/movimenti", get(movements::page))
        .route("/soggetti/{cf}/movimenti.csv", get(movements::csv))
        .route(
            "/soggetti/{cf}/movimenti/{id}/ricevuta.pdf",
            get(receipts::movement),
        )
        .route(
            "/soggetti/{cf}/operazioni/{id}/ricevuta.pdf",
            get(receipts::operation),
        )
        .route(
            "/soggetti/{cf}/comunicazioni",
            get(communications::page).post(communications::submit),
        )
        .route(
            "/soggetti/{cf}/comunicazioni/file",
            post(communications::upload).layer(axum::extract::DefaultBodyLimit::max(
                cessio_core::csv::MAX_IMPORT_BYTES + 64 * 1024,
            )),
        )
        .route(
            "/soggetti/{cf}/comunicazioni/annulla",
            post(communications::annul),
        )
        .route("/operatore", get(operator::page))
        .route("/operatore/soggetti", post(operator::register_party))
        .route("/operatore/utenti", post(operator::create_user))
        .route("/operatore/deleghe", post(operator::delegation))
        .route("/operatore/pin", post(operator::unlock_pin))
        .route("/operatore/debiti", post(operator::debt_position))
        .route("/operatore/chiusura", post(operator::close_year))
        .route(
            "/operatore/controlli",
            get(controls::page).post(controls::submit),
        )
        .layer(middleware::from_fn(page_headers))
        .route("/static/{digest}/{*path}", get(assets::serve))
}

/// Headers of every page: no script or style but our own files, no framing, no caching
/// of pages that show tax data.
async fn page_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             font-src 'self' data:; connect-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A form body whose errors are pages too (a missing or malformed field says what was
/// wrong and that nothing was done), like [`crate::ApiJson`] for the API.
#[derive(Debug)]
pub struct PageForm<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for PageForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(PageForm(v)),
            Err(e) => Err(render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                message_page(
                    Shell {
                        title: "Modulo non valido",
                        ..Shell::default()
                    },
                    "Modulo non valido",
                    &format!(
                        "Il modulo inviato non è valido ({}): nessuna operazione è stata eseguita.",
                        e.body_text()
                    ),
                    Some(("Torna alla home", "/")),
                ),
            )),
        }
    }
}

/// A signed-in user on a page: who, the session's CSRF token.
#[derive(Debug)]
pub struct Ui {
    pub session: String,
    pub user: Principal,
    pub csrf: String,
    /// A notice waits in the session (taking it is a write, done only then).
    notice: bool,
}

impl FromRequestParts<WebState> for Ui {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        let to_login = || {
            let target = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            let back = if parts.method == axum::http::Method::GET {
                format!("/accesso?dopo={}", urlencode(&target))
            } else {
                "/accesso?scaduta=1".to_string()
            };
            Redirect::to(&back).into_response()
        };
        let Some(id) = cookie_value(&parts.headers, SESSION_COOKIE).map(str::to_string) else {
            return Err(to_login());
        };
        let session = match state.live_session(&id).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(to_login()),
            Err(e) => return Err(error_page(None, &e)),
        };
        // The user may have been changed or removed since the login.
        let user = match state.app.refresh(&session.principal).await {
            Ok(u) => u,
            Err(AppError::Unauthenticated | AppError::LoginFailed) => return Err(to_login()),
            Err(e) => return Err(error_page(None, &e)),
        };
        Ok(Ui {
            session: id,
            user,
            csrf: session.csrf,
            notice: session.notice,
        })
    }
}

impl Ui {
    /// The notice left by the previous post, shown once.
    pub async fn take_notice(&self, state: &WebState) -> Option<Notice> {
        if !self.notice {
            return None;
        }
        state.take_notice(&self.session).await
    }

    pub async fn leave_notice(&self, state: &WebState, notice: Notice) {
        state.leave_notice(&self.session, &notice).await;
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, token: &str) -> Result<(), Response> {
        if constant_time_eq(token.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(csrf_refused())
        }
    }

    /// The party of a posted form: its CSRF token checked first, then the party resolved
    /// and authorised as every page does (`party_for`).
    pub async fn form_party(
        &self,
        state: &WebState,
        csrf: &str,
        cf: &str,
    ) -> Result<Party, Response> {
        self.check_csrf(csrf)?;
        party_for(state, self, cf).await
    }

    pub fn shell<'a>(&'a self, title: &'a str) -> Shell<'a> {
        Shell {
            title,
            user: Some(&self.user),
            csrf: Some(&self.csrf),
            ..Shell::default()
        }
    }

    /// The shell of a page about a party, with the crumbs back to its home.
    pub fn party_shell<'a>(&'a self, title: &'a str, party: &'a Party) -> Shell<'a> {
        let mut crumbs = vec![("Home".to_string(), "/soggetti".to_string())];
        crumbs.push((party.name.clone(), party_home(party)));
        Shell {
            party: Some(party),
            crumbs,
            ..self.shell(title)
        }
    }
}

pub(crate) fn csrf_refused() -> Response {
    render_status(
        StatusCode::FORBIDDEN,
        page(
            Shell {
                title: "Modulo scaduto",
                ..Shell::default()
            },
            html! {
                h1 { "Modulo scaduto o non valido" }
                p.lead { "Il modulo inviato non appartiene a questa sessione (può accadere dopo un nuovo accesso o se la pagina è rimasta aperta a lungo). Nessuna operazione è stata eseguita." }
                a.btn.btn-primary href="/" { "Torna alla home" }
            },
        ),
    )
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The PIN a form sent: an empty field is no PIN (the app then says it is required).
pub fn pin_of(typed: &str) -> Option<&str> {
    Some(typed).filter(|p| !p.is_empty())
}

pub fn party_home(p: &Party) -> String {
    format!("/soggetti/{}", p.cf.as_str())
}

/// A refusal's text for a page: the app's sentence, ending with its rule id in
/// parentheses when the sentence does not name it already. Pages never print the id:
/// `layout::plain_message` takes it out of the sentence and links it to the Regole page.
pub fn refusal(e: &AppError) -> String {
    let text = e.to_string();
    match e.rule() {
        Some(rule) if !text.contains(&format!("({rule})")) => format!("{text} ({rule})"),
        _ => text,
    }
}

/// A page that shows a refusal that has no form to go back to.
pub fn error_page(ui: Option<&Ui>, e: &AppError) -> Response {
    let status = status_of(e.code());
    let text = if status.is_server_error() {
        tracing::error!(error = %e, "page failed");
        "Errore interno del registro: l'operazione non è stata eseguita; riprovare tra poco."
            .to_string()
    } else {
        refusal(e)
    };
    let shell = match ui {
        Some(ui) => ui.shell("Operazione non riuscita"),
        None => Shell {
            title: "Operazione non riuscita",
            ..Shell::default()
        },
    };
    render_status(
        status,
        message_page(
            shell,
            "Operazione non riuscita",
            &text,
            Some(("Torna alla home", "/")),
        ),
    )
}

/// Resolves `/soggetti/{cf}` to a party the user may see. An unknown or malformed code
/// gets exactly the refusal of a party the user may not see, so pages cannot probe the
/// registry.
pub async fn party_for(state: &WebState, ui: &Ui, cf: &str) -> Result<Party, Response> {
    let party = match state.app.party_by_cf(cf).await {
        Ok(p) => p,
        Err(AppError::CfUnknown { .. } | AppError::Cf(_)) if !ui.user.is_operator() => {
            return Err(error_page(Some(ui), &AppError::not_your_party()));
        }
        Err(e) => return Err(error_page(Some(ui), &e)),
    };
    state
        .app
        .authorize_view(&ui.user, party.id)
        .await
        .map_err(|e| error_page(Some(ui), &e))?;
    Ok(party)
}

/// A page open to everyone (the guide, the rules): signed in or not, the header is the one
/// of every other page, with who is signed in and Esci; the body is the same for everyone.
pub async fn open_page(
    state: &WebState,
    headers: &HeaderMap,
    title: &str,
    body: Markup,
) -> Response {
    let session = match cookie_value(headers, SESSION_COOKIE) {
        Some(id) => state.live_session(id).await.ok().flatten(),
        None => None,
    }
    .map(|s| (s.principal, s.csrf));
    let shell = Shell {
        title,
        user: session.as_ref().map(|(user, _)| user),
        csrf: session.as_ref().map(|(_, csrf)| csrf.as_str()),
        ..Shell::default()
    };
    render(page(shell, body))
}

pub fn render(markup: Markup) -> Response {
    axum::response::Html(markup.into_string()).into_response()
}

pub fn render_status(status: StatusCode, markup: Markup) -> Response {
    (status, axum::response::Html(markup.into_string())).into_response()
}

/// Post, then redirect: the browser's reload shows the page again instead of re-posting.
/// A location that cannot be a header value (it would have come from input) goes home
/// rather than failing the response.
pub fn see_other(location: &str) -> Response {
    if HeaderValue::from_str(location).is_err() {
        tracing::warn!("redirect target refused as a header value");
        return Redirect::to("/").into_response();
    }
    Redirect::to(location).into_response()
}

async fn root(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let signed_in = match cookie_value(&headers, SESSION_COOKIE) {
        Some(id) => state.session(id).await.is_some(),
        None => false,
    };
    see_other(if signed_in { "/soggetti" } else { "/accesso" })
}

#[derive(serde::Deserialize, Default)]
struct ChooseQuery {
    #[serde(default)]
    q: Option<String>,
}

/// The party chooser. A user with one party goes straight to it; an intermediary sees
/// its clients with a search box; an operator looks parties up by code.
async fn choose_party(
    State(state): State<WebState>,
    ui: Ui,
    axum::extract::Query(q): axum::extract::Query<ChooseQuery>,
) -> Response {
    let notice = ui.take_notice(&state).await;
    let query = q.q.unwrap_or_default();
    if ui.user.is_operator() {
        let query = query.trim();
        if !query.is_empty() {
            return match state.app.party_by_cf(query).await {
                Ok(p) => see_other(&party_home(&p)),
                Err(e) => render_status(
                    status_of(e.code()),
                    page(
                        Shell {
                            notice,
                            ..ui.shell("Cerca un soggetto")
                        },
                        operator_search(&ui, query, Some(&refusal(&e))),
                    ),
                ),
            };
        }
        return render(page(
            Shell {
                notice,
                ..ui.shell("Cerca un soggetto")
            },
            operator_search(&ui, "", None),
        ));
    }
    let parties = match state.app.parties_of(&ui.user).await {
        Ok(p) => p,
        Err(e) => return error_page(Some(&ui), &e),
    };
    // What each delegation allows and until when, beside the party it is for.
    let held = match state.app.delegations_held(&ui.user).await {
        Ok(h) => h,
        Err(e) => return error_page(Some(&ui), &e),
    };
    if parties.len() == 1 && notice.is_none() {
        return see_other(&party_home(&parties[0]));
    }
    let needle = query.trim().to_lowercase();
    let shown: Vec<&Party> = parties
        .iter()
        .filter(|p| {
            needle.is_empty()
                || p.name.to_lowercase().contains(&needle)
                || p.cf.as_str().to_lowercase().contains(&needle)
        })
        .take(200)
        .collect();
    render(page(
        Shell {
            notice,
            ..ui.shell("Scegli il soggetto")
        },
        html! {
            h1 { "Per chi vuoi operare?" }
            @if parties.is_empty() {
                p.lead { "Questa utenza non è titolare di crediti e non ha deleghe attive." }
            } @else {
                p.lead { "Scegli il soggetto: resterà indicato in ogni pagina." }
                form.row.g-2.mb-4 method="get" action="/soggetti" role="search" {
                    div.col-md-8 {
                        div.form-group.mb-0 {
                            label.active for="q" { "Cerca per nome o codice fiscale" }
                            input.form-control #q name="q" type="search" value=(query);
                        }
                    }
                    div.col-md-4.d-flex.align-items-end {
                        button.btn.btn-primary type="submit" { "Cerca" }
                    }
                }
                p { (shown.len()) " di " (parties.len()) " soggetti" @if shown.len() == 200 { " (i primi 200: restringere la ricerca)" } }
                div.list-group {
                    @for p in &shown {
                        a.list-group-item.list-group-item-action href=(party_home(p)) {
                            strong { (p.name) }
                            " — " span.cessio-code { (p.cf.as_str()) }
                            @if Some(p.id) == ui.user.party { " (la propria utenza)" }
                            @if let Some(h) = held.iter().find(|h| h.party.id == p.id) {
                                br;
                                small {
                                    "Delega: " (delegations::scope_label(h.scope).to_lowercase()) ", " (delegations::until_label(h.until))
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

fn operator_search(ui: &Ui, query: &str, error: Option<&str>) -> Markup {
    let mut errors = FieldErrors::default();
    if let Some(e) = error {
        errors.field("q", e);
    }
    html! {
        h1 { "Cerca un soggetto" }
        p.lead { "Come operatore consulti i crediti di ogni soggetto e gestisci anagrafe, deleghe e PIN." }
        (layout::error_summary(&errors))
        form method="get" action="/soggetti" role="search" {
            (layout::Field::text("q", "Codice fiscale del soggetto", query).cf().required().render(&errors))
            button.btn.btn-primary type="submit" { "Apri" }
        }
        p.mt-4 { a href="/operatore" { "Anagrafe, utenze, deleghe e sblocco PIN" } }
        @if ui.user.is_operator() {}
    }
}

/// The home of a party: the platform's functions, as in the user guide.
async fn home(
    State(state): State<WebState>,
    ui: Ui,
    axum::extract::Path(cf): axum::extract::Path<String>,
) -> Response {
    let party = match party_for(&state, &ui, &cf).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let notice = ui.take_notice(&state).await;
    let base = party_home(&party);
    let mut functions: Vec<(&str, &str, &str)> = vec![
        (
            "monitoraggio",
            "Monitoraggio crediti",
            "I crediti per tipo e anno: ricevuti, accettati, ceduti, utilizzati e la parte ancora cedibile.",
        ),
        (
            "cessione",
            "Cessione crediti",
            "Cedi a terzi, in tutto o in parte, le rate dei crediti disponibili.",
        ),
        (
            "accettazione",
            "Accettazione crediti",
            "Accetta o rifiuta le cessioni e gli sconti ricevuti, per tipo, anno e cedente.",
        ),
        (
            "movimenti",
            "Lista movimenti",
            "Le comunicazioni di cessione inviate e ricevute, con filtri ed esportazione CSV.",
        ),
        (
            "f24",
            "Gestione F24",
            "Usa i crediti in compensazione: disponibilità per codice tributo e anno, scelta per le rate tracciabili, prenotazione e conferma del modello.",
        ),
        (
            "rateazione",
            "Rateazione e riduzione",
            "Ripartisci una rata in dieci rate annuali (e annulla la ripartizione), o dichiara una riduzione del credito.",
        ),
        (
            "canoni",
            "Credito sui canoni di locazione",
            "Calcola mese per mese il credito d'imposta sui canoni del 2020 (art. 28 DL 34/2020).",
        ),
        (
            "comunicazioni",
            "Comunicazioni dell'opzione",
            "Invia le comunicazioni di sconto in fattura o cessione del credito, singole o da file.",
        ),
    ];
    // Only the titolare delegates (and the operator, who sees every party): a delegate
    // would find a page that refuses it.
    if ui.user.is_operator() || ui.user.party == Some(party.id) {
        functions.push((
            "deleghe",
            "Deleghe",
            "Delega un intermediario per consultazione o anche disposizione, fino a una data o a revoca, e revoca le deleghe.",
        ));
    }
    let mut shell = ui.party_shell("Home", &party);
    shell.crumbs.pop();
    shell.notice = notice;
    render(page(
        shell,
        html! {
            h1 { "Piattaforma cessione crediti" }
            // The Agency's platform offers its guide from the home page; so does Cessio.
            p.lead { "Che cosa mostra ogni funzione, i limiti, le scadenze e che cosa fare dopo un errore: " a href="/guida" { "la Guida" } "." }
            div.row {
                @for (path, title, text) in functions {
                    div.col-md-6.col-lg-4.mb-4 {
                        div.card-wrapper.card-space {
                            div.card.card-bg.no-after {
                                div.card-body {
                                    h2.card-title.h5 { a href={ (base) "/" (path) } { (title) } }
                                    p.card-text { (text) }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// Maps a refusal to the form field it concerns, so that the message sits next to it.
pub fn field_of(e: &AppError) -> Option<&'static str> {
    match e {
        AppError::PinRequired | AppError::PinWrong { .. } | AppError::PinLocked { .. } => {
            Some("pin")
        }
        AppError::Rule {
            code: "name_consent_required",
            ..
        } => Some("autorizzo"),
        AppError::Rule {
            code: "f24_payment_date",
            ..
        } => Some("data"),
        _ => None,
    }
}

//! Signing in and out: username, password (and the PIN later, for each dispositive
//! operation), or a strong digital identity (SPID/CIE) through OpenID Connect with PKCE,
//! which needs no PIN.
//!
//! The login form is bound to its browser by a cookie (login CSRF), and every login issues
//! a new session id (no fixation). A strong login (`/accesso/spid`) keeps its state, nonce
//! and PKCE verifier in the store under the SHA-256 of a random cookie, taken once; the
//! provider returns to `/accesso/spid/ritorno` on any process serving the register;
//! `cessio-oidc` checks the tokens and reads the codice fiscale from UserInfo, R-CF judges
//! it (`CodiceFiscale::parse`), and it names the user (`App::login_strong_cf`). The RP's
//! public keys, which the provider checks its signatures with, are at `/oidc/jwks.json`.
//! After a login only a local path is followed (`safe_after`).

use std::time::{SystemTime, UNIX_EPOCH};

use super::PageForm as Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use cessio_app::AppError;
use maud::html;
use serde::Deserialize;

use super::layout::{Field, FieldErrors, Shell, error_summary};
use super::{Ui, constant_time_eq, csrf_refused, render_status, see_other};
use crate::{SESSION_COOKIE, WebState, cookie_value, random_token};

/// Binds the login form to the browser that loaded it (login CSRF): the form's token must
/// equal this cookie's.
const PRELOGIN_COOKIE: &str = "cessio_prelogin";
/// Binds a strong login in progress to the browser that started it.
const STRONG_COOKIE: &str = "cessio_spid";

/// The configured identity provider (SPID/CIE gateway, or the local test provider).
#[derive(Debug)]
pub struct StrongLogin {
    pub client: cessio_oidc::OidcClient,
    /// Shown on the login page's button, e.g. "Entra con SPID o CIE".
    pub label: String,
}

/// A strong login between the redirect to the provider and its return (kept in the
/// store until it returns, for at most `sessions::STRONG_LOGIN_TTL`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct PendingStrongLogin {
    pending: cessio_oidc::PendingLogin,
    after: String,
}

fn cookie(state: &WebState, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if state.secure_cookies {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Only paths of this site: an open redirect would let a link to Cessio lead elsewhere.
///
/// Accepted: a path (and query) of visible ASCII that parses as a URI with no scheme and
/// no authority, whose second character does not make browsers read an authority (`//`,
/// `/\`). Browsers drop tabs and newlines from a URL before reading it, so `/<TAB>/evil`
/// would become `//evil`: any control character, space or non-ASCII byte refuses the whole
/// target. Anything else goes to `/`.
pub(crate) fn safe_after(after: Option<&str>) -> String {
    let Some(a) = after else {
        return "/".to_string();
    };
    let visible_ascii = a.bytes().all(|b| b.is_ascii_graphic());
    let authority_like = a
        .as_bytes()
        .get(1)
        .is_some_and(|&b| b == b'/' || b == b'\\');
    let parses_as_local = a
        .parse::<axum::http::Uri>()
        .is_ok_and(|u| u.scheme().is_none() && u.authority().is_none());
    if a.starts_with('/')
        && visible_ascii
        && !authority_like
        && !a.contains('\\')
        && parses_as_local
    {
        a.to_string()
    } else {
        "/".to_string()
    }
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    #[serde(default)]
    dopo: Option<String>,
    #[serde(default)]
    scaduta: Option<String>,
    #[serde(default)]
    uscito: Option<String>,
}

pub async fn page(
    State(state): State<WebState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let signed_in = match cookie_value(&headers, SESSION_COOKIE) {
        Some(id) => state.session(id).await.is_some(),
        None => false,
    };
    if signed_in {
        return see_other(&safe_after(q.dopo.as_deref()));
    }
    let token = random_token();
    let mut info = None;
    if q.scaduta.is_some() {
        info =
            Some("La sessione è scaduta: accedere di nuovo. Nessuna operazione è stata eseguita.");
    } else if q.uscito.is_some() {
        info = Some("Sei uscito dalla piattaforma.");
    }
    let mut response = render_login(
        &state,
        &token,
        "",
        &safe_after(q.dopo.as_deref()),
        &FieldErrors::default(),
        info,
    );
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&state, PRELOGIN_COOKIE, &token, Some(3600)),
    );
    response
}

fn render_login(
    state: &WebState,
    token: &str,
    username: &str,
    after: &str,
    errors: &FieldErrors,
    info: Option<&str>,
) -> Response {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    render_status(
        status,
        super::layout::page(
            Shell {
                title: "Accesso",
                ..Shell::default()
            },
            html! {
                div.row.justify-content-center {
                    div.col-lg-6 {
                        h1 { "Accedi alla piattaforma cessione crediti" }
                        @if let Some(i) = info {
                            div.alert.alert-info role="status" { (i) }
                        }
                        @if let Some(strong) = &state.oidc {
                            section.mb-5 aria-labelledby="spid-titolo" {
                                h2.h4 #spid-titolo { "Con identità digitale" }
                                p { "SPID o CIE: non serve il PIN per confermare le operazioni." }
                                a.btn.btn-primary.btn-lg href={ "/accesso/spid?dopo=" (super::urlencode(after)) } { (strong.label) }
                            }
                        }
                        section aria-labelledby="password-titolo" {
                            h2.h4 #password-titolo { "Con nome utente e password" }
                            p { "Per confermare ogni cessione, accettazione o comunicazione servirà anche il PIN." }
                            (error_summary(errors))
                            form method="post" action="/accesso" novalidate {
                                input type="hidden" name="csrf" value=(token);
                                input type="hidden" name="dopo" value=(after);
                                (Field::text("username", "Nome utente", username).required().autocomplete("username").render(errors))
                                (Field::text("password", "Password", "").kind("password").required().autocomplete("current-password").render(errors))
                                button.btn.btn-primary type="submit" { "Accedi" }
                            }
                        }
                    }
                }
            },
        ),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    username: String,
    password: String,
    #[serde(default)]
    dopo: Option<String>,
}

async fn signed_in(state: &WebState, principal: cessio_app::Principal, after: &str) -> Response {
    let id = match state.new_session(principal).await {
        Ok(id) => id,
        Err(e) => return super::error_page(None, &e),
    };
    let mut response = see_other(after);
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, cookie(state, SESSION_COOKIE, &id, None));
    headers.append(
        header::SET_COOKIE,
        cookie(state, PRELOGIN_COOKIE, "", Some(0)),
    );
    response
}

pub async fn submit(
    State(state): State<WebState>,
    crate::ClientIp(client): crate::ClientIp,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let bound = cookie_value(&headers, PRELOGIN_COOKIE).unwrap_or("");
    if bound.is_empty() || !constant_time_eq(bound.as_bytes(), f.csrf.as_bytes()) {
        return csrf_refused();
    }
    let after = safe_after(f.dopo.as_deref());
    let mut errors = FieldErrors::default();
    let allowed = match state.allow_login(client, &f.username).await {
        Ok(a) => a,
        Err(e) => return super::error_page(None, &e),
    };
    if let Err(seconds) = allowed {
        errors.form(crate::too_many_attempts(seconds).detail);
        let mut r = render_login(&state, bound, &f.username, &after, &errors, None);
        *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return r;
    }
    match state.app.login(&f.username, &f.password).await {
        Ok(p) => {
            state.login_succeeded(client, &f.username).await;
            signed_in(&state, p, &after).await
        }
        Err(e @ AppError::LoginFailed) => {
            errors.field("password", e.to_string());
            render_login(&state, bound, &f.username, &after, &errors, None)
        }
        Err(e) => super::error_page(None, &e),
    }
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(State(state): State<WebState>, ui: Ui, Form(f): Form<LogoutForm>) -> Response {
    if let Err(r) = ui.check_csrf(&f.csrf) {
        return r;
    }
    if let Err(e) = state.end_session(&ui.session).await {
        return super::error_page(Some(&ui), &e);
    }
    let mut response = see_other("/accesso?uscito=1");
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&state, SESSION_COOKIE, "", Some(0)),
    );
    response
}

#[derive(Deserialize, Default)]
pub struct StrongStart {
    #[serde(default)]
    dopo: Option<String>,
}

/// Sends the browser to the identity provider, remembering (server-side) the state, nonce
/// and PKCE verifier of this attempt under a random cookie.
pub async fn strong_start(State(state): State<WebState>, Query(q): Query<StrongStart>) -> Response {
    let Some(strong) = state.oidc.clone() else {
        return super::error_page(
            None,
            &AppError::forbidden("l'accesso con identità digitale non è configurato"),
        );
    };
    let (url, pending) = strong.client.begin(unix_now());
    let pending = PendingStrongLogin {
        pending,
        after: safe_after(q.dopo.as_deref()),
    };
    let id = match state.start_strong_login(&pending).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            return strong_failed(
                &state,
                "troppi accessi in corso: riprovare tra qualche minuto",
            );
        }
        Err(e) => return super::error_page(None, &e),
    };
    let mut response = see_other(&url);
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie(
            &state,
            STRONG_COOKIE,
            &id,
            Some(crate::sessions::STRONG_LOGIN_TTL.as_secs()),
        ),
    );
    response
}

#[derive(Deserialize, Default)]
pub struct StrongReturn {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

fn strong_failed(state: &WebState, text: &str) -> Response {
    let token = random_token();
    let mut errors = FieldErrors::default();
    errors.form(format!(
        "Accesso con identità digitale non riuscito: {text}"
    ));
    let mut response = render_login(state, &token, "", "/", &errors, None);
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        cookie(state, PRELOGIN_COOKIE, &token, Some(3600)),
    );
    headers.append(
        header::SET_COOKIE,
        cookie(state, STRONG_COOKIE, "", Some(0)),
    );
    response
}

/// The provider's redirect back: checks state, exchanges the code, verifies the ID token,
/// and signs in the user whose party has the identity's codice fiscale.
pub async fn strong_return(
    State(state): State<WebState>,
    headers: HeaderMap,
    Query(q): Query<StrongReturn>,
) -> Response {
    let Some(strong) = state.oidc.clone() else {
        return strong_failed(&state, "non è configurato");
    };
    let pending = match cookie_value(&headers, STRONG_COOKIE) {
        Some(id) => match state.take_strong_login(id).await {
            Ok(p) => p,
            Err(e) => return super::error_page(None, &e),
        },
        None => None,
    };
    let Some(pending) = pending else {
        return strong_failed(
            &state,
            "la richiesta è scaduta o non è partita da questo browser",
        );
    };
    if q.error.is_some() {
        return strong_failed(&state, "annullato presso il gestore dell'identità");
    }
    let (Some(code), Some(returned_state)) = (q.code.as_deref(), q.state.as_deref()) else {
        return strong_failed(&state, "risposta incompleta del gestore dell'identità");
    };
    let identity = match strong
        .client
        .finish(&pending.pending, code, returned_state, unix_now())
        .await
    {
        Ok(i) => i,
        Err(e) => return strong_failed(&state, &e.to_string()),
    };
    // The provider vouches for the person, not for the code's form: R-CF decides that.
    let cf = match cessio_core::cf::CodiceFiscale::parse(&identity.fiscal_code) {
        Ok(cf) => cf,
        Err(e) => {
            return strong_failed(
                &state,
                &format!("il codice fiscale comunicato dal gestore non è valido (R-CF): {e}"),
            );
        }
    };
    match state.app.login_strong_cf(cf.as_str()).await {
        Ok(p) => {
            let mut response = signed_in(&state, p, &pending.after).await;
            response.headers_mut().append(
                header::SET_COOKIE,
                cookie(&state, STRONG_COOKIE, "", Some(0)),
            );
            response
        }
        Err(e) => strong_failed(&state, &e.to_string()),
    }
}

/// Tokens are checked against real time: the business clock (which tests and demos may fix
/// in the past) decides dates of rules, not the validity of a signature.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The relying party's public keys (RFC 7517 JWK Set): the identity provider checks the
/// request objects and client assertions with them. Not found without a strong login.
pub async fn relying_party_jwks(State(state): State<WebState>) -> Response {
    let Some(strong) = state.oidc.clone() else {
        return (
            StatusCode::NOT_FOUND,
            "Accesso con identità digitale non configurato",
        )
            .into_response();
    };
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        strong.client.public_jwks().to_string(),
    )
        .into_response()
}

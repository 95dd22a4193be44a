//! A local OpenID provider for tests and the demo: never for production.
//!
//! It speaks the same protocol a SPID/CIE gateway does (discovery, JWKS, authorization code
//! with PKCE S256, ES256 ID tokens carrying the eID fiscal-number claim), over real HTTP on
//! a port of its own, so the client is tested against the wire and not against mocks.
//! Instead of a password it shows one button per test identity.
//!
//! Redirect URIs are compared exactly, as OAuth 2.0 Security BCP asks. A client whose port
//! is only known after the provider started (the demo web app on port 0) is added with
//! [`RunningProvider::register_client`].
//!
//! Architecture invariant: every value a browser sends back (hidden form fields included)
//! is checked again on `POST /authorize` and `POST /token`; nothing is trusted because the
//! page rendered it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use rand_core::RngCore as _;
use reqwest::Url;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::client::pkce_challenge;
use crate::jwt::{EID_FISCAL_NUMBER, Es256Signer, b64};

/// RFC 6749 §4.1.2 recommends at most ten minutes; a test needs far less.
const CODE_LIFETIME: Duration = Duration::from_secs(60);
const ID_TOKEN_LIFETIME_SECS: i64 = 300;
/// Outstanding codes kept at once; beyond this `/authorize` refuses rather than grow.
const MAX_PENDING_CODES: usize = 10_000;
/// Longest `state`, `nonce` or challenge accepted, so a page cannot be inflated at will.
const MAX_PARAM_LEN: usize = 512;

const STYLESHEET: &str = "\
body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
.warning{border-left:.3rem solid #b35900;padding:.5rem 1rem;background:#fff4e5}
ul{list-style:none;padding:0}li{margin:.75rem 0}
button{font:inherit;padding:.5rem 1rem;cursor:pointer}
.cf{display:block;font-family:monospace;color:#444}
";

/// A relying party this provider knows.
#[derive(Clone, PartialEq, Eq)]
pub struct RegisteredClient {
    pub client_id: String,
    pub client_secret: String,
    /// Compared exactly with the `redirect_uri` of each request.
    pub redirect_uris: Vec<String>,
}

impl std::fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("client_id", &self.client_id)
            .field("redirect_uris", &self.redirect_uris)
            .finish_non_exhaustive()
    }
}

/// A person one can log in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevIdentity {
    pub fiscal_code: String,
    pub given_name: String,
    pub family_name: String,
}

impl DevIdentity {
    fn full_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }

    /// Derived from the fiscal code alone, so it survives restarts like a real `sub` does.
    fn subject(&self) -> String {
        let digest = Sha256::digest(format!("cessio-dev-provider:{}", self.fiscal_code));
        b64(&digest[..16])
    }
}

/// Why the provider could not start or take a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    #[error("impossibile aprire la porta del provider di identità di prova: {0}")]
    Bind(#[source] std::io::Error),
    #[error("il provider di identità di prova richiede almeno un'identità")]
    NoIdentities,
    #[error("client OpenID non valido ({client_id}): {reason}")]
    InvalidClient {
        client_id: String,
        reason: &'static str,
    },
}

/// Namespace for [`DevProvider::start`].
#[derive(Debug)]
pub struct DevProvider;

impl DevProvider {
    /// Binds `addr` (use port 0 for an ephemeral one) and serves on the current runtime.
    pub async fn start(
        addr: SocketAddr,
        clients: Vec<RegisteredClient>,
        identities: Vec<DevIdentity>,
    ) -> Result<RunningProvider, ProviderError> {
        if identities.is_empty() {
            return Err(ProviderError::NoIdentities);
        }
        for client in &clients {
            validate_client(client)?;
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(ProviderError::Bind)?;
        let local = listener.local_addr().map_err(ProviderError::Bind)?;
        let issuer = format!("http://{local}");
        let state = Arc::new(ProviderState {
            issuer: issuer.clone(),
            clients: RwLock::new(
                clients
                    .into_iter()
                    .map(|c| (c.client_id.clone(), c))
                    .collect(),
            ),
            identities,
            keys: RwLock::new(Keys {
                current: Es256Signer::generate(),
                previous: None,
            }),
            codes: Mutex::new(HashMap::new()),
            jwks_requests: AtomicU64::new(0),
        });
        let router = router(Arc::clone(&state));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async {
                // A dropped sender stops the server too: forgetting `stop` leaks nothing.
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "development OpenID provider stopped");
            }
        });
        tracing::info!(%issuer, "development OpenID provider listening");
        Ok(RunningProvider {
            issuer,
            state,
            stop: Some(stop),
            task,
        })
    }
}

/// A provider serving in the background; dropping it stops the server.
#[derive(Debug)]
pub struct RunningProvider {
    /// `http://127.0.0.1:PORT`, the value to configure as the client's issuer.
    pub issuer: String,
    state: Arc<ProviderState>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningProvider {
    /// Adds a client, or replaces the one with the same id.
    pub fn register_client(&self, client: RegisteredClient) -> Result<(), ProviderError> {
        validate_client(&client)?;
        self.state
            .clients
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(client.client_id.clone(), client);
        Ok(())
    }

    /// Signs from now on with a new key; the old one stays in the JWKS for tokens in flight.
    pub fn rotate_signing_key(&self) {
        let mut keys = self
            .state
            .keys
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let old = std::mem::replace(&mut keys.current, Es256Signer::generate());
        keys.previous = Some(old);
    }

    /// How many times the JWKS was served: lets tests see the client's refetch.
    pub fn jwks_requests(&self) -> u64 {
        self.state.jwks_requests.load(Ordering::Relaxed)
    }

    /// Stops accepting connections and waits for requests in progress.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

fn validate_client(client: &RegisteredClient) -> Result<(), ProviderError> {
    let invalid = |reason| ProviderError::InvalidClient {
        client_id: client.client_id.clone(),
        reason,
    };
    if client.client_id.is_empty() || client.client_secret.is_empty() {
        return Err(invalid("client_id e client_secret sono obbligatori"));
    }
    if client.redirect_uris.is_empty() {
        return Err(invalid("nessun redirect_uri"));
    }
    for uri in &client.redirect_uris {
        let url = Url::parse(uri).map_err(|_| invalid("redirect_uri non è un URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.fragment().is_some() {
            return Err(invalid(
                "redirect_uri deve essere http(s) e senza frammento",
            ));
        }
    }
    Ok(())
}

struct Keys {
    current: Es256Signer,
    previous: Option<Es256Signer>,
}

/// What a code stands for until it is redeemed.
struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: String,
    identity: usize,
    issued: Instant,
}

struct ProviderState {
    issuer: String,
    clients: RwLock<HashMap<String, RegisteredClient>>,
    identities: Vec<DevIdentity>,
    keys: RwLock<Keys>,
    codes: Mutex<HashMap<String, IssuedCode>>,
    jwks_requests: AtomicU64,
}

impl std::fmt::Debug for ProviderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderState")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl ProviderState {
    fn client(&self, client_id: &str) -> Option<RegisteredClient> {
        self.clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(client_id)
            .cloned()
    }
}

type Shared = State<Arc<ProviderState>>;

fn router(state: Arc<ProviderState>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize_page).post(authorize_decision))
        .route("/token", axum::routing::post(token))
        .route("/provider.css", get(stylesheet))
        .with_state(state)
}

async fn discovery(State(state): Shared) -> Response {
    let issuer = &state.issuer;
    no_store_json(
        StatusCode::OK,
        serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "scopes_supported": ["openid", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_parameter_supported": true,
            "claims_supported": ["sub", "given_name", "family_name", "name", EID_FISCAL_NUMBER],
        }),
    )
}

async fn jwks(State(state): Shared) -> Response {
    state.jwks_requests.fetch_add(1, Ordering::Relaxed);
    let keys = state.keys.read().unwrap_or_else(PoisonError::into_inner);
    let jwks: Vec<_> = std::iter::once(&keys.current)
        .chain(keys.previous.as_ref())
        .map(Es256Signer::jwk)
        .collect();
    no_store_json(StatusCode::OK, serde_json::json!({ "keys": jwks }))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// The authorization request, as the query string or the page's hidden fields carry it.
#[derive(Debug, Default, Deserialize)]
struct AuthorizeParams {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// Index into the identities: the button pressed.
    identity: Option<String>,
    /// Present when "Annulla" was pressed.
    cancel: Option<String>,
}

/// A request that passed every check.
struct ValidRequest {
    client_id: String,
    /// Exactly as registered: the token request must repeat it byte for byte.
    redirect_uri: String,
    redirect_url: Url,
    state: String,
    nonce: String,
    code_challenge: String,
}

/// RFC 6749 §4.1.2.1: with an unknown client or redirect URI we must not redirect, since
/// that would make us an open redirector; every other fault is shown on the page as well,
/// which suits a provider whose reader is a developer.
fn validate_request(
    state: &ProviderState,
    params: &AuthorizeParams,
) -> Result<ValidRequest, &'static str> {
    let client_id = params.client_id.as_deref().ok_or("client_id mancante")?;
    let client = state.client(client_id).ok_or("client_id sconosciuto")?;
    let redirect_uri = params
        .redirect_uri
        .as_deref()
        .ok_or("redirect_uri mancante")?;
    if !client.redirect_uris.iter().any(|uri| uri == redirect_uri) {
        return Err("redirect_uri non registrato per questo client");
    }
    let redirect_url = Url::parse(redirect_uri).map_err(|_| "redirect_uri non valido")?;
    if params.response_type.as_deref() != Some("code") {
        return Err("response_type deve essere code");
    }
    if !params
        .scope
        .as_deref()
        .is_some_and(|scope| scope.split(' ').any(|s| s == "openid"))
    {
        return Err("scope deve comprendere openid");
    }
    if params.code_challenge_method.as_deref() != Some("S256") {
        return Err("code_challenge_method deve essere S256");
    }
    let bounded = |value: &Option<String>, missing: &'static str| match value.as_deref() {
        Some(v) if !v.is_empty() && v.len() <= MAX_PARAM_LEN => Ok(v.to_owned()),
        _ => Err(missing),
    };
    let code_challenge = bounded(
        &params.code_challenge,
        "code_challenge mancante o non valido",
    )?;
    if code_challenge.len() != 43 {
        return Err("code_challenge non è un hash SHA-256");
    }
    Ok(ValidRequest {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        redirect_url,
        state: bounded(&params.state, "state mancante o troppo lungo")?,
        nonce: bounded(&params.nonce, "nonce mancante o troppo lungo")?,
        code_challenge,
    })
}

async fn authorize_page(
    State(state): Shared,
    query: Result<Query<AuthorizeParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let params = query.map(|Query(p)| p).unwrap_or_default();
    match validate_request(&state, &params) {
        Ok(request) => html(
            StatusCode::OK,
            Some(&request.redirect_url),
            &choice_page(&state, &request),
        ),
        Err(reason) => html(StatusCode::BAD_REQUEST, None, &error_page(reason)),
    }
}

async fn authorize_decision(
    State(state): Shared,
    form: Result<Form<AuthorizeParams>, FormRejection>,
) -> Response {
    let Ok(Form(mut params)) = form else {
        return html(
            StatusCode::BAD_REQUEST,
            None,
            &error_page("modulo non leggibile"),
        );
    };
    // The page only posts what it was given; these are fixed by the flow.
    params.response_type = Some("code".into());
    params.scope = Some("openid".into());
    params.code_challenge_method = Some("S256".into());
    let request = match validate_request(&state, &params) {
        Ok(request) => request,
        Err(reason) => return html(StatusCode::BAD_REQUEST, None, &error_page(reason)),
    };
    let mut target = request.redirect_url.clone();
    if params.cancel.is_some() {
        target
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("state", &request.state);
        return see_other(&target);
    }
    let identity = params
        .identity
        .as_deref()
        .and_then(|i| i.parse::<usize>().ok())
        .filter(|i| *i < state.identities.len());
    let Some(identity) = identity else {
        return html(
            StatusCode::BAD_REQUEST,
            None,
            &error_page("identità non scelta"),
        );
    };
    let code = random_token();
    {
        let mut codes = state.codes.lock().unwrap_or_else(PoisonError::into_inner);
        codes.retain(|_, issued| issued.issued.elapsed() < CODE_LIFETIME);
        if codes.len() >= MAX_PENDING_CODES {
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                &error_page("troppi accessi in corso; riprovare tra un minuto"),
            );
        }
        codes.insert(
            code.clone(),
            IssuedCode {
                client_id: request.client_id,
                redirect_uri: request.redirect_uri,
                code_challenge: request.code_challenge,
                nonce: request.nonce,
                identity,
                issued: Instant::now(),
            },
        );
    }
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &request.state);
    see_other(&target)
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

async fn token(
    State(state): Shared,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "corpo non leggibile",
        );
    };
    let client = match authenticate(&state, &headers, &form) {
        Ok(client) => client,
        Err(response) => return *response,
    };
    if form.grant_type.as_deref() != Some("authorization_code") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "solo authorization_code",
        );
    }
    let Some(code) = form.code.as_deref() else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "code mancante");
    };
    // Removed before any check: RFC 6749 §4.1.2 wants a code refused after its first use,
    // even a failed one.
    let issued = state
        .codes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(code);
    let invalid_grant = |why| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why);
    let Some(issued) = issued else {
        return invalid_grant("codice sconosciuto o già usato");
    };
    if issued.issued.elapsed() >= CODE_LIFETIME {
        return invalid_grant("codice scaduto");
    }
    if issued.client_id != client.client_id {
        return invalid_grant("codice emesso per un altro client");
    }
    if form.redirect_uri.as_deref() != Some(issued.redirect_uri.as_str()) {
        return invalid_grant("redirect_uri diverso da quello della richiesta");
    }
    let verifier_ok = form.code_verifier.as_deref().is_some_and(|verifier| {
        is_pkce_verifier(verifier)
            && bool::from(
                pkce_challenge(verifier)
                    .as_bytes()
                    .ct_eq(issued.code_challenge.as_bytes()),
            )
    });
    if !verifier_ok {
        return invalid_grant("code_verifier non corrisponde");
    }
    let Some(identity) = state.identities.get(issued.identity) else {
        return invalid_grant("identità sconosciuta");
    };
    let now = unix_now();
    let claims = serde_json::json!({
        "iss": state.issuer,
        "sub": identity.subject(),
        "aud": client.client_id,
        "exp": now + ID_TOKEN_LIFETIME_SECS,
        "iat": now,
        "auth_time": now,
        "nonce": issued.nonce,
        "given_name": identity.given_name,
        "family_name": identity.family_name,
        "name": identity.full_name(),
        EID_FISCAL_NUMBER: format!("TINIT-{}", identity.fiscal_code),
    });
    let id_token = state
        .keys
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .current
        .sign(&claims);
    no_store_json(
        StatusCode::OK,
        serde_json::json!({
            // Nothing accepts it: there is no userinfo endpoint. OAuth requires one anyway.
            "access_token": random_token(),
            "token_type": "Bearer",
            "expires_in": ID_TOKEN_LIFETIME_SECS,
            "id_token": id_token,
        }),
    )
}

/// client_secret_basic or client_secret_post, never both (RFC 6749 §2.3).
fn authenticate(
    state: &ProviderState,
    headers: &HeaderMap,
    form: &TokenForm,
) -> Result<RegisteredClient, Box<Response>> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(value) => Some(parse_basic(value).ok_or_else(|| {
            Box::new(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Authorization non valido",
            ))
        })?),
        None => None,
    };
    let (client_id, secret) = match (basic, &form.client_id, &form.client_secret) {
        (Some(_), _, Some(_)) => {
            return Err(Box::new(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "più di un metodo di autenticazione",
            )));
        }
        (Some((id, secret)), form_id, None) => {
            if form_id.as_ref().is_some_and(|form_id| *form_id != id) {
                return Err(Box::new(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "client_id discordanti",
                )));
            }
            (id, secret)
        }
        (None, Some(id), Some(secret)) => (id.clone(), secret.clone()),
        (None, _, _) => return Err(Box::new(invalid_client())),
    };
    match state.client(&client_id) {
        Some(client) if bool::from(client.client_secret.as_bytes().ct_eq(secret.as_bytes())) => {
            Ok(client)
        }
        _ => Err(Box::new(invalid_client())),
    }
}

/// `Basic base64(urlencode(id):urlencode(secret))`, RFC 6749 §2.3.1.
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let encoded = value.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

fn form_decode(component: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&component.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn is_pkce_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn invalid_client() -> Response {
    let mut response = oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "autenticazione del client fallita",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"cessio-dev-provider\""),
    );
    response
}

fn oauth_error(status: StatusCode, error: &'static str, description: &'static str) -> Response {
    no_store_json(
        status,
        serde_json::json!({ "error": error, "error_description": description }),
    )
}

fn no_store_json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, "application/json"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn see_other(target: &Url) -> Response {
    match HeaderValue::from_str(target.as_str()) {
        Ok(location) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(_) => html(
            StatusCode::BAD_REQUEST,
            None,
            &error_page("redirect_uri non valido"),
        ),
    }
}

/// `form_target` is where the page's form will end up after our 303: browsers apply
/// `form-action` to the whole redirect chain, so that origin must be allowed too.
fn html(status: StatusCode, form_target: Option<&Url>, body: &str) -> Response {
    let extra_origin = form_target
        .map(|url| format!(" {}", url.origin().ascii_serialization()))
        .unwrap_or_default();
    let csp = format!(
        "default-src 'none'; style-src 'self'; form-action 'self'{extra_origin}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (header::X_FRAME_OPTIONS, "DENY".to_owned()),
            // The page's URL carries state and nonce; they go nowhere else.
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
        ],
        body.to_owned(),
    )
        .into_response();
    response.headers_mut().insert(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn page(title: &str, main: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"it\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<link rel=\"stylesheet\" href=\"/provider.css\">\n</head>\n\
         <body>\n<main>\n{main}</main>\n</body>\n</html>\n"
    )
}

fn choice_page(state: &ProviderState, request: &ValidRequest) -> String {
    let hidden = [
        ("client_id", request.client_id.as_str()),
        ("redirect_uri", request.redirect_uri.as_str()),
        ("state", request.state.as_str()),
        ("nonce", request.nonce.as_str()),
        ("code_challenge", request.code_challenge.as_str()),
    ]
    .iter()
    .map(|(name, value)| {
        format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
            escape(value)
        )
    })
    .collect::<String>();
    let choices = state
        .identities
        .iter()
        .enumerate()
        .map(|(i, identity)| {
            format!(
                "<li><button type=\"submit\" name=\"identity\" value=\"{i}\" \
                 aria-describedby=\"cf-{i}\">Entra come {name}</button>\
                 <span class=\"cf\" id=\"cf-{i}\">Codice fiscale: {cf}</span></li>\n",
                name = escape(&identity.full_name()),
                cf = escape(&identity.fiscal_code),
            )
        })
        .collect::<String>();
    let main = format!(
        "<h1>Provider di identità di prova (solo sviluppo e test)</h1>\n\
         <p class=\"warning\">Questo provider non verifica nessuna identità: serve solo a provare \
         l'accesso in sviluppo e nei test. Non usarlo mai con dati reali.</p>\n\
         <p>Il servizio <strong>{client}</strong> chiede di accedere. Scegliere l'identità di prova:</p>\n\
         <form method=\"post\" action=\"/authorize\">\n{hidden}\
         <fieldset>\n<legend>Identità di prova</legend>\n<ul>\n{choices}</ul>\n</fieldset>\n\
         <p><button type=\"submit\" name=\"cancel\" value=\"1\">Annulla</button></p>\n\
         </form>\n",
        client = escape(&request.client_id),
    );
    page("Provider di identità di prova", &main)
}

fn error_page(reason: &str) -> String {
    page(
        "Richiesta di accesso non valida",
        &format!(
            "<h1>Richiesta di accesso non valida</h1>\n<p>{}</p>\n\
             <p>Il servizio che ha chiesto l'accesso non è configurato correttamente per questo \
             provider di identità di prova.</p>\n",
            escape(reason)
        ),
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    rand_core::OsRng.fill_bytes(&mut bytes);
    b64(&bytes)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let value = HeaderValue::from_static("Basic Y2Vzc2lvJTNBd2ViOnMlQzMlQThncmV0bytv");
        assert_eq!(
            parse_basic(&value),
            Some(("cessio:web".to_owned(), "sègreto o".to_owned()))
        );
    }

    #[test]
    fn pkce_verifier_charset_and_length() {
        assert!(is_pkce_verifier(&"a".repeat(43)));
        assert!(!is_pkce_verifier(&"a".repeat(42)));
        assert!(!is_pkce_verifier(&"a".repeat(129)));
        assert!(!is_pkce_verifier(&format!("{}+", "a".repeat(43))));
    }
}

//! A local OpenID provider for tests and the demo: never for production.
//!
//! It speaks the SPID/CIE OpenID Connect profile the client speaks, over real HTTP on a port
//! of its own, so the client is tested against the wire and not against mocks: discovery,
//! JWKS, the authorization request only as a request object signed by a key of the
//! client's JWKS, PKCE S256, `private_key_jwt` at the token endpoint (audience, expiry,
//! single-use `jti`), ES256 ID tokens with `acr` and `at_hash`, and UserInfo as a signed
//! JWT carrying `https://attributes.eid.gov.it/fiscal_number`, then encrypted (JWE,
//! RSA-OAEP-256 and A256CBC-HS512) to the client's `use: enc` key when its JWKS has one.
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
use rand_core::RngCore as _;
use reqwest::Url;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::acr::AcrLevel;
use crate::client::{CLIENT_ASSERTION_TYPE, pkce_challenge};
use crate::error::OidcError;
use crate::jwt::{
    Audience, EID_FISCAL_NUMBER, Es256Signer, Jwks, LEEWAY_SECS, Unverified, at_hash, b64,
};

/// RFC 6749 §4.1.2 recommends at most ten minutes; a test needs far less.
const CODE_LIFETIME: Duration = Duration::from_secs(60);
const ID_TOKEN_LIFETIME_SECS: i64 = 300;
/// Access tokens (and so UserInfo) live as long as the ID token.
const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// Longest a client assertion may claim to live: it is made for one request.
const MAX_ASSERTION_LIFETIME_SECS: i64 = 600;
/// A client's JWKS fetched from its `jwks_uri` larger than this is refused.
const MAX_CLIENT_JWKS_BYTES: usize = 64 * 1024;
/// The claims UserInfo can release, when the request's `claims` asks for them.
const RELEASABLE: [&str; 4] = [EID_FISCAL_NUMBER, "given_name", "family_name", "name"];
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredClient {
    pub client_id: String,
    /// Where the client's public keys are: they check its request objects and assertions.
    pub keys: ClientKeys,
    /// Compared exactly with the `redirect_uri` of each request.
    pub redirect_uris: Vec<String>,
}

/// The client's public keys, as OpenID Connect Dynamic Client Registration §2 names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKeys {
    /// The JWK Set itself.
    Jwks(serde_json::Value),
    /// Where the client publishes it; read at each request, so a key the client rotates
    /// counts at once.
    JwksUri(String),
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
            access_tokens: Mutex::new(HashMap::new()),
            seen_assertions: Mutex::new(HashMap::new()),
            faults: Mutex::new(Faults::default()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| ProviderError::Bind(std::io::Error::other(e)))?,
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

    /// From now on the ID token says `acr` is `uri`, whatever was asked: lets tests see
    /// the client refuse a level lower than it requested.
    pub fn answer_with_acr(&self, uri: &str) {
        self.state.faults().acr = Some(uri.to_owned());
    }

    /// From now on UserInfo is signed by a key this provider does not publish, under the
    /// `kid` of the one it does: lets tests see the client refuse the signature.
    pub fn sign_userinfo_with_unpublished_key(&self) {
        self.state.faults().userinfo_unpublished_key = true;
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
    if client.client_id.is_empty() {
        return Err(invalid("client_id obbligatorio"));
    }
    match &client.keys {
        ClientKeys::Jwks(jwks) => {
            Jwks::from_json(jwks.to_string().as_bytes())
                .map_err(|_| invalid("jwks senza chiavi di firma RS256 o ES256"))?;
        }
        ClientKeys::JwksUri(uri) => {
            let url = Url::parse(uri).map_err(|_| invalid("jwks_uri non è un URL"))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid("jwks_uri deve essere http(s)"));
            }
        }
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
    acr: String,
    userinfo_claims: Vec<String>,
    identity: usize,
    issued: Instant,
}

/// What an access token lets its bearer read at UserInfo.
struct IssuedAccess {
    client_id: String,
    identity: usize,
    userinfo_claims: Vec<String>,
    issued: Instant,
}

/// Departures from the profile that tests switch on.
#[derive(Default)]
struct Faults {
    acr: Option<String>,
    userinfo_unpublished_key: bool,
}

struct ProviderState {
    issuer: String,
    clients: RwLock<HashMap<String, RegisteredClient>>,
    identities: Vec<DevIdentity>,
    keys: RwLock<Keys>,
    codes: Mutex<HashMap<String, IssuedCode>>,
    access_tokens: Mutex<HashMap<String, IssuedAccess>>,
    /// `jti` of each client assertion accepted, until its `exp`: each is single-use.
    seen_assertions: Mutex<HashMap<String, i64>>,
    faults: Mutex<Faults>,
    http: reqwest::Client,
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

    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// The client's public keys, fetched when it publishes them at a URL.
    async fn client_keys(&self, client: &RegisteredClient) -> Result<Jwks, &'static str> {
        let body = self.client_jwks(client).await?;
        Jwks::from_json(&body).map_err(|_| "jwks del client senza chiavi di firma utilizzabili")
    }

    /// The client's RSA key for encryption (`use: enc`) and its `kid`, if it publishes one.
    async fn client_encryption_key(
        &self,
        client: &RegisteredClient,
    ) -> Option<(rsa::RsaPublicKey, Option<String>)> {
        let body = self.client_jwks(client).await.ok()?;
        let jwks: serde_json::Value = serde_json::from_slice(&body).ok()?;
        jwks["keys"].as_array()?.iter().find_map(|key| {
            if key["kty"] != "RSA" || key["use"] != "enc" {
                return None;
            }
            let number = |name: &str| {
                key[name]
                    .as_str()
                    .and_then(|text| crate::jwt::unb64(text, "jwk").ok())
                    .map(|bytes| rsa::BigUint::from_bytes_be(&bytes))
            };
            let public = rsa::RsaPublicKey::new(number("n")?, number("e")?).ok()?;
            Some((public, key["kid"].as_str().map(str::to_string)))
        })
    }

    /// The client's JWK Set as published: given at registration, or read from its URL.
    async fn client_jwks(&self, client: &RegisteredClient) -> Result<Vec<u8>, &'static str> {
        Ok(match &client.keys {
            ClientKeys::Jwks(jwks) => jwks.to_string().into_bytes(),
            ClientKeys::JwksUri(uri) => {
                let response = self
                    .http
                    .get(uri)
                    .send()
                    .await
                    .map_err(|_| "jwks_uri del client non raggiungibile")?;
                if !response.status().is_success() {
                    return Err("jwks_uri del client non risponde 200");
                }
                let body = response
                    .bytes()
                    .await
                    .map_err(|_| "jwks_uri del client non leggibile")?;
                if body.len() > MAX_CLIENT_JWKS_BYTES {
                    return Err("jwks del client troppo grande");
                }
                body.to_vec()
            }
        })
    }
}

type Shared = State<Arc<ProviderState>>;

fn router(state: Arc<ProviderState>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize_page).post(authorize_decision))
        .route("/token", axum::routing::post(token))
        .route("/userinfo", get(userinfo))
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
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "userinfo_signing_alg_values_supported": ["ES256"],
            "request_parameter_supported": true,
            "request_object_signing_alg_values_supported": ["RS256", "ES256"],
            "scopes_supported": ["openid"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256"],
            "code_challenge_methods_supported": ["S256"],
            "acr_values_supported": AcrLevel::ALL.map(AcrLevel::uri),
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
/// Everything that matters is in `request`; the rest must agree with it.
#[derive(Debug, Default, Deserialize)]
struct AuthorizeParams {
    client_id: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// The signed request object.
    request: Option<String>,
    /// Index into the identities: the button pressed.
    identity: Option<String>,
    /// Present when "Annulla" was pressed.
    cancel: Option<String>,
}

/// The payload of a request object (OpenID Connect Core §6.1; SPID/CIE list what it holds).
#[derive(Deserialize)]
struct RequestObject {
    iss: Option<String>,
    aud: Option<Audience>,
    #[serde(default, deserialize_with = "optional_date")]
    iat: Option<i64>,
    #[serde(default, deserialize_with = "optional_date")]
    exp: Option<i64>,
    client_id: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    acr_values: Option<String>,
    claims: Option<serde_json::Value>,
}

fn optional_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    crate::jwt::numeric_date(d).map(Some)
}

/// A request that passed every check.
struct ValidRequest {
    client_id: String,
    /// The signed request object, posted back by the page and checked again.
    request: String,
    scope: String,
    code_challenge: String,
    /// Exactly as registered: the token request must repeat it byte for byte.
    redirect_uri: String,
    redirect_url: Url,
    state: String,
    nonce: String,
    /// The first level in `acr_values` (they come in order of preference).
    acr: AcrLevel,
    userinfo_claims: Vec<String>,
}

/// RFC 6749 §4.1.2.1: with an unknown client, or a redirect URI not proven by the client's
/// signature, we must not redirect, since that would make us an open redirector; every
/// other fault is shown on the page as well, which suits a provider whose reader is a
/// developer.
async fn validate_request(
    state: &ProviderState,
    params: &AuthorizeParams,
) -> Result<ValidRequest, &'static str> {
    let client_id = params.client_id.as_deref().ok_or("client_id mancante")?;
    let client = state.client(client_id).ok_or("client_id sconosciuto")?;
    let raw = params
        .request
        .as_deref()
        .ok_or("request mancante: la richiesta deve essere un request object firmato")?;
    let token = Unverified::parse(raw).map_err(|_| "request object non leggibile")?;
    let keys = state.client_keys(&client).await?;
    let object: RequestObject = token.verified(&keys).map_err(|error| match error {
        OidcError::UnknownKey { .. } | OidcError::BadSignature => {
            "request object non firmato da una chiave del client"
        }
        _ => "request object non leggibile",
    })?;
    if object.iss.as_deref() != Some(client_id) || object.client_id.as_deref() != Some(client_id) {
        return Err("iss e client_id del request object devono essere il client_id");
    }
    if !object
        .aud
        .as_ref()
        .is_some_and(|aud| aud.contains(&state.issuer))
    {
        return Err("aud del request object non è questo provider");
    }
    let now = unix_now();
    if object.exp.is_none_or(|exp| exp <= now - LEEWAY_SECS) {
        return Err("request object scaduto");
    }
    if object.iat.is_none_or(|iat| iat > now + LEEWAY_SECS) {
        return Err("iat del request object mancante o futuro");
    }
    let redirect_uri = object
        .redirect_uri
        .as_deref()
        .ok_or("redirect_uri mancante")?;
    if !client.redirect_uris.iter().any(|uri| uri == redirect_uri) {
        return Err("redirect_uri non registrato per questo client");
    }
    let redirect_url = Url::parse(redirect_uri).map_err(|_| "redirect_uri non valido")?;
    if object.response_type.as_deref() != Some("code")
        || params.response_type.as_deref() != Some("code")
    {
        return Err("response_type deve essere code");
    }
    let scope = object.scope.clone().unwrap_or_default();
    if params.scope.as_deref() != Some(scope.as_str()) {
        return Err("scope della richiesta diverso da quello del request object");
    }
    if !scope.split(' ').any(|s| s == "openid") {
        return Err("scope deve comprendere openid");
    }
    if object.code_challenge_method.as_deref() != Some("S256")
        || params.code_challenge_method.as_deref() != Some("S256")
    {
        return Err("code_challenge_method deve essere S256");
    }
    let bounded = |value: &Option<String>, missing: &'static str| match value.as_deref() {
        Some(v) if !v.is_empty() && v.len() <= MAX_PARAM_LEN => Ok(v.to_owned()),
        _ => Err(missing),
    };
    let code_challenge = bounded(
        &object.code_challenge,
        "code_challenge mancante o non valido",
    )?;
    if code_challenge.len() != 43 {
        return Err("code_challenge non è un hash SHA-256");
    }
    if params
        .code_challenge
        .as_deref()
        .is_some_and(|c| c != code_challenge)
    {
        return Err("code_challenge della richiesta diverso da quello del request object");
    }
    let acr = object
        .acr_values
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .find_map(AcrLevel::from_uri)
        .ok_or("acr_values mancante o senza un livello SPID")?;
    let userinfo_claims = object
        .claims
        .as_ref()
        .and_then(|claims| claims.get("userinfo"))
        .and_then(serde_json::Value::as_object)
        .map(|asked| {
            RELEASABLE
                .iter()
                .filter(|claim| asked.contains_key(**claim))
                .map(|claim| (*claim).to_owned())
                .collect()
        })
        .unwrap_or_default();
    Ok(ValidRequest {
        client_id: client_id.to_owned(),
        request: raw.to_owned(),
        scope,
        code_challenge,
        redirect_uri: redirect_uri.to_owned(),
        redirect_url,
        state: bounded(&object.state, "state mancante o troppo lungo")?,
        nonce: bounded(&object.nonce, "nonce mancante o troppo lungo")?,
        acr,
        userinfo_claims,
    })
}

async fn authorize_page(
    State(state): Shared,
    query: Result<Query<AuthorizeParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let params = query.map(|Query(p)| p).unwrap_or_default();
    match validate_request(&state, &params).await {
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
    let Ok(Form(params)) = form else {
        return html(
            StatusCode::BAD_REQUEST,
            None,
            &error_page("modulo non leggibile"),
        );
    };
    let request = match validate_request(&state, &params).await {
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
    let acr = state
        .faults()
        .acr
        .clone()
        .unwrap_or_else(|| request.acr.uri().to_owned());
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
                acr,
                userinfo_claims: request.userinfo_claims,
                identity,
                issued: Instant::now(),
            },
        );
    }
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &request.state)
        // RFC 9207, which CIE requires: says which provider answers.
        .append_pair("iss", &state.issuer);
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
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
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
    let client = match authenticate(&state, &headers, &form).await {
        Ok(client) => client,
        Err(why) => return invalid_client(why),
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
    let subject = identity.subject();
    let signer = state
        .keys
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .current
        .clone();
    // SPID/CIE want the access token as a signed JWT (iGov); only UserInfo reads it.
    let access_token = signer.sign(&serde_json::json!({
        "iss": state.issuer,
        "sub": subject,
        "aud": [client.client_id],
        "client_id": client.client_id,
        "scope": "openid",
        "jti": random_token(),
        "iat": now,
        "exp": now + ID_TOKEN_LIFETIME_SECS,
    }));
    // No attributes: SPID releases them from UserInfo only.
    let id_token = signer.sign(&serde_json::json!({
        "iss": state.issuer,
        "sub": subject,
        "aud": client.client_id,
        "acr": issued.acr,
        "at_hash": at_hash(&access_token),
        "iat": now,
        "nbf": now,
        "exp": now + ID_TOKEN_LIFETIME_SECS,
        "jti": random_token(),
        "nonce": issued.nonce,
    }));
    {
        let mut tokens = state
            .access_tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        tokens.retain(|_, access| access.issued.elapsed() < ACCESS_TOKEN_LIFETIME);
        tokens.insert(
            access_token.clone(),
            IssuedAccess {
                client_id: client.client_id.clone(),
                identity: issued.identity,
                userinfo_claims: issued.userinfo_claims,
                issued: Instant::now(),
            },
        );
    }
    no_store_json(
        StatusCode::OK,
        serde_json::json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ID_TOKEN_LIFETIME_SECS,
            "id_token": id_token,
        }),
    )
}

/// The claims of a client assertion (RFC 7523 §3).
#[derive(Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    #[serde(default, deserialize_with = "optional_date")]
    iat: Option<i64>,
    #[serde(default, deserialize_with = "optional_date")]
    exp: Option<i64>,
    jti: Option<String>,
}

/// `private_key_jwt` only, as SPID and CIE require: a JWT signed by a key of the client's
/// JWKS, naming the client as `iss` and `sub`, for this token endpoint, unexpired, used once.
async fn authenticate(
    state: &ProviderState,
    headers: &HeaderMap,
    form: &TokenForm,
) -> Result<RegisteredClient, &'static str> {
    if headers.contains_key(header::AUTHORIZATION) || form.client_secret.is_some() {
        return Err("solo private_key_jwt: niente client_secret");
    }
    if form.client_assertion_type.as_deref() != Some(CLIENT_ASSERTION_TYPE) {
        return Err("client_assertion_type deve essere jwt-bearer (RFC 7523)");
    }
    let raw = form
        .client_assertion
        .as_deref()
        .ok_or("client_assertion mancante")?;
    let token = Unverified::parse(raw).map_err(|_| "client_assertion non leggibile")?;
    // Only to know whose keys to check it with; nothing is believed before the signature.
    let claimed: AssertionClaims = token
        .unverified_payload()
        .ok_or("client_assertion non leggibile")?;
    let client_id = claimed.iss.ok_or("iss della client_assertion mancante")?;
    if form.client_id.as_deref().is_some_and(|id| id != client_id) {
        return Err("client_id diverso dall'iss della client_assertion");
    }
    let client = state.client(&client_id).ok_or("client sconosciuto")?;
    let keys = state.client_keys(&client).await?;
    let claims: AssertionClaims = token.verified(&keys).map_err(|error| match error {
        OidcError::UnknownKey { .. } | OidcError::BadSignature => {
            "client_assertion non firmata da una chiave del client"
        }
        _ => "client_assertion non leggibile",
    })?;
    if claims.iss.as_deref() != Some(client_id.as_str())
        || claims.sub.as_deref() != Some(client_id.as_str())
    {
        return Err("iss e sub della client_assertion devono essere il client_id");
    }
    if !claims
        .aud
        .as_ref()
        .is_some_and(|aud| aud.contains(&state.token_endpoint()))
    {
        return Err("aud della client_assertion non è il token endpoint");
    }
    let now = unix_now();
    let exp = claims.exp.ok_or("exp della client_assertion mancante")?;
    if exp <= now - LEEWAY_SECS {
        return Err("client_assertion scaduta");
    }
    let iat = claims.iat.ok_or("iat della client_assertion mancante")?;
    if iat > now + LEEWAY_SECS || exp - iat > MAX_ASSERTION_LIFETIME_SECS {
        return Err("iat della client_assertion futuro o validità troppo lunga");
    }
    let jti = claims
        .jti
        .filter(|jti| !jti.is_empty() && jti.len() <= MAX_PARAM_LEN)
        .ok_or("jti della client_assertion mancante")?;
    let mut seen = state
        .seen_assertions
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    seen.retain(|_, until| *until > now - LEEWAY_SECS);
    if seen.insert(format!("{client_id} {jti}"), exp).is_some() {
        return Err("client_assertion già usata (jti ripetuto)");
    }
    Ok(client)
}

/// UserInfo (OpenID Connect Core §5.3): the claims the request asked for, as a JWT signed
/// by the provider, for the bearer of an access token this provider issued.
async fn userinfo(State(state): Shared, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let access = bearer.and_then(|token| {
        let tokens = state
            .access_tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        tokens
            .get(token)
            .filter(|access| access.issued.elapsed() < ACCESS_TOKEN_LIFETIME)
            .map(|access| {
                (
                    access.client_id.clone(),
                    access.identity,
                    access.userinfo_claims.clone(),
                )
            })
    });
    let Some((client_id, identity, asked)) = access else {
        let mut response = oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "token di accesso sconosciuto o scaduto",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        return response;
    };
    let Some(identity) = state.identities.get(identity) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "identità sconosciuta",
        );
    };
    let now = unix_now();
    let mut claims = serde_json::json!({
        "iss": state.issuer,
        "aud": client_id,
        "sub": identity.subject(),
        "iat": now,
        "exp": now + ID_TOKEN_LIFETIME_SECS,
    });
    for claim in &asked {
        let value = match claim.as_str() {
            EID_FISCAL_NUMBER if !identity.fiscal_code.is_empty() => {
                format!("TINIT-{}", identity.fiscal_code)
            }
            "given_name" => identity.given_name.clone(),
            "family_name" => identity.family_name.clone(),
            "name" => identity.full_name(),
            _ => continue,
        };
        claims[claim.as_str()] = serde_json::Value::String(value);
    }
    let current = state
        .keys
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .current
        .clone();
    let mut jwt = if state.faults().userinfo_unpublished_key {
        Es256Signer::generate().sign_with_kid(&claims, current.kid())
    } else {
        current.sign(&claims)
    };
    // Signed, then encrypted to the client, as the rules have it, when it can open it.
    let encryption = match state.client(&client_id) {
        Some(client) => state.client_encryption_key(&client).await,
        None => None,
    };
    if let Some((key, kid)) = encryption {
        match crate::jwe::encrypt(
            jwt.as_bytes(),
            &key,
            kid.as_deref(),
            crate::jwe::KeyWrap::RsaOaep256,
            crate::jwe::ContentEnc::A256CbcHs512,
        ) {
            Ok(sealed) => jwt = sealed,
            Err(_) => {
                return oauth_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "chiave di cifratura del client inutilizzabile",
                );
            }
        }
    }
    (
        StatusCode::OK,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, "application/jwt"),
        ],
        jwt,
    )
        .into_response()
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn is_pkce_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn invalid_client(why: &'static str) -> Response {
    oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why)
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
        ("response_type", "code"),
        ("scope", request.scope.as_str()),
        ("code_challenge", request.code_challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("request", request.request.as_str()),
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
         <p>Il servizio <strong>{client}</strong> chiede di accedere con SPID di {level}. \
         Scegliere l'identità di prova:</p>\n\
         <form method=\"post\" action=\"/authorize\">\n{hidden}\
         <fieldset>\n<legend>Identità di prova</legend>\n<ul>\n{choices}</ul>\n</fieldset>\n\
         <p><button type=\"submit\" name=\"cancel\" value=\"1\">Annulla</button></p>\n\
         </form>\n",
        client = escape(&request.client_id),
        level = request.acr,
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
    fn pkce_verifier_charset_and_length() {
        assert!(is_pkce_verifier(&"a".repeat(43)));
        assert!(!is_pkce_verifier(&"a".repeat(42)));
        assert!(!is_pkce_verifier(&"a".repeat(129)));
        assert!(!is_pkce_verifier(&format!("{}+", "a".repeat(43))));
    }
}

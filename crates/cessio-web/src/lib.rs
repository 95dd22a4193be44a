//! Cessio over HTTP: the Italian web pages (`ui`), the JSON API under `/api/v1`, the probes
//! (`/healthz`, `/readyz`) and `/metrics`.
//!
//! Architecture invariant: handlers translate between HTTP and the app layer; they check
//! no rule and write no SQL. Authentication (session cookie or bearer token) turns a
//! request into a `Principal`; everything else is the app's decision.

#![recursion_limit = "256"]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{
    ConnectInfo, FromRequest, FromRequestParts, MatchedPath, Path, Request, State,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use cessio_app::{
    App, AppError, CessionLine, IncomingFilter, MovementFilter, OptionInput, Principal,
};
use cessio_core::ledger::PartyId;
use cessio_store::{DelegationScope, PartyKind, Role, SessionLimits};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

mod api_credits;
mod api_operator;
mod health;
mod metrics;
pub mod openapi;
mod parse_errors;
mod problem;
mod server;
mod sessions;
mod throttle;
pub mod ui;

pub use health::READY_WITHIN;
pub use metrics::Metrics;
pub use problem::{ApiError, Problem};
pub use server::{ConnectionLimits, serve};
pub use throttle::{LoginLimits, LoginThrottle};

/// Requests bigger than this are refused before they are read (bulk imports go through
/// the CLI or their own endpoint).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Idle browser sessions end after this.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// A request (its body included) not answered within this time gets 408: a slow or stalled
/// client cannot hold a connection and its worker forever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

const SESSION_COOKIE: &str = "cessio_session";

/// Shared state of the HTTP layer: the app, and how this process serves it. Sessions,
/// strong logins in progress and the login throttle's counts are in the store
/// (`sessions.rs`, `throttle.rs`), shared by every process serving the register.
#[derive(Clone, Debug)]
pub struct WebState {
    pub app: App,
    login_throttle: Arc<LoginThrottle>,
    /// Proxies whose `X-Forwarded-For` names the client (the address they forward for);
    /// from anyone else the header is ignored, since a client could write any address.
    pub trusted_proxies: Vec<IpAddr>,
    pub metrics: Arc<Metrics>,
    /// Mark cookies `Secure` (when served over TLS, directly or behind a proxy).
    pub secure_cookies: bool,
    /// A session unused for this long ends ([`SESSION_IDLE`] unless changed).
    pub session_idle: Duration,
    /// Live sessions per user and in all.
    pub session_limits: SessionLimits,
    /// See [`REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// Strong login (SPID/CIE through OpenID Connect), when an issuer is configured.
    pub oidc: Option<Arc<ui::StrongLogin>>,
    sweeper: Arc<sessions::Sweeper>,
}

impl WebState {
    pub fn new(app: App) -> Self {
        WebState {
            login_throttle: Arc::new(LoginThrottle::new(
                app.web_sessions_store(),
                LoginLimits::default(),
            )),
            app,
            trusted_proxies: Vec::new(),
            metrics: Arc::new(Metrics::default()),
            secure_cookies: false,
            session_idle: SESSION_IDLE,
            session_limits: SessionLimits::default(),
            request_timeout: REQUEST_TIMEOUT,
            oidc: None,
            sweeper: Arc::default(),
        }
    }

    /// Replaces the login throttle's limits.
    pub fn with_login_limits(mut self, limits: LoginLimits) -> Self {
        self.login_throttle = Arc::new(LoginThrottle::new(self.app.web_sessions_store(), limits));
        self
    }

    /// Counts a login attempt of `client` on `username`; refuses it, with the seconds to
    /// wait, beyond the throttle's limits. A successful attempt is then forgiven
    /// ([`Self::login_succeeded`]).
    async fn allow_login(
        &self,
        client: IpAddr,
        username: &str,
    ) -> Result<Result<(), u64>, AppError> {
        Ok(self
            .login_throttle
            .allow(client, username)
            .await?
            .map_err(|wait| wait.as_secs().max(1)))
    }

    async fn login_succeeded(&self, client: IpAddr, username: &str) {
        if let Err(e) = self.login_throttle.forgive(client, username).await {
            tracing::warn!(error = %e, "a successful login was not forgiven by the throttle");
        }
    }
}

/// The answer to a login refused by the throttle.
fn too_many_attempts(seconds: u64) -> Problem {
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!("Troppi tentativi di accesso: riprovare tra {seconds} secondi"),
    )
    .retry_after(seconds)
}

/// The client's address: the connection's peer, or, when the peer is a trusted proxy, the
/// last address its `X-Forwarded-For` adds. Unknown (0.0.0.0) where the server was not
/// started by [`serve`] (in-process tests).
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<WebState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        if !state.trusted_proxies.contains(&peer) {
            return Ok(ClientIp(peer));
        }
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|a| a.trim().parse::<IpAddr>().ok());
        Ok(ClientIp(forwarded.unwrap_or(peer)))
    }
}

/// 256 random bits as hex: session ids, CSRF tokens, idempotency keys of forms.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    cessio_core::ledger::hash_to_hex(&bytes)
}

type ApiResult<T> = Result<T, ApiError>;

/// JSON bodies whose errors are problems too (malformed JSON, unknown fields, wrong types).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(e) => Err(json_problem(&e)),
        }
    }
}

fn json_problem(e: &JsonRejection) -> Problem {
    let status = e.status();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "content_type",
        _ => "invalid_json",
    };
    Problem::new(
        status,
        code,
        format!("Richiesta non valida: {}", e.body_text()),
    )
}

/// Query strings whose errors are problems too.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(query_problem(&e)),
        }
    }
}

fn query_problem(e: &QueryRejection) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_query",
        format!("Parametri non validi: {}", e.body_text()),
    )
}

/// The `Idempotency-Key` every mutating call carries.
#[derive(Debug)]
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get("idempotency-key");
        if header.is_some_and(|v| {
            !v.as_bytes()
                .iter()
                .all(|b| *b == b' ' || b.is_ascii_graphic())
        }) {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "idempotency_key_invalid",
                "L'intestazione Idempotency-Key ammette solo caratteri ASCII visibili (da 1 a 100)",
            ));
        }
        header
            .and_then(|v| v.to_str().ok())
            .map(|s| IdempotencyKey(s.trim().to_string()))
            .filter(|k| !k.0.is_empty())
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "idempotency_key_required",
                    "Ogni operazione richiede l'intestazione Idempotency-Key (un identificativo scelto dal client, lo stesso se si ripete la richiesta)",
                )
            })
    }
}

fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The authenticated user: a bearer token, or the session cookie.
#[derive(Debug)]
pub struct Auth(pub Principal);

impl FromRequestParts<WebState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, ApiError> {
        if let Some(bearer) = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            return Ok(Auth(state.app.principal_for_token(bearer.trim()).await?));
        }
        let Some(id) = cookie_value(&parts.headers, SESSION_COOKIE) else {
            return Err(AppError::Unauthenticated.into());
        };
        let session = state
            .live_session(id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        Ok(Auth(state.app.refresh(&session.principal).await?))
    }
}

pub fn router(state: WebState) -> Router {
    Metrics::keep_up(&state.metrics);
    let api = Router::new()
        .route("/session", post(login).delete(logout))
        .route("/me", get(me))
        .route("/tokens", post(create_token))
        .route("/tokens/{id}", delete(revoke_token))
        .route("/cf/{cf}", get(check_cf))
        .route("/rent-credit", post(rent_credit))
        .route("/parties", post(register_party))
        .route("/users", post(create_user))
        .route("/users/{username}/pin-unlock", post(unlock_pin))
        .route("/delegations", post(delegate))
        .route("/delegations/revoke", post(revoke_delegation))
        .route("/me/delegations", get(held_delegations))
        .route(
            "/parties/{cf}/delegations",
            get(party_delegations).post(grant_delegation),
        )
        .route(
            "/parties/{cf}/delegations/revoke",
            post(revoke_party_delegation),
        )
        .route("/communications", post(communicate))
        .route(
            "/communications/bulk",
            post(import_communications).layer(axum::extract::DefaultBodyLimit::max(
                cessio_core::csv::MAX_IMPORT_BYTES,
            )),
        )
        .route("/communications/{id}/annul", post(annul_communication))
        .route("/parties/{cf}/monitoring", get(monitoring))
        .route("/parties/{cf}/cedible", get(cedible))
        .route("/parties/{cf}/cessions", post(cede))
        .route("/parties/{cf}/incoming", get(incoming))
        .route("/parties/{cf}/incoming/answer", post(answer))
        .route("/parties/{cf}/movements", get(movements))
        .route("/parties/{cf}/movements.csv", get(movements_csv))
        .route("/openapi.json", get(openapi::document))
        .merge(api_operator::routes())
        .merge(api_credits::routes());
    Router::new()
        .nest("/api/v1", api)
        .route("/api/v1", get(index))
        .merge(ui::routes())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::render))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(middleware::from_fn(bare_errors_as_problems))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Bounds every request, reading its body included. What the answer tells the client to do
/// depends on what the request was, so that it never promises what the endpoint does not
/// do: an operation under an Idempotency-Key may have been applied by the writer and is
/// repeated under the same key; a bulk file may have been registered in part and is sent
/// again whole (its rows are named by their content, so none registers twice).
async fn deadline(State(state): State<WebState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let keyed = req.headers().contains_key("idempotency-key");
    let safe = req.method().is_safe();
    match tokio::time::timeout(state.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            let seconds = state.request_timeout.as_secs();
            let then = if route.as_deref() == Some("/api/v1/communications/bulk") {
                "Il file potrebbe essere stato registrato solo in parte: inviarlo di nuovo, uguale, registra le righe mancanti e nessuna due volte (quelle già registrate risultano «già registrate»)"
            } else if keyed {
                "Se era un'operazione, ripeterla con la stessa Idempotency-Key: non sarà mai eseguita due volte"
            } else if safe {
                "Riprovare, eventualmente restringendo la ricerca"
            } else {
                "L'operazione potrebbe essere stata eseguita: verificarne l'esito prima di ripeterla"
            };
            Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!("La richiesta non è stata completata entro {seconds} secondi. {then}"),
            )
            .into_response()
        }
    }
}

/// Every refusal is a problem: the framework's own (a body over the limit, a missing or
/// wrong content type, a path parameter of the wrong type, an unknown method) come as bare
/// text, and are rewritten here with a stable `code`. Pages (HTML) are left as they are.
async fn bare_errors_as_problems(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/problem+json") || content_type.starts_with("text/html")
    {
        return response;
    }
    let (code, detail) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            "Il corpo della richiesta supera il limite consentito: nulla è stato registrato",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "content_type",
            "Tipo di contenuto non accettato (Content-Type): nulla è stato registrato",
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "Metodo non consentito per questa risorsa",
        ),
        StatusCode::NOT_FOUND => ("not_found", "Risorsa inesistente"),
        StatusCode::LENGTH_REQUIRED => (
            "length_required",
            "Manca la lunghezza del corpo (Content-Length)",
        ),
        StatusCode::URI_TOO_LONG => ("uri_too_long", "Indirizzo della richiesta troppo lungo"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            "headers_too_large",
            "Intestazioni della richiesta troppo grandi",
        ),
        s if s.is_server_error() => (
            "internal_error",
            "Errore interno del registro: nulla è stato registrato; riprovare tra poco",
        ),
        _ => (
            "bad_request",
            "Richiesta non valida: controllarne l'indirizzo, le intestazioni e il corpo",
        ),
    };
    let mut problem = Problem::new(status, code, detail).into_response();
    // The methods a 405 allows stay with it.
    if let Some(allow) = response.headers().get(header::ALLOW) {
        problem.headers_mut().insert(header::ALLOW, allow.clone());
    }
    problem
}

/// Headers of every response: nothing that carries personal data or a secret is kept by a
/// cache or a proxy (`no-store`, unless the response chose its own policy, as the static
/// assets do), nothing is sniffed into another type, and no address leaks to other sites.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::REFERRER_POLICY) {
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}

async fn observe(State(state): State<WebState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().clone();
    let started = Instant::now();
    let response = next.run(req).await;
    state.metrics.observe(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Where to go from the root: the API and its description.
async fn index() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "name": "Cessio — Piattaforma cessione crediti",
        "api": "/api/v1",
        "openapi": "/api/v1/openapi.json",
        "login": "POST /api/v1/session {\"username\", \"password\"}",
        "health": "/healthz",
        "ready": "/readyz",
        "metrics": "/metrics"
    }))
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not_found", "Risorsa inesistente")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct MeBody {
    user: Principal,
    parties: Vec<PartyView>,
}

#[derive(Serialize)]
struct PartyView {
    id: PartyId,
    cf: String,
    name: String,
    kind: PartyKind,
}

async fn me_body(state: &WebState, p: Principal) -> ApiResult<MeBody> {
    let parties = state
        .app
        .parties_of(&p)
        .await?
        .into_iter()
        .map(|x| PartyView {
            id: x.id,
            cf: x.cf.as_str().to_string(),
            name: x.name,
            kind: x.kind,
        })
        .collect();
    Ok(MeBody { user: p, parties })
}

async fn login(
    State(state): State<WebState>,
    ClientIp(client): ClientIp,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Response> {
    if let Err(seconds) = state.allow_login(client, &body.username).await? {
        return Ok(too_many_attempts(seconds).into_response());
    }
    let p = state.app.login(&body.username, &body.password).await?;
    state.login_succeeded(client, &body.username).await;
    let id = state.new_session(p.clone()).await?;
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax{}",
        if state.secure_cookies { "; Secure" } else { "" }
    );
    let mut response = Json(me_body(&state, p).await?).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

async fn logout(State(state): State<WebState>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie_value(&headers, SESSION_COOKIE)
        && let Err(e) = state.end_session(id).await
    {
        // Not signed out: saying so beats a 204 the session would outlive.
        return ApiError(e).into_response();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("cessio_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    response
}

async fn me(State(state): State<WebState>, Auth(p): Auth) -> ApiResult<Json<MeBody>> {
    Ok(Json(me_body(&state, p).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    name: String,
}

async fn create_token(
    State(state): State<WebState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<TokenBody>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let (id, token) = state.app.create_token(&p, &body.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "id": id, "token": token })),
    ))
}

async fn revoke_token(
    State(state): State<WebState>,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    state.app.revoke_token(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn check_cf(
    State(state): State<WebState>,
    Auth(_): Auth,
    Path(cf): Path<String>,
) -> ApiResult<Json<cessio_app::CfCheck>> {
    Ok(Json(state.app.check_cf(&cf).await?))
}

/// R-RENT: the rent credit month by month (a calculator: it writes nothing).
async fn rent_credit(
    State(state): State<WebState>,
    Auth(p): Auth,
    ApiJson(input): ApiJson<cessio_core::rent::RentInput>,
) -> ApiResult<Json<cessio_core::rent::RentCredit>> {
    Ok(Json(state.app.rent_credit(&p, &input)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartyBody {
    cf: String,
    name: String,
    kind: PartyKind,
}

async fn register_party(
    State(state): State<WebState>,
    Auth(p): Auth,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<PartyBody>,
) -> ApiResult<(StatusCode, Json<cessio_store::Party>)> {
    let party = state
        .app
        .register_party(&p, &key, &body.cf, &body.name, body.kind)
        .await?;
    state.metrics.operation("register_party");
    Ok((StatusCode::CREATED, Json(party)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    username: String,
    display_name: String,
    password: String,
    pin: String,
    #[serde(default)]
    party_cf: Option<String>,
    role: Role,
}

async fn create_user(
    State(state): State<WebState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<UserBody>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let id = state
        .app
        .create_user(
            &p,
            &b.username,
            &b.display_name,
            &b.password,
            &b.pin,
            b.party_cf.as_deref(),
            b.role,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": id }))))
}

async fn unlock_pin(
    State(state): State<WebState>,
    Auth(p): Auth,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    state.app.unlock_pin(&p, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DelegationBody {
    username: String,
    party_cf: String,
    /// Disposizione unless given, as before delegations had a scope.
    #[serde(default)]
    scope: Option<DelegationScope>,
    #[serde(default)]
    until: Option<chrono::NaiveDate>,
}

async fn delegate(
    State(state): State<WebState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<DelegationBody>,
) -> ApiResult<StatusCode> {
    let scope = b.scope.unwrap_or(DelegationScope::Disposizione);
    state
        .app
        .delegate_with(&p, &b.username, &b.party_cf, scope, b.until)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The titolare's grant: the intermediary's username, the scope and the last day (none:
/// until revoked), with the PIN.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    username: String,
    scope: DelegationScope,
    #[serde(default)]
    until: Option<chrono::NaiveDate>,
    #[serde(default)]
    pin: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    username: String,
    #[serde(default)]
    pin: Option<String>,
}

async fn party_delegations(
    State(state): State<WebState>,
    Auth(p): Auth,
    Path(cf): Path<String>,
) -> ApiResult<Json<Vec<cessio_app::DelegationView>>> {
    let party = party_in_path(&state, &p, &cf).await?;
    Ok(Json(state.app.delegations_granted(&p, party).await?))
}

async fn grant_delegation(
    State(state): State<WebState>,
    Auth(p): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Path(cf): Path<String>,
    ApiJson(b): ApiJson<GrantBody>,
) -> ApiResult<(StatusCode, Json<cessio_app::DelegationReceipt>)> {
    let party = party_in_path(&state, &p, &cf).await?;
    let receipt = state
        .app
        .grant_delegation(
            &p,
            &key,
            b.pin.as_deref(),
            party,
            &b.username,
            b.scope,
            b.until,
        )
        .await?;
    state.metrics.operation("grant_delegation");
    Ok((StatusCode::CREATED, Json(receipt)))
}

async fn revoke_party_delegation(
    State(state): State<WebState>,
    Auth(p): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Path(cf): Path<String>,
    ApiJson(b): ApiJson<RevokeBody>,
) -> ApiResult<Json<cessio_app::DelegationReceipt>> {
    let party = party_in_path(&state, &p, &cf).await?;
    let receipt = state
        .app
        .revoke_delegation_by_titolare(&p, &key, b.pin.as_deref(), party, &b.username)
        .await?;
    state.metrics.operation("revoke_delegation");
    Ok(Json(receipt))
}

/// One party an intermediary holds a delegation for.
#[derive(Serialize)]
struct HeldView {
    party: PartyView,
    scope: DelegationScope,
    until: Option<chrono::NaiveDate>,
    granted_at: chrono::DateTime<chrono::Utc>,
}

async fn held_delegations(
    State(state): State<WebState>,
    Auth(p): Auth,
) -> ApiResult<Json<Vec<HeldView>>> {
    let held = state.app.delegations_held(&p).await?;
    Ok(Json(
        held.into_iter()
            .map(|h| HeldView {
                party: PartyView {
                    id: h.party.id,
                    cf: h.party.cf.as_str().to_string(),
                    name: h.party.name,
                    kind: h.party.kind,
                },
                scope: h.scope,
                until: h.until,
                granted_at: h.granted_at,
            })
            .collect(),
    ))
}

async fn revoke_delegation(
    State(state): State<WebState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<DelegationBody>,
) -> ApiResult<StatusCode> {
    state
        .app
        .revoke_delegation(&p, &b.username, &b.party_cf)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn communicate(
    State(state): State<WebState>,
    Auth(p): Auth,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(mut body): ApiJson<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<cessio_store::Credit>)> {
    // The PIN travels beside the communication's fields; `flatten` and
    // `deny_unknown_fields` do not combine in serde, so it is taken out by hand and the
    // rest must be exactly an `OptionInput` (unknown fields refused).
    let pin = body
        .as_object_mut()
        .and_then(|o| o.remove("pin"))
        .and_then(|v| v.as_str().map(str::to_string));
    // R-ECO-2018: the beneficiary's no-tax-area declaration, beside the input like the PIN.
    let no_tax_area = match body.as_object_mut().and_then(|o| o.remove("no_tax_area")) {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => b,
        Some(_) => {
            return Err(AppError::invalid("no_tax_area", "deve essere true o false").into());
        }
    };
    let input: OptionInput =
        serde_json::from_value(body).map_err(|e| AppError::invalid("body", e.to_string()))?;
    let credit = state
        .app
        .communicate_option_declaring(&p, &key, pin.as_deref(), &input, no_tax_area)
        .await?;
    state.metrics.operation("communicate_option");
    Ok((StatusCode::CREATED, Json(credit)))
}

/// F8 bulk: the CSV file is the body; the PIN (for users) in the `X-Cessio-Pin` header.
async fn import_communications(
    State(state): State<WebState>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<cessio_app::ImportReport>> {
    let pin = headers.get("x-cessio-pin").and_then(|v| v.to_str().ok());
    Ok(Json(
        state
            .app
            .import_communications(&p, pin, &body, |_, _| {})
            .await?,
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct PinBody {
    #[serde(default)]
    pin: Option<String>,
}

async fn annul_communication(
    State(state): State<WebState>,
    Auth(p): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<PinBody>,
) -> ApiResult<Json<cessio_app::AnswerReceipt>> {
    let receipt = state
        .app
        .annul_option(&p, &key, b.pin.as_deref(), id)
        .await?;
    state.metrics.operation("annul_option");
    Ok(Json(receipt))
}

/// Resolves the party in the path. For users, an unregistered code is answered exactly like
/// a party they may not see (the app's own authorisation refusal), so codes cannot be
/// probed; the app function then checks the user's rights, once.
async fn party_in_path(state: &WebState, p: &Principal, cf: &str) -> ApiResult<PartyId> {
    match state.app.party_by_cf(cf).await {
        Ok(party) => Ok(party.id),
        Err(AppError::CfUnknown { .. }) if !p.is_operator() => {
            Err(ApiError(AppError::not_your_party()))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AsOfQuery {
    #[serde(default)]
    as_of: Option<chrono::NaiveDate>,
}

async fn monitoring(
    State(state): State<WebState>,
    Auth(p): Auth,
    Path(cf): Path<String>,
    ApiQuery(q): ApiQuery<AsOfQuery>,
) -> ApiResult<Json<Vec<cessio_app::MonitorRow>>> {
    let party = party_in_path(&state, &p, &cf).await?;
    Ok(Json(state.app.monitoring(&p, party, q.as_of).await?))
}

async fn cedible(
    State(state): State<WebState>,
    Auth(p): Auth,
    Path(cf): Path<String>,
) -> ApiResult<Json<Vec<cessio_app::CedibleHolding>>> {
    let party = party_in_path(&state, &p, &cf).await?;
    Ok(Json(state.app.cedible(&p, party).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CessionBody {
    lines: Vec<CessionLine>,
    /// "Autorizzo il cessionario a visualizzare il mio nominativo".
    disclose_name: bool,
    #[serde(default)]
    pin: Option<String>,
}

async fn cede(
    State(state): State<WebState>,
    Auth(p): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Path(cf): Path<String>,
    ApiJson(b): ApiJson<CessionBody>,
) -> ApiResult<(StatusCode, Json<cessio_app::CessionReceipt>)> {
    let party = party_in_path(&state, &p, &cf).await?;
    let receipt = state
        .app
        .cede(&p, &key, b.pin.as_deref(), party, &b.lines, b.disclose_name)
        .await?;
    state.metrics.operation("cede");
    Ok((StatusCode::CREATED, Json(receipt)))
}

async fn incoming(
    State(state): State<WebState>,
    Auth(p): Auth,
    Path(cf): Path<String>,
    ApiQuery(filter): ApiQuery<IncomingFilter>,
) -> ApiResult<Json<Vec<cessio_app::IncomingGroup>>> {
    let party = party_in_path(&state, &p, &cf).await?;
    Ok(Json(state.app.incoming(&p, party, &filter).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    accept: bool,
    #[serde(default)]
    type_key: Option<String>,
    #[serde(default)]
    year: Option<u16>,
    #[serde(default)]
    cedente_cf: Option<String>,
    #[serde(default)]
    pin: Option<String>,
}

async fn answer(
    State(state): State<WebState>,
    Auth(p): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Path(cf): Path<String>,
    ApiJson(b): ApiJson<AnswerBody>,
) -> ApiResult<Json<cessio_app::AnswerReceipt>> {
    let party = party_in_path(&state, &p, &cf).await?;
    let selection = IncomingFilter {
        type_key: b.type_key,
        year: b.year,
        cedente_cf: b.cedente_cf,
    };
    let receipt = state
        .app
        .answer(&p, &key, b.pin.as_deref(), party, &selection, b.accept)
        .await?;
    state
        .metrics
        .operation(if b.accept { "accept" } else { "refuse" });
    Ok(Json(receipt))
}

async fn movements(
    State(state): State<WebState>,
    Auth(p): Auth,
    Path(cf): Path<String>,
    ApiQuery(filter): ApiQuery<MovementFilter>,
) -> ApiResult<Json<Vec<cessio_app::MovementRow>>> {
    let party = party_in_path(&state, &p, &cf).await?;
    Ok(Json(state.app.movements(&p, party, &filter).await?))
}

async fn movements_csv(
    State(state): State<WebState>,
    Auth(p): Auth,
    Path(cf): Path<String>,
    ApiQuery(filter): ApiQuery<MovementFilter>,
) -> ApiResult<Response> {
    let party = party_in_path(&state, &p, &cf).await?;
    let export = state.app.movements_export(&p, party, &filter).await?;
    Ok(csv_download(export))
}

/// F4's export as a download, sent as it is read (R-50000 was checked before the first
/// byte). A failure after the first byte can no longer change the status: the response is
/// cut short, so that the client sees an incomplete transfer, never a shorter file.
pub(crate) fn csv_download(export: cessio_app::MovementExport) -> Response {
    let pieces = futures_util::stream::unfold(export, |mut export| async move {
        let piece = export.next_csv().await?;
        if let Err(e) = &piece {
            tracing::warn!(error = %e, "F4 export cut short");
        }
        Some((piece, export))
    });
    let mut response = axum::body::Body::from_stream(pieces).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"lista-movimenti.csv\""),
    );
    response
}

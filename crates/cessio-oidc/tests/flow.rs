//! The login flow over real HTTP: the local provider on an ephemeral port, the client
//! discovering it, and a test standing in for the browser (it reads the page, posts the
//! form and reads the `Location` header instead of following it).

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use cessio_oidc::{
    AcrLevel, ClientKeys, DevIdentity, DevProvider, Identity, OidcClient, OidcError, PendingLogin,
    RegisteredClient, RelyingParty, RpKey, RunningProvider, UserinfoFault,
};
use reqwest::{StatusCode, Url};
use serde_json::json;

const CLIENT_ID: &str = "cessio-web";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Nothing listens there: the test reads the redirect instead of following it.
const REDIRECT: &str = "http://127.0.0.1:9/auth/callback";
const MARIO_CF: &str = "RSSMRA80A01H501U";

fn identities() -> Vec<DevIdentity> {
    vec![
        DevIdentity {
            fiscal_code: MARIO_CF.into(),
            given_name: "Mario".into(),
            family_name: "Rossi".into(),
        },
        DevIdentity {
            fiscal_code: "VRDLGU75C41F205X".into(),
            given_name: "Luigia".into(),
            family_name: "Verdi".into(),
        },
    ]
}

/// The relying party's key, registered with the provider. One per test binary: RSA
/// generation is the slow part of these tests.
fn rp_key() -> &'static RpKey {
    static KEY: OnceLock<RpKey> = OnceLock::new();
    KEY.get_or_init(RpKey::generate)
}

/// A key the provider has never seen.
fn stranger_key() -> &'static RpKey {
    static KEY: OnceLock<RpKey> = OnceLock::new();
    KEY.get_or_init(RpKey::generate)
}

fn registered(client_id: &str, redirect_uris: &[&str]) -> RegisteredClient {
    RegisteredClient {
        client_id: client_id.into(),
        keys: ClientKeys::Jwks(rp_key().public_jwks()),
        redirect_uris: redirect_uris.iter().map(|u| (*u).to_owned()).collect(),
    }
}

fn relying_party(client_id: &str, key: &RpKey, redirect_uri: &str) -> RelyingParty {
    RelyingParty {
        client_id: client_id.into(),
        key: key.clone(),
        redirect_uri: redirect_uri.into(),
        acr: AcrLevel::SpidL2,
    }
}

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    i64::try_from(secs).expect("fits")
}

/// A provider with one client, the client that uses it, and a browser that never follows
/// redirects.
struct TestEnv {
    provider: RunningProvider,
    client: OidcClient,
    browser: reqwest::Client,
}

impl TestEnv {
    async fn start() -> TestEnv {
        let provider = DevProvider::start(
            "127.0.0.1:0".parse().expect("address"),
            vec![registered(CLIENT_ID, &[REDIRECT])],
            identities(),
        )
        .await
        .expect("provider starts");
        let client = OidcClient::discover(
            &provider.issuer,
            relying_party(CLIENT_ID, rp_key(), REDIRECT),
        )
        .await
        .expect("discovery");
        TestEnv {
            provider,
            client,
            browser: browser(),
        }
    }

    async fn client_with(&self, rp: RelyingParty) -> OidcClient {
        OidcClient::discover(&self.provider.issuer, rp)
            .await
            .expect("discovery")
    }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// What came back on the redirect URI.
#[derive(Debug)]
struct Callback {
    params: HashMap<String, String>,
}

impl Callback {
    fn get(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }
}

/// The `value` of each hidden `<input>` on the page, by name.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|rest| {
            let attr = |name: &str| {
                let start = rest.find(&format!("{name}=\"")).expect("attribute") + name.len() + 2;
                let len = rest[start..].find('"').expect("closing quote");
                rest[start..start + len]
                    .replace("&quot;", "\"")
                    .replace("&amp;", "&")
            };
            (attr("name"), attr("value"))
        })
        .collect()
}

/// Plays the browser: opens the authorize URL, presses one button, returns the redirect.
async fn press(browser: &reqwest::Client, authorize_url: &str, button: (&str, &str)) -> Callback {
    let page = browser
        .get(authorize_url)
        .send()
        .await
        .expect("GET /authorize");
    assert_eq!(page.status(), StatusCode::OK);
    let page_url = page.url().clone();
    let html = page.text().await.expect("page body");
    let mut form = hidden_fields(&html);
    form.push((button.0.into(), button.1.into()));
    let answer = browser
        .post(page_url.join("/authorize").expect("form action"))
        .form(&form)
        .send()
        .await
        .expect("POST /authorize");
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let location = answer.headers()[reqwest::header::LOCATION]
        .to_str()
        .expect("ascii location");
    let location = Url::parse(location).expect("absolute location");
    Callback {
        params: location.query_pairs().into_owned().collect(),
    }
}

async fn login_as(env: &TestEnv, identity: usize) -> (PendingLogin, Callback) {
    let (url, pending) = env.client.begin(now());
    let callback = press(&env.browser, &url, ("identity", &identity.to_string())).await;
    (pending, callback)
}

#[tokio::test]
async fn full_flow_yields_identity_with_fiscal_code() {
    let env = TestEnv::start().await;
    let (pending, callback) = login_as(&env, 0).await;
    assert_eq!(callback.get("state"), pending.state);
    let identity = env
        .client
        .finish(&pending, callback.get("code"), callback.get("state"), now())
        .await
        .expect("login succeeds");
    assert_eq!(identity.fiscal_code, MARIO_CF);
    assert_eq!(identity.given_name.as_deref(), Some("Mario"));
    assert_eq!(identity.family_name.as_deref(), Some("Rossi"));
    // Asked for given and family name only: the provider releases nothing else.
    assert_eq!(identity.name, None);
    assert_eq!(identity.level, AcrLevel::SpidL2);
    assert!(!identity.subject.is_empty());
    assert_eq!(callback.get("iss"), env.provider.issuer);
}

#[tokio::test]
async fn authorization_request_is_a_signed_request_object_with_pkce_acr_and_claims() {
    let env = TestEnv::start().await;
    let (url, pending) = env.client.begin(now());
    let url = Url::parse(&url).expect("URL");
    let query: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["scope"], "openid");
    assert_eq!(query["code_challenge_method"], "S256");
    for loose in ["state", "nonce", "redirect_uri", "claims", "acr_values"] {
        assert!(
            !query.contains_key(loose),
            "{loose} only in the request object"
        );
    }
    let payload = query["request"].split('.').nth(1).expect("JWS");
    let object: serde_json::Value =
        serde_json::from_slice(&base64_url(payload)).expect("JSON payload");
    assert_eq!(object["iss"], CLIENT_ID);
    assert_eq!(object["aud"], env.provider.issuer);
    assert_eq!(object["state"], pending.state.as_str());
    assert_eq!(object["nonce"], pending.nonce.as_str());
    assert_eq!(object["code_challenge"], query["code_challenge"].as_str());
    assert_eq!(object["acr_values"], "https://www.spid.gov.it/SpidL2");
    assert_eq!(object["prompt"], "consent login");
    assert_eq!(
        object["claims"]["userinfo"]["https://attributes.eid.gov.it/fiscal_number"]["essential"],
        true
    );
    assert!(object["claims"].get("id_token").is_none());
    assert!(object["exp"].as_i64() > object["iat"].as_i64());
    assert!(object["jti"].as_str().is_some_and(|jti| !jti.is_empty()));
}

fn base64_url(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64url")
}

#[tokio::test]
async fn subject_is_stable_per_identity() {
    let env = TestEnv::start().await;
    let mut subjects = Vec::new();
    for identity in [0, 1, 0] {
        let (pending, cb) = login_as(&env, identity).await;
        let Identity { subject, .. } = env
            .client
            .finish(&pending, cb.get("code"), cb.get("state"), now())
            .await
            .expect("login succeeds");
        subjects.push(subject);
    }
    assert_eq!(subjects[0], subjects[2]);
    assert_ne!(subjects[0], subjects[1]);
}

#[tokio::test]
async fn authorize_page_is_italian_html_without_scripts() {
    let env = TestEnv::start().await;
    let (url, _) = env.client.begin(now());
    let page = env.browser.get(&url).send().await.expect("GET /authorize");
    let headers = page.headers().clone();
    let html = page.text().await.expect("body");
    assert!(html.contains("<html lang=\"it\">"));
    assert!(html.contains("Provider di identità di prova (solo sviluppo e test)"));
    assert!(html.contains("Entra come Mario Rossi"));
    assert!(html.contains("Entra come Luigia Verdi"));
    assert!(html.contains(MARIO_CF));
    assert!(html.contains(">Annulla</button>"));
    assert!(html.contains("SPID di livello 2"));
    assert!(html.contains("<form method=\"post\" action=\"/authorize\">"));
    for forbidden in ["<script", "style=", "<style", "javascript:", " on"] {
        assert!(!html.contains(forbidden), "page contains {forbidden:?}");
    }
    let csp = headers["content-security-policy"].to_str().expect("ascii");
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:9;"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
}

#[tokio::test]
async fn cancel_returns_access_denied_with_state() {
    let env = TestEnv::start().await;
    let (url, pending) = env.client.begin(now());
    let callback = press(&env.browser, &url, ("cancel", "1")).await;
    assert_eq!(callback.get("error"), "access_denied");
    assert_eq!(callback.get("state"), pending.state);
    assert_eq!(callback.get("code"), "");
    let refusal = OidcError::AuthorizationRefused {
        error: callback.get("error").into(),
    };
    assert_eq!(refusal.to_string(), "Accesso annullato.");
}

#[tokio::test]
async fn wrong_state_refused_before_code_is_spent() {
    let env = TestEnv::start().await;
    let (pending, cb) = login_as(&env, 0).await;
    let forged = env
        .client
        .finish(
            &pending,
            cb.get("code"),
            "stato-di-un-altro-tentativo",
            now(),
        )
        .await;
    assert!(
        matches!(forged, Err(OidcError::StateMismatch)),
        "{forged:?}"
    );
    let genuine = env
        .client
        .finish(&pending, cb.get("code"), cb.get("state"), now())
        .await;
    assert!(genuine.is_ok(), "{genuine:?}");
}

fn assert_refused(result: Result<Identity, OidcError>, status: u16, code: &str) {
    match result {
        Err(OidcError::TokenRefused {
            status: s, error, ..
        }) => {
            assert_eq!((s, error.as_str()), (status, code));
        }
        other => panic!("expected {code}, got {other:?}"),
    }
}

#[tokio::test]
async fn replayed_code_refused() {
    let env = TestEnv::start().await;
    let (pending, cb) = login_as(&env, 0).await;
    let first = env
        .client
        .finish(&pending, cb.get("code"), cb.get("state"), now())
        .await;
    assert!(first.is_ok(), "{first:?}");
    let replay = env
        .client
        .finish(&pending, cb.get("code"), cb.get("state"), now())
        .await;
    assert_refused(replay, 400, "invalid_grant");
}

#[tokio::test]
async fn wrong_pkce_verifier_refused_and_code_burnt() {
    let env = TestEnv::start().await;
    let (pending, cb) = login_as(&env, 0).await;
    let (_, other) = env.client.begin(now());
    let stolen = PendingLogin {
        code_verifier: other.code_verifier,
        ..pending.clone()
    };
    let result = env
        .client
        .finish(&stolen, cb.get("code"), cb.get("state"), now())
        .await;
    assert_refused(result, 400, "invalid_grant");
    // RFC 6749: a code is single-use even when its first use failed.
    let retry = env
        .client
        .finish(&pending, cb.get("code"), cb.get("state"), now())
        .await;
    assert_refused(retry, 400, "invalid_grant");
}

fn assert_invalid_client(result: Result<Identity, OidcError>, reason: &str) {
    match result {
        Err(OidcError::TokenRefused {
            status: 401,
            error,
            description,
        }) if error == "invalid_client" => {
            let description = description.unwrap_or_default();
            assert!(description.contains(reason), "{description}");
        }
        other => panic!("expected invalid_client ({reason}), got {other:?}"),
    }
}

#[tokio::test]
async fn client_assertion_signed_by_another_key_refused() {
    let env = TestEnv::start().await;
    let (pending, cb) = login_as(&env, 0).await;
    let impostor = env
        .client_with(relying_party(CLIENT_ID, stranger_key(), REDIRECT))
        .await;
    let result = impostor
        .finish(&pending, cb.get("code"), cb.get("state"), now())
        .await;
    assert_invalid_client(result, "non firmata da una chiave del client");
}

#[tokio::test]
async fn expired_client_assertion_refused() {
    let env = TestEnv::start().await;
    let (pending, cb) = login_as(&env, 0).await;
    let an_hour_ago = now() - 3600;
    let result = env
        .client
        .finish(&pending, cb.get("code"), cb.get("state"), an_hour_ago)
        .await;
    assert_invalid_client(result, "scaduta");
}

#[tokio::test]
async fn request_object_signed_by_another_key_gets_error_page() {
    let env = TestEnv::start().await;
    let impostor = env
        .client_with(relying_party(CLIENT_ID, stranger_key(), REDIRECT))
        .await;
    let (url, _) = impostor.begin(now());
    let page = env.browser.get(&url).send().await.expect("GET /authorize");
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(page.headers().get("location").is_none());
    let html = page.text().await.expect("body");
    assert!(
        html.contains("request object non firmato da una chiave del client"),
        "{html}"
    );
}

#[tokio::test]
async fn authorization_without_request_object_refused() {
    let env = TestEnv::start().await;
    let (url, _) = env.client.begin(now());
    let mut bare = Url::parse(&url).expect("URL");
    let kept: Vec<(String, String)> = bare
        .query_pairs()
        .into_owned()
        .filter(|(name, _)| name != "request")
        .collect();
    bare.query_pairs_mut().clear().extend_pairs(kept);
    let page = env.browser.get(bare).send().await.expect("GET /authorize");
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(
        page.text()
            .await
            .expect("body")
            .contains("request mancante")
    );
}

#[tokio::test]
async fn acr_lower_than_requested_refused() {
    let env = TestEnv::start().await;
    env.provider.answer_with_acr(AcrLevel::SpidL1.uri());
    let (pending, cb) = login_as(&env, 0).await;
    let result = env
        .client
        .finish(&pending, cb.get("code"), cb.get("state"), now())
        .await;
    match result {
        Err(error @ OidcError::AcrTooLow { .. }) => {
            assert!(error.to_string().contains("livello 2"), "{error}");
        }
        other => panic!("expected AcrTooLow, got {other:?}"),
    }
}

#[tokio::test]
async fn level_3_asked_is_the_level_given() {
    let env = TestEnv::start().await;
    let strict = env
        .client_with(RelyingParty {
            acr: AcrLevel::SpidL3,
            ..relying_party(CLIENT_ID, rp_key(), REDIRECT)
        })
        .await;
    let (url, pending) = strict.begin(now());
    let cb = press(&env.browser, &url, ("identity", "0")).await;
    let identity = strict
        .finish(&pending, cb.get("code"), cb.get("state"), now())
        .await
        .expect("login succeeds");
    assert_eq!(identity.level, AcrLevel::SpidL3);
}

#[tokio::test]
async fn userinfo_signed_by_an_unpublished_key_refused() {
    let env = TestEnv::start().await;
    env.provider.sign_userinfo_with_unpublished_key();
    let (pending, cb) = login_as(&env, 0).await;
    let result = env
        .client
        .finish(&pending, cb.get("code"), cb.get("state"), now())
        .await;
    assert!(
        matches!(
            result,
            Err(OidcError::Userinfo(UserinfoFault::BadSignature))
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn identity_without_fiscal_number_refused() {
    let (_provider, client) = env_with(
        rp_key().public_jwks(),
        rp_key().clone(),
        vec![DevIdentity {
            fiscal_code: String::new(),
            given_name: "Senza".into(),
            family_name: "Codice".into(),
        }],
    )
    .await;
    let result = finish_login(&client).await;
    assert!(
        matches!(result, Err(OidcError::FiscalNumberMissing)),
        "{result:?}"
    );
}

#[tokio::test]
async fn client_keys_read_from_its_jwks_uri() {
    // The RP publishes its JWKS; the provider reads it there, as it would from the
    // federation, instead of holding a copy.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let jwks_uri = format!(
        "http://{}/oidc/jwks.json",
        listener.local_addr().expect("addr")
    );
    let published = rp_key().public_jwks();
    let app = axum::Router::new().route(
        "/oidc/jwks.json",
        axum::routing::get(move || async move { axum::Json(published) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let provider = DevProvider::start(
        "127.0.0.1:0".parse().expect("address"),
        vec![RegisteredClient {
            keys: ClientKeys::JwksUri(jwks_uri),
            ..registered(CLIENT_ID, &[REDIRECT])
        }],
        identities(),
    )
    .await
    .expect("provider starts");
    let client = OidcClient::discover(
        &provider.issuer,
        relying_party(CLIENT_ID, rp_key(), REDIRECT),
    )
    .await
    .expect("discovery");
    let (url, pending) = client.begin(now());
    let cb = press(&browser(), &url, ("identity", "1")).await;
    let identity = client
        .finish(&pending, cb.get("code"), cb.get("state"), now())
        .await
        .expect("login succeeds");
    assert_eq!(identity.fiscal_code, "VRDLGU75C41F205X");
}

#[tokio::test]
async fn unregistered_redirect_uri_gets_error_page_not_redirect() {
    let env = TestEnv::start().await;
    let elsewhere = env
        .client_with(relying_party(
            CLIENT_ID,
            rp_key(),
            "http://127.0.0.1:9/altrove",
        ))
        .await;
    let (url, _) = elsewhere.begin(now());
    let page = env.browser.get(&url).send().await.expect("GET /authorize");
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(page.headers().get("location").is_none());
    let html = page.text().await.expect("body");
    assert!(html.contains("redirect_uri non registrato"), "{html}");
}

#[tokio::test]
async fn redirect_uri_differing_at_token_refused() {
    let second = "http://127.0.0.1:9/auth/other-callback";
    let env = TestEnv::start().await;
    env.provider
        .register_client(registered(CLIENT_ID, &[REDIRECT, second]))
        .expect("valid client");
    let (pending, cb) = login_as(&env, 0).await;
    let other_redirect = env
        .client_with(relying_party(CLIENT_ID, rp_key(), second))
        .await;
    let result = other_redirect
        .finish(&pending, cb.get("code"), cb.get("state"), now())
        .await;
    assert_refused(result, 400, "invalid_grant");
}

#[tokio::test]
async fn expired_id_token_refused() {
    let env = TestEnv::start().await;
    let (pending, cb) = login_as(&env, 0).await;
    let token = raw_token_request(
        &env,
        &assertion(CLIENT_ID, &token_endpoint(&env)),
        &cb,
        &pending,
    )
    .await;
    let an_hour_later = now() + 3600;
    let result = env
        .client
        .verify_id_token(
            token["id_token"].as_str().expect("id_token"),
            &pending.nonce,
            token["access_token"].as_str().expect("access_token"),
            an_hour_later,
        )
        .await;
    assert!(
        matches!(result, Err(OidcError::Expired { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn id_token_for_another_login_refused_by_nonce() {
    let env = TestEnv::start().await;
    let (pending, cb) = login_as(&env, 0).await;
    let (_, other) = env.client.begin(now());
    let mixed = PendingLogin {
        nonce: other.nonce,
        ..pending
    };
    let result = env
        .client
        .finish(&mixed, cb.get("code"), cb.get("state"), now())
        .await;
    assert!(matches!(result, Err(OidcError::WrongNonce)), "{result:?}");
}

#[tokio::test]
async fn id_token_for_another_client_refused_by_audience() {
    // Two clients of the same provider: a token the provider issued to one is not a
    // login into the other, even with a valid signature.
    let env = TestEnv::start().await;
    env.provider
        .register_client(registered("altro-servizio", &[REDIRECT]))
        .expect("valid client");
    let other = env
        .client_with(relying_party("altro-servizio", rp_key(), REDIRECT))
        .await;
    let (url, pending) = other.begin(now());
    let cb = press(&env.browser, &url, ("identity", "0")).await;
    let token = raw_token_request(
        &env,
        &assertion("altro-servizio", &token_endpoint(&env)),
        &cb,
        &pending,
    )
    .await;
    let result = env
        .client
        .verify_id_token(
            token["id_token"].as_str().expect("id_token"),
            &pending.nonce,
            token["access_token"].as_str().expect("access_token"),
            now(),
        )
        .await;
    assert!(
        matches!(result, Err(OidcError::WrongAudience)),
        "{result:?}"
    );
}

fn token_endpoint(env: &TestEnv) -> String {
    format!("{}/token", env.provider.issuer)
}

/// A client assertion as the client makes it, for `aud`.
fn assertion(client_id: &str, aud: &str) -> String {
    rp_key().sign(&json!({
        "iss": client_id, "sub": client_id, "aud": aud,
        "iat": now(), "exp": now() + 60, "jti": format!("jti-{}", now_nanos()),
    }))
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}

/// The token request, by hand.
async fn token_response(
    env: &TestEnv,
    client_assertion: &str,
    cb: &Callback,
    pending: &PendingLogin,
) -> reqwest::Response {
    env.browser
        .post(token_endpoint(env))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", cb.get("code")),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pending.code_verifier),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", client_assertion),
        ])
        .send()
        .await
        .expect("POST /token")
}

async fn raw_token_request(
    env: &TestEnv,
    client_assertion: &str,
    cb: &Callback,
    pending: &PendingLogin,
) -> serde_json::Value {
    let response = token_response(env, client_assertion, cb, pending).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON")
}

async fn refusal(response: reqwest::Response) -> (StatusCode, serde_json::Value) {
    let status = response.status();
    let body = serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
    (status, body)
}

#[tokio::test]
async fn client_assertion_for_another_audience_refused() {
    let env = TestEnv::start().await;
    let (pending, cb) = login_as(&env, 0).await;
    // The issuer is not enough: SPID wants the token endpoint's URL.
    let wrong = assertion(CLIENT_ID, &env.provider.issuer);
    let (status, body) = refusal(token_response(&env, &wrong, &cb, &pending).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(
        body["error_description"],
        "aud della client_assertion non è il token endpoint"
    );
}

#[tokio::test]
async fn client_assertion_used_twice_refused() {
    let env = TestEnv::start().await;
    let (pending, cb) = login_as(&env, 0).await;
    let once = assertion(CLIENT_ID, &token_endpoint(&env));
    raw_token_request(&env, &once, &cb, &pending).await;
    let (pending, cb) = login_as(&env, 0).await;
    let (status, body) = refusal(token_response(&env, &once, &cb, &pending).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["error_description"],
        "client_assertion già usata (jti ripetuto)"
    );
}

#[tokio::test]
async fn client_secret_refused() {
    let env = TestEnv::start().await;
    let (pending, cb) = login_as(&env, 1).await;
    let response = env
        .browser
        .post(token_endpoint(&env))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", cb.get("code")),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pending.code_verifier),
            ("client_id", CLIENT_ID),
            ("client_secret", "segreto"),
        ])
        .send()
        .await
        .expect("POST /token");
    let (status, body) = refusal(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["error_description"],
        "solo private_key_jwt: niente client_secret"
    );
}

#[tokio::test]
async fn userinfo_needs_an_access_token_it_issued() {
    let env = TestEnv::start().await;
    let response = env
        .browser
        .get(format!("{}/userinfo", env.provider.issuer))
        .bearer_auth("inventato")
        .send()
        .await
        .expect("GET /userinfo");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("www-authenticate"));
}

#[tokio::test]
async fn rotated_key_fetched_once_and_accepted() {
    let env = TestEnv::start().await;
    assert_eq!(env.provider.jwks_requests(), 1);
    env.provider.rotate_signing_key();
    let (pending, cb) = login_as(&env, 0).await;
    let identity = env
        .client
        .finish(&pending, cb.get("code"), cb.get("state"), now())
        .await;
    assert!(identity.is_ok(), "{identity:?}");
    assert_eq!(env.provider.jwks_requests(), 2);
}

#[tokio::test]
async fn unknown_kid_refused_after_one_refetch() {
    let env = TestEnv::start().await;
    let before = env.provider.jwks_requests();
    // The key lookup fails before the signature is looked at, so none is needed.
    let token = "eyJhbGciOiJFUzI1NiIsImtpZCI6Im1haS12aXN0YSJ9.e30.AAAA";
    let result = env
        .client
        .verify_id_token(token, "nonce", "access", now())
        .await;
    assert!(
        matches!(&result, Err(OidcError::UnknownKey { kid: Some(kid) }) if kid == "mai-vista"),
        "{result:?}"
    );
    assert_eq!(env.provider.jwks_requests(), before + 1);
}

#[tokio::test]
async fn alg_none_token_refused_by_client() {
    let env = TestEnv::start().await;
    // {"alg":"none"} . {"sub":"x"} . (empty)
    let result = env
        .client
        .verify_id_token(
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
            "nonce",
            "access",
            now(),
        )
        .await;
    assert!(
        matches!(result, Err(OidcError::UnsupportedAlgorithm(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn discovery_refuses_issuer_spelled_differently() {
    let env = TestEnv::start().await;
    let localhost = env.provider.issuer.replace("127.0.0.1", "localhost");
    let result =
        OidcClient::discover(&localhost, relying_party(CLIENT_ID, rp_key(), REDIRECT)).await;
    assert!(
        matches!(result, Err(OidcError::IssuerMismatch { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn client_registered_after_start_can_log_in() {
    // The demo's web app binds its own ephemeral port after the provider is up, so its
    // redirect URI is known only then.
    let provider = DevProvider::start(
        "127.0.0.1:0".parse().expect("address"),
        vec![],
        identities(),
    )
    .await
    .expect("provider starts");
    let late_redirect = "http://127.0.0.1:54321/auth/callback";
    provider
        .register_client(registered("late", &[late_redirect]))
        .expect("valid client");
    let client = OidcClient::discover(
        &provider.issuer,
        relying_party("late", rp_key(), late_redirect),
    )
    .await
    .expect("discovery");
    let (url, pending) = client.begin(now());
    let cb = press(&browser(), &url, ("identity", "0")).await;
    let identity = client
        .finish(&pending, cb.get("code"), cb.get("state"), now())
        .await
        .expect("login succeeds");
    assert_eq!(identity.fiscal_code, MARIO_CF);
    provider.stop().await;
}

#[tokio::test]
async fn stopped_provider_is_unreachable() {
    let env = TestEnv::start().await;
    let issuer = env.provider.issuer.clone();
    env.provider.stop().await;
    let result = OidcClient::discover(&issuer, relying_party(CLIENT_ID, rp_key(), REDIRECT)).await;
    assert!(
        matches!(result, Err(OidcError::Transport { .. })),
        "{result:?}"
    );
}

/// A provider of these people registered with these public keys, and a client of it
/// holding `key`.
async fn env_with(
    jwks: serde_json::Value,
    key: RpKey,
    people: Vec<DevIdentity>,
) -> (RunningProvider, OidcClient) {
    let provider = DevProvider::start(
        "127.0.0.1:0".parse().expect("address"),
        vec![RegisteredClient {
            client_id: CLIENT_ID.into(),
            keys: ClientKeys::Jwks(jwks),
            redirect_uris: vec![REDIRECT.into()],
        }],
        people,
    )
    .await
    .expect("provider starts");
    let client = OidcClient::discover(&provider.issuer, relying_party(CLIENT_ID, &key, REDIRECT))
        .await
        .expect("discovery");
    (provider, client)
}

async fn finish_login(client: &OidcClient) -> Result<Identity, OidcError> {
    let (url, pending) = client.begin(now());
    let cb = press(&browser(), &url, ("identity", "0")).await;
    client
        .finish(&pending, cb.get("code"), cb.get("state"), now())
        .await
}

/// The RP publishes an encryption key, so UserInfo comes encrypted to it: a client that
/// has only the signing key cannot read it, and says which option is missing.
#[tokio::test]
async fn userinfo_is_encrypted_to_the_published_encryption_key() {
    let signing_only = RpKey::from_pem(&rp_key().to_pem()).expect("own PEM");
    let (_provider, client) = env_with(rp_key().public_jwks(), signing_only, identities()).await;
    let result = finish_login(&client).await;
    assert!(
        matches!(
            result,
            Err(OidcError::Userinfo(UserinfoFault::NoEncryptionKey))
        ),
        "{result:?}"
    );
    assert!(
        result
            .expect_err("refused")
            .to_string()
            .contains("--oidc-client-enc-key")
    );
    // With the encryption key read back from PEM, the same login goes through.
    let full = RpKey::from_pem(&rp_key().to_pem())
        .and_then(|k| k.with_encryption_pem(&rp_key().encryption_pem().expect("enc key")))
        .expect("keys");
    let (_provider, client) = env_with(rp_key().public_jwks(), full, identities()).await;
    let identity = finish_login(&client).await.expect("decrypted and verified");
    assert_eq!(identity.fiscal_code, MARIO_CF);
}

/// A provider that encrypts to a key that is not the RP's: refused, not misread.
#[tokio::test]
async fn userinfo_encrypted_to_another_key_refused() {
    let mut jwks = rp_key().public_jwks();
    jwks["keys"][1] = stranger_key().public_jwks()["keys"][1].clone();
    let (_provider, client) = env_with(jwks, rp_key().clone(), identities()).await;
    let result = finish_login(&client).await;
    assert!(
        matches!(
            result,
            Err(OidcError::Userinfo(UserinfoFault::Undecryptable))
        ),
        "{result:?}"
    );
}

/// Registered with its signing key only, the RP gets UserInfo signed and not encrypted,
/// and still reads it.
#[tokio::test]
async fn userinfo_signed_only_still_read() {
    let signing_only = RpKey::from_pem(&rp_key().to_pem()).expect("own PEM");
    let jwks = signing_only.public_jwks();
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1));
    let (_provider, client) = env_with(jwks, signing_only, identities()).await;
    let identity = finish_login(&client).await.expect("signed UserInfo read");
    assert_eq!(identity.fiscal_code, MARIO_CF);
}

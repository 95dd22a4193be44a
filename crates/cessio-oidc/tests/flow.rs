//! The login flow over real HTTP: the local provider on an ephemeral port, the client
//! discovering it, and a test standing in for the browser (it reads the page, posts the
//! form and reads the `Location` header instead of following it).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use cessio_oidc::{
    DevIdentity, DevProvider, Identity, OidcClient, OidcError, PendingLogin, RegisteredClient,
    RunningProvider,
};
use reqwest::{StatusCode, Url};

const CLIENT_ID: &str = "cessio-web";
const SECRET: &str = "segreto-di-prova";
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

fn registered(client_id: &str, redirect_uris: &[&str]) -> RegisteredClient {
    RegisteredClient {
        client_id: client_id.into(),
        client_secret: SECRET.into(),
        redirect_uris: redirect_uris.iter().map(|u| (*u).to_owned()).collect(),
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
        let client = OidcClient::discover(&provider.issuer, CLIENT_ID, SECRET, REDIRECT)
            .await
            .expect("discovery");
        TestEnv {
            provider,
            client,
            browser: browser(),
        }
    }

    async fn client_with(&self, secret: &str, redirect_uri: &str) -> OidcClient {
        OidcClient::discover(&self.provider.issuer, CLIENT_ID, secret, redirect_uri)
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
    let (url, pending) = env.client.begin();
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
    assert_eq!(identity.fiscal_code.as_deref(), Some(MARIO_CF));
    assert_eq!(identity.given_name.as_deref(), Some("Mario"));
    assert_eq!(identity.family_name.as_deref(), Some("Rossi"));
    assert_eq!(identity.name.as_deref(), Some("Mario Rossi"));
    assert!(!identity.subject.is_empty());
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
    let (url, _) = env.client.begin();
    let page = env.browser.get(&url).send().await.expect("GET /authorize");
    let headers = page.headers().clone();
    let html = page.text().await.expect("body");
    assert!(html.contains("<html lang=\"it\">"));
    assert!(html.contains("Provider di identità di prova (solo sviluppo e test)"));
    assert!(html.contains("Entra come Mario Rossi"));
    assert!(html.contains("Entra come Luigia Verdi"));
    assert!(html.contains(MARIO_CF));
    assert!(html.contains(">Annulla</button>"));
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
    let (url, pending) = env.client.begin();
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
    let (_, other) = env.client.begin();
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

#[tokio::test]
async fn wrong_client_secret_refused() {
    let env = TestEnv::start().await;
    let impostor = env.client_with("segreto-sbagliato", REDIRECT).await;
    let (url, pending) = impostor.begin();
    let cb = press(&env.browser, &url, ("identity", "0")).await;
    let result = impostor
        .finish(&pending, cb.get("code"), cb.get("state"), now())
        .await;
    let message = result.as_ref().map_err(ToString::to_string).err();
    assert_refused(result, 401, "invalid_client");
    assert!(!message.unwrap_or_default().contains("segreto"));
}

#[tokio::test]
async fn unregistered_redirect_uri_gets_error_page_not_redirect() {
    let env = TestEnv::start().await;
    let elsewhere = env.client_with(SECRET, "http://127.0.0.1:9/altrove").await;
    let (url, _) = elsewhere.begin();
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
    let other_redirect = env.client_with(SECRET, second).await;
    let result = other_redirect
        .finish(&pending, cb.get("code"), cb.get("state"), now())
        .await;
    assert_refused(result, 400, "invalid_grant");
}

#[tokio::test]
async fn expired_id_token_refused() {
    let env = TestEnv::start().await;
    let (pending, cb) = login_as(&env, 0).await;
    let an_hour_later = now() + 3600;
    let result = env
        .client
        .finish(&pending, cb.get("code"), cb.get("state"), an_hour_later)
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
    let (_, other) = env.client.begin();
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
    let other = OidcClient::discover(&env.provider.issuer, "altro-servizio", SECRET, REDIRECT)
        .await
        .expect("discovery");
    let (url, pending) = other.begin();
    let cb = press(&env.browser, &url, ("identity", "0")).await;
    let token = raw_token_request(&env, "altro-servizio", &cb, &pending).await;
    let id_token = token["id_token"].as_str().expect("id_token");
    let result = env
        .client
        .verify_id_token(id_token, &pending.nonce, now())
        .await;
    assert!(
        matches!(result, Err(OidcError::WrongAudience)),
        "{result:?}"
    );
}

/// The token request a client_secret_post client sends.
async fn raw_token_request(
    env: &TestEnv,
    client_id: &str,
    cb: &Callback,
    pending: &PendingLogin,
) -> serde_json::Value {
    let response = env
        .browser
        .post(format!("{}/token", env.provider.issuer))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", cb.get("code")),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pending.code_verifier),
            ("client_id", client_id),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .expect("POST /token");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON")
}

#[tokio::test]
async fn client_secret_post_accepted() {
    let env = TestEnv::start().await;
    let (pending, cb) = login_as(&env, 1).await;
    let token = raw_token_request(&env, CLIENT_ID, &cb, &pending).await;
    assert_eq!(token["token_type"], "Bearer");
    let identity = env
        .client
        .verify_id_token(
            token["id_token"].as_str().expect("id_token"),
            &pending.nonce,
            now(),
        )
        .await
        .expect("valid token");
    assert_eq!(identity.fiscal_code.as_deref(), Some("VRDLGU75C41F205X"));
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
    let result = env.client.verify_id_token(token, "nonce", now()).await;
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
        .verify_id_token("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "nonce", now())
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
    let result = OidcClient::discover(&localhost, CLIENT_ID, SECRET, REDIRECT).await;
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
    let client = OidcClient::discover(&provider.issuer, "late", SECRET, late_redirect)
        .await
        .expect("discovery");
    let (url, pending) = client.begin();
    let cb = press(&browser(), &url, ("identity", "0")).await;
    let identity = client
        .finish(&pending, cb.get("code"), cb.get("state"), now())
        .await
        .expect("login succeeds");
    assert_eq!(identity.fiscal_code.as_deref(), Some(MARIO_CF));
    provider.stop().await;
}

#[tokio::test]
async fn stopped_provider_is_unreachable() {
    let env = TestEnv::start().await;
    let issuer = env.provider.issuer.clone();
    env.provider.stop().await;
    let result = OidcClient::discover(&issuer, CLIENT_ID, SECRET, REDIRECT).await;
    assert!(
        matches!(result, Err(OidcError::Transport { .. })),
        "{result:?}"
    );
}

//! More than one server on one register, as behind a load balancer without sticky
//! sessions: each server has its own store (connections, writer, caches) and web state, as
//! two `cessio serve` processes would, and they share only the database. A session made on
//! one works on the other, a sign-out on one ends it on both, and cessions raced through
//! both leave a register that `verify` passes. On PostgreSQL (`CESSIO_TEST_DATABASE_URL`,
//! a schema of the test's own) and on one SQLite file; and a restart on the same file
//! keeps the session.
//!
//! A strong login started on one server returns to the other, and failed logins count
//! across both.

#![expect(clippy::unwrap_used, reason = "tests")]

mod support;

use std::sync::Arc;

use cessio_core::time::FixedClock;
use cessio_store::{Store, WriteConfig};
use cessio_store_postgres::PgStore;
use cessio_store_sqlite::SqliteStore;
use cessio_test_support::postgres_url;
use serde_json::json;
use support::{BANK, COMPANY, PIN, Reply, Server};

fn pg_schema() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("w_{}_{nanos}", std::process::id())
}

fn clock() -> FixedClock {
    FixedClock::at_rome(2024, 3, 1, 10, 0)
}

/// Two servers, each on its own store over the same database; the register seeded
/// through the first.
async fn two_servers(a: Arc<dyn Store>, b: Arc<dyn Store>) -> (Server, Server) {
    let app_a = Server::app(a, &clock());
    support::seed(&app_a).await;
    let app_b = Server::app(b, &clock());
    (
        Server::serve(app_a, clock(), |_| {}, Default::default()).await,
        Server::serve(app_b, clock(), |_| {}, Default::default()).await,
    )
}

fn text(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).to_string()
}

/// The value of the first hidden input with this name.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap() + marker.len();
    page[start..].split('"').next().unwrap().to_string()
}

async fn cedible_rate(s: &Server, cookie: &str) -> Vec<i64> {
    let r = s
        .get(&format!("/api/v1/parties/{COMPANY}/cedible"), cookie)
        .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["rata"].as_i64().unwrap())
        .collect()
}

async fn cede(s: &Server, cookie: &str, key: &str, rata: i64) -> Reply {
    let body = json!({ "lines": [{ "rata": rata, "cessionario_cf": BANK }], "disclose_name": true, "pin": PIN });
    s.call(
        "POST",
        &format!("/api/v1/parties/{COMPANY}/cessions"),
        Some(cookie),
        Some(key),
        Some(&body.to_string()),
    )
    .await
}

/// Sign in on A and act on B; sign out on B and A refuses the cookie; race cessions
/// through both and `verify` the register.
async fn one_register_two_servers(a: &Server, b: &Server) {
    let cookie = a.login("impresa").await;
    // The session is B's too: the API, a page, and the answer to the communication.
    let me = b.get("/api/v1/me", &cookie).await;
    assert_eq!(me.status, 200, "{}", text(&me));
    assert_eq!(me.json()["user"]["username"], "impresa");
    let page = b
        .get(&format!("/soggetti/{COMPANY}/accettazione"), &cookie)
        .await;
    assert_eq!(page.status, 200, "B shows A's session a page");
    let r = b
        .call(
            "POST",
            &format!("/api/v1/parties/{COMPANY}/incoming/answer"),
            Some(&cookie),
            Some("accept-1"),
            Some(&json!({ "accept": true, "pin": PIN }).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let rate = cedible_rate(b, &cookie).await;
    assert!(!rate.is_empty());
    // A cession with the PIN on B, under A's session.
    let first = rate[0];
    let r = cede(b, &cookie, "cede-first", first).await;
    assert_eq!(r.status, 201, "{}", text(&r));
    // The form token of A's page is the session's, so B accepts B's forms with it: sign
    // out on B, through the page.
    let home = a.get(&format!("/soggetti/{COMPANY}"), &cookie).await;
    assert_eq!(home.status, 200);
    let csrf = hidden(&text(&home), "csrf");
    let r = b
        .form("/esci", Some(&cookie), &format!("csrf={csrf}"))
        .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    let r = a.get("/api/v1/me", &cookie).await;
    assert_eq!(r.status, 401, "A refuses the cookie B signed out");
    let r = a.get(&format!("/soggetti/{COMPANY}"), &cookie).await;
    assert_eq!(r.status, 303);
    assert!(r.header("location").unwrap().starts_with("/accesso"));

    // Cessions raced through both servers: every other rata six times over, from a
    // session on each (and one signed in on B used on A). Each rata goes to one of them.
    let on_a = a.login("impresa").await;
    let on_b = b.login("impresa").await;
    let rest: Vec<i64> = rate[1..].to_vec();
    assert!(!rest.is_empty(), "rate left to race for");
    let servers = [a, b];
    let sessions = [&on_a, &on_b];
    let mut tries = Vec::new();
    for (i, rata) in rest.iter().enumerate() {
        for k in 0..6usize {
            let server = servers[(i + k) % 2];
            let cookie = sessions[k % 2].clone();
            let rata = *rata;
            let key = format!("race-{rata}-{k}");
            tries.push(async move { (rata, cede(server, &cookie, &key, rata).await) });
        }
    }
    let results = futures_util::future::join_all(tries).await;
    eprintln!(
        "{} cessions raced for {} rate through two servers",
        results.len(),
        rest.len()
    );
    for rata in &rest {
        let won: Vec<&Reply> = results
            .iter()
            .filter(|(r, _)| r == rata)
            .map(|(_, reply)| reply)
            .filter(|reply| reply.status == 201)
            .collect();
        assert_eq!(won.len(), 1, "rata {rata} ceded once");
    }
    for (rata, reply) in &results {
        assert!(
            reply.status == 201 || (400..500).contains(&reply.status),
            "rata {rata}: {} {}",
            reply.status,
            text(reply)
        );
    }
    for store in [a.app.store(), b.app.store()] {
        let report = store.verify().await.unwrap();
        assert!(report.ok(), "{:?}", report.problems);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_servers_share_sessions_and_the_register() {
    let Some(url) = postgres_url() else {
        return;
    };
    let schema = pg_schema();
    let a = PgStore::connect(&url, Some(&schema), WriteConfig::default())
        .await
        .unwrap();
    let b = PgStore::connect(&url, Some(&schema), WriteConfig::default())
        .await
        .unwrap();
    let (a, b) = two_servers(Arc::new(a), Arc::new(b)).await;
    one_register_two_servers(&a, &b).await;
}

/// SQLite serialises writers across processes on one file (`BEGIN IMMEDIATE`, the ledger
/// head read inside the transaction), so two servers on one file on one machine work too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_two_servers_on_one_file_share_sessions_and_the_register() {
    let path = support::temp_db();
    let a = SqliteStore::open(&path, WriteConfig::default()).unwrap();
    let b = SqliteStore::open(&path, WriteConfig::default()).unwrap();
    let (a, b) = two_servers(Arc::new(a), Arc::new(b)).await;
    one_register_two_servers(&a, &b).await;
}

/// A server on the file that stops when told, and lets go of its store once stopped.
async fn stoppable(
    path: &std::path::Path,
    seeded: bool,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(path, WriteConfig::default()).unwrap());
    let app = Server::app(store, &clock());
    if !seeded {
        support::seed(&app).await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = cessio_web::router(cessio_web::WebState::new(app));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        cessio_web::serve(listener, router, Default::default(), async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (addr, stop, task)
}

/// A restart signs no one out: the session outlives the server (and the store) that made
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_session() {
    let path = support::temp_db();
    let (addr, stop, task) = stoppable(&path, false).await;
    let client = Server {
        addr,
        app: Server::app(
            Arc::new(SqliteStore::open(&path, WriteConfig::default()).unwrap()),
            &clock(),
        ),
        clock: clock(),
    };
    let cookie = client.login("impresa").await;
    assert_eq!(client.get("/api/v1/me", &cookie).await.status, 200);
    stop.send(()).unwrap();
    task.await.unwrap();
    let (addr, _stop, _task) = stoppable(&path, true).await;
    let client = Server { addr, ..client };
    let r = client.get("/api/v1/me", &cookie).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let r = client.get(&format!("/soggetti/{COMPANY}"), &cookie).await;
    assert_eq!(r.status, 200);
}

/// A stranger's failed logins count on every server: the throttle's windows are shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_login_throttle_counts_across_servers() {
    let Some(url) = postgres_url() else {
        return;
    };
    let schema = pg_schema();
    let a = PgStore::connect(&url, Some(&schema), WriteConfig::default())
        .await
        .unwrap();
    let b = PgStore::connect(&url, Some(&schema), WriteConfig::default())
        .await
        .unwrap();
    let (a, b) = two_servers(Arc::new(a), Arc::new(b)).await;
    async fn attempt(s: &Server) -> Reply {
        let body = json!({ "username": "banca", "password": "sbagliata" }).to_string();
        s.call("POST", "/api/v1/session", None, None, Some(&body))
            .await
    }
    for i in 0..10 {
        let server = if i % 2 == 0 { &a } else { &b };
        assert_eq!(attempt(server).await.status, 401, "attempt {i}");
    }
    assert_eq!(attempt(&a).await.status, 429);
    assert_eq!(attempt(&b).await.status, 429);
}

/// The cookie a response sets under `name`, as a `Cookie:` pair.
fn set_cookie(r: &Reply, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.split(';').next().unwrap_or("").to_string())
        .find(|c| c.starts_with(&format!("{name}=")) && c.len() > name.len() + 1)
}

const STRONG_REDIRECT: &str = "http://127.0.0.1:9/accesso/spid/ritorno";

/// The local identity provider with one person, and a strong login for a server, as the
/// SPID/CIE profile has it: the RP's key signs, the provider knows its public half.
async fn strong_setup(fiscal_code: &str) -> (cessio_oidc::RunningProvider, cessio_oidc::RpKey) {
    let key = cessio_oidc::RpKey::generate();
    let provider = cessio_oidc::DevProvider::start(
        "127.0.0.1:0".parse().unwrap(),
        vec![cessio_oidc::RegisteredClient {
            client_id: "cessio".into(),
            keys: cessio_oidc::ClientKeys::Jwks(key.public_jwks()),
            redirect_uris: vec![STRONG_REDIRECT.into()],
        }],
        vec![cessio_oidc::DevIdentity {
            fiscal_code: fiscal_code.into(),
            given_name: "Mario".into(),
            family_name: "Rossi".into(),
        }],
    )
    .await
    .unwrap();
    (provider, key)
}

async fn strong_login(
    provider: &cessio_oidc::RunningProvider,
    key: &cessio_oidc::RpKey,
) -> Arc<cessio_web::ui::StrongLogin> {
    Arc::new(cessio_web::ui::StrongLogin {
        client: cessio_oidc::OidcClient::discover(
            &provider.issuer,
            cessio_oidc::RelyingParty {
                client_id: "cessio".into(),
                key: key.clone(),
                redirect_uri: STRONG_REDIRECT.into(),
                acr: cessio_oidc::AcrLevel::SpidL2,
            },
        )
        .await
        .unwrap(),
        label: "Entra con SPID o CIE".into(),
    })
}

/// At the provider: the person picks the identity; returns the path the provider sends
/// the browser back to.
async fn pick_identity(authorize: &str) -> String {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = browser.get(authorize).send().await.unwrap();
    let page_url = page.url().clone();
    let html = page.text().await.unwrap();
    let mut fields: Vec<(String, String)> = html
        .split("<input type=\"hidden\" ")
        .skip(1)
        .map(|rest| {
            let attr = |name: &str| {
                let start = rest.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                let len = rest[start..].find('"').unwrap();
                rest[start..start + len]
                    .replace("&quot;", "\"")
                    .replace("&amp;", "&")
            };
            (attr("name"), attr("value"))
        })
        .collect();
    fields.push(("identity".into(), "0".into()));
    let answer = browser
        .post(page_url.join("/authorize").unwrap())
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    let back = answer.headers()["location"].to_str().unwrap().to_string();
    back.strip_prefix("http://127.0.0.1:9").unwrap().to_string()
}

/// Strong login through the local identity provider, started on one server and returned
/// to the other: state, nonce and PKCE verifier are in the store, taken once.
async fn strong_login_across_servers(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let (provider, key) = strong_setup(support::FAMILY).await;
    let (login_a, login_b) = (
        strong_login(&provider, &key).await,
        strong_login(&provider, &key).await,
    );
    let app_a = Server::app(a, &clock());
    support::seed(&app_a).await;
    let a = Server::serve(
        app_a,
        clock(),
        |s| s.oidc = Some(login_a),
        Default::default(),
    )
    .await;
    let b = Server::serve(
        Server::app(b, &clock()),
        clock(),
        |s| s.oidc = Some(login_b),
        Default::default(),
    )
    .await;
    // Both servers publish the key the provider checks the RP's signatures with.
    let jwks = b.call("GET", "/oidc/jwks.json", None, None, None).await;
    assert_eq!(jwks.status, 200);
    assert_eq!(
        jwks.header("content-type"),
        Some("application/jwk-set+json")
    );
    assert_eq!(jwks.json()["keys"][0]["kid"], key.kid());
    // On A: off to the provider, with the login bound to this browser by a cookie.
    let r = a.call("GET", "/accesso/spid", None, None, None).await;
    assert_eq!(r.status, 303, "{}", text(&r));
    let flow = set_cookie(&r, "cessio_spid").unwrap();
    let authorize = r.header("location").unwrap().to_string();
    assert!(authorize.contains("&request="), "{authorize}");
    let back = pick_identity(&authorize).await;
    // Back on B: the login A started is found, once, and signs the person in.
    let r = b.get(&back, &flow).await;
    assert_eq!(r.status, 303, "{}", text(&r));
    let session = set_cookie(&r, "cessio_session").unwrap();
    let me = a.get("/api/v1/me", &session).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["user"]["username"], "famiglia");
    assert_eq!(me.json()["user"]["method"], "strong");
    let again = a.get(&back, &flow).await;
    assert!(
        set_cookie(&again, "cessio_session").is_none(),
        "a login in progress is taken once"
    );
    assert!(text(&again).contains("non è partita da questo browser"));
}

/// The provider vouches for a code R-CF refuses: nobody is signed in, and the page says
/// which check failed.
async fn strong_login_with_a_malformed_fiscal_code(store: Arc<dyn Store>) {
    // FAMILY with its check character changed.
    let mut malformed = support::FAMILY.to_string();
    let last = malformed.pop().unwrap();
    malformed.push(if last == 'A' { 'B' } else { 'A' });
    let (provider, key) = strong_setup(&malformed).await;
    let login = strong_login(&provider, &key).await;
    let app = Server::app(store, &clock());
    support::seed(&app).await;
    let server = Server::serve(app, clock(), |s| s.oidc = Some(login), Default::default()).await;
    let r = server.call("GET", "/accesso/spid", None, None, None).await;
    let flow = set_cookie(&r, "cessio_spid").unwrap();
    let back = pick_identity(r.header("location").unwrap()).await;
    let r = server.get(&back, &flow).await;
    assert!(set_cookie(&r, "cessio_session").is_none());
    let page = text(&r);
    assert!(
        page.contains("il codice fiscale comunicato dal gestore non è valido"),
        "{page}"
    );
    assert!(page.contains("carattere di controllo"), "{page}");
    assert!(
        page.contains("href=\"/regole#r-cf\""),
        "the refusal names R-CF"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_a_strong_login_with_a_malformed_fiscal_code_signs_nobody_in() {
    let path = support::temp_db();
    let store = SqliteStore::open(&path, WriteConfig::default()).unwrap();
    strong_login_with_a_malformed_fiscal_code(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_strong_login_with_a_malformed_fiscal_code_signs_nobody_in() {
    let Some(url) = postgres_url() else {
        return;
    };
    let store = PgStore::connect(&url, Some(&pg_schema()), WriteConfig::default())
        .await
        .unwrap();
    strong_login_with_a_malformed_fiscal_code(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_a_strong_login_started_on_one_server_returns_to_the_other() {
    let path = support::temp_db();
    let a = SqliteStore::open(&path, WriteConfig::default()).unwrap();
    let b = SqliteStore::open(&path, WriteConfig::default()).unwrap();
    strong_login_across_servers(Arc::new(a), Arc::new(b)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_strong_login_started_on_one_server_returns_to_the_other() {
    let Some(url) = postgres_url() else {
        return;
    };
    let schema = pg_schema();
    let a = PgStore::connect(&url, Some(&schema), WriteConfig::default())
        .await
        .unwrap();
    let b = PgStore::connect(&url, Some(&schema), WriteConfig::default())
        .await
        .unwrap();
    strong_login_across_servers(Arc::new(a), Arc::new(b)).await;
}

/// Not a test of correctness: what the throttle's counting costs on each backend, per
/// counted attempt (two upserts) and per forgiven one.
/// `CESSIO_TEST_DATABASE_URL=… cargo test -p cessio-web --test processes login_throttle_figures -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run by hand"]
async fn login_throttle_figures() {
    let mut stores: Vec<(&str, Arc<dyn Store>)> = vec![(
        "sqlite",
        Arc::new(SqliteStore::open(&support::temp_db(), WriteConfig::default()).unwrap()),
    )];
    if let Some(url) = postgres_url() {
        stores.push((
            "postgres",
            Arc::new(
                PgStore::connect(&url, Some(&pg_schema()), WriteConfig::default())
                    .await
                    .unwrap(),
            ),
        ));
    }
    for (name, store) in stores {
        let throttle = cessio_web::LoginThrottle::new(store, cessio_web::LoginLimits::default());
        let n = 1_000u32;
        let started = std::time::Instant::now();
        for i in 0..n {
            let [_, _, c, d] = i.to_be_bytes();
            let ip = std::net::IpAddr::from([10, 1, c, d]);
            assert!(matches!(throttle.allow(ip, "u").await, Ok(Ok(()))));
        }
        let counted = started.elapsed();
        let started = std::time::Instant::now();
        for i in 0..n {
            let [_, _, c, d] = i.to_be_bytes();
            throttle
                .forgive(std::net::IpAddr::from([10, 1, c, d]), "u")
                .await
                .unwrap();
        }
        let forgiven = started.elapsed();
        println!(
            "{name}: {n} attempts counted in {:.0} ms ({:.2} ms each), forgiven in {:.0} ms ({:.2} ms each)",
            counted.as_secs_f64() * 1e3,
            counted.as_secs_f64() * 1e3 / f64::from(n),
            forgiven.as_secs_f64() * 1e3,
            forgiven.as_secs_f64() * 1e3 / f64::from(n),
        );
    }
}

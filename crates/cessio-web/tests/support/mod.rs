//! The test server shared by the API and page tests: the app on SQLite with a fixed
//! clock, a few parties and users, served over real HTTP on an ephemeral port.

#![allow(dead_code, reason = "each test file uses part of the harness")]

use std::sync::Arc;

use cessio_app::{App, OptionInput};
use cessio_core::catalogue::{Catalogue, Origin};
use cessio_core::money::Cents;
use cessio_core::time::FixedClock;
use cessio_store::{Credit, PartyKind, Role, WriteConfig};
use cessio_store_sqlite::SqliteStore;
pub use cessio_test_support::http::{self, Reply, Request};
use serde_json::json;

pub const PASSWORD: &str = "password-di-prova";
pub const PIN: &str = "135790";
pub const FAMILY: &str = "RSSMRA45C12F205C";
pub const COMPANY: &str = "00743110157";
pub const BANK: &str = "03189950961";
pub const OTHER: &str = "00567410014";

pub struct Server {
    pub addr: std::net::SocketAddr,
    pub app: App,
    /// The app's clock: tests move it to let waiting periods pass.
    pub clock: FixedClock,
}

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Server {
    pub async fn start() -> Server {
        Self::start_with(|_| {}).await
    }

    /// Starts the server after `configure` adjusted the web state (cookies, timeouts).
    pub async fn start_with(configure: impl FnOnce(&mut cessio_web::WebState)) -> Server {
        Self::start_limited(configure, cessio_web::ConnectionLimits::default()).await
    }

    /// Starts the server with its connection limits set too.
    pub async fn start_limited(
        configure: impl FnOnce(&mut cessio_web::WebState),
        limits: cessio_web::ConnectionLimits,
    ) -> Server {
        let store = Arc::new(SqliteStore::open(&temp_db(), WriteConfig::default()).unwrap());
        let clock = FixedClock::at_rome(2024, 3, 1, 10, 0);
        let app = Self::app(store, &clock);
        seed(&app).await;
        Self::serve(app, clock, configure, limits).await
    }

    /// The app on a store, with the tests' clock and the built-in catalogue.
    pub fn app(store: Arc<dyn cessio_store::Store>, clock: &FixedClock) -> App {
        App::new(
            store,
            Arc::new(clock.clone()),
            Arc::new(Catalogue::builtin().unwrap()),
        )
    }

    /// Serves an app over real HTTP on an ephemeral port.
    pub async fn serve(
        app: App,
        clock: FixedClock,
        configure: impl FnOnce(&mut cessio_web::WebState),
        limits: cessio_web::ConnectionLimits,
    ) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut state = cessio_web::WebState::new(app.clone());
        configure(&mut state);
        let router = cessio_web::router(state);
        tokio::spawn(cessio_web::serve(
            listener,
            router,
            limits,
            std::future::pending(),
        ));
        Server { addr, app, clock }
    }

    /// Sends bytes as they are: for requests no well-behaved client would send.
    pub async fn raw(&self, request: String) -> Reply {
        let reply = http::exchange(self.addr, request.as_bytes())
            .await
            .unwrap_or_else(|| panic!("no complete answer from {}", self.addr));
        assert_catalogued(&reply);
        reply
    }

    pub async fn send(&self, request: Request) -> Reply {
        let reply = request
            .send(self.addr)
            .await
            .unwrap_or_else(|| panic!("no complete answer from {}", self.addr));
        assert_catalogued(&reply);
        reply
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        key: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        let mut request = Request::new(method, path)
            .header_if("Cookie", auth)
            .header_if("Idempotency-Key", key);
        if let Some(b) = body {
            request = request.json(b);
        }
        self.send(request).await
    }

    /// A form post, as a browser sends it.
    /// A GET of the API as a signed-in user.
    pub async fn get(&self, path: &str, cookie: &str) -> Reply {
        self.call("GET", path, Some(cookie), None, None).await
    }

    pub async fn form(&self, path: &str, cookie: Option<&str>, body: &str) -> Reply {
        self.send(Request::post(path).header_if("Cookie", cookie).form(body))
            .await
    }

    pub async fn page(&self, path: &str, cookie: Option<&str>) -> Reply {
        self.call("GET", path, cookie, None, None).await
    }

    /// The page of the bulk job a form redirected to (`303`), once the job has ended: the
    /// page reloads itself (`Refresh`) while it runs.
    pub async fn job_page(&self, submitted: &Reply, cookie: &str) -> Reply {
        assert_eq!(submitted.status, 303, "{}", submitted.text());
        let at = submitted.header("location").unwrap().to_string();
        assert!(at.contains("/lavori/"), "{at}");
        for _ in 0..400 {
            let page = self.page(&at, Some(cookie)).await;
            if page.status != 200 || page.header("refresh").is_none() {
                return page;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the job at {at} did not end");
    }

    /// A bulk job over the API, once it has ended.
    pub async fn job_done(&self, id: i64, cookie: &str) -> serde_json::Value {
        for _ in 0..400 {
            let job = self.get(&format!("/api/v1/jobs/{id}"), cookie).await;
            assert_eq!(job.status, 200, "{}", job.text());
            let job = job.json();
            if job["state"] == "done" || job["state"] == "failed" {
                return job;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("job {id} did not end");
    }

    pub async fn login(&self, user: &str) -> String {
        let r = self
            .call(
                "POST",
                "/api/v1/session",
                None,
                None,
                Some(&json!({ "username": user, "password": PASSWORD }).to_string()),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let cookie = r.header("set-cookie").unwrap();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        cookie.split(';').next().unwrap().to_string()
    }
}

/// A fresh SQLite file for one test.
pub fn temp_db() -> std::path::PathBuf {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("cessio-web-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("api-{n}.db"));
    let _ = std::fs::remove_file(&path);
    path
}

/// The operator, four parties with a user each, a studio delegated by the company, and a
/// Superbonus communication to the company awaiting its answer.
pub async fn seed(app: &App) {
    app.bootstrap_operator("operatore", "Operatore", PASSWORD, PIN)
        .await
        .unwrap();
    let op = app.login("operatore", PASSWORD).await.unwrap();
    for (i, (cf, name, kind)) in [
        (FAMILY, "Mario Rossi", PartyKind::Person),
        (COMPANY, "=HYPERLINK(\"http://x\")", PartyKind::Company),
        (BANK, "Banca", PartyKind::Bank),
        (OTHER, "Altro", PartyKind::Company),
    ]
    .into_iter()
    .enumerate()
    {
        app.register_party(&op, &format!("p{i}"), cf, name, kind)
            .await
            .unwrap();
    }
    for (user, cf) in [
        ("famiglia", FAMILY),
        ("impresa", COMPANY),
        ("banca", BANK),
        ("altro", OTHER),
    ] {
        app.create_user(&op, user, user, PASSWORD, PIN, Some(cf), Role::User)
            .await
            .unwrap();
    }
    company_intermediary(app, "studio", "Studio").await;
    // A Superbonus communication (sent before R-OPT-STOP) accepted by the company.
    superbonus_to(app, "c1", COMPANY, 4_000_000).await;
}

/// A user of the studio (`OTHER`) holding a delegation for the company.
pub async fn company_intermediary(app: &App, username: &str, name: &str) {
    let op = app.login("operatore", PASSWORD).await.unwrap();
    app.create_user(&op, username, name, PASSWORD, PIN, Some(OTHER), Role::User)
        .await
        .unwrap();
    app.delegate(&op, username, COMPANY).await.unwrap();
}

/// A Superbonus 2022 communication from the family to `holder_cf` (sent before R-OPT-STOP,
/// four rate, awaiting the holder's answer), registered by the operator under `key`.
pub async fn superbonus_to(app: &App, key: &str, holder_cf: &str, cents: i64) -> Credit {
    let op = app.login("operatore", PASSWORD).await.unwrap();
    app.communicate_option(
        &op,
        key,
        None,
        &OptionInput {
            beneficiary_cf: FAMILY.into(),
            type_key: "superbonus".into(),
            expense_year: 2022,
            origin: Origin::Sconto,
            holder_cf: holder_cf.into(),
            total: Cents::new(cents),
            communicated_on: Some(chrono::NaiveDate::from_ymd_opt(2023, 2, 1).unwrap()),
            exception: None,
        },
    )
    .await
    .unwrap()
}

/// Checks a response body against a schema of the OpenAPI document (`name` under
/// `components/schemas`): types, required and declared properties, items, enums and
/// `oneOf`, `anyOf` and `const`. A key the schema does not declare is a difference too: the document must say
/// everything a response holds. Panics naming where the body and the document part.
pub fn assert_conforms(name: &str, body: &serde_json::Value) {
    let doc = cessio_web::openapi::build();
    let schema = serde_json::json!({ "$ref": format!("#/components/schemas/{name}") });
    if let Err(e) = conforms(&doc, &schema, body, name) {
        panic!("the response does not match {name}: {e}\n{body:#}");
    }
}

/// `schema` with the properties and required names of `more` added.
fn with_properties(schema: &serde_json::Value, more: &serde_json::Value) -> serde_json::Value {
    let mut merged = schema.clone();
    for key in ["properties", "required"] {
        match (merged.get_mut(key), more.get(key)) {
            (Some(serde_json::Value::Object(m)), Some(serde_json::Value::Object(add))) => {
                m.extend(add.clone());
            }
            (Some(serde_json::Value::Array(m)), Some(serde_json::Value::Array(add))) => {
                m.extend(add.iter().cloned());
            }
            (None, Some(add)) => merged[key] = add.clone(),
            _ => {}
        }
    }
    merged
}

fn conforms(
    doc: &serde_json::Value,
    schema: &serde_json::Value,
    v: &serde_json::Value,
    at: &str,
) -> Result<(), String> {
    use serde_json::Value;
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/components/schemas/");
        let target = &doc["components"]["schemas"][name];
        let mut siblings = schema.clone();
        siblings.as_object_mut().map(|m| m.remove("$ref"));
        if !siblings.get("properties").is_some_and(Value::is_object) {
            return conforms(doc, target, v, at);
        }
        // Beside a `$ref`, more properties apply too (a tagged enum's variant that holds
        // another enum): each alternative of the target gets them.
        let effective = match target.get("oneOf").and_then(Value::as_array) {
            Some(options) => serde_json::json!({
                "oneOf": options.iter().map(|o| with_properties(o, &siblings)).collect::<Vec<_>>()
            }),
            None => with_properties(target, &siblings),
        };
        return conforms(doc, &effective, v, at);
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = options
            .iter()
            .filter(|o| conforms(doc, o, v, at).is_ok())
            .count();
        return if matching == 1 {
            Ok(())
        } else {
            Err(format!("{at}: {matching} of oneOf match {v}"))
        };
    }
    if let Some(options) = schema.get("anyOf").and_then(Value::as_array) {
        return if options.iter().any(|o| conforms(doc, o, v, at).is_ok()) {
            Ok(())
        } else {
            Err(format!("{at}: none of anyOf matches {v}"))
        };
    }
    if let Some(only) = schema.get("const")
        && only != v
    {
        return Err(format!("{at}: {v} is not {only}"));
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let type_ok = types.is_empty()
        || types.contains(&kind)
        || (kind == "integer" && types.contains(&"number"));
    if !type_ok {
        return Err(format!("{at}: {kind} where the document says {types:?}"));
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        return Err(format!("{at}: {v} is not one of {allowed:?}"));
    }
    match v {
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for req in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !m.contains_key(req) {
                    return Err(format!("{at}: required {req} missing"));
                }
            }
            for (k, child) in m {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => conforms(doc, s, child, &format!("{at}.{k}"))?,
                    None if schema
                        .get("additionalProperties")
                        .is_some_and(|a| a != &Value::Bool(false)) => {}
                    None => return Err(format!("{at}: {k} is not in the document")),
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, child) in items.iter().enumerate() {
                    conforms(doc, s, child, &format!("{at}[{i}]"))?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Every problem a test receives carries a catalogued code, with one of its statuses: what
/// the OpenAPI document promises, checked on real answers.
pub fn assert_catalogued(reply: &Reply) {
    if reply.header("content-type") != Some("application/problem+json") {
        return;
    }
    let problem: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let code = problem["code"].as_str().unwrap();
    let entry = cessio_web::codes::CODES
        .iter()
        .find(|c| c.code == code)
        .unwrap_or_else(|| panic!("{code} is not in cessio_web::codes::CODES: {problem}"));
    let statuses = cessio_web::codes::statuses(entry);
    assert!(
        statuses.contains(&reply.status),
        "{code} sent with {}, catalogued with {statuses:?}",
        reply.status
    );
    assert_eq!(problem["status"], reply.status, "{problem}");
    if let Some(rule) = entry.rule {
        assert_eq!(problem["rule"], rule, "{problem}");
    }
}

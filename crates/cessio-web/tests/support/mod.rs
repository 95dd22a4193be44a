//! The test server shared by the API and page tests: the app on SQLite with a fixed
//! clock, a few parties and users, served over real HTTP on an ephemeral port.

#![allow(dead_code, reason = "each test file uses part of the harness")]

use std::sync::Arc;

use cessio_app::{App, OptionInput};
use cessio_core::catalogue::{Catalogue, Origin};
use cessio_core::money::Cents;
use cessio_core::time::FixedClock;
use cessio_store::{PartyKind, Role, WriteConfig};
use cessio_store_sqlite::SqliteStore;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
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
    pub async fn raw(&self, request: String) -> Reply {
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        Reply::parse(&buf)
    }
}

impl Reply {
    /// One HTTP/1.1 response, status line to body (de-chunked).
    pub fn parse(buf: &[u8]) -> Reply {
        let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&buf[..split]).to_string();
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut body = buf[split + 4..].to_vec();
        let chunked = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
        if chunked {
            body = dechunk(&body);
        }
        Reply {
            status,
            headers,
            body,
        }
    }
}

impl Server {
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        key: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        if let Some(cookie) = auth {
            req.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        if let Some(k) = key {
            req.push_str(&format!("Idempotency-Key: {k}\r\n"));
        }
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            ));
        } else {
            req.push_str("\r\n");
        }
        self.raw(req).await
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
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let cookie = r.header("set-cookie").unwrap();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        cookie.split(';').next().unwrap().to_string()
    }
}

pub fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size_text = std::str::from_utf8(&body[..end]).unwrap().trim();
        let size = usize::from_str_radix(size_text, 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 2 + size + 2..];
    }
    out
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
    app.create_user(
        &op,
        "studio",
        "Studio",
        PASSWORD,
        PIN,
        Some(OTHER),
        Role::User,
    )
    .await
    .unwrap();
    app.delegate(&op, "studio", COMPANY).await.unwrap();
    // A Superbonus communication (sent before R-OPT-STOP) accepted by the company.
    app.communicate_option(
        &op,
        "c1",
        None,
        &OptionInput {
            beneficiary_cf: FAMILY.into(),
            type_key: "superbonus".into(),
            expense_year: 2022,
            origin: Origin::Sconto,
            holder_cf: COMPANY.into(),
            total: Cents::new(4_000_000),
            communicated_on: Some(chrono::NaiveDate::from_ymd_opt(2023, 2, 1).unwrap()),
            exception: None,
        },
    )
    .await
    .unwrap();
}

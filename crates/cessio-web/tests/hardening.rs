//! What a hostile client tried against the server, each as a test: open redirects and
//! unchecked header values, login floods and lock-outs, slow headers, caching of personal
//! data, bare framework errors and timeout messages that promise too much.

#![expect(clippy::unwrap_used, reason = "tests")]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{COMPANY, PASSWORD, Reply, Request, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn login_json(user: &str, password: &str, forwarded_for: &str) -> Request {
    Request::post("/api/v1/session")
        .header("X-Forwarded-For", forwarded_for)
        .json(&json!({ "username": user, "password": password }).to_string())
}

/// The login page's form token and the cookie that binds it.
async fn login_form(server: &Server, dopo: &str) -> (String, String) {
    let r = server
        .send(Request::get(&format!("/accesso?dopo={dopo}")))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let cookie = r
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .unwrap_or_default()
        .to_string();
    let html = String::from_utf8_lossy(&r.body).to_string();
    let token = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap_or_default()
        .to_string();
    (cookie, token)
}

const HOSTILE_TARGETS: [&str; 9] = [
    "/%09/evil.example/",
    "/%0A/evil.example/",
    "/%0D%0ALocation:%20http://evil.example/",
    "/%00",
    "/%7F",
    "/%0A",
    "//evil.example/",
    "/%5Cevil.example/",
    "https://evil.example/",
];

#[tokio::test]
async fn a_login_target_with_control_characters_or_another_origin_goes_home() {
    let server = Server::start().await;
    for target in HOSTILE_TARGETS {
        // The page: never a server error, and the form carries "/" onward.
        let r = server
            .send(Request::get(&format!("/accesso?dopo={target}")))
            .await;
        assert_eq!(r.status, 200, "GET /accesso?dopo={target}");
        let html = String::from_utf8_lossy(&r.body);
        assert!(
            html.contains("name=\"dopo\" value=\"/\""),
            "{target}: the form keeps a hostile target"
        );
        // The form: signed in, then sent to "/" and nowhere else.
        let (cookie, token) = login_form(&server, "/").await;
        let body = format!("csrf={token}&username=famiglia&password={PASSWORD}&dopo={target}");
        let r = server.form("/accesso", Some(&cookie), &body).await;
        assert_eq!(r.status, 303, "POST /accesso dopo={target}");
        assert_eq!(
            r.header("location"),
            Some("/"),
            "POST /accesso dopo={target}"
        );
    }
    // Signed in, the page redirects at once: to "/" as well.
    let session = server.login("famiglia").await;
    for target in HOSTILE_TARGETS {
        let r = server
            .page(&format!("/accesso?dopo={target}"), Some(&session))
            .await;
        assert_eq!(r.status, 303, "signed in, GET /accesso?dopo={target}");
        assert_eq!(r.header("location"), Some("/"), "signed in, dopo={target}");
    }
    // A path of this site still works.
    let r = server
        .page("/accesso?dopo=%2Fsoggetti%3Fq%3D1", Some(&session))
        .await;
    assert_eq!(r.header("location"), Some("/soggetti?q=1"));
}

/// Clients told apart by a trusted proxy's X-Forwarded-For, as behind a load balancer.
async fn behind_proxy() -> Server {
    Server::start_with(|s| {
        s.trusted_proxies = vec![
            "127.0.0.1"
                .parse()
                .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1])),
        ]
    })
    .await
}

#[tokio::test]
async fn login_flood_from_one_client_is_throttled_whatever_the_usernames() {
    let server = behind_proxy().await;
    let mut first_refused = None;
    for i in 0..60 {
        let r = server
            .send(login_json(&format!("nobody{i}"), "x", "203.0.113.7"))
            .await;
        if r.status == 429 {
            assert_eq!(r.json()["code"], "too_many_attempts");
            let wait: u64 = r
                .header("retry-after")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            assert!((1..=60).contains(&wait), "Retry-After {wait}");
            first_refused.get_or_insert(i);
        } else {
            assert_eq!(r.status, 401, "attempt {i}");
        }
    }
    assert_eq!(
        first_refused,
        Some(30),
        "the 31st attempt of one client is refused"
    );
    // Another client is not affected.
    let r = server
        .send(login_json("banca", PASSWORD, "198.51.100.20"))
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn a_stranger_guessing_a_password_cannot_lock_the_owner_out() {
    let server = behind_proxy().await;
    for _ in 0..15 {
        let _ = server
            .send(login_json("banca", "wrong", "203.0.113.7"))
            .await;
    }
    let r = server
        .send(login_json("banca", PASSWORD, "203.0.113.7"))
        .await;
    assert_eq!(r.status, 429, "the guesser is throttled on that username");
    let r = server
        .send(login_json("banca", PASSWORD, "198.51.100.20"))
        .await;
    assert_eq!(r.status, 200, "the owner, from elsewhere, signs in");
    // The page form shares the same throttle and says how long to wait.
    let (cookie, token) = login_form(&server, "/").await;
    let body = format!("csrf={token}&username=banca&password={PASSWORD}&dopo=/");
    let r = server
        .send(
            Request::post("/accesso")
                .header("X-Forwarded-For", "203.0.113.7")
                .header("Cookie", &cookie)
                .form(&body),
        )
        .await;
    assert_eq!(r.status, 429);
    assert!(String::from_utf8_lossy(&r.body).contains("Troppi tentativi di accesso"));
}

#[tokio::test]
async fn a_forwarded_address_from_an_untrusted_peer_is_ignored() {
    // Without a trusted proxy, X-Forwarded-For cannot buy a client fresh windows.
    let server = Server::start().await;
    let refused = {
        let mut refused = 0;
        for i in 0..40 {
            let r = server
                .send(login_json(
                    &format!("u{i}"),
                    "x",
                    &format!("198.51.100.{i}"),
                ))
                .await;
            refused += usize::from(r.status == 429);
        }
        refused
    };
    assert_eq!(refused, 10);
}

/// Half-megabyte usernames are answered like any failed login. That the throttle keeps
/// them as fixed-size digests in bounded rows is `throttle::tests`'
/// `rows_stay_bounded_under_many_keys`: a response cannot show it.
#[tokio::test]
async fn huge_usernames_are_answered_like_any_failed_login() {
    let server = behind_proxy().await;
    let huge = "u".repeat(512 * 1024);
    for i in 0..20 {
        let r = server
            .send(login_json(&huge, "x", &format!("198.51.100.{i}")))
            .await;
        assert_eq!(r.status, 401);
    }
    let r = server.page("/healthz", None).await;
    assert_eq!(r.status, 200);
}

async fn healthz_ms(addr: std::net::SocketAddr) -> f64 {
    let started = Instant::now();
    let r = Request::get("/healthz").send(addr).await;
    assert_eq!(r.map(|r| r.status), Some(200));
    started.elapsed().as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_connections_do_not_stop_healthz_and_are_closed() {
    let limits = cessio_web::ConnectionLimits {
        header_read_timeout: Duration::from_secs(2),
        ..cessio_web::ConnectionLimits::default()
    };
    let server = Server::start_limited(|_| {}, limits).await;
    let mut slow = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        let mut s = tokio::net::TcpStream::connect(server.addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ")
            .await
            .unwrap_or_default();
        slow.push(s);
    }
    let mut times = Vec::new();
    for _ in 0..9 {
        times.push(healthz_ms(server.addr).await);
    }
    times.sort_by(f64::total_cmp);
    eprintln!("/healthz beside 2,000 slow-header connections, ms: {times:.2?}");
    assert!(
        times[4] < 100.0,
        "/healthz beside 2,000 slow-header connections: median {:.1} ms ({times:?})",
        times[4]
    );
    // After the header timeout the server has closed every one of them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut closed = 0;
    for s in &mut slow {
        let mut buf = [0u8; 512];
        let read = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await;
        closed += usize::from(read.is_ok());
    }
    assert_eq!(
        closed, 2_000,
        "slow-header connections still open after the timeout"
    );
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_the_header_timeout() {
    let limits = cessio_web::ConnectionLimits {
        header_read_timeout: Duration::from_secs(1),
        ..cessio_web::ConnectionLimits::default()
    };
    let server = Server::start_limited(|_| {}, limits).await;
    let mut s = tokio::net::TcpStream::connect(server.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap_or_default();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap_or(0);
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let started = Instant::now();
    let rest = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
    assert!(
        matches!(rest, Ok(Ok(0) | Err(_))),
        "an idle connection stayed open"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn the_connection_cap_queues_new_connections_until_one_closes() {
    let limits = cessio_web::ConnectionLimits {
        max_connections: 4,
        header_read_timeout: Duration::from_secs(1),
        ..cessio_web::ConnectionLimits::default()
    };
    let server = Server::start_limited(|_| {}, limits).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(server.addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        s.write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap_or_default();
        held.push(s);
    }
    // The fifth waits for a slot: the header timeout frees the four within a second.
    let started = Instant::now();
    let ms = healthz_ms(server.addr).await;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "answered in {ms:.1} ms past the cap"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Every operation of the OpenAPI document, called as the operator, with its path filled.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
            let filled = path
                .replace("{cf}", COMPANY)
                .replace("{id}", "1")
                .replace("{username}", "famiglia")
                .replace("{protocol}", "1");
            out.push((method.to_uppercase(), format!("/api/v1{filled}")));
        }
    }
    out
}

#[tokio::test]
async fn every_api_response_and_page_is_not_cached_nor_sniffed() {
    let server = Server::start().await;
    let doc = server
        .call("GET", "/api/v1/openapi.json", None, None, None)
        .await
        .json();
    let ops = operations(&doc);
    assert!(ops.len() > 20, "{} operations", ops.len());
    for user in ["operatore", "impresa"] {
        let session = server.login(user).await;
        for (method, path) in &ops {
            if path == "/api/v1/session" && method == "DELETE" {
                continue;
            }
            let body = (method != "GET").then_some("{}");
            let r = server
                .call(method, path, Some(&session), Some("k-headers"), body)
                .await;
            assert_eq!(
                r.header("cache-control"),
                Some("no-store"),
                "{user} {method} {path}: {}",
                r.status
            );
            assert_eq!(
                r.header("x-content-type-options"),
                Some("nosniff"),
                "{method} {path}"
            );
            assert!(r.header("referrer-policy").is_some(), "{method} {path}");
        }
    }
    // A token's secret, the personal data of /me and a CSV export.
    let session = server.login("impresa").await;
    let r = server
        .call(
            "POST",
            "/api/v1/tokens",
            Some(&session),
            None,
            Some(r#"{"name":"gestionale"}"#),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = server
        .get(
            &format!("/api/v1/parties/{COMPANY}/movements.csv?year=2024"),
            &session,
        )
        .await;
    assert_eq!(
        r.header("cache-control"),
        Some("no-store"),
        "CSV {}",
        r.status
    );
    for page in ["/accesso", "/healthz", "/metrics", "/api/v1"] {
        let r = server.page(page, None).await;
        assert_eq!(r.header("cache-control"), Some("no-store"), "{page}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{page}"
        );
    }
}

/// Sends `request` and reads one response by its Content-Length, not to the close.
async fn response_only(server: &Server, request: String) -> Reply {
    let mut s = tokio::net::TcpStream::connect(server.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(request.as_bytes()).await.unwrap_or_default();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .unwrap_or(Ok(0))
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                break;
            }
        }
    }
    Reply::parse(&buf)
        .unwrap_or_else(|| panic!("no complete answer: {}", String::from_utf8_lossy(&buf)))
}

fn assert_problem(r: &Reply, status: u16, code: &str, what: &str) {
    assert_eq!(
        r.status,
        status,
        "{what}: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{what}"
    );
    assert_eq!(r.json()["code"], code, "{what}");
}

#[tokio::test]
async fn framework_rejections_are_problems_with_a_code() {
    let server = Server::start().await;
    let session = server.login("operatore").await;
    // A bulk file over the limit (32 MiB): refused once the limit is read past; the response
    // comes while the client is still sending, so it is read without waiting for the close.
    let declared = 60 * 1024 * 1024;
    let mut request = format!(
        "POST /api/v1/communications/bulk HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Cookie: {session}\r\nContent-Type: text/csv\r\nContent-Length: {declared}\r\n\r\n"
    );
    request.push_str(&"x".repeat(cessio_core::csv::MAX_IMPORT_BYTES + 64 * 1024));
    let r = response_only(&server, request).await;
    assert_problem(&r, 413, "body_too_large", "60 MiB bulk");
    // An ordinary body over 1 MiB.
    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(1_100_000));
    let r = server
        .call("POST", "/api/v1/tokens", Some(&session), None, Some(&big))
        .await;
    assert_problem(&r, 413, "body_too_large", "1.1 MB token body");
    // An unknown method, keeping the methods it allows.
    let r = server
        .call("PATCH", "/api/v1/me", Some(&session), None, None)
        .await;
    assert_problem(&r, 405, "method_not_allowed", "PATCH /me");
    assert!(r.header("allow").is_some_and(|a| a.contains("GET")));
    // A path parameter of the wrong type.
    let r = server
        .call("DELETE", "/api/v1/tokens/abc", Some(&session), None, None)
        .await;
    assert_problem(&r, 400, "bad_request", "DELETE /tokens/abc");
    // A body without its content type.
    let r = server
        .raw(format!(
            "POST /api/v1/tokens HTTP/1.1\r\nHost: test\r\nConnection: close\r\nCookie: {session}\r\n\
             Content-Length: 2\r\n\r\n{{}}"
        ))
        .await;
    assert_problem(&r, 415, "content_type", "no content type");
    // An Idempotency-Key that is not visible ASCII.
    let r = server
        .raw(format!(
            "POST /api/v1/parties HTTP/1.1\r\nHost: test\r\nConnection: close\r\nCookie: {session}\r\n\
             Idempotency-Key: chiave\u{e8}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
        ))
        .await;
    assert_problem(
        &r,
        400,
        "idempotency_key_invalid",
        "non-ASCII Idempotency-Key",
    );
    // Bytes the HTTP parser refuses before any request exists: control characters in a
    // header value, a request line that is not HTTP, headers over the limit.
    for (what, raw) in [
        ("control character in Idempotency-Key", "POST /api/v1/parties HTTP/1.1\r\nHost: t\r\nIdempotency-Key: a\u{1}b\r\nContent-Length: 2\r\n\r\n{}".to_string()),
        ("DEL in a header", "GET /api/v1/me HTTP/1.1\r\nHost: t\r\nX-A: a\u{7f}b\r\n\r\n".to_string()),
        ("not a request line", "GET\u{1} / HTTP/1.1\r\nHost: t\r\n\r\n".to_string()),
    ] {
        let r = server.raw(raw).await;
        assert_problem(&r, 400, "bad_request", what);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
    }
    let r = server
        .raw(format!(
            "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
            "a".repeat(500_000)
        ))
        .await;
    assert_problem(&r, 431, "headers_too_large", "half a megabyte of headers");
    // A keep-alive connection's second request, refused by the parser after a good one:
    // the good one is answered as usual, the bad one as a problem.
    let r = response_only(
        &server,
        "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n".to_string(),
    )
    .await;
    assert_eq!(r.status, 200);
    let mut s = tokio::net::TcpStream::connect(server.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\nX: \x01\r\n\r\n")
        .await
        .unwrap_or_default();
    let mut both = Vec::new();
    let _ = s.read_to_end(&mut both).await;
    let text = String::from_utf8_lossy(&both);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json"),
        "{text}"
    );
    // An unknown path.
    let r = server.get("/api/v1/nothing", &session).await;
    assert_problem(&r, 404, "not_found", "unknown path");
}

#[tokio::test]
async fn a_bulk_import_cut_by_the_deadline_says_what_to_do_without_promising_a_key() {
    let server = Server::start_with(|s| s.request_timeout = Duration::from_millis(50)).await;
    // A token: signing in with a password would itself outlast so short a deadline.
    let operator = server
        .app
        .login("operatore", PASSWORD)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, token) = server
        .app
        .create_token(&operator, "import")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Enough rows, each written durably, to outlast the deadline.
    let mut csv = String::from(
        "cf_beneficiario;tipo;anno_spesa;origine;cf_cessionario;importo;data_comunicazione\n",
    );
    for i in 0..300 {
        csv.push_str(&format!(
            "RSSMRA45C12F205C;superbonus;2022;sconto;00743110157;{},00;2023-01-10\n",
            1000 + i
        ));
    }
    let r = server
        .send(
            Request::post("/api/v1/communications/bulk")
                .header("Authorization", &format!("Bearer {token}"))
                .body("text/csv", csv),
        )
        .await;
    assert_problem(&r, 408, "request_timeout", "bulk past the deadline");
    let detail = r.json()["detail"].as_str().unwrap_or_default().to_string();
    assert!(!detail.contains("Idempotency-Key"), "{detail}");
    assert!(detail.contains("inviarlo di nuovo"), "{detail}");
}

/// Not a test of correctness: the figures of the note. `/healthz` latency while one client,
/// or fifty, flood the login with wrong passwords.
/// `cargo test --release -p cessio-web --test hardening login_flood_figures -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run by hand"]
async fn login_flood_figures() {
    for clients in [1usize, 50] {
        let server = behind_proxy().await;
        let addr = server.addr;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut flood = Vec::new();
        for c in 0..clients {
            let stop = stop.clone();
            flood.push(tokio::spawn(async move {
                let (mut sent, mut throttled) = (0u64, 0u64);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = login_json(
                        &format!("u{sent}"),
                        "wrong",
                        &format!("198.51.{}.{}", c / 250, c % 250),
                    )
                    .send(addr)
                    .await;
                    sent += 1;
                    throttled += u64::from(r.is_some_and(|r| r.status == 429));
                }
                (sent, throttled)
            }));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut times = Vec::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            times.push(healthz_ms(addr).await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (mut sent, mut throttled) = (0, 0);
        for f in flood {
            let (s, t) = f.await.unwrap_or((0, 0));
            sent += s;
            throttled += t;
        }
        times.sort_by(f64::total_cmp);
        let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        println!(
            "login flood from {clients} client(s), 20 s: {sent} attempts, {throttled} answered 429; /healthz n={} p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
            times.len(),
            p(0.5),
            p(0.99),
            p(1.0)
        );
    }
}

//! The probes and the metrics: `/healthz` answers without the database, `/readyz` says which
//! part of the register does not answer, `/metrics` exposes the request, operation and
//! ledger series, the last from the ledger head.
//!
//! The lost database is real: the server reaches PostgreSQL (`CESSIO_TEST_DATABASE_URL`)
//! through a TCP relay of the test's own, which the test then closes, cutting every
//! connection and refusing new ones, as a stopped or unreachable server does.

#![expect(clippy::unwrap_used, reason = "tests")]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cessio_core::time::FixedClock;
use cessio_store::WriteConfig;
use cessio_store_postgres::PgStore;
use support::*;

/// The value of the one series named exactly `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_metrics_on_a_healthy_register() {
    let s = Server::start().await;
    let r = s.call("GET", "/healthz", None, None, None).await;
    assert_eq!((r.status, r.body.as_slice()), (200, b"ok".as_slice()));

    let r = s.call("GET", "/readyz", None, None, None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["status"], "ready");
    assert_eq!(j["checks"]["writer"], "ok");
    assert_eq!(j["checks"]["database"], "ok");
    assert!(j["checks"].get("replica").is_none(), "{j}");

    // One operation through the API, so that the operations counter has a series.
    let op = s.login("operatore").await;
    let r = s
        .call(
            "POST",
            "/api/v1/parties",
            Some(&op),
            Some("probe-party"),
            Some(r#"{"cf":"01234560017","name":"Sonda","kind":"company"}"#),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));

    let r = s.call("GET", "/metrics", None, None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4"));
    let text = String::from_utf8_lossy(&r.body).to_string();
    for line in [
        "# TYPE cessio_http_requests_total counter",
        "# TYPE cessio_http_request_duration_seconds histogram",
        "# TYPE cessio_operations_total counter",
        "# TYPE cessio_ledger_rows gauge",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    for (series, at_least) in [
        (
            r#"cessio_http_requests_total{method="GET",route="/healthz",status="200"}"#,
            1.0,
        ),
        (
            r#"cessio_http_requests_total{method="GET",route="/readyz",status="200"}"#,
            1.0,
        ),
        (
            r#"cessio_http_request_duration_seconds_bucket{route="/healthz",le="+Inf"}"#,
            1.0,
        ),
        (
            r#"cessio_http_request_duration_seconds_count{route="/api/v1/parties"}"#,
            1.0,
        ),
        (r#"cessio_operations_total{kind="register_party"}"#, 1.0),
    ] {
        let v = sample(&text, series).unwrap_or_else(|| panic!("{series} missing:\n{text}"));
        assert!(v >= at_least, "{series} = {v}");
    }
    // The ledger head's counters are the tables' row counts.
    let counted = s.app.store().counts().await.unwrap();
    for (table, n) in [
        ("parties", counted.parties),
        ("credits", counted.credits),
        ("rate", counted.rate),
        ("accounts", counted.accounts),
        ("operations", counted.operations),
        ("transfers", counted.transfers),
    ] {
        let series = format!("cessio_ledger_rows{{table=\"{table}\"}}");
        assert_eq!(sample(&text, &series), Some(n as f64), "{series}:\n{text}");
    }
    assert!(counted.transfers > 0 && counted.parties >= 5, "{counted:?}");
}

/// A TCP relay to `upstream` that can be closed: every relayed connection is cut and the
/// port refuses new ones.
struct Relay {
    addr: std::net::SocketAddr,
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(upstream: std::net::SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let relayed = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                relayed.lock().unwrap().push(task);
            }
        });
        tasks.lock().unwrap().push(accept);
        Relay { addr, tasks }
    }

    fn close(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// The host and port of a `postgres://user@host:port/db` URL, and the URL with `addr` in
/// their place.
fn through(url: &str, addr: std::net::SocketAddr) -> (std::net::SocketAddr, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, rest) = rest.split_once('@').unwrap();
    let (host_port, db) = rest.split_once('/').unwrap();
    let host_port = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    };
    let upstream = std::net::ToSocketAddrs::to_socket_addrs(&host_port)
        .unwrap()
        .next()
        .unwrap();
    (upstream, format!("{scheme}://{user}@{addr}/{db}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_the_lost_database_while_liveness_still_answers() {
    let Some(url) = cessio_test_support::postgres_url() else {
        return;
    };
    let (upstream, _) = through(&url, "127.0.0.1:1".parse().unwrap());
    let relay = Relay::start(upstream).await;
    let (_, relayed) = through(&url, relay.addr);
    let schema = format!("probes_{}", std::process::id());
    let store = PgStore::connect(&relayed, Some(&schema), WriteConfig::default())
        .await
        .unwrap();
    let clock = FixedClock::at_rome(2024, 3, 1, 10, 0);
    let app = Server::app(Arc::new(store), &clock);
    let s = Server::serve(app, clock, |_| {}, cessio_web::ConnectionLimits::default()).await;

    let r = s.call("GET", "/readyz", None, None, None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    relay.close();

    // Liveness does not ask the database: it answers at once.
    for _ in 0..20 {
        let started = Instant::now();
        let r = s.call("GET", "/healthz", None, None, None).await;
        assert_eq!(r.status, 200);
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "/healthz took {:?} with the database gone",
            started.elapsed()
        );
    }

    // Readiness names both parts, within its bound.
    let started = Instant::now();
    let r = s.call("GET", "/readyz", None, None, None).await;
    let took = started.elapsed();
    eprintln!(
        "/readyz with the database gone, in {took:?}: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        took < cessio_web::READY_WITHIN + Duration::from_millis(500),
        "/readyz took {took:?}"
    );
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let j = r.json();
    assert_eq!(j["status"], 503);
    assert_eq!(j["code"], "not_ready");
    let detail = j["detail"].as_str().unwrap();
    assert!(
        detail.contains("il database") && detail.contains("il processo di scrittura"),
        "{detail}"
    );
    assert_ne!(j["checks"]["database"], "ok", "{j}");
    assert_ne!(j["checks"]["writer"], "ok", "{j}");
    // Nothing of the database's own error reaches the client.
    assert!(!detail.contains("127.0.0.1"), "{detail}");

    // The writer, reconnecting now, takes nothing from its queue: the next ping gets no
    // answer, and readiness still answers within its bound.
    let started = Instant::now();
    let r = s.call("GET", "/readyz", None, None, None).await;
    let took = started.elapsed();
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["checks"]["writer"],
        format!(
            "nessuna risposta entro {} ms",
            cessio_web::READY_WITHIN.as_millis()
        )
    );
    assert!(
        took < cessio_web::READY_WITHIN + Duration::from_millis(500),
        "/readyz took {took:?}"
    );

    // The metrics still answer; the ledger's rows are unknown, not stale.
    let r = s.call("GET", "/metrics", None, None, None).await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body).to_string();
    assert!(
        text.contains("cessio_ledger_rows{table=\"transfers\"} NaN"),
        "{text}"
    );
}

//! Kill loop under HTTP load: the real binary serves the demo register while concurrent
//! clients cede credits and answer cessions over HTTP with idempotency keys; the server is
//! SIGKILLed at random moments and restarted; every request whose answer never arrived is
//! sent again with the same key until one does. At the end every acknowledged request is
//! in the register exactly once (its key names the operation the client was told, and the
//! register holds no operation nobody was told about) and `cessio verify` passes.
//!
//! Quick (CI, both backends):
//!   CESSIO_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p cessio --test kill_loop
//! Long:
//!   CESSIO_KILLS=100 CESSIO_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo test --release -p cessio --test kill_loop -- --nocapture
//! Other knobs: CESSIO_KILL_CLIENTS (default 8), CESSIO_KILL_SEED.
//!
//! PostgreSQL restarts under the same load (opt-in: a restart breaks every other test using
//! the server at that moment, so `cargo test --workspace` skips it). The server keeps running
//! while `pg_ctlcluster … restart` (fast mode) cuts every connection; requests answered 503
//! `database_unavailable` are sent again under the same key until acknowledged, and the
//! server must come back by itself. Needs a local Debian cluster serving the URL's port and
//! the right to restart it (root or the cluster's owner); otherwise it says why and skips:
//!   CESSIO_PG_RESTARTS=20 CESSIO_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo test --release -p cessio --test kill_loop postgres_restarts -- --nocapture
//!
//! The requests are an enum ([`Request`]): F24 use and splits, when they exist, are one
//! more variant and one more role.

#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cessio_store::{IdempotencyKey, OperatorEventQuery, Store};
use cessio_test_support::http::{Reply, Request as HttpRequest};
use cessio_test_support::{SplitMix64, env_or};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_cessio");
/// The demo's logins (crates/cessio/src/demo.rs).
const PASSWORD: &str = "cessio-demo-2024";
const PIN: &str = "246810";
const BIANCHI: &str = "00743110157";
const BANCA: &str = "03189950961";
/// After the demo's last step, so that its waiting periods have passed.
const CLOCK: &str = "2024-04-15T10:00:00";

/// Where the database is: the arguments every `cessio` command gets.
#[derive(Clone, Debug)]
struct Db {
    url: String,
    schema: Option<String>,
}

impl Db {
    fn args(&self) -> Vec<String> {
        let mut a = vec!["--database-url".to_string(), self.url.clone()];
        if let Some(s) = &self.schema {
            a.extend(["--schema".to_string(), s.clone()]);
        }
        a
    }

    async fn open(&self) -> Arc<dyn Store> {
        common::open_store(&self.url, self.schema.as_deref()).await
    }
}

/// Starts `cessio serve` on an ephemeral port and returns it with its address.
fn start(db: &Db, demo: bool) -> (Child, SocketAddr) {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .args(db.args())
        .args(["--listen", "127.0.0.1:0", "--clock", CLOCK]);
    if demo {
        cmd.arg("--demo");
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server exited before listening")
            .unwrap();
        if let Some(rest) = line.split("in ascolto su http://").nth(1) {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
    };
    // Keep draining stdout so that the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

fn kill(child: &mut Child) {
    child.kill().unwrap(); // SIGKILL: no chance to flush or clean up.
    child.wait().unwrap();
}

/// A bearer token for a demo user (sessions live in the server's memory; tokens in the
/// register, so they survive restarts).
async fn session(addr: SocketAddr, user: &str) -> String {
    let r = HttpRequest::post("/api/v1/session")
        .json(&json!({"username": user, "password": PASSWORD}).to_string())
        .send(addr)
        .await
        .unwrap_or_else(|| panic!("no answer to the login of {user}"));
    r.cookie("cessio_session")
        .unwrap_or_else(|| panic!("no session for {user}: {} {}", r.status, r.text()))
}

/// A user of its own for each client (an API integration each), created by the operator,
/// and its bearer token. One user per client keeps each user's requests sequential: the
/// PIN check counts attempts before verifying them, so many concurrent requests of one
/// user are refused as `pin_locked` even with the right PIN (see
/// `crates/cessio-app/tests/pin_concurrency.rs`).
async fn client_token(addr: SocketAddr, operator: &str, username: &str, party: &str) -> String {
    let r = HttpRequest::post("/api/v1/users")
        .header("Cookie", operator)
        .json(
            &json!({
                "username": username,
                "display_name": username,
                "password": PASSWORD,
                "pin": PIN,
                "party_cf": party,
                "role": "user",
            })
            .to_string(),
        )
        .send(addr)
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let cookie = session(addr, username).await;
    let r = HttpRequest::post("/api/v1/tokens")
        .header("Cookie", &cookie)
        .json(&json!({"name": "kill-loop"}).to_string())
        .send(addr)
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_string()
}

/// The requests the clients send. Each client plays one role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Request {
    /// Bianchi cedes part of an Ecobonus rata (non-tracciabile: partial allowed) to the bank.
    CedeToBank,
    /// The bank accepts (or now and then refuses) what Bianchi ceded.
    BankAnswers,
    /// The bank cedes part of what it accepted back to Bianchi.
    CedeToBianchi,
    /// Bianchi answers the bank's cessions.
    BianchiAnswers,
}

const ROLES: [Request; 4] = [
    Request::CedeToBank,
    Request::BankAnswers,
    Request::CedeToBianchi,
    Request::BianchiAnswers,
];

impl Request {
    /// (acting party, counterparty).
    fn parties(self) -> (&'static str, &'static str) {
        match self {
            Request::CedeToBank | Request::BianchiAnswers => (BIANCHI, BANCA),
            Request::BankAnswers | Request::CedeToBianchi => (BANCA, BIANCHI),
        }
    }

    /// The refusals that concurrency explains: someone else changed the state first.
    fn expected_refusals(self) -> &'static [&'static str] {
        match self {
            // Credit going back and forth meets §5's chain rules: after the first free
            // cession only qualified parties may receive (R-CHAIN), which the bank is and
            // the building company is not.
            Request::CedeToBank | Request::CedeToBianchi => &[
                "invalid",
                "insufficient_available",
                "r_chain_not_qualified",
                "not_cedible",
            ],
            Request::BankAnswers | Request::BianchiAnswers => &["conflict"],
        }
    }
}

#[derive(Debug)]
struct Shared {
    addr: RwLock<SocketAddr>,
    /// One user and bearer token per client: (username, token).
    tokens: Vec<(String, String)>,
    stop: AtomicBool,
    /// (username, key, operation id) of every acknowledged request.
    acks: Mutex<Vec<(String, String, i64)>>,
    refused: AtomicU64,
    unanswered: AtomicU64,
    /// Answers 503 (the database was unreachable), sent again under the same key.
    unavailable: AtomicU64,
}

impl Shared {
    fn addr(&self) -> SocketAddr {
        *self.addr.read().unwrap()
    }
}

/// Sends until an answer arrives (the server may be dead for a while) that is not 503 (its
/// database may be unreachable for a while: the server says so, and nothing was applied
/// that the same key cannot replay).
async fn until_answered(s: &Shared, request: &HttpRequest) -> Reply {
    loop {
        match request.send(s.addr()).await {
            Some(r) if r.status == 503 => {
                assert_eq!(r.json()["code"], "database_unavailable", "{}", r.text());
                s.unavailable.fetch_add(1, Ordering::Relaxed);
            }
            Some(r) => return r,
            None => {
                s.unanswered.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn client(s: Arc<Shared>, id: usize, seed: u64) {
    let role = ROLES[id % ROLES.len()];
    let (party, other) = role.parties();
    let (user, token) = &s.tokens[id];
    let bearer = format!("Bearer {token}");
    let mut rng = SplitMix64::new(seed ^ (id as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    let mut n = 0u64;
    while !s.stop.load(Ordering::Acquire) {
        n += 1;
        let (path, body) = match role {
            Request::CedeToBank | Request::CedeToBianchi => {
                let cedible = until_answered(
                    &s,
                    &HttpRequest::get(&format!("/api/v1/parties/{party}/cedible"))
                        .header("Authorization", &bearer),
                )
                .await;
                assert_eq!(cedible.status, 200, "{}", cedible.text());
                let cedible = cedible.json();
                let rows: Vec<&Value> = cedible
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|h| h["type_key"] == "ecobonus" && h["partial_allowed"] == true)
                    .collect();
                if rows.is_empty() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                let h = rows[rng.below_usize(rows.len())];
                let max = h["max_cedibile"].as_i64().unwrap();
                let amount =
                    1 + i64::try_from(rng.below(u64::try_from(max.min(500)).unwrap())).unwrap();
                (
                    format!("/api/v1/parties/{party}/cessions"),
                    json!({
                        "lines": [{"rata": h["rata"], "cessionario_cf": other, "amount": amount}],
                        "disclose_name": true,
                        "pin": PIN,
                    }),
                )
            }
            Request::BankAnswers | Request::BianchiAnswers => (
                format!("/api/v1/parties/{party}/incoming/answer"),
                json!({
                    "accept": rng.below(5) != 0,
                    "type_key": "ecobonus",
                    "cedente_cf": other,
                    "pin": PIN,
                }),
            ),
        };
        let key = format!("kill-{id}-{n}-{:x}", rng.next_u64());
        let request = HttpRequest::post(&path)
            .header("Authorization", &bearer)
            .header("Idempotency-Key", &key)
            .json(&body.to_string());
        // The same key, the same body, until an answer comes back.
        let r = until_answered(&s, &request).await;
        let answer = r.json();
        match r.status {
            200 | 201 => {
                let op = answer["operation_id"].as_i64().unwrap();
                s.acks.lock().unwrap().push((user.clone(), key, op));
            }
            400..=499 => {
                let code = answer["code"].as_str().unwrap_or_default();
                assert!(
                    role.expected_refusals().contains(&code),
                    "{role:?} refused with {}: {answer}",
                    r.status,
                );
                s.refused.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            _ => panic!("{role:?}: server error {}: {answer}", r.status),
        }
    }
}

/// What the harness does to the running system, again and again.
#[derive(Debug)]
enum Fault {
    /// SIGKILL `cessio serve` and start it again.
    KillServer,
    /// Restart the PostgreSQL server under the running `cessio serve`.
    RestartPostgres(Cluster),
}

/// A local Debian PostgreSQL cluster (`pg_lsclusters`), and the right to restart it.
#[derive(Debug, Clone)]
struct Cluster {
    version: String,
    name: String,
    port: u16,
}

impl Cluster {
    /// The cluster serving `url`, if this machine lets the test restart it; otherwise why not.
    fn detect(url: &str) -> Result<Cluster, String> {
        let cfg: tokio_postgres::Config = url.parse().map_err(|e| format!("URL: {e}"))?;
        let local = cfg.get_hosts().iter().all(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => {
                matches!(h.as_str(), "127.0.0.1" | "localhost" | "::1")
            }
            tokio_postgres::config::Host::Unix(_) => true,
        });
        if !local {
            return Err("the PostgreSQL server of the URL is not on this machine".into());
        }
        let port = cfg.get_ports().first().copied().unwrap_or(5432);
        let out = Command::new("pg_lsclusters")
            .arg("--no-header")
            .output()
            .map_err(|e| format!("pg_lsclusters not available ({e}): not a Debian PostgreSQL"))?;
        let listing = String::from_utf8_lossy(&out.stdout).to_string();
        let line = listing
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.len() >= 5 && f[2] == port.to_string())
            .ok_or_else(|| format!("no local cluster listens on port {port}: {listing:?}"))?;
        let (owner, online) = (line[4], line[3] == "online");
        if !online {
            return Err(format!("cluster {} {} is not online", line[0], line[1]));
        }
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let user = Command::new("id")
            .arg("-un")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        if uid != "0" && user != owner {
            return Err(format!(
                "restarting cluster {} {} needs root or its owner '{owner}'; this is '{user}'",
                line[0], line[1]
            ));
        }
        Ok(Cluster {
            version: line[0].to_string(),
            name: line[1].to_string(),
            port,
        })
    }

    /// Restarts the cluster (fast shutdown: open transactions roll back, every connection
    /// is cut) and waits until it accepts connections again. Returns the time it was down.
    fn restart(&self) -> Duration {
        let started = Instant::now();
        let out = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", "-m", "fast"])
            .args([&self.version, &self.name, "restart"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctlcluster restart: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = self.port.to_string();
        while !Command::new("pg_isready")
            .args(["-q", "-h", "127.0.0.1", "-p", &port])
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "PostgreSQL did not come back"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        started.elapsed()
    }
}

async fn kill_loop(db: Db) {
    let kills: u32 = env_or("CESSIO_KILLS", 5);
    fault_loop(db, Fault::KillServer, kills).await;
}

async fn fault_loop(db: Db, fault: Fault, faults: u32) {
    let clients: usize = env_or("CESSIO_KILL_CLIENTS", 8);
    let seed: u64 = env_or("CESSIO_KILL_SEED", 424_242);
    let mut rng = SplitMix64::new(seed);

    let (mut server, addr) = start(&db, true);
    let operator = session(addr, "operatore").await;
    let mut tokens = Vec::new();
    for id in 0..clients {
        let username = format!("client{id}");
        let (party, _) = ROLES[id % ROLES.len()].parties();
        let token = client_token(addr, &operator, &username, party).await;
        tokens.push((username, token));
    }
    kill(&mut server);
    let before = {
        let store = db.open().await;
        (
            store.counts().await.unwrap().operations,
            risk_hits(&*store).await,
        )
    };
    let (mut server, addr) = start(&db, false);
    let shared = Arc::new(Shared {
        addr: RwLock::new(addr),
        tokens,
        stop: AtomicBool::new(false),
        acks: Mutex::new(Vec::new()),
        refused: AtomicU64::new(0),
        unanswered: AtomicU64::new(0),
        unavailable: AtomicU64::new(0),
    });
    let started = Instant::now();
    let mut down = Duration::ZERO;
    let tasks: Vec<_> = (0..clients)
        .map(|id| tokio::spawn(client(shared.clone(), id, seed)))
        .collect();
    for _ in 0..faults {
        // Each kill must find the restarted server at work: wait for one new
        // acknowledgement (a server that never gets there fails the run), then let the load
        // run for a while and strike at a random moment. Without the wait a backend whose
        // restart takes about as long as the gap would be killed before it served anything,
        // and the run would check little.
        let acked = shared.acks.lock().unwrap().len();
        let deadline = Instant::now() + Duration::from_secs(60);
        while shared.acks.lock().unwrap().len() == acked {
            assert!(
                Instant::now() < deadline,
                "no request acknowledged within 60 s of a restart"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100 + rng.below(1_200))).await;
        match &fault {
            Fault::KillServer => {
                kill(&mut server);
                tokio::time::sleep(Duration::from_millis(rng.below(200))).await;
                let (s, a) = start(&db, false);
                server = s;
                *shared.addr.write().unwrap() = a;
            }
            Fault::RestartPostgres(cluster) => {
                let cluster = cluster.clone();
                let took = tokio::task::spawn_blocking(move || cluster.restart())
                    .await
                    .unwrap();
                down = down.max(took);
            }
        }
    }
    // The same server must take up the work again by itself: new acknowledgements, soon.
    if matches!(fault, Fault::RestartPostgres(_)) {
        let acked = shared.acks.lock().unwrap().len();
        let deadline = Instant::now() + Duration::from_secs(60);
        while shared.acks.lock().unwrap().len() < acked + clients {
            assert!(
                Instant::now() < deadline,
                "cessio serve did not recover after the PostgreSQL restart"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // A last stretch alive, so that every request cut short gets its answer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    shared.stop.store(true, Ordering::Release);
    for t in tasks {
        t.await.unwrap();
    }
    kill(&mut server);

    let acks = shared.acks.lock().unwrap().clone();
    let store = db.open().await;
    let mut ops = std::collections::BTreeSet::new();
    for (username, key, op) in &acks {
        let uid = store.user_by_name(username).await.unwrap().unwrap().id;
        let receipt = store
            .receipt(&IdempotencyKey::parse(&format!("u{uid}:{key}")).unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged {key} lost"));
        assert_eq!(receipt.operation_id, *op, "{key}: another operation");
        assert!(ops.insert(*op), "operation {op} acknowledged twice");
    }
    // F9's risk rules record each hit as an operation of the server's own, beside the
    // communication that hit it: those are the only operations no client asked for.
    let after = store.counts().await.unwrap().operations;
    let hits = risk_hits(&*store).await - before.1;
    assert_eq!(
        after - before.0,
        acks.len() as u64 + hits,
        "operations applied that no client was told about, or acknowledged twice"
    );
    drop(store);
    let out = Command::new(BIN)
        .arg("verify")
        .args(db.args())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cessio verify: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let what = match fault {
        Fault::KillServer => format!("kill loop: {faults} kills"),
        Fault::RestartPostgres(_) => format!(
            "PostgreSQL restarts: {faults} restarts (longest {:.1} s until ready again)",
            down.as_secs_f64()
        ),
    };
    println!(
        "{what} [{}], {clients} clients, {:.1} s: {} acknowledged, {} refused, {} requests without an answer (sent again), {} answered 503 (sent again)",
        if db.schema.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
        started.elapsed().as_secs_f64(),
        acks.len(),
        shared.refused.load(Ordering::Relaxed),
        shared.unanswered.load(Ordering::Relaxed),
        shared.unavailable.load(Ordering::Relaxed),
    );
    assert!(!acks.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_loop_under_http_load_sqlite() {
    let dir = std::env::temp_dir().join(format!("cessio-kill-loop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("kill.db").display());
    kill_loop(Db { url, schema: None }).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_loop_under_http_load_postgres() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let schema = format!("kill_loop_{}", std::process::id());
    kill_loop(Db {
        url: url.clone(),
        schema: Some(schema.clone()),
    })
    .await;
    common::drop_schema(&url, &schema).await;
}

/// Opt-in (`CESSIO_PG_RESTARTS`): see the module's doc.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarts_under_http_load() {
    let restarts: u32 = env_or("CESSIO_PG_RESTARTS", 0);
    if restarts == 0 {
        eprintln!("skipped: CESSIO_PG_RESTARTS is not set (restarts break concurrent tests)");
        return;
    }
    let Some(url) = common::postgres_url() else {
        return;
    };
    let cluster = match Cluster::detect(&url) {
        Ok(c) => c,
        Err(why) => {
            println!("skipped: PostgreSQL cannot be restarted from here: {why}");
            return;
        }
    };
    // Not "pg_…": PostgreSQL reserves that prefix for its own schemas.
    let schema = format!("restart_loop_{}", std::process::id());
    fault_loop(
        Db {
            url: url.clone(),
            schema: Some(schema.clone()),
        },
        Fault::RestartPostgres(cluster),
        restarts,
    )
    .await;
    common::drop_schema(&url, &schema).await;
}

/// The risk hits the operator's register holds: each was recorded as an operation.
async fn risk_hits(store: &dyn Store) -> u64 {
    let query = OperatorEventQuery {
        kinds: vec!["risk_hit".into()],
        limit: Some(OperatorEventQuery::MAX_ROWS),
        ..OperatorEventQuery::default()
    };
    store.operator_events(&query).await.unwrap().len() as u64
}

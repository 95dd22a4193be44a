//! Durability under SIGKILL: a writer process prints "ack KEY" only after its batch
//! committed; we kill it mid-stream, restart it with the same keys, and check that every
//! acknowledged operation is there exactly once and `verify` passes. Both backends.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cessio_store::{IdempotencyKey, Store, WriteConfig};

const BIN: &str = env!("CARGO_BIN_EXE_cessio-bench");

/// Runs the writer until it has acknowledged `acks` operations, then SIGKILLs it. Returns
/// every key it acknowledged (including lines already in the pipe when it died).
fn run_and_kill(url: &str, schema: Option<&str>, acks: usize) -> Vec<String> {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "load",
        "--database-url",
        url,
        "--concurrency",
        "8",
        "--key-prefix",
        "crash",
    ]);
    if let Some(s) = schema {
        cmd.args(["--schema", s]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut keys = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while keys.len() < acks {
        assert!(
            Instant::now() < deadline,
            "writer too slow: {} acks",
            keys.len()
        );
        match lines.next() {
            Some(line) => keys.push(line.unwrap().strip_prefix("ack ").unwrap().to_string()),
            None => panic!("writer exited early after {} acks", keys.len()),
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix: no chance to flush or clean up.
    child.wait().unwrap();
    for line in lines {
        keys.push(line.unwrap().strip_prefix("ack ").unwrap().to_string());
    }
    keys
}

async fn check(store: Arc<dyn Store>, acked: &[String]) -> Vec<i64> {
    let mut ids = Vec::new();
    for key in acked {
        let receipt = store
            .receipt(&IdempotencyKey::parse(key).unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged operation {key} lost"));
        ids.push(receipt.operation_id);
    }
    let report = store.verify().await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    ids
}

async fn crash_cycle(url: &str, schema: Option<&str>, open: impl AsyncFn() -> Arc<dyn Store>) {
    let first = run_and_kill(url, schema, 400);
    let ids = check(open().await, &first).await;
    // Restart: the same keys are submitted again; those already applied must replay.
    let second = run_and_kill(url, schema, 800);
    let store = open().await;
    let ids_after = check(store.clone(), &first).await;
    assert_eq!(ids, ids_after, "a retried key was applied twice");
    check(store.clone(), &second).await;
    let counts = store.counts().await.unwrap();
    // One cession per distinct key, plus the set-up operations.
    let mut distinct: Vec<&String> = first.iter().chain(&second).collect();
    distinct.sort();
    distinct.dedup();
    assert!(counts.operations >= distinct.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_operation_sqlite() {
    let dir = std::env::temp_dir().join(format!("cessio-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("crash.db");
    let url = format!("sqlite://{}", path.display());
    crash_cycle(&url, None, async || {
        Arc::new(cessio_store_sqlite::SqliteStore::open(&path, WriteConfig::default()).unwrap())
            as Arc<dyn Store>
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_operation_postgres() {
    let Some(url) = cessio_test_support::postgres_url() else {
        return;
    };
    let schema = format!("crash_{}", std::process::id());
    let u = url.clone();
    let s = schema.clone();
    crash_cycle(&url, Some(&schema), async || {
        Arc::new(
            cessio_store_postgres::PgStore::connect(&u, Some(&s), WriteConfig::default())
                .await
                .unwrap(),
        ) as Arc<dyn Store>
    })
    .await;
    cessio_bench::db::drop_schema(&url, &schema).await.unwrap();
}

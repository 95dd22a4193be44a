//! The store contract on PostgreSQL. Each test works in a schema of its own, so the suite
//! runs in parallel on one database. `CESSIO_TEST_DATABASE_URL` names the server; without
//! it the suite is skipped locally and fails under CI, where it must run.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::sync::Arc;

use cessio_store::WriteConfig;
use cessio_store::contract::{DynStore, seed_history};
use cessio_store_postgres::PgStore;

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn schema_name() -> String {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("t_{}_{}_{}", std::process::id(), n, nanos)
}

async fn fresh_with_schema() -> Option<(DynStore, String, String)> {
    let url = cessio_test_support::postgres_url()?;
    let schema = schema_name();
    let store = PgStore::connect(&url, Some(&schema), WriteConfig::default())
        .await
        .unwrap();
    Some((Arc::new(store), url, schema))
}

async fn fresh() -> Option<DynStore> {
    fresh_with_schema().await.map(|(s, _, _)| s)
}

cessio_store::contract_tests!(fresh());

async fn tampered(sql: &str) -> Option<Vec<String>> {
    let (store, url, schema) = fresh_with_schema().await?;
    seed_history(&store).await;
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("SET search_path = {schema}; {sql}"))
        .await
        .unwrap();
    let report = store.verify().await.unwrap();
    Some(report.problems.iter().map(|p| p.to_string()).collect())
}

#[tokio::test]
async fn r_history_verify_catches_an_edited_amount() {
    if let Some(problems) = tampered("UPDATE transfers SET amount = 99 WHERE id = 3").await {
        assert!(problems[0].starts_with("transfer 3: hash"), "{problems:?}");
    }
}

#[tokio::test]
async fn r_history_verify_catches_a_deleted_row() {
    if let Some(problems) = tampered("DELETE FROM transfers WHERE id = 4").await {
        assert!(problems[0].contains("expected id 4"), "{problems:?}");
    }
}

#[tokio::test]
async fn r_history_verify_catches_a_deleted_last_row() {
    if let Some(problems) =
        tampered("DELETE FROM transfers WHERE id = (SELECT MAX(id) FROM transfers)").await
    {
        assert!(
            problems.iter().any(|p| p.starts_with("ledger head")),
            "{problems:?}"
        );
    }
}

#[tokio::test]
async fn bad_urls_and_unreachable_servers_get_clear_errors() {
    let e = PgStore::connect("mysql://x", None, WriteConfig::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "database_url_invalid");
    let e = PgStore::connect(
        "postgres://postgres@127.0.0.1:1/test",
        None,
        WriteConfig::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "database_unavailable", "{e}");
    assert!(e.to_string().contains("PostgreSQL"), "{e}");
}

/// A statement the server refuses says why in the server's words, not only "db error":
/// SPEC §9, no error without a reason one can act on.
#[tokio::test]
async fn database_errors_carry_the_servers_reason() {
    let Some(url) = cessio_test_support::postgres_url() else {
        return;
    };
    let e = PgStore::connect(&url, Some("pg_reserved"), WriteConfig::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "database_error");
    assert!(e.to_string().contains("pg_reserved"), "{e}");
}

/// After the server drops every connection (a restart, a terminated backend), reads
/// reconnect at once and the writer reconnects after failing the batch in flight; a retry
/// with the same idempotency key then applies the operation exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_server_drops_its_connections() {
    use cessio_store::contract::{cede, op};
    let Some((store, url, schema)) = fresh_with_schema().await else {
        return;
    };
    let (rata, _) = seed_history(&store).await;
    let a = store
        .party_by_cf(&cessio_test_support::entity_cf(1))
        .await
        .unwrap()
        .unwrap()
        .id;
    let b = store
        .party_by_cf(&cessio_test_support::entity_cf(2))
        .await
        .unwrap()
        .unwrap()
        .id;
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let killed = admin
        .query_one(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("cessio-{schema}")],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert!(killed >= 2, "terminated {killed} connections");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Reads work again at once.
    assert!(store.counts().await.unwrap().transfers > 0);
    // The first write may fail with the connection; the retry with the same key succeeds.
    let mut applied = None;
    for _ in 0..20 {
        match store.submit(op("after-drop", cede(rata, a, b, 7))).await {
            Ok(r) => {
                applied = Some(r);
                break;
            }
            Err(e) => {
                assert!(
                    matches!(e.code(), "database_error" | "database_unavailable"),
                    "{e}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
    let r = applied.expect("the writer reconnected");
    let again = store
        .submit(op("after-drop", cede(rata, a, b, 7)))
        .await
        .unwrap();
    assert_eq!(again.operation_id, r.operation_id);
    assert!(store.verify().await.unwrap().ok());
}

/// A write cut off by the server dropping its connection fails as `database_unavailable`
/// (the API's 503: send it again under the same key), not as `database_error` (500: a
/// fault the client cannot act on), and the retry applies it once. So do reads on a
/// connection dropped under them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_connection_is_database_unavailable_and_retryable() {
    use cessio_store::contract::{cede, op};
    use cessio_test_support::entity_cf;
    let Some((store, url, schema)) = fresh_with_schema().await else {
        return;
    };
    let (rata, _) = seed_history(&store).await;
    let a = store.party_by_cf(&entity_cf(1)).await.unwrap().unwrap().id;
    let b = store.party_by_cf(&entity_cf(2)).await.unwrap().unwrap().id;
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let terminate = || async {
        admin
            .query_one(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                &[&format!("cessio-{schema}")],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    assert!(terminate().await >= 2);
    // The writer learns of the loss only from the batch it sends next.
    let e = store
        .submit(op("cut-off", cede(rata, a, b, 7)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "database_unavailable", "{e}");
    let mut applied = None;
    for _ in 0..50 {
        match store.submit(op("cut-off", cede(rata, a, b, 7))).await {
            Ok(r) => {
                applied = Some(r);
                break;
            }
            Err(e) => {
                assert_eq!(e.code(), "database_unavailable", "{e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    let r = applied.expect("the writer reconnected by itself");
    assert!(!r.replayed);
    // Reads: every failure while the connections are gone is retryable too.
    assert!(terminate().await >= 1);
    for _ in 0..8 {
        if let Err(e) = store.counts().await {
            assert_eq!(e.code(), "database_unavailable", "{e}");
        }
    }
    assert!(store.counts().await.unwrap().transfers > 0);
    assert!(store.verify().await.unwrap().ok());
}

/// Takes a register back to before migration 7 (delegation scopes and end dates), and so
/// before migration 8 (the web layer's sessions, logins in progress and throttle) and
/// migration 9 (the log: reopened, the register adopts it).
/// Migrations 15 (the §5 paths) and 14 (F1's kept days, filled from the history) go first.
const UNDO_MIGRATION_7: &str = "DROP TABLE holding_paths;
         DROP TABLE cession_paths;
         DELETE FROM schema_migrations WHERE version = 15;
         DROP TABLE party_summary_days;
         DELETE FROM schema_migrations WHERE version = 14;
         DROP INDEX transfers_awaiting;
         DELETE FROM schema_migrations WHERE version = 13;
         DROP TABLE job_rows;
         DROP TABLE jobs;
         DELETE FROM schema_migrations WHERE version = 12;
         DROP TABLE webhooks;
         DELETE FROM schema_migrations WHERE version = 11;
         DROP TABLE party_feed;
         DELETE FROM schema_migrations WHERE version = 10;
         DROP TABLE log;
         ALTER TABLE ledger_head DROP COLUMN log_seq;
         ALTER TABLE ledger_head DROP COLUMN log_hash;
         DELETE FROM schema_migrations WHERE version = 9;
         DROP TABLE web_sessions;
         DROP TABLE login_flows;
         DROP TABLE login_attempts;
         DELETE FROM schema_migrations WHERE version = 8;
         DROP INDEX delegations_party;
         ALTER TABLE delegations DROP COLUMN scope;
         ALTER TABLE delegations DROP COLUMN valid_until;
         ALTER TABLE delegations DROP COLUMN granted_by;
         ALTER TABLE delegations DROP COLUMN revoked_by;
         ALTER TABLE delegations DROP COLUMN operation;
         DELETE FROM schema_migrations WHERE version = 7;";

/// Delegations recorded before they had a scope keep what they allowed: disposizione, with
/// no end date, granted and revoked by whom the audit log says.
#[tokio::test]
async fn migration_keeps_existing_delegations_as_disposizione_with_no_end() {
    let Some((store, url, schema)) = fresh_with_schema().await else {
        return;
    };
    seed_history(&store).await;
    drop(store);
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "SET search_path = {schema};
             {UNDO_MIGRATION_7}
             INSERT INTO users (id, username, display_name, password_hash, pin_hash, role, created_at)
               VALUES (5, 'studio', 'Studio', 'h', 'p', 'user', 10);
             INSERT INTO delegations (user_id, party, created_at) VALUES (5, 1, 20);
             INSERT INTO audit_log (at, actor, action, detail) VALUES (20, 'operatore#1', 'delegate', 'user 5 party 1');
             INSERT INTO delegations (user_id, party, created_at, revoked_at) VALUES (5, 2, 30, 40);
             INSERT INTO audit_log (at, actor, action, detail) VALUES (40, 'operatore#2', 'revoke_delegation', 'user 5 party 2');"
        ))
        .await
        .unwrap();
    let store: DynStore = Arc::new(
        PgStore::connect(&url, Some(&schema), WriteConfig::default())
            .await
            .unwrap(),
    );
    let live = store.delegations(5).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].party, 1);
    assert_eq!(live[0].scope, cessio_store::DelegationScope::Disposizione);
    assert_eq!(live[0].until, None);
    assert_eq!(live[0].granted_by.as_deref(), Some("operatore#1"));
    let past = store.party_delegations(2, 10).await.unwrap();
    assert_eq!(past[0].revoked_by.as_deref(), Some("operatore#2"));
    assert_eq!(
        past[0].granted_by, None,
        "no audit entry recorded its grant"
    );
}

/// A register written before accounts recorded their last transfer gets it from its
/// history when the migration runs.
#[tokio::test]
async fn migration_fills_each_accounts_last_transfer_from_the_history() {
    let Some((store, url, schema)) = fresh_with_schema().await else {
        return;
    };
    seed_history(&store).await;
    drop(store);
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "SET search_path = {schema};
             {UNDO_MIGRATION_7}
             DROP INDEX accounts_holder_changes;
             DROP INDEX f24_choices_party_id;
             ALTER TABLE accounts DROP COLUMN last_transfer;
             DELETE FROM schema_migrations WHERE version = 6;"
        ))
        .await
        .unwrap();
    let store: DynStore = Arc::new(
        PgStore::connect(&url, Some(&schema), WriteConfig::default())
            .await
            .unwrap(),
    );
    let report = store.verify().await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let zero: i64 = client
        .query_one("SELECT COUNT(*) FROM accounts WHERE last_transfer = 0", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(zero, 0, "every seeded account has moved");
}

/// F1's kept cedibilità trusts each account's last transfer: `verify` recomputes it.
#[tokio::test]
async fn verify_catches_an_account_whose_last_transfer_is_wrong() {
    if let Some(problems) = tampered(
        "UPDATE accounts SET last_transfer = 0 WHERE id = (SELECT MIN(id) FROM accounts WHERE kind = 'holder')",
    )
    .await
    {
        assert!(
            problems.iter().any(|p| p.contains("last transfer recorded 0")),
            "{problems:?}"
        );
    }
}

#[tokio::test]
async fn f1_summary_verify_catches_an_edited_summary() {
    if let Some(problems) = tampered(
        "UPDATE party_summary SET amount = amount + 1 WHERE party = (SELECT MIN(party) FROM party_summary)",
    )
    .await
    {
        assert!(problems.iter().any(|p| p.contains("F1 summary")), "{problems:?}");
    }
}

/// After a bulk load (`cessio-bench generate`) the register's tables have planner statistics
/// at once: before, the national register's tables had none until autovacuum came by, and the
/// planner guessed (a batch of 1,000 rate's histories estimated at 88,000 rows for 3,864).
#[tokio::test]
async fn refresh_statistics_analyzes_the_registers_own_tables() {
    let Some((store, url, schema)) = fresh_with_schema().await else {
        return;
    };
    seed_history(&store).await;
    store.refresh_statistics().await.unwrap();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let analyzed: Vec<String> = client
        .query(
            "SELECT relname::text FROM pg_stat_user_tables
              WHERE schemaname = $1 AND last_analyze IS NOT NULL ORDER BY 1",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for table in ["accounts", "credits", "parties", "rate", "transfers"] {
        assert!(analyzed.iter().any(|t| t == table), "{table}: {analyzed:?}");
    }
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

/// A database read does not give away a live cookie: the session and the strong login in
/// progress are keyed by the SHA-256 of their cookies.
#[tokio::test]
async fn only_the_hash_of_a_session_cookie_is_stored() {
    let Some((store, url, schema)) = fresh_with_schema().await else {
        return;
    };
    let at = cessio_store::contract::t0();
    let cookie = "c0ffee-session-cookie-value";
    let flow = "f10w-cookie-value";
    store
        .create_session(
            cessio_store::NewSession {
                key: cessio_store::SecretKey::of(cookie),
                user: 1,
                data: "{}".into(),
                at,
                expires_at: at + chrono::Duration::minutes(30),
            },
            cessio_store::SessionLimits::default(),
        )
        .await
        .unwrap();
    store
        .start_login_flow(
            &cessio_store::SecretKey::of(flow),
            "{}".into(),
            at + chrono::Duration::minutes(10),
            at,
            10,
        )
        .await
        .unwrap();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let rows: String = client
        .query_one(
            &format!(
                "SELECT (SELECT string_agg(token_hash || data, '|') FROM {schema}.web_sessions)
                     || (SELECT string_agg(key_hash || data, '|') FROM {schema}.login_flows)"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!rows.contains(cookie) && !rows.contains(flow), "{rows}");
    assert!(rows.contains(cessio_store::SecretKey::of(cookie).as_str()));
}

/// A connection to the test's schema that is not held by foreign keys, as whoever edits
/// the database directly is not.
async fn raw(url: &str, schema: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "SET search_path = {schema}; SET session_replication_role = replica"
        ))
        .await
        .unwrap();
    client
}

/// The tamper suite: an edit, a deletion and an insertion in every table of the register,
/// one at a time on a register of its own; `verify` names the table and key of each.
#[tokio::test]
async fn r_history_verify_names_every_tampered_table_and_key() {
    for tamper in cessio_store::contract::TAMPERS {
        let Some((store, url, schema)) = fresh_with_schema().await else {
            return;
        };
        cessio_store::contract::seed_every_table(&store).await;
        let client = raw(&url, &schema).await;
        let key: i64 = client
            .query_one(tamper.key, &[])
            .await
            .unwrap_or_else(|e| panic!("{tamper:?}: {e}"))
            .get(0);
        let (sql, names) = tamper.with_key(key);
        client
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let report = store.verify().await.unwrap();
        cessio_store::contract::assert_named(tamper, &names, &report);
    }
}

/// A deleted idempotency record cannot make a retried request apply twice: the writer
/// decides retries on the log.
#[tokio::test]
async fn r_history_a_deleted_operations_row_does_not_apply_a_retry_twice() {
    let Some((store, url, schema)) = fresh_with_schema().await else {
        return;
    };
    let key = cessio_store::contract::seed_every_table(&store).await;
    raw(&url, &schema)
        .await
        .execute("DELETE FROM operations WHERE idempotency_key = $1", &[&key])
        .await
        .unwrap();
    cessio_store::contract::assert_retry_replayed_after_deletion(&store, key).await;
}

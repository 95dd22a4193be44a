//! The store contract on SQLite, plus tamper detection with raw SQL.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::sync::Arc;

use cessio_store::WriteConfig;
use cessio_store::contract::{DynStore, seed_history};
use cessio_store_sqlite::SqliteStore;

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn temp_path() -> std::path::PathBuf {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("cessio-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("store-{n}.db"));
    let _ = std::fs::remove_file(&path);
    path
}

async fn fresh() -> Option<DynStore> {
    Some(Arc::new(
        SqliteStore::open(&temp_path(), WriteConfig::default()).unwrap(),
    ))
}

cessio_store::contract_tests!(fresh());

async fn tampered(sql: &str) -> Vec<String> {
    let path = temp_path();
    let store: DynStore = Arc::new(SqliteStore::open(&path, WriteConfig::default()).unwrap());
    seed_history(&store).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(sql).unwrap();
    let report = store.verify().await.unwrap();
    report.problems.iter().map(|p| p.to_string()).collect()
}

#[tokio::test]
async fn r_history_verify_catches_an_edited_amount() {
    let problems = tampered("UPDATE transfers SET amount = 99 WHERE id = 3").await;
    assert!(problems[0].starts_with("transfer 3: hash"), "{problems:?}");
}

#[tokio::test]
async fn r_history_verify_catches_a_deleted_row() {
    let problems = tampered("DELETE FROM transfers WHERE id = 4").await;
    assert!(problems[0].contains("expected id 4"), "{problems:?}");
}

#[tokio::test]
async fn r_history_verify_catches_a_deleted_last_row() {
    let problems =
        tampered("DELETE FROM transfers WHERE id = (SELECT MAX(id) FROM transfers)").await;
    assert!(
        problems.iter().any(|p| p.starts_with("ledger head")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn r_conserve_verify_catches_an_edited_balance() {
    let problems =
        tampered("UPDATE accounts SET credits_posted = credits_posted + 1 WHERE kind = 'holder' AND id = (SELECT MIN(id) FROM accounts WHERE kind = 'holder')").await;
    assert!(
        problems.iter().any(|p| p.contains("differs from history")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn r_history_verify_catches_a_rewritten_chain_row_with_recomputed_balances() {
    // Changing who acted is caught even though no balance moves.
    let problems = tampered("UPDATE transfers SET acting_user = 'mallory' WHERE id = 2").await;
    assert_eq!(
        problems,
        vec!["transfer 2: hash does not match the chain (the row was edited)"]
    );
}

#[test]
fn bad_urls_get_clear_errors() {
    let e = SqliteStore::open_url("mysql://x", WriteConfig::default()).unwrap_err();
    assert_eq!(e.code(), "database_url_invalid");
    let e = SqliteStore::open_url("sqlite://", WriteConfig::default()).unwrap_err();
    assert_eq!(e.code(), "database_url_invalid");
    let e = SqliteStore::open_url("sqlite:///nonexistent-dir/x/y.db", WriteConfig::default())
        .unwrap_err();
    assert_eq!(e.code(), "database_unavailable", "{e}");
}

/// A register written before F1 kept its days gets them from its history when the
/// migration runs: the same sums, day by day, as the writer kept.
#[tokio::test]
async fn migration_fills_f1s_kept_days_from_the_history() {
    let path = temp_path();
    let kept = |conn: &rusqlite::Connection| -> Vec<cessio_store::summary_days::DayRow> {
        let mut st = conn
            .prepare(cessio_store::summary_days::STORED_SQL)
            .unwrap();
        let rows = st
            .query_map([], |r| {
                Ok((
                    (
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ),
                    r.get(7)?,
                    r.get(8)?,
                ))
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        cessio_store::summary_days::steps(rows)
    };
    {
        let store: DynStore = Arc::new(SqliteStore::open(&path, WriteConfig::default()).unwrap());
        cessio_store::contract::f1_as_of_a_past_day_reads_the_sums_kept_for_that_day(store).await;
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let written = kept(&conn);
    assert_eq!(written.len(), 8, "the two banks' steps: {written:?}");
    conn.execute_batch(
        "DROP TABLE holding_paths; DROP TABLE party_summary_days;
         DELETE FROM schema_migrations WHERE version >= 14;",
    )
    .unwrap();
    let store: DynStore = Arc::new(SqliteStore::open(&path, WriteConfig::default()).unwrap());
    assert_eq!(kept(&conn), written);
    assert!(store.verify().await.unwrap().ok());
}

#[tokio::test]
async fn reopening_keeps_everything_and_continues_the_chain() {
    let path = temp_path();
    {
        let store: DynStore = Arc::new(SqliteStore::open(&path, WriteConfig::default()).unwrap());
        seed_history(&store).await;
    }
    let store: DynStore = Arc::new(SqliteStore::open(&path, WriteConfig::default()).unwrap());
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.transfers, 6);
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
    store
        .submit(cessio_store::contract::op(
            "after-reopen",
            cessio_store::contract::cede(1, a, b, 5),
        ))
        .await
        .unwrap();
    assert!(store.verify().await.unwrap().ok());
}

/// Takes a register back to before migration 7 (delegation scopes and end dates), and so
/// before migration 8 (the web layer's sessions, logins in progress and throttle) and
/// migration 9 (the log: reopened, the register adopts it) and migration 10 (the
/// parties' feeds, filled from the history).
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
    let path = temp_path();
    let store: DynStore = Arc::new(SqliteStore::open(&path, WriteConfig::default()).unwrap());
    seed_history(&store).await;
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(UNDO_MIGRATION_7).unwrap();
    conn.execute_batch(
        "INSERT INTO users (id, username, display_name, password_hash, pin_hash, role, created_at)
           VALUES (5, 'studio', 'Studio', 'h', 'p', 'user', 10);
         INSERT INTO delegations (user_id, party, created_at) VALUES (5, 1, 20);
         INSERT INTO audit_log (at, actor, action, detail) VALUES (20, 'operatore#1', 'delegate', 'user 5 party 1');
         INSERT INTO delegations (user_id, party, created_at, revoked_at) VALUES (5, 2, 30, 40);
         INSERT INTO audit_log (at, actor, action, detail) VALUES (40, 'operatore#2', 'revoke_delegation', 'user 5 party 2');",
    )
    .unwrap();
    drop(conn);
    let store: DynStore = Arc::new(SqliteStore::open(&path, WriteConfig::default()).unwrap());
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
    let path = temp_path();
    let store: DynStore = Arc::new(SqliteStore::open(&path, WriteConfig::default()).unwrap());
    seed_history(&store).await;
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(UNDO_MIGRATION_7).unwrap();
    conn.execute_batch(
        "DROP INDEX accounts_holder_changes;
         DROP INDEX f24_choices_party_id;
         ALTER TABLE accounts DROP COLUMN last_transfer;
         DELETE FROM schema_migrations WHERE version = 6;",
    )
    .unwrap();
    drop(conn);
    let store: DynStore = Arc::new(SqliteStore::open(&path, WriteConfig::default()).unwrap());
    let report = store.verify().await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let zero: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM accounts WHERE last_transfer = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(zero, 0, "every seeded account has moved");
}

/// F1's kept cedibilità trusts each account's last transfer: `verify` recomputes it.
#[tokio::test]
async fn verify_catches_an_account_whose_last_transfer_is_wrong() {
    let problems = tampered(
        "UPDATE accounts SET last_transfer = 0 WHERE id = (SELECT MIN(id) FROM accounts WHERE kind = 'holder')",
    )
    .await;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("last transfer recorded 0")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn f1_summary_verify_catches_an_edited_summary() {
    let problems = tampered("UPDATE party_summary SET amount = amount + 1 WHERE party = (SELECT MIN(party) FROM party_summary)").await;
    assert!(
        problems.iter().any(|p| p.contains("F1 summary")),
        "{problems:?}"
    );
}

/// SQLite's plan for a generated query with its parameters bound, one step per `; `.
fn query_plan(
    conn: &rusqlite::Connection,
    sql: &str,
    values: Vec<cessio_store::SqlValue>,
) -> String {
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .expect("the query prepares");
    let rows: Vec<String> = stmt
        .query_map(
            rusqlite::params_from_iter(values.into_iter().map(|v| match v {
                cessio_store::SqlValue::Int(i) => rusqlite::types::Value::Integer(i),
                cessio_store::SqlValue::Text(t) => rusqlite::types::Value::Text(t),
            })),
            |r| r.get(3),
        )
        .expect("the plan is read")
        .map(|r| r.expect("a plan row"))
        .collect();
    rows.join("; ")
}

/// One party's holdings (F5's list, F6's choices) are read through the holder index, not by
/// walking every account of the register: the bank workload slowed from 480 to 150
/// operations/s as its register grew, because the party sat behind an `OR` the planner
/// could not use.
#[tokio::test]
async fn one_partys_holdings_are_read_through_the_holder_index() {
    let path = temp_path();
    let store: DynStore = Arc::new(SqliteStore::open(&path, WriteConfig::default()).unwrap());
    seed_history(&store).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let plan = |query: &cessio_store::HoldingQuery| {
        query_plan(&conn, &query.sql(|n| format!("?{n}")), query.params())
    };
    let one = plan(&cessio_store::HoldingQuery::of(1));
    assert!(one.contains("USING INDEX accounts_holder"), "{one}");
    let rata = plan(&cessio_store::HoldingQuery::of_rata(1, 7));
    // One holding: a point lookup by rata and party (the holder index or the unique key).
    assert!(
        rata.starts_with("SEARCH a USING INDEX") && rata.contains("rata=? AND kind=? AND party=?")
            || rata.contains("accounts_holder (party=? AND rata=?)"),
        "{rata}"
    );
    // The register-wide list (no party) still walks the accounts in id order, in pages.
    let all = plan(&cessio_store::HoldingQuery {
        party: None,
        ..cessio_store::HoldingQuery::of(1)
    });
    assert!(!all.contains("accounts_holder"), "{all}");
}

/// F3 (R-ANSWER) finds what awaits an answer by receiving party and cedente in one index
/// range: through the receiving party's index alone it walked every movement a bank ever
/// received, answered or not, and a national replay spent half its time there.
#[tokio::test]
async fn r_answer_what_awaits_an_answer_is_found_by_receiving_party_and_cedente() {
    let path = temp_path();
    let store: DynStore = Arc::new(SqliteStore::open(&path, WriteConfig::default()).unwrap());
    seed_history(&store).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let plan = |query: &cessio_store::EntryQuery| {
        let (sql, values) = query.sql(|n| format!("?{n}"));
        query_plan(&conn, &sql, values)
    };
    let awaiting = |cedente: Option<i64>| cessio_store::EntryQuery {
        role: cessio_store::EntryRole::Received,
        awaiting_answer: true,
        cessions_only: true,
        counterparty: cedente,
        type_key: Some("superbonus".into()),
        ..cessio_store::EntryQuery::of(1)
    };
    let one = plan(&awaiting(Some(2)));
    assert!(
        one.contains("transfers_awaiting (counterparty=? AND party=?)"),
        "{one}"
    );
    let all = plan(&awaiting(None));
    assert!(all.contains("transfers_awaiting (counterparty=?)"), "{all}");
}

/// A database read does not give away a live cookie: the session, the strong login in
/// progress and the throttle keep only what the web layer cannot be signed in with.
#[tokio::test]
async fn only_the_hash_of_a_session_cookie_is_stored() {
    let path = temp_path();
    let store: DynStore = Arc::new(SqliteStore::open(&path, WriteConfig::default()).unwrap());
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
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows: String = conn
        .query_row(
            "SELECT group_concat(token_hash || data, '|') || (SELECT group_concat(key_hash || data, '|') FROM login_flows) FROM web_sessions",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!rows.contains(cookie) && !rows.contains(flow), "{rows}");
    assert!(rows.contains(cessio_store::SecretKey::of(cookie).as_str()));
}

/// The tamper suite: an edit, a deletion and an insertion in every table of the register,
/// one at a time on a register of its own; `verify` names the table and key of each.
#[tokio::test]
async fn r_history_verify_names_every_tampered_table_and_key() {
    for tamper in cessio_store::contract::TAMPERS {
        let path = temp_path();
        let store: DynStore = Arc::new(SqliteStore::open(&path, WriteConfig::default()).unwrap());
        cessio_store::contract::seed_every_table(&store).await;
        let conn = rusqlite::Connection::open(&path).unwrap();
        // Whoever edits the file directly is not held by its foreign keys.
        conn.execute_batch("PRAGMA foreign_keys=OFF").unwrap();
        let key: i64 = conn
            .query_row(tamper.key, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{tamper:?}: {e}"));
        let (sql, names) = tamper.with_key(key);
        conn.execute_batch(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let report = store.verify().await.unwrap();
        cessio_store::contract::assert_named(tamper, &names, &report);
    }
}

/// A deleted idempotency record cannot make a retried request apply twice: the writer
/// decides retries on the log.
#[tokio::test]
async fn r_history_a_deleted_operations_row_does_not_apply_a_retry_twice() {
    let path = temp_path();
    let store: DynStore = Arc::new(SqliteStore::open(&path, WriteConfig::default()).unwrap());
    let key = cessio_store::contract::seed_every_table(&store).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA foreign_keys=OFF").unwrap();
    conn.execute("DELETE FROM operations WHERE idempotency_key = ?1", [key])
        .unwrap();
    cessio_store::contract::assert_retry_replayed_after_deletion(&store, key).await;
}

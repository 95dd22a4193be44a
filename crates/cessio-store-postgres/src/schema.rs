//! Migrations, applied in order at start-up. The DDL mirrors the SQLite schema with
//! PostgreSQL types; keep the two in step.

use tokio_postgres::Client;

use cessio_store::StoreError;

/// Each entry is one migration; never edit a published one, append a new one.
const MIGRATIONS: &[&str] = &[r"
CREATE TABLE ledger_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_operation BIGINT NOT NULL,
    last_transfer BIGINT NOT NULL,
    last_hash TEXT NOT NULL,
    last_party BIGINT NOT NULL,
    last_credit BIGINT NOT NULL,
    last_rata BIGINT NOT NULL,
    last_account BIGINT NOT NULL,
    last_protocol TEXT NOT NULL
);
INSERT INTO ledger_head VALUES (1, 0, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, 0, 0, 0, '');

CREATE TABLE parties (
    id BIGINT PRIMARY KEY,
    cf TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    deceased BOOLEAN NOT NULL DEFAULT false,
    created_at BIGINT NOT NULL
);

CREATE TABLE credits (
    id BIGINT PRIMARY KEY,
    protocol TEXT NOT NULL UNIQUE,
    type_key TEXT NOT NULL,
    beneficiary BIGINT NOT NULL REFERENCES parties (id),
    holder BIGINT NOT NULL REFERENCES parties (id),
    origin TEXT NOT NULL,
    expense_year INTEGER NOT NULL,
    communicated_on DATE NOT NULL,
    tracciabile BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE rate (
    id BIGINT PRIMARY KEY,
    credit BIGINT NOT NULL REFERENCES credits (id),
    idx INTEGER NOT NULL,
    year INTEGER NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    codice_tributo TEXT NOT NULL,
    codice_univoco TEXT NOT NULL UNIQUE
);
CREATE INDEX rate_credit ON rate (credit);

CREATE TABLE accounts (
    id BIGINT PRIMARY KEY,
    rata BIGINT NOT NULL REFERENCES rate (id),
    kind TEXT NOT NULL,
    party BIGINT NOT NULL,
    debits_pending BIGINT NOT NULL,
    debits_posted BIGINT NOT NULL,
    credits_pending BIGINT NOT NULL,
    credits_posted BIGINT NOT NULL,
    UNIQUE (rata, kind, party)
);
CREATE INDEX accounts_holder ON accounts (party, rata) WHERE kind = 'holder';

CREATE TABLE operations (
    id BIGINT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    request_hash TEXT NOT NULL,
    acting_user TEXT NOT NULL,
    on_behalf_of BIGINT,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    receipt TEXT NOT NULL
);

CREATE TABLE transfers (
    id BIGINT PRIMARY KEY,
    operation BIGINT NOT NULL REFERENCES operations (id),
    rata BIGINT NOT NULL,
    debit BIGINT NOT NULL,
    credit BIGINT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    kind TEXT NOT NULL,
    phase TEXT NOT NULL,
    pending_id BIGINT UNIQUE,
    at BIGINT NOT NULL,
    acting_user TEXT NOT NULL,
    party BIGINT,
    counterparty BIGINT,
    hash TEXT NOT NULL
);
CREATE INDEX transfers_operation ON transfers (operation);
CREATE INDEX transfers_rata ON transfers (rata);
"];

pub async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let err = StoreError::backend;
    // Concurrent start-ups may race on CREATE TABLE IF NOT EXISTS; the loser retries.
    for attempt in 0..3 {
        match client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .await
        {
            Ok(()) => break,
            Err(e) if attempt < 2 => tracing::debug!(error = %e, "retrying migration table"),
            Err(e) => return Err(err(e)),
        }
    }
    let tx = client.transaction().await.map_err(err)?;
    // One migrator at a time; others wait here and then find nothing to do.
    tx.batch_execute("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
        .await
        .map_err(err)?;
    let done: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(err)?
        .get(0);
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        if version <= done {
            continue;
        }
        tx.batch_execute(sql).await.map_err(err)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(err)?;
    }
    tx.commit().await.map_err(err)?;
    Ok(())
}

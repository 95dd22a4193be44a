//! Migrations, applied in order at start-up inside one transaction each.

use rusqlite::Connection;

use cessio_store::StoreError;

use crate::db_err;

/// Each entry is one migration; never edit a published one, append a new one. Public for
/// the test that compares the two backends' schemas after every migration.
pub const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE ledger_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_operation INTEGER NOT NULL,
    last_transfer INTEGER NOT NULL,
    last_hash TEXT NOT NULL,
    last_party INTEGER NOT NULL,
    last_credit INTEGER NOT NULL,
    last_rata INTEGER NOT NULL,
    last_account INTEGER NOT NULL,
    last_protocol TEXT NOT NULL
);
INSERT INTO ledger_head VALUES (1, 0, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, 0, 0, 0, '');

CREATE TABLE parties (
    id INTEGER PRIMARY KEY,
    cf TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    deceased INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE credits (
    id INTEGER PRIMARY KEY,
    protocol TEXT NOT NULL UNIQUE,
    type_key TEXT NOT NULL,
    beneficiary INTEGER NOT NULL REFERENCES parties (id),
    holder INTEGER NOT NULL REFERENCES parties (id),
    origin TEXT NOT NULL,
    expense_year INTEGER NOT NULL,
    communicated_on TEXT NOT NULL,
    tracciabile INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE rate (
    id INTEGER PRIMARY KEY,
    credit INTEGER NOT NULL REFERENCES credits (id),
    idx INTEGER NOT NULL,
    year INTEGER NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    codice_tributo TEXT NOT NULL,
    codice_univoco TEXT NOT NULL UNIQUE
);
CREATE INDEX rate_credit ON rate (credit);

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    rata INTEGER NOT NULL REFERENCES rate (id),
    kind TEXT NOT NULL,
    party INTEGER NOT NULL,
    debits_pending INTEGER NOT NULL,
    debits_posted INTEGER NOT NULL,
    credits_pending INTEGER NOT NULL,
    credits_posted INTEGER NOT NULL,
    UNIQUE (rata, kind, party)
);
CREATE INDEX accounts_holder ON accounts (party, rata) WHERE kind = 'holder';

CREATE TABLE operations (
    id INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    request_hash TEXT NOT NULL,
    acting_user TEXT NOT NULL,
    on_behalf_of INTEGER,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    receipt TEXT NOT NULL
);

CREATE TABLE transfers (
    id INTEGER PRIMARY KEY,
    operation INTEGER NOT NULL REFERENCES operations (id),
    rata INTEGER NOT NULL,
    debit INTEGER NOT NULL,
    credit INTEGER NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    kind TEXT NOT NULL,
    phase TEXT NOT NULL,
    pending_id INTEGER UNIQUE,
    at INTEGER NOT NULL,
    acting_user TEXT NOT NULL,
    party INTEGER,
    counterparty INTEGER,
    disclose INTEGER NOT NULL DEFAULT 0,
    hash TEXT NOT NULL
);
CREATE INDEX transfers_rata ON transfers (rata);
CREATE INDEX transfers_party ON transfers (party, at);
CREATE INDEX transfers_counterparty ON transfers (counterparty, at);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    pin_hash TEXT NOT NULL,
    pin_failures INTEGER NOT NULL DEFAULT 0,
    party INTEGER REFERENCES parties (id),
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE delegations (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    party INTEGER NOT NULL REFERENCES parties (id),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX delegations_user ON delegations (user_id, party);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    token_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
",
    r"
-- F5/F6: the rate of a ten-instalment split name the rata they replace; the F24 choice of
-- each holding (R-F24-CHOICE) and the operator's record of each party's overdue debts
-- (R-BAN-100K/1500), both append-only: the current state is the last row.
ALTER TABLE credits ADD COLUMN split_of INTEGER REFERENCES rate (id);
CREATE INDEX credits_split_of ON credits (split_of) WHERE split_of IS NOT NULL;

CREATE TABLE f24_choices (
    id INTEGER PRIMARY KEY,
    operation INTEGER NOT NULL REFERENCES operations (id),
    rata INTEGER NOT NULL REFERENCES rate (id),
    party INTEGER NOT NULL REFERENCES parties (id),
    declared INTEGER NOT NULL,
    on_date TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX f24_choices_party ON f24_choices (party, rata, id);

CREATE TABLE debt_positions (
    id INTEGER PRIMARY KEY,
    operation INTEGER NOT NULL REFERENCES operations (id),
    party INTEGER NOT NULL REFERENCES parties (id),
    position TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX debt_positions_party ON debt_positions (party, id);
",
    r"
-- F9: the operator's register, append-only (R-HISTORY): bank clients (R-BANK-CLIENT),
-- suspensions and their end (R-SUSP), risk hits, annulments on request. `data` is the
-- entry's JSON payload, owned by the app layer.
CREATE TABLE operator_events (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    transfer INTEGER,
    party INTEGER,
    counterparty INTEGER,
    data TEXT NOT NULL
);
CREATE INDEX operator_events_kind ON operator_events (kind, id);
CREATE INDEX operator_events_transfer ON operator_events (transfer) WHERE transfer IS NOT NULL;
CREATE INDEX operator_events_party ON operator_events (party, id);
CREATE INDEX operator_events_counterparty ON operator_events (counterparty, id);
",
    r"
-- F1's sums kept with the ledger: per party, type, reference year, codice tributo, side
-- (received 1 / sent 0), kind and state, the amount F1 shows today. The writer updates it
-- in the transaction of each batch of transfers (`cessio_store::summary_update_sql`);
-- `verify` recomputes it from the history. Filled here from the history already written.
CREATE TABLE party_summary (
    party INTEGER NOT NULL,
    type_key TEXT NOT NULL,
    year INTEGER NOT NULL,
    codice_tributo TEXT NOT NULL,
    received INTEGER NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    amount INTEGER NOT NULL,
    PRIMARY KEY (party, type_key, year, codice_tributo, received, kind, state)
) WITHOUT ROWID;
INSERT INTO party_summary (party, type_key, year, codice_tributo, received, kind, state, amount)
SELECT s.p, c.type_key, r.year, r.codice_tributo, s.received, s.kind, s.state, CAST(SUM(s.amount) AS BIGINT)
  FROM (SELECT t.party AS p, CAST(0 AS INTEGER) AS received, t.rata AS rata, t.kind AS kind, CASE WHEN t.phase = 'posted' THEN 'accepted' WHEN a.id IS NULL THEN 'pending' WHEN a.phase = 'post_pending' THEN 'accepted' WHEN a.party = t.party THEN 'annulled' ELSE 'refused' END AS state, t.amount AS amount
          FROM transfers t LEFT JOIN transfers a ON a.pending_id = t.id
         WHERE t.phase IN ('posted', 'pending') AND t.party IS NOT NULL AND (t.counterparty IS NULL OR t.counterparty <> t.party)
        UNION ALL
        SELECT t.counterparty, CAST(1 AS INTEGER), t.rata, t.kind, CASE WHEN t.phase = 'posted' THEN 'accepted' WHEN a.id IS NULL THEN 'pending' WHEN a.phase = 'post_pending' THEN 'accepted' WHEN a.party = t.party THEN 'annulled' ELSE 'refused' END, t.amount
          FROM transfers t LEFT JOIN transfers a ON a.pending_id = t.id
         WHERE t.phase IN ('posted', 'pending') AND t.counterparty IS NOT NULL) s
  JOIN rate r ON r.id = s.rata
  JOIN credits c ON c.id = r.credit
 GROUP BY s.p, c.type_key, r.year, r.codice_tributo, s.received, s.kind, s.state;
",
    r"
-- R-ECO-2018: the beneficiary of an option communication declared the no-tax area, which
-- lets the credit reach banks and financial intermediaries along its whole chain.
ALTER TABLE credits ADD COLUMN no_tax_area INTEGER NOT NULL DEFAULT 0;
",
    r"
-- Which holdings changed since a moment: each account records the id of the last transfer
-- that moved it, so that a reader keeping F1's cedibilità of a party's holdings (one row
-- per holding, hundreds of thousands for a bank) recomputes only what changed since it last
-- looked. Filled here from the history already written (one pass), and checked by `verify`.
ALTER TABLE accounts ADD COLUMN last_transfer INTEGER NOT NULL DEFAULT 0;
UPDATE accounts SET last_transfer = m.last
  FROM (SELECT account, MAX(id) AS last
          FROM (SELECT debit AS account, id FROM transfers
                UNION ALL
                SELECT credit AS account, id FROM transfers)
         GROUP BY account) AS m
 WHERE m.account = accounts.id;
CREATE INDEX accounts_holder_changes ON accounts (party, last_transfer) WHERE kind = 'holder';
CREATE INDEX f24_choices_party_id ON f24_choices (party, id);
",
    r"
-- Delegations granted by the titolare from the app, not only by the operator: a scope
-- (consultazione, or also disposizione), an optional last day (inclusive, Europe/Rome), who
-- granted and who revoked, and the operation that recorded it (idempotency). Existing rows
-- keep what they allowed: disposizione, with no end date. Their actors come from the audit
-- log that recorded them, where found. The audit trail of each change from now on is an
-- entry of the operator's register (`operator_events`), written in the same transaction.
ALTER TABLE delegations ADD COLUMN scope TEXT NOT NULL DEFAULT 'disposizione' CHECK (scope IN ('consultazione', 'disposizione'));
ALTER TABLE delegations ADD COLUMN valid_until TEXT;
ALTER TABLE delegations ADD COLUMN granted_by TEXT;
ALTER TABLE delegations ADD COLUMN revoked_by TEXT;
ALTER TABLE delegations ADD COLUMN operation INTEGER;
UPDATE delegations SET granted_by = (
    SELECT a.actor FROM audit_log a
     WHERE a.action = 'delegate' AND a.at = delegations.created_at
       AND a.detail = 'user ' || delegations.user_id || ' party ' || delegations.party
     ORDER BY a.id LIMIT 1);
UPDATE delegations SET revoked_by = (
    SELECT a.actor FROM audit_log a
     WHERE a.action = 'revoke_delegation' AND a.at = delegations.revoked_at
       AND a.detail = 'user ' || delegations.user_id || ' party ' || delegations.party
     ORDER BY a.id LIMIT 1)
 WHERE revoked_at IS NOT NULL;
CREATE INDEX delegations_party ON delegations (party, id);
",
    r"
-- What the web layer keeps between requests, so that every process serving the register
-- shares it and a restart signs no one out (cessio_store::sessions): browser sessions,
-- strong logins between the redirect to the provider and its return, and the login
-- throttle's windows. A cookie's value is never stored, only its SHA-256 (token_hash,
-- key_hash). Every row has an end; reads ignore expired rows and a sweep deletes them.
CREATE TABLE web_sessions (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL,
    data TEXT NOT NULL,
    notice TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id, expires_at);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
CREATE TABLE login_flows (
    key_hash TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX login_flows_expiry ON login_flows (expires_at);
CREATE TABLE login_attempts (
    key TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    attempts INTEGER NOT NULL
);
CREATE INDEX login_attempts_window ON login_attempts (window_start);
",
    r"
-- The register's log (cessio_store::log): one hash-chained entry per state change, written
-- in the transaction that makes it; the other tables are its projections, which `verify`
-- rebuilds from it. An operation's entry carries its idempotency key (unique: the writer
-- decides a retry on the log, not on `operations`), request hash and receipt. The head
-- keeps the last entry and its hash. A register written before the log has its rows
-- recorded as the log's first entries when it is opened (`adopt`).
CREATE TABLE log (
    seq INTEGER PRIMARY KEY,
    operation INTEGER,
    idempotency_key TEXT UNIQUE,
    request_hash TEXT,
    on_behalf_of INTEGER,
    receipt TEXT,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    at INTEGER NOT NULL,
    body TEXT NOT NULL,
    hash TEXT NOT NULL
);
ALTER TABLE ledger_head ADD COLUMN log_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ledger_head ADD COLUMN log_hash TEXT NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000';
",
    r"
-- Each party's feed (cessio_store::feed): the transfers that concern it, its own side or
-- the other, and for an answer the two sides of what it answers, so that a cedente reads
-- the refusal of its cession without replaying what it sent. The writer fills it in each
-- batch's transaction; `verify` recomputes it from the transfers. Filled here from the
-- history already written.
CREATE TABLE party_feed (
    party INTEGER NOT NULL,
    transfer INTEGER NOT NULL,
    PRIMARY KEY (party, transfer)
) WITHOUT ROWID;
INSERT INTO party_feed (party, transfer)
SELECT DISTINCT c.p, c.transfer
  FROM (SELECT t.party AS p, t.id AS transfer FROM transfers t
        UNION ALL SELECT t.counterparty, t.id FROM transfers t
        UNION ALL SELECT o.party, t.id FROM transfers t JOIN transfers o ON o.id = t.pending_id
        UNION ALL SELECT o.counterparty, t.id FROM transfers t JOIN transfers o ON o.id = t.pending_id) c
 WHERE c.p IS NOT NULL;
",
    r"
-- Webhook subscriptions (cessio_store::webhooks): kept outside the register, like the web
-- layer's sessions (they decide no fact of it, and hold the secret their deliveries are
-- signed with). Each keeps its cursor in the party's events and where its deliveries
-- stand; a deliverer leases the due ones (`lease_until`) so that processes sharing the
-- register do not post the same events at once. `user_id` subscribed it: a subscription
-- ends when that user may no longer see the party.
CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY,
    party INTEGER NOT NULL REFERENCES parties (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    cursor TEXT NOT NULL,
    failures INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER,
    delivered INTEGER NOT NULL,
    last_attempt_at INTEGER,
    last_status INTEGER,
    last_error TEXT,
    last_delivered_at INTEGER
);
CREATE INDEX webhooks_party ON webhooks (party, id);
CREATE INDEX webhooks_due ON webhooks (next_attempt_at) WHERE revoked_at IS NULL;
",
    r"
-- Bulk jobs (cessio_store::jobs): kept outside the register, like the webhooks. What a job
-- applies goes through the register's operations, each under a key of its own; the job is
-- the work list (its file), where it stands, and each row's outcome. One unfinished job per
-- owner and content (`digest`): the same file sent again before its job ends is that job.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    runs_as TEXT NOT NULL,
    party INTEGER REFERENCES parties (id),
    accept INTEGER,
    digest TEXT NOT NULL,
    file BLOB NOT NULL,
    state TEXT NOT NULL,
    total_rows INTEGER NOT NULL,
    done_rows INTEGER NOT NULL,
    applied INTEGER NOT NULL,
    already INTEGER NOT NULL,
    refused INTEGER NOT NULL,
    error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER,
    lease_until INTEGER,
    submissions INTEGER NOT NULL
);
CREATE UNIQUE INDEX jobs_open ON jobs (owner, digest) WHERE state <> 'done';
CREATE INDEX jobs_owner ON jobs (owner, id);
CREATE INDEX jobs_waiting ON jobs (id) WHERE state IN ('queued', 'running');
CREATE TABLE job_rows (
    job INTEGER NOT NULL REFERENCES jobs (id),
    line INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (job, line)
);
",
    r"
-- F3's selection of what awaits an answer (R-ANSWER), by receiving party and cedente. Read
-- by every answer and every F3 page: through the receiving party's index alone it walked
-- every movement the party ever received (a national bank's hundred thousand at 0.01 of
-- the national register), answered or not. Only movements still in their pending phase
-- are indexed: posted ones (F24 uses, splits) are never answered.
CREATE INDEX transfers_awaiting ON transfers (counterparty, party) WHERE phase = 'pending';
",
    r"
-- F1 as of a past day (cessio_store::summary_days): per summary key, one row per Rome day
-- (yyyymmdd) on which the key changed, with what it summed at the end of that day. The
-- writer keeps it with `party_summary`; `verify` recomputes it from the history. Filled
-- from the history already written by the migration's code (the day is Rome's, which
-- SQLite cannot compute).
CREATE TABLE party_summary_days (
    party INTEGER NOT NULL,
    type_key TEXT NOT NULL,
    year INTEGER NOT NULL,
    codice_tributo TEXT NOT NULL,
    received INTEGER NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    day INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    PRIMARY KEY (party, type_key, year, codice_tributo, received, kind, state, day)
) WITHOUT ROWID;
",
    r"
-- §5 paths kept with the projections (cessio_store::paths), so that F1, F2 and a cession
-- read a holding's path rather than replay its rata's history. `cession_paths`: the path
-- each cession carries to its cessionario when accepted, as the app decided it, and the
-- Rome day (yyyymmdd) it was registered; recorded in the log. `holding_paths`: per holder
-- account that received the rata by an option or a cession, or had a seizure, the merged
-- path; kept by the writer, recomputed by `verify`. Filled here from the history by the
-- migration's code, with whatever paths `cession_paths` already holds: the cessions
-- registered before have none, so the holdings they reached are marked `unknown` and read
-- from their history.
CREATE TABLE IF NOT EXISTS cession_paths (
    transfer INTEGER PRIMARY KEY,
    before_cutoff INTEGER NOT NULL,
    from_cutoff INTEGER NOT NULL,
    bank_client INTEGER NOT NULL,
    received_on INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS holding_paths (
    account INTEGER PRIMARY KEY,
    before_cutoff INTEGER NOT NULL,
    from_cutoff INTEGER NOT NULL,
    bank_client INTEGER NOT NULL,
    received_on INTEGER,
    seized INTEGER NOT NULL,
    unknown INTEGER NOT NULL
);
",
];

/// The migration that creates `party_summary_days`, filled from the history in code.
const SUMMARY_DAYS_VERSION: i64 = 14;
/// The migration that creates the §5 paths' tables, `holding_paths` filled from the history.
const PATHS_VERSION: i64 = 15;

/// Fills `party_summary_days` from the history a register already holds, as `verify`
/// recomputes it: a party at a time.
fn fill_summary_days(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    let mut history = tx
        .prepare(&cessio_store::summary_days::history_of_party_sql("?1"))
        .map_err(db_err)?;
    let mut st = tx
        .prepare(
            "INSERT INTO party_summary_days (party, type_key, year, codice_tributo, received, kind, state, day, amount)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(db_err)?;
    for party in crate::kept_parties(tx)? {
        for ((party, type_key, year, code, received, kind, state), day, amount) in
            crate::party_days(&mut history, party)?
        {
            st.execute(rusqlite::params![
                party, type_key, year, code, received, kind, state, day, amount
            ])
            .map_err(db_err)?;
        }
    }
    Ok(())
}

pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let err = StoreError::backend;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    )
    .map_err(err)?;
    let done: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(i + 1).unwrap_or(i64::MAX);
        if version <= done {
            continue;
        }
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        tx.execute_batch(sql).map_err(err)?;
        if version == SUMMARY_DAYS_VERSION {
            fill_summary_days(&tx)?;
        }
        if version == PATHS_VERSION {
            tx.execute_batch(&cessio_store::paths::fill_sql())
                .map_err(err)?;
        }
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES (?1)",
            [version],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(())
}

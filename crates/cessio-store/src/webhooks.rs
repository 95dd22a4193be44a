//! Webhook subscriptions: a party's events, pushed to an address it registered, and where
//! each delivery stands. Like the web layer's sessions they are kept outside the register
//! (`crate::log::TABLES` does not project them): they decide no fact of the register and
//! hold a secret, which the hash-chained log must not carry. What they deliver is read from
//! the register's own history (the events), from the cursor each subscription keeps.
//!
//! Any process serving the register may deliver: a deliverer first claims the
//! subscriptions that are due ([`claim_due_sql`]), which leases each to it for a while, so
//! two processes do not post the same events at once; a lease that runs out (its process
//! died) is claimed again. Delivery is at least once: a receiver that answered and was not
//! heard gets the same events again, each with its stable id.
//!
//! The SQL is written once here for both backends, with `placeholder(n)` spelling the
//! n-th parameter; times are microseconds since the epoch.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use cessio_core::ledger::PartyId;

/// A subscription's addresses per party, at most.
pub const MAX_PER_PARTY: usize = 10;

/// A subscription to record.
#[derive(Clone, Debug)]
pub struct NewWebhook {
    pub party: PartyId,
    /// The user who subscribed: deliveries go on only while it may see the party.
    pub user: i64,
    pub url: String,
    /// The key its deliveries are signed with (HMAC-SHA256), shown once to the subscriber.
    pub secret: String,
    pub created_by: String,
    pub at: DateTime<Utc>,
    /// The events cursor the first delivery starts after.
    pub cursor: String,
}

/// A subscription and where its deliveries stand.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: i64,
    pub party: PartyId,
    pub user: i64,
    pub url: String,
    #[serde(skip_serializing)]
    pub secret: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Where the next delivery starts.
    pub cursor: String,
    /// Failed deliveries since the last one that succeeded.
    pub failures: u32,
    pub next_attempt_at: DateTime<Utc>,
    /// Events delivered in all.
    pub delivered: i64,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last attempt, if the receiver answered.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub last_delivered_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret signs the deliveries: never in a log line.
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("party", &self.party)
            .field("url", &self.url)
            .field("failures", &self.failures)
            .field("next_attempt_at", &self.next_attempt_at)
            .finish_non_exhaustive()
    }
}

/// How one delivery went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver took the events (a 2xx): the cursor moves past them.
    Delivered {
        cursor: String,
        events: i64,
        status: u16,
        next_attempt_at: DateTime<Utc>,
    },
    /// Nothing to send: the subscription is looked at again later.
    Idle { next_attempt_at: DateTime<Utc> },
    /// The receiver refused or could not be reached: the same events are sent again at
    /// `next_attempt_at`.
    Failed {
        status: Option<u16>,
        error: String,
        next_attempt_at: DateTime<Utc>,
    },
}

/// The columns [`webhook`] reads, in order.
pub const WEBHOOK_COLUMNS: &str = "id, party, user_id, url, secret, created_by, created_at, revoked_at, cursor, failures, next_attempt_at, delivered, last_attempt_at, last_status, last_error, last_delivered_at";

/// `SELECT {WEBHOOK_COLUMNS}`.
pub fn webhook<R: crate::rows::Columns>(r: &R) -> Result<Webhook, R::Error> {
    use crate::rows::micros_to_time;
    Ok(Webhook {
        id: r.int(0)?,
        party: r.int(1)?,
        user: r.int(2)?,
        url: r.text(3)?,
        secret: r.text(4)?,
        created_by: r.text(5)?,
        created_at: micros_to_time(r.int(6)?),
        revoked_at: r.opt_int(7)?.map(micros_to_time),
        cursor: r.text(8)?,
        failures: u32::try_from(r.int(9)?).unwrap_or(u32::MAX),
        next_attempt_at: micros_to_time(r.int(10)?),
        delivered: r.int(11)?,
        last_attempt_at: r.opt_int(12)?.map(micros_to_time),
        last_status: r.opt_int(13)?.and_then(|s| u16::try_from(s).ok()),
        last_error: r.opt_text(14)?,
        last_delivered_at: r.opt_int(15)?.map(micros_to_time),
    })
}

/// Records a subscription unless the party has [`MAX_PER_PARTY`] live ones: `?1` party,
/// `?2` url, `?3` secret, `?4` created_by, `?5` at, `?6` cursor, `?7` user. Returns the new
/// id, or no row when the party is at its cap.
pub fn insert_sql(p: impl Fn(usize) -> String) -> String {
    format!(
        "INSERT INTO webhooks (party, user_id, url, secret, created_by, created_at, cursor, failures, next_attempt_at, delivered)
         SELECT CAST({party} AS BIGINT), CAST({user} AS BIGINT), CAST({url} AS TEXT), CAST({secret} AS TEXT), CAST({by} AS TEXT),
                CAST({at} AS BIGINT), CAST({cursor} AS TEXT), 0, CAST({at} AS BIGINT), 0
          WHERE (SELECT COUNT(*) FROM webhooks WHERE party = CAST({party} AS BIGINT) AND revoked_at IS NULL) < {MAX_PER_PARTY}
         RETURNING id",
        party = p(1),
        url = p(2),
        secret = p(3),
        by = p(4),
        at = p(5),
        cursor = p(6),
        user = p(7)
    )
}

/// A party's subscriptions, the live ones first, newest first: `?1` party.
pub fn of_party_sql(p: impl Fn(usize) -> String) -> String {
    format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE party = {}
          ORDER BY revoked_at IS NOT NULL, id DESC LIMIT 100",
        p(1)
    )
}

/// Ends a live subscription of a party: `?1` party, `?2` id, `?3` at.
pub fn revoke_sql(p: impl Fn(usize) -> String) -> String {
    format!(
        "UPDATE webhooks SET revoked_at = CAST({} AS BIGINT) WHERE party = CAST({} AS BIGINT) AND id = CAST({} AS BIGINT) AND revoked_at IS NULL",
        p(3),
        p(1),
        p(2)
    )
}

/// Leases the live subscriptions due by `?1` and not leased to another deliverer until
/// `?2`, at most `?3`, the longest waiting first, and returns them. `skip_locked` is
/// PostgreSQL's `FOR UPDATE SKIP LOCKED`, so that concurrent deliverers do not wait on
/// each other's rows (SQLite has one writer at a time).
pub fn claim_due_sql(p: impl Fn(usize) -> String, skip_locked: bool) -> String {
    let bigint = |n: usize| format!("CAST({} AS BIGINT)", p(n));
    let lock = if skip_locked {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    format!(
        "UPDATE webhooks SET lease_until = {until}
          WHERE id IN (SELECT id FROM webhooks
                        WHERE revoked_at IS NULL AND next_attempt_at <= {now}
                          AND (lease_until IS NULL OR lease_until < {now})
                        ORDER BY next_attempt_at LIMIT {limit}{lock})
         RETURNING {WEBHOOK_COLUMNS}",
        now = bigint(1),
        until = bigint(2),
        limit = bigint(3)
    )
}

/// Whether any live subscription is due by `?1` and not leased: a read, so that a
/// deliverer that finds nothing due takes no write lock (SQLite's is the register's).
pub fn any_due_sql(p: impl Fn(usize) -> String) -> String {
    let now = format!("CAST({} AS BIGINT)", p(1));
    format!(
        "SELECT EXISTS (SELECT 1 FROM webhooks
                         WHERE revoked_at IS NULL AND next_attempt_at <= {now}
                           AND (lease_until IS NULL OR lease_until < {now}))"
    )
}

/// A delivery's outcome, releasing the lease: `?1` id, `?2` attempted at, `?3` next
/// attempt, `?4` cursor (unchanged when not delivered), `?5` events delivered (0),
/// `?6` delivered (1) or failed (0) or idle (2), `?7` status, `?8` error.
pub fn record_sql(p: impl Fn(usize) -> String) -> String {
    let cast = |n: usize, t: &str| format!("CAST({} AS {t})", p(n));
    let (id, at, next, cursor, events, outcome, status, error) = (
        cast(1, "BIGINT"),
        cast(2, "BIGINT"),
        cast(3, "BIGINT"),
        cast(4, "TEXT"),
        cast(5, "BIGINT"),
        cast(6, "BIGINT"),
        cast(7, "BIGINT"),
        cast(8, "TEXT"),
    );
    format!(
        "UPDATE webhooks SET lease_until = NULL, next_attempt_at = {next},
                cursor = CASE WHEN {outcome} = 1 THEN {cursor} ELSE cursor END,
                delivered = delivered + {events},
                failures = CASE WHEN {outcome} = 0 THEN failures + 1 WHEN {outcome} = 1 THEN 0 ELSE failures END,
                last_attempt_at = CASE WHEN {outcome} = 2 THEN last_attempt_at ELSE {at} END,
                last_status = CASE WHEN {outcome} = 2 THEN last_status ELSE {status} END,
                last_error = CASE WHEN {outcome} = 2 THEN last_error ELSE {error} END,
                last_delivered_at = CASE WHEN {outcome} = 1 THEN {at} ELSE last_delivered_at END
          WHERE id = {id}"
    )
}

/// The values [`record_sql`] binds after the id and the time, for one outcome.
pub fn record_values(d: &Delivery) -> (i64, Option<&str>, i64, i64, Option<i64>, Option<&str>) {
    match d {
        Delivery::Delivered {
            cursor,
            events,
            status,
            next_attempt_at,
        } => (
            next_attempt_at.timestamp_micros(),
            Some(cursor.as_str()),
            *events,
            1,
            Some(i64::from(*status)),
            None,
        ),
        Delivery::Idle { next_attempt_at } => {
            (next_attempt_at.timestamp_micros(), None, 0, 2, None, None)
        }
        Delivery::Failed {
            status,
            error,
            next_attempt_at,
        } => (
            next_attempt_at.timestamp_micros(),
            None,
            0,
            0,
            status.map(i64::from),
            Some(error.as_str()),
        ),
    }
}

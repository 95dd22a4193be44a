//! Bulk jobs: a file of communications to register (F8) or of codes to answer (F3), taken
//! at once and worked through in the background, row after row, with each row's outcome
//! kept. Like the webhooks they are kept outside the register (`crate::log::TABLES` does
//! not project them): what a job applies goes through the register's own operations, each
//! under a key derived from the row or the part of the file, so a job run twice, or a file
//! sent twice, applies nothing twice. The job itself is only the work list and its report.
//!
//! One unfinished job per submitter and file content: sending the same file again before
//! its job is done finds that job ([`submit_sql`]), which goes on from where it stood if it
//! had stopped; sent after, it is a new job, whose rows applied before are found applied
//! (an import's rows by their keys, an answer's by no longer awaiting an answer). A
//! runner leases a job ([`claim_sql`]) and saves each part's outcomes together with the
//! job's progress, so a runner that dies leaves the job where its last part ended, and
//! the lease running out lets another runner go on.
//!
//! The SQL is written once here for both backends, with `placeholder(n)` spelling the n-th
//! parameter; times are microseconds since the epoch.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use cessio_core::ledger::PartyId;

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// F8: a CSV file of option communications, registered row by row.
    Import,
    /// F3: a list of protocols or codici univoci, accepted or refused.
    Answer,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Import => "import",
            JobKind::Answer => "answer",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "import" => Some(JobKind::Import),
            "answer" => Some(JobKind::Answer),
            _ => None,
        }
    }
}

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a runner.
    Queued,
    /// A runner holds it (or held it, and its lease has not yet run out).
    Running,
    /// Every row has its outcome.
    Done,
    /// Stopped on an error that is not a row's (the submitter lost its rights, say); sending
    /// the file again puts it back in the queue, from where it stood.
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "queued" => Some(JobState::Queued),
            "running" => Some(JobState::Running),
            "done" => Some(JobState::Done),
            "failed" => Some(JobState::Failed),
            _ => None,
        }
    }
}

/// A job to record.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub kind: JobKind,
    /// Who submitted it (`user:ID`, or `console`): a job is its submitter's.
    pub owner: String,
    /// The principal it runs as, serialised by the application.
    pub runs_as: String,
    /// The answering party, for an answer.
    pub party: Option<PartyId>,
    /// Accept (true) or refuse, for an answer.
    pub accept: Option<bool>,
    /// Names the content (kind, party, choice and file): the same content sent again by the
    /// same owner before its job is done is that job.
    pub digest: String,
    pub file: Vec<u8>,
    /// Rows in the file, those its reading refused included.
    pub total_rows: i64,
    pub at: DateTime<Utc>,
}

/// A job and its progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "BulkJob")]
pub struct Job {
    pub id: i64,
    pub kind: JobKind,
    /// Who sent it: `user:ID`, or `console`.
    pub owner: String,
    #[serde(skip)]
    pub runs_as: String,
    /// For an answer: the party that answers.
    pub party: Option<PartyId>,
    /// For an answer: accept (true) or refuse.
    pub accept: Option<bool>,
    /// Where the job stands: `failed` means stopped by an error that is not a row's, and
    /// sending the same file again resumes it.
    pub state: JobState,
    pub total_rows: i64,
    /// Rows with an outcome.
    pub done_rows: i64,
    /// Rows applied by this job.
    pub applied: i64,
    /// Rows found applied already (by an earlier job or request of the same content).
    pub already: i64,
    pub refused: i64,
    /// Why a `failed` job stopped.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// How many times the same content was sent.
    pub submissions: i64,
}

/// One row's outcome, as the application wrote it (JSON), at its line of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRow {
    pub line: i64,
    pub outcome: String,
}

/// A part of a job's work, saved at once: its rows' outcomes and the counts they add.
#[derive(Clone, Debug, Default)]
pub struct JobPart {
    pub rows: Vec<JobRow>,
    pub applied: i64,
    pub already: i64,
    pub refused: i64,
}

/// What became of a row, as a job counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOutcome {
    /// Applied by this job.
    Applied,
    /// Found applied already.
    Already,
    Refused,
}

impl JobPart {
    /// Adds a row's outcome (`outcome` as the application writes it) and counts it.
    pub fn add(&mut self, row: JobRow, counted: RowOutcome) {
        match counted {
            RowOutcome::Applied => self.applied += 1,
            RowOutcome::Already => self.already += 1,
            RowOutcome::Refused => self.refused += 1,
        }
        self.rows.push(row);
    }
}

/// The columns [`job`] reads, in order.
pub const JOB_COLUMNS: &str = "id, kind, owner, runs_as, party, accept, state, total_rows, done_rows, applied, already, refused, error, created_at, updated_at, finished_at, submissions";

/// `SELECT {JOB_COLUMNS}`.
pub fn job<R: crate::rows::Columns>(r: &R) -> Result<Job, R::Error> {
    use crate::rows::micros_to_time;
    let kind = r.text(1)?;
    let state = r.text(6)?;
    Ok(Job {
        id: r.int(0)?,
        // The columns are written only from these enums: an unknown value is a job written
        // by a newer version, shown as failed rather than run.
        kind: JobKind::parse(&kind).unwrap_or(JobKind::Import),
        owner: r.text(2)?,
        runs_as: r.text(3)?,
        party: r.opt_int(4)?,
        accept: r.opt_int(5)?.map(|a| a != 0),
        state: match (JobKind::parse(&kind), JobState::parse(&state)) {
            (Some(_), Some(s)) => s,
            _ => JobState::Failed,
        },
        total_rows: r.int(7)?,
        done_rows: r.int(8)?,
        applied: r.int(9)?,
        already: r.int(10)?,
        refused: r.int(11)?,
        error: r.opt_text(12)?,
        created_at: micros_to_time(r.int(13)?),
        updated_at: micros_to_time(r.int(14)?),
        finished_at: r.opt_int(15)?.map(micros_to_time),
        submissions: r.int(16)?,
    })
}

/// Records a job, or finds the owner's unfinished job of the same content: `?1` kind, `?2`
/// owner, `?3` runs_as, `?4` party, `?5` accept (0/1), `?6` digest, `?7` file, `?8` total
/// rows, `?9` at. A failed job found so is queued again (from where it stood); one queued
/// or running is left as it is. Returns the job.
pub fn submit_sql(p: impl Fn(usize) -> String) -> String {
    format!(
        "INSERT INTO jobs (kind, owner, runs_as, party, accept, digest, file, state, total_rows, done_rows,
                           applied, already, refused, created_at, updated_at, submissions)
         VALUES ({kind}, {owner}, {runs_as}, {party}, {accept}, {digest}, {file}, 'queued', {total}, 0,
                 0, 0, 0, {at}, {at}, 1)
         ON CONFLICT (owner, digest) WHERE state <> 'done' DO UPDATE
            SET submissions = jobs.submissions + 1,
                runs_as = excluded.runs_as,
                updated_at = excluded.updated_at,
                state = CASE WHEN jobs.state = 'failed' THEN 'queued' ELSE jobs.state END,
                error = CASE WHEN jobs.state = 'failed' THEN NULL ELSE jobs.error END
         RETURNING {JOB_COLUMNS}",
        kind = p(1),
        owner = p(2),
        runs_as = p(3),
        party = p(4),
        accept = p(5),
        digest = p(6),
        file = p(7),
        total = p(8),
        at = p(9),
    )
}

/// A job: `?1` id.
pub fn get_sql(p: impl Fn(usize) -> String) -> String {
    format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = {}", p(1))
}

/// An owner's jobs, newest first: `?1` owner, `?2` at most.
pub fn of_owner_sql(p: impl Fn(usize) -> String) -> String {
    format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE owner = {} ORDER BY id DESC LIMIT {}",
        p(1),
        p(2)
    )
}

/// Leases the oldest job that waits, or runs under a lease that ran out by `?1`, until
/// `?2`; `?3` is the one job to take, or NULL for any. Returns it with its file (the last
/// column). `skip_locked` is PostgreSQL's `FOR UPDATE SKIP LOCKED`, so that runners do
/// not wait on each other's rows (SQLite has one writer at a time).
pub fn claim_sql(p: impl Fn(usize) -> String, skip_locked: bool) -> String {
    let bigint = |n: usize| format!("CAST({} AS BIGINT)", p(n));
    let lock = if skip_locked {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    format!(
        "UPDATE jobs SET state = 'running', lease_until = {until}
          WHERE id IN (SELECT id FROM jobs
                        WHERE (state = 'queued' OR (state = 'running' AND lease_until < {now}))
                          AND ({only} IS NULL OR id = {only})
                        ORDER BY id LIMIT 1{lock})
         RETURNING {JOB_COLUMNS}, file",
        now = bigint(1),
        until = bigint(2),
        only = bigint(3),
    )
}

/// Whether any job waits, or runs under a lease that ran out by `?1`: a read, so that a
/// runner that finds nothing to do takes no write lock (SQLite's is the register's).
pub fn any_due_sql(p: impl Fn(usize) -> String) -> String {
    let now = format!("CAST({} AS BIGINT)", p(1));
    format!(
        "SELECT EXISTS (SELECT 1 FROM jobs
                         WHERE state = 'queued' OR (state = 'running' AND lease_until < {now}))"
    )
}

/// A part's progress, taken only by the runner that holds the job where it left it: `?1`
/// id, `?2` rows done before the part, `?3` after it, `?4` applied, `?5` already, `?6`
/// refused (added), `?7` at, `?8` lease until. Changes no row when another runner has gone
/// on since (its lease had run out): the part's outcomes are then not saved either.
pub fn progress_sql(p: impl Fn(usize) -> String) -> String {
    format!(
        "UPDATE jobs SET done_rows = {after}, applied = applied + {applied}, already = already + {already},
                refused = refused + {refused}, updated_at = {at}, lease_until = {until}
          WHERE id = {id} AND done_rows = {before} AND state = 'running'",
        id = p(1),
        before = p(2),
        after = p(3),
        applied = p(4),
        already = p(5),
        refused = p(6),
        at = p(7),
        until = p(8),
    )
}

/// One row's outcome: `?1` job, `?2` line, `?3` outcome. A row saved before keeps the
/// outcome it had (its first run said what was applied).
pub fn row_sql(p: impl Fn(usize) -> String) -> String {
    format!(
        "INSERT INTO job_rows (job, line, outcome) VALUES ({}, {}, {}) ON CONFLICT (job, line) DO NOTHING",
        p(1),
        p(2),
        p(3)
    )
}

/// Ends a job: `?1` id, `?2` state, `?3` error, `?4` at.
pub fn finish_sql(p: impl Fn(usize) -> String) -> String {
    format!(
        "UPDATE jobs SET state = {state}, error = {error}, updated_at = {at}, finished_at = {at}, lease_until = NULL
          WHERE id = {id}",
        id = p(1),
        state = p(2),
        error = p(3),
        at = p(4),
    )
}

/// A job's row outcomes after line `?2`, in line order: `?1` job, `?3` at most.
pub fn rows_sql(p: impl Fn(usize) -> String) -> String {
    format!(
        "SELECT line, outcome FROM job_rows WHERE job = {} AND line > {} ORDER BY line LIMIT {}",
        p(1),
        p(2),
        p(3)
    )
}

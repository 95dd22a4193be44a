//! Bulk jobs (`cessio_store::jobs`): a file of option communications to register (F8) or
//! a list of protocols and codici univoci to accept or refuse (F3), taken at once and
//! worked through by a runner, part after part, each part's outcomes saved with the job's
//! progress.
//!
//! - **Nothing twice.** Each import row is registered under a key its content names (as
//!   `cessio import` always did), each part of an answer under a key its job and lines
//!   name; the same file sent again by the same submitter before its job is done is that
//!   job, which goes on from where it stood if it had stopped. Sent after, it is a new job
//!   that finds the rows applied before as applied (an import's rows by their keys) or no
//!   longer awaiting an answer, and applies what has become possible since.
//! - **A rate that does not depend on the file's shape.** An import part registers its
//!   rows at once, [`IMPORT_CONCURRENCY`] at a time, whoever their beneficiaries, which lets
//!   the writer commit them together. F9's amount rule compares each row with what its
//!   beneficiary had registered before the job (read once per job) and with the file's
//!   rows of that beneficiary before it, so that no row waits for the one before. An
//!   answer part is one operation of up to [`ANSWER_PART`] codes.
//! - **The submitter's rights, checked when it matters.** The PIN is checked once, on
//!   submission; each row is then decided as the submitter's own request would be
//!   (delegation, R-SUSP, R-WAIT5...), when the runner reaches it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cessio_core::ledger::PartyId;
use cessio_core::risk::{HistoryStats, RunningHistory};
use cessio_store::jobs::{Job, JobKind, JobPart, JobRow, JobState, NewJob, RowOutcome};
use serde::{Deserialize, Serialize};

use crate::functions::{BulkAnswerError, History, ImportRow, PartyCache, Pin, refused_rows};
use crate::{App, AppError, Principal, fingerprint};

pub use cessio_store::jobs::{Job as BulkJob, JobKind as BulkJobKind, JobState as BulkJobState};

/// Rows of an import saved together.
pub const IMPORT_PART: usize = 2_000;
/// Codes of an answer decided together, as one operation (fewer when they name more
/// movements than one operation holds).
pub const ANSWER_PART: usize = 1_000;
/// Most codes one answer job takes.
pub const ANSWER_JOB_MAX_ROWS: usize = 100_000;
/// Rows of an import part registered at once.
pub const IMPORT_CONCURRENCY: usize = 256;
/// How long a runner holds a job without saving a part before another may take it over.
pub const JOB_LEASE: Duration = Duration::from_secs(120);

/// One row of an answer job: what its code named, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AnswerJobRow {
    /// 1-based position in the list.
    pub line: usize,
    pub code: String,
    /// Movements the row answered.
    pub operations: usize,
    pub amount: cessio_core::money::Cents,
    /// The operation that answered them.
    pub operation_id: Option<i64>,
    /// The row's part had been answered before this run (the job had stopped after its
    /// answer and before saving it): its movements are answered, by that operation.
    pub already_answered: bool,
    pub error: Option<BulkAnswerError>,
}

/// One row of a job's outcome: an import's or an answer's, as the job's kind says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum BulkJobRow {
    Import(crate::ImportRow),
    Answer(AnswerJobRow),
}

/// Who a job belongs to: its submitter.
fn owner_of(p: &Principal) -> String {
    if p.user_id == 0 {
        "console".to_string()
    } else {
        format!("user:{}", p.user_id)
    }
}

fn store_error(e: impl std::fmt::Display) -> AppError {
    AppError::Store(cessio_store::StoreError::backend(e))
}

impl App {
    /// F8 as a job: the CSV file is read whole first (a file that cannot be read is refused
    /// at once, with nothing recorded), the PIN checked, and the job returned queued, or
    /// as it stands when the same submitter's job of the same file has not ended.
    pub async fn submit_import_job(
        &self,
        p: &Principal,
        pin: Option<&str>,
        file: &[u8],
    ) -> Result<Job, AppError> {
        let parsed = cessio_core::csv::parse_option_csv(file, &self.catalogue)
            .map_err(|e| AppError::invalid(e.code(), e.to_string()))?;
        if !p.is_operator() {
            self.check_pin(p, pin).await?;
        }
        let total = parsed.rows.len() + parsed.errors.len();
        self.record_job(p, JobKind::Import, None, None, file.to_vec(), total)
            .await
    }

    /// F3 as a job: accept or refuse every code of the list (protocols or codici univoci,
    /// as [`App::answer_codes`] takes them), in parts.
    pub async fn submit_answer_job(
        &self,
        p: &Principal,
        pin: Option<&str>,
        party: PartyId,
        codes: &[String],
        accept: bool,
    ) -> Result<Job, AppError> {
        self.authorize_act(p, party).await?;
        if codes.is_empty() || codes.len() > ANSWER_JOB_MAX_ROWS {
            return Err(AppError::invalid(
                "codes",
                format!("da 1 a {ANSWER_JOB_MAX_ROWS} protocolli o codici univoci"),
            ));
        }
        if let Some(bad) = codes
            .iter()
            .position(|c| c.trim().is_empty() || c.contains(['\n', '\r']))
        {
            return Err(AppError::invalid(
                "codes",
                format!("il codice alla riga {} è vuoto o su più righe", bad + 1),
            ));
        }
        self.check_pin(p, pin).await?;
        let file = codes
            .iter()
            .map(|c| c.trim().to_uppercase())
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes();
        self.record_job(
            p,
            JobKind::Answer,
            Some(party),
            Some(accept),
            file,
            codes.len(),
        )
        .await
    }

    async fn record_job(
        &self,
        p: &Principal,
        kind: JobKind,
        party: Option<PartyId>,
        accept: Option<bool>,
        file: Vec<u8>,
        total_rows: usize,
    ) -> Result<Job, AppError> {
        let content = String::from_utf8_lossy(&file);
        let digest = fingerprint(kind.as_str(), party, &(accept, &content));
        let runs_as = serde_json::to_string(p).map_err(store_error)?;
        Ok(self
            .store
            .submit_job(NewJob {
                kind,
                owner: owner_of(p),
                runs_as,
                party,
                accept,
                digest,
                file,
                total_rows: i64::try_from(total_rows).unwrap_or(i64::MAX),
                at: self.now(),
            })
            .await?)
    }

    /// A job, to its submitter or an operator.
    pub async fn bulk_job(&self, p: &Principal, id: i64) -> Result<Job, AppError> {
        match self.store.job(id).await? {
            Some(job) if job.owner == owner_of(p) || p.is_operator() => Ok(job),
            _ => Err(AppError::NotFound { what: "Lavoro" }),
        }
    }

    /// The submitter's jobs, newest first.
    pub async fn bulk_jobs(&self, p: &Principal, limit: usize) -> Result<Vec<Job>, AppError> {
        Ok(self.store.jobs_of(&owner_of(p), limit.min(200)).await?)
    }

    /// A page of a job's row outcomes (an `ImportRow` for an import, an [`AnswerJobRow`]
    /// for an answer), in line order, among those done so far. A cursor made for another
    /// job is refused.
    pub async fn bulk_job_rows(
        &self,
        p: &Principal,
        id: i64,
        page: &crate::PageRequest,
    ) -> Result<crate::Page<BulkJobRow>, AppError> {
        let job = self.bulk_job(p, id).await?;
        let filter = ("job", id);
        let at: crate::paging::Position<i64> =
            page.position(crate::paging::Listing { filter: &filter })?;
        let mut rows = self
            .store
            .job_rows(id, at.after.unwrap_or(0), at.limit + 1)
            .await?;
        let more = rows.len() > at.limit;
        rows.truncate(at.limit);
        let next = match rows.last() {
            Some(last) if more => Some(crate::paging::next_cursor(
                &last.line,
                at.seen + rows.len(),
                &filter,
            )),
            _ => None,
        };
        Ok(crate::Page {
            rows: rows
                .iter()
                .map(|r| {
                    match job.kind {
                        JobKind::Import => serde_json::from_str(&r.outcome).map(BulkJobRow::Import),
                        JobKind::Answer => serde_json::from_str(&r.outcome).map(BulkJobRow::Answer),
                    }
                    .map_err(store_error)
                })
                .collect::<Result<_, _>>()?,
            next,
        })
    }

    /// An import job's report, every row in file order (as [`App::import_communications`]
    /// returns it), from what the job has done so far.
    pub async fn bulk_import_report(
        &self,
        p: &Principal,
        id: i64,
    ) -> Result<crate::ImportReport, AppError> {
        let job = self.bulk_job(p, id).await?;
        if job.kind != JobKind::Import {
            return Err(AppError::NotFound {
                what: "Lavoro di importazione",
            });
        }
        let mut report = crate::ImportReport::default();
        let mut after = 0;
        loop {
            let rows = self.store.job_rows(id, after, 5_000).await?;
            let Some(last) = rows.last() else { break };
            after = last.line;
            for r in &rows {
                report.add(serde_json::from_str(&r.outcome).map_err(store_error)?);
            }
        }
        Ok(report)
    }

    /// Waits, up to `wait`, for a job to end; returns it as it then stands.
    pub async fn wait_bulk_job(
        &self,
        p: &Principal,
        id: i64,
        wait: Duration,
    ) -> Result<Job, AppError> {
        // No deadline when `wait` reaches past any instant (`Duration::MAX`).
        let until = tokio::time::Instant::now().checked_add(wait);
        loop {
            let job = self.bulk_job(p, id).await?;
            let ended = matches!(job.state, JobState::Done | JobState::Failed);
            if ended || until.is_some_and(|u| tokio::time::Instant::now() >= u) {
                return Ok(job);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs the jobs that wait (or whose runner's lease ran out), one after the other,
    /// until none does; returns how many it ran. Any number of runners may call it: each
    /// job is leased to one.
    pub async fn run_bulk_jobs(&self) -> Result<usize, AppError> {
        let mut ran = 0;
        while self.run_one_bulk_job(None, |_| {}).await?.is_some() {
            ran += 1;
        }
        Ok(ran)
    }

    /// Runs job `only` (or the oldest that waits) to its end, calling `progress` after
    /// each part; `None` when there was nothing to take.
    pub async fn run_one_bulk_job(
        &self,
        only: Option<i64>,
        mut progress: impl FnMut(&Job),
    ) -> Result<Option<Job>, AppError> {
        let now = self.now();
        let Some((mut job, file)) = self.store.claim_job(now, lease_end(now), only).await? else {
            return Ok(None);
        };
        let outcome = match self.runs_as(&job).await {
            Ok(p) => match job.kind {
                JobKind::Import => self.run_import(&p, &mut job, &file, &mut progress).await,
                JobKind::Answer => self.run_answer(&p, &mut job, &file, &mut progress).await,
            },
            Err(e) => Err(e),
        };
        let at = self.now();
        match outcome {
            Ok(true) => {
                self.store
                    .finish_job(job.id, JobState::Done, None, at)
                    .await?
            }
            // Another runner took the job over: it is its to end.
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(job = job.id, error = %e, "bulk job stopped");
                self.store
                    .finish_job(job.id, JobState::Failed, Some(e.to_string()), at)
                    .await?
            }
        }
        Ok(self.store.job(job.id).await?)
    }

    /// Who a job acts as: its submitter as the register knows it now (its role and party
    /// may have changed since), with the login it submitted by.
    async fn runs_as(&self, job: &Job) -> Result<Principal, AppError> {
        let submitted: Principal = serde_json::from_str(&job.runs_as).map_err(store_error)?;
        if submitted.user_id == 0 {
            // The command line's console: no user of the register.
            return Ok(submitted);
        }
        match self.store.user(submitted.user_id).await? {
            Some(user) => Ok(Principal::from_user(&user, submitted.method)),
            None => Err(AppError::Forbidden {
                reason: "l'utente che ha inviato il lavoro non esiste più".into(),
            }),
        }
    }

    /// Saves a part; false when another runner has taken the job over.
    async fn save_part(&self, job: &mut Job, part: JobPart) -> Result<bool, AppError> {
        let now = self.now();
        let (n, applied, already, refused) = (
            i64::try_from(part.rows.len()).unwrap_or(i64::MAX),
            part.applied,
            part.already,
            part.refused,
        );
        let saved = self
            .store
            .save_job_part(job.id, job.done_rows, part, now, lease_end(now))
            .await?;
        if saved {
            job.done_rows += n;
            job.applied += applied;
            job.already += already;
            job.refused += refused;
            job.updated_at = now;
        }
        Ok(saved)
    }

    async fn run_import(
        &self,
        p: &Principal,
        job: &mut Job,
        file: &[u8],
        progress: &mut impl FnMut(&Job),
    ) -> Result<bool, AppError> {
        let parsed = cessio_core::csv::parse_option_csv(file, &self.catalogue)
            .map_err(|e| AppError::invalid(e.code(), e.to_string()))?;
        // The work list in file order: each row, or its reading's refusal.
        enum Item<'a> {
            Row(&'a cessio_core::csv::OptionRow),
            Refused(ImportRow),
        }
        let mut items: Vec<(usize, Item)> = parsed
            .rows
            .iter()
            .map(|r| (r.line, Item::Row(r)))
            .chain(
                refused_rows(&parsed)
                    .into_iter()
                    .map(|r| (r.line, Item::Refused(r))),
            )
            .collect();
        items.sort_by_key(|(line, _)| *line);
        // Each beneficiary's history for F9's amount rule, by its codice fiscale as the file
        // names it: what it had registered before the job (read once per job), then the
        // amounts of the file's rows in file order. Each row is compared with the history up
        // to it, so that the rows can be registered all at once.
        let mut histories: HashMap<String, RunningHistory> = HashMap::new();
        let parties = Arc::new(PartyCache::default());
        let start = usize::try_from(job.done_rows).unwrap_or(usize::MAX);
        for part in items.get(start..).unwrap_or_default().chunks(IMPORT_PART) {
            let mut rows: Vec<ImportRow> = Vec::with_capacity(part.len());
            let mut todo: Vec<&cessio_core::csv::OptionRow> = Vec::with_capacity(part.len());
            for (_, item) in part {
                match item {
                    Item::Refused(r) => rows.push(r.clone()),
                    Item::Row(r) => todo.push(r),
                }
            }
            self.load_histories(&todo, &mut histories, &parties).await?;
            let mut before = Vec::with_capacity(todo.len());
            for row in &todo {
                before.push(match histories.get_mut(row.beneficiary.as_str()) {
                    Some(history) => {
                        let stats = history.stats();
                        for amount in self.import_row_amounts(row) {
                            history.push(amount);
                        }
                        stats
                    }
                    None => HistoryStats::default(),
                });
            }
            // Each row on a task of its own, so that the rows' own work spreads over the
            // cores while the writer commits what they send together.
            let slots = Arc::new(tokio::sync::Semaphore::new(IMPORT_CONCURRENCY));
            let mut running = tokio::task::JoinSet::new();
            for (row, before) in todo.into_iter().zip(before) {
                let (app, p, parties, row) =
                    (self.clone(), p.clone(), parties.clone(), row.clone());
                let slot = slots.clone().acquire_owned().await.map_err(store_error)?;
                running.spawn(async move {
                    let _slot = slot;
                    app.import_row(&p, &row, History::Given(before), &parties)
                        .await
                });
            }
            while let Some(done) = running.join_next().await {
                rows.push(done.map_err(store_error)?);
            }
            rows.sort_by_key(|r| r.line);
            let mut saved = JobPart::default();
            for r in &rows {
                saved.add(job_row(r.line, r)?, r.outcome());
            }
            if !self.save_part(job, saved).await? {
                return Ok(false);
            }
            progress(job);
        }
        Ok(true)
    }

    /// Reads the history of each beneficiary of `rows` not read yet, several at once.
    async fn load_histories(
        &self,
        rows: &[&cessio_core::csv::OptionRow],
        histories: &mut HashMap<String, RunningHistory>,
        parties: &Arc<PartyCache>,
    ) -> Result<(), AppError> {
        let mut new: Vec<String> = rows
            .iter()
            .map(|r| r.beneficiary.as_str())
            .filter(|cf| !histories.contains_key(*cf))
            .map(str::to_string)
            .collect();
        new.sort_unstable();
        new.dedup();
        let slots = Arc::new(tokio::sync::Semaphore::new(IMPORT_CONCURRENCY));
        let mut reading = tokio::task::JoinSet::new();
        for cf in new {
            let (app, parties) = (self.clone(), parties.clone());
            let slot = slots.clone().acquire_owned().await.map_err(store_error)?;
            reading.spawn(async move {
                let _slot = slot;
                // A beneficiary not registered has no history: its rows are refused.
                let amounts = match parties.party(&app, &cf).await {
                    Ok(party) => Some(app.sent_amounts(party.id).await),
                    Err(_) => None,
                };
                (cf, amounts)
            });
        }
        while let Some(done) = reading.join_next().await {
            let (cf, amounts) = done.map_err(store_error)?;
            if let Some(amounts) = amounts {
                let mut history = RunningHistory::default();
                for amount in amounts? {
                    history.push(amount);
                }
                histories.insert(cf, history);
            }
        }
        Ok(())
    }

    async fn run_answer(
        &self,
        p: &Principal,
        job: &mut Job,
        file: &[u8],
        progress: &mut impl FnMut(&Job),
    ) -> Result<bool, AppError> {
        let (Some(party), Some(accept)) = (job.party, job.accept) else {
            return Err(store_error("an answer job without its party or choice"));
        };
        let codes: Vec<String> = String::from_utf8_lossy(file)
            .split('\n')
            .map(str::to_string)
            .collect();
        let start = usize::try_from(job.done_rows).unwrap_or(usize::MAX);
        let mut from = start;
        while from < codes.len() {
            let to = (from + ANSWER_PART).min(codes.len());
            let rows = self
                .answer_part(p, job.id, (party, accept), &codes, from..to)
                .await?;
            let mut saved = JobPart::default();
            for r in &rows {
                let counted = match (&r.error, r.already_answered) {
                    (Some(_), _) => RowOutcome::Refused,
                    (None, true) => RowOutcome::Already,
                    (None, false) => RowOutcome::Applied,
                };
                saved.add(job_row(r.line, r)?, counted);
            }
            if !self.save_part(job, saved).await? {
                return Ok(false);
            }
            progress(job);
            from = to;
        }
        Ok(true)
    }

    /// Answers the codes at `lines` of an answer job's list as one operation, or in halves
    /// when they name more movements than one operation holds.
    async fn answer_part(
        &self,
        p: &Principal,
        job: i64,
        (party, accept): (PartyId, bool),
        codes: &[String],
        lines: std::ops::Range<usize>,
    ) -> Result<Vec<AnswerJobRow>, AppError> {
        let mut pending = vec![(lines.start, lines.end)];
        let mut rows = Vec::with_capacity(lines.len());
        while let Some((a, b)) = pending.pop() {
            // The key names the job and the lines: a part answered before a runner stopped
            // is found answered when the job goes on.
            let key = format!("job{job}:{}-{}", a + 1, b);
            let part = &codes[a..b];
            match self
                .answer_codes_as(p, &key, Pin::Checked, party, part, accept)
                .await
            {
                Ok(report) => {
                    if report.replayed {
                        rows.extend(part.iter().enumerate().map(|(i, code)| AnswerJobRow {
                            line: a + i + 1,
                            code: code.clone(),
                            operations: 0,
                            amount: cessio_core::money::Cents::ZERO,
                            operation_id: report.operation_id,
                            already_answered: true,
                            error: None,
                        }));
                    } else {
                        rows.extend(report.rows.into_iter().map(|r| AnswerJobRow {
                            line: a + r.line,
                            operation_id: if r.error.is_none() && r.operations > 0 {
                                report.operation_id
                            } else {
                                None
                            },
                            code: r.code,
                            operations: r.operations,
                            amount: r.amount,
                            already_answered: false,
                            error: r.error,
                        }));
                    }
                }
                Err(AppError::Invalid { ref field, .. }) if field == "codes" && b - a > 1 => {
                    // More movements than one operation holds: the halves go on their own
                    // (the first half first, so rows stay in order).
                    let mid = a + (b - a) / 2;
                    pending.push((mid, b));
                    pending.push((a, mid));
                }
                Err(e) => return Err(e),
            }
        }
        rows.sort_by_key(|r| r.line);
        Ok(rows)
    }
}

fn job_row(line: usize, outcome: &impl Serialize) -> Result<JobRow, AppError> {
    Ok(JobRow {
        line: i64::try_from(line).unwrap_or(i64::MAX),
        outcome: serde_json::to_string(outcome).map_err(store_error)?,
    })
}

fn lease_end(now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    now + chrono::Duration::from_std(JOB_LEASE).unwrap_or(chrono::Duration::MAX)
}

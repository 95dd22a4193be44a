//! `cessio-bench generate`: writes the national simulation (`national.rs`) to a register, day by
//! day, with many concurrent writers through the store's group commit (the fast path: no
//! app layer, no users), or to CSV files. Also the day-by-day driver `replay.rs` shares.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cessio_core::catalogue::{Catalogue, HolderRole};
use cessio_core::ledger::{AccountKind, PartyId, RataId, TransferId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::rata::{OptionCommunication, Protocol, derive_rate_for_holder};
use cessio_core::time::rome_start_of_day;
use cessio_store::{
    AccountRef, Command, IdempotencyKey, NewCredit, NewParty, NewRata, Operation, Store,
    TransferRequest,
};
use chrono::{DateTime, NaiveDate, Utc};

use crate::national::{Line, Params, PartySpec, Simulation, Step};

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    db: crate::db::DbArgs,
    #[arg(long, default_value_t = 0.01)]
    scale: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Operations in flight (group commit takes them together).
    #[arg(long, default_value_t = 256)]
    writers: usize,
    /// Write soggetti.csv and comunicazioni.csv (F8 import format) to this folder
    /// instead of a register.
    #[arg(long)]
    csv: Option<std::path::PathBuf>,
}

/// The command: the stream to CSV files or to the register, with a summary.
pub async fn command(args: GenerateArgs) -> Result<()> {
    let params = Params {
        seed: args.seed,
        scale: args.scale,
    };
    if let Some(dir) = args.csv {
        let (parties, rows) = to_csv(&dir, params)?;
        println!(
            "wrote {parties} parties and {rows} communications to {}",
            dir.display()
        );
        return Ok(());
    }
    let store = args.db.open().await?;
    let outcome = to_store(store.clone(), params, args.writers.max(1)).await?;
    outcome.print("generate");
    let counts = store.counts().await?;
    println!(
        "register: {} operations, {} transfers",
        counts.operations, counts.transfers
    );
    Ok(())
}

/// What running a stream measured.
#[derive(Debug, Default)]
pub struct Outcome {
    pub steps: u64,
    pub refused: BTreeMap<String, u64>,
    pub latencies_us: Vec<u32>,
    /// Latencies per kind of step, sorted.
    pub by_step: BTreeMap<&'static str, Vec<u32>>,
    pub elapsed: Duration,
    pub days: u64,
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted_us[i]) / 1e3
}

impl Outcome {
    pub fn percentile_ms(&self, p: f64) -> f64 {
        percentile_ms(&self.latencies_us, p)
    }

    pub fn refused_total(&self) -> u64 {
        self.refused.values().sum()
    }

    pub fn print(&self, what: &str) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        println!(
            "{what}: {} steps over {} days in {:.1} s: {:.0} steps/s; latency p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
            self.steps,
            self.days,
            secs,
            self.steps as f64 / secs,
            self.percentile_ms(0.5),
            self.percentile_ms(0.95),
            self.percentile_ms(0.99)
        );
        for (name, l) in &self.by_step {
            println!(
                "  {name}: {} steps, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
                l.len(),
                percentile_ms(l, 0.5),
                percentile_ms(l, 0.95),
                percentile_ms(l, 0.99)
            );
        }
        if !self.refused.is_empty() {
            let list: Vec<String> = self
                .refused
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            println!(
                "refused by a rule: {} ({})",
                self.refused_total(),
                list.join(", ")
            );
        }
    }
}

/// Runs the simulation day by day: the steps of one day go to `clients` concurrent tasks
/// (they do not depend on each other), the next day starts when all are answered.
/// `exec` returns `Ok(Err(code))` for a step refused by a rule (counted), `Err` to stop.
pub async fn drive<E, Fut>(
    sim: &mut Simulation,
    clients: usize,
    mut on_day: impl FnMut(NaiveDate),
    exec: E,
) -> Result<Outcome>
where
    E: Fn(NaiveDate, usize, Step) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Result<(), String>>> + Send,
{
    let started = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let refused: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<(&'static str, u32)>>> = Arc::default();
    let mut last_print = Instant::now();
    let mut days = 0;
    while let Some((day, steps)) = sim.next_day()? {
        on_day(day);
        days += 1;
        let steps = Arc::new(steps);
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..clients.min(steps.len()) {
            let (steps, next, exec) = (steps.clone(), next.clone(), exec.clone());
            let (done, refused, latencies) = (done.clone(), refused.clone(), latencies.clone());
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(step) = steps.get(i) else {
                        break;
                    };
                    let t = Instant::now();
                    let outcome = exec(day, i, step.clone()).await?;
                    mine.push((
                        step.name(),
                        u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX),
                    ));
                    if let Err(code) = outcome {
                        let mut r = refused.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                        *r.entry(format!("{}:{code}", step.name())).or_default() += 1;
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                latencies
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .extend(mine);
                anyhow::Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        if last_print.elapsed() >= Duration::from_secs(2) {
            last_print = Instant::now();
            let n = done.load(Ordering::Relaxed);
            let secs = started.elapsed().as_secs_f64();
            let p = sim.progress().max(1e-6);
            let eta = secs * (1.0 - p) / p;
            eprintln!(
                "{day}: {n} steps, {:.0}/s, {:.1}% of the period, ETA {}",
                n as f64 / secs.max(1e-9),
                p * 100.0,
                format_secs(eta)
            );
        }
    }
    let all = std::mem::take(&mut *latencies.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let mut by_step: BTreeMap<&'static str, Vec<u32>> = BTreeMap::new();
    for (name, us) in &all {
        by_step.entry(name).or_default().push(*us);
    }
    for l in by_step.values_mut() {
        l.sort_unstable();
    }
    let mut latencies_us: Vec<u32> = all.into_iter().map(|(_, us)| us).collect();
    latencies_us.sort_unstable();
    let refused = std::mem::take(&mut *refused.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    Ok(Outcome {
        steps: done.load(Ordering::Relaxed),
        refused,
        latencies_us,
        by_step,
        elapsed: started.elapsed(),
        days,
    })
}

fn format_secs(s: f64) -> String {
    let s = s.max(0.0) as u64;
    format!("{}m{:02}s", s / 60, s % 60)
}

/// Registers every party of the simulation, `writers` at a time; returns their ids in
/// the simulation's order.
pub async fn register_parties<F, Fut>(
    parties: &[PartySpec],
    writers: usize,
    register: F,
) -> Result<Vec<PartyId>>
where
    F: Fn(usize, PartySpec) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<PartyId>> + Send,
{
    let started = Instant::now();
    let parties = Arc::new(parties.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (parties, next, register) = (parties.clone(), next.clone(), register.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = parties.get(i) else {
                    return anyhow::Ok(out);
                };
                out.push((i, register(i, p.clone()).await?));
            }
        }));
    }
    let mut ids = vec![PartyId::default(); parties.len()];
    for t in tasks {
        for (i, id) in t.await?? {
            ids[i] = id;
        }
    }
    eprintln!(
        "registered {} parties in {:.1} s",
        ids.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(ids)
}

/// The instant of the `i`-th step of a day: working hours, one second apart, so that a
/// day's movements are spread as F4's period filters see them.
pub fn step_instant(day: NaiveDate, i: usize) -> DateTime<Utc> {
    rome_start_of_day(day)
        + chrono::Duration::hours(8)
        + chrono::Duration::seconds(i64::try_from(i % 36_000).unwrap_or(0))
}

/// The store's ids of one credit: its rate, and the transfers pending on them.
#[derive(Debug, Default, Clone)]
struct CreditIds {
    credit: i64,
    rate: Vec<RataId>,
    pending: Vec<TransferId>,
}

#[derive(Debug)]
struct Fast {
    store: Arc<dyn Store>,
    catalogue: Arc<Catalogue>,
    parties: Vec<PartyId>,
    credits: Mutex<HashMap<u32, CreditIds>>,
}

impl Fast {
    fn ids(&self, credit: u32) -> Result<CreditIds> {
        self.credits
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .get(&credit)
            .cloned()
            .with_context(|| format!("credit {credit} was never registered"))
    }

    fn set(&self, credit: u32, ids: CreditIds) -> Result<()> {
        self.credits
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .insert(credit, ids);
        Ok(())
    }

    async fn submit(
        &self,
        key: String,
        at: DateTime<Utc>,
        party: u32,
        command: Command,
    ) -> Result<cessio_store::Receipt> {
        Ok(self
            .store
            .submit(Operation {
                idempotency_key: IdempotencyKey::parse(&key)?,
                acting_user: "generate".into(),
                on_behalf_of: Some(self.parties[party as usize]),
                at,
                command,
                request_hash: None,
                delegate: None,
                checks: Vec::new(),
            })
            .await?)
    }

    fn moves(
        &self,
        from: u32,
        to: AccountRef,
        lines: &[Line],
        kind: TransferKind,
        disclose: bool,
    ) -> Result<Vec<TransferRequest>> {
        lines
            .iter()
            .map(|l| {
                let ids = self.ids(l.credit)?;
                Ok(TransferRequest::Move {
                    rata: *ids.rate.get(l.rata as usize).context("rata index")?,
                    from: AccountRef::Holder(self.parties[from as usize]),
                    to,
                    amount: l.amount,
                    kind,
                    pending: true,
                    disclose,
                    path: None,
                })
            })
            .collect()
    }

    async fn step(&self, day: NaiveDate, i: usize, step: Step) -> Result<()> {
        let at = step_instant(day, i);
        let key = format!("gen-{day}-{i}");
        match step {
            Step::Communicate(c) => {
                let protocol = Protocol::new(cessio_core::time::to_rome(at), 1)?;
                let derived = derive_rate_for_holder(
                    &self.catalogue,
                    &OptionCommunication {
                        type_key: c.type_key.into(),
                        expense_year: c.expense_year,
                        origin: c.origin,
                        total: c.total,
                        communicated_on: day,
                    },
                    HolderRole::Cessionario,
                    &protocol,
                    1,
                )?;
                let receipt = self
                    .submit(
                        key,
                        at,
                        c.beneficiary,
                        Command::IssueCredit(NewCredit {
                            type_key: c.type_key.into(),
                            beneficiary: self.parties[c.beneficiary as usize],
                            holder: self.parties[c.holder as usize],
                            origin: c.origin.into(),
                            expense_year: c.expense_year,
                            communicated_on: day,
                            tracciabile: derived.tracciabile,
                            rate: derived.rate.iter().map(NewRata::from).collect(),
                            awaiting_answer: true,
                            beneficiary_no_tax_area: false,
                        }),
                    )
                    .await?;
                let issued = receipt.credit.context("no credit in the receipt")?;
                self.set(
                    c.credit,
                    CreditIds {
                        credit: issued.id,
                        rate: issued.rate.iter().map(|r| r.id).collect(),
                        pending: receipt.transfers,
                    },
                )?;
            }
            Step::Answer {
                party,
                accept,
                credits,
                ..
            } => {
                let mut answers = Vec::new();
                for c in &credits {
                    let mut ids = self.ids(*c)?;
                    answers.extend(ids.pending.drain(..).map(|pending| {
                        if accept {
                            TransferRequest::Post { pending }
                        } else {
                            TransferRequest::Void { pending }
                        }
                    }));
                    self.set(*c, ids)?;
                }
                self.submit(key, at, party, Command::Transfer(answers))
                    .await?;
            }
            Step::Cede {
                from,
                to,
                lines,
                disclose,
            } => {
                let moves = self.moves(
                    from,
                    AccountRef::Holder(self.parties[to as usize]),
                    &lines,
                    TransferKind::Cession,
                    disclose,
                )?;
                let receipt = self.submit(key, at, from, Command::Transfer(moves)).await?;
                // Added to, not replaced: a credit's rate may span two chunks of one
                // cession (two steps of the same day, run concurrently), and its answer
                // must post or void them all. Its previous answer emptied the list.
                let mut credits = self
                    .credits
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?;
                for (l, t) in lines.iter().zip(receipt.transfers) {
                    credits
                        .get_mut(&l.credit)
                        .with_context(|| format!("credit {} was never registered", l.credit))?
                        .pending
                        .push(t);
                }
            }
            Step::F24 { party, lines } => {
                // As the app does: reserved (pending), then confirmed once paid.
                let moves = self.moves(
                    party,
                    AccountRef::System(AccountKind::Used),
                    &lines,
                    TransferKind::Use,
                    false,
                )?;
                let receipt = self
                    .submit(key.clone(), at, party, Command::Transfer(moves))
                    .await?;
                let posts = receipt
                    .transfers
                    .into_iter()
                    .map(|pending| TransferRequest::Post { pending })
                    .collect();
                self.submit(format!("{key}-ok"), at, party, Command::Transfer(posts))
                    .await?;
            }
            Step::Split { party, line, split } => {
                // As the app does (F6): the original's facts, ten rate of the split code.
                let ids = self.ids(line.credit)?;
                let rata = *ids.rate.get(line.rata as usize).context("rata index")?;
                let original = self
                    .store
                    .credit(ids.credit)
                    .await?
                    .context("the split credit's original")?;
                let t = self
                    .catalogue
                    .get(&original.type_key)
                    .context("the original's type")?;
                let rate = cessio_core::split::split_ten(
                    line.amount,
                    cessio_core::time::RefYear::new(line.year),
                    t,
                )?;
                let holder = self.parties[party as usize];
                let receipt = self
                    .submit(
                        key,
                        at,
                        party,
                        Command::Split {
                            rata,
                            party: holder,
                            amount: line.amount,
                            credit: NewCredit::split_of(&original, holder, rate),
                        },
                    )
                    .await?;
                let issued = receipt.credit.context("no credit in the split's receipt")?;
                self.set(
                    split,
                    CreditIds {
                        credit: issued.id,
                        rate: issued.rate.iter().map(|r| r.id).collect(),
                        pending: Vec::new(),
                    },
                )?;
            }
        }
        Ok(())
    }
}

/// The fast path: the whole simulation into `store`, `writers` operations in flight.
pub async fn to_store(store: Arc<dyn Store>, params: Params, writers: usize) -> Result<Outcome> {
    let catalogue = Arc::new(Catalogue::builtin()?);
    let mut sim = Simulation::new(params, catalogue.clone())?;
    let at = step_instant(NaiveDate::from_ymd_opt(2020, 10, 1).context("date")?, 0);
    let parties = {
        let store = store.clone();
        register_parties(sim.parties(), writers, move |i, p| {
            let store = store.clone();
            async move {
                let r = store
                    .submit(Operation {
                        idempotency_key: IdempotencyKey::parse(&format!("gen-party-{i}"))?,
                        acting_user: "generate".into(),
                        on_behalf_of: None,
                        at,
                        command: Command::RegisterParty(NewParty {
                            cf: p.cf,
                            name: p.name,
                            kind: p.role.kind(),
                        }),
                        request_hash: None,
                        delegate: None,
                        checks: Vec::new(),
                    })
                    .await?;
                r.party.context("no party in the receipt")
            }
        })
        .await?
    };
    let fast = Arc::new(Fast {
        store,
        catalogue,
        parties,
        credits: Mutex::new(HashMap::new()),
    });
    let store = fast.store.clone();
    let outcome = drive(
        &mut sim,
        writers,
        |_| {},
        move |day, i, step| {
            let fast = fast.clone();
            async move {
                fast.step(day, i, step).await?;
                Ok(Ok(()))
            }
        },
    )
    .await?;
    eprintln!("{} credits communicated", sim.credits());
    // A bulk load: the planner should not wait for autovacuum to learn the tables' sizes.
    store.refresh_statistics().await?;
    Ok(outcome)
}

/// `--csv DIR`: the parties (`soggetti.csv`) and the option communications in the F8
/// import format (`comunicazioni.csv`), which `cessio register-parties` and `cessio import` load. Cessions,
/// answers and F24 uses have no import format on the platform; they are replayed instead.
pub fn to_csv(dir: &std::path::Path, params: Params) -> Result<(u64, u64)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let catalogue = Arc::new(Catalogue::builtin()?);
    let mut sim = Simulation::new(params, catalogue)?;
    let open = |name: &str| -> Result<std::io::BufWriter<std::fs::File>> {
        let path = dir.join(name);
        Ok(std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        ))
    };
    // The csv crate's writer quotes what needs quoting (a name with ';', '"' or a line
    // break), so that `register-parties` reads back exactly what was written.
    let writer = |name: &str| -> Result<csv::Writer<std::io::BufWriter<std::fs::File>>> {
        Ok(csv::WriterBuilder::new()
            .delimiter(b';')
            .from_writer(open(name)?))
    };
    let mut parties = writer("soggetti.csv")?;
    // The header `cessio register-parties` expects.
    parties.write_record(["codice_fiscale", "denominazione", "tipo"])?;
    for p in sim.parties() {
        parties.write_record([p.cf.as_str(), p.name.as_str(), p.role.kind().as_str()])?;
    }
    parties.flush()?;
    let cfs: Vec<String> = sim
        .parties()
        .iter()
        .map(|p| p.cf.as_str().to_string())
        .collect();
    let mut out = writer("comunicazioni.csv")?;
    // The first nine columns of the import format, then the dates the exceptions the
    // simulation declares need.
    use cessio_core::opt_stop::Fact;
    const FACTS: [Fact; 3] = [Fact::CilasFiled, Fact::PermitApplied, Fact::Invoice];
    out.write_record(
        cessio_core::csv::COLUMNS[..9]
            .iter()
            .copied()
            .chain(FACTS.iter().map(|f| f.column())),
    )?;
    let mut rows = 0;
    while let Some((day, steps)) = sim.next_day()? {
        for s in steps {
            if let Step::Communicate(c) = s {
                // R-OPT-STOP: from 17/02/2023 a communication names its exception by code,
                // with the dates it needs.
                let declared = c
                    .exception
                    .then(|| crate::national::opt_stop_exception(c.type_key, day));
                let code = declared.as_ref().map_or("", |e| e.code.as_str());
                let cell = |fact: Fact| {
                    declared
                        .as_ref()
                        .and_then(|e| e.date(fact))
                        .map_or(String::new(), |d| d.format("%d/%m/%Y").to_string())
                };
                let fixed = [
                    cfs[c.beneficiary as usize].clone(),
                    c.type_key.to_string(),
                    c.expense_year.to_string(),
                    c.origin.to_string(),
                    cfs[c.holder as usize].clone(),
                    Cents::to_decimal_string(c.total, ','),
                    day.format("%d/%m/%Y").to_string(),
                    format!("GEN{}", c.credit),
                    code.to_string(),
                ];
                out.write_record(fixed.into_iter().chain(FACTS.map(cell)))?;
                rows += 1;
            }
        }
    }
    out.flush()?;
    Ok((cfs.len() as u64, rows))
}

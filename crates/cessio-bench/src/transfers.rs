//! Durable transfers as fast as the store takes them: `bench` measures transfers per second,
//! one transaction per operation against group commit; `load` is the writer the crash
//! tests kill, printing "ack KEY" for each acknowledged cession.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cessio_core::ledger::{PartyId, RataId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::time::RefYear;
use cessio_store::{
    AccountRef, Command, CreditOrigin, IdempotencyKey, NewCredit, NewParty, NewRata, Operation,
    PartyKind, Store, TransferRequest, WriteConfig,
};
use cessio_store_postgres::PgStore;
use cessio_store_sqlite::SqliteStore;
use chrono::Utc;

use crate::db::{drop_schema, open};
use crate::national::entity_cf;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Backends to measure: sqlite, postgres.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    backends: Vec<String>,
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    writers: Vec<usize>,
    /// Seconds each configuration runs.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    #[arg(
        long,
        env = "CESSIO_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// Folder for the SQLite files (on the disk being measured).
    #[arg(long, default_value = "target/bench")]
    dir: std::path::PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    #[arg(long)]
    database_url: String,
    #[arg(long)]
    schema: Option<String>,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    #[arg(long, default_value_t = 1_000_000)]
    ops: u64,
    #[arg(long, default_value = "load")]
    key_prefix: String,
}

fn operation(key: &str, command: Command) -> Result<Operation> {
    Ok(Operation {
        idempotency_key: IdempotencyKey::parse(key)?,
        acting_user: "bench".into(),
        on_behalf_of: None,
        at: Utc::now(),
        command,
        request_hash: None,
        delegate: None,
        checks: Vec::new(),
    })
}

/// Registers (or finds) a party with test code `n`.
async fn ensure_party(store: &Arc<dyn Store>, n: u32, tag: &str) -> Result<PartyId> {
    let cf = entity_cf(n)?;
    if let Some(p) = store.party_by_cf(&cf).await? {
        return Ok(p.id);
    }
    let r = store
        .submit(operation(
            &format!("{tag}-party-{n}"),
            Command::RegisterParty(NewParty {
                cf,
                name: format!("Soggetto di prova {n}"),
                kind: PartyKind::Company,
            }),
        )?)
        .await?;
    r.party.context("no party in receipt")
}

/// A one-rata credit large enough never to run out during a run.
async fn fund(store: &Arc<dyn Store>, holder: PartyId, key: &str) -> Result<RataId> {
    let r = store
        .submit(operation(
            key,
            Command::IssueCredit(NewCredit {
                type_key: "superbonus".into(),
                beneficiary: holder,
                holder,
                origin: CreditOrigin::Cessione,
                expense_year: 2023,
                communicated_on: chrono::NaiveDate::from_ymd_opt(2024, 3, 1).context("date")?,
                tracciabile: true,
                rate: vec![NewRata {
                    year: RefYear::new(2024),
                    amount: Cents::new(1_000_000_000_000_000),
                    codice_tributo: "7701".into(),
                }],
                awaiting_answer: false,
                beneficiary_no_tax_area: false,
            }),
        )?)
        .await?;
    Ok(r.credit.context("no credit in receipt")?.rate[0].id)
}

/// A cession as the app sends it: with the §5 path it carries (`cessio_store::paths`).
fn cession(rata: RataId, from: PartyId, to: PartyId) -> Command {
    Command::Transfer(vec![TransferRequest::Move {
        rata,
        from: AccountRef::Holder(from),
        to: AccountRef::Holder(to),
        amount: Cents::new(1),
        kind: TransferKind::Cession,
        pending: true,
        disclose: false,
        path: Some(cessio_store::paths::CarriedPath {
            before_cutoff: 1,
            from_cutoff: 0,
            bank_client: false,
        }),
    }])
}

pub async fn load(args: LoadArgs) -> Result<()> {
    let store = open(
        &args.database_url,
        args.schema.as_deref(),
        WriteConfig::default(),
    )
    .await?;
    let (concurrency, ops, prefix) = (args.concurrency, args.ops, args.key_prefix.as_str());
    let sink = ensure_party(&store, 9_999_999, prefix).await?;
    let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let n = u32::try_from(w + 1)?;
        let source = ensure_party(&store, n, prefix).await?;
        let rata = fund(&store, source, &format!("{prefix}-fund-{w}")).await?;
        let store = store.clone();
        let stdout = stdout.clone();
        let prefix = prefix.to_string();
        let per_task = ops / concurrency as u64;
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                let key = format!("{prefix}-{w}-{i}");
                store
                    .submit(operation(&key, cession(rata, source, sink))?)
                    .await?;
                // Printed only after the commit: every line is a promise the store keeps.
                let mut out = stdout.lock().map_err(|e| anyhow::anyhow!("{e}"))?;
                writeln!(out, "ack {key}")?;
                out.flush()?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

struct BenchResult {
    ops: u64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

async fn bench_one(
    store: Arc<dyn Store>,
    writers: usize,
    seconds: u64,
    tag: &str,
) -> Result<BenchResult> {
    let sink = ensure_party(&store, 9_999_999, tag).await?;
    let mut sources = Vec::new();
    for w in 0..writers {
        let source = ensure_party(&store, u32::try_from(w + 1)?, tag).await?;
        let rata = fund(&store, source, &format!("{tag}-fund-{w}")).await?;
        sources.push((source, rata));
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (w, (source, rata)) in sources.into_iter().enumerate() {
        let store = store.clone();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let op = operation(&format!("{tag}-{w}-{i}"), cession(rata, source, sink))?;
                let t = Instant::now();
                store.submit(op).await?;
                latencies.push(t.elapsed());
                i += 1;
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    let pct = |p: f64| -> Duration {
        if all.is_empty() {
            return Duration::ZERO;
        }
        let i = ((all.len() as f64 - 1.0) * p).round() as usize;
        all[i]
    };
    Ok(BenchResult {
        ops: all.len() as u64,
        elapsed,
        p50: pct(0.5),
        p99: pct(0.99),
    })
}

pub async fn bench(args: BenchArgs) -> Result<()> {
    let BenchArgs {
        backends,
        writers,
        seconds,
        postgres_url,
        dir,
    } = args;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    println!("| backend | mode | writers | transfers | seconds | transfers/s | p50 ms | p99 ms |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let run_tag = Utc::now().timestamp_millis();
    for backend in &backends {
        for (mode, config) in [
            (
                "one transaction per operation",
                WriteConfig::one_transaction_per_operation(),
            ),
            ("group commit", WriteConfig::default()),
        ] {
            for &w in &writers {
                let tag = format!(
                    "b{run_tag}-{}-{w}",
                    if config.max_batch == 1 { "a" } else { "b" }
                );
                let (store, cleanup): (Arc<dyn Store>, Option<String>) = match backend.as_str() {
                    "sqlite" => {
                        let path = dir.join(format!("{tag}.db"));
                        for ext in ["", "-wal", "-shm"] {
                            let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
                        }
                        (Arc::new(SqliteStore::open(&path, config)?), None)
                    }
                    "postgres" => {
                        let schema = format!("bench_{}", tag.replace('-', "_"));
                        (
                            Arc::new(PgStore::connect(&postgres_url, Some(&schema), config).await?),
                            Some(schema),
                        )
                    }
                    other => bail!("unknown backend '{other}' (sqlite, postgres)"),
                };
                let r = bench_one(store.clone(), w, seconds, &tag).await?;
                let report = store.verify().await?;
                if !report.ok() {
                    bail!("verify failed after the run: {:?}", report.problems.first());
                }
                println!(
                    "| {backend} | {mode} | {w} | {} | {:.1} | {:.0} | {:.2} | {:.2} |",
                    r.ops,
                    r.elapsed.as_secs_f64(),
                    r.ops as f64 / r.elapsed.as_secs_f64(),
                    r.p50.as_secs_f64() * 1e3,
                    r.p99.as_secs_f64() * 1e3,
                );
                drop(store);
                if let Some(schema) = cleanup {
                    drop_schema(&postgres_url, &schema).await?;
                }
            }
        }
    }
    Ok(())
}

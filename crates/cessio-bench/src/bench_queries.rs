//! `cessio-bench bench-queries`: builds a register of N operations through the store (group
//! commit, many concurrent writers) and times the read functions for its largest holder:
//! F1 monitoring, F3 grouping, F4 list and export. Prints a Markdown table.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cessio_app::{App, IncomingFilter, MovementFilter};
use cessio_core::catalogue::Catalogue;
use cessio_core::ledger::{PartyId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::time::{FixedClock, RefYear, rome_date};
use cessio_store::{
    AccountRef, BackendKind, Command, CreditOrigin, EntryQuery, EntryRole, IdempotencyKey,
    NewCredit, NewParty, NewRata, Operation, PartyKind, Store, TransferRequest, WriteConfig,
};
use cessio_store_postgres::PgStore;
use cessio_store_sqlite::SqliteStore;
use chrono::{Datelike, Duration as ChronoDuration, TimeZone, Utc};

use crate::db::drop_schema;
use crate::national::entity_cf;

#[derive(clap::Args, Debug)]
pub struct BenchQueriesArgs {
    #[arg(long, default_value = "sqlite://target/bench/queries.db")]
    database_url: String,
    #[arg(long, default_value_t = 1_000_000)]
    operations: u64,
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Build the national register of `cessio-bench generate` at this scale instead (seed
    /// 1), and time the functions for its largest bank.
    #[arg(long)]
    scale: Option<f64>,
    /// Keep the register afterwards (the PostgreSQL schema is otherwise dropped).
    #[arg(long)]
    keep: bool,
    /// Time the functions on the national register an earlier `--scale … --keep` run
    /// left in the database, without building a new one.
    #[arg(long, conflicts_with_all = ["scale", "operations"])]
    existing: bool,
}

/// The command: a fresh register (or the one `--existing` names), built and timed.
pub async fn command(args: BenchQueriesArgs) -> Result<()> {
    let BenchQueriesArgs {
        database_url,
        operations,
        runs,
        scale,
        keep,
        existing,
    } = args;
    let (store, backend, schema): (Arc<dyn Store>, &str, Option<String>) =
        match cessio_store::backend_kind(&database_url)? {
            BackendKind::Sqlite => {
                let path = cessio_store::sqlite_path(&database_url)?;
                if existing {
                    anyhow::ensure!(
                        std::path::Path::new(path).exists(),
                        "{path}: no register to time (build one with --scale … first)"
                    );
                } else {
                    if let Some(dir) = std::path::Path::new(path).parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    for ext in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{path}{ext}"));
                    }
                }
                (
                    Arc::new(SqliteStore::open_url(
                        &database_url,
                        WriteConfig::default(),
                    )?),
                    "sqlite",
                    None,
                )
            }
            BackendKind::Postgres => {
                // The national register gets a known schema, so that `cessio serve` can be
                // load-tested on it afterwards (--keep); a new run replaces it.
                let schema = if existing {
                    "bench_national".to_string()
                } else if scale.is_some() {
                    drop_schema(&database_url, "bench_national").await?;
                    "bench_national".to_string()
                } else {
                    format!("bench_queries_{}", std::process::id())
                };
                (
                    Arc::new(
                        PgStore::connect(&database_url, Some(&schema), WriteConfig::default())
                            .await?,
                    ),
                    "postgres",
                    Some(schema),
                )
            }
        };
    if existing {
        println!("| backend | query | result | p50 ms | p99 ms |");
        println!("|---|---|---|---:|---:|");
        run_national(store, backend, runs).await?;
    } else if let Some(scale) = scale {
        let params = crate::national::Params { seed: 1, scale };
        let outcome = crate::generate::to_store(store.clone(), params, 256).await?;
        outcome.print(&format!("generate --scale {scale} ({backend})"));
        println!();
        println!("| backend | query | result | p50 ms | p99 ms |");
        println!("|---|---|---|---:|---:|");
        run_national(store, backend, runs).await?;
    } else {
        println!("| backend | query | result | p50 ms | p99 ms |");
        println!("|---|---|---|---:|---:|");
        run(store, backend, operations, runs).await?;
    }
    match schema {
        Some(schema) if keep || existing => eprintln!("kept in schema {schema}"),
        Some(schema) => drop_schema(&database_url, &schema).await?,
        None => {}
    }
    Ok(())
}

const HOLDERS: u32 = 2_000;
const BANKS: u32 = 5;
const WRITERS: usize = 256;

fn op(key: String, at: chrono::DateTime<Utc>, command: Command) -> Result<Operation> {
    Ok(Operation {
        idempotency_key: IdempotencyKey::parse(&key)?,
        acting_user: "bench".into(),
        on_behalf_of: None,
        at,
        command,
        request_hash: None,
        delegate: None,
        checks: Vec::new(),
    })
}

/// Operation `i` of the generated history: credits granted to holders, then cessions of
/// them to banks (the first bank takes half), three in four accepted, some refused.
async fn generate(store: Arc<dyn Store>, operations: u64) -> Result<()> {
    let start = Utc
        .with_ymd_and_hms(2023, 1, 2, 8, 0, 0)
        .single()
        .context("date")?;
    let mut ids = Vec::new();
    for n in 1..=HOLDERS + BANKS {
        let kind = if n > HOLDERS {
            PartyKind::Bank
        } else {
            PartyKind::Company
        };
        let r = store
            .submit(op(
                format!("p{n}"),
                start,
                Command::RegisterParty(NewParty {
                    cf: entity_cf(n)?,
                    name: format!("Soggetto {n}"),
                    kind,
                }),
            )?)
            .await?;
        ids.push(r.party.context("party")?);
    }
    let ids = Arc::new(ids);
    // Each credit is followed by its cession and its answer: three operations per credit.
    let credits = operations / 3;
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let (store, ids, next) = (store.clone(), ids.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= credits {
                    return anyhow::Ok(());
                }
                // Spread over two years of working hours.
                let at = start
                    + ChronoDuration::seconds(i64::try_from(i * 60_000 / credits.max(1))? * 1_000);
                let holder = ids[usize::try_from(i % u64::from(HOLDERS))?];
                let bank = if i % 2 == 0 {
                    ids[usize::try_from(HOLDERS)?]
                } else {
                    ids[usize::try_from(HOLDERS + 1 + u32::try_from(i % u64::from(BANKS - 1))?)?]
                };
                let amount = 100_000 + i64::try_from(i % 977)? * 1_000;
                let year = 2024 + u16::try_from(i % 3)?;
                let issued = store
                    .submit(op(
                        format!("c{i}"),
                        at,
                        Command::IssueCredit(NewCredit {
                            type_key: if i % 5 == 0 { "ecobonus" } else { "superbonus" }.into(),
                            beneficiary: holder,
                            holder,
                            origin: CreditOrigin::Cessione,
                            expense_year: year - 1,
                            communicated_on: at.date_naive(),
                            tracciabile: true,
                            rate: vec![NewRata {
                                year: RefYear::new(year),
                                amount: Cents::new(amount),
                                codice_tributo: "7701".into(),
                            }],
                            awaiting_answer: false,
                            beneficiary_no_tax_area: false,
                        }),
                    )?)
                    .await?;
                let rata = issued.credit.context("credit")?.rate[0].id;
                let ceded = store
                    .submit(op(
                        format!("s{i}"),
                        at + ChronoDuration::minutes(5),
                        Command::Transfer(vec![TransferRequest::Move {
                            rata,
                            from: AccountRef::Holder(holder),
                            to: AccountRef::Holder(bank),
                            amount: Cents::new(amount),
                            kind: TransferKind::Cession,
                            pending: true,
                            disclose: i % 3 == 0,
                            path: None,
                        }]),
                    )?)
                    .await?;
                // One in ten stays pending; of the rest one in six is refused.
                if i % 10 != 0 {
                    let pending = ceded.transfers[0];
                    let answer = if i % 6 == 0 {
                        TransferRequest::Void { pending }
                    } else {
                        TransferRequest::Post { pending }
                    };
                    store
                        .submit(op(
                            format!("a{i}"),
                            at + ChronoDuration::days(7),
                            Command::Transfer(vec![answer]),
                        )?)
                        .await?;
                }
                if i % 20_000 == 0 && i > 0 {
                    let rate = i as f64 / started.elapsed().as_secs_f64();
                    eprintln!("{i}/{credits} credits ({rate:.0}/s)");
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort_unstable();
    let at = |p: f64| {
        let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples[i].as_secs_f64() * 1e3
    };
    (at(0.5), at(0.99))
}

async fn time<F, Fut, T>(runs: usize, mut f: F) -> Result<(f64, f64, T)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut samples = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        last = Some(f().await?);
        samples.push(t.elapsed());
    }
    let (p50, p99) = percentiles(samples);
    Ok((p50, p99, last.context("no runs")?))
}

pub async fn run(store: Arc<dyn Store>, backend: &str, operations: u64, runs: usize) -> Result<()> {
    let t = Instant::now();
    generate(store.clone(), operations).await?;
    let counts = store.counts().await?;
    eprintln!(
        "generated {} operations, {} transfers in {:.1?}",
        counts.operations,
        counts.transfers,
        t.elapsed()
    );
    let clock = FixedClock::at_rome(2025, 6, 1, 10, 0);
    let app = App::new(store, Arc::new(clock), Arc::new(Catalogue::builtin()?));
    let console = App::console();
    let bank = app.party_by_cf(entity_cf(HOLDERS + 1)?.as_str()).await?.id;
    let (p50, p99, rows) = time(runs, || async {
        Ok(app.monitoring(&console, bank, None).await?.len())
    })
    .await?;
    println!("| {backend} | F1 monitoraggio, largest bank | {rows} rows | {p50:.1} | {p99:.1} |");
    let filter = IncomingFilter {
        year: Some(2024),
        cedente_cf: Some(entity_cf(1)?.as_str().to_string()),
        ..IncomingFilter::default()
    };
    let (p50, p99, rows) = time(runs, || async {
        Ok(app.incoming(&console, bank, &filter).await?.len())
    })
    .await?;
    println!("| {backend} | F3 groups, one cedente | {rows} groups | {p50:.1} | {p99:.1} |");
    let all = IncomingFilter::default();
    let (p50, p99, outcome) = time(runs, || async {
        Ok(match app.incoming(&console, bank, &all).await {
            Ok(groups) => format!("{} groups", groups.len()),
            Err(e) => format!("refused: {} (R-1000)", e.code()),
        })
    })
    .await?;
    println!("| {backend} | F3 everything pending, no filter | {outcome} | {p50:.1} | {p99:.1} |");
    let day = chrono::NaiveDate::from_ymd_opt(2023, 6, 1).context("date")?;
    let movements = MovementFilter {
        registered_from: Some(day),
        registered_to: Some(day),
        ..MovementFilter::default()
    };
    let (p50, p99, rows) = time(runs, || async {
        Ok(app.movements(&console, bank, &movements).await?.len())
    })
    .await?;
    println!("| {backend} | F4 list, one day | {rows} rows | {p50:.1} | {p99:.1} |");
    let export = MovementFilter {
        registered_from: chrono::NaiveDate::from_ymd_opt(2023, 3, 1),
        registered_to: chrono::NaiveDate::from_ymd_opt(2023, 3, 31),
        ..MovementFilter::default()
    };
    let (p50, p99, outcome) = time(runs.min(5), || async {
        export_csv(&app, &console, bank, &export).await
    })
    .await?;
    println!("| {backend} | F4 CSV export, one month | {outcome} | {p50:.1} | {p99:.1} |");
    Ok(())
}

/// The read functions on a national register (`cessio-bench generate`'s simulation) for its
/// largest bank: F1 today (the summary) and at a past date (the history), F3 with and
/// without filters, F4's list of one day and the CSV export of one month.
pub async fn run_national(store: Arc<dyn Store>, backend: &str, runs: usize) -> Result<()> {
    let counts = store.counts().await?;
    eprintln!(
        "register: {} parties, {} operations, {} transfers",
        counts.parties, counts.operations, counts.transfers
    );
    let clock = FixedClock::at_rome(2023, 4, 3, 10, 0);
    let app = App::new(
        store.clone(),
        Arc::new(clock),
        Arc::new(Catalogue::builtin()?),
    );
    let console = App::console();
    let bank = app
        .party_by_cf(crate::national::largest_bank_cf()?.as_str())
        .await?
        .id;
    // F1 today: the first look reads every holding's kept §5 path and computes its
    // cedibilità; then the app keeps each holding's cedibilità and recomputes only what
    // moved since.
    let (p50, _, rows) = time(1, || async {
        Ok(app.monitoring(&console, bank, None).await?.len())
    })
    .await?;
    println!(
        "| {backend} | F1 monitoraggio today, largest bank, first look (every holding read) | {rows} rows | {p50:.1} | {p50:.1} |"
    );
    let (p50, p99, rows) = time(runs, || async {
        Ok(app.monitoring(&console, bank, None).await?.len())
    })
    .await?;
    println!(
        "| {backend} | F1 monitoraggio today, largest bank, cedibilità kept (nothing moved) | {rows} rows | {p50:.1} | {p99:.1} |"
    );
    let past = chrono::NaiveDate::from_ymd_opt(2022, 12, 31).context("date")?;
    let (p50, p99, rows) = time(runs.min(5), || async {
        Ok(app.monitoring(&console, bank, Some(past)).await?.len())
    })
    .await?;
    println!(
        "| {backend} | F1 monitoraggio as of 31/12/2022, largest bank | {rows} rows | {p50:.1} | {p99:.1} |"
    );
    // F3 for the cedente with the most cessions awaiting the bank's answer: the group a
    // back office would open first.
    let (cedente, cedente_day) = busiest_cedente(&store, bank).await?;
    let cedente_cf = cedente.clone();
    eprintln!("busiest cedente: {cedente}");
    eprintln!("its last day: {cedente_day}");
    // F2's check of one cession line replays that holding alone, not the bank's all.
    let held = store
        .holding_infos(&cessio_store::HoldingQuery {
            only_available: true,
            limit: 1,
            ..cessio_store::HoldingQuery::of(bank)
        })
        .await?;
    if let Some(h) = held.first() {
        let lines = [cessio_app::CessionLine {
            rata: h.rata.id,
            cessionario_cf: cedente.clone(),
            amount: None,
        }];
        // The bank's own user, signed in with SPID (a preview writes nothing).
        let banker = cessio_app::Principal {
            user_id: 0,
            username: "banca".into(),
            display_name: "Banca".into(),
            role: cessio_store::Role::User,
            party: Some(bank),
            method: cessio_app::LoginMethod::Strong,
        };
        let (p50, p99, outcome) = time(runs, || async {
            Ok(match app.preview_cession(&banker, bank, &lines).await {
                Ok(checks) => match checks.first().and_then(Option::as_ref) {
                    None => "accepted".to_string(),
                    Some(e) => format!("refused: {}", e.code()),
                },
                Err(e) => format!("refused: {}", e.code()),
            })
        })
        .await?;
        println!(
            "| {backend} | F2 check of a one-line cession, largest bank | {outcome} | {p50:.1} | {p99:.1} |"
        );
    }
    let filter = IncomingFilter {
        cedente_cf: Some(cedente.clone()),
        ..IncomingFilter::default()
    };
    let (p50, p99, groups) = time(runs, || async {
        Ok(app.incoming(&console, bank, &filter).await?)
    })
    .await?;
    let operations: usize = groups.iter().map(|g| g.operations).sum();
    println!(
        "| {backend} | F3 groups, the busiest cedente | {} groups of {operations} pending | {p50:.1} | {p99:.1} |",
        groups.len()
    );
    let all = IncomingFilter::default();
    let (p50, p99, outcome) = time(runs.min(5), || async {
        Ok(match app.incoming(&console, bank, &all).await {
            Ok(groups) => format!("{} groups", groups.len()),
            Err(cessio_app::AppError::FiltersRequired { found, .. }) => {
                format!("{found} pending: filters_required (R-1000)")
            }
            Err(e) => format!("refused: {}", e.code()),
        })
    })
    .await?;
    println!("| {backend} | F3 everything pending, no filter | {outcome} | {p50:.1} | {p99:.1} |");
    let day = chrono::NaiveDate::from_ymd_opt(2023, 3, 15).context("date")?;
    let one_day = MovementFilter {
        registered_from: Some(day),
        registered_to: Some(day),
        ..MovementFilter::default()
    };
    // At scale a bank's day can be over the 1,000 rows a list shows (R-1000): the user
    // narrows it, here to the busiest cedente on the last day it ceded to the bank.
    let one_day_one_cedente = MovementFilter {
        registered_from: Some(cedente_day),
        registered_to: Some(cedente_day),
        cedente_cf: Some(cedente),
        ..MovementFilter::default()
    };
    for (label, movements) in [
        ("F4 list, one day", &one_day),
        ("F4 list, one day, one cedente", &one_day_one_cedente),
    ] {
        let (p50, p99, rows) = time(runs, || async {
            Ok(app
                .movements(&console, bank, movements)
                .await
                .map(|r| format!("{} rows", r.len()))
                .unwrap_or_else(|e| format!("refused: {}", e.code())))
        })
        .await?;
        println!("| {backend} | {label} | {rows} | {p50:.1} | {p99:.1} |");
    }
    let last = chrono::NaiveDate::from_ymd_opt(2023, 3, 31).context("date")?;
    let widest = widest_export(&app, bank, last).await?;
    for (label, from, to) in [
        ("one month".to_string(), (2023, 3, 1), (2023, 3, 31)),
        ("one quarter".to_string(), (2023, 1, 1), (2023, 3, 31)),
        (
            format!("the widest window under R-50000 ({widest} days)"),
            {
                let from = last - ChronoDuration::days(i64::from(widest) - 1);
                (from.year(), from.month(), from.day())
            },
            (2023, 3, 31),
        ),
    ] {
        let export = MovementFilter {
            registered_from: chrono::NaiveDate::from_ymd_opt(from.0, from.1, from.2),
            registered_to: chrono::NaiveDate::from_ymd_opt(to.0, to.1, to.2),
            ..MovementFilter::default()
        };
        let (p50, p99, outcome) = time(runs.min(5), || async {
            export_csv(&app, &console, bank, &export).await
        })
        .await?;
        println!("| {backend} | F4 CSV export, {label} | {outcome} | {p50:.1} | {p99:.1} |");
    }
    // Last, as it changes the register: the bank accepts the busiest cedente's cessions
    // (written through the store, as the generator does; a second run finds them accepted),
    // and F1 recomputes those holdings alone.
    let cedente_id = app.party_by_cf(&cedente_cf).await?.id;
    let pending = store
        .find_entries(&EntryQuery {
            role: EntryRole::Received,
            awaiting_answer: true,
            cessions_only: true,
            counterparty: Some(cedente_id),
            ..EntryQuery::of(bank)
        })
        .await?;
    if !pending.is_empty() {
        let posts = pending
            .iter()
            .map(|e| TransferRequest::Post {
                pending: e.transfer,
            })
            .collect();
        let mut accept = op(
            format!("bench-accept-{cedente_cf}"),
            app.now(),
            Command::Transfer(posts),
        )?;
        accept.on_behalf_of = Some(bank);
        store.submit(accept).await?;
    }
    let (p50, _, rows) = time(1, || async {
        Ok(app.monitoring(&console, bank, None).await?.len())
    })
    .await?;
    println!(
        "| {backend} | F1 monitoraggio today, largest bank, after it accepted {} cessions (those holdings recomputed) | {rows} rows | {p50:.1} | {p50:.1} |",
        pending.len()
    );
    Ok(())
}

/// The codice fiscale of the party with the most cessions awaiting `bank`'s answer, and
/// the last day (Rome) it registered one.
async fn busiest_cedente(
    store: &Arc<dyn Store>,
    bank: PartyId,
) -> Result<(String, chrono::NaiveDate)> {
    let pending = store
        .find_entries(&EntryQuery {
            role: EntryRole::Received,
            awaiting_answer: true,
            cessions_only: true,
            ..EntryQuery::of(bank)
        })
        .await?;
    let mut by_cedente: HashMap<PartyId, usize> = HashMap::new();
    // A received movement's `party` is its cedente (`counterparty` is the bank itself).
    for e in &pending {
        if let Some(c) = e.party {
            *by_cedente.entry(c).or_default() += 1;
        }
    }
    let (cedente, _) = by_cedente
        .into_iter()
        .max_by_key(|&(id, n)| (n, std::cmp::Reverse(id)))
        .context("the bank has nothing pending")?;
    let last = pending
        .iter()
        .filter(|e| e.party == Some(cedente))
        .map(|e| e.at)
        .max()
        .context("the cedente has nothing pending")?;
    let party = store.party(cedente).await?.context("cedente")?;
    Ok((party.cf.as_str().to_string(), rome_date(last)))
}

/// F4's CSV export read to its end as the server sends it: rows, bytes, and the largest
/// piece held at once (what the export's memory grows with, if anything).
async fn export_csv(
    app: &App,
    who: &cessio_app::Principal,
    bank: PartyId,
    filter: &MovementFilter,
) -> Result<String> {
    let mut export = match app.movements_export(who, bank, filter).await {
        Ok(export) => export,
        Err(e) => return Ok(format!("refused: {}", e.code())),
    };
    let (mut bytes, mut largest) = (0, 0);
    while let Some(piece) = export.next_csv().await {
        let piece = piece?;
        bytes += piece.len();
        largest = largest.max(piece.len());
    }
    Ok(format!(
        "{} rows, {bytes} bytes, largest piece {largest} bytes",
        export.rows_read()
    ))
}

/// The most days ending on `last` whose movements the bank may export whole (R-50000),
/// found by bisection on the export's own refusal.
async fn widest_export(app: &App, bank: PartyId, last: chrono::NaiveDate) -> Result<u32> {
    let (mut lo, mut hi) = (1u32, 366u32);
    if export_fits(app, bank, last, hi).await? {
        return Ok(hi);
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if export_fits(app, bank, last, mid).await? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

async fn export_fits(app: &App, bank: PartyId, last: chrono::NaiveDate, days: u32) -> Result<bool> {
    let filter = MovementFilter {
        registered_from: Some(last - ChronoDuration::days(i64::from(days) - 1)),
        registered_to: Some(last),
        ..MovementFilter::default()
    };
    match app.movements_export(&App::console(), bank, &filter).await {
        Ok(_) => Ok(true),
        Err(e) if e.code() == "too_many_rows" => Ok(false),
        Err(e) => Err(e.into()),
    }
}

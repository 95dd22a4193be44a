//! The `cessio` command. It translates flags into calls on the store and prints results;
//! it holds no rules.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cessio_app::{App, MovementFilter};
use cessio_core::catalogue::Catalogue;
use cessio_core::cf::CodiceFiscale;
use cessio_core::ledger::{PartyId, RataId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::time::RefYear;
use cessio_core::time::{Clock, FixedClock, SystemClock, rome_local_to_utc};
use cessio_store::{
    AccountRef, BackendKind, Command, CreditOrigin, IdempotencyKey, NewCredit, NewParty, NewRata,
    Operation, PartyKind, Store, TransferRequest, WriteConfig,
};
use cessio_store_postgres::PgStore;
use cessio_store_sqlite::SqliteStore;
use chrono::Utc;
use clap::{Parser, Subcommand};

mod bench_queries;
mod close_year;
mod demo;
mod generate;
mod loadtest;
mod national;
mod operator;
mod parties_csv;
mod rent;
mod replay;
mod strong;

#[derive(Parser, Debug)]
#[command(
    name = "cessio",
    version,
    about = "Registro dei crediti d'imposta cedibili"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// Where the register is: the URL's scheme picks the backend.
#[derive(clap::Args, Debug)]
struct DbArgs {
    #[arg(
        long,
        env = "CESSIO_DATABASE_URL",
        default_value = "sqlite://cessio.db"
    )]
    database_url: String,
    /// PostgreSQL schema to work in (default: the connection's search_path).
    #[arg(long, env = "CESSIO_DATABASE_SCHEMA")]
    schema: Option<String>,
}

impl DbArgs {
    async fn open(&self) -> Result<Arc<dyn Store>> {
        open(
            &self.database_url,
            self.schema.as_deref(),
            WriteConfig::default(),
        )
        .await
    }
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Serve the JSON API (and /healthz, /readyz, /metrics).
    Serve {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long, env = "CESSIO_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Start from a fresh demo register (cessio-demo.db unless --database-url is given)
        /// and print its logins.
        #[arg(long)]
        demo: bool,
        /// Fix the platform's clock (Europe/Rome local time, e.g. 2024-04-15T10:00 or
        /// 2024-04-15T10:00:00), for demonstrations and tests.
        #[arg(long, env = "CESSIO_CLOCK", value_parser = parse_local_time)]
        clock: Option<chrono::NaiveDateTime>,
        /// Mark session cookies Secure (when served over TLS).
        #[arg(long, env = "CESSIO_SECURE_COOKIES")]
        secure_cookies: bool,
        #[command(flatten)]
        strong: strong::StrongArgs,
        /// A streaming replica of the database to read F1 Monitoraggio and F4 Lista
        /// movimenti (and its export) from; writes and their checks stay on the primary.
        #[arg(long, env = "CESSIO_READ_DATABASE_URL")]
        read_database_url: Option<String>,
        /// How far behind its primary (in milliseconds) the read replica may be: past it,
        /// or while it does not answer, F1 and F4 read the primary.
        #[arg(long, env = "CESSIO_READ_MAX_LAG_MS", default_value_t = 5000)]
        read_max_lag_ms: u64,
        /// At start, prepare F1 Monitoraggio of this many parties with the most holdings
        /// (the largest banks), in the background: their first look takes seconds at
        /// national scale, and is then not paid by a request. 0 prepares none.
        #[arg(long, env = "CESSIO_KEEP_MONITORING", default_value_t = 4)]
        keep_monitoring: usize,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Operators of the register: `operator add USERNAME` creates one (an empty register
    /// needs its first), with the password and PIN read without echo or from
    /// CESSIO_OPERATOR_PASSWORD and CESSIO_OPERATOR_PIN, never from the command line.
    Operator(operator::OperatorArgs),
    /// Register parties (F9) from a CSV file `codice_fiscale;denominazione;tipo` (the
    /// `soggetti.csv` of `generate --csv`): each row on its own, refused rows reported with
    /// line and reason, parties already registered left as they are.
    RegisterParties {
        #[command(flatten)]
        db: DbArgs,
        file: std::path::PathBuf,
    },
    /// Import option communications (F8) from a CSV file: each valid row is registered on
    /// its own (nothing half-imported), every refused row is reported with line and reason.
    /// Re-running the same file registers nothing twice.
    Import {
        #[command(flatten)]
        db: DbArgs,
        /// The CSV file (columns: cf_beneficiario;tipo;anno_spesa;origine;cf_cessionario;importo;data_comunicazione[;riferimento]).
        file: std::path::PathBuf,
    },
    /// Export a party's movements (F4) as CSV, at most 50,000 rows.
    Export {
        #[command(flatten)]
        db: DbArgs,
        /// The party's codice fiscale.
        #[arg(long)]
        party: String,
        #[arg(long)]
        registered_from: Option<chrono::NaiveDate>,
        #[arg(long)]
        registered_to: Option<chrono::NaiveDate>,
        #[arg(long)]
        year: Option<u16>,
        #[arg(long)]
        type_key: Option<String>,
        /// Output file (default: standard output).
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Recompute every balance from the history and check R-CONSERVE and the hash chain.
    /// Exits 1 and names the first broken row when something is wrong.
    Verify {
        #[command(flatten)]
        db: DbArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Measure durable transfers per second: one transaction per operation vs group commit.
    Bench {
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
    },
    /// Build a register of N operations and time F1, F3 and F4 on its largest holder.
    BenchQueries {
        #[arg(long, default_value = "sqlite://target/bench/queries.db")]
        database_url: String,
        #[arg(long, default_value_t = 1_000_000)]
        operations: u64,
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Build the national register of `cessio generate` at this scale instead (seed
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
    },
    /// Write cessions as fast as possible and print "ack KEY" for each acknowledged one.
    /// The crash tests kill it with SIGKILL and check every acknowledged key survived.
    #[command(hide = true)]
    Load {
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
    },
    /// Generate a national register (Oct 2020 – Mar 2023), deterministic for a seed:
    /// about 300,000 parties and 13.5 million operations at --scale 1.0. Written straight
    /// to the store with many concurrent writers, or as CSV files with --csv.
    Generate {
        #[command(flatten)]
        db: DbArgs,
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
    },
    /// Replay the generated national stream through the app layer in time order, as its
    /// users would (signed in, authorised, answering by group), with N concurrent clients;
    /// prints throughput and latency percentiles. Use an empty register.
    Replay {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long, default_value_t = 0.01)]
        scale: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Users sign in with password and confirm every operation with their PIN
        /// (Argon2 per operation) instead of SPID/CIE.
        #[arg(long)]
        pin: bool,
    },
    /// HTTP load on a running `cessio serve`: F1 and F4 reads of one party from many
    /// keep-alive connections, bounded in requests and seconds; prints requests/s and
    /// latency percentiles (and the server's peak memory with --server-pid).
    Loadtest(loadtest::LoadtestArgs),
    /// Compute the rent credit of art. 28 DL 34/2020 (R-RENT) month by month and print a
    /// table with the total. Exits 2 on bad input.
    RentCredit(rent::RentArgs),
    /// Close a year (F5): unused amounts whose last day of use has passed expire
    /// (R-F24-WINDOW-121/122). Idempotent; refused before 1 January of the next year.
    CloseYear(close_year::CloseYearArgs),
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CESSIO_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(run(cli))
}

async fn open(url: &str, schema: Option<&str>, config: WriteConfig) -> Result<Arc<dyn Store>> {
    Ok(match cessio_store::backend_kind(url)? {
        BackendKind::Sqlite => Arc::new(SqliteStore::open_url(url, config)?),
        BackendKind::Postgres => Arc::new(PgStore::connect(url, schema, config).await?),
    })
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Serve {
            db,
            listen,
            demo,
            clock,
            secure_cookies,
            strong,
            read_database_url,
            read_max_lag_ms,
            keep_monitoring,
            http,
        } => {
            serve(ServeArgs {
                db,
                listen,
                demo,
                clock,
                secure_cookies,
                strong,
                read_database_url,
                read_max_lag_ms,
                keep_monitoring,
                http,
            })
            .await
        }
        Cmd::Operator(args) => operator::run(args).await,
        Cmd::RegisterParties { db, file } => {
            let store = db.open().await?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let report = parties_csv::register(&app_for(store, None)?, &bytes).await?;
            for (line, code, message) in &report.refused {
                eprintln!("riga {line}: {message} [{code}]");
            }
            println!(
                "registrati {}, già presenti {}, rifiutati {}",
                report.registered,
                report.already_registered,
                report.refused.len()
            );
            if !report.refused.is_empty() {
                std::process::exit(2);
            }
            Ok(())
        }
        Cmd::Import { db, file } => {
            let store = db.open().await?;
            import(app_for(store, None)?, &file).await
        }
        Cmd::Export {
            db,
            party,
            registered_from,
            registered_to,
            year,
            type_key,
            output,
        } => {
            let app = app_for(db.open().await?, None)?;
            let console = App::console();
            let party = app.party_by_cf(&party).await?;
            let filter = MovementFilter {
                registered_from,
                registered_to,
                year,
                type_key,
                ..MovementFilter::default()
            };
            let mut export = app.movements_export(&console, party.id, &filter).await?;
            match &output {
                Some(path) => {
                    // Written beside the file and renamed at the end: an export cut short
                    // never leaves a file that looks whole.
                    let mut partial = path.as_os_str().to_owned();
                    partial.push(".part");
                    let partial = std::path::PathBuf::from(partial);
                    let file = std::fs::File::create(&partial)
                        .with_context(|| format!("creating {}", partial.display()))?;
                    match write_export(&mut export, std::io::BufWriter::new(file)).await {
                        Ok(()) => std::fs::rename(&partial, path)
                            .with_context(|| format!("writing {}", path.display()))?,
                        Err(e) => {
                            let _ = std::fs::remove_file(&partial);
                            return Err(e);
                        }
                    }
                }
                None => write_export(&mut export, std::io::stdout().lock()).await?,
            }
            eprintln!("{} movimenti esportati", export.rows_read());
            Ok(())
        }
        Cmd::Verify { db, json } => {
            let store = db.open().await?;
            let started = Instant::now();
            let report = store.verify().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "verified {} log entries, {} rows rebuilt from them, {} transfers, {} accounts, {} rate in {:.2?}",
                    report.log_entries,
                    report.projected_rows,
                    report.transfers,
                    report.accounts,
                    report.rate,
                    started.elapsed()
                );
                println!("last hash: {}", report.last_hash);
                for p in &report.problems {
                    println!("PROBLEM: {p}");
                }
                println!(
                    "{}",
                    if report.ok() {
                        "OK: balances match the history, R-CONSERVE holds, hash chain intact"
                    } else {
                        "FAILED"
                    }
                );
            }
            if !report.ok() {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Bench {
            backends,
            writers,
            seconds,
            postgres_url,
            dir,
        } => bench(&backends, &writers, seconds, &postgres_url, &dir).await,
        Cmd::BenchQueries {
            database_url,
            operations,
            runs,
            scale,
            keep,
            existing,
        } => {
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
                        // The national register gets a known schema, so that `cessio serve`
                        // can be load-tested on it afterwards (--keep); a new run replaces it.
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
                                PgStore::connect(
                                    &database_url,
                                    Some(&schema),
                                    WriteConfig::default(),
                                )
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
                bench_queries::run_national(store, backend, runs).await?;
            } else if let Some(scale) = scale {
                let params = national::Params { seed: 1, scale };
                let outcome = generate::to_store(store.clone(), params, 256).await?;
                outcome.print(&format!("generate --scale {scale} ({backend})"));
                println!();
                println!("| backend | query | result | p50 ms | p99 ms |");
                println!("|---|---|---|---:|---:|");
                bench_queries::run_national(store, backend, runs).await?;
            } else {
                println!("| backend | query | result | p50 ms | p99 ms |");
                println!("|---|---|---|---:|---:|");
                bench_queries::run(store, backend, operations, runs).await?;
            }
            match schema {
                Some(schema) if keep || existing => eprintln!("kept in schema {schema}"),
                Some(schema) => drop_schema(&database_url, &schema).await?,
                None => {}
            }
            Ok(())
        }
        Cmd::Load {
            database_url,
            schema,
            concurrency,
            ops,
            key_prefix,
        } => {
            let store = open(&database_url, schema.as_deref(), WriteConfig::default()).await?;
            load(store, concurrency, ops, &key_prefix).await
        }
        Cmd::Generate {
            db,
            scale,
            seed,
            writers,
            csv,
        } => {
            let params = national::Params { seed, scale };
            if let Some(dir) = csv {
                let (parties, rows) = generate::to_csv(&dir, params)?;
                println!(
                    "wrote {parties} parties and {rows} communications to {}",
                    dir.display()
                );
                return Ok(());
            }
            let store = db.open().await?;
            let outcome = generate::to_store(store.clone(), params, writers.max(1)).await?;
            outcome.print("generate");
            let counts = store.counts().await?;
            println!(
                "register: {} operations, {} transfers",
                counts.operations, counts.transfers
            );
            Ok(())
        }
        Cmd::Replay {
            db,
            scale,
            seed,
            clients,
            pin,
        } => {
            let store = db.open().await?;
            let outcome = replay::run(
                store.clone(),
                national::Params { seed, scale },
                clients.max(1),
                pin,
            )
            .await?;
            outcome.print("replay");
            let counts = store.counts().await?;
            println!(
                "register: {} operations, {} transfers",
                counts.operations, counts.transfers
            );
            Ok(())
        }
        Cmd::Loadtest(args) => loadtest::run(args).await,
        Cmd::RentCredit(args) => rent::run(&args),
        Cmd::CloseYear(args) => close_year::run(args).await,
    }
}

struct ServeArgs {
    db: DbArgs,
    listen: String,
    demo: bool,
    clock: Option<chrono::NaiveDateTime>,
    secure_cookies: bool,
    strong: strong::StrongArgs,
    read_database_url: Option<String>,
    read_max_lag_ms: u64,
    keep_monitoring: usize,
    http: HttpArgs,
}

/// What the server allows its clients: connections, time to send headers, and whose
/// forwarded address it believes.
#[derive(clap::Args, Debug)]
struct HttpArgs {
    /// Connections open at once; beyond this, new ones wait in the kernel's queue.
    #[arg(long, env = "CESSIO_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    /// Seconds a connection has to send a request's headers, from its opening or from the
    /// previous response (so idle keep-alive connections close after it too).
    #[arg(long, env = "CESSIO_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    header_timeout_secs: u64,
    /// Seconds a request (its body included) may take before it is answered 408.
    #[arg(long, env = "CESSIO_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    request_timeout_secs: u64,
    /// A proxy in front of the server (repeatable): from its address, the last entry of
    /// X-Forwarded-For is the client the login throttle counts.
    #[arg(
        long = "trusted-proxy",
        env = "CESSIO_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<std::net::IpAddr>,
}

/// A Rome wall-clock time with or without seconds.
fn parse_local_time(s: &str) -> Result<chrono::NaiveDateTime, String> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .map_err(|_| format!("«{s}» is not a local time: write 2024-04-15T10:00"))
}

fn app_for(store: Arc<dyn Store>, clock: Option<chrono::NaiveDateTime>) -> Result<App> {
    let clock: Arc<dyn Clock> = match clock {
        Some(local) => Arc::new(FixedClock::new(
            rome_local_to_utc(local).context("--clock: that local time does not exist in Rome")?,
        )),
        None => Arc::new(SystemClock),
    };
    let catalogue = Catalogue::builtin().context("loading catalogue/types.toml")?;
    Ok(App::new(store, clock, Arc::new(catalogue)))
}

async fn serve(args: ServeArgs) -> Result<()> {
    let mut url = args.db.database_url;
    if args.demo {
        if url == "sqlite://cessio.db" {
            url = "sqlite://cessio-demo.db".into();
        }
        if let Ok(path) = cessio_store::sqlite_path(&url) {
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{ext}"));
            }
        }
    }
    let store = open(&url, args.db.schema.as_deref(), WriteConfig::default()).await?;
    if args.demo {
        if store.counts().await?.operations > 0 {
            bail!("--demo needs an empty database; {url} already holds data");
        }
        eprintln!("Creazione dei dati dimostrativi...");
        demo::seed(store.clone()).await?;
    }
    // The demo register lives in 2023–2025; on today's date most of its rate would have
    // expired (R-F24-WINDOW-121), so the demo runs on its own date unless told otherwise.
    let clock = match (args.clock, args.demo) {
        (None, true) => {
            let today = demo::today()?;
            println!(
                "Orologio della piattaforma fissato al {} (dimostrazione; --clock per cambiarlo)",
                today.format("%d/%m/%Y %H:%M")
            );
            Some(today)
        }
        (clock, _) => clock,
    };
    let mut app = app_for(store, clock)?;
    if !app.has_operator().await? {
        let hint = operator::first_operator_hint(&url, args.db.schema.as_deref());
        tracing::warn!(command = %hint, "the register has no operator: nobody can sign in to register users");
        eprintln!(
            "Il registro non ha ancora un operatore: nessuno può entrare e registrare soggetti e utenze."
        );
        eprintln!(
            "Per creare il primo (password e PIN chiesti senza eco, oppure da {} e {}):",
            operator::PASSWORD_ENV,
            operator::PIN_ENV
        );
        eprintln!("  {hint}");
    }
    if let Some(replica) = &args.read_database_url {
        if !matches!(cessio_store::backend_kind(replica)?, BackendKind::Postgres) {
            bail!("--read-database-url: a read replica is a PostgreSQL standby (postgres://…)");
        }
        let reads = PgStore::connect_read_only(replica, args.db.schema.as_deref())
            .await
            .with_context(|| format!("opening the read replica {replica}"))?;
        let policy = cessio_app::ReplicaPolicy::with_max_lag(std::time::Duration::from_millis(
            args.read_max_lag_ms,
        ));
        app = app.with_read_replica(Arc::new(reads), policy).await;
        eprintln!("Letture di monitoraggio e movimenti dalla replica {replica}");
    }
    if args.keep_monitoring > 0 {
        let app = app.clone();
        tokio::spawn(async move {
            match app.keep_largest_monitoring(args.keep_monitoring).await {
                Ok(kept) => {
                    for (party, holdings, took) in kept {
                        tracing::info!(
                            party,
                            holdings,
                            seconds = took.as_secs_f64(),
                            "F1 prepared"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "F1 not prepared at start"),
            }
        });
    }
    let mut state = cessio_web::WebState::new(app);
    state.secure_cookies = args.secure_cookies;
    state.trusted_proxies = args.http.trusted_proxies.clone();
    state.request_timeout = std::time::Duration::from_secs(args.http.request_timeout_secs.max(1));
    let limits = cessio_web::ConnectionLimits {
        max_connections: args.http.max_connections.max(1),
        header_read_timeout: std::time::Duration::from_secs(args.http.header_timeout_secs.max(1)),
        ..cessio_web::ConnectionLimits::default()
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // Kept alive for as long as the server runs: the demo's identity provider.
    let mut _provider = None;
    if let Some((login, provider)) = strong::configure(&args.strong, addr, args.demo).await? {
        if let Some(p) = &provider {
            println!("Provider di identità di prova: {}", p.issuer);
        }
        state.oidc = Some(login);
        _provider = provider;
    }
    println!("Cessio in ascolto su http://{addr}/  (API: http://{addr}/api/v1/openapi.json)");
    if args.demo {
        println!();
        println!(
            "Accessi dimostrativi (password {}, PIN {}):",
            demo::PASSWORD,
            demo::PIN
        );
        for l in demo::LOGINS {
            println!("  {:<14} {}", l.username, l.who);
        }
        println!();
        println!(
            "Prova: curl -c /tmp/c -H 'content-type: application/json' -d '{{\"username\":\"banca\",\"password\":\"{}\"}}' http://{addr}/api/v1/session",
            demo::PASSWORD
        );
    }
    cessio_web::serve(listener, cessio_web::router(state), limits, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

async fn import(app: App, file: &std::path::Path) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let started = Instant::now();
    let report = app
        .import_communications(&App::console(), None, &bytes, |done, total| {
            if done % 1000 == 0 || done == total {
                let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-6);
                let eta = (total - done) as f64 / rate.max(1e-6);
                eprint!("\r{done}/{total} righe  {rate:.0} righe/s  fine tra {eta:.0} s   ");
            }
        })
        .await?;
    eprintln!();
    for row in &report.rows {
        if let (Some(code), Some(message)) = (&row.code, &row.message) {
            eprintln!("riga {}: {message} [{code}]", row.line);
        }
    }
    println!(
        "registrate {}, già presenti {}, rifiutate {}",
        report.registered, report.already_registered, report.refused
    );
    if report.refused > 0 {
        std::process::exit(2);
    }
    Ok(())
}

fn entity_cf(n: u32) -> Result<CodiceFiscale> {
    CodiceFiscale::synthetic_entity(n).with_context(|| format!("party {n} past seven digits"))
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

fn cession(rata: RataId, from: PartyId, to: PartyId) -> Command {
    Command::Transfer(vec![TransferRequest::Move {
        rata,
        from: AccountRef::Holder(from),
        to: AccountRef::Holder(to),
        amount: Cents::new(1),
        kind: TransferKind::Cession,
        pending: true,
        disclose: false,
    }])
}

async fn load(store: Arc<dyn Store>, concurrency: usize, ops: u64, prefix: &str) -> Result<()> {
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

async fn bench(
    backends: &[String],
    writers: &[usize],
    seconds: u64,
    postgres_url: &str,
    dir: &std::path::Path,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    println!("| backend | mode | writers | transfers | seconds | transfers/s | p50 ms | p99 ms |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let run_tag = Utc::now().timestamp_millis();
    for backend in backends {
        for (mode, config) in [
            (
                "one transaction per operation",
                WriteConfig::one_transaction_per_operation(),
            ),
            ("group commit", WriteConfig::default()),
        ] {
            for &w in writers {
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
                            Arc::new(PgStore::connect(postgres_url, Some(&schema), config).await?),
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
                    drop_schema(postgres_url, &schema).await?;
                }
            }
        }
    }
    Ok(())
}

async fn drop_schema(url: &str, schema: &str) -> Result<()> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await?;
    Ok(())
}

/// Writes F4's export as it is read.
async fn write_export(export: &mut cessio_app::MovementExport, mut out: impl Write) -> Result<()> {
    while let Some(piece) = export.next_csv().await {
        out.write_all(&piece?)?;
    }
    Ok(out.flush()?)
}

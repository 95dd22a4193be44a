//! The `cessio` command. It translates flags into calls on the store and prints results;
//! it holds no rules.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cessio_app::{App, MovementFilter};
use cessio_core::catalogue::Catalogue;
use cessio_core::time::{Clock, FixedClock, SystemClock, rome_local_to_utc};
use cessio_store::{BackendKind, Store, WriteConfig};
use cessio_store_postgres::PgStore;
use cessio_store_sqlite::SqliteStore;
use clap::{Parser, Subcommand};

mod close_year;
mod demo;
mod operator;
mod parties_csv;
mod rent;
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
    /// `soggetti.csv` of `cessio-bench generate --csv`): each row on its own, refused rows
    /// reported with line and reason, parties already registered left as they are.
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
        let reads = open(replica, args.db.schema.as_deref(), WriteConfig::default())
            .await
            .with_context(|| format!("opening the read replica {replica}"))?;
        app = app.with_read_replica(reads);
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

/// Writes F4's export as it is read.
async fn write_export(export: &mut cessio_app::MovementExport, mut out: impl Write) -> Result<()> {
    while let Some(piece) = export.next_csv().await {
        out.write_all(&piece?)?;
    }
    Ok(out.flush()?)
}

//! `cessio serve`: the web pages and the JSON API on a register (a fresh demo one with
//! `--demo`), with the clock, strong login, read replica and HTTP limits its flags give.

use anyhow::{Context, Result, bail};

use crate::cmd::operator;
use crate::{demo, strong};
use cessio::register::{DbArgs, app_for, open, parse_local_time};
use cessio_store::WriteConfig;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
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
}

/// What the server allows its clients: connections, time to send headers, and whose
/// forwarded address it believes.
#[derive(clap::Args, Debug)]
pub struct HttpArgs {
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

pub async fn run(args: ServeArgs) -> Result<()> {
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
        if !matches!(
            cessio_store::backend_kind(replica)?,
            cessio_store::BackendKind::Postgres
        ) {
            bail!("--read-database-url: a read replica is a PostgreSQL standby (postgres://…)");
        }
        let policy = cessio_app::ReplicaPolicy::with_max_lag(std::time::Duration::from_millis(
            args.read_max_lag_ms,
        ));
        // A standby that is down now must not keep the register from serving: F1 and F4
        // read the primary until it answers.
        let (url, schema) = (replica.clone(), args.db.schema.clone());
        let connect: cessio_app::ConnectReplica = std::sync::Arc::new(move || {
            let (url, schema) = (url.clone(), schema.clone());
            Box::pin(async move {
                let store =
                    cessio_store_postgres::PgStore::connect_read_only(&url, schema.as_deref())
                        .await?;
                Ok(std::sync::Arc::new(store) as std::sync::Arc<dyn cessio_store::Store>)
            })
        });
        app = app.with_read_replica_connecting(connect, policy).await;
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
    // Webhooks are delivered by every process serving the register, on the wall clock:
    // retries are timing, not dates of the register.
    let (stop_deliveries, deliveries_stop) = tokio::sync::watch::channel(false);
    let deliverer = cessio_web::webhooks::Deliverer::new(
        app.clone(),
        std::sync::Arc::new(cessio_core::time::SystemClock),
    )
    .context("the webhook deliverer's HTTP client")?;
    tokio::spawn(deliverer.run(deliveries_stop.clone()));
    // Bulk jobs start when submitted; this finds those a stopped process left, and those
    // whose runner's lease ran out.
    let runner = app.clone();
    let mut jobs_stop = deliveries_stop;
    tokio::spawn(async move {
        loop {
            if let Err(e) = runner.run_bulk_jobs().await {
                tracing::warn!(error = %e, "bulk job runner stopped");
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                _ = jobs_stop.changed() => return,
            }
            if *jobs_stop.borrow() {
                return;
            }
        }
    });
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
    let _ = stop_deliveries.send(true);
    Ok(())
}

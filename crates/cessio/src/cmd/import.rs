//! `cessio import FILE`: option communications (F8) from a CSV file, as a bulk job like the
//! upload page's and the API's, run here with its progress; then a summary line, each
//! refused row on standard error, and exit code 2 when any was refused. Importing the same
//! file again goes on with its job, or shows its outcome: no row is registered twice.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use cessio_app::{App, BulkJobState};

use cessio::register::{DbArgs, app_for};

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The CSV file (columns: cf_beneficiario;tipo;anno_spesa;origine;cf_cessionario;importo;data_comunicazione[;riferimento]).
    file: std::path::PathBuf,
}

pub async fn run(args: ImportArgs) -> Result<()> {
    let app = app_for(args.db.open().await?, None)?;
    let file = &args.file;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let console = App::console();
    let job = app.submit_import_job(&console, None, &bytes).await?;
    eprintln!("lavoro {} ({} righe)", job.id, job.total_rows);
    let started = Instant::now();
    let from = job.done_rows;
    // Another process may hold the job (a server's runner): then wait for it to end.
    let ran = app
        .run_one_bulk_job(Some(job.id), |j| {
            let rate = (j.done_rows - from) as f64 / started.elapsed().as_secs_f64().max(1e-6);
            let eta = (j.total_rows - j.done_rows) as f64 / rate.max(1e-6);
            eprint!(
                "\r{}/{} righe  {rate:.0} righe/s  fine tra {eta:.0} s   ",
                j.done_rows, j.total_rows
            );
        })
        .await?;
    let job = match ran {
        Some(job) => job,
        None => {
            app.wait_bulk_job(&console, job.id, std::time::Duration::MAX)
                .await?
        }
    };
    eprintln!();
    if job.state != BulkJobState::Done {
        bail!(
            "il lavoro {} si è fermato: {}",
            job.id,
            job.error.as_deref().unwrap_or("senza un motivo registrato")
        );
    }
    let report = app.bulk_import_report(&console, job.id).await?;
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

//! `cessio import FILE`: option communications (F8) from a CSV file, with progress, a
//! summary line, each refused row on standard error, and exit code 2 when any was refused.

use std::time::Instant;

use anyhow::{Context, Result};
use cessio_app::App;

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

//! `cessio register-parties FILE`: the parties of a CSV file registered (F9), with a summary
//! line, each refused row on standard error, and exit code 2 when any was refused.

use anyhow::{Context, Result};

use crate::parties_csv;
use cessio::register::{DbArgs, app_for};

#[derive(clap::Args, Debug)]
pub struct RegisterPartiesArgs {
    #[command(flatten)]
    db: DbArgs,
    file: std::path::PathBuf,
}

pub async fn run(args: RegisterPartiesArgs) -> Result<()> {
    let store = args.db.open().await?;
    let file = &args.file;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
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

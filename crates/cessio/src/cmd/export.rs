//! `cessio export`: a party's movements (F4) as CSV, to standard output or to a file that
//! appears only whole.

use std::io::Write;

use anyhow::{Context, Result};
use cessio_app::{App, MovementFilter};

use cessio::register::{DbArgs, app_for};

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
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
}

pub async fn run(args: ExportArgs) -> Result<()> {
    let app = app_for(args.db.open().await?, None)?;
    let console = App::console();
    let party = app.party_by_cf(&args.party).await?;
    let filter = MovementFilter {
        registered_from: args.registered_from,
        registered_to: args.registered_to,
        year: args.year,
        type_key: args.type_key,
        ..MovementFilter::default()
    };
    let mut export = app.movements_export(&console, party.id, &filter).await?;
    match &args.output {
        Some(path) => {
            // Written beside the file and renamed at the end: an export cut short never
            // leaves a file that looks whole.
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

/// Writes F4's export as it is read.
async fn write_export(export: &mut cessio_app::MovementExport, mut out: impl Write) -> Result<()> {
    while let Some(piece) = export.next_csv().await {
        out.write_all(&piece?)?;
    }
    Ok(out.flush()?)
}

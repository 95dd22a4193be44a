//! `cessio close-year YEAR`: the year-end close of F5 (R-F24-WINDOW-121/122). Every amount
//! whose last day of use was in YEAR or before and that is still unused moves to expired.
//! Run it from 1 January of the next year (Europe/Rome); before then it refuses. Running it
//! again does nothing more: it is idempotent. No rules here: the app decides.

use anyhow::Result;
use cessio_app::App;

#[derive(clap::Args, Debug)]
pub struct CloseYearArgs {
    #[command(flatten)]
    pub db: cessio::register::DbArgs,
    /// The year to close, e.g. 2024.
    pub year: u16,
    /// Fix the platform's clock (Europe/Rome local time, e.g. 2025-01-01T00:00).
    #[arg(long, env = "CESSIO_CLOCK", value_parser = cessio::register::parse_local_time)]
    pub clock: Option<chrono::NaiveDateTime>,
}

pub async fn run(args: CloseYearArgs) -> Result<()> {
    let app = cessio::register::app_for(args.db.open().await?, args.clock)?;
    let report = app.close_year(&App::console(), args.year).await?;
    println!("Chiusura dell'anno {}", report.year);
    println!("Rate scadute in questa esecuzione: {}", report.holdings);
    println!("Importo scaduto: {}", report.amount);
    if report.holdings == 0 {
        println!("Nulla da scadere: l'anno risulta già chiuso.");
    }
    Ok(())
}

//! `cessio verify`: the register checked against its history, as text or JSON; exit code 1
//! when something is wrong.

use std::time::Instant;

use anyhow::Result;

use cessio::register::DbArgs;

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: VerifyArgs) -> Result<()> {
    let store = args.db.open().await?;
    let started = Instant::now();
    let report = store.verify().await?;
    if args.json {
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
        println!("log head: {} {}", report.log_seq, report.log_hash);
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

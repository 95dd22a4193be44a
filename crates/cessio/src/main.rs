//! The `cessio` command: its flags, and which command runs. Each command is a module of
//! `cmd/`; it translates flags into calls on the app and prints results; none holds rules.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod cmd;
mod demo;
mod parties_csv;
mod strong;

use cmd::{close_year, export, import, operator, register_parties, rent, serve, verify};

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

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Serve the JSON API (and /healthz, /readyz, /metrics).
    Serve(serve::ServeArgs),
    /// Operators of the register: `operator add USERNAME` creates one (an empty register
    /// needs its first), with the password and PIN read without echo or from
    /// CESSIO_OPERATOR_PASSWORD and CESSIO_OPERATOR_PIN, never from the command line.
    Operator(operator::OperatorArgs),
    /// Register parties (F9) from a CSV file `codice_fiscale;denominazione;tipo` (the
    /// `soggetti.csv` of `cessio-bench generate --csv`): each row on its own, refused rows
    /// reported with line and reason, parties already registered left as they are.
    RegisterParties(register_parties::RegisterPartiesArgs),
    /// Import option communications (F8) from a CSV file: each valid row is registered on
    /// its own (nothing half-imported), every refused row is reported with line and reason.
    /// Re-running the same file registers nothing twice.
    Import(import::ImportArgs),
    /// Export a party's movements (F4) as CSV, at most 50,000 rows.
    Export(export::ExportArgs),
    /// Recompute every balance from the history and check R-CONSERVE and the hash chain.
    /// Exits 1 and names the first broken row when something is wrong.
    Verify(verify::VerifyArgs),
    /// Compute the rent credit of art. 28 DL 34/2020 (R-RENT) month by month and print a
    /// table with the total. Exits 2 on bad input.
    RentCredit(rent::RentArgs),
    /// Close a year (F5): unused amounts whose last day of use has passed expire
    /// (R-F24-WINDOW-121/122). Idempotent; refused before 1 January of the next year.
    CloseYear(close_year::CloseYearArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    cessio::run(async {
        match cli.command {
            Cmd::Serve(args) => serve::run(args).await,
            Cmd::Operator(args) => operator::run(args).await,
            Cmd::RegisterParties(args) => register_parties::run(args).await,
            Cmd::Import(args) => import::run(args).await,
            Cmd::Export(args) => export::run(args).await,
            Cmd::Verify(args) => verify::run(args).await,
            Cmd::RentCredit(args) => rent::run(&args),
            Cmd::CloseYear(args) => close_year::run(args).await,
        }
    })
}

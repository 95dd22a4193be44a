//! The `cessio-bench` command: simulation and benchmark tooling, apart from the `cessio`
//! binary an operator deploys.

use anyhow::Result;
use cessio_bench::{bench_queries, generate, loadtest, replay, transfers};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "cessio-bench",
    version,
    about = "Simulation and benchmarks of the Cessio register"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Measure durable transfers per second: one transaction per operation vs group commit.
    Bench(transfers::BenchArgs),
    /// Build a register of N operations and time F1, F3 and F4 on its largest holder.
    BenchQueries(bench_queries::BenchQueriesArgs),
    /// Write cessions as fast as possible and print "ack KEY" for each acknowledged one.
    /// The crash tests kill it with SIGKILL and check every acknowledged key survived.
    #[command(hide = true)]
    Load(transfers::LoadArgs),
    /// Generate a national register (Oct 2020 – Mar 2023), deterministic for a seed:
    /// about 300,000 parties and 13.5 million operations at --scale 1.0. Written straight
    /// to the store with many concurrent writers, or as CSV files with --csv.
    Generate(generate::GenerateArgs),
    /// Replay the generated national stream through the app layer in time order, as its
    /// users would (signed in, authorised, answering by group), with N concurrent clients;
    /// prints throughput and latency percentiles. Use an empty register.
    Replay(replay::ReplayArgs),
    /// HTTP load on a running `cessio serve`: F1 and F4 reads of one party from many
    /// keep-alive connections, bounded in requests and seconds; prints requests/s and
    /// latency percentiles (and the server's peak memory with --server-pid).
    Loadtest(loadtest::LoadtestArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    cessio::run(async {
        match cli.command {
            Cmd::Bench(args) => transfers::bench(args).await,
            Cmd::BenchQueries(args) => bench_queries::command(args).await,
            Cmd::Load(args) => transfers::load(args).await,
            Cmd::Generate(args) => generate::command(args).await,
            Cmd::Replay(args) => replay::command(args).await,
            Cmd::Loadtest(args) => loadtest::run(args).await,
        }
    })
}

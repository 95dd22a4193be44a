//! What the `cessio` command shares with the tools that work on the same register
//! (`cessio-bench`): how a register is named and opened, and how they log.

pub mod register;

/// Runs a command to its end: logging set up, then `command` on a multi-threaded runtime.
pub fn run(command: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    init_logging();
    tokio::runtime::Runtime::new()
        .context("starting the async runtime")?
        .block_on(command)
}

/// Logs to stderr, filtered by `CESSIO_LOG` (`warn` by default), so that a command's stdout
/// carries only its output.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CESSIO_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

//! What the `cessio` command shares with the tools that work on the same register
//! (`cessio-bench`): how a register is named and opened, and how they log.

pub mod register;

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

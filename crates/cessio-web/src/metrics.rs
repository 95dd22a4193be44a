//! Prometheus metrics through the `metrics` facade and its Prometheus exporter: request
//! counts by route and status, request latency histograms by route, operations by kind, and
//! what the register holds, read from the ledger head at each scrape (one row, however
//! large the register; never a count of its tables), and the read replica's lag as the
//! app's background comparison last found it (nothing is asked of the replica at a
//! scrape).
//!
//! Each server has a recorder of its own, called directly rather than installed as the
//! process's global recorder: two servers in one process (the tests) count apart. A
//! request takes no exclusive lock: its series are found in the exporter's sharded
//! registry under a read lock, counters are atomics and histogram samples are appended to
//! lock-free buckets, which the exporter folds in at each scrape and every
//! [`UPKEEP`] (so that a server nobody scrapes does not keep every sample).
//!
//! `cessio_ledger_rows` is read from the head's counters, which are the row counts: ids are
//! assigned in sequence from the head, and those tables are never deleted from. The
//! exporter's own HTTP listener is not built; `/metrics` is a route of the server.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use metrics::{Key, KeyName, Label, Level, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::WebState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

const OPERATIONS: &str = "cessio_operations_total";
const REQUESTS: &str = "cessio_http_requests_total";
const LATENCY: &str = "cessio_http_request_duration_seconds";
const LEDGER: &str = "cessio_ledger_rows";
const REPLICA_LAG: &str = "cessio_replica_lag_seconds";
const REPLICA_LAG_BYTES: &str = "cessio_replica_lag_bytes";
const REPLICA_SERVING: &str = "cessio_replica_serving";

/// How often histogram samples are folded in when nobody scrapes.
pub const UPKEEP: Duration = Duration::from_secs(5);

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        // Cannot fail: the buckets are not empty.
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(LATENCY.into()), &BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        for (name, help) in [
            (
                OPERATIONS,
                "Operations applied through this process, by kind.",
            ),
            (REQUESTS, "HTTP requests by route and status."),
        ] {
            recorder.describe_counter(
                KeyName::from_const_str(name),
                None,
                SharedString::const_str(help),
            );
        }
        recorder.describe_histogram(
            KeyName::from_const_str(LATENCY),
            None,
            SharedString::const_str("HTTP request latency, by route."),
        );
        recorder.describe_gauge(
            KeyName::from_const_str(LEDGER),
            None,
            SharedString::const_str(
                "Rows in the register by table, from the ledger head's counters (NaN when the last scrape could not read it).",
            ),
        );
        for (name, help) in [
            (
                REPLICA_LAG,
                "How long ago the primary wrote what the read replica has not replayed yet, within one sampling period (NaN when not known: replica unreachable).",
            ),
            (
                REPLICA_LAG_BYTES,
                "Bytes of the primary's write-ahead log the read replica has not replayed (NaN when not known).",
            ),
            (
                REPLICA_SERVING,
                "1 while F1 and F4 read the replica, 0 while they read the primary (replica behind its bound or unreachable).",
            ),
        ] {
            recorder.describe_gauge(
                KeyName::from_const_str(name),
                None,
                SharedString::const_str(help),
            );
        }
        Metrics { recorder, handle }
    }
}

/// The standard methods as static labels; another method is one series of its own.
fn method_label(method: &str) -> SharedString {
    match method {
        "GET" => SharedString::const_str("GET"),
        "POST" => SharedString::const_str("POST"),
        "PUT" => SharedString::const_str("PUT"),
        "DELETE" => SharedString::const_str("DELETE"),
        "PATCH" => SharedString::const_str("PATCH"),
        "HEAD" => SharedString::const_str("HEAD"),
        "OPTIONS" => SharedString::const_str("OPTIONS"),
        _ => SharedString::const_str("other"),
    }
}

impl Metrics {
    /// Counts one applied operation of the register, by kind.
    pub fn operation(&self, kind: &'static str) {
        let key = Key::from_parts(OPERATIONS, vec![Label::from_static_parts("kind", kind)]);
        self.recorder.register_counter(&key, &METADATA).increment(1);
    }

    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let route: Arc<str> = Arc::from(route);
        let requests = Key::from_parts(
            REQUESTS,
            vec![
                Label::new("method", method_label(method)),
                Label::new("route", SharedString::from_shared(route.clone())),
                Label::new("status", SharedString::from_owned(status.to_string())),
            ],
        );
        self.recorder
            .register_counter(&requests, &METADATA)
            .increment(1);
        let latency = Key::from_parts(
            LATENCY,
            vec![Label::new("route", SharedString::from_shared(route))],
        );
        self.recorder
            .register_histogram(&latency, &METADATA)
            .record(elapsed.as_secs_f64());
    }

    /// Sets the register's row counts (`None`: they could not be read).
    fn ledger(&self, counts: Option<cessio_store::Counts>) {
        let rows =
            |n: fn(&cessio_store::Counts) -> u64| counts.as_ref().map_or(f64::NAN, |c| n(c) as f64);
        for (table, n) in [
            ("parties", rows(|c| c.parties)),
            ("credits", rows(|c| c.credits)),
            ("rate", rows(|c| c.rate)),
            ("accounts", rows(|c| c.accounts)),
            ("operations", rows(|c| c.operations)),
            ("transfers", rows(|c| c.transfers)),
        ] {
            let key = Key::from_parts(LEDGER, vec![Label::from_static_parts("table", table)]);
            self.recorder.register_gauge(&key, &METADATA).set(n);
        }
    }

    /// Sets the read replica's gauges from the app's last comparison (none without one).
    pub fn replica(&self, status: Option<cessio_app::ReplicaStatus>) {
        let Some(status) = status else {
            return;
        };
        for (name, value) in [
            (
                REPLICA_LAG,
                status.lag.map_or(f64::NAN, |d| d.as_secs_f64()),
            ),
            (
                REPLICA_LAG_BYTES,
                status.lag_bytes.map_or(f64::NAN, |b| b as f64),
            ),
            (REPLICA_SERVING, if status.serving { 1.0 } else { 0.0 }),
        ] {
            self.recorder
                .register_gauge(&Key::from_static_name(name), &METADATA)
                .set(value);
        }
    }

    pub fn render_text(&self) -> String {
        self.handle.render()
    }

    /// Folds the histogram samples in every [`UPKEEP`] on the current runtime, for as long
    /// as the metrics live (nothing when called outside a runtime).
    pub(crate) fn keep_up(metrics: &Arc<Metrics>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let metrics = Arc::downgrade(metrics);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match metrics.upgrade() {
                    Some(m) => m.handle.run_upkeep(),
                    None => break,
                }
            }
        });
    }
}

pub async fn render(State(state): State<WebState>) -> Response {
    let counts = match state.app.ledger_counts().await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the ledger head could not be read");
            None
        }
    };
    state.metrics.ledger(counts);
    state.metrics.replica(state.app.read_replica_status());
    let mut response = state.metrics.render_text().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replica_gauges_show_the_last_comparison_and_nan_when_unknown() {
        let metrics = Metrics::default();
        metrics.replica(None);
        assert!(!metrics.render_text().contains("cessio_replica"));
        metrics.replica(Some(cessio_app::ReplicaStatus {
            serving: false,
            reachable: true,
            lag: Some(Duration::from_millis(1500)),
            lag_bytes: Some(4096),
        }));
        let text = metrics.render_text();
        for line in [
            "cessio_replica_lag_seconds 1.5",
            "cessio_replica_lag_bytes 4096",
            "cessio_replica_serving 0",
            "# HELP cessio_replica_lag_seconds",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        metrics.replica(Some(cessio_app::ReplicaStatus::default()));
        let text = metrics.render_text();
        assert!(text.contains("cessio_replica_lag_seconds NaN"), "{text}");
    }
}

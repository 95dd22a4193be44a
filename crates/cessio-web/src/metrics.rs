//! Prometheus metrics in the text exposition format: request counts by route and status,
//! and request latency histograms by route. Written by hand: a few counters do not need a
//! metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::WebState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    operations: Mutex<BTreeMap<&'static str, u64>>,
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

impl Metrics {
    /// Counts one applied operation of the register, by kind.
    pub fn operation(&self, kind: &'static str) {
        if let Ok(mut o) = self.operations.lock() {
            *o.entry(kind).or_default() += 1;
        }
    }

    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((method.to_string(), route.to_string(), status))
                .or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry(route.to_string()).or_default();
            let s = elapsed.as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if s <= *b {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum_seconds += s;
        }
    }

    pub fn render_text(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP cessio_operations_total Operations applied through this process, by kind.\n",
        );
        out.push_str("# TYPE cessio_operations_total counter\n");
        if let Ok(o) = self.operations.lock() {
            for (kind, n) in o.iter() {
                let _ = writeln!(out, "cessio_operations_total{{kind=\"{kind}\"}} {n}");
            }
        }
        out.push_str("# HELP cessio_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE cessio_http_requests_total counter\n");
        if let Ok(r) = self.requests.lock() {
            for ((method, route, status), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "cessio_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP cessio_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE cessio_http_request_duration_seconds histogram\n");
        if let Ok(l) = self.latency.lock() {
            for (route, h) in l.iter() {
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "cessio_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "cessio_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "cessio_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum_seconds
                );
                let _ = writeln!(
                    out,
                    "cessio_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
        }
        out
    }
}

pub async fn render(State(state): State<WebState>) -> Response {
    let mut body = state.metrics.render_text();
    if let Ok(c) = state.app.store.counts().await {
        let _ = writeln!(
            body,
            "# HELP cessio_ledger_rows Rows in the register by table."
        );
        let _ = writeln!(body, "# TYPE cessio_ledger_rows gauge");
        for (table, n) in [
            ("parties", c.parties),
            ("credits", c.credits),
            ("rate", c.rate),
            ("accounts", c.accounts),
            ("operations", c.operations),
            ("transfers", c.transfers),
        ] {
            let _ = writeln!(body, "cessio_ledger_rows{{table=\"{table}\"}} {n}");
        }
    }
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

//! Cessio over HTTP: the Italian web pages (`ui`), the JSON API under `/api/v1`, the probes
//! (`/healthz`, `/readyz`) and `/metrics`.
//!
//! Architecture invariant: handlers translate between HTTP and the app layer; they check
//! no rule and write no SQL. Authentication (session cookie or bearer token) turns a
//! request into a `Principal`; everything else is the app's decision.

#![recursion_limit = "256"]

mod api;
pub mod codes;
mod extract;
mod health;
mod metrics;
pub mod openapi;
mod paging;
mod parse_errors;
mod problem;
pub mod receipt_pdf;
mod router;
mod server;
mod sessions;
mod state;
mod throttle;
pub mod ui;
pub mod webhooks;

pub use extract::{ApiJson, ApiQuery, Auth, ClientIp, IdempotencyKey};
pub use health::READY_WITHIN;
pub use metrics::Metrics;
pub use problem::{ApiError, Problem};
pub use router::router;
pub use server::{ConnectionLimits, serve};
pub use state::{MAX_BODY_BYTES, REQUEST_TIMEOUT, SESSION_IDLE, WebState};
pub use throttle::{LoginLimits, LoginThrottle};

pub(crate) use api::movements::csv_download;
pub(crate) use extract::cookie_value;
pub(crate) use state::{SESSION_COOKIE, random_token, too_many_attempts};

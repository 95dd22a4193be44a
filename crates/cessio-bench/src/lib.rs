//! What measures Cessio rather than runs it: the national simulation and the tools that
//! write it (`generate`), replay it through the app (`replay`), time the read functions on
//! it (`bench-queries`), load a running server (`loadtest`), and measure durable writes
//! (`bench`, and `load`, the writer the crash tests kill). Kept out of the `cessio` binary
//! an operator deploys; the `cessio-bench` binary is its command line.

pub mod bench_queries;
pub mod db;
pub mod generate;
pub mod loadtest;
pub mod national;
pub mod replay;
pub mod transfers;

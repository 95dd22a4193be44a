//! `cessio-bench loadtest`: HTTP load on a running `cessio serve` over loopback, bounded in
//! requests and seconds: F1 Monitoraggio, F4 Lista movimenti and its CSV export of one
//! party, alternated, from many keep-alive connections. A small HTTP/1.1 client of its own, so the load
//! generator costs little CPU beside the server on the same machine.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(clap::Args, Debug)]
pub struct LoadtestArgs {
    /// The server's address (host:port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// The register the server uses: a load-test operator is created there if missing.
    #[command(flatten)]
    db: crate::db::DbArgs,
    /// The party whose F1 and F4 are read (default: the national register's largest bank).
    #[arg(long)]
    party: Option<String>,
    /// The day F4 lists (registration date).
    #[arg(long, default_value = "2023-03-15")]
    day: chrono::NaiveDate,
    /// Narrow F4 to one cedente's movements: at scale a bank's day is over the 1,000 rows a
    /// list shows (R-1000), and the list is refused.
    #[arg(long)]
    cedente: Option<String>,
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Stop after this many requests...
    #[arg(long, default_value_t = 200_000)]
    requests: u64,
    /// ...or after this many seconds, whichever comes first.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// The server's process id, to report its peak resident memory (VmHWM).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Which reads to send, alternated: F1 and F4 by default; `f4` alone measures what the
    /// server answers when F1's per-holding §5 work is not in the mix; `csv` downloads the
    /// CSV export of the `--export-days` days ending on `--day` (with `--server-pid`, the
    /// server's memory shows whether an export is held whole).
    #[arg(long, value_delimiter = ',', default_values_t = [Read::F1, Read::F4])]
    reads: Vec<Read>,
    #[arg(long, default_value_t = 30)]
    export_days: u32,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    F1,
    F4,
    Csv,
}

impl std::fmt::Display for Read {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Read::F1 => "f1",
            Read::F4 => "f4",
            Read::Csv => "csv",
        })
    }
}

const USER: &str = "loadtest";
const PASSWORD: &str = "loadtest-password-2026";

/// One keep-alive connection.
struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    async fn open(addr: &str) -> Result<Conn> {
        let s = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}: is cessio serve running?"))?;
        s.set_nodelay(true)?;
        Ok(Conn {
            stream: BufReader::new(s),
        })
    }

    /// Sends one request and reads the whole response; returns (status, headers, body).
    async fn request(&mut self, head: &str, body: &[u8]) -> Result<(u16, Vec<String>, Vec<u8>)> {
        let s = self.stream.get_mut();
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut headers = Vec::new();
        let (mut length, mut chunked) = (0usize, false);
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                bail!("connection closed mid-response");
            }
            let h = line.trim_end();
            if h.is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse()?;
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
            headers.push(h.to_string());
        }
        let mut out = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.stream.read_line(&mut line).await?;
                let size = usize::from_str_radix(line.trim(), 16)?;
                let mut chunk = vec![0; size + 2];
                self.stream.read_exact(&mut chunk).await?;
                if size == 0 {
                    break;
                }
                out.extend_from_slice(&chunk[..size]);
            }
        } else {
            out.resize(length, 0);
            self.stream.read_exact(&mut out).await?;
        }
        Ok((status, headers, out))
    }
}

/// The server's `/proc/PID/status`, read once for all the fields a sample takes of it.
fn server_status(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default()
}

/// A field of a `/proc/PID/status`, in KiB (`VmRSS:`, `RssAnon:`, `VmHWM:`).
fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub async fn run(args: LoadtestArgs) -> Result<()> {
    // An operator may read every party's F1 and F4; created once per register.
    let store = args.db.open().await?;
    let app = cessio::register::app_for(store, None)?;
    if app.login(USER, PASSWORD).await.is_err() {
        app.bootstrap_operator(USER, "Prova di carico", PASSWORD, "24681357")
            .await
            .context("creating the load-test operator")?;
    }
    drop(app);
    let party = match args.party {
        Some(p) => p,
        None => crate::national::largest_bank_cf()?.as_str().to_string(),
    };
    let host = &args.addr;
    let mut conn = Conn::open(host).await?;
    let body = format!(r#"{{"username":"{USER}","password":"{PASSWORD}"}}"#);
    let (status, headers, _) = conn
        .request(
            &format!(
                "POST /api/v1/session HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            ),
            body.as_bytes(),
        )
        .await?;
    if status != 200 && status != 201 && status != 204 {
        bail!("login refused with status {status}");
    }
    let cookie = headers
        .iter()
        .find_map(|h| {
            let lower = h.to_ascii_lowercase();
            lower
                .starts_with("set-cookie:")
                .then(|| {
                    h["set-cookie:".len()..]
                        .trim()
                        .split(';')
                        .next()
                        .map(str::to_string)
                })
                .flatten()
        })
        .context("no session cookie after login")?;
    if args.reads.is_empty() {
        bail!("--reads names no request");
    }
    let paths: Arc<Vec<(&str, String)>> = Arc::new(
        args.reads
            .iter()
            .map(|r| match r {
                Read::F1 => (
                    "F1 monitoraggio",
                    format!("/api/v1/parties/{party}/monitoring"),
                ),
                Read::F4 => (
                    "F4 lista movimenti, one day",
                    format!(
                        "/api/v1/parties/{party}/movements?registered_from={0}&registered_to={0}{1}",
                        args.day,
                        args.cedente
                            .as_ref()
                            .map_or(String::new(), |cf| format!("&cedente_cf={cf}")),
                    ),
                ),
                Read::Csv => (
                    "F4 CSV export",
                    format!(
                        "/api/v1/parties/{party}/movements.csv?registered_from={}&registered_to={}",
                        args.day - chrono::Duration::days(i64::from(args.export_days.max(1)) - 1),
                        args.day,
                    ),
                ),
            })
            .collect(),
    );
    let sent = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut peak_rss = 0u64;
    let mut peak_anon = 0u64;
    let mut tasks = Vec::new();
    for c in 0..args.connections {
        let (paths, sent, cookie, host) =
            (paths.clone(), sent.clone(), cookie.clone(), host.clone());
        let limit = args.requests;
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&host).await?;
            let mut samples: Vec<(usize, u16, u32)> = Vec::new();
            let mut i = c;
            loop {
                if Instant::now() >= deadline || sent.fetch_add(1, Ordering::Relaxed) >= limit {
                    return anyhow::Ok(samples);
                }
                let which = i % paths.len();
                i += 1;
                let head = format!(
                    "GET {} HTTP/1.1\r\nhost: {host}\r\ncookie: {cookie}\r\naccept: application/json\r\n\r\n",
                    paths[which].1
                );
                let t = Instant::now();
                let (status, _, _) = conn.request(&head, &[]).await?;
                samples.push((
                    which,
                    status,
                    u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX),
                ));
            }
        }));
    }
    if let Some(pid) = args.server_pid {
        while tasks.iter().any(|t| !t.is_finished()) {
            let status = server_status(pid);
            peak_rss = peak_rss.max(status_kib(&status, "VmRSS:").unwrap_or(0));
            peak_anon = peak_anon.max(status_kib(&status, "RssAnon:").unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut by_path: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for t in tasks {
        for (which, status, us) in t.await?? {
            by_path.entry(which).or_default().push(us);
            *statuses.entry(status).or_default() += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total: usize = by_path.values().map(Vec::len).sum();
    println!(
        "{total} requests in {elapsed:.1} s over {} connections: {:.0} requests/s; statuses {statuses:?}",
        args.connections,
        total as f64 / elapsed
    );
    println!("| request | requests | requests/s | p50 ms | p95 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (which, mut l) in by_path {
        l.sort_unstable();
        let at = |p: f64| f64::from(l[((l.len() as f64 - 1.0) * p).round() as usize]) / 1e3;
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
            paths[which].0,
            l.len(),
            l.len() as f64 / elapsed,
            at(0.5),
            at(0.95),
            at(0.99)
        );
    }
    if let Some(pid) = args.server_pid {
        println!(
            // SQLite's readers map the database file: its pages count in the resident
            // size but are the OS's page cache, shared and reclaimable. `RssAnon` is the
            // server's own memory.
            "server RSS under load: peak sampled {} MiB, of which its own (RssAnon) {} MiB; VmHWM {} MiB",
            peak_rss / 1024,
            peak_anon / 1024,
            status_kib(&server_status(pid), "VmHWM:").unwrap_or(0) / 1024
        );
    }
    if statuses.keys().any(|s| *s != 200) {
        bail!("some requests failed: {statuses:?}");
    }
    Ok(())
}

//! The HTTP/1.1 server loop: accepts connections within a cap, closes those that do not send
//! their headers in time, tells each request its client's address, and shuts down
//! gracefully.
//!
//! `axum::serve` has none of these limits: a client that opens connections and never
//! finishes their headers (slowloris) held them forever, until the process ran out of file
//! descriptors and `/healthz` stopped answering.
//!
//! The limits are `cessio serve --max-connections` and `--header-timeout-secs`; the header
//! timeout runs from a connection's opening or its previous response, so it closes idle
//! keep-alive connections too. Every request's deadline is a layer of the router.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower_service::Service;

use crate::parse_errors::{Dispatched, ProblemOnParseError};

/// The connection's read buffer, which bounds a request's headers (bodies stream through it).
const MAX_BUF_BYTES: usize = 64 * 1024;

/// Limits of the connections the server holds open.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Connections open at once. When all are taken the server stops accepting, and new
    /// connections wait in the kernel's queue until one closes.
    pub max_connections: usize,
    /// A connection must deliver a request's headers within this time, counted from its
    /// opening or from the end of the previous response: it bounds both a slow client's
    /// headers and an idle keep-alive connection.
    pub header_read_timeout: Duration,
    /// Keep connections open between requests (HTTP keep-alive).
    pub keep_alive: bool,
    /// After a shutdown signal, requests in flight get this long to finish.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 4_096,
            header_read_timeout: Duration::from_secs(10),
            keep_alive: true,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the requests in
/// flight finish (within [`ConnectionLimits::shutdown_grace`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    // Headers are small here (a cookie, a token, a key); hyper's default buffer of about
    // 400 KB let a request carry that much header before 431, and, read in large chunks,
    // a little more.
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(limits.keep_alive)
        .max_buf_size(MAX_BUF_BYTES);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: wait a
                    // moment rather than spin, and go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let dispatched = Dispatched::default();
        let service = client_service(router.clone(), peer, dispatched.clone());
        let io = ProblemOnParseError::new(TokioIo::new(stream), dispatched);
        let connection = http.serve_connection(io, service);
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, %peer, "connection ended");
                    }
                    return;
                }
                _ = stop.wait_for(|stopping| *stopping) => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection task holds a slot: all slots back means all connections closed.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(limits.shutdown_grace, slots.acquire_many(all)).await;
    Ok(())
}

/// The router as hyper calls it, with the client's address in each request's extensions
/// (where `ConnectInfo<SocketAddr>` finds it); counts the requests it is handed.
fn client_service(
    router: Router,
    peer: SocketAddr,
    dispatched: Dispatched,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Future<Output = Result<axum::response::Response, Infallible>> + Send,
> {
    hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        dispatched.record();
        let mut router = router.clone();
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        async move { router.call(req).await }
    })
}

//! The HTTP server under the console and the health endpoints: hyper's
//! HTTP/1.1 with the limits an endpoint open to a network needs. A request's
//! headers must arrive within `HEADER_TIMEOUT`, an idle kept-alive
//! connection's next request too (slowloris); headers are capped at
//! `MAX_HEADER_BYTES` (431 beyond); at most `MAX_CONNECTIONS` are served at
//! once (file descriptors are the crawl's too; more wait in the listen
//! queue). A stop lets requests in flight finish, for `STOP_GRACE` at most.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_CONNECTIONS: usize = 512;
const MAX_HEADER_BYTES: usize = 64 * 1024;
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Resolves once `stop` turns true, or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Serves `router` on `listener` until `stop` turns true.
pub async fn serve(listener: TcpListener, router: Router, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => p.ok(),
            _ = stopped(&mut stop) => None,
        };
        let Some(permit) = permit else { break };
        let accepted = tokio::select! {
            a = listener.accept() => Some(a),
            _ = stopped(&mut stop) => None,
        };
        let (stream, addr) = match accepted {
            None => break,
            Some(Ok(a)) => a,
            Some(Err(e)) => {
                // Out of file descriptors, most likely: wait, do not spin.
                tracing::warn!(error = %e, "HTTP endpoint: accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let router = router.clone();
        let mut stop = stop.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(addr));
                router.clone().oneshot(req.map(axum::body::Body::new))
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES);
            let conn = http.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                served = conn.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!(peer = %addr, error = %e, "HTTP connection ended");
                    }
                }
                _ = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(STOP_GRACE, conn).await;
                }
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(STOP_GRACE + Duration::from_secs(1), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

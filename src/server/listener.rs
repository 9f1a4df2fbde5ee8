//! Accepting connections and shutting down.
//!
//! [`serve`] accepts while a connection permit is free, and runs each connection on its own
//! task. On shutdown it stops accepting and broadcasts the signal; each connection then
//! finishes the request in flight and closes. The listener waits until every connection task
//! has dropped its drain guard, or until the drain timeout.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, broadcast, mpsc};

use super::{Limits, routes};

/// Serves `listener` until `shutdown`. With `loopback_hosts_only`, requests whose `Host` or
/// absolute-form target is not loopback get a 421.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    loopback_hosts_only: bool,
    shutdown: impl Future<Output = ()>,
) {
    let connection_permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (notify_shutdown, _) = broadcast::channel::<()>(1);
    let (drain_guard, mut drained) = mpsc::channel::<()>(1);

    // 1. Accept until the shutdown signal.
    let accept_loop = async {
        loop {
            // The semaphore is never closed, so acquiring fails only if that changes.
            let Ok(permit) = connection_permits.clone().acquire_owned().await else {
                tracing::error!("connection limit semaphore closed; no longer accepting");
                return;
            };
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Per-connection failures (a reset before accept, too many open files)
                    // end only that attempt; back off briefly so a persistent one does not spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let connection = Connection {
                router: router.clone(),
                peer,
                limits: limits.clone(),
                loopback_hosts_only,
                shutdown: notify_shutdown.subscribe(),
                _drain_guard: drain_guard.clone(),
            };
            tokio::spawn(async move {
                connection.run(stream).await;
                drop(permit);
            });
        }
    };
    tokio::select! {
        () = accept_loop => {}
        () = shutdown => tracing::info!("shutdown requested; finishing open requests"),
    }

    // 2. Stop accepting, tell every connection, and wait for their guards to drop.
    drop(listener);
    drop(notify_shutdown);
    drop(drain_guard);
    if tokio::time::timeout(limits.drain_timeout, drained.recv())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout_ms = limits.drain_timeout.as_millis() as u64,
            "requests still open after the drain timeout; stopping anyway"
        );
    }
    tracing::info!("attestation endpoint stopped");
}

/// One client connection, served with HTTP/1.1 keep-alive until the client closes, an error
/// ends it, or shutdown is signalled.
struct Connection {
    router: Router,
    peer: SocketAddr,
    limits: Limits,
    loopback_hosts_only: bool,
    shutdown: broadcast::Receiver<()>,
    /// Dropped when this connection ends; the listener waits for all of them at shutdown.
    _drain_guard: mpsc::Sender<()>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream) {
        // 1. Serve requests through the router, with hyper's limits on the request head.
        let router = self.router.clone();
        let peer = self.peer;
        let max_uri_len = self.limits.max_uri_len;
        let loopback_hosts_only = self.loopback_hosts_only;
        let service = hyper::service::service_fn(move |request| {
            let router = router.clone();
            async move {
                Ok::<_, std::convert::Infallible>(
                    routes::handle(router, peer, max_uri_len, loopback_hosts_only, request).await,
                )
            }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout)
            .max_buf_size(self.limits.max_header_bytes.max(8192))
            .keep_alive(true);
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);

        // 2. Race the connection against shutdown; on shutdown let the request in flight
        //    finish, then close.
        let result = tokio::select! {
            result = connection.as_mut() => result,
            _ = self.shutdown.recv() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };

        // A client that resets, times out on headers or sends garbage ends its own connection.
        if let Err(error) = result {
            tracing::debug!(peer = %self.peer, %error, "connection ended with an error");
        }
    }
}

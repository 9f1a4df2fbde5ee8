//! Serving bound routes: one accept loop per route, connection limits, and graceful shutdown.
//!
//! Shutdown runs in three steps. The shutdown future completes, so every accept loop stops
//! and its listener closes; the kernel resets connections still waiting in a listener's
//! accept queue. Live connections then run on for up to `shutdown_timeout`. Any connection
//! still open after that is closed, with the outcome "shutdown".

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, timeout};

use super::addr::ListenAddr;
use super::connection::{Handler, RouteContext};
use super::error::ProxyError;
use super::listener::{ClientStream, Endpoint, Listener};

/// Minimum time between two log lines about rejected connections or failed accepts on one
/// route; the events in between are counted in the next line.
const REPEAT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// First and longest pause after an accept error that is not about one connection, such as
/// running out of file descriptors.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Every route's listener, bound and ready to serve.
pub struct BoundProxy {
    pub(crate) routes: Vec<BoundRoute>,
    pub(crate) max_connections: u32,
    pub(crate) shutdown_timeout: Duration,
}

pub(crate) struct BoundRoute {
    pub(crate) context: Arc<RouteContext>,
    pub(crate) listen: ListenAddr,
    pub(crate) listener: Listener,
    pub(crate) local_addr: Endpoint,
    pub(crate) max_connections: Option<u32>,
}

impl BoundProxy {
    /// Returns each route's label, such as `route[0] (tcp:127.0.0.1:0)`, with the address its listener
    /// is bound to, in configuration order.
    pub fn local_addrs(&self) -> Vec<(String, Endpoint)> {
        self.routes
            .iter()
            .map(|route| (route.context.label.clone(), route.local_addr))
            .collect()
    }

    /// Serves every route until `shutdown` completes, then drains: live connections get up to
    /// `shutdown_timeout` to finish, and the rest are closed. Returns once every connection
    /// has ended. Fails only if an accept loop stopped unexpectedly; connection errors end
    /// only their own connection.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), ProxyError> {
        // The configuration caps every limit at `Semaphore::MAX_PERMITS`, so `Semaphore::new`
        // cannot panic here or for the route limits below.
        let global_limit = Arc::new(Semaphore::new(self.max_connections as usize));
        let (stop_accepting, stop_rx) = watch::channel(false);
        let (close_connections, close_rx) = watch::channel(false);
        let (drain_guard, mut drained) = mpsc::channel::<()>(1);

        // One accept loop per route.
        let mut accept_loops = JoinSet::new();
        let mut labels = HashMap::new();
        for route in self.routes {
            tracing::info!(
                route = %route.context.label,
                listen = %route.listen,
                local_addr = %route.local_addr,
                upstream = %route.context.upstream.upstream(),
                "listening"
            );
            let label = route.context.label.clone();
            let accept_loop = AcceptLoop {
                route_limit: route
                    .max_connections
                    .map(|n| Arc::new(Semaphore::new(n as usize))),
                context: route.context,
                listener: route.listener,
                global_limit: Arc::clone(&global_limit),
                stop: stop_rx.clone(),
                close: close_rx.clone(),
                drain_guard: drain_guard.clone(),
                rejected_log: RepeatLog::default(),
                accept_error_log: RepeatLog::default(),
            };
            let handle = accept_loops.spawn(accept_loop.run());
            labels.insert(handle.id(), label);
        }

        // Serve until the shutdown signal. Accept loops end only on the stop signal, so one
        // that ends earlier has panicked.
        tokio::pin!(shutdown);
        let mut failure = None;
        tokio::select! {
            () = &mut shutdown => tracing::info!("shutdown requested; no longer accepting connections"),
            Some(result) = accept_loops.join_next_with_id() => {
                let (id, detail) = match result {
                    Ok(id_and_unit) => (id_and_unit.0, "returned early".to_owned()),
                    Err(error) => (error.id(), error.to_string()),
                };
                let route = labels.get(&id).cloned().unwrap_or_default();
                tracing::error!(%route, %detail, "accept loop stopped unexpectedly; shutting down");
                failure = Some(ProxyError::AcceptLoopFailed { route, detail });
            }
        }

        // Stop accepting and close every listener.
        stop_accepting.send_replace(true);
        while let Some(result) = accept_loops.join_next().await {
            if let Err(error) = result {
                tracing::error!(%error, "accept loop failed while stopping");
            }
        }

        // Drain: wait for live connections, up to shutdown_timeout, then close the rest.
        drop(drain_guard);
        let live = self.max_connections as usize - global_limit.available_permits();
        tracing::info!(
            connections = live,
            shutdown_timeout = ?self.shutdown_timeout,
            "draining connections"
        );
        if timeout(self.shutdown_timeout, drained.recv())
            .await
            .is_err()
        {
            let live = self.max_connections as usize - global_limit.available_permits();
            tracing::warn!(
                connections = live,
                "shutdown_timeout elapsed; closing the remaining connections"
            );
            close_connections.send_replace(true);
            drained.recv().await;
        }
        tracing::info!("proxy stopped");

        failure.map_or(Ok(()), Err)
    }
}

/// Accepts the clients of one route and starts a [`Handler`] for each one admitted.
struct AcceptLoop {
    context: Arc<RouteContext>,
    listener: Listener,
    route_limit: Option<Arc<Semaphore>>,
    global_limit: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
    close: watch::Receiver<bool>,
    drain_guard: mpsc::Sender<()>,
    rejected_log: RepeatLog,
    accept_error_log: RepeatLog,
}

impl AcceptLoop {
    async fn run(mut self) {
        let mut backoff = ACCEPT_BACKOFF_MIN;
        loop {
            let accepted = tokio::select! {
                biased;
                _ = self.stop.wait_for(|stop| *stop) => break,
                accepted = self.listener.accept() => accepted,
            };

            match accepted {
                Ok((client, peer)) => {
                    backoff = ACCEPT_BACKOFF_MIN;
                    self.admit(client, peer);
                }
                Err(error) if is_connection_error(&error) => {
                    tracing::debug!(route = %self.context.label, %error, "accept failed for one connection");
                }
                Err(error) => {
                    if let Some(repeats) = self.accept_error_log.record() {
                        tracing::error!(
                            route = %self.context.label,
                            %error,
                            repeats,
                            "accept failed; retrying after a pause"
                        );
                    }
                    tokio::select! {
                        _ = self.stop.wait_for(|stop| *stop) => break,
                        () = sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
            }
        }

        // Report what the rate limit held back, so no rejection goes uncounted.
        if let Some(rejected) = self.rejected_log.take_unreported() {
            tracing::warn!(route = %self.context.label, rejected, "connections rejected at the connection limit");
        }
    }

    /// Starts a handler if both the route's and the proxy's connection limits have room.
    /// Otherwise closes the connection at once: a client left waiting in the accept queue
    /// would only see its TLS handshake stall, while a closed connection fails fast and the
    /// client can retry.
    fn admit(&mut self, client: ClientStream, peer: Endpoint) {
        let Some(permits) = self.acquire_permits() else {
            drop(client);
            if let Some(rejected) = self.rejected_log.record() {
                tracing::warn!(
                    route = %self.context.label,
                    %peer,
                    rejected,
                    route_available = self.route_limit.as_ref().map(|s| s.available_permits()),
                    proxy_available = self.global_limit.available_permits(),
                    "connection limit reached; closing new connections until one ends"
                );
            }
            return;
        };

        let handler = Handler {
            route: Arc::clone(&self.context),
            client,
            peer,
            close: self.close.clone(),
            permits,
            drain_guard: self.drain_guard.clone(),
        };
        tokio::spawn(handler.run());
    }

    fn acquire_permits(&self) -> Option<Vec<OwnedSemaphorePermit>> {
        let mut permits = Vec::with_capacity(2);
        if let Some(route_limit) = &self.route_limit {
            permits.push(Arc::clone(route_limit).try_acquire_owned().ok()?);
        }
        permits.push(Arc::clone(&self.global_limit).try_acquire_owned().ok()?);
        Some(permits)
    }
}

/// Returns whether an accept error concerns only the connection being accepted, so the next accept
/// can follow at once.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted
    )
}

/// Rate limit for a repeated log line: at most one line per [`REPEAT_LOG_INTERVAL`], each
/// carrying the number of events since the previous line.
#[derive(Default)]
struct RepeatLog {
    last_line: Option<Instant>,
    unreported: u64,
}

impl RepeatLog {
    /// Counts one event. Returns the number of events to report when a line is due now.
    fn record(&mut self) -> Option<u64> {
        self.unreported += 1;
        let now = Instant::now();
        let due = self
            .last_line
            .is_none_or(|last| now.duration_since(last) >= REPEAT_LOG_INTERVAL);
        if !due {
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }

    /// Returns the events counted since the last line, if any.
    fn take_unreported(&mut self) -> Option<u64> {
        Some(std::mem::take(&mut self.unreported)).filter(|&n| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeat_log_reports_first_event_then_counts() {
        let mut log = RepeatLog::default();
        assert_eq!(log.record(), Some(1));
        assert_eq!(log.record(), None);
        assert_eq!(log.record(), None);
        assert_eq!(log.take_unreported(), Some(2));
        assert_eq!(log.take_unreported(), None);
    }
}

//! The attestation endpoint, compatible with the Anjuna Nitro Runtime's:
//! `GET /api/v1/attestation/report?publicKey=…&userData=…&nonce=…` returns a fresh
//! attestation document (raw COSE_Sign1, `application/octet-stream`) from any [`Attester`].
//!
//! Whoever reaches the endpoint gets a genuine document for any public key, so it listens on
//! loopback unless the caller opts out with [`ServerConfig::danger_allow_non_loopback`], and it
//! must never be forwarded out of the enclave.
//!
//! Layout: [`query`] parses the query string, [`routes`] maps requests to responses, and
//! [`listener`] accepts connections and shuts down gracefully.

mod host;
mod listener;
pub mod query;
mod routes;

pub use routes::{ErrorCode, REPORT_PATH};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::attestation::source::Attester;

/// Default `--listen` address, the port Anjuna's runtime uses.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50123";

/// Limits on connections and requests.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Attester calls at once; further requests wait, within `request_timeout`.
    pub max_concurrent_attestations: usize,
    /// Maximum time from a request's arrival to its document, including the wait for an
    /// attester slot. A request over it gets a 503.
    pub request_timeout: Duration,
    /// Maximum time to receive a request's headers, and the maximum idle time on a kept-alive
    /// connection before the next request's headers.
    pub header_read_timeout: Duration,
    /// Maximum request target (path and query) length in bytes; longer ones get a 414. Three padded
    /// base64url values of 1024 bytes take 4104 characters plus names.
    pub max_uri_len: usize,
    /// Read buffer per connection, which bounds the request line plus headers; a request head
    /// larger than this gets a 431 from hyper. At least 8192.
    pub max_header_bytes: usize,
    /// Maximum wait for open requests to finish after a shutdown signal.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            max_concurrent_attestations: 8,
            request_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_uri_len: 8 * 1024,
            max_header_bytes: 16 * 1024,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// Listening address, exposure and limits of the endpoint.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Allows an address that is not loopback, and requests whose `Host` header names any
    /// host. Anyone who can reach the endpoint then obtains documents for keys of their
    /// choosing.
    pub danger_allow_non_loopback: bool,
    pub limits: Limits,
}

impl ServerConfig {
    /// Loopback-only configuration with default limits.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            danger_allow_non_loopback: false,
            limits: Limits::default(),
        }
    }
}

/// Reason the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error(
        "--listen {addr}: not a loopback address; the endpoint hands out genuine attestation \
         documents for any key, so it listens on 127.0.0.1 or ::1 unless \
         --danger-allow-non-loopback is given"
    )]
    NotLoopback { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Returns true for 127.0.0.0/8, ::1 and IPv4-mapped loopback (::ffff:127.x.x.x).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// A bound listener, ready to serve.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    limits: Limits,
    loopback_hosts_only: bool,
}

impl Server {
    /// Checks the address and binds it. Port 0 picks a free port; see [`Server::local_addr`].
    pub async fn bind(config: &ServerConfig) -> Result<Self, ServerError> {
        if !config.danger_allow_non_loopback && !is_loopback(&config.listen) {
            return Err(ServerError::NotLoopback {
                addr: config.listen,
            });
        }
        let bind_error = |source| ServerError::Bind {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        if !is_loopback(&local_addr) {
            tracing::warn!(
                addr = %local_addr,
                "attestation endpoint listens on a non-loopback address: anyone who reaches it \
                 obtains genuine attestation documents"
            );
        }
        Ok(Self {
            listener,
            local_addr,
            limits: config.limits.clone(),
            loopback_hosts_only: !config.danger_allow_non_loopback,
        })
    }

    /// Returns the bound address, with the port chosen when the configuration gave port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting, lets open requests finish
    /// within [`Limits::drain_timeout`] and returns.
    pub async fn run(self, attester: Arc<dyn Attester>, shutdown: impl Future<Output = ()>) {
        let router = routes::router(attester, &self.limits);
        listener::serve(
            self.listener,
            router,
            self.limits,
            self.loopback_hosts_only,
            shutdown,
        )
        .await;
    }
}

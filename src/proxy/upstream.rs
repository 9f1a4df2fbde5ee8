//! Upstream addresses: name resolution behind the [`Resolver`] seam, a cache that is refreshed
//! in the background, and connecting to each address in turn.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use super::addr::Upstream;

/// The future a [`Resolver`] returns.
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>>;

/// Resolves an upstream's DNS name to the socket addresses to connect to, normally each with
/// the `port` given. The proxy tries them in the order returned.
pub trait Resolver: Send + Sync {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a>;
}

/// The operating system's resolver (`getaddrinfo`, through `tokio::net::lookup_host`). It
/// returns no TTL, so cached addresses are refreshed after the configured
/// `dns_refresh_interval` instead.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, port)).await?;
            Ok(addrs.collect())
        })
    }
}

/// The addresses of one route's upstream.
///
/// An IP address literal is used as is. A DNS name is resolved when the first connection
/// needs it, and that connection waits for the result. Once the cached addresses are older than
/// the refresh interval, the next connection starts a lookup in the background and still uses
/// the cached addresses, so connections never wait for a refresh. A failed refresh keeps the
/// last good addresses, logs a warning and is retried after another interval.
pub(crate) struct UpstreamAddrs {
    route: String,
    upstream: Upstream,
    source: Source,
}

enum Source {
    Fixed(Arc<[SocketAddr]>),
    Dns(DnsCache),
}

struct DnsCache {
    host: String,
    port: u16,
    resolver: Arc<dyn Resolver>,
    refresh_interval: Duration,
    lookup_timeout: Duration,
    state: Mutex<CacheState>,
    /// Held during the first lookup, so concurrent first connections share one lookup.
    first_lookup: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct CacheState {
    addrs: Option<Arc<[SocketAddr]>>,
    refresh_at: Option<Instant>,
    refreshing: bool,
}

impl UpstreamAddrs {
    /// `lookup_timeout` bounds each lookup; the route's connect timeout is a natural value.
    pub(crate) fn new(
        route: String,
        upstream: Upstream,
        resolver: Arc<dyn Resolver>,
        refresh_interval: Duration,
        lookup_timeout: Duration,
    ) -> Self {
        let source = match (upstream.ip_addr(), upstream.dns_name()) {
            (Some(addr), _) => Source::Fixed(Arc::from([addr])),
            (None, Some(host)) => Source::Dns(DnsCache {
                host: host.to_owned(),
                port: upstream.port(),
                resolver,
                refresh_interval,
                lookup_timeout,
                state: Mutex::new(CacheState::default()),
                first_lookup: tokio::sync::Mutex::new(()),
            }),
            // An `Upstream` contains either an IP address or a name, so this arm is never
            // taken. If it were, the empty list would fail every connection.
            (None, None) => Source::Fixed(Arc::from([])),
        };
        UpstreamAddrs {
            route,
            upstream,
            source,
        }
    }

    pub(crate) fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Returns the addresses to try, resolving the name first if nothing is cached yet.
    pub(crate) async fn addresses(self: &Arc<Self>) -> Result<Arc<[SocketAddr]>, ResolveError> {
        let dns = match &self.source {
            Source::Fixed(addrs) => return Ok(Arc::clone(addrs)),
            Source::Dns(dns) => dns,
        };

        if let Some(addrs) = self.cached_or_refresh() {
            return Ok(addrs);
        }

        // Nothing cached: the first connection resolves while the others wait for its result.
        let _first = dns.first_lookup.lock().await;
        if let Some(addrs) = self.cached_or_refresh() {
            return Ok(addrs);
        }
        let addrs = dns.lookup().await?;
        tracing::info!(
            route = %self.route,
            upstream = %self.upstream,
            addresses = ?addrs,
            "resolved upstream"
        );
        let mut state = dns.lock_state();
        state.addrs = Some(Arc::clone(&addrs));
        state.refresh_at = Some(Instant::now() + dns.refresh_interval);
        Ok(addrs)
    }

    /// Returns the cached addresses, if any, and starts a background refresh when they are due.
    fn cached_or_refresh(self: &Arc<Self>) -> Option<Arc<[SocketAddr]>> {
        let Source::Dns(dns) = &self.source else {
            return None;
        };
        let mut state = dns.lock_state();
        let addrs = state.addrs.clone()?;
        let due = state.refresh_at.is_none_or(|at| Instant::now() >= at);
        if due && !state.refreshing {
            state.refreshing = true;
            tokio::spawn(Arc::clone(self).refresh());
        }
        Some(addrs)
    }

    async fn refresh(self: Arc<Self>) {
        let Source::Dns(dns) = &self.source else {
            return;
        };
        let result = dns.lookup().await;

        let mut state = dns.lock_state();
        state.refreshing = false;
        state.refresh_at = Some(Instant::now() + dns.refresh_interval);
        match result {
            Ok(addrs) => {
                if state.addrs.as_deref() != Some(&*addrs) {
                    tracing::info!(
                        route = %self.route,
                        upstream = %self.upstream,
                        addresses = ?addrs,
                        "upstream resolves to new addresses"
                    );
                }
                state.addrs = Some(addrs);
            }
            Err(error) => {
                tracing::warn!(
                    route = %self.route,
                    upstream = %self.upstream,
                    error = %error,
                    kept_addresses = ?state.addrs.as_deref().unwrap_or_default(),
                    retry_in = ?dns.refresh_interval,
                    "re-resolving upstream failed; keeping the last good addresses"
                );
            }
        }
    }
}

impl DnsCache {
    async fn lookup(&self) -> Result<Arc<[SocketAddr]>, ResolveError> {
        let lookup = self.resolver.resolve(&self.host, self.port);
        match timeout(self.lookup_timeout, lookup).await {
            Err(_) => Err(ResolveError::TimedOut(self.lookup_timeout)),
            Ok(Err(error)) => Err(ResolveError::Failed(error)),
            Ok(Ok(addrs)) if addrs.is_empty() => Err(ResolveError::NoAddresses),
            Ok(Ok(addrs)) => Ok(addrs.into()),
        }
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // No code panics while holding this lock, and every update leaves the state
        // consistent, so a poisoned lock still holds usable data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Error of an upstream name lookup.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("name resolution failed: {0}")]
    Failed(#[source] io::Error),
    #[error("name resolution timed out after {0:?}")]
    TimedOut(Duration),
    #[error("name resolution returned no addresses")]
    NoAddresses,
}

/// Connects to each address in turn until one accepts, within `deadline`. Each attempt gets
/// an equal share of the time left for the addresses not yet tried, so one address that never
/// responds cannot use up the whole deadline.
pub(crate) async fn connect(
    addrs: &[SocketAddr],
    deadline: Instant,
) -> Result<(TcpStream, SocketAddr), ConnectError> {
    let mut attempts = Vec::with_capacity(addrs.len());

    for (tried, &addr) in addrs.iter().enumerate() {
        let left = u32::try_from(addrs.len() - tried).unwrap_or(u32::MAX);
        let share = deadline.saturating_duration_since(Instant::now()) / left;
        if share.is_zero() {
            break;
        }

        let error = match timeout(share, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                // Without TCP_NODELAY, small TLS and HTTP messages would wait for Nagle's
                // algorithm; failing to set it only costs latency.
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%addr, %error, "cannot set TCP_NODELAY on upstream socket");
                }
                return Ok((stream, addr));
            }
            Ok(Err(error)) => AttemptError::Io(error),
            Err(_) => AttemptError::TimedOut(share),
        };
        tracing::debug!(%addr, %error, "upstream connect attempt failed");
        attempts.push((addr, error));
    }

    Err(ConnectError { attempts })
}

/// Every failed attempt of one [`connect`], in order.
#[derive(Debug)]
pub struct ConnectError {
    pub attempts: Vec<(SocketAddr, AttemptError)>,
}

impl ConnectError {
    /// Returns whether every address refused the connection, so the upstream is up but not listening.
    pub fn all_refused(&self) -> bool {
        !self.attempts.is_empty()
            && self.attempts.iter().all(|(_, error)| {
                matches!(error, AttemptError::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused)
            })
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.attempts.is_empty() {
            return f.write_str("no time left in connect_timeout to try any address");
        }
        for (i, (addr, error)) in self.attempts.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{addr}: {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConnectError {}

/// Failure of one connect attempt.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("{0}")]
    Io(io::Error),
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connect_tries_next_address_after_refusal() {
        let closed = {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap()
        };
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open_addr = open.local_addr().unwrap();

        let addrs = [closed, open_addr];
        let deadline = Instant::now() + Duration::from_secs(10);
        let result = connect(&addrs[..1], deadline).await;
        assert!(result.unwrap_err().all_refused());

        let (_stream, connected) = connect(&addrs, deadline).await.unwrap();
        assert_eq!(connected, open_addr);
    }

    #[test]
    fn empty_attempt_list_is_not_refused() {
        let error = ConnectError { attempts: vec![] };
        assert!(!error.all_refused());
        assert!(error.to_string().contains("connect_timeout"));
    }
}

//! The handler of one accepted connection: connect to the route's upstream, relay until both
//! sides close, the connection idles out or the proxy closes it, then log one line.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio::time::{Instant, sleep, timeout_at};

use super::addr::addr_reaches_listener;
use super::listener::{ClientStream, Endpoint};
use super::transfer::{Side, Transfer, TransferError};
use super::upstream::{self, ConnectError, ResolveError, UpstreamAddrs};

/// Called with the report of every finished connection, after its log line is written.
pub type ConnectionObserver = Arc<dyn Fn(&ConnectionReport) + Send + Sync>;

/// State one route needs to serve a connection, shared by its accept loop and handlers.
pub(crate) struct RouteContext {
    pub(crate) label: String,
    pub(crate) upstream: Arc<UpstreamAddrs>,
    /// The TCP addresses every route of this proxy listens on.
    pub(crate) own_listeners: Arc<[SocketAddr]>,
    pub(crate) connect_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) observer: Option<ConnectionObserver>,
}

/// One accepted client and everything that must live exactly as long as its connection.
pub(crate) struct Handler {
    pub(crate) route: Arc<RouteContext>,
    pub(crate) client: ClientStream,
    pub(crate) peer: Endpoint,
    /// Becomes `true` when the proxy closes every remaining connection at the end of a drain.
    pub(crate) close: watch::Receiver<bool>,
    /// Connection-limit permits, released when the handler ends.
    pub(crate) permits: Vec<OwnedSemaphorePermit>,
    /// Dropped when the handler ends; the drain waits until every clone is gone.
    pub(crate) drain_guard: mpsc::Sender<()>,
}

impl Handler {
    pub(crate) async fn run(self) {
        let Handler {
            route,
            mut client,
            peer,
            mut close,
            permits,
            drain_guard,
        } = self;
        let started = Instant::now();

        if let ClientStream::Tcp(stream) = &client
            && let Err(error) = stream.set_nodelay(true)
        {
            tracing::debug!(route = %route.label, %peer, %error, "cannot set TCP_NODELAY");
        }

        let mut counts = Counts::default();
        let outcome = relay(&route, &mut client, &mut close, &mut counts).await;

        // Close the client socket and free the connection-limit slot before reporting, so an
        // observer that reacts to the report finds the slot free. The upstream socket is
        // already closed.
        drop(client);
        drop(permits);
        let report = ConnectionReport {
            route: route.label.clone(),
            peer,
            upstream: route.upstream.upstream().to_string(),
            upstream_addr: counts.upstream_addr,
            bytes_client_to_upstream: counts.client_to_upstream,
            bytes_upstream_to_client: counts.upstream_to_client,
            duration: started.elapsed(),
            outcome,
        };
        report.log();
        if let Some(observer) = &route.observer {
            observer(&report);
        }

        // Last, so a drain that completes has every report delivered.
        drop(drain_guard);
    }
}

#[derive(Default)]
struct Counts {
    upstream_addr: Option<SocketAddr>,
    client_to_upstream: u64,
    upstream_to_client: u64,
}

/// Connects to the upstream and relays; every wait is raced against the close signal.
async fn relay(
    route: &Arc<RouteContext>,
    client: &mut ClientStream,
    close: &mut watch::Receiver<bool>,
    counts: &mut Counts,
) -> Outcome {
    // Resolve and connect, all within connect_timeout.
    let deadline = Instant::now() + route.connect_timeout;
    let connecting = timeout_at(deadline, connect_upstream(route, deadline));
    let mut upstream = tokio::select! {
        biased;
        () = closed(close) => return Outcome::Shutdown,
        result = connecting => match result {
            Err(_) => return Outcome::ConnectTimedOut(route.connect_timeout),
            Ok(Err(outcome)) => return outcome,
            Ok(Ok((stream, addr))) => {
                counts.upstream_addr = Some(addr);
                stream
            }
        },
    };

    // Relay until both directions end, an error, the idle timeout or the close signal. The idle
    // timer is re-armed from the last activity instead of on every chunk.
    let mut transfer = Transfer::new();
    let idle = sleep(route.idle_timeout);
    tokio::pin!(idle);
    let outcome = loop {
        tokio::select! {
            biased;
            () = closed(close) => break Outcome::Shutdown,
            result = poll_fn(|cx| transfer.poll_transfer(cx, client, &mut upstream)) => {
                break match result {
                    Ok(()) => Outcome::Closed,
                    Err(TransferError::Read { from, error }) => Outcome::ReadError { from, error },
                    Err(TransferError::Write { to, error }) => Outcome::WriteError { to, error },
                };
            }
            () = &mut idle => {
                let idle_deadline = transfer.last_activity() + route.idle_timeout;
                if idle_deadline <= Instant::now() {
                    break Outcome::IdleTimeout(route.idle_timeout);
                }
                idle.as_mut().reset(idle_deadline);
            }
        }
    };

    counts.client_to_upstream = transfer.bytes_client_to_upstream();
    counts.upstream_to_client = transfer.bytes_upstream_to_client();
    outcome
}

async fn connect_upstream(
    route: &Arc<RouteContext>,
    deadline: Instant,
) -> Result<(TcpStream, SocketAddr), Outcome> {
    let addrs = route
        .upstream
        .addresses()
        .await
        .map_err(Outcome::UpstreamUnresolved)?;
    let addrs = without_own_listeners(route, &addrs)?;
    upstream::connect(&addrs, deadline).await.map_err(|error| {
        if error.all_refused() {
            Outcome::UpstreamRefused(error)
        } else {
            Outcome::UpstreamUnreachable(error)
        }
    })
}

/// Removes the resolved addresses that are one of the proxy's own TCP listeners, because a
/// connection to them would come straight back into the proxy, again and again, until the
/// connection limit is used up. Fails when no address is left.
///
/// The configuration check rejects such upstreams when it can tell from the text alone. This
/// check also covers DNS names, ports chosen at bind time and other spellings of an address.
fn without_own_listeners(
    route: &RouteContext,
    addrs: &[SocketAddr],
) -> Result<Vec<SocketAddr>, Outcome> {
    let (looping, remaining): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs.iter().partition(|addr| {
        route
            .own_listeners
            .iter()
            .any(|listener| addr_reaches_listener(**addr, *listener))
    });
    if looping.is_empty() {
        return Ok(remaining);
    }

    tracing::warn!(
        route = %route.label,
        upstream = %route.upstream.upstream(),
        skipped_addresses = ?looping,
        own_listeners = ?route.own_listeners,
        "upstream address is one of the proxy's own listeners; not connecting to it"
    );
    if remaining.is_empty() {
        return Err(Outcome::UpstreamIsOwnListener(looping[0]));
    }
    Ok(remaining)
}

/// Completes once the close signal is `true`, or once its sender is gone, since then no
/// one is left to drain for.
async fn closed(close: &mut watch::Receiver<bool>) {
    let _ = close.wait_for(|closed| *closed).await;
}

/// Cause that ended a connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// Both sides reached end of stream and every byte was relayed.
    Closed,
    /// No byte moved in either direction for this long.
    IdleTimeout(Duration),
    /// Every upstream address refused the connection.
    UpstreamRefused(ConnectError),
    /// No upstream address accepted the connection, for reasons other than refusal only.
    UpstreamUnreachable(ConnectError),
    /// The upstream name could not be resolved and no earlier addresses were cached.
    UpstreamUnresolved(ResolveError),
    /// Resolving and connecting took longer than `connect_timeout`.
    ConnectTimedOut(Duration),
    /// Every resolved upstream address is one of the proxy's own listeners, such as this
    /// one, so the proxy closed the client connection without connecting.
    UpstreamIsOwnListener(SocketAddr),
    /// Reading from this side failed.
    ReadError { from: Side, error: io::Error },
    /// Writing to this side failed.
    WriteError { to: Side, error: io::Error },
    /// The proxy closed the connection because `shutdown_timeout` elapsed during a drain.
    Shutdown,
}

impl Outcome {
    /// Returns a stable one-word name of the variant, for metrics and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Closed => "closed",
            Outcome::IdleTimeout(_) => "idle_timeout",
            Outcome::UpstreamRefused(_) => "upstream_refused",
            Outcome::UpstreamUnreachable(_) => "upstream_unreachable",
            Outcome::UpstreamUnresolved(_) => "upstream_unresolved",
            Outcome::ConnectTimedOut(_) => "connect_timeout",
            Outcome::UpstreamIsOwnListener(_) => "upstream_is_own_listener",
            Outcome::ReadError { .. } => "read_error",
            Outcome::WriteError { .. } => "write_error",
            Outcome::Shutdown => "shutdown",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Closed => f.write_str("closed"),
            Outcome::IdleTimeout(after) => write!(f, "idle timeout (no bytes for {after:?})"),
            Outcome::UpstreamRefused(error) => write!(f, "upstream refused ({error})"),
            Outcome::UpstreamUnreachable(error) => write!(f, "upstream unreachable ({error})"),
            Outcome::UpstreamUnresolved(error) => write!(f, "upstream unresolved ({error})"),
            Outcome::ConnectTimedOut(after) => {
                write!(f, "upstream connect timed out after {after:?}")
            }
            Outcome::UpstreamIsOwnListener(addr) => write!(
                f,
                "upstream address {addr} is the proxy's own listener; not connected"
            ),
            Outcome::ReadError { from, error } => write!(f, "read error from {from}: {error}"),
            Outcome::WriteError { to, error } => write!(f, "write error to {to}: {error}"),
            Outcome::Shutdown => f.write_str("shutdown"),
        }
    }
}

/// The facts of one finished connection, as logged. It contains no payload bytes.
#[derive(Debug)]
#[non_exhaustive]
pub struct ConnectionReport {
    /// The route label, such as `route[0] (vsock:8000)`.
    pub route: String,
    pub peer: Endpoint,
    /// The configured upstream, `HOST:PORT`.
    pub upstream: String,
    /// The upstream address connected to, if any.
    pub upstream_addr: Option<SocketAddr>,
    /// Bytes written to the upstream; bytes read from the client but not yet written when the
    /// connection ended are not counted.
    pub bytes_client_to_upstream: u64,
    /// Bytes written to the client, counted the same way.
    pub bytes_upstream_to_client: u64,
    pub duration: Duration,
    pub outcome: Outcome,
}

impl ConnectionReport {
    fn log(&self) {
        let upstream_addr = match self.upstream_addr {
            Some(addr) => addr.to_string(),
            None => "-".to_owned(),
        };
        tracing::info!(
            route = %self.route,
            peer = %self.peer,
            upstream = %self.upstream,
            upstream_addr = %upstream_addr,
            bytes_client_to_upstream = self.bytes_client_to_upstream,
            bytes_upstream_to_client = self.bytes_upstream_to_client,
            duration_ms = u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX),
            outcome = %self.outcome,
            "connection finished"
        );
    }
}

//! The parent-side L4 proxy: vsock or TCP listeners relaying to fixed upstreams.
//!
//! An enclave has no network; it reaches KMS and instance metadata through vsock connections
//! to its parent instance, which this proxy relays to TCP upstreams. The parent is untrusted,
//! so the proxy only moves bytes: TLS runs end to end between the enclave and the upstream.
//! Routes are static, and nothing a client sends chooses the destination.
//!
//! [`ProxyConfig`] describes the TOML format. [`run`] binds and serves a configuration until a
//! shutdown future completes. [`Proxy`] does the same in two steps, with replaceable
//! [`Binder`] and [`Resolver`] seams and an optional [`ConnectionObserver`]:
//!
//! ```no_run
//! # async fn example() -> Result<(), enclave_broker::proxy::ProxyError> {
//! use enclave_broker::proxy::{Proxy, ProxyConfig};
//!
//! let config = ProxyConfig::load("proxy.toml".as_ref())?;
//! let bound = Proxy::new().bind(&config).await?;
//! for (route, addr) in bound.local_addrs() {
//!     println!("{route} listening on {addr}");
//! }
//! bound.serve(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Behavior per connection:
//! - Connection limits: a client accepted while its route or the whole proxy is at its
//!   `max_connections` is closed at once, without reading from it. Rejections are logged at
//!   warn, at most one line per route every 10 seconds, with a count.
//! - The upstream name is resolved on first use. Once the cached addresses are older than
//!   `dns_refresh_interval`, it is resolved again in the background, and a failed lookup
//!   keeps the last good addresses. Addresses are tried in turn within `connect_timeout`.
//! - Bytes are copied both ways until each side has closed, passing half-closes on.
//!   `idle_timeout` closes a connection with no bytes in either direction.
//! - Each finished connection logs one info line (`connection finished`) with route, peer,
//!   upstream address, byte counts per direction, duration and outcome, never payload.

mod addr;
mod config;
mod config_error;
mod connection;
mod error;
mod listener;
mod server;
mod transfer;
mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub use addr::{AddrError, ListenAddr, Upstream};
pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_DNS_REFRESH_INTERVAL, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_SHUTDOWN_TIMEOUT, ProxyConfig, RouteConfig,
};
pub use config_error::{ConfigError, ConfigProblem, Location, Origin};
pub use connection::{ConnectionObserver, ConnectionReport, Outcome};
pub use error::ProxyError;
pub use listener::{Binder, Endpoint, Listener, SystemBinder};
pub use server::BoundProxy;
pub use transfer::Side;
pub use upstream::{
    AttemptError, ConnectError, ResolveError, ResolveFuture, Resolver, SystemResolver,
};

use connection::RouteContext;
use server::BoundRoute;
use upstream::UpstreamAddrs;

/// Binds `config`'s routes with the system's sockets and resolver, then serves them until
/// `shutdown` completes and the drain ends. The CLI passes a future that completes on SIGTERM
/// or SIGINT.
pub async fn run(
    config: &ProxyConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ProxyError> {
    Proxy::new().bind(config).await?.serve(shutdown).await
}

/// Builds a [`BoundProxy`] from a configuration, with replaceable seams.
#[derive(Clone)]
pub struct Proxy {
    binder: Arc<dyn Binder>,
    resolver: Arc<dyn Resolver>,
    observer: Option<ConnectionObserver>,
}

impl Default for Proxy {
    fn default() -> Self {
        Proxy {
            binder: Arc::new(SystemBinder),
            resolver: Arc::new(SystemResolver),
            observer: None,
        }
    }
}

impl Proxy {
    /// Creates a proxy with [`SystemBinder`], [`SystemResolver`] and no observer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces how listeners are bound.
    pub fn with_binder(mut self, binder: impl Binder + 'static) -> Self {
        self.binder = Arc::new(binder);
        self
    }

    /// Replaces how upstream names are resolved.
    pub fn with_resolver(mut self, resolver: impl Resolver + 'static) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }

    /// Calls `observer` with the report of every finished connection.
    pub fn with_connection_observer(
        mut self,
        observer: impl Fn(&ConnectionReport) + Send + Sync + 'static,
    ) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Binds every route's listener, in configuration order, before anything is served. The
    /// first failure is returned naming its route, and the listeners bound so far are closed.
    pub async fn bind(&self, config: &ProxyConfig) -> Result<BoundProxy, ProxyError> {
        let mut bound = Vec::with_capacity(config.routes().len());
        for route in config.routes() {
            let bind_error = |source| ProxyError::Bind {
                route: route.label(),
                listen: route.listen().clone(),
                source,
            };
            let listener = self.binder.bind(route.listen()).map_err(bind_error)?;
            let local_addr = listener.local_addr().map_err(bind_error)?;
            bound.push((route, listener, local_addr));
        }

        // Known only now that port 0 listeners have their ports. Each connection checks its
        // resolved upstream addresses against these, so it cannot loop back into the proxy.
        let own_listeners: Arc<[SocketAddr]> = bound
            .iter()
            .filter_map(|(_, _, local_addr)| local_addr.as_tcp())
            .collect();

        let mut routes = Vec::with_capacity(bound.len());
        for (route, listener, local_addr) in bound {
            let label = route.label();
            let upstream = UpstreamAddrs::new(
                label.clone(),
                route.upstream().clone(),
                Arc::clone(&self.resolver),
                config.dns_refresh_interval(),
                route.connect_timeout(),
            );
            let context = RouteContext {
                label,
                upstream: Arc::new(upstream),
                own_listeners: Arc::clone(&own_listeners),
                connect_timeout: route.connect_timeout(),
                idle_timeout: route.idle_timeout(),
                observer: self.observer.clone(),
            };
            routes.push(BoundRoute {
                context: Arc::new(context),
                listen: route.listen().clone(),
                listener,
                local_addr,
                max_connections: route.max_connections(),
            });
        }

        Ok(BoundProxy {
            routes,
            max_connections: config.max_connections(),
            shutdown_timeout: config.shutdown_timeout(),
        })
    }
}

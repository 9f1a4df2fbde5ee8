//! Routing of the broker's outbound connections: `--route HOST:PORT=TARGET`, with TARGET
//! `vsock:CID:PORT` (the parent's proxy, from inside an enclave) or `tcp:HOST:PORT`.
//!
//! With routes, every connection the AWS SDK makes (KMS, and instance metadata for
//! credentials) goes through `RoutedHttpClient`: no DNS, TLS done here with bundled root
//! certificates and the original host as server name, so the parent only relays bytes.
//! A destination without a route is refused.

mod client;
mod connect;
mod limit;

use std::fmt;
use std::str::FromStr;

pub use client::{RoutedHttpClient, TlsRoots, TransportError};
pub use connect::{Connector, SystemConnector};
pub use limit::default_https_client;

/// The far end of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Vsock { cid: u32, port: u32 },
    Tcp { host: String, port: u16 },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Vsock { cid, port } => write!(f, "vsock:{cid}:{port}"),
            Target::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
        }
    }
}

/// One `--route`: connections to `host:port` go to `target` instead, without DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub host: String,
    pub port: u16,
    pub target: Target,
}

/// Why a `--route` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid route {value:?}: {problem}; expected HOST:PORT=vsock:CID:PORT or HOST:PORT=tcp:HOST:PORT"
)]
pub struct RouteError {
    value: String,
    problem: String,
}

fn split_host_port(text: &str) -> Option<(&str, &str)> {
    let (host, port) = text.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    Some((host, port))
}

impl FromStr for Route {
    type Err = RouteError;

    fn from_str(value: &str) -> Result<Self, RouteError> {
        let error = |problem: &str| RouteError {
            value: value.to_owned(),
            problem: problem.to_owned(),
        };
        let (destination, target) = value.split_once('=').ok_or_else(|| error("missing '='"))?;
        let (host, port) =
            split_host_port(destination).ok_or_else(|| error("destination is not HOST:PORT"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| error("destination port is not 0-65535"))?;

        let target = if let Some(rest) = target.strip_prefix("vsock:") {
            let (cid, vsock_port) = rest
                .split_once(':')
                .ok_or_else(|| error("vsock target is not vsock:CID:PORT"))?;
            Target::Vsock {
                cid: cid
                    .parse()
                    .map_err(|_| error("vsock CID is not a number"))?,
                port: vsock_port
                    .parse()
                    .map_err(|_| error("vsock port is not a number"))?,
            }
        } else if let Some(rest) = target.strip_prefix("tcp:") {
            let (target_host, target_port) =
                split_host_port(rest).ok_or_else(|| error("tcp target is not tcp:HOST:PORT"))?;
            Target::Tcp {
                host: target_host.to_owned(),
                port: target_port
                    .parse()
                    .map_err(|_| error("tcp port is not 0-65535"))?,
            }
        } else {
            return Err(error("target must start with vsock: or tcp:"));
        };
        Ok(Route {
            host: host.to_ascii_lowercase(),
            port,
            target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vsock_route() {
        let route: Route = "kms.us-east-1.amazonaws.com:443=vsock:3:8000"
            .parse()
            .unwrap();
        assert_eq!(route.host, "kms.us-east-1.amazonaws.com");
        assert_eq!(route.port, 443);
        assert_eq!(route.target, Target::Vsock { cid: 3, port: 8000 });
    }

    #[test]
    fn parses_tcp_route_with_ipv6_target() {
        let route: Route = "169.254.169.254:80=tcp:[::1]:8002".parse().unwrap();
        assert_eq!(
            route.target,
            Target::Tcp {
                host: "::1".into(),
                port: 8002
            }
        );
    }

    #[test]
    fn rejects_route_without_target_scheme() {
        let error = "kms:443=127.0.0.1:8000".parse::<Route>().unwrap_err();
        assert!(error.to_string().contains("vsock: or tcp:"));
    }

    #[test]
    fn rejects_route_with_bad_port() {
        assert!("kms:99999=tcp:127.0.0.1:1".parse::<Route>().is_err());
        assert!("kms=tcp:127.0.0.1:1".parse::<Route>().is_err());
    }
}

//! Listen and upstream addresses of a route, parsed from their configuration strings.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// `VMADDR_PORT_ANY` from `<linux/vm_sockets.h>`: "any port", so never a fixed listening port.
const VSOCK_PORT_ANY: u32 = u32::MAX;

/// Maximum length of a DNS name in an upstream, in dotted text form (RFC 1035, section 2.3.4).
const MAX_DNS_NAME_LEN: usize = 253;

/// Maximum length of one label of a DNS name (RFC 1035, section 2.3.4).
const MAX_DNS_LABEL_LEN: usize = 63;

/// Listening address of a route: `vsock:PORT` or `tcp:IP:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// `vsock:PORT`, bound for any CID (`VMADDR_CID_ANY`), so the enclave connects to the
    /// parent's CID 3 on this port.
    Vsock { port: u32 },
    /// `tcp:IP:PORT` with a literal IP address (IPv6 in brackets). Port 0 makes the OS choose a
    /// free port, which [`BoundProxy::local_addrs`](super::BoundProxy::local_addrs) reports.
    Tcp(SocketAddr),
}

impl ListenAddr {
    /// Returns whether two routes with this address would compete for the same listener. A TCP port 0
    /// gets a distinct free port at each bind, so it never conflicts.
    pub(crate) fn is_fixed(&self) -> bool {
        match self {
            ListenAddr::Vsock { .. } => true,
            ListenAddr::Tcp(addr) => addr.port() != 0,
        }
    }
}

impl FromStr for ListenAddr {
    type Err = AddrError;

    fn from_str(text: &str) -> Result<Self, AddrError> {
        if let Some(port) = text.strip_prefix("vsock:") {
            let port: u32 = port.parse().map_err(|_| AddrError::InvalidVsockPort)?;
            if port == 0 || port == VSOCK_PORT_ANY {
                return Err(AddrError::InvalidVsockPort);
            }
            return Ok(ListenAddr::Vsock { port });
        }

        if let Some(addr) = text.strip_prefix("tcp:") {
            let addr: SocketAddr = addr.parse().map_err(|_| AddrError::InvalidTcpListen)?;
            return Ok(ListenAddr::Tcp(addr));
        }

        Err(AddrError::UnknownListenScheme)
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Vsock { port } => write!(f, "vsock:{port}"),
            ListenAddr::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

/// The fixed destination of a route: `HOST:PORT`, where HOST is a DNS name, an IPv4 address
/// or an IPv6 address in brackets. An IP address is used as is; a name is resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Upstream {
    host: UpstreamHost,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum UpstreamHost {
    Ip(IpAddr),
    Name(String),
}

impl Upstream {
    /// Returns the socket address when the host is an IP address literal, which needs no
    /// resolution.
    pub fn ip_addr(&self) -> Option<SocketAddr> {
        match self.host {
            UpstreamHost::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            UpstreamHost::Name(_) => None,
        }
    }

    /// Returns the DNS name, or `None` for an IP address literal.
    pub fn dns_name(&self) -> Option<&str> {
        match &self.host {
            UpstreamHost::Ip(_) => None,
            UpstreamHost::Name(name) => Some(name),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns whether connecting to this upstream reaches a TCP listener bound to `listen`,
    /// as far as the configuration alone can tell. [`addr_reaches_listener`] states the
    /// rules. An IPv4
    /// address in the shorthand `getaddrinfo` accepts (`127.1`, `0x7f.1`) counts as that
    /// address, and `localhost` counts as a loopback address.
    ///
    /// NOTE: other DNS names are not resolved here, and neither are the machine's own
    /// non-loopback addresses known, so an upstream that reaches a listener through them is
    /// not detected here. The proxy checks every resolved address again before connecting.
    pub(crate) fn reaches_listener(&self, listen: SocketAddr) -> bool {
        if self.port != listen.port() {
            return false;
        }
        match &self.host {
            UpstreamHost::Ip(ip) => addr_reaches_listener(SocketAddr::new(*ip, self.port), listen),
            UpstreamHost::Name(name) => {
                let name = name.strip_suffix('.').unwrap_or(name);
                if let Some(ip) = parse_ipv4_shorthand(name) {
                    return addr_reaches_listener(SocketAddr::new(ip.into(), self.port), listen);
                }
                let is_local = |ip: IpAddr| ip.is_loopback() || ip.is_unspecified();
                name.eq_ignore_ascii_case("localhost") && is_local(listen.ip())
            }
        }
    }
}

/// Returns `ip` with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) turned into the IPv4
/// address it carries, which is where a connection to it goes.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Returns whether a TCP connection to `target` reaches a listener bound to `listener`.
///
/// Both addresses are compared in canonical form (see [`canonical_ip`]), on the same port.
/// A listener bound to an unspecified address (`0.0.0.0` or `::`) is reached through any
/// loopback or unspecified address, and a connection to an unspecified address goes to the
/// local host, so it reaches a loopback listener. Both rules ignore the address family, which
/// errs on the side of reporting a loop: a `0.0.0.0` listener counts as reached by `[::1]`.
pub(crate) fn addr_reaches_listener(target: SocketAddr, listener: SocketAddr) -> bool {
    if target.port() != listener.port() {
        return false;
    }
    let target = canonical_ip(target.ip());
    let listener = canonical_ip(listener.ip());
    let is_local = |ip: IpAddr| ip.is_loopback() || ip.is_unspecified();

    target == listener
        || (listener.is_unspecified() && is_local(target))
        || (target.is_unspecified() && is_local(listener))
}

/// Parses the IPv4 forms that `inet_aton`, and so `getaddrinfo`, accepts besides the dotted
/// quad: one to four parts, each decimal, octal (leading `0`) or hexadecimal (`0x`), where
/// the last part fills the remaining bytes (`127.1` is `127.0.0.1`). Returns `None` for
/// anything else, which is then a DNS name.
fn parse_ipv4_shorthand(text: &str) -> Option<std::net::Ipv4Addr> {
    let parts: Vec<u32> = text
        .split('.')
        .map(parse_inet_number)
        .collect::<Option<_>>()?;
    let (last, leading) = parts.split_last()?;
    if leading.len() > 3 || leading.iter().any(|part| *part > 0xff) {
        return None;
    }

    // The last part covers the bytes the leading parts leave, so it must fit in them.
    let last_bits = 8 * (4 - leading.len() as u32);
    if last_bits < 32 && *last >= 1 << last_bits {
        return None;
    }
    let mut value = *last;
    for (position, part) in leading.iter().enumerate() {
        value |= part << (24 - 8 * position as u32);
    }
    Some(value.into())
}

/// Parses one part of an `inet_aton` address: decimal, octal with a leading `0`, or
/// hexadecimal with `0x`.
fn parse_inet_number(text: &str) -> Option<u32> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).ok();
    }
    if text.len() > 1
        && let Some(octal) = text.strip_prefix('0')
    {
        return u32::from_str_radix(octal, 8).ok();
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl FromStr for Upstream {
    type Err = AddrError;

    fn from_str(text: &str) -> Result<Self, AddrError> {
        if text.contains("://") {
            return Err(AddrError::UpstreamHasScheme);
        }

        // Split HOST from PORT. An IPv6 address carries colons, so it must be in brackets.
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or(AddrError::InvalidUpstreamHost)?;
            let port = after
                .strip_prefix(':')
                .ok_or(AddrError::MissingUpstreamPort)?;
            let ip: std::net::Ipv6Addr =
                host.parse().map_err(|_| AddrError::InvalidUpstreamHost)?;
            (UpstreamHost::Ip(IpAddr::V6(ip)), port)
        } else {
            let (host, port) = text
                .rsplit_once(':')
                .ok_or(AddrError::MissingUpstreamPort)?;
            if host.contains(':') {
                return Err(AddrError::UnbracketedIpv6);
            }
            (parse_host(host)?, port)
        };

        if port.is_empty() {
            return Err(AddrError::MissingUpstreamPort);
        }
        let port: u16 = port.parse().map_err(|_| AddrError::InvalidUpstreamPort)?;
        if port == 0 {
            return Err(AddrError::UpstreamPortZero);
        }

        Ok(Upstream { host, port })
    }
}

/// Parses an unbracketed host: an IPv4 address or a DNS name of letters, digits, `-` and `_`.
fn parse_host(host: &str) -> Result<UpstreamHost, AddrError> {
    if host.is_empty() {
        return Err(AddrError::EmptyUpstreamHost);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(UpstreamHost::Ip(ip));
    }

    // A trailing dot marks a fully qualified name. It is kept because resolvers accept it.
    let name = host.strip_suffix('.').unwrap_or(host);
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= MAX_DNS_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.len() > MAX_DNS_NAME_LEN || !name.split('.').all(valid_label) {
        return Err(AddrError::InvalidUpstreamHost);
    }

    Ok(UpstreamHost::Name(host.to_owned()))
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            UpstreamHost::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            UpstreamHost::Ip(IpAddr::V4(ip)) => write!(f, "{ip}:{}", self.port),
            UpstreamHost::Name(name) => write!(f, "{name}:{}", self.port),
        }
    }
}

/// Error in a `listen` or `upstream` string. Its message states the expected form, and the
/// configuration error around it names the route, the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddrError {
    #[error("expected vsock:PORT or tcp:IP:PORT")]
    UnknownListenScheme,
    #[error("the vsock port must be a number from 1 to 4294967294")]
    InvalidVsockPort,
    #[error("expected tcp:IP:PORT with a literal IP address, IPv6 in brackets")]
    InvalidTcpListen,
    #[error("expected HOST:PORT without a scheme such as https://")]
    UpstreamHasScheme,
    #[error("missing port; expected HOST:PORT")]
    MissingUpstreamPort,
    #[error("the port must be a number from 1 to 65535")]
    InvalidUpstreamPort,
    #[error("port 0 is not a valid destination port")]
    UpstreamPortZero,
    #[error("empty host; expected HOST:PORT")]
    EmptyUpstreamHost,
    #[error("an IPv6 host must be in brackets, as in [2001:db8::1]:443")]
    UnbracketedIpv6,
    #[error("the host is neither an IP address nor a valid DNS name")]
    InvalidUpstreamHost,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vsock_and_tcp_listen() {
        assert_eq!("vsock:8000".parse(), Ok(ListenAddr::Vsock { port: 8000 }));
        assert_eq!(
            "tcp:127.0.0.1:0".parse(),
            Ok(ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()))
        );
        assert_eq!(
            "tcp:[::1]:8000".parse::<ListenAddr>().unwrap().to_string(),
            "tcp:[::1]:8000"
        );
    }

    #[test]
    fn rejects_bad_listen_syntax() {
        let cases = [
            ("8000", AddrError::UnknownListenScheme),
            ("udp:127.0.0.1:53", AddrError::UnknownListenScheme),
            ("vsock:", AddrError::InvalidVsockPort),
            ("vsock:0", AddrError::InvalidVsockPort),
            ("vsock:4294967295", AddrError::InvalidVsockPort),
            ("vsock:3:8000", AddrError::InvalidVsockPort),
            ("tcp:localhost:8000", AddrError::InvalidTcpListen),
            ("tcp:127.0.0.1", AddrError::InvalidTcpListen),
            ("tcp:::1:8000", AddrError::InvalidTcpListen),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<ListenAddr>(), Err(expected), "listen {text:?}");
        }
    }

    #[test]
    fn parses_upstream_forms() {
        let kms: Upstream = "kms.us-east-1.amazonaws.com:443".parse().unwrap();
        assert_eq!(kms.dns_name(), Some("kms.us-east-1.amazonaws.com"));
        assert_eq!(kms.port(), 443);
        assert_eq!(kms.ip_addr(), None);

        let imds: Upstream = "169.254.169.254:80".parse().unwrap();
        assert_eq!(imds.ip_addr(), Some("169.254.169.254:80".parse().unwrap()));

        let v6: Upstream = "[::1]:8443".parse().unwrap();
        assert_eq!(v6.ip_addr(), Some("[::1]:8443".parse().unwrap()));
        assert_eq!(v6.to_string(), "[::1]:8443");
    }

    #[test]
    fn rejects_bad_upstreams() {
        let cases = [
            ("kms.amazonaws.com", AddrError::MissingUpstreamPort),
            ("kms.amazonaws.com:", AddrError::MissingUpstreamPort),
            ("kms.amazonaws.com:0", AddrError::UpstreamPortZero),
            ("kms.amazonaws.com:65536", AddrError::InvalidUpstreamPort),
            ("kms.amazonaws.com:https", AddrError::InvalidUpstreamPort),
            (":443", AddrError::EmptyUpstreamHost),
            (
                "https://kms.amazonaws.com:443",
                AddrError::UpstreamHasScheme,
            ),
            ("::1:443", AddrError::UnbracketedIpv6),
            ("[::1]", AddrError::MissingUpstreamPort),
            ("[not-ip]:443", AddrError::InvalidUpstreamHost),
            ("bad host:443", AddrError::InvalidUpstreamHost),
            ("-bad.example:443", AddrError::InvalidUpstreamHost),
            ("a..b:443", AddrError::InvalidUpstreamHost),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Upstream>(), Err(expected), "upstream {text:?}");
        }
    }

    #[test]
    fn own_listener_spellings_reach_listener() {
        let listener: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        for upstream in [
            "127.0.0.1:8443",
            "[::ffff:127.0.0.1]:8443",
            "[::ffff:7f00:1]:8443",
            "0.0.0.0:8443",
            "[::]:8443",
            "127.1:8443",
            "0x7f.1:8443",
            "0177.0.0.1:8443",
            "2130706433:8443",
            "localhost:8443",
        ] {
            let upstream: Upstream = upstream.parse().unwrap();
            assert!(upstream.reaches_listener(listener), "upstream {upstream}");
        }
    }

    #[test]
    fn unspecified_listener_reached_by_loopback() {
        let any_v4: SocketAddr = "0.0.0.0:8443".parse().unwrap();
        let any_v6: SocketAddr = "[::]:8443".parse().unwrap();
        for target in ["127.0.0.2:8443", "[::1]:8443", "[::ffff:127.0.0.1]:8443"] {
            let target: SocketAddr = target.parse().unwrap();
            assert!(
                addr_reaches_listener(target, any_v4),
                "{target} to {any_v4}"
            );
            assert!(
                addr_reaches_listener(target, any_v6),
                "{target} to {any_v6}"
            );
        }
    }

    #[test]
    fn other_hosts_and_ports_do_not_reach_listener() {
        let listener: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        for upstream in [
            "127.0.0.1:8444",
            "127.0.0.2:8443",
            "10.0.0.5:8443",
            "[::ffff:10.0.0.5]:8443",
            "127.1.example:8443",
            "256.1:8443",
            "kms.us-east-1.amazonaws.com:8443",
        ] {
            let upstream: Upstream = upstream.parse().unwrap();
            assert!(!upstream.reaches_listener(listener), "upstream {upstream}");
        }
    }

    #[test]
    fn parses_ipv4_shorthand_like_inet_aton() {
        let cases = [
            ("127.1", Some([127, 0, 0, 1])),
            ("127.0.1", Some([127, 0, 0, 1])),
            ("0x7f000001", Some([127, 0, 0, 1])),
            ("10.0x10.0400", Some([10, 16, 1, 0])),
            ("1.2.3.4.5", None),
            ("1.256", Some([1, 0, 1, 0])),
            ("256.1", None),
            ("1.2.65536", None),
            ("08.1", None),
            ("1..2", None),
            ("a.b", None),
        ];
        for (text, expected) in cases {
            let expected = expected.map(std::net::Ipv4Addr::from);
            assert_eq!(parse_ipv4_shorthand(text), expected, "{text:?}");
        }
    }

    #[test]
    fn tcp_port_zero_is_not_fixed() {
        let any: ListenAddr = "tcp:127.0.0.1:0".parse().unwrap();
        let fixed: ListenAddr = "tcp:127.0.0.1:8000".parse().unwrap();
        assert!(!any.is_fixed());
        assert!(fixed.is_fixed());
        assert!(ListenAddr::Vsock { port: 8000 }.is_fixed());
    }
}

//! Guard against DNS rebinding. It decides which `Host` header values and absolute-form
//! request targets name the loopback interface.
//!
//! A web page can point a DNS name it controls at 127.0.0.1 and then read responses from a
//! server there as same-origin. Its requests still carry the page's name in `Host`, so the
//! endpoint serves only requests addressed to a loopback name or address.

use std::net::{IpAddr, Ipv6Addr};

use axum::http::uri::Authority;
use axum::http::{HeaderMap, Uri, header};

/// Reason a request is not addressed to loopback, for the 421 message. It never contains the
/// request's values, which the client chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NotLoopback {
    /// The request has no `Host` header (HTTP/1.1 requires one).
    MissingHost,
    /// `Host` is repeated, not valid text or names another host.
    Host,
    /// The absolute-form request target (`GET http://HOST/…`) names another host.
    TargetAuthority,
}

impl NotLoopback {
    pub(super) fn message(self) -> &'static str {
        match self {
            NotLoopback::MissingHost => {
                "the Host header is missing; send Host: localhost or 127.0.0.1 with the port"
            }
            NotLoopback::Host => {
                "the Host header is not a loopback name or address; send Host: localhost or \
                 127.0.0.1 with the port"
            }
            NotLoopback::TargetAuthority => {
                "the request target names a host that is not loopback; send the path only"
            }
        }
    }
}

/// Checks that the request is addressed to loopback. The request needs exactly one `Host`
/// header, and it and the authority of an absolute-form target, if any, must each be
/// `localhost`, an address in 127.0.0.0/8, `[::1]` or an IPv4-mapped form of those. A port
/// is allowed.
pub(super) fn check_loopback_request(uri: &Uri, headers: &HeaderMap) -> Result<(), NotLoopback> {
    if let Some(authority) = uri.authority()
        && !is_loopback_authority(authority)
    {
        return Err(NotLoopback::TargetAuthority);
    }

    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next().ok_or(NotLoopback::MissingHost)?;
    if hosts.next().is_some() {
        return Err(NotLoopback::Host);
    }
    let authority = host
        .to_str()
        .ok()
        .and_then(|text| text.parse::<Authority>().ok())
        .ok_or(NotLoopback::Host)?;
    if !is_loopback_authority(&authority) {
        return Err(NotLoopback::Host);
    }
    Ok(())
}

/// Returns whether `authority` is a loopback host with an optional port and no user
/// information.
fn is_loopback_authority(authority: &Authority) -> bool {
    if authority.as_str().contains('@') {
        return false;
    }
    is_loopback_host(authority.host())
}

fn is_loopback_host(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Some(v6) = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    {
        return v6
            .parse::<Ipv6Addr>()
            .is_ok_and(|ip| IpAddr::V6(ip).to_canonical().is_loopback());
    }
    host.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers_with_host(host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        headers
    }

    fn path() -> Uri {
        "/api/v1/attestation/report".parse().unwrap()
    }

    #[test]
    fn loopback_hosts_accepted() {
        for host in [
            "localhost",
            "localhost:50123",
            "LocalHost:50123",
            "127.0.0.1",
            "127.0.0.1:50123",
            "127.1.2.3:8080",
            "[::1]",
            "[::1]:50123",
            "[::ffff:127.0.0.1]:50123",
        ] {
            let result = check_loopback_request(&path(), &headers_with_host(host));
            assert_eq!(result, Ok(()), "Host: {host}");
        }
    }

    #[test]
    fn other_hosts_rejected() {
        for host in [
            "evil.example",
            "evil.example:50123",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "10.0.0.1:50123",
            "0.0.0.0:50123",
            "[::]:50123",
            "[2001:db8::1]:50123",
            "user@localhost:50123",
            "",
        ] {
            let result = check_loopback_request(&path(), &headers_with_host(host));
            assert_eq!(result, Err(NotLoopback::Host), "Host: {host:?}");
        }
    }

    #[test]
    fn missing_or_repeated_host_rejected() {
        let result = check_loopback_request(&path(), &HeaderMap::new());
        assert_eq!(result, Err(NotLoopback::MissingHost));

        let mut headers = headers_with_host("localhost");
        headers.append(header::HOST, HeaderValue::from_static("127.0.0.1"));
        let result = check_loopback_request(&path(), &headers);
        assert_eq!(result, Err(NotLoopback::Host));
    }

    #[test]
    fn absolute_form_target_needs_loopback_authority() {
        let headers = headers_with_host("localhost:50123");
        let evil: Uri = "http://evil.example/api/v1/attestation/report"
            .parse()
            .unwrap();
        let local: Uri = "http://127.0.0.1:50123/api/v1/attestation/report"
            .parse()
            .unwrap();

        assert_eq!(
            check_loopback_request(&evil, &headers),
            Err(NotLoopback::TargetAuthority)
        );
        assert_eq!(check_loopback_request(&local, &headers), Ok(()));
    }
}

//! The attestation endpoint's HTTP behaviour: methods, paths, size limits, concurrency,
//! deadlines, attester failures, the loopback Host check and shutdown.

mod server_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use enclave_broker::attestation::source::{
    AttestFuture, AttestationRequest, Attester, AttesterError,
};
use enclave_broker::server::{Limits, Server, ServerConfig, ServerError};
use server_common::{REPORT, TestServer, get, get_with_host, request, send_raw};

#[tokio::test(flavor = "multi_thread")]
async fn rejects_other_methods_with_405() {
    let server = TestServer::sim().await;
    for method in ["POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"] {
        let response = request(server.addr, method, REPORT).await;
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(response.header("allow"), Some("GET"), "{method}");
        if method != "HEAD" {
            assert_eq!(
                response.error(),
                format!("method_not_allowed: {method} is not allowed; use GET")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_other_paths_with_404() {
    let server = TestServer::sim().await;
    for path in [
        "/",
        "/api/v1/attestation",
        "/api/v1/attestation/report/",
        "/api/v1/attestation/REPORT",
        "/api/v2/attestation/report",
    ] {
        let response = get(server.addr, path).await;
        assert_eq!(response.status, 404, "{path}");
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert!(response.error().starts_with("not_found: "), "{path}");
    }
    let post = request(server.addr, "POST", "/elsewhere").await;
    assert_eq!(post.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn rejects_long_request_target() {
    let server = TestServer::sim().await;

    // Over the 8 KiB target limit: a JSON 414.
    let long = format!("{REPORT}?pad={}", "a".repeat(9000));
    let response = get(server.addr, &long).await;
    assert_eq!(response.status, 414);
    assert_eq!(
        response.error(),
        format!(
            "uri_too_long: request target is {} bytes, limit 8192",
            long.len()
        )
    );

    // Over the 16 KiB head buffer: hyper returns 431 before routing.
    let huge = format!("{REPORT}?pad={}", "a".repeat(20_000));
    let response = get(server.addr, &huge).await;
    assert_eq!(response.status, 431);
}

#[tokio::test(flavor = "multi_thread")]
async fn rejects_oversized_headers() {
    let server = TestServer::sim().await;
    let head = format!(
        "GET {REPORT} HTTP/1.1\r\nHost: localhost\r\nX-Filler: {}\r\nConnection: close\r\n\r\n",
        "b".repeat(20_000)
    );
    let response = send_raw(server.addr, head.as_bytes()).await;
    assert_eq!(response.status, 431);
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_64_concurrent_requests() {
    let server = Arc::new(TestServer::sim().await);
    let mut tasks = Vec::new();
    for index in 0..64u32 {
        let server = Arc::clone(&server);
        tasks.push(tokio::spawn(async move {
            let nonce = index.to_be_bytes();
            let query = format!("nonce={}", base64url(&nonce));
            let response = server.report(&query).await;
            (index, response)
        }));
    }
    for task in tasks {
        let (index, response) = task.await.unwrap();
        assert_eq!(response.status, 200, "request {index}");
        let verified = server.verify(&response.body);
        assert_eq!(
            verified.document().nonce(),
            Some(&index.to_be_bytes()[..]),
            "request {index}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_keep_alive_requests_on_one_connection() {
    let server = TestServer::sim().await;
    let head = format!(
        "GET {REPORT}?nonce=AQ HTTP/1.1\r\nHost: localhost\r\n\r\n\
         GET {REPORT}?nonce= HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    );
    let response = send_raw(server.addr, head.as_bytes()).await;
    // The first response is parsed; the second (a 400) follows it on the same connection.
    assert_eq!(response.status, 200);
    let rest = String::from_utf8_lossy(&response.body);
    assert!(rest.contains("HTTP/1.1 400 Bad Request"), "{rest}");
}

/// An attester that never returns, like a device stuck in an ioctl or an RNG that blocks.
struct NeverReturns;

impl Attester for NeverReturns {
    fn attest<'a>(&'a self, _request: &'a AttestationRequest) -> AttestFuture<'a> {
        Box::pin(std::future::pending())
    }

    fn name(&self) -> &'static str {
        "never"
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_503_when_attester_hangs() {
    let limits = Limits {
        request_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let server = TestServer::start(Arc::new(NeverReturns), limits).await;
    let response = tokio::time::timeout(Duration::from_secs(5), server.report("nonce=AQ"))
        .await
        .expect("the endpoint must answer within its deadline");
    assert_eq!(response.status, 503);
    assert!(response.error().starts_with("attester_timeout: "));
}

/// An attester that fails with internal detail that must not reach the client.
struct Fails;

impl Attester for Fails {
    fn attest<'a>(&'a self, _request: &'a AttestationRequest) -> AttestFuture<'a> {
        Box::pin(async {
            Err(AttesterError::Simulator(
                "secret internal path /var/lib/x".to_owned(),
            ))
        })
    }

    fn name(&self) -> &'static str {
        "fails"
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hides_attester_failure_detail() {
    let server = TestServer::start(Arc::new(Fails), Limits::default()).await;
    let response = server.report("").await;
    assert_eq!(response.status, 500);
    let error = response.error();
    assert!(error.starts_with("attestation_failed: "), "{error}");
    assert!(!error.contains("/var/lib/x"), "{error}");
}

/// An attester that counts calls in flight and takes a while to return.
struct Slow {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    delay: Duration,
}

impl Attester for Slow {
    fn attest<'a>(&'a self, _request: &'a AttestationRequest) -> AttestFuture<'a> {
        Box::pin(async move {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            Ok(vec![0x84])
        })
    }

    fn name(&self) -> &'static str {
        "slow"
    }
}

fn slow(delay: Duration) -> Arc<Slow> {
    Arc::new(Slow {
        in_flight: AtomicUsize::new(0),
        max_in_flight: AtomicUsize::new(0),
        delay,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn bounds_concurrent_attester_calls() {
    let attester = slow(Duration::from_millis(50));
    let limits = Limits {
        max_concurrent_attestations: 3,
        ..Limits::default()
    };
    let server = Arc::new(TestServer::start(attester.clone(), limits).await);
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let server = Arc::clone(&server);
            tokio::spawn(async move { server.report("").await.status })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    assert_eq!(attester.max_in_flight.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn finishes_open_request_on_shutdown() {
    let attester = slow(Duration::from_millis(300));
    let server = TestServer::start(attester.clone(), Limits::default()).await;
    let addr = server.addr;
    let in_flight = tokio::spawn(async move { get(addr, REPORT).await });
    while attester.in_flight.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    server.shut_down().await;

    let response = in_flight.await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, vec![0x84]);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_non_loopback_address_without_danger_flag() {
    // The check runs before binding, so nothing listens on these addresses.
    for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:50123"] {
        let config = ServerConfig::new(addr.parse().unwrap());
        let error = Server::bind(&config).await.err().unwrap();
        assert!(matches!(error, ServerError::NotLoopback { .. }), "{addr}");
        assert!(error.to_string().contains("--danger-allow-non-loopback"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rejects_non_loopback_host_with_421() {
    let server = TestServer::sim().await;
    let port = server.addr.port();
    let cases = [
        Some("evil.example".to_owned()),
        Some(format!("evil.example:{port}")),
        Some(format!("127.0.0.1.nip.example:{port}")),
        Some(format!("192.0.2.1:{port}")),
        None,
    ];
    for host in cases {
        let response = get_with_host(server.addr, REPORT, host.as_deref()).await;

        assert_eq!(response.status, 421, "Host {host:?}");
        assert_eq!(
            response.header("content-type"),
            Some("application/json"),
            "Host {host:?}"
        );
        assert!(
            response.error().starts_with("misdirected_request: "),
            "Host {host:?}: {}",
            response.error()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rejects_absolute_form_target_of_other_host() {
    let server = TestServer::sim().await;
    let port = server.addr.port();
    let target = format!("http://evil.example{REPORT}?nonce=AQ");

    let response = get_with_host(server.addr, &target, Some(&format!("localhost:{port}"))).await;

    assert_eq!(response.status, 421);
    assert_eq!(
        response.error(),
        "misdirected_request: the request target names a host that is not loopback; send the \
         path only"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_loopback_hosts_and_targets() {
    let server = TestServer::sim().await;
    let port = server.addr.port();
    let local_path = format!("{REPORT}?nonce=AQ");
    let absolute = format!("http://127.0.0.1:{port}{REPORT}?nonce=AQ");
    let cases = [
        (local_path.as_str(), format!("localhost:{port}")),
        (local_path.as_str(), format!("127.0.0.1:{port}")),
        (local_path.as_str(), "localhost".to_owned()),
        (local_path.as_str(), format!("[::1]:{port}")),
        (absolute.as_str(), format!("127.0.0.1:{port}")),
    ];
    for (target, host) in cases {
        let response = get_with_host(server.addr, target, Some(&host)).await;

        assert_eq!(response.status, 200, "{target} with Host {host}");
        assert_eq!(
            server.verify(&response.body).document().nonce(),
            Some(&[1u8][..]),
            "{target} with Host {host}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn danger_flag_serves_any_host() {
    let config = ServerConfig {
        danger_allow_non_loopback: true,
        ..ServerConfig::new("127.0.0.1:0".parse().unwrap())
    };
    let server = TestServer::start_with_config(slow(Duration::ZERO), &config).await;
    let target = format!("http://evil.example{REPORT}");

    let by_host = get_with_host(server.addr, REPORT, Some("evil.example:50123")).await;
    let by_target = get_with_host(server.addr, &target, Some("evil.example")).await;

    assert_eq!(by_host.status, 200);
    assert_eq!(by_target.status, 200);
}

#[test]
fn loopback_check_accepts_all_loopback_forms() {
    use enclave_broker::server::is_loopback;
    for addr in [
        "127.0.0.1:1",
        "127.8.9.10:1",
        "[::1]:1",
        "[::ffff:127.0.0.1]:1",
    ] {
        assert!(is_loopback(&addr.parse().unwrap()), "{addr}");
    }
    for addr in ["0.0.0.0:1", "10.0.0.1:1", "[::]:1", "[::ffff:10.0.0.1]:1"] {
        assert!(!is_loopback(&addr.parse().unwrap()), "{addr}");
    }
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread")]
async fn closes_connection_with_slow_headers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = TestServer::sim_with_limits(limits).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(format!("GET {REPORT} HTTP/1.1\r\nHost: localhost\r\n").as_bytes())
        .await
        .unwrap();

    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received))
        .await
        .expect("the server must close a connection whose headers never finish");
    assert!(read.is_ok() || received.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn closes_idle_keep_alive_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = TestServer::sim_with_limits(limits).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(format!("GET {REPORT}?nonce=AQ HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();

    // The whole exchange, read until the server closes the idle connection.
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received))
        .await
        .expect("the server must close an idle keep-alive connection");
    assert!(read.is_ok());
    assert!(received.starts_with(b"HTTP/1.1 200 OK"));
}

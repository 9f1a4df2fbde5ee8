//! Startup and shutdown: every listener is bound before serving, bind failures name the route,
//! and a shutdown signal stops accepting, drains live connections, then closes the rest.

mod proxy_support;

use std::io;

use enclave_broker::proxy::{self, Proxy, ProxyConfig, ProxyError};
use proxy_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_transfer() {
    const HALF: u64 = 1024 * 1024;
    let upstream = spawn_echo().await;
    let toml = format!("shutdown_timeout = \"1h\"\n{}", one_route(upstream, ""));
    let mut proxy = start(&toml).await;
    let addr = proxy.addr(0);

    // Start a transfer, so a connection is in flight when the signal comes.
    let payload = Payload::new(0xd4a1_0001, 2 * HALF).to_vec();
    let (first, second) = payload.split_at(HALF as usize);
    let client = connect(addr).await;
    let (mut reader, mut writer) = client.into_split();
    let echo = tokio::spawn(async move { read_digest(&mut reader).await });
    writer.write_all(first).await.unwrap();

    // Signal shutdown and wait until the listener is closed: new connections are refused.
    proxy.signal_shutdown();
    within_guard("listener close", async {
        loop {
            match TcpStream::connect(addr).await {
                Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => break,
                // Accepted just before the close; it is served and ends when dropped here.
                Ok(stream) => drop(stream),
                // Still in the kernel's accept queue when the listener closed, so reset.
                Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {}
                Err(error) => panic!("unexpected connect error: {error}"),
            }
            tokio::task::yield_now().await;
        }
    })
    .await;

    // The in-flight connection still completes, byte for byte.
    writer.write_all(second).await.unwrap();
    writer.shutdown().await.unwrap();
    let echoed = within_guard("echo", echo).await.unwrap().unwrap();
    assert_eq!(echoed, (2 * HALF, sha256(&payload)));

    // Every connection, including any accepted just before the close, ended on its own.
    drop(writer);
    let (result, reports) = proxy.stop_and_collect().await;
    assert!(result.is_ok(), "{result:?}");
    assert!(!reports.is_empty());
    for report in reports {
        assert_eq!(report.kind, "closed", "{}", report.outcome);
    }
}

#[tokio::test]
async fn shutdown_timeout_closes_remaining_connections() {
    let upstream = spawn_silent().await;
    let toml = format!(
        "shutdown_timeout = \"100ms\"\nidle_timeout = \"1h\"\n{}",
        one_route(upstream, "")
    );
    let proxy = start(&toml).await;

    // A connection that would stay open for an hour.
    let mut client = connect(proxy.addr(0)).await;
    client.write_all(b"hello").await.unwrap();

    let (result, reports) = proxy.stop_and_collect().await;
    assert!(result.is_ok(), "{result:?}");

    let mut rest = Vec::new();
    let read = within_guard("client read", client.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(0)),
        "expected end of stream, got {read:?}"
    );
    let [report] = &reports[..] else {
        panic!("expected one report, got {reports:?}");
    };
    assert_eq!(report.kind, "shutdown");
    assert_eq!(report.client_to_upstream, 5);
}

#[tokio::test]
async fn vsock_unavailable_names_route() {
    let upstream = spawn_echo().await;
    let config = ProxyConfig::from_toml_str(&format!(
        "{}[[route]]\nlisten = \"vsock:8000\"\nupstream = \"{upstream}\"\n",
        one_route(upstream, "")
    ))
    .unwrap();

    let error = Proxy::new()
        .with_binder(NoVsockBinder)
        .bind(&config)
        .await
        .err()
        .expect("binding a vsock route without vsock support must fail");

    let message = error.to_string();
    assert!(matches!(error, ProxyError::Bind { .. }), "{message}");
    assert!(
        message.starts_with("route[1] (vsock:8000): cannot bind vsock:8000"),
        "{message}"
    );
    assert!(message.contains("AF_VSOCK"), "{message}");
    assert_eq!(error.exit_code(), 3);
}

#[tokio::test]
async fn address_in_use_names_route() {
    let taken = loopback_listener();
    let addr = taken.local_addr().unwrap();
    let config = ProxyConfig::from_toml_str(&format!(
        "[[route]]\nlisten = \"tcp:{addr}\"\nupstream = \"127.0.0.1:9\"\n"
    ))
    .unwrap();

    let error = Proxy::new()
        .with_binder(LoopbackBinder)
        .bind(&config)
        .await
        .err()
        .expect("binding a port in use must fail");

    let message = error.to_string();
    let ProxyError::Bind { source, .. } = &error else {
        panic!("expected a bind error, got {message}");
    };
    assert_eq!(source.kind(), io::ErrorKind::AddrInUse, "{message}");
    assert!(
        message.starts_with(&format!("route[0] (tcp:{addr}): cannot bind")),
        "{message}"
    );
    assert_eq!(error.exit_code(), 3);
}

#[tokio::test]
async fn run_serves_until_shutdown() {
    let upstream = spawn_echo().await;
    let config = ProxyConfig::from_toml_str(&one_route(upstream, "")).unwrap();

    // The system binder on a TCP route: `run` binds, serves and stops on the signal.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        proxy::run(&config, async {
            let _ = stopped.await;
        })
        .await
    });
    stop.send(()).unwrap();
    let result = within_guard("run", task).await.unwrap();
    assert!(result.is_ok(), "{result:?}");
}

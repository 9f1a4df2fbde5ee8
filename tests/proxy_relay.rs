//! The proxy relays bytes both ways, passes half-closes on, and reports how each connection
//! ended. Every upstream is a server the test starts on 127.0.0.1.

mod proxy_support;

use std::net::SocketAddr;
use std::time::Duration;

use proxy_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const SIZES: [u64; 3] = [1, 64 * 1024, 64 * 1024 * 1024];

/// Digest and length of what an upstream received, sent back to the test.
type Received = (u64, Vec<u8>);

/// Starts an upstream that reads the client's stream to its end, then replies with `reply`
/// and half-closes. It replies only after the client's end of stream arrived, so the reply
/// passing proves that the client's half-close reached it and the other direction stayed open.
async fn spawn_reply_after_request(
    reply: Payload,
) -> (SocketAddr, mpsc::UnboundedReceiver<Received>) {
    let listener = loopback_listener();
    let addr = listener.local_addr().unwrap();
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let sender = sender.clone();
            tokio::spawn(async move {
                let received = read_digest(&mut stream).await.unwrap();
                reply.write_to(&mut stream).await.unwrap();
                stream.shutdown().await.unwrap();
                let _ = sender.send(received);
            });
        }
    });
    (addr, receiver)
}

/// Starts an upstream that first sends `greeting` and half-closes, then reads the client's
/// stream to its end.
async fn spawn_greet_then_read(
    greeting: Payload,
) -> (SocketAddr, mpsc::UnboundedReceiver<Received>) {
    let listener = loopback_listener();
    let addr = listener.local_addr().unwrap();
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let sender = sender.clone();
            tokio::spawn(async move {
                greeting.write_to(&mut stream).await.unwrap();
                stream.shutdown().await.unwrap();
                let received = read_digest(&mut stream).await.unwrap();
                let _ = sender.send(received);
            });
        }
    });
    (addr, receiver)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_half_close_then_reply_intact() {
    for size in SIZES {
        let request = Payload::new(0x5eed_0001, size);
        let reply = Payload::new(0x5eed_0002, size);
        let (upstream, mut received) = spawn_reply_after_request(reply).await;
        let mut proxy = start(&one_route(upstream, "")).await;

        let mut client = connect(proxy.addr(0)).await;
        within_guard("request", request.write_to(&mut client))
            .await
            .unwrap();
        client.shutdown().await.unwrap();
        let got_reply = within_guard("reply", read_digest(&mut client))
            .await
            .unwrap();

        let got_request = within_guard("upstream result", received.recv())
            .await
            .unwrap();
        assert_eq!(
            got_request,
            (size, request.digest()),
            "request of {size} bytes"
        );
        assert_eq!(got_reply, (size, reply.digest()), "reply of {size} bytes");

        let report = proxy.next_report().await;
        assert_eq!(report.kind, "closed");
        assert_eq!(report.client_to_upstream, size);
        assert_eq!(report.upstream_to_client, size);
        assert_eq!(report.upstream_addr, Some(upstream));
        proxy.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_half_close_then_request_intact() {
    for size in SIZES {
        let greeting = Payload::new(0x5eed_0003, size);
        let request = Payload::new(0x5eed_0004, size);
        let (upstream, mut received) = spawn_greet_then_read(greeting).await;
        let mut proxy = start(&one_route(upstream, "")).await;

        // Read the whole greeting, including its end of stream, before sending anything.
        let mut client = connect(proxy.addr(0)).await;
        let got_greeting = within_guard("greeting", read_digest(&mut client))
            .await
            .unwrap();
        assert_eq!(
            got_greeting,
            (size, greeting.digest()),
            "greeting of {size} bytes"
        );

        within_guard("request", request.write_to(&mut client))
            .await
            .unwrap();
        client.shutdown().await.unwrap();
        let got_request = within_guard("upstream result", received.recv())
            .await
            .unwrap();
        assert_eq!(
            got_request,
            (size, request.digest()),
            "request of {size} bytes"
        );

        let report = proxy.next_report().await;
        assert_eq!(report.kind, "closed");
        assert_eq!(report.upstream_to_client, size);
        assert_eq!(report.client_to_upstream, size);
        proxy.stop().await.unwrap();
    }
}

#[tokio::test]
async fn refused_upstream_closes_client() {
    let upstream = closed_port().await;
    // A long connect_timeout shows the close comes from the refusal, not from the timeout.
    let mut proxy = start(&one_route(upstream, "connect_timeout = \"1h\"")).await;

    let mut client = connect(proxy.addr(0)).await;
    let mut buffer = [0u8; 16];
    let read = within_guard("client read", client.read(&mut buffer)).await;
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "expected end of stream, got {read:?}"
    );

    let report = proxy.next_report().await;
    assert_eq!(report.kind, "upstream_refused");
    assert!(
        report.outcome.starts_with("upstream refused"),
        "{}",
        report.outcome
    );
    assert!(
        report.outcome.contains(&upstream.to_string()),
        "{}",
        report.outcome
    );
    assert_eq!(report.upstream_addr, None);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn idle_connection_is_closed() {
    let upstream = spawn_silent().await;
    let mut proxy = start(&one_route(upstream, "idle_timeout = \"200ms\"")).await;

    let mut client = connect(proxy.addr(0)).await;
    let mut buffer = [0u8; 16];
    let read = within_guard("client read", client.read(&mut buffer)).await;
    assert!(
        matches!(read, Ok(0)),
        "expected end of stream, got {read:?}"
    );

    let report = proxy.next_report().await;
    assert_eq!(report.kind, "idle_timeout");
    assert!(
        report.outcome.contains("idle timeout"),
        "{}",
        report.outcome
    );
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn traffic_keeps_connection_open_past_idle_timeout() {
    let upstream = spawn_echo().await;
    // Messages every 20 ms for 1.5 s against a 1 s idle timeout: the connection outlives the
    // timeout only if each message re-arms it.
    let mut proxy = start(&one_route(upstream, "idle_timeout = \"1s\"")).await;

    let mut client = connect(proxy.addr(0)).await;
    let mut echoed = [0u8; 1];
    for round in 0..75u8 {
        client.write_all(&[round]).await.unwrap();
        within_guard("echo", client.read_exact(&mut echoed))
            .await
            .unwrap();
        assert_eq!(echoed[0], round);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.shutdown().await.unwrap();
    let (rest, _) = within_guard("end of stream", read_digest(&mut client))
        .await
        .unwrap();
    assert_eq!(rest, 0);

    let report = proxy.next_report().await;
    assert_eq!(report.kind, "closed");
    assert_eq!(report.client_to_upstream, 75);
    proxy.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_clients_intact() {
    const CLIENTS: u64 = 1000;
    const SIZE: u64 = 16 * 1024;
    let upstream = spawn_echo().await;
    let toml = format!("max_connections = 2000\n{}", one_route(upstream, ""));
    let mut proxy = start(&toml).await;
    let addr = proxy.addr(0);

    let mut clients = tokio::task::JoinSet::new();
    for seed in 0..CLIENTS {
        clients.spawn(async move {
            let payload = Payload::new(0xc11e_0000 + seed, SIZE);
            let client = connect(addr).await;
            let (mut reader, mut writer) = client.into_split();
            let send = async {
                payload.write_to(&mut writer).await?;
                writer.shutdown().await
            };
            let (sent, echoed) = tokio::join!(send, read_digest(&mut reader));
            sent.unwrap();
            (echoed.unwrap(), (SIZE, payload.digest()))
        });
    }

    let mut finished = 0;
    while let Some(result) = within_guard("clients", clients.join_next()).await {
        let (echoed, expected) = result.unwrap();
        assert_eq!(echoed, expected);
        finished += 1;
    }
    assert_eq!(finished, CLIENTS);

    for _ in 0..CLIENTS {
        let report = proxy.next_report().await;
        assert_eq!(report.kind, "closed", "{}", report.outcome);
        assert_eq!(report.client_to_upstream, SIZE);
        assert_eq!(report.upstream_to_client, SIZE);
    }
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn vsock_route_relays_through_tcp_stand_in() {
    let upstream = spawn_echo().await;
    let toml = format!("[[route]]\nlisten = \"vsock:8000\"\nupstream = \"{upstream}\"\n");
    let mut proxy = start(&toml).await;

    let mut client = connect(proxy.addr(0)).await;
    client.write_all(b"through vsock route").await.unwrap();
    client.shutdown().await.unwrap();
    let mut echoed = Vec::new();
    within_guard("echo", client.read_to_end(&mut echoed))
        .await
        .unwrap();
    assert_eq!(echoed, b"through vsock route");

    let report = proxy.next_report().await;
    assert_eq!(report.route, "route[0] (vsock:8000)");
    assert_eq!(report.kind, "closed");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn finished_connection_logs_one_line_without_payload() {
    let (logs, _guard) = capture_logs();
    let upstream = spawn_echo().await;
    let mut proxy = start(&one_route(upstream, "")).await;

    let mut client = connect(proxy.addr(0)).await;
    let client_addr = client.local_addr().unwrap();
    client.write_all(b"secret-payload-marker").await.unwrap();
    client.shutdown().await.unwrap();
    let mut echoed = Vec::new();
    within_guard("echo", client.read_to_end(&mut echoed))
        .await
        .unwrap();
    proxy.next_report().await;
    proxy.stop().await.unwrap();

    let text = logs.contents();
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("connection finished"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line = lines[0];
    assert!(line.contains("route=route[0] (tcp:127.0.0.1:0)"), "{line}");
    assert!(line.contains(&format!("peer={client_addr}")), "{line}");
    assert!(
        line.contains(&format!("upstream_addr={upstream}")),
        "{line}"
    );
    assert!(line.contains("bytes_client_to_upstream=21"), "{line}");
    assert!(line.contains("bytes_upstream_to_client=21"), "{line}");
    assert!(line.contains("duration_ms="), "{line}");
    assert!(line.contains("outcome=closed"), "{line}");
    assert!(
        !text.contains("secret-payload-marker"),
        "payload leaked into logs: {text}"
    );
}

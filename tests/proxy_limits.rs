//! Connection limits: a route's `max_connections` and the proxy-wide cap. Clients over a limit
//! are accepted and closed at once, so they never reach the upstream.

mod proxy_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proxy_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// An upstream that counts concurrent connections, greets each with one byte and holds it
/// open until released.
struct GateUpstream {
    addr: SocketAddr,
    active: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    release: watch::Sender<bool>,
}

async fn spawn_gate() -> GateUpstream {
    let listener = loopback_listener();
    let addr = listener.local_addr().unwrap();
    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (release, released) = watch::channel(false);

    let (task_active, task_peak) = (Arc::clone(&active), Arc::clone(&peak));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let now = task_active.fetch_add(1, Ordering::SeqCst) + 1;
            task_peak.fetch_max(now, Ordering::SeqCst);
            let (active, mut released) = (Arc::clone(&task_active), released.clone());
            tokio::spawn(async move {
                let _ = stream.write_all(b"A").await;
                let _ = released.wait_for(|released| *released).await;
                active.fetch_sub(1, Ordering::SeqCst);
                drop(stream);
            });
        }
    });

    GateUpstream {
        addr,
        active,
        peak,
        release,
    }
}

/// Connects and reads the upstream's greeting. Returns the stream if the proxy admitted the
/// client, or `None` if the proxy closed it.
async fn admitted(addr: SocketAddr) -> Option<TcpStream> {
    let mut client = connect(addr).await;
    let mut greeting = [0u8; 1];
    match within_guard("greeting", client.read(&mut greeting)).await {
        Ok(1) => Some(client),
        Ok(_) | Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_limit_caps_concurrent_connections() {
    let gate = spawn_gate().await;
    let mut proxy = start(&one_route(gate.addr, "max_connections = 10")).await;
    let addr = proxy.addr(0);

    // 50 clients at once; each is held open by the upstream until the release below.
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..50 {
        clients.spawn(admitted(addr));
    }
    let mut served = Vec::new();
    let mut rejected = 0;
    while let Some(result) = within_guard("clients", clients.join_next()).await {
        match result.unwrap() {
            Some(stream) => served.push(stream),
            None => rejected += 1,
        }
    }
    assert_eq!(served.len(), 10);
    assert_eq!(rejected, 40);
    assert_eq!(gate.peak.load(Ordering::SeqCst), 10);
    assert_eq!(gate.active.load(Ordering::SeqCst), 10);

    // Once the held connections end, their slots serve new clients.
    gate.release.send_replace(true);
    drop(served);
    for _ in 0..10 {
        assert_eq!(proxy.next_report().await.kind, "closed");
    }
    assert!(
        admitted(addr).await.is_some(),
        "a freed slot was not reused"
    );
    assert_eq!(gate.peak.load(Ordering::SeqCst), 10);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn proxy_limit_spans_routes() {
    let gate = spawn_gate().await;
    let toml = format!(
        "max_connections = 2\n{}{}",
        one_route(gate.addr, ""),
        one_route(gate.addr, "")
    );
    let mut proxy = start(&toml).await;

    let first = admitted(proxy.addr(0)).await;
    let second = admitted(proxy.addr(1)).await;
    assert!(first.is_some());
    assert!(second.is_some());
    assert!(
        admitted(proxy.addr(0)).await.is_none(),
        "route 0 went over the proxy limit"
    );
    assert!(
        admitted(proxy.addr(1)).await.is_none(),
        "route 1 went over the proxy limit"
    );
    assert_eq!(gate.peak.load(Ordering::SeqCst), 2);

    gate.release.send_replace(true);
    drop((first, second));
    proxy.next_report().await;
    proxy.next_report().await;
    proxy.stop().await.unwrap();
}

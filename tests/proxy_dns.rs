//! Upstream name resolution through the resolver seam: refresh, failures, and trying each
//! address. The scripted resolver returns loopback servers the test starts.

mod proxy_support;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use enclave_broker::proxy::{ResolveFuture, Resolver};
use proxy_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Script = dyn Fn(usize) -> io::Result<Vec<SocketAddr>> + Send + Sync;

/// A resolver whose result for the n-th lookup (from 0) comes from a script.
#[derive(Clone)]
struct ScriptedResolver {
    lookups: Arc<AtomicUsize>,
    script: Arc<Script>,
}

impl ScriptedResolver {
    fn new(script: impl Fn(usize) -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static) -> Self {
        ScriptedResolver {
            lookups: Arc::new(AtomicUsize::new(0)),
            script: Arc::new(script),
        }
    }

    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

impl Resolver for ScriptedResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        assert_eq!((host, port), ("upstream.test", 443), "unexpected lookup");
        let n = self.lookups.fetch_add(1, Ordering::SeqCst);
        let answer = (self.script)(n);
        Box::pin(async move { answer })
    }
}

fn lookup_failure() -> io::Error {
    io::Error::other("simulated resolver failure")
}

/// Builds a configuration with one route to `upstream.test:443` and a 1 ms refresh interval, so
/// every connection after the first finds the cached addresses due for a refresh.
fn config(extra: &str) -> String {
    format!(
        "dns_refresh_interval = \"1ms\"\n[[route]]\nlisten = \"tcp:127.0.0.1:0\"\nupstream = \"upstream.test:443\"\n{extra}"
    )
}

async fn start_resolving(resolver: ScriptedResolver, toml: &str) -> RunningProxy {
    let (proxy, reports) = observed_proxy();
    start_with(proxy.with_resolver(resolver), reports, toml).await
}

/// Sends `message` through the proxy and returns the echo.
async fn echo_through(addr: SocketAddr, message: &[u8]) -> Vec<u8> {
    let mut client = connect(addr).await;
    client.write_all(message).await.unwrap();
    client.shutdown().await.unwrap();
    let mut echoed = Vec::new();
    within_guard("echo", client.read_to_end(&mut echoed))
        .await
        .unwrap();
    echoed
}

#[tokio::test]
async fn keeps_last_good_addresses_when_refresh_fails() {
    let (logs, _guard) = capture_logs();
    let echo = spawn_echo().await;
    let resolver = ScriptedResolver::new(move |n| {
        if n == 0 {
            Ok(vec![echo])
        } else {
            Err(lookup_failure())
        }
    });
    let mut proxy = start_resolving(resolver.clone(), &config("")).await;

    // Connect until at least two refreshes have failed; the refresh runs in the background,
    // so the second failure starts only after the first has finished.
    let mut connections = 0;
    while resolver.lookups() < 3 {
        assert!(
            connections < 10_000,
            "no refresh after {connections} connections"
        );
        assert_eq!(echo_through(proxy.addr(0), b"ping").await, b"ping");
        let report = proxy.next_report().await;
        assert_eq!(report.kind, "closed", "{}", report.outcome);
        assert_eq!(report.upstream_addr, Some(echo));
        connections += 1;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }

    // One more connection after the failures still reaches the last good address.
    assert_eq!(echo_through(proxy.addr(0), b"after").await, b"after");
    assert_eq!(proxy.next_report().await.upstream_addr, Some(echo));
    proxy.stop().await.unwrap();

    let text = logs.contents();
    assert!(text.contains("WARN"), "{text}");
    assert!(text.contains("keeping the last good addresses"), "{text}");
    assert!(text.contains("simulated resolver failure"), "{text}");
}

#[tokio::test]
async fn refresh_moves_to_new_addresses() {
    let old = spawn_echo().await;
    let new = spawn_echo().await;
    let resolver = ScriptedResolver::new(move |n| Ok(vec![if n == 0 { old } else { new }]));
    let mut proxy = start_resolving(resolver, &config("")).await;

    let mut connections = 0;
    loop {
        assert!(connections < 10_000, "addresses never refreshed");
        assert_eq!(echo_through(proxy.addr(0), b"ping").await, b"ping");
        let report = proxy.next_report().await;
        if report.upstream_addr == Some(new) {
            break;
        }
        assert_eq!(report.upstream_addr, Some(old));
        connections += 1;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn unresolvable_upstream_closes_client() {
    let resolver = ScriptedResolver::new(|_| Err(lookup_failure()));
    let mut proxy = start_resolving(resolver, &config("")).await;

    let mut client = connect(proxy.addr(0)).await;
    let mut buffer = [0u8; 8];
    let read = within_guard("client read", client.read(&mut buffer)).await;
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "expected end of stream, got {read:?}"
    );

    let report = proxy.next_report().await;
    assert_eq!(report.kind, "upstream_unresolved");
    assert!(
        report.outcome.contains("simulated resolver failure"),
        "{}",
        report.outcome
    );
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn empty_answer_is_a_resolution_failure() {
    let resolver = ScriptedResolver::new(|_| Ok(vec![]));
    let mut proxy = start_resolving(resolver, &config("")).await;

    drop(connect(proxy.addr(0)).await);
    let report = proxy.next_report().await;
    assert_eq!(report.kind, "upstream_unresolved");
    assert!(
        report.outcome.contains("no addresses"),
        "{}",
        report.outcome
    );
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn tries_each_address_in_turn() {
    let refused = closed_port().await;
    let echo = spawn_echo().await;
    let resolver = ScriptedResolver::new(move |_| Ok(vec![refused, echo]));
    let mut proxy = start_resolving(resolver, &config("connect_timeout = \"1h\"\n")).await;

    assert_eq!(
        echo_through(proxy.addr(0), b"second address").await,
        b"second address"
    );
    let report = proxy.next_report().await;
    assert_eq!(report.kind, "closed");
    assert_eq!(report.upstream_addr, Some(echo));
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn every_address_refused_lists_each() {
    let first = closed_port().await;
    let second = closed_port().await;
    let resolver = ScriptedResolver::new(move |_| Ok(vec![first, second]));
    let mut proxy = start_resolving(resolver, &config("")).await;

    drop(connect(proxy.addr(0)).await);
    let report = proxy.next_report().await;
    assert_eq!(report.kind, "upstream_refused");
    assert!(
        report.outcome.contains(&first.to_string()),
        "{}",
        report.outcome
    );
    assert!(
        report.outcome.contains(&second.to_string()),
        "{}",
        report.outcome
    );
    proxy.stop().await.unwrap();
}

/// Returns a free loopback port: bound once, then released for the proxy to bind.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn resolved_own_listener_spellings_close_client() {
    for spelling in [
        "[::ffff:127.0.0.1]",
        "0.0.0.0",
        "[::ffff:7f00:1]",
        "127.0.0.1",
    ] {
        let port = free_port();
        let toml = format!(
            "[[route]]\nlisten = \"tcp:127.0.0.1:{port}\"\nupstream = \"upstream.test:443\"\n"
        );
        let own: SocketAddr = format!("{spelling}:{port}").parse().unwrap();
        let resolver = ScriptedResolver::new(move |_| Ok(vec![own]));
        let mut proxy = start_resolving(resolver, &toml).await;

        let mut client = connect(proxy.addr(0)).await;
        let mut buffer = [0u8; 8];
        let read = within_guard("client read", client.read(&mut buffer)).await;
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "expected end of stream for {own}, got {read:?}"
        );

        let report = proxy.next_report().await;
        assert_eq!(report.kind, "upstream_is_own_listener", "{own}");
        assert_eq!(report.upstream_addr, None, "{own}");
        assert!(
            report.outcome.contains(&own.to_string()),
            "{}",
            report.outcome
        );
        // The refused connection is the only one: nothing looped back into the proxy.
        let (result, later) = proxy.stop_and_collect().await;
        result.unwrap();
        assert!(later.is_empty(), "{own}: {later:?}");
    }
}

#[tokio::test]
async fn own_listener_address_skipped_for_next_address() {
    let (logs, _guard) = capture_logs();
    let echo = spawn_echo().await;
    let port = free_port();
    let toml =
        format!("[[route]]\nlisten = \"tcp:127.0.0.1:{port}\"\nupstream = \"upstream.test:443\"\n");
    let own: SocketAddr = format!("[::ffff:127.0.0.1]:{port}").parse().unwrap();
    let resolver = ScriptedResolver::new(move |_| Ok(vec![own, echo]));
    let mut proxy = start_resolving(resolver, &toml).await;

    assert_eq!(echo_through(proxy.addr(0), b"ping").await, b"ping");
    let report = proxy.next_report().await;
    assert_eq!(report.kind, "closed", "{}", report.outcome);
    assert_eq!(report.upstream_addr, Some(echo));
    proxy.stop().await.unwrap();

    let text = logs.contents();
    assert!(text.contains("WARN"), "{text}");
    assert!(
        text.contains("upstream address is one of the proxy's own listeners"),
        "{text}"
    );
}

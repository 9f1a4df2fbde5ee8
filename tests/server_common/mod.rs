//! Helpers shared by the attestation endpoint tests: an in-process server on an ephemeral
//! loopback port, a raw HTTP/1.1 client that sends the request target byte for byte, and
//! verification with the simulator's root.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use enclave_broker::attestation::sim::SimulatedEnclave;
use enclave_broker::attestation::source::{Attester, SimAttester};
use enclave_broker::attestation::verify::{
    TrustRoot, VerifiedDocument, VerifyOptions, inspect, verify,
};
use enclave_broker::server::{Limits, Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const REPORT: &str = "/api/v1/attestation/report";

/// A server running on 127.0.0.1 with an ephemeral port. Dropping it signals shutdown.
pub struct TestServer {
    pub addr: SocketAddr,
    pub root: Option<TrustRoot>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _sim_dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Starts a server backed by a fresh simulator.
    pub async fn sim() -> Self {
        Self::sim_with_limits(Limits::default()).await
    }

    pub async fn sim_with_limits(limits: Limits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sim_dir = dir.path().join("sim");
        let enclave = SimulatedEnclave::init(&sim_dir, &BTreeMap::new()).unwrap();
        let root = enclave.trust_root().unwrap();
        let attester = Arc::new(SimAttester::new(enclave, 4));
        let mut server = Self::start(attester, limits).await;
        server.root = Some(root);
        server._sim_dir = Some(dir);
        server
    }

    /// Starts a server backed by any attester.
    pub async fn start(attester: Arc<dyn Attester>, limits: Limits) -> Self {
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
        config.limits = limits;
        Self::start_with_config(attester, &config).await
    }

    /// Starts a server with `config`, which tests keep on a loopback address.
    pub async fn start_with_config(attester: Arc<dyn Attester>, config: &ServerConfig) -> Self {
        assert!(
            config.listen.ip().is_loopback(),
            "tests listen on loopback only"
        );
        let server = Server::bind(config).await.unwrap();
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(attester, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            root: None,
            stop: Some(stop),
            task: Some(task),
            _sim_dir: None,
        }
    }

    /// Signals shutdown and waits until the server has returned.
    pub async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}{REPORT}", self.addr)
    }

    /// Sends `GET {REPORT}?{query}` and returns the response.
    pub async fn report(&self, query: &str) -> RawResponse {
        get(self.addr, &format!("{REPORT}?{query}")).await
    }

    /// Verifies a document from this server's simulator at the document's own time.
    pub fn verify(&self, bytes: &[u8]) -> VerifiedDocument {
        verify_with_root(bytes, self.root.clone().expect("a simulator-backed server"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Verifies `bytes` with `root` at the document's own timestamp, so no test reads the clock.
pub fn verify_with_root(bytes: &[u8], root: TrustRoot) -> VerifiedDocument {
    let timestamp = inspect(bytes).unwrap().timestamp_ms();
    let mut options = VerifyOptions::new(timestamp);
    options.trust_roots = vec![root];
    verify(bytes, &options).unwrap()
}

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Returns the `error` field of a JSON error body.
    pub fn error(&self) -> String {
        let json: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(&self.body)));
        json["error"].as_str().unwrap().to_owned()
    }
}

/// Sends `GET target` with `Connection: close`; the target is written as given.
pub async fn get(addr: SocketAddr, target: &str) -> RawResponse {
    request(addr, "GET", target).await
}

pub async fn request(addr: SocketAddr, method: &str, target: &str) -> RawResponse {
    let head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    send_raw(addr, head.as_bytes()).await
}

/// Writes `bytes` to a new connection and parses the response read until the server closes.
pub async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut received = Vec::new();
    stream.read_to_end(&mut received).await.unwrap();
    parse_response(&received)
}

fn parse_response(received: &[u8]) -> RawResponse {
    let split = received
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(received)));
    let head = std::str::from_utf8(&received[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let body = received[split + 4..].to_vec();
    RawResponse {
        status,
        headers,
        body,
    }
}

/// Sends `GET target` with the given `Host` header value, or none, and `Connection: close`.
pub async fn get_with_host(addr: SocketAddr, target: &str, host: Option<&str>) -> RawResponse {
    let host_line = host.map_or(String::new(), |host| format!("Host: {host}\r\n"));
    let head = format!("GET {target} HTTP/1.1\r\n{host_line}Connection: close\r\n\r\n");
    send_raw(addr, head.as_bytes()).await
}

//! Helpers for the proxy tests: loopback-only binders and upstreams, payload streams checked by
//! SHA-256, and a proxy started in the background with its connection reports.
//!
//! Every socket here is on 127.0.0.1. vsock routes are served on loopback TCP by
//! [`LoopbackBinder`] or fail through [`NoVsockBinder`]; no test opens an `AF_VSOCK` socket.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::digest;
use enclave_broker::proxy::{
    Binder, BoundProxy, Endpoint, ListenAddr, Listener, Proxy, ProxyConfig, ProxyError,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Bound on any single wait in a test, so a broken proxy fails the test instead of hanging it.
/// It is not a speed requirement: healthy runs finish far sooner.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// Awaits `future`, failing the test with `what` if it has not finished within [`HANG_GUARD`].
pub async fn within_guard<F: std::future::Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(HANG_GUARD, future).await {
        Ok(output) => output,
        Err(_) => panic!("{what} did not finish within {HANG_GUARD:?}"),
    }
}

/// Binds TCP routes as configured (tests only configure 127.0.0.1) and serves vsock routes on a
/// free 127.0.0.1 port instead.
pub struct LoopbackBinder;

impl Binder for LoopbackBinder {
    fn bind(&self, listen: &ListenAddr) -> io::Result<Listener> {
        match listen {
            ListenAddr::Tcp(addr) => {
                assert!(addr.ip().is_loopback(), "tests listen on loopback only");
                Listener::bind_tcp(*addr)
            }
            ListenAddr::Vsock { .. } => Listener::bind_tcp("127.0.0.1:0".parse().unwrap()),
        }
    }
}

/// Fails every vsock route the way a host without `AF_VSOCK` support does.
pub struct NoVsockBinder;

impl Binder for NoVsockBinder {
    fn bind(&self, listen: &ListenAddr) -> io::Result<Listener> {
        match listen {
            ListenAddr::Tcp(_) => LoopbackBinder.bind(listen),
            ListenAddr::Vsock { .. } => Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "address family not supported by protocol (simulated)",
            )),
        }
    }
}

/// What a test keeps of a connection report.
#[derive(Debug, Clone)]
pub struct Seen {
    pub route: String,
    pub kind: &'static str,
    pub outcome: String,
    pub upstream_addr: Option<SocketAddr>,
    pub client_to_upstream: u64,
    pub upstream_to_client: u64,
}

/// A proxy serving in a background task.
pub struct RunningProxy {
    pub addrs: Vec<SocketAddr>,
    pub reports: mpsc::UnboundedReceiver<Seen>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ProxyError>>,
}

impl RunningProxy {
    /// Returns the TCP address of route `index`.
    pub fn addr(&self, index: usize) -> SocketAddr {
        self.addrs[index]
    }

    /// Sends the shutdown signal; the proxy then drains.
    pub fn signal_shutdown(&mut self) {
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(());
        }
    }

    /// Signals shutdown if not done yet and waits for `serve` to return.
    pub async fn stop(mut self) -> Result<(), ProxyError> {
        self.signal_shutdown();
        within_guard("proxy shutdown", self.task).await.unwrap()
    }

    /// Signals shutdown if not done yet, waits for `serve` to return, and collects the reports
    /// not yet read. Every connection has ended once `serve` returns, so none is missing.
    pub async fn stop_and_collect(mut self) -> (Result<(), ProxyError>, Vec<Seen>) {
        self.signal_shutdown();
        let result = within_guard("proxy shutdown", self.task).await.unwrap();
        let mut reports = Vec::new();
        while let Ok(report) = self.reports.try_recv() {
            reports.push(report);
        }
        (result, reports)
    }

    /// Waits for the next connection report.
    pub async fn next_report(&mut self) -> Seen {
        within_guard("connection report", self.reports.recv())
            .await
            .expect("the proxy dropped its observer")
    }
}

/// Creates a [`Proxy`] with the loopback binder and an observer feeding the returned channel.
pub fn observed_proxy() -> (Proxy, mpsc::UnboundedReceiver<Seen>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let proxy = Proxy::new()
        .with_binder(LoopbackBinder)
        .with_connection_observer(move |report| {
            let _ = sender.send(Seen {
                route: report.route.clone(),
                kind: report.outcome.kind(),
                outcome: report.outcome.to_string(),
                upstream_addr: report.upstream_addr,
                client_to_upstream: report.bytes_client_to_upstream,
                upstream_to_client: report.bytes_upstream_to_client,
            });
        });
    (proxy, receiver)
}

/// Parses `toml`, binds it with `proxy` and serves it in a background task.
pub async fn start_with(
    proxy: Proxy,
    reports: mpsc::UnboundedReceiver<Seen>,
    toml: &str,
) -> RunningProxy {
    let config = ProxyConfig::from_toml_str(toml).unwrap();
    let bound: BoundProxy = proxy.bind(&config).await.unwrap();
    let addrs = bound
        .local_addrs()
        .into_iter()
        .map(|(_, addr)| match addr {
            Endpoint::Tcp(addr) => addr,
            Endpoint::Vsock { .. } => panic!("tests serve every route on TCP"),
        })
        .collect();

    let (shutdown, shutdown_rx) = oneshot::channel();
    let task = tokio::spawn(bound.serve(async move {
        let _ = shutdown_rx.await;
    }));
    RunningProxy {
        addrs,
        reports,
        shutdown: Some(shutdown),
        task,
    }
}

/// Starts an observed proxy for `toml` on loopback.
pub async fn start(toml: &str) -> RunningProxy {
    let (proxy, reports) = observed_proxy();
    start_with(proxy, reports, toml).await
}

/// Builds a configuration with one route from a free loopback port to `upstream`, plus `extra` lines
/// in the route table.
pub fn one_route(upstream: SocketAddr, extra: &str) -> String {
    format!("[[route]]\nlisten = \"tcp:127.0.0.1:0\"\nupstream = \"{upstream}\"\n{extra}\n")
}

/// Binds a listener on a free 127.0.0.1 port with a backlog of 1024. Tokio's `TcpListener::bind`
/// uses 128, which a burst of a thousand clients overflows.
pub fn loopback_listener() -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket.listen(1024).unwrap()
}

/// Returns a loopback address nothing listens on, so connecting to it is refused.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// Starts an upstream that echoes every byte and half-closes after the client's end of stream.
pub async fn spawn_echo() -> SocketAddr {
    let listener = loopback_listener();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let (mut reader, mut writer) = stream.into_split();
                if tokio::io::copy(&mut reader, &mut writer).await.is_ok() {
                    let _ = writer.shutdown().await;
                }
            });
        }
    });
    addr
}

/// Starts an upstream that accepts connections and never reads or writes, holding each until
/// the client goes away.
pub async fn spawn_silent() -> SocketAddr {
    let listener = loopback_listener();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// A deterministic byte stream of `len` bytes from a seed (xorshift64), written in chunks so
/// even 64 MiB never sits in memory whole.
#[derive(Debug, Clone, Copy)]
pub struct Payload {
    pub seed: u64,
    pub len: u64,
}

const CHUNK: usize = 64 * 1024;

impl Payload {
    pub fn new(seed: u64, len: u64) -> Self {
        Payload { seed, len }
    }

    fn generator(self) -> Generator {
        Generator {
            state: self.seed | 1,
            left: self.len,
            chunk: vec![0; CHUNK],
        }
    }

    /// SHA-256 of the whole stream.
    pub fn digest(self) -> Vec<u8> {
        let mut context = digest::Context::new(&digest::SHA256);
        let mut generator = self.generator();
        while let Some(chunk) = generator.next_chunk() {
            context.update(chunk);
        }
        context.finish().as_ref().to_vec()
    }

    /// Returns the whole stream in memory, for payloads small enough to hold.
    pub fn to_vec(self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.len as usize);
        let mut generator = self.generator();
        while let Some(chunk) = generator.next_chunk() {
            bytes.extend_from_slice(chunk);
        }
        bytes
    }

    /// Writes the stream to `writer`.
    pub async fn write_to<W: AsyncWrite + Unpin>(self, writer: &mut W) -> io::Result<()> {
        let mut generator = self.generator();
        while let Some(chunk) = generator.next_chunk() {
            writer.write_all(chunk).await?;
        }
        Ok(())
    }
}

struct Generator {
    state: u64,
    left: u64,
    chunk: Vec<u8>,
}

impl Generator {
    fn next_chunk(&mut self) -> Option<&[u8]> {
        if self.left == 0 {
            return None;
        }
        for word in self.chunk.chunks_exact_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            word.copy_from_slice(&self.state.to_le_bytes());
        }
        let take = self.left.min(CHUNK as u64) as usize;
        self.left -= take as u64;
        Some(&self.chunk[..take])
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, bytes).as_ref().to_vec()
}

/// Reads `reader` to end of stream; returns the byte count and SHA-256.
pub async fn read_digest<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<(u64, Vec<u8>)> {
    let mut context = digest::Context::new(&digest::SHA256);
    let mut buffer = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let read = reader.read(&mut buffer).await?;
        if read == 0 {
            return Ok((total, context.finish().as_ref().to_vec()));
        }
        context.update(&buffer[..read]);
        total += read as u64;
    }
}

/// Connects a client to the proxy.
pub async fn connect(addr: SocketAddr) -> TcpStream {
    within_guard("client connect", TcpStream::connect(addr))
        .await
        .unwrap()
}

/// A log sink for `tracing_subscriber::fmt`, readable by the test.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Installs a subscriber writing every event at info and above to the returned buffer, for
/// the current thread. Tests using it run on a current-thread runtime, so the proxy's tasks
/// log through it as well.
pub fn capture_logs() -> (LogBuffer, tracing::subscriber::DefaultGuard) {
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (buffer, guard)
}

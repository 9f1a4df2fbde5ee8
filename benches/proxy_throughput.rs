//! Throughput and connect latency through the proxy, against a direct loopback connection and,
//! when `socat` is installed, against socat as the relay. All numbers come from one run on one
//! machine, so only the ratios between them are meaningful.
//!
//! Run with `cargo bench --bench proxy_throughput`. Every socket is on 127.0.0.1.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use enclave_broker::proxy::{Endpoint, Proxy, ProxyConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes sent in each throughput sample.
const TRANSFER_BYTES: usize = 512 * 1024 * 1024;
/// Throughput samples per path; the best is reported.
const TRANSFER_SAMPLES: usize = 3;
/// Connections per path for the latency figures.
const CONNECTIONS: usize = 2000;

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it,
    // and a test run should not spend time measuring.
    if !std::env::args().any(|argument| argument == "--bench") {
        println!("proxy_throughput: measures only under `cargo bench`");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime for the benchmark");
    runtime.block_on(run());
}

async fn run() {
    let sink = spawn_sink().await;
    let echo = spawn_echo().await;
    let proxy_to_sink = start_proxy(sink).await;
    let proxy_to_echo = start_proxy(echo).await;
    let socat = Socat::start(sink, echo);

    println!(
        "throughput, {} MiB per sample, best of {TRANSFER_SAMPLES}:",
        TRANSFER_BYTES >> 20
    );
    let direct = throughput(sink).await;
    report_rate("direct", direct, direct);
    report_rate("proxy", throughput(proxy_to_sink).await, direct);
    if let Some(socat) = &socat {
        report_rate("socat", throughput(socat.to_sink).await, direct);
    }

    println!("connect + 1-byte round trip, {CONNECTIONS} sequential connections:");
    let direct = latencies(echo).await;
    report_latency("direct", &direct, &direct);
    report_latency("proxy", &latencies(proxy_to_echo).await, &direct);
    if let Some(socat) = &socat {
        report_latency("socat", &latencies(socat.to_echo).await, &direct);
    }
}

/// Returns the best rate, in MiB/s, of sending `TRANSFER_BYTES` to `addr` and reading the
/// sink's 8-byte count back after the half-close.
async fn throughput(addr: SocketAddr) -> f64 {
    let chunk = vec![0x5a_u8; 256 * 1024];
    let mut best = 0.0_f64;
    for _ in 0..TRANSFER_SAMPLES {
        let started = Instant::now();
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        for _ in 0..TRANSFER_BYTES / chunk.len() {
            stream.write_all(&chunk).await.expect("write");
        }
        stream.shutdown().await.expect("half-close");
        let received = stream.read_u64().await.expect("count from the sink");
        assert_eq!(
            received, TRANSFER_BYTES as u64,
            "the sink received a different count"
        );
        let rate = TRANSFER_BYTES as f64 / (1024.0 * 1024.0) / started.elapsed().as_secs_f64();
        best = best.max(rate);
    }
    best
}

/// Returns the sorted durations of connecting to `addr`, sending one byte and reading its echo.
async fn latencies(addr: SocketAddr) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let started = Instant::now();
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        stream.write_all(b"x").await.expect("write");
        let mut echoed = [0u8; 1];
        stream.read_exact(&mut echoed).await.expect("echo");
        samples.push(started.elapsed());
    }
    samples.sort();
    samples
}

fn report_rate(path: &str, rate: f64, direct: f64) {
    println!(
        "  {path:<7} {rate:>9.0} MiB/s   {:.2} x direct",
        rate / direct
    );
}

fn report_latency(path: &str, samples: &[Duration], direct: &[Duration]) {
    let median = |s: &[Duration]| s[s.len() / 2];
    let p99 = |s: &[Duration]| s[s.len() * 99 / 100];
    println!(
        "  {path:<7} median {:>7.1} us  p99 {:>7.1} us   median {:.2} x direct",
        median(samples).as_secs_f64() * 1e6,
        p99(samples).as_secs_f64() * 1e6,
        median(samples).as_secs_f64() / median(direct).as_secs_f64()
    );
}

/// Starts an upstream that discards everything and, at end of stream, sends the byte count.
async fn spawn_sink() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
    let addr = listener.local_addr().expect("sink address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 256 * 1024];
                let mut total = 0u64;
                loop {
                    match stream.read(&mut buffer).await {
                        Ok(0) => break,
                        Ok(read) => total += read as u64,
                        Err(_) => return,
                    }
                }
                let _ = stream.write_u64(total).await;
            });
        }
    });
    addr
}

/// Starts an upstream that echoes every byte.
async fn spawn_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("echo address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let (mut reader, mut writer) = stream.into_split();
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            });
        }
    });
    addr
}

/// Starts the proxy with one TCP route to `upstream` and returns its listening address.
async fn start_proxy(upstream: SocketAddr) -> SocketAddr {
    let toml = format!("[[route]]\nlisten = \"tcp:127.0.0.1:0\"\nupstream = \"{upstream}\"\n");
    let config = ProxyConfig::from_toml_str(&toml).expect("benchmark configuration");
    let bound = Proxy::new().bind(&config).await.expect("bind the proxy");
    let Some((_, Endpoint::Tcp(addr))) = bound.local_addrs().into_iter().next() else {
        panic!("the proxy has no TCP route");
    };
    tokio::spawn(bound.serve(std::future::pending()));
    addr
}

/// Pair of socat relays, to the sink and to the echo server, killed on drop.
struct Socat {
    to_sink: SocketAddr,
    to_echo: SocketAddr,
    children: Vec<Child>,
}

impl Socat {
    fn start(sink: SocketAddr, echo: SocketAddr) -> Option<Self> {
        let mut children = Vec::new();
        let mut relay = |upstream: SocketAddr| -> Option<SocketAddr> {
            let port = free_port();
            let child = Command::new("socat")
                .arg(format!(
                    "TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,nodelay"
                ))
                .arg(format!("TCP:{upstream},nodelay"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            children.push(child);
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().ok()?;
            wait_listening(addr).then_some(addr)
        };

        let to_sink = relay(sink);
        let to_echo = relay(echo);
        let socat = Socat {
            to_sink: to_sink?,
            to_echo: to_echo?,
            children,
        };
        Some(socat)
    }
}

impl Drop for Socat {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind for a free port");
    listener.local_addr().expect("free port").port()
}

/// Polls `addr` until something accepts, for up to five seconds.
fn wait_listening(addr: SocketAddr) -> bool {
    for _ in 0..500 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

//! Load and resource bounds, measured on 127.0.0.1 and printed (nothing asserted):
//!
//! - `attest-server` (simulator) under 200 concurrent keep-alive clients, 10,000 requests;
//! - `proxy` relaying 1,000 concurrent connections of 64 KiB each to an echo server;
//! - `verify` of 10,000 real documents in one process.
//!
//! For each: requests or connections that failed, and peak resident memory (VmHWM) of the
//! process under load, read from /proc. Run with `cargo bench --bench load`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BROKER: &str = env!("CARGO_BIN_EXE_enclave-broker");

const SERVER_CLIENTS: usize = 200;
const SERVER_REQUESTS: usize = 10_000;
const PROXY_CONNECTIONS: usize = 1_000;
const PROXY_BYTES: usize = 64 * 1024;
const VERIFY_DOCUMENTS: usize = 10_000;

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it.
    if !std::env::args().any(|argument| argument == "--bench") {
        println!("load: measures only under `cargo bench`");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime for the load run");
    let work = tempfile::tempdir().expect("a temporary folder");

    runtime.block_on(attest_server_load(work.path()));
    runtime.block_on(proxy_load(work.path()));
    verify_load();
}

/// Peak resident set size of a process in KiB (`VmHWM` in /proc/PID/status).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Current resident set size of this process in KiB (`VmRSS`).
fn own_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A child process that is killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the broker with `args` and waits for a stderr line containing `ready`; returns the
/// process and that line. The rest of stderr is drained in the background.
fn start_broker(args: &[&str], ready: &str) -> (Running, String) {
    let mut child = Command::new(BROKER)
        .args(args)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start enclave-broker");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let line = loop {
        let line = lines
            .next()
            .expect("enclave-broker exited before it was ready")
            .expect("stderr line");
        if line.contains(ready) {
            break line;
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Running(child), line)
}

async fn attest_server_load(work: &Path) {
    let sim = work.join("sim");
    let status = Command::new(BROKER)
        .args(["sim", "init", "--dir"])
        .arg(&sim)
        .stdout(Stdio::null())
        .status()
        .expect("sim init");
    assert!(status.success(), "sim init failed");
    let attester = format!("sim={}", sim.display());
    let (server, line) = start_broker(
        &[
            "attest-server",
            "--listen",
            "127.0.0.1:0",
            "--attester",
            &attester,
        ],
        "listening on",
    );
    let address = line
        .rsplit("listening on ")
        .next()
        .expect("an address after 'listening on'")
        .trim()
        .to_owned();

    let started = Instant::now();
    let per_client = SERVER_REQUESTS / SERVER_CLIENTS;
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..SERVER_CLIENTS {
        let address = address.clone();
        clients.spawn(async move { run_attest_client(&address, client, per_client).await });
    }
    let (mut ok, mut failed) = (0usize, 0usize);
    while let Some(result) = clients.join_next().await {
        let (client_ok, client_failed) = result.unwrap_or((0, per_client));
        ok += client_ok;
        failed += client_failed;
    }
    let elapsed = started.elapsed();
    println!(
        "attest-server: {SERVER_CLIENTS} clients, {} requests: {ok} ok, {failed} failed, \
         {:.0} requests/s, server peak RSS {} KiB",
        ok + failed,
        (ok + failed) as f64 / elapsed.as_secs_f64(),
        peak_rss_kib(server.0.id())
    );
}

/// Sends `count` requests on one keep-alive connection; returns (successes, failures).
async fn run_attest_client(address: &str, client: usize, count: usize) -> (usize, usize) {
    let Ok(stream) = TcpStream::connect(address).await else {
        return (0, count);
    };
    let Ok((mut sender, connection)) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return (0, count);
    };
    tokio::spawn(connection);

    let (mut ok, mut failed) = (0, 0);
    for request in 0..count {
        // A distinct nonce per request: 12 base64url characters, which decode to 9 bytes.
        let nonce = format!("{client:06}{request:05}x");
        let uri = format!("/api/v1/attestation/report?nonce={nonce}");
        let request = hyper::Request::get(uri)
            .header("host", address)
            .body(Empty::<Bytes>::new())
            .expect("a valid request");
        match sender.send_request(request).await {
            Ok(response) if response.status() == 200 => {
                let body = response.into_body().collect().await;
                if body.is_ok() { ok += 1 } else { failed += 1 }
            }
            Ok(response) => {
                let _ = response.into_body().collect().await;
                failed += 1;
            }
            Err(_) => failed += 1,
        }
    }
    (ok, failed)
}

async fn proxy_load(work: &Path) {
    // An echo server on 127.0.0.1 as the upstream, with a listen backlog large enough for
    // the burst (tokio's `TcpListener::bind` uses 128).
    let socket = tokio::net::TcpSocket::new_v4().expect("an IPv4 socket");
    socket
        .bind("127.0.0.1:0".parse().expect("a socket address"))
        .expect("bind echo");
    let echo: TcpListener = socket.listen(4096).expect("listen echo");
    let echo_address = echo.local_addr().expect("echo address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut reader, mut writer) = stream.split();
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            });
        }
    });

    let listen_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let config = work.join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "max_connections = 2048\n[[route]]\nlisten = \"tcp:127.0.0.1:{listen_port}\"\n\
             upstream = \"{echo_address}\"\n"
        ),
    )
    .expect("write proxy.toml");
    let config_arg = config.display().to_string();
    let (proxy, _) = start_broker(&["proxy", "--config", &config_arg], "listening");

    let started = Instant::now();
    let mut connections = tokio::task::JoinSet::new();
    for index in 0..PROXY_CONNECTIONS {
        connections.spawn(async move { echo_through(listen_port, index).await });
    }
    let (mut ok, mut failed) = (0usize, 0usize);
    while let Some(result) = connections.join_next().await {
        if matches!(result, Ok(true)) {
            ok += 1
        } else {
            failed += 1
        }
    }
    println!(
        "proxy: {PROXY_CONNECTIONS} concurrent connections of {} KiB: {ok} intact, {failed} \
         failed, {:.2} s, proxy peak RSS {} KiB",
        PROXY_BYTES / 1024,
        started.elapsed().as_secs_f64(),
        peak_rss_kib(proxy.0.id())
    );
}

/// Sends a pattern through the proxy, half-closes, and checks that it comes back intact.
async fn echo_through(port: u16, index: usize) -> bool {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let payload: Vec<u8> = (0..PROXY_BYTES).map(|i| (i + index) as u8).collect();
    let (mut reader, mut writer) = stream.into_split();
    let sent = payload.clone();
    let writing = tokio::spawn(async move {
        writer.write_all(&sent).await.is_ok() && writer.shutdown().await.is_ok()
    });
    let mut received = Vec::with_capacity(PROXY_BYTES);
    let read_ok = reader.read_to_end(&mut received).await.is_ok();
    let write_ok = writing.await.unwrap_or(false);
    read_ok && write_ok && received == payload
}

fn verify_load() {
    use enclave_broker::attestation::verify::{VerifyOptions, inspect, verify};

    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nitro");
    let mut documents: Vec<(Vec<u8>, u64)> = Vec::new();
    for entry in std::fs::read_dir(&fixtures).expect("fixtures folder") {
        let path = entry.expect("fixture entry").path();
        if path
            .extension()
            .is_some_and(|extension| extension == "cbor")
        {
            let bytes = std::fs::read(&path).expect("read fixture");
            let timestamp = inspect(&bytes).expect("a parsable document").timestamp_ms();
            documents.push((bytes, timestamp));
        }
    }

    let started = Instant::now();
    let (mut valid, mut invalid) = (0usize, 0usize);
    let mut rss_after_first_thousand = 0;
    for round in 0..VERIFY_DOCUMENTS {
        let (bytes, timestamp) = &documents[round % documents.len()];
        let mut options = VerifyOptions::new(*timestamp);
        options.require_enclave = false;
        if verify(bytes, &options).is_ok() {
            valid += 1
        } else {
            invalid += 1
        }
        if round == 999 {
            rss_after_first_thousand = own_rss_kib();
        }
    }
    println!(
        "verify: {VERIFY_DOCUMENTS} documents ({} distinct): {valid} valid, {invalid} invalid, \
         {:.0} documents/s, RSS after 1,000: {rss_after_first_thousand} KiB, after {VERIFY_DOCUMENTS}: {} KiB",
        documents.len(),
        VERIFY_DOCUMENTS as f64 / started.elapsed().as_secs_f64(),
        own_rss_kib()
    );
}

//! Throughput and latency of `attest-server` backed by the simulator, against the bare cost of
//! the signature every document needs, measured in the same run on the same cores.
//!
//! Run with `cargo bench --bench attest_server` (Linux only: CPU time comes from /proc). `BENCH_SECONDS` sets the length of each phase
//! (default 5), `BENCH_CLIENTS` the number of concurrent keep-alive clients (default 32) and
//! `BENCH_ROUNDS` how many times the signing and endpoint phases alternate (default 3).
//! The load generator is built in: each client owns one HTTP/1.1 connection to 127.0.0.1 and
//! sends its next request as soon as the previous response is read.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use enclave_broker::attestation::cose::{CoseSign1, ES384_PROTECTED_HEADER};
use enclave_broker::attestation::sim::SimulatedEnclave;
use enclave_broker::attestation::source::SimAttester;
use enclave_broker::server::{Limits, Server, ServerConfig};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it,
    // and a test run should not spend half a minute measuring.
    if !std::env::args().any(|argument| argument == "--bench") {
        println!("attest_server: measures only under `cargo bench`");
        return;
    }
    let seconds = Duration::from_secs(env_number("BENCH_SECONDS", 5));
    let clients = env_number("BENCH_CLIENTS", 32) as usize;
    let rounds = env_number("BENCH_ROUNDS", 3);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir().expect("temporary folder");
    let enclave = SimulatedEnclave::init(dir.path(), &BTreeMap::new()).expect("sim init");

    // The payload of a typical document, and a chain to sign it with.
    let document = enclave
        .attest(
            Some(&[0x30; 120]),
            Some(b"Hello World!\n"),
            Some(&[7; 16]),
            1_748_779_200_000,
        )
        .expect("sim document");
    let payload = Arc::new(
        CoseSign1::parse(&document)
            .expect("COSE")
            .payload()
            .to_vec(),
    );
    let signer = Arc::new(enclave.issue_signer(1_748_779_200_000).expect("signer"));
    let enclave = Arc::new(enclave);

    // The simulator issuing a new chain for every document, for reference.
    let fresh_chain_rate = per_second_on_threads(cores, seconds, {
        let enclave = Arc::clone(&enclave);
        move || {
            enclave
                .attest(Some(&[0x30; 120]), None, Some(&[7; 16]), 1_748_779_200_000)
                .expect("sim document");
        }
    });
    println!("sim, fresh chain per document: {fresh_chain_rate:.0} documents/s on {cores} threads");

    // Rounds alternate bare signing and the endpoint. The machine may be shared, so each
    // phase also records the CPU time its own threads used: the server's runtime threads
    // (named attest-server), not the load generator's (named load-client).
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name(SERVER_THREADS)
        .thread_keep_alive(Duration::from_secs(3600))
        .enable_all()
        .build()
        .expect("server runtime");
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name("load-client")
        .enable_all()
        .build()
        .expect("client runtime");
    let enclave = Arc::into_inner(enclave).expect("no other owner");
    let (addr, stop, server_task) = server_runtime.block_on(start_server(enclave, cores));
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let (signing_rate, signing_cpu) = per_second_on_threads_with_cpu(cores, seconds, {
            let signer = Arc::clone(&signer);
            let payload = Arc::clone(&payload);
            move || {
                signer
                    .sign(&ES384_PROTECTED_HEADER, &payload)
                    .expect("signature");
            }
        });
        let server_cpu_before = threads_cpu_seconds(SERVER_THREADS);
        let (rate, p50, p99, errors) = client_runtime.block_on(load(addr, clients, seconds));
        let server_cpu = threads_cpu_seconds(SERVER_THREADS) - server_cpu_before;

        let seconds = seconds.as_secs_f64();
        let signing_per_cpu = signing_rate * seconds / signing_cpu;
        let endpoint_per_cpu = rate * seconds / server_cpu;
        let ratio = endpoint_per_cpu / signing_per_cpu;
        ratios.push(ratio);
        println!(
            "round {round}: bare ES384 signing {signing_rate:.0}/s ({signing_per_cpu:.0} per CPU \
             second); attest-server {rate:.0} requests/s ({endpoint_per_cpu:.0} per server CPU \
             second), p50 {:.2} ms, p99 {:.2} ms, {clients} clients, {errors} errors; \
             ratio per CPU second {:.0}%, wall-clock {:.0}%",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            ratio * 100.0,
            rate / signing_rate * 100.0
        );
    }
    let _ = stop.send(());
    let _ = server_runtime.block_on(server_task);

    ratios.sort_by(f64::total_cmp);
    println!(
        "median ratio of endpoint to bare signing, per CPU second: {:.0}%",
        ratios[ratios.len() / 2] * 100.0
    );
}

/// Name of the server runtime's threads, to sum their CPU time.
const SERVER_THREADS: &str = "attest-server";

/// Parses user + system CPU seconds from a `/proc/.../stat` line. Times there are in USER_HZ
/// ticks, 100 per second on Linux.
fn stat_cpu_seconds(stat: &str) -> f64 {
    // Fields after the command name, which is in parentheses and may contain spaces; the
    // first of them is field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    let after_name = &stat[stat.rfind(')').expect("command name") + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let utime: u64 = fields[11].parse().expect("utime");
    let stime: u64 = fields[12].parse().expect("stime");
    (utime + stime) as f64 / 100.0
}

/// CPU seconds used so far by the calling thread.
fn thread_cpu_seconds() -> f64 {
    stat_cpu_seconds(&std::fs::read_to_string("/proc/thread-self/stat").expect("thread stat"))
}

/// CPU seconds used so far by the live threads of this process named `name`.
fn threads_cpu_seconds(name: &str) -> f64 {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc/self/task")
        .expect("task list")
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if stat.contains(&format!("({name})")) {
            total += stat_cpu_seconds(&stat);
        }
    }
    total
}

/// Like [`per_second_on_threads`], also returning the CPU seconds the threads used.
fn per_second_on_threads_with_cpu(
    threads: usize,
    duration: Duration,
    work: impl Fn() + Send + Sync + Clone + 'static,
) -> (f64, f64) {
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let work = work.clone();
            std::thread::spawn(move || {
                let cpu_start = thread_cpu_seconds();
                let mut count = 0u64;
                while started.elapsed() < duration {
                    work();
                    count += 1;
                }
                (count, thread_cpu_seconds() - cpu_start)
            })
        })
        .collect();
    let (mut total, mut cpu) = (0u64, 0.0);
    for handle in handles {
        let (count, seconds) = handle.join().expect("thread");
        total += count;
        cpu += seconds;
    }
    (total as f64 / started.elapsed().as_secs_f64(), cpu)
}

/// Runs `work` in a loop on `threads` threads for `duration`; returns calls per second.
fn per_second_on_threads(
    threads: usize,
    duration: Duration,
    work: impl Fn() + Send + Sync + Clone + 'static,
) -> f64 {
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let work = work.clone();
            std::thread::spawn(move || {
                let mut count = 0u64;
                while started.elapsed() < duration {
                    work();
                    count += 1;
                }
                count
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
    total as f64 / started.elapsed().as_secs_f64()
}

/// Starts the endpoint on 127.0.0.1 with the simulator and as many attestation slots as cores.
async fn start_server(
    enclave: SimulatedEnclave,
    cores: usize,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let mut config = ServerConfig::new("127.0.0.1:0".parse().expect("address"));
    config.limits = Limits {
        max_concurrent_attestations: cores,
        ..Limits::default()
    };
    let server = Server::bind(&config).await.expect("bind");
    let addr = server.local_addr();
    let attester = Arc::new(SimAttester::new(enclave, cores));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(attester, async {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

/// Runs `clients` keep-alive clients for `duration`; returns requests per second, p50, p99
/// and the number of failed requests.
async fn load(
    addr: std::net::SocketAddr,
    clients: usize,
    duration: Duration,
) -> (f64, Duration, Duration, u64) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| tokio::spawn(client_loop(addr, client, started, duration)))
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut samples, failed) = task.await.expect("client task");
        latencies.append(&mut samples);
        errors += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();

    latencies.sort();
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(index).copied().unwrap_or_default()
    };
    (
        latencies.len() as f64 / elapsed,
        percentile(0.50),
        percentile(0.99),
        errors,
    )
}

/// One keep-alive connection sending GETs with a distinct nonce until `duration` has passed.
async fn client_loop(
    addr: std::net::SocketAddr,
    client: usize,
    started: Instant,
    duration: Duration,
) -> (Vec<Duration>, u64) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);

    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut sequence = 0u64;
    while started.elapsed() < duration {
        sequence += 1;
        let target = format!(
            "/api/v1/attestation/report?nonce={:016x}{:016x}",
            client, sequence
        );
        let request = http::Request::get(target)
            .header(http::header::HOST, addr.to_string())
            .body(Empty::<Bytes>::new())
            .expect("request");
        let sent = Instant::now();
        match sender.send_request(request).await {
            Ok(response) if response.status() == 200 => {
                let _ = response.into_body().collect().await;
                latencies.push(sent.elapsed());
            }
            Ok(_) | Err(_) => errors += 1,
        }
    }
    (latencies, errors)
}

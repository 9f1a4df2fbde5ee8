//! `attest` and `attest-server`.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use enclave_broker::attestation::source::{
    AttestationRequest, Attester, AttesterError, AttesterSpec, MAX_FIELD_LEN,
};
use enclave_broker::server::{Server, ServerConfig, ServerError, is_loopback};

use super::{Failure, runtime};
use crate::cli::{AttestArgs, AttestServerArgs};

/// Maximum wait for the document of `attest`.
const ATTEST_DEADLINE: Duration = Duration::from_secs(30);

/// Maximum wait for blocking tasks when the command exits.
const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

pub fn attest(args: AttestArgs) -> Result<(), Failure> {
    // 1. Validate everything before contacting the attester.
    let spec = parse_attester(&args.attester)?;
    let request = AttestationRequest {
        public_key: read_field("--public-key", args.public_key.as_deref())?,
        user_data: read_field("--user-data", args.user_data.as_deref())?,
        nonce: read_field("--nonce", args.nonce.as_deref())?,
    };
    if let Some(path) = &args.output {
        check_output_path(path)?;
    }
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(Failure::usage(
            "the document is binary CBOR; write it with -o FILE or redirect stdout",
        ));
    }

    // 2. One document, under a deadline.
    let runtime = runtime()?;
    let document = runtime.block_on(async {
        let attester = open_attester(&spec)?;
        warn_if_simulator(attester.as_ref());
        match tokio::time::timeout(ATTEST_DEADLINE, attester.attest(&request)).await {
            Ok(Ok(document)) => Ok(document),
            Ok(Err(error)) => Err(Failure::new(error.exit_code(), error)),
            Err(_) => Err(Failure::new(
                3,
                AttesterError::TimedOut {
                    attester: attester.name(),
                    after: ATTEST_DEADLINE,
                },
            )),
        }
    });
    stop_runtime(runtime);
    let document = document?;

    // 3. Write it out.
    match &args.output {
        Some(path) => write_output(path, &document),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&document)
                .and_then(|()| stdout.flush())
                .map_err(|error| Failure::new(2, anyhow::anyhow!("stdout: {error}")))
        }
    }
}

pub fn serve(args: AttestServerArgs) -> Result<(), Failure> {
    let listen: SocketAddr = args.listen.parse().map_err(|_| {
        Failure::usage(format!(
            "--listen {:?}: expected IP:PORT, e.g. 127.0.0.1:50123 or [::1]:50123",
            args.listen
        ))
    })?;
    if !args.danger_allow_non_loopback && !is_loopback(&listen) {
        return Err(Failure::new(2, ServerError::NotLoopback { addr: listen }));
    }
    let spec = parse_attester(&args.attester)?;
    let config = ServerConfig {
        listen,
        danger_allow_non_loopback: args.danger_allow_non_loopback,
        ..ServerConfig::new(listen)
    };

    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let attester: Arc<dyn Attester> = Arc::from(open_attester(&spec)?);
        warn_if_simulator(attester.as_ref());
        let server = Server::bind(&config)
            .await
            .map_err(|error| Failure::new(2, error))?;

        // Scripts and tests read this line to learn the port chosen for port 0.
        eprintln!("listening on {}", server.local_addr());
        tracing::info!(addr = %server.local_addr(), attester = attester.name(), "attestation endpoint started");

        let shutdown = shutdown_signal().await?;
        server.run(attester, shutdown).await;
        Ok(())
    });
    stop_runtime(runtime);
    result
}

/// Drops the runtime without waiting for a device call that never returns: a blocking task
/// stuck in an NSM ioctl would otherwise keep the process from exiting.
fn stop_runtime(runtime: tokio::runtime::Runtime) {
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
}

fn parse_attester(value: &str) -> Result<AttesterSpec, Failure> {
    value.parse().map_err(|error| Failure::new(2, error))
}

fn open_attester(spec: &AttesterSpec) -> Result<Box<dyn Attester>, Failure> {
    spec.open()
        .map_err(|error| Failure::new(error.exit_code(), error))
}

fn warn_if_simulator(attester: &dyn Attester) {
    if attester.is_simulator() {
        tracing::warn!(
            "attester sim: documents are signed by a development root and prove nothing about \
             the code running"
        );
    }
}

/// Reads one field file: absent when the flag is not given, otherwise 1 to 1024 bytes.
/// Rejects an `-o` path that exists and is not a regular file, before the attester is
/// called. Writing to a FIFO waits for a reader forever, and a device or folder is no place
/// for a document.
fn check_output_path(path: &Path) -> Result<(), Failure> {
    match std::fs::metadata(path) {
        Ok(metadata) if !metadata.is_file() => Err(not_regular_output(path, metadata.file_type())),
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(Failure::usage(format!(
            "-o {}: cannot check the output path: {error}",
            path.display()
        ))),
    }
}

fn not_regular_output(path: &Path, file_type: std::fs::FileType) -> Failure {
    use std::os::unix::fs::FileTypeExt;

    let kind = if file_type.is_dir() {
        "a folder"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Failure::usage(format!(
        "-o {}: the path is {kind}; give a regular file or a path that does not exist yet",
        path.display()
    ))
}

/// Writes the document to `path`. The file is opened without blocking and checked again,
/// so a FIFO put there after [`check_output_path`] fails instead of hanging, and a regular
/// file is truncated only after that check.
fn write_output(path: &Path, document: &[u8]) -> Result<(), Failure> {
    use std::os::unix::fs::OpenOptionsExt;

    let write_error = |error: std::io::Error| {
        Failure::usage(format!("-o {}: cannot write: {error}", path.display()))
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(write_error)?;
    let file_type = file.metadata().map_err(write_error)?.file_type();
    if !file_type.is_file() {
        return Err(not_regular_output(path, file_type));
    }
    file.set_len(0).map_err(write_error)?;
    file.write_all(document).map_err(write_error)
}

fn read_field(flag: &str, path: Option<&Path>) -> Result<Option<Vec<u8>>, Failure> {
    let Some(path) = path else {
        return Ok(None);
    };
    // One byte past the 1024-byte field limit is enough to report an oversized file
    // without reading all of an endless pipe.
    let bytes = enclave_broker::file_input::read_prefix(path, 1025).map_err(|error| {
        Failure::usage(format!("{flag} {}: cannot read: {error}", path.display()))
    })?;
    if bytes.is_empty() {
        return Err(Failure::usage(format!(
            "{flag} {}: file is empty; leave the flag out for no {}",
            path.display(),
            flag.trim_start_matches("--")
        )));
    }
    if bytes.len() > MAX_FIELD_LEN {
        return Err(Failure::usage(format!(
            "{flag} {}: {} bytes, limit {MAX_FIELD_LEN}",
            path.display(),
            bytes.len()
        )));
    }
    Ok(Some(bytes))
}

/// Installs the SIGTERM and SIGINT handlers now, so a signal that arrives while the server
/// starts is not lost, and returns a future that completes on the first of them.
async fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, Failure> {
    use tokio::signal::unix::{SignalKind, signal};

    let install = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|error| {
            Failure::new(
                3,
                anyhow::anyhow!("cannot install the {name} handler: {error}"),
            )
        })
    };
    let mut terminate = install(SignalKind::terminate(), "SIGTERM")?;
    let mut interrupt = install(SignalKind::interrupt(), "SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
        }
    })
}

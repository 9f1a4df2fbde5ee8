//! The `attest-server` and `attest` commands as a user runs them: the documented shell example
//! (openssl, basenc, curl) against `attest-server --attester sim=DIR` on an ephemeral loopback
//! port, then `attest` writing one document to a file.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use enclave_broker::attestation::verify::{
    TrustRoot, VerifiedDocument, VerifyOptions, inspect, verify,
};

const BINARY: &str = env!("CARGO_BIN_EXE_enclave-broker");

fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/anjuna_shell_example.sh")
}

/// Fails the test with a clear message when a tool the example needs is missing.
fn require_tools() {
    for tool in ["bash", "openssl", "basenc", "curl"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        assert!(
            found,
            "the shell example needs `{tool}` on PATH (Debian: openssl, coreutils >= 8.31 for \
             basenc, curl)"
        );
    }
}

fn sim_init(dir: &Path) {
    let status = Command::new(BINARY)
        .args(["sim", "init", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

/// `attest-server` on 127.0.0.1 port 0; its stderr lines arrive on `lines`.
struct ServerProcess {
    child: Child,
    addr: String,
    lines: mpsc::Receiver<String>,
}

impl ServerProcess {
    fn start(sim_dir: &Path) -> Self {
        let mut child = Command::new(BINARY)
            .args(["attest-server", "--listen", "127.0.0.1:0", "--attester"])
            .arg(format!("sim={}", sim_dir.display()))
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();

        // Read stderr on a thread for the whole run, so the pipe never fills.
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });

        let addr = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(20))
                .expect("attest-server printed no `listening on` line");
            if let Some(addr) = line.strip_prefix("listening on ") {
                break addr.to_owned();
            }
        };
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        Self { child, addr, lines }
    }

    /// Sends SIGTERM by process id and returns the exit status and the remaining stderr.
    fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        let rest = self.lines.iter().collect();
        (exit, rest)
    }
}

fn verify_at_document_time(bytes: &[u8], root_pem: &Path) -> VerifiedDocument {
    let root = TrustRoot::from_pem(&std::fs::read(root_pem).unwrap(), "sim".to_owned()).unwrap();
    let mut options = VerifyOptions::new(inspect(bytes).unwrap().timestamp_ms());
    options.trust_roots = vec![root];
    verify(bytes, &options).unwrap()
}

#[test]
fn shell_example_runs_against_attest_server() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let sim_dir = dir.path().join("sim");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    sim_init(&sim_dir);
    let server = ServerProcess::start(&sim_dir);

    // curl must talk to the loopback server directly, whatever proxy the machine sets.
    let output = Command::new("bash")
        .arg(script_path())
        .current_dir(&work)
        .env("ENDPOINT", format!("http://{}", server.addr))
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("all_proxy")
        .env_remove("ALL_PROXY")
        .output()
        .unwrap();
    let (exit, server_log) = server.terminate();
    assert!(
        output.status.success(),
        "script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The document verifies with the simulator's root and carries the exact bytes sent.
    let report = std::fs::read(work.join("report.bin")).unwrap();
    let verified = verify_at_document_time(&report, &sim_dir.join("root.pem"));
    let document = verified.document();
    let public_der = std::fs::read(work.join("public.der")).unwrap();
    let nonce_b64 = std::fs::read_to_string(work.join("nonce.b64")).unwrap();
    let nonce = URL_SAFE.decode(nonce_b64.trim()).unwrap();
    assert_eq!(document.user_data(), Some(&b"Hello World!\n"[..]));
    assert_eq!(document.public_key(), Some(public_der.as_slice()));
    assert_eq!(public_der.len(), 120, "P-384 SubjectPublicKeyInfo DER");
    assert_eq!(nonce.len(), 16);
    assert_eq!(document.nonce(), Some(nonce.as_slice()));

    // The script printed the same document as standard base64.
    let printed = String::from_utf8(output.stdout).unwrap();
    let printed: String = printed.split_whitespace().collect();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(printed)
            .unwrap(),
        report
    );

    // SIGTERM stops the server cleanly, after one access-log line without query values.
    assert!(exit.success(), "{exit:?}: {server_log:?}");
    let access: Vec<_> = server_log
        .iter()
        .filter(|line| line.contains("status=200"))
        .collect();
    assert_eq!(access.len(), 1, "{server_log:?}");
    assert!(!access[0].contains('?'), "{}", access[0]);
    assert!(!access[0].contains(nonce_b64.trim()), "{}", access[0]);
    assert!(
        server_log
            .iter()
            .any(|line| line.contains("attestation endpoint stopped")),
        "{server_log:?}"
    );
}

#[test]
fn attest_writes_document_with_file_fields() {
    let dir = tempfile::tempdir().unwrap();
    let sim_dir = dir.path().join("sim");
    sim_init(&sim_dir);
    let key = dir.path().join("key.der");
    let data = dir.path().join("data.bin");
    let nonce = dir.path().join("nonce.bin");
    std::fs::write(&key, [0x30; 120]).unwrap();
    std::fs::write(&data, [0u8, 1, 2, 255]).unwrap();
    std::fs::write(&nonce, [9u8; 1024]).unwrap();
    let out = dir.path().join("doc.cbor");

    let output = Command::new(BINARY)
        .arg("attest")
        .arg("--attester")
        .arg(format!("sim={}", sim_dir.display()))
        .arg("--public-key")
        .arg(&key)
        .arg("--user-data")
        .arg(&data)
        .arg("--nonce")
        .arg(&nonce)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let bytes = std::fs::read(&out).unwrap();
    let verified = verify_at_document_time(&bytes, &sim_dir.join("root.pem"));
    let document = verified.document();
    assert_eq!(document.public_key(), Some(&[0x30; 120][..]));
    assert_eq!(document.user_data(), Some(&[0u8, 1, 2, 255][..]));
    assert_eq!(document.nonce(), Some(&[9u8; 1024][..]));
}

#[test]
fn attest_writes_document_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let sim_dir = dir.path().join("sim");
    sim_init(&sim_dir);
    let output = Command::new(BINARY)
        .arg("attest")
        .arg("--attester")
        .arg(format!("sim={}", sim_dir.display()))
        .output()
        .unwrap();
    assert!(output.status.success());
    let verified = verify_at_document_time(&output.stdout, &sim_dir.join("root.pem"));
    assert_eq!(verified.document().public_key(), None);
    assert_eq!(verified.document().user_data(), None);
    assert_eq!(verified.document().nonce(), None);
}

#[test]
fn attest_rejects_empty_and_oversized_files() {
    let dir = tempfile::tempdir().unwrap();
    let sim_dir = dir.path().join("sim");
    sim_init(&sim_dir);
    let empty = dir.path().join("empty");
    let big = dir.path().join("big");
    std::fs::write(&empty, b"").unwrap();
    std::fs::write(&big, [1u8; 1025]).unwrap();

    for (flag, file, message) in [
        (
            "--nonce",
            &empty,
            "file is empty; leave the flag out for no nonce",
        ),
        ("--user-data", &big, "1025 bytes, limit 1024"),
    ] {
        let output = Command::new(BINARY)
            .arg("attest")
            .arg("--attester")
            .arg(format!("sim={}", sim_dir.display()))
            .arg(flag)
            .arg(file)
            .arg("-o")
            .arg(dir.path().join("unused"))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{flag}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(flag) && stderr.contains(message),
            "{stderr}"
        );
    }
}

#[test]
fn attest_rejects_output_that_is_not_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let sim_dir = dir.path().join("sim");
    sim_init(&sim_dir);
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();

    for (output_path, kind) in [
        (fifo.as_path(), "a FIFO"),
        (folder.as_path(), "a folder"),
        (Path::new("/dev/null"), "a device"),
    ] {
        let mut child = Command::new(BINARY)
            .arg("attest")
            .arg("--attester")
            .arg(format!("sim={}", sim_dir.display()))
            .arg("-o")
            .arg(output_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();

        // A broker that opens the FIFO would wait for a reader forever; end it instead.
        let mut status = None;
        for _ in 0..600 {
            status = child.try_wait().unwrap();
            if status.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if status.is_none() {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "attest -o {} did not exit within 60 s",
                output_path.display()
            );
        }
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();

        assert_eq!(status.unwrap().code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("-o {}: the path is {kind}", output_path.display())),
            "{stderr}"
        );
    }
    assert!(fifo.exists());
    assert!(folder.read_dir().unwrap().next().is_none());
}

#[test]
fn attest_server_refuses_non_loopback_listen() {
    let output = Command::new(BINARY)
        .args([
            "attest-server",
            "--listen",
            "0.0.0.0:0",
            "--attester",
            "sim=/nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The address is checked before the attester is opened.
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(stderr.contains("--danger-allow-non-loopback"), "{stderr}");
}

#[test]
fn nsm_attester_without_device_points_at_simulator() {
    if Path::new("/dev/nsm").exists() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .args(["attest", "--attester", "nsm", "-o"])
        .arg(dir.path().join("report.bin"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/dev/nsm not found"), "{stderr}");
    assert!(stderr.contains("--attester sim=DIR"), "{stderr}");
}

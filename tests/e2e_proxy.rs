//! Both halves of the enclave transport together: the broker reaches LocalStack's KMS
//! under a host name that does not resolve, through `--route` to a running
//! `enclave-broker proxy`, as an enclave reaches KMS through its parent. Stopping the proxy
//! makes the next run fail with exit code 3 naming the route.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::json;
use support::*;

struct ProxyProcess(Child);

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the proxy with one TCP route to `upstream` and waits until it listens.
fn start_proxy(dir: &std::path::Path, listen_port: u16, upstream: &str) -> ProxyProcess {
    let config = dir.join("proxy.toml");
    std::fs::write(
        &config,
        format!("[[route]]\nlisten = \"tcp:127.0.0.1:{listen_port}\"\nupstream = \"{upstream}\"\n"),
    )
    .unwrap();
    let mut child = Command::new(broker_path())
        .args(["proxy", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines
            .next()
            .expect("proxy exited before listening")
            .unwrap();
        if line.contains("listening") {
            break;
        }
    }
    // Keep draining the log so the proxy never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    ProxyProcess(child)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn releases_secret_through_proxy_and_fails_when_it_stops() {
    let endpoint = localstack_endpoint();
    let localstack = endpoint.trim_start_matches("http://").to_owned();
    let root = tempfile::tempdir().unwrap();
    let sim = sim_init(&root.path().join("sim"), &[]);
    let client = kms_client(&endpoint);
    let key_arn = create_key(&client).await;
    let ciphertext = encrypt(&client, &key_arn, b"via-proxy", &[]).await;
    let policy = write_policy(
        root.path(),
        &json!({
            "trust": { "roots": [ { "dev_root_pem": "sim/root.pem" } ] },
            "keys": { "app": { "key_id": key_arn, "allow": [ { "pcrs": { "0": sim["pcrs"]["0"] } } ] } },
            "secrets": [ { "name": "db", "key": "app", "ciphertext": ciphertext, "file": "db" } ],
        }),
    );
    let port = free_port();
    let proxy = start_proxy(root.path(), port, &localstack);
    let route = format!("kms.test:4566=tcp:127.0.0.1:{port}");
    let fetch = |out: &str| {
        fetch_to_files(
            "http://kms.test:4566",
            &root.path().join("sim"),
            &policy,
            &root.path().join(out),
        )
        .args(["--route", &route])
        .output()
        .unwrap()
    };

    let released = fetch("out");
    drop(proxy);
    let refused = fetch("out-after-stop");

    assert_success(&released);
    assert_eq!(
        std::fs::read(root.path().join("out/db")).unwrap(),
        b"via-proxy"
    );
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains(&format!("tcp:127.0.0.1:{port}")),
        "{}",
        stderr(&refused)
    );
    assert!(!root.path().join("out-after-stop").exists());
}

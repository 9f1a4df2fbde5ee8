//! A loopback stand-in for KMS that answers every request with one fixed response, for
//! failures LocalStack cannot produce (a `Plaintext` answer, throttling). It records the
//! body and the `X-Amz-Target` header (the KMS operation) of each request it received.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

pub struct StubKms {
    pub address: SocketAddr,
    pub requests: Arc<Mutex<Vec<String>>>,
    /// `X-Amz-Target` of each request, such as `TrentService.Decrypt`; empty when absent.
    pub targets: Arc<Mutex<Vec<String>>>,
    /// Connections accepted, counted before anything is read from them.
    connections: Arc<AtomicUsize>,
}

impl StubKms {
    /// Starts the stub on 127.0.0.1 with a free port; it serves until the test ends.
    pub fn start(status: u16, body: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind stub");
        let address = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        let targets = Arc::new(Mutex::new(Vec::new()));
        let recorded_targets = Arc::clone(&targets);
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::clone(&connections);
        thread::spawn(move || {
            for stream in listener.incoming() {
                accepted.fetch_add(1, Ordering::SeqCst);
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut content_length = 0usize;
                let mut target = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(value) = lower.strip_prefix("content-length:") {
                        content_length = value.trim().parse().unwrap_or(0);
                    }
                    if lower.starts_with("x-amz-target:") {
                        target = line["x-amz-target:".len()..].trim().to_owned();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut request_body = vec![0u8; content_length];
                let _ = reader.read_exact(&mut request_body);
                recorded
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&request_body).into_owned());
                recorded_targets.lock().unwrap().push(target);
                let response = format!(
                    "HTTP/1.1 {status} Stub\r\ncontent-type: application/x-amz-json-1.1\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Self {
            address,
            requests,
            targets,
            connections,
        }
    }

    /// Number of connections accepted so far.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }
}

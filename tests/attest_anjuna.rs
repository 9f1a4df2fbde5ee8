//! The `anjuna` attester: a round trip through our own endpoint, and its handling of stub
//! endpoints on 127.0.0.1 that respond with a JSON error, a bare 500, a body that never
//! finishes, or a body over the size cap.

mod server_common;

use std::net::SocketAddr;
use std::time::Duration;

use enclave_broker::attestation::source::{
    ANJUNA_MAX_RESPONSE_LEN, AnjunaAttester, AnjunaError, AttestationRequest, Attester,
    AttesterError,
};
use server_common::{REPORT, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn request() -> AttestationRequest {
    AttestationRequest {
        public_key: Some(vec![0x30; 120]),
        user_data: Some(b"Hello World!\n".to_vec()),
        nonce: Some(vec![0xfe; 16]),
    }
}

fn anjuna_error(result: Result<Vec<u8>, AttesterError>) -> AnjunaError {
    match result {
        Err(AttesterError::Anjuna(error)) => error,
        other => panic!("expected an anjuna error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn round_trip_through_our_endpoint() {
    let server = TestServer::sim().await;
    let attester = AnjunaAttester::new(&server.url()).unwrap();
    let request = request();

    let bytes = attester.attest(&request).await.unwrap();

    let verified = server.verify(&bytes);
    let document = verified.document();
    assert_eq!(document.public_key(), request.public_key.as_deref());
    assert_eq!(document.user_data(), request.user_data.as_deref());
    assert_eq!(document.nonce(), request.nonce.as_deref());
}

#[tokio::test(flavor = "multi_thread")]
async fn round_trip_leaves_absent_fields_absent() {
    let server = TestServer::sim().await;
    let attester = AnjunaAttester::new(&server.url()).unwrap();
    let request = AttestationRequest {
        nonce: Some(vec![1, 2, 3]),
        ..Default::default()
    };
    let bytes = attester.attest(&request).await.unwrap();
    let verified = server.verify(&bytes);
    assert_eq!(verified.document().public_key(), None);
    assert_eq!(verified.document().user_data(), None);
    assert_eq!(verified.document().nonce(), Some(&[1u8, 2, 3][..]));
}

#[tokio::test(flavor = "multi_thread")]
async fn rejects_empty_field_before_sending() {
    // Port 9 on loopback: nothing must be sent, so nothing needs to listen.
    let attester = AnjunaAttester::new("http://127.0.0.1:9/api/v1/attestation/report").unwrap();
    let request = AttestationRequest {
        user_data: Some(Vec::new()),
        ..Default::default()
    };
    let error = attester.attest(&request).await.unwrap_err();
    assert!(matches!(
        error,
        AttesterError::InvalidRequest {
            field: "user_data",
            ..
        }
    ));
}

/// Starts a stub on 127.0.0.1 that reads one request head, records its request line and
/// then runs `respond` on the connection.
async fn stub<F, Fut>(respond: F) -> (SocketAddr, tokio::sync::oneshot::Receiver<String>)
where
    F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (line_sender, line) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head);
        let _ = line_sender.send(text.lines().next().unwrap_or("").to_owned());
        respond(stream).await;
    });
    (addr, line)
}

fn attester_for(addr: SocketAddr) -> AnjunaAttester {
    AnjunaAttester::new(&format!("http://{addr}{REPORT}"))
        .unwrap()
        .with_timeout(Duration::from_millis(500))
}

async fn write(mut stream: tokio::net::TcpStream, bytes: Vec<u8>) {
    let _ = stream.write_all(&bytes).await;
    let _ = stream.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sends_padded_base64url_query() {
    let (addr, line) = stub(|stream| {
        write(
            stream,
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n\x84".to_vec(),
        )
    })
    .await;
    let bytes = attester_for(addr).attest(&request()).await.unwrap();
    assert_eq!(bytes, vec![0x84]);
    let line = line.await.unwrap();
    assert_eq!(
        line,
        format!(
            "GET {REPORT}?publicKey={}&userData=SGVsbG8gV29ybGQhCg==&nonce=_v7-_v7-_v7-_v7-_v7-_g== HTTP/1.1",
            "MDAw".repeat(40)
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_json_error_field() {
    let body = r#"{"error":"userData: 1025 bytes after decoding, limit 1024"}"#;
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (addr, _) = stub(move |stream| write(stream, response.into_bytes())).await;

    let error = anjuna_error(attester_for(addr).attest(&request()).await);

    assert!(matches!(error, AnjunaError::Status { status, .. } if status == 400));
    assert_eq!(
        error.to_string(),
        format!(
            "attestation endpoint http://{addr}{REPORT} returned 400 Bad Request: userData: 1025 \
             bytes after decoding, limit 1024"
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_500_without_json() {
    let (addr, _) = stub(|stream| {
        write(
            stream,
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\noops!".to_vec(),
        )
    })
    .await;
    let error = anjuna_error(attester_for(addr).attest(&request()).await);
    assert!(
        error.to_string().ends_with(
            "returned 500 Internal Server Error: no JSON error field in the 5 byte response body"
        ),
        "{error}"
    );
    let attester_error = AttesterError::from(error);
    assert_eq!(attester_error.exit_code(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn times_out_on_slow_body() {
    let (addr, _) = stub(|mut stream| async move {
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n\x84")
            .await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let started = std::time::Instant::now();
    let error = anjuna_error(attester_for(addr).attest(&request()).await);
    assert!(matches!(error, AnjunaError::TimedOut { .. }), "{error}");
    assert!(error.to_string().contains("within 500 ms"), "{error}");
    // Generous bound: the point is that it does not wait for the stub's 30 s.
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn rejects_oversized_body() {
    let chunked_body = {
        // No Content-Length: the cap must hold while reading.
        let chunk = vec![b'x'; 4096];
        let mut bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..5 {
            bytes.extend_from_slice(b"1000\r\n");
            bytes.extend_from_slice(&chunk);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"0\r\n\r\n");
        bytes
    };
    let declared = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        ANJUNA_MAX_RESPONSE_LEN + 1
    )
    .into_bytes();

    for (case, response) in [("chunked", chunked_body), ("declared", declared)] {
        let (addr, _) = stub(move |stream| write(stream, response)).await;
        let error = anjuna_error(attester_for(addr).attest(&request()).await);
        assert!(
            matches!(error, AnjunaError::TooLarge { .. }),
            "{case}: {error}"
        );
        assert!(
            error.to_string().contains("more than 16384 bytes"),
            "{error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn accepts_body_at_size_cap() {
    let mut response =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {ANJUNA_MAX_RESPONSE_LEN}\r\n\r\n")
            .into_bytes();
    response.extend(std::iter::repeat_n(0x84, ANJUNA_MAX_RESPONSE_LEN));
    let (addr, _) = stub(move |stream| write(stream, response)).await;
    let bytes = attester_for(addr).attest(&request()).await.unwrap();
    assert_eq!(bytes.len(), ANJUNA_MAX_RESPONSE_LEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_empty_document() {
    let (addr, _) = stub(|stream| {
        write(
            stream,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
        )
    })
    .await;
    let error = anjuna_error(attester_for(addr).attest(&request()).await);
    assert!(
        matches!(error, AnjunaError::EmptyDocument { .. }),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_refused_connection() {
    // Bind and drop a listener to get a loopback port with nothing behind it.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let error = anjuna_error(attester_for(addr).attest(&request()).await);
    assert!(matches!(error, AnjunaError::Connect { .. }), "{error}");
    assert!(
        error.to_string().starts_with(&format!(
            "cannot connect to attestation endpoint http://{addr}"
        )),
        "{error}"
    );
}

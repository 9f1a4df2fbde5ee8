//! The attestation endpoint's query parameters, end to end: each request goes over loopback
//! to an in-process server backed by the simulator, and each document is verified with the
//! simulator's root.

mod server_common;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use server_common::{REPORT, TestServer, get};

const NAMES: [&str; 3] = ["publicKey", "userData", "nonce"];

/// Returns the (public_key, user_data, nonce) of a verified document.
fn fields(server: &TestServer, body: &[u8]) -> [Option<Vec<u8>>; 3] {
    let verified = server.verify(body);
    let document = verified.document();
    [
        document.public_key().map(<[u8]>::to_vec),
        document.user_data().map(<[u8]>::to_vec),
        document.nonce().map(<[u8]>::to_vec),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn padded_and_unpadded_give_same_fields() {
    let server = TestServer::sim().await;
    // 33, 13 and 16 bytes: no padding, two and one padding characters.
    let public_key: Vec<u8> = (0u8..33).map(|i| i.wrapping_mul(37) ^ 0xfb).collect();
    let user_data = b"Hello World!\n".to_vec();
    let nonce = vec![0xff; 16];
    let query = |encode: &dyn Fn(&[u8]) -> String| {
        format!(
            "publicKey={}&userData={}&nonce={}",
            encode(&public_key),
            encode(&user_data),
            encode(&nonce)
        )
    };

    let padded = server.report(&query(&|b| URL_SAFE.encode(b))).await;
    let unpadded = server.report(&query(&|b| URL_SAFE_NO_PAD.encode(b))).await;

    assert_eq!(
        padded.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&padded.body)
    );
    assert_eq!(unpadded.status, 200);
    assert_eq!(
        padded.header("content-type"),
        Some("application/octet-stream")
    );
    let expected = [Some(public_key), Some(user_data), Some(nonce)];
    assert_eq!(fields(&server, &padded.body), expected);
    assert_eq!(fields(&server, &unpadded.body), expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_parameters_give_null_fields() {
    let server = TestServer::sim().await;
    let response = get(server.addr, REPORT).await;
    assert_eq!(response.status, 200);
    assert_eq!(fields(&server, &response.body), [None, None, None]);
}

#[tokio::test(flavor = "multi_thread")]
async fn accepts_1024_bytes_for_each_parameter() {
    let server = TestServer::sim().await;
    let value = vec![0xa5; 1024];
    for name in NAMES {
        let response = server
            .report(&format!("{name}={}", URL_SAFE.encode(&value)))
            .await;
        assert_eq!(response.status, 200, "{name}");
        let present: Vec<_> = fields(&server, &response.body)
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(present, vec![value.clone()], "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn accepts_all_three_at_1024_bytes_together() {
    let server = TestServer::sim().await;
    let value = URL_SAFE.encode([0x5a; 1024]);
    let response = server
        .report(&format!("publicKey={value}&userData={value}&nonce={value}"))
        .await;
    assert_eq!(response.status, 200);
    let expected = Some(vec![0x5a; 1024]);
    assert_eq!(
        fields(&server, &response.body),
        [expected.clone(), expected.clone(), expected]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rejects_1025_bytes_for_each_parameter() {
    let server = TestServer::sim().await;
    let value = URL_SAFE_NO_PAD.encode([1u8; 1025]);
    for name in NAMES {
        let response = server.report(&format!("{name}={value}")).await;
        assert_eq!(response.status, 400, "{name}");
        assert_eq!(
            response.error(),
            format!("invalid_parameter: {name}: 1025 bytes after decoding, limit 1024")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rejects_standard_base64_with_hint() {
    let server = TestServer::sim().await;
    // 33 bytes whose standard encoding contains both + and /.
    let bytes = [0xfb_u8, 0xff, 0xbf].repeat(11);
    let standard = STANDARD.encode(&bytes);
    assert!(standard.contains('+'));
    assert!(standard.contains('/'));
    let hint = "(standard base64's + and / are not allowed; use - and _";

    let cases = [
        ("raw plus", standard.clone()),
        ("raw slash", standard.replace('+', "-")),
        ("percent-encoded plus", standard.replace('+', "%2B")),
        (
            "percent-encoded slash",
            standard.replace('+', "-").replace('/', "%2f"),
        ),
        ("space where plus was", standard.replace('+', "%20")),
    ];
    for (case, value) in cases {
        let response = server.report(&format!("publicKey={value}")).await;
        assert_eq!(response.status, 400, "{case}");
        let error = response.error();
        assert!(
            error.starts_with("invalid_parameter: publicKey: not base64url"),
            "{case}: {error}"
        );
        assert!(error.contains(hint), "{case}: {error}");
    }

    let space = server
        .report(&format!("publicKey={}", standard.replace('+', "%20")))
        .await;
    assert!(space.error().contains("a space"), "{}", space.error());

    let url_safe = server
        .report(&format!("publicKey={}", URL_SAFE.encode(&bytes)))
        .await;
    assert_eq!(url_safe.status, 200);
    assert_eq!(fields(&server, &url_safe.body)[0], Some(bytes));
}

#[tokio::test(flavor = "multi_thread")]
async fn rejects_empty_value_naming_parameter() {
    let server = TestServer::sim().await;
    for name in NAMES {
        for query in [format!("{name}="), name.to_owned()] {
            let response = server.report(&query).await;
            assert_eq!(response.status, 400, "{query}");
            assert_eq!(
                response.error(),
                format!("invalid_parameter: {name}: empty value; leave the parameter out instead")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn decodes_percent_encoded_value() {
    let server = TestServer::sim().await;
    // "-_8=" is 0xfb 0xff; every character percent-encoded, in both hex cases.
    let response = server.report("userData=%2D%5f%38%3D").await;
    assert_eq!(response.status, 200);
    assert_eq!(fields(&server, &response.body)[1], Some(vec![0xfb, 0xff]));

    let bad = server.report("userData=%2").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.error().contains("invalid percent-encoding"),
        "{}",
        bad.error()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rejects_repeated_parameter() {
    let server = TestServer::sim().await;
    for name in NAMES {
        let response = server.report(&format!("{name}=AQ&{name}=AQ")).await;
        assert_eq!(response.status, 400, "{name}");
        assert_eq!(
            response.error(),
            format!("invalid_parameter: {name}: given 2 times; give it at most once")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ignores_unknown_parameters() {
    let server = TestServer::sim().await;
    let response = server
        .report("format=raw&userData=aGk&publickey=ignored&x")
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        fields(&server, &response.body),
        [None, Some(b"hi".to_vec()), None]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rejects_misplaced_padding_and_impossible_length() {
    let server = TestServer::sim().await;
    for (query, fragment) in [
        ("nonce=AQ==AQ", "not base64url"),
        ("nonce=AQIDB", "invalid length"),
        ("nonce=AR", "last character"),
    ] {
        let response = server.report(query).await;
        assert_eq!(response.status, 400, "{query}");
        let error = response.error();
        assert!(error.starts_with("invalid_parameter: nonce: "), "{error}");
        assert!(error.contains(fragment), "{query}: {error}");
    }
}

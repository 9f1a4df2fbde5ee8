//! The `nsm` attester through a fake device behind the `NsmDevice` seam (no /dev/nsm here):
//! what it sends, how it maps every NSM response, and its bound on concurrent device calls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_nitro_enclaves_nsm_api::api::{Digest, ErrorCode, Request, Response};
use enclave_broker::attestation::source::{
    AttestationRequest, Attester, AttesterError, NsmAttester, NsmDevice, NsmError,
};

/// A way to make an NSM value (the binding's types are not `Clone`) and the message fragment
/// it must produce.
type ErrorCodeCase = (fn() -> ErrorCode, &'static str);
type ResponseCase = (fn() -> Response, &'static str);

/// A device that records each request and returns the response made by `answer`.
struct FakeDevice<F> {
    answer: F,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl<F: Fn() -> Response + Send + Sync + 'static> NsmDevice for FakeDevice<F> {
    fn process(&self, request: Request) -> Response {
        self.seen.lock().unwrap().push(request);
        (self.answer)()
    }
}

fn attester(
    answer: impl Fn() -> Response + Send + Sync + 'static,
) -> (NsmAttester, Arc<Mutex<Vec<Request>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let device = FakeDevice {
        answer,
        seen: Arc::clone(&seen),
    };
    (NsmAttester::new(device, 2), seen)
}

async fn attest_with(
    response: impl Fn() -> Response + Send + Sync + 'static,
) -> Result<Vec<u8>, AttesterError> {
    let (attester, _) = attester(response);
    attester.attest(&AttestationRequest::default()).await
}

fn nsm_error(result: Result<Vec<u8>, AttesterError>) -> NsmError {
    match result {
        Err(AttesterError::Nsm(error)) => error,
        other => panic!("expected an NSM error, got {other:?}"),
    }
}

#[tokio::test]
async fn returns_document_and_sends_present_fields() {
    let (attester, seen) = attester(|| Response::Attestation {
        document: vec![0x84, 0x44],
    });
    let request = AttestationRequest {
        public_key: Some(vec![1; 294]),
        user_data: None,
        nonce: Some(vec![2; 32]),
    };

    let document = attester.attest(&request).await.unwrap();

    assert_eq!(document, vec![0x84, 0x44]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let Request::Attestation {
        user_data,
        nonce,
        public_key,
    } = &seen[0]
    else {
        panic!("expected an Attestation request, got {:?}", seen[0]);
    };
    assert_eq!(public_key.as_deref().map(|k| k.len()), Some(294));
    assert_eq!(nonce.as_ref().map(|n| n.to_vec()), Some(vec![2u8; 32]));
    // Absent stays absent: never a present-but-empty byte string.
    assert!(user_data.is_none());
}

#[tokio::test]
async fn rejects_empty_field_before_device_call() {
    let (attester, seen) = attester(|| Response::Attestation {
        document: vec![0x84],
    });
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
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn rejects_oversized_field_before_device_call() {
    let (attester, seen) = attester(|| Response::Attestation {
        document: vec![0x84],
    });
    let request = AttestationRequest {
        nonce: Some(vec![0; 1025]),
        ..Default::default()
    };
    let error = attester.attest(&request).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid attestation request: nonce: 1025 bytes, limit 1024"
    );
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn maps_each_error_code() {
    let cases: [ErrorCodeCase; 9] = [
        (|| ErrorCode::InvalidArgument, "(InvalidArgument)"),
        (|| ErrorCode::InputTooLarge, "must fit in 4 KiB"),
        (|| ErrorCode::BufferTooSmall, "12 KiB response buffer"),
        (|| ErrorCode::InvalidOperation, "(InvalidOperation)"),
        (
            || ErrorCode::InvalidResponse,
            "does not correspond to the request",
        ),
        (|| ErrorCode::InternalError, "the ioctl failed"),
        (|| ErrorCode::Success, "error code Success"),
        (|| ErrorCode::InvalidIndex, "error code InvalidIndex"),
        (|| ErrorCode::ReadOnlyIndex, "error code ReadOnlyIndex"),
    ];
    for (code, fragment) in cases {
        let error = nsm_error(attest_with(move || Response::Error(code())).await);
        assert!(error.to_string().contains(fragment), "{fragment}: {error}");
        assert_eq!(AttesterError::from(error).exit_code(), 3);
    }
}

#[tokio::test]
async fn rejects_responses_of_other_requests() {
    let cases: [ResponseCase; 6] = [
        (
            || Response::DescribePCR {
                lock: false,
                data: vec![0; 48],
            },
            "DescribePCR",
        ),
        (|| Response::ExtendPCR { data: vec![0; 48] }, "ExtendPCR"),
        (|| Response::LockPCR, "LockPCR"),
        (|| Response::LockPCRs, "LockPCRs"),
        (
            || Response::DescribeNSM {
                version_major: 1,
                version_minor: 0,
                version_patch: 0,
                module_id: "i-0-enc0".to_owned(),
                max_pcrs: 32,
                locked_pcrs: Default::default(),
                digest: Digest::SHA384,
            },
            "DescribeNSM",
        ),
        (
            || Response::GetRandom {
                random: vec![4; 256],
            },
            "GetRandom",
        ),
    ];
    for (response, variant) in cases {
        let error = nsm_error(attest_with(response).await);
        assert_eq!(
            error.to_string(),
            format!("NSM returned a {variant} response to an attestation request")
        );
    }
}

#[tokio::test]
async fn rejects_empty_document() {
    let error = nsm_error(
        attest_with(|| Response::Attestation {
            document: Vec::new(),
        })
        .await,
    );
    assert!(matches!(error, NsmError::EmptyDocument));
}

/// A device that blocks each call for a while and records the most calls in flight at once.
struct SlowDevice {
    in_flight: AtomicUsize,
    max_in_flight: Arc<AtomicUsize>,
}

impl NsmDevice for SlowDevice {
    fn process(&self, _request: Request) -> Response {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(30));
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Response::Attestation {
            document: vec![0x84],
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bounds_concurrent_device_calls() {
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let device = SlowDevice {
        in_flight: AtomicUsize::new(0),
        max_in_flight: Arc::clone(&max_in_flight),
    };
    let attester = Arc::new(NsmAttester::new(device, 2));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let attester = Arc::clone(&attester);
            tokio::spawn(async move {
                attester
                    .attest(&AttestationRequest::default())
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), vec![0x84]);
    }
    assert_eq!(max_in_flight.load(Ordering::SeqCst), 2);
}

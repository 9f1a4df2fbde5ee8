//! KMS failures, mapped to messages a person can act on and to the broker's exit codes.

use std::error::Error;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::operation::decrypt::DecryptError;

use super::endpoint::is_aws_endpoint;
use super::response::{
    MAX_CODE_CHARS, MAX_MESSAGE_CHARS, clean_remote_text, describe_unreadable_response,
};
use crate::transport::TransportError;

/// Failure of a KMS call, or a KMS response the broker rejects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KmsError {
    // Configuration.
    #[error("no AWS region configured; set AWS_REGION or a region in the AWS profile")]
    NoRegion,
    #[error("no AWS KMS endpoint for region {region}: {detail}")]
    NoAwsEndpoint { region: String, detail: String },
    #[error(
        "{variable}={value:?} is set but empty; set it to a region such as us-east-1, or unset \
         it to use the region of the AWS profile"
    )]
    EmptyRegionVariable {
        variable: &'static str,
        value: String,
    },
    #[error(
        "AWS region {region:?} is not a valid region name (letters, digits and -, such as \
         us-east-1); check AWS_REGION, AWS_DEFAULT_REGION and the region in the AWS profile"
    )]
    InvalidRegion { region: String },
    #[error(
        "KMS endpoint {endpoint} is not https://; TLS must end inside the enclave, so plain \
         http is accepted only with the sim attester"
    )]
    InsecureEndpoint { endpoint: String },
    #[error(
        "{variable}={value:?} is not a valid endpoint URL: {problem}; expected an absolute \
         http:// or https:// URL with a host, such as http://127.0.0.1:4566"
    )]
    InvalidEndpointUrl {
        variable: &'static str,
        value: String,
        problem: &'static str,
    },
    #[error(
        "endpoint_url = {value:?} in profile {profile} of {file} is not a valid endpoint URL: \
         {problem}; expected an absolute http:// or https:// URL with a host, such as \
         http://127.0.0.1:4566"
    )]
    InvalidProfileEndpointUrl {
        file: String,
        profile: String,
        value: String,
        problem: &'static str,
    },
    #[error(
        "the sim attester cannot be used with AWS KMS at {endpoint}{}: AWS KMS accepts only \
         attestation documents signed by AWS; set AWS_ENDPOINT_URL to a local KMS such as \
         LocalStack (http://127.0.0.1:4566)",
        if *configured { "" } else { " (no endpoint is set in the environment or the AWS profile)" }
    )]
    SimulatorWithAwsKms { endpoint: String, configured: bool },
    #[error(
        "the sim attester cannot be used with --route {destination}={target}: the target is \
         an AWS host, and AWS KMS accepts only attestation documents signed by AWS; route to \
         a local KMS such as LocalStack (tcp:127.0.0.1:4566) instead"
    )]
    SimulatorRouteToAws { destination: String, target: String },

    // Denied by KMS or by the broker's checks of the response.
    #[error("KMS denied Decrypt with key {key_id}: {message}")]
    AccessDenied { key_id: String, message: String },
    #[error(
        "KMS answered for key {found}, but the key rule names {expected}; the credentials \
         may belong to another account"
    )]
    KeyIdMismatch { expected: String, found: String },

    // KMS returned an error about the request.
    #[error(
        "KMS rejected the ciphertext for key {key_id} ({code}): {message}; check that the \
         ciphertext and encryption_context match what was encrypted, and set \
         encryption_algorithm for ciphertexts of asymmetric keys"
    )]
    InvalidCiphertext {
        key_id: String,
        code: String,
        message: String,
    },
    #[error(
        "KMS key {key_id} not found: {message}; check key_id and the region{}",
        if *aws_endpoint { "" } else { LOCALSTACK_RESTART_HINT }
    )]
    NotFound {
        key_id: String,
        message: String,
        /// The endpoint is an AWS host, so the LocalStack hint does not apply.
        aws_endpoint: bool,
    },
    #[error("KMS key {key_id} cannot be used now ({code}): {message}")]
    KeyUnusable {
        key_id: String,
        code: String,
        message: String,
    },
    #[error("KMS Decrypt with key {key_id} failed ({code}): {message}")]
    Service {
        key_id: String,
        code: String,
        message: String,
    },

    // KMS misbehaved or could not be reached.
    #[error(
        "KMS answered Decrypt for key {key_id} with Plaintext instead of \
         CiphertextForRecipient: the recipient was ignored, so the answer is refused"
    )]
    RecipientIgnored { key_id: String },
    #[error("KMS answered Decrypt for key {key_id} without CiphertextForRecipient")]
    MissingCiphertextForRecipient { key_id: String },
    #[error(
        "KMS answered Decrypt for key {key_id} without a KeyId (absent or empty), which \
         every Decrypt response carries, so the response is malformed"
    )]
    MissingKeyId { key_id: String },
    #[error("KMS responded to Decrypt for key {key_id} with HTTP {status}, but {problem}")]
    MalformedResponse {
        key_id: String,
        status: u16,
        problem: String,
    },
    #[error(
        "KMS response from {endpoint} exceeds the {} MiB limit, so the broker stopped \
         reading it and did not retry",
        limit / (1024 * 1024)
    )]
    ResponseTooLarge { endpoint: String, limit: usize },
    #[error(
        "KMS is throttling or unavailable at {endpoint} ({code}) after {}: {message}",
        attempts_text(*attempts)
    )]
    Unavailable {
        endpoint: String,
        code: String,
        message: String,
        attempts: u32,
    },
    #[error(
        "could not load AWS credentials for KMS: {detail}; set them in the environment or a \
         profile, or, for instance metadata, give the parent instance an instance profile \
         role and a --route for 169.254.169.254:80"
    )]
    Credentials { detail: String },
    #[error("KMS endpoint {endpoint} unreachable after {}: {detail}", attempts_text(*attempts))]
    Unreachable {
        endpoint: String,
        detail: String,
        attempts: u32,
    },
    #[error("KMS request to {endpoint} timed out after {}: {detail}", attempts_text(*attempts))]
    Timeout {
        endpoint: String,
        detail: String,
        attempts: u32,
    },
    #[error("KMS request could not be made: {detail}")]
    Request { detail: String },
}

impl KmsError {
    /// Exit code per the broker's contract: 1 denied, 2 configuration, 3 upstream failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            KmsError::NoRegion
            | KmsError::NoAwsEndpoint { .. }
            | KmsError::EmptyRegionVariable { .. }
            | KmsError::InvalidRegion { .. }
            | KmsError::InsecureEndpoint { .. }
            | KmsError::InvalidEndpointUrl { .. }
            | KmsError::InvalidProfileEndpointUrl { .. }
            | KmsError::SimulatorWithAwsKms { .. }
            | KmsError::SimulatorRouteToAws { .. } => 2,
            KmsError::AccessDenied { .. } | KmsError::KeyIdMismatch { .. } => 1,
            _ => 3,
        }
    }

    pub(crate) fn from_sdk(
        error: SdkError<DecryptError>,
        key_id: &str,
        endpoint: &str,
        attempts: u32,
    ) -> Self {
        let detail = crate::error_text::one_line(&error);
        if is_credentials_error(&error) {
            return KmsError::Credentials { detail };
        }
        if let Some(limit) = response_limit_exceeded(&error) {
            return KmsError::ResponseTooLarge {
                endpoint: endpoint.to_owned(),
                limit,
            };
        }
        match &error {
            SdkError::ServiceError(service) => {
                let inner = service.err();
                let status = service.raw().status().as_u16();
                let Some(code) = inner.code() else {
                    // Without an error code the SDK could not read the response, so the
                    // problem is named from the status and the body.
                    let problem =
                        describe_unreadable_response(status, service.raw().body().bytes());
                    return Self::from_unreadable_response(
                        problem, status, key_id, endpoint, attempts,
                    );
                };
                let code = clean_remote_text(code, MAX_CODE_CHARS);
                let message = match inner.message() {
                    Some(message) => clean_remote_text(message, MAX_MESSAGE_CHARS),
                    None => "no message".to_owned(),
                };
                Self::from_service_code(code, message, status, key_id, endpoint, attempts)
            }
            SdkError::TimeoutError(_) => KmsError::Timeout {
                endpoint: endpoint.to_owned(),
                detail,
                attempts,
            },
            SdkError::DispatchFailure(dispatch) if dispatch.is_timeout() => KmsError::Timeout {
                endpoint: endpoint.to_owned(),
                detail,
                attempts,
            },
            SdkError::DispatchFailure(dispatch) if dispatch.is_io() => KmsError::Unreachable {
                endpoint: endpoint.to_owned(),
                detail,
                attempts,
            },
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => KmsError::Unreachable {
                endpoint: endpoint.to_owned(),
                detail,
                attempts,
            },
            _ => KmsError::Request { detail },
        }
    }

    /// Maps a response without an error code: a 5xx or 429 is KMS being unavailable (and was
    /// retried), any other status a malformed response.
    fn from_unreadable_response(
        problem: String,
        status: u16,
        key_id: &str,
        endpoint: &str,
        attempts: u32,
    ) -> Self {
        if status >= 500 || status == 429 {
            return KmsError::Unavailable {
                endpoint: endpoint.to_owned(),
                code: format!("HTTP {status}"),
                message: problem,
                attempts,
            };
        }
        KmsError::MalformedResponse {
            key_id: key_id.to_owned(),
            status,
            problem,
        }
    }

    fn from_service_code(
        code: String,
        message: String,
        status: u16,
        key_id: &str,
        endpoint: &str,
        attempts: u32,
    ) -> Self {
        let key_id = key_id.to_owned();
        match code.as_str() {
            "AccessDeniedException" => KmsError::AccessDenied { key_id, message },
            "InvalidCiphertextException" | "IncorrectKeyException" | "InvalidKeyUsageException" => {
                KmsError::InvalidCiphertext {
                    key_id,
                    code,
                    message,
                }
            }
            "NotFoundException" => KmsError::NotFound {
                key_id,
                message,
                aws_endpoint: is_aws_endpoint(endpoint),
            },
            "DisabledException" | "KMSInvalidStateException" | "KeyUnavailableException" => {
                KmsError::KeyUnusable {
                    key_id,
                    code,
                    message,
                }
            }
            "ThrottlingException"
            | "LimitExceededException"
            | "KMSInternalException"
            | "DependencyTimeoutException" => KmsError::Unavailable {
                endpoint: endpoint.to_owned(),
                code,
                message,
                attempts,
            },
            _ if status >= 500 || status == 429 => KmsError::Unavailable {
                endpoint: endpoint.to_owned(),
                code,
                message,
                attempts,
            },
            _ => KmsError::Service {
                key_id,
                code,
                message,
            },
        }
    }
}

/// "1 attempt", "5 attempts".
fn attempts_text(attempts: u32) -> String {
    if attempts == 1 {
        "1 attempt".to_owned()
    } else {
        format!("{attempts} attempts")
    }
}

/// Appended to NotFound for an endpoint that is not AWS.
const LOCALSTACK_RESTART_HINT: &str = "; if the endpoint is LocalStack: it keeps no keys \
    across restarts, so a ciphertext made before a restart cannot be decrypted (create the key \
    and encrypt the secret again)";

/// Returns the limit in bytes if the routed transport stopped reading a response because it
/// was too large.
fn response_limit_exceeded(error: &(dyn Error + 'static)) -> Option<usize> {
    let mut current: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(item) = current {
        if let Some(TransportError::ResponseTooLarge { limit, .. }) = item.downcast_ref() {
            return Some(*limit);
        }
        current = item.source();
    }
    None
}

fn is_credentials_error(error: &(dyn Error + 'static)) -> bool {
    let mut current: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(item) = current {
        if item.downcast_ref::<CredentialsError>().is_some() {
            return true;
        }
        current = item.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(code: &str, status: u16) -> KmsError {
        KmsError::from_service_code(code.into(), "m".into(), status, "alias/app", "http://x", 5)
    }

    #[test]
    fn maps_access_denied_to_exit_code_1() {
        assert!(matches!(
            map("AccessDeniedException", 400),
            KmsError::AccessDenied { .. }
        ));
        assert_eq!(map("AccessDeniedException", 400).exit_code(), 1);
    }

    #[test]
    fn maps_invalid_ciphertext_with_algorithm_hint() {
        let error = map("InvalidCiphertextException", 400);
        assert!(error.to_string().contains("encryption_algorithm"));
        assert_eq!(error.exit_code(), 3);
        assert!(matches!(
            map("IncorrectKeyException", 400),
            KmsError::InvalidCiphertext { .. }
        ));
    }

    #[test]
    fn maps_throttling_and_5xx_to_unavailable() {
        assert!(matches!(
            map("ThrottlingException", 400),
            KmsError::Unavailable { .. }
        ));
        assert!(matches!(
            map("SomethingNew", 503),
            KmsError::Unavailable { .. }
        ));
        assert_eq!(map("ThrottlingException", 400).exit_code(), 3);
    }

    #[test]
    fn maps_not_found_with_key_id() {
        let error = map("NotFoundException", 400);
        assert!(error.to_string().contains("alias/app"));
        assert_eq!(error.exit_code(), 3);
    }

    #[test]
    fn adds_localstack_hint_for_local_endpoint() {
        let error = map("NotFoundException", 400);
        assert!(error.to_string().contains("LocalStack"), "{error}");
        assert!(error.to_string().contains("restart"), "{error}");
    }

    #[test]
    fn leaves_localstack_hint_out_for_aws_endpoint() {
        let error = KmsError::from_service_code(
            "NotFoundException".into(),
            "Key 'arn:aws:kms:us-east-1:111122223333:key/a' does not exist".into(),
            400,
            "alias/app",
            "https://kms.us-east-1.amazonaws.com",
            1,
        );
        assert!(!error.to_string().contains("LocalStack"), "{error}");
    }

    #[test]
    fn maps_unreadable_4xx_and_2xx_to_malformed_response() {
        for status in [200, 400] {
            let error = KmsError::from_unreadable_response(
                "the body is not JSON".into(),
                status,
                "alias/app",
                "http://x",
                1,
            );
            let message = error.to_string();
            assert!(
                matches!(error, KmsError::MalformedResponse { .. }),
                "{message}"
            );
            assert!(message.contains(&format!("HTTP {status}")), "{message}");
            assert!(message.contains("the body is not JSON"), "{message}");
            assert_eq!(error.exit_code(), 3);
        }
    }

    #[test]
    fn maps_unreadable_5xx_to_unavailable() {
        let error = KmsError::from_unreadable_response(
            "the body is not JSON".into(),
            502,
            "alias/app",
            "http://x",
            5,
        );
        assert!(matches!(error, KmsError::Unavailable { .. }), "{error}");
        assert!(error.to_string().contains("HTTP 502"), "{error}");
    }

    #[test]
    fn reports_limit_of_too_large_response_in_mib() {
        let error = KmsError::ResponseTooLarge {
            endpoint: "https://kms.us-east-1.amazonaws.com".into(),
            limit: 1024 * 1024,
        };
        assert!(error.to_string().contains("1 MiB limit"), "{error}");
        assert!(error.to_string().contains("did not retry"), "{error}");
        assert_eq!(error.exit_code(), 3);
    }
}

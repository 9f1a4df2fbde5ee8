//! AWS KMS `Decrypt` with `Recipient`: the only KMS call the broker makes.
//!
//! The request carries the attestation document, so KMS responds with
//! `CiphertextForRecipient` (a CMS envelope for the enclave's RSA key) instead of plaintext.
//! Endpoint, region and credentials come from the standard AWS configuration; the endpoint is
//! resolved here once and then set explicitly, so the scheme check of the trust model and the
//! request go to the same place.

mod endpoint;
mod error;
mod profile;
mod region;
mod response;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{EncryptionAlgorithmSpec, KeyEncryptionMechanism, RecipientInfo};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use tracing::{debug, info};

pub use endpoint::{check_endpoint_scheme, check_simulator_route, is_aws_host};
pub use error::KmsError;

/// Raw bytes of an attestation document (COSE_Sign1 CBOR), never its base64 form. The SDK
/// base64-encodes a `Blob` for the JSON body, so keeping raw bytes in this type makes double
/// encoding impossible.
pub struct AttestationDocumentBytes(Vec<u8>);

impl AttestationDocumentBytes {
    pub fn new(raw_cose_sign1: Vec<u8>) -> Self {
        Self(raw_cose_sign1)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AttestationDocumentBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AttestationDocumentBytes({} bytes)", self.0.len())
    }
}

/// Settings of the KMS client: endpoint checks, retries and timeouts.
#[derive(Debug, Clone)]
pub struct KmsSettings {
    /// The attester is the simulator. Its documents are not signed by AWS, so AWS KMS is
    /// rejected as endpoint and a local `http://` endpoint is accepted. With a real attester
    /// TLS must end inside the enclave, or the parent could forge `CiphertextForRecipient`.
    pub simulated_attester: bool,
    /// Attempts per request for throttling, 5xx and connection failures (the SDK's standard
    /// retry strategy: exponential backoff with jitter).
    pub max_attempts: u32,
    /// Deadline for one request including every retry.
    pub operation_timeout: Duration,
    pub connect_timeout: Duration,
    /// Region to use instead of the one in the AWS configuration.
    pub region: Option<String>,
}

impl Default for KmsSettings {
    fn default() -> Self {
        Self {
            simulated_attester: false,
            max_attempts: 5,
            operation_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            region: None,
        }
    }
}

/// One `Decrypt` request. `key_id` is always sent: KMS needs it for asymmetric keys, and it
/// stops a ciphertext of another key from being decrypted under this rule.
pub struct DecryptRequest<'a> {
    pub ciphertext_blob: &'a [u8],
    pub key_id: &'a str,
    pub encryption_context: &'a BTreeMap<String, String>,
    /// KMS `EncryptionAlgorithm` name; `None` leaves it out (KMS uses `SYMMETRIC_DEFAULT`).
    pub encryption_algorithm: Option<&'a str>,
    pub attestation_document: &'a AttestationDocumentBytes,
}

/// The part of a `Decrypt` response the broker uses.
pub struct RecipientCiphertext {
    /// `KeyId` from the response: the ARN of the key KMS actually used.
    pub key_id: String,
    /// `CiphertextForRecipient`: a CMS EnvelopedData for the enclave's RSA key.
    pub ciphertext_for_recipient: Vec<u8>,
}

/// A KMS client bound to one resolved endpoint.
pub struct KmsClient {
    client: aws_sdk_kms::Client,
    endpoint: String,
}

impl KmsClient {
    /// Loads region, endpoint and credentials from the standard AWS configuration and
    /// checks the endpoint: the endpoint variables must hold valid URLs, the scheme must fit
    /// the trust model, and a simulated enclave must not be sent to AWS KMS.
    /// With `http_client`, every connection the SDK makes (KMS, and instance metadata for
    /// credentials) goes through it; without, the SDK's HTTPS client is used, with response
    /// bodies capped as the routed client caps them.
    pub async fn from_environment(
        settings: &KmsSettings,
        http_client: Option<SharedHttpClient>,
    ) -> Result<Self, KmsError> {
        // Checked before the SDK reads them: it would replace an invalid value with AWS KMS.
        let kms_endpoint_variable = endpoint::read_endpoint_variables()?;
        if !endpoint::is_endpoint_variable_set() {
            profile::check_profile_endpoint().await?;
        }
        if settings.region.is_none() {
            region::check_region_variables()?;
        }

        let retry = RetryConfig::standard()
            .with_max_attempts(settings.max_attempts)
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_secs(5));
        let timeouts = TimeoutConfig::builder()
            .operation_timeout(settings.operation_timeout)
            .connect_timeout(settings.connect_timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry)
            .timeout_config(timeouts);
        if let Some(region) = &settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let http_client = http_client.unwrap_or_else(crate::transport::default_https_client);
        loader = loader.http_client(http_client);
        let sdk_config = loader.load().await;

        let region = region::check_region(sdk_config.region())?;
        let aws_default = endpoint::aws_regional_endpoint(
            &region,
            sdk_config.use_fips().unwrap_or(false),
            sdk_config.use_dual_stack().unwrap_or(false),
        )
        .await?;
        let resolved = endpoint::resolve_endpoint(
            kms_endpoint_variable,
            sdk_config.endpoint_url(),
            aws_default,
        );
        if settings.simulated_attester {
            endpoint::check_simulator_endpoint(&resolved)?;
        }
        let endpoint = resolved.url;
        check_endpoint_scheme(&endpoint, settings.simulated_attester)?;
        info!(%endpoint, %region, "KMS endpoint resolved");

        let config = aws_sdk_kms::config::Builder::from(&sdk_config)
            .endpoint_url(endpoint.clone())
            .build();
        Ok(Self {
            client: aws_sdk_kms::Client::from_conf(config),
            endpoint,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Calls `Decrypt` with `Recipient` and checks that the response is for the recipient.
    pub async fn decrypt_for_recipient(
        &self,
        request: &DecryptRequest<'_>,
    ) -> Result<RecipientCiphertext, KmsError> {
        let recipient = RecipientInfo::builder()
            .key_encryption_algorithm(KeyEncryptionMechanism::RsaesOaepSha256)
            .attestation_document(Blob::new(request.attestation_document.as_bytes()))
            .build();
        let context: HashMap<String, String> = request
            .encryption_context
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();

        let mut call = self
            .client
            .decrypt()
            .ciphertext_blob(Blob::new(request.ciphertext_blob))
            .key_id(request.key_id)
            .recipient(recipient);
        if !context.is_empty() {
            call = call.set_encryption_context(Some(context));
        }
        if let Some(algorithm) = request.encryption_algorithm {
            call = call.encryption_algorithm(EncryptionAlgorithmSpec::from(algorithm));
        }

        debug!(
            key_id = request.key_id,
            "calling KMS Decrypt with Recipient"
        );
        let attempts = AttemptCounter::default();
        let output = call
            .customize()
            .interceptor(attempts.clone())
            .send()
            .await
            .map_err(|error| {
                KmsError::from_sdk(error, request.key_id, &self.endpoint, attempts.count())
            })?;
        if attempts.count() > 1 {
            info!(
                key_id = request.key_id,
                attempts = attempts.count(),
                "KMS Decrypt succeeded after retries"
            );
        }

        // A response with `Plaintext` means KMS ignored the recipient; it must not be used,
        // and the plaintext is dropped here without being looked at.
        if output.plaintext().is_some() {
            return Err(KmsError::RecipientIgnored {
                key_id: request.key_id.to_owned(),
            });
        }
        let ciphertext_for_recipient = output
            .ciphertext_for_recipient()
            .ok_or_else(|| KmsError::MissingCiphertextForRecipient {
                key_id: request.key_id.to_owned(),
            })?
            .as_ref()
            .to_vec();
        // KMS always names the key it used, so a response without `KeyId` is malformed.
        let key_id = output
            .key_id()
            .filter(|key_id| !key_id.is_empty())
            .ok_or_else(|| KmsError::MissingKeyId {
                key_id: request.key_id.to_owned(),
            })?
            .to_owned();
        Ok(RecipientCiphertext {
            key_id,
            ciphertext_for_recipient,
        })
    }
}

/// Counts the attempts the SDK makes for one operation, retries included.
#[derive(Debug, Clone, Default)]
struct AttemptCounter(Arc<AtomicU32>);

impl AttemptCounter {
    fn count(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Intercept for AttemptCounter {
    fn name(&self) -> &'static str {
        "AttemptCounter"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Checks the response `KeyId` against the rule's key when the rule names a full key ARN.
/// The parent controls the credentials and so the account; a matching ARN proves the
/// secret was released by the key the policy names.
pub fn check_response_key_id(expected_arn: &str, found: &str) -> Result<(), KmsError> {
    if found == expected_arn {
        return Ok(());
    }
    Err(KmsError::KeyIdMismatch {
        expected: expected_arn.to_owned(),
        found: found.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_response_for_another_key() {
        let expected = "arn:aws:kms:us-east-1:111122223333:key/a";
        let error = check_response_key_id(expected, "arn:aws:kms:us-east-1:444455556666:key/a")
            .unwrap_err();
        assert!(error.to_string().contains("444455556666"));
        assert_eq!(error.exit_code(), 1);
        assert!(check_response_key_id(expected, expected).is_ok());
    }

    #[test]
    fn debug_of_attestation_document_shows_length_only() {
        let document = AttestationDocumentBytes::new(vec![1, 2, 3]);
        assert_eq!(format!("{document:?}"), "AttestationDocumentBytes(3 bytes)");
    }
}

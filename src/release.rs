//! The main job: load the release policy, attest a fresh key pair, verify the document,
//! run the release gate, decrypt every selected secret through KMS with `Recipient`, open
//! the envelopes, run the gate again and deliver, all or nothing.

mod gate;
pub mod keygen;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::attestation::pcr::PcrIndex;
use crate::attestation::source::{AttestationRequest, Attester, AttesterError};
use crate::attestation::verify::{TrustRoot, VerifiedDocument, VerifyError, VerifyOptions, verify};
use crate::deliver::{self, DeliverError, Item, Mode};
use crate::envelope::{self, EnvelopeError, RsaBits};
use crate::kms::{AttestationDocumentBytes, DecryptRequest, KmsClient, KmsError, KmsSettings};
use crate::policy::{PolicyError, ReleasePolicy, SecretSpec, TrustRootSpec};
use crate::secret::SecretBytes;
use crate::transport::{RoutedHttpClient, TransportError};

pub use gate::GateDenied;
use keygen::KeygenError;

/// Length of the nonce the broker puts in each attestation request.
pub const NONCE_LEN: usize = 32;

/// Delivery target of the released secrets.
#[derive(Debug, Clone)]
pub enum Delivery {
    Files {
        out_dir: PathBuf,
    },
    Env,
    Json,
    Exec {
        program: OsString,
        args: Vec<OsString>,
    },
}

impl Delivery {
    fn mode(&self) -> Mode {
        match self {
            Delivery::Files { .. } => Mode::Files,
            Delivery::Env => Mode::Env,
            Delivery::Json => Mode::Json,
            Delivery::Exec { .. } => Mode::Exec,
        }
    }
}

/// Everything one run of `fetch` or `exec` needs.
pub struct ReleaseOptions {
    /// The release policy, loaded (step 1) before the attester is opened.
    pub policy: ReleasePolicy,
    /// Where the policy came from, for messages.
    pub policy_path: PathBuf,
    pub attester: Box<dyn Attester>,
    pub rsa_bits: RsaBits,
    pub delivery: Delivery,
    pub kms: KmsSettings,
    /// The `--route` client for KMS and credentials; `None` connects directly (local
    /// development).
    pub routes: Option<RoutedHttpClient>,
    /// Maximum wait for RSA key generation.
    pub keygen_deadline: Duration,
    /// Maximum wait for the attester's document.
    pub attest_deadline: Duration,
    /// Clock difference tolerated when checking certificate validity and document age.
    pub skew: Duration,
}

/// Failure of the main job. Nothing was delivered when one is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    #[error("{0}")]
    Policy(#[from] PolicyError),
    #[error("no secret in {policy} can be delivered with {mode}: {requirement}")]
    NothingToDeliver {
        policy: String,
        mode: &'static str,
        requirement: &'static str,
    },
    #[error("development trust root {path}: {detail}")]
    TrustRoot { path: String, detail: String },
    #[error("KMS endpoint: {0}")]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Keygen(#[from] KeygenError),
    #[error("attester {attester} failed: {source}")]
    Attester {
        attester: &'static str,
        source: AttesterError,
    },
    #[error(
        "attester {attester} returned no document within {} s",
        deadline.as_secs_f64()
    )]
    AttesterTimeout {
        attester: &'static str,
        deadline: Duration,
    },
    #[error("attestation document rejected: {0}")]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Gate(#[from] GateDenied),
    /// Setting up the KMS client failed (endpoint, region, credentials), before any secret.
    #[error("{0}")]
    KmsSetup(KmsError),
    #[error("secret {name}: {source}")]
    Kms { name: String, source: KmsError },
    #[error("secret {name}: could not open CiphertextForRecipient: {source}")]
    Envelope { name: String, source: EnvelopeError },
    #[error(transparent)]
    Deliver(#[from] DeliverError),
}

impl ReleaseError {
    /// Exit code per the broker's contract: 1 denied, 2 usage or input, 3 upstream.
    pub fn exit_code(&self) -> i32 {
        match self {
            ReleaseError::Policy(_)
            | ReleaseError::NothingToDeliver { .. }
            | ReleaseError::TrustRoot { .. }
            | ReleaseError::Transport(_) => 2,
            ReleaseError::Keygen(_) | ReleaseError::AttesterTimeout { .. } => 3,
            ReleaseError::Attester { source, .. } => source.exit_code(),
            ReleaseError::Verify(_) | ReleaseError::Gate(_) => 1,
            ReleaseError::KmsSetup(source) | ReleaseError::Kms { source, .. } => source.exit_code(),
            ReleaseError::Envelope { .. } => 3,
            ReleaseError::Deliver(error) => error.exit_code(),
        }
    }
}

impl ReleaseError {
    fn is_kms_access_denied(&self) -> bool {
        matches!(
            self,
            ReleaseError::Kms {
                source: KmsError::AccessDenied { .. },
                ..
            }
        )
    }
}

/// Logs the image measurements KMS saw, so an operator can compare them with the PCRs in
/// the key policy (for example the Terraform variables) after an AccessDenied.
fn log_sent_measurements(verified: &VerifiedDocument) {
    let document = verified.document();
    let pcr = |index: u64| {
        PcrIndex::new(index)
            .ok()
            .and_then(|index| document.pcr(index))
            .map(|value| value.to_hex())
            .unwrap_or_else(|| "(absent)".to_owned())
    };
    warn!(
        pcr0 = %pcr(0),
        pcr1 = %pcr(1),
        pcr2 = %pcr(2),
        pcr8 = %pcr(8),
        "KMS denied the request; the attestation document sent carried these measurements"
    );
}

/// Summary of a successful run: names and paths only, because values never leave `deliver`.
#[derive(Debug)]
pub struct Released {
    pub secret_names: Vec<String>,
    pub files: Vec<PathBuf>,
}

/// Runs steps 1–8 of the main job. With `Delivery::Exec` it returns only on failure.
pub async fn run(options: ReleaseOptions) -> Result<Released, ReleaseError> {
    // 1. Policy, and the secrets this delivery mode takes.
    let policy = &options.policy;
    let mode = options.delivery.mode();
    let selected = select_secrets(policy, mode, &options.policy_path)?;
    let rules: BTreeSet<String> = selected
        .iter()
        .map(|secret| secret.key().to_owned())
        .collect();
    let trust_roots = load_trust_roots(policy)?;
    warn_about_key_aliases(policy, &rules);

    // The KMS client, and its route, are checked before any key is generated.
    if let Some(routes) = &options.routes
        && options.attester.is_simulator()
    {
        for (destination, target) in routes.routes() {
            crate::kms::check_simulator_route(&destination, target)
                .map_err(ReleaseError::KmsSetup)?;
        }
    }
    let kms = KmsClient::from_environment(
        &KmsSettings {
            simulated_attester: options.attester.is_simulator(),
            ..options.kms.clone()
        },
        options.routes.clone().map(RoutedHttpClient::into_shared),
    )
    .await
    .map_err(ReleaseError::KmsSetup)?;
    if let Some(routes) = &options.routes {
        routes.check_url(kms.endpoint())?;
    }

    // 2. Recipient key pair, under a deadline.
    let keygen_started = Instant::now();
    let recipient_key = tokio::task::block_in_place(|| {
        keygen::generate_recipient_key(options.rsa_bits, options.keygen_deadline)
    })?;
    info!(
        bits = options.rsa_bits.bits(),
        elapsed_ms = keygen_started.elapsed().as_millis() as u64,
        "recipient key pair generated"
    );
    let public_key = recipient_key.public_key_der();

    // 3. Attestation document for that key and a fresh nonce.
    let mut nonce = vec![0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| KeygenError::Stopped)?;
    let request = AttestationRequest {
        public_key: Some(public_key.clone()),
        user_data: None,
        nonce: Some(nonce.clone()),
    };
    let attester_name = options.attester.name();
    let attesting = options.attester.attest(&request);
    let document_bytes = tokio::time::timeout(options.attest_deadline, attesting)
        .await
        .map_err(|_| ReleaseError::AttesterTimeout {
            attester: attester_name,
            deadline: options.attest_deadline,
        })?
        .map_err(|source| ReleaseError::Attester {
            attester: attester_name,
            source,
        })?;

    // 4. Verify the document and run the gate before contacting KMS.
    let now_ms = crate::clock::now_ms();
    let max_age = rules
        .iter()
        .filter_map(|name| policy.key_rule(name))
        .map(|rule| rule.max_age())
        .min();
    let verify_options = VerifyOptions {
        trust_roots,
        time_ms: now_ms,
        skew: options.skew,
        max_age,
        expected_nonce: Some(nonce),
        expected_public_key: Some(public_key),
        expected_pcrs: Default::default(),
        require_enclave: true,
    };
    let verified = verify(&document_bytes, &verify_options)?;
    info!(
        root = %verified.trust_root_label(),
        module_id = %verified.document().module_id(),
        "attestation document verified"
    );
    gate::check(&verified, policy, &rules)?;

    // 5–6. Decrypt each secret for the recipient and open its envelope.
    let attestation_document = AttestationDocumentBytes::new(document_bytes);
    let mut values: Vec<SecretBytes> = Vec::with_capacity(selected.len());
    for secret in &selected {
        let result =
            decrypt_secret(&kms, policy, secret, &attestation_document, &recipient_key).await;
        match result {
            Ok(value) => values.push(value),
            Err(error) => {
                if error.is_kms_access_denied() {
                    log_sent_measurements(&verified);
                }
                return Err(error);
            }
        }
    }

    // 7. The gate again, covering every secret, then delivery.
    gate::check(&verified, policy, &rules)?;
    let items: Vec<Item<'_>> = selected
        .iter()
        .zip(&values)
        .map(|(secret, value)| Item {
            name: secret.name(),
            file: secret.file().map(|path| path.as_path()),
            env: secret.env(),
            value,
        })
        .collect();
    let secret_names = selected
        .iter()
        .map(|secret| secret.name().to_owned())
        .collect();
    deliver_items(&options.delivery, &items, secret_names)
}

fn select_secrets<'a>(
    policy: &'a ReleasePolicy,
    mode: Mode,
    policy_path: &Path,
) -> Result<Vec<&'a SecretSpec>, ReleaseError> {
    let selected: Vec<&SecretSpec> = policy
        .secrets()
        .iter()
        .filter(|secret| mode.selects(secret.file().is_some(), secret.env().is_some()))
        .collect();
    if selected.is_empty() {
        let (mode_name, requirement) = match mode {
            Mode::Files => ("--format files", "no secret has a \"file\" target"),
            Mode::Env => ("--format env", "no secret has an \"env\" target"),
            Mode::Exec => ("exec", "no secret has an \"env\" target"),
            Mode::Json => ("--format json", "the policy has no secrets"),
        };
        return Err(ReleaseError::NothingToDeliver {
            policy: policy_path.display().to_string(),
            mode: mode_name,
            requirement,
        });
    }
    Ok(selected)
}

/// Warns once per key rule that names an alias or key id: only a full key ARN lets the
/// broker check which key (and account) KMS actually used.
fn warn_about_key_aliases(policy: &ReleasePolicy, rules: &BTreeSet<String>) {
    for name in rules {
        if let Some(rule) = policy.key_rule(name)
            && !rule.is_key_arn()
        {
            warn!(
                rule = %name,
                key_id = rule.key_id(),
                "key rule names an alias or key id, not a key ARN, so the key in KMS's answer \
                 cannot be checked"
            );
        }
    }
}

fn load_trust_roots(policy: &ReleasePolicy) -> Result<Vec<TrustRoot>, ReleaseError> {
    let mut roots = Vec::new();
    for spec in policy.trust_roots() {
        match spec {
            TrustRootSpec::AwsNitroEnclavesG1 => roots.push(TrustRoot::aws_nitro_enclaves_g1()),
            TrustRootSpec::DevRootPem { path, pem } => {
                warn!(
                    path = %path.display(),
                    "the policy trusts a development root: documents from the simulator are \
                     accepted, so this policy must never be used in production"
                );
                let label = format!("development root {}", path.display());
                let root =
                    TrustRoot::from_pem(pem, label).map_err(|error| ReleaseError::TrustRoot {
                        path: path.display().to_string(),
                        detail: error.to_string(),
                    })?;
                roots.push(root);
            }
        }
    }
    Ok(roots)
}

async fn decrypt_secret(
    kms: &KmsClient,
    policy: &ReleasePolicy,
    secret: &SecretSpec,
    attestation_document: &AttestationDocumentBytes,
    recipient_key: &envelope::RecipientKey,
) -> Result<SecretBytes, ReleaseError> {
    let kms_error = |source| ReleaseError::Kms {
        name: secret.name().to_owned(),
        source,
    };
    let Some(rule) = policy.key_rule(secret.key()) else {
        return Err(ReleaseError::Gate(GateDenied {
            rule: secret.key().to_owned(),
            reason: "key rule is not defined in the policy".to_owned(),
        }));
    };

    let request = DecryptRequest {
        ciphertext_blob: secret.ciphertext(),
        key_id: rule.key_id(),
        encryption_context: secret.encryption_context(),
        encryption_algorithm: secret
            .encryption_algorithm()
            .map(|algorithm| algorithm.as_str()),
        attestation_document,
    };
    let answer = kms
        .decrypt_for_recipient(&request)
        .await
        .map_err(kms_error)?;

    if rule.is_key_arn() {
        crate::kms::check_response_key_id(rule.key_id(), &answer.key_id).map_err(kms_error)?;
    }

    let value =
        envelope::open(&answer.ciphertext_for_recipient, recipient_key).map_err(|source| {
            ReleaseError::Envelope {
                name: secret.name().to_owned(),
                source,
            }
        })?;
    info!(secret = %secret.name(), rule = %secret.key(), "secret decrypted for the recipient");
    Ok(value)
}

fn deliver_items(
    delivery: &Delivery,
    items: &[Item<'_>],
    secret_names: Vec<String>,
) -> Result<Released, ReleaseError> {
    match delivery {
        Delivery::Files { out_dir } => {
            let interrupt = deliver::interrupt::process_interrupt();
            let files = deliver::write_files_interruptible(out_dir, items, interrupt)?;
            info!(count = files.len(), out_dir = %out_dir.display(), "secrets written");
            Ok(Released {
                secret_names,
                files,
            })
        }
        Delivery::Env => {
            let text = deliver::render_env_lines(items)?;
            deliver::print(&text, deliver::interrupt::process_interrupt())?;
            Ok(Released {
                secret_names,
                files: Vec::new(),
            })
        }
        Delivery::Json => {
            let text = deliver::render_json(items)?;
            deliver::print(&text, deliver::interrupt::process_interrupt())?;
            Ok(Released {
                secret_names,
                files: Vec::new(),
            })
        }
        Delivery::Exec { program, args } => {
            // A signal before the exec still ends this process (nothing was delivered); one
            // after it goes to the program.
            info!(program = %program.to_string_lossy(), count = items.len(), "executing program with secrets in its environment");
            Err(ReleaseError::Deliver(deliver::exec(program, args, items)))
        }
    }
}

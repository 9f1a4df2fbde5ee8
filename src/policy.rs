//! Release policies: which enclave measurements may receive which secrets.
//!
//! A release policy is a JSON file baked into the enclave image, so it is trusted. The loader
//! still rejects anything it does not understand, because a typo that is silently ignored in a
//! security setting can release secrets to the wrong image. The format:
//!
//! ```json
//! { "trust": { "roots": ["aws-nitro-enclaves-g1"] },
//!   "keys": { "app": { "key_id": "arn:aws:kms:us-east-1:111122223333:key/…",
//!                      "allow": [ { "pcrs": { "0": "<96 hex>", "8": "<96 hex>" } } ],
//!                      "max_age_seconds": 300, "allow_debug": false } },
//!   "secrets": [ { "name": "DB_PASSWORD", "key": "app", "ciphertext_file": "secrets/db.kms",
//!                  "encryption_context": { "app": "billing" }, "env": "DB_PASSWORD" } ] }
//! ```
//!
//! [`ReleasePolicy::load`] checks the whole document and either returns a policy in which
//! every value is valid, or a [`PolicyError`] that lists every problem with its JSON path.
//! [`evaluate`] then decides, for one key rule, whether a verified attestation document's
//! PCRs allow the release. `policies/schema.json` describes the same format as a JSON Schema.

mod algorithm;
pub mod audit;
mod ciphertext;
mod delivery;
mod error;
mod evaluate;
mod json;
mod key_id;
pub mod key_policy;
mod key_rule;
mod key_rules;
mod secret_spec;
pub mod set_pcrs;
mod trust;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use algorithm::EncryptionAlgorithm;
pub use ciphertext::MAX_CIPHERTEXT_LEN;
pub use delivery::{InvalidRelativePath, RelativePath, is_env_name};
pub use error::{PolicyError, Problem};
pub use evaluate::{Decision, Denial, DenialReason, EntryComparison, PcrMismatch, evaluate};
pub use key_rule::{AllowEntry, DEBUG_MODE_ZERO_PCRS, DEFAULT_MAX_AGE, IMAGE_PCRS, KeyRule};
pub use key_rules::{AttestationRules, key_rules_from_str, load_key_rules};
pub use secret_spec::SecretSpec;
pub use trust::{AWS_NITRO_ENCLAVES_G1, TrustRootSpec};

use json::{JsonPath, Problems};

const TOP_LEVEL_FIELDS: &[&str] = &["trust", "keys", "secrets"];

/// A release policy in which every field has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleasePolicy {
    trust_roots: Vec<TrustRootSpec>,
    keys: BTreeMap<String, KeyRule>,
    secrets: Vec<SecretSpec>,
}

impl ReleasePolicy {
    /// Reads and checks a policy file. Relative paths inside it (`dev_root_pem`,
    /// `ciphertext_file`) resolve against the folder that contains `path`, and the files they
    /// name are read now.
    pub fn load(path: &Path) -> Result<ReleasePolicy, PolicyError> {
        let text =
            crate::file_input::read_limited_to_string(path, crate::file_input::MAX_CONFIG_LEN)
                .map_err(|error| {
                    let problem = Problem {
                        path: JsonPath::root().to_string(),
                        message: format!("failed to read {}: {error}", path.display()),
                    };
                    PolicyError::new(Some(path), vec![problem])
                })?;
        let base_dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        Self::parse(&text, base_dir).map_err(|problems| PolicyError::new(Some(path), problems))
    }

    /// Checks a policy given as text, resolving relative paths against `base_dir`.
    pub fn from_json_str(text: &str, base_dir: &Path) -> Result<ReleasePolicy, PolicyError> {
        Self::parse(text, base_dir).map_err(|problems| PolicyError::new(None, problems))
    }

    fn parse(text: &str, base_dir: &Path) -> Result<ReleasePolicy, Vec<Problem>> {
        let root_path = JsonPath::root();
        let mut problems = Problems::default();

        let Some(root) = problems.parse_document(text) else {
            return Err(problems.into_vec());
        };
        let Some(fields) = problems.expect_object(&root, &root_path, TOP_LEVEL_FIELDS) else {
            return Err(problems.into_vec());
        };

        let trust_roots = trust::parse_trust(
            fields.optional("trust"),
            &fields.field_path("trust"),
            base_dir,
            &mut problems,
        );

        let keys = fields
            .required("keys", &mut problems)
            .map(|node| key_rule::parse_keys(node, &fields.field_path("keys"), &mut problems));
        // When `keys` is not an object there are no rule names to check references against,
        // and reporting every secret's `key` on top of that problem would only add noise.
        let rule_names = keys.as_ref().and_then(|keys| keys.names.as_deref());

        let secrets = fields.required("secrets", &mut problems).and_then(|node| {
            secret_spec::parse_secrets(
                node,
                &fields.field_path("secrets"),
                base_dir,
                rule_names,
                &mut problems,
            )
        });

        let keys = keys.and_then(|keys| keys.rules);
        match (trust_roots, keys, secrets) {
            (Some(trust_roots), Some(keys), Some(secrets)) if problems.is_empty() => {
                Ok(ReleasePolicy {
                    trust_roots,
                    keys,
                    secrets,
                })
            }
            _ if problems.is_empty() => {
                // Every parser records a problem before it returns None, so this branch means
                // a loader bug. Reject the policy rather than return it partly checked.
                problems.push(
                    &root_path,
                    "internal error: a section was rejected without a recorded problem",
                );
                Err(problems.into_vec())
            }
            _ => Err(problems.into_vec()),
        }
    }

    /// The accepted root certificates, in policy order. Never empty; defaults to the AWS
    /// Nitro Enclaves root (G1) when the policy gives none.
    pub fn trust_roots(&self) -> &[TrustRootSpec] {
        &self.trust_roots
    }

    /// True when any trust root is a development root. The broker warns on every run then.
    pub fn has_development_root(&self) -> bool {
        self.trust_roots
            .iter()
            .any(TrustRootSpec::is_development_root)
    }

    /// The key rules by name. Never empty.
    pub fn keys(&self) -> &BTreeMap<String, KeyRule> {
        &self.keys
    }

    /// The rule named `name`. Every [`SecretSpec::key`] names an existing rule.
    pub fn key_rule(&self, name: &str) -> Option<&KeyRule> {
        self.keys.get(name)
    }

    /// The secrets, in policy order. Never empty; names, files and environment variables are
    /// each unique.
    pub fn secrets(&self) -> &[SecretSpec] {
        &self.secrets
    }

    /// The secret named `name`.
    pub fn secret(&self, name: &str) -> Option<&SecretSpec> {
        self.secrets.iter().find(|secret| secret.name() == name)
    }
}

/// Turns a file path written in the policy into the path to open: relative paths resolve
/// against `base_dir`, absolute paths are kept.
fn resolve_file_path(text: &str, base_dir: &Path) -> Result<PathBuf, String> {
    if text.is_empty() {
        return Err("path is empty".to_owned());
    }
    if text.contains('\0') {
        return Err("path contains a NUL byte".to_owned());
    }
    let path = Path::new(text);
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(base_dir.join(path))
    }
}

/// Reads a file named by the policy, which must be a regular file: a FIFO or device named in
/// a policy would block or never end. With `limit`, reads at most one byte more than `limit`,
/// so an oversized file is detected without reading all of it.
fn read_file(path: &Path, limit: Option<usize>) -> Result<Vec<u8>, String> {
    let failed = |error: std::io::Error| format!("failed to read {}: {error}", path.display());
    let Some(limit) = limit else {
        return crate::file_input::read_regular_limited(
            path,
            crate::file_input::MAX_SMALL_FILE_LEN,
        )
        .map_err(failed);
    };
    // usize to u64 widens on every platform Rust supports, so `as` cannot truncate here.
    crate::file_input::read_regular_prefix(path, limit as u64 + 1).map_err(failed)
}

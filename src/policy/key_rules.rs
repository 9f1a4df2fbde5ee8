//! Loading only the `keys` section of a release policy, or `keys` and `trust`.
//!
//! The KMS key policy and `set-pcrs` depend on key rules alone. They run where the files that
//! secrets name do not exist yet: the key policy is applied before any ciphertext can be made
//! under that key, and a deployment repository rarely contains the development root. So
//! [`load_key_rules`] checks the document's top level and every key rule exactly as
//! [`ReleasePolicy::load`](super::ReleasePolicy::load) does, but neither checks `trust` and
//! `secrets` nor reads the files they name. [`AttestationRules::load`] also checks `trust` and
//! reads its development roots, for `verify`, which needs both but no ciphertext.

use std::collections::BTreeMap;
use std::path::Path;

use super::error::{PolicyError, Problem};
use super::json::{JsonPath, Problems};
use super::key_rule::{self, KeyRule};
use super::trust::{self, TrustRootSpec};

/// Top-level members of a release policy; anything else is reported as unknown.
const TOP_LEVEL_FIELDS: &[&str] = &["trust", "keys", "secrets"];

/// Reads a release policy file and returns its key rules by name.
pub fn load_key_rules(path: &Path) -> Result<BTreeMap<String, KeyRule>, PolicyError> {
    let text = read_policy_text(path)?;
    parse_key_rules(&text).map_err(|problems| PolicyError::new(Some(path), problems))
}

/// The trust roots and key rules of a release policy: what verifying an attestation
/// document against a key rule needs. The `secrets` section is neither checked nor read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationRules {
    trust_roots: Vec<TrustRootSpec>,
    keys: BTreeMap<String, KeyRule>,
}

impl AttestationRules {
    /// Reads a release policy file and checks its top level, `trust` and `keys` as
    /// [`ReleasePolicy::load`](super::ReleasePolicy::load) does. Development roots are read,
    /// relative to the policy file's folder; files that secrets name are not.
    pub fn load(path: &Path) -> Result<AttestationRules, PolicyError> {
        let text = read_policy_text(path)?;
        let base_dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        parse_attestation_rules(&text, base_dir)
            .map_err(|problems| PolicyError::new(Some(path), problems))
    }

    /// Returns the accepted root certificates, in policy order; see
    /// [`ReleasePolicy::trust_roots`](super::ReleasePolicy::trust_roots).
    pub fn trust_roots(&self) -> &[TrustRootSpec] {
        &self.trust_roots
    }

    /// Returns the key rules by name, at least one.
    pub fn keys(&self) -> &BTreeMap<String, KeyRule> {
        &self.keys
    }

    /// Returns the rule named `name`.
    pub fn key_rule(&self, name: &str) -> Option<&KeyRule> {
        self.keys.get(name)
    }
}

fn read_policy_text(path: &Path) -> Result<String, PolicyError> {
    crate::file_input::read_limited_to_string(path, crate::file_input::MAX_CONFIG_LEN).map_err(
        |error| {
            let problem = Problem {
                path: JsonPath::root().to_string(),
                message: format!("failed to read {}: {error}", path.display()),
            };
            PolicyError::new(Some(path), vec![problem])
        },
    )
}

fn parse_attestation_rules(text: &str, base_dir: &Path) -> Result<AttestationRules, Vec<Problem>> {
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
    let keys = fields.required("keys", &mut problems).and_then(|node| {
        key_rule::parse_keys(node, &fields.field_path("keys"), &mut problems).rules
    });

    match (trust_roots, keys) {
        (Some(trust_roots), Some(keys)) if problems.is_empty() => {
            Ok(AttestationRules { trust_roots, keys })
        }
        _ if problems.is_empty() => {
            // Both parsers record a problem before they return None, so this is a loader bug.
            problems.push(
                &root_path,
                "internal error: a section was rejected without a recorded problem",
            );
            Err(problems.into_vec())
        }
        _ => Err(problems.into_vec()),
    }
}

/// Checks the `keys` section of a release policy given as text.
pub fn key_rules_from_str(text: &str) -> Result<BTreeMap<String, KeyRule>, PolicyError> {
    parse_key_rules(text).map_err(|problems| PolicyError::new(None, problems))
}

fn parse_key_rules(text: &str) -> Result<BTreeMap<String, KeyRule>, Vec<Problem>> {
    let root_path = JsonPath::root();
    let mut problems = Problems::default();

    let Some(root) = problems.parse_document(text) else {
        return Err(problems.into_vec());
    };
    let Some(fields) = problems.expect_object(&root, &root_path, TOP_LEVEL_FIELDS) else {
        return Err(problems.into_vec());
    };
    let rules = fields.required("keys", &mut problems).and_then(|node| {
        key_rule::parse_keys(node, &fields.field_path("keys"), &mut problems).rules
    });

    match rules {
        Some(rules) if problems.is_empty() => Ok(rules),
        _ if problems.is_empty() => {
            // parse_keys records a problem before it returns no rules, so this is a loader bug.
            problems.push(
                &root_path,
                "internal error: keys were rejected without a recorded problem",
            );
            Err(problems.into_vec())
        }
        _ => Err(problems.into_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PCR: &str = "3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a";

    #[test]
    fn ignores_files_that_secrets_name() {
        let text = format!(
            r#"{{"trust": {{"roots": [{{"dev_root_pem": "missing.pem"}}]}},
                "keys": {{"app": {{"key_id": "alias/app", "allow": [{{"pcrs": {{"0": "{PCR}"}}}}]}}}},
                "secrets": [{{"name": "a", "key": "app", "ciphertext_file": "missing.kms", "env": "A"}}]}}"#
        );
        let rules = key_rules_from_str(&text).unwrap();
        assert_eq!(rules.keys().collect::<Vec<_>>(), ["app"]);
    }

    #[test]
    fn reports_invalid_pcr_by_path() {
        let text =
            r#"{"keys": {"app": {"key_id": "alias/app", "allow": [{"pcrs": {"0": "00"}}]}}}"#;
        let error = key_rules_from_str(text).unwrap_err();
        assert_eq!(error.problems()[0].path, "keys.app.allow[0].pcrs.0");
    }

    #[test]
    fn attestation_rules_skip_ciphertext_files() {
        let dir = tempfile::tempdir().unwrap();
        let pem = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/nitro/aws_nitro_enclaves_root_g1.pem");
        std::fs::copy(pem, dir.path().join("root.pem")).unwrap();
        let text = format!(
            r#"{{"trust": {{"roots": [{{"dev_root_pem": "root.pem"}}]}},
                "keys": {{"app": {{"key_id": "alias/app", "allow": [{{"pcrs": {{"0": "{PCR}"}}}}]}}}},
                "secrets": [{{"name": "a", "key": "app", "ciphertext_file": "missing.kms", "env": "A"}}]}}"#
        );
        let path = dir.path().join("policy.json");
        std::fs::write(&path, text).unwrap();

        let rules = AttestationRules::load(&path).unwrap();
        assert!(rules.key_rule("app").is_some());
        assert!(rules.trust_roots()[0].is_development_root());
    }

    #[test]
    fn attestation_rules_need_dev_root() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"{{"trust": {{"roots": [{{"dev_root_pem": "missing.pem"}}]}},
                "keys": {{"app": {{"key_id": "alias/app", "allow": [{{"pcrs": {{"0": "{PCR}"}}}}]}}}},
                "secrets": []}}"#
        );
        let path = dir.path().join("policy.json");
        std::fs::write(&path, text).unwrap();

        let error = AttestationRules::load(&path).unwrap_err();
        assert_eq!(
            error.problems()[0].path,
            "trust.roots[0].dev_root_pem",
            "{error}"
        );
    }

    #[test]
    fn rejects_unknown_top_level_field() {
        let text = r#"{"keys": {}, "key": {}}"#;
        let error = key_rules_from_str(text).unwrap_err();
        let paths: Vec<&str> = error.problems().iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"key"), "{paths:?}");
    }
}

//! Loading only the `keys` section of a release policy.
//!
//! The KMS key policy and `set-pcrs` depend on key rules alone. They run where the files that
//! secrets name do not exist yet: the key policy is applied before any ciphertext can be made
//! under that key, and a deployment repository rarely contains the development root. So this
//! loader checks the document's top level and every key rule exactly as
//! [`ReleasePolicy::load`](super::ReleasePolicy::load) does, but neither checks `trust` and
//! `secrets` nor reads the files they name.

use std::collections::BTreeMap;
use std::path::Path;

use super::error::{PolicyError, Problem};
use super::json::{JsonPath, Node, Problems};
use super::key_rule::{self, KeyRule};

/// Top-level members of a release policy; anything else is reported as unknown.
const TOP_LEVEL_FIELDS: &[&str] = &["trust", "keys", "secrets"];

/// Reads a release policy file and returns its key rules by name.
pub fn load_key_rules(path: &Path) -> Result<BTreeMap<String, KeyRule>, PolicyError> {
    let text = crate::file_input::read_limited_to_string(path, crate::file_input::MAX_CONFIG_LEN)
        .map_err(|error| {
        let problem = Problem {
            path: JsonPath::root().to_string(),
            message: format!("failed to read {}: {error}", path.display()),
        };
        PolicyError::new(Some(path), vec![problem])
    })?;
    parse_key_rules(&text).map_err(|problems| PolicyError::new(Some(path), problems))
}

/// Checks the `keys` section of a release policy given as text.
pub fn key_rules_from_str(text: &str) -> Result<BTreeMap<String, KeyRule>, PolicyError> {
    parse_key_rules(text).map_err(|problems| PolicyError::new(None, problems))
}

fn parse_key_rules(text: &str) -> Result<BTreeMap<String, KeyRule>, Vec<Problem>> {
    let root_path = JsonPath::root();
    let mut problems = Problems::default();

    let root = match Node::parse(text) {
        Ok(root) => root,
        Err(error) => {
            problems.push(&root_path, format!("invalid JSON: {error}"));
            return Err(problems.into_vec());
        }
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
    fn rejects_unknown_top_level_field() {
        let text = r#"{"keys": {}, "key": {}}"#;
        let error = key_rules_from_str(text).unwrap_err();
        let paths: Vec<&str> = error.problems().iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"key"), "{paths:?}");
    }
}

//! The release gate: the broker's own check of the release policy, run on a verified
//! attestation document before the first KMS call and again before delivery.
//!
//! KMS key policies are the enforcement point in production; the gate adds precise
//! reasons ("PCR8 mismatch for key rule app: …"), refuses debug-mode enclaves unless a rule
//! allows them, and is the only PCR check when KMS is LocalStack, which checks nothing.

use std::collections::BTreeSet;

use tracing::{info, warn};

use crate::attestation::verify::VerifiedDocument;
use crate::policy::{Decision, ReleasePolicy, evaluate};

/// A key rule refused the document.
#[derive(Debug, thiserror::Error)]
#[error("release gate denied: {reason}")]
pub struct GateDenied {
    pub rule: String,
    pub reason: String,
}

/// Evaluates every key rule in `rules` against the document; all must allow.
pub fn check(
    document: &VerifiedDocument,
    policy: &ReleasePolicy,
    rules: &BTreeSet<String>,
) -> Result<(), GateDenied> {
    let payload = document.document();
    for rule_name in rules {
        let Some(rule) = policy.key_rule(rule_name) else {
            // The loader rejects secrets whose key rule is undefined, so this is unreachable
            // for a loaded policy; deny rather than assume.
            return Err(GateDenied {
                rule: rule_name.clone(),
                reason: "key rule is not defined in the policy".to_owned(),
            });
        };
        match evaluate(rule_name, rule, payload.pcrs(), payload.is_debug_mode()) {
            Decision::Allow { entry } => {
                if payload.is_debug_mode() {
                    warn!(
                        rule = %rule_name,
                        "releasing to a debug-mode enclave (PCR0/1/2 are zero) because the key \
                         rule sets allow_debug; its memory can be read from the parent"
                    );
                }
                let compared: Vec<String> = rule.allow()[entry]
                    .pcrs()
                    .keys()
                    .map(|index| format!("PCR{index}"))
                    .collect();
                info!(
                    rule = %rule_name,
                    allow_entry = entry,
                    compared = %compared.join(","),
                    "release gate allowed key rule"
                );
            }
            Decision::Deny(denial) => {
                return Err(GateDenied {
                    rule: rule_name.clone(),
                    reason: denial.to_string(),
                });
            }
        }
    }
    Ok(())
}

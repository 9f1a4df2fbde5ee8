//! The release decision: do an enclave's PCRs satisfy a key rule?

use std::collections::BTreeMap;
use std::fmt;

use super::key_rule::{AllowEntry, KeyRule};
use crate::attestation::pcr::{PcrIndex, PcrValue};

/// The outcome of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The PCRs match allow entry `entry` (an index into [`KeyRule::allow`]), the first one
    /// that matches.
    Allow {
        entry: usize,
    },
    Deny(Denial),
}

/// Reason a key rule denied an enclave. `Display` names the rule and, for a PCR mismatch, the
/// expected and found values in full, because PCR values are public measurements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    rule: String,
    reason: DenialReason,
}

/// The cause of a [`Denial`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenialReason {
    /// The enclave runs in debug mode (PCR0, PCR1 and PCR2 are zero) and the rule does not set
    /// `allow_debug`.
    DebugMode,
    /// No allow entry matches. Holds one comparison per entry, in policy order.
    NoEntryMatches { comparisons: Vec<EntryComparison> },
}

/// Comparison of a document's PCRs with one allow entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryComparison {
    /// Index of the entry in [`KeyRule::allow`].
    pub entry: usize,
    /// Listed PCRs whose value in the document is equal to the expected one.
    pub matched: Vec<PcrIndex>,
    /// Listed PCRs that are missing from the document or differ, in index order.
    pub mismatched: Vec<PcrMismatch>,
}

/// One listed PCR that the document does not satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrMismatch {
    pub index: PcrIndex,
    pub expected: PcrValue,
    /// The document's value, or `None` when the document does not carry this PCR.
    pub found: Option<PcrValue>,
}

impl Denial {
    /// The name of the key rule that denied the release.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    pub fn reason(&self) -> &DenialReason {
        &self.reason
    }

    /// The allow entry with the fewest mismatching PCRs (the first of equals), or `None` for
    /// a debug-mode denial.
    pub fn closest(&self) -> Option<&EntryComparison> {
        match &self.reason {
            DenialReason::DebugMode => None,
            DenialReason::NoEntryMatches { comparisons } => comparisons
                .iter()
                .min_by_key(|comparison| comparison.mismatched.len()),
        }
    }
}

/// Decides whether an enclave whose attestation document carries `pcrs` may receive the
/// secrets governed by `rule` (named `rule_name` in messages).
///
/// `pcrs` and `debug_mode` must come from a verified attestation document. A debug-mode
/// enclave is denied unless the rule sets `allow_debug`. Otherwise the first allow entry
/// whose every listed PCR is present in `pcrs` with an equal value allows the release. A PCR
/// that the document lacks never matches. This function reads no clock and no files.
#[must_use]
pub fn evaluate(
    rule_name: &str,
    rule: &KeyRule,
    pcrs: &BTreeMap<PcrIndex, PcrValue>,
    debug_mode: bool,
) -> Decision {
    let deny = |reason| {
        Decision::Deny(Denial {
            rule: rule_name.to_owned(),
            reason,
        })
    };

    if debug_mode && !rule.allow_debug() {
        return deny(DenialReason::DebugMode);
    }

    let mut comparisons = Vec::with_capacity(rule.allow().len());
    for (entry, allowed) in rule.allow().iter().enumerate() {
        let comparison = compare_entry(entry, allowed, pcrs);
        if comparison.mismatched.is_empty() && !comparison.matched.is_empty() {
            return Decision::Allow { entry };
        }
        comparisons.push(comparison);
    }
    deny(DenialReason::NoEntryMatches { comparisons })
}

fn compare_entry(
    entry: usize,
    allowed: &AllowEntry,
    pcrs: &BTreeMap<PcrIndex, PcrValue>,
) -> EntryComparison {
    let mut matched = Vec::new();
    let mut mismatched = Vec::new();
    for (index, expected) in allowed.pcrs() {
        let found = pcrs.get(index);
        if found == Some(expected) {
            matched.push(*index);
        } else {
            mismatched.push(PcrMismatch {
                index: *index,
                expected: expected.clone(),
                found: found.cloned(),
            });
        }
    }
    EntryComparison {
        entry,
        matched,
        mismatched,
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key rule {}: ", self.rule)?;
        let comparisons = match &self.reason {
            DenialReason::DebugMode => {
                return f.write_str(
                    "debug-mode enclave (PCR0/1/2 are zero); set allow_debug: true on this key \
                     rule to allow it (never in production)",
                );
            }
            DenialReason::NoEntryMatches { comparisons } => comparisons,
        };
        let Some(closest) = self.closest() else {
            return f.write_str("the rule has no allow entries");
        };
        if comparisons.len() > 1 {
            write!(
                f,
                "none of the {} allow entries matches; closest is allow[{}]: ",
                comparisons.len(),
                closest.entry
            )?;
        }
        write!(f, "{closest}")
    }
}

impl fmt::Display for EntryComparison {
    /// Prints `PCR0 mismatch: expected …, got …; PCR8 matches`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut clauses: Vec<String> = self.mismatched.iter().map(ToString::to_string).collect();
        if !self.matched.is_empty() {
            let names: Vec<String> = self.matched.iter().map(|i| format!("PCR{i}")).collect();
            let verb = if names.len() == 1 { "matches" } else { "match" };
            clauses.push(format!("{} {verb}", names.join(", ")));
        }
        f.write_str(&clauses.join("; "))
    }
}

impl fmt::Display for PcrMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.found {
            Some(found) => write!(
                f,
                "PCR{} mismatch: expected {}, got {found}",
                self.index, self.expected
            ),
            None => write!(
                f,
                "PCR{} missing from the attestation document: expected {}",
                self.index, self.expected
            ),
        }
    }
}

impl std::error::Error for Denial {}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(i: u64) -> PcrIndex {
        PcrIndex::new(i).unwrap()
    }

    fn value(byte: u8) -> PcrValue {
        PcrValue::from_bytes(&[byte; 48]).unwrap()
    }

    fn pcr_map(pairs: &[(u64, u8)]) -> BTreeMap<PcrIndex, PcrValue> {
        pairs.iter().map(|&(i, b)| (index(i), value(b))).collect()
    }

    fn rule(entries: &[&[(u64, u8)]], allow_debug: bool) -> KeyRule {
        let allow = entries
            .iter()
            .map(|pairs| AllowEntry::for_tests(pcr_map(pairs)))
            .collect();
        KeyRule::for_tests(allow, allow_debug)
    }

    fn denial(decision: Decision) -> Denial {
        match decision {
            Decision::Deny(denial) => denial,
            Decision::Allow { entry } => {
                panic!("expected a denial, got Allow {{ entry: {entry} }}")
            }
        }
    }

    #[test]
    fn allows_exact_match() {
        let rule = rule(&[&[(0, 0xaa), (8, 0x88)]], false);
        let pcrs = pcr_map(&[(0, 0xaa), (1, 0x11), (2, 0x22), (8, 0x88)]);
        assert_eq!(
            evaluate("app", &rule, &pcrs, false),
            Decision::Allow { entry: 0 }
        );
    }

    #[test]
    fn denies_pcr0_mismatch_with_both_values() {
        let rule = rule(&[&[(0, 0xaa), (8, 0x88)]], false);
        let pcrs = pcr_map(&[(0, 0xbb), (8, 0x88)]);
        let denial = denial(evaluate("app", &rule, &pcrs, false));
        let expected = format!(
            "key rule app: PCR0 mismatch: expected {}, got {}; PCR8 matches",
            "aa".repeat(48),
            "bb".repeat(48)
        );
        assert_eq!(denial.to_string(), expected);
        assert_eq!(denial.rule(), "app");
    }

    #[test]
    fn denies_when_document_lacks_listed_pcr() {
        let rule = rule(&[&[(0, 0xaa), (8, 0x88)]], false);
        let pcrs = pcr_map(&[(0, 0xaa)]);
        let denial = denial(evaluate("app", &rule, &pcrs, false));
        let closest = denial.closest().unwrap();
        assert_eq!(closest.mismatched.len(), 1);
        assert_eq!(closest.mismatched[0].index, index(8));
        assert_eq!(closest.mismatched[0].found, None);
        let message = denial.to_string();
        assert!(
            message.contains("PCR8 missing from the attestation document"),
            "{message}"
        );
        assert!(message.contains("PCR0 matches"), "{message}");
    }

    #[test]
    fn any_of_allows_second_entry() {
        let rule = rule(&[&[(0, 0xaa)], &[(0, 0xbb)]], false);
        let pcrs = pcr_map(&[(0, 0xbb)]);
        assert_eq!(
            evaluate("app", &rule, &pcrs, false),
            Decision::Allow { entry: 1 }
        );
    }

    #[test]
    fn any_of_denial_names_closest_entry() {
        let rule = rule(&[&[(0, 0xaa), (1, 0xa1)], &[(0, 0xbb), (1, 0x11)]], false);
        let pcrs = pcr_map(&[(0, 0xcc), (1, 0x11)]);
        let denial = denial(evaluate("app", &rule, &pcrs, false));
        assert_eq!(denial.closest().unwrap().entry, 1);
        let message = denial.to_string();
        assert!(
            message.starts_with("key rule app: none of the 2 allow entries matches; closest is allow[1]: PCR0 mismatch"),
            "{message}"
        );
        assert!(message.ends_with("; PCR1 matches"), "{message}");
        let DenialReason::NoEntryMatches { comparisons } = denial.reason() else {
            panic!("expected NoEntryMatches");
        };
        assert_eq!(comparisons.len(), 2);
    }

    #[test]
    fn denies_debug_mode_even_when_pcrs_match() {
        let rule = rule(&[&[(8, 0x88)]], false);
        let pcrs = pcr_map(&[(0, 0), (1, 0), (2, 0), (8, 0x88)]);
        let denial = denial(evaluate("app", &rule, &pcrs, true));
        assert_eq!(denial.reason(), &DenialReason::DebugMode);
        assert!(
            denial
                .to_string()
                .contains("debug-mode enclave (PCR0/1/2 are zero)"),
            "{denial}"
        );
    }

    #[test]
    fn allows_debug_mode_with_allow_debug() {
        let rule = rule(&[&[(0, 0), (8, 0x88)]], true);
        let pcrs = pcr_map(&[(0, 0), (1, 0), (2, 0), (8, 0x88)]);
        assert_eq!(
            evaluate("app", &rule, &pcrs, true),
            Decision::Allow { entry: 0 }
        );
    }

    #[test]
    fn lists_every_matching_pcr_in_denial() {
        let rule = rule(&[&[(0, 0xaa), (1, 0x11), (2, 0x22)]], false);
        let pcrs = pcr_map(&[(0, 0xbb), (1, 0x11), (2, 0x22)]);
        let message = denial(evaluate("app", &rule, &pcrs, false)).to_string();
        assert!(message.ends_with("; PCR1, PCR2 match"), "{message}");
    }

    #[test]
    fn empty_entry_never_allows() {
        let rule = KeyRule::for_tests(vec![AllowEntry::for_tests(BTreeMap::new())], false);
        let pcrs = pcr_map(&[(0, 0xaa)]);
        assert!(matches!(
            evaluate("app", &rule, &pcrs, false),
            Decision::Deny(_)
        ));
    }
}

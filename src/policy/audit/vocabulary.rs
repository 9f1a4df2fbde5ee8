//! What the checks need to know about IAM: action patterns, condition operators and the
//! `kms:RecipientAttestation:*` condition keys.
//!
//! IAM compares action names and condition key names without regard to case, so every
//! comparison here ignores case too.

use super::super::key_policy::PLAINTEXT_ACTIONS;
use crate::attestation::pcr::MAX_PCR_INDEX;

/// Highest NitroTPM PCR index accepted in `kms:RecipientAttestation:NitroTPMPCR<n>`.
// NOTE: the KMS documentation does not state a range; 23 is the last PCR of a TPM 2.0 bank
// under the TCG PC Client profile, which NitroTPM follows.
pub const MAX_NITRO_TPM_PCR_INDEX: u8 = 23;

/// Prefix shared by every attestation condition key, in lowercase for comparisons.
const ATTESTATION_PREFIX_LOWER: &str = "kms:recipientattestation";

/// True when the IAM action pattern (`*` for any run of characters, `?` for one) matches
/// `action`, ignoring case.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    let pattern: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let action: Vec<char> = action.to_ascii_lowercase().chars().collect();
    glob_matches(&pattern, &action)
}

/// Iterative glob match with backtracking to the last `*`, linear in practice.
fn glob_matches(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            last_star = Some((p, t));
            p += 1;
        } else if let Some((star, matched)) = last_star {
            p = star + 1;
            t = matched + 1;
            last_star = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// True when `pattern` contains an IAM wildcard.
pub fn has_wildcard(text: &str) -> bool {
    text.contains('*') || text.contains('?')
}

/// True for the five actions that evaluate `kms:RecipientAttestation:*` conditions.
pub fn is_plaintext_action(action: &str) -> bool {
    PLAINTEXT_ACTIONS
        .iter()
        .any(|known| known.eq_ignore_ascii_case(action))
}

/// A condition operator split into its parts, e.g. `ForAnyValue:StringLikeIfExists`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// `ForAnyValue` or `ForAllValues`, when present.
    pub set_qualifier: Option<String>,
    /// The operator without qualifier and `IfExists`, e.g. `StringLike`.
    pub base: String,
    pub if_exists: bool,
}

impl Operator {
    pub fn parse(text: &str) -> Operator {
        let (set_qualifier, rest) = match text.split_once(':') {
            Some((qualifier, rest)) => (Some(qualifier.to_owned()), rest),
            None => (None, text),
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        Operator {
            set_qualifier,
            base: base.to_owned(),
            if_exists,
        }
    }

    /// True when the condition is false for a request that lacks the key: a positive string
    /// comparison without `IfExists` and without `ForAllValues` (which is true for an absent
    /// key).
    pub fn requires_key(&self) -> bool {
        self.is_positive_match() && !self.if_exists
    }

    /// True when the condition, for a request that carries the key, holds only if the key
    /// equals (or matches) one of the values: a positive string comparison without
    /// `ForAllValues`, with or without `IfExists`.
    pub fn is_positive_match(&self) -> bool {
        let positive = matches!(
            self.base.as_str(),
            "StringEquals" | "StringEqualsIgnoreCase" | "StringLike"
        );
        let all_values = self
            .set_qualifier
            .as_deref()
            .is_some_and(|q| q.eq_ignore_ascii_case("ForAllValues"));
        positive && !all_values
    }

    /// True for `StringLike` and `StringNotLike`, which give `*` and `?` their wildcard meaning.
    pub fn is_like(&self) -> bool {
        self.base == "StringLike" || self.base == "StringNotLike"
    }

    /// True for string operators that compare case-sensitively.
    pub fn is_case_sensitive(&self) -> bool {
        matches!(
            self.base.as_str(),
            "StringEquals" | "StringNotEquals" | "StringLike" | "StringNotLike"
        )
    }

    pub fn is_null(&self) -> bool {
        self.base == "Null"
    }
}

/// An attestation condition key that KMS documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestationKey {
    /// `kms:RecipientAttestation:ImageSha384`, equal to PCR0.
    ImageSha384,
    /// `kms:RecipientAttestation:PCR<n>`, n from 0 to 31.
    Pcr(u8),
    /// `kms:RecipientAttestation:NitroTPMPCR<n>` of NitroTPM attestation documents.
    NitroTpmPcr(u8),
}

impl AttestationKey {
    /// Returns the documented spelling.
    pub fn canonical(self) -> String {
        match self {
            AttestationKey::ImageSha384 => "kms:RecipientAttestation:ImageSha384".to_owned(),
            AttestationKey::Pcr(n) => format!("kms:RecipientAttestation:PCR{n}"),
            AttestationKey::NitroTpmPcr(n) => format!("kms:RecipientAttestation:NitroTPMPCR{n}"),
        }
    }

    /// True when debug-mode enclaves report this measurement as all zeros.
    pub fn is_debug_zeroed(self) -> bool {
        matches!(
            self,
            AttestationKey::ImageSha384 | AttestationKey::Pcr(0..=2)
        )
    }

    /// Digest lengths KMS can compare with, in hex characters. Nitro Enclaves use SHA-384;
    /// NitroTPM documents may carry a SHA-256 or a SHA-384 bank.
    pub fn accepted_hex_lengths(self) -> &'static [usize] {
        match self {
            AttestationKey::NitroTpmPcr(_) => &[64, 96],
            _ => &[96],
        }
    }
}

/// Relation of a condition key to the attestation keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClass {
    /// Not a `kms:RecipientAttestation` key at all.
    Other,
    /// A documented key, in its documented spelling.
    Attestation(AttestationKey),
    /// A documented key in another letter case. IAM treats it as the same key.
    WrongCase(AttestationKey),
    /// A key that starts with `kms:RecipientAttestation` but that KMS does not define.
    /// `reason` explains why and what to write instead.
    Unknown { reason: String },
}

impl KeyClass {
    /// Returns the documented key this one corresponds to, when there is one.
    pub fn attestation_key(&self) -> Option<AttestationKey> {
        match self {
            KeyClass::Attestation(key) | KeyClass::WrongCase(key) => Some(*key),
            _ => None,
        }
    }

    /// True for every key in the `kms:RecipientAttestation` family, known or not.
    pub fn is_attestation_family(&self) -> bool {
        !matches!(self, KeyClass::Other)
    }
}

/// Classifies a condition key.
pub fn classify_key(key: &str) -> KeyClass {
    let lower = key.to_ascii_lowercase();
    if !lower.starts_with(ATTESTATION_PREFIX_LOWER) {
        return KeyClass::Other;
    }
    let Some(suffix) = lower
        .strip_prefix(ATTESTATION_PREFIX_LOWER)
        .and_then(|rest| rest.strip_prefix(':'))
        .filter(|suffix| !suffix.is_empty())
    else {
        return KeyClass::Unknown {
            reason: "did you mean kms:RecipientAttestation:ImageSha384 or :PCR0?".to_owned(),
        };
    };

    let parsed = if suffix == "imagesha384" {
        Ok(AttestationKey::ImageSha384)
    } else if let Some(digits) = suffix.strip_prefix("nitrotpmpcr") {
        parse_index(digits, MAX_NITRO_TPM_PCR_INDEX, "NitroTPMPCR").map(AttestationKey::NitroTpmPcr)
    } else if let Some(digits) = suffix.strip_prefix("pcr") {
        parse_index(digits, MAX_PCR_INDEX, "PCR").map(AttestationKey::Pcr)
    } else {
        Err(format!(
            "KMS defines kms:RecipientAttestation:ImageSha384, :PCR0 to :PCR{MAX_PCR_INDEX} \
             and :NitroTPMPCR0 to :NitroTPMPCR{MAX_NITRO_TPM_PCR_INDEX}"
        ))
    };
    match parsed {
        Ok(known) if known.canonical() == key => KeyClass::Attestation(known),
        Ok(known) => KeyClass::WrongCase(known),
        Err(reason) => KeyClass::Unknown { reason },
    }
}

/// Parses the decimal PCR index of a key suffix: no sign, no leading zeros, at most `max`.
fn parse_index(digits: &str, max: u8, family: &str) -> Result<u8, String> {
    if digits.is_empty() {
        return Err(format!(
            "no PCR index; write e.g. kms:RecipientAttestation:{family}8"
        ));
    }
    let canonical = digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && digits.len() <= 3;
    let index = digits.parse::<u16>().ok().filter(|_| canonical);
    match index {
        Some(index) if index <= u16::from(max) => Ok(index as u8),
        Some(index) => Err(format!(
            "PCR index {index} is out of range; valid indexes are 0 to {max}"
        )),
        None => Err(format!("{digits:?} is not a PCR index from 0 to {max}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_patterns_match_ignoring_case() {
        assert!(action_matches("kms:*", "kms:Decrypt"));
        assert!(action_matches("*", "kms:Decrypt"));
        assert!(action_matches("kms:Gen*", "kms:GenerateDataKeyPair"));
        assert!(action_matches("KMS:decrypt", "kms:Decrypt"));
        assert!(action_matches("kms:ReEncrypt*", "kms:ReEncryptFrom"));
        assert!(action_matches("kms:?ecrypt", "kms:Decrypt"));
        assert!(!action_matches("kms:Encrypt", "kms:Decrypt"));
        assert!(!action_matches("kms:Gen*Pair", "kms:GenerateDataKey"));
        assert!(!action_matches("s3:*", "kms:Decrypt"));
    }

    #[test]
    fn classifies_documented_keys() {
        assert_eq!(
            classify_key("kms:RecipientAttestation:ImageSha384"),
            KeyClass::Attestation(AttestationKey::ImageSha384)
        );
        assert_eq!(
            classify_key("kms:RecipientAttestation:PCR31"),
            KeyClass::Attestation(AttestationKey::Pcr(31))
        );
        assert_eq!(
            classify_key("kms:RecipientAttestation:NitroTPMPCR4"),
            KeyClass::Attestation(AttestationKey::NitroTpmPcr(4))
        );
        assert_eq!(classify_key("kms:ViaService"), KeyClass::Other);
    }

    #[test]
    fn classifies_wrong_case_and_unknown_keys() {
        assert_eq!(
            classify_key("kms:RecipientAttestation:Pcr0"),
            KeyClass::WrongCase(AttestationKey::Pcr(0))
        );
        for key in [
            "kms:RecipientAttestation",
            "kms:RecipientAttestation:",
            "kms:RecipientAttestation:PCR",
            "kms:RecipientAttestation:PCR32",
            "kms:RecipientAttestation:PCR08",
            "kms:RecipientAttestation:NitroTPMPCR24",
            "kms:RecipientAttestation:ImageSha256",
        ] {
            assert!(
                matches!(classify_key(key), KeyClass::Unknown { .. }),
                "{key}"
            );
        }
    }

    #[test]
    fn splits_operators() {
        let operator = Operator::parse("ForAllValues:StringLikeIfExists");
        assert_eq!(operator.set_qualifier.as_deref(), Some("ForAllValues"));
        assert_eq!(operator.base, "StringLike");
        assert!(operator.if_exists);
        assert!(!operator.requires_key());
        assert!(Operator::parse("StringEqualsIgnoreCase").requires_key());
        assert!(!Operator::parse("StringNotEquals").requires_key());
        assert!(!Operator::parse("StringEqualsIgnoreCaseIfExists").requires_key());
    }
}

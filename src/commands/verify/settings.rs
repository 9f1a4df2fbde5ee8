//! Second stage of `verify`'s arguments: flag values checked and turned into typed settings,
//! with errors that name the flag and the value.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use enclave_broker::attestation::document::MAX_OPTIONAL_FIELD_LEN;
use enclave_broker::attestation::pcr::{PcrIndex, PcrValue};
use enclave_broker::attestation::verify::{MAX_SKEW, TrustRoot};
use enclave_broker::policy::{AttestationRules, KeyRule, TrustRootSpec};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Rejection;
use crate::cli::VerifyArgs;
use crate::commands::parse_pcr_flags;

/// Largest `--trust-root` file read. A PEM certificate of this profile is under 2 KiB.
const MAX_TRUST_ROOT_FILE_LEN: usize = 64 * 1024;

/// Maximum number of characters of a flag value quoted in messages. Longer values are cut.
const MAX_QUOTED_VALUE_CHARS: usize = 80;

/// The verification time `--at` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationTime {
    /// The wall clock when the command runs.
    Now,
    /// The document's own timestamp.
    Document,
    /// A fixed time, in milliseconds since the UNIX epoch.
    At(u64),
}

/// A key rule of a release policy that the document must satisfy.
pub struct PolicyCheck {
    pub rule_name: String,
    pub rule: KeyRule,
}

/// Every flag of `verify`, checked.
pub struct Settings {
    /// REPORT as given: a path, or `-` for stdin.
    pub report: String,
    pub expected_pcrs: BTreeMap<PcrIndex, PcrValue>,
    pub policy: Option<PolicyCheck>,
    pub time: VerificationTime,
    /// The smaller of `--max-age` and the policy rule's `max_age_seconds`.
    pub max_age: Option<Duration>,
    pub skew: Duration,
    pub nonce: Option<Vec<u8>>,
    pub public_key: Option<Vec<u8>>,
    /// AWS's root, then each `--trust-root`, then the policy's development roots.
    pub trust_roots: Vec<TrustRoot>,
}

impl Settings {
    pub fn from_args(args: &VerifyArgs) -> Result<Self, Rejection> {
        let expected_pcrs = parse_pcr_flags(&args.pcrs)
            .map_err(|failure| Rejection::usage(failure.error.to_string()))?;
        let time = parse_time(&args.at)?;
        let skew = parse_skew(&args.skew)?;
        let flag_max_age = args
            .max_age
            .as_deref()
            .map(|text| parse_duration("--max-age", text))
            .transpose()?;
        let nonce = args.nonce.as_deref().map(parse_nonce).transpose()?;
        let public_key = args
            .public_key
            .as_deref()
            .map(read_public_key)
            .transpose()?;

        let mut trust_roots = vec![TrustRoot::aws_nitro_enclaves_g1()];
        for path in &args.trust_roots {
            trust_roots.push(read_trust_root(path)?);
        }

        let policy = match (&args.policy, &args.key) {
            (Some(path), Some(key)) => Some(load_policy(path, key, &mut trust_roots)?),
            // clap requires --policy and --key together.
            _ => None,
        };
        let max_age = match (flag_max_age, &policy) {
            (Some(flag), Some(policy)) => Some(flag.min(policy.rule.max_age())),
            (None, Some(policy)) => Some(policy.rule.max_age()),
            (flag, None) => flag,
        };

        Ok(Self {
            report: args.report.clone(),
            expected_pcrs,
            policy,
            time,
            max_age,
            skew,
            nonce,
            public_key,
            trust_roots,
        })
    }

    /// True when something enclave-specific is expected, so NitroTPM documents are rejected.
    pub fn requires_enclave(&self) -> bool {
        self.policy.is_some() || !self.expected_pcrs.is_empty()
    }
}

/// Parses `--at`: `now` or `document` in any letter case, or an RFC 3339 time at or after
/// 1970.
fn parse_time(text: &str) -> Result<VerificationTime, Rejection> {
    if text.eq_ignore_ascii_case("now") {
        return Ok(VerificationTime::Now);
    }
    if text.eq_ignore_ascii_case("document") {
        return Ok(VerificationTime::Document);
    }
    let invalid = |detail: String| {
        Rejection::usage(format!(
            "--at {}: {detail}; expected now, document or an RFC 3339 time such as \
             2024-01-24T18:00:00Z",
            quoted(text)
        ))
    };
    let time = OffsetDateTime::parse(text, &Rfc3339).map_err(|error| invalid(error.to_string()))?;
    let ms = time.unix_timestamp_nanos() / 1_000_000;
    u64::try_from(ms)
        .map(VerificationTime::At)
        .map_err(|_| invalid("the time is before 1970-01-01T00:00:00Z".to_owned()))
}

/// Parses a DURATION: a whole number followed by `s`, `m` or `h`, like `300s`, `5m`, `2h`.
/// A number without a unit is rejected rather than read as seconds, because other tools
/// read bare numbers as milliseconds.
pub fn parse_duration(flag: &str, text: &str) -> Result<Duration, Rejection> {
    let invalid = |detail: &str| {
        Rejection::usage(format!(
            "{flag} {}: {detail}; expected a whole number and a unit (s, m or h), like 300s, 5m or 2h",
            quoted(text)
        ))
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(invalid("missing number"));
    }
    let seconds_per_unit: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "" => return Err(invalid("missing unit")),
        _ => return Err(invalid("unknown unit")),
    };
    let seconds = digits
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(seconds_per_unit))
        .ok_or_else(|| invalid("too large"))?;
    Ok(Duration::from_secs(seconds))
}

/// Parses `--skew` and rejects values above [`MAX_SKEW`], because the skew widens every
/// certificate's validity: a large one would make an expired chain valid.
fn parse_skew(text: &str) -> Result<Duration, Rejection> {
    let skew = parse_duration("--skew", text)?;
    if skew > MAX_SKEW {
        return Err(Rejection::usage(format!(
            "--skew {}: the limit is {}s (1h), because the skew extends every certificate's \
             validity period; fix the clock instead of raising the skew",
            quoted(text),
            MAX_SKEW.as_secs()
        )));
    }
    Ok(skew)
}

/// Parses `--nonce`: 1 to 1024 bytes in hex.
fn parse_nonce(text: &str) -> Result<Vec<u8>, Rejection> {
    let invalid = |detail: String| Rejection::usage(format!("--nonce {}: {detail}", quoted(text)));
    let nonce = hex::decode(text).map_err(|error| invalid(format!("invalid hex: {error}")))?;
    if nonce.is_empty() {
        return Err(invalid("empty; give at least one byte in hex".to_owned()));
    }
    if nonce.len() > MAX_OPTIONAL_FIELD_LEN {
        return Err(invalid(format!(
            "{} bytes; a document's nonce has at most {MAX_OPTIONAL_FIELD_LEN}",
            nonce.len()
        )));
    }
    Ok(nonce)
}

/// Reads `--public-key FILE`: the exact bytes the document's public_key must hold, 1 to
/// 1024 of them.
fn read_public_key(path: &Path) -> Result<Vec<u8>, Rejection> {
    let flag = format!("--public-key {}", path.display());
    let bytes = read_limited(path, MAX_OPTIONAL_FIELD_LEN)
        .map_err(|error| Rejection::usage(format!("{flag}: failed to read: {error}")))?;
    if bytes.is_empty() {
        return Err(Rejection::usage(format!(
            "{flag}: the file is empty; expected the public_key bytes"
        )));
    }
    if bytes.len() > MAX_OPTIONAL_FIELD_LEN {
        return Err(Rejection::usage(format!(
            "{flag}: the file is larger than {MAX_OPTIONAL_FIELD_LEN} bytes, the most a \
             document's public_key holds"
        )));
    }
    Ok(bytes)
}

fn read_trust_root(path: &Path) -> Result<TrustRoot, Rejection> {
    let flag = format!("--trust-root {}", path.display());
    let pem = read_limited(path, MAX_TRUST_ROOT_FILE_LEN)
        .map_err(|error| Rejection::usage(format!("{flag}: failed to read: {error}")))?;
    if pem.len() > MAX_TRUST_ROOT_FILE_LEN {
        return Err(Rejection::usage(format!(
            "{flag}: the file is larger than {MAX_TRUST_ROOT_FILE_LEN} bytes; expected one PEM certificate"
        )));
    }
    TrustRoot::from_pem(&pem, path.display().to_string())
        .map_err(|error| Rejection::usage(format!("{flag}: {error}")))
}

/// Loads `--policy FILE`, picks the rule `--key NAME` and adds the policy's development roots
/// to `trust_roots`.
fn load_policy(
    path: &Path,
    key: &str,
    trust_roots: &mut Vec<TrustRoot>,
) -> Result<PolicyCheck, Rejection> {
    let policy = AttestationRules::load(path)
        .map_err(|error| Rejection::input("policy.invalid", format!("--policy: {error}")))?;
    let Some(rule) = policy.key_rule(key) else {
        let names: Vec<&str> = policy.keys().keys().map(String::as_str).collect();
        return Err(Rejection::usage(format!(
            "--key {}: {} has no key rule of that name; it defines {}",
            quoted(key),
            path.display(),
            names.join(", ")
        )));
    };

    for spec in policy.trust_roots() {
        if let TrustRootSpec::DevRootPem {
            path: root_path,
            pem,
        } = spec
        {
            let label = format!("development root {}", root_path.display());
            let root = TrustRoot::from_pem(pem, label).map_err(|error| {
                Rejection::input(
                    "policy.invalid",
                    format!("--policy {}: {error}", path.display()),
                )
            })?;
            trust_roots.push(root);
        }
    }
    Ok(PolicyCheck {
        rule_name: key.to_owned(),
        rule: rule.clone(),
    })
}

/// Reads at most `limit + 1` bytes of `path`, so the caller can tell an oversized file.
/// FIFOs and devices other than an inherited pipe are refused (see `file_input`).
fn read_limited(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    // usize to u64 widens on every platform Rust supports, so `as` cannot truncate here.
    enclave_broker::file_input::read_prefix(path, limit as u64 + 1)
}

/// Quotes a flag value for a message, cut after [`MAX_QUOTED_VALUE_CHARS`] characters.
fn quoted(text: &str) -> String {
    if text.chars().count() <= MAX_QUOTED_VALUE_CHARS {
        return format!("{text:?}");
    }
    let start: String = text.chars().take(MAX_QUOTED_VALUE_CHARS).collect();
    format!("{start:?}… ({} characters)", text.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_with_units() {
        assert_eq!(
            parse_duration("--skew", "300s").unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            parse_duration("--skew", "5m").unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            parse_duration("--skew", "2h").unwrap(),
            Duration::from_secs(7200)
        );
        assert_eq!(parse_duration("--skew", "0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_duration_without_unit() {
        let rejection = parse_duration("--max-age", "300").unwrap_err();
        assert_eq!(
            rejection.message,
            "--max-age \"300\": missing unit; expected a whole number and a unit (s, m or h), \
             like 300s, 5m or 2h"
        );
        assert_eq!(rejection.code, 2);
    }

    #[test]
    fn rejects_malformed_durations() {
        for text in [
            "",
            "s",
            "-5s",
            "1.5h",
            "5 m",
            "5d",
            "5ms",
            "99999999999999999999s",
        ] {
            let rejection = parse_duration("--skew", text).unwrap_err();
            assert!(
                rejection.message.starts_with("--skew "),
                "{text}: {}",
                rejection.message
            );
        }
        let overflow = parse_duration("--skew", &format!("{}h", u64::MAX / 3600 + 1)).unwrap_err();
        assert!(
            overflow.message.contains("too large"),
            "{}",
            overflow.message
        );
    }

    #[test]
    fn parses_at_forms() {
        assert_eq!(parse_time("now").unwrap(), VerificationTime::Now);
        assert_eq!(parse_time("document").unwrap(), VerificationTime::Document);
        assert_eq!(
            parse_time("2024-01-24T18:14:25.635Z").unwrap(),
            VerificationTime::At(1_706_120_065_635)
        );
        assert_eq!(
            parse_time("2024-01-24T19:14:25.635+01:00").unwrap(),
            VerificationTime::At(1_706_120_065_635)
        );
    }

    #[test]
    fn parses_at_keywords_in_any_case() {
        for text in ["DOCUMENT", "Document", "dOcUmEnT"] {
            assert_eq!(
                parse_time(text).unwrap(),
                VerificationTime::Document,
                "{text}"
            );
        }
        for text in ["NOW", "Now"] {
            assert_eq!(parse_time(text).unwrap(), VerificationTime::Now, "{text}");
        }
    }

    #[test]
    fn rejects_at_before_1970_and_garbage() {
        let rejection = parse_time("1969-12-31T23:59:59Z").unwrap_err();
        assert!(
            rejection.message.contains("before 1970"),
            "{}",
            rejection.message
        );
        let rejection = parse_time("yesterday").unwrap_err();
        assert!(
            rejection.message.starts_with("--at \"yesterday\": "),
            "{}",
            rejection.message
        );
    }

    #[test]
    fn rejects_empty_and_oversized_nonce() {
        assert!(parse_nonce("").unwrap_err().message.contains("empty"));
        let long = "00".repeat(MAX_OPTIONAL_FIELD_LEN + 1);
        let rejection = parse_nonce(&long).unwrap_err();
        assert!(
            rejection.message.contains("1025 bytes"),
            "{}",
            rejection.message
        );
        assert!(
            rejection.message.contains("(2050 characters)"),
            "{}",
            rejection.message
        );
        assert_eq!(parse_nonce("4E6f").unwrap(), [0x4e, 0x6f]);
    }
}

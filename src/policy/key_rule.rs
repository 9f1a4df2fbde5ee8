//! Key rules (`keys.<rule>`): which KMS key a secret is encrypted under, and which enclave
//! measurements may have it released.

use std::collections::BTreeMap;
use std::time::Duration;

use super::json::{JsonPath, Node, Problems};
use super::key_id::{KeyIdForm, classify_key_id};
use crate::attestation::pcr::{PcrIndex, PcrValue};

/// Age limit for attestation documents when a rule sets no `max_age_seconds`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

/// PCRs that NSM reports as all zeros for an enclave started in debug mode: PCR0 (enclave
/// image), PCR1 (kernel and boot ramfs) and PCR2 (application).
pub const DEBUG_MODE_ZERO_PCRS: [u8; 3] = [0, 1, 2];

/// PCRs that identify the enclave image: PCR0 (the whole image), PCR2 (the application) and
/// PCR8 (the certificate that signed the image). Every allow entry must list one of them,
/// because the others match many images. PCR1 (kernel and boot ramfs) is the same for every
/// image built with one `nitro-cli` release. PCR3 and PCR4 measure the parent instance's IAM
/// role and instance ID.
pub const IMAGE_PCRS: [u8; 3] = [0, 2, 8];

/// The signing-certificate PCR. Unsigned images and debug-mode enclaves report it as all
/// zeros, so an all-zero PCR8 identifies no image.
const SIGNING_CERTIFICATE_PCR: u8 = 8;

const RULE_FIELDS: &[&str] = &["key_id", "allow", "max_age_seconds", "allow_debug"];
const ALLOW_ENTRY_FIELDS: &[&str] = &["pcrs"];

/// One key rule: the KMS key, the allowed PCR sets and the freshness and debug settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRule {
    key_id: String,
    key_id_form: KeyIdForm,
    allow: Vec<AllowEntry>,
    max_age: Duration,
    allow_debug: bool,
}

impl KeyRule {
    /// The KMS `KeyId` sent with `Decrypt`, exactly as written in the policy.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// True when `key_id` is a full key ARN (`arn:aws…:kms:REGION:ACCOUNT:key/ID`). Only then
    /// can the `KeyId` that KMS returns be compared with it; for alias names, alias ARNs and
    /// bare key IDs the broker warns instead.
    pub fn is_key_arn(&self) -> bool {
        self.key_id_form == KeyIdForm::KeyArn
    }

    /// The allowed PCR sets. Never empty; a document is accepted when any one entry matches.
    pub fn allow(&self) -> &[AllowEntry] {
        &self.allow
    }

    /// Oldest attestation document accepted (`max_age_seconds`, default 300 seconds).
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// True when debug-mode enclaves (all-zero PCR0, PCR1 and PCR2) may be released secrets.
    pub fn allow_debug(&self) -> bool {
        self.allow_debug
    }

    #[cfg(test)]
    pub(crate) fn for_tests(allow: Vec<AllowEntry>, allow_debug: bool) -> KeyRule {
        KeyRule {
            key_id: "alias/test".to_owned(),
            key_id_form: KeyIdForm::AliasName,
            allow,
            max_age: DEFAULT_MAX_AGE,
            allow_debug,
        }
    }
}

/// One allowed PCR set: every listed PCR must be present in the document with this value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry {
    pcrs: BTreeMap<PcrIndex, PcrValue>,
}

impl AllowEntry {
    /// The expected PCR values by index. Never empty.
    pub fn pcrs(&self) -> &BTreeMap<PcrIndex, PcrValue> {
        &self.pcrs
    }

    #[cfg(test)]
    pub(crate) fn for_tests(pcrs: BTreeMap<PcrIndex, PcrValue>) -> AllowEntry {
        AllowEntry { pcrs }
    }
}

/// Result of `parse_keys`.
pub(crate) struct ParsedKeys {
    /// The member names, whether or not each rule is valid, so that secrets' references are
    /// checked against what the author wrote. `None` when `keys` is not an object.
    pub(crate) names: Option<Vec<String>>,
    /// The parsed rules, when every rule is valid.
    pub(crate) rules: Option<BTreeMap<String, KeyRule>>,
}

/// Parses the `keys` object. Records a problem for every defect found.
pub(crate) fn parse_keys(node: &Node, path: &JsonPath, problems: &mut Problems) -> ParsedKeys {
    let Some(members) = problems.expect_map(node, path) else {
        return ParsedKeys {
            names: None,
            rules: None,
        };
    };
    if members.is_empty() {
        problems.push(path, "no key rules; define at least one");
    }

    let mut names = Vec::with_capacity(members.len());
    let mut rules = Some(BTreeMap::new());
    for (name, value) in members {
        let rule_path = path.member(name);
        names.push(name.clone());
        let name_ok = is_rule_name(name);
        if !name_ok {
            problems.push(
                &rule_path,
                "invalid key rule name; use letters, digits, _ and - only",
            );
        }
        let rule = parse_rule(value, &rule_path, problems);
        match (rule, &mut rules) {
            (Some(rule), Some(rules)) if name_ok => {
                rules.insert(name.clone(), rule);
            }
            _ => rules = None,
        }
    }
    ParsedKeys {
        names: Some(names),
        rules,
    }
}

/// Rule names appear in messages, on the command line (`--key NAME`) and as Terraform keys.
fn is_rule_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn parse_rule(node: &Node, path: &JsonPath, problems: &mut Problems) -> Option<KeyRule> {
    let fields = problems.expect_object(node, path, RULE_FIELDS)?;

    let key_id = fields
        .required("key_id", problems)
        .and_then(|value| parse_key_id(value, &fields.field_path("key_id"), problems));

    let max_age = match fields.optional("max_age_seconds") {
        None => Some(DEFAULT_MAX_AGE),
        Some(value) => parse_max_age(value, &fields.field_path("max_age_seconds"), problems),
    };

    let allow_debug = match fields.optional("allow_debug") {
        None => Some(false),
        Some(value) => problems.expect_bool(value, &fields.field_path("allow_debug")),
    };

    // An invalid allow_debug leaves the debug setting unknown, so the all-zero PCR check is
    // skipped rather than reported on top of the allow_debug problem.
    let allow = fields
        .required("allow", problems)
        .and_then(|value| parse_allow(value, &fields.field_path("allow"), allow_debug, problems));

    let (key_id, key_id_form) = key_id?;
    Some(KeyRule {
        key_id,
        key_id_form,
        allow: allow?,
        max_age: max_age?,
        allow_debug: allow_debug?,
    })
}

fn parse_key_id(
    node: &Node,
    path: &JsonPath,
    problems: &mut Problems,
) -> Option<(String, KeyIdForm)> {
    let text = problems.expect_str(node, path)?;
    match classify_key_id(text) {
        Ok(form) => Some((text.to_owned(), form)),
        Err(reason) => {
            problems.push(path, format!("invalid KMS key_id: {reason}"));
            None
        }
    }
}

fn parse_max_age(node: &Node, path: &JsonPath, problems: &mut Problems) -> Option<Duration> {
    let seconds = match node {
        Node::Number(number) => number.as_u64().filter(|&seconds| seconds > 0),
        _ => None,
    };
    if seconds.is_none() {
        let found = match node {
            Node::Number(number) => number.to_string(),
            other => other.kind().to_owned(),
        };
        problems.push(
            path,
            format!("expected a positive whole number of seconds, found {found}"),
        );
    }
    seconds.map(Duration::from_secs)
}

fn parse_allow(
    node: &Node,
    path: &JsonPath,
    allow_debug: Option<bool>,
    problems: &mut Problems,
) -> Option<Vec<AllowEntry>> {
    let items = problems.expect_array(node, path)?;
    if items.is_empty() {
        problems.push(
            path,
            "empty allow list would release to no enclave; list at least one PCR set",
        );
        return None;
    }

    let mut entries = Some(Vec::with_capacity(items.len()));
    for (index, item) in items.iter().enumerate() {
        let entry = parse_allow_entry(item, &path.item(index), allow_debug, problems);
        match (entry, &mut entries) {
            (Some(entry), Some(entries)) => entries.push(entry),
            _ => entries = None,
        }
    }
    entries
}

fn parse_allow_entry(
    node: &Node,
    path: &JsonPath,
    allow_debug: Option<bool>,
    problems: &mut Problems,
) -> Option<AllowEntry> {
    let fields = problems.expect_object(node, path, ALLOW_ENTRY_FIELDS)?;
    let pcrs_node = fields.required("pcrs", problems)?;
    let pcrs_path = fields.field_path("pcrs");
    let members = problems.expect_map(pcrs_node, &pcrs_path)?;
    if members.is_empty() {
        problems.push(
            &pcrs_path,
            "no PCRs listed; an entry without PCRs would match every enclave",
        );
        return None;
    }

    let mut pcrs = Some(BTreeMap::new());
    let mut pins_image = false;
    for (index_text, value) in &members {
        let pcr_path = pcrs_path.member(index_text);
        let pcr = parse_pcr(index_text, value, &pcr_path, allow_debug, problems);
        pins_image |= pins_image_pcr(index_text, pcr.as_ref(), allow_debug);
        match (pcr, &mut pcrs) {
            (Some((index, value)), Some(pcrs)) => {
                pcrs.insert(index, value);
            }
            _ => pcrs = None,
        }
    }
    if !pins_image {
        problems.push(
            path,
            no_image_pin_message(members.iter().map(|(name, _)| name)),
        );
        return None;
    }
    Some(AllowEntry { pcrs: pcrs? })
}

/// True when the member `index_text` of `pcrs` identifies the image (see [`IMAGE_PCRS`]).
/// A member whose value was rejected counts as a pin when its index is an image PCR, so that
/// the entry is not reported twice for one mistake. An all-zero PCR0 or PCR2 (accepted only
/// with `allow_debug`) pins debug-mode enclaves; an all-zero PCR8 pins nothing.
fn pins_image_pcr(
    index_text: &str,
    parsed: Option<&(PcrIndex, PcrValue)>,
    allow_debug: Option<bool>,
) -> bool {
    let Ok(index) = PcrIndex::parse_decimal(index_text) else {
        return false;
    };
    if !IMAGE_PCRS.contains(&index.get()) {
        return false;
    }
    match parsed {
        None => true,
        Some((_, value)) if value.is_zero() => {
            index.get() != SIGNING_CERTIFICATE_PCR && allow_debug != Some(false)
        }
        Some(_) => true,
    }
}

fn no_image_pin_message<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let listed: Vec<String> = names.map(|name| format!("PCR{name}")).collect();
    format!(
        "pins no enclave image (it lists only {}), so any image with those values would \
         receive the secrets. Add PCR0 (image), PCR2 (application) or a non-zero PCR8 \
         (signing certificate); a policy baked into the image pins PCR8. PCR1 is the same \
         for all images of one nitro-cli release, and PCR3 and PCR4 identify only the parent \
         instance",
        listed.join(", ")
    )
}

/// Parses one `"INDEX": "HEX"` member of `pcrs`, checking the index and the value separately
/// so that both problems are reported.
fn parse_pcr(
    index_text: &str,
    value: &Node,
    path: &JsonPath,
    allow_debug: Option<bool>,
    problems: &mut Problems,
) -> Option<(PcrIndex, PcrValue)> {
    let index = match PcrIndex::parse_decimal(index_text) {
        Ok(index) => Some(index),
        Err(error) => {
            problems.push(path, error.to_string());
            None
        }
    };

    let label = match index {
        Some(index) => format!("PCR{index}"),
        None => "PCR".to_owned(),
    };
    let text = problems.expect_str(value, path)?;
    let value = match PcrValue::parse_sha384_hex(text) {
        Ok(value) => value,
        Err(error) => {
            problems.push(path, format!("invalid {label} value: {error}"));
            return None;
        }
    };

    let index = index?;
    let debug_zero = DEBUG_MODE_ZERO_PCRS.contains(&index.get()) && value.is_zero();
    if debug_zero && allow_debug == Some(false) {
        problems.push(
            path,
            format!(
                "all-zero {label} is what debug-mode enclaves report; set allow_debug: true \
                 on this key rule to allow it (never in production)"
            ),
        );
        return None;
    }
    if index.get() == SIGNING_CERTIFICATE_PCR && value.is_zero() && allow_debug == Some(false) {
        problems.push(
            path,
            format!(
                "all-zero {label} is what unsigned images and debug-mode enclaves report, so \
                 it pins no signing certificate; give the PCR8 of your signing certificate \
                 (nitro-cli pcr --signing-certificate cert.pem), or set allow_debug: true on \
                 this key rule to allow it (never in production)"
            ),
        );
        return None;
    }
    Some((index, value))
}

//! Secrets (`secrets[]`): the ciphertext to decrypt, how to ask KMS for it, and where to
//! deliver the plaintext.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::algorithm::{EncryptionAlgorithm, parse_algorithm};
use super::ciphertext::parse_ciphertext;
use super::delivery::{RelativePath, is_env_name, reserved_env_name};
use super::json::{JsonPath, Node, ObjectReader, Problems};

const SECRET_FIELDS: &[&str] = &[
    "name",
    "key",
    "ciphertext",
    "ciphertext_file",
    "encryption_context",
    "encryption_algorithm",
    "file",
    "env",
];

/// One secret of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    name: String,
    key: String,
    ciphertext: Vec<u8>,
    ciphertext_file: Option<PathBuf>,
    encryption_context: BTreeMap<String, String>,
    encryption_algorithm: Option<EncryptionAlgorithm>,
    file: Option<RelativePath>,
    env: Option<String>,
}

impl SecretSpec {
    /// The secret's name, unique in the policy, used in messages and as the key in JSON output.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of the key rule under `keys` that governs this secret. The loader guarantees
    /// that the rule exists.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The KMS `CiphertextBlob`: 1 to 6144 bytes, decoded from `ciphertext` or read from
    /// `ciphertext_file` at load time.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// The file the ciphertext was read from, resolved against the policy file's folder, or
    /// `None` when the policy carries the ciphertext inline.
    pub fn ciphertext_file(&self) -> Option<&Path> {
        self.ciphertext_file.as_deref()
    }

    /// The KMS encryption context; empty when the policy gives none.
    pub fn encryption_context(&self) -> &BTreeMap<String, String> {
        &self.encryption_context
    }

    /// The `EncryptionAlgorithm` to send with `Decrypt`; `None` means the parameter is not
    /// sent and KMS uses `SYMMETRIC_DEFAULT`. Ciphertexts of asymmetric KMS keys need one.
    pub fn encryption_algorithm(&self) -> Option<EncryptionAlgorithm> {
        self.encryption_algorithm
    }

    /// Where `fetch` writes the plaintext, relative to the output folder.
    pub fn file(&self) -> Option<&RelativePath> {
        self.file.as_ref()
    }

    /// The environment variable for `fetch --format env` and `exec`. At least one of `file`
    /// and `env` is set.
    pub fn env(&self) -> Option<&str> {
        self.env.as_deref()
    }
}

/// What each earlier secret claimed, to report reuse of a name, file or variable.
#[derive(Default)]
struct Claims {
    names: BTreeMap<String, usize>,
    files: BTreeMap<String, usize>,
    envs: BTreeMap<String, usize>,
}

/// Records `value` as claimed by secret `index`, or reports the earlier secret that claimed
/// it first.
fn claim(
    seen: &mut BTreeMap<String, usize>,
    value: &str,
    index: usize,
    what: &str,
    path: &JsonPath,
    secrets_path: &JsonPath,
    problems: &mut Problems,
) -> bool {
    if let Some(&earlier) = seen.get(value) {
        problems.push(
            path,
            format!(
                "{what} {value:?} is already used by {}",
                secrets_path.item(earlier)
            ),
        );
        return false;
    }
    seen.insert(value.to_owned(), index);
    true
}

/// Parses the `secrets` array. `rule_names` lists the member names under `keys`, or is
/// `None` when `keys` itself is unusable, in which case references are not checked.
pub(crate) fn parse_secrets(
    node: &Node,
    path: &JsonPath,
    base_dir: &Path,
    rule_names: Option<&[String]>,
    problems: &mut Problems,
) -> Option<Vec<SecretSpec>> {
    let items = problems.expect_array(node, path)?;
    if items.is_empty() {
        problems.push(path, "no secrets; list at least one");
        return None;
    }

    let mut claims = Claims::default();
    let mut secrets = Some(Vec::with_capacity(items.len()));
    for (index, item) in items.iter().enumerate() {
        let context = SecretContext {
            index,
            secrets_path: path,
            base_dir,
            rule_names,
        };
        let secret = parse_secret(item, &context, &mut claims, problems);
        match (secret, &mut secrets) {
            (Some(secret), Some(secrets)) => secrets.push(secret),
            _ => secrets = None,
        }
    }
    secrets
}

struct SecretContext<'a> {
    index: usize,
    secrets_path: &'a JsonPath,
    base_dir: &'a Path,
    rule_names: Option<&'a [String]>,
}

fn parse_secret(
    node: &Node,
    context: &SecretContext<'_>,
    claims: &mut Claims,
    problems: &mut Problems,
) -> Option<SecretSpec> {
    let path = context.secrets_path.item(context.index);
    let fields = problems.expect_object(node, &path, SECRET_FIELDS)?;

    let name = parse_name(&fields, context, claims, problems);
    let key = parse_key_reference(&fields, context.rule_names, problems);
    let ciphertext = parse_ciphertext(&fields, context.base_dir, problems);

    let encryption_context = match fields.optional("encryption_context") {
        None => Some(BTreeMap::new()),
        Some(value) => {
            parse_encryption_context(value, &fields.field_path("encryption_context"), problems)
        }
    };
    let encryption_algorithm = match fields.optional("encryption_algorithm") {
        None => Some(None),
        Some(value) => {
            parse_algorithm(value, &fields.field_path("encryption_algorithm"), problems).map(Some)
        }
    };

    let targets = parse_delivery(&fields, context, claims, problems);

    let (ciphertext, ciphertext_file) = ciphertext?;
    let Targets { file, env } = targets?;
    Some(SecretSpec {
        name: name?,
        key: key?,
        ciphertext,
        ciphertext_file,
        encryption_context: encryption_context?,
        encryption_algorithm: encryption_algorithm?,
        file,
        env,
    })
}

/// Secret names appear in logs and messages, so they are limited to characters that print
/// plainly.
fn is_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn parse_name(
    fields: &ObjectReader<'_>,
    context: &SecretContext<'_>,
    claims: &mut Claims,
    problems: &mut Problems,
) -> Option<String> {
    let path = fields.field_path("name");
    let node = fields.required("name", problems)?;
    let name = problems.expect_str(node, &path)?;
    if !is_secret_name(name) {
        problems.push(
            &path,
            format!("invalid secret name {name:?}; use letters, digits, _, - and . only"),
        );
        return None;
    }
    let unique = claim(
        &mut claims.names,
        name,
        context.index,
        "secret name",
        &path,
        context.secrets_path,
        problems,
    );
    unique.then(|| name.to_owned())
}

fn parse_key_reference(
    fields: &ObjectReader<'_>,
    rule_names: Option<&[String]>,
    problems: &mut Problems,
) -> Option<String> {
    let path = fields.field_path("key");
    let node = fields.required("key", problems)?;
    let key = problems.expect_str(node, &path)?;
    let Some(rule_names) = rule_names else {
        return Some(key.to_owned());
    };
    if !rule_names.iter().any(|rule| rule == key) {
        let defined = if rule_names.is_empty() {
            "none".to_owned()
        } else {
            rule_names.join(", ")
        };
        problems.push(
            &path,
            format!("no key rule named {key:?} under keys; defined rules: {defined}"),
        );
        return None;
    }
    Some(key.to_owned())
}

fn parse_encryption_context(
    node: &Node,
    path: &JsonPath,
    problems: &mut Problems,
) -> Option<BTreeMap<String, String>> {
    let members = problems.expect_map(node, path)?;
    let mut context = Some(BTreeMap::new());
    for (name, value) in members {
        let value = problems.expect_str(value, &path.member(name));
        match (value, &mut context) {
            (Some(value), Some(context)) => {
                context.insert(name.clone(), value.to_owned());
            }
            _ => context = None,
        }
    }
    context
}

/// Delivery targets of one secret; at least one is set.
struct Targets {
    file: Option<RelativePath>,
    env: Option<String>,
}

/// Parses `file` and `env`, checking every present field even after a problem in another.
fn parse_delivery(
    fields: &ObjectReader<'_>,
    context: &SecretContext<'_>,
    claims: &mut Claims,
    problems: &mut Problems,
) -> Option<Targets> {
    let file_node = fields.optional("file");
    let env_node = fields.optional("env");
    if file_node.is_none() && env_node.is_none() {
        problems.push(fields.path(), "no delivery target; set file, env or both");
        return None;
    }

    let file_path = fields.field_path("file");
    let file = file_node.map(|node| parse_file_target(node, &file_path, context, claims, problems));
    let env_path = fields.field_path("env");
    let env = env_node.map(|node| parse_env_target(node, &env_path, context, claims, problems));

    // Both fields are parsed before either result is checked, so that both are reported. Each
    // is `None` when the field is absent and `Some(None)` when it is present but invalid.
    let file = match file {
        None => None,
        Some(parsed) => Some(parsed?),
    };
    let env = match env {
        None => None,
        Some(parsed) => Some(parsed?),
    };
    Some(Targets { file, env })
}

fn parse_file_target(
    node: &Node,
    path: &JsonPath,
    context: &SecretContext<'_>,
    claims: &mut Claims,
    problems: &mut Problems,
) -> Option<RelativePath> {
    let text = problems.expect_str(node, path)?;
    let file = match RelativePath::parse(text) {
        Ok(file) => file,
        Err(error) => {
            problems.push(path, format!("invalid file {text:?}: {error}"));
            return None;
        }
    };

    // A path cannot be both a file and the folder of another file, so `tls` and `tls/key`
    // in two secrets would make delivery fail after KMS has already been asked.
    let nested = find_nested(&claims.files, file.as_str());
    if let Some((other, &earlier)) = nested {
        problems.push(
            path,
            format!(
                "file {:?} and file {other:?} of {} cannot both exist, because one is inside \
                 the other",
                file.as_str(),
                context.secrets_path.item(earlier)
            ),
        );
        return None;
    }

    let unique = claim(
        &mut claims.files,
        file.as_str(),
        context.index,
        "file",
        path,
        context.secrets_path,
        problems,
    );
    unique.then_some(file)
}

/// Finds a claimed file that is a folder of `file` or lies inside `file` taken as a folder,
/// both written as `/`-separated relative paths. Looks up each parent of `file`, then the
/// key range `file/…`, so a policy with many files is checked in O(n log n).
fn find_nested<'a>(
    files: &'a BTreeMap<String, usize>,
    file: &str,
) -> Option<(&'a String, &'a usize)> {
    for (position, byte) in file.bytes().enumerate() {
        if byte == b'/'
            && let Some(found) = files.get_key_value(&file[..position])
        {
            return Some(found);
        }
    }
    // Keys inside `file/` sort between "file/" and "file0" ('0' follows '/' in ASCII).
    let start = format!("{file}/");
    let end = format!("{file}0");
    files.range(start..end).next()
}

fn parse_env_target(
    node: &Node,
    path: &JsonPath,
    context: &SecretContext<'_>,
    claims: &mut Claims,
    problems: &mut Problems,
) -> Option<String> {
    let name = problems.expect_str(node, path)?;
    if !is_env_name(name) {
        problems.push(
            path,
            format!(
                "invalid environment variable name {name:?}; expected a letter or _ followed \
                 by letters, digits or _"
            ),
        );
        return None;
    }
    if let Some(reason) = reserved_env_name(name) {
        problems.push(
            path,
            format!(
                "environment variable {name:?} is not allowed for secrets: {reason}, and exec \
                 passes the secrets to the program in its environment. Choose another name"
            ),
        );
        return None;
    }
    let unique = claim(
        &mut claims.envs,
        name,
        context.index,
        "environment variable",
        path,
        context.secrets_path,
        problems,
    );
    unique.then(|| name.to_owned())
}

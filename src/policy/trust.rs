//! Trust roots (`trust.roots`): the certificates an attestation document's chain must end in.

use std::path::{Path, PathBuf};

use super::json::{JsonPath, Node, Problems};

/// The name of the AWS Nitro Enclaves root certificate (G1) in `trust.roots`.
pub const AWS_NITRO_ENCLAVES_G1: &str = "aws-nitro-enclaves-g1";

const ROOTS_FIELDS: &[&str] = &["roots"];
const DEV_ROOT_FIELDS: &[&str] = &["dev_root_pem"];

/// One accepted root certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustRootSpec {
    /// The AWS Nitro Enclaves root (G1), which the verifier pins by the SHA-256 of its DER.
    AwsNitroEnclavesG1,
    /// A development root, such as the one `enclave-broker sim init` writes. The broker warns
    /// on every run of a policy that contains one.
    DevRootPem {
        /// The file, resolved against the policy file's folder when written as relative.
        path: PathBuf,
        /// The file's contents, read when the policy was loaded. They contain a
        /// `-----BEGIN CERTIFICATE-----` line; the verifier parses the certificate.
        pem: Vec<u8>,
    },
}

impl TrustRootSpec {
    pub fn is_development_root(&self) -> bool {
        matches!(self, TrustRootSpec::DevRootPem { .. })
    }
}

/// Parses the optional `trust` object. Records a problem for every defect found.
pub(crate) fn parse_trust(
    node: Option<&Node>,
    path: &JsonPath,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<Vec<TrustRootSpec>> {
    let Some(node) = node else {
        return Some(vec![TrustRootSpec::AwsNitroEnclavesG1]);
    };
    let fields = problems.expect_object(node, path, ROOTS_FIELDS)?;
    let Some(roots_node) = fields.optional("roots") else {
        return Some(vec![TrustRootSpec::AwsNitroEnclavesG1]);
    };

    let roots_path = fields.field_path("roots");
    let items = problems.expect_array(roots_node, &roots_path)?;
    if items.is_empty() {
        problems.push(
            &roots_path,
            format!(
                "empty list would trust no attestation document; list \"{AWS_NITRO_ENCLAVES_G1}\" \
                 or leave out trust.roots to use it by default"
            ),
        );
        return None;
    }

    let mut roots = Some(Vec::with_capacity(items.len()));
    for (index, item) in items.iter().enumerate() {
        let item_path = roots_path.item(index);
        if let Some(earlier) = items[..index].iter().position(|other| other == item) {
            problems.push(&item_path, format!("repeats {}", roots_path.item(earlier)));
            roots = None;
            continue;
        }
        let root = parse_root(item, &item_path, base_dir, problems);
        match (root, &mut roots) {
            (Some(root), Some(roots)) => roots.push(root),
            _ => roots = None,
        }
    }
    roots
}

fn parse_root(
    node: &Node,
    path: &JsonPath,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<TrustRootSpec> {
    if let Node::String(name) = node {
        if name == AWS_NITRO_ENCLAVES_G1 {
            return Some(TrustRootSpec::AwsNitroEnclavesG1);
        }
        problems.push(
            path,
            format!(
                "unknown root {name:?}; expected \"{AWS_NITRO_ENCLAVES_G1}\" or \
                 {{\"dev_root_pem\": PATH}}"
            ),
        );
        return None;
    }
    if !matches!(node, Node::Object(_)) {
        problems.push(
            path,
            format!(
                "expected \"{AWS_NITRO_ENCLAVES_G1}\" or {{\"dev_root_pem\": PATH}}, found {}",
                node.kind()
            ),
        );
        return None;
    }

    let fields = problems.expect_object(node, path, DEV_ROOT_FIELDS)?;
    let pem_node = fields.required("dev_root_pem", problems)?;
    let pem_path = fields.field_path("dev_root_pem");
    let text = problems.expect_str(pem_node, &pem_path)?;
    let file = super::resolve_file_path(text, base_dir)
        .map_err(|message| problems.push(&pem_path, message))
        .ok()?;
    let pem = super::read_file(&file, None)
        .map_err(|message| problems.push(&pem_path, message))
        .ok()?;
    if !contains(&pem, b"-----BEGIN CERTIFICATE-----") {
        problems.push(
            &pem_path,
            format!(
                "{} does not contain a PEM certificate (no -----BEGIN CERTIFICATE----- line)",
                file.display()
            ),
        );
        return None;
    }
    // The same parse the verifier does, so `policy check` rejects what `fetch` would.
    if let Err(error) =
        crate::attestation::verify::TrustRoot::from_pem(&pem, file.display().to_string())
    {
        problems.push(&pem_path, format!("{}: {error}", file.display()));
        return None;
    }
    Some(TrustRootSpec::DevRootPem { path: file, pem })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

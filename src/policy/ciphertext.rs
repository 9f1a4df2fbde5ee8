//! The KMS ciphertext of a secret, given inline as base64 or as a file.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::json::{JsonPath, ObjectReader, Problems};

/// Maximum size in bytes of the `CiphertextBlob` of KMS `Decrypt` (KMS API model,
/// `CiphertextType`).
pub const MAX_CIPHERTEXT_LEN: usize = 6144;

/// Reads exactly one of `ciphertext` (inline base64) and `ciphertext_file`.
pub(crate) fn parse_ciphertext(
    fields: &ObjectReader<'_>,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<(Vec<u8>, Option<PathBuf>)> {
    match (
        fields.optional("ciphertext"),
        fields.optional("ciphertext_file"),
    ) {
        (Some(_), Some(_)) => {
            problems.push(
                fields.path(),
                "both ciphertext and ciphertext_file are set; give exactly one",
            );
            None
        }
        (None, None) => {
            problems.push(
                fields.path(),
                "missing ciphertext; give ciphertext (base64) or ciphertext_file (a file path)",
            );
            None
        }
        (Some(value), None) => {
            let path = fields.field_path("ciphertext");
            let text = problems.expect_str(value, &path)?;
            let bytes = STANDARD
                .decode(text)
                .map_err(|error| {
                    problems.push(&path, format!("invalid standard base64: {error}"));
                })
                .ok()?;
            check_ciphertext_len(bytes.len(), "ciphertext decodes to", &path, problems)?;
            Some((bytes, None))
        }
        (None, Some(value)) => {
            let path = fields.field_path("ciphertext_file");
            let text = problems.expect_str(value, &path)?;
            let file = super::resolve_file_path(text, base_dir)
                .map_err(|message| problems.push(&path, message))
                .ok()?;
            let bytes = super::read_file(&file, Some(MAX_CIPHERTEXT_LEN))
                .map_err(|message| problems.push(&path, message))
                .ok()?;
            let what = format!("{} holds", file.display());
            check_ciphertext_len(bytes.len(), &what, &path, problems)?;
            Some((bytes, Some(file)))
        }
    }
}

fn check_ciphertext_len(
    len: usize,
    what: &str,
    path: &JsonPath,
    problems: &mut Problems,
) -> Option<()> {
    if len == 0 {
        problems.push(
            path,
            format!("{what} 0 bytes; a KMS ciphertext is never empty"),
        );
        return None;
    }
    if len > MAX_CIPHERTEXT_LEN {
        problems.push(
            path,
            format!(
                "{what} more than {MAX_CIPHERTEXT_LEN} bytes, the largest ciphertext KMS \
                 Decrypt accepts"
            ),
        );
        return None;
    }
    Some(())
}

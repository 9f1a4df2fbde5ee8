//! Files of a simulator directory (created with mode 0700):
//!
//! | file | content | mode |
//! |---|---|---|
//! | `root.pem` | development root certificate, the trust root for simulated documents | 0644 |
//! | `root-key.pem` | the root's private key, PKCS#8 PEM | 0600 |
//! | `pcrs.json` | PCR index (`"0"`–`"31"`) → 96 hex digits | 0600 |
//!
//! Files are written to a temporary name in the same directory and renamed into place.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::SimError;
use crate::attestation::pcr::{PcrIndex, PcrValue};

pub(super) const ROOT_CERT_FILE: &str = "root.pem";
pub(super) const ROOT_KEY_FILE: &str = "root-key.pem";
pub(super) const PCRS_FILE: &str = "pcrs.json";

pub(super) const PUBLIC_MODE: u32 = 0o644;
pub(super) const PRIVATE_MODE: u32 = 0o600;

/// Creates `dir` with mode 0700, or accepts an existing directory that group and others
/// cannot write (they could otherwise replace the CA).
pub(super) fn prepare_dir(dir: &Path) -> Result<(), SimError> {
    match fs::metadata(dir) {
        Ok(metadata) if !metadata.is_dir() => Err(SimError::NotADirectory {
            dir: dir.to_owned(),
        }),
        Ok(metadata) if metadata.permissions().mode() & 0o022 != 0 => {
            Err(SimError::InsecurePermissions {
                path: dir.to_owned(),
                mode: metadata.permissions().mode() & 0o777,
                expected: "not writable by group or others",
            })
        }
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| io_error(dir, source)),
        Err(source) => Err(io_error(dir, source)),
    }
}

/// Writes `contents` to `dir/name` with `mode`, replacing any previous file atomically.
pub(super) fn write_file(
    dir: &Path,
    name: &str,
    contents: &[u8],
    mode: u32,
) -> Result<(), SimError> {
    let path = dir.join(name);
    let temporary = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    match fs::remove_file(&temporary) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            return Err(io_error(&temporary, error));
        }
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .map_err(|source| io_error(&temporary, source))?;
    // The mode given at creation is reduced by the umask; set it exactly.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(contents))
        .and_then(|()| file.sync_all())
        .map_err(|source| io_error(&temporary, source))?;
    fs::rename(&temporary, &path).map_err(|source| io_error(&path, source))
}

/// Reads `dir/name`; `None` when the file does not exist.
pub(super) fn read_optional(dir: &Path, name: &str) -> Result<Option<Vec<u8>>, SimError> {
    let path = dir.join(name);
    match crate::file_input::read_limited(&path, crate::file_input::MAX_SMALL_FILE_LEN) {
        Ok(contents) => Ok(Some(contents)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(io_error(&path, source)),
    }
}

/// Rejects a private file that group or others can read or write.
pub(super) fn check_private(dir: &Path, name: &str) -> Result<(), SimError> {
    let path = dir.join(name);
    let metadata = fs::metadata(&path).map_err(|source| io_error(&path, source))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SimError::InsecurePermissions {
            path,
            mode,
            expected: "0600",
        });
    }
    Ok(())
}

/// Encodes PCRs as a JSON object of index → lowercase hex, one entry per line.
pub(super) fn encode_pcrs(pcrs: &BTreeMap<PcrIndex, PcrValue>) -> Vec<u8> {
    let object: serde_json::Map<String, serde_json::Value> = pcrs
        .iter()
        .map(|(index, value)| (index.to_string(), serde_json::Value::String(value.to_hex())))
        .collect();
    // serde_json fails only on map keys that are not strings, so the default is never used.
    let mut text = serde_json::to_string_pretty(&object).unwrap_or_default();
    text.push('\n');
    text.into_bytes()
}

pub(super) fn decode_pcrs(
    dir: &Path,
    contents: &[u8],
) -> Result<BTreeMap<PcrIndex, PcrValue>, SimError> {
    let path = dir.join(PCRS_FILE);
    let invalid = |detail: String| SimError::InvalidState {
        path: path.clone(),
        detail,
    };
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(contents).map_err(|error| invalid(error.to_string()))?;
    let mut pcrs = BTreeMap::new();
    for (index, value) in object {
        let parsed_index =
            PcrIndex::parse_decimal(&index).map_err(|error| invalid(error.to_string()))?;
        let text = value
            .as_str()
            .ok_or_else(|| invalid(format!("PCR{index} is not a string of 96 hex digits")))?;
        let parsed_value = PcrValue::parse_sha384_hex(text)
            .map_err(|error| invalid(format!("PCR{index}: {error}")))?;
        pcrs.insert(parsed_index, parsed_value);
    }
    Ok(pcrs)
}

fn io_error(path: &Path, source: io::Error) -> SimError {
    SimError::Io {
        path: PathBuf::from(path),
        source,
    }
}

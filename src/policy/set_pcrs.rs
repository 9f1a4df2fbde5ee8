//! `policy set-pcrs`: write the measurements of a new enclave image into a key rule.
//!
//! The edit replaces only the text of `keys.<rule>.allow`, re-indented like the original, so
//! the rest of the file (order, spacing, other rules, secrets) stays byte for byte. The result
//! is loaded again before anything is written, and written atomically (temporary file in the
//! same folder, then rename).
//!
//! The rule ends up with one allow entry: the build's PCR0, PCR1, PCR2 and, for signed
//! images, PCR8. PCRs that a build does not measure (PCR3, the parent's IAM role; PCR4, the
//! parent instance) are kept when every old entry pins the same value, because dropping them
//! would silently widen the rule. A rule with several allow entries is replaced only with
//! `replace_all`, since the other entries may belong to images still in service.

mod build_output;
mod locate;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use build_output::{BUILD_PCRS, BuildMeasurements, BuildOutputError};

use super::ReleasePolicy;
use super::error::{PolicyError, Problem};
use super::key_rules::key_rules_from_str;
use crate::attestation::pcr::{PcrIndex, PcrValue};

/// Reason `set-pcrs` left the policy file unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetPcrsError {
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    BuildOutput(#[from] BuildOutputError),
    #[error(transparent)]
    InvalidPolicy(PolicyError),
    #[error("key rule {rule:?} not found; the policy defines {}", known.join(", "))]
    UnknownKeyRule { rule: String, known: Vec<String> },
    #[error(
        "key rule {rule:?} has {count} allow entries; pass --replace-all to replace them all \
         with the new measurements"
    )]
    SeveralAllowEntries { rule: String, count: usize },
    #[error("internal error: could not locate keys.{rule}.allow in the policy text")]
    AllowNotFound { rule: String },
    #[error("the edited policy does not load: {0}")]
    EditRejected(PolicyError),
    #[error("the edit would add problems to the policy:{}", format_problems(.0))]
    NewProblems(Vec<Problem>),
    #[error("failed to write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn format_problems(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("\n  {p}")).collect()
}

/// Summary of an edit, for the messages the command prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetPcrsOutcome {
    /// The new policy text.
    pub text: String,
    /// Number of allow entries replaced.
    pub replaced_entries: usize,
    /// PCRs outside the build's set that were carried over from the old entries.
    pub kept: Vec<PcrIndex>,
    /// PCRs of the old entries that the new entry no longer pins: PCR8 after an unsigned
    /// build, and non-build PCRs on which the old entries disagreed.
    pub dropped: Vec<PcrIndex>,
    /// Problems the full loader reports both before and after the edit (missing ciphertext
    /// files, for example); the edit neither caused nor fixed them.
    pub unrelated_problems: Vec<Problem>,
}

/// Replaces the allow list of `rule` in the policy text.
pub fn set_pcrs_in_text(
    text: &str,
    rule_name: &str,
    measurements: &BuildMeasurements,
    replace_all: bool,
) -> Result<SetPcrsOutcome, SetPcrsError> {
    // The old text must load, and the rule must exist.
    let rules = key_rules_from_str(text).map_err(SetPcrsError::InvalidPolicy)?;
    let rule = rules
        .get(rule_name)
        .ok_or_else(|| SetPcrsError::UnknownKeyRule {
            rule: rule_name.to_owned(),
            known: rules.keys().cloned().collect(),
        })?;
    let old_entries: Vec<&BTreeMap<PcrIndex, PcrValue>> =
        rule.allow().iter().map(|entry| entry.pcrs()).collect();
    if old_entries.len() > 1 && !replace_all {
        return Err(SetPcrsError::SeveralAllowEntries {
            rule: rule_name.to_owned(),
            count: old_entries.len(),
        });
    }

    // The new entry: the build's PCRs plus the non-build PCRs all old entries agree on.
    let mut pcrs = measurements.pcrs().clone();
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    let old_indexes: std::collections::BTreeSet<PcrIndex> = old_entries
        .iter()
        .flat_map(|entry| entry.keys().copied())
        .collect();
    for index in old_indexes {
        if pcrs.contains_key(&index) {
            continue;
        }
        let first = old_entries[0].get(&index);
        let agreed = old_entries.iter().all(|entry| entry.get(&index) == first);
        match first {
            Some(value) if agreed && !BUILD_PCRS.contains(&index.get()) => {
                pcrs.insert(index, value.clone());
                kept.push(index);
            }
            _ => dropped.push(index),
        }
    }

    // Replace the text of the allow value only.
    let (start, end) =
        locate::find_value(text, &["keys", rule_name, "allow"]).ok_or_else(|| {
            SetPcrsError::AllowNotFound {
                rule: rule_name.to_owned(),
            }
        })?;
    let rendered = render_allow(text, start, end, &pcrs);
    let new_text = format!("{}{}{}", &text[..start], rendered, &text[end..]);

    // Prove the result: it loads, and the rule now contains exactly the new entry.
    let new_rules = key_rules_from_str(&new_text).map_err(SetPcrsError::EditRejected)?;
    let written: Vec<&BTreeMap<PcrIndex, PcrValue>> = new_rules
        .get(rule_name)
        .map(|rule| rule.allow().iter().map(|entry| entry.pcrs()).collect())
        .unwrap_or_default();
    if written != [&pcrs] {
        return Err(SetPcrsError::AllowNotFound {
            rule: rule_name.to_owned(),
        });
    }

    Ok(SetPcrsOutcome {
        text: new_text,
        replaced_entries: old_entries.len(),
        kept,
        dropped,
        unrelated_problems: Vec::new(),
    })
}

/// Reads the policy file, edits it and replaces it atomically. The edited policy must add no
/// problem that the full release-policy loader did not already report for the old file.
pub fn set_pcrs_file(
    path: &Path,
    rule_name: &str,
    measurements: &BuildMeasurements,
    replace_all: bool,
) -> Result<SetPcrsOutcome, SetPcrsError> {
    // The file is replaced by rename, so it must be a regular file, not a pipe.
    let text =
        crate::file_input::read_regular_limited_to_string(path, crate::file_input::MAX_CONFIG_LEN)
            .map_err(|source| SetPcrsError::Read {
                path: path.to_path_buf(),
                source,
            })?;
    let mut outcome = set_pcrs_in_text(&text, rule_name, measurements, replace_all)?;

    let base_dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let problems = |text: &str| match ReleasePolicy::from_json_str(text, base_dir) {
        Ok(_) => Vec::new(),
        Err(error) => error.problems().to_vec(),
    };
    let old_problems = problems(&text);
    let (unrelated, new): (Vec<Problem>, Vec<Problem>) = problems(&outcome.text)
        .into_iter()
        .partition(|problem| old_problems.contains(problem));
    if !new.is_empty() {
        return Err(SetPcrsError::NewProblems(new));
    }
    outcome.unrelated_problems = unrelated;

    write_atomically(path, outcome.text.as_bytes())?;
    Ok(outcome)
}

/// Formats the allow list like the text it replaces: on one line when the old value was on
/// one line, otherwise one member per line, indented in the file's own step.
fn render_allow(
    text: &str,
    start: usize,
    end: usize,
    pcrs: &BTreeMap<PcrIndex, PcrValue>,
) -> String {
    let members: Vec<String> = pcrs
        .iter()
        .map(|(index, value)| format!("\"{index}\": \"{}\"", value.to_hex()))
        .collect();
    let old = &text[start..end];
    if !old.contains('\n') {
        return format!("[{{\"pcrs\": {{{}}}}}]", members.join(", "));
    }

    // Indentation of the line holding `"allow": [`, and the step from it to the next line.
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let base: String = text[line_start..start]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect();
    let step = old
        .split('\n')
        .nth(1)
        .map(|line| {
            let indent: String = line
                .chars()
                .take_while(|c| *c == ' ' || *c == '\t')
                .collect();
            indent.strip_prefix(base.as_str()).unwrap_or("").to_owned()
        })
        .filter(|step| !step.is_empty())
        .unwrap_or_else(|| "  ".to_owned());

    let line = |depth: usize, content: &str| format!("{base}{}{content}", step.repeat(depth));
    let mut lines = vec!["[".to_owned(), line(1, "{"), line(2, "\"pcrs\": {")];
    let count = members.len();
    for (position, member) in members.iter().enumerate() {
        let comma = if position + 1 < count { "," } else { "" };
        lines.push(line(3, &format!("{member}{comma}")));
    }
    lines.push(line(2, "}"));
    lines.push(line(1, "}"));
    lines.push(line(0, "]"));
    lines.join("\n")
}

/// Writes `bytes` to a temporary file beside `path` with the same permissions, then renames
/// it over `path`, so readers see the old file or the new one, never a partial one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SetPcrsError> {
    let failed = |source: std::io::Error| SetPcrsError::Write {
        path: path.to_path_buf(),
        source,
    };
    // Through a symbolic link, write the file it points to: replacing the link with a
    // regular file would leave the target (which Terraform may read) with the old PCRs.
    let resolved = fs::canonicalize(path).map_err(failed)?;
    let path = resolved.as_path();
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "policy.json".to_owned());
    let temporary =
        path.with_file_name(format!(".{file_name}.set-pcrs-{}.tmp", std::process::id()));
    let permissions = fs::metadata(path).map_err(failed)?.permissions();

    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.set_permissions(permissions)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if let Err(error) = result {
        // The temporary file may not exist when open failed; nothing else to clean up then.
        let _ = fs::remove_file(&temporary);
        return Err(failed(error));
    }
    Ok(())
}

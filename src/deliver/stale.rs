//! Removal of staged and backup files that an earlier run left behind because it was killed
//! (SIGKILL, power loss) between staging and renaming. Such files hold plaintext secrets.

use std::fs;
use std::path::Path;

use tracing::{debug, info};

/// Start of the name of every staged (`.tmp`) and backup (`.old`) file.
pub(super) const PREFIX: &str = ".enclave-broker-";

/// Returns the name of the staged file for the item at `index`, written by process `pid`.
pub(super) fn staged_name(pid: u32, index: usize) -> String {
    format!("{PREFIX}{pid}-{index}.tmp")
}

/// Returns the process id in a name of the form `.enclave-broker-<pid>-<n>.tmp` or `.old`,
/// or `None` for any other name.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let rest = rest
        .strip_suffix(".tmp")
        .or_else(|| rest.strip_suffix(".old"))?;
    let (pid, index) = rest.split_once('-')?;
    let all_digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(pid) || !all_digits(index) {
        return None;
    }
    pid.parse().ok()
}

/// Returns whether the files of process `pid` may belong to a delivery in progress: the
/// process runs, as `/proc` shows it, and is not this one. This process stages its files only
/// after the sweep, so files with its own id were left by an earlier process that had the
/// same id, as happens when a container restarts in a fresh PID namespace.
fn may_be_in_progress(pid: u32) -> bool {
    pid != std::process::id() && Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes from `folder` the staged and backup files whose process no longer runs, and
/// returns how many were removed. Files of other running processes stay, so concurrent runs
/// delivering into one folder keep working. Call it before this process stages any file
/// in `folder`.
///
/// NOTE: a process id is checked in this process's PID namespace. A run in another
/// namespace (another container) that shares the folder looks dead, so its staged files are
/// removed and its rename fails; that run then reports the error and delivers nothing. A
/// dead run's id that has since been reused by another process keeps its files until that
/// process ends.
pub(super) fn remove_stale_files(folder: &Path) -> usize {
    if !Path::new("/proc/self").exists() {
        debug!(
            folder = %folder.display(),
            "/proc is not mounted, so staged files of ended runs cannot be identified and are kept"
        );
        return 0;
    }
    let Ok(entries) = fs::read_dir(folder) else {
        return 0;
    };

    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        let is_file = entry.file_type().is_ok_and(|file_type| file_type.is_file());
        if !is_file || may_be_in_progress(pid) {
            continue;
        }
        if fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        info!(
            folder = %folder.display(),
            removed,
            "removed temporary files left by broker runs that no longer run"
        );
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_owner_of_staged_and_backup_names() {
        assert_eq!(owner_pid(".enclave-broker-123-0.tmp"), Some(123));
        assert_eq!(owner_pid(".enclave-broker-45-12.old"), Some(45));
        assert_eq!(owner_pid(&staged_name(7, 3)), Some(7));
    }

    #[test]
    fn ignores_names_of_other_files() {
        for name in [
            "db",
            ".enclave-broker-123.tmp",
            ".enclave-broker--0.tmp",
            ".enclave-broker-12a-0.tmp",
            ".enclave-broker-123-0.tmp.bak",
            ".enclave-broker-123-0.txt",
            "enclave-broker-123-0.tmp",
            ".enclave-broker-99999999999-0.tmp",
        ] {
            assert_eq!(owner_pid(name), None, "name {name:?}");
        }
    }

    #[test]
    fn removes_files_of_ended_processes() {
        let folder = tempfile::tempdir().unwrap();
        // Process ids stay below 2^22 on Linux, so this one never runs.
        let dead = folder.path().join(staged_name(4_194_305, 0));
        let dead_backup = folder.path().join(".enclave-broker-4194305-1.old");
        let live = folder
            .path()
            .join(staged_name(std::os::unix::process::parent_id(), 0));
        let own = folder.path().join(staged_name(std::process::id(), 0));
        let unrelated = folder.path().join("db");
        for path in [&dead, &dead_backup, &live, &own, &unrelated] {
            fs::write(path, b"secret").unwrap();
        }

        let removed = remove_stale_files(folder.path());

        assert_eq!(removed, 3);
        assert!(!dead.exists());
        assert!(!dead_backup.exists());
        assert!(
            !own.exists(),
            "an earlier process with this process's id left it"
        );
        assert!(live.exists(), "a running process's staged file stays");
        assert!(unrelated.exists());
    }

    #[test]
    fn keeps_folder_with_stale_name() {
        let folder = tempfile::tempdir().unwrap();
        let named_folder = folder.path().join(staged_name(4_194_305, 0));
        fs::create_dir(&named_folder).unwrap();

        assert_eq!(remove_stale_files(folder.path()), 0);
        assert!(named_folder.exists());
    }
}

//! File delivery: every secret is staged in a temporary file beside its target, then all
//! are renamed into place. Files are mode 0400; folders the broker creates are 0700.
//!
//! Every folder on the way to a target (the output folder and its subfolders) must be a real
//! directory, not a symbolic link, and owned by the user running the broker. Group and
//! others must not be able to write to it, because they could otherwise swap the files.
//!
//! Before staging, each of these folders is cleared of staged files left by runs that were
//! killed (see [`super::stale`]). A SIGTERM, SIGINT, SIGHUP or SIGQUIT during delivery (see
//! [`super::interrupt`]) undoes it like any other failure.

use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::interrupt::Interrupt;
use super::stale;
use super::{DeliverError, Item};

/// A temporary file written and synced, waiting to be renamed to its target.
struct Staged {
    temporary: PathBuf,
    target: PathBuf,
    /// Temporary name of the file that was at `target`, restored if delivery fails.
    backup: Option<PathBuf>,
}

/// Writes each item with a `file` target under `out_dir`, all or nothing, and returns the
/// paths written.
///
/// `out_dir` is created 0700 when missing. If anything fails, no new file remains, files
/// that were there before are restored, and folders created by this call are removed again.
pub fn write_files(out_dir: &Path, items: &[Item<'_>]) -> Result<Vec<PathBuf>, DeliverError> {
    write_files_interruptible(out_dir, items, &Interrupt::default())
}

/// Does what [`write_files`] does, and also stops when `interrupt` records a signal: the
/// delivery is then undone as on any failure and [`DeliverError::Interrupted`] returned.
pub fn write_files_interruptible(
    out_dir: &Path,
    items: &[Item<'_>],
    interrupt: &Interrupt,
) -> Result<Vec<PathBuf>, DeliverError> {
    let mut targets = Vec::with_capacity(items.len());
    for item in items {
        let relative = item.file.ok_or_else(|| DeliverError::MissingTarget {
            name: item.name.to_owned(),
            target: "file",
            mode: "files",
        })?;
        check_relative(item.name, relative)?;
        targets.push(out_dir.join(relative));
    }

    interrupt.begin();
    let mut created_folders = Vec::new();
    let result = stage_and_rename(out_dir, items, &targets, &mut created_folders, interrupt);
    if result.is_err() {
        // Innermost first, and only if empty: a folder that held anything stays.
        for folder in created_folders.iter().rev() {
            let _ = fs::remove_dir(folder);
        }
        interrupt.abandon();
    }
    result.map(|()| targets)
}

/// Checks every existing folder that will receive a file and removes the staged files that
/// killed runs left there. Folders that do not exist yet cannot hold any.
fn remove_stale_files(out_dir: &Path, targets: &[PathBuf]) -> Result<(), DeliverError> {
    let folders: BTreeSet<&Path> = targets
        .iter()
        .filter_map(|target| target.parent())
        .chain([out_dir])
        .collect();
    for folder in folders {
        let is_folder = fs::symlink_metadata(folder).is_ok_and(|metadata| metadata.is_dir());
        if !is_folder {
            continue;
        }
        // Only folders that pass the ownership and permission checks are touched.
        ensure_private_folder(folder, &mut Vec::new())?;
        stale::remove_stale_files(folder);
    }
    Ok(())
}

fn stage_and_rename(
    out_dir: &Path,
    items: &[Item<'_>],
    targets: &[PathBuf],
    created_folders: &mut Vec<PathBuf>,
    interrupt: &Interrupt,
) -> Result<(), DeliverError> {
    ensure_private_folder(out_dir, created_folders)?;
    remove_stale_files(out_dir, targets)?;

    // 1. Stage every file.
    let mut staged: Vec<Staged> = Vec::with_capacity(items.len());
    for (index, (item, target)) in items.iter().zip(targets).enumerate() {
        let staging = interrupt
            .check()
            .map_err(DeliverError::interrupted)
            .and_then(|()| stage(out_dir, target, item, index, created_folders));
        match staging {
            Ok(file) => staged.push(file),
            Err(error) => {
                remove_all(staged.iter().map(|file| &file.temporary));
                return Err(error);
            }
        }
    }

    // 2. Rename each into place, undoing the earlier renames if one fails.
    for position in 0..staged.len() {
        pause_before_rename(position, interrupt);
        let installing = interrupt
            .check()
            .map_err(DeliverError::interrupted)
            .and_then(|()| install(&mut staged[position]));
        if let Err(error) = installing {
            roll_back(&staged[..position]);
            remove_all(staged[position..].iter().map(|file| &file.temporary));
            if let Some(backup) = &staged[position].backup {
                let _ = fs::rename(backup, &staged[position].target);
            }
            return Err(error);
        }
    }

    // 3. A signal that came during the last rename still undoes the whole delivery.
    if let Err(signal) = interrupt.finish() {
        roll_back(&staged);
        return Err(DeliverError::interrupted(signal));
    }
    for file in &staged {
        if let Some(backup) = &file.backup {
            let _ = fs::remove_file(backup);
        }
    }
    sync_folders(targets);
    Ok(())
}

/// Moves an existing regular file or symbolic link at the target aside, then renames the
/// staged file into place. Anything else at the target (a folder) is an error.
fn install(file: &mut Staged) -> Result<(), DeliverError> {
    let write_error = |path: &Path, source| DeliverError::Write {
        path: path.display().to_string(),
        source,
    };
    match fs::symlink_metadata(&file.target) {
        Ok(metadata) if metadata.is_dir() => {
            return Err(write_error(
                &file.target,
                std::io::Error::new(std::io::ErrorKind::IsADirectory, "target is a directory"),
            ));
        }
        Ok(_) => {
            let backup = file.temporary.with_extension("old");
            fs::rename(&file.target, &backup)
                .map_err(|source| write_error(&file.target, source))?;
            file.backup = Some(backup);
        }
        Err(_) => {}
    }
    fs::rename(&file.temporary, &file.target).map_err(|source| write_error(&file.target, source))
}

/// Undoes installed files: removes each new file and puts back what it replaced.
fn roll_back(installed: &[Staged]) {
    for file in installed.iter().rev() {
        let _ = fs::remove_file(&file.target);
        if let Some(backup) = &file.backup {
            let _ = fs::rename(backup, &file.target);
        }
    }
}

/// Maximum length in bytes of one file name component on Linux file systems.
const MAX_NAME_LEN: usize = 255;

fn check_relative(name: &str, path: &Path) -> Result<(), DeliverError> {
    let invalid = |problem: &str| DeliverError::InvalidFileTarget {
        name: name.to_owned(),
        path: path.display().to_string(),
        problem: problem.to_owned(),
    };
    if path.as_os_str().is_empty() {
        return Err(invalid("empty path"));
    }
    for component in path.components() {
        match component {
            Component::Normal(part) if part.len() > MAX_NAME_LEN => {
                return Err(invalid("has a name longer than 255 bytes"));
            }
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err(invalid("contains a .. component")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(invalid(
                    "is absolute; expected a path relative to --out-dir",
                ));
            }
        }
    }
    Ok(())
}

/// Creates `folder` 0700 if missing (recording it in `created`), or checks an existing one:
/// a directory, not a symbolic link, owned by this user, not writable by group or others.
fn ensure_private_folder(folder: &Path, created: &mut Vec<PathBuf>) -> Result<(), DeliverError> {
    let unsafe_folder = |problem: String| DeliverError::UnsafeOutputFolder {
        path: folder.display().to_string(),
        problem,
    };
    match fs::symlink_metadata(folder) {
        Ok(metadata) if metadata.file_type().is_symlink() => Err(unsafe_folder(
            "is a symbolic link; expected a directory (links are not followed)".to_owned(),
        )),
        Ok(metadata) if metadata.is_dir() => {
            let mode = metadata.permissions().mode();
            if mode & 0o022 != 0 {
                return Err(unsafe_folder(format!(
                    "mode {:04o} lets group or others write to it; expected no group or \
                     other write permission (e.g. 0700)",
                    mode & 0o7777
                )));
            }
            let user = nix::unistd::geteuid().as_raw();
            if metadata.uid() != user {
                return Err(unsafe_folder(format!(
                    "is owned by uid {}, not by the user running the broker (uid {user})",
                    metadata.uid()
                )));
            }
            Ok(())
        }
        Ok(_) => Err(unsafe_folder("exists and is not a directory".to_owned())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            // Create missing parents one by one, so each new folder is recorded.
            if let Some(parent) = folder.parent()
                && !parent.as_os_str().is_empty()
                && !parent.exists()
            {
                ensure_private_folder(parent, created)?;
            }
            DirBuilder::new()
                .mode(0o700)
                .create(folder)
                .map_err(|source| DeliverError::Write {
                    path: folder.display().to_string(),
                    source,
                })?;
            created.push(folder.to_owned());
            Ok(())
        }
        Err(error) => Err(unsafe_folder(error.to_string())),
    }
}

fn stage(
    out_dir: &Path,
    target: &Path,
    item: &Item<'_>,
    index: usize,
    created_folders: &mut Vec<PathBuf>,
) -> Result<Staged, DeliverError> {
    let write_error = |path: &Path, source| DeliverError::Write {
        path: path.display().to_string(),
        source,
    };

    // Every subfolder between out_dir and the target gets the same checks as out_dir.
    let folder = target.parent().unwrap_or(out_dir);
    let mut current = out_dir.to_path_buf();
    if let Ok(inner) = folder.strip_prefix(out_dir) {
        for component in inner.components() {
            current.push(component);
            ensure_private_folder(&current, created_folders)?;
        }
    }

    // A short temporary name, so a target name of up to 255 bytes still works.
    let temporary = folder.join(stale::staged_name(std::process::id(), index));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(&temporary)
        .map_err(|source| write_error(&temporary, source))?;
    let written = file
        .write_all(item.value.expose())
        .and_then(|()| file.sync_all());
    if let Err(source) = written {
        let _ = fs::remove_file(&temporary);
        return Err(write_error(&temporary, source));
    }
    Ok(Staged {
        temporary,
        target: target.to_owned(),
        backup: None,
    })
}

/// Test seam, compiled into debug builds only (release builds ignore the variable):
/// `ENCLAVE_BROKER_TEST_PAUSE_BEFORE_RENAME=N:MARKER` makes delivery create the file MARKER
/// before renaming staged file N (from 0) and then wait, for up to 60 s, until a signal is
/// received. Tests use it to send SIGTERM or SIGINT at a known step.
#[cfg(debug_assertions)]
fn pause_before_rename(position: usize, interrupt: &Interrupt) {
    let Some(value) = std::env::var_os("ENCLAVE_BROKER_TEST_PAUSE_BEFORE_RENAME") else {
        return;
    };
    let Some((index, marker)) = value.to_str().and_then(|value| value.split_once(':')) else {
        return;
    };
    if index.parse() != Ok(position) || File::create(marker).is_err() {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while interrupt.received().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[cfg(not(debug_assertions))]
fn pause_before_rename(_position: usize, _interrupt: &Interrupt) {}

fn remove_all<'a>(paths: impl Iterator<Item = &'a PathBuf>) {
    for path in paths {
        let _ = fs::remove_file(path);
    }
}

/// Syncs each folder that received a file so the renames survive a crash.
fn sync_folders(targets: &[PathBuf]) {
    let mut folders: Vec<&Path> = targets
        .iter()
        .filter_map(|target| target.parent())
        .collect();
    folders.sort();
    folders.dedup();
    for folder in folders {
        if let Ok(handle) = File::open(folder) {
            let _ = handle.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretBytes;

    fn item<'a>(name: &'a str, file: &'a str, value: &'a SecretBytes) -> Item<'a> {
        Item {
            name,
            file: Some(Path::new(file)),
            env: None,
            value,
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn writes_files_0400_in_new_0700_folder() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("secrets");
        let first = SecretBytes::from_slice(b"one");
        let second = SecretBytes::from_slice(b"two");
        let items = [item("a", "a.txt", &first), item("b", "sub/b.txt", &second)];
        let written = write_files(&out, &items).unwrap();
        assert_eq!(written.len(), 2);
        assert_eq!(fs::read(out.join("a.txt")).unwrap(), b"one");
        assert_eq!(fs::read(out.join("sub/b.txt")).unwrap(), b"two");
        assert_eq!(mode(&out), 0o700);
        assert_eq!(mode(&out.join("sub")), 0o700);
        assert_eq!(mode(&out.join("a.txt")), 0o400);
        let entries = fs::read_dir(&out).unwrap().count();
        assert_eq!(entries, 2, "no temporary files remain");
    }

    #[test]
    fn rejects_group_writable_out_dir() {
        let root = tempfile::tempdir().unwrap();
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o775)).unwrap();
        let value = SecretBytes::from_slice(b"x");
        let error = write_files(root.path(), &[item("a", "a", &value)]).unwrap_err();
        assert!(
            matches!(error, DeliverError::UnsafeOutputFolder { .. }),
            "{error}"
        );
    }

    #[test]
    fn rejects_parent_component_before_writing() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let value = SecretBytes::from_slice(b"x");
        let items = [item("a", "ok", &value), item("b", "../b", &value)];
        let error = write_files(&out, &items).unwrap_err();
        assert!(matches!(error, DeliverError::InvalidFileTarget { .. }));
        assert!(!out.exists(), "nothing is created when a target is invalid");
    }

    #[test]
    fn leaves_no_file_when_one_target_cannot_be_written() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        fs::create_dir(&out).unwrap();
        fs::set_permissions(&out, fs::Permissions::from_mode(0o700)).unwrap();
        // A regular file where a subfolder is needed makes the second stage fail.
        fs::write(out.join("blocker"), b"").unwrap();
        let value = SecretBytes::from_slice(b"x");
        let items = [item("a", "a.txt", &value), item("b", "blocker/b", &value)];
        let error = write_files(&out, &items).unwrap_err();
        assert!(
            matches!(error, DeliverError::UnsafeOutputFolder { .. }),
            "{error}"
        );
        let names: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["blocker".to_owned()]);
    }

    #[test]
    fn keeps_earlier_files_when_a_rerun_fails() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let old = SecretBytes::from_slice(b"old");
        write_files(&out, &[item("a", "a", &old), item("b", "b", &old)]).unwrap();
        // A folder where the second file was makes its rename fail after the first.
        fs::remove_file(out.join("b")).unwrap();
        fs::create_dir(out.join("b")).unwrap();

        let new = SecretBytes::from_slice(b"new");
        let error = write_files(&out, &[item("a", "a", &new), item("b", "b", &new)]).unwrap_err();

        assert!(matches!(error, DeliverError::Write { .. }), "{error}");
        assert_eq!(fs::read(out.join("a")).unwrap(), b"old");
        let names: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(
            names.len(),
            2,
            "no temporary or backup files remain: {names:?}"
        );
    }

    #[test]
    fn rejects_symlinked_subfolder() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let elsewhere = root.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::create_dir(&out).unwrap();
        fs::set_permissions(&out, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, out.join("sub")).unwrap();
        let value = SecretBytes::from_slice(b"x");

        let error = write_files(&out, &[item("a", "sub/a", &value)]).unwrap_err();

        assert!(
            matches!(error, DeliverError::UnsafeOutputFolder { .. }),
            "{error}"
        );
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    #[test]
    fn rejects_world_writable_subfolder() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        fs::create_dir_all(out.join("sub")).unwrap();
        fs::set_permissions(&out, fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(out.join("sub"), fs::Permissions::from_mode(0o777)).unwrap();
        let value = SecretBytes::from_slice(b"x");

        let error = write_files(&out, &[item("a", "sub/a", &value)]).unwrap_err();

        assert!(
            matches!(error, DeliverError::UnsafeOutputFolder { .. }),
            "{error}"
        );
    }

    #[test]
    fn removes_created_folders_when_delivery_fails() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("new/out");
        let value = SecretBytes::from_slice(b"x");
        let long_name = "n".repeat(256);

        let error = write_files(
            &out,
            &[item("a", "sub/a", &value), item("b", &long_name, &value)],
        );

        assert!(error.is_err());
        assert!(
            !out.exists(),
            "the out-dir created by the failed call is removed"
        );
    }

    #[test]
    fn delivers_file_with_255_byte_name() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let name = "n".repeat(255);
        let value = SecretBytes::from_slice(b"x");

        write_files(&out, &[item("a", &name, &value)]).unwrap();

        assert_eq!(fs::read(out.join(&name)).unwrap(), b"x");
    }

    /// Lists every entry under `folder`, relative, with its content (empty for folders).
    fn listing(folder: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut entries = Vec::new();
        let mut pending = vec![folder.to_owned()];
        while let Some(current) = pending.pop() {
            for entry in fs::read_dir(&current).unwrap() {
                let path = entry.unwrap().path();
                let relative = path.strip_prefix(folder).unwrap().to_owned();
                if path.is_dir() {
                    pending.push(path);
                    entries.push((relative, Vec::new()));
                } else {
                    entries.push((relative, fs::read(&path).unwrap()));
                }
            }
        }
        entries.sort();
        entries
    }

    #[test]
    fn signal_at_any_step_restores_folder() {
        let old = SecretBytes::from_slice(b"old");
        let new = SecretBytes::from_slice(b"new");
        // Two checks before staging, two before renaming, and the final one.
        for step in 0..5 {
            let root = tempfile::tempdir().unwrap();
            let out = root.path().join("out");
            write_files(&out, &[item("a", "a", &old)]).unwrap();
            let before = listing(&out);
            let interrupt = Interrupt::default();
            interrupt.signal_at_step(step, super::super::Signal::Terminate);

            let items = [item("a", "a", &new), item("b", "sub/b", &new)];
            let error = write_files_interruptible(&out, &items, &interrupt).unwrap_err();

            assert!(
                matches!(error, DeliverError::Interrupted { .. }),
                "step {step}: {error}"
            );
            assert_eq!(error.exit_code(), 143, "step {step}");
            assert_eq!(listing(&out), before, "step {step}");
        }
    }

    #[test]
    fn signal_after_delivery_changes_nothing() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let value = SecretBytes::from_slice(b"x");
        let interrupt = Interrupt::default();

        write_files_interruptible(&out, &[item("a", "a", &value)], &interrupt).unwrap();

        let (action, _guard) = interrupt.on_signal(super::super::Signal::Interrupt);
        assert_eq!(action, super::super::interrupt::SignalAction::Ignore);
        assert_eq!(fs::read(out.join("a")).unwrap(), b"x");
    }

    #[test]
    fn removes_stale_staged_file_before_staging() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let value = SecretBytes::from_slice(b"x");
        write_files(&out, &[item("a", "sub/a", &value)]).unwrap();
        // Process ids stay below 2^22 on Linux, so this one never runs.
        let stale = out.join("sub/.enclave-broker-4194305-0.tmp");
        fs::write(&stale, b"left by a killed run").unwrap();

        write_files(&out, &[item("a", "sub/a", &value)]).unwrap();

        assert!(!stale.exists());
    }

    #[test]
    fn delivers_over_stale_file_with_own_process_id() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let value = SecretBytes::from_slice(b"x");
        write_files(&out, &[item("a", "a", &value)]).unwrap();
        // A killed process with this process's id (a restarted container) left the name
        // this delivery stages under.
        let stale = out.join(stale::staged_name(std::process::id(), 0));
        fs::write(&stale, b"left by a killed run").unwrap();

        write_files(&out, &[item("a", "a", &value)]).unwrap();

        assert!(!stale.exists());
        assert_eq!(fs::read(out.join("a")).unwrap(), b"x");
    }

    #[test]
    fn replaces_existing_read_only_file() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let old = SecretBytes::from_slice(b"old");
        write_files(&out, &[item("a", "a", &old)]).unwrap();
        let new = SecretBytes::from_slice(b"new");
        write_files(&out, &[item("a", "a", &new)]).unwrap();
        assert_eq!(fs::read(out.join("a")).unwrap(), b"new");
    }
}

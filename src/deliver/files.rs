//! File delivery: every secret is staged in a temporary file beside its target, then all
//! are renamed into place. Files are mode 0400; folders the broker creates are 0700.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::{DeliverError, Item};

/// A temporary file written and synced, waiting to be renamed to its target.
struct Staged {
    temporary: PathBuf,
    target: PathBuf,
}

/// Writes each item with a `file` target under `out_dir`, all or nothing, and returns the
/// paths written.
///
/// `out_dir` is created 0700 when missing; an existing folder is reused only if group and
/// others cannot write to it. If a rename fails part-way, the files already renamed are
/// removed again (a file they replaced is not restored).
pub fn write_files(out_dir: &Path, items: &[Item<'_>]) -> Result<Vec<PathBuf>, DeliverError> {
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

    prepare_out_dir(out_dir)?;

    let mut staged: Vec<Staged> = Vec::with_capacity(items.len());
    for (item, target) in items.iter().zip(&targets) {
        match stage(out_dir, target, item) {
            Ok(file) => staged.push(file),
            Err(error) => {
                remove_all(staged.iter().map(|file| &file.temporary));
                return Err(error);
            }
        }
    }

    for (position, file) in staged.iter().enumerate() {
        if let Err(source) = fs::rename(&file.temporary, &file.target) {
            remove_all(staged[..position].iter().map(|file| &file.target));
            remove_all(staged[position..].iter().map(|file| &file.temporary));
            return Err(DeliverError::Write {
                path: file.target.display().to_string(),
                source,
            });
        }
    }
    sync_folders(&targets);
    Ok(targets)
}

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

fn prepare_out_dir(out_dir: &Path) -> Result<(), DeliverError> {
    let unsafe_folder = |problem: String| DeliverError::UnsafeOutputFolder {
        path: out_dir.display().to_string(),
        problem,
    };
    match fs::symlink_metadata(out_dir) {
        Ok(metadata) if metadata.is_dir() => {
            let mode = metadata.permissions().mode();
            if mode & 0o022 != 0 {
                return Err(unsafe_folder(format!(
                    "mode {:04o} lets group or others write to it; expected no group or \
                     other write permission (e.g. 0700)",
                    mode & 0o7777
                )));
            }
            Ok(())
        }
        Ok(_) => Err(unsafe_folder(
            "exists and is not a directory (symbolic links are not followed)".to_owned(),
        )),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(out_dir)
            .map_err(|source| DeliverError::Write {
                path: out_dir.display().to_string(),
                source,
            }),
        Err(error) => Err(unsafe_folder(error.to_string())),
    }
}

fn stage(out_dir: &Path, target: &Path, item: &Item<'_>) -> Result<Staged, DeliverError> {
    let write_error = |path: &Path, source| DeliverError::Write {
        path: path.display().to_string(),
        source,
    };

    // Subfolders of a nested target are created 0700, inside out_dir only.
    let folder = target.parent().unwrap_or(out_dir);
    if folder != out_dir {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(folder)
            .map_err(|source| write_error(folder, source))?;
    }

    let file_name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = folder.join(format!(".{file_name}.tmp-{}", std::process::id()));
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
    })
}

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
        assert!(matches!(error, DeliverError::Write { .. }), "{error}");
        let names: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["blocker".to_owned()]);
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

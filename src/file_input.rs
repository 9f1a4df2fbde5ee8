//! Reading local input files with a size limit and a file-type check, so that a huge or
//! endless file (a device such as /dev/zero) fails with a message instead of exhausting
//! memory, and a FIFO fails instead of blocking forever.
//!
//! Two rules for what may be read:
//!
//! - Files named inside a configuration file (a policy's `ciphertext_file` and
//!   `dev_root_pem`) and files rewritten in place must be regular files: see
//!   [`read_regular_prefix`] and [`read_regular_limited`].
//! - Paths given on the command line may also be a pipe the user's shell opened on purpose:
//!   `/dev/stdin`, `/dev/fd/N` or `/proc/self/fd/N`, as process substitution (`<(…)`)
//!   produces. Every other FIFO, and every device, socket or directory, is rejected. See
//!   [`read_prefix`], [`read_limited`] and [`read_limited_to_string`].
//!
//! The type is checked on the path's metadata before the file is opened, so a FIFO or device
//! is never opened. The file is then opened with `O_NONBLOCK`, which keeps a FIFO swapped in
//! after the check from blocking the open, and its type is checked again on the open handle.

use std::fs::{File, FileType, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::{FcntlArg, OFlag, fcntl};

/// Limit for JSON and TOML configuration files: release policies, proxy configuration,
/// build output.
pub const MAX_CONFIG_LEN: u64 = 4 * 1024 * 1024;

/// Limit for small state files: PEM certificates and keys, the simulator's PCR file.
pub const MAX_SMALL_FILE_LEN: u64 = 64 * 1024;

/// File types that a read accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accept {
    /// Regular files only.
    RegularFile,
    /// Regular files, and pipes named `/dev/stdin`, `/dev/fd/N` or `/proc/self/fd/N`.
    RegularFileOrInheritedPipe,
}

/// Reads the first `max_len` bytes of `path`, or all of it when it is shorter. Callers that
/// need to tell "exactly at the limit" from "over it" pass one byte more than their limit.
/// `path` may be a regular file or a pipe inherited from the shell (see the module
/// documentation).
pub fn read_prefix(path: &Path, max_len: u64) -> io::Result<Vec<u8>> {
    read_prefix_accepting(path, max_len, Accept::RegularFileOrInheritedPipe)
}

/// Like [`read_prefix`], for paths that must name a regular file.
pub fn read_regular_prefix(path: &Path, max_len: u64) -> io::Result<Vec<u8>> {
    read_prefix_accepting(path, max_len, Accept::RegularFile)
}

/// Reads at most `limit` bytes of `path`; a longer file is an `InvalidData` error that
/// names the limit. Accepts what [`read_prefix`] accepts.
pub fn read_limited(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    check_limit(read_prefix(path, limit.saturating_add(1))?, limit)
}

/// Like [`read_limited`], for paths that must name a regular file.
pub fn read_regular_limited(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    check_limit(read_regular_prefix(path, limit.saturating_add(1))?, limit)
}

/// Like [`read_limited`], for UTF-8 text.
pub fn read_limited_to_string(path: &Path, limit: u64) -> io::Result<String> {
    into_string(read_limited(path, limit)?)
}

/// Like [`read_regular_limited`], for UTF-8 text.
pub fn read_regular_limited_to_string(path: &Path, limit: u64) -> io::Result<String> {
    into_string(read_regular_limited(path, limit)?)
}

fn read_prefix_accepting(path: &Path, max_len: u64, accept: Accept) -> io::Result<Vec<u8>> {
    let file = open_checked(path, accept)?;
    let mut bytes = Vec::new();
    file.take(max_len).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Opens `path` for reading after checking its type, before and after the open.
fn open_checked(path: &Path, accept: Accept) -> io::Result<File> {
    // The path's metadata, symbolic links followed, so that a FIFO or device is rejected
    // without being opened: opening some devices has side effects.
    check_file_type(path, std::fs::metadata(path)?.file_type(), accept)?;

    // O_NONBLOCK makes the open of a FIFO return at once even without a writer, in case
    // the path was replaced by one since the check. O_NOCTTY keeps a terminal swapped in
    // from becoming the controlling terminal.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)?;
    let file_type = file.metadata()?.file_type();
    check_file_type(path, file_type, accept)?;

    // Reads from an inherited pipe must wait for the writer. O_NONBLOCK has no effect on
    // regular files, so only pipes get it cleared.
    if file_type.is_fifo() {
        let flags = OFlag::from_bits_truncate(fcntl(&file, FcntlArg::F_GETFL)?);
        fcntl(&file, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
    }
    Ok(file)
}

fn check_file_type(path: &Path, file_type: FileType, accept: Accept) -> io::Result<()> {
    if file_type.is_file() {
        return Ok(());
    }
    if file_type.is_fifo()
        && accept == Accept::RegularFileOrInheritedPipe
        && is_inherited_pipe_path(path)
    {
        return Ok(());
    }

    let hint = match accept {
        Accept::RegularFile => "only regular files can be read here",
        Accept::RegularFileOrInheritedPipe => {
            "give a regular file, or pipe the input through /dev/stdin or process \
             substitution <(…)"
        }
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("is {}, not a regular file; {hint}", describe(file_type)),
    ))
}

/// True for the names under which a process reads pipes it inherited: `/dev/stdin`,
/// `/dev/fd/N` and `/proc/self/fd/N`, where N is a decimal file descriptor number.
fn is_inherited_pipe_path(path: &Path) -> bool {
    let Some(text) = path.to_str() else {
        return false;
    };
    if text == "/dev/stdin" {
        return true;
    }
    let number = text
        .strip_prefix("/dev/fd/")
        .or_else(|| text.strip_prefix("/proc/self/fd/"));
    number.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn describe(file_type: FileType) -> &'static str {
    if file_type.is_fifo() {
        "a FIFO (named pipe), which can block a reader forever"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn check_limit(bytes: Vec<u8>, limit: u64) -> io::Result<Vec<u8>> {
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("file is larger than the limit of {limit} bytes"),
        ));
    }
    Ok(bytes)
}

fn into_string(bytes: Vec<u8>) -> io::Result<String> {
    String::from_utf8(bytes).map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "file is not valid UTF-8 (first invalid byte at offset {})",
                error.utf8_error().valid_up_to()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_fifo(path: &Path) {
        nix::unistd::mkfifo(
            path,
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .unwrap();
    }

    #[test]
    fn rejects_file_over_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, [0u8; 11]).unwrap();
        let error = read_limited(&path, 10).unwrap_err();
        assert!(error.to_string().contains("limit of 10 bytes"), "{error}");
        assert_eq!(read_limited(&path, 11).unwrap().len(), 11);
    }

    #[test]
    fn rejects_endless_device() {
        let error = read_limited(Path::new("/dev/zero"), 1024).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(
            error.to_string().starts_with("is a character device"),
            "{error}"
        );
    }

    #[test]
    fn rejects_named_fifo_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo.kms");
        make_fifo(&path);

        for error in [
            read_limited(&path, 1024).unwrap_err(),
            read_regular_limited(&path, 1024).unwrap_err(),
        ] {
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
            assert!(error.to_string().starts_with("is a FIFO"), "{error}");
        }
    }

    #[test]
    fn rejects_directory() {
        let dir = tempfile::tempdir().unwrap();
        let error = read_regular_limited(dir.path(), 1024).unwrap_err();
        assert!(error.to_string().starts_with("is a directory"), "{error}");
    }

    #[test]
    fn follows_symlink_to_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let link = dir.path().join("link");
        std::fs::write(&target, b"text").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read_regular_limited(&link, 1024).unwrap(), b"text");
    }

    #[test]
    fn inherited_pipe_paths_are_fd_numbers_only() {
        for path in ["/dev/stdin", "/dev/fd/0", "/dev/fd/63", "/proc/self/fd/12"] {
            assert!(is_inherited_pipe_path(Path::new(path)), "{path}");
        }
        for path in [
            "/dev/fd/",
            "/dev/fd/x",
            "/tmp/dev/fd/3",
            "/proc/1/fd/3",
            "fifo",
        ] {
            assert!(!is_inherited_pipe_path(Path::new(path)), "{path}");
        }
    }
}

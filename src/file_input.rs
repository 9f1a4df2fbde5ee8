//! Reading local input files with a size limit, so that a huge or endless file (a device
//! such as /dev/zero, a FIFO) fails with a message instead of exhausting memory.

use std::fs::File;
use std::io::{self, Read};

use std::path::Path;

/// Limit for JSON and TOML configuration files: release policies, proxy configuration,
/// build output.
pub const MAX_CONFIG_LEN: u64 = 4 * 1024 * 1024;

/// Limit for small state files: PEM certificates and keys, the simulator's PCR file.
pub const MAX_SMALL_FILE_LEN: u64 = 64 * 1024;

/// Reads the first `max_len` bytes of `path`, or all of it when it is shorter. Callers that
/// need to tell "exactly at the limit" from "over it" pass one byte more than their limit.
pub fn read_prefix(path: &Path, max_len: u64) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(max_len).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads at most `limit` bytes of `path`; a longer file is an `InvalidData` error that
/// names the limit.
pub fn read_limited(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let bytes = read_prefix(path, limit.saturating_add(1))?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("file is larger than the limit of {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// Like [`read_limited`], for UTF-8 text.
pub fn read_limited_to_string(path: &Path, limit: u64) -> io::Result<String> {
    let bytes = read_limited(path, limit)?;
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
    fn stops_reading_endless_device() {
        let error = read_limited(Path::new("/dev/zero"), 1024).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}

//! Delivery targets of a secret: a file path under the output folder, and an environment
//! variable name.

use std::fmt;
use std::path::Path;

/// A path relative to the delivery folder that cannot leave it: `/`-separated names, none of
/// them empty, `.` or `..`, no leading `/`, no control character (NUL, newline, tab, other
/// C0 characters and DEL), which would garble messages and listings of the folder.
///
/// Because `.` and empty segments are rejected, each file has exactly one spelling, so two
/// secrets that deliver to the same file are found by comparing the text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelativePath(String);

impl RelativePath {
    pub fn parse(text: &str) -> Result<RelativePath, InvalidRelativePath> {
        if text.is_empty() {
            return Err(InvalidRelativePath::Empty);
        }
        if text.contains('\0') {
            return Err(InvalidRelativePath::ContainsNul);
        }
        if let Some(position) = text.chars().position(|c| c.is_ascii_control()) {
            return Err(InvalidRelativePath::ControlCharacter { position });
        }
        if text.starts_with('/') {
            return Err(InvalidRelativePath::Absolute);
        }
        for segment in text.split('/') {
            match segment {
                "" => return Err(InvalidRelativePath::EmptySegment),
                "." => return Err(InvalidRelativePath::CurrentDirSegment),
                ".." => return Err(InvalidRelativePath::ParentSegment),
                _ => {}
            }
        }
        Ok(RelativePath(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_path(&self) -> &Path {
        Path::new(&self.0)
    }
}

impl fmt::Display for RelativePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reason a delivery path was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidRelativePath {
    #[error("path is empty")]
    Empty,
    #[error("path contains a NUL byte")]
    ContainsNul,
    #[error("path contains a control character at position {position}")]
    ControlCharacter { position: usize },
    #[error("path is absolute; give a path relative to the output folder")]
    Absolute,
    #[error("path has an empty segment (a doubled or trailing /)")]
    EmptySegment,
    #[error("path has a . segment; write the path without it")]
    CurrentDirSegment,
    #[error("path has a .. segment, which could leave the output folder")]
    ParentSegment,
}

/// Returns why the environment variable `name` must not carry a secret, or `None`. `exec`
/// runs the program with the broker's environment plus the secrets, so a secret named `PATH`
/// would decide which program runs (and would hide it), and `LD_*` variables such as
/// `LD_PRELOAD` decide which libraries the dynamic loader loads into it.
pub fn reserved_env_name(name: &str) -> Option<&'static str> {
    if name == "PATH" {
        Some("PATH decides where programs are found")
    } else if name.starts_with("LD_") {
        Some("LD_ variables change how the dynamic loader loads programs")
    } else {
        None
    }
}

/// True for a portable environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_nested_relative_path() {
        let path = RelativePath::parse("tls/server.key").unwrap();
        assert_eq!(path.as_path(), Path::new("tls/server.key"));
    }

    #[test]
    fn rejects_parent_segment_anywhere() {
        for text in ["..", "../x", "a/../b", "a/.."] {
            assert_eq!(
                RelativePath::parse(text),
                Err(InvalidRelativePath::ParentSegment),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_absolute_path() {
        assert_eq!(
            RelativePath::parse("/etc/passwd"),
            Err(InvalidRelativePath::Absolute)
        );
    }

    #[test]
    fn rejects_dot_and_empty_segments() {
        assert_eq!(
            RelativePath::parse("./a"),
            Err(InvalidRelativePath::CurrentDirSegment)
        );
        assert_eq!(
            RelativePath::parse("a//b"),
            Err(InvalidRelativePath::EmptySegment)
        );
        assert_eq!(
            RelativePath::parse("a/"),
            Err(InvalidRelativePath::EmptySegment)
        );
    }

    #[test]
    fn rejects_nul_byte_and_empty_path() {
        assert_eq!(
            RelativePath::parse("a\0b"),
            Err(InvalidRelativePath::ContainsNul)
        );
        assert_eq!(RelativePath::parse(""), Err(InvalidRelativePath::Empty));
    }

    #[test]
    fn rejects_control_characters_in_path() {
        for (text, position) in [("tls\nkey", 3), ("a/\tb", 2), ("x\u{7f}", 1), ("\r", 0)] {
            assert_eq!(
                RelativePath::parse(text),
                Err(InvalidRelativePath::ControlCharacter { position }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn reserves_path_and_loader_variables() {
        for name in ["PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_"] {
            assert!(reserved_env_name(name).is_some(), "{name}");
        }
        for name in ["Path", "MY_PATH", "PATHS", "LD", "OLD_PRELOAD"] {
            assert!(reserved_env_name(name).is_none(), "{name}");
        }
    }

    #[test]
    fn env_name_rules() {
        assert!(is_env_name("DB_PASSWORD"));
        assert!(is_env_name("_x1"));
        assert!(!is_env_name(""));
        assert!(!is_env_name("1X"));
        assert!(!is_env_name("DB-PASSWORD"));
        assert!(!is_env_name("A=B"));
    }
}

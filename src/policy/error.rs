//! The error a rejected release policy produces: every problem found, each at its JSON path.

use std::fmt;
use std::path::{Path, PathBuf};

/// One reason a release policy was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// Location in the document, such as `keys.app.allow[0].pcrs.8` or `secrets[1].file`.
    /// `(top level)` stands for the document itself.
    pub path: String,
    /// Description of the defect and, where it helps, of the fix.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A release policy that was rejected whole. It lists every problem the loader found, in
/// document order, and never fewer than one.
///
/// `Display` prints a heading line, then one problem per line, each as `PATH: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    file: Option<PathBuf>,
    problems: Vec<Problem>,
}

impl PolicyError {
    pub(crate) fn new(file: Option<&Path>, problems: Vec<Problem>) -> PolicyError {
        PolicyError {
            file: file.map(Path::to_path_buf),
            problems,
        }
    }

    /// The policy file, when the policy was loaded from one.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        let noun = if count == 1 { "problem" } else { "problems" };
        match &self.file {
            Some(file) => write!(
                f,
                "invalid release policy {} ({count} {noun}):",
                file.display()
            )?,
            None => write!(f, "invalid release policy ({count} {noun}):")?,
        }
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

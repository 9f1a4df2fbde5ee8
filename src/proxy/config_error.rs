//! Errors of the proxy configuration: every problem found, each naming its route and field.

use std::fmt;
use std::path::PathBuf;

/// Source of the configuration, for messages.
#[derive(Debug, Clone)]
pub enum Origin {
    File(PathBuf),
    Text,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Text => f.write_str("(text)"),
        }
    }
}

/// The part of the configuration a problem is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The top-level table.
    Top,
    /// The `[[route]]` at this index, from 0, with its `listen` text if it has one.
    Route {
        index: usize,
        listen: Option<String>,
    },
}

/// One invalid or missing value in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub location: Location,
    /// The field name, or empty when the problem is about the route as a whole.
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::Top => {}
            Location::Route {
                index,
                listen: Some(listen),
            } => write!(f, "route[{index}] (listen \"{listen}\") ")?,
            Location::Route {
                index,
                listen: None,
            } => write!(f, "route[{index}] ")?,
        }
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

#[derive(Default)]
pub(crate) struct Problems(pub(crate) Vec<ConfigProblem>);

impl Problems {
    pub(crate) fn push(
        &mut self,
        location: &Location,
        field: &'static str,
        message: impl Into<String>,
    ) {
        self.0.push(ConfigProblem {
            location: location.clone(),
            field,
            message: message.into(),
        });
    }

    pub(crate) fn missing<T>(&mut self, location: &Location, field: &'static str) -> Option<T> {
        self.push(location, field, "missing; this field is required");
        None
    }
}

/// Error that makes a proxy configuration unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read proxy configuration {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "invalid TOML in proxy configuration {origin} at line {line}, column {column}: {message}"
    )]
    Syntax {
        origin: Origin,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("invalid proxy configuration {origin}: {}", join_problems(problems))]
    Invalid {
        origin: Origin,
        problems: Vec<ConfigProblem>,
    },
}

fn join_problems(problems: &[ConfigProblem]) -> String {
    let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
    texts.join("; ")
}

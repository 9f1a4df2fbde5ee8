//! Hands released secrets to the application: files, `NAME=value` lines, one JSON object, or
//! the environment of a program the broker replaces itself with.
//!
//! Every mode checks all secrets before it outputs anything, so a failure leaves nothing
//! behind: no file of several, no partial JSON. A SIGTERM, SIGINT, SIGHUP or SIGQUIT during
//! delivery counts as such a failure (see [`interrupt`]).

mod files;
pub mod interrupt;
mod stale;

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

use zeroize::Zeroizing;

use crate::secret::{NotText, SecretBytes, SecretString};

pub use files::{write_files, write_files_interruptible};
pub use interrupt::{Interrupt, Signal};

/// Delivery mode. Each mode delivers a different subset of the policy's secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Secrets with a `file` target, written under the output folder.
    Files,
    /// Secrets with an `env` target, as shell-quoted `NAME=value` lines on stdout.
    Env,
    /// Every secret, as one JSON object `{"<name>": "<value>"}` on stdout.
    Json,
    /// Secrets with an `env` target, in the environment of the exec'd program.
    Exec,
}

impl Mode {
    /// Returns whether a secret with these targets is delivered (and so fetched) in this mode.
    pub fn selects(self, has_file: bool, has_env: bool) -> bool {
        match self {
            Mode::Files => has_file,
            Mode::Env | Mode::Exec => has_env,
            Mode::Json => true,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Files => "files",
            Mode::Env => "env",
            Mode::Json => "json",
            Mode::Exec => "exec",
        }
    }
}

/// One released secret and where it goes.
pub struct Item<'a> {
    pub name: &'a str,
    /// Relative path under the output folder (validated by the policy loader).
    pub file: Option<&'a Path>,
    pub env: Option<&'a str>,
    pub value: &'a SecretBytes,
}

/// Delivery failure. Nothing was delivered when one is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliverError {
    #[error(
        "secret {name} cannot be delivered as text: its value {reason}; deliver it with \
         \"file\" instead"
    )]
    NotText { name: String, reason: NotText },
    #[error("secret {name} has no {target} target for --format {mode}")]
    MissingTarget {
        name: String,
        target: &'static str,
        mode: &'static str,
    },
    #[error("delivery folder {path}: {problem}")]
    UnsafeOutputFolder { path: String, problem: String },
    #[error("secret {name}: invalid file target {path}: {problem}")]
    InvalidFileTarget {
        name: String,
        path: String,
        problem: String,
    },
    #[error("could not write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("could not write to stdout: {0}")]
    Stdout(std::io::Error),
    #[error("could not execute {program}: {source}")]
    Exec {
        program: String,
        source: std::io::Error,
    },
    #[error(
        "interrupted by {} during delivery; every staged file was removed and nothing was \
         delivered",
        signal.name()
    )]
    Interrupted { signal: Signal },
}

impl DeliverError {
    fn interrupted(signal: Signal) -> Self {
        DeliverError::Interrupted { signal }
    }

    /// Exit code: 128 + the signal number after an interruption, 2 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            DeliverError::Interrupted { signal } => signal.exit_code(),
            _ => 2,
        }
    }
}

fn as_text(item: &Item<'_>) -> Result<SecretString, DeliverError> {
    SecretString::try_from(item.value).map_err(|reason| DeliverError::NotText {
        name: item.name.to_owned(),
        reason,
    })
}

fn env_name<'a>(item: &Item<'a>, mode: Mode) -> Result<&'a str, DeliverError> {
    item.env.ok_or_else(|| DeliverError::MissingTarget {
        name: item.name.to_owned(),
        target: "env",
        mode: mode.name(),
    })
}

/// Quotes a value for a POSIX shell: single quotes, with each `'` written as `'\''`.
fn shell_quote(value: &str, out: &mut String) {
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
}

/// Renders `NAME='value'` lines, one per secret, in the order given.
pub fn render_env_lines(items: &[Item<'_>]) -> Result<Zeroizing<String>, DeliverError> {
    let mut out = Zeroizing::new(String::new());
    for item in items {
        let name = env_name(item, Mode::Env)?;
        let value = as_text(item)?;
        out.push_str(name);
        out.push('=');
        shell_quote(value.expose(), &mut out);
        out.push('\n');
    }
    Ok(out)
}

/// Renders one JSON object mapping each secret's name to its text value.
pub fn render_json(items: &[Item<'_>]) -> Result<Zeroizing<String>, DeliverError> {
    let mut out = Zeroizing::new(String::from("{"));
    for (position, item) in items.iter().enumerate() {
        let value = as_text(item)?;
        if position > 0 {
            out.push(',');
        }
        // serde_json quoting of strings cannot fail.
        out.push_str(&serde_json::Value::from(item.name).to_string());
        out.push(':');
        let quoted = Zeroizing::new(serde_json::Value::from(value.expose()).to_string());
        out.push_str(&quoted);
    }
    out.push_str("}\n");
    Ok(out)
}

/// Writes rendered text to stdout in one write and flushes it. From the call on, `interrupt`
/// ignores signals, so that a signal cannot cut the output short.
pub fn print(text: &str, interrupt: &Interrupt) -> Result<(), DeliverError> {
    if let Err(signal) = interrupt.finish() {
        return Err(DeliverError::interrupted(signal));
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .map_err(DeliverError::Stdout)?;
    stdout.flush().map_err(DeliverError::Stdout)
}

/// Replaces the current process with `program`, the secrets added to its environment.
/// Returns only on failure.
pub fn exec(program: &OsString, args: &[OsString], items: &[Item<'_>]) -> DeliverError {
    use std::os::unix::process::CommandExt;

    let mut command = std::process::Command::new(program);
    command.args(args);
    for item in items {
        let name = match env_name(item, Mode::Exec) {
            Ok(name) => name,
            Err(error) => return error,
        };
        match as_text(item) {
            Ok(value) => {
                command.env(name, value.expose());
            }
            Err(error) => return error,
        }
    }
    let source = command.exec();
    DeliverError::Exec {
        program: program.to_string_lossy().into_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item<'a>(name: &'a str, env: Option<&'a str>, value: &'a SecretBytes) -> Item<'a> {
        Item {
            name,
            file: None,
            env,
            value,
        }
    }

    #[test]
    fn renders_env_lines_shell_quoted() {
        let value = SecretBytes::from_slice(b"it's $HOME");
        let lines = render_env_lines(&[item("db", Some("DB_PASSWORD"), &value)]).unwrap();
        assert_eq!(lines.as_str(), "DB_PASSWORD='it'\\''s $HOME'\n");
    }

    #[test]
    fn renders_json_object_with_escapes() {
        let first = SecretBytes::from_slice(b"a\"b\n");
        let second = SecretBytes::from_slice(b"x");
        let json = render_json(&[item("one", None, &first), item("two", None, &second)]).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["one"], "a\"b\n");
        assert_eq!(parsed["two"], "x");
    }

    #[test]
    fn rejects_binary_value_as_text_naming_secret() {
        let value = SecretBytes::from_slice(&[0xff, 0x00]);
        let error = render_json(&[item("tls-key", None, &value)]).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("tls-key"), "{message}");
        assert!(message.contains("\"file\""), "{message}");
    }

    #[test]
    fn rejects_nul_byte_in_env_value() {
        let value = SecretBytes::from_slice(b"a\0b");
        let error = render_env_lines(&[item("db", Some("DB"), &value)]).unwrap_err();
        assert!(matches!(error, DeliverError::NotText { .. }));
    }

    #[test]
    fn selects_secrets_by_mode() {
        assert!(Mode::Files.selects(true, false));
        assert!(!Mode::Files.selects(false, true));
        assert!(Mode::Env.selects(false, true));
        assert!(!Mode::Exec.selects(true, false));
        assert!(Mode::Json.selects(false, false));
    }
}

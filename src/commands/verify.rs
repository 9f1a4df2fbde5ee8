//! `verify`: check an attestation document and print what it contains.
//!
//! The run stops at the first failure and reports it with a stable rule id:
//!
//! | exit | rules |
//! |---|---|
//! | 0 | none: the document is valid |
//! | 1 | every `VerifyError` rule (malformed, chain, signature, time, nonce, public key, PCRs, `kind.not_enclave`), `input.too_large`, `policy.denied`, `policy.debug_mode` |
//! | 2 | `usage.flag`, `input.unreadable`, `input.encoding`, `policy.invalid`, `options.invalid` |
//!
//! With `--json` the object is printed for every outcome. Without it, the human report is
//! printed once a document was decoded, so flag and input errors go to stderr only.

mod output;
mod settings;

use std::io::Write;

use enclave_broker::attestation::document::AttestationDocument;
use enclave_broker::attestation::verify::report_input::{self, DecodedReport, ReportInputError};
use enclave_broker::attestation::verify::{
    ErrorCause, VerifyError, VerifyOptions, inspect, verify,
};
use enclave_broker::attestation::x509::{CertificateSummary, ParsedCertificate};
use enclave_broker::clock;
use enclave_broker::policy::{Decision, DenialReason, evaluate};

use super::Failure;
use crate::cli::VerifyArgs;
use output::Outcome;
use settings::{PolicyCheck, Settings, VerificationTime};

/// Why a run did not end in VALID: the rule id, the message and the exit code.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub rule: &'static str,
    pub message: String,
    pub code: i32,
}

impl Rejection {
    /// Creates the rejection of a flag with an invalid value (exit 2).
    fn usage(message: String) -> Self {
        Self {
            rule: "usage.flag",
            message,
            code: 2,
        }
    }

    /// Creates the rejection of an input that cannot be used (exit 2), under `rule`.
    fn input(rule: &'static str, message: String) -> Self {
        Self {
            rule,
            message,
            code: 2,
        }
    }

    /// Creates the rejection of a document that failed a check (exit 1), under `rule`.
    fn denied(rule: &'static str, message: String) -> Self {
        Self {
            rule,
            message,
            code: 1,
        }
    }

    fn from_verify_error(error: &VerifyError) -> Self {
        let code = match error.cause() {
            ErrorCause::InvalidOptions => 2,
            _ => 1,
        };
        Self {
            rule: error.rule(),
            message: error.to_string(),
            code,
        }
    }
}

pub fn run(args: VerifyArgs) -> Result<(), Failure> {
    let outcome = check(&args);

    let printed = if args.json {
        format!("{}\n", output::json(&outcome))
    } else if outcome.input_encoding.is_some() {
        output::human(&outcome)
    } else {
        String::new()
    };
    // A closed stdout (`verify … | head -1`) is ignored, where println! would panic, because
    // the exit code still carries the verdict.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(printed.as_bytes())
        .and_then(|()| stdout.flush());

    match outcome.rejection {
        None => Ok(()),
        Some(rejection) => {
            let message = if rejection.code == 1 {
                format!(
                    "attestation document rejected ({}): {}",
                    rejection.rule, rejection.message
                )
            } else {
                rejection.message
            };
            Err(Failure::new(rejection.code, anyhow::anyhow!(message)))
        }
    }
}

/// Runs every step and records what it learned, stopping at the first failure.
fn check(args: &VerifyArgs) -> Outcome {
    let mut outcome = Outcome::default();
    if let Err(rejection) = check_steps(args, &mut outcome) {
        outcome.rejection = Some(rejection);
    }
    outcome
}

fn check_steps(args: &VerifyArgs, outcome: &mut Outcome) -> Result<(), Rejection> {
    let settings = Settings::from_args(args)?;

    let decoded = read_and_decode(&settings.report)?;
    outcome.input_encoding = Some(decoded.encoding);
    let bytes = decoded.bytes;

    // Parse for display, before anything is verified, so a rejected document still shows
    // what it claims.
    let inspected = inspect(&bytes);
    if let Ok(document) = &inspected {
        outcome.certificates = Some(certificate_summaries(document));
        outcome.document = Some(document.clone());
    }

    let time_ms = match settings.time {
        VerificationTime::Now => clock::now_ms(),
        VerificationTime::At(ms) => ms,
        VerificationTime::Document => match &inspected {
            Ok(document) => document.timestamp_ms(),
            Err(error) => return Err(Rejection::from_verify_error(error)),
        },
    };
    outcome.checked_at_ms = Some(time_ms);

    let options = verify_options(&settings, time_ms);
    let verified = match verify(&bytes, &options) {
        Ok(verified) => verified,
        Err(error) => {
            outcome.trust_root = chain_root_after(&error, outcome.document.as_ref(), &options);
            return Err(Rejection::from_verify_error(&error));
        }
    };
    outcome.trust_root = Some(verified.trust_root_label().to_owned());
    outcome.certificates = Some(verified.certificates().iter().cloned().map(Some).collect());
    outcome.document = Some(verified.document().clone());

    match &settings.policy {
        Some(policy) => check_policy(policy, verified.document()),
        None => Ok(()),
    }
}

/// Reads REPORT and decodes it from raw CBOR, base64 or hex.
fn read_and_decode(report: &str) -> Result<DecodedReport, Rejection> {
    let report_name = if report == "-" {
        "REPORT - (stdin)".to_owned()
    } else {
        format!("REPORT {report}")
    };
    let rejection = |error: ReportInputError| {
        let message = format!("{report_name}: {error}");
        match error {
            ReportInputError::TooLarge { .. } => Rejection::denied(error.rule(), message),
            _ => Rejection::input(error.rule(), message),
        }
    };

    let input = read_report(report).map_err(rejection)?;
    report_input::decode_report(&input).map_err(rejection)
}

fn verify_options(settings: &Settings, time_ms: u64) -> VerifyOptions {
    let mut options = VerifyOptions::new(time_ms);
    options.trust_roots = settings.trust_roots.clone();
    options.skew = settings.skew;
    options.max_age = settings.max_age;
    options.expected_nonce = settings.nonce.clone();
    options.expected_public_key = settings.public_key.clone();
    options.expected_pcrs = settings.expected_pcrs.clone();
    options.require_enclave = settings.requires_enclave();
    options
}

/// Checks a verified document against the release policy's key rule.
fn check_policy(policy: &PolicyCheck, document: &AttestationDocument) -> Result<(), Rejection> {
    let decision = evaluate(
        &policy.rule_name,
        &policy.rule,
        document.pcrs(),
        document.is_debug_mode(),
    );
    let Decision::Deny(denial) = decision else {
        return Ok(());
    };
    let rule = match denial.reason() {
        DenialReason::DebugMode => "policy.debug_mode",
        _ => "policy.denied",
    };
    Err(Rejection::denied(rule, denial.to_string()))
}

/// Returns the label of the root that anchored the chain when `error` comes from a check that
/// `verify` runs after the chain verified: the COSE signature, the document kind, time and
/// expectations.
fn chain_root_after(
    error: &VerifyError,
    document: Option<&AttestationDocument>,
    options: &VerifyOptions,
) -> Option<String> {
    if error.cause() != ErrorCause::Denied || matches!(error, VerifyError::Chain(_)) {
        return None;
    }
    let root_der = document?.cabundle().first()?;
    options
        .trust_roots
        .iter()
        .find(|root| root.matches(root_der))
        .map(|root| root.label().to_owned())
}

/// Reads REPORT: a file, or stdin for `-`.
fn read_report(report: &str) -> Result<Vec<u8>, ReportInputError> {
    if report == "-" {
        return report_input::read_bounded(std::io::stdin().lock());
    }
    // One byte past the limit lets read_bounded report an oversized file; a FIFO or
    // device other than an inherited pipe is refused instead of read.
    let bytes = enclave_broker::file_input::read_prefix(
        std::path::Path::new(report),
        report_input::MAX_REPORT_INPUT_LEN as u64 + 1,
    )
    .map_err(|error| ReportInputError::Read {
        detail: error.to_string(),
    })?;
    report_input::read_bounded(bytes.as_slice())
}

/// Summarizes each certificate of a document that is only parsed, not verified.
fn certificate_summaries(document: &AttestationDocument) -> Vec<Option<CertificateSummary>> {
    document
        .cabundle()
        .iter()
        .map(Vec::as_slice)
        .chain([document.certificate()])
        .map(|der| {
            ParsedCertificate::parse(der)
                .ok()
                .map(|certificate| certificate.summary())
        })
        .collect()
}

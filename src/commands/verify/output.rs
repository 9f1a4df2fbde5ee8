//! Output of `verify`: the human report and the `--json` object.

use std::collections::BTreeMap;

use enclave_broker::attestation::document::AttestationDocument;
use enclave_broker::attestation::pcr::{PcrIndex, PcrValue};
use enclave_broker::attestation::verify::report_input::InputEncoding;
use enclave_broker::attestation::x509::{CertificateSummary, format_time_ms};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::Rejection;

/// Everything known about one run, valid or not. Fields stay `None` when the run stopped
/// before they could be read.
#[derive(Default)]
pub struct Outcome {
    pub input_encoding: Option<InputEncoding>,
    /// The document's claims, verified or only parsed.
    pub document: Option<AttestationDocument>,
    /// One entry per certificate, root first, leaf last; `None` for a certificate that does
    /// not parse.
    pub certificates: Option<Vec<Option<CertificateSummary>>>,
    /// Label of the root that anchored the chain, once the chain verified.
    pub trust_root: Option<String>,
    pub checked_at_ms: Option<u64>,
    pub rejection: Option<Rejection>,
}

/// The `--json` object. Field names and order are fixed by the command-line contract.
#[derive(Serialize)]
struct JsonReport<'a> {
    valid: bool,
    kind: Option<&'static str>,
    module_id: Option<&'a str>,
    timestamp_ms: Option<u64>,
    digest: Option<&'static str>,
    debug_mode: Option<bool>,
    pcrs: Option<JsonPcrs<'a>>,
    public_key: Option<String>,
    user_data: Option<String>,
    nonce: Option<String>,
    certificates: Option<Vec<JsonCertificate>>,
    checked_at: Option<String>,
    input_encoding: Option<&'static str>,
    error: Option<JsonError<'a>>,
}

/// PCRs as an object of decimal index to hex value, in index order.
struct JsonPcrs<'a>(&'a BTreeMap<PcrIndex, PcrValue>);

impl Serialize for JsonPcrs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (index, value) in self.0 {
            map.serialize_entry(&index.to_string(), &value.to_hex())?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct JsonCertificate {
    subject: Option<String>,
    not_before: Option<String>,
    not_after: Option<String>,
}

#[derive(Serialize)]
struct JsonError<'a> {
    rule: &'static str,
    message: &'a str,
}

/// Renders `outcome` as the pretty-printed `--json` object.
pub fn json(outcome: &Outcome) -> String {
    let document = outcome.document.as_ref();
    let certificates = outcome.certificates.as_ref().map(|certificates| {
        certificates
            .iter()
            .map(|summary| JsonCertificate {
                subject: summary.as_ref().map(|summary| summary.subject.clone()),
                not_before: summary
                    .as_ref()
                    .map(|summary| format_time_ms(summary.not_before_ms)),
                not_after: summary
                    .as_ref()
                    .map(|summary| format_time_ms(summary.not_after_ms)),
            })
            .collect()
    });
    let report = JsonReport {
        valid: outcome.rejection.is_none(),
        kind: document.map(|document| document.kind().as_str()),
        module_id: document.map(AttestationDocument::module_id),
        timestamp_ms: document.map(AttestationDocument::timestamp_ms),
        digest: document.map(AttestationDocument::digest),
        debug_mode: document.map(AttestationDocument::is_debug_mode),
        pcrs: document.map(|document| JsonPcrs(document.pcrs())),
        public_key: document
            .and_then(AttestationDocument::public_key)
            .map(hex::encode),
        user_data: document
            .and_then(AttestationDocument::user_data)
            .map(hex::encode),
        nonce: document
            .and_then(AttestationDocument::nonce)
            .map(hex::encode),
        certificates,
        checked_at: outcome.checked_at_ms.map(format_time_ms),
        input_encoding: outcome.input_encoding.map(InputEncoding::as_str),
        error: outcome.rejection.as_ref().map(|rejection| JsonError {
            rule: rejection.rule,
            message: &rejection.message,
        }),
    };
    // serde_json fails only on a map key that is not a string or on a failing Serialize
    // implementation. Neither occurs here, so the fallback is never printed.
    serde_json::to_string_pretty(&report).unwrap_or_else(|error| {
        format!(
            "{{\"valid\": false, \"error\": {{\"rule\": \"internal\", \"message\": {:?}}}}}",
            error.to_string()
        )
    })
}

/// Width of the label column of the human report.
const LABEL_WIDTH: usize = 16;

/// Renders `outcome` as the human report: one `label value` line per field, the PCRs and the
/// chain indented below their heading, and a last line `VALID` or `INVALID (rule): message`.
pub fn human(outcome: &Outcome) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: &str| {
        out.push_str(&format!("{label:<LABEL_WIDTH$}{value}\n"));
    };

    match &outcome.document {
        Some(document) => {
            line("module_id", document.module_id());
            line(
                "timestamp",
                &format!(
                    "{} ({} ms)",
                    format_time_ms(document.timestamp_ms()),
                    document.timestamp_ms()
                ),
            );
            line("kind", document.kind().as_str());
            line("debug_mode", &document.is_debug_mode().to_string());
            line("digest", document.digest());
            write_pcrs(&mut line, document.pcrs());
            line("public_key", &optional_bytes(document.public_key()));
            line("user_data", &optional_bytes(document.user_data()));
            line("nonce", &optional_bytes(document.nonce()));
        }
        None => line("document", "not parsed"),
    }

    if let Some(certificates) = &outcome.certificates {
        line("certificates", "root first, leaf last");
        let count = certificates.len();
        for (index, summary) in certificates.iter().enumerate() {
            let position = if index + 1 == count {
                "  leaf".to_owned()
            } else {
                format!("  cabundle[{index}]")
            };
            match summary {
                Some(summary) => {
                    line(&position, &summary.subject);
                    line(
                        "",
                        &format!(
                            "valid {} to {}",
                            format_time_ms(summary.not_before_ms),
                            format_time_ms(summary.not_after_ms)
                        ),
                    );
                }
                None => line(&position, "not a certificate this verifier parses"),
            }
        }
    }

    let trust_root = outcome
        .trust_root
        .as_deref()
        .unwrap_or("none (chain not verified)");
    line("trust_root", trust_root);
    let checked_at = outcome
        .checked_at_ms
        .map_or_else(|| "not reached".to_owned(), format_time_ms);
    line("checked_at", &checked_at);
    let encoding = outcome
        .input_encoding
        .map_or("unknown", InputEncoding::as_str);
    line("input_encoding", encoding);

    match &outcome.rejection {
        None => out.push_str("VALID\n"),
        Some(rejection) => {
            out.push_str(&format!(
                "INVALID ({}): {}\n",
                rejection.rule, rejection.message
            ));
        }
    }
    out
}

/// Writes the non-zero PCRs one per line, then the indexes of the all-zero ones on one line.
fn write_pcrs(line: &mut impl FnMut(&str, &str), pcrs: &BTreeMap<PcrIndex, PcrValue>) {
    let zero: Vec<String> = pcrs
        .iter()
        .filter(|(_, value)| value.is_zero())
        .map(|(index, _)| index.to_string())
        .collect();
    line(
        "pcrs",
        &format!("{} PCRs, {} all zero", pcrs.len(), zero.len()),
    );
    for (index, value) in pcrs.iter().filter(|(_, value)| !value.is_zero()) {
        line(&format!("  PCR{index}"), &value.to_hex());
    }
    if !zero.is_empty() {
        line("  zero", &zero.join(", "));
    }
}

fn optional_bytes(bytes: Option<&[u8]>) -> String {
    match bytes {
        None => "null".to_owned(),
        Some([]) => "0 bytes (empty)".to_owned(),
        Some(bytes) => format!("{} bytes {}", bytes.len(), hex::encode(bytes)),
    }
}

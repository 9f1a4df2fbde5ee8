//! Argument structures of every command.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// Release policy file (JSON).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// Attestation source: nsm, anjuna, anjuna=URL or sim=DIR.
    #[arg(long, value_name = "SOURCE", default_value = "nsm")]
    pub attester: String,
    /// Send connections to HOST:PORT through TARGET (vsock:CID:PORT or tcp:HOST:PORT).
    #[arg(long = "route", value_name = "HOST:PORT=TARGET")]
    pub routes: Vec<String>,
    /// Size of the recipient RSA key in bits: 2048, 3072 or 4096.
    #[arg(long, value_name = "N", default_value_t = 2048)]
    pub rsa_bits: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Secrets with "file", written under --out-dir.
    Files,
    /// Secrets with "env", as shell-quoted NAME=value lines on stdout.
    Env,
    /// Every secret, as one JSON object on stdout.
    Json,
}

impl Format {
    /// Returns the value as written after `--format`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Files => "files",
            Format::Env => "env",
            Format::Json => "json",
        }
    }
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// Folder for file secrets, with --format files only; created 0700 when missing
    /// [default: /run/secrets].
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Delivery mode.
    #[arg(long, value_enum, default_value_t = Format::Files)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// Program to run with the secrets in its environment, and its arguments.
    #[arg(last = true, required = true, value_name = "PROGRAM [ARGS]...")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct AttestArgs {
    /// File whose bytes go into the document's public_key field.
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,
    /// File whose bytes go into the document's user_data field.
    #[arg(long, value_name = "FILE")]
    pub user_data: Option<PathBuf>,
    /// File whose bytes go into the document's nonce field.
    #[arg(long, value_name = "FILE")]
    pub nonce: Option<PathBuf>,
    /// Attestation source: nsm, anjuna, anjuna=URL or sim=DIR.
    #[arg(long, value_name = "SOURCE", default_value = "nsm")]
    pub attester: String,
    /// Output file for the raw COSE_Sign1 document, a regular file or a new path; stdout when
    /// not given.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AttestServerArgs {
    /// TCP address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:50123")]
    pub listen: String,
    /// Attestation source: nsm, anjuna, anjuna=URL or sim=DIR.
    #[arg(long, value_name = "SOURCE", default_value = "nsm")]
    pub attester: String,
    /// Allow a non-loopback --listen address. Whoever reaches the endpoint gets a genuine
    /// document for any key, so it must never be reachable from outside the enclave.
    #[arg(long)]
    pub danger_allow_non_loopback: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Attestation document: a file or - for stdin, in raw CBOR, base64 or hex (detected), at
    /// most 256 KiB.
    #[arg(value_name = "REPORT")]
    pub report: String,
    /// Expected PCR value as INDEX=96 hex digits; repeatable.
    #[arg(long = "pcr", value_name = "N=HEX")]
    pub pcrs: Vec<String>,
    /// Release policy whose key rule (--key) the document must satisfy.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub policy: Option<PathBuf>,
    /// Key rule of --policy to check against.
    #[arg(long, value_name = "NAME", requires = "policy")]
    pub key: Option<String>,
    /// Verification time: now, document (the document's own timestamp), in any letter case,
    /// or an RFC 3339 time.
    #[arg(long, value_name = "RFC3339|document|now", default_value = "now")]
    pub at: String,
    /// Oldest document accepted, from its timestamp to the verification time: a whole number
    /// and a unit (s, m or h), e.g. 300s, 5m, 2h.
    #[arg(long, value_name = "DURATION")]
    pub max_age: Option<String>,
    /// Clock difference tolerated on certificate validity and document time, e.g. 60s.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub skew: String,
    /// Expected nonce, 1 to 1024 bytes in hex.
    #[arg(long, value_name = "HEX")]
    pub nonce: Option<String>,
    /// File with the exact bytes the document's public_key must contain.
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,
    /// Additional trusted root certificate (PEM), next to the AWS root; repeatable.
    #[arg(long = "trust-root", value_name = "PEM")]
    pub trust_roots: Vec<PathBuf>,
    /// Print one JSON object on stdout, on success and on failure.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Proxy configuration (TOML) with the static routes.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a release policy; lists every problem by JSON path.
    Check {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print the KMS key policy (JSON) that demands the PCRs of one key rule.
    KmsKeyPolicy(KmsKeyPolicyArgs),
    /// Report every way a KMS key policy lets callers bypass attestation.
    Audit(AuditArgs),
    /// Replace the PCRs of a key rule with those of a `nitro-cli build-enclave` output.
    SetPcrs(SetPcrsArgs),
}

#[derive(Debug, Args)]
pub struct KmsKeyPolicyArgs {
    /// Release policy file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Key rule whose PCRs the key policy demands.
    #[arg(long, value_name = "NAME")]
    pub key: String,
    /// Role ARN allowed to decrypt with attestation (the parent instance's role).
    #[arg(long, value_name = "ARN")]
    pub principal: String,
    /// ARN allowed to administer the key (no plaintext-returning actions); repeatable.
    #[arg(long = "admin", value_name = "ARN")]
    pub admins: Vec<String>,
    /// ARN allowed kms:Encrypt, to create ciphertexts; repeatable.
    #[arg(long = "deployer", value_name = "ARN")]
    pub deployers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Key policy JSON file, or - for stdin (`aws kms get-key-policy` output works too).
    #[arg(value_name = "KEY_POLICY_JSON")]
    pub input: String,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SetPcrsArgs {
    /// Release policy file to update in place.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Key rule to update.
    #[arg(long, value_name = "NAME")]
    pub key: String,
    /// JSON printed by `nitro-cli build-enclave` (a file, or - for stdin).
    #[arg(long, value_name = "JSON")]
    pub from_build_output: String,
    /// Replace every allow entry of the rule when it has several. Without this flag such a
    /// rule is left unchanged, because its other entries may belong to images still in use.
    #[arg(long)]
    pub replace_all: bool,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Create (or update the PCRs of) a simulated enclave in DIR.
    Init {
        /// Folder for the simulator's CA and state; created 0700.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// PCR value to use, as INDEX=96 hex digits; repeatable.
        #[arg(long = "pcr", value_name = "N=HEX")]
        pcrs: Vec<String>,
    },
}

//! Command-line arguments (first stage, clap) and their validation into typed values
//! (second stage). Every error names the flag and the value.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use enclave_broker::attestation::pcr::{PcrIndex, PcrValue};

/// Releases secrets to applications in AWS Nitro Enclaves, only to the measured image.
///
/// Exit codes: 0 success, 1 denied, 2 usage or input error, 3 upstream failure.
#[derive(Debug, Parser)]
#[command(name = "enclave-broker", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Release the policy's secrets and deliver them as files, env lines or JSON.
    Fetch(FetchArgs),
    /// Release the policy's env secrets and replace this process with PROGRAM.
    Exec(ExecArgs),
    /// Release-policy tools.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Local enclave simulator (development only).
    #[command(subcommand)]
    Sim(SimCommand),
}

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

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// Folder for file secrets; created 0700 when missing.
    #[arg(long, value_name = "DIR", default_value = "/run/secrets")]
    pub out_dir: PathBuf,
    /// How secrets are delivered.
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

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a release policy; lists every problem by JSON path.
    Check {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
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

/// Parses repeated `--pcr N=HEX` values into a map; a repeated index is an error.
pub fn parse_pcr_flags(values: &[String]) -> Result<BTreeMap<PcrIndex, PcrValue>, String> {
    let mut pcrs = BTreeMap::new();
    for value in values {
        let (index, hex) = value
            .split_once('=')
            .ok_or_else(|| format!("--pcr {value:?}: expected N=HEX (e.g. 0=<96 hex digits>)"))?;
        let index =
            PcrIndex::parse_decimal(index).map_err(|error| format!("--pcr {value:?}: {error}"))?;
        let pcr =
            PcrValue::parse_sha384_hex(hex).map_err(|error| format!("--pcr {value:?}: {error}"))?;
        if pcrs.insert(index, pcr).is_some() {
            return Err(format!("--pcr: PCR{index} is given more than once"));
        }
    }
    Ok(pcrs)
}

//! Command-line arguments, first stage: clap turns `argv` into these raw structures. Each
//! command's module under `commands/` validates them into typed options (second stage),
//! with errors that name the flag and the value.

pub mod args;

use clap::{Parser, Subcommand};

pub use args::*;

/// Releases secrets to applications in AWS Nitro Enclaves, only to the measured image.
///
/// Exit codes: 0 success, 1 denied, 2 usage or input error, 3 upstream failure, 128 + the
/// signal number (129 SIGHUP, 130 SIGINT, 131 SIGQUIT, 143 SIGTERM) when a signal ended
/// `fetch` or `exec` before anything was delivered.
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
    /// Write one attestation document for the given public key, user data and nonce.
    Attest(AttestArgs),
    /// Serve the Anjuna-compatible attestation endpoint (loopback only by default).
    AttestServer(AttestServerArgs),
    /// Verify an attestation document and print what it contains.
    Verify(VerifyArgs),
    /// Parent-side proxy: relay vsock or TCP listeners to fixed upstreams.
    Proxy(ProxyArgs),
    /// Release-policy tools: check, KMS key policy rendering and audit, PCR updates.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Local enclave simulator (development only).
    #[command(subcommand)]
    Sim(SimCommand),
}

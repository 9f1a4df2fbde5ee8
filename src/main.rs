//! `enclave-broker`: parses the command line, runs one command, maps its outcome to an
//! exit code (0 success, 1 denied, 2 usage or input error, 3 upstream failure).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod cli;
mod commands;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};
use commands::Failure;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();

    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!(
                "enclave-broker: error: {}",
                enclave_broker::error_text::one_line(failure.error.as_ref())
            );
            ExitCode::from(failure.code)
        }
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the default of decisions at info level.
fn init_logging() {
    let mut filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,enclave_broker=info"));
    // At trace level these libraries log request and response bodies and headers
    // (for the SDK, when LOG_SENSITIVE_BODIES is set), so they are capped at debug.
    let trace_enabled = filter
        .max_level_hint()
        .is_none_or(|level| level >= tracing::level_filters::LevelFilter::TRACE);
    for target in [
        "aws_smithy_runtime",
        "aws_smithy_http",
        "aws_sigv4",
        "aws_sdk_kms",
        "hyper",
        "h2",
    ] {
        if !trace_enabled {
            break;
        }
        if let Ok(directive) = format!("{target}=debug").parse() {
            filter = filter.add_directive(directive);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Fetch(args) => commands::release::fetch(args),
        Command::Exec(args) => commands::release::exec(args),
        Command::Attest(args) => commands::attest::attest(args),
        Command::AttestServer(args) => commands::attest::serve(args),
        Command::Verify(args) => commands::verify::run(args),
        Command::Proxy(args) => commands::proxy::run(args),
        Command::Policy(command) => commands::policy::run(command),
        Command::Sim(command) => commands::sim::run(command),
    }
}

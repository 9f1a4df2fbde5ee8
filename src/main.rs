//! `enclave-broker`: parses the command line, runs one command, maps its outcome to an
//! exit code (0 success, 1 denied, 2 usage or input error, 3 upstream failure).

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
            // The whole cause chain on one line, prefixed by the program name.
            let chain: Vec<String> = failure.error.chain().map(ToString::to_string).collect();
            eprintln!("enclave-broker: error: {}", chain.join(": "));
            ExitCode::from(failure.code)
        }
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the default of decisions at info level.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,enclave_broker=info"));
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

//! `enclave-broker`: parses the command line, runs one command, maps its outcome to an
//! exit code (0 success, 1 denied, 2 usage or input error, 3 upstream failure).

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command, Format, PolicyCommand, ReleaseArgs, SimCommand};
use enclave_broker::attestation::sim::SimulatedEnclave;
use enclave_broker::attestation::source::AttesterSpec;
use enclave_broker::envelope::RsaBits;
use enclave_broker::kms::KmsSettings;
use enclave_broker::policy::ReleasePolicy;
use enclave_broker::release::{self, Delivery, ReleaseOptions};
use enclave_broker::transport::Route;

/// An error with the exit code it maps to.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    fn new(code: i32, error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: u8::try_from(code).unwrap_or(3),
            error: error.into(),
        }
    }

    fn usage(message: String) -> Self {
        Self::new(2, anyhow::anyhow!(message))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();

    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // The whole cause chain on one line.
            let chain: Vec<String> = failure.error.chain().map(ToString::to_string).collect();
            eprintln!("enclave-broker: error: {}", chain.join(": "));
            ExitCode::from(failure.code)
        }
    }
}

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
        Command::Fetch(args) => {
            let delivery = match args.format {
                Format::Files => Delivery::Files {
                    out_dir: args.out_dir.clone(),
                },
                Format::Env => Delivery::Env,
                Format::Json => Delivery::Json,
            };
            run_release(&args.release, delivery).map(|_| ())
        }
        Command::Exec(args) => {
            let mut command = args.command.into_iter();
            let program = command
                .next()
                .ok_or_else(|| Failure::usage("exec: PROGRAM is missing after --".to_owned()))?;
            let delivery = Delivery::Exec {
                program,
                args: command.collect(),
            };
            run_release(&args.release, delivery).map(|_| ())
        }
        Command::Policy(PolicyCommand::Check { file }) => policy_check(&file),
        Command::Sim(SimCommand::Init { dir, pcrs }) => sim_init(&dir, &pcrs),
    }
}

fn run_release(args: &ReleaseArgs, delivery: Delivery) -> Result<(), Failure> {
    // Second stage: raw flags to typed options.
    let attester_spec: AttesterSpec = args
        .attester
        .parse()
        .map_err(|error| Failure::new(2, error))?;
    let rsa_bits = RsaBits::try_from(args.rsa_bits).map_err(|_| {
        Failure::usage(format!(
            "--rsa-bits {}: expected 2048, 3072 or 4096",
            args.rsa_bits
        ))
    })?;
    let routes = args
        .routes
        .iter()
        .map(|value| value.parse::<Route>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| Failure::new(2, error))?;
    if !routes.is_empty() {
        return Err(Failure::usage(
            "--route: the routed enclave transport is not included in this build; run \
             without --route to connect directly"
                .to_owned(),
        ));
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::new(3, error))?;
    runtime.block_on(async {
        let attester = attester_spec
            .open()
            .map_err(|error| Failure::new(error.exit_code(), error))?;
        let options = ReleaseOptions {
            policy_path: args.policy.clone(),
            attester,
            rsa_bits,
            delivery,
            kms: KmsSettings::default(),
            keygen_deadline: Duration::from_secs(30),
            skew: Duration::from_secs(60),
        };
        match release::run(options).await {
            Ok(released) => {
                tracing::info!(count = released.secret_names.len(), "release complete");
                Ok(())
            }
            Err(error) => Err(Failure::new(error.exit_code(), error)),
        }
    })
}

fn policy_check(file: &std::path::Path) -> Result<(), Failure> {
    let policy = ReleasePolicy::load(file).map_err(|error| Failure::new(2, error))?;
    println!(
        "{}: valid ({} key rules, {} secrets)",
        file.display(),
        policy.keys().len(),
        policy.secrets().len()
    );
    Ok(())
}

fn sim_init(dir: &std::path::Path, pcr_flags: &[String]) -> Result<(), Failure> {
    let pcrs = cli::parse_pcr_flags(pcr_flags).map_err(Failure::usage)?;
    let enclave = SimulatedEnclave::init(dir, &pcrs).map_err(|error| Failure::new(2, error))?;
    let pcr_map: serde_json::Map<String, serde_json::Value> = enclave
        .pcrs()
        .iter()
        .map(|(index, value)| (index.to_string(), value.to_hex().into()))
        .collect();
    let summary = serde_json::json!({
        "root_pem": enclave.root_pem_path().display().to_string(),
        "pcrs": pcr_map,
    });
    println!("{summary:#}");
    Ok(())
}

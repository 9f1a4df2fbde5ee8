//! `fetch` and `exec`: the main job.

use std::sync::Arc;
use std::time::Duration;

use enclave_broker::attestation::source::AttesterSpec;
use enclave_broker::envelope::RsaBits;
use enclave_broker::kms::KmsSettings;
use enclave_broker::policy::ReleasePolicy;
use enclave_broker::release::{self, Delivery, ReleaseOptions};
use enclave_broker::transport::{Route, RoutedHttpClient, SystemConnector, TlsRoots};

use super::{Failure, runtime};
use crate::cli::{ExecArgs, FetchArgs, Format, ReleaseArgs};

/// Maximum wait for RSA key generation before start-up fails.
const KEYGEN_DEADLINE: Duration = Duration::from_secs(30);

/// Maximum wait for the attestation document. The NSM normally responds in milliseconds.
const ATTEST_DEADLINE: Duration = Duration::from_secs(30);

/// Clock difference tolerated in certificate validity and document age.
const SKEW: Duration = Duration::from_secs(60);

/// Output folder of `--format files` when `--out-dir` is not given.
const DEFAULT_OUT_DIR: &str = "/run/secrets";

pub fn fetch(args: FetchArgs) -> Result<(), Failure> {
    let delivery = match (args.format, args.out_dir) {
        (Format::Files, out_dir) => Delivery::Files {
            out_dir: out_dir.unwrap_or_else(|| DEFAULT_OUT_DIR.into()),
        },
        (Format::Env | Format::Json, Some(out_dir)) => {
            return Err(Failure::usage(format!(
                "--out-dir {} is used only with --format files, but --format is {}: remove \
                 --out-dir, or use --format files to write the secrets as files",
                out_dir.display(),
                args.format.name()
            )));
        }
        (Format::Env, None) => Delivery::Env,
        (Format::Json, None) => Delivery::Json,
    };
    run(&args.release, delivery)
}

pub fn exec(args: ExecArgs) -> Result<(), Failure> {
    let mut command = args.command.into_iter();
    let program = command
        .next()
        .ok_or_else(|| Failure::usage("exec: PROGRAM is missing after --"))?;
    let delivery = Delivery::Exec {
        program,
        args: command.collect(),
    };
    run(&args.release, delivery)
}

/// Handles SIGTERM, SIGINT, SIGHUP and SIGQUIT alike for the rest of the run. Before delivery the process exits at
/// once with 128 + the signal number. During file delivery the delivery is undone and the
/// run fails with that code. After delivery the signal is ignored.
fn listen_for_termination() -> Result<(), Failure> {
    use enclave_broker::deliver::Signal;
    use enclave_broker::deliver::interrupt::{SignalAction, process_interrupt};
    use tokio::signal::unix::{SignalKind, signal};

    // Registered here, before the task runs, so no signal falls back to the default action.
    let register = |kind| signal(kind).map_err(|error| Failure::new(3, error));
    let mut terminate = register(SignalKind::terminate())?;
    let mut interrupt = register(SignalKind::interrupt())?;
    let mut hangup = register(SignalKind::hangup())?;
    let mut quit = register(SignalKind::quit())?;

    tokio::spawn(async move {
        loop {
            let received = tokio::select! {
                Some(()) = terminate.recv() => Signal::Terminate,
                Some(()) = interrupt.recv() => Signal::Interrupt,
                Some(()) = hangup.recv() => Signal::Hangup,
                Some(()) = quit.recv() => Signal::Quit,
                else => return,
            };
            let (action, _guard) = process_interrupt().on_signal(received);
            match action {
                SignalAction::ExitNow => {
                    eprintln!(
                        "enclave-broker: error: interrupted by {} before delivery; nothing was \
                         delivered",
                        received.name()
                    );
                    // The guard stays held, so delivery cannot start before the exit.
                    std::process::exit(received.exit_code());
                }
                SignalAction::DeliveryStops => tracing::warn!(
                    signal = received.name(),
                    "signal received during delivery; undoing the delivery"
                ),
                SignalAction::Ignore => tracing::info!(
                    signal = received.name(),
                    "signal ignored: delivery has finished or is being undone"
                ),
            }
        }
    });
    Ok(())
}

/// True when `program` names an executable file: directly when it contains a `/`, otherwise
/// in one of the `PATH` folders, as `execvp` looks it up.
fn is_executable_program(program: &std::ffi::OsStr) -> bool {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;

    let is_executable = |path: &std::path::Path| {
        std::fs::metadata(path)
            .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
    };
    if program.as_bytes().contains(&b'/') {
        return is_executable(std::path::Path::new(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|folder| is_executable(&folder.join(program)))
}

fn run(args: &ReleaseArgs, delivery: Delivery) -> Result<(), Failure> {
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
    let routes = if routes.is_empty() {
        None
    } else {
        let client = RoutedHttpClient::new(&routes, TlsRoots::Bundled, Arc::new(SystemConnector))
            .map_err(|error| Failure::new(2, error))?;
        Some(client)
    };

    // Step 1 of the main job comes first, so a policy problem is reported as one (exit 2)
    // before the attester is opened.
    let policy = ReleasePolicy::load(&args.policy).map_err(|error| Failure::new(2, error))?;

    // Checked now, so a typo fails before any key is generated or KMS is asked.
    if let Delivery::Exec { program, .. } = &delivery
        && !is_executable_program(program)
    {
        return Err(Failure::usage(format!(
            "exec: program {:?} not found or not executable (a name without / is searched in PATH)",
            program.to_string_lossy()
        )));
    }

    runtime()?.block_on(async {
        listen_for_termination()?;
        let attester = attester_spec
            .open()
            .map_err(|error| Failure::new(error.exit_code(), error))?;
        let options = ReleaseOptions {
            policy,
            policy_path: args.policy.clone(),
            attester,
            rsa_bits,
            delivery,
            kms: KmsSettings::default(),
            routes,
            keygen_deadline: KEYGEN_DEADLINE,
            attest_deadline: ATTEST_DEADLINE,
            skew: SKEW,
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

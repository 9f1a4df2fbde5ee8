//! `policy check`, `policy kms-key-policy`, `policy audit`, `policy set-pcrs`.

use std::io::Read;
use std::path::Path;

use enclave_broker::file_input;
use enclave_broker::policy::audit::{self, KeyPolicyDocument, MAX_KEY_POLICY_LEN};
use enclave_broker::policy::key_policy::{
    KeyPolicyError, KeyPolicyPrincipals, PrincipalArn, render_key_policy,
};
use enclave_broker::policy::set_pcrs::{BuildMeasurements, set_pcrs_file};
use enclave_broker::policy::{ReleasePolicy, load_key_rules};

use super::Failure;
use crate::cli::{AuditArgs, KmsKeyPolicyArgs, PolicyCommand, SetPcrsArgs};

/// Largest `nitro-cli build-enclave` output read; the real one is under 1 KiB.
const MAX_BUILD_OUTPUT_LEN: usize = 64 * 1024;

pub fn run(command: PolicyCommand) -> Result<(), Failure> {
    match command {
        PolicyCommand::Check { file } => check(&file),
        PolicyCommand::KmsKeyPolicy(args) => kms_key_policy(args),
        PolicyCommand::Audit(args) => audit(args),
        PolicyCommand::SetPcrs(args) => set_pcrs(args),
    }
}

fn check(file: &Path) -> Result<(), Failure> {
    let policy = ReleasePolicy::load(file).map_err(|error| Failure::new(2, error))?;
    // `fetch` and `exec` log the same warning for the rules they use.
    for (name, rule) in policy.keys() {
        if !rule.is_key_arn() {
            eprintln!(
                "enclave-broker: warning: key rule {name}: key_id {:?} names an alias or key \
                 id, not a key ARN, so the key in KMS's answer cannot be checked; use \
                 arn:aws:kms:REGION:ACCOUNT:key/KEY_ID",
                rule.key_id()
            );
        }
        if rule.allow_debug() {
            eprintln!(
                "enclave-broker: warning: key rule {name}: allow_debug is true, so all-zero \
                 PCR0, PCR1 and PCR2 values are accepted and an entry that pins them releases \
                 to every debug-mode enclave, whatever its image; never use it in production"
            );
        }
    }
    println!(
        "{}: valid ({} key rules, {} secrets)",
        file.display(),
        policy.keys().len(),
        policy.secrets().len()
    );
    Ok(())
}

fn kms_key_policy(args: KmsKeyPolicyArgs) -> Result<(), Failure> {
    // Second stage: every ARN is checked and named with its flag before anything is read.
    let principal = parse_recipient(&args.principal)?;
    let admins = args
        .admins
        .iter()
        .map(|arn| parse_admin(arn))
        .collect::<Result<Vec<_>, _>>()?;
    let deployers = args
        .deployers
        .iter()
        .map(|arn| parse_principal("--deployer", arn))
        .collect::<Result<Vec<_>, _>>()?;

    // Only the key rules matter here, so files that secrets name need not exist yet.
    let rules = load_key_rules(&args.file).map_err(|error| Failure::new(2, error))?;
    let rule = rules.get(&args.key).ok_or_else(|| {
        let known: Vec<&str> = rules.keys().map(String::as_str).collect();
        Failure::usage(format!(
            "--key {:?}: no such key rule in {}; it defines {}",
            args.key,
            args.file.display(),
            known.join(", ")
        ))
    })?;

    if admins.is_empty() {
        eprintln!(
            "enclave-broker: warning: no --admin given, so nobody can change, disable or \
             delete this key; KMS rejects such a policy unless the request sets \
             BypassPolicyLockoutSafetyCheck"
        );
    }
    let principals = KeyPolicyPrincipals {
        principal,
        admins,
        deployers,
    };
    let policy =
        render_key_policy(&args.key, rule, &principals).map_err(|error| Failure::new(2, error))?;
    println!("{}", policy.to_json_pretty());
    Ok(())
}

fn parse_principal(flag: &str, value: &str) -> Result<PrincipalArn, Failure> {
    PrincipalArn::parse(value).map_err(|error| Failure::usage(format!("{flag}: {error}")))
}

/// Parses the `--principal` value. The account root is rejected here, with the flag named,
/// before any file is read; `render_key_policy` rejects it as well.
fn parse_recipient(value: &str) -> Result<PrincipalArn, Failure> {
    let principal = parse_principal("--principal", value)?;
    if principal.is_account_root() {
        let error = KeyPolicyError::PrincipalIsAccountRoot {
            principal: principal.to_string(),
        };
        return Err(Failure::usage(format!("--principal: {error}")));
    }
    Ok(principal)
}

/// Parses an `--admin` value. The account root is rejected here, with the flag named, before
/// any file is read; `render_key_policy` rejects it as well.
fn parse_admin(value: &str) -> Result<PrincipalArn, Failure> {
    let admin = parse_principal("--admin", value)?;
    if admin.is_account_root() {
        let error = KeyPolicyError::AdminIsAccountRoot {
            admin: admin.to_string(),
        };
        return Err(Failure::usage(format!("--admin: {error}")));
    }
    Ok(admin)
}

fn audit(args: AuditArgs) -> Result<(), Failure> {
    let text = read_input(&args.input, MAX_KEY_POLICY_LEN)?;
    let document = KeyPolicyDocument::parse(&text)
        .map_err(|error| Failure::new(2, anyhow::anyhow!("{}: {error}", args.input)))?;
    let findings = audit::audit(&document);

    if args.json {
        let report = serde_json::json!({
            "clean": findings.is_empty(),
            "findings": findings,
        });
        // A Value built from strings, numbers and serializable findings always serializes.
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else if findings.is_empty() {
        println!(
            "{}: no findings ({} statements)",
            args.input,
            document.statements.len()
        );
    } else {
        for finding in &findings {
            println!("{finding}");
        }
    }

    if findings.is_empty() {
        Ok(())
    } else {
        let noun = if findings.len() == 1 {
            "finding"
        } else {
            "findings"
        };
        Err(Failure::new(
            1,
            anyhow::anyhow!(
                "{}: {} {noun} in the key policy",
                args.input,
                findings.len()
            ),
        ))
    }
}

fn set_pcrs(args: SetPcrsArgs) -> Result<(), Failure> {
    let build_output = read_input(&args.from_build_output, MAX_BUILD_OUTPUT_LEN)?;
    let measurements = BuildMeasurements::parse(&build_output).map_err(|error| {
        Failure::usage(format!(
            "--from-build-output {}: {error}",
            args.from_build_output
        ))
    })?;
    let outcome = set_pcrs_file(&args.file, &args.key, &measurements, args.replace_all)
        .map_err(|error| Failure::new(2, error))?;

    let written: Vec<String> = measurements
        .pcrs()
        .keys()
        .chain(outcome.kept.iter())
        .map(|index| format!("PCR{index}"))
        .collect();
    eprintln!(
        "{}: key rule {:?}: replaced {} allow entr{} with one entry pinning {}",
        args.file.display(),
        args.key,
        outcome.replaced_entries,
        if outcome.replaced_entries == 1 {
            "y"
        } else {
            "ies"
        },
        written.join(", ")
    );
    for index in &outcome.kept {
        eprintln!("  kept PCR{index} from the old entries (builds do not measure it)");
    }
    for index in &outcome.dropped {
        eprintln!(
            "enclave-broker: warning: PCR{index} is no longer pinned (the build output has \
             none, or the old entries disagreed on it)"
        );
    }
    if !outcome.unrelated_problems.is_empty() {
        eprintln!(
            "enclave-broker: warning: the policy has {} problem(s) unrelated to this edit; \
             run `enclave-broker policy check {}`",
            outcome.unrelated_problems.len(),
            args.file.display()
        );
    }
    Ok(())
}

/// Reads a file, or stdin for `-`, up to `limit` bytes, as UTF-8. A file path may name a
/// regular file or a pipe the shell opened (`/dev/stdin`, `/dev/fd/N`). Other FIFOs and
/// devices are rejected rather than read, because they could block or never end.
fn read_input(name: &str, limit: usize) -> Result<String, Failure> {
    let failed =
        |error: std::io::Error| Failure::new(2, anyhow::anyhow!("failed to read {name}: {error}"));
    // usize to u64 widens on every platform Rust supports.
    let cap = limit as u64 + 1;
    let bytes = if name == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(cap)
            .read_to_end(&mut bytes)
            .map_err(failed)?;
        bytes
    } else {
        file_input::read_prefix(Path::new(name), cap).map_err(failed)?
    };
    if bytes.len() > limit {
        return Err(Failure::usage(format!(
            "{name}: larger than the limit of {limit} bytes"
        )));
    }
    String::from_utf8(bytes).map_err(|_| Failure::usage(format!("{name}: not UTF-8 text")))
}

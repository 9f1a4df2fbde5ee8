//! `policy check`, `policy kms-key-policy`, `policy audit`, `policy set-pcrs`.

use std::path::Path;

use enclave_broker::policy::ReleasePolicy;

use super::{Failure, not_built};
use crate::cli::PolicyCommand;

pub fn run(command: PolicyCommand) -> Result<(), Failure> {
    match command {
        PolicyCommand::Check { file } => check(&file),
        PolicyCommand::KmsKeyPolicy(_) => Err(not_built("policy kms-key-policy")),
        PolicyCommand::Audit(_) => Err(not_built("policy audit")),
        PolicyCommand::SetPcrs(_) => Err(not_built("policy set-pcrs")),
    }
}

fn check(file: &Path) -> Result<(), Failure> {
    let policy = ReleasePolicy::load(file).map_err(|error| Failure::new(2, error))?;
    println!(
        "{}: valid ({} key rules, {} secrets)",
        file.display(),
        policy.keys().len(),
        policy.secrets().len()
    );
    Ok(())
}

//! `sim init`: create or update a simulated enclave.

use std::path::Path;

use enclave_broker::attestation::sim::SimulatedEnclave;

use super::{Failure, parse_pcr_flags};
use crate::cli::SimCommand;

pub fn run(command: SimCommand) -> Result<(), Failure> {
    match command {
        SimCommand::Init { dir, pcrs } => init(&dir, &pcrs),
    }
}

/// Initializes DIR and prints the development root's path and the PCRs as JSON.
fn init(dir: &Path, pcr_flags: &[String]) -> Result<(), Failure> {
    let pcrs = parse_pcr_flags(pcr_flags)?;
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

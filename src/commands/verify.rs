//! `verify`: check an attestation document and print what it contains.

use super::{Failure, not_built};
use crate::cli::VerifyArgs;

pub fn run(_args: VerifyArgs) -> Result<(), Failure> {
    Err(not_built("verify"))
}

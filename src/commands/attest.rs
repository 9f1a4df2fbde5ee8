//! `attest` and `attest-server`.

use super::{Failure, not_built};
use crate::cli::{AttestArgs, AttestServerArgs};

pub fn attest(_args: AttestArgs) -> Result<(), Failure> {
    Err(not_built("attest"))
}

pub fn serve(_args: AttestServerArgs) -> Result<(), Failure> {
    Err(not_built("attest-server"))
}

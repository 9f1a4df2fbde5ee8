//! `proxy`: the parent-side relay.

use super::{Failure, not_built};
use crate::cli::ProxyArgs;

pub fn run(_args: ProxyArgs) -> Result<(), Failure> {
    Err(not_built("proxy"))
}

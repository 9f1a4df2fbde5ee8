//! `proxy`: the parent-side relay from vsock or TCP listeners to fixed upstreams. Runs until
//! SIGTERM or SIGINT, then drains open connections.

use enclave_broker::proxy::{self, ProxyConfig};
use tokio::signal::unix::{SignalKind, signal};

use super::{Failure, runtime};
use crate::cli::ProxyArgs;

pub fn run(args: ProxyArgs) -> Result<(), Failure> {
    let config = ProxyConfig::load(&args.config).map_err(|error| Failure::new(2, error))?;

    runtime()?.block_on(async {
        let mut terminate =
            signal(SignalKind::terminate()).map_err(|error| Failure::new(3, error))?;
        let mut interrupt =
            signal(SignalKind::interrupt()).map_err(|error| Failure::new(3, error))?;
        let shutdown = async move {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("SIGTERM received; draining connections"),
                _ = interrupt.recv() => tracing::info!("SIGINT received; draining connections"),
            }
        };
        proxy::run(&config, shutdown)
            .await
            .map_err(|error| Failure::new(error.exit_code(), error))
    })
}

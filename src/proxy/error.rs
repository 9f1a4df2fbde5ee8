//! Errors that stop the proxy, and their exit codes.

use super::addr::ListenAddr;
use super::config_error::ConfigError;

/// Error that kept the proxy from starting or stopped it serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error("{route}: cannot bind {listen}: {source}{}", bind_hint(listen))]
    Bind {
        route: String,
        listen: ListenAddr,
        source: std::io::Error,
    },

    #[error("{route}: accept loop stopped unexpectedly: {detail}")]
    AcceptLoopFailed { route: String, detail: String },
}

impl ProxyError {
    /// Exit code per the broker's contract: 2 for an invalid configuration, 3 for a failure
    /// to bind or serve.
    pub fn exit_code(&self) -> i32 {
        match self {
            ProxyError::Config(_) => 2,
            ProxyError::Bind { .. } | ProxyError::AcceptLoopFailed { .. } => 3,
        }
    }
}

fn bind_hint(listen: &ListenAddr) -> &'static str {
    match listen {
        ListenAddr::Vsock { .. } => {
            "; vsock listeners need AF_VSOCK support on this host, as on an EC2 instance with \
             Nitro Enclaves enabled"
        }
        ListenAddr::Tcp(_) => "",
    }
}

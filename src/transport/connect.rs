//! The connector seam: opens a byte stream to a route's target. The system connector uses
//! TCP and vsock; tests substitute their own to simulate failures (this machine must not
//! open vsock sockets).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

use super::Target;

/// A bidirectional byte stream.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

pub type ConnectFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Box<dyn Stream>>> + Send + 'a>>;

/// Opens connections to route targets.
pub trait Connector: Send + Sync + fmt::Debug {
    fn connect<'a>(&'a self, target: &'a Target) -> ConnectFuture<'a>;
}

/// TCP with `tokio::net`, vsock with `tokio-vsock`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemConnector;

impl Connector for SystemConnector {
    fn connect<'a>(&'a self, target: &'a Target) -> ConnectFuture<'a> {
        Box::pin(async move {
            match target {
                Target::Tcp { host, port } => {
                    let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                    stream.set_nodelay(true)?;
                    Ok(Box::new(stream) as Box<dyn Stream>)
                }
                #[cfg(target_os = "linux")]
                Target::Vsock { cid, port } => {
                    let address = tokio_vsock::VsockAddr::new(*cid, *port);
                    let stream = tokio_vsock::VsockStream::connect(address).await?;
                    Ok(Box::new(stream) as Box<dyn Stream>)
                }
                #[cfg(not(target_os = "linux"))]
                Target::Vsock { .. } => Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "vsock exists on Linux only",
                )),
            }
        })
    }
}

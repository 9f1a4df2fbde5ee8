//! The listener seam: how a route's `listen` address becomes a socket that accepts clients.
//!
//! [`SystemBinder`] binds real sockets: TCP, or vsock through `tokio-vsock` on Linux. Tests
//! pass their own [`Binder`] that serves vsock routes on loopback TCP, or fails them, so no
//! test ever opens an `AF_VSOCK` socket.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::addr::ListenAddr;

/// Length of the queue of connections the kernel completed but the proxy has not accepted
/// yet, for TCP listeners. std and Tokio (through mio 1.2) use 128; a burst of more clients
/// than that overflows the queue and, with SYN cookies, can end in resets. Linux caps the
/// value at `net.core.somaxconn`.
const TCP_BACKLOG: u32 = 1024;

/// Creates the listening socket of each route. Called inside a Tokio runtime, once per route,
/// before any route serves.
pub trait Binder: Send + Sync {
    fn bind(&self, listen: &ListenAddr) -> io::Result<Listener>;
}

/// Binds the socket a `listen` address names: TCP, or vsock for any CID.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemBinder;

impl Binder for SystemBinder {
    fn bind(&self, listen: &ListenAddr) -> io::Result<Listener> {
        match listen {
            ListenAddr::Tcp(addr) => Listener::bind_tcp(*addr),
            ListenAddr::Vsock { port } => bind_vsock(*port),
        }
    }
}

#[cfg(target_os = "linux")]
fn bind_vsock(port: u32) -> io::Result<Listener> {
    use tokio_vsock::{VMADDR_CID_ANY, VsockAddr, VsockListener};

    let listener = VsockListener::bind(VsockAddr::new(VMADDR_CID_ANY, port))?;
    Ok(Listener(ListenerKind::Vsock(listener)))
}

#[cfg(not(target_os = "linux"))]
fn bind_vsock(_port: u32) -> io::Result<Listener> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "vsock support is not built for this platform; it needs Linux",
    ))
}

/// A bound listening socket of one route.
#[derive(Debug)]
pub struct Listener(ListenerKind);

#[derive(Debug)]
enum ListenerKind {
    Tcp(TcpListener),
    #[cfg(target_os = "linux")]
    Vsock(tokio_vsock::VsockListener),
}

impl Listener {
    /// Binds a TCP listener with `SO_REUSEADDR`, so a restarted proxy can bind its port while
    /// connections of the previous process are still in `TIME_WAIT`. Must be called inside a
    /// Tokio runtime.
    pub fn bind_tcp(addr: SocketAddr) -> io::Result<Self> {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        Ok(Listener(ListenerKind::Tcp(socket.listen(TCP_BACKLOG)?)))
    }

    /// Wraps a TCP listener the caller bound.
    pub fn from_tcp(listener: TcpListener) -> Self {
        Listener(ListenerKind::Tcp(listener))
    }

    /// Returns the address the socket is bound to, which for TCP port 0 has the port the OS
    /// chose.
    pub fn local_addr(&self) -> io::Result<Endpoint> {
        match &self.0 {
            ListenerKind::Tcp(listener) => listener.local_addr().map(Endpoint::Tcp),
            #[cfg(target_os = "linux")]
            ListenerKind::Vsock(listener) => {
                let addr = listener.local_addr()?;
                Ok(Endpoint::Vsock {
                    cid: addr.cid(),
                    port: addr.port(),
                })
            }
        }
    }

    /// Waits for the next client. TCP clients get `TCP_NODELAY`, since the relayed protocols
    /// (TLS, HTTP) send small request messages that must not wait for Nagle's algorithm.
    pub(crate) async fn accept(&self) -> io::Result<(ClientStream, Endpoint)> {
        match &self.0 {
            ListenerKind::Tcp(listener) => {
                let (stream, peer) = listener.accept().await?;
                stream.set_nodelay(true)?;
                Ok((ClientStream::Tcp(stream), Endpoint::Tcp(peer)))
            }
            #[cfg(target_os = "linux")]
            ListenerKind::Vsock(listener) => {
                let (stream, peer) = listener.accept().await?;
                let peer = Endpoint::Vsock {
                    cid: peer.cid(),
                    port: peer.port(),
                };
                Ok((ClientStream::Vsock(stream), peer))
            }
        }
    }
}

/// The address of one end of a client connection or listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Vsock { cid: u32, port: u32 },
}

impl Endpoint {
    /// Returns the TCP socket address, or `None` for vsock.
    pub fn as_tcp(&self) -> Option<SocketAddr> {
        match self {
            Endpoint::Tcp(addr) => Some(*addr),
            Endpoint::Vsock { .. } => None,
        }
    }
}

impl fmt::Display for Endpoint {
    /// Formats as `IP:PORT` for TCP and `vsock:CID:PORT` for vsock.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => write!(f, "{addr}"),
            Endpoint::Vsock { cid, port } => write!(f, "vsock:{cid}:{port}"),
        }
    }
}

/// An accepted client connection.
#[derive(Debug)]
pub(crate) enum ClientStream {
    Tcp(TcpStream),
    #[cfg(target_os = "linux")]
    Vsock(tokio_vsock::VsockStream),
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            #[cfg(target_os = "linux")]
            ClientStream::Vsock(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
            #[cfg(target_os = "linux")]
            ClientStream::Vsock(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            #[cfg(target_os = "linux")]
            ClientStream::Vsock(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    /// Shuts down the write direction only, so the client still sends after it.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            #[cfg(target_os = "linux")]
            ClientStream::Vsock(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}

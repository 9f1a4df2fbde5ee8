//! Copying bytes both ways between a client and its upstream, with half-close.
//!
//! Each direction reads into its own buffer and writes it out before reading again. When a
//! source reaches end of stream, the other side's write direction is shut down (a TCP FIN) and
//! the opposite direction keeps running, so a client that half-closes after its request still
//! receives the whole response. A read error is an error, never an end of stream.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Size of each direction's buffer. Two per connection, allocated when the relay starts.
const BUFFER_SIZE: usize = 32 * 1024;

/// One end of a relayed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Upstream,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Upstream => "upstream",
        })
    }
}

/// The failure that ended a transfer, with the side it happened on.
#[derive(Debug)]
pub(crate) enum TransferError {
    Read { from: Side, error: io::Error },
    Write { to: Side, error: io::Error },
}

/// Both directions of one connection and the time bytes last moved.
pub(crate) struct Transfer {
    client_to_upstream: Direction,
    upstream_to_client: Direction,
    last_activity: Instant,
}

impl Transfer {
    pub(crate) fn new() -> Self {
        Transfer {
            client_to_upstream: Direction::new(),
            upstream_to_client: Direction::new(),
            last_activity: Instant::now(),
        }
    }

    /// Moves bytes both ways. Completes with `Ok` once both directions reached end of stream
    /// and passed it on, or with the first error of either direction. Can be polled again
    /// after `Pending`, from a fresh future, without losing buffered bytes.
    pub(crate) fn poll_transfer<C, U>(
        &mut self,
        cx: &mut Context<'_>,
        client: &mut C,
        upstream: &mut U,
    ) -> Poll<Result<(), TransferError>>
    where
        C: AsyncRead + AsyncWrite + Unpin,
        U: AsyncRead + AsyncWrite + Unpin,
    {
        let mut moved = false;
        let to_upstream = self
            .client_to_upstream
            .poll_copy(cx, client, upstream, &mut moved);
        let to_client = self
            .upstream_to_client
            .poll_copy(cx, upstream, client, &mut moved);
        if moved {
            self.last_activity = Instant::now();
        }

        match (to_upstream, to_client) {
            (Poll::Ready(Err(error)), _) => {
                Poll::Ready(Err(error.on(Side::Client, Side::Upstream)))
            }
            (_, Poll::Ready(Err(error))) => {
                Poll::Ready(Err(error.on(Side::Upstream, Side::Client)))
            }
            (Poll::Ready(Ok(())), Poll::Ready(Ok(()))) => Poll::Ready(Ok(())),
            _ => Poll::Pending,
        }
    }

    /// When bytes last moved in either direction, or when the transfer was created.
    pub(crate) fn last_activity(&self) -> Instant {
        self.last_activity
    }

    /// Bytes written to the upstream so far.
    pub(crate) fn bytes_client_to_upstream(&self) -> u64 {
        self.client_to_upstream.bytes_written
    }

    /// Bytes written to the client so far.
    pub(crate) fn bytes_upstream_to_client(&self) -> u64 {
        self.upstream_to_client.bytes_written
    }
}

/// A failure within one direction, before it is known which side that is.
enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

impl CopyError {
    fn on(self, source: Side, destination: Side) -> TransferError {
        match self {
            CopyError::Read(error) => TransferError::Read {
                from: source,
                error,
            },
            CopyError::Write(error) => TransferError::Write {
                to: destination,
                error,
            },
        }
    }
}

/// One direction: bytes read from a source and not yet written are `buffer[start..end]`.
struct Direction {
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
    /// Written bytes not yet flushed, for writers that buffer.
    needs_flush: bool,
    source_done: bool,
    shut_down: bool,
    bytes_written: u64,
}

impl Direction {
    fn new() -> Self {
        Direction {
            buffer: vec![0; BUFFER_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            needs_flush: false,
            source_done: false,
            shut_down: false,
            bytes_written: 0,
        }
    }

    /// Copies until the source would block, and then returns `Pending`. Once the source has
    /// ended and the destination's write direction is shut down, returns `Ok`, on this and every
    /// later call. Sets `moved` when any byte was read or written.
    fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        source: &mut R,
        destination: &mut W,
        moved: &mut bool,
    ) -> Poll<Result<(), CopyError>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            // Write out what the buffer holds.
            while self.start < self.end {
                let pending = &self.buffer[self.start..self.end];
                let written = ready!(Pin::new(&mut *destination).poll_write(cx, pending))
                    .map_err(CopyError::Write)?;
                if written == 0 {
                    let error = io::Error::new(io::ErrorKind::WriteZero, "write accepted 0 bytes");
                    return Poll::Ready(Err(CopyError::Write(error)));
                }
                self.start += written;
                self.bytes_written += written as u64;
                self.needs_flush = true;
                *moved = true;
            }

            // The source ended and every byte is written: pass the end of stream on.
            if self.source_done {
                if !self.shut_down {
                    ready!(poll_shutdown_write(cx, destination)).map_err(CopyError::Write)?;
                    self.shut_down = true;
                }
                return Poll::Ready(Ok(()));
            }

            // Read the next chunk. Before waiting for it, flush what was written.
            let mut read_buf = ReadBuf::new(&mut self.buffer);
            match Pin::new(&mut *source).poll_read(cx, &mut read_buf) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(error)) => return Poll::Ready(Err(CopyError::Read(error))),
                Poll::Pending => {
                    if self.needs_flush {
                        ready!(Pin::new(&mut *destination).poll_flush(cx))
                            .map_err(CopyError::Write)?;
                        self.needs_flush = false;
                    }
                    return Poll::Pending;
                }
            }
            let read = read_buf.filled().len();
            if read == 0 {
                self.source_done = true;
            } else {
                self.start = 0;
                self.end = read;
                *moved = true;
            }
        }
    }
}

/// Shuts down the write direction of `destination`. A peer that already disconnected makes
/// the socket report `NotConnected`; nothing is left to half-close then, so that is success.
fn poll_shutdown_write<W>(cx: &mut Context<'_>, destination: &mut W) -> Poll<io::Result<()>>
where
    W: AsyncWrite + Unpin,
{
    match ready!(Pin::new(destination).poll_shutdown(cx)) {
        Err(error) if error.kind() == io::ErrorKind::NotConnected => Poll::Ready(Ok(())),
        result => Poll::Ready(result),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    #[tokio::test]
    async fn relays_both_ways_and_passes_end_of_stream() {
        let (mut client, mut proxy_client_side) = duplex(64);
        let (mut proxy_upstream_side, mut upstream) = duplex(64);

        let relay = tokio::spawn(async move {
            let mut transfer = Transfer::new();
            let result = poll_fn(|cx| {
                transfer.poll_transfer(cx, &mut proxy_client_side, &mut proxy_upstream_side)
            })
            .await;
            (
                result.is_ok(),
                transfer.bytes_client_to_upstream(),
                transfer.bytes_upstream_to_client(),
            )
        });

        // The client sends its request and half-closes. The upstream replies after end of
        // stream, which shows the response direction outlives the request direction.
        client.write_all(b"request").await.unwrap();
        client.shutdown().await.unwrap();
        let mut request = Vec::new();
        upstream.read_to_end(&mut request).await.unwrap();
        assert_eq!(request, b"request");

        upstream.write_all(b"a longer response").await.unwrap();
        upstream.shutdown().await.unwrap();
        let mut response = Vec::new();
        client.read_to_end(&mut response).await.unwrap();
        assert_eq!(response, b"a longer response");

        let (ok, up, down) = relay.await.unwrap();
        assert!(ok);
        assert_eq!(up, 7);
        assert_eq!(down, 17);
    }

    /// A source whose read fails once it has produced some bytes.
    struct FailingReader(bool);

    impl AsyncRead for FailingReader {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if self.0 {
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            self.0 = true;
            buf.put_slice(b"partial");
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn read_error_is_not_end_of_stream() {
        let mut direction = Direction::new();
        let mut source = FailingReader(false);
        let mut sink = Vec::new();
        let mut moved = false;

        let result =
            poll_fn(|cx| direction.poll_copy(cx, &mut source, &mut sink, &mut moved)).await;

        assert!(
            matches!(result, Err(CopyError::Read(e)) if e.kind() == io::ErrorKind::ConnectionReset)
        );
        assert_eq!(sink, b"partial");
        assert!(!direction.shut_down);
    }
}

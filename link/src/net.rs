//! Sockets behind small traits, so the agent and the gateway run on tokio's TCP
//! and on a simulated network (turmoil) alike, plus bounded line framing.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use stratus_wire::protocol::{MAX_LINE_BYTES, ProtocolError};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};

/// A byte stream the protocol can run over (before TLS).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// Accepts incoming connections (management side).
pub trait Listener: Send + 'static {
    type Conn: Stream;
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Conn, SocketAddr)>> + Send;
}

/// Dials the management server (agent side).
pub trait Connector: Send + Sync + 'static {
    type Conn: Stream;
    fn connect(&self, addr: &str) -> impl Future<Output = io::Result<Self::Conn>> + Send;
}

impl Listener for tokio::net::TcpListener {
    type Conn = tokio::net::TcpStream;
    async fn accept(&mut self) -> io::Result<(Self::Conn, SocketAddr)> {
        tokio::net::TcpListener::accept(self).await
    }
}

/// Real TCP.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioConnector;

impl Connector for TokioConnector {
    type Conn = tokio::net::TcpStream;
    async fn connect(&self, addr: &str) -> io::Result<Self::Conn> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(s)
    }
}

/// Why reading a line failed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
}

/// Reads newline-terminated lines of at most `MAX_LINE_BYTES`. Cancel-safe:
/// a partly read line stays in the reader when `next_line` is dropped.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: BufReader<R>,
    buf: Vec<u8>,
    max: usize,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(inner: R) -> LineReader<R> {
        LineReader {
            inner: BufReader::new(inner),
            buf: Vec::new(),
            max: MAX_LINE_BYTES,
        }
    }

    /// The next line without its newline; `None` at a clean end of stream.
    pub async fn next_line(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            let avail = self.inner.fill_buf().await?;
            if avail.is_empty() {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended inside a line").into());
            }
            match avail.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    let fits = self.buf.len() + i <= self.max;
                    if fits {
                        self.buf.extend_from_slice(&avail[..i]);
                    }
                    self.inner.consume(i + 1);
                    if !fits {
                        self.buf.clear();
                        return Err(ProtocolError::TooLong.into());
                    }
                    let mut line = std::mem::take(&mut self.buf);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Ok(Some(line));
                }
                None => {
                    let n = avail.len();
                    if self.buf.len() + n > self.max {
                        self.buf.clear();
                        self.inner.consume(n);
                        return Err(ProtocolError::TooLong.into());
                    }
                    self.buf.extend_from_slice(avail);
                    self.inner.consume(n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_lines_and_refuses_long_ones() {
        let mut data = b"one\ntwo\r\n".to_vec();
        data.extend(vec![b'x'; MAX_LINE_BYTES + 10]);
        data.extend(b"\nthree");
        let mut r = LineReader::new(&data[..]);
        assert_eq!(r.next_line().await.unwrap().unwrap(), b"one");
        assert_eq!(r.next_line().await.unwrap().unwrap(), b"two");
        assert!(matches!(
            r.next_line().await,
            Err(FrameError::Protocol(ProtocolError::TooLong))
        ));
        // The rest of the long line and a cut-off line.
        let mut rest = r.next_line().await;
        while let Ok(Some(_)) = rest {
            rest = r.next_line().await;
        }
        assert!(rest.is_err());
        let mut empty = LineReader::new(&b""[..]);
        assert!(empty.next_line().await.unwrap().is_none());
    }
}

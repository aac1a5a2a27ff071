//! Sockets behind small traits, so the agent and the gateway run on tokio's TCP
//! and on a simulated network (turmoil) alike, plus bounded line framing.

use bytes::BytesMut;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use stratus_wire::protocol::{MAX_LINE_BYTES, ProtocolError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio_util::codec::{Decoder, LinesCodec, LinesCodecError};

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

/// Reads newline-terminated lines of at most `MAX_LINE_BYTES` with
/// tokio-util's `LinesCodec`. Cancel-safe: bytes read stay in the buffer when
/// `next_line` is dropped. A line that is too long is refused and skipped up
/// to its newline, and reading goes on; a last line cut off by the end of the
/// stream is returned as it is (the caller's JSON decoding refuses it).
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buf: BytesMut,
    codec: LinesCodec,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(inner: R) -> LineReader<R> {
        LineReader {
            inner,
            buf: BytesMut::with_capacity(8 * 1024),
            codec: LinesCodec::new_with_max_length(MAX_LINE_BYTES),
        }
    }

    /// The next line without its newline; `None` at the end of the stream.
    pub async fn next_line(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            if let Some(line) = self.codec.decode(&mut self.buf).map_err(frame_error)? {
                return Ok(Some(line.into_bytes()));
            }
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                let last = self.codec.decode_eof(&mut self.buf).map_err(frame_error)?;
                return Ok(last.map(String::into_bytes));
            }
        }
    }
}

fn frame_error(e: LinesCodecError) -> FrameError {
    match e {
        LinesCodecError::MaxLineLengthExceeded => ProtocolError::TooLong.into(),
        LinesCodecError::Io(e) => e.into(),
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
        // The long line is skipped to its newline; a last line cut off by
        // the end of the stream comes back as it is (JSON decoding refuses it).
        assert_eq!(r.next_line().await.unwrap().unwrap(), b"three");
        assert!(r.next_line().await.unwrap().is_none());
        let bad = [0xff_u8, b'\n'];
        assert!(matches!(
            LineReader::new(&bad[..]).next_line().await,
            Err(FrameError::Io(_))
        ));
        let mut empty = LineReader::new(&b""[..]);
        assert!(empty.next_line().await.unwrap().is_none());
    }
}

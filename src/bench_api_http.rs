//! The load generator's side of `stratus bench api`: a minimal keep-alive
//! HTTP/1.1 client (one request at a time per connection: write a GET, read
//! the status line and headers, then `content-length` bytes or a chunked
//! body) and CloudStack request signing, done afresh for every request as a
//! real client does.

use anyhow::Context;
use serde_json::Value;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An API key pair.
#[derive(Clone, Debug)]
pub struct Keys {
    pub key: String,
    pub secret: String,
}

/// Java `URLEncoder` rules with `+` as `%20` (what CloudStack clients send).
fn encode(out: &mut String, v: &str) {
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => out.push(b as char),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
}

/// `/client/api?...` for `params` plus `response=json` and `apiKey`, signed
/// with `stratus_api::sign::sign` (HMAC-SHA1 over the sorted, encoded,
/// lowercased pairs).
pub fn signed_target(params: &[(&str, &str)], keys: &Keys) -> String {
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(params.len() + 3);
    pairs.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    pairs.push(("response".into(), "json".into()));
    pairs.push(("apiKey".into(), keys.key.clone()));
    let signature = stratus_api::sign::sign(&pairs, &keys.secret);
    pairs.push(("signature".into(), signature));
    let mut t = String::with_capacity(256);
    t.push_str("/client/api?");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            t.push('&');
        }
        encode(&mut t, k);
        t.push('=');
        encode(&mut t, v);
    }
    t
}

/// One keep-alive connection; reconnects after an error or `Connection: close`.
#[derive(Debug)]
pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    /// The body of the last response.
    pub body: Vec<u8>,
}

fn bad(what: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.into())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.reserve(64 * 1024);
    if s.read_buf(buf).await? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    Ok(())
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            stream: None,
            buf: Vec::with_capacity(64 * 1024),
            body: Vec::new(),
        }
    }

    /// Opens the connection if it is not open.
    pub async fn connect(&mut self) -> std::io::Result<()> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
        }
        Ok(())
    }

    /// GET `target`; the HTTP status (the body is in `self.body`).
    pub async fn get(&mut self, target: &str) -> std::io::Result<u16> {
        self.connect().await?;
        let r = self.exchange(target).await;
        if r.is_err() {
            self.stream = None;
        }
        r
    }

    async fn exchange(&mut self, target: &str) -> std::io::Result<u16> {
        let Conn { stream, buf, body, .. } = self;
        let s = stream.as_mut().expect("connected above");
        let req = format!("GET {target} HTTP/1.1\r\nHost: stratus-bench\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        buf.clear();
        body.clear();
        let head_end = loop {
            if let Some(i) = find(buf, b"\r\n\r\n") {
                break i + 4;
            }
            read_more(s, buf).await?;
        };
        let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("response head is not UTF-8"))?;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| bad("no status code"))?;
        let (mut length, mut chunked, mut close) = (None, false, false);
        for line in head.split("\r\n").skip(1) {
            let Some((k, v)) = line.split_once(':') else { continue };
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("content-length") {
                length = Some(v.parse::<usize>().map_err(|_| bad("bad content-length"))?);
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.to_ascii_lowercase().contains("chunked");
            } else if k.eq_ignore_ascii_case("connection") {
                close = v.eq_ignore_ascii_case("close");
            }
        }
        if chunked {
            let mut pos = head_end;
            loop {
                let line_end = loop {
                    if let Some(i) = find(&buf[pos..], b"\r\n") {
                        break pos + i;
                    }
                    read_more(s, buf).await?;
                };
                let size_text = std::str::from_utf8(&buf[pos..line_end]).map_err(|_| bad("bad chunk size"))?;
                let size_text = size_text.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("bad chunk size"))?;
                pos = line_end + 2;
                if size == 0 {
                    // Trailers (none expected), then the empty line.
                    loop {
                        let end = loop {
                            if let Some(i) = find(&buf[pos..], b"\r\n") {
                                break pos + i;
                            }
                            read_more(s, buf).await?;
                        };
                        let empty = end == pos;
                        pos = end + 2;
                        if empty {
                            break;
                        }
                    }
                    break;
                }
                while buf.len() < pos + size + 2 {
                    read_more(s, buf).await?;
                }
                body.extend_from_slice(&buf[pos..pos + size]);
                pos += size + 2;
            }
        } else if let Some(n) = length {
            while buf.len() < head_end + n {
                read_more(s, buf).await?;
            }
            body.extend_from_slice(&buf[head_end..head_end + n]);
        } else {
            // Neither: the body runs to the end of the connection.
            loop {
                buf.reserve(64 * 1024);
                if s.read_buf(buf).await? == 0 {
                    break;
                }
            }
            body.extend_from_slice(&buf[head_end..]);
            close = true;
        }
        if close {
            *stream = None;
        }
        Ok(status)
    }

    /// A signed call whose answer must be 200: its JSON body (setup steps).
    pub async fn call(&mut self, keys: &Keys, params: &[(&str, &str)]) -> anyhow::Result<Value> {
        let command = params.iter().find(|(k, _)| *k == "command").map_or("?", |(_, v)| *v);
        let status = self
            .get(&signed_target(params, keys))
            .await
            .with_context(|| format!("{command}: request failed"))?;
        let text = String::from_utf8_lossy(&self.body);
        anyhow::ensure!(status == 200, "{command}: HTTP {status}: {text}");
        serde_json::from_str(&text).with_context(|| format!("{command}: the answer is not JSON: {text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_signed_and_encoded_like_java() {
        let keys = Keys {
            key: "k+y".into(),
            secret: "s".into(),
        };
        let t = signed_target(&[("command", "listZones"), ("name", "a b~")], &keys);
        assert!(t.starts_with("/client/api?command=listZones&name=a%20b%7E&response=json&apiKey=k%2By&signature="));
        let pairs: Vec<(String, String)> = [
            ("command", "listZones"),
            ("name", "a b~"),
            ("response", "json"),
            ("apiKey", "k+y"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let sig = stratus_api::sign::sign(&pairs, "s");
        let mut enc = String::new();
        encode(&mut enc, &sig);
        assert!(t.ends_with(&format!("signature={enc}")), "{t}");
        assert!(stratus_api::sign::verify(&pairs, "s", &sig));
    }

    #[tokio::test]
    async fn reads_length_and_chunked_bodies_on_one_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let answers: [&[u8]; 2] = [
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
                b"HTTP/1.1 431 Bad\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n",
            ];
            for a in answers {
                loop {
                    if find(&buf, b"\r\n\r\n").is_some() {
                        buf.clear();
                        break;
                    }
                    read_more(&mut s, &mut buf).await.unwrap();
                }
                s.write_all(a).await.unwrap();
            }
        });
        let mut c = Conn::new(addr);
        assert_eq!(c.get("/a").await.unwrap(), 200);
        assert_eq!(c.body, b"hello");
        assert_eq!(c.get("/b").await.unwrap(), 431);
        assert_eq!(c.body, b"abcde");
    }
}

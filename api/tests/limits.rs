//! Size limits on raw TCP: a request too large is refused before it is read
//! whole, in CloudStack's envelope when the API sees it, by the HTTP layer
//! (hyper) when not even the head fits.

mod common;
#[path = "common/wire.rs"]
mod wire;

use common::TestServer;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use stratus_api::ApiConfig;
use wire::{exchange, parse_xml};

/// A smaller `max_request_bytes`, for the chunked case.
const LIMIT: usize = 16 * 1024;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A 10 MB body with a correct Content-Length, to the default limit (1 MiB):
/// the server answers 413 (in the envelope) to the head alone and closes the
/// connection without reading the body; the client's writes then fail.
#[test]
fn a_huge_body_is_refused_before_it_is_read_whole() {
    let rt = runtime();
    let s = rt.block_on(TestServer::start());
    let limit = ApiConfig::default().max_request_bytes;
    let total = 10 * 1000 * 1000;
    let mut conn = TcpStream::connect(s.addr).unwrap();
    conn.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /client/api?command=listZones&response=json HTTP/1.1\r\nHost: t\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {total}\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).unwrap();
    let mut reader = conn.try_clone().unwrap();
    let answer = std::thread::spawn(move || {
        let mut first = [0u8; 1];
        let n = reader.read(&mut first).unwrap_or(0);
        let at = Instant::now();
        let mut out = first[..n].to_vec();
        let _ = reader.read_to_end(&mut out);
        (at, out)
    });
    // Nothing for a moment: the Content-Length alone is refused.
    std::thread::sleep(Duration::from_millis(300));
    let chunk = vec![b'x'; 64 * 1024];
    let mut progress = vec![(Instant::now(), 0usize)];
    let mut sent = 0;
    let failed = loop {
        if sent >= total {
            break None;
        }
        match conn.write(&chunk[..chunk.len().min(total - sent)]) {
            Ok(n) => sent += n,
            Err(e) => break Some(e.kind()),
        }
        progress.push((Instant::now(), sent));
    };
    let (answered, out) = answer.join().unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["errorresponse"]["errorcode"], 413, "{v}");
    assert!(failed.is_some(), "the server took all {total} bytes");
    let sent_at_answer = progress
        .iter()
        .take_while(|(t, _)| *t <= answered)
        .last()
        .map_or(0, |p| p.1);
    assert_eq!(sent_at_answer, 0, "the answer came once the body was being sent");
    eprintln!(
        "10 MB body, limit {limit}: 413 in the envelope to the head alone; then the connection \
         closed and the write failed ({failed:?}) after {sent} bytes (all in socket buffers)"
    );
}

/// A request head above the HTTP layer's limits never reaches the API: a
/// URI above 64 KiB gets 414, a head above ~400 KB gets 431, both from
/// hyper with an empty body (no envelope: the API never saw them).
#[test]
fn a_huge_request_head_is_refused_by_the_http_layer() {
    let rt = runtime();
    let s = rt.block_on(TestServer::start());
    let long = format!(
        "GET /client/api?command=listZones&response=json&pad={} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "p".repeat(70 * 1024)
    );
    let (st, head, body) = exchange(s.addr, long.as_bytes(), b"");
    assert_eq!((st, body.len()), (414, 0), "{head}");
    let big = format!(
        "GET /client/api?command=listZones&response=json HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(500 * 1024)
    );
    let (st, head, body) = exchange(s.addr, big.as_bytes(), b"");
    assert_eq!((st, body.len()), (431, 0), "{head}");
    let (st, _) = rt.block_on(s.admin(&[("command", "listZones")]));
    assert_eq!(st, 200);
}

/// Without a Content-Length (chunked), the body is read up to the limit and
/// refused there: 413 in the envelope, XML as no format was asked for.
#[test]
fn a_chunked_body_above_the_limit_is_refused_at_the_limit() {
    let rt = runtime();
    let config = ApiConfig {
        max_request_bytes: LIMIT,
        ..ApiConfig::default()
    };
    let s = rt.block_on(TestServer::start_with(config));
    let chunk = format!("{:x}\r\n{}\r\n", 4096, "x".repeat(4096));
    let body = format!("{}0\r\n\r\n", chunk.repeat(LIMIT / 4096 + 2));
    let head = "POST /client/api?command=listZones HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n";
    let (st, head, body) = exchange(s.addr, head.as_bytes(), body.as_bytes());
    assert_eq!(st, 413, "{head}");
    let (top, fields) = parse_xml(&String::from_utf8_lossy(&body)).unwrap();
    assert_eq!(top, "errorresponse");
    assert!(
        fields.contains(&("errorcode".to_string(), "413".to_string())),
        "{fields:?}"
    );
}

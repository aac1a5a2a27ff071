//! A small blocking CloudStack client for tests of `stratus serve`: signed
//! GETs (`stratus_api::sign::sign`, Java URLEncoder rules), one connection per
//! request (`Connection: close`), and session login to get API keys.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Java URLEncoder rules, `+` as `%20`: what the server signs.
pub fn enc(v: &str) -> String {
    let mut o = String::new();
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => o.push(b as char),
            _ => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

pub fn query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One HTTP/1.1 exchange: (status, head, body). An error if the connection
/// failed or closed before a whole answer came (e.g. the server was killed).
pub fn http(
    addr: &str,
    method: &str,
    path_query: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!("{method} {path_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out).to_string();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(std::io::Error::other("no complete answer"));
    };
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        let want = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|n| n.trim().parse::<usize>())
            })
            .and_then(Result::ok);
        if want.is_some_and(|n| n != body.len()) {
            return Err(std::io::Error::other("the answer was cut short"));
        }
        body.to_string()
    };
    Ok((status, head.to_string(), body))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((len, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n.min(after.len())]);
        rest = after.get(n + 2..).unwrap_or("");
    }
    out
}

/// A signing client: `addr` is `127.0.0.1:PORT`.
#[derive(Clone, Debug)]
pub struct Cs {
    pub addr: String,
    pub key: String,
    pub secret: String,
}

impl Cs {
    /// A signed GET (`response=json` added): (status, JSON body).
    pub fn call(&self, params: &[(&str, &str)]) -> std::io::Result<(u16, Value)> {
        let mut pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        pairs.push(("response".into(), "json".into()));
        pairs.push(("apiKey".into(), self.key.clone()));
        let sig = stratus_api::sign::sign(&pairs, &self.secret);
        pairs.push(("signature".into(), sig));
        let (status, _, body) = http(&self.addr, "GET", &format!("/client/api?{}", query(&pairs)), &[], "")?;
        let v = serde_json::from_str(&body).map_err(|e| std::io::Error::other(format!("{e}: {body}")))?;
        Ok((status, v))
    }

    /// A call that must succeed: the object under the response name.
    pub fn ok(&self, params: &[(&str, &str)]) -> Value {
        let cmd = params
            .iter()
            .find(|(k, _)| *k == "command")
            .map(|(_, v)| *v)
            .unwrap_or("");
        let (st, v) = self.call(params).unwrap_or_else(|e| panic!("{cmd}: {e}"));
        assert_eq!(st, 200, "{cmd}: {v}");
        v[format!("{}response", cmd.to_ascii_lowercase())].clone()
    }

    /// Every item of a list command (one page of up to 2,000).
    pub fn list(&self, params: &[(&str, &str)], object: &str) -> Vec<Value> {
        let mut ps = params.to_vec();
        ps.push(("pagesize", "2000"));
        self.ok(&ps)[object].as_array().cloned().unwrap_or_default()
    }
}

/// Logs in with a session (POST) and registers API keys for that user.
pub fn session_keys(addr: &str, user: &str, password: &str) -> Cs {
    let body = query(&[
        ("command".into(), "login".into()),
        ("username".into(), user.into()),
        ("password".into(), password.into()),
        ("domain".into(), "/".into()),
        ("response".into(), "json".into()),
    ]);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (st, head, text) = http(addr, "POST", "/client/api", &form, &body).expect("login");
    assert_eq!(st, 200, "login: {text}");
    let login: Value = serde_json::from_str(&text).unwrap();
    let login = &login["loginresponse"];
    let cookies: Vec<String> = head
        .lines()
        .filter_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .filter_map(|c| c.split(';').next().map(String::from))
        .collect();
    let q = query(&[
        ("command".into(), "registerUserKeys".into()),
        ("id".into(), login["userid"].as_str().unwrap().into()),
        ("sessionkey".into(), login["sessionkey"].as_str().unwrap().into()),
        ("response".into(), "json".into()),
    ]);
    let cookie = cookies.join("; ");
    let (st, _, text) =
        http(addr, "GET", &format!("/client/api?{q}"), &[("Cookie", &cookie)], "").expect("registerUserKeys");
    assert_eq!(st, 200, "registerUserKeys: {text}");
    let keys: Value = serde_json::from_str(&text).unwrap();
    let keys = &keys["registeruserkeysresponse"]["userkeys"];
    Cs {
        addr: addr.to_string(),
        key: keys["apikey"].as_str().unwrap().into(),
        secret: keys["secretkey"].as_str().unwrap().into(),
    }
}

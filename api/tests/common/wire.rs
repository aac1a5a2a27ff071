//! Raw HTTP for the API tests: one exchange per connection, and checks of
//! what comes back (the format asked for, well-formed XML).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One raw HTTP exchange: (status, head, body bytes).
pub fn exchange(addr: SocketAddr, head: &[u8], body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(head).unwrap();
    // The server may answer (and close) before it read a body it refuses.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(out.len());
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let body = out.get(split + 4..).unwrap_or_default().to_vec();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(&body)
    } else {
        body
    };
    (status, head, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        let start = i + 2;
        out.extend_from_slice(&b[start..(start + n).min(b.len())]);
        b = b.get(start + n + 2..).unwrap_or_default();
    }
    out
}

/// `%XX` and `+` decoding, `None` if invalid (as the server's parser).
pub fn decode(raw: &[u8]) -> Option<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = std::str::from_utf8(raw.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The format the request asks for: the first `response` parameter that
/// decodes (query string, then a form body), JSON if it says so.
pub fn wants_json(query: &[u8], form: &[u8]) -> bool {
    for seg in query.split(|b| *b == b'&').chain(form.split(|b| *b == b'&')) {
        let (n, v) = match seg.iter().position(|b| *b == b'=') {
            Some(i) => (&seg[..i], &seg[i + 1..]),
            None => (seg, &[][..]),
        };
        if let (Some(n), Some(v)) = (decode(n), decode(v))
            && n.to_lowercase() == "response"
        {
            return v.eq_ignore_ascii_case("json");
        }
    }
    false
}

/// XML 1.0 characters.
pub fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// A small well-formedness check of what `render::xml` writes: the
/// declaration, one root element, balanced tags, legal characters and
/// entities. Answers the root's name and its direct children (name, text).
pub fn parse_xml(s: &str) -> Result<(String, Vec<(String, String)>), String> {
    let decl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
    let mut rest = s.strip_prefix(decl).ok_or("no XML declaration")?;
    if let Some(c) = s.chars().find(|c| !xml_char(*c)) {
        return Err(format!("character U+{:04X} is not allowed in XML", c as u32));
    }
    let name_ok = |n: &str| {
        n.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    let mut stack: Vec<String> = Vec::new();
    let (mut root, mut children, mut text) = (None, Vec::new(), String::new());
    while !rest.is_empty() {
        if let Some(tail) = rest.strip_prefix('<') {
            let end = tail.find('>').ok_or("unclosed tag")?;
            let tag = &tail[..end];
            rest = &tail[end + 1..];
            if let Some(closing) = tag.strip_prefix('/') {
                let open = stack.pop().ok_or("closing tag without an opening one")?;
                if open != closing {
                    return Err(format!("</{closing}> closes <{open}>"));
                }
                if stack.len() == 1 {
                    children.push((open, std::mem::take(&mut text)));
                }
                text.clear();
            } else {
                let (name, attrs) = tag.split_once(' ').unwrap_or((tag, ""));
                if !name_ok(name) {
                    return Err(format!("bad element name {name:?}"));
                }
                if attrs.contains('<') || attrs.matches('"').count() % 2 != 0 {
                    return Err(format!("bad attributes {attrs:?}"));
                }
                if stack.is_empty() {
                    if root.is_some() {
                        return Err("two root elements".into());
                    }
                    root = Some(name.to_string());
                }
                stack.push(name.to_string());
                text.clear();
            }
        } else {
            if stack.is_empty() {
                return Err("text outside the root element".into());
            }
            let end = rest.find('<').unwrap_or(rest.len());
            let chunk = &rest[..end];
            rest = &rest[end..];
            let mut parts = chunk.split('&');
            text.push_str(parts.next().unwrap_or(""));
            for p in parts {
                let (ent, after) = p.split_once(';').ok_or("an unterminated entity")?;
                let c = match ent {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    e => {
                        let n = e
                            .strip_prefix("#x")
                            .map(|h| u32::from_str_radix(h, 16))
                            .or_else(|| e.strip_prefix('#').map(str::parse::<u32>))
                            .ok_or(format!("unknown entity &{e};"))?
                            .map_err(|_| format!("bad character reference &{e};"))?;
                        char::from_u32(n)
                            .filter(|c| xml_char(*c))
                            .ok_or(format!("&{e}; is not an XML character"))?
                    }
                };
                text.push(c);
                text.push_str(after);
            }
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed elements {stack:?}"));
    }
    Ok((root.ok_or("no root element")?, children))
}

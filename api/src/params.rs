//! Request parameters: the query string and an `application/x-www-form-urlencoded`
//! body merged into one ordered list, with CloudStack's typed-getter errors.
//!
//! Duplicates: the servlet keeps every value of a name (query string first,
//! then body) and CloudStack reads only the first one, for the signature and
//! for the command alike — so the first occurrence of a name wins here and
//! later ones are dropped. Names are compared exactly for that, like the
//! servlet's map; getters match names case-insensitively because CloudStack
//! lowercases names before binding them to command fields.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::errors::ApiError;

/// Parsing limits; every breach is an error, never a truncation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Pairs counted before deduplication (Jetty's form-key default is 1000).
    pub max_params: usize,
    /// Decoded name length in bytes.
    pub max_name_len: usize,
    /// Decoded value length in bytes; base64 user data is the largest real
    /// value (up to ~1.4 MB when CloudStack allows 1 MB of user data).
    pub max_value_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_params: 1000,
            max_name_len: 256,
            max_value_len: 2 * 1024 * 1024,
        }
    }
}

const DECODE_HINT: &str =
    "; if specifying an object array, please use parameter[index].field=XXX, e.g. userGroupList[0].group=httpGroup";

/// The decoded, deduplicated request parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// Raw names and values, first occurrence of each name, in request order.
    pairs: Vec<(String, String)>,
    /// `pairs[i].0` lowercased, for lookups.
    lower: Vec<String>,
    /// The lowercased API name used in error texts.
    cmd: String,
}

impl Params {
    /// Parses with [`Limits::default`]. Pass an empty body when the request
    /// has none or it is not form-encoded.
    pub fn parse(query: &[u8], form_body: &[u8]) -> Result<Self, ApiError> {
        Self::parse_with(query, form_body, &Limits::default())
    }

    pub fn parse_with(query: &[u8], form_body: &[u8], limits: &Limits) -> Result<Self, ApiError> {
        let mut raw = Vec::new();
        for src in [query, form_body] {
            for seg in src.split(|&b| b == b'&') {
                if seg.is_empty() {
                    continue;
                }
                if raw.len() >= limits.max_params {
                    return Err(ApiError::malformed(format!(
                        "Too many request parameters (more than {})",
                        limits.max_params
                    )));
                }
                let (n, v) = match seg.iter().position(|&b| b == b'=') {
                    Some(i) => (&seg[..i], &seg[i + 1..]),
                    None => (seg, &[][..]),
                };
                let name = decode(n, n)?;
                // A bare `=value` names nothing; the servlet has no use for it either.
                if name.is_empty() {
                    continue;
                }
                if name.len() > limits.max_name_len {
                    return Err(ApiError::malformed(format!(
                        "Request parameter name {}... is longer than {} bytes",
                        shorten(&name),
                        limits.max_name_len
                    )));
                }
                let value = decode(v, n)?;
                if value.len() > limits.max_value_len {
                    return Err(ApiError::param(format!(
                        "Value of request parameter {} is longer than {} bytes",
                        shorten(&name),
                        limits.max_value_len
                    )));
                }
                raw.push((name, value));
            }
        }
        Ok(Self::from_pairs(raw))
    }

    /// Builds from already-decoded pairs (first occurrence of a name wins).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut p = Self::default();
        for (k, v) in pairs {
            if p.pairs.iter().any(|(n, _)| *n == k) {
                continue;
            }
            p.lower.push(k.to_lowercase());
            p.pairs.push((k, v));
        }
        p.cmd = p.get("command").unwrap_or_default().to_lowercase();
        p
    }

    /// The decoded pairs for signature verification: every name once, first
    /// value, as sent.
    pub fn signed_pairs(&self) -> Vec<(String, String)> {
        self.pairs.clone()
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The `command` value as sent (API names are case-sensitive).
    pub fn command(&self) -> Option<&str> {
        self.get("command")
    }

    /// The API name in error texts: lowercased `command`, which is what
    /// CloudStack prints (its response name minus `response`).
    pub fn cmd_name(&self) -> &str {
        &self.cmd
    }

    /// For the few APIs whose response name is not `lowercase(api)+response`.
    pub fn set_cmd_name(&mut self, name: impl Into<String>) {
        self.cmd = name.into();
    }

    /// Raw value, name matched case-insensitively; an empty value is present.
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = name.to_lowercase();
        self.lower
            .iter()
            .position(|n| *n == name)
            .map(|i| self.pairs[i].1.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Like CloudStack's String fields, an empty value is a value.
    pub fn opt_str(&self, name: &str) -> Option<&str> {
        self.get(name)
    }

    pub fn req_str(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| self.missing(name))
    }

    /// Typed getters treat an empty value as absent, as CloudStack does for
    /// numbers (its "blank means default" rule); it would read an empty
    /// boolean as false, which absent also gives for every optional flag.
    fn typed(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// A hyphenated UUID, either case. CloudStack answers an unresolvable id
    /// with InvalidParameterValue (431/4350) and this text.
    pub fn opt_uuid(&self, name: &str) -> Result<Option<Uuid>, ApiError> {
        self.typed(name).map(|v| parse_uuid(name, v)).transpose()
    }

    pub fn req_uuid(&self, name: &str) -> Result<Uuid, ApiError> {
        self.opt_uuid(name)?.ok_or_else(|| self.missing(name))
    }

    /// `true`/`false` in any case (libcloud sends `True`/`False`). CloudStack
    /// silently reads any other word as false; rejecting it surfaces client
    /// bugs instead of acting on a guess.
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.typed(name)
            .map(|v| {
                if v.eq_ignore_ascii_case("true") {
                    Ok(true)
                } else if v.eq_ignore_ascii_case("false") {
                    Ok(false)
                } else {
                    Err(self.invalid(name, v))
                }
            })
            .transpose()
    }

    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.typed(name)
            .map(|v| v.parse::<i64>().map_err(|_| self.invalid(name, v)))
            .transpose()
    }

    pub fn req_i64(&self, name: &str) -> Result<i64, ApiError> {
        self.opt_i64(name)?.ok_or_else(|| self.missing(name))
    }

    /// Comma-separated; empty items are skipped (Java StringTokenizer), items
    /// are not trimmed.
    pub fn opt_list(&self, name: &str) -> Option<Vec<&str>> {
        self.typed(name)
            .map(|v| v.split(',').filter(|s| !s.is_empty()).collect())
    }

    /// A list of UUIDs (`ids=a,b`).
    pub fn opt_uuid_list(&self, name: &str) -> Result<Option<Vec<Uuid>>, ApiError> {
        self.opt_list(name)
            .map(|items| items.into_iter().map(|v| parse_uuid(name, v)).collect())
            .transpose()
    }

    /// An indexed map parameter, `details[0].key=a&details[0].value=b` or
    /// `details[0].cpuNumber=2`: one map per index, ordered by index; field
    /// names keep their case. Empty when the parameter is absent. Any
    /// malformed bracketed name in the request fails with CloudStack's 430
    /// text, as CloudStack unpacks all of them together.
    pub fn map(&self, name: &str) -> Result<Vec<BTreeMap<String, String>>, ApiError> {
        let name = name.to_lowercase();
        let mut by_index: BTreeMap<i32, BTreeMap<String, String>> = BTreeMap::new();
        for (k, v) in &self.pairs {
            let Some(entry) = indexed_key(k)? else { continue };
            if entry.name != name {
                continue;
            }
            by_index
                .entry(entry.index)
                .or_default()
                .entry(entry.field.to_string())
                .or_insert_with(|| v.clone());
        }
        Ok(by_index.into_values().collect())
    }

    /// CloudStack rejects the whole request when any bracketed name is
    /// malformed (it unpacks every parameter before binding); call this to do
    /// the same before dispatch.
    pub fn check_indexed_names(&self) -> Result<(), ApiError> {
        self.pairs.iter().try_for_each(|(k, _)| indexed_key(k).map(|_| ()))
    }

    pub fn missing(&self, name: &str) -> ApiError {
        ApiError::missing_param(&self.cmd, name)
    }

    pub fn invalid(&self, name: &str, value: &str) -> ApiError {
        ApiError::invalid_value(&self.cmd, name, value)
    }
}

fn parse_uuid(name: &str, v: &str) -> Result<Uuid, ApiError> {
    // Only the hyphenated form: the uuid crate would also take braces, URNs
    // and bare hex, which CloudStack never accepts as ids.
    if v.len() == 36
        && let Ok(u) = Uuid::try_parse(v)
    {
        return Ok(u);
    }
    Err(ApiError::invalid_parameter_value(format!(
        "Invalid parameter {name} value={v} due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation for the field in api cmd class."
    )))
}

struct Indexed<'a> {
    name: String,
    index: i32,
    field: &'a str,
}

/// CloudStack's rules for `name[index].field`: a name with no `[` (or with
/// its only `[` first) is plain; otherwise exactly one `[` and one `]` in that
/// order, the first `.` after the `]`, and an int index.
fn indexed_key(key: &str) -> Result<Option<Indexed<'_>>, ApiError> {
    let bad = || ApiError::malformed(format!("Unable to decode parameter {key}{DECODE_HINT}"));
    let start = key.find('[');
    if start != key.rfind('[') {
        return Err(bad());
    }
    let Some(start) = start.filter(|&s| s > 0) else {
        return Ok(None);
    };
    let end = key
        .find(']')
        .filter(|&e| e > start && key.rfind(']') == Some(e))
        .ok_or_else(bad)?;
    let dot = key.find('.').filter(|&d| d > end).ok_or_else(bad)?;
    let index = key[start + 1..end].parse::<i32>().map_err(|_| bad())?;
    Ok(Some(Indexed {
        name: key[..start].to_lowercase(),
        index,
        field: &key[dot + 1..],
    }))
}

/// Whether the request asks for JSON: its first `response` parameter (name
/// in any case) that decodes, in the query string then the form body. The
/// same answer [`Params::opt_str`] gives once parsed, and one for requests
/// that do not parse, so their error comes in the format asked for.
pub fn wants_json(query: &[u8], form_body: &[u8]) -> bool {
    let segments = query.split(|&b| b == b'&').chain(form_body.split(|&b| b == b'&'));
    for seg in segments {
        let (n, v) = match seg.iter().position(|&b| b == b'=') {
            Some(i) => (&seg[..i], &seg[i + 1..]),
            None => (seg, &[][..]),
        };
        if let (Ok(n), Ok(v)) = (decode(n, n), decode(v, n))
            && n.to_lowercase() == "response"
        {
            return v.eq_ignore_ascii_case("json");
        }
    }
    false
}

/// Form decoding: `+` is a space (in the query string too, as the servlet
/// does), `%XX` a byte; anything else is taken as is. Bad escapes and invalid
/// UTF-8 are errors rather than replacement characters, since a changed
/// value would fail the signature with a misleading 401.
fn decode(raw: &[u8], name_raw: &[u8]) -> Result<String, ApiError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |j: usize| raw.get(j).and_then(|c| (*c as char).to_digit(16));
                match (hex(i + 1), hex(i + 2)) {
                    (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                    _ => {
                        return Err(ApiError::malformed(format!(
                            "Unable to decode parameter {}: invalid percent-encoding",
                            shorten(&String::from_utf8_lossy(name_raw))
                        )));
                    }
                }
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| {
        ApiError::malformed(format!(
            "Unable to decode parameter {}: not valid UTF-8",
            shorten(&String::from_utf8_lossy(name_raw))
        ))
    })
}

/// Error texts echo names; keep hostile ones short.
fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(q: &str) -> Params {
        Params::parse(q.as_bytes(), b"").unwrap()
    }

    #[test]
    fn decodes_query_and_body() {
        let ps = Params::parse(
            b"command=deployVirtualMachine&displayname=web+01%20(x)&empty=&bare",
            b"zoneid=z%2F1&name=n",
        )
        .unwrap();
        assert_eq!(
            ps.signed_pairs(),
            [
                ("command", "deployVirtualMachine"),
                ("displayname", "web 01 (x)"),
                ("empty", ""),
                ("bare", ""),
                ("zoneid", "z/1"),
                ("name", "n")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(ps.command(), Some("deployVirtualMachine"));
        assert_eq!(ps.cmd_name(), "deployvirtualmachine");
        assert_eq!(ps.get("ZoneId"), Some("z/1"));
        assert_eq!(ps.get("empty"), Some(""));
        assert!(!ps.contains("nope"));
        assert_eq!(p("a=%C3%A9%e2%82%ac").get("a"), Some("é€"));
        assert_eq!(p("&&a=1&&=x&").len(), 1);
        assert_eq!(p("a=b=c").get("a"), Some("b=c"));
    }

    #[test]
    fn first_value_wins_query_before_body() {
        let ps = Params::parse(b"name=q&name=q2", b"name=b&Name=B").unwrap();
        assert_eq!(ps.get("name"), Some("q"));
        // Names differing in case are distinct parameters (both signed).
        assert_eq!(ps.len(), 2);
        assert_eq!(ps.signed_pairs()[1], ("Name".to_string(), "B".to_string()));
    }

    #[test]
    fn decode_errors() {
        for bad in ["a=%", "a=%4", "a=%zz", "%=1", "a=%ff", "a=%c3", "b%c3=1"] {
            let e = Params::parse(bad.as_bytes(), b"").unwrap_err();
            assert_eq!(e.code, 430, "{bad}: {e}");
        }
        assert_eq!(Params::parse(b"a=\xff", b"").unwrap_err().code, 430);
    }

    #[test]
    fn format_of_requests_that_do_not_parse() {
        assert!(wants_json(b"response=json", b""));
        assert!(wants_json(b"a=%zz&RESPONSE=JSON", b""));
        assert!(wants_json(b"response=%zz&response=json", b""));
        assert!(!wants_json(b"Response=xml&response=json", b""));
        assert!(wants_json(b"a=1", b"response=json"));
        assert!(!wants_json(b"response=xml", b"response=json"));
        assert!(!wants_json(b"", b""));
        // The parsed form agrees when the request parses.
        let ps = Params::parse(b"Response=x&response=json", b"").unwrap();
        assert_eq!(ps.opt_str("response"), Some("x"));
        assert!(!wants_json(b"Response=x&response=json", b""));
    }

    #[test]
    fn limits() {
        let l = Limits {
            max_params: 2,
            max_name_len: 4,
            max_value_len: 3,
        };
        assert!(Params::parse_with(b"a=1", b"b=2", &l).is_ok());
        assert_eq!(Params::parse_with(b"a=1&b=2", b"c=3", &l).unwrap_err().code, 430);
        // Duplicates count too: the limit bounds work, not distinct names.
        assert_eq!(Params::parse_with(b"a=1&a=1&a=1", b"", &l).unwrap_err().code, 430);
        assert_eq!(Params::parse_with(b"abcde=1", b"", &l).unwrap_err().code, 430);
        let e = Params::parse_with(b"a=1234", b"", &l).unwrap_err();
        assert_eq!(e.code, 431);
        assert!(Params::parse_with(b"a=%41%42%43", b"", &l).is_ok());
    }

    #[test]
    fn typed_getters() {
        let ps = p(
            "command=listVirtualMachines&id=6F9619FF-8B86-D011-B42D-00CF4FC964FF&bad=123&listall=True&isrecursive=false\
             &x=maybe&page=2&pagesize=abc&ids=a1b2c3d4-0000-4000-8000-000000000001,,a1b2c3d4-0000-4000-8000-000000000002\
             &networkids=a,b,,c&blank=",
        );
        assert_eq!(
            ps.opt_uuid("id").unwrap(),
            Some(Uuid::parse_str("6f9619ff-8b86-d011-b42d-00cf4fc964ff").unwrap())
        );
        let e = ps.opt_uuid("bad").unwrap_err();
        assert_eq!((e.code, e.cs_code), (431, 4350));
        assert!(e.text.starts_with("Invalid parameter bad value=123 due to"));
        assert_eq!(ps.opt_uuid("nope").unwrap(), None);
        assert_eq!(ps.opt_uuid("blank").unwrap(), None);
        assert_eq!(
            ps.req_uuid("zoneid").unwrap_err().text,
            "Unable to execute API command listvirtualmachines due to missing parameter zoneid"
        );
        assert_eq!(ps.opt_bool("listall").unwrap(), Some(true));
        assert_eq!(ps.opt_bool("isrecursive").unwrap(), Some(false));
        assert_eq!(ps.opt_bool("blank").unwrap(), None);
        assert_eq!(
            ps.opt_bool("x").unwrap_err().text,
            "Unable to execute API command listvirtualmachines due to invalid value maybe for parameter x"
        );
        assert_eq!(ps.opt_i64("page").unwrap(), Some(2));
        assert_eq!(ps.req_i64("page").unwrap(), 2);
        let e = ps.opt_i64("pagesize").unwrap_err();
        assert_eq!((e.code, e.cs_code), (431, 9999));
        assert_eq!(
            e.text,
            "Unable to execute API command listvirtualmachines due to invalid value abc for parameter pagesize"
        );
        assert_eq!(ps.opt_list("networkids"), Some(vec!["a", "b", "c"]));
        assert_eq!(ps.opt_list("blank"), None);
        assert_eq!(ps.opt_uuid_list("ids").unwrap().unwrap().len(), 2);
        assert!(ps.opt_uuid_list("networkids").is_err());
        assert_eq!(ps.req_str("command").unwrap(), "listVirtualMachines");
        assert_eq!(ps.req_str("blank").unwrap(), "");
        assert_eq!(ps.req_str("name").unwrap_err().code, 431);
        // Braced / bare-hex UUID forms are not ids.
        assert!(p("id={6f9619ff-8b86-d011-b42d-00cf4fc964ff}").opt_uuid("id").is_err());
        assert!(p("id=6f9619ff8b86d011b42d00cf4fc964ff").opt_uuid("id").is_err());
    }

    #[test]
    fn cmd_name_override() {
        let mut ps = p("command=restoreVirtualMachine");
        ps.set_cmd_name("restorevm");
        assert_eq!(
            ps.req_str("virtualmachineid").unwrap_err().text,
            "Unable to execute API command restorevm due to missing parameter virtualmachineid"
        );
    }

    #[test]
    fn map_params() {
        let ps = p(
            "command=deployVirtualMachine&details%5B1%5D.key=b&details[0].cpuNumber=2&Details[1].value=2\
                    &details[0].memory=512&details[10].x=y&other[0].a=b&details=plain&details[0].cpuNumber=9",
        );
        let m = ps.map("details").unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].get("cpuNumber").map(String::as_str), Some("2"));
        assert_eq!(m[0].get("memory").map(String::as_str), Some("512"));
        assert_eq!(m[1].get("key").map(String::as_str), Some("b"));
        assert_eq!(m[1].get("value").map(String::as_str), Some("2"));
        assert_eq!(m[2].get("x").map(String::as_str), Some("y"));
        assert!(ps.map("tags").unwrap().is_empty());
        assert!(ps.check_indexed_names().is_ok());
        for bad in [
            "details[0]=1",
            "details[a].k=1",
            "details[0][1].k=1",
            "details]0[.k=1",
            "a.details[0]=1",
            "details[0.k]=1",
            "details[0].k]=1",
        ] {
            let e = p(bad).map("details").unwrap_err();
            assert_eq!(e.code, 430, "{bad}");
            assert!(e.text.starts_with("Unable to decode parameter "), "{bad}");
            assert!(p(bad).check_indexed_names().is_err(), "{bad}");
        }
        // Not bracketed at a name position: plain parameters.
        assert!(p("[0].k=1&x=1").check_indexed_names().is_ok());
        assert_eq!(p("details[-1].k=a&details[%2B2].k=b").map("details").unwrap().len(), 2);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(q in proptest::collection::vec(any::<u8>(), 0..200),
                                     b in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(ps) = Params::parse(&q, &b) {
                for (k, _) in ps.pairs() {
                    let _ = ps.map(k);
                    let _ = ps.opt_uuid(k);
                    let _ = ps.opt_bool(k);
                    let _ = ps.opt_i64(k);
                }
                let _ = ps.check_indexed_names();
            }
        }

        #[test]
        fn random_query_like_strings_never_panic(q in "[a-z\\[\\]\\.0-9%=&+~-]{0,80}") {
            if let Ok(ps) = Params::parse(q.as_bytes(), b"") {
                let _ = ps.map("a");
                let _ = ps.check_indexed_names();
            }
        }

        #[test]
        fn encode_decode_roundtrip(pairs in proptest::collection::vec(("[a-zA-Z][a-zA-Z0-9]{0,8}", any::<String>()), 0..8)) {
            let enc = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
            let q = pairs.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect::<Vec<_>>().join("&");
            let ps = Params::parse(q.as_bytes(), b"").unwrap();
            let expected = Params::from_pairs(pairs.clone());
            prop_assert_eq!(ps.signed_pairs(), expected.signed_pairs());
        }
    }
}

//! Bad input never breaks the server: a proptest (300 cases, fixed seed)
//! throws random requests at `/client/api` of the in-process server — known
//! and unknown commands, parameters of the wrong type, huge, unicode, with
//! control characters, invalid `%`-escapes, `+`, duplicated and indexed
//! names; GET, POST form, POST with a wrong content type, PUT; missing, wrong,
//! misapplied and v3 signatures; good and bad sessions; and requests above
//! the size limit. For every answer:
//! - the status is one of CloudStack's (or 413/414 for oversize, 400 from
//!   the HTTP layer for bytes HTTP does not allow), never 500, and 530 only
//!   where CloudStack answers a refusal so (`REFUSED_530`: deleteHost of a
//!   host not in maintenance, ...; with cserrorcode 4250, checked below);
//! - the body is one CloudStack envelope in the requested format (JSON or
//!   well-formed XML), an error carrying errorcode = status and errortext;
//! - a refused request changed nothing (`TestServer::fingerprint`);
//! - the server still answers a normal signed call.
//!
//! Each bug it found is kept as a named test below; the size limits on raw
//! TCP are in `limits.rs`.

#[path = "fuzz/cases.rs"]
mod cases;
mod common;
#[path = "common/wire.rs"]
mod wire;

use cases::{Auth, Case, Encoding, LIMIT, case};
use common::{TestServer, enc};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use stratus_api::ApiConfig;
use wire::{exchange, parse_xml, wants_json};

/// API keys: the admin's and a plain user's.
struct Keys {
    admin: (String, String),
    user: (String, String),
}

/// A login session: (session key, JSESSIONID).
#[derive(Clone, Debug)]
struct Session {
    key: String,
    jsession: String,
}

fn login(addr: SocketAddr) -> Session {
    let body = "command=login&username=admin&password=admin-password-1&response=json";
    let head = format!(
        "POST /client/api HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (st, head, body) = exchange(addr, head.as_bytes(), body.as_bytes());
    assert_eq!(st, 200, "{head}");
    let v: Value = serde_json::from_slice(&body).unwrap();
    let cookie = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(": ").filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")))
            .find_map(|(_, c)| c.split(';').next()?.strip_prefix(&format!("{name}=")).map(String::from))
            .unwrap()
    };
    assert_eq!(v["loginresponse"]["sessionkey"], cookie("sessionkey").as_str());
    Session {
        key: cookie("sessionkey"),
        jsession: cookie("JSESSIONID"),
    }
}

/// A request on the wire, and where its parameters are.
struct Wire {
    head: Vec<u8>,
    body: Vec<u8>,
    query: Vec<u8>,
    /// The body when it is form-encoded (the server reads parameters there).
    form: Vec<u8>,
}

fn build(c: &Case, keys: &Keys, session: &Session) -> Wire {
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(cmd) = &c.command {
        pairs.push(("command".into(), cmd.clone()));
    }
    pairs.extend(c.params.iter().cloned());
    if let Some(r) = &c.response {
        pairs.push(("response".into(), r.clone()));
    }
    let mut cookies = Vec::new();
    let sign = |pairs: &mut Vec<(String, String)>, key: &str, secret: &str, extra: bool| {
        pairs.push(("apiKey".into(), key.to_string()));
        // What the server verifies: the first value of each name.
        let mut signed: Vec<(String, String)> = Vec::new();
        for (k, v) in pairs.iter() {
            if !signed.iter().any(|(n, _)| n == k) {
                signed.push((k.clone(), v.clone()));
            }
        }
        if extra {
            signed.push(("zoneid".into(), "not-sent".into()));
        }
        let sig = stratus_api::sign::sign(&signed, secret);
        pairs.push(("signature".into(), sig));
    };
    match &c.auth {
        Auth::None => {}
        Auth::Signed => sign(&mut pairs, &keys.admin.0, &keys.admin.1, false),
        Auth::SignedUser => sign(&mut pairs, &keys.user.0, &keys.user.1, false),
        Auth::SignedOther => sign(&mut pairs, &keys.admin.0, &keys.admin.1, true),
        Auth::V3(expires) => {
            pairs.push(("signatureVersion".into(), "3".into()));
            pairs.push(("expires".into(), expires.clone()));
            sign(&mut pairs, &keys.admin.0, &keys.admin.1, false);
        }
        Auth::WrongSignature(sig) => {
            pairs.push(("apiKey".into(), keys.admin.0.clone()));
            pairs.push(("signature".into(), sig.clone()));
        }
        Auth::UnknownKey => sign(&mut pairs, "no-such-key", "no-such-secret", false),
        Auth::Session => {
            pairs.push(("sessionkey".into(), session.key.clone()));
            cookies.push(format!("JSESSIONID={}; sessionkey={}", session.jsession, session.key));
        }
        Auth::BadSession => {
            pairs.push(("sessionkey".into(), "bogus".into()));
            cookies.push("JSESSIONID=bogus.stratus; sessionkey=bogus".into());
        }
        Auth::CookieOnly => cookies.push(format!("JSESSIONID={}; sessionkey={}", session.jsession, session.key)),
        Auth::ParamOnly => pairs.push(("sessionkey".into(), session.key.clone())),
    }
    let encoded: Vec<Vec<u8>> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)).into_bytes())
        .chain(c.raw.iter().cloned())
        .chain(c.oversize.map(|(_, n)| format!("pad={}", "p".repeat(n)).into_bytes()))
        .collect();
    let join = |parts: &[Vec<u8>]| parts.join(&b'&');
    let (mut query, mut body) = (Vec::new(), Vec::new());
    let mut ctype = None;
    match c.encoding {
        Encoding::Get => query = join(&encoded),
        Encoding::Post | Encoding::Put => {
            body = join(&encoded);
            ctype = Some("application/x-www-form-urlencoded");
        }
        Encoding::PostWrongType(t) => {
            body = join(&encoded);
            ctype = Some(t);
        }
        Encoding::Split => {
            let half = encoded.len() / 2;
            query = join(&encoded[..half]);
            body = join(&encoded[half..]);
            ctype = Some("application/x-www-form-urlencoded");
        }
    }
    // Oversize padding goes where the case says.
    if let Some((in_body, _)) = c.oversize {
        let (pad, rest): (Vec<_>, Vec<_>) = encoded.iter().cloned().partition(|s| s.starts_with(b"pad="));
        if in_body {
            query = join(&rest);
            body = join(&pad);
            ctype = Some("application/x-www-form-urlencoded");
        } else {
            query = join(&encoded);
            body.clear();
        }
    }
    let method = match (&c.encoding, body.is_empty()) {
        (Encoding::Put, _) => "PUT",
        (_, true) if !matches!(c.encoding, Encoding::Post | Encoding::PostWrongType(_)) => "GET",
        _ => "POST",
    };
    let mut head = format!("{method} /client/api").into_bytes();
    if !query.is_empty() {
        head.push(b'?');
        head.extend_from_slice(&query);
    }
    head.extend_from_slice(b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    if let Some(t) = ctype {
        head.extend_from_slice(format!("Content-Type: {t}\r\n").as_bytes());
    }
    for c in cookies {
        head.extend_from_slice(format!("Cookie: {c}\r\n").as_bytes());
    }
    head.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    let form = if ctype == Some("application/x-www-form-urlencoded") {
        body.clone()
    } else {
        Vec::new()
    };
    Wire {
        head,
        body,
        query,
        form,
    }
}

/// CloudStack's status codes for refusals (ApiErrorCode), and the HTTP
/// layer's for requests too large.
const ALLOWED: [u16; 15] = [
    200, 400, 401, 405, 413, 414, 430, 431, 432, 531, 532, 533, 534, 536, 537,
];

/// Commands CloudStack refuses with a CloudRuntimeException (530/4250) for
/// what their target still holds; any other 530 is an internal error.
const REFUSED_530: [&str; 3] = ["deletehost", "deletecluster", "deletepod"];

fn refusal_530(c: &Case, status: u16) -> bool {
    status == 530
        && c.command
            .as_deref()
            .is_some_and(|x| REFUSED_530.contains(&x.to_ascii_lowercase().as_str()))
}

/// Checks one answer; `Ok(true)` when it came from our handler.
fn check_answer(c: &Case, w: &Wire, status: u16, head: &str, body: &[u8]) -> Result<bool, String> {
    if !ALLOWED.contains(&status) && !refusal_530(c, status) {
        return Err(format!("status {status}"));
    }
    let ours = head.to_ascii_lowercase().contains("x-content-type-options: nosniff");
    if !ours {
        // Only the HTTP layer refuses without an envelope: bytes a request
        // line may not carry (400), or a head above its size limit (414/431).
        let odd_bytes = w.query.iter().any(|b| !(0x21..0x7f).contains(b));
        let big = w.head.len() > 60_000;
        return if (status == 400 && odd_bytes) || (matches!(status, 414 | 431) && big) {
            Ok(false)
        } else {
            Err(format!("status {status} without an envelope"))
        };
    }
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
    let json = wants_json(&w.query, &w.form);
    let ctype = head
        .lines()
        .find_map(|l| {
            l.split_once(": ")
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        })
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    let (top, fields): (String, BTreeMap<String, String>) = if json {
        if !ctype.starts_with("application/json") {
            return Err(format!("JSON asked for, {ctype} given"));
        }
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let o = v.as_object().ok_or("not a JSON object")?;
        if o.len() != 1 {
            return Err(format!("{} top-level keys", o.len()));
        }
        let (top, inner) = o.iter().next().unwrap();
        let inner = inner.as_object().ok_or("the envelope holds no object")?;
        let fields = inner
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().map_or(v.to_string(), String::from)))
            .collect();
        (top.clone(), fields)
    } else {
        if !ctype.starts_with("text/xml") {
            return Err(format!("XML asked for, {ctype} given"));
        }
        let (top, children) = parse_xml(text)?;
        (top, children.into_iter().collect())
    };
    if !top.ends_with("response") {
        return Err(format!("top-level key {top}"));
    }
    if status != 200 {
        if fields.get("errorcode").map(String::as_str) != Some(status.to_string().as_str()) {
            return Err(format!("errorcode {:?} for status {status}", fields.get("errorcode")));
        }
        if fields.get("errortext").is_none_or(|t| t.is_empty()) {
            return Err("no errortext".into());
        }
        if refusal_530(c, status) && fields.get("cserrorcode").map(String::as_str) != Some("4250") {
            return Err(format!(
                "a 530 refusal with cserrorcode {:?}",
                fields.get("cserrorcode")
            ));
        }
    }
    Ok(true)
}

fn lossy(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    s.chars().take(1500).collect()
}

/// After a call that changed something, waits until jobs and background
/// work (maintenance, expunges) are done, so the next comparison is fair.
fn settle(s: &TestServer, before: &str) {
    if s.fingerprint() == before {
        return;
    }
    let until = Instant::now() + Duration::from_secs(10);
    let mut last = s.fingerprint();
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
        let pending = s.api.read(|c| {
            c.jobs()
                .iter()
                .any(|j| j.status == stratus_core::controller::JobStatus::Pending)
        });
        let now = s.fingerprint();
        if now == last && !pending {
            return;
        }
        last = now;
    }
}

const SEED: [u8; 32] = *b"stratus api fuzz: bad input 0001";

fn fuzz_server(rt: &tokio::runtime::Runtime) -> TestServer {
    let config = ApiConfig {
        max_request_bytes: LIMIT,
        ..ApiConfig::default()
    };
    rt.block_on(TestServer::start_with(config))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs one case: the answer is checked, a refusal changed nothing, and the
/// server answers a normal call after it. Answers (status, ours).
fn run_case(
    rt: &tokio::runtime::Runtime,
    s: &TestServer,
    keys: &Keys,
    session: &Session,
    c: &Case,
) -> Result<(u16, bool), String> {
    let before = s.fingerprint();
    let w = build(c, keys, session);
    let (st, head, body) = exchange(s.addr, &w.head, &w.body);
    let why = |e: String| format!("{e}\nrequest: {}\nanswer: {head}\n\n{}", lossy(&w.head), lossy(&body));
    let ours = check_answer(c, &w, st, &head, &body).map_err(why)?;
    if st == 200 {
        settle(s, &before);
    } else if s.fingerprint() != before {
        return Err(why(format!("a refused request ({st}) changed the state")));
    }
    let (ok, v) = rt.block_on(s.admin(&[("command", "listZones")]));
    if ok != 200 {
        return Err(why(format!("the server no longer answers: {ok} {v}")));
    }
    Ok((st, ours))
}

#[test]
fn bad_input_never_breaks_the_server() {
    let rt = runtime();
    let s = fuzz_server(&rt);
    let session = login(s.addr);
    let user = rt.block_on(s.account("fuzzed", None, stratus_core::inventory::AccountType::User));
    let keys = Keys {
        admin: s.admin.clone(),
        user,
    };
    let i = &s.ids;
    let mut ids = vec![
        i.zone.clone(),
        i.pod.clone(),
        i.cluster.clone(),
        i.pool.clone(),
        i.small.clone(),
        i.ha.clone(),
        i.disk.clone(),
        i.template.clone(),
    ];
    ids.extend(i.hosts.iter().cloned());
    // FUZZ_CASES and FUZZ_SEED (any text) explore further by hand.
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let mut seed = SEED;
    if let Ok(extra) = std::env::var("FUZZ_SEED") {
        for (i, b) in extra.bytes().enumerate() {
            seed[i % 32] ^= b;
        }
    }
    let config = Config {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let seen = std::cell::RefCell::new(BTreeMap::<(u16, bool), usize>::new());
    let started = Instant::now();
    let result = runner.run(&case(ids), |mut c| {
        // Logging out would end the session the other cases use.
        if c.command.as_deref() == Some("logout")
            && matches!(c.auth, Auth::Session | Auth::CookieOnly | Auth::ParamOnly)
        {
            c.auth = Auth::BadSession;
        }
        let (st, ours) = run_case(&rt, &s, &keys, &session, &c).map_err(TestCaseError::fail)?;
        *seen.borrow_mut().entry((st, ours)).or_default() += 1;
        Ok(())
    });
    eprintln!(
        "fuzz: {:?} ((status, enveloped) → requests) in {:.1} s",
        seen.borrow(),
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ---- Regressions the fuzzer found ------------------------------------------

fn one(rt: &tokio::runtime::Runtime, s: &TestServer, c: Case) -> (u16, bool) {
    let keys = Keys {
        admin: s.admin.clone(),
        user: s.admin.clone(),
    };
    let session = Session {
        key: "none".into(),
        jsession: "none".into(),
    };
    run_case(rt, s, &keys, &session, &c).unwrap_or_else(|e| panic!("{e}"))
}

fn plain(command: &str, params: &[(&str, &str)], response: Option<&str>) -> Case {
    Case {
        command: Some(command.into()),
        params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        raw: Vec::new(),
        response: response.map(String::from),
        encoding: Encoding::Get,
        auth: Auth::Signed,
        oversize: None,
    }
}

/// axum answered other methods with an empty 405.
#[test]
fn put_is_refused_in_the_envelope() {
    let rt = runtime();
    let s = fuzz_server(&rt);
    let mut c = plain("listZones", &[], Some("json"));
    c.encoding = Encoding::Put;
    assert_eq!(one(&rt, &s, c), (405, true));
}

/// axum answered a body above the limit with a plain-text 413.
#[test]
fn oversized_body_and_query_are_refused_in_the_envelope() {
    let rt = runtime();
    let s = fuzz_server(&rt);
    for (in_body, status) in [(true, 413), (false, 414)] {
        let mut c = plain("listZones", &[], Some("json"));
        c.oversize = Some((in_body, LIMIT + 1));
        assert_eq!(one(&rt, &s, c), (status, true));
    }
}

/// A request that did not parse was answered in JSON whatever it asked for.
#[test]
fn malformed_requests_answer_in_the_format_asked_for() {
    let rt = runtime();
    let s = fuzz_server(&rt);
    for response in [None, Some("json"), Some("xml")] {
        let mut c = plain("listZones", &[], response);
        c.raw = vec![b"a=%zz".to_vec()];
        // `run_case` checks the format against the request.
        assert_eq!(one(&rt, &s, c), (430, true));
    }
    let mut c = plain("listZones", &[("Response", "xml"), ("nnnn", "x")], Some("json"));
    c.raw = vec![b"b%c3=1".to_vec()];
    assert_eq!(one(&rt, &s, c), (430, true));
}

/// A request refused for the state of its target was a 530 (internal error).
#[test]
fn refusals_for_a_bad_state_are_not_internal_errors() {
    let rt = runtime();
    let s = fuzz_server(&rt);
    let host = s.ids.hosts[0].clone();
    let c = plain("cancelHostMaintenance", &[("id", &host)], Some("json"));
    assert_eq!(one(&rt, &s, c), (431, true));
}

/// deleteHost of a host not in maintenance is CloudStack's 530 refusal
/// (cserrorcode 4250) and changes nothing; the checker accepts exactly that.
#[test]
fn delete_refusals_are_530_with_cloudruntime_code() {
    let rt = runtime();
    let s = fuzz_server(&rt);
    let host = s.ids.hosts[0].clone();
    let before = s.fingerprint();
    let c = plain("deleteHost", &[("id", &host)], Some("xml"));
    assert_eq!(one(&rt, &s, c), (530, true));
    assert_eq!(s.fingerprint(), before);
}

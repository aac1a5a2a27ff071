//! The fuzzer's requests: commands, parameters good and bad for their types,
//! raw segments, encodings, authentication and oversize padding (proptest
//! strategies). Included by `api/tests/fuzz.rs`.

use proptest::prelude::*;
use stratus_api::registry::{Ty, commands};

/// `max_request_bytes` of the fuzzed server: small, so queries above it are
/// still below the HTTP layer's own URI limit (64 KiB) and reach our check.
pub const LIMIT: usize = 16 * 1024;

#[derive(Clone, Debug)]
pub enum Encoding {
    Get,
    Post,
    /// A POST whose body is not form-encoded: the body is not read for parameters.
    PostWrongType(&'static str),
    /// Half in the query string, half in the body.
    Split,
    Put,
}

#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Signed,
    /// Signed by a plain user (roles, ownership).
    SignedUser,
    WrongSignature(String),
    /// Signed, but over other parameters than those sent.
    SignedOther,
    /// `signatureVersion=3` with this `expires`, signed correctly.
    V3(String),
    UnknownKey,
    Session,
    BadSession,
    CookieOnly,
    ParamOnly,
}

#[derive(Clone, Debug)]
pub struct Case {
    pub command: Option<String>,
    /// Decoded parameters (encoded on the wire with Java's rules).
    pub params: Vec<(String, String)>,
    /// Segments sent as they are (bad escapes, raw bytes, `+`), after the rest.
    pub raw: Vec<Vec<u8>>,
    pub response: Option<String>,
    pub encoding: Encoding,
    pub auth: Auth,
    /// Padding past the limit: (in the body, bytes).
    pub oversize: Option<(bool, usize)>,
}

/// Parameter values: good and bad, for every type.
fn value(ids: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(ids),
        1 => Just(String::new()),
        1 => Just("true".to_string()),
        1 => Just("False".to_string()),
        1 => Just("maybe".to_string()),
        1 => Just("-1".to_string()),
        1 => Just("99999999999999999999999".to_string()),
        1 => Just("2147483648".to_string()),
        1 => Just("0".to_string()),
        1 => Just("6F9619FF-8B86-D011-B42D-00CF4FC964FF".to_string()),
        1 => Just("{6f9619ff-8b86-d011-b42d-00cf4fc964ff}".to_string()),
        1 => Just("a,b,,c".to_string()),
        1 => Just("2030-01-01T00:00:00+0000".to_string()),
        1 => Just("http://sim/c1/h9/cpucore=x".to_string()),
        1 => Just("nfs://192.0.2.1/x".to_string()),
        1 => Just("10.0.0.0/8".to_string()),
        1 => "[a-z0-9 ]{0,12}",
        1 => "\\PC{0,16}",
        1 => any::<String>(),
        1 => "[\\x00-\\x1f\\x7f]{1,6}",
        1 => (1usize..4096).prop_map(|n| "x".repeat(n)),
    ]
}

/// A value of the parameter's type, or now and then of another.
fn typed_value(ty: Ty, ids: Vec<String>) -> BoxedStrategy<String> {
    let good = match ty {
        Ty::Uuid => proptest::sample::select(ids.clone()).boxed(),
        Ty::Bool => prop_oneof![Just("true".to_string()), Just("False".to_string())].boxed(),
        Ty::Int | Ty::Long => prop_oneof![(0i64..5000).prop_map(|n| n.to_string()), Just("-1".to_string())].boxed(),
        Ty::List => proptest::collection::vec(proptest::sample::select(ids.clone()), 1..3)
            .prop_map(|v| v.join(","))
            .boxed(),
        Ty::Date => Just("2024-05-01".to_string()).boxed(),
        Ty::Str | Ty::Map => "[a-zA-Z0-9 ./:-]{1,24}".boxed(),
    };
    prop_oneof![4 => good, 1 => value(ids)].boxed()
}

/// Parameter names: a command's own (so types are checked), common ones,
/// indexed map names, odd ones.
fn name(params: Vec<&'static str>) -> impl Strategy<Value = String> {
    let own = if params.is_empty() { vec!["id"] } else { params };
    prop_oneof![
        10 => proptest::sample::select(own).prop_map(String::from),
        3 => proptest::sample::select(vec![
            "id", "ids", "zoneid", "name", "page", "pagesize", "listall", "keyword", "details",
            "account", "domainid", "response", "command", "signature", "apiKey", "sessionkey",
            "expires", "signatureVersion", "Response", "COMMAND",
        ])
        .prop_map(String::from),
        2 => ("[a-z]{1,8}", 0i64..3, "[a-zA-Z]{1,6}").prop_map(|(n, i, f)| format!("{n}[{i}].{f}")),
        1 => prop_oneof![
            Just("details[0]".to_string()),
            Just("details[a].k".to_string()),
            Just("details[0][1].k".to_string()),
            Just("details]0[.k".to_string()),
            Just("[0].k".to_string()),
            Just("details[99999999999].k".to_string()),
        ],
        1 => "\\PC{1,10}",
        1 => (257usize..400).prop_map(|n| "n".repeat(n)),
    ]
}

/// Raw segments: invalid escapes, lone `%`, non-UTF-8, `+`, control bytes.
fn raw_segment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"a=%".to_vec()),
        Just(b"a=%4".to_vec()),
        Just(b"a=%zz".to_vec()),
        Just(b"%=1".to_vec()),
        Just(b"a=%ff%fe".to_vec()),
        Just(b"b%c3=1".to_vec()),
        Just(b"name=a+b+c".to_vec()),
        Just(b"=x".to_vec()),
        Just(b"&&&".to_vec()),
        Just(b"details%5B0%5D.key=k".to_vec()),
        Just(b"a=\xff\xfe".to_vec()),
        Just(b"a=\x01\x02".to_vec()),
        Just(b"a=b c".to_vec()),
        proptest::collection::vec(any::<u8>(), 1..24),
    ]
}

fn expires() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("2000-01-01T00:00:00+0000".to_string()),
        Just("2099-01-01T00:00:00+0000".to_string()),
        Just("2099-13-45T99:99:99+0000".to_string()),
        Just("tomorrow".to_string()),
        Just(String::new()),
        Just("2099-01-01T00:00:00.1234567891+0000".to_string()),
        Just("9999999-01-01T00:00:00Z".to_string()),
        "\\PC{0,20}",
    ]
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        2 => Just(Auth::None),
        14 => Just(Auth::Signed),
        4 => Just(Auth::SignedUser),
        1 => prop_oneof![
            Just(String::new()),
            Just("AAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_string()),
            Just("not base64!".to_string()),
            "\\PC{0,40}",
        ]
        .prop_map(Auth::WrongSignature),
        1 => Just(Auth::SignedOther),
        2 => expires().prop_map(Auth::V3),
        1 => Just(Auth::UnknownKey),
        3 => Just(Auth::Session),
        1 => Just(Auth::BadSession),
        1 => Just(Auth::CookieOnly),
        1 => Just(Auth::ParamOnly),
    ]
}

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        10 => Just(Encoding::Get),
        6 => Just(Encoding::Post),
        1 => prop_oneof![Just("text/plain"), Just("application/json"), Just("multipart/form-data")]
            .prop_map(Encoding::PostWrongType),
        2 => Just(Encoding::Split),
        1 => Just(Encoding::Put),
    ]
}

pub fn case(ids: Vec<String>) -> impl Strategy<Value = Case> {
    let mut known: Vec<&'static str> = commands().keys().copied().collect();
    known.sort();
    let command = prop_oneof![
        20 => proptest::sample::select(known).prop_map(Some),
        1 => Just(None),
        1 => Just(Some("launchMissiles")),
        1 => Just(Some("LISTZONES")),
    ];
    command.prop_flat_map(move |command| {
        let table = command.and_then(|c| commands().get(c));
        let own: Vec<&'static str> = table
            .map(|c| c.params.iter().map(|p| p.name).collect())
            .unwrap_or_default();
        // The command's own parameters, mostly well typed, required ones
        // mostly present; then a few others of any kind.
        let typed: Vec<_> = table
            .map(|c| c.params.iter().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                let keep = if p.required { 0.85 } else { 0.25 };
                proptest::option::weighted(keep, typed_value(p.ty, ids.clone()))
                    .prop_map(move |v| v.map(|v| (p.name.to_string(), v)))
            })
            .collect();
        let params = (typed, proptest::collection::vec((name(own), value(ids.clone())), 0..4))
            .prop_map(|(typed, extra)| typed.into_iter().flatten().chain(extra).collect::<Vec<_>>());
        (
            prop_oneof![20 => Just(command.map(String::from)), 1 => "\\PC{0,12}".prop_map(Some)],
            params,
            prop_oneof![5 => Just(Vec::new()), 1 => proptest::collection::vec(raw_segment(), 1..3)],
            prop_oneof![
                4 => Just(Some("json".to_string())),
                2 => Just(None),
                1 => Just(Some("xml".to_string())),
                1 => Just(Some("JSON".to_string())),
                1 => "\\PC{0,6}".prop_map(Some),
            ],
            encoding(),
            auth(),
            prop_oneof![
                12 => Just(None),
                1 => (any::<bool>(), LIMIT + 1..LIMIT * 3).prop_map(Some),
            ],
        )
            .prop_map(|(command, params, raw, response, encoding, auth, oversize)| Case {
                command,
                params,
                raw,
                response,
                encoding,
                auth,
                oversize,
            })
    })
}

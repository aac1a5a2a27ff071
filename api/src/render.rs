//! A small ordered value model and CloudStack's response envelopes in JSON and
//! XML. Insertion order is kept because CloudStack's output order is stable
//! (`count` before the list, `uuidList` first in errors) and golden tests,
//! snapshots and humans like it that way.

use std::borrow::Cow;
use std::fmt::Write as _;

/// The version string put on the XML root element.
pub const CS_VERSION: &str = "4.19.1.0";

/// One response value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Obj(Obj),
    /// A list of objects; an empty one renders as `[]` in JSON (e.g.
    /// `uuidList`) and as nothing in XML.
    List(Vec<Obj>),
    /// A document of our own schema (an inventory export, a what-if report):
    /// written as is in JSON, as its JSON text in XML.
    Json(std::sync::Arc<serde_json::Value>),
}

pub type Key = Cow<'static, str>;

/// An object: ordered `(name, value)` pairs. Names are not deduplicated —
/// callers set each field once, as CloudStack's response classes do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Obj(pub Vec<(Key, Val)>);

impl Obj {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn val(mut self, name: impl Into<Key>, v: Val) -> Self {
        self.0.push((name.into(), v));
        self
    }

    pub fn s(self, name: impl Into<Key>, v: impl Into<String>) -> Self {
        self.val(name, Val::Str(v.into()))
    }

    pub fn i(self, name: impl Into<Key>, v: i64) -> Self {
        self.val(name, Val::Int(v))
    }

    pub fn f(self, name: impl Into<Key>, v: f64) -> Self {
        self.val(name, Val::Float(v))
    }

    pub fn b(self, name: impl Into<Key>, v: bool) -> Self {
        self.val(name, Val::Bool(v))
    }

    pub fn obj(self, name: impl Into<Key>, v: Obj) -> Self {
        self.val(name, Val::Obj(v))
    }

    pub fn list(self, name: impl Into<Key>, items: Vec<Obj>) -> Self {
        self.val(name, Val::List(items))
    }

    /// A date field in CloudStack's `yyyy-MM-dd'T'HH:mm:ssZ` form.
    pub fn date(self, name: impl Into<Key>, epoch_ms: u64) -> Self {
        self.s(name, crate::dates::cs_date(epoch_ms))
    }

    // The opt_* forms omit the field when None: CloudStack (Gson) drops nulls.

    pub fn opt_s(self, name: impl Into<Key>, v: Option<impl Into<String>>) -> Self {
        match v {
            Some(v) => self.s(name, v),
            None => self,
        }
    }

    pub fn opt_i(self, name: impl Into<Key>, v: Option<i64>) -> Self {
        match v {
            Some(v) => self.i(name, v),
            None => self,
        }
    }

    pub fn opt_f(self, name: impl Into<Key>, v: Option<f64>) -> Self {
        match v {
            Some(v) => self.f(name, v),
            None => self,
        }
    }

    pub fn opt_b(self, name: impl Into<Key>, v: Option<bool>) -> Self {
        match v {
            Some(v) => self.b(name, v),
            None => self,
        }
    }

    pub fn opt_obj(self, name: impl Into<Key>, v: Option<Obj>) -> Self {
        match v {
            Some(v) => self.obj(name, v),
            None => self,
        }
    }

    pub fn opt_date(self, name: impl Into<Key>, epoch_ms: Option<u64>) -> Self {
        match epoch_ms {
            Some(v) => self.date(name, v),
            None => self,
        }
    }

    /// Non-builder append, for loops.
    pub fn push(&mut self, name: impl Into<Key>, v: Val) {
        self.0.push((name.into(), v));
    }

    /// The first field with this name.
    pub fn get(&self, name: &str) -> Option<&Val> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

// ---- envelope shapes ------------------------------------------------------

/// A list response body: `{}` when nothing matched, `{count}` when the page is
/// empty but matches exist (past the last page), else `{count, objname: [..]}`.
/// `count` is the total number of matches, not the page length.
pub fn list_body(objname: &str, count: usize, items: Vec<Obj>) -> Obj {
    if count == 0 && items.is_empty() {
        return Obj::new();
    }
    let body = Obj::new().i("count", count as i64);
    if items.is_empty() {
        body
    } else {
        body.list(objname.to_string(), items)
    }
}

/// The ExceptionResponse body. Field order follows CloudStack's output.
pub fn error_body(code: u16, cserrorcode: u32, text: &str) -> Obj {
    Obj::new()
        .list("uuidList", Vec::new())
        .i("errorcode", i64::from(code))
        .i("cserrorcode", i64::from(cserrorcode))
        .s("errortext", text)
}

/// An async submission: `{jobid}` — not wrapped in an object name.
pub fn async_body(jobid: &str) -> Obj {
    Obj::new().s("jobid", jobid)
}

/// A create-style async submission (BaseAsyncCreateCmd): `{id, jobid}`.
pub fn async_create_body(id: &str, jobid: &str) -> Obj {
    Obj::new().s("id", id).s("jobid", jobid)
}

/// SuccessResponse: `{success, details?}`.
pub fn success_body(success: bool, details: Option<&str>) -> Obj {
    Obj::new().b("success", success).opt_s("details", details)
}

// ---- JSON -----------------------------------------------------------------

/// `{"<top>":{...}}`, compact.
pub fn json(top: &str, body: &Obj) -> String {
    let mut out = String::with_capacity(256);
    out.push('{');
    json_str(&mut out, top);
    out.push(':');
    json_obj(&mut out, body);
    out.push('}');
    out
}

fn json_obj(out: &mut String, o: &Obj) {
    out.push('{');
    for (n, (k, v)) in o.0.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        json_str(out, k);
        out.push(':');
        json_val(out, v);
    }
    out.push('}');
}

fn json_val(out: &mut String, v: &Val) {
    match v {
        Val::Str(s) => json_str(out, s),
        Val::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Val::Float(f) => out.push_str(&java_double(*f)),
        Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Val::Obj(o) => json_obj(out, o),
        Val::Json(v) => out.push_str(&serde_json::to_string(&**v).unwrap_or_else(|_| "null".into())),
        Val::List(items) => {
            out.push('[');
            for (n, o) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                json_obj(out, o);
            }
            out.push(']');
        }
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    // Runs of characters that need no escape are copied whole: almost every
    // value (ids, names, dates) is one such run.
    let bytes = s.as_bytes();
    let (mut run, mut i) = (0, 0);
    while i < bytes.len() {
        let b = bytes[i];
        let len = match b {
            b'"' | b'\\' | 0..0x20 => 1,
            // U+2028/2029 (E2 80 A8/A9) are legal JSON but break JavaScript
            // consumers (clients accept text/javascript too); Gson escapes them too.
            0xE2 if matches!(bytes.get(i + 1..i + 3), Some([0x80, 0xA8 | 0xA9])) => 3,
            _ => {
                i += 1;
                continue;
            }
        };
        // `i` starts a character (an ASCII byte or a UTF-8 lead byte).
        out.push_str(&s[run..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            0xE2 => out.push_str(if bytes[i + 2] == 0xA8 { "\\u2028" } else { "\\u2029" }),
            c => {
                let _ = write!(out, "\\u{:04x}", c);
            }
        }
        i += len;
        run = i;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// A double the way Java's `Double.toString` (hence Gson) prints it: always a
/// fraction digit (`2.0`), `E` notation outside [1e-3, 1e7). JSON has no NaN
/// or infinity; those become `0.0` rather than an unparsable document.
pub fn java_double(f: f64) -> String {
    if !f.is_finite() {
        return "0.0".to_string();
    }
    let a = f.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = format!("{f}");
        if s.contains('.') { s } else { s + ".0" }
    } else {
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mant = if mant.contains('.') {
            mant.to_string()
        } else {
            format!("{mant}.0")
        };
        format!("{mant}E{exp}")
    }
}

// ---- XML ------------------------------------------------------------------

/// `<?xml ...?><top cloud-stack-version="...">...</top>`. A nested object is
/// an element with children; a list named `x` is repeated `<x>` elements.
pub fn xml(top: &str, body: &Obj) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let top = xml_name(top);
    let _ = write!(out, "<{top} cloud-stack-version=\"{CS_VERSION}\">");
    xml_children(&mut out, body);
    let _ = write!(out, "</{top}>");
    out
}

fn xml_children(out: &mut String, o: &Obj) {
    for (k, v) in &o.0 {
        let name = xml_name(k);
        match v {
            Val::List(items) => {
                for item in items {
                    let _ = write!(out, "<{name}>");
                    xml_children(out, item);
                    let _ = write!(out, "</{name}>");
                }
            }
            Val::Obj(inner) => {
                let _ = write!(out, "<{name}>");
                xml_children(out, inner);
                let _ = write!(out, "</{name}>");
            }
            Val::Str(s) => {
                let _ = write!(out, "<{name}>");
                xml_text(out, s);
                let _ = write!(out, "</{name}>");
            }
            Val::Int(i) => {
                let _ = write!(out, "<{name}>{i}</{name}>");
            }
            Val::Float(f) => {
                let _ = write!(out, "<{name}>{}</{name}>", java_double(*f));
            }
            Val::Bool(b) => {
                let _ = write!(out, "<{name}>{b}</{name}>");
            }
            Val::Json(v) => {
                let _ = write!(out, "<{name}>");
                xml_text(out, &serde_json::to_string(&**v).unwrap_or_else(|_| "null".into()));
                let _ = write!(out, "</{name}>");
            }
        }
    }
}

fn xml_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry even as references: replace so
            // the document stays well-formed.
            c if !xml_char_ok(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

fn xml_char_ok(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// Field names are ours and already valid; map keys that came from users (a
/// `details` object) may not be, so replace what an XML name cannot hold.
fn xml_name(k: &str) -> Cow<'_, str> {
    let ok = |i: usize, c: char| match c {
        '_' => true,
        '-' | '.' => i > 0,
        c => c.is_alphanumeric() && (i > 0 || !c.is_numeric()),
    };
    if !k.is_empty() && k.chars().enumerate().all(|(i, c)| ok(i, c)) {
        return Cow::Borrowed(k);
    }
    let mut s: String = k
        .chars()
        .enumerate()
        .map(|(i, c)| if ok(i, c) { c } else { '_' })
        .collect();
    if s.is_empty() {
        s.push('_');
    }
    Cow::Owned(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(id: &str) -> Obj {
        Obj::new()
            .s("id", id)
            .s("name", "web-1")
            .i("cpunumber", 2)
            .b("haenable", true)
            .opt_s("hostid", None::<String>)
            .list("nic", vec![Obj::new().s("ipaddress", "10.0.0.5")])
    }

    #[test]
    fn list_response_json() {
        let body = list_body("virtualmachine", 3, vec![vm("a"), vm("b")]);
        assert_eq!(
            json("listvirtualmachinesresponse", &body),
            r#"{"listvirtualmachinesresponse":{"count":3,"virtualmachine":[{"id":"a","name":"web-1","cpunumber":2,"haenable":true,"nic":[{"ipaddress":"10.0.0.5"}]},{"id":"b","name":"web-1","cpunumber":2,"haenable":true,"nic":[{"ipaddress":"10.0.0.5"}]}]}}"#
        );
    }

    #[test]
    fn empty_list_and_past_last_page() {
        assert_eq!(
            json("listzonesresponse", &list_body("zone", 0, vec![])),
            r#"{"listzonesresponse":{}}"#
        );
        assert_eq!(
            json("listzonesresponse", &list_body("zone", 7, vec![])),
            r#"{"listzonesresponse":{"count":7}}"#
        );
        assert_eq!(
            xml("listzonesresponse", &list_body("zone", 0, vec![])),
            r#"<?xml version="1.0" encoding="UTF-8"?><listzonesresponse cloud-stack-version="4.19.1.0"></listzonesresponse>"#
        );
    }

    #[test]
    fn error_envelope() {
        let body = error_body(
            431,
            9999,
            "Unable to execute API command deployvirtualmachine due to missing parameter zoneid",
        );
        assert_eq!(
            json("deployvirtualmachineresponse", &body),
            r#"{"deployvirtualmachineresponse":{"uuidList":[],"errorcode":431,"cserrorcode":9999,"errortext":"Unable to execute API command deployvirtualmachine due to missing parameter zoneid"}}"#
        );
        assert_eq!(
            xml(
                "errorresponse",
                &error_body(432, 9999, "The given command does not exist")
            ),
            r#"<?xml version="1.0" encoding="UTF-8"?><errorresponse cloud-stack-version="4.19.1.0"><errorcode>432</errorcode><cserrorcode>9999</cserrorcode><errortext>The given command does not exist</errortext></errorresponse>"#
        );
    }

    #[test]
    fn async_submission_and_job_result() {
        assert_eq!(
            json("stopvirtualmachineresponse", &async_body("j-1")),
            r#"{"stopvirtualmachineresponse":{"jobid":"j-1"}}"#
        );
        assert_eq!(
            json("deployvirtualmachineresponse", &async_create_body("vm-1", "j-2")),
            r#"{"deployvirtualmachineresponse":{"id":"vm-1","jobid":"j-2"}}"#
        );
        let q = Obj::new()
            .s("jobid", "j-2")
            .i("jobstatus", 1)
            .i("jobprocstatus", 0)
            .i("jobresultcode", 0)
            .s("jobresulttype", "object")
            .obj(
                "jobresult",
                Obj::new().obj("virtualmachine", Obj::new().s("id", "vm-1").s("state", "Running")),
            )
            .s("jobinstancetype", "VirtualMachine")
            .s("jobinstanceid", "vm-1")
            .date("created", 1_714_566_896_000);
        assert_eq!(
            json("queryasyncjobresultresponse", &q),
            r#"{"queryasyncjobresultresponse":{"jobid":"j-2","jobstatus":1,"jobprocstatus":0,"jobresultcode":0,"jobresulttype":"object","jobresult":{"virtualmachine":{"id":"vm-1","state":"Running"}},"jobinstancetype":"VirtualMachine","jobinstanceid":"vm-1","created":"2024-05-01T12:34:56+0000"}}"#
        );
        assert_eq!(
            xml("queryasyncjobresultresponse", &q),
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?><queryasyncjobresultresponse cloud-stack-version="4.19.1.0">"#,
                "<jobid>j-2</jobid><jobstatus>1</jobstatus><jobprocstatus>0</jobprocstatus><jobresultcode>0</jobresultcode>",
                "<jobresulttype>object</jobresulttype><jobresult><virtualmachine><id>vm-1</id><state>Running</state>",
                "</virtualmachine></jobresult><jobinstancetype>VirtualMachine</jobinstancetype>",
                "<jobinstanceid>vm-1</jobinstanceid><created>2024-05-01T12:34:56+0000</created></queryasyncjobresultresponse>"
            )
        );
        assert_eq!(
            json("deletezoneresponse", &success_body(true, None)),
            r#"{"deletezoneresponse":{"success":true}}"#
        );
    }

    #[test]
    fn list_response_xml() {
        let body = list_body("virtualmachine", 2, vec![vm("a"), vm("b")]);
        let one = "<name>web-1</name><cpunumber>2</cpunumber><haenable>true</haenable><nic><ipaddress>10.0.0.5</ipaddress></nic>";
        assert_eq!(
            xml("listvirtualmachinesresponse", &body),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><listvirtualmachinesresponse cloud-stack-version=\"4.19.1.0\"><count>2</count><virtualmachine><id>a</id>{one}</virtualmachine><virtualmachine><id>b</id>{one}</virtualmachine></listvirtualmachinesresponse>"
            )
        );
    }

    #[test]
    fn escaping() {
        let o = Obj::new().s("t", "a\"b\\c\nd\u{1}\u{2028}é<&>'");
        assert_eq!(json("r", &o), r#"{"r":{"t":"a\"b\\c\nd\u0001\u2028é<&>'"}}"#);
        assert_eq!(
            xml("r", &o),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><r cloud-stack-version=\"4.19.1.0\"><t>a&quot;b\\c\nd\u{fffd}\u{2028}é&lt;&amp;&gt;&apos;</t></r>"
        );
        let d = Obj::new().obj("details", Obj::new().s("cpu Number", "2").s("1x", "y"));
        assert!(xml("r", &d).contains("<details><cpu_Number>2</cpu_Number><_x>y</_x></details>"));
        assert_eq!(json("r", &d), r#"{"r":{"details":{"cpu Number":"2","1x":"y"}}}"#);
    }

    #[test]
    fn floats_like_java() {
        let cases = [
            (12.5, "12.5"),
            (2.0, "2.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (1.5e-5, "1.5E-5"),
            (9_999_999.0, "9999999.0"),
            (1e7, "1.0E7"),
            (1.25e10, "1.25E10"),
            (f64::NAN, "0.0"),
            (f64::INFINITY, "0.0"),
            (f64::NEG_INFINITY, "0.0"),
        ];
        for (f, s) in cases {
            assert_eq!(java_double(f), s, "{f}");
        }
        assert_eq!(
            json("r", &Obj::new().f("x", 0.1 + 0.2)),
            r#"{"r":{"x":0.30000000000000004}}"#
        );
    }

    #[test]
    fn builders() {
        let o = Obj::new()
            .opt_i("a", None)
            .opt_i("b", Some(1))
            .opt_b("c", None)
            .opt_obj("d", None)
            .opt_date("e", None);
        assert_eq!(o.len(), 1);
        assert_eq!(o.get("b"), Some(&Val::Int(1)));
        let mut p = Obj::new();
        assert!(p.is_empty());
        p.push(String::from("dyn"), Val::Bool(false));
        assert_eq!(json("r", &p), r#"{"r":{"dyn":false}}"#);
    }

    /// The escaping as it was written first, one character at a time.
    fn json_str_by_char(out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    #[test]
    fn json_strings_escape_quotes_controls_and_line_separators() {
        let mut o = String::new();
        json_str(&mut o, "a\"b\\c\nd\u{1}\u{2028}\u{2029}\u{2027}é€\u{1F600}");
        assert_eq!(o, "\"a\\\"b\\\\c\\nd\\u0001\\u2028\\u2029\u{2027}é€\u{1F600}\"");
    }

    proptest::proptest! {
        #[test]
        fn json_strings_match_the_char_by_char_escaping(cs in proptest::collection::vec(proptest::prop_oneof![
            proptest::arbitrary::any::<char>(),
            proptest::strategy::Just('\u{2028}'),
            proptest::strategy::Just('\u{2029}'),
            proptest::strategy::Just('\u{2027}'),
            proptest::strategy::Just('"'),
            proptest::strategy::Just('\\'),
            proptest::strategy::Just('\n'),
            proptest::strategy::Just('\u{1}'),
            proptest::strategy::Just('a'),
        ], 0..40)) {
            let s: String = cs.into_iter().collect();
            let (mut fast, mut slow) = (String::new(), String::new());
            json_str(&mut fast, &s);
            json_str_by_char(&mut slow, &s);
            proptest::prop_assert_eq!(fast, slow);
        }
    }
}

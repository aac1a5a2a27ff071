//! API-key request signatures (CloudStack ApiServer.verifyRequest rules) and
//! the `signatureVersion=3` expiry.
//!
//! The server signs the *decoded* parameters: every one except `signature`,
//! sorted by name, `name=URLEncoder(value)` with `+` as `%20`, joined by `&`,
//! lowercased, HMAC-SHA1 with the secret, base64. Real clients deviate in
//! small ways (sort order, `~`, `[` `]`), so [`verify`] also accepts those.

use std::cmp::Ordering;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

type HmacSha1 = Hmac<Sha1>;

/// How the string to sign is built. [`Variant::JAVA`] is what CloudStack
/// computes; the others reproduce client deviations (all from client source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Variant {
    /// Sort by lowercased name instead of the raw name's UTF-16 order
    /// (libcloud, Marvin, cloudmonkey).
    pub sort_lowercase: bool,
    /// Leave `~` unescaped in values (Python 3 `quote`: cs, libcloud, Marvin).
    pub keep_tilde: bool,
    /// Leave `[` `]` unescaped in values (libcloud). Names are never encoded.
    pub keep_brackets: bool,
}

impl Variant {
    pub const JAVA: Self = Self {
        sort_lowercase: false,
        keep_tilde: false,
        keep_brackets: false,
    };
    pub const CS: Self = Self {
        sort_lowercase: false,
        keep_tilde: true,
        keep_brackets: false,
    };
    pub const LIBCLOUD: Self = Self {
        sort_lowercase: true,
        keep_tilde: true,
        keep_brackets: true,
    };
    /// Marvin and cloudmonkey on Python 3.
    pub const MARVIN: Self = Self {
        sort_lowercase: true,
        keep_tilde: true,
        keep_brackets: false,
    };
    /// cloudmonkey 5.x on Python 2, whose `quote` still escapes `~`.
    pub const CLOUDMONKEY_PY2: Self = Self {
        sort_lowercase: true,
        keep_tilde: false,
        keep_brackets: false,
    };

    /// Every combination, Java-exact first. Trying all eight costs at most
    /// eight HMACs over a short string and covers clients not yet seen that
    /// mix the same deviations differently.
    pub const ALL: [Self; 8] = {
        let mut all = [Self::JAVA; 8];
        let mut i = 0;
        while i < 8 {
            all[i] = Self {
                sort_lowercase: i & 1 != 0,
                keep_tilde: i & 2 != 0,
                keep_brackets: i & 4 != 0,
            };
            i += 1;
        }
        all
    };
}

/// Java `String.compareTo`: UTF-16 code units, case-sensitive. Differs from
/// Rust's byte order only for characters above U+FFFF vs U+E000..U+FFFF.
fn utf16_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

fn is_signature(name: &str) -> bool {
    name.eq_ignore_ascii_case("signature")
}

/// Java `URLEncoder.encode(v, "UTF-8")` then `+` → `%20`, with the variant's
/// extra unescaped characters.
fn encode_value(out: &mut String, v: &str, variant: Variant) {
    for &b in v.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => out.push(b as char),
            b'~' if variant.keep_tilde => out.push('~'),
            b'[' | b']' if variant.keep_brackets => out.push(b as char),
            b' ' => out.push_str("%20"),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

/// The string that gets HMAC'd, already lowercased.
pub fn canonical(params: &[(String, String)], variant: Variant) -> String {
    let mut ps: Vec<(&str, &str, Option<String>)> = params
        .iter()
        .filter(|(k, _)| !is_signature(k))
        .map(|(k, v)| (k.as_str(), v.as_str(), variant.sort_lowercase.then(|| k.to_lowercase())))
        .collect();
    // Lowercased sorts tie-break on the raw name so the result is deterministic.
    ps.sort_by(|a, b| match (&a.2, &b.2) {
        (Some(la), Some(lb)) => la.cmp(lb).then_with(|| utf16_cmp(a.0, b.0)),
        _ => utf16_cmp(a.0, b.0),
    });
    let mut s = String::with_capacity(params.iter().map(|(k, v)| k.len() + v.len() * 3 + 2).sum());
    for (n, (k, v, _)) in ps.iter().enumerate() {
        if n > 0 {
            s.push('&');
        }
        s.push_str(k);
        s.push('=');
        encode_value(&mut s, v, variant);
    }
    s.to_lowercase()
}

fn mac(secret: &str, data: &str) -> HmacSha1 {
    // HMAC takes keys of any length; this cannot fail.
    let mut m = HmacSha1::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    m.update(data.as_bytes());
    m
}

/// The Java-exact signature, standard base64 with padding.
pub fn sign(params: &[(String, String)], secret: &str) -> String {
    STANDARD.encode(mac(secret, &canonical(params, Variant::JAVA)).finalize().into_bytes())
}

/// Checks `signature` (already URL-decoded) against every [`Variant`],
/// Java-exact first. Comparison is constant-time (`Mac::verify_slice`).
pub fn verify(params: &[(String, String)], secret: &str, signature: &str) -> bool {
    // A client that forgot to percent-encode `+` in the signature has it
    // decoded to a space; base64 never contains spaces, so undo that.
    let sig = signature.trim().replace(' ', "+");
    let Ok(tag) = STANDARD_PAD_INDIFFERENT.decode(sig.as_bytes()) else {
        return false;
    };
    let mut tried: Vec<String> = Vec::with_capacity(Variant::ALL.len());
    for v in Variant::ALL {
        let c = canonical(params, v);
        // Most requests contain no `~`, `[`, `]` or mixed case, so most
        // variants yield the same string; HMAC each distinct one once.
        if tried.contains(&c) {
            continue;
        }
        if mac(secret, &c).verify_slice(&tag).is_ok() {
            return true;
        }
        tried.push(c);
    }
    false
}

/// Parses a `signatureVersion=3` `expires` value to epoch milliseconds.
/// Accepts `yyyy-MM-dd'T'HH:mm[:ss][.fraction]` followed by `Z`, `±HHMM`,
/// `±HH:MM` or `±HH` (Java's `...ssZ` pattern, ISO offset date-time and ISO
/// instant, with up to nanosecond fractions); `T`/`Z` in either case.
pub fn parse_expires(s: &str) -> Option<i64> {
    let mut p = Cursor {
        b: s.trim().as_bytes(),
        i: 0,
    };
    let year = p.num(4)?;
    p.eat(b'-').then_some(())?;
    let month = p.num(2)?;
    p.eat(b'-').then_some(())?;
    let day = p.num(2)?;
    (p.eat(b'T') || p.eat(b't')).then_some(())?;
    let hour = p.num(2)?;
    p.eat(b':').then_some(())?;
    let minute = p.num(2)?;
    let second = if p.eat(b':') { p.num(2)? } else { 0 };
    let mut nanos = 0u32;
    if p.eat(b'.') || p.eat(b',') {
        let start = p.i;
        while p.i < p.b.len() && p.b[p.i].is_ascii_digit() {
            p.i += 1;
        }
        let digits = &p.b[start..p.i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        for k in 0..9 {
            nanos = nanos * 10 + digits.get(k).map_or(0, |d| u32::from(d - b'0'));
        }
    }
    let offset_secs = if p.eat(b'Z') || p.eat(b'z') {
        0
    } else {
        let sign = if p.eat(b'+') {
            1
        } else if p.eat(b'-') {
            -1
        } else {
            return None;
        };
        let oh = p.num(2)?;
        let om = if p.eat(b':') || p.i < p.b.len() { p.num(2)? } else { 0 };
        if oh > 18 || om > 59 || oh * 60 + om > 18 * 60 {
            return None;
        }
        sign * (oh * 3600 + om * 60)
    };
    if p.i != p.b.len() {
        return None;
    }
    let date = Date::from_calendar_date(
        year,
        Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    );
    let time = Time::from_hms_nano(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        nanos,
    );
    let offset = UtcOffset::from_whole_seconds(offset_secs).ok()?;
    let at = PrimitiveDateTime::new(date.ok()?, time.ok()?).assume_offset(offset);
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.b.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    /// Exactly `n` ASCII digits.
    fn num(&mut self, n: usize) -> Option<i32> {
        let d = self.b.get(self.i..self.i + n)?;
        if !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(d.iter().fold(0, |acc, c| acc * 10 + i32::from(c - b'0')))
    }
}

/// Why a signed request failed the `signatureVersion=3` rules (for logs; the
/// client only ever sees the generic 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryError {
    Missing,
    Unparsable,
    Expired,
    TooFarAhead,
}

/// CloudStack's v3 checks: when `signatureVersion` (any case) is `3`,
/// `expires` must be present, parse, and not be in the past; with
/// `max_ahead_ms` (enforce.post.requests.and.timestamps: 15 min) it must also
/// not be further ahead than that. Requests without v3 pass.
pub fn check_expiry(params: &[(String, String)], now_ms: i64, max_ahead_ms: Option<i64>) -> Result<(), ExpiryError> {
    let find = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if find("signatureVersion") != Some("3") {
        return Ok(());
    }
    let expires = find("expires").ok_or(ExpiryError::Missing)?;
    let at = parse_expires(expires).ok_or(ExpiryError::Unparsable)?;
    if at < now_ms {
        return Err(ExpiryError::Expired);
    }
    if max_ahead_ms.is_some_and(|max| at - now_ms > max) {
        return Err(ExpiryError::TooFarAhead);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "miVr6X7u6bN_sdahOBpjNejPgEsT35eXq-jB8CG20YI3yaxXcgpyuaIRmFI_EJTVwZ0nUkkJbPmY3y2bciKwFQ";
    const SECRET: &str = "Lxx1DM40AjcXU_OtJcE9p1KQXkO9RrWsGc-Ef94eT6zkjkGCGrdIFINU5rk2ycW7WrqsOSPbUqvPCIVhCMkpgA";

    fn ps(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn example_a() {
        let p = ps(&[("command", "listUsers"), ("response", "json"), ("apiKey", KEY)]);
        assert_eq!(
            canonical(&p, Variant::JAVA),
            format!("apikey={}&command=listusers&response=json", KEY.to_lowercase())
        );
        assert_eq!(sign(&p, SECRET), "8kfcbs1LZx5jzN88LNYeKJ4FIdE=");
        assert!(verify(&p, SECRET, "8kfcbs1LZx5jzN88LNYeKJ4FIdE="));
        // The signature parameter itself (any case) is never signed.
        let mut with_sig = p.clone();
        with_sig.push(("Signature".into(), "8kfcbs1LZx5jzN88LNYeKJ4FIdE=".into()));
        assert!(verify(&with_sig, SECRET, "8kfcbs1LZx5jzN88LNYeKJ4FIdE="));
        assert!(!verify(&p, SECRET, "8kfcbs1LZx5jzN88LNYeKJ4FIdF="));
        assert!(!verify(&p, "wrong", "8kfcbs1LZx5jzN88LNYeKJ4FIdE="));
        assert!(!verify(&p, SECRET, "not base64!"));
        assert!(!verify(&p, SECRET, ""));
    }

    #[test]
    fn example_b() {
        let zone = "1128bd56-b4d9-4ac6-a7b9-c715b187ce11";
        let so = "e7f8cb1b-1b3b-4a8b-9f6e-8e0f2f0f3f3f";
        let tmpl = "f6b5d3e0-0a8c-4bd8-b9c4-0b7d6a9e1c2d";
        let p = ps(&[
            ("command", "deployVirtualMachine"),
            ("response", "json"),
            ("apiKey", KEY),
            ("zoneid", zone),
            ("serviceofferingid", so),
            ("templateid", tmpl),
            ("displayname", "web 01 (test)*"),
            ("signatureVersion", "3"),
            ("expires", "2030-01-01T00:00:00+0000"),
        ]);
        assert_eq!(
            canonical(&p, Variant::JAVA),
            format!(
                "apikey={}&command=deployvirtualmachine&displayname=web%2001%20%28test%29*&expires=2030-01-01t00%3a00%3a00%2b0000&response=json&serviceofferingid={so}&signatureversion=3&templateid={tmpl}&zoneid={zone}",
                KEY.to_lowercase()
            )
        );
        assert_eq!(sign(&p, SECRET), "L7O133Jv1FNktMtdODtQG734OFE=");
        assert!(verify(&p, SECRET, "L7O133Jv1FNktMtdODtQG734OFE="));
        // Padding is optional and surrounding whitespace ignored.
        assert!(verify(&p, SECRET, " L7O133Jv1FNktMtdODtQG734OFE"));
    }

    #[test]
    fn tilde_divergence_cs() {
        let p = ps(&[("command", "listVirtualMachines"), ("apiKey", KEY), ("keyword", "a~b")]);
        assert_eq!(sign(&p, SECRET), "t6/IrHjCi5k4H+2wzIQBC2PC/v4=");
        assert!(verify(&p, SECRET, "t6/IrHjCi5k4H+2wzIQBC2PC/v4="));
        // `+` arriving as a space (client did not percent-encode it).
        assert!(verify(&p, SECRET, "t6/IrHjCi5k4H 2wzIQBC2PC/v4="));
        assert!(verify(&p, SECRET, "EREAY7KIrpwU8wt/QgWs4RAGRbc="));
        assert!(canonical(&p, Variant::CS).contains("keyword=a~b"));
    }

    #[test]
    fn bracket_divergence_libcloud() {
        let p = ps(&[
            ("command", "deployVirtualMachine"),
            ("apiKey", KEY),
            ("details[0].cpuNumber", "2"),
            ("name", "a[1]"),
        ]);
        assert_eq!(sign(&p, SECRET), "QeMmhXScbHbaOdPiwR9wY8kfLVI=");
        assert!(verify(&p, SECRET, "QeMmhXScbHbaOdPiwR9wY8kfLVI="));
        assert!(verify(&p, SECRET, "o7zaisgahM05C3SQwkkH5HfFz8M="));
        assert!(canonical(&p, Variant::LIBCLOUD).contains("name=a[1]"));
    }

    #[test]
    fn sort_orders() {
        // Raw order puts uppercase first; lowercased order interleaves.
        let p = ps(&[("b", "1"), ("Z", "2"), ("a", "3")]);
        assert_eq!(canonical(&p, Variant::JAVA), "z=2&a=3&b=1");
        assert_eq!(canonical(&p, Variant::MARVIN), "a=3&b=1&z=2");
        let sig = STANDARD.encode(mac(SECRET, "a=3&b=1&z=2").finalize().into_bytes());
        assert!(verify(&p, SECRET, &sig));
        // UTF-16 order: U+FF5E (BMP, high) sorts after U+1F600 (surrogates D83D..).
        let p = ps(&[("\u{ff5e}", "x"), ("\u{1f600}", "y")]);
        assert!(canonical(&p, Variant::JAVA).starts_with('\u{1f600}'));
    }

    #[test]
    fn java_url_encoding() {
        let p = ps(&[("v", "a b+c/d=e&f:g,h~i[j]k*l.m-n_oé")]);
        assert_eq!(
            canonical(&p, Variant::JAVA),
            "v=a%20b%2bc%2fd%3de%26f%3ag%2ch%7ei%5bj%5dk*l.m-n_o%c3%a9"
        );
        assert_eq!(
            canonical(&p, Variant::LIBCLOUD),
            "v=a%20b%2bc%2fd%3de%26f%3ag%2ch~i[j]k*l.m-n_o%c3%a9"
        );
    }

    #[test]
    fn variants_are_distinct() {
        let mut all = Variant::ALL.to_vec();
        assert_eq!(all[0], Variant::JAVA);
        all.sort_by_key(|v| (v.sort_lowercase, v.keep_tilde, v.keep_brackets));
        all.dedup();
        assert_eq!(all.len(), 8);
        for v in [
            Variant::CS,
            Variant::LIBCLOUD,
            Variant::MARVIN,
            Variant::CLOUDMONKEY_PY2,
        ] {
            assert!(Variant::ALL.contains(&v));
        }
    }

    #[test]
    fn expires_formats() {
        let t = 1_893_456_000_000; // 2030-01-01T00:00:00Z
        for s in [
            "2030-01-01T00:00:00+0000",
            "2030-01-01T00:00:00+00:00",
            "2030-01-01T00:00:00Z",
            "2030-01-01t00:00:00z",
            "2030-01-01T00:00:00.000Z",
            "2030-01-01T00:00:00.000000+0000",
            "2030-01-01T00:00:00.000000000+00:00",
            "2030-01-01T01:00:00+0100",
            "2029-12-31T19:00:00-05:00",
            "2029-12-31T19:00:00-05",
            "2030-01-01T00:00Z",
            " 2030-01-01T00:00:00+0000 ",
        ] {
            assert_eq!(parse_expires(s), Some(t), "{s}");
        }
        assert_eq!(parse_expires("2030-01-01T00:00:00.5Z"), Some(t + 500));
        assert_eq!(parse_expires("2030-01-01T00:00:00.123456Z"), Some(t + 123));
        assert_eq!(parse_expires("2030-01-01T00:00:00.999999+0000"), Some(t + 999));
        for bad in [
            "",
            "2030-01-01",
            "2030-01-01T00:00:00",
            "2030-01-01 00:00:00Z",
            "2030-13-01T00:00:00Z",
            "2030-02-30T00:00:00Z",
            "2030-01-01T24:00:00Z",
            "2030-01-01T00:00:00+000",
            "2030-01-01T00:00:00+1900",
            "2030-01-01T00:00:00.Z",
            "2030-01-01T00:00:00.1234567890Z",
            "2030-01-01T00:00:00Zjunk",
            "20300-01-01T00:00:00Z",
            "2030-1-01T00:00:00Z",
            "２030-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_expires(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn expiry_rules() {
        let t = 1_893_456_000_000;
        let v3 = |exp: Option<&str>| {
            let mut p = ps(&[("command", "listZones"), ("signatureversion", "3")]);
            if let Some(e) = exp {
                p.push(("Expires".into(), e.into()));
            }
            p
        };
        assert_eq!(check_expiry(&ps(&[("command", "listZones")]), t, None), Ok(()));
        assert_eq!(check_expiry(&v3(None), t, None), Err(ExpiryError::Missing));
        assert_eq!(check_expiry(&v3(Some("soon")), t, None), Err(ExpiryError::Unparsable));
        assert_eq!(check_expiry(&v3(Some("2030-01-01T00:00:00Z")), t, None), Ok(()));
        assert_eq!(
            check_expiry(&v3(Some("2030-01-01T00:00:00Z")), t + 1, None),
            Err(ExpiryError::Expired)
        );
        let fifteen = 15 * 60 * 1000;
        assert_eq!(
            check_expiry(&v3(Some("2030-01-01T00:15:00Z")), t, Some(fifteen)),
            Ok(())
        );
        assert_eq!(
            check_expiry(&v3(Some("2030-01-01T00:15:01Z")), t, Some(fifteen)),
            Err(ExpiryError::TooFarAhead)
        );
    }
}

//! `Epoch`: the wall-clock time the controller reads at simulated time 0,
//! written as RFC 3339 in UTC (`"2026-01-01T00:00:00Z"`, a fraction of a
//! second allowed down to milliseconds).

use super::model::Epoch;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use std::borrow::Cow;
use std::fmt;

/// The regular expression an epoch string matches (used by the JSON schema).
pub const EPOCH_PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,3})?(Z|\+00:00)$";

const EXPECTED: &str = "expected a UTC time like \"2026-01-01T00:00:00Z\"";

impl Epoch {
    /// [`stratus_core::units::SIM_EPOCH_MS`]: 2023-11-14T22:13:20Z.
    pub const DEFAULT: Epoch = Epoch {
        ms: stratus_core::units::SIM_EPOCH_MS,
    };

    pub fn parse(text: &str) -> Result<Epoch, String> {
        let t = text.trim();
        let bad = |why: &str| format!("invalid epoch '{t}': {why}; {EXPECTED}");
        let body = t
            .strip_suffix('Z')
            .or_else(|| t.strip_suffix("+00:00"))
            .ok_or_else(|| bad("the time must be UTC (end with Z)"))?;
        let (date, time) = body
            .split_once('T')
            .ok_or_else(|| bad("no 'T' between date and time"))?;
        let num = |s: &str, len: usize| -> Result<u64, String> {
            if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("malformed date or time"));
            }
            s.parse().map_err(|_| bad("malformed date or time"))
        };
        let d: Vec<&str> = date.split('-').collect();
        let [y, mo, da] = d[..] else {
            return Err(bad("the date is not YYYY-MM-DD"));
        };
        let (y, mo, da) = (num(y, 4)?, num(mo, 2)?, num(da, 2)?);
        let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
        let tm: Vec<&str> = hms.split(':').collect();
        let [h, mi, s] = tm[..] else {
            return Err(bad("the time is not HH:MM:SS"));
        };
        let (h, mi, s) = (num(h, 2)?, num(mi, 2)?, num(s, 2)?);
        if frac.len() > 3 || (time.contains('.') && frac.is_empty()) {
            return Err(bad("at most 3 decimals (milliseconds)"));
        }
        let millis = if frac.is_empty() {
            0
        } else {
            num(frac, frac.len())? * 10u64.pow(3 - frac.len() as u32)
        };
        if y < 1970 {
            return Err(bad("before 1970"));
        }
        if !(1..=12).contains(&mo) || da < 1 || da > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
            return Err(bad("no such date or time"));
        }
        let days = days_from_civil(y, mo, da);
        Ok(Epoch {
            ms: ((days * 24 + h) * 60 + mi) * 60_000 + s * 1000 + millis,
        })
    }

    pub const fn as_ms(self) -> u64 {
        self.ms
    }
}

fn is_leap(y: u64) -> bool {
    y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400))
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm, years ≥ 1970).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01.
fn civil_from_days(z: u64) -> (u64, u64, u64) {
    let z = z + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// RFC 3339 UTC; milliseconds only when there are some. Parses back.
impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, rest) = (self.ms / 86_400_000, self.ms % 86_400_000);
        let (y, m, d) = civil_from_days(days);
        let (h, mi, s, ms) = (rest / 3_600_000, rest / 60_000 % 60, rest / 1000 % 60, rest % 1000);
        write!(f, "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}")?;
        if ms > 0 {
            write!(f, ".{ms:03}")?;
        }
        f.write_str("Z")
    }
}

impl Default for Epoch {
    fn default() -> Self {
        Epoch::DEFAULT
    }
}

impl TryFrom<String> for Epoch {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Epoch::parse(&s)
    }
}

impl From<Epoch> for String {
    fn from(e: Epoch) -> String {
        e.to_string()
    }
}

impl JsonSchema for Epoch {
    fn schema_name() -> Cow<'static, str> {
        "Epoch".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": EPOCH_PATTERN,
            "description": "Wall-clock time at simulated time 0, RFC 3339 in UTC, e.g. \"2026-01-01T00:00:00Z\".",
            "examples": ["2023-11-14T22:13:20Z", "2026-01-01T00:00:00Z"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> u64 {
        Epoch::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).ms
    }

    #[test]
    fn parses_utc_times() {
        assert_eq!(ms("1970-01-01T00:00:00Z"), 0);
        assert_eq!(ms("2023-11-14T22:13:20Z"), stratus_core::units::SIM_EPOCH_MS);
        assert_eq!(ms("2026-01-01T00:00:00Z"), 1_767_225_600_000);
        assert_eq!(ms("2024-02-29T12:00:00.5Z"), 1_709_208_000_500);
        assert_eq!(ms("2000-03-01T00:00:00+00:00"), 951_868_800_000);
    }

    #[test]
    fn refuses_bad_text_with_a_reason() {
        for (text, reason) in [
            ("2026-01-01T00:00:00", "must be UTC"),
            ("2026-01-01T00:00:00+01:00", "must be UTC"),
            ("2026-01-01 00:00:00Z", "no 'T'"),
            ("2026-1-01T00:00:00Z", "malformed"),
            ("2023-02-29T00:00:00Z", "no such date"),
            ("2026-01-01T24:00:00Z", "no such date"),
            ("1969-12-31T23:59:59Z", "before 1970"),
            ("2026-01-01T00:00:00.1234Z", "at most 3 decimals"),
            ("2026-01-01T00:00:00.Z", "at most 3 decimals"),
        ] {
            let e = Epoch::parse(text).unwrap_err();
            assert!(e.contains(reason), "{text:?}: {e}");
        }
    }

    #[test]
    fn display_round_trips() {
        for ms in [
            0,
            1,
            999,
            951_868_800_000,
            1_709_208_000_500,
            1_767_225_599_999,
            4_102_444_800_000,
        ] {
            let e = Epoch { ms };
            assert_eq!(Epoch::parse(&e.to_string()).unwrap(), e, "{e}");
        }
        assert_eq!(Epoch::DEFAULT.to_string(), "2023-11-14T22:13:20Z");
    }
}

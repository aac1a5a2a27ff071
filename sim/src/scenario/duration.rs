//! `Duration` as text. Whole numbers go through `humantime` (compound
//! durations like "1h30m" or "1h 30m", units ms, s, m/min, h, d, w, ...);
//! a single decimal term ("1.5h", "0.25s") is parsed here, since humantime
//! has no decimals. Always a whole number of milliseconds.

use super::model::Duration;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// The regular expression a duration string matches (used by the JSON schema).
pub const DURATION_PATTERN: &str = r"^\s*([0-9]+(\.[0-9]+)?\s*[a-zA-Zµ]+\s*)+$";

/// Units with their length in milliseconds, largest first (used by `Display`).
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

const EXPECTED: &str = "expected numbers with units (ms, s, m, h, d, ...), like \"90s\", \"1h30m\" or \"1.5h\"";

impl Duration {
    pub const ZERO: Duration = Duration { ms: 0 };

    pub const fn from_ms(ms: u64) -> Duration {
        Duration { ms }
    }

    pub const fn from_secs(secs: u64) -> Duration {
        Duration { ms: secs * 1_000 }
    }

    pub const fn as_ms(self) -> u64 {
        self.ms
    }

    pub fn as_secs_f64(self) -> f64 {
        self.ms as f64 / 1_000.0
    }

    pub const fn is_zero(self) -> bool {
        self.ms == 0
    }

    /// Parses a duration; the error says what is wrong with `text`.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err(format!("empty duration; {EXPECTED}"));
        }
        if t.starts_with('-') {
            return Err(format!("invalid duration '{t}': durations cannot be negative"));
        }
        if t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("invalid duration '{t}': no unit; {EXPECTED}"));
        }
        if !t.contains('.') {
            let d = humantime::parse_duration(t).map_err(|e| format!("invalid duration '{t}': {e}; {EXPECTED}"))?;
            let ms = u64::try_from(d.as_millis()).map_err(|_| format!("invalid duration '{t}': too long"))?;
            if d.subsec_nanos() % 1_000_000 != 0 {
                return Err(format!("invalid duration '{t}': not a whole number of milliseconds"));
            }
            return Ok(Duration { ms });
        }
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        if number.is_empty() {
            return Err(format!("invalid duration '{t}': no number; {EXPECTED}"));
        }
        if unit.is_empty() {
            return Err(format!("invalid duration '{t}': no unit; {EXPECTED}"));
        }
        if unit.starts_with(char::is_whitespace) {
            return Err(format!(
                "invalid duration '{t}': no space is allowed between the number and the unit"
            ));
        }
        let Some(&(_, unit_ms)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(format!(
                "invalid duration '{t}': unknown unit '{unit}'; expected one of ms, s, m, h, d"
            ));
        };
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        let malformed = || format!("invalid duration '{t}': malformed number '{number}'; {EXPECTED}");
        if int.is_empty() || (number.contains('.') && frac.is_empty()) || frac.contains('.') {
            return Err(malformed());
        }
        if frac.len() > 9 {
            return Err(format!("invalid duration '{t}': at most 9 decimals"));
        }
        let too_long = || format!("invalid duration '{t}': too long");
        let scale = 10u128.pow(frac.len() as u32);
        let digits: u128 = format!("{int}{frac}").parse().map_err(|_| too_long())?;
        let scaled = digits.checked_mul(u128::from(unit_ms)).ok_or_else(too_long)?;
        if scaled % scale != 0 {
            return Err(format!("invalid duration '{t}': not a whole number of milliseconds"));
        }
        let ms = u64::try_from(scaled / scale).map_err(|_| too_long())?;
        Ok(Duration { ms })
    }
}

impl FromStr for Duration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Duration::parse(s)
    }
}

impl TryFrom<String> for Duration {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Duration::parse(&s)
    }
}

impl TryFrom<&str> for Duration {
    type Error = String;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Duration::parse(s)
    }
}

impl From<Duration> for String {
    fn from(d: Duration) -> String {
        d.to_string()
    }
}

/// The largest unit that divides the value exactly: 90 000 ms is "90s",
/// 5 400 000 ms is "90m", 0 is "0s". Parsing the output gives the value back.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ms == 0 {
            return f.write_str("0s");
        }
        let (unit, len) = UNITS
            .iter()
            .find(|(_, len)| self.ms.is_multiple_of(*len))
            .copied()
            .unwrap_or(("ms", 1));
        write!(f, "{}{unit}", self.ms / len)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "Simulated time: numbers with units (ms, s, m, h, d, ...), compound allowed (\"1h30m\"), a single term may have decimals (\"1.5h\").",
            "examples": ["500ms", "90s", "15m", "1h30m", "1.5h", "1d"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> u64 {
        Duration::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).ms
    }

    #[test]
    fn parses_every_unit_and_decimals() {
        assert_eq!(ms("250ms"), 250);
        assert_eq!(ms("90s"), 90_000);
        assert_eq!(ms("15m"), 900_000);
        assert_eq!(ms("2h"), 7_200_000);
        assert_eq!(ms("1d"), 86_400_000);
        assert_eq!(ms("1.5h"), 5_400_000);
        assert_eq!(ms("0.25s"), 250);
        assert_eq!(ms("0s"), 0);
        assert_eq!(ms(" 3m "), 180_000);
    }

    #[test]
    fn parses_compound_durations() {
        assert_eq!(ms("1h30m"), 5_400_000);
        assert_eq!(ms("1h 30m"), 5_400_000);
        assert_eq!(ms("2m30s"), 150_000);
        assert_eq!(ms("1d12h"), 129_600_000);
        assert_eq!(ms("5min"), 300_000);
    }

    #[test]
    fn refuses_bad_text_with_a_reason() {
        for (text, reason) in [
            ("", "empty duration"),
            ("-5m", "cannot be negative"),
            ("5", "no unit"),
            ("h", "expected number"),
            ("5x", "unknown time unit"),
            ("5 xs", "unknown time unit"),
            ("1.5h30m", "unknown unit"),
            ("1.h", "malformed number"),
            (".5h", "malformed number"),
            ("1.2.3s", "malformed number"),
            ("0.5ms", "whole number of milliseconds"),
            ("99999999999999999999d", "too large"),
        ] {
            let e = Duration::parse(text).unwrap_err();
            assert!(e.contains(reason), "{text:?}: {e}");
        }
    }

    #[test]
    fn display_round_trips() {
        for ms in [0, 1, 999, 1_000, 90_000, 5_400_000, 86_400_000, 129_600_000, 1_500] {
            let d = Duration { ms };
            assert_eq!(Duration::parse(&d.to_string()).unwrap(), d, "{d}");
        }
        assert_eq!(Duration { ms: 5_400_000 }.to_string(), "90m");
        assert_eq!(Duration { ms: 1_500 }.to_string(), "1500ms");
        assert_eq!(String::from(Duration { ms: 86_400_000 }), "1d");
    }
}

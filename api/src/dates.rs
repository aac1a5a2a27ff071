//! CloudStack's date format for responses: `yyyy-MM-dd'T'HH:mm:ssZ` in UTC,
//! e.g. `2024-05-01T12:34:56+0000`.

use time::OffsetDateTime;

/// Formats epoch milliseconds (sub-second part dropped, as CloudStack's
/// format has no fraction). Instants past year 9999 saturate to its last
/// second: the four-digit year is what clients parse.
pub fn cs_date(epoch_ms: u64) -> String {
    const MAX_SECS: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let secs = i64::try_from(epoch_ms / 1000).unwrap_or(MAX_SECS).min(MAX_SECS);
    let t = OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+0000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        assert_eq!(cs_date(0), "1970-01-01T00:00:00+0000");
        assert_eq!(cs_date(1_714_566_896_789), "2024-05-01T12:34:56+0000");
        assert_eq!(cs_date(951_782_400_000), "2000-02-29T00:00:00+0000");
        assert_eq!(cs_date(1_893_456_000_000), "2030-01-01T00:00:00+0000");
        assert_eq!(cs_date(u64::MAX), "9999-12-31T23:59:59+0000");
    }
}

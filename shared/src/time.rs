//! Timestamps: RFC 3339 text to Unix seconds and back, and calendar dates, all in UTC (jiff's
//! calendar, so there is one in the project).

use jiff::Timestamp;
use jiff::tz::Offset;

/// Parses an RFC 3339 timestamp (`2026-11-25T13:19:29Z`, fractions and offsets allowed) into
/// Unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    s.parse::<Timestamp>().ok().map(Timestamp::as_second)
}

/// Formats Unix seconds as RFC 3339 UTC.
pub fn format_time(t: i64) -> String {
    timestamp(t).to_string()
}

/// The UTC calendar date (year, month, day) of Unix seconds `t`.
pub fn utc_date(t: i64) -> (i32, u8, u8) {
    let date = Offset::UTC.to_datetime(timestamp(t)).date();
    (
        i32::from(date.year()),
        u8::try_from(date.month()).unwrap_or(1),
        u8::try_from(date.day()).unwrap_or(1),
    )
}

/// Unix seconds as a timestamp, clamped to jiff's range (years -9999 to 9999).
fn timestamp(t: i64) -> Timestamp {
    Timestamp::from_second(t).unwrap_or(if t < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_time("2026-11-25T13:19:29Z")
                .map(format_time)
                .as_deref(),
            Some("2026-11-25T13:19:29Z")
        );
        assert_eq!(
            parse_time("2026-11-25T14:19:29.123+01:00"),
            parse_time("2026-11-25T13:19:29Z")
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn utc_dates_round_trip() {
        for days in [-1000, 0, 11_017, 20_000, 50_000, 800_000] {
            let t = days * 86_400;
            let (y, m, d) = utc_date(t);
            assert_eq!(
                parse_time(&format!("{y:04}-{m:02}-{d:02}T00:00:00Z")),
                Some(t)
            );
        }
        assert_eq!(utc_date(11_017 * 86_400), (2000, 3, 1));
    }
}

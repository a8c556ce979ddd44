//! Time as the store and the API see it: Unix milliseconds inside, RFC 3339 UTC outside.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since the Unix epoch. Stored as a plain BIGINT so that every dialect agrees.
pub type Millis = i64;

pub fn now_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

pub fn duration_ms(d: Duration) -> Millis {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// RFC 3339 UTC, to the millisecond with trailing zeros dropped, e.g. `2026-11-22T06:10:00.12Z`.
pub fn rfc3339(ms: Millis) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// An instant typed by a person: RFC 3339 (`2026-12-06T04:30:00Z`), or the form of an HTML
/// `datetime-local` input (`2026-12-06T04:30`, with optional seconds), read as UTC. `None` for
/// anything else: the caller says which field was wrong.
pub fn parse_instant(text: &str) -> Option<Millis> {
    let text = text.trim();
    let parsed = OffsetDateTime::parse(text, &Rfc3339).ok().or_else(|| {
        let with_seconds = if text.len() == 16 { format!("{text}:00Z") } else { format!("{text}Z") };
        OffsetDateTime::parse(&with_seconds, &Rfc3339).ok()
    })?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_500), "1970-01-01T00:00:01.5Z");
    }

    #[test]
    fn parses_typed_instants_as_utc() {
        assert_eq!(parse_instant("1970-01-01T00:01"), Some(60_000));
        assert_eq!(parse_instant("1970-01-01T00:01:02"), Some(62_000));
        assert_eq!(parse_instant("1970-01-01T00:00:01.5Z"), Some(1_500));
        assert_eq!(parse_instant("1970-01-01T01:00:00+01:00"), Some(0));
        for bad in ["", "yesterday", "1970-01-01", "1970-13-01T00:00", "1970-01-01T00:00Z'; --"] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }
}

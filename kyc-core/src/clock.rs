//! Time as the platform stores and prints it: unix milliseconds in storage,
//! RFC 3339 with millisecond precision and a `Z` on the wire.

use time::OffsetDateTime;
use time::format_description::well_known::{Iso8601, Rfc3339};

/// A point in time in unix milliseconds (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub i64);

impl Millis {
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    pub fn from_datetime(at: OffsetDateTime) -> Self {
        let nanos = at.unix_timestamp_nanos();
        Self((nanos / 1_000_000) as i64)
    }

    pub fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// The instant as a UTC date-time (the epoch for one out of range).
    pub fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// `2024-06-20T07:33:00.000Z`
    pub fn to_rfc3339(self) -> String {
        let at = self.to_datetime();
        let ms = self.0.rem_euclid(1000);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second(),
            ms
        )
    }
}

impl serde::Serialize for Millis {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> serde::Deserialize<'de> for Millis {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_datetime(&text).map_err(serde::de::Error::custom)
    }
}

/// Parses an ISO 8601 date-time that carries its UTC offset, such as
/// `2024-06-20T07:33:00.000Z` or `2024-06-20T09:33:00+02:00`.
pub fn parse_datetime(text: &str) -> Result<Millis, String> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(text, &Iso8601::DEFAULT));
    match parsed {
        Ok(at) => Ok(Millis::from_datetime(at)),
        Err(_) => Err(format!(
            "{text:?} is not an ISO 8601 date-time with a UTC offset, e.g. \"2024-06-20T07:33:00.000Z\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339_with_millis() {
        let at = parse_datetime("2024-06-20T07:33:00.123Z").unwrap();
        assert_eq!(at.to_rfc3339(), "2024-06-20T07:33:00.123Z");
        let offset = parse_datetime("2024-06-20T09:33:00.123+02:00").unwrap();
        assert_eq!(offset, at);
    }

    #[test]
    fn refuses_dates_without_offset_or_garbage() {
        assert!(parse_datetime("2024-06-20T07:33:00").is_err());
        assert!(parse_datetime("2024-13-20T07:33:00Z").is_err());
        assert!(parse_datetime("yesterday").is_err());
    }
}

/// The server's clock: real time plus an offset that tests move forward to
/// see links and sessions expire without waiting. Clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> Millis {
        let offset = self.offset_ms.load(std::sync::atomic::Ordering::Relaxed);
        Millis(Millis::now().0 + offset)
    }

    /// Moves this clock (and its clones) `secs` seconds ahead.
    pub fn advance(&self, secs: i64) {
        self.offset_ms
            .fetch_add(secs * 1000, std::sync::atomic::Ordering::Relaxed);
    }
}

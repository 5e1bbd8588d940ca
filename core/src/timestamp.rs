//! ISO 8601 timestamps in the exact shape every client library parses: `…T…​.ffffff+00:00`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

/// A UTC instant with microsecond precision, serialized with an explicit `+00:00` offset
/// (twilight rejects the `Z` form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From Unix milliseconds.
    pub const fn from_unix_ms(ms: i64) -> Self {
        Self(ms * 1000)
    }

    /// From Unix microseconds.
    pub const fn from_unix_micros(us: i64) -> Self {
        Self(us)
    }

    /// Now.
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        Self((now.unix_timestamp_nanos() / 1000) as i64)
    }

    /// Unix milliseconds.
    pub const fn unix_ms(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Unix microseconds.
    pub const fn unix_micros(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+00:00",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.microsecond()
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let dt = OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            .map_err(serde::de::Error::custom)?;
        Ok(Self((dt.unix_timestamp_nanos() / 1000) as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_offset_and_micros() {
        let t = Timestamp::from_unix_micros(1_499_793_627_299_000);
        assert_eq!(t.to_string(), "2017-07-11T17:20:27.299000+00:00");
        let back: Timestamp = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }
}

//! Wall-clock timestamps in the stored format: seconds and nanoseconds since
//! the Unix epoch (`required`, `optional`), or whole milliseconds (`millis`). Stored times are wall-clock (`SystemTime`) because
//! `Instant`s mean nothing after a restart; the broker converts with
//! [`crate::convert`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Seconds and nanoseconds since the epoch. Times before the epoch (a clock
/// set to 1969) are stored as the epoch: nothing Roost stores is that old.
fn split(t: SystemTime) -> (u64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

fn join(secs: u64, nanos: u32) -> Option<SystemTime> {
    if nanos >= 1_000_000_000 {
        return None;
    }
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// `SystemTime` as `(u64 seconds, u32 nanoseconds)`.
pub(crate) mod required {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        split(*t).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let (secs, nanos) = <(u64, u32)>::deserialize(d)?;
        join(secs, nanos).ok_or_else(|| serde::de::Error::custom("timestamp out of range"))
    }
}

/// `Option<SystemTime>` as `Option<(u64, u32)>`.
pub(crate) mod optional {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        t.map(split).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        match <Option<(u64, u32)>>::deserialize(d)? {
            None => Ok(None),
            Some((secs, nanos)) => join(secs, nanos)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom("timestamp out of range")),
        }
    }
}

/// Whole milliseconds since the epoch: what `time` is stored as in
/// [`millis`] (sub-millisecond parts are dropped).
pub(crate) fn to_millis(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `t` with the sub-millisecond part dropped, as [`millis`] stores it.
pub(crate) fn whole_millis(t: SystemTime) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(to_millis(t)))
        .unwrap_or(t)
}

/// `SystemTime` as `u64` milliseconds since the epoch: a store time, where
/// a millisecond is precision enough and a varint of ~6 bytes is cheaper
/// than seconds plus nanoseconds.
pub(crate) mod millis {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        to_millis(*t).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let ms = u64::deserialize(d)?;
        UNIX_EPOCH
            .checked_add(Duration::from_millis(ms))
            .ok_or_else(|| serde::de::Error::custom("timestamp out of range"))
    }
}

//! Key layout on Redis (format version 1), following cluster-redis.md: every
//! key of one client shares the hash tag `{c:<client id>}`, so one client's
//! keys live in one slot of a Redis Cluster.
//!
//! ```text
//!  <p>{meta}:format        STRING  format version ("2")
//!  <p>{meta}:lease         STRING  token of the broker using the prefix (expires)
//!  <p>{c:<id>}:s           HASH    rec  -> SessionRecord, will -> WillRecord
//!  <p>{c:<id>}:subs        HASH    filter -> SubscriptionRecord
//!  <p>{c:<id>}:q           HASH    seq (decimal) -> QueuedMessage
//!  <p>{c:<id>}:inf         HASH    seq (decimal) -> InflightRecord
//!  <p>{c:<id>}:in          HASH    packet id (decimal) -> PUBREC reason code (1 byte)
//!  <p>{c:<id>}:own         HASH    cluster mode: who owns the client id (roost-cluster)
//!  <p>{ret:<b>}            HASH    topic -> StoredMessage; b = CRC-32(topic) mod 4096
//!  <p>{dly}                HASH    id (decimal) -> DelayedRecord
//! ```
//!
//! Values are the same postcard records as on disk.

use crate::error::StoreError;

/// Retained messages are spread over this many hashes (compact listpack
/// encoding per hash, spread over slots in a cluster).
pub(crate) const RETAINED_BUCKETS: u32 = 4096;

/// Session hash field holding the [`crate::SessionRecord`].
pub(crate) const FIELD_RECORD: &str = "rec";
/// Session hash field holding the [`crate::WillRecord`].
pub(crate) const FIELD_WILL: &str = "will";

/// The per-client key kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientKey {
    Session,
    Subs,
    Queue,
    Inflight,
    Inbound,
}

impl ClientKey {
    pub(crate) const ALL: [ClientKey; 5] = [
        ClientKey::Session,
        ClientKey::Subs,
        ClientKey::Queue,
        ClientKey::Inflight,
        ClientKey::Inbound,
    ];

    const fn suffix(self) -> &'static str {
        match self {
            ClientKey::Session => "s",
            ClientKey::Subs => "subs",
            ClientKey::Queue => "q",
            ClientKey::Inflight => "inf",
            ClientKey::Inbound => "in",
        }
    }

    fn from_suffix(s: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.suffix().as_bytes() == s)
    }
}

/// Builds keys under one prefix.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// A prefix may not contain braces: they would change the hash tags.
    pub(crate) fn new(prefix: &str) -> Result<Self, StoreError> {
        if prefix.contains(['{', '}']) {
            return Err(StoreError::Invalid(format!(
                "redis key prefix {prefix:?} contains a brace"
            )));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    pub(crate) fn format(&self) -> String {
        format!("{}{{meta}}:format", self.prefix)
    }

    /// The one-broker-per-prefix lease (`lease.rs`).
    pub(crate) fn lease(&self) -> String {
        format!("{}{{meta}}:lease", self.prefix)
    }

    pub(crate) fn client(&self, client_id: &str, kind: ClientKey) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + client_id.len() + 10);
        k.extend_from_slice(self.prefix.as_bytes());
        k.extend_from_slice(b"{c:");
        k.extend_from_slice(client_id.as_bytes());
        k.extend_from_slice(b"}:");
        k.extend_from_slice(kind.suffix().as_bytes());
        k
    }

    /// The cluster's owner record of a client id (`roost-cluster` writes
    /// it): `node`, `token`, `state`, `from` (docs/cluster.md).
    pub(crate) fn owner(&self, client_id: &str) -> Vec<u8> {
        let mut k = self.client(client_id, ClientKey::Session);
        k.truncate(k.len() - 1);
        k.extend_from_slice(b"own");
        k
    }

    pub(crate) fn retained(&self, topic: &str) -> String {
        let bucket = crc32(topic.as_bytes()) % RETAINED_BUCKETS;
        format!("{}{{ret:{bucket}}}", self.prefix)
    }

    pub(crate) fn delayed(&self) -> String {
        format!("{}{{dly}}", self.prefix)
    }

    /// SCAN pattern of every client key.
    pub(crate) fn client_pattern(&self) -> String {
        format!("{}{{c:*", glob_escape(&self.prefix))
    }

    /// SCAN pattern of every retained bucket.
    pub(crate) fn retained_pattern(&self) -> String {
        format!("{}{{ret:*}}", glob_escape(&self.prefix))
    }

    /// SCAN pattern of everything under the prefix.
    pub(crate) fn all_pattern(&self) -> String {
        format!("{}*", glob_escape(&self.prefix))
    }

    /// Splits a client key into (client id, kind). Parses from both ends, so
    /// a client id may itself contain `}:`.
    pub(crate) fn parse_client<'k>(&self, key: &'k [u8]) -> Option<(&'k [u8], ClientKey)> {
        let rest = key
            .strip_prefix(self.prefix.as_bytes())?
            .strip_prefix(b"{c:")?;
        let cut = rest.windows(2).rposition(|w| w == b"}:")?;
        let (id, suffix) = rest.split_at(cut);
        Some((id, ClientKey::from_suffix(&suffix[2..])?))
    }
}

/// Escapes glob metacharacters for SCAN MATCH.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// CRC-32 (ISO-HDLC, the zlib one), bitwise: part of the key layout, so
/// fixed here rather than taken from a crate that might change.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn client_keys_parse_back_even_with_braces_in_the_id() {
        let keys = Keys::new("mq:").unwrap_or_else(|_| unreachable!());
        for id in ["plain", "we}:ird", "{x}", ""] {
            for kind in ClientKey::ALL {
                let k = keys.client(id, kind);
                assert_eq!(keys.parse_client(&k), Some((id.as_bytes(), kind)), "{id}");
            }
            // Not a row key: loading skips it.
            assert_eq!(keys.parse_client(&keys.owner(id)), None);
        }
    }

    #[test]
    fn a_prefix_with_a_brace_is_refused() {
        assert!(Keys::new("a{b").is_err());
    }
}

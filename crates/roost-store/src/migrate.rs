//! Reading records of older formats, for the in-place migration a store
//! undergoes when this build opens it (disk: `disk/format.rs`; Redis:
//! `redis/mod.rs`). Only records whose encoding changed appear here.
//!
//! Format 1 → 2: [`SessionRecord`] gained `owner`. A format-1 session did
//! not record who created it, so it migrates as [`SessionOwner::Unknown`],
//! which the broker resumes for nobody: the upgrade must not make a session
//! attachable by whichever user connects first with its client id.
//!
//! Format 1 → 2: a retained message became a [`RetainedRecord`] (the message
//! and its store time). Format 1 did not keep the store time; a migrated
//! message counts as stored when the store was migrated, which is when the
//! broker restores it: its `retain_ttl` starts over once, as it did on every
//! restart before format 2.

#![cfg_attr(not(any(feature = "disk", feature = "redis")), allow(dead_code))]

use std::time::SystemTime;

use serde::Deserialize;

use crate::codec::{decode, encode};
use crate::error::StoreError;
use crate::record::{RetainedRecord, SessionOwner, SessionRecord, StoredMessage};

/// [`SessionRecord`] as format 1 encoded it.
#[derive(Deserialize)]
struct SessionRecordV1 {
    expiry_interval: u32,
    #[serde(with = "crate::time::optional")]
    disconnected_at: Option<SystemTime>,
}

/// Re-encodes a format-1 session record as format 2 (owner unknown).
pub(crate) fn session_record_v1_to_v2(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    let old: SessionRecordV1 = decode(bytes, "format 1 session record")?;
    encode(&SessionRecord {
        expiry_interval: old.expiry_interval,
        disconnected_at: old.disconnected_at,
        owner: SessionOwner::Unknown,
    })
}

/// Re-encodes a format-1 retained message (a bare [`StoredMessage`]) as a
/// format-2 [`RetainedRecord`] stored at `stored_at` (the migration).
pub(crate) fn retained_record_v1_to_v2(
    bytes: &[u8],
    stored_at: SystemTime,
) -> Result<Vec<u8>, StoreError> {
    let message: StoredMessage = decode(bytes, "format 1 retained message")?;
    encode(&RetainedRecord { message, stored_at })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The bytes format 1 wrote: the two fields, postcard-encoded.
    fn v1_bytes(expiry: u32, at: Option<SystemTime>) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct V1 {
            expiry_interval: u32,
            #[serde(with = "crate::time::optional")]
            disconnected_at: Option<SystemTime>,
        }
        encode(&V1 {
            expiry_interval: expiry,
            disconnected_at: at,
        })
        .unwrap()
    }

    #[test]
    fn a_format_1_session_record_migrates_with_an_unknown_owner() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let v2 = session_record_v1_to_v2(&v1_bytes(3600, Some(at))).unwrap();
        let record: SessionRecord = decode(&v2, "session").unwrap();
        assert_eq!(
            record,
            SessionRecord {
                expiry_interval: 3600,
                disconnected_at: Some(at),
                owner: SessionOwner::Unknown,
            }
        );
    }

    #[test]
    fn a_format_1_record_does_not_decode_as_format_2() {
        // Why the migration exists: read as format 2, a format-1 record is
        // short by the owner and fails instead of defaulting silently.
        let bytes = v1_bytes(60, None);
        assert!(decode::<SessionRecord>(&bytes, "session").is_err());
    }

    fn retained_message() -> StoredMessage {
        StoredMessage {
            topic: "a/b".into(),
            payload: bytes::Bytes::from_static(b"kept"),
            qos: roost_codec::QoS::AtLeastOnce,
            retain: true,
            properties: crate::record::StoredProperties::default(),
            expires_at: Some(
                SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000),
            ),
            publisher: Some("pub".into()),
        }
    }

    #[test]
    fn a_format_1_retained_message_migrates_stored_at_the_migration() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_765_000_000_123);
        let v1 = encode(&retained_message()).unwrap();
        let v2 = retained_record_v1_to_v2(&v1, at).unwrap();
        let record: RetainedRecord = decode(&v2, "retained").unwrap();
        assert_eq!(
            record,
            RetainedRecord {
                message: retained_message(),
                stored_at: at,
            }
        );
        // Read as format 2 without the migration, it fails rather than
        // decoding with a made-up store time.
        assert!(decode::<RetainedRecord>(&v1, "retained").is_err());
    }

    #[test]
    fn garbage_is_reported_as_corrupt_not_migrated() {
        assert!(matches!(
            session_record_v1_to_v2(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            retained_record_v1_to_v2(&[0xff, 0xff], SystemTime::UNIX_EPOCH),
            Err(StoreError::Corrupt(_))
        ));
    }
}

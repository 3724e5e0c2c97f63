//! Record values as bytes (postcard), with decode failures reported as
//! [`StoreError::Corrupt`] naming what failed to decode.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;

/// Encodes a record.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(|e| StoreError::Invalid(format!("encoding a record: {e}")))
}

/// Encodes a record into a buffer of `capacity` bytes to start with: for
/// messages, a buffer sized from the payload saves the reallocations (and
/// copies) of growing from empty. (Redis; the disk backend encodes into a
/// reused buffer, `disk/batch.rs`.)
#[cfg(feature = "redis")]
pub(crate) fn encode_with_capacity<T: Serialize>(
    value: &T,
    capacity: usize,
) -> Result<Vec<u8>, StoreError> {
    postcard::to_extend(value, Vec::with_capacity(capacity))
        .map_err(|e| StoreError::Invalid(format!("encoding a record: {e}")))
}

/// A close upper guess of a message's encoded size: its variable-length
/// fields plus room for the fixed ones and the length prefixes.
#[cfg(feature = "redis")]
pub(crate) fn message_size_hint(m: &crate::record::StoredMessage) -> usize {
    let p = &m.properties;
    let users: usize = p
        .user_properties
        .iter()
        .map(|(k, v)| k.len() + v.len() + 10)
        .sum();
    64 + m.topic.len()
        + m.payload.len()
        + m.publisher.as_ref().map_or(0, |s| s.len())
        + p.response_topic.as_ref().map_or(0, |s| s.len())
        + p.correlation_data.as_ref().map_or(0, |b| b.len())
        + p.content_type.as_ref().map_or(0, |s| s.len())
        + users
}

/// Decodes a record; `what` names it in the error.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

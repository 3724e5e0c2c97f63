//! Record values as bytes (postcard), with decode failures reported as
//! [`StoreError::Corrupt`] naming what failed to decode.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;

/// Encodes a record.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(|e| StoreError::Invalid(format!("encoding a record: {e}")))
}

/// Decodes a record; `what` names it in the error.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

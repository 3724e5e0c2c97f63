//! Key encoding of the disk format (version 1). Keys sort so that one
//! client's rows are contiguous and in order:
//!
//! ```text
//!  client prefix  = u16 BE length ‖ client id bytes      (unambiguous: no separator needed)
//!  sessions       : client prefix
//!  subscriptions  : client prefix ‖ filter bytes
//!  messages       : client prefix ‖ seq u64 BE
//!  inflight       : client prefix ‖ seq u64 BE
//!  inbound        : client prefix ‖ packet id u16 BE
//!  wills          : client prefix
//!  retained       : u16 BE length ‖ topic bytes          (never empty: fjall refuses empty keys)
//!  delayed        : id u64 BE
//! ```

use bytestring::ByteString;
use roost_codec::PacketId;

use crate::error::StoreError;

/// The key prefix of everything stored under `client_id`.
pub(crate) fn client(client_id: &str) -> Result<Vec<u8>, StoreError> {
    let mut key = Vec::with_capacity(2 + client_id.len() + 8);
    extend_client(&mut key, client_id)?;
    Ok(key)
}

/// Appends the key prefix of `client_id` to `key`.
pub(crate) fn extend_client(key: &mut Vec<u8>, client_id: &str) -> Result<(), StoreError> {
    let len = u16::try_from(client_id.len()).map_err(|_| {
        StoreError::Invalid(format!(
            "client id or topic of {} bytes (at most 65,535)",
            client_id.len()
        ))
    })?;
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(client_id.as_bytes());
    Ok(())
}

/// fjall keys are 1 to 65,535 bytes; longer ones are refused, not panicked on.
pub(crate) fn check_len(key: &[u8]) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > usize::from(u16::MAX) {
        return Err(StoreError::Invalid(format!(
            "key of {} bytes (client id + filter or topic must fit in 65,533 bytes)",
            key.len()
        )));
    }
    Ok(())
}

/// The key of a retained topic.
pub(crate) fn topic(topic: &str) -> Result<Vec<u8>, StoreError> {
    client(topic)
}

/// `client prefix ‖ suffix`.
pub(crate) fn client_with(client_id: &str, suffix: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut key = client(client_id)?;
    key.extend_from_slice(suffix);
    Ok(key)
}

fn utf8(bytes: &[u8], what: &str) -> Result<ByteString, StoreError> {
    std::str::from_utf8(bytes)
        .map(ByteString::from)
        .map_err(|_| StoreError::Corrupt(format!("{what} is not UTF-8")))
}

/// Splits a key into its client id and the rest.
pub(crate) fn split_client<'k>(
    key: &'k [u8],
    what: &str,
) -> Result<(ByteString, &'k [u8]), StoreError> {
    let corrupt = || StoreError::Corrupt(format!("{what} key of {} bytes", key.len()));
    let (len, rest) = key.split_first_chunk::<2>().ok_or_else(corrupt)?;
    let len = usize::from(u16::from_be_bytes(*len));
    let (id, rest) = rest.split_at_checked(len).ok_or_else(corrupt)?;
    Ok((utf8(id, what)?, rest))
}

/// A key that is exactly a client prefix.
pub(crate) fn parse_client(key: &[u8], what: &str) -> Result<ByteString, StoreError> {
    let (id, rest) = split_client(key, what)?;
    if !rest.is_empty() {
        return Err(StoreError::Corrupt(format!(
            "{what} key has trailing bytes"
        )));
    }
    Ok(id)
}

/// `client prefix ‖ text`.
pub(crate) fn parse_client_text(
    key: &[u8],
    what: &str,
) -> Result<(ByteString, ByteString), StoreError> {
    let (id, rest) = split_client(key, what)?;
    Ok((id, utf8(rest, what)?))
}

/// `client prefix ‖ u64 BE`.
pub(crate) fn parse_client_seq(key: &[u8], what: &str) -> Result<(ByteString, u64), StoreError> {
    let (id, rest) = split_client(key, what)?;
    let seq = <[u8; 8]>::try_from(rest)
        .map_err(|_| StoreError::Corrupt(format!("{what} key: bad sequence number")))?;
    Ok((id, u64::from_be_bytes(seq)))
}

/// `client prefix ‖ u16 BE` (non-zero).
pub(crate) fn parse_client_packet_id(
    key: &[u8],
    what: &str,
) -> Result<(ByteString, PacketId), StoreError> {
    let (id, rest) = split_client(key, what)?;
    let pid = <[u8; 2]>::try_from(rest)
        .ok()
        .and_then(|b| PacketId::new(u16::from_be_bytes(b)))
        .ok_or_else(|| StoreError::Corrupt(format!("{what} key: bad packet id")))?;
    Ok((id, pid))
}

/// A retained topic key.
pub(crate) fn parse_topic(key: &[u8], what: &str) -> Result<ByteString, StoreError> {
    parse_client(key, what)
}

/// A `u64 BE` key (delayed id).
pub(crate) fn parse_u64(key: &[u8], what: &str) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt(format!("{what} key of {} bytes", key.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_prefixes_do_not_overlap_when_one_id_extends_another() {
        let ab = client("ab").unwrap_or_default();
        let abc = client("abc").unwrap_or_default();
        assert!(!abc.starts_with(&ab));
        let key = client_with("ab", &7u64.to_be_bytes()).unwrap_or_default();
        assert_eq!(parse_client_seq(&key, "t").ok(), Some(("ab".into(), 7)));
    }

    #[test]
    fn truncated_keys_are_corrupt_not_panics() {
        for key in [&[][..], &[0][..], &[0, 5, b'a'][..]] {
            assert!(matches!(
                split_client(key, "t"),
                Err(StoreError::Corrupt(_))
            ));
        }
    }
}

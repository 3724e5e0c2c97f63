//! What crosses Redis: inbox batches and kicks, retained blobs, and the
//! parsing of stream replies (`XREAD`, `XREVRANGE`) from raw values.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Value;
use roost_store::StoredMessage;
use serde::{Deserialize, Serialize};

use crate::ClusterError;

/// Inbox entry field: the kind (`m` messages, `x` a kick, `h` a handover done).
pub(crate) const KIND: &str = "k";
/// Inbox entry field: the origin node.
pub(crate) const ORIGIN: &str = "o";
/// Inbox batch field: the origin's route incarnation when it wrote the batch.
pub(crate) const INCARNATION: &str = "i";
/// Inbox batch field: the batch's sequence number (grows within the origin's
/// process; `dedupe.rs`).
pub(crate) const SEQ: &str = "s";
/// Inbox / retained log field: the postcard payload.
pub(crate) const DATA: &str = "d";
/// Retained log field: the topic.
pub(crate) const TOPIC: &str = "t";

/// A kick: close the connection of `client_id` if it still holds `token`,
/// flush the session's rows and hand it over to `to` (answering with a
/// [`Handed`] addressed to `new_token`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Kick {
    pub(crate) client_id: String,
    pub(crate) token: String,
    /// The claim that took the client id.
    pub(crate) new_token: String,
    /// The node that took it.
    pub(crate) to: String,
    /// The new connection resumes the session (Clean Start 0).
    pub(crate) resume: bool,
}

/// The answer to a kick: the old node flushed the session's rows (or had
/// nothing) and let it go.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Handed {
    pub(crate) client_id: String,
    pub(crate) new_token: String,
}

/// A retained message as kept in its bucket and logged.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RetainedBlob {
    /// When it was stored (unix ms): `retain_ttl` counts from here.
    pub(crate) stored_at_ms: u64,
    pub(crate) message: StoredMessage,
}

pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, ClusterError> {
    postcard::to_allocvec(value).map_err(|e| ClusterError::Encoding(e.to_string()))
}

pub(crate) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ClusterError> {
    postcard::from_bytes(bytes).map_err(|e| ClusterError::Encoding(e.to_string()))
}

pub(crate) fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A ban's end as kept in Redis (`0`: never).
pub(crate) fn ban_end(ms: u64) -> Option<SystemTime> {
    (ms != 0).then(|| from_unix_ms(ms))
}

pub(crate) fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// One stream entry: its id and its fields.
#[derive(Debug, Default)]
pub(crate) struct Entry {
    pub(crate) id: String,
    pub(crate) fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Entry {
    pub(crate) fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.field(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// A field's value moved out (a batch decodes from it without a copy).
    pub(crate) fn take(&mut self, name: &str) -> Option<Vec<u8>> {
        self.fields
            .iter_mut()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| std::mem::take(v))
    }

    pub(crate) fn number(&self, name: &str) -> Option<u64> {
        self.text(name).and_then(|v| v.parse().ok())
    }

    /// A message batch's header: origin, its incarnation, batch sequence
    /// number (`None`: not a batch, or written without one).
    pub(crate) fn batch_header(&self) -> Option<(&str, u64, u64)> {
        Some((
            self.text(ORIGIN)?,
            self.number(INCARNATION)?,
            self.number(SEQ)?,
        ))
    }
}

pub(crate) fn bytes_of(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

pub(crate) fn text_of(value: &Value) -> Option<String> {
    bytes_of(value).and_then(|b| String::from_utf8(b).ok())
}

/// [`bytes_of`] without the copy: a reply's values are moved into entries.
fn into_bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

/// Entries of one stream: `[[id, [f, v, …]], …]`. Takes the reply: its
/// bulk strings (a batch is kilobytes) move into the entries uncopied.
pub(crate) fn entries(value: Value) -> Vec<Entry> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(pair) = item else {
                return None;
            };
            let mut pair = pair.into_iter();
            let id = into_bytes(pair.next()?).and_then(|b| String::from_utf8(b).ok())?;
            let mut fields = Vec::new();
            if let Some(Value::Array(flat)) = pair.next() {
                let mut flat = flat.into_iter();
                while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                    if let (Some(k), Some(v)) = (into_bytes(k), into_bytes(v)) {
                        fields.push((k, v));
                    }
                }
            }
            Some(Entry { id, fields })
        })
        .collect()
}

/// An `XREAD` reply: `[[key, entries], …]` (nil on timeout), by key.
pub(crate) fn xread(value: Value) -> Vec<(String, Vec<Entry>)> {
    let Value::Array(streams) = value else {
        return Vec::new();
    };
    streams
        .into_iter()
        .filter_map(|stream| {
            let Value::Array(pair) = stream else {
                return None;
            };
            let mut pair = pair.into_iter();
            let key = into_bytes(pair.next()?).and_then(|b| String::from_utf8(b).ok())?;
            Some((key, entries(pair.next()?)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xread_reply_is_parsed() {
        let reply = Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"k1".to_vec()),
            Value::Array(vec![Value::Array(vec![
                Value::BulkString(b"1-0".to_vec()),
                Value::Array(vec![
                    Value::BulkString(b"o".to_vec()),
                    Value::BulkString(b"n1".to_vec()),
                ]),
            ])]),
        ])]);
        let parsed = xread(reply);
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].0, "k1");
        assert_eq!(parsed[0].1[0].id, "1-0");
        assert_eq!(parsed[0].1[0].text("o"), Some("n1"));
        assert!(xread(Value::Nil).is_empty());
    }
}

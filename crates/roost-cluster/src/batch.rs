//! The inbox batch codec: the messages one node sends another in one
//! stream entry, as one postcard value (`Vec<Remote>`). The format is the
//! plain postcard of [`Remote`]; what this file adds is speed: a message is
//! encoded where it is routed, appended to a body (postcard's sequence is
//! its length, then its elements back to back), so the writer only joins
//! bodies; decoding copies no topic or payload — they become [`Bytes`]
//! slices of the entry's own buffer, which Redis' reply already holds. The
//! profile of a cross-node run put copies and allocations first
//! (docs/performance.md).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use bytestring::ByteString;
use roost_codec::QoS;
use roost_store::{StoredMessage, StoredProperties};
use serde::de::{DeserializeSeed, Deserializer, Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::{ClusterError, Remote};

/// Bytes per message beyond topic, payload and group names: flags, QoS,
/// varint lengths, an expiry, a short publisher id. Only a size hint.
const OVERHEAD: usize = 48;

/// Appends one message (the postcard of its `Remote`) to a batch's body;
/// on an error the body is as it was.
pub(crate) fn append(body: &mut Vec<u8>, remote: &RemoteOut<'_>) -> Result<(), ClusterError> {
    let m = remote.message;
    let hint = OVERHEAD
        + m.topic.len()
        + m.payload.len()
        + m.publisher.as_ref().map_or(0, |p| p.len())
        + remote.groups.0.iter().map(|g| g.len() + 2).sum::<usize>()
        + remote.only.iter().map(|c| c.len() + 2).sum::<usize>();
    let at = body.len();
    body.reserve(hint);
    postcard::serialize_with_flavor(remote, Append(body)).map_err(|e| {
        body.truncate(at);
        ClusterError::Encoding(e.to_string())
    })
}

/// Room kept in front of a [`Body`] for its length (a `u64` varint).
const LEN_ROOM: usize = 10;

/// A batch for one node being built: room for its length first, then its
/// messages' encodings back to back. [`Body::frame`] writes the length in
/// front, so the writer sends the bytes where they are; cleared, it keeps
/// its buffer for the next batch (no regrowth per round trip).
pub(crate) struct Body {
    count: usize,
    bytes: Vec<u8>,
}

impl Default for Body {
    fn default() -> Self {
        Body {
            count: 0,
            bytes: vec![0; LEN_ROOM],
        }
    }
}

impl Body {
    /// Messages appended since the last clear.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Appends one message (see [`append`]).
    pub(crate) fn push(&mut self, remote: &RemoteOut<'_>) -> Result<(), ClusterError> {
        append(&mut self.bytes, remote)?;
        self.count += 1;
        Ok(())
    }

    /// Appends one message encoded already (a staged read's, `staged.rs`).
    pub(crate) fn push_encoded(&mut self, encoded: &[u8]) {
        self.bytes.extend_from_slice(encoded);
        self.count += 1;
    }

    /// Empty again, its buffer kept.
    pub(crate) fn clear(&mut self) {
        self.count = 0;
        self.bytes.truncate(LEN_ROOM);
    }

    /// The batch as sent: postcard's sequence length (a LEB128 varint),
    /// then the messages.
    pub(crate) fn frame(&mut self) -> &[u8] {
        let mut len = [0u8; LEN_ROOM];
        let mut used = 0;
        let mut n = self.count as u64;
        while n >= 0x80 {
            len[used] = (n as u8) | 0x80;
            n >>= 7;
            used += 1;
        }
        len[used] = n as u8;
        used += 1;
        let start = LEN_ROOM - used;
        self.bytes[start..LEN_ROOM].copy_from_slice(&len[..used]);
        &self.bytes[start..]
    }
}

/// One message of a batch as the writer sends it: [`Remote`]'s fields, in
/// its order, by reference (the message is shared by its destinations and
/// never copied into a `Remote`); the same bytes as the `Remote`
/// (`encode_equals_postcard_of_remote`).
#[derive(Serialize)]
pub(crate) struct RemoteOut<'a> {
    pub(crate) message: &'a StoredMessage,
    pub(crate) direct: bool,
    pub(crate) groups: Names<'a>,
    pub(crate) rerouted: bool,
    pub(crate) only: &'a [String],
}

/// Group names, serialized as `Remote::groups` (a sequence of strings).
pub(crate) struct Names<'a>(pub(crate) &'a [Arc<str>]);

impl Serialize for Names<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|name| &**name))
    }
}

/// A batch back, topics and payloads sharing `data`'s buffer; all or
/// nothing (the inbox handoff's replay).
pub(crate) fn decode(data: &Bytes) -> Result<Vec<Remote>, ClusterError> {
    let mut out = Vec::new();
    decode_each(data, &mut |remote| out.push(remote))?;
    Ok(out)
}

/// Reads a batch message by message, each made owned as it is read and
/// handed to `each` at once (the reader routes it there): a decoded
/// `Remote` is a few hundred bytes, and a vector of the whole batch moved
/// each one twice more (a cross-node profile: 4 % of the receiving node).
/// Returns how many; on an error, the messages before it were handed over.
pub(crate) fn decode_each(
    data: &Bytes,
    each: &mut dyn FnMut(Remote),
) -> Result<usize, ClusterError> {
    let mut count = 0;
    let mut de = postcard::Deserializer::from_bytes(data);
    Batch {
        data,
        each,
        count: &mut count,
    }
    .deserialize(&mut de)
    .map_err(|e| ClusterError::Encoding(e.to_string()))?;
    Ok(count)
}

/// Reads a batch's sequence element by element into `each` (serde's seed:
/// the buffer the elements borrow from goes along).
struct Batch<'d, 'e> {
    data: &'d Bytes,
    each: &'e mut dyn FnMut(Remote),
    count: &'e mut usize,
}

impl<'de> DeserializeSeed<'de> for Batch<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Batch<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a batch of cluster messages")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while let Some(remote) = seq.next_element::<RemoteRef<'de>>()? {
            (self.each)(remote.owned(self.data).map_err(A::Error::custom)?);
            *self.count += 1;
        }
        Ok(())
    }
}

/// A `Vec` postcard appends to, whole slices at a time.
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// [`Remote`] as serialized, borrowing its strings and payload. Field
/// order and types mirror `Remote` and `StoredMessage` exactly (postcard
/// has no field names); `decode_equals_postcard` checks it.
#[derive(Deserialize)]
struct RemoteRef<'a> {
    #[serde(borrow)]
    message: MessageRef<'a>,
    direct: bool,
    groups: Vec<String>,
    rerouted: bool,
    only: Vec<String>,
}

/// [`StoredMessage`] as serialized: QoS as its wire value, the expiry as
/// `(seconds, nanoseconds)` since the epoch (roost-store's `wire::qos` and
/// `time::optional`).
#[derive(Deserialize)]
struct MessageRef<'a> {
    topic: &'a str,
    payload: &'a [u8],
    qos: u8,
    retain: bool,
    properties: StoredProperties,
    expires_at: Option<(u64, u32)>,
    #[serde(borrow)]
    publisher: Option<&'a str>,
}

impl RemoteRef<'_> {
    fn owned(self, data: &Bytes) -> Result<Remote, ClusterError> {
        let m = self.message;
        let bad = |what: &str| ClusterError::Encoding(format!("cluster batch: {what}"));
        let expires_at = match m.expires_at {
            None => None,
            Some((secs, nanos)) => Some(
                (nanos < 1_000_000_000)
                    .then(|| UNIX_EPOCH.checked_add(Duration::new(secs, nanos)))
                    .flatten()
                    .ok_or_else(|| bad("expiry out of range"))?,
            ),
        };
        Ok(Remote {
            message: StoredMessage {
                topic: shared_str(data, m.topic),
                payload: data.slice_ref(m.payload),
                qos: QoS::from_u8(m.qos).ok_or_else(|| bad("QoS"))?,
                retain: m.retain,
                properties: m.properties,
                expires_at,
                publisher: m.publisher.map(|p| shared_str(data, p)),
            },
            direct: self.direct,
            groups: self.groups,
            rerouted: self.rerouted,
            only: self.only,
        })
    }
}

/// `s`, a `str` borrowed from `data`, as a `ByteString` sharing `data`.
fn shared_str(data: &Bytes, s: &str) -> ByteString {
    // Already UTF-8 (postcard checked it): the check again costs a pass over
    // a topic; no `unsafe` for that.
    ByteString::try_from(data.slice_ref(s.as_bytes())).unwrap_or_else(|_| ByteString::from(s))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;

    fn message(topic: &str, payload: &[u8]) -> StoredMessage {
        StoredMessage {
            topic: topic.into(),
            payload: Bytes::copy_from_slice(payload),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: StoredProperties::default(),
            expires_at: None,
            publisher: None,
        }
    }

    /// Every field set, so a field added to `StoredMessage` or `Remote`
    /// without the mirror here fails this test.
    fn full() -> Remote {
        Remote {
            message: StoredMessage {
                topic: "a/b/c".into(),
                payload: Bytes::from_static(b"\x00\x01payload"),
                qos: QoS::ExactlyOnce,
                retain: true,
                properties: StoredProperties {
                    payload_format_indicator: Some(true),
                    message_expiry_interval: Some(30),
                    response_topic: Some("re/ply".into()),
                    correlation_data: Some(Bytes::from_static(b"corr")),
                    user_properties: vec![("k".into(), "v".into())],
                    content_type: Some("text/plain".into()),
                },
                expires_at: Some(UNIX_EPOCH + Duration::new(1_800_000_000, 123_456_789)),
                publisher: Some("pub-1".into()),
            },
            direct: true,
            groups: vec!["$share/g/a/+/c".into()],
            rerouted: true,
            only: vec!["client-1".into()],
        }
    }

    /// `remotes` through the writer's encoder.
    fn encode_remotes(remotes: &[Remote]) -> Vec<u8> {
        let groups: Vec<Vec<Arc<str>>> = remotes
            .iter()
            .map(|r| r.groups.iter().map(|g| Arc::from(g.as_str())).collect())
            .collect();
        let outs: Vec<RemoteOut<'_>> = remotes
            .iter()
            .zip(&groups)
            .map(|(r, groups)| RemoteOut {
                message: &r.message,
                direct: r.direct,
                groups: Names(groups),
                rerouted: r.rerouted,
                only: &r.only,
            })
            .collect();
        let mut body = Body::default();
        for out in &outs {
            body.push(out).expect("encodes");
        }
        body.frame().to_vec()
    }

    #[test]
    fn encode_equals_postcard_of_remote() {
        let batch = vec![full(), message_remote(), full()];
        assert_eq!(
            encode_remotes(&batch),
            postcard::to_allocvec(&batch).expect("encodes")
        );
        assert_eq!(
            encode_remotes(&[]),
            postcard::to_allocvec(&Vec::<Remote>::new()).expect("encodes")
        );
        // A length of more than one varint byte.
        let many: Vec<Remote> = (0..300).map(|_| message_remote()).collect();
        assert_eq!(
            encode_remotes(&many),
            postcard::to_allocvec(&many).expect("encodes")
        );
    }

    #[test]
    fn decode_equals_postcard() {
        let batch = vec![full(), full(), message_remote()];
        let data = Bytes::from(encode_remotes(&batch));
        let back = decode(&data).expect("decodes");
        let plain: Vec<Remote> = postcard::from_bytes(&data).expect("decodes");
        assert_eq!(back.len(), 3);
        for (a, b) in back.iter().zip(&plain) {
            assert_eq!(a.message, b.message);
            assert_eq!(
                (a.direct, &a.groups, a.rerouted, &a.only),
                (b.direct, &b.groups, b.rerouted, &b.only)
            );
        }
        assert_eq!(back[0].message, full().message);
    }

    fn message_remote() -> Remote {
        Remote {
            message: message("t", b"x"),
            direct: false,
            groups: Vec::new(),
            rerouted: false,
            only: Vec::new(),
        }
    }

    #[test]
    fn payload_and_topic_share_the_buffer() {
        let data = Bytes::from(encode_remotes(&[message_remote()]));
        let back = decode(&data).expect("decodes");
        let range = data.as_ptr_range();
        assert!(range.contains(&back[0].message.payload.as_ptr()));
        assert!(range.contains(&back[0].message.topic.as_bytes().as_ptr()));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(&Bytes::from_static(b"\x05\x01")).is_err());
        let mut data = encode_remotes(&[full()]);
        // QoS byte after the topic and payload: 3 is not a QoS.
        let at = 1 + 1 + 5 + 1 + 9;
        data[at] = 3;
        assert!(decode(&Bytes::from(data)).is_err());
    }
}

//! A pre-encoded PUBLISH: encoded once with the codec, then copied per
//! message with only the packet identifier and the payload header patched.
//! This keeps the publisher's cost per message to a memcpy and a few stores,
//! which matters when the load generator shares two cores with the broker.

use std::num::NonZeroU16;

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use roost_codec::{Encoder, Packet, Publish, QoS};

use crate::payload::PayloadHeader;

/// The wire bytes of one PUBLISH and where to patch them.
#[derive(Debug, Clone)]
pub struct PublishTemplate {
    bytes: Vec<u8>,
    packet_id_at: Option<usize>,
    payload_at: usize,
}

impl PublishTemplate {
    /// Encodes a PUBLISH of `size` payload bytes to `topic`.
    pub fn new(
        encoder: &Encoder,
        topic: &str,
        qos: QoS,
        retain: bool,
        size: usize,
    ) -> anyhow::Result<Self> {
        let publish = Publish {
            qos,
            retain,
            topic: ByteString::from(topic),
            packet_id: (qos != QoS::AtMostOnce).then_some(NonZeroU16::MIN),
            payload: Bytes::from(vec![0u8; size]),
            ..Publish::default()
        };
        let mut buf = BytesMut::new();
        encoder
            .encode(&Packet::Publish(publish), &mut buf)
            .with_context(|| format!("encode PUBLISH to {topic:?}"))?;
        let payload_at = buf.len() - size;
        // The packet identifier sits right before the properties (one
        // zero-length byte in 5.0, nothing in 3.x), which sit right before
        // the payload.
        let packet_id_at = if qos == QoS::AtMostOnce {
            None
        } else {
            let props_len = usize::from(encoder.version().is_v5());
            let at = payload_at
                .checked_sub(props_len + 2)
                .context("PUBLISH shorter than its header")?;
            if buf.get(at..at + 2) != Some(&[0, 1][..]) {
                bail!("unexpected PUBLISH layout: packet identifier not found");
            }
            Some(at)
        };
        Ok(Self {
            bytes: buf.to_vec(),
            packet_id_at,
            payload_at,
        })
    }

    /// A PUBLISH whose payload is `payload` exactly (`-m`): no header is
    /// patched in, only the packet identifier.
    pub fn fixed(
        encoder: &Encoder,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &[u8],
    ) -> anyhow::Result<Self> {
        let mut template = Self::new(encoder, topic, qos, retain, payload.len())?;
        let at = template.payload_at;
        template.bytes[at..].copy_from_slice(payload);
        // Past the end: `append` then finds no room for a header.
        template.payload_at = template.bytes.len();
        Ok(template)
    }

    /// Size of one message on the wire.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True if the template is empty (never, for a valid PUBLISH).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Appends one message to `out` with its packet identifier (QoS 1/2)
    /// and payload header (if the payload is large enough to hold it).
    pub fn append(&self, out: &mut BytesMut, packet_id: NonZeroU16, header: &PayloadHeader) {
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        let msg = &mut out[start..];
        if let Some(at) = self.packet_id_at {
            msg[at..at + 2].copy_from_slice(&packet_id.get().to_be_bytes());
        }
        header.write(&mut msg[self.payload_at..]);
    }
}

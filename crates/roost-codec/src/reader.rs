//! A bounds-checked cursor over one packet's bytes. Strings and binary fields
//! come out as slices of the packet ([`Bytes::slice`]): no copy. Every read
//! that would cross the end reports [`DecodeError::Truncated`], so a
//! Remaining Length shorter than the content is always caught.

use bytes::{Buf, Bytes};
use bytestring::ByteString;

use crate::error::DecodeError;
use crate::packet::PacketType;
use crate::varint::{self, VarintRead};

/// Cursor over the variable header and payload of one packet.
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
    /// Reads stop here; narrowed while reading a property block.
    end: usize,
    packet_type: PacketType,
}

impl Reader {
    /// A reader over `body` (everything after the fixed header).
    pub(crate) fn new(body: Bytes, packet_type: PacketType) -> Self {
        let end = body.len();
        Self {
            buf: body,
            pos: 0,
            end,
            packet_type,
        }
    }

    /// The packet being read (for error reports).
    pub(crate) fn packet_type(&self) -> PacketType {
        self.packet_type
    }

    /// Bytes left before the current end.
    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// True when nothing is left before the current end.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.end
    }

    fn truncated(&self, field: &'static str) -> DecodeError {
        DecodeError::Truncated {
            packet_type: self.packet_type,
            field,
        }
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless everything was read.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                packet_type: self.packet_type,
                count: self.remaining(),
            })
        }
    }

    /// Restricts reads to the next `len` bytes; returns the end to restore
    /// with [`Self::widen`].
    pub(crate) fn narrow(&mut self, len: usize, field: &'static str) -> Result<usize, DecodeError> {
        if len > self.remaining() {
            return Err(self.truncated(field));
        }
        let saved = self.end;
        self.end = self.pos + len;
        Ok(saved)
    }

    /// Restores the end saved by [`Self::narrow`].
    pub(crate) fn widen(&mut self, saved_end: usize) {
        self.end = saved_end;
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&[u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.truncated(field));
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..self.pos])
    }

    /// One byte.
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    /// A Two Byte Integer (big-endian).
    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A Four Byte Integer (big-endian).
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A Variable Byte Integer, minimal and at most four bytes [MQTT-1.5.5-1].
    pub(crate) fn varint(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        match varint::read(&self.buf[self.pos..self.end]) {
            VarintRead::Done(v, n) => {
                self.pos += n;
                Ok(v)
            }
            VarintRead::Incomplete => Err(self.truncated(field)),
            VarintRead::TooLong => Err(DecodeError::VarintTooLong { field }),
            VarintRead::NonMinimal => Err(DecodeError::NonMinimalVarint { field }),
        }
    }

    /// The next `n` bytes as a slice of the packet (no copy).
    pub(crate) fn bytes(&mut self, n: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        if n > self.remaining() {
            return Err(self.truncated(field));
        }
        let start = self.pos;
        self.pos += n;
        Ok(self.buf.slice(start..self.pos))
    }

    /// Everything up to the current end (the PUBLISH payload). Hands over
    /// the reader's own reference to the packet instead of taking a new one
    /// (one atomic increment and decrement less per PUBLISH); the reader is
    /// empty afterwards.
    pub(crate) fn rest(&mut self) -> Bytes {
        let mut rest = std::mem::take(&mut self.buf);
        rest.truncate(self.end);
        rest.advance(self.pos);
        self.pos = 0;
        self.end = 0;
        rest
    }

    /// Binary Data: a Two Byte length then that many bytes.
    pub(crate) fn binary(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.u16(field)?;
        self.bytes(usize::from(len), field)
    }

    /// A UTF-8 Encoded String: well-formed, no surrogates, no U+0000
    /// [MQTT-1.5.4-1, MQTT-1.5.4-2]. U+FEFF is kept as is [MQTT-1.5.4-3].
    pub(crate) fn string(&mut self, field: &'static str) -> Result<ByteString, DecodeError> {
        let raw = self.binary(field)?;
        to_byte_string(raw, field)
    }
}

/// Validates a UTF-8 Encoded String and wraps it without copying.
pub(crate) fn to_byte_string(raw: Bytes, field: &'static str) -> Result<ByteString, DecodeError> {
    // `contains` on bytes is a memchr; U+0000 is the only encoding with a 0
    // byte in UTF-8, so a byte test is exact.
    if raw.contains(&0) {
        return Err(DecodeError::NullCharacter { field });
    }
    // Rust's UTF-8 validation rejects overlong forms and surrogates
    // (U+D800..U+DFFF), exactly the ill-formed sequences of RFC 3629.
    ByteString::try_from(raw).map_err(|_| DecodeError::InvalidUtf8 { field })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &'static [u8]) -> Reader {
        Reader::new(Bytes::from_static(bytes), PacketType::Publish)
    }

    #[test]
    fn v5_mqtt_1_5_4_1_ill_formed_utf8_and_surrogates_are_rejected() {
        // 0xED 0xA0 0x80 encodes U+D800, a surrogate.
        let mut r = reader(&[0x00, 0x03, 0xED, 0xA0, 0x80]);
        assert_eq!(
            r.string("topic"),
            Err(DecodeError::InvalidUtf8 { field: "topic" })
        );
        // Overlong encoding of '/'.
        let mut r = reader(&[0x00, 0x02, 0xC0, 0xAF]);
        assert_eq!(
            r.string("topic"),
            Err(DecodeError::InvalidUtf8 { field: "topic" })
        );
    }

    #[test]
    fn v311_mqtt_1_5_3_1_ill_formed_utf8_is_rejected() {
        let mut r = reader(&[0x00, 0x01, 0xFF]);
        let e = r.string("client id").unwrap_err();
        assert_eq!(e, DecodeError::InvalidUtf8 { field: "client id" });
        assert_eq!(
            e.spec_id_in(crate::ProtocolVersion::V311),
            Some("MQTT-1.5.3-1")
        );
    }

    #[test]
    fn v5_mqtt_1_5_4_2_null_character_is_rejected() {
        let mut r = reader(&[0x00, 0x03, b'a', 0x00, b'b']);
        assert_eq!(
            r.string("topic"),
            Err(DecodeError::NullCharacter { field: "topic" })
        );
    }

    #[test]
    fn v5_mqtt_1_5_4_3_bom_is_kept() {
        let mut r = reader(&[0x00, 0x04, 0xEF, 0xBB, 0xBF, b'a']);
        assert_eq!(r.string("topic").as_deref(), Ok("\u{FEFF}a"));
    }

    #[test]
    fn v311_mqtt_1_5_3_3_bom_is_kept() {
        let mut r = reader(&[0x00, 0x03, 0xEF, 0xBB, 0xBF]);
        assert_eq!(r.string("topic").as_deref(), Ok("\u{FEFF}"));
    }

    #[test]
    fn reads_past_the_end_are_truncation_errors() {
        let mut r = reader(&[0x00, 0x05, b'a']);
        assert_eq!(
            r.string("topic"),
            Err(DecodeError::Truncated {
                packet_type: PacketType::Publish,
                field: "topic"
            })
        );
    }

    #[test]
    fn narrow_limits_reads_and_widen_restores() {
        let mut r = reader(&[1, 2, 3]);
        let saved = r.narrow(1, "props").unwrap();
        assert_eq!(r.u8("a"), Ok(1));
        assert!(r.u8("b").is_err());
        r.widen(saved);
        assert_eq!(r.u16("c"), Ok(0x0203));
        assert!(r.finish().is_ok());
    }
}

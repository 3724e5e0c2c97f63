//! Where encoded bytes go. Every packet body is written by one generic
//! function, run first into a [`Counter`] (to learn the Remaining Length and
//! check limits before touching the caller's buffer) and then into the
//! [`BytesMut`]: the size computed and the bytes written cannot disagree.

use bytes::{BufMut, BytesMut};

use crate::error::EncodeError;
use crate::varint::{self, MAX_VARINT};

/// A byte sink: a counter or a buffer.
pub(crate) trait Sink {
    /// Appends one byte.
    fn put_u8(&mut self, v: u8);
    /// Appends a big-endian Two Byte Integer.
    fn put_u16(&mut self, v: u16);
    /// Appends a big-endian Four Byte Integer.
    fn put_u32(&mut self, v: u32);
    /// Appends raw bytes.
    fn put_slice(&mut self, s: &[u8]);
}

/// Counts bytes without writing them.
#[derive(Debug, Default)]
pub(crate) struct Counter(pub(crate) usize);

impl Sink for Counter {
    fn put_u8(&mut self, _: u8) {
        self.0 += 1;
    }
    fn put_u16(&mut self, _: u16) {
        self.0 += 2;
    }
    fn put_u32(&mut self, _: u32) {
        self.0 += 4;
    }
    fn put_slice(&mut self, s: &[u8]) {
        self.0 += s.len();
    }
}

impl Sink for BytesMut {
    fn put_u8(&mut self, v: u8) {
        BufMut::put_u8(self, v);
    }
    fn put_u16(&mut self, v: u16) {
        BufMut::put_u16(self, v);
    }
    fn put_u32(&mut self, v: u32) {
        BufMut::put_u32(self, v);
    }
    fn put_slice(&mut self, s: &[u8]) {
        self.extend_from_slice(s);
    }
}

/// Appends a Variable Byte Integer; fails above 268,435,455.
pub(crate) fn put_varint<S: Sink>(
    s: &mut S,
    v: u32,
    field: &'static str,
) -> Result<(), EncodeError> {
    if v > MAX_VARINT {
        return Err(EncodeError::VarintTooLarge { field, value: v });
    }
    let (bytes, n) = varint::encode(v);
    s.put_slice(&bytes[..n]);
    Ok(())
}

/// Appends Binary Data / a UTF-8 String: a Two Byte length then the bytes.
pub(crate) fn put_binary<S: Sink>(
    s: &mut S,
    b: &[u8],
    field: &'static str,
) -> Result<(), EncodeError> {
    let len = u16::try_from(b.len()).map_err(|_| EncodeError::FieldTooLong {
        field,
        len: b.len(),
    })?;
    s.put_u16(len);
    s.put_slice(b);
    Ok(())
}

/// Appends a UTF-8 Encoded String.
pub(crate) fn put_str<S: Sink>(s: &mut S, v: &str, field: &'static str) -> Result<(), EncodeError> {
    put_binary(s, v.as_bytes(), field)
}

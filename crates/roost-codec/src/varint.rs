//! Variable Byte Integer (MQTT 5.0 1.5.5, 3.1.1 2.2.3): 7 bits per byte, at
//! most four bytes, so at most 268,435,455. The encoding must be minimal
//! [MQTT-1.5.5-1].

/// The largest value a Variable Byte Integer can hold (four bytes).
pub const MAX_VARINT: u32 = 268_435_455;

/// Outcome of reading a Variable Byte Integer from a possibly short slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarintRead {
    /// The value and how many bytes it took.
    Done(u32, usize),
    /// The slice ended before the last byte (its high bit was still set).
    Incomplete,
    /// A fifth byte would be needed.
    TooLong,
    /// The value was encoded with more bytes than needed [MQTT-1.5.5-1].
    NonMinimal,
}

/// Reads a Variable Byte Integer from the start of `buf`.
pub(crate) fn read(buf: &[u8]) -> VarintRead {
    let mut value: u32 = 0;
    for (i, &byte) in buf.iter().take(4).enumerate() {
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            // A final byte of 0 after a continuation byte adds nothing: the
            // same value fits in fewer bytes.
            if i > 0 && byte == 0 {
                return VarintRead::NonMinimal;
            }
            return VarintRead::Done(value, i + 1);
        }
    }
    if buf.len() >= 4 {
        VarintRead::TooLong
    } else {
        VarintRead::Incomplete
    }
}

/// How many bytes `value` takes when encoded (`value` ≤ [`MAX_VARINT`]).
pub(crate) const fn len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Encodes `value` (≤ [`MAX_VARINT`]) into a small stack buffer; returns the
/// buffer and the number of bytes used.
pub(crate) fn encode(mut value: u32) -> ([u8; 4], usize) {
    let mut out = [0u8; 4];
    let mut n = 0;
    loop {
        let mut byte = (value & 0x7F) as u8;
        value >>= 7;
        if value > 0 {
            byte |= 0x80;
        }
        out[n] = byte;
        n += 1;
        if value == 0 || n == 4 {
            return (out, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_round_trip_with_minimal_length() {
        for (v, n) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (2_097_151, 3),
            (2_097_152, 4),
            (MAX_VARINT, 4),
        ] {
            let (bytes, used) = encode(v);
            assert_eq!(used, n, "{v}");
            assert_eq!(len(v), n, "{v}");
            assert_eq!(read(&bytes[..used]), VarintRead::Done(v, n), "{v}");
        }
    }

    #[test]
    fn v5_mqtt_1_5_5_1_non_minimal_encoding_is_rejected() {
        assert_eq!(read(&[0x80, 0x00]), VarintRead::NonMinimal);
        assert_eq!(read(&[0xFF, 0x80, 0x00]), VarintRead::NonMinimal);
        assert_eq!(read(&[0x80, 0x80, 0x80, 0x00]), VarintRead::NonMinimal);
    }

    #[test]
    fn five_bytes_are_too_long_and_short_input_is_incomplete() {
        assert_eq!(read(&[0xFF, 0xFF, 0xFF, 0xFF]), VarintRead::TooLong);
        assert_eq!(read(&[0xFF, 0xFF, 0xFF]), VarintRead::Incomplete);
        assert_eq!(read(&[]), VarintRead::Incomplete);
    }
}

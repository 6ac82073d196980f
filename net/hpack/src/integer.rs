//! Prefix-coded integers (RFC 7541 5.1).
//!
//! ```text
//!   0   1   2   3   4   5   6   7
//! +---+---+---+---+---+---+---+---+
//! | ? | ? | ? | 1   1   1   1   1 |   N-bit prefix all ones: value continues
//! +---+---+---+-------------------+
//! | 1 |    Value-(2^N-1) LSB      |   7 bits per continuation byte, low bits first,
//! +---+---------------------------+   high bit set on every byte but the last
//! | 0 |    Value-(2^N-1) MSB      |
//! +---+---------------------------+
//! ```
//!
//! The decoder accepts at most [`CONTINUATION_BYTES_MAX`] continuation bytes and values up to
//! `u32::MAX`: every length and index in a header block is far below that, and the bound
//! means a hostile integer costs a handful of bytes of work, never an overflow.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::HpackError;

/// Continuation bytes accepted after the prefix: 5 * 7 = 35 bits, enough for `u32::MAX`
/// plus zero padding of the value.
pub(crate) const CONTINUATION_BYTES_MAX: usize = 5;

/// Largest value the decoder accepts.
pub(crate) const VALUE_MAX: u64 = u32::MAX as u64;

const _: () = assert!(
    7 * CONTINUATION_BYTES_MAX as u64 >= 32,
    "must reach u32::MAX"
);
const _: () = assert!(usize::BITS >= 32, "decoded values are stored in usize");

/// Decodes one integer with a `prefix_bits`-bit prefix from the front of `input` and advances
/// `input` past it. The bits above the prefix in the first byte are ignored (the caller has
/// already read them as flags).
pub(crate) fn decode(input: &mut &[u8], prefix_bits: u32) -> Result<usize, HpackError> {
    assert!((1..=8).contains(&prefix_bits));
    let prefix_max: u8 = 0xff >> (8 - prefix_bits);

    let (&first, mut rest) = input.split_first().ok_or(HpackError::TruncatedInteger)?;
    let prefix = first & prefix_max;
    if prefix < prefix_max {
        *input = rest;
        return Ok(usize::from(prefix));
    }

    let mut value = u64::from(prefix_max);
    for i in 0..CONTINUATION_BYTES_MAX {
        let (&byte, tail) = rest.split_first().ok_or(HpackError::TruncatedInteger)?;
        rest = tail;
        // i < 5, so the shift is at most 28 and the sum stays below 2^36.
        value += u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if value > VALUE_MAX {
                return Err(HpackError::IntegerOverflow);
            }
            *input = rest;
            return usize::try_from(value).map_err(|_| HpackError::IntegerOverflow);
        }
    }
    Err(HpackError::IntegerOverflow)
}

/// Appends `value` with a `prefix_bits`-bit prefix; `flags` fills the bits above the prefix.
pub(crate) fn encode(dst: &mut Vec<u8>, flags: u8, prefix_bits: u32, value: usize) {
    assert!((1..=8).contains(&prefix_bits));
    let prefix_max: u8 = 0xff >> (8 - prefix_bits);
    assert_eq!(flags & prefix_max, 0, "flags overlap the integer prefix");

    if value < usize::from(prefix_max) {
        dst.push(flags | value as u8);
        return;
    }
    dst.push(flags | prefix_max);
    let mut rest = value - usize::from(prefix_max);
    while rest >= 0x80 {
        dst.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    dst.push(rest as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8], prefix_bits: u32) -> Result<usize, HpackError> {
        let mut input = bytes;
        let value = decode(&mut input, prefix_bits)?;
        assert!(input.is_empty(), "{} bytes left over", input.len());
        Ok(value)
    }

    fn check(value: usize, prefix_bits: u32, flags: u8, expected: &[u8]) {
        let mut dst = Vec::new();
        encode(&mut dst, flags, prefix_bits, value);
        assert_eq!(
            dst, expected,
            "encode {value} with {prefix_bits}-bit prefix"
        );
        assert_eq!(decode_all(expected, prefix_bits), Ok(value));
    }

    /// RFC 7541 C.1.1: 10 with a 5-bit prefix.
    #[test]
    fn c_1_1_small_value_fits_prefix() {
        check(10, 5, 0b1110_0000, &[0b1110_1010]);
        check(10, 5, 0, &[0b0000_1010]);
    }

    /// RFC 7541 C.1.2: 1337 with a 5-bit prefix.
    #[test]
    fn c_1_2_value_continues_past_prefix() {
        check(1337, 5, 0, &[0b0001_1111, 0b1001_1010, 0b0000_1010]);
    }

    /// RFC 7541 C.1.3: 42 starting at an octet boundary (8-bit prefix).
    #[test]
    fn c_1_3_octet_boundary() {
        check(42, 8, 0, &[0b0010_1010]);
    }

    #[test]
    fn boundaries_round_trip() {
        for prefix_bits in 1..=8 {
            let prefix_max = (1usize << prefix_bits) - 1;
            for value in [
                0,
                1,
                prefix_max - 1,
                prefix_max,
                prefix_max + 1,
                prefix_max + 127,
                prefix_max + 128,
                16_383,
                16_384,
                1 << 21,
                1 << 28,
                u32::MAX as usize,
            ] {
                let mut dst = Vec::new();
                encode(&mut dst, 0, prefix_bits, value);
                assert_eq!(
                    decode_all(&dst, prefix_bits),
                    Ok(value),
                    "{value} / {prefix_bits}"
                );
            }
        }
    }

    #[test]
    fn flags_above_prefix_are_ignored() {
        assert_eq!(decode_all(&[0xff, 0x00], 7), Ok(127));
        assert_eq!(decode_all(&[0xc5], 6), Ok(5));
    }

    #[test]
    fn truncated() {
        assert_eq!(decode_all(&[], 5), Err(HpackError::TruncatedInteger));
        assert_eq!(decode_all(&[0x1f], 5), Err(HpackError::TruncatedInteger));
        assert_eq!(
            decode_all(&[0x1f, 0x80, 0x80], 5),
            Err(HpackError::TruncatedInteger)
        );
    }

    #[test]
    fn overflow() {
        // u32::MAX is the largest accepted value...
        let mut dst = Vec::new();
        encode(&mut dst, 0, 5, u32::MAX as usize);
        assert_eq!(decode_all(&dst, 5), Ok(u32::MAX as usize));
        // ...one more is rejected.
        let mut dst = Vec::new();
        encode(&mut dst, 0, 5, u32::MAX as usize + 1);
        assert_eq!(decode_all(&dst, 5), Err(HpackError::IntegerOverflow));
        // Five continuation bytes of all ones exceed u32::MAX.
        assert_eq!(
            decode_all(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f], 5),
            Err(HpackError::IntegerOverflow)
        );
        // A sixth continuation byte is rejected even when the value would be small.
        assert_eq!(
            decode_all(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], 5),
            Err(HpackError::IntegerOverflow)
        );
        // Zero padding within five continuation bytes is allowed.
        assert_eq!(decode_all(&[0x1f, 0x81, 0x80, 0x80, 0x80, 0x00], 5), Ok(32));
    }

    #[test]
    fn decode_stops_after_the_integer() {
        let mut input: &[u8] = &[0x1f, 0x9a, 0x0a, 0xaa, 0xbb];
        assert_eq!(decode(&mut input, 5), Ok(1337));
        assert_eq!(input, &[0xaa, 0xbb]);
    }
}

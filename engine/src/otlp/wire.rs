//! A zero-copy protobuf wire scanner: tags, varints, fixed-width values and length-delimited
//! slices borrowed from the input. It knows nothing of OTLP; `schema` and `split` give the
//! fields meaning.
//!
//! Architecture Invariant: every slice handed out lies inside the scanned buffer, every
//! offset in an error is absolute (counted from the start of the outermost message), and no
//! input makes the scanner panic or recurse deeper than `NESTING_DEPTH_MAX`.

use std::fmt;

use super::{OtlpError, OtlpErrorKind, NESTING_DEPTH_MAX};

/// Protobuf wire types (the low three bits of a tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireType {
    Varint,
    Fixed64,
    LengthDelimited,
    StartGroup,
    EndGroup,
    Fixed32,
}

impl WireType {
    fn from_bits(bits: u64) -> Option<WireType> {
        match bits {
            0 => Some(WireType::Varint),
            1 => Some(WireType::Fixed64),
            2 => Some(WireType::LengthDelimited),
            3 => Some(WireType::StartGroup),
            4 => Some(WireType::EndGroup),
            5 => Some(WireType::Fixed32),
            _ => None,
        }
    }
}

impl fmt::Display for WireType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireType::Varint => "varint",
            WireType::Fixed64 => "fixed64",
            WireType::LengthDelimited => "length-delimited",
            WireType::StartGroup => "start-group",
            WireType::EndGroup => "end-group",
            WireType::Fixed32 => "fixed32",
        })
    }
}

/// One decoded field value. Varints, fixed32 values and groups are checked and skipped
/// without a value: no field this crate reads is one of them.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Varint,
    Fixed64(u64),
    /// `at` is the absolute offset of `bytes[0]`, the origin for scanning `bytes` further.
    Bytes {
        bytes: &'a [u8],
        at: usize,
    },
    Group,
    Fixed32,
}

impl Value<'_> {
    pub fn wire_type(&self) -> WireType {
        match self {
            Value::Varint => WireType::Varint,
            Value::Fixed64(_) => WireType::Fixed64,
            Value::Bytes { .. } => WireType::LengthDelimited,
            Value::Group => WireType::StartGroup,
            Value::Fixed32 => WireType::Fixed32,
        }
    }
}

/// One field: its number, the absolute offset of its tag, and its value.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    pub number: u32,
    pub at: usize,
    pub value: Value<'a>,
}

impl<'a> Field<'a> {
    /// The field's bytes and their absolute offset, or a wrong-wire-type error.
    pub fn bytes(&self) -> Result<(&'a [u8], usize), OtlpError> {
        match self.value {
            Value::Bytes { bytes, at } => Ok((bytes, at)),
            other => Err(self.wrong_wire_type(WireType::LengthDelimited, other)),
        }
    }

    pub fn fixed64(&self) -> Result<u64, OtlpError> {
        match self.value {
            Value::Fixed64(value) => Ok(value),
            other => Err(self.wrong_wire_type(WireType::Fixed64, other)),
        }
    }

    /// Checks that the field has the wire type `expected`.
    pub fn expect(&self, expected: WireType) -> Result<(), OtlpError> {
        if self.value.wire_type() == expected {
            Ok(())
        } else {
            Err(self.wrong_wire_type(expected, self.value))
        }
    }

    fn wrong_wire_type(&self, expected: WireType, got: Value<'_>) -> OtlpError {
        OtlpError::new(OtlpErrorKind::WrongWireType {
            expected,
            got: got.wire_type(),
            at: self.at,
        })
    }
}

/// Walks the fields of one message. `origin` is the absolute offset of `buf[0]`.
pub struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
    origin: usize,
}

/// What `next_raw` found: a field, or the end-group tag that closes an enclosing group.
enum Raw<'a> {
    Field(Field<'a>),
    EndGroup { number: u32, at: usize },
}

impl<'a> Scanner<'a> {
    pub fn new(buf: &'a [u8], origin: usize) -> Scanner<'a> {
        Scanner {
            buf,
            pos: 0,
            origin,
        }
    }

    /// The next field of a message nested `depth` levels below the outermost one (which is
    /// at depth 0); `None` at the end of the message. Unknown groups are skipped here and
    /// count as one more level of nesting.
    pub fn next_field(&mut self, depth: u32) -> Result<Option<Field<'a>>, OtlpError> {
        match self.next_raw(depth)? {
            None => Ok(None),
            Some(Raw::Field(field)) => Ok(Some(field)),
            Some(Raw::EndGroup { number, at }) => {
                Err(OtlpError::new(OtlpErrorKind::UnexpectedEndGroup {
                    field: number,
                    at,
                }))
            }
        }
    }

    #[inline]
    fn next_raw(&mut self, depth: u32) -> Result<Option<Raw<'a>>, OtlpError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let at = self.origin + self.pos;
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(OtlpError::new(OtlpErrorKind::InvalidFieldNumber {
                number,
                at,
            }));
        }
        let number = u32::try_from(number).unwrap_or(u32::MAX);
        let Some(wire_type) = WireType::from_bits(key & 0x07) else {
            return Err(OtlpError::new(OtlpErrorKind::InvalidWireType {
                // The mask leaves three bits.
                wire_type: (key & 0x07) as u8,
                at,
            }));
        };
        let value = match wire_type {
            WireType::Varint => {
                self.varint()?;
                Value::Varint
            }
            WireType::Fixed64 => {
                let bytes = self.take(8, number, wire_type, at)?;
                let mut word = [0u8; 8];
                word.copy_from_slice(bytes);
                Value::Fixed64(u64::from_le_bytes(word))
            }
            WireType::Fixed32 => {
                self.take(4, number, wire_type, at)?;
                Value::Fixed32
            }
            WireType::LengthDelimited => {
                let length = self.varint()?;
                let value_at = self.origin + self.pos;
                let bytes = self.take(length, number, wire_type, at)?;
                Value::Bytes {
                    bytes,
                    at: value_at,
                }
            }
            WireType::StartGroup => {
                self.skip_group(number, at, depth + 1)?;
                Value::Group
            }
            WireType::EndGroup => return Ok(Some(Raw::EndGroup { number, at })),
        };
        Ok(Some(Raw::Field(Field { number, at, value })))
    }

    /// Skips the body of group `number` (whose start tag is at `at`) up to its end tag.
    fn skip_group(&mut self, number: u32, at: usize, depth: u32) -> Result<(), OtlpError> {
        if depth > NESTING_DEPTH_MAX {
            return Err(OtlpError::new(OtlpErrorKind::TooDeep { at }));
        }
        loop {
            match self.next_raw(depth)? {
                None => {
                    return Err(OtlpError::new(OtlpErrorKind::UnterminatedGroup {
                        field: number,
                        at,
                    }))
                }
                Some(Raw::EndGroup {
                    number: end,
                    at: end_at,
                }) => {
                    if end == number {
                        return Ok(());
                    }
                    return Err(OtlpError::new(OtlpErrorKind::UnexpectedEndGroup {
                        field: end,
                        at: end_at,
                    }));
                }
                Some(Raw::Field(_)) => {}
            }
        }
    }

    /// The next `length` bytes, or a truncation error naming field `number` at `at`.
    fn take(
        &mut self,
        length: u64,
        number: u32,
        wire_type: WireType,
        at: usize,
    ) -> Result<&'a [u8], OtlpError> {
        let left = self.buf.len() - self.pos;
        let slice = usize::try_from(length)
            .ok()
            .and_then(|length| self.buf.get(self.pos..self.pos.checked_add(length)?));
        match slice {
            Some(slice) => {
                self.pos += slice.len();
                Ok(slice)
            }
            None => Err(OtlpError::new(OtlpErrorKind::Truncated {
                field: number,
                wire_type,
                at,
                declared: length,
                left,
            })),
        }
    }

    /// A base-128 varint, with prost's rules: at most 10 bytes, and the tenth may only
    /// carry the top bit of a u64.
    #[inline]
    fn varint(&mut self) -> Result<u64, OtlpError> {
        // Tags and most lengths fit one byte.
        if let Some(&byte) = self.buf.get(self.pos) {
            if byte < 0x80 {
                self.pos += 1;
                return Ok(u64::from(byte));
            }
        }
        self.varint_slow()
    }

    #[inline(never)]
    fn varint_slow(&mut self) -> Result<u64, OtlpError> {
        let at = self.origin + self.pos;
        let mut value = 0u64;
        for index in 0..10 {
            let Some(&byte) = self.buf.get(self.pos + index) else {
                return Err(OtlpError::new(OtlpErrorKind::TruncatedVarint { at }));
            };
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte < 0x80 {
                if index == 9 && byte > 1 {
                    break;
                }
                self.pos += index + 1;
                return Ok(value);
            }
        }
        Err(OtlpError::new(OtlpErrorKind::VarintTooLong { at }))
    }
}

/// Bytes needed to encode `value` as a varint.
pub fn varint_len(value: u64) -> usize {
    // Seven bits per byte, rounded up; zero takes one byte.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

pub fn put_varint(mut value: u64, dst: &mut Vec<u8>) {
    while value >= 0x80 {
        // Truncation keeps the low seven bits plus the continuation bit.
        dst.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    dst.push(value as u8);
}

/// Bytes of a length-delimited field with a one-byte tag (field numbers 1 to 15) and a body
/// of `body_len` bytes.
pub fn field_len(body_len: usize) -> usize {
    1 + varint_len(body_len as u64) + body_len
}

/// Writes the one-byte tag of length-delimited field `number` and the length `body_len`.
pub fn put_len_prefix(number: u8, body_len: usize, dst: &mut Vec<u8>) {
    assert!((1..=15).contains(&number));
    dst.push((number << 3) | 2);
    put_varint(body_len as u64, dst);
}

/// Writes a whole length-delimited field with a one-byte tag.
pub fn put_len_field(number: u8, body: &[u8], dst: &mut Vec<u8>) {
    put_len_prefix(number, body.len(), dst);
    dst.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths_match_prost() {
        for value in [0u64, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            assert_eq!(
                varint_len(value),
                prost::encoding::encoded_len_varint(value)
            );
            let mut encoded = Vec::new();
            put_varint(value, &mut encoded);
            assert_eq!(encoded.len(), varint_len(value));
            let mut scanner = Scanner::new(&encoded, 0);
            assert_eq!(scanner.varint().ok(), Some(value));
        }
    }
}

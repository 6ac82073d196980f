//! A protobuf wire-format scanner that locates the patchable fields of an encoded
//! `ExportTraceServiceRequest`.
//!
//! Paths walked (field numbers from opentelemetry-proto):
//!
//! ```text
//! ExportTraceServiceRequest.resource_spans (1, LEN)
//!   ResourceSpans.scope_spans (2, LEN)
//!     ScopeSpans.spans (2, LEN)
//!       Span.trace_id (1, LEN 16)      Span.span_id (2, LEN 8)   Span.parent_span_id (4, LEN 8)
//!       Span.start_time_unix_nano (7, I64)   Span.end_time_unix_nano (8, I64)
//!       Span.events (11, LEN)
//!         Event.time_unix_nano (1, I64)
//! ```
//!
//! Every other field is skipped by its wire type. All offsets are of the first value byte,
//! relative to the start of the scanned buffer. The scanner never panics on hostile input: every
//! malformed byte sequence is a [`WalkError`].

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fmt;

/// Wire types of the protobuf encoding.
const WIRE_VARINT: u8 = 0;
const WIRE_I64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_I32: u8 = 5;

/// Longest encoding of a 64-bit varint.
const VARINT_BYTES_MAX: usize = 10;

pub const TRACE_ID_BYTES: usize = 16;
pub const SPAN_ID_BYTES: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireValue {
    Varint(u64),
    I64(u64),
    I32(u32),
    /// A length-delimited value occupying `start..end` of the buffer.
    Len {
        start: usize,
        end: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub number: u32,
    pub value: WireValue,
    /// Offset of the first value byte.
    pub value_offset: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalkError {
    Truncated {
        offset: usize,
    },
    VarintTooLong {
        offset: usize,
    },
    UnsupportedWireType {
        offset: usize,
        wire_type: u8,
    },
    FieldNumberZero {
        offset: usize,
    },
    WrongIdLength {
        offset: usize,
        len: usize,
        expected: usize,
    },
    WrongWireType {
        offset: usize,
        field: u32,
    },
}

impl fmt::Display for WalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalkError::Truncated { offset } => write!(f, "truncated field at byte {offset}"),
            WalkError::VarintTooLong { offset } => {
                write!(f, "varint longer than 10 bytes at byte {offset}")
            }
            WalkError::UnsupportedWireType { offset, wire_type } => {
                write!(f, "unsupported wire type {wire_type} at byte {offset}")
            }
            WalkError::FieldNumberZero { offset } => write!(f, "field number 0 at byte {offset}"),
            WalkError::WrongIdLength {
                offset,
                len,
                expected,
            } => write!(f, "ID of {len} bytes at byte {offset}, expected {expected}"),
            WalkError::WrongWireType { offset, field } => {
                write!(
                    f,
                    "field {field} has an unexpected wire type at byte {offset}"
                )
            }
        }
    }
}

impl std::error::Error for WalkError {}

fn read_varint(buf: &[u8], pos: usize) -> Result<(u64, usize), WalkError> {
    let mut value = 0u64;
    for i in 0..VARINT_BYTES_MAX {
        let byte = *buf
            .get(pos + i)
            .ok_or(WalkError::Truncated { offset: pos })?;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, pos + i + 1));
        }
    }
    Err(WalkError::VarintTooLong { offset: pos })
}

fn read_fixed<const N: usize>(buf: &[u8], pos: usize) -> Result<[u8; N], WalkError> {
    let bytes = buf
        .get(pos..pos + N)
        .ok_or(WalkError::Truncated { offset: pos })?;
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    Ok(out)
}

/// Reads one field starting at `pos`, not past `end`. Returns the field and the position after.
pub fn read_field(buf: &[u8], pos: usize, end: usize) -> Result<(Field, usize), WalkError> {
    let buf = buf.get(..end).ok_or(WalkError::Truncated { offset: pos })?;
    let (key, after_key) = read_varint(buf, pos)?;
    let wire_type = (key & 7) as u8;
    let number = u32::try_from(key >> 3).map_err(|_| WalkError::FieldNumberZero { offset: pos })?;
    if number == 0 {
        return Err(WalkError::FieldNumberZero { offset: pos });
    }
    let (value, next) = match wire_type {
        WIRE_VARINT => {
            let (v, next) = read_varint(buf, after_key)?;
            (WireValue::Varint(v), next)
        }
        WIRE_I64 => (
            WireValue::I64(u64::from_le_bytes(read_fixed::<8>(buf, after_key)?)),
            after_key + 8,
        ),
        WIRE_I32 => (
            WireValue::I32(u32::from_le_bytes(read_fixed::<4>(buf, after_key)?)),
            after_key + 4,
        ),
        WIRE_LEN => {
            let (len, start) = read_varint(buf, after_key)?;
            let len = usize::try_from(len).map_err(|_| WalkError::Truncated { offset: pos })?;
            let end = start
                .checked_add(len)
                .filter(|&e| e <= buf.len())
                .ok_or(WalkError::Truncated { offset: pos })?;
            (WireValue::Len { start, end }, end)
        }
        other => {
            return Err(WalkError::UnsupportedWireType {
                offset: pos,
                wire_type: other,
            })
        }
    };
    let value_offset = match value {
        WireValue::Len { start, .. } => start,
        _ => after_key,
    };
    Ok((
        Field {
            number,
            value,
            value_offset,
        },
        next,
    ))
}

/// Calls `visit` for every field of the message occupying `start..end`.
pub fn for_each_field(
    buf: &[u8],
    start: usize,
    end: usize,
    mut visit: impl FnMut(Field) -> Result<(), WalkError>,
) -> Result<(), WalkError> {
    let mut pos = start;
    while pos < end {
        let (field, next) = read_field(buf, pos, end)?;
        visit(field)?;
        pos = next;
    }
    Ok(())
}

/// Where the patchable fields of one span sit in the encoded request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanOffsets {
    pub trace_id: Option<usize>,
    pub span_id: Option<usize>,
    pub parent_span_id: Option<usize>,
    pub start_time: Option<usize>,
    pub end_time: Option<usize>,
    pub event_times: Vec<usize>,
}

fn len_of(field: &Field) -> Result<(usize, usize), WalkError> {
    match field.value {
        WireValue::Len { start, end } => Ok((start, end)),
        _ => Err(WalkError::WrongWireType {
            offset: field.value_offset,
            field: field.number,
        }),
    }
}

fn id_at(field: &Field, expected: usize) -> Result<Option<usize>, WalkError> {
    let (start, end) = len_of(field)?;
    match end - start {
        0 => Ok(None),
        len if len == expected => Ok(Some(start)),
        len => Err(WalkError::WrongIdLength {
            offset: start,
            len,
            expected,
        }),
    }
}

fn i64_at(field: &Field) -> Result<usize, WalkError> {
    match field.value {
        WireValue::I64(_) => Ok(field.value_offset),
        _ => Err(WalkError::WrongWireType {
            offset: field.value_offset,
            field: field.number,
        }),
    }
}

fn span_offsets(buf: &[u8], start: usize, end: usize) -> Result<SpanOffsets, WalkError> {
    let mut span = SpanOffsets::default();
    for_each_field(buf, start, end, |field| {
        match field.number {
            1 => span.trace_id = id_at(&field, TRACE_ID_BYTES)?,
            2 => span.span_id = id_at(&field, SPAN_ID_BYTES)?,
            4 => span.parent_span_id = id_at(&field, SPAN_ID_BYTES)?,
            7 => span.start_time = Some(i64_at(&field)?),
            8 => span.end_time = Some(i64_at(&field)?),
            11 => {
                let (event_start, event_end) = len_of(&field)?;
                for_each_field(buf, event_start, event_end, |event_field| {
                    if event_field.number == 1 {
                        span.event_times.push(i64_at(&event_field)?);
                    }
                    Ok(())
                })?;
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(span)
}

/// Finds every span of an encoded `ExportTraceServiceRequest`, in encoding order.
pub fn request_span_offsets(buf: &[u8]) -> Result<Vec<SpanOffsets>, WalkError> {
    let mut spans = Vec::new();
    for_each_field(buf, 0, buf.len(), |resource_spans| {
        if resource_spans.number != 1 {
            return Ok(());
        }
        let (rs_start, rs_end) = len_of(&resource_spans)?;
        for_each_field(buf, rs_start, rs_end, |scope_spans| {
            if scope_spans.number != 2 {
                return Ok(());
            }
            let (ss_start, ss_end) = len_of(&scope_spans)?;
            for_each_field(buf, ss_start, ss_end, |span| {
                if span.number != 2 {
                    return Ok(());
                }
                let (s_start, s_end) = len_of(&span)?;
                spans.push(span_offsets(buf, s_start, s_end)?);
                Ok(())
            })
        })
    })?;
    Ok(spans)
}

#[cfg(test)]
#[expect(
    clippy::indexing_slicing,
    reason = "tests index buffers they just built"
)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{span::Event, ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    fn request() -> ExportTraceServiceRequest {
        let span = |id: u8, parent: Option<u8>| Span {
            trace_id: vec![7; 16],
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: format!("span-{id}"),
            start_time_unix_nano: 1_000 + u64::from(id),
            end_time_unix_nano: 2_000 + u64::from(id),
            events: vec![Event {
                time_unix_nano: 1_500,
                name: "e".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span(1, None), span(2, Some(1))],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn finds_every_field_of_every_span() {
        let bytes = request().encode_to_vec();
        let spans = request_span_offsets(&bytes).expect("walks");
        assert_eq!(spans.len(), 2);
        for (i, span) in spans.iter().enumerate() {
            let id = i as u8 + 1;
            let at = |o: Option<usize>, n: usize| &bytes[o.expect("present")..][..n];
            assert_eq!(at(span.trace_id, 16), &[7; 16]);
            assert_eq!(at(span.span_id, 8), &[id; 8]);
            let start = u64::from_le_bytes(at(span.start_time, 8).try_into().expect("8"));
            assert_eq!(start, 1_000 + u64::from(id));
            let end = u64::from_le_bytes(at(span.end_time, 8).try_into().expect("8"));
            assert_eq!(end, 2_000 + u64::from(id));
            assert_eq!(span.event_times.len(), 1);
        }
        assert_eq!(spans[0].parent_span_id, None);
        assert_eq!(
            &bytes[spans[1].parent_span_id.expect("parent")..][..8],
            &[1; 8]
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = request().encode_to_vec();
        for cut in 0..bytes.len() {
            // Cutting at a field boundary is a valid shorter message; anything else must be an
            // error. Either way, no panic.
            let _ = request_span_offsets(&bytes[..cut]);
        }
        assert!(matches!(
            request_span_offsets(&bytes[..bytes.len() - 1]),
            Err(WalkError::Truncated { .. })
        ));
    }

    #[test]
    fn rejects_malformed_input() {
        assert_eq!(
            request_span_offsets(&[0x00]),
            Err(WalkError::FieldNumberZero { offset: 0 })
        );
        assert_eq!(
            request_span_offsets(&[0x0b]),
            Err(WalkError::UnsupportedWireType {
                offset: 0,
                wire_type: 3
            })
        );
        assert_eq!(
            request_span_offsets(&[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ]),
            Err(WalkError::VarintTooLong { offset: 1 })
        );
        // resource_spans as a varint: wrong wire type on a path we follow.
        assert!(matches!(
            request_span_offsets(&[0x08, 0x01]),
            Err(WalkError::WrongWireType { field: 1, .. })
        ));
        // A 3-byte trace ID.
        let bad = [0x0a, 0x09, 0x12, 0x07, 0x12, 0x05, 0x0a, 0x03, 1, 2, 3];
        assert!(matches!(
            request_span_offsets(&bad),
            Err(WalkError::WrongIdLength { len: 3, .. })
        ));
    }

    #[test]
    fn pseudo_random_bytes_never_panic() {
        let mut rng = crate::rng::Rng::new(3);
        let base = request().encode_to_vec();
        for _ in 0..5_000 {
            let mut bytes = base.clone();
            for _ in 0..rng.range(1, 4) {
                let i = rng.index(bytes.len());
                bytes[i] = rng.next_u64() as u8;
            }
            let _ = request_span_offsets(&bytes);
        }
    }
}

//! Packed spans records: a trace's payload with each `Resource` and `InstrumentationScope`
//! written once per segment and referenced, instead of once per trace.
//!
//! An export request holds a resource once per `ResourceSpans` and a scope once per
//! `ScopeSpans`, but `split_export` gives every trace its own copies (a payload must stand
//! alone), so a plain record repeats a ~450-byte resource and a ~50-byte scope for every
//! trace of every service a request touches: 162 of the 595 bytes written per span with the
//! loadgen's traffic. A write (one group commit's buffer) therefore first defines, in
//! fragment records, the fragments it uses that its segment has not defined yet, then refers
//! to them by number:
//!
//! ```text
//! fragment record body:  version = 1 | kind = RECORD_KIND_FRAGMENT | id: u32 LE | bytes
//! packed spans record:   a spans record (layout on `RecordRef`) with kind
//!                        RECORD_KIND_SPANS_PACKED and this payload in place of the plain one:
//! packed payload = { op }+       the plain payload is the concatenation of the ops
//! op = varint(len << 1)  bytes[len]      literal bytes of the plain payload
//!    | varint(id << 1 | 1)               the bytes of fragment `id`
//! ```
//!
//! A fragment is a whole protobuf field of the plain payload: a `ResourceSpans`'s leading
//! `Resource` field (tag, length, message) or a `ScopeSpans`'s leading scope field, so the
//! lengths around it are unchanged and expanding is plain concatenation, byte for byte.
//!
//! Ids are numbered from 1 within a segment, and every definition lies before its uses in
//! the file, so a torn tail can cut uses but never leave a use without its definition. The
//! writer keeps one [`Fragments`] table per open segment; a write that lands in another
//! segment than the one it was encoded for (a cut rolled the WAL meanwhile) is encoded again
//! with a fresh table, and after a failed write the segment's table starts over (ids are then
//! defined again further on). Replay keeps the last definition of each id in the segment.
//!
//! Fields of at most [`FRAGMENT_INLINE_BYTES_MAX`] bytes stay literal, and a record is
//! written plain whenever packing would not make it smaller.

use std::ops::Range;

use super::{
    encode_record_kind, RecordRef, WalError, RECORD_BODY_BYTES_MIN, RECORD_FRAME_BYTES,
    RECORD_KIND_FRAGMENT, RECORD_KIND_SPANS, RECORD_KIND_SPANS_PACKED, RECORD_VERSION,
};
use crate::hash::PrehashedMap;

/// Fields this small stay literal: a fragment record must pass the record length check
/// (`RECORD_BODY_BYTES_MIN`), and a reference with the literal split around it costs ~4 bytes.
pub const FRAGMENT_INLINE_BYTES_MAX: usize = 33;
/// Version, kind, id: the fragment record body before the fragment's bytes.
pub const FRAGMENT_FIXED_BODY_BYTES: usize = 1 + 1 + 4;
/// Fragments one segment defines at most; past it the rest stay literal.
pub const FRAGMENTS_PER_SEGMENT_MAX: u32 = 1 << 20;
/// Bytes of fragments one segment's table holds at most (the writer keeps a copy of each).
pub const FRAGMENT_TABLE_BYTES_MAX: usize = 16 << 20;

// Every fragment record is long enough to pass the record length check.
const _: () =
    assert!(FRAGMENT_FIXED_BODY_BYTES + FRAGMENT_INLINE_BYTES_MAX + 1 >= RECORD_BODY_BYTES_MIN);

/// The fragments one segment has defined so far, for the writes appended to it.
#[derive(Debug, Default)]
pub struct Fragments {
    /// xxh3 of the fragment's bytes -> (id, the bytes).
    by_hash: PrehashedMap<Vec<(u32, Box<[u8]>)>>,
    next_id: u32,
    /// Bytes held in `by_hash`.
    table_bytes: usize,
    /// Scratch for one packed payload.
    packed: Vec<u8>,
    /// Scratch for one payload's pieces.
    pieces: Vec<Piece>,
}

impl Fragments {
    /// The id of `fragment`, defining it in `dst` first if the segment has not. `None` when
    /// the segment has defined as many as it may.
    fn id_for(&mut self, fragment: &[u8], dst: &mut Vec<u8>) -> Option<u32> {
        debug_assert!(fragment.len() > FRAGMENT_INLINE_BYTES_MAX);
        let hash = xxhash_rust::xxh3::xxh3_64(fragment);
        if let Some(known) = self.by_hash.get(&hash) {
            for (id, bytes) in known {
                if bytes.as_ref() == fragment {
                    return Some(*id);
                }
            }
        }
        if self.next_id >= FRAGMENTS_PER_SEGMENT_MAX
            || self.table_bytes + fragment.len() > FRAGMENT_TABLE_BYTES_MAX
        {
            return None;
        }
        self.next_id += 1;
        let id = self.next_id;
        encode_fragment_record(id, fragment, dst);
        self.table_bytes += fragment.len();
        self.by_hash
            .entry(hash)
            .or_default()
            .push((id, fragment.into()));
        Some(id)
    }
}

/// A run of a plain payload: literal bytes, or a field worth a reference.
#[derive(Debug, Clone)]
enum Piece {
    Literal(Range<usize>),
    Fragment(Range<usize>),
}

/// Appends a fragment record to `dst`.
fn encode_fragment_record(id: u32, fragment: &[u8], dst: &mut Vec<u8>) {
    let body_len = FRAGMENT_FIXED_BODY_BYTES + fragment.len();
    let start = dst.len();
    // The caller's payload limit keeps every fragment far below u32::MAX.
    dst.extend_from_slice(&(body_len as u32).to_le_bytes());
    dst.extend_from_slice(&[0; 4]);
    let body_start = dst.len();
    dst.push(RECORD_VERSION);
    dst.push(RECORD_KIND_FRAGMENT);
    dst.extend_from_slice(&id.to_le_bytes());
    dst.extend_from_slice(fragment);
    let crc = crc32fast::hash(dst.get(body_start..).unwrap_or_default());
    if let Some(field) = dst.get_mut(start + 4..body_start) {
        field.copy_from_slice(&crc.to_le_bytes());
    }
    debug_assert_eq!(dst.len() - start, RECORD_FRAME_BYTES + body_len);
}

/// Appends `rec` to `dst` packed (fragments defined in `dst` before it as needed), or plain
/// when packing would not make it smaller or the payload is not the shape `split_export`
/// writes. Returns the record's range in `dst` (fragment records before it excluded).
pub fn encode_packed_record(
    rec: &RecordRef<'_>,
    fragments: &mut Fragments,
    dst: &mut Vec<u8>,
) -> Range<usize> {
    let mut pieces = std::mem::take(&mut fragments.pieces);
    pieces.clear();
    let plain = !split_payload(rec.payload, &mut pieces)
        || !pieces
            .iter()
            .any(|piece| matches!(piece, Piece::Fragment(_)));
    if plain {
        fragments.pieces = pieces;
        let start = dst.len();
        encode_record_kind(rec, RECORD_KIND_SPANS, rec.payload, dst);
        return start..dst.len();
    }
    let mut packed = std::mem::take(&mut fragments.packed);
    packed.clear();
    // A literal run waiting to be written (adjacent literals are merged).
    let mut literal: Option<Range<usize>> = None;
    let flush = |literal: &mut Option<Range<usize>>, packed: &mut Vec<u8>| {
        if let Some(range) = literal.take() {
            put_varint((range.len() as u64) << 1, packed);
            packed.extend_from_slice(rec.payload.get(range).unwrap_or_default());
        }
    };
    for piece in &pieces {
        let (range, id) = match piece {
            Piece::Literal(range) => (range.clone(), None),
            Piece::Fragment(range) => {
                let bytes = rec.payload.get(range.clone()).unwrap_or_default();
                (range.clone(), fragments.id_for(bytes, dst))
            }
        };
        match id {
            Some(id) => {
                flush(&mut literal, &mut packed);
                put_varint(u64::from(id) << 1 | 1, &mut packed);
            }
            None => {
                literal = Some(match literal {
                    Some(run) if run.end == range.start => run.start..range.end,
                    Some(run) => {
                        let mut pending = Some(run);
                        flush(&mut pending, &mut packed);
                        range
                    }
                    None => range,
                });
            }
        }
    }
    flush(&mut literal, &mut packed);
    let start = dst.len();
    if packed.len() < rec.payload.len() {
        encode_record_kind(rec, RECORD_KIND_SPANS_PACKED, &packed, dst);
    } else {
        encode_record_kind(rec, RECORD_KIND_SPANS, rec.payload, dst);
    }
    fragments.packed = packed;
    fragments.pieces = pieces;
    start..dst.len()
}

/// A length-delimited field at `at`: (tag byte, the field's whole range, its value's range).
fn field_at(bytes: &[u8], at: usize, end: usize) -> Option<(u8, Range<usize>, Range<usize>)> {
    let tag = *bytes.get(at)?;
    let (len, len_bytes) = read_varint(bytes.get(at + 1..end)?)?;
    let value_start = at + 1 + len_bytes;
    let value_end = value_start.checked_add(usize::try_from(len).ok()?)?;
    (value_end <= end).then_some((tag, at..value_end, value_start..value_end))
}

/// Cuts a plain payload (`{ 0x0A len ResourceSpans }+`, the layout on `TraceBatch`) into
/// literal runs and the fields worth a reference: each `ResourceSpans`'s leading `Resource`
/// field and each `ScopeSpans`'s leading scope field. False if the payload is not that
/// shape (it is then written plain).
fn split_payload(payload: &[u8], pieces: &mut Vec<Piece>) -> bool {
    let mut literal_start = 0usize;
    let fragment = |range: Range<usize>, literal_start: &mut usize, pieces: &mut Vec<Piece>| {
        if range.len() > FRAGMENT_INLINE_BYTES_MAX {
            if *literal_start < range.start {
                pieces.push(Piece::Literal(*literal_start..range.start));
            }
            *literal_start = range.end;
            pieces.push(Piece::Fragment(range));
        }
    };
    let mut at = 0usize;
    while at < payload.len() {
        let Some((0x0A, rs_field, rs)) = field_at(payload, at, payload.len()) else {
            return false;
        };
        let mut inner = rs.start;
        let mut first = true;
        while inner < rs.end {
            // Every field of a ResourceSpans in a plain payload is length-delimited
            // (resource 1, scope_spans 2, schema_url 3).
            let Some((tag, field, value)) = field_at(payload, inner, rs.end) else {
                return false;
            };
            if tag == 0x0A && first {
                fragment(field.clone(), &mut literal_start, pieces);
            } else if tag == 0x12 {
                if let Some((0x0A, scope, _)) = field_at(payload, value.start, value.end) {
                    fragment(scope, &mut literal_start, pieces);
                }
            }
            first = false;
            inner = field.end;
        }
        at = rs_field.end;
    }
    if literal_start < payload.len() {
        pieces.push(Piece::Literal(literal_start..payload.len()));
    }
    true
}

/// Rebuilds the plain payload of a packed one into `dst`, taking each referenced fragment's
/// bytes from `fragment(id)`.
pub fn expand<'r>(
    packed: &[u8],
    fragment: impl Fn(u32) -> Option<&'r [u8]>,
    dst: &mut Vec<u8>,
) -> Result<(), WalError> {
    let mut rest = packed;
    while !rest.is_empty() {
        let Some((op, op_bytes)) = read_varint(rest) else {
            return Err(WalError::PackedPayload {
                reason: "truncated op",
            });
        };
        rest = rest.get(op_bytes..).unwrap_or_default();
        if op & 1 == 1 {
            let id = u32::try_from(op >> 1).map_err(|_| WalError::PackedPayload {
                reason: "fragment id out of range",
            })?;
            let Some(bytes) = fragment(id) else {
                return Err(WalError::UnknownFragment { id });
            };
            dst.extend_from_slice(bytes);
        } else {
            let len = usize::try_from(op >> 1).unwrap_or(usize::MAX);
            let Some(bytes) = rest.get(..len) else {
                return Err(WalError::PackedPayload {
                    reason: "literal longer than the payload",
                });
            };
            dst.extend_from_slice(bytes);
            rest = rest.get(len..).unwrap_or_default();
        }
    }
    Ok(())
}

/// A fragment record's id and bytes, from its body after version and kind.
pub(super) fn decode_fragment_body(rest: &[u8]) -> Option<(u32, &[u8])> {
    let (id, fragment) = rest.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*id), fragment))
}

fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (index, byte) in bytes.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7F) << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

fn put_varint(mut value: u64, dst: &mut Vec<u8>) {
    while value >= 0x80 {
        dst.push((value as u8) | 0x80);
        value >>= 7;
    }
    dst.push(value as u8);
}

#[cfg(test)]
fn varint_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failure"
)]
mod tests {
    use super::super::{encode_segment_header, replay_segment, ReplayEnd};
    use super::*;
    use crate::ids::{Tenant, TraceId};
    use prost::Message;

    use opentelemetry_proto::tonic::common::v1::{
        any_value, AnyValue, InstrumentationScope, KeyValue,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn resource(service: &str, padding: usize) -> Resource {
        Resource {
            attributes: vec![
                KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(service.into())),
                    }),
                    ..Default::default()
                },
                KeyValue {
                    key: "host.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("h".repeat(padding))),
                    }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    /// A plain payload as `split_export` writes it: `{ 0x0A len ResourceSpans }+`.
    fn payload(trace: u8, resources: &[Option<Resource>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (index, resource) in resources.iter().enumerate() {
            let rs = ResourceSpans {
                resource: resource.clone(),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: format!("io.opentelemetry.test-library-{}", index % 2),
                        version: "1.2.3".into(),
                        ..Default::default()
                    }),
                    spans: vec![Span {
                        trace_id: vec![trace; 16],
                        span_id: vec![index as u8 + 1; 8],
                        name: format!("span {index}"),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                schema_url: if index % 2 == 0 {
                    "https://s".into()
                } else {
                    String::new()
                },
            };
            out.push(0x0A);
            put_varint(rs.encoded_len() as u64, &mut out);
            rs.encode(&mut out).unwrap();
        }
        out
    }

    fn record<'a>(tenant: &'a Tenant, trace: u8, payload: &'a [u8]) -> RecordRef<'a> {
        RecordRef {
            tenant,
            trace_id: TraceId([trace; 16]),
            span_count: 3,
            start_unix_nanos_min: 10,
            end_unix_nanos_max: 20,
            payload,
        }
    }

    /// Writes `writes` (each a list of payloads) as separate buffers into one segment and
    /// replays it: every payload comes back byte for byte, in order. `per_segment`: one
    /// table for all writes (as the writer keeps it); else a fresh one per write (as after
    /// a failed write).
    fn check_round_trip(writes: &[Vec<Vec<u8>>], per_segment: bool) -> Vec<u8> {
        let tenant = Tenant::parse("single-tenant").unwrap();
        let mut segment = Vec::new();
        encode_segment_header(0, 1, &mut segment);
        let mut expected = Vec::new();
        let mut resources = Fragments::default();
        for write in writes {
            if !per_segment {
                resources = Fragments::default();
            }
            let mut buffer = Vec::new();
            for (index, payload) in write.iter().enumerate() {
                let range = encode_packed_record(
                    &record(&tenant, index as u8, payload),
                    &mut resources,
                    &mut buffer,
                );
                expected.push(((segment.len() + range.start) as u64, payload.clone()));
            }
            segment.extend_from_slice(&buffer);
        }
        let replay = replay_segment(&segment);
        assert_eq!(replay.end, ReplayEnd::Clean);
        assert_eq!(replay.records.len(), expected.len());
        for (record, (offset, payload)) in replay.records.iter().zip(&expected) {
            assert_eq!(record.offset, *offset);
            assert_eq!(record.payload.bytes(&segment), payload.as_slice());
        }
        segment
    }

    #[test]
    fn packed_payloads_expand_to_the_plain_bytes() {
        let big = |s: &str| Some(resource(s, 200));
        let small = Some(resource("s", 1));
        let writes = vec![
            vec![
                payload(1, &[big("a"), big("b")]),
                payload(2, &[big("a"), None, small.clone()]),
                payload(3, &[big("b"), big("a")]),
            ],
            // A second write numbers its resources again, in another order.
            vec![payload(4, &[big("c"), big("a")]), payload(5, &[big("a")])],
            vec![payload(6, &[None]), payload(7, &[small])],
        ];
        let plain: usize = writes.iter().flatten().map(Vec::len).sum();
        let per_write = check_round_trip(&writes, false);
        let per_segment = check_round_trip(&writes, true);
        assert!(
            per_segment.len() < per_write.len() && per_write.len() < plain,
            "{} bytes with one table, {} with one per write, {plain} payload bytes",
            per_segment.len(),
            per_write.len()
        );
    }

    #[test]
    fn a_torn_write_keeps_what_its_definitions_cover() {
        let big = |s: &str| Some(resource(s, 300));
        let tenant = Tenant::parse("single-tenant").unwrap();
        let payloads = [payload(1, &[big("a")]), payload(2, &[big("a"), big("b")])];
        let mut segment = Vec::new();
        encode_segment_header(0, 1, &mut segment);
        let mut resources = Fragments::default();
        let mut buffer = Vec::new();
        for (index, p) in payloads.iter().enumerate() {
            encode_packed_record(
                &record(&tenant, index as u8, p),
                &mut resources,
                &mut buffer,
            );
        }
        segment.extend_from_slice(&buffer);
        for cut in SEGMENT_START..segment.len() {
            let replay = replay_segment(&segment[..cut]);
            assert!(
                matches!(replay.end, ReplayEnd::TornTail { .. } | ReplayEnd::Clean),
                "cut at {cut}: {:?}",
                replay.end
            );
            for (record, payload) in replay.records.iter().zip(&payloads) {
                assert_eq!(record.payload.bytes(&segment), payload.as_slice());
            }
        }
    }

    const SEGMENT_START: usize = super::super::SEGMENT_HEADER_BYTES;

    #[test]
    fn a_use_without_its_definition_is_corruption() {
        let tenant = Tenant::parse("single-tenant").unwrap();
        let p = payload(1, &[Some(resource("a", 300))]);
        let mut resources = Fragments::default();
        let mut buffer = Vec::new();
        let range = encode_packed_record(&record(&tenant, 1, &p), &mut resources, &mut buffer);
        let mut segment = Vec::new();
        encode_segment_header(0, 1, &mut segment);
        // The spans record alone, then another so that the failure is not at the tail.
        segment.extend_from_slice(&buffer[range.clone()]);
        segment.extend_from_slice(&buffer[range]);
        let replay = replay_segment(&segment);
        assert!(replay.records.is_empty());
        match replay.end {
            ReplayEnd::Corrupt { offset, reason } => {
                assert_eq!(offset, SEGMENT_START as u64);
                assert!(reason.contains("fragment 1"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn expand_refuses_bad_ops() {
        let fragment = |id: u32| (id == 1).then_some(&b"\x0a\x01z"[..]);
        let mut out = Vec::new();
        assert!(expand(&[0x80], fragment, &mut out).is_err());
        assert!(expand(&[4 << 1, b'a'], fragment, &mut out).is_err());
        assert_eq!(
            expand(&[2 << 1 | 1], fragment, &mut out),
            Err(WalError::UnknownFragment { id: 2 })
        );
        out.clear();
        expand(
            &[2 << 1, b'a', b'b', 1 << 1 | 1, 1 << 1, b'c'],
            fragment,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, b"ab\x0a\x01zc");
    }

    #[test]
    fn varints() {
        for value in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(value, &mut out);
            assert_eq!(out.len(), varint_len(value), "{value}");
            assert_eq!(read_varint(&out), Some((value, out.len())));
        }
    }
}

//! Packed spans records: a trace's payload with each `Resource` written once per segment and
//! referenced, instead of once per trace.
//!
//! An export request holds a resource once per `ResourceSpans`, but `split_export` gives every
//! trace its own copy (a payload must stand alone), so a plain record repeats a ~450-byte
//! resource for every trace of every service a request touches: 162 of the 595 bytes written
//! per span with the loadgen's traffic. A write (one group commit's buffer) therefore first
//! defines each resource it uses that its segment has not defined yet, in a resource
//! record, then refers to it by number:
//!
//! ```text
//! resource record body:  version = 1 | kind = RECORD_KIND_RESOURCE | id: u32 LE | Resource bytes
//! packed spans record:   a spans record (layout on `RecordRef`) with kind RECORD_KIND_SPANS_PACKED
//!                        and this payload in place of the plain one:
//! packed payload = { ref: u32 LE | len: u32 LE | bytes[len] }+    one entry per ResourceSpans
//!   ref = 0: bytes is the whole ResourceSpans message, as in the plain payload
//!   ref = n: bytes is the ResourceSpans message without its leading Resource field
//!            (field 1), which is the bytes of resource record n
//! ```
//!
//! Ids are numbered from 1 within a segment, and every definition lies before its uses in
//! the file, so a torn tail can cut uses but never leave a use without its definition. The
//! writer keeps one [`Resources`] per open segment; a write that lands in another segment
//! than the one it was encoded for (a cut rolled the WAL meanwhile) is encoded again with a
//! fresh one, and after a failed write the segment's table starts over (ids are then
//! defined again further on). Replay keeps the last definition of each id in the segment;
//! expanding a packed payload rebuilds the plain payload byte for byte (the plain payload is
//! prost's canonical encoding, so the resource is always the first field of its
//! `ResourceSpans`).
//!
//! Resources of at most [`RESOURCE_INLINE_BYTES_MAX`] bytes stay inline (ref 0), and a
//! record is written plain whenever packing would not make it smaller.

use std::ops::Range;

use super::{
    encode_record_kind, RecordRef, WalError, RECORD_BODY_BYTES_MIN, RECORD_FRAME_BYTES,
    RECORD_KIND_RESOURCE, RECORD_KIND_SPANS, RECORD_KIND_SPANS_PACKED, RECORD_VERSION,
};
use crate::hash::PrehashedMap;

/// Resources this small are not worth a reference.
pub const RESOURCE_INLINE_BYTES_MAX: usize = 63;
/// Version, kind, id: the resource record body before the resource's bytes.
pub const RESOURCE_FIXED_BODY_BYTES: usize = 1 + 1 + 4;
/// Resources one segment defines at most; past it the rest stay inline.
pub const RESOURCES_PER_SEGMENT_MAX: u32 = 65_536;
/// Bytes of resources one segment's table holds at most (the writer keeps a copy of each).
pub const RESOURCE_TABLE_BYTES_MAX: usize = 16 << 20;
/// One packed entry's `ref` and `len`.
const ENTRY_HEADER_BYTES: usize = 4 + 4;

// Every resource record is long enough to pass the record length check.
const _: () =
    assert!(RESOURCE_FIXED_BODY_BYTES + RESOURCE_INLINE_BYTES_MAX + 1 >= RECORD_BODY_BYTES_MIN);

/// The resources one segment has defined so far, for the writes appended to it.
#[derive(Debug, Default)]
pub struct Resources {
    /// xxh3 of the resource's bytes -> (id, the bytes).
    by_hash: PrehashedMap<Vec<(u32, Box<[u8]>)>>,
    next_id: u32,
    /// Bytes held in `by_hash`.
    table_bytes: usize,
    /// Scratch for one packed payload.
    packed: Vec<u8>,
    /// Scratch for one payload's entries.
    entries: Vec<Entry>,
}

impl Resources {
    /// The id of `resource`, defining it in `dst` first if the segment has not. `None` when
    /// the segment has defined as many as it may.
    fn id_for(&mut self, resource: &[u8], dst: &mut Vec<u8>) -> Option<u32> {
        let hash = xxhash_rust::xxh3::xxh3_64(resource);
        if let Some(known) = self.by_hash.get(&hash) {
            for (id, bytes) in known {
                if bytes.as_ref() == resource {
                    return Some(*id);
                }
            }
        }
        if self.next_id >= RESOURCES_PER_SEGMENT_MAX
            || self.table_bytes + resource.len() > RESOURCE_TABLE_BYTES_MAX
        {
            return None;
        }
        self.next_id += 1;
        let id = self.next_id;
        encode_resource_record(id, resource, dst);
        self.table_bytes += resource.len();
        self.by_hash
            .entry(hash)
            .or_default()
            .push((id, resource.into()));
        Some(id)
    }
}

/// One `ResourceSpans` of a plain payload.
#[derive(Debug, Clone)]
struct Entry {
    /// The message, without its field tag and length.
    message: Range<usize>,
    /// Its leading `Resource` field's bytes, if it has one worth a reference.
    resource: Option<Range<usize>>,
    /// The message after that field.
    rest: Range<usize>,
}

/// Appends a resource record to `dst`.
fn encode_resource_record(id: u32, resource: &[u8], dst: &mut Vec<u8>) {
    let body_len = RESOURCE_FIXED_BODY_BYTES + resource.len();
    let start = dst.len();
    // The caller's payload limit keeps every resource far below u32::MAX.
    dst.extend_from_slice(&(body_len as u32).to_le_bytes());
    dst.extend_from_slice(&[0; 4]);
    let body_start = dst.len();
    dst.push(RECORD_VERSION);
    dst.push(RECORD_KIND_RESOURCE);
    dst.extend_from_slice(&id.to_le_bytes());
    dst.extend_from_slice(resource);
    let crc = crc32fast::hash(dst.get(body_start..).unwrap_or_default());
    if let Some(field) = dst.get_mut(start + 4..body_start) {
        field.copy_from_slice(&crc.to_le_bytes());
    }
    debug_assert_eq!(dst.len() - start, RECORD_FRAME_BYTES + body_len);
}

/// Appends `rec` to `dst` packed (resources defined in `dst` before it as needed), or plain
/// when packing would not make it smaller or the payload is not the shape `split_export`
/// writes. Returns the record's range in `dst` (resource records before it excluded).
pub fn encode_packed_record(
    rec: &RecordRef<'_>,
    resources: &mut Resources,
    dst: &mut Vec<u8>,
) -> Range<usize> {
    let mut entries = std::mem::take(&mut resources.entries);
    entries.clear();
    let plain = !split_payload(rec.payload, &mut entries)
        || !entries.iter().any(|entry| entry.resource.is_some());
    if plain {
        resources.entries = entries;
        let start = dst.len();
        encode_record_kind(rec, RECORD_KIND_SPANS, rec.payload, dst);
        return start..dst.len();
    }
    let mut packed = std::mem::take(&mut resources.packed);
    packed.clear();
    for entry in &entries {
        let resource = entry
            .resource
            .clone()
            .and_then(|range| rec.payload.get(range));
        let id = resource.and_then(|resource| resources.id_for(resource, dst));
        let (id, bytes) = match id {
            Some(id) => (id, entry.rest.clone()),
            None => (0, entry.message.clone()),
        };
        let bytes = rec.payload.get(bytes).unwrap_or_default();
        packed.extend_from_slice(&id.to_le_bytes());
        // A payload is at most RECORD_PAYLOAD_BYTES_MAX < u32::MAX.
        packed.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        packed.extend_from_slice(bytes);
    }
    let start = dst.len();
    if packed.len() < rec.payload.len() {
        encode_record_kind(rec, RECORD_KIND_SPANS_PACKED, &packed, dst);
    } else {
        encode_record_kind(rec, RECORD_KIND_SPANS, rec.payload, dst);
    }
    resources.packed = packed;
    resources.entries = entries;
    start..dst.len()
}

/// Splits a plain payload into its `ResourceSpans`. False if it is not `{ 0x0A len
/// ResourceSpans }+` with lengths that fit.
fn split_payload(payload: &[u8], entries: &mut Vec<Entry>) -> bool {
    let mut at = 0usize;
    while at < payload.len() {
        if payload.get(at) != Some(&0x0A) {
            return false;
        }
        let Some((len, len_bytes)) = read_varint(payload.get(at + 1..).unwrap_or_default()) else {
            return false;
        };
        let start = at + 1 + len_bytes;
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
        else {
            return false;
        };
        if end > payload.len() {
            return false;
        }
        let mut entry = Entry {
            message: start..end,
            resource: None,
            rest: start..end,
        };
        if payload.get(start) == Some(&0x0A) {
            let inner = payload.get(start + 1..end).unwrap_or_default();
            if let Some((resource_len, resource_len_bytes)) = read_varint(inner) {
                let resource_start = start + 1 + resource_len_bytes;
                let resource_end = usize::try_from(resource_len)
                    .ok()
                    .and_then(|len| resource_start.checked_add(len));
                match resource_end {
                    Some(resource_end) if resource_end <= end => {
                        if resource_end - resource_start > RESOURCE_INLINE_BYTES_MAX {
                            entry.resource = Some(resource_start..resource_end);
                            entry.rest = resource_end..end;
                        }
                    }
                    _ => return false,
                }
            } else {
                return false;
            }
        }
        entries.push(entry);
        at = end;
    }
    true
}

/// Rebuilds the plain payload of a packed one into `dst`, taking each referenced resource's
/// bytes from `resource(id)`.
pub fn expand<'r>(
    packed: &[u8],
    resource: impl Fn(u32) -> Option<&'r [u8]>,
    dst: &mut Vec<u8>,
) -> Result<(), WalError> {
    let mut rest = packed;
    while !rest.is_empty() {
        let Some((header, tail)) = rest.split_first_chunk::<ENTRY_HEADER_BYTES>() else {
            return Err(WalError::PackedPayload {
                reason: "truncated entry header",
            });
        };
        let [r0, r1, r2, r3, l0, l1, l2, l3] = *header;
        let id = u32::from_le_bytes([r0, r1, r2, r3]);
        let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
        let Some(bytes) = tail.get(..len) else {
            return Err(WalError::PackedPayload {
                reason: "entry longer than the payload",
            });
        };
        rest = tail.get(len..).unwrap_or_default();
        dst.push(0x0A);
        if id == 0 {
            put_varint(len as u64, dst);
            dst.extend_from_slice(bytes);
            continue;
        }
        let Some(resource) = resource(id) else {
            return Err(WalError::UnknownResource { id });
        };
        let resource_field = 1 + varint_len(resource.len() as u64) + resource.len();
        put_varint((resource_field + len) as u64, dst);
        dst.push(0x0A);
        put_varint(resource.len() as u64, dst);
        dst.extend_from_slice(resource);
        dst.extend_from_slice(bytes);
    }
    Ok(())
}

/// A resource record's id and bytes, from its body after version and kind.
pub(super) fn decode_resource_body(rest: &[u8]) -> Option<(u32, &[u8])> {
    let (id, resource) = rest.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*id), resource))
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

    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
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
        let mut resources = Resources::default();
        for write in writes {
            if !per_segment {
                resources = Resources::default();
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
        let mut resources = Resources::default();
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
        let mut resources = Resources::default();
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
                assert!(reason.contains("resource 1"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn expand_refuses_bad_entries() {
        let resource = |id: u32| (id == 1).then_some(&b"\x0a\x00"[..]);
        let mut out = Vec::new();
        assert!(expand(&[1, 0, 0], resource, &mut out).is_err());
        assert!(expand(&[0, 0, 0, 0, 9, 0, 0, 0, 1], resource, &mut out).is_err());
        assert_eq!(
            expand(&[2, 0, 0, 0, 0, 0, 0, 0], resource, &mut out),
            Err(WalError::UnknownResource { id: 2 })
        );
        out.clear();
        expand(&[1, 0, 0, 0, 0, 0, 0, 0], resource, &mut out).unwrap();
        assert_eq!(out, [0x0A, 4, 0x0A, 2, 0x0a, 0x00]);
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

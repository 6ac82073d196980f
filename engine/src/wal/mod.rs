//! WAL record and segment format (sans-IO): bytes in, values out. The shard owns the files;
//! this module only encodes, decodes and decides what a damaged file means.
//!
//! A segment file is a header followed by records, appended in order:
//! `segment = SegmentHeader (RecordRef | fragment record)*`; the layouts are drawn on their
//! types and in `packed.rs` (fragment records and packed spans records, kinds 2 and 3).
//!
//! Recovery policy (as fjall's journal): tolerate a torn tail, refuse any other corruption.
//!
//! - A file shorter than a header is a crash right after creation (the header is written and
//!   synced before any record): `TornTail { valid_bytes: 0 }`, whatever its bytes.
//! - A whole header that is wrong (magic, version, reserved byte, checksum): `Corrupt` at 0.
//! - Fewer than 8 bytes left for a record frame, or a record whose declared length runs past
//!   (or, when out of range, reaches) the end of the file: the last write was torn,
//!   `TornTail { valid_bytes }` at the record's start. The caller truncates the file there and
//!   warns.
//! - A checksum mismatch on a record that ends exactly at the end of the file: also a torn
//!   final write (its sectors reached the disk only in part).
//! - A record that fails in any other way, or a checksum mismatch with more data after it:
//!   `Corrupt { offset }` at the record's start. Replay keeps the good records before it and
//!   stops; the caller logs an error and counts it.
//! - Exception: if everything from the failing record to the end of the file is zero bytes
//!   (a file extended by the filesystem whose data never reached the disk, or preallocated),
//!   it is a torn tail.
//!
//! A bit flip in a length field that makes it point past the end of the file cannot be told
//! apart from a torn write (the checksum does not cover the length, and the body it would
//! cover is not there); it is reported as a torn tail.
//!
//! Architecture Invariant: no input makes this module panic or allocate according to a
//! length read from the input; decoded payloads are slices or ranges of the input.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

mod packed;

use std::fmt;
use std::ops::Range;

pub use packed::{encode_packed_record, Fragments, FRAGMENT_INLINE_BYTES_MAX};

use crate::ids::{Tenant, TenantError, TraceId, TENANT_BYTES_MAX};

pub const SEGMENT_MAGIC: [u8; 6] = *b"ALGWAL";
pub const SEGMENT_FORMAT_VERSION: u8 = 1;
/// Magic, version, reserved, shard, sequence, crc32.
pub const SEGMENT_HEADER_BYTES: usize = 6 + 1 + 1 + 2 + 8 + 4;

/// `len` and `crc32`.
pub const RECORD_FRAME_BYTES: usize = 4 + 4;
pub const RECORD_VERSION: u8 = 1;
pub const RECORD_KIND_SPANS: u8 = 1;
/// A fragment (a resource or scope field) that packed spans records after it in the same
/// segment refer to (`packed.rs`).
pub const RECORD_KIND_FRAGMENT: u8 = 2;
/// A spans record whose payload refers to fragments (`packed.rs`).
pub const RECORD_KIND_SPANS_PACKED: u8 = 3;
/// Version, kind, tenant_len, trace_id, span_count, start, end: the body without tenant and
/// payload.
const RECORD_FIXED_BODY_BYTES: usize = 1 + 1 + 1 + 16 + 4 + 8 + 8;
/// The smallest body: a one-character tenant and an empty payload.
pub const RECORD_BODY_BYTES_MIN: usize = RECORD_FIXED_BODY_BYTES + 1;
/// The largest record, frame included.
pub const RECORD_BYTES_MAX: usize = 64 << 20;
/// The largest body (`len`).
pub const RECORD_BODY_BYTES_MAX: usize = RECORD_BYTES_MAX - RECORD_FRAME_BYTES;
/// The largest payload that fits in a record whatever the tenant: the shard must refuse
/// bigger batches before calling `encode_record`.
pub const RECORD_PAYLOAD_BYTES_MAX: usize =
    RECORD_BODY_BYTES_MAX - RECORD_FIXED_BODY_BYTES - TENANT_BYTES_MAX;

const _: () = assert!(SEGMENT_HEADER_BYTES == 22);
const _: () = assert!(RECORD_FIXED_BODY_BYTES == 39);
// `len` is a u32, `tenant_len` a u8.
const _: () = assert!(RECORD_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(TENANT_BYTES_MAX <= u8::MAX as usize);
// Every record frame, fixed body and tenant leaves room for a real payload.
const _: () = assert!(
    RECORD_FRAME_BYTES + RECORD_FIXED_BODY_BYTES + TENANT_BYTES_MAX + (4 << 20) <= RECORD_BYTES_MAX
);

/// A segment header: the first `SEGMENT_HEADER_BYTES` bytes of every segment file.
///
/// ```text
/// offset size field
///   0      6  magic            b"ALGWAL"
///   6      1  version          SEGMENT_FORMAT_VERSION = 1
///   7      1  reserved         0
///   8      2  shard            u16 LE
///  10      8  sequence         u64 LE, the segment's number within its shard directory
///  18      4  crc32            u32 LE, crc32fast of bytes 0..18
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub version: u8,
    pub shard: u16,
    pub sequence: u64,
}

/// A record to append: one `TraceBatch` of one tenant. On disk, `RECORD_FRAME_BYTES` of
/// frame and `len` bytes of body, at most `RECORD_BYTES_MAX` in all:
///
/// ```text
/// offset size field
///   0      4  len                   u32 LE, bytes after the crc field (the body)
///   4      4  crc32                 u32 LE, crc32fast of the body
///   body, RECORD_BODY_BYTES_MIN..=RECORD_BODY_BYTES_MAX bytes:
///   8      1  version               RECORD_VERSION = 1
///   9      1  kind                  RECORD_KIND_SPANS = 1, or RECORD_KIND_SPANS_PACKED = 3
///                                   (then the payload is packed, see `packed.rs`)
///  10      1  tenant_len            t, 1..=TENANT_BYTES_MAX
///  11      t  tenant                a valid `Tenant`
/// 11+t    16  trace_id
/// 27+t     4  span_count            u32 LE
/// 31+t     8  start_unix_nanos_min  u64 LE
/// 39+t     8  end_unix_nanos_max    u64 LE
/// 47+t     p  payload               a `TraceBatch` payload, to the end of the record
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub tenant: &'a Tenant,
    pub trace_id: TraceId,
    pub span_count: u32,
    pub start_unix_nanos_min: u64,
    pub end_unix_nanos_max: u64,
    pub payload: &'a [u8],
}

/// A record decoded from bytes, its checksum verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub tenant: Tenant,
    pub trace_id: TraceId,
    pub span_count: u32,
    pub start_unix_nanos_min: u64,
    pub end_unix_nanos_max: u64,
    pub payload: &'a [u8],
    /// Bytes of the whole record, frame included.
    pub length: u32,
}

/// Where a replayed record's plain payload is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayedPayload {
    /// In the replayed bytes (a plain record).
    InFile(Range<usize>),
    /// Rebuilt from a packed record and the resources before it.
    Expanded(Vec<u8>),
}

impl ReplayedPayload {
    /// The payload's bytes; `file` is the replayed segment.
    pub fn bytes<'a>(&'a self, file: &'a [u8]) -> &'a [u8] {
        match self {
            ReplayedPayload::InFile(range) => file.get(range.clone()).unwrap_or_default(),
            ReplayedPayload::Expanded(bytes) => bytes,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ReplayedPayload::InFile(range) => range.len(),
            ReplayedPayload::Expanded(bytes) => bytes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One spans record found by `replay_segment` (fragment records are consumed by it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayedRecord {
    /// Where the record starts in the file.
    pub offset: u64,
    /// Bytes of the whole record, frame included: `offset + length` is the next record.
    pub length: u32,
    pub tenant: Tenant,
    pub trace_id: TraceId,
    pub span_count: u32,
    pub start_unix_nanos_min: u64,
    pub end_unix_nanos_max: u64,
    /// The plain payload: where it lies in the file, or rebuilt from a packed record.
    pub payload: ReplayedPayload,
}

/// What replaying a segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// `None` when the file is shorter than a header or its header is bad.
    pub header: Option<SegmentHeader>,
    /// The good spans records, in file order; with the fragment records between them they
    /// are contiguous from the end of the header.
    pub records: Vec<ReplayedRecord>,
    pub end: ReplayEnd,
}

/// How replay of a segment ended (policy in the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayEnd {
    /// Every byte belongs to a good record.
    Clean,
    /// The last write was torn: the file should be truncated to `valid_bytes`.
    TornTail { valid_bytes: u64, reason: String },
    /// Damage that is not a torn write, at `offset`; nothing after it was replayed.
    Corrupt { offset: u64, reason: String },
}

/// Why a header or record did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalError {
    HeaderTruncated {
        bytes: usize,
    },
    BadMagic {
        found: [u8; 6],
    },
    UnsupportedSegmentVersion {
        version: u8,
    },
    HeaderReserved {
        value: u8,
    },
    HeaderChecksum {
        stored: u32,
        computed: u32,
    },
    /// The record needs `needed` bytes from its start, only `available` are there.
    RecordTruncated {
        needed: u64,
        available: usize,
    },
    RecordTooShort {
        len: u32,
    },
    RecordTooLong {
        len: u32,
    },
    RecordChecksum {
        stored: u32,
        computed: u32,
    },
    UnsupportedRecordVersion {
        version: u8,
    },
    UnknownRecordKind {
        kind: u8,
    },
    /// `tenant_len` is 0 or leaves no room for the fixed fields.
    TenantLength {
        tenant_len: u8,
    },
    TenantNotUtf8,
    BadTenant(TenantError),
    /// A packed spans record refers to a fragment no earlier record of the segment defines.
    UnknownFragment {
        id: u32,
    },
    /// A packed payload that does not parse.
    PackedPayload {
        reason: &'static str,
    },
    /// A fragment record has no id.
    FragmentTruncated,
    /// `decode_record_at` was pointed at a fragment record or a packed spans record, which
    /// only a replay of the segment can read.
    NeedsReplay {
        kind: u8,
    },
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalError::HeaderTruncated { bytes } => write!(
                f,
                "segment header truncated: {bytes} of {SEGMENT_HEADER_BYTES} bytes"
            ),
            WalError::BadMagic { found } => write!(f, "bad segment magic {found:02x?}"),
            WalError::UnsupportedSegmentVersion { version } => {
                write!(f, "unsupported segment format version {version}")
            }
            WalError::HeaderReserved { value } => {
                write!(f, "segment header reserved byte is {value}, expected 0")
            }
            WalError::HeaderChecksum { stored, computed } => write!(
                f,
                "segment header checksum mismatch: stored {stored:08x}, computed {computed:08x}"
            ),
            WalError::RecordTruncated { needed, available } => write!(
                f,
                "record truncated: needs {needed} bytes, {available} present"
            ),
            WalError::RecordTooShort { len } => write!(
                f,
                "record length {len} below the minimum {RECORD_BODY_BYTES_MIN}"
            ),
            WalError::RecordTooLong { len } => write!(
                f,
                "record length {len} above the maximum {RECORD_BODY_BYTES_MAX}"
            ),
            WalError::RecordChecksum { stored, computed } => write!(
                f,
                "record checksum mismatch: stored {stored:08x}, computed {computed:08x}"
            ),
            WalError::UnsupportedRecordVersion { version } => {
                write!(f, "unsupported record version {version}")
            }
            WalError::UnknownRecordKind { kind } => write!(f, "unknown record kind {kind}"),
            WalError::TenantLength { tenant_len } => {
                write!(f, "tenant length {tenant_len} does not fit the record")
            }
            WalError::TenantNotUtf8 => f.write_str("tenant is not UTF-8"),
            WalError::BadTenant(error) => write!(f, "bad tenant: {error}"),
            WalError::UnknownFragment { id } => write!(
                f,
                "packed record refers to fragment {id}, which no earlier record defines"
            ),
            WalError::PackedPayload { reason } => write!(f, "bad packed payload: {reason}"),
            WalError::FragmentTruncated => f.write_str("fragment record without an id"),
            WalError::NeedsReplay { kind } => write!(
                f,
                "record kind {kind} is read by replaying its segment, not on its own"
            ),
        }
    }
}

impl std::error::Error for WalError {}

/// Appends a segment header to `dst`.
pub fn encode_segment_header(shard: u16, sequence: u64, dst: &mut Vec<u8>) {
    let start = dst.len();
    dst.extend_from_slice(&SEGMENT_MAGIC);
    dst.push(SEGMENT_FORMAT_VERSION);
    dst.push(0);
    dst.extend_from_slice(&shard.to_le_bytes());
    dst.extend_from_slice(&sequence.to_le_bytes());
    let crc = crc32fast::hash(dst.get(start..).unwrap_or_default());
    dst.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(dst.len() - start, SEGMENT_HEADER_BYTES);
}

/// Decodes the header at the start of a segment.
pub fn decode_segment_header(bytes: &[u8]) -> Result<SegmentHeader, WalError> {
    let Some(header) = bytes.get(..SEGMENT_HEADER_BYTES) else {
        return Err(WalError::HeaderTruncated { bytes: bytes.len() });
    };
    let mut reader = Reader(header);
    let magic: [u8; 6] = reader.array();
    let version = reader.u8();
    let reserved = reader.u8();
    let shard = reader.u16();
    let sequence = reader.u64();
    let stored = reader.u32();
    let computed = crc32fast::hash(header.get(..SEGMENT_HEADER_BYTES - 4).unwrap_or_default());
    if magic != SEGMENT_MAGIC {
        return Err(WalError::BadMagic { found: magic });
    }
    if stored != computed {
        return Err(WalError::HeaderChecksum { stored, computed });
    }
    if version != SEGMENT_FORMAT_VERSION {
        return Err(WalError::UnsupportedSegmentVersion { version });
    }
    if reserved != 0 {
        return Err(WalError::HeaderReserved { value: reserved });
    }
    Ok(SegmentHeader {
        version,
        shard,
        sequence,
    })
}

/// Appends one record to `dst`. Panics if the payload is larger than
/// `RECORD_PAYLOAD_BYTES_MAX`: the caller enforces that limit on its input.
pub fn encode_record(rec: &RecordRef<'_>, dst: &mut Vec<u8>) {
    encode_record_kind(rec, RECORD_KIND_SPANS, rec.payload, dst);
}

/// Appends a spans record of `kind` with `payload` (the plain one, or its packed form).
fn encode_record_kind(rec: &RecordRef<'_>, kind: u8, payload: &[u8], dst: &mut Vec<u8>) {
    let tenant = rec.tenant.as_str().as_bytes();
    assert!(!tenant.is_empty() && tenant.len() <= TENANT_BYTES_MAX);
    assert!(kind == RECORD_KIND_SPANS || kind == RECORD_KIND_SPANS_PACKED);
    assert!(
        payload.len() <= RECORD_PAYLOAD_BYTES_MAX,
        "WAL record payload of {} bytes exceeds {RECORD_PAYLOAD_BYTES_MAX}",
        payload.len()
    );
    let body_len = RECORD_FIXED_BODY_BYTES + tenant.len() + payload.len();
    let start = dst.len();
    dst.reserve(RECORD_FRAME_BYTES + body_len);
    // Both fit: body_len <= RECORD_BODY_BYTES_MAX <= u32::MAX, tenant.len() <= u8::MAX.
    dst.extend_from_slice(&(body_len as u32).to_le_bytes());
    dst.extend_from_slice(&[0; 4]);
    let body_start = dst.len();
    dst.push(RECORD_VERSION);
    dst.push(kind);
    dst.push(tenant.len() as u8);
    dst.extend_from_slice(tenant);
    dst.extend_from_slice(rec.trace_id.as_bytes());
    dst.extend_from_slice(&rec.span_count.to_le_bytes());
    dst.extend_from_slice(&rec.start_unix_nanos_min.to_le_bytes());
    dst.extend_from_slice(&rec.end_unix_nanos_max.to_le_bytes());
    dst.extend_from_slice(payload);
    assert_eq!(dst.len() - body_start, body_len);
    let crc = crc32fast::hash(dst.get(body_start..).unwrap_or_default());
    if let Some(field) = dst.get_mut(start + 4..body_start) {
        field.copy_from_slice(&crc.to_le_bytes());
    }
}

/// Decodes the record at the start of `bytes` (which may extend past it), verifying its
/// checksum: for reading one record back from a known offset.
pub fn decode_record_at(bytes: &[u8]) -> Result<RecordView<'_>, WalError> {
    let raw = match decode_raw(bytes)? {
        Raw::Spans(raw) if raw.kind == RECORD_KIND_SPANS => raw,
        Raw::Spans(raw) => return Err(WalError::NeedsReplay { kind: raw.kind }),
        Raw::Resource { .. } => {
            return Err(WalError::NeedsReplay {
                kind: RECORD_KIND_FRAGMENT,
            })
        }
    };
    let tenant = parse_tenant(raw.tenant)?;
    Ok(RecordView {
        tenant,
        trace_id: raw.trace_id,
        span_count: raw.span_count,
        start_unix_nanos_min: raw.start_unix_nanos_min,
        end_unix_nanos_max: raw.end_unix_nanos_max,
        payload: raw.payload,
        length: raw.length,
    })
}

/// A spans record with its tenant still as bytes (checked for length only).
struct RawRecord<'a> {
    /// `RECORD_KIND_SPANS` or `RECORD_KIND_SPANS_PACKED` (then `payload` is packed).
    kind: u8,
    tenant: &'a [u8],
    trace_id: TraceId,
    span_count: u32,
    start_unix_nanos_min: u64,
    end_unix_nanos_max: u64,
    payload: &'a [u8],
    length: u32,
}

/// A record as framed on disk, its checksum verified.
enum Raw<'a> {
    Spans(RawRecord<'a>),
    Resource {
        id: u32,
        bytes: &'a [u8],
        /// Bytes of the whole record, frame included.
        length: u32,
    },
}

fn decode_raw(bytes: &[u8]) -> Result<Raw<'_>, WalError> {
    let Some(frame) = bytes.get(..RECORD_FRAME_BYTES) else {
        return Err(WalError::RecordTruncated {
            needed: RECORD_FRAME_BYTES as u64,
            available: bytes.len(),
        });
    };
    let mut reader = Reader(frame);
    let len = reader.u32();
    let stored = reader.u32();
    if (len as usize) < RECORD_BODY_BYTES_MIN {
        return Err(WalError::RecordTooShort { len });
    }
    if len as usize > RECORD_BODY_BYTES_MAX {
        return Err(WalError::RecordTooLong { len });
    }
    let end = RECORD_FRAME_BYTES + len as usize;
    let Some(body) = bytes.get(RECORD_FRAME_BYTES..end) else {
        return Err(WalError::RecordTruncated {
            needed: end as u64,
            available: bytes.len(),
        });
    };
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(WalError::RecordChecksum { stored, computed });
    }
    let mut reader = Reader(body);
    let version = reader.u8();
    if version != RECORD_VERSION {
        return Err(WalError::UnsupportedRecordVersion { version });
    }
    let kind = reader.u8();
    if kind == RECORD_KIND_FRAGMENT {
        let (id, resource) =
            packed::decode_fragment_body(reader.0).ok_or(WalError::FragmentTruncated)?;
        return Ok(Raw::Resource {
            id,
            bytes: resource,
            length: end as u32,
        });
    }
    if kind != RECORD_KIND_SPANS && kind != RECORD_KIND_SPANS_PACKED {
        return Err(WalError::UnknownRecordKind { kind });
    }
    let tenant_len = reader.u8();
    if tenant_len == 0 || RECORD_FIXED_BODY_BYTES + usize::from(tenant_len) > body.len() {
        return Err(WalError::TenantLength { tenant_len });
    }
    let tenant = reader.take(usize::from(tenant_len));
    let trace_id = TraceId(reader.array());
    let span_count = reader.u32();
    let start_unix_nanos_min = reader.u64();
    let end_unix_nanos_max = reader.u64();
    Ok(Raw::Spans(RawRecord {
        kind,
        tenant,
        trace_id,
        span_count,
        start_unix_nanos_min,
        end_unix_nanos_max,
        payload: reader.0,
        // end <= RECORD_BYTES_MAX <= u32::MAX.
        length: end as u32,
    }))
}

fn parse_tenant(bytes: &[u8]) -> Result<Tenant, WalError> {
    let text = std::str::from_utf8(bytes).map_err(|_| WalError::TenantNotUtf8)?;
    Tenant::parse(text).map_err(WalError::BadTenant)
}

/// Replays a whole segment file (policy in the module documentation). Never panics.
pub fn replay_segment(bytes: &[u8]) -> Replay {
    let mut replay = Replay {
        header: None,
        records: Vec::new(),
        end: ReplayEnd::Clean,
    };
    if bytes.len() < SEGMENT_HEADER_BYTES {
        replay.end = ReplayEnd::TornTail {
            valid_bytes: 0,
            reason: WalError::HeaderTruncated { bytes: bytes.len() }.to_string(),
        };
        return replay;
    }
    match decode_segment_header(bytes) {
        Ok(header) => replay.header = Some(header),
        Err(error) => {
            replay.end = ReplayEnd::Corrupt {
                offset: 0,
                reason: error.to_string(),
            };
            return replay;
        }
    }
    // The tenant of the previous record: consecutive records mostly share it.
    let mut last_tenant: Option<Tenant> = None;
    // The last definition of each fragment id (ranges into `bytes`).
    let mut resources: crate::hash::PrehashedMap<Range<usize>> = Default::default();
    let mut offset = SEGMENT_HEADER_BYTES;
    while let Some(rest) = bytes.get(offset..).filter(|rest| !rest.is_empty()) {
        let decoded = decode_raw(rest).and_then(|raw| {
            let raw = match raw {
                Raw::Spans(raw) => raw,
                Raw::Resource {
                    id,
                    bytes: resource,
                    length,
                } => return Ok(Err((id, resource.len(), length))),
            };
            let tenant = match &last_tenant {
                Some(tenant) if tenant.as_str().as_bytes() == raw.tenant => tenant.clone(),
                _ => parse_tenant(raw.tenant)?,
            };
            let payload_start = offset + raw.length as usize - raw.payload.len();
            let payload = if raw.kind == RECORD_KIND_SPANS_PACKED {
                let mut plain = Vec::with_capacity(raw.payload.len() * 2);
                packed::expand(
                    raw.payload,
                    |id| {
                        resources
                            .get(&u64::from(id))
                            .and_then(|range| bytes.get(range.clone()))
                    },
                    &mut plain,
                )?;
                ReplayedPayload::Expanded(plain)
            } else {
                ReplayedPayload::InFile(payload_start..payload_start + raw.payload.len())
            };
            Ok(Ok((raw, tenant, payload)))
        });
        let (raw, tenant, payload) = match decoded {
            Ok(Ok(decoded)) => decoded,
            Ok(Err((id, resource_len, length))) => {
                let end = offset + length as usize;
                resources.insert(u64::from(id), end - resource_len..end);
                offset = end;
                continue;
            }
            Err(error) => {
                replay.end = classify(offset, rest, &error);
                return replay;
            }
        };
        replay.records.push(ReplayedRecord {
            offset: offset as u64,
            length: raw.length,
            tenant: tenant.clone(),
            trace_id: raw.trace_id,
            span_count: raw.span_count,
            start_unix_nanos_min: raw.start_unix_nanos_min,
            end_unix_nanos_max: raw.end_unix_nanos_max,
            payload,
        });
        last_tenant = Some(tenant);
        offset += raw.length as usize;
    }
    replay
}

/// The end of a replay that failed at `offset`, where `rest` (the rest of the file) did
/// not decode because of `error`.
fn classify(offset: usize, rest: &[u8], error: &WalError) -> ReplayEnd {
    // Where the failing record says it ends, relative to `rest`.
    let declared_end = rest.get(..4).map_or(0, |len| {
        RECORD_FRAME_BYTES.saturating_add(Reader(len).u32() as usize)
    });
    let torn = match error {
        WalError::RecordTruncated { .. } => true,
        // A torn final write: the record ends exactly at the end of the file.
        WalError::RecordChecksum { .. } => declared_end == rest.len(),
        // A length out of range in the last thing in the file (it reaches the end of the file
        // or past it): bytes of a write that never completed, not a damaged record with good
        // records after it.
        WalError::RecordTooLong { .. } | WalError::RecordTooShort { .. } => {
            declared_end >= rest.len()
        }
        _ => false,
    };
    let reason = error.to_string();
    if torn {
        ReplayEnd::TornTail {
            valid_bytes: offset as u64,
            reason,
        }
    } else if rest.iter().all(|&byte| byte == 0) {
        ReplayEnd::TornTail {
            valid_bytes: offset as u64,
            reason: format!("zero-filled tail of {} bytes", rest.len()),
        }
    } else {
        ReplayEnd::Corrupt {
            offset: offset as u64,
            reason,
        }
    }
}

/// Reads little-endian fields from a slice whose length the caller has checked; a read
/// past the end yields zeros (which the length checks make impossible).
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> &'a [u8] {
        let count = count.min(self.0.len());
        let (head, tail) = self.0.split_at(count);
        self.0 = tail;
        head
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut array = [0u8; N];
        let head = self.take(N);
        if let Some(dst) = array.get_mut(..head.len()) {
            dst.copy_from_slice(head);
        }
        array
    }

    fn u8(&mut self) -> u8 {
        u8::from_le_bytes(self.array())
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }
}

/// Fuzz entry point: replays `data` as a segment and checks the replay's invariants.
pub fn fuzz_replay(data: &[u8]) {
    let replay = replay_segment(data);
    // Fragment records lie between spans records: offsets only grow.
    let mut next = SEGMENT_HEADER_BYTES as u64;
    for record in &replay.records {
        assert!(record.offset >= next);
        next = record.offset + u64::from(record.length);
        let at = usize::try_from(record.offset).unwrap_or(usize::MAX);
        let view = decode_record_at(data.get(at..).unwrap_or_default());
        match &record.payload {
            ReplayedPayload::InFile(range) => {
                assert!(range.end as u64 <= next);
                assert!(range.start <= range.end);
                assert_eq!(
                    view.map(|view| view.payload),
                    Ok(data.get(range.clone()).unwrap_or_default())
                );
            }
            ReplayedPayload::Expanded(_) => assert!(matches!(
                view,
                Err(WalError::NeedsReplay {
                    kind: RECORD_KIND_SPANS_PACKED
                })
            )),
        }
    }
    match &replay.end {
        ReplayEnd::Clean => {
            assert!(replay.header.is_some());
            assert!(next <= data.len() as u64);
        }
        ReplayEnd::TornTail { valid_bytes, .. } => {
            if replay.header.is_some() {
                assert!(*valid_bytes >= next);
            } else {
                assert_eq!(*valid_bytes, 0);
            }
            assert!(*valid_bytes <= data.len() as u64);
        }
        ReplayEnd::Corrupt { offset, .. } => {
            if replay.header.is_some() {
                assert!(*offset >= next);
            } else {
                assert_eq!(*offset, 0);
            }
        }
    }
    // Truncating a torn tail leaves a clean segment with the same records.
    if let ReplayEnd::TornTail { valid_bytes, .. } = &replay.end {
        if replay.header.is_some() {
            let kept = data.get(..*valid_bytes as usize).unwrap_or_default();
            let again = replay_segment(kept);
            assert_eq!(again.end, ReplayEnd::Clean);
            assert_eq!(again.records, replay.records);
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failure"
)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> Tenant {
        Tenant::parse(name).unwrap()
    }

    /// A segment with `count` records of varied tenants and payload sizes, and the offset of
    /// each record.
    fn segment(count: usize) -> (Vec<u8>, Vec<usize>) {
        let tenants = [
            tenant("single-tenant"),
            tenant("a"),
            tenant(&"t".repeat(150)),
        ];
        let mut bytes = Vec::new();
        encode_segment_header(3, 42, &mut bytes);
        let mut offsets = Vec::new();
        for index in 0..count {
            offsets.push(bytes.len());
            let payload: Vec<u8> = (0..(index * 37) % 300).map(|b| b as u8).collect();
            encode_record(
                &RecordRef {
                    tenant: &tenants[index % 3],
                    trace_id: TraceId([index as u8 + 1; 16]),
                    span_count: index as u32 * 3,
                    start_unix_nanos_min: 1_000 + index as u64,
                    end_unix_nanos_max: u64::MAX - index as u64,
                    payload: &payload,
                },
                &mut bytes,
            );
        }
        (bytes, offsets)
    }

    fn check_record(bytes: &[u8], record: &ReplayedRecord, index: usize) {
        let tenants = ["single-tenant", "a", &"t".repeat(150)];
        assert_eq!(record.tenant.as_str(), tenants[index % 3]);
        assert_eq!(record.trace_id, TraceId([index as u8 + 1; 16]));
        assert_eq!(record.span_count, index as u32 * 3);
        assert_eq!(record.start_unix_nanos_min, 1_000 + index as u64);
        assert_eq!(record.end_unix_nanos_max, u64::MAX - index as u64);
        let payload: Vec<u8> = (0..(index * 37) % 300).map(|b| b as u8).collect();
        assert_eq!(record.payload.bytes(bytes), payload.as_slice());
    }

    #[test]
    fn header_round_trip() {
        let mut bytes = vec![9, 9];
        encode_segment_header(65_535, u64::MAX - 1, &mut bytes);
        assert_eq!(bytes.len(), 2 + SEGMENT_HEADER_BYTES);
        assert_eq!(&bytes[2..8], b"ALGWAL");
        assert_eq!(
            decode_segment_header(&bytes[2..]),
            Ok(SegmentHeader {
                version: 1,
                shard: 65_535,
                sequence: u64::MAX - 1
            })
        );
    }

    #[test]
    fn round_trip_many_records() {
        let (bytes, offsets) = segment(200);
        let replay = replay_segment(&bytes);
        assert_eq!(replay.end, ReplayEnd::Clean);
        assert_eq!(
            replay.header,
            Some(SegmentHeader {
                version: 1,
                shard: 3,
                sequence: 42
            })
        );
        assert_eq!(replay.records.len(), 200);
        for (index, record) in replay.records.iter().enumerate() {
            assert_eq!(record.offset, offsets[index] as u64);
            let next = offsets.get(index + 1).copied().unwrap_or(bytes.len());
            assert_eq!(record.length as usize, next - offsets[index]);
            check_record(&bytes, record, index);
            // Reading one record back from its offset gives the same.
            let view = decode_record_at(&bytes[offsets[index]..]).unwrap();
            assert_eq!(view.tenant, record.tenant);
            assert_eq!(view.length, record.length);
            assert_eq!(view.payload, record.payload.bytes(&bytes));
        }
        fuzz_replay(&bytes);
    }

    #[test]
    fn empty_segment_is_clean() {
        let (bytes, _) = segment(0);
        let replay = replay_segment(&bytes);
        assert_eq!(replay.end, ReplayEnd::Clean);
        assert!(replay.records.is_empty());
        assert!(replay.header.is_some());
    }

    #[test]
    fn torn_tail_at_every_byte_of_the_last_record() {
        let (bytes, offsets) = segment(6);
        let last = offsets[5];
        for cut in last..bytes.len() {
            let replay = replay_segment(&bytes[..cut]);
            assert_eq!(replay.records.len(), 5, "cut at {cut}");
            for (index, record) in replay.records.iter().enumerate() {
                check_record(&bytes, record, index);
            }
            if cut == last {
                assert_eq!(replay.end, ReplayEnd::Clean);
            } else {
                let ReplayEnd::TornTail { valid_bytes, .. } = replay.end else {
                    panic!("cut at {cut}: {:?}", replay.end);
                };
                assert_eq!(valid_bytes, last as u64);
            }
            fuzz_replay(&bytes[..cut]);
        }
        let replay = replay_segment(&bytes[..last + 3]);
        assert_eq!(
            replay.end,
            ReplayEnd::TornTail {
                valid_bytes: last as u64,
                reason: "record truncated: needs 8 bytes, 3 present".into()
            }
        );
    }

    /// What a bit flip at `flipped` (inside the record at `start`, the rest of the file
    /// being `rest_len` bytes from `start`) must give, by the documented policy.
    fn expected_end(bytes: &[u8], start: usize, flipped: usize) -> ReplayEnd {
        let rest = &bytes[start..];
        let declared = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        let reason = decode_raw(rest).err().unwrap().to_string();
        let torn = if flipped < start + 4 {
            // The length: reaching or passing the end of the file looks like a torn write
            // (in range or not); short of it, an out-of-range length is corruption.
            RECORD_FRAME_BYTES + declared >= rest.len()
        } else {
            RECORD_FRAME_BYTES + declared == rest.len()
        };
        if torn {
            ReplayEnd::TornTail {
                valid_bytes: start as u64,
                reason,
            }
        } else {
            ReplayEnd::Corrupt {
                offset: start as u64,
                reason,
            }
        }
    }

    #[test]
    fn bit_flips_in_a_middle_record_are_corruption() {
        let (bytes, offsets) = segment(8);
        let (start, end) = (offsets[4], offsets[5]);
        let mut damaged = bytes.clone();
        for index in start..end {
            for bit in 0..8 {
                damaged[index] ^= 1 << bit;
                let replay = replay_segment(&damaged);
                assert_eq!(replay.records.len(), 4, "flip at {index} bit {bit}");
                assert_eq!(
                    replay.end,
                    expected_end(&damaged, start, index),
                    "flip at {index} bit {bit}"
                );
                if index >= start + 4 {
                    // Outside the length field, the checksum catches every flip.
                    assert!(matches!(replay.end, ReplayEnd::Corrupt { .. }));
                }
                fuzz_replay(&damaged);
                damaged[index] ^= 1 << bit;
            }
        }
    }

    #[test]
    fn bit_flips_in_the_last_record_are_a_torn_tail() {
        let (bytes, offsets) = segment(5);
        let start = offsets[4];
        let mut damaged = bytes.clone();
        for index in start..bytes.len() {
            for bit in 0..8 {
                damaged[index] ^= 1 << bit;
                let replay = replay_segment(&damaged);
                assert_eq!(replay.records.len(), 4);
                assert_eq!(replay.end, expected_end(&damaged, start, index));
                if index >= start + 4 {
                    assert!(matches!(replay.end, ReplayEnd::TornTail { .. }));
                }
                fuzz_replay(&damaged);
                damaged[index] ^= 1 << bit;
            }
        }
    }

    #[test]
    fn bad_headers() {
        let (bytes, _) = segment(2);
        let corrupt = |damaged: &[u8], reason: &str| {
            let replay = replay_segment(damaged);
            assert_eq!(replay.header, None);
            assert!(replay.records.is_empty());
            assert_eq!(
                replay.end,
                ReplayEnd::Corrupt {
                    offset: 0,
                    reason: reason.into()
                }
            );
            fuzz_replay(damaged);
        };
        let mut damaged = bytes.clone();
        damaged[0] = b'X';
        corrupt(&damaged, "bad segment magic [58, 4c, 47, 57, 41, 4c]");
        // Every single-bit flip in the header is caught.
        for index in 0..SEGMENT_HEADER_BYTES {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[index] ^= 1 << bit;
                let replay = replay_segment(&damaged);
                assert!(matches!(replay.end, ReplayEnd::Corrupt { offset: 0, .. }));
            }
        }
        // A well-formed header of another version.
        let mut future = b"ALGWAL".to_vec();
        future.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let crc = crc32fast::hash(&future);
        future.extend_from_slice(&crc.to_le_bytes());
        corrupt(&future, "unsupported segment format version 2");
        let mut stored = bytes.clone();
        stored[18] ^= 1;
        let computed = u32::from_le_bytes(bytes[18..22].try_into().unwrap());
        let stored_crc = computed ^ 1;
        corrupt(
            &stored,
            &format!(
                "segment header checksum mismatch: stored {stored_crc:08x}, computed {computed:08x}"
            ),
        );
    }

    #[test]
    fn short_and_empty_files_are_a_torn_tail_at_zero() {
        let (bytes, _) = segment(1);
        for cut in 0..SEGMENT_HEADER_BYTES {
            let replay = replay_segment(&bytes[..cut]);
            assert_eq!(replay.header, None);
            assert_eq!(
                replay.end,
                ReplayEnd::TornTail {
                    valid_bytes: 0,
                    reason: format!("segment header truncated: {cut} of 22 bytes")
                }
            );
            fuzz_replay(&bytes[..cut]);
        }
        // A whole header and nothing else is a clean, empty segment.
        let replay = replay_segment(&bytes[..SEGMENT_HEADER_BYTES]);
        assert_eq!(replay.end, ReplayEnd::Clean);
    }

    #[test]
    fn zero_filled_tail_is_torn() {
        let (mut bytes, offsets) = segment(3);
        let end = bytes.len();
        bytes.resize(end + 4096, 0);
        let replay = replay_segment(&bytes);
        assert_eq!(replay.records.len(), 3);
        assert_eq!(
            replay.end,
            ReplayEnd::TornTail {
                valid_bytes: end as u64,
                reason: "zero-filled tail of 4096 bytes".into()
            }
        );
        // Zeros over the last record are the same.
        bytes[offsets[2]..].fill(0);
        let replay = replay_segment(&bytes);
        assert_eq!(replay.records.len(), 2);
        assert!(
            matches!(replay.end, ReplayEnd::TornTail { valid_bytes, .. } if valid_bytes == offsets[2] as u64)
        );
        // But zeros followed by data are corruption.
        bytes.push(1);
        assert!(matches!(
            replay_segment(&bytes).end,
            ReplayEnd::Corrupt { offset, .. } if offset == offsets[2] as u64
        ));
    }

    /// Builds a record body by hand, with a correct checksum.
    fn framed(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    fn body(version: u8, kind: u8, tenant: &[u8], tenant_len: u8) -> Vec<u8> {
        let mut body = vec![version, kind, tenant_len];
        body.extend_from_slice(tenant);
        body.extend_from_slice(&[7; 16 + 4 + 8 + 8]);
        body
    }

    #[test]
    fn invalid_records_with_good_checksums() {
        for (record, reason) in [
            (body(2, 1, b"a", 1), "unsupported record version 2"),
            (body(1, 4, b"a", 1), "unknown record kind 4"),
            (
                body(1, 1, b"a/b", 3),
                "bad tenant: tenant ID '/' is not a supported character",
            ),
            (body(1, 1, b"\xFF", 1), "tenant is not UTF-8"),
            (body(1, 1, b"..", 2), "bad tenant: tenant ID is '.' or '..'"),
            (
                body(1, 1, b"ab", 0),
                "tenant length 0 does not fit the record",
            ),
            (
                body(1, 1, b"a", 3),
                "tenant length 3 does not fit the record",
            ),
        ] {
            let record = framed(&record);
            assert_eq!(decode_record_at(&record).unwrap_err().to_string(), reason);
            // At the end of the file too: a good checksum rules out a torn write.
            let (mut bytes, _) = segment(1);
            let offset = bytes.len() as u64;
            bytes.extend_from_slice(&record);
            let replay = replay_segment(&bytes);
            assert_eq!(replay.records.len(), 1);
            assert_eq!(
                replay.end,
                ReplayEnd::Corrupt {
                    offset,
                    reason: reason.into()
                }
            );
            fuzz_replay(&bytes);
        }
        // Lengths out of range.
        let mut short = framed(&body(1, 1, b"a", 1));
        short[..4].copy_from_slice(&39u32.to_le_bytes());
        assert_eq!(
            decode_record_at(&short).unwrap_err(),
            WalError::RecordTooShort { len: 39 }
        );
        let mut long = framed(&body(1, 1, b"a", 1));
        long[..4].copy_from_slice(&(RECORD_BODY_BYTES_MAX as u32 + 1).to_le_bytes());
        assert_eq!(
            decode_record_at(&long).unwrap_err().to_string(),
            "record length 67108857 above the maximum 67108856"
        );
        // The smallest valid record.
        let smallest = framed(&body(1, 1, b"a", 1));
        let view = decode_record_at(&smallest).unwrap();
        assert_eq!(
            view.length as usize,
            RECORD_FRAME_BYTES + RECORD_BODY_BYTES_MIN
        );
        assert!(view.payload.is_empty());
    }

    #[test]
    fn decode_record_at_verifies_the_checksum() {
        let (bytes, offsets) = segment(2);
        let mut damaged = bytes.clone();
        damaged[offsets[1] + 20] ^= 0x10;
        assert!(matches!(
            decode_record_at(&damaged[offsets[1]..]),
            Err(WalError::RecordChecksum { .. })
        ));
        assert!(matches!(
            decode_record_at(&bytes[offsets[1]..bytes.len() - 1]),
            Err(WalError::RecordTruncated { .. })
        ));
    }

    #[test]
    fn garbage_never_panics() {
        // A small deterministic fuzz: random tails after a good prefix.
        let (bytes, _) = segment(4);
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2_000 {
            let mut data = bytes.clone();
            let cut = (next() as usize) % data.len();
            data.truncate(cut);
            for _ in 0..(next() % 64) {
                data.push(next() as u8);
            }
            fuzz_replay(&data);
        }
    }
}

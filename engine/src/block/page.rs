//! One page of a block (sans-IO): a run of whole traces, sorted by trace ID, stored as
//! columns so that a lookup decodes three of them and a search only those it filters on.
//!
//! ```text
//! page, at IndexEntry.offset, IndexEntry.length bytes:
//! offset size field
//!   0      4  body_len           u32 LE, bytes after the crc field
//!   4      4  crc32              u32 LE, crc32fast of the body
//!   8         body:
//!   +0     1  page_version       PAGE_VERSION = 1
//!   +1     4  trace_count        u32 LE, >= 1
//!   +5     4  span_count         u32 LE, span rows (spans that decoded)
//!   +9     4  attr_count         u32 LE, attribute rows
//!  +13     1  column_count       c
//!  +14  c*10  directory          per column: id u8, codec u8 (0 raw, 1 lz4_flex block),
//!                                raw_len u32 LE, stored_len u32 LE
//!   ..        column data        stored_len bytes per column, in directory order
//! ```
//!
//! Columns (`raw` contents; every integer little-endian; dictionary entries are indexes
//! into the page's dictionary `DICT_ENDS`/`DICT_BYTES`, entry `i` being
//! `DICT_BYTES[DICT_ENDS[i-1]..DICT_ENDS[i]]`):
//!
//! ```text
//! id column              rows          type  contents
//!  1 TRACE_IDS           trace_count   16B   trace IDs, strictly ascending
//!  2 TRACE_SPAN_ROWS     trace_count   u32   span rows of each trace (rows are in trace order)
//!  3 TRACE_PAYLOAD_LENS  trace_count   u32   bytes of each trace's payload in PAYLOADS
//!  4 PAYLOADS            -             bytes the traces' payloads (runs of tempopb.Trace
//!                                            field 1, see `otlp::TraceBatch`), concatenated
//!  5 DICT_ENDS           dict entries  u32   end offset of each entry in DICT_BYTES
//!  6 DICT_BYTES          -             bytes the dictionary's entries, concatenated
//!  7 SPAN_START          span_count    u64   start_time_unix_nano
//!  8 SPAN_DURATION       span_count    u64   end - start in nanoseconds (0 if negative)
//!  9 SPAN_STATUS         span_count    u8    Status.code
//! 10 SPAN_KIND           span_count    u8    Span.kind
//! 11 SPAN_SERVICE        span_count    u32   dict: the resource's service.name
//! 12 SPAN_NAME           span_count    u32   dict: the span name
//! 13 SPAN_ATTR_ROWS      span_count    u32   attribute rows of each span (rows in span order)
//! 14 ATTR_KEY            attr_count    u32   dict: attribute key
//! 15 ATTR_VALUE          attr_count    u32   dict: type byte + value: 's' UTF-8, 'b' 0|1,
//!                                            'i' i64 LE, 'd' f64 LE bits, 'x' bytes,
//!                                            'a' encoded AnyValue (arrays, maps)
//! 16 ATTR_SCOPE          attr_count    u8    0 span attribute, 1 resource attribute
//! ```
//!
//! The payloads are the source of truth (they keep every field byte-for-byte); the span and
//! attribute columns are derived from them for search and may be ignored by a lookup.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::borrow::Cow;
use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::TracesData;
use prost::Message;

use super::{BlockError, Cursor};
use crate::ids::TraceId;

pub const PAGE_VERSION: u8 = 1;
pub const PAGE_FRAME_BYTES: usize = 8;
const DIRECTORY_ENTRY_BYTES: usize = 10;
/// The largest column, decompressed. Also bounds a page body.
pub const PAGE_COLUMN_BYTES_MAX: usize = 256 << 20;
/// lz4 cannot expand input more than ~255 times; a larger claim is corruption, refused
/// before allocating.
const LZ4_EXPANSION_MAX: usize = 255;

const CODEC_RAW: u8 = 0;
const CODEC_LZ4: u8 = 1;

pub const TRACE_IDS: u8 = 1;
pub const TRACE_SPAN_ROWS: u8 = 2;
pub const TRACE_PAYLOAD_LENS: u8 = 3;
pub const PAYLOADS: u8 = 4;
pub const DICT_ENDS: u8 = 5;
pub const DICT_BYTES: u8 = 6;
pub const SPAN_START: u8 = 7;
pub const SPAN_DURATION: u8 = 8;
pub const SPAN_STATUS: u8 = 9;
pub const SPAN_KIND: u8 = 10;
pub const SPAN_SERVICE: u8 = 11;
pub const SPAN_NAME: u8 = 12;
pub const SPAN_ATTR_ROWS: u8 = 13;
pub const ATTR_KEY: u8 = 14;
pub const ATTR_VALUE: u8 = 15;
pub const ATTR_SCOPE: u8 = 16;
const COLUMN_COUNT: usize = 16;

/// What the index records of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSummary {
    pub first_trace_id: TraceId,
    pub trace_count: u32,
    pub span_count: u32,
    pub min_start_unix_nanos: u64,
    pub max_end_unix_nanos: u64,
}

/// Collects traces (in ascending ID order) and encodes them as one page.
#[derive(Default)]
pub struct PageBuilder {
    trace_ids: Vec<u8>,
    trace_span_rows: Vec<u8>,
    trace_payload_lens: Vec<u8>,
    payloads: Vec<u8>,
    dict: HashMap<Vec<u8>, u32>,
    dict_ends: Vec<u8>,
    dict_bytes: Vec<u8>,
    span_start: Vec<u8>,
    span_duration: Vec<u8>,
    span_status: Vec<u8>,
    span_kind: Vec<u8>,
    span_service: Vec<u8>,
    span_name: Vec<u8>,
    span_attr_rows: Vec<u8>,
    attr_key: Vec<u8>,
    attr_value: Vec<u8>,
    attr_scope: Vec<u8>,
    first: Option<TraceId>,
    last: Option<TraceId>,
    trace_count: u32,
    span_count: u32,
    attr_count: u32,
    min_start: u64,
    max_end: u64,
}

impl PageBuilder {
    pub fn new() -> PageBuilder {
        PageBuilder {
            min_start: u64::MAX,
            ..PageBuilder::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.trace_count == 0
    }

    /// Bytes buffered so far (before compression).
    pub fn raw_bytes(&self) -> usize {
        self.payloads.len()
            + self.trace_ids.len()
            + self.dict_bytes.len()
            + self.span_start.len() * 3
            + self.attr_key.len() * 2
    }

    /// Adds a trace; IDs must ascend across calls.
    pub fn add(&mut self, trace_id: TraceId, payload: &[u8]) {
        assert!(
            self.last.is_none_or(|last| last < trace_id),
            "traces must be added in ascending ID order"
        );
        assert!(
            payload.len() <= PAGE_COLUMN_BYTES_MAX / 2,
            "trace payload too large"
        );
        self.first.get_or_insert(trace_id);
        self.last = Some(trace_id);
        self.trace_count += 1;
        self.trace_ids.extend_from_slice(trace_id.as_bytes());
        self.trace_payload_lens
            .extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.payloads.extend_from_slice(payload);
        let rows_before = self.span_count;
        // The payload was validated on the way in; a trace that does not decode here keeps
        // its payload and simply has no span rows.
        if let Ok(data) = TracesData::decode(payload) {
            for resource_spans in &data.resource_spans {
                let resource_attributes: &[KeyValue] = resource_spans
                    .resource
                    .as_ref()
                    .map_or(&[], |r| r.attributes.as_slice());
                let service = resource_attributes
                    .iter()
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref())
                    .and_then(|v| match &v.value {
                        Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
                        _ => None,
                    })
                    .unwrap_or("");
                let service = self.intern(service.as_bytes());
                for scope_spans in &resource_spans.scope_spans {
                    for span in &scope_spans.spans {
                        self.add_span(span, service, resource_attributes);
                    }
                }
            }
        }
        self.trace_span_rows
            .extend_from_slice(&(self.span_count - rows_before).to_le_bytes());
    }

    fn add_span(
        &mut self,
        span: &opentelemetry_proto::tonic::trace::v1::Span,
        service: u32,
        resource_attributes: &[KeyValue],
    ) {
        self.span_count += 1;
        let start = span.start_time_unix_nano;
        let end = span.end_time_unix_nano;
        self.min_start = self.min_start.min(start);
        self.max_end = self.max_end.max(end.max(start));
        self.span_start.extend_from_slice(&start.to_le_bytes());
        self.span_duration
            .extend_from_slice(&end.saturating_sub(start).to_le_bytes());
        let status = span.status.as_ref().map_or(0, |s| s.code);
        self.span_status
            .push(u8::try_from(status).unwrap_or(u8::MAX));
        self.span_kind
            .push(u8::try_from(span.kind).unwrap_or(u8::MAX));
        self.span_service.extend_from_slice(&service.to_le_bytes());
        let name = self.intern(span.name.as_bytes());
        self.span_name.extend_from_slice(&name.to_le_bytes());
        let rows = span.attributes.len() + resource_attributes.len();
        self.span_attr_rows
            .extend_from_slice(&(rows as u32).to_le_bytes());
        for (scope, attributes) in [(0u8, span.attributes.as_slice()), (1, resource_attributes)] {
            for kv in attributes {
                let key = self.intern(kv.key.as_bytes());
                let value = encode_value(kv.value.as_ref());
                let value = self.intern(&value);
                self.attr_key.extend_from_slice(&key.to_le_bytes());
                self.attr_value.extend_from_slice(&value.to_le_bytes());
                self.attr_scope.push(scope);
                self.attr_count += 1;
            }
        }
    }

    fn intern(&mut self, entry: &[u8]) -> u32 {
        if let Some(&index) = self.dict.get(entry) {
            return index;
        }
        let index = self.dict.len() as u32;
        self.dict.insert(entry.to_vec(), index);
        self.dict_bytes.extend_from_slice(entry);
        self.dict_ends
            .extend_from_slice(&(self.dict_bytes.len() as u32).to_le_bytes());
        index
    }

    /// Appends the encoded page to `out` and resets the builder.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> PageSummary {
        assert!(!self.is_empty(), "an empty page");
        let builder = std::mem::replace(self, PageBuilder::new());
        let columns: [(u8, &[u8]); COLUMN_COUNT] = [
            (TRACE_IDS, &builder.trace_ids),
            (TRACE_SPAN_ROWS, &builder.trace_span_rows),
            (TRACE_PAYLOAD_LENS, &builder.trace_payload_lens),
            (PAYLOADS, &builder.payloads),
            (DICT_ENDS, &builder.dict_ends),
            (DICT_BYTES, &builder.dict_bytes),
            (SPAN_START, &builder.span_start),
            (SPAN_DURATION, &builder.span_duration),
            (SPAN_STATUS, &builder.span_status),
            (SPAN_KIND, &builder.span_kind),
            (SPAN_SERVICE, &builder.span_service),
            (SPAN_NAME, &builder.span_name),
            (SPAN_ATTR_ROWS, &builder.span_attr_rows),
            (ATTR_KEY, &builder.attr_key),
            (ATTR_VALUE, &builder.attr_value),
            (ATTR_SCOPE, &builder.attr_scope),
        ];
        let mut body = Vec::with_capacity(builder.payloads.len() / 2 + 256);
        body.push(PAGE_VERSION);
        body.extend_from_slice(&builder.trace_count.to_le_bytes());
        body.extend_from_slice(&builder.span_count.to_le_bytes());
        body.extend_from_slice(&builder.attr_count.to_le_bytes());
        body.push(COLUMN_COUNT as u8);
        let directory_at = body.len();
        body.resize(directory_at + COLUMN_COUNT * DIRECTORY_ENTRY_BYTES, 0);
        let mut directory = Vec::with_capacity(COLUMN_COUNT * DIRECTORY_ENTRY_BYTES);
        for (id, raw) in columns {
            assert!(raw.len() <= PAGE_COLUMN_BYTES_MAX, "column {id} too large");
            let compressed = lz4_flex::block::compress(raw);
            let (codec, stored): (u8, &[u8]) = if compressed.len() < raw.len() {
                (CODEC_LZ4, &compressed)
            } else {
                (CODEC_RAW, raw)
            };
            directory.push(id);
            directory.push(codec);
            directory.extend_from_slice(&(raw.len() as u32).to_le_bytes());
            directory.extend_from_slice(&(stored.len() as u32).to_le_bytes());
            body.extend_from_slice(stored);
        }
        body.splice(
            directory_at..directory_at + directory.len(),
            directory.iter().copied(),
        );
        assert!(body.len() <= u32::MAX as usize);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&body);
        PageSummary {
            first_trace_id: builder.first.expect("not empty"),
            trace_count: builder.trace_count,
            span_count: builder.span_count,
            min_start_unix_nanos: if builder.span_count == 0 {
                0
            } else {
                builder.min_start
            },
            max_end_unix_nanos: builder.max_end,
        }
    }
}

fn encode_value(value: Option<&AnyValue>) -> Vec<u8> {
    let mut out = Vec::new();
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => {
            out.push(b's');
            out.extend_from_slice(s.as_bytes());
        }
        Some(any_value::Value::BoolValue(b)) => {
            out.push(b'b');
            out.push(u8::from(*b));
        }
        Some(any_value::Value::IntValue(i)) => {
            out.push(b'i');
            out.extend_from_slice(&i.to_le_bytes());
        }
        Some(any_value::Value::DoubleValue(d)) => {
            out.push(b'd');
            out.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Some(any_value::Value::BytesValue(b)) => {
            out.push(b'x');
            out.extend_from_slice(b);
        }
        Some(other) => {
            out.push(b'a');
            AnyValue {
                value: Some(other.clone()),
            }
            .encode(&mut out)
            .expect("a Vec grows");
        }
        None => out.push(b'a'),
    }
    out
}

/// The trace IDs column and each trace's range in `PAYLOADS`.
type TraceTable<'a> = (Cow<'a, [u8]>, Vec<std::ops::Range<usize>>);

/// A page whose frame, checksum and directory were verified; columns decode on demand.
#[derive(Debug)]
pub struct PageView<'a> {
    pub trace_count: u32,
    pub span_count: u32,
    pub attr_count: u32,
    /// `(id, codec, raw_len, stored bytes)`.
    columns: Vec<(u8, u8, usize, &'a [u8])>,
}

impl<'a> PageView<'a> {
    /// Checks the frame, the CRC and the directory of the page in `bytes` (exactly one page).
    pub fn decode(bytes: &'a [u8]) -> Result<PageView<'a>, BlockError> {
        let mut cursor = Cursor::new(bytes, "page");
        let body_len = cursor.u32()? as usize;
        let stored_crc = cursor.u32()?;
        let body = cursor.take(body_len)?;
        if !cursor.is_empty() {
            return Err(BlockError::Malformed(format!(
                "page has {} bytes after its body",
                cursor.remaining()
            )));
        }
        let computed = crc32fast::hash(body);
        if computed != stored_crc {
            return Err(BlockError::Checksum {
                what: "page",
                stored: stored_crc,
                computed,
            });
        }
        let mut cursor = Cursor::new(body, "page body");
        let version = cursor.u8()?;
        if version != PAGE_VERSION {
            return Err(BlockError::UnsupportedVersion {
                what: "page",
                version,
            });
        }
        let trace_count = cursor.u32()?;
        let span_count = cursor.u32()?;
        let attr_count = cursor.u32()?;
        let column_count = cursor.u8()? as usize;
        if trace_count == 0 {
            return Err(BlockError::Malformed("page without traces".to_string()));
        }
        let mut directory = Vec::with_capacity(column_count);
        for _ in 0..column_count {
            let id = cursor.u8()?;
            let codec = cursor.u8()?;
            let raw_len = cursor.u32()? as usize;
            let stored_len = cursor.u32()? as usize;
            directory.push((id, codec, raw_len, stored_len));
        }
        let mut columns = Vec::with_capacity(column_count);
        for (id, codec, raw_len, stored_len) in directory {
            let stored = cursor.take(stored_len)?;
            let plausible = match codec {
                CODEC_RAW => raw_len == stored_len,
                CODEC_LZ4 => raw_len <= stored_len.saturating_mul(LZ4_EXPANSION_MAX) + 16,
                _ => false,
            };
            if !plausible || raw_len > PAGE_COLUMN_BYTES_MAX {
                return Err(BlockError::Malformed(format!(
                    "column {id}: codec {codec}, {raw_len} bytes from {stored_len}"
                )));
            }
            if columns.iter().any(|(other, _, _, _)| *other == id) {
                return Err(BlockError::Malformed(format!("column {id} twice")));
            }
            columns.push((id, codec, raw_len, stored));
        }
        if !cursor.is_empty() {
            return Err(BlockError::Malformed(
                "page body longer than its columns".to_string(),
            ));
        }
        Ok(PageView {
            trace_count,
            span_count,
            attr_count,
            columns,
        })
    }

    /// The decompressed bytes of column `id`; a missing column is an error.
    pub fn column(&self, id: u8) -> Result<Cow<'a, [u8]>, BlockError> {
        let &(_, codec, raw_len, stored) = self
            .columns
            .iter()
            .find(|(column, _, _, _)| *column == id)
            .ok_or_else(|| BlockError::Malformed(format!("page has no column {id}")))?;
        if codec == CODEC_RAW {
            return Ok(Cow::Borrowed(stored));
        }
        let raw = lz4_flex::block::decompress(stored, raw_len)
            .map_err(|err| BlockError::Malformed(format!("column {id}: lz4: {err}")))?;
        if raw.len() != raw_len {
            return Err(BlockError::Malformed(format!(
                "column {id}: {} bytes decompressed, {raw_len} declared",
                raw.len()
            )));
        }
        Ok(Cow::Owned(raw))
    }

    /// The trace IDs and payload ranges, checked against each other.
    fn trace_table(&self) -> Result<TraceTable<'a>, BlockError> {
        let ids = self.column(TRACE_IDS)?;
        let lens = self.column(TRACE_PAYLOAD_LENS)?;
        let count = self.trace_count as usize;
        if ids.len() != count.saturating_mul(16) || lens.len() != count.saturating_mul(4) {
            return Err(BlockError::Malformed(format!(
                "trace columns of {} and {} bytes for {count} traces",
                ids.len(),
                lens.len()
            )));
        }
        let mut ranges = Vec::with_capacity(count);
        let mut at = 0usize;
        for len in lens.chunks_exact(4) {
            let mut bytes = [0u8; 4];
            bytes.copy_from_slice(len);
            let len = u32::from_le_bytes(bytes) as usize;
            ranges.push(at..at.saturating_add(len));
            at = at.saturating_add(len);
        }
        let mut previous: Option<&[u8]> = None;
        for id in ids.chunks_exact(16) {
            if previous.is_some_and(|p| p >= id) {
                return Err(BlockError::Malformed(
                    "trace IDs of a page do not ascend".to_string(),
                ));
            }
            previous = Some(id);
        }
        Ok((ids, ranges))
    }

    /// The payload of `trace_id` if this page holds it.
    pub fn find_trace(&self, trace_id: &TraceId) -> Result<Option<Vec<u8>>, BlockError> {
        let (ids, ranges) = self.trace_table()?;
        let position = ids
            .chunks_exact(16)
            .collect::<Vec<_>>()
            .binary_search(&trace_id.as_bytes().as_slice());
        let Ok(index) = position else {
            return Ok(None);
        };
        let payloads = self.column(PAYLOADS)?;
        let total = ranges.last().map_or(0, |r| r.end);
        if total != payloads.len() {
            return Err(BlockError::Malformed(format!(
                "payload lengths add up to {total}, the column has {}",
                payloads.len()
            )));
        }
        let range = ranges
            .get(index)
            .cloned()
            .ok_or_else(|| BlockError::Malformed("trace index out of range".to_string()))?;
        payloads
            .get(range)
            .map(|payload| Some(payload.to_vec()))
            .ok_or_else(|| BlockError::Malformed("payload out of range".to_string()))
    }

    /// Every trace of the page with its payload, in ID order.
    pub fn traces(&self) -> Result<Vec<(TraceId, Vec<u8>)>, BlockError> {
        let (ids, ranges) = self.trace_table()?;
        let payloads = self.column(PAYLOADS)?;
        let total = ranges.last().map_or(0, |r| r.end);
        if total != payloads.len() {
            return Err(BlockError::Malformed(format!(
                "payload lengths add up to {total}, the column has {}",
                payloads.len()
            )));
        }
        ids.chunks_exact(16)
            .zip(ranges)
            .map(|(id, range)| {
                let trace_id = TraceId::from_slice(id)
                    .ok_or_else(|| BlockError::Malformed("trace ID".to_string()))?;
                let payload = payloads
                    .get(range)
                    .ok_or_else(|| BlockError::Malformed("payload out of range".to_string()))?;
                Ok((trace_id, payload.to_vec()))
            })
            .collect()
    }

    /// Decodes every column and checks the row counts (the fuzz target and tests use it).
    pub fn check_columns(&self) -> Result<(), BlockError> {
        let spans = self.span_count as usize;
        let attrs = self.attr_count as usize;
        let traces = self.trace_count as usize;
        let expected: [(u8, Option<usize>); 14] = [
            (TRACE_SPAN_ROWS, Some(traces * 4)),
            (DICT_ENDS, None),
            (DICT_BYTES, None),
            (SPAN_START, Some(spans * 8)),
            (SPAN_DURATION, Some(spans * 8)),
            (SPAN_STATUS, Some(spans)),
            (SPAN_KIND, Some(spans)),
            (SPAN_SERVICE, Some(spans * 4)),
            (SPAN_NAME, Some(spans * 4)),
            (SPAN_ATTR_ROWS, Some(spans * 4)),
            (ATTR_KEY, Some(attrs * 4)),
            (ATTR_VALUE, Some(attrs * 4)),
            (ATTR_SCOPE, Some(attrs)),
            (PAYLOADS, None),
        ];
        for (id, len) in expected {
            let column = self.column(id)?;
            if len.is_some_and(|len| len != column.len()) {
                return Err(BlockError::Malformed(format!(
                    "column {id} has {} bytes for its rows",
                    column.len()
                )));
            }
        }
        self.traces().map(|_| ())
    }
}

//! One page of a block (sans-IO): a run of whole traces, sorted by trace ID, stored fully
//! columnar. The OTLP payload of a trace is not kept: it is taken apart into columns when
//! the page is built (with a zero-copy wire scan, no prost) and put back together on read.
//! A search decodes only the columns it filters on; a lookup decodes the page's columns and
//! rebuilds one trace.
//!
//! ```text
//! page, at IndexEntry.offset, IndexEntry.length bytes:
//! offset size field
//!   0      4  body_len           u32 LE, bytes after the crc field
//!   4      4  crc32              u32 LE, crc32fast of the body
//!   8         body:
//!   +0     1  page_version       PAGE_VERSION = 2
//!   +1     4  trace_count        u32 LE, >= 1
//!   +5     4  span_count         u32 LE, span rows (spans of columnar traces)
//!   +9     4  attr_count         u32 LE, span attribute rows
//!  +13     1  column_count       c
//!  +14  c*10  directory          per column: id u8, codec u8 (0 raw, 1 lz4_flex block),
//!                                raw_len u32 LE, stored_len u32 LE
//!   ..        column data        stored_len bytes per column, in directory order
//! ```
//!
//! Column contents (`raw`). `v` is an unsigned LEB128 varint, `z` a zigzag varint; `d` is a
//! varint index into the page dictionary (entry `i` is `DICT_BYTES[sum(DICT_LENS[..i])..]`,
//! `DICT_LENS[i]` bytes), and `d+1` is such an index plus one, 0 meaning absent. Rows of a
//! level follow the order of their parents, so counts (`TRACE_RS`, `RS_SCOPES`, `SS_SPANS`,
//! `SPAN_ATTRS`) say which rows belong to which parent.
//!
//! ```text
//! id column            rows            type contents
//!  1 TRACE_IDS         trace_count     16B  trace IDs, strictly ascending
//!  2 TRACE_FORM        trace_count     u8   0 columnar, 1 raw (payload in RAW_*, no rows)
//!  3 TRACE_START       columnar traces z    min span start - previous trace's (first: - 0)
//!  4 TRACE_RS          columnar traces v    ResourceSpans rows of the trace
//!  5 DICT_LENS         entries         v    byte length of each dictionary entry
//!  6 DICT_BYTES        -               -    the dictionary entries, concatenated
//!  7 RS_RESOURCE       rs rows         d+1  the encoded Resource message, verbatim
//!  8 RS_SCHEMA         rs rows         d+1  schema_url (0: empty)
//!  9 RS_SERVICE        rs rows         d+1  the resource's service.name string (search)
//! 10 RS_SCOPES         rs rows         v    ScopeSpans rows
//! 11 SS_SCOPE          ss rows         d+1  the encoded InstrumentationScope, verbatim
//! 12 SS_SCHEMA         ss rows         d+1  schema_url (0: empty)
//! 13 SS_SPANS          ss rows         v    span rows
//! 14 SPAN_ID           span_count      8B   span_id
//! 15 SPAN_PARENT       span_count      v    0 none, 1 next 8 bytes of PARENT_RAW,
//!                                           k+2: span_id of span k of the same trace
//! 16 PARENT_RAW        -               8B   parent IDs not in their trace
//! 17 SPAN_START        span_count      v    start_time_unix_nano - the trace's start
//! 18 SPAN_DURATION     span_count      z    end_time_unix_nano - start (wrapping, as i64)
//! 19 SPAN_KIND         span_count      u8   Span.kind
//! 20 SPAN_STATUS       span_count      u8   Status.code; STATUS_ABSENT: no Status
//! 21 SPAN_STATUS_MSG   span_count      d+1  Status.message (0: empty)
//! 22 SPAN_NAME         span_count      d+1  Span.name (0: empty)
//! 23 SPAN_ATTRS        span_count      v    attribute rows of the span
//! 24 ATTR_KEY          attr_count      d+1  KeyValue.key; 0: ATTR_VALUE holds the whole
//!                                           encoded KeyValue (one of unusual shape)
//! 25 ATTR_VALUE        attr_count      d+1  KeyValue.value, an encoded AnyValue (0: absent)
//! 26 SPAN_REST_LENS    span_count      v    bytes of the span's other fields in SPAN_REST
//! 27 SPAN_REST         -               -    every other field of the span (trace_state,
//!                                           events, links, dropped counts, flags, unknown
//!                                           fields), tags included, verbatim, in order
//! 28 RAW_LENS          raw traces      v    payload bytes of each raw trace
//! 29 RAW_PAYLOADS      -               -    payloads of raw traces (runs of tempopb.Trace
//!                                           field 1, see `otlp::TraceBatch`)
//! ```
//!
//! Round trip: a trace is rebuilt as prost would encode it (fields in number order, the
//! span's other fields merged back in by field number), so a payload in prost's canonical
//! encoding (what `otlp::split_export` and `otlp::assemble_trace` produce) comes back byte
//! for byte, and any payload decodes to the same prost structs. A payload the columns cannot
//! hold exactly (a span's trace_id that is not the trace's, a span_id that is not 8 bytes, a
//! repeated singular field, a group, ...) is stored raw (`TRACE_FORM` 1) and has no rows.
//!
//! Search columns (service, name, kind, status, start, duration, span attributes) decode
//! on their own: a filter reads `SPAN_*`/`ATTR_*` plus the dictionary and never touches
//! `SPAN_REST`, `SPAN_ID` or the Resource bytes.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::borrow::Cow;
use std::collections::HashMap;

use super::{BlockError, Cursor};
use crate::ids::TraceId;

mod copy;
pub use copy::PageCursor;

pub const PAGE_VERSION: u8 = 2;
pub const PAGE_FRAME_BYTES: usize = 8;
const DIRECTORY_ENTRY_BYTES: usize = 10;
/// The largest column, decompressed. Also bounds a page body.
pub const PAGE_COLUMN_BYTES_MAX: usize = 256 << 20;
/// lz4 cannot expand input more than ~255 times; a larger claim is corruption, refused
/// before allocating.
const LZ4_EXPANSION_MAX: usize = 255;
/// `SPAN_STATUS` of a span without a Status message. Codes above it are stored raw.
pub const STATUS_ABSENT: u8 = 255;
/// Kinds and status codes up to this are columnar; others make the trace raw.
const ENUM_COLUMNAR_MAX: u64 = 254;

const CODEC_RAW: u8 = 0;
const CODEC_LZ4: u8 = 1;

pub const TRACE_IDS: u8 = 1;
pub const TRACE_FORM: u8 = 2;
pub const TRACE_START: u8 = 3;
pub const TRACE_RS: u8 = 4;
pub const DICT_LENS: u8 = 5;
pub const DICT_BYTES: u8 = 6;
pub const RS_RESOURCE: u8 = 7;
pub const RS_SCHEMA: u8 = 8;
pub const RS_SERVICE: u8 = 9;
pub const RS_SCOPES: u8 = 10;
pub const SS_SCOPE: u8 = 11;
pub const SS_SCHEMA: u8 = 12;
pub const SS_SPANS: u8 = 13;
pub const SPAN_ID: u8 = 14;
pub const SPAN_PARENT: u8 = 15;
pub const PARENT_RAW: u8 = 16;
pub const SPAN_START: u8 = 17;
pub const SPAN_DURATION: u8 = 18;
pub const SPAN_KIND: u8 = 19;
pub const SPAN_STATUS: u8 = 20;
pub const SPAN_STATUS_MSG: u8 = 21;
pub const SPAN_NAME: u8 = 22;
pub const SPAN_ATTRS: u8 = 23;
pub const ATTR_KEY: u8 = 24;
pub const ATTR_VALUE: u8 = 25;
pub const SPAN_REST_LENS: u8 = 26;
pub const SPAN_REST: u8 = 27;
pub const RAW_LENS: u8 = 28;
pub const RAW_PAYLOADS: u8 = 29;
const COLUMN_COUNT: usize = 29;

const TRACE_FORM_COLUMNAR: u8 = 0;
const TRACE_FORM_RAW: u8 = 1;

/// What the index records of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageSummary {
    pub first_trace_id: TraceId,
    pub trace_count: u32,
    pub span_count: u32,
    pub min_start_unix_nanos: u64,
    pub max_end_unix_nanos: u64,
    /// The page filter ([`super::filter`]); empty when the page holds a raw trace.
    pub filter: Vec<u64>,
}

// ---------------------------------------------------------------------------------------
// A minimal protobuf field reader: the input is our own (trusted, validated on ingest), but
// anything it cannot read simply makes the trace raw.

enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32,
    Bytes(&'a [u8]),
}

struct Field<'a> {
    number: u64,
    value: Wire<'a>,
    /// The whole field, tag included.
    raw: &'a [u8],
}

pub(crate) fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in 0..10 {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << (7 * shift);
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

/// The next field of `bytes` from `at`; `None` at the end, `Some(None)` on anything this
/// reader does not take (groups, bad wire types, truncation).
fn next_field<'a>(bytes: &'a [u8], at: &mut usize) -> Option<Option<Field<'a>>> {
    if *at >= bytes.len() {
        return None;
    }
    let start = *at;
    let field = (|| {
        let key = read_varint(bytes, at)?;
        let number = key >> 3;
        if number == 0 {
            return None;
        }
        let value = match key & 7 {
            0 => Wire::Varint(read_varint(bytes, at)?),
            1 => {
                let word: [u8; 8] = bytes.get(*at..*at + 8)?.try_into().ok()?;
                *at += 8;
                Wire::Fixed64(u64::from_le_bytes(word))
            }
            2 => {
                let len = usize::try_from(read_varint(bytes, at)?).ok()?;
                let body = bytes.get(*at..at.checked_add(len)?)?;
                *at += len;
                Wire::Bytes(body)
            }
            5 => {
                bytes.get(*at..*at + 4)?;
                *at += 4;
                Wire::Fixed32
            }
            _ => return None,
        };
        Some(Field {
            number,
            value,
            raw: bytes.get(start..*at)?,
        })
    })();
    if field.is_none() {
        // Stop the caller's loop on the next call.
        *at = bytes.len();
    }
    Some(field)
}

fn put_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

pub(crate) fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

fn put_tag(number: u64, wire_type: u64, out: &mut Vec<u8>) {
    put_varint((number << 3) | wire_type, out);
}

fn put_bytes_field(number: u64, body: &[u8], out: &mut Vec<u8>) {
    put_tag(number, 2, out);
    put_varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

// ---------------------------------------------------------------------------------------
// Taking a trace apart.

/// One attribute: key and value dictionary entries, or the whole KeyValue.
#[derive(Clone, Copy)]
enum Attr<'a> {
    Split {
        key: &'a [u8],
        value: Option<&'a [u8]>,
    },
    Whole(&'a [u8]),
}

#[derive(Clone)]
struct SpanParts<'a> {
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    name: &'a [u8],
    kind: u8,
    start: u64,
    end: u64,
    /// `None`: no Status; else (code, message).
    status: Option<(u8, &'a [u8])>,
    attrs: std::ops::Range<usize>,
    rest: std::ops::Range<usize>,
}

struct ScopeParts<'a> {
    scope: Option<&'a [u8]>,
    schema_url: &'a [u8],
    spans: std::ops::Range<usize>,
}

struct ResourceParts<'a> {
    resource: Option<&'a [u8]>,
    schema_url: &'a [u8],
    scopes: std::ops::Range<usize>,
}

/// A trace taken apart, borrowing its payload; the vectors are reused across traces.
#[derive(Default)]
struct Parts<'a> {
    resources: Vec<ResourceParts<'a>>,
    scopes: Vec<ScopeParts<'a>>,
    spans: Vec<SpanParts<'a>>,
    attrs: Vec<Attr<'a>>,
    rest: Vec<u8>,
}

impl<'a> Parts<'a> {
    /// Takes `payload` apart; `None` when it must be stored raw.
    fn split(&mut self, trace_id: &TraceId, payload: &'a [u8]) -> Option<()> {
        let mut at = 0;
        while let Some(field) = next_field(payload, &mut at) {
            let field = field?;
            match (field.number, field.value) {
                (1, Wire::Bytes(body)) => self.resource_spans(trace_id, body)?,
                _ => return None,
            }
        }
        Some(())
    }

    fn resource_spans(&mut self, trace_id: &TraceId, body: &'a [u8]) -> Option<()> {
        let mut resource = None;
        let mut schema_url = None;
        let first_scope = self.scopes.len();
        let mut at = 0;
        while let Some(field) = next_field(body, &mut at) {
            let field = field?;
            match (field.number, field.value) {
                (1, Wire::Bytes(bytes)) if resource.is_none() => resource = Some(bytes),
                (2, Wire::Bytes(bytes)) => self.scope_spans(trace_id, bytes)?,
                (3, Wire::Bytes(bytes)) if schema_url.is_none() => schema_url = Some(bytes),
                _ => return None,
            }
        }
        self.resources.push(ResourceParts {
            resource,
            schema_url: schema_url.unwrap_or_default(),
            scopes: first_scope..self.scopes.len(),
        });
        Some(())
    }

    fn scope_spans(&mut self, trace_id: &TraceId, body: &'a [u8]) -> Option<()> {
        let mut scope = None;
        let mut schema_url = None;
        let first_span = self.spans.len();
        let mut at = 0;
        while let Some(field) = next_field(body, &mut at) {
            let field = field?;
            match (field.number, field.value) {
                (1, Wire::Bytes(bytes)) if scope.is_none() => scope = Some(bytes),
                (2, Wire::Bytes(bytes)) => self.span(trace_id, bytes)?,
                (3, Wire::Bytes(bytes)) if schema_url.is_none() => schema_url = Some(bytes),
                _ => return None,
            }
        }
        self.scopes.push(ScopeParts {
            scope,
            schema_url: schema_url.unwrap_or_default(),
            spans: first_span..self.spans.len(),
        });
        Some(())
    }

    fn span(&mut self, trace_id: &TraceId, body: &'a [u8]) -> Option<()> {
        let mut seen = 0u32;
        let mut once = |number: u64| {
            let bit = 1u32 << number;
            let first = seen & bit == 0;
            seen |= bit;
            first.then_some(())
        };
        let mut span = SpanParts {
            span_id: [0; 8],
            parent: None,
            name: &[],
            kind: 0,
            start: 0,
            end: 0,
            status: None,
            attrs: self.attrs.len()..self.attrs.len(),
            rest: self.rest.len()..self.rest.len(),
        };
        let mut at = 0;
        while let Some(field) = next_field(body, &mut at) {
            let field = field?;
            match (field.number, field.value) {
                (1, Wire::Bytes(id)) => {
                    once(1)?;
                    if id != trace_id.as_bytes() {
                        return None;
                    }
                }
                (2, Wire::Bytes(id)) => {
                    once(2)?;
                    span.span_id = id.try_into().ok()?;
                }
                (4, Wire::Bytes(id)) => {
                    once(4)?;
                    if !id.is_empty() {
                        span.parent = Some(id.try_into().ok()?);
                    }
                }
                (5, Wire::Bytes(name)) => {
                    once(5)?;
                    span.name = name;
                }
                (6, Wire::Varint(kind)) => {
                    once(6)?;
                    if kind > ENUM_COLUMNAR_MAX {
                        return None;
                    }
                    span.kind = kind as u8;
                }
                (7, Wire::Fixed64(start)) => {
                    once(7)?;
                    span.start = start;
                }
                (8, Wire::Fixed64(end)) => {
                    once(8)?;
                    span.end = end;
                }
                (9, Wire::Bytes(kv)) => self.attrs.push(attribute(kv)),
                (15, Wire::Bytes(status)) => {
                    once(15)?;
                    span.status = Some(status_parts(status)?);
                }
                (1 | 2 | 4..=9 | 15, _) => return None,
                _ => self.rest.extend_from_slice(field.raw),
            }
        }
        // trace_id and span_id are required (split_export refuses spans without them).
        if seen & 0b110 != 0b110 {
            return None;
        }
        span.attrs.end = self.attrs.len();
        span.rest.end = self.rest.len();
        self.spans.push(span);
        Some(())
    }
}

impl Parts<'_> {
    /// Whether `otlp::assemble_trace` would leave the payload these parts came from as it
    /// is (up to prost's canonical field order, which the page writes anyway): every group
    /// holds a span, no two `ResourceSpans` share resource and schema URL, no two
    /// `ScopeSpans` of one resource share scope and schema URL, and no span ID comes twice.
    fn is_assembled(&self) -> bool {
        let scopes_of = |rs: &ResourceParts<'_>| self.scopes.get(rs.scopes.clone());
        let groups_hold_spans = self.resources.iter().all(|rs| {
            scopes_of(rs).is_some_and(|scopes| {
                !scopes.is_empty() && scopes.iter().all(|ss| !ss.spans.is_empty())
            })
        });
        let resources_distinct = self.resources.iter().enumerate().all(|(i, a)| {
            self.resources
                .iter()
                .skip(i + 1)
                .all(|b| (a.resource, a.schema_url) != (b.resource, b.schema_url))
        });
        let scopes_distinct = self.resources.iter().all(|rs| {
            let scopes = scopes_of(rs).unwrap_or_default();
            scopes.iter().enumerate().all(|(i, a)| {
                scopes
                    .iter()
                    .skip(i + 1)
                    .all(|b| (a.scope, a.schema_url) != (b.scope, b.schema_url))
            })
        });
        groups_hold_spans && resources_distinct && scopes_distinct && self.span_ids_distinct()
    }

    fn span_ids_distinct(&self) -> bool {
        const PAIRWISE_MAX: usize = 16;
        if self.spans.len() <= PAIRWISE_MAX {
            return self.spans.iter().enumerate().all(|(i, a)| {
                self.spans
                    .iter()
                    .skip(i + 1)
                    .all(|b| a.span_id != b.span_id)
            });
        }
        let mut ids: Vec<[u8; 8]> = self.spans.iter().map(|span| span.span_id).collect();
        ids.sort_unstable();
        ids.windows(2).all(|pair| pair.first() != pair.get(1))
    }
}

fn attribute(kv: &[u8]) -> Attr<'_> {
    let mut key = None;
    let mut value = None;
    let mut at = 0;
    while let Some(field) = next_field(kv, &mut at) {
        match field {
            Some(Field {
                number: 1,
                value: Wire::Bytes(bytes),
                ..
            }) if key.is_none() => key = Some(bytes),
            Some(Field {
                number: 2,
                value: Wire::Bytes(bytes),
                ..
            }) if value.is_none() => value = Some(bytes),
            _ => return Attr::Whole(kv),
        }
    }
    match key {
        // An empty key is written by prost as no field: the same KeyValue.
        Some(key) => Attr::Split { key, value },
        None => Attr::Split { key: &[], value },
    }
}

fn status_parts(status: &[u8]) -> Option<(u8, &[u8])> {
    let mut message: Option<&[u8]> = None;
    let mut code: Option<u64> = None;
    let mut at = 0;
    while let Some(field) = next_field(status, &mut at) {
        match field? {
            Field {
                number: 2,
                value: Wire::Bytes(bytes),
                ..
            } if message.is_none() => message = Some(bytes),
            Field {
                number: 3,
                value: Wire::Varint(value),
                ..
            } if code.is_none() => code = Some(value),
            _ => return None,
        }
    }
    let code = code.unwrap_or(0);
    if code >= u64::from(STATUS_ABSENT) {
        return None;
    }
    Some((code as u8, message.unwrap_or_default()))
}

/// The string value of `service.name` in an encoded Resource, when it is unambiguous: one
/// `service.name` attribute whose value is exactly one `string_value` field. Then it is the
/// value the evaluator reads (the first attribute of the key), and `RS_SERVICE` can stand
/// for it; anything else (no such attribute, a second one, another type) is `None`.
fn service_name(resource: &[u8]) -> Option<&[u8]> {
    let mut found = None;
    let mut at = 0;
    while let Some(field) = next_field(resource, &mut at) {
        let Field {
            number: 1,
            value: Wire::Bytes(kv),
            ..
        } = field?
        else {
            continue;
        };
        match attribute(kv) {
            Attr::Split {
                key: b"service.name",
                value,
            } => {
                if found.is_some() {
                    return None;
                }
                let value = value?;
                let mut at = 0;
                let mut name = None;
                while let Some(field) = next_field(value, &mut at) {
                    match field? {
                        Field {
                            number: 1,
                            value: Wire::Bytes(text),
                            ..
                        } if name.is_none() => name = Some(text),
                        _ => return None,
                    }
                }
                found = Some(name?);
            }
            Attr::Split { .. } => {}
            // A KeyValue of unusual shape could be a service.name.
            _ => return None,
        }
    }
    found
}

// ---------------------------------------------------------------------------------------
// Building a page.

/// The page dictionary: each distinct byte string once.
#[derive(Default)]
struct Dictionary {
    /// xxh3 of an entry -> its index. A (never seen) collision just adds a second entry.
    index: crate::hash::PrehashedMap<u32>,
    ends: Vec<usize>,
    lens: Vec<u8>,
    bytes: Vec<u8>,
}

impl Dictionary {
    fn intern(&mut self, entry: &[u8]) -> u32 {
        let hash = xxhash_rust::xxh3::xxh3_64(entry);
        if let Some(&index) = self.index.get(&hash) {
            let start = match index.checked_sub(1) {
                Some(previous) => self.ends.get(previous as usize).copied().unwrap_or(0),
                None => 0,
            };
            let end = self.ends.get(index as usize).copied().unwrap_or(0);
            if self.bytes.get(start..end) == Some(entry) {
                return index;
            }
        }
        let index = self.ends.len() as u32;
        self.index.insert(hash, index);
        self.bytes.extend_from_slice(entry);
        self.ends.push(self.bytes.len());
        put_varint(entry.len() as u64, &mut self.lens);
        index
    }

    /// `d+1` of an optional entry.
    fn optional(&mut self, entry: Option<&[u8]>) -> u64 {
        entry.map_or(0, |entry| u64::from(self.intern(entry)) + 1)
    }

    /// `d+1` of a string that is absent when empty.
    fn nonempty(&mut self, entry: &[u8]) -> u64 {
        self.optional((!entry.is_empty()).then_some(entry))
    }
}

/// The facts of a span row: its status, kind and name, alone and with its resource
/// (`d+1` indices; `status` is the Status code, `None` without a Status).
fn span_facts(facts: &mut FactSet, resource: u64, status: Option<u8>, kind: u8, name: u64) {
    let status = u64::from(super::filter::status_fact(status));
    facts.insert(fact_row(FactRow::Status, status, 0));
    facts.insert(fact_row(FactRow::ServiceStatus, resource, status));
    let kind = u64::from(super::filter::kind_fact(kind));
    facts.insert(fact_row(FactRow::Kind, kind, 0));
    if name != 0 {
        facts.insert(fact_row(FactRow::Name, name, 0));
        facts.insert(fact_row(FactRow::ServiceName, resource, name));
    }
}

/// One attribute row (`key` 0: `value` holds the whole KeyValue) and its fact.
fn put_attr_row(columns: &mut [Vec<u8>; COLUMN_COUNT], facts: &mut FactSet, key: u64, value: u64) {
    if key == 0 {
        facts.insert(fact_row(FactRow::WholeAttr, 0, value));
    } else {
        facts.insert(fact_row(FactRow::Attr, key, value));
    }
    put_varint(key, col(columns, ATTR_KEY));
    put_varint(value, col(columns, ATTR_VALUE));
}

/// `d+1` of the service name of the Resource at `d+1` `resource` (its bytes `bytes`),
/// computed once per Resource entry of a page.
fn service_of(
    services: &mut HashMap<u32, u64>,
    dict: &mut Dictionary,
    resource: u64,
    bytes: Option<&[u8]>,
) -> u64 {
    let Some(index) = resource.checked_sub(1) else {
        return 0;
    };
    if let Some(&service) = services.get(&(index as u32)) {
        return service;
    }
    let service = dict.optional(bytes.and_then(service_name));
    services.insert(index as u32, service);
    service
}

/// Collects traces (in ascending ID order) and encodes them as one page.
pub struct PageBuilder {
    dict: Dictionary,
    /// `d+1` of the service of a Resource entry, by the Resource's dictionary index.
    services: HashMap<u32, u64>,
    columns: [Vec<u8>; COLUMN_COUNT],
    first: Option<TraceId>,
    last: Option<TraceId>,
    previous_start: u64,
    trace_count: u32,
    span_count: u32,
    raw_span_count: u32,
    attr_count: u32,
    min_start: u64,
    max_end: u64,
    /// What the page filter will say, as dictionary indices (see [`FactRow`]).
    facts: FactSet,
    /// A trace is stored raw: the page gets no filter.
    has_raw: bool,
    /// Pages finished by this builder before the one being built: dictionary indices
    /// handed out under another generation mean nothing now (see `copy::PageCursor`).
    generation: u64,
}

/// Rows of [`PageBuilder::facts`]: a tag in the top 6 bits and up to two 29-bit `d+1`
/// dictionary indices (a page has at most 2^28 entries: its columns are bounded by
/// [`PAGE_COLUMN_BYTES_MAX`]).
#[derive(Clone, Copy)]
enum FactRow {
    /// (key, value) of a split attribute.
    Attr = 1,
    /// (0, the whole KeyValue) of an attribute of unusual shape.
    WholeAttr,
    /// (resource, 0).
    Resource,
    /// (name, 0).
    Name,
    /// (resource, TraceQL status).
    ServiceStatus,
    /// (resource, name).
    ServiceName,
    /// (TraceQL status, 0).
    Status,
    /// (TraceQL kind, 0).
    Kind,
}

const _: () = assert!(PAGE_COLUMN_BYTES_MAX <= 1 << 28);

fn fact_row(tag: FactRow, a: u64, b: u64) -> u64 {
    debug_assert!(a < 1 << 29 && b < 1 << 29);
    ((tag as u64) << 58) | (a << 29) | b
}

/// The distinct fact rows of the page being built.
type FactSet = std::collections::HashSet<u64, FactHasher>;

/// A multiplicative hasher for the builder's `u64` fact rows (SipHash costs more than the
/// rest of a span's columns).
#[derive(Default, Clone, Copy)]
struct FactHasher(u64);

impl std::hash::Hasher for FactHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = (value ^ (value >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl std::hash::BuildHasher for FactHasher {
    type Hasher = FactHasher;
    fn build_hasher(&self) -> FactHasher {
        FactHasher(0)
    }
}

impl Default for PageBuilder {
    fn default() -> Self {
        PageBuilder::new()
    }
}

#[expect(
    clippy::indexing_slicing,
    reason = "column ids are the constants 1..=COLUMN_COUNT"
)]
fn col(columns: &mut [Vec<u8>; COLUMN_COUNT], id: u8) -> &mut Vec<u8> {
    &mut columns[usize::from(id) - 1]
}

impl PageBuilder {
    pub fn new() -> PageBuilder {
        PageBuilder {
            dict: Dictionary::default(),
            services: HashMap::new(),
            columns: Default::default(),
            first: None,
            last: None,
            previous_start: 0,
            trace_count: 0,
            span_count: 0,
            raw_span_count: 0,
            attr_count: 0,
            min_start: u64::MAX,
            max_end: 0,
            facts: std::collections::HashSet::with_hasher(FactHasher(0)),
            has_raw: false,
            generation: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.trace_count == 0
    }

    /// Bytes buffered so far (the columns before compression).
    pub fn raw_bytes(&self) -> usize {
        self.columns.iter().map(Vec::len).sum::<usize>() + self.dict.bytes.len()
    }

    /// Adds a trace; IDs must ascend across calls. `payload` is a run of `tempopb.Trace`
    /// field 1 (see `otlp::TraceBatch`).
    pub fn add(&mut self, trace_id: TraceId, payload: &[u8]) {
        self.begin(trace_id, payload);
        let mut parts = Parts::default();
        if parts.split(&trace_id, payload).is_some() {
            self.add_columnar(&parts);
        } else {
            self.add_raw(payload);
        }
    }

    /// Adds a trace from its stored payloads, in order of arrival: the same page as
    /// `add(trace_id, &otlp::assemble_trace(payloads))`. A trace that arrived in one payload
    /// which assembling would not change (no span ID twice, no two groups to merge, no empty
    /// group: what `split_export` writes for a trace sent whole) is taken apart once, not
    /// assembled into a new buffer and taken apart again. Returns the bytes of the trace as
    /// assembled.
    pub fn add_payloads(&mut self, trace_id: TraceId, payloads: &[&[u8]]) -> usize {
        if let [payload] = payloads {
            let mut parts = Parts::default();
            if parts.split(&trace_id, payload).is_some() && parts.is_assembled() {
                self.begin(trace_id, payload);
                self.add_columnar(&parts);
                return payload.len();
            }
        }
        let assembled = crate::otlp::assemble_trace(payloads);
        self.add(trace_id, &assembled);
        assembled.len()
    }

    fn begin(&mut self, trace_id: TraceId, payload: &[u8]) {
        assert!(
            payload.len() <= PAGE_COLUMN_BYTES_MAX / 2,
            "trace payload too large"
        );
        self.begin_trace(trace_id);
    }

    /// Takes the next trace's ID (the rows follow).
    fn begin_trace(&mut self, trace_id: TraceId) {
        assert!(
            self.last.is_none_or(|last| last < trace_id),
            "traces must be added in ascending ID order"
        );
        self.first.get_or_insert(trace_id);
        self.last = Some(trace_id);
        self.trace_count += 1;
        col(&mut self.columns, TRACE_IDS).extend_from_slice(trace_id.as_bytes());
    }

    fn add_raw(&mut self, payload: &[u8]) {
        self.has_raw = true;
        col(&mut self.columns, TRACE_FORM).push(TRACE_FORM_RAW);
        put_varint(payload.len() as u64, col(&mut self.columns, RAW_LENS));
        col(&mut self.columns, RAW_PAYLOADS).extend_from_slice(payload);
        self.raw_span_count = self
            .raw_span_count
            .saturating_add(crate::otlp::count_spans(payload));
    }

    fn add_columnar(&mut self, parts: &Parts<'_>) {
        let columns = &mut self.columns;
        let dict = &mut self.dict;
        col(columns, TRACE_FORM).push(TRACE_FORM_COLUMNAR);
        let trace_start = parts.spans.iter().map(|s| s.start).min().unwrap_or(0);
        let delta = trace_start.wrapping_sub(self.previous_start) as i64;
        put_varint(zigzag(delta), col(columns, TRACE_START));
        self.previous_start = trace_start;
        put_varint(parts.resources.len() as u64, col(columns, TRACE_RS));
        let facts = &mut self.facts;
        // The resource (`d+1`) of each scope row, for the spans' facts.
        let mut scope_resources = Vec::with_capacity(parts.scopes.len());
        for rs in &parts.resources {
            let resource = dict.optional(rs.resource);
            facts.insert(fact_row(FactRow::Resource, resource, 0));
            scope_resources.extend(std::iter::repeat_n(resource, rs.scopes.len()));
            put_varint(resource, col(columns, RS_RESOURCE));
            let schema = dict.nonempty(rs.schema_url);
            put_varint(schema, col(columns, RS_SCHEMA));
            let service = service_of(&mut self.services, dict, resource, rs.resource);
            put_varint(service, col(columns, RS_SERVICE));
            put_varint(rs.scopes.len() as u64, col(columns, RS_SCOPES));
            for ss in parts.scopes.get(rs.scopes.clone()).unwrap_or_default() {
                let scope = dict.optional(ss.scope);
                put_varint(scope, col(columns, SS_SCOPE));
                let schema = dict.nonempty(ss.schema_url);
                put_varint(schema, col(columns, SS_SCHEMA));
                put_varint(ss.spans.len() as u64, col(columns, SS_SPANS));
            }
        }
        // Parents by position in the trace: a small trace is searched linearly.
        let by_id: Option<HashMap<[u8; 8], usize>> = (parts.spans.len() > 32).then(|| {
            parts
                .spans
                .iter()
                .enumerate()
                .map(|(i, s)| (s.span_id, i))
                .collect()
        });
        for (scope_row, ss) in parts.scopes.iter().enumerate() {
            let resource = scope_resources.get(scope_row).copied().unwrap_or(0);
            for span in parts.spans.get(ss.spans.clone()).unwrap_or_default() {
                self.span_count += 1;
                self.min_start = self.min_start.min(span.start);
                self.max_end = self.max_end.max(span.end.max(span.start));
                col(columns, SPAN_ID).extend_from_slice(&span.span_id);
                let parent = match span.parent {
                    None => 0,
                    Some(parent) => {
                        let position = match &by_id {
                            Some(map) => map.get(&parent).copied(),
                            None => parts.spans.iter().position(|s| s.span_id == parent),
                        };
                        match position {
                            Some(k) => k as u64 + 2,
                            None => {
                                col(columns, PARENT_RAW).extend_from_slice(&parent);
                                1
                            }
                        }
                    }
                };
                put_varint(parent, col(columns, SPAN_PARENT));
                put_varint(span.start - trace_start, col(columns, SPAN_START));
                let duration = span.end.wrapping_sub(span.start) as i64;
                put_varint(zigzag(duration), col(columns, SPAN_DURATION));
                col(columns, SPAN_KIND).push(span.kind);
                let (code, message) = span.status.unwrap_or((STATUS_ABSENT, &[]));
                col(columns, SPAN_STATUS).push(code);
                let message = dict.nonempty(message);
                put_varint(message, col(columns, SPAN_STATUS_MSG));
                let name = dict.nonempty(span.name);
                put_varint(name, col(columns, SPAN_NAME));
                span_facts(facts, resource, span.status.map(|s| s.0), span.kind, name);
                let attrs = parts.attrs.get(span.attrs.clone()).unwrap_or_default();
                put_varint(attrs.len() as u64, col(columns, SPAN_ATTRS));
                for attr in attrs {
                    self.attr_count += 1;
                    let (key, value) = match *attr {
                        Attr::Split { key, value } => {
                            (dict.optional(Some(key)), dict.optional(value))
                        }
                        Attr::Whole(kv) => (0, dict.optional(Some(kv))),
                    };
                    put_attr_row(columns, facts, key, value);
                }
                let rest = parts.rest.get(span.rest.clone()).unwrap_or_default();
                put_varint(rest.len() as u64, col(columns, SPAN_REST_LENS));
                col(columns, SPAN_REST).extend_from_slice(rest);
            }
        }
    }

    /// Appends the encoded page to `out` and resets the builder.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> PageSummary {
        assert!(!self.is_empty(), "an empty page");
        let mut builder = std::mem::take(self);
        self.generation = builder.generation + 1;
        let filter = if builder.has_raw {
            Vec::new()
        } else {
            super::filter::build(&builder.fact_hashes())
        };
        *col(&mut builder.columns, DICT_LENS) = std::mem::take(&mut builder.dict.lens);
        *col(&mut builder.columns, DICT_BYTES) = std::mem::take(&mut builder.dict.bytes);
        let raw_total: usize = builder.columns.iter().map(Vec::len).sum();
        let mut body = Vec::with_capacity(raw_total / 2 + 512);
        body.push(PAGE_VERSION);
        body.extend_from_slice(&builder.trace_count.to_le_bytes());
        body.extend_from_slice(&builder.span_count.to_le_bytes());
        body.extend_from_slice(&builder.attr_count.to_le_bytes());
        body.push(COLUMN_COUNT as u8);
        let directory_at = body.len();
        body.resize(directory_at + COLUMN_COUNT * DIRECTORY_ENTRY_BYTES, 0);
        let mut directory = Vec::with_capacity(COLUMN_COUNT * DIRECTORY_ENTRY_BYTES);
        for (index, raw) in builder.columns.iter().enumerate() {
            let id = index as u8 + 1;
            assert!(raw.len() <= PAGE_COLUMN_BYTES_MAX, "column {id} too large");
            let compressed = if raw.len() >= 32 {
                lz4_flex::block::compress(raw)
            } else {
                Vec::new()
            };
            let (codec, stored): (u8, &[u8]) =
                if !compressed.is_empty() && compressed.len() < raw.len() {
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
            span_count: builder.span_count.saturating_add(builder.raw_span_count),
            min_start_unix_nanos: if builder.span_count == 0 {
                0
            } else {
                builder.min_start
            },
            max_end_unix_nanos: builder.max_end,
            filter,
        }
    }

    /// Dictionary entry `d+1 - 1` while building (`None` for 0 or out of range).
    fn dict_entry(&self, plus_one: u64) -> Option<&[u8]> {
        let index = usize::try_from(plus_one.checked_sub(1)?).ok()?;
        let end = *self.dict.ends.get(index)?;
        let start = match index.checked_sub(1) {
            Some(previous) => *self.dict.ends.get(previous)?,
            None => 0,
        };
        self.dict.bytes.get(start..end)
    }

    /// The hashes of every fact the page's spans hold (see [`super::filter::Fact`]).
    fn fact_hashes(&self) -> Vec<u64> {
        use super::filter::Fact;
        let mut hashes = Vec::with_capacity(self.facts.len() * 2);
        // Per resource: its `service.name` strings (normally one).
        let mut services: HashMap<u64, Vec<Vec<u8>>> = HashMap::new();
        let mask = (1u64 << 29) - 1;
        let mut rows: Vec<u64> = self.facts.iter().copied().collect();
        // Resources first: the service pairs need their names.
        rows.sort_unstable_by_key(|row| (row >> 58 != FactRow::Resource as u64, *row));
        for row in rows {
            let (tag, a, b) = (row >> 58, (row >> 29) & mask, row & mask);
            let entry = |d: u64| self.dict_entry(d).unwrap_or_default();
            match tag {
                t if t == FactRow::Attr as u64 => {
                    attr_facts(entry(a), self.dict_entry(b), &mut hashes);
                }
                t if t == FactRow::WholeAttr as u64 => {
                    if let Some(kv) = self.dict_entry(b) {
                        let (key, text) = key_value_text(kv);
                        hashes.push(Fact::SpanKey(&key).hash());
                        if let Some(text) = text {
                            hashes.push(Fact::SpanAttr(&key, &text).hash());
                        }
                    }
                }
                t if t == FactRow::Resource as u64 => {
                    let mut names = Vec::new();
                    if let Some(resource) = self.dict_entry(a) {
                        for (key, value) in resource_attributes(resource) {
                            hashes.push(Fact::ResourceKey(&key).hash());
                            if let Some(value) = value {
                                hashes.push(Fact::ResourceAttr(&key, &value).hash());
                                if key == b"service.name" {
                                    names.push(value);
                                }
                            }
                        }
                    }
                    services.insert(a, names);
                }
                t if t == FactRow::Name as u64 => hashes.push(Fact::Name(entry(a)).hash()),
                t if t == FactRow::ServiceStatus as u64 => {
                    for service in services.get(&a).into_iter().flatten() {
                        hashes.push(Fact::ServiceStatus(service, b as u8).hash());
                    }
                }
                t if t == FactRow::ServiceName as u64 => {
                    for service in services.get(&a).into_iter().flatten() {
                        hashes.push(Fact::ServiceName(service, entry(b)).hash());
                    }
                }
                t if t == FactRow::Status as u64 => hashes.push(Fact::Status(a as u8).hash()),
                t if t == FactRow::Kind as u64 => hashes.push(Fact::Kind(a as u8).hash()),
                _ => {}
            }
        }
        hashes
    }
}

/// Facts of a span attribute: its key, and its value when that is a string.
fn attr_facts(key: &[u8], value: Option<&[u8]>, hashes: &mut Vec<u64>) {
    use super::filter::Fact;
    hashes.push(Fact::SpanKey(key).hash());
    if let Some(text) = value.and_then(string_value) {
        hashes.push(Fact::SpanAttr(key, text).hash());
    }
}

/// The string of an encoded AnyValue holding one (the last `string_value`, as prost reads
/// it); `None` for other values.
pub fn string_value(any: &[u8]) -> Option<&[u8]> {
    let mut found = None;
    let mut at = 0;
    while let Some(field) = next_field(any, &mut at) {
        match field? {
            Field {
                number: 1,
                value: Wire::Bytes(text),
                ..
            } => found = Some(text),
            // Another field of the oneof after the string: prost keeps the last one.
            Field { number: 2..=7, .. } => found = None,
            _ => {}
        }
    }
    found
}

/// `(key, string value)` of every attribute of an encoded Resource (value `None` when it
/// is not a string), every occurrence of a repeated key included.
fn resource_attributes(resource: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(field) = next_field(resource, &mut at) {
        let Some(Field {
            number: 1,
            value: Wire::Bytes(kv),
            ..
        }) = field
        else {
            continue;
        };
        out.push(key_value_text(kv));
    }
    out
}

/// `(key, string value)` of an encoded KeyValue, as prost reads it.
fn key_value_text(kv: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
    match attribute(kv) {
        Attr::Split { key, value } => (
            key.to_vec(),
            value.and_then(string_value).map(<[u8]>::to_vec),
        ),
        Attr::Whole(kv) => match <KeyValue as prost::Message>::decode(kv) {
            Ok(kv) => {
                let text = match kv.value.and_then(|v| v.value) {
                    Some(any_value::Value::StringValue(s)) => Some(s.into_bytes()),
                    _ => None,
                };
                (kv.key.into_bytes(), text)
            }
            Err(_) => (Vec::new(), None),
        },
    }
}

// ---------------------------------------------------------------------------------------
// Reading a page.

/// A page whose frame, checksum and directory were verified; columns decode on demand.
#[derive(Debug)]
pub struct PageView<'a> {
    pub trace_count: u32,
    pub span_count: u32,
    pub attr_count: u32,
    /// `(id, codec, raw_len, stored bytes)`.
    columns: Vec<(u8, u8, usize, &'a [u8])>,
}

/// Reads varints of one column.
pub struct Varints<'c> {
    bytes: &'c [u8],
    at: usize,
    id: u8,
}

impl<'c> Varints<'c> {
    pub fn new(bytes: &'c [u8], id: u8) -> Varints<'c> {
        Varints { bytes, at: 0, id }
    }

    #[expect(
        clippy::should_implement_trait,
        reason = "fallible: a Result per item, not an Option"
    )]
    #[inline]
    pub fn next(&mut self) -> Result<u64, BlockError> {
        // Most rows are one byte (small counts and dictionary indices).
        if let Some(&byte) = self.bytes.get(self.at) {
            if byte < 0x80 {
                self.at += 1;
                return Ok(u64::from(byte));
            }
        }
        read_varint(self.bytes, &mut self.at)
            .ok_or_else(|| BlockError::Malformed(format!("column {}: varint", self.id)))
    }

    pub fn is_done(&self) -> bool {
        self.at >= self.bytes.len()
    }
}

/// Reads fixed-width rows or byte runs of one column.
struct Bytes<'c> {
    bytes: &'c [u8],
    at: usize,
    id: u8,
}

impl<'c> Bytes<'c> {
    fn take(&mut self, len: usize) -> Result<&'c [u8], BlockError> {
        let slice = self
            .at
            .checked_add(len)
            .and_then(|end| self.bytes.get(self.at..end))
            .ok_or_else(|| BlockError::Malformed(format!("column {}: too short", self.id)))?;
        self.at += len;
        Ok(slice)
    }
}

/// The page dictionary, decoded: entry ranges into its bytes.
pub struct Dict<'c> {
    bytes: &'c [u8],
    ends: Vec<usize>,
}

impl<'c> Dict<'c> {
    pub fn decode(lens: &[u8], bytes: &'c [u8]) -> Result<Dict<'c>, BlockError> {
        let mut reader = Varints::new(lens, DICT_LENS);
        let mut ends = Vec::new();
        let mut end = 0usize;
        while !reader.is_done() {
            let len = usize::try_from(reader.next()?).unwrap_or(usize::MAX);
            end = end.saturating_add(len);
            if end > bytes.len() {
                return Err(BlockError::Malformed(
                    "dictionary entry out of range".into(),
                ));
            }
            ends.push(end);
        }
        if end != bytes.len() {
            return Err(BlockError::Malformed("dictionary bytes left over".into()));
        }
        Ok(Dict { bytes, ends })
    }

    /// Entry `index`.
    pub fn get(&self, index: u64) -> Result<&'c [u8], BlockError> {
        let index = usize::try_from(index).unwrap_or(usize::MAX);
        let end = self.ends.get(index).copied();
        let start = match index.checked_sub(1) {
            Some(previous) => self.ends.get(previous).copied(),
            None => Some(0),
        };
        start
            .zip(end)
            .and_then(|(start, end)| self.bytes.get(start..end))
            .ok_or_else(|| BlockError::Malformed(format!("dictionary entry {index}")))
    }

    /// Entry `d+1 - 1`, `None` for 0.
    pub fn optional(&self, plus_one: u64) -> Result<Option<&'c [u8]>, BlockError> {
        match plus_one.checked_sub(1) {
            None => Ok(None),
            Some(index) => self.get(index).map(Some),
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// `d+1` of the entry equal to `wanted` (the first such), if any.
    pub fn find(&self, wanted: &[u8]) -> Option<u64> {
        let mut start = 0usize;
        for (index, &end) in self.ends.iter().enumerate() {
            if end - start == wanted.len() && self.bytes.get(start..end) == Some(wanted) {
                return Some(index as u64 + 1);
            }
            start = end;
        }
        None
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// Every column of a page, decompressed (what a rebuild needs).
struct AllColumns<'a> {
    columns: Vec<Cow<'a, [u8]>>,
}

impl AllColumns<'_> {
    #[expect(
        clippy::indexing_slicing,
        reason = "column ids are the constants 1..=COLUMN_COUNT"
    )]
    fn get(&self, id: u8) -> &[u8] {
        &self.columns[usize::from(id) - 1]
    }
}

/// Cursors over every column while traces are walked in order.
struct Walk<'c> {
    dict: Dict<'c>,
    ids: &'c [u8],
    form: &'c [u8],
    trace_start: Varints<'c>,
    trace_rs: Varints<'c>,
    rs_resource: Varints<'c>,
    rs_schema: Varints<'c>,
    rs_service: Varints<'c>,
    rs_scopes: Varints<'c>,
    ss_scope: Varints<'c>,
    ss_schema: Varints<'c>,
    ss_spans: Varints<'c>,
    span_id: &'c [u8],
    span_parent: Varints<'c>,
    parent_raw: Bytes<'c>,
    span_start: Varints<'c>,
    span_duration: Varints<'c>,
    span_kind: &'c [u8],
    span_status: &'c [u8],
    span_status_msg: Varints<'c>,
    span_name: Varints<'c>,
    span_attrs: Varints<'c>,
    attr_key: Varints<'c>,
    attr_value: Varints<'c>,
    rest_lens: Varints<'c>,
    rest: Bytes<'c>,
    raw_lens: Varints<'c>,
    raw: Bytes<'c>,
    /// Spans walked so far (the row of the next span).
    span_row: usize,
    previous_start: u64,
    scratch_span: Vec<u8>,
    scratch_scope: Vec<u8>,
    scratch_rs: Vec<u8>,
}

fn malformed(what: &str) -> BlockError {
    BlockError::Malformed(what.to_string())
}

impl<'c> Walk<'c> {
    fn new(
        all: &'c AllColumns<'_>,
        trace_count: u32,
        span_count: u32,
    ) -> Result<Walk<'c>, BlockError> {
        let v = |id| Varints::new(all.get(id), id);
        let b = |id| Bytes {
            bytes: all.get(id),
            at: 0,
            id,
        };
        let traces = trace_count as usize;
        let spans = span_count as usize;
        let ids = all.get(TRACE_IDS);
        let form = all.get(TRACE_FORM);
        if ids.len() != traces.saturating_mul(16)
            || form.len() != traces
            || all.get(SPAN_ID).len() != spans.saturating_mul(8)
            || all.get(SPAN_KIND).len() != spans
            || all.get(SPAN_STATUS).len() != spans
        {
            return Err(malformed("fixed-width columns do not match the row counts"));
        }
        let mut previous: Option<&[u8]> = None;
        for id in ids.chunks_exact(16) {
            if previous.is_some_and(|p| p >= id) {
                return Err(malformed("trace IDs of a page do not ascend"));
            }
            previous = Some(id);
        }
        Ok(Walk {
            dict: Dict::decode(all.get(DICT_LENS), all.get(DICT_BYTES))?,
            ids,
            form,
            trace_start: v(TRACE_START),
            trace_rs: v(TRACE_RS),
            rs_resource: v(RS_RESOURCE),
            rs_schema: v(RS_SCHEMA),
            rs_service: v(RS_SERVICE),
            rs_scopes: v(RS_SCOPES),
            ss_scope: v(SS_SCOPE),
            ss_schema: v(SS_SCHEMA),
            ss_spans: v(SS_SPANS),
            span_id: all.get(SPAN_ID),
            span_parent: v(SPAN_PARENT),
            parent_raw: b(PARENT_RAW),
            span_start: v(SPAN_START),
            span_duration: v(SPAN_DURATION),
            span_kind: all.get(SPAN_KIND),
            span_status: all.get(SPAN_STATUS),
            span_status_msg: v(SPAN_STATUS_MSG),
            span_name: v(SPAN_NAME),
            span_attrs: v(SPAN_ATTRS),
            attr_key: v(ATTR_KEY),
            attr_value: v(ATTR_VALUE),
            rest_lens: v(SPAN_REST_LENS),
            rest: b(SPAN_REST),
            raw_lens: v(RAW_LENS),
            raw: b(RAW_PAYLOADS),
            span_row: 0,
            previous_start: 0,
            scratch_span: Vec::new(),
            scratch_scope: Vec::new(),
            scratch_rs: Vec::new(),
        })
    }

    fn trace_id(&self, index: usize) -> Result<TraceId, BlockError> {
        self.ids
            .get(index * 16..index * 16 + 16)
            .and_then(TraceId::from_slice)
            .ok_or_else(|| malformed("trace ID"))
    }

    fn span_id_at(&self, row: usize) -> Result<&'c [u8], BlockError> {
        self.span_id
            .get(row.saturating_mul(8)..row.saturating_mul(8).saturating_add(8))
            .ok_or_else(|| malformed("span row out of range"))
    }

    /// Walks trace `index` (traces must be walked in order), appending its payload to
    /// `out` when given, else only moving the cursors past it.
    fn trace(&mut self, index: usize, out: Option<&mut Vec<u8>>) -> Result<(), BlockError> {
        let trace_id = self.trace_id(index)?;
        let form = self.form.get(index).copied().unwrap_or(u8::MAX);
        if form == TRACE_FORM_RAW {
            let len = usize::try_from(self.raw_lens.next()?).unwrap_or(usize::MAX);
            let payload = self.raw.take(len)?;
            if let Some(out) = out {
                out.extend_from_slice(payload);
            }
            return Ok(());
        }
        if form != TRACE_FORM_COLUMNAR {
            return Err(malformed("trace form"));
        }
        let delta = unzigzag(self.trace_start.next()?);
        let trace_start = self.previous_start.wrapping_add(delta as u64);
        self.previous_start = trace_start;
        let Some(out) = out else {
            return self.skip_trace();
        };
        let first_row = self.span_row;
        let mut scratch_rs = std::mem::take(&mut self.scratch_rs);
        let mut scratch_scope = std::mem::take(&mut self.scratch_scope);
        let mut scratch_span = std::mem::take(&mut self.scratch_span);
        let result = (|| {
            for _ in 0..self.trace_rs.next()? {
                scratch_rs.clear();
                let resource = self.dict.optional(self.rs_resource.next()?)?;
                let schema = self.dict.optional(self.rs_schema.next()?)?;
                self.rs_service.next()?;
                if let Some(resource) = resource {
                    put_bytes_field(1, resource, &mut scratch_rs);
                }
                for _ in 0..self.rs_scopes.next()? {
                    scratch_scope.clear();
                    let scope = self.dict.optional(self.ss_scope.next()?)?;
                    let scope_schema = self.dict.optional(self.ss_schema.next()?)?;
                    if let Some(scope) = scope {
                        put_bytes_field(1, scope, &mut scratch_scope);
                    }
                    for _ in 0..self.ss_spans.next()? {
                        scratch_span.clear();
                        self.span(&trace_id, trace_start, first_row, &mut scratch_span)?;
                        put_bytes_field(2, &scratch_span, &mut scratch_scope);
                        check_rebuilt(out.len() + scratch_rs.len() + scratch_scope.len())?;
                    }
                    if let Some(url) = scope_schema {
                        put_bytes_field(3, url, &mut scratch_scope);
                    }
                    put_bytes_field(2, &scratch_scope, &mut scratch_rs);
                }
                if let Some(url) = schema {
                    put_bytes_field(3, url, &mut scratch_rs);
                }
                put_bytes_field(1, &scratch_rs, out);
            }
            Ok(())
        })();
        self.scratch_rs = scratch_rs;
        self.scratch_scope = scratch_scope;
        self.scratch_span = scratch_span;
        result
    }

    /// Moves the cursors past the rows of one columnar trace (its start already read)
    /// without decoding them.
    fn skip_trace(&mut self) -> Result<(), BlockError> {
        for _ in 0..self.trace_rs.next()? {
            self.rs_resource.next()?;
            self.rs_schema.next()?;
            self.rs_service.next()?;
            for _ in 0..self.rs_scopes.next()? {
                self.ss_scope.next()?;
                self.ss_schema.next()?;
                for _ in 0..self.ss_spans.next()? {
                    self.span_row += 1;
                    if self.span_parent.next()? == 1 {
                        self.parent_raw.take(8)?;
                    }
                    self.span_start.next()?;
                    self.span_duration.next()?;
                    self.span_status_msg.next()?;
                    self.span_name.next()?;
                    for _ in 0..self.span_attrs.next()? {
                        self.attr_key.next()?;
                        self.attr_value.next()?;
                    }
                    let rest_len = usize::try_from(self.rest_lens.next()?).unwrap_or(usize::MAX);
                    self.rest.take(rest_len)?;
                }
            }
        }
        Ok(())
    }

    /// The next span row, encoded into `out` as prost would (other fields merged back in by
    /// field number).
    fn span(
        &mut self,
        trace_id: &TraceId,
        trace_start: u64,
        first_row: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), BlockError> {
        let row = self.span_row;
        self.span_row += 1;
        let span_id = self.span_id_at(row)?;
        let parent = match self.span_parent.next()? {
            0 => None,
            1 => Some(self.parent_raw.take(8)?),
            k => {
                let k = usize::try_from(k - 2).unwrap_or(usize::MAX);
                Some(self.span_id_at(first_row.saturating_add(k))?)
            }
        };
        let start = trace_start.wrapping_add(self.span_start.next()?);
        let end = start.wrapping_add(unzigzag(self.span_duration.next()?) as u64);
        let kind = self.span_kind.get(row).copied().unwrap_or(0);
        let status = self.span_status.get(row).copied().unwrap_or(STATUS_ABSENT);
        let status_message = self.dict.optional(self.span_status_msg.next()?)?;
        let name = self.dict.optional(self.span_name.next()?)?;
        let attr_count = self.span_attrs.next()?;
        let rest_len = usize::try_from(self.rest_lens.next()?).unwrap_or(usize::MAX);
        let rest = self.rest.take(rest_len)?;
        let mut rest_at = 0usize;
        // Emits the other fields numbered below `number`.
        let mut flush_rest = |number: u64, out: &mut Vec<u8>| -> Result<(), BlockError> {
            while rest_at < rest.len() {
                let mut at = rest_at;
                let field = next_field(rest, &mut at)
                    .flatten()
                    .ok_or_else(|| malformed("span rest"))?;
                if field.number >= number {
                    break;
                }
                out.extend_from_slice(field.raw);
                rest_at = at;
            }
            Ok(())
        };
        put_bytes_field(1, trace_id.as_bytes(), out);
        put_bytes_field(2, span_id, out);
        flush_rest(4, out)?;
        if let Some(parent) = parent {
            put_bytes_field(4, parent, out);
        }
        if let Some(name) = name {
            put_bytes_field(5, name, out);
        }
        flush_rest(6, out)?;
        if kind != 0 {
            put_tag(6, 0, out);
            put_varint(u64::from(kind), out);
        }
        if start != 0 {
            put_tag(7, 1, out);
            out.extend_from_slice(&start.to_le_bytes());
        }
        if end != 0 {
            put_tag(8, 1, out);
            out.extend_from_slice(&end.to_le_bytes());
        }
        for _ in 0..attr_count {
            check_rebuilt(out.len())?;
            let key = self.attr_key.next()?;
            let value = self.dict.optional(self.attr_value.next()?)?;
            match self.dict.optional(key)? {
                None => {
                    put_bytes_field(9, value.ok_or_else(|| malformed("attribute"))?, out);
                }
                Some(key) => {
                    let mut body_len = 0;
                    if !key.is_empty() {
                        body_len += 1 + varint_len(key.len()) + key.len();
                    }
                    if let Some(value) = value {
                        body_len += 1 + varint_len(value.len()) + value.len();
                    }
                    put_tag(9, 2, out);
                    put_varint(body_len as u64, out);
                    if !key.is_empty() {
                        put_bytes_field(1, key, out);
                    }
                    if let Some(value) = value {
                        put_bytes_field(2, value, out);
                    }
                }
            }
        }
        flush_rest(15, out)?;
        if status != STATUS_ABSENT {
            let message = status_message.unwrap_or_default();
            let mut body_len = 0;
            if !message.is_empty() {
                body_len += 1 + varint_len(message.len()) + message.len();
            }
            if status != 0 {
                body_len += 1 + varint_len(usize::from(status));
            }
            put_tag(15, 2, out);
            put_varint(body_len as u64, out);
            if !message.is_empty() {
                put_bytes_field(2, message, out);
            }
            if status != 0 {
                put_tag(3, 0, out);
                put_varint(u64::from(status), out);
            }
        }
        flush_rest(u64::MAX, out)?;
        Ok(())
    }
}

/// A payload was at most half of [`PAGE_COLUMN_BYTES_MAX`] when it was stored (`add`
/// asserts it), so a rebuild that grows past the limit is damage (dictionary entries used
/// over and over), refused before it exhausts memory.
fn check_rebuilt(bytes: usize) -> Result<(), BlockError> {
    if bytes > PAGE_COLUMN_BYTES_MAX {
        return Err(malformed("a rebuilt trace is larger than any stored one"));
    }
    Ok(())
}

fn varint_len(value: usize) -> usize {
    let bits = 64 - (value as u64 | 1).leading_zeros() as usize;
    bits.div_ceil(7)
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

    /// `(id, raw bytes, stored bytes)` of every column, in directory order.
    pub fn column_sizes(&self) -> Vec<(u8, usize, usize)> {
        self.columns
            .iter()
            .map(|&(id, _, raw_len, stored)| (id, raw_len, stored.len()))
            .collect()
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

    fn all_columns(&self) -> Result<AllColumns<'a>, BlockError> {
        let columns = (1..=COLUMN_COUNT as u8)
            .map(|id| self.column(id))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllColumns { columns })
    }

    /// The payload of `trace_id` (rebuilt from the columns) if this page holds it.
    pub fn find_trace(&self, trace_id: &TraceId) -> Result<Option<Vec<u8>>, BlockError> {
        let ids = self.column(TRACE_IDS)?;
        if ids.len() != (self.trace_count as usize).saturating_mul(16) {
            return Err(malformed("trace ID column does not match the trace count"));
        }
        let position = ids
            .chunks_exact(16)
            .collect::<Vec<_>>()
            .binary_search(&trace_id.as_bytes().as_slice());
        let Ok(wanted) = position else {
            return Ok(None);
        };
        let all = self.all_columns()?;
        let mut walk = Walk::new(&all, self.trace_count, self.span_count)?;
        for index in 0..wanted {
            walk.trace(index, None)?;
        }
        let mut payload = Vec::new();
        walk.trace(wanted, Some(&mut payload))?;
        Ok(Some(payload))
    }

    /// The trace IDs of the page, in order.
    pub fn trace_ids(&self) -> Result<Vec<TraceId>, BlockError> {
        let ids = self.column(TRACE_IDS)?;
        if ids.len() != (self.trace_count as usize).saturating_mul(16) {
            return Err(malformed("trace ID column does not match the trace count"));
        }
        Ok(ids
            .chunks_exact(16)
            .filter_map(TraceId::from_slice)
            .collect())
    }

    /// The payloads of the traces at `indices` (ascending positions in the page), rebuilt.
    pub fn rebuild(&self, indices: &[usize]) -> Result<Vec<(TraceId, Vec<u8>)>, BlockError> {
        // Nothing to rebuild: no column is decompressed (a scan that judged every trace
        // from its columns asks for none).
        if indices.is_empty() {
            return Ok(Vec::new());
        }
        let all = self.all_columns()?;
        let mut walk = Walk::new(&all, self.trace_count, self.span_count)?;
        let mut out = Vec::with_capacity(indices.len());
        let mut next = 0usize;
        for &wanted in indices {
            if wanted < next || wanted >= self.trace_count as usize {
                return Err(malformed("trace positions out of order or range"));
            }
            while next < wanted {
                walk.trace(next, None)?;
                next += 1;
            }
            let mut payload = Vec::new();
            walk.trace(wanted, Some(&mut payload))?;
            out.push((walk.trace_id(wanted)?, payload));
            next = wanted + 1;
        }
        Ok(out)
    }

    /// Every trace of the page with its payload (rebuilt), in ID order.
    pub fn traces(&self) -> Result<Vec<(TraceId, Vec<u8>)>, BlockError> {
        let all = self.all_columns()?;
        let mut walk = Walk::new(&all, self.trace_count, self.span_count)?;
        let mut traces = Vec::with_capacity(self.trace_count as usize);
        for index in 0..self.trace_count as usize {
            let mut payload = Vec::new();
            walk.trace(index, Some(&mut payload))?;
            traces.push((walk.trace_id(index)?, payload));
        }
        if walk.span_row != self.span_count as usize {
            return Err(BlockError::Malformed(format!(
                "{} span rows walked, the page says {}",
                walk.span_row, self.span_count
            )));
        }
        Ok(traces)
    }

    /// Decodes every column and checks the row counts (the fuzz target and tests use it).
    pub fn check_columns(&self) -> Result<(), BlockError> {
        let spans = self.span_count as usize;
        let attrs = self.attr_count as usize;
        let counted: [(u8, usize); 10] = [
            (SPAN_PARENT, spans),
            (SPAN_START, spans),
            (SPAN_DURATION, spans),
            (SPAN_STATUS_MSG, spans),
            (SPAN_NAME, spans),
            (SPAN_ATTRS, spans),
            (SPAN_REST_LENS, spans),
            (ATTR_KEY, attrs),
            (ATTR_VALUE, attrs),
            (RS_SERVICE, usize::MAX),
        ];
        for (id, rows) in counted {
            let column = self.column(id)?;
            let mut reader = Varints::new(&column, id);
            let mut found = 0usize;
            while !reader.is_done() {
                reader.next()?;
                found += 1;
            }
            if rows != usize::MAX && found != rows {
                return Err(BlockError::Malformed(format!(
                    "column {id} has {found} rows, the page says {rows}"
                )));
            }
        }
        self.traces().map(|_| ())
    }
}

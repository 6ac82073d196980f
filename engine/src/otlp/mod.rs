//! OTLP trace splitting (sans-IO): an `ExportTraceServiceRequest` in, one [`TraceBatch`] per
//! trace out, without decoding the spans into structs. A zero-copy wire scanner walks
//! request -> `ResourceSpans` -> `ScopeSpans` -> `Span`, checks everything prost would check
//! (and a little more), and copies each span's bytes verbatim into its trace's batch.
//!
//! The payload of a batch, and the output of [`assemble_trace`], are runs of field 1 of
//! `tempopb.Trace`; the layout is drawn on [`TraceBatch`]. Concatenating payloads gives a
//! valid `tempopb.Trace`; [`assemble_trace`] also merges equal resources and scopes and
//! drops repeated spans.
//!
//! Unknown fields: inside spans, resources and scopes they are kept (those bytes are copied
//! verbatim). In the request, `ResourceSpans` and `ScopeSpans` they are checked and dropped.
//! A field that occurs several times where one is expected behaves as in prost: the last
//! bytes or string win, and messages merge (their encodings are concatenated).

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

mod assemble;
pub mod attrs;
mod schema;
mod wire;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;

use crate::ids::{SpanId, TraceId};

pub use assemble::{assemble_trace, count_spans};
pub use wire::WireType;

use schema::{check_field, check_message, check_utf8, Occurrences};
use wire::{field_len, put_len_field, put_len_prefix, Scanner};

/// Messages may nest at most this deep, counted from the request (depth 0; a span is at
/// depth 3, its attribute values at 5). Unknown groups count as a level. It bounds the
/// recursion of the scanner, so a hostile `AnyValue` nesting cannot exhaust the stack.
pub const NESTING_DEPTH_MAX: u32 = 64;

/// prost's decoder refuses messages nested more than 100 deep. Everything this module
/// accepts must decode with prost, also when wrapped in a response message or two.
const PROST_RECURSION_LIMIT: u32 = 100;
const _: () = assert!(NESTING_DEPTH_MAX + 8 <= PROST_RECURSION_LIMIT);
// A span and its attribute values must fit with room for real nesting.
const _: () = assert!(NESTING_DEPTH_MAX >= 32);

/// Up to this many traces in one request are found by a linear scan; beyond it, a map.
const TRACES_SCANNED_LINEARLY_MAX: usize = 16;

/// The spans of one trace from one export request.
///
/// The payload is a run of field 1 of `tempopb.Trace` (`repeated ResourceSpans batches =
/// 1`), which is also the wire shape of `TracesData` (`repeated ResourceSpans
/// resource_spans = 1`):
///
/// ```text
/// payload = { 0x0A len ResourceSpans }+
/// ResourceSpans:
///   [0x0A len Resource]        the request's bytes; absent if absent in the request
///   { 0x12 len ScopeSpans }+   one per ScopeSpans of the request holding this trace's spans
///   [0x1A len schema_url]      omitted when empty
/// ScopeSpans:
///   [0x0A len scope]           the request's InstrumentationScope bytes
///   { 0x12 len Span }+         this trace's spans, byte-for-byte, in request order
///   [0x1A len schema_url]      omitted when empty
/// ```
///
/// One `ResourceSpans` of the request gives at most one `ResourceSpans` per batch. Field
/// order and omissions are prost's, so the payload is the canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceBatch {
    pub trace_id: TraceId,
    pub span_count: u32,
    /// The smallest `start_time_unix_nano` of the spans (0 when a span has none).
    pub start_unix_nanos_min: u64,
    /// The largest `end_time_unix_nano` of the spans.
    pub end_unix_nanos_max: u64,
    /// Encoded `ResourceSpans` messages holding only this trace's spans, each prefixed with
    /// the tag and length of field 1, so that concatenating payloads of several batches
    /// yields a valid `tempopb.Trace` (`repeated ResourceSpans batches = 1`). Layout above.
    pub payload: Vec<u8>,
}

/// Why a request was refused, and where: `Display` gives the gRPC `INVALID_ARGUMENT`
/// message, e.g. `resource_spans[0].scope_spans[1].spans[3].trace_id: expected 16 bytes,
/// got 5`. Byte offsets count from the start of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpError {
    /// Innermost segment first (segments are added as the error travels outwards).
    path: Vec<PathSegment>,
    kind: OtlpErrorKind,
}

/// One step of the path to the offending field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathSegment {
    /// A singular field: `status`.
    Field(&'static str),
    /// An element of a repeated field: `spans[3]`.
    Element(&'static str, u32),
}

impl fmt::Display for PathSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSegment::Field(name) => f.write_str(name),
            PathSegment::Element(name, index) => write!(f, "{name}[{index}]"),
        }
    }
}

/// What was wrong. Every `at` is the byte offset in the request of the field's tag (or of
/// the bad varint or UTF-8 byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpErrorKind {
    TruncatedVarint {
        at: usize,
    },
    /// More than ten bytes, or a tenth byte that overflows 64 bits.
    VarintTooLong {
        at: usize,
    },
    /// Field number 0, or above 2^29 - 1.
    InvalidFieldNumber {
        number: u64,
        at: usize,
    },
    /// Wire types 6 and 7 do not exist.
    InvalidWireType {
        wire_type: u8,
        at: usize,
    },
    /// The field's value runs past the end of the enclosing message.
    Truncated {
        field: u32,
        wire_type: WireType,
        at: usize,
        /// Bytes the field needs (declared length, or 8 or 4).
        declared: u64,
        /// Bytes left in the enclosing message after the tag (and length).
        left: usize,
    },
    UnexpectedEndGroup {
        field: u32,
        at: usize,
    },
    UnterminatedGroup {
        field: u32,
        at: usize,
    },
    /// A known field with the wrong wire type.
    WrongWireType {
        expected: WireType,
        got: WireType,
        at: usize,
    },
    InvalidUtf8 {
        at: usize,
    },
    /// A trace ID or span ID of the wrong length.
    IdLength {
        expected: usize,
        got: usize,
    },
    /// A trace ID or span ID of all zeros.
    ZeroId,
    TooDeep {
        at: usize,
    },
}

impl fmt::Display for OtlpErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            OtlpErrorKind::TruncatedVarint { at } => write!(f, "truncated varint at byte {at}"),
            OtlpErrorKind::VarintTooLong { at } => {
                write!(f, "varint longer than 64 bits at byte {at}")
            }
            OtlpErrorKind::InvalidFieldNumber { number, at } => {
                write!(f, "invalid field number {number} at byte {at}")
            }
            OtlpErrorKind::InvalidWireType { wire_type, at } => {
                write!(f, "invalid wire type {wire_type} at byte {at}")
            }
            OtlpErrorKind::Truncated {
                field,
                wire_type,
                at,
                declared,
                left,
            } => write!(
                f,
                "truncated {wire_type} field {field} at byte {at}: needs {declared} bytes, {left} left"
            ),
            OtlpErrorKind::UnexpectedEndGroup { field, at } => {
                write!(f, "unexpected end-group tag of field {field} at byte {at}")
            }
            OtlpErrorKind::UnterminatedGroup { field, at } => {
                write!(f, "unterminated group field {field} at byte {at}")
            }
            OtlpErrorKind::WrongWireType { expected, got, at } => {
                write!(f, "expected wire type {expected}, got {got} at byte {at}")
            }
            OtlpErrorKind::InvalidUtf8 { at } => write!(f, "invalid UTF-8 at byte {at}"),
            OtlpErrorKind::IdLength { expected, got } => {
                write!(f, "expected {expected} bytes, got {got}")
            }
            OtlpErrorKind::ZeroId => f.write_str("must not be all zeros"),
            OtlpErrorKind::TooDeep { at } => write!(
                f,
                "messages nested deeper than {NESTING_DEPTH_MAX} levels at byte {at}"
            ),
        }
    }
}

/// Paths longer than this are shown with their middle elided (a depth bomb would otherwise
/// make a message of kilobytes).
const PATH_SEGMENTS_SHOWN_MAX: usize = 16;

impl OtlpError {
    pub(crate) fn new(kind: OtlpErrorKind) -> OtlpError {
        OtlpError {
            path: Vec::new(),
            kind,
        }
    }

    /// The same error, one level further out.
    pub(crate) fn within(mut self, segment: PathSegment) -> OtlpError {
        self.path.push(segment);
        self
    }

    pub fn kind(&self) -> &OtlpErrorKind {
        &self.kind
    }

    /// The path to the offending field, outermost first: `resource_spans[0].scope_spans[1]`.
    pub fn path(&self) -> impl Iterator<Item = &PathSegment> {
        self.path.iter().rev()
    }
}

impl fmt::Display for OtlpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.path.len();
        let (head, tail) = if count > PATH_SEGMENTS_SHOWN_MAX {
            (PATH_SEGMENTS_SHOWN_MAX / 2, PATH_SEGMENTS_SHOWN_MAX / 2 - 1)
        } else {
            (count, 0)
        };
        for (index, segment) in self.path().enumerate() {
            if index == head && tail > 0 {
                write!(f, ".(... {} more ...)", count - head - tail)?;
            }
            if index >= head && index < count - tail {
                continue;
            }
            if index > 0 {
                f.write_str(".")?;
            }
            write!(f, "{segment}")?;
        }
        if count > 0 {
            f.write_str(": ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for OtlpError {}

trait ResultExt<T> {
    fn within(self, segment: PathSegment) -> Result<T, OtlpError>;
}

impl<T> ResultExt<T> for Result<T, OtlpError> {
    fn within(self, segment: PathSegment) -> Result<T, OtlpError> {
        self.map_err(|error| error.within(segment))
    }
}

/// Splits the bytes of an `ExportTraceServiceRequest` into one batch per trace, in order of
/// each trace's first span. The request is hostile input: it is checked completely before
/// anything is returned, and nothing in it can make this panic.
pub fn split_export(request: &[u8]) -> Result<Vec<TraceBatch>, OtlpError> {
    let mut splitter = Splitter::default();
    let mut scanner = Scanner::new(request, 0);
    let mut index = 0u32;
    while let Some(field) = scanner.next_field(0)? {
        if field.number == 1 {
            let segment = PathSegment::Element("resource_spans", index);
            index = index.saturating_add(1);
            let (bytes, at) = field.bytes().within(segment)?;
            splitter.resource_spans(bytes, at).within(segment)?;
        }
    }
    // A payload grows once per `ResourceSpans` holding its trace, so its capacity can be up
    // to twice its length; it is held in memory until its head block is cut. Shrinking in
    // place costs no copy in the allocator and gives the slack back.
    for batch in &mut splitter.batches {
        if batch.payload.capacity() - batch.payload.len() > batch.payload.len() / 8 {
            batch.payload.shrink_to_fit();
        }
    }
    Ok(splitter.batches)
}

/// A span's identity and times, read while it is checked.
struct SpanFacts {
    trace_id: TraceId,
    start_unix_nanos: u64,
    end_unix_nanos: u64,
}

/// Where one span goes: its batch, and which `ScopeSpans` of the current `ResourceSpans`
/// it came from.
struct SpanEntry<'a> {
    batch: usize,
    scope: usize,
    bytes: &'a [u8],
}

/// A `ScopeSpans` of the current `ResourceSpans`.
struct ScopeMeta<'a> {
    scope: Option<Cow<'a, [u8]>>,
    schema_url: &'a [u8],
}

/// State of one `split_export` call. The scratch vectors are reused across `ResourceSpans`,
/// so a request costs one allocation per batch plus a few amortised ones.
#[derive(Default)]
struct Splitter<'a> {
    batches: Vec<TraceBatch>,
    /// The batch of the previous span: consecutive spans mostly share a trace.
    last_batch: usize,
    /// Built once the request holds more than `TRACES_SCANNED_LINEARLY_MAX` traces.
    batch_by_trace: Option<crate::hash::IdMap<TraceId, usize>>,
    scope_bodies: Vec<(&'a [u8], usize)>,
    scopes: Vec<ScopeMeta<'a>>,
    spans: Vec<SpanEntry<'a>>,
}

impl<'a> Splitter<'a> {
    /// One `ResourceSpans` (depth 1), at absolute offset `origin`.
    fn resource_spans(&mut self, bytes: &'a [u8], origin: usize) -> Result<(), OtlpError> {
        let mut resource: Option<Cow<'a, [u8]>> = None;
        let mut schema_url: &'a [u8] = &[];
        self.scope_bodies.clear();
        let mut scanner = Scanner::new(bytes, origin);
        while let Some(field) = scanner.next_field(1)? {
            match field.number {
                1 => {
                    let segment = PathSegment::Field("resource");
                    let (body, at) = field.bytes().within(segment)?;
                    check_message(&schema::RESOURCE, body, at, 2).within(segment)?;
                    merge_message(&mut resource, body);
                }
                2 => {
                    let index = u32::try_from(self.scope_bodies.len()).unwrap_or(u32::MAX);
                    let segment = PathSegment::Element("scope_spans", index);
                    self.scope_bodies.push(field.bytes().within(segment)?);
                }
                3 => {
                    let segment = PathSegment::Field("schema_url");
                    let (body, at) = field.bytes().within(segment)?;
                    check_utf8(body, at).within(segment)?;
                    schema_url = body;
                }
                _ => {}
            }
        }

        self.scopes.clear();
        self.spans.clear();
        let scope_bodies = std::mem::take(&mut self.scope_bodies);
        for (index, &(body, at)) in scope_bodies.iter().enumerate() {
            let segment =
                PathSegment::Element("scope_spans", u32::try_from(index).unwrap_or(u32::MAX));
            self.scope_spans(body, at).within(segment)?;
        }
        self.scope_bodies = scope_bodies;
        self.emit(resource.as_deref(), schema_url);
        Ok(())
    }

    /// One `ScopeSpans` (depth 2): checks it and notes where each span goes.
    fn scope_spans(&mut self, bytes: &'a [u8], origin: usize) -> Result<(), OtlpError> {
        let scope_index = self.scopes.len();
        let mut scope: Option<Cow<'a, [u8]>> = None;
        let mut schema_url: &'a [u8] = &[];
        let mut span_index = 0u32;
        let mut scanner = Scanner::new(bytes, origin);
        while let Some(field) = scanner.next_field(2)? {
            match field.number {
                1 => {
                    let segment = PathSegment::Field("scope");
                    let (body, at) = field.bytes().within(segment)?;
                    check_message(&schema::SCOPE, body, at, 3).within(segment)?;
                    merge_message(&mut scope, body);
                }
                2 => {
                    let segment = PathSegment::Element("spans", span_index);
                    span_index = span_index.saturating_add(1);
                    let (body, at) = field.bytes().within(segment)?;
                    let facts = check_span(body, at).within(segment)?;
                    let batch = self.batch_for(&facts);
                    self.spans.push(SpanEntry {
                        batch,
                        scope: scope_index,
                        bytes: body,
                    });
                }
                3 => {
                    let segment = PathSegment::Field("schema_url");
                    let (body, at) = field.bytes().within(segment)?;
                    check_utf8(body, at).within(segment)?;
                    schema_url = body;
                }
                _ => {}
            }
        }
        self.scopes.push(ScopeMeta { scope, schema_url });
        Ok(())
    }

    /// The index of the batch of `facts.trace_id` (created if new), updated for one more
    /// span.
    fn batch_for(&mut self, facts: &SpanFacts) -> usize {
        let index = match self.find_batch(&facts.trace_id) {
            Some(index) => index,
            None => self.add_batch(facts.trace_id),
        };
        self.last_batch = index;
        let batch = batch_at(&mut self.batches, index);
        batch.span_count = batch.span_count.saturating_add(1);
        batch.start_unix_nanos_min = batch.start_unix_nanos_min.min(facts.start_unix_nanos);
        batch.end_unix_nanos_max = batch.end_unix_nanos_max.max(facts.end_unix_nanos);
        index
    }

    fn find_batch(&self, trace_id: &TraceId) -> Option<usize> {
        if let Some(last) = self.batches.get(self.last_batch) {
            if last.trace_id == *trace_id {
                return Some(self.last_batch);
            }
        }
        match &self.batch_by_trace {
            Some(map) => map.get(trace_id).copied(),
            None => self
                .batches
                .iter()
                .position(|batch| batch.trace_id == *trace_id),
        }
    }

    fn add_batch(&mut self, trace_id: TraceId) -> usize {
        let index = self.batches.len();
        self.batches.push(TraceBatch {
            trace_id,
            span_count: 0,
            start_unix_nanos_min: u64::MAX,
            end_unix_nanos_max: 0,
            payload: Vec::new(),
        });
        if let Some(map) = &mut self.batch_by_trace {
            map.insert(trace_id, index);
        } else if self.batches.len() > TRACES_SCANNED_LINEARLY_MAX {
            let map = self
                .batches
                .iter()
                .enumerate()
                .map(|(index, batch)| (batch.trace_id, index))
                .collect();
            self.batch_by_trace = Some(map);
        }
        index
    }

    /// Appends one `ResourceSpans` to each batch that got spans from the current one.
    fn emit(&mut self, resource: Option<&[u8]>, schema_url: &[u8]) {
        // Stable: spans keep request order within a (batch, scope) run.
        self.spans.sort_by_key(|entry| (entry.batch, entry.scope));
        let spans = std::mem::take(&mut self.spans);
        for run in spans.chunk_by(|a, b| a.batch == b.batch) {
            let Some(first) = run.first() else { continue };
            let scopes = &self.scopes;
            let scope_runs = || run.chunk_by(|a, b| a.scope == b.scope);
            let resource_body = optional_field_len(resource)
                + scope_runs()
                    .map(|scope_run| field_len(scope_body_len(scopes, scope_run)))
                    .sum::<usize>()
                + string_field_len(schema_url);

            let payload = &mut batch_at(&mut self.batches, first.batch).payload;
            let start = payload.len();
            payload.reserve(field_len(resource_body));
            put_len_prefix(1, resource_body, payload);
            if let Some(resource) = resource {
                put_len_field(1, resource, payload);
            }
            for scope_run in scope_runs() {
                let meta = scope_meta(scopes, scope_run);
                put_len_prefix(2, scope_body_len(scopes, scope_run), payload);
                if let Some(scope) = meta.and_then(|meta| meta.scope.as_deref()) {
                    put_len_field(1, scope, payload);
                }
                for entry in scope_run {
                    put_len_field(2, entry.bytes, payload);
                }
                let scope_schema_url = meta.map_or(&[][..], |meta| meta.schema_url);
                if !scope_schema_url.is_empty() {
                    put_len_field(3, scope_schema_url, payload);
                }
            }
            if !schema_url.is_empty() {
                put_len_field(3, schema_url, payload);
            }
            assert_eq!(payload.len() - start, field_len(resource_body));
        }
        self.spans = spans;
    }
}

#[expect(
    clippy::indexing_slicing,
    reason = "batch indices come from find_batch or add_batch, and batches never shrink"
)]
fn batch_at(batches: &mut [TraceBatch], index: usize) -> &mut TraceBatch {
    &mut batches[index]
}

fn scope_meta<'s, 'a>(
    scopes: &'s [ScopeMeta<'a>],
    run: &[SpanEntry<'_>],
) -> Option<&'s ScopeMeta<'a>> {
    run.first().and_then(|entry| scopes.get(entry.scope))
}

/// Body bytes of the `ScopeSpans` holding `run` (spans of one batch from one scope).
fn scope_body_len(scopes: &[ScopeMeta<'_>], run: &[SpanEntry<'_>]) -> usize {
    let meta = scope_meta(scopes, run);
    optional_field_len(meta.and_then(|meta| meta.scope.as_deref()))
        + run
            .iter()
            .map(|entry| field_len(entry.bytes.len()))
            .sum::<usize>()
        + string_field_len(meta.map_or(&[][..], |meta| meta.schema_url))
}

fn optional_field_len(body: Option<&[u8]>) -> usize {
    body.map_or(0, |body| field_len(body.len()))
}

/// A proto3 string field is not written when empty.
fn string_field_len(body: &[u8]) -> usize {
    if body.is_empty() {
        0
    } else {
        field_len(body.len())
    }
}

/// A singular message field seen again: protobuf merges it, which on the wire is the
/// concatenation of the encodings.
fn merge_message<'a>(current: &mut Option<Cow<'a, [u8]>>, next: &'a [u8]) {
    match current {
        None => *current = Some(Cow::Borrowed(next)),
        Some(bytes) => bytes.to_mut().extend_from_slice(next),
    }
}

/// Checks one `Span` (depth 3) and reads its trace ID and times.
fn check_span(bytes: &[u8], origin: usize) -> Result<SpanFacts, OtlpError> {
    let mut trace_id: &[u8] = &[];
    let mut span_id: &[u8] = &[];
    let mut start_unix_nanos = 0;
    let mut end_unix_nanos = 0;
    let mut seen = Occurrences::new();
    let mut scanner = Scanner::new(bytes, origin);
    while let Some(field) = scanner.next_field(3)? {
        match field.number {
            1 => trace_id = field.bytes().within(PathSegment::Field("trace_id"))?.0,
            2 => span_id = field.bytes().within(PathSegment::Field("span_id"))?.0,
            7 => {
                start_unix_nanos = field
                    .fixed64()
                    .within(PathSegment::Field("start_time_unix_nano"))?
            }
            8 => {
                end_unix_nanos = field
                    .fixed64()
                    .within(PathSegment::Field("end_time_unix_nano"))?
            }
            _ => check_field(&schema::SPAN, &field, &mut seen, 3)?,
        }
    }
    let trace_id = TraceId::from_slice(trace_id)
        .ok_or(OtlpErrorKind::IdLength {
            expected: 16,
            got: trace_id.len(),
        })
        .and_then(|id| nonzero(id, id.0 == [0; 16]))
        .map_err(|kind| OtlpError::new(kind).within(PathSegment::Field("trace_id")))?;
    SpanId::from_slice(span_id)
        .ok_or(OtlpErrorKind::IdLength {
            expected: 8,
            got: span_id.len(),
        })
        .and_then(|id| nonzero(id, id.0 == [0; 8]))
        .map_err(|kind| OtlpError::new(kind).within(PathSegment::Field("span_id")))?;
    Ok(SpanFacts {
        trace_id,
        start_unix_nanos,
        end_unix_nanos,
    })
}

fn nonzero<T>(id: T, is_zero: bool) -> Result<T, OtlpErrorKind> {
    if is_zero {
        Err(OtlpErrorKind::ZeroId)
    } else {
        Ok(id)
    }
}

/// Fuzz entry point: `split_export`, and on success checks what every accepted request must
/// satisfy. Panics only when one of those properties fails (a bug).
pub fn fuzz_split(data: &[u8]) {
    // The same bytes read as a stored trace: the attribute reader agrees with prost.
    attrs::fuzz_parity(data);
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::TracesData;
    use prost::Message;

    let Ok(batches) = split_export(data) else {
        return;
    };
    assert!(
        ExportTraceServiceRequest::decode(data).is_ok(),
        "split_export accepted a request prost refuses"
    );
    let mut payloads = Vec::with_capacity(batches.len());
    for batch in &batches {
        assert!(batch.span_count > 0);
        assert!(batch.trace_id.0 != [0; 16]);
        assert_eq!(count_spans(&batch.payload), batch.span_count);
        assert!(TracesData::decode(batch.payload.as_slice()).is_ok());
        let assembled = assemble_trace(&[&batch.payload]);
        assert!(count_spans(&assembled) <= batch.span_count);
        payloads.push(batch.payload.as_slice());
    }
    let assembled = assemble_trace(&payloads);
    assert!(TracesData::decode(assembled.as_slice()).is_ok());
    // Assembling is idempotent once duplicates are gone.
    assert_eq!(assemble_trace(&[&assembled]), assembled);
}

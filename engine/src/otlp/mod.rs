//! OTLP trace splitting (sans-IO): an `ExportTraceServiceRequest` in, one [`TraceBatch`] per
//! trace out, without decoding the spans into structs. The request is walked request ->
//! `ResourceSpans` -> `ScopeSpans` -> `Span` -> attributes, everything prost would check is
//! checked (and a little more), and each span's bytes are copied verbatim into its trace's
//! batch.
//!
//! Two implementations of one language: `walk` interprets the schemas of `schema` with the
//! zero-copy scanner of `wire` and names the first error, with its path and byte offset;
//! `fast` does the same work in one pass with loops specialised for the hot messages,
//! no error detail and one exact-size allocation per batch. [`split_export`] runs `fast`,
//! and `walk` only to explain a refusal. **Architecture Invariant:** both accept the same
//! requests and return the same batches; [`fuzz_split`] checks it on every input.
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
mod fast;
mod schema;
mod walk;
mod wire;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;

use crate::ids::TraceId;

pub use assemble::{assemble_trace, count_spans};
pub use wire::WireType;

use wire::field_len;

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
    match fast::split(request) {
        Ok(batches) => Ok(batches),
        Err(fast::Refused) => {
            // The walk names the error. Should it accept (a bug in `fast`), its answer is
            // the right one.
            let answer = walk::split_export(request);
            debug_assert!(answer.is_err(), "fast refused a request the walk accepts");
            answer
        }
    }
}

/// The batches of one request by trace ID, in order of each trace's first span.
#[derive(Default)]
struct Batches {
    list: Vec<TraceBatch>,
    /// The batch of the previous span: consecutive spans mostly share a trace.
    last: usize,
    /// Built once the request holds more than `TRACES_SCANNED_LINEARLY_MAX` traces.
    by_trace: Option<crate::hash::IdMap<TraceId, usize>>,
}

impl Batches {
    /// The index of the batch of `trace_id` (a new one, with an empty payload, at the next
    /// index if the trace is new), counting one more span with these times.
    fn add_span(&mut self, trace_id: TraceId, start_unix_nanos: u64, end_unix_nanos: u64) -> usize {
        let index = match self.find(&trace_id) {
            Some(index) => index,
            None => self.add(trace_id),
        };
        self.last = index;
        let batch = self.at(index);
        batch.span_count = batch.span_count.saturating_add(1);
        batch.start_unix_nanos_min = batch.start_unix_nanos_min.min(start_unix_nanos);
        batch.end_unix_nanos_max = batch.end_unix_nanos_max.max(end_unix_nanos);
        index
    }

    fn find(&self, trace_id: &TraceId) -> Option<usize> {
        if let Some(last) = self.list.get(self.last) {
            if last.trace_id == *trace_id {
                return Some(self.last);
            }
        }
        match &self.by_trace {
            Some(map) => map.get(trace_id).copied(),
            None => self
                .list
                .iter()
                .position(|batch| batch.trace_id == *trace_id),
        }
    }

    fn add(&mut self, trace_id: TraceId) -> usize {
        let index = self.list.len();
        self.list.push(TraceBatch {
            trace_id,
            span_count: 0,
            start_unix_nanos_min: u64::MAX,
            end_unix_nanos_max: 0,
            payload: Vec::new(),
        });
        if let Some(map) = &mut self.by_trace {
            map.insert(trace_id, index);
        } else if self.list.len() > TRACES_SCANNED_LINEARLY_MAX {
            let map = self
                .list
                .iter()
                .enumerate()
                .map(|(index, batch)| (batch.trace_id, index))
                .collect();
            self.by_trace = Some(map);
        }
        index
    }

    #[expect(
        clippy::indexing_slicing,
        reason = "batch indices come from find or add, and batches are never removed"
    )]
    fn at(&mut self, index: usize) -> &mut TraceBatch {
        &mut self.list[index]
    }

    fn into_vec(self) -> Vec<TraceBatch> {
        self.list
    }
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

/// Fuzz entry point: `split_export`, and on success checks what every accepted request must
/// satisfy. Panics only when one of those properties fails (a bug).
pub fn fuzz_split(data: &[u8]) {
    // The same bytes read as a stored trace: the attribute reader agrees with prost.
    attrs::fuzz_parity(data);
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::TracesData;
    use prost::Message;

    // The two implementations agree.
    let walked = walk::split_export(data);
    match (fast::split(data), &walked) {
        (Ok(fast), Ok(walked)) => assert!(&fast == walked, "fast and walk split differently"),
        (Err(fast::Refused), Err(_)) => {}
        (Ok(_), Err(error)) => panic!("fast accepted a request the walk refuses: {error}"),
        (Err(fast::Refused), Ok(_)) => panic!("fast refused a request the walk accepts"),
    }
    let Ok(batches) = walked else {
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

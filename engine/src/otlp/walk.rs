//! The schema walk: `split_export` as a generic interpreter of the schemas in `schema`,
//! with the exact error (path, kind, byte offset) of the first thing wrong in a request.
//!
//! It is the specification of what `split_export` accepts and returns. The hot path
//! (`fast`) must accept exactly the requests this walk accepts and produce the same batches
//! byte for byte; `super::fuzz_split` checks both on every input. A request the fast path
//! refuses is walked here to say why, so its speed only matters for refused requests.
//!
//! Order of checks (it decides which error a request with several gets): a `ResourceSpans`
//! is scanned whole (its resource, schema URL and the wire structure of its `ScopeSpans`)
//! before its `ScopeSpans` are checked one after the other.

use std::borrow::Cow;

use super::schema::{self, check_field, check_message, check_utf8, Occurrences};
use super::wire::{field_len, put_len_field, put_len_prefix, Scanner};
use super::{
    merge_message, optional_field_len, string_field_len, Batches, OtlpError, OtlpErrorKind,
    PathSegment, ResultExt, TraceBatch,
};
use crate::ids::{SpanId, TraceId};

/// `super::split_export`, walked against the schemas: the batches of a valid request, or
/// the first error of an invalid one.
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
    let mut batches = splitter.batches.into_vec();
    for batch in &mut batches {
        if batch.payload.capacity() - batch.payload.len() > batch.payload.len() / 8 {
            batch.payload.shrink_to_fit();
        }
    }
    Ok(batches)
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
    batches: Batches,
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
                    let batch = self.batches.add_span(
                        facts.trace_id,
                        facts.start_unix_nanos,
                        facts.end_unix_nanos,
                    );
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

            let payload = &mut self.batches.at(first.batch).payload;
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

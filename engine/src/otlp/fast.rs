//! The hot path of `split_export`: one pass over the request that checks what the schema
//! walk (`walk`) checks and notes where each span goes, then one allocation of exactly the
//! right size per batch. It only says yes or no: a request it refuses is walked again by
//! `walk`, which names the error.
//!
//! Checks: each message is a loop over keys (the tag varint, `number << 3 | wire type`). The
//! keys of the fields real traffic holds (every field of `Span`, `KeyValue` and `AnyValue`,
//! and of the request, `ResourceSpans` and `ScopeSpans`) are match arms: such a field costs
//! a compare and the check of its value, with no table and no error path. Every other key,
//! an unknown field, a field of the other messages, a known field with the wrong wire type,
//! goes to [`field`], which reads the schemas of `schema` as `walk` does. A key stands for one
//! field number and one wire type however its varint is written, and the keys of the arms
//! are computed from the schemas (`Schema::key`), so an arm and `field` cannot disagree on
//! what a field is. (The request, `ResourceSpans` and `ScopeSpans` have no schema; `walk`
//! reads their three fields by hand, and so does this.)
//!
//! Splitting: pass 1 checks the request and chains each span to the previous span of its
//! trace. Pass 2 follows each trace's chain, sizes its payload (the layout on
//! [`TraceBatch`]), allocates it at that size and copies the spans in.
//!
//! Architecture Invariant: `split(request)` is `Ok` exactly when `walk::split_export(request)`
//! is, with equal batches (`super::fuzz_split` checks both on every input).

use std::borrow::Cow;

use super::schema::{self, KindName, Schema};
use super::wire::{field_len, put_len_field, put_len_prefix};
use super::{
    merge_message, optional_field_len, string_field_len, Batches, TraceBatch, NESTING_DEPTH_MAX,
};
use crate::ids::TraceId;

/// The request is not valid; `walk` says why.
#[derive(Debug)]
pub struct Refused;

type Check<T = ()> = Result<T, Refused>;

/// `split_export` for valid requests.
pub fn split(request: &[u8]) -> Result<Vec<TraceBatch>, Refused> {
    let mut split = Split::default();
    split.spans.reserve(request.len() / SPAN_BYTES_GUESS);
    split.request(request)?;
    Ok(split.finish())
}

// Depths as `walk` counts them: the request 0, a `ResourceSpans` 1, its resource and
// `ScopeSpans` 2, a scope and a span 3.
const REQUEST_DEPTH: u32 = 0;
const RESOURCE_SPANS_DEPTH: u32 = 1;
const SCOPE_SPANS_DEPTH: u32 = 2;
const SPAN_DEPTH: u32 = 3;

// The containers, as `walk` reads them (no schema: each field is read where it is met).
const REQUEST_RESOURCE_SPANS: u64 = len_key(1);
const RESOURCE_SPANS_RESOURCE: u64 = len_key(1);
const RESOURCE_SPANS_SCOPE_SPANS: u64 = len_key(2);
const RESOURCE_SPANS_SCHEMA_URL: u64 = len_key(3);
const SCOPE_SPANS_SCOPE: u64 = len_key(1);
const SCOPE_SPANS_SPAN: u64 = len_key(2);
const SCOPE_SPANS_SCHEMA_URL: u64 = len_key(3);
/// Request fields 1 to this are known (length-delimited); the others are skipped.
const REQUEST_FIELDS_KNOWN: u32 = 1;
/// `ResourceSpans` and `ScopeSpans` fields 1 to this are known (all length-delimited); the
/// others are skipped.
const CONTAINER_FIELDS_KNOWN: u32 = 3;

const fn len_key(number: u64) -> u64 {
    number << 3 | 2
}

const SPAN: &Schema = &schema::SPAN;
const SPAN_TRACE_ID: u64 = SPAN.key(1, KindName::Bytes);
const SPAN_SPAN_ID: u64 = SPAN.key(2, KindName::Bytes);
const SPAN_TRACE_STATE: u64 = SPAN.key(3, KindName::String);
const SPAN_PARENT_SPAN_ID: u64 = SPAN.key(4, KindName::Bytes);
const SPAN_NAME: u64 = SPAN.key(5, KindName::String);
const SPAN_KIND: u64 = SPAN.key(6, KindName::Varint);
const SPAN_START: u64 = SPAN.key(7, KindName::Fixed64);
const SPAN_END: u64 = SPAN.key(8, KindName::Fixed64);
const SPAN_ATTRIBUTES: u64 = SPAN.key(9, KindName::Message);
const SPAN_DROPPED_ATTRIBUTES: u64 = SPAN.key(10, KindName::Varint);
const SPAN_EVENTS: u64 = SPAN.key(11, KindName::Message);
const SPAN_DROPPED_EVENTS: u64 = SPAN.key(12, KindName::Varint);
const SPAN_LINKS: u64 = SPAN.key(13, KindName::Message);
const SPAN_DROPPED_LINKS: u64 = SPAN.key(14, KindName::Varint);
const SPAN_STATUS: u64 = SPAN.key(15, KindName::Message);
const SPAN_FLAGS: u64 = SPAN.key(16, KindName::Fixed32);
const SPAN_EVENT: &Schema = SPAN.child(11);
const SPAN_LINK: &Schema = SPAN.child(13);
const SPAN_STATUS_MESSAGE: &Schema = SPAN.child(15);
const SPAN_ATTRIBUTE: &Schema = SPAN.child(9);

const KEY_VALUE: &Schema = &schema::KEY_VALUE;
const KEY_VALUE_KEY: u64 = KEY_VALUE.key(1, KindName::String);
const KEY_VALUE_VALUE: u64 = KEY_VALUE.key(2, KindName::Message);
const KEY_VALUE_VALUE_MESSAGE: &Schema = KEY_VALUE.child(2);

const ANY_VALUE: &Schema = &schema::ANY_VALUE;
const ANY_VALUE_STRING: u64 = ANY_VALUE.key(1, KindName::String);
const ANY_VALUE_BOOL: u64 = ANY_VALUE.key(2, KindName::Varint);
const ANY_VALUE_INT: u64 = ANY_VALUE.key(3, KindName::Varint);
const ANY_VALUE_DOUBLE: u64 = ANY_VALUE.key(4, KindName::Fixed64);
const ANY_VALUE_ARRAY: u64 = ANY_VALUE.key(5, KindName::Message);
const ANY_VALUE_KVLIST: u64 = ANY_VALUE.key(6, KindName::Message);
const ANY_VALUE_BYTES: u64 = ANY_VALUE.key(7, KindName::Bytes);
const ANY_VALUE_STRINDEX: u64 = ANY_VALUE.key(8, KindName::Varint);
const ARRAY_VALUE: &Schema = ANY_VALUE.child(5);
const KEY_VALUE_LIST: &Schema = ANY_VALUE.child(6);

/// Request bytes per span, low for real traffic (430 from the loadgen), to size the span
/// list once for most requests.
const SPAN_BYTES_GUESS: usize = 256;

/// A chain link that ends the chain.
const NO_SPAN: usize = usize::MAX;

/// A resource or scope (the merged bytes of its fields) and the schema URL next to it.
#[derive(Default)]
struct Group<'a> {
    head: Option<Cow<'a, [u8]>>,
    schema_url: &'a [u8],
}

/// A `ScopeSpans` of the request.
struct ScopeSpans<'a> {
    group: Group<'a>,
    /// Its `ResourceSpans`, an index in `Split::resources`.
    resource: usize,
}

/// A span of the request.
struct SpanEntry<'a> {
    bytes: &'a [u8],
    /// Its `ScopeSpans`, an index in `Split::scopes`.
    scope: usize,
    /// The next span of the same trace, an index in `Split::spans`, or [`NO_SPAN`].
    next: usize,
}

/// The first and last span of a trace, indices in `Split::spans`.
struct Chain {
    first: usize,
    last: usize,
}

/// State of one `split`. Resources, scopes and spans are numbered in request order, so a
/// chain visits them in request order too.
#[derive(Default)]
struct Split<'a> {
    batches: Batches,
    /// One per batch, at the same index.
    chains: Vec<Chain>,
    resources: Vec<Group<'a>>,
    scopes: Vec<ScopeSpans<'a>>,
    spans: Vec<SpanEntry<'a>>,
}

impl<'a> Split<'a> {
    /// Pass 1, an `ExportTraceServiceRequest` (depth 0).
    fn request(&mut self, mut buf: &'a [u8]) -> Check {
        while !buf.is_empty() {
            match varint(&mut buf)? {
                REQUEST_RESOURCE_SPANS => self.resource_spans(bytes(&mut buf)?)?,
                key => buf = container_field(key, buf, REQUEST_DEPTH, REQUEST_FIELDS_KNOWN)?,
            }
        }
        Ok(())
    }

    fn resource_spans(&mut self, mut buf: &'a [u8]) -> Check {
        const DEPTH: u32 = RESOURCE_SPANS_DEPTH;
        // Pushed when done; its `ScopeSpans` refer to it by this index until then.
        let index = self.resources.len();
        let mut resource = Group::default();
        while !buf.is_empty() {
            match varint(&mut buf)? {
                RESOURCE_SPANS_RESOURCE => {
                    let body = bytes(&mut buf)?;
                    message(&schema::RESOURCE, body, nested(DEPTH)?)?;
                    merge_message(&mut resource.head, body);
                }
                RESOURCE_SPANS_SCOPE_SPANS => self.scope_spans(bytes(&mut buf)?, index)?,
                RESOURCE_SPANS_SCHEMA_URL => resource.schema_url = string(&mut buf)?,
                key => buf = container_field(key, buf, DEPTH, CONTAINER_FIELDS_KNOWN)?,
            }
        }
        self.resources.push(resource);
        Ok(())
    }

    fn scope_spans(&mut self, mut buf: &'a [u8], resource: usize) -> Check {
        const DEPTH: u32 = SCOPE_SPANS_DEPTH;
        let index = self.scopes.len();
        let mut group = Group::default();
        while !buf.is_empty() {
            match varint(&mut buf)? {
                SCOPE_SPANS_SCOPE => {
                    let body = bytes(&mut buf)?;
                    message(&schema::SCOPE, body, nested(DEPTH)?)?;
                    merge_message(&mut group.head, body);
                }
                SCOPE_SPANS_SPAN => {
                    let body = bytes(&mut buf)?;
                    let facts = span(body)?;
                    self.add_span(&facts, body, index);
                }
                SCOPE_SPANS_SCHEMA_URL => group.schema_url = string(&mut buf)?,
                key => buf = container_field(key, buf, DEPTH, CONTAINER_FIELDS_KNOWN)?,
            }
        }
        self.scopes.push(ScopeSpans { group, resource });
        Ok(())
    }

    /// Counts a checked span in its batch and appends it to the batch's chain.
    fn add_span(&mut self, facts: &SpanFacts, bytes: &'a [u8], scope: usize) {
        let batch =
            self.batches
                .add_span(facts.trace_id, facts.start_unix_nanos, facts.end_unix_nanos);
        let index = self.spans.len();
        self.spans.push(SpanEntry {
            bytes,
            scope,
            next: NO_SPAN,
        });
        match self.chains.get_mut(batch) {
            Some(chain) => {
                if let Some(last) = self.spans.get_mut(chain.last) {
                    last.next = index;
                }
                chain.last = index;
            }
            None => {
                assert_eq!(batch, self.chains.len(), "a new batch gets the next index");
                self.chains.push(Chain {
                    first: index,
                    last: index,
                });
            }
        }
    }

    /// Pass 2: each batch's payload, allocated at its exact size.
    fn finish(mut self) -> Vec<TraceBatch> {
        let mut batches = std::mem::take(&mut self.batches).into_vec();
        assert_eq!(batches.len(), self.chains.len());
        // Scratch for one batch at a time: its spans, and the body sizes of its messages.
        let mut spans: Vec<Piece<'a>> = Vec::new();
        let mut sizes: Vec<usize> = Vec::new();
        for (batch, chain) in batches.iter_mut().zip(&self.chains) {
            spans.clear();
            let mut next = chain.first;
            while let Some(entry) = self.spans.get(next) {
                let resource = self
                    .scopes
                    .get(entry.scope)
                    .map_or(0, |scope| scope.resource);
                spans.push(Piece {
                    resource,
                    scope: entry.scope,
                    bytes: entry.bytes,
                });
                next = entry.next;
            }
            assert_eq!(count_u32(spans.len()), batch.span_count);
            batch.payload = self.payload(&spans, &mut sizes);
        }
        batches
    }

    /// The payload of one batch holding `spans` (in request order).
    fn payload(&self, spans: &[Piece<'a>], sizes: &mut Vec<usize>) -> Vec<u8> {
        // The body size of each `ResourceSpans` and, after it, of each of its `ScopeSpans`:
        // the order they are written in.
        sizes.clear();
        let mut size = 0;
        for run in resource_runs(spans) {
            let resource = self.resource(run);
            let at = sizes.len();
            sizes.push(0);
            let mut body = optional_field_len(resource.head.as_deref())
                + string_field_len(resource.schema_url);
            for scope_run in scope_runs(run) {
                let scope = self.scope(scope_run);
                let scope_body = optional_field_len(scope.head.as_deref())
                    + scope_run
                        .iter()
                        .map(|piece| field_len(piece.bytes.len()))
                        .sum::<usize>()
                    + string_field_len(scope.schema_url);
                sizes.push(scope_body);
                body += field_len(scope_body);
            }
            if let Some(slot) = sizes.get_mut(at) {
                *slot = body;
            }
            size += field_len(body);
        }

        let mut payload = Vec::with_capacity(size);
        let mut sizes = sizes.iter().copied();
        for run in resource_runs(spans) {
            let resource = self.resource(run);
            put_len_prefix(1, sizes.next().unwrap_or_default(), &mut payload);
            put_optional_field(1, resource.head.as_deref(), &mut payload);
            for scope_run in scope_runs(run) {
                let scope = self.scope(scope_run);
                put_len_prefix(2, sizes.next().unwrap_or_default(), &mut payload);
                put_optional_field(1, scope.head.as_deref(), &mut payload);
                for piece in scope_run {
                    put_len_field(2, piece.bytes, &mut payload);
                }
                put_string_field(3, scope.schema_url, &mut payload);
            }
            put_string_field(3, resource.schema_url, &mut payload);
        }
        assert_eq!(
            payload.len(),
            size,
            "the payload has the size computed for it"
        );
        payload
    }

    /// The resource of a run of spans from one `ResourceSpans`.
    fn resource(&self, run: &[Piece<'a>]) -> &Group<'a> {
        run.first()
            .and_then(|piece| self.resources.get(piece.resource))
            .unwrap_or(&NO_GROUP)
    }

    /// The scope of a run of spans from one `ScopeSpans`.
    fn scope(&self, run: &[Piece<'a>]) -> &Group<'a> {
        run.first()
            .and_then(|piece| self.scopes.get(piece.scope))
            .map_or(&NO_GROUP, |scope| &scope.group)
    }
}

/// A span of the batch being written, with its `ResourceSpans` and `ScopeSpans`.
struct Piece<'a> {
    resource: usize,
    scope: usize,
    bytes: &'a [u8],
}

/// Never used in practice (every span's scope and resource exist): what a missing one
/// would write, nothing.
static NO_GROUP: Group<'static> = Group {
    head: None,
    schema_url: &[],
};

/// A batch's spans cut into runs of one `ResourceSpans` each: resources and scopes are
/// numbered in request order, so the spans of one are neighbours.
fn resource_runs<'s, 'a>(spans: &'s [Piece<'a>]) -> impl Iterator<Item = &'s [Piece<'a>]> {
    spans.chunk_by(|a, b| a.resource == b.resource)
}

/// A run of spans from one `ResourceSpans` cut into runs of one `ScopeSpans` each.
fn scope_runs<'s, 'a>(run: &'s [Piece<'a>]) -> impl Iterator<Item = &'s [Piece<'a>]> {
    run.chunk_by(|a, b| a.scope == b.scope)
}

fn put_optional_field(number: u8, body: Option<&[u8]>, dst: &mut Vec<u8>) {
    if let Some(body) = body {
        put_len_field(number, body, dst);
    }
}

/// A proto3 string field is not written when empty.
fn put_string_field(number: u8, body: &[u8], dst: &mut Vec<u8>) {
    if !body.is_empty() {
        put_len_field(number, body, dst);
    }
}

fn count_u32(count: usize) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------------------
// Checks. Each function takes the bytes of one message (or, for the field readers, the
// rest of one) and the depth of that message.

/// A span's identity and times.
struct SpanFacts {
    trace_id: TraceId,
    start_unix_nanos: u64,
    end_unix_nanos: u64,
}

/// A `Span` (depth 3): checks it and reads its trace ID and times.
fn span(mut buf: &[u8]) -> Check<SpanFacts> {
    const DEPTH: u32 = SPAN_DEPTH;
    let mut trace_id: &[u8] = &[];
    let mut span_id: &[u8] = &[];
    let mut start_unix_nanos = 0;
    let mut end_unix_nanos = 0;
    while !buf.is_empty() {
        match varint(&mut buf)? {
            SPAN_TRACE_ID => trace_id = bytes(&mut buf)?,
            SPAN_SPAN_ID => span_id = bytes(&mut buf)?,
            SPAN_TRACE_STATE | SPAN_NAME => {
                string(&mut buf)?;
            }
            SPAN_PARENT_SPAN_ID => {
                bytes(&mut buf)?;
            }
            SPAN_KIND | SPAN_DROPPED_ATTRIBUTES | SPAN_DROPPED_EVENTS | SPAN_DROPPED_LINKS => {
                varint(&mut buf)?;
            }
            SPAN_START => start_unix_nanos = fixed64(&mut buf)?,
            SPAN_END => end_unix_nanos = fixed64(&mut buf)?,
            SPAN_FLAGS => skip(&mut buf, 4)?,
            SPAN_ATTRIBUTES => child(SPAN_ATTRIBUTE, bytes(&mut buf)?, nested(DEPTH)?)?,
            SPAN_EVENTS => child(SPAN_EVENT, bytes(&mut buf)?, nested(DEPTH)?)?,
            SPAN_LINKS => child(SPAN_LINK, bytes(&mut buf)?, nested(DEPTH)?)?,
            SPAN_STATUS => child(SPAN_STATUS_MESSAGE, bytes(&mut buf)?, nested(DEPTH)?)?,
            key => buf = field(SPAN, key, buf, DEPTH)?,
        }
    }
    let trace_id = TraceId::from_slice(trace_id)
        .filter(|id| id.0 != [0; 16])
        .ok_or(Refused)?;
    let span_id_ok = span_id.len() == 8 && span_id.iter().any(|&byte| byte != 0);
    if !span_id_ok {
        return Err(Refused);
    }
    Ok(SpanFacts {
        trace_id,
        start_unix_nanos,
        end_unix_nanos,
    })
}

/// A `KeyValue`, the attribute of everything.
#[inline(always)]
fn key_value(mut buf: &[u8], depth: u32) -> Check {
    while !buf.is_empty() {
        match varint(&mut buf)? {
            KEY_VALUE_KEY => {
                string(&mut buf)?;
            }
            KEY_VALUE_VALUE => child(KEY_VALUE_VALUE_MESSAGE, bytes(&mut buf)?, nested(depth)?)?,
            key => buf = field(KEY_VALUE, key, buf, depth)?,
        }
    }
    Ok(())
}

#[inline(always)]
fn any_value(mut buf: &[u8], depth: u32) -> Check {
    while !buf.is_empty() {
        match varint(&mut buf)? {
            ANY_VALUE_STRING => {
                string(&mut buf)?;
            }
            ANY_VALUE_BOOL | ANY_VALUE_INT | ANY_VALUE_STRINDEX => {
                varint(&mut buf)?;
            }
            ANY_VALUE_DOUBLE => skip(&mut buf, 8)?,
            ANY_VALUE_BYTES => {
                bytes(&mut buf)?;
            }
            ANY_VALUE_ARRAY => child(ARRAY_VALUE, bytes(&mut buf)?, nested(depth)?)?,
            ANY_VALUE_KVLIST => child(KEY_VALUE_LIST, bytes(&mut buf)?, nested(depth)?)?,
            key => buf = field(ANY_VALUE, key, buf, depth)?,
        }
    }
    Ok(())
}

/// A message of `schema` found as a field's value: the hot ones have their own loop. With a
/// constant `schema` the choice is made at compile time.
#[inline(always)]
fn child(schema: &'static Schema, body: &[u8], depth: u32) -> Check {
    // Each schema is a `static`, with an address of its own.
    if std::ptr::eq(schema, KEY_VALUE) {
        key_value(body, depth)
    } else if std::ptr::eq(schema, ANY_VALUE) {
        any_value(body, depth)
    } else {
        message(schema, body, depth)
    }
}

/// A message of `schema`, every field through the schema.
fn message(schema: &'static Schema, mut buf: &[u8], depth: u32) -> Check {
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        buf = field(schema, key, buf, depth)?;
    }
    Ok(())
}

// The readers below that are not inlined take the bytes by value and return the rest: a
// slice whose address is passed to a call lives in memory, one that is not in registers.

/// Checks the value of the field with `key` of a message of `schema` at `depth`, whose key
/// has just been read, and returns the bytes after it. The value is checked as the schema
/// says (as `schema::check_field` does), or skipped by its wire type if the schema does not
/// know the field.
fn field<'a>(schema: &'static Schema, key: u64, mut buf: &'a [u8], depth: u32) -> Check<&'a [u8]> {
    use schema::Kind;
    let (number, wire_type) = split_key(key)?;
    let Some(kind) = schema.kind(number) else {
        return skip_field(number, wire_type, buf, depth);
    };
    match (kind, wire_type) {
        (Kind::String, LENGTH_DELIMITED) => {
            string(&mut buf)?;
        }
        (Kind::Bytes, LENGTH_DELIMITED) => {
            bytes(&mut buf)?;
        }
        (Kind::Varint, VARINT) => {
            varint(&mut buf)?;
        }
        (Kind::Fixed64, FIXED64) => skip(&mut buf, 8)?,
        (Kind::Fixed32, FIXED32) => skip(&mut buf, 4)?,
        (Kind::Message(schema), LENGTH_DELIMITED) => {
            child(schema, bytes(&mut buf)?, nested(depth)?)?;
        }
        // A known field with another wire type (or with none: 6 and 7).
        _ => return Err(Refused),
    }
    Ok(buf)
}

/// A field of the request, a `ResourceSpans` or a `ScopeSpans` that no arm took: fields 1
/// to `known` (all length-delimited) with another wire type are refused, others skipped.
/// Returns the bytes after it.
fn container_field(key: u64, buf: &[u8], depth: u32, known: u32) -> Check<&[u8]> {
    let (number, wire_type) = split_key(key)?;
    if number <= known {
        return Err(Refused);
    }
    skip_field(number, wire_type, buf, depth)
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// The field number and wire type of a key, if the number is valid (1 to 2^29 - 1).
#[inline]
fn split_key(key: u64) -> Check<(u32, u8)> {
    let number = key >> 3;
    if number == 0 || number > u64::from(u32::MAX >> 3) {
        return Err(Refused);
    }
    // In range of u32 (checked above); the mask leaves three bits.
    Ok((number as u32, (key & 0x07) as u8))
}

/// Skips the value of an unknown field of a message at `depth` and returns the bytes after
/// it. A group counts as one more level, as in `wire::Scanner`; an end-group tag here closes
/// nothing.
fn skip_field(number: u32, wire_type: u8, mut buf: &[u8], depth: u32) -> Check<&[u8]> {
    match wire_type {
        VARINT => {
            varint(&mut buf)?;
        }
        FIXED64 => skip(&mut buf, 8)?,
        LENGTH_DELIMITED => {
            bytes(&mut buf)?;
        }
        FIXED32 => skip(&mut buf, 4)?,
        START_GROUP => buf = skip_group(number, buf, nested(depth)?)?,
        _ => return Err(Refused),
    }
    Ok(buf)
}

/// Skips the body of group `number` (at `depth`) and its end tag; returns the bytes after.
fn skip_group(number: u32, mut buf: &[u8], depth: u32) -> Check<&[u8]> {
    while !buf.is_empty() {
        let (inner, wire_type) = split_key(varint(&mut buf)?)?;
        if wire_type == END_GROUP {
            return if inner == number {
                Ok(buf)
            } else {
                Err(Refused)
            };
        }
        buf = skip_field(inner, wire_type, buf, depth)?;
    }
    // Unterminated.
    Err(Refused)
}

/// The depth of a message inside one at `depth`, if allowed.
#[inline(always)]
fn nested(depth: u32) -> Check<u32> {
    if depth < NESTING_DEPTH_MAX {
        Ok(depth + 1)
    } else {
        Err(Refused)
    }
}

/// A base-128 varint, with prost's rules (as `wire::Scanner::varint`).
#[inline(always)]
fn varint<'a>(buf: &mut &'a [u8]) -> Check<u64> {
    // Keys and most lengths fit one byte.
    let bytes: &'a [u8] = buf;
    match *bytes {
        [byte, ref rest @ ..] if byte < 0x80 => {
            *buf = rest;
            return Ok(u64::from(byte));
        }
        _ => {}
    }
    let (value, rest) = varint_slow(buf)?;
    *buf = rest;
    Ok(value)
}

#[inline(never)]
fn varint_slow(buf: &[u8]) -> Check<(u64, &[u8])> {
    let mut value = 0u64;
    for (index, &byte) in buf.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte < 0x80 {
            // The tenth byte may only carry the top bit of a u64.
            if index == 9 && byte > 1 {
                return Err(Refused);
            }
            return Ok((value, buf.get(index + 1..).unwrap_or_default()));
        }
    }
    Err(Refused)
}

/// A length-delimited value.
#[inline(always)]
fn bytes<'a>(buf: &mut &'a [u8]) -> Check<&'a [u8]> {
    let length = usize::try_from(varint(buf)?).map_err(|_| Refused)?;
    let (value, rest) = buf.split_at_checked(length).ok_or(Refused)?;
    *buf = rest;
    Ok(value)
}

/// A length-delimited value that must be UTF-8.
#[inline(always)]
fn string<'a>(buf: &mut &'a [u8]) -> Check<&'a [u8]> {
    let value = bytes(buf)?;
    // Most strings are short and ASCII. The others go once through SIMD (which hands inputs
    // under 64 bytes to std).
    if is_ascii(value) || simdutf8::basic::from_utf8(value).is_ok() {
        Ok(value)
    } else {
        Err(Refused)
    }
}

/// `bytes.is_ascii()`, for the short strings of attributes without a loop: the first and
/// the last word of a string up to 32 bytes cover it.
#[inline(always)]
fn is_ascii(bytes: &[u8]) -> bool {
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    if bytes.len() > 32 {
        return bytes.is_ascii();
    }
    if let (Some(first), Some(last)) = (bytes.first_chunk::<16>(), bytes.last_chunk::<16>()) {
        let high_bits = u128::from(HIGH_BITS) << 64 | u128::from(HIGH_BITS);
        return (u128::from_le_bytes(*first) | u128::from_le_bytes(*last)) & high_bits == 0;
    }
    if let (Some(first), Some(last)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        return (u64::from_le_bytes(*first) | u64::from_le_bytes(*last)) & HIGH_BITS == 0;
    }
    if let (Some(first), Some(last)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        // The low half of the mask.
        return (u32::from_le_bytes(*first) | u32::from_le_bytes(*last)) & HIGH_BITS as u32 == 0;
    }
    bytes.iter().fold(0, |all, &byte| all | byte) < 0x80
}

#[inline(always)]
fn fixed64(buf: &mut &[u8]) -> Check<u64> {
    let (word, rest) = buf.split_first_chunk::<8>().ok_or(Refused)?;
    *buf = rest;
    Ok(u64::from_le_bytes(*word))
}

/// Skips `count` bytes.
#[inline(always)]
fn skip(buf: &mut &[u8], count: usize) -> Check {
    *buf = buf.get(count..).ok_or(Refused)?;
    Ok(())
}

//! The attributes of a stored trace, read straight from its OTLP bytes (sans-IO, zero-copy):
//! what tag names and tag values need, without decoding the trace with prost. Keys and values
//! stay borrowed from the payload; only the `AnyValue` of a wanted key is decoded later.
//!
//! ```text
//! payload: runs of field 1 ResourceSpans
//!   ResourceSpans: 1 Resource { 1 attributes KeyValue* }, 2 ScopeSpans*
//!   ScopeSpans:    1 InstrumentationScope { 3 attributes KeyValue* }, 2 Span*
//!   Span:          7 start fixed64, 8 end fixed64, 9 attributes KeyValue*,
//!                  11 Event { 3 attributes }*, 13 Link { 4 attributes }*
//!   KeyValue:      1 key string, 2 value AnyValue
//! ```
//!
//! The reader takes what prost's decoding of the same bytes gives field by field, or gives
//! up: [`trace_attrs`] returns `None` for a shape where the two could differ (a singular
//! message field twice, which prost merges; a field of an unexpected wire type, which prost
//! refuses; a key that is not UTF-8; anything the wire scanner refuses). The caller then
//! decodes the trace with prost as before.

use std::ops::Range;

use super::wire::{Field, Scanner, Value};

/// One attribute: its key and the body of its `AnyValue` (`None`: no value field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr<'a> {
    pub key: &'a str,
    pub value: Option<&'a [u8]>,
}

/// One span's place in [`TraceAttrs`]: ranges into its vectors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanAttrs {
    /// Index into [`TraceAttrs::resources`].
    pub resource: usize,
    /// Index into [`TraceAttrs::scopes`].
    pub scope: usize,
    /// Into [`TraceAttrs::attrs`].
    pub attrs: Range<usize>,
    /// Into [`TraceAttrs::events`] (each an attribute range).
    pub events: Range<usize>,
    /// Into [`TraceAttrs::links`] (each an attribute range).
    pub links: Range<usize>,
}

/// The attributes of a trace's spans, resources and scopes, in payload order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceAttrs<'a> {
    pub attrs: Vec<Attr<'a>>,
    /// Attribute ranges of each resource (empty when it has none, or no `Resource`).
    pub resources: Vec<Range<usize>>,
    /// Attribute ranges of each instrumentation scope.
    pub scopes: Vec<Range<usize>>,
    pub events: Vec<Range<usize>>,
    pub links: Vec<Range<usize>>,
    pub spans: Vec<SpanAttrs>,
    /// Each span's name, parallel to `spans` (empty unless [`Want::name`]).
    pub names: Vec<&'a str>,
    /// The earliest span start and the latest span end (`TraceView`'s range); 0 without spans.
    pub start_ns: u64,
    pub end_ns: u64,
}

impl<'a> TraceAttrs<'a> {
    pub fn span_attrs(&self, span: &SpanAttrs) -> &[Attr<'a>] {
        self.attrs.get(span.attrs.clone()).unwrap_or_default()
    }

    pub fn resource_attrs(&self, span: &SpanAttrs) -> &[Attr<'a>] {
        self.resources
            .get(span.resource)
            .and_then(|r| self.attrs.get(r.clone()))
            .unwrap_or_default()
    }

    pub fn scope_attrs(&self, span: &SpanAttrs) -> &[Attr<'a>] {
        self.scopes
            .get(span.scope)
            .and_then(|r| self.attrs.get(r.clone()))
            .unwrap_or_default()
    }

    /// The attribute lists of the span's events.
    pub fn event_attrs<'s>(&'s self, span: &SpanAttrs) -> impl Iterator<Item = &'s [Attr<'a>]> {
        self.lists(&self.events, span.events.clone())
    }

    /// The attribute lists of the span's links.
    pub fn link_attrs<'s>(&'s self, span: &SpanAttrs) -> impl Iterator<Item = &'s [Attr<'a>]> {
        self.lists(&self.links, span.links.clone())
    }

    fn lists<'s>(
        &'s self,
        ranges: &'s [Range<usize>],
        which: Range<usize>,
    ) -> impl Iterator<Item = &'s [Attr<'a>]> {
        ranges
            .get(which)
            .unwrap_or_default()
            .iter()
            .map(|r| self.attrs.get(r.clone()).unwrap_or_default())
    }
}

/// Which attribute lists [`trace_attrs`] collects; the others stay empty (their bytes are
/// skipped, not checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    pub resource: bool,
    pub scope: bool,
    pub span: bool,
    pub events: bool,
    pub links: bool,
    /// Span names.
    pub name: bool,
}

impl Want {
    pub const ALL: Want = Want {
        resource: true,
        scope: true,
        span: true,
        events: true,
        links: true,
        name: true,
    };
}

/// Reads the attributes of a trace stored in `parts` (encoded `tempopb.Trace` runs);
/// `None` where prost's reading could differ (see the module doc).
pub fn trace_attrs<'a>(parts: &[&'a [u8]]) -> Option<TraceAttrs<'a>> {
    trace_attrs_of(parts, Want::ALL)
}

/// [`trace_attrs`], collecting only the lists `want` names.
pub fn trace_attrs_of<'a>(parts: &[&'a [u8]], want: Want) -> Option<TraceAttrs<'a>> {
    let mut out = TraceAttrs::default();
    let (mut start, mut end) = (u64::MAX, 0u64);
    for part in parts {
        let mut trace = Scanner::new(part, 0);
        while let Some(field) = trace.next_field(0).ok()? {
            if field.number == 1 {
                resource_spans(bytes(&field)?, want, &mut out, &mut start, &mut end)?;
            }
        }
    }
    if !out.spans.is_empty() {
        out.start_ns = start;
        out.end_ns = end;
    }
    Some(out)
}

/// The body of a length-delimited field; `None` for another wire type (prost refuses it).
fn bytes<'a>(field: &Field<'a>) -> Option<&'a [u8]> {
    match field.value {
        Value::Bytes { bytes, .. } => Some(bytes),
        _ => None,
    }
}

/// A message field that prost merges when it comes twice: taken once only.
fn once<'a>(slot: &mut Option<&'a [u8]>, field: &Field<'a>) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(bytes(field)?);
    Some(())
}

fn resource_spans<'a>(
    body: &'a [u8],
    want: Want,
    out: &mut TraceAttrs<'a>,
    start: &mut u64,
    end: &mut u64,
) -> Option<()> {
    let mut resource = None;
    let mut scope_spans = Vec::new();
    let mut scanner = Scanner::new(body, 0);
    while let Some(field) = scanner.next_field(1).ok()? {
        match field.number {
            1 => once(&mut resource, &field)?,
            2 => scope_spans.push(bytes(&field)?),
            3 => {
                bytes(&field)?;
            }
            _ => {}
        }
    }
    let attrs = match resource {
        Some(r) if want.resource => attr_list(r, 1, 2, out)?,
        _ => out.attrs.len()..out.attrs.len(),
    };
    let resource_index = out.resources.len();
    out.resources.push(attrs);
    for ss in scope_spans {
        scope_spans_of(ss, resource_index, want, out, start, end)?;
    }
    Some(())
}

fn scope_spans_of<'a>(
    body: &'a [u8],
    resource: usize,
    want: Want,
    out: &mut TraceAttrs<'a>,
    start: &mut u64,
    end: &mut u64,
) -> Option<()> {
    let mut scope = None;
    let mut spans = Vec::new();
    let mut scanner = Scanner::new(body, 0);
    while let Some(field) = scanner.next_field(2).ok()? {
        match field.number {
            1 => once(&mut scope, &field)?,
            2 => spans.push(bytes(&field)?),
            3 => {
                bytes(&field)?;
            }
            _ => {}
        }
    }
    let attrs = match scope {
        Some(s) if want.scope => attr_list(s, 3, 3, out)?,
        _ => out.attrs.len()..out.attrs.len(),
    };
    let scope_index = out.scopes.len();
    out.scopes.push(attrs);
    for span in spans {
        span_of(span, resource, scope_index, want, out, start, end)?;
    }
    Some(())
}

fn span_of<'a>(
    body: &'a [u8],
    resource: usize,
    scope: usize,
    want: Want,
    out: &mut TraceAttrs<'a>,
    start: &mut u64,
    end: &mut u64,
) -> Option<()> {
    let (mut span_start, mut span_end) = (0u64, 0u64);
    let mut name: &[u8] = &[];
    let mut attrs = Vec::new();
    let mut events = Vec::new();
    let mut links = Vec::new();
    let mut scanner = Scanner::new(body, 0);
    while let Some(field) = scanner.next_field(3).ok()? {
        match (field.number, field.value) {
            // A string: the last one counts, as in prost.
            (5, Value::Bytes { bytes, .. }) => name = bytes,
            (5, _) => return None,
            (7, Value::Fixed64(v)) => span_start = v,
            (8, Value::Fixed64(v)) => span_end = v,
            (7 | 8, _) => return None,
            (9, Value::Bytes { bytes, .. }) if want.span => attrs.push(bytes),
            (11, Value::Bytes { bytes, .. }) if want.events => events.push(bytes),
            (13, Value::Bytes { bytes, .. }) if want.links => links.push(bytes),
            (9 | 11 | 13, Value::Bytes { .. }) => {}
            (9 | 11 | 13, _) => return None,
            _ => {}
        }
    }
    let attrs_from = out.attrs.len();
    for kv in attrs {
        out.attrs.push(key_value(kv, 4)?);
    }
    let attrs = attrs_from..out.attrs.len();
    let events_from = out.events.len();
    for event in events {
        let list = attr_list(event, 3, 4, out)?;
        out.events.push(list);
    }
    let links_from = out.links.len();
    for link in links {
        let list = attr_list(link, 4, 4, out)?;
        out.links.push(list);
    }
    if want.name {
        out.names.push(std::str::from_utf8(name).ok()?);
    }
    *start = (*start).min(span_start);
    *end = (*end).max(span_end);
    out.spans.push(SpanAttrs {
        resource,
        scope,
        attrs,
        events: events_from..out.events.len(),
        links: links_from..out.links.len(),
    });
    Some(())
}

/// The `KeyValue`s in field `number` of an encoded message (a `Resource`: 1; an
/// `InstrumentationScope`: 3; an `Event`: 3; a `Link`: 4); `None` where prost could differ.
pub fn message_attrs(body: &[u8], number: u32) -> Option<Vec<Attr<'_>>> {
    let mut out = TraceAttrs::default();
    attr_list(body, number, 1, &mut out)?;
    Some(out.attrs)
}

/// One encoded `KeyValue`; `None` where prost could differ.
pub fn key_value_of(body: &[u8]) -> Option<Attr<'_>> {
    key_value(body, 1)
}

/// The attribute lists of the events (field 11) and links (field 13) in the encoded span
/// fields `rest`; `None` where prost could differ.
#[allow(
    clippy::type_complexity,
    reason = "two lists of lists, named by the caller"
)]
pub fn events_and_links(rest: &[u8]) -> Option<(Vec<Vec<Attr<'_>>>, Vec<Vec<Attr<'_>>>)> {
    let (mut events, mut links) = (Vec::new(), Vec::new());
    let mut scanner = Scanner::new(rest, 0);
    while let Some(field) = scanner.next_field(1).ok()? {
        match (field.number, field.value) {
            (11, Value::Bytes { bytes, .. }) => events.push(message_attrs(bytes, 3)?),
            (13, Value::Bytes { bytes, .. }) => links.push(message_attrs(bytes, 4)?),
            (11 | 13, _) => return None,
            _ => {}
        }
    }
    Some((events, links))
}

/// The `KeyValue`s in field `number` of a message at nesting `depth`, appended to `out`.
/// Other fields are checked only for the wire types prost would refuse.
fn attr_list<'a>(
    body: &'a [u8],
    number: u32,
    depth: u32,
    out: &mut TraceAttrs<'a>,
) -> Option<Range<usize>> {
    let from = out.attrs.len();
    let mut scanner = Scanner::new(body, 0);
    while let Some(field) = scanner.next_field(depth).ok()? {
        if field.number == number {
            let kv = key_value(bytes(&field)?, depth + 1)?;
            out.attrs.push(kv);
        }
    }
    Some(from..out.attrs.len())
}

fn key_value(body: &[u8], depth: u32) -> Option<Attr<'_>> {
    let mut key: &[u8] = &[];
    let mut value = None;
    let mut scanner = Scanner::new(body, 0);
    while let Some(field) = scanner.next_field(depth).ok()? {
        match field.number {
            // A string: the last one counts, as in prost.
            1 => key = bytes(&field)?,
            2 => once(&mut value, &field)?,
            _ => {}
        }
    }
    Some(Attr {
        key: std::str::from_utf8(key).ok()?,
        value,
    })
}

/// Fuzz check (from `otlp::fuzz_split`): where both this reader and prost take `data` as a
/// `TracesData`, they agree on every attribute list, value, span name and the time range.
pub fn fuzz_parity(data: &[u8]) {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
    use opentelemetry_proto::tonic::trace::v1::TracesData;
    use prost::Message;

    let Some(walked) = trace_attrs(&[data]) else {
        return;
    };
    let Ok(decoded) = TracesData::decode(data) else {
        return;
    };
    let same = |ours: &[Attr<'_>], theirs: &[KeyValue], what: &str| {
        assert_eq!(ours.len(), theirs.len(), "{what}: attribute count");
        for (a, kv) in ours.iter().zip(theirs) {
            assert_eq!(a.key, kv.key, "{what}: key");
            let value = a
                .value
                .map(|bytes| AnyValue::decode(bytes).expect("prost decoded it inside the trace"));
            // Compared encoded: a NaN double is not equal to itself.
            assert_eq!(
                value.as_ref().map(Message::encode_to_vec),
                kv.value.as_ref().map(Message::encode_to_vec),
                "{what}: value of {}: {value:?}",
                kv.key
            );
        }
    };
    let mut spans = walked.spans.iter().zip(&walked.names);
    let (mut start, mut end) = (u64::MAX, 0u64);
    for rs in &decoded.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let (ours, name) = spans.next().expect("as many spans as prost");
                assert_eq!(*name, span.name, "span name");
                same(
                    walked.resource_attrs(ours),
                    rs.resource
                        .as_ref()
                        .map_or(&[], |r| r.attributes.as_slice()),
                    "resource",
                );
                same(
                    walked.scope_attrs(ours),
                    ss.scope.as_ref().map_or(&[], |s| s.attributes.as_slice()),
                    "scope",
                );
                same(walked.span_attrs(ours), &span.attributes, "span");
                let events: Vec<_> = walked.event_attrs(ours).collect();
                assert_eq!(events.len(), span.events.len(), "events");
                for (list, event) in events.iter().zip(&span.events) {
                    same(list, &event.attributes, "event");
                }
                let links: Vec<_> = walked.link_attrs(ours).collect();
                assert_eq!(links.len(), span.links.len(), "links");
                for (list, link) in links.iter().zip(&span.links) {
                    same(list, &link.attributes, "link");
                }
                start = start.min(span.start_time_unix_nano);
                end = end.max(span.end_time_unix_nano);
            }
        }
    }
    assert!(spans.next().is_none(), "more spans than prost");
    if !walked.spans.is_empty() {
        assert_eq!((walked.start_ns, walked.end_ns), (start, end), "time range");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use prost::Message;

    fn kv(key: &str, value: i64) -> KeyValue {
        KeyValue {
            key: key.to_string(),
            value: Some(AnyValue {
                value: Some(any_value::Value::IntValue(value)),
            }),
            ..Default::default()
        }
    }

    /// Field 1 of tempopb.Trace around one encoded ResourceSpans.
    fn trace(rs: &opentelemetry_proto::tonic::trace::v1::ResourceSpans) -> Vec<u8> {
        opentelemetry_proto::tonic::trace::v1::TracesData {
            resource_spans: vec![rs.clone()],
        }
        .encode_to_vec()
    }

    #[test]
    fn a_resource_twice_is_left_to_prost() {
        use opentelemetry_proto::tonic::resource::v1::Resource;
        use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
        let rs = ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("a", 1)],
                ..Default::default()
            }),
            ..Default::default()
        };
        let once = trace(&rs);
        let attrs = trace_attrs(&[&once]).expect("canonical");
        assert_eq!(attrs.resources.len(), 1);
        assert_eq!(attrs.attrs.first().map(|a| a.key), Some("a"));
        // Append a second `resource` field inside the ResourceSpans: prost merges the two.
        let mut body = rs.encode_to_vec();
        body.extend_from_slice(&body.clone());
        let mut twice = vec![0x0a];
        let mut len = body.len();
        while len >= 0x80 {
            twice.push((len as u8) | 0x80);
            len >>= 7;
        }
        twice.push(len as u8);
        twice.extend_from_slice(&body);
        assert_eq!(trace_attrs(&[&twice]), None);
    }

    #[test]
    fn bad_wire_types_and_keys_are_left_to_prost() {
        // ResourceSpans whose field 2 (scope_spans) is a varint.
        assert_eq!(trace_attrs(&[&[0x0a, 0x02, 0x10, 0x01]]), None);
        // A KeyValue key that is not UTF-8, in a Resource.
        let bad = [0x0a, 0x07, 0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0xff];
        assert_eq!(trace_attrs(&[&bad]), None);
        // Truncated.
        assert_eq!(trace_attrs(&[&[0x0a, 0x05, 0x0a]]), None);
    }
}

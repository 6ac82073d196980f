//! Combining stored payloads of one trace into one `tempopb.Trace`.
//!
//! The input is trusted (it comes from our own WAL after its checksum, or from memory), so
//! nothing is validated beyond what is needed to walk it; but bytes that do not parse are
//! skipped, never a panic: a payload stops at its first unreadable `ResourceSpans`, a
//! `ResourceSpans` or `ScopeSpans` that does not scan is dropped whole, and a span without a
//! readable 8-byte span ID is dropped.

use std::borrow::Cow;

use super::wire::{field_len, put_len_field, put_len_prefix, Field, Scanner, Value};
use super::{merge_message, optional_field_len, string_field_len};
use crate::ids::SpanId;

/// Combines payloads (runs of field-1 `ResourceSpans`, see the module documentation) into
/// one `tempopb.Trace` encoding. `ResourceSpans` whose resource bytes and schema URL are
/// byte-identical are merged, and inside them `ScopeSpans` whose scope bytes and schema URL
/// are; a span whose span ID was already seen is dropped (a retried export, a WAL replay);
/// otherwise order of arrival is kept.
pub fn assemble_trace(payloads: &[&[u8]]) -> Vec<u8> {
    let mut assembly = Assembly::default();
    for payload in payloads {
        for resource_spans in resource_spans_of(payload) {
            assembly.add_resource_spans(resource_spans);
        }
    }
    assembly.encode()
}

/// The number of spans in a payload (or in an assembled trace).
pub fn count_spans(payload: &[u8]) -> u32 {
    let mut count = 0u32;
    for resource_spans in resource_spans_of(payload) {
        let Some(header) = Container::read(resource_spans) else {
            continue;
        };
        for scope_spans in header.children() {
            if let Some(scope) = Container::read(scope_spans) {
                let spans = u32::try_from(scope.children().count()).unwrap_or(u32::MAX);
                count = count.saturating_add(spans);
            }
        }
    }
    count
}

/// The `ResourceSpans` bodies of a payload, up to the first field that does not scan.
fn resource_spans_of(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut scanner = Scanner::new(payload, 0);
    std::iter::from_fn(move || loop {
        let field = scanner.next_field(0).ok()??;
        if let Some(body) = len_field(&field, 1) {
            return Some(body);
        }
    })
}

/// The bytes of `field` if it is field `number`, length-delimited.
fn len_field<'a>(field: &Field<'a>, number: u32) -> Option<&'a [u8]> {
    match field.value {
        Value::Bytes { bytes, .. } if field.number == number => Some(bytes),
        _ => None,
    }
}

/// A `ResourceSpans` or a `ScopeSpans`: they share field numbers for the resource or scope
/// (1), the children (2) and the schema URL (3).
struct Container<'a> {
    body: &'a [u8],
    first: Option<Cow<'a, [u8]>>,
    schema_url: &'a [u8],
}

impl<'a> Container<'a> {
    /// `None` if the message does not scan to its end.
    fn read(body: &'a [u8]) -> Option<Container<'a>> {
        let mut header = Container {
            body,
            first: None,
            schema_url: &[],
        };
        let mut scanner = Scanner::new(body, 0);
        while let Some(field) = scanner.next_field(1).ok()? {
            if let Some(bytes) = len_field(&field, 1) {
                merge_message(&mut header.first, bytes);
            } else if let Some(bytes) = len_field(&field, 3) {
                header.schema_url = bytes;
            }
        }
        Some(header)
    }

    /// The bodies of field 2, the `ScopeSpans` or the spans (the message is known to scan).
    fn children(&self) -> impl Iterator<Item = &'a [u8]> {
        let mut scanner = Scanner::new(self.body, 0);
        std::iter::from_fn(move || loop {
            let field = scanner.next_field(1).ok()??;
            if let Some(body) = len_field(&field, 2) {
                return Some(body);
            }
        })
    }
}

struct ResourceGroup<'a> {
    resource: Option<Cow<'a, [u8]>>,
    schema_url: &'a [u8],
    scopes: Vec<ScopeGroup<'a>>,
}

struct ScopeGroup<'a> {
    scope: Option<Cow<'a, [u8]>>,
    schema_url: &'a [u8],
    spans: Vec<&'a [u8]>,
}

#[derive(Default)]
struct Assembly<'a> {
    /// Linear lookup: a trace touches few distinct resources.
    resources: Vec<ResourceGroup<'a>>,
    seen: crate::hash::IdSet<SpanId>,
}

impl<'a> Assembly<'a> {
    fn add_resource_spans(&mut self, body: &'a [u8]) {
        let Some(resource) = Container::read(body) else {
            return;
        };
        // Groups are created on the first new span, so that no empty one is written.
        let mut resource_index = None;
        for scope_body in resource.children() {
            let Some(scope) = Container::read(scope_body) else {
                continue;
            };
            let mut scope_index = None;
            for span in scope.children() {
                let Some(span_id) = span_id_of(span) else {
                    continue;
                };
                if !self.seen.insert(span_id) {
                    continue;
                }
                let r = *resource_index.get_or_insert_with(|| {
                    find_or_push(
                        &mut self.resources,
                        |group| {
                            group.resource == resource.first
                                && group.schema_url == resource.schema_url
                        },
                        || ResourceGroup {
                            resource: resource.first.clone(),
                            schema_url: resource.schema_url,
                            scopes: Vec::new(),
                        },
                    )
                });
                let Some(group) = self.resources.get_mut(r) else {
                    continue;
                };
                let s = *scope_index.get_or_insert_with(|| {
                    find_or_push(
                        &mut group.scopes,
                        |group| group.scope == scope.first && group.schema_url == scope.schema_url,
                        || ScopeGroup {
                            scope: scope.first.clone(),
                            schema_url: scope.schema_url,
                            spans: Vec::new(),
                        },
                    )
                });
                if let Some(scope_group) = group.scopes.get_mut(s) {
                    scope_group.spans.push(span);
                }
            }
        }
    }

    fn encode(&self) -> Vec<u8> {
        let total: usize = self
            .resources
            .iter()
            .map(|group| field_len(resource_body_len(group)))
            .sum();
        let mut out = Vec::with_capacity(total);
        for group in &self.resources {
            put_len_prefix(1, resource_body_len(group), &mut out);
            if let Some(resource) = &group.resource {
                put_len_field(1, resource, &mut out);
            }
            for scope in &group.scopes {
                put_len_prefix(2, scope_body_len(scope), &mut out);
                if let Some(bytes) = &scope.scope {
                    put_len_field(1, bytes, &mut out);
                }
                for span in &scope.spans {
                    put_len_field(2, span, &mut out);
                }
                if !scope.schema_url.is_empty() {
                    put_len_field(3, scope.schema_url, &mut out);
                }
            }
            if !group.schema_url.is_empty() {
                put_len_field(3, group.schema_url, &mut out);
            }
        }
        assert_eq!(out.len(), total);
        out
    }
}

fn find_or_push<T>(
    items: &mut Vec<T>,
    matches: impl Fn(&T) -> bool,
    make: impl FnOnce() -> T,
) -> usize {
    match items.iter().position(matches) {
        Some(index) => index,
        None => {
            items.push(make());
            items.len() - 1
        }
    }
}

fn resource_body_len(group: &ResourceGroup<'_>) -> usize {
    optional_field_len(group.resource.as_deref())
        + group
            .scopes
            .iter()
            .map(|scope| field_len(scope_body_len(scope)))
            .sum::<usize>()
        + string_field_len(group.schema_url)
}

fn scope_body_len(scope: &ScopeGroup<'_>) -> usize {
    optional_field_len(scope.scope.as_deref())
        + scope
            .spans
            .iter()
            .map(|span| field_len(span.len()))
            .sum::<usize>()
        + string_field_len(scope.schema_url)
}

/// The span ID of a span message (the last field 2, as prost reads it), if it scans.
fn span_id_of(span: &[u8]) -> Option<SpanId> {
    let mut span_id = None;
    let mut scanner = Scanner::new(span, 0);
    while let Some(field) = scanner.next_field(3).ok()? {
        if let Some(bytes) = len_field(&field, 2) {
            span_id = Some(bytes);
        }
    }
    SpanId::from_slice(span_id?)
}

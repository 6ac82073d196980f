//! Tag names and values of a whole page from its columns, for a tag job without a query
//! (sans-IO): no trace is rebuilt but those stored raw.

use opentelemetry_proto::tonic::common::v1::AnyValue;
use prost::Message;

use crate::block::page::{self, Dict, Varints};
use crate::block::{BlockError, PageView};
use crate::tags::TagScope;
use crate::traceql::eval::{any_value, Value};
use crate::traceql::Scope;

/// What a tag job without a query reads from a page's columns ([`page_tags`]).
#[derive(Clone, Copy, Debug)]
pub enum TagWant<'w> {
    /// Attribute names of these scopes.
    Names(&'w [TagScope]),
    /// The values of one attribute (`parent.` attributes are not asked here).
    Values { scope: Scope, name: &'w str },
    /// Span names (the intrinsic `name`).
    SpanNames,
}

/// What [`page_tags`] found in a page, in order of discovery (repeats possible): the caller
/// de-duplicates and applies its byte limit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PageTags {
    pub names: Vec<(TagScope, String)>,
    pub values: Vec<Value>,
    /// Spans read (rows of the page's columnar traces).
    pub spans: u64,
    /// Traces stored raw (no rows): the caller rebuilds and offers them.
    pub raw: Vec<usize>,
}

/// Tag names or values of every span of a page, from its columns: distinct resources and
/// scopes are decoded once each, span attributes are read from `ATTR_KEY`/`ATTR_VALUE`
/// through the dictionary, events and links from `SPAN_REST`. The same answers as decoding
/// every trace (the first attribute of a name per list, as `find_attr`), for a page whose
/// spans all lie in the job's time range. `Ok(None)` where a decode could differ (a shape
/// `otlp::attrs` leaves to prost): the caller rebuilds the traces instead.
pub fn page_tags(view: &PageView<'_>, want: TagWant<'_>) -> Result<Option<PageTags>, BlockError> {
    let form = view.column(page::TRACE_FORM)?;
    let trace_rs = view.column(page::TRACE_RS)?;
    let rs_resource = view.column(page::RS_RESOURCE)?;
    let rs_scopes = view.column(page::RS_SCOPES)?;
    let ss_scope = view.column(page::SS_SCOPE)?;
    let ss_spans = view.column(page::SS_SPANS)?;
    let dict_lens = view.column(page::DICT_LENS)?;
    let dict_bytes = view.column(page::DICT_BYTES)?;
    let dict = Dict::decode(&dict_lens, &dict_bytes)?;
    let has = |scope: TagScope| match want {
        TagWant::Names(scopes) => scopes.contains(&scope),
        TagWant::SpanNames => false,
        TagWant::Values { scope: s, .. } => match s {
            Scope::Resource => scope == TagScope::Resource,
            Scope::Span => scope == TagScope::Span,
            Scope::None => matches!(scope, TagScope::Resource | TagScope::Span),
            Scope::Instrumentation => scope == TagScope::Instrumentation,
            Scope::Event => scope == TagScope::Event,
            Scope::Link => scope == TagScope::Link,
        },
    };

    // The resource and scope (`d+1`) of every span row, in row order.
    let mut rows: Vec<(u64, u64)> = Vec::with_capacity(view.span_count as usize);
    let mut out = PageTags::default();
    let mut trace_rs = Varints::new(&trace_rs, page::TRACE_RS);
    let mut rs_resource = Varints::new(&rs_resource, page::RS_RESOURCE);
    let mut rs_scopes = Varints::new(&rs_scopes, page::RS_SCOPES);
    let mut ss_scope = Varints::new(&ss_scope, page::SS_SCOPE);
    let mut ss_spans = Varints::new(&ss_spans, page::SS_SPANS);
    for index in 0..view.trace_count as usize {
        match form.get(index) {
            Some(0) => {}
            Some(1) => {
                out.raw.push(index);
                continue;
            }
            _ => return Err(BlockError::Malformed("trace form".into())),
        }
        for _ in 0..trace_rs.next()? {
            let resource = rs_resource.next()?;
            for _ in 0..rs_scopes.next()? {
                let scope = ss_scope.next()?;
                for _ in 0..ss_spans.next()? {
                    if rows.len() >= view.span_count as usize {
                        return Err(BlockError::Malformed("more span rows than spans".into()));
                    }
                    rows.push((resource, scope));
                }
            }
        }
    }
    out.spans = rows.len() as u64;

    let name_wanted = match want {
        TagWant::Values { name, .. } => Some(name),
        TagWant::Names(_) | TagWant::SpanNames => None,
    };
    if let TagWant::SpanNames = want {
        // SPAN_NAME: `d+1` per span, 0 for the empty name; each distinct one once.
        let names = view.column(page::SPAN_NAME)?;
        let mut names = Varints::new(&names, page::SPAN_NAME);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..rows.len() {
            let entry = names.next()?;
            if seen.insert(entry) {
                let text = match dict.optional(entry)? {
                    None => "",
                    Some(bytes) => match std::str::from_utf8(bytes) {
                        Ok(text) => text,
                        Err(_) => return Ok(None),
                    },
                };
                out.values.push(Value::Str(text.to_string()));
            }
        }
        return Ok(Some(out));
    }
    // Span attribute value entries already decoded.
    let mut values_seen: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let push_value = |out: &mut PageTags, bytes: Option<&[u8]>| -> Option<()> {
        let value = match bytes {
            None => Value::Nil,
            Some(b) => any_value(Some(&AnyValue::decode(b).ok()?)),
        };
        out.values.push(value);
        Some(())
    };

    // Resources and scopes: each distinct one once.
    for (tag_scope, field, column) in [
        (TagScope::Resource, 1, 0usize),
        (TagScope::Instrumentation, 3, 1usize),
    ] {
        if !has(tag_scope) {
            continue;
        }
        let mut distinct: Vec<u64> = rows
            .iter()
            .map(|r| if column == 0 { r.0 } else { r.1 })
            .collect();
        distinct.sort_unstable();
        distinct.dedup();
        for entry in distinct {
            let Some(bytes) = dict.optional(entry)? else {
                continue;
            };
            let Some(attrs) = crate::otlp::attrs::message_attrs(bytes, field) else {
                return Ok(None);
            };
            match name_wanted {
                None => out
                    .names
                    .extend(attrs.iter().map(|a| (tag_scope, a.key.to_string()))),
                Some(name) => {
                    if let Some(attr) = attrs.iter().find(|a| a.key == name) {
                        if push_value(&mut out, attr.value).is_none() {
                            return Ok(None);
                        }
                    }
                }
            }
        }
    }

    // Span attributes: rows of ATTR_KEY/ATTR_VALUE, SPAN_ATTRS rows per span.
    if has(TagScope::Span) {
        let counts = view.column(page::SPAN_ATTRS)?;
        let keys = view.column(page::ATTR_KEY)?;
        let values = view.column(page::ATTR_VALUE)?;
        let mut counts = Varints::new(&counts, page::SPAN_ATTRS);
        let mut keys = Varints::new(&keys, page::ATTR_KEY);
        let mut values = Varints::new(&values, page::ATTR_VALUE);
        let target = name_wanted.and_then(|n| dict.find(n.as_bytes()));
        let mut keys_seen: std::collections::HashSet<u64> = std::collections::HashSet::new();
        for _ in 0..rows.len() {
            let mut found = false;
            for _ in 0..counts.next()? {
                let (key, value) = (keys.next()?, values.next()?);
                if key == 0 {
                    // A KeyValue of unusual shape, whole in ATTR_VALUE.
                    let Some(bytes) = dict.optional(value)? else {
                        continue;
                    };
                    let Some(attr) = crate::otlp::attrs::key_value_of(bytes) else {
                        return Ok(None);
                    };
                    match name_wanted {
                        None => out.names.push((TagScope::Span, attr.key.to_string())),
                        Some(name) if !found && attr.key == name => {
                            found = true;
                            if push_value(&mut out, attr.value).is_none() {
                                return Ok(None);
                            }
                        }
                        Some(_) => {}
                    }
                    continue;
                }
                match name_wanted {
                    None => {
                        if keys_seen.insert(key) {
                            let Some(text) = dict
                                .optional(key)?
                                .and_then(|k| std::str::from_utf8(k).ok())
                            else {
                                return Ok(None);
                            };
                            out.names.push((TagScope::Span, text.to_string()));
                        }
                    }
                    Some(_) if !found && Some(key) == target => {
                        found = true;
                        // The same value entry decodes to the same value: once is enough.
                        if values_seen.insert(value)
                            && push_value(&mut out, dict.optional(value)?).is_none()
                        {
                            return Ok(None);
                        }
                    }
                    Some(_) => {}
                }
            }
        }
    }

    // Events and links: in each span's other fields.
    if has(TagScope::Event) || has(TagScope::Link) {
        let lens = view.column(page::SPAN_REST_LENS)?;
        let rest = view.column(page::SPAN_REST)?;
        let mut lens = Varints::new(&lens, page::SPAN_REST_LENS);
        let mut at = 0usize;
        for _ in 0..rows.len() {
            let len = usize::try_from(lens.next()?).unwrap_or(usize::MAX);
            let bytes = at
                .checked_add(len)
                .and_then(|end| rest.get(at..end))
                .ok_or_else(|| BlockError::Malformed("span rest out of range".into()))?;
            at += len;
            if bytes.is_empty() {
                continue;
            }
            let Some((events, links)) = crate::otlp::attrs::events_and_links(bytes) else {
                return Ok(None);
            };
            for (tag_scope, lists) in [(TagScope::Event, events), (TagScope::Link, links)] {
                if !has(tag_scope) {
                    continue;
                }
                for list in lists {
                    match name_wanted {
                        None => out
                            .names
                            .extend(list.iter().map(|a| (tag_scope, a.key.to_string()))),
                        Some(name) => {
                            if let Some(attr) = list.iter().find(|a| a.key == name) {
                                if push_value(&mut out, attr.value).is_none() {
                                    return Ok(None);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(Some(out))
}

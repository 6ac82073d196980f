//! The per-shard collector ([`ShardSearch`]): offered every candidate trace of one shard
//! (live, WAL, blocks), or whole pages for tag jobs without a query.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::TracesData;
use prost::Message;

use super::job::{Found, Job, SearchRequest, ShardAnswer, SpanOut, SpansetOut, TraceMatch};
use super::merge::most_recent_first;
use super::ROOT_NOT_RECEIVED;
use crate::ids::TraceId;
use crate::otlp::attrs::Attr;
use crate::tags::TagScope;
use crate::traceql::eval::{any_value, Evaluator, TraceView, Value};
use crate::traceql::{Field, Intrinsic, Query, Scope};

/// The per-shard collector: offered every candidate trace once.
pub struct ShardSearch {
    job: Arc<Job>,
    evaluator: Option<Evaluator>,
    /// Reads span fields for tag values when there is no query (`evaluator` is `None`).
    field_reader: Option<Evaluator>,
    traces: Vec<TraceMatch>,
    names: BTreeMap<TagScope, BTreeSet<String>>,
    names_bytes: usize,
    values: Vec<Value>,
    values_seen: HashSet<String>,
    values_bytes: usize,
    inspected_traces: u64,
    inspected_bytes: u64,
    inspected_spans: u64,
    blocks: u32,
    error: Option<String>,
    /// Tag names or values reached the job's `bytes_max`.
    truncated: bool,
    refused: bool,
    /// `with(most_recent=true)`: the `limit` most recent traces, searching everything.
    most_recent: bool,
    /// A metrics job's series since the last answer (each answer carries its delta).
    metrics: Option<crate::metrics::Partial>,
}

impl ShardSearch {
    /// The query must have passed [`crate::traceql::compile`]. A query the evaluator does not
    /// run (a metrics query) makes a refused search: see [`ShardSearch::is_refused`].
    pub fn new(job: Arc<Job>) -> ShardSearch {
        let query = match &*job {
            Job::Search(r) => r.query.clone(),
            Job::TagNames { query, .. } | Job::TagValues { query, .. } => query.clone(),
            Job::Metrics(_) => None,
        };
        let evaluator = match &*job {
            Job::Metrics(r) => Some(r.evaluator()),
            _ => query.map(Evaluator::new),
        };
        let (evaluator, error) = match evaluator {
            Some(Ok(ev)) => (Some(ev), None),
            Some(Err(e)) => (None, Some(e.to_string())),
            None => (None, None),
        };
        let metrics = match &*job {
            Job::Metrics(r) => Some(crate::metrics::Partial::new(r)),
            _ => None,
        };
        let refused = error.is_some();
        // Reads span fields for tag values without a query: built once, not per span.
        let field_reader = match (&*job, &evaluator) {
            (Job::TagValues { .. }, None) => Evaluator::new(Query {
                pipeline: crate::traceql::Pipeline {
                    elements: Vec::new(),
                },
                metrics: None,
                hints: Vec::new(),
            })
            .ok(),
            _ => None,
        };
        let most_recent = match &*job {
            Job::Search(r) => r.query.as_ref().is_some_and(|q| {
                q.hints.iter().any(|h| {
                    h.name == "most_recent" && h.value == crate::traceql::Static::Bool(true)
                })
            }),
            _ => false,
        };
        ShardSearch {
            job,
            evaluator,
            field_reader,
            traces: Vec::new(),
            names: BTreeMap::new(),
            names_bytes: 0,
            values: Vec::new(),
            values_seen: HashSet::new(),
            values_bytes: 0,
            inspected_traces: 0,
            inspected_bytes: 0,
            inspected_spans: 0,
            blocks: 0,
            error,
            truncated: false,
            refused,
            most_recent,
            metrics,
        }
    }

    /// The job cannot run (its answer's `error` says why); offers are ignored.
    pub fn is_refused(&self) -> bool {
        self.refused
    }

    pub fn range(&self) -> (u64, u64) {
        self.job.range()
    }

    /// A read failed; the search goes on with the rest.
    pub fn error(&mut self, message: String) {
        self.error.get_or_insert(message);
    }

    pub fn block_done(&mut self) {
        self.blocks += 1;
    }

    /// Nothing more will be added: tag values hit their byte limit, or a search has
    /// `limit` traces and was not asked for the most recent ones (Tempo's frontend also
    /// stops at `limit`; `with(most_recent=true)` searches on, see [`Self::can_skip`]).
    pub fn is_full(&self) -> bool {
        match &*self.job {
            Job::TagValues { .. } | Job::TagNames { .. } => self.truncated,
            Job::Search(r) => !self.most_recent && self.traces.len() >= r.limit,
            Job::Metrics(_) => false,
        }
    }

    /// Whether traces that all start before `max_end_ns` can be left out: a most-recent
    /// search already holds `limit` traces that start later.
    pub fn can_skip(&mut self, max_end_ns: u64) -> bool {
        let Job::Search(r) = &*self.job else {
            return false;
        };
        let limit = r.limit;
        if self.traces.len() < limit || limit == 0 {
            return false;
        }
        most_recent_first(&mut self.traces, limit);
        self.traces.last().is_some_and(|t| t.start_ns > max_end_ns)
    }

    /// The page plan of the job's query ([`crate::scan`]); `None` when every trace must be
    /// evaluated (no query, or a query the evaluator refuses).
    pub fn plan(&self) -> Option<crate::scan::Plan> {
        if self.refused {
            return None;
        }
        match &*self.job {
            Job::Search(r) => r
                .query
                .as_ref()
                .and_then(|q| crate::scan::Plan::new(q, r.min_duration_ns, r.max_duration_ns)),
            Job::TagNames { query, .. } | Job::TagValues { query, .. } => {
                query.as_ref().and_then(|q| crate::scan::Plan::new(q, 0, 0))
            }
            // The spanset pipeline picks the traces; the metrics stage reads their spans.
            Job::Metrics(r) => {
                let mut query = r.query.clone();
                query.metrics = None;
                crate::scan::Plan::new(&query, 0, 0)
            }
        }
    }

    /// A metrics job that page columns answer span by span ([`crate::scan::MetricsScan`]).
    pub fn metrics_scan(&self) -> Option<crate::scan::MetricsScan> {
        match &*self.job {
            Job::Metrics(r) if !self.refused => crate::scan::MetricsScan::new(&r.query),
            _ => None,
        }
    }

    /// Spans a [`crate::scan::MetricsScan`] counted from a page whose trace IDs are `ids`.
    pub fn observe_columns(&mut self, ids: &[TraceId], groups: &[crate::scan::Group]) {
        let job = self.job.clone();
        if let (Job::Metrics(request), Some(partial)) = (&*job, &mut self.metrics) {
            partial.observe_groups(request, ids, groups);
        }
    }

    /// Counts what a page scan read (bytes from disk, span rows judged).
    pub fn scanned(&mut self, bytes: u64, spans: u64) {
        self.inspected_bytes += bytes;
        self.inspected_spans += spans;
    }

    /// Counts a trace ruled out before decoding (its bytes lack what the query needs).
    pub fn skipped(&mut self, parts: &[&[u8]]) {
        self.inspected_traces += 1;
        self.inspected_bytes += parts.iter().map(|p| p.len() as u64).sum::<u64>();
    }

    /// Offers one trace: `payload` is an encoded `tempopb.Trace` (field-1 `ResourceSpans`).
    pub fn offer(&mut self, trace_id: &TraceId, payload: &[u8]) {
        if self.start_offer(&[payload], true) {
            self.offer_decoded(trace_id, payload, true);
        }
    }

    /// Offers a trace stored in parts (live and WAL records, block parts): a tag job without
    /// a query reads them as they are, anything else gets them assembled into one payload.
    pub fn offer_parts(&mut self, trace_id: &TraceId, parts: &[&[u8]]) {
        if self.start_offer(parts, true) {
            let payload = crate::otlp::assemble_trace(parts);
            self.offer_decoded(trace_id, &payload, true);
        }
    }

    /// Offers a trace of a page already counted by [`Self::scanned`].
    pub fn offer_scanned(&mut self, trace_id: &TraceId, payload: &[u8]) {
        if self.start_offer(&[payload], false) {
            self.offer_decoded(trace_id, payload, false);
        }
    }

    /// Counts an offered trace and takes it without decoding when it can (tag jobs without a
    /// query); true when it still needs [`Self::offer_decoded`].
    fn start_offer(&mut self, parts: &[&[u8]], count: bool) -> bool {
        if self.refused {
            return false;
        }
        self.inspected_traces += 1;
        if count {
            self.inspected_bytes += parts.iter().map(|p| p.len() as u64).sum::<u64>();
        }
        !self.tags_from_bytes(parts, count)
    }

    fn offer_decoded(&mut self, trace_id: &TraceId, payload: &[u8], count: bool) {
        let Ok(data) = TracesData::decode(payload) else {
            self.error(format!("trace {trace_id}: stored payload does not decode"));
            return;
        };
        let view = TraceView::new(&data.resource_spans);
        if count {
            self.inspected_spans += view.spans.len() as u64;
        }
        let (start, end) = self.range();
        if view.spans.is_empty() || view.start_ns > end || view.end_ns < start {
            return;
        }
        let job = self.job.clone();
        match &*job {
            Job::Search(request) => self.search(trace_id, &view, request),
            Job::Metrics(request) => {
                if let (Some(ev), Some(partial)) = (&self.evaluator, &mut self.metrics) {
                    partial.observe(request, ev, trace_id, &view);
                }
            }
            Job::TagNames {
                scopes, bytes_max, ..
            } => {
                let spans = self.matching_spans(&view);
                for i in spans {
                    let s = &view.spans[i];
                    for &scope in scopes {
                        let attrs: Vec<&[KeyValue]> = match scope {
                            TagScope::Resource => vec![s.resource],
                            TagScope::Span => vec![&s.span.attributes],
                            TagScope::Event => s
                                .span
                                .events
                                .iter()
                                .map(|e| e.attributes.as_slice())
                                .collect(),
                            TagScope::Link => s
                                .span
                                .links
                                .iter()
                                .map(|l| l.attributes.as_slice())
                                .collect(),
                            TagScope::Instrumentation => {
                                s.scope.iter().map(|sc| sc.attributes.as_slice()).collect()
                            }
                        };
                        for kv in attrs.into_iter().flatten() {
                            if !self.add_name(scope, &kv.key, *bytes_max) {
                                return;
                            }
                        }
                    }
                }
            }
            Job::TagValues {
                field, bytes_max, ..
            } => {
                let spans = self.matching_spans(&view);
                for i in spans {
                    let reader = self.evaluator.as_ref().or(self.field_reader.as_ref());
                    let values = field_values(&view, i, field, reader);
                    for v in values {
                        if !self.add_value(v, *bytes_max) {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Adds a tag name of `scope` unless known; false once the byte limit is reached (the
    /// collection is over, as in Tempo's `DistinctStringCollector`).
    fn add_name(&mut self, scope: TagScope, name: &str, bytes_max: usize) -> bool {
        if self.truncated {
            return false;
        }
        let set = self.names.entry(scope).or_default();
        if set.contains(name) {
            return true;
        }
        if self.names_bytes + name.len() > bytes_max {
            self.truncated = true;
            return false;
        }
        self.names_bytes += name.len();
        set.insert(name.to_string());
        true
    }

    /// Adds a tag value unless nil or known; false once the byte limit is reached.
    fn add_value(&mut self, v: Value, bytes_max: usize) -> bool {
        if self.truncated {
            return false;
        }
        if v.is_nil() {
            return true;
        }
        let key = format!("{}\u{0}{}", v.type_name(), v.to_text());
        if self.values_seen.contains(&key) {
            return true;
        }
        let len = v.to_text().len();
        if self.values_bytes + len > bytes_max {
            self.truncated = true;
            return false;
        }
        self.values_seen.insert(key);
        self.values_bytes += len;
        self.values.push(v);
        true
    }

    /// Whether [`Self::page_tags`] may take pages: a tag job without a query.
    pub fn reads_page_tags(&self) -> bool {
        self.evaluator.is_none()
            && !self.refused
            && matches!(&*self.job, Job::TagNames { .. } | Job::TagValues { .. })
    }

    /// The values a tag job reads without decoding: an attribute (not `parent.`) or the span
    /// name.
    fn byte_values(field: &Field) -> bool {
        match field {
            Field::Attribute(a) => !a.parent,
            Field::Intrinsic(Intrinsic::Name) => true,
            _ => false,
        }
    }

    /// Tag names or values of a whole page from its columns (`scan::page_tags`), for a job
    /// without a query whose range holds every span of the page (`page_in_range`).
    /// `Ok(Some(raw))`: done, but for the traces stored raw (rebuild and offer them);
    /// `Ok(None)`: read the page the usual way.
    pub fn page_tags(
        &mut self,
        view: &crate::block::PageView<'_>,
        page_in_range: bool,
    ) -> Result<Option<Vec<usize>>, crate::block::BlockError> {
        if self.evaluator.is_some() || self.refused || !page_in_range || self.truncated {
            return Ok(None);
        }
        let job = self.job.clone();
        let (want, bytes_max) = match &*job {
            Job::TagNames {
                scopes, bytes_max, ..
            } => (crate::scan::TagWant::Names(scopes), *bytes_max),
            Job::TagValues {
                field: Field::Attribute(a),
                bytes_max,
                ..
            } if !a.parent => (
                crate::scan::TagWant::Values {
                    scope: a.scope,
                    name: &a.name,
                },
                *bytes_max,
            ),
            Job::TagValues {
                field: Field::Intrinsic(Intrinsic::Name),
                bytes_max,
                ..
            } => (crate::scan::TagWant::SpanNames, *bytes_max),
            _ => return Ok(None),
        };
        let Some(found) = crate::scan::page_tags(view, want)? else {
            return Ok(None);
        };
        self.inspected_traces += (view.trace_count as usize - found.raw.len()) as u64;
        self.inspected_spans += found.spans;
        for (scope, name) in &found.names {
            if !self.add_name(*scope, name, bytes_max) {
                break;
            }
        }
        for value in found.values {
            if !self.add_value(value, bytes_max) {
                break;
            }
        }
        Ok(Some(found.raw))
    }

    /// Tag names, and values of an attribute, for a job without a query: read from the
    /// trace's bytes (`otlp::attrs`), no prost decode. False when the job or the payload
    /// needs the decoded trace; the caller then decodes it.
    fn tags_from_bytes(&mut self, parts: &[&[u8]], count: bool) -> bool {
        if self.evaluator.is_some() {
            return false;
        }
        let job = self.job.clone();
        let attribute = match &*job {
            Job::TagNames { .. } => None,
            Job::TagValues {
                field: Field::Attribute(a),
                ..
            } if !a.parent => Some(a),
            Job::TagValues { field, .. } if Self::byte_values(field) => None,
            _ => return false,
        };
        let want = match (&*job, attribute) {
            (Job::TagNames { scopes, .. }, _) => crate::otlp::attrs::Want {
                resource: scopes.contains(&TagScope::Resource),
                scope: scopes.contains(&TagScope::Instrumentation),
                span: scopes.contains(&TagScope::Span),
                events: scopes.contains(&TagScope::Event),
                links: scopes.contains(&TagScope::Link),
                name: false,
            },
            (_, Some(a)) => crate::otlp::attrs::Want {
                resource: matches!(a.scope, Scope::Resource | Scope::None),
                scope: a.scope == Scope::Instrumentation,
                span: matches!(a.scope, Scope::Span | Scope::None),
                events: a.scope == Scope::Event,
                links: a.scope == Scope::Link,
                name: false,
            },
            // The span name.
            (_, None) => crate::otlp::attrs::Want {
                resource: false,
                scope: false,
                span: false,
                events: false,
                links: false,
                name: true,
            },
        };
        let Some(trace) = crate::otlp::attrs::trace_attrs_of(parts, want) else {
            return false;
        };
        if count {
            self.inspected_spans += trace.spans.len() as u64;
        }
        let (start, end) = self.range();
        if trace.spans.is_empty() || trace.start_ns > end || trace.end_ns < start {
            return true;
        }
        match (&*job, attribute) {
            (
                Job::TagNames {
                    scopes, bytes_max, ..
                },
                _,
            ) => {
                for span in &trace.spans {
                    for &scope in scopes {
                        let lists: Vec<&[Attr]> = match scope {
                            TagScope::Resource => vec![trace.resource_attrs(span)],
                            TagScope::Span => vec![trace.span_attrs(span)],
                            TagScope::Event => trace.event_attrs(span).collect(),
                            TagScope::Link => trace.link_attrs(span).collect(),
                            TagScope::Instrumentation => vec![trace.scope_attrs(span)],
                        };
                        for attr in lists.into_iter().flatten() {
                            if !self.add_name(scope, attr.key, *bytes_max) {
                                return true;
                            }
                        }
                    }
                }
            }
            (Job::TagValues { bytes_max, .. }, Some(a)) => {
                // The first attribute of the name in each list, as `find_attr` reads it.
                fn first<'a>(list: &[Attr<'a>], name: &str) -> Option<Attr<'a>> {
                    list.iter().find(|attr| attr.key == name).copied()
                }
                let name = a.name.as_str();
                for span in &trace.spans {
                    let found: Vec<Attr> = match a.scope {
                        Scope::Span => first(trace.span_attrs(span), name).into_iter().collect(),
                        Scope::Resource => first(trace.resource_attrs(span), name)
                            .into_iter()
                            .collect(),
                        Scope::Instrumentation => {
                            first(trace.scope_attrs(span), name).into_iter().collect()
                        }
                        Scope::None => first(trace.span_attrs(span), name)
                            .into_iter()
                            .chain(first(trace.resource_attrs(span), name))
                            .collect(),
                        Scope::Event => trace
                            .event_attrs(span)
                            .filter_map(|list| first(list, name))
                            .collect(),
                        Scope::Link => trace
                            .link_attrs(span)
                            .filter_map(|list| first(list, name))
                            .collect(),
                    };
                    for attr in found {
                        let value = match attr.value {
                            None => Value::Nil,
                            Some(bytes) => match AnyValue::decode(bytes) {
                                Ok(v) => any_value(Some(&v)),
                                // prost would have refused the whole trace.
                                Err(_) => return false,
                            },
                        };
                        if !self.add_value(value, *bytes_max) {
                            return true;
                        }
                    }
                }
            }
            (Job::TagValues { bytes_max, .. }, None) => {
                for name in &trace.names {
                    if !self.add_value(Value::Str((*name).to_string()), *bytes_max) {
                        return true;
                    }
                }
            }
            _ => return false,
        }
        true
    }

    fn matching_spans(&self, view: &TraceView) -> Vec<usize> {
        match &self.evaluator {
            None => (0..view.spans.len()).collect(),
            Some(ev) => {
                let mut spans: Vec<usize> = ev
                    .eval(view)
                    .iter()
                    .flat_map(|ss| ss.spans.iter().copied())
                    .collect();
                spans.sort_unstable();
                spans.dedup();
                spans
            }
        }
    }

    fn search(&mut self, trace_id: &TraceId, view: &TraceView, r: &SearchRequest) {
        let duration_ns = view.end_ns.saturating_sub(view.start_ns);
        if r.min_duration_ns > 0 && duration_ns < r.min_duration_ns {
            return;
        }
        if r.max_duration_ns > 0 && duration_ns > r.max_duration_ns {
            return;
        }
        let spansets = match &self.evaluator {
            Some(ev) => {
                let sets = ev.eval(view);
                if sets.is_empty() {
                    return;
                }
                sets.iter()
                    .map(|ss| SpansetOut {
                        spans: ss
                            .spans
                            .iter()
                            .take(r.spans_per_spanset)
                            .map(|&i| span_out(view, i, ev))
                            .collect(),
                        matched: ss.spans.len() as u32,
                        attributes: ss.attributes.clone(),
                    })
                    .collect()
            }
            None => {
                if !r.tags.iter().all(|(k, v)| tag_matches(view, k, v)) {
                    return;
                }
                Vec::new()
            }
        };
        let mut service_stats: BTreeMap<String, (u32, u32)> = BTreeMap::new();
        for s in &view.spans {
            let entry = service_stats
                .entry(s.service_name().unwrap_or_default().to_string())
                .or_default();
            entry.0 += 1;
            if s.is_error() {
                entry.1 += 1;
            }
        }
        let (root_service_name, root_trace_name) = match view.root {
            Some(root) => (
                view.spans[root]
                    .service_name()
                    .unwrap_or_default()
                    .to_string(),
                view.spans[root].span.name.clone(),
            ),
            None => (ROOT_NOT_RECEIVED.to_string(), ROOT_NOT_RECEIVED.to_string()),
        };
        self.traces.push(TraceMatch {
            trace_id: *trace_id,
            root_service_name,
            root_trace_name,
            start_ns: view.start_ns,
            duration_ms: u32::try_from(duration_ns / 1_000_000).unwrap_or(u32::MAX),
            spansets,
            service_stats,
        });
        if self.traces.len() >= r.limit.saturating_mul(2).max(64) {
            most_recent_first(&mut self.traces, r.limit);
        }
    }

    /// What was found so far, as a partial answer.
    pub fn snapshot(&mut self) -> ShardAnswer {
        let found = match &*self.job {
            Job::Search(r) => {
                most_recent_first(&mut self.traces, r.limit);
                Found::Traces(self.traces.clone())
            }
            Job::TagNames { .. } => Found::TagNames(self.names.clone()),
            Job::TagValues { .. } => Found::TagValues(self.values.clone()),
            // The series since the last answer: answers are merged, not replaced.
            Job::Metrics(r) => Found::Metrics(std::mem::replace(
                self.metrics
                    .get_or_insert_with(|| crate::metrics::Partial::new(r)),
                crate::metrics::Partial::new(r),
            )),
        };
        ShardAnswer {
            found,
            inspected_traces: self.inspected_traces,
            inspected_bytes: self.inspected_bytes,
            inspected_spans: self.inspected_spans,
            blocks: self.blocks,
            error: self.error.clone(),
            truncated: self.truncated,
            partial: true,
        }
    }

    pub fn finish(mut self) -> ShardAnswer {
        let found = match &*self.job {
            Job::Search(r) => {
                most_recent_first(&mut self.traces, r.limit);
                Found::Traces(self.traces)
            }
            Job::TagNames { .. } => Found::TagNames(self.names),
            Job::TagValues { .. } => Found::TagValues(self.values),
            Job::Metrics(r) => Found::Metrics(
                self.metrics
                    .unwrap_or_else(|| crate::metrics::Partial::new(r)),
            ),
        };
        ShardAnswer {
            found,
            inspected_traces: self.inspected_traces,
            inspected_bytes: self.inspected_bytes,
            inspected_spans: self.inspected_spans,
            blocks: self.blocks,
            error: self.error,
            truncated: self.truncated,
            partial: false,
        }
    }
}

fn span_out(view: &TraceView, i: usize, ev: &Evaluator) -> SpanOut {
    let s = &view.spans[i];
    let mut name = None;
    let mut attributes = Vec::new();
    for field in ev.shown_fields() {
        if *field == Field::Intrinsic(Intrinsic::Name) {
            name = Some(s.span.name.clone());
            continue;
        }
        let key = match field {
            Field::Attribute(a) => a.name.clone(),
            Field::Intrinsic(i) => i.as_str().to_string(),
        };
        let value = ev.field_value(view, i, field);
        if !value.is_nil() && !attributes.iter().any(|(k, _)| *k == key) {
            attributes.push((key, value));
        }
    }
    SpanOut {
        span_id: s.span.span_id.clone(),
        name,
        start_ns: s.start_ns(),
        duration_ns: s.duration_ns(),
        attributes,
    }
}

/// Every value of `field` on one span (all events/links for those scopes).
fn field_values(
    view: &TraceView,
    span: usize,
    field: &Field,
    ev: Option<&Evaluator>,
) -> Vec<Value> {
    let s = &view.spans[span];
    let from = |attrs: &[KeyValue], name: &str| -> Option<Value> {
        attrs
            .iter()
            .find(|kv| kv.key == name)
            .map(|kv| any_value(kv.value.as_ref()))
    };
    match field {
        Field::Attribute(a) => match a.scope {
            Scope::Event => s
                .span
                .events
                .iter()
                .filter_map(|e| from(&e.attributes, &a.name))
                .collect(),
            Scope::Link => s
                .span
                .links
                .iter()
                .filter_map(|l| from(&l.attributes, &a.name))
                .collect(),
            Scope::None => {
                // Unscoped: span and resource values both count.
                from(&s.span.attributes, &a.name)
                    .into_iter()
                    .chain(from(s.resource, &a.name))
                    .collect()
            }
            _ => single(view, span, field, ev),
        },
        Field::Intrinsic(Intrinsic::EventName) => s
            .span
            .events
            .iter()
            .map(|e| Value::Str(e.name.clone()))
            .collect(),
        _ => single(view, span, field, ev),
    }
}

fn single(view: &TraceView, span: usize, field: &Field, ev: Option<&Evaluator>) -> Vec<Value> {
    ev.map(|ev| vec![ev.field_value(view, span, field)])
        .unwrap_or_default()
}

/// The old tag search: `name`, `status.code`, `error` are span fields; other keys match a
/// span or resource attribute whose value, as text, equals `value`.
fn tag_matches(view: &TraceView, key: &str, value: &str) -> bool {
    view.spans.iter().any(|s| match key {
        "name" => s.span.name == value,
        "status.code" => {
            let code = s.span.status.as_ref().map_or(0, |st| st.code);
            let name = ["unset", "ok", "error"].get(code as usize).copied();
            name == Some(value) || code.to_string() == value
        }
        "error" => value == "true" && s.is_error(),
        _ => s.span.attributes.iter().chain(s.resource.iter()).any(|kv| {
            kv.key == key
                && crate::traceql::eval::any_value_text(kv.value.as_ref()).as_deref() == Some(value)
        }),
    })
}

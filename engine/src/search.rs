//! Search, tag names and tag values over stored traces (sans-IO): a [`Job`] says what to look
//! for, a [`ShardSearch`] is offered every candidate trace of one shard (live, WAL, blocks)
//! and yields a [`ShardAnswer`]; [`merge`] combines the answers of all shards like Tempo's
//! frontend (most recent first, `limit` traces, de-duplicated by trace ID).
//!
//! Each trace is decoded whole (prost, OpenTelemetry types) and the TraceQL query evaluated
//! on it ([`crate::traceql::eval`]), so structural operators see every span.
//!
//! Limits: a shard keeps at most `limit` traces; tag names and tag values stop at the job's
//! `bytes_max` (Tempo's `max_bytes_per_tag_values_query`), never above [`TAG_BYTES_MAX`].

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::TracesData;
use prost::Message;

use crate::ids::TraceId;
use crate::otlp::attrs::Attr;
use crate::traceql::eval::{any_value, Evaluator, TraceView, Value};
use crate::traceql::{Field, Intrinsic, Query, Scope};

/// Bytes of tag names or values one answer collects at most, whatever the configuration says:
/// Tempo's `max_bytes_per_tag_values_query: 0` means no limit, which here means this one.
pub const TAG_BYTES_MAX: usize = 64 << 20;
/// Tempo's default `limit` and `spss`.
pub const LIMIT_DEFAULT: usize = 20;
pub const SPANS_PER_SPANSET_DEFAULT: usize = 3;
/// Root names when the root span is not stored (Tempo's text).
pub const ROOT_NOT_RECEIVED: &str = "<root span not yet received>";

/// A trace search. Times in Unix nanoseconds; `end_ns` is `u64::MAX` when unbounded.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchRequest {
    /// TraceQL; `None` for the old tag search (then `tags` applies, all must match).
    pub query: Option<Query>,
    pub tags: Vec<(String, String)>,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Trace duration bounds in nanoseconds; 0 = none.
    pub min_duration_ns: u64,
    pub max_duration_ns: u64,
    pub limit: usize,
    pub spans_per_spanset: usize,
}

/// Attribute scopes of tag names, in Tempo's order of `/api/v2/search/tags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TagScope {
    Resource,
    Span,
    Event,
    Link,
    Instrumentation,
}

impl TagScope {
    pub const ALL: [TagScope; 5] = [
        TagScope::Resource,
        TagScope::Span,
        TagScope::Event,
        TagScope::Link,
        TagScope::Instrumentation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TagScope::Resource => "resource",
            TagScope::Span => "span",
            TagScope::Event => "event",
            TagScope::Link => "link",
            TagScope::Instrumentation => "instrumentation",
        }
    }
}

/// What a shard is asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum Job {
    Search(SearchRequest),
    /// Attribute names of `scopes`, over the spans matching `query` (all spans when `None`).
    /// Names are collected while their bytes stay within `bytes_max`, as Tempo's
    /// `DistinctStringCollector` does: the first name that does not fit ends the collection.
    TagNames {
        scopes: Vec<TagScope>,
        query: Option<Query>,
        start_ns: u64,
        end_ns: u64,
        bytes_max: usize,
    },
    /// Distinct values of `field`, over the spans matching `query`, within `bytes_max` bytes
    /// of value text like tag names.
    TagValues {
        field: Field,
        query: Option<Query>,
        start_ns: u64,
        end_ns: u64,
        bytes_max: usize,
    },
}

impl Job {
    /// `[start, end]` in Unix nanoseconds: blocks outside it are skipped.
    pub fn range(&self) -> (u64, u64) {
        match self {
            Job::Search(r) => (r.start_ns, r.end_ns),
            Job::TagNames {
                start_ns, end_ns, ..
            }
            | Job::TagValues {
                start_ns, end_ns, ..
            } => (*start_ns, *end_ns),
        }
    }
}

/// One span of a result.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanOut {
    pub span_id: Vec<u8>,
    /// Set when the query reads `name`.
    pub name: Option<String>,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub attributes: Vec<(String, Value)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpansetOut {
    pub spans: Vec<SpanOut>,
    pub matched: u32,
    pub attributes: Vec<(String, Value)>,
}

/// Tempo's `TraceSearchMetadata`.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceMatch {
    pub trace_id: TraceId,
    pub root_service_name: String,
    pub root_trace_name: String,
    pub start_ns: u64,
    pub duration_ms: u32,
    /// Empty for the old tag search (Tempo sends no `spanSet` then).
    pub spansets: Vec<SpansetOut>,
    /// Service name -> (spans, error spans).
    pub service_stats: BTreeMap<String, (u32, u32)>,
}

/// What a job found.
#[derive(Clone, Debug, PartialEq)]
pub enum Found {
    Traces(Vec<TraceMatch>),
    TagNames(BTreeMap<TagScope, BTreeSet<String>>),
    /// Distinct values in order of discovery.
    TagValues(Vec<Value>),
}

/// One shard's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardAnswer {
    pub found: Found,
    pub inspected_traces: u64,
    pub inspected_bytes: u64,
    pub inspected_spans: u64,
    pub blocks: u32,
    /// The first read error (the answer holds what could be read).
    pub error: Option<String>,
    /// Tag names or values stopped at the job's `bytes_max`: the answer holds what fit.
    pub truncated: bool,
    /// A snapshot while the shard is still searching (more answers from it follow); the
    /// last answer of a shard has `false`.
    pub partial: bool,
}

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
}

impl ShardSearch {
    /// The query must have passed [`crate::traceql::compile`]. A query the evaluator does not
    /// run (a metrics query) makes a refused search: see [`ShardSearch::is_refused`].
    pub fn new(job: Arc<Job>) -> ShardSearch {
        let query = match &*job {
            Job::Search(r) => r.query.clone(),
            Job::TagNames { query, .. } | Job::TagValues { query, .. } => query.clone(),
        };
        let (evaluator, error) = match query.map(Evaluator::new) {
            Some(Ok(ev)) => (Some(ev), None),
            Some(Err(e)) => (None, Some(e.to_string())),
            None => (None, None),
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

fn most_recent_first(traces: &mut Vec<TraceMatch>, limit: usize) {
    traces.sort_by(|a, b| {
        b.start_ns
            .cmp(&a.start_ns)
            .then(a.trace_id.as_bytes().cmp(b.trace_id.as_bytes()))
    });
    traces.truncate(limit);
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

/// All shards' final answers combined (partial ones are skipped): traces most recent first, de-duplicated, at most `limit`;
/// tag names as sorted sets; tag values de-duplicated in order of discovery.
pub fn merge(job: &Job, answers: Vec<ShardAnswer>) -> ShardAnswer {
    let mut merged = ShardAnswer {
        found: match job {
            Job::Search(_) => Found::Traces(Vec::new()),
            Job::TagNames { .. } => Found::TagNames(BTreeMap::new()),
            Job::TagValues { .. } => Found::TagValues(Vec::new()),
        },
        inspected_traces: 0,
        inspected_bytes: 0,
        inspected_spans: 0,
        blocks: 0,
        error: None,
        truncated: false,
        partial: false,
    };
    let mut seen_traces = HashSet::new();
    let mut seen_values = HashSet::new();
    // Tag names and values: the same byte limit over the union of the shards' answers.
    let bytes_max = match job {
        Job::TagNames { bytes_max, .. } | Job::TagValues { bytes_max, .. } => *bytes_max,
        Job::Search(_) => usize::MAX,
    };
    let mut tag_bytes = 0usize;
    for answer in answers.into_iter().filter(|a| !a.partial) {
        // A shard that stopped at the limit still contributes what it has.
        let shard_truncated = answer.truncated;
        merged.inspected_traces += answer.inspected_traces;
        merged.inspected_bytes += answer.inspected_bytes;
        merged.inspected_spans += answer.inspected_spans;
        merged.blocks += answer.blocks;
        if merged.error.is_none() {
            merged.error = answer.error;
        }
        match (&mut merged.found, answer.found) {
            (Found::Traces(all), Found::Traces(some)) => {
                all.extend(some.into_iter().filter(|t| seen_traces.insert(t.trace_id)));
            }
            (Found::TagNames(all), Found::TagNames(some)) => {
                for (scope, names) in some {
                    let set = all.entry(scope).or_default();
                    for name in names {
                        if merged.truncated {
                            break;
                        }
                        if set.contains(&name) {
                            continue;
                        }
                        if tag_bytes + name.len() > bytes_max {
                            merged.truncated = true;
                            break;
                        }
                        tag_bytes += name.len();
                        set.insert(name);
                    }
                }
            }
            (Found::TagValues(all), Found::TagValues(some)) => {
                for v in some {
                    if merged.truncated {
                        break;
                    }
                    let key = format!("{}\u{0}{}", v.type_name(), v.to_text());
                    if seen_values.contains(&key) {
                        continue;
                    }
                    let len = v.to_text().len();
                    if tag_bytes + len > bytes_max {
                        merged.truncated = true;
                        break;
                    }
                    seen_values.insert(key);
                    tag_bytes += len;
                    all.push(v);
                }
            }
            _ => {}
        }
        merged.truncated |= shard_truncated;
    }
    if let (Job::Search(r), Found::Traces(all)) = (job, &mut merged.found) {
        most_recent_first(all, r.limit);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traceql::compile;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.to_string(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.to_string())),
            }),
            ..Default::default()
        }
    }

    fn payload(id: u8, start_s: u64, service: &str, error: bool) -> (TraceId, Vec<u8>) {
        let trace_id = TraceId([id; 16]);
        let span = |sid: u8, parent: u8, name: &str| Span {
            trace_id: vec![id; 16],
            span_id: vec![sid; 8],
            parent_span_id: if parent == 0 { vec![] } else { vec![parent; 8] },
            name: name.to_string(),
            start_time_unix_nano: start_s * 1_000_000_000,
            end_time_unix_nano: start_s * 1_000_000_000 + 5_000_000,
            attributes: vec![kv("http.method", "GET")],
            status: Some(Status {
                code: if error && sid == 2 { 2 } else { 0 },
                message: String::new(),
            }),
            ..Default::default()
        };
        let data = TracesData {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", service)],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![span(1, 0, "root"), span(2, 1, "child")],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        (trace_id, data.encode_to_vec())
    }

    fn search(query: &str, limit: usize) -> Arc<Job> {
        Arc::new(Job::Search(SearchRequest {
            query: Some(compile(query).expect("compiles")),
            tags: Vec::new(),
            start_ns: 0,
            end_ns: u64::MAX,
            min_duration_ns: 0,
            max_duration_ns: 0,
            limit,
            spans_per_spanset: 3,
        }))
    }

    fn run(job: &Arc<Job>, traces: &[(TraceId, Vec<u8>)]) -> ShardAnswer {
        let mut s = ShardSearch::new(job.clone());
        for (id, p) in traces {
            s.offer(id, p);
        }
        s.finish()
    }

    #[test]
    fn search_most_recent_first_and_limit() {
        let traces: Vec<_> = (1..=5)
            .map(|i| payload(i, 100 + u64::from(i), "svc", i % 2 == 0))
            .collect();
        let job = search("{ status = error }", 20);
        let Found::Traces(found) = run(&job, &traces).found else {
            panic!()
        };
        let ids: Vec<u8> = found.iter().map(|t| t.trace_id.as_bytes()[0]).collect();
        assert_eq!(ids, vec![4, 2]);
        assert_eq!(found[0].root_service_name, "svc");
        assert_eq!(found[0].root_trace_name, "root");
        assert_eq!(found[0].duration_ms, 5);
        assert_eq!(found[0].service_stats["svc"], (2, 1));
        assert_eq!(found[0].spansets[0].matched, 1);
        assert_eq!(
            found[0].spansets[0].spans[0].attributes,
            vec![(
                "status".to_string(),
                Value::Status(crate::traceql::Status::Error)
            )]
        );

        // Two shards, merged: most recent first, limited.
        let job = search("{}", 3);
        let a = run(&job, &traces[..2]);
        let b = run(&job, &traces[2..]);
        let Found::Traces(found) = merge(&job, vec![a, b]).found else {
            panic!()
        };
        let ids: Vec<u8> = found.iter().map(|t| t.trace_id.as_bytes()[0]).collect();
        assert_eq!(ids, vec![5, 4, 3]);
    }

    #[test]
    fn tags_and_values() {
        let traces = vec![payload(1, 100, "a", false), payload(2, 100, "b", true)];
        let job = Arc::new(Job::TagNames {
            scopes: TagScope::ALL.to_vec(),
            query: None,
            start_ns: 0,
            end_ns: u64::MAX,
            bytes_max: TAG_BYTES_MAX,
        });
        let Found::TagNames(names) = run(&job, &traces).found else {
            panic!()
        };
        assert_eq!(
            names[&TagScope::Resource].iter().collect::<Vec<_>>(),
            vec!["service.name"]
        );
        assert_eq!(
            names[&TagScope::Span].iter().collect::<Vec<_>>(),
            vec!["http.method"]
        );

        let job = Arc::new(Job::TagValues {
            field: Field::Attribute(crate::traceql::Attribute {
                scope: Scope::Resource,
                parent: false,
                name: "service.name".to_string(),
            }),
            query: Some(compile("{ status = error }").expect("compiles")),
            start_ns: 0,
            end_ns: u64::MAX,
            bytes_max: TAG_BYTES_MAX,
        });
        let Found::TagValues(values) = run(&job, &traces).found else {
            panic!()
        };
        assert_eq!(values, vec![Value::Str("b".to_string())]);
    }

    fn service_values(bytes_max: usize) -> Arc<Job> {
        Arc::new(Job::TagValues {
            field: Field::Attribute(crate::traceql::Attribute {
                scope: Scope::Resource,
                parent: false,
                name: "service.name".to_string(),
            }),
            query: None,
            start_ns: 0,
            end_ns: u64::MAX,
            bytes_max,
        })
    }

    /// Tempo's `DistinctStringCollector`: values are kept while their bytes fit the limit; the
    /// first that does not fit ends the collection, in one shard and across shards.
    #[test]
    fn tag_values_stop_at_the_byte_limit() {
        let traces: Vec<_> = ["aaa", "bb", "aaa", "cccc", "d"]
            .iter()
            .enumerate()
            .map(|(i, service)| payload(i as u8 + 1, 100, service, false))
            .collect();
        let values = |answer: &ShardAnswer| match &answer.found {
            Found::TagValues(values) => values.iter().map(Value::to_text).collect::<Vec<_>>(),
            _ => panic!(),
        };

        let answer = run(&service_values(10), &traces);
        assert_eq!(values(&answer), ["aaa", "bb", "cccc", "d"]);
        assert!(!answer.truncated, "10 bytes fit exactly");
        let answer = run(&service_values(8), &traces);
        assert_eq!(
            values(&answer),
            ["aaa", "bb"],
            "cccc does not fit, d is never looked at"
        );
        assert!(answer.truncated);

        // Two shards of 5 and 4 bytes each fit alone; together they pass 6.
        let job = service_values(6);
        let a = run(&job, &traces[..3]);
        let b = run(&job, &traces[3..]);
        assert!(!a.truncated && !b.truncated);
        let merged = merge(&job, vec![a, b]);
        assert_eq!(values(&merged), ["aaa", "bb"]);
        assert!(merged.truncated);

        // A shard that stopped at the limit itself still contributes what it holds.
        let job = service_values(4);
        let a = run(&job, &traces[..2]);
        assert!(a.truncated);
        let merged = merge(&job, vec![a]);
        assert_eq!(values(&merged), ["aaa"]);
        assert!(merged.truncated);
    }

    #[test]
    fn old_style_tags_and_time_range() {
        let traces = vec![payload(1, 100, "a", false), payload(2, 200, "b", true)];
        let mut request = SearchRequest {
            query: None,
            tags: vec![("service.name".to_string(), "b".to_string())],
            start_ns: 0,
            end_ns: u64::MAX,
            min_duration_ns: 0,
            max_duration_ns: 0,
            limit: 20,
            spans_per_spanset: 3,
        };
        let Found::Traces(found) = run(&Arc::new(Job::Search(request.clone())), &traces).found
        else {
            panic!()
        };
        assert_eq!(found.len(), 1);
        assert!(found[0].spansets.is_empty());
        request.tags.clear();
        request.end_ns = 150 * 1_000_000_000;
        let Found::Traces(found) = run(&Arc::new(Job::Search(request)), &traces).found else {
            panic!()
        };
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].trace_id.as_bytes()[0], 1);
    }
}

/// The byte path of tag names and values (`otlp::attrs`, taken without a query) against the
/// decoded path (taken with `{ true }`, which matches every span): the same answers, on
/// traces with every attribute scope, duplicate keys, keys without values, typed values.
#[cfg(test)]
mod tag_bytes_tests {
    use super::*;
    use crate::traceql::{compile, Attribute};
    use opentelemetry_proto::tonic::common::v1::{any_value, ArrayValue, InstrumentationScope};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn kv(key: &str, value: Option<any_value::Value>) -> KeyValue {
        KeyValue {
            key: key.to_string(),
            value: value.map(|v| AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    fn s(text: &str) -> Option<any_value::Value> {
        Some(any_value::Value::StringValue(text.to_string()))
    }

    /// Trace `i`: a few resources and scopes, spans with events and links; values vary with
    /// `i` so that traces add different names and values.
    fn trace(i: u8) -> (TraceId, Vec<u8>) {
        let n = i64::from(i);
        let span = |sid: u8| Span {
            trace_id: vec![i; 16],
            span_id: vec![sid; 8],
            name: format!("op-{}", sid % 3),
            start_time_unix_nano: 1_000 + u64::from(i) * 10 + u64::from(sid),
            end_time_unix_nano: 2_000 + u64::from(i) * 10,
            attributes: vec![
                kv("http.method", s(["GET", "POST"][usize::from(sid % 2)])),
                kv(
                    "http.status_code",
                    Some(any_value::Value::IntValue(200 + n)),
                ),
                kv(
                    "ratio",
                    Some(any_value::Value::DoubleValue(0.5 * f64::from(sid))),
                ),
                kv(
                    "flag",
                    Some(any_value::Value::BoolValue(sid.is_multiple_of(2))),
                ),
                kv("empty", None),
                kv("http.method", s("DUPLICATE")),
                kv(
                    "list",
                    Some(any_value::Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue { value: s("a") }],
                    })),
                ),
                kv(&format!("span.only.{}", i % 4), s("x")),
            ],
            events: vec![Event {
                name: "ev".into(),
                attributes: vec![
                    kv("event.key", s(&format!("e{}", sid))),
                    kv("event.key", s("second")),
                ],
                ..Default::default()
            }],
            links: if sid == 1 {
                vec![Link {
                    trace_id: vec![9; 16],
                    span_id: vec![9; 8],
                    attributes: vec![kv("link.key", Some(any_value::Value::IntValue(n)))],
                    ..Default::default()
                }]
            } else {
                Vec::new()
            },
            ..Default::default()
        };
        let data = TracesData {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![
                            kv("service.name", s(&format!("svc-{}", i % 5))),
                            kv("host", s("h1")),
                        ],
                        ..Default::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "lib".into(),
                            attributes: vec![kv("scope.key", s("v"))],
                            ..Default::default()
                        }),
                        spans: vec![span(1), span(2)],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                // No Resource, an empty scope, a span without attributes.
                ResourceSpans {
                    resource: None,
                    scope_spans: vec![
                        ScopeSpans::default(),
                        ScopeSpans {
                            spans: vec![Span {
                                trace_id: vec![i; 16],
                                span_id: vec![7; 8],
                                start_time_unix_nano: 1_500,
                                end_time_unix_nano: 1_600,
                                ..Default::default()
                            }],
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                // A resource without spans: its attributes are not tag names.
                ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![kv("orphan", s("o"))],
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ],
        };
        (TraceId([i; 16]), data.encode_to_vec())
    }

    /// A trace the page stores raw (a span ID of 4 bytes has no column).
    fn raw_trace(i: u8) -> (TraceId, Vec<u8>) {
        let (id, payload) = trace(i);
        let mut data = TracesData::decode(payload.as_slice()).expect("decodes");
        data.resource_spans[0].scope_spans[0].spans[0].span_id = vec![i; 4];
        (id, data.encode_to_vec())
    }

    /// Values as a sorted list of (type, text): the paths find them in different orders.
    fn value_set(found: &Found) -> Vec<(String, String)> {
        let Found::TagValues(values) = found else {
            panic!("{found:?}")
        };
        let mut out: Vec<(String, String)> = values
            .iter()
            .map(|v| (v.type_name().to_string(), v.to_text()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn page_columns_give_the_decoded_answers() {
        use crate::block::{open_bytes, page_bytes, BlockWriter, PageView};
        let mut traces: Vec<(TraceId, Vec<u8>)> = (1..=12).map(trace).collect();
        traces.push(raw_trace(13));
        traces.sort_by_key(|(id, _)| *id);
        let mut writer = BlockWriter::new();
        for (id, payload) in &traces {
            writer.add_trace(*id, payload);
        }
        let block = writer.finish().0;
        let index = open_bytes(&block).expect("opens");
        let mut raw_seen = 0;
        let mut run = |job: Job| -> (ShardAnswer, ShardAnswer) {
            let mut columns = ShardSearch::new(Arc::new(job.clone()));
            for entry in &index.pages {
                let view =
                    PageView::decode(page_bytes(&block, entry).expect("page")).expect("view");
                let raw = columns
                    .page_tags(&view, true)
                    .expect("reads")
                    .expect("the columns take the page");
                raw_seen += raw.len();
                for (id, payload) in view.rebuild(&raw).expect("rebuilds") {
                    columns.offer_scanned(&id, &payload);
                }
            }
            let mut decoded_job = job;
            match &mut decoded_job {
                Job::TagNames { query, .. } | Job::TagValues { query, .. } => {
                    *query = every_match()
                }
                Job::Search(_) => unreachable!(),
            }
            let mut decoded = ShardSearch::new(Arc::new(decoded_job));
            for (id, payload) in &traces {
                decoded.offer(id, payload);
            }
            (columns.finish(), decoded.finish())
        };
        let (columns, decoded) = run(Job::TagNames {
            scopes: TagScope::ALL.to_vec(),
            query: None,
            start_ns: 0,
            end_ns: u64::MAX,
            bytes_max: TAG_BYTES_MAX,
        });
        assert_eq!(columns.found, decoded.found);
        assert_eq!(columns.inspected_traces, decoded.inspected_traces);
        for name in [
            "http.method",
            "http.status_code",
            "ratio",
            "flag",
            "empty",
            "list",
        ]
        .into_iter()
        .chain([
            "service.name",
            "event.key",
            "link.key",
            "scope.key",
            "absent",
        ]) {
            for scope in [
                Scope::None,
                Scope::Span,
                Scope::Resource,
                Scope::Event,
                Scope::Link,
                Scope::Instrumentation,
            ] {
                let (columns, decoded) = run(Job::TagValues {
                    field: Field::Attribute(Attribute {
                        scope,
                        parent: false,
                        name: name.to_string(),
                    }),
                    query: None,
                    start_ns: 0,
                    end_ns: u64::MAX,
                    bytes_max: TAG_BYTES_MAX,
                });
                assert_eq!(
                    value_set(&columns.found),
                    value_set(&decoded.found),
                    "{scope:?} {name}"
                );
            }
        }
        let (columns, decoded) = run(Job::TagValues {
            field: Field::Intrinsic(crate::traceql::Intrinsic::Name),
            query: None,
            start_ns: 0,
            end_ns: u64::MAX,
            bytes_max: TAG_BYTES_MAX,
        });
        assert_eq!(value_set(&columns.found), value_set(&decoded.found));
        assert!(raw_seen > 0, "a raw trace went through the rebuild");
    }

    /// A trace offered in parts (as live traces are) gives the same tags as whole.
    #[test]
    fn tags_of_a_trace_in_parts() {
        let job = |query| Job::TagNames {
            scopes: TagScope::ALL.to_vec(),
            query,
            start_ns: 0,
            end_ns: u64::MAX,
            bytes_max: TAG_BYTES_MAX,
        };
        let mut parts_search = ShardSearch::new(Arc::new(job(None)));
        let mut whole_search = ShardSearch::new(Arc::new(job(every_match())));
        for i in 1..=6 {
            let (id, payload) = trace(i);
            let data = TracesData::decode(payload.as_slice()).expect("decodes");
            let (first, rest) = data.resource_spans.split_at(1);
            let a = TracesData {
                resource_spans: first.to_vec(),
            }
            .encode_to_vec();
            let b = TracesData {
                resource_spans: rest.to_vec(),
            }
            .encode_to_vec();
            parts_search.offer_parts(&id, &[&a, &b]);
            whole_search.offer(&id, &payload);
        }
        let (parts, whole) = (parts_search.finish(), whole_search.finish());
        assert_eq!(parts.found, whole.found);
        assert_eq!(parts.inspected_traces, whole.inspected_traces);
        assert_eq!(parts.inspected_spans, whole.inspected_spans);
    }

    fn answer(job: Job) -> ShardAnswer {
        let mut search = ShardSearch::new(Arc::new(job));
        for i in 1..=12 {
            let (id, payload) = trace(i);
            // The byte path takes these payloads (else both sides would decode).
            assert!(crate::otlp::attrs::trace_attrs(&[&payload]).is_some());
            search.offer(&id, &payload);
        }
        search.finish()
    }

    fn every_match() -> Option<Query> {
        Some(compile("{ true }").expect("compiles"))
    }

    #[test]
    fn tag_names_from_bytes_equal_the_decoded_ones() {
        for (start_ns, end_ns) in [(0, u64::MAX), (1_000, 1_055), (5_000, 6_000)] {
            let job = |query| Job::TagNames {
                scopes: TagScope::ALL.to_vec(),
                query,
                start_ns,
                end_ns,
                bytes_max: TAG_BYTES_MAX,
            };
            let (bytes, decoded) = (answer(job(None)), answer(job(every_match())));
            assert_eq!(bytes.found, decoded.found, "range {start_ns}..{end_ns}");
            assert_eq!(bytes.inspected_spans, decoded.inspected_spans);
            if start_ns == 0 {
                let Found::TagNames(names) = &bytes.found else {
                    panic!()
                };
                assert!(names[&TagScope::Event].contains("event.key"));
                assert!(names[&TagScope::Link].contains("link.key"));
                assert!(names[&TagScope::Instrumentation].contains("scope.key"));
                assert!(!names[&TagScope::Resource].contains("orphan"));
            }
        }
        // The byte limit stops both at the same name.
        let job = |query| Job::TagNames {
            scopes: TagScope::ALL.to_vec(),
            query,
            start_ns: 0,
            end_ns: u64::MAX,
            bytes_max: 40,
        };
        let (bytes, decoded) = (answer(job(None)), answer(job(every_match())));
        assert_eq!(bytes.found, decoded.found);
        assert!(bytes.truncated && decoded.truncated);
    }

    #[test]
    fn span_names_from_bytes_and_columns_equal_the_decoded_ones() {
        let job = |query| Job::TagValues {
            field: Field::Intrinsic(crate::traceql::Intrinsic::Name),
            query,
            start_ns: 0,
            end_ns: u64::MAX,
            bytes_max: TAG_BYTES_MAX,
        };
        let (bytes, decoded) = (answer(job(None)), answer(job(every_match())));
        assert_eq!(bytes.found, decoded.found);
        // "op-1", "op-2" and the unnamed span's "".
        assert_eq!(value_set(&bytes.found).len(), 3, "{:?}", bytes.found);
    }

    #[test]
    fn tag_values_from_bytes_equal_the_decoded_ones() {
        let names = [
            "http.method",
            "http.status_code",
            "ratio",
            "flag",
            "empty",
            "list",
            "service.name",
            "host",
            "event.key",
            "link.key",
            "scope.key",
            "span.only.1",
            "absent",
        ];
        let scopes = [
            Scope::None,
            Scope::Span,
            Scope::Resource,
            Scope::Event,
            Scope::Link,
            Scope::Instrumentation,
        ];
        for name in names {
            for scope in scopes {
                for bytes_max in [TAG_BYTES_MAX, 12] {
                    let job = |query| Job::TagValues {
                        field: Field::Attribute(Attribute {
                            scope,
                            parent: false,
                            name: name.to_string(),
                        }),
                        query,
                        start_ns: 0,
                        end_ns: u64::MAX,
                        bytes_max,
                    };
                    let (bytes, decoded) = (answer(job(None)), answer(job(every_match())));
                    assert_eq!(bytes.found, decoded.found, "{scope:?} {name} {bytes_max}");
                    assert_eq!(bytes.truncated, decoded.truncated, "{scope:?} {name}");
                }
            }
        }
    }
}

//! What a shard is asked for ([`Job`]) and what it answers ([`ShardAnswer`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::TraceId;
use crate::tags::TagScope;
use crate::traceql::eval::Value;
use crate::traceql::{Field, Query};

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
    /// A TraceQL metrics query (`/api/metrics/query_range`): every span of the spanset
    /// pipeline's result that starts in the request's range, sorted into series.
    Metrics(crate::metrics::MetricsRequest),
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
            Job::Metrics(r) => (r.start_ns, r.end_ns),
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
    /// A metrics query's series so far (merge them with [`crate::metrics::Partial::merge`]).
    Metrics(crate::metrics::Partial),
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

//! Tempo's search API, transport-independent: parameters in (HTTP query strings or
//! `tempopb` requests of the `StreamingQuerier`), an engine job, and the answer as Tempo
//! renders it (JSON for HTTP, protobuf messages for gRPC).
//!
//! | path | what |
//! |------|------|
//! | `/api/search` | traces matching TraceQL `q`, or the old `tags=` logfmt search |
//! | `/api/search/tags`, `/api/v2/search/tags` | attribute names (`scope`, `q`, `start`, `end`) |
//! | `/api/search/tag/{tag}/values`, `/api/v2/search/tag/{tag}/values` | values (`q`, typed in v2) |
//! | `/api/metrics/query_range`, `/api/metrics/query`, `/api/metrics/summary` | Tempo's answers without a metrics generator |
//!
//! Parameter checks run in Tempo's order with Tempo's texts (`pkg/api/http.go`); errors are
//! 400 `text/plain` without a trailing newline, as Tempo's frontend writes them.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use allegro_engine::search::{
    self, Found, Job, SearchRequest, ShardAnswer, TagScope, TraceMatch, SPANS_PER_SPANSET_DEFAULT,
};
use allegro_engine::traceql::eval::Value;
use allegro_engine::traceql::{self, Field, Query, Scope};
use allegro_engine::{Engine, Tenant};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};

use crate::api::{self, Request, Response, Route};
use crate::grpc::{Code, Status};
use crate::otlp_json::{write_go_double, write_go_string};
use crate::tempopb;

/// Tempo's frontend has no upper bound on `limit` by default (`max_result_limit: 0`); we cap
/// it so that one request cannot hold every trace in memory.
pub const SEARCH_LIMIT_MAX: usize = 100_000;
/// Spans per spanset at most, also with `max_spans_per_span_set: 0`.
pub const SPANS_PER_SPANSET_MAX: usize = 10_000;

/// What a search may ask for: Tempo's frontend limits, from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchLimits {
    /// `query_frontend.search.default_result_limit`: `limit` when absent or 0.
    pub default_limit: usize,
    /// `query_frontend.search.max_result_limit`; 0 = none.
    pub max_limit: usize,
    /// The widest `[start, end]`: `overrides…read.max_search_duration` when set, else
    /// `query_frontend.search.max_duration`; zero = none.
    pub max_duration: std::time::Duration,
    /// `query_frontend.search.max_spans_per_span_set`; 0 = none.
    pub max_spans_per_spanset: usize,
    /// `overrides…read.max_bytes_per_tag_values_query`, within [`search::TAG_BYTES_MAX`].
    pub tag_bytes_max: usize,
}

impl SearchLimits {
    pub fn from_config(config: &allegro_config::Config) -> SearchLimits {
        let frontend = &config.query_frontend;
        let overrides = &config.overrides;
        let tag_bytes =
            usize::try_from(overrides.max_bytes_per_tag_values_query).unwrap_or(usize::MAX);
        SearchLimits {
            default_limit: frontend.search_default_result_limit as usize,
            max_limit: frontend.search_max_result_limit as usize,
            max_duration: if overrides.max_search_duration.is_zero() {
                frontend.search_max_duration
            } else {
                overrides.max_search_duration
            },
            max_spans_per_spanset: frontend.search_max_spans_per_span_set as usize,
            tag_bytes_max: if tag_bytes == 0 {
                search::TAG_BYTES_MAX
            } else {
                tag_bytes.min(search::TAG_BYTES_MAX)
            },
        }
    }

    /// Tempo's `adjustLimit`: absent or 0 is the default; above the maximum is refused.
    fn limit(&self, asked: usize) -> Result<usize, String> {
        if asked == 0 {
            return Ok(self.default_limit.clamp(1, SEARCH_LIMIT_MAX));
        }
        if self.max_limit != 0 && asked > self.max_limit {
            return Err(format!(
                "limit {asked} exceeds max limit {}",
                self.max_limit
            ));
        }
        Ok(asked.min(SEARCH_LIMIT_MAX))
    }

    /// The frontend's range check: `[start, end]` (Unix seconds) no wider than the maximum.
    fn range(&self, start: i64, end: i64) -> Result<(), String> {
        let width = std::time::Duration::from_secs(end.saturating_sub(start).max(0) as u64);
        if !self.max_duration.is_zero() && width > self.max_duration {
            return Err(format!(
                "range specified by start and end exceeds {}. received start={start} end={end}",
                traceql::format_go_duration(
                    i64::try_from(self.max_duration.as_nanos()).unwrap_or(i64::MAX)
                )
            ));
        }
        Ok(())
    }

    /// `spss` within `max_spans_per_span_set`.
    fn spans_per_spanset(&self, asked: usize) -> Result<usize, String> {
        if self.max_spans_per_spanset != 0 && asked > self.max_spans_per_spanset {
            return Err(format!(
                "spans per span set exceeds {}. received {asked}",
                self.max_spans_per_spanset
            ));
        }
        Ok(asked.min(SPANS_PER_SPANSET_MAX))
    }
}

impl Default for SearchLimits {
    /// Tempo's defaults.
    fn default() -> SearchLimits {
        SearchLimits::from_config(&allegro_config::Config::default())
    }
}
/// The error text of a query past its deadline: Go's `context.DeadlineExceeded`, which Tempo's
/// querier writes as a 500 body and its frontend passes on (HTTP 500, gRPC `Internal`).
pub const DEADLINE_EXCEEDED: &str = "context deadline exceeded";

/// Intrinsics listed by `scope=intrinsic` (Tempo 2.7's list, as captured).
pub const INTRINSIC_TAGS: &[&str] = &[
    "duration",
    "event:name",
    "event:timeSinceStart",
    "instrumentation:name",
    "instrumentation:version",
    "kind",
    "name",
    "rootName",
    "rootServiceName",
    "span:duration",
    "span:kind",
    "span:name",
    "span:status",
    "span:statusMessage",
    "status",
    "statusMessage",
    "trace:duration",
    "trace:rootName",
    "trace:rootService",
    "traceDuration",
];
const STATUS_VALUES: &[&str] = &["unset", "ok", "error"];
const KIND_VALUES: &[&str] = &[
    "server",
    "producer",
    "consumer",
    "internal",
    "unspecified",
    "client",
];

/// A valid search-side request.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    /// `traceql`: `q` was given (results carry spansets; metrics omit `inspectedTraces`).
    Search { job: Arc<Job>, traceql: bool },
    /// `job` is `None` when only intrinsics are asked for.
    TagNames {
        v2: bool,
        job: Option<Arc<Job>>,
        /// Scopes to list, in answer order; `intrinsic` adds the static list.
        scopes: Vec<TagScope>,
        intrinsic: bool,
        /// Names per scope at most (`limit`, `maxTagsPerScope`); 0 = no limit.
        limit: usize,
    },
    /// `job` is `None` for intrinsics with fixed values (`status`, `kind`).
    TagValues {
        v2: bool,
        job: Option<Arc<Job>>,
        fixed: &'static [&'static str],
        /// Values at most (`limit`, `maxTagValues`); 0 = no limit.
        limit: usize,
    },
}

/// Routes the search paths; `None` for other paths.
pub fn route(req: &Request, path: &str, limits: &SearchLimits) -> Option<Route> {
    let params = params(req);
    let call = match path {
        "/api/search" => parse_search(&params, limits),
        "/api/search/tags" => parse_tags(&params, false, limits),
        "/api/v2/search/tags" => parse_tags(&params, true, limits),
        "/api/metrics/query_range" | "/api/metrics/query" => {
            return Some(Route::Immediate(metrics_answer(&params)))
        }
        "/api/metrics/summary" => {
            return Some(Route::Immediate(api::go_http_error_vary(
                500,
                "error finding generators in Querier.SpanMetricsSummary: empty ring",
            )))
        }
        other => {
            let (rest, v2) = if let Some(rest) = other.strip_prefix("/api/search/tag/") {
                (rest, false)
            } else if let Some(rest) = other.strip_prefix("/api/v2/search/tag/") {
                (rest, true)
            } else {
                return None;
            };
            let tag = rest.strip_suffix("/values")?;
            if tag.is_empty() || tag.contains('/') {
                return None;
            }
            parse_tag_values(&params, tag, v2, limits)
        }
    };
    Some(match call {
        Ok(call) => Route::Search(call),
        Err(response) => Route::Immediate(response),
    })
}

/// The URL query, and a form body (`POST` with `application/x-www-form-urlencoded`), like
/// Go's `r.Form`.
fn params(req: &Request) -> String {
    let form = req
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form && !req.body.is_empty() {
        let body = String::from_utf8_lossy(&req.body);
        if req.query.is_empty() {
            body.into_owned()
        } else {
            format!("{}&{body}", req.query)
        }
    } else {
        req.query.clone()
    }
}

/// Tempo's `extractQueryParam`: present and non-empty.
fn param(params: &str, key: &str) -> Option<String> {
    api::query_get(params, key).filter(|v| !v.is_empty())
}

fn bad(text: &str) -> Response {
    api::plain_vary(400, text)
}

fn parse_i32(text: &str, what: &str) -> Result<i64, Response> {
    let value = api::go_parse_int64(text).map_err(|e| bad(&format!("invalid {what}: {e}")))?;
    if i32::try_from(value).is_err() {
        return Err(bad(&format!(
            "invalid {what}: strconv.ParseInt: parsing {}: value out of range",
            api::go_quote(text)
        )));
    }
    Ok(value)
}

fn parse_atoi(text: &str, what: &str) -> Result<i64, Response> {
    api::go_parse_int64(text).map_err(|e| {
        bad(&format!(
            "invalid {what}: {}",
            e.replacen("strconv.ParseInt", "strconv.Atoi", 1)
        ))
    })
}

/// `start`/`end` (Unix seconds, 0 when absent) as Tempo's parameter parser reads them.
fn parse_start_end(params: &str) -> Result<(i64, i64), Response> {
    let start = match param(params, "start") {
        Some(text) => parse_i32(&text, "start")?,
        None => 0,
    };
    let end = match param(params, "end") {
        Some(text) => parse_i32(&text, "end")?,
        None => 0,
    };
    Ok((start, end))
}

/// `[start, end]` in nanoseconds after both checks: the parser's order and the frontend's
/// width ([`SearchLimits::range`]).
fn checked_range(start: i64, end: i64, limits: &SearchLimits) -> Result<(u64, u64), String> {
    let range = range_ns(start, end)?;
    limits.range(start, end)?;
    Ok(range)
}

/// `[start, end]` in nanoseconds, `end` inclusive of its whole second; the request parser's
/// order check (the width is checked by [`SearchLimits::range`]).
fn range_ns(start: i64, end: i64) -> Result<(u64, u64), String> {
    if start == 0 && end == 0 {
        return Ok((0, u64::MAX));
    }
    if end <= start {
        return Err(format!(
            "http parameter start must be before end. received start={start} end={end}"
        ));
    }
    let secs = |s: i64| u64::try_from(s).unwrap_or(0);
    // `end` is inclusive of its whole second.
    Ok((
        secs(start) * 1_000_000_000,
        (secs(end) + 1).saturating_mul(1_000_000_000),
    ))
}

/// Compiles `q` for search: `invalid TraceQL query: ...` on error or for metrics queries.
fn compile_search(q: &str) -> Result<Query, String> {
    let query = traceql::compile(q).map_err(|e| format!("invalid TraceQL query: {e}"))?;
    if query.is_metrics() {
        return Err(
            "invalid TraceQL query: metrics queries are not supported by search".to_string(),
        );
    }
    Ok(query)
}

fn parse_duration_ms(text: &str, what: &str) -> Result<u64, Response> {
    let d = allegro_config::parse_duration(text)
        .map_err(|e| bad(&format!("invalid {what}: time: {e}")))?;
    Ok(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Tempo's `ParseSearchRequest` of the HTTP parameters, then [`search_call`].
fn parse_search(params: &str, limits: &SearchLimits) -> Result<Call, Response> {
    let (start, end) = parse_start_end(params)?;
    let q = param(params, "q");
    let mut tags = Vec::new();
    if let Some(encoded) = param(params, "tags") {
        if q.is_some() {
            return Err(bad(
                "invalid request: can't specify tags and q in the same query",
            ));
        }
        tags = parse_logfmt(&encoded).map_err(|e| bad(&format!("invalid tags: {e}")))?;
    }
    let min_ms = match param(params, "minDuration") {
        Some(text) => parse_duration_ms(&text, "minDuration")?,
        None => 0,
    };
    let max_ms = match param(params, "maxDuration") {
        Some(text) => {
            let max = parse_duration_ms(&text, "maxDuration")?;
            if min_ms != 0 && min_ms > max {
                return Err(bad("invalid maxDuration: must be greater than minDuration"));
            }
            max
        }
        None => 0,
    };
    let limit = match param(params, "limit") {
        Some(text) => {
            let limit = parse_atoi(&text, "limit")?;
            if limit <= 0 {
                return Err(bad("invalid limit: must be a positive number"));
            }
            usize::try_from(limit).unwrap_or(usize::MAX)
        }
        None => 0,
    };
    let spss = match param(params, "spss") {
        Some(text) => {
            let spss = parse_atoi(&text, "spss")?;
            if spss <= 0 {
                return Err(bad("invalid spss: must be a positive number"));
            }
            usize::try_from(spss).unwrap_or(usize::MAX)
        }
        None => 0,
    };
    let request = SearchParams {
        query: q.as_deref(),
        tags,
        start,
        end,
        min_ms,
        max_ms,
        limit,
        spss,
    };
    search_call(request, limits).map_err(|e| bad(&e))
}

/// A search as both transports give it: `limit` and `spss` 0 when absent.
struct SearchParams<'q> {
    query: Option<&'q str>,
    tags: Vec<(String, String)>,
    start: i64,
    end: i64,
    min_ms: u64,
    max_ms: u64,
    limit: usize,
    spss: usize,
}

/// A search call from its parameters (HTTP or `StreamingQuerier`), with the frontend's checks
/// in Tempo's order: the range's order, the query, the limit, the range's width, spss.
fn search_call(r: SearchParams<'_>, limits: &SearchLimits) -> Result<Call, String> {
    let (start_ns, end_ns) = range_ns(r.start, r.end)?;
    let query = r.query.map(compile_search).transpose()?;
    let limit = limits.limit(r.limit)?;
    limits.range(r.start, r.end)?;
    let spss = match r.spss {
        0 => SPANS_PER_SPANSET_DEFAULT,
        n => n,
    };
    let spss = limits.spans_per_spanset(spss)?;
    let traceql = query.is_some();
    Ok(Call::Search {
        job: Arc::new(Job::Search(SearchRequest {
            query,
            tags: r.tags,
            start_ns,
            end_ns,
            min_duration_ns: r.min_ms.saturating_mul(1_000_000),
            max_duration_ns: r.max_ms.saturating_mul(1_000_000),
            limit,
            spans_per_spanset: spss,
        })),
        traceql,
    })
}

/// go-logfmt's decoder, enough for `tags=`: `key=value key="quoted \" value" flag`.
/// Positions in errors are 1-based byte columns, as go-logfmt reports them.
fn parse_logfmt(text: &str) -> Result<Vec<(String, String)>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let at = |msg: &str, pos: usize| format!("{msg} at pos {pos}");
    while i < bytes.len() {
        let Some(&c) = bytes.get(i) else { break };
        if c <= b' ' {
            i += 1;
            continue;
        }
        if c == b'=' {
            return Err(at("unexpected '='", i + 1));
        }
        if c == b'"' {
            return Err(at("unexpected '\"'", i + 1));
        }
        let key_start = i;
        while let Some(&c) = bytes.get(i) {
            if c <= b' ' || c == b'=' {
                break;
            }
            if c == b'"' {
                return Err(at("unexpected '\"'", i + 1));
            }
            i += 1;
        }
        let key = text.get(key_start..i).unwrap_or_default().to_string();
        if bytes.get(i) != Some(&b'=') {
            out.push((key, String::new()));
            continue;
        }
        i += 1;
        match bytes.get(i) {
            Some(b'"') => {
                i += 1;
                let mut value = Vec::new();
                loop {
                    match bytes.get(i) {
                        None => return Err(at("unterminated quoted value", i + 1)),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let escaped = match bytes.get(i + 1) {
                                Some(b'n') => b'\n',
                                Some(b't') => b'\t',
                                Some(b'r') => b'\r',
                                Some(&other) => other,
                                None => return Err(at("unterminated quoted value", i + 2)),
                            };
                            value.push(escaped);
                            i += 2;
                        }
                        Some(&other) => {
                            value.push(other);
                            i += 1;
                        }
                    }
                }
                out.push((key, String::from_utf8_lossy(&value).into_owned()));
            }
            _ => {
                let value_start = i;
                while let Some(&c) = bytes.get(i) {
                    if c <= b' ' {
                        break;
                    }
                    if c == b'"' || c == b'=' {
                        return Err(at(&format!("unexpected '{}'", c as char), i + 1));
                    }
                    i += 1;
                }
                out.push((
                    key,
                    text.get(value_start..i).unwrap_or_default().to_string(),
                ));
            }
        }
    }
    Ok(out)
}

/// `scope` of the tag endpoints: `Ok(None)` for all scopes.
fn parse_scope(scope: Option<&str>) -> Result<(Vec<TagScope>, bool), String> {
    Ok(match scope.unwrap_or("") {
        "" | "none" | "all" => (TagScope::ALL.to_vec(), true),
        "resource" => (vec![TagScope::Resource], false),
        "span" => (vec![TagScope::Span], false),
        "event" => (vec![TagScope::Event], false),
        "link" => (vec![TagScope::Link], false),
        "instrumentation" => (vec![TagScope::Instrumentation], false),
        "intrinsic" => (Vec::new(), true),
        other => return Err(format!("invalid scope: {other}")),
    })
}

/// `q` of the tag endpoints narrows the spans looked at; an invalid one is ignored, as Tempo
/// does.
fn tag_query(q: Option<&str>) -> Option<Query> {
    q.and_then(|q| compile_search(q).ok())
        .filter(|q| q.pipeline.elements.len() != 1 || q.to_string() != "{ true }")
}

fn parse_tags(params: &str, v2: bool, limits: &SearchLimits) -> Result<Call, Response> {
    let scope = param(params, "scope");
    parse_scope(scope.as_deref()).map_err(|e| bad(&e))?;
    let (start, end) = parse_start_end(params)?;
    let limit = parse_limit(params)?;
    let q = param(params, "q");
    tag_names_call(
        v2,
        scope.as_deref(),
        start,
        end,
        q.as_deref(),
        limit,
        limits,
    )
    .map_err(|e| bad(&e))
}

/// A tag-names call from its parameters (HTTP or `StreamingQuerier`). `limit`: names per
/// scope at most, 0 for no limit.
fn tag_names_call(
    v2: bool,
    scope: Option<&str>,
    start: i64,
    end: i64,
    q: Option<&str>,
    limit: usize,
    limits: &SearchLimits,
) -> Result<Call, String> {
    let (scopes, intrinsic) = parse_scope(scope)?;
    let (start_ns, end_ns) = checked_range(start, end, limits)?;
    // v1 lists attribute names only (intrinsics when asked for explicitly).
    let intrinsic = intrinsic && (v2 || scope == Some("intrinsic"));
    let job = (!scopes.is_empty()).then(|| {
        Arc::new(Job::TagNames {
            scopes: scopes.clone(),
            query: tag_query(q),
            start_ns,
            end_ns,
            bytes_max: limits.tag_bytes_max,
        })
    });
    Ok(Call::TagNames {
        v2,
        job,
        scopes,
        intrinsic,
        limit,
    })
}

/// `limit` of the tag endpoints: a positive integer; absent or 0 = no limit.
fn parse_limit(params: &str) -> Result<usize, Response> {
    match param(params, "limit") {
        None => Ok(0),
        Some(text) => {
            let limit = parse_atoi(&text, "limit")?;
            if limit < 0 {
                return Err(bad("invalid limit: must be a positive number"));
            }
            Ok(usize::try_from(limit).unwrap_or(usize::MAX))
        }
    }
}

/// A v2 tag name as TraceQL reads it (`resource.service.name`, `span.x`, `name`,
/// `span:status`); unscoped attributes are refused like Tempo refuses them.
pub fn parse_tag_name(tag: &str) -> Result<Field, String> {
    let invalid = || {
        format!(
            "please provide a valid tagName: tag name is not valid intrinsic or scoped attribute: {tag}"
        )
    };
    let query = traceql::parse(&format!("{{ {tag} }}")).map_err(|_| invalid())?;
    match query.pipeline.elements.as_slice() {
        [traceql::PipelineElement::Spanset(traceql::SpansetExpr::Filter(
            traceql::FieldExpr::Field(field),
        ))] if query.metrics.is_none() => match field {
            Field::Attribute(a) if a.scope == Scope::None || a.parent => Err(invalid()),
            other => Ok(other.clone()),
        },
        _ => Err(invalid()),
    }
}

fn parse_tag_values(
    params: &str,
    tag: &str,
    v2: bool,
    limits: &SearchLimits,
) -> Result<Call, Response> {
    let (start, end) = parse_start_end(params)?;
    let limit = parse_limit(params)?;
    let q = param(params, "q");
    tag_values_call(v2, tag, start, end, q.as_deref(), limit, limits).map_err(|e| match e {
        TagValuesError::Request(text) => bad(&text),
        // Tempo answers a bad v2 tag name with a 500.
        TagValuesError::TagName(text) => api::go_http_error_vary(500, &text),
    })
}

/// Why a tag-values request is refused.
enum TagValuesError {
    /// Its range.
    Request(String),
    /// A v2 tag name that is no intrinsic or scoped attribute.
    TagName(String),
}

/// A tag-values call from its parameters (HTTP or `StreamingQuerier`). `limit`: values at
/// most, 0 for no limit.
fn tag_values_call(
    v2: bool,
    tag: &str,
    start: i64,
    end: i64,
    q: Option<&str>,
    limit: usize,
    limits: &SearchLimits,
) -> Result<Call, TagValuesError> {
    let (start_ns, end_ns) = checked_range(start, end, limits).map_err(TagValuesError::Request)?;
    let field = if v2 {
        parse_tag_name(tag).map_err(TagValuesError::TagName)?
    } else {
        Field::Attribute(traceql::Attribute {
            scope: Scope::None,
            parent: false,
            name: tag.to_string(),
        })
    };
    use traceql::Intrinsic;
    let fixed: &'static [&'static str] = match &field {
        Field::Intrinsic(Intrinsic::Status) if v2 => STATUS_VALUES,
        Field::Intrinsic(Intrinsic::Kind) if v2 => KIND_VALUES,
        _ => &[],
    };
    let job = fixed.is_empty().then(|| {
        Arc::new(Job::TagValues {
            field,
            query: tag_query(q),
            start_ns,
            end_ns,
            bytes_max: limits.tag_bytes_max,
        })
    });
    Ok(Call::TagValues {
        v2,
        job,
        fixed,
        limit,
    })
}

/// `/api/metrics/query_range` and `/api/metrics/query`: Tempo's answers without a metrics
/// generator (its checks first: the query must compile and be a metrics query).
fn metrics_answer(params: &str) -> Response {
    let q = param(params, "q")
        .or_else(|| param(params, "query"))
        .unwrap_or_default();
    match traceql::compile(&q) {
        Err(e) => api::plain_vary(400, &format!("compiling query: {e}")),
        Ok(query) if !query.is_metrics() => api::plain_vary(400, "not a metrics query"),
        Ok(_) => api::plain_vary(
            500,
            "error finding generators in Querier.queryRangeRecent: empty ring\n",
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Running a call.

/// A query ran past its deadline (`querier.search.query_timeout`, or a shorter `grpc-timeout`):
/// `answered` of the shards had given their final answer. The shards still searching stop at
/// their next check, because the answer channel is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedOut {
    pub answered: u32,
}

/// Runs a call on every shard and calls `partial` with each shard's answer as it comes
/// (for streaming); returns the merged answer and how many shards answered, or [`TimedOut`]
/// when `timeout` passes first (a zero timeout has passed already, as in Tempo).
///
/// Tempo answers a query past its deadline with an error, not with partial results: its
/// querier fails the job with `context deadline exceeded` and the frontend's combiner takes a
/// failed job as the answer to the whole query (`modules/frontend/combiner/common.go`).
pub async fn run(
    engine: &Engine,
    tenant: &Tenant,
    job: &Arc<Job>,
    timeout: Duration,
    mut partial: impl FnMut(&ShardAnswer),
) -> Result<(ShardAnswer, u32), TimedOut> {
    let timed_out = |answered: u32| {
        log::warn!(
            "{}: {answered} of {} shards answered within {} (querier.search.query_timeout, \
             or a shorter grpc-timeout); answering {DEADLINE_EXCEEDED:?}, as Tempo does",
            job_name(job),
            engine.shards(),
            allegro_config::format_duration(timeout)
        );
        TimedOut { answered }
    };
    if timeout.is_zero() {
        return Err(timed_out(0));
    }
    let started = std::time::Instant::now();
    let mut deadline = std::pin::pin!(monoio::time::sleep(timeout));
    let receiver = monoio::select! {
        receiver = engine.search(tenant, job.clone()) => receiver,
        _ = &mut deadline => return Err(timed_out(0)),
    };
    let mut answers = Vec::new();
    loop {
        monoio::select! {
            answer = receiver.recv_async() => match answer {
                Ok(answer) => {
                    partial(&answer);
                    if !answer.partial {
                        answers.push(answer);
                    }
                }
                Err(_) => break,
            },
            _ = &mut deadline => {
                // Dropping `receiver` (on return) is what stops the shards.
                return Err(timed_out(answers.len() as u32));
            }
        }
    }
    // The shards run on the threads that serve connections: a shard busy past the deadline
    // can deliver its answer before the timer is polled. Past the deadline is past it.
    if started.elapsed() >= timeout {
        return Err(timed_out(answers.len() as u32));
    }
    let completed = answers.len() as u32;
    let merged = search::merge(job, answers);
    if let Some(err) = &merged.error {
        log::warn!("search: {err}");
    }
    if merged.truncated {
        // Tempo stops collecting at `max_bytes_per_tag_values_query` and answers 200 with what
        // it has, no marker in the response; its querier logs this.
        let (what, count, bytes_max) = match (&merged.found, &**job) {
            (Found::TagValues(values), Job::TagValues { bytes_max, .. }) => {
                ("tag values", values.len(), *bytes_max)
            }
            (Found::TagNames(names), Job::TagNames { bytes_max, .. }) => (
                "tag names",
                names.values().map(|n| n.len()).sum(),
                *bytes_max,
            ),
            _ => ("answer", 0, 0),
        };
        log::warn!(
            "{what}: size of {what} exceeded limit ({bytes_max} bytes, \
             max_bytes_per_tag_values_query), reduce cardinality or size of tags; answering \
             the {count} collected"
        );
    }
    Ok((merged, completed))
}

fn job_name(job: &Job) -> &'static str {
    match job {
        Job::Search(_) => "search",
        Job::TagNames { .. } => "tag names",
        Job::TagValues { .. } => "tag values",
    }
}

/// Answers an HTTP search call. Past `timeout`: 500 `context deadline exceeded`, as Tempo.
pub async fn answer_http(
    engine: &Engine,
    tenant: &Tenant,
    call: &Call,
    gzip: bool,
    timeout: Duration,
) -> Response {
    let deadline_exceeded = |_: TimedOut| api::go_http_error_vary(500, DEADLINE_EXCEEDED);
    let total = engine.shards() as u32;
    let body = match call {
        Call::Search { job, traceql } => {
            let (merged, completed) = match run(engine, tenant, job, timeout, |_| {}).await {
                Ok(done) => done,
                Err(timed_out) => return deadline_exceeded(timed_out),
            };
            search_json(
                &search_response(&merged, *traceql, completed, total),
                *traceql,
            )
        }
        Call::TagNames { .. } | Call::TagValues { .. } => {
            let merged = match job_of(call) {
                Some(job) => match run(engine, tenant, job, timeout, |_| {}).await {
                    Ok((merged, _)) => Some(merged),
                    Err(timed_out) => return deadline_exceeded(timed_out),
                },
                None => None,
            };
            match call {
                Call::TagNames { v2: false, .. } => tags_v1_json(&tags_v1(call, merged.as_ref())),
                Call::TagNames { v2: true, .. } => tags_v2_json(&tags_v2(call, merged.as_ref())),
                Call::TagValues { v2: false, .. } => {
                    values_v1_json(&values_v1(call, merged.as_ref()))
                }
                _ => values_v2_json(&values_v2(call, merged.as_ref())),
            }
        }
    };
    let mut response = api::json_response(body);
    if gzip {
        api::gzip(&mut response);
    }
    response
}

fn job_of(call: &Call) -> Option<&Arc<Job>> {
    match call {
        Call::Search { job, .. } => Some(job),
        Call::TagNames { job, .. } | Call::TagValues { job, .. } => job.as_ref(),
    }
}

// ---------------------------------------------------------------------------------------
// gRPC: `tempopb.StreamingQuerier`.

pub const STREAMING_SERVICE: &str = "tempopb.StreamingQuerier";

/// Parses a `StreamingQuerier` request message into a call.
pub fn grpc_call(method: &str, message: &[u8], limits: &SearchLimits) -> Result<Call, Status> {
    use prost::Message;
    let invalid = |e: String| Status::new(Code::InvalidArgument, e);
    let decode_error =
        |e: prost::DecodeError| invalid(format!("grpc: error unmarshalling request: {e}"));
    match method {
        "Search" => {
            let r = tempopb::SearchRequest::decode(message).map_err(decode_error)?;
            let mut tags: Vec<(String, String)> = r.tags.into_iter().collect();
            tags.sort();
            let request = SearchParams {
                query: (!r.query.is_empty()).then_some(r.query.as_str()),
                tags,
                start: i64::from(r.start),
                end: i64::from(r.end),
                min_ms: u64::from(r.min_duration_ms),
                max_ms: u64::from(r.max_duration_ms),
                limit: r.limit as usize,
                spss: r.spans_per_span_set as usize,
            };
            search_call(request, limits).map_err(invalid)
        }
        "SearchTags" | "SearchTagsV2" => {
            let r = tempopb::SearchTagsRequest::decode(message).map_err(decode_error)?;
            tag_names_call(
                method == "SearchTagsV2",
                (!r.scope.is_empty()).then_some(r.scope.as_str()),
                i64::from(r.start),
                i64::from(r.end),
                (!r.query.is_empty()).then_some(r.query.as_str()),
                r.max_tags_per_scope as usize,
                limits,
            )
            .map_err(invalid)
        }
        "SearchTagValues" | "SearchTagValuesV2" => {
            let r = tempopb::SearchTagValuesRequest::decode(message).map_err(decode_error)?;
            tag_values_call(
                method == "SearchTagValuesV2",
                &r.tag_name,
                i64::from(r.start),
                i64::from(r.end),
                (!r.query.is_empty()).then_some(r.query.as_str()),
                r.max_tag_values as usize,
                limits,
            )
            .map_err(|e| match e {
                TagValuesError::Request(text) | TagValuesError::TagName(text) => invalid(text),
            })
        }
        "MetricsQueryRange" | "MetricsQueryInstant" => {
            let query = if method == "MetricsQueryRange" {
                tempopb::QueryRangeRequest::decode(message)
                    .map_err(decode_error)?
                    .query
            } else {
                tempopb::QueryInstantRequest::decode(message)
                    .map_err(decode_error)?
                    .query
            };
            Err(metrics_status(&query))
        }
        other => Err(Status::new(
            Code::Unimplemented,
            format!("unknown method {other} for service {STREAMING_SERVICE}"),
        )),
    }
}

/// The TraceQL metrics methods without a metrics generator: Tempo's checks first (the query
/// must compile and be a metrics query: `InvalidArgument`), then its answer with an empty
/// generator ring (grpc capture 07: `Internal`).
fn metrics_status(query: &str) -> Status {
    match traceql::compile(query) {
        Err(e) => Status::new(Code::InvalidArgument, format!("compiling query: {e}")),
        Ok(query) if !query.is_metrics() => {
            Status::new(Code::InvalidArgument, "not a metrics query")
        }
        Ok(_) => Status::new(
            Code::Internal,
            "error finding generators in Querier.queryRangeRecent: empty ring",
        ),
    }
}

/// Runs a streaming call: `emit` gets each encoded response message: the new results of a
/// shard as it gets through its blocks and as it finishes, then a final one with everything
/// and the metrics. Past `timeout` the messages sent so far stand and [`TimedOut`] is returned
/// (the caller ends the stream with an error status, as Tempo's frontend does).
pub async fn stream(
    engine: &Engine,
    tenant: &Tenant,
    call: &Call,
    timeout: Duration,
    mut emit: impl FnMut(Vec<u8>),
) -> Result<(), TimedOut> {
    use prost::Message;
    let total = engine.shards() as u32;
    match call {
        Call::Search { job, traceql } => {
            let mut sent: HashSet<allegro_engine::TraceId> = HashSet::new();
            let mut completed = 0u32;
            let (merged, answered) = run(engine, tenant, job, timeout, |answer| {
                if !answer.partial {
                    completed += 1;
                }
                let mut part = answer.clone();
                if let Found::Traces(traces) = &mut part.found {
                    traces.retain(|t| sent.insert(t.trace_id));
                    if answer.partial && traces.is_empty() {
                        return;
                    }
                }
                emit(search_response(&part, *traceql, completed, total).encode_to_vec());
            })
            .await?;
            emit(search_response(&merged, *traceql, answered, total).encode_to_vec());
        }
        _ => {
            let merged = match job_of(call) {
                Some(job) => {
                    let (merged, _) = run(engine, tenant, job, timeout, |answer| {
                        emit(metadata_message(call, Some(answer)));
                    })
                    .await?;
                    Some(merged)
                }
                None => None,
            };
            emit(metadata_message(call, merged.as_ref()));
        }
    }
    Ok(())
}

fn metadata_message(call: &Call, answer: Option<&ShardAnswer>) -> Vec<u8> {
    use prost::Message;
    match call {
        Call::TagNames { v2: false, .. } => tags_v1(call, answer).encode_to_vec(),
        Call::TagNames { v2: true, .. } => tags_v2(call, answer).encode_to_vec(),
        Call::TagValues { v2: false, .. } => values_v1(call, answer).encode_to_vec(),
        _ => values_v2(call, answer).encode_to_vec(),
    }
}

// ---------------------------------------------------------------------------------------
// Answers as tempopb messages.

/// Tempo's `util.TraceIDToHexString`: hex without leading zeros.
pub fn trace_id_hex(id: &allegro_engine::TraceId) -> String {
    let hex = id.to_hex();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_string()
    } else {
        trimmed.to_string()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key_value(key: &str, value: &Value) -> KeyValue {
    let v = match value {
        Value::Int(i) => any_value::Value::IntValue(*i),
        Value::Float(f) => any_value::Value::DoubleValue(*f),
        Value::Bool(b) => any_value::Value::BoolValue(*b),
        other => any_value::Value::StringValue(other.to_text()),
    };
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn metadata(t: &TraceMatch) -> tempopb::TraceSearchMetadata {
    let span_sets: Vec<tempopb::SpanSet> = t
        .spansets
        .iter()
        .map(|ss| tempopb::SpanSet {
            spans: ss
                .spans
                .iter()
                .map(|s| tempopb::Span {
                    span_id: hex(&s.span_id),
                    name: s.name.clone().unwrap_or_default(),
                    start_time_unix_nano: s.start_ns,
                    duration_nanos: s.duration_ns,
                    attributes: s.attributes.iter().map(|(k, v)| key_value(k, v)).collect(),
                })
                .collect(),
            matched: ss.matched,
            attributes: ss.attributes.iter().map(|(k, v)| key_value(k, v)).collect(),
        })
        .collect();
    let service_stats = if t.spansets.is_empty() {
        BTreeMap::new()
    } else {
        t.service_stats
            .iter()
            .map(|(name, &(spans, errors))| {
                (
                    name.clone(),
                    tempopb::ServiceStats {
                        span_count: spans,
                        error_count: errors,
                    },
                )
            })
            .collect()
    };
    tempopb::TraceSearchMetadata {
        trace_id: trace_id_hex(&t.trace_id),
        root_service_name: t.root_service_name.clone(),
        root_trace_name: t.root_trace_name.clone(),
        start_time_unix_nano: t.start_ns,
        duration_ms: t.duration_ms,
        span_set: span_sets.first().cloned(),
        span_sets,
        service_stats,
    }
}

pub fn search_response(
    answer: &ShardAnswer,
    traceql: bool,
    completed: u32,
    total: u32,
) -> tempopb::SearchResponse {
    let traces = match &answer.found {
        Found::Traces(traces) => traces.iter().map(metadata).collect(),
        _ => Vec::new(),
    };
    tempopb::SearchResponse {
        traces,
        metrics: Some(tempopb::SearchMetrics {
            inspected_traces: if traceql {
                0
            } else {
                u32::try_from(answer.inspected_traces).unwrap_or(u32::MAX)
            },
            inspected_bytes: answer.inspected_bytes,
            total_blocks: answer.blocks,
            completed_jobs: completed,
            total_jobs: total,
            total_block_bytes: 0,
            inspected_spans: 0,
        }),
    }
}

fn metadata_metrics(answer: Option<&ShardAnswer>) -> Option<tempopb::MetadataMetrics> {
    Some(tempopb::MetadataMetrics {
        inspected_bytes: answer.map_or(0, |a| a.inspected_bytes),
        ..Default::default()
    })
}

fn tags_v1(call: &Call, answer: Option<&ShardAnswer>) -> tempopb::SearchTagsResponse {
    let Call::TagNames {
        intrinsic, limit, ..
    } = call
    else {
        return tempopb::SearchTagsResponse::default();
    };
    let mut names: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    if let Some(ShardAnswer {
        found: Found::TagNames(scopes),
        ..
    }) = answer
    {
        for set in scopes.values() {
            names.extend(set.iter().cloned());
        }
    }
    if *intrinsic {
        names.extend(INTRINSIC_TAGS.iter().map(|s| s.to_string()));
    }
    tempopb::SearchTagsResponse {
        tag_names: names.into_iter().take(at_most(*limit)).collect(),
        metrics: metadata_metrics(answer),
    }
}

fn tags_v2(call: &Call, answer: Option<&ShardAnswer>) -> tempopb::SearchTagsV2Response {
    let Call::TagNames {
        scopes: asked,
        intrinsic,
        limit,
        ..
    } = call
    else {
        return tempopb::SearchTagsV2Response::default();
    };
    let found = match answer {
        Some(ShardAnswer {
            found: Found::TagNames(found),
            ..
        }) => Some(found),
        _ => None,
    };
    let mut scopes = Vec::new();
    for scope in asked {
        let tags: Vec<String> = found
            .and_then(|f| f.get(scope))
            .map(|set| set.iter().take(at_most(*limit)).cloned().collect())
            .unwrap_or_default();
        if tags.is_empty() && asked.len() > 1 {
            continue;
        }
        scopes.push(tempopb::SearchTagsV2Scope {
            name: scope.as_str().to_string(),
            tags,
        });
    }
    if *intrinsic {
        scopes.push(tempopb::SearchTagsV2Scope {
            name: "intrinsic".to_string(),
            tags: INTRINSIC_TAGS.iter().map(|s| s.to_string()).collect(),
        });
    }
    tempopb::SearchTagsV2Response {
        scopes,
        metrics: metadata_metrics(answer),
    }
}

/// A `limit` of 0 means none.
fn at_most(limit: usize) -> usize {
    if limit == 0 {
        usize::MAX
    } else {
        limit
    }
}

fn found_values(answer: Option<&ShardAnswer>) -> &[Value] {
    match answer {
        Some(ShardAnswer {
            found: Found::TagValues(values),
            ..
        }) => values,
        _ => &[],
    }
}

fn values_v1(call: &Call, answer: Option<&ShardAnswer>) -> tempopb::SearchTagValuesResponse {
    let mut values: Vec<String> = found_values(answer).iter().map(Value::to_text).collect();
    values.sort();
    values.dedup();
    if let Call::TagValues { limit, .. } = call {
        values.truncate(at_most(*limit));
    }
    tempopb::SearchTagValuesResponse {
        tag_values: values,
        metrics: metadata_metrics(answer),
    }
}

fn values_v2(call: &Call, answer: Option<&ShardAnswer>) -> tempopb::SearchTagValuesV2Response {
    let (fixed, limit) = match call {
        Call::TagValues { fixed, limit, .. } => (*fixed, *limit),
        _ => (&[][..], 0),
    };
    let tag_values = if fixed.is_empty() {
        found_values(answer)
            .iter()
            .take(at_most(limit))
            .map(|v| tempopb::TagValue {
                r#type: v.type_name().to_string(),
                value: v.to_text(),
            })
            .collect()
    } else {
        fixed
            .iter()
            .map(|v| tempopb::TagValue {
                r#type: "keyword".to_string(),
                value: v.to_string(),
            })
            .collect()
    };
    tempopb::SearchTagValuesV2Response {
        tag_values,
        metrics: if answer.is_some() {
            metadata_metrics(answer)
        } else {
            Some(tempopb::MetadataMetrics::default())
        },
    }
}

// ---------------------------------------------------------------------------------------
// JSON, as Tempo's frontend writes it (jsonpb: zero values omitted, 64-bit integers as
// strings, original field names).

struct Json {
    out: String,
    first: Vec<bool>,
}

impl Json {
    fn new() -> Json {
        Json {
            out: String::with_capacity(4096),
            first: Vec::new(),
        }
    }
    fn open(&mut self, c: char) {
        self.out.push(c);
        self.first.push(true);
    }
    fn close(&mut self, c: char) {
        self.out.push(c);
        self.first.pop();
    }
    fn comma(&mut self) {
        if let Some(first) = self.first.last_mut() {
            if !*first {
                self.out.push(',');
            }
            *first = false;
        }
    }
    fn key(&mut self, key: &str) {
        self.comma();
        write_go_string(&mut self.out, key);
        self.out.push(':');
    }
    fn str_field(&mut self, key: &str, value: &str) {
        if !value.is_empty() {
            self.key(key);
            write_go_string(&mut self.out, value);
        }
    }
    fn u64_string_field(&mut self, key: &str, value: u64) {
        if value != 0 {
            self.key(key);
            self.out.push('"');
            self.out.push_str(&value.to_string());
            self.out.push('"');
        }
    }
    fn u32_field(&mut self, key: &str, value: u32) {
        if value != 0 {
            self.key(key);
            self.out.push_str(&value.to_string());
        }
    }
    fn string_item(&mut self, value: &str) {
        self.comma();
        write_go_string(&mut self.out, value);
    }
    fn key_values(&mut self, key: &str, kvs: &[KeyValue]) {
        if kvs.is_empty() {
            return;
        }
        self.key(key);
        self.open('[');
        for kv in kvs {
            self.comma();
            self.open('{');
            self.str_field("key", &kv.key);
            self.key("value");
            self.open('{');
            match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => {
                    self.key("stringValue");
                    write_go_string(&mut self.out, s);
                }
                Some(any_value::Value::IntValue(i)) => {
                    self.key("intValue");
                    self.out.push_str(&format!("\"{i}\""));
                }
                Some(any_value::Value::DoubleValue(f)) => {
                    self.key("doubleValue");
                    write_go_double(&mut self.out, *f);
                }
                Some(any_value::Value::BoolValue(b)) => {
                    self.key("boolValue");
                    self.out.push_str(if *b { "true" } else { "false" });
                }
                _ => {}
            }
            self.close('}');
            self.close('}');
        }
        self.close(']');
    }
    fn span_set(&mut self, ss: &tempopb::SpanSet) {
        self.open('{');
        if !ss.spans.is_empty() {
            self.key("spans");
            self.open('[');
            for s in &ss.spans {
                self.comma();
                self.open('{');
                self.str_field("spanID", &s.span_id);
                self.str_field("name", &s.name);
                self.u64_string_field("startTimeUnixNano", s.start_time_unix_nano);
                self.u64_string_field("durationNanos", s.duration_nanos);
                self.key_values("attributes", &s.attributes);
                self.close('}');
            }
            self.close(']');
        }
        self.u32_field("matched", ss.matched);
        self.key_values("attributes", &ss.attributes);
        self.close('}');
    }
    fn metadata_metrics(&mut self, m: Option<&tempopb::MetadataMetrics>) {
        self.key("metrics");
        self.open('{');
        if let Some(m) = m {
            self.u64_string_field("inspectedBytes", m.inspected_bytes);
            self.u32_field("totalJobs", m.total_jobs);
            self.u32_field("completedJobs", m.completed_jobs);
            self.u32_field("totalBlocks", m.total_blocks);
            self.u64_string_field("totalBlockBytes", m.total_block_bytes);
        }
        self.close('}');
    }
    fn finish(self) -> Vec<u8> {
        self.out.into_bytes()
    }
}

/// `{"traces":[...],"metrics":{...}}`.
pub fn search_json(r: &tempopb::SearchResponse, _traceql: bool) -> Vec<u8> {
    let mut j = Json::new();
    j.open('{');
    j.key("traces");
    j.open('[');
    for t in &r.traces {
        j.comma();
        j.open('{');
        j.str_field("traceID", &t.trace_id);
        j.str_field("rootServiceName", &t.root_service_name);
        j.str_field("rootTraceName", &t.root_trace_name);
        j.u64_string_field("startTimeUnixNano", t.start_time_unix_nano);
        j.u32_field("durationMs", t.duration_ms);
        if let Some(ss) = &t.span_set {
            j.key("spanSet");
            j.span_set(ss);
        }
        if !t.span_sets.is_empty() {
            j.key("spanSets");
            j.open('[');
            for ss in &t.span_sets {
                j.comma();
                j.span_set(ss);
            }
            j.close(']');
        }
        if !t.service_stats.is_empty() {
            j.key("serviceStats");
            j.open('{');
            for (name, stats) in &t.service_stats {
                j.key(name);
                j.open('{');
                j.u32_field("spanCount", stats.span_count);
                j.u32_field("errorCount", stats.error_count);
                j.close('}');
            }
            j.close('}');
        }
        j.close('}');
    }
    j.close(']');
    j.key("metrics");
    j.open('{');
    if let Some(m) = &r.metrics {
        j.u32_field("inspectedTraces", m.inspected_traces);
        j.u64_string_field("inspectedBytes", m.inspected_bytes);
        j.u32_field("totalBlocks", m.total_blocks);
        j.u32_field("completedJobs", m.completed_jobs);
        j.u32_field("totalJobs", m.total_jobs);
        j.u64_string_field("totalBlockBytes", m.total_block_bytes);
        j.u64_string_field("inspectedSpans", m.inspected_spans);
    }
    j.close('}');
    j.close('}');
    j.finish()
}

fn tags_v1_json(r: &tempopb::SearchTagsResponse) -> Vec<u8> {
    string_list_json("tagNames", &r.tag_names, r.metrics.as_ref())
}

/// `{"<key>":["a","b"],"metrics":{...}}`: the v1 tag-names and tag-values answers.
fn string_list_json(
    key: &str,
    items: &[String],
    metrics: Option<&tempopb::MetadataMetrics>,
) -> Vec<u8> {
    let mut j = Json::new();
    j.open('{');
    j.key(key);
    j.open('[');
    for item in items {
        j.string_item(item);
    }
    j.close(']');
    j.metadata_metrics(metrics);
    j.close('}');
    j.finish()
}

fn tags_v2_json(r: &tempopb::SearchTagsV2Response) -> Vec<u8> {
    let mut j = Json::new();
    j.open('{');
    j.key("scopes");
    j.open('[');
    for s in &r.scopes {
        j.comma();
        j.open('{');
        j.str_field("name", &s.name);
        if !s.tags.is_empty() {
            j.key("tags");
            j.open('[');
            for t in &s.tags {
                j.string_item(t);
            }
            j.close(']');
        }
        j.close('}');
    }
    j.close(']');
    j.metadata_metrics(r.metrics.as_ref());
    j.close('}');
    j.finish()
}

fn values_v1_json(r: &tempopb::SearchTagValuesResponse) -> Vec<u8> {
    string_list_json("tagValues", &r.tag_values, r.metrics.as_ref())
}

fn values_v2_json(r: &tempopb::SearchTagValuesV2Response) -> Vec<u8> {
    let mut j = Json::new();
    j.open('{');
    j.key("tagValues");
    j.open('[');
    for v in &r.tag_values {
        j.comma();
        j.open('{');
        j.str_field("type", &v.r#type);
        j.str_field("value", &v.value);
        j.close('}');
    }
    j.close(']');
    j.metadata_metrics(r.metrics.as_ref());
    j.close('}');
    j.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(target: &str) -> Request {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Request {
            method: "GET".to_string(),
            path: path.to_string(),
            query: query.to_string(),
            ..Request::default()
        }
    }

    fn error_of(target: &str) -> (u16, String) {
        match api::route(&req(target), &SearchLimits::default()) {
            Route::Immediate(r) => (r.status, String::from_utf8_lossy(&r.body).into_owned()),
            other => panic!("{target}: {other:?}"),
        }
    }

    #[test]
    fn search_parameter_errors_like_tempo() {
        let cases: &[(&str, u16, &str)] = &[
            (
                "/api/search?q=%7B%20span.http.method%20%3D%20%7D&start=1795462798&end=1795466458",
                400,
                "invalid TraceQL query: parse error at line 1, col 22: syntax error: unexpected }",
            ),
            (
                "/api/search?q=not%20traceql&start=1795462798&end=1795466458",
                400,
                "invalid TraceQL query: parse error at line 1, col 1: syntax error: unexpected IDENTIFIER",
            ),
            (
                "/api/search?q=%7B%7D&start=1795466458&end=1795462798",
                400,
                "http parameter start must be before end. received start=1795466458 end=1795462798",
            ),
            (
                "/api/search?q=%7B%7D&limit=abc",
                400,
                "invalid limit: strconv.Atoi: parsing \"abc\": invalid syntax",
            ),
            (
                "/api/search?tags=service.name%3D%22unterminated",
                400,
                "invalid tags: unterminated quoted value at pos 27",
            ),
            ("/api/v2/search/tags?scope=bogus", 400, "invalid scope: bogus"),
            (
                "/api/v2/search/tag/service.name/values",
                500,
                "please provide a valid tagName: tag name is not valid intrinsic or scoped attribute: service.name\n",
            ),
            (
                "/api/metrics/query_range?q=%7B%7D&start=1795462798&end=1795466458&step=60s",
                400,
                "not a metrics query",
            ),
            (
                "/api/metrics/query_range?q=%7B%20.foo%20%3D%20%7D&start=1795462798&end=1795466458",
                400,
                "compiling query: parse error at line 1, col 10: syntax error: unexpected }",
            ),
            (
                "/api/metrics/query_range?q=%7B%7D%20%7C%20rate%28%29&start=1795462798&end=1795466458&step=60s",
                500,
                "error finding generators in Querier.queryRangeRecent: empty ring\n",
            ),
            ("/api/search?q=%7B%7D&spss=0", 400, "invalid spss: must be a positive number"),
            ("/api/search?q=%7B%7D&tags=a%3Db", 400, "invalid request: can't specify tags and q in the same query"),
        ];
        for (target, status, text) in cases {
            assert_eq!(error_of(target), (*status, text.to_string()), "{target}");
        }
    }

    #[test]
    fn search_parameters() {
        let Route::Search(Call::Search { job, traceql }) = api::route(&req(
            "/api/search?tags=service.name%3Dfrontend%20http.status_code%3D500&minDuration=100ms&maxDuration=5s&limit=3&start=100&end=200",
        ), &SearchLimits::default()) else {
            panic!("a search")
        };
        assert!(!traceql);
        let Job::Search(r) = &*job else { panic!() };
        assert_eq!(
            r.tags,
            vec![
                ("service.name".to_string(), "frontend".to_string()),
                ("http.status_code".to_string(), "500".to_string())
            ]
        );
        assert_eq!(
            (r.min_duration_ns, r.max_duration_ns),
            (100_000_000, 5_000_000_000)
        );
        assert_eq!(r.limit, 3);
        assert_eq!((r.start_ns, r.end_ns), (100_000_000_000, 201_000_000_000));
        let Route::Search(Call::Search { job, traceql }) =
            api::route(&req("/api/search"), &SearchLimits::default())
        else {
            panic!()
        };
        assert!(!traceql);
        let Job::Search(r) = &*job else { panic!() };
        assert_eq!((r.limit, r.spans_per_spanset, r.end_ns), (20, 3, u64::MAX));
    }

    #[test]
    fn tag_names() {
        assert_eq!(
            parse_tag_name("resource.service.name").map(|f| f.to_string()),
            Ok("resource.service.name".to_string())
        );
        assert_eq!(
            parse_tag_name("span:status").map(|f| f.to_string()),
            Ok("status".to_string())
        );
        assert!(parse_tag_name("service.name").is_err());
        assert!(parse_tag_name(".service.name").is_err());
    }

    #[test]
    fn logfmt() {
        assert_eq!(
            parse_logfmt("a=1 b=\"x y\" c"),
            Ok(vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "x y".to_string()),
                ("c".to_string(), String::new())
            ])
        );
    }

    fn capture_body(name: &str) -> String {
        String::from_utf8(crate::api::captures::load(name).body).expect("utf-8")
    }

    fn kv_int(key: &str, value: i64) -> KeyValue {
        key_value(key, &Value::Int(value))
    }

    /// The first trace of capture 15 (`{} | count() > 3`), rebuilt and rendered, is in the
    /// capture byte for byte; so are the metrics of capture 12.
    #[test]
    fn golden_search_json() {
        let span = |id: &str, start: u64, duration: u64| tempopb::Span {
            span_id: id.to_string(),
            start_time_unix_nano: start,
            duration_nanos: duration,
            ..Default::default()
        };
        let span_set = tempopb::SpanSet {
            spans: vec![
                span("e678dd5c3fc11c6c", 1795466339333628436, 3000000),
                span("5959660ecc7107b0", 1795466339322628436, 9000000),
                span("d5b8d40589f96e1e", 1795466339320628436, 185000000),
            ],
            matched: 4,
            attributes: vec![kv_int("count()", 4)],
        };
        let stats = |spans: u32, errors: u32| tempopb::ServiceStats {
            span_count: spans,
            error_count: errors,
        };
        let trace = tempopb::TraceSearchMetadata {
            trace_id: "c48fd6b8bad374a9561d0ceeb94addc".to_string(),
            root_service_name: "frontend".to_string(),
            root_trace_name: "GET /api/orders/{id}".to_string(),
            start_time_unix_nano: 1795466339318628436,
            duration_ms: 188,
            span_set: Some(span_set.clone()),
            span_sets: vec![span_set],
            service_stats: [
                ("checkout".to_string(), stats(2, 0)),
                ("frontend".to_string(), stats(1, 1)),
                ("payments".to_string(), stats(1, 1)),
            ]
            .into_iter()
            .collect(),
        };
        let rendered = String::from_utf8(search_json(
            &tempopb::SearchResponse {
                traces: vec![trace],
                metrics: None,
            },
            true,
        ))
        .expect("utf-8");
        let one = rendered
            .strip_prefix("{\"traces\":[")
            .and_then(|r| r.strip_suffix("],\"metrics\":{}}"))
            .expect("one trace");
        let captured = capture_body("15_search_traceql_count_agg.txt");
        assert!(
            captured.starts_with(&format!("{{\"traces\":[{one},")),
            "{one}"
        );

        let metrics = String::from_utf8(search_json(
            &tempopb::SearchResponse {
                traces: Vec::new(),
                metrics: Some(tempopb::SearchMetrics {
                    inspected_bytes: 26217,
                    completed_jobs: 3,
                    total_jobs: 3,
                    ..Default::default()
                }),
            },
            true,
        ))
        .expect("utf-8");
        let metrics = metrics.strip_prefix("{\"traces\":[],").expect("prefix");
        assert!(capture_body("12_search_traceql_empty_braces.txt").ends_with(metrics));
    }

    /// Captures 23 and 31, rebuilt and rendered: byte for byte.
    #[test]
    fn golden_tags_json() {
        let scope = |name: &str, tags: &[&str]| tempopb::SearchTagsV2Scope {
            name: name.to_string(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        };
        let response = tempopb::SearchTagsV2Response {
            scopes: vec![
                scope(
                    "resource",
                    &[
                        "deployment.environment",
                        "service.instance.id",
                        "service.name",
                        "service.namespace",
                        "telemetry.sdk.language",
                        "telemetry.sdk.name",
                        "telemetry.sdk.version",
                    ],
                ),
                scope(
                    "span",
                    &[
                        "cache.hit",
                        "db.statement",
                        "db.system",
                        "http.method",
                        "http.route",
                        "http.status_code",
                        "order.id",
                        "order.items",
                        "payment.provider",
                    ],
                ),
                scope(
                    "event",
                    &["cache.key", "exception.message", "exception.type"],
                ),
                scope("intrinsic", INTRINSIC_TAGS),
            ],
            metrics: Some(tempopb::MetadataMetrics {
                inspected_bytes: 20931,
                ..Default::default()
            }),
        };
        assert_eq!(
            String::from_utf8(tags_v2_json(&response)).expect("utf-8"),
            capture_body("23_search_tags_v2_all.txt")
        );
        let values = tempopb::SearchTagValuesV2Response {
            tag_values: ["payments", "frontend"]
                .iter()
                .map(|v| tempopb::TagValue {
                    r#type: "string".to_string(),
                    value: v.to_string(),
                })
                .collect(),
            metrics: Some(tempopb::MetadataMetrics {
                inspected_bytes: 18297,
                ..Default::default()
            }),
        };
        assert_eq!(
            String::from_utf8(values_v2_json(&values)).expect("utf-8"),
            capture_body("31_tag_values_v2_resource_service_name.txt")
        );
        let static_status = values_v2(
            &Call::TagValues {
                v2: true,
                job: None,
                fixed: STATUS_VALUES,
                limit: 0,
            },
            None,
        );
        assert_eq!(
            String::from_utf8(values_v2_json(&static_status)).expect("utf-8"),
            capture_body("34_tag_values_v2_intrinsic_status.txt")
        );
    }

    /// `StreamingQuerier` requests at Tempo 2.7's field numbers reach the same calls as the
    /// HTTP parameters; the metrics methods answer as Tempo does without a generator.
    #[test]
    fn grpc_calls() {
        use prost::Message;
        let tags = tempopb::SearchTagsRequest {
            scope: "span".to_string(),
            query: "{ span.http.method = \"GET\" }".to_string(),
            start: 100,
            end: 200,
            max_tags_per_scope: 7,
            stale_values_threshold: 0,
        };
        let Ok(Call::TagNames {
            v2: true,
            job: Some(job),
            scopes,
            limit: 7,
            ..
        }) = grpc_call(
            "SearchTagsV2",
            &tags.encode_to_vec(),
            &SearchLimits::default(),
        )
        else {
            panic!("a v2 tag-names call")
        };
        assert_eq!(scopes, vec![TagScope::Span]);
        let Job::TagNames {
            query: Some(query),
            start_ns,
            end_ns,
            ..
        } = &*job
        else {
            panic!("{job:?}")
        };
        assert_eq!(query.to_string(), "{ span.http.method = `GET` }");
        assert_eq!((*start_ns, *end_ns), (100_000_000_000, 201_000_000_000));

        let range = |q: &str| tempopb::QueryRangeRequest {
            query: q.to_string(),
            ..Default::default()
        };
        let status = |method: &str, q: &str| {
            let bytes = if method == "MetricsQueryRange" {
                range(q).encode_to_vec()
            } else {
                tempopb::QueryInstantRequest {
                    query: q.to_string(),
                    ..Default::default()
                }
                .encode_to_vec()
            };
            match grpc_call(method, &bytes, &SearchLimits::default()) {
                Err(status) => (status.code, status.message),
                Ok(call) => panic!("{call:?}"),
            }
        };
        for method in ["MetricsQueryRange", "MetricsQueryInstant"] {
            assert_eq!(
                status(method, "{} | rate()"),
                (
                    Code::Internal,
                    "error finding generators in Querier.queryRangeRecent: empty ring".to_string()
                )
            );
            assert_eq!(
                status(method, "{}"),
                (Code::InvalidArgument, "not a metrics query".to_string())
            );
            assert_eq!(
                status(method, "{ .foo = }"),
                (
                    Code::InvalidArgument,
                    "compiling query: parse error at line 1, col 10: syntax error: unexpected }"
                        .to_string()
                )
            );
        }
        assert_eq!(
            grpc_call("Nope", &[], &SearchLimits::default()).map_err(|s| (s.code, s.message)),
            Err((
                Code::Unimplemented,
                "unknown method Nope for service tempopb.StreamingQuerier".to_string()
            ))
        );
    }

    #[test]
    fn trace_ids_lose_leading_zeros() {
        let mut id = [0u8; 16];
        id[0] = 0x0c;
        id[15] = 1;
        assert_eq!(
            trace_id_hex(&allegro_engine::TraceId(id)),
            "c000000000000000000000000000001"
        );
    }
}

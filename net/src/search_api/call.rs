//! A valid search-side call ([`Call`]) from the parameters either transport gives (HTTP
//! query strings or `StreamingQuerier` messages), checked against the frontend's limits
//! ([`SearchLimits`]) in Tempo's order with Tempo's texts.

use std::sync::Arc;

use allegro_engine::search::{self, Job, SearchRequest, TagScope, SPANS_PER_SPANSET_DEFAULT};
use allegro_engine::traceql::{self, Field, Query, Scope};

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

pub(super) const STATUS_VALUES: &[&str] = &["unset", "ok", "error"];
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

/// A search as both transports give it: `limit` and `spss` 0 when absent.
pub(super) struct SearchParams<'q> {
    pub(super) query: Option<&'q str>,
    pub(super) tags: Vec<(String, String)>,
    pub(super) start: i64,
    pub(super) end: i64,
    pub(super) min_ms: u64,
    pub(super) max_ms: u64,
    pub(super) limit: usize,
    pub(super) spss: usize,
}

/// A search call from its parameters (HTTP or `StreamingQuerier`), with the frontend's checks
/// in Tempo's order: the range's order, the query, the limit, the range's width, spss.
pub(super) fn search_call(r: SearchParams<'_>, limits: &SearchLimits) -> Result<Call, String> {
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

/// `scope` of the tag endpoints: `Ok(None)` for all scopes.
pub(super) fn parse_scope(scope: Option<&str>) -> Result<(Vec<TagScope>, bool), String> {
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

/// A tag-names call from its parameters (HTTP or `StreamingQuerier`). `limit`: names per
/// scope at most, 0 for no limit.
pub(super) fn tag_names_call(
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

/// Why a tag-values request is refused.
pub(super) enum TagValuesError {
    /// Its range.
    Request(String),
    /// A v2 tag name that is no intrinsic or scoped attribute.
    TagName(String),
}

/// A tag-values call from its parameters (HTTP or `StreamingQuerier`). `limit`: values at
/// most, 0 for no limit.
pub(super) fn tag_values_call(
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

/// The engine job of a call; `None` when the answer needs none.
pub(super) fn job_of(call: &Call) -> Option<&Arc<Job>> {
    match call {
        Call::Search { job, .. } => Some(job),
        Call::TagNames { job, .. } | Call::TagValues { job, .. } => job.as_ref(),
    }
}

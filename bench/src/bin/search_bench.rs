//! `search_bench`: the end-to-end search benchmark of issue #5 item 7 (driven by
//! `bench/search_e2e.sh`).
//!
//! ```text
//! search_bench needles --endpoint HOST:PORT --count N --spread-secs S --record FILE
//!                      [--negatives N] [--seed N] [--tenant ID]
//! search_bench queries --http HOST:PORT --record FILE [--runs R] [--warmup W]
//!                      [--limit N] [--default-limit N] [--start UNIX_S] [--end UNIX_S]
//!                      [--stored-spans N] [--cores N] [--tenant ID] [--timeout DUR]
//! ```
//!
//! `needles` sends "needle" traces over OTLP gRPC, one Export each, spread evenly over S
//! seconds while a background `loadgen` runs, and records every acknowledged one as
//! `<32 hex trace id> <category>`. Each category is built so that the three queries have a
//! known answer ([`QUERIES`], [`Category::spans`]):
//!
//! | category | shape | Q1 | Q2 | Q3 |
//! |---|---|---|---|---|
//! | `E` | service `x`: root, an ERROR child with `http.status_code` 503 (the only code >= 500) | yes | no | no |
//! | `C` | service `x-http`: codes 500, 502, 503 (int), no ERROR | no | yes | no |
//! | `S` | root in `x`, an ERROR child in `x-db` whose parent is the root | no | no | yes |
//! | `N-sibling` | root in `x-web`; an `x` child and an ERROR `x-db` child (siblings) | no | no | no |
//! | `N-reverse` | ERROR `x-db` root with an `x` child (the wrong direction) | no | no | no |
//! | `N-two5xx` | service `x-http`: only two codes >= 500 (500, 504; then 499, 200) | no | no | no |
//! | `N-spanscope` | resource `x-span`, ERROR span with *span* attribute `service.name = "x"` | no | no | no |
//! | `N-strcode` | service `x-http`: codes "500", "502", "503" as strings | no | no | no |
//!
//! Q1 `{ resource.service.name = "x" && status = error }` must return exactly the `E`
//! needles, Q2 `{ span.http.status_code >= 500 } | count() > 2` the `C` needles, Q3
//! `{ resource.service.name = "x" } >> { resource.service.name = "x-db" && status = error }`
//! the `S` needles. The loadgen's services are never `x*`, so background traces cannot match
//! Q1 or Q3; they may match Q2 (errors there carry codes 500-504) and are counted apart.
//!
//! `queries` runs each query `--runs` times through `GET /api/search` with a limit large enough
//! for every match (recall is checked on every answer) and again with Grafana's default limit
//! of 20 (latency and precision only), then prints latency percentiles, recall, needles of a
//! wrong category, background matches, the answer's `metrics`, and the scan rate per core. It
//! exits 1 when recall < 1.0 or a wrong-category needle comes back.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use allegro_loadgen::client::{self, ExportHeaders, Outcome};
use allegro_loadgen::grpc;
use allegro_loadgen::http1;
use allegro_loadgen::json;
use allegro_loadgen::rng::Rng;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;

const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

/// Limits and defaults, units last.
const NEEDLES_MAX: usize = 1_000_000;
const RUNS_MAX: usize = 100_000;
/// The largest `limit` Allegro accepts (`net::search_api::SEARCH_LIMIT_MAX`).
const LIMIT_FULL_DEFAULT: usize = 100_000;
/// Grafana's default search limit.
const LIMIT_GRAFANA_DEFAULT: usize = 20;
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than the server's own search deadline (120 s), so a slow answer is measured, not cut.
const SEARCH_TIMEOUT_DEFAULT: Duration = Duration::from_secs(150);
/// The default search window when `--start`/`--end` are not given.
const WINDOW_BEFORE_NOW_SECS: u64 = 3600;
const WINDOW_AFTER_NOW_SECS: u64 = 60;

// ---------------------------------------------------------------------------------------------
// Needles: categories, their span plans, and the Export request built from a plan. No IO.
// ---------------------------------------------------------------------------------------------

/// What a needle trace is built to match. See the table in the module comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Category {
    Error,
    Count,
    Structural,
    NegSibling,
    NegReverse,
    NegTwo5xx,
    NegSpanScope,
    NegStringCode,
}

const POSITIVES: [Category; 3] = [Category::Error, Category::Count, Category::Structural];
const NEGATIVES: [Category; 5] = [
    Category::NegSibling,
    Category::NegReverse,
    Category::NegTwo5xx,
    Category::NegSpanScope,
    Category::NegStringCode,
];

/// One planned span of a needle.
#[derive(Clone, Copy, Debug)]
struct PlannedSpan {
    /// The resource's `service.name`; spans of one service share one `ResourceSpans`.
    service: &'static str,
    name: &'static str,
    /// Index of the parent in the plan; `None` for the root.
    parent: Option<usize>,
    error: bool,
    /// `http.status_code` as an int attribute.
    http_status: Option<i64>,
    /// `http.status_code` as a string attribute.
    http_status_text: Option<&'static str>,
    /// A *span* attribute `service.name` (not the resource's).
    span_service: Option<&'static str>,
}

const fn sp(service: &'static str, name: &'static str, parent: Option<usize>) -> PlannedSpan {
    PlannedSpan {
        service,
        name,
        parent,
        error: false,
        http_status: None,
        http_status_text: None,
        span_service: None,
    }
}

impl PlannedSpan {
    const fn error(mut self) -> PlannedSpan {
        self.error = true;
        self
    }
    const fn http(mut self, code: i64) -> PlannedSpan {
        self.http_status = Some(code);
        self
    }
    const fn http_text(mut self, code: &'static str) -> PlannedSpan {
        self.http_status_text = Some(code);
        self
    }
    const fn span_service(mut self, service: &'static str) -> PlannedSpan {
        self.span_service = Some(service);
        self
    }
}

const PLAN_ERROR: [PlannedSpan; 4] = [
    sp("x", "GET /needle", None).http(200),
    sp("x", "charge", Some(0)).error().http(503),
    sp("x", "render", Some(0)).http(200),
    sp("x", "lookup", Some(1)),
];
const PLAN_COUNT: [PlannedSpan; 4] = [
    sp("x-http", "GET /count", None).http(500),
    sp("x-http", "call a", Some(0)).http(502),
    sp("x-http", "call b", Some(0)).http(503),
    sp("x-http", "call c", Some(1)).http(200),
];
const PLAN_STRUCTURAL: [PlannedSpan; 3] = [
    sp("x", "GET /structural", None).http(200),
    sp("x-db", "SELECT needles", Some(0)).error(),
    sp("x-db", "fetch rows", Some(1)),
];
const PLAN_NEG_SIBLING: [PlannedSpan; 3] = [
    sp("x-web", "GET /sibling", None),
    sp("x", "sibling x", Some(0)),
    sp("x-db", "sibling query", Some(0)).error(),
];
const PLAN_NEG_REVERSE: [PlannedSpan; 2] = [
    sp("x-db", "reverse root", None).error(),
    sp("x", "reverse child", Some(0)),
];
const PLAN_NEG_TWO5XX: [PlannedSpan; 4] = [
    sp("x-http", "GET /two", None).http(500),
    sp("x-http", "two a", Some(0)).http(504),
    sp("x-http", "two b", Some(0)).http(499),
    sp("x-http", "two c", Some(1)).http(200),
];
const PLAN_NEG_SPAN_SCOPE: [PlannedSpan; 2] = [
    sp("x-span", "GET /scope", None),
    sp("x-span", "scope error", Some(0))
        .error()
        .span_service("x"),
];
const PLAN_NEG_STRING_CODE: [PlannedSpan; 3] = [
    sp("x-http", "GET /strcode", None).http_text("500"),
    sp("x-http", "strcode a", Some(0)).http_text("502"),
    sp("x-http", "strcode b", Some(0)).http_text("503"),
];

impl Category {
    /// The record file's word for the category.
    fn code(self) -> &'static str {
        match self {
            Category::Error => "E",
            Category::Count => "C",
            Category::Structural => "S",
            Category::NegSibling => "N-sibling",
            Category::NegReverse => "N-reverse",
            Category::NegTwo5xx => "N-two5xx",
            Category::NegSpanScope => "N-spanscope",
            Category::NegStringCode => "N-strcode",
        }
    }

    fn parse(word: &str) -> Option<Category> {
        POSITIVES
            .into_iter()
            .chain(NEGATIVES)
            .find(|c| c.code() == word)
    }

    fn spans(self) -> &'static [PlannedSpan] {
        match self {
            Category::Error => &PLAN_ERROR,
            Category::Count => &PLAN_COUNT,
            Category::Structural => &PLAN_STRUCTURAL,
            Category::NegSibling => &PLAN_NEG_SIBLING,
            Category::NegReverse => &PLAN_NEG_REVERSE,
            Category::NegTwo5xx => &PLAN_NEG_TWO5XX,
            Category::NegSpanScope => &PLAN_NEG_SPAN_SCOPE,
            Category::NegStringCode => &PLAN_NEG_STRING_CODE,
        }
    }
}

/// One benchmarked query and the needle category it must return (and no other).
#[derive(Clone, Copy, Debug)]
struct QuerySpec {
    name: &'static str,
    traceql: &'static str,
    expects: Category,
}

const QUERIES: [QuerySpec; 3] = [
    QuerySpec {
        name: "service+error",
        traceql: r#"{ resource.service.name = "x" && status = error }"#,
        expects: Category::Error,
    },
    QuerySpec {
        name: "count>2",
        traceql: r#"{ span.http.status_code >= 500 } | count() > 2"#,
        expects: Category::Count,
    },
    QuerySpec {
        name: "structural",
        traceql: r#"{ resource.service.name = "x" } >> { resource.service.name = "x-db" && status = error }"#,
        expects: Category::Structural,
    },
];

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

fn int_kv(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

/// Builds one needle trace of `category` with fresh IDs, its root starting 100 ms before
/// `now_ns`. One `ResourceSpans` per service, in order of first appearance.
fn build_needle(
    category: Category,
    rng: &mut Rng,
    now_ns: u64,
) -> ([u8; 16], ExportTraceServiceRequest) {
    let trace_id = rng.trace_id();
    let plan = category.spans();
    let span_ids: Vec<[u8; 8]> = plan.iter().map(|_| rng.span_id()).collect();
    let root_start_ns = now_ns.saturating_sub(100_000_000);
    let mut resource_spans: Vec<ResourceSpans> = Vec::new();
    let mut services: Vec<&str> = Vec::new();
    for (index, (planned, span_id)) in plan.iter().zip(&span_ids).enumerate() {
        let parent_span_id = match planned.parent {
            Some(parent) => {
                assert!(parent < index, "a plan lists parents before children");
                span_ids
                    .get(parent)
                    .map(|id| id.to_vec())
                    .unwrap_or_default()
            }
            None => Vec::new(),
        };
        let (start_ns, end_ns) = if planned.parent.is_none() {
            (root_start_ns, root_start_ns + 80_000_000)
        } else {
            let start = root_start_ns + 5_000_000 * index as u64;
            (start, start + 10_000_000)
        };
        let mut attributes = Vec::new();
        if let Some(code) = planned.http_status {
            attributes.push(int_kv("http.status_code", code));
        }
        if let Some(code) = planned.http_status_text {
            attributes.push(string_kv("http.status_code", code));
        }
        if let Some(service) = planned.span_service {
            attributes.push(string_kv("service.name", service));
        }
        attributes.push(string_kv("needle.category", category.code()));
        let span = Span {
            trace_id: trace_id.to_vec(),
            span_id: span_id.to_vec(),
            parent_span_id,
            name: planned.name.to_string(),
            kind: if planned.parent.is_none() {
                span::SpanKind::Server as i32
            } else {
                span::SpanKind::Internal as i32
            },
            start_time_unix_nano: start_ns,
            end_time_unix_nano: end_ns,
            attributes,
            status: planned.error.then(|| Status {
                message: "needle error".to_string(),
                code: status::StatusCode::Error as i32,
            }),
            ..Default::default()
        };
        let at = match services.iter().position(|s| *s == planned.service) {
            Some(at) => at,
            None => {
                services.push(planned.service);
                resource_spans.push(ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![string_kv("service.name", planned.service)],
                        ..Default::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "allegro-search-bench".to_string(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                });
                resource_spans.len() - 1
            }
        };
        if let Some(scope) = resource_spans
            .get_mut(at)
            .and_then(|r| r.scope_spans.first_mut())
        {
            scope.spans.push(span);
        }
    }
    (trace_id, ExportTraceServiceRequest { resource_spans })
}

/// The order needles are sent in: `count` positives cycling E, C, S, with `negatives`
/// negatives (cycling through their variants) spread evenly among them.
fn needle_schedule(count: usize, negatives: usize) -> Vec<Category> {
    let total = count + negatives;
    let mut out = Vec::with_capacity(total);
    let (mut positive, mut negative) = (0usize, 0usize);
    let mut positives = POSITIVES.into_iter().cycle();
    let mut negatives_cycle = NEGATIVES.into_iter().cycle();
    for i in 0..total {
        // Bresenham: the negatives due by position i+1, rounded down.
        let negatives_due = (i + 1) * negatives / total.max(1);
        if negative < negatives_due {
            out.extend(negatives_cycle.next());
            negative += 1;
        } else {
            out.extend(positives.next());
            positive += 1;
        }
    }
    assert_eq!((positive, negative), (count, negatives));
    out
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A trace ID as 32 lowercase hex digits. Tempo strips leading zeros in search results, so
/// IDs from answers are left-padded back; `None` when it is not 1-32 hex digits.
fn normalize_trace_id(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() || text.len() > 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(format!("{:0>32}", text.to_ascii_lowercase()))
}

// ---------------------------------------------------------------------------------------------
// Measurement math and the search answer. No IO.
// ---------------------------------------------------------------------------------------------

/// The nearest-rank percentile of sorted samples (`p` in 0..=100): the smallest sample with
/// at least p% of the samples at or below it.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    assert!((0.0..=100.0).contains(&p));
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted.get(index).copied().unwrap_or_default()
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The `metrics` object of a search answer (Tempo writes 64-bit counts as strings).
#[derive(Clone, Debug, Default, PartialEq)]
struct SearchMetrics {
    inspected_traces: Option<u64>,
    inspected_bytes: Option<u64>,
    inspected_spans: Option<u64>,
    total_blocks: Option<u64>,
    total_block_bytes: Option<u64>,
    completed_jobs: Option<u64>,
    total_jobs: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct SearchAnswer {
    /// Normalised to 32 hex digits.
    trace_ids: Vec<String>,
    metrics: SearchMetrics,
}

fn json_count(value: Option<&serde_json::Value>) -> Option<u64> {
    match value? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn parse_search_answer(body: &[u8]) -> Result<SearchAnswer, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("search answer is not JSON: {e}"))?;
    let traces = match value.get("traces") {
        None | Some(serde_json::Value::Null) => &[][..],
        Some(serde_json::Value::Array(traces)) => traces.as_slice(),
        Some(_) => return Err("search answer: `traces` is not an array".to_string()),
    };
    let mut trace_ids = Vec::with_capacity(traces.len());
    for trace in traces {
        let id = trace
            .get("traceID")
            .and_then(|v| v.as_str())
            .ok_or("search answer: a trace without a string `traceID`")?;
        trace_ids.push(
            normalize_trace_id(id)
                .ok_or_else(|| format!("search answer: traceID {id:?} is not 1-32 hex digits"))?,
        );
    }
    let metrics = value.get("metrics");
    let field = |name: &str| json_count(metrics.and_then(|m| m.get(name)));
    Ok(SearchAnswer {
        trace_ids,
        metrics: SearchMetrics {
            inspected_traces: field("inspectedTraces"),
            inspected_bytes: field("inspectedBytes"),
            inspected_spans: field("inspectedSpans"),
            total_blocks: field("totalBlocks"),
            total_block_bytes: field("totalBlockBytes"),
            completed_jobs: field("completedJobs"),
            total_jobs: field("totalJobs"),
        },
    })
}

/// One answer judged against the recorded needles.
#[derive(Clone, Debug, Default, PartialEq)]
struct Judgement {
    returned: usize,
    /// Recorded needles of the expected category.
    expected: usize,
    /// Of those, how many came back.
    found: usize,
    /// Needles of another category that came back: `(trace id, category)`.
    wrong: Vec<(String, Category)>,
    /// Traces that are not needles (the background load).
    background: usize,
    /// The same trace ID more than once.
    duplicates: usize,
    /// Up to [`MISSING_SHOWN_MAX`] expected needles that did not come back.
    missing: Vec<String>,
}

const MISSING_SHOWN_MAX: usize = 10;

impl Judgement {
    fn recall(&self) -> f64 {
        if self.expected == 0 {
            return 0.0;
        }
        self.found as f64 / self.expected as f64
    }
}

fn judge(ids: &[String], needles: &HashMap<String, Category>, expects: Category) -> Judgement {
    let mut seen = HashSet::with_capacity(ids.len());
    let mut judgement = Judgement {
        returned: ids.len(),
        expected: needles.values().filter(|c| **c == expects).count(),
        ..Judgement::default()
    };
    for id in ids {
        if !seen.insert(id.as_str()) {
            judgement.duplicates += 1;
            continue;
        }
        match needles.get(id) {
            Some(c) if *c == expects => judgement.found += 1,
            Some(c) => judgement.wrong.push((id.clone(), *c)),
            None => judgement.background += 1,
        }
    }
    if judgement.found < judgement.expected {
        judgement.missing = needles
            .iter()
            .filter(|(id, c)| **c == expects && !seen.contains(id.as_str()))
            .map(|(id, _)| id.clone())
            .take(MISSING_SHOWN_MAX)
            .collect();
    }
    judgement
}

/// `amount` per second per core; `None` without an amount or a time.
fn per_core_rate(amount: Option<u64>, elapsed: Duration, cores: u32) -> Option<f64> {
    let amount = amount.filter(|a| *a > 0)?;
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 || cores == 0 {
        return None;
    }
    Some(amount as f64 / secs / f64::from(cores))
}

/// `3.15M`, `950.0k`, `12.0`: a rate for a table cell.
fn si(value: f64) -> String {
    if value >= 1e9 {
        format!("{:.2}G", value / 1e9)
    } else if value >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1}k", value / 1e3)
    } else {
        format!("{value:.1}")
    }
}

/// Text as inline code in a markdown table cell (`|` would end the cell).
fn md_code_cell(text: &str) -> String {
    format!("`{}`", text.replace('|', "\\|"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------------
// Command line.
// ---------------------------------------------------------------------------------------------

const HELP: &str = "\
search_bench: the end-to-end search benchmark (issue #5 item 7)

    search_bench needles --endpoint HOST:PORT --count N --spread-secs S --record FILE
        Sends N positive needle traces (categories E, C, S in turn) plus --negatives
        negatives [default: N/3] over OTLP gRPC, one Export each, spread evenly over S
        seconds (or a duration: 70s, 2m); records each acknowledged one as
        '<32 hex trace id> <category>'. Also: --seed N, --tenant ID.

    search_bench queries --http HOST:PORT --record FILE [OPTIONS]
        Runs the three queries through GET /api/search and checks them against the needles.
        --runs R             timed requests per query and limit [default: 20]
        --warmup W           untimed requests first [default: 2]
        --limit N            the limit of the recall runs [default: 100000]
        --default-limit N    a second run set at this limit (Grafana's); 0 = none [default: 20]
        --start/--end UNIX_S the search window [default: now-1h .. now+1m]
        --stored-spans N     spans stored (loadgen + needles), for the scan rate
        --cores N            the server's shards, for per-core rates [default: 2]
        --timeout DUR        per request [default: 150s]
        --tenant ID          X-Scope-OrgID
    Exit status 1 when recall < 1.0 or a needle of a wrong category is returned.
";

#[derive(Debug, PartialEq)]
struct NeedlesArgs {
    endpoint: String,
    count: usize,
    negatives: usize,
    spread: Duration,
    record: PathBuf,
    seed: Option<u64>,
    tenant: Option<String>,
}

#[derive(Debug, PartialEq)]
struct QueriesArgs {
    http: String,
    record: PathBuf,
    runs: usize,
    warmup: usize,
    limit: usize,
    default_limit: usize,
    start: Option<u64>,
    end: Option<u64>,
    stored_spans: Option<u64>,
    cores: u32,
    timeout: Duration,
    tenant: Option<String>,
}

#[derive(Debug, PartialEq)]
enum Command {
    Needles(NeedlesArgs),
    Queries(QueriesArgs),
    Help,
}

fn parse_number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag}: {text:?} is not a valid number"))
}

/// Seconds (`70`, `7.5`) or a loadgen duration (`70s`, `2m`).
fn parse_spread(text: &str) -> Result<Duration, String> {
    allegro_loadgen::cli::parse_duration(text).map_err(|e| format!("--spread-secs: {e}"))
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    let Some((sub, rest)) = args.split_first() else {
        return Err("expected a subcommand: needles or queries (see --help)".to_string());
    };
    // Flag/value pairs, `--flag value` or `--flag=value`.
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(Command::Help);
        }
        if !arg.starts_with("--") {
            return Err(format!("unexpected argument {arg:?}"));
        }
        let (flag, value) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_string(), value.to_string()),
            None => {
                let value = iter
                    .next()
                    .ok_or_else(|| format!("{arg} needs a value"))?
                    .clone();
                (arg.clone(), value)
            }
        };
        pairs.push((flag, value));
    }
    match sub.as_str() {
        "--help" | "-h" | "help" => Ok(Command::Help),
        "needles" => {
            let mut endpoint = None;
            let mut count = None;
            let mut negatives = None;
            let mut spread = None;
            let mut record = None;
            let mut seed = None;
            let mut tenant = None;
            for (flag, value) in pairs {
                match flag.as_str() {
                    "--endpoint" => endpoint = Some(value),
                    "--count" => count = Some(parse_number::<usize>(&flag, &value)?),
                    "--negatives" => negatives = Some(parse_number::<usize>(&flag, &value)?),
                    "--spread-secs" => spread = Some(parse_spread(&value)?),
                    "--record" => record = Some(PathBuf::from(value)),
                    "--seed" => seed = Some(parse_number::<u64>(&flag, &value)?),
                    "--tenant" => tenant = Some(value),
                    _ => return Err(format!("needles: unknown flag {flag}")),
                }
            }
            let count = count.ok_or("needles: --count is required")?;
            if !(1..=NEEDLES_MAX).contains(&count) {
                return Err(format!("--count must be 1..={NEEDLES_MAX}"));
            }
            let negatives = negatives.unwrap_or(count / 3);
            if negatives > NEEDLES_MAX {
                return Err(format!("--negatives must be at most {NEEDLES_MAX}"));
            }
            Ok(Command::Needles(NeedlesArgs {
                endpoint: endpoint.ok_or("needles: --endpoint is required")?,
                count,
                negatives,
                spread: spread.ok_or("needles: --spread-secs is required")?,
                record: record.ok_or("needles: --record is required")?,
                seed,
                tenant,
            }))
        }
        "queries" => {
            let mut a = QueriesArgs {
                http: String::new(),
                record: PathBuf::new(),
                runs: 20,
                warmup: 2,
                limit: LIMIT_FULL_DEFAULT,
                default_limit: LIMIT_GRAFANA_DEFAULT,
                start: None,
                end: None,
                stored_spans: None,
                cores: 2,
                timeout: SEARCH_TIMEOUT_DEFAULT,
                tenant: None,
            };
            let (mut http, mut record) = (None, None);
            for (flag, value) in pairs {
                match flag.as_str() {
                    "--http" => http = Some(value),
                    "--record" => record = Some(PathBuf::from(value)),
                    "--runs" => a.runs = parse_number(&flag, &value)?,
                    "--warmup" => a.warmup = parse_number(&flag, &value)?,
                    "--limit" => a.limit = parse_number(&flag, &value)?,
                    "--default-limit" => a.default_limit = parse_number(&flag, &value)?,
                    "--start" => a.start = Some(parse_number(&flag, &value)?),
                    "--end" => a.end = Some(parse_number(&flag, &value)?),
                    "--stored-spans" => a.stored_spans = Some(parse_number(&flag, &value)?),
                    "--cores" => a.cores = parse_number(&flag, &value)?,
                    "--timeout" => {
                        a.timeout = allegro_loadgen::cli::parse_duration(&value)
                            .map_err(|e| format!("--timeout: {e}"))?
                    }
                    "--tenant" => a.tenant = Some(value),
                    _ => return Err(format!("queries: unknown flag {flag}")),
                }
            }
            a.http = http.ok_or("queries: --http is required")?;
            a.record = record.ok_or("queries: --record is required")?;
            if !(1..=RUNS_MAX).contains(&a.runs) || a.warmup > RUNS_MAX {
                return Err(format!(
                    "--runs must be 1..={RUNS_MAX}, --warmup 0..={RUNS_MAX}"
                ));
            }
            if a.limit == 0 {
                return Err("--limit must be at least 1".to_string());
            }
            if a.cores == 0 {
                return Err("--cores must be at least 1".to_string());
            }
            if let (Some(start), Some(end)) = (a.start, a.end) {
                if start > end {
                    return Err("--start must not be after --end".to_string());
                }
            }
            Ok(Command::Queries(a))
        }
        other => Err(format!(
            "unknown subcommand {other:?}: expected needles or queries (see --help)"
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// IO: the two subcommands.
// ---------------------------------------------------------------------------------------------

fn now_unix() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

async fn needles(args: &NeedlesArgs) -> Result<u8, String> {
    let headers = ExportHeaders::new(
        &args.endpoint,
        args.tenant.as_deref(),
        false,
        EXPORT_TIMEOUT,
    )?;
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&args.record)
            .map_err(|e| format!("create {}: {e}", args.record.display()))?,
    );
    let seed = args.seed.unwrap_or_else(|| {
        let nanos = now_unix().as_nanos() as u64;
        nanos ^ (u64::from(std::process::id()) << 32)
    });
    let mut rng = Rng::new(seed);
    let schedule = needle_schedule(args.count, args.negatives);
    let mut send = Some(client::connect(&args.endpoint).await?);
    let started = Instant::now();
    let (mut acked, mut spans_acked, mut failed) = (0u64, 0u64, 0u64);
    let mut acked_by_category: HashMap<Category, u64> = HashMap::new();
    let mut first_error: Option<String> = None;
    for (i, category) in schedule.iter().enumerate() {
        let due = started + args.spread.mul_f64(i as f64 / schedule.len() as f64);
        tokio::time::sleep_until(due.into()).await;
        if send.is_none() {
            match client::connect(&args.endpoint).await {
                Ok(s) => send = Some(s),
                Err(e) => {
                    failed += 1;
                    first_error.get_or_insert(e);
                    continue;
                }
            }
        }
        let Some(connection) = send.as_ref() else {
            continue;
        };
        let now_ns = now_unix().as_nanos() as u64;
        let (trace_id, request) = build_needle(*category, &mut rng, now_ns);
        let mut frame = Vec::new();
        grpc::encode_frame(false, &request.encode_to_vec(), &mut frame);
        match client::export(connection, &headers, Bytes::from(frame)).await {
            Outcome::Ok => {
                writeln!(file, "{} {}", hex(&trace_id), category.code())
                    .and_then(|()| file.flush())
                    .map_err(|e| format!("write {}: {e}", args.record.display()))?;
                acked += 1;
                spans_acked += category.spans().len() as u64;
                *acked_by_category.entry(*category).or_default() += 1;
            }
            Outcome::Partial { message, .. } => {
                failed += 1;
                first_error.get_or_insert(format!("partial success: {message}"));
            }
            Outcome::Failed {
                message,
                connection_dead,
                ..
            } => {
                failed += 1;
                first_error.get_or_insert(message);
                if connection_dead {
                    send = None;
                }
            }
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "search_bench needles: {acked} acknowledged ({spans_acked} spans), {failed} failed, in {:.1}s{}",
        elapsed.as_secs_f64(),
        first_error
            .as_deref()
            .map(|e| format!("; first error: {e}"))
            .unwrap_or_default()
    );
    let mut by_category = json::Object::new();
    for category in POSITIVES.into_iter().chain(NEGATIVES) {
        by_category = by_category.u64(
            category.code(),
            acked_by_category.get(&category).copied().unwrap_or(0),
        );
    }
    println!(
        "RESULT {}",
        json::Object::new()
            .u64("needles_sent", schedule.len() as u64)
            .u64("needles_acked", acked)
            .u64("spans_acked", spans_acked)
            .u64("failed", failed)
            .f64("elapsed_s", elapsed.as_secs_f64())
            .raw("acked_by_category", &by_category.finish())
            .finish()
    );
    Ok(if acked == 0 { EXIT_FAILED } else { 0 })
}

fn read_needles(path: &std::path::Path) -> Result<HashMap<String, Category>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let mut needles = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(id), Some(word), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!(
                "{}:{}: expected '<32 hex trace id> <category>'",
                path.display(),
                n + 1
            ));
        };
        let id = normalize_trace_id(id)
            .filter(|_| id.len() == 32)
            .ok_or_else(|| format!("{}:{}: bad trace id {id:?}", path.display(), n + 1))?;
        let category = Category::parse(word)
            .ok_or_else(|| format!("{}:{}: unknown category {word:?}", path.display(), n + 1))?;
        needles.insert(id, category);
    }
    Ok(needles)
}

/// One query at one limit, measured.
struct RunSet {
    query: QuerySpec,
    limit: usize,
    /// Whether recall is checked (the limit leaves room for every match).
    recall_run: bool,
    latencies: Vec<Duration>,
    judgements: Vec<Judgement>,
    /// The first answer's metrics.
    metrics: SearchMetrics,
}

impl RunSet {
    fn min_recall(&self) -> f64 {
        self.judgements
            .iter()
            .map(Judgement::recall)
            .fold(f64::INFINITY, f64::min)
    }
    fn wrong(&self) -> usize {
        self.judgements
            .iter()
            .map(|j| j.wrong.len())
            .max()
            .unwrap_or(0)
    }
    fn returned(&self) -> (usize, usize) {
        let min = self
            .judgements
            .iter()
            .map(|j| j.returned)
            .min()
            .unwrap_or(0);
        let max = self
            .judgements
            .iter()
            .map(|j| j.returned)
            .max()
            .unwrap_or(0);
        (min, max)
    }
    fn background(&self) -> usize {
        self.judgements
            .iter()
            .map(|j| j.background)
            .max()
            .unwrap_or(0)
    }
    fn failed(&self) -> bool {
        self.wrong() > 0 || (self.recall_run && self.min_recall() < 1.0)
    }
}

async fn search_once(
    http: &mut http1::Client,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<(Duration, SearchAnswer), String> {
    let started = Instant::now();
    let response = tokio::time::timeout(timeout, http.get(path, headers))
        .await
        .map_err(|_| format!("GET {path}: no answer within {timeout:?}"))?
        .map_err(|e| format!("GET {path}: {e}"))?;
    let elapsed = started.elapsed();
    if response.status != 200 {
        return Err(format!(
            "GET {path}: HTTP {}: {}",
            response.status,
            String::from_utf8_lossy(response.body.get(..500).unwrap_or(&response.body))
        ));
    }
    Ok((elapsed, parse_search_answer(&response.body)?))
}

async fn queries(args: &QueriesArgs) -> Result<u8, String> {
    let needles = read_needles(&args.record)?;
    if needles.is_empty() {
        return Err(format!("{}: no needles recorded", args.record.display()));
    }
    let now_s = now_unix().as_secs();
    let start = args
        .start
        .unwrap_or(now_s.saturating_sub(WINDOW_BEFORE_NOW_SECS));
    let end = args.end.unwrap_or(now_s + WINDOW_AFTER_NOW_SECS);
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(tenant) = &args.tenant {
        headers.push(("X-Scope-OrgID", tenant));
    }
    let mut http = http1::Client::new(&args.http);
    let mut limits = vec![(args.limit, true)];
    if args.default_limit > 0 && args.default_limit != args.limit {
        limits.push((args.default_limit, false));
    }
    let mut sets: Vec<RunSet> = Vec::new();
    for query in QUERIES {
        for &(limit, recall_run) in &limits {
            let path = format!(
                "/api/search?q={}&limit={limit}&start={start}&end={end}",
                url_encode(query.traceql)
            );
            for _ in 0..args.warmup {
                search_once(&mut http, &path, &headers, args.timeout).await?;
            }
            let mut set = RunSet {
                query,
                limit,
                recall_run,
                latencies: Vec::with_capacity(args.runs),
                judgements: Vec::with_capacity(args.runs),
                metrics: SearchMetrics::default(),
            };
            for run in 0..args.runs {
                let (latency, answer) =
                    search_once(&mut http, &path, &headers, args.timeout).await?;
                if run == 0 {
                    set.metrics = answer.metrics.clone();
                }
                set.latencies.push(latency);
                set.judgements
                    .push(judge(&answer.trace_ids, &needles, query.expects));
            }
            set.latencies.sort();
            eprintln!(
                "search_bench queries: {} limit={limit}: p50 {:.2} ms, {} returned",
                query.name,
                ms(percentile(&set.latencies, 50.0)),
                set.returned().1
            );
            sets.push(set);
        }
    }
    Ok(report(args, &needles, &sets))
}

/// Prints the `RESULT` lines, the markdown table and any failures; returns the exit status.
fn report(args: &QueriesArgs, needles: &HashMap<String, Category>, sets: &[RunSet]) -> u8 {
    let mut table = String::new();
    table.push_str(
        "| query | limit | runs | p50 ms | p90 ms | p99 ms | max ms | returned | recall | wrong needles | background matches | inspected traces / spans / MB | blocks (MB) | spans/s per core | MB/s per core |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut status = 0;
    for set in sets {
        let p50 = percentile(&set.latencies, 50.0);
        let p90 = percentile(&set.latencies, 90.0);
        let p99 = percentile(&set.latencies, 99.0);
        let max = set.latencies.last().copied().unwrap_or_default();
        let m = &set.metrics;
        let (spans, spans_source) = match m.inspected_spans.filter(|s| *s > 0) {
            Some(s) => (Some(s), "inspectedSpans"),
            None => (args.stored_spans, "stored"),
        };
        let (bytes, bytes_source) = match m.inspected_bytes.filter(|b| *b > 0) {
            Some(b) => (Some(b), "inspectedBytes"),
            None => (m.total_block_bytes, "totalBlockBytes"),
        };
        let spans_rate = per_core_rate(spans, p50, args.cores);
        let mb_rate = per_core_rate(bytes, p50, args.cores).map(|r| r / 1e6);
        let (returned_min, returned_max) = set.returned();
        let first = set.judgements.first().cloned().unwrap_or_default();
        let recall = set.min_recall();
        let wrong = set.wrong();
        let background = set.background();
        let mut result = json::Object::new()
            .str("query", set.query.name)
            .str("traceql", set.query.traceql)
            .u64("limit", set.limit as u64)
            .u64("runs", set.latencies.len() as u64)
            .f64("p50_ms", ms(p50))
            .f64("p90_ms", ms(p90))
            .f64("p99_ms", ms(p99))
            .f64("max_ms", ms(max))
            .u64("returned_min", returned_min as u64)
            .u64("returned_max", returned_max as u64)
            .u64("expected_needles", first.expected as u64)
            .bool("recall_checked", set.recall_run)
            .f64("recall_min", recall)
            .u64("wrong_needles_max", wrong as u64)
            .u64("background_matches_max", background as u64);
        let optional = [
            ("inspected_traces", m.inspected_traces),
            ("inspected_spans", m.inspected_spans),
            ("inspected_bytes", m.inspected_bytes),
            ("total_blocks", m.total_blocks),
            ("total_block_bytes", m.total_block_bytes),
            ("completed_jobs", m.completed_jobs),
            ("total_jobs", m.total_jobs),
            ("stored_spans", args.stored_spans),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                result = result.u64(key, value);
            }
        }
        if let Some(rate) = spans_rate {
            result = result
                .f64("spans_per_s_per_core", rate)
                .str("spans_source", spans_source);
        }
        if let Some(rate) = mb_rate {
            result = result
                .f64("mb_per_s_per_core", rate)
                .str("bytes_source", bytes_source);
        }
        println!(
            "RESULT {}",
            result.u64("cores", u64::from(args.cores)).finish()
        );

        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        let mb = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{:.1}", v as f64 / 1e6));
        let spans_cell = match spans_rate {
            Some(rate) if spans_source == "inspectedSpans" => format!("{} (inspected)", si(rate)),
            Some(rate) => si(rate),
            None => "-".to_string(),
        };
        let mb_cell = mb_rate.map_or("-".to_string(), |v| format!("{v:.1}"));
        let returned = if returned_min == returned_max {
            returned_max.to_string()
        } else {
            format!("{returned_min}-{returned_max}")
        };
        let recall_text = if set.recall_run {
            format!("{recall:.3} ({}/{})", first.found, first.expected)
        } else {
            "n/a (limit)".to_string()
        };
        let _ = writeln!(
            table,
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {returned} | {recall_text} | {wrong} | {background} | {} / {} / {} | {} ({}) | {} | {} |",
            md_code_cell(set.query.traceql),
            set.limit,
            set.latencies.len(),
            ms(p50),
            ms(p90),
            ms(p99),
            ms(max),
            opt(m.inspected_traces),
            opt(m.inspected_spans),
            mb(m.inspected_bytes),
            opt(m.total_blocks),
            mb(m.total_block_bytes),
            spans_cell,
            mb_cell,
        );

        if set.failed() {
            status = EXIT_FAILED;
            eprintln!(
                "search_bench queries: FAILED {} limit={}: recall {recall:.4}, {wrong} wrong-category needles",
                set.query.name, set.limit
            );
            let first_failed = set
                .judgements
                .iter()
                .find(|j| !j.wrong.is_empty() || (set.recall_run && j.found < j.expected));
            if let Some(judgement) = first_failed {
                for (id, category) in judgement.wrong.iter().take(10) {
                    eprintln!("  returned {id} of category {}", category.code());
                }
                if set.recall_run && judgement.found < judgement.expected {
                    eprintln!(
                        "  missing {} of {} needles of category {}, e.g. {}",
                        judgement.expected - judgement.found,
                        judgement.expected,
                        set.query.expects.code(),
                        judgement.missing.join(" ")
                    );
                }
            }
        }
        if background > 0 && set.query.expects != Category::Count {
            eprintln!(
                "search_bench queries: warning: {} returned {background} non-needle traces; the \
                 background load cannot match it (false positives, or needles stored although \
                 their Export failed)",
                set.query.name
            );
        }
        if set.recall_run && returned_max >= set.limit {
            eprintln!(
                "search_bench queries: warning: {} returned {returned_max} traces = the limit; \
                 matches may have been cut off",
                set.query.name
            );
        }
    }
    let mut counts = String::new();
    for category in POSITIVES.into_iter().chain(NEGATIVES) {
        let n = needles.values().filter(|c| **c == category).count();
        let _ = write!(counts, " {}={n}", category.code());
    }
    println!("\nneedles:{counts}; cores: {}\n", args.cores);
    print!("{table}");
    status
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse_args(&args) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("search_bench: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let result = match &command {
        Command::Help => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Command::Needles(a) => runtime().and_then(|rt| rt.block_on(needles(a))),
        Command::Queries(a) => runtime().and_then(|rt| rt.block_on(queries(a))),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("search_bench: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests: needles decoded and checked by a reference matcher written from TraceQL's semantics.
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests index and unwrap what they just built"
)]
mod tests {
    use super::*;

    /// A decoded span with its resource's service name.
    struct Flat {
        resource_service: String,
        span_id: Vec<u8>,
        parent: Vec<u8>,
        error: bool,
        int_codes: Vec<i64>,
    }

    fn flatten(request: &ExportTraceServiceRequest) -> Vec<Flat> {
        let mut out = Vec::new();
        for rs in &request.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(any_value::Value::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for ss in &rs.scope_spans {
                for s in &ss.spans {
                    out.push(Flat {
                        resource_service: service.clone(),
                        span_id: s.span_id.clone(),
                        parent: s.parent_span_id.clone(),
                        error: s.status.as_ref().is_some_and(|st| st.code == 2),
                        int_codes: s
                            .attributes
                            .iter()
                            .filter(|kv| kv.key == "http.status_code")
                            .filter_map(|kv| match kv.value.as_ref()?.value {
                                Some(any_value::Value::IntValue(i)) => Some(i),
                                _ => None,
                            })
                            .collect(),
                    });
                }
            }
        }
        out
    }

    /// Q1, Q2, Q3 evaluated over one trace the way TraceQL defines them.
    fn matches(spans: &[Flat]) -> [bool; 3] {
        let q1 = spans.iter().any(|s| s.resource_service == "x" && s.error);
        let q2 = spans
            .iter()
            .filter(|s| s.int_codes.iter().any(|c| *c >= 500))
            .count()
            > 2;
        let by_id: HashMap<&[u8], &Flat> = spans.iter().map(|s| (&s.span_id[..], s)).collect();
        let has_x_ancestor = |s: &Flat| {
            let mut parent = &s.parent[..];
            let mut hops = 0;
            while let Some(p) = by_id.get(parent) {
                if p.resource_service == "x" {
                    return true;
                }
                parent = &p.parent[..];
                hops += 1;
                assert!(hops <= spans.len(), "cycle");
            }
            false
        };
        let q3 = spans
            .iter()
            .any(|s| s.resource_service == "x-db" && s.error && has_x_ancestor(s));
        [q1, q2, q3]
    }

    #[test]
    fn each_category_matches_exactly_its_query() {
        let mut rng = Rng::new(7);
        for category in POSITIVES.into_iter().chain(NEGATIVES) {
            let (trace_id, request) = build_needle(category, &mut rng, 1_700_000_000_000_000_000);
            let decoded = ExportTraceServiceRequest::decode(request.encode_to_vec().as_slice())
                .expect("decodes");
            let spans = flatten(&decoded);
            assert_eq!(spans.len(), category.spans().len(), "{category:?}");
            for rs in &decoded.resource_spans {
                for s in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                    assert_eq!(s.trace_id, trace_id);
                    assert!(s.start_time_unix_nano < s.end_time_unix_nano);
                }
            }
            let expected = QUERIES.map(|q| q.expects == category);
            assert_eq!(matches(&spans), expected, "{category:?}");
        }
    }

    #[test]
    fn needle_details_the_queries_depend_on() {
        let mut rng = Rng::new(1);
        // E: exactly one 5xx code, so Q2 cannot match by accident.
        let (_, e) = build_needle(Category::Error, &mut rng, 1 << 60);
        let codes: usize = flatten(&e)
            .iter()
            .map(|s| s.int_codes.iter().filter(|c| **c >= 500).count())
            .sum();
        assert_eq!(codes, 1);
        // S: two ResourceSpans, the x-db error span's parent is the x root.
        let (_, s) = build_needle(Category::Structural, &mut rng, 1 << 60);
        assert_eq!(s.resource_spans.len(), 2);
        let flat = flatten(&s);
        let db_error = flat.iter().find(|f| f.error).unwrap();
        assert_eq!(db_error.resource_service, "x-db");
        let root = flat.iter().find(|f| f.parent.is_empty()).unwrap();
        assert_eq!(
            (root.resource_service.as_str(), &db_error.parent),
            ("x", &root.span_id)
        );
        // Distinct IDs per needle.
        let (a, _) = build_needle(Category::Count, &mut rng, 1 << 60);
        let (b, _) = build_needle(Category::Count, &mut rng, 1 << 60);
        assert_ne!(a, b);
    }

    #[test]
    fn schedule_mixes_negatives_evenly() {
        let schedule = needle_schedule(300, 100);
        assert_eq!(schedule.len(), 400);
        for category in POSITIVES {
            assert_eq!(schedule.iter().filter(|c| **c == category).count(), 100);
        }
        assert_eq!(
            schedule.iter().filter(|c| NEGATIVES.contains(c)).count(),
            100
        );
        // Every window of 4 holds exactly one negative.
        for window in schedule.chunks(4) {
            assert_eq!(window.iter().filter(|c| NEGATIVES.contains(c)).count(), 1);
        }
        assert_eq!(needle_schedule(3, 0), POSITIVES.to_vec());
        assert_eq!(needle_schedule(0, 2), NEGATIVES[..2].to_vec());
    }

    #[test]
    fn categories_round_trip() {
        for category in POSITIVES.into_iter().chain(NEGATIVES) {
            assert_eq!(Category::parse(category.code()), Some(category));
        }
        assert_eq!(Category::parse("X"), None);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&samples, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&samples, 0.0), Duration::from_millis(1));
        let few: Vec<Duration> = [10, 20, 30]
            .into_iter()
            .map(Duration::from_millis)
            .collect();
        assert_eq!(percentile(&few, 50.0), Duration::from_millis(20));
        assert_eq!(percentile(&few, 90.0), Duration::from_millis(30));
        assert_eq!(percentile(&few, 99.0), Duration::from_millis(30));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
        let one = [Duration::from_millis(7)];
        assert_eq!(percentile(&one, 1.0), Duration::from_millis(7));
    }

    #[test]
    fn url_encoding_of_the_queries() {
        assert_eq!(
            url_encode(r#"{ resource.service.name = "x" && status = error }"#),
            "%7B%20resource.service.name%20%3D%20%22x%22%20%26%26%20status%20%3D%20error%20%7D"
        );
        assert_eq!(url_encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(url_encode(">>|()+/?#"), "%3E%3E%7C%28%29%2B%2F%3F%23");
        assert_eq!(url_encode("é"), "%C3%A9");
    }

    #[test]
    fn trace_ids_are_padded_back() {
        assert_eq!(
            normalize_trace_id("715762b08b73089607e391b01d54ad3").as_deref(),
            Some("0715762b08b73089607e391b01d54ad3")
        );
        assert_eq!(
            normalize_trace_id("ABCDEF").as_deref(),
            Some("00000000000000000000000000abcdef")
        );
        assert_eq!(normalize_trace_id(""), None);
        assert_eq!(normalize_trace_id("xyz"), None);
        assert_eq!(normalize_trace_id(&"1".repeat(33)), None);
    }

    #[test]
    fn search_answers_parse_and_judge() {
        let body = br#"{"traces":[
            {"traceID":"abc","rootServiceName":"x"},
            {"traceID":"def"},
            {"traceID":"123"},
            {"traceID":"abc"},
            {"traceID":"999"}],
          "metrics":{"inspectedTraces":5,"inspectedBytes":"1000","totalBlocks":2,
                     "totalBlockBytes":"5000","inspectedSpans":"40","completedJobs":2,"totalJobs":2}}"#;
        let answer = parse_search_answer(body).unwrap();
        assert_eq!(answer.trace_ids.len(), 5);
        assert_eq!(answer.trace_ids[0], format!("{:0>32}", "abc"));
        assert_eq!(
            answer.metrics,
            SearchMetrics {
                inspected_traces: Some(5),
                inspected_bytes: Some(1000),
                inspected_spans: Some(40),
                total_blocks: Some(2),
                total_block_bytes: Some(5000),
                completed_jobs: Some(2),
                total_jobs: Some(2),
            }
        );
        let id = |s: &str| format!("{s:0>32}");
        let needles: HashMap<String, Category> = [
            (id("abc"), Category::Error),
            (id("def"), Category::Error),
            (id("123"), Category::Structural),
            (id("456"), Category::Error),
        ]
        .into_iter()
        .collect();
        let j = judge(&answer.trace_ids, &needles, Category::Error);
        assert_eq!(j.returned, 5);
        assert_eq!(
            (j.expected, j.found, j.duplicates, j.background),
            (3, 2, 1, 1)
        );
        assert_eq!(j.wrong, vec![(id("123"), Category::Structural)]);
        assert_eq!(j.missing, vec![id("456")]);
        assert!((j.recall() - 2.0 / 3.0).abs() < 1e-9);

        let empty = parse_search_answer(br#"{"traces":[],"metrics":{}}"#).unwrap();
        assert_eq!(empty, SearchAnswer::default());
        assert!(parse_search_answer(b"not json").is_err());
        assert!(parse_search_answer(br#"{"traces":[{"traceID":"zz"}]}"#).is_err());
        assert!(parse_search_answer(br#"{"traces":{}}"#).is_err());
    }

    #[test]
    fn table_cells() {
        assert_eq!(
            md_code_cell("{ a } | count() > 2"),
            "`{ a } \\| count() > 2`"
        );
        assert_eq!(si(450_158_099.0), "450.16M");
        assert_eq!(si(3_145_987.0), "3.15M");
        assert_eq!(si(950.0), "950.0");
        assert_eq!(si(12_500.0), "12.5k");
        assert_eq!(si(2.5e9), "2.50G");
    }

    #[test]
    fn rates_per_core() {
        let r = per_core_rate(Some(10_000_000), Duration::from_millis(500), 2).unwrap();
        assert!((r - 10_000_000.0).abs() < 1e-6);
        assert_eq!(per_core_rate(None, Duration::from_secs(1), 2), None);
        assert_eq!(per_core_rate(Some(0), Duration::from_secs(1), 2), None);
        assert_eq!(per_core_rate(Some(5), Duration::ZERO, 2), None);
    }

    #[test]
    fn command_lines() {
        let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(
            parse_args(&args(
                "needles --endpoint 127.0.0.1:4317 --count 300 --spread-secs 70s --record f"
            )),
            Ok(Command::Needles(NeedlesArgs {
                endpoint: "127.0.0.1:4317".into(),
                count: 300,
                negatives: 100,
                spread: Duration::from_secs(70),
                record: "f".into(),
                seed: None,
                tenant: None,
            }))
        );
        let Ok(Command::Queries(q)) = parse_args(&args(
            "queries --http h:1 --record f --runs 5 --warmup=0 --stored-spans 10 --start 1 --end 2",
        )) else {
            panic!("queries parse");
        };
        assert_eq!(
            (
                q.runs,
                q.warmup,
                q.stored_spans,
                q.start,
                q.end,
                q.limit,
                q.default_limit
            ),
            (5, 0, Some(10), Some(1), Some(2), 100_000, 20)
        );
        for bad in [
            "",
            "frobnicate",
            "needles --count 3",
            "needles --endpoint e --count 0 --spread-secs 1 --record f",
            "queries --record f",
            "queries --http h --record f --runs 0",
            "queries --http h --record f --start 5 --end 4",
            "queries --http h --record f --bogus 1",
            "queries --http",
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(parse_args(&args("queries --help")), Ok(Command::Help));
    }
}

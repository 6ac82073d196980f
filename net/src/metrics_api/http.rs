//! The HTTP side of the metrics API: `/api/metrics/query_range` and `/api/metrics/query`
//! parameters to a [`Call`] as Tempo 2.7's `ParseQueryRangeRequest` and
//! `ParseQueryInstantRequest` read them (`pkg/api/http.go`), and the JSON answer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use allegro_engine::{Engine, Tenant};

use super::call::{metrics_call, Call, MetricsLimits, RangeParams};
use super::json::{instant_json, range_json};
use super::messages::{final_series, instant_response, range_response, Stats};
use super::time::{bounds, default_step, parse_step, unix_nano, StepError, ZERO_TIME_NS};
use crate::http_response::{
    go_http_error_vary, go_parse_int64, json_response, plain_vary, query_get, Request, Response,
};
use crate::shards::{run, DEADLINE_EXCEEDED};

pub const QUERY_RANGE_PATH: &str = "/api/metrics/query_range";
pub const QUERY_INSTANT_PATH: &str = "/api/metrics/query";

/// Routes the metrics paths: the call, or the 400 answer when the request is refused; `None`
/// for other paths.
pub fn route(req: &Request, path: &str, limits: &MetricsLimits) -> Option<Result<Call, Response>> {
    let instant = match path {
        QUERY_RANGE_PATH => false,
        QUERY_INSTANT_PATH => true,
        _ => return None,
    };
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    Some(parse(&req.query, instant, limits, now_ns))
}

/// The parameters of either path (the URL query only, as Tempo reads `r.URL.Query()`) at
/// time `now_ns`, checked.
pub(super) fn parse(
    raw_query: &str,
    instant: bool,
    limits: &MetricsLimits,
    now_ns: i128,
) -> Result<Call, Response> {
    let p = http_params(raw_query, instant, now_ns)?;
    let request = RangeParams {
        query: &p.query,
        start_ns: p.start_ns,
        end_ns: p.end_ns,
        step_ns: p.step_ns,
        exemplars: p.exemplars,
        instant,
    };
    metrics_call(request, limits).map_err(|e| plain_vary(400, e.text()))
}

/// A request as Tempo's parameter parser leaves it: Unix nanoseconds as `uint64`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct HttpParams {
    pub(super) query: String,
    pub(super) start_ns: u64,
    pub(super) end_ns: u64,
    pub(super) step_ns: u64,
    pub(super) exemplars: u32,
}

/// Tempo's `ParseQueryRangeRequest` (or `ParseQueryInstantRequest` and the instant
/// handler's rewrite into one step); only a bad `step` is refused here.
pub(super) fn http_params(
    raw_query: &str,
    instant: bool,
    now_ns: i128,
) -> Result<HttpParams, Response> {
    // Tempo's `extractQueryParam`: present and non-empty.
    let param = |key: &str| query_get(raw_query, key).filter(|v| !v.is_empty());
    // `query` (Prometheus' name, which Grafana sends), overridden by `q`.
    let query = param("q").or_else(|| param("query")).unwrap_or_default();
    let text = |key: &str| param(key).unwrap_or_default();
    // Tempo ignores the error of a bad `start`, `end` or `since`: both times are then zero,
    // which the combiner refuses as `end must be greater than start`.
    let (start, end) = bounds(now_ns, &text("start"), &text("end"), &text("since"))
        .unwrap_or((ZERO_TIME_NS, ZERO_TIME_NS));
    let (start_ns, end_ns) = (unix_nano(start), unix_nano(end));
    if instant {
        // `newMetricsQueryInstantHTTPHandler`: one step over the whole range, no exemplars.
        return Ok(HttpParams {
            query,
            start_ns,
            end_ns,
            step_ns: end_ns.wrapping_sub(start_ns),
            exemplars: 0,
        });
    }
    let step_ns = match param("step") {
        None => default_step(start_ns, end_ns),
        Some(step) => parse_step(&step).map_err(|e| match e {
            // `httpgrpc.Errorf(400, ...)`, whose `Error()` is the gRPC status text.
            StepError::Invalid(text) => {
                plain_vary(400, &format!("rpc error: code = Code(400) desc = {text}"))
            }
            StepError::Negative => plain_vary(400, "step must be greater than 0"),
        })?,
    };
    // `strconv.Atoi`, errors ignored, then `uint32(...)`.
    let exemplars = param("exemplars")
        .and_then(|e| go_parse_int64(&e).ok())
        .map_or(0, |e| e as u32);
    Ok(HttpParams {
        query,
        start_ns,
        end_ns,
        step_ns,
        exemplars,
    })
}

/// Answers an HTTP metrics call with JSON, whatever the `Accept` header: Tempo's frontend
/// marshals these answers with jsonpb only. Past `timeout`: 500 `context deadline exceeded`,
/// as for a search.
pub async fn answer_http(
    engine: &Engine,
    tenant: &Tenant,
    call: &Call,
    gzip: bool,
    timeout: Duration,
) -> Response {
    let mut stats = Stats::new(engine.shards() as u32);
    let merged = match run(engine, tenant, call.job(), timeout, |a| stats.add(a)).await {
        Ok((merged, _)) => merged,
        Err(_) => return go_http_error_vary(500, DEADLINE_EXCEEDED),
    };
    let series = final_series(call.request(), &merged);
    let body = if call.is_instant() {
        instant_json(&instant_response(&series, &stats))
    } else {
        range_json(&range_response(&series, &stats))
    };
    let mut response = json_response(body);
    if gzip {
        crate::http_response::gzip(&mut response);
    }
    response
}

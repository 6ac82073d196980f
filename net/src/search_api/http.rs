//! The HTTP side of the search API: the query parameters (and a form body) of the search,
//! tags and tag-values paths to a [`Call`], in Tempo's order with Tempo's texts
//! (`pkg/api/http.go`), and the JSON answer to a call.

use std::time::Duration;

use allegro_engine::{Engine, Tenant};

use super::call::{
    job_of, parse_scope, search_call, tag_names_call, tag_values_call, Call, SearchLimits,
    SearchParams, TagValuesError,
};
use super::json::{search_json, tags_v1_json, tags_v2_json, values_v1_json, values_v2_json};
use super::messages::{search_response, tags_v1, tags_v2, values_v1, values_v2};
use crate::http_response::{
    go_http_error_vary, go_parse_int64, go_quote, json_response, plain_vary, query_get, Request,
    Response,
};
use crate::shards::{run, TimedOut, DEADLINE_EXCEEDED};

/// Routes the search paths: the call, or the answer when the request is refused or needs no
/// engine (`/api/metrics/summary`); `None` for other paths. The query API's router makes either a
/// `Route` (`Search` or `Immediate`).
pub fn route(req: &Request, path: &str, limits: &SearchLimits) -> Option<Result<Call, Response>> {
    let params = params(req);
    let call = match path {
        "/api/search" => parse_search(&params, limits),
        "/api/search/tags" => parse_tags(&params, false, limits),
        "/api/v2/search/tags" => parse_tags(&params, true, limits),
        "/api/metrics/summary" => {
            return Some(Err(go_http_error_vary(
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
    Some(call)
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
    query_get(params, key).filter(|v| !v.is_empty())
}

fn bad(text: &str) -> Response {
    plain_vary(400, text)
}

fn parse_i32(text: &str, what: &str) -> Result<i64, Response> {
    let value = go_parse_int64(text).map_err(|e| bad(&format!("invalid {what}: {e}")))?;
    if i32::try_from(value).is_err() {
        return Err(bad(&format!(
            "invalid {what}: strconv.ParseInt: parsing {}: value out of range",
            go_quote(text)
        )));
    }
    Ok(value)
}

fn parse_atoi(text: &str, what: &str) -> Result<i64, Response> {
    go_parse_int64(text).map_err(|e| {
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

/// go-logfmt's decoder, enough for `tags=`: `key=value key="quoted \" value" flag`.
/// Positions in errors are 1-based byte columns, as go-logfmt reports them.
pub(super) fn parse_logfmt(text: &str) -> Result<Vec<(String, String)>, String> {
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
        TagValuesError::TagName(text) => go_http_error_vary(500, &text),
    })
}

/// Answers an HTTP search call. Past `timeout`: 500 `context deadline exceeded`, as Tempo.
pub async fn answer_http(
    engine: &Engine,
    tenant: &Tenant,
    call: &Call,
    gzip: bool,
    timeout: Duration,
) -> Response {
    let deadline_exceeded = |_: TimedOut| go_http_error_vary(500, DEADLINE_EXCEEDED);
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
    let mut response = json_response(body);
    if gzip {
        crate::http_response::gzip(&mut response);
    }
    response
}

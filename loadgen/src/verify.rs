//! `loadgen verify`: reads recorded traces back through `GET /api/v2/traces/{id}` and counts
//! their spans.
//!
//! The protobuf answer (`Accept: application/protobuf`) is Tempo's `TraceByIDResponse`:
//!
//! ```text
//! TraceByIDResponse { trace = 1: Trace { resource_spans = 1: ResourceSpans (OTLP) } }
//! ```
//!
//! Only the fields needed for counting are declared; prost skips the rest. Spans are counted
//! by distinct span ID among spans of the requested trace, so a duplicated span cannot hide a
//! lost one. A server that ignores `Accept` and answers JSON is counted by its `"spanId"`
//! values.

use crate::cli::{self, VerifyArgs};
use crate::http1;
use crate::json;
use crate::load::{self, RecordedTrace};
use crate::stats::{self, Percentiles};
use hdrhistogram::Histogram;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Tempo's `tempopb.TraceByIDResponse`, reduced to what counting needs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    pub trace: Option<Trace>,
}

/// Tempo's `tempopb.Trace` (JSON name `resourceSpans`, v1 name `batches`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Trace {
    #[prost(message, repeated, tag = "1")]
    pub resource_spans: Vec<CountResourceSpans>,
}

/// `opentelemetry.proto.trace.v1.ResourceSpans`, only `scope_spans`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CountResourceSpans {
    #[prost(message, repeated, tag = "2")]
    pub scope_spans: Vec<CountScopeSpans>,
}

/// `ScopeSpans`, only `spans`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CountScopeSpans {
    #[prost(message, repeated, tag = "2")]
    pub spans: Vec<CountSpan>,
}

/// `Span`, only the IDs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CountSpan {
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
}

/// Distinct span IDs of `trace_id` in a protobuf `TraceByIDResponse`.
pub fn count_spans_protobuf(body: &[u8], trace_id: &[u8; 16]) -> Result<u32, String> {
    use prost::Message;
    let response = TraceByIdResponse::decode(body)
        .map_err(|e| format!("undecodable TraceByIDResponse: {e}"))?;
    let Some(trace) = response.trace else {
        return Ok(0);
    };
    let mut ids = HashSet::new();
    for rs in &trace.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                if span.trace_id.as_slice() == trace_id.as_slice() {
                    ids.insert(span.span_id.clone());
                }
            }
        }
    }
    Ok(u32::try_from(ids.len()).unwrap_or(u32::MAX))
}

/// Distinct `"spanId":"..."` values in an OTLP-JSON answer (fallback for servers that ignore
/// `Accept: application/protobuf`).
pub fn count_spans_json(body: &[u8]) -> u32 {
    const KEY: &[u8] = b"\"spanId\"";
    let mut ids = HashSet::new();
    let mut rest = body;
    while let Some(at) = rest.windows(KEY.len()).position(|w| w == KEY) {
        rest = rest.get(at + KEY.len()..).unwrap_or_default();
        let value_start = rest.iter().position(|&b| b == b'"');
        let Some(start) = value_start else { break };
        // Skip the `:` and whitespace; the value is the next quoted string.
        if rest.get(..start).is_some_and(|gap| {
            gap.iter()
                .any(|&b| !matches!(b, b':' | b' ' | b'\t' | b'\n' | b'\r'))
        }) {
            continue;
        }
        rest = rest.get(start + 1..).unwrap_or_default();
        let Some(end) = rest.iter().position(|&b| b == b'"') else {
            break;
        };
        if end > 0 {
            ids.insert(rest.get(..end).unwrap_or_default().to_vec());
        }
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    u32::try_from(ids.len()).unwrap_or(u32::MAX)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Not looked up yet.
    Pending,
    /// Distinct spans found (0 = an empty trace).
    Found(u32),
    /// 404.
    NotFound,
    Error(String),
}

/// Interprets one trace-by-ID answer. Pure.
pub fn interpret(response: &http1::Response, trace_id: &[u8; 16]) -> Lookup {
    match response.status {
        200 => {
            let json = response
                .content_type
                .as_deref()
                .is_some_and(|ct| ct.contains("json"));
            if json {
                Lookup::Found(count_spans_json(&response.body))
            } else {
                match count_spans_protobuf(&response.body, trace_id) {
                    Ok(n) => Lookup::Found(n),
                    Err(e) => Lookup::Error(e),
                }
            }
        }
        404 => Lookup::NotFound,
        status => {
            let excerpt: String = String::from_utf8_lossy(&response.body)
                .chars()
                .take(200)
                .collect();
            Lookup::Error(format!("HTTP {status}: {}", excerpt.trim()))
        }
    }
}

fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifySummary {
    pub traces: u64,
    pub complete: u64,
    pub partial: u64,
    pub missing: u64,
    pub lookup_errors: u64,
    /// Traces with more distinct spans than recorded (not a loss, but suspicious).
    pub over: u64,
    pub spans_expected: u64,
    pub spans_found: u64,
    pub lost_spans: u64,
    pub latency: Percentiles,
    pub elapsed: Duration,
    /// Up to a few examples of what went wrong, for the report.
    pub examples: Vec<String>,
}

const EXAMPLES_MAX: usize = 5;

impl VerifySummary {
    pub fn lost_traces(&self) -> u64 {
        self.partial + self.missing
    }

    pub fn ok(&self) -> bool {
        self.lost_traces() == 0 && self.lookup_errors == 0
    }

    fn from_lookups(traces: &[RecordedTrace], lookups: &[Lookup]) -> VerifySummary {
        let mut summary = VerifySummary {
            traces: traces.len() as u64,
            ..VerifySummary::default()
        };
        for (trace, lookup) in traces.iter().zip(lookups) {
            summary.spans_expected += u64::from(trace.spans);
            let mut example = |what: String| {
                if summary.examples.len() < EXAMPLES_MAX {
                    summary
                        .examples
                        .push(format!("{} {what}", hex(&trace.trace_id)));
                }
            };
            match lookup {
                Lookup::Found(n) if *n >= trace.spans => {
                    summary.complete += 1;
                    summary.spans_found += u64::from(*n);
                    if *n > trace.spans {
                        summary.over += 1;
                    }
                }
                Lookup::Found(0) | Lookup::NotFound => {
                    summary.missing += 1;
                    summary.lost_spans += u64::from(trace.spans);
                    example(format!("missing (expected {} spans)", trace.spans));
                }
                Lookup::Found(n) => {
                    summary.partial += 1;
                    summary.spans_found += u64::from(*n);
                    summary.lost_spans += u64::from(trace.spans - n);
                    example(format!("partial: {n} of {} spans", trace.spans));
                }
                Lookup::Error(e) => {
                    summary.lookup_errors += 1;
                    example(format!("lookup failed: {e}"));
                }
                Lookup::Pending => {
                    summary.lookup_errors += 1;
                    example("never looked up".to_string());
                }
            }
        }
        summary
    }

    pub fn render_text(&self) -> String {
        let mut out = format!(
            "verified {} traces in {:.2}s: complete {}, partial {}, missing {}, lookup errors {}\n\
             spans: expected {}, found {}, lost {}\n",
            stats::thousands(self.traces),
            self.elapsed.as_secs_f64(),
            stats::thousands(self.complete),
            stats::thousands(self.partial),
            stats::thousands(self.missing),
            stats::thousands(self.lookup_errors),
            stats::thousands(self.spans_expected),
            stats::thousands(self.spans_found),
            stats::thousands(self.lost_spans),
        );
        if self.over > 0 {
            out.push_str(&format!(
                "note: {} traces came back with more spans than recorded\n",
                stats::thousands(self.over)
            ));
        }
        if self.latency.count > 0 {
            out.push_str(&format!("lookup latency {}\n", self.latency.line()));
        }
        for example in &self.examples {
            out.push_str(&format!("  e.g. {example}\n"));
        }
        out
    }

    pub fn add_json(&self, object: json::Object) -> json::Object {
        let object = object
            .u64("traces", self.traces)
            .u64("complete", self.complete)
            .u64("partial", self.partial)
            .u64("missing", self.missing)
            .u64("lookup_errors", self.lookup_errors)
            .u64("over", self.over)
            .u64("spans_expected", self.spans_expected)
            .u64("spans_found", self.spans_found)
            .u64("lost_spans", self.lost_spans)
            .u64("lost_traces", self.lost_traces())
            .f64("duration_s", self.elapsed.as_secs_f64());
        self.latency.add_json(object, "")
    }
}

/// How to reach the server for lookups.
#[derive(Clone, Debug)]
pub struct LookupTarget {
    pub http: String,
    pub tenant: Option<String>,
    pub concurrency: usize,
    pub request_timeout: Duration,
    pub grace: Duration,
    pub quiet: bool,
}

/// Looks every index of `todo` up once, `concurrency` at a time.
async fn lookup_pass(
    target: &LookupTarget,
    traces: &Arc<Vec<RecordedTrace>>,
    todo: Vec<usize>,
    lookups: &Arc<Mutex<Vec<Lookup>>>,
    latency: &Arc<Mutex<Histogram<u64>>>,
) {
    let todo = Arc::new(todo);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..target.concurrency.min(todo.len().max(1)) {
        let (target, traces, todo, next, done) = (
            target.clone(),
            traces.clone(),
            todo.clone(),
            next.clone(),
            done.clone(),
        );
        let (lookups, latency) = (lookups.clone(), latency.clone());
        tasks.spawn(async move {
            let mut client = http1::Client::new(&target.http);
            let mut local = stats::new_latency_histogram();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(&index) = todo.get(n) else { break };
                let trace = traces[index];
                let path = format!("/api/v2/traces/{}", hex(&trace.trace_id));
                let mut headers = vec![("Accept", "application/protobuf")];
                if let Some(tenant) = &target.tenant {
                    headers.push(("X-Scope-OrgID", tenant.as_str()));
                }
                let started = Instant::now();
                let result =
                    tokio::time::timeout(target.request_timeout, client.get(&path, &headers)).await;
                let lookup = match result {
                    Ok(Ok(response)) => {
                        local.saturating_record(started.elapsed().as_micros().max(1) as u64);
                        interpret(&response, &trace.trace_id)
                    }
                    Ok(Err(e)) => {
                        client = http1::Client::new(&target.http);
                        Lookup::Error(e.to_string())
                    }
                    Err(_) => {
                        client = http1::Client::new(&target.http);
                        Lookup::Error(format!("no answer within {:?}", target.request_timeout))
                    }
                };
                lookups.lock().unwrap_or_else(|e| e.into_inner())[index] = lookup;
                done.fetch_add(1, Ordering::Relaxed);
            }
            let _ = latency
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(&local);
        });
    }
    let progress = (!target.quiet).then(|| {
        let (done, total) = (done.clone(), todo.len());
        tokio::spawn(async move {
            let second = Duration::from_secs(1);
            let mut ticks = tokio::time::interval_at((Instant::now() + second).into(), second);
            loop {
                ticks.tick().await;
                eprintln!(
                    "verify: {} / {} traces looked up",
                    stats::thousands(done.load(Ordering::Relaxed) as u64),
                    stats::thousands(total as u64)
                );
            }
        })
    });
    while tasks.join_next().await.is_some() {}
    if let Some(progress) = progress {
        progress.abort();
    }
}

fn incomplete(traces: &[RecordedTrace], lookups: &[Lookup]) -> Vec<usize> {
    traces
        .iter()
        .zip(lookups)
        .enumerate()
        .filter(|(_, (trace, lookup))| !matches!(lookup, Lookup::Found(n) if *n >= trace.spans))
        .map(|(i, _)| i)
        .collect()
}

/// Looks every trace up; re-reads incomplete ones until `grace` runs out.
pub async fn verify_traces(target: &LookupTarget, traces: Vec<RecordedTrace>) -> VerifySummary {
    let start = Instant::now();
    let traces = Arc::new(traces);
    let lookups = Arc::new(Mutex::new(vec![Lookup::Pending; traces.len()]));
    let latency = Arc::new(Mutex::new(stats::new_latency_histogram()));
    let mut todo: Vec<usize> = (0..traces.len()).collect();
    let grace_end = start + target.grace;
    let retry_pause = Duration::from_millis(500);
    loop {
        lookup_pass(target, &traces, todo, &lookups, &latency).await;
        let current = lookups.lock().unwrap_or_else(|e| e.into_inner()).clone();
        todo = incomplete(&traces, &current);
        if todo.is_empty() || Instant::now() + retry_pause >= grace_end {
            break;
        }
        if !target.quiet {
            eprintln!(
                "verify: {} traces incomplete, re-reading (grace ends in {:.1}s)",
                stats::thousands(todo.len() as u64),
                grace_end
                    .saturating_duration_since(Instant::now())
                    .as_secs_f64()
            );
        }
        tokio::time::sleep(retry_pause).await;
    }
    let lookups = lookups.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut summary = VerifySummary::from_lookups(&traces, &lookups);
    summary.latency = Percentiles::of(&latency.lock().unwrap_or_else(|e| e.into_inner()));
    summary.elapsed = start.elapsed();
    summary
}

/// Reads a record file.
pub fn read_record_file(path: &std::path::Path) -> Result<Vec<RecordedTrace>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            load::parse_record_line(line).map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))
        })
        .collect()
}

/// `loadgen verify ...`.
pub fn main(args: VerifyArgs) -> u8 {
    let traces = match read_record_file(&args.record) {
        Ok(traces) => traces,
        Err(e) => {
            eprintln!("loadgen verify: {e}");
            return cli::EXIT_USAGE;
        }
    };
    let runtime = match load::runtime(1) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen verify: {e}");
            return cli::EXIT_USAGE;
        }
    };
    let target = LookupTarget {
        http: args.http.clone(),
        tenant: args.tenant.clone(),
        concurrency: args.concurrency,
        request_timeout: args.request_timeout,
        grace: args.grace,
        quiet: args.quiet,
    };
    if !args.quiet {
        eprintln!(
            "verify: {} traces from {} against http://{}",
            stats::thousands(traces.len() as u64),
            args.record.display(),
            args.http
        );
    }
    let summary = runtime.block_on(verify_traces(&target, traces));
    runtime.shutdown_background();
    eprint!("{}", summary.render_text());
    let result = summary
        .add_json(json::Object::new().str("mode", "verify"))
        .finish();
    println!("RESULT {result}");
    if summary.ok() {
        cli::EXIT_OK
    } else {
        eprintln!(
            "loadgen verify: FAILED: {} traces lost ({} spans), {} lookup errors",
            stats::thousands(summary.lost_traces()),
            stats::thousands(summary.lost_spans),
            stats::thousands(summary.lookup_errors)
        );
        cli::EXIT_FAILED
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    const ID: [u8; 16] = [7; 16];

    fn response(spans: &[(&[u8; 16], u8)]) -> Vec<u8> {
        let spans = spans
            .iter()
            .map(|(trace, span)| CountSpan {
                trace_id: trace.to_vec(),
                span_id: vec![*span; 8],
            })
            .collect();
        TraceByIdResponse {
            trace: Some(Trace {
                resource_spans: vec![CountResourceSpans {
                    scope_spans: vec![CountScopeSpans { spans }],
                }],
            }),
        }
        .encode_to_vec()
    }

    fn http(status: u16, content_type: &str, body: Vec<u8>) -> http1::Response {
        http1::Response {
            status,
            content_type: Some(content_type.to_string()),
            body,
        }
    }

    #[test]
    fn counts_distinct_spans_of_the_trace() {
        let other = [9u8; 16];
        let body = response(&[(&ID, 1), (&ID, 2), (&ID, 2), (&other, 3)]);
        assert_eq!(count_spans_protobuf(&body, &ID), Ok(2));
        assert_eq!(count_spans_protobuf(&[], &ID), Ok(0), "empty trace");
        assert!(count_spans_protobuf(&[0x0a, 0x05, 1], &ID).is_err());
    }

    #[test]
    fn counts_full_otlp_spans_too() {
        // The real answer carries full OTLP ResourceSpans; the reduced messages must read them.
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
        #[derive(Clone, PartialEq, prost::Message)]
        struct FullTrace {
            #[prost(message, repeated, tag = "1")]
            resource_spans: Vec<ResourceSpans>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        struct FullResponse {
            #[prost(message, optional, tag = "1")]
            trace: Option<FullTrace>,
        }
        let spans = (0..5u8)
            .map(|i| Span {
                trace_id: ID.to_vec(),
                span_id: vec![i; 8],
                name: "GET /".into(),
                ..Default::default()
            })
            .collect();
        let body = FullResponse {
            trace: Some(FullTrace {
                resource_spans: vec![ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }),
        }
        .encode_to_vec();
        assert_eq!(count_spans_protobuf(&body, &ID), Ok(5));
    }

    #[test]
    fn json_fallback_counts_span_ids() {
        let body = br#"{"trace":{"resourceSpans":[{"scopeSpans":[{"spans":[
            {"traceId":"x","spanId":"AAAAAAAAAAE=","name":"a"},
            {"traceId":"x","spanId" : "AAAAAAAAAAI="},
            {"traceId":"x","spanId":"AAAAAAAAAAI="}]}]}]}}"#;
        assert_eq!(count_spans_json(body), 2);
        assert_eq!(count_spans_json(br#"{"trace":{}}"#), 0);
    }

    #[test]
    fn interpret_statuses() {
        let body = response(&[(&ID, 1)]);
        assert_eq!(
            interpret(&http(200, "application/protobuf", body), &ID),
            Lookup::Found(1)
        );
        assert_eq!(
            interpret(&http(404, "text/plain", vec![]), &ID),
            Lookup::NotFound
        );
        assert!(matches!(
            interpret(&http(500, "text/plain", b"boom".to_vec()), &ID),
            Lookup::Error(e) if e == "HTTP 500: boom"
        ));
        assert_eq!(
            interpret(
                &http(200, "application/json", br#"{"trace":{}}"#.to_vec()),
                &ID
            ),
            Lookup::Found(0)
        );
    }

    #[test]
    fn summary_classifies_loss() {
        let trace = |spans| RecordedTrace {
            trace_id: ID,
            spans,
        };
        let traces = [
            trace(10),
            trace(10),
            trace(10),
            trace(10),
            trace(10),
            trace(10),
        ];
        let lookups = [
            Lookup::Found(10),
            Lookup::Found(12),
            Lookup::Found(4),
            Lookup::Found(0),
            Lookup::NotFound,
            Lookup::Error("x".into()),
        ];
        let s = VerifySummary::from_lookups(&traces, &lookups);
        assert_eq!(
            (s.complete, s.over, s.partial, s.missing, s.lookup_errors),
            (2, 1, 1, 2, 1)
        );
        assert_eq!(s.spans_expected, 60);
        assert_eq!(s.lost_spans, 6 + 10 + 10);
        assert_eq!(s.lost_traces(), 3);
        assert!(!s.ok());
        assert_eq!(incomplete(&traces, &lookups), vec![2, 3, 4, 5]);
        let all_good = VerifySummary::from_lookups(&traces[..2], &lookups[..2]);
        assert!(all_good.ok());
    }
}

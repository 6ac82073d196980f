#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failure"
)]

//! The plan against the exact evaluator on generated traces: every trace the evaluator
//! returns is a strong candidate and lies in a page its filter lets through (soundness);
//! for queries the plan models fully, the strong candidates are exactly the matches.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, TracesData};
use prost::Message;

use super::*;
use crate::block::{open_bytes, page_bytes, BlockWriter};
use crate::ids::TraceId;
use crate::otlp;
use crate::traceql::eval::TraceView;

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

const SERVICES: &[&str] = &["x", "x-db", "frontend", "cart", "payments", "queue"];
const NAMES: &[&str] = &["GET /", "POST /pay", "SELECT", "publish", "work", ""];

fn trace_id(i: u32) -> TraceId {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&i.to_be_bytes());
    id[15] = 1;
    id[8..12].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
    TraceId(id)
}

/// Trace `i`: 1-3 resources, 1-10 spans in a random tree, mixed kinds, statuses
/// (absent, unset, ok, error, an unknown code), typed attributes, durations.
fn trace(i: u32, rng: &mut Rng) -> ExportTraceServiceRequest {
    let id = trace_id(i);
    let base = 1_700_000_000_000_000_000u64 + u64::from(i) * 1_000_000;
    let span_total = 1 + rng.below(10) as usize;
    let resource_total = 1 + rng.below(3) as usize;
    let mut resource_spans: Vec<ResourceSpans> = (0..resource_total)
        .map(|_| {
            let mut attributes = vec![kv(
                "service.name",
                any_value::Value::StringValue(rng.pick(SERVICES).to_string()),
            )];
            if rng.below(3) == 0 {
                attributes.push(kv(
                    "deployment.environment",
                    any_value::Value::StringValue(rng.pick(&["prod", "dev"]).to_string()),
                ));
            }
            if rng.below(10) == 0 {
                // A non-string service name: resource.service.name = "x" must not match.
                attributes[0] = kv("service.name", any_value::Value::IntValue(7));
            }
            ResourceSpans {
                resource: Some(Resource {
                    attributes,
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans::default()],
                ..Default::default()
            }
        })
        .collect();
    for s in 0..span_total {
        let parent = if s == 0 || rng.below(8) == 0 {
            Vec::new()
        } else {
            (u64::from(i) << 16 | (rng.below(s as u64) + 1))
                .to_be_bytes()
                .to_vec()
        };
        let start = base + rng.below(1_000_000);
        let mut attributes = Vec::new();
        if rng.below(4) != 0 {
            let code = [200, 404, 500, 503][rng.below(4) as usize];
            attributes.push(kv("http.status_code", any_value::Value::IntValue(code)));
        }
        if rng.below(2) == 0 {
            attributes.push(kv(
                "http.method",
                any_value::Value::StringValue(rng.pick(&["GET", "POST"]).to_string()),
            ));
        }
        if rng.below(6) == 0 {
            attributes.push(kv("flag", any_value::Value::BoolValue(rng.below(2) == 0)));
        }
        if rng.below(12) == 0 {
            // A span attribute shadowing the resource's for unscoped reads.
            attributes.push(kv(
                "service.name",
                any_value::Value::StringValue(rng.pick(SERVICES).to_string()),
            ));
        }
        if rng.below(20) == 0 {
            // A duplicate key: the first one counts.
            attributes.push(kv(
                "http.method",
                any_value::Value::StringValue("PUT".into()),
            ));
        }
        let status = match rng.below(6) {
            0 => None,
            1 => Some(0),
            2 | 3 => Some(2),
            4 => Some(1),
            _ => Some(3),
        };
        let span = Span {
            trace_id: id.0.to_vec(),
            span_id: (u64::from(i) << 16 | (s as u64 + 1)).to_be_bytes().to_vec(),
            parent_span_id: parent,
            name: rng.pick(NAMES).to_string(),
            kind: [0, 1, 2, 3, 4, 5, 9][rng.below(7) as usize],
            start_time_unix_nano: start,
            end_time_unix_nano: start + rng.below(2_000_000_000),
            attributes,
            status: status.map(|code| Status {
                code,
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = rng.below(resource_total as u64) as usize;
        resource_spans[r].scope_spans[0].spans.push(span);
    }
    resource_spans.retain(|rs| !rs.scope_spans[0].spans.is_empty());
    ExportTraceServiceRequest { resource_spans }
}

/// A block of `count` generated traces: `(block bytes, payloads by trace)`.
fn block(count: u32) -> (Vec<u8>, Vec<(TraceId, Vec<u8>)>) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut traces: Vec<(TraceId, Vec<u8>)> = (0..count)
        .map(|i| {
            let request = trace(i, &mut rng).encode_to_vec();
            let batch = otlp::split_export(&request)
                .unwrap()
                .into_iter()
                .next()
                .unwrap();
            (trace_id(i), batch.payload)
        })
        .collect();
    traces.sort_by_key(|(id, _)| *id);
    let mut writer = BlockWriter::new();
    for (id, payload) in &traces {
        writer.add_trace(*id, payload);
    }
    (writer.finish().0, traces)
}

fn matches(evaluator: &Evaluator, payload: &[u8], min_ns: u64, max_ns: u64) -> bool {
    let data = TracesData::decode(payload).unwrap();
    let view = TraceView::new(&data.resource_spans);
    let duration = view.end_ns.saturating_sub(view.start_ns);
    if (min_ns > 0 && duration < min_ns) || (max_ns > 0 && duration > max_ns) {
        return false;
    }
    !evaluator.eval(&view).is_empty()
}

/// `(query, the plan models it fully: strong candidates == matches)`.
const QUERIES: &[(&str, bool)] = &[
    (r#"{ resource.service.name = "x" && status = error }"#, true),
    (r#"{ resource.service.name = "x" }"#, true),
    (r#"{ resource.service.name != "x" }"#, true),
    (r#"{ .service.name = "x" }"#, true),
    (r#"{ span.http.status_code >= 500 }"#, true),
    (r#"{ span.http.status_code >= 500 } | count() > 2"#, true),
    (r#"{ 500 <= span.http.status_code }"#, false),
    (
        r#"{ .http.status_code != 200 && .http.status_code < 600 }"#,
        false,
    ),
    (
        r#"{ span.http.status_code = 404 || name = "SELECT" }"#,
        true,
    ),
    (r#"{ span.http.method = "GET" && kind = server }"#, true),
    (r#"{ !(span.http.method = "GET") }"#, true),
    (r#"{ span.flag = true }"#, true),
    (r#"{ status = unset }"#, true),
    (r#"{ kind = unspecified }"#, true),
    (r#"{ name = "" }"#, true),
    (r#"{ name =~ "GET.*" }"#, true),
    (r#"{ duration > 1s }"#, true),
    (r#"{ traceDuration > 1500ms }"#, true),
    (r#"{ rootServiceName = "frontend" }"#, true),
    (r#"{ trace:rootName = "GET /" }"#, true),
    (
        r#"{ resource.deployment.environment = "prod" && status = ok }"#,
        true,
    ),
    (
        r#"{ resource.service.name = "x" } >> { resource.service.name = "x-db" && status = error }"#,
        false,
    ),
    (
        r#"{ resource.service.name = "x" } && { status = error }"#,
        false,
    ),
    (
        r#"{ resource.service.name = "queue" } || { name = "publish" }"#,
        false,
    ),
    (r#"{ } !> { status = error }"#, false),
    (
        r#"{ status = error } | by(resource.service.name) | count() >= 2"#,
        false,
    ),
    (
        r#"{ span.http.status_code > 400 } | select(span.http.method)"#,
        false,
    ),
    (r#"{ event.exception.message = "x" }"#, false),
    (r#"{ span.http.status_code + 1 > 500 }"#, false),
    (r#"{ }"#, true),
];

#[test]
fn plans_keep_every_match_and_skip_the_rest() {
    let (bytes, traces) = block(3000);
    let index = open_bytes(&bytes).unwrap();
    assert!(
        index.pages.len() > 4,
        "want several pages, got {}",
        index.pages.len()
    );
    let by_id: std::collections::HashMap<TraceId, &Vec<u8>> =
        traces.iter().map(|(id, p)| (*id, p)).collect();
    for &(text, exact) in QUERIES {
        let query = crate::traceql::compile(text).unwrap();
        let evaluator = Evaluator::new(query.clone()).unwrap();
        let plan = Plan::new(&query, 0, 0).unwrap();
        let (mut matched, mut strong, mut pages_read) = (0, 0, 0);
        for (number, entry) in index.pages.iter().enumerate() {
            let view = PageView::decode(page_bytes(&bytes, entry).unwrap()).unwrap();
            let ids = view.trace_ids().unwrap();
            let scan = plan.scan(&view).unwrap();
            let page_open = plan.page_may_match(index.page_filter(number));
            pages_read += usize::from(page_open);
            for (position, id) in ids.iter().enumerate() {
                let candidate = scan.candidates.iter().find(|c| c.index == position);
                let is_match = matches(&evaluator, by_id[id], 0, 0);
                if is_match {
                    matched += 1;
                    assert!(page_open, "{text}: page {number} skipped but holds {id}");
                    assert!(
                        plan.payload_may_match(&[by_id[id].as_slice()]),
                        "{text}: the bytes of {id} were judged not to match"
                    );
                    assert!(
                        candidate.is_some_and(|c| c.strong),
                        "{text}: {id} matches but is not a strong candidate"
                    );
                }
                if candidate.is_some_and(|c| c.strong) {
                    strong += 1;
                    if exact {
                        assert!(is_match, "{text}: {id} is a candidate but does not match");
                    }
                }
            }
        }
        assert!(strong >= matched);
        eprintln!(
            "{text}: {matched} matches, {strong} strong candidates, {pages_read}/{} pages",
            index.pages.len()
        );
    }
}

#[test]
fn duration_bounds_rule_out_traces() {
    let (bytes, traces) = block(600);
    let index = open_bytes(&bytes).unwrap();
    let by_id: std::collections::HashMap<TraceId, &Vec<u8>> =
        traces.iter().map(|(id, p)| (*id, p)).collect();
    let query = crate::traceql::compile("{ }").unwrap();
    let evaluator = Evaluator::new(query.clone()).unwrap();
    let (min_ns, max_ns) = (500_000_000, 1_500_000_000);
    let plan = Plan::new(&query, min_ns, max_ns).unwrap();
    for entry in &index.pages {
        let view = PageView::decode(page_bytes(&bytes, entry).unwrap()).unwrap();
        let ids = view.trace_ids().unwrap();
        let scan = plan.scan(&view).unwrap();
        for (position, id) in ids.iter().enumerate() {
            let strong = scan
                .candidates
                .iter()
                .any(|c| c.index == position && c.strong);
            assert_eq!(
                strong,
                matches(&evaluator, by_id[id], min_ns, max_ns),
                "{id}"
            );
        }
    }
}

#[test]
fn selective_queries_skip_pages() {
    // A service no page holds: no page is read.
    let (bytes, traces) = block(3000);
    let index = open_bytes(&bytes).unwrap();
    let query = crate::traceql::compile(r#"{ resource.service.name = "nowhere" }"#).unwrap();
    let plan = Plan::new(&query, 0, 0).unwrap();
    let open = (0..index.pages.len())
        .filter(|&n| plan.page_may_match(index.page_filter(n)))
        .count();
    assert!(
        open <= 1,
        "{open} of {} pages read for an absent service",
        index.pages.len()
    );
    // Nor do the bytes of a trace lacking it.
    assert!(!plan.payload_may_match(&[traces[0].1.as_slice()]));
    // Rebuilding candidates gives back the stored payloads.
    let entry = &index.pages[0];
    let view = PageView::decode(page_bytes(&bytes, entry).unwrap()).unwrap();
    let all = view.traces().unwrap();
    let some = view.rebuild(&[1, 3]).unwrap();
    assert_eq!(some, vec![all[1].clone(), all[3].clone()]);
    assert!(view.rebuild(&[3, 1]).is_err());
}

/// One span of service `service` named `name`, encoded as the WAL holds it.
fn one_span(service: &str, name: &str, attrs: Vec<KeyValue>) -> Vec<u8> {
    TracesData {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv(
                    "service.name",
                    any_value::Value::StringValue(service.to_string()),
                )],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![7; 16],
                    span_id: vec![8; 8],
                    name: name.to_string(),
                    attributes: attrs,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// The byte check looks for strings as protobuf frames them (tag, length, bytes): text that
/// only occurs inside another string does not pass, a string of any length that is there does.
#[test]
fn payload_check_matches_framed_strings() {
    let plan = |q: &str| Plan::new(&crate::traceql::compile(q).unwrap(), 0, 0).unwrap();
    let service_x = plan(r#"{ resource.service.name = "x" }"#);
    assert!(service_x.payload_may_match(&[&one_span("x", "work", Vec::new())]));
    // "x" is in "x-db" and in the name, but no string is exactly "x".
    assert!(!service_x.payload_may_match(&[&one_span("x-db", "x-ray", Vec::new())]));

    let long = "l".repeat(300);
    let named = plan(&format!(r#"{{ name = "{long}" }}"#));
    assert!(named.payload_may_match(&[&one_span("x", &long, Vec::new())]));
    assert!(!named.payload_may_match(&[&one_span("x", &long[1..], Vec::new())]));
    // A string value of that text is not a span name.
    let attr = vec![kv("note", any_value::Value::StringValue(long.clone()))];
    assert!(!named.payload_may_match(&[&one_span("x", "work", attr)]));

    // An attribute's key and value, in any of the trace's parts.
    let attr = plan(r#"{ span.db.system = "postgresql" && resource.service.name = "x" }"#);
    let db = vec![kv(
        "db.system",
        any_value::Value::StringValue("postgresql".into()),
    )];
    let with_db = one_span("cart", "q", db);
    let service = one_span("x", "work", Vec::new());
    assert!(attr.payload_may_match(&[&with_db, &service]));
    assert!(!attr.payload_may_match(&[&with_db]));
    assert!(!attr.payload_may_match(&[&service]));
}

/// Integer comparisons are judged on the bytes after the framed key: a trace whose only
/// `http.status_code` is 200 does not pass `>= 500`; a double or string value may.
#[test]
fn payload_check_compares_integers() {
    let plan = |q: &str| Plan::new(&crate::traceql::compile(q).unwrap(), 0, 0).unwrap();
    let code = |v: any_value::Value| one_span("x", "work", vec![kv("http.status_code", v)]);
    let (ok, failed) = (
        code(any_value::Value::IntValue(200)),
        code(any_value::Value::IntValue(503)),
    );
    let negative = code(any_value::Value::IntValue(-7));
    let huge = code(any_value::Value::IntValue(i64::MAX));
    for q in [
        "{ span.http.status_code >= 500 }",
        "{ 500 <= span.http.status_code }",
        "{ .http.status_code > 499 } | count() > 0",
    ] {
        let p = plan(q);
        assert!(!p.payload_may_match(&[&ok]), "{q}");
        assert!(p.payload_may_match(&[&failed]), "{q}");
        assert!(p.payload_may_match(&[&ok, &failed]), "{q}");
        assert!(p.payload_may_match(&[&huge]), "{q}");
        assert!(!p.payload_may_match(&[&negative]), "{q}");
        // Not an integer: the check cannot tell.
        assert!(p.payload_may_match(&[&code(any_value::Value::DoubleValue(1.0))]));
        assert!(p.payload_may_match(&[&code(any_value::Value::StringValue("1".into()))]));
    }
    let p = plan("{ span.http.status_code = -7 }");
    assert!(p.payload_may_match(&[&negative]));
    assert!(!p.payload_may_match(&[&ok]));
    let p = plan("{ span.http.status_code != 200 }");
    assert!(!p.payload_may_match(&[&ok]));
    assert!(p.payload_may_match(&[&failed]));
    // No such key at all.
    assert!(!plan("{ span.other < 5 }").payload_may_match(&[&ok]));
}

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failure"
)]

//! The plan against the exact evaluator on generated traces: every trace the evaluator
//! returns is a strong candidate and lies in a page its filter lets through (soundness);
//! for queries the plan models fully, the strong candidates are exactly the matches.

use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, TracesData};
use prost::Message;

use super::corpus::{block, kv};
use super::*;
use crate::block::{open_bytes, page_bytes};
use crate::ids::TraceId;
use crate::traceql::eval::TraceView;

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

use std::sync::Arc;

use super::*;
use crate::ids::TraceId;
use crate::traceql::compile;
use crate::traceql::eval::Value;
use crate::traceql::{Field, Scope};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, TracesData};
use prost::Message;

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
    let Found::Traces(found) = run(&Arc::new(Job::Search(request.clone())), &traces).found else {
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

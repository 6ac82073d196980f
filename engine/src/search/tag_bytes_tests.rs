use std::sync::Arc;

use super::*;
use crate::ids::TraceId;
use crate::traceql::{compile, Attribute, Field, Query, Scope};
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, TracesData};
use prost::Message;

fn kv(key: &str, value: Option<any_value::Value>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: value.map(|v| AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(text: &str) -> Option<any_value::Value> {
    Some(any_value::Value::StringValue(text.to_string()))
}

/// Trace `i`: a few resources and scopes, spans with events and links; values vary with
/// `i` so that traces add different names and values.
fn trace(i: u8) -> (TraceId, Vec<u8>) {
    let n = i64::from(i);
    let span = |sid: u8| Span {
        trace_id: vec![i; 16],
        span_id: vec![sid; 8],
        name: format!("op-{}", sid % 3),
        start_time_unix_nano: 1_000 + u64::from(i) * 10 + u64::from(sid),
        end_time_unix_nano: 2_000 + u64::from(i) * 10,
        attributes: vec![
            kv("http.method", s(["GET", "POST"][usize::from(sid % 2)])),
            kv(
                "http.status_code",
                Some(any_value::Value::IntValue(200 + n)),
            ),
            kv(
                "ratio",
                Some(any_value::Value::DoubleValue(0.5 * f64::from(sid))),
            ),
            kv(
                "flag",
                Some(any_value::Value::BoolValue(sid.is_multiple_of(2))),
            ),
            kv("empty", None),
            kv("http.method", s("DUPLICATE")),
            kv(
                "list",
                Some(any_value::Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue { value: s("a") }],
                })),
            ),
            kv(&format!("span.only.{}", i % 4), s("x")),
        ],
        events: vec![Event {
            name: "ev".into(),
            attributes: vec![
                kv("event.key", s(&format!("e{}", sid))),
                kv("event.key", s("second")),
            ],
            ..Default::default()
        }],
        links: if sid == 1 {
            vec![Link {
                trace_id: vec![9; 16],
                span_id: vec![9; 8],
                attributes: vec![kv("link.key", Some(any_value::Value::IntValue(n)))],
                ..Default::default()
            }]
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    let data = TracesData {
        resource_spans: vec![
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", s(&format!("svc-{}", i % 5))),
                        kv("host", s("h1")),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "lib".into(),
                        attributes: vec![kv("scope.key", s("v"))],
                        ..Default::default()
                    }),
                    spans: vec![span(1), span(2)],
                    ..Default::default()
                }],
                ..Default::default()
            },
            // No Resource, an empty scope, a span without attributes.
            ResourceSpans {
                resource: None,
                scope_spans: vec![
                    ScopeSpans::default(),
                    ScopeSpans {
                        spans: vec![Span {
                            trace_id: vec![i; 16],
                            span_id: vec![7; 8],
                            start_time_unix_nano: 1_500,
                            end_time_unix_nano: 1_600,
                            ..Default::default()
                        }],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            // A resource without spans: its attributes are not tag names.
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("orphan", s("o"))],
                    ..Default::default()
                }),
                ..Default::default()
            },
        ],
    };
    (TraceId([i; 16]), data.encode_to_vec())
}

/// A trace the page stores raw (a span ID of 4 bytes has no column).
fn raw_trace(i: u8) -> (TraceId, Vec<u8>) {
    let (id, payload) = trace(i);
    let mut data = TracesData::decode(payload.as_slice()).expect("decodes");
    data.resource_spans[0].scope_spans[0].spans[0].span_id = vec![i; 4];
    (id, data.encode_to_vec())
}

/// Values as a sorted list of (type, text): the paths find them in different orders.
fn value_set(found: &Found) -> Vec<(String, String)> {
    let Found::TagValues(values) = found else {
        panic!("{found:?}")
    };
    let mut out: Vec<(String, String)> = values
        .iter()
        .map(|v| (v.type_name().to_string(), v.to_text()))
        .collect();
    out.sort();
    out
}

#[test]
fn page_columns_give_the_decoded_answers() {
    use crate::block::{open_bytes, page_bytes, BlockWriter, PageView};
    let mut traces: Vec<(TraceId, Vec<u8>)> = (1..=12).map(trace).collect();
    traces.push(raw_trace(13));
    traces.sort_by_key(|(id, _)| *id);
    let mut writer = BlockWriter::new();
    for (id, payload) in &traces {
        writer.add_trace(*id, payload);
    }
    let block = writer.finish().0;
    let index = open_bytes(&block).expect("opens");
    let mut raw_seen = 0;
    let mut run = |job: Job| -> (ShardAnswer, ShardAnswer) {
        let mut columns = ShardSearch::new(Arc::new(job.clone()));
        for entry in &index.pages {
            let view = PageView::decode(page_bytes(&block, entry).expect("page")).expect("view");
            let raw = columns
                .page_tags(&view, true)
                .expect("reads")
                .expect("the columns take the page");
            raw_seen += raw.len();
            for (id, payload) in view.rebuild(&raw).expect("rebuilds") {
                columns.offer_scanned(&id, &payload);
            }
        }
        let mut decoded_job = job;
        match &mut decoded_job {
            Job::TagNames { query, .. } | Job::TagValues { query, .. } => *query = every_match(),
            Job::Search(_) | Job::Metrics(_) => unreachable!(),
        }
        let mut decoded = ShardSearch::new(Arc::new(decoded_job));
        for (id, payload) in &traces {
            decoded.offer(id, payload);
        }
        (columns.finish(), decoded.finish())
    };
    let (columns, decoded) = run(Job::TagNames {
        scopes: TagScope::ALL.to_vec(),
        query: None,
        start_ns: 0,
        end_ns: u64::MAX,
        bytes_max: TAG_BYTES_MAX,
    });
    assert_eq!(columns.found, decoded.found);
    assert_eq!(columns.inspected_traces, decoded.inspected_traces);
    for name in [
        "http.method",
        "http.status_code",
        "ratio",
        "flag",
        "empty",
        "list",
    ]
    .into_iter()
    .chain([
        "service.name",
        "event.key",
        "link.key",
        "scope.key",
        "absent",
    ]) {
        for scope in [
            Scope::None,
            Scope::Span,
            Scope::Resource,
            Scope::Event,
            Scope::Link,
            Scope::Instrumentation,
        ] {
            let (columns, decoded) = run(Job::TagValues {
                field: Field::Attribute(Attribute {
                    scope,
                    parent: false,
                    name: name.to_string(),
                }),
                query: None,
                start_ns: 0,
                end_ns: u64::MAX,
                bytes_max: TAG_BYTES_MAX,
            });
            assert_eq!(
                value_set(&columns.found),
                value_set(&decoded.found),
                "{scope:?} {name}"
            );
        }
    }
    let (columns, decoded) = run(Job::TagValues {
        field: Field::Intrinsic(crate::traceql::Intrinsic::Name),
        query: None,
        start_ns: 0,
        end_ns: u64::MAX,
        bytes_max: TAG_BYTES_MAX,
    });
    assert_eq!(value_set(&columns.found), value_set(&decoded.found));
    assert!(raw_seen > 0, "a raw trace went through the rebuild");
}

/// A trace offered in parts (as live traces are) gives the same tags as whole.
#[test]
fn tags_of_a_trace_in_parts() {
    let job = |query| Job::TagNames {
        scopes: TagScope::ALL.to_vec(),
        query,
        start_ns: 0,
        end_ns: u64::MAX,
        bytes_max: TAG_BYTES_MAX,
    };
    let mut parts_search = ShardSearch::new(Arc::new(job(None)));
    let mut whole_search = ShardSearch::new(Arc::new(job(every_match())));
    for i in 1..=6 {
        let (id, payload) = trace(i);
        let data = TracesData::decode(payload.as_slice()).expect("decodes");
        let (first, rest) = data.resource_spans.split_at(1);
        let a = TracesData {
            resource_spans: first.to_vec(),
        }
        .encode_to_vec();
        let b = TracesData {
            resource_spans: rest.to_vec(),
        }
        .encode_to_vec();
        parts_search.offer_parts(&id, &[&a, &b]);
        whole_search.offer(&id, &payload);
    }
    let (parts, whole) = (parts_search.finish(), whole_search.finish());
    assert_eq!(parts.found, whole.found);
    assert_eq!(parts.inspected_traces, whole.inspected_traces);
    assert_eq!(parts.inspected_spans, whole.inspected_spans);
}

fn answer(job: Job) -> ShardAnswer {
    let mut search = ShardSearch::new(Arc::new(job));
    for i in 1..=12 {
        let (id, payload) = trace(i);
        // The byte path takes these payloads (else both sides would decode).
        assert!(crate::otlp::attrs::trace_attrs(&[&payload]).is_some());
        search.offer(&id, &payload);
    }
    search.finish()
}

fn every_match() -> Option<Query> {
    Some(compile("{ true }").expect("compiles"))
}

#[test]
fn tag_names_from_bytes_equal_the_decoded_ones() {
    for (start_ns, end_ns) in [(0, u64::MAX), (1_000, 1_055), (5_000, 6_000)] {
        let job = |query| Job::TagNames {
            scopes: TagScope::ALL.to_vec(),
            query,
            start_ns,
            end_ns,
            bytes_max: TAG_BYTES_MAX,
        };
        let (bytes, decoded) = (answer(job(None)), answer(job(every_match())));
        assert_eq!(bytes.found, decoded.found, "range {start_ns}..{end_ns}");
        assert_eq!(bytes.inspected_spans, decoded.inspected_spans);
        if start_ns == 0 {
            let Found::TagNames(names) = &bytes.found else {
                panic!()
            };
            assert!(names[&TagScope::Event].contains("event.key"));
            assert!(names[&TagScope::Link].contains("link.key"));
            assert!(names[&TagScope::Instrumentation].contains("scope.key"));
            assert!(!names[&TagScope::Resource].contains("orphan"));
        }
    }
    // The byte limit stops both at the same name.
    let job = |query| Job::TagNames {
        scopes: TagScope::ALL.to_vec(),
        query,
        start_ns: 0,
        end_ns: u64::MAX,
        bytes_max: 40,
    };
    let (bytes, decoded) = (answer(job(None)), answer(job(every_match())));
    assert_eq!(bytes.found, decoded.found);
    assert!(bytes.truncated && decoded.truncated);
}

#[test]
fn span_names_from_bytes_and_columns_equal_the_decoded_ones() {
    let job = |query| Job::TagValues {
        field: Field::Intrinsic(crate::traceql::Intrinsic::Name),
        query,
        start_ns: 0,
        end_ns: u64::MAX,
        bytes_max: TAG_BYTES_MAX,
    };
    let (bytes, decoded) = (answer(job(None)), answer(job(every_match())));
    assert_eq!(bytes.found, decoded.found);
    // "op-1", "op-2" and the unnamed span's "".
    assert_eq!(value_set(&bytes.found).len(), 3, "{:?}", bytes.found);
}

#[test]
fn tag_values_from_bytes_equal_the_decoded_ones() {
    let names = [
        "http.method",
        "http.status_code",
        "ratio",
        "flag",
        "empty",
        "list",
        "service.name",
        "host",
        "event.key",
        "link.key",
        "scope.key",
        "span.only.1",
        "absent",
    ];
    let scopes = [
        Scope::None,
        Scope::Span,
        Scope::Resource,
        Scope::Event,
        Scope::Link,
        Scope::Instrumentation,
    ];
    for name in names {
        for scope in scopes {
            for bytes_max in [TAG_BYTES_MAX, 12] {
                let job = |query| Job::TagValues {
                    field: Field::Attribute(Attribute {
                        scope,
                        parent: false,
                        name: name.to_string(),
                    }),
                    query,
                    start_ns: 0,
                    end_ns: u64::MAX,
                    bytes_max,
                };
                let (bytes, decoded) = (answer(job(None)), answer(job(every_match())));
                assert_eq!(bytes.found, decoded.found, "{scope:?} {name} {bytes_max}");
                assert_eq!(bytes.truncated, decoded.truncated, "{scope:?} {name}");
            }
        }
    }
}

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failure"
)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, TracesData};
use prost::Message;

use super::*;
use crate::otlp;

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn trace_id(i: u32) -> TraceId {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&i.to_be_bytes());
    id[15] = 1;
    TraceId(id)
}

/// The payload of trace `i` with `spans` spans, as the shard would store it.
fn payload(i: u32, spans: u32) -> Vec<u8> {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", Value::StringValue(format!("svc-{}", i % 3))),
                    kv("host.name", Value::StringValue("host-1".into())),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: (0..spans)
                    .map(|s| Span {
                        trace_id: trace_id(i).0.to_vec(),
                        span_id: ((u64::from(i) << 16) | (u64::from(s) + 1))
                            .to_be_bytes()
                            .to_vec(),
                        name: format!("op-{}", s % 4),
                        kind: 2,
                        start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(i) * 1000,
                        end_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(i) * 1000 + 500,
                        attributes: vec![
                            kv("http.status_code", Value::IntValue(200)),
                            kv("ok", Value::BoolValue(true)),
                        ],
                        status: Some(Status {
                            code: 1,
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let batches = otlp::split_export(&request.encode_to_vec()).unwrap();
    assert_eq!(batches.len(), 1);
    batches.into_iter().next().unwrap().payload
}

fn build(traces: u32, spans: u32) -> (Vec<u8>, BlockStats) {
    let mut writer = BlockWriter::new();
    for i in 0..traces {
        writer.add_trace(trace_id(i), &payload(i, spans));
    }
    writer.finish()
}

#[test]
fn every_trace_comes_back_byte_for_byte() {
    let (data, stats) = build(3000, 5);
    assert_eq!(stats.trace_count, 3000);
    assert_eq!(stats.span_count, 15_000);
    assert!(stats.page_count > 1, "{stats:?}");
    assert_eq!(stats.data_bytes, data.len() as u64);
    assert_eq!(stats.min_start_unix_nanos, 1_700_000_000_000_000_000);
    assert_eq!(
        stats.max_end_unix_nanos,
        1_700_000_000_000_000_000 + 2999 * 1000 + 500
    );
    let index = open_bytes(&data).unwrap();
    assert_eq!(index.footer.footer_crc32, stats.footer_crc32);
    for i in (0..3000).step_by(7) {
        let found = find_in_bytes(&data, &index, &trace_id(i)).unwrap();
        assert_eq!(found, Some(payload(i, 5)), "trace {i}");
    }
    let mut absent = 0;
    for i in 3000..4000 {
        if find_in_bytes(&data, &index, &trace_id(i))
            .unwrap()
            .is_some()
        {
            absent += 1;
        }
    }
    assert_eq!(absent, 0);
    // Far smaller than the payloads: repetitive spans compress.
    assert!(stats.data_bytes * 3 < stats.payload_bytes, "{stats:?}");
}

fn varints(page: &PageView<'_>, id: u8) -> Vec<u64> {
    let column = page.column(id).unwrap();
    let mut reader = page::Varints::new(&column, id);
    let mut values = Vec::new();
    while !reader.is_done() {
        values.push(reader.next().unwrap());
    }
    values
}

#[test]
fn columns_hold_the_span_fields() {
    let (data, _) = build(10, 3);
    let index = open_bytes(&data).unwrap();
    assert_eq!(index.pages.len(), 1);
    let page = PageView::decode(page_bytes(&data, &index.pages[0]).unwrap()).unwrap();
    page.check_columns().unwrap();
    assert_eq!((page.trace_count, page.span_count), (10, 30));
    // 2 span attributes per span (resource attributes stay in the Resource entry).
    assert_eq!(page.attr_count, 60);
    let status = page.column(page::SPAN_STATUS).unwrap();
    assert!(status.iter().all(|&s| s == 1));
    let kind = page.column(page::SPAN_KIND).unwrap();
    assert!(kind.iter().all(|&k| k == 2));
    assert!(varints(&page, page::SPAN_DURATION)
        .iter()
        .all(|&d| d == 1000));
    let lens = page.column(page::DICT_LENS).unwrap();
    let bytes = page.column(page::DICT_BYTES).unwrap();
    let dict = page::Dict::decode(&lens, &bytes).unwrap();
    let names = varints(&page, page::SPAN_NAME);
    assert_eq!(names.len(), 30);
    assert_eq!(dict.optional(names[0]).unwrap(), Some(&b"op-0"[..]));
    let services = varints(&page, page::RS_SERVICE);
    assert_eq!(services.len(), 10);
    assert_eq!(dict.optional(services[0]).unwrap(), Some(&b"svc-0"[..]));
    let keys = varints(&page, page::ATTR_KEY);
    assert_eq!(
        dict.optional(keys[0]).unwrap(),
        Some(&b"http.status_code"[..])
    );
    let values = varints(&page, page::ATTR_VALUE);
    let int_200 = AnyValue {
        value: Some(Value::IntValue(200)),
    }
    .encode_to_vec();
    assert_eq!(dict.optional(values[0]).unwrap(), Some(int_200.as_slice()));
    // Starts are deltas against the trace's start: all spans of a trace start together.
    assert!(varints(&page, page::SPAN_START).iter().all(|&s| s == 0));
}

fn any(value: Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(value) })
}

/// A request with every field of the OTLP trace protos set, for trace `i`.
fn everything(i: u32) -> ExportTraceServiceRequest {
    let id = trace_id(i).0.to_vec();
    let attributes = vec![
        kv("s", Value::StringValue("text".into())),
        kv("b", Value::BoolValue(true)),
        kv("i", Value::IntValue(-7)),
        kv("d", Value::DoubleValue(1.5)),
        kv("x", Value::BytesValue(vec![0, 1, 2])),
        kv(
            "a",
            Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(Value::StringValue("in array".into())),
                }],
            }),
        ),
        kv(
            "m",
            Value::KvlistValue(KeyValueList {
                values: vec![kv("inner", Value::IntValue(1))],
            }),
        ),
        KeyValue {
            key: "no value".into(),
            value: None,
            ..Default::default()
        },
        KeyValue {
            key: "empty value".into(),
            value: Some(AnyValue { value: None }),
            ..Default::default()
        },
        KeyValue {
            key: String::new(),
            value: any(Value::StringValue("empty key".into())),
            ..Default::default()
        },
    ];
    let span = |s: u64, parent: Option<u64>| Span {
        trace_id: id.clone(),
        span_id: (s + 1).to_be_bytes().to_vec(),
        trace_state: "k=v".into(),
        parent_span_id: parent.map_or(Vec::new(), |p| (p + 1).to_be_bytes().to_vec()),
        flags: 0x301,
        name: format!("span {s}"),
        kind: (s % 6) as i32,
        start_time_unix_nano: 1_700_000_000_000_000_000 + s * 10,
        end_time_unix_nano: 1_700_000_000_000_000_000 + s * 10 - 3 + 100 * (s % 2),
        attributes: attributes.clone(),
        dropped_attributes_count: 3,
        events: vec![Event {
            time_unix_nano: 1_700_000_000_000_000_005,
            name: "event".into(),
            attributes: attributes.clone(),
            dropped_attributes_count: 1,
        }],
        dropped_events_count: 4,
        links: vec![Link {
            trace_id: vec![9; 16],
            span_id: vec![8; 8],
            trace_state: "l=1".into(),
            attributes: attributes.clone(),
            dropped_attributes_count: 2,
            flags: 0x100,
        }],
        dropped_links_count: 5,
        status: Some(Status {
            message: "bad".into(),
            code: 2,
        }),
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: Some(Resource {
                    attributes: attributes.clone(),
                    dropped_attributes_count: 6,
                    ..Default::default()
                }),
                scope_spans: vec![
                    ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "lib".into(),
                            version: "1.2".into(),
                            attributes: attributes.clone(),
                            dropped_attributes_count: 7,
                        }),
                        spans: vec![
                            span(0, None),
                            span(1, Some(0)),
                            span(2, Some(99)),
                            Span {
                                status: Some(Status::default()),
                                kind: 0,
                                name: String::new(),
                                ..span(3, Some(1))
                            },
                        ],
                        schema_url: "https://scope".into(),
                    },
                    ScopeSpans {
                        scope: None,
                        spans: vec![Span {
                            status: None,
                            start_time_unix_nano: 0,
                            end_time_unix_nano: 0,
                            ..span(4, None)
                        }],
                        schema_url: String::new(),
                    },
                ],
                schema_url: "https://resource".into(),
            },
            ResourceSpans {
                resource: Some(Resource::default()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope::default()),
                    spans: vec![span(5, Some(4))],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
            ResourceSpans {
                resource: None,
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    spans: vec![span(6, None)],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
        ],
    }
}

/// Stores `payloads` (trace `i` gets `payloads[i]`) and reads each back.
fn round_trip(payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut writer = BlockWriter::new();
    for (i, payload) in payloads.iter().enumerate() {
        writer.add_trace(trace_id(i as u32), payload);
    }
    let (data, _) = writer.finish();
    let index = open_bytes(&data).unwrap();
    fuzz_block_read(&data);
    (0..payloads.len())
        .map(|i| {
            find_in_bytes(&data, &index, &trace_id(i as u32))
                .unwrap()
                .unwrap()
        })
        .collect()
}

#[test]
fn every_otlp_field_survives_the_columns() {
    let payloads: Vec<Vec<u8>> = (0..50)
        .map(|i| {
            let request = everything(i).encode_to_vec();
            let batches = otlp::split_export(&request).unwrap();
            assert_eq!(batches.len(), 1);
            batches[0].payload.clone()
        })
        .collect();
    let back = round_trip(&payloads);
    for (i, (before, after)) in payloads.iter().zip(&back).enumerate() {
        let before_struct = TracesData::decode(before.as_slice()).unwrap();
        let after_struct = TracesData::decode(after.as_slice()).unwrap();
        assert_eq!(before_struct, after_struct, "trace {i}");
        assert_eq!(
            before_struct,
            TracesData {
                resource_spans: everything(i as u32).resource_spans
            }
        );
        // split_export's payloads are prost's encoding; the rebuild is too.
        assert_eq!(before, after, "trace {i}: bytes");
    }
    // They were stored as columns, not raw.
    let mut writer = BlockWriter::new();
    writer.add_trace(trace_id(0), &payloads[0]);
    let (data, stats) = writer.finish();
    assert_eq!(stats.span_count, 7);
    let index = open_bytes(&data).unwrap();
    let page = PageView::decode(page_bytes(&data, &index.pages[0]).unwrap()).unwrap();
    assert_eq!(page.span_count, 7);
    assert_eq!(&*page.column(page::TRACE_FORM).unwrap(), &[0]);
}

#[test]
fn unusual_encodings_come_back_as_equal_messages() {
    let request = everything(3).encode_to_vec();
    let canonical = otlp::split_export(&request).unwrap()[0].payload.clone();
    let data = TracesData::decode(canonical.as_slice()).unwrap();
    // Fields out of order and explicit defaults: columnar, equal once decoded. It is
    // stored as trace 1, the raw one below as trace 2.
    let odd_span = |i: u32| {
        let mut span = Vec::new();
        otlp_field(&mut span, 5, b"late name");
        otlp_field(&mut span, 2, &[1; 8]);
        span.extend_from_slice(&[0x30, 0]); // kind = 0, explicit
        otlp_field(&mut span, 1, &trace_id(i).0);
        otlp_field(&mut span, 3, b"");
        span
    };
    let wrap = |span: &[u8]| {
        let mut scope_spans = Vec::new();
        otlp_field(&mut scope_spans, 2, span);
        let mut resource_spans = Vec::new();
        otlp_field(&mut resource_spans, 2, &scope_spans);
        let mut payload = Vec::new();
        otlp_field(&mut payload, 1, &resource_spans);
        payload
    };
    let odd = wrap(&odd_span(1));
    // A repeated singular field: stored raw, comes back byte for byte.
    let mut twice = odd_span(2);
    otlp_field(&mut twice, 5, b"second name");
    let raw = wrap(&twice);
    let payloads = vec![canonical.clone(), odd.clone(), raw.clone(), Vec::new()];
    let back = round_trip(&payloads);
    assert_eq!(back[0], canonical);
    assert_eq!(
        TracesData::decode(back[0].as_slice()).unwrap(),
        data,
        "canonical"
    );
    assert_eq!(
        TracesData::decode(back[1].as_slice()).unwrap(),
        TracesData::decode(odd.as_slice()).unwrap()
    );
    assert_ne!(back[1], odd, "re-encoded in field order");
    assert_eq!(back[2], raw);
    assert!(back[3].is_empty());
}

fn otlp_field(out: &mut Vec<u8>, number: u8, body: &[u8]) {
    out.push(number << 3 | 2);
    let mut len = body.len();
    while len >= 0x80 {
        out.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(body);
}

#[test]
fn a_corrupt_page_fails_only_its_traces() {
    let (mut data, _) = build(3000, 5);
    let index = open_bytes(&data).unwrap();
    let victim = index.pages[1];
    let at = victim.offset as usize + victim.length as usize / 2;
    data[at] ^= 0x10;
    let index = open_bytes(&data).unwrap();
    let mut failed = 0;
    for i in 0..3000 {
        let id = trace_id(i);
        let (page, _) = index.page_for(&id).unwrap();
        match find_in_bytes(&data, &index, &id) {
            Ok(found) => {
                assert_ne!(page, 1);
                assert_eq!(found, Some(payload(i, 5)));
            }
            Err(err) => {
                assert_eq!(page, 1);
                assert!(
                    matches!(err, BlockError::Checksum { what: "page", .. }),
                    "{err}"
                );
                assert!(err.to_string().contains("page checksum mismatch"), "{err}");
                failed += 1;
            }
        }
    }
    assert_eq!(failed, victim.trace_count);
}

#[test]
fn damage_to_footer_index_or_bloom_refuses_the_block() {
    let (data, _) = build(500, 2);
    let index = open_bytes(&data).unwrap();
    let index_at = index.footer.index_offset as usize;
    for at in [
        index_at,
        index_at + 20,
        data.len() - FOOTER_BYTES - 3,
        data.len() - 30,
        data.len() - 1,
        0,
        6,
    ] {
        let mut bad = data.clone();
        bad[at] ^= 1;
        assert!(open_bytes(&bad).is_err(), "flip at {at}");
    }
    for len in [0, 7, 8, 70, data.len() - 1] {
        assert!(open_bytes(&data[..len]).is_err(), "truncated to {len}");
    }
}

#[test]
fn one_large_trace_makes_its_own_page() {
    let mut writer = BlockWriter::new();
    writer.add_trace(trace_id(1), &payload(1, 2));
    writer.add_trace(trace_id(2), &payload(2, 20_000));
    writer.add_trace(trace_id(3), &payload(3, 2));
    let (data, stats) = writer.finish();
    assert_eq!(stats.page_count, 2);
    let index = open_bytes(&data).unwrap();
    for i in 1..=3 {
        let spans = if i == 2 { 20_000 } else { 2 };
        assert_eq!(
            find_in_bytes(&data, &index, &trace_id(i)).unwrap(),
            Some(payload(i, spans))
        );
    }
}

#[test]
fn block_ids_are_valid_and_distinct() {
    let a = new_block_id(0, 1, 5);
    let b = new_block_id(0, 2, 5);
    assert_ne!(a, b);
    assert!(meta::is_valid_block_id(&a), "{a}");
    assert_eq!(a.len(), 36);
}

#[test]
fn fuzz_entry_point_survives_mutations() {
    let (data, _) = build(50, 2);
    fuzz_block_read(&data);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..300 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut bad = data.clone();
        let at = (state as usize) % bad.len();
        bad[at] ^= (state >> 32) as u8 | 1;
        fuzz_block_read(&bad);
        bad.truncate((state >> 40) as usize % bad.len());
        fuzz_block_read(&bad);
    }
}

/// `RS_SERVICE` holds a resource's `service.name` only when it is unambiguous (one attribute
/// of the key, a plain string), so that it is the value the evaluator reads.
#[test]
fn service_column_holds_unambiguous_names_only() {
    let resource = |attributes: Vec<KeyValue>| {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes,
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: trace_id(0).0.to_vec(),
                        span_id: vec![1; 8],
                        start_time_unix_nano: 1,
                        end_time_unix_nano: 2,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let batch = otlp::split_export(&request.encode_to_vec()).unwrap();
        let mut writer = BlockWriter::new();
        writer.add_trace(trace_id(0), &batch[0].payload);
        let (data, _) = writer.finish();
        let index = open_bytes(&data).unwrap();
        let view = PageView::decode(page_bytes(&data, &index.pages[0]).unwrap()).unwrap();
        let service = varints(&view, page::RS_SERVICE);
        let lens = view.column(page::DICT_LENS).unwrap();
        let bytes = view.column(page::DICT_BYTES).unwrap();
        let dict = page::Dict::decode(&lens, &bytes).unwrap();
        dict.optional(service[0]).unwrap().map(|b| b.to_vec())
    };
    let name = |s: &str| kv("service.name", Value::StringValue(s.to_string()));
    assert_eq!(resource(vec![name("a")]), Some(b"a".to_vec()));
    assert_eq!(
        resource(vec![kv("x", Value::IntValue(1)), name("a")]),
        Some(b"a".to_vec())
    );
    assert_eq!(resource(vec![name("a"), name("b")]), None);
    assert_eq!(resource(vec![kv("service.name", Value::IntValue(7))]), None);
    assert_eq!(
        resource(vec![kv("other", Value::StringValue("a".into()))]),
        None
    );
}

/// `PageBuilder::add_payloads` writes the page `add` writes for the assembled trace, whether
/// it takes the one-payload shortcut or has to assemble first.
#[test]
fn payloads_make_the_page_their_assembled_trace_makes() {
    let id = trace_id(7);
    let resource_spans = |request: &[u8]| -> Vec<ResourceSpans> {
        TracesData::decode(request).unwrap().resource_spans
    };
    let encode = |groups: Vec<ResourceSpans>| {
        TracesData {
            resource_spans: groups,
        }
        .encode_to_vec()
    };
    let whole = payload(7, 10);
    let large = payload(7, 40);
    let groups = resource_spans(&whole);
    let mut duplicate_span = groups.clone();
    let first_span = duplicate_span[0].scope_spans[0].spans[0].clone();
    duplicate_span[0].scope_spans[0].spans.push(first_span);
    let mut large_duplicate = resource_spans(&large);
    let span = large_duplicate[0].scope_spans[0].spans[3].clone();
    large_duplicate[0].scope_spans[0].spans.push(span);
    let mut twin_resources = groups.clone();
    twin_resources.push(groups[0].clone());
    for span in &mut twin_resources[1].scope_spans[0].spans {
        span.span_id[0] ^= 0xff;
    }
    let mut twin_scopes = groups.clone();
    let mut second_scope = groups[0].scope_spans[0].clone();
    for span in &mut second_scope.spans {
        span.span_id[0] ^= 0xff;
    }
    twin_scopes[0].scope_spans.push(second_scope);
    let mut empty_scope = groups.clone();
    empty_scope[0].scope_spans.insert(0, ScopeSpans::default());
    let mut empty_resource = groups.clone();
    empty_resource.push(ResourceSpans::default());
    let mut other_resource = twin_resources.clone();
    other_resource[1].resource = None;
    let cases: Vec<(&str, Vec<Vec<u8>>, bool)> = vec![
        ("whole trace", vec![whole.clone()], true),
        ("large trace", vec![large.clone()], true),
        ("two resources", vec![encode(other_resource)], true),
        ("a span twice", vec![encode(duplicate_span)], false),
        ("a span twice, large", vec![encode(large_duplicate)], false),
        ("twin resources", vec![encode(twin_resources)], false),
        ("twin scopes", vec![encode(twin_scopes)], false),
        ("empty scope", vec![encode(empty_scope)], false),
        ("empty resource", vec![encode(empty_resource)], false),
        ("retried export", vec![whole.clone(), whole.clone()], false),
        ("two requests", vec![payload(7, 3), whole.clone()], false),
    ];
    for (name, payloads, shortcut) in cases {
        let slices: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        let assembled = otlp::assemble_trace(&slices);
        if let [only] = slices.as_slice() {
            assert_eq!(*only == assembled.as_slice(), shortcut, "{name}");
        }
        let mut expected = PageBuilder::new();
        expected.add(id, &assembled);
        let mut expected_page = Vec::new();
        let expected_summary = expected.finish(&mut expected_page);
        let mut actual = PageBuilder::new();
        assert_eq!(actual.add_payloads(id, &slices), assembled.len(), "{name}");
        let mut actual_page = Vec::new();
        let actual_summary = actual.finish(&mut actual_page);
        assert_eq!(actual_page, expected_page, "{name}");
        assert_eq!(actual_summary, expected_summary, "{name}");
    }
}

/// A writer whose data file is taken in pieces as it goes writes the same file as one that
/// keeps it whole.
#[test]
fn a_data_file_taken_in_pieces_is_the_whole_file() {
    let (whole, whole_stats) = build(3000, 6);
    let mut writer = BlockWriter::new();
    let mut pieces = Vec::new();
    for i in 0..3000 {
        writer.add_trace(trace_id(i), &payload(i, 6));
        if let Some(piece) = writer.take_written(8 << 10) {
            assert!(piece.len() >= 8 << 10);
            pieces.push(piece);
        }
    }
    assert!(pieces.len() > 2, "the file is taken in pieces");
    let (tail, stats) = writer.finish();
    pieces.push(tail);
    assert_eq!(pieces.concat(), whole);
    assert_eq!(stats, whole_stats);
}

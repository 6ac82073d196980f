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

// ---------------------------------------------------------------------------------------
// Building requests.

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// Attributes with every kind of `AnyValue`.
fn every_value_kind(seed: u8) -> Vec<KeyValue> {
    vec![
        kv("string", Value::StringValue(format!("value-{seed} ✓"))),
        kv("bool", Value::BoolValue(seed & 1 == 0)),
        kv("int", Value::IntValue(-i64::from(seed) * 1_000_000_007)),
        kv("double", Value::DoubleValue(f64::from(seed) / 3.0)),
        kv(
            "array",
            Value::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue {
                        value: Some(Value::IntValue(1)),
                    },
                    AnyValue {
                        value: Some(Value::StringValue("two".into())),
                    },
                    AnyValue { value: None },
                ],
            }),
        ),
        kv(
            "kvlist",
            Value::KvlistValue(KeyValueList {
                values: vec![
                    kv("inner", Value::BoolValue(true)),
                    kv(
                        "nested",
                        Value::KvlistValue(KeyValueList {
                            values: vec![kv("deep", Value::BytesValue(vec![0, 255, seed]))],
                        }),
                    ),
                ],
            }),
        ),
        kv("bytes", Value::BytesValue(vec![seed; 5])),
    ]
}

fn trace_id(trace: u8) -> Vec<u8> {
    let mut id = vec![0xA0; 16];
    id[15] = trace;
    id
}

fn span(trace: u8, span: u8) -> Span {
    let start = 1_700_000_000_000_000_000 + u64::from(trace) * 1_000_000 + u64::from(span);
    Span {
        trace_id: trace_id(trace),
        span_id: vec![trace, span, 1, 2, 3, 4, 5, 6],
        trace_state: format!("vendor=t{trace}"),
        parent_span_id: if span == 0 {
            Vec::new()
        } else {
            vec![trace, 0, 1, 2, 3, 4, 5, 6]
        },
        flags: 0x101,
        name: format!("span {trace}/{span}"),
        kind: i32::from(span % 6),
        start_time_unix_nano: start,
        end_time_unix_nano: start + 500 + u64::from(span) * 10,
        attributes: every_value_kind(span),
        dropped_attributes_count: 1,
        events: vec![Event {
            time_unix_nano: start + 1,
            name: "event".into(),
            attributes: every_value_kind(span.wrapping_add(1)),
            dropped_attributes_count: 2,
        }],
        dropped_events_count: 3,
        links: vec![Link {
            trace_id: trace_id(trace.wrapping_add(100)),
            span_id: vec![9; 8],
            trace_state: "linked=1".into(),
            attributes: vec![kv("link", Value::IntValue(7))],
            dropped_attributes_count: 4,
            flags: 1,
        }],
        dropped_links_count: 5,
        status: Some(Status {
            message: format!("status of {span}"),
            code: 2,
        }),
    }
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", Value::StringValue(service.into())),
            kv("host.cores", Value::IntValue(8)),
        ],
        dropped_attributes_count: 0,
        entity_refs: Vec::new(),
    })
}

fn scope(name: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.into(),
        version: "1.2.3".into(),
        attributes: every_value_kind(9),
        dropped_attributes_count: 0,
    })
}

fn scope_spans(name: &str, schema_url: &str, spans: Vec<Span>) -> ScopeSpans {
    ScopeSpans {
        scope: scope(name),
        spans,
        schema_url: schema_url.into(),
    }
}

/// Two resources, three scopes, traces 1, 2 and 3 interleaved.
fn realistic_request() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: resource("frontend"),
                scope_spans: vec![
                    scope_spans(
                        "http",
                        "https://opentelemetry.io/schemas/1.21.0",
                        vec![span(1, 0), span(2, 0), span(1, 1), span(3, 0)],
                    ),
                    scope_spans("db", "", vec![span(2, 1), span(1, 2)]),
                ],
                schema_url: "https://opentelemetry.io/schemas/1.20.0".into(),
            },
            ResourceSpans {
                resource: resource("backend"),
                scope_spans: vec![scope_spans(
                    "grpc",
                    "",
                    vec![span(3, 1), span(1, 3), span(3, 2)],
                )],
                schema_url: String::new(),
            },
        ],
    }
}

/// (resource, resource schema URL, scope, scope schema URL, span), flattened in order.
type Flat = (
    Option<Resource>,
    String,
    Option<InstrumentationScope>,
    String,
    Span,
);

fn flatten(resource_spans: &[ResourceSpans]) -> Vec<Flat> {
    let mut flat = Vec::new();
    for rs in resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                flat.push((
                    rs.resource.clone(),
                    rs.schema_url.clone(),
                    ss.scope.clone(),
                    ss.schema_url.clone(),
                    span.clone(),
                ));
            }
        }
    }
    flat
}

fn decode_trace(payload: &[u8]) -> Vec<ResourceSpans> {
    TracesData::decode(payload).unwrap().resource_spans
}

// ---------------------------------------------------------------------------------------
// Splitting.

#[test]
fn splits_interleaved_traces_losslessly() {
    let request = realistic_request();
    let bytes = request.encode_to_vec();
    let batches = split_export(&bytes).unwrap();

    let ids: Vec<TraceId> = batches.iter().map(|batch| batch.trace_id).collect();
    let expected_ids: Vec<TraceId> = [1, 2, 3]
        .iter()
        .map(|&t| TraceId::from_slice(&trace_id(t)).unwrap())
        .collect();
    assert_eq!(ids, expected_ids, "batches in order of first appearance");

    let original = flatten(&request.resource_spans);
    for batch in &batches {
        let expected: Vec<Flat> = original
            .iter()
            .filter(|flat| flat.4.trace_id == batch.trace_id.0)
            .cloned()
            .collect();
        let decoded = decode_trace(&batch.payload);
        assert_eq!(flatten(&decoded), expected);
        assert_eq!(batch.span_count as usize, expected.len());
        assert_eq!(
            batch.start_unix_nanos_min,
            expected
                .iter()
                .map(|f| f.4.start_time_unix_nano)
                .min()
                .unwrap()
        );
        assert_eq!(
            batch.end_unix_nanos_max,
            expected
                .iter()
                .map(|f| f.4.end_time_unix_nano)
                .max()
                .unwrap()
        );
        // Byte-identical spans: each original span encoding appears in the payload.
        for flat in &expected {
            let span_bytes = flat.4.encode_to_vec();
            assert!(batch
                .payload
                .windows(span_bytes.len())
                .any(|window| window == span_bytes));
        }
        // The layout is exactly prost's canonical encoding of the same ResourceSpans.
        assert_eq!(
            TracesData {
                resource_spans: decoded
            }
            .encode_to_vec(),
            batch.payload
        );
        assert_eq!(count_spans(&batch.payload), batch.span_count);
    }
}

#[test]
fn groups_spans_of_one_trace_per_resource_and_scope() {
    let request = realistic_request();
    let batches = split_export(&request.encode_to_vec()).unwrap();
    // Trace 1: spans in frontend/http (2), frontend/db (1) and backend/grpc (1).
    let decoded = decode_trace(&batches[0].payload);
    assert_eq!(decoded.len(), 2);
    assert_eq!(decoded[0].resource, resource("frontend"));
    assert_eq!(
        decoded[0].schema_url,
        "https://opentelemetry.io/schemas/1.20.0"
    );
    let scopes: Vec<(&str, usize)> = decoded[0]
        .scope_spans
        .iter()
        .map(|ss| (ss.scope.as_ref().unwrap().name.as_str(), ss.spans.len()))
        .collect();
    assert_eq!(scopes, [("http", 2), ("db", 1)]);
    assert_eq!(
        decoded[0].scope_spans[0].schema_url,
        "https://opentelemetry.io/schemas/1.21.0"
    );
    assert_eq!(decoded[1].resource, resource("backend"));
    assert_eq!(decoded[1].scope_spans.len(), 1);
}

#[test]
fn single_trace_request() {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("svc"),
            scope_spans: vec![scope_spans("s", "", (0..50).map(|s| span(7, s)).collect())],
            schema_url: String::new(),
        }],
    };
    let bytes = request.encode_to_vec();
    let batches = split_export(&bytes).unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].span_count, 50);
    // One trace, one resource, one scope: the payload is the request itself.
    assert_eq!(batches[0].payload, bytes);
}

#[test]
fn many_traces_use_the_map_and_keep_order() {
    let traces: Vec<u8> = (1..=60).collect();
    let spans: Vec<Span> = (0..3)
        .flat_map(|s| traces.iter().map(move |&t| span(t, s)))
        .collect();
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("svc"),
            scope_spans: vec![scope_spans("s", "", spans)],
            schema_url: String::new(),
        }],
    };
    let batches = split_export(&request.encode_to_vec()).unwrap();
    assert_eq!(batches.len(), 60);
    for (batch, &t) in batches.iter().zip(&traces) {
        assert_eq!(batch.trace_id.0.to_vec(), trace_id(t));
        assert_eq!(batch.span_count, 3);
        let spans: Vec<Span> = flatten(&decode_trace(&batch.payload))
            .into_iter()
            .map(|flat| flat.4)
            .collect();
        assert_eq!(spans, [span(t, 0), span(t, 1), span(t, 2)]);
    }
}

#[test]
fn empty_request_and_empty_groups_give_no_batches() {
    assert_eq!(split_export(&[]).unwrap(), []);
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("svc"),
            scope_spans: vec![scope_spans("s", "", vec![])],
            schema_url: String::new(),
        }],
    };
    assert_eq!(split_export(&request.encode_to_vec()).unwrap(), []);
}

#[test]
fn spans_ending_before_they_start_are_kept_as_sent() {
    let mut backwards = span(1, 0);
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1_000;
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: None,
            scope_spans: vec![ScopeSpans {
                scope: None,
                spans: vec![backwards.clone()],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    let batches = split_export(&request.encode_to_vec()).unwrap();
    assert_eq!(
        batches[0].start_unix_nanos_min,
        backwards.start_time_unix_nano
    );
    assert_eq!(batches[0].end_unix_nanos_max, backwards.end_time_unix_nano);
    let decoded = decode_trace(&batches[0].payload);
    // Absent resource and scope stay absent.
    assert_eq!(decoded[0].resource, None);
    assert_eq!(decoded[0].scope_spans[0].scope, None);
    assert_eq!(decoded[0].scope_spans[0].spans, [backwards]);
}

// Hand-made wire bytes, for what prost cannot produce.

fn key(number: u32, wire_type: u8) -> Vec<u8> {
    let mut out = Vec::new();
    wire::put_varint(u64::from(number << 3 | u32::from(wire_type)), &mut out);
    out
}

fn len(number: u32, body: &[u8]) -> Vec<u8> {
    let mut out = key(number, 2);
    wire::put_varint(body.len() as u64, &mut out);
    out.extend_from_slice(body);
    out
}

fn fixed64(number: u32, value: u64) -> Vec<u8> {
    let mut out = key(number, 1);
    out.extend_from_slice(&value.to_le_bytes());
    out
}

fn varint(number: u32, value: u64) -> Vec<u8> {
    let mut out = key(number, 0);
    wire::put_varint(value, &mut out);
    out
}

/// A request with one resource, one scope and the given span bodies.
fn request_of(spans: &[Vec<u8>]) -> Vec<u8> {
    let scope_spans: Vec<u8> = spans.iter().flat_map(|span| len(2, span)).collect();
    len(1, &len(2, &scope_spans))
}

fn minimal_span(trace: u8, span: u8) -> Vec<u8> {
    [len(1, &trace_id(trace)), len(2, &[span; 8])].concat()
}

#[test]
fn unknown_fields_inside_spans_are_kept_and_outside_skipped() {
    let group = [key(50, 3), varint(1, 5), len(2, b"x"), key(50, 4)].concat();
    let span = [
        minimal_span(1, 1),
        varint(1000, 42),
        len(17, b"future field"),
        group.clone(),
        fixed64(18, 7),
        key(19, 5),
        vec![1, 2, 3, 4],
    ]
    .concat();
    let scope_spans = [len(2, &span), varint(9, 1), group.clone()].concat();
    let resource_spans = [len(2, &scope_spans), fixed64(10, 3), group.clone()].concat();
    let request = [len(1, &resource_spans), varint(2, 8), group].concat();
    let batches = split_export(&request).unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].payload, request_of(&[span]));
    assert!(ExportTraceServiceRequest::decode(request.as_slice()).is_ok());
}

#[test]
fn repeated_singular_fields_behave_as_in_prost() {
    // Two `resource` fields merge; the last trace_id and schema_url win.
    let r1 = Resource {
        attributes: vec![kv("a", Value::IntValue(1))],
        ..Default::default()
    }
    .encode_to_vec();
    let r2 = Resource {
        attributes: vec![kv("b", Value::IntValue(2))],
        ..Default::default()
    }
    .encode_to_vec();
    let span = [len(1, &[7; 5]), minimal_span(1, 1)].concat();
    let resource_spans = [
        len(1, &r1),
        len(3, b"first"),
        len(2, &len(2, &span)),
        len(1, &r2),
        len(3, b"second"),
    ]
    .concat();
    let request = len(1, &resource_spans);
    let batches = split_export(&request).unwrap();
    let ours = decode_trace(&batches[0].payload);
    let prosts = ExportTraceServiceRequest::decode(request.as_slice())
        .unwrap()
        .resource_spans;
    assert_eq!(ours, prosts);
    assert_eq!(ours[0].resource.as_ref().unwrap().attributes.len(), 2);
    assert_eq!(ours[0].schema_url, "second");
}

#[test]
fn nesting_up_to_the_limit_is_accepted_and_decodes_with_prost() {
    // An event attribute (depth 6) with kvlists nested as deep as allowed.
    fn nested(levels: u32) -> AnyValue {
        let mut value = AnyValue {
            value: Some(Value::StringValue("leaf".into())),
        };
        for _ in 0..levels {
            value = AnyValue {
                value: Some(Value::KvlistValue(KeyValueList {
                    values: vec![KeyValue {
                        key: "k".into(),
                        value: Some(value),
                        ..Default::default()
                    }],
                })),
            };
        }
        value
    }
    let deepest = |levels| {
        let mut s = span(1, 1);
        s.events[0].attributes = vec![KeyValue {
            key: "deep".into(),
            value: Some(nested(levels)),
            ..Default::default()
        }];
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: None,
                scope_spans: vec![scope_spans("s", "", vec![s])],
                schema_url: String::new(),
            }],
        }
        .encode_to_vec()
    };
    // Event 4, its KeyValue 5, AnyValue 6; each kvlist level adds 3: 6 + 3 * 19 = 63.
    let batches = split_export(&deepest(19)).unwrap();
    assert!(TracesData::decode(batches[0].payload.as_slice()).is_ok());
    let error = split_export(&deepest(20)).unwrap_err();
    assert!(matches!(error.kind(), OtlpErrorKind::TooDeep { .. }));
}

// ---------------------------------------------------------------------------------------
// Errors: each with its exact message. `prost_too` says whether prost refuses it as well.

fn check_error(request: &[u8], expected: &str, prost_too: bool) {
    let error = split_export(request).unwrap_err();
    assert_eq!(error.to_string(), expected);
    assert_eq!(
        ExportTraceServiceRequest::decode(request).is_err(),
        prost_too,
        "prost disagrees on {expected}"
    );
    fuzz_split(request);
}

fn with_span(mutate: impl FnOnce(&mut Span)) -> Vec<u8> {
    let mut request = realistic_request();
    mutate(&mut request.resource_spans[0].scope_spans[1].spans[1]);
    request.encode_to_vec()
}

#[test]
fn id_errors() {
    check_error(
        &with_span(|s| s.trace_id = vec![1, 2, 3, 4, 5]),
        "resource_spans[0].scope_spans[1].spans[1].trace_id: expected 16 bytes, got 5",
        false,
    );
    check_error(
        &with_span(|s| s.trace_id = vec![0; 16]),
        "resource_spans[0].scope_spans[1].spans[1].trace_id: must not be all zeros",
        false,
    );
    check_error(
        &with_span(|s| s.trace_id = Vec::new()),
        "resource_spans[0].scope_spans[1].spans[1].trace_id: expected 16 bytes, got 0",
        false,
    );
    check_error(
        &with_span(|s| s.span_id = vec![1; 16]),
        "resource_spans[0].scope_spans[1].spans[1].span_id: expected 8 bytes, got 16",
        false,
    );
    check_error(
        &with_span(|s| s.span_id = vec![0; 8]),
        "resource_spans[0].scope_spans[1].spans[1].span_id: must not be all zeros",
        false,
    );
}

#[test]
fn wire_errors_at_the_top() {
    // Field 1 declares 5 bytes and has 1.
    check_error(
        &[0x0A, 5, 0],
        "truncated length-delimited field 1 at byte 0: needs 5 bytes, 1 left",
        true,
    );
    check_error(&[0x08, 0x80], "truncated varint at byte 1", true);
    check_error(
        &[
            0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
        ],
        "varint longer than 64 bits at byte 1",
        true,
    );
    check_error(
        &[
            0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02,
        ],
        "varint longer than 64 bits at byte 1",
        true,
    );
    check_error(&[0x0F], "invalid wire type 7 at byte 0", true);
    check_error(&[0x00], "invalid field number 0 at byte 0", true);
    check_error(
        &[0x80, 0x80, 0x80, 0x80, 0x10],
        "invalid field number 536870912 at byte 0",
        true,
    );
    check_error(
        &[0x0C],
        "unexpected end-group tag of field 1 at byte 0",
        true,
    );
    check_error(
        &[0x2B, 0x08, 0x01],
        "unterminated group field 5 at byte 0",
        true,
    );
    check_error(
        &[0x2B, 0x34],
        "unexpected end-group tag of field 6 at byte 1",
        true,
    );
    check_error(
        &[0x08, 0x01],
        "resource_spans[0]: expected wire type length-delimited, got varint at byte 0",
        true,
    );
    // A length far past the end of the buffer (2^40).
    check_error(
        &[0x0A, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20],
        "truncated length-delimited field 1 at byte 0: needs 1099511627776 bytes, 0 left",
        true,
    );
    check_error(
        &[0x11, 1, 2, 3],
        "truncated fixed64 field 2 at byte 0: needs 8 bytes, 3 left",
        true,
    );
    // An unknown group at the top is skipped.
    assert_eq!(split_export(&[0x2B, 0x10, 0x01, 0x2C]).unwrap(), []);
}

#[test]
fn wire_errors_inside() {
    // resource_spans[0] holds field 2 declaring 5 bytes with 1 present.
    check_error(
        &[0x0A, 3, 0x12, 5, 0],
        "resource_spans[0]: truncated length-delimited field 2 at byte 2: needs 5 bytes, 1 left",
        true,
    );
    let good = minimal_span(1, 1);
    let start_as_varint = [good.clone(), varint(7, 3)].concat();
    // request(2) + scope_spans tag and length(2) + span tag and length(2) + 28 bytes.
    check_error(
        &request_of(&[good.clone(), start_as_varint]),
        "resource_spans[0].scope_spans[0].spans[1].start_time_unix_nano: expected wire type fixed64, got varint at byte 64",
        true,
    );
    let bad_name = [good.clone(), len(5, b"ok\xFFno")].concat();
    check_error(
        &request_of(&[bad_name]),
        "resource_spans[0].scope_spans[0].spans[0].name: invalid UTF-8 at byte 38",
        true,
    );
    let flags_as_len = [good.clone(), len(16, b"")].concat();
    check_error(
        &request_of(&[flags_as_len]),
        "resource_spans[0].scope_spans[0].spans[0].flags: expected wire type fixed32, got length-delimited at byte 34",
        true,
    );
    let resource_as_varint = [varint(1, 1), len(2, &len(2, &good))].concat();
    check_error(
        &len(1, &resource_as_varint),
        "resource_spans[0].resource: expected wire type length-delimited, got varint at byte 2",
        true,
    );
    let truncated_in_span = [good.clone(), vec![0x2A, 9, b'a']].concat();
    check_error(
        &request_of(&[truncated_in_span]),
        "resource_spans[0].scope_spans[0].spans[0]: truncated length-delimited field 5 at byte 34: needs 9 bytes, 1 left",
        true,
    );
}

#[test]
fn utf8_errors_deep_in_attributes() {
    let request = with_span(|s| {
        s.attributes[5] = kv(
            "kvlist",
            Value::KvlistValue(KeyValueList {
                values: vec![
                    kv("fine", Value::BoolValue(true)),
                    kv("BAD", Value::IntValue(1)),
                ],
            }),
        )
    });
    // Replace the key "BAD" by invalid UTF-8 of the same length.
    let at = request.windows(3).position(|w| w == b"BAD").unwrap();
    let mut request = request;
    request[at + 1] = 0xC0;
    check_error(
        &request,
        &format!(
            "resource_spans[0].scope_spans[1].spans[1].attributes[5].value.kvlist_value.values[1].key: invalid UTF-8 at byte {}",
            at + 1
        ),
        true,
    );
    // Same in an event, a link and the status.
    for (needle, path) in [
        ("event", "events[0].name"),
        ("linked=1", "links[0].trace_state"),
        ("status of 2", "status.message"),
    ] {
        let mut request = with_span(|_| {});
        // The mutated span is the second of `db`; find the needle after its name.
        let span_at = request.windows(8).position(|w| w == b"span 1/2").unwrap();
        let at = span_at
            + request[span_at..]
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .unwrap();
        request[at] = 0xFF;
        check_error(
            &request,
            &format!(
                "resource_spans[0].scope_spans[1].spans[1].{path}: invalid UTF-8 at byte {at}"
            ),
            true,
        );
    }
}

#[test]
fn depth_bombs() {
    // AnyValue inside ArrayValue inside AnyValue ... 100 deep.
    let mut value = AnyValue {
        value: Some(Value::IntValue(1)),
    };
    for _ in 0..100 {
        value = AnyValue {
            value: Some(Value::ArrayValue(ArrayValue {
                values: vec![value],
            })),
        };
    }
    let request = with_span(|s| {
        s.attributes = vec![KeyValue {
            key: "bomb".into(),
            value: Some(value),
            ..Default::default()
        }]
    });
    let error = split_export(&request).unwrap_err();
    let OtlpErrorKind::TooDeep { at } = *error.kind() else {
        panic!("{error}");
    };
    // The message at depth 65 is an AnyValue, `values[0]` of the ArrayValue at depth 64.
    assert_eq!(error.path().count(), 65);
    assert_eq!(
        error.to_string(),
        format!(
            "resource_spans[0].scope_spans[1].spans[1].attributes[0].value.array_value.values[0].array_value\
             .(... 50 more ...)\
             .values[0].array_value.values[0].array_value.values[0].array_value.values[0]\
             : messages nested deeper than 64 levels at byte {at}"
        )
    );
    fuzz_split(&request);

    // Unknown groups nested 100 deep inside a span.
    let mut group = Vec::new();
    for _ in 0..100 {
        group = [key(20, 3), group, key(20, 4)].concat();
    }
    let span = [minimal_span(1, 1), group].concat();
    let request = request_of(&[span]);
    let error = split_export(&request).unwrap_err();
    assert!(error.to_string().starts_with(
        "resource_spans[0].scope_spans[0].spans[0]: messages nested deeper than 64 levels at byte "
    ));
    fuzz_split(&request);
}

// ---------------------------------------------------------------------------------------
// Assembling.

fn spans_of(trace: &[u8]) -> Vec<Span> {
    flatten(&decode_trace(trace))
        .into_iter()
        .map(|flat| flat.4)
        .collect()
}

#[test]
fn assemble_round_trips_one_export() {
    let request = realistic_request();
    let batches = split_export(&request.encode_to_vec()).unwrap();
    for batch in &batches {
        let assembled = assemble_trace(&[&batch.payload]);
        // Nothing to merge inside one export's batch: the same bytes.
        assert_eq!(assembled, batch.payload);
        let expected: Vec<Span> = flatten(&request.resource_spans)
            .into_iter()
            .map(|flat| flat.4)
            .filter(|span| span.trace_id == batch.trace_id.0)
            .collect();
        assert_eq!(spans_of(&assembled), expected);
    }
}

#[test]
fn assemble_merges_resources_and_scopes_across_exports() {
    let export = |spans: Vec<Span>, service: &str| ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(service),
            scope_spans: vec![scope_spans("http", "", spans)],
            schema_url: String::new(),
        }],
    };
    let first = split_export(&export(vec![span(1, 0), span(1, 1)], "a").encode_to_vec()).unwrap();
    let second = split_export(&export(vec![span(1, 2)], "b").encode_to_vec()).unwrap();
    let third = split_export(&export(vec![span(1, 3)], "a").encode_to_vec()).unwrap();
    let assembled = assemble_trace(&[&first[0].payload, &second[0].payload, &third[0].payload]);
    let decoded = decode_trace(&assembled);
    assert_eq!(decoded.len(), 2);
    assert_eq!(decoded[0].resource, resource("a"));
    assert_eq!(decoded[0].scope_spans.len(), 1);
    assert_eq!(
        decoded[0].scope_spans[0].spans,
        [span(1, 0), span(1, 1), span(1, 3)]
    );
    assert_eq!(decoded[1].resource, resource("b"));
    assert_eq!(decoded[1].scope_spans[0].spans, [span(1, 2)]);
    assert_eq!(count_spans(&assembled), 4);
    // The same payloads concatenated into one give the same trace.
    let joined = [
        first[0].payload.clone(),
        second[0].payload.clone(),
        third[0].payload.clone(),
    ]
    .concat();
    assert_eq!(assemble_trace(&[&joined]), assembled);
}

#[test]
fn assemble_drops_repeated_spans() {
    let request = realistic_request().encode_to_vec();
    let batches = split_export(&request).unwrap();
    let payload = &batches[0].payload;
    let once = assemble_trace(&[payload]);
    // A retried export, and a WAL replay of a record also in memory.
    let retried = assemble_trace(&[payload, payload, payload]);
    assert_eq!(retried, once);
    assert_eq!(count_spans(&retried), batches[0].span_count);
    // A later export carrying one old span and one new one.
    let mut old_and_new = ExportTraceServiceRequest {
        resource_spans: realistic_request().resource_spans,
    };
    old_and_new.resource_spans[1].scope_spans[0].spans = vec![span(1, 3), span(1, 9)];
    old_and_new.resource_spans.truncate(2);
    old_and_new.resource_spans[0].scope_spans.clear();
    let later = split_export(&old_and_new.encode_to_vec()).unwrap();
    let trace_one = later
        .iter()
        .find(|b| b.trace_id == batches[0].trace_id)
        .unwrap();
    let merged = assemble_trace(&[payload, &trace_one.payload]);
    let spans = spans_of(&merged);
    assert_eq!(spans.len(), 5);
    assert_eq!(spans.last(), Some(&span(1, 9)));
}

#[test]
fn assemble_skips_garbage_without_panicking() {
    let batches = split_export(&realistic_request().encode_to_vec()).unwrap();
    let good = &batches[0].payload;
    let once = assemble_trace(&[good]);
    assert_eq!(assemble_trace(&[b"\xFF\xFF\xFF", good, &[0x0A, 200]]), once);
    assert_eq!(assemble_trace(&[]), Vec::<u8>::new());
    // Every prefix of a payload: the complete ResourceSpans survive.
    for cut in 0..good.len() {
        let assembled = assemble_trace(&[&good[..cut]]);
        assert!(TracesData::decode(assembled.as_slice()).is_ok());
        assert!(count_spans(&assembled) <= batches[0].span_count);
    }
}

// ---------------------------------------------------------------------------------------
// Properties over many mutations (a small, deterministic fuzz run).

#[test]
fn every_prefix_and_bit_flip_is_refused_or_decodes_with_prost() {
    let request = realistic_request().encode_to_vec();
    fuzz_split(&request);
    for cut in 0..request.len() {
        fuzz_split(&request[..cut]);
    }
    // One bit per byte, varying which, keeps the test fast.
    let mut mutated = request.clone();
    for index in 0..request.len() {
        let bit = 1u8 << (index % 8);
        mutated[index] ^= bit;
        fuzz_split(&mutated);
        mutated[index] ^= bit;
    }
}

// ---------------------------------------------------------------------------------------
// The fast path against the schema walk (`fuzz_split` asserts that both accept the same
// requests and split them into equal batches).

/// Both implementations on `request`: whether it was accepted.
fn agree(request: &[u8]) -> bool {
    fuzz_split(request);
    let fast = fast::split(request).ok();
    assert_eq!(fast, walk::split_export(request).ok());
    fast.is_some()
}

/// Field values of every wire type, well and badly formed.
fn probe_values(number: u32) -> Vec<Vec<u8>> {
    let kv = [len(1, b"k"), len(2, &len(1, b"v"))].concat();
    let mut values = vec![
        varint(number, 0),
        varint(number, u64::MAX),
        [key(number, 0), vec![0xFF; 10], vec![0x02]].concat(),
        [key(number, 0), vec![0x80]].concat(),
        fixed64(number, 7),
        [key(number, 1), vec![1, 2, 3]].concat(),
        [key(number, 5), vec![1, 2, 3, 4]].concat(),
        [key(number, 5), vec![1, 2]].concat(),
        len(number, b""),
        len(number, b"text"),
        len(
            number,
            "caf\u{e9} \u{2713} and a string longer than thirty-two bytes".as_bytes(),
        ),
        len(number, b"ok\xFF"),
        len(number, b"\xC0\x80"),
        len(number, &[0xFF; 40]),
        len(number, &kv),
        len(number, &len(1, &kv)),
        len(number, &len(2, &len(1, b"\xFF"))),
        len(number, &[0xFF, 0xFF]),
        len(number, &[0x0A, 9]),
        len(number, &[0x0C]),
        [key(number, 2), vec![9, 1]].concat(),
        [key(number, 3), varint(1, 1), key(number, 4)].concat(),
        [key(number, 3), key(number + 1, 4)].concat(),
        [key(number, 3), varint(1, 1)].concat(),
        key(number, 4),
        key(number, 6),
        key(number, 7),
    ];
    // The same key written with a redundant continuation byte.
    let mut long_key = key(number, 2);
    if let Some(last) = long_key.last_mut() {
        *last |= 0x80;
    }
    long_key.push(0);
    values.push([long_key, vec![2], b"ok".to_vec()].concat());
    values
}

/// Builds a request with the given field inside one kind of message.
type Context<'a> = dyn Fn(&[u8]) -> Vec<u8> + 'a;

#[test]
fn fast_path_agrees_with_the_walk_on_every_field_of_every_message() {
    let good = minimal_span(1, 1);
    let attribute = |value: &[u8]| len(9, &[len(1, b"k"), len(2, value)].concat());
    let in_span = |extra: &[u8]| request_of(&[[good.clone(), extra.to_vec()].concat()]);
    let scope_spans = |extra: &[u8]| len(1, &len(2, &[len(2, &good), extra.to_vec()].concat()));
    let resource_spans = |extra: &[u8]| len(1, &[len(2, &len(2, &good)), extra.to_vec()].concat());
    // Each context puts the probe field inside one kind of message.
    let contexts: Vec<(&str, Box<Context<'_>>)> = vec![
        (
            "request",
            Box::new(|probe| [resource_spans(b""), probe.to_vec()].concat()),
        ),
        ("ResourceSpans", Box::new(resource_spans)),
        ("ScopeSpans", Box::new(scope_spans)),
        ("Span", Box::new(in_span)),
        ("KeyValue", Box::new(move |probe| in_span(&len(9, probe)))),
        (
            "AnyValue",
            Box::new(move |probe| in_span(&attribute(probe))),
        ),
        (
            "ArrayValue",
            Box::new(move |probe| in_span(&attribute(&len(5, probe)))),
        ),
        (
            "ArrayValue.values",
            Box::new(move |probe| in_span(&attribute(&len(5, &len(1, probe))))),
        ),
        (
            "KeyValueList",
            Box::new(move |probe| in_span(&attribute(&len(6, probe)))),
        ),
        (
            "KeyValueList.values",
            Box::new(move |probe| in_span(&attribute(&len(6, &len(1, probe))))),
        ),
        ("Event", Box::new(move |probe| in_span(&len(11, probe)))),
        (
            "Event.attributes",
            Box::new(move |probe| in_span(&len(11, &len(3, probe)))),
        ),
        ("Link", Box::new(move |probe| in_span(&len(13, probe)))),
        ("Status", Box::new(move |probe| in_span(&len(15, probe)))),
        (
            "Resource",
            Box::new(move |probe| resource_spans(&len(1, probe))),
        ),
        (
            "Resource.attributes",
            Box::new(move |probe| resource_spans(&len(1, &len(1, probe)))),
        ),
        (
            "EntityRef",
            Box::new(move |probe| resource_spans(&len(1, &len(3, probe)))),
        ),
        (
            "InstrumentationScope",
            Box::new(move |probe| scope_spans(&len(1, probe))),
        ),
        (
            "InstrumentationScope.attributes",
            Box::new(move |probe| scope_spans(&len(1, &len(3, probe)))),
        ),
    ];
    for (name, context) in &contexts {
        let (mut accepted, mut refused) = (0, 0);
        for number in (1..=18).chain([1000, (1 << 29) - 1]) {
            for value in probe_values(number) {
                if agree(&context(&value)) {
                    accepted += 1;
                } else {
                    refused += 1;
                }
            }
        }
        assert!(
            accepted > 0 && refused > 0,
            "{name}: {accepted} accepted, {refused} refused"
        );
    }
}

#[test]
fn fast_path_agrees_with_the_walk_on_mutated_requests() {
    // Many traces (past the linear scan), repeated resources and scopes, unknown fields.
    let mut request = realistic_request();
    for (index, rs) in request.resource_spans.iter_mut().enumerate() {
        for ss in &mut rs.scope_spans {
            for span in &mut ss.spans {
                span.trace_id[0] = index as u8;
                span.trace_id[1] = span.span_id[1];
            }
        }
    }
    let traces: Vec<u8> = (1..=40).collect();
    request.resource_spans.push(ResourceSpans {
        resource: resource("many"),
        scope_spans: vec![scope_spans(
            "s",
            "url",
            traces.iter().map(|&t| span(t, t % 3)).collect(),
        )],
        schema_url: "rs-url".into(),
    });
    let encoded = request.encode_to_vec();
    let with_extras = [
        encoded.clone(),
        len(
            1,
            &[
                len(1, &len(1, &[len(1, b"x"), len(2, b"")].concat())),
                varint(9, 1),
            ]
            .concat(),
        ),
        encoded.clone(),
    ]
    .concat();
    assert!(agree(&encoded));
    assert!(agree(&with_extras));
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as usize
    };
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..3_000 {
        let mut data = if next() % 2 == 0 {
            encoded.clone()
        } else {
            with_extras.clone()
        };
        for _ in 0..1 + next() % 3 {
            let at = next() % data.len();
            match next() % 4 {
                0 => data[at] ^= 1 << (next() % 8),
                1 => data[at] = next() as u8,
                2 => data.insert(at, next() as u8),
                _ => {
                    data.remove(at);
                }
            }
        }
        if agree(&data) {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    assert!(
        accepted > 100 && refused > 100,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn payloads_are_allocated_at_their_size() {
    let batches = split_export(&realistic_request().encode_to_vec()).unwrap();
    for batch in &batches {
        assert_eq!(batch.payload.capacity(), batch.payload.len());
    }
}

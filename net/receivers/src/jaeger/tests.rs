#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use ::thrift::protocol::{
    TBinaryOutputProtocol, TCompactOutputProtocol, TFieldIdentifier, TListIdentifier,
    TMessageIdentifier, TMessageType, TOutputProtocol, TStructIdentifier, TType,
};
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use super::proto;
use super::*;

// ---- thrift encoding, field by field as generated code writes it ----

#[derive(Clone)]
enum TV {
    Str(&'static str),
    Double(f64),
    Bool(bool),
    Long(i64),
    Binary(Vec<u8>),
    /// A vType the collector does not know, with no value.
    RawType(i32),
}

#[derive(Clone)]
struct TTag(&'static str, TV);

#[derive(Clone)]
struct TRef {
    ref_type: i32,
    low: i64,
    high: i64,
    span_id: i64,
}

#[derive(Clone)]
struct TLog {
    ts: i64,
    fields: Vec<TTag>,
}

#[derive(Clone, Default)]
struct TSpan {
    low: i64,
    high: i64,
    span_id: i64,
    parent: i64,
    op: &'static str,
    refs: Option<Vec<TRef>>,
    flags: i32,
    start: i64,
    duration: i64,
    tags: Option<Vec<TTag>>,
    logs: Option<Vec<TLog>>,
}

#[derive(Clone)]
struct TBatch {
    service: &'static str,
    process_tags: Option<Vec<TTag>>,
    spans: Vec<TSpan>,
    seq_no: Option<i64>,
}

type Out<'a> = &'a mut dyn TOutputProtocol;

fn begin(o: Out, ttype: TType, id: i16) {
    o.write_field_begin(&TFieldIdentifier::new("f", ttype, id))
        .unwrap();
}

fn end_struct(o: Out) {
    o.write_field_stop().unwrap();
    o.write_struct_end().unwrap();
}

fn i64_field(o: Out, id: i16, v: i64) {
    begin(o, TType::I64, id);
    o.write_i64(v).unwrap();
    o.write_field_end().unwrap();
}

fn i32_field(o: Out, id: i16, v: i32) {
    begin(o, TType::I32, id);
    o.write_i32(v).unwrap();
    o.write_field_end().unwrap();
}

fn str_field(o: Out, id: i16, v: &str) {
    begin(o, TType::String, id);
    o.write_string(v).unwrap();
    o.write_field_end().unwrap();
}

fn list_field<T>(o: Out, id: i16, items: &[T], write: fn(Out, &T)) {
    begin(o, TType::List, id);
    o.write_list_begin(&TListIdentifier::new(TType::Struct, items.len() as i32))
        .unwrap();
    for item in items {
        write(o, item);
    }
    o.write_list_end().unwrap();
    o.write_field_end().unwrap();
}

fn write_tag(o: Out, tag: &TTag) {
    o.write_struct_begin(&TStructIdentifier::new("Tag"))
        .unwrap();
    str_field(o, 1, tag.0);
    let v_type = match &tag.1 {
        TV::Str(_) => 0,
        TV::Double(_) => 1,
        TV::Bool(_) => 2,
        TV::Long(_) => 3,
        TV::Binary(_) => 4,
        TV::RawType(t) => *t,
    };
    i32_field(o, 2, v_type);
    match &tag.1 {
        TV::Str(s) => str_field(o, 3, s),
        TV::Double(d) => {
            begin(o, TType::Double, 4);
            o.write_double(*d).unwrap();
            o.write_field_end().unwrap();
        }
        TV::Bool(b) => {
            begin(o, TType::Bool, 5);
            o.write_bool(*b).unwrap();
            o.write_field_end().unwrap();
        }
        TV::Long(l) => i64_field(o, 6, *l),
        TV::Binary(b) => {
            begin(o, TType::String, 7);
            o.write_bytes(b).unwrap();
            o.write_field_end().unwrap();
        }
        TV::RawType(_) => {}
    }
    end_struct(o);
}

fn write_ref(o: Out, r: &TRef) {
    o.write_struct_begin(&TStructIdentifier::new("SpanRef"))
        .unwrap();
    i32_field(o, 1, r.ref_type);
    i64_field(o, 2, r.low);
    i64_field(o, 3, r.high);
    i64_field(o, 4, r.span_id);
    end_struct(o);
}

fn write_log(o: Out, l: &TLog) {
    o.write_struct_begin(&TStructIdentifier::new("Log"))
        .unwrap();
    i64_field(o, 1, l.ts);
    list_field(o, 2, &l.fields, write_tag);
    end_struct(o);
}

fn write_span(o: Out, s: &TSpan) {
    o.write_struct_begin(&TStructIdentifier::new("Span"))
        .unwrap();
    i64_field(o, 1, s.low);
    i64_field(o, 2, s.high);
    i64_field(o, 3, s.span_id);
    i64_field(o, 4, s.parent);
    str_field(o, 5, s.op);
    if let Some(refs) = &s.refs {
        list_field(o, 6, refs, write_ref);
    }
    i32_field(o, 7, s.flags);
    i64_field(o, 8, s.start);
    i64_field(o, 9, s.duration);
    if let Some(tags) = &s.tags {
        list_field(o, 10, tags, write_tag);
    }
    if let Some(logs) = &s.logs {
        list_field(o, 11, logs, write_log);
    }
    end_struct(o);
}

fn write_batch(o: Out, b: &TBatch) {
    o.write_struct_begin(&TStructIdentifier::new("Batch"))
        .unwrap();
    begin(o, TType::Struct, 1);
    o.write_struct_begin(&TStructIdentifier::new("Process"))
        .unwrap();
    str_field(o, 1, b.service);
    if let Some(tags) = &b.process_tags {
        list_field(o, 2, tags, write_tag);
    }
    end_struct(o);
    o.write_field_end().unwrap();
    list_field(o, 2, &b.spans, write_span);
    if let Some(seq) = b.seq_no {
        i64_field(o, 3, seq);
    }
    end_struct(o);
}

fn encode(protocol: AgentProtocol, write: impl FnOnce(Out)) -> Vec<u8> {
    let mut buf = Vec::new();
    match protocol {
        AgentProtocol::Binary => {
            let mut o = TBinaryOutputProtocol::new(&mut buf, true);
            write(&mut o);
            o.flush().unwrap();
        }
        AgentProtocol::Compact => {
            let mut o = TCompactOutputProtocol::new(&mut buf);
            write(&mut o);
            o.flush().unwrap();
        }
    }
    buf
}

fn batch_bytes(b: &TBatch) -> Vec<u8> {
    encode(AgentProtocol::Binary, |o| write_batch(o, b))
}

fn datagram(protocol: AgentProtocol, name: &str, kind: TMessageType, b: &TBatch) -> Vec<u8> {
    encode(protocol, |o| {
        o.write_message_begin(&TMessageIdentifier::new(name, kind, 7))
            .unwrap();
        o.write_struct_begin(&TStructIdentifier::new("emitBatch_args"))
            .unwrap();
        begin(o, TType::Struct, 1);
        write_batch(o, b);
        o.write_field_end().unwrap();
        end_struct(o);
        o.write_message_end().unwrap();
    })
}

// ---- OTLP inspection helpers ----

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn keys(attrs: &[KeyValue]) -> Vec<&str> {
    attrs.iter().map(|kv| kv.key.as_str()).collect()
}

fn s(v: &str) -> Value {
    Value::StringValue(v.to_owned())
}

fn only_spans(req: &ExportTraceServiceRequest) -> &[Span] {
    assert_eq!(req.resource_spans.len(), 1);
    assert_eq!(req.resource_spans[0].scope_spans.len(), 1);
    &req.resource_spans[0].scope_spans[0].spans
}

const HIGH: i64 = 0x0102_0304_0506_0708;
const LOW: i64 = -0x0f0e_0d0c_0b0a_0909; // high bit set: IDs are unsigned on the wire

fn full_batch() -> TBatch {
    TBatch {
        service: "checkout",
        process_tags: Some(vec![
            TTag("hostname", TV::Str("host-1")),
            TTag("jaeger.version", TV::Str("Go-2.30.0")),
            TTag("ip", TV::Str("10.0.0.1")),
        ]),
        spans: vec![
            TSpan {
                low: LOW,
                high: HIGH,
                span_id: 0x11,
                parent: 0x22,
                op: "GET /cart",
                refs: Some(vec![
                    // The parent: excluded from links.
                    TRef {
                        ref_type: 0,
                        low: LOW,
                        high: HIGH,
                        span_id: 0x22,
                    },
                    TRef {
                        ref_type: 1,
                        low: 5,
                        high: 0,
                        span_id: 0x33,
                    },
                ]),
                flags: 1,
                start: 1_700_000_000_000_000,
                duration: 1_500,
                tags: Some(vec![
                    TTag("s", TV::Str("text")),
                    TTag("d", TV::Double(2.5)),
                    TTag("b", TV::Bool(true)),
                    TTag("l", TV::Long(-42)),
                    TTag("bin", TV::Binary(vec![0, 1, 0xff])),
                    TTag("span.kind", TV::Str("client")),
                    TTag("http.status_code", TV::Long(404)),
                    TTag("http.status_message", TV::Str("Not Found")),
                    TTag("otel.scope.name", TV::Str("kept-in-thrift")),
                    TTag("w3c.tracestate", TV::Str("kept=1")),
                ]),
                logs: Some(vec![
                    TLog {
                        ts: 1_700_000_000_000_100,
                        fields: vec![TTag("event", TV::Str("retry")), TTag("n", TV::Long(2))],
                    },
                    TLog {
                        ts: 1_700_000_000_000_200,
                        fields: vec![],
                    },
                ]),
            },
            // A blank span: skipped.
            TSpan::default(),
            TSpan {
                low: 9,
                span_id: 0x44,
                op: "64-bit",
                refs: Some(vec![
                    TRef {
                        ref_type: 1,
                        low: 9,
                        high: 0,
                        span_id: 0x55,
                    },
                    TRef {
                        ref_type: 0,
                        low: 9,
                        high: 0,
                        span_id: 0x66,
                    },
                ]),
                start: 10,
                duration: 5,
                ..TSpan::default()
            },
        ],
        seq_no: Some(3),
    }
}

#[test]
fn thrift_batch_maps_as_the_collector_does() {
    let req = decode_thrift_batch(&batch_bytes(&full_batch())).unwrap();
    let rs = &req.resource_spans[0];
    let resource = &rs.resource.as_ref().unwrap().attributes;
    // service.name first; host.name appended and hostname swap-removed (host.name takes its
    // slot), then the same for jaeger.version -> opencensus.exporterversion.
    assert_eq!(
        keys(resource),
        [
            "service.name",
            "host.name",
            "opencensus.exporterversion",
            "ip"
        ]
    );
    assert_eq!(attr(resource, "service.name"), Some(&s("checkout")));
    assert_eq!(attr(resource, "host.name"), Some(&s("host-1")));
    assert_eq!(
        attr(resource, "opencensus.exporterversion"),
        Some(&s("Jaeger-Go-2.30.0"))
    );
    let scope = rs.scope_spans[0].scope.as_ref().unwrap();
    assert_eq!((scope.name.as_str(), scope.version.as_str()), ("", ""));

    let spans = only_spans(&req);
    assert_eq!(spans.len(), 2, "the blank span is skipped");
    let a = &spans[0];
    let mut trace_id = HIGH.to_be_bytes().to_vec();
    trace_id.extend_from_slice(&LOW.to_be_bytes());
    assert_eq!(a.trace_id, trace_id);
    assert_eq!(a.span_id, 0x11u64.to_be_bytes());
    assert_eq!(a.parent_span_id, 0x22u64.to_be_bytes());
    assert_eq!(a.name, "GET /cart");
    assert_eq!(a.kind, 3, "client");
    assert_eq!(a.start_time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(a.end_time_unix_nano, 1_700_000_000_001_500_000);
    assert_eq!(a.trace_state, "", "thrift has no trace state");
    assert_eq!(attr(&a.attributes, "s"), Some(&s("text")));
    assert_eq!(attr(&a.attributes, "d"), Some(&Value::DoubleValue(2.5)));
    assert_eq!(attr(&a.attributes, "b"), Some(&Value::BoolValue(true)));
    assert_eq!(attr(&a.attributes, "l"), Some(&Value::IntValue(-42)));
    assert_eq!(
        attr(&a.attributes, "bin"),
        Some(&Value::BytesValue(vec![0, 1, 0xff]))
    );
    assert_eq!(attr(&a.attributes, "span.kind"), None);
    assert_eq!(
        attr(&a.attributes, "http.status_code"),
        Some(&Value::IntValue(404))
    );
    assert_eq!(
        attr(&a.attributes, "otel.scope.name"),
        Some(&s("kept-in-thrift"))
    );
    assert_eq!(attr(&a.attributes, "w3c.tracestate"), Some(&s("kept=1")));
    let status = a.status.as_ref().unwrap();
    assert_eq!((status.code, status.message.as_str()), (2, "Not Found"));

    assert_eq!(a.events.len(), 2);
    assert_eq!(a.events[0].name, "retry");
    assert_eq!(a.events[0].time_unix_nano, 1_700_000_000_000_100_000);
    assert_eq!(keys(&a.events[0].attributes), ["n"]);
    assert_eq!(a.events[1].name, "");
    assert!(a.events[1].attributes.is_empty());

    assert_eq!(a.links.len(), 1, "the CHILD_OF parent is not a link");
    let mut link_trace = 0u64.to_be_bytes().to_vec();
    link_trace.extend_from_slice(&5u64.to_be_bytes());
    assert_eq!(a.links[0].trace_id, link_trace);
    assert_eq!(a.links[0].span_id, 0x33u64.to_be_bytes());
    assert_eq!(
        attr(&a.links[0].attributes, "opentracing.ref_type"),
        Some(&s("follows_from"))
    );

    // 64-bit trace ID; no parentSpanId, so the CHILD_OF ref (preferred over the earlier
    // FOLLOWS_FROM) is the parent, and only the FOLLOWS_FROM one is a link.
    let b = &spans[1];
    let mut trace_id = vec![0; 8];
    trace_id.extend_from_slice(&9u64.to_be_bytes());
    assert_eq!(b.trace_id, trace_id);
    assert_eq!(b.parent_span_id, 0x66u64.to_be_bytes());
    assert_eq!(b.links.len(), 1);
    assert_eq!(b.links[0].span_id, 0x55u64.to_be_bytes());
    assert_eq!(b.kind, 0);
    assert_eq!(b.status, Some(Default::default()));
    assert_eq!(
        (b.start_time_unix_nano, b.end_time_unix_nano),
        (10_000, 15_000)
    );
}

#[test]
fn thrift_parent_falls_back_to_follows_from_and_keeps_it_as_link() {
    let batch = TBatch {
        spans: vec![TSpan {
            low: 1,
            span_id: 2,
            op: "x",
            refs: Some(vec![
                TRef {
                    ref_type: 1,
                    low: 7,
                    high: 0,
                    span_id: 8,
                }, // other trace
                TRef {
                    ref_type: 1,
                    low: 1,
                    high: 0,
                    span_id: 3,
                },
            ]),
            ..TSpan::default()
        }],
        ..empty_batch()
    };
    let req = decode_thrift_batch(&batch_bytes(&batch)).unwrap();
    let span = &only_spans(&req)[0];
    assert_eq!(span.parent_span_id, 3u64.to_be_bytes());
    assert_eq!(
        span.links.len(),
        2,
        "only CHILD_OF refs to the parent are dropped"
    );
}

fn empty_batch() -> TBatch {
    TBatch {
        service: "svc",
        process_tags: None,
        spans: vec![],
        seq_no: None,
    }
}

/// Status, kind and trace-state cases, all through one helper: span tags in, then the
/// expected (kind, status code and message or None, remaining attribute keys).
#[test]
fn special_tags() {
    type Case = (
        Vec<TTag>,
        i32,
        Option<(i32, &'static str)>,
        Vec<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (vec![], 0, None, vec![]),
        (vec![TTag("span.kind", TV::Str("server"))], 2, None, vec![]),
        (
            vec![TTag("span.kind", TV::Str("producer"))],
            4,
            None,
            vec![],
        ),
        (
            vec![TTag("span.kind", TV::Str("consumer"))],
            5,
            None,
            vec![],
        ),
        (
            vec![TTag("span.kind", TV::Str("internal"))],
            1,
            None,
            vec![],
        ),
        (vec![TTag("span.kind", TV::Str("bogus"))], 0, None, vec![]),
        (vec![TTag("span.kind", TV::Long(1))], 0, None, vec![]),
        (
            vec![TTag("error", TV::Bool(true))],
            0,
            Some((2, "")),
            vec![],
        ),
        (vec![TTag("error", TV::Bool(false))], 0, None, vec!["error"]),
        (vec![TTag("error", TV::Str("true"))], 0, None, vec!["error"]),
        (
            vec![
                TTag("error", TV::Bool(true)),
                TTag("otel.status_description", TV::Str("boom")),
                TTag("http.status_message", TV::Str("ignored")),
            ],
            0,
            Some((2, "boom")),
            vec!["http.status_message"],
        ),
        (
            vec![
                TTag("error", TV::Bool(true)),
                TTag("http.status_message", TV::Str("Bad")),
            ],
            0,
            Some((2, "Bad")),
            vec!["http.status_message"],
        ),
        // error=true wins over otel.status_code, which is removed regardless.
        (
            vec![
                TTag("error", TV::Bool(true)),
                TTag("otel.status_code", TV::Str("OK")),
            ],
            0,
            Some((2, "")),
            vec![],
        ),
        (
            vec![TTag("otel.status_code", TV::Str("ok"))],
            0,
            Some((1, "")),
            vec![],
        ),
        (
            vec![
                TTag("otel.status_code", TV::Str("Error")),
                TTag("otel.status_description", TV::Str("d")),
            ],
            0,
            Some((2, "d")),
            vec![],
        ),
        (
            vec![TTag("otel.status_code", TV::Str("weird"))],
            0,
            Some((0, "")),
            vec![],
        ),
        // otel.status_code present: http.status_code is not consulted.
        (
            vec![
                TTag("otel.status_code", TV::Str("OK")),
                TTag("http.status_code", TV::Long(500)),
            ],
            0,
            Some((1, "")),
            vec!["http.status_code"],
        ),
        (
            vec![TTag("http.status_code", TV::Long(200))],
            0,
            None,
            vec!["http.status_code"],
        ),
        (
            vec![TTag("http.status_code", TV::Long(399))],
            0,
            Some((2, "")),
            vec!["http.status_code"],
        ),
        (
            vec![TTag("http.status_code", TV::Str("503"))],
            0,
            Some((2, "")),
            vec!["http.status_code"],
        ),
        (
            vec![TTag("http.status_code", TV::Str("x"))],
            0,
            None,
            vec!["http.status_code"],
        ),
        (
            vec![TTag("http.status_code", TV::Double(500.0))],
            0,
            None,
            vec!["http.status_code"],
        ),
        (
            vec![TTag("http.status_code", TV::Long(404))],
            0,
            Some((2, "")),
            vec!["http.status_code"],
        ),
        (
            vec![
                TTag("span.kind", TV::Str("server")),
                TTag("http.status_code", TV::Long(404)),
            ],
            2,
            None,
            vec!["http.status_code"],
        ),
        (
            vec![
                TTag("span.kind", TV::Str("client")),
                TTag("http.status_code", TV::Long(404)),
            ],
            3,
            Some((2, "")),
            vec!["http.status_code"],
        ),
        (
            vec![
                TTag("http.status_code", TV::Long(502)),
                TTag("http.status_message", TV::Str("gw")),
            ],
            0,
            Some((2, "gw")),
            vec!["http.status_code", "http.status_message"],
        ),
        (vec![TTag("x", TV::RawType(9))], 0, None, vec!["x"]),
    ];
    for (i, (tags, kind, status, remaining)) in cases.into_iter().enumerate() {
        let batch = TBatch {
            spans: vec![TSpan {
                low: 1,
                span_id: 1,
                tags: Some(tags),
                ..TSpan::default()
            }],
            ..empty_batch()
        };
        let req = decode_thrift_batch(&batch_bytes(&batch)).unwrap();
        let span = &only_spans(&req)[0];
        assert_eq!(span.kind, kind, "case {i}");
        // An untouched status and an explicit UNSET with no message encode alike.
        let (code, message) = status.unwrap_or((0, ""));
        let got = span.status.as_ref().unwrap();
        assert_eq!(
            (got.code, got.message.as_str()),
            (code, message),
            "case {i}"
        );
        let mut remaining_keys = keys(&span.attributes);
        remaining_keys.sort_unstable();
        assert_eq!(remaining_keys, remaining, "case {i}");
    }
}

#[test]
fn unknown_tag_type_and_pcommon_map_semantics() {
    let batch = TBatch {
        spans: vec![TSpan {
            low: 1,
            span_id: 1,
            tags: Some(vec![
                TTag("a", TV::Str("1")),
                TTag("span.kind", TV::Str("client")),
                TTag("c", TV::Str("3")),
                TTag("a", TV::Long(2)),
                TTag("u", TV::RawType(9)),
            ]),
            ..TSpan::default()
        }],
        ..empty_batch()
    };
    let req = decode_thrift_batch(&batch_bytes(&batch)).unwrap();
    let span = &only_spans(&req)[0];
    // "a" overwritten in place; span.kind's slot taken by the last attribute ("u").
    assert_eq!(keys(&span.attributes), ["a", "u", "c"]);
    assert_eq!(attr(&span.attributes, "a"), Some(&Value::IntValue(2)));
    assert_eq!(
        attr(&span.attributes, "u"),
        Some(&s("<Unknown Jaeger TagType \"<UNSET>\">"))
    );
}

#[test]
fn agent_datagrams_in_both_protocols() {
    let batch = full_batch();
    let want = decode_thrift_batch(&batch_bytes(&batch)).unwrap();
    for protocol in [AgentProtocol::Compact, AgentProtocol::Binary] {
        for kind in [TMessageType::OneWay, TMessageType::Call] {
            let bytes = datagram(protocol, "emitBatch", kind, &batch);
            assert_eq!(
                decode_agent_datagram(&bytes, protocol).unwrap(),
                want,
                "{protocol:?}"
            );
        }
    }
    // Binary, non-strict (old) message header: name length first.
    let old = encode(AgentProtocol::Binary, |_| {});
    let mut bytes = old;
    bytes.extend_from_slice(&9i32.to_be_bytes());
    bytes.extend_from_slice(b"emitBatch");
    bytes.push(4); // ONEWAY
    bytes.extend_from_slice(&1i32.to_be_bytes());
    let args = encode(AgentProtocol::Binary, |o| {
        o.write_struct_begin(&TStructIdentifier::new("args"))
            .unwrap();
        begin(o, TType::Struct, 1);
        write_batch(o, &batch);
        o.write_field_end().unwrap();
        end_struct(o);
    });
    bytes.extend_from_slice(&args);
    assert_eq!(
        decode_agent_datagram(&bytes, AgentProtocol::Binary).unwrap(),
        want
    );
}

#[test]
fn agent_args_without_batch_is_empty() {
    let bytes = encode(AgentProtocol::Compact, |o| {
        o.write_message_begin(&TMessageIdentifier::new(
            "emitBatch",
            TMessageType::OneWay,
            1,
        ))
        .unwrap();
        o.write_struct_begin(&TStructIdentifier::new("args"))
            .unwrap();
        end_struct(o);
        o.write_message_end().unwrap();
    });
    let req = decode_agent_datagram(&bytes, AgentProtocol::Compact).unwrap();
    assert_eq!(req, ExportTraceServiceRequest::default());
}

#[test]
fn unknown_fields_are_skipped() {
    let bytes = encode(AgentProtocol::Binary, |o| {
        o.write_struct_begin(&TStructIdentifier::new("Batch"))
            .unwrap();
        // Unknown field 9: a list of structs with nested junk.
        begin(o, TType::List, 9);
        o.write_list_begin(&TListIdentifier::new(TType::Struct, 1))
            .unwrap();
        o.write_struct_begin(&TStructIdentifier::new("x")).unwrap();
        str_field(o, 1, "junk");
        end_struct(o);
        o.write_list_end().unwrap();
        o.write_field_end().unwrap();
        begin(o, TType::Struct, 1);
        o.write_struct_begin(&TStructIdentifier::new("Process"))
            .unwrap();
        str_field(o, 1, "svc");
        i64_field(o, 3, 99); // unknown Process field
        end_struct(o);
        o.write_field_end().unwrap();
        list_field(
            o,
            2,
            &[TSpan {
                low: 1,
                span_id: 1,
                ..TSpan::default()
            }],
            write_span,
        );
        end_struct(o);
    });
    let req = decode_thrift_batch(&bytes).unwrap();
    assert_eq!(only_spans(&req).len(), 1);
}

#[test]
fn thrift_empty_spans_list_gives_resource_only() {
    let req = decode_thrift_batch(&batch_bytes(&empty_batch())).unwrap();
    assert_eq!(req.resource_spans.len(), 1);
    assert!(req.resource_spans[0].scope_spans.is_empty());
    // All spans blank: one scope, no spans (as the collector).
    let batch = TBatch {
        spans: vec![TSpan::default()],
        ..empty_batch()
    };
    let req = decode_thrift_batch(&batch_bytes(&batch)).unwrap();
    assert_eq!(req.resource_spans[0].scope_spans.len(), 1);
    assert!(req.resource_spans[0].scope_spans[0].spans.is_empty());
}

// ---- errors, through one helper ----

enum Input {
    Http(Vec<u8>),
    Agent(AgentProtocol, Vec<u8>),
    Grpc(Vec<u8>),
}

fn check_err(input: Input, want: &str) {
    let got = match &input {
        Input::Http(b) => decode_thrift_batch(b),
        Input::Agent(p, b) => decode_agent_datagram(b, *p),
        Input::Grpc(b) => decode_grpc_post_spans(b),
    };
    let err = got.expect_err(want).message;
    assert!(
        err.contains(want),
        "error {err:?} does not contain {want:?}"
    );
}

fn binary_struct(write: impl FnOnce(Out)) -> Vec<u8> {
    encode(AgentProtocol::Binary, |o| {
        o.write_struct_begin(&TStructIdentifier::new("s")).unwrap();
        write(o);
        end_struct(o);
    })
}

#[test]
fn errors() {
    use AgentProtocol::{Binary, Compact};
    let batch = full_batch();
    // Batch.process.serviceName declared 2^31 - 16 bytes long.
    let mut huge_string = binary_struct(|o| {
        begin(o, TType::Struct, 1);
        o.write_struct_begin(&TStructIdentifier::new("Process"))
            .unwrap();
        begin(o, TType::String, 1);
        o.write_field_stop().unwrap();
    });
    huge_string.truncate(huge_string.len() - 2); // drop both stop bytes
    huge_string.extend_from_slice(&0x7fff_fff0i32.to_be_bytes());
    // The same in an unknown field, which the crate skips: its own size limit refuses it.
    let mut huge_skipped = binary_struct(|o| begin(o, TType::String, 99));
    huge_skipped.truncate(huge_skipped.len() - 1);
    huge_skipped.extend_from_slice(&0x7fff_fff0i32.to_be_bytes());
    let mut huge_list = binary_struct(|o| begin(o, TType::List, 2));
    huge_list.truncate(huge_list.len() - 1);
    huge_list.push(12); // struct elements
    huge_list.extend_from_slice(&0x7fff_fff0i32.to_be_bytes());
    let mut cut_in_fourth_span = batch_bytes(&TBatch {
        spans: vec![
            TSpan::default(),
            TSpan::default(),
            TSpan::default(),
            TSpan {
                tags: Some(vec![TTag("k", TV::Str("value"))]),
                ..TSpan::default()
            },
        ],
        ..empty_batch()
    });
    // Drop the batch, span and tag stop bytes and the last bytes of the tag's value.
    cut_in_fourth_span.truncate(cut_in_fourth_span.len() - 5);
    let mut reply = datagram(Compact, "emitBatch", TMessageType::OneWay, &batch);
    reply[1] = (reply[1] & 0x1f) | (2 << 5); // message type REPLY

    let proto_span = |span: proto::Span| {
        proto::PostSpansRequest {
            batch: Some(proto::Batch {
                spans: vec![span],
                process: None,
            }),
        }
        .encode_to_vec()
    };
    let ok_span = proto::Span {
        trace_id: Some(vec![1; 16]),
        span_id: Some(vec![2; 8]),
        ..Default::default()
    };

    let cases: Vec<(Input, &str)> = vec![
        (Input::Http(vec![]), "jaeger thrift Batch: field header: truncated input"),
        (
            Input::Http(binary_struct(|_| {})),
            "jaeger thrift Batch: required field 1 (process) missing",
        ),
        (
            Input::Http(binary_struct(|o| {
                begin(o, TType::Struct, 1);
                o.write_struct_begin(&TStructIdentifier::new("Process")).unwrap();
                str_field(o, 1, "svc");
                end_struct(o);
                o.write_field_end().unwrap();
                i32_field(o, 2, 5);
            })),
            "field 2 (spans) has type i32, expected list",
        ),
        (
            Input::Http(binary_struct(|o| {
                begin(o, TType::Struct, 1);
                o.write_struct_begin(&TStructIdentifier::new("Process")).unwrap();
                end_struct(o);
                o.write_field_end().unwrap();
            })),
            "field 1 (process): required field 1 (serviceName) missing",
        ),
        (Input::Http(cut_in_fourth_span), "field 2 (spans): span 3: field 10 (tags): tag 0: "),
        (
            Input::Http(huge_string),
            "field 1 (process): field 1 (serviceName): length 2147483632 exceeds the 0 bytes remaining",
        ),
        (
            Input::Http(huge_skipped),
            "skipping field 99: Byte array size 2147483632 exceeds maximum allowed size of 7",
        ),
        (
            Input::Http(huge_list),
            "field 2 (spans): Container size 2147483632 exceeds maximum allowed size of 8",
        ),
        (
            Input::Agent(Compact, datagram(Compact, "emitZipkinBatch", TMessageType::OneWay, &batch)),
            "jaeger agent compact: unknown method \"emitZipkinBatch\"",
        ),
        (
            Input::Agent(Binary, datagram(Binary, "getTrace", TMessageType::Call, &batch)),
            "jaeger agent binary: unknown method \"getTrace\"",
        ),
        (Input::Agent(Compact, reply), "expected ONEWAY or CALL"),
        (Input::Agent(Compact, vec![0x99]), "message header"),
        (Input::Agent(Binary, vec![0; AGENT_DATAGRAM_BYTES_MAX + 1]), "exceeds 65000"),
        (
            Input::Agent(Binary, {
                // Non-strict header whose name length is far past the input.
                let mut b = 0x7fff_0000i32.to_be_bytes().to_vec();
                b.extend_from_slice(b"emit");
                b
            }),
            "message header",
        ),
        (Input::Grpc(vec![0x0a, 0x05, 0x0a]), "jaeger proto PostSpansRequest: "),
        (
            Input::Grpc(proto_span(proto::Span { trace_id: Some(vec![1; 8]), ..ok_span.clone() })),
            "span 0: trace_id of 8 bytes, need 16",
        ),
        (
            Input::Grpc(proto_span(proto::Span { span_id: Some(vec![1; 16]), ..ok_span.clone() })),
            "span 0: span_id of 16 bytes, need 8",
        ),
        (
            Input::Grpc(proto_span(proto::Span { span_id: Some(vec![]), ..Default::default() })),
            "span 0: span_id of 0 bytes, need 8",
        ),
        (
            Input::Grpc(proto_span(proto::Span {
                start_time: Some(proto::Timestamp { seconds: 0, nanos: -1 }),
                ..ok_span.clone()
            })),
            "span 0: start_time: timestamp nanos -1 out of range",
        ),
        (
            Input::Grpc(proto_span(proto::Span {
                start_time: Some(proto::Timestamp { seconds: i64::MAX, nanos: 0 }),
                ..ok_span.clone()
            })),
            "outside [0001-01-01, 10000-01-01)",
        ),
        (
            Input::Grpc(proto_span(proto::Span {
                duration: Some(proto::Duration { seconds: 1, nanos: -1 }),
                ..ok_span.clone()
            })),
            "span 0: duration: duration nanos -1 out of range for seconds 1",
        ),
        (
            Input::Grpc(proto_span(proto::Span {
                duration: Some(proto::Duration { seconds: 315_576_000_000, nanos: 0 }),
                ..ok_span.clone()
            })),
            "out of range for time.Duration",
        ),
        (
            Input::Grpc(proto_span(proto::Span {
                references: vec![proto::ProtoSpanRef {
                    trace_id: Some(vec![1; 3]),
                    span_id: None,
                    ref_type: 0,
                }],
                ..ok_span.clone()
            })),
            "span 0: reference 0: trace_id of 3 bytes, need 16",
        ),
        (
            Input::Grpc(proto_span(proto::Span {
                logs: vec![proto::ProtoLog {
                    timestamp: Some(proto::Timestamp { seconds: 1, nanos: 1_000_000_000 }),
                    fields: vec![],
                }],
                ..ok_span.clone()
            })),
            "span 0: log 0: timestamp nanos 1000000000 out of range",
        ),
    ];
    for (input, want) in cases {
        check_err(input, want);
    }
}

/// Every proper prefix of a valid message is an error, never a panic; so is every
/// single-byte corruption that the decoder notices (the rest must decode without panicking).
#[test]
fn truncation_and_corruption_never_panic() {
    let batch = full_batch();
    for protocol in [AgentProtocol::Compact, AgentProtocol::Binary] {
        let bytes = datagram(protocol, "emitBatch", TMessageType::OneWay, &batch);
        for len in 0..bytes.len() {
            let got = decode_agent_datagram(&bytes[..len], protocol);
            assert!(got.is_err(), "{protocol:?} prefix of {len} bytes decoded");
        }
        for i in 0..bytes.len() {
            for value in [0x00, 0x01, 0x0c, 0x7f, 0x80, 0xff] {
                let mut corrupt = bytes.clone();
                corrupt[i] = value;
                let _ = decode_agent_datagram(&corrupt, protocol);
            }
        }
    }
    let body = batch_bytes(&batch);
    for len in 0..body.len() {
        assert!(
            decode_thrift_batch(&body[..len]).is_err(),
            "prefix of {len} bytes decoded"
        );
    }
    let message = proto_request().encode_to_vec();
    for len in 0..message.len() {
        let _ = decode_grpc_post_spans(&message[..len]);
    }
    for i in 0..message.len() {
        let mut corrupt = message.clone();
        corrupt[i] ^= 0xff;
        let _ = decode_grpc_post_spans(&corrupt);
    }
}

// ---- protobuf ----

fn kv(key: &str, v_type: i32) -> proto::KeyValue {
    proto::KeyValue {
        key: key.as_bytes().to_vec(),
        v_type,
        ..Default::default()
    }
}

fn kv_str(key: &str, value: &str) -> proto::KeyValue {
    proto::KeyValue {
        v_str: value.as_bytes().to_vec(),
        ..kv(key, 0)
    }
}

fn proto_request() -> proto::PostSpansRequest {
    let trace: Vec<u8> = (1..=16).collect();
    let span = |id: u8, tags: Vec<proto::KeyValue>| proto::Span {
        trace_id: Some(trace.clone()),
        span_id: Some(vec![0, 0, 0, 0, 0, 0, 0, id]),
        operation_name: format!("op{id}").into_bytes(),
        start_time: Some(proto::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        }),
        duration: Some(proto::Duration {
            seconds: 1,
            nanos: 500,
        }),
        tags,
        ..Default::default()
    };
    let batch_process = proto::ProtoProcess {
        service_name: b"frontend".to_vec(),
        tags: vec![kv_str("hostname", "h")],
    };
    let other_process = proto::ProtoProcess {
        service_name: b"backend".to_vec(),
        tags: vec![],
    };
    let mut s1 = span(
        1,
        vec![
            kv_str("otel.scope.name", "lib-a"),
            kv_str("otel.scope.version", "1.0"),
            kv_str("w3c.tracestate", "vendor=x"),
            proto::KeyValue {
                v_bool: true,
                ..kv("b", 1)
            },
            proto::KeyValue {
                v_int64: 7,
                ..kv("i", 2)
            },
            proto::KeyValue {
                v_float64: 0.5,
                ..kv("f", 3)
            },
            proto::KeyValue {
                v_binary: vec![9],
                ..kv("bin", 4)
            },
            kv("u", 7),
        ],
    );
    s1.references = vec![
        proto::ProtoSpanRef {
            trace_id: Some(trace.clone()),
            span_id: Some(vec![0, 0, 0, 0, 0, 0, 0, 9]),
            ref_type: 1,
        },
        proto::ProtoSpanRef {
            trace_id: Some(trace.clone()),
            span_id: Some(vec![0, 0, 0, 0, 0, 0, 0, 8]),
            ref_type: 0,
        },
    ];
    s1.logs = vec![proto::ProtoLog {
        timestamp: Some(proto::Timestamp {
            seconds: 1_700_000_001,
            nanos: 0,
        }),
        fields: vec![kv_str("event", "ev"), kv_str("k", "v")],
    }];
    let s2 = span(
        2,
        vec![
            kv_str("otel.scope.version", "no-name"),
            kv_str("span.kind", "server"),
        ],
    );
    let s3 = proto::Span {
        process: Some(other_process.clone()),
        ..span(3, vec![])
    };
    let s4 = span(
        4,
        vec![
            kv_str("otel.scope.name", "lib-a"),
            kv_str("otel.scope.version", "1.0"),
        ],
    );
    // Same content as the batch process: joins the batch's group.
    let s5 = proto::Span {
        process: Some(batch_process.clone()),
        ..span(5, vec![])
    };
    proto::PostSpansRequest {
        batch: Some(proto::Batch {
            spans: vec![s1, s2, s3, proto::Span::default(), s4, s5],
            process: Some(batch_process),
        }),
    }
}

#[test]
fn grpc_post_spans_maps_and_groups_as_the_collector_does() {
    let req = decode_grpc_post_spans(&proto_request().encode_to_vec()).unwrap();
    assert_eq!(req.resource_spans.len(), 2);

    let frontend = &req.resource_spans[0];
    let resource = &frontend.resource.as_ref().unwrap().attributes;
    assert_eq!(keys(resource), ["service.name", "host.name"]);
    assert_eq!(attr(resource, "service.name"), Some(&s("frontend")));
    let scopes: Vec<(&str, &str, Vec<&str>)> = frontend
        .scope_spans
        .iter()
        .map(|ss| {
            let scope = ss.scope.as_ref().unwrap();
            (
                scope.name.as_str(),
                scope.version.as_str(),
                ss.spans.iter().map(|s| s.name.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        scopes,
        [
            ("lib-a", "1.0", vec!["op1", "op4"]),
            ("", "", vec!["op2", "op5"])
        ]
    );

    let s1 = &frontend.scope_spans[0].spans[0];
    assert_eq!(s1.trace_id, (1..=16).collect::<Vec<u8>>());
    assert_eq!(s1.span_id, [0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(s1.trace_state, "vendor=x");
    assert_eq!(
        s1.parent_span_id,
        [0, 0, 0, 0, 0, 0, 0, 8],
        "CHILD_OF beats FOLLOWS_FROM"
    );
    assert_eq!(s1.links.len(), 1);
    assert_eq!(s1.links[0].span_id, [0, 0, 0, 0, 0, 0, 0, 9]);
    assert_eq!(s1.start_time_unix_nano, 1_700_000_000_000_000_005);
    assert_eq!(s1.end_time_unix_nano, 1_700_000_001_000_000_505);
    // Scope tags are taken out of the tag list; w3c.tracestate is swap-removed from the map.
    assert_eq!(keys(&s1.attributes), ["u", "b", "i", "f", "bin"]);
    assert_eq!(attr(&s1.attributes, "b"), Some(&Value::BoolValue(true)));
    assert_eq!(attr(&s1.attributes, "i"), Some(&Value::IntValue(7)));
    assert_eq!(attr(&s1.attributes, "f"), Some(&Value::DoubleValue(0.5)));
    assert_eq!(
        attr(&s1.attributes, "bin"),
        Some(&Value::BytesValue(vec![9]))
    );
    assert_eq!(
        attr(&s1.attributes, "u"),
        Some(&s("<Unknown Jaeger TagType \"7\">"))
    );
    assert_eq!(s1.events.len(), 1);
    assert_eq!(s1.events[0].name, "ev");
    assert_eq!(s1.events[0].time_unix_nano, 1_700_000_001_000_000_000);

    // A scope version without a scope name stays an attribute.
    let s2 = &frontend.scope_spans[1].spans[0];
    assert_eq!(keys(&s2.attributes), ["otel.scope.version"]);
    assert_eq!(s2.kind, 2);

    let backend = &req.resource_spans[1];
    assert_eq!(
        attr(
            &backend.resource.as_ref().unwrap().attributes,
            "service.name"
        ),
        Some(&s("backend"))
    );
    assert_eq!(backend.scope_spans[0].spans[0].name, "op3");
}

#[test]
fn grpc_edge_cases() {
    // Empty request: nothing.
    assert_eq!(
        decode_grpc_post_spans(&[]).unwrap(),
        ExportTraceServiceRequest::default()
    );
    // No batch process, one span: a resource without attributes.
    let one = proto::PostSpansRequest {
        batch: Some(proto::Batch {
            spans: vec![proto::Span {
                operation_name: b"x".to_vec(),
                ..Default::default()
            }],
            process: None,
        }),
    };
    let req = decode_grpc_post_spans(&one.encode_to_vec()).unwrap();
    assert_eq!(req.resource_spans.len(), 1);
    assert!(req.resource_spans[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .is_empty());
    let span = &req.resource_spans[0].scope_spans[0].spans[0];
    // Absent IDs are zero (empty bytes); an absent start time is Go's zero time.Time,
    // whose UnixNano wraps.
    assert!(span.trace_id.is_empty() && span.span_id.is_empty());
    let zero_time = (-62_135_596_800i64).wrapping_mul(1_000_000_000) as u64;
    assert_eq!(span.start_time_unix_nano, zero_time);

    // Every span carries its own process: the batch process still yields a resource.
    let own = proto::PostSpansRequest {
        batch: Some(proto::Batch {
            spans: vec![proto::Span {
                operation_name: b"x".to_vec(),
                process: Some(proto::ProtoProcess {
                    service_name: b"a".to_vec(),
                    tags: vec![],
                }),
                ..Default::default()
            }],
            process: Some(proto::ProtoProcess {
                service_name: b"OTLPResourceNoServiceName".to_vec(),
                tags: vec![kv_str("dropped", "too")],
            }),
        }),
    };
    let req = decode_grpc_post_spans(&own.encode_to_vec()).unwrap();
    assert_eq!(req.resource_spans.len(), 2);
    assert!(req.resource_spans[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .is_empty());
    assert!(req.resource_spans[0].scope_spans.is_empty());
    assert_eq!(req.resource_spans[1].scope_spans[0].spans.len(), 1);

    // A trace ID longer than 16 bytes: the first 16 are used, as model.TraceID.Unmarshal does.
    let long = proto::PostSpansRequest {
        batch: Some(proto::Batch {
            spans: vec![proto::Span {
                trace_id: Some(vec![3; 20]),
                ..Default::default()
            }],
            process: None,
        }),
    };
    let req = decode_grpc_post_spans(&long.encode_to_vec()).unwrap();
    assert_eq!(
        req.resource_spans[0].scope_spans[0].spans[0].trace_id,
        vec![3; 16]
    );

    // Invalid UTF-8 is replaced, not refused (Go does not validate).
    let bad_utf8 = proto::PostSpansRequest {
        batch: Some(proto::Batch {
            spans: vec![proto::Span {
                operation_name: vec![b'a', 0xff],
                ..Default::default()
            }],
            process: None,
        }),
    };
    let req = decode_grpc_post_spans(&bad_utf8.encode_to_vec()).unwrap();
    assert_eq!(
        req.resource_spans[0].scope_spans[0].spans[0].name,
        "a\u{fffd}"
    );
}

#[test]
fn content_types() {
    assert!(check_thrift_content_type("application/x-thrift").is_ok());
    assert!(check_thrift_content_type("Application/Vnd.Apache.Thrift.Binary; charset=x").is_ok());
    assert_eq!(
        check_thrift_content_type("application/json")
            .unwrap_err()
            .message,
        "Unsupported content type: application/json"
    );
    assert!(check_thrift_content_type("").is_err());
}

#[test]
fn post_spans_response_is_empty() {
    assert!(proto::PostSpansResponse {}.encode_to_vec().is_empty());
    assert_eq!(POST_SPANS_PATH, "/jaeger.api_v2.CollectorService/PostSpans");
}

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use serde_json::Value;

use super::{decode, encode_response, encode_status, JSON_DEPTH_MAX};
use crate::ExportTraceServiceRequest;

/// `examples/trace.json` from github.com/open-telemetry/opentelemetry-proto (commit
/// ac2c4b5d1f3a6079de62f9afec860158ecc8af09), verbatim: it has no comments to strip.
const SPEC_EXAMPLE: &str = include_str!("../../tests/data/otlp_json/trace.json");

fn hex(s: &str) -> Vec<u8> {
    assert_eq!(s.len() % 2, 0);
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    }
}

fn string_value(s: &str) -> any_value::Value {
    any_value::Value::StringValue(s.to_owned())
}

#[test]
fn spec_example() {
    let want = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", string_value("my.service"))],
                dropped_attributes_count: 0,
                entity_refs: vec![],
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "my.library".to_owned(),
                    version: "1.0.0".to_owned(),
                    attributes: vec![kv(
                        "my.scope.attribute",
                        string_value("some scope attribute"),
                    )],
                    dropped_attributes_count: 0,
                }),
                spans: vec![Span {
                    trace_id: hex("5b8efff798038103d269b633813fc60c"),
                    span_id: hex("eee19b7ec3c1b174"),
                    parent_span_id: hex("eee19b7ec3c1b173"),
                    name: "I'm a server span".to_owned(),
                    start_time_unix_nano: 1_544_712_660_000_000_000,
                    end_time_unix_nano: 1_544_712_661_000_000_000,
                    kind: SpanKind::Server as i32,
                    attributes: vec![kv("my.span.attr", string_value("some value"))],
                    ..Span::default()
                }],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    assert_eq!(decode(SPEC_EXAMPLE.as_bytes()).unwrap(), want);
}

/// A request with every field of every message set, as the JSON texts below write it.
fn full_request() -> ExportTraceServiceRequest {
    let nested = any_value::Value::KvlistValue(KeyValueList {
        values: vec![
            kv("inner", any_value::Value::IntValue(7)),
            kv(
                "list",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(string_value("a")),
                        },
                        AnyValue { value: None },
                        AnyValue {
                            value: Some(any_value::Value::BoolValue(false)),
                        },
                    ],
                }),
            ),
        ],
    });
    let span = Span {
        trace_id: hex("5b8efff798038103d269b633813fc60c"),
        span_id: hex("eee19b7ec3c1b174"),
        trace_state: "rojo=00f067aa0ba902b7".to_owned(),
        parent_span_id: hex("eee19b7ec3c1b173"),
        flags: 769,
        name: "GET /api".to_owned(),
        kind: SpanKind::Client as i32,
        start_time_unix_nano: 1_544_712_660_000_000_000,
        end_time_unix_nano: u64::MAX,
        attributes: vec![
            kv("s", string_value("x \"quoted\" \u{e9}")),
            kv("b", any_value::Value::BoolValue(true)),
            kv("i", any_value::Value::IntValue(i64::MIN)),
            kv("d", any_value::Value::DoubleValue(1.5)),
            kv(
                "a",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(string_value("one")),
                        },
                        AnyValue {
                            value: Some(any_value::Value::IntValue(2)),
                        },
                    ],
                }),
            ),
            kv("kv", nested),
            kv(
                "bytes",
                any_value::Value::BytesValue(vec![0, 1, 2, 0xfe, 0xff]),
            ),
            kv("strindex", any_value::Value::StringValueStrindex(3)),
            KeyValue {
                key: String::new(),
                value: Some(AnyValue { value: None }),
                key_strindex: 4,
            },
            KeyValue {
                key: "no value".to_owned(),
                value: None,
                key_strindex: 0,
            },
        ],
        dropped_attributes_count: 3,
        events: vec![Event {
            time_unix_nano: 1_544_712_660_500_000_000,
            name: "exception".to_owned(),
            attributes: vec![kv("exception.type", string_value("E"))],
            dropped_attributes_count: 4,
        }],
        dropped_events_count: 5,
        links: vec![Link {
            trace_id: hex("0102030405060708090a0b0c0d0e0f10"),
            span_id: hex("a1a2a3a4a5a6a7a8"),
            trace_state: "a=b".to_owned(),
            attributes: vec![kv("link.attr", any_value::Value::IntValue(-1))],
            dropped_attributes_count: 6,
            flags: 256,
        }],
        dropped_links_count: 7,
        status: Some(Status {
            message: "boom".to_owned(),
            code: StatusCode::Error as i32,
        }),
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", string_value("checkout"))],
                    dropped_attributes_count: 1,
                    entity_refs: vec![EntityRef {
                        schema_url: "https://example.com/entity".to_owned(),
                        r#type: "service".to_owned(),
                        id_keys: vec!["service.name".to_owned()],
                        description_keys: vec!["host.name".to_owned(), "os".to_owned()],
                    }],
                }),
                scope_spans: vec![
                    ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "lib".to_owned(),
                            version: "1.2.3".to_owned(),
                            attributes: vec![kv("scope.attr", any_value::Value::BoolValue(true))],
                            dropped_attributes_count: 2,
                        }),
                        spans: vec![span, Span::default()],
                        schema_url: "https://opentelemetry.io/schemas/1.21.0".to_owned(),
                    },
                    ScopeSpans::default(),
                ],
                schema_url: "https://opentelemetry.io/schemas/1.20.0".to_owned(),
            },
            ResourceSpans::default(),
        ],
    }
}

/// [`full_request`] in lowerCamelCase, 64-bit integers as strings, 32-bit ones as numbers, enums
/// by name, ids in upper case, bytes in padded standard base64.
const FULL_CAMEL: &str = r#"{
  "resourceSpans": [
    {
      "resource": {
        "attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}],
        "droppedAttributesCount": 1,
        "entityRefs": [
          {
            "schemaUrl": "https://example.com/entity",
            "type": "service",
            "idKeys": ["service.name"],
            "descriptionKeys": ["host.name", "os"]
          }
        ]
      },
      "scopeSpans": [
        {
          "scope": {
            "name": "lib",
            "version": "1.2.3",
            "attributes": [{"key": "scope.attr", "value": {"boolValue": true}}],
            "droppedAttributesCount": 2
          },
          "spans": [
            {
              "traceId": "5B8EFFF798038103D269B633813FC60C",
              "spanId": "EEE19B7EC3C1B174",
              "traceState": "rojo=00f067aa0ba902b7",
              "parentSpanId": "EEE19B7EC3C1B173",
              "flags": 769,
              "name": "GET /api",
              "kind": "SPAN_KIND_CLIENT",
              "startTimeUnixNano": "1544712660000000000",
              "endTimeUnixNano": "18446744073709551615",
              "attributes": [
                {"key": "s", "value": {"stringValue": "x \"quoted\" \u00e9"}},
                {"key": "b", "value": {"boolValue": true}},
                {"key": "i", "value": {"intValue": "-9223372036854775808"}},
                {"key": "d", "value": {"doubleValue": 1.5}},
                {"key": "a", "value": {"arrayValue": {"values": [
                  {"stringValue": "one"}, {"intValue": "2"}
                ]}}},
                {"key": "kv", "value": {"kvlistValue": {"values": [
                  {"key": "inner", "value": {"intValue": "7"}},
                  {"key": "list", "value": {"arrayValue": {"values": [
                    {"stringValue": "a"}, {}, {"boolValue": false}
                  ]}}}
                ]}}},
                {"key": "bytes", "value": {"bytesValue": "AAEC/v8="}},
                {"key": "strindex", "value": {"stringValueStrindex": 3}},
                {"keyStrindex": 4, "value": {}},
                {"key": "no value"}
              ],
              "droppedAttributesCount": 3,
              "events": [
                {
                  "timeUnixNano": "1544712660500000000",
                  "name": "exception",
                  "attributes": [{"key": "exception.type", "value": {"stringValue": "E"}}],
                  "droppedAttributesCount": 4
                }
              ],
              "droppedEventsCount": 5,
              "links": [
                {
                  "traceId": "0102030405060708090A0B0C0D0E0F10",
                  "spanId": "A1A2A3A4A5A6A7A8",
                  "traceState": "a=b",
                  "attributes": [{"key": "link.attr", "value": {"intValue": "-1"}}],
                  "droppedAttributesCount": 6,
                  "flags": 256
                }
              ],
              "droppedLinksCount": 7,
              "status": {"message": "boom", "code": "STATUS_CODE_ERROR"}
            },
            {}
          ],
          "schemaUrl": "https://opentelemetry.io/schemas/1.21.0"
        },
        {}
      ],
      "schemaUrl": "https://opentelemetry.io/schemas/1.20.0"
    },
    {}
  ]
}"#;

/// [`full_request`] with the `.proto` field names, 64-bit integers as numbers, 32-bit ones as
/// strings, enums by number, ids in lower case, bytes in unpadded URL-safe base64.
const FULL_SNAKE: &str = r#"{
  "resource_spans": [
    {
      "resource": {
        "attributes": [{"key": "service.name", "value": {"string_value": "checkout"}}],
        "dropped_attributes_count": "1",
        "entity_refs": [
          {
            "schema_url": "https://example.com/entity",
            "type": "service",
            "id_keys": ["service.name"],
            "description_keys": ["host.name", "os"]
          }
        ]
      },
      "scope_spans": [
        {
          "scope": {
            "name": "lib",
            "version": "1.2.3",
            "attributes": [{"key": "scope.attr", "value": {"bool_value": true}}],
            "dropped_attributes_count": "2"
          },
          "spans": [
            {
              "trace_id": "5b8efff798038103d269b633813fc60c",
              "span_id": "eee19b7ec3c1b174",
              "trace_state": "rojo=00f067aa0ba902b7",
              "parent_span_id": "eee19b7ec3c1b173",
              "flags": "769",
              "name": "GET /api",
              "kind": 3,
              "start_time_unix_nano": 1544712660000000000,
              "end_time_unix_nano": 18446744073709551615,
              "attributes": [
                {"key": "s", "value": {"string_value": "x \"quoted\" é"}},
                {"key": "b", "value": {"bool_value": true}},
                {"key": "i", "value": {"int_value": -9223372036854775808}},
                {"key": "d", "value": {"double_value": "1.5"}},
                {"key": "a", "value": {"array_value": {"values": [
                  {"string_value": "one"}, {"int_value": 2}
                ]}}},
                {"key": "kv", "value": {"kvlist_value": {"values": [
                  {"key": "inner", "value": {"int_value": 7}},
                  {"key": "list", "value": {"array_value": {"values": [
                    {"string_value": "a"}, {}, {"bool_value": false}
                  ]}}}
                ]}}},
                {"key": "bytes", "value": {"bytes_value": "AAEC_v8"}},
                {"key": "strindex", "value": {"string_value_strindex": "3"}},
                {"key_strindex": "4", "value": {}},
                {"key": "no value", "value": null}
              ],
              "dropped_attributes_count": "3",
              "events": [
                {
                  "time_unix_nano": 1544712660500000000,
                  "name": "exception",
                  "attributes": [{"key": "exception.type", "value": {"string_value": "E"}}],
                  "dropped_attributes_count": "4"
                }
              ],
              "dropped_events_count": "5",
              "links": [
                {
                  "trace_id": "0102030405060708090a0b0c0d0e0f10",
                  "span_id": "a1a2a3a4a5a6a7a8",
                  "trace_state": "a=b",
                  "attributes": [{"key": "link.attr", "value": {"int_value": -1}}],
                  "dropped_attributes_count": "6",
                  "flags": "256"
                }
              ],
              "dropped_links_count": "7",
              "status": {"message": "boom", "code": 2}
            },
            {}
          ],
          "schema_url": "https://opentelemetry.io/schemas/1.21.0"
        },
        {}
      ],
      "schema_url": "https://opentelemetry.io/schemas/1.20.0"
    },
    {}
  ]
}"#;

#[test]
fn every_field_camel_case() {
    assert_eq!(decode(FULL_CAMEL.as_bytes()).unwrap(), full_request());
}

#[test]
fn every_field_snake_case() {
    assert_eq!(decode(FULL_SNAKE.as_bytes()).unwrap(), full_request());
}

/// Adds `"unknownField": ...` to every object in `value`.
fn add_unknown_fields(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.values_mut().for_each(add_unknown_fields);
            let junk = serde_json::json!({"a": [1, "x", null, {"traceId": "not hex"}], "b": true});
            map.insert("unknownField".to_owned(), junk);
            map.insert("instrumentationLibrarySpans".to_owned(), Value::from(5));
        }
        Value::Array(elements) => elements.iter_mut().for_each(add_unknown_fields),
        _ => {}
    }
}

#[test]
fn unknown_fields_ignored() {
    for text in [FULL_CAMEL, FULL_SNAKE, SPEC_EXAMPLE] {
        let mut value: Value = serde_json::from_str(text).unwrap();
        add_unknown_fields(&mut value);
        let body = serde_json::to_vec(&value).unwrap();
        assert_eq!(decode(&body).unwrap(), decode(text.as_bytes()).unwrap());
    }
}

/// Decodes a request whose one span has the fields `fields` (the inside of a JSON object).
fn decode_span(fields: &str) -> Span {
    let body = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{{fields}}}]}}]}}]}}"#);
    let request = decode(body.as_bytes()).unwrap_or_else(|e| panic!("{fields}: {e}"));
    request.resource_spans[0].scope_spans[0].spans[0].clone()
}

#[test]
fn span_field_forms() {
    let cases: &[(&str, Span)] = &[
        (
            r#""traceId":"","spanId":"","parentSpanId":"""#,
            Span::default(),
        ),
        (
            r#""traceId":null,"kind":null,"attributes":null,"status":null,"name":null"#,
            Span::default(),
        ),
        (r#""kind":"SPAN_KIND_UNSPECIFIED""#, Span::default()),
        (
            r#""kind":"SPAN_KIND_INTERNAL""#,
            Span {
                kind: SpanKind::Internal as i32,
                ..Span::default()
            },
        ),
        (
            r#""kind":"SPAN_KIND_SERVER""#,
            Span {
                kind: SpanKind::Server as i32,
                ..Span::default()
            },
        ),
        (
            r#""kind":"SPAN_KIND_PRODUCER""#,
            Span {
                kind: SpanKind::Producer as i32,
                ..Span::default()
            },
        ),
        (
            r#""kind":"SPAN_KIND_CONSUMER""#,
            Span {
                kind: SpanKind::Consumer as i32,
                ..Span::default()
            },
        ),
        // Proto3 enums are open: an unknown number is kept.
        (
            r#""kind":42"#,
            Span {
                kind: 42,
                ..Span::default()
            },
        ),
        (
            r#""kind":-1"#,
            Span {
                kind: -1,
                ..Span::default()
            },
        ),
        (
            r#""status":{"code":"STATUS_CODE_OK"}"#,
            Span {
                status: Some(Status {
                    message: String::new(),
                    code: StatusCode::Ok as i32,
                }),
                ..Span::default()
            },
        ),
        (
            r#""status":{}"#,
            Span {
                status: Some(Status::default()),
                ..Span::default()
            },
        ),
        (
            r#""traceId":"aBcDeF0123456789AbCdEf0123456789""#,
            Span {
                trace_id: hex("abcdef0123456789abcdef0123456789"),
                ..Span::default()
            },
        ),
        // Integral numbers in any JSON form, and strings holding them.
        (
            r#""startTimeUnixNano":1e3,"endTimeUnixNano":"2.5e1","flags":"1.0""#,
            Span {
                start_time_unix_nano: 1000,
                end_time_unix_nano: 25,
                flags: 1,
                ..Span::default()
            },
        ),
        (
            r#""startTimeUnixNano":"+5","endTimeUnixNano":"-0","flags":4294967295"#,
            Span {
                start_time_unix_nano: 5,
                end_time_unix_nano: 0,
                flags: u32::MAX,
                ..Span::default()
            },
        ),
        (
            r#""droppedAttributesCount":0.0,"droppedEventsCount":"0""#,
            Span::default(),
        ),
    ];
    for (fields, want) in cases {
        assert_eq!(&decode_span(fields), want, "{fields}");
    }
}

/// Decodes a request whose one resource attribute has the value `value` (a JSON `AnyValue`).
fn decode_any_value(value: &str) -> Option<any_value::Value> {
    let body =
        format!(r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"value":{value}}}]}}}}]}}"#);
    let request = decode(body.as_bytes()).unwrap_or_else(|e| panic!("{value}: {e}"));
    let resource = request.resource_spans[0].resource.clone().unwrap();
    resource.attributes[0].value.clone().unwrap().value
}

#[test]
fn any_value_forms() {
    use any_value::Value::{BoolValue, BytesValue, DoubleValue, IntValue, StringValue};
    let cases: &[(&str, Option<any_value::Value>)] = &[
        ("{}", None),
        (r#"{"stringValue":null,"intValue":null}"#, None),
        (r#"{"stringValue":""}"#, Some(StringValue(String::new()))),
        (
            r#"{"stringValue":"\ud83d\ude00\n"}"#,
            Some(StringValue("\u{1f600}\n".to_owned())),
        ),
        (r#"{"boolValue":false}"#, Some(BoolValue(false))),
        (r#"{"intValue":0}"#, Some(IntValue(0))),
        (r#"{"intValue":"-5"}"#, Some(IntValue(-5))),
        (r#"{"intValue":-5e0}"#, Some(IntValue(-5))),
        (
            r#"{"intValue":"9223372036854775807"}"#,
            Some(IntValue(i64::MAX)),
        ),
        (
            r#"{"int_value":9223372036854775807}"#,
            Some(IntValue(i64::MAX)),
        ),
        (r#"{"doubleValue":0}"#, Some(DoubleValue(0.0))),
        (r#"{"doubleValue":-2.5e-3}"#, Some(DoubleValue(-2.5e-3))),
        (r#"{"doubleValue":"-2.5e-3"}"#, Some(DoubleValue(-2.5e-3))),
        (
            r#"{"doubleValue":"Infinity"}"#,
            Some(DoubleValue(f64::INFINITY)),
        ),
        (
            r#"{"doubleValue":"-Infinity"}"#,
            Some(DoubleValue(f64::NEG_INFINITY)),
        ),
        (
            r#"{"doubleValue":1.7976931348623157e308}"#,
            Some(DoubleValue(f64::MAX)),
        ),
        (r#"{"bytesValue":""}"#, Some(BytesValue(vec![]))),
        (
            r#"{"bytesValue":"+/8="}"#,
            Some(BytesValue(vec![0xfb, 0xff])),
        ),
        (
            r#"{"bytesValue":"+/8"}"#,
            Some(BytesValue(vec![0xfb, 0xff])),
        ),
        (
            r#"{"bytesValue":"-_8="}"#,
            Some(BytesValue(vec![0xfb, 0xff])),
        ),
        (
            r#"{"bytesValue":"-_8"}"#,
            Some(BytesValue(vec![0xfb, 0xff])),
        ),
        (r#"{"bytesValue":"AQ=="}"#, Some(BytesValue(vec![1]))),
        (r#"{"bytesValue":"AQ"}"#, Some(BytesValue(vec![1]))),
        (
            r#"{"arrayValue":{}}"#,
            Some(any_value::Value::ArrayValue(ArrayValue::default())),
        ),
        (
            r#"{"kvlistValue":{"values":[]}}"#,
            Some(any_value::Value::KvlistValue(KeyValueList::default())),
        ),
    ];
    for (value, want) in cases {
        assert_eq!(&decode_any_value(value), want, "{value}");
    }
    let Some(DoubleValue(nan)) = decode_any_value(r#"{"doubleValue":"NaN"}"#) else {
        panic!("NaN is not a double");
    };
    assert!(nan.is_nan());
}

/// Every way a body can be wrong, with a piece of the message it must give.
#[test]
fn errors() {
    const SPAN: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"#;
    const SPAN_END: &str = "}]}]}]}";
    const ATTR: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":"#;
    const ATTR_END: &str = "}]}}]}";
    const SPAN_PATH: &str = "resourceSpans[0].scopeSpans[0].spans[0]";
    const ATTR_PATH: &str = "resourceSpans[0].resource.attributes[0].value";
    let span = |fields: &str| format!("{SPAN}{fields}{SPAN_END}");
    let attr = |value: &str| format!("{ATTR}{value}{ATTR_END}");
    let cases: Vec<(String, String)> = vec![
        // Not JSON, or not an object.
        (String::new(), "invalid JSON: EOF while parsing".to_owned()),
        ("not json".to_owned(), "invalid JSON: expected ident".to_owned()),
        ("{} {}".to_owned(), "invalid JSON: trailing characters".to_owned()),
        (r#"{"resourceSpans":[}"#.to_owned(), "invalid JSON".to_owned()),
        ("[]".to_owned(), "top level: expected an object, got an array".to_owned()),
        ("null".to_owned(), "top level: expected an object, got null".to_owned()),
        (r#""{}""#.to_owned(), r#"top level: expected an object, got "{}""#.to_owned()),
        // Wrong shapes.
        (
            r#"{"resourceSpans":{}}"#.to_owned(),
            "resourceSpans: expected an array, got an object".to_owned(),
        ),
        (
            r#"{"resourceSpans":[null]}"#.to_owned(),
            "resourceSpans[0]: expected an object, got null".to_owned(),
        ),
        (
            r#"{"resourceSpans":[{},{"scopeSpans":[{},7]}]}"#.to_owned(),
            "resourceSpans[1].scopeSpans[1]: expected an object, got 7".to_owned(),
        ),
        (
            r#"{"resourceSpans":[{"resource":[]}]}"#.to_owned(),
            "resourceSpans[0].resource: expected an object, got an array".to_owned(),
        ),
        (
            span(r#""status":"ok""#),
            format!(r#"{SPAN_PATH}.status: expected an object, got "ok""#),
        ),
        (
            span(r#""events":[{"attributes":{}}]"#),
            format!("{SPAN_PATH}.events[0].attributes: expected an array, got an object"),
        ),
        // Ids.
        (
            span(r#""traceId":"zz8EFFF798038103D269B633813FC60C""#),
            format!(r#"{SPAN_PATH}.traceId: invalid hex "zz8EFFF798038103D269B633813FC60C""#),
        ),
        (span(r#""traceId":"abc""#), format!(r#"{SPAN_PATH}.traceId: invalid hex "abc""#)),
        (
            span(r#""traceId":"W47/95gDgQPSabYzgT/GDA==""#),
            format!("{SPAN_PATH}.traceId: invalid hex"),
        ),
        (
            span(r#""traceId":"5B8EFFF798038103D269B633813FC6""#),
            format!("{SPAN_PATH}.traceId: expected 16 bytes (32 hex digits), got 15 bytes"),
        ),
        (
            span(r#""spanId":"EEE19B7EC3C1B174EEE19B7EC3C1B174""#),
            format!("{SPAN_PATH}.spanId: expected 8 bytes (16 hex digits), got 16 bytes"),
        ),
        (
            span(r#""parent_span_id":"00""#),
            format!("{SPAN_PATH}.parent_span_id: expected 8 bytes (16 hex digits), got 1 bytes"),
        ),
        (
            span(r#""links":[{},{"spanId":"0102030405060708","traceId":"01"}]"#),
            format!("{SPAN_PATH}.links[1].traceId: expected 16 bytes"),
        ),
        (span(r#""traceId":5"#), format!("{SPAN_PATH}.traceId: expected a hex string, got 5")),
        (span(r#""spanId":" eee19b7ec3c1b17""#), format!("{SPAN_PATH}.spanId: invalid hex")),
        // Integers.
        (
            span(r#""startTimeUnixNano":true"#),
            format!(
                "{SPAN_PATH}.startTimeUnixNano: expected an integer or a string holding one, \
                 got true"
            ),
        ),
        (
            span(r#""startTimeUnixNano":"-1""#),
            format!(r#"{SPAN_PATH}.startTimeUnixNano: "-1" is out of range for uint64"#),
        ),
        (
            span(r#""end_time_unix_nano":18446744073709551616"#),
            format!("{SPAN_PATH}.end_time_unix_nano: 1.8446744073709552e+19 is out of range for uint64"),
        ),
        (
            span(r#""endTimeUnixNano":"18446744073709551616""#),
            format!(
                r#"{SPAN_PATH}.endTimeUnixNano: "18446744073709551616" is out of range for uint64"#
            ),
        ),
        (
            span(r#""startTimeUnixNano":1.5"#),
            format!("{SPAN_PATH}.startTimeUnixNano: expected an integer or a string holding one, got 1.5"),
        ),
        (
            span(r#""startTimeUnixNano":"12abc""#),
            format!(r#"{SPAN_PATH}.startTimeUnixNano: expected an integer or a string holding one, got "12abc""#),
        ),
        (span(r#""startTimeUnixNano":" 12""#), "got \" 12\"".to_owned()),
        (span(r#""startTimeUnixNano":"""#), "got \"\"".to_owned()),
        (span(r#""startTimeUnixNano":"NaN""#), "got \"NaN\"".to_owned()),
        (span(r#""startTimeUnixNano":{}"#), "got an object".to_owned()),
        (
            span(r#""flags":4294967296"#),
            format!("{SPAN_PATH}.flags: 4294967296 is out of range for uint32"),
        ),
        (
            span(r#""droppedLinksCount":-1"#),
            format!("{SPAN_PATH}.droppedLinksCount: -1 is out of range for uint32"),
        ),
        (
            attr(r#"{"intValue":"9223372036854775808"}"#),
            format!(r#"{ATTR_PATH}.intValue: "9223372036854775808" is out of range for int64"#),
        ),
        (
            attr(r#"{"intValue":1e300}"#),
            format!("{ATTR_PATH}.intValue: 1e+300 is out of range for int64"),
        ),
        (
            attr(r#"{"intValue":"99999999999999999999999999999999999999999999"}"#),
            "is out of range for int64".to_owned(),
        ),
        // Enums.
        (
            span(r#""kind":"SPAN_KIND_FOO""#),
            format!(r#"{SPAN_PATH}.kind: unknown enum name "SPAN_KIND_FOO""#),
        ),
        (span(r#""kind":"server""#), r#"unknown enum name "server""#.to_owned()),
        (span(r#""kind":"2""#), r#"unknown enum name "2""#.to_owned()),
        (
            span(r#""kind":"STATUS_CODE_OK""#),
            r#"unknown enum name "STATUS_CODE_OK""#.to_owned(),
        ),
        (
            span(r#""kind":true"#),
            format!("{SPAN_PATH}.kind: expected an enum name or number, got true"),
        ),
        (
            span(r#""kind":4294967296"#),
            format!("{SPAN_PATH}.kind: 4294967296 is out of range for an enum (int32)"),
        ),
        (span(r#""kind":1.5"#), "kind: expected an integer".to_owned()),
        (
            span(r#""status":{"code":"STATUS_CODE_BAD"}"#),
            format!(r#"{SPAN_PATH}.status.code: unknown enum name "STATUS_CODE_BAD""#),
        ),
        // Strings and booleans.
        (span(r#""name":5"#), format!("{SPAN_PATH}.name: expected a string, got 5")),
        (span(r#""name":["a"]"#), format!("{SPAN_PATH}.name: expected a string, got an array")),
        (
            attr(r#"{"boolValue":"true"}"#),
            format!(r#"{ATTR_PATH}.boolValue: expected true or false, got "true""#),
        ),
        (attr(r#"{"boolValue":1}"#), "expected true or false, got 1".to_owned()),
        (
            r#"{"resourceSpans":[{"resource":{"entityRefs":[{"idKeys":["a",null]}]}}]}"#
                .to_owned(),
            "resourceSpans[0].resource.entityRefs[0].idKeys[1]: expected a string, got null"
                .to_owned(),
        ),
        // Doubles.
        (
            attr(r#"{"doubleValue":"nan"}"#),
            format!(r#"{ATTR_PATH}.doubleValue: expected a number, a string holding one, "NaN", "Infinity" or "-Infinity", got "nan""#),
        ),
        (attr(r#"{"doubleValue":"inf"}"#), r#"got "inf""#.to_owned()),
        (attr(r#"{"doubleValue":"1e400"}"#), r#"got "1e400""#.to_owned()),
        (attr(r#"{"doubleValue":1e400}"#), "invalid JSON: number out of range".to_owned()),
        (attr(r#"{"doubleValue":true}"#), "doubleValue: expected a number".to_owned()),
        // Bytes.
        (
            attr(r#"{"bytesValue":"!!!!"}"#),
            format!(r#"{ATTR_PATH}.bytesValue: invalid base64 "!!!!""#),
        ),
        (attr(r#"{"bytesValue":"A"}"#), "bytesValue: invalid base64".to_owned()),
        (attr(r#"{"bytesValue":"+_8="}"#), "bytesValue: invalid base64".to_owned()),
        (
            attr(r#"{"bytesValue":5}"#),
            format!("{ATTR_PATH}.bytesValue: expected a base64 string, got 5"),
        ),
        // AnyValue.
        (
            attr(r#"{"stringValue":"a","intValue":"1"}"#),
            format!("{ATTR_PATH}: more than one value set: stringValue and intValue"),
        ),
        (
            attr(r#"{"arrayValue":[]}"#),
            format!("{ATTR_PATH}.arrayValue: expected an object, got an array"),
        ),
        (
            attr(r#"{"kvlistValue":{"values":[{"key":"a","value":{"arrayValue":{"values":[{},{"intValue":true}]}}}]}}"#),
            format!("{ATTR_PATH}.kvlistValue.values[0].value.arrayValue.values[1].intValue: expected an integer"),
        ),
        (attr("7"), format!("{ATTR_PATH}: expected an object, got 7")),
        // The same field under both names.
        (
            span(r#""traceId":"","trace_id":"""#),
            format!("{SPAN_PATH}: field given twice, as traceId and trace_id"),
        ),
        (
            attr(r#"{"intValue":"1","int_value":"1"}"#),
            format!("{ATTR_PATH}: field given twice, as intValue and int_value"),
        ),
        // A long bad value is quoted cut short.
        (
            span(&format!(r#""name":1,"traceId":"{}""#, "x".repeat(1000))),
            format!(r#"traceId: invalid hex "{}"..."#, "x".repeat(48)),
        ),
    ];
    for (json, want) in &cases {
        check_err(json.as_bytes(), want);
    }
}

fn check_err(json: &[u8], want: &str) {
    match decode(json) {
        Ok(request) => panic!(
            "{}: decoded to {request:?}, want an error containing {want:?}",
            String::from_utf8_lossy(json)
        ),
        Err(e) => assert!(
            e.message.contains(want),
            "{}:\n got {:?}\nwant {want:?}",
            String::from_utf8_lossy(json),
            e.message
        ),
    }
}

#[test]
fn invalid_utf8() {
    check_err(
        b"{\"resourceSpans\":[{\"schemaUrl\":\"\xff\"}]}",
        "invalid JSON: invalid unicode",
    );
    check_err(
        b"{\"resourceSpans\":[{\"schemaUrl\":\"\\ud800\"}]}",
        "invalid JSON",
    );
}

/// Arrays nested `depth` deep inside an unknown field of the top-level object.
fn nested_arrays(depth: usize) -> String {
    format!(
        r#"{{"x":{}{}}}"#,
        "[".repeat(depth - 1),
        "]".repeat(depth - 1)
    )
}

#[test]
fn nesting_limit() {
    // The top-level object is the first level.
    decode(nested_arrays(JSON_DEPTH_MAX).as_bytes()).unwrap();
    check_err(
        nested_arrays(JSON_DEPTH_MAX + 1).as_bytes(),
        "invalid JSON: recursion limit exceeded",
    );
    check_err(
        nested_arrays(100_000).as_bytes(),
        "recursion limit exceeded",
    );

    // AnyValues nested as deep as the limit allows decode; one level more is refused.
    let nested_value = |depth: usize| {
        let mut value = r#"{"intValue":1}"#.to_owned();
        for _ in 0..depth {
            value = format!(r#"{{"arrayValue":{{"values":[{value}]}}}}"#);
        }
        format!(r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"value":{value}}}]}}}}]}}"#)
    };
    // 6 levels around the innermost AnyValue, 3 per arrayValue.
    let depth_max = (JSON_DEPTH_MAX - 6) / 3;
    decode(nested_value(depth_max).as_bytes()).unwrap();
    check_err(
        nested_value(depth_max + 1).as_bytes(),
        "recursion limit exceeded",
    );
}

/// Every prefix of a valid body, and the body with each byte replaced, decodes or fails without
/// panicking.
#[test]
fn no_panic_on_damaged_input() {
    let body = FULL_CAMEL.as_bytes();
    for end in 0..body.len() {
        assert!(
            decode(&body[..end]).is_err(),
            "prefix of {end} bytes decoded"
        );
    }
    for at in 0..body.len() {
        for replacement in [b'"', b'{', b']', b'0', b'-', b'x', b'\\', b'n', 0xff] {
            let mut damaged = body.to_vec();
            damaged[at] = replacement;
            let _ = decode(&damaged);
        }
    }
}

#[test]
fn response() {
    assert_eq!(encode_response(0, ""), b"{}");
    assert_eq!(
        encode_response(5, ""),
        br#"{"partialSuccess":{"rejectedSpans":"5"}}"#
    );
    assert_eq!(
        encode_response(0, "slow down"),
        br#"{"partialSuccess":{"errorMessage":"slow down"}}"#
    );
    assert_eq!(
        encode_response(i64::MAX, "a \"b\"\n\u{1}\\"),
        br#"{"partialSuccess":{"rejectedSpans":"9223372036854775807","errorMessage":"a \"b\"\n\u0001\\"}}"#
    );
    let parsed: Value = serde_json::from_slice(&encode_response(-3, "é \u{2028}")).unwrap();
    assert_eq!(
        parsed,
        serde_json::json!({"partialSuccess": {"rejectedSpans": "-3", "errorMessage": "é \u{2028}"}})
    );
}

#[test]
fn status() {
    assert_eq!(
        encode_status(3, "bad \"traceId\"\n"),
        br#"{"code":3,"message":"bad \"traceId\"\n"}"#
    );
    assert_eq!(encode_status(14, ""), br#"{"code":14,"message":""}"#);
    assert_eq!(encode_status(-1, "x"), br#"{"code":-1,"message":"x"}"#);
}

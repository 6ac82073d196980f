//! Renders a `tempopb.Trace` as the JSON Tempo's trace-by-ID API returns.
//!
//! Tempo marshals with gogo `jsonpb` (`OrigName: false`, `EmitDefaults: false`), and so do we,
//! rule for rule, writing straight into a `String` (no JSON tree):
//!
//! - field names in lowerCamelCase, fields in `.proto` declaration order;
//! - scalars equal to their zero value, empty strings and bytes, empty repeated fields and
//!   absent messages are left out; a present message is written even if empty (`"status":{}`);
//! - the `AnyValue` oneof is written even when its value is zero (`"boolValue":false`);
//! - 64-bit integers (`int64`, `uint64`, `fixed64`) as decimal strings, 32-bit ones as numbers;
//! - `bytes` as standard base64 with padding;
//! - enums by name, or as a bare number when the value has no name;
//! - doubles as Go's `encoding/json` writes them, NaN and infinities as `"NaN"`,
//!   `"Infinity"`, `"-Infinity"`;
//! - strings escaped as Go's `encoding/json` does, which also escapes `<`, `>`, `&`,
//!   U+2028 and U+2029.
//!
//! Fields that newer OpenTelemetry protos have and Tempo 2.7's do not (`Resource.entity_refs`,
//! `KeyValue.key_strindex`, `AnyValue.string_value_strindex`) are not rendered, as Tempo
//! would not know them.

use crate::tempopb::Trace;
use base64::Engine;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use std::fmt::Write as _;

/// `/api/traces/{id}`: `{"batches":[...]}` (`{}` for a trace without batches).
pub fn trace_v1_json(trace: &Trace) -> Vec<u8> {
    let mut out = String::with_capacity(capacity_hint(trace));
    write_trace(&mut out, trace, "batches");
    out.into_bytes()
}

/// `/api/v2/traces/{id}`: `{"trace":{"resourceSpans":[...]}}`, and `{"trace":{}}` for an
/// empty trace (Tempo's answer for an unknown ID).
pub fn trace_v2_json(trace: &Trace) -> Vec<u8> {
    let mut out = String::with_capacity(capacity_hint(trace) + 10);
    out.push_str("{\"trace\":");
    write_trace(&mut out, trace, "resourceSpans");
    out.push('}');
    out.into_bytes()
}

/// JSON is about twice the protobuf size for typical spans (base64 IDs, quoted numbers, names).
fn capacity_hint(trace: &Trace) -> usize {
    use prost::Message;
    trace.encoded_len().saturating_mul(2).saturating_add(16)
}

/// Writes `,"name":` (or without the comma for the first field of an object).
fn field(out: &mut String, first: &mut bool, name: &str) {
    if !*first {
        out.push(',');
    }
    *first = false;
    out.push('"');
    out.push_str(name);
    out.push_str("\":");
}

fn write_trace(out: &mut String, trace: &Trace, batches_name: &str) {
    out.push('{');
    let mut first = true;
    if !trace.batches.is_empty() {
        field(out, &mut first, batches_name);
        write_array(out, &trace.batches, write_resource_spans);
    }
    out.push('}');
}

fn write_array<T>(out: &mut String, items: &[T], write: fn(&mut String, &T)) {
    out.push('[');
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        write(out, item);
    }
    out.push(']');
}

fn write_resource_spans(out: &mut String, rs: &ResourceSpans) {
    out.push('{');
    let mut first = true;
    if let Some(resource) = &rs.resource {
        field(out, &mut first, "resource");
        write_resource(out, resource);
    }
    if !rs.scope_spans.is_empty() {
        field(out, &mut first, "scopeSpans");
        write_array(out, &rs.scope_spans, write_scope_spans);
    }
    string_field(out, &mut first, "schemaUrl", &rs.schema_url);
    out.push('}');
}

fn write_resource(out: &mut String, resource: &Resource) {
    out.push('{');
    let mut first = true;
    attributes_field(out, &mut first, &resource.attributes);
    u32_field(
        out,
        &mut first,
        "droppedAttributesCount",
        resource.dropped_attributes_count,
    );
    out.push('}');
}

fn write_scope_spans(out: &mut String, ss: &ScopeSpans) {
    out.push('{');
    let mut first = true;
    if let Some(scope) = &ss.scope {
        field(out, &mut first, "scope");
        write_scope(out, scope);
    }
    if !ss.spans.is_empty() {
        field(out, &mut first, "spans");
        write_array(out, &ss.spans, write_span);
    }
    string_field(out, &mut first, "schemaUrl", &ss.schema_url);
    out.push('}');
}

fn write_scope(out: &mut String, scope: &InstrumentationScope) {
    out.push('{');
    let mut first = true;
    string_field(out, &mut first, "name", &scope.name);
    string_field(out, &mut first, "version", &scope.version);
    attributes_field(out, &mut first, &scope.attributes);
    u32_field(
        out,
        &mut first,
        "droppedAttributesCount",
        scope.dropped_attributes_count,
    );
    out.push('}');
}

fn write_span(out: &mut String, s: &Span) {
    out.push('{');
    let mut first = true;
    bytes_field(out, &mut first, "traceId", &s.trace_id);
    bytes_field(out, &mut first, "spanId", &s.span_id);
    string_field(out, &mut first, "traceState", &s.trace_state);
    bytes_field(out, &mut first, "parentSpanId", &s.parent_span_id);
    u32_field(out, &mut first, "flags", s.flags);
    string_field(out, &mut first, "name", &s.name);
    if s.kind != 0 {
        field(out, &mut first, "kind");
        let name = span::SpanKind::try_from(s.kind)
            .ok()
            .map(|k| k.as_str_name());
        write_enum(out, name, s.kind);
    }
    u64_field(out, &mut first, "startTimeUnixNano", s.start_time_unix_nano);
    u64_field(out, &mut first, "endTimeUnixNano", s.end_time_unix_nano);
    attributes_field(out, &mut first, &s.attributes);
    u32_field(
        out,
        &mut first,
        "droppedAttributesCount",
        s.dropped_attributes_count,
    );
    if !s.events.is_empty() {
        field(out, &mut first, "events");
        write_array(out, &s.events, write_event);
    }
    u32_field(
        out,
        &mut first,
        "droppedEventsCount",
        s.dropped_events_count,
    );
    if !s.links.is_empty() {
        field(out, &mut first, "links");
        write_array(out, &s.links, write_link);
    }
    u32_field(out, &mut first, "droppedLinksCount", s.dropped_links_count);
    if let Some(status) = &s.status {
        field(out, &mut first, "status");
        write_status(out, status);
    }
    out.push('}');
}

fn write_event(out: &mut String, e: &span::Event) {
    out.push('{');
    let mut first = true;
    u64_field(out, &mut first, "timeUnixNano", e.time_unix_nano);
    string_field(out, &mut first, "name", &e.name);
    attributes_field(out, &mut first, &e.attributes);
    u32_field(
        out,
        &mut first,
        "droppedAttributesCount",
        e.dropped_attributes_count,
    );
    out.push('}');
}

fn write_link(out: &mut String, l: &span::Link) {
    out.push('{');
    let mut first = true;
    bytes_field(out, &mut first, "traceId", &l.trace_id);
    bytes_field(out, &mut first, "spanId", &l.span_id);
    string_field(out, &mut first, "traceState", &l.trace_state);
    attributes_field(out, &mut first, &l.attributes);
    u32_field(
        out,
        &mut first,
        "droppedAttributesCount",
        l.dropped_attributes_count,
    );
    u32_field(out, &mut first, "flags", l.flags);
    out.push('}');
}

fn write_status(out: &mut String, status: &Status) {
    out.push('{');
    let mut first = true;
    string_field(out, &mut first, "message", &status.message);
    if status.code != 0 {
        field(out, &mut first, "code");
        let name = opentelemetry_proto::tonic::trace::v1::status::StatusCode::try_from(status.code)
            .ok()
            .map(|c| c.as_str_name());
        write_enum(out, name, status.code);
    }
    out.push('}');
}

fn attributes_field(out: &mut String, first: &mut bool, attributes: &[KeyValue]) {
    if !attributes.is_empty() {
        field(out, first, "attributes");
        write_array(out, attributes, write_key_value);
    }
}

fn write_key_value(out: &mut String, kv: &KeyValue) {
    out.push('{');
    let mut first = true;
    string_field(out, &mut first, "key", &kv.key);
    if let Some(value) = &kv.value {
        field(out, &mut first, "value");
        write_any_value(out, value);
    }
    out.push('}');
}

fn write_any_value(out: &mut String, value: &AnyValue) {
    out.push('{');
    match &value.value {
        // A oneof is written whenever it is set, zero or not.
        Some(any_value::Value::StringValue(s)) => {
            out.push_str("\"stringValue\":");
            write_go_string(out, s);
        }
        Some(any_value::Value::BoolValue(b)) => {
            out.push_str("\"boolValue\":");
            out.push_str(if *b { "true" } else { "false" });
        }
        Some(any_value::Value::IntValue(i)) => {
            out.push_str("\"intValue\":\"");
            let _ = write!(out, "{i}");
            out.push('"');
        }
        Some(any_value::Value::DoubleValue(d)) => {
            out.push_str("\"doubleValue\":");
            write_go_double(out, *d);
        }
        Some(any_value::Value::ArrayValue(a)) => {
            out.push_str("\"arrayValue\":");
            write_array_value(out, a);
        }
        Some(any_value::Value::KvlistValue(l)) => {
            out.push_str("\"kvlistValue\":");
            write_kvlist_value(out, l);
        }
        Some(any_value::Value::BytesValue(b)) => {
            out.push_str("\"bytesValue\":\"");
            base64::engine::general_purpose::STANDARD.encode_string(b, out);
            out.push('"');
        }
        // Unknown to Tempo 2.7, so it would see an AnyValue with no value set.
        Some(any_value::Value::StringValueStrindex(_)) | None => {}
    }
    out.push('}');
}

fn write_array_value(out: &mut String, a: &ArrayValue) {
    out.push('{');
    if !a.values.is_empty() {
        out.push_str("\"values\":");
        write_array(out, &a.values, write_any_value);
    }
    out.push('}');
}

fn write_kvlist_value(out: &mut String, l: &KeyValueList) {
    out.push('{');
    if !l.values.is_empty() {
        out.push_str("\"values\":");
        write_array(out, &l.values, write_key_value);
    }
    out.push('}');
}

fn string_field(out: &mut String, first: &mut bool, name: &str, value: &str) {
    if !value.is_empty() {
        field(out, first, name);
        write_go_string(out, value);
    }
}

fn bytes_field(out: &mut String, first: &mut bool, name: &str, value: &[u8]) {
    if !value.is_empty() {
        field(out, first, name);
        out.push('"');
        base64::engine::general_purpose::STANDARD.encode_string(value, out);
        out.push('"');
    }
}

/// A 32-bit integer: a JSON number.
fn u32_field(out: &mut String, first: &mut bool, name: &str, value: u32) {
    if value != 0 {
        field(out, first, name);
        let _ = write!(out, "{value}");
    }
}

/// A 64-bit integer: a decimal string, as jsonpb writes it.
fn u64_field(out: &mut String, first: &mut bool, name: &str, value: u64) {
    if value != 0 {
        field(out, first, name);
        let _ = write!(out, "\"{value}\"");
    }
}

/// jsonpb writes a known enum value by name in quotes and an unknown one as a bare number.
fn write_enum(out: &mut String, name: Option<&str>, value: i32) {
    match name {
        Some(name) => {
            out.push('"');
            out.push_str(name);
            out.push('"');
        }
        None => {
            let _ = write!(out, "{value}");
        }
    }
}

/// Writes `s` as a JSON string the way Go's `encoding/json` does with HTML escaping on (the
/// default of `json.Marshal`, which jsonpb calls for strings): `\"`, `\\`, `\b`, `\f`, `\n`,
/// `\r`, `\t`, other control characters and `<`, `>`, `&` as `\u00XX`, U+2028 and U+2029 as
/// `\u2028` and `\u2029`; everything else, DEL included, as is.
pub fn write_go_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut clean_from = 0;
    for (index, character) in s.char_indices() {
        let escape: Option<&str> = match character {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{2028}' => Some("\\u2028"),
            '\u{2029}' => Some("\\u2029"),
            '\0'..='\u{1f}' | '<' | '>' | '&' => None,
            _ => continue,
        };
        out.push_str(&s[clean_from..index]);
        match escape {
            Some(text) => out.push_str(text),
            None => {
                let byte = character as u32;
                out.push_str("\\u00");
                out.push(char::from(HEX[(byte >> 4) as usize & 0x0f]));
                out.push(char::from(HEX[byte as usize & 0x0f]));
            }
        }
        clean_from = index + character.len_utf8();
    }
    out.push_str(&s[clean_from..]);
    out.push('"');
}

/// Writes a double as jsonpb does: NaN and infinities as quoted names, everything else as Go's
/// `encoding/json`: the shortest representation that round-trips, in plain decimal notation
/// for magnitudes in [1e-6, 1e21) and in exponent notation (`1e+21`, `1.5e-7`) otherwise.
pub fn write_go_double(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("\"NaN\"");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else {
        let magnitude = value.abs();
        if magnitude != 0.0 && !(1e-6..1e21).contains(&magnitude) {
            // Rust writes `1e21` and `1.5e-7`; Go writes `1e+21` and `1.5e-07`, then trims a
            // single leading zero from a negative exponent, giving `1.5e-7`.
            let text = format!("{value:e}");
            match text.split_once('e') {
                Some((mantissa, exponent)) if !exponent.starts_with('-') => {
                    out.push_str(mantissa);
                    out.push_str("e+");
                    out.push_str(exponent);
                }
                _ => out.push_str(&text),
            }
        } else {
            // Display never uses an exponent and writes integral values without `.0`.
            let _ = write!(out, "{value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::captures;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use prost::Message;

    fn check_prefix(rendered: &[u8], captured: &[u8]) {
        let common = rendered.len().min(captured.len());
        if rendered[..common] != captured[..common] {
            let at = rendered
                .iter()
                .zip(captured)
                .position(|(a, b)| a != b)
                .unwrap_or(common);
            let from = at.saturating_sub(80);
            panic!(
                "differs at byte {at}\n ours: {}\nTempo: {}",
                String::from_utf8_lossy(&rendered[from..(at + 80).min(rendered.len())]),
                String::from_utf8_lossy(&captured[from..(at + 80).min(captured.len())]),
            );
        }
        assert!(
            rendered.len() >= captured.len(),
            "ours is shorter than Tempo's capture"
        );
    }

    #[test]
    fn v1_json_matches_tempo_capture() {
        let protobuf = captures::load("05_trace_v1_protobuf.txt");
        assert!(protobuf.is_complete() && protobuf.body.len() == 1720);
        let trace = Trace::decode(protobuf.body.as_slice()).expect("capture 05 decodes");
        let rendered = trace_v1_json(&trace);
        let json = captures::load("04_trace_v1_json.txt");
        assert_eq!(json.body.len(), 3072, "the capture holds a prefix");
        check_prefix(&rendered, &json.body);
        assert_eq!(rendered.len(), json.body_bytes, "Tempo's whole body");
    }

    #[test]
    fn v2_json_matches_tempo_capture() {
        let protobuf = captures::load("07_trace_v2_protobuf.txt");
        assert!(protobuf.is_complete() && protobuf.body.len() == 1723);
        let response = crate::tempopb::TraceByIdResponse::decode(protobuf.body.as_slice())
            .expect("capture 07 decodes");
        let trace = response.trace.expect("has a trace");
        let rendered = trace_v2_json(&trace);
        let json = captures::load("06_trace_v2_json.txt");
        check_prefix(&rendered, &json.body);
        assert_eq!(rendered.len(), json.body_bytes, "Tempo's whole body");
    }

    #[test]
    fn empty_traces() {
        assert_eq!(trace_v2_json(&Trace::default()), b"{\"trace\":{}}");
        assert_eq!(trace_v1_json(&Trace::default()), b"{}");
    }

    fn any(value: Value) -> AnyValue {
        AnyValue { value: Some(value) }
    }

    fn any_json(value: Option<Value>) -> String {
        let mut out = String::new();
        write_any_value(&mut out, &AnyValue { value });
        out
    }

    #[test]
    fn any_values() {
        let cases: Vec<(Option<Value>, &str)> = vec![
            (
                Some(Value::StringValue(String::new())),
                r#"{"stringValue":""}"#,
            ),
            (Some(Value::BoolValue(true)), r#"{"boolValue":true}"#),
            (Some(Value::IntValue(0)), r#"{"intValue":"0"}"#),
            (Some(Value::IntValue(-42)), r#"{"intValue":"-42"}"#),
            (Some(Value::DoubleValue(1.5)), r#"{"doubleValue":1.5}"#),
            (Some(Value::DoubleValue(0.0)), r#"{"doubleValue":0}"#),
            (
                Some(Value::DoubleValue(f64::NAN)),
                r#"{"doubleValue":"NaN"}"#,
            ),
            (
                Some(Value::BytesValue(vec![0xff, 0x00])),
                r#"{"bytesValue":"/wA="}"#,
            ),
            (
                Some(Value::ArrayValue(ArrayValue {
                    values: vec![any(Value::IntValue(1)), any(Value::StringValue("a".into()))],
                })),
                r#"{"arrayValue":{"values":[{"intValue":"1"},{"stringValue":"a"}]}}"#,
            ),
            (
                Some(Value::ArrayValue(ArrayValue { values: vec![] })),
                r#"{"arrayValue":{}}"#,
            ),
            (
                Some(Value::KvlistValue(KeyValueList {
                    values: vec![KeyValue {
                        key: "k".into(),
                        value: Some(any(Value::BoolValue(false))),
                        ..Default::default()
                    }],
                })),
                r#"{"kvlistValue":{"values":[{"key":"k","value":{"boolValue":false}}]}}"#,
            ),
            (None, "{}"),
            (Some(Value::StringValueStrindex(3)), "{}"),
        ];
        for (value, expected) in cases {
            assert_eq!(any_json(value.clone()), expected, "{value:?}");
        }
    }

    #[test]
    fn doubles_like_go() {
        let cases = [
            (1.0, "1"),
            (-0.0, "-0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (100.0, "100"),
            (123456789.125, "123456789.125"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (0.000001, "0.000001"),
            (0.0000001, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (5e-324, "5e-324"),
            (-2.5e-10, "-2.5e-10"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::INFINITY, "\"Infinity\""),
            (f64::NEG_INFINITY, "\"-Infinity\""),
        ];
        for (value, expected) in cases {
            let mut out = String::new();
            write_go_double(&mut out, value);
            assert_eq!(out, expected, "{value:e}");
        }
    }

    #[test]
    fn strings_like_go() {
        let cases = [
            ("plain", r#""plain""#),
            ("q\"b\\", r#""q\"b\\""#),
            ("\n\r\t\u{8}\u{c}", r#""\n\r\t\b\f""#),
            ("\u{0}\u{1f}\u{7f}", "\"\\u0000\\u001f\u{7f}\""),
            (
                "<a href=\"x\">&</a>",
                r#""\u003ca href=\"x\"\u003e\u0026\u003c/a\u003e""#,
            ),
            ("\u{2028}\u{2029}é日本", "\"\\u2028\\u2029é日本\""),
            ("", r#""""#),
        ];
        for (input, expected) in cases {
            let mut out = String::new();
            write_go_string(&mut out, input);
            assert_eq!(out, expected, "{input:?}");
        }
    }

    #[test]
    fn every_span_field_in_declaration_order() {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            trace_state: "k=v".into(),
            parent_span_id: vec![3; 8],
            flags: 257,
            name: "n".into(),
            kind: 5,
            start_time_unix_nano: 1,
            end_time_unix_nano: u64::MAX,
            attributes: vec![KeyValue {
                key: "a".into(),
                value: Some(any(Value::IntValue(i64::MIN))),
                ..Default::default()
            }],
            dropped_attributes_count: 1,
            events: vec![span::Event {
                time_unix_nano: 7,
                name: "e".into(),
                attributes: vec![],
                dropped_attributes_count: 2,
            }],
            dropped_events_count: 3,
            links: vec![span::Link {
                trace_id: vec![4; 16],
                span_id: vec![5; 8],
                trace_state: "t".into(),
                attributes: vec![KeyValue {
                    key: "l".into(),
                    value: None,
                    ..Default::default()
                }],
                dropped_attributes_count: 6,
                flags: 1,
            }],
            dropped_links_count: 4,
            status: Some(Status {
                message: "m".into(),
                code: 1,
            }),
        };
        let mut out = String::new();
        write_span(&mut out, &span);
        let expected = concat!(
            r#"{"traceId":"AQEBAQEBAQEBAQEBAQEBAQ==","spanId":"AgICAgICAgI=","traceState":"k=v","#,
            r#""parentSpanId":"AwMDAwMDAwM=","flags":257,"name":"n","kind":"SPAN_KIND_CONSUMER","#,
            r#""startTimeUnixNano":"1","endTimeUnixNano":"18446744073709551615","#,
            r#""attributes":[{"key":"a","value":{"intValue":"-9223372036854775808"}}],"#,
            r#""droppedAttributesCount":1,"events":[{"timeUnixNano":"7","name":"e","#,
            r#""droppedAttributesCount":2}],"droppedEventsCount":3,"links":[{"#,
            r#""traceId":"BAQEBAQEBAQEBAQEBAQEBA==","spanId":"BQUFBQUFBQU=","traceState":"t","#,
            r#""attributes":[{"key":"l"}],"droppedAttributesCount":6,"flags":1}],"#,
            r#""droppedLinksCount":4,"status":{"message":"m","code":"STATUS_CODE_OK"}}"#
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn zero_values_are_left_out_and_unknown_enums_are_numbers() {
        let mut out = String::new();
        write_span(
            &mut out,
            &Span {
                kind: 9,
                status: Some(Status {
                    message: String::new(),
                    code: 7,
                }),
                ..Default::default()
            },
        );
        assert_eq!(out, r#"{"kind":9,"status":{"code":7}}"#);
        let mut out = String::new();
        write_span(&mut out, &Span::default());
        assert_eq!(out, "{}");
    }

    #[test]
    fn resource_and_scope_fields() {
        let trace = Trace {
            batches: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![],
                    dropped_attributes_count: 2,
                    entity_refs: vec![],
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: String::new(),
                        version: "v".into(),
                        attributes: vec![KeyValue {
                            key: "s".into(),
                            value: Some(any(Value::StringValue("x".into()))),
                            ..Default::default()
                        }],
                        dropped_attributes_count: 1,
                    }),
                    spans: vec![],
                    schema_url: "https://s/2".into(),
                }],
                schema_url: "https://s/1".into(),
            }],
        };
        assert_eq!(
            String::from_utf8(trace_v1_json(&trace)).expect("utf-8"),
            concat!(
                r#"{"batches":[{"resource":{"droppedAttributesCount":2},"scopeSpans":[{"#,
                r#""scope":{"version":"v","attributes":[{"key":"s","value":{"stringValue":"x"}}],"#,
                r#""droppedAttributesCount":1},"schemaUrl":"https://s/2"}],"#,
                r#""schemaUrl":"https://s/1"}]}"#
            )
        );
    }
}

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};
use prost::Message;

use super::*;

/// Attributes as `key=value` with the value's type: `s:` string, `i:` int, `d:` double, `b:` bool.
fn attrs(list: &[KeyValue]) -> Vec<String> {
    list.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => format!("s:{s}"),
                Some(Value::IntValue(i)) => format!("i:{i}"),
                Some(Value::DoubleValue(d)) => format!("d:{d}"),
                Some(Value::BoolValue(b)) => format!("b:{b}"),
                other => format!("{other:?}"),
            };
            format!("{}={v}", kv.key)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/zipkin/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(path).unwrap()
}

fn all_spans(req: &ExportTraceServiceRequest) -> Vec<&Span> {
    req.resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter().flat_map(|ss| ss.spans.iter()))
        .collect()
}

fn one_span(json: &str) -> Span {
    let req = decode_v2_json(json.as_bytes()).unwrap();
    let spans = all_spans(&req);
    assert_eq!(spans.len(), 1);
    spans[0].clone()
}

/// A v2 JSON span with the given extra members.
fn v2(extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { "," };
    format!(
        r#"[{{"traceId":"0102030405060708090a0b0c0d0e0f10","id":"1112131415161718","timestamp":10,"duration":5{sep}{extra}}}]"#
    )
}

// openzipkin/zipkin zipkin-lens/testdata/messaging.json: two services, every v2 kind but CLIENT.
#[test]
fn v2_json_zipkin_messaging_fixture() {
    let req = decode_v2_json(&fixture("v2_messaging.json")).unwrap();
    assert_eq!(req.resource_spans.len(), 2);

    let backend = &req.resource_spans[0];
    assert_eq!(
        attrs(&backend.resource.as_ref().unwrap().attributes),
        ["service.name=s:backend"]
    );
    assert_eq!(backend.scope_spans.len(), 1);
    assert_eq!(backend.scope_spans[0].scope, Some(Default::default()));
    let spans = &backend.scope_spans[0].spans;
    assert_eq!(spans.len(), 2);

    let s = &spans[0];
    assert_eq!(hex(&s.trace_id), "5aab74dbb904746bb33447baae403ed6");
    assert_eq!(hex(&s.span_id), "e457b5a2e4d86bd1");
    assert_eq!(hex(&s.parent_span_id), "05e3ac9a4f6e3b90");
    assert_eq!(s.name, "next-message");
    assert_eq!(s.kind, SpanKind::Consumer as i32);
    assert_eq!(s.start_time_unix_nano, 1_521_186_011_929_043_000);
    assert_eq!(s.end_time_unix_nano, 1_521_186_011_929_057_000);
    assert_eq!(s.trace_state, "");
    assert_eq!(
        attrs(&s.attributes),
        [
            "rabbit.exchange=s:",
            "rabbit.queue=s:backend",
            "rabbit.routing_key=s:backend",
            "net.host.ip=s:192.168.0.10",
            "peer.service=s:rabbitmq",
        ]
    );
    assert!(s.events.is_empty() && s.links.is_empty());
    assert_eq!(s.status, Some(Default::default()));

    let s = &spans[1];
    assert_eq!(s.name, "on-message");
    assert_eq!(s.kind, SpanKind::Unspecified as i32);
    assert_eq!(attrs(&s.attributes), ["net.host.ip=s:192.168.0.10"]);

    let frontend = &req.resource_spans[1];
    assert_eq!(
        attrs(&frontend.resource.as_ref().unwrap().attributes),
        ["service.name=s:frontend"]
    );
    let spans = &frontend.scope_spans[0].spans;
    assert_eq!(spans[0].name, "publish");
    assert_eq!(spans[0].kind, SpanKind::Producer as i32);
    let s = &spans[1];
    assert_eq!(s.name, "get /");
    assert_eq!(s.kind, SpanKind::Server as i32);
    assert!(s.parent_span_id.is_empty());
    assert_eq!(
        attrs(&s.attributes),
        [
            "http.method=s:GET",
            "http.path=s:/",
            "mvc.controller.class=s:Frontend",
            "mvc.controller.method=s:callBackend",
            "net.host.ip=s:192.168.0.10",
            "net.peer.ip=s:::1",
            "net.peer.port=i:54602",
        ]
    );
}

// open-telemetry/opentelemetry-collector-contrib receiver/zipkinreceiver/testdata/sample3.json:
// no local service name, status tags, annotations.
#[test]
fn v2_json_collector_sample3_fixture() {
    let req = decode_v2_json(&fixture("collector_sample3.json")).unwrap();
    assert_eq!(req.resource_spans.len(), 1);
    // No local service name: the collector's OTLPResourceNoServiceName, a resource with nothing.
    assert!(req.resource_spans[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .is_empty());
    let s = all_spans(&req)[0];
    assert_eq!(hex(&s.trace_id), "4d1e00c0db9010db86154a4ba6e91385");
    assert_eq!(s.kind, SpanKind::Client as i32);
    assert_eq!(s.start_time_unix_nano, 1_472_470_996_199_000_000);
    assert_eq!(s.end_time_unix_nano, 1_472_470_996_406_000_000);
    // "ERROR" is not one of the collector's names (STATUS_CODE_ERROR, Error): UNSET, with the
    // description still taken.
    let status = s.status.as_ref().unwrap();
    assert_eq!(status.code, StatusCode::Unset as i32);
    assert_eq!(status.message, "Something failed");
    assert_eq!(
        attrs(&s.attributes),
        [
            "clnt/finagle.version=s:6.45.0",
            "http.path=s:/api",
            // Go prints 7::0.128.128.127 as this.
            "net.host.ip=s:7::80:807f",
            "peer.service=s:backend",
            "net.peer.ip=s:192.168.99.101",
            "net.peer.port=i:9000",
        ]
    );
    let events: Vec<_> = s
        .events
        .iter()
        .map(|e| (e.time_unix_nano, e.name.as_str()))
        .collect();
    assert_eq!(
        events,
        [
            (1_472_470_996_238_000_000, "foo"),
            (1_472_470_996_403_000_000, "bar")
        ]
    );
}

#[test]
fn v2_ids() {
    // A 64-bit trace ID is left-padded; short IDs too, as zipkin-go's ParseUint reads them.
    let s = one_span(r#"[{"traceId":"86154A4BA6E91385","id":"abc","parentId":"abc"}]"#);
    assert_eq!(hex(&s.trace_id), "000000000000000086154a4ba6e91385");
    assert_eq!(hex(&s.span_id), "0000000000000abc");
    // A parent equal to the span is no parent; so is "".
    assert!(s.parent_span_id.is_empty());
    let s = one_span(&v2(r#""parentId":"""#));
    assert!(s.parent_span_id.is_empty());
    let s = one_span(&v2(r#""parentId":null"#));
    assert!(s.parent_span_id.is_empty());
}

#[test]
fn v2_kinds() {
    for (kind, tags, want) in [
        (r#""CLIENT""#, "{}", SpanKind::Client),
        (r#""SERVER""#, "{}", SpanKind::Server),
        (r#""PRODUCER""#, "{}", SpanKind::Producer),
        (r#""CONSUMER""#, "{}", SpanKind::Consumer),
        ("null", "{}", SpanKind::Unspecified),
        (r#""client""#, "{}", SpanKind::Unspecified),
        ("null", r#"{"span.kind":"internal"}"#, SpanKind::Internal),
        ("null", r#"{"span.kind":"server"}"#, SpanKind::Unspecified),
        // With a kind the span.kind tag is left alone.
        (
            r#""SERVER""#,
            r#"{"span.kind":"internal"}"#,
            SpanKind::Server,
        ),
    ] {
        let s = one_span(&v2(&format!(r#""kind":{kind},"tags":{tags}"#)));
        assert_eq!(s.kind, want as i32, "kind {kind} tags {tags}");
        let kept = attrs(&s.attributes)
            .iter()
            .any(|a| a.starts_with("span.kind="));
        assert_eq!(
            kept,
            kind != "null" && tags != "{}",
            "kind {kind} tags {tags}"
        );
    }
    // Missing kind member altogether.
    assert_eq!(one_span(&v2("")).kind, SpanKind::Unspecified as i32);
}

#[test]
fn v2_status_tags() {
    for (tags, code, message, left) in [
        (r#"{"error":"true"}"#, StatusCode::Error, "", vec![]),
        (
            r#"{"error":"false"}"#,
            StatusCode::Error,
            "",
            vec!["error=s:false"],
        ),
        (r#"{"error":""}"#, StatusCode::Error, "", vec!["error=s:"]),
        (
            r#"{"otel.status_code":"STATUS_CODE_OK","otel.status_description":"fine"}"#,
            StatusCode::Ok,
            "fine",
            vec![],
        ),
        (
            r#"{"otel.status_code":"Error"}"#,
            StatusCode::Error,
            "",
            vec![],
        ),
        (
            r#"{"otel.status_code":"Ok","error":"boom"}"#,
            StatusCode::Error,
            "",
            vec!["error=s:boom"],
        ),
        (
            r#"{"otel.status_code":"bogus"}"#,
            StatusCode::Unset,
            "",
            vec![],
        ),
        // A description without a code is an attribute.
        (
            r#"{"otel.status_description":"lonely"}"#,
            StatusCode::Unset,
            "",
            vec!["otel.status_description=s:lonely"],
        ),
    ] {
        let s = one_span(&v2(&format!(r#""tags":{tags}"#)));
        let status = s.status.unwrap();
        assert_eq!(status.code, code as i32, "{tags}");
        assert_eq!(status.message, message, "{tags}");
        assert_eq!(attrs(&s.attributes), left, "{tags}");
    }
}

#[test]
fn v2_missing_timestamp_and_endpoints() {
    // No timestamp: start 0, end = duration, and the collector's marker attribute.
    let s = one_span(
        r#"[{"traceId":"0102030405060708","id":"01","duration":7,"remoteEndpoint":{"ipv6":"::ffff:10.0.0.1","port":0},"localEndpoint":{"ipv4":"10.1.1.1","ipv6":"2001:db8::1","port":80}}]"#,
    );
    assert_eq!((s.start_time_unix_nano, s.end_time_unix_nano), (0, 7_000));
    assert_eq!(
        attrs(&s.attributes),
        [
            "net.host.ip=s:2001:db8::1",
            "net.host.port=i:80",
            "net.peer.ip=s:10.0.0.1",
            "otel.zipkin.absentField.startTime=b:true",
        ]
    );
}

#[test]
fn v2_resource_scope_and_grouping() {
    let body = r#"[
      {"traceId":"01","id":"01","localEndpoint":{"serviceName":"b"},"timestamp":1,
       "tags":{"host.name":"h1","otel.library.name":"lib","otel.library.version":"1.0","otel.scope.name":"s"}},
      {"traceId":"01","id":"02","localEndpoint":{"serviceName":"a"},"timestamp":1,
       "tags":{"otlp.service.name.source":"peer.service","service.version":"9"}},
      {"traceId":"01","id":"03","localEndpoint":{"serviceName":"b"},"timestamp":1,"tags":{"host.name":"h2"}},
      {"traceId":"01","id":"04","localEndpoint":{"serviceName":"b"},"timestamp":1,"tags":{"otel.library.name":"lib"}},
      null
    ]"#;
    let req = decode_v2_json(body.as_bytes()).unwrap();
    assert_eq!(req.resource_spans.len(), 2);
    let a = &req.resource_spans[0];
    assert_eq!(
        attrs(&a.resource.as_ref().unwrap().attributes),
        ["peer.service=s:a", "service.version=s:9"]
    );
    assert!(attrs(&a.scope_spans[0].spans[0].attributes).is_empty());

    let b = &req.resource_spans[1];
    // Resource tags come from the first span of the resource (sorted: no library first).
    assert_eq!(
        attrs(&b.resource.as_ref().unwrap().attributes),
        ["service.name=s:b", "host.name=s:h2"]
    );
    assert_eq!(b.scope_spans.len(), 2);
    assert_eq!(b.scope_spans[0].scope.as_ref().unwrap().name, "");
    assert_eq!(hex(&b.scope_spans[0].spans[0].span_id), "0000000000000003");
    let lib = &b.scope_spans[1];
    assert_eq!(lib.scope.as_ref().unwrap().name, "lib");
    assert_eq!(lib.scope.as_ref().unwrap().version, "1.0");
    let ids: Vec<_> = lib.spans.iter().map(|s| hex(&s.span_id)).collect();
    assert_eq!(ids, ["0000000000000001", "0000000000000004"]);
    // host.name is never a span attribute; otel.scope.name is one in v0.116.
    assert_eq!(attrs(&lib.spans[0].attributes), ["otel.scope.name=s:s"]);
}

#[test]
fn v2_links_events_trace_state() {
    let s = one_span(&v2(
        r#""tags":{"w3c.tracestate":"a=b","otlp.link.0":"0102030405060708090a0b0c0d0e0f10|1112131415161718|k=v|{\"n\":2,\"f\":1.5,\"s\":\"x|y\",\"b\":true,\"o\":{}}|3","otlp.link.1":"short|x","otlp.link.3":"not read"},
           "annotations":[{"timestamp":20,"value":"plain"},{"timestamp":21,"value":"ev|{\"k\":\"v\"}|4"},{"timestamp":22,"value":"a|b"}]"#,
    ));
    assert_eq!(s.trace_state, "a=b");
    assert_eq!(s.links.len(), 1);
    let link = &s.links[0];
    assert_eq!(hex(&link.trace_id), "0102030405060708090a0b0c0d0e0f10");
    assert_eq!(hex(&link.span_id), "1112131415161718");
    assert_eq!(link.trace_state, "k=v");
    assert_eq!(
        attrs(&link.attributes),
        ["b=b:true", "f=d:1.5", "n=i:2", "s=s:x|y"]
    );
    assert_eq!(link.dropped_attributes_count, 3);
    // otlp.link.3 is past the gap at 2: kept as an attribute.
    assert_eq!(attrs(&s.attributes), ["otlp.link.3=s:not read"]);
    let events: Vec<_> = s
        .events
        .iter()
        .map(|e| {
            (
                e.time_unix_nano,
                e.name.as_str(),
                attrs(&e.attributes),
                e.dropped_attributes_count,
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            (20_000, "plain", vec![], 0),
            (21_000, "ev", vec!["k=s:v".to_owned()], 4),
            (22_000, "a", vec![], 0),
        ]
    );
}

#[test]
fn v2_parse_string_tags() {
    let body = v2(
        r#""tags":{"i":"-42","big":"99999999999999999999","d":"1.25","b":"true","s":"1e3","e":"","x":"1."}"#,
    );
    let options = Options {
        parse_string_tags: true,
    };
    let req = decode_v2_json_with(body.as_bytes(), &options).unwrap();
    assert_eq!(
        attrs(&all_spans(&req)[0].attributes),
        [
            "b=b:true",
            "big=i:9223372036854775807",
            "d=d:1.25",
            "e=s:",
            "i=i:-42",
            "s=s:1e3",
            "x=s:1.",
        ]
    );
}

#[test]
fn v2_json_null_and_empty_bodies() {
    assert!(decode_v2_json(b"null").unwrap().resource_spans.is_empty());
    assert!(decode_v2_json(b"[]").unwrap().resource_spans.is_empty());
    assert!(decode_v2_json(b"[null]").unwrap().resource_spans.is_empty());
}

/// The v2 protobuf equivalent of a JSON span list decodes to the same OTLP.
#[test]
fn v2_proto_round_trip() {
    let span = |id: u8, service: &str, kind: i32| proto::Span {
        trace_id: (1..=16).collect(),
        parent_id: vec![],
        id: vec![0, 0, 0, 0, 0, 0, 0, id],
        kind,
        name: format!("op{id}"),
        timestamp: 1_000_000 + u64::from(id),
        duration: 30,
        local_endpoint: Some(proto::Endpoint {
            service_name: service.to_owned(),
            ipv4: vec![10, 0, 0, id],
            ipv6: vec![],
            port: 8080,
        }),
        remote_endpoint: Some(proto::Endpoint {
            service_name: "db".to_owned(),
            ipv4: vec![],
            ipv6: "2001:db8::2"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
                .to_vec(),
            port: 5432,
        }),
        annotations: vec![proto::Annotation {
            timestamp: 1_000_010,
            value: "retry".to_owned(),
        }],
        tags: [("error".to_owned(), "true".to_owned())]
            .into_iter()
            .collect(),
        debug: true,
        shared: true,
    };
    let list = proto::ListOfSpans {
        spans: vec![
            span(1, "svc-b", proto::KIND_CLIENT),
            span(2, "svc-a", proto::KIND_SERVER),
            span(3, "svc-a", proto::KIND_PRODUCER),
            span(4, "", proto::KIND_CONSUMER),
            span(5, "svc-a", proto::KIND_UNSPECIFIED),
        ],
    };
    let from_proto = decode_v2_proto(&list.encode_to_vec()).unwrap();

    let json_span = |id: u8, service: &str, kind: &str| {
        format!(
            r#"{{"traceId":"0102030405060708090a0b0c0d0e0f10","id":"000000000000000{id}","kind":{kind},"name":"op{id}",
                "timestamp":{},"duration":30,"debug":true,"shared":true,
                "localEndpoint":{{"serviceName":"{service}","ipv4":"10.0.0.{id}","port":8080}},
                "remoteEndpoint":{{"serviceName":"db","ipv6":"2001:db8::2","port":5432}},
                "annotations":[{{"timestamp":1000010,"value":"retry"}}],"tags":{{"error":"true"}}}}"#,
            1_000_000 + u32::from(id)
        )
    };
    let json = format!(
        "[{},{},{},{},{}]",
        json_span(1, "svc-b", r#""CLIENT""#),
        json_span(2, "svc-a", r#""SERVER""#),
        json_span(3, "svc-a", r#""PRODUCER""#),
        json_span(4, "", r#""CONSUMER""#),
        json_span(5, "svc-a", "null"),
    );
    let from_json = decode_v2_json(json.as_bytes()).unwrap();
    assert_eq!(from_proto, from_json);

    // Sorted by service: "OTLPResourceNoServiceName" < "svc-a" < "svc-b".
    let services: Vec<_> = from_proto
        .resource_spans
        .iter()
        .map(|rs| attrs(&rs.resource.as_ref().unwrap().attributes))
        .collect();
    assert_eq!(
        services,
        [
            vec![],
            vec!["service.name=s:svc-a".to_owned()],
            vec!["service.name=s:svc-b".to_owned()]
        ]
    );
    let s = &from_proto.resource_spans[1].scope_spans[0].spans[0];
    assert_eq!(s.status.as_ref().unwrap().code, StatusCode::Error as i32);
    assert_eq!(
        attrs(&s.attributes),
        [
            "net.host.ip=s:10.0.0.2",
            "net.host.port=i:8080",
            "peer.service=s:db",
            "net.peer.ip=s:2001:db8::2",
            "net.peer.port=i:5432",
        ]
    );

    // A zero protobuf timestamp has no absent-start marker (time.Unix(0, 0) is not Go's zero
    // time); 8-byte trace IDs are accepted.
    let mut bare = span(6, "x", proto::KIND_UNSPECIFIED);
    bare.timestamp = 0;
    bare.trace_id = vec![0, 0, 0, 0, 0, 0, 0, 9];
    bare.local_endpoint = None;
    bare.remote_endpoint = None;
    bare.tags.clear();
    let req = decode_v2_proto(&proto::ListOfSpans { spans: vec![bare] }.encode_to_vec()).unwrap();
    let s = all_spans(&req)[0];
    assert_eq!(hex(&s.trace_id), "00000000000000000000000000000009");
    assert_eq!((s.start_time_unix_nano, s.end_time_unix_nano), (0, 30_000));
    assert!(s.attributes.is_empty());
}

// Hand-written v1 fixture (tests/data/zipkin/v1_hand_written.json).
#[test]
fn v1_json_fixture() {
    let req =
        decode_v1_json_with(&fixture("v1_hand_written.json"), &Options::default(), 77).unwrap();
    assert_eq!(req.resource_spans.len(), 3);

    let query = &req.resource_spans[0];
    assert_eq!(
        attrs(&query.resource.as_ref().unwrap().attributes),
        [
            "service.name=s:zipkin-query",
            "ipv4=s:192.168.1.2",
            "port=s:9411"
        ]
    );
    let spans = &query.scope_spans[0].spans;
    assert_eq!(spans.len(), 1);
    let s = &spans[0];
    assert_eq!(hex(&s.trace_id), "0000000000000000bd7a977555f6b982");
    assert_eq!(hex(&s.span_id), "bd7a977555f6b982");
    assert!(s.parent_span_id.is_empty());
    assert_eq!(s.name, "get");
    assert_eq!(s.kind, SpanKind::Server as i32);
    assert_eq!(s.start_time_unix_nano, 1_458_702_548_467_000_000);
    assert_eq!(s.end_time_unix_nano, 1_458_702_548_853_000_000);
    let events: Vec<_> = s
        .events
        .iter()
        .map(|e| (e.time_unix_nano, e.name.as_str()))
        .collect();
    assert_eq!(events, [(1_458_702_548_600_000_000, "cache.miss")]);
    assert_eq!(
        attrs(&s.attributes),
        [
            "http.status_code=s:503",
            "http.status_message=s:unavailable"
        ]
    );
    let status = s.status.as_ref().unwrap();
    assert_eq!(
        (status.code, status.message.as_str()),
        (StatusCode::Error as i32, "unavailable")
    );

    // No kind annotation: the endpoint is unknown-service, renamed after the binary
    // annotations' endpoint service (only the name: a resource of its own).
    let renamed = &req.resource_spans[1];
    assert_eq!(
        attrs(&renamed.resource.as_ref().unwrap().attributes),
        ["service.name=s:zipkin-query"]
    );
    let s = &renamed.scope_spans[0].spans[0];
    assert_eq!(s.name, "get-traces");
    assert_eq!(hex(&s.parent_span_id), "bd7a977555f6b982");
    assert_eq!(s.kind, SpanKind::Unspecified as i32);
    assert_eq!(s.end_time_unix_nano - s.start_time_unix_nano, 354_374_000);
    assert_eq!(attrs(&s.attributes), ["component=s:JDBCSpanStore"]);
    assert_eq!(s.status.as_ref().unwrap().code, StatusCode::Error as i32);

    // An `ms` annotation: PRODUCER, and its endpoint is the resource; a 128-bit trace ID.
    let jdbc = &req.resource_spans[2];
    assert_eq!(
        attrs(&jdbc.resource.as_ref().unwrap().attributes),
        [
            "service.name=s:spanstore-jdbc",
            "ipv4=s:127.0.0.1",
            "port=s:3306"
        ]
    );
    let s = &jdbc.scope_spans[0].spans[0];
    assert_eq!(hex(&s.trace_id), "0000000000000001bd7a977555f6b982");
    assert_eq!(s.kind, SpanKind::Producer as i32);
    assert!(s.events.is_empty());
    assert!(s.attributes.is_empty());
    let status = s.status.as_ref().unwrap();
    assert_eq!(
        (status.code, status.message.as_str()),
        (StatusCode::Ok as i32, "fine")
    );
}

#[test]
fn v1_no_timestamps_uses_now() {
    let body = r#"[{"traceId":"0000000000000001","id":"0000000000000002","binaryAnnotations":[{"key":"lc","value":"svc"}]}]"#;
    let req = decode_v1_json_with(body.as_bytes(), &Options::default(), 77).unwrap();
    assert_eq!(
        attrs(&req.resource_spans[0].resource.as_ref().unwrap().attributes),
        ["service.name=s:svc"]
    );
    let s = all_spans(&req)[0];
    assert_eq!((s.start_time_unix_nano, s.end_time_unix_nano), (77, 77));
    assert_eq!(
        attrs(&s.attributes),
        [
            "component=s:svc",
            "otel.zipkin.absentField.startTime=b:true"
        ]
    );
}

#[derive(Clone, Copy)]
enum Decoder {
    V2Json,
    V2Proto,
    V1Json,
}

/// Decodes `body` with `decoder` and checks the error message contains `want`.
fn check_err(decoder: Decoder, body: &[u8], want: &str) {
    let got = match decoder {
        Decoder::V2Json => decode_v2_json(body),
        Decoder::V2Proto => decode_v2_proto(body),
        Decoder::V1Json => decode_v1_json_with(body, &Options::default(), 1),
    };
    match got {
        Ok(req) => panic!(
            "{}: decoded {req:?}, want error {want:?}",
            String::from_utf8_lossy(body)
        ),
        Err(e) => assert!(
            e.message.contains(want),
            "{}: error {:?} does not contain {want:?}",
            String::from_utf8_lossy(body),
            e.message
        ),
    }
}

#[test]
fn errors() {
    use Decoder::*;
    let t = r#""traceId":"0102030405060708""#;
    let id = r#""id":"0102030405060708""#;
    let cases: Vec<(Decoder, String, &str)> = vec![
        (V2Json, "not json".into(), "body is not JSON"),
        (V2Json, "{}".into(), "body is an object, not a JSON array"),
        (V2Json, "[1]".into(), "span 0: is a number, not an object"),
        (V2Json, format!("[{{{id}}}]"), "span 0: traceId: missing"),
        (V2Json, format!("[{{{t}}}]"), "span 0: id: missing"),
        (V2Json, format!(r#"[{{{t},{id}}},{{"traceId":"xyz",{id}}}]"#), r#"span 1: traceId "xyz": not hex"#),
        (V2Json, format!(r#"[{{"traceId":"{}",{id}}}]"#, "1".repeat(33)), "span 0: traceId \"111"),
        (V2Json, format!(r#"[{{"traceId":"",{id}}}]"#), "span 0: traceId \"\": empty"),
        (V2Json, format!(r#"[{{"traceId":null,{id}}}]"#), "span 0: traceId: expected a string, found null"),
        (V2Json, format!(r#"[{{"traceId":"0000",{id}}}]"#), "span 0: traceId: is zero"),
        (V2Json, format!(r#"[{{{t},"id":"00"}}]"#), "span 0: id: is zero"),
        (V2Json, format!(r#"[{{{t},"id":"01234567890abcdef"}}]"#), "span 0: id \"01234567890abcdef\": 17 characters"),
        (V2Json, format!(r#"[{{{t},{id},"parentId":"zz"}}]"#), "span 0: parentId \"zz\": not hex"),
        (V2Json, format!(r#"[{{{t},{id},"timestamp":-1}}]"#), "span 0: timestamp: expected an unsigned integer of microseconds, found -1"),
        (V2Json, format!(r#"[{{{t},{id},"duration":1.5}}]"#), "span 0: duration: expected an unsigned integer"),
        (V2Json, format!(r#"[{{{t},{id},"timestamp":"1"}}]"#), "span 0: timestamp: expected an unsigned integer of microseconds, found a string"),
        (V2Json, format!(r#"[{{{t},{id},"timestamp":18446744073709552}}]"#), "span 0: timestamp 18446744073709552 + duration 0 microseconds overflows"),
        (V2Json, format!(r#"[{{{t},{id},"tags":{{"n":1}}}}]"#), r#"span 0: tag "n": expected a string, found a number"#),
        (V2Json, format!(r#"[{{{t},{id},"tags":[]}}]"#), "span 0: tags: expected an object"),
        (V2Json, format!(r#"[{{{t},{id},"shared":"yes"}}]"#), "span 0: shared: expected a boolean"),
        (V2Json, format!(r#"[{{{t},{id},"localEndpoint":{{"ipv4":"1.2.3"}}}}]"#), r#"span 0: localEndpoint.ipv4 "1.2.3": not an IP address"#),
        (V2Json, format!(r#"[{{{t},{id},"remoteEndpoint":{{"port":70000}}}}]"#), "span 0: remoteEndpoint.port: 70000 is not a port"),
        (V2Json, format!(r#"[{{{t},{id},"annotations":[{{"value":"x"}}]}}]"#), "span 0: annotation 0: timestamp: missing or zero"),
        (V2Json, format!(r#"[{{{t},{id},"annotations":[null]}}]"#), "span 0: annotation 0: timestamp: missing or zero"),
        (V2Json, format!(r#"[{{{t},{id},"annotations":[{{"timestamp":1,"value":"a|b|c"}}]}}]"#), r#"span 0: annotation 0 value "a|b|c": attributes "b" are not JSON"#),
        (V2Json, format!(r#"[{{{t},{id},"annotations":[{{"timestamp":1,"value":"a|[]|c"}}]}}]"#), "attributes are an array, not a JSON object"),
        (V2Json, format!(r#"[{{{t},{id},"annotations":[{{"timestamp":1,"value":"a|{{}}|+1"}}]}}]"#), r#"dropped attributes count "+1" is not a number"#),
        (V2Json, format!(r#"[{{{t},{id},"tags":{{"otlp.link.0":"zz|01|||0"}}}}]"#), r#"span 0: tag otlp.link.0: trace ID "zz": 2 characters, want 32 hex digits"#),
        (V2Proto, "\u{ff}".into(), "body is not a zipkin.proto3 ListOfSpans"),
        (V1Json, "[null]".into(), "span 0: is null, not an object"),
        (V1Json, r#"[{"traceId":"01","id":"0102030405060708"}]"#.into(), r#"span 0: traceId "01": wrong length"#),
        (V1Json, r#"[{"traceId":"0000000000000000","id":"0102030405060708"}]"#.into(), "span 0: traceId \"0000000000000000\": is zero"),
        (V1Json, r#"[{"traceId":"0102030405060708","id":"01"}]"#.into(), r#"span 0: id "01": wrong length"#),
        (V1Json, r#"[{"traceId":"0102030405060708","id":"0102030405060708","parentId":"0000000000000000"}]"#.into(), "parentId \"0000000000000000\": is zero"),
        (V1Json, r#"[{"traceId":"0102030405060708","id":"0102030405060708","timestamp":1.5}]"#.into(), "span 0: timestamp: 1.5 is not an integer"),
        // The collector's v1 struct has string values only: {"key":"sa","value":true} is refused.
        (V1Json, r#"[{"traceId":"0102030405060708","id":"0102030405060708","binaryAnnotations":[{"key":"sa","value":true}]}]"#.into(), "span 0: binaryAnnotation 0: value: expected a string, found a boolean"),
        (V1Json, r#"[{"traceId":"0102030405060708","id":"0102030405060708","binaryAnnotations":[null]}]"#.into(), "span 0: binaryAnnotation 0: expected an object, found null"),
        (V1Json, r#"[{"traceId":"0102030405060708","id":"0102030405060708","annotations":[{"value":"x","endpoint":{"port":"80"}}]}]"#.into(), "span 0: annotation 0: endpoint.port: expected an integer"),
    ];
    for (decoder, body, want) in cases {
        check_err(decoder, body.as_bytes(), want);
    }

    let proto_span = |f: &dyn Fn(&mut proto::Span)| {
        let mut span = proto::Span {
            trace_id: vec![1; 16],
            id: vec![2; 8],
            ..Default::default()
        };
        f(&mut span);
        proto::ListOfSpans {
            spans: vec![
                proto::Span {
                    trace_id: vec![1; 16],
                    id: vec![3; 8],
                    ..Default::default()
                },
                span,
            ],
        }
        .encode_to_vec()
    };
    let proto_cases: Vec<(Vec<u8>, &str)> = vec![
        (
            proto_span(&|s| s.trace_id = vec![1; 15]),
            "span 1: traceId: 15 bytes, want 16 (or 8)",
        ),
        (
            proto_span(&|s| s.trace_id.clear()),
            "span 1: traceId: missing",
        ),
        (
            proto_span(&|s| s.trace_id = vec![0; 16]),
            "span 1: traceId: is zero",
        ),
        (proto_span(&|s| s.id.clear()), "span 1: id: missing"),
        (proto_span(&|s| s.id = vec![0; 8]), "span 1: id: is zero"),
        (
            proto_span(&|s| s.id = vec![1; 9]),
            "span 1: id: 9 bytes, want 8",
        ),
        (
            proto_span(&|s| s.parent_id = vec![1; 4]),
            "span 1: parentId: 4 bytes, want 8",
        ),
        (
            proto_span(&|s| {
                s.local_endpoint = Some(proto::Endpoint {
                    ipv4: vec![1; 5],
                    ..Default::default()
                })
            }),
            "span 1: localEndpoint.ipv4: 5 bytes, want 4 or 16",
        ),
        (
            proto_span(&|s| {
                s.remote_endpoint = Some(proto::Endpoint {
                    port: -1,
                    ..Default::default()
                })
            }),
            "span 1: remoteEndpoint.port: -1 is not 0 to 65535",
        ),
        (
            proto_span(&|s| s.duration = u64::MAX),
            "span 1: timestamp 0 + duration 18446744073709551615 microseconds overflows",
        ),
    ];
    for (body, want) in proto_cases {
        check_err(V2Proto, &body, want);
    }
}

/// Truncated and bit-flipped bodies of every fixture: errors or requests, never a panic.
#[test]
fn never_panics_on_mangled_input() {
    let bodies = [
        fixture("v2_messaging.json"),
        fixture("collector_sample3.json"),
        fixture("v1_hand_written.json"),
    ];
    for body in &bodies {
        for cut in 0..body.len() {
            let part = &body[..cut];
            let _ = decode_v2_json(part);
            let _ = decode_v2_proto(part);
            let _ = decode_v1_json_with(part, &Options::default(), 1);
        }
        for i in (0..body.len()).step_by(7) {
            let mut flipped = body.clone();
            flipped[i] ^= 0x20;
            let _ = decode_v2_json(&flipped);
            let _ = decode_v2_proto(&flipped);
            let _ = decode_v1_json_with(&flipped, &Options::default(), 1);
        }
    }
}

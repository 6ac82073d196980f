//! Every receiver Tempo takes besides OTLP/gRPC, each driven by a real client: the
//! OpenTelemetry Python SDK's Zipkin JSON exporter, its last Jaeger exporters (thrift compact
//! over UDP, thrift binary over UDP and HTTP, protobuf over gRPC), and OTLP/HTTP JSON bodies
//! from the OTLP specification's example. Every trace is read back through the query API
//! and found by a TraceQL search on its service name; malformed bodies get a 4xx naming what
//! was wrong and the server keeps serving.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::Value;

const TRACES: usize = 4;

/// The OTLP spec's example request (opentelemetry-proto `examples/trace.json`).
const SPEC_EXAMPLE: &str = include_str!("../receivers/tests/data/otlp_json/trace.json");
const SPEC_EXAMPLE_TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";

/// The default test config with every receiver on an ephemeral loopback port, and CORS for
/// OTLP/HTTP.
fn receivers_config(extra: &str) -> String {
    let config = default_config(extra);
    let otlp_http = "        http:\n          endpoint: 127.0.0.1:0\n";
    assert!(config.contains(otlp_http), "{config}");
    config.replacen(
        otlp_http,
        "        http:
          endpoint: 127.0.0.1:0
          cors:
            allowed_origins: [\"https://*.example.com\"]
            max_age: 600
    zipkin:
      endpoint: 127.0.0.1:0
    jaeger:
      protocols:
        grpc:
          endpoint: 127.0.0.1:0
        thrift_http:
          endpoint: 127.0.0.1:0
        thrift_compact:
          endpoint: 127.0.0.1:0
        thrift_binary:
          endpoint: 127.0.0.1:0
",
        1,
    )
}

fn start() -> Server {
    Server::start_with(ServerOptions::new(receivers_config("")))
}

/// The trace's batches once it holds `spans` spans (UDP is not acknowledged, so a sender
/// cannot know when its spans are in).
fn wait_for_trace(http: SocketAddr, trace_id: &str, spans: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let batches = get_v2_json(http, trace_id, None);
        let count = spans_with_service(&batches).len();
        if count >= spans {
            return batches;
        }
        assert!(
            Instant::now() < deadline,
            "trace {trace_id}: {count} of {spans} spans after 20 s: {batches}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of attribute `key` in an OTLP JSON attribute list, if there.
fn attr(holder: &Value, key: &str) -> Option<Value> {
    holder["attributes"]
        .as_array()
        .and_then(|list| list.iter().find(|kv| kv["key"] == key))
        .map(|kv| kv["value"].clone())
}

/// (service.name, span) of every span in JSON batches.
fn spans_with_service(batches: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for batch in batches.as_array().into_iter().flatten() {
        let service = attr(&batch["resource"], "service.name")
            .and_then(|v| v["stringValue"].as_str().map(str::to_string))
            .unwrap_or_default();
        for ss in batch["scopeSpans"].as_array().into_iter().flatten() {
            for span in ss["spans"].as_array().into_iter().flatten() {
                out.push((service.clone(), span.clone()));
            }
        }
    }
    out
}

fn find<'a>(spans: &'a [(String, Value)], name: &str) -> &'a (String, Value) {
    spans
        .iter()
        .find(|(_, span)| span["name"] == name)
        .unwrap_or_else(|| panic!("no span {name:?} in {spans:?}"))
}

/// The trace IDs a TraceQL search over the last hour finds, without leading zeros.
fn search_ids(http: SocketAddr, query: &str) -> Vec<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let path = format!(
        "/api/search?q={}&start={}&end={}&limit=100",
        percent_encode(query),
        now - 3600,
        now + 60
    );
    let response = http_get(http, &path, &[]);
    assert_eq!(response.status, 200, "{path}: {response:?}");
    let mut ids: Vec<String> = response.json()["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceID"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn trimmed(ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = ids
        .iter()
        .map(|id| id.trim_start_matches('0').to_string())
        .collect();
    out.sort();
    out
}

fn parse_ids(stdout: &str) -> Vec<String> {
    let ids: Vec<String> = stdout.lines().map(str::to_string).collect();
    for id in &ids {
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "not a trace id: {id:?}"
        );
    }
    ids
}

/// The SDK's Zipkin JSON exporter (`/api/v2/spans`): traces come back with their services,
/// kinds, parents, attributes, events and error status, and a search on the service finds
/// them.
#[test]
fn zipkin_exporter_traces_come_back() {
    let server = start();
    let stdout = run_python(
        &python(PythonEnv::Sdk),
        "export_traces.py",
        &[
            server.listening_addr("zipkin").to_string(),
            TRACES.to_string(),
            "zipkin".to_string(),
        ],
    );
    let ids = parse_ids(&stdout);
    assert_eq!(ids.len(), TRACES);
    let http = server.http_addr();
    for (order, id) in ids.iter().enumerate() {
        let batches = get_v2_json(http, id, None);
        let spans = spans_with_service(&batches);
        assert_eq!(spans.len(), 3, "{id}: {batches}");
        let (service, root) = find(&spans, "GET /api/orders/{id}");
        assert_eq!(service, "py-frontend");
        assert_eq!(root["kind"], "SPAN_KIND_SERVER", "{root}");
        assert!(root.get("parentSpanId").is_none_or(|p| p == ""), "{root}");
        assert_eq!(
            attr(root, "http.method"),
            Some(serde_json::json!({"stringValue": "GET"})),
            "{root}"
        );
        let (service, db) = find(&spans, "SELECT orders");
        assert_eq!(service, "py-frontend");
        assert_eq!(db["kind"], "SPAN_KIND_CLIENT");
        assert_eq!(db["parentSpanId"], root["spanId"]);
        // The Python exporter writes an event as the annotation `{"name": {attributes}}`; the
        // Collector's receiver (so Tempo) keeps the whole value as the event's name.
        let events = db["events"].as_array().expect("the db span's event");
        assert_eq!(events.len(), 1, "{db}");
        assert_eq!(events[0]["name"], r#"{"rows": {"db.rows": 1}}"#, "{db}");
        let (service, charge) = find(&spans, "payment.charge");
        assert_eq!(service, "py-payments");
        assert_eq!(charge["parentSpanId"], root["spanId"]);
        if order % 2 == 1 {
            assert_eq!(charge["status"]["code"], "STATUS_CODE_ERROR", "{charge}");
        } else {
            assert_ne!(charge["status"]["code"], "STATUS_CODE_ERROR", "{charge}");
        }
    }
    assert_eq!(
        search_ids(http, r#"{ resource.service.name = "py-payments" }"#),
        trimmed(&ids)
    );
    let failed: Vec<String> = ids.iter().skip(1).step_by(2).cloned().collect();
    assert_eq!(
        search_ids(
            http,
            r#"{ resource.service.name = "py-payments" && status = error }"#
        ),
        trimmed(&failed)
    );
}

/// The SDK's Jaeger exporters, each on its receiver: thrift compact to the agent's UDP port,
/// thrift binary to the other UDP port, thrift binary over HTTP to `/api/traces`, protobuf
/// over gRPC to `PostSpans`.
#[test]
fn jaeger_exporters_traces_come_back() {
    let server = start();
    let http = server.http_addr();
    let python = python(PythonEnv::Jaeger);
    let mut all = Vec::new();
    for (mode, receiver) in [
        ("agent-compact", "jaeger_thrift_compact"),
        ("agent-binary", "jaeger_thrift_binary"),
        ("collector", "jaeger_thrift_http"),
        ("grpc", "jaeger_grpc"),
    ] {
        let stdout = run_python(
            &python,
            "export_jaeger.py",
            &[
                mode.to_string(),
                server.listening_addr(receiver).to_string(),
                "3".to_string(),
            ],
        );
        let ids = parse_ids(&stdout);
        assert_eq!(ids.len(), 3, "{mode}: {stdout}");
        for (order, id) in ids.iter().enumerate() {
            let batches = wait_for_trace(http, id, 3);
            let spans = spans_with_service(&batches);
            assert_eq!(spans.len(), 3, "{mode} {id}: {batches}");
            let (service, root) = find(&spans, "GET /checkout");
            assert_eq!(service, "jg-frontend", "{mode}");
            assert_eq!(root["kind"], "SPAN_KIND_SERVER", "{mode}: {root}");
            assert!(root.get("parentSpanId").is_none_or(|p| p == ""), "{root}");
            assert_eq!(
                attr(root, "http.method"),
                Some(serde_json::json!({"stringValue": "GET"})),
                "{mode}: {root}"
            );
            assert_eq!(
                attr(root, "order.id"),
                Some(serde_json::json!({"intValue": order.to_string()})),
                "{mode}: {root}"
            );
            assert_eq!(
                attr(root, "ratio").and_then(|v| v["doubleValue"].as_f64()),
                Some(0.5),
                "{mode}: {root}"
            );
            assert_eq!(
                attr(root, "cached"),
                Some(serde_json::json!({"boolValue": true})),
                "{mode}: {root}"
            );
            let (service, db) = find(&spans, "SELECT carts");
            assert_eq!(service, "jg-frontend");
            assert_eq!(db["kind"], "SPAN_KIND_CLIENT", "{mode}: {db}");
            assert_eq!(db["parentSpanId"], root["spanId"], "{mode}");
            // The exporter writes the event's name as the log field `message`; the Collector's
            // translator (so Tempo) names an event only from a field `event`.
            let events = db["events"].as_array().expect("the db span's event");
            assert_eq!(events.len(), 1, "{mode}: {db}");
            assert_eq!(
                attr(&events[0], "message"),
                Some(serde_json::json!({"stringValue": "rows"})),
                "{mode}: {db}"
            );
            assert_eq!(
                attr(&events[0], "db.rows"),
                Some(serde_json::json!({"intValue": "2"})),
                "{mode}: {db}"
            );
            let (service, charge) = find(&spans, "charge");
            assert_eq!(service, "jg-payments");
            assert_eq!(charge["parentSpanId"], root["spanId"], "{mode}");
            if order % 2 == 1 {
                assert_eq!(
                    charge["status"]["code"], "STATUS_CODE_ERROR",
                    "{mode}: {charge}"
                );
            } else {
                assert_ne!(
                    charge["status"]["code"], "STATUS_CODE_ERROR",
                    "{mode}: {charge}"
                );
            }
        }
        all.extend(ids);
    }
    assert_eq!(
        search_ids(http, r#"{ resource.service.name = "jg-payments" }"#),
        trimmed(&all)
    );
    let metrics = http_get(http, "/metrics", &[]).text();
    for transport in [
        "udp_thrift_compact",
        "udp_thrift_binary",
        "collector_http",
        "grpc",
    ] {
        let line = format!(
            "allegro_receiver_accepted_spans_total{{receiver=\"jaeger\",transport=\"{transport}\"}} 9"
        );
        assert!(metrics.contains(&line), "no `{line}` in:\n{metrics}");
    }
}

/// OTLP/HTTP with JSON bodies: the OTLP specification's example request, answered in JSON and
/// read back; the same request over h2c; CORS preflights and origins.
#[test]
fn otlp_http_json_from_the_spec_and_cors() {
    let server = start();
    let otlp = server.otlp_http_addr();
    let response = http_request(
        otlp,
        "POST",
        "/v1/traces",
        &[
            ("Content-Type", "application/json"),
            ("Origin", "https://app.example.com"),
        ],
        SPEC_EXAMPLE.as_bytes(),
    );
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.content_type(), Some("application/json"));
    assert_eq!(response.text(), "{}");
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let batches = get_v2_json(server.http_addr(), SPEC_EXAMPLE_TRACE_ID, None);
    let spans = spans_with_service(&batches);
    assert_eq!(spans.len(), 1, "{batches}");
    let (service, span) = &spans[0];
    assert_eq!(service, "my.service");
    assert_eq!(span["name"], "I'm a server span");
    assert_eq!(span["kind"], "SPAN_KIND_SERVER");
    assert_eq!(
        span["spanId"],
        b64(&[0xEE, 0xE1, 0x9B, 0x7E, 0xC3, 0xC1, 0xB1, 0x74])
    );
    assert_eq!(
        attr(span, "my.span.attr"),
        Some(serde_json::json!({"stringValue": "some value"}))
    );

    // The same body, gzip-compressed, over h2c: the spans are stored once (de-duplicated by
    // span ID on read).
    let rt = runtime();
    let h2 = rt.block_on(async {
        let client = H2Client::connect(otlp).await.expect("h2c connect");
        client
            .request(
                "POST",
                "/v1/traces",
                &[
                    ("content-type", "application/json"),
                    ("content-encoding", "gzip"),
                ],
                bytes::Bytes::from(gzip(SPEC_EXAMPLE.as_bytes())),
            )
            .await
            .expect("h2c request")
    });
    assert_eq!(h2.http_status, 200, "{h2:?}");
    let spans = spans_with_service(&get_v2_json(
        server.http_addr(),
        SPEC_EXAMPLE_TRACE_ID,
        None,
    ));
    assert_eq!(spans.len(), 1);

    // CORS: a preflight from an allowed origin, and one from elsewhere.
    let preflight = |origin: &str| {
        http_request(
            otlp,
            "OPTIONS",
            "/v1/traces",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type"),
            ],
            b"",
        )
    };
    let allowed = preflight("https://web.example.com");
    assert_eq!(allowed.status, 204, "{allowed:?}");
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://web.example.com")
    );
    assert_eq!(allowed.header("access-control-allow-methods"), Some("POST"));
    assert_eq!(allowed.header("access-control-max-age"), Some("600"));
    let refused = preflight("https://evil.test");
    assert_eq!(refused.status, 204, "{refused:?}");
    assert_eq!(refused.header("access-control-allow-origin"), None);
}

/// Malformed bodies on every receiver get a 4xx (or INVALID_ARGUMENT) naming what was wrong,
/// a garbage datagram is counted, and the server keeps taking good requests afterwards.
#[test]
fn malformed_bodies_get_reasons_and_the_server_keeps_serving() {
    let server = start();
    let otlp = server.otlp_http_addr();
    let post = |addr: SocketAddr, path: &str, content_type: &str, body: &[u8]| {
        http_request(addr, "POST", path, &[("Content-Type", content_type)], body)
    };

    // OTLP/HTTP: JSON errors in JSON, protobuf errors in protobuf, with the field named.
    let bad_json = post(
        otlp,
        "/v1/traces",
        "application/json",
        b"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"zz\"}]}]}]}",
    );
    assert_eq!(bad_json.status, 400, "{bad_json:?}");
    assert_eq!(bad_json.content_type(), Some("application/json"));
    let status = bad_json.json();
    assert_eq!(status["code"], 3, "{status}");
    let message = status["message"].as_str().unwrap();
    assert!(message.contains("traceId"), "{message}");
    let bad_proto = post(
        otlp,
        "/v1/traces",
        "application/x-protobuf",
        b"\x0a\xff\xff\xff",
    );
    assert_eq!(bad_proto.status, 400, "{bad_proto:?}");
    assert_eq!(bad_proto.content_type(), Some("application/x-protobuf"));
    let status = RpcStatus::decode(bad_proto.body.as_slice()).expect("a google.rpc.Status");
    assert_eq!(status.code, 3);
    assert!(
        status.message.contains("invalid ExportTraceServiceRequest"),
        "{status:?}"
    );
    let wrong_type = post(otlp, "/v1/traces", "text/plain", b"hello");
    assert_eq!(wrong_type.status, 415, "{wrong_type:?}");
    assert!(
        wrong_type.text().contains("application/x-protobuf"),
        "{wrong_type:?}"
    );
    let get = http_request(otlp, "GET", "/v1/traces", &[], b"");
    assert_eq!(get.status, 405, "{get:?}");
    let elsewhere = post(otlp, "/v1/metrics", "application/x-protobuf", b"");
    assert_eq!(elsewhere.status, 404, "{elsewhere:?}");
    let bad_gzip = http_request(
        otlp,
        "POST",
        "/v1/traces",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
        ],
        b"not gzip",
    );
    assert_eq!(bad_gzip.status, 400, "{bad_gzip:?}");

    // Zipkin: the reason as text.
    let zipkin = server.listening_addr("zipkin");
    let not_json = post(
        zipkin,
        "/api/v2/spans",
        "application/json",
        b"[{\"traceId\":",
    );
    assert_eq!(not_json.status, 400, "{not_json:?}");
    assert!(!not_json.text().trim().is_empty(), "{not_json:?}");
    let bad_id = post(
        zipkin,
        "/api/v2/spans",
        "application/json",
        br#"[{"traceId":"xyz","id":"0000000000000001","name":"a"}]"#,
    );
    assert_eq!(bad_id.status, 400, "{bad_id:?}");
    assert!(bad_id.text().contains("traceId"), "{bad_id:?}");

    // Jaeger thrift over HTTP.
    let thrift_http = server.listening_addr("jaeger_thrift_http");
    let garbage = post(
        thrift_http,
        "/api/traces",
        "application/x-thrift",
        b"\x0c\x00\x01\x0b",
    );
    assert_eq!(garbage.status, 400, "{garbage:?}");
    assert!(
        garbage.text().starts_with("Unable to process request body"),
        "{garbage:?}"
    );
    let wrong_type = post(thrift_http, "/api/traces", "application/json", b"{}");
    assert_eq!(wrong_type.status, 400, "{wrong_type:?}");
    assert!(
        wrong_type.text().contains("Unsupported content type"),
        "{wrong_type:?}"
    );

    // Jaeger gRPC.
    let response = grpc_raw(
        server.listening_addr("jaeger_grpc"),
        "/jaeger.api_v2.CollectorService/PostSpans",
        GRPC_HEADERS,
        grpc_frame(b"\x0a\x05\x12\xff\xff\xff\xff", false),
    );
    assert_eq!(response.grpc_status(), Some(3), "{response:?}");
    assert!(
        response.grpc_message().contains("PostSpansRequest"),
        "{response:?}"
    );
    let unknown = grpc_raw(
        server.listening_addr("jaeger_grpc"),
        "/jaeger.api_v2.SamplingManager/GetSamplingStrategy",
        GRPC_HEADERS,
        grpc_frame(b"", false),
    );
    assert_eq!(unknown.grpc_status(), Some(12), "{unknown:?}");

    // Jaeger agent: a datagram that is not thrift is counted, nothing else happens.
    for receiver in ["jaeger_thrift_compact", "jaeger_thrift_binary"] {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .send_to(b"definitely not thrift", server.listening_addr(receiver))
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = http_get(server.http_addr(), "/metrics", &[]).text();
        let counted = ["udp_thrift_compact", "udp_thrift_binary"].iter().all(|t| {
            metrics.contains(&format!(
                "allegro_receiver_malformed_requests_total{{receiver=\"jaeger\",transport=\"{t}\"}} 1"
            ))
        });
        if counted {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "datagrams not counted:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Still serving: a good request on each HTTP receiver.
    let ok = post(
        otlp,
        "/v1/traces",
        "application/json",
        SPEC_EXAMPLE.as_bytes(),
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    let ok = post(
        zipkin,
        "/api/v2/spans",
        "application/json",
        br#"[{"traceId":"00000000000000000000000000abcdef","id":"0000000000000001","name":"after","timestamp":1700000000000000,"duration":5,"localEndpoint":{"serviceName":"zk-after"}}]"#,
    );
    assert_eq!(ok.status, 202, "{ok:?}");
    let spans = spans_with_service(&get_v2_json(
        server.http_addr(),
        "00000000000000000000000000abcdef",
        None,
    ));
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].0, "zk-after");
}

/// With `multitenancy_enabled`, the HTTP receivers want `X-Scope-OrgID` as Tempo does, and
/// what they take is the tenant's alone.
#[test]
fn receivers_follow_the_tenant_rules() {
    let server = Server::start_with(ServerOptions::new(receivers_config(
        "multitenancy_enabled: true\n",
    )));
    let otlp = server.otlp_http_addr();
    let missing = http_request(
        otlp,
        "POST",
        "/v1/traces",
        &[("Content-Type", "application/json")],
        SPEC_EXAMPLE.as_bytes(),
    );
    assert_eq!(missing.status, 401, "{missing:?}");
    assert_eq!(missing.json()["code"], 16, "{missing:?}");
    let ok = http_request(
        otlp,
        "POST",
        "/v1/traces",
        &[
            ("Content-Type", "application/json"),
            ("X-Scope-OrgID", "team-a"),
        ],
        SPEC_EXAMPLE.as_bytes(),
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    let zipkin = server.listening_addr("zipkin");
    let body = br#"[{"traceId":"0000000000000000000000000000beef","id":"0000000000000002","name":"z","timestamp":1700000000000000,"duration":5,"localEndpoint":{"serviceName":"zk-tenant"}}]"#;
    let missing = http_request(
        zipkin,
        "POST",
        "/api/v2/spans",
        &[("Content-Type", "application/json")],
        body,
    );
    assert_eq!(missing.status, 401, "{missing:?}");
    let ok = http_request(
        zipkin,
        "POST",
        "/api/v2/spans",
        &[
            ("Content-Type", "application/json"),
            ("X-Scope-OrgID", "team-a"),
        ],
        body,
    );
    assert_eq!(ok.status, 202, "{ok:?}");
    let http = server.http_addr();
    for id in [SPEC_EXAMPLE_TRACE_ID, "0000000000000000000000000000beef"] {
        assert_eq!(
            spans_with_service(&get_v2_json(http, id, Some("team-a"))).len(),
            1,
            "{id}"
        );
        assert!(
            spans_with_service(&get_v2_json(http, id, Some("team-b"))).is_empty(),
            "{id}"
        );
    }
}

/// `google.rpc.Status`, declared here as the test must not borrow the server's.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

use prost::Message as _;

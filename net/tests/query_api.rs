//! The Tempo query API of the real binary, against the captures of Tempo 2.7.2 in
//! /work/shared/tempo-api (01-09, 45-51, 58, 60): status, content type and body shape, over
//! HTTP/1.1 and over h2c on the same port.

mod common;

use std::net::SocketAddr;

use common::*;
use prost::Message;
use serde_json::Value;

const UNKNOWN_ID: &str = "0123456789abcdef0123456789abcdef";

/// Starts a server holding one error trace (like the captures' "every 5th trace") and a trace
/// whose id starts with 8 zero bytes (for the short-id padding).
fn server_with_traces() -> (Server, GenTrace, GenTrace) {
    let server = Server::start("");
    let mut gen = TraceGen::new(30);
    // Trace 0 of a generator is an error trace: its last span has an exception event.
    let error_trace = gen.trace(4);
    let mut short_id = [0u8; 16];
    short_id[8] = 0x0a;
    short_id[9..].copy_from_slice(&gen.rng().id::<7>());
    let short = gen.trace_with_id(short_id, 2);
    export(
        server.grpc_addr(),
        &request_of(&[error_trace.clone(), short.clone()]),
        &ExportOpts::default(),
    )
    .assert_ok();
    (server, error_trace, short)
}

fn assert_text_plain_utf8(response: &HttpResponse, context: &str) {
    assert_eq!(
        response.content_type(),
        Some("text/plain; charset=utf-8"),
        "{context}: {response:?}"
    );
}

/// The trace handlers' 400 bodies are the error text alone: Content-Length 78 and 39 in
/// captures 47-49, no trailing newline (unlike Go's `http.Error` for the 404 page).
fn assert_error_text(response: &HttpResponse, expected: &str, context: &str) {
    assert_eq!(response.text(), expected, "{context}: {response:?}");
}

fn top_level_keys(value: &Value) -> Vec<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

fn all_spans(batches: &Value) -> Vec<Value> {
    let mut spans = Vec::new();
    for batch in batches.as_array().expect("batches list") {
        assert!(
            batch.get("resource").is_some(),
            "batch without resource: {batch}"
        );
        for ss in batch["scopeSpans"].as_array().expect("scopeSpans list") {
            assert!(ss.get("scope").is_some(), "scopeSpans without scope: {ss}");
            spans.extend(ss["spans"].as_array().expect("spans list").iter().cloned());
        }
    }
    spans
}

/// The shape of a span in capture 04: base64 ids, enum names, int64 as strings, `status` always.
fn assert_span_shape(span: &Value, trace: &GenTrace) {
    assert_eq!(
        span["traceId"],
        Value::String(b64(&trace.trace_id)),
        "{span}"
    );
    let span_id = span["spanId"].as_str().expect("spanId string");
    assert_eq!(span_id.len(), 12, "spanId is 8 bytes in base64: {span}");
    assert!(
        span["kind"].as_str().unwrap().starts_with("SPAN_KIND_"),
        "{span}"
    );
    for key in ["startTimeUnixNano", "endTimeUnixNano"] {
        let text = span[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} is a string: {span}"));
        assert!(text.bytes().all(|b| b.is_ascii_digit()), "{key}: {span}");
    }
    let status_code = span["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|kv| kv["key"] == "http.status_code")
        .expect("http.status_code attribute");
    assert!(
        status_code["value"]["intValue"].is_string(),
        "int64 as string: {status_code}"
    );
}

#[test]
fn trace_by_id_answers_like_the_tempo_captures() {
    let (server, trace, short) = server_with_traces();
    let http = server.http_addr();
    let id = trace.hex_id();

    // 04: v1 JSON.
    let response = http_get(http, &format!("/api/traces/{id}"), &[]);
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.content_type(), Some("application/json"));
    let body = response.json();
    assert_eq!(top_level_keys(&body), ["batches"]);
    let spans = all_spans(&body["batches"]);
    assert_eq!(spans.len(), 4);
    for span in &spans {
        assert_span_shape(span, &trace);
    }
    let error_span = spans
        .iter()
        .find(|span| {
            span["status"]
                .get("code")
                .is_some_and(|c| c == "STATUS_CODE_ERROR")
        })
        .expect("the error span");
    assert_eq!(error_span["status"]["message"], "card declined");
    assert!(
        error_span["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "exception" && e["timeUnixNano"].is_string()),
        "{error_span}"
    );
    assert_same_spans_json("v1 JSON", &trace.resource_spans, &body["batches"]);

    // 08: with a time range around the spans (seconds).
    let first =
        trace.resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano / 1_000_000_000;
    let response = http_get(
        http,
        &format!(
            "/api/traces/{id}?start={}&end={}",
            first - 3600,
            first + 3600
        ),
        &[],
    );
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.content_type(), Some("application/json"));
    assert_same_spans_json(
        "v1 JSON with range",
        &trace.resource_spans,
        &response.json()["batches"],
    );

    // 05: v1 protobuf.
    let response = http_get(
        http,
        &format!("/api/traces/{id}"),
        &[("Accept", "application/protobuf")],
    );
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.content_type(), Some("application/protobuf"));
    let decoded = TempoTrace::decode(response.body.as_slice()).expect("tempopb.Trace");
    assert_same_spans("v1 protobuf", &trace.resource_spans, &decoded.batches);

    // 06, 09: v2 JSON.
    let response = http_get(http, &format!("/api/v2/traces/{id}"), &[]);
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.content_type(), Some("application/json"));
    let body = response.json();
    assert_eq!(top_level_keys(&body), ["trace"]);
    assert_eq!(top_level_keys(&body["trace"]), ["resourceSpans"]);
    for span in all_spans(&body["trace"]["resourceSpans"]) {
        assert_span_shape(&span, &trace);
    }
    assert_same_spans_json(
        "v2 JSON",
        &trace.resource_spans,
        &body["trace"]["resourceSpans"],
    );

    // 07: v2 protobuf.
    let response = http_get(
        http,
        &format!("/api/v2/traces/{id}"),
        &[("Accept", "application/protobuf")],
    );
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.content_type(), Some("application/protobuf"));
    let decoded = TraceByIdResponse::decode(response.body.as_slice()).expect("TraceByIDResponse");
    assert_same_spans(
        "v2 protobuf",
        &trace.resource_spans,
        &decoded.trace.unwrap().batches,
    );

    // Upper-case hex is hex.
    let upper = get_v1_proto(http, &id.to_uppercase(), None).expect("upper-case id");
    assert_same_spans("upper-case id", &trace.resource_spans, &upper);

    // 50: ids shorter than 32 hex digits are padded with zeros on the left (odd lengths too).
    let full = short.hex_id();
    assert!(full.starts_with("00000000000000000a"));
    for id in [&full[16..], &full[17..]] {
        let got = get_v1_proto(http, id, None).unwrap_or_else(|| panic!("short id {id}: 404"));
        assert_same_spans(&format!("short id {id}"), &short.resource_spans, &got);
    }
    let response = http_get(http, "/api/traces/607e391b01d54ad3", &[]);
    assert_eq!(response.status, 404, "{response:?}");
    assert!(response.body.is_empty());

    // Without multitenancy an org id is ignored.
    let tenanted = get_v1_proto(http, &id, Some("someone")).expect("X-Scope-OrgID ignored");
    assert_same_spans("with an ignored org id", &trace.resource_spans, &tenanted);

    // Capture 04: a span sent with a status message, even an empty one (the Python SDK
    // always sends one), has `status`, `{}` when unset. Checked last so that the checks above
    // run first.
    let with_status: Vec<String> = flatten(&trace.resource_spans)
        .iter()
        .filter(|flat| flat.span.status.is_some())
        .map(|flat| b64(&flat.span.span_id))
        .collect();
    assert!(with_status.len() >= 2, "the trace has spans with a status");
    for path in [format!("/api/traces/{id}"), format!("/api/v2/traces/{id}")] {
        let body = http_get(http, &path, &[]).json();
        let batches = body
            .get("batches")
            .unwrap_or(&body["trace"]["resourceSpans"]);
        for span in all_spans(batches) {
            if with_status.iter().any(|id| span["spanId"] == id.as_str()) {
                assert!(
                    span["status"].is_object(),
                    "{path}: span sent with an (empty) status has `status` (`{{}}` when unset): {span}"
                );
            }
        }
    }
}

#[test]
fn unknown_and_malformed_ids_answer_like_tempo() {
    let server = Server::start("");
    let http = server.http_addr();

    // 45: v1 unknown id.
    let response = http_get(http, &format!("/api/traces/{UNKNOWN_ID}"), &[]);
    assert_eq!(response.status, 404, "{response:?}");
    assert!(response.body.is_empty(), "{response:?}");
    // 51: the same as protobuf.
    let response = http_get(
        http,
        &format!("/api/traces/{UNKNOWN_ID}"),
        &[("Accept", "application/protobuf")],
    );
    assert_eq!(response.status, 404, "{response:?}");
    assert!(response.body.is_empty(), "{response:?}");
    // 46: v2 unknown id.
    let response = http_get(http, &format!("/api/v2/traces/{UNKNOWN_ID}"), &[]);
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.content_type(), Some("application/json"));
    assert_eq!(response.json(), serde_json::json!({"trace": {}}));
    // v2 unknown id as protobuf: an empty trace.
    let response = http_get(
        http,
        &format!("/api/v2/traces/{UNKNOWN_ID}"),
        &[("Accept", "application/protobuf")],
    );
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.content_type(), Some("application/protobuf"));
    let decoded = TraceByIdResponse::decode(response.body.as_slice()).expect("TraceByIDResponse");
    assert!(
        decoded.trace.is_none_or(|t| t.batches.is_empty()),
        "unknown id has spans"
    );

    // 47, 48: not hex; the position is 1-based.
    for (path, expected) in [
        (
            "/api/traces/not-a-trace-id",
            "trace IDs can only contain hex characters: invalid character 'n' at position 1",
        ),
        (
            "/api/v2/traces/zzzz",
            "trace IDs can only contain hex characters: invalid character 'z' at position 1",
        ),
        (
            "/api/traces/abcx",
            "trace IDs can only contain hex characters: invalid character 'x' at position 4",
        ),
        (
            "/api/traces/0123456789abcdef0123456789abcdeg",
            "trace IDs can only contain hex characters: invalid character 'g' at position 32",
        ),
    ] {
        let response = http_get(http, path, &[]);
        assert_eq!(response.status, 400, "{path}: {response:?}");
        assert_text_plain_utf8(&response, path);
        assert_error_text(&response, expected, path);
        // The same with protobuf asked for: still a text error.
        let response = http_get(http, path, &[("Accept", "application/protobuf")]);
        assert_eq!(response.status, 400, "{path} (protobuf): {response:?}");
        assert_error_text(&response, expected, path);
    }

    // 49: more than 128 bits.
    let long = "a".repeat(40);
    for path in [
        format!("/api/traces/{long}"),
        format!("/api/v2/traces/{long}"),
    ] {
        let response = http_get(http, &path, &[]);
        assert_eq!(response.status, 400, "{path}: {response:?}");
        assert_text_plain_utf8(&response, &path);
        assert_error_text(&response, "trace IDs can't be larger than 128 bits", &path);
    }
}

#[test]
fn small_endpoints_answer_like_tempo() {
    let server = Server::start("");
    let http = server.http_addr();
    let mut gen = TraceGen::new(31);
    let (request, _) = gen.request(3, 2);
    export(server.grpc_addr(), &request, &ExportOpts::default()).assert_ok();

    // 01
    let response = http_get(http, "/api/echo", &[]);
    assert_eq!(response.status, 200, "{response:?}");
    assert_text_plain_utf8(&response, "/api/echo");
    // Content-Length 5 in the capture: Go's fmt.Fprintln.
    assert_eq!(response.text(), "echo\n");

    // 02
    let response = http_get(http, "/ready", &[]);
    assert_eq!(response.status, 200, "{response:?}");
    assert_text_plain_utf8(&response, "/ready");
    assert_eq!(response.text(), "ready\n");

    // 03
    let response = http_get(http, "/api/status/buildinfo", &[]);
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.content_type(), Some("application/json"));
    let body = response.json();
    let mut keys = top_level_keys(&body);
    keys.sort();
    assert_eq!(
        keys,
        [
            "branch",
            "buildDate",
            "buildUser",
            "goVersion",
            "revision",
            "version"
        ]
    );
    for key in &keys {
        assert!(body[key].is_string(), "{key} is a string: {body}");
    }
    assert!(!body["version"].as_str().unwrap().is_empty());

    // 60
    let response = http_get(http, "/status/version", &[]);
    assert_eq!(response.status, 200, "{response:?}");
    assert!(
        response
            .content_type()
            .is_some_and(|ct| ct.starts_with("text/plain")),
        "{response:?}"
    );
    assert!(response.text().contains("version"), "{response:?}");

    // /metrics
    let response = http_get(http, "/metrics", &[]);
    assert_eq!(response.status, 200, "{response:?}");
    assert!(
        response
            .content_type()
            .is_some_and(|ct| ct.starts_with("text/plain")),
        "{response:?}"
    );
    let text = response.text();
    for name in [
        "allegro_spans_received_total",
        "allegro_wal_fsyncs_total",
        "allegro_live_traces",
    ] {
        assert!(
            metric_sum(&text, name).is_some(),
            "no sample of {name} in:\n{text}"
        );
    }
    assert!(
        metric_sum(&text, "allegro_spans_received_total").unwrap() >= 6.0,
        "{text}"
    );
    assert!(
        metric_sum(&text, "allegro_live_traces").unwrap() >= 3.0,
        "{text}"
    );

    // 58
    for path in ["/api/nonexistent", "/nope", "/api/traces"] {
        let response = http_get(http, path, &[]);
        assert_eq!(response.status, 404, "{path}: {response:?}");
        assert_text_plain_utf8(&response, path);
        assert_eq!(response.text(), "404 page not found\n", "{path}");
    }
}

/// Compares the answers of both protocols: status, content type, body (parsed where the
/// bytes may legitimately differ in order).
fn assert_same_answer(path: &str, h1: &HttpResponse, h2: &HttpResponse) {
    assert_eq!(h2.status, h1.status, "{path}: status over h2c vs HTTP/1.1");
    assert_eq!(h2.content_type(), h1.content_type(), "{path}: content-type");
    match h1.content_type() {
        Some("application/json") => assert_eq!(h2.json(), h1.json(), "{path}: JSON body"),
        Some("application/protobuf") => {
            let a = TempoTrace::decode(h1.body.as_slice());
            let b = TempoTrace::decode(h2.body.as_slice());
            match (a, b) {
                (Ok(a), Ok(b)) => assert_eq!(flatten(&a.batches), flatten(&b.batches), "{path}"),
                _ => assert_eq!(h2.body, h1.body, "{path}: protobuf body"),
            }
        }
        _ => assert_eq!(h2.body, h1.body, "{path}: body"),
    }
}

#[test]
fn h2c_on_the_http_port_answers_like_http1() {
    let (server, trace, _) = server_with_traces();
    let http: SocketAddr = server.http_addr();
    let id = trace.hex_id();
    let protobuf = [("accept", "application/protobuf")];
    let requests: Vec<(String, &[(&str, &str)])> = vec![
        ("/api/echo".into(), &[]),
        ("/ready".into(), &[]),
        ("/api/status/buildinfo".into(), &[]),
        (format!("/api/traces/{id}"), &[]),
        (format!("/api/traces/{id}"), &protobuf),
        (format!("/api/v2/traces/{id}"), &[]),
        (format!("/api/v2/traces/{id}"), &protobuf),
        (format!("/api/traces/{UNKNOWN_ID}"), &[]),
        (format!("/api/v2/traces/{UNKNOWN_ID}"), &[]),
        ("/api/traces/not-a-trace-id".into(), &[]),
        (format!("/api/traces/{}", "a".repeat(40)), &[]),
        ("/api/nonexistent".into(), &[]),
    ];
    let h1: Vec<HttpResponse> = requests
        .iter()
        .map(|(path, headers)| http_get(http, path, headers))
        .collect();
    let h2: Vec<HttpResponse> = runtime().block_on(async {
        let client = H2Client::connect(http).await.expect("h2c to the HTTP port");
        // All at once, as concurrent streams of one connection.
        let mut answers = Vec::new();
        for (path, headers) in &requests {
            let client = client.clone();
            let path = path.clone();
            let headers: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            answers.push(tokio::spawn(async move {
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                client.get(&path, &headers).await
            }));
        }
        let mut out = Vec::new();
        for answer in answers {
            out.push(
                answer
                    .await
                    .unwrap()
                    .unwrap_or_else(|err| panic!("h2c GET: {err}")),
            );
        }
        out
    });
    for (((path, _), a), b) in requests.iter().zip(&h1).zip(&h2) {
        assert_same_answer(path, a, b);
    }
    // And /metrics over h2c.
    let metrics = runtime().block_on(async {
        let client = H2Client::connect(http).await.unwrap();
        client.get("/metrics", &[]).await.unwrap()
    });
    assert_eq!(metrics.status, 200);
    assert!(String::from_utf8_lossy(&metrics.body).contains("allegro_spans_received_total"));
}

#[test]
fn http1_keep_alive_and_pipelining() {
    let (server, trace, _) = server_with_traces();
    let http = server.http_addr();
    let id = trace.hex_id();
    let mut conn = Http1Conn::connect(http);

    // Several requests, one after the other, on one connection; errors keep it open too.
    let echo = conn.get("/api/echo", &[]);
    assert_eq!((echo.status, echo.text().as_str()), (200, "echo\n"));
    let found = conn.get(&format!("/api/traces/{id}"), &[]);
    assert_eq!(found.status, 200, "{found:?}");
    assert_same_spans_json(
        "keep-alive v1 JSON",
        &trace.resource_spans,
        &found.json()["batches"],
    );
    let unknown = conn.get(&format!("/api/traces/{UNKNOWN_ID}"), &[]);
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let malformed = conn.get("/api/traces/zzzz", &[]);
    assert_eq!(malformed.status, 400, "{malformed:?}");
    let missing = conn.get("/api/nonexistent", &[]);
    assert_eq!(missing.status, 404, "{missing:?}");
    let proto = conn.get(
        &format!("/api/v2/traces/{id}"),
        &[("Accept", "application/protobuf")],
    );
    assert_eq!(proto.status, 200, "{proto:?}");
    let decoded = TraceByIdResponse::decode(proto.body.as_slice()).expect("TraceByIDResponse");
    assert_same_spans(
        "keep-alive v2 protobuf",
        &trace.resource_spans,
        &decoded.trace.unwrap().batches,
    );

    // Pipelined: three requests in one write, answered in order (RFC 9112 section 9.3.2).
    let host = format!("Host: {http}\r\n");
    let pipelined = format!(
        "GET /ready HTTP/1.1\r\n{host}\r\n\
         GET /api/traces/{id} HTTP/1.1\r\n{host}Accept: application/protobuf\r\n\r\n\
         GET /api/echo HTTP/1.1\r\n{host}\r\n"
    );
    conn.send_raw(pipelined.as_bytes());
    let ready = conn.read_response();
    assert_eq!((ready.status, ready.text().as_str()), (200, "ready\n"));
    let found = conn.read_response();
    assert_eq!(found.status, 200, "{found:?}");
    let decoded = TempoTrace::decode(found.body.as_slice()).expect("tempopb.Trace");
    assert_same_spans(
        "pipelined v1 protobuf",
        &trace.resource_spans,
        &decoded.batches,
    );
    let echo = conn.read_response();
    assert_eq!((echo.status, echo.text().as_str()), (200, "echo\n"));
}

//! Search against the real binary (issue #5): the HTTP shapes of Tempo 2.7.2's captures
//! (/work/shared/tempo-api 10-37, 52-59), structural and aggregate TraceQL on traces built
//! for the purpose with known answers, live and after `/flush` (blocks), and the streaming
//! `tempopb.StreamingQuerier` on the HTTP port through an independent client (the `h2` crate
//! and prost messages declared in `common/tempopb.rs`).

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde_json::Value;

use common::tempopb as pb;

const TRACES: u8 = 6;

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn kv_str(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

/// The trace ID of test trace `i`: a leading zero byte, so Tempo's rendering drops "00".
fn trace_id(i: u8) -> [u8; 16] {
    let mut id = [0x5a; 16];
    id[0] = 0;
    id[1] = 0x10 + i;
    id
}

fn trace_hex(i: u8) -> String {
    let hex: String = trace_id(i).iter().map(|b| format!("{b:02x}")).collect();
    hex.trim_start_matches('0').to_string()
}

/// Trace `i`, starting `i` seconds after `base_s`:
///
/// ```text
/// frontend  GET /api/orders      (root, server, 100+i ms)
/// ├─ checkout  checkout.process  (50 ms)
/// │  ├─ checkout  SELECT orders   (5 ms)
/// │  └─ payments  payment.charge  (3 ms, http.status_code 500 + error when i is even, else 200)
/// ```
fn test_trace(i: u8, base_s: u64) -> ExportTraceServiceRequest {
    let start = (base_s + u64::from(i)) * 1_000_000_000;
    let id = trace_id(i);
    let span = |sid: u8,
                parent: u8,
                name: &str,
                offset_ms: u64,
                ms: u64,
                attrs: Vec<KeyValue>,
                error: bool| Span {
        trace_id: id.to_vec(),
        span_id: vec![i, sid, 1, 2, 3, 4, 5, 6],
        parent_span_id: if parent == 0 {
            Vec::new()
        } else {
            vec![i, parent, 1, 2, 3, 4, 5, 6]
        },
        name: name.to_string(),
        kind: if parent == 0 { 2 } else { 1 },
        start_time_unix_nano: start + offset_ms * 1_000_000,
        end_time_unix_nano: start + (offset_ms + ms) * 1_000_000,
        attributes: attrs,
        status: Some(Status {
            code: if error { 2 } else { 0 },
            message: String::new(),
        }),
        ..Default::default()
    };
    let resource = |service: &str, spans: Vec<Span>| ResourceSpans {
        resource: Some(Resource {
            attributes: vec![
                kv_str("service.name", service),
                kv_str("deployment.environment", "test"),
            ],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    };
    let failed = i.is_multiple_of(2);
    ExportTraceServiceRequest {
        resource_spans: vec![
            resource(
                "frontend",
                vec![span(
                    1,
                    0,
                    "GET /api/orders",
                    0,
                    100 + u64::from(i),
                    vec![kv_str("http.method", "GET")],
                    false,
                )],
            ),
            resource(
                "checkout",
                vec![
                    span(
                        2,
                        1,
                        "checkout.process",
                        2,
                        50,
                        vec![kv_str("order.id", "o1")],
                        false,
                    ),
                    span(
                        3,
                        2,
                        "SELECT orders",
                        3,
                        5,
                        vec![kv_str("db.system", "postgresql")],
                        false,
                    ),
                ],
            ),
            resource(
                "payments",
                vec![span(
                    4,
                    2,
                    "payment.charge",
                    10,
                    3,
                    vec![
                        kv_str("http.method", "POST"),
                        kv_int("http.status_code", if failed { 500 } else { 200 }),
                    ],
                    failed,
                )],
            ),
        ],
    }
}

fn start_server() -> (Server, u64) {
    let server = Server::start("");
    let base = now_s() - 600;
    for i in 0..TRACES {
        export(
            server.grpc_addr(),
            &test_trace(i, base),
            &ExportOpts::default(),
        )
        .assert_ok();
    }
    (server, base)
}

fn enc(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn search(server: &Server, query: &str, extra: &str) -> Value {
    let (start, end) = (now_s() - 3600, now_s() + 60);
    let path = format!(
        "/api/search?q={}&start={start}&end={end}{extra}",
        enc(query)
    );
    let response = http_get(server.http_addr(), &path, &[]);
    assert_eq!(
        response.status,
        200,
        "{path}: {}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.content_type(), Some("application/json"));
    response.json()
}

/// `tempopb.StreamingQuerier/Search` through the `h2` client.
async fn streaming_search(client: &H2Client, request: &pb::SearchRequest) -> RawResponse {
    client
        .grpc_raw(
            "/tempopb.StreamingQuerier/Search",
            GRPC_HEADERS,
            grpc_frame(&request.encode_to_vec(), false),
        )
        .await
        .expect("search")
}

fn ids(result: &Value) -> Vec<String> {
    result["traces"]
        .as_array()
        .expect("traces")
        .iter()
        .map(|t| t["traceID"].as_str().expect("traceID").to_string())
        .collect()
}

fn expect_ids(indices: &[u8]) -> Vec<String> {
    indices.iter().map(|&i| trace_hex(i)).collect()
}

fn check_searches(server: &Server) {
    // Errors: traces 0, 2, 4, most recent first; the shape of capture 11.
    let result = search(server, "{status=error}", "");
    assert_eq!(ids(&result), expect_ids(&[4, 2, 0]));
    let first = &result["traces"][0];
    assert_eq!(first["rootServiceName"], "frontend");
    assert_eq!(first["rootTraceName"], "GET /api/orders");
    assert!(first["startTimeUnixNano"].is_string());
    assert_eq!(first["durationMs"], 104);
    let span_set = &first["spanSet"];
    assert_eq!(span_set["matched"], 1);
    assert_eq!(span_set["spans"][0]["spanID"], "0404010203040506");
    assert_eq!(span_set["spans"][0]["durationNanos"], "3000000");
    assert_eq!(
        span_set["spans"][0]["attributes"],
        serde_json::json!([{"key":"status","value":{"stringValue":"error"}}])
    );
    assert_eq!(first["spanSets"][0], *span_set);
    assert_eq!(
        first["serviceStats"],
        serde_json::json!({"checkout":{"spanCount":2},"frontend":{"spanCount":1},"payments":{"spanCount":1,"errorCount":1}})
    );
    assert!(result["metrics"]["inspectedBytes"].is_string());
    assert!(result["metrics"].get("inspectedTraces").is_none());

    // Attributes and select (capture 13).
    let result = search(
        server,
        "{span.http.status_code >= 500 && resource.service.name=\"payments\"} | select(span.http.method) with(most_recent=true)",
        "&limit=2&spss=2",
    );
    assert_eq!(ids(&result), expect_ids(&[4, 2]));
    let attrs = &result["traces"][0]["spanSet"]["spans"][0]["attributes"];
    let keys: Vec<&str> = attrs
        .as_array()
        .expect("attributes")
        .iter()
        .map(|a| a["key"].as_str().expect("key"))
        .collect();
    assert!(
        keys.contains(&"http.method")
            && keys.contains(&"http.status_code")
            && keys.contains(&"service.name"),
        "{attrs}"
    );
    assert!(attrs
        .as_array()
        .expect("attributes")
        .contains(&serde_json::json!({"key":"http.status_code","value":{"intValue":"500"}})));

    // Structural (capture 14): the error span descends from frontend, not its child.
    let result = search(
        server,
        "{resource.service.name=\"frontend\"} >> {status=error}",
        "",
    );
    assert_eq!(ids(&result), expect_ids(&[4, 2, 0]));
    assert_eq!(
        result["traces"][0]["spanSet"]["spans"][0]["spanID"],
        "0404010203040506"
    );
    let result = search(
        server,
        "{resource.service.name=\"frontend\"} > {status=error}",
        "",
    );
    assert_eq!(ids(&result), Vec::<String>::new());
    let result = search(
        server,
        "{name=\"checkout.process\"} > {name=\"payment.charge\"}",
        "",
    );
    assert_eq!(ids(&result), expect_ids(&[5, 4, 3, 2, 1, 0]));
    let result = search(server, "{name=\"SELECT orders\"} ~ {status=error}", "");
    assert_eq!(ids(&result), expect_ids(&[4, 2, 0]));
    let result = search(server, "{status=error} << {}", "&spss=5");
    assert_eq!(result["traces"][0]["spanSet"]["matched"], 2, "{result}");
    let result = search(server, "{name=\"checkout.process\"} !> {status=error}", "");
    assert_eq!(ids(&result), Vec::<String>::new());

    // Aggregates (capture 15): four spans per trace.
    // Without `most_recent`, a search stops at `limit` traces (Tempo's frontend does too):
    // any three of the six, most recent first.
    let result = search(server, "{} | count() > 3", "&limit=3");
    let found = ids(&result);
    assert_eq!(found.len(), 3, "{result}");
    assert!(found
        .iter()
        .all(|id| expect_ids(&[5, 4, 3, 2, 1, 0]).contains(id)));
    let result = search(
        server,
        "{} | count() > 3 with(most_recent=true)",
        "&limit=3",
    );
    assert_eq!(ids(&result), expect_ids(&[5, 4, 3]));
    assert_eq!(result["traces"][0]["spanSet"]["matched"], 4);
    assert_eq!(
        result["traces"][0]["spanSet"]["spans"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert_eq!(
        result["traces"][0]["spanSet"]["attributes"],
        serde_json::json!([{"key":"count()","value":{"intValue":"4"}}])
    );
    assert_eq!(
        ids(&search(server, "{} | count() > 4", "")),
        Vec::<String>::new()
    );
    let result = search(
        server,
        "{} | by(resource.service.name) | count() = 2",
        "&limit=1",
    );
    assert_eq!(
        result["traces"][0]["spanSets"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(result["traces"][0]["spanSet"]["matched"], 2);
    let result = search(
        server,
        "{ trace:duration > 103ms } | avg(duration) > 1ms",
        "",
    );
    assert_eq!(ids(&result), expect_ids(&[5, 4]));
    let result = search(
        server,
        "{ name =~ \"payment.*\" && span.http.status_code = 200 }",
        "",
    );
    assert_eq!(ids(&result), expect_ids(&[5, 3, 1]));

    // The old tag search (capture 18, 19): no spansets, inspectedTraces in the metrics.
    let (start, end) = (now_s() - 3600, now_s() + 60);
    let path = format!(
        "/api/search?tags={}&start={start}&end={end}&limit=5",
        enc("service.name=payments http.status_code=500")
    );
    let result = http_get(server.http_addr(), &path, &[]).json();
    assert_eq!(ids(&result), expect_ids(&[4, 2, 0]));
    assert!(result["traces"][0].get("spanSet").is_none());
    assert_eq!(result["metrics"]["inspectedTraces"], u64::from(TRACES));
    let result = http_get(
        server.http_addr(),
        "/api/search?tags=service.name%3Dfrontend&minDuration=103ms&maxDuration=5s&limit=3",
        &[],
    )
    .json();
    let found = ids(&result);
    assert_eq!(found.len(), 3, "{result}");
    assert!(found
        .iter()
        .all(|id| expect_ids(&[5, 4, 3, 2, 1, 0]).contains(id)));
    // No parameters: everything, most recent first (capture 20); POST the same (59).
    let result = http_get(server.http_addr(), "/api/search", &[]).json();
    assert_eq!(ids(&result), expect_ids(&[5, 4, 3, 2, 1, 0]));
    let mut conn = Http1Conn::connect(server.http_addr());
    conn.send_raw(b"POST /api/search?limit=2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    let posted = conn.read_response();
    assert_eq!(posted.status, 200);
    assert_eq!(ids(&posted.json()).len(), 2);
    // A time range that misses every trace.
    let path = format!(
        "/api/search?q=%7B%7D&start={}&end={}",
        now_s() - 7200,
        now_s() - 3600
    );
    assert_eq!(
        ids(&http_get(server.http_addr(), &path, &[]).json()),
        Vec::<String>::new()
    );
}

fn check_tags(server: &Server) {
    let addr = server.http_addr();
    // Capture 21: every attribute name, sorted.
    let tags = http_get(addr, "/api/search/tags", &[]).json();
    assert_eq!(
        tags["tagNames"],
        serde_json::json!([
            "db.system",
            "deployment.environment",
            "http.method",
            "http.status_code",
            "order.id",
            "service.name"
        ])
    );
    assert!(tags["metrics"]["inspectedBytes"].is_string());
    // Capture 22.
    let tags = http_get(addr, "/api/search/tags?scope=span", &[]).json();
    assert_eq!(
        tags["tagNames"],
        serde_json::json!(["db.system", "http.method", "http.status_code", "order.id"])
    );
    // Captures 23-28.
    let v2 = http_get(addr, "/api/v2/search/tags", &[]).json();
    let names: Vec<&str> = v2["scopes"]
        .as_array()
        .expect("scopes")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["resource", "span", "intrinsic"]);
    assert_eq!(
        v2["scopes"][0]["tags"],
        serde_json::json!(["deployment.environment", "service.name"])
    );
    let v2 = http_get(addr, "/api/v2/search/tags?scope=intrinsic", &[]).json();
    assert_eq!(v2["scopes"][0]["tags"].as_array().map(Vec::len), Some(20));
    assert_eq!(v2["metrics"], serde_json::json!({}));
    let q = enc("{resource.service.name=\"payments\"}");
    let v2 = http_get(addr, &format!("/api/v2/search/tags?scope=span&q={q}"), &[]).json();
    assert_eq!(
        v2["scopes"],
        serde_json::json!([{"name":"span","tags":["http.method","http.status_code"]}])
    );
    let limited = http_get(addr, "/api/v2/search/tags?scope=span&limit=2", &[]).json();
    assert_eq!(
        limited["scopes"][0]["tags"],
        serde_json::json!(["db.system", "http.method"])
    );
    let limited = http_get(addr, "/api/search/tag/service.name/values?limit=1", &[]).json();
    assert_eq!(limited["tagValues"], serde_json::json!(["checkout"]));
    let bad = http_get(addr, "/api/v2/search/tags?scope=bogus", &[]);
    assert_eq!(
        (bad.status, bad.text()),
        (400, "invalid scope: bogus".to_string())
    );

    // Captures 29-37.
    let values = http_get(addr, "/api/search/tag/service.name/values", &[]).json();
    assert_eq!(
        values["tagValues"],
        serde_json::json!(["checkout", "frontend", "payments"])
    );
    let values = http_get(addr, "/api/search/tag/http.status_code/values", &[]).json();
    assert_eq!(values["tagValues"], serde_json::json!(["200", "500"]));
    let values = http_get(addr, "/api/v2/search/tag/span.http.status_code/values", &[]).json();
    let mut typed: Vec<Value> = values["tagValues"].as_array().expect("values").clone();
    typed.sort_by_key(|v| v["value"].as_str().map(str::to_string));
    assert_eq!(
        typed,
        vec![
            serde_json::json!({"type":"int","value":"200"}),
            serde_json::json!({"type":"int","value":"500"})
        ]
    );
    let q = enc("{span.http.status_code=500}");
    let values = http_get(
        addr,
        &format!("/api/v2/search/tag/resource.service.name/values?q={q}"),
        &[],
    )
    .json();
    assert_eq!(
        values["tagValues"],
        serde_json::json!([{"type":"string","value":"payments"}])
    );
    let q = enc("{resource.service.name=\"checkout\"}");
    let values = http_get(addr, &format!("/api/v2/search/tag/name/values?q={q}"), &[]).json();
    let mut names: Vec<&str> = values["tagValues"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| v["value"].as_str().expect("value"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, vec!["SELECT orders", "checkout.process"]);
    let values = http_get(addr, "/api/v2/search/tag/status/values", &[]).json();
    assert_eq!(
        values,
        serde_json::json!({"tagValues":[{"type":"keyword","value":"unset"},{"type":"keyword","value":"ok"},{"type":"keyword","value":"error"}],"metrics":{}})
    );
    let bad = http_get(addr, "/api/v2/search/tag/service.name/values", &[]);
    assert_eq!(bad.status, 500);
    assert_eq!(
        bad.text(),
        "please provide a valid tagName: tag name is not valid intrinsic or scoped attribute: service.name\n"
    );
    // Capture 57: a bad q is ignored.
    let values = http_get(
        addr,
        "/api/v2/search/tag/resource.service.name/values?q=%7B%20bogus",
        &[],
    )
    .json();
    assert_eq!(values["tagValues"].as_array().map(Vec::len), Some(3));
}

#[test]
fn search_live_then_from_blocks() {
    let (mut server, _) = start_server();
    check_searches(&server);
    check_tags(&server);
    let flushed = http_get(server.http_addr(), "/flush", &[]);
    assert_eq!(flushed.status, 204, "{}", flushed.text());
    check_searches(&server);
    check_tags(&server);
    // After a restart the traces are only in blocks (the WAL they replaced is gone).
    server.restart();
    let all = search(&server, "{}", "");
    assert!(
        all["metrics"]["totalBlocks"].as_u64() >= Some(1),
        "{}",
        all["metrics"]
    );
    check_searches(&server);
    check_tags(&server);
}

#[test]
fn search_errors_like_tempo() {
    let server = Server::start("");
    let addr = server.http_addr();
    let cases: &[(&str, u16, &str)] = &[
        (
            "/api/search?q=%7B%20span.http.method%20%3D%20%7D&start=1795462798&end=1795466458",
            400,
            "invalid TraceQL query: parse error at line 1, col 22: syntax error: unexpected }",
        ),
        (
            "/api/search?q=%7B%7D&start=1795466458&end=1795462798",
            400,
            "http parameter start must be before end. received start=1795466458 end=1795462798",
        ),
        (
            "/api/search?q=%7B%7D&limit=abc",
            400,
            "invalid limit: strconv.Atoi: parsing \"abc\": invalid syntax",
        ),
        (
            "/api/search?tags=service.name%3D%22unterminated",
            400,
            "invalid tags: unterminated quoted value at pos 27",
        ),
        (
            "/api/metrics/query_range?q=%7B%7D&step=60s",
            400,
            "not a metrics query",
        ),
        // Tempo 2.7's frontend defaults: spss at most 100, a range of at most 168h.
        (
            "/api/search?q=%7B%7D&spss=101",
            400,
            "spans per span set exceeds 100. received 101",
        ),
        (
            "/api/search?q=%7B%7D&start=1000000&end=1604801",
            400,
            "range specified by start and end exceeds 168h0m0s. received start=1000000 end=1604801",
        ),
        (
            "/api/v2/search/tags?start=1000000&end=1604801",
            400,
            "range specified by start and end exceeds 168h0m0s. received start=1000000 end=1604801",
        ),
    ];
    for (path, status, text) in cases {
        let response = http_get(addr, path, &[]);
        assert_eq!(
            (response.status, response.text().as_str()),
            (*status, *text),
            "{path}"
        );
        assert_eq!(response.content_type(), Some("text/plain; charset=utf-8"));
    }
}

#[test]
fn streaming_search_over_the_http_port() {
    let (server, _) = start_server();
    let runtime = runtime();
    runtime.block_on(async {
        let client = H2Client::connect(server.http_addr())
            .await
            .expect("connect");
        let request = pb::SearchRequest {
            query: "{ status = error }".to_string(),
            limit: 20,
            start: (now_s() - 3600) as u32,
            end: (now_s() + 60) as u32,
            ..Default::default()
        };
        let response = streaming_search(&client, &request).await;
        assert_eq!(response.http_status, 200);
        assert_eq!(
            response.grpc_status(),
            Some(0),
            "{}",
            response.grpc_message()
        );
        let messages = response.messages().expect("messages");
        // One per shard (the harness runs two), then the final one.
        assert_eq!(messages.len(), 3, "{messages:?}");
        let decoded: Vec<pb::SearchResponse> = messages
            .iter()
            .map(|m| pb::SearchResponse::decode(m.as_slice()).expect("SearchResponse"))
            .collect();
        let last = decoded.last().expect("a final message");
        let ids: Vec<&str> = last.traces.iter().map(|t| t.trace_id.as_str()).collect();
        assert_eq!(ids, expect_ids(&[4, 2, 0]));
        assert_eq!(last.traces[0].root_service_name, "frontend");
        assert_eq!(last.traces[0].span_sets[0].matched, 1);
        let metrics = last.metrics.as_ref().expect("metrics");
        assert_eq!((metrics.completed_jobs, metrics.total_jobs), (2, 2));
        assert!(metrics.inspected_bytes > 0);
        // The partial messages together hold the same traces.
        let partial: usize = decoded[..2].iter().map(|r| r.traces.len()).sum();
        assert_eq!(partial, 3);

        // Bad TraceQL: InvalidArgument with Tempo's text (grpc capture 03).
        let request = pb::SearchRequest {
            query: "{ span.http.method = }".to_string(),
            ..Default::default()
        };
        let response = streaming_search(&client, &request).await;
        assert_eq!(response.grpc_status(), Some(3));
        assert_eq!(
            response.grpc_message(),
            "invalid TraceQL query: parse error at line 1, col 22: syntax error: unexpected }"
        );

        // Tags and tag values (grpc captures 05, 06).
        let response = client
            .grpc_raw(
                "/tempopb.StreamingQuerier/SearchTagsV2",
                GRPC_HEADERS,
                grpc_frame(&pb::SearchTagsRequest::default().encode_to_vec(), false),
            )
            .await
            .expect("tags");
        assert_eq!(
            response.grpc_status(),
            Some(0),
            "{}",
            response.grpc_message()
        );
        let messages = response.messages().expect("messages");
        let last = pb::SearchTagsV2Response::decode(messages.last().expect("final").as_slice())
            .expect("decodes");
        let resource = last
            .scopes
            .iter()
            .find(|s| s.name == "resource")
            .expect("resource scope");
        assert_eq!(
            resource.tags,
            vec!["deployment.environment", "service.name"]
        );
        let request = pb::SearchTagValuesRequest {
            tag_name: "resource.service.name".to_string(),
            query: String::new(),
        };
        let response = client
            .grpc_raw(
                "/tempopb.StreamingQuerier/SearchTagValuesV2",
                GRPC_HEADERS,
                grpc_frame(&request.encode_to_vec(), false),
            )
            .await
            .expect("values");
        assert_eq!(
            response.grpc_status(),
            Some(0),
            "{}",
            response.grpc_message()
        );
        let messages = response.messages().expect("messages");
        let last =
            pb::SearchTagValuesV2Response::decode(messages.last().expect("final").as_slice())
                .expect("decodes");
        let mut values: Vec<&str> = last.tag_values.iter().map(|v| v.value.as_str()).collect();
        values.sort_unstable();
        assert_eq!(values, vec!["checkout", "frontend", "payments"]);
        assert!(last.tag_values.iter().all(|v| v.r#type == "string"));
    });
}

/// With traces both in blocks and in the WAL, each shard streams what it has before it reads
/// a block, then its final answer: more messages than shards + 1, every trace once.
#[test]
fn streaming_sends_partials_as_blocks_are_read() {
    let (server, base) = start_server();
    let flushed = http_get(server.http_addr(), "/flush", &[]);
    assert_eq!(flushed.status, 204, "{}", flushed.text());
    for i in TRACES..TRACES + 4 {
        export(
            server.grpc_addr(),
            &test_trace(i, base),
            &ExportOpts::default(),
        )
        .assert_ok();
    }
    runtime().block_on(async {
        let client = H2Client::connect(server.http_addr())
            .await
            .expect("connect");
        let request = pb::SearchRequest {
            query: "{}".to_string(),
            limit: 50,
            ..Default::default()
        };
        let response = streaming_search(&client, &request).await;
        assert_eq!(
            response.grpc_status(),
            Some(0),
            "{}",
            response.grpc_message()
        );
        let decoded: Vec<pb::SearchResponse> = response
            .messages()
            .expect("messages")
            .iter()
            .map(|m| pb::SearchResponse::decode(m.as_slice()).expect("SearchResponse"))
            .collect();
        assert!(decoded.len() > 3, "{} messages", decoded.len());
        let (last, parts) = decoded.split_last().expect("messages");
        assert_eq!(last.traces.len(), usize::from(TRACES) + 4);
        let mut streamed: Vec<&str> = parts
            .iter()
            .flat_map(|p| p.traces.iter().map(|t| t.trace_id.as_str()))
            .collect();
        let count = streamed.len();
        streamed.sort_unstable();
        streamed.dedup();
        assert_eq!(
            (count, streamed.len()),
            (last.traces.len(), last.traces.len())
        );
    });
}

#[test]
fn streaming_needs_stream_over_http() {
    let config = default_config("").replace(
        "stream_over_http_enabled: true",
        "stream_over_http_enabled: false",
    );
    let server = Server::start_with(ServerOptions::new(config));
    let response = grpc_raw(
        server.http_addr(),
        "/tempopb.StreamingQuerier/Search",
        GRPC_HEADERS,
        grpc_frame(&pb::SearchRequest::default().encode_to_vec(), false),
    );
    assert_eq!(
        response.grpc_status(),
        Some(12),
        "{}",
        response.grpc_message()
    );
    assert!(
        response
            .grpc_message()
            .contains("stream_over_http_enabled is false"),
        "the answer says why: {}",
        response.grpc_message()
    );
    let _ = Bytes::new();
}

/// `query_frontend.search.*` and `overrides.defaults.read.*` from the config file: the default
/// and maximum `limit`, the widest range, spans per spanset, and the bytes of tag values.
#[test]
fn the_configured_search_limits_apply() {
    let server = Server::start(
        "query_frontend:
  search:
    default_result_limit: 2
    max_result_limit: 4
    max_duration: 1h
    max_spans_per_span_set: 5
overrides:
  defaults:
    read:
      max_bytes_per_tag_values_query: 17
",
    );
    let base = now_s() - 600;
    for i in 0..TRACES {
        export(
            server.grpc_addr(),
            &test_trace(i, base),
            &ExportOpts::default(),
        )
        .assert_ok();
    }
    let addr = server.http_addr();
    let (start, end) = (now_s() - 1800, now_s() + 60);
    let search = |extra: &str| -> Value {
        let path = format!("/api/search?q=%7B%7D&start={start}&end={end}{extra}");
        let response = http_get(addr, &path, &[]);
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        response.json()
    };

    assert_eq!(ids(&search("")).len(), 2, "default_result_limit");
    assert_eq!(ids(&search("&limit=4")).len(), 4);
    assert_eq!(
        search("&spss=5")["traces"][0]["spanSets"][0]["spans"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );
    let wide = (now_s() - 7200, now_s());
    let refused = [
        (
            format!("/api/search?q=%7B%7D&start={start}&end={end}&limit=5"),
            "limit 5 exceeds max limit 4".to_string(),
        ),
        (
            format!("/api/search?q=%7B%7D&start={start}&end={end}&spss=6"),
            "spans per span set exceeds 5. received 6".to_string(),
        ),
        (
            format!("/api/search?q=%7B%7D&start={}&end={}", wide.0, wide.1),
            format!(
                "range specified by start and end exceeds 1h0m0s. received start={} end={}",
                wide.0, wide.1
            ),
        ),
        (
            format!(
                "/api/v2/search/tag/resource.service.name/values?start={}&end={}",
                wide.0, wide.1
            ),
            format!(
                "range specified by start and end exceeds 1h0m0s. received start={} end={}",
                wide.0, wide.1
            ),
        ),
    ];
    for (path, text) in &refused {
        let response = http_get(addr, path, &[]);
        assert_eq!(
            (response.status, response.text()),
            (400, text.clone()),
            "{path}"
        );
    }

    // Three services of 8 bytes: two fit in 17 bytes, the third ends the collection.
    let response = http_get(addr, "/api/v2/search/tag/resource.service.name/values", &[]);
    assert_eq!(response.status, 200, "{}", response.text());
    let values = response.json()["tagValues"]
        .as_array()
        .cloned()
        .expect("tagValues");
    assert_eq!(values.len(), 2, "{values:?}");
    let response = http_get(addr, "/api/search/tags", &[]);
    assert_eq!(response.status, 200, "{}", response.text());
    let names: Vec<String> = response.json()["tagNames"]
        .as_array()
        .expect("tagNames")
        .iter()
        .map(|n| n.as_str().expect("a name").to_string())
        .collect();
    assert!(!names.is_empty());
    assert!(
        names.iter().map(String::len).sum::<usize>() <= 17,
        "{names:?}"
    );

    // The streaming API refuses the same way, with InvalidArgument.
    runtime().block_on(async {
        let client = H2Client::connect(addr).await.expect("connect");
        let request = pb::SearchRequest {
            query: "{}".to_string(),
            limit: 5,
            start: start as u32,
            end: end as u32,
            ..Default::default()
        };
        let response = streaming_search(&client, &request).await;
        assert_eq!(
            response.grpc_status(),
            Some(3),
            "{}",
            response.grpc_message()
        );
        assert_eq!(response.grpc_message(), "limit 5 exceeds max limit 4");
    });
}

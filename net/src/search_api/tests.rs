use super::call::STATUS_VALUES;
use super::http::parse_logfmt;
use super::json::{tags_v2_json, values_v2_json};
use super::messages::{key_value, values_v2};
use super::*;
use crate::api::{self, Route};
use crate::grpc::Code;
use crate::http_response::Request;
use crate::metrics_api::MetricsLimits;
use crate::tempopb;
use allegro_engine::search::{Job, TagScope};
use allegro_engine::traceql::eval::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;

fn req(target: &str) -> Request {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Request {
        method: "GET".to_string(),
        path: path.to_string(),
        query: query.to_string(),
        ..Request::default()
    }
}

fn error_of(target: &str) -> (u16, String) {
    match api::route(
        &req(target),
        &SearchLimits::default(),
        &MetricsLimits::default(),
    ) {
        Route::Immediate(r) => (r.status, String::from_utf8_lossy(&r.body).into_owned()),
        other => panic!("{target}: {other:?}"),
    }
}

#[test]
fn search_parameter_errors_like_tempo() {
    let cases: &[(&str, u16, &str)] = &[
        (
            "/api/search?q=%7B%20span.http.method%20%3D%20%7D&start=1795462798&end=1795466458",
            400,
            "invalid TraceQL query: parse error at line 1, col 22: syntax error: unexpected }",
        ),
        (
            "/api/search?q=not%20traceql&start=1795462798&end=1795466458",
            400,
            "invalid TraceQL query: parse error at line 1, col 1: syntax error: unexpected IDENTIFIER",
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
        ("/api/v2/search/tags?scope=bogus", 400, "invalid scope: bogus"),
        (
            "/api/v2/search/tag/service.name/values",
            500,
            "please provide a valid tagName: tag name is not valid intrinsic or scoped attribute: service.name\n",
        ),
        (
            "/api/metrics/summary?q=%7B%7D&groupBy=resource.service.name",
            500,
            "error finding generators in Querier.SpanMetricsSummary: empty ring\n",
        ),
        ("/api/search?q=%7B%7D&spss=0", 400, "invalid spss: must be a positive number"),
        ("/api/search?q=%7B%7D&tags=a%3Db", 400, "invalid request: can't specify tags and q in the same query"),
    ];
    for (target, status, text) in cases {
        assert_eq!(error_of(target), (*status, text.to_string()), "{target}");
    }
}

#[test]
fn search_parameters() {
    let Route::Search(Call::Search { job, traceql }) = api::route(&req(
        "/api/search?tags=service.name%3Dfrontend%20http.status_code%3D500&minDuration=100ms&maxDuration=5s&limit=3&start=100&end=200",
    ), &SearchLimits::default(), &MetricsLimits::default()) else {
        panic!("a search")
    };
    assert!(!traceql);
    let Job::Search(r) = &*job else { panic!() };
    assert_eq!(
        r.tags,
        vec![
            ("service.name".to_string(), "frontend".to_string()),
            ("http.status_code".to_string(), "500".to_string())
        ]
    );
    assert_eq!(
        (r.min_duration_ns, r.max_duration_ns),
        (100_000_000, 5_000_000_000)
    );
    assert_eq!(r.limit, 3);
    assert_eq!((r.start_ns, r.end_ns), (100_000_000_000, 201_000_000_000));
    let Route::Search(Call::Search { job, traceql }) = api::route(
        &req("/api/search"),
        &SearchLimits::default(),
        &MetricsLimits::default(),
    ) else {
        panic!()
    };
    assert!(!traceql);
    let Job::Search(r) = &*job else { panic!() };
    assert_eq!((r.limit, r.spans_per_spanset, r.end_ns), (20, 3, u64::MAX));
}

#[test]
fn tag_names() {
    assert_eq!(
        parse_tag_name("resource.service.name").map(|f| f.to_string()),
        Ok("resource.service.name".to_string())
    );
    assert_eq!(
        parse_tag_name("span:status").map(|f| f.to_string()),
        Ok("status".to_string())
    );
    assert!(parse_tag_name("service.name").is_err());
    assert!(parse_tag_name(".service.name").is_err());
}

#[test]
fn logfmt() {
    assert_eq!(
        parse_logfmt("a=1 b=\"x y\" c"),
        Ok(vec![
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "x y".to_string()),
            ("c".to_string(), String::new())
        ])
    );
}

fn capture_body(name: &str) -> String {
    String::from_utf8(crate::api::captures::load(name).body).expect("utf-8")
}

fn kv_int(key: &str, value: i64) -> KeyValue {
    key_value(key, &Value::Int(value))
}

/// The first trace of capture 15 (`{} | count() > 3`), rebuilt and rendered, is in the
/// capture byte for byte; so are the metrics of capture 12.
#[test]
fn golden_search_json() {
    let span = |id: &str, start: u64, duration: u64| tempopb::Span {
        span_id: id.to_string(),
        start_time_unix_nano: start,
        duration_nanos: duration,
        ..Default::default()
    };
    let span_set = tempopb::SpanSet {
        spans: vec![
            span("e678dd5c3fc11c6c", 1795466339333628436, 3000000),
            span("5959660ecc7107b0", 1795466339322628436, 9000000),
            span("d5b8d40589f96e1e", 1795466339320628436, 185000000),
        ],
        matched: 4,
        attributes: vec![kv_int("count()", 4)],
    };
    let stats = |spans: u32, errors: u32| tempopb::ServiceStats {
        span_count: spans,
        error_count: errors,
    };
    let trace = tempopb::TraceSearchMetadata {
        trace_id: "c48fd6b8bad374a9561d0ceeb94addc".to_string(),
        root_service_name: "frontend".to_string(),
        root_trace_name: "GET /api/orders/{id}".to_string(),
        start_time_unix_nano: 1795466339318628436,
        duration_ms: 188,
        span_set: Some(span_set.clone()),
        span_sets: vec![span_set],
        service_stats: [
            ("checkout".to_string(), stats(2, 0)),
            ("frontend".to_string(), stats(1, 1)),
            ("payments".to_string(), stats(1, 1)),
        ]
        .into_iter()
        .collect(),
    };
    let rendered = String::from_utf8(search_json(
        &tempopb::SearchResponse {
            traces: vec![trace],
            metrics: None,
        },
        true,
    ))
    .expect("utf-8");
    let one = rendered
        .strip_prefix("{\"traces\":[")
        .and_then(|r| r.strip_suffix("],\"metrics\":{}}"))
        .expect("one trace");
    let captured = capture_body("15_search_traceql_count_agg.txt");
    assert!(
        captured.starts_with(&format!("{{\"traces\":[{one},")),
        "{one}"
    );

    let metrics = String::from_utf8(search_json(
        &tempopb::SearchResponse {
            traces: Vec::new(),
            metrics: Some(tempopb::SearchMetrics {
                inspected_bytes: 26217,
                completed_jobs: 3,
                total_jobs: 3,
                ..Default::default()
            }),
        },
        true,
    ))
    .expect("utf-8");
    let metrics = metrics.strip_prefix("{\"traces\":[],").expect("prefix");
    assert!(capture_body("12_search_traceql_empty_braces.txt").ends_with(metrics));
}

/// Captures 23 and 31, rebuilt and rendered: byte for byte.
#[test]
fn golden_tags_json() {
    let scope = |name: &str, tags: &[&str]| tempopb::SearchTagsV2Scope {
        name: name.to_string(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    };
    let response = tempopb::SearchTagsV2Response {
        scopes: vec![
            scope(
                "resource",
                &[
                    "deployment.environment",
                    "service.instance.id",
                    "service.name",
                    "service.namespace",
                    "telemetry.sdk.language",
                    "telemetry.sdk.name",
                    "telemetry.sdk.version",
                ],
            ),
            scope(
                "span",
                &[
                    "cache.hit",
                    "db.statement",
                    "db.system",
                    "http.method",
                    "http.route",
                    "http.status_code",
                    "order.id",
                    "order.items",
                    "payment.provider",
                ],
            ),
            scope(
                "event",
                &["cache.key", "exception.message", "exception.type"],
            ),
            scope("intrinsic", INTRINSIC_TAGS),
        ],
        metrics: Some(tempopb::MetadataMetrics {
            inspected_bytes: 20931,
            ..Default::default()
        }),
    };
    assert_eq!(
        String::from_utf8(tags_v2_json(&response)).expect("utf-8"),
        capture_body("23_search_tags_v2_all.txt")
    );
    let values = tempopb::SearchTagValuesV2Response {
        tag_values: ["payments", "frontend"]
            .iter()
            .map(|v| tempopb::TagValue {
                r#type: "string".to_string(),
                value: v.to_string(),
            })
            .collect(),
        metrics: Some(tempopb::MetadataMetrics {
            inspected_bytes: 18297,
            ..Default::default()
        }),
    };
    assert_eq!(
        String::from_utf8(values_v2_json(&values)).expect("utf-8"),
        capture_body("31_tag_values_v2_resource_service_name.txt")
    );
    let static_status = values_v2(
        &Call::TagValues {
            v2: true,
            job: None,
            fixed: STATUS_VALUES,
            limit: 0,
        },
        None,
    );
    assert_eq!(
        String::from_utf8(values_v2_json(&static_status)).expect("utf-8"),
        capture_body("34_tag_values_v2_intrinsic_status.txt")
    );
}

/// `StreamingQuerier` requests at Tempo 2.7's field numbers reach the same calls as the
/// HTTP parameters.
#[test]
fn grpc_calls() {
    use prost::Message;
    let tags = tempopb::SearchTagsRequest {
        scope: "span".to_string(),
        query: "{ span.http.method = \"GET\" }".to_string(),
        start: 100,
        end: 200,
        max_tags_per_scope: 7,
        stale_values_threshold: 0,
    };
    let Ok(Call::TagNames {
        v2: true,
        job: Some(job),
        scopes,
        limit: 7,
        ..
    }) = grpc_call(
        "SearchTagsV2",
        &tags.encode_to_vec(),
        &SearchLimits::default(),
    )
    else {
        panic!("a v2 tag-names call")
    };
    assert_eq!(scopes, vec![TagScope::Span]);
    let Job::TagNames {
        query: Some(query),
        start_ns,
        end_ns,
        ..
    } = &*job
    else {
        panic!("{job:?}")
    };
    assert_eq!(query.to_string(), "{ span.http.method = `GET` }");
    assert_eq!((*start_ns, *end_ns), (100_000_000_000, 201_000_000_000));

    assert_eq!(
        grpc_call("Nope", &[], &SearchLimits::default()).map_err(|s| (s.code, s.message)),
        Err((
            Code::Unimplemented,
            "unknown method Nope for service tempopb.StreamingQuerier".to_string()
        ))
    );
}

#[test]
fn trace_ids_lose_leading_zeros() {
    let mut id = [0u8; 16];
    id[0] = 0x0c;
    id[15] = 1;
    assert_eq!(
        trace_id_hex(&allegro_engine::TraceId(id)),
        "c000000000000000000000000000001"
    );
}

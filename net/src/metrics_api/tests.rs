#![expect(
    clippy::indexing_slicing,
    reason = "the tests index the JSON of captures and answers: a missing key fails the test"
)]

use std::time::Duration;

use allegro_engine::metrics::{Exemplar, Label, LabelValue, Sample, Series};
use allegro_engine::search::{Found, ShardAnswer};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;
use serde_json::Value;

use super::call::MetricsLimits;
use super::http::{http_params, HttpParams};
use super::json::{instant_json, range_json};
use super::messages::{instant_response, range_response, Diffs, Stats};
use super::time::{
    default_step, parse_step, parse_timestamp, prometheus_duration, unix_nano, StepError,
    ZERO_TIME_NS,
};
use super::*;
use crate::api::{self, Route};
use crate::grpc::Code;
use crate::http_response::Request;
use crate::search_api::SearchLimits;
use crate::tempopb;

const S: i128 = 1_000_000_000;
/// "Now" of the parameter tests: the end of the captures' window.
const NOW_NS: i128 = 1_795_466_770 * S;

fn params(query: &str) -> HttpParams {
    http_params(query, false, NOW_NS).unwrap_or_else(|r| panic!("{query}: {r:?}"))
}

fn ns(seconds: i128) -> u64 {
    unix_nano(seconds * S)
}

/// Tempo's `ParseQueryRangeRequest`: `q` over `query`, seconds up to 10 digits and
/// nanoseconds beyond, `since` counted back from `end` (or now when `end` is ahead), the
/// default step of about 240 points.
#[test]
fn range_parameters_like_tempo() {
    let p = params("query=%7B%7D%20%7C%20rate()&q=%7B%7D%20%7C%20count_over_time()");
    assert_eq!(p.query, "{} | count_over_time()");
    assert_eq!(params("query=x").query, "x");
    // Defaults: the last hour, a 15s step, no exemplars asked for.
    assert_eq!(
        params(""),
        HttpParams {
            query: String::new(),
            start_ns: unix_nano(NOW_NS - 3600 * S),
            end_ns: unix_nano(NOW_NS),
            step_ns: 15_000_000_000,
            exemplars: 0,
        }
    );
    let p = params("start=1795462798&end=1795466458000000000&step=60s&exemplars=7");
    assert_eq!(
        (p.start_ns, p.end_ns, p.step_ns, p.exemplars),
        (ns(1_795_462_798), ns(1_795_466_458), 60_000_000_000, 7)
    );
    // Capture 06: no step over its window of 630s is a 2s step.
    assert_eq!(
        params("start=1795466140&end=1795466770").step_ns,
        2_000_000_000
    );
    // `since`, from `end` when it is in the past, from now when it is ahead.
    let p = params("since=30m&end=1795466000");
    assert_eq!(p.start_ns, ns(1_795_466_000 - 1800));
    let p = params("since=1h30m&end=1795470000");
    assert_eq!(
        (p.start_ns, p.end_ns),
        (unix_nano(NOW_NS - 5400 * S), ns(1_795_470_000))
    );
    // Fractional seconds (to the millisecond) and RFC 3339.
    let p = params("start=1795462798.1234&end=2026-11-23T21:40:29.5%2B02:00");
    assert_eq!(p.start_ns, ns(1_795_462_798) + 123_000_000);
    assert_eq!(p.end_ns, ns(1_795_462_829) + 500_000_000);
    // A bad `start`, `end` or `since` is ignored by Tempo's parser: two zero times.
    for bad in ["start=abc", "end=1.2.3", "since=5", "since=1h1d"] {
        let p = params(bad);
        assert_eq!(
            (p.start_ns, p.end_ns),
            (unix_nano(ZERO_TIME_NS), unix_nano(ZERO_TIME_NS))
        );
    }
    // `exemplars`: `strconv.Atoi`, errors ignored, then `uint32`.
    assert_eq!(params("exemplars=abc").exemplars, 0);
    assert_eq!(params("exemplars=-1").exemplars, u32::MAX);
    assert_eq!(params("exemplars=4294967297").exemplars, 1);
    // The instant endpoint: one step over the range, never exemplars.
    let p = http_params("start=100&end=160&step=5s&exemplars=3", true, NOW_NS).expect("instant");
    assert_eq!((p.step_ns, p.exemplars), (60_000_000_000, 0));
}

#[test]
fn timestamps_durations_and_steps() {
    let default = 42;
    assert_eq!(parse_timestamp("", default), Some(42));
    assert_eq!(parse_timestamp("-1", default), Some(-S));
    assert_eq!(
        parse_timestamp("12345678901", default),
        Some(12_345_678_901)
    );
    assert_eq!(parse_timestamp("-1.5", default), Some(-S - S / 2));
    assert_eq!(
        parse_timestamp("2000-02-29T00:00:00Z", default),
        Some(951_782_400 * S)
    );
    assert_eq!(
        parse_timestamp("1969-12-31T23:59:59.25Z", default),
        Some(-S + S / 4)
    );
    for bad in [
        "2001-02-29T00:00:00Z",
        "2000-01-01 00:00:00Z",
        "2000-01-01T24:00:00Z",
        "2000-01-01T00:00:00",
        "1e9",
        "x",
    ] {
        assert_eq!(parse_timestamp(bad, default), None, "{bad}");
    }
    assert_eq!(prometheus_duration("0"), Some(0));
    assert_eq!(
        prometheus_duration("1w2d"),
        Some(9 * 86_400 * 1_000_000_000)
    );
    assert_eq!(prometheus_duration("90s"), Some(90_000_000_000));
    assert_eq!(prometheus_duration("5ms"), Some(5_000_000));
    for bad in ["", "5", "1m1h", "1x", "-1h", "1.5h", "300000y"] {
        assert_eq!(prometheus_duration(bad), None, "{bad}");
    }
    // `parseSecondsOrDuration`: seconds (fractions too), else a Go duration.
    assert_eq!(parse_step("60"), Ok(60_000_000_000));
    assert_eq!(parse_step("0.5"), Ok(500_000_000));
    assert_eq!(parse_step("1m30s"), Ok(90_000_000_000));
    assert_eq!(parse_step("0"), Ok(0));
    assert_eq!(parse_step("-5s"), Err(StepError::Negative));
    assert_eq!(parse_step("-5"), Err(StepError::Negative));
    assert_eq!(
        parse_step("abc"),
        Err(StepError::Invalid(
            "cannot parse \"abc\" to a valid duration".to_string()
        ))
    );
    assert_eq!(
        parse_step("1e400"),
        Err(StepError::Invalid(
            "cannot parse \"1e400\" to a valid duration".to_string()
        ))
    );
    assert_eq!(
        parse_step("1e10"),
        Err(StepError::Invalid(
            "cannot parse \"1e10\" to a valid duration. It overflows int64".to_string()
        ))
    );
    // `DefaultQueryRangeStep`: 1h is 15s, 3h 45s, 10m 2s (below 5s in whole seconds), at
    // least 1s, also for an empty or reversed range.
    let hour = 3_600_000_000_000;
    assert_eq!(default_step(0, hour), 15_000_000_000);
    assert_eq!(default_step(0, 3 * hour), 45_000_000_000);
    assert_eq!(default_step(0, hour / 6), 2_000_000_000);
    assert_eq!(default_step(5, 5), 1_000_000_000);
    assert_eq!(default_step(hour, 0), 1_000_000_000);
}

fn req(target: &str) -> Request {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Request {
        method: "GET".to_string(),
        path: path.to_string(),
        query: query.to_string(),
        ..Request::default()
    }
}

fn refusal(target: &str) -> (u16, String) {
    match api::route(
        &req(target),
        &SearchLimits::default(),
        &MetricsLimits::default(),
    ) {
        Route::Immediate(r) => {
            assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
            assert_eq!(r.header("vary"), Some("Accept-Encoding"));
            (r.status, String::from_utf8_lossy(&r.body).into_owned())
        }
        other => panic!("{target}: {other:?}"),
    }
}

/// The refusals in Tempo's order with its texts (captures 42 and 43), through the router.
#[test]
fn refusals_like_tempo() {
    let range = "start=1795462798&end=1795466458";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("/api/metrics/query_range?q=%7B%7D&{range}&step=60s"),
            "not a metrics query",
        ),
        (
            format!("/api/metrics/query_range?q=%7B%20.foo%20%3D%20%7D&{range}"),
            "compiling query: parse error at line 1, col 10: syntax error: unexpected }",
        ),
        (
            "/api/metrics/query_range?q=%7B%7D%20%7C%20rate()&start=1795466458&end=1795462798"
                .to_string(),
            "end must be greater than start",
        ),
        // The range comes first, then the query.
        (
            "/api/metrics/query_range?q=%7B&start=abc".to_string(),
            "end must be greater than start",
        ),
        (
            "/api/metrics/query_range?q=%7B&end=0".to_string(),
            "end required",
        ),
        (
            format!("/api/metrics/query_range?q=%7B%7D%20%7C%20rate()&{range}&step=abc"),
            "rpc error: code = Code(400) desc = cannot parse \"abc\" to a valid duration",
        ),
        (
            format!("/api/metrics/query_range?q=%7B%7D%20%7C%20rate()&{range}&step=0"),
            "step required",
        ),
        (
            format!("/api/metrics/query_range?q=%7B%7D%20%7C%20rate()&{range}&step=-1m"),
            "step must be greater than 0",
        ),
        (
            "/api/metrics/query_range?q=%7B%7D%20%7C%20rate()&start=1795450000&end=1795466458"
                .to_string(),
            "range specified by start and end (4h34m18s) exceeds 3h0m0s. received \
             start=1795450000000000000 end=1795466458000000000",
        ),
        (
            "/api/metrics/query?q=%7B%7D%20%7C%20rate()&start=1795466458&end=1795466458"
                .to_string(),
            "end must be greater than start",
        ),
        (
            format!("/api/metrics/query?q=%7B%7D&{range}"),
            "not a metrics query",
        ),
    ];
    for (target, text) in cases {
        assert_eq!(refusal(&target), (400, text.to_string()), "{target}");
    }
}

#[test]
fn exemplars_within_the_frontends_limit() {
    let limits = MetricsLimits::default();
    assert_eq!(limits.max_exemplars, 100);
    assert_eq!(limits.max_duration, Duration::from_secs(3 * 3600));
    let mut config = allegro_config::Config::default();
    config.query_frontend.metrics_max_exemplars = 0;
    config.overrides.max_metrics_duration = Duration::from_secs(60);
    let off = MetricsLimits::from_config(&config);
    assert_eq!(
        (off.max_exemplars, off.max_duration),
        (0, Duration::from_secs(60))
    );
    config.query_frontend.metrics_max_exemplars = 1000;
    assert_eq!(MetricsLimits::from_config(&config).max_exemplars, 100);
}

fn grpc_refusal(method: &str, message: &[u8]) -> (Code, String) {
    match grpc_call(method, message, &MetricsLimits::default()) {
        Err(status) => (status.code, status.message),
        Ok(call) => panic!("{call:?}"),
    }
}

/// Over gRPC the combiner's refusals are `Unknown` (its handler returns a plain error) and
/// the sharder's `InvalidArgument` (a 400 job answer, through the collector).
#[test]
fn grpc_refusals_like_tempo() {
    let range = |query: &str, start: u64, end: u64, step: u64| {
        tempopb::QueryRangeRequest {
            query: query.to_string(),
            start,
            end,
            step,
            ..Default::default()
        }
        .encode_to_vec()
    };
    let (start, end) = (1_795_462_798_000_000_000, 1_795_466_458_000_000_000);
    let unknown = |text: &str| (Code::Unknown, text.to_string());
    let m = "MetricsQueryRange";
    assert_eq!(
        grpc_refusal(m, &range("{ .foo = }", 0, 0, 0)),
        unknown("start required")
    );
    assert_eq!(
        grpc_refusal(m, &range("{} | rate()", start, end, 0)),
        unknown("step required")
    );
    assert_eq!(
        grpc_refusal(m, &range("{ .foo = }", start, end, 5)),
        unknown("compiling query: parse error at line 1, col 10: syntax error: unexpected }")
    );
    assert_eq!(
        grpc_refusal(m, &range("{}", start, end, 5)),
        unknown("not a metrics query")
    );
    assert_eq!(
        grpc_refusal(m, &range("{} | rate()", start - 20_000_000_000_000, end, 5)),
        (
            Code::InvalidArgument,
            "range specified by start and end (6h34m20s) exceeds 3h0m0s. received \
             start=1795442798000000000 end=1795466458000000000"
                .to_string()
        )
    );
    let instant = tempopb::QueryInstantRequest {
        query: "{} | rate()".to_string(),
        start: end,
        end: start,
    };
    assert_eq!(
        grpc_refusal("MetricsQueryInstant", &instant.encode_to_vec()),
        unknown("end must be greater than start")
    );
    assert_eq!(grpc_refusal(m, &[0xff]).0, Code::InvalidArgument);
    assert_eq!(
        grpc_refusal("Nope", &[]),
        (
            Code::Unimplemented,
            "unknown method Nope for service tempopb.StreamingQuerier".to_string()
        )
    );
}

// ---------------------------------------------------------------------------------------
// JSON, against the captures of Tempo 2.7.2 with its metrics generator on.

/// A capture of `metrics/`: the body and whether it is whole.
fn metrics_capture(name: &str) -> (String, bool) {
    let path = crate::api::captures::dir().join("metrics").join(name);
    let text = std::fs::read_to_string(&path).expect("capture");
    let (head, body) = text.split_once("\n# body size: ").expect("body line");
    assert!(head.contains("200 OK"), "{name}");
    let (size, body) = body.split_once('\n').expect("body");
    let size: usize = size
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("size");
    let body = body.trim_end_matches('\n').to_string();
    let whole = body.len() == size;
    (body, whole)
}

fn key_values(labels: &Value) -> Vec<KeyValue> {
    let Some(labels) = labels.as_array() else {
        return Vec::new();
    };
    labels
        .iter()
        .map(|l| {
            let v = &l["value"];
            let value = if let Some(s) = v["stringValue"].as_str() {
                any_value::Value::StringValue(s.to_string())
            } else if let Some(d) = v["doubleValue"].as_f64() {
                any_value::Value::DoubleValue(d)
            } else if let Some(i) = v["intValue"].as_str() {
                any_value::Value::IntValue(i.parse().expect("int"))
            } else {
                any_value::Value::BoolValue(v["boolValue"].as_bool().expect("a value"))
            };
            KeyValue {
                key: l["key"].as_str().expect("key").to_string(),
                value: Some(AnyValue { value: Some(value) }),
                ..Default::default()
            }
        })
        .collect()
}

fn millis(v: &Value) -> i64 {
    v.as_str().map_or(0, |t| t.parse().expect("timestampMs"))
}

fn search_metrics(v: &Value) -> tempopb::SearchMetrics {
    let n = |key: &str| v[key].as_u64().unwrap_or(0) as u32;
    tempopb::SearchMetrics {
        completed_jobs: n("completedJobs"),
        total_jobs: n("totalJobs"),
        total_blocks: n("totalBlocks"),
        ..Default::default()
    }
}

/// Reads a captured range answer back into the message (the test's own jsonpb reader).
fn range_message(body: &Value) -> tempopb::QueryRangeResponse {
    let series = body["series"].as_array().cloned().unwrap_or_default();
    tempopb::QueryRangeResponse {
        series: series
            .iter()
            .map(|s| tempopb::TimeSeries {
                labels: key_values(&s["labels"]),
                samples: s["samples"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| tempopb::Sample {
                        timestamp_ms: millis(&p["timestampMs"]),
                        value: p["value"].as_f64().unwrap_or(0.0),
                    })
                    .collect(),
                prom_labels: s["promLabels"].as_str().unwrap_or_default().to_string(),
                exemplars: s["exemplars"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| tempopb::Exemplar {
                        labels: key_values(&e["labels"]),
                        value: e["value"].as_f64().unwrap_or(0.0),
                        timestamp_ms: millis(&e["timestampMs"]),
                    })
                    .collect(),
            })
            .collect(),
        metrics: Some(search_metrics(&body["metrics"])),
    }
}

/// Captures 01, 03, 05 (whole) and the first series of 02: read back and written again,
/// byte for byte.
#[test]
fn range_json_is_the_captures() {
    for name in [
        "01_query_range_rate.txt",
        "03_query_range_count_err.txt",
        "05_query_range_quantile.txt",
        "02_query_range_rate_by_service.txt",
    ] {
        let (body, whole) = metrics_capture(name);
        if whole {
            let parsed: Value = serde_json::from_str(&body).expect("json");
            let written = range_json(&range_message(&parsed));
            assert_eq!(String::from_utf8(written).expect("utf-8"), body, "{name}");
        } else {
            // The first series is whole in the prefix of 02: that one.
            let end = body.find("},{\"labels\"").expect("a second series") + 1;
            let first = format!("{}],\"metrics\":{{}}}}", &body[..end]);
            let parsed: Value = serde_json::from_str(&first).expect("json");
            let written = String::from_utf8(range_json(&range_message(&parsed))).expect("utf-8");
            assert_eq!(written, first, "{name}");
        }
    }
}

#[test]
fn instant_json_is_the_capture() {
    let (body, whole) = metrics_capture("04_query_instant_rate.txt");
    assert!(whole);
    let parsed: Value = serde_json::from_str(&body).expect("json");
    let message = tempopb::QueryInstantResponse {
        series: parsed["series"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| tempopb::InstantSeries {
                labels: key_values(&s["labels"]),
                value: s["value"].as_f64().unwrap_or(0.0),
                prom_labels: s["promLabels"].as_str().unwrap_or_default().to_string(),
            })
            .collect(),
        metrics: Some(search_metrics(&parsed["metrics"])),
    };
    assert_eq!(
        String::from_utf8(instant_json(&message)).expect("utf-8"),
        body
    );
}

fn series(prom: &str, labels: Vec<Label>, samples: &[(i64, f64)]) -> Series {
    Series {
        labels,
        prom_labels: prom.to_string(),
        samples: samples
            .iter()
            .map(|&(timestamp_ms, value)| Sample {
                timestamp_ms,
                value,
            })
            .collect(),
        exemplars: Vec::new(),
    }
}

fn label(name: &str, value: LabelValue) -> Label {
    Label {
        name: name.to_string(),
        value,
    }
}

fn final_answer(bytes: u64, spans: u64, blocks: u32, partial: bool) -> ShardAnswer {
    ShardAnswer {
        found: Found::TagValues(Vec::new()),
        inspected_traces: 9,
        inspected_bytes: bytes,
        inspected_spans: spans,
        blocks,
        error: None,
        truncated: false,
        partial,
    }
}

/// The engine's series as jsonpb writes them: typed label values, a zero value left out,
/// non-finite values as quoted names, the statistics of the shards' final answers only.
#[test]
fn engine_series_in_json() {
    let mut stats = Stats::new(2);
    stats.add(&final_answer(1000, 50, 3, true));
    stats.add(&final_answer(100, 5, 1, false));
    let mut s = series(
        "{a=\"1\", b=\"true\"}",
        vec![
            label("a", LabelValue::Int(1)),
            label("b", LabelValue::Bool(true)),
            label("c", LabelValue::Float(0.25)),
            label("d", LabelValue::Str(String::new())),
        ],
        &[(1000, 0.0), (2000, f64::INFINITY), (3000, 1e-7)],
    );
    s.exemplars.push(Exemplar {
        labels: vec![label("trace:id", LabelValue::Str("ab".to_string()))],
        value: 2.5,
        timestamp_ms: 2500,
    });
    let json = String::from_utf8(range_json(&range_response(&[s.clone()], &stats))).expect("utf-8");
    assert_eq!(
        json,
        "{\"series\":[{\"labels\":[{\"key\":\"a\",\"value\":{\"intValue\":\"1\"}},\
         {\"key\":\"b\",\"value\":{\"boolValue\":true}},{\"key\":\"c\",\"value\":{\"doubleValue\":0.25}},\
         {\"key\":\"d\",\"value\":{\"stringValue\":\"\"}}],\"samples\":[{\"timestampMs\":\"1000\"},\
         {\"timestampMs\":\"2000\",\"value\":\"Infinity\"},{\"timestampMs\":\"3000\",\"value\":1e-7}],\
         \"promLabels\":\"{a=\\\"1\\\", b=\\\"true\\\"}\",\"exemplars\":[{\"labels\":[{\"key\":\"trace:id\",\
         \"value\":{\"stringValue\":\"ab\"}}],\"value\":2.5,\"timestampMs\":\"2500\"}]}],\
         \"metrics\":{\"inspectedBytes\":\"100\",\"totalBlocks\":1,\"completedJobs\":1,\"totalJobs\":2,\
         \"inspectedSpans\":\"5\"}}"
    );
    let instant = String::from_utf8(instant_json(&instant_response(&[s], &stats))).expect("utf-8");
    assert!(
        instant.starts_with("{\"series\":[{\"labels\":[{\"key\":\"a\""),
        "{instant}"
    );
    assert!(
        instant.contains("],\"promLabels\":"),
        "a zero value is left out: {instant}"
    );
    // No series: `"series":[]` in a range answer (Tempo's combiner allocates the list),
    // nothing in an instant one; a series without samples is no instant series.
    let none = Stats::new(1);
    assert_eq!(
        String::from_utf8(range_json(&range_response(&[], &none))).expect("utf-8"),
        "{\"series\":[],\"metrics\":{\"totalJobs\":1}}"
    );
    let empty = series("{}", Vec::new(), &[]);
    assert_eq!(
        String::from_utf8(instant_json(&instant_response(&[empty], &none))).expect("utf-8"),
        "{\"metrics\":{\"totalJobs\":1}}"
    );
}

/// A stream's partial messages: the series that changed, with the samples between their
/// first and last change.
#[test]
fn stream_diffs() {
    let mut diffs = Diffs::default();
    let a = |values: &[(i64, f64)]| series("{a}", Vec::new(), values);
    let b = |values: &[(i64, f64)]| series("{b}", Vec::new(), values);
    let first = [a(&[(1, 1.0), (2, 0.0), (3, 0.0)]), b(&[(1, 0.0)])];
    assert_eq!(diffs.changed(&first), first.to_vec());
    assert_eq!(diffs.changed(&first), Vec::<Series>::new());
    let second = [a(&[(1, 1.0), (2, 5.0), (3, 0.0), (4, 2.0)]), b(&[(1, 0.0)])];
    assert_eq!(
        diffs.changed(&second),
        vec![a(&[(2, 5.0), (3, 0.0), (4, 2.0)])]
    );
}

//! TraceQL metrics against the real binary: traces with known services, statuses, durations
//! and start times (half an hour ago, in three one-minute steps), then
//! `/api/metrics/query_range`, `/api/metrics/query` and the `tempopb.StreamingQuerier`
//! methods on the HTTP port (h2c) and the gRPC API port, live and after `/flush` (from
//! blocks). Every expected number is computed here from the spans sent, as Tempo 2.7.2
//! computes it (its `[t, t+step)` intervals from the aligned start, zeros for empty
//! intervals of counts, rates and quantiles, its log2 quantile estimate); the refusals are
//! Tempo's texts and statuses. Messages are decoded with `common/tempopb.rs`, declared apart
//! from the server's.

mod common;
mod metrics_data;

use std::collections::{BTreeMap, BTreeSet};

use common::tempopb as pb;
use common::*;
use metrics_data::*;
use prost::Message;
use serde_json::Value;

/// The exemplars of a JSON range answer all point at traces that were sent.
fn check_exemplars(body: &Value, data: &Data) {
    let sent: BTreeSet<String> = (0..TRACES).map(trace_hex).collect();
    let mut seen = 0;
    for series in body["series"].as_array().expect("series") {
        for e in series["exemplars"].as_array().into_iter().flatten() {
            seen += 1;
            let id = e["labels"]
                .as_array()
                .expect("labels")
                .iter()
                .find(|l| l["key"] == "trace:id")
                .and_then(|l| l["value"]["stringValue"].as_str())
                .expect("a trace:id label");
            assert!(
                sent.contains(id.trim_start_matches('0')),
                "exemplar of {id}"
            );
            let t: u64 = e["timestampMs"].as_str().expect("ms").parse().expect("ms");
            assert!(
                (data.start_s * 1000..data.end_s * 1000).contains(&t),
                "exemplar at {t}"
            );
        }
    }
    assert!(seen > 0, "no exemplars: {body}");
}

/// Every range query over HTTP, against what was sent.
fn check_ranges(server: &Server, data: &Data, blocks: bool) {
    // {} | rate(): spans per second of each step.
    let body = query_range(server, data, "{} | rate()");
    let want = data.counts(
        all,
        |_| "{__name__=\"rate\"}".to_string(),
        |n| n as f64 / STEP_S as f64,
    );
    assert_close(&json_series(&body), &want, "{} | rate()");
    assert_eq!(body["series"][0]["labels"][0]["key"], "__name__");
    assert_eq!(
        body["series"][0]["labels"][0]["value"]["stringValue"],
        "rate"
    );
    check_exemplars(&body, data);
    let metrics = &body["metrics"];
    assert_eq!(
        (
            metrics["completedJobs"].as_u64(),
            metrics["totalJobs"].as_u64()
        ),
        (Some(2), Some(2)),
        "{metrics}"
    );
    if blocks {
        assert!(metrics["totalBlocks"].as_u64() >= Some(1), "{metrics}");
    }

    // Counts by service, exact per step.
    let by_service = "{} | count_over_time() by (resource.service.name)";
    let body = query_range(server, data, by_service);
    let want = data.counts(all, service, |n| n as f64);
    assert_eq!(
        want.keys().cloned().collect::<Vec<_>>(),
        [
            "{resource.service.name=\"checkout\"}",
            "{resource.service.name=\"frontend\"}",
            "{resource.service.name=\"payments\"}"
        ]
    );
    assert_close(&json_series(&body), &want, by_service);
    let checkout = &body["series"][0]["labels"][0];
    assert_eq!(checkout["key"], "resource.service.name");
    assert_eq!(checkout["value"]["stringValue"], "checkout");

    // Errors.
    let errors = "{status=error} | count_over_time()";
    let want = data.counts(
        |s| s.error,
        |_| "{__name__=\"count_over_time\"}".to_string(),
        |n| n as f64,
    );
    assert_close(
        &json_series(&query_range(server, data, errors)),
        &want,
        errors,
    );

    // Quantiles, as Tempo estimates them from log2 buckets; zero for empty steps.
    let quantiles = "{} | quantile_over_time(duration, .5, .99)";
    let body = query_range(server, data, quantiles);
    let durations = data.by_interval(all, |_| String::new());
    let durations = &durations[""];
    let mut want = BTreeMap::new();
    for (label, p) in [("{p=\"0.5\"}", 0.5), ("{p=\"0.99\"}", 0.99)] {
        let values: BTreeMap<i64, f64> = data
            .grid_ms()
            .into_iter()
            .map(|t| (t, durations.get(&t).map_or(0.0, |d| tempo_quantile(p, d))))
            .collect();
        // The estimate lies within the log2 bucket of the exact (nearest-rank) quantile.
        for (t, d) in durations {
            let mut sorted = d.clone();
            sorted.sort();
            let exact = sorted[((p * d.len() as f64).ceil() as usize).max(1) - 1] as f64 / 1e9;
            let estimate = values[t];
            assert!(
                estimate > exact / 2.0 && estimate <= exact * 2.0,
                "p{p} at {t}: {estimate} for {exact}"
            );
        }
        want.insert(label.to_string(), values);
    }
    assert_close(&json_series(&body), &want, quantiles);
    assert_eq!(body["series"][1]["labels"][0]["value"]["doubleValue"], 0.99);

    // Averages by service, in seconds; steps without spans have no sample.
    let averages = "{} | avg_over_time(duration) by (resource.service.name)";
    let want: BTreeMap<String, BTreeMap<i64, f64>> = data
        .by_interval(all, service)
        .into_iter()
        .map(|(k, intervals)| {
            let means = intervals
                .into_iter()
                .map(|(t, d)| (t, d.iter().sum::<u64>() as f64 / d.len() as f64 / 1e9))
                .collect();
            (k, means)
        })
        .collect();
    assert_close(
        &json_series(&query_range(server, data, averages)),
        &want,
        averages,
    );
}

/// The instant endpoint: one value per series over `[start, end)`, never exemplars.
fn check_instant(server: &Server, data: &Data) {
    let query = "{} | count_over_time() by (resource.service.name)";
    let path = format!(
        "/api/metrics/query?q={}&start={}&end={}",
        enc(query),
        data.start_s,
        data.end_s
    );
    let response = get(server, &path, &[]);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.content_type(), Some("application/json"));
    let body = response.json();
    let got: BTreeMap<String, f64> = body["series"]
        .as_array()
        .expect("series")
        .iter()
        .map(|s| {
            assert!(
                s.get("samples").is_none() && s.get("exemplars").is_none(),
                "{s}"
            );
            (
                s["promLabels"].as_str().expect("promLabels").to_string(),
                s["value"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    let mut want: BTreeMap<String, f64> = BTreeMap::new();
    for span in &data.spans {
        *want.entry(service(span)).or_default() += 1.0;
    }
    assert_eq!(got, want, "{body}");
    assert_eq!(body["metrics"]["completedJobs"].as_u64(), Some(2));

    // A rate over the whole range.
    let path = format!(
        "/api/metrics/query?q={}&start={}&end={}",
        enc("{} | rate()"),
        data.start_s,
        data.end_s
    );
    let body = get(server, &path, &[]).json();
    let rate = body["series"][0]["value"].as_f64().expect("a rate");
    let want = data.spans.len() as f64 / (data.end_s - data.start_s) as f64;
    assert!((rate - want).abs() < 1e-9, "{rate} != {want}: {body}");
}

/// The streaming methods on one port: the last message holds the whole answer.
async fn check_streaming(client: &H2Client, data: &Data, port: &str) {
    let by_service = "{} | count_over_time() by (resource.service.name)";
    let request = pb::QueryRangeRequest {
        query: by_service.to_string(),
        start: data.start_s * NS,
        end: data.end_s * NS,
        step: STEP_S * NS,
        exemplars: 0,
    };
    let response = client
        .grpc_raw(
            "/tempopb.StreamingQuerier/MetricsQueryRange",
            GRPC_HEADERS,
            grpc_frame(&request.encode_to_vec(), false),
        )
        .await
        .expect("MetricsQueryRange");
    assert_eq!(
        (response.http_status, response.grpc_status()),
        (200, Some(0)),
        "{port}: {}",
        response.grpc_message()
    );
    let messages = response.messages().expect("messages");
    let last = pb::QueryRangeResponse::decode(messages.last().expect("a message").as_slice())
        .expect("QueryRangeResponse");
    assert_close(
        &proto_series(&last),
        &data.counts(all, service, |n| n as f64),
        port,
    );
    let metrics = last.metrics.as_ref().expect("metrics");
    assert_eq!(
        (metrics.completed_jobs, metrics.total_jobs),
        (2, 2),
        "{port}"
    );
    // Exemplars by default (the frontend's maximum), on their series.
    assert!(
        last.series.iter().any(|s| !s.exemplars.is_empty()),
        "{port}: {last:?}"
    );

    let instant = pb::QueryInstantRequest {
        query: "{status=error} | count_over_time()".to_string(),
        start: data.start_s * NS,
        end: data.end_s * NS,
    };
    let response = client
        .grpc_raw(
            "/tempopb.StreamingQuerier/MetricsQueryInstant",
            GRPC_HEADERS,
            grpc_frame(&instant.encode_to_vec(), false),
        )
        .await
        .expect("MetricsQueryInstant");
    assert_eq!(
        response.grpc_status(),
        Some(0),
        "{}",
        response.grpc_message()
    );
    let messages = response.messages().expect("messages");
    let last = pb::QueryInstantResponse::decode(messages.last().expect("a message").as_slice())
        .expect("QueryInstantResponse");
    let errors = data.spans.iter().filter(|s| s.error).count() as f64;
    assert_eq!(last.series.len(), 1, "{port}: {last:?}");
    assert_eq!(last.series[0].prom_labels, "{__name__=\"count_over_time\"}");
    assert_eq!(last.series[0].value, errors, "{port}");
}

fn check_streaming_on_both_ports(server: &Server, data: &Data) {
    runtime().block_on(async {
        for (addr, port) in [
            (server.http_addr(), "http"),
            (server.grpc_api_addr(), "grpc"),
        ] {
            let client = H2Client::connect(addr).await.expect("connect");
            check_streaming(&client, data, port).await;
        }
    });
}

#[test]
fn metrics_live_then_from_blocks() {
    let (server, data) = start();
    check_ranges(&server, &data, false);
    check_instant(&server, &data);
    check_streaming_on_both_ports(&server, &data);
    let flushed = get(&server, "/flush", &[]);
    assert_eq!(flushed.status, 204, "{}", flushed.text());
    check_ranges(&server, &data, true);
    check_instant(&server, &data);
    check_streaming_on_both_ports(&server, &data);
}

/// Tempo's frontend answers the metrics paths with jsonpb JSON whatever `Accept` asks for;
/// `since` counts back from `end`; the range answer's grid runs from the aligned start to
/// the aligned end.
#[test]
fn accept_since_and_alignment() {
    let (server, data) = start();
    let query = enc("{} | count_over_time()");
    let plain = format!(
        "/api/metrics/query_range?q={query}&start={}&end={}&step=60s",
        data.start_s, data.end_s
    );
    let json = get(&server, &plain, &[]);
    let protobuf = get(&server, &plain, &[("Accept", "application/protobuf")]);
    assert_eq!(protobuf.status, 200);
    assert_eq!(protobuf.content_type(), Some("application/json"));
    assert_eq!(
        json_series(&protobuf.json()),
        json_series(&json.json()),
        "the same answer"
    );
    // `since=7m` before `end` is the same range; unaligned times give the same grid.
    let since = format!(
        "/api/metrics/query_range?q={query}&end={}&since=7m&step=60s",
        data.end_s
    );
    assert_eq!(
        json_series(&get(&server, &since, &[]).json()),
        json_series(&json.json())
    );
    let unaligned = format!(
        "/api/metrics/query_range?query={query}&start={}&end={}000000000&step=1m",
        data.start_s + 7,
        data.end_s - 13
    );
    let body = get(&server, &unaligned, &[]).json();
    let grid: Vec<i64> = json_series(&body)
        .values()
        .next()
        .expect("a series")
        .keys()
        .copied()
        .collect();
    assert_eq!(grid, data.grid_ms());
    let total: f64 = json_series(&body).values().flat_map(|s| s.values()).sum();
    assert_eq!(total, data.spans.len() as f64);
}

/// Tempo's refusals: 400 `text/plain` with its texts over HTTP; over gRPC the combiner's
/// refusals are `Unknown` with the same texts.
#[test]
fn refusals_like_tempo() {
    let (server, data) = start();
    let range = format!("start={}&end={}", data.start_s, data.end_s);
    let rate = enc("{} | rate()");
    let cases = [
        (
            format!("/api/metrics/query_range?q=%7B%7D&{range}&step=60s"),
            "not a metrics query".to_string(),
        ),
        (
            format!("/api/metrics/query_range?q=%7B%20.foo%20%3D%20%7D&{range}"),
            "compiling query: parse error at line 1, col 10: syntax error: unexpected }"
                .to_string(),
        ),
        (
            format!(
                "/api/metrics/query_range?q={rate}&start={}&end={}",
                data.end_s, data.start_s
            ),
            "end must be greater than start".to_string(),
        ),
        (
            format!("/api/metrics/query_range?q={rate}&{range}&step=abc"),
            "rpc error: code = Code(400) desc = cannot parse \"abc\" to a valid duration"
                .to_string(),
        ),
        (
            format!("/api/metrics/query_range?q={rate}&{range}&step=0"),
            "step required".to_string(),
        ),
        (
            format!(
                "/api/metrics/query_range?q={rate}&start={}&end={}",
                data.end_s - 4 * 3600,
                data.end_s
            ),
            format!(
                "range specified by start and end (4h0m0s) exceeds 3h0m0s. received start={}000000000 end={}000000000",
                data.end_s - 4 * 3600,
                data.end_s
            ),
        ),
        (
            format!("/api/metrics/query?q=%7B%7D&{range}"),
            "not a metrics query".to_string(),
        ),
    ];
    for (path, text) in &cases {
        let response = get(&server, path, &[]);
        assert_eq!(
            (response.status, response.text().as_str()),
            (400, text.as_str()),
            "{path}"
        );
        assert_eq!(response.content_type(), Some("text/plain; charset=utf-8"));
    }
    runtime().block_on(async {
        let client = H2Client::connect(server.grpc_api_addr())
            .await
            .expect("connect");
        let call = |query: &str, start: u64, end: u64| {
            let request = pb::QueryRangeRequest {
                query: query.to_string(),
                start,
                end,
                step: STEP_S * NS,
                exemplars: 0,
            };
            let client = &client;
            async move {
                client
                    .grpc_raw(
                        "/tempopb.StreamingQuerier/MetricsQueryRange",
                        GRPC_HEADERS,
                        grpc_frame(&request.encode_to_vec(), false),
                    )
                    .await
                    .expect("call")
            }
        };
        let (start, end) = (data.start_s * NS, data.end_s * NS);
        for (query, start, end, code, text) in [
            ("{}", start, end, 2, "not a metrics query"),
            (
                "{ .foo = }",
                start,
                end,
                2,
                "compiling query: parse error at line 1, col 10: syntax error: unexpected }",
            ),
            (
                "{} | rate()",
                end,
                start,
                2,
                "end must be greater than start",
            ),
        ] {
            let response = call(query, start, end).await;
            assert_eq!(
                (response.grpc_status(), response.grpc_message().as_str()),
                (Some(code), text),
                "{query}"
            );
            assert!(response.is_trailers_only(), "{query}");
        }
    });
}

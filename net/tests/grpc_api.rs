//! Tempo's gRPC API port (`server.grpc_listen_port`, Tempo's `:9095`) against the real binary:
//! `tempopb.StreamingQuerier` as `tempo-cli query api search ... --use-grpc` calls it (grpc
//! capture 04), gRPC's UNIMPLEMENTED for everything else, a bind failure at startup, and the
//! query limits (`querier.search.query_timeout`, `querier.trace_by_id.query_timeout`) over
//! HTTP and gRPC. The client is the `h2` crate with the prost messages of `common/tempopb.rs`,
//! declared independently of the server's.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use prost::Message;

use common::tempopb as pb;

const SEARCH: &str = "/tempopb.StreamingQuerier/Search";

fn now_s() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

/// A server with `extra` config and `count` generated traces of 3 spans.
fn server_with_traces(config: String, count: usize) -> (Server, Vec<GenTrace>) {
    let server = Server::start_with(ServerOptions::new(config));
    let mut gen = TraceGen::new(95);
    let mut traces = Vec::new();
    for _ in 0..count.div_ceil(50) {
        let (request, batch) = gen.request(50.min(count - traces.len()), 3);
        export(server.grpc_addr(), &request, &ExportOpts::default()).assert_ok();
        traces.extend(batch);
    }
    (server, traces)
}

async fn call<M: Message>(client: &H2Client, path: &str, request: &M) -> RawResponse {
    client
        .grpc_raw(
            path,
            GRPC_HEADERS,
            grpc_frame(&request.encode_to_vec(), false),
        )
        .await
        .unwrap_or_else(|err| panic!("{path}: {err}"))
}

fn assert_status(response: &RawResponse, code: u32, message: &str) {
    assert_eq!(response.http_status, 200, "{response:?}");
    assert_eq!(
        (response.grpc_status(), response.grpc_message().as_str()),
        (Some(code), message),
        "{response:?}"
    );
}

/// The last message of an OK stream.
fn last<M: Message + Default>(response: &RawResponse) -> M {
    assert_status(response, 0, "");
    let messages = response.messages().expect("messages");
    M::decode(messages.last().expect("a final message").as_slice()).expect("decodes")
}

/// `tempo-cli query api search 127.0.0.1:9095 '{...}' START END --use-grpc` (capture 04), and
/// the other `StreamingQuerier` methods, on the gRPC API port: served there whatever
/// `stream_over_http_enabled` says (it only concerns the HTTP port).
#[test]
fn streaming_querier_on_the_grpc_api_port() {
    let config = default_config("").replace(
        "stream_over_http_enabled: true",
        "stream_over_http_enabled: false",
    );
    let (server, traces) = server_with_traces(config, 12);
    assert_ne!(server.grpc_api_addr(), server.http_addr());
    runtime().block_on(async {
        let client = H2Client::connect(server.grpc_api_addr())
            .await
            .expect("connect to the gRPC API port");
        let request = pb::SearchRequest {
            query: "{ resource.service.name = \"payments\" }".to_string(),
            limit: 50,
            start: now_s() - 3600,
            end: now_s() + 60,
            ..Default::default()
        };
        let response = call(&client, SEARCH, &request).await;
        let found: pb::SearchResponse = last(&response);
        let ids: BTreeSet<String> = found
            .traces
            .iter()
            .map(|t| format!("{:0>32}", t.trace_id))
            .collect();
        let expected: BTreeSet<String> = traces.iter().map(GenTrace::hex_id).collect();
        assert_eq!(ids, expected);
        assert!(found
            .traces
            .iter()
            .all(|t| t.root_service_name == "frontend"));
        let metrics = found.metrics.expect("metrics");
        assert_eq!((metrics.completed_jobs, metrics.total_jobs), (2, 2));

        // Bad TraceQL: InvalidArgument with Tempo's text (grpc capture 03).
        let bad = pb::SearchRequest {
            query: "{ span.http.method = }".to_string(),
            ..Default::default()
        };
        assert_status(
            &call(&client, SEARCH, &bad).await,
            3,
            "invalid TraceQL query: parse error at line 1, col 22: syntax error: unexpected }",
        );

        // Tag names (v1), narrowed by a query at Tempo 2.7's field numbers.
        let request = pb::SearchTagsRequest {
            scope: "resource".to_string(),
            query: "{ resource.service.name = \"checkout\" }".to_string(),
            start: now_s() - 3600,
            end: now_s() + 60,
        };
        let names: pb::SearchTagsResponse =
            last(&call(&client, "/tempopb.StreamingQuerier/SearchTags", &request).await);
        assert!(
            names.tag_names.iter().any(|n| n == "service.name"),
            "{names:?}"
        );

        // Tag values (v2), grpc capture 06.
        let request = pb::SearchTagValuesRequest {
            tag_name: "resource.service.name".to_string(),
            query: String::new(),
        };
        let values: pb::SearchTagValuesV2Response = last(
            &call(
                &client,
                "/tempopb.StreamingQuerier/SearchTagValuesV2",
                &request,
            )
            .await,
        );
        let values: BTreeSet<(&str, &str)> = values
            .tag_values
            .iter()
            .map(|v| (v.r#type.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(
            values,
            BTreeSet::from([
                ("string", "checkout"),
                ("string", "frontend"),
                ("string", "payments")
            ])
        );

        // TraceQL metrics: Tempo's checks and statuses (its combiner's refusals are plain
        // errors, so `Unknown`); `tests/metrics.rs` has the answers.
        let metrics_call = "/tempopb.StreamingQuerier/MetricsQueryRange";
        let rate = pb::QueryRangeRequest {
            query: "{} | rate()".to_string(),
            ..Default::default()
        };
        assert_status(
            &call(&client, metrics_call, &rate).await,
            2,
            "start required",
        );
        let not_metrics = pb::QueryRangeRequest {
            query: "{}".to_string(),
            start: 1_000_000_000,
            end: 2_000_000_000,
            step: 1_000_000_000,
            ..Default::default()
        };
        assert_status(
            &call(&client, metrics_call, &not_metrics).await,
            2,
            "not a metrics query",
        );
    });
}

/// Everything else on the gRPC API port gets grpc-go's UNIMPLEMENTED texts; a request that is
/// not gRPC gets 415, and a client that does not speak HTTP/2 gets a GOAWAY.
#[test]
fn the_grpc_api_port_serves_only_the_streaming_querier() {
    let server = Server::start("");
    runtime().block_on(async {
        let client = H2Client::connect(server.grpc_api_addr())
            .await
            .expect("connect");
        let empty = pb::SearchRequest::default();
        let cases = [
            (
                "/tempopb.StreamingQuerier/Nope",
                "unknown method Nope for service tempopb.StreamingQuerier",
            ),
            (
                "/tempopb.Querier/SearchRecent",
                "unknown service tempopb.Querier",
            ),
            (
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                "unknown service opentelemetry.proto.collector.trace.v1.TraceService",
            ),
        ];
        for (path, message) in cases {
            let response = call(&client, path, &empty).await;
            assert_status(&response, 12, message);
            assert!(response.is_trailers_only(), "{path}: {response:?}");
        }

        let plain = client
            .get("/api/search", &[])
            .await
            .expect("a plain HTTP/2 GET");
        assert_eq!(plain.status, 415, "{plain:?}");
        assert!(plain.text().contains("application/grpc"), "{plain:?}");
    });

    // HTTP/1.1 on an HTTP/2-only port: the server answers the bad preface with a GOAWAY
    // (frame type 7) and closes.
    let bytes = {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(server.grpc_api_addr()).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        tcp.write_all(b"GET /api/echo HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut bytes = Vec::new();
        let _ = tcp.read_to_end(&mut bytes);
        bytes
    };
    let goaway = bytes
        .windows(4)
        .any(|w| w[3] == 7 && u32::from_be_bytes([0, w[0], w[1], w[2]]) >= 8);
    assert!(goaway, "no GOAWAY in {bytes:?}");

    // The HTTP port still answers HTTP/1.1.
    assert_eq!(
        http_get(server.http_addr(), "/api/echo", &[]).text(),
        "echo\n"
    );
}

/// A taken `server.grpc_listen_port` stops the server at startup, naming the key and address.
#[test]
fn a_taken_grpc_port_fails_at_startup() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = default_config("")
        .replace("grpc_listen_port: 0", &format!("grpc_listen_port: {port}"))
        .replace(DIR, dir.path().to_str().unwrap());
    let path = dir.path().join("tempo.yaml");
    std::fs::write(&path, config).unwrap();
    let exited = run_binary(
        &[&format!("-config.file={}", path.display())],
        dir.path(),
        &[],
        Duration::from_secs(30),
    );
    assert!(!exited.status.success(), "{exited:?}");
    assert!(
        exited.stderr.contains(&format!(
            "cannot listen on 127.0.0.1:{port} (server.grpc_listen_port)"
        )),
        "{}",
        exited.stderr
    );
    drop(taken);
}

/// `querier.search.query_timeout: 0s` is a deadline that has passed, as in Tempo: every
/// search, tag-names and tag-values query fails at once with Tempo's error, over HTTP (500,
/// `context deadline exceeded`) and gRPC (INTERNAL on both ports; DEADLINE_EXCEEDED when the
/// client's own `grpc-timeout` is the shorter one). Trace by ID has its own timeout.
#[test]
fn a_query_past_its_timeout_fails_like_tempo() {
    let config = default_config(
        "querier:\n  search:\n    query_timeout: 0s\n  trace_by_id:\n    query_timeout: 0s\n",
    );
    let (server, traces) = server_with_traces(config, 3);
    let warned = server
        .stderr_lines()
        .iter()
        .any(|l| l.contains("querier.search.query_timeout is 0s"));
    assert!(warned, "{}", server.stderr_dump());

    let paths = [
        "/api/search?q=%7B%7D".to_string(),
        "/api/search?tags=service.name%3Dfrontend".to_string(),
        "/api/search/tags".to_string(),
        "/api/v2/search/tags?scope=resource".to_string(),
        "/api/search/tag/service.name/values".to_string(),
        "/api/v2/search/tag/resource.service.name/values".to_string(),
        format!("/api/traces/{}", traces[0].hex_id()),
        format!("/api/v2/traces/{}", traces[0].hex_id()),
    ];
    for path in &paths {
        let response = http_get(server.http_addr(), path, &[]);
        assert_eq!(
            (response.status, response.text().as_str()),
            (500, "context deadline exceeded\n"),
            "{path}"
        );
        assert_eq!(
            response.content_type(),
            Some("text/plain; charset=utf-8"),
            "{path}"
        );
    }
    // Intrinsics with fixed values need no shard: still answered.
    let status = http_get(server.http_addr(), "/api/v2/search/tag/status/values", &[]);
    assert_eq!(status.status, 200, "{}", status.text());

    runtime().block_on(async {
        for addr in [server.grpc_api_addr(), server.http_addr()] {
            let client = H2Client::connect(addr).await.expect("connect");
            let request = pb::SearchRequest {
                query: "{}".to_string(),
                ..Default::default()
            };
            let response = call(&client, SEARCH, &request).await;
            assert_status(&response, 13, "context deadline exceeded");
            let values = pb::SearchTagValuesRequest {
                tag_name: "resource.service.name".to_string(),
                query: String::new(),
            };
            let response = call(
                &client,
                "/tempopb.StreamingQuerier/SearchTagValuesV2",
                &values,
            )
            .await;
            assert_status(&response, 13, "context deadline exceeded");
        }
    });

    // A client deadline shorter than the server's: DEADLINE_EXCEEDED.
    let server = Server::start("");
    let response = grpc_raw(
        server.grpc_api_addr(),
        SEARCH,
        &[
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-timeout", "0n"),
        ],
        grpc_frame(&pb::SearchRequest::default().encode_to_vec(), false),
    );
    assert_status(&response, 4, "context deadline exceeded");
    let _ = Bytes::new();
}

/// A search that needs far longer than `querier.search.query_timeout` (3000 live traces take
/// tens of milliseconds to scan; the deadline is 1ms) fails with Tempo's error instead of
/// hanging or answering late, over HTTP and gRPC, and the server goes on serving.
#[test]
fn a_search_longer_than_its_timeout_is_cut_off() {
    let config = default_config("querier:\n  search:\n    query_timeout: 1ms\n");
    let (server, traces) = server_with_traces(config, 3000);
    // A condition no byte check or page filter can rule out: every trace is decoded.
    let nothing = "/api/search?q=%7B%20duration%20%3C%200ms%20%7D&limit=5";
    let response = http_get(server.http_addr(), nothing, &[]);
    assert_eq!(
        (response.status, response.text().as_str()),
        (500, "context deadline exceeded\n")
    );
    // With a `q`, so that every trace is decoded (tag values without one read only bytes
    // and columns, which can come close to the 1ms).
    let values = http_get(
        server.http_addr(),
        "/api/v2/search/tag/span.http.method/values?q=%7B%20duration%20%3C%200ms%20%7D",
        &[],
    );
    assert_eq!(
        (values.status, values.text().as_str()),
        (500, "context deadline exceeded\n")
    );
    runtime().block_on(async {
        let client = H2Client::connect(server.grpc_api_addr())
            .await
            .expect("connect");
        let request = pb::SearchRequest {
            query: "{ duration < 0ms }".to_string(),
            ..Default::default()
        };
        let response = call(&client, SEARCH, &request).await;
        assert_status(&response, 13, "context deadline exceeded");
    });
    let logged = server.stderr_lines().iter().any(|line| {
        line.contains("WARN")
            && line.contains("shards answered within 1ms (querier.search.query_timeout")
    });
    assert!(logged, "{}", server.stderr_dump());
    // Still serving: trace by ID has its own (default) timeout.
    assert_trace_everywhere(server.http_addr(), &traces[0], None);
}

//! OTLP gRPC ingest against the real binary: what is acknowledged is readable at once, span for
//! span, through every read API; bad input gets the gRPC status Tempo's clients expect.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use prost::Message;

#[test]
fn export_identity_and_gzip_then_read_back_through_v1_and_v2() {
    let server = Server::start("");
    let mut gen = TraceGen::new(1);
    let (plain, plain_traces) = gen.request(4, 5);
    let (zipped, zipped_traces) = gen.request(4, 3);
    // A request whose traces have a single span each.
    let (single, single_traces) = gen.request(3, 1);

    export(server.grpc_addr(), &plain, &ExportOpts::default()).assert_ok();
    export(server.grpc_addr(), &zipped, &ExportOpts::gzip()).assert_ok();
    let timed = ExportOpts {
        timeout: Some(std::time::Duration::from_secs(10)),
        ..ExportOpts::default()
    };
    export(server.grpc_addr(), &single, &timed).assert_ok();

    for trace in plain_traces
        .iter()
        .chain(&zipped_traces)
        .chain(&single_traces)
    {
        assert_trace_everywhere(server.http_addr(), trace, None);
    }
}

#[test]
fn ok_answer_is_one_message_with_grpc_status_0_in_trailers() {
    let server = Server::start("");
    let mut gen = TraceGen::new(2);
    let (request, _) = gen.request(1, 2);
    let raw = grpc_raw(
        server.grpc_addr(),
        EXPORT_PATH,
        GRPC_HEADERS,
        grpc_frame(&request.encode_to_vec(), false),
    );
    assert_eq!(raw.http_status, 200, "{raw:?}");
    let content_type = raw.headers.get("content-type").map(|v| v.to_str().unwrap());
    assert!(
        content_type.is_some_and(|ct| ct.starts_with("application/grpc")),
        "content-type: {raw:?}"
    );
    let trailers = raw
        .trailers
        .as_ref()
        .expect("an OK answer ends with trailers");
    assert_eq!(trailers.get("grpc-status").unwrap(), "0", "{raw:?}");
    assert!(!raw.headers.contains_key("grpc-status"), "{raw:?}");
    let messages = raw.messages().expect("gRPC framing of the answer");
    assert_eq!(messages.len(), 1, "{raw:?}");
    let response =
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::decode(
            messages[0].as_slice(),
        )
        .unwrap();
    let rejected = response.partial_success.map_or(0, |p| p.rejected_spans);
    assert_eq!(rejected, 0);
}

#[test]
fn concurrent_exports_on_many_connections_are_all_readable() {
    const CONNECTIONS: usize = 8;
    const REQUESTS: usize = 50;
    const TRACES_PER_REQUEST: usize = 2;
    const SPANS_PER_TRACE: usize = 3;
    let server = Server::start("");
    let grpc = server.grpc_addr();
    let http = server.http_addr();
    let acked: Arc<Mutex<Vec<GenTrace>>> = Arc::default();

    runtime().block_on(async {
        let mut tasks = Vec::new();
        for connection in 0..CONNECTIONS {
            let acked = acked.clone();
            tasks.push(tokio::spawn(async move {
                let client = H2Client::connect(grpc).await.expect("connect");
                let mut gen = TraceGen::new(100 + connection as u64);
                for i in 0..REQUESTS {
                    let (request, traces) = gen.request(TRACES_PER_REQUEST, SPANS_PER_TRACE);
                    let opts = ExportOpts {
                        gzip: (i + connection) % 2 == 1,
                        ..ExportOpts::default()
                    };
                    let result = client.export(&request, &opts).await;
                    result.assert_ok();
                    if i % 10 == 0 {
                        // Read-your-writes: readable as soon as acknowledged.
                        let trace = traces[0].clone();
                        tokio::task::spawn_blocking(move || assert_trace(http, &trace, None))
                            .await
                            .unwrap();
                    }
                    acked.lock().unwrap().extend(traces);
                }
            }));
        }
        for task in tasks {
            task.await.expect("export task");
        }
    });

    let acked = acked.lock().unwrap();
    assert_eq!(acked.len(), CONNECTIONS * REQUESTS * TRACES_PER_REQUEST);
    for trace in acked.iter() {
        assert_trace(http, trace, None);
    }
    let metrics = http_get(http, "/metrics", &[]).text();
    let received = metric_sum(&metrics, "allegro_spans_received_total").expect("spans metric");
    assert!(
        received >= (CONNECTIONS * REQUESTS * TRACES_PER_REQUEST * SPANS_PER_TRACE) as f64,
        "allegro_spans_received_total = {received}"
    );
}

/// Splits `trace` into requests of one span each, keeping resource and scope.
fn one_span_requests(trace: &GenTrace) -> Vec<ExportTraceServiceRequest> {
    let mut requests = Vec::new();
    for rs in &trace.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let mut rs_one = rs.clone();
                let mut ss_one = ss.clone();
                ss_one.spans = vec![span.clone()];
                rs_one.scope_spans = vec![ss_one];
                requests.push(ExportTraceServiceRequest {
                    resource_spans: vec![rs_one],
                });
            }
        }
    }
    requests
}

/// Merges requests into one (their resource spans side by side).
fn merge(requests: &[ExportTraceServiceRequest]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: requests
            .iter()
            .flat_map(|r| r.resource_spans.iter().cloned())
            .collect(),
    }
}

#[test]
fn trace_split_across_requests_comes_back_whole_and_a_repeated_span_once() {
    let server = Server::start("");
    let mut gen = TraceGen::new(3);
    let trace = gen.trace(6);
    let parts = one_span_requests(&trace);
    assert_eq!(parts.len(), 6);
    let first = merge(&parts[0..2]);
    let second = merge(&parts[2..4]);
    let third = merge(&parts[4..6]);

    export(server.grpc_addr(), &first, &ExportOpts::default()).assert_ok();
    // After the first part, the first part is there.
    let partial = get_v1_proto(server.http_addr(), &trace.hex_id(), None).expect("first part");
    assert_same_spans("after one request", &first.resource_spans, &partial);

    export(server.grpc_addr(), &second, &ExportOpts::gzip()).assert_ok();
    export(server.grpc_addr(), &third, &ExportOpts::default()).assert_ok();
    // The second span once more, in a request of its own, and within a bigger one.
    export(server.grpc_addr(), &parts[1], &ExportOpts::default()).assert_ok();
    let other = gen.trace(2);
    export(
        server.grpc_addr(),
        &merge(&[parts[4].clone(), other.request()]),
        &ExportOpts::default(),
    )
    .assert_ok();

    assert_trace_everywhere(server.http_addr(), &trace, None);
    assert_trace_everywhere(server.http_addr(), &other, None);
}

/// Asserts an error answer: trailers-only, the status, a message that says something.
fn assert_grpc_error(raw: &RawResponse, status: u32, context: &str) {
    assert_eq!(raw.http_status, 200, "{context}: {raw:?}");
    assert_eq!(raw.grpc_status(), Some(status), "{context}: {raw:?}");
    assert!(
        !raw.grpc_message().is_empty(),
        "{context}: no grpc-message: {raw:?}"
    );
    assert!(
        raw.is_trailers_only(),
        "{context}: an error is a trailers-only answer: {raw:?}"
    );
}

#[test]
fn bad_requests_get_invalid_argument_or_unimplemented() {
    let server = Server::start("");
    let mut gen = TraceGen::new(4);
    let grpc = server.grpc_addr();
    let http = server.http_addr();
    runtime().block_on(async {
        // One connection for all: errors are per stream, the connection lives on.
        let client = H2Client::connect(grpc).await.unwrap();

        // Garbage: a varint longer than 10 bytes, then a field with wire type 7.
        let garbage: &[u8] = &[0xff; 12];
        let raw = client
            .grpc_raw(EXPORT_PATH, GRPC_HEADERS, grpc_frame(garbage, false))
            .await
            .unwrap();
        assert_grpc_error(&raw, 3, "garbage protobuf");
        let raw = client
            .grpc_raw(
                EXPORT_PATH,
                GRPC_HEADERS,
                grpc_frame(&[0x0f, 0x01, 0x02], false),
            )
            .await
            .unwrap();
        assert_grpc_error(&raw, 3, "wire type 7");

        // A truncated message in a well-framed body.
        let (request, _) = gen.request(2, 3);
        let encoded = request.encode_to_vec();
        let cut = &encoded[..encoded.len() / 2];
        let raw = client
            .grpc_raw(EXPORT_PATH, GRPC_HEADERS, grpc_frame(cut, false))
            .await
            .unwrap();
        assert_grpc_error(&raw, 3, "truncated protobuf");
        // The same, gzip-compressed.
        let headers = [
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-encoding", "gzip"),
        ];
        let raw = client
            .grpc_raw(EXPORT_PATH, &headers, grpc_frame(cut, true))
            .await
            .unwrap();
        assert_grpc_error(&raw, 3, "truncated gzip-compressed protobuf");

        // A body that ends before the length its prefix announces: refused, whatever the code.
        let mut short = grpc_frame(&encoded, false).to_vec();
        short.truncate(short.len() - 10);
        let raw = client
            .grpc_raw(EXPORT_PATH, GRPC_HEADERS, Bytes::from(short))
            .await
            .unwrap();
        assert_ne!(
            raw.grpc_status(),
            Some(0),
            "frame shorter than its prefix: {raw:?}"
        );
        assert!(raw.grpc_status().is_some(), "{raw:?}");

        // A trace id of 5 bytes.
        let mut bad = gen.trace(2);
        bad.resource_spans[0].scope_spans[0].spans[0].trace_id = vec![1, 2, 3, 4, 5];
        let raw = client
            .grpc_raw(
                EXPORT_PATH,
                GRPC_HEADERS,
                grpc_frame(&bad.request().encode_to_vec(), false),
            )
            .await
            .unwrap();
        assert_grpc_error(&raw, 3, "5-byte trace id");
        let message = raw.grpc_message().to_lowercase();
        assert!(
            message.contains("trace"),
            "message says what was wrong: {message:?}"
        );
        // Nothing of that request was stored.
        let ok_span_trace = hex(&bad.trace_id);
        assert!(
            span_ids(http, &ok_span_trace, None).is_empty(),
            "a refused request left spans behind"
        );

        // Unknown method, unknown service.
        let (request, _) = gen.request(1, 1);
        let body = grpc_frame(&request.encode_to_vec(), false);
        let raw = client
            .grpc_raw(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Nope",
                GRPC_HEADERS,
                body.clone(),
            )
            .await
            .unwrap();
        assert_grpc_error(&raw, 12, "unknown method");
        let raw = client
            .grpc_raw("/acme.Unknown/Export", GRPC_HEADERS, body.clone())
            .await
            .unwrap();
        assert_grpc_error(&raw, 12, "unknown service");

        // An encoding the server does not have.
        let headers = [
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-encoding", "br"),
        ];
        let mut compressed = body.to_vec();
        compressed[0] = 1;
        let raw = client
            .grpc_raw(EXPORT_PATH, &headers, Bytes::from(compressed))
            .await
            .unwrap();
        assert_grpc_error(&raw, 12, "grpc-encoding br");

        // grpc-message is percent-encoded: whatever the server says about a non-ASCII
        // encoding name, the header itself is printable ASCII.
        let headers: [(&str, &[u8]); 3] = [
            ("content-type", b"application/grpc"),
            ("te", b"trailers"),
            ("grpc-encoding", "br-\u{fc}\u{2713}".as_bytes()),
        ];
        let raw = client
            .grpc_raw(EXPORT_PATH, &headers, body.clone())
            .await
            .unwrap();
        assert_grpc_error(&raw, 12, "non-ASCII grpc-encoding");
        let header = raw
            .headers
            .get("grpc-message")
            .expect("grpc-message")
            .as_bytes();
        assert!(
            header.iter().all(|&b| (0x20..0x7f).contains(&b)),
            "grpc-message is not percent-encoded: {:?}",
            String::from_utf8_lossy(header)
        );

        // The connection still works.
        let good = gen.trace(3);
        client
            .export(&good.request(), &ExportOpts::default())
            .await
            .assert_ok();
        tokio::task::spawn_blocking(move || assert_trace(http, &good, None))
            .await
            .unwrap();
    });
}

/// A trace of one span carrying `padding` bytes of attribute.
fn big_span_request(
    gen: &mut TraceGen,
    trace_id: [u8; 16],
    padding: usize,
) -> (ExportTraceServiceRequest, GenTrace) {
    let mut trace = gen.trace_with_id(trace_id, 1);
    let filler = "x".repeat(padding);
    trace.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(kv("filler", s(&filler)));
    (trace.request(), trace)
}

#[test]
fn trace_past_max_bytes_per_trace_is_refused_with_partial_success() {
    let server = Server::start(
        "overrides:
  defaults:
    global:
      max_bytes_per_trace: 5000
",
    );
    let mut gen = TraceGen::new(5);
    let trace_id = gen.trace_id();
    let mut accepted: Vec<ResourceSpans> = Vec::new();
    let mut rejected_total = 0;
    let mut messages = Vec::new();
    for i in 0..12 {
        let (request, trace) = big_span_request(&mut gen, trace_id, 1000);
        let result = export(server.grpc_addr(), &request, &ExportOpts::default());
        assert_eq!(
            result.status, 0,
            "request {i}: over the trace limit is not an error: {result:?}"
        );
        let rejected = result.rejected_spans();
        if i == 0 {
            assert_eq!(
                rejected, 0,
                "the first 1 KB of a 5 KB trace is fine: {result:?}"
            );
        }
        if rejected > 0 {
            assert_eq!(rejected, 1, "{result:?}");
            let partial = result
                .response
                .as_ref()
                .unwrap()
                .partial_success
                .as_ref()
                .unwrap();
            messages.push(partial.error_message.clone());
            rejected_total += rejected;
        } else {
            accepted.extend(trace.resource_spans);
        }
    }
    assert!(
        rejected_total > 0,
        "12 KB into a 5000-byte trace and nothing was refused"
    );
    for message in &messages {
        assert!(
            message.starts_with("TRACE_TOO_LARGE:"),
            "error_message: {message:?}"
        );
    }
    // What was accepted is there, and only that.
    let got = get_v1_proto(server.http_addr(), &hex(&trace_id), None).expect("the trace");
    assert_same_spans("accepted spans of the big trace", &accepted, &got);

    // Other traces are not affected.
    let small = gen.trace(3);
    export(server.grpc_addr(), &small.request(), &ExportOpts::default()).assert_ok();
    assert_trace(server.http_addr(), &small, None);
}

#[test]
fn past_the_ingestion_rate_limit_is_resource_exhausted() {
    let server = Server::start(
        "overrides:
  defaults:
    ingestion:
      rate_limit_bytes: 2000
      burst_size_bytes: 6000
",
    );
    let mut gen = TraceGen::new(6);
    let mut limited = Vec::new();
    let mut accepted = Vec::new();
    runtime().block_on(async {
        let client = H2Client::connect(server.grpc_addr()).await.unwrap();
        for i in 0..20 {
            let (request, trace) = big_span_request(&mut gen, gen_id(i), 1500);
            let result = client.export(&request, &ExportOpts::default()).await;
            match result.status {
                0 => {
                    assert_eq!(result.rejected_spans(), 0, "{result:?}");
                    accepted.push(trace);
                }
                8 => {
                    assert!(
                        result
                            .message
                            .starts_with("RATE_LIMITED: ingestion rate limit ("),
                        "grpc-message: {:?}",
                        result.message
                    );
                    limited.push(trace);
                }
                other => panic!("request {i}: status {other}: {result:?}"),
            }
        }
    });
    assert!(!accepted.is_empty(), "the burst lets the first request in");
    assert!(
        !limited.is_empty(),
        "30 KB against a 6 KB burst and 2 KB/s: nothing was limited"
    );
    for trace in &accepted {
        assert_trace(server.http_addr(), trace, None);
    }
    for trace in &limited {
        assert!(
            span_ids(server.http_addr(), &trace.hex_id(), None).is_empty(),
            "a rate-limited request was stored: {}",
            trace.hex_id()
        );
    }
}

/// Distinct trace ids without a generator: 0x01.. then `i`.
fn gen_id(i: usize) -> [u8; 16] {
    let mut id = [0x5a; 16];
    id[8..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    id
}

#[test]
fn multitenancy_needs_an_org_id_and_isolates_tenants() {
    let server = Server::start("multitenancy_enabled: true\n");
    let mut gen = TraceGen::new(7);
    let trace = gen.trace(4);

    let result = export(server.grpc_addr(), &trace.request(), &ExportOpts::default());
    assert_eq!(
        result.status, 16,
        "export without x-scope-orgid: {result:?}"
    );
    assert!(result.message.contains("no org id"), "{result:?}");

    export(
        server.grpc_addr(),
        &trace.request(),
        &ExportOpts::tenant("tenant-a"),
    )
    .assert_ok();
    let other = gen.trace(2);
    export(
        server.grpc_addr(),
        &other.request(),
        &ExportOpts::tenant("tenant-b"),
    )
    .assert_ok();

    let http = server.http_addr();
    assert_trace_everywhere(http, &trace, Some("tenant-a"));
    assert_trace_everywhere(http, &other, Some("tenant-b"));
    assert_eq!(
        get_v1_proto(http, &trace.hex_id(), Some("tenant-b")),
        None,
        "a's trace seen by b"
    );
    assert_eq!(
        get_v1_json(http, &trace.hex_id(), Some("tenant-b")),
        None,
        "a's trace seen by b"
    );
    assert_eq!(
        get_v1_proto(http, &other.hex_id(), Some("tenant-a")),
        None,
        "b's trace seen by a"
    );
    assert_eq!(
        get_v2_json(http, &trace.hex_id(), Some("tenant-b")),
        serde_json::json!([]),
        "v2: a's trace seen by b"
    );
    // Without an org id a query is refused, whatever the status.
    let anonymous = http_get(http, &format!("/api/traces/{}", trace.hex_id()), &[]);
    assert_ne!(
        anonymous.status, 200,
        "query without X-Scope-OrgID: {anonymous:?}"
    );

    // Each tenant has its own WAL directory.
    let tenants: HashSet<String> = wal_segments(&server.wal_dir())
        .into_iter()
        .map(|segment| segment.tenant)
        .collect();
    assert!(
        tenants.contains("tenant-a") && tenants.contains("tenant-b"),
        "{tenants:?}"
    );
}

#[test]
fn wal_layout_is_tenant_shard_and_sequence() {
    let server = Server::start("");
    let mut gen = TraceGen::new(8);
    let (request, _) = gen.request(20, 2);
    export(server.grpc_addr(), &request, &ExportOpts::default()).assert_ok();
    let segments = wal_segments(&server.wal_dir());
    assert!(
        !segments.is_empty(),
        "no WAL segment after an acknowledged export"
    );
    for segment in &segments {
        assert_eq!(segment.tenant, "single-tenant", "{segment:?}");
        assert_eq!(segment.shards, 2, "{segment:?}");
    }
    let metrics = http_get(server.http_addr(), "/metrics", &[]).text();
    let fsyncs = metric_sum(&metrics, "allegro_wal_fsyncs_total").expect("fsync metric");
    assert!(
        fsyncs >= 1.0,
        "wal_fsync: always, yet allegro_wal_fsyncs_total = {fsyncs}"
    );
}

/// One shard, fsync always, no trace size or rate limit, no size or age cut: only the
/// memory bound cuts heads. `allegro` lines are appended under `allegro:`.
fn memory_bound_config(allegro: &str) -> String {
    format!(
        "overrides:
  defaults:
    global:
      max_bytes_per_trace: 0
    ingestion:
      rate_limit_bytes: 0
ingester:
  max_block_bytes: 1073741824
  max_block_duration: 1h
allegro:
  shards: 1
  wal_fsync: always
{allegro}"
    )
}

#[test]
fn past_the_live_memory_bound_is_resource_exhausted_and_heads_are_cut_from_memory() {
    // One shard holding at most 40 kB of traces not yet in a block; no size or age cut.
    let server = Server::start(&memory_bound_config("  live_traces_bytes_max: 40000\n"));
    let mut gen = TraceGen::new(11);
    // A request larger than the whole bound can never fit: refused, with the key to raise.
    let (huge, huge_trace) = big_span_request(&mut gen, gen_id(900), 50_000);
    let result = export(server.grpc_addr(), &huge, &ExportOpts::default());
    assert_eq!(result.status, 8, "RESOURCE_EXHAUSTED: {result:?}");
    assert!(
        result
            .message
            .contains("allegro.live_traces_bytes_max (40000"),
        "grpc-message names the limit: {:?}",
        result.message
    );
    assert!(
        span_ids(server.http_addr(), &huge_trace.hex_id(), None).is_empty(),
        "a refused request was stored"
    );

    // Requests of ~3 kB: each is acknowledged or refused as RESOURCE_EXHAUSTED while a head
    // is being written; the heads are cut at half the bound, so most get in.
    let mut accepted = Vec::new();
    let mut exhausted = 0;
    for i in 0..60 {
        let (request, trace) = big_span_request(&mut gen, gen_id(i), 3000);
        let result = export(server.grpc_addr(), &request, &ExportOpts::default());
        match result.status {
            0 => {
                assert_eq!(result.rejected_spans(), 0, "{result:?}");
                accepted.push(trace);
            }
            8 => exhausted += 1,
            other => panic!("request {i}: status {other}: {result:?}"),
        }
    }
    assert!(
        accepted.len() >= 30,
        "{} of 60 accepted, {exhausted} refused",
        accepted.len()
    );
    let metrics = http_get(server.http_addr(), "/metrics", &[]).text();
    let cut = metric_sum(&metrics, "allegro_blocks_cut_total").expect("blocks metric");
    assert!(cut >= 2.0, "180 kB through a 40 kB bound cut {cut} blocks");
    let live = metric_sum(&metrics, "allegro_live_bytes").expect("live bytes metric");
    assert!(live <= 40_000.0, "allegro_live_bytes = {live}");
    for trace in &accepted {
        assert_trace(server.http_addr(), trace, None);
    }
}

#[test]
fn a_replayed_wal_larger_than_the_memory_bound_is_cut_into_blocks_and_served() {
    let config = |live_bytes_max: u64| {
        default_config(&memory_bound_config(&format!(
            "  wal_segment_bytes_max: 1048576\n  live_traces_bytes_max: {live_bytes_max}\n"
        )))
    };
    let mut server = Server::start_with(ServerOptions::new(config(64 << 20)));
    let mut gen = TraceGen::new(12);
    // ~6 MB in the head: WAL segments of 1 MiB, no block.
    let mut sent = Vec::new();
    for i in 0..600 {
        let (request, trace) = big_span_request(&mut gen, gen_id(i), 10_000);
        export(server.grpc_addr(), &request, &ExportOpts::default()).assert_ok();
        sent.push(trace);
    }
    let metrics = http_get(server.http_addr(), "/metrics", &[]).text();
    assert_eq!(metric_sum(&metrics, "allegro_blocks_cut_total"), Some(0.0));
    server.kill9();
    // Restarted with room for 3 MB: replay holds the head in memory, so it cuts blocks as it
    // goes (after a segment that takes it past half the bound) instead of passing the bound.
    server.set_config(config(3_000_000));
    server.restart();
    let metrics = http_get(server.http_addr(), "/metrics", &[]).text();
    let cut = metric_sum(&metrics, "allegro_blocks_cut_total").expect("blocks metric");
    assert!(
        cut >= 2.0,
        "6 MB replayed under a 3 MB bound cut {cut} blocks"
    );
    let live = metric_sum(&metrics, "allegro_live_bytes").expect("live bytes metric");
    assert!(live <= 3_000_000.0, "allegro_live_bytes = {live}");
    for trace in &sent {
        assert_trace(server.http_addr(), trace, None);
    }
}

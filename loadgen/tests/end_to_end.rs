//! End-to-end tests of the `loadgen` binary against a fake server written here: an h2
//! OTLP/gRPC Export endpoint (`h2::server`) and an HTTP/1.1 trace-by-ID endpoint, sharing one
//! in-memory store. The fake can misbehave on purpose (gRPC errors, partial success, hidden or
//! truncated traces, acking before persisting) to prove the loadgen notices.
//!
//! The crash test runs the fake as a separate process: this test executable re-invoked with
//! `LOADGEN_FAKE_SERVER_CONFIG` set runs only `fake_server_process`, which serves until killed.

use bytes::Bytes;
use h2::server::SendResponse;
use http::{Request, Response};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

type TraceId = [u8; 16];
type SpanId = [u8; 8];

/// How the fake misbehaves.
#[derive(Clone, Debug, Default)]
struct Behavior {
    /// Every n-th Export (1-based) answers RESOURCE_EXHAUSTED (trailers-only).
    error_every: Option<u64>,
    /// Every n-th Export answers OK with partial_success.rejected_spans = 3 (stores nothing).
    partial_every: Option<u64>,
    /// Append every acknowledged span to this journal before answering (survives SIGKILL).
    journal: Option<PathBuf>,
    /// Ack first, write the journal only every few seconds (loses acked data on SIGKILL).
    lazy_journal: bool,
}

#[derive(Default)]
struct Store {
    spans: HashMap<TraceId, HashSet<SpanId>>,
    /// Traces that were in requests answered with partial success.
    partial_traces: HashSet<TraceId>,
    tenants: HashSet<String>,
    content_types: HashSet<String>,
    encodings: HashSet<String>,
    /// Trace lookups answer as if these were missing / had lost one span.
    hidden: HashSet<TraceId>,
    truncated: HashSet<TraceId>,
    pending_journal: Vec<u8>,
}

struct Fake {
    store: Mutex<Store>,
    behavior: Behavior,
    exports: AtomicU64,
}

impl Fake {
    fn new(behavior: Behavior) -> Arc<Fake> {
        let mut store = Store::default();
        if let Some(path) = &behavior.journal {
            if let Ok(text) = std::fs::read_to_string(path) {
                for line in text.lines() {
                    let Some((t, s)) = line.split_once(' ') else {
                        continue;
                    };
                    let (Some(t), Some(s)) = (unhex::<16>(t), unhex::<8>(s)) else {
                        continue;
                    };
                    store.spans.entry(t).or_default().insert(s);
                }
            }
        }
        Arc::new(Fake {
            store: Mutex::new(store),
            behavior,
            exports: AtomicU64::new(0),
        })
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn grpc_frame(message: &[u8]) -> Bytes {
    let mut out = vec![0u8];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    Bytes::from(out)
}

async fn handle_export(
    fake: Arc<Fake>,
    request: Request<h2::RecvStream>,
    mut respond: SendResponse<Bytes>,
) {
    let (parts, mut body) = request.into_parts();
    assert_eq!(parts.method, http::Method::POST);
    assert_eq!(parts.uri.path(), EXPORT_PATH);
    assert_eq!(parts.headers.get("te").unwrap(), "trailers");
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let len = u32::from_be_bytes(data[1..5].try_into().unwrap()) as usize;
    assert_eq!(len, data.len() - 5, "one whole gRPC message");
    let message = if data[0] == 1 {
        assert_eq!(header("grpc-encoding").as_deref(), Some("gzip"));
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&data[5..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        data[5..].to_vec()
    };
    let export = ExportTraceServiceRequest::decode(message.as_slice()).expect("valid request");
    let n = fake.exports.fetch_add(1, Ordering::SeqCst) + 1;
    {
        let mut store = fake.store();
        if let Some(tenant) = header("x-scope-orgid") {
            store.tenants.insert(tenant);
        }
        store
            .content_types
            .insert(header("content-type").unwrap_or_default());
        store
            .encodings
            .insert(header("grpc-encoding").unwrap_or_else(|| "identity".into()));
    }
    let spans: Vec<&Span> = export
        .resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter())
        .flat_map(|ss| ss.spans.iter())
        .collect();

    if fake
        .behavior
        .error_every
        .is_some_and(|every| n % every == 0)
    {
        let response = Response::builder()
            .status(200)
            .header("content-type", "application/grpc")
            .header("grpc-status", "8")
            .header("grpc-message", "ingestion%20rate%20limit")
            .body(())
            .unwrap();
        let _ = respond.send_response(response, true);
        return;
    }
    let mut reply = ExportTraceServiceResponse::default();
    if fake
        .behavior
        .partial_every
        .is_some_and(|every| n % every == 0)
    {
        let mut store = fake.store();
        for span in &spans {
            store
                .partial_traces
                .insert(span.trace_id.as_slice().try_into().unwrap());
        }
        reply.partial_success = Some(ExportTracePartialSuccess {
            rejected_spans: 3,
            error_message: "3 spans too old".into(),
        });
    } else {
        let mut journal = String::new();
        let mut store = fake.store();
        for span in &spans {
            let trace: TraceId = span.trace_id.as_slice().try_into().unwrap();
            let id: SpanId = span.span_id.as_slice().try_into().unwrap();
            store.spans.entry(trace).or_default().insert(id);
            journal.push_str(&format!("{} {}\n", hex(&trace), hex(&id)));
        }
        if let Some(path) = &fake.behavior.journal {
            if fake.behavior.lazy_journal {
                store.pending_journal.extend_from_slice(journal.as_bytes());
            } else {
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap();
                file.write_all(journal.as_bytes()).unwrap();
            }
        }
    }
    let response = Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .body(())
        .unwrap();
    let Ok(mut stream) = respond.send_response(response, false) else {
        return;
    };
    let _ = stream.send_data(grpc_frame(&reply.encode_to_vec()), false);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    let _ = stream.send_trailers(trailers);
}

async fn serve_grpc(listener: TcpListener, fake: Arc<Fake>) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        let fake = fake.clone();
        tokio::spawn(async move {
            let Ok(mut connection) = h2::server::handshake(socket).await else {
                return;
            };
            while let Some(Ok((request, respond))) = connection.accept().await {
                tokio::spawn(handle_export(fake.clone(), request, respond));
            }
        });
    }
}

#[derive(Clone, PartialEq, prost::Message)]
struct TempoTrace {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    trace: Option<TempoTrace>,
}

fn trace_response(fake: &Fake, path: &str) -> (u16, Vec<u8>) {
    if path == "/ready" {
        return (200, b"ready\n".to_vec());
    }
    let Some(id) = path.strip_prefix("/api/v2/traces/") else {
        return (404, b"404 page not found\n".to_vec());
    };
    let Some(trace_id) = unhex::<16>(id) else {
        return (400, b"trace IDs can only contain hex characters".to_vec());
    };
    let store = fake.store();
    let mut span_ids: Vec<SpanId> = match store.spans.get(&trace_id) {
        Some(ids) if !store.hidden.contains(&trace_id) => ids.iter().copied().collect(),
        // Tempo's v2 endpoint answers an unknown ID with 200 and an empty trace.
        _ => return (200, Vec::new()),
    };
    if store.truncated.contains(&trace_id) {
        span_ids.pop();
    }
    let spans = span_ids
        .iter()
        .map(|id| Span {
            trace_id: trace_id.to_vec(),
            span_id: id.to_vec(),
            name: "span".into(),
            ..Default::default()
        })
        .collect();
    let body = TraceByIdResponse {
        trace: Some(TempoTrace {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }),
    };
    (200, body.encode_to_vec())
}

async fn serve_http_connection(mut socket: TcpStream, fake: Arc<Fake>) {
    let mut buffer = Vec::new();
    let mut answered = 0u64;
    loop {
        let end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let mut chunk = [0u8; 4096];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..end]).to_string();
        buffer.drain(..end + 4);
        let path = head.split(' ').nth(1).unwrap_or("/").to_string();
        if head.to_ascii_lowercase().contains("x-scope-orgid") {
            let tenant = head
                .lines()
                .find_map(|l| l.strip_prefix("X-Scope-OrgID: "))
                .unwrap_or_default();
            fake.store().tenants.insert(format!("http:{tenant}"));
        }
        let (status, body) = trace_response(&fake, &path);
        answered += 1;
        // Alternate framing so the client's chunked decoder is exercised too.
        let mut out = format!("HTTP/1.1 {status} X\r\nContent-Type: application/protobuf\r\n");
        if answered % 2 == 0 {
            out.push_str("Transfer-Encoding: chunked\r\n\r\n");
            let mut bytes = out.into_bytes();
            for piece in body.chunks(700) {
                bytes.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                bytes.extend_from_slice(piece);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
            if socket.write_all(&bytes).await.is_err() {
                return;
            }
        } else {
            out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            let mut bytes = out.into_bytes();
            bytes.extend_from_slice(&body);
            if socket.write_all(&bytes).await.is_err() {
                return;
            }
        }
        // Every 50th answer closes the connection, like a server with a keep-alive limit.
        if answered % 50 == 0 {
            return;
        }
    }
}

async fn serve_http(listener: TcpListener, fake: Arc<Fake>) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(serve_http_connection(socket, fake.clone()));
    }
}

/// A fake server on its own runtime thread; lives as long as the test.
struct Running {
    fake: Arc<Fake>,
    grpc: String,
    http: String,
    _runtime: tokio::runtime::Runtime,
}

fn start_fake(behavior: Behavior) -> Running {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fake = Fake::new(behavior);
    let (grpc, http) = runtime.block_on(async {
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addrs = (
            grpc.local_addr().unwrap().to_string(),
            http.local_addr().unwrap().to_string(),
        );
        tokio::spawn(serve_grpc(grpc, fake.clone()));
        tokio::spawn(serve_http(http, fake.clone()));
        addrs
    });
    Running {
        fake,
        grpc,
        http,
        _runtime: runtime,
    }
}

fn loadgen(args: &[&str]) -> Output {
    Command::new(LOADGEN)
        .args(args)
        .output()
        .expect("run loadgen")
}

/// The `RESULT {...}` line of a run, as (key, raw value) pairs of the flat top level.
fn result(output: &Output) -> HashMap<String, String> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "no RESULT line\nstdout:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    let inner = &line[1..line.len() - 1];
    let mut map = HashMap::new();
    let mut depth = 0;
    let mut start = 0;
    let mut fields = Vec::new();
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                fields.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    fields.push(&inner[start..]);
    for field in fields {
        let (key, value) = field.split_once(':').unwrap();
        map.insert(key.trim_matches('"').to_string(), value.to_string());
    }
    map
}

fn num(map: &HashMap<String, String>, key: &str) -> f64 {
    map.get(key)
        .unwrap_or_else(|| panic!("no {key} in {map:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {map:?}"))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn read_record(path: &Path) -> Vec<(TraceId, usize)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let (id, count) = line.split_once(' ').unwrap();
            (unhex::<16>(id).unwrap(), count.parse().unwrap())
        })
        .collect()
}

#[test]
fn load_records_acknowledged_traces_and_verify_reads_them_back() {
    let server = start_fake(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("acked.txt");
    let out = loadgen(&[
        "--endpoint",
        &server.grpc,
        "--duration",
        "1s",
        "--connections",
        "2",
        "--in-flight",
        "4",
        "--tenant",
        "team-a",
        "--record",
        record.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = result(&out);
    assert_eq!(r["mode"], "\"load\"");
    let acked = num(&r, "spans_acked");
    assert!(acked >= 1000.0, "{r:?}");
    assert_eq!(num(&r, "spans_sent"), acked);
    assert_eq!(num(&r, "requests_failed"), 0.0);
    assert!(num(&r, "p99_us") > 0.0);
    assert!(
        stderr(&out).contains("export latency p50"),
        "{}",
        stderr(&out)
    );

    let recorded = read_record(&record);
    assert_eq!(recorded.len() as f64, num(&r, "traces_recorded"));
    assert_eq!(recorded.len() as f64 * 10.0, acked);
    {
        let store = server.fake.store();
        assert_eq!(store.tenants, HashSet::from(["team-a".to_string()]));
        assert_eq!(
            store.content_types,
            HashSet::from(["application/grpc".to_string()])
        );
        assert_eq!(
            store.spans.len(),
            recorded.len(),
            "every stored trace was recorded"
        );
        for (trace, count) in &recorded {
            assert_eq!(
                store.spans[trace].len(),
                *count,
                "all spans arrived with distinct IDs"
            );
        }
    }

    let out = loadgen(&[
        "verify",
        "--record",
        record.to_str().unwrap(),
        "--http",
        &server.http,
        "--tenant",
        "team-a",
        "--concurrency",
        "4",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = result(&out);
    assert_eq!(num(&v, "traces"), recorded.len() as f64);
    assert_eq!(num(&v, "complete"), recorded.len() as f64);
    assert_eq!(num(&v, "lost_spans"), 0.0);
    assert!(server.fake.store().tenants.contains("http:team-a"));

    // Now lose one trace entirely and one span of another: verify must fail and say so.
    {
        let mut store = server.fake.store();
        store.hidden.insert(recorded[0].0);
        store.truncated.insert(recorded[1].0);
    }
    let out = loadgen(&[
        "verify",
        "--record",
        record.to_str().unwrap(),
        "--http",
        &server.http,
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = result(&out);
    assert_eq!(num(&v, "missing"), 1.0);
    assert_eq!(num(&v, "partial"), 1.0);
    assert_eq!(num(&v, "lost_spans"), 11.0);
    assert_eq!(num(&v, "complete"), recorded.len() as f64 - 2.0);
    assert!(
        stderr(&out).contains(&hex(&recorded[0].0)),
        "{}",
        stderr(&out)
    );
}

#[test]
fn errors_and_partial_success_are_counted_and_not_recorded() {
    let server = start_fake(Behavior {
        error_every: Some(3),
        partial_every: Some(5),
        ..Behavior::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("acked.txt");
    let out = loadgen(&[
        "--endpoint",
        &server.grpc,
        "--duration",
        "500ms",
        "--record",
        record.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "errors exceed --max-error-ratio 0"
    );
    let r = result(&out);
    assert!(r["errors"].contains("\"RESOURCE_EXHAUSTED\":"), "{r:?}");
    assert!(num(&r, "requests_partial") > 0.0);
    assert_eq!(num(&r, "spans_rejected"), 3.0 * num(&r, "requests_partial"));
    assert!(num(&r, "traces_unrecorded") > 0.0);
    let text = stderr(&out);
    assert!(
        text.contains("first RESOURCE_EXHAUSTED: ingestion rate limit"),
        "{text}"
    );
    assert!(
        text.contains("first PARTIAL_SUCCESS: 3 spans too old"),
        "{text}"
    );

    let recorded = read_record(&record);
    assert_eq!(recorded.len() as f64, num(&r, "traces_recorded"));
    {
        let store = server.fake.store();
        for (trace, count) in &recorded {
            assert!(
                !store.partial_traces.contains(trace),
                "partial requests are not recorded"
            );
            assert_eq!(store.spans[trace].len(), *count);
        }
    }

    // A generous error budget turns the same run into a success.
    let out = loadgen(&[
        "--endpoint",
        &server.grpc,
        "--duration",
        "300ms",
        "--quiet",
        "--max-error-ratio",
        "0.6",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn gzip_requests_decode_on_the_server() {
    let server = start_fake(Behavior::default());
    let out = loadgen(&[
        "--endpoint",
        &server.grpc,
        "--duration",
        "300ms",
        "--gzip",
        "--quiet",
        "--threads",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = result(&out);
    assert_eq!(r["gzip"], "true");
    assert!(
        num(&r, "wire_mb_per_sec") < num(&r, "mb_per_sec") / 2.0,
        "{r:?}"
    );
    assert_eq!(
        server.fake.store().encodings,
        HashSet::from(["gzip".to_string()])
    );
}

#[test]
fn open_loop_rate_is_held() {
    let server = start_fake(Behavior::default());
    let out = loadgen(&[
        "--endpoint",
        &server.grpc,
        "--duration",
        "2s",
        "--rate",
        "10k",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = result(&out);
    // 10k spans/s for 2 s = 200 requests of 100 spans, scheduled exactly.
    assert_eq!(num(&r, "spans_sent"), 20_000.0, "{r:?}");
    let rate = num(&r, "spans_per_sec");
    assert!((8_000.0..=10_500.0).contains(&rate), "{r:?}");
    assert!(r.contains_key("sched_p99_us"));
}

#[test]
fn unreachable_endpoint_fails_cleanly() {
    // Bind and drop to get a port with (very likely) nobody listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("127.0.0.1:{port}");
    let out = loadgen(&["--endpoint", &endpoint, "--duration", "300ms", "--quiet"]);
    assert_eq!(out.status.code(), Some(1));
    let r = result(&out);
    assert_eq!(num(&r, "spans_acked"), 0.0);
    assert!(num(&r, "connect_failures") > 0.0);
    assert!(stderr(&out).contains("no span was acknowledged"));
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let out = loadgen(&["--connections", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--connections"));
    let out = loadgen(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--null-sink"));
    let out = loadgen(&["verify", "--record", "/nonexistent/loadgen-record.txt"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn null_sink_reports_its_ceiling() {
    let out = loadgen(&["--null-sink", "--duration", "300ms", "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = result(&out);
    assert_eq!(r["mode"], "\"null-sink\"");
    assert!(num(&r, "spans_per_sec") > 100_000.0, "{r:?}");
    let bytes = num(&r, "bytes_per_span");
    assert!((380.0..=480.0).contains(&bytes), "{r:?}");
}

// ---- crash mode: the fake as a separate process -------------------------------------------

const FAKE_ENV: &str = "LOADGEN_FAKE_SERVER_CONFIG";

/// Not a test on its own: the server process of the crash tests (does nothing otherwise).
#[test]
fn fake_server_process() {
    let Ok(config) = std::env::var(FAKE_ENV) else {
        return;
    };
    let text = std::fs::read_to_string(config).unwrap();
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap()
            .to_string()
    };
    let behavior = Behavior {
        journal: Some(PathBuf::from(value("journal"))),
        lazy_journal: value("lazy") == "1",
        ..Behavior::default()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let fake = Fake::new(behavior);
        let grpc = TcpListener::bind(value("grpc")).await.unwrap();
        let http = TcpListener::bind(value("http")).await.unwrap();
        if fake.behavior.lazy_journal {
            let fake = fake.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    let pending = std::mem::take(&mut fake.store().pending_journal);
                    let path = fake.behavior.journal.clone().unwrap();
                    let mut file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .unwrap();
                    file.write_all(&pending).unwrap();
                }
            });
        }
        tokio::spawn(serve_grpc(grpc, fake.clone()));
        serve_http(http, fake).await;
    });
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn crash_run(lazy: bool) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let grpc = format!("127.0.0.1:{}", free_port());
    let http = format!("127.0.0.1:{}", free_port());
    let config = dir.path().join("fake.conf");
    std::fs::write(
        &config,
        format!(
            "grpc={grpc}\nhttp={http}\njournal={}\nlazy={}\n",
            dir.path().join("journal.txt").display(),
            u8::from(lazy)
        ),
    )
    .unwrap();
    let script = dir.path().join("fake-server.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n# invoked as: fake-server.sh -config.file=FILE\nconfig=\"${{1#-config.file=}}\"\n\
             {FAKE_ENV}=\"$config\" exec '{}' --exact fake_server_process --nocapture --test-threads 1\n",
            std::env::current_exe().unwrap().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let record = dir.path().join("all.txt");
    let output = loadgen(&[
        "crash",
        "--server-bin",
        script.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--cycles",
        "2",
        "--endpoint",
        &grpc,
        "--http",
        &http,
        "--duration",
        "1s",
        "--rate",
        "20k",
        "--ready-timeout",
        "20s",
        "--grace",
        "0s",
        "--record",
        record.to_str().unwrap(),
        "--quiet",
        "--server-log",
        dir.path().join("server.log").to_str().unwrap(),
    ]);
    let recorded = std::fs::read_to_string(&record).unwrap_or_default();
    let r = result(&output);
    assert_eq!(recorded.lines().count() as f64, num(&r, "traces_acked"));
    output
}

#[test]
fn crash_mode_passes_a_durable_server() {
    let out = crash_run(false);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", stderr(&out));
    let r = result(&out);
    assert!(num(&r, "traces_acked") > 0.0, "{r:?}");
    assert_eq!(num(&r, "lost_spans"), 0.0);
    assert_eq!(num(&r, "final_lost_spans"), 0.0);
    assert_eq!(
        stdout.matches("\ncycle ").count() + usize::from(stdout.starts_with("cycle ")),
        2,
        "{stdout}"
    );
}

#[test]
fn crash_mode_catches_a_server_that_acks_before_persisting() {
    let out = crash_run(true);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", stderr(&out));
    let r = result(&out);
    assert!(num(&r, "lost_spans") > 0.0, "{r:?}");
    assert_eq!(
        num(&r, "lost_spans"),
        num(&r, "spans_acked"),
        "nothing survived"
    );
    assert!(stderr(&out).contains("FAILED"), "{}", stderr(&out));
}

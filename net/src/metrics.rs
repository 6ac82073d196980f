//! `/metrics` in the Prometheus text exposition format (version 0.0.4): the engine's
//! per-shard counters and the network edge's own.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use allegro_engine::Engine;

use crate::grpc::Code;

/// Counters of the network edge. Relaxed atomics: they are statistics, not synchronisation.
#[derive(Debug, Default)]
pub struct NetMetrics {
    pub connections_accepted: AtomicU64,
    pub export_requests: AtomicU64,
    pub export_bytes: AtomicU64,
    pub spans_refused_rate_limited: AtomicU64,
    pub http_requests: AtomicU64,
    /// gRPC error answers by status code (index = code).
    pub grpc_errors: [AtomicU64; 17],
    /// Requests and spans per receiver.
    pub receivers: ReceiverMetrics,
}

impl NetMetrics {
    pub fn count_grpc_error(&self, code: Code) {
        if let Some(counter) = self.grpc_errors.get(code as usize) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Which receiver took a request: the `receiver` and `transport` labels of the receiver
/// metrics, named as the OpenTelemetry Collector names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receiver {
    OtlpGrpc,
    OtlpHttp,
    Zipkin,
    JaegerGrpc,
    JaegerThriftHttp,
    JaegerThriftCompact,
    JaegerThriftBinary,
}

impl Receiver {
    pub const ALL: [Receiver; 7] = [
        Receiver::OtlpGrpc,
        Receiver::OtlpHttp,
        Receiver::Zipkin,
        Receiver::JaegerGrpc,
        Receiver::JaegerThriftHttp,
        Receiver::JaegerThriftCompact,
        Receiver::JaegerThriftBinary,
    ];

    /// `(receiver, transport)`.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            Receiver::OtlpGrpc => ("otlp", "grpc"),
            Receiver::OtlpHttp => ("otlp", "http"),
            Receiver::Zipkin => ("zipkin", "http"),
            Receiver::JaegerGrpc => ("jaeger", "grpc"),
            Receiver::JaegerThriftHttp => ("jaeger", "collector_http"),
            Receiver::JaegerThriftCompact => ("jaeger", "udp_thrift_compact"),
            Receiver::JaegerThriftBinary => ("jaeger", "udp_thrift_binary"),
        }
    }
}

/// Spans and requests per receiver.
#[derive(Debug, Default)]
pub struct ReceiverMetrics {
    pub requests: [AtomicU64; Receiver::ALL.len()],
    pub accepted_spans: [AtomicU64; Receiver::ALL.len()],
    pub refused_spans: [AtomicU64; Receiver::ALL.len()],
    /// Requests (or datagrams) that could not be decoded.
    pub malformed: [AtomicU64; Receiver::ALL.len()],
}

impl ReceiverMetrics {
    pub(crate) fn add(counters: &[AtomicU64; Receiver::ALL.len()], receiver: Receiver, value: u64) {
        if let Some(counter) = counters.get(receiver as usize) {
            counter.fetch_add(value, Ordering::Relaxed);
        }
    }

    /// Counts a request its receiver could not decode.
    pub fn count_malformed(&self, receiver: Receiver) {
        Self::add(&self.malformed, receiver, 1);
    }
}

const CODES: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders every metric: the engine's per shard, the edge's, whether io_uring is in use and
/// the uptime since `started`.
pub fn render(engine: &Engine, net: &NetMetrics, uring: bool, started: Instant) -> String {
    let mut out = String::with_capacity(8 << 10);
    let shards = engine.metrics();
    type Getter = fn(&allegro_engine::ShardMetrics) -> &AtomicU64;
    let per_shard: [(&str, &str, &str, Getter); 24] = [
        ("allegro_spans_received_total", "counter", "Spans accepted into the WAL.", |m| &m.spans_received),
        ("allegro_bytes_received_total", "counter", "Span payload bytes accepted into the WAL.", |m| &m.bytes_received),
        ("allegro_spans_refused_total", "counter", "Spans refused by a shard (trace over max_bytes_per_trace), reported in partial_success.", |m| &m.spans_refused),
        ("allegro_bytes_refused_total", "counter", "Span payload bytes refused by a shard.", |m| &m.bytes_refused),
        ("allegro_wal_records_total", "counter", "WAL records written (one per trace per export).", |m| &m.wal_records),
        ("allegro_wal_appends_total", "counter", "WAL writes (group commits).", |m| &m.wal_appends),
        ("allegro_wal_bytes_total", "counter", "Bytes written to WAL segments.", |m| &m.wal_bytes),
        ("allegro_wal_fsyncs_total", "counter", "fsync/fdatasync calls on WAL files and directories.", |m| &m.fsyncs),
        ("allegro_wal_segments_created_total", "counter", "WAL segment files created.", |m| &m.wal_segments),
        ("allegro_live_traces", "gauge", "Traces held in memory.", |m| &m.live_traces),
        ("allegro_live_bytes", "gauge", "Bytes of trace data held in memory.", |m| &m.live_bytes),
        ("allegro_traces_indexed", "gauge", "Traces the shard can find (memory and WAL).", |m| &m.traces_indexed),
        ("allegro_wal_replayed_records_total", "counter", "WAL records replayed at startup.", |m| &m.replayed_records),
        ("allegro_wal_replay_torn_tails_total", "counter", "WAL segments whose torn tail was truncated at startup.", |m| &m.replay_torn_tails),
        ("allegro_wal_replay_corrupt_segments_total", "counter", "WAL segments with a corrupt record (replay stopped there).", |m| &m.replay_corrupt_segments),
        ("allegro_wal_read_errors_total", "counter", "Failed reads of WAL records for queries.", |m| &m.read_errors),
        ("allegro_blocks", "gauge", "Blocks the shard serves lookups from.", |m| &m.blocks),
        ("allegro_block_bytes", "gauge", "Data bytes of the blocks the shard serves.", |m| &m.block_bytes),
        ("allegro_blocks_cut_total", "counter", "Head blocks cut and published.", |m| &m.blocks_cut),
        ("allegro_blocks_compacted_total", "counter", "Blocks published by compaction.", |m| &m.blocks_compacted),
        ("allegro_blocks_retention_deleted_total", "counter", "Blocks deleted by retention (compactor.compaction.block_retention).", |m| &m.blocks_retention_deleted),
        ("allegro_blocks_corrupt_total", "counter", "Blocks skipped at startup: a checksum or cross-check failed.", |m| &m.blocks_corrupt),
        ("allegro_block_read_errors_total", "counter", "Trace lookups failed by a damaged or unreadable block page.", |m| &m.block_read_errors),
        ("allegro_block_write_errors_total", "counter", "Failed block cuts or compactions (the data stays in the WAL or the source blocks).", |m| &m.block_write_errors),
    ];
    for (name, kind, help, get) in per_shard {
        header(&mut out, name, kind, help);
        for (shard, metrics) in shards.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}{{shard=\"{shard}\"}} {}",
                get(metrics).load(Ordering::Relaxed)
            );
        }
    }
    let singles: [(&str, &str, &str, &AtomicU64); 5] = [
        (
            "allegro_connections_accepted_total",
            "counter",
            "TCP connections accepted.",
            &net.connections_accepted,
        ),
        (
            "allegro_export_requests_total",
            "counter",
            "OTLP Export requests decoded.",
            &net.export_requests,
        ),
        (
            "allegro_export_bytes_total",
            "counter",
            "Uncompressed OTLP Export bytes decoded.",
            &net.export_bytes,
        ),
        (
            "allegro_spans_refused_rate_limited_total",
            "counter",
            "Spans refused with RESOURCE_EXHAUSTED (RATE_LIMITED).",
            &net.spans_refused_rate_limited,
        ),
        (
            "allegro_http_requests_total",
            "counter",
            "Query API requests served.",
            &net.http_requests,
        ),
    ];
    for (name, kind, help, value) in singles {
        header(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
    }
    header(
        &mut out,
        "allegro_grpc_errors_total",
        "counter",
        "gRPC error answers by status code.",
    );
    for code in CODES {
        let value = net.grpc_errors[code as usize].load(Ordering::Relaxed);
        if value > 0 {
            let _ = writeln!(
                out,
                "allegro_grpc_errors_total{{code=\"{}\"}} {value}",
                code.name()
            );
        }
    }
    let receivers = &net.receivers;
    type Counters = [AtomicU64; Receiver::ALL.len()];
    let per_receiver: [(&str, &str, &Counters); 4] = [
        (
            "allegro_receiver_requests_total",
            "Requests (UDP: datagrams) taken by a receiver.",
            &receivers.requests,
        ),
        (
            "allegro_receiver_accepted_spans_total",
            "Spans a receiver took that the shards made durable.",
            &receivers.accepted_spans,
        ),
        (
            "allegro_receiver_refused_spans_total",
            "Spans a receiver took that were refused (rate limit, memory, max_bytes_per_trace, a failed write).",
            &receivers.refused_spans,
        ),
        (
            "allegro_receiver_malformed_requests_total",
            "Requests (UDP: datagrams) a receiver could not decode.",
            &receivers.malformed,
        ),
    ];
    for (name, help, counters) in per_receiver {
        header(&mut out, name, "counter", help);
        for (receiver, counter) in Receiver::ALL.iter().zip(counters.iter()) {
            let (label, transport) = receiver.labels();
            let _ = writeln!(
                out,
                "{name}{{receiver=\"{label}\",transport=\"{transport}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
    }
    header(
        &mut out,
        "allegro_ready",
        "gauge",
        "1 once every shard has replayed its WAL.",
    );
    let _ = writeln!(out, "allegro_ready {}", u8::from(engine.is_ready()));
    header(
        &mut out,
        "allegro_io_uring",
        "gauge",
        "1 when the io_uring driver is in use, 0 on the epoll fallback.",
    );
    let _ = writeln!(out, "allegro_io_uring {}", u8::from(uring));
    header(
        &mut out,
        "allegro_uptime_seconds",
        "gauge",
        "Seconds since start.",
    );
    let _ = writeln!(
        out,
        "allegro_uptime_seconds {:.3}",
        started.elapsed().as_secs_f64()
    );
    out
}

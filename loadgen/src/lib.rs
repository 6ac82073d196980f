//! `loadgen`: an OTLP/gRPC load generator and durability checker for Allegro and Grafana Tempo.
//!
//! Code map (sans-IO first, IO at the edge):
//!
//! - [`rng`]: a small, fast, seedable PRNG (xoshiro256++) and the distributions the model uses.
//! - [`model`]: builds realistic `ExportTraceServiceRequest`s (services, span trees, attributes,
//!   events, errors, long-tailed durations) with placeholder IDs and times. No IO.
//! - [`protowalk`]: a protobuf wire-format scanner that finds the byte offsets of the ID and time
//!   fields in an encoded request. No IO.
//! - [`template`]: pre-encoded request templates and the in-place patcher that stamps fresh IDs
//!   and times into a copy. No IO.
//! - [`grpc`]: gRPC length-prefixed framing, status codes, gzip. No IO.
//! - [`http1`]: a sans-IO HTTP/1.1 response parser plus a tiny keep-alive client around it.
//! - [`stats`]: counters, latency histograms, progress lines, the final report, the `RESULT` line.
//! - [`client`]: the h2 (HTTP/2 cleartext, prior knowledge) OTLP Export client.
//! - [`load`]: the load runner (open-loop rate schedule or max throughput), null sink, recording.
//! - [`verify`]: reads recorded traces back through `GET /api/v2/traces/{id}`.
//! - [`crash`]: kill -9 / restart / verify cycles against a server binary.
//! - [`cli`]: the hand-written command line parser and `--help` text.
//!
//! **Architecture Invariant:** every codec (`protowalk`, `template`, `grpc`, `http1` parsing)
//! takes bytes in and writes bytes out without `.await`, so it is unit-testable and fuzzable.

pub mod cli;
pub mod client;
pub mod crash;
pub mod grpc;
pub mod http1;
pub mod json;
pub mod load;
pub mod model;
pub mod protowalk;
pub mod rng;
pub mod stats;
pub mod template;
pub mod verify;

/// Every limit of the load generator, in one place. Units are last in the names.
pub mod limits {
    /// Services in the generated topology.
    pub const SERVICES_MAX: usize = 1_000;
    /// Spans in one generated trace.
    pub const SPANS_PER_TRACE_MAX: usize = 10_000;
    /// Traces in one Export request.
    pub const TRACES_PER_REQUEST_MAX: usize = 10_000;
    /// Attributes on one span.
    pub const ATTRIBUTES_MAX: usize = 128;
    /// Average events per span.
    pub const EVENTS_PER_SPAN_MAX: f64 = 64.0;
    /// Distinct pre-encoded request templates.
    pub const TEMPLATES_MAX: usize = 256;
    /// Spans in one Export request (IDs are indexed with `u32`).
    pub const SPANS_PER_REQUEST_MAX: usize = 1_000_000;
    /// Encoded bytes of one Export request message.
    pub const REQUEST_BYTES_MAX: usize = 64 * 1024 * 1024;
    /// Default gRPC receive limit of Tempo's distributor; larger requests get a warning.
    pub const REQUEST_BYTES_WARN: usize = 4 * 1024 * 1024;
    /// Bytes of one gRPC response message we accept (an ExportTraceServiceResponse is tiny).
    pub const RESPONSE_MESSAGE_BYTES_MAX: usize = 4 * 1024 * 1024;
    /// TCP connections to the OTLP endpoint.
    pub const CONNECTIONS_MAX: usize = 4_096;
    /// Concurrent streams per connection.
    pub const IN_FLIGHT_MAX: usize = 4_096;
    /// Tokio worker threads (or null-sink threads).
    pub const THREADS_MAX: usize = 512;
    /// Concurrent HTTP connections of `verify`.
    pub const VERIFY_CONCURRENCY_MAX: usize = 1_024;
    /// Bytes of an HTTP/1.1 response head (status line + headers).
    pub const HTTP_HEAD_BYTES_MAX: usize = 64 * 1024;
    /// Bytes of an HTTP/1.1 response body (one trace read back).
    pub const HTTP_BODY_BYTES_MAX: usize = 512 * 1024 * 1024;
    /// Latency histogram ceiling in microseconds (one hour); larger values saturate.
    pub const LATENCY_US_MAX: u64 = 3_600_000_000;
    /// Distinct error messages kept per error kind for the final report.
    pub const ERROR_MESSAGE_BYTES_MAX: usize = 256;

    const _: () = assert!(SPANS_PER_REQUEST_MAX <= u32::MAX as usize);
    const _: () = assert!(REQUEST_BYTES_MAX <= u32::MAX as usize);
    const _: () = assert!(REQUEST_BYTES_WARN < REQUEST_BYTES_MAX);
    const _: () = assert!(TRACES_PER_REQUEST_MAX <= u32::MAX as usize);
}

//! State every thread shares, and the settings the network edge takes from the
//! configuration. Only atomics and immutable data: no lock on the hot path.
//!
//! Its own module so that the handlers (`ingest`, `receivers`, `metrics`) depend on it and
//! not on the shell in `server.rs`, which depends on them.

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::{Duration, Instant};

use allegro_engine::Engine;

use crate::http1;
use crate::limits::RateLimiters;
use crate::metrics::NetMetrics;

/// What the server needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub multitenancy: bool,
    pub stream_over_http: bool,
    pub grpc_message_bytes_max: usize,
    pub rate_limit_bytes: u64,
    pub burst_bytes: u64,
    pub shutdown_timeout: Duration,
    pub http1: http1::Limits,
    /// `querier.search.query_timeout`: searches, tag names, tag values, metrics queries.
    pub search_timeout: Duration,
    /// `querier.trace_by_id.query_timeout`.
    pub trace_by_id_timeout: Duration,
    /// `query_frontend.search.*` and the read overrides.
    pub search: crate::search_api::SearchLimits,
    /// `query_frontend.metrics.*` and the read overrides.
    pub metrics: crate::metrics_api::MetricsLimits,
    /// What the receivers besides OTLP/gRPC need.
    pub receivers: ReceiverSettings,
}

/// Settings of the receivers besides OTLP/gRPC.
#[derive(Debug, Clone, Default)]
pub struct ReceiverSettings {
    /// `distributor.receivers.otlp.protocols.http.cors`.
    pub otlp_http_cors: Option<allegro_config::CorsConfig>,
    /// `distributor.receivers.zipkin.parse_string_tags`.
    pub zipkin_parse_string_tags: bool,
}

/// State every thread shares.
pub struct Shared {
    pub engine: Engine,
    pub settings: Settings,
    pub shutting_down: AtomicBool,
    pub in_flight: AtomicUsize,
    pub limiter: RateLimiters,
    pub metrics: NetMetrics,
    pub started: Instant,
    pub uring: bool,
}

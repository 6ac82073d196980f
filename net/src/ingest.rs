//! The one ingest path every receiver shares: rate limit, validation and split
//! (`engine::otlp::split_export`), routing to the shards, and the WAL durability the
//! acknowledgement waits for. A receiver turns its wire format into an encoded OTLP
//! `ExportTraceServiceRequest` and calls [`ingest`]; the outcome maps to its own protocol's
//! answer through [`IngestError::grpc_status`] or [`IngestError::http_status`].
//!
//! **Architecture Invariant:** no receiver writes to the engine any other way, so limits,
//! tenant rules and durability are the same for all of them.

use std::sync::atomic::Ordering;
use std::time::Duration;

use allegro_engine::{otlp, Tenant};

use crate::grpc::{Code, Status};
pub use crate::metrics::Receiver;
use crate::metrics::ReceiverMetrics;
use crate::shared::Shared;

/// What the shards took.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accepted {
    /// Spans refused by a limit (`max_bytes_per_trace`), for OTLP's partial success.
    pub rejected_spans: u64,
    pub rejected_message: Option<String>,
}

/// Why a request was not (wholly) taken. Each maps to one gRPC status and one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestError {
    /// The server is stopping: retry elsewhere or later.
    ShuttingDown,
    /// The tenant's `ingestion_rate_limit_bytes` was exceeded (Tempo's wording).
    RateLimited(String),
    /// The request is not a valid `ExportTraceServiceRequest`.
    Invalid(String),
    /// The shards' memory for traces not yet in a block is full: retry later.
    Exhausted(String),
    /// A shard could not write its WAL: nothing of this request is acknowledged.
    Unavailable(String),
    /// The client's deadline passed before the spans were durable.
    DeadlineExceeded,
}

impl IngestError {
    pub fn message(&self) -> String {
        match self {
            IngestError::ShuttingDown => "server is shutting down".to_owned(),
            IngestError::RateLimited(m)
            | IngestError::Invalid(m)
            | IngestError::Exhausted(m)
            | IngestError::Unavailable(m) => m.clone(),
            IngestError::DeadlineExceeded => "context deadline exceeded".to_owned(),
        }
    }

    pub fn grpc_status(&self) -> Status {
        let code = match self {
            IngestError::ShuttingDown | IngestError::Unavailable(_) => Code::Unavailable,
            IngestError::RateLimited(_) | IngestError::Exhausted(_) => Code::ResourceExhausted,
            IngestError::Invalid(_) => Code::InvalidArgument,
            IngestError::DeadlineExceeded => Code::DeadlineExceeded,
        };
        Status::new(code, self.message())
    }

    /// The HTTP status, as the Collector's HTTP receivers map the gRPC codes (OTLP/HTTP:
    /// 429 and 503 are the retryable answers, sent with `Retry-After`).
    pub fn http_status(&self) -> u16 {
        match self {
            IngestError::ShuttingDown | IngestError::Unavailable(_) => 503,
            IngestError::RateLimited(_) | IngestError::Exhausted(_) => 429,
            IngestError::Invalid(_) => 400,
            IngestError::DeadlineExceeded => 504,
        }
    }

    /// Whether a client should retry (`Retry-After` on HTTP).
    pub fn retryable(&self) -> bool {
        !matches!(self, IngestError::Invalid(_))
    }
}

/// Seconds an HTTP client is told to wait before retrying a 429 or 503.
pub const RETRY_AFTER_SECS: u64 = 1;

/// Takes one encoded `ExportTraceServiceRequest` from `receiver` for `tenant` and returns once
/// its spans are durable per the fsync policy (or why not). `deadline` is the client's
/// timeout, when it sent one.
pub async fn ingest(
    shared: &Shared,
    tenant: &Tenant,
    receiver: Receiver,
    request: &[u8],
    deadline: Option<Duration>,
) -> Result<Accepted, IngestError> {
    let metrics = &shared.metrics.receivers;
    ReceiverMetrics::add(&metrics.requests, receiver, 1);
    if shared.shutting_down.load(Ordering::Acquire) {
        return Err(IngestError::ShuttingDown);
    }
    let size = request.len() as u64;
    if let Err(limit) = shared.limiter.allow(tenant, size) {
        let spans = otlp::split_export(request)
            .map(|b| b.iter().map(|t| u64::from(t.span_count)).sum::<u64>())
            .unwrap_or(0);
        shared
            .metrics
            .spans_refused_rate_limited
            .fetch_add(spans, Ordering::Relaxed);
        ReceiverMetrics::add(&metrics.refused_spans, receiver, spans);
        return Err(IngestError::RateLimited(format!(
            "RATE_LIMITED: ingestion rate limit ({limit} bytes) exceeded while adding {size} bytes"
        )));
    }
    let batches = otlp::split_export(request).map_err(|err| {
        ReceiverMetrics::add(&metrics.malformed, receiver, 1);
        IngestError::Invalid(format!("invalid ExportTraceServiceRequest: {err}"))
    })?;
    shared
        .metrics
        .export_requests
        .fetch_add(1, Ordering::Relaxed);
    shared
        .metrics
        .export_bytes
        .fetch_add(size, Ordering::Relaxed);
    if batches.is_empty() {
        return Ok(Accepted::default());
    }
    let spans: u64 = batches.iter().map(|b| u64::from(b.span_count)).sum();
    let append = shared.engine.append(tenant, batches);
    let outcome = match deadline {
        None => append.await,
        Some(timeout) => {
            monoio::select! {
                outcome = append => outcome,
                _ = monoio::time::sleep(timeout) => {
                    return Err(IngestError::DeadlineExceeded);
                }
            }
        }
    };
    ReceiverMetrics::add(&metrics.accepted_spans, receiver, outcome.accepted_spans);
    ReceiverMetrics::add(
        &metrics.refused_spans,
        receiver,
        spans.saturating_sub(outcome.accepted_spans),
    );
    if let Some(failure) = outcome.failure {
        return Err(IngestError::Unavailable(failure));
    }
    if let Some(exhausted) = outcome.exhausted {
        return Err(IngestError::Exhausted(exhausted));
    }
    Ok(Accepted {
        rejected_spans: outcome.rejected_spans,
        rejected_message: outcome.rejected_message,
    })
}

/// `ExportTraceServiceResponse { partial_success = 1: { rejected_spans = 1, error_message = 2 } }`,
/// empty when nothing was rejected.
pub fn encode_export_response(accepted: &Accepted) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceResponse,
    };
    use prost::Message;
    if accepted.rejected_spans == 0 {
        return Vec::new();
    }
    let response = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: i64::try_from(accepted.rejected_spans).unwrap_or(i64::MAX),
            error_message: accepted.rejected_message.clone().unwrap_or_default(),
        }),
    };
    response.encode_to_vec()
}

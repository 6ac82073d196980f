//! Decoders for the receivers Tempo's distributor takes besides OTLP/gRPC, each mapped to OTLP
//! the way the OpenTelemetry Collector's receiver of the same name maps it (Tempo embeds those
//! receivers):
//!
//! - [`otlp_json`]: the OTLP/HTTP JSON encoding of `ExportTraceServiceRequest`.
//! - [`zipkin`]: Zipkin v2 JSON and protobuf (`/api/v2/spans`), v1 JSON (`/api/v1/spans`).
//! - [`jaeger`]: Jaeger thrift (`Batch` over HTTP, `Agent.emitBatch` over UDP in the compact
//!   and binary protocols) and Jaeger protobuf (`jaeger.api_v2.CollectorService/PostSpans`).
//!
//! **Architecture Invariant:** sans-IO. Every function takes bytes and returns an
//! [`ExportTraceServiceRequest`] or a [`DecodeError`]; none panics on any input (each decoder
//! has a fuzz target).

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod fuzz;
pub mod jaeger;
pub mod otlp_json;
pub mod zipkin;

use std::fmt;

pub use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

/// Why a body could not be decoded: always the client's fault (HTTP 400, gRPC
/// `INVALID_ARGUMENT`). The message names what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub message: String,
}

impl DecodeError {
    pub fn new(message: impl Into<String>) -> DecodeError {
        DecodeError {
            message: message.into(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

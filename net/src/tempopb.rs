//! Tempo's own wire messages, declared by hand at Tempo's field numbers.
//!
//! Source: grafana/tempo `pkg/tempopb/tempo.proto` (v2.7.x). Only the messages the query API
//! needs so far are here; the search messages come with the search API.
//!
//! ```text
//! message Trace             { repeated tempopb.trace.v1.ResourceSpans resourceSpans = 1; }
//! message TraceByIDResponse { Trace trace = 1; TraceByIDMetrics metrics = 2;
//!                             PartialStatus status = 3; string message = 4; }
//! message TraceByIDMetrics  { uint64 inspectedBytes = 1; }
//! enum PartialStatus        { COMPLETE = 0; PARTIAL = 1; }
//! ```
//!
//! Tempo's `tempopb.trace.v1.ResourceSpans` is the OpenTelemetry message renamed, so the
//! `opentelemetry-proto` type decodes and encodes the same bytes. A `Trace` on the wire is
//! therefore the same as an OTLP `TracesData`: field 1, repeated `ResourceSpans`.

use opentelemetry_proto::tonic::trace::v1::ResourceSpans;

/// `tempopb.Trace`. The field is `resourceSpans` in Tempo 2.7's proto (the v2 JSON name); the
/// v1 HTTP API renders it as `batches`, the name it had before.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Trace {
    #[prost(message, repeated, tag = "1")]
    pub batches: Vec<ResourceSpans>,
}

/// `tempopb.TraceByIDResponse`: the body of `/api/v2/traces/{id}` with
/// `Accept: application/protobuf`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    pub trace: Option<Trace>,
    #[prost(message, optional, tag = "2")]
    pub metrics: Option<TraceByIdMetrics>,
    #[prost(enumeration = "PartialStatus", tag = "3")]
    pub status: i32,
    #[prost(string, tag = "4")]
    pub message: String,
}

/// `tempopb.TraceByIDMetrics`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TraceByIdMetrics {
    #[prost(uint64, tag = "1")]
    pub inspected_bytes: u64,
}

/// `tempopb.PartialStatus`: whether a response holds everything or hit a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum PartialStatus {
    Complete = 0,
    Partial = 1,
}

/// Wraps an encoded `tempopb.Trace` into an encoded `TraceByIDResponse` without decoding it:
/// the tag of field 1 (length-delimited, `0x0a`), the varint length, the bytes. An empty
/// `trace` still yields `0a 00`, a present but empty trace, as Tempo sends for an unknown ID.
pub fn trace_by_id_response_bytes(trace: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(trace.len() + 11);
    out.push(0x0a);
    let mut length = trace.len() as u64;
    while length >= 0x80 {
        out.push((length as u8) | 0x80);
        length >>= 7;
    }
    out.push(length as u8);
    out.extend_from_slice(trace);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Span};
    use prost::Message;

    fn sample_trace() -> Trace {
        Trace {
            batches: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        name: "x".repeat(300),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn wrapping_bytes_equals_encoding_the_response() {
        let trace = sample_trace();
        let trace_bytes = trace.encode_to_vec();
        assert!(trace_bytes.len() > 0x80, "needs a multi-byte varint");
        let expected = TraceByIdResponse {
            trace: Some(trace.clone()),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(trace_by_id_response_bytes(&trace_bytes), expected);
        let decoded = TraceByIdResponse::decode(expected.as_slice()).expect("decodes");
        assert_eq!(decoded.trace, Some(trace));
    }

    #[test]
    fn empty_trace_is_present_but_empty() {
        assert_eq!(trace_by_id_response_bytes(&[]), vec![0x0a, 0x00]);
        let decoded = TraceByIdResponse::decode(&[0x0a, 0x00][..]).expect("decodes");
        assert_eq!(decoded.trace, Some(Trace::default()));
    }

    #[test]
    fn a_trace_is_wire_compatible_with_otlp_traces_data() {
        use opentelemetry_proto::tonic::trace::v1::TracesData;
        let bytes = sample_trace().encode_to_vec();
        let data = TracesData::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(data.resource_spans, sample_trace().batches);
    }

    #[test]
    fn metrics_and_status_at_tempos_field_numbers() {
        let response = TraceByIdResponse {
            trace: None,
            metrics: Some(TraceByIdMetrics { inspected_bytes: 5 }),
            status: PartialStatus::Partial as i32,
            message: "m".to_string(),
        };
        assert_eq!(
            response.encode_to_vec(),
            vec![0x12, 0x02, 0x08, 0x05, 0x18, 0x01, 0x22, 0x01, b'm']
        );
    }
}

//! The fuzz entry points, one per receiver, shared by the cargo-fuzz targets
//! (`net/receivers/fuzz`) and the regression test that replays their saved inputs under
//! `cargo test` (`net/receivers/tests/fuzz_regressions.rs`). Each must return (Ok or Err) for
//! every input; what a decoder returns must encode.

use prost::Message;

use crate::{jaeger, otlp_json, zipkin, DecodeError, ExportTraceServiceRequest};

fn check(result: Result<ExportTraceServiceRequest, DecodeError>) {
    match result {
        Ok(request) => {
            let encoded = request.encode_to_vec();
            // What we hand to the ingest path decodes back to the same request (compared as
            // bytes: a NaN attribute is not equal to itself).
            let decoded = ExportTraceServiceRequest::decode(encoded.as_slice())
                .map(|again| again.encode_to_vec());
            assert_eq!(decoded.ok(), Some(encoded));
        }
        Err(error) => assert!(!error.message.is_empty(), "an error without a message"),
    }
}

/// OTLP JSON bodies.
pub fn otlp_json(data: &[u8]) {
    check(otlp_json::decode(data));
}

/// Zipkin bodies: v2 JSON, v2 protobuf and v1 JSON, each on every input.
pub fn zipkin(data: &[u8]) {
    let options = zipkin::Options {
        parse_string_tags: data.first().is_some_and(|b| b & 1 == 1),
    };
    check(zipkin::decode_v2_json_with(data, &options));
    check(zipkin::decode_v2_proto_with(data, &options));
    check(zipkin::decode_v1_json_with(
        data,
        &options,
        1_700_000_000_000_000_000,
    ));
}

/// Jaeger bodies: a thrift_http `Batch`, agent datagrams in both protocols, a gRPC
/// `PostSpansRequest`, each on every input.
pub fn jaeger(data: &[u8]) {
    check(jaeger::decode_thrift_batch(data));
    check(jaeger::decode_agent_datagram(
        data,
        jaeger::AgentProtocol::Compact,
    ));
    check(jaeger::decode_agent_datagram(
        data,
        jaeger::AgentProtocol::Binary,
    ));
    check(jaeger::decode_grpc_post_spans(data));
}

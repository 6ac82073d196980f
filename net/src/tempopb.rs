//! Tempo's own wire messages, declared by hand at Tempo's field numbers.
//!
//! Source: `pkg/tempopb/tempo.proto` of Tempo 2.7, as vendored by grafana/grafana at commit
//! 71899e29116a94be32b96e73432d80874b2524e4 (`vendor/github.com/grafana/tempo/pkg/tempopb/`:
//! the 2.7 generation, with `RF1After` and `MetricsQueryInstant`, before the 2.8 dedicated-column
//! options), checked field by field against grafana/tempo's generated `tempo.pb.go` at
//! 00998fc507e0e46c679c33de63241b17c681870b (a later version: every message below has the same
//! numbers and types there) and against the 2.2-era `tempo.proto` at
//! 903f058919790e51ca89e14d626dc6f2d38b16a7 for the fields that already existed. Only the
//! messages the query API needs are here: trace by ID, search, TraceQL metrics, and the
//! `StreamingQuerier` requests (drawn above their declarations). Fields Allegro never reads (`RF1After`, the
//! block-level requests) are left out; prost skips them on decode.
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

// ---------------------------------------------------------------------------------------
// Search (`tempopb.StreamingQuerier` and the bodies of the search endpoints).
//
// ```text
// service StreamingQuerier {
//   rpc Search(SearchRequest) returns (stream SearchResponse);
//   rpc SearchTags(SearchTagsRequest) returns (stream SearchTagsResponse) {}
//   rpc SearchTagsV2(SearchTagsRequest) returns (stream SearchTagsV2Response) {}
//   rpc SearchTagValues(SearchTagValuesRequest) returns (stream SearchTagValuesResponse) {}
//   rpc SearchTagValuesV2(SearchTagValuesRequest) returns (stream SearchTagValuesV2Response) {}
//   rpc MetricsQueryRange(QueryRangeRequest) returns (stream QueryRangeResponse) {}
//   rpc MetricsQueryInstant(QueryInstantRequest) returns (stream QueryInstantResponse) {}
// }
// message SearchRequest        { map<string,string> Tags = 1; uint32 MinDurationMs = 2;
//                                uint32 MaxDurationMs = 3; uint32 Limit = 4; uint32 start = 5;
//                                uint32 end = 6; string Query = 8; uint32 SpansPerSpanSet = 9;
//                                Timestamp RF1After = 10; }
// message SearchResponse       { repeated TraceSearchMetadata traces = 1; SearchMetrics metrics = 2; }
// message TraceSearchMetadata  { string traceID = 1; string rootServiceName = 2;
//                                string rootTraceName = 3; uint64 startTimeUnixNano = 4;
//                                uint32 durationMs = 5; SpanSet spanSet = 6;
//                                repeated SpanSet spanSets = 7;
//                                map<string, ServiceStats> serviceStats = 8; }
// message ServiceStats         { uint32 spanCount = 1; uint32 errorCount = 2; }
// message SpanSet              { repeated Span spans = 1; uint32 matched = 2;
//                                repeated tempopb.common.v1.KeyValue attributes = 3; }
// message Span                 { string spanID = 1; string name = 2; uint64 startTimeUnixNano = 3;
//                                uint64 durationNanos = 4;
//                                repeated tempopb.common.v1.KeyValue attributes = 5; }
// message SearchMetrics        { uint32 inspectedTraces = 1; uint64 inspectedBytes = 2;
//                                uint32 totalBlocks = 3; uint32 completedJobs = 4;
//                                uint32 totalJobs = 5; uint64 totalBlockBytes = 6;
//                                uint64 inspectedSpans = 7; }
// message SearchTagsRequest    { string scope = 1; string query = 2; uint32 start = 3;
//                                uint32 end = 4; uint32 maxTagsPerScope = 5;
//                                uint32 staleValuesThreshold = 6; Timestamp RF1After = 7; }
// message SearchTagsResponse   { repeated string tagNames = 1; MetadataMetrics metrics = 2; }
// message SearchTagsV2Response { repeated SearchTagsV2Scope scopes = 1; MetadataMetrics metrics = 2; }
// message SearchTagsV2Scope    { string name = 1; repeated string tags = 2; }
// message SearchTagValuesRequest { string tagName = 1; string query = 2; uint32 start = 4;
//                                uint32 end = 5; uint32 maxTagValues = 6;
//                                uint32 staleValueThreshold = 7; Timestamp RF1After = 8; }
// message SearchTagValuesResponse   { repeated string tagValues = 1; MetadataMetrics metrics = 2; }
// message SearchTagValuesV2Response { repeated TagValue tagValues = 1; MetadataMetrics metrics = 2; }
// message TagValue             { string type = 1; string value = 2; }
// message MetadataMetrics      { uint64 inspectedBytes = 1; uint32 totalJobs = 2;
//                                uint32 completedJobs = 3; uint32 totalBlocks = 4;
//                                uint64 totalBlockBytes = 5; }
// ```
//
// TraceQL metrics (`MetricsQueryRange`, `MetricsQueryInstant`, and the bodies of
// `/api/metrics/query_range` and `/api/metrics/query`):
//
// ```text
// message QueryRangeRequest    { string query = 1; uint64 start = 2; uint64 end = 3;
//                                uint64 step = 4; string queryMode = 7;
//                                (RF1 block fields 8-15); uint32 exemplars = 16; }
// message QueryRangeResponse   { repeated TimeSeries series = 1; SearchMetrics metrics = 2; }
// message TimeSeries           { repeated tempopb.common.v1.KeyValue labels = 1;
//                                repeated Sample samples = 2; string prom_labels = 3;
//                                repeated Exemplar exemplars = 4; }
// message Sample               { int64 timestamp_ms = 2; double value = 1; }
// message Exemplar             { repeated tempopb.common.v1.KeyValue labels = 1;
//                                double value = 2; int64 timestamp_ms = 3; }
// message QueryInstantRequest  { string query = 1; uint64 start = 2; uint64 end = 3; }
// message QueryInstantResponse { repeated InstantSeries series = 1; SearchMetrics metrics = 2; }
// message InstantSeries        { repeated tempopb.common.v1.KeyValue labels = 1;
//                                double value = 2; string prom_labels = 3; }
// ```
//
// (`Sample` declares `timestamp_ms` first, as `promql.FPoint` does; jsonpb writes fields in
// that order.) Start, end and step are Unix nanoseconds.
//
// The `tempopb.common.v1.KeyValue` of spans and spansets is OpenTelemetry's, renamed.

use opentelemetry_proto::tonic::common::v1::KeyValue;

/// The gRPC service of the query API (`rpc` list above).
pub const STREAMING_SERVICE: &str = "tempopb.StreamingQuerier";

#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchRequest {
    #[prost(map = "string, string", tag = "1")]
    pub tags: std::collections::HashMap<String, String>,
    #[prost(uint32, tag = "2")]
    pub min_duration_ms: u32,
    #[prost(uint32, tag = "3")]
    pub max_duration_ms: u32,
    #[prost(uint32, tag = "4")]
    pub limit: u32,
    #[prost(uint32, tag = "5")]
    pub start: u32,
    #[prost(uint32, tag = "6")]
    pub end: u32,
    #[prost(string, tag = "8")]
    pub query: String,
    #[prost(uint32, tag = "9")]
    pub spans_per_span_set: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchResponse {
    #[prost(message, repeated, tag = "1")]
    pub traces: Vec<TraceSearchMetadata>,
    #[prost(message, optional, tag = "2")]
    pub metrics: Option<SearchMetrics>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TraceSearchMetadata {
    #[prost(string, tag = "1")]
    pub trace_id: String,
    #[prost(string, tag = "2")]
    pub root_service_name: String,
    #[prost(string, tag = "3")]
    pub root_trace_name: String,
    #[prost(uint64, tag = "4")]
    pub start_time_unix_nano: u64,
    #[prost(uint32, tag = "5")]
    pub duration_ms: u32,
    #[prost(message, optional, tag = "6")]
    pub span_set: Option<SpanSet>,
    #[prost(message, repeated, tag = "7")]
    pub span_sets: Vec<SpanSet>,
    #[prost(btree_map = "string, message", tag = "8")]
    pub service_stats: std::collections::BTreeMap<String, ServiceStats>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ServiceStats {
    #[prost(uint32, tag = "1")]
    pub span_count: u32,
    #[prost(uint32, tag = "2")]
    pub error_count: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SpanSet {
    #[prost(message, repeated, tag = "1")]
    pub spans: Vec<Span>,
    #[prost(uint32, tag = "2")]
    pub matched: u32,
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Span {
    #[prost(string, tag = "1")]
    pub span_id: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(uint64, tag = "3")]
    pub start_time_unix_nano: u64,
    #[prost(uint64, tag = "4")]
    pub duration_nanos: u64,
    #[prost(message, repeated, tag = "5")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchMetrics {
    #[prost(uint32, tag = "1")]
    pub inspected_traces: u32,
    #[prost(uint64, tag = "2")]
    pub inspected_bytes: u64,
    #[prost(uint32, tag = "3")]
    pub total_blocks: u32,
    #[prost(uint32, tag = "4")]
    pub completed_jobs: u32,
    #[prost(uint32, tag = "5")]
    pub total_jobs: u32,
    #[prost(uint64, tag = "6")]
    pub total_block_bytes: u64,
    #[prost(uint64, tag = "7")]
    pub inspected_spans: u64,
}

/// Also the request of `SearchTagsV2`. Note the order: `query` is field 2, so `start`/`end`
/// are 3 and 4 (`SearchTagValuesRequest` has them at 4 and 5).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchTagsRequest {
    #[prost(string, tag = "1")]
    pub scope: String,
    #[prost(string, tag = "2")]
    pub query: String,
    #[prost(uint32, tag = "3")]
    pub start: u32,
    #[prost(uint32, tag = "4")]
    pub end: u32,
    #[prost(uint32, tag = "5")]
    pub max_tags_per_scope: u32,
    #[prost(uint32, tag = "6")]
    pub stale_values_threshold: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MetadataMetrics {
    #[prost(uint64, tag = "1")]
    pub inspected_bytes: u64,
    #[prost(uint32, tag = "2")]
    pub total_jobs: u32,
    #[prost(uint32, tag = "3")]
    pub completed_jobs: u32,
    #[prost(uint32, tag = "4")]
    pub total_blocks: u32,
    #[prost(uint64, tag = "5")]
    pub total_block_bytes: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchTagsResponse {
    #[prost(string, repeated, tag = "1")]
    pub tag_names: Vec<String>,
    #[prost(message, optional, tag = "2")]
    pub metrics: Option<MetadataMetrics>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchTagsV2Scope {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, repeated, tag = "2")]
    pub tags: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchTagsV2Response {
    #[prost(message, repeated, tag = "1")]
    pub scopes: Vec<SearchTagsV2Scope>,
    #[prost(message, optional, tag = "2")]
    pub metrics: Option<MetadataMetrics>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchTagValuesRequest {
    #[prost(string, tag = "1")]
    pub tag_name: String,
    #[prost(string, tag = "2")]
    pub query: String,
    #[prost(uint32, tag = "4")]
    pub start: u32,
    #[prost(uint32, tag = "5")]
    pub end: u32,
    #[prost(uint32, tag = "6")]
    pub max_tag_values: u32,
    #[prost(uint32, tag = "7")]
    pub stale_value_threshold: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchTagValuesResponse {
    #[prost(string, repeated, tag = "1")]
    pub tag_values: Vec<String>,
    #[prost(message, optional, tag = "2")]
    pub metrics: Option<MetadataMetrics>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TagValue {
    #[prost(string, tag = "1")]
    pub r#type: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchTagValuesV2Response {
    #[prost(message, repeated, tag = "1")]
    pub tag_values: Vec<TagValue>,
    #[prost(message, optional, tag = "2")]
    pub metrics: Option<MetadataMetrics>,
}

/// The request of `StreamingQuerier/MetricsQueryRange`. The RF1 block fields (8-15), which
/// only Tempo's frontend sends its queriers, are left out.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryRangeRequest {
    #[prost(string, tag = "1")]
    pub query: String,
    #[prost(uint64, tag = "2")]
    pub start: u64,
    #[prost(uint64, tag = "3")]
    pub end: u64,
    #[prost(uint64, tag = "4")]
    pub step: u64,
    #[prost(string, tag = "7")]
    pub query_mode: String,
    #[prost(uint32, tag = "16")]
    pub exemplars: u32,
}

/// The request of `StreamingQuerier/MetricsQueryInstant`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryInstantRequest {
    #[prost(string, tag = "1")]
    pub query: String,
    #[prost(uint64, tag = "2")]
    pub start: u64,
    #[prost(uint64, tag = "3")]
    pub end: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryRangeResponse {
    #[prost(message, repeated, tag = "1")]
    pub series: Vec<TimeSeries>,
    #[prost(message, optional, tag = "2")]
    pub metrics: Option<SearchMetrics>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<KeyValue>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(string, tag = "3")]
    pub prom_labels: String,
    #[prost(message, repeated, tag = "4")]
    pub exemplars: Vec<Exemplar>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(int64, tag = "2")]
    pub timestamp_ms: i64,
    #[prost(double, tag = "1")]
    pub value: f64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<KeyValue>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp_ms: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryInstantResponse {
    #[prost(message, repeated, tag = "1")]
    pub series: Vec<InstantSeries>,
    #[prost(message, optional, tag = "2")]
    pub metrics: Option<SearchMetrics>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct InstantSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<KeyValue>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(string, tag = "3")]
    pub prom_labels: String,
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

    /// Bytes as Tempo 2.7's Go client (Grafana, tempo-cli) encodes a `SearchTagsRequest` with
    /// scope `span`, query `{}`, start 5, end 6, maxTagsPerScope 7, staleValuesThreshold 8.
    #[test]
    fn search_tags_request_at_tempos_field_numbers() {
        let wire = [
            0x0a, 4, b's', b'p', b'a', b'n', 0x12, 2, b'{', b'}', 0x18, 5, 0x20, 6, 0x28, 7, 0x30,
            8,
        ];
        let request = SearchTagsRequest::decode(&wire[..]).expect("decodes");
        assert_eq!(
            request,
            SearchTagsRequest {
                scope: "span".to_string(),
                query: "{}".to_string(),
                start: 5,
                end: 6,
                max_tags_per_scope: 7,
                stale_values_threshold: 8,
            }
        );
        assert_eq!(request.encode_to_vec(), wire);
    }

    #[test]
    fn tag_values_request_and_metadata_metrics_at_tempos_field_numbers() {
        let request = SearchTagValuesRequest {
            tag_name: "a".to_string(),
            query: "q".to_string(),
            start: 1,
            end: 2,
            max_tag_values: 3,
            stale_value_threshold: 4,
        };
        assert_eq!(
            request.encode_to_vec(),
            vec![0x0a, 1, b'a', 0x12, 1, b'q', 0x20, 1, 0x28, 2, 0x30, 3, 0x38, 4]
        );
        let metrics = MetadataMetrics {
            inspected_bytes: 1,
            total_jobs: 2,
            completed_jobs: 3,
            total_blocks: 4,
            total_block_bytes: 5,
        };
        assert_eq!(
            metrics.encode_to_vec(),
            vec![0x08, 1, 0x10, 2, 0x18, 3, 0x20, 4, 0x28, 5]
        );
    }

    /// Tempo 2.7's `tempo.proto`: `Sample` has `value` = 1 and `timestamp_ms` = 2,
    /// `Exemplar` `labels` 1, `value` 2, `timestamp_ms` 3; `exemplars` of a range request is 16.
    #[test]
    fn metrics_messages_at_tempos_field_numbers() {
        let sample = Sample {
            timestamp_ms: 3,
            value: 1.0,
        };
        let mut wire = vec![0x09];
        wire.extend_from_slice(&1.0f64.to_le_bytes());
        wire.extend_from_slice(&[0x10, 3]);
        assert_eq!(sample.encode_to_vec(), wire);
        let exemplar = Exemplar {
            labels: Vec::new(),
            value: 1.0,
            timestamp_ms: 3,
        };
        let mut wire = vec![0x11];
        wire.extend_from_slice(&1.0f64.to_le_bytes());
        wire.extend_from_slice(&[0x18, 3]);
        assert_eq!(exemplar.encode_to_vec(), wire);
        let request = QueryRangeRequest {
            query: "q".to_string(),
            start: 1,
            end: 2,
            step: 3,
            query_mode: "m".to_string(),
            exemplars: 5,
        };
        assert_eq!(
            request.encode_to_vec(),
            vec![0x0a, 1, b'q', 0x10, 1, 0x18, 2, 0x20, 3, 0x3a, 1, b'm', 0x80, 0x01, 5]
        );
        let series = InstantSeries {
            labels: Vec::new(),
            value: 1.0,
            prom_labels: "p".to_string(),
        };
        let mut wire = vec![0x11];
        wire.extend_from_slice(&1.0f64.to_le_bytes());
        wire.extend_from_slice(&[0x1a, 1, b'p']);
        assert_eq!(series.encode_to_vec(), wire);
    }

    #[test]
    fn search_messages_at_tempos_field_numbers() {
        let request = super::SearchRequest {
            limit: 4,
            start: 5,
            end: 6,
            query: "x".to_string(),
            spans_per_span_set: 9,
            ..Default::default()
        };
        assert_eq!(
            request.encode_to_vec(),
            vec![0x20, 4, 0x28, 5, 0x30, 6, 0x42, 1, b'x', 0x48, 9]
        );
        let metrics = SearchMetrics {
            inspected_traces: 1,
            inspected_bytes: 2,
            total_blocks: 3,
            completed_jobs: 4,
            total_jobs: 5,
            total_block_bytes: 6,
            inspected_spans: 7,
        };
        assert_eq!(
            metrics.encode_to_vec(),
            vec![0x08, 1, 0x10, 2, 0x18, 3, 0x20, 4, 0x28, 5, 0x30, 6, 0x38, 7]
        );
        let stats = ServiceStats {
            span_count: 1,
            error_count: 2,
        };
        assert_eq!(stats.encode_to_vec(), vec![0x08, 1, 0x10, 2]);
    }
}

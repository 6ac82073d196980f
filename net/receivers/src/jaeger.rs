//! Jaeger receivers: thrift over HTTP, thrift agent datagrams over UDP, and protobuf over gRPC,
//! each decoded and translated to OTLP exactly as the OpenTelemetry Collector's
//! `jaegerreceiver` (collector-contrib v0.116 era, which Tempo 2.7 embeds) does it.
//!
//! | Transport                 | Port   | Entry point                  | Payload                         |
//! |---------------------------|--------|------------------------------|---------------------------------|
//! | `POST /api/traces`        | 14268  | [`decode_thrift_batch`]      | binary-protocol `jaeger.Batch`  |
//! | UDP `thrift_compact`      | 6831   | [`decode_agent_datagram`]    | compact `Agent.emitBatch` call  |
//! | UDP `thrift_binary`       | 6832   | [`decode_agent_datagram`]    | binary `Agent.emitBatch` call   |
//! | gRPC [`POST_SPANS_PATH`]  | 14250  | [`decode_grpc_post_spans`]   | `jaeger.api_v2.PostSpansRequest`|
//!
//! # Wire formats
//!
//! Thrift (`jaeger-idl/thrift/jaeger.thrift`); `R` = required (missing is an error, as in Go's
//! generated readers), unknown ids and known ids with the wrong type are skipped:
//!
//! ```text
//! Batch        1 R process: Process    2 R spans: list<Span>   3 seqNo: i64   4 stats: ClientStats
//! Process      1 R serviceName: string 2 tags: list<Tag>
//! Span         1 R traceIdLow: i64     2 R traceIdHigh: i64    3 R spanId: i64
//!              4 R parentSpanId: i64   5 R operationName: str  6 references: list<SpanRef>
//!              7 R flags: i32          8 R startTime: i64 (us) 9 R duration: i64 (us)
//!             10 tags: list<Tag>      11 logs: list<Log>
//! SpanRef      1 R refType: i32 (CHILD_OF=0, FOLLOWS_FROM=1)    2 R traceIdLow: i64
//!              3 R traceIdHigh: i64    4 R spanId: i64
//! Log          1 R timestamp: i64 (us) 2 R fields: list<Tag>
//! Tag          1 R key: string         2 R vType: i32 (STRING=0 DOUBLE=1 BOOL=2 LONG=3 BINARY=4)
//!              3 vStr: string  4 vDouble: double  5 vBool: bool  6 vLong: i64  7 vBinary: binary
//! ClientStats  1 R fullQueueDroppedSpans: i64  2 R tooLargeDroppedSpans: i64
//!              3 R failedToEmitSpans: i64
//! Agent        message "emitBatch" (ONEWAY or CALL), args struct { 1 batch: Batch }
//! ```
//!
//! Protobuf (`jaeger-idl/proto/api_v2/model.proto`, `collector.proto`): see [`proto`] for the
//! messages and field numbers. IDs are big-endian bytes: a trace ID of fewer than 16 bytes or
//! a span ID of other than 8 is refused (`model.TraceID/SpanID.Unmarshal`); timestamps and
//! durations outside gogo's valid ranges are refused (`StdTimeUnmarshal`).
//!
//! # Mapping (collector `pkg/translator/jaeger`)
//!
//! | Jaeger                                   | OTLP                                                     |
//! |------------------------------------------|----------------------------------------------------------|
//! | `Process.serviceName` (if non-empty)     | resource `service.name`, then process tags               |
//! | process tag `hostname`                   | `host.name` (unless set)                                 |
//! | process tag `jaeger.version` V           | `opencensus.exporterversion` = `Jaeger-V` (unless set)   |
//! | proto serviceName `OTLPResourceNoServiceName` | empty resource                                      |
//! | tag by type STRING/BOOL/LONG/DOUBLE/BINARY | string/bool/int/double/bytes; unknown type -> string `<Unknown Jaeger TagType "..">` |
//! | `span.kind` (removed)                    | kind: client/server/producer/consumer/internal, else unspecified |
//! | `error`=true (removed)                   | status ERROR, message `otel.status_description` (removed) else `http.status_message` |
//! | `otel.status_code` (always removed)      | if no `error`=true: OK/ERROR (case-insensitive) else UNSET, message `otel.status_description` (removed) |
//! | `http.status_code` (int or numeric string, kept) | if neither above: 4xx ERROR for client, UNSET for server; else [100,399) UNSET, other ERROR; message `http.status_message` |
//! | `w3c.tracestate` (proto only, removed)   | `trace_state`                                            |
//! | `otel.scope.name`/`otel.scope.version` (proto only, removed) | `InstrumentationScope` (thrift: one empty scope, tags kept as attributes) |
//! | traceIdHigh/Low, spanId                  | 16 / 8 big-endian bytes (all-zero IDs encode as empty, as pdata does) |
//! | parent                                   | thrift `parentSpanId` if non-zero, else the first same-trace CHILD_OF ref, else the first same-trace FOLLOWS_FROM ref |
//! | references                               | links, except CHILD_OF refs to the parent's span ID; attribute `opentracing.ref_type` = `child_of`/`follows_from` |
//! | logs                                     | events; field `event` (removed) is the name                |
//! | startTime, startTime+duration            | us * 1000 (Go's wrapping arithmetic), or proto Timestamp/Duration in ns |
//! | `flags`, `seqNo`, `stats`, proto `process_id`/`warnings` | dropped                                 |
//!
//! Attribute maps follow `pcommon.Map`: a repeated key overwrites in place, a removal swaps the
//! last attribute into its place. A span whose fields are all zero/absent is skipped, as the
//! collector skips `reflect.DeepEqual(span, new(Span))`. A zero trace ID is accepted, as the
//! collector accepts it (it then encodes as empty bytes; the distributor's trace-ID length
//! check is where it gets refused).
//!
//! Grouping: a thrift batch is one `ResourceSpans` with (if the span list is non-empty) one
//! `ScopeSpans` with an empty scope. A proto batch is split by process (`regroup`): the batch's
//! process first, then each distinct span-level `process` (which overrides the batch's), one
//! `ResourceSpans` each in order of first appearance (the collector iterates a Go map, so its
//! order is random), and within each one `ScopeSpans` per distinct scope, in order of first
//! appearance. As in the collector, the batch process's `ResourceSpans` is emitted even when
//! every span carries its own process.
//!
//! # Limits
//!
//! Agent datagrams above [`AGENT_DATAGRAM_BYTES_MAX`] (the jaeger agent's default
//! `max_packet_size`) are refused. A thrift string or list longer than the input remaining is
//! refused before anything is allocated; thrift skipping of unknown fields is bounded to depth
//! 64, and the known structs nest at most five deep. Protobuf is decoded by prost, which checks
//! every length against the input and bounds recursion. The HTTP body size is the HTTP edge's
//! to bound (the collector's `confighttp` default is 20 MiB).

use std::collections::HashMap;

use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use prost::Message;

use crate::{DecodeError, ExportTraceServiceRequest};

pub mod proto;
mod thrift;
mod translate;

#[cfg(test)]
mod tests;

use translate::Dialect;

/// The gRPC method path of `jaeger.api_v2.CollectorService/PostSpans`. Its response,
/// [`proto::PostSpansResponse`], is empty.
pub const POST_SPANS_PATH: &str = "/jaeger.api_v2.CollectorService/PostSpans";

/// The largest UDP datagram the agent ports take (jaeger agent `max_packet_size` default).
pub const AGENT_DATAGRAM_BYTES_MAX: usize = 65_000;

/// The `Content-Type` media types `POST /api/traces` accepts (compared after
/// `mime.ParseMediaType`, so case-insensitively and without parameters); any other is a 400.
pub const THRIFT_HTTP_CONTENT_TYPES: [&str; 2] = [
    "application/x-thrift",
    "application/vnd.apache.thrift.binary",
];

/// The thrift encoding of an agent port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentProtocol {
    /// `TCompactProtocol`, port 6831.
    Compact,
    /// `TBinaryProtocol`, port 6832.
    Binary,
}

/// Whether a `Content-Type` header value is one [`THRIFT_HTTP_CONTENT_TYPES`] accepts, with
/// the collector's error message when it is not.
pub fn check_thrift_content_type(content_type: &str) -> Result<(), DecodeError> {
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media_type.is_empty() {
        return Err(DecodeError::new(
            "Cannot parse content type: mime: no media type",
        ));
    }
    if THRIFT_HTTP_CONTENT_TYPES.contains(&media_type.as_str()) {
        Ok(())
    } else {
        Err(DecodeError::new(format!(
            "Unsupported content type: {media_type}"
        )))
    }
}

/// Decode the body of `POST /api/traces` (thrift_http): a binary-protocol `jaeger.Batch`.
/// Bytes after the struct are ignored, as Go's `TDeserializer` ignores them.
pub fn decode_thrift_batch(body: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    let batch = thrift::with_reader(body, AgentProtocol::Binary, |r| r.batch())
        .map_err(|e| DecodeError::new(format!("jaeger thrift Batch: {e}")))?;
    Ok(thrift_batch_to_otlp(batch))
}

/// Decode one UDP datagram to an agent port: a thrift `Agent.emitBatch` message in
/// `protocol`. A missing `batch` argument gives an empty request, as in the collector.
pub fn decode_agent_datagram(
    datagram: &[u8],
    protocol: AgentProtocol,
) -> Result<ExportTraceServiceRequest, DecodeError> {
    let name = match protocol {
        AgentProtocol::Compact => "jaeger agent compact",
        AgentProtocol::Binary => "jaeger agent binary",
    };
    if datagram.len() > AGENT_DATAGRAM_BYTES_MAX {
        return Err(DecodeError::new(format!(
            "{name}: datagram of {} bytes exceeds {AGENT_DATAGRAM_BYTES_MAX}",
            datagram.len()
        )));
    }
    let call = thrift::with_reader(datagram, protocol, |r| r.agent_call())
        .map_err(|e| DecodeError::new(format!("{name}: {e}")))?;
    match call {
        thrift::AgentCall::EmitBatch(Some(batch)) => Ok(thrift_batch_to_otlp(batch)),
        thrift::AgentCall::EmitBatch(None) => Ok(ExportTraceServiceRequest::default()),
    }
}

/// Decode a gRPC `jaeger.api_v2.PostSpansRequest` (the message after the 5-byte gRPC prefix).
pub fn decode_grpc_post_spans(message: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    let request = proto::PostSpansRequest::decode(message)
        .map_err(|e| DecodeError::new(format!("jaeger proto PostSpansRequest: {e}")))?;
    proto_batch_to_otlp(request.batch.unwrap_or_default())
        .map_err(|e| DecodeError::new(format!("jaeger proto PostSpansRequest: {e}")))
}

/// `ThriftToTraces`: one resource; one empty scope holding the non-blank spans if the span
/// list is non-empty.
fn thrift_batch_to_otlp(batch: thrift::Batch) -> ExportTraceServiceRequest {
    let resource = translate::resource(Some(batch.process), Dialect::Thrift);
    let mut scope_spans = Vec::new();
    if !batch.spans.is_empty() {
        let spans = batch
            .spans
            .into_iter()
            .flatten()
            .map(|s| translate::span(s, Dialect::Thrift))
            .collect();
        scope_spans.push(translate::scope_spans(String::new(), String::new(), spans));
    }
    ExportTraceServiceRequest {
        resource_spans: vec![translate::resource_spans(resource, scope_spans)],
    }
}

/// Spans sharing one process (the collector's regrouped `model.Batch`).
struct Group {
    process: Option<proto::ProtoProcess>,
    /// With each span's index in the request, for error messages.
    spans: Vec<(usize, proto::Span)>,
}

/// `ProtoToTraces` of the request's single batch.
fn proto_batch_to_otlp(batch: proto::Batch) -> Result<ExportTraceServiceRequest, String> {
    // regroup: the batch's process is registered first, then each span-level process.
    let mut groups: Vec<Group> = Vec::new();
    let mut index_of: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut group_for = |process: Option<proto::ProtoProcess>, groups: &mut Vec<Group>| {
        let key = proto::process_key(process.as_ref());
        *index_of.entry(key).or_insert_with(|| {
            groups.push(Group {
                process,
                spans: Vec::new(),
            });
            groups.len() - 1
        })
    };
    let batch_group = group_for(batch.process, &mut groups);
    for (position, mut span) in batch.spans.into_iter().enumerate() {
        let index = match span.process.take() {
            None => batch_group,
            Some(p) => group_for(Some(p), &mut groups),
        };
        if let Some(group) = groups.get_mut(index) {
            group.spans.push((position, span));
        }
    }

    let mut resource_spans: Vec<ResourceSpans> = Vec::with_capacity(groups.len());
    for group in groups {
        if group.process.is_none() && group.spans.is_empty() {
            continue;
        }
        let resource = translate::resource(group.process.map(proto::process), Dialect::Proto);
        let mut scopes: Vec<((String, String), Vec<_>)> = Vec::new();
        for (here, mut span) in group.spans {
            if proto::is_blank(&span) {
                continue;
            }
            let scope = proto::take_scope(&mut span.tags);
            let jaeger = proto::span(span).map_err(|e| format!("span {here}: {e}"))?;
            let otlp = translate::span(jaeger, Dialect::Proto);
            match scopes.iter_mut().find(|(s, _)| *s == scope) {
                Some((_, spans)) => spans.push(otlp),
                None => scopes.push((scope, vec![otlp])),
            }
        }
        let scope_spans = scopes
            .into_iter()
            .map(|((name, version), spans)| translate::scope_spans(name, version, spans))
            .collect();
        resource_spans.push(translate::resource_spans(resource, scope_spans));
    }
    Ok(ExportTraceServiceRequest { resource_spans })
}

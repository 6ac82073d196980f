//! Zipkin: `POST /api/v2/spans` (JSON or protobuf) and `POST /api/v1/spans` (JSON) to OTLP,
//! mapped as Tempo 2.7.2's distributor maps them: it embeds the OpenTelemetry Collector's
//! `zipkinreceiver` v0.116.0, whose translators are `pkg/translator/zipkin/zipkinv2`
//! (`to_translator.go`) over the zipkin-go v0.4.3 model, and `zipkinv1` (`json.go`,
//! `status_code.go`).
//!
//! # Formats
//!
//! - [`decode_v2_json`]: a JSON array of Zipkin v2 spans (`Content-Type: application/json`).
//! - [`decode_v2_proto`]: `zipkin.proto3.ListOfSpans` ([`proto`], for
//!   `Content-Type: application/x-protobuf`).
//! - [`decode_v1_json`]: a JSON array of Zipkin v1 spans with `annotations` and
//!   `binaryAnnotations`. (v1 thrift, `application/x-thrift`, is not handled here.)
//!
//! The caller undoes `Content-Encoding` (gzip, deflate) first, as the receiver does.
//!
//! # v2 mapping (JSON and protobuf)
//!
//! | Zipkin v2                                      | OTLP                                                        |
//! |------------------------------------------------|-------------------------------------------------------------|
//! | spans, stably sorted by (local service, `otel.library.name` tag) | one `ResourceSpans` per local service, one `ScopeSpans` per library within it |
//! | `localEndpoint.serviceName`                    | resource `service.name` (or the key named by tag `otlp.service.name.source`); missing or "" is the service `OTLPResourceNoServiceName`, whose resource has no attributes |
//! | resource semconv tags (`host.name`, `service.version`, `k8s.*`, ... semconv v1.6.1, `opencensus.*`) | resource attributes, from the first span of each resource; never span attributes |
//! | tags `otel.library.name` / `otel.library.version` | scope name / version (`otel.scope.*` are plain attributes in v0.116) |
//! | `traceId` (1-32 hex digits, JSON; 16 bytes, protobuf) | `trace_id`, left-padded with zeros                     |
//! | `id` / `parentId` (1-16 hex digits; 8 bytes)   | `span_id` / `parent_span_id` (a parent equal to the span is dropped) |
//! | `name`                                         | `name`                                                      |
//! | `kind` CLIENT / SERVER / PRODUCER / CONSUMER   | `SPAN_KIND_CLIENT` / `_SERVER` / `_PRODUCER` / `_CONSUMER`   |
//! | `kind` absent or other                         | `SPAN_KIND_INTERNAL` if tag `span.kind` is `internal`, else `SPAN_KIND_UNSPECIFIED` (tag `span.kind` consumed) |
//! | `timestamp`, `duration` (microseconds)         | `start_time_unix_nano`, `end_time_unix_nano` = start + duration |
//! | `timestamp` absent or 0 (JSON only)            | start 0, end = duration, attribute `otel.zipkin.absentField.startTime = true` |
//! | tag `otel.status_code` (`STATUS_CODE_OK`, `Ok`, `STATUS_CODE_ERROR`, `Error`, ...; anything else is UNSET) | `status.code`; `otel.status_description` is `status.message` only then; both consumed |
//! | tag `error` (any value)                        | `status.code = ERROR`; the tag stays an attribute unless its value is `true` |
//! | tag `w3c.tracestate`                           | `trace_state` (consumed)                                    |
//! | tags `otlp.link.0`, `.1`, ... (`traceId|spanId|traceState|{json}|dropped`) | `links` (consumed; fewer than 5 parts: dropped) |
//! | other tags                                     | span attributes, strings ([`Options::parse_string_tags`]: int, double, bool when the text is one) |
//! | `localEndpoint.ipv4` / `.ipv6` / `.port`       | `net.host.ip` (ipv6 wins) / `net.host.port` (int, if > 0)   |
//! | `remoteEndpoint.serviceName` / `.ipv4` / `.ipv6` / `.port` | `peer.service` / `net.peer.ip` / `net.peer.port`  |
//! | `annotations[]` `{timestamp, value}`           | `events[]`: `time_unix_nano`, name = the value up to the first `|`; `name|{json}|dropped` also sets attributes and `dropped_attributes_count` |
//! | `debug`, `shared`                              | dropped (the collector ignores them)                        |
//!
//! # v1 mapping
//!
//! | Zipkin v1                                      | OTLP                                                        |
//! |------------------------------------------------|-------------------------------------------------------------|
//! | the endpoint of the first `cs`/`cr`/`ss`/`sr`/`ms`/`mr` annotation naming a service; else `unknown-service`, renamed to the last binary annotation endpoint's service or the `lc` value | one `ResourceSpans` per distinct endpoint, in order of first appearance: `service.name`, and `ipv4`, `ipv6`, `port` (a string) when set; one empty scope |
//! | `traceId` (16 or 32 hex digits), `id`, `parentId` (16 hex digits, not zero) | `trace_id`, `span_id`, `parent_span_id`      |
//! | first kind annotation: `cs`/`cr`, `sr`/`ss`, `ms`, `mr` | `SPAN_KIND_CLIENT`, `_SERVER`, `_PRODUCER`, `_CONSUMER` |
//! | `timestamp` (if not 0), `duration`; else earliest and latest annotation | start and end; no start at all: both "now" plus `otel.zipkin.absentField.startTime = true` |
//! | other annotations                              | `events[]` (time, name = value)                             |
//! | `binaryAnnotations[]` (string values only)     | attributes; `lc` is renamed `component`                     |
//! | `census.status_code` > `otel.status_code` > `error` > `http.status_code` | `status` (`census.*`, `otel.status_*`, `error` consumed; `http.status_code`/`http.status_message` kept) |
//!
//! # Limits and refusals
//!
//! Nothing is truncated or dropped silently. Every bad input is a [`DecodeError`] naming the
//! span index and the field, e.g. `span 3: traceId "xyz": not hex`. Beyond what the collector
//! refuses (bad JSON, wrong JSON types, non-string tags, bad hex, IDs too long, a missing `id`,
//! an annotation without timestamp, malformed `otlp.link.*` tags or `|`-encoded annotations), this
//! decoder also refuses, where the collector would map garbage: a missing or all-zero `traceId`,
//! an all-zero span `id`, times past `u64::MAX` nanoseconds, protobuf ports outside 0-65535 and
//! IP fields that are not 4 or 16 bytes, and null v1 spans or binary annotations (on which the
//! collector panics). It accepts 8-byte protobuf trace IDs, which zipkin-go refuses. JSON nesting
//! is bounded by serde_json's recursion limit (an error, not a truncation).

mod common;
pub mod proto;
mod v1_json;
mod v2;
mod v2_json;

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{DecodeError, ExportTraceServiceRequest};

/// The receiver's configuration that changes the mapping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// `parse_string_tags` (default false): tags and binary annotations whose text is an int,
    /// a decimal or `true`/`false` become int, double or bool attributes.
    pub parse_string_tags: bool,
}

/// A Zipkin v2 JSON body (a JSON array of spans), default options.
pub fn decode_v2_json(body: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    decode_v2_json_with(body, &Options::default())
}

pub fn decode_v2_json_with(
    body: &[u8],
    options: &Options,
) -> Result<ExportTraceServiceRequest, DecodeError> {
    v2::to_otlp(v2_json::parse(body)?, options)
}

/// A Zipkin v2 protobuf body (`zipkin.proto3.ListOfSpans`), default options.
pub fn decode_v2_proto(body: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    decode_v2_proto_with(body, &Options::default())
}

pub fn decode_v2_proto_with(
    body: &[u8],
    options: &Options,
) -> Result<ExportTraceServiceRequest, DecodeError> {
    v2::to_otlp(proto::parse(body)?, options)
}

/// A Zipkin v1 JSON body, default options; a span with no start time is stamped with the
/// system clock (see [`decode_v1_json_with`]).
pub fn decode_v1_json(body: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    let now_unix_nano = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    decode_v1_json_with(body, &Options::default(), now_unix_nano)
}

/// [`decode_v1_json`] with the clock as an argument: a span with neither a `timestamp` nor
/// timed annotations starts and ends at `now_unix_nano`, as the collector does it.
pub fn decode_v1_json_with(
    body: &[u8],
    options: &Options,
    now_unix_nano: u64,
) -> Result<ExportTraceServiceRequest, DecodeError> {
    v1_json::decode(body, options, now_unix_nano)
}

#[cfg(test)]
mod tests;

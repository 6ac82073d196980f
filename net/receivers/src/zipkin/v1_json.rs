//! Zipkin v1 JSON (`POST /api/v1/spans`) to OTLP, as the collector's `zipkinv1` JSON
//! unmarshaler (v0.116.0, `json.go`, `status_code.go`) does it.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as AttrValue, InstrumentationScope};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span::{Event, SpanKind},
    status::StatusCode,
    ResourceSpans, ScopeSpans, Span, Status,
};
use serde_json::{Map, Value};

use super::common::{
    field, id_bytes, json_type, parse_hex_exact, shown, string_value, tag_value, Attributes,
};
use super::v2::{ATTR_START_TIME_ABSENT, TAG_ERROR, TAG_STATUS_CODE, TAG_STATUS_DESCRIPTION};
use super::Options;
use crate::DecodeError;

/// The service of a span whose annotations name none (also the "no endpoint yet" flag).
const UNKNOWN_SERVICE_NAME: &str = "unknown-service";

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct Endpoint {
    service_name: String,
    ipv4: String,
    ipv6: String,
    port: i32,
}

pub(super) fn decode(
    body: &[u8],
    options: &Options,
    now_unix_nano: u64,
) -> Result<ExportTraceServiceRequest, DecodeError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| DecodeError::new(format!("body is not JSON: {e}")))?;
    let items = match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items,
        other => {
            return Err(DecodeError::new(format!(
                "body is {}, not a JSON array of spans",
                json_type(&other)
            )))
        }
    };
    // Resources in order of first appearance, one per distinct endpoint.
    let mut resource_spans: Vec<ResourceSpans> = Vec::new();
    let mut by_endpoint: HashMap<Endpoint, usize> = HashMap::new();
    for (index, item) in items.into_iter().enumerate() {
        let at = |e: String| DecodeError::new(format!("span {index}: {e}"));
        let object = match item {
            Value::Object(object) => object,
            // The collector dereferences a null span and panics; refused here.
            other => return Err(at(format!("is {}, not an object", json_type(&other)))),
        };
        let (span, endpoint) = convert(&object, options, now_unix_nano).map_err(at)?;
        let slot = *by_endpoint.entry(endpoint.clone()).or_insert_with(|| {
            resource_spans.push(new_resource_spans(&endpoint));
            resource_spans.len() - 1
        });
        if let Some(ss) = resource_spans
            .get_mut(slot)
            .and_then(|rs| rs.scope_spans.first_mut())
        {
            ss.spans.push(span);
        }
    }
    Ok(ExportTraceServiceRequest { resource_spans })
}

/// `getOrCreateNodeRequest`: `service.name`, then `ipv4`, `ipv6`, `port` (a string) when set.
fn new_resource_spans(endpoint: &Endpoint) -> ResourceSpans {
    let mut attributes = Attributes::default();
    attributes.put("service.name", string_value(endpoint.service_name.as_str()));
    if !endpoint.ipv4.is_empty() {
        attributes.put("ipv4", string_value(endpoint.ipv4.as_str()));
    }
    if !endpoint.ipv6.is_empty() {
        attributes.put("ipv6", string_value(endpoint.ipv6.as_str()));
    }
    if endpoint.port != 0 {
        attributes.put("port", string_value(endpoint.port.to_string()));
    }
    ResourceSpans {
        resource: Some(Resource {
            attributes: attributes.into_vec(),
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope::default()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn string(name: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        other => Err(format!(
            "{name}: expected a string, found {}",
            json_type(other)
        )),
    }
}

/// An `int64` (or `int32`) field: an integer literal in range; `null` is 0.
fn integer<T: TryFrom<i64>>(name: &str, value: &Value) -> Result<T, String> {
    let n = match value {
        Value::Null => 0,
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("{name}: {n} is not an integer in range"))?,
        other => {
            return Err(format!(
                "{name}: expected an integer, found {}",
                json_type(other)
            ))
        }
    };
    T::try_from(n).map_err(|_| format!("{name}: {n} is out of range"))
}

fn array<'a>(name: &str, value: &'a Value) -> Result<&'a [Value], String> {
    match value {
        Value::Null => Ok(&[]),
        Value::Array(items) => Ok(items),
        other => Err(format!(
            "{name}: expected an array, found {}",
            json_type(other)
        )),
    }
}

fn endpoint(name: &str, value: &Value) -> Result<Option<Endpoint>, String> {
    let object = match value {
        Value::Null => return Ok(None),
        Value::Object(object) => object,
        other => {
            return Err(format!(
                "{name}: expected an object, found {}",
                json_type(other)
            ))
        }
    };
    let mut endpoint = Endpoint::default();
    for (key, value) in object {
        match field(key, &["serviceName", "ipv4", "ipv6", "port"]) {
            Some("serviceName") => {
                endpoint.service_name = string(&format!("{name}.serviceName"), value)?
            }
            Some("ipv4") => endpoint.ipv4 = string(&format!("{name}.ipv4"), value)?,
            Some("ipv6") => endpoint.ipv6 = string(&format!("{name}.ipv6"), value)?,
            Some("port") => endpoint.port = integer(&format!("{name}.port"), value)?,
            _ => {}
        }
    }
    Ok(Some(endpoint))
}

/// Epoch microseconds to nanoseconds; 0 or negative is 0 (`epochMicrosecondsToTimestamp`).
fn timestamp_ns(us: i64) -> Result<u64, String> {
    let Ok(us) = u64::try_from(us) else {
        return Ok(0);
    };
    us.checked_mul(1_000)
        .ok_or_else(|| format!("timestamp {us} microseconds overflows nanoseconds"))
}

#[derive(Default)]
struct V1Span {
    trace_id: String,
    id: String,
    parent_id: String,
    name: String,
    timestamp: i64,
    duration: i64,
}

/// `jsonToSpanAndEndpoint`.
fn convert(
    object: &Map<String, Value>,
    options: &Options,
    now_unix_nano: u64,
) -> Result<(Span, Endpoint), String> {
    let mut fields = V1Span::default();
    let mut annotations: &[Value] = &[];
    let mut binary_annotations: &[Value] = &[];
    for (key, value) in object {
        let names = [
            "traceId",
            "name",
            "parentId",
            "id",
            "timestamp",
            "duration",
            "debug",
            "annotations",
            "binaryAnnotations",
        ];
        match field(key, &names) {
            Some("traceId") => fields.trace_id = string("traceId", value)?,
            Some("name") => fields.name = string("name", value)?,
            Some("parentId") => fields.parent_id = string("parentId", value)?,
            Some("id") => fields.id = string("id", value)?,
            Some("timestamp") => fields.timestamp = integer("timestamp", value)?,
            Some("duration") => fields.duration = integer("duration", value)?,
            Some("debug") if !matches!(value, Value::Null | Value::Bool(_)) => {
                return Err(format!(
                    "debug: expected a boolean, found {}",
                    json_type(value)
                ));
            }
            Some("annotations") => annotations = array("annotations", value)?,
            Some("binaryAnnotations") => binary_annotations = array("binaryAnnotations", value)?,
            _ => {}
        }
    }

    let mut trace_id = [0u8; 16];
    match fields.trace_id.len() {
        16 => trace_id
            .get_mut(8..)
            .map_or(Ok(()), |low| parse_hex_exact(&fields.trace_id, low)),
        32 => parse_hex_exact(&fields.trace_id, &mut trace_id),
        _ => Err("wrong length (expected 16 or 32 hex digits)".to_owned()),
    }
    .map_err(|e| format!("traceId {}: {e}", shown(&fields.trace_id)))?;
    if trace_id == [0; 16] {
        return Err(format!("traceId {}: is zero", shown(&fields.trace_id)));
    }
    let id = span_id(&fields.id).map_err(|e| format!("id {}: {e}", shown(&fields.id)))?;
    let parent_id = if fields.parent_id.is_empty() {
        [0; 8]
    } else {
        span_id(&fields.parent_id)
            .map_err(|e| format!("parentId {}: {e}", shown(&fields.parent_id)))?
    };

    let (mut span, mut endpoint) = from_annotations(annotations)?;
    let fallback_service_name = from_binary_annotations(&mut span, binary_annotations, options)?;
    if endpoint.service_name == UNKNOWN_SERVICE_NAME && !fallback_service_name.is_empty() {
        endpoint.service_name = fallback_service_name;
    }
    if fields.timestamp != 0 {
        span.start_time_unix_nano = timestamp_ns(fields.timestamp)?;
        let end = fields
            .timestamp
            .checked_add(fields.duration)
            .ok_or_else(|| {
                format!(
                    "timestamp {} + duration {} overflows",
                    fields.timestamp, fields.duration
                )
            })?;
        span.end_time_unix_nano = timestamp_ns(end)?;
    }
    span.name = fields.name;
    span.trace_id = id_bytes(&trace_id);
    span.span_id = id_bytes(&id);
    span.parent_span_id = id_bytes(&parent_id);
    // setTimestampsIfUnset: the collector stamps a span with no start time with "now".
    if span.start_time_unix_nano == 0 {
        span.start_time_unix_nano = now_unix_nano;
        span.end_time_unix_nano = now_unix_nano;
        let mut attributes = Attributes::from_vec(std::mem::take(&mut span.attributes));
        attributes.put(ATTR_START_TIME_ABSENT, AttrValue::BoolValue(true));
        span.attributes = attributes.into_vec();
    }
    Ok((span, endpoint))
}

/// `jsonAnnotationsToSpanAndEndpoint`: kind from the first of cs/cr/ms/mr/ss/sr, the endpoint
/// from the first of those naming a service, start and end from the earliest and latest
/// annotation, and the other annotations as events.
fn from_annotations(annotations: &[Value]) -> Result<(Span, Endpoint), String> {
    let mut span = Span {
        status: Some(Status::default()),
        ..Default::default()
    };
    let mut chosen: Option<Endpoint> = None;
    let mut kind_is_set = false;
    let mut earliest = i64::MAX;
    let mut latest = i64::MIN;
    for (j, item) in annotations.iter().enumerate() {
        let at = |e: String| format!("annotation {j}: {e}");
        let object = match item {
            Value::Null => continue,
            Value::Object(object) => object,
            other => {
                return Err(at(format!(
                    "expected an object, found {}",
                    json_type(other)
                )))
            }
        };
        let mut timestamp = 0i64;
        let mut value = String::new();
        let mut annotation_endpoint = None;
        for (key, field_value) in object {
            match field(key, &["timestamp", "value", "endpoint"]) {
                Some("timestamp") => timestamp = integer("timestamp", field_value).map_err(at)?,
                Some("value") => value = string("value", field_value).map_err(at)?,
                Some("endpoint") => {
                    annotation_endpoint = endpoint("endpoint", field_value).map_err(at)?;
                }
                _ => {}
            }
        }
        if value.is_empty() {
            continue;
        }
        let has_service = annotation_endpoint
            .as_ref()
            .is_some_and(|e| !e.service_name.is_empty() && e.service_name != UNKNOWN_SERVICE_NAME);
        let kind = match value.as_str() {
            "cs" | "cr" => Some(SpanKind::Client),
            "ms" => Some(SpanKind::Producer),
            "mr" => Some(SpanKind::Consumer),
            "ss" | "sr" => Some(SpanKind::Server),
            _ => None,
        };
        if chosen.is_none() && has_service && kind.is_some() {
            chosen = annotation_endpoint;
        }
        if let (false, Some(kind)) = (kind_is_set, kind) {
            span.kind = kind as i32;
            kind_is_set = true;
        }
        let ts = timestamp_ns(timestamp).map_err(at)?;
        if timestamp < earliest {
            earliest = timestamp;
            span.start_time_unix_nano = ts;
        }
        if timestamp > latest {
            latest = timestamp;
            span.end_time_unix_nano = ts;
        }
        if kind.is_none() {
            span.events.push(Event {
                time_unix_nano: ts,
                name: value,
                ..Default::default()
            });
        }
    }
    let endpoint = chosen.unwrap_or_else(|| Endpoint {
        service_name: UNKNOWN_SERVICE_NAME.to_owned(),
        ..Default::default()
    });
    Ok((span, endpoint))
}

/// `jsonBinAnnotationsToSpanAttributes`: binary annotations (string values only, as the
/// collector's struct has it) become attributes, `lc` renamed `component`; status tags are
/// consumed by the [`StatusMapper`]. Returns the fallback service name: the last binary
/// annotation endpoint's service, else the `lc` value.
fn from_binary_annotations(
    span: &mut Span,
    binary_annotations: &[Value],
    options: &Options,
) -> Result<String, String> {
    let mut fallback_service_name = String::new();
    let mut local_component = String::new();
    let mut mapper = StatusMapper::default();
    let mut attributes = Attributes::default();
    for (j, item) in binary_annotations.iter().enumerate() {
        let at = |e: String| format!("binaryAnnotation {j}: {e}");
        let object = match item {
            Value::Object(object) => object,
            // The collector dereferences a null binary annotation and panics; refused here.
            other => {
                return Err(at(format!(
                    "expected an object, found {}",
                    json_type(other)
                )))
            }
        };
        let mut key = String::new();
        let mut value = String::new();
        for (field_key, field_value) in object {
            match field(field_key, &["key", "value", "endpoint"]) {
                Some("key") => key = string("key", field_value).map_err(at)?,
                Some("value") => {
                    value = string("value", field_value).map_err(|e| {
                        at(format!(
                            "{e} (the collector takes string values only; key {})",
                            shown(&key)
                        ))
                    })?;
                }
                Some("endpoint") => {
                    if let Some(e) = endpoint("endpoint", field_value).map_err(at)? {
                        if !e.service_name.is_empty() {
                            fallback_service_name = e.service_name;
                        }
                    }
                }
                _ => {}
            }
        }
        if key == "lc" {
            key = "component".to_owned();
            local_component.clone_from(&value);
        }
        let value = tag_value(&value, options.parse_string_tags);
        if mapper.consume(&key, &value) {
            continue;
        }
        attributes.put(&key, value);
    }
    if fallback_service_name.is_empty() {
        fallback_service_name = local_component;
    }
    span.attributes = attributes.into_vec();
    span.status = Some(mapper.status());
    Ok(fallback_service_name)
}

#[derive(Default, Clone)]
struct StatusFrom {
    code: Option<i32>,
    message: String,
}

/// `statusMapper`: status from `census.status_code`, else `otel.status_code`, else `error`,
/// else `http.status_code`.
#[derive(Default)]
struct StatusMapper {
    census: StatusFrom,
    otel: StatusFrom,
    http: StatusFrom,
    error_tag: StatusFrom,
}

impl StatusMapper {
    /// Records a status tag; true if the tag is consumed (not kept as an attribute).
    fn consume(&mut self, key: &str, value: &AttrValue) -> bool {
        let text = match value {
            AttrValue::StringValue(s) => s.clone(),
            _ => String::new(),
        };
        match key {
            "census.status_code" => {
                if let Some(code) = status_code_int(value) {
                    let otel = if code == 0 {
                        StatusCode::Ok
                    } else {
                        StatusCode::Error
                    };
                    self.census.code = Some(otel as i32);
                }
                true
            }
            "census.status_description" | "opencensus.status_description" => {
                self.census.message = text;
                true
            }
            TAG_STATUS_CODE => {
                // Kept as is, even if not a known code.
                if let Some(code) = status_code_int(value) {
                    self.otel.code = Some(code);
                }
                true
            }
            TAG_STATUS_DESCRIPTION => {
                self.otel.message = text;
                true
            }
            "http.status_code" => {
                if let Some(code) = status_code_int(value) {
                    let otel = if (100..400).contains(&code) {
                        StatusCode::Unset
                    } else {
                        StatusCode::Error
                    };
                    self.http.code = Some(otel as i32);
                }
                false
            }
            "http.status_message" => {
                self.http.message = text;
                false
            }
            TAG_ERROR => {
                self.error_tag.code = Some(StatusCode::Error as i32);
                true
            }
            _ => false,
        }
    }

    fn status(self) -> Status {
        let chosen = if self.census.code.is_some() {
            self.census
        } else if self.otel.code.is_some() {
            self.otel
        } else if self.error_tag.code.is_some() {
            let message = if !self.census.message.is_empty() {
                self.census.message
            } else {
                self.otel.message
            };
            StatusFrom {
                code: self.error_tag.code,
                message,
            }
        } else {
            self.http
        };
        match chosen.code {
            Some(code) => Status {
                code,
                message: chosen.message,
            },
            None => Status::default(),
        }
    }
}

/// `attribToStatusCode`: an int, or a string holding a base-10 int, within int32.
fn status_code_int(value: &AttrValue) -> Option<i32> {
    let n = match value {
        AttrValue::IntValue(n) => *n,
        AttrValue::StringValue(s) => s.parse::<i64>().ok()?,
        _ => return None,
    };
    i32::try_from(n).ok()
}

fn span_id(text: &str) -> Result<[u8; 8], String> {
    let mut id = [0u8; 8];
    parse_hex_exact(text, &mut id)
        .map_err(|_| "wrong length or not hex (expected 16 hex digits)".to_owned())?;
    if id == [0; 8] {
        return Err("is zero".to_owned());
    }
    Ok(id)
}

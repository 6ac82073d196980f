//! The Zipkin v2 span model both v2 encodings decode into, and its translation to OTLP as the
//! collector's `zipkinv2.ToTranslator` (v0.116.0, `to_translator.go`) does it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, InstrumentationScope};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span::{Event, Link, SpanKind},
    status::StatusCode,
    ResourceSpans, ScopeSpans, Span, Status,
};

use super::common::{id_bytes, parse_hex_exact, shown, string_value, tag_value, Attributes};
use super::Options;
use crate::DecodeError;

/// `tracetranslator.ResourceNoServiceName`: the service of a span with no local service name.
/// Its resource gets no attributes at all.
pub(super) const NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";

/// Tags that become resource attributes (when on the first span of a resource) and are never
/// span attributes: semconv v1.6.1 `GetResourceSemanticConventionAttributeNames()` plus the
/// OpenCensus keys the collector adds, in that list's order.
const RESOURCE_TAGS: [&str; 85] = [
    "cloud.provider",
    "cloud.account.id",
    "cloud.region",
    "cloud.availability_zone",
    "cloud.platform",
    "aws.ecs.container.arn",
    "aws.ecs.cluster.arn",
    "aws.ecs.launchtype",
    "aws.ecs.task.arn",
    "aws.ecs.task.family",
    "aws.ecs.task.revision",
    "aws.eks.cluster.arn",
    "aws.log.group.names",
    "aws.log.group.arns",
    "aws.log.stream.names",
    "aws.log.stream.arns",
    "container.name",
    "container.id",
    "container.runtime",
    "container.image.name",
    "container.image.tag",
    "deployment.environment",
    "device.id",
    "device.model.identifier",
    "device.model.name",
    "faas.name",
    "faas.id",
    "faas.version",
    "faas.instance",
    "faas.max_memory",
    "host.id",
    "host.name",
    "host.type",
    "host.arch",
    "host.image.name",
    "host.image.id",
    "host.image.version",
    "k8s.cluster.name",
    "k8s.node.name",
    "k8s.node.uid",
    "k8s.namespace.name",
    "k8s.pod.uid",
    "k8s.pod.name",
    "k8s.container.name",
    "k8s.replicaset.uid",
    "k8s.replicaset.name",
    "k8s.deployment.uid",
    "k8s.deployment.name",
    "k8s.statefulset.uid",
    "k8s.statefulset.name",
    "k8s.daemonset.uid",
    "k8s.daemonset.name",
    "k8s.job.uid",
    "k8s.job.name",
    "k8s.cronjob.uid",
    "k8s.cronjob.name",
    "os.type",
    "os.description",
    "os.name",
    "os.version",
    "process.pid",
    "process.executable.name",
    "process.executable.path",
    "process.command",
    "process.command_line",
    "process.command_args",
    "process.owner",
    "process.runtime.name",
    "process.runtime.version",
    "process.runtime.description",
    "service.name",
    "service.namespace",
    "service.instance.id",
    "service.version",
    "telemetry.sdk.name",
    "telemetry.sdk.language",
    "telemetry.sdk.version",
    "telemetry.auto.version",
    "webengine.name",
    "webengine.version",
    "webengine.description",
    "opencensus.starttime",
    "opencensus.exporterversion",
    "opencensus.resourcetype",
    // process.pid is in the semconv list already; the collector adds it twice.
    "process.pid",
];

pub(super) const TAG_SERVICE_NAME_SOURCE: &str = "otlp.service.name.source";
pub(super) const TAG_LIBRARY_NAME: &str = "otel.library.name";
pub(super) const TAG_LIBRARY_VERSION: &str = "otel.library.version";
pub(super) const TAG_STATUS_CODE: &str = "otel.status_code";
pub(super) const TAG_STATUS_DESCRIPTION: &str = "otel.status_description";
pub(super) const TAG_ERROR: &str = "error";
const TAG_SPAN_KIND: &str = "span.kind";
const TAG_TRACE_STATE: &str = "w3c.tracestate";
pub(super) const ATTR_START_TIME_ABSENT: &str = "otel.zipkin.absentField.startTime";
/// `zTagsToSpanLinks` reads `otlp.link.0` up to this (exclusive), stopping at the first gap.
const LINK_TAGS_MAX: usize = 128;

fn is_non_span_attribute(key: &str) -> bool {
    key == TAG_SERVICE_NAME_SOURCE
        || key == TAG_LIBRARY_NAME
        || key == TAG_LIBRARY_VERSION
        || RESOURCE_TAGS.contains(&key)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Unspecified,
    Client,
    Server,
    Producer,
    Consumer,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Endpoint {
    pub service_name: String,
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Annotation {
    pub timestamp_us: u64,
    pub value: String,
}

/// One decoded Zipkin v2 span, IDs checked.
#[derive(Debug, Clone)]
pub(super) struct ZipkinSpan {
    /// Position in the request, for error messages.
    pub index: usize,
    pub trace_id: [u8; 16],
    pub id: [u8; 8],
    pub parent_id: Option<[u8; 8]>,
    pub name: String,
    pub kind: Kind,
    pub timestamp_us: u64,
    /// JSON `timestamp` absent or 0: the span starts at 0 and gets
    /// `otel.zipkin.absentField.startTime = true` (protobuf has no such marker).
    pub timestamp_absent: bool,
    pub duration_us: u64,
    pub local_endpoint: Option<Endpoint>,
    pub remote_endpoint: Option<Endpoint>,
    pub annotations: Vec<Annotation>,
    pub tags: BTreeMap<String, String>,
}

impl ZipkinSpan {
    fn local_service_name(&self) -> &str {
        match &self.local_endpoint {
            Some(e) if !e.service_name.is_empty() => &e.service_name,
            _ => NO_SERVICE_NAME,
        }
    }

    fn library_name(&self) -> &str {
        self.tags.get(TAG_LIBRARY_NAME).map_or("", String::as_str)
    }
}

/// Go's `net.IP.String()`: an IPv4-mapped IPv6 address prints as IPv4.
pub(super) fn ip_string(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// `ToTraces`: sorts by (local service, `otel.library.name`), then opens a `ResourceSpans` per
/// service and a `ScopeSpans` per library within it.
pub(super) fn to_otlp(
    mut spans: Vec<ZipkinSpan>,
    options: &Options,
) -> Result<ExportTraceServiceRequest, DecodeError> {
    // The collector's sort.Sort is unstable; a stable sort keeps request order within a group.
    spans.sort_by(|a, b| {
        (a.local_service_name(), a.library_name()).cmp(&(b.local_service_name(), b.library_name()))
    });
    let mut resource_spans = Vec::new();
    let mut current_resource: Option<(String, ResourceSpans)> = None;
    let mut current_scope: Option<(String, ScopeSpans)> = None;
    for span in spans {
        let service = span.local_service_name().to_owned();
        let library = span.library_name().to_owned();
        let mut tags = span.tags.clone();
        let new_resource = current_resource.as_ref().is_none_or(|(s, _)| *s != service);
        if new_resource {
            flush_scope(&mut current_scope, &mut current_resource);
            if let Some((_, rs)) = current_resource.take() {
                resource_spans.push(rs);
            }
            let resource = resource_from_tags(&mut tags, &service);
            current_resource = Some((
                service,
                ResourceSpans {
                    resource: Some(resource),
                    ..Default::default()
                },
            ));
        }
        if new_resource || current_scope.as_ref().is_none_or(|(l, _)| *l != library) {
            flush_scope(&mut current_scope, &mut current_resource);
            let scope = scope_from_tags(&mut tags, &library);
            current_scope = Some((
                library,
                ScopeSpans {
                    scope: Some(scope),
                    ..Default::default()
                },
            ));
        }
        let otlp_span = span_to_otlp(&span, tags, options)?;
        if let Some((_, ss)) = current_scope.as_mut() {
            ss.spans.push(otlp_span);
        }
    }
    flush_scope(&mut current_scope, &mut current_resource);
    if let Some((_, rs)) = current_resource.take() {
        resource_spans.push(rs);
    }
    Ok(ExportTraceServiceRequest { resource_spans })
}

fn flush_scope(
    scope: &mut Option<(String, ScopeSpans)>,
    resource: &mut Option<(String, ResourceSpans)>,
) {
    if let (Some((_, ss)), Some((_, rs))) = (scope.take(), resource.as_mut()) {
        rs.scope_spans.push(ss);
    }
}

/// `populateResourceFromZipkinSpan`, from the first span of the resource.
fn resource_from_tags(tags: &mut BTreeMap<String, String>, service: &str) -> Resource {
    let mut attributes = Attributes::default();
    if service != NO_SERVICE_NAME {
        let key = match tags.remove(TAG_SERVICE_NAME_SOURCE) {
            Some(source) if !source.is_empty() => source,
            _ => "service.name".to_owned(),
        };
        attributes.put(&key, string_value(service));
        for key in RESOURCE_TAGS {
            if let Some(value) = tags.remove(key) {
                attributes.put(key, string_value(value));
            }
        }
    }
    Resource {
        attributes: attributes.into_vec(),
        ..Default::default()
    }
}

/// `populateILFromZipkinSpan`, from the first span of the scope.
fn scope_from_tags(tags: &mut BTreeMap<String, String>, library: &str) -> InstrumentationScope {
    let mut scope = InstrumentationScope::default();
    if !library.is_empty() {
        scope.name = tags.remove(TAG_LIBRARY_NAME).unwrap_or_default();
        scope.version = tags.remove(TAG_LIBRARY_VERSION).unwrap_or_default();
    }
    scope
}

fn status_code_value(text: &str) -> StatusCode {
    match text {
        "STATUS_CODE_OK" | "Ok" => StatusCode::Ok,
        "STATUS_CODE_ERROR" | "Error" => StatusCode::Error,
        _ => StatusCode::Unset,
    }
}

/// `zSpanToInternal`.
fn span_to_otlp(
    span: &ZipkinSpan,
    mut tags: BTreeMap<String, String>,
    options: &Options,
) -> Result<Span, DecodeError> {
    let at = |what: String| DecodeError::new(format!("span {}: {what}", span.index));
    let trace_state = tags.remove(TAG_TRACE_STATE).unwrap_or_default();
    let parent_span_id = match span.parent_id {
        Some(parent) if parent != span.id => id_bytes(&parent),
        _ => Vec::new(),
    };
    let kind = match span.kind {
        Kind::Client => SpanKind::Client,
        Kind::Server => SpanKind::Server,
        Kind::Producer => SpanKind::Producer,
        Kind::Consumer => SpanKind::Consumer,
        Kind::Unspecified => match tags.remove(TAG_SPAN_KIND).as_deref() {
            Some("internal") => SpanKind::Internal,
            _ => SpanKind::Unspecified,
        },
    };

    let mut status = Status::default();
    if let Some(code) = tags.remove(TAG_STATUS_CODE) {
        status.code = status_code_value(&code) as i32;
        if let Some(description) = tags.remove(TAG_STATUS_DESCRIPTION) {
            status.message = description;
        }
    }
    if let Some(error) = tags.get(TAG_ERROR) {
        status.code = StatusCode::Error as i32;
        if error == "true" {
            tags.remove(TAG_ERROR);
        }
    }

    let mut links = Vec::new();
    for i in 0..LINK_TAGS_MAX {
        let key = format!("otlp.link.{i}");
        let Some(value) = tags.remove(&key) else {
            break;
        };
        if let Some(link) = parse_link(&value).map_err(|e| at(format!("tag {key}: {e}")))? {
            links.push(link);
        }
    }

    let mut attributes = Attributes::default();
    for (key, value) in &tags {
        if !is_non_span_attribute(key) {
            attributes.put(key, tag_value(value, options.parse_string_tags));
        }
    }
    if let Some(local) = &span.local_endpoint {
        for ip in [&local.ipv4, &local.ipv6].into_iter().flatten() {
            attributes.put("net.host.ip", string_value(ip_string(ip)));
        }
        if local.port > 0 {
            attributes.put("net.host.port", Value::IntValue(i64::from(local.port)));
        }
    }
    if let Some(remote) = &span.remote_endpoint {
        if !remote.service_name.is_empty() {
            attributes.put("peer.service", string_value(remote.service_name.as_str()));
        }
        for ip in [&remote.ipv4, &remote.ipv6].into_iter().flatten() {
            attributes.put("net.peer.ip", string_value(ip_string(ip)));
        }
        if remote.port > 0 {
            attributes.put("net.peer.port", Value::IntValue(i64::from(remote.port)));
        }
    }

    let start = super::common::us_to_ns(span.timestamp_us);
    let duration = super::common::us_to_ns(span.duration_us);
    let (start_time_unix_nano, end_time_unix_nano) = match (
        start,
        duration,
        start.zip(duration).and_then(|(s, d)| s.checked_add(d)),
    ) {
        (Some(start), Some(_), Some(end)) => (start, end),
        _ => {
            return Err(at(format!(
                "timestamp {} + duration {} microseconds overflows nanoseconds",
                span.timestamp_us, span.duration_us
            )))
        }
    };
    if span.timestamp_absent {
        attributes.put(ATTR_START_TIME_ABSENT, Value::BoolValue(true));
    }

    let mut events = Vec::with_capacity(span.annotations.len());
    for (j, annotation) in span.annotations.iter().enumerate() {
        let event = parse_event(annotation).map_err(|e| {
            at(format!(
                "annotation {j} value {}: {e}",
                shown(&annotation.value)
            ))
        })?;
        events.push(event);
    }

    Ok(Span {
        trace_id: id_bytes(&span.trace_id),
        span_id: id_bytes(&span.id),
        trace_state,
        parent_span_id,
        name: span.name.clone(),
        kind: kind as i32,
        start_time_unix_nano,
        end_time_unix_nano,
        attributes: attributes.into_vec(),
        events,
        links,
        status: Some(status),
        ..Default::default()
    })
}

/// `populateSpanEvents`: the name is the text before the first `|`; a value of 3 or more
/// `|`-separated parts is `name|{json attributes}|dropped count`, as the collector's own Zipkin
/// exporter writes it.
fn parse_event(annotation: &Annotation) -> Result<Event, String> {
    let time_unix_nano = super::common::us_to_ns(annotation.timestamp_us).ok_or_else(|| {
        format!(
            "timestamp {} microseconds overflows nanoseconds",
            annotation.timestamp_us
        )
    })?;
    let parts: Vec<&str> = annotation.value.split('|').collect();
    let mut event = Event {
        time_unix_nano,
        name: parts.first().copied().unwrap_or_default().to_owned(),
        ..Default::default()
    };
    if let [_, middle @ .., last] = parts.as_slice() {
        if !middle.is_empty() {
            event.attributes = json_attributes(&middle.join("|"))?;
            event.dropped_attributes_count = parse_dropped(last)?;
        }
    }
    Ok(event)
}

/// `zTagsToSpanLinks`: `traceId|spanId|traceState|{json attributes}|dropped count`; fewer than
/// five parts and the tag is dropped.
fn parse_link(value: &str) -> Result<Option<Link>, String> {
    let parts: Vec<&str> = value.split('|').collect();
    let [trace_id, span_id, trace_state, middle @ .., dropped] = parts.as_slice() else {
        return Ok(None);
    };
    if middle.is_empty() {
        return Ok(None);
    }
    let mut trace = [0u8; 16];
    link_id(trace_id, &mut trace).map_err(|e| format!("trace ID {}: {e}", shown(trace_id)))?;
    let mut span = [0u8; 8];
    link_id(span_id, &mut span).map_err(|e| format!("span ID {}: {e}", shown(span_id)))?;
    Ok(Some(Link {
        trace_id: id_bytes(&trace),
        span_id: id_bytes(&span),
        trace_state: (*trace_state).to_owned(),
        attributes: json_attributes(&middle.join("|"))?,
        dropped_attributes_count: parse_dropped(dropped)?,
        ..Default::default()
    }))
}

/// The collector's `unmarshalJSON` for link IDs: optional surrounding quotes; empty is zero.
fn link_id(text: &str, out: &mut [u8]) -> Result<(), String> {
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    if text.is_empty() {
        return Ok(());
    }
    parse_hex_exact(text, out)
}

/// `strconv.ParseUint(s, 10, 32)`.
fn parse_dropped(text: &str) -> Result<u32, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "dropped attributes count {} is not a number",
            shown(text)
        ));
    }
    text.parse()
        .map_err(|_| format!("dropped attributes count {} is out of range", shown(text)))
}

/// `jsonMapToAttributeMap`: strings, numbers (integral ones as ints) and booleans; other
/// values are skipped, `null` is no attributes.
fn json_attributes(
    text: &str,
) -> Result<Vec<opentelemetry_proto::tonic::common::v1::KeyValue>, String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("attributes {} are not JSON: {e}", shown(text)))?;
    let object = match value {
        serde_json::Value::Null => return Ok(Vec::new()),
        serde_json::Value::Object(object) => object,
        other => {
            return Err(format!(
                "attributes are {}, not a JSON object",
                super::common::json_type(&other)
            ))
        }
    };
    let mut attributes = Attributes::default();
    for (key, value) in object {
        let value = match value {
            serde_json::Value::String(s) => string_value(s),
            serde_json::Value::Bool(b) => Value::BoolValue(b),
            serde_json::Value::Number(n) => match n.as_f64() {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "Go's int64(float64): integral by the check, saturating out of range"
                )]
                Some(d) if d.fract() == 0.0 => Value::IntValue(d as i64),
                Some(d) => Value::DoubleValue(d),
                None => continue,
            },
            _ => continue,
        };
        attributes.put(&key, value);
    }
    Ok(attributes.into_vec())
}

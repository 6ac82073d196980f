//! The Jaeger span model both wire formats decode into, and its translation to OTLP the way the
//! collector's `pkg/translator/jaeger` does it (`jaegerthrift_to_traces.go`,
//! `jaegerproto_to_traces.go`, v0.116 era).
//!
//! Attributes are built through [`AttrMap`], which copies `pcommon.Map` semantics exactly:
//! a put on an existing key replaces its value in place, and a remove swaps the last entry
//! into the removed slot. So attribute order matches what the collector hands Tempo.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};

/// `tracetranslator.TagSpanKind`.
pub(crate) const TAG_SPAN_KIND: &str = "span.kind";
/// `tracetranslator.TagError`.
pub(crate) const TAG_ERROR: &str = "error";
/// `tracetranslator.TagHTTPStatusMsg`.
pub(crate) const TAG_HTTP_STATUS_MSG: &str = "http.status_message";
/// `tracetranslator.TagW3CTraceState`.
pub(crate) const TAG_W3C_TRACE_STATE: &str = "w3c.tracestate";
/// `conventions.OtelStatusCode`.
pub(crate) const TAG_OTEL_STATUS_CODE: &str = "otel.status_code";
/// `conventions.OtelStatusDescription`.
pub(crate) const TAG_OTEL_STATUS_DESCRIPTION: &str = "otel.status_description";
/// `conventions.AttributeHTTPStatusCode`.
pub(crate) const TAG_HTTP_STATUS_CODE: &str = "http.status_code";
/// `conventions.AttributeOtelScopeName` (proto only).
pub(crate) const TAG_OTEL_SCOPE_NAME: &str = "otel.scope.name";
/// `conventions.AttributeOtelScopeVersion` (proto only).
pub(crate) const TAG_OTEL_SCOPE_VERSION: &str = "otel.scope.version";
/// The log field whose value names the event (`eventNameAttr`).
pub(crate) const LOG_FIELD_EVENT: &str = "event";
/// `tracetranslator.ResourceNoServiceName`: a proto process with this service name gives an
/// empty resource (its tags are dropped too).
pub(crate) const RESOURCE_NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";
pub(crate) const ATTR_SERVICE_NAME: &str = "service.name";
pub(crate) const ATTR_HOST_NAME: &str = "host.name";
pub(crate) const ATTR_EXPORTER_VERSION: &str = "opencensus.exporterversion";
pub(crate) const ATTR_REF_TYPE: &str = "opentracing.ref_type";

/// OTLP `Status.code` values.
const STATUS_UNSET: i32 = 0;
const STATUS_OK: i32 = 1;
const STATUS_ERROR: i32 = 2;

/// OTLP `Span.kind` values.
const KIND_UNSPECIFIED: i32 = 0;
const KIND_INTERNAL: i32 = 1;
const KIND_SERVER: i32 = 2;
const KIND_CLIENT: i32 = 3;
const KIND_PRODUCER: i32 = 4;
const KIND_CONSUMER: i32 = 5;

/// A tag (thrift `Tag`, proto `KeyValue`) with its value already chosen by its type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tag {
    pub key: String,
    pub value: TagValue,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TagValue {
    Str(String),
    Bool(bool),
    Long(i64),
    Double(f64),
    Binary(Vec<u8>),
    /// A type the collector does not know: it stores the string
    /// `<Unknown Jaeger TagType "NAME">`, NAME being Go's `String()` of the enum value.
    Unknown(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefType {
    ChildOf,
    FollowsFrom,
    /// Any other enum value: neither a parent candidate nor excluded from links; its link is
    /// labelled `follows_from`, as in the collector.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TraceId {
    pub high: u64,
    pub low: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpanRef {
    pub ref_type: RefType,
    pub trace_id: TraceId,
    pub span_id: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Log {
    pub time_unix_nano: u64,
    pub fields: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Process {
    pub service_name: String,
    pub tags: Vec<Tag>,
}

/// One span of either wire format, with times already in Unix nanoseconds (computed with Go's
/// wrapping arithmetic by the format's decoder).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JaegerSpan {
    pub trace_id: TraceId,
    pub span_id: u64,
    /// Thrift's explicit `parentSpanId`; 0 in proto (which has only references).
    pub parent_span_id: u64,
    pub operation_name: String,
    pub references: Vec<SpanRef>,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub tags: Vec<Tag>,
    pub logs: Vec<Log>,
}

/// Which collector translator to follow where the two differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `jaegerthrift_to_traces.go`: no trace state, no scope.
    Thrift,
    /// `jaegerproto_to_traces.go`: `w3c.tracestate` becomes the trace state.
    Proto,
}

/// `pcommon.Map` semantics over an OTLP attribute list.
#[derive(Debug, Default)]
pub(crate) struct AttrMap(pub Vec<KeyValue>);

impl AttrMap {
    pub fn get(&self, key: &str) -> Option<&any_value::Value> {
        self.0
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    /// `Value.Str()`: the string, or "" for a value of another type.
    pub fn get_str(&self, key: &str) -> Option<String> {
        self.get(key).map(value_str)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|kv| kv.key == key)
    }

    /// `Put*`: replace in place, or append.
    pub fn put(&mut self, key: &str, value: any_value::Value) {
        let value = Some(AnyValue { value: Some(value) });
        match self.0.iter_mut().find(|kv| kv.key == key) {
            Some(kv) => kv.value = value,
            None => self.0.push(KeyValue {
                key: key.to_owned(),
                value,
                ..Default::default()
            }),
        }
    }

    /// `Remove`: the last entry moves into the removed one's place.
    pub fn remove(&mut self, key: &str) {
        if let Some(index) = self.0.iter().position(|kv| kv.key == key) {
            self.0.swap_remove(index);
        }
    }

    pub fn put_tags(&mut self, tags: Vec<Tag>) {
        for tag in tags {
            let value = match tag.value {
                TagValue::Str(s) => any_value::Value::StringValue(s),
                TagValue::Bool(b) => any_value::Value::BoolValue(b),
                TagValue::Long(i) => any_value::Value::IntValue(i),
                TagValue::Double(d) => any_value::Value::DoubleValue(d),
                TagValue::Binary(b) => any_value::Value::BytesValue(b),
                TagValue::Unknown(type_name) => any_value::Value::StringValue(format!(
                    "<Unknown Jaeger TagType \"{type_name}\">"
                )),
            };
            self.put(&tag.key, value);
        }
    }
}

fn value_str(value: &any_value::Value) -> String {
    match value {
        any_value::Value::StringValue(s) => s.clone(),
        _ => String::new(),
    }
}

/// `idutils.UInt64ToTraceID`, encoded as pdata encodes it: an all-zero ID is empty bytes.
pub(crate) fn trace_id_bytes(id: TraceId) -> Vec<u8> {
    if id.high == 0 && id.low == 0 {
        return Vec::new();
    }
    let mut bytes = Vec::with_capacity(16);
    bytes.extend_from_slice(&id.high.to_be_bytes());
    bytes.extend_from_slice(&id.low.to_be_bytes());
    bytes
}

/// `idutils.UInt64ToSpanID`, encoded as pdata encodes it: a zero ID is empty bytes.
pub(crate) fn span_id_bytes(id: u64) -> Vec<u8> {
    if id == 0 {
        Vec::new()
    } else {
        id.to_be_bytes().to_vec()
    }
}

/// The resource of a process (`jThriftProcessToInternalResource` / `jProcessToInternalResource`).
pub(crate) fn resource(process: Option<Process>, dialect: Dialect) -> Resource {
    let mut attrs = AttrMap::default();
    if let Some(process) = process {
        let no_service =
            dialect == Dialect::Proto && process.service_name == RESOURCE_NO_SERVICE_NAME;
        if !no_service {
            if !process.service_name.is_empty() {
                attrs.put(
                    ATTR_SERVICE_NAME,
                    any_value::Value::StringValue(process.service_name),
                );
            }
            attrs.put_tags(process.tags);
            translate_hostname(&mut attrs);
            translate_jaeger_version(&mut attrs);
        }
    }
    Resource {
        attributes: attrs.0,
        ..Default::default()
    }
}

/// `translateHostnameAttr`: `hostname` becomes `host.name` unless that is already set.
fn translate_hostname(attrs: &mut AttrMap) {
    if attrs.contains(ATTR_HOST_NAME) {
        return;
    }
    if let Some(value) = attrs.get("hostname").cloned() {
        attrs.put(ATTR_HOST_NAME, value);
        attrs.remove("hostname");
    }
}

/// `translateJaegerVersionAttr`: `jaeger.version` V becomes `opencensus.exporterversion`
/// `Jaeger-V` unless that is already set.
fn translate_jaeger_version(attrs: &mut AttrMap) {
    if attrs.contains(ATTR_EXPORTER_VERSION) {
        return;
    }
    if let Some(version) = attrs.get_str("jaeger.version") {
        attrs.put(
            ATTR_EXPORTER_VERSION,
            any_value::Value::StringValue(format!("Jaeger-{version}")),
        );
        attrs.remove("jaeger.version");
    }
}

/// The parent span ID: thrift's explicit `parentSpanId` if non-zero, else (jaeger
/// `model.Span.ParentSpanID`) the first CHILD_OF reference into the same trace, else the first
/// FOLLOWS_FROM reference into the same trace, else 0.
fn parent_span_id(span: &JaegerSpan) -> u64 {
    if span.parent_span_id != 0 {
        return span.parent_span_id;
    }
    let mut follows_from = None;
    for reference in span
        .references
        .iter()
        .filter(|r| r.trace_id == span.trace_id)
    {
        match reference.ref_type {
            RefType::ChildOf => return reference.span_id,
            RefType::FollowsFrom if follows_from.is_none() => {
                follows_from = Some(reference.span_id)
            }
            _ => {}
        }
    }
    follows_from.unwrap_or(0)
}

/// `jSpanKindToInternal`.
fn span_kind(kind: &str) -> i32 {
    match kind {
        "client" => KIND_CLIENT,
        "server" => KIND_SERVER,
        "producer" => KIND_PRODUCER,
        "consumer" => KIND_CONSUMER,
        "internal" => KIND_INTERNAL,
        _ => KIND_UNSPECIFIED,
    }
}

/// `setInternalSpanStatus`: the status from `error`, `otel.status_code`,
/// `otel.status_description`, `http.status_code` and `http.status_message`, removing the tags
/// the collector removes. `None` when the collector leaves the status untouched.
fn status(attrs: &mut AttrMap, kind: i32) -> Option<Status> {
    let mut code = STATUS_UNSET;
    let mut message = String::new();
    let mut exists = false;

    if let Some(any_value::Value::BoolValue(true)) = attrs.get(TAG_ERROR) {
        code = STATUS_ERROR;
        attrs.remove(TAG_ERROR);
        exists = true;
        if let Some(desc) = take_status_description(attrs) {
            message = desc;
        } else if let Some(msg) = attrs.get_str(TAG_HTTP_STATUS_MSG) {
            message = msg;
        }
    }

    if let Some(otel_code) = attrs.get_str(TAG_OTEL_STATUS_CODE) {
        if !exists {
            // The error tag is the ultimate truth; otel.status_code only counts without it.
            exists = true;
            if otel_code.eq_ignore_ascii_case("OK") {
                code = STATUS_OK;
            } else if otel_code.eq_ignore_ascii_case("ERROR") {
                code = STATUS_ERROR;
            }
            if let Some(desc) = take_status_description(attrs) {
                message = desc;
            }
        }
        attrs.remove(TAG_OTEL_STATUS_CODE);
    } else if !exists {
        if let Some(http_code) = attrs.get(TAG_HTTP_STATUS_CODE) {
            if let Some(http_code) = http_code_from_value(http_code) {
                let from_http = status_from_http(http_code, kind);
                if from_http != STATUS_UNSET {
                    exists = true;
                    code = from_http;
                }
                if let Some(msg) = attrs.get_str(TAG_HTTP_STATUS_MSG) {
                    message = msg;
                }
            }
        }
    }

    exists.then_some(Status { code, message })
}

fn take_status_description(attrs: &mut AttrMap) -> Option<String> {
    let desc = attrs.get_str(TAG_OTEL_STATUS_DESCRIPTION)?;
    attrs.remove(TAG_OTEL_STATUS_DESCRIPTION);
    Some(desc)
}

/// `codeFromAttr`: an int, or a string parsed as a base-10 `int64`; anything else is ignored.
fn http_code_from_value(value: &any_value::Value) -> Option<i64> {
    match value {
        any_value::Value::IntValue(i) => Some(*i),
        any_value::Value::StringValue(s) => s.parse::<i64>().ok(),
        _ => None,
    }
}

/// `getStatusCodeFromHTTPStatusAttr` + `tracetranslator.StatusCodeFromHTTP`: 4xx is an error
/// for a client and unset for a server; otherwise [100, 399) is unset and the rest an error.
fn status_from_http(code: i64, kind: i32) -> i32 {
    if (400..500).contains(&code) {
        match kind {
            KIND_CLIENT => return STATUS_ERROR,
            KIND_SERVER => return STATUS_UNSET,
            _ => {}
        }
    }
    if (100..399).contains(&code) {
        STATUS_UNSET
    } else {
        STATUS_ERROR
    }
}

/// One Jaeger span as the collector translates it (`jThriftSpanToInternal` / `jSpanToInternal`).
pub(crate) fn span(jaeger: JaegerSpan, dialect: Dialect) -> Span {
    let parent = parent_span_id(&jaeger);

    let mut attrs = AttrMap::default();
    attrs.put_tags(jaeger.tags);
    let mut kind = KIND_UNSPECIFIED;
    if let Some(kind_tag) = attrs.get_str(TAG_SPAN_KIND) {
        kind = span_kind(&kind_tag);
        attrs.remove(TAG_SPAN_KIND);
    }
    let status = status(&mut attrs, kind);

    let mut trace_state = String::new();
    if dialect == Dialect::Proto {
        if let Some(state) = attrs.get_str(TAG_W3C_TRACE_STATE) {
            trace_state = state;
            attrs.remove(TAG_W3C_TRACE_STATE);
        }
    }

    let events = jaeger
        .logs
        .into_iter()
        .map(|log| {
            let mut fields = AttrMap::default();
            fields.put_tags(log.fields);
            let mut name = String::new();
            if let Some(event) = fields.get_str(LOG_FIELD_EVENT) {
                name = event;
                fields.remove(LOG_FIELD_EVENT);
            }
            span::Event {
                time_unix_nano: log.time_unix_nano,
                name,
                attributes: fields.0,
                dropped_attributes_count: 0,
            }
        })
        .collect();

    // jThriftReferencesToSpanLinks / jReferencesToSpanLinks: every reference except the
    // CHILD_OF ones to the parent's span ID.
    let links = jaeger
        .references
        .into_iter()
        .filter(|r| !(r.span_id == parent && r.ref_type == RefType::ChildOf))
        .map(|r| {
            let ref_type = if r.ref_type == RefType::ChildOf {
                "child_of"
            } else {
                "follows_from"
            };
            span::Link {
                trace_id: trace_id_bytes(r.trace_id),
                span_id: span_id_bytes(r.span_id),
                attributes: vec![KeyValue {
                    key: ATTR_REF_TYPE.to_owned(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(ref_type.to_owned())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }
        })
        .collect();

    Span {
        trace_id: trace_id_bytes(jaeger.trace_id),
        span_id: span_id_bytes(jaeger.span_id),
        trace_state,
        parent_span_id: span_id_bytes(parent),
        name: jaeger.operation_name,
        kind,
        start_time_unix_nano: jaeger.start_unix_nano,
        end_time_unix_nano: jaeger.end_unix_nano,
        attributes: attrs.0,
        events,
        links,
        status: Some(status.unwrap_or_default()),
        ..Default::default()
    }
}

/// A scope's spans, to be appended to a [`ResourceSpans`].
pub(crate) fn scope_spans(name: String, version: String, spans: Vec<Span>) -> ScopeSpans {
    ScopeSpans {
        scope: Some(InstrumentationScope {
            name,
            version,
            ..Default::default()
        }),
        spans,
        schema_url: String::new(),
    }
}

pub(crate) fn resource_spans(resource: Resource, scope_spans: Vec<ScopeSpans>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(resource),
        scope_spans,
        schema_url: String::new(),
    }
}

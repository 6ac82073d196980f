//! OTLP/HTTP JSON: `POST /v1/traces` with `Content-Type: application/json`.
//!
//! [`decode`] maps a body holding the JSON form of `ExportTraceServiceRequest`
//! (<https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding>, which is the proto3 JSON
//! mapping with the OTLP exceptions below) to the prost structs. [`encode_response`] and
//! [`encode_status`] write the JSON answers: `ExportTraceServiceResponse` for a 200, and
//! `google.rpc.Status` for a 4xx/5xx.
//!
//! What is accepted:
//!
//! - Field names in lowerCamelCase (`startTimeUnixNano`) or as in the `.proto`
//!   (`start_time_unix_nano`). Giving one field under both names is an error. Unknown fields are
//!   ignored, whatever their value (the OTLP spec requires it). `null` means the field is absent;
//!   an element of a list may not be `null`.
//! - `traceId`, `spanId`, `parentSpanId` and the link ids: hex strings, any case (the OTLP
//!   exception: not base64). `""` means empty bytes; otherwise a trace id must be 16 bytes and a
//!   span id 8.
//! - Enums (`kind`, `status.code`): a number (any int32, kept as is since proto3 enums are open)
//!   or the value's name (`SPAN_KIND_SERVER`, `STATUS_CODE_ERROR`); an unknown name is an error.
//! - 64-bit integers (`startTimeUnixNano`, `intValue`, ...) and 32-bit ones (`flags`,
//!   `droppedAttributesCount`, ...): a JSON number or a string holding one, which must be integral
//!   (`1e3` and `"1e3"` are 1000) and in range for the field's type.
//! - `doubleValue`: a number, a string holding one, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
//! - `bytesValue`: base64, standard or URL-safe alphabet, padded or not.
//! - `boolValue`: `true` or `false` only; string fields: JSON strings only.
//! - `AnyValue` with at most one of its values set (`{}` is the empty value), nested through
//!   `arrayValue` and `kvlistValue`.
//! - The development fields (`Resource.entityRefs`, `KeyValue.keyStrindex`,
//!   `AnyValue.stringValueStrindex`) are decoded like the others; whoever uses the request
//!   decides to ignore them.
//!
//! Limits: nesting is bounded by serde_json's recursion limit of 128 ([`JSON_DEPTH_MAX`] levels
//! of arrays and objects are accepted, deeper input is an "invalid JSON" error), so the mapping,
//! which recurses once per level, is bounded too. Body size is the caller's limit. Keys repeated verbatim in one object: the last wins
//! (serde_json's behaviour).
//!
//! Errors name the JSON path and what was wrong, e.g.
//! `resourceSpans[0].scopeSpans[1].spans[3].traceId: invalid hex "zz..."`. No input panics.

#[cfg(test)]
mod tests;

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use serde_json::{Map, Number, Value};

use crate::{DecodeError, ExportTraceServiceRequest};

/// Bytes in a trace id (`traceId`, `links[].traceId`).
pub const TRACE_ID_BYTES: usize = 16;
/// Bytes in a span id (`spanId`, `parentSpanId`, `links[].spanId`).
pub const SPAN_ID_BYTES: usize = 8;
/// Levels of nested JSON arrays and objects accepted, the top-level object being the first:
/// fixed by serde_json's recursion limit of 128 (it refuses the 128th level), stated here so the
/// bound is written down; a test checks it.
pub const JSON_DEPTH_MAX: usize = 127;
/// Characters of a bad string value quoted in an error message.
const QUOTED_CHARS_MAX: usize = 48;

type Result<T> = std::result::Result<T, DecodeError>;

/// Decodes an OTLP/HTTP JSON `ExportTraceServiceRequest`. See the module doc for what is
/// accepted.
pub fn decode(body: &[u8]) -> Result<ExportTraceServiceRequest> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| DecodeError::new(format!("invalid JSON: {e}")))?;
    let path = Path::Root;
    let m = Msg::new(&value, &path)?;
    Ok(ExportTraceServiceRequest {
        resource_spans: m.repeated(("resourceSpans", "resource_spans"), resource_spans)?,
    })
}

/// The JSON `ExportTraceServiceResponse` for a 200: `{}` when everything was accepted, else
/// `{"partialSuccess":{"rejectedSpans":"5","errorMessage":"..."}}` (int64 as a string, zero and
/// empty fields left out).
pub fn encode_response(rejected_spans: i64, error_message: &str) -> Vec<u8> {
    if rejected_spans == 0 && error_message.is_empty() {
        return b"{}".to_vec();
    }
    let mut out = String::from(r#"{"partialSuccess":{"#);
    if rejected_spans != 0 {
        out.push_str(r#""rejectedSpans":""#);
        out.push_str(&rejected_spans.to_string());
        out.push('"');
    }
    if !error_message.is_empty() {
        if rejected_spans != 0 {
            out.push(',');
        }
        out.push_str(r#""errorMessage":"#);
        out.push_str(&json_string(error_message));
    }
    out.push_str("}}");
    out.into_bytes()
}

/// The JSON `google.rpc.Status` OTLP/HTTP answers with in a 4xx/5xx body to a JSON request:
/// `{"code":3,"message":"..."}`. Both fields are always written.
pub fn encode_status(code: i32, message: &str) -> Vec<u8> {
    format!(r#"{{"code":{code},"message":{}}}"#, json_string(message)).into_bytes()
}

fn json_string(s: &str) -> String {
    Value::from(s).to_string()
}

// --- Messages -------------------------------------------------------------------------------

fn resource_spans(value: &Value, path: &Path<'_>) -> Result<ResourceSpans> {
    let m = Msg::new(value, path)?;
    Ok(ResourceSpans {
        resource: m.message(("resource", "resource"), resource)?,
        scope_spans: m.repeated(("scopeSpans", "scope_spans"), scope_spans)?,
        schema_url: m.get(("schemaUrl", "schema_url"), string)?,
    })
}

fn resource(value: &Value, path: &Path<'_>) -> Result<Resource> {
    let m = Msg::new(value, path)?;
    Ok(Resource {
        attributes: m.repeated(("attributes", "attributes"), key_value)?,
        dropped_attributes_count: m.get(
            ("droppedAttributesCount", "dropped_attributes_count"),
            uint32,
        )?,
        entity_refs: m.repeated(("entityRefs", "entity_refs"), entity_ref)?,
    })
}

fn entity_ref(value: &Value, path: &Path<'_>) -> Result<EntityRef> {
    let m = Msg::new(value, path)?;
    Ok(EntityRef {
        schema_url: m.get(("schemaUrl", "schema_url"), string)?,
        r#type: m.get(("type", "type"), string)?,
        id_keys: m.repeated(("idKeys", "id_keys"), string)?,
        description_keys: m.repeated(("descriptionKeys", "description_keys"), string)?,
    })
}

fn scope_spans(value: &Value, path: &Path<'_>) -> Result<ScopeSpans> {
    let m = Msg::new(value, path)?;
    Ok(ScopeSpans {
        scope: m.message(("scope", "scope"), scope)?,
        spans: m.repeated(("spans", "spans"), span)?,
        schema_url: m.get(("schemaUrl", "schema_url"), string)?,
    })
}

fn scope(value: &Value, path: &Path<'_>) -> Result<InstrumentationScope> {
    let m = Msg::new(value, path)?;
    Ok(InstrumentationScope {
        name: m.get(("name", "name"), string)?,
        version: m.get(("version", "version"), string)?,
        attributes: m.repeated(("attributes", "attributes"), key_value)?,
        dropped_attributes_count: m.get(
            ("droppedAttributesCount", "dropped_attributes_count"),
            uint32,
        )?,
    })
}

fn span(value: &Value, path: &Path<'_>) -> Result<Span> {
    let m = Msg::new(value, path)?;
    Ok(Span {
        trace_id: m.get(("traceId", "trace_id"), id::<TRACE_ID_BYTES>)?,
        span_id: m.get(("spanId", "span_id"), id::<SPAN_ID_BYTES>)?,
        trace_state: m.get(("traceState", "trace_state"), string)?,
        parent_span_id: m.get(("parentSpanId", "parent_span_id"), id::<SPAN_ID_BYTES>)?,
        flags: m.get(("flags", "flags"), uint32)?,
        name: m.get(("name", "name"), string)?,
        kind: m.get(("kind", "kind"), |v, p| {
            enumeration(v, p, |name| {
                span::SpanKind::from_str_name(name).map(|kind| kind as i32)
            })
        })?,
        start_time_unix_nano: m.get(("startTimeUnixNano", "start_time_unix_nano"), uint64)?,
        end_time_unix_nano: m.get(("endTimeUnixNano", "end_time_unix_nano"), uint64)?,
        attributes: m.repeated(("attributes", "attributes"), key_value)?,
        dropped_attributes_count: m.get(
            ("droppedAttributesCount", "dropped_attributes_count"),
            uint32,
        )?,
        events: m.repeated(("events", "events"), event)?,
        dropped_events_count: m.get(("droppedEventsCount", "dropped_events_count"), uint32)?,
        links: m.repeated(("links", "links"), link)?,
        dropped_links_count: m.get(("droppedLinksCount", "dropped_links_count"), uint32)?,
        status: m.message(("status", "status"), span_status)?,
    })
}

fn event(value: &Value, path: &Path<'_>) -> Result<span::Event> {
    let m = Msg::new(value, path)?;
    Ok(span::Event {
        time_unix_nano: m.get(("timeUnixNano", "time_unix_nano"), uint64)?,
        name: m.get(("name", "name"), string)?,
        attributes: m.repeated(("attributes", "attributes"), key_value)?,
        dropped_attributes_count: m.get(
            ("droppedAttributesCount", "dropped_attributes_count"),
            uint32,
        )?,
    })
}

fn link(value: &Value, path: &Path<'_>) -> Result<span::Link> {
    let m = Msg::new(value, path)?;
    Ok(span::Link {
        trace_id: m.get(("traceId", "trace_id"), id::<TRACE_ID_BYTES>)?,
        span_id: m.get(("spanId", "span_id"), id::<SPAN_ID_BYTES>)?,
        trace_state: m.get(("traceState", "trace_state"), string)?,
        attributes: m.repeated(("attributes", "attributes"), key_value)?,
        dropped_attributes_count: m.get(
            ("droppedAttributesCount", "dropped_attributes_count"),
            uint32,
        )?,
        flags: m.get(("flags", "flags"), uint32)?,
    })
}

fn span_status(value: &Value, path: &Path<'_>) -> Result<Status> {
    let m = Msg::new(value, path)?;
    Ok(Status {
        message: m.get(("message", "message"), string)?,
        code: m.get(("code", "code"), |v, p| {
            enumeration(v, p, |name| {
                status::StatusCode::from_str_name(name).map(|code| code as i32)
            })
        })?,
    })
}

fn key_value(value: &Value, path: &Path<'_>) -> Result<KeyValue> {
    let m = Msg::new(value, path)?;
    Ok(KeyValue {
        key: m.get(("key", "key"), string)?,
        value: m.message(("value", "value"), any_value)?,
        key_strindex: m.get(("keyStrindex", "key_strindex"), int32)?,
    })
}

type Parse<T> = fn(&Value, &Path<'_>) -> Result<T>;

/// The members of the `AnyValue.value` oneof.
const ANY_VALUE_FIELDS: [(Name, Parse<any_value::Value>); 8] = [
    (("stringValue", "string_value"), |v, p| {
        string(v, p).map(any_value::Value::StringValue)
    }),
    (("boolValue", "bool_value"), |v, p| {
        boolean(v, p).map(any_value::Value::BoolValue)
    }),
    (("intValue", "int_value"), |v, p| {
        int64(v, p).map(any_value::Value::IntValue)
    }),
    (("doubleValue", "double_value"), |v, p| {
        double(v, p).map(any_value::Value::DoubleValue)
    }),
    (("arrayValue", "array_value"), |v, p| {
        array_value(v, p).map(any_value::Value::ArrayValue)
    }),
    (("kvlistValue", "kvlist_value"), |v, p| {
        kvlist_value(v, p).map(any_value::Value::KvlistValue)
    }),
    (("bytesValue", "bytes_value"), |v, p| {
        bytes(v, p).map(any_value::Value::BytesValue)
    }),
    (("stringValueStrindex", "string_value_strindex"), |v, p| {
        int32(v, p).map(any_value::Value::StringValueStrindex)
    }),
];

fn any_value(value: &Value, path: &Path<'_>) -> Result<AnyValue> {
    let m = Msg::new(value, path)?;
    let mut set: Option<(&str, any_value::Value)> = None;
    for (name, parse) in ANY_VALUE_FIELDS {
        let Some((key, field)) = m.field(name)? else {
            continue;
        };
        if let Some((first, _)) = set {
            return Err(error(
                path,
                format_args!("more than one value set: {first} and {key}"),
            ));
        }
        set = Some((key, parse(field, &Path::Key(path, key))?));
    }
    Ok(AnyValue {
        value: set.map(|(_, value)| value),
    })
}

fn array_value(value: &Value, path: &Path<'_>) -> Result<ArrayValue> {
    let m = Msg::new(value, path)?;
    Ok(ArrayValue {
        values: m.repeated(("values", "values"), any_value)?,
    })
}

fn kvlist_value(value: &Value, path: &Path<'_>) -> Result<KeyValueList> {
    let m = Msg::new(value, path)?;
    Ok(KeyValueList {
        values: m.repeated(("values", "values"), key_value)?,
    })
}

// --- Objects and paths ----------------------------------------------------------------------

/// A field's lowerCamelCase JSON name and its name in the `.proto`.
type Name = (&'static str, &'static str);

/// Where a value sits in the body, for error messages: `resourceSpans[0].scopeSpans[1]`.
/// A chain of borrows on the stack, so it costs nothing until an error renders it.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'static str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("top level"),
            Path::Key(Path::Root, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

fn error(path: &Path<'_>, what: impl fmt::Display) -> DecodeError {
    DecodeError::new(format!("{path}: {what}"))
}

fn expected(path: &Path<'_>, what: &str, got: &Value) -> DecodeError {
    error(path, format_args!("expected {what}, got {}", Got(got)))
}

/// A JSON value as quoted in an error: scalars as written (long strings cut), containers by kind.
struct Got<'a>(&'a Value);

impl fmt::Display for Got<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => write!(f, "{n}"),
            Value::String(s) => match s.char_indices().nth(QUOTED_CHARS_MAX) {
                None => write!(f, "{}", json_string(s)),
                Some((cut, _)) => {
                    let head = s.get(..cut).unwrap_or_default();
                    write!(f, "{}...", json_string(head))
                }
            },
            Value::Array(_) => f.write_str("an array"),
            Value::Object(_) => f.write_str("an object"),
        }
    }
}

/// A JSON object being mapped to a message, with its path.
#[derive(Clone, Copy)]
struct Msg<'v, 'p> {
    map: &'v Map<String, Value>,
    path: &'p Path<'p>,
}

impl<'v, 'p> Msg<'v, 'p> {
    fn new(value: &'v Value, path: &'p Path<'p>) -> Result<Msg<'v, 'p>> {
        match value {
            Value::Object(map) => Ok(Msg { map, path }),
            other => Err(expected(path, "an object", other)),
        }
    }

    /// The field under whichever of its two names is present, with the name used; `None` if
    /// absent or `null`.
    fn field(&self, (camel, snake): Name) -> Result<Option<(&'static str, &'v Value)>> {
        let present = |key: &'static str| match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => Some((key, value)),
        };
        let camel_value = present(camel);
        if camel == snake {
            return Ok(camel_value);
        }
        match (camel_value, present(snake)) {
            (Some(_), Some(_)) => Err(error(
                self.path,
                format_args!("field given twice, as {camel} and {snake}"),
            )),
            (found, None) | (None, found) => Ok(found),
        }
    }

    /// A scalar field, or its default when absent.
    fn get<T: Default>(
        &self,
        name: Name,
        parse: impl FnOnce(&Value, &Path<'_>) -> Result<T>,
    ) -> Result<T> {
        match self.field(name)? {
            None => Ok(T::default()),
            Some((key, value)) => parse(value, &Path::Key(self.path, key)),
        }
    }

    /// A message field.
    fn message<T>(&self, name: Name, parse: Parse<T>) -> Result<Option<T>> {
        match self.field(name)? {
            None => Ok(None),
            Some((key, value)) => parse(value, &Path::Key(self.path, key)).map(Some),
        }
    }

    /// A repeated field: a JSON array, each element parsed with `parse`.
    fn repeated<T>(&self, name: Name, parse: Parse<T>) -> Result<Vec<T>> {
        let Some((key, value)) = self.field(name)? else {
            return Ok(Vec::new());
        };
        let path = Path::Key(self.path, key);
        let Value::Array(elements) = value else {
            return Err(expected(&path, "an array", value));
        };
        elements
            .iter()
            .enumerate()
            .map(|(index, element)| parse(element, &Path::Index(&path, index)))
            .collect()
    }
}

// --- Scalars --------------------------------------------------------------------------------

fn string(value: &Value, path: &Path<'_>) -> Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(expected(path, "a string", other)),
    }
}

fn boolean(value: &Value, path: &Path<'_>) -> Result<bool> {
    match value {
        Value::Bool(b) => Ok(*b),
        other => Err(expected(path, "true or false", other)),
    }
}

fn uint64(value: &Value, path: &Path<'_>) -> Result<u64> {
    integer(value, path, "uint64")
}

fn int64(value: &Value, path: &Path<'_>) -> Result<i64> {
    integer(value, path, "int64")
}

fn uint32(value: &Value, path: &Path<'_>) -> Result<u32> {
    integer(value, path, "uint32")
}

fn int32(value: &Value, path: &Path<'_>) -> Result<i32> {
    integer(value, path, "int32")
}

/// An integer field: a JSON number or a string holding one, integral and in range for `T`.
fn integer<T: TryFrom<i128>>(value: &Value, path: &Path<'_>, type_name: &str) -> Result<T> {
    let wide = match value {
        Value::Number(n) => number_integral(n),
        Value::String(s) => string_integral(s),
        _ => None,
    };
    let Some(wide) = wide else {
        return Err(expected(path, "an integer or a string holding one", value));
    };
    T::try_from(wide).map_err(|_| {
        error(
            path,
            format_args!("{} is out of range for {type_name}", Got(value)),
        )
    })
}

/// The number's value if it is integral. Values beyond `i128` saturate, which every field's
/// range check then rejects.
fn number_integral(n: &Number) -> Option<i128> {
    if let Some(i) = n.as_i64() {
        return Some(i.into());
    }
    if let Some(u) = n.as_u64() {
        return Some(u.into());
    }
    let f = n.as_f64()?;
    // `as` saturates beyond i128; the range check then rejects the value.
    (f.is_finite() && f.fract() == 0.0).then_some(f as i128)
}

/// A string holding an integer: decimal digits, or a JSON number that is integral (`"1e3"`).
fn string_integral(s: &str) -> Option<i128> {
    if let Ok(i) = s.parse::<i128>() {
        return Some(i);
    }
    let number_chars = |b: u8| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E');
    if s.is_empty() || !s.bytes().all(number_chars) {
        return None;
    }
    let n: Number = serde_json::from_str(s).ok()?;
    number_integral(&n)
}

fn double(value: &Value, path: &Path<'_>) -> Result<f64> {
    let f = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            // Rust also parses "inf", "nan" and overflows to infinity: only the three names
            // above may give a non-finite value.
            other => other.parse::<f64>().ok().filter(|f| f.is_finite()),
        },
        _ => None,
    };
    f.ok_or_else(|| {
        expected(
            path,
            r#"a number, a string holding one, "NaN", "Infinity" or "-Infinity""#,
            value,
        )
    })
}

const BASE64_CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const BASE64_STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, BASE64_CONFIG);
const BASE64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, BASE64_CONFIG);

/// A bytes field: base64, the URL-safe alphabet if `-` or `_` appears (as protobuf's Go
/// implementation decides), padding optional.
fn bytes(value: &Value, path: &Path<'_>) -> Result<Vec<u8>> {
    let Value::String(s) = value else {
        return Err(expected(path, "a base64 string", value));
    };
    let engine = if s.contains(['-', '_']) {
        &BASE64_URL_SAFE
    } else {
        &BASE64_STANDARD
    };
    engine
        .decode(s)
        .map_err(|e| error(path, format_args!("invalid base64 {}: {e}", Got(value))))
}

/// A trace or span id: `BYTES` bytes as hex, any case, or `""` for none.
fn id<const BYTES: usize>(value: &Value, path: &Path<'_>) -> Result<Vec<u8>> {
    let Value::String(s) = value else {
        return Err(expected(path, "a hex string", value));
    };
    let digits = s.as_bytes();
    if digits.len() % 2 != 0 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(error(path, format_args!("invalid hex {}", Got(value))));
    }
    if !digits.is_empty() && digits.len() != 2 * BYTES {
        return Err(error(
            path,
            format_args!(
                "expected {BYTES} bytes ({} hex digits), got {} bytes",
                2 * BYTES,
                digits.len() / 2
            ),
        ));
    }
    Ok(digits
        .chunks_exact(2)
        .map(|pair| match pair {
            [high, low] => hex_value(*high) << 4 | hex_value(*low),
            _ => 0, // chunks_exact(2) yields pairs only
        })
        .collect())
}

/// The value of an ASCII hex digit (checked by the caller).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// An enum field: its number (any int32: proto3 enums are open) or its value's name.
fn enumeration(value: &Value, path: &Path<'_>, from_name: fn(&str) -> Option<i32>) -> Result<i32> {
    match value {
        Value::Number(_) => integer(value, path, "an enum (int32)"),
        Value::String(name) => from_name(name)
            .ok_or_else(|| error(path, format_args!("unknown enum name {}", Got(value)))),
        other => Err(expected(path, "an enum name or number", other)),
    }
}

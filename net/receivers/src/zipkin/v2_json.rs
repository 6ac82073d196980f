//! Zipkin v2 JSON (`POST /api/v2/spans`, a JSON array of spans) into [`ZipkinSpan`]s, with the
//! rules of the zipkin-go v0.4.3 model the collector unmarshals into.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::common::{field, json_type, parse_hex_left_padded, shown};
use super::v2::{Annotation, Endpoint, Kind, ZipkinSpan};
use crate::DecodeError;

pub(super) fn parse(body: &[u8]) -> Result<Vec<ZipkinSpan>, DecodeError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| DecodeError::new(format!("body is not JSON: {e}")))?;
    let items = match value {
        // Go unmarshals `null` into a nil slice: no spans.
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(DecodeError::new(format!(
                "body is {}, not a JSON array of spans",
                json_type(&other)
            )))
        }
    };
    let mut spans = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let at = |e: String| DecodeError::new(format!("span {index}: {e}"));
        match item {
            // A null element is a nil *SpanModel, which ToTraces skips.
            Value::Null => continue,
            Value::Object(object) => spans.push(parse_span(index, object).map_err(at)?),
            other => return Err(at(format!("is {}, not an object", json_type(&other)))),
        }
    }
    Ok(spans)
}

fn parse_span(index: usize, object: Map<String, Value>) -> Result<ZipkinSpan, String> {
    const FIELDS: [&str; 13] = [
        "traceId",
        "id",
        "parentId",
        "debug",
        "name",
        "kind",
        "timestamp",
        "duration",
        "shared",
        "localEndpoint",
        "remoteEndpoint",
        "annotations",
        "tags",
    ];
    let mut span = ZipkinSpan {
        index,
        trace_id: [0; 16],
        id: [0; 8],
        parent_id: None,
        name: String::new(),
        kind: Kind::Unspecified,
        timestamp_us: 0,
        timestamp_absent: true,
        duration_us: 0,
        local_endpoint: None,
        remote_endpoint: None,
        annotations: Vec::new(),
        tags: BTreeMap::new(),
    };
    let mut trace_id_seen = false;
    let mut id_seen = false;
    for (key, value) in object {
        let Some(name) = field(&key, &FIELDS) else {
            continue;
        };
        match name {
            "traceId" => {
                let text = string(name, &value, false)?;
                parse_hex_left_padded(&text, &mut span.trace_id)
                    .map_err(|e| format!("traceId {}: {e}", shown(&text)))?;
                trace_id_seen = true;
            }
            "id" => {
                let text = string(name, &value, false)?;
                parse_hex_left_padded(&text, &mut span.id)
                    .map_err(|e| format!("id {}: {e}", shown(&text)))?;
                id_seen = true;
            }
            "parentId" => {
                let text = string(name, &value, true)?;
                // zipkin-go: null and "" are no parent.
                span.parent_id = if text.is_empty() {
                    None
                } else {
                    let mut parent = [0; 8];
                    parse_hex_left_padded(&text, &mut parent)
                        .map_err(|e| format!("parentId {}: {e}", shown(&text)))?;
                    Some(parent)
                };
            }
            // The collector drops debug and shared; their types are still checked.
            "debug" | "shared" if !matches!(value, Value::Null | Value::Bool(_)) => {
                return Err(format!(
                    "{name}: expected a boolean, found {}",
                    json_type(&value)
                ));
            }
            "name" => span.name = string(name, &value, true)?,
            "kind" => {
                span.kind = match string(name, &value, true)?.as_str() {
                    "CLIENT" => Kind::Client,
                    "SERVER" => Kind::Server,
                    "PRODUCER" => Kind::Producer,
                    "CONSUMER" => Kind::Consumer,
                    _ => Kind::Unspecified,
                };
            }
            "timestamp" => {
                span.timestamp_us = unsigned(name, &value)?;
                span.timestamp_absent = span.timestamp_us == 0;
            }
            "duration" => span.duration_us = unsigned(name, &value)?,
            "localEndpoint" => span.local_endpoint = endpoint(name, &value)?,
            "remoteEndpoint" => span.remote_endpoint = endpoint(name, &value)?,
            "annotations" => span.annotations = annotations(&value)?,
            "tags" => span.tags = tags(value)?,
            _ => {}
        }
    }
    if !trace_id_seen {
        return Err("traceId: missing".to_owned());
    }
    if span.trace_id == [0; 16] {
        return Err("traceId: is zero".to_owned());
    }
    if !id_seen {
        return Err("id: missing".to_owned());
    }
    if span.id == [0; 8] {
        return Err("id: is zero".to_owned());
    }
    Ok(span)
}

/// A string field; `null` is "" where Go leaves the zero value, an error for the IDs (whose
/// `UnmarshalJSON` rejects it).
fn string(name: &str, value: &Value, null_ok: bool) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Null if null_ok => Ok(String::new()),
        other => Err(format!(
            "{name}: expected a string, found {}",
            json_type(other)
        )),
    }
}

/// A `uint64` field: an integer literal in range (no fraction, no exponent); `null` is 0.
fn unsigned(name: &str, value: &Value) -> Result<u64, String> {
    match value {
        Value::Null => Ok(0),
        Value::Number(n) => n.as_u64().ok_or_else(|| {
            format!("{name}: expected an unsigned integer of microseconds, found {n}")
        }),
        other => Err(format!(
            "{name}: expected an unsigned integer of microseconds, found {}",
            json_type(other)
        )),
    }
}

fn endpoint(name: &str, value: &Value) -> Result<Option<Endpoint>, String> {
    const FIELDS: [&str; 4] = ["serviceName", "ipv4", "ipv6", "port"];
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
        let Some(field_name) = field(key, &FIELDS) else {
            continue;
        };
        let path = format!("{name}.{field_name}");
        match field_name {
            "serviceName" => endpoint.service_name = string(&path, value, true)?,
            "ipv4" => endpoint.ipv4 = ip(&path, value)?,
            "ipv6" => endpoint.ipv6 = ip(&path, value)?,
            "port" => {
                endpoint.port = match value {
                    Value::Null => 0,
                    Value::Number(n) => n
                        .as_u64()
                        .and_then(|p| u16::try_from(p).ok())
                        .ok_or_else(|| format!("{path}: {n} is not a port (0 to 65535)"))?,
                    other => {
                        return Err(format!(
                            "{path}: expected a port number, found {}",
                            json_type(other)
                        ))
                    }
                };
            }
            _ => {}
        }
    }
    // zipkin-go turns an empty endpoint into none.
    Ok((endpoint != Endpoint::default()).then_some(endpoint))
}

/// Go's `net.IP` from JSON: "" is none, otherwise any IPv4 or IPv6 literal (in either field).
fn ip(path: &str, value: &Value) -> Result<Option<IpAddr>, String> {
    let text = string(path, value, true)?;
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{path} {}: not an IP address", shown(&text)))
}

fn annotations(value: &Value) -> Result<Vec<Annotation>, String> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(format!(
                "annotations: expected an array, found {}",
                json_type(other)
            ))
        }
    };
    let mut annotations = Vec::with_capacity(items.len());
    for (j, item) in items.iter().enumerate() {
        let at = |e: String| format!("annotation {j}: {e}");
        let empty = Map::new();
        let object = match item {
            // zipkin-go decodes null as an annotation with no timestamp, which it rejects below.
            Value::Null => &empty,
            Value::Object(object) => object,
            other => {
                return Err(at(format!(
                    "expected an object, found {}",
                    json_type(other)
                )))
            }
        };
        let mut annotation = Annotation {
            timestamp_us: 0,
            value: String::new(),
        };
        for (key, value) in object {
            match field(key, &["timestamp", "value"]) {
                Some("timestamp") => {
                    annotation.timestamp_us = unsigned("timestamp", value).map_err(at)?
                }
                Some("value") => annotation.value = string("value", value, true).map_err(at)?,
                _ => {}
            }
        }
        if annotation.timestamp_us == 0 {
            return Err(at("timestamp: missing or zero".to_owned()));
        }
        annotations.push(annotation);
    }
    Ok(annotations)
}

fn tags(value: Value) -> Result<BTreeMap<String, String>, String> {
    let object = match value {
        Value::Null => return Ok(BTreeMap::new()),
        Value::Object(object) => object,
        other => {
            return Err(format!(
                "tags: expected an object, found {}",
                json_type(&other)
            ))
        }
    };
    let mut tags = BTreeMap::new();
    for (key, value) in object {
        let value = match value {
            Value::String(s) => s,
            // Go stores the zero value for a null map element.
            Value::Null => String::new(),
            other => {
                return Err(format!(
                    "tag {}: expected a string, found {} (Zipkin tags are strings)",
                    shown(&key),
                    json_type(&other)
                ))
            }
        };
        tags.insert(key, value);
    }
    Ok(tags)
}

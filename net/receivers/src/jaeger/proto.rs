//! Jaeger `api_v2` protobuf messages (jaeger-idl `proto/api_v2/model.proto`, `collector.proto`)
//! at their exact field numbers, and their conversion to the shared model with the checks the
//! gogoproto custom types make while unmarshalling.
//!
//! String fields are declared `bytes`: Go's gogoproto does not validate UTF-8, so invalid
//! sequences are replaced (lossy) rather than refused. Trace and span IDs are `optional` so an
//! ID field that is present but too short can be refused as `model.TraceID.Unmarshal` refuses it.

use super::translate::{JaegerSpan, Log, Process, RefType, SpanRef, Tag, TagValue, TraceId};

/// `jaeger.api_v2.PostSpansRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PostSpansRequest {
    #[prost(message, optional, tag = "1")]
    pub batch: Option<Batch>,
}

/// `jaeger.api_v2.PostSpansResponse` (empty).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PostSpansResponse {}

/// `jaeger.api_v2.Batch`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Batch {
    #[prost(message, repeated, tag = "1")]
    pub spans: Vec<Span>,
    #[prost(message, optional, tag = "2")]
    pub process: Option<ProtoProcess>,
}

/// `jaeger.api_v2.Span`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Span {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub trace_id: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub span_id: Option<Vec<u8>>,
    #[prost(bytes = "vec", tag = "3")]
    pub operation_name: Vec<u8>,
    #[prost(message, repeated, tag = "4")]
    pub references: Vec<ProtoSpanRef>,
    #[prost(uint32, tag = "5")]
    pub flags: u32,
    #[prost(message, optional, tag = "6")]
    pub start_time: Option<Timestamp>,
    #[prost(message, optional, tag = "7")]
    pub duration: Option<Duration>,
    #[prost(message, repeated, tag = "8")]
    pub tags: Vec<KeyValue>,
    #[prost(message, repeated, tag = "9")]
    pub logs: Vec<ProtoLog>,
    #[prost(message, optional, tag = "10")]
    pub process: Option<ProtoProcess>,
    #[prost(bytes = "vec", tag = "11")]
    pub process_id: Vec<u8>,
    #[prost(bytes = "vec", repeated, tag = "12")]
    pub warnings: Vec<Vec<u8>>,
}

/// `jaeger.api_v2.SpanRef`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoSpanRef {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub trace_id: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub span_id: Option<Vec<u8>>,
    /// `SpanRefType`: CHILD_OF = 0, FOLLOWS_FROM = 1.
    #[prost(int32, tag = "3")]
    pub ref_type: i32,
}

/// `jaeger.api_v2.Process`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoProcess {
    #[prost(bytes = "vec", tag = "1")]
    pub service_name: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    pub tags: Vec<KeyValue>,
}

/// `jaeger.api_v2.Log`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoLog {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(message, repeated, tag = "2")]
    pub fields: Vec<KeyValue>,
}

/// `jaeger.api_v2.KeyValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// `ValueType`: STRING = 0, BOOL = 1, INT64 = 2, FLOAT64 = 3, BINARY = 4.
    #[prost(int32, tag = "2")]
    pub v_type: i32,
    #[prost(bytes = "vec", tag = "3")]
    pub v_str: Vec<u8>,
    #[prost(bool, tag = "4")]
    pub v_bool: bool,
    #[prost(int64, tag = "5")]
    pub v_int64: i64,
    #[prost(double, tag = "6")]
    pub v_float64: f64,
    #[prost(bytes = "vec", tag = "7")]
    pub v_binary: Vec<u8>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `google.protobuf.Duration`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Duration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// gogo `types` limits: a timestamp must lie in [0001-01-01, 10000-01-01).
const TIMESTAMP_SECONDS_MIN: i64 = -62_135_596_800;
const TIMESTAMP_SECONDS_MAX_EXCLUSIVE: i64 = 253_402_300_800;
/// gogo `types` limits: a duration must lie within +-10000 years.
const DURATION_SECONDS_ABS_MAX: i64 = 315_576_000_000;
const NANOS_PER_SECOND: i64 = 1_000_000_000;

type Res<T> = Result<T, String>;

fn at<T>(result: Res<T>, place: impl FnOnce() -> String) -> Res<T> {
    result.map_err(|e| format!("{}: {e}", place()))
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `model.TraceID.Unmarshal`: fewer than 16 bytes is an error; bytes past 16 are ignored.
fn trace_id(bytes: Option<&[u8]>) -> Res<TraceId> {
    let Some(bytes) = bytes else {
        return Ok(TraceId { high: 0, low: 0 });
    };
    match (bytes.get(..8), bytes.get(8..16)) {
        (Some(high), Some(low)) => Ok(TraceId {
            high: u64::from_be_bytes(high.try_into().map_err(|_| "trace_id")?),
            low: u64::from_be_bytes(low.try_into().map_err(|_| "trace_id")?),
        }),
        _ => Err(format!("trace_id of {} bytes, need 16", bytes.len())),
    }
}

/// `model.SpanID.Unmarshal`: exactly 8 bytes.
fn span_id(bytes: Option<&[u8]>) -> Res<u64> {
    let Some(bytes) = bytes else {
        return Ok(0);
    };
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| format!("span_id of {} bytes, need 8", bytes.len()))?;
    Ok(u64::from_be_bytes(array))
}

/// gogo `StdTimeUnmarshal` then Go's `time.Time.UnixNano()` (int64 wrapping). An absent
/// timestamp is Go's zero `time.Time`, 0001-01-01.
fn timestamp_unix_nano(ts: Option<Timestamp>) -> Res<u64> {
    let ts = ts.unwrap_or(Timestamp {
        seconds: TIMESTAMP_SECONDS_MIN,
        nanos: 0,
    });
    if !(TIMESTAMP_SECONDS_MIN..TIMESTAMP_SECONDS_MAX_EXCLUSIVE).contains(&ts.seconds) {
        return Err(format!(
            "timestamp seconds {} outside [0001-01-01, 10000-01-01)",
            ts.seconds
        ));
    }
    if !(0..NANOS_PER_SECOND).contains(&i64::from(ts.nanos)) {
        return Err(format!("timestamp nanos {} out of range", ts.nanos));
    }
    Ok(ts
        .seconds
        .wrapping_mul(NANOS_PER_SECOND)
        .wrapping_add(i64::from(ts.nanos)) as u64)
}

/// gogo `StdDurationUnmarshal` into a Go `time.Duration` (nanoseconds in an int64).
fn duration_nanos(d: Option<Duration>) -> Res<i64> {
    let Some(d) = d else { return Ok(0) };
    let nanos = i64::from(d.nanos);
    if d.seconds.abs() > DURATION_SECONDS_ABS_MAX {
        return Err(format!("duration seconds {} out of range", d.seconds));
    }
    if nanos.abs() >= NANOS_PER_SECOND
        || (d.seconds < 0 && nanos > 0)
        || (d.seconds > 0 && nanos < 0)
    {
        return Err(format!(
            "duration nanos {} out of range for seconds {}",
            d.nanos, d.seconds
        ));
    }
    let whole = d
        .seconds
        .checked_mul(NANOS_PER_SECOND)
        .ok_or_else(|| format!("duration {}s out of range for time.Duration", d.seconds))?;
    let total = whole.wrapping_add(nanos);
    if nanos != 0 && (total < 0) != (nanos < 0) {
        return Err(format!(
            "duration {}s {}ns out of range for time.Duration",
            d.seconds, d.nanos
        ));
    }
    Ok(total)
}

pub(crate) fn tag(kv: KeyValue) -> Tag {
    let value = match kv.v_type {
        0 => TagValue::Str(text(kv.v_str)),
        1 => TagValue::Bool(kv.v_bool),
        2 => TagValue::Long(kv.v_int64),
        3 => TagValue::Double(kv.v_float64),
        4 => TagValue::Binary(kv.v_binary),
        // gogo's ValueType.String() of an unknown value is its number.
        other => TagValue::Unknown(other.to_string()),
    };
    Tag {
        key: text(kv.key),
        value,
    }
}

pub(crate) fn process(p: ProtoProcess) -> Process {
    Process {
        service_name: text(p.service_name),
        tags: p.tags.into_iter().map(tag).collect(),
    }
}

/// `reflect.DeepEqual(span, new(model.Span))`: the collector skips such spans. (Go also keeps
/// unknown fields, which make a span non-blank; prost drops them.)
pub(crate) fn is_blank(span: &Span) -> bool {
    // An ID or duration that fails its check makes the span non-blank, so that [`span`]
    // reports it with its context.
    let zero_trace = trace_id(span.trace_id.as_deref()).is_ok_and(|id| id.high == 0 && id.low == 0);
    zero_trace
        && span_id(span.span_id.as_deref()).is_ok_and(|id| id == 0)
        && span.operation_name.is_empty()
        && span.references.is_empty()
        && span.flags == 0
        && span.start_time.is_none()
        && duration_nanos(span.duration).is_ok_and(|d| d == 0)
        && span.tags.is_empty()
        && span.logs.is_empty()
        && span.process.is_none()
        && span.process_id.is_empty()
        && span.warnings.is_empty()
}

/// `getScope`: the first `otel.scope.name` tag (its `v_str`, whatever its type) is removed
/// from the span's tags and names the scope; only then is the first `otel.scope.version`
/// removed for the version.
pub(crate) fn take_scope(tags: &mut Vec<KeyValue>) -> (String, String) {
    let Some(name) = take_tag(tags, super::translate::TAG_OTEL_SCOPE_NAME) else {
        return (String::new(), String::new());
    };
    let version = take_tag(tags, super::translate::TAG_OTEL_SCOPE_VERSION).unwrap_or_default();
    (name, version)
}

fn take_tag(tags: &mut Vec<KeyValue>, key: &str) -> Option<String> {
    let index = tags.iter().position(|kv| kv.key == key.as_bytes())?;
    Some(text(tags.remove(index).v_str))
}

/// The span in the shared model, checked as gogoproto's unmarshal checks it.
pub(crate) fn span(span: Span) -> Res<JaegerSpan> {
    let trace = trace_id(span.trace_id.as_deref())?;
    let id = span_id(span.span_id.as_deref())?;
    let start = at(timestamp_unix_nano(span.start_time), || {
        "start_time".to_owned()
    })?;
    let duration = at(duration_nanos(span.duration), || "duration".to_owned())?;
    let mut references = Vec::with_capacity(span.references.len());
    for (index, r) in span.references.into_iter().enumerate() {
        let reference = (|| -> Res<SpanRef> {
            Ok(SpanRef {
                ref_type: match r.ref_type {
                    0 => RefType::ChildOf,
                    1 => RefType::FollowsFrom,
                    _ => RefType::Other,
                },
                trace_id: trace_id(r.trace_id.as_deref())?,
                span_id: span_id(r.span_id.as_deref())?,
            })
        })();
        references.push(at(reference, || format!("reference {index}"))?);
    }
    let mut logs = Vec::with_capacity(span.logs.len());
    for (index, log) in span.logs.into_iter().enumerate() {
        let time = at(timestamp_unix_nano(log.timestamp), || {
            format!("log {index}")
        })?;
        logs.push(Log {
            time_unix_nano: time,
            fields: log.fields.into_iter().map(tag).collect(),
        });
    }
    Ok(JaegerSpan {
        trace_id: trace,
        span_id: id,
        parent_span_id: 0,
        operation_name: text(span.operation_name),
        references,
        start_unix_nano: start,
        // Go: StartTime.Add(Duration).UnixNano(), which wraps like this.
        end_unix_nano: start.wrapping_add(duration as u64),
        tags: span.tags.into_iter().map(tag).collect(),
        logs,
    })
}

/// A process as a grouping key (jaeger `Process.Hash`): the service name and, in order, each
/// tag's key, type and the value its type selects.
pub(crate) fn process_key(p: Option<&ProtoProcess>) -> Vec<u8> {
    let mut key = Vec::new();
    let Some(p) = p else { return key };
    push_field(&mut key, &p.service_name);
    for kv in &p.tags {
        push_field(&mut key, &kv.key);
        key.extend_from_slice(&kv.v_type.to_be_bytes());
        match kv.v_type {
            0 => push_field(&mut key, &kv.v_str),
            1 => key.push(u8::from(kv.v_bool)),
            2 => key.extend_from_slice(&kv.v_int64.to_be_bytes()),
            3 => key.extend_from_slice(&kv.v_float64.to_bits().to_be_bytes()),
            4 => push_field(&mut key, &kv.v_binary),
            _ => {}
        }
    }
    key
}

fn push_field(key: &mut Vec<u8>, bytes: &[u8]) {
    key.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    key.extend_from_slice(bytes);
}

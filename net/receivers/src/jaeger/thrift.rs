//! Jaeger thrift (`jaeger.thrift`, `agent.thrift`) read with the `thrift` crate's protocols,
//! field by field the way generated code reads: a known field id with the expected type is
//! read, anything else is skipped (`skip` is bounded to depth 64 by the crate), and a missing
//! `required` field is an error, as in Go's generated readers.
//!
//! Allocation guard: the input is a slice behind a shared cursor, so before a string or
//! binary is read its length prefix is peeked and checked against the bytes remaining, and a
//! list's declared element count must not exceed the bytes remaining (every element takes at
//! least one byte). The crate itself would `vec![0; len]` up to 100 MiB from a prefix.

use std::cell::Cell;
use std::io::{self, Read};

use ::thrift::protocol::{
    TBinaryInputProtocol, TCompactInputProtocol, TInputProtocol, TMessageType, TType,
};
use ::thrift::TransportErrorKind;

use super::translate::{JaegerSpan, Log, Process, RefType, SpanRef, Tag, TagValue, TraceId};
use super::AgentProtocol;

/// A decoded `jaeger.Batch` (`seqNo` and `stats` are read and dropped, as the collector does).
#[derive(Debug)]
pub(crate) struct Batch {
    pub process: Process,
    /// `None` for a span the collector skips as blank (`reflect.DeepEqual` with `new(Span)`):
    /// every required field zero and no optional list present.
    pub spans: Vec<Option<JaegerSpan>>,
}

/// What an `Agent` message held.
pub(crate) enum AgentCall {
    /// `emitBatch` with its `batch` argument (absent -> `None`, which the collector accepts as
    /// no spans).
    EmitBatch(Option<Batch>),
}

/// The input as a `Read` whose position is shared with the [`Reader`], so the reader can see
/// how many bytes remain while the protocol owns the transport.
struct SliceRead<'a> {
    data: &'a [u8],
    pos: &'a Cell<usize>,
}

impl Read for SliceRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = self.data.get(self.pos.get()..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos.set(self.pos.get() + n);
        Ok(n)
    }
}

type Res<T> = Result<T, String>;

/// Prefix an error message with where it happened.
fn at<T>(result: Res<T>, place: impl FnOnce() -> String) -> Res<T> {
    result.map_err(|e| format!("{}: {e}", place()))
}

fn thrift_err(e: ::thrift::Error) -> String {
    match e {
        ::thrift::Error::Transport(t) if t.kind == TransportErrorKind::EndOfFile => {
            "truncated input".to_owned()
        }
        ::thrift::Error::Protocol(p) if !p.message.is_empty() => p.message,
        other => other.to_string(),
    }
}

/// How one field of a struct is declared.
struct FieldSpec {
    id: i16,
    name: &'static str,
    ttype: TType,
    required: bool,
}

const fn field(id: i16, name: &'static str, ttype: TType, required: bool) -> FieldSpec {
    FieldSpec {
        id,
        name,
        ttype,
        required,
    }
}

const TAG_FIELDS: &[FieldSpec] = &[
    field(1, "key", TType::String, true),
    field(2, "vType", TType::I32, true),
    field(3, "vStr", TType::String, false),
    field(4, "vDouble", TType::Double, false),
    field(5, "vBool", TType::Bool, false),
    field(6, "vLong", TType::I64, false),
    field(7, "vBinary", TType::String, false),
];
const LOG_FIELDS: &[FieldSpec] = &[
    field(1, "timestamp", TType::I64, true),
    field(2, "fields", TType::List, true),
];
const SPAN_REF_FIELDS: &[FieldSpec] = &[
    field(1, "refType", TType::I32, true),
    field(2, "traceIdLow", TType::I64, true),
    field(3, "traceIdHigh", TType::I64, true),
    field(4, "spanId", TType::I64, true),
];
const SPAN_FIELDS: &[FieldSpec] = &[
    field(1, "traceIdLow", TType::I64, true),
    field(2, "traceIdHigh", TType::I64, true),
    field(3, "spanId", TType::I64, true),
    field(4, "parentSpanId", TType::I64, true),
    field(5, "operationName", TType::String, true),
    field(6, "references", TType::List, false),
    field(7, "flags", TType::I32, true),
    field(8, "startTime", TType::I64, true),
    field(9, "duration", TType::I64, true),
    field(10, "tags", TType::List, false),
    field(11, "logs", TType::List, false),
];
const PROCESS_FIELDS: &[FieldSpec] = &[
    field(1, "serviceName", TType::String, true),
    field(2, "tags", TType::List, false),
];
const CLIENT_STATS_FIELDS: &[FieldSpec] = &[
    field(1, "fullQueueDroppedSpans", TType::I64, true),
    field(2, "tooLargeDroppedSpans", TType::I64, true),
    field(3, "failedToEmitSpans", TType::I64, true),
];
const BATCH_FIELDS: &[FieldSpec] = &[
    field(1, "process", TType::Struct, true),
    field(2, "spans", TType::List, true),
    field(3, "seqNo", TType::I64, false),
    field(4, "stats", TType::Struct, false),
];
const EMIT_BATCH_ARGS_FIELDS: &[FieldSpec] = &[field(1, "batch", TType::Struct, false)];

/// Which fields of a struct were read, and the last known field skipped for its wrong type.
struct Seen {
    read: u32,
    wrong_type: Option<(i16, TType)>,
}

impl Seen {
    fn has(&self, id: i16) -> bool {
        (0..32).contains(&id) && self.read & (1u32 << id) != 0
    }
}

/// Thrift `TType` names for messages.
fn type_name(t: TType) -> &'static str {
    match t {
        TType::Stop => "stop",
        TType::Void => "void",
        TType::Bool => "bool",
        TType::I08 => "i8",
        TType::Double => "double",
        TType::I16 => "i16",
        TType::I32 => "i32",
        TType::I64 => "i64",
        TType::String => "string",
        TType::Struct => "struct",
        TType::Map => "map",
        TType::Set => "set",
        TType::List => "list",
        TType::Uuid => "uuid",
        _ => "unknown",
    }
}

pub(crate) struct Reader<'a, P> {
    prot: P,
    data: &'a [u8],
    pos: &'a Cell<usize>,
    protocol: AgentProtocol,
}

/// Run `f` over a reader for `data` in `protocol`. Strings longer than the input and list
/// counts above the bytes remaining are refused before the protocol allocates.
pub(crate) fn with_reader<T>(
    data: &[u8],
    protocol: AgentProtocol,
    f: impl FnOnce(&mut dyn ReadJaeger) -> Res<T>,
) -> Res<T> {
    let pos = Cell::new(0);
    let transport = SliceRead { data, pos: &pos };
    match protocol {
        AgentProtocol::Binary => {
            // Non-strict, like Go's TDeserializer and agent: both message header forms.
            let prot = TBinaryInputProtocol::with_config(transport, false, config(data.len()));
            f(&mut Reader {
                prot,
                data,
                pos: &pos,
                protocol,
            })
        }
        AgentProtocol::Compact => {
            let prot = TCompactInputProtocol::with_config(transport, config(data.len()));
            f(&mut Reader {
                prot,
                data,
                pos: &pos,
                protocol,
            })
        }
    }
}

/// Crate limits that back up the reader's own checks (a binary non-strict message name is
/// read by the crate without our peek): nothing can be longer than the input.
fn config(input_bytes: usize) -> ::thrift::TConfiguration {
    ::thrift::TConfiguration::builder()
        .max_string_size(Some(input_bytes))
        .max_container_size(Some(input_bytes))
        .build()
        .unwrap_or_default()
}

/// The object-safe face of [`Reader`], so the decoders are written once for both protocols.
pub(crate) trait ReadJaeger {
    fn batch(&mut self) -> Res<Batch>;
    fn agent_call(&mut self) -> Res<AgentCall>;
}

impl<P: TInputProtocol> ReadJaeger for Reader<'_, P> {
    fn batch(&mut self) -> Res<Batch> {
        self.read_batch()
    }

    fn agent_call(&mut self) -> Res<AgentCall> {
        let header = self.prot.read_message_begin().map_err(thrift_err);
        let header = at(header, || "message header".to_owned())?;
        if header.name != "emitBatch" {
            return Err(format!(
                "unknown method {:?} (the agent serves only emitBatch)",
                header.name
            ));
        }
        if !matches!(
            header.message_type,
            TMessageType::OneWay | TMessageType::Call
        ) {
            return Err(format!(
                "emitBatch message of type {:?}, expected ONEWAY or CALL",
                header.message_type
            ));
        }
        let mut batch = None;
        let seen = self.read_struct(EMIT_BATCH_ARGS_FIELDS, |r, _id| {
            batch = Some(r.read_batch()?);
            Ok(())
        });
        at(seen, || "emitBatch args".to_owned())?;
        self.prot.read_message_end().map_err(thrift_err)?;
        Ok(AgentCall::EmitBatch(batch))
    }
}

impl<P: TInputProtocol> Reader<'_, P> {
    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos.get())
    }

    /// Read one struct: for each field whose id and type match `fields`, call `read_field`;
    /// skip the rest. Then check that every required field was read.
    fn read_struct(
        &mut self,
        fields: &'static [FieldSpec],
        mut read_field: impl FnMut(&mut Self, i16) -> Res<()>,
    ) -> Res<Seen> {
        self.prot.read_struct_begin().map_err(thrift_err)?;
        let mut seen = Seen {
            read: 0,
            wrong_type: None,
        };
        loop {
            let header = self.prot.read_field_begin().map_err(thrift_err);
            let header = at(header, || "field header".to_owned())?;
            if header.field_type == TType::Stop {
                break;
            }
            let id = header.id.unwrap_or(0);
            match fields.iter().find(|f| f.id == id) {
                Some(spec) if spec.ttype == header.field_type => {
                    at(read_field(self, id), || {
                        format!("field {id} ({})", spec.name)
                    })?;
                    seen.read |= 1u32 << id;
                }
                found => {
                    if found.is_some() {
                        seen.wrong_type = Some((id, header.field_type));
                    }
                    let skipped = self.prot.skip(header.field_type).map_err(thrift_err);
                    at(skipped, || format!("skipping field {id}"))?;
                }
            }
            self.prot.read_field_end().map_err(thrift_err)?;
        }
        self.prot.read_struct_end().map_err(thrift_err)?;
        for spec in fields.iter().filter(|f| f.required) {
            if seen.has(spec.id) {
                continue;
            }
            return Err(match seen.wrong_type {
                Some((id, t)) if id == spec.id => format!(
                    "field {} ({}) has type {}, expected {}",
                    spec.id,
                    spec.name,
                    type_name(t),
                    type_name(spec.ttype)
                ),
                _ => format!("required field {} ({}) missing", spec.id, spec.name),
            });
        }
        Ok(seen)
    }

    /// A list of `element` values: each read by `read_one`, errors naming `what` and the index.
    fn read_list<T>(
        &mut self,
        element: TType,
        what: &str,
        mut read_one: impl FnMut(&mut Self) -> Res<T>,
    ) -> Res<Vec<T>> {
        let header = self.prot.read_list_begin().map_err(thrift_err)?;
        if header.element_type != element {
            return Err(format!(
                "list of {}, expected list of {}",
                type_name(header.element_type),
                type_name(element)
            ));
        }
        let count = usize::try_from(header.size).map_err(|_| "negative list size".to_owned())?;
        if count > self.remaining() {
            return Err(format!(
                "list of {count} elements exceeds the {} bytes remaining",
                self.remaining()
            ));
        }
        let mut items = Vec::new();
        for index in 0..count {
            items.push(at(read_one(self), || format!("{what} {index}"))?);
        }
        self.prot.read_list_end().map_err(thrift_err)?;
        Ok(items)
    }

    /// The declared length of the string or binary at the cursor, if its prefix is complete.
    fn peek_bytes_len(&self) -> Option<(u64, usize)> {
        let rest = self.data.get(self.pos.get()..)?;
        match self.protocol {
            AgentProtocol::Binary => {
                let prefix: [u8; 4] = rest.get(..4)?.try_into().ok()?;
                // A negative length is refused by the crate itself.
                Some((u64::from(u32::from_be_bytes(prefix)) & 0x7fff_ffff, 4))
            }
            AgentProtocol::Compact => {
                let mut value = 0u64;
                for (i, byte) in rest.iter().take(10).enumerate() {
                    value |= u64::from(byte & 0x7f) << (7 * i);
                    if byte & 0x80 == 0 {
                        return Some((value, i + 1));
                    }
                }
                None
            }
        }
    }

    fn read_bytes(&mut self) -> Res<Vec<u8>> {
        if let Some((len, prefix)) = self.peek_bytes_len() {
            let available = self.remaining().saturating_sub(prefix);
            if len > available as u64 {
                return Err(format!(
                    "length {len} exceeds the {available} bytes remaining"
                ));
            }
        }
        self.prot.read_bytes().map_err(thrift_err)
    }

    /// Go strings are bytes; invalid UTF-8 is replaced rather than refused.
    fn read_string(&mut self) -> Res<String> {
        let bytes = self.read_bytes()?;
        Ok(String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    fn read_i64(&mut self) -> Res<i64> {
        self.prot.read_i64().map_err(thrift_err)
    }

    fn read_i32(&mut self) -> Res<i32> {
        self.prot.read_i32().map_err(thrift_err)
    }

    fn read_tags(&mut self) -> Res<Vec<Tag>> {
        self.read_list(TType::Struct, "tag", |r| r.read_tag())
    }

    fn read_tag(&mut self) -> Res<Tag> {
        let mut key = String::new();
        let mut v_type = 0;
        let mut v_str = None;
        let mut v_double = None;
        let mut v_bool = None;
        let mut v_long = None;
        let mut v_binary = None;
        self.read_struct(TAG_FIELDS, |r, id| {
            match id {
                1 => key = r.read_string()?,
                2 => v_type = r.read_i32()?,
                3 => v_str = Some(r.read_string()?),
                4 => v_double = Some(r.prot.read_double().map_err(thrift_err)?),
                5 => v_bool = Some(r.prot.read_bool().map_err(thrift_err)?),
                6 => v_long = Some(r.read_i64()?),
                _ => v_binary = Some(r.read_bytes()?),
            }
            Ok(())
        })?;
        // TagType: STRING=0, DOUBLE=1, BOOL=2, LONG=3, BINARY=4; an unset optional value reads
        // as its zero value (Go's GetV* getters).
        let value = match v_type {
            0 => TagValue::Str(v_str.unwrap_or_default()),
            1 => TagValue::Double(v_double.unwrap_or_default()),
            2 => TagValue::Bool(v_bool.unwrap_or_default()),
            3 => TagValue::Long(v_long.unwrap_or_default()),
            4 => TagValue::Binary(v_binary.unwrap_or_default()),
            // Go's generated TagType.String() for an unknown value.
            _ => TagValue::Unknown("<UNSET>".to_owned()),
        };
        Ok(Tag { key, value })
    }

    fn read_log(&mut self) -> Res<Log> {
        let mut timestamp = 0i64;
        let mut fields = Vec::new();
        self.read_struct(LOG_FIELDS, |r, id| {
            match id {
                1 => timestamp = r.read_i64()?,
                _ => fields = r.read_tags()?,
            }
            Ok(())
        })?;
        Ok(Log {
            time_unix_nano: micros_to_nanos(timestamp),
            fields,
        })
    }

    fn read_span_ref(&mut self) -> Res<SpanRef> {
        let (mut ref_type, mut low, mut high, mut span_id) = (0, 0, 0, 0);
        self.read_struct(SPAN_REF_FIELDS, |r, id| {
            match id {
                1 => ref_type = r.read_i32()?,
                2 => low = r.read_i64()?,
                3 => high = r.read_i64()?,
                _ => span_id = r.read_i64()?,
            }
            Ok(())
        })?;
        Ok(SpanRef {
            ref_type: match ref_type {
                0 => RefType::ChildOf,
                1 => RefType::FollowsFrom,
                _ => RefType::Other,
            },
            trace_id: trace_id(high, low),
            span_id: span_id as u64,
        })
    }

    fn read_span(&mut self) -> Res<Option<JaegerSpan>> {
        let (mut low, mut high, mut span_id, mut parent) = (0i64, 0i64, 0i64, 0i64);
        let (mut flags, mut start, mut duration) = (0i32, 0i64, 0i64);
        let mut operation_name = String::new();
        let mut references = None;
        let mut tags = None;
        let mut logs = None;
        self.read_struct(SPAN_FIELDS, |r, id| {
            match id {
                1 => low = r.read_i64()?,
                2 => high = r.read_i64()?,
                3 => span_id = r.read_i64()?,
                4 => parent = r.read_i64()?,
                5 => operation_name = r.read_string()?,
                6 => {
                    references =
                        Some(r.read_list(TType::Struct, "reference", |r| r.read_span_ref())?)
                }
                7 => flags = r.read_i32()?,
                8 => start = r.read_i64()?,
                9 => duration = r.read_i64()?,
                10 => tags = Some(r.read_tags()?),
                _ => logs = Some(r.read_list(TType::Struct, "log", |r| r.read_log())?),
            }
            Ok(())
        })?;
        let blank = low == 0
            && high == 0
            && span_id == 0
            && parent == 0
            && operation_name.is_empty()
            && flags == 0
            && start == 0
            && duration == 0
            && references.is_none()
            && tags.is_none()
            && logs.is_none();
        if blank {
            return Ok(None);
        }
        Ok(Some(JaegerSpan {
            trace_id: trace_id(high, low),
            span_id: span_id as u64,
            parent_span_id: parent as u64,
            operation_name,
            references: references.unwrap_or_default(),
            start_unix_nano: micros_to_nanos(start),
            // Go: microsecondsToUnixNano(span.StartTime + span.Duration), int64 wrapping.
            end_unix_nano: micros_to_nanos(start.wrapping_add(duration)),
            tags: tags.unwrap_or_default(),
            logs: logs.unwrap_or_default(),
        }))
    }

    fn read_process(&mut self) -> Res<Process> {
        let mut process = Process::default();
        self.read_struct(PROCESS_FIELDS, |r, id| {
            match id {
                1 => process.service_name = r.read_string()?,
                _ => process.tags = r.read_tags()?,
            }
            Ok(())
        })?;
        Ok(process)
    }

    fn read_client_stats(&mut self) -> Res<()> {
        self.read_struct(CLIENT_STATS_FIELDS, |r, _id| r.read_i64().map(drop))?;
        Ok(())
    }

    fn read_batch(&mut self) -> Res<Batch> {
        let mut process = Process::default();
        let mut spans = Vec::new();
        self.read_struct(BATCH_FIELDS, |r, id| {
            match id {
                1 => process = r.read_process()?,
                2 => spans = r.read_list(TType::Struct, "span", |r| r.read_span())?,
                3 => drop(r.read_i64()?),
                _ => r.read_client_stats()?,
            }
            Ok(())
        })?;
        Ok(Batch { process, spans })
    }
}

fn trace_id(high: i64, low: i64) -> TraceId {
    TraceId {
        high: high as u64,
        low: low as u64,
    }
}

/// Go's `microsecondsToUnixNano`: `uint64(us) * 1000`, wrapping.
fn micros_to_nanos(micros: i64) -> u64 {
    (micros as u64).wrapping_mul(1000)
}

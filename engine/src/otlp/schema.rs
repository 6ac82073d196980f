//! The OTLP messages below a span (and the resource and scope), as data: which field number
//! holds which kind of value. One generic walker checks a message against its schema: wire
//! types of known fields, UTF-8 of strings, nesting depth. Field numbers and types are those
//! of opentelemetry-proto v1.x (`common.proto`, `resource.proto`, `trace.proto`) as compiled
//! into the `opentelemetry-proto` 0.33 crate; unknown fields are skipped by wire type.
//! The walker (`check_message`) serves `walk`, which names errors; `fast` reads the same
//! tables for the fields it has no loop of its own for, and computes the keys its loops match
//! from them ([`Schema::key`], [`Schema::child`]), so both follow one definition.
//!
//! Architecture Invariant: a message that passes `check_message` is accepted by prost's
//! decoder for the same type: every rule prost enforces is checked here (wire types of known
//! fields, UTF-8, varint and tag validity, groups), and the depth limit is lower than prost's.

use super::wire::{Field, Scanner, WireType};
use super::{OtlpError, OtlpErrorKind, PathSegment, NESTING_DEPTH_MAX};

pub struct Schema {
    pub fields: &'static [FieldSpec],
    /// `by_number[n]` is the index in `fields` of field number `n`, or [`NOT_IN_SCHEMA`]:
    /// one load per field instead of a search (built at compile time by [`schema`]).
    by_number: [u8; FIELD_NUMBER_MAX + 1],
}

/// Field counters are kept in a fixed array: no schema has more fields than this.
const SCHEMA_FIELDS_MAX: usize = 16;
/// The highest field number any schema here knows.
const FIELD_NUMBER_MAX: usize = 16;
const NOT_IN_SCHEMA: u8 = u8::MAX;
const _: () = assert!(SCHEMA_FIELDS_MAX < NOT_IN_SCHEMA as usize);

/// A schema of `fields`, with its lookup table. Fails to compile when a field number is
/// above [`FIELD_NUMBER_MAX`], listed twice, or there are too many fields.
#[expect(
    clippy::indexing_slicing,
    reason = "compile-time only: an index out of range fails the build, never a request"
)]
const fn schema(fields: &'static [FieldSpec]) -> Schema {
    assert!(fields.len() <= SCHEMA_FIELDS_MAX);
    let mut by_number = [NOT_IN_SCHEMA; FIELD_NUMBER_MAX + 1];
    let mut index = 0;
    while index < fields.len() {
        let number = fields[index].number as usize;
        assert!(number >= 1 && number <= FIELD_NUMBER_MAX);
        assert!(
            by_number[number] == NOT_IN_SCHEMA,
            "field number listed twice"
        );
        by_number[number] = index as u8;
        index += 1;
    }
    Schema { fields, by_number }
}

impl Schema {
    /// The index and spec of field `number`, if the schema knows it.
    fn field(&self, number: u32) -> Option<(usize, &FieldSpec)> {
        let index = *self.by_number.get(number as usize)?;
        let spec = self.fields.get(usize::from(index))?;
        Some((usize::from(index), spec))
    }

    /// The kind of field `number`, if the schema knows it.
    pub fn kind(&self, number: u32) -> Option<&Kind> {
        self.field(number).map(|(_, spec)| &spec.kind)
    }

    /// The key (the tag varint, `number << 3 | wire type`) that field `number` has when its
    /// wire type is that of its kind, for code that matches fields on their key. Meant for
    /// constants: a field the schema does not know, or of another kind, fails the build.
    #[expect(
        clippy::indexing_slicing,
        reason = "compile-time only: an index out of range fails the build, never a request"
    )]
    pub const fn key(&self, number: u32, kind: KindName) -> u64 {
        let index = self.by_number[number as usize];
        assert!(index != NOT_IN_SCHEMA, "field not in the schema");
        let field_kind = &self.fields[index as usize].kind;
        assert!(
            field_kind.name() as u8 == kind as u8,
            "field of another kind"
        );
        (number as u64) << 3 | field_kind.wire_type()
    }

    /// The schema of message field `number`. Meant for constants, like [`Schema::key`].
    #[expect(
        clippy::indexing_slicing,
        reason = "compile-time only: an index out of range fails the build, never a request"
    )]
    pub const fn child(&self, number: u32) -> &'static Schema {
        let index = self.by_number[number as usize];
        assert!(index != NOT_IN_SCHEMA, "field not in the schema");
        match self.fields[index as usize].kind {
            Kind::Message(schema) => schema,
            _ => panic!("not a message field"),
        }
    }
}

pub struct FieldSpec {
    pub number: u32,
    pub name: &'static str,
    pub kind: Kind,
    pub repeated: bool,
}

pub enum Kind {
    /// Length-delimited, valid UTF-8.
    String,
    Bytes,
    /// Any varint-encoded scalar: uint32, int32, int64, bool, enum.
    Varint,
    Fixed64,
    Fixed32,
    Message(&'static Schema),
}

/// The kinds without their payload, for [`Schema::key`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum KindName {
    String,
    Bytes,
    Varint,
    Fixed64,
    Fixed32,
    Message,
}

impl Kind {
    const fn name(&self) -> KindName {
        match self {
            Kind::String => KindName::String,
            Kind::Bytes => KindName::Bytes,
            Kind::Varint => KindName::Varint,
            Kind::Fixed64 => KindName::Fixed64,
            Kind::Fixed32 => KindName::Fixed32,
            Kind::Message(_) => KindName::Message,
        }
    }

    /// The wire type a field of this kind has, as its bits in a key.
    const fn wire_type(&self) -> u64 {
        match self {
            Kind::Varint => 0,
            Kind::Fixed64 => 1,
            Kind::String | Kind::Bytes | Kind::Message(_) => 2,
            Kind::Fixed32 => 5,
        }
    }
}

const fn one(number: u32, name: &'static str, kind: Kind) -> FieldSpec {
    FieldSpec {
        number,
        name,
        kind,
        repeated: false,
    }
}

const fn many(number: u32, name: &'static str, kind: Kind) -> FieldSpec {
    FieldSpec {
        number,
        name,
        kind,
        repeated: true,
    }
}

pub static ANY_VALUE: Schema = schema(&[
    one(1, "string_value", Kind::String),
    one(2, "bool_value", Kind::Varint),
    one(3, "int_value", Kind::Varint),
    one(4, "double_value", Kind::Fixed64),
    one(5, "array_value", Kind::Message(&ARRAY_VALUE)),
    one(6, "kvlist_value", Kind::Message(&KEY_VALUE_LIST)),
    one(7, "bytes_value", Kind::Bytes),
    one(8, "string_value_strindex", Kind::Varint),
]);

pub static ARRAY_VALUE: Schema = schema(&[many(1, "values", Kind::Message(&ANY_VALUE))]);

pub static KEY_VALUE_LIST: Schema = schema(&[many(1, "values", Kind::Message(&KEY_VALUE))]);

pub static KEY_VALUE: Schema = schema(&[
    one(1, "key", Kind::String),
    one(2, "value", Kind::Message(&ANY_VALUE)),
    one(3, "key_strindex", Kind::Varint),
]);

pub static RESOURCE: Schema = schema(&[
    many(1, "attributes", Kind::Message(&KEY_VALUE)),
    one(2, "dropped_attributes_count", Kind::Varint),
    many(3, "entity_refs", Kind::Message(&ENTITY_REF)),
]);

pub static ENTITY_REF: Schema = schema(&[
    one(1, "schema_url", Kind::String),
    one(2, "type", Kind::String),
    many(3, "id_keys", Kind::String),
    many(4, "description_keys", Kind::String),
]);

pub static SCOPE: Schema = schema(&[
    one(1, "name", Kind::String),
    one(2, "version", Kind::String),
    many(3, "attributes", Kind::Message(&KEY_VALUE)),
    one(4, "dropped_attributes_count", Kind::Varint),
]);

/// `Span`. Fields 1, 2, 7 and 8 are read by the splitter itself; they are listed for
/// completeness.
pub static SPAN: Schema = schema(&[
    one(1, "trace_id", Kind::Bytes),
    one(2, "span_id", Kind::Bytes),
    one(3, "trace_state", Kind::String),
    one(4, "parent_span_id", Kind::Bytes),
    one(5, "name", Kind::String),
    one(6, "kind", Kind::Varint),
    one(7, "start_time_unix_nano", Kind::Fixed64),
    one(8, "end_time_unix_nano", Kind::Fixed64),
    many(9, "attributes", Kind::Message(&KEY_VALUE)),
    one(10, "dropped_attributes_count", Kind::Varint),
    many(11, "events", Kind::Message(&EVENT)),
    one(12, "dropped_events_count", Kind::Varint),
    many(13, "links", Kind::Message(&LINK)),
    one(14, "dropped_links_count", Kind::Varint),
    one(15, "status", Kind::Message(&STATUS)),
    one(16, "flags", Kind::Fixed32),
]);

pub static EVENT: Schema = schema(&[
    one(1, "time_unix_nano", Kind::Fixed64),
    one(2, "name", Kind::String),
    many(3, "attributes", Kind::Message(&KEY_VALUE)),
    one(4, "dropped_attributes_count", Kind::Varint),
]);

pub static LINK: Schema = schema(&[
    one(1, "trace_id", Kind::Bytes),
    one(2, "span_id", Kind::Bytes),
    one(3, "trace_state", Kind::String),
    many(4, "attributes", Kind::Message(&KEY_VALUE)),
    one(5, "dropped_attributes_count", Kind::Varint),
    one(6, "flags", Kind::Fixed32),
]);

pub static STATUS: Schema = schema(&[
    one(2, "message", Kind::String),
    one(3, "code", Kind::Varint),
]);

const _: () = assert!(SPAN.fields.len() <= SCHEMA_FIELDS_MAX);

/// How many times each field of a schema has been seen so far in one message, to name the
/// element of a repeated field in an error path.
pub struct Occurrences([u32; SCHEMA_FIELDS_MAX]);

impl Occurrences {
    pub fn new() -> Occurrences {
        Occurrences([0; SCHEMA_FIELDS_MAX])
    }
}

/// Checks message `bytes` (at absolute offset `origin`, nested `depth` levels deep) against
/// `schema`.
pub fn check_message(
    schema: &Schema,
    bytes: &[u8],
    origin: usize,
    depth: u32,
) -> Result<(), OtlpError> {
    let mut seen = Occurrences::new();
    let mut scanner = Scanner::new(bytes, origin);
    while let Some(field) = scanner.next_field(depth)? {
        check_field(schema, &field, &mut seen, depth)?;
    }
    Ok(())
}

/// Checks one field of a message at `depth` against `schema`; unknown fields pass (the
/// scanner has already checked their wire structure).
pub fn check_field(
    schema: &Schema,
    field: &Field<'_>,
    seen: &mut Occurrences,
    depth: u32,
) -> Result<(), OtlpError> {
    let Some((index, spec)) = schema.field(field.number) else {
        return Ok(());
    };
    let segment = if spec.repeated {
        let occurrence = match seen.0.get_mut(index) {
            Some(count) => {
                let occurrence = *count;
                *count = occurrence.saturating_add(1);
                occurrence
            }
            None => 0,
        };
        PathSegment::Element(spec.name, occurrence)
    } else {
        PathSegment::Field(spec.name)
    };
    check_value(spec, field, depth).map_err(|error| error.within(segment))
}

fn check_value(spec: &FieldSpec, field: &Field<'_>, depth: u32) -> Result<(), OtlpError> {
    match spec.kind {
        Kind::String => {
            let (bytes, at) = field.bytes()?;
            check_utf8(bytes, at)
        }
        Kind::Bytes => field.bytes().map(drop),
        Kind::Varint => field.expect(WireType::Varint),
        Kind::Fixed64 => field.expect(WireType::Fixed64),
        Kind::Fixed32 => field.expect(WireType::Fixed32),
        Kind::Message(schema) => {
            let (bytes, at) = field.bytes()?;
            if depth + 1 > NESTING_DEPTH_MAX {
                return Err(OtlpError::new(OtlpErrorKind::TooDeep { at: field.at }));
            }
            check_message(schema, bytes, at, depth + 1)
        }
    }
}

/// `bytes` (at absolute offset `at`) must be UTF-8, as prost requires of `string` fields.
pub fn check_utf8(bytes: &[u8], at: usize) -> Result<(), OtlpError> {
    // SIMD where the CPU has it; std only to locate an error.
    if simdutf8::basic::from_utf8(bytes).is_ok() {
        return Ok(());
    }
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(()),
        Err(error) => Err(OtlpError::new(OtlpErrorKind::InvalidUtf8 {
            at: at + error.valid_up_to(),
        })),
    }
}

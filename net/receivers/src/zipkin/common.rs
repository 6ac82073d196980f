//! Helpers shared by the Zipkin decoders: hex IDs, attribute building, the collector's optional
//! typing of string tags, and how a bad value is quoted in an error message.

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};

/// How much of a bad value an error message quotes.
const SHOWN_CHARS_MAX: usize = 64;

/// `s` quoted for an error message, cut at [`SHOWN_CHARS_MAX`] characters (an error message is
/// not data, so cutting it loses nothing the client sent).
pub(super) fn shown(s: &str) -> String {
    match s.char_indices().nth(SHOWN_CHARS_MAX) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}...", s.get(..cut).unwrap_or_default()),
    }
}

/// A JSON value's type, for "expected X, found Y" messages.
/// Go's encoding/json matches object keys to field names case-insensitively; unknown keys are
/// ignored and a repeated key overwrites.
pub(super) fn field<'a>(key: &str, names: &[&'a str]) -> Option<&'a str> {
    names
        .iter()
        .copied()
        .find(|name| name.eq_ignore_ascii_case(key))
}

pub(super) fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn hex_nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses 1 to `2 * out.len()` hex digits (either case) into `out`, big-endian and left-padded
/// with zeros: `strconv.ParseUint(s, 16, 64)` as zipkin-go's `TraceIDFromHex` and `ID` use it.
pub(super) fn parse_hex_left_padded(s: &str, out: &mut [u8]) -> Result<(), String> {
    let digits_max = out.len() * 2;
    if s.is_empty() {
        return Err("empty".to_owned());
    }
    if s.len() > digits_max {
        return Err(format!(
            "{} characters, more than {digits_max} hex digits",
            s.len()
        ));
    }
    out.fill(0);
    let last = out.len() - 1;
    for (i, c) in s.bytes().rev().enumerate() {
        let nibble = hex_nibble(c).ok_or_else(|| "not hex".to_owned())?;
        if let Some(byte) = out.get_mut(last - i / 2) {
            *byte |= if i % 2 == 0 { nibble } else { nibble << 4 };
        }
    }
    Ok(())
}

/// Parses exactly `2 * out.len()` hex digits (either case) into `out`: Go's `hex.Decode` into a
/// buffer of that size.
pub(super) fn parse_hex_exact(s: &str, out: &mut [u8]) -> Result<(), String> {
    if s.len() != out.len() * 2 {
        return Err(format!(
            "{} characters, want {} hex digits",
            s.len(),
            out.len() * 2
        ));
    }
    for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
        let (hi, lo) = match pair {
            [hi, lo] => (hex_nibble(*hi), hex_nibble(*lo)),
            _ => (None, None),
        };
        match (hi, lo, out.get_mut(i)) {
            (Some(hi), Some(lo), Some(byte)) => *byte = (hi << 4) | lo,
            _ => return Err("not hex".to_owned()),
        }
    }
    Ok(())
}

/// An ID as OTLP carries it: pdata marshals an all-zero ID as empty bytes.
pub(super) fn id_bytes(id: &[u8]) -> Vec<u8> {
    if id.iter().all(|b| *b == 0) {
        Vec::new()
    } else {
        id.to_vec()
    }
}

pub(super) fn string_value(s: impl Into<String>) -> Value {
    Value::StringValue(s.into())
}

/// An attribute list that keeps insertion order and replaces the value of a key already present
/// in place, as pdata's `Map.Put*` does.
#[derive(Default)]
pub(super) struct Attributes {
    list: Vec<KeyValue>,
    index: HashMap<String, usize>,
}

impl Attributes {
    pub(super) fn put(&mut self, key: &str, value: Value) {
        let value = Some(AnyValue { value: Some(value) });
        if let Some(kv) = self.index.get(key).and_then(|i| self.list.get_mut(*i)) {
            kv.value = value;
            return;
        }
        self.index.insert(key.to_owned(), self.list.len());
        self.list.push(KeyValue {
            key: key.to_owned(),
            value,
            ..Default::default()
        });
    }

    pub(super) fn from_vec(list: Vec<KeyValue>) -> Attributes {
        let index = list
            .iter()
            .enumerate()
            .map(|(i, kv)| (kv.key.clone(), i))
            .collect();
        Attributes { list, index }
    }

    pub(super) fn into_vec(self) -> Vec<KeyValue> {
        self.list
    }
}

/// A tag value as the collector stores it: a string, or with `parse_string_tags` the int,
/// double or bool its text spells (`zipkin.DetermineValueType`: `^-?\d+$`, `^-?\d+\.\d+$`,
/// `^(true|false)$`; an int out of range clamps as `strconv.ParseInt` does).
pub(super) fn tag_value(value: &str, parse_string_tags: bool) -> Value {
    if !parse_string_tags {
        return string_value(value);
    }
    let unsigned = value.strip_prefix('-').unwrap_or(value);
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if all_digits(unsigned) {
        let clamped = if value.starts_with('-') {
            i64::MIN
        } else {
            i64::MAX
        };
        return Value::IntValue(value.parse().unwrap_or(clamped));
    }
    if let Some((whole, fraction)) = unsigned.split_once('.') {
        if all_digits(whole) && all_digits(fraction) {
            if let Ok(d) = value.parse::<f64>() {
                return Value::DoubleValue(d);
            }
        }
    }
    match value {
        "true" => Value::BoolValue(true),
        "false" => Value::BoolValue(false),
        _ => string_value(value),
    }
}

/// Microseconds to nanoseconds, or `None` past `u64::MAX` nanoseconds (year 2554).
pub(super) fn us_to_ns(us: u64) -> Option<u64> {
    us.checked_mul(1_000)
}

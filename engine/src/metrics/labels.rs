//! Label names and values as Tempo writes them: `Attribute.String()` for names,
//! `Static.AsAnyValue()` for values, and `Labels.String()` (Prometheus' `labels.Labels`
//! text over Tempo's value strings) for the series key.

use std::fmt::Write as _;

use super::{Label, LabelValue};
use crate::ids::TraceId;
use crate::traceql::eval::Value;
use crate::traceql::{format_go_duration, format_go_float, Field, Scope};

/// Tempo's `Attribute.String()`: `span.foo`, `resource.foo`, `.foo`, `duration`,
/// `trace:id`. Unlike our `Display` (which renders query text) names are never quoted.
pub(super) fn field_label(field: &Field) -> String {
    match field {
        Field::Intrinsic(i) => i.as_str().to_string(),
        Field::Attribute(a) => {
            let mut out = String::new();
            if a.parent {
                out.push_str("parent.");
            }
            if a.scope != Scope::None {
                out.push_str(a.scope.as_str());
                out.push('.');
            }
            if out.is_empty() && !a.name.is_empty() {
                out.push('.');
            }
            out.push_str(&a.name);
            out
        }
    }
}

/// `Static.AsAnyValue()`: durations, statuses, kinds and nil as strings.
pub(super) fn label_value(v: &Value) -> LabelValue {
    match v {
        Value::Nil => LabelValue::Str("nil".to_string()),
        Value::Int(i) => LabelValue::Int(*i),
        Value::Float(f) => LabelValue::Float(*f),
        Value::Str(s) => LabelValue::Str(s.clone()),
        Value::Bool(b) => LabelValue::Bool(*b),
        Value::Duration(d) => LabelValue::Str(format_go_duration(*d)),
        Value::Status(s) => LabelValue::Str(s.as_str().to_string()),
        Value::Kind(k) => LabelValue::Str(k.as_str().to_string()),
    }
}

/// The text `Labels.String()` gives a value: `<nil>` for nil (and the string `nil`),
/// `<empty>` for the empty string, Go's `%g` for floats.
pub(super) fn prom_value(v: &LabelValue, out: &mut String) {
    match v {
        LabelValue::Str(s) if s == "nil" => out.push_str("<nil>"),
        LabelValue::Str(s) if s.is_empty() => out.push_str("<empty>"),
        LabelValue::Str(s) => out.push_str(s),
        LabelValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        LabelValue::Float(f) => out.push_str(&format_go_float(*f)),
        LabelValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
    }
}

/// Prometheus' `labels.Labels.String()` (v0.54) of Tempo's values: sorted by name, a later
/// label of the same name replacing an earlier one (`labels.Builder.Set`), values quoted
/// with Go's `strconv.Quote`: `{resource.service.name="frontend", status="error"}`.
pub(super) fn prom_labels(labels: &[Label]) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::with_capacity(labels.len());
    for l in labels {
        let mut text = String::new();
        prom_value(&l.value, &mut text);
        match pairs.iter_mut().find(|(name, _)| *name == l.name) {
            Some(pair) => pair.1 = text,
            None => pairs.push((&l.name, text)),
        }
    }
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::from("{");
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
        out.push('=');
        go_quote(value, &mut out);
    }
    out.push('}');
    out
}

/// Go's `strconv.Quote`. Printability follows `unicode.IsPrint` for everything but
/// unassigned code points (which need Unicode tables): controls, separators other than the
/// ASCII space, format characters and private-use characters are escaped.
pub(super) fn go_quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_go_printable(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format_or_private = matches!(u,
        0x00AD
        | 0x0600..=0x0605
        | 0x061C
        | 0x06DD
        | 0x070F
        | 0x08E2
        | 0x180E
        | 0x200B..=0x200F
        | 0x2028..=0x202E
        | 0x2060..=0x206F
        | 0xFEFF
        | 0xFFF9..=0xFFFB
        | 0xFFFE..=0xFFFF
        | 0x110BD
        | 0x110CD
        | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A
        | 0xE0001
        | 0xE0020..=0xE007F
        | 0xE000..=0xF8FF
        | 0xF0000..=0x10FFFF);
    !format_or_private
}

/// Tempo's `util.TraceIDToHexString`: lower-case hex without leading zeros.
pub(super) fn trace_id_text(id: &TraceId) -> String {
    id.to_hex().trim_start_matches('0').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traceql::{Attribute, Intrinsic};

    fn label(name: &str, value: LabelValue) -> Label {
        Label {
            name: name.to_string(),
            value,
        }
    }

    #[test]
    fn prom_text() {
        let check = |labels: &[Label], expected: &str| {
            assert_eq!(prom_labels(labels), expected);
        };
        check(&[], "{}");
        check(
            &[label("__name__", LabelValue::Str("rate".into()))],
            r#"{__name__="rate"}"#,
        );
        check(
            &[
                label("span.foo", LabelValue::Str("bar".into())),
                label("p", LabelValue::Float(0.5)),
            ],
            r#"{p="0.5", span.foo="bar"}"#,
        );
        check(
            &[
                label(".a", LabelValue::Str("nil".into())),
                label("b", LabelValue::Str(String::new())),
                label("c", LabelValue::Int(-3)),
                label("d", LabelValue::Bool(true)),
                label("e", LabelValue::Float(1.28e-7)),
            ],
            r#"{.a="<nil>", b="<empty>", c="-3", d="true", e="1.28e-07"}"#,
        );
        check(
            &[label(
                "x",
                LabelValue::Str("a\"b\\c\nd\u{1}é\u{200b}😀".into()),
            )],
            r#"{x="a\"b\\c\nd\x01é\u200b😀"}"#,
        );
        // A later label of the same name wins, as in labels.Builder.
        check(
            &[
                label("x", LabelValue::Int(1)),
                label("x", LabelValue::Int(2)),
            ],
            r#"{x="2"}"#,
        );
    }

    #[test]
    fn names_and_values() {
        let attr = |scope, name: &str| {
            Field::Attribute(Attribute {
                scope,
                parent: false,
                name: name.to_string(),
            })
        };
        assert_eq!(
            field_label(&attr(Scope::Resource, "service.name")),
            "resource.service.name"
        );
        assert_eq!(field_label(&attr(Scope::Span, "a b")), "span.a b");
        assert_eq!(field_label(&attr(Scope::None, "foo")), ".foo");
        assert_eq!(
            field_label(&Field::Intrinsic(Intrinsic::TraceId)),
            "trace:id"
        );
        assert_eq!(
            label_value(&Value::Duration(1_500_000_000)),
            LabelValue::Str("1.5s".into())
        );
        assert_eq!(label_value(&Value::Nil), LabelValue::Str("nil".into()));
        let mut id = [0u8; 16];
        id[15] = 0xab;
        assert_eq!(trace_id_text(&TraceId(id)), "ab");
    }
}

//! A minimal JSON object writer for the `RESULT` line (no serde needed for flat numbers and
//! strings).

use std::fmt::Write;

/// Builds one JSON object, fields in insertion order.
#[derive(Clone, Debug, Default)]
pub struct Object {
    out: String,
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Object {
    pub fn new() -> Object {
        Object::default()
    }

    fn key(&mut self, key: &str) {
        self.out.push(if self.out.is_empty() { '{' } else { ',' });
        self.out.push_str(&escape(key));
        self.out.push(':');
    }

    pub fn u64(mut self, key: &str, value: u64) -> Object {
        self.key(key);
        let _ = write!(self.out, "{value}");
        self
    }

    /// Non-finite numbers are written as `null` (JSON has no NaN).
    pub fn f64(mut self, key: &str, value: f64) -> Object {
        self.key(key);
        if value.is_finite() {
            let _ = write!(self.out, "{}", (value * 1000.0).round() / 1000.0);
        } else {
            self.out.push_str("null");
        }
        self
    }

    pub fn bool(mut self, key: &str, value: bool) -> Object {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    pub fn str(mut self, key: &str, value: &str) -> Object {
        self.key(key);
        self.out.push_str(&escape(value));
        self
    }

    /// A nested object (already rendered by [`Object::finish`]).
    pub fn raw(mut self, key: &str, json: &str) -> Object {
        self.key(key);
        self.out.push_str(json);
        self
    }

    pub fn finish(mut self) -> String {
        if self.out.is_empty() {
            self.out.push('{');
        }
        self.out.push('}');
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_flat_objects() {
        let inner = Object::new().u64("UNAVAILABLE", 3).finish();
        let json = Object::new()
            .u64("spans", 10)
            .f64("rate", 1.23456)
            .f64("nan", f64::NAN)
            .bool("ok", true)
            .str("mode", "a\"b\n")
            .raw("errors", &inner)
            .finish();
        assert_eq!(
            json,
            r#"{"spans":10,"rate":1.235,"nan":null,"ok":true,"mode":"a\"b\n","errors":{"UNAVAILABLE":3}}"#
        );
        assert_eq!(Object::new().finish(), "{}");
        assert_eq!(escape("\u{1}"), "\"\\u0001\"");
    }
}

//! A small writer of the JSON that Go's jsonpb (gogo, `EmitDefaults: false`, `OrigName:
//! false`) writes for Tempo's messages: fields in declaration order, camelCase names, zero
//! scalars left out, 64-bit integers as strings, doubles as Go's `encoding/json` writes them
//! (`NaN`, `Infinity` as quoted names), `tempopb.common.v1.KeyValue` with its `AnyValue`
//! oneof (always written, even when zero). Both query APIs (`search_api`, `metrics_api`)
//! render with it.
//!
//! A repeated field is left out only when Go's slice is nil, not when it is empty; which
//! one Tempo's code holds is the caller's to know (`key_values` and `key_values_always`).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};

use crate::otlp_json::{write_go_double, write_go_string};
use crate::tempopb;

pub(crate) struct Json {
    out: String,
    /// Per open object or array: nothing written in it yet.
    first: Vec<bool>,
}

impl Json {
    pub(crate) fn new() -> Json {
        Json {
            out: String::with_capacity(4096),
            first: Vec::new(),
        }
    }
    pub(crate) fn open(&mut self, c: char) {
        self.out.push(c);
        self.first.push(true);
    }
    pub(crate) fn close(&mut self, c: char) {
        self.out.push(c);
        self.first.pop();
    }
    /// The separator before the next member or element.
    pub(crate) fn comma(&mut self) {
        if let Some(first) = self.first.last_mut() {
            if !*first {
                self.out.push(',');
            }
            *first = false;
        }
    }
    pub(crate) fn key(&mut self, key: &str) {
        self.comma();
        write_go_string(&mut self.out, key);
        self.out.push(':');
    }
    pub(crate) fn str_field(&mut self, key: &str, value: &str) {
        if !value.is_empty() {
            self.key(key);
            write_go_string(&mut self.out, value);
        }
    }
    pub(crate) fn u64_string_field(&mut self, key: &str, value: u64) {
        if value != 0 {
            self.key(key);
            self.out.push('"');
            self.out.push_str(&value.to_string());
            self.out.push('"');
        }
    }
    pub(crate) fn i64_string_field(&mut self, key: &str, value: i64) {
        if value != 0 {
            self.key(key);
            self.out.push('"');
            self.out.push_str(&value.to_string());
            self.out.push('"');
        }
    }
    pub(crate) fn u32_field(&mut self, key: &str, value: u32) {
        if value != 0 {
            self.key(key);
            self.out.push_str(&value.to_string());
        }
    }
    /// A `double`: left out when zero (negative zero too, as Go compares it).
    pub(crate) fn f64_field(&mut self, key: &str, value: f64) {
        if value != 0.0 {
            self.key(key);
            write_go_double(&mut self.out, value);
        }
    }
    pub(crate) fn string_item(&mut self, value: &str) {
        self.comma();
        write_go_string(&mut self.out, value);
    }
    /// A repeated `KeyValue` that Tempo's code leaves nil when empty: left out then.
    pub(crate) fn key_values(&mut self, key: &str, kvs: &[KeyValue]) {
        if !kvs.is_empty() {
            self.key_values_always(key, kvs);
        }
    }
    /// A repeated `KeyValue` that Tempo's code allocates (`make`) even when empty: `[]` then.
    pub(crate) fn key_values_always(&mut self, key: &str, kvs: &[KeyValue]) {
        self.key(key);
        self.open('[');
        for kv in kvs {
            self.comma();
            self.open('{');
            self.str_field("key", &kv.key);
            self.key("value");
            self.open('{');
            match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => {
                    self.key("stringValue");
                    write_go_string(&mut self.out, s);
                }
                Some(any_value::Value::IntValue(i)) => {
                    self.key("intValue");
                    self.out.push_str(&format!("\"{i}\""));
                }
                Some(any_value::Value::DoubleValue(f)) => {
                    self.key("doubleValue");
                    write_go_double(&mut self.out, *f);
                }
                Some(any_value::Value::BoolValue(b)) => {
                    self.key("boolValue");
                    self.out.push_str(if *b { "true" } else { "false" });
                }
                _ => {}
            }
            self.close('}');
            self.close('}');
        }
        self.close(']');
    }
    pub(crate) fn finish(self) -> Vec<u8> {
        debug_assert!(self.first.is_empty(), "unbalanced JSON: {}", self.out);
        self.out.into_bytes()
    }
}

/// `"metrics":{...}`: a `tempopb.SearchMetrics`, the statistics of searches and metrics
/// queries (always written: Tempo's answers hold a non-nil one, `{}` when all are zero).
pub(crate) fn search_metrics(j: &mut Json, m: Option<&tempopb::SearchMetrics>) {
    j.key("metrics");
    j.open('{');
    if let Some(m) = m {
        j.u32_field("inspectedTraces", m.inspected_traces);
        j.u64_string_field("inspectedBytes", m.inspected_bytes);
        j.u32_field("totalBlocks", m.total_blocks);
        j.u32_field("completedJobs", m.completed_jobs);
        j.u32_field("totalJobs", m.total_jobs);
        j.u64_string_field("totalBlockBytes", m.total_block_bytes);
        j.u64_string_field("inspectedSpans", m.inspected_spans);
    }
    j.close('}');
}

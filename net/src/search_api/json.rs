//! JSON, as Tempo's frontend writes it (jsonpb: zero values omitted, 64-bit integers as
//! strings, original field names).

use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};

use crate::otlp_json::{write_go_double, write_go_string};
use crate::tempopb;

struct Json {
    out: String,
    first: Vec<bool>,
}

impl Json {
    fn new() -> Json {
        Json {
            out: String::with_capacity(4096),
            first: Vec::new(),
        }
    }
    fn open(&mut self, c: char) {
        self.out.push(c);
        self.first.push(true);
    }
    fn close(&mut self, c: char) {
        self.out.push(c);
        self.first.pop();
    }
    fn comma(&mut self) {
        if let Some(first) = self.first.last_mut() {
            if !*first {
                self.out.push(',');
            }
            *first = false;
        }
    }
    fn key(&mut self, key: &str) {
        self.comma();
        write_go_string(&mut self.out, key);
        self.out.push(':');
    }
    fn str_field(&mut self, key: &str, value: &str) {
        if !value.is_empty() {
            self.key(key);
            write_go_string(&mut self.out, value);
        }
    }
    fn u64_string_field(&mut self, key: &str, value: u64) {
        if value != 0 {
            self.key(key);
            self.out.push('"');
            self.out.push_str(&value.to_string());
            self.out.push('"');
        }
    }
    fn u32_field(&mut self, key: &str, value: u32) {
        if value != 0 {
            self.key(key);
            self.out.push_str(&value.to_string());
        }
    }
    fn string_item(&mut self, value: &str) {
        self.comma();
        write_go_string(&mut self.out, value);
    }
    fn key_values(&mut self, key: &str, kvs: &[KeyValue]) {
        if kvs.is_empty() {
            return;
        }
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
    fn span_set(&mut self, ss: &tempopb::SpanSet) {
        self.open('{');
        if !ss.spans.is_empty() {
            self.key("spans");
            self.open('[');
            for s in &ss.spans {
                self.comma();
                self.open('{');
                self.str_field("spanID", &s.span_id);
                self.str_field("name", &s.name);
                self.u64_string_field("startTimeUnixNano", s.start_time_unix_nano);
                self.u64_string_field("durationNanos", s.duration_nanos);
                self.key_values("attributes", &s.attributes);
                self.close('}');
            }
            self.close(']');
        }
        self.u32_field("matched", ss.matched);
        self.key_values("attributes", &ss.attributes);
        self.close('}');
    }
    fn metadata_metrics(&mut self, m: Option<&tempopb::MetadataMetrics>) {
        self.key("metrics");
        self.open('{');
        if let Some(m) = m {
            self.u64_string_field("inspectedBytes", m.inspected_bytes);
            self.u32_field("totalJobs", m.total_jobs);
            self.u32_field("completedJobs", m.completed_jobs);
            self.u32_field("totalBlocks", m.total_blocks);
            self.u64_string_field("totalBlockBytes", m.total_block_bytes);
        }
        self.close('}');
    }
    fn finish(self) -> Vec<u8> {
        self.out.into_bytes()
    }
}

/// `{"traces":[...],"metrics":{...}}`.
pub fn search_json(r: &tempopb::SearchResponse, _traceql: bool) -> Vec<u8> {
    let mut j = Json::new();
    j.open('{');
    j.key("traces");
    j.open('[');
    for t in &r.traces {
        j.comma();
        j.open('{');
        j.str_field("traceID", &t.trace_id);
        j.str_field("rootServiceName", &t.root_service_name);
        j.str_field("rootTraceName", &t.root_trace_name);
        j.u64_string_field("startTimeUnixNano", t.start_time_unix_nano);
        j.u32_field("durationMs", t.duration_ms);
        if let Some(ss) = &t.span_set {
            j.key("spanSet");
            j.span_set(ss);
        }
        if !t.span_sets.is_empty() {
            j.key("spanSets");
            j.open('[');
            for ss in &t.span_sets {
                j.comma();
                j.span_set(ss);
            }
            j.close(']');
        }
        if !t.service_stats.is_empty() {
            j.key("serviceStats");
            j.open('{');
            for (name, stats) in &t.service_stats {
                j.key(name);
                j.open('{');
                j.u32_field("spanCount", stats.span_count);
                j.u32_field("errorCount", stats.error_count);
                j.close('}');
            }
            j.close('}');
        }
        j.close('}');
    }
    j.close(']');
    j.key("metrics");
    j.open('{');
    if let Some(m) = &r.metrics {
        j.u32_field("inspectedTraces", m.inspected_traces);
        j.u64_string_field("inspectedBytes", m.inspected_bytes);
        j.u32_field("totalBlocks", m.total_blocks);
        j.u32_field("completedJobs", m.completed_jobs);
        j.u32_field("totalJobs", m.total_jobs);
        j.u64_string_field("totalBlockBytes", m.total_block_bytes);
        j.u64_string_field("inspectedSpans", m.inspected_spans);
    }
    j.close('}');
    j.close('}');
    j.finish()
}

pub(super) fn tags_v1_json(r: &tempopb::SearchTagsResponse) -> Vec<u8> {
    string_list_json("tagNames", &r.tag_names, r.metrics.as_ref())
}

/// `{"<key>":["a","b"],"metrics":{...}}`: the v1 tag-names and tag-values answers.
fn string_list_json(
    key: &str,
    items: &[String],
    metrics: Option<&tempopb::MetadataMetrics>,
) -> Vec<u8> {
    let mut j = Json::new();
    j.open('{');
    j.key(key);
    j.open('[');
    for item in items {
        j.string_item(item);
    }
    j.close(']');
    j.metadata_metrics(metrics);
    j.close('}');
    j.finish()
}

pub(super) fn tags_v2_json(r: &tempopb::SearchTagsV2Response) -> Vec<u8> {
    let mut j = Json::new();
    j.open('{');
    j.key("scopes");
    j.open('[');
    for s in &r.scopes {
        j.comma();
        j.open('{');
        j.str_field("name", &s.name);
        if !s.tags.is_empty() {
            j.key("tags");
            j.open('[');
            for t in &s.tags {
                j.string_item(t);
            }
            j.close(']');
        }
        j.close('}');
    }
    j.close(']');
    j.metadata_metrics(r.metrics.as_ref());
    j.close('}');
    j.finish()
}

pub(super) fn values_v1_json(r: &tempopb::SearchTagValuesResponse) -> Vec<u8> {
    string_list_json("tagValues", &r.tag_values, r.metrics.as_ref())
}

pub(super) fn values_v2_json(r: &tempopb::SearchTagValuesV2Response) -> Vec<u8> {
    let mut j = Json::new();
    j.open('{');
    j.key("tagValues");
    j.open('[');
    for v in &r.tag_values {
        j.comma();
        j.open('{');
        j.str_field("type", &v.r#type);
        j.str_field("value", &v.value);
        j.close('}');
    }
    j.close(']');
    j.metadata_metrics(r.metrics.as_ref());
    j.close('}');
    j.finish()
}

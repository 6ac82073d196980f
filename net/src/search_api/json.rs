//! JSON, as Tempo's frontend writes it (jsonpb: zero values omitted, 64-bit integers as
//! strings, camelCase field names), with [`crate::jsonpb::Json`].

use crate::jsonpb::{search_metrics, Json};
use crate::tempopb;

fn span_set(j: &mut Json, ss: &tempopb::SpanSet) {
    j.open('{');
    if !ss.spans.is_empty() {
        j.key("spans");
        j.open('[');
        for s in &ss.spans {
            j.comma();
            j.open('{');
            j.str_field("spanID", &s.span_id);
            j.str_field("name", &s.name);
            j.u64_string_field("startTimeUnixNano", s.start_time_unix_nano);
            j.u64_string_field("durationNanos", s.duration_nanos);
            j.key_values("attributes", &s.attributes);
            j.close('}');
        }
        j.close(']');
    }
    j.u32_field("matched", ss.matched);
    j.key_values("attributes", &ss.attributes);
    j.close('}');
}

fn metadata_metrics(j: &mut Json, m: Option<&tempopb::MetadataMetrics>) {
    j.key("metrics");
    j.open('{');
    if let Some(m) = m {
        j.u64_string_field("inspectedBytes", m.inspected_bytes);
        j.u32_field("totalJobs", m.total_jobs);
        j.u32_field("completedJobs", m.completed_jobs);
        j.u32_field("totalBlocks", m.total_blocks);
        j.u64_string_field("totalBlockBytes", m.total_block_bytes);
    }
    j.close('}');
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
            span_set(&mut j, ss);
        }
        if !t.span_sets.is_empty() {
            j.key("spanSets");
            j.open('[');
            for ss in &t.span_sets {
                j.comma();
                span_set(&mut j, ss);
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
    search_metrics(&mut j, r.metrics.as_ref());
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
    metadata_metrics(&mut j, metrics);
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
    metadata_metrics(&mut j, r.metrics.as_ref());
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
    metadata_metrics(&mut j, r.metrics.as_ref());
    j.close('}');
    j.finish()
}

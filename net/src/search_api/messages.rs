//! Answers as `tempopb` messages: what the gRPC stream sends, and what the JSON renders.

use std::collections::BTreeMap;

use allegro_engine::search::{Found, ShardAnswer, TraceMatch};
use allegro_engine::traceql::eval::Value;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};

use super::call::Call;
use crate::tempopb;

/// Intrinsics listed by `scope=intrinsic` (Tempo 2.7's list, as captured).
pub const INTRINSIC_TAGS: &[&str] = &[
    "duration",
    "event:name",
    "event:timeSinceStart",
    "instrumentation:name",
    "instrumentation:version",
    "kind",
    "name",
    "rootName",
    "rootServiceName",
    "span:duration",
    "span:kind",
    "span:name",
    "span:status",
    "span:statusMessage",
    "status",
    "statusMessage",
    "trace:duration",
    "trace:rootName",
    "trace:rootService",
    "traceDuration",
];

/// Tempo's `util.TraceIDToHexString`: hex without leading zeros.
pub fn trace_id_hex(id: &allegro_engine::TraceId) -> String {
    let hex = id.to_hex();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_string()
    } else {
        trimmed.to_string()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn key_value(key: &str, value: &Value) -> KeyValue {
    let v = match value {
        Value::Int(i) => any_value::Value::IntValue(*i),
        Value::Float(f) => any_value::Value::DoubleValue(*f),
        Value::Bool(b) => any_value::Value::BoolValue(*b),
        other => any_value::Value::StringValue(other.to_text()),
    };
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn metadata(t: &TraceMatch) -> tempopb::TraceSearchMetadata {
    let span_sets: Vec<tempopb::SpanSet> = t
        .spansets
        .iter()
        .map(|ss| tempopb::SpanSet {
            spans: ss
                .spans
                .iter()
                .map(|s| tempopb::Span {
                    span_id: hex(&s.span_id),
                    name: s.name.clone().unwrap_or_default(),
                    start_time_unix_nano: s.start_ns,
                    duration_nanos: s.duration_ns,
                    attributes: s.attributes.iter().map(|(k, v)| key_value(k, v)).collect(),
                })
                .collect(),
            matched: ss.matched,
            attributes: ss.attributes.iter().map(|(k, v)| key_value(k, v)).collect(),
        })
        .collect();
    let service_stats = if t.spansets.is_empty() {
        BTreeMap::new()
    } else {
        t.service_stats
            .iter()
            .map(|(name, &(spans, errors))| {
                (
                    name.clone(),
                    tempopb::ServiceStats {
                        span_count: spans,
                        error_count: errors,
                    },
                )
            })
            .collect()
    };
    tempopb::TraceSearchMetadata {
        trace_id: trace_id_hex(&t.trace_id),
        root_service_name: t.root_service_name.clone(),
        root_trace_name: t.root_trace_name.clone(),
        start_time_unix_nano: t.start_ns,
        duration_ms: t.duration_ms,
        span_set: span_sets.first().cloned(),
        span_sets,
        service_stats,
    }
}

pub fn search_response(
    answer: &ShardAnswer,
    traceql: bool,
    completed: u32,
    total: u32,
) -> tempopb::SearchResponse {
    let traces = match &answer.found {
        Found::Traces(traces) => traces.iter().map(metadata).collect(),
        _ => Vec::new(),
    };
    tempopb::SearchResponse {
        traces,
        metrics: Some(tempopb::SearchMetrics {
            inspected_traces: if traceql {
                0
            } else {
                u32::try_from(answer.inspected_traces).unwrap_or(u32::MAX)
            },
            inspected_bytes: answer.inspected_bytes,
            total_blocks: answer.blocks,
            completed_jobs: completed,
            total_jobs: total,
            total_block_bytes: 0,
            inspected_spans: 0,
        }),
    }
}

fn metadata_metrics(answer: Option<&ShardAnswer>) -> Option<tempopb::MetadataMetrics> {
    Some(tempopb::MetadataMetrics {
        inspected_bytes: answer.map_or(0, |a| a.inspected_bytes),
        ..Default::default()
    })
}

pub(super) fn tags_v1(call: &Call, answer: Option<&ShardAnswer>) -> tempopb::SearchTagsResponse {
    let Call::TagNames {
        intrinsic, limit, ..
    } = call
    else {
        return tempopb::SearchTagsResponse::default();
    };
    let mut names: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    if let Some(ShardAnswer {
        found: Found::TagNames(scopes),
        ..
    }) = answer
    {
        for set in scopes.values() {
            names.extend(set.iter().cloned());
        }
    }
    if *intrinsic {
        names.extend(INTRINSIC_TAGS.iter().map(|s| s.to_string()));
    }
    tempopb::SearchTagsResponse {
        tag_names: names.into_iter().take(at_most(*limit)).collect(),
        metrics: metadata_metrics(answer),
    }
}

pub(super) fn tags_v2(call: &Call, answer: Option<&ShardAnswer>) -> tempopb::SearchTagsV2Response {
    let Call::TagNames {
        scopes: asked,
        intrinsic,
        limit,
        ..
    } = call
    else {
        return tempopb::SearchTagsV2Response::default();
    };
    let found = match answer {
        Some(ShardAnswer {
            found: Found::TagNames(found),
            ..
        }) => Some(found),
        _ => None,
    };
    let mut scopes = Vec::new();
    for scope in asked {
        let tags: Vec<String> = found
            .and_then(|f| f.get(scope))
            .map(|set| set.iter().take(at_most(*limit)).cloned().collect())
            .unwrap_or_default();
        if tags.is_empty() && asked.len() > 1 {
            continue;
        }
        scopes.push(tempopb::SearchTagsV2Scope {
            name: scope.as_str().to_string(),
            tags,
        });
    }
    if *intrinsic {
        scopes.push(tempopb::SearchTagsV2Scope {
            name: "intrinsic".to_string(),
            tags: INTRINSIC_TAGS.iter().map(|s| s.to_string()).collect(),
        });
    }
    tempopb::SearchTagsV2Response {
        scopes,
        metrics: metadata_metrics(answer),
    }
}

/// A `limit` of 0 means none.
fn at_most(limit: usize) -> usize {
    if limit == 0 {
        usize::MAX
    } else {
        limit
    }
}

fn found_values(answer: Option<&ShardAnswer>) -> &[Value] {
    match answer {
        Some(ShardAnswer {
            found: Found::TagValues(values),
            ..
        }) => values,
        _ => &[],
    }
}

pub(super) fn values_v1(
    call: &Call,
    answer: Option<&ShardAnswer>,
) -> tempopb::SearchTagValuesResponse {
    let mut values: Vec<String> = found_values(answer).iter().map(Value::to_text).collect();
    values.sort();
    values.dedup();
    if let Call::TagValues { limit, .. } = call {
        values.truncate(at_most(*limit));
    }
    tempopb::SearchTagValuesResponse {
        tag_values: values,
        metrics: metadata_metrics(answer),
    }
}

pub(super) fn values_v2(
    call: &Call,
    answer: Option<&ShardAnswer>,
) -> tempopb::SearchTagValuesV2Response {
    let (fixed, limit) = match call {
        Call::TagValues { fixed, limit, .. } => (*fixed, *limit),
        _ => (&[][..], 0),
    };
    let tag_values = if fixed.is_empty() {
        found_values(answer)
            .iter()
            .take(at_most(limit))
            .map(|v| tempopb::TagValue {
                r#type: v.type_name().to_string(),
                value: v.to_text(),
            })
            .collect()
    } else {
        fixed
            .iter()
            .map(|v| tempopb::TagValue {
                r#type: "keyword".to_string(),
                value: v.to_string(),
            })
            .collect()
    };
    tempopb::SearchTagValuesV2Response {
        tag_values,
        metrics: if answer.is_some() {
            metadata_metrics(answer)
        } else {
            Some(tempopb::MetadataMetrics::default())
        },
    }
}

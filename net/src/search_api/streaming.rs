//! `tempopb.StreamingQuerier` over gRPC: request messages to a [`Call`], and a call's
//! answer as a stream of response messages.

use std::collections::HashSet;
use std::time::Duration;

use allegro_engine::search::{Found, ShardAnswer};
use allegro_engine::{Engine, Tenant};

use super::call::{
    job_of, search_call, tag_names_call, tag_values_call, Call, SearchLimits, SearchParams,
    TagValuesError,
};
use super::messages::{search_response, tags_v1, tags_v2, values_v1, values_v2};
use crate::grpc::{Code, Status};
use crate::shards::{run, TimedOut};
use crate::tempopb;

pub use crate::tempopb::STREAMING_SERVICE;

/// Parses a search-side `StreamingQuerier` request message into a call (the metrics methods
/// are `crate::metrics_api::grpc_call`'s).
pub fn grpc_call(method: &str, message: &[u8], limits: &SearchLimits) -> Result<Call, Status> {
    use prost::Message;
    let invalid = |e: String| Status::new(Code::InvalidArgument, e);
    let decode_error =
        |e: prost::DecodeError| invalid(format!("grpc: error unmarshalling request: {e}"));
    match method {
        "Search" => {
            let r = tempopb::SearchRequest::decode(message).map_err(decode_error)?;
            let mut tags: Vec<(String, String)> = r.tags.into_iter().collect();
            tags.sort();
            let request = SearchParams {
                query: (!r.query.is_empty()).then_some(r.query.as_str()),
                tags,
                start: i64::from(r.start),
                end: i64::from(r.end),
                min_ms: u64::from(r.min_duration_ms),
                max_ms: u64::from(r.max_duration_ms),
                limit: r.limit as usize,
                spss: r.spans_per_span_set as usize,
            };
            search_call(request, limits).map_err(invalid)
        }
        "SearchTags" | "SearchTagsV2" => {
            let r = tempopb::SearchTagsRequest::decode(message).map_err(decode_error)?;
            tag_names_call(
                method == "SearchTagsV2",
                (!r.scope.is_empty()).then_some(r.scope.as_str()),
                i64::from(r.start),
                i64::from(r.end),
                (!r.query.is_empty()).then_some(r.query.as_str()),
                r.max_tags_per_scope as usize,
                limits,
            )
            .map_err(invalid)
        }
        "SearchTagValues" | "SearchTagValuesV2" => {
            let r = tempopb::SearchTagValuesRequest::decode(message).map_err(decode_error)?;
            tag_values_call(
                method == "SearchTagValuesV2",
                &r.tag_name,
                i64::from(r.start),
                i64::from(r.end),
                (!r.query.is_empty()).then_some(r.query.as_str()),
                r.max_tag_values as usize,
                limits,
            )
            .map_err(|e| match e {
                TagValuesError::Request(text) | TagValuesError::TagName(text) => invalid(text),
            })
        }
        other => Err(Status::new(
            Code::Unimplemented,
            format!("unknown method {other} for service {STREAMING_SERVICE}"),
        )),
    }
}

/// Runs a streaming call: `emit` gets each encoded response message: the new results of a
/// shard as it gets through its blocks and as it finishes, then a final one with everything
/// and the metrics. Past `timeout` the messages sent so far stand and [`TimedOut`] is returned
/// (the caller ends the stream with an error status, as Tempo's frontend does).
pub async fn stream(
    engine: &Engine,
    tenant: &Tenant,
    call: &Call,
    timeout: Duration,
    mut emit: impl FnMut(Vec<u8>),
) -> Result<(), TimedOut> {
    use prost::Message;
    let total = engine.shards() as u32;
    match call {
        Call::Search { job, traceql } => {
            let mut sent: HashSet<allegro_engine::TraceId> = HashSet::new();
            let mut completed = 0u32;
            let (merged, answered) = run(engine, tenant, job, timeout, |answer| {
                if !answer.partial {
                    completed += 1;
                }
                let mut part = answer.clone();
                if let Found::Traces(traces) = &mut part.found {
                    traces.retain(|t| sent.insert(t.trace_id));
                    if answer.partial && traces.is_empty() {
                        return;
                    }
                }
                emit(search_response(&part, *traceql, completed, total).encode_to_vec());
            })
            .await?;
            emit(search_response(&merged, *traceql, answered, total).encode_to_vec());
        }
        _ => {
            let merged = match job_of(call) {
                Some(job) => {
                    let (merged, _) = run(engine, tenant, job, timeout, |answer| {
                        emit(metadata_message(call, Some(answer)));
                    })
                    .await?;
                    Some(merged)
                }
                None => None,
            };
            emit(metadata_message(call, merged.as_ref()));
        }
    }
    Ok(())
}

fn metadata_message(call: &Call, answer: Option<&ShardAnswer>) -> Vec<u8> {
    use prost::Message;
    match call {
        Call::TagNames { v2: false, .. } => tags_v1(call, answer).encode_to_vec(),
        Call::TagNames { v2: true, .. } => tags_v2(call, answer).encode_to_vec(),
        Call::TagValues { v2: false, .. } => values_v1(call, answer).encode_to_vec(),
        _ => values_v2(call, answer).encode_to_vec(),
    }
}

//! `tempopb.StreamingQuerier/MetricsQueryRange` and `MetricsQueryInstant`: request messages
//! to a [`Call`], and a call's answer as a stream of response messages.
//!
//! Tempo's frontend (`pipeline.GRPCCollector`) sends, at most every 500 ms while jobs are
//! answering, the diff of its combined series (the series that changed, with the samples of
//! the range that changed), then a last diff. Here the partial messages are those diffs, and
//! the last message is the whole answer, exemplars filled in: a client that merges the
//! messages gets the same series as from Tempo, and one that keeps the last (tempo-cli)
//! gets all of them.

use std::time::{Duration, Instant};

use allegro_engine::metrics::{self, Partial, Series};
use allegro_engine::search::Found;
use allegro_engine::{Engine, Tenant};

use super::call::{metrics_call, Call, CallError, MetricsLimits, RangeParams};
use super::messages::{final_series, instant_response, range_response, Diffs, Stats};
use crate::grpc::{Code, Status};
use crate::shards::{run, TimedOut};
use crate::tempopb::{self, STREAMING_SERVICE};

/// The streaming methods of `tempopb.StreamingQuerier` this module answers.
pub const METRICS_METHODS: [&str; 2] = ["MetricsQueryRange", "MetricsQueryInstant"];

/// The least time between two partial messages (Tempo's `GRPCCollector`).
pub const STREAM_DIFF_INTERVAL: Duration = Duration::from_millis(500);

/// Parses a `MetricsQueryRange` or `MetricsQueryInstant` request message into a call, with
/// Tempo's statuses: the combiner's refusals are `Unknown` (its handler returns them as plain
/// errors), the sharder's `InvalidArgument`.
pub fn grpc_call(method: &str, message: &[u8], limits: &MetricsLimits) -> Result<Call, Status> {
    use prost::Message;
    let decode_error = |e: prost::DecodeError| {
        Status::new(
            Code::InvalidArgument,
            format!("grpc: error unmarshalling request: {e}"),
        )
    };
    let (query, start_ns, end_ns, step_ns, exemplars, instant) = match method {
        "MetricsQueryRange" => {
            let r = tempopb::QueryRangeRequest::decode(message).map_err(decode_error)?;
            (r.query, r.start, r.end, r.step, r.exemplars, false)
        }
        "MetricsQueryInstant" => {
            let r = tempopb::QueryInstantRequest::decode(message).map_err(decode_error)?;
            // Rewritten into a range request of one step.
            let step = r.end.wrapping_sub(r.start);
            (r.query, r.start, r.end, step, 0, true)
        }
        other => {
            return Err(Status::new(
                Code::Unimplemented,
                format!("unknown method {other} for service {STREAMING_SERVICE}"),
            ))
        }
    };
    let request = RangeParams {
        query: &query,
        start_ns,
        end_ns,
        step_ns,
        exemplars,
        instant,
    };
    metrics_call(request, limits).map_err(|e| match e {
        CallError::Query(text) => Status::new(Code::Unknown, text),
        CallError::Limit(text) => Status::new(Code::InvalidArgument, text),
    })
}

/// Runs a streaming call: `emit` gets each encoded response message, the diffs while shards
/// answer (at most one per [`STREAM_DIFF_INTERVAL`]), then the whole answer. Past `timeout`
/// the messages sent so far stand and [`TimedOut`] is returned (the caller ends the stream
/// with an error status, as for a search).
pub async fn stream(
    engine: &Engine,
    tenant: &Tenant,
    call: &Call,
    timeout: Duration,
    mut emit: impl FnMut(Vec<u8>),
) -> Result<(), TimedOut> {
    let request = call.request();
    let mut stats = Stats::new(engine.shards() as u32);
    let mut so_far = Partial::new(request);
    let mut diffs = Diffs::default();
    let mut last_sent = Instant::now();
    let (merged, _) = run(engine, tenant, call.job(), timeout, |answer| {
        stats.add(answer);
        if let Found::Metrics(delta) = &answer.found {
            so_far.merge(delta);
        }
        if last_sent.elapsed() > STREAM_DIFF_INTERVAL {
            last_sent = Instant::now();
            let changed = diffs.changed(&metrics::finish(request, &so_far));
            emit(encode(call, &changed, &stats));
        }
    })
    .await?;
    emit(encode(call, &final_series(request, &merged), &stats));
    Ok(())
}

fn encode(call: &Call, series: &[Series], stats: &Stats) -> Vec<u8> {
    use prost::Message;
    if call.is_instant() {
        instant_response(series, stats).encode_to_vec()
    } else {
        range_response(series, stats).encode_to_vec()
    }
}

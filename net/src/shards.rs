//! Running a query job on every shard under its deadline (`querier.search.query_timeout`, or
//! a shorter `grpc-timeout`), and merging the shards' answers: what the search API
//! (`search_api`) and the TraceQL metrics API (`metrics_api`) both run their calls with.
//!
//! **Invariant:** this module imports neither query API; they import it.

use std::sync::Arc;
use std::time::Duration;

use allegro_engine::search::{self, Found, Job, ShardAnswer};
use allegro_engine::{Engine, Tenant};

/// The error text of a query past its deadline: Go's `context.DeadlineExceeded`, which Tempo's
/// querier writes as a 500 body and its frontend passes on (HTTP 500, gRPC `Internal`).
pub const DEADLINE_EXCEEDED: &str = "context deadline exceeded";

/// A query ran past its deadline (`querier.search.query_timeout`, or a shorter `grpc-timeout`):
/// `answered` of the shards had given their final answer. The shards still searching stop at
/// their next check, because the answer channel is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedOut {
    pub answered: u32,
}

/// Runs a job on every shard and calls `partial` with each shard's answer as it comes
/// (for streaming); returns the merged answer and how many shards answered, or [`TimedOut`]
/// when `timeout` passes first (a zero timeout has passed already, as in Tempo).
///
/// Tempo answers a query past its deadline with an error, not with partial results: its
/// querier fails the job with `context deadline exceeded` and the frontend's combiner takes a
/// failed job as the answer to the whole query (`modules/frontend/combiner/common.go`).
pub async fn run(
    engine: &Engine,
    tenant: &Tenant,
    job: &Arc<Job>,
    timeout: Duration,
    mut partial: impl FnMut(&ShardAnswer),
) -> Result<(ShardAnswer, u32), TimedOut> {
    let timed_out = |answered: u32| {
        log::warn!(
            "{}: {answered} of {} shards answered within {} (querier.search.query_timeout, \
             or a shorter grpc-timeout); answering {DEADLINE_EXCEEDED:?}, as Tempo does",
            job_name(job),
            engine.shards(),
            allegro_config::format_duration(timeout)
        );
        TimedOut { answered }
    };
    if timeout.is_zero() {
        return Err(timed_out(0));
    }
    let started = std::time::Instant::now();
    let mut deadline = std::pin::pin!(monoio::time::sleep(timeout));
    let receiver = monoio::select! {
        receiver = engine.search(tenant, job.clone()) => receiver,
        _ = &mut deadline => return Err(timed_out(0)),
    };
    let mut answers = Vec::new();
    loop {
        monoio::select! {
            answer = receiver.recv_async() => match answer {
                Ok(answer) => {
                    partial(&answer);
                    // A metrics job's partial answers hold series the final one does not.
                    if !answer.partial || matches!(**job, Job::Metrics(_)) {
                        answers.push(answer);
                    }
                }
                Err(_) => break,
            },
            _ = &mut deadline => {
                // Dropping `receiver` (on return) is what stops the shards.
                return Err(timed_out(finals(&answers)));
            }
        }
    }
    // The shards run on the threads that serve connections: a shard busy past the deadline
    // can deliver its answer before the timer is polled. Past the deadline is past it.
    if started.elapsed() >= timeout {
        return Err(timed_out(finals(&answers)));
    }
    let completed = finals(&answers);
    let merged = search::merge(job, answers);
    if let Some(err) = &merged.error {
        log::warn!("search: {err}");
    }
    if merged.truncated {
        // Tempo stops collecting at `max_bytes_per_tag_values_query` and answers 200 with what
        // it has, no marker in the response; its querier logs this.
        let (what, count, bytes_max) = match (&merged.found, &**job) {
            (Found::TagValues(values), Job::TagValues { bytes_max, .. }) => {
                ("tag values", values.len(), *bytes_max)
            }
            (Found::TagNames(names), Job::TagNames { bytes_max, .. }) => (
                "tag names",
                names.values().map(|n| n.len()).sum(),
                *bytes_max,
            ),
            _ => ("answer", 0, 0),
        };
        log::warn!(
            "{what}: size of {what} exceeded limit ({bytes_max} bytes, \
             max_bytes_per_tag_values_query), reduce cardinality or size of tags; answering \
             the {count} collected"
        );
    }
    Ok((merged, completed))
}

/// Shards that gave their final answer.
fn finals(answers: &[ShardAnswer]) -> u32 {
    answers.iter().filter(|a| !a.partial).count() as u32
}

fn job_name(job: &Job) -> &'static str {
    match job {
        Job::Search(_) => "search",
        Job::TagNames { .. } => "tag names",
        Job::TagValues { .. } => "tag values",
        Job::Metrics(_) => "metrics query",
    }
}

//! The cross-shard [`merge`]: the shards' final answers combined like Tempo's frontend.

use std::collections::{BTreeMap, HashSet};

use super::job::{Found, Job, ShardAnswer, TraceMatch};

/// All shards' final answers combined (partial ones are skipped): traces most recent first, de-duplicated, at most `limit`;
/// tag names as sorted sets; tag values de-duplicated in order of discovery. A metrics job's
/// answers, partial ones included, each hold what their shard added since its previous
/// answer: all of them are merged.
pub fn merge(job: &Job, answers: Vec<ShardAnswer>) -> ShardAnswer {
    let mut merged = ShardAnswer {
        found: match job {
            Job::Search(_) => Found::Traces(Vec::new()),
            Job::TagNames { .. } => Found::TagNames(BTreeMap::new()),
            Job::TagValues { .. } => Found::TagValues(Vec::new()),
            Job::Metrics(r) => Found::Metrics(crate::metrics::Partial::new(r)),
        },
        inspected_traces: 0,
        inspected_bytes: 0,
        inspected_spans: 0,
        blocks: 0,
        error: None,
        truncated: false,
        partial: false,
    };
    let mut seen_traces = HashSet::new();
    let mut seen_values = HashSet::new();
    // Tag names and values: the same byte limit over the union of the shards' answers.
    let bytes_max = match job {
        Job::TagNames { bytes_max, .. } | Job::TagValues { bytes_max, .. } => *bytes_max,
        Job::Search(_) | Job::Metrics(_) => usize::MAX,
    };
    let mut tag_bytes = 0usize;
    let metrics = matches!(job, Job::Metrics(_));
    for answer in answers.into_iter().filter(|a| metrics || !a.partial) {
        // A shard that stopped at the limit still contributes what it has.
        let shard_truncated = answer.truncated;
        // Counters are cumulative per shard: its final answer holds them all.
        if !answer.partial {
            merged.inspected_traces += answer.inspected_traces;
            merged.inspected_bytes += answer.inspected_bytes;
            merged.inspected_spans += answer.inspected_spans;
            merged.blocks += answer.blocks;
        }
        if merged.error.is_none() {
            merged.error = answer.error;
        }
        match (&mut merged.found, answer.found) {
            (Found::Traces(all), Found::Traces(some)) => {
                all.extend(some.into_iter().filter(|t| seen_traces.insert(t.trace_id)));
            }
            (Found::TagNames(all), Found::TagNames(some)) => {
                for (scope, names) in some {
                    let set = all.entry(scope).or_default();
                    for name in names {
                        if merged.truncated {
                            break;
                        }
                        if set.contains(&name) {
                            continue;
                        }
                        if tag_bytes + name.len() > bytes_max {
                            merged.truncated = true;
                            break;
                        }
                        tag_bytes += name.len();
                        set.insert(name);
                    }
                }
            }
            (Found::TagValues(all), Found::TagValues(some)) => {
                for v in some {
                    if merged.truncated {
                        break;
                    }
                    let key = format!("{}\u{0}{}", v.type_name(), v.to_text());
                    if seen_values.contains(&key) {
                        continue;
                    }
                    let len = v.to_text().len();
                    if tag_bytes + len > bytes_max {
                        merged.truncated = true;
                        break;
                    }
                    seen_values.insert(key);
                    tag_bytes += len;
                    all.push(v);
                }
            }
            (Found::Metrics(all), Found::Metrics(some)) => all.merge(&some),
            _ => {}
        }
        merged.truncated |= shard_truncated;
    }
    if let (Job::Search(r), Found::Traces(all)) = (job, &mut merged.found) {
        most_recent_first(all, r.limit);
    }
    merged
}

pub(super) fn most_recent_first(traces: &mut Vec<TraceMatch>, limit: usize) {
    traces.sort_by(|a, b| {
        b.start_ns
            .cmp(&a.start_ns)
            .then(a.trace_id.as_bytes().cmp(b.trace_id.as_bytes()))
    });
    traces.truncate(limit);
}

//! Search, tag names and tag values over stored traces (sans-IO): a [`Job`] says what to look
//! for, a [`ShardSearch`] is offered every candidate trace of one shard (live, WAL, blocks)
//! and yields a [`ShardAnswer`]; [`merge`] combines the answers of all shards like Tempo's
//! frontend (most recent first, `limit` traces, de-duplicated by trace ID).
//!
//! Each trace is decoded whole (prost, OpenTelemetry types) and the TraceQL query evaluated
//! on it ([`crate::traceql::eval`]), so structural operators see every span.
//!
//! Limits: a shard keeps at most `limit` traces; tag names and tag values stop at the job's
//! `bytes_max` (Tempo's `max_bytes_per_tag_values_query`), never above [`TAG_BYTES_MAX`].

mod collector;
mod job;
mod merge;

pub use crate::tags::TagScope;
pub use collector::ShardSearch;
pub use job::{Found, Job, SearchRequest, ShardAnswer, SpanOut, SpansetOut, TraceMatch};
pub use merge::merge;

/// Bytes of tag names or values one answer collects at most, whatever the configuration says:
/// Tempo's `max_bytes_per_tag_values_query: 0` means no limit, which here means this one.
pub const TAG_BYTES_MAX: usize = 64 << 20;
/// Tempo's default `limit` and `spss`.
pub const LIMIT_DEFAULT: usize = 20;
pub const SPANS_PER_SPANSET_DEFAULT: usize = 3;
/// Root names when the root span is not stored (Tempo's text).
pub const ROOT_NOT_RECEIVED: &str = "<root span not yet received>";

#[cfg(test)]
mod tests;

/// The byte path of tag names and values (`otlp::attrs`, taken without a query) against the
/// decoded path (taken with `{ true }`, which matches every span): the same answers, on
/// traces with every attribute scope, duplicate keys, keys without values, typed values.
#[cfg(test)]
mod tag_bytes_tests;

//! Tempo's TraceQL metrics API, transport-independent: parameters in (HTTP query strings or
//! `tempopb.StreamingQuerier` messages), an engine job (`Job::Metrics`, run on every shard by
//! `crate::shards`), and the answer as Tempo 2.7's query frontend renders it (jsonpb JSON for
//! HTTP, `tempopb` messages for gRPC).
//!
//! | path / method | what |
//! |---------------|------|
//! | `/api/metrics/query_range`, `MetricsQueryRange` | series over `[start, end]` by `step` |
//! | `/api/metrics/query`, `MetricsQueryInstant` | one value per series over `[start, end]` |
//!
//! Parameters are read as `pkg/api/http.go` reads them (`since`, default times and step,
//! seconds or nanoseconds, RFC 3339); refusals are 400 `text/plain` without a trailing
//! newline, as Tempo's frontend writes them, with its texts and in its order (combiner,
//! then sharder; over gRPC `Unknown`, then `InvalidArgument`).
//!
//! | file | what |
//! |------|------|
//! | `call.rs` | [`Call`] from either transport's parameters, [`MetricsLimits`] |
//! | `time.rs` | Go's and Prometheus' time and duration syntax of the parameters |
//! | `http.rs` | HTTP parameters to a call ([`route`]), the JSON answer ([`answer_http`]) |
//! | `streaming.rs` | the gRPC methods ([`grpc_call`], [`stream`]: diffs, then the whole answer) |
//! | `messages.rs` | answers as `tempopb` messages, job statistics, stream diffs |
//! | `json.rs` | those messages as Tempo's frontend writes them in JSON |
//!
//! Dependencies point one way: `api` routes here and the shell calls [`answer_http`] and
//! [`stream`]; this module runs its calls with `crate::shards` and answers with
//! `http_response` and `jsonpb`. It imports neither `api` nor `search_api` (its tests import
//! `api`, to drive the paths through the whole router).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

mod call;
mod http;
mod json;
mod messages;
mod streaming;
#[cfg(test)]
mod tests;
mod time;

pub use call::{Call, CallError, MetricsLimits};
pub use http::{answer_http, route, QUERY_INSTANT_PATH, QUERY_RANGE_PATH};
pub use streaming::{grpc_call, stream, METRICS_METHODS, STREAM_DIFF_INTERVAL};

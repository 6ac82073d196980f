//! Tempo's search API, transport-independent: parameters in (HTTP query strings or
//! `tempopb` requests of the `StreamingQuerier`), an engine job, and the answer as Tempo
//! renders it (JSON for HTTP, protobuf messages for gRPC).
//!
//! | path | what |
//! |------|------|
//! | `/api/search` | traces matching TraceQL `q`, or the old `tags=` logfmt search |
//! | `/api/search/tags`, `/api/v2/search/tags` | attribute names (`scope`, `q`, `start`, `end`) |
//! | `/api/search/tag/{tag}/values`, `/api/v2/search/tag/{tag}/values` | values (`q`, typed in v2) |
//! | `/api/metrics/summary` | Tempo's answer without a metrics generator |
//!
//! The TraceQL metrics paths (`/api/metrics/query_range`, `/api/metrics/query`) are
//! `crate::metrics_api`'s.
//!
//! Parameter checks run in Tempo's order with Tempo's texts (`pkg/api/http.go`); errors are
//! 400 `text/plain` without a trailing newline, as Tempo's frontend writes them.
//!
//! | file | what |
//! |------|------|
//! | `call.rs` | [`Call`] from either transport's parameters, [`SearchLimits`] |
//! | `http.rs` | HTTP query parameters to a call ([`route`]), the JSON answer ([`answer_http`]) |
//! | `streaming.rs` | the `tempopb.StreamingQuerier` gRPC calls ([`grpc_call`], [`stream`]) |
//! | `messages.rs` | answers as `tempopb` messages |
//! | `json.rs` | those messages as Tempo's frontend writes them in JSON |
//!
//! Dependencies point one way: `api` routes here, and this module runs its calls with
//! `crate::shards` and answers with `http_response` and `jsonpb`; it never imports `api` or
//! `metrics_api` (only its tests import `api`, to drive the search paths through the whole
//! router and to read the Tempo captures).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

mod call;
mod http;
mod json;
mod messages;
mod streaming;
#[cfg(test)]
mod tests;

pub use crate::shards::{run, TimedOut, DEADLINE_EXCEEDED};
pub use call::{parse_tag_name, Call, SearchLimits, SEARCH_LIMIT_MAX, SPANS_PER_SPANSET_MAX};
pub use http::{answer_http, route};
pub use json::search_json;
pub use messages::{search_response, trace_id_hex, INTRINSIC_TAGS};
pub use streaming::{grpc_call, stream, STREAMING_SERVICE};

//! The storage engine: typed IDs, OTLP splitting, the WAL format, and the per-core shards that
//! own WAL files and live traces.

pub mod block;
pub mod hash;
pub mod ids;
pub mod metrics;
pub mod otlp;
pub mod scan;
pub mod search;
pub mod shard;
pub mod tags;
pub mod traceql;
pub mod wal;

pub use ids::{SpanId, Tenant, TraceId};
pub use shard::{
    shard_for, AppendOutcome, Engine, EngineConfig, FsyncPolicy, ShardMetrics, ShardTask,
};

//! The parsed configuration that the engine and net crates consume: Tempo's settings that Allegro
//! acts on, with Tempo's defaults filled in, and Allegro's own `allegro:` knobs.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::duration::format_duration;
use crate::error::ConfigError;

/// Default values, Tempo's where the key is Tempo's. One place, so that docs, `Config::default()`
/// and loading cannot disagree.
pub mod defaults {
    use std::time::Duration;

    /// 1 MiB.
    pub const MIB: u64 = 1024 * 1024;

    /// `server.http_listen_port`. Tempo 2.8+ defaults to 3200 (2.7 and earlier: 80; every Tempo
    /// example sets 3200 explicitly).
    pub const HTTP_LISTEN_PORT: u16 = 3200;
    /// `server.grpc_listen_port`.
    pub const GRPC_LISTEN_PORT: u16 = 9095;
    /// Host of an OTLP endpoint given as `grpc:`/`http:` without `endpoint:`. Tempo before 2.7
    /// bound to all interfaces; Tempo 2.7+ (OTel Collector >= 0.110) binds to `localhost`.
    /// Allegro keeps all interfaces, see [`crate::Endpoint`].
    pub const OTLP_HOST: &str = "0.0.0.0";
    /// Port of `distributor.receivers.otlp.protocols.grpc.endpoint`.
    pub const OTLP_GRPC_PORT: u16 = 4317;
    /// Port of `distributor.receivers.otlp.protocols.http.endpoint`.
    pub const OTLP_HTTP_PORT: u16 = 4318;
    /// Port of `distributor.receivers.zipkin.endpoint`.
    pub const ZIPKIN_PORT: u16 = 9411;
    /// Port of `distributor.receivers.jaeger.protocols.grpc.endpoint`.
    pub const JAEGER_GRPC_PORT: u16 = 14250;
    /// Port of `distributor.receivers.jaeger.protocols.thrift_http.endpoint`.
    pub const JAEGER_THRIFT_HTTP_PORT: u16 = 14268;
    /// UDP port of `distributor.receivers.jaeger.protocols.thrift_compact.endpoint`.
    pub const JAEGER_THRIFT_COMPACT_PORT: u16 = 6831;
    /// UDP port of `distributor.receivers.jaeger.protocols.thrift_binary.endpoint`.
    pub const JAEGER_THRIFT_BINARY_PORT: u16 = 6832;

    /// `ingester.trace_idle_period`.
    pub const TRACE_IDLE_PERIOD: Duration = Duration::from_secs(10);
    /// `ingester.max_block_duration`.
    pub const MAX_BLOCK_DURATION: Duration = Duration::from_secs(30 * 60);
    /// `ingester.max_block_bytes` (500 MiB).
    pub const MAX_BLOCK_BYTES: u64 = 500 * MIB;
    /// `ingester.complete_block_timeout` (3 x Tempo's 5m blocklist poll).
    pub const COMPLETE_BLOCK_TIMEOUT: Duration = Duration::from_secs(15 * 60);

    /// `querier.search.query_timeout`: how long a search, tag-names or tag-values query may
    /// run (Tempo: the querier's deadline for each search job, `modules/querier/config.go`).
    pub const SEARCH_QUERY_TIMEOUT: Duration = Duration::from_secs(30);
    /// `querier.trace_by_id.query_timeout`: how long a trace-by-ID lookup may run.
    pub const TRACE_BY_ID_QUERY_TIMEOUT: Duration = Duration::from_secs(10);

    /// `query_frontend.search.default_result_limit`: traces per search without `limit`.
    pub const SEARCH_DEFAULT_RESULT_LIMIT: u32 = 20;
    /// `query_frontend.search.max_result_limit`: 0 = no limit, as in Tempo.
    pub const SEARCH_MAX_RESULT_LIMIT: u32 = 0;
    /// `query_frontend.search.max_duration`: the widest `[start, end]` of a search (one week).
    pub const SEARCH_MAX_DURATION: Duration = Duration::from_secs(168 * 3600);
    /// `query_frontend.search.max_spans_per_span_set` (Tempo 2.7: 100; 0 = no limit).
    pub const SEARCH_MAX_SPANS_PER_SPAN_SET: u32 = 100;
    /// `query_frontend.metrics.max_duration`: the widest `[start, end]` of a TraceQL metrics
    /// query (Tempo 2.7: 3h).
    pub const METRICS_MAX_DURATION: Duration = Duration::from_secs(3 * 3600);
    /// `query_frontend.metrics.max_exemplars`: exemplars per metrics query (Tempo 2.7: 100).
    pub const METRICS_MAX_EXEMPLARS: u32 = 100;
    /// `overrides.defaults.read.max_bytes_per_tag_values_query` (Tempo: 1,000,000).
    pub const MAX_BYTES_PER_TAG_VALUES_QUERY: u64 = 1_000_000;

    /// `compactor.compaction.block_retention` (14 days).
    pub const BLOCK_RETENTION: Duration = Duration::from_secs(336 * 3600);
    /// `compactor.compaction.compaction_window`.
    pub const COMPACTION_WINDOW: Duration = Duration::from_secs(3600);

    /// `storage.trace.local.path`. Tempo has no default (it fails without one); Allegro uses
    /// the path Tempo's examples use.
    pub const LOCAL_PATH: &str = "/var/tempo/traces";
    /// `storage.trace.wal.path`.
    pub const WAL_PATH: &str = "/var/tempo/wal";

    /// `overrides.defaults.ingestion.rate_limit_bytes` (bytes per second).
    pub const INGESTION_RATE_LIMIT_BYTES: u64 = 15_000_000;
    /// `overrides.defaults.ingestion.burst_size_bytes`.
    pub const INGESTION_BURST_SIZE_BYTES: u64 = 20_000_000;
    /// `overrides.defaults.ingestion.max_traces_per_user`.
    pub const MAX_TRACES_PER_USER: u64 = 10_000;
    /// `overrides.defaults.global.max_bytes_per_trace`.
    pub const MAX_BYTES_PER_TRACE: u64 = 5_000_000;

    /// Upper bound of `allegro.shards`.
    pub const SHARDS_MAX: usize = 1024;
    /// `allegro.wal_fsync_interval`.
    pub const WAL_FSYNC_INTERVAL: Duration = Duration::from_millis(100);
    /// `allegro.wal_segment_bytes_max`.
    pub const WAL_SEGMENT_BYTES_MAX: u64 = 64 * MIB;
    /// Lower bound of `allegro.wal_segment_bytes_max`.
    pub const WAL_SEGMENT_BYTES_MAX_MIN: u64 = MIB;
    /// `allegro.live_traces_bytes_max` (per shard). 128 MiB: at 200k spans/s on one shard
    /// the server's RSS median is 185 MB against 294 MB with 256 MiB, at the same CPU and
    /// the same maximum throughput (`bench/latency.sh`, 2026-12-04).
    pub const LIVE_TRACES_BYTES_MAX: u64 = 128 * MIB;
    /// `allegro.grpc_max_recv_msg_bytes` (Tempo's gRPC server default).
    pub const GRPC_MAX_RECV_MSG_BYTES: u64 = 16 * MIB;
    /// `allegro.shutdown_timeout`.
    pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

    const _: () = assert!(WAL_SEGMENT_BYTES_MAX >= WAL_SEGMENT_BYTES_MAX_MIN);
    const _: () = assert!(LIVE_TRACES_BYTES_MAX >= MAX_BYTES_PER_TRACE);
    const _: () = assert!(INGESTION_BURST_SIZE_BYTES >= INGESTION_RATE_LIMIT_BYTES);
    const _: () = assert!(GRPC_LISTEN_PORT != HTTP_LISTEN_PORT);
    const _: () = assert!(OTLP_GRPC_PORT != OTLP_HTTP_PORT);
    const _: () = assert!(OTLP_GRPC_PORT != HTTP_LISTEN_PORT && OTLP_HTTP_PORT != HTTP_LISTEN_PORT);
    const _: () = assert!(OTLP_GRPC_PORT != GRPC_LISTEN_PORT && OTLP_HTTP_PORT != GRPC_LISTEN_PORT);
}

/// The whole configuration. Field docs name the YAML key each field comes from.
///
/// Obtain one from [`crate::load_file`], [`crate::load_str`], [`Config::embedded_default`] or
/// `Config::default()` (an empty file: Tempo's defaults everywhere). A `Config` produced by the
/// loaders has passed [`Config::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `stream_over_http_enabled`: serve streaming search over HTTP. Default false.
    pub stream_over_http_enabled: bool,
    /// `multitenancy_enabled`, or its deprecated alias `auth_enabled`: require `X-Scope-OrgID`.
    /// Default false (every request belongs to tenant `single-tenant`).
    pub multitenancy_enabled: bool,
    /// `server:`.
    pub server: ServerConfig,
    /// `distributor:`.
    pub distributor: DistributorConfig,
    /// `ingester:`.
    pub ingester: IngesterConfig,
    /// `compactor:`.
    pub compactor: CompactorConfig,
    /// `querier:`.
    pub querier: QuerierConfig,
    /// `query_frontend:`.
    pub query_frontend: QueryFrontendConfig,
    /// `storage.trace:`.
    pub storage: StorageConfig,
    /// `overrides:` (the defaults for every tenant).
    pub overrides: OverridesConfig,
    /// `allegro:`: Allegro's own settings; Tempo has no such section.
    pub allegro: AllegroConfig,
}

/// `server:` (Tempo's dskit server block).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// `server.http_listen_address`. Default `""`: all interfaces.
    pub http_listen_address: String,
    /// `server.http_listen_port`. Default 3200.
    pub http_listen_port: u16,
    /// `server.grpc_listen_address`. Default `""`: all interfaces.
    pub grpc_listen_address: String,
    /// `server.grpc_listen_port`. Default 9095.
    pub grpc_listen_port: u16,
    /// `server.log_level`: `debug`, `info`, `warn` or `error`. Default `info`.
    pub log_level: LogLevel,
}

impl ServerConfig {
    /// The HTTP API listener (`http_listen_address`:`http_listen_port`).
    pub fn http_endpoint(&self) -> Endpoint {
        Endpoint {
            host: self.http_listen_address.clone(),
            port: self.http_listen_port,
        }
    }

    /// The gRPC API listener (`grpc_listen_address`:`grpc_listen_port`).
    pub fn grpc_endpoint(&self) -> Endpoint {
        Endpoint {
            host: self.grpc_listen_address.clone(),
            port: self.grpc_listen_port,
        }
    }
}

/// `distributor:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistributorConfig {
    /// `distributor.receivers.otlp.protocols.grpc.endpoint`. `None`: OTLP/gRPC is off because
    /// `receivers:` lists receivers but not this protocol. `grpc:` with no endpoint means
    /// `0.0.0.0:4317`. Like Tempo, no `receivers:` at all (or `receivers: {}`) enables OTLP/gRPC
    /// on the default endpoint.
    pub otlp_grpc_endpoint: Option<Endpoint>,
    /// `distributor.receivers.otlp.protocols.http.endpoint`. `None`: OTLP/HTTP is off (the
    /// default). `http:` with no endpoint means `0.0.0.0:4318`.
    pub otlp_http_endpoint: Option<Endpoint>,
    /// `distributor.receivers.otlp.protocols.http.cors`: `None` answers no CORS headers.
    pub otlp_http_cors: Option<CorsConfig>,
    /// `distributor.receivers.zipkin.endpoint` (`zipkin:` alone: `0.0.0.0:9411`).
    pub zipkin_endpoint: Option<Endpoint>,
    /// `distributor.receivers.zipkin.parse_string_tags`: string tags holding a number or a
    /// boolean become typed attributes. Default false.
    pub zipkin_parse_string_tags: bool,
    /// `distributor.receivers.jaeger.protocols.grpc.endpoint` (`0.0.0.0:14250`).
    pub jaeger_grpc_endpoint: Option<Endpoint>,
    /// `distributor.receivers.jaeger.protocols.thrift_http.endpoint` (`0.0.0.0:14268`).
    pub jaeger_thrift_http_endpoint: Option<Endpoint>,
    /// `distributor.receivers.jaeger.protocols.thrift_compact.endpoint`, UDP (`0.0.0.0:6831`).
    pub jaeger_thrift_compact_endpoint: Option<Endpoint>,
    /// `distributor.receivers.jaeger.protocols.thrift_binary.endpoint`, UDP (`0.0.0.0:6832`).
    pub jaeger_thrift_binary_endpoint: Option<Endpoint>,
}

impl DistributorConfig {
    /// Every receiver off.
    pub(crate) fn receivers_off() -> DistributorConfig {
        DistributorConfig {
            otlp_grpc_endpoint: None,
            otlp_http_endpoint: None,
            otlp_http_cors: None,
            zipkin_endpoint: None,
            zipkin_parse_string_tags: false,
            jaeger_grpc_endpoint: None,
            jaeger_thrift_http_endpoint: None,
            jaeger_thrift_compact_endpoint: None,
            jaeger_thrift_binary_endpoint: None,
        }
    }
}

/// The Collector's `confighttp.CORSConfig` for the OTLP/HTTP receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorsConfig {
    /// `allowed_origins`: exact origins, `*`, or patterns with one `*` wildcard
    /// (`https://*.example.com`).
    pub allowed_origins: Vec<String>,
    /// `allowed_headers`: request headers a preflight may ask for, besides the CORS-safelisted
    /// ones and `Content-Type`, `Content-Encoding`, `X-Requested-With`.
    pub allowed_headers: Vec<String>,
    /// `max_age`: seconds a browser may cache a preflight answer.
    pub max_age_secs: Option<u64>,
}

/// `ingester:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngesterConfig {
    /// `ingester.trace_idle_period`: a trace with no new spans for this long is complete and
    /// leaves the live set. Default 10s.
    pub trace_idle_period: Duration,
    /// `ingester.max_block_duration`: cut the head block after this long. Default 30m.
    pub max_block_duration: Duration,
    /// `ingester.max_block_bytes`: cut the head block at this size. Default 524288000 (500 MiB).
    pub max_block_bytes: u64,
    /// `ingester.complete_block_timeout`: keep a completed block queryable from the ingester for
    /// this long after flushing. Default 15m.
    pub complete_block_timeout: Duration,
}

/// `compactor:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactorConfig {
    /// `compactor.compaction.block_retention`: delete blocks older than this. Default 336h.
    pub block_retention: Duration,
    /// `compactor.compaction.compaction_window`: blocks within this time window are compacted
    /// together. Default 1h.
    pub compaction_window: Duration,
}

/// `querier:`: the read path's time limits.
///
/// Tempo's querier puts these deadlines on every job it runs (`modules/querier/http.go`:
/// "Enforce the query timeout while querying backends"); a job past its deadline fails with
/// `context deadline exceeded`, and the frontend answers the whole query with that error.
/// Allegro runs a query as one job per shard, so the deadline bounds the whole query.
/// `0s` is a deadline that has passed already, as in Tempo: every such query fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuerierConfig {
    /// `querier.search.query_timeout`: searches, tag names and tag values. Default 30s.
    pub search_query_timeout: Duration,
    /// `querier.trace_by_id.query_timeout`: trace-by-ID lookups. Default 10s.
    pub trace_by_id_query_timeout: Duration,
}

/// `query_frontend.search:`: what a search may ask for. Tempo's frontend checks these before
/// any job runs (`modules/frontend/search_sharder.go`, `search_handlers.go`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryFrontendConfig {
    /// `query_frontend.search.default_result_limit`: `limit` when a search gives none (or 0).
    /// Default 20.
    pub search_default_result_limit: u32,
    /// `query_frontend.search.max_result_limit`: a larger `limit` is refused (400
    /// `limit N exceeds max limit M`). 0, the default, means no limit.
    pub search_max_result_limit: u32,
    /// `query_frontend.search.max_duration`: a wider `[start, end]` is refused. 0 means no
    /// limit. Default 168h. `overrides.defaults.read.max_search_duration` takes precedence.
    pub search_max_duration: Duration,
    /// `query_frontend.search.max_spans_per_span_set`: a larger `spss` is refused. 0 means no
    /// limit. Default 100.
    pub search_max_spans_per_span_set: u32,
    /// `query_frontend.metrics.max_duration`: a TraceQL metrics query over a wider
    /// `[start, end]` is refused. 0 means no limit. Default 3h.
    /// `overrides.defaults.read.max_metrics_duration` takes precedence.
    pub metrics_max_duration: Duration,
    /// `query_frontend.metrics.max_exemplars`: exemplars a range query may ask for (more, or
    /// none asked, get this many). 0 turns exemplars off. Default 100.
    pub metrics_max_exemplars: u32,
}

/// `storage.trace:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageConfig {
    /// `storage.trace.backend`. Default `local`. Allegro implements only `local`; the server
    /// decides what to do with the others.
    pub backend: Backend,
    /// `storage.trace.local.path`: where blocks live. Default `/var/tempo/traces`.
    pub local_path: PathBuf,
    /// `storage.trace.wal.path`: where the write-ahead log lives. Default `/var/tempo/wal`.
    pub wal_path: PathBuf,
}

/// `overrides:`, read from either Tempo 2.x form: `overrides.defaults.*` or the legacy flat
/// `overrides.*` (not both at once, which Tempo also rejects).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverridesConfig {
    /// `overrides.defaults.ingestion.rate_limit_bytes` (legacy:
    /// `overrides.ingestion_rate_limit_bytes`): per-tenant ingestion rate, bytes per second.
    /// Default 15000000.
    pub ingestion_rate_limit_bytes: u64,
    /// `overrides.defaults.ingestion.burst_size_bytes` (legacy:
    /// `overrides.ingestion_burst_size_bytes`): per-tenant burst, bytes. Default 20000000.
    pub ingestion_burst_size_bytes: u64,
    /// `overrides.defaults.ingestion.max_traces_per_user` (legacy: `overrides.max_traces_per_user`):
    /// live traces per tenant. 0 disables the limit, as in Tempo. Default 10000.
    pub max_traces_per_user: u64,
    /// `overrides.defaults.global.max_bytes_per_trace` (legacy: `overrides.max_bytes_per_trace`):
    /// largest trace, bytes. 0 disables the limit, as in Tempo. Default 5000000.
    pub max_bytes_per_trace: u64,
    /// `overrides.defaults.read.max_bytes_per_tag_values_query` (legacy:
    /// `overrides.max_bytes_per_tag_values_query`): bytes of tag names or values one answer
    /// collects; past it the answer holds what fit, as in Tempo. 0 disables the limit.
    /// Default 1000000.
    pub max_bytes_per_tag_values_query: u64,
    /// `overrides.defaults.read.max_search_duration` (legacy: `overrides.max_search_duration`):
    /// when not 0, replaces `query_frontend.search.max_duration`. Default 0.
    pub max_search_duration: Duration,
    /// `overrides.defaults.read.max_metrics_duration` (legacy: `overrides.max_metrics_duration`):
    /// when not 0, replaces `query_frontend.metrics.max_duration`. Default 0.
    pub max_metrics_duration: Duration,
}

/// `allegro:`: Allegro's own settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllegroConfig {
    /// `allegro.shards`: shards (one per core). Absent or 0: the number of online CPUs
    /// (`std::thread::available_parallelism`), at most 1024. Always >= 1 here.
    pub shards: usize,
    /// `allegro.wal_fsync`: when WAL appends are made durable. Default `always`.
    pub wal_fsync: WalFsync,
    /// `allegro.wal_fsync_interval`: the fsync period with `wal_fsync: interval`. Default 100ms.
    pub wal_fsync_interval: Duration,
    /// `allegro.wal_segment_bytes_max`: roll to a new WAL segment at this size. Default 64 MiB,
    /// at least 1 MiB.
    pub wal_segment_bytes_max: u64,
    /// `allegro.live_traces_bytes_max`: memory bound for live trace data, per shard.
    /// Default 128 MiB.
    pub live_traces_bytes_max: u64,
    /// `allegro.grpc_max_recv_msg_bytes`: largest gRPC message accepted. Default 16 MiB.
    pub grpc_max_recv_msg_bytes: u64,
    /// `allegro.shutdown_timeout`: how long a graceful shutdown may take. Default 30s.
    pub shutdown_timeout: Duration,
}

/// `storage.trace.backend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `local`: a directory on the local file system.
    Local,
    /// `s3`.
    S3,
    /// `gcs`.
    Gcs,
    /// `azure`.
    Azure,
}

impl Backend {
    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::S3 => "s3",
            Backend::Gcs => "gcs",
            Backend::Azure => "azure",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `server.log_level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// `debug`.
    Debug,
    /// `info`.
    Info,
    /// `warn`.
    Warn,
    /// `error`.
    Error,
}

impl LogLevel {
    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `allegro.wal_fsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WalFsync {
    /// `always`: fsync before acknowledging each write. The default.
    Always,
    /// `interval`: fsync every `allegro.wal_fsync_interval`; a crash may lose that much.
    Interval,
    /// `never`: leave it to the operating system.
    Never,
}

impl WalFsync {
    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            WalFsync::Always => "always",
            WalFsync::Interval => "interval",
            WalFsync::Never => "never",
        }
    }
}

impl fmt::Display for WalFsync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A listen address in Go's `host:port` form: `0.0.0.0:4317`, `localhost:4318`, `:4317`
/// (all interfaces), `[::1]:4317`. The host is kept as written (it may be a name); the port is
/// numeric.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Host name or IP address without brackets; empty means all interfaces.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// Parses `host:port` like Go's `net.SplitHostPort` followed by a numeric port.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| "missing ']' in address".to_owned())?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| "missing port in address".to_owned())?;
            (host, port)
        } else {
            let (host, port) = text
                .rsplit_once(':')
                .ok_or_else(|| "missing port in address".to_owned())?;
            if host.contains(':') {
                return Err("too many colons in address; write IPv6 hosts as [::1]:4317".to_owned());
            }
            (host, port)
        };
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("port {port:?} is not a number"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| format!("port {port} is out of range (0-65535)"))?;
        Ok(Endpoint {
            host: host.to_owned(),
            port,
        })
    }

    /// True when the host means every interface (`""`, `0.0.0.0`, `::`).
    pub fn is_all_interfaces(&self) -> bool {
        matches!(self.host.as_str(), "" | "0.0.0.0" | "::")
    }

    fn overlaps(&self, other: &Endpoint) -> bool {
        self.port == other.port
            && self.port != 0
            && (self.host == other.host || self.is_all_interfaces() || other.is_all_interfaces())
    }
}

impl fmt::Display for Endpoint {
    /// `host:port`, with IPv6 hosts in brackets; ready for `ToSocketAddrs` unless the host is
    /// empty (all interfaces), which Rust spells `0.0.0.0` or `[::]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Default for Config {
    /// Tempo's defaults everywhere: what an empty `tempo.yaml` means.
    fn default() -> Config {
        Config {
            stream_over_http_enabled: false,
            multitenancy_enabled: false,
            server: ServerConfig {
                http_listen_address: String::new(),
                http_listen_port: defaults::HTTP_LISTEN_PORT,
                grpc_listen_address: String::new(),
                grpc_listen_port: defaults::GRPC_LISTEN_PORT,
                log_level: LogLevel::Info,
            },
            distributor: DistributorConfig {
                otlp_grpc_endpoint: Some(Endpoint::otlp_grpc_default()),
                jaeger_grpc_endpoint: Some(Endpoint::receiver_default(defaults::JAEGER_GRPC_PORT)),
                jaeger_thrift_http_endpoint: Some(Endpoint::receiver_default(
                    defaults::JAEGER_THRIFT_HTTP_PORT,
                )),
                ..DistributorConfig::receivers_off()
            },
            ingester: IngesterConfig {
                trace_idle_period: defaults::TRACE_IDLE_PERIOD,
                max_block_duration: defaults::MAX_BLOCK_DURATION,
                max_block_bytes: defaults::MAX_BLOCK_BYTES,
                complete_block_timeout: defaults::COMPLETE_BLOCK_TIMEOUT,
            },
            compactor: CompactorConfig {
                block_retention: defaults::BLOCK_RETENTION,
                compaction_window: defaults::COMPACTION_WINDOW,
            },
            querier: QuerierConfig {
                search_query_timeout: defaults::SEARCH_QUERY_TIMEOUT,
                trace_by_id_query_timeout: defaults::TRACE_BY_ID_QUERY_TIMEOUT,
            },
            query_frontend: QueryFrontendConfig {
                search_default_result_limit: defaults::SEARCH_DEFAULT_RESULT_LIMIT,
                search_max_result_limit: defaults::SEARCH_MAX_RESULT_LIMIT,
                search_max_duration: defaults::SEARCH_MAX_DURATION,
                search_max_spans_per_span_set: defaults::SEARCH_MAX_SPANS_PER_SPAN_SET,
                metrics_max_duration: defaults::METRICS_MAX_DURATION,
                metrics_max_exemplars: defaults::METRICS_MAX_EXEMPLARS,
            },
            storage: StorageConfig {
                backend: Backend::Local,
                local_path: PathBuf::from(defaults::LOCAL_PATH),
                wal_path: PathBuf::from(defaults::WAL_PATH),
            },
            overrides: OverridesConfig {
                ingestion_rate_limit_bytes: defaults::INGESTION_RATE_LIMIT_BYTES,
                ingestion_burst_size_bytes: defaults::INGESTION_BURST_SIZE_BYTES,
                max_traces_per_user: defaults::MAX_TRACES_PER_USER,
                max_bytes_per_trace: defaults::MAX_BYTES_PER_TRACE,
                max_bytes_per_tag_values_query: defaults::MAX_BYTES_PER_TAG_VALUES_QUERY,
                max_search_duration: Duration::ZERO,
                max_metrics_duration: Duration::ZERO,
            },
            allegro: AllegroConfig {
                shards: shards_auto(),
                wal_fsync: WalFsync::Always,
                wal_fsync_interval: defaults::WAL_FSYNC_INTERVAL,
                wal_segment_bytes_max: defaults::WAL_SEGMENT_BYTES_MAX,
                live_traces_bytes_max: defaults::LIVE_TRACES_BYTES_MAX,
                grpc_max_recv_msg_bytes: defaults::GRPC_MAX_RECV_MSG_BYTES,
                shutdown_timeout: defaults::SHUTDOWN_TIMEOUT,
            },
        }
    }
}

impl Endpoint {
    /// A receiver protocol listed without `endpoint:`: all interfaces, the protocol's port.
    pub(crate) fn receiver_default(port: u16) -> Endpoint {
        Endpoint {
            host: defaults::OTLP_HOST.to_owned(),
            port,
        }
    }

    pub(crate) fn otlp_grpc_default() -> Endpoint {
        Endpoint {
            host: defaults::OTLP_HOST.to_owned(),
            port: defaults::OTLP_GRPC_PORT,
        }
    }
}

/// `allegro.shards` when absent or 0: one shard per online CPU, within `1..=SHARDS_MAX`.
pub(crate) fn shards_auto() -> usize {
    std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(1)
        .clamp(1, defaults::SHARDS_MAX)
}

impl Config {
    /// Checks relations between values that each parsed fine. The loaders call this; call it
    /// again after changing a `Config` by hand.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let allegro = &self.allegro;
        if allegro.shards == 0 || allegro.shards > defaults::SHARDS_MAX {
            return Err(ConfigError::invalid(
                "allegro.shards",
                format!(
                    "{} shards is out of range; expected 1 to {} (0 or absent: one per CPU)",
                    allegro.shards,
                    defaults::SHARDS_MAX
                ),
            ));
        }
        if allegro.wal_segment_bytes_max < defaults::WAL_SEGMENT_BYTES_MAX_MIN {
            return Err(ConfigError::invalid(
                "allegro.wal_segment_bytes_max",
                format!(
                    "{} bytes is too small; expected at least {} (1 MiB)",
                    allegro.wal_segment_bytes_max,
                    defaults::WAL_SEGMENT_BYTES_MAX_MIN
                ),
            ));
        }
        if allegro.wal_fsync == WalFsync::Interval && allegro.wal_fsync_interval.is_zero() {
            return Err(ConfigError::invalid(
                "allegro.wal_fsync_interval",
                "must be greater than 0s when allegro.wal_fsync is interval".to_owned(),
            ));
        }
        if allegro.grpc_max_recv_msg_bytes == 0 {
            return Err(ConfigError::invalid(
                "allegro.grpc_max_recv_msg_bytes",
                "must be greater than 0".to_owned(),
            ));
        }
        if allegro.live_traces_bytes_max < self.overrides.max_bytes_per_trace {
            return Err(ConfigError::invalid(
                "allegro.live_traces_bytes_max",
                format!(
                    "{} bytes per shard cannot hold one trace of \
                     overrides.defaults.global.max_bytes_per_trace ({} bytes); raise it or lower that",
                    allegro.live_traces_bytes_max, self.overrides.max_bytes_per_trace
                ),
            ));
        }
        if self.storage.wal_path.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                "storage.trace.wal.path",
                "must not be empty".to_owned(),
            ));
        }
        if self.storage.backend == Backend::Local && self.storage.local_path.as_os_str().is_empty()
        {
            return Err(ConfigError::invalid(
                "storage.trace.local.path",
                "must not be empty with storage.trace.backend: local".to_owned(),
            ));
        }
        self.validate_listeners()
    }

    /// Two TCP listeners (or two UDP sockets) on one port and overlapping hosts cannot both
    /// bind.
    fn validate_listeners(&self) -> Result<(), ConfigError> {
        let d = &self.distributor;
        let mut tcp: Vec<(&str, Endpoint)> = vec![
            ("server.http_listen_port", self.server.http_endpoint()),
            ("server.grpc_listen_port", self.server.grpc_endpoint()),
        ];
        for (key, endpoint) in [
            (
                "distributor.receivers.otlp.protocols.grpc.endpoint",
                &d.otlp_grpc_endpoint,
            ),
            (
                "distributor.receivers.otlp.protocols.http.endpoint",
                &d.otlp_http_endpoint,
            ),
            ("distributor.receivers.zipkin.endpoint", &d.zipkin_endpoint),
            (
                "distributor.receivers.jaeger.protocols.grpc.endpoint",
                &d.jaeger_grpc_endpoint,
            ),
            (
                "distributor.receivers.jaeger.protocols.thrift_http.endpoint",
                &d.jaeger_thrift_http_endpoint,
            ),
        ] {
            if let Some(endpoint) = endpoint {
                tcp.push((key, endpoint.clone()));
            }
        }
        let mut udp: Vec<(&str, Endpoint)> = Vec::new();
        for (key, endpoint) in [
            (
                "distributor.receivers.jaeger.protocols.thrift_compact.endpoint",
                &d.jaeger_thrift_compact_endpoint,
            ),
            (
                "distributor.receivers.jaeger.protocols.thrift_binary.endpoint",
                &d.jaeger_thrift_binary_endpoint,
            ),
        ] {
            if let Some(endpoint) = endpoint {
                udp.push((key, endpoint.clone()));
            }
        }
        for listeners in [&tcp, &udp] {
            for (index, (key, endpoint)) in listeners.iter().enumerate() {
                for (other_key, other) in listeners.iter().skip(index + 1) {
                    if endpoint.overlaps(other) {
                        return Err(ConfigError::invalid(
                            other_key,
                            format!(
                                "port {} is already used by {key}; each listener needs its own port",
                                other.port
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Parses [`crate::DEFAULT_CONFIG_YAML`]: the reference `tempo.yaml` with data under
    /// `./data`, so that Allegro runs without root and without a config file.
    pub fn embedded_default() -> Config {
        match crate::load::parse_str(crate::DEFAULT_CONFIG_YAML, "<embedded default>") {
            Ok(loaded) => loaded.config,
            // A test parses the same constant; reaching this is a bug in this crate.
            Err(error) => panic!("the embedded default configuration is invalid: {error}"),
        }
    }

    /// One line per setting, `key: value` in YAML key order, for a startup log.
    pub fn summary(&self) -> Vec<String> {
        let endpoint = |e: &Option<Endpoint>| match e {
            Some(e) => e.to_string(),
            None => "off".to_owned(),
        };
        vec![
            format!(
                "stream_over_http_enabled: {}",
                self.stream_over_http_enabled
            ),
            format!("multitenancy_enabled: {}", self.multitenancy_enabled),
            format!("server.http: {}", self.server.http_endpoint()),
            format!("server.grpc: {}", self.server.grpc_endpoint()),
            format!("server.log_level: {}", self.server.log_level),
            format!(
                "distributor.otlp.grpc: {}",
                endpoint(&self.distributor.otlp_grpc_endpoint)
            ),
            format!(
                "distributor.otlp.http: {}",
                endpoint(&self.distributor.otlp_http_endpoint)
            ),
            format!(
                "distributor.zipkin: {}",
                endpoint(&self.distributor.zipkin_endpoint)
            ),
            format!(
                "distributor.jaeger.grpc: {}",
                endpoint(&self.distributor.jaeger_grpc_endpoint)
            ),
            format!(
                "distributor.jaeger.thrift_http: {}",
                endpoint(&self.distributor.jaeger_thrift_http_endpoint)
            ),
            format!(
                "distributor.jaeger.thrift_compact: {}",
                endpoint(&self.distributor.jaeger_thrift_compact_endpoint)
            ),
            format!(
                "distributor.jaeger.thrift_binary: {}",
                endpoint(&self.distributor.jaeger_thrift_binary_endpoint)
            ),
            format!(
                "ingester.trace_idle_period: {}",
                format_duration(self.ingester.trace_idle_period)
            ),
            format!(
                "ingester.max_block_duration: {}",
                format_duration(self.ingester.max_block_duration)
            ),
            format!(
                "ingester.max_block_bytes: {}",
                self.ingester.max_block_bytes
            ),
            format!(
                "ingester.complete_block_timeout: {}",
                format_duration(self.ingester.complete_block_timeout)
            ),
            format!(
                "compactor.compaction.block_retention: {}",
                format_duration(self.compactor.block_retention)
            ),
            format!(
                "compactor.compaction.compaction_window: {}",
                format_duration(self.compactor.compaction_window)
            ),
            format!(
                "querier.search.query_timeout: {}",
                format_duration(self.querier.search_query_timeout)
            ),
            format!(
                "querier.trace_by_id.query_timeout: {}",
                format_duration(self.querier.trace_by_id_query_timeout)
            ),
            format!("storage.trace.backend: {}", self.storage.backend),
            format!(
                "storage.trace.local.path: {}",
                self.storage.local_path.display()
            ),
            format!(
                "storage.trace.wal.path: {}",
                self.storage.wal_path.display()
            ),
            format!(
                "overrides.ingestion.rate_limit_bytes: {}",
                self.overrides.ingestion_rate_limit_bytes
            ),
            format!(
                "overrides.ingestion.burst_size_bytes: {}",
                self.overrides.ingestion_burst_size_bytes
            ),
            format!(
                "overrides.ingestion.max_traces_per_user: {}",
                self.overrides.max_traces_per_user
            ),
            format!(
                "overrides.global.max_bytes_per_trace: {}",
                self.overrides.max_bytes_per_trace
            ),
            format!("allegro.shards: {}", self.allegro.shards),
            format!("allegro.wal_fsync: {}", self.allegro.wal_fsync),
            format!(
                "allegro.wal_fsync_interval: {}",
                format_duration(self.allegro.wal_fsync_interval)
            ),
            format!(
                "allegro.wal_segment_bytes_max: {}",
                self.allegro.wal_segment_bytes_max
            ),
            format!(
                "allegro.live_traces_bytes_max: {}",
                self.allegro.live_traces_bytes_max
            ),
            format!(
                "allegro.grpc_max_recv_msg_bytes: {}",
                self.allegro.grpc_max_recv_msg_bytes
            ),
            format!(
                "allegro.shutdown_timeout: {}",
                format_duration(self.allegro.shutdown_timeout)
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_forms() {
        let ok = |text: &str, host: &str, port: u16| {
            assert_eq!(
                Endpoint::parse(text),
                Ok(Endpoint {
                    host: host.to_owned(),
                    port
                }),
                "{text}"
            );
        };
        ok("0.0.0.0:4317", "0.0.0.0", 4317);
        ok("localhost:4318", "localhost", 4318);
        ok("tempo:4317", "tempo", 4317);
        ok(":4317", "", 4317);
        ok("[::1]:4317", "::1", 4317);
        ok("[::]:0", "::", 0);
        ok("127.0.0.1:65535", "127.0.0.1", 65535);

        let err = |text: &str, message: &str| {
            assert_eq!(Endpoint::parse(text), Err(message.to_owned()), "{text}");
        };
        err("4317", "missing port in address");
        err("localhost", "missing port in address");
        err("localhost:", "port \"\" is not a number");
        err("localhost:otlp", "port \"otlp\" is not a number");
        err("localhost:65536", "port 65536 is out of range (0-65535)");
        err("localhost:-1", "port \"-1\" is not a number");
        err(
            "::1:4317",
            "too many colons in address; write IPv6 hosts as [::1]:4317",
        );
        err("[::1", "missing ']' in address");
        err("[::1]4317", "missing port in address");
    }

    #[test]
    fn endpoint_display() {
        assert_eq!(
            Endpoint::parse("[::1]:4317").unwrap().to_string(),
            "[::1]:4317"
        );
        assert_eq!(Endpoint::parse(":4317").unwrap().to_string(), ":4317");
        assert_eq!(
            Endpoint::parse("0.0.0.0:4317").unwrap().to_string(),
            "0.0.0.0:4317"
        );
    }

    #[test]
    fn default_is_valid() {
        let config = Config::default();
        assert_eq!(config.validate(), Ok(()));
        assert!(config.allegro.shards >= 1);
        assert_eq!(config.summary().len(), 34);
    }

    #[test]
    fn validate_reports_the_key() {
        let check = |change: &dyn Fn(&mut Config), expected: &str| {
            let mut config = Config::default();
            change(&mut config);
            let error = config.validate().unwrap_err();
            assert_eq!(error.to_string(), expected);
        };
        check(
            &|c| c.allegro.shards = 2000,
            "allegro.shards: 2000 shards is out of range; expected 1 to 1024 (0 or absent: one per CPU)",
        );
        check(
            &|c| c.allegro.wal_segment_bytes_max = 1000,
            "allegro.wal_segment_bytes_max: 1000 bytes is too small; expected at least 1048576 (1 MiB)",
        );
        check(
            &|c| {
                c.allegro.wal_fsync = WalFsync::Interval;
                c.allegro.wal_fsync_interval = Duration::ZERO;
            },
            "allegro.wal_fsync_interval: must be greater than 0s when allegro.wal_fsync is interval",
        );
        check(
            &|c| c.allegro.live_traces_bytes_max = 1000,
            "allegro.live_traces_bytes_max: 1000 bytes per shard cannot hold one trace of overrides.defaults.global.max_bytes_per_trace (5000000 bytes); raise it or lower that",
        );
        check(
            &|c| c.storage.local_path = PathBuf::new(),
            "storage.trace.local.path: must not be empty with storage.trace.backend: local",
        );
        check(
            &|c| c.server.grpc_listen_port = 3200,
            "server.grpc_listen_port: port 3200 is already used by server.http_listen_port; each listener needs its own port",
        );
        check(
            &|c| c.distributor.otlp_grpc_endpoint = Some(Endpoint::parse("127.0.0.1:9095").unwrap()),
            "distributor.receivers.otlp.protocols.grpc.endpoint: port 9095 is already used by server.grpc_listen_port; each listener needs its own port",
        );
    }

    #[test]
    fn listeners_on_distinct_hosts_may_share_a_port() {
        let mut config = Config::default();
        config.server.http_listen_address = "127.0.0.1".to_owned();
        config.distributor.otlp_http_endpoint = Some(Endpoint::parse("10.0.0.1:3200").unwrap());
        assert_eq!(config.validate(), Ok(()));
        config.distributor.otlp_http_endpoint = Some(Endpoint::parse(":3200").unwrap());
        assert!(config.validate().is_err());
    }
}

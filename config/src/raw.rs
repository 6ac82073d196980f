//! The YAML shape, as serde reads it: every key optional, nothing defaulted yet. Keys not named
//! here are reported by `serde_ignored` and become warnings (see `keys.rs`).
//!
//! [`RawConfig::into_config`] applies Tempo's defaults and semantics (receivers, legacy
//! overrides, `auth_enabled`) and yields the public [`Config`].

use serde::Deserialize;
use serde_yaml::Value;

use crate::error::ConfigError;
use crate::model::{
    defaults, shards_auto, AllegroConfig, Backend, CompactorConfig, Config, CorsConfig,
    DistributorConfig, Endpoint, IngesterConfig, LogLevel, OverridesConfig, QuerierConfig,
    QueryFrontendConfig, ServerConfig, StorageConfig, WalFsync,
};
use crate::scalar::{
    present, Bytes, Count, EndpointValue, Flag, GoDuration, Keyword, Port, Text, Word,
};

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
pub(crate) struct RawConfig {
    target: Option<Word<Target>>,
    auth_enabled: Option<Flag>,
    multitenancy_enabled: Option<Flag>,
    stream_over_http_enabled: Option<Flag>,
    server: Option<RawServer>,
    distributor: Option<RawDistributor>,
    ingester: Option<RawIngester>,
    compactor: Option<RawCompactor>,
    querier: Option<RawQuerier>,
    query_frontend: Option<RawQueryFrontend>,
    storage: Option<RawStorage>,
    overrides: Option<RawOverrides>,
    allegro: Option<RawAllegro>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawServer {
    http_listen_address: Option<Text>,
    http_listen_port: Option<Port>,
    grpc_listen_address: Option<Text>,
    grpc_listen_port: Option<Port>,
    log_level: Option<Word<LogLevel>>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawDistributor {
    receivers: Option<RawReceivers>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawReceivers {
    #[serde(default, deserialize_with = "present")]
    otlp: Option<RawOtlp>,
    #[serde(default, deserialize_with = "present")]
    zipkin: Option<RawZipkin>,
    #[serde(default, deserialize_with = "present")]
    jaeger: Option<RawJaeger>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawZipkin {
    endpoint: Option<EndpointValue>,
    parse_string_tags: Option<Flag>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawJaeger {
    protocols: Option<RawJaegerProtocols>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawJaegerProtocols {
    #[serde(default, deserialize_with = "present")]
    grpc: Option<RawProtocol>,
    #[serde(default, deserialize_with = "present")]
    thrift_http: Option<RawProtocol>,
    #[serde(default, deserialize_with = "present")]
    thrift_compact: Option<RawProtocol>,
    #[serde(default, deserialize_with = "present")]
    thrift_binary: Option<RawProtocol>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawOtlp {
    protocols: Option<RawProtocols>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawProtocols {
    #[serde(default, deserialize_with = "present")]
    grpc: Option<RawProtocol>,
    #[serde(default, deserialize_with = "present")]
    http: Option<RawProtocol>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawProtocol {
    endpoint: Option<EndpointValue>,
    cors: Option<RawCors>,
}

/// The Collector's `confighttp` CORS settings.
#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawCors {
    allowed_origins: Option<Vec<Text>>,
    allowed_headers: Option<Vec<Text>>,
    max_age: Option<Count>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawIngester {
    trace_idle_period: Option<GoDuration>,
    max_block_duration: Option<GoDuration>,
    max_block_bytes: Option<Bytes>,
    complete_block_timeout: Option<GoDuration>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawCompactor {
    compaction: Option<RawCompaction>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawCompaction {
    block_retention: Option<GoDuration>,
    compaction_window: Option<GoDuration>,
}

/// `querier:`: only the time limits; the rest of Tempo's querier block is reported as not used.
#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawQuerier {
    search: Option<RawQueryTimeout>,
    trace_by_id: Option<RawQueryTimeout>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawQueryTimeout {
    query_timeout: Option<GoDuration>,
}

/// `query_frontend:`: the search and metrics limits; the rest is reported as not used.
#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawQueryFrontend {
    search: Option<RawFrontendSearch>,
    metrics: Option<RawFrontendMetrics>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawFrontendMetrics {
    max_duration: Option<GoDuration>,
    max_exemplars: Option<Count>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawFrontendSearch {
    default_result_limit: Option<Count>,
    max_result_limit: Option<Count>,
    max_duration: Option<GoDuration>,
    max_spans_per_span_set: Option<Count>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawStorage {
    trace: Option<RawTrace>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawTrace {
    backend: Option<Word<Backend>>,
    local: Option<RawPath>,
    wal: Option<RawPath>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawPath {
    path: Option<Text>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawOverrides {
    defaults: Option<RawOverrideDefaults>,
    // Tempo 2.x's legacy flat form.
    ingestion_rate_limit_bytes: Option<Bytes>,
    ingestion_burst_size_bytes: Option<Bytes>,
    max_traces_per_user: Option<Count>,
    max_bytes_per_trace: Option<Bytes>,
    max_bytes_per_tag_values_query: Option<Bytes>,
    max_search_duration: Option<GoDuration>,
    max_metrics_duration: Option<GoDuration>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawOverrideDefaults {
    ingestion: Option<RawIngestion>,
    global: Option<RawGlobal>,
    read: Option<RawRead>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawRead {
    max_bytes_per_tag_values_query: Option<Bytes>,
    max_search_duration: Option<GoDuration>,
    max_metrics_duration: Option<GoDuration>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawIngestion {
    rate_limit_bytes: Option<Bytes>,
    burst_size_bytes: Option<Bytes>,
    max_traces_per_user: Option<Count>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawGlobal {
    max_bytes_per_trace: Option<Bytes>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of settings")]
struct RawAllegro {
    shards: Option<Count>,
    wal_fsync: Option<Word<WalFsync>>,
    wal_fsync_interval: Option<GoDuration>,
    wal_segment_bytes_max: Option<Bytes>,
    live_traces_bytes_max: Option<Bytes>,
    grpc_max_recv_msg_bytes: Option<Bytes>,
    shutdown_timeout: Option<GoDuration>,
}

/// Tempo's `target`; Allegro is always the single binary.
enum Target {
    All,
}

impl Keyword for Target {
    const EXPECTED: &'static str = "all (Allegro runs as a single binary)";
    fn from_word(word: &str) -> Option<Target> {
        (word == "all").then_some(Target::All)
    }
}

impl Keyword for Backend {
    const EXPECTED: &'static str = "one of local, s3, gcs, azure";
    fn from_word(word: &str) -> Option<Backend> {
        Some(match word {
            "local" => Backend::Local,
            "s3" => Backend::S3,
            "gcs" => Backend::Gcs,
            "azure" => Backend::Azure,
            _ => return None,
        })
    }
}

impl Keyword for LogLevel {
    const EXPECTED: &'static str = "one of debug, info, warn, error";
    fn from_word(word: &str) -> Option<LogLevel> {
        Some(match word {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => return None,
        })
    }
}

impl Keyword for WalFsync {
    const EXPECTED: &'static str = "one of always, interval, never";
    fn from_word(word: &str) -> Option<WalFsync> {
        Some(match word {
            "always" => WalFsync::Always,
            "interval" => WalFsync::Interval,
            "never" => WalFsync::Never,
            _ => return None,
        })
    }
}

impl RawConfig {
    /// Applies Tempo's defaults and semantics. `document` is the same text parsed as a plain
    /// YAML value, for the questions serde's typed view cannot answer (is `receivers:` empty?).
    pub(crate) fn into_config(self, document: &Value) -> Result<Config, ConfigError> {
        let base = Config::default();
        // `target` needs no further work: only `all` parses.
        let _ = self.target;

        let server = self.server.unwrap_or_default();
        let server = ServerConfig {
            http_listen_address: server
                .http_listen_address
                .map_or(base.server.http_listen_address, |t| t.0),
            http_listen_port: server
                .http_listen_port
                .map_or(base.server.http_listen_port, |p| p.0),
            grpc_listen_address: server
                .grpc_listen_address
                .map_or(base.server.grpc_listen_address, |t| t.0),
            grpc_listen_port: server
                .grpc_listen_port
                .map_or(base.server.grpc_listen_port, |p| p.0),
            log_level: server.log_level.map_or(base.server.log_level, |w| w.0),
        };

        let distributor = distributor(self.distributor.unwrap_or_default(), document)?;

        let ingester = self.ingester.unwrap_or_default();
        let ingester = IngesterConfig {
            trace_idle_period: ingester
                .trace_idle_period
                .map_or(base.ingester.trace_idle_period, |d| d.0),
            max_block_duration: ingester
                .max_block_duration
                .map_or(base.ingester.max_block_duration, |d| d.0),
            max_block_bytes: ingester
                .max_block_bytes
                .map_or(base.ingester.max_block_bytes, |b| b.0),
            complete_block_timeout: ingester
                .complete_block_timeout
                .map_or(base.ingester.complete_block_timeout, |d| d.0),
        };

        let compaction = self
            .compactor
            .unwrap_or_default()
            .compaction
            .unwrap_or_default();
        let compactor = CompactorConfig {
            block_retention: compaction
                .block_retention
                .map_or(base.compactor.block_retention, |d| d.0),
            compaction_window: compaction
                .compaction_window
                .map_or(base.compactor.compaction_window, |d| d.0),
        };

        let querier = self.querier.unwrap_or_default();
        let timeout = |raw: Option<RawQueryTimeout>, default| {
            raw.and_then(|r| r.query_timeout).map_or(default, |d| d.0)
        };
        let querier = QuerierConfig {
            search_query_timeout: timeout(querier.search, base.querier.search_query_timeout),
            trace_by_id_query_timeout: timeout(
                querier.trace_by_id,
                base.querier.trace_by_id_query_timeout,
            ),
        };

        let frontend = self.query_frontend.unwrap_or_default();
        let search = frontend.search.unwrap_or_default();
        let metrics = frontend.metrics.unwrap_or_default();
        let count_u32 = |raw: Option<Count>, key: &str, default: u32| match raw {
            None => Ok(default),
            Some(count) => u32::try_from(count.0).map_err(|_| {
                ConfigError::invalid(
                    &format!("query_frontend.{key}"),
                    format!("{} is larger than {}", count.0, u32::MAX),
                )
            }),
        };
        let base_search = &base.query_frontend;
        let query_frontend = QueryFrontendConfig {
            search_default_result_limit: count_u32(
                search.default_result_limit,
                "search.default_result_limit",
                base_search.search_default_result_limit,
            )?,
            search_max_result_limit: count_u32(
                search.max_result_limit,
                "search.max_result_limit",
                base_search.search_max_result_limit,
            )?,
            search_max_duration: search
                .max_duration
                .map_or(base_search.search_max_duration, |d| d.0),
            search_max_spans_per_span_set: count_u32(
                search.max_spans_per_span_set,
                "search.max_spans_per_span_set",
                base_search.search_max_spans_per_span_set,
            )?,
            metrics_max_duration: metrics
                .max_duration
                .map_or(base_search.metrics_max_duration, |d| d.0),
            metrics_max_exemplars: count_u32(
                metrics.max_exemplars,
                "metrics.max_exemplars",
                base_search.metrics_max_exemplars,
            )?,
        };

        let trace = self.storage.unwrap_or_default().trace.unwrap_or_default();
        let path = |raw: Option<RawPath>, default: std::path::PathBuf| {
            raw.and_then(|p| p.path).map_or(default, |t| t.0.into())
        };
        let storage = StorageConfig {
            backend: trace.backend.map_or(base.storage.backend, |w| w.0),
            local_path: path(trace.local, base.storage.local_path),
            wal_path: path(trace.wal, base.storage.wal_path),
        };

        let overrides = overrides(self.overrides.unwrap_or_default(), base.overrides)?;

        let allegro = self.allegro.unwrap_or_default();
        let shards = match allegro.shards.map(|c| c.0) {
            None | Some(0) => shards_auto(),
            // Out-of-range values fail in `validate` with the allowed range.
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let allegro = AllegroConfig {
            shards,
            wal_fsync: allegro.wal_fsync.map_or(base.allegro.wal_fsync, |w| w.0),
            wal_fsync_interval: allegro
                .wal_fsync_interval
                .map_or(base.allegro.wal_fsync_interval, |d| d.0),
            wal_segment_bytes_max: allegro
                .wal_segment_bytes_max
                .map_or(base.allegro.wal_segment_bytes_max, |b| b.0),
            live_traces_bytes_max: allegro
                .live_traces_bytes_max
                .map_or(base.allegro.live_traces_bytes_max, |b| b.0),
            grpc_max_recv_msg_bytes: allegro
                .grpc_max_recv_msg_bytes
                .map_or(base.allegro.grpc_max_recv_msg_bytes, |b| b.0),
            shutdown_timeout: allegro
                .shutdown_timeout
                .map_or(base.allegro.shutdown_timeout, |d| d.0),
        };

        let flag = |f: Option<Flag>| f.is_some_and(|f| f.0);
        Ok(Config {
            stream_over_http_enabled: flag(self.stream_over_http_enabled),
            // Tempo: MultitenancyIsEnabled() = multitenancy_enabled || auth_enabled.
            multitenancy_enabled: flag(self.multitenancy_enabled) || flag(self.auth_enabled),
            server,
            distributor,
            ingester,
            compactor,
            querier,
            query_frontend,
            storage,
            overrides,
            allegro,
        })
    }
}

/// Tempo's receiver rules: no `receivers:` (or an empty one) means Tempo's default receivers
/// (OTLP gRPC, Jaeger gRPC and thrift_http); otherwise a protocol is on only if listed. A listed `otlp:`
/// or `jaeger:` without any protocol is an error in the OpenTelemetry Collector, so it is here
/// too. `zipkin:` alone enables Zipkin on its default endpoint.
fn distributor(raw: RawDistributor, document: &Value) -> Result<DistributorConfig, ConfigError> {
    let receivers = document.get("distributor").and_then(|d| d.get("receivers"));
    let receivers_empty = match receivers {
        None | Some(Value::Null) => true,
        Some(Value::Mapping(map)) => map.is_empty(),
        Some(_) => false,
    };
    let mut config = DistributorConfig::receivers_off();
    if receivers_empty {
        // Tempo's `defaultReceivers` (modules/distributor/config.go): OTLP gRPC, and Jaeger
        // gRPC and thrift_http.
        config.otlp_grpc_endpoint = Some(Endpoint::otlp_grpc_default());
        config.jaeger_grpc_endpoint = Some(Endpoint::receiver_default(defaults::JAEGER_GRPC_PORT));
        config.jaeger_thrift_http_endpoint = Some(Endpoint::receiver_default(
            defaults::JAEGER_THRIFT_HTTP_PORT,
        ));
        return Ok(config);
    }
    let receivers = raw.receivers.unwrap_or_default();
    let endpoint = |protocol: &Option<RawProtocol>, default_port: u16| {
        protocol.as_ref().map(|p| {
            p.endpoint
                .as_ref()
                .map_or_else(|| Endpoint::receiver_default(default_port), |e| e.0.clone())
        })
    };
    if let Some(otlp) = receivers.otlp {
        let protocols = otlp.protocols.unwrap_or_default();
        config.otlp_grpc_endpoint = endpoint(&protocols.grpc, defaults::OTLP_GRPC_PORT);
        config.otlp_http_endpoint = endpoint(&protocols.http, defaults::OTLP_HTTP_PORT);
        if config.otlp_grpc_endpoint.is_none() && config.otlp_http_endpoint.is_none() {
            return Err(ConfigError::invalid(
                "distributor.receivers.otlp",
                "must list at least one protocol under protocols: (grpc: or http:)".to_owned(),
            ));
        }
        if let Some(cors) = protocols.http.and_then(|http| http.cors) {
            config.otlp_http_cors = Some(cors_config(cors));
        }
    }
    if let Some(zipkin) = receivers.zipkin {
        config.zipkin_endpoint = Some(zipkin.endpoint.map_or_else(
            || Endpoint::receiver_default(defaults::ZIPKIN_PORT),
            |e| e.0,
        ));
        config.zipkin_parse_string_tags = zipkin.parse_string_tags.is_some_and(|f| f.0);
    }
    if let Some(jaeger) = receivers.jaeger {
        let protocols = jaeger.protocols.unwrap_or_default();
        config.jaeger_grpc_endpoint = endpoint(&protocols.grpc, defaults::JAEGER_GRPC_PORT);
        config.jaeger_thrift_http_endpoint =
            endpoint(&protocols.thrift_http, defaults::JAEGER_THRIFT_HTTP_PORT);
        config.jaeger_thrift_compact_endpoint = endpoint(
            &protocols.thrift_compact,
            defaults::JAEGER_THRIFT_COMPACT_PORT,
        );
        config.jaeger_thrift_binary_endpoint = endpoint(
            &protocols.thrift_binary,
            defaults::JAEGER_THRIFT_BINARY_PORT,
        );
        if config.jaeger_grpc_endpoint.is_none()
            && config.jaeger_thrift_http_endpoint.is_none()
            && config.jaeger_thrift_compact_endpoint.is_none()
            && config.jaeger_thrift_binary_endpoint.is_none()
        {
            return Err(ConfigError::invalid(
                "distributor.receivers.jaeger",
                "must specify at least one protocol when using the Jaeger receiver \
                 (protocols: grpc, thrift_http, thrift_compact or thrift_binary)"
                    .to_owned(),
            ));
        }
    }
    Ok(config)
}

fn cors_config(raw: RawCors) -> CorsConfig {
    let texts = |list: Option<Vec<Text>>| {
        list.unwrap_or_default()
            .into_iter()
            .map(|t| t.0)
            .collect::<Vec<_>>()
    };
    CorsConfig {
        allowed_origins: texts(raw.allowed_origins),
        allowed_headers: texts(raw.allowed_headers),
        max_age_secs: raw.max_age.map(|c| c.0),
    }
}

/// Either `overrides.defaults.*` or the legacy flat keys; Tempo rejects a mix of the two.
fn overrides(raw: RawOverrides, base: OverridesConfig) -> Result<OverridesConfig, ConfigError> {
    let legacy = [
        (
            "ingestion_rate_limit_bytes",
            raw.ingestion_rate_limit_bytes.is_some(),
        ),
        (
            "ingestion_burst_size_bytes",
            raw.ingestion_burst_size_bytes.is_some(),
        ),
        ("max_traces_per_user", raw.max_traces_per_user.is_some()),
        ("max_bytes_per_trace", raw.max_bytes_per_trace.is_some()),
        (
            "max_bytes_per_tag_values_query",
            raw.max_bytes_per_tag_values_query.is_some(),
        ),
        ("max_search_duration", raw.max_search_duration.is_some()),
        ("max_metrics_duration", raw.max_metrics_duration.is_some()),
    ];
    let Some(new) = raw.defaults else {
        return Ok(OverridesConfig {
            ingestion_rate_limit_bytes: raw
                .ingestion_rate_limit_bytes
                .map_or(base.ingestion_rate_limit_bytes, |b| b.0),
            ingestion_burst_size_bytes: raw
                .ingestion_burst_size_bytes
                .map_or(base.ingestion_burst_size_bytes, |b| b.0),
            max_traces_per_user: raw
                .max_traces_per_user
                .map_or(base.max_traces_per_user, |c| c.0),
            max_bytes_per_trace: raw
                .max_bytes_per_trace
                .map_or(base.max_bytes_per_trace, |b| b.0),
            max_bytes_per_tag_values_query: raw
                .max_bytes_per_tag_values_query
                .map_or(base.max_bytes_per_tag_values_query, |b| b.0),
            max_search_duration: raw
                .max_search_duration
                .map_or(base.max_search_duration, |d| d.0),
            max_metrics_duration: raw
                .max_metrics_duration
                .map_or(base.max_metrics_duration, |d| d.0),
        });
    };
    if let Some((key, _)) = legacy.iter().find(|(_, set)| *set) {
        return Err(ConfigError::invalid(
            &format!("overrides.{key}"),
            "the legacy flat overrides form cannot be mixed with overrides.defaults \
             (Tempo rejects this too); move it under overrides.defaults"
                .to_owned(),
        ));
    }
    let ingestion = new.ingestion.unwrap_or_default();
    let global = new.global.unwrap_or_default();
    let read = new.read.unwrap_or_default();
    Ok(OverridesConfig {
        ingestion_rate_limit_bytes: ingestion
            .rate_limit_bytes
            .map_or(base.ingestion_rate_limit_bytes, |b| b.0),
        ingestion_burst_size_bytes: ingestion
            .burst_size_bytes
            .map_or(base.ingestion_burst_size_bytes, |b| b.0),
        max_traces_per_user: ingestion
            .max_traces_per_user
            .map_or(base.max_traces_per_user, |c| c.0),
        max_bytes_per_trace: global
            .max_bytes_per_trace
            .map_or(base.max_bytes_per_trace, |b| b.0),
        max_bytes_per_tag_values_query: read
            .max_bytes_per_tag_values_query
            .map_or(base.max_bytes_per_tag_values_query, |b| b.0),
        max_search_duration: read
            .max_search_duration
            .map_or(base.max_search_duration, |d| d.0),
        max_metrics_duration: read
            .max_metrics_duration
            .map_or(base.max_metrics_duration, |d| d.0),
    })
}

/// Keeps the defaults in one place: the raw view of an empty document converts to
/// `Config::default()`.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::defaults;

    #[test]
    fn empty_document_is_the_default() {
        let config = RawConfig::default().into_config(&Value::Null).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.server.http_listen_port, defaults::HTTP_LISTEN_PORT);
    }
}

//! Loading whole configuration files: the reference `tempo.yaml`, Tempo's defaults, warnings for
//! ignored keys, and the error message for every kind of bad input (one golden table).

use std::path::{Path, PathBuf};
use std::time::Duration;

use allegro_config::{
    load_file, load_str, parse_str, Backend, Config, ConfigError, Endpoint, Loaded, LogLevel,
    WalFsync, DEFAULT_CONFIG_YAML,
};

/// A copy of `/work/shared/tempo.yaml`, so the tests do not depend on the checkout's location.
const REFERENCE_YAML: &str = include_str!("fixtures/tempo.yaml");

fn load(yaml: &str) -> Loaded {
    match parse_str(yaml, "tempo.yaml") {
        Ok(loaded) => loaded,
        Err(error) => panic!("{yaml}\nfailed: {error}"),
    }
}

fn load_error(yaml: &str) -> String {
    match parse_str(yaml, "tempo.yaml") {
        Ok(loaded) => panic!("{yaml}\nloaded: {loaded:?}"),
        Err(error) => error.to_string(),
    }
}

fn endpoint(text: &str) -> Option<Endpoint> {
    Some(Endpoint::parse(text).unwrap())
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(1024))
}

fn assert_reference(loaded: &Loaded) {
    assert_eq!(loaded.warnings, Vec::<String>::new());
    let config = &loaded.config;
    assert!(config.stream_over_http_enabled);
    assert!(!config.multitenancy_enabled);
    assert_eq!(config.server.http_listen_port, 3200);
    assert_eq!(config.server.http_listen_address, "");
    assert_eq!(
        config.distributor.otlp_grpc_endpoint,
        endpoint("0.0.0.0:4317")
    );
    assert_eq!(config.distributor.otlp_http_endpoint, None);
    assert_eq!(config.storage.backend, Backend::Local);
    assert_eq!(
        config.storage.local_path,
        PathBuf::from("/var/tempo/traces")
    );
    assert_eq!(config.storage.wal_path, PathBuf::from("/var/tempo/wal"));
}

#[test]
fn reference_config_parses_without_warnings() {
    assert_reference(&load(REFERENCE_YAML));
}

/// The real file, when this checkout sits next to it (`/work/main` and `/work/shared`).
#[test]
fn reference_file_on_disk_matches_the_fixture() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tempo.yaml");
    if !path.exists() {
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, REFERENCE_YAML, "tests/fixtures/tempo.yaml is stale");
    assert_reference(&load_file(&path, false).unwrap());
    assert_reference(&load_file(&path, true).unwrap());
}

#[test]
fn embedded_default_is_the_reference_with_local_data() {
    let expected = REFERENCE_YAML
        .replace("path: /var/tempo/traces", "path: ./data/traces")
        .replace("path: /var/tempo/wal", "path: ./data/wal");
    assert_eq!(DEFAULT_CONFIG_YAML, expected);

    let loaded = load(DEFAULT_CONFIG_YAML);
    assert_eq!(loaded.warnings, Vec::<String>::new());
    let config = Config::embedded_default();
    assert_eq!(config, loaded.config);
    assert_eq!(config.storage.local_path, PathBuf::from("./data/traces"));
    assert_eq!(config.storage.wal_path, PathBuf::from("./data/wal"));
    assert_eq!(
        config.distributor.otlp_grpc_endpoint,
        endpoint("0.0.0.0:4317")
    );
    assert!(config.stream_over_http_enabled);
}

#[test]
fn absent_keys_take_tempo_defaults() {
    for yaml in ["", "# nothing but a comment\n", "server:\n", "{}\n"] {
        let loaded = load(yaml);
        assert_eq!(loaded.warnings, Vec::<String>::new());
        let c = loaded.config;
        assert_eq!(c, Config::default(), "{yaml:?}");

        assert!(!c.stream_over_http_enabled);
        assert!(!c.multitenancy_enabled);
        assert_eq!(c.server.http_listen_address, "");
        assert_eq!(c.server.http_listen_port, 3200);
        assert_eq!(c.server.grpc_listen_address, "");
        assert_eq!(c.server.grpc_listen_port, 9095);
        assert_eq!(c.server.log_level, LogLevel::Info);
        // No receivers: block at all is Tempo's default receiver set, OTLP/gRPC included.
        assert_eq!(c.distributor.otlp_grpc_endpoint, endpoint("0.0.0.0:4317"));
        assert_eq!(c.distributor.otlp_http_endpoint, None);
        assert_eq!(c.ingester.trace_idle_period, Duration::from_secs(10));
        assert_eq!(c.ingester.max_block_duration, Duration::from_secs(30 * 60));
        assert_eq!(c.ingester.max_block_bytes, 524_288_000);
        assert_eq!(
            c.ingester.complete_block_timeout,
            Duration::from_secs(15 * 60)
        );
        assert_eq!(c.compactor.block_retention, Duration::from_secs(336 * 3600));
        assert_eq!(c.compactor.compaction_window, Duration::from_secs(3600));
        assert_eq!(c.querier.search_query_timeout, Duration::from_secs(30));
        assert_eq!(c.querier.trace_by_id_query_timeout, Duration::from_secs(10));
        assert_eq!(c.storage.backend, Backend::Local);
        assert_eq!(c.storage.local_path, PathBuf::from("/var/tempo/traces"));
        assert_eq!(c.storage.wal_path, PathBuf::from("/var/tempo/wal"));
        assert_eq!(c.overrides.ingestion_rate_limit_bytes, 15_000_000);
        assert_eq!(c.overrides.ingestion_burst_size_bytes, 20_000_000);
        assert_eq!(c.overrides.max_traces_per_user, 10_000);
        assert_eq!(c.overrides.max_bytes_per_trace, 5_000_000);
        assert_eq!(c.allegro.shards, cpus());
        assert_eq!(c.allegro.wal_fsync, WalFsync::Always);
        assert_eq!(c.allegro.wal_fsync_interval, Duration::from_millis(100));
        assert_eq!(c.allegro.wal_segment_bytes_max, 64 << 20);
        assert_eq!(c.allegro.live_traces_bytes_max, 128 << 20);
        assert_eq!(c.allegro.grpc_max_recv_msg_bytes, 16 << 20);
        assert_eq!(c.allegro.shutdown_timeout, Duration::from_secs(30));
    }
}

#[test]
fn every_supported_key() {
    let yaml = "\
target: all
stream_over_http_enabled: yes
multitenancy_enabled: true
server:
  http_listen_address: 127.0.0.1
  http_listen_port: 3300
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: 9096
  log_level: debug
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: \"[::1]:14317\"
        http:
          endpoint: localhost:14318
ingester:
  trace_idle_period: 5s
  max_block_duration: 1h30m
  max_block_bytes: 1_000_000
  complete_block_timeout: 0
compactor:
  compaction:
    block_retention: 48h
    compaction_window: 30m
querier:
  search:
    query_timeout: 1m30s
  trace_by_id:
    query_timeout: 2s
query_frontend:
  search:
    default_result_limit: 50
    max_result_limit: 500
    max_duration: 24h
    max_spans_per_span_set: 0
storage:
  trace:
    backend: s3
    local:
      path: /srv/traces
    wal:
      path: /srv/wal
overrides:
  defaults:
    ingestion:
      rate_limit_bytes: 1e6
      burst_size_bytes: 2000000
      max_traces_per_user: 0
    global:
      max_bytes_per_trace: 100_000
    read:
      max_bytes_per_tag_values_query: 5000
      max_search_duration: 12h
allegro:
  shards: 3
  wal_fsync: interval
  wal_fsync_interval: 250ms
  wal_segment_bytes_max: 0x8000000
  live_traces_bytes_max: 1073741824
  grpc_max_recv_msg_bytes: 4194304
  shutdown_timeout: 1m
";
    let loaded = load(yaml);
    assert_eq!(loaded.warnings, Vec::<String>::new());
    let c = loaded.config;
    assert!(c.stream_over_http_enabled);
    assert!(c.multitenancy_enabled);
    assert_eq!(
        c.server.http_endpoint(),
        Endpoint::parse("127.0.0.1:3300").unwrap()
    );
    assert_eq!(
        c.server.grpc_endpoint(),
        Endpoint::parse("127.0.0.1:9096").unwrap()
    );
    assert_eq!(c.server.log_level, LogLevel::Debug);
    assert_eq!(c.distributor.otlp_grpc_endpoint, endpoint("[::1]:14317"));
    assert_eq!(
        c.distributor.otlp_http_endpoint,
        endpoint("localhost:14318")
    );
    assert_eq!(c.ingester.trace_idle_period, Duration::from_secs(5));
    assert_eq!(c.ingester.max_block_duration, Duration::from_secs(5400));
    assert_eq!(c.ingester.max_block_bytes, 1_000_000);
    assert_eq!(c.ingester.complete_block_timeout, Duration::ZERO);
    assert_eq!(c.compactor.block_retention, Duration::from_secs(48 * 3600));
    assert_eq!(c.compactor.compaction_window, Duration::from_secs(1800));
    assert_eq!(c.querier.search_query_timeout, Duration::from_secs(90));
    assert_eq!(c.querier.trace_by_id_query_timeout, Duration::from_secs(2));
    assert_eq!(c.query_frontend.search_default_result_limit, 50);
    assert_eq!(c.query_frontend.search_max_result_limit, 500);
    assert_eq!(
        c.query_frontend.search_max_duration,
        Duration::from_secs(24 * 3600)
    );
    assert_eq!(c.query_frontend.search_max_spans_per_span_set, 0);
    assert_eq!(c.storage.backend, Backend::S3);
    assert_eq!(c.storage.local_path, PathBuf::from("/srv/traces"));
    assert_eq!(c.storage.wal_path, PathBuf::from("/srv/wal"));
    assert_eq!(c.overrides.ingestion_rate_limit_bytes, 1_000_000);
    assert_eq!(c.overrides.ingestion_burst_size_bytes, 2_000_000);
    assert_eq!(c.overrides.max_traces_per_user, 0);
    assert_eq!(c.overrides.max_bytes_per_trace, 100_000);
    assert_eq!(c.overrides.max_bytes_per_tag_values_query, 5000);
    assert_eq!(
        c.overrides.max_search_duration,
        Duration::from_secs(12 * 3600)
    );
    assert_eq!(c.allegro.shards, 3);
    assert_eq!(c.allegro.wal_fsync, WalFsync::Interval);
    assert_eq!(c.allegro.wal_fsync_interval, Duration::from_millis(250));
    assert_eq!(c.allegro.wal_segment_bytes_max, 128 << 20);
    assert_eq!(c.allegro.live_traces_bytes_max, 1 << 30);
    assert_eq!(c.allegro.grpc_max_recv_msg_bytes, 4 << 20);
    assert_eq!(c.allegro.shutdown_timeout, Duration::from_secs(60));
}

#[test]
fn shards_zero_means_every_cpu() {
    assert_eq!(
        load("allegro:\n  shards: 0\n").config.allegro.shards,
        cpus()
    );
    assert_eq!(load("allegro:\n  shards:\n").config.allegro.shards, cpus());
    assert_eq!(
        load("allegro:\n  shards: 1024\n").config.allegro.shards,
        1024
    );
}

#[test]
fn legacy_overrides_form() {
    let c = load(
        "\
overrides:
  ingestion_rate_limit_bytes: 100
  ingestion_burst_size_bytes: 200
  max_traces_per_user: 300
  max_bytes_per_trace: 400
  max_bytes_per_tag_values_query: 500
  max_search_duration: 1h
",
    )
    .config;
    assert_eq!(c.overrides.max_bytes_per_tag_values_query, 500);
    assert_eq!(c.overrides.max_search_duration, Duration::from_secs(3600));
    assert_eq!(c.overrides.ingestion_rate_limit_bytes, 100);
    assert_eq!(c.overrides.ingestion_burst_size_bytes, 200);
    assert_eq!(c.overrides.max_traces_per_user, 300);
    assert_eq!(c.overrides.max_bytes_per_trace, 400);

    let partial = load("overrides:\n  max_bytes_per_trace: 4000\n").config;
    assert_eq!(partial.overrides.max_bytes_per_trace, 4000);
    assert_eq!(partial.overrides.ingestion_rate_limit_bytes, 15_000_000);
    assert_eq!(partial.overrides.max_bytes_per_tag_values_query, 1_000_000);
    assert_eq!(partial.overrides.max_search_duration, Duration::ZERO);
}

#[test]
fn auth_enabled_is_multitenancy() {
    assert!(load("auth_enabled: true\n").config.multitenancy_enabled);
    assert!(
        load("auth_enabled: false\nmultitenancy_enabled: true\n")
            .config
            .multitenancy_enabled
    );
    assert!(!load("auth_enabled: false\n").config.multitenancy_enabled);
}

#[test]
fn receivers_follow_tempo() {
    let otlp = |yaml: &str| {
        let c = load(yaml).config;
        (
            c.distributor.otlp_grpc_endpoint,
            c.distributor.otlp_http_endpoint,
        )
    };
    // No receivers, or an empty map: Tempo's default receivers (OTLP gRPC, Jaeger gRPC and
    // thrift_http).
    assert_eq!(otlp("distributor:\n"), (endpoint("0.0.0.0:4317"), None));
    let defaults = load("distributor:\n").config.distributor;
    assert_eq!(defaults.jaeger_grpc_endpoint, endpoint("0.0.0.0:14250"));
    assert_eq!(
        defaults.jaeger_thrift_http_endpoint,
        endpoint("0.0.0.0:14268")
    );
    assert_eq!(defaults.jaeger_thrift_compact_endpoint, None);
    assert_eq!(defaults.zipkin_endpoint, None);
    assert_eq!(
        otlp("distributor:\n  receivers:\n"),
        (endpoint("0.0.0.0:4317"), None)
    );
    assert_eq!(
        otlp("distributor:\n  receivers: {}\n"),
        (endpoint("0.0.0.0:4317"), None)
    );
    // A listed protocol with no settings gets its default endpoint.
    let both = "\
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
        http:
";
    assert_eq!(
        otlp(both),
        (endpoint("0.0.0.0:4317"), endpoint("0.0.0.0:4318"))
    );
    let http_only = "\
distributor:
  receivers:
    otlp:
      protocols:
        http:
          endpoint:
";
    assert_eq!(otlp(http_only), (None, endpoint("0.0.0.0:4318")));
    let grpc_empty_map = "\
distributor:
  receivers:
    otlp:
      protocols:
        grpc: {}
";
    assert_eq!(otlp(grpc_empty_map), (endpoint("0.0.0.0:4317"), None));
    let all_interfaces = "\
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: :4317
";
    assert_eq!(otlp(all_interfaces), (endpoint(":4317"), None));
    // Receivers listed, OTLP not among them: OTLP is off.
    let jaeger_only = "\
distributor:
  receivers:
    jaeger:
      protocols:
        thrift_http:
";
    let loaded = load(jaeger_only);
    assert_eq!(loaded.config.distributor.otlp_grpc_endpoint, None);
    assert_eq!(loaded.config.distributor.otlp_http_endpoint, None);
    assert_eq!(
        loaded.config.distributor.jaeger_thrift_http_endpoint,
        endpoint("0.0.0.0:14268")
    );
    assert_eq!(loaded.config.distributor.jaeger_grpc_endpoint, None);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

/// The Collector's zipkin and jaeger receiver shapes, defaults, and the settings read past.
#[test]
fn zipkin_and_jaeger_receivers() {
    let yaml = "\
distributor:
  receivers:
    zipkin:
    jaeger:
      protocols:
        grpc:
        thrift_http:
          endpoint: 127.0.0.1:14269
        thrift_compact:
          endpoint: :6835
          queue_size: 5000
        thrift_binary:
";
    let loaded = load(yaml);
    let d = &loaded.config.distributor;
    assert_eq!(d.otlp_grpc_endpoint, None);
    assert_eq!(d.zipkin_endpoint, endpoint("0.0.0.0:9411"));
    assert!(!d.zipkin_parse_string_tags);
    assert_eq!(d.jaeger_grpc_endpoint, endpoint("0.0.0.0:14250"));
    assert_eq!(d.jaeger_thrift_http_endpoint, endpoint("127.0.0.1:14269"));
    assert_eq!(d.jaeger_thrift_compact_endpoint, endpoint(":6835"));
    assert_eq!(d.jaeger_thrift_binary_endpoint, endpoint("0.0.0.0:6832"));
    assert_eq!(
        loaded.warnings,
        vec![
            "configuration key \"distributor.receivers.jaeger.protocols.thrift_compact.queue_size\" \
             (line 11) is not used by Allegro; ignored"
                .to_owned()
        ]
    );
    let zipkin = load(
        "distributor:\n  receivers:\n    zipkin:\n      endpoint: 0.0.0.0:19411\n      parse_string_tags: true\n",
    )
    .config
    .distributor;
    assert_eq!(zipkin.zipkin_endpoint, endpoint("0.0.0.0:19411"));
    assert!(zipkin.zipkin_parse_string_tags);
    // UDP and TCP ports do not collide; two UDP sockets on one port do.
    let same_port = "\
distributor:
  receivers:
    jaeger:
      protocols:
        thrift_http:
          endpoint: 0.0.0.0:6831
        thrift_compact:
";
    assert_eq!(
        load(same_port)
            .config
            .distributor
            .jaeger_thrift_compact_endpoint,
        endpoint("0.0.0.0:6831")
    );
    let clash = "\
distributor:
  receivers:
    jaeger:
      protocols:
        thrift_compact:
          endpoint: 0.0.0.0:6832
        thrift_binary:
";
    let error = allegro_config::parse_str(clash, "tempo.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("distributor.receivers.jaeger.protocols.thrift_binary.endpoint")
            && error.contains("port 6832 is already used"),
        "{error}"
    );
    let no_protocol =
        allegro_config::parse_str("distributor:\n  receivers:\n    jaeger:\n", "tempo.yaml")
            .unwrap_err()
            .to_string();
    assert!(
        no_protocol.contains("distributor.receivers.jaeger")
            && no_protocol.contains("at least one protocol"),
        "{no_protocol}"
    );
}

#[test]
fn otlp_http_cors() {
    let yaml = "\
distributor:
  receivers:
    otlp:
      protocols:
        http:
          cors:
            allowed_origins:
              - https://*.example.com
              - http://localhost:3000
            allowed_headers: [X-Custom]
            max_age: 7200
";
    let cors = load(yaml).config.distributor.otlp_http_cors.unwrap();
    assert_eq!(
        cors,
        allegro_config::CorsConfig {
            allowed_origins: vec![
                "https://*.example.com".to_owned(),
                "http://localhost:3000".to_owned()
            ],
            allowed_headers: vec!["X-Custom".to_owned()],
            max_age_secs: Some(7200),
        }
    );
    assert_eq!(
        load("distributor:\n  receivers:\n    otlp:\n      protocols:\n        http:\n")
            .config
            .distributor
            .otlp_http_cors,
        None
    );
}

#[test]
fn ignored_keys_warn_with_their_lines() {
    let yaml = "\
server:
  http_listen_port: 3200
  http_listen_prot: 3201
  log_format: json
ingestor:
  trace_idle_period: 10s
  max_block_bytes: 1000
ingester:
  lifecycler:
    ring:
      replication_factor: 1
  trace_idle_period: 5s
memberlist:
  join_members:
    - tempo:7946
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: 0.0.0.0:4317
          max_recv_msg_size_mib: 16
    jaeger:
      protocols:
        thrift_http:
storage:
  trace:
    backend: local
    block:
      version: vParquet4
    wal:
      path: /tmp/wal
      verison: vParquet4
allegro:
  shardz: 4
foo:
  bar: 1
";
    let loaded = load(yaml);
    let expected = [
        r#"unknown configuration key "server.http_listen_prot" (line 3) ignored"#,
        r#"configuration key "server.log_format" (line 4) is not used by Allegro; ignored"#,
        r#"unknown configuration key "ingestor.trace_idle_period" (line 6) ignored"#,
        r#"unknown configuration key "ingestor.max_block_bytes" (line 7) ignored"#,
        r#"configuration key "ingester.lifecycler.ring.replication_factor" (line 11) is not used by Allegro; ignored"#,
        r#"configuration key "memberlist.join_members" (line 14) is not used by Allegro; ignored"#,
        r#"configuration key "distributor.receivers.otlp.protocols.grpc.max_recv_msg_size_mib" (line 22) is not used by Allegro; ignored"#,
        r#"configuration key "storage.trace.block.version" (line 30) is not used by Allegro; ignored"#,
        r#"unknown configuration key "storage.trace.wal.verison" (line 33) ignored"#,
        r#"unknown configuration key "allegro.shardz" (line 35) ignored"#,
        r#"unknown configuration key "foo.bar" (line 37) ignored"#,
    ];
    assert_eq!(loaded.warnings, expected);
    // What was understood still counts.
    assert_eq!(
        loaded.config.ingester.trace_idle_period,
        Duration::from_secs(5)
    );
    assert_eq!(loaded.config.storage.wal_path, PathBuf::from("/tmp/wal"));
}

/// Tempo's querier block: the timeouts are read, the rest of it is Tempo's and not used.
#[test]
fn querier_timeouts_and_the_rest_of_the_querier_block() {
    let yaml = "\
querier:
  max_concurrent_queries: 20
  search:
    query_timeout: 0s
    prefer_self: 10
  trace_by_id:
    query_timeout: 500ms
  frontend_worker:
    frontend_address: 127.0.0.1:9095
";
    let loaded = load(yaml);
    assert_eq!(
        loaded.warnings,
        [
            r#"configuration key "querier.max_concurrent_queries" (line 2) is not used by Allegro; ignored"#,
            r#"configuration key "querier.search.prefer_self" (line 5) is not used by Allegro; ignored"#,
            r#"configuration key "querier.frontend_worker.frontend_address" (line 9) is not used by Allegro; ignored"#,
        ]
    );
    assert_eq!(loaded.config.querier.search_query_timeout, Duration::ZERO);
    assert_eq!(
        loaded.config.querier.trace_by_id_query_timeout,
        Duration::from_millis(500)
    );
    let error = load_error("querier:\n  search:\n    query_timeout: soon\n");
    assert!(
        error.contains("querier.search.query_timeout") && error.contains("line 3"),
        "{error}"
    );
}

#[test]
fn flow_style_keys_warn_without_a_line() {
    let loaded = load("server: {http_listen_port: 3200, nope: 1}\n");
    assert_eq!(
        loaded.warnings,
        [r#"unknown configuration key "server.nope" ignored"#]
    );
}

#[test]
fn byte_order_mark_and_crlf() {
    let loaded = load("\u{feff}server:\r\n  http_listen_port: 3300\r\n  nope: 1\r\n");
    assert_eq!(loaded.config.server.http_listen_port, 3300);
    assert_eq!(
        loaded.warnings,
        [r#"unknown configuration key "server.nope" (line 3) ignored"#]
    );
}

/// The golden table of failures: input, full message.
#[test]
fn bad_input_names_key_line_and_expected_form() {
    let cases: &[(&str, &str)] = &[
        (
            "server:\n  http_listen_port: abc\n",
            r#"tempo.yaml: server.http_listen_port: invalid value "abc" at line 2 column 21: expected a port number (0-65535)"#,
        ),
        (
            "server:\n  http_listen_port: 70000\n",
            "tempo.yaml: server.http_listen_port: invalid value 70000 at line 2 column 21: expected a port number (0-65535)",
        ),
        (
            "server:\n  log_level: verbose\n",
            r#"tempo.yaml: server.log_level: invalid value "verbose" at line 2 column 14: expected one of debug, info, warn, error"#,
        ),
        (
            "ingester:\n  trace_idle_period: 10 seconds\n",
            r#"tempo.yaml: ingester.trace_idle_period: invalid duration "10 seconds" (unknown unit " seconds" in duration "10 seconds") at line 2 column 22: expected Go duration syntax like 10s, 30m, 336h"#,
        ),
        (
            "ingester:\n  trace_idle_period: 10\n",
            "tempo.yaml: ingester.trace_idle_period: invalid duration 10 (a number without a unit) at line 2 column 22: expected Go duration syntax like 10s, 30m, 336h",
        ),
        (
            "compactor:\n  compaction:\n    block_retention: -1h\n",
            r#"tempo.yaml: compactor.compaction.block_retention: invalid duration "-1h" (negative duration "-1h" is not allowed; Allegro durations must be zero or positive) at line 3 column 22: expected Go duration syntax like 10s, 30m, 336h"#,
        ),
        (
            "ingester:\n  max_block_bytes: 500MiB\n",
            r#"tempo.yaml: ingester.max_block_bytes: invalid value "500MiB" at line 2 column 20: expected an integer number of bytes like 524288000 (no unit suffix)"#,
        ),
        (
            "allegro:\n  wal_fsync: sometimes\n",
            r#"tempo.yaml: allegro.wal_fsync: invalid value "sometimes" at line 2 column 14: expected one of always, interval, never"#,
        ),
        (
            "storage:\n  trace:\n    backend: filesystem\n",
            r#"tempo.yaml: storage.trace.backend: invalid value "filesystem" at line 3 column 14: expected one of local, s3, gcs, azure"#,
        ),
        (
            "target: distributor\n",
            r#"tempo.yaml: target: invalid value "distributor" at line 1 column 9: expected all (Allegro runs as a single binary)"#,
        ),
        (
            "stream_over_http_enabled: sure\n",
            r#"tempo.yaml: stream_over_http_enabled: invalid value "sure" at line 1 column 27: expected a boolean (true or false)"#,
        ),
        (
            "distributor:\n  receivers:\n    otlp:\n      protocols:\n        grpc:\n          endpoint: localhost\n",
            r#"tempo.yaml: distributor.receivers.otlp.protocols.grpc.endpoint: invalid endpoint "localhost" (missing port in address) at line 6 column 21: expected host:port like 0.0.0.0:4317"#,
        ),
        (
            "server:\n  http_listen_address: [a, b]\n",
            "tempo.yaml: server.http_listen_address: invalid type: sequence at line 2 column 24: expected a string",
        ),
        (
            "server: 3200\n",
            "tempo.yaml: server: invalid type: integer `3200` at line 1 column 9: expected a mapping of settings",
        ),
        (
            "server:\n  http_listen_port: 3200\n   grpc_listen_port: 9095\n",
            "tempo.yaml: invalid YAML at line 3 column 20: mapping values are not allowed in this context",
        ),
        (
            "server:\n\thttp_listen_port: 3200\n",
            "tempo.yaml: invalid YAML at line 2 column 1: found character that cannot start any token, while scanning for the next token",
        ),
        (
            "server:\n  http_listen_port: 3200\n  http_listen_port: 3300\n",
            r#"tempo.yaml: invalid YAML at line 3: duplicate key "server.http_listen_port" (first set at line 2)"#,
        ),
        (
            "- server\n",
            "tempo.yaml: invalid YAML at line 1 column 1: the top level must be a mapping of configuration keys, not a sequence",
        ),
        (
            "a: 1\n---\nb: 2\n",
            "tempo.yaml: invalid YAML: deserializing from YAML containing more than one document is not supported",
        ),
        (
            "distributor:\n  receivers:\n    otlp:\n",
            "tempo.yaml: distributor.receivers.otlp (line 3): must list at least one protocol under protocols: (grpc: or http:)",
        ),
        (
            "overrides:\n  max_bytes_per_trace: 1\n  defaults:\n    global:\n      max_bytes_per_trace: 2\n",
            "tempo.yaml: overrides.max_bytes_per_trace (line 2): the legacy flat overrides form cannot be mixed with overrides.defaults (Tempo rejects this too); move it under overrides.defaults",
        ),
        (
            "allegro:\n  shards: 5000\n",
            "tempo.yaml: allegro.shards (line 2): 5000 shards is out of range; expected 1 to 1024 (0 or absent: one per CPU)",
        ),
        (
            "allegro:\n  wal_segment_bytes_max: 4096\n",
            "tempo.yaml: allegro.wal_segment_bytes_max (line 2): 4096 bytes is too small; expected at least 1048576 (1 MiB)",
        ),
        (
            "storage:\n  trace:\n    wal:\n      path: \"\"\n",
            "tempo.yaml: storage.trace.wal.path (line 4): must not be empty",
        ),
        (
            "server:\n  grpc_listen_port: 4317\n",
            "tempo.yaml: distributor.receivers.otlp.protocols.grpc.endpoint: port 4317 is already used by server.grpc_listen_port; each listener needs its own port",
        ),
    ];
    for &(yaml, message) in cases {
        assert_eq!(load_error(yaml), message, "{yaml}");
    }
}

#[test]
fn errors_expose_key_and_line() {
    let error = parse_str("ingester:\n  max_block_duration: soon\n", "t.yaml").unwrap_err();
    assert_eq!(error.key(), Some("ingester.max_block_duration"));
    assert_eq!(error.line(), Some(2));
    assert!(matches!(
        error,
        ConfigError::Value {
            column: Some(23),
            ..
        }
    ));
}

#[test]
fn environment_expansion() {
    let env = |name: &str| match name {
        "TEMPO_PORT" => Some("3300".to_owned()),
        "DATA_DIR" => Some("/srv/tempo".to_owned()),
        _ => None,
    };
    let yaml = "\
server:
  http_listen_port: ${TEMPO_PORT:-3200}
  grpc_listen_port: ${GRPC_PORT:-9096}
storage:
  trace:
    local:
      path: ${DATA_DIR}/traces
    wal:
      path: ${UNSET_DIR:-/tmp}/wal
";
    let c = load_str(yaml, "tempo.yaml", env).unwrap().config;
    assert_eq!(c.server.http_listen_port, 3300);
    assert_eq!(c.server.grpc_listen_port, 9096);
    assert_eq!(c.storage.local_path, PathBuf::from("/srv/tempo/traces"));
    assert_eq!(c.storage.wal_path, PathBuf::from("/tmp/wal"));

    // Without expansion the text is taken literally, as Tempo does.
    let literal = parse_str(
        "storage:\n  trace:\n    wal:\n      path: ${DATA_DIR}\n",
        "t.yaml",
    );
    assert_eq!(
        literal.unwrap().config.storage.wal_path,
        PathBuf::from("${DATA_DIR}")
    );

    // An unset variable becomes empty; here that leaves a port with no value, so the default.
    let c = load_str("server:\n  http_listen_port: ${NOPE}\n", "t.yaml", env)
        .unwrap()
        .config;
    assert_eq!(c.server.http_listen_port, 3200);

    assert_eq!(
        load_str("server:\n  http_listen_port: ${TEMPO_PORT\n", "tempo.yaml", env)
            .unwrap_err()
            .to_string(),
        "tempo.yaml: environment variable expansion failed at line 2 column 21: missing closing \"}\""
    );
}

#[test]
fn files() {
    let missing = Path::new("/nonexistent/allegro/tempo.yaml");
    let error = load_file(missing, false).unwrap_err();
    assert!(matches!(error, ConfigError::Io { .. }));
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/allegro/tempo.yaml: cannot read configuration file: "),
        "{error}"
    );

    let path =
        std::env::temp_dir().join(format!("allegro-config-test-{}.yaml", std::process::id()));
    std::fs::write(
        &path,
        "storage:\n  trace:\n    wal:\n      path: /w/${CARGO_PKG_NAME:-none}\n",
    )
    .unwrap();
    let expected = format!(
        "/w/{}",
        std::env::var("CARGO_PKG_NAME")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or("none".to_owned())
    );
    let expanded = load_file(&path, true);
    let literal = load_file(&path, false);
    let bad = {
        std::fs::write(&path, "server:\n  http_listen_port: x\n").unwrap();
        load_file(&path, false)
    };
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        expanded.unwrap().config.storage.wal_path,
        PathBuf::from(expected)
    );
    assert_eq!(
        literal.unwrap().config.storage.wal_path,
        PathBuf::from("/w/${CARGO_PKG_NAME:-none}")
    );
    assert_eq!(
        bad.unwrap_err().to_string(),
        format!(
            "{}: server.http_listen_port: invalid value \"x\" at line 2 column 21: expected a port number (0-65535)",
            path.display()
        )
    );
}

/// `query_frontend.metrics.max_duration` and `max_exemplars` (TraceQL metrics), Tempo 2.7's
/// defaults (3h, 100), the read override `max_metrics_duration` in both forms, and the
/// frontend's other metrics keys reported as not used.
#[test]
fn query_frontend_metrics_limits() {
    let defaults = load("").config;
    assert_eq!(
        defaults.query_frontend.metrics_max_duration,
        Duration::from_secs(3 * 3600)
    );
    assert_eq!(defaults.query_frontend.metrics_max_exemplars, 100);
    assert_eq!(defaults.overrides.max_metrics_duration, Duration::ZERO);

    let loaded = load(
        "\
query_frontend:
  metrics:
    max_duration: 24h
    max_exemplars: 7
    concurrent_jobs: 8
overrides:
  defaults:
    read:
      max_metrics_duration: 6h
",
    );
    let c = &loaded.config;
    assert_eq!(
        c.query_frontend.metrics_max_duration,
        Duration::from_secs(24 * 3600)
    );
    assert_eq!(c.query_frontend.metrics_max_exemplars, 7);
    assert_eq!(
        c.overrides.max_metrics_duration,
        Duration::from_secs(6 * 3600)
    );
    assert_eq!(
        loaded.warnings,
        vec![
            r#"configuration key "query_frontend.metrics.concurrent_jobs" (line 5) is not used by Allegro; ignored"#
                .to_string()
        ]
    );

    let legacy = load("overrides:\n  max_metrics_duration: 1h\n").config;
    assert_eq!(
        legacy.overrides.max_metrics_duration,
        Duration::from_secs(3600)
    );
    assert!(
        load_error("query_frontend:\n  metrics:\n    max_exemplars: -1\n")
            .contains("query_frontend.metrics.max_exemplars")
    );
}

//! Keys Allegro reads past: which of them are Tempo settings Allegro does not act on, which are
//! unknown, and on which line each one is written.
//!
//! Every ignored key becomes one warning; none is fatal. A Tempo setting that Allegro does not
//! implement is named as such (`configuration key "memberlist.join_members" (line 30) is not used
//! by Allegro; ignored`) so that a user moving from Tempo knows what has no effect. Anything else
//! is unknown (`unknown configuration key "ingestor.trace_idle_period" (line 12) ignored`),
//! usually a typo.

use std::collections::HashMap;

use serde_yaml::Value;

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// Renders a path as `a.b[0].c`, the form used in warnings, errors and [`KeyLines`].
pub(crate) fn render(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(index) => {
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// Converts `serde_ignored`'s path, dropping its `Option`/newtype steps.
pub(crate) fn from_ignored(path: &serde_ignored::Path<'_>) -> Vec<Segment> {
    fn walk(path: &serde_ignored::Path<'_>, out: &mut Vec<Segment>) {
        match path {
            serde_ignored::Path::Root => {}
            serde_ignored::Path::Seq { parent, index } => {
                walk(parent, out);
                out.push(Segment::Index(*index));
            }
            serde_ignored::Path::Map { parent, key } => {
                walk(parent, out);
                out.push(Segment::Key(key.clone()));
            }
            serde_ignored::Path::Some { parent }
            | serde_ignored::Path::NewtypeStruct { parent }
            | serde_ignored::Path::NewtypeVariant { parent } => walk(parent, out),
        }
    }
    let mut out = Vec::new();
    walk(path, &mut out);
    out
}

/// Tempo settings (from Tempo 2.7's `RegisterFlagsAndApplyDefaults` and the generated
/// configuration manifest) that Allegro accepts and does not act on. A pattern is a key; `x.*`
/// is `x` and everything below it; `x*` (no dot before the star) is every key starting with `x`.
/// Keys Allegro does act on are not listed: they are read, not ignored.
const TEMPO_KEYS_NOT_USED: &[&str] = &[
    // Top level.
    "http_api_prefix",
    "shutdown_delay",
    "enable_go_runtime_metrics",
    "internal_server.*",
    "ingester_client.*",
    "metrics_generator_client.*",
    "live_store_client.*",
    "querier.*",
    "query_frontend.*",
    "metrics_generator.*",
    "ingest.*",
    "block_builder.*",
    "memberlist.*",
    "usage_report.*",
    "cache.*",
    "backend_scheduler.*",
    "backend_scheduler_client.*",
    "backend_worker.*",
    "live_store.*",
    // server: dskit's server block.
    "server.http_listen_network",
    "server.http_listen_conn_limit",
    "server.grpc_listen_network",
    "server.grpc_listen_conn_limit",
    "server.grpc_collect_max_streams_by_conn",
    "server.proxy_protocol_enabled",
    "server.tls_cipher_suites",
    "server.tls_min_version",
    "server.http_tls_config.*",
    "server.grpc_tls_config.*",
    "server.register_instrumentation",
    "server.report_grpc_codes_in_instrumentation_label_enabled",
    "server.graceful_shutdown_timeout",
    "server.http_server_read_timeout",
    "server.http_server_read_header_timeout",
    "server.http_server_write_timeout",
    "server.http_server_idle_timeout",
    "server.http_log_closed_connections_without_response_enabled",
    "server.grpc_server_max_recv_msg_size",
    "server.grpc_server_max_send_msg_size",
    "server.grpc_server_max_concurrent_streams",
    "server.grpc_server_max_connection_idle",
    "server.grpc_server_max_connection_age",
    "server.grpc_server_max_connection_age_grace",
    "server.grpc_server_keepalive_time",
    "server.grpc_server_keepalive_timeout",
    "server.grpc_server_min_time_between_pings",
    "server.grpc_server_ping_without_stream_allowed",
    "server.grpc_server_num_workers",
    "server.grpc_server_stats_tracking_enabled",
    "server.grpc_server_recv_buffer_pools_enabled",
    "server.log_format",
    "server.log_source_ips_enabled",
    "server.log_source_ips_full",
    "server.log_source_ips_header",
    "server.log_source_ips_regex",
    "server.log_request_headers",
    "server.log_request_at_info_level_enabled",
    "server.log_request_exclude_headers_list",
    "server.trace_request_headers",
    "server.trace_request_exclude_headers_list",
    "server.http_path_prefix",
    "server.cluster_validation.*",
    // distributor.
    "distributor.ring.*",
    "distributor.override_ring_key",
    "distributor.forwarders",
    "distributor.usage.*",
    "distributor.ingester_write_path_enabled",
    "distributor.kafka_write_path_enabled",
    "distributor.kafka_config.*",
    "distributor.extend_writes",
    "distributor.retry_after_on_resource_exhausted",
    "distributor.max_attribute_bytes",
    "distributor.log_received_spans.*",
    "distributor.log_discarded_spans.*",
    "distributor.metric_received_spans.*",
    "distributor.log_received_traces",
    // The Collector's zipkin and jaeger receiver settings Allegro does not act on.
    "distributor.receivers.zipkin.tls.*",
    "distributor.receivers.zipkin.cors.*",
    "distributor.receivers.zipkin.include_metadata",
    "distributor.receivers.zipkin.auth.*",
    "distributor.receivers.zipkin.max_request_body_size",
    "distributor.receivers.jaeger.remote_sampling.*",
    "distributor.receivers.jaeger.protocols.grpc.*",
    "distributor.receivers.jaeger.protocols.thrift_http.*",
    "distributor.receivers.jaeger.protocols.thrift_compact.*",
    "distributor.receivers.jaeger.protocols.thrift_binary.*",
    "distributor.receivers.opencensus.*",
    "distributor.receivers.kafka.*",
    // The OpenTelemetry Collector's gRPC and HTTP server settings.
    "distributor.receivers.otlp.protocols.grpc.transport",
    "distributor.receivers.otlp.protocols.grpc.tls.*",
    "distributor.receivers.otlp.protocols.grpc.max_recv_msg_size_mib",
    "distributor.receivers.otlp.protocols.grpc.max_concurrent_streams",
    "distributor.receivers.otlp.protocols.grpc.read_buffer_size",
    "distributor.receivers.otlp.protocols.grpc.write_buffer_size",
    "distributor.receivers.otlp.protocols.grpc.keepalive.*",
    "distributor.receivers.otlp.protocols.grpc.include_metadata",
    "distributor.receivers.otlp.protocols.grpc.auth.*",
    "distributor.receivers.otlp.protocols.http.tls.*",
    "distributor.receivers.otlp.protocols.http.cors.*",
    "distributor.receivers.otlp.protocols.http.include_metadata",
    "distributor.receivers.otlp.protocols.http.auth.*",
    "distributor.receivers.otlp.protocols.http.max_request_body_size",
    "distributor.receivers.otlp.protocols.http.response_headers.*",
    "distributor.receivers.otlp.protocols.http.compression_algorithms",
    "distributor.receivers.otlp.protocols.http.read_timeout",
    "distributor.receivers.otlp.protocols.http.read_header_timeout",
    "distributor.receivers.otlp.protocols.http.write_timeout",
    "distributor.receivers.otlp.protocols.http.idle_timeout",
    "distributor.receivers.otlp.protocols.http.traces_url_path",
    "distributor.receivers.otlp.protocols.http.metrics_url_path",
    "distributor.receivers.otlp.protocols.http.logs_url_path",
    // ingester.
    "ingester.lifecycler.*",
    "ingester.partition_ring.*",
    "ingester.concurrent_flushes",
    "ingester.flush_check_period",
    "ingester.flush_op_timeout",
    "ingester.trace_live_period",
    "ingester.override_ring_key",
    "ingester.flush_all_on_shutdown",
    "ingester.flush_object_storage",
    // compactor.
    "compactor.ring.*",
    "compactor.override_ring_key",
    "compactor.compaction.chunk_size_bytes",
    "compactor.compaction.flush_size_bytes",
    "compactor.compaction.max_compaction_objects",
    "compactor.compaction.max_block_bytes",
    "compactor.compaction.compacted_block_retention",
    "compactor.compaction.retention_concurrency",
    "compactor.compaction.iterator_buffer_size",
    "compactor.compaction.max_time_per_tenant",
    "compactor.compaction.compaction_cycle",
    "compactor.compaction.v2_in_buffer_bytes",
    "compactor.compaction.v2_out_buffer_bytes",
    "compactor.compaction.v2_prefetch_traces_count",
    // storage.trace.
    "storage.trace.pool.*",
    "storage.trace.wal.ingestion_time_range_slack",
    "storage.trace.wal.version",
    "storage.trace.wal.v2_encoding",
    "storage.trace.wal.search_encoding",
    "storage.trace.block.*",
    "storage.trace.search.*",
    "storage.trace.blocklist_poll*",
    "storage.trace.empty_tenant_deletion_enabled",
    "storage.trace.empty_tenant_deletion_age",
    "storage.trace.gcs.*",
    "storage.trace.s3.*",
    "storage.trace.azure.*",
    "storage.trace.cache",
    "storage.trace.cache_min_compaction_level",
    "storage.trace.cache_max_block_age",
    "storage.trace.background_cache.*",
    "storage.trace.memcached.*",
    "storage.trace.redis.*",
    // overrides, both forms.
    "overrides.per_tenant_override_config",
    "overrides.per_tenant_override_period",
    "overrides.user_configurable_overrides.*",
    "overrides.defaults.ingestion.rate_strategy",
    "overrides.defaults.ingestion.max_global_traces_per_user",
    "overrides.defaults.ingestion.tenant_shard_size",
    "overrides.defaults.ingestion.retry_info_enabled",
    "overrides.defaults.read.*",
    "overrides.defaults.compaction.*",
    "overrides.defaults.metrics_generator.*",
    "overrides.defaults.forwarders",
    "overrides.defaults.storage.*",
    "overrides.defaults.cost_attribution.*",
    "overrides.ingestion_rate_strategy",
    "overrides.ingestion_tenant_shard_size",
    "overrides.max_global_traces_per_user",
    "overrides.forwarders",
    "overrides.metrics_generator_*",
    "overrides.block_retention",
    "overrides.max_blocks_per_tag_values_query",
    "overrides.parquet_dedicated_columns",
];

fn pattern_matches(pattern: &str, path: &str) -> bool {
    if let Some(root) = pattern.strip_suffix(".*") {
        path == root
            || path
                .strip_prefix(root)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    } else if let Some(prefix) = pattern.strip_suffix('*') {
        path.starts_with(prefix)
    } else {
        path == pattern
    }
}

/// True if `path` is a Tempo setting that Allegro does not act on.
pub(crate) fn is_tempo_key_not_used(path: &str) -> bool {
    TEMPO_KEYS_NOT_USED
        .iter()
        .any(|pattern| pattern_matches(pattern, path))
}

/// The warnings for the keys `serde_ignored` reported, in document order.
///
/// An ignored section is reported leaf by leaf (`ingester.lifecycler.ring.replication_factor`,
/// `foo.bar`), so that every setting without effect is named by its full path.
pub(crate) fn warnings(
    ignored: &[Vec<Segment>],
    document: &Value,
    lines: &KeyLines,
) -> Vec<String> {
    let mut out = Vec::new();
    for root in ignored {
        let mut leaves = Vec::new();
        match lookup(document, root) {
            Some(value) => collect_leaves(value, &mut root.clone(), &mut leaves),
            None => leaves.push(root.clone()),
        }
        for leaf in leaves {
            let text = render(&leaf);
            let line = lines.line(&text);
            if is_tempo_key_not_used(&text) {
                out.push(not_used_key(&text, line));
            } else {
                out.push(unknown_key(&text, line));
            }
        }
    }
    out
}

fn line_note(line: Option<usize>) -> String {
    line.map_or_else(String::new, |line| format!(" (line {line})"))
}

fn unknown_key(key: &str, line: Option<usize>) -> String {
    format!(
        "unknown configuration key {key:?}{} ignored",
        line_note(line)
    )
}

fn not_used_key(key: &str, line: Option<usize>) -> String {
    format!(
        "configuration key {key:?}{} is not used by Allegro; ignored",
        line_note(line)
    )
}

/// A mapping key as text, the way `serde_ignored` and [`KeyLines`] see it.
fn key_text(key: &Value) -> String {
    match key {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Null => "null".to_owned(),
        Value::Sequence(_) | Value::Mapping(_) | Value::Tagged(_) => "?".to_owned(),
    }
}

fn lookup<'a>(document: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    let mut value = document;
    for segment in path {
        value = match (untag(value), segment) {
            (Value::Mapping(map), Segment::Key(key)) => {
                map.iter().find(|(k, _)| key_text(k) == *key)?.1
            }
            (Value::Sequence(items), Segment::Index(index)) => items.get(*index)?,
            _ => return None,
        };
    }
    Some(value)
}

fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(tagged) => untag(&tagged.value),
        other => other,
    }
}

/// Leaves below `value`: scalars, nulls, sequences and empty mappings.
fn collect_leaves(value: &Value, path: &mut Vec<Segment>, out: &mut Vec<Vec<Segment>>) {
    match untag(value) {
        Value::Mapping(map) if !map.is_empty() => {
            for (key, child) in map {
                path.push(Segment::Key(key_text(key)));
                collect_leaves(child, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

/// The line of each mapping key, found by reading the text's indentation. YAML in block style
/// (what configuration files use) is covered; keys inside flow collections (`{a: 1}`) or in
/// multi-line scalars are not, and simply get no line number.
#[derive(Debug, Default)]
pub(crate) struct KeyLines {
    first: HashMap<String, usize>,
    duplicate: Option<Duplicate>,
}

/// A key written twice in one mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Duplicate {
    pub key: String,
    pub first_line: usize,
    pub line: usize,
}

struct Frame {
    indent: usize,
    path: String,
    is_item: bool,
}

impl KeyLines {
    pub(crate) fn scan(text: &str) -> KeyLines {
        let mut lines = KeyLines::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut next_index: HashMap<String, usize> = HashMap::new();
        let mut block_scalar_indent: Option<usize> = None;

        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, line) in text.lines().enumerate() {
            let line_number = index + 1;
            let content = line.trim_start_matches(' ');
            let indent = line.len() - content.len();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            if let Some(scalar_indent) = block_scalar_indent {
                if indent > scalar_indent {
                    continue;
                }
                block_scalar_indent = None;
            }
            if indent == 0 && (content.starts_with("---") || content.starts_with("...")) {
                stack.clear();
                next_index.clear();
                continue;
            }

            // Sequence entries: "- ", possibly nested ("- - a").
            let mut column = indent;
            let mut rest = content;
            while rest == "-" || rest.starts_with("- ") {
                while stack
                    .last()
                    .is_some_and(|f| f.indent > column || (f.indent == column && f.is_item))
                {
                    stack.pop();
                }
                let parent = stack.last().map_or_else(String::new, |f| f.path.clone());
                let counter = next_index.entry(parent.clone()).or_insert(0);
                let path = format!("{parent}[{counter}]");
                *counter += 1;
                stack.push(Frame {
                    indent: column,
                    path,
                    is_item: true,
                });
                let after_dash = rest.get(1..).unwrap_or("");
                let item = after_dash.trim_start_matches(' ');
                column += 1 + (after_dash.len() - item.len());
                rest = item;
            }
            let Some((key, value)) = split_key(rest) else {
                continue;
            };

            while stack.last().is_some_and(|f| f.indent >= column) {
                stack.pop();
            }
            let path = match stack.last() {
                Some(parent) => format!("{}.{key}", parent.path),
                None => key,
            };
            match lines.first.get(&path) {
                Some(&first_line) => {
                    if lines.duplicate.is_none() {
                        lines.duplicate = Some(Duplicate {
                            key: path.clone(),
                            first_line,
                            line: line_number,
                        });
                    }
                }
                None => {
                    lines.first.insert(path.clone(), line_number);
                }
            }
            let value = value.trim_start();
            if value.starts_with('|') || value.starts_with('>') {
                block_scalar_indent = Some(column);
            }
            stack.push(Frame {
                indent: column,
                path,
                is_item: false,
            });
        }
        lines
    }

    /// The line where `path` (rendered by [`render`]) is first written.
    pub(crate) fn line(&self, path: &str) -> Option<usize> {
        self.first.get(path).copied()
    }

    /// The first key written twice in the same mapping, if any.
    pub(crate) fn duplicate(&self) -> Option<&Duplicate> {
        self.duplicate.as_ref()
    }
}

/// Splits `key: value` (or `key:` at the end of the line); `None` if the line holds no key.
fn split_key(text: &str) -> Option<(String, &str)> {
    if let Some(quote) = text.chars().next().filter(|&c| c == '"' || c == '\'') {
        let body = text.get(1..)?;
        let end = body.find(quote)?;
        let key = body.get(..end)?.to_owned();
        let after = body.get(end + 1..)?.trim_start_matches(' ');
        let value = after.strip_prefix(':')?;
        return (value.is_empty() || value.starts_with([' ', '\t'])).then_some((key, value));
    }
    if text.starts_with(['{', '[', '#', '&', '*', '!', '|', '>', '%', '@', '`']) {
        return None;
    }
    let mut search_from = 0;
    while let Some(offset) = text.get(search_from..)?.find(':') {
        let colon = search_from + offset;
        let after = text.get(colon + 1..)?;
        if after.is_empty() || after.starts_with([' ', '\t']) {
            let key = text.get(..colon)?.trim_end();
            if key.is_empty() || key.contains(" #") {
                return None;
            }
            return Some((key.to_owned(), after));
        }
        search_from = colon + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(is_tempo_key_not_used("memberlist"));
        assert!(is_tempo_key_not_used("memberlist.join_members"));
        assert!(is_tempo_key_not_used(
            "metrics_generator.storage.remote_write[0].url"
        ));
        assert!(is_tempo_key_not_used(
            "ingester.lifecycler.ring.replication_factor"
        ));
        assert!(is_tempo_key_not_used(
            "storage.trace.blocklist_poll_concurrency"
        ));
        assert!(is_tempo_key_not_used(
            "overrides.metrics_generator_processors"
        ));
        assert!(!is_tempo_key_not_used("memberlistx"));
        assert!(!is_tempo_key_not_used("server.http_listen_prot"));
        assert!(!is_tempo_key_not_used("ingester.trace_idle_period"));
    }

    #[test]
    fn key_lines() {
        let text = "\
# comment
server:
  http_listen_port: 3200   # trailing
  \"quoted key\": 1
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: 0.0.0.0:4317
memberlist:
  join_members:
  - tempo-1:7946
  - tempo-2:7946
  abort_if_cluster_join_fails: false
metrics_generator:
  storage:
    remote_write:
      - url: http://prometheus:9090/api/v1/write
        send_exemplars: true
      - url: http://other:9090
description: |
  not: a key
  neither: this
after_block: 1
list_of_lists:
  - - a: 1
";
        let lines = KeyLines::scan(text);
        let expect = [
            ("server", 2),
            ("server.http_listen_port", 3),
            ("server.quoted key", 4),
            ("distributor.receivers.otlp.protocols.grpc", 9),
            ("distributor.receivers.otlp.protocols.grpc.endpoint", 10),
            ("memberlist.join_members", 12),
            ("memberlist.abort_if_cluster_join_fails", 15),
            ("metrics_generator.storage.remote_write[0].url", 19),
            (
                "metrics_generator.storage.remote_write[0].send_exemplars",
                20,
            ),
            ("metrics_generator.storage.remote_write[1].url", 21),
            ("description", 22),
            ("after_block", 25),
            ("list_of_lists[0][0].a", 27),
        ];
        for (path, line) in expect {
            assert_eq!(lines.line(path), Some(line), "{path}");
        }
        assert_eq!(lines.line("description.not"), None);
        assert_eq!(lines.line("not"), None);
        assert_eq!(lines.duplicate(), None);
    }

    #[test]
    fn duplicates() {
        let lines = KeyLines::scan("a:\n  b: 1\n  c: 2\n  b: 3\n");
        assert_eq!(
            lines.duplicate(),
            Some(&Duplicate {
                key: "a.b".to_owned(),
                first_line: 2,
                line: 4
            })
        );
    }

    #[test]
    fn split_keys() {
        assert_eq!(split_key("a: 1"), Some(("a".to_owned(), " 1")));
        assert_eq!(split_key("a:"), Some(("a".to_owned(), "")));
        assert_eq!(
            split_key("url: http://x:80"),
            Some(("url".to_owned(), " http://x:80"))
        );
        assert_eq!(split_key("http://x:80"), None);
        assert_eq!(split_key("'a:b': 1"), Some(("a:b".to_owned(), " 1")));
        assert_eq!(split_key("{a: 1}"), None);
        assert_eq!(split_key("plain text"), None);
    }
}

//! The command line and the Tempo config file of the real binary: Tempo's reference config,
//! unknown keys, bad values, flags, `-config.expand-env`, and the embedded default.

mod common;

use std::time::{Duration, Instant};

use common::*;

const REFERENCE_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/tempo.yaml");

/// Replaces `from` with `to` in `text`, insisting that `from` is there.
fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not found in:\n{text}");
    text.replace(from, to)
}

/// The 1-based number of the line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in:\n{text}"))
        + 1
}

fn export_and_read_back(server: &Server, seed: u64) {
    let mut gen = TraceGen::new(seed);
    let (request, traces) = gen.request(3, 3);
    export(server.grpc_addr(), &request, &ExportOpts::default()).assert_ok();
    for trace in &traces {
        assert_trace_everywhere(server.http_addr(), trace, None);
    }
}

#[test]
fn tempo_reference_config_starts_and_serves() {
    let reference = std::fs::read_to_string(REFERENCE_CONFIG)
        .unwrap_or_else(|err| panic!("read {REFERENCE_CONFIG}: {err}"));
    let config = replace(
        &reference,
        "http_listen_port: 3200",
        "http_listen_port: 0\n  grpc_listen_port: 0",
    );
    let config = replace(&config, "endpoint: 0.0.0.0:4317", "endpoint: 127.0.0.1:0");
    let config = replace(&config, "/var/tempo/traces", &format!("{DIR}/traces"));
    let config = replace(&config, "/var/tempo/wal", &format!("{DIR}/wal"));
    let server = Server::start_with(ServerOptions::new(config));
    export_and_read_back(&server, 40);
    assert!(
        !wal_segments(&server.wal_dir()).is_empty(),
        "no WAL under storage.trace.wal.path"
    );
}

#[test]
fn unknown_keys_warn_once_each_and_the_server_starts() {
    let config = default_config("foo:\n  bar: 1\n");
    let config = replace(
        &config,
        "  http_listen_port: 0\n",
        "  http_listen_port: 0\n  bogus_key: 7\n",
    );
    let server = Server::start_with(ServerOptions::new(config));
    let lines = server.stderr_lines();
    for key in ["foo.bar", "server.bogus_key"] {
        let mentions: Vec<&String> = lines.iter().filter(|line| line.contains(key)).collect();
        assert_eq!(
            mentions.len(),
            1,
            "one warning line naming {key}:\n{}",
            lines.join("\n")
        );
        assert!(
            mentions[0].contains("WARN"),
            "{key}: not a warning: {}",
            mentions[0]
        );
    }
    export_and_read_back(&server, 41);
}

/// Runs the binary on `config` (with `@DIR@` replaced) and expects it to refuse it.
fn assert_refused(config: &str, key: &str, line: usize) {
    let dir = tempfile::tempdir().unwrap();
    let config = config.replace(DIR, dir.path().to_str().unwrap());
    let path = dir.path().join("tempo.yaml");
    std::fs::write(&path, &config).unwrap();
    let exited = run_binary(
        &[&format!("-config.file={}", path.display())],
        dir.path(),
        &[],
        Duration::from_secs(30),
    );
    assert!(
        !exited.status.success(),
        "{key}: started on a bad value\n{}",
        exited.stderr
    );
    assert!(
        exited.stderr.contains(key),
        "{key}: not named in stderr:\n{}",
        exited.stderr
    );
    assert!(
        exited.stderr.contains(&format!("line {line}"))
            || exited.stderr.contains(&format!(":{line}:")),
        "{key}: line {line} not named in stderr:\n{}",
        exited.stderr
    );
}

#[test]
fn bad_values_stop_the_server_naming_key_and_line() {
    let config = replace(
        &default_config(""),
        "http_listen_port: 0",
        "http_listen_port: abc",
    );
    assert_refused(
        &config,
        "server.http_listen_port",
        line_of(&config, "http_listen_port: abc"),
    );

    let config = default_config("ingester:\n  trace_idle_period: 10 seconds\n");
    assert_refused(
        &config,
        "ingester.trace_idle_period",
        line_of(&config, "trace_idle_period: 10 seconds"),
    );

    let config = default_config("allegro:\n  shards: many\n  wal_fsync: always\n");
    assert_refused(&config, "allegro.shards", line_of(&config, "shards: many"));
}

#[test]
fn a_missing_config_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.yaml");
    let exited = run_binary(
        &[&format!("-config.file={}", path.display())],
        dir.path(),
        &[],
        Duration::from_secs(30),
    );
    assert!(!exited.status.success(), "{exited:?}");
    assert!(exited.stderr.contains("absent.yaml"), "{exited:?}");
}

#[test]
fn version_help_and_unknown_flags() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["-version", "--version"] {
        let exited = run_binary(&[flag], dir.path(), &[], Duration::from_secs(30));
        assert_eq!(exited.status.code(), Some(0), "{flag}: {exited:?}");
        assert!(
            format!("{}{}", exited.stdout, exited.stderr).contains("allegro"),
            "{flag}: {exited:?}"
        );
    }

    let exited = run_binary(&["-help"], dir.path(), &[], Duration::from_secs(30));
    assert_eq!(exited.status.code(), Some(0), "-help: {exited:?}");
    assert!(
        format!("{}{}", exited.stdout, exited.stderr).contains("config.file"),
        "-help does not list -config.file: {exited:?}"
    );

    let exited = run_binary(&["-nope"], dir.path(), &[], Duration::from_secs(30));
    assert_eq!(exited.status.code(), Some(2), "-nope: {exited:?}");
    assert!(
        exited
            .stderr
            .contains("flag provided but not defined: -nope"),
        "-nope: {exited:?}"
    );
}

#[test]
fn config_file_as_a_separate_argument() {
    let mut options = ServerOptions::new(default_config(""));
    options.config_flag = ConfigFlag::Separate;
    let server = Server::start_with(options);
    export_and_read_back(&server, 42);
}

const ENV_CONFIG: &str = "stream_over_http_enabled: true
server:
  http_listen_address: ${ALLEGRO_IT_UNSET_HOST:-127.0.0.1}
  http_listen_port: ${ALLEGRO_IT_UNSET_PORT:-0}
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: ${ALLEGRO_IT_UNSET_PORT:-0}
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: ${ALLEGRO_IT_GRPC}
storage:
  trace:
    backend: local
    local:
      path: @DIR@/traces
    wal:
      path: ${ALLEGRO_IT_WAL}
allegro:
  shards: ${ALLEGRO_IT_UNSET_SHARDS:-3}
  wal_fsync: always
";

#[test]
fn expand_env_substitutes_variables_and_defaults() {
    let wal = tempfile::tempdir().unwrap();
    let wal_path = wal.path().join("from-env");
    let mut options = ServerOptions::new(ENV_CONFIG.to_string());
    options.args.push("-config.expand-env=true".to_string());
    options.env = vec![
        (
            "ALLEGRO_IT_WAL".to_string(),
            wal_path.to_str().unwrap().to_string(),
        ),
        ("ALLEGRO_IT_GRPC".to_string(), "127.0.0.1:0".to_string()),
    ];
    let server = Server::start_with(options);
    export_and_read_back(&server, 43);
    let segments = wal_segments(&wal_path);
    assert!(
        !segments.is_empty(),
        "no WAL at the path from the environment"
    );
    assert!(
        segments.iter().all(|s| s.shards == 3),
        "shards from the default: {segments:?}"
    );
    drop(server);

    // Without the flag, `${...}` is text: `allegro.shards` is not a number.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tempo.yaml");
    std::fs::write(&path, ENV_CONFIG.replace(DIR, dir.path().to_str().unwrap())).unwrap();
    let exited = run_binary(
        &[&format!("-config.file={}", path.display())],
        dir.path(),
        &[],
        Duration::from_secs(30),
    );
    assert!(
        !exited.status.success(),
        "started without expanding ${{...}}: {exited:?}"
    );
}

#[test]
fn without_config_file_the_embedded_default_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Spawned::start(&[], dir.path(), &[]);
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let listening = child
            .stderr
            .lock()
            .unwrap()
            .iter()
            .find(|line| line.contains("listening otlp_grpc="))
            .cloned();
        if let Some(line) = listening {
            let (grpc, http) = parse_listening(&line).expect("parse the listening line");
            assert_eq!(http.port(), 3200, "{line}");
            assert_eq!(grpc.map(|a| a.port()), Some(4317), "{line}");
            assert_eq!(
                parse_listening_grpc_api(&line).map(|a| a.port()),
                Some(9095),
                "{line}"
            );
            let ready = loop {
                if let Ok(response) = try_http_get(http, "/ready", &[]) {
                    if response.status == 200 {
                        break response;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "/ready on {http}:\n{}",
                    child.stderr_text()
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            assert_eq!(ready.text(), "ready\n");
            child.signal(libc::SIGTERM);
            let status = child
                .wait_timeout(EXIT_TIMEOUT)
                .expect("exit after SIGTERM");
            assert_eq!(status.code(), Some(0), "{}", child.stderr_text());
            return;
        }
        if let Some(status) = child.wait_timeout(Duration::ZERO) {
            // Another process may hold 3200, 4317 or 9095: then a clear bind error is the
            // answer.
            let stderr = child.stderr_text();
            assert!(!status.success(), "exited 0 without listening:\n{stderr}");
            assert!(
                (stderr.contains("3200") || stderr.contains("4317") || stderr.contains("9095"))
                    && (stderr.contains("listen") || stderr.contains("bind")),
                "exited without a clear bind error ({status}):\n{stderr}"
            );
            eprintln!("the embedded default could not bind its fixed ports:\n{stderr}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no listening line within {START_TIMEOUT:?}:\n{}",
            child.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port that was free a moment ago (for the one test that must know its ports up front).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn rust_log_is_respected() {
    let dir = tempfile::tempdir().unwrap();
    let (http_port, grpc_port) = (free_port(), free_port());
    let config = default_config("foo:\n  bar: 1\n")
        .replace(
            "http_listen_port: 0",
            &format!("http_listen_port: {http_port}"),
        )
        // The first endpoint is OTLP/gRPC's (OTLP/HTTP keeps its ephemeral port).
        .replacen(
            "endpoint: 127.0.0.1:0",
            &format!("endpoint: 127.0.0.1:{grpc_port}"),
            1,
        )
        .replace(DIR, dir.path().to_str().unwrap());
    let path = dir.path().join("tempo.yaml");
    std::fs::write(&path, config).unwrap();
    let mut child = Spawned::start(
        &[&format!("-config.file={}", path.display())],
        dir.path(),
        &[("RUST_LOG", "warn")],
    );
    let http = std::net::SocketAddr::from(([127, 0, 0, 1], http_port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(response) = try_http_get(http, "/ready", &[]) {
            if response.status == 200 {
                break;
            }
        }
        if let Some(status) = child.wait_timeout(Duration::ZERO) {
            panic!("exited ({status}):\n{}", child.stderr_text());
        }
        assert!(
            Instant::now() < deadline,
            "not ready on {http}:\n{}",
            child.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.signal(libc::SIGTERM);
    let status = child
        .wait_timeout(EXIT_TIMEOUT)
        .expect("exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", child.stderr_text());
    let stderr = child.stderr_text();
    assert!(stderr.contains("foo.bar"), "the warning is kept:\n{stderr}");
    assert!(
        !stderr.lines().any(|line| line.contains("INFO")),
        "RUST_LOG=warn, yet info lines:\n{stderr}"
    );
}

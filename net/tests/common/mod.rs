//! The harness of the integration tests: starts the real `allegro` binary on a config in a
//! temp dir and talks to it with real clients (the `h2` crate for OTLP gRPC and h2c, a small
//! HTTP/1.1 client over `std::net::TcpStream`). No mocks.
//!
//! Every test owns its server, temp dir and ephemeral ports, so tests run in parallel.
//! Timeouts here only stop hangs; no test asserts timing.
#![allow(dead_code)]

pub mod tempopb;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;
use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_allegro");
/// The OTLP trace export method.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// How long a server may take to print its listening line and answer `/ready` with 200.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one request may take before the test gives up (a hang guard, not an assertion).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping server may take to exit.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Placeholder for the server's temp dir in config texts.
pub const DIR: &str = "@DIR@";

// ---------------------------------------------------------------------------------------------
// Tempo's query protobufs (tempopb), declared here: the test must not borrow the server's.

/// `tempopb.Trace`: the body of `/api/traces/<id>` with `Accept: application/protobuf`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TempoTrace {
    #[prost(message, repeated, tag = "1")]
    pub batches: Vec<ResourceSpans>,
}

/// `tempopb.TraceByIDResponse`: the body of `/api/v2/traces/<id>` as protobuf.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    pub trace: Option<TempoTrace>,
}

// ---------------------------------------------------------------------------------------------
// Configs.

/// The base config: loopback, ephemeral ports, storage under the temp dir. `extra` is appended
/// as top-level YAML; unless it has its own `allegro:` section, `shards: 2` and
/// `wal_fsync: always` are added.
pub fn default_config(extra: &str) -> String {
    let mut config = format!(
        "stream_over_http_enabled: true
server:
  http_listen_address: 127.0.0.1
  http_listen_port: 0
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: 0
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: 127.0.0.1:0
        http:
          endpoint: 127.0.0.1:0
storage:
  trace:
    backend: local
    local:
      path: {DIR}/traces
    wal:
      path: {DIR}/wal
"
    );
    config.push_str(extra);
    if !config.ends_with('\n') {
        config.push('\n');
    }
    if !extra.lines().any(|line| line.starts_with("allegro:")) {
        config.push_str("allegro:\n  shards: 2\n  wal_fsync: always\n");
    }
    config
}

/// How the config file is named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFlag {
    /// `-config.file=PATH`
    Equals,
    /// `--config.file PATH`
    Separate,
}

/// Everything about how a server is started.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The config text; `@DIR@` stands for the server's temp dir.
    pub config: String,
    pub config_flag: ConfigFlag,
    /// More arguments after the config flag.
    pub args: Vec<String>,
    /// Environment of the child (on top of ours; `RUST_LOG=info` unless given here).
    pub env: Vec<(String, String)>,
}

impl ServerOptions {
    pub fn new(config: String) -> ServerOptions {
        ServerOptions {
            config,
            config_flag: ConfigFlag::Equals,
            args: Vec::new(),
            env: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The server process.

/// Lines a child wrote on one stream, collected by a background thread.
type Lines = Arc<Mutex<Vec<String>>>;

/// One run of the binary.
struct Run {
    child: Child,
    stderr: Lines,
    stdout: Lines,
    readers: Vec<JoinHandle<()>>,
}

/// A running `allegro` with its temp dir. The dir outlives restarts; the process is killed
/// when the `Server` is dropped (and, if the test is failing, its stderr is printed).
pub struct Server {
    dir: tempfile::TempDir,
    options: ServerOptions,
    run: Option<Run>,
    /// stderr of every run so far, the current one last.
    history: Vec<Lines>,
    grpc: Option<SocketAddr>,
    http: SocketAddr,
    grpc_api: SocketAddr,
}

impl Server {
    /// Starts a server on [`default_config`] with `extra` appended.
    pub fn start(extra: &str) -> Server {
        Server::start_with(ServerOptions::new(default_config(extra)))
    }

    /// Starts a server with full control over config, flags and environment.
    pub fn start_with(options: ServerOptions) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("allegro-it-")
            .tempdir()
            .expect("create temp dir");
        let mut server = Server {
            dir,
            options,
            run: None,
            history: Vec::new(),
            grpc: None,
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            grpc_api: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        server.launch();
        server
    }

    /// The temp dir that holds the config, the WAL and the blocks.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `storage.trace.wal.path` of the default config.
    pub fn wal_dir(&self) -> PathBuf {
        self.dir.path().join("wal")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("tempo.yaml")
    }

    /// The OTLP gRPC address the server printed.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
            .expect("the server runs without an OTLP gRPC receiver")
    }

    /// The HTTP address the server printed.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// The gRPC API address the server printed (`grpc=`: `server.grpc_listen_port`, Tempo's
    /// `:9095`, where `tempopb.StreamingQuerier` is served).
    pub fn grpc_api_addr(&self) -> SocketAddr {
        self.grpc_api
    }

    /// OTLP/HTTP (`distributor.receivers.otlp.protocols.http`) of the current run.
    pub fn otlp_http_addr(&self) -> SocketAddr {
        self.listening_addr("otlp_http")
    }

    /// The `name=ADDR` (or `name=udp:ADDR`) word of the current run's listening line: the
    /// receivers' addresses (`otlp_http`, `zipkin`, `jaeger_grpc`, `jaeger_thrift_http`,
    /// `jaeger_thrift_compact`, `jaeger_thrift_binary`).
    pub fn listening_addr(&self, name: &str) -> SocketAddr {
        let prefix = format!("{name}=");
        let lines = self.stderr_lines();
        lines
            .iter()
            .filter(|line| line.contains("listening otlp_grpc="))
            .flat_map(|line| line.split_whitespace())
            .find_map(|word| word.strip_prefix(prefix.as_str()))
            .map(|value| value.strip_prefix("udp:").unwrap_or(value))
            .and_then(|value| value.parse().ok())
            .map(loopback)
            .unwrap_or_else(|| panic!("no {name}=ADDR in the listening line:\n{lines:?}"))
    }

    pub fn pid(&self) -> u32 {
        self.run.as_ref().expect("server is not running").child.id()
    }

    /// Replaces the config used by the next [`Server::restart`] (`@DIR@` is the temp dir).
    pub fn set_config(&mut self, config: String) {
        self.options.config = config;
    }

    /// stderr of the current (or last) run.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.history
            .last()
            .map(|lines| lines.lock().unwrap().clone())
            .unwrap_or_default()
    }

    /// stderr of every run, in order.
    pub fn all_stderr_lines(&self) -> Vec<String> {
        self.history
            .iter()
            .flat_map(|lines| lines.lock().unwrap().clone())
            .collect()
    }

    /// Starts the binary again on the same dir and config. A running server is first stopped
    /// with SIGTERM, which must succeed.
    pub fn restart(&mut self) {
        if self.run.is_some() {
            let status = self.sigterm();
            assert!(
                status.success(),
                "SIGTERM before restart: {status}\n{}",
                self.stderr_dump()
            );
        }
        self.launch();
    }

    /// kill -9, then waits for the process; returns its exit status.
    pub fn kill9(&mut self) -> ExitStatus {
        let mut run = self.run.take().expect("server is not running");
        let _ = run.child.kill();
        let status = run.child.wait().expect("wait for killed server");
        for reader in run.readers {
            let _ = reader.join();
        }
        status
    }

    /// SIGTERM, then waits (at most [`EXIT_TIMEOUT`]) for the process to exit.
    pub fn sigterm(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM)
    }

    /// Sends `signal` and waits (at most [`EXIT_TIMEOUT`]) for the process to exit.
    pub fn signal(&mut self, signal: libc::c_int) -> ExitStatus {
        let mut run = self.run.take().expect("server is not running");
        let pid = run.child.id() as libc::pid_t;
        // SAFETY: `pid` is our own child, not yet reaped, so the id cannot have been reused.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
        let status = wait_with_timeout(&mut run.child, EXIT_TIMEOUT);
        for reader in run.readers {
            let _ = reader.join();
        }
        match status {
            Some(status) => status,
            None => {
                let _ = run.child.kill();
                let _ = run.child.wait();
                panic!(
                    "allegro did not exit within {EXIT_TIMEOUT:?} of signal {signal}\n{}",
                    self.stderr_dump()
                );
            }
        }
    }

    /// The stderr of every run, for failure messages.
    pub fn stderr_dump(&self) -> String {
        let mut out = String::from("---- allegro stderr ----\n");
        for (i, run) in self.history.iter().enumerate() {
            out.push_str(&format!("---- run {i} ----\n"));
            for line in run.lock().unwrap().iter() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    fn launch(&mut self) {
        assert!(self.run.is_none(), "launch while a server runs");
        let config = self
            .options
            .config
            .replace(DIR, self.dir.path().to_str().expect("utf-8 temp dir"));
        let config_path = self.config_path();
        std::fs::write(&config_path, config).expect("write config");
        let mut command = Command::new(BIN);
        match self.options.config_flag {
            ConfigFlag::Equals => {
                command.arg(format!("-config.file={}", config_path.display()));
            }
            ConfigFlag::Separate => {
                command.arg("--config.file").arg(&config_path);
            }
        }
        command.args(&self.options.args);
        command.env("RUST_LOG", "info");
        for (key, value) in &self.options.env {
            command.env(key, value);
        }
        command.current_dir(self.dir.path());
        let (child, stdout, stderr, readers) = spawn_collecting(command);
        self.history.push(stderr.clone());
        self.run = Some(Run {
            child,
            stderr: stderr.clone(),
            stdout,
            readers,
        });

        let deadline = Instant::now() + START_TIMEOUT;
        let (grpc, http, grpc_api) = loop {
            let found = stderr.lock().unwrap().iter().find_map(|line| {
                let (grpc, http) = parse_listening(line)?;
                let grpc_api = parse_listening_grpc_api(line).unwrap_or_else(|| {
                    panic!("no grpc=ADDR (server.grpc_listen_port) in the listening line: {line}")
                });
                Some((grpc, http, grpc_api))
            });
            if let Some(found) = found {
                break found;
            }
            self.assert_alive("before printing its listening line");
            assert!(
                Instant::now() < deadline,
                "no `listening otlp_grpc=... http=...` line within {START_TIMEOUT:?}\n{}",
                self.stderr_dump()
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        self.grpc = grpc;
        self.http = http;
        self.grpc_api = grpc_api;

        loop {
            if let Ok(response) = try_http_get(http, "/ready", &[]) {
                if response.status == 200 {
                    assert_eq!(response.text(), "ready\n", "body of /ready");
                    return;
                }
                assert_eq!(response.status, 503, "/ready before ready: {response:?}");
            }
            self.assert_alive("before /ready answered 200");
            assert!(
                Instant::now() < deadline,
                "/ready did not answer 200 within {START_TIMEOUT:?}\n{}",
                self.stderr_dump()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn assert_alive(&mut self, when: &str) {
        let exited = self
            .run
            .as_mut()
            .and_then(|run| run.child.try_wait().expect("try_wait"));
        if let Some(status) = exited {
            if let Some(run) = self.run.take() {
                for reader in run.readers {
                    let _ = reader.join();
                }
            }
            panic!("allegro exited ({status}) {when}\n{}", self.stderr_dump());
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut run) = self.run.take() {
            let _ = run.child.kill();
            let _ = run.child.wait();
            for reader in run.readers {
                let _ = reader.join();
            }
        }
        if std::thread::panicking() {
            eprintln!("{}", self.stderr_dump());
        }
    }
}

/// Parses `... listening otlp_grpc=127.0.0.1:PORT http=127.0.0.1:PORT grpc=127.0.0.1:PORT ...`
/// (`otlp_grpc=off` when there is no receiver) into the OTLP and HTTP addresses; see
/// [`parse_listening_grpc_api`] for `grpc=`. Unspecified addresses become loopback.
pub fn parse_listening(line: &str) -> Option<(Option<SocketAddr>, SocketAddr)> {
    let rest = &line[line.find("listening otlp_grpc=")?..];
    let mut grpc = None;
    let mut http = None;
    for word in rest.split_whitespace() {
        if let Some(value) = word.strip_prefix("otlp_grpc=") {
            grpc = Some(if value == "off" {
                None
            } else {
                Some(loopback(value.parse().ok()?))
            });
        } else if let Some(value) = word.strip_prefix("http=") {
            http = Some(loopback(value.parse().ok()?));
        }
    }
    Some((grpc?, http?))
}

/// The `grpc=ADDR` word of the listening line: the gRPC API (`server.grpc_listen_port`).
pub fn parse_listening_grpc_api(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening otlp_grpc=")?..];
    rest.split_whitespace()
        .find_map(|word| word.strip_prefix("grpc="))
        .and_then(|value| value.parse().ok())
        .map(loopback)
}

fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        match addr {
            SocketAddr::V4(_) => SocketAddr::from(([127, 0, 0, 1], addr.port())),
            SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port())),
        }
    } else {
        addr
    }
}

/// Spawns `command` with stdout and stderr piped into line buffers filled by two threads.
fn spawn_collecting(mut command: Command) -> (Child, Lines, Lines, Vec<JoinHandle<()>>) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn allegro");
    let stdout: Lines = Arc::default();
    let stderr: Lines = Arc::default();
    let readers = vec![
        collect_lines(child.stdout.take().expect("stdout"), stdout.clone()),
        collect_lines(child.stderr.take().expect("stderr"), stderr.clone()),
    ];
    (child, stdout, stderr, readers)
}

fn collect_lines(stream: impl Read + Send + 'static, lines: Lines) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    lines
                        .lock()
                        .unwrap()
                        .push(line.trim_end_matches(['\r', '\n']).to_string());
                }
            }
        }
    })
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a finished run of the binary left behind.
#[derive(Debug)]
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary with `args` until it exits (panics after `timeout`, killing it).
pub fn run_binary(args: &[&str], cwd: &Path, env: &[(&str, &str)], timeout: Duration) -> Exited {
    let mut command = Command::new(BIN);
    command.args(args).current_dir(cwd).env("RUST_LOG", "info");
    for (key, value) in env {
        command.env(key, value);
    }
    let (mut child, stdout, stderr, readers) = spawn_collecting(command);
    let status = wait_with_timeout(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    for reader in readers {
        let _ = reader.join();
    }
    let stdout = stdout.lock().unwrap().join("\n");
    let stderr = stderr.lock().unwrap().join("\n");
    match status {
        Some(status) => Exited {
            status,
            stdout,
            stderr,
        },
        None => panic!("allegro {args:?} still running after {timeout:?}\nstderr:\n{stderr}"),
    }
}

/// A child started by hand (for tests that cannot use [`Server`], e.g. fixed ports).
pub struct Spawned {
    pub child: Child,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Spawned {
    pub fn start(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Spawned {
        let mut command = Command::new(BIN);
        command.args(args).current_dir(cwd).env("RUST_LOG", "info");
        for (key, value) in env {
            command.env(key, value);
        }
        let (child, stdout, stderr, readers) = spawn_collecting(command);
        Spawned {
            child,
            stdout,
            stderr,
            readers,
        }
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Polls until the process exits or `timeout` passes.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_with_timeout(&mut self.child, timeout)
    }

    pub fn signal(&mut self, signal: libc::c_int) {
        // SAFETY: our own child, not yet reaped.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill");
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// WAL files.

/// One WAL segment: `<wal>/<tenant>/shard-<k>-of-<n>/<20-digit seq>.wal`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Segment {
    pub tenant: String,
    pub shard: usize,
    pub shards: usize,
    pub seq: u64,
    pub path: PathBuf,
}

/// Every `.wal` file under `wal_dir`, checked against the documented layout.
pub fn wal_segments(wal_dir: &Path) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut stack = vec![wal_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("read_dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "wal") {
                segments.push(parse_segment_path(wal_dir, &path));
            }
        }
    }
    segments.sort();
    segments
}

fn parse_segment_path(wal_dir: &Path, path: &Path) -> Segment {
    let relative = path.strip_prefix(wal_dir).expect("under the wal dir");
    let parts: Vec<&str> = relative.iter().map(|p| p.to_str().unwrap()).collect();
    assert_eq!(
        parts.len(),
        3,
        "WAL file not at <tenant>/shard-<k>-of-<n>/<seq>.wal: {}",
        path.display()
    );
    let shard_part = parts[1];
    let numbers = shard_part
        .strip_prefix("shard-")
        .and_then(|rest| rest.split_once("-of-"))
        .and_then(|(k, n)| Some((k.parse::<usize>().ok()?, n.parse::<usize>().ok()?)));
    let (shard, shards) = numbers
        .unwrap_or_else(|| panic!("bad shard dir name {shard_part:?} in {}", path.display()));
    assert!(
        shard < shards,
        "shard {shard} of {shards}: {}",
        path.display()
    );
    let stem = parts[2].strip_suffix(".wal").unwrap();
    assert!(
        stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()),
        "segment name is not a 20-digit sequence: {}",
        path.display()
    );
    Segment {
        tenant: parts[0].to_string(),
        shard,
        shards,
        seq: stem.parse().unwrap(),
        path: path.to_path_buf(),
    }
}

// ---------------------------------------------------------------------------------------------
// Python clients (the OpenTelemetry SDK and its exporters, from PyPI).

/// The Python environments `scripts/python-env.sh` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PythonEnv {
    /// `target/pyenv`: the current SDK, OTLP gRPC and HTTP exporters, the Zipkin exporter.
    Sdk,
    /// `target/pyenv-jaeger`: the SDK 1.21.0 with its Jaeger exporters.
    Jaeger,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The interpreter of `env`: `$ALLEGRO_TEST_PYTHON` / `$ALLEGRO_TEST_PYTHON_JAEGER` when set
/// (scripts/test.sh sets them), else `scripts/python-env.sh` is run and its venv used.
pub fn python(env: PythonEnv) -> PathBuf {
    let (var, venv) = match env {
        PythonEnv::Sdk => ("ALLEGRO_TEST_PYTHON", "target/pyenv"),
        PythonEnv::Jaeger => ("ALLEGRO_TEST_PYTHON_JAEGER", "target/pyenv-jaeger"),
    };
    if let Some(python) = std::env::var_os(var) {
        return PathBuf::from(python);
    }
    let root = repo_root();
    let output = Command::new(root.join("scripts/python-env.sh"))
        .current_dir(&root)
        .output()
        .expect("run scripts/python-env.sh");
    assert!(
        output.status.success(),
        "scripts/python-env.sh failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    root.join(venv).join("bin/python")
}

/// Runs `tests/python/{script}` with `python` and `args` and returns its stdout; fails the
/// test when it does not exit 0 within 120 s.
pub fn run_python(python: &Path, script: &str, args: &[String]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let mut child = Command::new(python)
        .arg(&path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).map(|_| text)
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{script} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().unwrap().unwrap_or_default();
    let stderr = err.join().unwrap().unwrap_or_default();
    assert!(
        status.success(),
        "{script} {args:?} failed ({status}):\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 client.

/// `method path` with `body` over a fresh HTTP/1.1 connection (`Connection: close`,
/// `Content-Length`); panics on transport errors.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|err| panic!("connect {addr}: {err}"));
    stream.set_read_timeout(Some(CALL_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(CALL_TIMEOUT)).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (key, value) in headers {
        request.push_str(&format!("{key}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    (&stream).write_all(&bytes).expect("write request");
    read_http1_response(&mut BufReader::new(stream))
        .unwrap_or_else(|err| panic!("{method} {path}: {err}"))
}

/// A response of the HTTP/1.1 or the h2 client.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "body is not JSON ({err}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// `GET path` over a fresh HTTP/1.1 connection; panics on transport errors.
pub fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    try_http_get(addr, path, headers).unwrap_or_else(|err| panic!("GET {path}: {err}"))
}

/// `GET path` over a fresh HTTP/1.1 connection (`Connection: close`). Reads bodies framed by
/// Content-Length, by chunked transfer coding, or by the end of the connection.
pub fn try_http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<HttpResponse, String> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|err| format!("connect {addr}: {err}"))?;
    stream.set_read_timeout(Some(CALL_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(CALL_TIMEOUT)).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (key, value) in headers {
        request.push_str(&format!("{key}: {value}\r\n"));
    }
    request.push_str("\r\n");
    (&stream)
        .write_all(request.as_bytes())
        .map_err(|err| format!("write: {err}"))?;
    read_http1_response(&mut BufReader::new(stream))
}

/// One persistent HTTP/1.1 connection (keep-alive): requests go one after the other.
pub struct Http1Conn {
    reader: BufReader<TcpStream>,
    addr: SocketAddr,
}

impl Http1Conn {
    pub fn connect(addr: SocketAddr) -> Http1Conn {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|err| panic!("connect {addr}: {err}"));
        stream.set_read_timeout(Some(CALL_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(CALL_TIMEOUT)).unwrap();
        Http1Conn {
            reader: BufReader::new(stream),
            addr,
        }
    }

    /// Writes raw request bytes (one request, or several pipelined).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.reader
            .get_ref()
            .write_all(bytes)
            .expect("write request");
    }

    /// `GET path` on this connection, without `Connection: close`.
    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (key, value) in headers {
            request.push_str(&format!("{key}: {value}\r\n"));
        }
        request.push_str("\r\n");
        self.send_raw(request.as_bytes());
        self.read_response()
    }

    /// Reads the next response.
    pub fn read_response(&mut self) -> HttpResponse {
        read_http1_response(&mut self.reader).unwrap_or_else(|err| panic!("response: {err}"))
    }
}

fn read_line(reader: &mut impl BufRead) -> Result<String, String> {
    let mut line = Vec::new();
    reader
        .read_until(b'\n', &mut line)
        .map_err(|err| format!("read: {err}"))?;
    if !line.ends_with(b"\n") {
        return Err(format!(
            "connection closed in the middle of a line: {:?}",
            String::from_utf8_lossy(&line)
        ));
    }
    let line = String::from_utf8(line).map_err(|_| "header line is not UTF-8".to_string())?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_http1_response(reader: &mut impl BufRead) -> Result<HttpResponse, String> {
    let status_line = read_line(reader)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(format!("bad status line {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            break;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        headers.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        loop {
            let size_line = read_line(reader)?;
            let size_hex = size_line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| format!("bad chunk size line {size_line:?}"))?;
            if size == 0 {
                while !read_line(reader)?.is_empty() {}
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader
                .read_exact(&mut body[start..])
                .map_err(|err| format!("chunk body: {err}"))?;
            if !read_line(reader)?.is_empty() {
                return Err("chunk not followed by CRLF".into());
            }
        }
    } else if let Some(length) = find("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("bad content-length {length:?}"))?;
        body.resize(length, 0);
        reader
            .read_exact(&mut body)
            .map_err(|err| format!("body of {length} bytes: {err}"))?;
    } else if status != 204 && status != 304 {
        reader
            .read_to_end(&mut body)
            .map_err(|err| format!("body to EOF: {err}"))?;
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

// ---------------------------------------------------------------------------------------------
// HTTP/2 (h2c, prior knowledge) client: OTLP gRPC and plain GETs.

/// A multi-threaded tokio runtime for the async clients.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Options of one OTLP export.
#[derive(Debug, Clone, Default)]
pub struct ExportOpts {
    /// `grpc-encoding: gzip` and a compressed message.
    pub gzip: bool,
    /// `x-scope-orgid`.
    pub tenant: Option<String>,
    /// `grpc-timeout`.
    pub timeout: Option<Duration>,
}

impl ExportOpts {
    pub fn gzip() -> ExportOpts {
        ExportOpts {
            gzip: true,
            ..ExportOpts::default()
        }
    }

    pub fn tenant(tenant: &str) -> ExportOpts {
        ExportOpts {
            tenant: Some(tenant.to_string()),
            ..ExportOpts::default()
        }
    }
}

/// The outcome of a gRPC call: the status, the decoded `grpc-message`, and the response
/// message when the status is OK.
#[derive(Debug, Clone)]
pub struct GrpcResult {
    pub status: u32,
    pub message: String,
    pub response: Option<ExportTraceServiceResponse>,
}

impl GrpcResult {
    /// Spans the server reported as rejected (0 without a partial success).
    pub fn rejected_spans(&self) -> i64 {
        self.response
            .as_ref()
            .and_then(|r| r.partial_success.as_ref())
            .map_or(0, |p| p.rejected_spans)
    }

    /// Asserts a fully accepted export.
    pub fn assert_ok(&self) {
        assert_eq!(self.status, 0, "export failed: {self:?}");
        assert_eq!(
            self.rejected_spans(),
            0,
            "export partially rejected: {self:?}"
        );
    }
}

/// A raw response of an h2 request.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub http_status: u16,
    pub headers: http::HeaderMap,
    pub data: Vec<u8>,
    pub trailers: Option<http::HeaderMap>,
}

impl RawResponse {
    /// `grpc-status` from the trailers, or from the headers of a trailers-only response.
    pub fn grpc_status(&self) -> Option<u32> {
        self.grpc_header("grpc-status")
            .and_then(|value| value.parse().ok())
    }

    /// The percent-decoded `grpc-message`.
    pub fn grpc_message(&self) -> String {
        self.grpc_header("grpc-message")
            .map(|value| percent_decode(&value))
            .unwrap_or_default()
    }

    fn grpc_header(&self, name: &str) -> Option<String> {
        self.trailers
            .as_ref()
            .and_then(|trailers| trailers.get(name))
            .or_else(|| self.headers.get(name))
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    }

    /// A trailers-only response: `grpc-status` in the HEADERS, no DATA, no trailers.
    pub fn is_trailers_only(&self) -> bool {
        self.headers.contains_key("grpc-status") && self.data.is_empty() && self.trailers.is_none()
    }

    /// The gRPC messages of the body, decompressed.
    pub fn messages(&self) -> Result<Vec<Vec<u8>>, String> {
        let mut rest = self.data.as_slice();
        let mut messages = Vec::new();
        while !rest.is_empty() {
            if rest.len() < 5 {
                return Err(format!(
                    "{} bytes left, less than a message prefix",
                    rest.len()
                ));
            }
            let flag = rest[0];
            let length = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
            let body = rest
                .get(5..5 + length)
                .ok_or_else(|| format!("message of {length} bytes is cut short"))?;
            messages.push(match flag {
                0 => body.to_vec(),
                1 => gunzip(body)?,
                other => return Err(format!("bad compressed flag {other}")),
            });
            rest = &rest[5 + length..];
        }
        Ok(messages)
    }

    /// The response as the result of an OTLP export (checks the gRPC response framing).
    pub fn into_export_result(self) -> Result<GrpcResult, String> {
        if self.http_status != 200 {
            return Err(format!(
                "HTTP status {} (want 200): {self:?}",
                self.http_status
            ));
        }
        let status = self
            .grpc_status()
            .ok_or_else(|| format!("no grpc-status: {self:?}"))?;
        let message = self.grpc_message();
        let response = if status == 0 {
            let messages = self.messages()?;
            if messages.len() != 1 {
                return Err(format!(
                    "an OK unary answer carries {} messages, want 1",
                    messages.len()
                ));
            }
            Some(
                ExportTraceServiceResponse::decode(messages[0].as_slice())
                    .map_err(|err| format!("bad ExportTraceServiceResponse: {err}"))?,
            )
        } else {
            None
        };
        Ok(GrpcResult {
            status,
            message,
            response,
        })
    }
}

/// Decodes gRPC's percent-encoding of `grpc-message`.
pub fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&value[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

pub fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .map_err(|err| format!("gunzip: {err}"))?;
    Ok(out)
}

/// One length-prefixed gRPC message (gzip-compressed when `gzip`).
pub fn grpc_frame(message: &[u8], gzip_it: bool) -> Bytes {
    let payload = if gzip_it {
        gzip(message)
    } else {
        message.to_vec()
    };
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(u8::from(gzip_it));
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    Bytes::from(frame)
}

/// One h2c connection (prior knowledge), shareable between tasks.
#[derive(Clone)]
pub struct H2Client {
    send: h2::client::SendRequest<Bytes>,
    addr: SocketAddr,
}

impl H2Client {
    pub async fn connect(addr: SocketAddr) -> Result<H2Client, String> {
        let tcp = tokio::time::timeout(CALL_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connect {addr}: timed out"))?
            .map_err(|err| format!("connect {addr}: {err}"))?;
        tcp.set_nodelay(true).ok();
        let (send, connection) = tokio::time::timeout(CALL_TIMEOUT, h2::client::handshake(tcp))
            .await
            .map_err(|_| "h2 handshake timed out".to_string())?
            .map_err(|err| format!("h2 handshake: {err}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(H2Client { send, addr })
    }

    /// Any request; `body` empty means END_STREAM on the HEADERS.
    /// Header values are bytes: a test may send what `&str` cannot hold.
    pub async fn request<V: AsRef<[u8]>>(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, V)],
        body: Bytes,
    ) -> Result<RawResponse, String> {
        let call = async {
            let mut builder = http::Request::builder()
                .method(method)
                .uri(format!("http://{}{}", self.addr, path));
            for (key, value) in headers {
                let value = http::HeaderValue::from_bytes(value.as_ref())
                    .map_err(|err| format!("header {key}: {err}"))?;
                builder = builder.header(*key, value);
            }
            let request = builder.body(()).map_err(|err| format!("request: {err}"))?;
            let mut send = self
                .send
                .clone()
                .ready()
                .await
                .map_err(|err| format!("h2 ready: {err}"))?;
            let (response, mut stream) = send
                .send_request(request, body.is_empty())
                .map_err(|err| format!("send_request: {err}"))?;
            if !body.is_empty() {
                stream
                    .send_data(body, true)
                    .map_err(|err| format!("send_data: {err}"))?;
            }
            let response = response.await.map_err(|err| format!("response: {err}"))?;
            let (parts, mut recv) = response.into_parts();
            let mut data = Vec::new();
            while let Some(chunk) = recv.data().await {
                let chunk = chunk.map_err(|err| format!("response data: {err}"))?;
                let _ = recv.flow_control().release_capacity(chunk.len());
                data.extend_from_slice(&chunk);
            }
            let trailers = recv
                .trailers()
                .await
                .map_err(|err| format!("trailers: {err}"))?;
            Ok(RawResponse {
                http_status: parts.status.as_u16(),
                headers: parts.headers,
                data,
                trailers,
            })
        };
        tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| format!("{method} {path}: no answer within {CALL_TIMEOUT:?}"))?
    }

    /// A gRPC call with arbitrary headers and body bytes (the body is sent as is).
    pub async fn grpc_raw<V: AsRef<[u8]>>(
        &self,
        path: &str,
        headers: &[(&str, V)],
        body: Bytes,
    ) -> Result<RawResponse, String> {
        self.request("POST", path, headers, body).await
    }

    /// An OTLP export; transport errors are returned.
    pub async fn try_export(
        &self,
        request: &ExportTraceServiceRequest,
        opts: &ExportOpts,
    ) -> Result<GrpcResult, String> {
        let body = grpc_frame(&request.encode_to_vec(), opts.gzip);
        let timeout = opts.timeout.map(|t| format!("{}m", t.as_millis()));
        let mut headers = vec![("content-type", "application/grpc"), ("te", "trailers")];
        if opts.gzip {
            headers.push(("grpc-encoding", "gzip"));
        }
        if let Some(tenant) = &opts.tenant {
            headers.push(("x-scope-orgid", tenant));
        }
        if let Some(timeout) = &timeout {
            headers.push(("grpc-timeout", timeout));
        }
        self.grpc_raw(EXPORT_PATH, &headers, body)
            .await?
            .into_export_result()
    }

    /// An OTLP export; panics on transport errors.
    pub async fn export(
        &self,
        request: &ExportTraceServiceRequest,
        opts: &ExportOpts,
    ) -> GrpcResult {
        self.try_export(request, opts)
            .await
            .unwrap_or_else(|err| panic!("export: {err}"))
    }

    /// `GET path`, as an [`HttpResponse`].
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<HttpResponse, String> {
        let raw = self.request("GET", path, headers, Bytes::new()).await?;
        Ok(HttpResponse {
            status: raw.http_status,
            headers: raw
                .headers
                .iter()
                .map(|(key, value)| {
                    (
                        key.as_str().to_string(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: raw.data,
        })
    }
}

/// One export on a fresh connection, from synchronous code.
pub fn export(
    addr: SocketAddr,
    request: &ExportTraceServiceRequest,
    opts: &ExportOpts,
) -> GrpcResult {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let client = H2Client::connect(addr).await.expect("connect");
            client.export(request, opts).await
        })
}

/// One raw gRPC call on a fresh connection, from synchronous code.
pub fn grpc_raw(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> RawResponse {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let client = H2Client::connect(addr).await.expect("connect");
            client
                .grpc_raw(path, headers, body)
                .await
                .unwrap_or_else(|err| panic!("{path}: {err}"))
        })
}

/// The usual headers of a gRPC request.
pub const GRPC_HEADERS: &[(&str, &str)] =
    &[("content-type", "application/grpc"), ("te", "trailers")];

// ---------------------------------------------------------------------------------------------
// Realistic OTLP data from a seeded PRNG.

/// SplitMix64: small, seedable, good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// Non-zero random bytes (an all-zero ID is invalid in OTLP).
    pub fn id<const N: usize>(&mut self) -> [u8; N] {
        loop {
            let mut id = [0u8; N];
            for byte in id.iter_mut() {
                *byte = self.next_u64() as u8;
            }
            if id.iter().any(|&b| b != 0) {
                return id;
            }
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

pub fn s(value: &str) -> any_value::Value {
    any_value::Value::StringValue(value.to_string())
}

const SERVICES: [&str; 3] = ["frontend", "checkout", "payments"];

/// A generated trace: its id and its spans grouped as they are sent.
#[derive(Debug, Clone)]
pub struct GenTrace {
    pub trace_id: [u8; 16],
    pub resource_spans: Vec<ResourceSpans>,
}

impl GenTrace {
    pub fn hex_id(&self) -> String {
        hex(&self.trace_id)
    }

    pub fn span_count(&self) -> usize {
        flatten(&self.resource_spans).len()
    }

    /// A request carrying only this trace.
    pub fn request(&self) -> ExportTraceServiceRequest {
        request_of(std::slice::from_ref(self))
    }
}

/// A request carrying these traces.
pub fn request_of(traces: &[GenTrace]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: traces
            .iter()
            .flat_map(|trace| trace.resource_spans.iter().cloned())
            .collect(),
    }
}

/// Builds realistic traces: a root server span and children over up to three services, with
/// attributes of every OTLP type, events, links, trace state and statuses.
pub struct TraceGen {
    rng: Rng,
    now_ns: u64,
    traces: u64,
    instance: String,
}

impl TraceGen {
    pub fn new(seed: u64) -> TraceGen {
        let mut rng = Rng::new(seed);
        let instance = hex(&rng.bytes(8));
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        TraceGen {
            rng,
            now_ns: now_ns - 60_000_000_000,
            traces: 0,
            instance,
        }
    }

    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    pub fn trace_id(&mut self) -> [u8; 16] {
        self.rng.id()
    }

    /// A trace of `spans` spans (at least 1) with a fresh id.
    pub fn trace(&mut self, spans: usize) -> GenTrace {
        let trace_id = self.trace_id();
        self.trace_with_id(trace_id, spans)
    }

    /// A trace of `spans` spans (at least 1) with the given id.
    pub fn trace_with_id(&mut self, trace_id: [u8; 16], spans: usize) -> GenTrace {
        assert!(spans >= 1);
        let index = self.traces;
        self.traces += 1;
        let start_ns = self.now_ns + index * 1_000_000;
        let root_id: [u8; 8] = self.rng.id();
        let error_trace = index.is_multiple_of(3);
        let mut by_service: BTreeMap<usize, Vec<Span>> = BTreeMap::new();
        for i in 0..spans {
            let span_id = if i == 0 { root_id } else { self.rng.id() };
            let service = if i == 0 { 0 } else { 1 + (i - 1) % 2 };
            let span = self.span(
                trace_id,
                span_id,
                (i > 0).then_some(root_id),
                i,
                start_ns,
                error_trace && i + 1 == spans,
            );
            by_service.entry(service).or_default().push(span);
        }
        let resource_spans = by_service
            .into_iter()
            .map(|(service, spans)| ResourceSpans {
                resource: Some(self.resource(service)),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: format!("allegro.tests.{}", SERVICES[service]),
                        version: "1.2.3".to_string(),
                        attributes: vec![kv("scope.owner", s("it"))],
                        dropped_attributes_count: 0,
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: "https://opentelemetry.io/schemas/1.21.0".to_string(),
            })
            .collect();
        GenTrace {
            trace_id,
            resource_spans,
        }
    }

    /// `traces` traces of `spans_per_trace` spans, in one request.
    pub fn request(
        &mut self,
        traces: usize,
        spans_per_trace: usize,
    ) -> (ExportTraceServiceRequest, Vec<GenTrace>) {
        let traces: Vec<GenTrace> = (0..traces).map(|_| self.trace(spans_per_trace)).collect();
        (request_of(&traces), traces)
    }

    fn resource(&mut self, service: usize) -> Resource {
        Resource {
            attributes: vec![
                kv("service.name", s(SERVICES[service])),
                kv("service.namespace", s("allegro-it")),
                kv("service.instance.id", s(&self.instance)),
                kv("telemetry.sdk.language", s("rust")),
                kv("telemetry.sdk.name", s("allegro-tests")),
                kv("host.cpus", any_value::Value::IntValue(2)),
            ],
            dropped_attributes_count: 0,
            ..Resource::default()
        }
    }

    fn span(
        &mut self,
        trace_id: [u8; 16],
        span_id: [u8; 8],
        parent: Option<[u8; 8]>,
        i: usize,
        trace_start_ns: u64,
        error: bool,
    ) -> Span {
        let start = trace_start_ns + i as u64 * 100_000;
        let end = start + 1_000_000 + self.rng.below(5_000_000);
        let n = self.rng.below(1000) as i64;
        let kind = if i == 0 {
            span::SpanKind::Server
        } else {
            [
                span::SpanKind::Client,
                span::SpanKind::Internal,
                span::SpanKind::Producer,
                span::SpanKind::Consumer,
            ][i % 4]
        };
        let attributes = vec![
            kv("http.method", s(if n % 2 == 0 { "GET" } else { "POST" })),
            kv(
                "http.status_code",
                any_value::Value::IntValue(if error { 500 } else { 200 }),
            ),
            kv("retry.delta", any_value::Value::IntValue(-n - 1)),
            kv("big.number", any_value::Value::IntValue(i64::MAX - n)),
            kv(
                "sample.ratio",
                any_value::Value::DoubleValue(n as f64 * 0.25 + 0.5),
            ),
            kv("cache.hit", any_value::Value::BoolValue(n % 3 == 0)),
            kv(
                "payload.digest",
                any_value::Value::BytesValue(self.rng.bytes(8)),
            ),
            kv(
                "text.tricky",
                s("say \"hi\"\n\tback\\slash naïve ✓ 漢字 </script>"),
            ),
            kv(
                "tags",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(s("a")),
                        },
                        AnyValue {
                            value: Some(any_value::Value::IntValue(n)),
                        },
                        AnyValue {
                            value: Some(any_value::Value::DoubleValue(1.5)),
                        },
                        AnyValue {
                            value: Some(any_value::Value::BoolValue(true)),
                        },
                    ],
                }),
            ),
            kv(
                "user",
                any_value::Value::KvlistValue(KeyValueList {
                    values: vec![
                        kv("id", s(&format!("u-{n}"))),
                        kv("tier", any_value::Value::IntValue(n % 4)),
                    ],
                }),
            ),
        ];
        let mut events = vec![span::Event {
            time_unix_nano: start + 10_000,
            name: "cache.lookup".to_string(),
            attributes: vec![kv("cache.key", s(&format!("k{n}")))],
            dropped_attributes_count: 0,
        }];
        if error {
            events.push(span::Event {
                time_unix_nano: start + 20_000,
                name: "exception".to_string(),
                attributes: vec![
                    kv("exception.type", s("PaymentDeclined")),
                    kv(
                        "exception.message",
                        s(&format!("card declined for order {n}")),
                    ),
                ],
                dropped_attributes_count: 0,
            });
        }
        let links = if i % 2 == 1 {
            vec![span::Link {
                trace_id: self.rng.id::<16>().to_vec(),
                span_id: self.rng.id::<8>().to_vec(),
                trace_state: String::new(),
                attributes: vec![kv("link.kind", s("follows"))],
                dropped_attributes_count: 0,
                flags: 0,
            }]
        } else {
            Vec::new()
        };
        let status = if error {
            Some(Status {
                message: "card declined".to_string(),
                code: status::StatusCode::Error as i32,
            })
        } else if i == 0 {
            Some(Status {
                message: String::new(),
                code: status::StatusCode::Ok as i32,
            })
        } else if i % 4 == 2 {
            // What the Python SDK sends for an unset status: an empty message.
            Some(Status::default())
        } else {
            None
        };
        Span {
            trace_id: trace_id.to_vec(),
            span_id: span_id.to_vec(),
            trace_state: if i == 0 {
                "congo=t61rcWkgMzE".to_string()
            } else {
                String::new()
            },
            parent_span_id: parent.map(|p| p.to_vec()).unwrap_or_default(),
            flags: 0,
            name: if i == 0 {
                "GET /api/orders/{id}".to_string()
            } else {
                format!(
                    "step-{i} {}",
                    ["SELECT orders", "charge", "publish", "consume"][i % 4]
                )
            },
            kind: kind as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes,
            dropped_attributes_count: 0,
            events,
            dropped_events_count: 0,
            links,
            dropped_links_count: 0,
            status,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Comparing what was sent with what comes back.

/// A span with the resource and scope it was sent under.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatSpan {
    pub resource: Option<Resource>,
    pub scope: Option<InstrumentationScope>,
    pub span: Span,
}

/// All spans of `batches`, sorted by span id.
pub fn flatten(batches: &[ResourceSpans]) -> Vec<FlatSpan> {
    let mut spans: Vec<FlatSpan> = batches
        .iter()
        .flat_map(|rs| {
            rs.scope_spans.iter().flat_map(move |ss| {
                ss.spans.iter().map(move |span| FlatSpan {
                    resource: rs.resource.clone(),
                    scope: ss.scope.clone(),
                    span: span.clone(),
                })
            })
        })
        .collect();
    spans.sort_by(|a, b| a.span.span_id.cmp(&b.span.span_id));
    spans
}

/// Asserts that `got` holds exactly the spans of `expected`, each with its resource and scope,
/// every field equal.
pub fn assert_same_spans(context: &str, expected: &[ResourceSpans], got: &[ResourceSpans]) {
    // An empty status and no status are the same thing once stored (Tempo's blocks cannot
    // tell them apart either).
    let normalize = |mut spans: Vec<FlatSpan>| {
        for flat in &mut spans {
            if flat.span.status == Some(Status::default()) {
                flat.span.status = None;
            }
        }
        spans
    };
    let expected = normalize(flatten(expected));
    let got = normalize(flatten(got));
    let ids = |spans: &[FlatSpan]| -> Vec<String> {
        spans.iter().map(|s| hex(&s.span.span_id)).collect()
    };
    assert_eq!(ids(&got), ids(&expected), "{context}: span ids differ");
    for (want, have) in expected.iter().zip(&got) {
        assert_eq!(
            have.span,
            want.span,
            "{context}: span {} differs",
            hex(&want.span.span_id)
        );
        assert_eq!(
            have.resource,
            want.resource,
            "{context}: resource of span {} differs",
            hex(&want.span.span_id)
        );
        assert_eq!(
            have.scope,
            want.scope,
            "{context}: scope of span {} differs",
            hex(&want.span.span_id)
        );
    }
}

/// OTLP JSON (protojson, as Tempo prints it) of a value.
pub fn any_value_json(value: &AnyValue) -> Value {
    use serde_json::json;
    match &value.value {
        None => json!({}),
        Some(any_value::Value::StringValue(v)) => json!({ "stringValue": v }),
        Some(any_value::Value::BoolValue(v)) => json!({ "boolValue": v }),
        Some(any_value::Value::IntValue(v)) => json!({ "intValue": v.to_string() }),
        Some(any_value::Value::DoubleValue(v)) => json!({ "doubleValue": v }),
        Some(any_value::Value::BytesValue(v)) => json!({ "bytesValue": b64(v) }),
        Some(any_value::Value::ArrayValue(v)) => {
            json!({ "arrayValue": { "values": v.values.iter().map(any_value_json).collect::<Vec<_>>() } })
        }
        Some(any_value::Value::KvlistValue(v)) => {
            json!({ "kvlistValue": { "values": attributes_json(&v.values) } })
        }
        // Profiles only (a string table index); never in traces.
        Some(any_value::Value::StringValueStrindex(v)) => json!({ "stringValueStrindex": v }),
    }
}

pub fn attributes_json(attributes: &[KeyValue]) -> Value {
    Value::Array(
        attributes
            .iter()
            .map(|kv| {
                serde_json::json!({
                    "key": kv.key,
                    "value": kv.value.as_ref().map(any_value_json).unwrap_or(Value::Null),
                })
            })
            .collect(),
    )
}

fn span_kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "SPAN_KIND_INTERNAL",
        2 => "SPAN_KIND_SERVER",
        3 => "SPAN_KIND_CLIENT",
        4 => "SPAN_KIND_PRODUCER",
        5 => "SPAN_KIND_CONSUMER",
        _ => "SPAN_KIND_UNSPECIFIED",
    }
}

fn status_code_name(code: i32) -> &'static str {
    match code {
        1 => "STATUS_CODE_OK",
        2 => "STATUS_CODE_ERROR",
        _ => "STATUS_CODE_UNSET",
    }
}

pub fn resource_json(resource: &Resource) -> Value {
    serde_json::json!({
        "attributes": attributes_json(&resource.attributes),
        "droppedAttributesCount": resource.dropped_attributes_count,
    })
}

pub fn scope_json(scope: &InstrumentationScope) -> Value {
    serde_json::json!({
        "name": scope.name,
        "version": scope.version,
        "attributes": attributes_json(&scope.attributes),
        "droppedAttributesCount": scope.dropped_attributes_count,
    })
}

pub fn span_json(span: &Span) -> Value {
    use serde_json::json;
    json!({
        "traceId": b64(&span.trace_id),
        "spanId": b64(&span.span_id),
        "traceState": span.trace_state,
        "parentSpanId": b64(&span.parent_span_id),
        "flags": span.flags,
        "name": span.name,
        "kind": span_kind_name(span.kind),
        "startTimeUnixNano": span.start_time_unix_nano.to_string(),
        "endTimeUnixNano": span.end_time_unix_nano.to_string(),
        "attributes": attributes_json(&span.attributes),
        "droppedAttributesCount": span.dropped_attributes_count,
        "events": span.events.iter().map(|e| json!({
            "timeUnixNano": e.time_unix_nano.to_string(),
            "name": e.name,
            "attributes": attributes_json(&e.attributes),
            "droppedAttributesCount": e.dropped_attributes_count,
        })).collect::<Vec<_>>(),
        "droppedEventsCount": span.dropped_events_count,
        "links": span.links.iter().map(|l| json!({
            "traceId": b64(&l.trace_id),
            "spanId": b64(&l.span_id),
            "traceState": l.trace_state,
            "attributes": attributes_json(&l.attributes),
            "droppedAttributesCount": l.dropped_attributes_count,
            "flags": l.flags,
        })).collect::<Vec<_>>(),
        "droppedLinksCount": span.dropped_links_count,
        "status": span.status.as_ref().map(|st| json!({
            "message": st.message,
            "code": status_code_name(st.code),
        })).unwrap_or(json!({})),
    })
}

/// Drops what protojson may leave out (zero values, empty lists and objects, zero enums) and
/// makes every number a float, so that two encodings of the same message compare equal.
pub fn normalize_json(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (key, value) in map {
                let value = normalize_json(value);
                if !is_zero_json(&value) {
                    out.insert(key.clone(), value);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(normalize_json).collect()),
        Value::Number(n) => serde_json::Number::from_f64(n.as_f64().unwrap())
            .map(Value::Number)
            .unwrap_or(Value::Null),
        other => other.clone(),
    }
}

fn is_zero_json(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => {
            s.is_empty() || s == "0" || s == "SPAN_KIND_UNSPECIFIED" || s == "STATUS_CODE_UNSET"
        }
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
    }
}

/// (resource, scope, span) of every span in a JSON `batches`/`resourceSpans` list, sorted by
/// `spanId`, normalized.
pub fn flatten_json(batches: &Value) -> Vec<(Value, Value, Value)> {
    let batches = batches
        .as_array()
        .unwrap_or_else(|| panic!("batches is not a list: {batches}"));
    let mut spans = Vec::new();
    for batch in batches {
        let resource = normalize_json(batch.get("resource").unwrap_or(&Value::Null));
        let scope_spans = batch
            .get("scopeSpans")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("batch without scopeSpans: {batch}"));
        for ss in scope_spans {
            let scope = normalize_json(ss.get("scope").unwrap_or(&Value::Null));
            for span in ss
                .get("spans")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                spans.push((resource.clone(), scope.clone(), normalize_json(span)));
            }
        }
    }
    spans.sort_by(|a, b| {
        let id = |v: &Value| {
            v.get("spanId")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        id(&a.2).cmp(&id(&b.2))
    });
    spans
}

/// The expected JSON spans of `expected`, in the shape of [`flatten_json`].
pub fn expected_json(expected: &[ResourceSpans]) -> Vec<(Value, Value, Value)> {
    let mut spans: Vec<(Value, Value, Value)> = flatten(expected)
        .iter()
        .map(|flat| {
            (
                normalize_json(
                    &flat
                        .resource
                        .as_ref()
                        .map(resource_json)
                        .unwrap_or(Value::Null),
                ),
                normalize_json(&flat.scope.as_ref().map(scope_json).unwrap_or(Value::Null)),
                normalize_json(&span_json(&flat.span)),
            )
        })
        .collect();
    spans.sort_by(|a, b| {
        let id = |v: &Value| {
            v.get("spanId")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        id(&a.2).cmp(&id(&b.2))
    });
    spans
}

/// Asserts that the JSON batches hold exactly `expected`, field by field.
pub fn assert_same_spans_json(context: &str, expected: &[ResourceSpans], got_batches: &Value) {
    let want = expected_json(expected);
    let got = flatten_json(got_batches);
    let ids = |spans: &[(Value, Value, Value)]| -> Vec<String> {
        spans.iter().map(|s| s.2["spanId"].to_string()).collect()
    };
    assert_eq!(ids(&got), ids(&want), "{context}: span ids differ");
    for (want, have) in want.iter().zip(&got) {
        assert_eq!(
            have.2, want.2,
            "{context}: span differs\n got: {}\nwant: {}",
            have.2, want.2
        );
        assert_eq!(
            have.0, want.0,
            "{context}: resource of span {} differs",
            want.2["spanId"]
        );
        assert_eq!(
            have.1, want.1,
            "{context}: scope of span {} differs",
            want.2["spanId"]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Reading traces back.

fn tenant_headers(tenant: Option<&str>, protobuf: bool) -> Vec<(&str, &str)> {
    let mut headers = Vec::new();
    if let Some(tenant) = tenant {
        headers.push(("X-Scope-OrgID", tenant));
    }
    if protobuf {
        headers.push(("Accept", "application/protobuf"));
    }
    headers
}

/// `/api/traces/<id>` as protobuf: `None` on 404.
pub fn get_v1_proto(
    addr: SocketAddr,
    trace_id: &str,
    tenant: Option<&str>,
) -> Option<Vec<ResourceSpans>> {
    let response = http_get(
        addr,
        &format!("/api/traces/{trace_id}"),
        &tenant_headers(tenant, true),
    );
    match response.status {
        404 => {
            assert!(response.body.is_empty(), "404 with a body: {response:?}");
            None
        }
        200 => {
            assert_eq!(
                response.content_type(),
                Some("application/protobuf"),
                "{response:?}"
            );
            Some(
                TempoTrace::decode(response.body.as_slice())
                    .unwrap_or_else(|err| panic!("v1 protobuf of {trace_id}: {err}"))
                    .batches,
            )
        }
        other => panic!("/api/traces/{trace_id}: status {other}: {response:?}"),
    }
}

/// `/api/traces/<id>` as JSON: the `batches` list, `None` on 404.
pub fn get_v1_json(addr: SocketAddr, trace_id: &str, tenant: Option<&str>) -> Option<Value> {
    let response = http_get(
        addr,
        &format!("/api/traces/{trace_id}"),
        &tenant_headers(tenant, false),
    );
    match response.status {
        404 => {
            assert!(response.body.is_empty(), "404 with a body: {response:?}");
            None
        }
        200 => {
            assert_eq!(
                response.content_type(),
                Some("application/json"),
                "{response:?}"
            );
            let body = response.json();
            let object = body.as_object().expect("JSON object");
            assert_eq!(
                object.keys().collect::<Vec<_>>(),
                ["batches"],
                "top-level keys of v1 JSON"
            );
            Some(body["batches"].clone())
        }
        other => panic!("/api/traces/{trace_id}: status {other}: {response:?}"),
    }
}

/// `/api/v2/traces/<id>` as protobuf: the batches (empty when unknown).
pub fn get_v2_proto(addr: SocketAddr, trace_id: &str, tenant: Option<&str>) -> Vec<ResourceSpans> {
    let response = http_get(
        addr,
        &format!("/api/v2/traces/{trace_id}"),
        &tenant_headers(tenant, true),
    );
    assert_eq!(
        response.status, 200,
        "/api/v2/traces/{trace_id}: {response:?}"
    );
    assert_eq!(
        response.content_type(),
        Some("application/protobuf"),
        "{response:?}"
    );
    TraceByIdResponse::decode(response.body.as_slice())
        .unwrap_or_else(|err| panic!("v2 protobuf of {trace_id}: {err}"))
        .trace
        .map(|t| t.batches)
        .unwrap_or_default()
}

/// `/api/v2/traces/<id>` as JSON: the `resourceSpans` list (`[]` when unknown).
pub fn get_v2_json(addr: SocketAddr, trace_id: &str, tenant: Option<&str>) -> Value {
    let response = http_get(
        addr,
        &format!("/api/v2/traces/{trace_id}"),
        &tenant_headers(tenant, false),
    );
    assert_eq!(
        response.status, 200,
        "/api/v2/traces/{trace_id}: {response:?}"
    );
    assert_eq!(
        response.content_type(),
        Some("application/json"),
        "{response:?}"
    );
    let body = response.json();
    let trace = body
        .get("trace")
        .unwrap_or_else(|| panic!("v2 answer without `trace`: {body}"));
    trace
        .get("resourceSpans")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()))
}

/// Reads `trace` back through v1 and v2, JSON and protobuf, and compares every span.
pub fn assert_trace_everywhere(addr: SocketAddr, trace: &GenTrace, tenant: Option<&str>) {
    let id = trace.hex_id();
    let v1 =
        get_v1_proto(addr, &id, tenant).unwrap_or_else(|| panic!("trace {id}: v1 protobuf 404"));
    assert_same_spans(&format!("v1 protobuf {id}"), &trace.resource_spans, &v1);
    let v1 = get_v1_json(addr, &id, tenant).unwrap_or_else(|| panic!("trace {id}: v1 JSON 404"));
    assert_same_spans_json(&format!("v1 JSON {id}"), &trace.resource_spans, &v1);
    let v2 = get_v2_proto(addr, &id, tenant);
    assert_same_spans(&format!("v2 protobuf {id}"), &trace.resource_spans, &v2);
    let v2 = get_v2_json(addr, &id, tenant);
    assert_same_spans_json(&format!("v2 JSON {id}"), &trace.resource_spans, &v2);
}

/// Reads `trace` back through v1 protobuf (the cheapest read) and compares every span.
pub fn assert_trace(addr: SocketAddr, trace: &GenTrace, tenant: Option<&str>) {
    let id = trace.hex_id();
    let got = get_v1_proto(addr, &id, tenant).unwrap_or_else(|| panic!("trace {id}: 404"));
    assert_same_spans(&format!("trace {id}"), &trace.resource_spans, &got);
}

/// The span ids of a trace as the server has it (empty when unknown).
pub fn span_ids(addr: SocketAddr, trace_id: &str, tenant: Option<&str>) -> Vec<Vec<u8>> {
    get_v1_proto(addr, trace_id, tenant)
        .map(|batches| {
            flatten(&batches)
                .into_iter()
                .map(|f| f.span.span_id)
                .collect()
        })
        .unwrap_or_default()
}

/// Sum of the samples of a Prometheus metric (every label set).
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let after_labels = match rest.strip_prefix('{') {
            Some(labels) => labels.rsplit_once('}').map_or("", |(_, after)| after),
            None => rest,
        };
        let value = after_labels
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok());
        if let Some(value) = value {
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

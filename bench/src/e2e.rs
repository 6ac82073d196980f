//! End to end: the release `allegro` server on one pinned core against the `loadgen` on
//! another, measured from outside (the loadgen's `RESULT` line, `/proc/<pid>/stat` for the
//! server's CPU time, `/proc/<pid>/status` for its RSS, the WAL directory for bytes on disk).
//!
//! The sequence ([`run`]): the loadgen alone (`--null-sink`, its ceiling), then the server
//! with one shard and `wal_fsync: always`: a warm-up, a run at full speed (max spans/s and
//! spans per server CPU-second), a run at half that rate (export latency), a run at the
//! target rate for memory if the server reaches it, then the WAL's size on disk.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What to run and how long.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server_bin: PathBuf,
    pub loadgen_bin: PathBuf,
    /// Holds the config, the server log, the WAL and the blocks; removed afterwards unless
    /// `keep_dir`.
    pub dir: PathBuf,
    pub keep_dir: bool,
    pub server_cpu: usize,
    pub loadgen_cpu: usize,
    pub null_sink: Duration,
    pub warmup: Duration,
    pub max_run: Duration,
    pub latency_run: Duration,
    pub rss_run: Duration,
    /// The rate of the memory target (spans/s).
    pub rss_rate: u64,
    /// How often RSS is sampled.
    pub rss_sample: Duration,
}

/// Waiting limits.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(40);
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// One loadgen run and what the server did meanwhile.
#[derive(Debug, Clone)]
pub struct LoadRun {
    pub name: &'static str,
    pub command: String,
    /// The JSON after `RESULT ` on the loadgen's stdout.
    pub result: String,
    pub exit_code: Option<i32>,
    pub wall_s: f64,
    /// Server user + system CPU seconds during the run.
    pub server_cpu_s: f64,
    /// The loadgen's user + system CPU seconds (`getrusage(RUSAGE_CHILDREN)` around it).
    pub loadgen_cpu_s: f64,
    /// CPU seconds the server's core spent on anything but the server (other processes,
    /// interrupts), from `/proc/stat`; likewise for the loadgen's core. Above zero, the
    /// machine was not quiet.
    pub server_core_other_s: f64,
    pub loadgen_core_other_s: f64,
    /// Seconds the hypervisor took from both cores (`steal` in `/proc/stat`).
    pub steal_s: f64,
    /// `(seconds since start, VmRSS bytes)` of the server.
    pub rss_samples: Vec<(f64, u64)>,
    /// The loadgen's once-a-second progress lines (stderr).
    pub progress: Vec<String>,
}

impl LoadRun {
    pub fn number(&self, key: &str) -> Option<f64> {
        json_number(&self.result, key)
    }

    pub fn spans_acked(&self) -> u64 {
        self.number("spans_acked").unwrap_or(0.0) as u64
    }

    pub fn spans_per_sec(&self) -> f64 {
        self.number("spans_per_sec").unwrap_or(0.0)
    }

    /// Acknowledged spans per second of server CPU.
    pub fn spans_per_cpu_s(&self) -> f64 {
        self.spans_acked() as f64 / self.server_cpu_s.max(1e-9)
    }

    /// The median RSS of the second half of the run: the steady state.
    pub fn rss_steady_bytes(&self) -> Option<u64> {
        let half = self.rss_samples.len() / 2;
        let mut tail: Vec<u64> = self.rss_samples[half..].iter().map(|s| s.1).collect();
        tail.sort_unstable();
        tail.get(tail.len() / 2).copied()
    }

    pub fn rss_max_bytes(&self) -> Option<u64> {
        self.rss_samples.iter().map(|s| s.1).max()
    }

    /// Acknowledged spans in each second of the run, from the progress lines.
    pub fn acked_per_second(&self) -> Vec<u64> {
        self.progress
            .iter()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                words.find(|w| *w == "acked")?;
                words.next()?.replace(',', "").parse().ok()
            })
            .collect()
    }
}

/// Everything [`run`] measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub server_command: String,
    pub config_yaml: String,
    pub server_listening: String,
    pub null_sink: LoadRun,
    pub warmup: LoadRun,
    pub max: LoadRun,
    /// `None` when the max run acknowledged nothing (the server stopped answering).
    pub latency: Option<LoadRun>,
    /// `None` when the server's max is below the memory target's rate.
    pub rss: Option<LoadRun>,
    pub wal_bytes_allocated: u64,
    pub wal_bytes_apparent: u64,
    pub wal_files: u64,
    pub blocks_bytes_allocated: u64,
    /// Sums of the server's `/metrics` counters at the end, by name.
    pub metrics: Vec<(String, f64)>,
    /// Server peak RSS (VmHWM) at the end.
    pub rss_peak_bytes: Option<u64>,
    pub server_exit: String,
    /// Lines of the server log with WARN, ERROR or a panic (with the line after it, the
    /// panic message).
    pub server_warnings: Vec<String>,
}

impl Outcome {
    /// Spans acknowledged over all runs against the server.
    pub fn spans_acked_total(&self) -> u64 {
        self.server_runs().map(LoadRun::spans_acked).sum()
    }

    /// The runs against the server, in order.
    pub fn server_runs(&self) -> impl Iterator<Item = &LoadRun> {
        [
            Some(&self.warmup),
            Some(&self.max),
            self.latency.as_ref(),
            self.rss.as_ref(),
        ]
        .into_iter()
        .flatten()
    }

    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.iter().find(|(n, _)| n == name).map(|m| m.1)
    }
}

/// The server's config: Tempo keys, one shard, fsync always, no ingestion rate limit (0
/// disables it in Allegro: net/src/limits.rs), everything else at its default.
pub fn config_yaml(dir: &Path) -> String {
    let dir = dir.display();
    format!(
        "server:
  http_listen_address: 127.0.0.1
  http_listen_port: 0
  grpc_listen_port: 0
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: 127.0.0.1:0
storage:
  trace:
    backend: local
    local:
      path: {dir}/traces
    wal:
      path: {dir}/wal
overrides:
  defaults:
    ingestion:
      rate_limit_bytes: 0
allegro:
  shards: 1
  wal_fsync: always
"
    )
}

/// The running server; killed on drop if it was not stopped.
struct Server {
    child: Child,
    grpc: SocketAddr,
    http: SocketAddr,
    listening: String,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn taskset(cpu: usize, program: &Path) -> Command {
    let mut command = Command::new("taskset");
    command.arg("-c").arg(cpu.to_string()).arg(program);
    command
}

fn render(command: &Command) -> String {
    let mut out = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        out.push(' ');
        out.push_str(&arg.to_string_lossy());
    }
    out
}

fn start_server(settings: &Settings, config: &Path) -> Result<(Server, String), String> {
    let log = settings.dir.join("server.log");
    let log_file = File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let log_err = log_file
        .try_clone()
        .map_err(|e| format!("clone log fd: {e}"))?;
    let mut command = taskset(settings.server_cpu, &settings.server_bin);
    command.arg(format!("-config.file={}", config.display()));
    let rendered = format!("RUST_LOG=info {}", render(&command));
    command
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err);
    let child = command
        .spawn()
        .map_err(|e| format!("start {rendered}: {e}"))?;
    let mut server = Server {
        child,
        grpc: SocketAddr::from(([127, 0, 0, 1], 0)),
        http: SocketAddr::from(([127, 0, 0, 1], 0)),
        listening: String::new(),
        log,
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!(
                "the server exited ({status}) before listening:\n{}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            ));
        }
        let text = std::fs::read_to_string(&server.log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(" listening otlp_grpc=")) {
            let addr = |key: &str| -> Result<SocketAddr, String> {
                line.split_whitespace()
                    .find_map(|word| word.strip_prefix(key))
                    .and_then(|value| value.parse().ok())
                    .ok_or_else(|| format!("no {key}ADDR in {line:?}"))
            };
            server.grpc = addr("otlp_grpc=")?;
            server.http = addr("http=")?;
            server.listening = line.to_string();
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the server did not listen within {READY_TIMEOUT:?}:\n{text}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    loop {
        if matches!(http_get(server.http, "/ready"), Ok((200, _))) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "/ready did not answer 200 within {READY_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((server, rendered))
}

/// A plain HTTP/1.1 GET: `(status, body)`.
fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, HTTP_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(HTTP_TIMEOUT))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad response: {:?}", text.lines().next()))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("read /proc/{pid}/stat: {e}"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("no ')' in stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime is field 14, stime field 15.
    let ticks = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("bad field {} in /proc/{pid}/stat", i + 3))
    };
    let total = ticks(11)? + ticks(12)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Ok(total as f64 / hz.max(1) as f64)
}

/// Busy and stolen time of one core since boot.
#[derive(Debug, Clone, Copy, Default)]
struct CoreTimes {
    /// user + nice + system + irq + softirq, seconds.
    busy_s: f64,
    steal_s: f64,
}

/// Per-core times from `/proc/stat`, indexed by core number.
fn core_times() -> Vec<CoreTimes> {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let mut cores = Vec::new();
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        let Some(name) = fields.next() else { continue };
        let Some(index) = name
            .strip_prefix("cpu")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        let ticks: Vec<f64> = fields.filter_map(|f| f.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal ...
        let tick = |i: usize| ticks.get(i).copied().unwrap_or(0.0);
        if cores.len() <= index {
            cores.resize(index + 1, CoreTimes::default());
        }
        cores[index] = CoreTimes {
            busy_s: (tick(0) + tick(1) + tick(2) + tick(5) + tick(6)) / hz,
            steal_s: tick(7) / hz,
        };
    }
    cores
}

/// Waits until every core is idle (under 10% busy) for `QUIET_SAMPLES` samples in a row of
/// `QUIET_SAMPLE`, or until `limit`; returns whether it got quiet and how long it waited.
/// On a shared machine this keeps other people's builds out of the figures when it can.
pub fn wait_for_quiet(limit: Duration) -> (bool, Duration) {
    const QUIET_SAMPLE: Duration = Duration::from_secs(2);
    const QUIET_SAMPLES: u32 = 3;
    const BUSY_FRACTION_MAX: f64 = 0.1;
    let start = Instant::now();
    let mut quiet_in_a_row = 0;
    while start.elapsed() < limit {
        let before = core_times();
        std::thread::sleep(QUIET_SAMPLE);
        let after = core_times();
        let busiest = before
            .iter()
            .zip(&after)
            .map(|(b, a)| {
                (a.busy_s + a.steal_s - b.busy_s - b.steal_s) / QUIET_SAMPLE.as_secs_f64()
            })
            .fold(0.0, f64::max);
        if busiest < BUSY_FRACTION_MAX {
            quiet_in_a_row += 1;
            if quiet_in_a_row >= QUIET_SAMPLES {
                return (true, start.elapsed());
            }
        } else {
            quiet_in_a_row = 0;
        }
    }
    (false, start.elapsed())
}

/// User + system CPU seconds of the children this process has waited for.
fn children_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// A `kB` line of /proc/<pid>/status (`VmRSS`, `VmHWM`), in bytes.
fn status_bytes(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs the loadgen to completion, sampling the server (if any) meanwhile.
fn load(
    settings: &Settings,
    name: &'static str,
    args: &[String],
    server: Option<&Server>,
) -> Result<LoadRun, String> {
    let mut command = taskset(settings.loadgen_cpu, &settings.loadgen_bin);
    command.args(args);
    let rendered = render(&command);
    let pid = server.map(|s| s.child.id());
    let cpu_before = pid.map(cpu_seconds).transpose()?;
    let children_before = children_cpu_seconds();
    let cores_before = core_times();
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start {rendered}: {e}"))?;
    // The loadgen prints a report on stderr and one RESULT line on stdout; both are small,
    // read on threads so that neither pipe fills.
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let out_thread = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err_thread = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut rss_samples = Vec::new();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("wait: {e}"))? {
            break status;
        }
        if let Some(rss) = pid.and_then(|pid| status_bytes(pid, "VmRSS:")) {
            rss_samples.push((start.elapsed().as_secs_f64(), rss));
        }
        std::thread::sleep(settings.rss_sample);
    };
    let wall_s = start.elapsed().as_secs_f64();
    let cpu_after = pid.map(cpu_seconds).transpose()?;
    let loadgen_cpu_s = children_cpu_seconds() - children_before;
    let cores_after = core_times();
    let core_delta = |cpu: usize| -> CoreTimes {
        match (cores_before.get(cpu), cores_after.get(cpu)) {
            (Some(before), Some(after)) => CoreTimes {
                busy_s: after.busy_s - before.busy_s,
                steal_s: after.steal_s - before.steal_s,
            },
            _ => CoreTimes::default(),
        }
    };
    let (server_core, loadgen_core) = (
        core_delta(settings.server_cpu),
        core_delta(settings.loadgen_cpu),
    );
    let server_cpu_s = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) => after - before,
        _ => 0.0,
    };
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    let progress = stderr
        .lines()
        .filter(|line| line.starts_with('['))
        .map(str::to_string)
        .collect();
    let result = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .map(str::to_string)
        .ok_or_else(|| format!("{rendered}: no RESULT line ({status})\n{stdout}\n{stderr}"))?;
    Ok(LoadRun {
        name,
        command: rendered,
        result,
        exit_code: status.code(),
        wall_s,
        server_cpu_s,
        loadgen_cpu_s,
        server_core_other_s: (server_core.busy_s - server_cpu_s).max(0.0),
        loadgen_core_other_s: (loadgen_core.busy_s - loadgen_cpu_s).max(0.0),
        steal_s: server_core.steal_s + loadgen_core.steal_s,
        rss_samples,
        progress,
    })
}

fn secs(duration: Duration) -> String {
    format!("{}ms", duration.as_millis())
}

/// Allocated and apparent bytes, and files, under `dir`.
fn disk_usage(dir: &Path) -> (u64, u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut totals = (0, 0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return totals;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            let (a, b, c) = disk_usage(&entry.path());
            totals = (totals.0 + a, totals.1 + b, totals.2 + c);
        } else {
            totals = (
                totals.0 + meta.blocks() * 512,
                totals.1 + meta.size(),
                totals.2 + 1,
            );
        }
    }
    totals
}

/// Sums of the `allegro_*` counters in a `/metrics` text, by name.
fn metric_sums(text: &str) -> Vec<(String, f64)> {
    let mut sums: Vec<(String, f64)> = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("allegro_")) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series).to_string();
        match sums.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 += value,
            None => sums.push((name, value)),
        }
    }
    sums
}

/// The number after `"key":` in a flat JSON object.
pub fn json_number(json: &str, key: &str) -> Option<f64> {
    let needle = format!("\"{key}\":");
    let start = json.find(&needle)? + needle.len();
    let rest = &json[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// Runs the whole sequence; `progress` gets a line per step.
pub fn run(settings: &Settings, progress: &mut dyn FnMut(&str)) -> Result<Outcome, String> {
    for bin in [&settings.server_bin, &settings.loadgen_bin] {
        if !bin.is_file() {
            return Err(format!(
                "{} not found: build it with `cargo build --release -p allegro-net -p allegro-loadgen`",
                bin.display()
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&settings.dir);
    std::fs::create_dir_all(&settings.dir)
        .map_err(|e| format!("create {}: {e}", settings.dir.display()))?;
    let result = run_in_dir(settings, progress);
    if !settings.keep_dir {
        let _ = std::fs::remove_dir_all(&settings.dir);
    }
    result
}

fn run_in_dir(settings: &Settings, progress: &mut dyn FnMut(&str)) -> Result<Outcome, String> {
    progress(&format!(
        "loadgen alone (--null-sink) on core {} for {:?}",
        settings.loadgen_cpu, settings.null_sink
    ));
    let null_sink = load(
        settings,
        "null-sink",
        &[
            "--null-sink".into(),
            "--threads".into(),
            "1".into(),
            "--duration".into(),
            secs(settings.null_sink),
        ],
        None,
    )?;

    let config_yaml = config_yaml(&settings.dir);
    let config = settings.dir.join("tempo.yaml");
    std::fs::write(&config, &config_yaml).map_err(|e| format!("write config: {e}"))?;
    let (mut server, server_command) = start_server(settings, &config)?;
    progress(&format!("server: {}", server.listening));
    let endpoint = server.grpc.to_string();
    let base = |duration: Duration, rate: u64| -> Vec<String> {
        vec![
            "--endpoint".into(),
            endpoint.clone(),
            "--threads".into(),
            "1".into(),
            "--duration".into(),
            secs(duration),
            "--rate".into(),
            rate.to_string(),
        ]
    };

    progress(&format!("warm-up at full speed for {:?}", settings.warmup));
    let warmup = load(
        settings,
        "warm-up",
        &base(settings.warmup, 0),
        Some(&server),
    )?;
    progress(&format!("full speed for {:?}", settings.max_run));
    let max = load(settings, "max", &base(settings.max_run, 0), Some(&server))?;
    let half = (max.spans_per_sec() / 2.0) as u64;
    let latency = if half > 0 {
        progress(&format!(
            "max {:.0} spans/s; half of it ({half} spans/s) for {:?}",
            max.spans_per_sec(),
            settings.latency_run
        ));
        Some(load(
            settings,
            "latency",
            &base(settings.latency_run, half),
            Some(&server),
        )?)
    } else {
        progress("the max run acknowledged nothing: no latency run");
        None
    };
    let rss = if half > 0 && max.spans_per_sec() >= settings.rss_rate as f64 {
        progress(&format!(
            "{} spans/s for {:?} (memory)",
            settings.rss_rate, settings.rss_run
        ));
        Some(load(
            settings,
            "rss",
            &base(settings.rss_run, settings.rss_rate),
            Some(&server),
        )?)
    } else {
        progress(&format!(
            "skipping the memory run: max {:.0} spans/s < {} spans/s",
            max.spans_per_sec(),
            settings.rss_rate
        ));
        None
    };

    let metrics = http_get(server.http, "/metrics")
        .map(|(_, body)| metric_sums(&body))
        .unwrap_or_default();
    let pid = server.child.id();
    let rss_peak_bytes = status_bytes(pid, "VmHWM:");
    let (wal_bytes_allocated, wal_bytes_apparent, wal_files) =
        disk_usage(&settings.dir.join("wal"));
    let (blocks_bytes_allocated, _, _) = disk_usage(&settings.dir.join("traces"));

    // SIGTERM and wait, as an operator would stop it.
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    let server_exit = loop {
        match server.child.try_wait() {
            Ok(Some(status)) => break format!("{status} after SIGTERM"),
            Ok(None) if Instant::now() > deadline => {
                break format!("still running {STOP_TIMEOUT:?} after SIGTERM (killed)")
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(err) => break format!("wait failed: {err}"),
        }
    };
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let mut server_warnings = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.contains("WARN") || line.contains("ERROR") {
            server_warnings.push(line.to_string());
        } else if line.contains("panicked at") {
            server_warnings.push(line.to_string());
            server_warnings.extend(lines.get(i + 1).map(|l| l.to_string()));
        }
        if server_warnings.len() >= 20 {
            break;
        }
    }
    let listening = std::mem::take(&mut server.listening);
    drop(server);

    Ok(Outcome {
        server_command,
        config_yaml,
        server_listening: listening,
        null_sink,
        warmup,
        max,
        latency,
        rss,
        wal_bytes_allocated,
        wal_bytes_apparent,
        wal_files,
        blocks_bytes_allocated,
        metrics,
        rss_peak_bytes,
        server_exit,
        server_warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers() {
        let json =
            r#"{"mode":"load","spans_per_sec":512.5,"p99_us":1500,"sched_p99_us":9,"errors":{}}"#;
        assert_eq!(json_number(json, "spans_per_sec"), Some(512.5));
        assert_eq!(json_number(json, "p99_us"), Some(1500.0));
        assert_eq!(json_number(json, "sched_p99_us"), Some(9.0));
        assert_eq!(json_number(json, "missing"), None);
    }

    #[test]
    fn metrics_are_summed_over_labels() {
        let text = "# HELP x\nallegro_wal_fsyncs_total{shard=\"0\"} 3\nallegro_wal_fsyncs_total{shard=\"1\"} 4\nother 1\n";
        assert_eq!(
            metric_sums(text),
            vec![("allegro_wal_fsyncs_total".to_string(), 7.0)]
        );
    }
}

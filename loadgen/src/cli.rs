//! The command line: a small hand-written parser (no dependency), the `--help` texts, and the
//! value parsers (`10s`, `250ms`, `200k`, `1.5M`). Pure: `parse(args) -> Result<Command, String>`.

use crate::limits;
use crate::model::Shape;
use std::path::PathBuf;
use std::time::Duration;

/// Exit status: the run did what was asked and nothing was lost or failed beyond the limits.
pub const EXIT_OK: u8 = 0;
/// Exit status: the run completed but failed its check (errors, lost traces).
pub const EXIT_FAILED: u8 = 1;
/// Exit status: bad usage or a setup problem (unreadable file, server never ready).
pub const EXIT_USAGE: u8 = 2;

pub const HELP: &str = "\
loadgen: OTLP/gRPC trace load generator and durability checker (Allegro, Tempo)

USAGE:
    loadgen [OPTIONS]                      send load (--null-sink: measure the generator)
    loadgen verify --record FILE [...]     read recorded traces back, count lost spans
    loadgen crash --server-bin PATH [...]  kill -9 / restart / verify cycles
    loadgen <verify|crash> --help          options of a subcommand

Sends OTLP ExportTraceServiceRequest over gRPC (HTTP/2 cleartext, prior knowledge) to
/opentelemetry.proto.collector.trace.v1.TraceService/Export. Requests are pre-encoded
templates of realistic traces (a SERVER root, CLIENT/INTERNAL/PRODUCER children across
services, semantic-convention attributes, events, errors with exception events,
long-tailed durations); each request gets fresh random trace/span IDs and current times.

TARGET:
    --endpoint HOST:PORT       OTLP/gRPC endpoint [default: 127.0.0.1:4317]
    --tenant ID                send X-Scope-OrgID: ID (multi-tenant servers)
    --gzip                     compress requests (grpc-encoding: gzip, fastest level)
    --request-timeout DUR      give up on an Export after DUR (also sent as grpc-timeout)
                               [default: 10s]

LOAD:
    --rate SPANS_PER_SEC       open-loop target rate: requests start on a fixed schedule
                               whatever the latency; 0 = as fast as possible [default: 0]
                               (suffixes k and M: 200k, 1.5M)
    --duration DUR             how long to send: 500ms, 10s, 5m, 1h [default: 10s]
    --connections N            HTTP/2 connections [default: 4]
    --in-flight N              concurrent Export streams per connection [default: 16]
    --threads N                tokio worker threads; 1 keeps the loadgen on one core
                               (pin it with taskset) [default: 1]

TRACE SHAPE:
    --services N               services in the topology [default: 5]
    --spans-per-trace N        spans in every trace [default: 10]
    --traces-per-request N     traces in one Export request [default: 10]
    --attributes N             attributes per span, mixed string/int/bool/double
                               [default: 8]
    --events-per-span X        average span events per span [default: 0.3]
    --error-rate X             fraction of spans with status ERROR + exception event
                               [default: 0.05]
    --templates N              distinct pre-encoded request shapes [default: 16]
    --seed N                   seed of shapes (and, when given, of IDs: the same seed then
                               sends the same trace IDs; without it IDs differ per run)
                               [default: 1]

OUTPUT:
    --record FILE              write '<32-hex trace id> <span count>' for every
                               acknowledged trace (grpc-status 0, nothing rejected in
                               partial_success), for 'loadgen verify'
    --null-sink                build, patch, frame (and gzip) requests, send nothing:
                               the generator's ceiling in spans/s (on --threads threads;
                               ignores --rate, --connections, --in-flight)
    --max-error-ratio X        failed requests / sent requests tolerated before exiting 1
                               [default: 0]
    --quiet                    no progress lines
    -h, --help                 this help
    -V, --version              version

REPORT:
    Once a second on stderr: spans/s sent and acknowledged, MB/s, in-flight, requests
    answered after more than 10 ms, errors by gRPC status. At the end: totals, spans/s,
    MB/s uncompressed and on the wire (gRPC frames, without HTTP/2 overhead), export
    latency p50/p90/p99/p99.9/max of acknowledged requests (from send to trailers),
    errors by status name, and one JSON line on stdout:
        RESULT {\"mode\":\"load\",\"spans_per_sec\":...,\"p99_us\":...,\"errors\":{...}}
    spans_per_sec counts acknowledged spans. With --rate, sched_p*_us also measure from
    each request's scheduled start (includes waiting for a free stream, so coordinated
    omission cannot hide a slow server).

EXIT STATUS:
    0 success; 1 nothing acknowledged, errors above --max-error-ratio, or (verify, crash)
    lost spans; 2 bad usage or setup failure.

EXAMPLES:
    loadgen --null-sink --duration 5s
    taskset -c 3 loadgen --rate 500k --duration 60s --record acked.txt
    loadgen verify --record acked.txt --http 127.0.0.1:3200
    loadgen crash --server-bin ./allegro --config allegro.yaml --cycles 5 --rate 200k
";

pub const VERIFY_HELP: &str = "\
loadgen verify: read recorded traces back and report lost spans

USAGE:
    loadgen verify --record FILE [--http HOST:PORT] [OPTIONS]

Reads every '<32-hex trace id> <span count>' line of FILE (written by --record),
fetches the trace with GET /api/v2/traces/<id> (Accept: application/protobuf, a
TraceByIDResponse) and counts its distinct spans. A trace is complete when all its spans
came back, partial when some did, missing when none did (404 or an empty trace).

OPTIONS:
    --record FILE              the record file [required]
    --http HOST:PORT           the server's HTTP API [default: 127.0.0.1:3200]
    --tenant ID                send X-Scope-OrgID: ID
    --concurrency N            parallel HTTP/1.1 keep-alive connections [default: 8]
    --grace DUR                keep re-reading incomplete traces for up to DUR, for
                               servers that make data visible asynchronously
                               [default: 0s]
    --request-timeout DUR      per lookup [default: 10s]
    --quiet                    no progress lines

OUTPUT:
    Complete / partial / missing traces, lost spans, lookup latency percentiles, and
        RESULT {\"mode\":\"verify\",\"traces\":...,\"complete\":...,\"lost_spans\":...}
    Exit status 0 when every trace is complete, 1 on any loss or lookup error, 2 on bad
    usage.
";

pub const CRASH_HELP: &str = "\
loadgen crash: durability under kill -9

USAGE:
    loadgen crash --server-bin PATH --config FILE [OPTIONS] [LOAD OPTIONS]

Starts 'PATH -config.file=FILE', waits for GET /ready to answer 200, then for each
cycle: sends load (recording acknowledged traces), SIGKILLs the server at a random moment
of the load, restarts it, waits for /ready, and reads back every trace acknowledged in
that cycle.
Prints lost spans per cycle; after the last cycle re-reads the traces of all cycles.
--endpoint and --http must match the ports in the config file.

OPTIONS:
    --server-bin PATH          server binary (Allegro or Tempo) [required]
    --config FILE              passed as -config.file=FILE [required]
    --cycles N                 kill/restart cycles [default: 3]
    --http HOST:PORT           the server's HTTP API (/ready, trace lookups)
                               [default: 127.0.0.1:3200]
    --ready-timeout DUR        how long to wait for /ready [default: 60s]
    --kill-after DUR           kill no earlier than this into the load [default: 10% of
                               --duration]
    --server-log FILE          append the server's stdout/stderr here [default: discard]
    --grace DUR                verify retry window after restart [default: 5s]
    --concurrency N            verify connections [default: 8]
    --record FILE              also write all acknowledged traces of all cycles here
    --no-final-verify          skip re-reading all cycles' traces at the end

LOAD OPTIONS: as for plain 'loadgen' (--endpoint, --tenant, --rate, --duration [default
here: 5s], --connections, --in-flight, --gzip, --threads, trace shape, --seed). Each cycle
uses a different seed (seed + cycle).

OUTPUT:
    One line per cycle, then
        RESULT {\"mode\":\"crash\",\"cycles\":...,\"lost_spans\":...,\"lost_traces\":...}
    Exit status 0 when nothing acknowledged was lost, 1 on loss, 2 on setup failure
    (server did not start or become ready).
";

#[derive(Clone, Debug, PartialEq)]
pub struct LoadArgs {
    pub endpoint: String,
    pub tenant: Option<String>,
    pub gzip: bool,
    pub request_timeout: Duration,
    pub rate_spans_per_sec: f64,
    pub duration: Duration,
    pub connections: usize,
    pub in_flight: usize,
    pub threads: usize,
    pub shape: Shape,
    pub templates: usize,
    pub seed: u64,
    /// Set by an explicit `--seed`: trace and span IDs repeat from run to run. Otherwise
    /// they also depend on a per-process nonce, so that two runs never send the same IDs
    /// (a verify after a second run must not find the first run's spans).
    pub ids_deterministic: bool,
    pub record: Option<PathBuf>,
    pub null_sink: bool,
    pub max_error_ratio: f64,
    pub quiet: bool,
}

impl LoadArgs {
    /// The seed of trace and span IDs (see `ids_deterministic`).
    pub fn id_seed(&self) -> u64 {
        if self.ids_deterministic {
            return self.seed;
        }
        static NONCE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let nonce = *NONCE.get_or_init(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos ^ (u64::from(std::process::id()) << 32)
        });
        self.seed ^ nonce
    }
}

impl Default for LoadArgs {
    fn default() -> LoadArgs {
        LoadArgs {
            endpoint: "127.0.0.1:4317".to_string(),
            tenant: None,
            gzip: false,
            request_timeout: Duration::from_secs(10),
            rate_spans_per_sec: 0.0,
            duration: Duration::from_secs(10),
            connections: 4,
            in_flight: 16,
            threads: 1,
            shape: Shape::default(),
            templates: 16,
            seed: 1,
            ids_deterministic: false,
            record: None,
            null_sink: false,
            max_error_ratio: 0.0,
            quiet: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct VerifyArgs {
    pub record: PathBuf,
    pub http: String,
    pub tenant: Option<String>,
    pub concurrency: usize,
    pub grace: Duration,
    pub request_timeout: Duration,
    pub quiet: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CrashArgs {
    pub server_bin: PathBuf,
    pub config: PathBuf,
    pub cycles: usize,
    pub http: String,
    pub ready_timeout: Duration,
    pub kill_after: Option<Duration>,
    pub server_log: Option<PathBuf>,
    pub grace: Duration,
    pub concurrency: usize,
    pub final_verify: bool,
    pub load: LoadArgs,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Load(LoadArgs),
    Verify(VerifyArgs),
    Crash(CrashArgs),
    Help(&'static str),
    Version,
}

/// `10s`, `250ms`, `2m`, `1h`, `1.5s`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?} (examples: 500ms, 10s, 5m, 1h)"))?;
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "us" => 0.000_001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("bad duration unit in {text:?} (use ms, s, m or h)")),
    };
    let secs = value * scale;
    if !secs.is_finite() || !(0.0..=365.0 * 86_400.0).contains(&secs) {
        return Err(format!("duration {text:?} out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A non-negative number with an optional `k` (thousand) or `M` (million) suffix.
pub fn parse_amount(text: &str) -> Result<f64, String> {
    let (number, scale) = match text.strip_suffix(['k', 'K']) {
        Some(n) => (n, 1e3),
        None => match text.strip_suffix(['m', 'M']) {
            Some(n) => (n, 1e6),
            None => (text, 1.0),
        },
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("bad number {text:?} (examples: 5000, 200k, 1.5M)"))?;
    let value = value * scale;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("number {text:?} out of range"));
    }
    Ok(value)
}

fn parse_count(flag: &str, text: &str, min: usize, max: usize) -> Result<usize, String> {
    let value: usize = text
        .parse()
        .map_err(|_| format!("{flag}: expected a whole number, got {text:?}"))?;
    if !(min..=max).contains(&value) {
        return Err(format!("{flag}: {value} is outside {min}..={max}"));
    }
    Ok(value)
}

fn parse_fraction(flag: &str, text: &str, max: f64) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{flag}: expected a number, got {text:?}"))?;
    if !value.is_finite() || !(0.0..=max).contains(&value) {
        return Err(format!("{flag}: {value} is outside 0..={max}"));
    }
    Ok(value)
}

/// Splits `--flag=value` / `--flag value` arguments.
struct Args<'a> {
    args: &'a [String],
    pos: usize,
}

impl<'a> Args<'a> {
    /// The next flag and an inline `=value`, if any.
    fn next_flag(&mut self) -> Option<(&'a str, Option<&'a str>)> {
        let arg = self.args.get(self.pos)?;
        self.pos += 1;
        match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => Some((flag, Some(value))),
            _ => Some((arg.as_str(), None)),
        }
    }

    fn value(&mut self, flag: &str, inline: Option<&'a str>) -> Result<&'a str, String> {
        if let Some(value) = inline {
            return Ok(value);
        }
        let value = self
            .args
            .get(self.pos)
            .ok_or_else(|| format!("{flag} needs a value"))?;
        self.pos += 1;
        Ok(value)
    }
}

fn no_value(flag: &str, inline: Option<&str>) -> Result<(), String> {
    match inline {
        Some(_) => Err(format!("{flag} takes no value")),
        None => Ok(()),
    }
}

/// Applies one load flag; `Ok(false)` if the flag is not a load flag.
fn load_flag<'a>(
    load: &mut LoadArgs,
    flag: &str,
    inline: Option<&'a str>,
    args: &mut Args<'a>,
) -> Result<bool, String> {
    let shape = &mut load.shape;
    match flag {
        "--endpoint" => load.endpoint = args.value(flag, inline)?.to_string(),
        "--tenant" => load.tenant = Some(args.value(flag, inline)?.to_string()),
        "--gzip" => {
            no_value(flag, inline)?;
            load.gzip = true;
        }
        "--request-timeout" => {
            load.request_timeout = parse_duration(args.value(flag, inline)?)?;
            if load.request_timeout.is_zero() {
                return Err("--request-timeout must be positive".into());
            }
        }
        "--rate" => {
            load.rate_spans_per_sec =
                parse_amount(args.value(flag, inline)?).map_err(|e| format!("--rate: {e}"))?
        }
        "--duration" => load.duration = parse_duration(args.value(flag, inline)?)?,
        "--connections" => {
            load.connections =
                parse_count(flag, args.value(flag, inline)?, 1, limits::CONNECTIONS_MAX)?
        }
        "--in-flight" => {
            load.in_flight = parse_count(flag, args.value(flag, inline)?, 1, limits::IN_FLIGHT_MAX)?
        }
        "--threads" => {
            load.threads = parse_count(flag, args.value(flag, inline)?, 1, limits::THREADS_MAX)?
        }
        "--services" => {
            shape.services = parse_count(flag, args.value(flag, inline)?, 1, limits::SERVICES_MAX)?
        }
        "--spans-per-trace" => {
            shape.spans_per_trace = parse_count(
                flag,
                args.value(flag, inline)?,
                1,
                limits::SPANS_PER_TRACE_MAX,
            )?
        }
        "--traces-per-request" => {
            shape.traces_per_request = parse_count(
                flag,
                args.value(flag, inline)?,
                1,
                limits::TRACES_PER_REQUEST_MAX,
            )?
        }
        "--attributes" => {
            shape.attributes =
                parse_count(flag, args.value(flag, inline)?, 0, limits::ATTRIBUTES_MAX)?
        }
        "--events-per-span" => {
            shape.events_per_span =
                parse_fraction(flag, args.value(flag, inline)?, limits::EVENTS_PER_SPAN_MAX)?
        }
        "--error-rate" => shape.error_rate = parse_fraction(flag, args.value(flag, inline)?, 1.0)?,
        "--templates" => {
            load.templates = parse_count(flag, args.value(flag, inline)?, 1, limits::TEMPLATES_MAX)?
        }
        "--seed" => {
            let text = args.value(flag, inline)?;
            load.seed = text
                .parse()
                .map_err(|_| format!("--seed: expected a whole number, got {text:?}"))?;
            load.ids_deterministic = true;
        }
        "--record" => load.record = Some(PathBuf::from(args.value(flag, inline)?)),
        "--null-sink" => {
            no_value(flag, inline)?;
            load.null_sink = true;
        }
        "--max-error-ratio" => {
            load.max_error_ratio = parse_fraction(flag, args.value(flag, inline)?, 1.0)?
        }
        "--quiet" => {
            no_value(flag, inline)?;
            load.quiet = true;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn unknown(flag: &str) -> String {
    if flag.starts_with('-') {
        format!("unknown option {flag}")
    } else {
        format!("unexpected argument {flag:?}")
    }
}

fn parse_load(args: &[String]) -> Result<Command, String> {
    let mut load = LoadArgs::default();
    let mut it = Args { args, pos: 0 };
    while let Some((flag, inline)) = it.next_flag() {
        match flag {
            "-h" | "--help" => return Ok(Command::Help(HELP)),
            "-V" | "--version" => return Ok(Command::Version),
            _ if load_flag(&mut load, flag, inline, &mut it)? => {}
            _ => return Err(unknown(flag)),
        }
    }
    load.shape.validate()?;
    Ok(Command::Load(load))
}

fn parse_verify(args: &[String]) -> Result<Command, String> {
    let mut record = None;
    let mut verify = VerifyArgs {
        record: PathBuf::new(),
        http: "127.0.0.1:3200".to_string(),
        tenant: None,
        concurrency: 8,
        grace: Duration::ZERO,
        request_timeout: Duration::from_secs(10),
        quiet: false,
    };
    let mut it = Args { args, pos: 0 };
    while let Some((flag, inline)) = it.next_flag() {
        match flag {
            "-h" | "--help" => return Ok(Command::Help(VERIFY_HELP)),
            "--record" => record = Some(PathBuf::from(it.value(flag, inline)?)),
            "--http" => verify.http = it.value(flag, inline)?.to_string(),
            "--tenant" => verify.tenant = Some(it.value(flag, inline)?.to_string()),
            "--concurrency" => {
                verify.concurrency = parse_count(
                    flag,
                    it.value(flag, inline)?,
                    1,
                    limits::VERIFY_CONCURRENCY_MAX,
                )?
            }
            "--grace" => verify.grace = parse_duration(it.value(flag, inline)?)?,
            "--request-timeout" => {
                verify.request_timeout = parse_duration(it.value(flag, inline)?)?
            }
            "--quiet" => {
                no_value(flag, inline)?;
                verify.quiet = true;
            }
            _ => return Err(unknown(flag)),
        }
    }
    verify.record = record.ok_or("verify needs --record FILE")?;
    if verify.request_timeout.is_zero() {
        return Err("--request-timeout must be positive".into());
    }
    Ok(Command::Verify(verify))
}

fn parse_crash(args: &[String]) -> Result<Command, String> {
    let mut server_bin = None;
    let mut config = None;
    let mut crash = CrashArgs {
        server_bin: PathBuf::new(),
        config: PathBuf::new(),
        cycles: 3,
        http: "127.0.0.1:3200".to_string(),
        ready_timeout: Duration::from_secs(60),
        kill_after: None,
        server_log: None,
        grace: Duration::from_secs(5),
        concurrency: 8,
        final_verify: true,
        load: LoadArgs {
            duration: Duration::from_secs(5),
            ..LoadArgs::default()
        },
    };
    let mut it = Args { args, pos: 0 };
    while let Some((flag, inline)) = it.next_flag() {
        match flag {
            "-h" | "--help" => return Ok(Command::Help(CRASH_HELP)),
            "--server-bin" => server_bin = Some(PathBuf::from(it.value(flag, inline)?)),
            "--config" => config = Some(PathBuf::from(it.value(flag, inline)?)),
            "--cycles" => crash.cycles = parse_count(flag, it.value(flag, inline)?, 1, 100_000)?,
            "--http" => crash.http = it.value(flag, inline)?.to_string(),
            "--ready-timeout" => crash.ready_timeout = parse_duration(it.value(flag, inline)?)?,
            "--kill-after" => crash.kill_after = Some(parse_duration(it.value(flag, inline)?)?),
            "--server-log" => crash.server_log = Some(PathBuf::from(it.value(flag, inline)?)),
            "--grace" => crash.grace = parse_duration(it.value(flag, inline)?)?,
            "--concurrency" => {
                crash.concurrency = parse_count(
                    flag,
                    it.value(flag, inline)?,
                    1,
                    limits::VERIFY_CONCURRENCY_MAX,
                )?
            }
            "--no-final-verify" => {
                no_value(flag, inline)?;
                crash.final_verify = false;
            }
            "--null-sink" => return Err("crash cannot use --null-sink".into()),
            _ if load_flag(&mut crash.load, flag, inline, &mut it)? => {}
            _ => return Err(unknown(flag)),
        }
    }
    crash.server_bin = server_bin.ok_or("crash needs --server-bin PATH")?;
    crash.config = config.ok_or("crash needs --config FILE")?;
    crash.load.shape.validate()?;
    if crash.load.duration.is_zero() {
        return Err("crash needs a positive --duration".into());
    }
    if let Some(kill_after) = crash.kill_after {
        if kill_after >= crash.load.duration {
            return Err("--kill-after must be shorter than --duration".into());
        }
    }
    Ok(Command::Crash(crash))
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    match args.first().map(String::as_str) {
        Some("verify") => parse_verify(args.get(1..).unwrap_or_default()),
        Some("crash") => parse_crash(args.get(1..).unwrap_or_default()),
        Some("help") => Ok(Command::Help(HELP)),
        _ => parse_load(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn defaults() {
        assert_eq!(parse(&[]), Ok(Command::Load(LoadArgs::default())));
        let d = LoadArgs::default();
        assert_eq!(d.shape, Shape::default());
        assert_eq!((d.connections, d.in_flight, d.threads), (4, 16, 1));
    }

    #[test]
    fn load_flags_both_syntaxes() {
        let Ok(Command::Load(load)) = parse(&args(
            "--rate 200k --duration=2m --gzip --tenant t1 --endpoint 10.0.0.1:4317 \
             --spans-per-trace 20 --events-per-span 1.5 --error-rate=0 --record out.txt --seed 9",
        )) else {
            panic!("parses");
        };
        assert_eq!(load.rate_spans_per_sec, 200_000.0);
        assert_eq!(load.duration, Duration::from_secs(120));
        assert!(load.gzip);
        assert_eq!(load.tenant.as_deref(), Some("t1"));
        assert_eq!(load.endpoint, "10.0.0.1:4317");
        assert_eq!(load.shape.spans_per_trace, 20);
        assert_eq!(load.shape.events_per_span, 1.5);
        assert_eq!(load.shape.error_rate, 0.0);
        assert_eq!(load.record, Some(PathBuf::from("out.txt")));
        assert_eq!(load.seed, 9);
    }

    #[test]
    fn bad_usage_is_explained() {
        for (line, needle) in [
            ("--rate", "needs a value"),
            ("--rate fast", "bad number"),
            ("--connections 0", "outside"),
            ("--error-rate 2", "outside"),
            ("--duration 10x", "unit"),
            ("--bogus", "unknown option"),
            ("stray", "unexpected argument"),
            ("--gzip=yes", "takes no value"),
            ("verify", "needs --record"),
            ("crash --config c.yaml", "needs --server-bin"),
            (
                "crash --server-bin s --config c --duration 2s --kill-after 3s",
                "shorter",
            ),
        ] {
            let err = parse(&args(line)).expect_err(line);
            assert!(err.contains(needle), "{line}: {err}");
        }
    }

    #[test]
    fn subcommands() {
        let Ok(Command::Verify(v)) = parse(&args(
            "verify --record r.txt --http 1.2.3.4:3200 --tenant a --concurrency 3",
        )) else {
            panic!("parses");
        };
        assert_eq!(v.record, PathBuf::from("r.txt"));
        assert_eq!((v.http.as_str(), v.concurrency), ("1.2.3.4:3200", 3));
        assert_eq!(v.tenant.as_deref(), Some("a"));

        let Ok(Command::Crash(c)) = parse(&args(
            "crash --server-bin ./allegro --config a.yaml --cycles 5 --rate 1M --endpoint h:1",
        )) else {
            panic!("parses");
        };
        assert_eq!(c.cycles, 5);
        assert_eq!(c.load.rate_spans_per_sec, 1e6);
        assert_eq!(c.load.endpoint, "h:1");
        assert_eq!(c.load.duration, Duration::from_secs(5));
        assert!(c.final_verify);

        assert_eq!(parse(&args("--help")), Ok(Command::Help(HELP)));
        assert_eq!(parse(&args("verify -h")), Ok(Command::Help(VERIFY_HELP)));
        assert_eq!(parse(&args("crash --help")), Ok(Command::Help(CRASH_HELP)));
        assert_eq!(parse(&args("-V")), Ok(Command::Version));
    }

    #[test]
    fn value_parsers() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_amount("1.5M"), Ok(1_500_000.0));
        assert_eq!(parse_amount("0"), Ok(0.0));
        assert!(parse_amount("-5").is_err());
        assert!(parse_amount("k").is_err());
    }

    #[test]
    fn help_fits_90_columns() {
        for text in [HELP, VERIFY_HELP, CRASH_HELP] {
            for line in text.lines() {
                assert!(line.chars().count() <= 90, "too wide: {line}");
            }
        }
    }
}

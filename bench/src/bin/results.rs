//! Writes `bench/RESULTS.md`: the machine, the physical yardsticks measured on it, every
//! micro-benchmark line, and Allegro end to end (release server on one pinned core, the
//! loadgen on another), each figure next to its yardstick and the targets of issue #4.
//!
//! `bench/run.sh` builds the release binaries and runs this. Every number in the file comes
//! from this run; the exact commands are written next to the figures.
//!
//! ```text
//! results [--out FILE] [--quick] [--skip-e2e] [--keep-dir]
//!         [--server-bin PATH] [--loadgen-bin PATH] [--server-cpu N] [--loadgen-cpu N]
//! ```

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use allegro_bench::e2e::{self, LoadRun, Outcome};
use allegro_bench::suites;
use allegro_bench::{
    format_count, format_ns, format_rate, scratch_dir, workspace_dir, Case, Config, Entry, Report,
    Suite,
};

/// The targets of issue #4 and Tempo 2.7.2's measured figures quoted there (not measured
/// on this machine).
const TARGET_SPANS_PER_CPU_S: f64 = 1_000_000.0;
const TARGET_P99_MS: f64 = 5.0;
const TARGET_RSS_BYTES: u64 = 200_000_000;
const TARGET_RSS_RATE: u64 = 200_000;
const TEMPO_SPANS_PER_CPU_S: &str = "58k";
const TEMPO_P99: &str = "160-180 ms";
const TEMPO_RSS: &str = "1.1 GB";

struct Args {
    out: PathBuf,
    /// How long to wait for idle cores before the micro-benchmarks and before end to end.
    wait_quiet: Duration,
    quick: bool,
    skip_e2e: bool,
    keep_dir: bool,
    server_bin: PathBuf,
    loadgen_bin: PathBuf,
    server_cpu: usize,
    loadgen_cpu: usize,
}

const USAGE: &str =
    "usage: results [--out FILE] [--quick] [--wait-quiet SECS] [--skip-e2e] [--keep-dir] \
[--server-bin PATH] [--loadgen-bin PATH] [--server-cpu N] [--loadgen-cpu N]";

fn parse_args() -> Result<Args, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("target"));
    let mut args = Args {
        out: workspace_dir().join("bench").join("RESULTS.md"),
        wait_quiet: Duration::from_secs(60),
        quick: false,
        skip_e2e: false,
        keep_dir: false,
        server_bin: target.join("release").join("allegro"),
        loadgen_bin: target.join("release").join("loadgen"),
        server_cpu: 0,
        loadgen_cpu: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--out" => args.out = PathBuf::from(value("--out")?),
            "--quick" => args.quick = true,
            "--wait-quiet" => {
                let secs: u64 = value("--wait-quiet")?
                    .parse()
                    .map_err(|e| format!("--wait-quiet: {e}"))?;
                args.wait_quiet = Duration::from_secs(secs);
            }
            "--skip-e2e" => args.skip_e2e = true,
            "--keep-dir" => args.keep_dir = true,
            "--server-bin" => args.server_bin = PathBuf::from(value("--server-bin")?),
            "--loadgen-bin" => args.loadgen_bin = PathBuf::from(value("--loadgen-bin")?),
            "--server-cpu" => {
                args.server_cpu = value("--server-cpu")?
                    .parse()
                    .map_err(|e| format!("--server-cpu: {e}"))?
            }
            "--loadgen-cpu" => {
                args.loadgen_cpu = value("--loadgen-cpu")?
                    .parse()
                    .map_err(|e| format!("--loadgen-cpu: {e}"))?
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            // `cargo bench` style flags are ignored.
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("{err}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let config = if args.quick {
        Config::quick()
    } else {
        Config::full()
    };
    let machine = machine();
    eprintln!("== machine\n{}", machine.summary());

    let quiet_micro = wait_quiet(&args);
    eprintln!("== yardsticks: memcpy");
    let memcpy_cache = memcpy_yardstick(&config, 64 << 10);
    let memcpy_dram = memcpy_yardstick(&config, 256 << 20);

    let mut report = Report::new(true);
    let suites: [(&str, Suite); 4] = [
        ("hpack", suites::hpack::run),
        ("frames", suites::frames::run),
        ("otlp", suites::otlp::run),
        ("wal", suites::wal::run),
    ];
    let mut suite_times = Vec::new();
    for (name, suite) in suites {
        eprintln!("== micro-benchmarks: {name}");
        let start = Instant::now();
        suite(&config, &mut report);
        suite_times.push((name, start.elapsed()));
    }

    let mut quiet_e2e = None;
    let e2e = if args.skip_e2e {
        None
    } else {
        eprintln!("== end to end");
        quiet_e2e = Some(wait_quiet(&args));
        let settings = e2e_settings(&args);
        let outcome = e2e::run(&settings, &mut |line| eprintln!("e2e: {line}"));
        if let Err(err) = &outcome {
            eprintln!("e2e failed: {err}");
        }
        Some((settings, outcome))
    };

    let markdown = render(&Rendering {
        args: &args,
        config: &config,
        machine: &machine,
        memcpy_cache: &memcpy_cache,
        memcpy_dram: &memcpy_dram,
        report: &report,
        suite_times: &suite_times,
        e2e: e2e.as_ref(),
        elapsed: started.elapsed(),
        quiet_micro,
        quiet_e2e,
    });
    if let Err(err) = std::fs::write(&args.out, markdown) {
        eprintln!("cannot write {}: {err}", args.out.display());
        std::process::exit(1);
    }
    eprintln!(
        "wrote {} in {:.0} s",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    if matches!(e2e, Some((_, Err(_)))) {
        std::process::exit(1);
    }
}

fn e2e_settings(args: &Args) -> e2e::Settings {
    let scale = |secs: u64| {
        if args.quick {
            Duration::from_secs(secs.div_ceil(3))
        } else {
            Duration::from_secs(secs)
        }
    };
    e2e::Settings {
        server_bin: args.server_bin.clone(),
        loadgen_bin: args.loadgen_bin.clone(),
        dir: scratch_dir().join(format!("e2e-{}", std::process::id())),
        keep_dir: args.keep_dir,
        server_cpu: args.server_cpu,
        loadgen_cpu: args.loadgen_cpu,
        null_sink: scale(3),
        warmup: scale(3),
        max_run: scale(10),
        latency_run: scale(10),
        rss_run: scale(15),
        rss_rate: TARGET_RSS_RATE,
        rss_sample: Duration::from_millis(250),
    }
}

/// memcpy of `bytes` between two buffers.
fn memcpy_yardstick(config: &Config, bytes: usize) -> Case {
    let src = vec![0x5au8; bytes];
    let mut dst = vec![0u8; bytes];
    Case::run(config, "memcpy", bytes as u64, 1, "copy", |n| {
        for _ in 0..n {
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst);
        }
    })
}

struct Machine {
    cores: usize,
    model: String,
    kernel: String,
    memory: String,
    date: String,
    rustc: String,
    commit: String,
    data_fs: String,
}

impl Machine {
    fn summary(&self) -> String {
        format!(
            "{} cores, {}, kernel {}, {} RAM, {}, {}",
            self.cores, self.model, self.kernel, self.memory, self.rustc, self.date
        )
    }
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{:.1} GiB", kb as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "unknown".to_string());
    let workspace = workspace_dir();
    let workspace = workspace.to_string_lossy();
    let head = command_output("git", &["-C", &workspace, "rev-parse", "--short", "HEAD"]);
    let dirty = command_output("git", &["-C", &workspace, "status", "--porcelain"]);
    let commit = if dirty.is_empty() || dirty == "unknown" {
        head
    } else {
        format!("{head} + uncommitted changes")
    };
    Machine {
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        model,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".to_string()),
        memory,
        date: command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        rustc: command_output("rustc", &["-V"]),
        commit,
        data_fs: allegro_bench::filesystem_of(&scratch_dir()),
    }
}

struct Rendering<'a> {
    args: &'a Args,
    config: &'a Config,
    machine: &'a Machine,
    memcpy_cache: &'a Case,
    memcpy_dram: &'a Case,
    report: &'a Report,
    suite_times: &'a [(&'static str, Duration)],
    e2e: Option<&'a (e2e::Settings, Result<Outcome, String>)>,
    elapsed: Duration,
    /// Whether the cores were idle before each part, and how long that took to see.
    quiet_micro: (bool, Duration),
    quiet_e2e: Option<(bool, Duration)>,
}

/// Waits for idle cores (see [`e2e::wait_for_quiet`]), saying so on stderr.
fn wait_quiet(args: &Args) -> (bool, Duration) {
    if args.wait_quiet.is_zero() {
        return (false, Duration::ZERO);
    }
    eprintln!(
        "== waiting up to {} s for idle cores",
        args.wait_quiet.as_secs()
    );
    let (quiet, waited) = e2e::wait_for_quiet(args.wait_quiet);
    eprintln!(
        "{} after {:.0} s",
        if quiet { "idle" } else { "still busy" },
        waited.as_secs_f64()
    );
    (quiet, waited)
}

fn quiet_text(quiet: (bool, Duration), args: &Args) -> String {
    match quiet {
        _ if args.wait_quiet.is_zero() => "not checked (`--wait-quiet 0`)".to_string(),
        (true, waited) => format!(
            "every core under 10% busy for 6 s (after waiting {:.0} s)",
            waited.as_secs_f64()
        ),
        (false, waited) => format!(
            "**busy**: the cores were not idle within {:.0} s; other processes ran during the measurements",
            waited.as_secs_f64()
        ),
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

fn ms(us: f64) -> String {
    format!("{:.2} ms", us / 1000.0)
}

/// `met` / `MISSED` with the ratio to the target.
fn verdict(met: bool, detail: String) -> String {
    if met {
        format!("met ({detail})")
    } else {
        format!("**MISSED** ({detail})")
    }
}

fn render(r: &Rendering<'_>) -> String {
    let mut md = String::new();
    let m = r.machine;
    let w = &mut md;
    let _ = writeln!(w, "# Allegro benchmark results\n");
    let _ = writeln!(
        w,
        "Written by `bench/run.sh` ({}) on {}, in {:.0} s. Every figure below comes from that \
         run, with the command that produced it; nothing is edited by hand. Re-run the script \
         to refresh this file.\n",
        if r.args.quick {
            "`--quick`: shorter runs, rough figures"
        } else {
            "full run"
        },
        m.date,
        r.elapsed.as_secs_f64()
    );

    let _ = writeln!(w, "## Machine\n");
    let _ = writeln!(w, "| | |\n|---|---|");
    let _ = writeln!(w, "| cores | {} (available to the process) |", m.cores);
    let _ = writeln!(w, "| CPU model (/proc/cpuinfo) | {} |", m.model);
    let _ = writeln!(w, "| kernel | {} |", m.kernel);
    let _ = writeln!(w, "| memory | {} |", m.memory);
    let _ = writeln!(
        w,
        "| data dir | `{}`: {} |",
        scratch_dir().display(),
        m.data_fs
    );
    let _ = writeln!(w, "| toolchain | {} (release profile: thin LTO) |", m.rustc);
    let _ = writeln!(w, "| commit | {} |", m.commit);
    let _ = writeln!(w, "| date | {} |", m.date);
    let _ = writeln!(
        w,
        "| before the micro-benchmarks | {} |",
        quiet_text(r.quiet_micro, r.args)
    );
    if let Some(quiet) = r.quiet_e2e {
        let _ = writeln!(w, "| before end to end | {} |", quiet_text(quiet, r.args));
    }
    let _ = writeln!(w);

    let walk = r.report.find("otlp", "protobuf tag walk");
    let split = r.report.find("otlp", "allegro split_export");
    let prost = r.report.find("otlp", "prost full decode");
    let always_4k = r
        .report
        .find("wal", "append 4 KiB, fsync=always (yardstick)");
    let always_64k = r
        .report
        .find("wal", "append 64 KiB, fsync=always (yardstick)");

    // Headline.
    let _ = writeln!(w, "## Against the targets (issue #4)\n");
    match r.e2e {
        None => {
            let _ = writeln!(w, "End to end was skipped (`--skip-e2e`).\n");
        }
        Some((_, Err(err))) => {
            let _ = writeln!(w, "End to end **failed**: \n\n```text\n{err}\n```\n");
        }
        Some((settings, Ok(o))) => headline(w, settings, o, walk, split, always_64k),
    }

    observations(w, r);

    // Yardsticks.
    let _ = writeln!(w, "## Physical yardsticks on this machine\n");
    let _ = writeln!(w, "| yardstick | measured | how |\n|---|---|---|");
    let _ = writeln!(
        w,
        "| memcpy, in cache (64 KiB) | {} | `results`: copy_from_slice, median of {} runs |",
        format_rate(r.memcpy_cache.bytes_per_sec()),
        r.config.runs
    );
    let _ = writeln!(
        w,
        "| memcpy, DRAM (256 MiB) | {} | same |",
        format_rate(r.memcpy_dram.bytes_per_sec())
    );
    for (line, size) in [(always_4k, "4 KiB"), (always_64k, "64 KiB")] {
        if let Some(line) = line {
            let c = &line.subject;
            let _ = writeln!(
                w,
                "| group commit: {size} pwrite + fdatasync, data dir | {}, {} appends/s ({}/append) | `cargo bench -p allegro-bench --bench wal` (std::fs line) |",
                format_rate(c.bytes_per_sec()),
                format_count(c.items_per_sec()),
                format_ns(c.ns_per_item())
            );
        }
    }
    if let Some(line) = walk {
        let c = &line.subject;
        let _ = writeln!(
            w,
            "| protobuf scan (tag walk of Export requests, 1 core) | {} per core, {} spans/s per core | `cargo bench -p allegro-bench --bench otlp` |",
            format_rate(c.bytes_per_sec()),
            format_count(c.items_per_sec())
        );
    }
    if let Some(line) = prost {
        let c = &line.subject;
        let _ = writeln!(
            w,
            "| prost full decode (reference, 1 core) | {} per core, {} spans/s per core | same |",
            format_rate(c.bytes_per_sec()),
            format_count(c.items_per_sec())
        );
    }
    if let Some(line) = split {
        let c = &line.subject;
        let _ = writeln!(
            w,
            "| allegro split_export (1 core) | {} per core, {} spans/s per core | same |",
            format_rate(c.bytes_per_sec()),
            format_count(c.items_per_sec())
        );
    }
    let _ = writeln!(w);

    // End to end, in full.
    if let Some((settings, Ok(o))) = r.e2e {
        end_to_end(w, settings, o);
    }

    // Micro-benchmarks.
    let _ = writeln!(w, "## Micro-benchmarks\n");
    let _ = writeln!(
        w,
        "Each line: suite | case | subject: median time per item (best of {} runs of ~{} ms \
         after a {} ms warm-up), throughput | each baseline the same way => how the subject \
         compares. Run one suite with `cargo bench -p allegro-bench --bench <suite>` (the WAL \
         suite uses 3 runs of 150-300 ms per case). Suite times: {}.\n",
        r.config.runs,
        r.config.run_time.as_millis(),
        r.config.warmup.as_millis(),
        r.suite_times
            .iter()
            .map(|(name, d)| format!("{name} {:.0} s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(w, "```text");
    for entry in &r.report.entries {
        match entry {
            Entry::Note(note) => {
                let _ = writeln!(w, "# {note}");
            }
            Entry::Line(line) => {
                let _ = writeln!(w, "{line}");
            }
        }
    }
    let _ = writeln!(w, "```\n");
    md
}

fn headline(
    w: &mut String,
    settings: &e2e::Settings,
    o: &Outcome,
    walk: Option<&allegro_bench::Line>,
    split: Option<&allegro_bench::Line>,
    always_64k: Option<&allegro_bench::Line>,
) {
    let cores = format!(
        "server on core {} (`taskset -c {}`, `allegro.shards: 1`, `wal_fsync: always`), loadgen on core {} (`--threads 1`)",
        settings.server_cpu, settings.server_cpu, settings.loadgen_cpu
    );
    let _ = writeln!(
        w,
        "{cores}; commands and raw results in [End to end](#end-to-end).\n"
    );
    let _ = writeln!(
        w,
        "| figure | Allegro, this run | target | Tempo 2.7.2 (issue #4, not measured here) | yardstick on this machine | verdict |\n|---|---|---|---|---|---|"
    );

    let max = &o.max;
    let per_cpu = if max.server_cpu_s > 0.0 {
        max.spans_per_cpu_s()
    } else {
        0.0
    };
    let busy = max.server_cpu_s / max.wall_s.max(1e-9);
    let _ = writeln!(
        w,
        "| spans per server CPU-second, fsync=always | {} ({} spans in {:.2} CPU-s, server core {:.0}% busy) | >= 1M | {TEMPO_SPANS_PER_CPU_S} | split_export alone: {}; protobuf tag walk: {} spans/s per core | {} |",
        format_count(per_cpu),
        format_count(max.spans_acked() as f64),
        max.server_cpu_s,
        busy * 100.0,
        split.map_or("-".into(), |l| format!("{} spans/s per core", format_count(l.subject.items_per_sec()))),
        walk.map_or("-".into(), |l| format_count(l.subject.items_per_sec())),
        if max.spans_acked() == 0 {
            "**MISSED** (no span acknowledged)".to_string()
        } else {
            verdict(
                per_cpu >= TARGET_SPANS_PER_CPU_S,
                format!("{:.0}% of target", per_cpu / TARGET_SPANS_PER_CPU_S * 100.0),
            )
        }
    );
    let seconds = max.acked_per_second();
    let stalled = seconds.iter().filter(|&&n| n == 0).count();
    let _ = writeln!(
        w,
        "| max spans/s (1 server core, fsync=always), acked, averaged over the run | {} spans/s (best second {}; {stalled} of {} seconds with nothing acknowledged; {} failed requests), export p99 {} | - | - | the loadgen building requests alone (`--null-sink`, no HTTP/2): {} spans/s | {} |",
        format_count(max.spans_per_sec()),
        format_count(seconds.iter().copied().max().unwrap_or(0) as f64),
        seconds.len(),
        max.number("requests_failed").unwrap_or(0.0),
        max.number("p99_us").map_or("-".into(), ms),
        format_count(o.null_sink.number("spans_per_sec").unwrap_or(0.0)),
        limited_by(o, busy)
    );
    let Some(lat) = &o.latency else {
        let _ = writeln!(
            w,
            "| export p99 at 50% of max | not measured: the max run acknowledged nothing | < 5 ms | {TEMPO_P99} | - | **MISSED** (the server stopped answering) |"
        );
        let _ = writeln!(
            w,
            "| RSS at steady state | not measured (peak {}) | < 200 MB at 200k spans/s | {TEMPO_RSS} | - | **not measured** |",
            o.rss_peak_bytes.map_or("-".into(), mb)
        );
        disk_row(w, o);
        return;
    };
    let p99_us = lat.number("p99_us").unwrap_or(f64::NAN);
    let ok = lat.number("requests_ok").unwrap_or(0.0);
    let _ = writeln!(
        w,
        "| export p99 at 50% of max ({} spans/s) | {} (p50 {}, p99.9 {}; from schedule: p99 {}) | < 5 ms | {TEMPO_P99} | fdatasync of a 64 KiB group commit: {} | {} |",
        format_count(lat.number("target_spans_per_sec").unwrap_or(0.0)),
        ms(p99_us),
        lat.number("p50_us").map_or("-".into(), ms),
        lat.number("p999_us").map_or("-".into(), ms),
        lat.number("sched_p99_us").map_or("-".into(), ms),
        always_64k.map_or("-".into(), |l| format_ns(l.subject.ns_per_item())),
        if ok == 0.0 {
            "**MISSED** (no request succeeded)".to_string()
        } else {
            verdict(
                p99_us / 1000.0 < TARGET_P99_MS,
                format!("{:.1}x the target", p99_us / 1000.0 / TARGET_P99_MS),
            )
        }
    );
    match &o.rss {
        Some(run) => {
            let steady = run.rss_steady_bytes().unwrap_or(0);
            let _ = writeln!(
                w,
                "| RSS at steady state, {} spans/s | {} (max {} during the run) | < 200 MB at 200k spans/s | {TEMPO_RSS} | live-trace cap `allegro.live_traces_bytes_max` (default {} MiB) | {} |",
                format_count(run.number("spans_per_sec").unwrap_or(0.0)),
                mb(steady),
                mb(run.rss_max_bytes().unwrap_or(0)),
                allegro_config::defaults::LIVE_TRACES_BYTES_MAX >> 20,
                verdict(
                    steady < TARGET_RSS_BYTES,
                    format!("{:.0}% of target", steady as f64 / TARGET_RSS_BYTES as f64 * 100.0)
                )
            );
        }
        None => {
            let steady = lat.rss_steady_bytes().unwrap_or(0);
            let _ = writeln!(
                w,
                "| RSS at steady state | {} at {} spans/s (the 50% run; max {} during it); 200k spans/s is above this server's max here | < 200 MB at 200k spans/s | {TEMPO_RSS} | live-trace cap `allegro.live_traces_bytes_max` (default {} MiB) | **not measured at the target rate** ({}) |",
                mb(steady),
                format_count(lat.number("spans_per_sec").unwrap_or(0.0)),
                mb(lat.rss_max_bytes().unwrap_or(0)),
                allegro_config::defaults::LIVE_TRACES_BYTES_MAX >> 20,
                match (steady < TARGET_RSS_BYTES, lat.rss_max_bytes().unwrap_or(0) < TARGET_RSS_BYTES) {
                    (true, true) => "below 200 MB at the lower rate",
                    (true, false) => "steady state below 200 MB at the lower rate, peaks above",
                    (false, _) => "already above 200 MB at the lower rate",
                }
            );
        }
    }
    disk_row(w, o);
}

fn disk_row(w: &mut String, o: &Outcome) {
    let spans = o.spans_acked_total();
    let on_disk = o.wal_bytes_allocated + o.blocks_bytes_allocated;
    let per_span = on_disk as f64 / spans.max(1) as f64;
    let wire = o.max.number("bytes_per_span").unwrap_or(0.0);
    let wal_written = match (
        o.metric("allegro_wal_bytes_total"),
        o.metric("allegro_spans_received_total"),
    ) {
        (Some(bytes), Some(received)) if received > 0.0 => {
            format!(
                "; written to the WAL: {:.0} B per span received",
                bytes / received
            )
        }
        _ => String::new(),
    };
    let _ = writeln!(
        w,
        "| bytes on disk per span, WAL + blocks, after the runs | {per_span:.0} B ({} WAL + {} blocks allocated / {} spans acked){wal_written} | - | - | OTLP request bytes per span: {wire:.0} B | {:.2}x the request bytes |",
        mb(o.wal_bytes_allocated),
        mb(o.blocks_bytes_allocated),
        format_count(spans as f64),
        per_span / wire.max(1.0)
    );
    let _ = writeln!(w);
}

/// What bounds the max run, from the CPU use of both processes.
fn limited_by(o: &Outcome, busy: f64) -> String {
    let loadgen = o.max.loadgen_cpu_s / o.max.wall_s.max(1e-9);
    if o.max.spans_acked() == 0 {
        "**the server stopped answering** (its log below)".to_string()
    } else if busy >= 0.9 {
        format!(
            "server-bound: server core {:.0}% busy, loadgen core {:.0}%",
            busy * 100.0,
            loadgen * 100.0
        )
    } else if loadgen >= 0.9 {
        format!(
            "loadgen-bound: loadgen core {:.0}% busy, server core {:.0}%",
            loadgen * 100.0,
            busy * 100.0
        )
    } else {
        format!(
            "neither core saturated (server {:.0}%, loadgen {:.0}%): waits (fsync, stalls) bound it",
            busy * 100.0,
            loadgen * 100.0
        )
    }
}

fn run_row(w: &mut String, run: &LoadRun) {
    let n = |key: &str| run.number(key).unwrap_or(f64::NAN);
    let _ = writeln!(
        w,
        "| {} | {} | {} | {} | {} | {} | {:.2} | {} | {} | {:.2} | {:.2} / {:.2}, {:.2} |",
        run.name,
        format_count(n("spans_per_sec")),
        format_count(n("spans_acked")),
        n("requests_failed"),
        ms(n("p50_us")),
        ms(n("p99_us")),
        run.server_cpu_s,
        if run.server_cpu_s > 0.0 {
            format_count(run.spans_per_cpu_s())
        } else {
            "-".into()
        },
        run.rss_steady_bytes().map_or("-".into(), mb),
        run.loadgen_cpu_s,
        run.server_core_other_s,
        run.loadgen_core_other_s,
        run.steal_s
    );
}

fn end_to_end(w: &mut String, settings: &e2e::Settings, o: &Outcome) {
    let _ = writeln!(w, "## End to end\n");
    let _ = writeln!(
        w,
        "The release server, config below, in a fresh directory under the data dir; each \
         loadgen run is a separate process with the same defaults (4 connections x 16 streams, \
         10 traces x 10 spans per request, ~430 B/span). Server CPU = utime + stime from \
         `/proc/<pid>/stat` before and after each run; RSS = `VmRSS` from `/proc/<pid>/status` \
         every {} ms, steady state = median of the second half of the run.\n",
        settings.rss_sample.as_millis()
    );
    let _ = writeln!(
        w,
        "Server:\n\n```text\n{}\n{}\n```\n",
        o.server_command, o.server_listening
    );
    let _ = writeln!(
        w,
        "Config (`tempo.yaml`):\n\n```yaml\n{}```\n",
        o.config_yaml
    );
    let _ = writeln!(
        w,
        "| run | acked spans/s | spans acked | failed requests | p50 | p99 | server CPU-s | spans per CPU-s | RSS steady | loadgen CPU-s | other CPU-s on server / loadgen core, steal |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for run in std::iter::once(&o.null_sink).chain(o.server_runs()) {
        run_row(w, run);
    }
    let _ = writeln!(w);
    let _ = writeln!(w, "Commands and `RESULT` lines, verbatim:\n\n```text");
    for run in std::iter::once(&o.null_sink).chain(o.server_runs()) {
        let _ = writeln!(
            w,
            "$ {}\n# exit {:?}, {:.1} s wall, server {:.2} CPU-s, loadgen {:.2} CPU-s\nRESULT {}\n",
            run.command, run.exit_code, run.wall_s, run.server_cpu_s, run.loadgen_cpu_s, run.result
        );
    }
    let _ = writeln!(w, "```\n");
    let _ = writeln!(
        w,
        "Timelines: spans acknowledged in each second (the loadgen's progress lines) and the \
         server's RSS at each second.\n"
    );
    let _ = writeln!(w, "```text");
    for run in o.server_runs() {
        let acked: Vec<String> = run
            .acked_per_second()
            .iter()
            .map(|&n| format_count(n as f64))
            .collect();
        let mut rss = Vec::new();
        let mut next = 1.0;
        for &(at, bytes) in &run.rss_samples {
            if at >= next {
                rss.push(format!("{:.0}", bytes as f64 / 1e6));
                next += 1.0;
            }
        }
        let _ = writeln!(w, "{:<8} acked/s: {}", run.name, acked.join(" "));
        let _ = writeln!(w, "{:<8} RSS MB:  {}", run.name, rss.join(" "));
    }
    let _ = writeln!(w, "```\n");
    let _ = writeln!(w, "After the runs:\n");
    let _ = writeln!(
        w,
        "- WAL directory: {} files, {} allocated, {} apparent; block directory: {} allocated.",
        o.wal_files,
        mb(o.wal_bytes_allocated),
        mb(o.wal_bytes_apparent),
        mb(o.blocks_bytes_allocated)
    );
    let metric = |name: &str| o.metric(name);
    if let (Some(appends), Some(fsyncs), Some(bytes), Some(spans)) = (
        metric("allegro_wal_appends_total"),
        metric("allegro_wal_fsyncs_total"),
        metric("allegro_wal_bytes_total"),
        metric("allegro_spans_received_total"),
    ) {
        let _ = writeln!(
            w,
            "- Server `/metrics`: {} spans received, {} WAL appends (group commits), {} fsyncs, {} written: {:.0} spans and {:.1} KiB per group commit.",
            format_count(spans),
            format_count(appends),
            format_count(fsyncs),
            mb(bytes as u64),
            spans / appends.max(1.0),
            bytes / appends.max(1.0) / 1024.0
        );
    }
    let _ = writeln!(
        w,
        "- Peak RSS (VmHWM): {}. Server stop: {}.",
        o.rss_peak_bytes.map_or("-".into(), mb),
        o.server_exit
    );
    if o.server_warnings.is_empty() {
        let _ = writeln!(w, "- Server log: no WARN or ERROR lines.\n");
    } else {
        let _ = writeln!(
            w,
            "- Server log, WARN/ERROR/panic lines (first 20):\n\n```text"
        );
        for line in &o.server_warnings {
            let _ = writeln!(w, "{line}");
        }
        let _ = writeln!(w, "```\n");
    }
}

/// Statements computed from this run's figures (so that they stay true when it is re-run).
fn observations(w: &mut String, r: &Rendering<'_>) {
    let mut items = Vec::new();
    if let Some((_, Ok(o))) = r.e2e {
        let busy_neighbours: Vec<String> = std::iter::once(&o.null_sink)
            .chain(o.server_runs())
            .filter(|run| run.server_core_other_s + run.loadgen_core_other_s + run.steal_s > 0.05 * run.wall_s)
            .map(|run| {
                format!(
                    "{} run {:.2} s on the server's core, {:.2} s on the loadgen's, {:.2} s stolen, of {:.1} s",
                    run.name, run.server_core_other_s, run.loadgen_core_other_s, run.steal_s, run.wall_s
                )
            })
            .collect();
        if !busy_neighbours.is_empty() {
            items.push(format!(
                "The machine was not quiet: other processes (or the hypervisor) took CPU time \
                 from the measured cores ({}). Figures of those runs are pessimistic.",
                busy_neighbours.join("; ")
            ));
        }
        let seconds = o.max.acked_per_second();
        let stalled = seconds.iter().filter(|&&n| n == 0).count();
        if stalled > 0 {
            items.push(format!(
                "During the max run the server acknowledged nothing for {stalled} of {} seconds \
                 (its core {:.0}% busy over the run; peak RSS {}). See the timelines under \
                 [End to end](#end-to-end).",
                seconds.len(),
                o.max.server_cpu_s / o.max.wall_s.max(1e-9) * 100.0,
                o.rss_peak_bytes.map_or("-".into(), mb)
            ));
        }
        let panics = o
            .server_warnings
            .iter()
            .filter(|l| l.contains("panicked at"))
            .count();
        if panics > 0 {
            items.push(format!(
                "The server log holds {panics} panic(s) of a server thread (quoted under \
                 [End to end](#end-to-end)); the process stayed up but stopped answering."
            ));
        }
        let failed: f64 = o
            .server_runs()
            .filter_map(|run| run.number("requests_failed"))
            .sum();
        if failed > 0.0 {
            items.push(format!(
                "{failed:.0} Export requests failed across the runs (see the `errors` field of \
                 each `RESULT` line)."
            ));
        }
        let per_cpu: Vec<String> = o
            .server_runs()
            .filter(|run| run.server_cpu_s > 0.0)
            .map(|run| {
                format!(
                    "{} in the {} run",
                    format_count(run.spans_per_cpu_s()),
                    run.name
                )
            })
            .collect();
        if !per_cpu.is_empty() {
            items.push(format!(
                "Spans per server CPU-second by run: {} (the warm-up starts from an empty server).",
                per_cpu.join(", ")
            ));
        }
    }
    let std_never = r
        .report
        .find("wal", "append 4 KiB, fsync=never (yardstick)");
    let monoio_never = r
        .report
        .lines()
        .find(|l| l.title == "append 4 KiB, fsync=never" && l.subject.name.starts_with("monoio"));
    // Said only when io_uring is clearly the slower way to do a buffered append.
    let slow_uring = std_never.zip(monoio_never).filter(|(std_line, uring)| {
        uring.subject.ns_per_item() > 2.0 * std_line.subject.ns_per_item()
    });
    if let Some((std_line, monoio_line)) = slow_uring {
        items.push(format!(
            "Without fsync, a 4 KiB append through monoio (io_uring) takes {} against {} for a \
             plain pwrite: on this kernel and filesystem each buffered io_uring write costs \
             much more than a pwrite of the same bytes, so the WAL gains from writing few, large \
             group commits.",
            format_ns(monoio_line.subject.ns_per_item()),
            format_ns(std_line.subject.ns_per_item())
        ));
    }
    if let (Some(split), Some(prost)) = (
        r.report.find("otlp", "allegro split_export"),
        r.report.find("otlp", "prost full decode"),
    ) {
        let mut text = format!(
            "split_export scans {} spans/s on one core, {} prost's full decode",
            format_count(split.subject.items_per_sec()),
            allegro_bench::compare(&split.subject, &prost.subject)
                .replace("slower", "slower than")
                .replace("faster", "faster than"),
        );
        let end_to_end = r
            .e2e
            .and_then(|(_, o)| o.as_ref().ok())
            .filter(|o| o.max.spans_acked() > 0 && o.max.server_cpu_s > 0.0)
            .map(|o| o.max.spans_per_cpu_s());
        if let Some(rate) = end_to_end {
            text.push_str(&format!(
                "; end to end the server handles {} spans per CPU-second, so everything but \
                 the scan costs {:.1}x the scan",
                format_count(rate),
                split.subject.items_per_sec() / rate - 1.0
            ));
        }
        items.push(format!("{text}."));
    }
    if items.is_empty() {
        return;
    }
    let _ = writeln!(w, "Computed from this run:\n");
    for item in items {
        let _ = writeln!(w, "- {item}");
    }
    let _ = writeln!(w);
}

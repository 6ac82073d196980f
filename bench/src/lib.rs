//! Allegro's micro-benchmarks and the end-to-end script behind `bench/RESULTS.md`.
//!
//! No criterion (CI compiles every bench with `--all-targets`, and criterion's dependency tree
//! would dominate that): [`measure`] is the whole harness. It warms up while it calibrates a
//! batch size, then times [`Config::runs`] batches of about [`Config::run_time`] each and keeps
//! the median and the best nanoseconds per iteration. A [`Line`] prints one case next to its
//! baselines (memcpy of the same bytes, std::fs, prost, ...), so every figure carries the
//! yardstick it should be read against (house rule 11).
//!
//! Code map:
//!
//! - this file: [`Config`] (full, quick and smoke modes), [`measure`], [`Case`], [`Line`],
//!   [`Report`], and [`bench_main`], the `main` of every `benches/*.rs`.
//! - [`data`]: realistic inputs: OTLP Export requests from the loadgen's templates, and the
//!   bytes the `h2` crate's client (the loadgen's) writes for a run of Export calls.
//! - [`pbscan`]: the protobuf tag walk, the floor of any protobuf decoder (a yardstick).
//! - [`suites`]: `hpack`, `frames`, `otlp`, `wal`; the bench targets and the `results`
//!   binary both call them.
//! - [`e2e`]: the release server and the loadgen on pinned cores (used by `results`).
//!
//! Modes: `cargo bench` passes `--bench` to each target, which then measures ([`Config::full`],
//! or [`Config::quick`] with `ALLEGRO_BENCH_QUICK=1`). Without `--bench` (as `cargo test
//! --all-targets` runs them) every case runs once, as a smoke test that the code still works.

pub mod data;
pub mod e2e;
pub mod pbscan;
pub mod suites;

use std::fmt;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long and how often to measure.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Minimum time spent running the case before the timed runs (caches, branch
    /// predictors, page cache, CPU frequency).
    pub warmup: Duration,
    /// Timed runs; the median and the best are reported.
    pub runs: usize,
    /// Target length of one timed run.
    pub run_time: Duration,
    /// Run every case once and report that single iteration (a smoke test, not a figure).
    pub smoke: bool,
}

/// Limits of the harness itself.
pub const RUNS_MAX: usize = 100;
/// Calibration stops doubling the batch here, however fast an iteration is (an empty
/// closure would otherwise double forever).
pub const BATCH_ITERS_MAX: u64 = 1 << 32;
/// Longest run [`measure`] accepts: a bench must stay under ~30 s in all.
pub const RUN_TIME_MAX: Duration = Duration::from_secs(5);

impl Config {
    /// What `cargo bench` and the `results` binary use.
    pub fn full() -> Config {
        Config {
            warmup: Duration::from_millis(150),
            runs: 5,
            run_time: Duration::from_millis(150),
            smoke: false,
        }
    }

    /// `ALLEGRO_BENCH_QUICK=1`: a rough figure in a third of the time.
    pub fn quick() -> Config {
        Config {
            warmup: Duration::from_millis(30),
            runs: 3,
            run_time: Duration::from_millis(50),
            smoke: false,
        }
    }

    /// One iteration per case, no timing worth reading.
    pub fn smoke() -> Config {
        Config {
            warmup: Duration::ZERO,
            runs: 1,
            run_time: Duration::ZERO,
            smoke: true,
        }
    }

    /// The mode a bench target was started in: measuring under `cargo bench` (which passes
    /// `--bench`), a smoke test otherwise (`cargo test --all-targets`).
    pub fn from_env() -> Config {
        let bench = std::env::args().any(|arg| arg == "--bench");
        let quick = std::env::var_os("ALLEGRO_BENCH_QUICK").is_some_and(|v| v != "0");
        match (bench, quick) {
            (false, _) => Config::smoke(),
            (true, false) => Config::full(),
            (true, true) => Config::quick(),
        }
    }

    /// The same mode with runs of `run_time` (and a warm-up of `warmup`), for cases whose
    /// iterations are milliseconds long (fsync) and would otherwise make a bench too slow.
    pub fn with_times(self, warmup: Duration, runs: usize, run_time: Duration) -> Config {
        if self.smoke {
            return self;
        }
        Config {
            warmup,
            runs,
            run_time,
            smoke: false,
        }
    }

    fn check(&self) {
        assert!(
            self.runs >= 1 && self.runs <= RUNS_MAX,
            "runs: {}",
            self.runs
        );
        assert!(
            self.run_time <= RUN_TIME_MAX,
            "run_time: {:?}",
            self.run_time
        );
        assert!(self.warmup <= RUN_TIME_MAX, "warmup: {:?}", self.warmup);
    }
}

/// Timing of one case: nanoseconds per iteration.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub median_ns: f64,
    pub best_ns: f64,
    pub iters_per_run: u64,
    pub runs: usize,
}

/// Times `batch`, which must run its case `n` times when called with `n`.
///
/// Calibration doubles `n` until one batch takes a twentieth of a run and the warm-up time
/// has passed; each timed run then executes `run_time / (ns per iteration)` iterations.
pub fn measure(config: &Config, mut batch: impl FnMut(u64)) -> Stats {
    config.check();
    if config.smoke {
        let start = Instant::now();
        batch(1);
        let ns = start.elapsed().as_nanos() as f64;
        return Stats {
            median_ns: ns,
            best_ns: ns,
            iters_per_run: 1,
            runs: 1,
        };
    }
    let started = Instant::now();
    let calibrate_ns = (config.run_time.as_nanos() / 20).max(1) as f64;
    let mut n = 1u64;
    let per_iter_ns = loop {
        let start = Instant::now();
        batch(n);
        let ns = start.elapsed().as_nanos() as f64;
        if ns >= calibrate_ns || n >= BATCH_ITERS_MAX {
            if started.elapsed() >= config.warmup {
                break ns / n as f64;
            }
        } else {
            n *= 2;
        }
    };
    let iters = ((config.run_time.as_nanos() as f64 / per_iter_ns.max(0.001)) as u64)
        .clamp(1, BATCH_ITERS_MAX);
    let mut samples: Vec<f64> = (0..config.runs)
        .map(|_| {
            let start = Instant::now();
            batch(iters);
            start.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    Stats {
        median_ns: median(&samples),
        best_ns: samples[0],
        iters_per_run: iters,
        runs: config.runs,
    }
}

/// The median of sorted samples (the mean of the middle two for an even count).
pub fn median(sorted: &[f64]) -> f64 {
    assert!(!sorted.is_empty(), "median of nothing");
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// One measured case: what an iteration processes, and how long it took.
#[derive(Debug, Clone)]
pub struct Case {
    /// What ran, e.g. `memcpy` or `allegro split_export`.
    pub name: String,
    pub stats: Stats,
    /// Bytes one iteration processes (0: not a throughput case).
    pub bytes_per_iter: u64,
    /// Items (blocks, frames, spans, appends) one iteration processes.
    pub items_per_iter: u64,
    /// What an item is, singular: `block`, `span`, `append`.
    pub item: &'static str,
}

impl Case {
    /// Measures `batch` (see [`measure`]) and labels the result.
    pub fn run(
        config: &Config,
        name: impl Into<String>,
        bytes_per_iter: u64,
        items_per_iter: u64,
        item: &'static str,
        batch: impl FnMut(u64),
    ) -> Case {
        assert!(items_per_iter > 0, "a case processes at least one item");
        Case {
            name: name.into(),
            stats: measure(config, batch),
            bytes_per_iter,
            items_per_iter,
            item,
        }
    }

    /// Median nanoseconds per item.
    pub fn ns_per_item(&self) -> f64 {
        self.stats.median_ns / self.items_per_iter as f64
    }

    /// Best nanoseconds per item.
    pub fn best_ns_per_item(&self) -> f64 {
        self.stats.best_ns / self.items_per_iter as f64
    }

    /// Median throughput in bytes per second.
    pub fn bytes_per_sec(&self) -> f64 {
        self.bytes_per_iter as f64 * 1e9 / self.stats.median_ns
    }

    /// Median throughput in items per second.
    pub fn items_per_sec(&self) -> f64 {
        self.items_per_iter as f64 * 1e9 / self.stats.median_ns
    }

    fn render(&self) -> String {
        let mut out = format!(
            "{}: {}/{} (best {})",
            self.name,
            format_ns(self.ns_per_item()),
            self.item,
            format_ns(self.best_ns_per_item())
        );
        if self.bytes_per_iter > 0 {
            out.push_str(&format!(", {}", format_rate(self.bytes_per_sec())));
        }
        out.push_str(&format!(
            ", {} {}/s",
            format_count(self.items_per_sec()),
            self.item
        ));
        out
    }
}

/// One printed result: the measured case and the baselines it is compared with.
#[derive(Debug, Clone)]
pub struct Line {
    pub suite: &'static str,
    /// What is measured, with its input: `decode request block 1 (h2 client, 212 B)`.
    pub title: String,
    pub subject: Case,
    pub baselines: Vec<Case>,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} | {} | {}",
            self.suite,
            self.title,
            self.subject.render()
        )?;
        for base in &self.baselines {
            write!(
                f,
                " | vs {} => {}",
                base.render(),
                compare(&self.subject, base)
            )?;
        }
        Ok(())
    }
}

/// "3.2x slower" or "1.5x faster": the subject's time per item against the baseline's.
pub fn compare(subject: &Case, baseline: &Case) -> String {
    let ratio = subject.ns_per_item() / baseline.ns_per_item();
    if ratio >= 1.0 {
        format!("{ratio:.2}x slower")
    } else {
        format!("{:.2}x faster", 1.0 / ratio)
    }
}

/// Something a suite printed: a measured line, or a note about the setup.
#[derive(Debug, Clone)]
pub enum Entry {
    Note(String),
    Line(Line),
}

/// The output of one or more suites, printed as it is produced.
#[derive(Debug, Default)]
pub struct Report {
    pub entries: Vec<Entry>,
    /// Print each entry to stdout when it is added.
    pub echo: bool,
}

impl Report {
    pub fn new(echo: bool) -> Report {
        Report {
            entries: Vec::new(),
            echo,
        }
    }

    pub fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        if self.echo {
            println!("# {text}");
        }
        self.entries.push(Entry::Note(text));
    }

    pub fn line(&mut self, line: Line) {
        if self.echo {
            println!("{line}");
        }
        self.entries.push(Entry::Line(line));
    }

    /// The measured lines, in order.
    pub fn lines(&self) -> impl Iterator<Item = &Line> {
        self.entries.iter().filter_map(|entry| match entry {
            Entry::Line(line) => Some(line),
            Entry::Note(_) => None,
        })
    }

    /// The first line of `suite` whose title starts with `prefix`.
    pub fn find(&self, suite: &str, prefix: &str) -> Option<&Line> {
        self.lines()
            .find(|line| line.suite == suite && line.title.starts_with(prefix))
    }
}

/// A suite's entry point: measures its cases and adds them to the report.
pub type Suite = fn(&Config, &mut Report);

/// The `main` of a bench target: runs `suite` in the mode of [`Config::from_env`].
pub fn bench_main(name: &str, suite: Suite) {
    let config = Config::from_env();
    let mode = if config.smoke {
        "smoke test: one iteration per case (run with `cargo bench` to measure)"
    } else {
        "measuring"
    };
    println!(
        "# allegro-bench {name}: {mode}; {} runs of ~{} ms after {} ms warm-up; \
         median (best) per item",
        config.runs,
        config.run_time.as_millis(),
        config.warmup.as_millis()
    );
    let mut report = Report::new(true);
    let start = Instant::now();
    suite(&config, &mut report);
    println!("# {name}: done in {:.1} s", start.elapsed().as_secs_f64());
}

/// Copies `src` into `dst` `n` times: the memcpy yardstick of every suite.
pub fn memcpy_case(
    config: &Config,
    name: impl Into<String>,
    src: &[u8],
    items: u64,
    item: &'static str,
) -> Case {
    let mut dst = vec![0u8; src.len()];
    Case::run(config, name, src.len() as u64, items, item, |n| {
        for _ in 0..n {
            dst.copy_from_slice(black_box(src));
            black_box(&mut dst);
        }
    })
}

/// The workspace root (bench/..), where `target/` usually is.
pub fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where benches put files: `$ALLEGRO_BENCH_DIR`, else `target/allegro-bench` in the
/// workspace (on the data disk, unlike a `/tmp` that may be tmpfs). Created if missing.
pub fn scratch_dir() -> PathBuf {
    let dir = match std::env::var_os("ALLEGRO_BENCH_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_dir().join("target"));
            target.join("allegro-bench")
        }
    };
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|err| panic!("cannot create bench dir {}: {err}", dir.display()));
    dir
}

/// The filesystem type and device of the mount holding `path` (from /proc/mounts).
pub fn filesystem_of(path: &std::path::Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [device, mount_point, fs_type, ..] = fields[..] else {
            continue;
        };
        if path.starts_with(mount_point)
            && best
                .as_ref()
                .is_none_or(|(len, _)| mount_point.len() >= *len)
        {
            best = Some((
                mount_point.len(),
                format!("{fs_type} on {device} (mounted at {mount_point})"),
            ));
        }
    }
    best.map_or_else(|| "unknown filesystem".to_string(), |(_, text)| text)
}

/// Nanoseconds in a readable unit.
pub fn format_ns(ns: f64) -> String {
    if ns < 10.0 {
        format!("{ns:.2} ns")
    } else if ns < 10_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 10_000_000.0 {
        format!("{:.1} us", ns / 1e3)
    } else {
        format!("{:.1} ms", ns / 1e6)
    }
}

/// Bytes per second in MB/s or GB/s (decimal units).
pub fn format_rate(bytes_per_sec: f64) -> String {
    if bytes_per_sec >= 10e9 {
        format!("{:.1} GB/s", bytes_per_sec / 1e9)
    } else if bytes_per_sec >= 1e9 {
        format!("{:.2} GB/s", bytes_per_sec / 1e9)
    } else {
        format!("{:.0} MB/s", bytes_per_sec / 1e6)
    }
}

/// A count with a k/M/G suffix.
pub fn format_count(count: f64) -> String {
    if count >= 1e9 {
        format!("{:.2}G", count / 1e9)
    } else if count >= 1e6 {
        format!("{:.2}M", count / 1e6)
    } else if count >= 1e3 {
        format!("{:.1}k", count / 1e3)
    } else {
        format!("{count:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[1.0, 2.0, 10.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 10.0]), 3.0);
    }

    #[test]
    fn measure_runs_the_batch_in_every_mode() {
        for config in [Config::smoke(), Config::quick()] {
            let mut total = 0u64;
            let stats = measure(&config, |n| {
                for i in 0..n {
                    total = black_box(total + i % 2 + 1);
                }
            });
            assert!(total >= 1);
            assert_eq!(stats.runs, config.runs);
            assert!(stats.best_ns <= stats.median_ns);
        }
    }

    #[test]
    fn units() {
        assert_eq!(format_ns(5.0), "5.00 ns");
        assert_eq!(format_ns(1500.0), "1500 ns");
        assert_eq!(format_ns(25_000.0), "25.0 us");
        assert_eq!(format_rate(2.5e9), "2.50 GB/s");
        assert_eq!(format_rate(250e6), "250 MB/s");
        assert_eq!(format_count(1_234_567.0), "1.23M");
    }
}

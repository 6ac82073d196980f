//! The WAL: group-commit appends of 4 KiB to 64 KiB under each fsync policy, written the
//! way the shard writes them (positional write at the end of the segment, then fdatasync
//! under `always`, every `wal_fsync_interval` under `interval`, never under `never`; a new
//! segment file every `wal_segment_bytes_max`), through monoio (io_uring, what the server
//! uses), tokio-uring and std::fs (`pwrite` + `fdatasync`, the yardstick: what the disk and
//! filesystem give a plain synchronous writer). Then our record codec: `wal::encode_record`
//! and `wal::replay_segment` against crc32 (which both must compute) and memcpy.
//!
//! The files go to [`crate::scratch_dir`] (`target/allegro-bench`, on the data disk; set
//! `ALLEGRO_BENCH_DIR` to measure another disk).

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use allegro_config::defaults::{WAL_FSYNC_INTERVAL, WAL_SEGMENT_BYTES_MAX};
use allegro_engine::otlp::split_export;
use allegro_engine::wal::{self, RecordRef, ReplayEnd};
use allegro_engine::Tenant;

use crate::{data, memcpy_case, Case, Config, Line, Report};

const SUITE: &str = "wal";
/// Bytes of one group-commit write.
pub const APPEND_SIZES: [usize; 3] = [4 << 10, 16 << 10, 64 << 10];
/// Requests whose batches make the records of the codec cases.
const CODEC_REQUESTS: usize = 16;

/// When appends reach the disk; [`allegro_engine::FsyncPolicy`] with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Always,
    Interval(Duration),
    Never,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Always => "always",
            Policy::Interval(_) => "interval",
            Policy::Never => "never",
        }
    }
}

/// The policies measured, `interval` at the server's default period.
pub const POLICIES: [Policy; 3] = [
    Policy::Always,
    Policy::Interval(WAL_FSYNC_INTERVAL),
    Policy::Never,
];

/// Which writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Std,
    /// `pwrite` with `O_DIRECT` from a 4 KiB-aligned buffer: no copy into the page cache.
    StdDirect,
    Monoio,
    TokioUring,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Std => "std::fs pwrite + fdatasync",
            Backend::StdDirect => "std::fs O_DIRECT pwrite + fdatasync",
            Backend::Monoio => "monoio (io_uring) write_all_at + sync_data",
            Backend::TokioUring => "tokio-uring write_all_at + sync_data",
        }
    }
}

/// The title of an append line; `results` finds the std lines by it.
pub fn append_title(size: usize, policy: Policy) -> String {
    match policy {
        Policy::Interval(period) => format!(
            "append {} KiB, fsync={} ({} ms)",
            size >> 10,
            policy.name(),
            period.as_millis()
        ),
        _ => format!("append {} KiB, fsync={}", size >> 10, policy.name()),
    }
}

pub fn run(config: &Config, report: &mut Report) {
    let dir = scratch_subdir();
    report.note(format!(
        "wal dir: {} ({}); segments of {} MiB; every case appends from an empty segment",
        dir.display(),
        crate::filesystem_of(&dir),
        WAL_SEGMENT_BYTES_MAX >> 20
    ));
    let uring = uring_available();
    if let Err(err) = &uring {
        report.note(format!(
            "io_uring unavailable ({err}): monoio and tokio-uring skipped"
        ));
    }
    for policy in POLICIES {
        // Enough time per run for an interval policy to fsync at least once a run.
        let run_time = match policy {
            Policy::Interval(period) => (period * 3).min(Duration::from_millis(300)),
            Policy::Always | Policy::Never => Duration::from_millis(150),
        };
        let config = config.with_times(Duration::from_millis(50), 3, run_time);
        for size in APPEND_SIZES {
            let std_case = append_case(&config, &dir, Backend::Std, size, policy)
                .unwrap_or_else(|err| panic!("std::fs appends in {}: {err}", dir.display()));
            report.line(Line {
                suite: SUITE,
                title: format!("{} (yardstick)", append_title(size, policy)),
                subject: std_case.clone(),
                baselines: Vec::new(),
            });
            match append_case(&config, &dir, Backend::StdDirect, size, policy) {
                Ok(case) => report.line(Line {
                    suite: SUITE,
                    title: append_title(size, policy),
                    subject: case,
                    baselines: vec![std_case.clone()],
                }),
                Err(err) => report.note(format!("{}: {err}", Backend::StdDirect.name())),
            }
            if uring.is_err() {
                continue;
            }
            for backend in [Backend::Monoio, Backend::TokioUring] {
                match append_case(&config, &dir, backend, size, policy) {
                    Ok(case) => report.line(Line {
                        suite: SUITE,
                        title: append_title(size, policy),
                        subject: case,
                        baselines: vec![std_case.clone()],
                    }),
                    Err(err) => report.note(format!("{}: {err}", backend.name())),
                }
            }
        }
    }
    // The cost that matters beside the disk's: the CPU of the writing thread.
    for backend in [Backend::Std, Backend::StdDirect] {
        match thread_cpu_per_append(&dir, backend, 64 << 10, CPU_APPENDS) {
            Ok(cpu) => report.note(format!(
                "{}: {:.1} us of the writing thread's CPU per 64 KiB append, fsync=always \
                 (getrusage over {CPU_APPENDS} appends)",
                backend.name(),
                cpu.as_secs_f64() * 1e6
            )),
            Err(err) => report.note(format!("{}: {err}", backend.name())),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    codec(config, report);
}

/// Appends timed for their CPU by [`thread_cpu_per_append`].
const CPU_APPENDS: u64 = 200;

/// The calling thread's user + system CPU per append of `size` bytes (fsync=always).
fn thread_cpu_per_append(
    dir: &Path,
    backend: Backend,
    size: usize,
    appends: u64,
) -> io::Result<Duration> {
    fn thread_cpu() -> Duration {
        // SAFETY: `usage` is a valid out-pointer for getrusage.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
        let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
    }
    let mut wal = StdWal::create(Segments::new(dir, backend, size, Policy::Always))?;
    wal.append_n(10)?;
    let before = thread_cpu();
    let result = wal.append_n(appends);
    let cpu = thread_cpu().saturating_sub(before);
    wal.finish();
    result.map(|()| cpu / appends as u32)
}

/// A fresh directory under the scratch dir for this process.
fn scratch_subdir() -> PathBuf {
    let dir = crate::scratch_dir().join(format!("wal-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|err| panic!("cannot create {}: {err}", dir.display()));
    dir
}

/// Whether this kernel lets us set up an io_uring.
fn uring_available() -> io::Result<()> {
    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .build()
        .map(drop)
}

/// Measures appends of `size` bytes with `backend` under `policy`.
pub fn append_case(
    config: &Config,
    dir: &Path,
    backend: Backend,
    size: usize,
    policy: Policy,
) -> io::Result<Case> {
    let segments = Segments::new(dir, backend, size, policy);
    let case = |batch: &mut dyn FnMut(u64)| {
        Case::run(config, backend.name(), size as u64, 1, "append", batch)
    };
    match backend {
        Backend::Std | Backend::StdDirect => {
            let mut wal = StdWal::create(segments)?;
            let mut failure = None;
            let case = case(&mut |n| {
                if failure.is_none() {
                    failure = wal.append_n(n).err();
                }
            });
            wal.finish();
            failure.map_or(Ok(case), Err)
        }
        Backend::Monoio => {
            let mut runtime = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new().build()?;
            let mut wal = runtime.block_on(MonoioWal::create(segments))?;
            let mut failure = None;
            let case = case(&mut |n| {
                if failure.is_none() {
                    failure = runtime.block_on(wal.append_n(n)).err();
                }
            });
            runtime.block_on(wal.finish());
            failure.map_or(Ok(case), Err)
        }
        Backend::TokioUring => {
            let runtime = tokio_uring::Runtime::new(&tokio_uring::builder())?;
            let mut wal = runtime.block_on(UringWal::create(segments))?;
            let mut failure = None;
            let case = case(&mut |n| {
                if failure.is_none() {
                    failure = runtime.block_on(wal.append_n(n)).err();
                }
            });
            runtime.block_on(wal.finish());
            failure.map_or(Ok(case), Err)
        }
    }
}

/// What the three writers share: where the segments are, the offset in the current one,
/// and when it was last synced.
struct Segments {
    dir: PathBuf,
    prefix: String,
    sequence: u64,
    offset: u64,
    size: usize,
    policy: Policy,
    last_sync: Instant,
    /// Files opened with `O_DIRECT`.
    direct: bool,
}

/// What to do before and after the next write.
struct Step {
    roll: bool,
    offset: u64,
    sync: bool,
}

impl Segments {
    fn new(dir: &Path, backend: Backend, size: usize, policy: Policy) -> Segments {
        Segments {
            dir: dir.to_path_buf(),
            prefix: format!("{backend:?}-{}k-{}", size >> 10, policy.name()),
            sequence: 0,
            offset: 0,
            size,
            policy,
            last_sync: Instant::now(),
            direct: backend == Backend::StdDirect,
        }
    }

    fn path(&self, sequence: u64) -> PathBuf {
        self.dir.join(format!("{}-{sequence:06}.wal", self.prefix))
    }

    /// Creates the next segment file (the previous one is removed by the caller's
    /// [`Segments::remove_previous`]).
    fn create_next(&mut self) -> io::Result<File> {
        self.sequence += 1;
        self.offset = 0;
        use std::os::unix::fs::OpenOptionsExt;
        let flags = if self.direct { libc::O_DIRECT } else { 0 };
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(flags)
            .open(self.path(self.sequence))
    }

    fn remove_previous(&self) -> io::Result<()> {
        std::fs::remove_file(self.path(self.sequence - 1))
    }

    fn remove_current(&self) {
        let _ = std::fs::remove_file(self.path(self.sequence));
    }

    /// Plans the next append: roll to a new segment when this one is full, where to write,
    /// and whether to fdatasync after the write.
    fn step(&mut self) -> Step {
        let roll = self.offset + self.size as u64 > WAL_SEGMENT_BYTES_MAX;
        let offset = if roll { 0 } else { self.offset };
        let sync = match self.policy {
            Policy::Always => true,
            Policy::Interval(period) => self.last_sync.elapsed() >= period,
            Policy::Never => false,
        };
        Step { roll, offset, sync }
    }

    fn written(&mut self, step: &Step) {
        self.offset = step.offset + self.size as u64;
        if step.sync {
            self.last_sync = Instant::now();
        }
    }
}

struct StdWal {
    segments: Segments,
    file: File,
    /// `segments.size` bytes from `start`, which is 4 KiB-aligned (as `O_DIRECT` needs).
    buffer: Vec<u8>,
    start: usize,
}

/// The alignment `O_DIRECT` writes need here (the filesystem's block size).
const DIRECT_ALIGN: usize = 4096;

impl StdWal {
    fn create(mut segments: Segments) -> io::Result<StdWal> {
        let file = segments.create_next()?;
        let buffer = vec![0xa5; segments.size + DIRECT_ALIGN];
        let start = buffer.as_ptr().align_offset(DIRECT_ALIGN);
        Ok(StdWal {
            segments,
            file,
            buffer,
            start,
        })
    }

    fn append_n(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            let step = self.segments.step();
            if step.roll {
                self.file = self.segments.create_next()?;
                self.segments.remove_previous()?;
            }
            let bytes = self
                .buffer
                .get(self.start..self.start + self.segments.size)
                .ok_or_else(|| io::Error::other("buffer shorter than an append"))?;
            self.file.write_all_at(bytes, step.offset)?;
            if step.sync {
                self.file.sync_data()?;
            }
            self.segments.written(&step);
        }
        Ok(())
    }

    fn finish(self) {
        self.segments.remove_current();
    }
}

struct MonoioWal {
    segments: Segments,
    file: monoio::fs::File,
    buffer: Option<Vec<u8>>,
}

impl MonoioWal {
    async fn create(mut segments: Segments) -> io::Result<MonoioWal> {
        let file = monoio::fs::File::from_std(segments.create_next()?)?;
        let buffer = Some(vec![0xa5; segments.size]);
        Ok(MonoioWal {
            segments,
            file,
            buffer,
        })
    }

    async fn append_n(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            let step = self.segments.step();
            if step.roll {
                let next = monoio::fs::File::from_std(self.segments.create_next()?)?;
                let previous = std::mem::replace(&mut self.file, next);
                previous.close().await?;
                self.segments.remove_previous()?;
            }
            let buffer = self
                .buffer
                .take()
                .expect("the buffer is back after each write");
            let (result, buffer) = self.file.write_all_at(buffer, step.offset).await;
            self.buffer = Some(buffer);
            result?;
            if step.sync {
                self.file.sync_data().await?;
            }
            self.segments.written(&step);
        }
        Ok(())
    }

    async fn finish(self) {
        let _ = self.file.close().await;
        self.segments.remove_current();
    }
}

struct UringWal {
    segments: Segments,
    file: tokio_uring::fs::File,
    buffer: Option<Vec<u8>>,
}

impl UringWal {
    async fn create(mut segments: Segments) -> io::Result<UringWal> {
        let file = tokio_uring::fs::File::from_std(segments.create_next()?);
        let buffer = Some(vec![0xa5; segments.size]);
        Ok(UringWal {
            segments,
            file,
            buffer,
        })
    }

    async fn append_n(&mut self, n: u64) -> io::Result<()> {
        for _ in 0..n {
            let step = self.segments.step();
            if step.roll {
                let next = tokio_uring::fs::File::from_std(self.segments.create_next()?);
                let previous = std::mem::replace(&mut self.file, next);
                previous.close().await?;
                self.segments.remove_previous()?;
            }
            let buffer = self
                .buffer
                .take()
                .expect("the buffer is back after each write");
            let (result, buffer) = self.file.write_all_at(buffer, step.offset).await;
            self.buffer = Some(buffer);
            result?;
            if step.sync {
                self.file.sync_data().await?;
            }
            self.segments.written(&step);
        }
        Ok(())
    }

    async fn finish(self) {
        let _ = self.file.close().await;
        self.segments.remove_current();
    }
}

/// `encode_record` and `replay_segment` on the per-trace batches of real requests.
fn codec(config: &Config, report: &mut Report) {
    let requests = data::otlp_requests(CODEC_REQUESTS);
    let batches: Vec<_> = requests
        .messages()
        .flat_map(|message| split_export(message).expect("valid request"))
        .collect();
    let tenant = Tenant::single();
    let records: Vec<RecordRef<'_>> = batches
        .iter()
        .map(|batch| RecordRef {
            tenant: &tenant,
            trace_id: batch.trace_id,
            span_count: batch.span_count,
            start_unix_nanos_min: batch.start_unix_nanos_min,
            end_unix_nanos_max: batch.end_unix_nanos_max,
            payload: &batch.payload,
        })
        .collect();
    let count = records.len() as u64;
    let mut segment = Vec::new();
    wal::encode_segment_header(0, 1, &mut segment);
    for record in &records {
        wal::encode_record(record, &mut segment);
    }
    let record_bytes = (segment.len() - wal::SEGMENT_HEADER_BYTES) as u64;
    report.note(format!(
        "wal codec input: {count} records (one per trace of {CODEC_REQUESTS} requests, \
         {} spans), {record_bytes} B, {:.0} B/record",
        requests.spans,
        record_bytes as f64 / count as f64
    ));

    let records_only = &segment[wal::SEGMENT_HEADER_BYTES..];
    let crc = Case::run(config, "crc32fast", record_bytes, count, "record", |n| {
        for _ in 0..n {
            black_box(crc32fast::hash(black_box(records_only)));
        }
    });
    let memcpy = memcpy_case(config, "memcpy", records_only, count, "record");

    let mut buffer = Vec::with_capacity(segment.len());
    let encode = Case::run(
        config,
        "allegro wal::encode_record",
        record_bytes,
        count,
        "record",
        |n| {
            for _ in 0..n {
                buffer.clear();
                for record in &records {
                    wal::encode_record(black_box(record), &mut buffer);
                }
                black_box(&buffer);
            }
        },
    );
    assert_eq!(buffer, records_only, "encoding is deterministic");
    report.line(Line {
        suite: SUITE,
        title: format!("encode {count} records into a group-commit buffer"),
        subject: encode,
        baselines: vec![crc.clone(), memcpy.clone()],
    });

    let replay = wal::replay_segment(&segment);
    assert_eq!(replay.records.len() as u64, count);
    assert_eq!(replay.end, ReplayEnd::Clean);
    let replay = Case::run(
        config,
        "allegro wal::replay_segment",
        record_bytes,
        count,
        "record",
        |n| {
            for _ in 0..n {
                let replay = wal::replay_segment(black_box(&segment));
                black_box(&replay);
            }
        },
    );
    report.line(Line {
        suite: SUITE,
        title: format!("replay a segment of {count} records (checksums verified)"),
        subject: replay,
        baselines: vec![crc, memcpy],
    });
}

//! The block builder of a shard: a helper thread that turns a head's records into a block's
//! data file, at the lowest CPU priority (`SCHED_IDLE`).
//!
//! Building a block (sorting, assembling each trace, columnar pages, lz4) costs about as much
//! CPU as taking the spans in. On the shard thread it competed with acknowledgements even in
//! short slices; on a `SCHED_IDLE` thread pinned to the same core the kernel runs it only
//! when the shard thread (and the kernel's own IO workers) have nothing to do, and preempts it
//! the moment they wake. So a cut takes the core's idle time, including the time the shard
//! thread sleeps in a WAL `fdatasync`.
//!
//! Under overload the shard thread never idles, and an idle-priority builder would never
//! finish: the heads would fill and appends be refused. So while the shard says a cut is
//! urgent ([`Builder::set_urgent`]: its memory three quarters full), the builder runs at
//! normal priority and the two share the core. The compaction thread likewise once its
//! merges starve: the shard holds more than `COMPACTION_BACKLOG_BLOCKS` blocks and the
//! merge running made no progress for `COMPACTION_STARVED_AFTER` (the core has no idle time
//! to give it), or the shard holds more than `COMPACTION_BACKLOG_BLOCKS_MAX`; never while
//! memory is filling (a cut comes first: it frees the memory appends wait for). A
//! compaction that shares the core runs in slices of milliseconds between acknowledgements
//! (at 150k spans/s, half of what one core takes, export p99 29-32 ms against 17 ms with
//! merges left to the idle time), so it does so only when the idle time is not enough.
//!
//! The builder is a pure function behind a channel: records in, `(data, stats)` out. It
//! touches no shard state and does no IO; the shard publishes what it returns. **Invariant:**
//! one job at a time per thread (the shard runs one cut and one compaction at a time, each on
//! its own thread: a cut never waits behind a compaction), so the job channel never holds
//! more than one head.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::HeadRecord;
use crate::block::{store, BlockStats, BlockWriter, PageCursor};
use crate::otlp;

/// A finished data file, and the records it was built from sorted by trace ID (oldest first
/// within a trace), handed back so the shard can drop their index entries in that order.
pub(super) struct Built {
    pub data: Vec<u8>,
    pub stats: BlockStats,
    pub records: Vec<HeadRecord>,
}

/// A block to merge in a compaction: its data file and where its pages are.
pub(super) struct MergeSource {
    pub block_id: String,
    pub data_path: std::path::PathBuf,
    /// `(offset, length)` of each page, in order.
    pub pages: Vec<(u64, u32)>,
    /// `payload_bytes` of its `meta.json`: the traces' assembled payloads, summed.
    pub payload_bytes: u64,
}

/// Why a merge failed; `damaged` is the index of the source whose page did not decode.
pub(super) struct MergeFailure {
    pub message: String,
    pub damaged: Option<usize>,
}

/// What a merge wrote to its data file (`Merge::data_path`, fsynced).
pub(super) type Merged = Result<BlockStats, MergeFailure>;

enum Job {
    Build {
        records: Vec<HeadRecord>,
        reply: flume::Sender<Built>,
    },
    Merge {
        sources: Vec<MergeSource>,
        data_path: std::path::PathBuf,
        reply: flume::Sender<Merged>,
    },
}

/// The handle the shard keeps; dropping every clone ends the thread.
#[derive(Clone)]
pub(super) struct Builder {
    jobs: flume::Sender<Job>,
    status: Arc<Status>,
}

/// What the shard and its helper thread share: the priority the shard asks for, and what
/// the thread is doing (for the shard to see a merge starve).
#[derive(Default)]
struct Status {
    urgent: AtomicBool,
    /// A job is running.
    busy: AtomicBool,
    /// Looks at `urgent` so far: one per page a merge reads, one per
    /// [`URGENCY_CHECK_TRACES`] traces a build adds.
    progress: AtomicU64,
}

/// A merge writes its data file in pieces of this size, starting each one's writeback
/// (`sync_file_range`, no device cache flush) and fsyncing once at the end. Fsyncing each
/// piece instead made WAL fsyncs queue behind them (this thread writes while the shard
/// appends): at 200k spans/s export p90 22-33 ms against 7 ms with `sync_file_range`.
const MERGE_WRITE_CHUNK_BYTES: usize = 128 << 10;

/// How many traces the builder adds between two looks at the urgency flag.
const URGENCY_CHECK_TRACES: usize = 256;

impl Builder {
    /// Starts a builder thread of shard `shard` (`role` names it: `allegro-build-0`).
    /// Called on the shard's thread, so the new thread inherits its CPU affinity.
    pub(super) fn start(shard: usize, role: &str) -> std::io::Result<Builder> {
        let (jobs, queue) = flume::bounded::<Job>(1);
        let status = Arc::new(Status::default());
        let shared = status.clone();
        std::thread::Builder::new()
            .name(format!("allegro-{role}-{shard}"))
            .spawn(move || {
                let mut priority = Priority::new(shard);
                let status = &shared;
                let check = &mut || {
                    status.progress.fetch_add(1, Ordering::Relaxed);
                    priority.set_idle(!status.urgent.load(Ordering::Relaxed));
                };
                while let Ok(job) = queue.recv() {
                    status.busy.store(true, Ordering::Relaxed);
                    match job {
                        Job::Build { records, reply } => {
                            let _ = reply.send(build(records, check));
                        }
                        Job::Merge {
                            sources,
                            data_path,
                            reply,
                        } => {
                            // At idle priority unless the shard finds the merge starving
                            // (`CompactionUrgency`), re-checked before each page.
                            let _ = reply.send(merge(&sources, &data_path, check));
                        }
                    }
                    status.busy.store(false, Ordering::Relaxed);
                }
            })?;
        Ok(Builder { jobs, status })
    }

    /// Tells the thread to run at normal priority (the builder: the shard is about to refuse
    /// appends for want of memory; the compactor: blocks are piling up) or at idle priority.
    pub(super) fn set_urgent(&self, urgent: bool) {
        self.status.urgent.store(urgent, Ordering::Relaxed);
    }

    /// Whether a job is running, and how far the thread has got in all its jobs so far (a
    /// count that moves while it gets CPU time).
    pub(super) fn progress(&self) -> (bool, u64) {
        (
            self.status.busy.load(Ordering::Relaxed),
            self.status.progress.load(Ordering::Relaxed),
        )
    }

    /// Builds the data file of `records` on the builder thread. `Err` gives the records back
    /// if the thread is gone.
    pub(super) async fn build(&self, records: Vec<HeadRecord>) -> Result<Built, Vec<HeadRecord>> {
        let (reply, answer) = flume::bounded(1);
        if let Err(flume::SendError(job)) =
            self.jobs.send_async(Job::Build { records, reply }).await
        {
            return Err(match job {
                Job::Build { records, .. } => records,
                Job::Merge { .. } => unreachable!("a build job was sent"),
            });
        }
        // The builder panics on no input; a bug there aborts the process (see `main`).
        Ok(answer
            .recv_async()
            .await
            .expect("the block builder answers every job"))
    }

    /// Merges the blocks of a compaction on the builder thread into a new data file at
    /// `data_path`; `None` if the thread is gone.
    pub(super) async fn merge(
        &self,
        sources: Vec<MergeSource>,
        data_path: std::path::PathBuf,
    ) -> Option<Merged> {
        let (reply, answer) = flume::bounded(1);
        self.jobs
            .send_async(Job::Merge {
                sources,
                data_path,
                reply,
            })
            .await
            .ok()?;
        answer.recv_async().await.ok()
    }
}

/// Sorts `records` by trace ID (stable: a trace's records keep the order they were written
/// in), assembles each trace and writes the block; calls `check` every
/// [`URGENCY_CHECK_TRACES`] traces.
pub(super) fn build(mut records: Vec<HeadRecord>, check: &mut dyn FnMut()) -> Built {
    check();
    records.sort_by_key(|record| record.trace_id);
    // Pages compress to well under their payload: room for the whole data file up front, so
    // that it is never copied to grow (pages not touched are never faulted in).
    let payload_bytes: usize = records.iter().map(|record| record.payload.len()).sum();
    let mut writer = BlockWriter::with_capacity(payload_bytes / 2);
    let mut parts: Vec<&[u8]> = Vec::new();
    for (n, run) in records
        .chunk_by(|a, b| a.trace_id == b.trace_id)
        .enumerate()
    {
        let Some(first) = run.first() else { continue };
        parts.clear();
        parts.extend(run.iter().map(|record| record.payload.as_slice()));
        writer.add_trace_payloads(first.trace_id, &parts);
        if n % URGENCY_CHECK_TRACES == URGENCY_CHECK_TRACES - 1 {
            check();
        }
    }
    drop(parts);
    let (data, stats) = writer.finish();
    Built {
        data,
        stats,
        records,
    }
}

/// A k-way merge by trace ID of the blocks `sources` (one page of each in memory at a time).
/// A trace held by one source is copied row by row (`BlockWriter::copy_trace`: no OTLP bytes
/// rebuilt or taken apart); the spans of a trace found in several are rebuilt and
/// de-duplicated by `assemble_trace`, as are raw traces. Reads the data files with `pread`
/// and writes the new one to `data_path` as it goes, in pieces of
/// [`MERGE_WRITE_CHUNK_BYTES`], fsynced at the end (this thread may block; memory holds one
/// page per source and one piece of output, not the merged file). `check` runs before each page
/// is read (the compaction thread adjusts its priority there).
pub(super) fn merge(sources: &[MergeSource], data_path: &Path, check: &mut dyn FnMut()) -> Merged {
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let io_failure = |err: std::io::Error| MergeFailure {
        message: format!("writing {}: {err}", data_path.display()),
        damaged: None,
    };
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(data_path)
        .map_err(io_failure)?;
    struct Source<'a> {
        source: &'a MergeSource,
        file: std::fs::File,
        next_page: usize,
        page: Option<PageCursor>,
    }
    let mut cursors = Vec::with_capacity(sources.len());
    for source in sources {
        let file = std::fs::File::open(&source.data_path).map_err(|err| MergeFailure {
            message: format!("block {}: {err}", source.block_id),
            damaged: None,
        })?;
        cursors.push(Source {
            source,
            file,
            next_page: 0,
            page: None,
        });
    }
    let damaged = |index: usize, source: &MergeSource, what: String| MergeFailure {
        message: format!("block {}: {what}", source.block_id),
        damaged: Some(index),
    };
    let mut writer = BlockWriter::new();
    let mut written = 0u64;
    // Payload bytes of the traces rebuilt (not copied): what the sources' totals overcount.
    let mut rebuilt_bytes = 0u64;
    let mut holders: Vec<usize> = Vec::with_capacity(cursors.len());
    loop {
        for (index, cursor) in cursors.iter_mut().enumerate() {
            while cursor.page.as_ref().and_then(PageCursor::peek).is_none()
                && cursor.next_page < cursor.source.pages.len()
            {
                check();
                let number = cursor.next_page;
                let (offset, length) = cursor.source.pages[number];
                let mut bytes = vec![0u8; length as usize];
                cursor
                    .file
                    .read_exact_at(&mut bytes, offset)
                    .map_err(|err| MergeFailure {
                        message: format!("block {} page {number}: {err}", cursor.source.block_id),
                        damaged: None,
                    })?;
                let page = PageCursor::load(&bytes).map_err(|err| {
                    damaged(index, cursor.source, format!("page {number}: {err}"))
                })?;
                cursor.next_page += 1;
                cursor.page = Some(page);
            }
        }
        let Some(trace_id) = cursors
            .iter()
            .filter_map(|cursor| cursor.page.as_ref().and_then(PageCursor::peek))
            .min()
        else {
            break;
        };
        holders.clear();
        holders.extend(
            cursors
                .iter()
                .enumerate()
                .filter(|(_, cursor)| {
                    cursor.page.as_ref().and_then(PageCursor::peek) == Some(trace_id)
                })
                .map(|(index, _)| index),
        );
        let mut payloads = Vec::new();
        let alone = holders.len() == 1;
        for &index in &holders {
            let Some(Source {
                source,
                page: Some(page),
                ..
            }) = cursors.get_mut(index)
            else {
                continue;
            };
            if alone && page.next_is_columnar() {
                writer
                    .copy_trace(page)
                    .map_err(|err| damaged(index, source, err.to_string()))?;
            } else {
                let (_, payload) = page
                    .take_payload()
                    .map_err(|err| damaged(index, source, err.to_string()))?;
                rebuilt_bytes += payload.len() as u64;
                payloads.push(payload);
            }
        }
        match payloads.as_slice() {
            [] => {}
            [only] => {
                // A trace of one source is already assembled (blocks store
                // `assemble_trace`'s output and pages rebuild it byte for byte).
                debug_assert_eq!(&otlp::assemble_trace(&[only]), only);
                writer.add_trace(trace_id, only);
            }
            _ => {
                let parts: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
                writer.add_trace(trace_id, &otlp::assemble_trace(&parts));
            }
        }
        if let Some(piece) = writer.take_written(MERGE_WRITE_CHUNK_BYTES) {
            out.write_all(&piece).map_err(io_failure)?;
            store::start_writeback(&out, written, piece.len());
            written += piece.len() as u64;
        }
    }
    let source_bytes: u64 = sources.iter().map(|source| source.payload_bytes).sum();
    writer.add_copied_payload_bytes(source_bytes.saturating_sub(rebuilt_bytes));
    let (tail, stats) = writer.finish();
    out.write_all(&tail).map_err(io_failure)?;
    out.sync_all().map_err(io_failure)?;
    Ok(stats)
}

/// The builder thread's scheduling class: `SCHED_IDLE` (it runs only when nothing else on
/// its core wants to), or `SCHED_OTHER` while a cut is urgent.
struct Priority {
    shard: usize,
    idle: Option<bool>,
}

impl Priority {
    fn new(shard: usize) -> Priority {
        Priority { shard, idle: None }
    }

    /// Switches class if needed (one system call per change).
    fn set_idle(&mut self, idle: bool) {
        if self.idle == Some(idle) {
            return;
        }
        self.idle = Some(idle);
        let policy = if idle {
            libc::SCHED_IDLE
        } else {
            libc::SCHED_OTHER
        };
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid `sched_param`; pid 0 is the calling thread.
        let result = unsafe { libc::sched_setscheduler(0, policy, &param) };
        if result != 0 {
            log::warn!(
                "shard {}: cannot set the block builder's priority ({}); it shares the core \
                 with acknowledgements",
                self.shard,
                std::io::Error::last_os_error()
            );
        }
    }
}

// `HeadRecord` crosses to the builder thread: its payload must be shareable.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<HeadRecord>();
    assert_send::<Arc<Vec<u8>>>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{open_bytes, BlockWriter};
    use crate::ids::TraceId;

    fn record(id: u8, payload: Vec<u8>) -> HeadRecord {
        HeadRecord {
            trace_id: TraceId([id; 16]),
            payload: Arc::new(payload),
        }
    }

    /// One `ResourceSpans` holding one span with `span_id`, as `split_export` writes them.
    fn payload(trace: u8, span_id: u8) -> Vec<u8> {
        let mut span = vec![0x0a, 16];
        span.extend_from_slice(&[trace; 16]);
        span.extend_from_slice(&[0x12, 8]);
        span.extend_from_slice(&[span_id; 8]);
        let mut scope_spans = vec![0x12, span.len() as u8];
        scope_spans.extend_from_slice(&span);
        let mut resource_spans = vec![0x12, scope_spans.len() as u8];
        resource_spans.extend_from_slice(&scope_spans);
        let mut out = vec![0x0a, resource_spans.len() as u8];
        out.extend_from_slice(&resource_spans);
        out
    }

    #[test]
    fn builds_the_block_of_sorted_assembled_traces_whatever_the_record_order() {
        // Trace 2 arrives in two records, the others in one; written out of order.
        let records = vec![
            record(3, payload(3, 1)),
            record(2, payload(2, 1)),
            record(1, payload(1, 1)),
            record(2, payload(2, 2)),
        ];
        let mut checks = 0;
        let built = build(records, &mut || checks += 1);
        assert!(checks >= 1, "urgency is looked at before the build");
        let ids: Vec<u8> = built.records.iter().map(|r| r.trace_id.0[0]).collect();
        assert_eq!(ids, [1, 2, 2, 3], "sorted, and stable within a trace");
        assert_eq!(built.stats.trace_count, 3);
        assert_eq!(built.stats.span_count, 4);

        let mut expected = BlockWriter::new();
        expected.add_trace(TraceId([1; 16]), &otlp::assemble_trace(&[&payload(1, 1)]));
        expected.add_trace(
            TraceId([2; 16]),
            &otlp::assemble_trace(&[&payload(2, 1), &payload(2, 2)]),
        );
        expected.add_trace(TraceId([3; 16]), &otlp::assemble_trace(&[&payload(3, 1)]));
        let (data, stats) = expected.finish();
        assert_eq!(built.stats, stats);
        assert_eq!(built.data, data);
    }

    /// A payload with `spans` spans (IDs from `first_span`) and a few attributes, so that
    /// pages fill and dictionaries differ between sources.
    fn rich_payload(trace: &TraceId, first_span: u64, spans: u64) -> Vec<u8> {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
        use opentelemetry_proto::tonic::resource::v1::Resource;
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
        use prost::Message;
        let kv = |key: &str, value: String| KeyValue {
            key: key.to_string(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(value)),
            }),
            ..Default::default()
        };
        let n = u64::from(trace.0[0]);
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", format!("svc-{}", n % 5))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: (first_span..first_span + spans)
                        .map(|s| Span {
                            trace_id: trace.0.to_vec(),
                            span_id: (s + 1).to_be_bytes().to_vec(),
                            parent_span_id: if s > first_span {
                                s.to_be_bytes().to_vec()
                            } else {
                                vec![9; 8]
                            },
                            name: format!("op-{}", (n + s) % 7),
                            start_time_unix_nano: 1_700_000_000_000_000_000 + n * 1000 + s,
                            end_time_unix_nano: 1_700_000_000_000_000_000 + n * 1000 + 5 * s,
                            attributes: vec![kv("k", format!("v-{}", (n * s) % 11))],
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let batches = otlp::split_export(&request.encode_to_vec()).unwrap();
        batches.into_iter().next().unwrap().payload
    }

    #[test]
    fn a_merge_writes_the_block_of_the_assembled_traces_copied_or_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let id = |n: u16| {
            let mut id = [0u8; 16];
            id[..2].copy_from_slice(&n.to_be_bytes());
            id[15] = 1;
            TraceId(id)
        };
        // Three sources with interleaved IDs (so the output takes rows from every source's
        // page in turn, across many output pages); trace 60000 is in two of them (rebuilt and
        // assembled), trace 60001 is stored raw (its span's trace_id is another).
        let mut traces: Vec<Vec<(TraceId, Vec<u8>)>> = vec![Vec::new(); 3];
        for n in 0..12000u16 {
            let trace = id(n);
            traces[usize::from(n % 3)].push((trace, rich_payload(&trace, 0, 1 + u64::from(n % 9))));
        }
        let shared = id(60000);
        traces[0].push((shared, rich_payload(&shared, 0, 3)));
        traces[2].push((shared, rich_payload(&shared, 2, 3)));
        let raw = id(60001);
        traces[1].push((raw, rich_payload(&id(7), 0, 2)));
        let mut sources = Vec::new();
        let mut expected: Vec<(TraceId, Vec<Vec<u8>>)> = Vec::new();
        for (number, source) in traces.iter().enumerate() {
            let mut writer = BlockWriter::new();
            for (trace, payload) in source {
                writer.add_trace(*trace, payload);
                match expected.iter_mut().find(|(id, _)| id == trace) {
                    Some((_, payloads)) => payloads.push(payload.clone()),
                    None => expected.push((*trace, vec![payload.clone()])),
                }
            }
            let (data, stats) = writer.finish();
            let index = open_bytes(&data).unwrap();
            let path = dir.path().join(format!("{number}.data"));
            std::fs::write(&path, &data).unwrap();
            sources.push(MergeSource {
                block_id: number.to_string(),
                data_path: path,
                pages: index.pages.iter().map(|p| (p.offset, p.length)).collect(),
                payload_bytes: stats.payload_bytes,
            });
        }
        assert!(sources.iter().all(|source| source.pages.len() > 3));
        let merged = dir.path().join("merged.data");
        let stats =
            merge(&sources, &merged, &mut || {}).unwrap_or_else(|err| panic!("{}", err.message));
        let data = std::fs::read(&merged).unwrap();
        expected.sort_by_key(|(id, _)| *id);
        let mut writer = BlockWriter::new();
        for (trace, payloads) in &expected {
            let parts: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            writer.add_trace(*trace, &otlp::assemble_trace(&parts));
        }
        let (expected_data, expected_stats) = writer.finish();
        assert_eq!(stats, expected_stats);
        assert!(data == expected_data, "the merged data file differs");
    }
}

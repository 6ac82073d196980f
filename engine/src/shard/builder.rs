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
//! normal priority and the two share the core. The compaction thread likewise while the
//! shard holds more than `COMPACTION_BACKLOG_BLOCKS` blocks and its memory is not filling
//! (a cut comes first: it frees the memory appends wait for).
//!
//! The builder is a pure function behind a channel: records in, `(data, stats)` out. It
//! touches no shard state and does no IO; the shard publishes what it returns. **Invariant:**
//! one job at a time per thread (the shard runs one cut and one compaction at a time, each on
//! its own thread: a cut never waits behind a compaction), so the job channel never holds
//! more than one head.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::HeadRecord;
use crate::block::{BlockStats, BlockWriter, PageView};
use crate::ids::TraceId;
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
}

/// Why a merge failed; `damaged` is the index of the source whose page did not decode.
pub(super) struct MergeFailure {
    pub message: String,
    pub damaged: Option<usize>,
}

pub(super) type Merged = Result<(Vec<u8>, BlockStats), MergeFailure>;

enum Job {
    Build {
        records: Vec<HeadRecord>,
        reply: flume::Sender<Built>,
    },
    Merge {
        sources: Vec<MergeSource>,
        reply: flume::Sender<Merged>,
    },
}

/// The handle the shard keeps; dropping every clone ends the thread.
#[derive(Clone)]
pub(super) struct Builder {
    jobs: flume::Sender<Job>,
    urgent: Arc<AtomicBool>,
}

/// How many traces the builder adds between two looks at the urgency flag.
const URGENCY_CHECK_TRACES: usize = 256;

impl Builder {
    /// Starts a builder thread of shard `shard` (`role` names it: `allegro-build-0`).
    /// Called on the shard's thread, so the new thread inherits its CPU affinity.
    pub(super) fn start(shard: usize, role: &str) -> std::io::Result<Builder> {
        let (jobs, queue) = flume::bounded::<Job>(1);
        let urgent = Arc::new(AtomicBool::new(false));
        let flag = urgent.clone();
        std::thread::Builder::new()
            .name(format!("allegro-{role}-{shard}"))
            .spawn(move || {
                let mut priority = Priority::new(shard);
                while let Ok(job) = queue.recv() {
                    match job {
                        Job::Build { records, reply } => {
                            let check = &mut || priority.set_idle(!flag.load(Ordering::Relaxed));
                            let _ = reply.send(build(records, check));
                        }
                        Job::Merge { sources, reply } => {
                            // At idle priority unless the shard finds its blocks piling up
                            // (`COMPACTION_BACKLOG_BLOCKS`), re-checked before each page.
                            let check = &mut || priority.set_idle(!flag.load(Ordering::Relaxed));
                            let _ = reply.send(merge(&sources, check));
                        }
                    }
                }
            })?;
        Ok(Builder { jobs, urgent })
    }

    /// Tells the thread to run at normal priority (the builder: the shard is about to refuse
    /// appends for want of memory; the compactor: blocks are piling up) or at idle priority.
    pub(super) fn set_urgent(&self, urgent: bool) {
        self.urgent.store(urgent, Ordering::Relaxed);
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

    /// Merges the blocks of a compaction on the builder thread; `None` if it is gone.
    pub(super) async fn merge(&self, sources: Vec<MergeSource>) -> Option<Merged> {
        let (reply, answer) = flume::bounded(1);
        self.jobs
            .send_async(Job::Merge { sources, reply })
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

/// A k-way merge by trace ID of the blocks `sources` (one page of each in memory at a time),
/// the spans of a trace found in several de-duplicated by `assemble_trace`. Reads the data
/// files with `pread` (this thread may block). `check` runs before each page is read (the
/// compaction thread adjusts its priority there).
pub(super) fn merge(sources: &[MergeSource], check: &mut dyn FnMut()) -> Merged {
    use std::os::unix::fs::FileExt;
    struct Cursor<'a> {
        source: &'a MergeSource,
        file: std::fs::File,
        next_page: usize,
        traces: std::iter::Peekable<std::vec::IntoIter<(TraceId, Vec<u8>)>>,
    }
    let mut cursors = Vec::with_capacity(sources.len());
    for source in sources {
        let file = std::fs::File::open(&source.data_path).map_err(|err| MergeFailure {
            message: format!("block {}: {err}", source.block_id),
            damaged: None,
        })?;
        cursors.push(Cursor {
            source,
            file,
            next_page: 0,
            traces: Vec::new().into_iter().peekable(),
        });
    }
    let mut writer = BlockWriter::new();
    loop {
        for (index, cursor) in cursors.iter_mut().enumerate() {
            while cursor.traces.peek().is_none() && cursor.next_page < cursor.source.pages.len() {
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
                let traces = PageView::decode(&bytes)
                    .and_then(|page| page.traces())
                    .map_err(|err| MergeFailure {
                        message: format!("block {} page {number}: {err}", cursor.source.block_id),
                        damaged: Some(index),
                    })?;
                cursor.next_page += 1;
                cursor.traces = traces.into_iter().peekable();
            }
        }
        let Some(trace_id) = cursors
            .iter_mut()
            .filter_map(|cursor| cursor.traces.peek().map(|(id, _)| *id))
            .min()
        else {
            break;
        };
        let payloads: Vec<Vec<u8>> = cursors
            .iter_mut()
            .filter_map(|cursor| cursor.traces.next_if(|(id, _)| *id == trace_id))
            .map(|(_, payload)| payload)
            .collect();
        if let [only] = payloads.as_slice() {
            // A trace of one source is already assembled (blocks store `assemble_trace`'s
            // output and pages rebuild it byte for byte): merging it again would be a no-op.
            debug_assert_eq!(&otlp::assemble_trace(&[only]), only);
            writer.add_trace(trace_id, only);
        } else {
            let parts: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            writer.add_trace(trace_id, &otlp::assemble_trace(&parts));
        }
    }
    Ok(writer.finish())
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
}

//! The per-core shards: each owns its WAL segment files and the index of its traces, and is
//! reached only through a bounded channel.
//!
//! **Architecture Invariant:** a shard's state (`ShardState`) lives in one monoio thread and
//! is never shared; other threads talk to it with [`Msg`]s over a bounded `flume` channel (a
//! full channel is backpressure for the sender). Routing is the pure [`shard_for`].
//!
//! **Architecture Invariant:** an append is answered only after its records are written to
//! the WAL segment (and fsynced under [`FsyncPolicy::Always`]) *and* the trace index is
//! updated, so a read that follows the answer finds the spans (read-your-writes).
//!
//! Group commit: the shard loop takes every message already queued (up to
//! [`GROUP_COMMIT_MESSAGES_MAX`]), writes all their records with one write per tenant segment
//! and one fsync, then answers all of them.
//!
//! On-disk layout: `<wal.path>/<tenant>/shard-<k>-of-<n>/<sequence>.wal` (three-digit `k` and
//! `n`, twenty-digit sequence). A shard never appends to a segment it did not create in this
//! run: at startup it replays, then opens a fresh segment.
//!
//! Blocks (`block`): per tenant, the WAL segments written since the last cut are the *head
//! block*. A shard cuts it when it is `max_block_duration` old or holds `max_block_bytes` of
//! WAL, and on `/flush`: it rolls the WAL to a new segment, reads the closed segments, writes
//! every trace in them (idle traces whole, live traces their spans so far; the rest of a live
//! trace goes into the next block) into one block, publishes it (temp name, fsync, rename,
//! directory fsync), and only then deletes those segments and forgets their traces, which are
//! found from then on through the block's bloom filter and index (no per-trace memory).
//! `meta.json` lists the WAL sequences a block covers, so a restart between publishing and
//! deleting deletes them then. **Architecture Invariant:** an acknowledged span is in a WAL
//! segment or in a published block at every instant.
//!
//! Reads: memory, WAL, then every block of the tenant that may hold the trace (time range,
//! bloom, index, one page); `otlp::assemble_trace` merges and de-duplicates by span ID.
//! A shard opens its own blocks (`shard-<k>-of-<n>` in `meta.json`) and every block written
//! under a different shard count, so lookups still work after the count changes.
//!
//! Compaction (a background task per shard, after each cut and every
//! [`MAINTENANCE_INTERVAL`]): a shard merges its own blocks of one tenant and one
//! `compaction_window` into one, de-duplicating spans; the new block (its `meta.json` naming
//! its sources in `compacted_from`) is published before the sources are deleted, and a
//! restart that finds both deletes the sources. Retention deletes blocks whose newest span is
//! older than `block_retention`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::block::store::{self, OpenBlock};
use crate::block::{self, BlockMeta, BlockWriter, PageView};
use crate::ids::{Tenant, TraceId};
use crate::otlp::{self, TraceBatch};
use crate::wal;

/// How many queued messages one group commit takes at most.
pub const GROUP_COMMIT_MESSAGES_MAX: usize = 256;
/// Capacity of each shard's inbound channel.
pub const SHARD_CHANNEL_CAPACITY: usize = 1024;
/// How often a shard scans its index for idle traces.
const EVICT_INTERVAL: Duration = Duration::from_secs(1);
/// The longest a shard loop sleeps without a message (it fsyncs under [`FsyncPolicy::Interval`]
/// and cuts due head blocks on this beat).
const TICK: Duration = Duration::from_millis(100);
/// How often a shard looks for blocks to compact or to delete (retention).
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(30);
/// Blocks merged by one compaction at most.
pub const COMPACTION_INPUT_BLOCKS_MAX: usize = 8;
/// Payload bytes of one compaction's inputs at most (they are held in memory).
pub const COMPACTION_INPUT_BYTES_MAX: u64 = 1 << 30;

/// The shard that owns a trace. Pure, so every thread agrees without talking.
pub fn shard_for(trace_id: &TraceId, shards: usize) -> usize {
    assert!(shards > 0, "at least one shard");
    let hash = xxhash_rust::xxh3::xxh3_64(trace_id.as_bytes());
    // The remainder is below `shards`, which is a usize.
    (hash % shards as u64) as usize
}

/// When an acknowledged write reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fdatasync before every acknowledgement (group commit amortises it).
    Always,
    /// Acknowledge after the write; fdatasync every `fsync_interval`.
    Interval,
    /// Leave it to the kernel.
    Never,
}

/// Settings of the engine, derived from the Tempo config by the caller.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub wal_dir: PathBuf,
    pub shards: usize,
    pub fsync: FsyncPolicy,
    pub fsync_interval: Duration,
    pub wal_segment_bytes_max: u64,
    /// A trace with no new spans for this long leaves the live (in-memory) set; it stays
    /// readable from the WAL.
    pub trace_idle_period: Duration,
    /// `overrides.defaults.global.max_bytes_per_trace`; 0 = unlimited.
    pub trace_bytes_max: u64,
    /// Live traces per tenant per shard before the least recently written leave memory.
    pub live_traces_per_tenant_max: usize,
    /// Bytes of live trace data per shard before the least recently written leave memory.
    pub live_bytes_max: u64,
    /// `storage.trace.local.path`: blocks live in `<block_dir>/<tenant>/<block-id>/`.
    pub block_dir: PathBuf,
    /// `ingester.max_block_duration`: cut the head block when it is this old.
    pub max_block_duration: Duration,
    /// `ingester.max_block_bytes`: cut the head block when its WAL holds this many bytes.
    pub max_block_bytes: u64,
    /// `compactor.compaction.block_retention`: delete blocks whose newest span is older.
    pub block_retention: Duration,
    /// `compactor.compaction.compaction_window`: blocks whose oldest span falls in the same
    /// window are compacted together.
    pub compaction_window: Duration,
}

/// Counters of one shard, written only by that shard and read by `/metrics`.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    pub spans_received: AtomicU64,
    pub bytes_received: AtomicU64,
    pub spans_refused: AtomicU64,
    pub bytes_refused: AtomicU64,
    pub wal_records: AtomicU64,
    pub wal_appends: AtomicU64,
    pub wal_bytes: AtomicU64,
    pub fsyncs: AtomicU64,
    pub wal_segments: AtomicU64,
    pub live_traces: AtomicU64,
    pub live_bytes: AtomicU64,
    pub traces_indexed: AtomicU64,
    pub replayed_records: AtomicU64,
    pub replay_torn_tails: AtomicU64,
    pub replay_corrupt_segments: AtomicU64,
    pub read_errors: AtomicU64,
    /// Blocks this shard serves lookups from (gauge) and their data bytes (gauge).
    pub blocks: AtomicU64,
    pub block_bytes: AtomicU64,
    pub blocks_cut: AtomicU64,
    pub blocks_compacted: AtomicU64,
    pub blocks_retention_deleted: AtomicU64,
    /// Blocks skipped at startup because a checksum or a cross-check failed.
    pub blocks_corrupt: AtomicU64,
    pub block_read_errors: AtomicU64,
    pub block_write_errors: AtomicU64,
}

/// What an append came to. Spans are either accepted (durable per the fsync policy) or
/// refused with a reason; an IO failure fails the whole append.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    pub accepted_spans: u64,
    pub rejected_spans: u64,
    /// Why spans were refused (the first reason), worded like Tempo's.
    pub rejected_message: Option<String>,
    /// Set when a shard could not write: nothing in this append may be acknowledged.
    pub failure: Option<String>,
}

impl AppendOutcome {
    fn merge(&mut self, other: AppendOutcome) {
        self.accepted_spans += other.accepted_spans;
        self.rejected_spans += other.rejected_spans;
        if self.rejected_message.is_none() {
            self.rejected_message = other.rejected_message;
        }
        if self.failure.is_none() {
            self.failure = other.failure;
        }
    }
}

/// Messages to a shard.
pub enum Msg {
    Append {
        tenant: Tenant,
        batches: Vec<TraceBatch>,
        reply: flume::Sender<AppendOutcome>,
    },
    GetTrace {
        tenant: Tenant,
        trace_id: TraceId,
        /// Only blocks whose spans overlap `[start, end]` (Unix nanoseconds) are read.
        range: Option<(u64, u64)>,
        reply: flume::Sender<Result<Vec<Vec<u8>>, String>>,
    },
    /// Cut every head block now (`/flush`); answered once the blocks are published.
    Flush {
        reply: flume::Sender<Result<(), String>>,
    },
    /// Sync everything and stop.
    Shutdown { reply: flume::Sender<()> },
    /// Search, tag names or tag values over the tenant's traces (live, WAL, blocks whose
    /// time range meets the job's); runs as a task beside the loop; logic in `search`.
    Search {
        tenant: Tenant,
        job: Arc<crate::search::Job>,
        reply: flume::Sender<crate::search::ShardAnswer>,
    },
}

/// The handle every thread holds: senders to all shards. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    senders: Vec<flume::Sender<Msg>>,
    metrics: Vec<Arc<ShardMetrics>>,
    shards_ready: Arc<AtomicUsize>,
}

/// A shard waiting to be run on its own thread's monoio runtime.
pub struct ShardTask {
    id: usize,
    config: EngineConfig,
    receiver: flume::Receiver<Msg>,
    metrics: Arc<ShardMetrics>,
    shards_ready: Arc<AtomicUsize>,
}

impl Engine {
    /// Builds the channels. Run each returned task on its own core.
    pub fn new(config: &EngineConfig) -> (Engine, Vec<ShardTask>) {
        assert!(config.shards > 0 && config.shards <= 1024);
        let shards_ready = Arc::new(AtomicUsize::new(0));
        let mut senders = Vec::with_capacity(config.shards);
        let mut metrics = Vec::with_capacity(config.shards);
        let mut tasks = Vec::with_capacity(config.shards);
        for id in 0..config.shards {
            let (sender, receiver) = flume::bounded(SHARD_CHANNEL_CAPACITY);
            let shard_metrics = Arc::new(ShardMetrics::default());
            senders.push(sender);
            metrics.push(shard_metrics.clone());
            tasks.push(ShardTask {
                id,
                config: config.clone(),
                receiver,
                metrics: shard_metrics,
                shards_ready: shards_ready.clone(),
            });
        }
        let engine = Engine {
            inner: Arc::new(EngineInner {
                senders,
                metrics,
                shards_ready,
            }),
        };
        (engine, tasks)
    }

    pub fn shards(&self) -> usize {
        self.inner.senders.len()
    }

    /// True once every shard has replayed its WAL.
    pub fn is_ready(&self) -> bool {
        self.inner.shards_ready.load(Ordering::Acquire) == self.inner.senders.len()
    }

    pub fn metrics(&self) -> &[Arc<ShardMetrics>] {
        &self.inner.metrics
    }

    /// Routes each trace batch to its shard and waits until every shard has answered.
    pub async fn append(&self, tenant: &Tenant, batches: Vec<TraceBatch>) -> AppendOutcome {
        let shards = self.shards();
        let mut per_shard: Vec<Vec<TraceBatch>> = (0..shards).map(|_| Vec::new()).collect();
        for batch in batches {
            let shard = shard_for(&batch.trace_id, shards);
            per_shard[shard].push(batch);
        }
        let mut replies = Vec::new();
        for (shard, batches) in per_shard.into_iter().enumerate() {
            if batches.is_empty() {
                continue;
            }
            let (reply, receiver) = flume::bounded(1);
            let msg = Msg::Append {
                tenant: tenant.clone(),
                batches,
                reply,
            };
            if self.inner.senders[shard].send_async(msg).await.is_err() {
                return AppendOutcome {
                    failure: Some(format!("shard {shard} is stopped")),
                    ..AppendOutcome::default()
                };
            }
            replies.push((shard, receiver));
        }
        let mut outcome = AppendOutcome::default();
        for (shard, receiver) in replies {
            match receiver.recv_async().await {
                Ok(part) => outcome.merge(part),
                Err(_) => {
                    outcome.failure = Some(format!("shard {shard} stopped before answering"));
                }
            }
        }
        outcome
    }

    /// The trace as an encoded `tempopb.Trace`, or `None` when no span of it is stored.
    pub async fn get_trace(
        &self,
        tenant: &Tenant,
        trace_id: TraceId,
    ) -> Result<Option<Vec<u8>>, String> {
        self.get_trace_in(tenant, trace_id, None).await
    }

    /// [`Engine::get_trace`], reading only blocks whose spans overlap `range` (Unix
    /// nanoseconds, inclusive; Tempo's `start`/`end` query parameters). Memory and WAL are
    /// always read.
    pub async fn get_trace_in(
        &self,
        tenant: &Tenant,
        trace_id: TraceId,
        range: Option<(u64, u64)>,
    ) -> Result<Option<Vec<u8>>, String> {
        let shard = shard_for(&trace_id, self.shards());
        let (reply, receiver) = flume::bounded(1);
        let msg = Msg::GetTrace {
            tenant: tenant.clone(),
            trace_id,
            range,
            reply,
        };
        self.inner.senders[shard]
            .send_async(msg)
            .await
            .map_err(|_| format!("shard {shard} is stopped"))?;
        let payloads = receiver
            .recv_async()
            .await
            .map_err(|_| format!("shard {shard} stopped before answering"))??;
        if payloads.is_empty() {
            return Ok(None);
        }
        let slices: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        Ok(Some(otlp::assemble_trace(&slices)))
    }

    /// Sends a search job to every shard; each answers on the returned channel with partial
    /// snapshots (before each block it reads) and one final answer; the channel closes when
    /// all have finished. Merge the final answers with `search::merge`.
    pub async fn search(
        &self,
        tenant: &Tenant,
        job: Arc<crate::search::Job>,
    ) -> flume::Receiver<crate::search::ShardAnswer> {
        let (reply, receiver) = flume::bounded(self.shards());
        for sender in &self.inner.senders {
            let msg = Msg::Search {
                tenant: tenant.clone(),
                job: job.clone(),
                reply: reply.clone(),
            };
            // A stopped shard drops its sender: the caller sees fewer answers.
            let _ = sender.send_async(msg).await;
        }
        receiver
    }

    /// Cuts every shard's head blocks now and waits until they are published (`/flush`).
    pub async fn flush(&self) -> Result<(), String> {
        let mut replies = Vec::new();
        for (shard, sender) in self.inner.senders.iter().enumerate() {
            let (reply, receiver) = flume::bounded(1);
            sender
                .send_async(Msg::Flush { reply })
                .await
                .map_err(|_| format!("shard {shard} is stopped"))?;
            replies.push((shard, receiver));
        }
        let mut first_error = None;
        for (shard, receiver) in replies {
            let result = receiver
                .recv_async()
                .await
                .map_err(|_| format!("shard {shard} stopped before answering"))
                .and_then(|result| result);
            if let Err(err) = result {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// [`Engine::shutdown`] from a thread outside the runtimes (the main thread).
    pub fn shutdown_blocking(&self) {
        let mut replies = Vec::new();
        for sender in &self.inner.senders {
            let (reply, receiver) = flume::bounded(1);
            if sender.send(Msg::Shutdown { reply }).is_ok() {
                replies.push(receiver);
            }
        }
        for receiver in replies {
            let _ = receiver.recv();
        }
    }

    /// Asks every shard to sync and stop, and waits for them.
    pub async fn shutdown(&self) {
        let mut replies = Vec::new();
        for sender in &self.inner.senders {
            let (reply, receiver) = flume::bounded(1);
            if sender.send_async(Msg::Shutdown { reply }).await.is_ok() {
                replies.push(receiver);
            }
        }
        for receiver in replies {
            let _ = receiver.recv_async().await;
        }
    }
}

/// Where one WAL record sits.
#[derive(Debug, Clone, Copy)]
struct Location {
    file: u32,
    offset: u64,
    length: u32,
}

/// What a shard knows of one trace.
struct TraceEntry {
    /// Every WAL record of the trace, oldest first.
    locations: Vec<Location>,
    /// Payloads of `locations[memory_from..]`, kept in memory while the trace is live.
    memory: Vec<Vec<u8>>,
    memory_from: usize,
    memory_bytes: u64,
    /// All payload bytes ever appended (for `max_bytes_per_trace`).
    total_bytes: u64,
    last_append: Instant,
}

impl TraceEntry {
    fn is_live(&self) -> bool {
        !self.memory.is_empty()
    }
}

/// One segment file this shard writes to.
struct OpenSegment {
    file_index: u32,
    length: u64,
    dirty: bool,
}

struct TenantState {
    dir: PathBuf,
    segment: Option<OpenSegment>,
    traces: HashMap<TraceId, TraceEntry>,
    live_traces: usize,
    next_sequence: u64,
    /// This shard's own segments not yet covered by a published block (the head block):
    /// `(sequence, file index)`, oldest first. Segments of another shard layout are never
    /// here: they are replayed, not cut.
    head_segments: Vec<(u64, u32)>,
    /// WAL bytes in `head_segments`, and when the head block got its first record.
    head_bytes: u64,
    head_started: Option<Instant>,
    /// Blocks this shard reads for the tenant.
    blocks: Vec<Rc<OpenBlock>>,
}

struct ShardState {
    id: usize,
    config: EngineConfig,
    metrics: Arc<ShardMetrics>,
    /// WAL files by index; `None` once the segment was deleted after its block.
    files: Vec<Option<Rc<monoio::fs::File>>>,
    file_paths: Vec<PathBuf>,
    tenants: HashMap<Tenant, TenantState>,
    live_bytes: u64,
    /// A compaction/retention task is running.
    maintaining: bool,
    /// A background cut (a head block due by size or age) is running.
    cutting: bool,
    /// Blocks created by this shard in this run (part of new block IDs).
    blocks_created: u64,
}

impl ShardTask {
    pub fn id(&self) -> usize {
        self.id
    }

    /// Replays the WAL, then serves messages until shutdown. Runs inside a monoio runtime
    /// with the timer enabled.
    pub async fn run(self) {
        let state = Rc::new(RefCell::new(ShardState {
            id: self.id,
            config: self.config.clone(),
            metrics: self.metrics.clone(),
            files: Vec::new(),
            file_paths: Vec::new(),
            tenants: HashMap::new(),
            live_bytes: 0,
            maintaining: false,
            cutting: false,
            blocks_created: 0,
        }));
        load_blocks(&state).await;
        replay(&state).await;
        self.shards_ready.fetch_add(1, Ordering::AcqRel);
        log::debug!("shard {}: ready", self.id);

        let mut last_sync = Instant::now();
        let mut last_evict = Instant::now();
        let mut last_maintenance = Instant::now();
        // Retention and compaction of what the last run left, in the background.
        start_maintenance(&state);
        loop {
            let first = monoio::select! {
                msg = self.receiver.recv_async() => match msg {
                    Ok(msg) => Some(msg),
                    Err(_) => break,
                },
                _ = monoio::time::sleep(TICK) => None,
            };
            let mut appends = Vec::new();
            let mut others = Vec::new();
            if let Some(msg) = first {
                sort_msg(msg, &mut appends, &mut others);
                while appends.len() + others.len() < GROUP_COMMIT_MESSAGES_MAX {
                    match self.receiver.try_recv() {
                        Ok(msg) => sort_msg(msg, &mut appends, &mut others),
                        Err(_) => break,
                    }
                }
            }
            if !appends.is_empty() {
                group_commit(&state, appends).await;
            }
            let mut stop = None;
            let mut flushes = Vec::new();
            for msg in others {
                match msg {
                    Msg::GetTrace {
                        tenant,
                        trace_id,
                        range,
                        reply,
                    } => {
                        let result = read_trace(&state, &tenant, trace_id, range).await;
                        let _ = reply.send(result);
                    }
                    Msg::Flush { reply } => flushes.push(reply),
                    Msg::Shutdown { reply } => stop = Some(reply),
                    Msg::Search { tenant, job, reply } => {
                        let state = state.clone();
                        monoio::spawn(async move {
                            let answer = search_shard(&state, &tenant, job, &reply).await;
                            let _ = reply.send_async(answer).await;
                        });
                    }
                    Msg::Append { .. } => unreachable!("sorted into appends"),
                }
            }
            let mut cut = false;
            if !flushes.is_empty() {
                // A flush cuts everything acknowledged before it: first let a background cut
                // finish, so that its segments are in a published block too.
                while state.borrow().cutting {
                    monoio::time::sleep(Duration::from_millis(2)).await;
                }
                let result = cut_tenants(&state, None).await;
                cut = true;
                for reply in flushes {
                    let _ = reply.send(result.clone());
                }
            }
            let now = Instant::now();
            let policy = self.config.fsync;
            if policy == FsyncPolicy::Interval
                && now.duration_since(last_sync) >= self.config.fsync_interval
            {
                sync_dirty(&state).await;
                last_sync = now;
            }
            // A scan of the whole index: once a second is enough for a 10 s idle period
            // (it was 5% of a loaded shard's CPU at every tick).
            if now.duration_since(last_evict) >= EVICT_INTERVAL {
                evict_idle(&state, now);
                last_evict = now;
            }
            // Heads due by size or age are cut in the background: the shard keeps taking
            // appends and reads while the block is built (the cut yields every 64 traces).
            // `cut_tenant` rolls a segment only when no WAL write to it is in flight.
            if !state.borrow().cutting {
                let due = heads_due(&state, now);
                if !due.is_empty() {
                    state.borrow_mut().cutting = true;
                    let background = state.clone();
                    monoio::spawn(async move {
                        let _ = cut_tenants(&background, Some(due)).await;
                        background.borrow_mut().cutting = false;
                        start_maintenance(&background);
                    });
                }
            }
            if cut || now.duration_since(last_maintenance) >= MAINTENANCE_INTERVAL {
                last_maintenance = now;
                start_maintenance(&state);
            }
            if let Some(reply) = stop {
                sync_dirty(&state).await;
                log::debug!("shard {}: stopped", self.id);
                let _ = reply.send(());
                return;
            }
        }
        sync_dirty(&state).await;
    }
}

fn sort_msg(msg: Msg, appends: &mut Vec<PendingAppend>, others: &mut Vec<Msg>) {
    match msg {
        Msg::Append {
            tenant,
            batches,
            reply,
        } => appends.push((tenant, batches, reply)),
        other => others.push(other),
    }
}

fn shard_dir_name(shard: usize, shards: usize) -> String {
    format!("shard-{shard:03}-of-{shards:03}")
}

/// The shard directory name of the shard that wrote a block.
fn writer_dir(meta: &BlockMeta) -> String {
    shard_dir_name(meta.shard as usize, meta.shards as usize)
}

fn segment_file_name(sequence: u64) -> String {
    format!("{sequence:020}.wal")
}

/// Reads every segment this shard is responsible for and indexes the records it owns.
async fn replay(state: &Rc<RefCell<ShardState>>) {
    let (wal_dir, id, shards) = {
        let s = state.borrow();
        (s.config.wal_dir.clone(), s.id, s.config.shards)
    };
    let tenants = match std::fs::read_dir(&wal_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
        Err(err) => {
            log::error!(
                "shard {id}: cannot list WAL directory {}: {err}",
                wal_dir.display()
            );
            return;
        }
    };
    for tenant_entry in tenants.flatten() {
        let Some(tenant_name) = tenant_entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Ok(tenant) = Tenant::parse(&tenant_name) else {
            log::warn!(
                "WAL: skipping {}: not a tenant directory",
                tenant_entry.path().display()
            );
            continue;
        };
        let Ok(shard_dirs) = std::fs::read_dir(tenant_entry.path()) else {
            continue;
        };
        for shard_entry in shard_dirs.flatten() {
            let name = shard_entry.file_name().to_string_lossy().to_string();
            let Some((writer, writer_shards)) = parse_shard_dir(&name) else {
                continue;
            };
            let same_layout = writer_shards == shards;
            if same_layout && writer != id {
                continue;
            }
            // The shard that truncates torn tails of a directory: its writer, or under a
            // changed shard count, one chosen by position.
            let responsible = writer % shards == id;
            let mut segments: Vec<(u64, PathBuf)> = match std::fs::read_dir(shard_entry.path()) {
                Ok(files) => files
                    .flatten()
                    .filter_map(|f| {
                        let name = f.file_name().to_string_lossy().to_string();
                        let sequence = name.strip_suffix(".wal")?.parse::<u64>().ok()?;
                        Some((sequence, f.path()))
                    })
                    .collect(),
                Err(_) => continue,
            };
            segments.sort();
            if same_layout {
                let next = segments.last().map_or(0, |(seq, _)| seq + 1);
                let mut s = state.borrow_mut();
                let tenant_state = tenant_state(&mut s, &tenant);
                tenant_state.next_sequence = tenant_state.next_sequence.max(next);
            }
            for (sequence, path) in segments {
                let file_index =
                    replay_segment(state, &tenant, &path, !same_layout, responsible).await;
                if same_layout {
                    // Ours: part of the head block until a cut covers it.
                    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
                    let mut s = state.borrow_mut();
                    let file_index = file_index.unwrap_or_else(|| {
                        s.files.push(None);
                        s.file_paths.push(path.clone());
                        (s.files.len() - 1) as u32
                    });
                    let t = tenant_state(&mut s, &tenant);
                    t.head_segments.push((sequence, file_index));
                    t.head_bytes += bytes;
                    t.head_started.get_or_insert_with(Instant::now);
                }
            }
        }
    }
    let s = state.borrow();
    let traces: usize = s.tenants.values().map(|t| t.traces.len()).sum();
    s.metrics
        .traces_indexed
        .store(traces as u64, Ordering::Relaxed);
    if traces > 0 {
        log::info!(
            "shard {id}: replayed {} WAL records of {traces} traces",
            s.metrics.replayed_records.load(Ordering::Relaxed)
        );
    }
}

fn parse_shard_dir(name: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix("shard-")?;
    let (writer, shards) = rest.split_once("-of-")?;
    let writer: usize = writer.parse().ok()?;
    let shards: usize = shards.parse().ok()?;
    (shards > 0 && writer < shards).then_some((writer, shards))
}

async fn replay_segment(
    state: &Rc<RefCell<ShardState>>,
    tenant: &Tenant,
    path: &Path,
    filter_by_hash: bool,
    responsible: bool,
) -> Option<u32> {
    let (id, shards) = {
        let s = state.borrow();
        (s.id, s.config.shards)
    };
    let bytes = match read_whole_file(path).await {
        Ok(bytes) => bytes,
        Err(err) => {
            log::error!("WAL: cannot read {}: {err}", path.display());
            state
                .borrow()
                .metrics
                .replay_corrupt_segments
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
    };
    let replayed = wal::replay_segment(&bytes);
    match &replayed.end {
        wal::ReplayEnd::Clean => {}
        wal::ReplayEnd::TornTail {
            valid_bytes,
            reason,
        } => {
            if responsible {
                log::warn!(
                    "WAL: {}: torn tail after {valid_bytes} of {} bytes ({reason}); truncating",
                    path.display(),
                    bytes.len()
                );
                state
                    .borrow()
                    .metrics
                    .replay_torn_tails
                    .fetch_add(1, Ordering::Relaxed);
                if let Err(err) = truncate_file(path, *valid_bytes) {
                    log::error!("WAL: cannot truncate {}: {err}", path.display());
                }
            }
        }
        wal::ReplayEnd::Corrupt { offset, reason } => {
            if responsible {
                log::error!(
                    "WAL: {}: corrupt record at byte {offset} ({reason}); the records after it in this segment are not replayed",
                    path.display()
                );
                state
                    .borrow()
                    .metrics
                    .replay_corrupt_segments
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    if replayed.records.is_empty() {
        return None;
    }
    let file = match monoio::fs::File::open(path).await {
        Ok(file) => file,
        Err(err) => {
            log::error!("WAL: cannot open {}: {err}", path.display());
            return None;
        }
    };
    let mut s = state.borrow_mut();
    let file_index = s.files.len() as u32;
    s.files.push(Some(Rc::new(file)));
    s.file_paths.push(path.to_path_buf());
    let mut count = 0u64;
    let now = Instant::now();
    let tenant_state = tenant_state(&mut s, tenant);
    for record in &replayed.records {
        if &record.tenant != tenant {
            log::warn!(
                "WAL: {}: record at {} names tenant {} in the directory of {}; indexed under its own tenant is not supported, skipped",
                path.display(),
                record.offset,
                record.tenant,
                tenant
            );
            continue;
        }
        if filter_by_hash && shard_for(&record.trace_id, shards) != id {
            continue;
        }
        let payload_len = record.payload.len() as u64;
        let entry = tenant_state
            .traces
            .entry(record.trace_id)
            .or_insert_with(|| TraceEntry {
                locations: Vec::new(),
                memory: Vec::new(),
                memory_from: 0,
                memory_bytes: 0,
                total_bytes: 0,
                last_append: now,
            });
        entry.locations.push(Location {
            file: file_index,
            offset: record.offset,
            length: record.length,
        });
        entry.memory_from = entry.locations.len();
        entry.total_bytes += payload_len;
        count += 1;
    }
    s.metrics
        .replayed_records
        .fetch_add(count, Ordering::Relaxed);
    Some(file_index)
}

async fn read_whole_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let length = std::fs::metadata(path)?.len();
    let length = usize::try_from(length)
        .map_err(|_| std::io::Error::other("segment larger than the address space"))?;
    let file = monoio::fs::File::open(path).await?;
    let buffer = vec![0u8; length];
    let (result, buffer) = file.read_exact_at(buffer, 0).await;
    result?;
    Ok(buffer)
}

fn truncate_file(path: &Path, length: u64) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.set_len(length)?;
    file.sync_all()
}

fn tenant_state<'a>(s: &'a mut ShardState, tenant: &Tenant) -> &'a mut TenantState {
    let dir = s
        .config
        .wal_dir
        .join(tenant.as_str())
        .join(shard_dir_name(s.id, s.config.shards));
    s.tenants
        .entry(tenant.clone())
        .or_insert_with(|| TenantState {
            dir,
            segment: None,
            traces: HashMap::new(),
            live_traces: 0,
            next_sequence: 0,
            head_segments: Vec::new(),
            head_bytes: 0,
            head_started: None,
            blocks: Vec::new(),
        })
}

type PendingAppend = (Tenant, Vec<TraceBatch>, flume::Sender<AppendOutcome>);

/// A tenant's part of one group commit: the records' bytes, the staged records, and the
/// bytes staged per trace in this group.
type TenantGroup = (Tenant, Vec<u8>, Vec<Staged>, HashMap<TraceId, u64>);

/// One record waiting for its write.
struct Staged {
    message: usize,
    trace_id: TraceId,
    offset_in_buffer: usize,
    length: usize,
    span_count: u32,
    payload: Vec<u8>,
}

/// Writes every queued append with one write and one fsync per tenant, updates the index,
/// then answers.
async fn group_commit(state: &Rc<RefCell<ShardState>>, appends: Vec<PendingAppend>) {
    let mut outcomes: Vec<AppendOutcome> = vec![AppendOutcome::default(); appends.len()];
    let mut replies = Vec::with_capacity(appends.len());
    // Per tenant: the records' bytes, the staged records, and bytes staged per trace in this
    // group (so that `max_bytes_per_trace` sees them too).
    let mut per_tenant: Vec<TenantGroup> = Vec::new();
    {
        let mut s = state.borrow_mut();
        let trace_bytes_max = s.config.trace_bytes_max;
        let metrics = s.metrics.clone();
        for (message, (tenant, batches, reply)) in appends.into_iter().enumerate() {
            replies.push(reply);
            let slot = match per_tenant.iter().position(|(t, _, _, _)| *t == tenant) {
                Some(slot) => slot,
                None => {
                    per_tenant.push((tenant.clone(), Vec::new(), Vec::new(), HashMap::new()));
                    per_tenant.len() - 1
                }
            };
            let tenant_state = tenant_state(&mut s, &tenant);
            let (_, buffer, staged, staged_bytes) = &mut per_tenant[slot];
            for batch in batches {
                let already = tenant_state
                    .traces
                    .get(&batch.trace_id)
                    .map_or(0, |e| e.total_bytes);
                let staged_for_trace = staged_bytes.entry(batch.trace_id).or_insert(0);
                let size = batch.payload.len() as u64;
                if size > wal::RECORD_PAYLOAD_BYTES_MAX as u64 {
                    // The network edge bounds requests below this; a bug if it happens.
                    let outcome = &mut outcomes[message];
                    outcome.rejected_spans += u64::from(batch.span_count);
                    outcome.rejected_message.get_or_insert_with(|| {
                        format!(
                            "trace {} has {size} bytes in one request, over the WAL record limit of {} bytes",
                            batch.trace_id,
                            wal::RECORD_PAYLOAD_BYTES_MAX
                        )
                    });
                    continue;
                }
                if trace_bytes_max > 0 && already + *staged_for_trace + size > trace_bytes_max {
                    let outcome = &mut outcomes[message];
                    outcome.rejected_spans += u64::from(batch.span_count);
                    if outcome.rejected_message.is_none() {
                        outcome.rejected_message = Some(format!(
                            "TRACE_TOO_LARGE: max size of trace ({trace_bytes_max}) exceeded while adding {size} bytes to trace {} for tenant {tenant}",
                            batch.trace_id
                        ));
                    }
                    metrics
                        .spans_refused
                        .fetch_add(u64::from(batch.span_count), Ordering::Relaxed);
                    metrics.bytes_refused.fetch_add(size, Ordering::Relaxed);
                    continue;
                }
                *staged_for_trace += size;
                let offset_in_buffer = buffer.len();
                wal::encode_record(
                    &wal::RecordRef {
                        tenant: &tenant,
                        trace_id: batch.trace_id,
                        span_count: batch.span_count,
                        start_unix_nanos_min: batch.start_unix_nanos_min,
                        end_unix_nanos_max: batch.end_unix_nanos_max,
                        payload: &batch.payload,
                    },
                    buffer,
                );
                staged.push(Staged {
                    message,
                    trace_id: batch.trace_id,
                    offset_in_buffer,
                    length: buffer.len() - offset_in_buffer,
                    span_count: batch.span_count,
                    payload: batch.payload,
                });
            }
        }
    }

    for (tenant, buffer, staged, _) in per_tenant {
        if staged.is_empty() {
            continue;
        }
        match write_tenant(state, &tenant, buffer).await {
            Ok((file_index, base_offset)) => {
                let mut s = state.borrow_mut();
                let metrics = s.metrics.clone();
                let now = Instant::now();
                let mut new_live_bytes = 0u64;
                let mut new_live_traces = 0usize;
                let tenant_state = tenant_state(&mut s, &tenant);
                for record in staged {
                    let payload_len = record.payload.len() as u64;
                    let entry = tenant_state
                        .traces
                        .entry(record.trace_id)
                        .or_insert_with(|| TraceEntry {
                            locations: Vec::new(),
                            memory: Vec::new(),
                            memory_from: 0,
                            memory_bytes: 0,
                            total_bytes: 0,
                            last_append: now,
                        });
                    if !entry.is_live() {
                        new_live_traces += 1;
                        entry.memory_from = entry.locations.len();
                    }
                    entry.locations.push(Location {
                        file: file_index,
                        offset: base_offset + record.offset_in_buffer as u64,
                        length: record.length as u32,
                    });
                    entry.memory.push(record.payload);
                    entry.memory_bytes += payload_len;
                    entry.total_bytes += payload_len;
                    entry.last_append = now;
                    new_live_bytes += payload_len;
                    let outcome = &mut outcomes[record.message];
                    outcome.accepted_spans += u64::from(record.span_count);
                    metrics
                        .spans_received
                        .fetch_add(u64::from(record.span_count), Ordering::Relaxed);
                    metrics
                        .bytes_received
                        .fetch_add(payload_len, Ordering::Relaxed);
                    metrics.wal_records.fetch_add(1, Ordering::Relaxed);
                }
                tenant_state.live_traces += new_live_traces;
                let traces = tenant_state.traces.len();
                let live_over = tenant_state.live_traces > s.config.live_traces_per_tenant_max;
                s.live_bytes += new_live_bytes;
                metrics
                    .traces_indexed
                    .store(traces as u64, Ordering::Relaxed);
                if live_over || s.live_bytes > s.config.live_bytes_max {
                    evict_oldest(&mut s);
                }
                publish_live_gauges(&s);
            }
            Err(err) => {
                log::error!(
                    "shard {}: WAL write for tenant {tenant} failed: {err}",
                    state.borrow().id
                );
                for record in staged {
                    let outcome = &mut outcomes[record.message];
                    if outcome.failure.is_none() {
                        outcome.failure = Some(format!("WAL write failed: {err}"));
                    }
                }
            }
        }
    }
    for (reply, outcome) in replies.into_iter().zip(outcomes) {
        let _ = reply.send(outcome);
    }
}

/// Appends `buffer` to the tenant's open segment (rolling it over when full) and syncs per
/// policy. Returns the segment's file index and the offset the buffer starts at.
async fn write_tenant(
    state: &Rc<RefCell<ShardState>>,
    tenant: &Tenant,
    buffer: Vec<u8>,
) -> std::io::Result<(u32, u64)> {
    let needs_new = {
        let mut s = state.borrow_mut();
        let max = s.config.wal_segment_bytes_max;
        let t = tenant_state(&mut s, tenant);
        match &t.segment {
            None => true,
            Some(seg) => seg.length > 0 && seg.length + buffer.len() as u64 > max,
        }
    };
    if needs_new {
        open_segment(state, tenant).await?;
    }
    let (file, file_index, offset) = {
        let mut s = state.borrow_mut();
        let t = tenant_state(&mut s, tenant);
        let seg = t.segment.as_ref().expect("opened above");
        let (index, offset) = (seg.file_index, seg.length);
        let file = s.files[index as usize]
            .clone()
            .expect("the open segment has a file");
        (file, index, offset)
    };
    let length = buffer.len() as u64;
    let (result, _) = file.write_all_at(buffer, offset).await;
    result?;
    let policy = state.borrow().config.fsync;
    let metrics = state.borrow().metrics.clone();
    if policy == FsyncPolicy::Always {
        file.sync_data().await?;
        metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
    }
    metrics.wal_appends.fetch_add(1, Ordering::Relaxed);
    metrics.wal_bytes.fetch_add(length, Ordering::Relaxed);
    let mut s = state.borrow_mut();
    let t = tenant_state(&mut s, tenant);
    t.head_bytes += length;
    t.head_started.get_or_insert_with(Instant::now);
    let seg = t.segment.as_mut().expect("opened above");
    seg.length += length;
    seg.dirty = policy != FsyncPolicy::Always;
    Ok((file_index, offset))
}

/// Creates the next segment file with its header, fsyncs it and its directory.
async fn open_segment(state: &Rc<RefCell<ShardState>>, tenant: &Tenant) -> std::io::Result<()> {
    let (dir, sequence, shard, old) = {
        let mut s = state.borrow_mut();
        let shard = s.id as u16;
        let t = tenant_state(&mut s, tenant);
        let sequence = t.next_sequence;
        t.next_sequence += 1;
        (t.dir.clone(), sequence, shard, t.segment.take())
    };
    if let Some(old) = old {
        if old.dirty {
            let file = state.borrow().files[old.file_index as usize].clone();
            if let Some(file) = file {
                file.sync_data().await?;
            }
            state
                .borrow()
                .metrics
                .fsyncs
                .fetch_add(1, Ordering::Relaxed);
        }
    }
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(segment_file_name(sequence));
    let file = monoio::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .open(&path)
        .await?;
    let mut header = Vec::new();
    wal::encode_segment_header(shard, sequence, &mut header);
    let header_len = header.len() as u64;
    let (result, _) = file.write_all_at(header, 0).await;
    result?;
    file.sync_all().await?;
    // The new directory entry must be durable before any record in it is acknowledged.
    std::fs::File::open(&dir)?.sync_all()?;
    let mut s = state.borrow_mut();
    let file_index = s.files.len() as u32;
    s.files.push(Some(Rc::new(file)));
    s.file_paths.push(path);
    s.metrics.wal_segments.fetch_add(1, Ordering::Relaxed);
    s.metrics.fsyncs.fetch_add(2, Ordering::Relaxed);
    let t = tenant_state(&mut s, tenant);
    t.head_segments.push((sequence, file_index));
    t.head_bytes += header_len;
    t.head_started.get_or_insert_with(Instant::now);
    t.segment = Some(OpenSegment {
        file_index,
        length: header_len,
        dirty: false,
    });
    Ok(())
}

async fn sync_dirty(state: &Rc<RefCell<ShardState>>) {
    let files: Vec<Rc<monoio::fs::File>> = {
        let mut s = state.borrow_mut();
        let mut indexes = Vec::new();
        for t in s.tenants.values_mut() {
            if let Some(seg) = t.segment.as_mut() {
                if seg.dirty {
                    seg.dirty = false;
                    indexes.push(seg.file_index);
                }
            }
        }
        indexes
            .iter()
            .filter_map(|&i| s.files[i as usize].clone())
            .collect()
    };
    for file in files {
        if let Err(err) = file.sync_data().await {
            log::error!("WAL fsync failed: {err}");
        } else {
            state
                .borrow()
                .metrics
                .fsyncs
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Gathers every payload of a trace: from memory, from the WAL files for records no longer
/// in memory, and from every block that may hold it (in `range`, when given).
async fn read_trace(
    state: &Rc<RefCell<ShardState>>,
    tenant: &Tenant,
    trace_id: TraceId,
    range: Option<(u64, u64)>,
) -> Result<Vec<Vec<u8>>, String> {
    type OnDisk = Vec<(Option<Rc<monoio::fs::File>>, Location, PathBuf)>;
    let (on_disk, mut in_memory, blocks) = {
        let s = state.borrow();
        let Some(t) = s.tenants.get(tenant) else {
            return Ok(Vec::new());
        };
        let (on_disk, in_memory): (OnDisk, Vec<Vec<u8>>) = match t.traces.get(&trace_id) {
            Some(entry) => (
                entry.locations[..entry.memory_from]
                    .iter()
                    .map(|loc| {
                        (
                            s.files[loc.file as usize].clone(),
                            *loc,
                            s.file_paths[loc.file as usize].clone(),
                        )
                    })
                    .collect(),
                entry.memory.clone(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let blocks: Vec<Rc<OpenBlock>> = t
            .blocks
            .iter()
            .filter(|block| {
                range.is_none_or(|(start, end)| {
                    block.meta.min_start_unix_nanos <= end && block.meta.max_end_unix_nanos >= start
                })
            })
            .cloned()
            .collect();
        (on_disk, in_memory, blocks)
    };
    let mut payloads = Vec::with_capacity(on_disk.len() + in_memory.len());
    for (file, location, path) in on_disk {
        let Some(file) = file else {
            // A bug: locations of deleted segments are dropped with them.
            return Err(format!("WAL segment {} is gone", path.display()));
        };
        let buffer = vec![0u8; location.length as usize];
        let (result, buffer) = file.read_exact_at(buffer, location.offset).await;
        if let Err(err) = result {
            state
                .borrow()
                .metrics
                .read_errors
                .fetch_add(1, Ordering::Relaxed);
            return Err(format!(
                "reading WAL record at {} of {}: {err}",
                location.offset,
                path.display()
            ));
        }
        match wal::decode_record_at(&buffer) {
            Ok(view) => payloads.push(view.payload.to_vec()),
            Err(err) => {
                state
                    .borrow()
                    .metrics
                    .read_errors
                    .fetch_add(1, Ordering::Relaxed);
                return Err(format!(
                    "WAL record at {} of {} is damaged: {err}",
                    location.offset,
                    path.display()
                ));
            }
        }
    }
    payloads.append(&mut in_memory);
    for block in blocks {
        match block.find(&trace_id).await {
            Ok(Some(payload)) => payloads.push(payload),
            Ok(None) => {}
            Err(err) => {
                state
                    .borrow()
                    .metrics
                    .block_read_errors
                    .fetch_add(1, Ordering::Relaxed);
                return Err(err);
            }
        }
    }
    Ok(payloads)
}

/// Traces idle for `trace_idle_period` leave memory (they stay readable from the WAL).
/// One shard's part of a search job (`Msg::Search`): every trace of the index (memory and
/// WAL, merged with its block parts by `read_trace`), then every trace of each block whose
/// time range meets the job's that the index did not cover. A trace stored in several blocks
/// (bloom filters say so) is read whole once.
async fn search_shard(
    state: &Rc<RefCell<ShardState>>,
    tenant: &Tenant,
    job: Arc<crate::search::Job>,
    partials: &flume::Sender<crate::search::ShardAnswer>,
) -> crate::search::ShardAnswer {
    let mut search = crate::search::ShardSearch::new(job);
    if search.is_refused() {
        return search.finish();
    }
    let (start, end) = search.range();
    let (ids, blocks) = {
        let s = state.borrow();
        match s.tenants.get(tenant) {
            None => (Vec::new(), Vec::new()),
            Some(t) => (
                t.traces.keys().copied().collect::<Vec<TraceId>>(),
                t.blocks
                    .iter()
                    .filter(|b| {
                        b.meta.min_start_unix_nanos <= end && b.meta.max_end_unix_nanos >= start
                    })
                    .cloned()
                    .collect::<Vec<Rc<OpenBlock>>>(),
            ),
        }
    };
    let plan = search.plan();
    let mut seen: std::collections::HashSet<TraceId> = std::collections::HashSet::new();
    for (n, id) in ids.iter().enumerate() {
        // A full answer, or nobody waits for it any more (the search gave up).
        if search.is_full() || partials.is_disconnected() {
            break;
        }
        match read_trace(state, tenant, *id, Some((start, end))).await {
            Ok(payloads) if !payloads.is_empty() => {
                let slices: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
                // The strings the query needs must be in the bytes before a decode.
                if plan
                    .as_ref()
                    .is_some_and(|plan| !plan.payload_may_match(&slices))
                {
                    search.skipped(&slices);
                } else {
                    search.offer_parts(id, &slices);
                }
            }
            Ok(_) => {}
            Err(err) => search.error(err),
        }
        seen.insert(*id);
        if n % 256 == 255 {
            yield_now().await;
        }
    }
    // Newest blocks first: a search that stops at `limit` returns recent traces.
    let mut blocks = blocks;
    blocks.sort_by_key(|b| std::cmp::Reverse(b.meta.max_end_unix_nanos));
    for (index, block) in blocks.iter().enumerate() {
        if search.is_full() || partials.is_disconnected() {
            break;
        }
        if search.can_skip(block.meta.max_end_unix_nanos) {
            search.block_done();
            continue;
        }
        // What this shard has so far, for streaming answers (`ShardAnswer::partial`).
        let _ = partials.send_async(search.snapshot()).await;
        // Pages whose spans all miss the job's time range, or whose filter rules out what
        // the query needs, are not read.
        let pages: Vec<usize> = block
            .index
            .pages
            .iter()
            .enumerate()
            .filter(|(_, p)| p.min_start_unix_nanos <= end && p.max_end_unix_nanos >= start)
            .filter(|(number, _)| {
                plan.as_ref()
                    .is_none_or(|plan| plan.page_may_match(block.index.page_filter(*number)))
            })
            .map(|(number, _)| number)
            .collect();
        for page in pages {
            if search.is_full() || partials.is_disconnected() {
                break;
            }
            let bytes = match block.read_page_bytes(page).await {
                Ok(bytes) => bytes,
                Err(err) => {
                    search.error(err);
                    continue;
                }
            };
            let view = match PageView::decode(&bytes) {
                Ok(view) => view,
                Err(err) => {
                    search.error(block.page_damaged(page, &err));
                    continue;
                }
            };
            // Tag names and values without a query: from the page's columns when every span
            // of the page is in the job's range; only raw traces are rebuilt.
            let in_range = search.reads_page_tags()
                && block.index.pages.get(page).is_some_and(|p| {
                    p.min_start_unix_nanos >= start && p.max_end_unix_nanos <= end
                });
            let from_columns = if in_range {
                search.page_tags(&view, true).and_then(|raw| match raw {
                    Some(raw) => view.rebuild(&raw).map(Some),
                    None => Ok(None),
                })
            } else {
                Ok(None)
            };
            match from_columns {
                Ok(Some(raw)) => {
                    search.scanned(bytes.len() as u64, 0);
                    for (id, payload) in raw {
                        search.offer_scanned(&id, &payload);
                    }
                    yield_now().await;
                    continue;
                }
                Ok(None) => {}
                Err(err) => {
                    search.error(block.page_damaged(page, &err));
                    continue;
                }
            }
            // Judge the page's traces from the columns the query reads, rebuild only the
            // candidates; a candidate also stored elsewhere is read whole.
            let scanned = (|| {
                let (candidates, spans) = match &plan {
                    Some(plan) => {
                        let scan = plan.scan(&view)?;
                        (scan.candidates, scan.spans)
                    }
                    None => (
                        (0..view.trace_count as usize)
                            .map(|index| crate::scan::Candidate {
                                index,
                                strong: true,
                            })
                            .collect(),
                        u64::from(view.span_count),
                    ),
                };
                if candidates.is_empty() {
                    return Ok((Vec::new(), Vec::new(), spans));
                }
                let ids = view.trace_ids()?;
                let mut rebuild = Vec::new();
                let mut whole = Vec::new();
                for c in candidates {
                    let Some(id) = ids.get(c.index) else {
                        continue;
                    };
                    if seen.contains(id) {
                        continue;
                    }
                    let elsewhere = blocks
                        .iter()
                        .enumerate()
                        .any(|(other, b)| other != index && b.index.bloom.may_contain(id));
                    if elsewhere {
                        whole.push(*id);
                    } else if c.strong {
                        rebuild.push(c.index);
                    }
                }
                Ok((view.rebuild(&rebuild)?, whole, spans))
            })();
            match scanned {
                Ok((rebuilt, whole, spans)) => {
                    search.scanned(bytes.len() as u64, spans);
                    for (n, (id, payload)) in rebuilt.into_iter().enumerate() {
                        if search.is_full() {
                            break;
                        }
                        search.offer_scanned(&id, &payload);
                        if n % 256 == 255 {
                            yield_now().await;
                        }
                    }
                    for id in whole {
                        if search.is_full() || !seen.insert(id) {
                            continue;
                        }
                        match read_trace(state, tenant, id, Some((start, end))).await {
                            Ok(payloads) if !payloads.is_empty() => {
                                let slices: Vec<&[u8]> =
                                    payloads.iter().map(Vec::as_slice).collect();
                                search.offer(&id, &otlp::assemble_trace(&slices));
                            }
                            Ok(_) => {}
                            Err(err) => search.error(err),
                        }
                    }
                }
                Err(err) => search.error(block.page_damaged(page, &err)),
            }
            yield_now().await;
        }
        search.block_done();
    }
    search.finish()
}

fn evict_idle(state: &Rc<RefCell<ShardState>>, now: Instant) {
    let mut s = state.borrow_mut();
    let idle = s.config.trace_idle_period;
    let mut freed = 0u64;
    for t in s.tenants.values_mut() {
        if t.live_traces == 0 {
            continue;
        }
        for entry in t.traces.values_mut() {
            if entry.is_live() && now.duration_since(entry.last_append) >= idle {
                freed += evict_entry(entry);
                t.live_traces -= 1;
            }
        }
    }
    if freed > 0 {
        s.live_bytes -= freed;
        publish_live_gauges(&s);
    }
}

fn evict_entry(entry: &mut TraceEntry) -> u64 {
    let freed = entry.memory_bytes;
    entry.memory.clear();
    entry.memory.shrink_to_fit();
    entry.memory_bytes = 0;
    entry.memory_from = entry.locations.len();
    freed
}

/// Over a live bound: the least recently written quarter of live traces leave memory.
fn evict_oldest(s: &mut ShardState) {
    let per_tenant_max = s.config.live_traces_per_tenant_max;
    let bytes_over = s.live_bytes > s.config.live_bytes_max;
    let mut freed = 0u64;
    for t in s.tenants.values_mut() {
        if !(bytes_over || t.live_traces > per_tenant_max) || t.live_traces == 0 {
            continue;
        }
        let mut live: Vec<(Instant, TraceId)> = t
            .traces
            .iter()
            .filter(|(_, e)| e.is_live())
            .map(|(id, e)| (e.last_append, *id))
            .collect();
        live.sort_unstable();
        let target = (per_tenant_max.min(t.live_traces) * 3 / 4).max(1);
        let evict = t
            .live_traces
            .saturating_sub(target)
            .max(live.len() / 4)
            .max(1);
        for (_, id) in live.into_iter().take(evict) {
            if let Some(entry) = t.traces.get_mut(&id) {
                freed += evict_entry(entry);
                t.live_traces -= 1;
            }
        }
    }
    s.live_bytes -= freed;
}

fn publish_live_gauges(s: &ShardState) {
    let live: usize = s.tenants.values().map(|t| t.live_traces).sum();
    s.metrics.live_traces.store(live as u64, Ordering::Relaxed);
    s.metrics.live_bytes.store(s.live_bytes, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------------------
// Blocks: startup, cuts, compaction, retention.

fn unix_nanos_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Blocks a shard reads: its own, and every block written under another shard count (its
/// traces may hash to any shard now).
fn block_is_read_by(meta_shard: u32, meta_shards: u32, id: usize, shards: usize) -> bool {
    meta_shards as usize != shards || meta_shard as usize == id
}

/// The one shard that deletes a block or debris of a writer: the writer itself, or under a
/// changed shard count, one chosen by position (as for WAL directories).
fn block_is_deleted_by(meta_shard: u32, meta_shards: u32, id: usize, shards: usize) -> bool {
    if meta_shards as usize == shards {
        meta_shard as usize == id
    } else {
        meta_shard as usize % shards == id
    }
}

fn publish_block_gauges(s: &ShardState) {
    let (mut count, mut bytes) = (0u64, 0u64);
    for t in s.tenants.values() {
        count += t.blocks.len() as u64;
        bytes += t.blocks.iter().map(|b| b.meta.data_bytes).sum::<u64>();
    }
    s.metrics.blocks.store(count, Ordering::Relaxed);
    s.metrics.block_bytes.store(bytes, Ordering::Relaxed);
}

/// Startup, before WAL replay: opens every block this shard reads, removes debris of
/// crashed writes (temporary directories, blocks superseded by a published compaction, WAL
/// segments already covered by a published block), and skips damaged blocks.
async fn load_blocks(state: &Rc<RefCell<ShardState>>) {
    let (block_dir, wal_dir, id, shards) = {
        let s = state.borrow();
        (
            s.config.block_dir.clone(),
            s.config.wal_dir.clone(),
            s.id,
            s.config.shards,
        )
    };
    let tenants = match std::fs::read_dir(&block_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
        Err(err) => {
            log::error!(
                "shard {id}: cannot list block directory {}: {err}",
                block_dir.display()
            );
            return;
        }
    };
    for tenant_entry in tenants.flatten() {
        let Some(tenant) = tenant_entry
            .file_name()
            .to_str()
            .and_then(|name| Tenant::parse(name).ok())
        else {
            continue;
        };
        let Ok(entries) = std::fs::read_dir(tenant_entry.path()) else {
            continue;
        };
        let mut opened = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let path = entry.path();
            if let Some(rest) = name.strip_prefix(store::TMP_PREFIX) {
                let writer = rest.get(..16).and_then(parse_shard_dir);
                if let Some((writer, writer_shards)) = writer {
                    if block_is_deleted_by(writer as u32, writer_shards as u32, id, shards) {
                        log::warn!(
                            "blocks: removing {}, left by an interrupted write or removal",
                            path.display()
                        );
                        if let Err(err) = std::fs::remove_dir_all(&path) {
                            log::error!("blocks: cannot remove {}: {err}", path.display());
                        }
                    }
                }
                continue;
            }
            if !block::meta::is_valid_block_id(&name) {
                continue;
            }
            // Ownership from meta.json first, so a shard opens only the blocks it reads and
            // one shard reports each damaged block.
            let meta = std::fs::read(path.join(store::META_FILE))
                .map_err(|err| err.to_string())
                .and_then(|bytes| BlockMeta::from_json(&bytes));
            let reporter = match &meta {
                Ok(meta) => {
                    if !block_is_read_by(meta.shard, meta.shards, id, shards) {
                        continue;
                    }
                    block_is_deleted_by(meta.shard, meta.shards, id, shards)
                }
                Err(_) => id == 0,
            };
            match OpenBlock::open(&path, &tenant).await {
                Ok(block) => opened.push(block),
                Err(err) => {
                    if reporter {
                        log::error!(
                            "blocks: skipping {} (tenant {tenant}): {err}",
                            path.display()
                        );
                        state
                            .borrow()
                            .metrics
                            .blocks_corrupt
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        // A compaction published its block but did not get to delete its sources.
        let superseded: std::collections::HashSet<String> = opened
            .iter()
            .flat_map(|b| b.meta.compacted_from.iter().cloned())
            .collect();
        let own_wal_dir = wal_dir
            .join(tenant.as_str())
            .join(shard_dir_name(id, shards));
        let mut next_sequence = 0u64;
        let mut kept = Vec::new();
        for block in opened {
            let own = block.meta.shards as usize == shards && block.meta.shard as usize == id;
            if own {
                // Segments covered by a published block: deleted if a crash left them.
                for &sequence in &block.meta.wal_segments {
                    next_sequence = next_sequence.max(sequence + 1);
                    let path = own_wal_dir.join(segment_file_name(sequence));
                    if path.exists() {
                        log::info!(
                            "WAL: {} is already in block {}; deleting it",
                            path.display(),
                            block.id()
                        );
                        if let Err(err) = std::fs::remove_file(&path) {
                            log::error!("WAL: cannot delete {}: {err}", path.display());
                        }
                    }
                }
            }
            if superseded.contains(block.id()) {
                if block_is_deleted_by(block.meta.shard, block.meta.shards, id, shards) {
                    log::info!(
                        "blocks: deleting {}, already compacted into another block",
                        block.dir.display()
                    );
                    if let Err(err) = store::remove_block(&block.dir, &writer_dir(&block.meta)) {
                        log::error!("blocks: cannot delete {}: {err}", block.dir.display());
                    }
                }
                continue;
            }
            kept.push(Rc::new(block));
        }
        if own_wal_dir.exists() {
            let _ = store::sync_dir(&own_wal_dir);
        }
        let mut s = state.borrow_mut();
        let t = tenant_state(&mut s, &tenant);
        t.next_sequence = t.next_sequence.max(next_sequence);
        t.blocks.extend(kept);
    }
    let s = state.borrow();
    publish_block_gauges(&s);
    let blocks = s.metrics.blocks.load(Ordering::Relaxed);
    if blocks > 0 {
        log::info!("shard {id}: serving {blocks} blocks");
    }
}

/// Tenants whose head block is old or large enough to cut.
fn heads_due(state: &Rc<RefCell<ShardState>>, now: Instant) -> Vec<Tenant> {
    let s = state.borrow();
    s.tenants
        .iter()
        .filter(|(_, t)| {
            !t.head_segments.is_empty()
                && (t.head_bytes >= s.config.max_block_bytes
                    || t.head_started.is_some_and(|started| {
                        now.duration_since(started) >= s.config.max_block_duration
                    }))
        })
        .map(|(tenant, _)| tenant.clone())
        .collect()
}

/// Cuts the head blocks of `tenants` (all when `None`). The first error is returned; the
/// other tenants are still cut.
async fn cut_tenants(
    state: &Rc<RefCell<ShardState>>,
    tenants: Option<Vec<Tenant>>,
) -> Result<(), String> {
    let tenants = tenants.unwrap_or_else(|| {
        let s = state.borrow();
        s.tenants
            .iter()
            .filter(|(_, t)| !t.head_segments.is_empty())
            .map(|(tenant, _)| tenant.clone())
            .collect()
    });
    let mut first_error = None;
    for tenant in tenants {
        if let Err(err) = cut_tenant(state, &tenant).await {
            let id = state.borrow().id;
            log::error!("shard {id}: cutting the block of tenant {tenant} failed: {err}");
            state
                .borrow()
                .metrics
                .block_write_errors
                .fetch_add(1, Ordering::Relaxed);
            first_error.get_or_insert(format!("tenant {tenant}: {err}"));
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Cuts one tenant's head block: roll the WAL, write every trace of the closed segments into
/// a block, publish it, then delete the segments and forget their traces. On failure the
/// segments stay the head block (nothing is lost; a later cut retries).
async fn cut_tenant(state: &Rc<RefCell<ShardState>>, tenant: &Tenant) -> Result<(), String> {
    // A WAL write in flight holds a clone of its segment's file. Roll only between writes:
    // a write that lands after the roll would go to a segment this cut reads (maybe before
    // the write) and then deletes. No await between this check and the roll below.
    loop {
        let busy = {
            let s = state.borrow();
            s.tenants
                .get(tenant)
                .and_then(|t| t.segment.as_ref())
                .and_then(|segment| s.files.get(segment.file_index as usize)?.as_ref())
                .is_some_and(|file| Rc::strong_count(file) > 1)
        };
        if !busy {
            break;
        }
        monoio::time::sleep(Duration::from_micros(200)).await;
    }
    let (segments, paths, dirty) = {
        let mut s = state.borrow_mut();
        let t = tenant_state(&mut s, tenant);
        // Roll: the next append opens a new segment, outside this cut.
        let rolled = t.segment.take();
        let segments = std::mem::take(&mut t.head_segments);
        let bytes = std::mem::take(&mut t.head_bytes);
        let started = t.head_started.take();
        let paths: Vec<PathBuf> = segments
            .iter()
            .map(|&(_, file)| s.file_paths[file as usize].clone())
            .collect();
        let dirty = rolled
            .filter(|segment| segment.dirty)
            .and_then(|segment| s.files[segment.file_index as usize].clone());
        ((segments, bytes, started), paths, dirty)
    };
    if let Some(file) = dirty {
        // Under `interval`, acknowledged records of the rolled segment must still reach the
        // disk if this cut fails.
        if let Err(err) = file.sync_data().await {
            log::error!("WAL fsync failed: {err}");
        }
    }
    if segments.0.is_empty() {
        return Ok(());
    }
    let result = write_cut_block(state, tenant, &segments.0, &paths).await;
    let block = match result {
        Ok(block) => block,
        Err(err) => {
            let mut s = state.borrow_mut();
            let t = tenant_state(&mut s, tenant);
            let (mut old, bytes, started) = segments;
            old.append(&mut t.head_segments);
            t.head_segments = old;
            t.head_bytes += bytes;
            t.head_started = started.or(t.head_started);
            return Err(err);
        }
    };
    // The block is durable: the segments it covers can go.
    let cut: std::collections::HashSet<u32> = segments.0.iter().map(|&(_, file)| file).collect();
    let wal_dir = {
        let mut s = state.borrow_mut();
        for &file in &cut {
            s.files[file as usize] = None;
        }
        tenant_state(&mut s, tenant).dir.clone()
    };
    for path in &paths {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => log::error!("WAL: cannot delete {}: {err}", path.display()),
        }
    }
    if let Err(err) = store::sync_dir(&wal_dir) {
        log::error!("WAL: cannot sync {}: {err}", wal_dir.display());
    }
    let mut s = state.borrow_mut();
    let mut freed = 0u64;
    let mut no_longer_live = 0usize;
    let t = tenant_state(&mut s, tenant);
    t.traces.retain(|_, entry| {
        if !entry.locations.iter().any(|l| cut.contains(&l.file)) {
            return true;
        }
        let was_live = entry.is_live();
        let memory_from = entry.memory_from;
        let old_locations = std::mem::take(&mut entry.locations);
        let mut old_memory = std::mem::take(&mut entry.memory).into_iter();
        entry.memory_from = 0;
        entry.memory_bytes = 0;
        for (i, location) in old_locations.into_iter().enumerate() {
            let payload = if i >= memory_from {
                old_memory.next()
            } else {
                None
            };
            if cut.contains(&location.file) {
                if let Some(payload) = payload {
                    freed += payload.len() as u64;
                }
                continue;
            }
            entry.locations.push(location);
            match payload {
                Some(payload) => {
                    entry.memory_bytes += payload.len() as u64;
                    entry.memory.push(payload);
                }
                None => entry.memory_from += 1,
            }
        }
        if entry.memory.is_empty() {
            entry.memory_from = entry.locations.len();
        }
        if was_live && !entry.is_live() {
            no_longer_live += 1;
        }
        !entry.locations.is_empty()
    });
    t.live_traces -= no_longer_live;
    if let Some(block) = block {
        t.blocks.push(Rc::new(block));
        s.metrics.blocks_cut.fetch_add(1, Ordering::Relaxed);
    }
    let traces: usize = s.tenants.values().map(|t| t.traces.len()).sum();
    s.live_bytes -= freed;
    s.metrics
        .traces_indexed
        .store(traces as u64, Ordering::Relaxed);
    publish_live_gauges(&s);
    publish_block_gauges(&s);
    Ok(())
}

/// Reads the closed segments and writes their traces as one published block (`None` when
/// they hold no record).
async fn write_cut_block(
    state: &Rc<RefCell<ShardState>>,
    tenant: &Tenant,
    segments: &[(u64, u32)],
    paths: &[PathBuf],
) -> Result<Option<OpenBlock>, String> {
    let mut buffers = Vec::with_capacity(paths.len());
    let mut traces: HashMap<TraceId, Vec<(usize, std::ops::Range<usize>)>> = HashMap::new();
    for path in paths {
        let bytes = match read_whole_file(path).await {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(format!("reading {}: {err}", path.display())),
        };
        let replayed = wal::replay_segment(&bytes);
        if let wal::ReplayEnd::Corrupt { offset, reason } = &replayed.end {
            log::error!(
                "WAL: {}: corrupt record at byte {offset} ({reason}) while cutting a block",
                path.display()
            );
        }
        for record in replayed.records {
            if &record.tenant == tenant {
                traces
                    .entry(record.trace_id)
                    .or_default()
                    .push((buffers.len(), record.payload));
            }
        }
        buffers.push(bytes);
    }
    let mut ids: Vec<TraceId> = traces.keys().copied().collect();
    ids.sort_unstable();
    let mut writer = BlockWriter::new();
    for (n, trace_id) in ids.iter().enumerate() {
        let parts: Vec<&[u8]> = traces[trace_id]
            .iter()
            .filter_map(|(buffer, range)| buffers.get(*buffer)?.get(range.clone()))
            .collect();
        writer.add_trace(*trace_id, &otlp::assemble_trace(&parts));
        // ~64 traces are well under a millisecond: reads waiting behind the cut stay fast.
        if n % 64 == 63 {
            yield_now().await;
        }
    }
    drop(traces);
    drop(buffers);
    if writer.trace_count() == 0 {
        return Ok(None);
    }
    let wal_segments = segments.iter().map(|&(sequence, _)| sequence).collect();
    publish_block(state, tenant, writer, Vec::new(), 0, wal_segments)
        .await
        .map(Some)
}

/// Finishes `writer`, publishes the block and opens it.
async fn publish_block(
    state: &Rc<RefCell<ShardState>>,
    tenant: &Tenant,
    writer: BlockWriter,
    compacted_from: Vec<String>,
    compaction_level: u32,
    wal_segments: Vec<u64>,
) -> Result<OpenBlock, String> {
    let (data, stats) = writer.finish();
    let (tenant_dir, shard_dir, meta) = {
        let mut s = state.borrow_mut();
        s.blocks_created += 1;
        let block_id = block::new_block_id(s.id, s.blocks_created, unix_nanos_now());
        let meta = BlockMeta {
            format_version: block::BLOCK_FORMAT_VERSION,
            block_id,
            tenant: tenant.clone(),
            shard: s.id as u32,
            shards: s.config.shards as u32,
            min_start_unix_nanos: stats.min_start_unix_nanos,
            max_end_unix_nanos: stats.max_end_unix_nanos,
            trace_count: stats.trace_count,
            span_count: stats.span_count,
            page_count: stats.page_count,
            data_bytes: stats.data_bytes,
            payload_bytes: stats.payload_bytes,
            footer_crc32: stats.footer_crc32,
            compaction_level,
            compacted_from,
            wal_segments,
        };
        (
            s.config.block_dir.join(tenant.as_str()),
            shard_dir_name(s.id, s.config.shards),
            meta,
        )
    };
    let dir = store::publish(&tenant_dir, &shard_dir, &meta, data)
        .await
        .map_err(|err| format!("writing block {}: {err}", meta.block_id))?;
    log::debug!(
        "blocks: published {} ({} traces, {} spans, {} bytes)",
        dir.display(),
        meta.trace_count,
        meta.span_count,
        meta.data_bytes
    );
    OpenBlock::open(&dir, tenant)
        .await
        .map_err(|err| format!("block {} does not read back: {err}", meta.block_id))
}

/// Gives the other tasks of this thread (the shard loop, connections) a turn.
async fn yield_now() {
    struct YieldNow(bool);
    impl std::future::Future for YieldNow {
        type Output = ();
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<()> {
            if self.0 {
                return std::task::Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
    YieldNow(false).await;
}

/// Starts retention and compaction in the background unless they are already running.
fn start_maintenance(state: &Rc<RefCell<ShardState>>) {
    {
        let mut s = state.borrow_mut();
        if s.maintaining {
            return;
        }
        s.maintaining = true;
    }
    let state = state.clone();
    monoio::spawn(async move {
        apply_retention(&state);
        // Bounded: each round removes at least one block.
        for _ in 0..64 {
            match compact_once(&state).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(err) => {
                    log::error!("shard {}: compaction failed: {err}", state.borrow().id);
                    state
                        .borrow()
                        .metrics
                        .block_write_errors
                        .fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        state.borrow_mut().maintaining = false;
    });
}

/// Deletes blocks whose newest span is older than `block_retention`.
fn apply_retention(state: &Rc<RefCell<ShardState>>) {
    let mut s = state.borrow_mut();
    let cutoff = unix_nanos_now()
        .saturating_sub(u64::try_from(s.config.block_retention.as_nanos()).unwrap_or(u64::MAX));
    let (id, shards) = (s.id, s.config.shards);
    let metrics = s.metrics.clone();
    let mut expired = Vec::new();
    for t in s.tenants.values_mut() {
        t.blocks.retain(|block| {
            if block.meta.max_end_unix_nanos >= cutoff {
                return true;
            }
            if block_is_deleted_by(block.meta.shard, block.meta.shards, id, shards) {
                expired.push(block.clone());
            }
            false
        });
    }
    publish_block_gauges(&s);
    drop(s);
    for block in expired {
        log::info!(
            "blocks: retention deletes {} (newest span older than the retention)",
            block.dir.display()
        );
        match store::remove_block(&block.dir, &writer_dir(&block.meta)) {
            Ok(()) => {
                metrics
                    .blocks_retention_deleted
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => log::error!("blocks: cannot delete {}: {err}", block.dir.display()),
        }
    }
}

/// Merges one group of this shard's blocks (same tenant, same compaction window) if there
/// is one with two or more blocks. Returns whether it compacted.
async fn compact_once(state: &Rc<RefCell<ShardState>>) -> Result<bool, String> {
    let group = {
        let s = state.borrow();
        let window = u64::try_from(s.config.compaction_window.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut found = None;
        for (tenant, t) in &s.tenants {
            let mut by_window: HashMap<u64, Vec<Rc<OpenBlock>>> = HashMap::new();
            for block in &t.blocks {
                let own = block.meta.shard as usize == s.id
                    && block.meta.shards as usize == s.config.shards;
                if own && !block.damaged.get() {
                    by_window
                        .entry(block.meta.min_start_unix_nanos / window)
                        .or_default()
                        .push(block.clone());
                }
            }
            let mut windows: Vec<_> = by_window
                .into_iter()
                .filter(|(_, b)| b.len() >= 2)
                .collect();
            windows.sort_by_key(|(window, _)| *window);
            if let Some((_, mut blocks)) = windows.into_iter().next() {
                blocks.sort_by_key(|b| b.meta.payload_bytes);
                let mut chosen = Vec::new();
                let mut bytes = 0u64;
                for block in blocks {
                    if chosen.len() >= COMPACTION_INPUT_BLOCKS_MAX
                        || (chosen.len() >= 2
                            && bytes + block.meta.payload_bytes > COMPACTION_INPUT_BYTES_MAX)
                    {
                        break;
                    }
                    bytes += block.meta.payload_bytes;
                    chosen.push(block);
                }
                found = Some((tenant.clone(), chosen));
                break;
            }
        }
        found
    };
    let Some((tenant, sources)) = group else {
        return Ok(false);
    };
    // A k-way merge by trace ID, one page of each source in memory at a time.
    struct Source {
        block: Rc<OpenBlock>,
        next_page: usize,
        traces: std::iter::Peekable<std::vec::IntoIter<(TraceId, Vec<u8>)>>,
    }
    let mut merging: Vec<Source> = sources
        .iter()
        .map(|block| Source {
            block: block.clone(),
            next_page: 0,
            traces: Vec::new().into_iter().peekable(),
        })
        .collect();
    let mut writer = BlockWriter::new();
    let mut written = 0usize;
    loop {
        for source in &mut merging {
            while source.traces.peek().is_none()
                && source.next_page < source.block.index.pages.len()
            {
                let page = source.block.read_page(source.next_page).await?;
                source.next_page += 1;
                source.traces = page.into_iter().peekable();
            }
        }
        let Some(trace_id) = merging
            .iter_mut()
            .filter_map(|source| source.traces.peek().map(|(id, _)| *id))
            .min()
        else {
            break;
        };
        let payloads: Vec<Vec<u8>> = merging
            .iter_mut()
            .filter_map(|source| source.traces.next_if(|(id, _)| *id == trace_id))
            .map(|(_, payload)| payload)
            .collect();
        let parts: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        writer.add_trace(trace_id, &otlp::assemble_trace(&parts));
        written += 1;
        // ~64 traces are well under a millisecond: lookups waiting behind it stay fast.
        if written.is_multiple_of(64) {
            yield_now().await;
        }
    }
    drop(merging);
    let compacted_from: Vec<String> = sources.iter().map(|b| b.meta.block_id.clone()).collect();
    let mut wal_segments: Vec<u64> = sources
        .iter()
        .flat_map(|b| b.meta.wal_segments.iter().copied())
        .collect();
    wal_segments.sort_unstable();
    wal_segments.dedup();
    let level = sources
        .iter()
        .map(|b| b.meta.compaction_level)
        .max()
        .unwrap_or(0)
        + 1;
    let block = publish_block(
        state,
        &tenant,
        writer,
        compacted_from.clone(),
        level,
        wal_segments,
    )
    .await?;
    {
        let mut s = state.borrow_mut();
        let t = tenant_state(&mut s, &tenant);
        t.blocks
            .retain(|b| !compacted_from.iter().any(|id| id == b.id()));
        t.blocks.push(Rc::new(block));
        s.metrics.blocks_compacted.fetch_add(1, Ordering::Relaxed);
        publish_block_gauges(&s);
    }
    for source in &sources {
        if let Err(err) = store::remove_block(&source.dir, &writer_dir(&source.meta)) {
            log::error!("blocks: cannot delete {}: {err}", source.dir.display());
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_is_stable_and_spreads() {
        let mut counts = [0usize; 4];
        for i in 0u32..4000 {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&i.to_le_bytes());
            let shard = shard_for(&TraceId(id), 4);
            assert_eq!(shard, shard_for(&TraceId(id), 4));
            counts[shard] += 1;
        }
        for count in counts {
            assert!(count > 800, "{counts:?}");
        }
    }

    #[test]
    fn shard_dir_names_round_trip() {
        assert_eq!(parse_shard_dir(&shard_dir_name(3, 16)), Some((3, 16)));
        assert_eq!(parse_shard_dir("shard-016-of-016"), None);
        assert_eq!(parse_shard_dir("other"), None);
    }
}

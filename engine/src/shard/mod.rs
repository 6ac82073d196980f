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
//! block*, and the shard holds every record of them in memory (the WAL is read back only at
//! replay). A shard cuts a head when it is `max_block_duration` old, holds `max_block_bytes`
//! of WAL, or when the heads being filled hold half of `live_bytes_max`, and on `/flush`: it
//! rolls the WAL to a new segment, takes the payloads of the closed segments from memory,
//! writes every trace in them (the rest of a trace still being written goes into the next
//! block) into one block, publishes it (temp name, fsync, rename, directory fsync), and only
//! then deletes those segments and drops their payloads; the traces are found from then on
//! through the block's bloom filter and index (no per-trace memory). `meta.json` lists the
//! WAL sequences a block covers, so a restart between publishing and deleting deletes them
//! then. **Architecture Invariant:** an acknowledged span is in a WAL segment or in a
//! published block at every instant.
//!
//! Memory: `live_bytes_max` bounds the payload bytes a shard holds (heads being filled and a
//! head being cut); an append that would pass it is refused whole with
//! [`AppendOutcome::exhausted`] (gRPC `RESOURCE_EXHAUSTED`), never dropped and never grown
//! past the bound.
//!
//! Reads: memory (WAL only for segments replayed from another shard count), then every block of the tenant that may hold the trace (time range,
//! bloom, index, one page); `otlp::assemble_trace` merges and de-duplicates by span ID.
//! A shard opens its own blocks (`shard-<k>-of-<n>` in `meta.json`) and every block written
//! under a different shard count, so lookups still work after the count changes.
//!
//! Compaction (a background task per shard, after `/flush` and every
//! [`MAINTENANCE_INTERVAL`], as Tempo's `compaction_cycle`): a shard merges its own blocks of one tenant and one
//! `compaction_window` into one, de-duplicating spans (in the window still being written,
//! only blocks of one compaction level, as Tempo's selector does); the new block (its `meta.json` naming
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
use crate::block::{self, BlockMeta, PageView};
use crate::ids::{Tenant, TraceId};
use crate::otlp::{self, TraceBatch};
use crate::wal;

mod blocks;
mod builder;
mod commit;
mod maintenance;
mod read;
mod replay;
mod slice;

use blocks::*;
use commit::*;
use maintenance::*;
use read::*;
use replay::*;
use slice::*;

/// How many queued messages one group commit takes at most.
pub const GROUP_COMMIT_MESSAGES_MAX: usize = 256;
/// Capacity of each shard's inbound channel.
pub const SHARD_CHANNEL_CAPACITY: usize = 1024;
/// The longest a shard loop sleeps without a message (it fsyncs under [`FsyncPolicy::Interval`]
/// and cuts due head blocks on this beat).
const TICK: Duration = Duration::from_millis(100);
/// How long appends wait at most for a running cut to free memory before they are refused.
pub const APPEND_MEMORY_WAIT_MAX: Duration = Duration::from_secs(5);
/// How often a shard looks for blocks to compact or to delete (retention).
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(30);
/// Blocks merged by one compaction at most.
pub const COMPACTION_INPUT_BLOCKS_MAX: usize = 8;
/// Blocks of one compaction level merged at least, in the compaction window being written.
pub const COMPACTION_INPUT_BLOCKS_MIN_ACTIVE: usize = 2;
/// Blocks a shard holds past which its compaction thread runs at normal priority (sharing
/// the core with the shard thread) instead of only in the core's idle time, once its merge
/// starves there ([`COMPACTION_STARVED_AFTER`]).
pub const COMPACTION_BACKLOG_BLOCKS: usize = 16;
/// Blocks a shard holds past which its compaction thread runs at normal priority even while
/// its merges progress in the idle time (they do not keep up).
pub const COMPACTION_BACKLOG_BLOCKS_MAX: usize = 4 * COMPACTION_BACKLOG_BLOCKS;
/// A merge that read no page for this long, with a backlog, starves in the idle time.
pub const COMPACTION_STARVED_AFTER: Duration = Duration::from_secs(1);
/// Payload bytes of one compaction's inputs at most (they are held in memory).
pub const COMPACTION_INPUT_BYTES_MAX: u64 = 1 << 30;
const _: () = assert!(COMPACTION_INPUT_BLOCKS_MIN_ACTIVE <= COMPACTION_INPUT_BLOCKS_MAX);
const _: () = assert!(COMPACTION_BACKLOG_BLOCKS < COMPACTION_BACKLOG_BLOCKS_MAX);

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
    /// `overrides.defaults.global.max_bytes_per_trace`; 0 = unlimited.
    pub trace_bytes_max: u64,
    /// `allegro.live_traces_bytes_max`: payload bytes a shard holds in memory at most (its
    /// head blocks, including one being cut). A head is cut once the heads being filled hold
    /// half of it; an append that would pass it is refused with [`AppendOutcome::exhausted`].
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
    /// Set when a shard refused spans because its memory for traces not yet in a block is
    /// full (`live_bytes_max`): the client should retry later (gRPC `RESOURCE_EXHAUSTED`).
    /// What other shards accepted is durable.
    pub exhausted: Option<String>,
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
        if self.exhausted.is_none() {
            self.exhausted = other.exhausted;
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
    /// Bytes of the record's payload.
    payload_length: u32,
}

/// One WAL record of a trace. Records of this shard's own head segments keep their payload
/// in memory until a published block covers the segment (the head is cut from memory, the
/// WAL is only read back at replay); records of segments written under another shard count
/// are read from the WAL (`payload: None`).
struct Part {
    location: Location,
    payload: Option<Arc<Vec<u8>>>,
}

/// What a shard knows of one trace.
struct TraceEntry {
    /// Every WAL record of the trace, oldest first.
    parts: Vec<Part>,
    /// Parts whose payload is in memory, and their bytes.
    memory_parts: u32,
    memory_bytes: u64,
    /// All payload bytes ever appended (for `max_bytes_per_trace`).
    total_bytes: u64,
}

impl TraceEntry {
    fn new() -> TraceEntry {
        TraceEntry {
            parts: Vec::new(),
            memory_parts: 0,
            memory_bytes: 0,
            total_bytes: 0,
        }
    }

    fn is_live(&self) -> bool {
        self.memory_parts > 0
    }

    /// Adds a record (oldest first); returns whether the trace became live.
    fn push(&mut self, location: Location, payload: Option<Arc<Vec<u8>>>) -> bool {
        let became_live = payload.is_some() && !self.is_live();
        let bytes = u64::from(location.payload_length);
        self.total_bytes += bytes;
        if payload.is_some() {
            self.memory_parts += 1;
            self.memory_bytes += bytes;
        }
        self.parts.push(Part { location, payload });
        became_live
    }
}

/// A record of the head block: its trace and its payload (shared with the trace's [`Part`]).
struct HeadRecord {
    trace_id: TraceId,
    payload: Arc<Vec<u8>>,
}

/// One segment file this shard writes to.
struct OpenSegment {
    file_index: u32,
    /// The same file, for appends: written and fsynced with plain system calls on the shard
    /// thread (see `commit::append`).
    writer: std::fs::File,
    length: u64,
    dirty: bool,
    /// The fragments this segment's records define so far (`wal/packed.rs`).
    fragments: crate::wal::Fragments,
}

struct TenantState {
    dir: PathBuf,
    segment: Option<OpenSegment>,
    traces: crate::hash::IdMap<TraceId, TraceEntry>,
    live_traces: usize,
    next_sequence: u64,
    /// This shard's own segments not yet covered by a published block (the head block):
    /// `(sequence, file index)`, oldest first. Segments of another shard layout are never
    /// here: they are replayed, not cut.
    head_segments: Vec<(u64, u32)>,
    /// WAL bytes in `head_segments`, and when the head block got its first record.
    head_bytes: u64,
    /// Payload bytes in memory of the records in `head_segments` (a head being cut is no
    /// longer counted here, only in `ShardState::live_bytes`).
    head_memory_bytes: u64,
    /// Every record of `head_segments`, in the order written: what the next cut puts in its
    /// block, without a walk over `traces`. **Invariant:** their payload bytes sum to
    /// `head_memory_bytes`.
    head_records: Vec<HeadRecord>,
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
    /// Payload bytes in memory: every head, including one being cut, until its block is
    /// published. At most `config.live_bytes_max` (appends past it are refused).
    live_bytes: u64,
    /// A compaction/retention task is running.
    maintaining: bool,
    /// A background cut (a head block due by size or age) is running.
    cutting: bool,
    /// Blocks created by this shard in this run (part of new block IDs).
    blocks_created: u64,
    /// The thread that builds this shard's head blocks (`None`: it could not start, the
    /// shard builds them itself, holding its thread).
    builder: Option<builder::Builder>,
    /// The thread that merges this shard's blocks in compactions (`None`: the shard merges
    /// them itself). Not the builder: a cut must never wait behind a compaction.
    compactor: Option<builder::Builder>,
    compaction_urgency: maintenance::CompactionUrgency,
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
            builder: start_helper(self.id, "build"),
            compactor: start_helper(self.id, "compact"),
            compaction_urgency: maintenance::CompactionUrgency::new(Instant::now()),
        }));
        load_blocks(&state).await;
        // Nothing waits on this thread during replay and `/flush`: their cuts are urgent (an
        // idle-priority builder would wait behind every other process on the core).
        set_builder_urgent(&state, true);
        replay(&state).await;
        set_builder_urgent(&state, false);
        self.shards_ready.fetch_add(1, Ordering::AcqRel);
        log::debug!("shard {}: ready", self.id);

        let mut last_sync = Instant::now();
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
                wait_for_memory(&state, &appends).await;
                group_commit(&state, appends).await;
            }
            {
                // A cut still running with the memory three quarters full is urgent: its
                // builder stops giving way to this thread (`shard/builder.rs`).
                let s = state.borrow();
                let full = s.live_bytes.saturating_mul(4) >= s.config.live_bytes_max * 3;
                if let Some(builder) = &s.builder {
                    builder.set_urgent(s.cutting && full);
                }
                // Blocks piling up while the merge starves (a saturated core has no idle
                // time for compaction): the compaction thread shares the core until they are
                // merged, unless memory is filling (then the cut's builder needs it first).
                if let Some(compactor) = s.compactor.clone() {
                    let blocks = maintenance::own_blocks(&s);
                    let (busy, progress) = compactor.progress();
                    drop(s);
                    let urgent = state.borrow_mut().compaction_urgency.update(
                        Instant::now(),
                        blocks,
                        busy,
                        progress,
                        full,
                    );
                    compactor.set_urgent(urgent);
                }
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
                set_builder_urgent(&state, true);
                let result = cut_tenants(&state, None).await;
                set_builder_urgent(&state, false);
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
            start_due_cuts(&state, now);
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

/// Heads due by size, age or memory are cut in the background: the shard keeps taking
/// appends and reads while the block is built (on the builder thread). One background cut
/// at a time.
fn start_due_cuts(state: &Rc<RefCell<ShardState>>, now: Instant) {
    if state.borrow().cutting {
        return;
    }
    let due = heads_due(state, now);
    if due.is_empty() {
        return;
    }
    state.borrow_mut().cutting = true;
    let background = state.clone();
    monoio::spawn(async move {
        let _ = cut_tenants(&background, Some(due)).await;
        // Compaction waits for the next maintenance beat (Tempo's compaction_cycle), not for
        // each cut: by then several head blocks merge at once, so each span is rewritten
        // fewer times.
        background.borrow_mut().cutting = false;
    });
}

fn start_helper(shard: usize, role: &str) -> Option<builder::Builder> {
    match builder::Builder::start(shard, role) {
        Ok(builder) => Some(builder),
        Err(err) => {
            log::warn!("shard {shard}: cannot start the {role} thread: {err}");
            None
        }
    }
}

fn set_builder_urgent(state: &Rc<RefCell<ShardState>>, urgent: bool) {
    if let Some(builder) = &state.borrow().builder {
        builder.set_urgent(urgent);
    }
}

/// Backpressure before refusal: while the appends taken would pass `live_bytes_max`, the
/// loop starts the cut that is due (if none runs) and waits (for at most
/// [`APPEND_MEMORY_WAIT_MAX`]) for it to free memory. The clients see slower
/// acknowledgements, not `RESOURCE_EXHAUSTED`, when they send faster than blocks are cut;
/// what still does not fit after the wait is refused.
async fn wait_for_memory(state: &Rc<RefCell<ShardState>>, appends: &[PendingAppend]) {
    let bytes: u64 = appends
        .iter()
        .flat_map(|(_, batches, _)| batches.iter())
        .map(|batch| batch.payload.len() as u64)
        .sum();
    let started = Instant::now();
    loop {
        let fits = {
            let s = state.borrow();
            s.live_bytes + bytes <= s.config.live_bytes_max
        };
        if fits || started.elapsed() >= APPEND_MEMORY_WAIT_MAX {
            return;
        }
        start_due_cuts(state, Instant::now());
        if !state.borrow().cutting {
            // Nothing to cut (the memory is taken by appends of this group): refuse.
            return;
        }
        monoio::time::sleep(Duration::from_millis(1)).await;
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

fn tenant_state<'a>(s: &'a mut ShardState, tenant: &Tenant) -> &'a mut TenantState {
    // Called several times per append: the directory path and the key are only built for a
    // tenant the shard has not seen (they were 2% of a loaded shard's CPU in malloc).
    if !s.tenants.contains_key(tenant) {
        let dir = s
            .config
            .wal_dir
            .join(tenant.as_str())
            .join(shard_dir_name(s.id, s.config.shards));
        s.tenants.insert(
            tenant.clone(),
            TenantState {
                dir,
                segment: None,
                traces: crate::hash::IdMap::default(),
                live_traces: 0,
                next_sequence: 0,
                head_segments: Vec::new(),
                head_bytes: 0,
                head_memory_bytes: 0,
                head_records: Vec::new(),
                head_started: None,
                blocks: Vec::new(),
            },
        );
    }
    s.tenants
        .get_mut(tenant)
        .expect("inserted above when it was missing")
}

// Helpers shared by the submodules.

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

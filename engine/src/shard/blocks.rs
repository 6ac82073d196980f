//! Blocks: opening them at startup, cutting head blocks, publishing.

use super::*;

/// Startup, before WAL replay: opens every block this shard reads, removes debris of
/// crashed writes (temporary directories, blocks superseded by a published compaction, WAL
/// segments already covered by a published block), and skips damaged blocks.
pub(super) async fn load_blocks(state: &Rc<RefCell<ShardState>>) {
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

/// Tenants whose head block is old or large enough to cut, or every tenant with a head when
/// the heads being filled hold half of the shard's memory bound (the other half is for a
/// head being cut while new appends arrive).
pub(super) fn heads_due(state: &Rc<RefCell<ShardState>>, now: Instant) -> Vec<Tenant> {
    let s = state.borrow();
    let filling: u64 = s.tenants.values().map(|t| t.head_memory_bytes).sum();
    let memory_due = filling.saturating_mul(2) >= s.config.live_bytes_max;
    s.tenants
        .iter()
        .filter(|(_, t)| {
            !t.head_segments.is_empty()
                && (memory_due && t.head_memory_bytes > 0
                    || t.head_bytes >= s.config.max_block_bytes
                    || t.head_started.is_some_and(|started| {
                        now.duration_since(started) >= s.config.max_block_duration
                    }))
        })
        .map(|(tenant, _)| tenant.clone())
        .collect()
}

/// Cuts the head blocks of `tenants` (all when `None`). The first error is returned; the
/// other tenants are still cut.
pub(super) async fn cut_tenants(
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

/// Cuts one tenant's head block: roll the WAL, write the records of the closed segments
/// (held in memory, the WAL is not read back) into a block, publish it, then delete the
/// segments and drop those payloads. On failure the segments stay the head block (nothing is
/// lost; a later cut retries).
///
/// The block is built on the shard's builder thread; what walks traces here runs in
/// background slices ([`Slice`]), so appends are acknowledged throughout. Readers see each
/// trace in memory, in the new block or in both (between publishing and dropping the
/// payloads; reads de-duplicate spans).
pub(super) async fn cut_tenant(
    state: &Rc<RefCell<ShardState>>,
    tenant: &Tenant,
) -> Result<(), String> {
    // No append is half done here: `append` writes and fsyncs with system calls, and
    // `group_commit` indexes the records (and adds them to `head_records`) before its next
    // await, so the roll below splits the WAL between whole, indexed appends.
    let (head, paths, dirty, records) = {
        let mut s = state.borrow_mut();
        let t = tenant_state(&mut s, tenant);
        // Roll: the next append opens a new segment, outside this cut.
        let rolled = t.segment.take();
        let head = Head {
            segments: std::mem::take(&mut t.head_segments),
            bytes: std::mem::take(&mut t.head_bytes),
            memory_bytes: std::mem::take(&mut t.head_memory_bytes),
            started: t.head_started.take(),
        };
        let records = std::mem::take(&mut t.head_records);
        debug_assert_eq!(
            records.iter().map(|r| r.payload.len() as u64).sum::<u64>(),
            head.memory_bytes,
            "the head's records are its memory"
        );
        let paths: Vec<PathBuf> = head
            .segments
            .iter()
            .map(|&(_, file)| s.file_paths[file as usize].clone())
            .collect();
        let dirty = rolled
            .filter(|segment| segment.dirty)
            .and_then(|segment| s.files[segment.file_index as usize].clone());
        (head, paths, dirty, records)
    };
    if let Some(file) = dirty {
        // Under `interval`, acknowledged records of the rolled segment must still reach the
        // disk if this cut fails.
        if let Err(err) = file.sync_data().await {
            log::error!("WAL fsync failed: {err}");
        }
    }
    if head.segments.is_empty() {
        return Ok(());
    }
    let (block, records) = match write_cut_block(state, tenant, &head.segments, records).await {
        Ok(written) => written,
        Err((err, records)) => {
            let mut s = state.borrow_mut();
            let t = tenant_state(&mut s, tenant);
            let mut segments = head.segments;
            segments.append(&mut t.head_segments);
            t.head_segments = segments;
            t.head_bytes += head.bytes;
            t.head_memory_bytes += head.memory_bytes;
            t.head_started = head.started.or(t.head_started);
            let mut kept = records;
            kept.append(&mut t.head_records);
            t.head_records = kept;
            return Err(err);
        }
    };
    // The block is durable and served: the segments it covers can go.
    let cut: std::collections::HashSet<u32> = head.segments.iter().map(|&(_, f)| f).collect();
    let wal_dir = {
        let mut s = state.borrow_mut();
        let t = tenant_state(&mut s, tenant);
        if let Some(block) = block {
            t.blocks.push(Rc::new(block));
            s.metrics.blocks_cut.fetch_add(1, Ordering::Relaxed);
        }
        publish_block_gauges(&s);
        tenant_state(&mut s, tenant).dir.clone()
    };
    let mut slice = Slice::new();
    // First drop the cut parts from the index, trace by trace (records are sorted by trace
    // ID), and the records with them, so that their memory is free for appends as soon as
    // possible; the segments go after.
    let total = records.len().max(1) as f64;
    let mut records = records.into_iter().peekable();
    while let Some(record) = records.next() {
        let trace_id = record.trace_id;
        drop(record);
        while records.next_if(|next| next.trace_id == trace_id).is_some() {}
        {
            let mut s = state.borrow_mut();
            let mut freed = 0u64;
            let t = tenant_state(&mut s, tenant);
            if let Some(entry) = t.traces.get_mut(&trace_id) {
                let was_live = entry.is_live();
                entry.parts.retain(|part| {
                    if !cut.contains(&part.location.file) {
                        return true;
                    }
                    if part.payload.is_some() {
                        let bytes = u64::from(part.location.payload_length);
                        freed += bytes;
                        entry.memory_bytes -= bytes;
                        entry.memory_parts -= 1;
                    }
                    false
                });
                if was_live && !entry.is_live() {
                    t.live_traces -= 1;
                }
                if entry.parts.is_empty() {
                    t.traces.remove(&trace_id);
                }
            }
            s.live_bytes -= freed;
        }
        let left = records.len() as f64 / total;
        let progress = CUT_BUILD_SHARE + (1.0 - CUT_BUILD_SHARE) * (1.0 - left);
        slice.tick_urgent(cut_urgency(state, progress)).await;
    }
    for path in &paths {
        match remove_segment(path, &mut slice).await {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => log::error!("WAL: cannot delete {}: {err}", path.display()),
        }
    }
    {
        // Closed only now: the files are empty and unlinked, so closing frees nothing more.
        let mut s = state.borrow_mut();
        for &file in &cut {
            s.files[file as usize] = None;
        }
    }
    if let Err(err) = store::sync_dir(&wal_dir) {
        log::error!("WAL: cannot sync {}: {err}", wal_dir.display());
    }
    let s = state.borrow();
    let traces: usize = s.tenants.values().map(|t| t.traces.len()).sum();
    s.metrics
        .traces_indexed
        .store(traces as u64, Ordering::Relaxed);
    publish_live_gauges(&s);
    Ok(())
}

/// The part of a cut's time spent building its block (the rest: publishing, deleting the
/// segments, updating the index), for [`cut_urgency`].
const CUT_BUILD_SHARE: f64 = 0.8;

/// A WAL segment is shrunk by this much per step before it is deleted.
const SEGMENT_SHRINK_STEP_BYTES: u64 = 2 << 20;

/// Deletes a WAL segment whose records are in a published block. Freeing a file's pages and
/// extents happens at once when its last link and descriptor go (measured: 35-45 ms for
/// 128 MiB, a stall of the whole thread), so the file is first truncated step by step, in
/// background slices, then unlinked empty. A crash midway leaves a shortened segment that
/// the next start deletes as covered by the block (`meta.json` lists it).
async fn remove_segment(path: &Path, slice: &mut Slice) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    let mut length = file.metadata()?.len();
    while length > 0 {
        length = length.saturating_sub(SEGMENT_SHRINK_STEP_BYTES);
        file.set_len(length)?;
        slice.tick().await;
    }
    drop(file);
    std::fs::remove_file(path)
}

/// How urgent a cut is (0 to 1), given how far it has got (`progress`, 0 to 1): the heads
/// filling while it runs have half of `live_bytes_max` before appends are refused, so the cut
/// is behind when they have used more of that half than it has done of its work. Behind by
/// a quarter or more, or with memory 90% full, it is fully urgent.
fn cut_urgency(state: &Rc<RefCell<ShardState>>, progress: f64) -> f64 {
    let s = state.borrow();
    let half = (s.config.live_bytes_max / 2).max(1) as f64;
    let filling: u64 = s.tenants.values().map(|t| t.head_memory_bytes).sum();
    if s.live_bytes as f64 >= 0.9 * s.config.live_bytes_max as f64 {
        return 1.0;
    }
    ((filling as f64 / half - progress) * 4.0).clamp(0.0, 1.0)
}

/// What a cut takes from a tenant's head (and gives back if the cut fails).
struct Head {
    segments: Vec<(u64, u32)>,
    bytes: u64,
    memory_bytes: u64,
    started: Option<Instant>,
}

/// Writes the records of the closed segments as one published block (`None` when there are
/// none), built on the shard's builder thread (or here, without one).
/// Returns the records sorted by trace ID (oldest first within a trace), or on failure the
/// error and the records.
async fn write_cut_block(
    state: &Rc<RefCell<ShardState>>,
    tenant: &Tenant,
    segments: &[(u64, u32)],
    records: Vec<HeadRecord>,
) -> Result<(Option<OpenBlock>, Vec<HeadRecord>), (String, Vec<HeadRecord>)> {
    if records.is_empty() {
        return Ok((None, records));
    }
    let builder = state.borrow().builder.clone();
    let built = match builder {
        Some(builder) => match builder.build(records).await {
            Ok(built) => built,
            Err(records) => {
                return Err(("the block builder thread is gone".to_string(), records));
            }
        },
        // No builder thread (it could not start): build here, holding the thread.
        None => builder::build(records, &mut || {}),
    };
    let wal_segments = segments.iter().map(|&(sequence, _)| sequence).collect();
    let builder::Built {
        data,
        stats,
        records,
    } = built;
    let data = BlockData::InMemory(data);
    match publish_data(state, tenant, data, stats, Vec::new(), 0, wal_segments).await {
        Ok(block) => Ok((Some(block), records)),
        Err(err) => Err((err, records)),
    }
}

/// The data file of a block to publish: in memory (a head cut), or already written and
/// fsynced in the block's temporary directory (a merge, see `store::prepare_tmp`).
pub(super) enum BlockData {
    InMemory(Vec<u8>),
    Written { block_id: String, tmp: PathBuf },
}

/// A new block ID of this shard.
pub(super) fn reserve_block_id(state: &Rc<RefCell<ShardState>>) -> String {
    let mut s = state.borrow_mut();
    s.blocks_created += 1;
    block::new_block_id(s.id, s.blocks_created, unix_nanos_now())
}

/// The temporary directory a merge writes block `block_id` into (created empty).
pub(super) fn prepare_block_dir(
    state: &Rc<RefCell<ShardState>>,
    tenant: &Tenant,
    block_id: &str,
) -> std::io::Result<PathBuf> {
    let s = state.borrow();
    let tenant_dir = s.config.block_dir.join(tenant.as_str());
    store::prepare_tmp(
        &tenant_dir,
        &shard_dir_name(s.id, s.config.shards),
        block_id,
    )
}

/// Publishes a finished data file as a block and opens it.
pub(super) async fn publish_data(
    state: &Rc<RefCell<ShardState>>,
    tenant: &Tenant,
    data: BlockData,
    stats: block::BlockStats,
    compacted_from: Vec<String>,
    compaction_level: u32,
    wal_segments: Vec<u64>,
) -> Result<OpenBlock, String> {
    let block_id = match &data {
        BlockData::InMemory(_) => reserve_block_id(state),
        BlockData::Written { block_id, .. } => block_id.clone(),
    };
    let (tenant_dir, shard_dir, meta) = {
        let s = state.borrow();
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
    let published = match data {
        BlockData::InMemory(data) => store::publish(&tenant_dir, &shard_dir, &meta, data).await,
        BlockData::Written { tmp, .. } => store::publish_written(&tenant_dir, &tmp, &meta).await,
    };
    let dir = published.map_err(|err| format!("writing block {}: {err}", meta.block_id))?;
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

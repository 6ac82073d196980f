//! Background maintenance: retention and compaction of this shard's blocks.

use super::*;

/// Starts retention and compaction in the background unless they are already running.
pub(super) fn start_maintenance(state: &Rc<RefCell<ShardState>>) {
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

/// This shard's own blocks, of every tenant.
pub(super) fn own_blocks(s: &ShardState) -> usize {
    s.tenants
        .values()
        .flat_map(|t| t.blocks.iter())
        .filter(|b| b.meta.shard as usize == s.id && b.meta.shards as usize == s.config.shards)
        .count()
}

/// Deletes blocks whose newest span is older than `block_retention`.
pub(super) fn apply_retention(state: &Rc<RefCell<ShardState>>) {
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

/// Merges one group of this shard's blocks if there is one with two or more blocks. As in
/// Tempo's time-window selector, blocks are grouped by tenant and `compaction_window`, and in
/// the window that is still being written (the current one) also by compaction level: there
/// new head blocks are merged with their peers (at least
/// [`COMPACTION_INPUT_BLOCKS_MIN_ACTIVE`] of one level), not with the large block of everything before
/// it, so each span is rewritten once per level (log of the block count) instead of at every
/// cut. Older windows are merged whatever the levels. Returns whether it compacted.
pub(super) async fn compact_once(state: &Rc<RefCell<ShardState>>) -> Result<bool, String> {
    let group = {
        let s = state.borrow();
        let window = u64::try_from(s.config.compaction_window.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let active_window = unix_nanos_now() / window;
        let mut found = None;
        for (tenant, t) in &s.tenants {
            let mut by_window: HashMap<(u64, u32), Vec<Rc<OpenBlock>>> = HashMap::new();
            for block in &t.blocks {
                let own = block.meta.shard as usize == s.id
                    && block.meta.shards as usize == s.config.shards;
                if own && !block.damaged.get() {
                    let block_window = block.meta.min_start_unix_nanos / window;
                    let level = if block_window >= active_window {
                        block.meta.compaction_level
                    } else {
                        u32::MAX
                    };
                    by_window
                        .entry((block_window, level))
                        .or_default()
                        .push(block.clone());
                }
            }
            // In the window being written, a level waits for COMPACTION_INPUT_BLOCKS_MIN_ACTIVE
            // peers; an older window merges any two.
            let mut windows: Vec<_> = by_window
                .into_iter()
                .filter(|((_, level), b)| {
                    let min = if *level == u32::MAX {
                        2
                    } else {
                        COMPACTION_INPUT_BLOCKS_MIN_ACTIVE
                    };
                    b.len() >= min
                })
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
    // The merge runs on the compaction thread (at idle priority); without one, here.
    let merge_sources: Vec<builder::MergeSource> = sources
        .iter()
        .map(|block| builder::MergeSource {
            block_id: block.meta.block_id.clone(),
            data_path: block.dir.join(store::DATA_FILE),
            payload_bytes: block.meta.payload_bytes,
            pages: block
                .index
                .pages
                .iter()
                .map(|page| (page.offset, page.length))
                .collect(),
        })
        .collect();
    // The merged data file is written by the merge itself, straight into the new block's
    // temporary directory (a crash leaves debris that startup removes).
    let block_id = reserve_block_id(state);
    let tmp = prepare_block_dir(state, &tenant, &block_id)
        .map_err(|err| format!("block {block_id}: {err}"))?;
    let data_path = tmp.join(store::DATA_FILE);
    let compactor = state.borrow().compactor.clone();
    let merged = match compactor {
        Some(compactor) => compactor
            .merge(merge_sources, data_path)
            .await
            .ok_or_else(|| "the compaction thread is gone".to_string()),
        None => Ok(builder::merge(&merge_sources, &data_path, &mut || {})),
    };
    let merged = merged.and_then(|merged| {
        merged.map_err(|failure| {
            if let Some(source) = failure.damaged.and_then(|index| sources.get(index)) {
                source.damaged.set(true);
            }
            failure.message
        })
    });
    let stats = match merged {
        Ok(stats) => stats,
        Err(message) => {
            if let Err(err) = std::fs::remove_dir_all(&tmp) {
                log::warn!("blocks: cannot remove {}: {err}", tmp.display());
            }
            return Err(message);
        }
    };
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
    let block = publish_data(
        state,
        &tenant,
        BlockData::Written { block_id, tmp },
        stats,
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

/// When the compaction thread shares the core (normal priority) instead of taking only its
/// idle time. A merge at normal priority runs in slices of milliseconds between
/// acknowledgements, so it does so only while it is needed: blocks pile up past
/// [`COMPACTION_BACKLOG_BLOCKS`] and the running merge has read no page for
/// [`COMPACTION_STARVED_AFTER`] (the core has no idle time), or past
/// [`COMPACTION_BACKLOG_BLOCKS_MAX`] whatever it reads (the idle time is not enough). Once
/// urgent it stays so until the backlog is merged; never while memory is filling (the cut's
/// builder comes first).
pub(super) struct CompactionUrgency {
    urgent: bool,
    /// The compaction thread's progress count when last seen to change, and when.
    progress: u64,
    since: Instant,
}

impl CompactionUrgency {
    pub(super) fn new(now: Instant) -> CompactionUrgency {
        CompactionUrgency {
            urgent: false,
            progress: 0,
            since: now,
        }
    }

    /// The priority to ask for, given the shard's `blocks`, whether the thread is `busy` and
    /// its `progress` count, and whether memory is `filling`.
    pub(super) fn update(
        &mut self,
        now: Instant,
        blocks: usize,
        busy: bool,
        progress: u64,
        filling: bool,
    ) -> bool {
        let starved = busy
            && progress == self.progress
            && now.duration_since(self.since) >= COMPACTION_STARVED_AFTER;
        if progress != self.progress || !busy {
            self.progress = progress;
            self.since = now;
        }
        self.urgent = if blocks <= COMPACTION_BACKLOG_BLOCKS {
            false
        } else {
            self.urgent || starved || blocks > COMPACTION_BACKLOG_BLOCKS_MAX
        };
        self.urgent && !filling
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKLOG: usize = COMPACTION_BACKLOG_BLOCKS + 1;

    #[test]
    fn a_merge_that_progresses_in_the_idle_time_stays_there() {
        let start = Instant::now();
        let mut urgency = CompactionUrgency::new(start);
        for second in 0..10u64 {
            let now = start + Duration::from_secs(second);
            assert!(!urgency.update(now, BACKLOG, true, second, false));
        }
    }

    #[test]
    fn a_starved_merge_shares_the_core_until_the_backlog_is_merged() {
        let start = Instant::now();
        let mut urgency = CompactionUrgency::new(start);
        assert!(!urgency.update(start, BACKLOG, true, 7, false));
        let starved = start + COMPACTION_STARVED_AFTER;
        assert!(!urgency.update(starved - Duration::from_millis(1), BACKLOG, true, 7, false));
        assert!(urgency.update(starved, BACKLOG, true, 7, false));
        // Progress at normal priority does not drop it back to the idle time...
        assert!(urgency.update(starved, BACKLOG, true, 8, false));
        // ...except while memory fills (the cut first), and then it resumes.
        assert!(!urgency.update(starved, BACKLOG, true, 9, true));
        assert!(urgency.update(starved, BACKLOG, true, 10, false));
        // The backlog merged: back to the idle time, and a new starvation is timed afresh.
        assert!(!urgency.update(starved, COMPACTION_BACKLOG_BLOCKS, true, 11, false));
        assert!(!urgency.update(starved, BACKLOG, true, 11, false));
    }

    #[test]
    fn an_idle_thread_without_a_merge_is_not_starving() {
        let start = Instant::now();
        let mut urgency = CompactionUrgency::new(start);
        let later = start + 10 * COMPACTION_STARVED_AFTER;
        assert!(!urgency.update(later, BACKLOG, false, 0, false));
        // The merge starts: it has its full allowance before it counts as starved.
        assert!(!urgency.update(later, BACKLOG, true, 0, false));
        assert!(urgency.update(later + COMPACTION_STARVED_AFTER, BACKLOG, true, 0, false));
    }

    #[test]
    fn a_backlog_past_the_maximum_shares_the_core_whatever_the_merge_reads() {
        let start = Instant::now();
        let mut urgency = CompactionUrgency::new(start);
        let blocks = COMPACTION_BACKLOG_BLOCKS_MAX;
        assert!(!urgency.update(start, blocks, true, 1, false));
        assert!(urgency.update(start, blocks + 1, true, 2, false));
        assert!(!urgency.update(start, blocks + 1, true, 3, true));
    }
}

//! Startup: WAL replay (the recovery policy is `wal`'s; this is the IO around it).

use super::*;

/// Reads every segment this shard is responsible for and indexes the records it owns.
pub(super) async fn replay(state: &Rc<RefCell<ShardState>>) {
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
                    let over = {
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
                        // The replayed heads are held in memory: past half the bound, cut
                        // what is replayed so far into a block, as the running shard would.
                        s.live_bytes.saturating_mul(2) >= s.config.live_bytes_max
                    };
                    if over {
                        if let Err(err) = cut_tenants(state, Some(vec![tenant.clone()])).await {
                            log::error!("shard {id}: cutting replayed WAL failed: {err}");
                        }
                    }
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

pub(super) fn parse_shard_dir(name: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix("shard-")?;
    let (writer, shards) = rest.split_once("-of-")?;
    let writer: usize = writer.parse().ok()?;
    let shards: usize = shards.parse().ok()?;
    (shards > 0 && writer < shards).then_some((writer, shards))
}

pub(super) async fn replay_segment(
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
    let mut memory = 0u64;
    let tenant_state = tenant_state(&mut s, tenant);
    for record in replayed.records {
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
        // This shard's own segments are its head: their payloads are held in memory until a
        // block covers them, as for appends. Another layout's records are read from the WAL,
        // except packed ones: only a replay of their segment can rebuild them.
        let payload = match record.payload {
            wal::ReplayedPayload::Expanded(plain) => Some(Arc::new(plain)),
            wal::ReplayedPayload::InFile(_) if filter_by_hash => None,
            wal::ReplayedPayload::InFile(range) => bytes.get(range).map(|p| Arc::new(p.to_vec())),
        };
        let in_memory = if payload.is_some() { payload_len } else { 0 };
        let entry = tenant_state
            .traces
            .entry(record.trace_id)
            .or_insert_with(TraceEntry::new);
        let location = Location {
            file: file_index,
            offset: record.offset,
            length: record.length,
            payload_length: payload_len as u32,
        };
        if let Some(payload) = &payload {
            tenant_state.head_records.push(HeadRecord {
                trace_id: record.trace_id,
                payload: payload.clone(),
            });
        }
        if entry.push(location, payload) {
            tenant_state.live_traces += 1;
        }
        tenant_state.head_memory_bytes += in_memory;
        memory += in_memory;
        count += 1;
    }
    s.live_bytes += memory;
    publish_live_gauges(&s);
    s.metrics
        .replayed_records
        .fetch_add(count, Ordering::Relaxed);
    Some(file_index)
}

pub(super) async fn read_whole_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let length = std::fs::metadata(path)?.len();
    let length = usize::try_from(length)
        .map_err(|_| std::io::Error::other("segment larger than the address space"))?;
    let file = monoio::fs::File::open(path).await?;
    let buffer = vec![0u8; length];
    let (result, buffer) = file.read_exact_at(buffer, 0).await;
    result?;
    Ok(buffer)
}

pub(super) fn truncate_file(path: &Path, length: u64) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.set_len(length)?;
    file.sync_all()
}

//! Appends: group commit into the WAL segments, then the trace index.

use super::*;

pub(super) type PendingAppend = (Tenant, Vec<TraceBatch>, flume::Sender<AppendOutcome>);

/// One tenant's part of a group commit.
pub(super) struct TenantGroup {
    tenant: Tenant,
    /// The records' bytes: one write.
    buffer: Vec<u8>,
    staged: Vec<Staged>,
    /// Bytes staged per trace in this group (so that `max_bytes_per_trace` sees them too).
    staged_bytes: crate::hash::IdMap<TraceId, u64>,
    /// The fragments (resources and scopes) the open segment defines, taken from it for this write and given back
    /// after it (`wal/packed.rs`).
    fragments: wal::Fragments,
    /// The segment `fragments` belongs to (`None`: there was none, so they start empty).
    encoded_for: Option<u32>,
}

/// One record waiting for its write.
pub(super) struct Staged {
    message: usize,
    trace_id: TraceId,
    offset_in_buffer: usize,
    length: usize,
    span_count: u32,
    start_unix_nanos_min: u64,
    end_unix_nanos_max: u64,
    payload: Vec<u8>,
}

impl Staged {
    /// Appends the record to `buffer`, packed: each resource and scope is written once per
    /// segment, before its first use, and referred to (`wal/packed.rs`).
    fn encode(&mut self, tenant: &Tenant, fragments: &mut wal::Fragments, buffer: &mut Vec<u8>) {
        let range = wal::encode_packed_record(
            &wal::RecordRef {
                tenant,
                trace_id: self.trace_id,
                span_count: self.span_count,
                start_unix_nanos_min: self.start_unix_nanos_min,
                end_unix_nanos_max: self.end_unix_nanos_max,
                payload: &self.payload,
            },
            fragments,
            buffer,
        );
        self.offset_in_buffer = range.start;
        self.length = range.len();
    }
}

/// Writes every queued append with one write and one fsync per tenant, updates the index,
/// then answers.
pub(super) async fn group_commit(state: &Rc<RefCell<ShardState>>, appends: Vec<PendingAppend>) {
    let mut outcomes: Vec<AppendOutcome> = vec![AppendOutcome::default(); appends.len()];
    let mut replies = Vec::with_capacity(appends.len());
    // Per tenant: the records' bytes, the staged records, and bytes staged per trace in this
    // group (so that `max_bytes_per_trace` sees them too).
    let mut per_tenant: Vec<TenantGroup> = Vec::new();
    {
        let mut s = state.borrow_mut();
        let trace_bytes_max = s.config.trace_bytes_max;
        let live_bytes_max = s.config.live_bytes_max;
        let shard = s.id;
        let metrics = s.metrics.clone();
        // Payload bytes this group will add to memory.
        let mut staged_memory = 0u64;
        for (message, (tenant, batches, reply)) in appends.into_iter().enumerate() {
            replies.push(reply);
            // Memory is bounded: a message that would pass the bound is refused whole (the
            // client retries it once a head block is published and its memory freed).
            let message_bytes: u64 = batches.iter().map(|b| b.payload.len() as u64).sum();
            if s.live_bytes + staged_memory + message_bytes > live_bytes_max {
                let spans: u64 = batches.iter().map(|b| u64::from(b.span_count)).sum();
                let outcome = &mut outcomes[message];
                outcome.rejected_spans += spans;
                outcome.exhausted = Some(format!(
                    "shard {shard} holds {} bytes of traces not yet in a block and this request \
                     would add {message_bytes}, over allegro.live_traces_bytes_max ({live_bytes_max} \
                     bytes per shard); a head block is being written, retry shortly",
                    s.live_bytes + staged_memory
                ));
                metrics.spans_refused.fetch_add(spans, Ordering::Relaxed);
                metrics
                    .bytes_refused
                    .fetch_add(message_bytes, Ordering::Relaxed);
                continue;
            }
            let slot = match per_tenant.iter().position(|g| g.tenant == tenant) {
                Some(slot) => slot,
                None => {
                    let t = tenant_state(&mut s, &tenant);
                    let (fragments, encoded_for) = match t.segment.as_mut() {
                        Some(seg) => (std::mem::take(&mut seg.fragments), Some(seg.file_index)),
                        None => (wal::Fragments::default(), None),
                    };
                    per_tenant.push(TenantGroup {
                        tenant: tenant.clone(),
                        buffer: Vec::new(),
                        staged: Vec::new(),
                        staged_bytes: crate::hash::IdMap::default(),
                        fragments,
                        encoded_for,
                    });
                    per_tenant.len() - 1
                }
            };
            let tenant_state = tenant_state(&mut s, &tenant);
            let TenantGroup {
                buffer,
                staged,
                staged_bytes,
                fragments,
                ..
            } = &mut per_tenant[slot];
            // One growth of the buffer per message, not a doubling every few records: a
            // packed record is at most its plain payload and a frame.
            let record_overhead =
                wal::RECORD_FRAME_BYTES + wal::RECORD_BODY_BYTES_MIN + tenant.as_str().len();
            buffer.reserve(message_bytes as usize + batches.len() * record_overhead);
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
                staged_memory += size;
                let mut record = Staged {
                    message,
                    trace_id: batch.trace_id,
                    offset_in_buffer: 0,
                    length: 0,
                    span_count: batch.span_count,
                    start_unix_nanos_min: batch.start_unix_nanos_min,
                    end_unix_nanos_max: batch.end_unix_nanos_max,
                    payload: batch.payload,
                };
                record.encode(&tenant, fragments, buffer);
                staged.push(record);
            }
        }
    }

    for mut group in per_tenant {
        if group.staged.is_empty() {
            continue;
        }
        let tenant = group.tenant.clone();
        let written = write_group(state, &mut group).await;
        let staged = group.staged;
        match written {
            Ok((file_index, base_offset)) => {
                let mut s = state.borrow_mut();
                let metrics = s.metrics.clone();
                let mut new_live_bytes = 0u64;
                let mut new_live_traces = 0usize;
                let tenant_state = tenant_state(&mut s, &tenant);
                for record in staged {
                    let payload_len = record.payload.len() as u64;
                    let entry = tenant_state
                        .traces
                        .entry(record.trace_id)
                        .or_insert_with(TraceEntry::new);
                    let location = Location {
                        file: file_index,
                        offset: base_offset + record.offset_in_buffer as u64,
                        length: record.length as u32,
                        payload_length: payload_len as u32,
                    };
                    let payload = Arc::new(record.payload);
                    if entry.push(location, Some(payload.clone())) {
                        new_live_traces += 1;
                    }
                    tenant_state.head_records.push(HeadRecord {
                        trace_id: record.trace_id,
                        payload,
                    });
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
                tenant_state.head_memory_bytes += new_live_bytes;
                let traces = tenant_state.traces.len();
                s.live_bytes += new_live_bytes;
                metrics
                    .traces_indexed
                    .store(traces as u64, Ordering::Relaxed);
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

/// Writes one tenant group: into the open segment, or a new one when it is full or was
/// rolled by a cut since the group was encoded (then the group is encoded again, so that
/// it refers only to fragments of the segment it lands in). Gives the fragments back to
/// the segment once written. Returns the file index and the offset of the buffer.
async fn write_group(
    state: &Rc<RefCell<ShardState>>,
    group: &mut TenantGroup,
) -> std::io::Result<(u32, u64)> {
    let file_index = ensure_segment(state, &group.tenant, group.buffer.len()).await?;
    if group
        .encoded_for
        .is_some_and(|encoded| encoded != file_index)
    {
        let mut fragments = wal::Fragments::default();
        let mut buffer = Vec::with_capacity(group.buffer.len());
        for record in &mut group.staged {
            record.encode(&group.tenant, &mut fragments, &mut buffer);
        }
        group.buffer = buffer;
        group.fragments = fragments;
    }
    let offset = append(state, &group.tenant, &group.buffer)?;
    let mut s = state.borrow_mut();
    let t = tenant_state(&mut s, &group.tenant);
    if let Some(seg) = t
        .segment
        .as_mut()
        .filter(|seg| seg.file_index == file_index)
    {
        seg.fragments = std::mem::take(&mut group.fragments);
    }
    Ok((file_index, offset))
}

/// The tenant's open segment's file index, after rolling it over when `bytes` more would
/// pass `wal_segment_bytes_max` (or opening one when there is none).
async fn ensure_segment(
    state: &Rc<RefCell<ShardState>>,
    tenant: &Tenant,
    bytes: usize,
) -> std::io::Result<u32> {
    let needs_new = {
        let mut s = state.borrow_mut();
        let max = s.config.wal_segment_bytes_max;
        let t = tenant_state(&mut s, tenant);
        match &t.segment {
            None => true,
            Some(seg) => seg.length > 0 && seg.length + bytes as u64 > max,
        }
    };
    if needs_new {
        open_segment(state, tenant).await?;
    }
    let mut s = state.borrow_mut();
    let t = tenant_state(&mut s, tenant);
    Ok(t.segment.as_ref().expect("opened above").file_index)
}

/// Appends `buffer` to the tenant's open segment and syncs per policy; returns the offset
/// the buffer starts at. No await: nothing can roll the segment in between.
fn append(state: &Rc<RefCell<ShardState>>, tenant: &Tenant, buffer: &[u8]) -> std::io::Result<u64> {
    // `pwrite` and `fdatasync` on this thread, not through the ring: io_uring hands a
    // buffered write and an fsync to a kernel worker thread that shares the core with this
    // one, and that worker waits for the scheduler whenever this thread has work (measured
    // with the server on one core at half load: export p50 11-13 ms through the ring against
    // 1.6 ms as system calls). The thread sleeps in `fdatasync` instead: the device's
    // latency, without the scheduler's. The price: the core idles while the device syncs.
    use std::os::unix::fs::FileExt;
    let mut s = state.borrow_mut();
    let policy = s.config.fsync;
    let metrics = s.metrics.clone();
    let t = tenant_state(&mut s, tenant);
    let Some(seg) = t.segment.as_mut() else {
        return Err(std::io::Error::other("no open WAL segment"));
    };
    let offset = seg.length;
    let length = buffer.len() as u64;
    seg.writer.write_all_at(buffer, offset)?;
    if policy == FsyncPolicy::Always {
        seg.writer.sync_data()?;
        metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
    }
    seg.length += length;
    seg.dirty = policy != FsyncPolicy::Always;
    t.head_bytes += length;
    t.head_started.get_or_insert_with(Instant::now);
    metrics.wal_appends.fetch_add(1, Ordering::Relaxed);
    metrics.wal_bytes.fetch_add(length, Ordering::Relaxed);
    Ok(offset)
}

/// Creates the next segment file with its header, fsyncs it and its directory.
pub(super) async fn open_segment(
    state: &Rc<RefCell<ShardState>>,
    tenant: &Tenant,
) -> std::io::Result<()> {
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
    let writer = std::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .open(&path)?;
    let mut header = Vec::new();
    wal::encode_segment_header(shard, sequence, &mut header);
    let header_len = header.len() as u64;
    {
        use std::os::unix::fs::FileExt;
        writer.write_all_at(&header, 0)?;
    }
    writer.sync_all()?;
    // The new directory entry must be durable before any record in it is acknowledged.
    std::fs::File::open(&dir)?.sync_all()?;
    let file = monoio::fs::File::from_std(writer.try_clone()?)?;
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
        writer,
        length: header_len,
        dirty: false,
        fragments: wal::Fragments::default(),
    });
    Ok(())
}

pub(super) async fn sync_dirty(state: &Rc<RefCell<ShardState>>) {
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

pub(super) fn publish_live_gauges(s: &ShardState) {
    let live: usize = s.tenants.values().map(|t| t.live_traces).sum();
    s.metrics.live_traces.store(live as u64, Ordering::Relaxed);
    s.metrics.live_bytes.store(s.live_bytes, Ordering::Relaxed);
}

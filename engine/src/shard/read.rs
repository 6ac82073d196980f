//! Reads: one trace (memory, WAL, blocks) and a shard's part of a search.

use super::*;

/// Gathers every payload of a trace: from memory (the head blocks), from the WAL files for
/// records replayed from another shard layout, and from every block that may hold it (in
/// `range`, when given).
pub(super) async fn read_trace(
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
        let mut on_disk: OnDisk = Vec::new();
        let mut in_memory: Vec<Vec<u8>> = Vec::new();
        if let Some(entry) = t.traces.get(&trace_id) {
            for part in &entry.parts {
                match &part.payload {
                    Some(payload) => in_memory.push(payload.as_ref().clone()),
                    None => {
                        let loc = part.location;
                        on_disk.push((
                            s.files[loc.file as usize].clone(),
                            loc,
                            s.file_paths[loc.file as usize].clone(),
                        ));
                    }
                }
            }
        }
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
pub(super) async fn search_shard(
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
    let metrics_scan = search.metrics_scan();
    let mut seen: crate::hash::IdSet<TraceId> = crate::hash::IdSet::default();
    let mut slice = Slice::new();
    for id in &ids {
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
        slice.tick().await;
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
                    slice.tick().await;
                    continue;
                }
                Ok(None) => {}
                Err(err) => {
                    search.error(block.page_damaged(page, &err));
                    continue;
                }
            }
            // A metrics query on span-local fields: counted from the columns, span by span;
            // only the traces the columns cannot judge are rebuilt (their part here: each
            // span's verdict is its own, so the other parts count where they are stored).
            if let Some(metrics) = &metrics_scan {
                let counted = view.trace_ids().and_then(|ids| {
                    let skip =
                        |position: usize| ids.get(position).is_some_and(|id| seen.contains(id));
                    let page = metrics.scan(&view, start, end, &skip)?;
                    let exact = view.rebuild(&page.exact)?;
                    Ok((ids, page, exact))
                });
                match counted {
                    Ok((ids, page, exact)) => {
                        search.scanned(bytes.len() as u64, page.spans);
                        search.observe_columns(&ids, &page.groups);
                        for (id, payload) in exact {
                            search.offer_scanned(&id, &payload);
                        }
                    }
                    Err(err) => search.error(block.page_damaged(page, &err)),
                }
                slice.tick().await;
                continue;
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
                    for (id, payload) in rebuilt {
                        if search.is_full() {
                            break;
                        }
                        search.offer_scanned(&id, &payload);
                        slice.tick().await;
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
            slice.tick().await;
        }
        search.block_done();
    }
    search.finish()
}

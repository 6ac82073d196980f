//! The block store against the real binary: `/flush` cuts blocks, restarts serve them, a
//! trace cut in two comes back whole, compaction interrupted at any point leaves every span
//! exactly once, a damaged page fails only its traces, retention deletes old blocks.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use allegro_engine::block::{self, BlockMeta, PageView};
use common::*;

const ONE_SHARD: &str = "allegro:\n  shards: 1\n  wal_fsync: always\n";
const TENANT: &str = "single-tenant";

fn flush(server: &Server) {
    let response = http_get(server.http_addr(), "/flush", &[]);
    assert_eq!(response.status, 204, "/flush: {response:?}");
}

fn metrics(server: &Server) -> String {
    http_get(server.http_addr(), "/metrics", &[]).text()
}

fn metric(server: &Server, name: &str) -> f64 {
    metric_sum(&metrics(server), name).unwrap_or_else(|| panic!("no metric {name}"))
}

/// Published block directories of the default tenant, with their metas.
fn blocks(server: &Server) -> Vec<(PathBuf, BlockMeta)> {
    let dir = server.dir().join("traces").join(TENANT);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, BlockMeta)> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            let meta = std::fs::read(e.path().join("meta.json")).expect("meta.json");
            (e.path(), BlockMeta::from_json(&meta).expect("meta parses"))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

fn wal_files(server: &Server) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![server.wal_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else if entry.path().extension().is_some_and(|e| e == "wal") {
                files.push(entry.path());
            }
        }
    }
    files
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Sends `count` traces of `spans` spans in requests of 10.
fn ingest(server: &Server, gen: &mut TraceGen, count: usize, spans: usize) -> Vec<GenTrace> {
    let traces: Vec<GenTrace> = (0..count).map(|_| gen.trace(spans)).collect();
    for chunk in traces.chunks(10) {
        export(
            server.grpc_addr(),
            &request_of(chunk),
            &ExportOpts::default(),
        )
        .assert_ok();
    }
    traces
}

/// Every span of every trace, counted once, and no span twice in the blocks on disk.
fn assert_exactly_once(server: &Server, traces: &[GenTrace]) {
    for trace in traces {
        assert_trace(server.http_addr(), trace, None);
    }
    let spans: usize = traces.iter().map(GenTrace::span_count).sum();
    let in_blocks: u64 = blocks(server).iter().map(|(_, m)| m.span_count).sum();
    assert_eq!(in_blocks, spans as u64, "spans in blocks on disk");
}

#[test]
fn flush_writes_a_block_and_a_restart_serves_every_span() {
    let mut server = Server::start("");
    let mut gen = TraceGen::new(1);
    let traces = ingest(&server, &mut gen, 60, 4);
    assert!(!wal_files(&server).is_empty());
    flush(&server);
    let found = blocks(&server);
    assert!(!found.is_empty(), "no block after /flush");
    for (dir, meta) in &found {
        assert!(dir.join("data").is_file());
        assert_eq!(meta.tenant.as_str(), TENANT);
        assert_eq!(meta.format_version, block::BLOCK_FORMAT_VERSION);
        assert!(meta.shards == 2 && meta.shard < 2, "{meta:?}");
        assert!(!meta.wal_segments.is_empty());
    }
    // The segments the blocks cover are gone.
    assert!(wal_files(&server).is_empty(), "{:?}", wal_files(&server));
    assert_exactly_once(&server, &traces);
    assert!(metric(&server, "allegro_blocks_cut_total") >= 1.0);
    server.restart();
    assert_exactly_once(&server, &traces);
    assert!(metric(&server, "allegro_blocks") >= 1.0);
    assert_eq!(metric(&server, "allegro_wal_replayed_records_total"), 0.0);
}

#[test]
fn a_trace_cut_in_two_comes_back_whole_and_compaction_merges_the_blocks() {
    let mut server = Server::start(ONE_SHARD);
    let mut gen = TraceGen::new(2);
    let first = gen.trace(3);
    let second = gen.trace_with_id(first.trace_id, 4);
    let whole: Vec<_> = first
        .resource_spans
        .iter()
        .chain(&second.resource_spans)
        .cloned()
        .collect();
    export(server.grpc_addr(), &first.request(), &ExportOpts::default()).assert_ok();
    flush(&server);
    export(
        server.grpc_addr(),
        &second.request(),
        &ExportOpts::default(),
    )
    .assert_ok();
    // One half in a block, the other in the WAL.
    let got = get_v1_proto(server.http_addr(), &first.hex_id(), None).expect("found");
    assert_same_spans("block + WAL", &whole, &got);
    flush(&server);
    // Both blocks are in one compaction window: compaction merges them.
    wait_for("compaction", || blocks(&server).len() == 1);
    let (_, meta) = &blocks(&server)[0];
    assert_eq!(meta.compacted_from.len(), 2, "{meta:?}");
    assert_eq!(meta.span_count, 7);
    let got = get_v1_proto(server.http_addr(), &first.hex_id(), None).expect("found");
    assert_same_spans("compacted", &whole, &got);
    server.restart();
    let got = get_v1_proto(server.http_addr(), &first.hex_id(), None).expect("found");
    assert_same_spans("after restart", &whole, &got);
}

#[test]
fn compaction_interrupted_anywhere_leaves_every_span_exactly_once() {
    // Run 1: a window of 1ns keeps the two blocks apart.
    let tiny_window = format!("compactor:\n  compaction:\n    compaction_window: 1ns\n{ONE_SHARD}");
    let mut server = Server::start(&tiny_window);
    let mut gen = TraceGen::new(3);
    let mut traces = ingest(&server, &mut gen, 30, 3);
    flush(&server);
    traces.extend(ingest(&server, &mut gen, 30, 3));
    // A crash after a block is published but before its WAL segments are deleted: keep a
    // copy of the segment to put back.
    let segments = wal_files(&server);
    assert_eq!(segments.len(), 1);
    let segment_copy = std::fs::read(&segments[0]).unwrap();
    flush(&server);
    let sources = blocks(&server);
    assert_eq!(sources.len(), 2);
    let backup = server.dir().join("backup");
    for (dir, meta) in &sources {
        copy_dir(dir, &backup.join(&meta.block_id));
    }
    server.kill9();
    std::fs::write(&segments[0], &segment_copy).unwrap();

    // Run 2: the default window; compaction merges the two blocks.
    server.set_config(default_config(ONE_SHARD));
    server.restart();
    assert_eq!(metric(&server, "allegro_wal_replayed_records_total"), 0.0);
    assert!(
        !segments[0].exists(),
        "the covered segment was deleted at startup"
    );
    wait_for("compaction", || blocks(&server).len() == 1);
    assert_exactly_once(&server, &traces);
    server.kill9();

    // A crash after the compacted block is published but before its sources are deleted,
    // and debris of a write that never finished.
    for (_, meta) in &sources {
        copy_dir(
            &backup.join(&meta.block_id),
            &server
                .dir()
                .join("traces")
                .join(TENANT)
                .join(&meta.block_id),
        );
    }
    let debris = server
        .dir()
        .join("traces")
        .join(TENANT)
        .join(".tmp-shard-000-of-001-0123abcd");
    std::fs::create_dir_all(&debris).unwrap();
    std::fs::write(debris.join("data"), b"half a block").unwrap();
    assert_eq!(blocks(&server).len(), 3);
    server.restart();
    assert!(!debris.exists(), "debris removed");
    assert_eq!(blocks(&server).len(), 1, "sources deleted at startup");
    assert_exactly_once(&server, &traces);
}

#[test]
fn a_corrupt_page_fails_only_its_traces_and_a_corrupt_block_is_skipped() {
    let tiny_window = format!("compactor:\n  compaction:\n    compaction_window: 1ns\n{ONE_SHARD}");
    let mut server = Server::start(&tiny_window);
    let mut gen = TraceGen::new(4);
    // Enough spans for several pages (a page holds ~256 KiB of columns).
    let traces = ingest(&server, &mut gen, 200, 100);
    flush(&server);
    let others = ingest(&server, &mut gen, 5, 2);
    flush(&server);
    server.kill9();
    let found = blocks(&server);
    assert_eq!(found.len(), 2);
    let (big, small) = if found[0].1.trace_count == 200 {
        (&found[0], &found[1])
    } else {
        (&found[1], &found[0])
    };
    assert!(big.1.page_count >= 2, "{:?}", big.1);
    // Flip a byte in the middle of page 1 of the big block.
    let data_path = big.0.join("data");
    let mut data = std::fs::read(&data_path).unwrap();
    let index = block::open_bytes(&data).unwrap();
    let page = index.pages[1];
    let victims: HashSet<String> = PageView::decode(block::page_bytes(&data, &page).unwrap())
        .unwrap()
        .traces()
        .unwrap()
        .into_iter()
        .map(|(id, _)| id.to_hex())
        .collect();
    data[page.offset as usize + page.length as usize / 2] ^= 0x55;
    std::fs::write(&data_path, &data).unwrap();
    // Damage the footer of the small block.
    let small_path = small.0.join("data");
    let mut small_data = std::fs::read(&small_path).unwrap();
    let last = small_data.len() - 20;
    small_data[last] ^= 1;
    std::fs::write(&small_path, &small_data).unwrap();

    server.restart();
    assert_eq!(metric(&server, "allegro_blocks_corrupt_total"), 1.0);
    assert!(
        server
            .stderr_lines()
            .iter()
            .any(|l| l.contains("skipping") && l.contains("footer checksum mismatch")),
        "{}",
        server.stderr_dump()
    );
    let mut failed = 0;
    for trace in &traces {
        let id = trace.hex_id();
        let response = http_get(
            server.http_addr(),
            &format!("/api/traces/{id}"),
            &[("Accept", "application/protobuf")],
        );
        if victims.contains(&id) {
            assert_eq!(response.status, 500, "{id}: {response:?}");
            let text = response.text();
            assert!(
                text.contains("page 1") && text.contains("page checksum mismatch"),
                "{text}"
            );
            failed += 1;
        } else {
            assert_eq!(response.status, 200, "{id}");
            assert_trace(server.http_addr(), trace, None);
        }
    }
    assert_eq!(failed, victims.len());
    assert!(failed > 0);
    assert!(metric(&server, "allegro_block_read_errors_total") >= failed as f64);
    // The skipped block's traces are simply not found.
    assert!(span_ids(server.http_addr(), &others[0].hex_id(), None).is_empty());
}

#[test]
fn retention_deletes_blocks_whose_newest_span_is_too_old() {
    let config = format!("compactor:\n  compaction:\n    block_retention: 1h\n{ONE_SHARD}");
    let server = Server::start(&config);
    let mut gen = TraceGen::new(5);
    let mut old = gen.trace(3);
    for rs in &mut old.resource_spans {
        for ss in &mut rs.scope_spans {
            for span in &mut ss.spans {
                span.start_time_unix_nano -= 3 * 3600 * 1_000_000_000;
                span.end_time_unix_nano -= 3 * 3600 * 1_000_000_000;
            }
        }
    }
    export(server.grpc_addr(), &old.request(), &ExportOpts::default()).assert_ok();
    flush(&server);
    wait_for("retention", || blocks(&server).is_empty());
    assert_eq!(
        metric(&server, "allegro_blocks_retention_deleted_total"),
        1.0
    );
    assert!(span_ids(server.http_addr(), &old.hex_id(), None).is_empty());
    let fresh = gen.trace(3);
    export(server.grpc_addr(), &fresh.request(), &ExportOpts::default()).assert_ok();
    flush(&server);
    assert_eq!(blocks(&server).len(), 1);
    assert_trace(server.http_addr(), &fresh, None);
}

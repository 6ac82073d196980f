//! Durability of the real binary: kill -9 under load, torn tails, bit flips, graceful stops
//! and a change of the shard count. Every acknowledged span must survive.

mod common;

use std::io::Write;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const ONE_SHARD: &str = "allegro:\n  shards: 1\n  wal_fsync: always\n";

/// Runs `connections` exporting tasks until at least `acks_min` requests are acknowledged,
/// then calls `stop` while the load is still running, then waits for the tasks (which end on
/// their first transport error). Returns every acknowledged trace and `stop`'s result.
fn under_load(
    server: &mut Server,
    connections: usize,
    acks_min: usize,
    stop: impl FnOnce(&mut Server) -> ExitStatus,
) -> (Vec<GenTrace>, ExitStatus) {
    let grpc = server.grpc_addr();
    let acked: Arc<Mutex<Vec<GenTrace>>> = Arc::default();
    let acks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let rt = runtime();
    let mut tasks = Vec::new();
    for connection in 0..connections {
        let acked = acked.clone();
        let acks = acks.clone();
        let done = done.clone();
        tasks.push(rt.spawn(async move {
            let Ok(client) = H2Client::connect(grpc).await else {
                return;
            };
            let mut gen = TraceGen::new(1000 + connection as u64);
            let mut i = 0usize;
            // Stops on the first failure: the server is gone.
            while !done.load(Ordering::Relaxed) {
                let (request, traces) = gen.request(2, 3);
                let opts = ExportOpts {
                    gzip: i.is_multiple_of(3),
                    ..ExportOpts::default()
                };
                i += 1;
                match client.try_export(&request, &opts).await {
                    Ok(result) if result.status == 0 => {
                        assert_eq!(result.rejected_spans(), 0, "{result:?}");
                        acked.lock().unwrap().extend(traces);
                        acks.fetch_add(1, Ordering::Relaxed);
                    }
                    // A graceful stop may refuse new work with a status; a kill breaks the
                    // connection. Either way this client is done.
                    Ok(_) | Err(_) => return,
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acks.load(Ordering::Relaxed) < acks_min {
        assert!(
            Instant::now() < deadline,
            "only {} acknowledged exports within 60 s\n{}",
            acks.load(Ordering::Relaxed),
            server.stderr_dump()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = stop(server);
    done.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("a load task did not end after the server stopped")
                .expect("load task panicked");
        }
    });
    let acked = acked.lock().unwrap().clone();
    (acked, status)
}

#[test]
fn kill9_under_concurrent_load_keeps_every_acknowledged_trace() {
    let mut server = Server::start("");
    let (acked, status) = under_load(&mut server, 4, 150, Server::kill9);
    assert!(!status.success(), "kill -9 is not a clean exit: {status}");
    assert!(acked.len() >= 300);

    server.restart();
    for trace in &acked {
        assert_trace(server.http_addr(), trace, None);
    }
    for segment in wal_segments(&server.wal_dir()) {
        assert_eq!(segment.tenant, "single-tenant", "{segment:?}");
    }
}

#[test]
fn sigterm_under_load_exits_0_and_keeps_every_acknowledged_trace() {
    let mut server = Server::start("");
    let (acked, status) = under_load(&mut server, 4, 100, Server::sigterm);
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM: {status}\n{}",
        server.stderr_dump()
    );

    server.restart();
    for trace in &acked {
        assert_trace(server.http_addr(), trace, None);
    }
}

#[test]
fn sigterm_and_sigint_exit_0_and_data_survives() {
    let mut server = Server::start("");
    let mut gen = TraceGen::new(20);
    let (request, first) = gen.request(10, 3);
    export(server.grpc_addr(), &request, &ExportOpts::default()).assert_ok();
    let status = server.sigterm();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM: {status}\n{}",
        server.stderr_dump()
    );

    server.restart();
    for trace in &first {
        assert_trace_everywhere(server.http_addr(), trace, None);
    }
    let (request, second) = gen.request(5, 2);
    export(server.grpc_addr(), &request, &ExportOpts::gzip()).assert_ok();
    let status = server.signal(libc::SIGINT);
    assert_eq!(
        status.code(),
        Some(0),
        "SIGINT: {status}\n{}",
        server.stderr_dump()
    );

    server.restart();
    for trace in first.iter().chain(&second) {
        assert_trace(server.http_addr(), trace, None);
    }
}

/// Exports `count` traces of 3 spans, one request each, in order.
fn export_one_by_one(server: &Server, gen: &mut TraceGen, count: usize) -> Vec<GenTrace> {
    (0..count)
        .map(|_| {
            let trace = gen.trace(3);
            export(server.grpc_addr(), &trace.request(), &ExportOpts::default()).assert_ok();
            trace
        })
        .collect()
}

/// The segment written last: the highest sequence number (of the only shard).
fn newest_segment(server: &Server) -> Segment {
    let segments = wal_segments(&server.wal_dir());
    segments
        .into_iter()
        .filter(|s| s.tenant == "single-tenant")
        .max_by_key(|s| s.seq)
        .expect("a WAL segment")
}

fn has_line(lines: &[String], level: &str, words: &[&str]) -> bool {
    lines.iter().any(|line| {
        let lower = line.to_lowercase();
        line.contains(level) && words.iter().any(|w| lower.contains(w))
    })
}

/// Every trace in `complete` must be whole; `maybe` may be whole or missing, never partial.
fn assert_whole_or_missing(server: &Server, trace: &GenTrace) {
    let got = span_ids(server.http_addr(), &trace.hex_id(), None);
    if !got.is_empty() {
        assert_trace(server.http_addr(), trace, None);
    }
}

#[test]
fn torn_tail_truncated_is_cut_with_a_warning_and_the_rest_served() {
    let mut server = Server::start(ONE_SHARD);
    let mut gen = TraceGen::new(21);
    let traces = export_one_by_one(&server, &mut gen, 10);
    server.kill9();

    let segment = newest_segment(&server);
    let len = std::fs::metadata(&segment.path).unwrap().len();
    assert!(len > 3, "{segment:?} is {len} bytes");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment.path)
        .unwrap();
    file.set_len(len - 3).unwrap();
    drop(file);

    server.restart();
    let lines = server.stderr_lines();
    assert!(
        has_line(&lines, "WARN", &["torn", "truncat"]),
        "no warning about the torn tail of {}\n{}",
        segment.path.display(),
        server.stderr_dump()
    );
    assert!(
        !lines.iter().any(|line| line.contains("ERROR")),
        "a torn tail is not an error\n{}",
        server.stderr_dump()
    );
    let (before, last) = traces.split_at(traces.len() - 1);
    for trace in before {
        assert_trace(server.http_addr(), trace, None);
    }
    assert_whole_or_missing(&server, &last[0]);

    // The WAL was repaired: what is written now survives another crash, without a new warning.
    let more = export_one_by_one(&server, &mut gen, 3);
    server.kill9();
    server.restart();
    for trace in before.iter().chain(&more) {
        assert_trace(server.http_addr(), trace, None);
    }
    assert!(
        !has_line(&server.stderr_lines(), "WARN", &["torn"]),
        "a torn tail again after the repair\n{}",
        server.stderr_dump()
    );
}

#[test]
fn garbage_after_the_last_record_is_cut_with_a_warning() {
    let mut server = Server::start(ONE_SHARD);
    let mut gen = TraceGen::new(22);
    let traces = export_one_by_one(&server, &mut gen, 10);
    server.kill9();

    let segment = newest_segment(&server);
    let garbage = gen.rng().bytes(37);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&segment.path)
        .unwrap()
        .write_all(&garbage)
        .unwrap();

    server.restart();
    let first_restart = server.stderr_lines();
    for trace in &traces {
        assert_trace(server.http_addr(), trace, None);
    }

    let more = export_one_by_one(&server, &mut gen, 3);
    server.kill9();
    server.restart();
    for trace in traces.iter().chain(&more) {
        assert_trace(server.http_addr(), trace, None);
    }
    // Garbage after the last record of the last segment is a torn tail: a warning, not an
    // error. Checked last so that the data checks above run first.
    assert!(
        has_line(&first_restart, "WARN", &["torn", "truncat"]),
        "no warning about the garbage tail of {}\n{}",
        segment.path.display(),
        server.stderr_dump()
    );
    assert!(
        !first_restart.iter().any(|line| line.contains("ERROR")),
        "a torn tail is not an error\n{}",
        server.stderr_dump()
    );
}

#[test]
fn bit_flip_in_the_middle_of_a_segment_is_reported_and_the_records_before_served() {
    let mut server = Server::start(ONE_SHARD);
    let mut gen = TraceGen::new(23);
    let traces = export_one_by_one(&server, &mut gen, 20);
    server.kill9();

    let segment = wal_segments(&server.wal_dir())
        .into_iter()
        .max_by_key(|s| std::fs::metadata(&s.path).unwrap().len())
        .expect("a WAL segment");
    let mut bytes = std::fs::read(&segment.path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&segment.path, &bytes).unwrap();

    server.restart();
    assert!(
        server
            .stderr_lines()
            .iter()
            .any(|line| line.contains("ERROR")),
        "no error logged for the flipped byte at {middle} of {}\n{}",
        segment.path.display(),
        server.stderr_dump()
    );
    // Records are of about equal size: the first 40% lie wholly before the middle.
    for trace in &traces[..8] {
        assert_trace(server.http_addr(), trace, None);
    }
    // The server still takes writes.
    let more = export_one_by_one(&server, &mut gen, 2);
    for trace in &more {
        assert_trace(server.http_addr(), trace, None);
    }
}

#[test]
fn restart_with_another_shard_count_keeps_everything() {
    let mut server = Server::start("");
    let mut gen = TraceGen::new(24);
    let (request, mut all) = gen.request(30, 3);
    export(server.grpc_addr(), &request, &ExportOpts::default()).assert_ok();
    server.kill9();

    server.set_config(default_config(
        "allegro:\n  shards: 3\n  wal_fsync: always\n",
    ));
    server.restart();
    for trace in &all {
        assert_trace(server.http_addr(), trace, None);
    }
    let (request, more) = gen.request(10, 2);
    export(server.grpc_addr(), &request, &ExportOpts::gzip()).assert_ok();
    all.extend(more);
    assert!(
        wal_segments(&server.wal_dir())
            .iter()
            .any(|s| s.shards == 3),
        "no shard-<k>-of-3 segment after writing with 3 shards"
    );
    server.kill9();

    server.set_config(default_config(ONE_SHARD));
    server.restart();
    for trace in &all {
        assert_trace(server.http_addr(), trace, None);
    }
}

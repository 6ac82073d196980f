//! `loadgen crash`: durability under `kill -9`.
//!
//! Per cycle: load with recording into memory; SIGKILL the server at a random moment of the
//! load; stop the load (in-flight requests fail and are not recorded); restart the server; wait
//! for `/ready`; read back every trace acknowledged in the cycle. The contract checked is the
//! one a client relies on: **an acknowledged Export survives a crash**.

use crate::cli::{self, CrashArgs, LoadArgs};
use crate::http1;
use crate::json;
use crate::load::{self, LoadInputs, RecordedTrace, Recorder};
use crate::rng::Rng;
use crate::stats;
use crate::verify::{self, LookupTarget, VerifySummary};
use std::fs::OpenOptions;
use std::io::Write;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// Pause between `/ready` polls.
const READY_POLL: Duration = Duration::from_millis(100);
/// How long a graceful shutdown (SIGTERM) may take at the end before SIGKILL.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

struct Server {
    child: Child,
    started: Instant,
}

fn start_server(args: &CrashArgs) -> Result<Server, String> {
    let (stdout, stderr) = match &args.server_log {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("open --server-log {}: {e}", path.display()))?;
            let copy = file
                .try_clone()
                .map_err(|e| format!("duplicate --server-log handle: {e}"))?;
            (Stdio::from(file), Stdio::from(copy))
        }
        None => (Stdio::null(), Stdio::null()),
    };
    let child = Command::new(&args.server_bin)
        .arg(format!("-config.file={}", args.config.display()))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("start {}: {e}", args.server_bin.display()))?;
    Ok(Server {
        child,
        started: Instant::now(),
    })
}

/// Polls `GET /ready` until it answers 200.
async fn wait_ready(
    server: &mut Server,
    http: &str,
    timeout: Duration,
) -> Result<Duration, String> {
    let deadline = server.started + timeout;
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("server exited ({status}) before becoming ready"));
        }
        let mut client = http1::Client::new(http);
        let last = match tokio::time::timeout(READY_POLL * 10, client.get("/ready", &[])).await {
            Ok(Ok(response)) if response.status == 200 => return Ok(server.started.elapsed()),
            Ok(Ok(response)) => format!("HTTP {}", response.status),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer within 1s".to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "server not ready after {timeout:?} (last /ready: {last})"
            ));
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

async fn kill_server(server: &mut Server) -> Result<(), String> {
    server
        .child
        .kill()
        .await
        .map_err(|e| format!("SIGKILL the server: {e}"))
}

/// SIGTERM, then SIGKILL if it does not exit within [`SHUTDOWN_GRACE`].
async fn stop_server(server: &mut Server) {
    if let Some(pid) = server.child.id() {
        let pid = libc::pid_t::try_from(pid).unwrap_or(0);
        if pid > 0 {
            // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, server.child.wait())
        .await
        .is_err()
    {
        let _ = kill_server(server).await;
    }
}

struct CycleResult {
    acked: Vec<RecordedTrace>,
    summary: VerifySummary,
}

fn lookup_target(args: &CrashArgs) -> LookupTarget {
    LookupTarget {
        http: args.http.clone(),
        tenant: args.load.tenant.clone(),
        concurrency: args.concurrency,
        request_timeout: args.load.request_timeout,
        grace: args.grace,
        quiet: args.load.quiet,
    }
}

async fn run_cycle(
    args: &CrashArgs,
    cycle: usize,
    server: &mut Server,
    rng: &mut Rng,
) -> Result<CycleResult, String> {
    let load_args = LoadArgs {
        seed: args.load.seed.wrapping_add(cycle as u64),
        ..args.load.clone()
    };
    let templates = load::build_templates(&LoadArgs {
        quiet: true,
        ..load_args.clone()
    })?;
    let recorder = Arc::new(Recorder::Memory(Mutex::new(Vec::new())));
    let (stop_tx, stop) = watch::channel(false);
    let load_task = {
        let (load_args, recorder) = (load_args.clone(), recorder.clone());
        tokio::spawn(async move {
            load::run_load(
                &load_args,
                LoadInputs {
                    templates,
                    recorder,
                    stop,
                },
            )
            .await
        })
    };
    let duration = args.load.duration;
    let earliest = args.kill_after.unwrap_or(duration / 10);
    let latest = (duration * 9 / 10).max(earliest);
    let span_ns = (latest - earliest).as_nanos() as u64;
    let kill_at = earliest + Duration::from_nanos(rng.below(span_ns.max(1)));
    tokio::time::sleep(kill_at).await;
    kill_server(server).await?;
    let _ = stop_tx.send(true);
    let report = load_task
        .await
        .map_err(|e| format!("load task failed: {e}"))??;
    let acked = recorder.take();
    let acked_spans: u64 = acked.iter().map(|t| u64::from(t.spans)).sum();

    *server = start_server(args)?;
    let ready = wait_ready(server, &args.http, args.ready_timeout).await?;
    let summary = verify::verify_traces(&lookup_target(args), acked.clone()).await;
    println!(
        "cycle {cycle}/{}: killed after {:.2}s; acked {} traces ({} spans, {} requests failed); \
         ready again in {:.2}s; complete {}, partial {}, missing {}, lookup errors {}; lost spans {}",
        args.cycles,
        kill_at.as_secs_f64(),
        stats::thousands(acked.len() as u64),
        stats::thousands(acked_spans),
        stats::thousands(report.totals.failed_requests()),
        ready.as_secs_f64(),
        stats::thousands(summary.complete),
        stats::thousands(summary.partial),
        stats::thousands(summary.missing),
        stats::thousands(summary.lookup_errors),
        stats::thousands(summary.lost_spans),
    );
    for example in &summary.examples {
        println!("  e.g. {example}");
    }
    Ok(CycleResult { acked, summary })
}

fn append_records(path: &std::path::Path, traces: &[RecordedTrace]) -> Result<(), String> {
    let mut text = String::with_capacity(traces.len() * 40);
    for trace in traces {
        load::format_record_line(trace, &mut text);
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("write --record {}: {e}", path.display()))
}

async fn run(args: &CrashArgs) -> Result<u8, String> {
    if let Some(path) = &args.load.record {
        std::fs::File::create(path)
            .map_err(|e| format!("create --record {}: {e}", path.display()))?;
    }
    let mut rng = Rng::derive(args.load.seed, 0xC4A5);
    let mut server = start_server(args)?;
    let ready = wait_ready(&mut server, &args.http, args.ready_timeout).await?;
    println!(
        "server {} ready in {:.2}s; {} cycles of {:?} load against {}",
        args.server_bin.display(),
        ready.as_secs_f64(),
        args.cycles,
        args.load.duration,
        args.load.endpoint
    );
    let mut all = Vec::new();
    let (mut lost_spans, mut lost_traces, mut lookup_errors, mut cycles_with_loss) = (0, 0, 0, 0);
    for cycle in 1..=args.cycles {
        let result = run_cycle(args, cycle, &mut server, &mut rng).await?;
        if let Some(path) = &args.load.record {
            append_records(path, &result.acked)?;
        }
        lost_spans += result.summary.lost_spans;
        lost_traces += result.summary.lost_traces();
        lookup_errors += result.summary.lookup_errors;
        if !result.summary.ok() {
            cycles_with_loss += 1;
        }
        all.extend(result.acked);
    }
    let final_summary = if args.final_verify && args.cycles > 1 && !all.is_empty() {
        let summary = verify::verify_traces(&lookup_target(args), all.clone()).await;
        println!(
            "final: all {} acknowledged traces re-read: complete {}, partial {}, missing {}, lookup errors {}; lost spans {}",
            stats::thousands(summary.traces),
            stats::thousands(summary.complete),
            stats::thousands(summary.partial),
            stats::thousands(summary.missing),
            stats::thousands(summary.lookup_errors),
            stats::thousands(summary.lost_spans)
        );
        Some(summary)
    } else {
        None
    };
    stop_server(&mut server).await;

    let acked_spans: u64 = all.iter().map(|t| u64::from(t.spans)).sum();
    let final_ok = final_summary.as_ref().is_none_or(VerifySummary::ok);
    let mut result = json::Object::new()
        .str("mode", "crash")
        .u64("cycles", args.cycles as u64)
        .u64("traces_acked", all.len() as u64)
        .u64("spans_acked", acked_spans)
        .u64("lost_traces", lost_traces)
        .u64("lost_spans", lost_spans)
        .u64("lookup_errors", lookup_errors)
        .u64("cycles_with_loss", cycles_with_loss);
    if let Some(summary) = &final_summary {
        result = result
            .u64("final_lost_traces", summary.lost_traces())
            .u64("final_lost_spans", summary.lost_spans)
            .u64("final_lookup_errors", summary.lookup_errors);
    }
    println!("RESULT {}", result.finish());
    if all.is_empty() {
        eprintln!("loadgen crash: FAILED: nothing was acknowledged, so nothing was checked");
        return Ok(cli::EXIT_FAILED);
    }
    if lost_traces > 0 || lookup_errors > 0 || !final_ok {
        eprintln!(
            "loadgen crash: FAILED: {} acknowledged spans lost in {} of {} cycles",
            stats::thousands(lost_spans),
            cycles_with_loss,
            args.cycles
        );
        return Ok(cli::EXIT_FAILED);
    }
    Ok(cli::EXIT_OK)
}

/// `loadgen crash ...`.
pub fn main(args: CrashArgs) -> u8 {
    let runtime = match load::runtime(args.load.threads) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen crash: {e}");
            return cli::EXIT_USAGE;
        }
    };
    let status = runtime.block_on(run(&args));
    runtime.shutdown_timeout(Duration::from_secs(1));
    match status {
        Ok(status) => status,
        Err(e) => {
            eprintln!("loadgen crash: {e}");
            cli::EXIT_USAGE
        }
    }
}

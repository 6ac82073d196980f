//! The load runner: workers that patch templates and Export them over h2, on an open-loop
//! schedule (`--rate`) or as fast as the in-flight limit allows; the null sink; the record file.
//!
//! Concurrency layout: `--connections` [`Slot`]s, each one HTTP/2 connection shared by
//! `--in-flight` worker tasks (one stream each). A worker that sees its connection die asks the
//! slot to reconnect; the slot's lock makes sure only one reconnect happens per failure.

use crate::cli::{self, LoadArgs};
use crate::client::{self, ExportHeaders, Outcome};
use crate::grpc::{self, Gzip};
use crate::rng::Rng;
use crate::stats::{self, Counters, ErrorKind, LoadReport, Percentiles};
use crate::template::{RequestIds, TemplateError, TemplateSet};
use bytes::Bytes;
use h2::client::SendRequest;
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Pause between reconnect attempts while the server is down.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);
/// A request that starts later than this after its schedule slot counts as late.
const LATE_THRESHOLD: Duration = Duration::from_millis(1);
/// Tokio's timer fires on the first 1 ms tick at or after a deadline. Waking this much before
/// a slot keeps the timer from making every request up to 1 ms late; a request then starts at
/// most this early, which keeps the average rate and the open-loop property.
const TIMER_SLACK: Duration = Duration::from_millis(1);
/// Seed stream for request IDs, distinct from the template streams.
const ID_STREAM: u64 = 0x1D5_0000_0000;

pub fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// One acknowledged trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecordedTrace {
    pub trace_id: [u8; 16],
    pub spans: u32,
}

/// Record file line: `<32 lowercase hex> <span count>\n`.
pub fn format_record_line(trace: &RecordedTrace, out: &mut String) {
    for byte in trace.trace_id {
        let _ = write!(out, "{byte:02x}");
    }
    let _ = writeln!(out, " {}", trace.spans);
}

pub fn parse_record_line(line: &str) -> Result<RecordedTrace, String> {
    let mut parts = line.split_whitespace();
    let (Some(hex), Some(count), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "expected '<32-hex trace id> <span count>', got {line:?}"
        ));
    };
    if hex.len() != 32 {
        return Err(format!("trace id {hex:?} is not 32 hex digits"));
    }
    let mut trace_id = [0u8; 16];
    for (i, byte) in trace_id.iter_mut().enumerate() {
        let pair = hex.get(2 * i..2 * i + 2).ok_or("bad trace id")?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| format!("trace id {hex:?} is not hex"))?;
    }
    let spans: u32 = count
        .parse()
        .map_err(|_| format!("span count {count:?} is not a number"))?;
    Ok(RecordedTrace { trace_id, spans })
}

/// Where acknowledged traces go.
pub enum Recorder {
    Off,
    File {
        writer: Mutex<BufWriter<File>>,
        error: Mutex<Option<String>>,
    },
    Memory(Mutex<Vec<RecordedTrace>>),
}

impl Recorder {
    pub fn file(path: &Path) -> Result<Recorder, String> {
        let file = File::create(path).map_err(|e| format!("create {}: {e}", path.display()))?;
        Ok(Recorder::File {
            writer: Mutex::new(BufWriter::with_capacity(1 << 20, file)),
            error: Mutex::new(None),
        })
    }

    pub fn is_on(&self) -> bool {
        !matches!(self, Recorder::Off)
    }

    fn record(&self, trace_ids: &[[u8; 16]], span_counts: &[u32]) {
        assert_eq!(trace_ids.len(), span_counts.len());
        let traces = trace_ids
            .iter()
            .zip(span_counts)
            .map(|(&trace_id, &spans)| RecordedTrace { trace_id, spans });
        match self {
            Recorder::Off => {}
            Recorder::Memory(list) => list
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(traces),
            Recorder::File { writer, error } => {
                let mut text = String::with_capacity(trace_ids.len() * 40);
                for trace in traces {
                    format_record_line(&trace, &mut text);
                }
                let mut writer = writer.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(e) = writer.write_all(text.as_bytes()) {
                    error
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(e.to_string());
                }
            }
        }
    }

    /// Flushes the file; returns the first write error, if any.
    pub fn finish(&self) -> Result<(), String> {
        if let Recorder::File { writer, error } = self {
            let flushed = writer.lock().unwrap_or_else(|e| e.into_inner()).flush();
            if let Some(e) = error.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                return Err(e);
            }
            flushed.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Takes the in-memory records (empty for other recorders).
    pub fn take(&self) -> Vec<RecordedTrace> {
        match self {
            Recorder::Memory(list) => {
                std::mem::take(&mut *list.lock().unwrap_or_else(|e| e.into_inner()))
            }
            _ => Vec::new(),
        }
    }
}

/// One request ready to send.
pub struct Built {
    pub frame: Bytes,
    pub template: usize,
    pub spans: u32,
    pub raw_bytes: usize,
}

/// Turns templates into framed requests: pick a template, patch, optionally gzip.
pub struct RequestBuilder {
    templates: Arc<TemplateSet>,
    rng: Rng,
    ids: RequestIds,
    scratch: Vec<u8>,
    gzip: Option<Gzip>,
}

impl RequestBuilder {
    pub fn new(templates: Arc<TemplateSet>, seed: u64, stream: u64, gzip: bool) -> RequestBuilder {
        RequestBuilder {
            templates,
            rng: Rng::derive(seed, ID_STREAM + stream),
            ids: RequestIds::default(),
            scratch: Vec::new(),
            gzip: gzip.then(Gzip::new),
        }
    }

    pub fn build(&mut self, now_unix_ns: u64) -> Built {
        let index = self.rng.index(self.templates.templates.len());
        let template = &self.templates.templates[index];
        let frame = match &mut self.gzip {
            None => {
                let mut frame =
                    Vec::with_capacity(template.message_bytes() + grpc::FRAME_HEADER_BYTES);
                template.patch_into(&mut frame, &mut self.ids, &mut self.rng, now_unix_ns);
                frame
            }
            Some(gzip) => {
                template.patch_into(&mut self.scratch, &mut self.ids, &mut self.rng, now_unix_ns);
                let message = &self.scratch[grpc::FRAME_HEADER_BYTES..];
                let mut frame = Vec::with_capacity(message.len() / 3 + 64);
                frame.extend_from_slice(&[0; grpc::FRAME_HEADER_BYTES]);
                gzip.compress(message, &mut frame);
                let header = grpc::frame_header(true, frame.len() - grpc::FRAME_HEADER_BYTES);
                frame[..grpc::FRAME_HEADER_BYTES].copy_from_slice(&header);
                frame
            }
        };
        Built {
            frame: Bytes::from(frame),
            template: index,
            spans: template.span_count(),
            raw_bytes: template.message_bytes(),
        }
    }

    /// Trace IDs of the last built request, in the template's trace order.
    pub fn trace_ids(&self) -> &[[u8; 16]] {
        &self.ids.trace_ids
    }

    pub fn trace_span_counts(&self, template: usize) -> &[u32] {
        self.templates.templates[template].trace_span_counts()
    }
}

struct SlotState {
    send: Option<SendRequest<Bytes>>,
    generation: u64,
    /// When the last connect attempt failed: no new attempt within [`RECONNECT_BACKOFF`].
    failed_at: Option<Instant>,
}

/// One HTTP/2 connection shared by the workers of a slot.
struct Slot {
    endpoint: String,
    connect_timeout: Duration,
    state: tokio::sync::Mutex<SlotState>,
}

impl Slot {
    fn new(endpoint: &str, connect_timeout: Duration) -> Slot {
        Slot {
            endpoint: endpoint.to_string(),
            connect_timeout,
            state: tokio::sync::Mutex::new(SlotState {
                send: None,
                generation: 0,
                failed_at: None,
            }),
        }
    }

    /// The slot's connection, reconnecting if `failed` names the current generation.
    /// `Err(Some(message))`: this call's connect attempt failed; `Err(None)`: another worker's
    /// attempt failed moments ago, back off without trying.
    async fn connection(
        &self,
        failed: Option<u64>,
    ) -> Result<(SendRequest<Bytes>, u64), Option<String>> {
        let mut state = self.state.lock().await;
        if failed.is_some() && failed == Some(state.generation) {
            state.send = None;
        }
        if let Some(send) = &state.send {
            return Ok((send.clone(), state.generation));
        }
        if state
            .failed_at
            .is_some_and(|at| at.elapsed() < RECONNECT_BACKOFF)
        {
            return Err(None);
        }
        let connected =
            tokio::time::timeout(self.connect_timeout, client::connect(&self.endpoint)).await;
        let send = match connected {
            Ok(Ok(send)) => send,
            Ok(Err(message)) => {
                state.failed_at = Some(Instant::now());
                return Err(Some(message));
            }
            Err(_) => {
                state.failed_at = Some(Instant::now());
                return Err(Some(format!("connect to {}: timed out", self.endpoint)));
            }
        };
        state.failed_at = None;
        state.generation += 1;
        state.send = Some(send.clone());
        Ok((send, state.generation))
    }
}

/// The open-loop schedule: request `n` starts at `start + n * period`.
struct Schedule {
    start: Instant,
    period_ns: f64,
    next: AtomicU64,
}

struct Shared {
    counters: Counters,
    headers: ExportHeaders,
    recorder: Arc<Recorder>,
    templates: Arc<TemplateSet>,
    schedule: Option<Schedule>,
    deadline: Instant,
    request_timeout: Duration,
    seed: u64,
    gzip: bool,
}

/// Resolves when `stop` turns true (never, if the sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|&v| v).await.is_err() {
        std::future::pending::<()>().await;
    }
}

struct WorkerResult {
    latency: Histogram<u64>,
    scheduled: Histogram<u64>,
}

async fn worker(
    id: u64,
    slot: Arc<Slot>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> WorkerResult {
    let mut builder = RequestBuilder::new(shared.templates.clone(), shared.seed, id, shared.gzip);
    let mut latency = stats::new_latency_histogram();
    let mut scheduled = stats::new_latency_histogram();
    let mut connection: Option<(SendRequest<Bytes>, u64)> = None;
    let mut failed_generation = None;
    let counters = &shared.counters;
    loop {
        if *stop.borrow() {
            break;
        }
        let due = match &shared.schedule {
            Some(schedule) => {
                let ticket = schedule.next.fetch_add(1, Ordering::Relaxed);
                let due = schedule.start
                    + Duration::from_nanos((ticket as f64 * schedule.period_ns) as u64);
                if due >= shared.deadline {
                    break;
                }
                let wake = due.checked_sub(TIMER_SLACK).unwrap_or(due);
                if Instant::now() < wake {
                    tokio::select! {
                        _ = tokio::time::sleep_until(wake.into()) => {}
                        _ = stopped(&mut stop) => break,
                    }
                }
                Some(due)
            }
            None => {
                if Instant::now() >= shared.deadline {
                    break;
                }
                None
            }
        };
        let (send, generation) = match &connection {
            Some(c) => c.clone(),
            None => match slot.connection(failed_generation.take()).await {
                Ok(c) => {
                    connection = Some(c.clone());
                    c
                }
                Err(message) => {
                    if let Some(message) = message {
                        counters.connect_failed(&message);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(RECONNECT_BACKOFF) => {}
                        _ = stopped(&mut stop) => break,
                    }
                    continue;
                }
            },
        };
        let built = builder.build(now_unix_ns());
        let start = Instant::now();
        if due.is_some_and(|due| start > due + LATE_THRESHOLD) {
            Counters::add(&counters.requests_late, 1);
        }
        Counters::add(&counters.requests_sent, 1);
        Counters::add(&counters.spans_sent, u64::from(built.spans));
        Counters::add(&counters.raw_bytes_sent, built.raw_bytes as u64);
        Counters::add(&counters.wire_bytes_sent, built.frame.len() as u64);
        counters.in_flight.fetch_add(1, Ordering::Relaxed);
        let outcome = match tokio::time::timeout(
            shared.request_timeout,
            client::export(&send, &shared.headers, built.frame),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Failed {
                kind: ErrorKind::Timeout,
                message: format!("no answer within {:?}", shared.request_timeout),
                connection_dead: false,
            },
        };
        counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        let done = Instant::now();
        let record_latency = |h: &mut Histogram<u64>, since: Instant| {
            h.saturating_record(done.saturating_duration_since(since).as_micros().max(1) as u64);
        };
        if done.saturating_duration_since(start).as_micros() > u128::from(stats::SLOW_REQUEST_US) {
            Counters::add(&counters.requests_slow, 1);
        }
        match outcome {
            Outcome::Ok => {
                Counters::add(&counters.requests_ok, 1);
                Counters::add(&counters.spans_acked, u64::from(built.spans));
                record_latency(&mut latency, start);
                if let Some(due) = due {
                    // From the slot, or from the start if the request went out early.
                    record_latency(&mut scheduled, due.min(start));
                }
                if shared.recorder.is_on() {
                    let counts = builder.trace_span_counts(built.template);
                    shared.recorder.record(builder.trace_ids(), counts);
                    Counters::add(&counters.traces_recorded, counts.len() as u64);
                }
            }
            Outcome::Partial {
                rejected_spans,
                message,
            } => {
                let rejected = rejected_spans.min(u64::from(built.spans));
                Counters::add(&counters.requests_partial, 1);
                Counters::add(&counters.spans_rejected, rejected);
                Counters::add(&counters.spans_acked, u64::from(built.spans) - rejected);
                let traces = builder.trace_span_counts(built.template).len() as u64;
                Counters::add(&counters.traces_unrecorded, traces);
                counters.partial_message(&message);
                record_latency(&mut latency, start);
                if let Some(due) = due {
                    // From the slot, or from the start if the request went out early.
                    record_latency(&mut scheduled, due.min(start));
                }
            }
            Outcome::Failed {
                kind,
                message,
                connection_dead,
            } => {
                counters.error(kind, &message);
                if connection_dead {
                    failed_generation = Some(generation);
                    connection = None;
                }
            }
        }
    }
    WorkerResult { latency, scheduled }
}

/// Everything a load run needs besides the arguments.
pub struct LoadInputs {
    pub templates: Arc<TemplateSet>,
    pub recorder: Arc<Recorder>,
    pub stop: watch::Receiver<bool>,
}

/// Runs load until `--duration` passes or `stop` turns true; in-flight requests finish (or
/// time out) before it returns.
pub async fn run_load(args: &LoadArgs, inputs: LoadInputs) -> Result<LoadReport, String> {
    let headers = ExportHeaders::new(
        &args.endpoint,
        args.tenant.as_deref(),
        args.gzip,
        args.request_timeout,
    )?;
    let counters = Counters::new();
    let slots: Vec<Arc<Slot>> = (0..args.connections)
        .map(|_| Arc::new(Slot::new(&args.endpoint, args.request_timeout)))
        .collect();
    // Connect before the clock starts, so handshakes do not count against the schedule.
    // Failures are retried by the workers.
    let mut connecting = tokio::task::JoinSet::new();
    for slot in &slots {
        let slot = slot.clone();
        connecting.spawn(async move { slot.connection(None).await.err().flatten() });
    }
    while let Some(result) = connecting.join_next().await {
        if let Ok(Some(message)) = result {
            counters.connect_failed(&message);
        }
    }

    let start = Instant::now();
    let spans_per_request = args.shape.spans_per_request() as f64;
    let schedule = (args.rate_spans_per_sec > 0.0).then(|| Schedule {
        start,
        period_ns: spans_per_request / args.rate_spans_per_sec * 1e9,
        next: AtomicU64::new(0),
    });
    let shared = Arc::new(Shared {
        counters,
        headers,
        recorder: inputs.recorder.clone(),
        templates: inputs.templates.clone(),
        schedule,
        deadline: start + args.duration,
        request_timeout: args.request_timeout,
        seed: args.id_seed(),
        gzip: args.gzip,
    });
    let mut workers = tokio::task::JoinSet::new();
    for (c, slot) in slots.iter().enumerate() {
        for w in 0..args.in_flight {
            let id = (c * args.in_flight + w) as u64;
            workers.spawn(worker(
                id,
                slot.clone(),
                shared.clone(),
                inputs.stop.clone(),
            ));
        }
    }
    let progress = (!args.quiet).then(|| {
        let shared = shared.clone();
        tokio::spawn(async move {
            let second = Duration::from_secs(1);
            let mut ticks = tokio::time::interval_at((start + second).into(), second);
            let mut before = shared.counters.snapshot();
            loop {
                ticks.tick().await;
                let now = shared.counters.snapshot();
                eprintln!(
                    "{}",
                    stats::progress_line(start.elapsed(), &now, &before, second)
                );
                before = now;
            }
        })
    });
    let mut latency = stats::new_latency_histogram();
    let mut scheduled = stats::new_latency_histogram();
    while let Some(result) = workers.join_next().await {
        let result = result.map_err(|e| format!("load task failed: {e}"))?;
        latency
            .add(&result.latency)
            .map_err(|e| format!("merge histograms: {e:?}"))?;
        scheduled
            .add(&result.scheduled)
            .map_err(|e| format!("merge histograms: {e:?}"))?;
    }
    let elapsed = start.elapsed();
    if let Some(progress) = progress {
        progress.abort();
    }
    Ok(LoadReport {
        mode: "load",
        elapsed,
        totals: shared.counters.snapshot(),
        latency: Percentiles::of(&latency),
        scheduled_latency: shared
            .schedule
            .as_ref()
            .map(|_| Percentiles::of(&scheduled)),
        bytes_per_span: inputs.templates.bytes_per_span(),
        target_spans_per_sec: args.rate_spans_per_sec,
        gzip: args.gzip,
        first_messages: shared.counters.first_messages(),
    })
}

/// Builds requests as fast as possible on `--threads` threads without sending them.
pub fn run_null_sink(args: &LoadArgs, templates: Arc<TemplateSet>) -> LoadReport {
    let counters = Counters::new();
    let start = Instant::now();
    let deadline = start + args.duration;
    std::thread::scope(|scope| {
        for t in 0..args.threads {
            let templates = templates.clone();
            let counters = &counters;
            scope.spawn(move || {
                let mut builder =
                    RequestBuilder::new(templates, args.id_seed(), t as u64, args.gzip);
                let mut sink = 0u64;
                while Instant::now() < deadline {
                    // Batches keep the clock and the shared counters off the profile.
                    let (mut spans, mut raw, mut wire) = (0u64, 0u64, 0u64);
                    const BATCH: u64 = 16;
                    for _ in 0..BATCH {
                        let built = builder.build(now_unix_ns());
                        spans += u64::from(built.spans);
                        raw += built.raw_bytes as u64;
                        wire += built.frame.len() as u64;
                        // Touch the output so the work cannot be optimised away.
                        sink = sink.wrapping_add(u64::from(built.frame[built.frame.len() / 2]));
                    }
                    Counters::add(&counters.requests_sent, BATCH);
                    Counters::add(&counters.requests_ok, BATCH);
                    Counters::add(&counters.spans_sent, spans);
                    Counters::add(&counters.spans_acked, spans);
                    Counters::add(&counters.raw_bytes_sent, raw);
                    Counters::add(&counters.wire_bytes_sent, wire);
                }
                std::hint::black_box(sink);
            });
        }
        if !args.quiet {
            let second = Duration::from_secs(1);
            let mut before = counters.snapshot();
            let mut next = start + second;
            while next < deadline {
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
                let now = counters.snapshot();
                eprintln!(
                    "{}",
                    stats::progress_line(start.elapsed(), &now, &before, second)
                );
                before = now;
                next += second;
            }
        }
    });
    LoadReport {
        mode: "null-sink",
        elapsed: start.elapsed(),
        totals: counters.snapshot(),
        latency: Percentiles::default(),
        scheduled_latency: None,
        bytes_per_span: templates.bytes_per_span(),
        target_spans_per_sec: 0.0,
        gzip: args.gzip,
        first_messages: Vec::new(),
    }
}

/// Builds the templates and prints what they look like.
pub fn build_templates(args: &LoadArgs) -> Result<Arc<TemplateSet>, String> {
    let built = Instant::now();
    let templates =
        TemplateSet::build(&args.shape, args.templates, args.seed).map_err(|e| match e {
            TemplateError::TooLarge { bytes } => format!(
                "one request would take {} bytes, over the {} byte limit: lower \
                 --traces-per-request, --spans-per-trace or --attributes",
                stats::thousands(bytes as u64),
                stats::thousands(crate::limits::REQUEST_BYTES_MAX as u64)
            ),
            e => format!("building request templates (a bug): {e}"),
        })?;
    let request_bytes_max = templates
        .templates
        .iter()
        .map(|t| t.message_bytes())
        .max()
        .unwrap_or(0);
    if !args.quiet {
        eprintln!(
            "templates: {} shapes of {} traces x {} spans = {} spans/request, {:.0} bytes/span on average ({} bytes/request max), built in {:.0?}",
            args.templates,
            args.shape.traces_per_request,
            args.shape.spans_per_trace,
            args.shape.spans_per_request(),
            templates.bytes_per_span(),
            stats::thousands(request_bytes_max as u64),
            built.elapsed()
        );
    }
    if request_bytes_max > crate::limits::REQUEST_BYTES_WARN {
        eprintln!(
            "warning: requests of up to {} bytes exceed the 4 MiB gRPC receive limit most servers use by default",
            stats::thousands(request_bytes_max as u64)
        );
    }
    Ok(Arc::new(templates))
}

pub fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, String> {
    let built = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    built.map_err(|e| format!("start the tokio runtime: {e}"))
}

/// The exit status a finished load run deserves.
pub fn exit_status(report: &LoadReport, max_error_ratio: f64) -> (u8, Option<String>) {
    let t = &report.totals;
    if t.spans_acked == 0 {
        return (
            cli::EXIT_FAILED,
            Some("no span was acknowledged".to_string()),
        );
    }
    let failed = t.failed_requests() + t.requests_partial;
    let ratio = failed as f64 / t.requests_sent.max(1) as f64;
    if ratio > max_error_ratio {
        return (
            cli::EXIT_FAILED,
            Some(format!(
                "{failed} of {} requests failed or were partially rejected ({:.4} > --max-error-ratio {})",
                t.requests_sent, ratio, max_error_ratio
            )),
        );
    }
    (cli::EXIT_OK, None)
}

/// `loadgen [OPTIONS]`.
pub fn main(args: LoadArgs) -> u8 {
    let templates = match build_templates(&args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return cli::EXIT_USAGE;
        }
    };
    if args.null_sink {
        let report = run_null_sink(&args, templates);
        eprint!("{}", report.render_text());
        println!("RESULT {}", report.render_result());
        return cli::EXIT_OK;
    }
    let recorder = match &args.record {
        Some(path) => match Recorder::file(path) {
            Ok(r) => Arc::new(r),
            Err(e) => {
                eprintln!("loadgen: --record: {e}");
                return cli::EXIT_USAGE;
            }
        },
        None => Arc::new(Recorder::Off),
    };
    let runtime = match runtime(args.threads) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return cli::EXIT_USAGE;
        }
    };
    let result = runtime.block_on(async {
        let (stop_tx, stop) = watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: finishing in-flight requests");
                let _ = stop_tx.send(true);
            }
        });
        if !args.quiet {
            eprintln!(
                "load: {} for {:?}, {} connections x {} in flight, {}{}",
                args.endpoint,
                args.duration,
                args.connections,
                args.in_flight,
                if args.rate_spans_per_sec > 0.0 {
                    format!(
                        "open loop at {} spans/s",
                        stats::thousands(args.rate_spans_per_sec as u64)
                    )
                } else {
                    "max throughput".to_string()
                },
                if args.gzip { ", gzip" } else { "" }
            );
        }
        run_load(
            &args,
            LoadInputs {
                templates,
                recorder: recorder.clone(),
                stop,
            },
        )
        .await
    });
    // Do not wait for the Ctrl-C task (and any connection drivers) to finish.
    runtime.shutdown_background();
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return cli::EXIT_USAGE;
        }
    };
    eprint!("{}", report.render_text());
    println!("RESULT {}", report.render_result());
    if let Err(e) = recorder.finish() {
        eprintln!("loadgen: writing --record file: {e}");
        return cli::EXIT_USAGE;
    }
    let (status, why) = exit_status(&report, args.max_error_ratio);
    if let Some(why) = why {
        eprintln!("loadgen: FAILED: {why}");
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Shape;

    #[test]
    fn record_lines_round_trip() {
        let trace = RecordedTrace {
            trace_id: [
                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0, 1, 2, 3, 4, 5, 6, 0xff,
            ],
            spans: 10,
        };
        let mut line = String::new();
        format_record_line(&trace, &mut line);
        assert_eq!(line, "0123456789abcdef00010203040506ff 10\n");
        assert_eq!(parse_record_line(&line), Ok(trace));
        for bad in [
            "",
            "0123 10",
            "0123456789abcdef00010203040506ff",
            "0123456789abcdef00010203040506fg 10",
            "0123456789abcdef00010203040506ff x",
            "0123456789abcdef00010203040506ff 1 2",
        ] {
            assert!(parse_record_line(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn builder_frames_plain_and_gzip() {
        let templates = Arc::new(TemplateSet::build(&Shape::default(), 2, 1).expect("builds"));
        let mut plain = RequestBuilder::new(templates.clone(), 1, 0, false);
        let built = plain.build(now_unix_ns());
        assert_eq!(built.frame[0], 0);
        assert_eq!(built.frame.len(), built.raw_bytes + 5);
        assert_eq!(built.spans, 100);
        assert_eq!(plain.trace_ids().len(), 10);

        let mut zipped = RequestBuilder::new(templates, 1, 0, true);
        let built = zipped.build(now_unix_ns());
        assert_eq!(built.frame[0], 1);
        let len = u32::from_be_bytes([
            built.frame[1],
            built.frame[2],
            built.frame[3],
            built.frame[4],
        ]);
        assert_eq!(len as usize, built.frame.len() - 5);
        let message = grpc::gunzip(&built.frame[5..], 1 << 24).expect("gzip");
        assert_eq!(message.len(), built.raw_bytes);
        assert!(built.frame.len() < built.raw_bytes, "compresses");
    }

    #[test]
    fn exit_status_rules() {
        let mut report = LoadReport {
            mode: "load",
            elapsed: Duration::from_secs(1),
            totals: stats::Snapshot::default(),
            latency: Percentiles::default(),
            scheduled_latency: None,
            bytes_per_span: 430.0,
            target_spans_per_sec: 0.0,
            gzip: false,
            first_messages: Vec::new(),
        };
        assert_eq!(exit_status(&report, 0.0).0, cli::EXIT_FAILED);
        report.totals.spans_acked = 100;
        report.totals.requests_sent = 100;
        assert_eq!(exit_status(&report, 0.0).0, cli::EXIT_OK);
        report.totals.requests_partial = 1;
        assert_eq!(exit_status(&report, 0.0).0, cli::EXIT_FAILED);
        assert_eq!(exit_status(&report, 0.05).0, cli::EXIT_OK);
    }
}

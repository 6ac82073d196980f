//! Counters shared by the load tasks, latency histograms, the once-a-second progress line, the
//! final report and the machine-readable `RESULT` line. Formatting is pure (snapshots in,
//! strings out) so it is testable without running load.

use crate::grpc;
use crate::json;
use crate::limits;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Why an Export failed (one count per failed request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A non-OK `grpc-status` (1..=16).
    Grpc(u32),
    /// A `grpc-status` outside 0..=16 or not a number.
    UnknownStatus,
    /// HTTP status other than 200 without a `grpc-status`.
    Http,
    /// Connection-level failure: refused, reset, GOAWAY, h2 protocol error.
    Transport,
    /// No answer within `--request-timeout` (the loadgen cancelled the stream).
    Timeout,
    /// `grpc-status: 0` but an undecodable body, or no `grpc-status` at all.
    BadResponse,
}

pub const ERROR_KINDS: usize = 17 + 5;
/// Message slots beyond the error kinds: failed connects and partial successes.
const CONNECT_MESSAGE: usize = ERROR_KINDS;
const PARTIAL_MESSAGE: usize = ERROR_KINDS + 1;
const MESSAGE_SLOTS: usize = ERROR_KINDS + 2;

impl ErrorKind {
    pub fn index(self) -> usize {
        match self {
            ErrorKind::Grpc(code) if (1..=16).contains(&code) => code as usize,
            ErrorKind::Grpc(_) | ErrorKind::UnknownStatus => 17,
            ErrorKind::Http => 18,
            ErrorKind::Transport => 19,
            ErrorKind::Timeout => 20,
            ErrorKind::BadResponse => 21,
        }
    }

    pub fn name_of_index(index: usize) -> &'static str {
        match index {
            1..=16 => grpc::STATUS_NAMES[index],
            17 => "UNKNOWN_STATUS_CODE",
            18 => "HTTP_ERROR",
            19 => "TRANSPORT",
            20 => "CLIENT_TIMEOUT",
            21 => "BAD_RESPONSE",
            CONNECT_MESSAGE => "CONNECT_FAILED",
            PARTIAL_MESSAGE => "PARTIAL_SUCCESS",
            _ => "OK",
        }
    }

    pub fn name(self) -> &'static str {
        ErrorKind::name_of_index(self.index())
    }
}

/// Counters updated by every load task; read by the progress reporter.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests_sent: AtomicU64,
    pub spans_sent: AtomicU64,
    /// Protobuf message bytes before compression.
    pub raw_bytes_sent: AtomicU64,
    /// gRPC frame bytes as sent (after compression, with the 5-byte prefix; without HTTP/2
    /// framing and headers).
    pub wire_bytes_sent: AtomicU64,
    pub requests_ok: AtomicU64,
    pub spans_acked: AtomicU64,
    /// Requests answered OK but with `partial_success.rejected_spans > 0`.
    pub requests_partial: AtomicU64,
    pub spans_rejected: AtomicU64,
    pub traces_recorded: AtomicU64,
    /// Traces of partially rejected requests: acknowledged as a request, not recorded.
    pub traces_unrecorded: AtomicU64,
    pub connect_failures: AtomicU64,
    pub in_flight: AtomicI64,
    /// Requests that started more than 1 ms after their open-loop schedule slot.
    pub requests_late: AtomicU64,
    /// Requests answered after more than [`SLOW_REQUEST_US`] (the progress lines show in
    /// which seconds a latency tail happens).
    pub requests_slow: AtomicU64,
    errors: [AtomicU64; ERROR_KINDS],
    first_messages: Mutex<Vec<Option<String>>>,
}

impl Counters {
    pub fn new() -> Counters {
        Counters {
            first_messages: Mutex::new(vec![None; MESSAGE_SLOTS]),
            ..Counters::default()
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn error(&self, kind: ErrorKind, message: &str) {
        let index = kind.index();
        self.errors[index].fetch_add(1, Ordering::Relaxed);
        self.keep_message(index, message);
    }

    pub fn connect_failed(&self, message: &str) {
        self.connect_failures.fetch_add(1, Ordering::Relaxed);
        self.keep_message(CONNECT_MESSAGE, message);
    }

    /// Keeps the first `partial_success.error_message` (counts are added by the caller).
    pub fn partial_message(&self, message: &str) {
        self.keep_message(PARTIAL_MESSAGE, message);
    }

    fn keep_message(&self, index: usize, message: &str) {
        let mut messages = self
            .first_messages
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(slot @ None) = messages.get_mut(index) {
            let mut message = message.to_string();
            if message.len() > limits::ERROR_MESSAGE_BYTES_MAX {
                let mut cut = limits::ERROR_MESSAGE_BYTES_MAX;
                while !message.is_char_boundary(cut) {
                    cut -= 1;
                }
                message.truncate(cut);
            }
            *slot = Some(message);
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut errors = [0u64; ERROR_KINDS];
        for (out, counter) in errors.iter_mut().zip(&self.errors) {
            *out = load(counter);
        }
        Snapshot {
            requests_sent: load(&self.requests_sent),
            spans_sent: load(&self.spans_sent),
            raw_bytes_sent: load(&self.raw_bytes_sent),
            wire_bytes_sent: load(&self.wire_bytes_sent),
            requests_ok: load(&self.requests_ok),
            spans_acked: load(&self.spans_acked),
            requests_partial: load(&self.requests_partial),
            spans_rejected: load(&self.spans_rejected),
            traces_recorded: load(&self.traces_recorded),
            traces_unrecorded: load(&self.traces_unrecorded),
            connect_failures: load(&self.connect_failures),
            requests_late: load(&self.requests_late),
            requests_slow: load(&self.requests_slow),
            in_flight: self.in_flight.load(Ordering::Relaxed).max(0) as u64,
            errors,
        }
    }

    /// The first message seen for each error kind that occurred.
    pub fn first_messages(&self) -> Vec<(usize, String)> {
        let messages = self
            .first_messages
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.clone().map(|m| (i, m)))
            .collect()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub requests_sent: u64,
    pub spans_sent: u64,
    pub raw_bytes_sent: u64,
    pub wire_bytes_sent: u64,
    pub requests_ok: u64,
    pub spans_acked: u64,
    pub requests_partial: u64,
    pub spans_rejected: u64,
    pub traces_recorded: u64,
    pub traces_unrecorded: u64,
    pub connect_failures: u64,
    pub requests_late: u64,
    pub requests_slow: u64,
    pub in_flight: u64,
    pub errors: [u64; ERROR_KINDS],
}

impl Snapshot {
    pub fn failed_requests(&self) -> u64 {
        self.errors.iter().sum()
    }

    fn minus(&self, earlier: &Snapshot) -> Snapshot {
        let mut errors = [0u64; ERROR_KINDS];
        for (i, e) in errors.iter_mut().enumerate() {
            *e = self.errors[i].saturating_sub(earlier.errors[i]);
        }
        Snapshot {
            requests_sent: self.requests_sent.saturating_sub(earlier.requests_sent),
            spans_sent: self.spans_sent.saturating_sub(earlier.spans_sent),
            raw_bytes_sent: self.raw_bytes_sent.saturating_sub(earlier.raw_bytes_sent),
            wire_bytes_sent: self.wire_bytes_sent.saturating_sub(earlier.wire_bytes_sent),
            requests_ok: self.requests_ok.saturating_sub(earlier.requests_ok),
            spans_acked: self.spans_acked.saturating_sub(earlier.spans_acked),
            requests_partial: self
                .requests_partial
                .saturating_sub(earlier.requests_partial),
            spans_rejected: self.spans_rejected.saturating_sub(earlier.spans_rejected),
            traces_recorded: self.traces_recorded.saturating_sub(earlier.traces_recorded),
            traces_unrecorded: self
                .traces_unrecorded
                .saturating_sub(earlier.traces_unrecorded),
            connect_failures: self
                .connect_failures
                .saturating_sub(earlier.connect_failures),
            requests_late: self.requests_late.saturating_sub(earlier.requests_late),
            requests_slow: self.requests_slow.saturating_sub(earlier.requests_slow),
            in_flight: self.in_flight,
            errors,
        }
    }

    /// `NAME=count` for every error kind that occurred, plus rejected spans.
    fn error_list(&self) -> String {
        let mut parts: Vec<String> = self
            .errors
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, n)| format!("{}={}", ErrorKind::name_of_index(i), thousands(*n)))
            .collect();
        if self.requests_partial > 0 {
            parts.push(format!(
                "PARTIAL_SUCCESS={} ({} spans rejected)",
                thousands(self.requests_partial),
                thousands(self.spans_rejected)
            ));
        }
        if self.connect_failures > 0 {
            parts.push(format!(
                "CONNECT_FAILED={}",
                thousands(self.connect_failures)
            ));
        }
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(" ")
        }
    }

    fn errors_json(&self) -> String {
        let mut object = json::Object::new();
        for (i, &n) in self.errors.iter().enumerate() {
            if n > 0 {
                object = object.u64(ErrorKind::name_of_index(i), n);
            }
        }
        object.finish()
    }
}

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn per_sec(n: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

const MB: f64 = 1_000_000.0;

/// One progress line: what happened between two snapshots.
pub fn progress_line(
    since_start: Duration,
    now: &Snapshot,
    before: &Snapshot,
    interval: Duration,
) -> String {
    let d = now.minus(before);
    format!(
        "[{:>4}s] sent {:>11} spans/s  acked {:>11} spans/s  {:>7.1} MB/s (wire {:>7.1} MB/s)  in-flight {:>4}  over 10 ms {:>5}  errors: {}",
        since_start.as_secs(),
        thousands(per_sec(d.spans_sent, interval) as u64),
        thousands(per_sec(d.spans_acked, interval) as u64),
        per_sec(d.raw_bytes_sent, interval) / MB,
        per_sec(d.wire_bytes_sent, interval) / MB,
        now.in_flight,
        d.requests_slow,
        d.error_list()
    )
}

/// A request answered later than this counts in [`Counters::requests_slow`].
pub const SLOW_REQUEST_US: u64 = 10_000;

pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_max(limits::LATENCY_US_MAX, 3).expect("valid histogram bounds")
}

/// Latency percentiles in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Percentiles {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Percentiles {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: histogram.len(),
            p50_us: histogram.value_at_quantile(0.50),
            p90_us: histogram.value_at_quantile(0.90),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
        }
    }

    pub fn line(&self) -> String {
        format!(
            "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  ({} samples)",
            format_us(self.p50_us),
            format_us(self.p90_us),
            format_us(self.p99_us),
            format_us(self.p999_us),
            format_us(self.max_us),
            thousands(self.count)
        )
    }

    pub fn add_json(&self, object: json::Object, prefix: &str) -> json::Object {
        object
            .u64(&format!("{prefix}p50_us"), self.p50_us)
            .u64(&format!("{prefix}p90_us"), self.p90_us)
            .u64(&format!("{prefix}p99_us"), self.p99_us)
            .u64(&format!("{prefix}p999_us"), self.p999_us)
            .u64(&format!("{prefix}max_us"), self.max_us)
    }
}

/// Microseconds in a readable unit.
pub fn format_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us}us")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1_000.0)
    } else {
        format!("{:.2}s", us as f64 / 1_000_000.0)
    }
}

/// Everything the final load report says.
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// "load" or "null-sink".
    pub mode: &'static str,
    pub elapsed: Duration,
    pub totals: Snapshot,
    pub latency: Percentiles,
    /// Open-loop only: latency from the scheduled start (includes waiting for a free stream).
    pub scheduled_latency: Option<Percentiles>,
    pub bytes_per_span: f64,
    pub target_spans_per_sec: f64,
    pub gzip: bool,
    pub first_messages: Vec<(usize, String)>,
}

impl LoadReport {
    pub fn render_text(&self) -> String {
        let t = &self.totals;
        let e = self.elapsed;
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "==== {} finished after {:.2}s ====",
            self.mode,
            e.as_secs_f64()
        ));
        if self.target_spans_per_sec > 0.0 {
            line(format!(
                "target        {} spans/s (open loop)",
                thousands(self.target_spans_per_sec as u64)
            ));
        }
        line(format!(
            "spans         sent {}  acked {}  ({} requests sent, {} ok)",
            thousands(t.spans_sent),
            thousands(t.spans_acked),
            thousands(t.requests_sent),
            thousands(t.requests_ok)
        ));
        line(format!(
            "throughput    {} spans/s sent, {} spans/s acked",
            thousands(per_sec(t.spans_sent, e) as u64),
            thousands(per_sec(t.spans_acked, e) as u64)
        ));
        line(format!(
            "bandwidth     {:.1} MB/s uncompressed, {:.1} MB/s on the wire{}  ({:.0} bytes/span)",
            per_sec(t.raw_bytes_sent, e) / MB,
            per_sec(t.wire_bytes_sent, e) / MB,
            if self.gzip { " (gzip)" } else { "" },
            self.bytes_per_span
        ));
        if self.latency.count > 0 {
            line(format!("export latency {}", self.latency.line()));
        }
        if let Some(scheduled) = self.scheduled_latency.filter(|s| s.count > 0) {
            line(format!("from schedule  {}", scheduled.line()));
            if t.requests_late > 0 {
                line(format!(
                    "behind        {} requests started >1ms after their slot (in-flight limit reached?)",
                    thousands(t.requests_late)
                ));
            }
        }
        line(format!("errors        {}", t.error_list()));
        for (index, message) in &self.first_messages {
            line(format!(
                "  first {}: {}",
                ErrorKind::name_of_index(*index),
                message
            ));
        }
        if t.traces_recorded > 0 || t.traces_unrecorded > 0 {
            line(format!(
                "recorded      {} traces ({} traces of partially rejected requests not recorded)",
                thousands(t.traces_recorded),
                thousands(t.traces_unrecorded)
            ));
        }
        out
    }

    pub fn render_result(&self) -> String {
        let t = &self.totals;
        let e = self.elapsed;
        let mut object = json::Object::new()
            .str("mode", self.mode)
            .f64("duration_s", e.as_secs_f64())
            .u64("requests_sent", t.requests_sent)
            .u64("requests_ok", t.requests_ok)
            .u64("requests_failed", t.failed_requests())
            .u64("requests_partial", t.requests_partial)
            .u64("spans_sent", t.spans_sent)
            .u64("spans_acked", t.spans_acked)
            .u64("spans_rejected", t.spans_rejected)
            .f64("spans_per_sec", per_sec(t.spans_acked, e))
            .f64("sent_spans_per_sec", per_sec(t.spans_sent, e))
            .f64("target_spans_per_sec", self.target_spans_per_sec)
            .f64("mb_per_sec", per_sec(t.raw_bytes_sent, e) / MB)
            .f64("wire_mb_per_sec", per_sec(t.wire_bytes_sent, e) / MB)
            .f64("bytes_per_span", self.bytes_per_span)
            .bool("gzip", self.gzip);
        object = self.latency.add_json(object, "");
        if let Some(scheduled) = &self.scheduled_latency {
            object = scheduled.add_json(object, "sched_");
        }
        object
            .u64("requests_late", t.requests_late)
            .u64("connect_failures", t.connect_failures)
            .u64("traces_recorded", t.traces_recorded)
            .u64("traces_unrecorded", t.traces_unrecorded)
            .raw("errors", &t.errors_json())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn error_kinds_map_to_status_names() {
        assert_eq!(ErrorKind::Grpc(14).name(), "UNAVAILABLE");
        assert_eq!(ErrorKind::Grpc(8).name(), "RESOURCE_EXHAUSTED");
        assert_eq!(ErrorKind::Grpc(99).name(), "UNKNOWN_STATUS_CODE");
        assert_eq!(ErrorKind::Timeout.name(), "CLIENT_TIMEOUT");
        let mut seen = std::collections::HashSet::new();
        for i in 1..ERROR_KINDS {
            assert!(seen.insert(ErrorKind::name_of_index(i)));
        }
    }

    #[test]
    fn progress_and_result_render() {
        let counters = Counters::new();
        Counters::add(&counters.spans_sent, 2_000_000);
        Counters::add(&counters.spans_acked, 1_000_000);
        Counters::add(&counters.raw_bytes_sent, 430_000_000);
        Counters::add(&counters.requests_slow, 7);
        counters.error(ErrorKind::Grpc(14), "server shutting down");
        counters.error(ErrorKind::Grpc(14), "second message is not kept");
        let now = counters.snapshot();
        let line = progress_line(
            Duration::from_secs(3),
            &now,
            &Snapshot::default(),
            Duration::from_secs(2),
        );
        assert!(line.contains("sent   1,000,000 spans/s"), "{line}");
        assert!(line.contains("215.0 MB/s"), "{line}");
        assert!(line.contains("UNAVAILABLE=2"), "{line}");
        assert!(line.contains("over 10 ms     7"), "{line}");

        let mut histogram = new_latency_histogram();
        histogram.record(1_500).expect("in range");
        let report = LoadReport {
            mode: "load",
            elapsed: Duration::from_secs(2),
            totals: now,
            latency: Percentiles::of(&histogram),
            scheduled_latency: None,
            bytes_per_span: 430.0,
            target_spans_per_sec: 0.0,
            gzip: false,
            first_messages: counters.first_messages(),
        };
        let result = report.render_result();
        assert!(
            result.starts_with(r#"{"mode":"load","duration_s":2,"#),
            "{result}"
        );
        assert!(result.contains(r#""spans_per_sec":500000,"#), "{result}");
        assert!(result.contains(r#""errors":{"UNAVAILABLE":2}"#), "{result}");
        assert!(result.contains(r#""p99_us":1500,"#), "{result}");
        let text = report.render_text();
        assert!(
            text.contains("first UNAVAILABLE: server shutting down"),
            "{text}"
        );
        assert!(!text.contains("second message"));
    }

    #[test]
    fn percentiles_of_empty_histogram_are_zero() {
        assert_eq!(
            Percentiles::of(&new_latency_histogram()),
            Percentiles::default()
        );
        assert_eq!(format_us(999), "999us");
        assert_eq!(format_us(1_500), "1.50ms");
        assert_eq!(format_us(2_500_000), "2.50s");
    }
}

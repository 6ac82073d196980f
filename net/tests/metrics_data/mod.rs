//! What `tests/metrics.rs` sends and expects: spans with known services, statuses,
//! durations and start times, the answers Tempo 2.7.2 would compute from them (its
//! `[t, t + step)` intervals from the aligned start, its log2 quantile estimate), and the
//! readers of the answers (JSON and `common/tempopb.rs` messages).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use serde_json::Value;

use crate::common::tempopb as pb;
use crate::common::*;

pub const STEP_S: u64 = 60;
pub const TRACES: u8 = 9;
pub const NS: u64 = 1_000_000_000;
pub const MS: u64 = 1_000_000;

/// One span as sent.
#[derive(Clone, Debug)]
pub struct Sent {
    pub trace: u8,
    pub service: &'static str,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub error: bool,
}

/// What the test sent and the range it queries: `[start, end]`, both on the step grid.
pub struct Data {
    pub spans: Vec<Sent>,
    pub start_s: u64,
    pub end_s: u64,
}

impl Data {
    /// The grid of a range answer: every step from the aligned start to the aligned end.
    pub fn grid_ms(&self) -> Vec<i64> {
        (self.start_s..=self.end_s)
            .step_by(STEP_S as usize)
            .map(|s| (s * 1000) as i64)
            .collect()
    }

    /// The interval of a span, as the timestamp of its sample (`[t, t + step)`).
    pub fn interval_ms(span: &Sent) -> i64 {
        (span.start_ns / NS / STEP_S * STEP_S * 1000) as i64
    }

    /// Spans kept by `filter`, by `key` and interval: `f` of their durations.
    pub fn by_interval(
        &self,
        filter: impl Fn(&Sent) -> bool,
        key: impl Fn(&Sent) -> String,
    ) -> BTreeMap<String, BTreeMap<i64, Vec<u64>>> {
        let mut out: BTreeMap<String, BTreeMap<i64, Vec<u64>>> = BTreeMap::new();
        for span in self.spans.iter().filter(|s| filter(s)) {
            out.entry(key(span))
                .or_default()
                .entry(Data::interval_ms(span))
                .or_default()
                .push(span.duration_ns);
        }
        out
    }

    /// Counts on the whole grid (zeros included), mapped by `f`.
    pub fn counts(
        &self,
        filter: impl Fn(&Sent) -> bool,
        key: impl Fn(&Sent) -> String,
        f: impl Fn(usize) -> f64,
    ) -> BTreeMap<String, BTreeMap<i64, f64>> {
        self.by_interval(filter, key)
            .into_iter()
            .map(|(k, intervals)| {
                let values = self
                    .grid_ms()
                    .into_iter()
                    .map(|t| (t, f(intervals.get(&t).map_or(0, Vec::len))))
                    .collect();
                (k, values)
            })
            .collect()
    }
}

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

pub fn trace_id(i: u8) -> [u8; 16] {
    // A leading zero byte: Tempo writes trace IDs without leading zeros.
    let mut id = [0x6b; 16];
    id[0] = 0;
    id[1] = 0x40 + i;
    id
}

pub fn trace_hex(i: u8) -> String {
    let hex: String = trace_id(i).iter().map(|b| format!("{b:02x}")).collect();
    hex.trim_start_matches('0').to_string()
}

pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

/// Trace `i` starts `5 + 20 i` seconds after the minute `base_s` (three traces a minute):
///
/// ```text
/// frontend  GET /orders      (root, 100 + 10 i ms)
/// ├─ checkout  checkout      (20 + i ms, error when i % 4 == 0)
/// └─ payments  charge        (4 ms, only when i is even)
/// ```
pub fn sent_spans(base_s: u64) -> Vec<Sent> {
    let mut spans = Vec::new();
    for i in 0..TRACES {
        let start = (base_s + 5 + 20 * u64::from(i)) * NS;
        let n = u64::from(i);
        spans.push(Sent {
            trace: i,
            service: "frontend",
            start_ns: start,
            duration_ns: (100 + 10 * n) * MS,
            error: false,
        });
        spans.push(Sent {
            trace: i,
            service: "checkout",
            start_ns: start + 2 * MS,
            duration_ns: (20 + n) * MS,
            error: i % 4 == 0,
        });
        if i % 2 == 0 {
            spans.push(Sent {
                trace: i,
                service: "payments",
                start_ns: start + 10 * MS,
                duration_ns: 4 * MS,
                error: false,
            });
        }
    }
    spans
}

pub fn export_request(spans: &[Sent]) -> ExportTraceServiceRequest {
    let resource_spans = spans
        .iter()
        .enumerate()
        .map(|(n, s)| {
            let root = s.service == "frontend";
            let id = trace_id(s.trace);
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", s.service)],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: id.to_vec(),
                        span_id: vec![s.trace, n as u8, 1, 2, 3, 4, 5, 6],
                        parent_span_id: if root {
                            Vec::new()
                        } else {
                            // The root is the first span sent of each trace.
                            let root_index = spans
                                .iter()
                                .position(|r| r.trace == s.trace)
                                .expect("a root");
                            vec![s.trace, root_index as u8, 1, 2, 3, 4, 5, 6]
                        },
                        name: format!("{} op", s.service),
                        kind: if root { 2 } else { 3 },
                        start_time_unix_nano: s.start_ns,
                        end_time_unix_nano: s.start_ns + s.duration_ns,
                        status: Some(Status {
                            code: if s.error { 2 } else { 0 },
                            message: String::new(),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

/// A server holding the traces, and what was sent.
pub fn start() -> (Server, Data) {
    let server = Server::start("");
    let base_s = (now_s() - 1800) / STEP_S * STEP_S;
    let spans = sent_spans(base_s);
    export(
        server.grpc_addr(),
        &export_request(&spans),
        &ExportOpts::default(),
    )
    .assert_ok();
    let data = Data {
        spans,
        start_s: base_s - 2 * STEP_S,
        end_s: base_s + 5 * STEP_S,
    };
    (server, data)
}

pub fn enc(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    http_get(server.http_addr(), path, headers)
}

pub fn query_range(server: &Server, data: &Data, query: &str) -> Value {
    let path = format!(
        "/api/metrics/query_range?q={}&start={}&end={}&step={STEP_S}s",
        enc(query),
        data.start_s,
        data.end_s
    );
    let response = get(server, &path, &[]);
    assert_eq!(response.status, 200, "{path}: {}", response.text());
    assert_eq!(response.content_type(), Some("application/json"));
    response.json()
}

/// The series of a JSON range answer: promLabels -> timestamp -> value (absent is 0).
pub fn json_series(body: &Value) -> BTreeMap<String, BTreeMap<i64, f64>> {
    let series = body["series"].as_array().expect("series");
    let labels: Vec<&str> = series
        .iter()
        .map(|s| s["promLabels"].as_str().expect("promLabels"))
        .collect();
    let mut sorted = labels.clone();
    sorted.sort();
    assert_eq!(labels, sorted, "series are sorted by their labels");
    series
        .iter()
        .map(|s| {
            let samples = s["samples"]
                .as_array()
                .expect("samples")
                .iter()
                .map(|p| {
                    let t: i64 = p["timestampMs"]
                        .as_str()
                        .expect("timestampMs is a string")
                        .parse()
                        .expect("a number");
                    (t, p["value"].as_f64().unwrap_or(0.0))
                })
                .collect();
            (
                s["promLabels"].as_str().unwrap_or_default().to_string(),
                samples,
            )
        })
        .collect()
}

pub fn proto_series(response: &pb::QueryRangeResponse) -> BTreeMap<String, BTreeMap<i64, f64>> {
    response
        .series
        .iter()
        .map(|s| {
            let samples = s
                .samples
                .iter()
                .map(|p| (p.timestamp_ms, p.value))
                .collect();
            (s.prom_labels.clone(), samples)
        })
        .collect()
}

pub fn assert_close(
    got: &BTreeMap<String, BTreeMap<i64, f64>>,
    want: &BTreeMap<String, BTreeMap<i64, f64>>,
    what: &str,
) {
    let close = got.len() == want.len()
        && got.iter().zip(want).all(|((gk, gv), (wk, wv))| {
            gk == wk
                && gv.len() == wv.len()
                && gv
                    .iter()
                    .zip(wv)
                    .all(|((gt, g), (wt, w))| gt == wt && (g - w).abs() <= 1e-9 * w.abs().max(1e-9))
        });
    assert!(close, "{what}:\n got {got:?}\nwant {want:?}");
}

pub fn service(s: &Sent) -> String {
    format!("{{resource.service.name=\"{}\"}}", s.service)
}

pub fn all(_: &Sent) -> bool {
    true
}

/// Tempo 2.7.2's estimate (`Log2Bucketize`, `Log2Quantile`): durations counted in buckets
/// of the next power of two (nanoseconds, shown in seconds), the quantile interpolated
/// exponentially within its bucket.
pub fn tempo_quantile(p: f64, durations_ns: &[u64]) -> f64 {
    let mut buckets: BTreeMap<u64, usize> = BTreeMap::new();
    for &d in durations_ns {
        *buckets.entry(d.next_power_of_two()).or_default() += 1;
    }
    let buckets: Vec<(f64, usize)> = buckets
        .into_iter()
        .map(|(max, count)| (max as f64 / 1e9, count))
        .collect();
    let total_count: usize = buckets.iter().map(|b| b.1).sum();
    let max_samples = ((p * total_count as f64).ceil() as usize).max(1);
    let (mut total, mut bucket) = (0, 0);
    for (i, &(max, count)) in buckets.iter().enumerate() {
        bucket = i;
        if total + count > max_samples {
            break;
        }
        total += count;
        if total == max_samples {
            return max;
        }
    }
    let interp = (max_samples - total) as f64 / buckets[bucket].1 as f64;
    let max = buckets[bucket].0.log2();
    let min = if bucket > 0 {
        buckets[bucket - 1].0.log2()
    } else {
        max - 1.0
    };
    2f64.powf(min + (max - min) * interp)
}

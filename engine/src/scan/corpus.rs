//! Generated traces for the plan's soundness tests and the `traceql` fuzz target: a fixed
//! pseudo-random mix of services, names, kinds, statuses (unknown codes too), typed and
//! duplicated attributes, span trees, stored as one block.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    reason = "fixed generated inputs: a panic here is a bug in the generator"
)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

use crate::block::BlockWriter;
use crate::ids::TraceId;
use crate::otlp;

/// A small deterministic generator (xorshift).
pub(crate) struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

pub(crate) fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

const SERVICES: &[&str] = &["x", "x-db", "frontend", "cart", "payments", "queue"];
const NAMES: &[&str] = &["GET /", "POST /pay", "SELECT", "publish", "work", ""];

pub(crate) fn trace_id(i: u32) -> TraceId {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&i.to_be_bytes());
    id[15] = 1;
    id[8..12].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
    TraceId(id)
}

/// Trace `i`: 1-3 resources, 1-10 spans in a random tree, mixed kinds, statuses
/// (absent, unset, ok, error, an unknown code), typed attributes, durations.
pub(crate) fn trace(i: u32, rng: &mut Rng) -> ExportTraceServiceRequest {
    let id = trace_id(i);
    let base = 1_700_000_000_000_000_000u64 + u64::from(i) * 1_000_000;
    let span_total = 1 + rng.below(10) as usize;
    let resource_total = 1 + rng.below(3) as usize;
    let mut resource_spans: Vec<ResourceSpans> = (0..resource_total)
        .map(|_| {
            let mut attributes = vec![kv(
                "service.name",
                any_value::Value::StringValue(rng.pick(SERVICES).to_string()),
            )];
            if rng.below(3) == 0 {
                attributes.push(kv(
                    "deployment.environment",
                    any_value::Value::StringValue(rng.pick(&["prod", "dev"]).to_string()),
                ));
            }
            if rng.below(10) == 0 {
                // A non-string service name: resource.service.name = "x" must not match.
                attributes[0] = kv("service.name", any_value::Value::IntValue(7));
            }
            ResourceSpans {
                resource: Some(Resource {
                    attributes,
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans::default()],
                ..Default::default()
            }
        })
        .collect();
    for s in 0..span_total {
        let parent = if s == 0 || rng.below(8) == 0 {
            Vec::new()
        } else {
            (u64::from(i) << 16 | (rng.below(s as u64) + 1))
                .to_be_bytes()
                .to_vec()
        };
        let start = base + rng.below(1_000_000);
        let mut attributes = Vec::new();
        if rng.below(4) != 0 {
            let code = [200, 404, 500, 503][rng.below(4) as usize];
            attributes.push(kv("http.status_code", any_value::Value::IntValue(code)));
        }
        if rng.below(2) == 0 {
            attributes.push(kv(
                "http.method",
                any_value::Value::StringValue(rng.pick(&["GET", "POST"]).to_string()),
            ));
        }
        if rng.below(6) == 0 {
            attributes.push(kv("flag", any_value::Value::BoolValue(rng.below(2) == 0)));
        }
        if rng.below(12) == 0 {
            // A span attribute shadowing the resource's for unscoped reads.
            attributes.push(kv(
                "service.name",
                any_value::Value::StringValue(rng.pick(SERVICES).to_string()),
            ));
        }
        if rng.below(20) == 0 {
            // A duplicate key: the first one counts.
            attributes.push(kv(
                "http.method",
                any_value::Value::StringValue("PUT".into()),
            ));
        }
        let status = match rng.below(6) {
            0 => None,
            1 => Some(0),
            2 | 3 => Some(2),
            4 => Some(1),
            _ => Some(3),
        };
        let span = Span {
            trace_id: id.0.to_vec(),
            span_id: (u64::from(i) << 16 | (s as u64 + 1)).to_be_bytes().to_vec(),
            parent_span_id: parent,
            name: rng.pick(NAMES).to_string(),
            kind: [0, 1, 2, 3, 4, 5, 9][rng.below(7) as usize],
            start_time_unix_nano: start,
            end_time_unix_nano: start + rng.below(2_000_000_000),
            attributes,
            status: status.map(|code| Status {
                code,
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = rng.below(resource_total as u64) as usize;
        resource_spans[r].scope_spans[0].spans.push(span);
    }
    resource_spans.retain(|rs| !rs.scope_spans[0].spans.is_empty());
    ExportTraceServiceRequest { resource_spans }
}

/// A block of `count` generated traces: `(block bytes, payloads by trace)`.
/// `count` generated traces in one block: the block bytes and each trace's payload, sorted by ID.
pub(crate) fn block(count: u32) -> (Vec<u8>, Vec<(TraceId, Vec<u8>)>) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut traces: Vec<(TraceId, Vec<u8>)> = (0..count)
        .map(|i| {
            let request = trace(i, &mut rng).encode_to_vec();
            let batch = otlp::split_export(&request)
                .unwrap()
                .into_iter()
                .next()
                .unwrap();
            (trace_id(i), batch.payload)
        })
        .collect();
    traces.sort_by_key(|(id, _)| *id);
    let mut writer = BlockWriter::new();
    for (id, payload) in &traces {
        writer.add_trace(*id, payload);
    }
    (writer.finish().0, traces)
}

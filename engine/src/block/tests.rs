#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failure"
)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

use super::*;
use crate::otlp;

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn trace_id(i: u32) -> TraceId {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&i.to_be_bytes());
    id[15] = 1;
    TraceId(id)
}

/// The payload of trace `i` with `spans` spans, as the shard would store it.
fn payload(i: u32, spans: u32) -> Vec<u8> {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", Value::StringValue(format!("svc-{}", i % 3))),
                    kv("host.name", Value::StringValue("host-1".into())),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: (0..spans)
                    .map(|s| Span {
                        trace_id: trace_id(i).0.to_vec(),
                        span_id: ((u64::from(i) << 16) | (u64::from(s) + 1))
                            .to_be_bytes()
                            .to_vec(),
                        name: format!("op-{}", s % 4),
                        kind: 2,
                        start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(i) * 1000,
                        end_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(i) * 1000 + 500,
                        attributes: vec![
                            kv("http.status_code", Value::IntValue(200)),
                            kv("ok", Value::BoolValue(true)),
                        ],
                        status: Some(Status {
                            code: 1,
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let batches = otlp::split_export(&request.encode_to_vec()).unwrap();
    assert_eq!(batches.len(), 1);
    batches.into_iter().next().unwrap().payload
}

fn build(traces: u32, spans: u32) -> (Vec<u8>, BlockStats) {
    let mut writer = BlockWriter::new();
    for i in 0..traces {
        writer.add_trace(trace_id(i), &payload(i, spans));
    }
    writer.finish()
}

#[test]
fn every_trace_comes_back_byte_for_byte() {
    let (data, stats) = build(3000, 5);
    assert_eq!(stats.trace_count, 3000);
    assert_eq!(stats.span_count, 15_000);
    assert!(stats.page_count > 1, "{stats:?}");
    assert_eq!(stats.data_bytes, data.len() as u64);
    assert_eq!(stats.min_start_unix_nanos, 1_700_000_000_000_000_000);
    assert_eq!(
        stats.max_end_unix_nanos,
        1_700_000_000_000_000_000 + 2999 * 1000 + 500
    );
    let index = open_bytes(&data).unwrap();
    assert_eq!(index.footer.footer_crc32, stats.footer_crc32);
    for i in (0..3000).step_by(7) {
        let found = find_in_bytes(&data, &index, &trace_id(i)).unwrap();
        assert_eq!(found, Some(payload(i, 5)), "trace {i}");
    }
    let mut absent = 0;
    for i in 3000..4000 {
        if find_in_bytes(&data, &index, &trace_id(i))
            .unwrap()
            .is_some()
        {
            absent += 1;
        }
    }
    assert_eq!(absent, 0);
    // Far smaller than the payloads: repetitive spans compress.
    assert!(stats.data_bytes * 3 < stats.payload_bytes, "{stats:?}");
}

#[test]
fn columns_hold_the_span_fields() {
    let (data, _) = build(10, 3);
    let index = open_bytes(&data).unwrap();
    assert_eq!(index.pages.len(), 1);
    let page = PageView::decode(page_bytes(&data, &index.pages[0]).unwrap()).unwrap();
    page.check_columns().unwrap();
    assert_eq!((page.trace_count, page.span_count), (10, 30));
    // 2 span attributes + 2 resource attributes per span.
    assert_eq!(page.attr_count, 120);
    let status = page.column(page::SPAN_STATUS).unwrap();
    assert!(status.iter().all(|&s| s == 1));
    let kind = page.column(page::SPAN_KIND).unwrap();
    assert!(kind.iter().all(|&k| k == 2));
    let durations = page.column(page::SPAN_DURATION).unwrap();
    assert!(durations
        .chunks_exact(8)
        .all(|d| u64::from_le_bytes(d.try_into().unwrap()) == 500));
    let ends = page.column(page::DICT_ENDS).unwrap();
    let bytes = page.column(page::DICT_BYTES).unwrap();
    let mut entries = Vec::new();
    let mut start = 0;
    for end in ends.chunks_exact(4) {
        let end = u32::from_le_bytes(end.try_into().unwrap()) as usize;
        entries.push(bytes[start..end].to_vec());
        start = end;
    }
    let names = page.column(page::SPAN_NAME).unwrap();
    let first = u32::from_le_bytes(names[..4].try_into().unwrap()) as usize;
    assert_eq!(entries[first], b"op-0");
    let services = page.column(page::SPAN_SERVICE).unwrap();
    let first = u32::from_le_bytes(services[..4].try_into().unwrap()) as usize;
    assert_eq!(entries[first], b"svc-0");
    assert!(entries.contains(&b"http.status_code".to_vec()));
    let mut int_200 = vec![b'i'];
    int_200.extend_from_slice(&200i64.to_le_bytes());
    assert!(entries.contains(&int_200));
}

#[test]
fn a_corrupt_page_fails_only_its_traces() {
    let (mut data, _) = build(3000, 5);
    let index = open_bytes(&data).unwrap();
    let victim = index.pages[1];
    let at = victim.offset as usize + victim.length as usize / 2;
    data[at] ^= 0x10;
    let index = open_bytes(&data).unwrap();
    let mut failed = 0;
    for i in 0..3000 {
        let id = trace_id(i);
        let (page, _) = index.page_for(&id).unwrap();
        match find_in_bytes(&data, &index, &id) {
            Ok(found) => {
                assert_ne!(page, 1);
                assert_eq!(found, Some(payload(i, 5)));
            }
            Err(err) => {
                assert_eq!(page, 1);
                assert!(
                    matches!(err, BlockError::Checksum { what: "page", .. }),
                    "{err}"
                );
                assert!(err.to_string().contains("page checksum mismatch"), "{err}");
                failed += 1;
            }
        }
    }
    assert_eq!(failed, victim.trace_count);
}

#[test]
fn damage_to_footer_index_or_bloom_refuses_the_block() {
    let (data, _) = build(500, 2);
    let index = open_bytes(&data).unwrap();
    let index_at = index.footer.index_offset as usize;
    for at in [
        index_at,
        index_at + 20,
        data.len() - FOOTER_BYTES - 3,
        data.len() - 30,
        data.len() - 1,
        0,
        6,
    ] {
        let mut bad = data.clone();
        bad[at] ^= 1;
        assert!(open_bytes(&bad).is_err(), "flip at {at}");
    }
    for len in [0, 7, 8, 70, data.len() - 1] {
        assert!(open_bytes(&data[..len]).is_err(), "truncated to {len}");
    }
}

#[test]
fn one_large_trace_makes_its_own_page() {
    let mut writer = BlockWriter::new();
    writer.add_trace(trace_id(1), &payload(1, 2));
    writer.add_trace(trace_id(2), &payload(2, 3000));
    writer.add_trace(trace_id(3), &payload(3, 2));
    let (data, stats) = writer.finish();
    assert_eq!(stats.page_count, 2);
    let index = open_bytes(&data).unwrap();
    for i in 1..=3 {
        let spans = if i == 2 { 3000 } else { 2 };
        assert_eq!(
            find_in_bytes(&data, &index, &trace_id(i)).unwrap(),
            Some(payload(i, spans))
        );
    }
}

#[test]
fn block_ids_are_valid_and_distinct() {
    let a = new_block_id(0, 1, 5);
    let b = new_block_id(0, 2, 5);
    assert_ne!(a, b);
    assert!(meta::is_valid_block_id(&a), "{a}");
    assert_eq!(a.len(), 36);
}

#[test]
fn fuzz_entry_point_survives_mutations() {
    let (data, _) = build(50, 2);
    fuzz_block_read(&data);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..300 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut bad = data.clone();
        let at = (state as usize) % bad.len();
        bad[at] ^= (state >> 32) as u8 | 1;
        fuzz_block_read(&bad);
        bad.truncate((state >> 40) as usize % bad.len());
        fuzz_block_read(&bad);
    }
}

//! OTLP decoding, per core: prost's full decode of `ExportTraceServiceRequest` into the
//! `opentelemetry-proto` structs (what a Go or tonic server does) against our zero-copy
//! `split_export` scan (validate, then copy each span's bytes into its trace's batch), the
//! protobuf tag walk (the floor of any decoder) and memcpy; and the cost of gzip
//! decompression (`grpc-encoding: gzip`) next to the scan.
//!
//! Input: 16 Export requests from the loadgen's templates (10 traces of 10 spans each).

use std::hint::black_box;
use std::io::Write;

use allegro_engine::otlp::split_export;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::{data, pbscan, Case, Config, Line, Report};

const SUITE: &str = "otlp";
/// Requests in the working set (about 700 kB: caches are warm, as on a busy server).
const REQUESTS: usize = 16;
/// The decompression limit passed to `gunzip` (the server's default message limit).
const MESSAGE_BYTES_MAX: usize = 16 << 20;

pub fn run(config: &Config, report: &mut Report) {
    let requests = data::otlp_requests(REQUESTS);
    let messages: Vec<&[u8]> = requests.messages().collect();
    let bytes = requests.message_bytes();
    let spans = requests.spans;
    report.note(format!(
        "otlp input: {REQUESTS} Export requests from the loadgen templates, {} traces, {spans} \
         spans, {bytes} B ({:.0} B/span)",
        requests.traces,
        bytes as f64 / spans as f64
    ));

    let concatenated: Vec<u8> = messages.concat();
    let memcpy = crate::memcpy_case(config, "memcpy", &concatenated, spans, "span");

    let walk = Case::run(config, "protobuf tag walk", bytes, spans, "span", |n| {
        for _ in 0..n {
            for message in &messages {
                black_box(pbscan::count_spans(black_box(message)));
            }
        }
    });
    let total: u64 = messages
        .iter()
        .map(|m| pbscan::count_spans(m).expect("valid"))
        .sum();
    assert_eq!(total, spans);

    let prost = Case::run(config, "prost decode", bytes, spans, "span", |n| {
        for _ in 0..n {
            for message in &messages {
                let decoded =
                    ExportTraceServiceRequest::decode(black_box(*message)).expect("decodes");
                black_box(&decoded);
            }
        }
    });

    let split = Case::run(config, "allegro split_export", bytes, spans, "span", |n| {
        for _ in 0..n {
            for message in &messages {
                let batches = split_export(black_box(message)).expect("valid request");
                black_box(&batches);
            }
        }
    });
    let split_spans: u64 = messages
        .iter()
        .flat_map(|m| split_export(m).expect("valid request"))
        .map(|batch| u64::from(batch.span_count))
        .sum();
    assert_eq!(split_spans, spans);

    report.line(Line {
        suite: SUITE,
        title: "protobuf tag walk (yardstick: every span field's tag, nothing checked or copied)"
            .to_string(),
        subject: walk.clone(),
        baselines: vec![memcpy.clone()],
    });
    report.line(Line {
        suite: SUITE,
        title: "prost full decode into opentelemetry-proto structs (reference)".to_string(),
        subject: prost.clone(),
        baselines: vec![memcpy.clone()],
    });
    report.line(Line {
        suite: SUITE,
        title: "allegro split_export: validate and split into per-trace batches".to_string(),
        subject: split.clone(),
        baselines: vec![prost, walk, memcpy.clone()],
    });

    // gzip at the loadgen's level (`--gzip`: fastest).
    let compressed: Vec<Vec<u8>> = messages
        .iter()
        .map(|message| {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(message).expect("in memory");
            encoder.finish().expect("in memory")
        })
        .collect();
    let compressed_bytes: usize = compressed.iter().map(Vec::len).sum();
    let gunzip = Case::run(config, "gunzip", bytes, spans, "span", |n| {
        for _ in 0..n {
            for message in &compressed {
                let out = allegro_net::grpc::gunzip(black_box(message), MESSAGE_BYTES_MAX)
                    .expect("inflates");
                black_box(&out);
            }
        }
    });
    report.line(Line {
        suite: SUITE,
        title: format!(
            "gzip decompression, allegro_net::grpc::gunzip (flate2), level fast: {compressed_bytes} B \
             -> {bytes} B ({:.1}x); MB/s of output",
            bytes as f64 / compressed_bytes as f64
        ),
        subject: gunzip,
        baselines: vec![split, memcpy],
    });
}

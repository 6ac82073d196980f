//! `cargo bench -p allegro-bench --bench blocks`: the block store, per core.
//!
//! - block build: `BlockWriter` over the payloads of the loadgen's realistic traces (what a
//!   head-block cut does after reading the WAL), in payload MB/s, against memcpy and against
//!   prost's decode of the same payloads (the first format filled its columns that way);
//! - bloom filter probe of a block's trace IDs, present against absent;
//! - trace lookup in a block held in memory (bloom, index, page CRC, decompress, rebuild one
//!   trace), against the decompression of that page's bytes alone;
//! - TraceQL metrics from the page columns (`scan::MetricsScan` then `Partial::observe_groups`,
//!   what a shard does per page of a metrics query), in spans per second, against the
//!   decompression of every column of the same pages and prost's decode of the payloads
//!   (what evaluating rebuilt traces would start with).
//!
//! The bytes per span of the built block are printed as a note (the store's size goal).

use std::hint::black_box;

use allegro_bench::{data, Case, Config, Line, Report};
use allegro_engine::block::{self, BlockWriter, Bloom};
use allegro_engine::ids::TraceId;
use allegro_engine::otlp::split_export;
use opentelemetry_proto::tonic::trace::v1::TracesData;
use prost::Message;

const SUITE: &str = "blocks";
/// Loadgen templates to draw traces from; each has 10 traces of 10 spans.
const REQUESTS: usize = 256;

fn main() {
    allegro_bench::bench_main(SUITE, run);
}

fn run(config: &Config, report: &mut Report) {
    let requests = data::otlp_requests(REQUESTS);
    let mut traces: Vec<(TraceId, Vec<u8>)> = requests
        .messages()
        .flat_map(|m| split_export(m).expect("valid request"))
        .map(|batch| (batch.trace_id, batch.payload))
        .collect();
    traces.sort_by_key(|a| a.0);
    traces.dedup_by(|a, b| a.0 == b.0);
    let payload_bytes: u64 = traces.iter().map(|(_, p)| p.len() as u64).sum();
    let spans = requests.spans;
    let build = || {
        let mut writer = BlockWriter::new();
        for (id, payload) in &traces {
            writer.add_trace(*id, payload);
        }
        writer.finish()
    };
    let (data, stats) = build();
    report.note(format!(
        "blocks input: {} traces, {spans} spans, {payload_bytes} B of payload ({:.0} B/span); \
         block {} B in {} pages = {:.1} B/span",
        traces.len(),
        payload_bytes as f64 / spans as f64,
        stats.data_bytes,
        stats.page_count,
        stats.data_bytes as f64 / spans as f64
    ));

    let index = block::open_bytes(&data).expect("the block opens");
    let mut by_column = std::collections::BTreeMap::<u8, (usize, usize)>::new();
    for entry in &index.pages {
        let bytes = block::page_bytes(&data, entry).expect("in file");
        let page = block::PageView::decode(bytes).expect("decodes");
        for (id, raw, stored) in page.column_sizes() {
            let sizes = by_column.entry(id).or_default();
            sizes.0 += raw;
            sizes.1 += stored;
        }
    }
    let columns: Vec<String> = by_column
        .iter()
        .map(|(id, (raw, stored))| {
            format!(
                "{id}: {:.1}/{:.1}",
                *raw as f64 / spans as f64,
                *stored as f64 / spans as f64
            )
        })
        .collect();
    report.note(format!(
        "bytes per span by column (raw/stored; ids in block::page): {}",
        columns.join(", ")
    ));

    let concatenated: Vec<u8> = traces.iter().flat_map(|(_, p)| p.clone()).collect();
    let memcpy = allegro_bench::memcpy_case(config, "memcpy", &concatenated, spans, "span");
    let prost = Case::run(config, "prost decode", payload_bytes, spans, "span", |n| {
        for _ in 0..n {
            for (_, payload) in &traces {
                black_box(TracesData::decode(black_box(payload.as_slice())).expect("decodes"));
            }
        }
    });
    let writer = Case::run(config, "BlockWriter", payload_bytes, spans, "span", |n| {
        for _ in 0..n {
            black_box(build());
        }
    });
    report.line(Line {
        suite: SUITE,
        title: "block build (payload MB/s per core)".to_string(),
        subject: writer,
        baselines: vec![memcpy, prost.clone()],
    });

    // Compaction's rewrite of a block: every page's traces into a new block.
    let rewrite = |add_page: &dyn Fn(&mut BlockWriter, &[u8])| {
        let mut writer = BlockWriter::new();
        for entry in &index.pages {
            add_page(
                &mut writer,
                block::page_bytes(&data, entry).expect("in file"),
            );
        }
        black_box(writer.finish());
    };
    let copy = Case::run(
        config,
        "PageCursor rows copied",
        payload_bytes,
        spans,
        "span",
        |n| {
            for _ in 0..n {
                rewrite(&|writer, bytes| {
                    let mut page = block::PageCursor::load(bytes).expect("loads");
                    while page.peek().is_some() {
                        writer.copy_trace(&mut page).expect("copies");
                    }
                });
            }
        },
    );
    let rebuild = Case::run(
        config,
        "rebuilt and taken apart",
        payload_bytes,
        spans,
        "span",
        |n| {
            for _ in 0..n {
                rewrite(&|writer, bytes| {
                    let page = block::PageView::decode(bytes).expect("decodes");
                    for (id, payload) in page.traces().expect("rebuilds") {
                        writer.add_trace(id, &payload);
                    }
                });
            }
        },
    );
    report.line(Line {
        suite: SUITE,
        title: "block rewrite, as compaction does (payload MB/s per core)".to_string(),
        subject: copy,
        baselines: vec![rebuild],
    });

    let mut bloom = Bloom::with_capacity(traces.len() as u64);
    for (id, _) in &traces {
        bloom.insert(id);
    }
    let ids: Vec<TraceId> = traces.iter().map(|(id, _)| *id).collect();
    let absent: Vec<TraceId> = ids
        .iter()
        .map(|id| {
            let mut bytes = id.0;
            bytes[0] ^= 0x5a;
            TraceId(bytes)
        })
        .collect();
    let count = ids.len() as u64;
    let hit = Case::run(config, "bloom probe (present)", 0, count, "probe", |n| {
        for _ in 0..n {
            for id in &ids {
                black_box(bloom.may_contain(black_box(id)));
            }
        }
    });
    let miss = Case::run(config, "bloom probe (absent)", 0, count, "probe", |n| {
        for _ in 0..n {
            for id in &absent {
                black_box(bloom.may_contain(black_box(id)));
            }
        }
    });
    report.line(Line {
        suite: SUITE,
        title: "bloom filter probe".to_string(),
        subject: hit,
        baselines: vec![miss],
    });

    metrics_scans(config, report, &data, &index, spans, &prost);

    let sample: Vec<TraceId> = ids.iter().step_by(7).copied().collect();
    let lookups = sample.len() as u64;
    let lookup = Case::run(config, "find_in_bytes", 0, lookups, "lookup", |n| {
        for _ in 0..n {
            for id in &sample {
                let found = block::find_in_bytes(&data, &index, black_box(id));
                black_box(found.expect("reads").expect("found"));
            }
        }
    });
    let pages: Vec<Vec<u8>> = sample
        .iter()
        .map(|id| {
            let (_, entry) = index.page_for(id).expect("present");
            block::page_bytes(&data, &entry).expect("in file").to_vec()
        })
        .collect();
    let crc = Case::run(config, "crc32 of the page", 0, lookups, "lookup", |n| {
        for _ in 0..n {
            for page in &pages {
                black_box(crc32fast::hash(black_box(page)));
            }
        }
    });
    report.line(Line {
        suite: SUITE,
        title: format!(
            "trace lookup in memory (~{} KiB pages)",
            data.len() as u64 / stats.page_count.max(1) / 1024
        ),
        subject: lookup,
        baselines: vec![crc],
    });
}

fn metrics_scans(
    config: &Config,
    report: &mut Report,
    data: &[u8],
    index: &block::BlockIndex,
    spans: u64,
    prost: &Case,
) {
    use allegro_engine::metrics::{MetricsRequest, Partial};
    use allegro_engine::scan::MetricsScan;
    let pages: Vec<&[u8]> = index
        .pages
        .iter()
        .map(|entry| block::page_bytes(data, entry).expect("in file"))
        .collect();
    let decompress = Case::run(config, "decompress every column", 0, spans, "span", |n| {
        for _ in 0..n {
            for bytes in &pages {
                let page = block::PageView::decode(bytes).expect("decodes");
                for (id, _, _) in page.column_sizes() {
                    black_box(page.column(id).expect("decompresses"));
                }
            }
        }
    });
    // An hour in 60 steps, as Grafana asks, ending after the block's last span.
    let end_ns = index
        .pages
        .iter()
        .map(|p| p.max_end_unix_nanos)
        .max()
        .unwrap_or(0)
        + 60_000_000_000;
    for text in [
        "{ } | count_over_time()",
        "{ } | rate() by (resource.service.name)",
        "{ } | quantile_over_time(duration, .99)",
        "{ status = error } | rate() by (resource.service.name)",
    ] {
        let query = allegro_engine::traceql::compile(text).expect("compiles");
        let scan = MetricsScan::new(&query).expect("answered from columns");
        let request = MetricsRequest::new(
            query,
            end_ns - 3_600_000_000_000,
            end_ns,
            60_000_000_000,
            100,
        )
        .expect("a valid request");
        let mut counted = 0;
        let case = Case::run(
            config,
            "MetricsScan + observe_groups",
            0,
            spans,
            "span",
            |n| {
                for _ in 0..n {
                    let mut partial = Partial::new(&request);
                    for bytes in &pages {
                        let page = block::PageView::decode(bytes).expect("decodes");
                        let ids = page.trace_ids().expect("ids");
                        let found = scan
                            .scan(&page, request.start_ns, request.end_ns, &|_| false)
                            .expect("scans");
                        partial.observe_groups(&request, &ids, &found.groups);
                    }
                    counted = partial.spans();
                    black_box(partial);
                }
            },
        );
        assert!(counted > 0, "{text}: no span counted");
        report.line(Line {
            suite: SUITE,
            title: format!("metrics from page columns: {text}"),
            subject: case,
            baselines: vec![decompress.clone(), prost.clone()],
        });
    }
}

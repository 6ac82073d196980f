//! HPACK: decoding the request header blocks a real gRPC client sends, and encoding the
//! response headers and trailers the server sends, in ns per header block.
//!
//! Inputs: the header blocks that the `h2` crate's client (with the loadgen's Export headers)
//! wrote in [`crate::data::capture_h2_client`]: the first block of a connection (literals,
//! Huffman-coded, into an empty dynamic table) and a later one (the same fields, now indexed).
//! The `h2` crate does not expose its HPACK codec, so the baseline is the physical one:
//! memcpy of the same bytes.

use std::hint::black_box;

use allegro_hpack::{Decoder, Encoder, Header, TABLE_BYTES_DEFAULT};

use crate::{data, memcpy_case, Case, Config, Line, Report};

const SUITE: &str = "hpack";
/// The decoded list limit of the benches (the server's default is of this order).
const HEADER_LIST_BYTES_MAX: usize = 16 * 1024;

/// The response header fields the server sends on an Export (net/src/server.rs), `:status`
/// first as `Connection::send_headers` encodes it.
const RESPONSE_HEADERS: &[(&[u8], &[u8])] =
    &[(b":status", b"200"), (b"content-type", b"application/grpc")];
const RESPONSE_TRAILERS: &[(&[u8], &[u8])] = &[(b"grpc-status", b"0")];

pub fn run(config: &Config, report: &mut Report) {
    let requests = data::otlp_requests(3);
    let capture = data::capture_h2_client(&requests.frames);
    let blocks = &capture.header_blocks;
    let (first, later) = (&blocks[0], &blocks[1]);
    let mut fields = Vec::new();
    Decoder::new(TABLE_BYTES_DEFAULT)
        .decode(first, HEADER_LIST_BYTES_MAX, &mut fields)
        .expect("the h2 client's first block decodes");
    report.note(format!(
        "hpack input: request header blocks written by the h2 crate's client with the loadgen's \
         Export headers ({} fields, {} B decoded): first block of a connection {} B, later \
         blocks {} B",
        fields.len(),
        list_bytes(&fields),
        first.len(),
        later.len()
    ));

    decode_first(config, report, first, fields.len());
    decode_later(config, report, blocks, fields.len());
    encode(config, report, "encode response headers", RESPONSE_HEADERS);
    encode(
        config,
        report,
        "encode response trailers",
        RESPONSE_TRAILERS,
    );
}

/// A fresh decoder per block: the first request of a connection.
fn decode_first(config: &Config, report: &mut Report, block: &[u8], fields: usize) {
    let mut out = Vec::with_capacity(fields);
    let ours = Case::run(
        config,
        "allegro-hpack Decoder",
        block.len() as u64,
        1,
        "block",
        |n| {
            for _ in 0..n {
                out.clear();
                let mut decoder = Decoder::new(TABLE_BYTES_DEFAULT);
                decoder
                    .decode(black_box(block), HEADER_LIST_BYTES_MAX, &mut out)
                    .expect("decodes");
                black_box(&out);
            }
        },
    );
    assert_eq!(out.len(), fields);
    let memcpy = memcpy_case(config, "memcpy", block, 1, "block");
    report.line(Line {
        suite: SUITE,
        title: format!(
            "decode request block, first on a connection (h2 client, {} B, {fields} fields, new decoder each)",
            block.len()
        ),
        subject: ours,
        baselines: vec![memcpy],
    });
}

/// A later block on a warm decoder (its fields are in the dynamic table).
fn decode_later(config: &Config, report: &mut Report, blocks: &[Vec<u8>], fields: usize) {
    let mut decoder = Decoder::new(TABLE_BYTES_DEFAULT);
    let mut out = Vec::new();
    for block in &blocks[..2] {
        out.clear();
        decoder
            .decode(block, HEADER_LIST_BYTES_MAX, &mut out)
            .expect("decodes");
    }
    let expected = out.clone();
    let block = &blocks[1];
    // Decoding the block again must leave the table as it is (all fields indexed), or the
    // iterations would not measure the same work.
    let table_before = decoder.dynamic_table_size();
    out.clear();
    decoder
        .decode(block, HEADER_LIST_BYTES_MAX, &mut out)
        .expect("decodes");
    assert_eq!(
        out, expected,
        "a later block decodes to the same list again"
    );
    assert_eq!(
        decoder.dynamic_table_size(),
        table_before,
        "a later block does not change the dynamic table"
    );
    let ours = Case::run(
        config,
        "allegro-hpack Decoder",
        block.len() as u64,
        1,
        "block",
        |n| {
            for _ in 0..n {
                out.clear();
                decoder
                    .decode(black_box(block), HEADER_LIST_BYTES_MAX, &mut out)
                    .expect("decodes");
                black_box(&out);
            }
        },
    );
    let memcpy = memcpy_case(config, "memcpy", block, 1, "block");
    report.line(Line {
        suite: SUITE,
        title: format!(
            "decode request block, later on a connection (h2 client, {} B, {fields} fields, warm table)",
            block.len()
        ),
        subject: ours,
        baselines: vec![memcpy],
    });
}

/// Encoding `fields` on a fresh encoder (the first response of a connection) and on a warm
/// one.
fn encode(config: &Config, report: &mut Report, what: &str, fields: &[(&[u8], &[u8])]) {
    let mut dst = Vec::with_capacity(256);
    Encoder::new().encode(fields, &mut dst);
    let first = dst.clone();
    let cold = Case::run(
        config,
        "allegro-hpack Encoder",
        first.len() as u64,
        1,
        "block",
        |n| {
            for _ in 0..n {
                dst.clear();
                let mut encoder = Encoder::new();
                encoder.encode(black_box(fields), &mut dst);
                black_box(&dst);
            }
        },
    );
    let memcpy = memcpy_case(config, "memcpy", &first, 1, "block");
    report.line(Line {
        suite: SUITE,
        title: format!(
            "{what}, first on a connection ({} fields -> {} B, new encoder each)",
            fields.len(),
            first.len()
        ),
        subject: cold,
        baselines: vec![memcpy],
    });

    let mut encoder = Encoder::new();
    for _ in 0..2 {
        dst.clear();
        encoder.encode(fields, &mut dst);
    }
    let later = dst.clone();
    let warm = Case::run(
        config,
        "allegro-hpack Encoder",
        later.len() as u64,
        1,
        "block",
        |n| {
            for _ in 0..n {
                dst.clear();
                encoder.encode(black_box(fields), &mut dst);
                black_box(&dst);
            }
        },
    );
    assert_eq!(dst, later, "a warm encoder repeats itself");
    let memcpy = memcpy_case(config, "memcpy", &later, 1, "block");
    report.line(Line {
        suite: SUITE,
        title: format!(
            "{what}, later on a connection ({} fields -> {} B, warm table)",
            fields.len(),
            later.len()
        ),
        subject: warm,
        baselines: vec![memcpy],
    });
}

/// Decoded bytes of a header list (name + value, without RFC 9113's 32 per field).
fn list_bytes(fields: &[Header]) -> usize {
    fields.iter().map(|h| h.name.len() + h.value.len()).sum()
}

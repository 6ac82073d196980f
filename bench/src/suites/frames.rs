//! HTTP/2 frames: parse throughput of `allegro_h2::frame::parse` on what a gRPC client
//! really sends, per-frame cost on small control frames, and the whole server-side
//! `Connection` (frames, HPACK, streams, flow control, events and responses) on the same
//! client bytes. Baseline: memcpy of the same bytes.

use std::hint::black_box;

use allegro_h2::frame::{self, Frame, SettingsParams};
use allegro_h2::{Connection, ErrorCode, Event, ServerConfig};

use crate::{data, memcpy_case, Case, Config, Line, Report};

const SUITE: &str = "frames";
/// Export calls in the captured client stream.
const REQUESTS: usize = 8;
/// Frames of each kind in the control-frame mix.
const CONTROL_FRAMES_PER_KIND: usize = 256;
/// Bytes fed to the connection per `recv`, as one socket read would.
const READ_BYTES: usize = 64 * 1024;

pub fn run(config: &Config, report: &mut Report) {
    let requests = data::otlp_requests(REQUESTS);
    let capture = data::capture_h2_client(&requests.frames);
    let stream = &capture.client_bytes[data::PREFACE_BYTES..];
    let (frames, data_frames) = count_frames(stream);
    report.note(format!(
        "frames input: what the h2 crate's client wrote for {REQUESTS} Export calls of ~{} kB \
         (loadgen requests): {} B, {frames} frames ({data_frames} DATA)",
        requests.message_bytes() / REQUESTS as u64 / 1000,
        stream.len()
    ));

    parse_stream(config, report, stream, frames);
    parse_control(config, report, &capture.header_blocks[1]);
    connection(config, report, &capture.client_bytes, capture.requests);
}

/// Frames and DATA frames in a stream of whole frames.
fn count_frames(mut stream: &[u8]) -> (u64, u64) {
    let (mut frames, mut data_frames) = (0, 0);
    while !stream.is_empty() {
        let (parsed, consumed) = frame::parse(stream, frame::FRAME_SIZE_DEFAULT)
            .expect("valid frames")
            .expect("whole frames");
        frames += 1;
        if matches!(parsed, Frame::Data { .. }) {
            data_frames += 1;
        }
        stream = &stream[consumed..];
    }
    (frames, data_frames)
}

/// Parses every frame of `stream`; returns the frames seen.
fn parse_all(mut stream: &[u8]) -> u64 {
    let mut frames = 0u64;
    while let Ok(Some((parsed, consumed))) = frame::parse(stream, frame::FRAME_SIZE_DEFAULT) {
        black_box(&parsed);
        frames += 1;
        stream = &stream[consumed..];
    }
    frames
}

fn parse_stream(config: &Config, report: &mut Report, stream: &[u8], frames: u64) {
    let ours = Case::run(
        config,
        "allegro-h2 frame::parse",
        stream.len() as u64,
        frames,
        "frame",
        |n| {
            for _ in 0..n {
                assert_eq!(parse_all(black_box(stream)), frames);
            }
        },
    );
    let memcpy = memcpy_case(config, "memcpy", stream, frames, "frame");
    report.line(Line {
        suite: SUITE,
        title: format!(
            "parse gRPC client stream ({REQUESTS} Export calls, {} B, {frames} frames; DATA payloads are borrowed, not read)",
            stream.len()
        ),
        subject: ours,
        baselines: vec![memcpy],
    });
}

/// WINDOW_UPDATE, PING, SETTINGS, RST_STREAM and a later request HEADERS, in turn.
fn parse_control(config: &Config, report: &mut Report, header_block: &[u8]) {
    let settings: Vec<u8> = [(0x4u16, 1u32 << 20), (0x3, 100)]
        .iter()
        .flat_map(|(id, value)| id.to_be_bytes().into_iter().chain(value.to_be_bytes()))
        .collect();
    let mut stream = Vec::new();
    for i in 0..CONTROL_FRAMES_PER_KIND as u32 {
        let stream_id = 2 * i + 1;
        let kinds = [
            Frame::WindowUpdate {
                stream_id: 0,
                increment: 65_535,
            },
            Frame::Ping {
                ack: false,
                payload: i.to_be_bytes().repeat(2).try_into().expect("8 bytes"),
            },
            Frame::Settings {
                ack: false,
                params: SettingsParams::from_bytes(&settings).expect("whole parameters"),
            },
            Frame::RstStream {
                stream_id,
                code: ErrorCode::Cancel,
            },
            Frame::Headers {
                stream_id,
                end_stream: false,
                end_headers: true,
                priority: None,
                fragment: header_block,
                pad_len: None,
            },
        ];
        for kind in kinds {
            kind.encode(&mut stream);
        }
    }
    let frames = (CONTROL_FRAMES_PER_KIND * 5) as u64;
    assert_eq!(count_frames(&stream).0, frames);
    let ours = Case::run(
        config,
        "allegro-h2 frame::parse",
        stream.len() as u64,
        frames,
        "frame",
        |n| {
            for _ in 0..n {
                assert_eq!(parse_all(black_box(&stream)), frames);
            }
        },
    );
    let memcpy = memcpy_case(config, "memcpy", &stream, frames, "frame");
    report.line(Line {
        suite: SUITE,
        title: format!(
            "parse small frames (WINDOW_UPDATE, PING, SETTINGS, RST_STREAM, HEADERS of {} B; {} B avg)",
            header_block.len(),
            stream.len() as u64 / frames
        ),
        subject: ours,
        baselines: vec![memcpy],
    });
}

/// A fresh server `Connection` fed the client's bytes in socket-sized reads, every event
/// taken and every request answered (headers, a 5-byte message, trailers) as the server
/// does; the output is taken after each read.
fn serve(client_bytes: &[u8], out: &mut Vec<u8>) -> usize {
    let mut conn = Connection::new(ServerConfig::default());
    let mut answered = 0;
    for chunk in client_bytes.chunks(READ_BYTES) {
        conn.recv(chunk).expect("the client's bytes are valid");
        while let Some(event) = conn.poll_event() {
            let done = match event {
                Event::Headers {
                    stream_id,
                    end_stream: true,
                    ..
                }
                | Event::Data {
                    stream_id,
                    end_stream: true,
                    ..
                } => Some(stream_id),
                Event::Headers { .. } | Event::Data { .. } => None,
                Event::Trailers { stream_id, .. } => Some(stream_id),
                Event::StreamReset { stream_id, code } => {
                    panic!("stream {stream_id} reset: {code:?}")
                }
            };
            if let Some(stream_id) = done {
                conn.send_headers(
                    stream_id,
                    200,
                    &[("content-type", b"application/grpc")],
                    false,
                );
                conn.send_data(stream_id, &[0, 0, 0, 0, 0], false);
                conn.send_trailers(stream_id, &[("grpc-status", b"0")]);
                answered += 1;
            }
        }
        out.clear();
        conn.take_output(out);
        black_box(&out);
    }
    answered
}

fn connection(config: &Config, report: &mut Report, client_bytes: &[u8], requests: usize) {
    let mut out = Vec::with_capacity(READ_BYTES);
    assert_eq!(
        serve(client_bytes, &mut out),
        requests,
        "every request answered"
    );
    let ours = Case::run(
        config,
        "allegro-h2 Connection",
        client_bytes.len() as u64,
        requests as u64,
        "request",
        |n| {
            for _ in 0..n {
                assert_eq!(serve(black_box(client_bytes), &mut out), requests);
            }
        },
    );
    let memcpy = memcpy_case(config, "memcpy", client_bytes, requests as u64, "request");
    report.line(Line {
        suite: SUITE,
        title: format!(
            "server Connection: recv in {} KiB reads, events, answers ({requests} Export calls, {} B)",
            READ_BYTES / 1024,
            client_bytes.len()
        ),
        subject: ours,
        baselines: vec![memcpy],
    });
}

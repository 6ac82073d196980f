//! Deterministic simulation: seeded random frame sequences (biased toward valid requests so
//! that deep states are reached) and random application calls against one `Connection`.
//! Checks that nothing panics (debug assertions included) and that every byte of output
//! parses as frames. `H2_SIM_SEED` and `H2_SIM_RUNS` override the defaults.

use std::collections::HashMap;

use allegro_h2::frame::{self, flags, kind, FrameHeader};
use allegro_h2::{Connection, ErrorCode, Event, ServerConfig, PREFACE};

/// xorshift64: small, deterministic, good enough to pick frames.
struct Rng(u64);

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

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

fn raw(frame_kind: u8, frame_flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHeader {
        length: payload.len() as u32,
        kind: frame_kind,
        flags: frame_flags,
        stream_id,
    }
    .encode(&mut out);
    out.extend_from_slice(payload);
    out
}

/// A literal field without indexing (RFC 7541 6.2.2), short name and value.
fn literal(block: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    block.push(0);
    block.push(name.len() as u8);
    block.extend_from_slice(name);
    block.push(value.len() as u8);
    block.extend_from_slice(value);
}

fn request_block(rng: &mut Rng) -> Vec<u8> {
    let mut block = Vec::new();
    literal(&mut block, b":method", b"POST");
    literal(&mut block, b":scheme", b"http");
    literal(&mut block, b":path", b"/p");
    if rng.below(4) == 0 {
        literal(&mut block, b"content-length", b"3");
    }
    if rng.below(8) == 0 {
        literal(&mut block, b"Bad", b"x");
    }
    block
}

/// Client bytes: the preface, SETTINGS, a request on stream 1, then random frames.
fn client_bytes(rng: &mut Rng) -> Vec<u8> {
    let mut input = PREFACE.to_vec();
    input.extend(raw(kind::SETTINGS, 0, 0, &[]));
    let block = request_block(rng);
    input.extend(raw(kind::HEADERS, flags::END_HEADERS, 1, &block));
    let mut next_id = 3u32;
    for _ in 0..rng.below(80) {
        let frame_kind = rng.pick(&[0u8, 0, 0, 1, 1, 1, 2, 3, 4, 6, 7, 8, 8, 9, 0xbb]);
        let mut stream = if rng.below(10) < 8 {
            1 + 2 * rng.below(u64::from(next_id / 2)) as u32
        } else {
            rng.pick(&[0, 1, 2, 3, 5, 7, 9, 11])
        };
        if frame_kind == kind::HEADERS && rng.below(10) < 8 {
            stream = next_id;
        }
        if frame_kind == kind::HEADERS && stream >= next_id && stream % 2 == 1 {
            next_id = stream + 2;
        }
        let frame_flags = if frame_kind == kind::HEADERS && rng.below(10) < 7 {
            rng.pick(&[flags::END_HEADERS, flags::END_HEADERS | flags::END_STREAM])
        } else {
            rng.pick(&[0u8, 1, 4, 5, 5, 4, 5, 8, 0x20, 0x2d, 0xff])
        };
        let payload: Vec<u8> = match frame_kind {
            kind::HEADERS | kind::CONTINUATION if rng.below(3) > 0 => {
                let mut payload = Vec::new();
                let headers = frame_kind == kind::HEADERS;
                if headers && frame_flags & flags::PADDED != 0 {
                    payload.push(rng.below(3) as u8);
                }
                if headers && frame_flags & flags::PRIORITY != 0 {
                    payload.extend_from_slice(&[0, 0, 0, rng.below(5) as u8, 7]);
                }
                payload.extend(request_block(rng));
                if headers && frame_flags & flags::PADDED != 0 {
                    payload.extend_from_slice(&[0, 0]);
                }
                payload
            }
            kind::DATA => vec![5; rng.below(3_000) as usize],
            kind::PRIORITY => vec![0, 0, 0, rng.below(12) as u8, 9],
            kind::RST_STREAM => (rng.below(10) as u32).to_be_bytes().to_vec(),
            kind::SETTINGS => {
                let mut payload = Vec::new();
                for _ in 0..rng.below(3) {
                    payload.extend_from_slice(&[0, 1 + rng.below(6) as u8]);
                    let value = (rng.next() as u32) >> rng.below(32);
                    payload.extend_from_slice(&value.to_be_bytes());
                }
                payload
            }
            kind::PING => vec![7; 8],
            kind::WINDOW_UPDATE => {
                let increment = rng.below(3) as u32 * rng.below(1 << 31) as u32;
                increment.to_be_bytes().to_vec()
            }
            _ => (0..rng.below(40)).map(|_| rng.next() as u8).collect(),
        };
        input.extend(raw(frame_kind, frame_flags, stream, &payload));
    }
    if rng.below(30) == 0 {
        let at = rng.below(input.len() as u64) as usize;
        input[at] ^= 1 << rng.below(8);
    }
    input
}

/// What the simulated application has sent on a stream.
#[derive(Clone, Copy, PartialEq)]
enum Response {
    None,
    Started,
    Ended,
}

fn run(rng: &mut Rng) {
    let config = ServerConfig {
        max_concurrent_streams: 1 + rng.below(4) as u32,
        initial_window_size: rng.pick(&[1, 100, 65_535, 1 << 20]),
        max_request_body_bytes: 1 + rng.below(100_000) as usize,
        max_output_buffer_bytes: 1 + rng.below(50_000) as usize,
        ..ServerConfig::default()
    };
    let mut conn = Connection::new(config);
    let input = client_bytes(rng);
    let mut live: HashMap<u32, Response> = HashMap::new();
    let mut out = Vec::new();
    for piece in input.chunks(1 + rng.below(200) as usize) {
        if conn.recv(piece).is_err() {
            assert!(conn.wants_close());
        }
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Headers { stream_id, .. } => {
                    live.insert(stream_id, Response::None);
                }
                Event::StreamReset { stream_id, .. } => {
                    live.remove(&stream_id);
                }
                Event::Data { .. } | Event::Trailers { .. } => {}
            }
        }
        let mut ids: Vec<u32> = live.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let state = live[&id];
            match (rng.below(8), state) {
                (0, Response::None) => {
                    let end = rng.below(2) == 0;
                    conn.send_headers(id, 200, &[("a", b"b")], end);
                    live.insert(
                        id,
                        if end {
                            Response::Ended
                        } else {
                            Response::Started
                        },
                    );
                }
                (1, Response::None) => conn.send_headers(id, 103, &[], false),
                (2, Response::Started) => {
                    let end = rng.below(2) == 0;
                    conn.send_data(id, &vec![1; rng.below(70_000) as usize], end);
                    if end {
                        live.insert(id, Response::Ended);
                    }
                }
                (3, Response::Started) => {
                    conn.send_trailers(id, &[("grpc-status", b"0")]);
                    live.insert(id, Response::Ended);
                }
                (4, _) => {
                    conn.reset_stream(id, rng.pick(&[ErrorCode::NoError, ErrorCode::Cancel]));
                    live.remove(&id);
                }
                (5, _) if rng.below(20) == 0 => conn.shutdown(),
                _ => {}
            }
        }
        out.clear();
        conn.take_output(&mut out);
        let mut rest = out.as_slice();
        while !rest.is_empty() {
            match frame::parse(rest, frame::FRAME_SIZE_MAX) {
                Ok(Some((_, consumed))) => rest = &rest[consumed..],
                other => panic!("output does not parse: {other:?}"),
            }
        }
    }
}

#[test]
fn random_frames_and_calls() {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let mut rng = Rng(env("H2_SIM_SEED").unwrap_or(0x9e37_79b9_7f4a_7c15));
    for _ in 0..env("H2_SIM_RUNS").unwrap_or(3_000) {
        run(&mut rng);
        let noise: Vec<u8> = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
        allegro_h2::fuzz_frames(&noise);
        allegro_h2::fuzz_frame_parse(&noise);
    }
}

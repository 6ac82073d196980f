use allegro_h2::frame::FrameHeader;
use allegro_h2::{Connection, ErrorCode, Event, ServerConfig, PREFACE};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 { self.0 ^= self.0 << 13; self.0 ^= self.0 >> 7; self.0 ^= self.0 << 17; self.0 }
    fn below(&mut self, n: u64) -> u64 { self.next() % n }
}
fn raw(k: u8, f: u8, s: u32, p: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHeader { length: p.len() as u32, kind: k, flags: f, stream_id: s }.encode(&mut out);
    out.extend_from_slice(p);
    out
}
fn lit(out: &mut Vec<u8>, n: &[u8], v: &[u8]) { out.push(0); out.push(n.len() as u8); out.extend_from_slice(n); out.push(v.len() as u8); out.extend_from_slice(v); }

#[test]
fn stress() {
    let mut rng = Rng(0x9E3779B97F4A7C15);
    let iterations = std::env::var("ITER").ok().and_then(|v| v.parse().ok()).unwrap_or(3000u64);
    for _ in 0..iterations {
        let config = ServerConfig { max_concurrent_streams: 1 + rng.below(4) as u32, initial_window_size: [1, 100, 65_535, 1 << 20][rng.below(4) as usize], max_request_body_bytes: 1 + rng.below(100_000) as usize, max_output_buffer_bytes: 1 + rng.below(50_000) as usize, ..ServerConfig::default() };
        let mut conn = Connection::new(config);
        let mut input = PREFACE.to_vec();
        input.extend(raw(4, 0, 0, &[]));
        let mut out = Vec::new();
        let mut live: Vec<u32> = Vec::new(); let mut state: std::collections::HashMap<u32, u8> = Default::default();
        for _ in 0..rng.below(60) {
            let stream = [0, 1, 2, 3, 5, 7, 9, 11][rng.below(8) as usize];
            let kind = rng.below(12) as u8;
            let flags = [0u8, 1, 4, 5, 8, 0x20, 0x2d, 0xff][rng.below(8) as usize];
            let payload: Vec<u8> = match kind {
                1 | 9 if rng.below(3) > 0 => {
                    let mut b = Vec::new();
                    if flags & 8 != 0 && kind == 1 { b.push(rng.below(3) as u8); }
                    if flags & 0x20 != 0 && kind == 1 { b.extend_from_slice(&[0, 0, 0, rng.below(5) as u8, 7]); }
                    lit(&mut b, b":method", b"POST"); lit(&mut b, b":scheme", b"http"); lit(&mut b, b":path", b"/p");
                    if rng.below(4) == 0 { lit(&mut b, b"content-length", b"3"); }
                    if rng.below(8) == 0 { lit(&mut b, b"Bad", b"x"); }
                    if flags & 8 != 0 && kind == 1 { b.extend_from_slice(&[0, 0]); }
                    b
                }
                4 => { let mut b = Vec::new(); for _ in 0..rng.below(3) { b.extend_from_slice(&[0, 1 + rng.below(6) as u8]); b.extend_from_slice(&(rng.next() as u32 >> rng.below(32)).to_be_bytes()); } b }
                8 => (rng.below(3) as u32 * rng.below(1 << 31) as u32).to_be_bytes().to_vec(),
                _ => (0..rng.below(40)).map(|_| rng.next() as u8).collect(),
            };
            input.extend(raw(kind, flags, stream, &payload));
        }
        if rng.below(10) == 0 { let at = rng.below(input.len() as u64) as usize; input[at] ^= 1 << rng.below(8); }
        let chunk = 1 + rng.below(200) as usize;
        for piece in input.chunks(chunk) {
            let _ = conn.recv(piece);
            while let Some(event) = conn.poll_event() {
                match event {
                    Event::Headers { stream_id, .. } => live.push(stream_id),
                    Event::StreamReset { stream_id, .. } => live.retain(|&s| s != stream_id),
                    _ => {}
                }
            }
            for &id in live.clone().iter() {
                let st = *state.get(&id).unwrap_or(&0);
                match (rng.below(8), st) {
                    (0, 0) => { let end = rng.below(2) == 0; conn.send_headers(id, 200, &[("a", b"b")], end); state.insert(id, if end { 2 } else { 1 }); }
                    (1, 0) => conn.send_headers(id, 103, &[], false),
                    (2, 1) => { let n = rng.below(70_000) as usize; let end = rng.below(2) == 0; conn.send_data(id, &vec![1; n], end); if end { state.insert(id, 2); } }
                    (3, 1) => { conn.send_trailers(id, &[("grpc-status", b"0")]); state.insert(id, 2); }
                    (4, _) => { conn.reset_stream(id, [ErrorCode::NoError, ErrorCode::Cancel][rng.below(2) as usize]); live.retain(|&s| s != id); }
                    (5, _) if rng.below(20) == 0 => conn.shutdown(),
                    _ => {}
                }
            }
            out.clear();
            conn.take_output(&mut out);
            let _ = conn.wants_write();
            let mut rest = out.as_slice();
            while !rest.is_empty() {
                match allegro_h2::frame::parse(rest, allegro_h2::frame::FRAME_SIZE_MAX) {
                    Ok(Some((_, n))) => rest = &rest[n..],
                    other => panic!("bad output {other:?}"),
                }
            }
        }
        let mut bytes: Vec<u8> = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
        allegro_h2::fuzz_frames(&bytes);
        allegro_h2::fuzz_frame_parse(&bytes);
        bytes.splice(0..0, raw(4, 0, 0, &[]));
        allegro_h2::fuzz_frames(&bytes);
    }
}

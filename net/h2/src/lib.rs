//! HTTP/2 (RFC 9113), server side, cleartext with prior knowledge (h2c), sans-IO.
//!
//! A [`Connection`] is fed the bytes read from a socket ([`Connection::recv`]), yields
//! [`Event`]s ([`Connection::poll_event`]), takes responses
//! ([`Connection::send_headers`], [`Connection::send_data`], [`Connection::send_trailers`])
//! and hands back the bytes to write ([`Connection::take_output`]). The monoio task around
//! it only moves bytes.
//!
//! Code map:
//!
//! - `frame`: the frame header and every frame type, a parser that never panics and
//!   encoders (RFC 9113 4, 6).
//! - `error`: error codes (RFC 9113 7) and the connection / stream error classes (5.4).
//! - `settings`: SETTINGS parameters and their validation (6.5).
//! - `request`: request and trailer field validation (8.2, 8.3).
//! - `conn/`: the state machine, one concern per file: `mod.rs` (the [`Connection`] and its
//!   API), `input` (preface, frame dispatch, error mapping), `headers` (header blocks, 4.3),
//!   `stream` (stream states, 5.1), `flow` (flow control, 5.2, 6.9), `control` (SETTINGS,
//!   PING, GOAWAY), `flood` (flood defenses, 10.5), `output` (framing of responses),
//!   `encoder` (our HPACK encoder), `config` ([`ServerConfig`]).
//!
//! **Architecture Invariant:** no IO, no async, no clock, no threads: every behaviour is
//! reachable by feeding bytes, which is how the tests and the fuzz targets drive it.
//!
//! **Architecture Invariant:** no input can panic the crate: decoders deny `unwrap` and
//! unchecked indexing, and [`fuzz_frames`] / [`fuzz_frame_parse`] are fuzzed.

mod conn;
mod error;
pub mod frame;
mod request;
pub mod settings;

pub use conn::{Connection, Event, ServerConfig, PREFACE, RECENTLY_CLOSED_MAX};
pub use error::{ConnectionError, ErrorCode, H2Error, StreamError};

/// Fuzz entry point: the preface, then `data` split into chunks (the first byte picks the
/// chunk size, so partial frames are exercised) into a default [`Connection`]. Each request
/// is answered with headers, data and trailers, and all output must parse as frames. Panics
/// only on a bug.
pub fn fuzz_frames(data: &[u8]) {
    let mut conn = Connection::new(ServerConfig::default());
    let mut out = Vec::new();
    let (chunk, data) = match data.split_first() {
        Some((&first, rest)) => (usize::from(first) + 1, rest),
        None => (1, data),
    };
    let mut ok = conn.recv(PREFACE).is_ok();
    for piece in data.chunks(chunk) {
        if !ok {
            break;
        }
        ok = conn.recv(piece).is_ok();
        fuzz_drive(&mut conn, &mut out);
    }
    fuzz_drive(&mut conn, &mut out);
}

fn fuzz_drive(conn: &mut Connection, out: &mut Vec<u8>) {
    while let Some(event) = conn.poll_event() {
        if let Event::Headers { stream_id, .. } = event {
            conn.send_headers(
                stream_id,
                200,
                &[("content-type", b"application/grpc")],
                false,
            );
            conn.send_data(stream_id, b"\0\0\0\0\x02hi", false);
            conn.send_trailers(stream_id, &[("grpc-status", b"0")]);
        }
    }
    out.clear();
    conn.take_output(out);
    let mut rest = out.as_slice();
    while !rest.is_empty() {
        match frame::parse(rest, frame::FRAME_SIZE_MAX) {
            Ok(Some((_, consumed))) => rest = rest.get(consumed..).unwrap_or_default(),
            other => panic!("output does not parse as frames: {other:?}"),
        }
    }
}

/// Fuzz entry point for the frame parser alone: parses frames from `data` until it runs
/// out or meets a connection error, and checks that encoding each parsed frame and parsing
/// it again gives the same frame. Panics only on a bug.
pub fn fuzz_frame_parse(data: &[u8]) {
    let mut rest = data;
    let mut encoded = Vec::new();
    loop {
        match frame::parse(rest, frame::FRAME_SIZE_DEFAULT) {
            Ok(Some((parsed, consumed))) => {
                encoded.clear();
                parsed.encode(&mut encoded);
                match frame::parse(&encoded, frame::FRAME_SIZE_MAX) {
                    Ok(Some((again, n))) if again == parsed && n == encoded.len() => {}
                    other => panic!("{parsed:?} re-encoded parses as {other:?}"),
                }
                rest = rest.get(consumed..).unwrap_or_default();
            }
            Ok(None) | Err(frame::FrameError::Connection(_)) => return,
            Err(frame::FrameError::Stream { consumed, .. }) => {
                rest = rest.get(consumed..).unwrap_or_default();
            }
        }
    }
}

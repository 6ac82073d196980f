//! gRPC over HTTP/2 pieces that need no IO: length-prefixed message framing, status codes,
//! `grpc-message` percent-decoding, and gzip for `grpc-encoding: gzip`.
//!
//! Message framing (gRPC over HTTP/2, "Length-Prefixed-Message"):
//!
//! ```text
//! +------------------+---------------------------+-------------------------+
//! | compressed: u8   | message length: u32 BE    | message (length bytes)  |
//! | 0 = plain, 1 = by grpc-encoding              |                         |
//! +------------------+---------------------------+-------------------------+
//! ```

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use std::fmt;
use std::io::Read;

pub const FRAME_HEADER_BYTES: usize = 5;

/// Appends one length-prefixed message to `out`.
pub fn encode_frame(compressed: bool, message: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(message.len()).expect("gRPC messages are below 4 GiB");
    out.reserve(FRAME_HEADER_BYTES + message.len());
    out.push(u8::from(compressed));
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
}

/// A frame header for a message of `len` bytes.
pub fn frame_header(compressed: bool, len: usize) -> [u8; FRAME_HEADER_BYTES] {
    let len = u32::try_from(len).expect("gRPC messages are below 4 GiB");
    let [a, b, c, d] = len.to_be_bytes();
    [u8::from(compressed), a, b, c, d]
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The compressed flag is neither 0 nor 1.
    BadFlag(u8),
    /// The message is longer than the receive limit.
    TooLarge { len: usize, max: usize },
    /// The stream ended inside a frame.
    Truncated { buffered: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadFlag(flag) => write!(f, "gRPC frame with compressed flag {flag}"),
            FrameError::TooLarge { len, max } => {
                write!(
                    f,
                    "gRPC message of {len} bytes exceeds the {max}-byte limit"
                )
            }
            FrameError::Truncated { buffered } => {
                write!(
                    f,
                    "stream ended inside a gRPC frame ({buffered} bytes buffered)"
                )
            }
        }
    }
}

impl std::error::Error for FrameError {}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub compressed: bool,
    pub message: Vec<u8>,
}

/// Splits a byte stream (HTTP/2 DATA payloads in any chunking) into gRPC messages.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
    message_bytes_max: usize,
}

impl FrameDecoder {
    pub fn new(message_bytes_max: usize) -> FrameDecoder {
        FrameDecoder {
            buffer: Vec::new(),
            message_bytes_max,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// The next complete message, if buffered.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(header) = self.buffer.get(..FRAME_HEADER_BYTES) else {
            return Ok(None);
        };
        let mut h = [0u8; FRAME_HEADER_BYTES];
        h.copy_from_slice(header);
        let compressed = match h[0] {
            0 => false,
            1 => true,
            other => return Err(FrameError::BadFlag(other)),
        };
        let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
        if len > self.message_bytes_max {
            return Err(FrameError::TooLarge {
                len,
                max: self.message_bytes_max,
            });
        }
        let Some(message) = self
            .buffer
            .get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len)
        else {
            return Ok(None);
        };
        let message = message.to_vec();
        self.buffer.drain(..FRAME_HEADER_BYTES + len);
        Ok(Some(Frame {
            compressed,
            message,
        }))
    }

    /// Call at end of stream: leftover bytes mean a truncated frame.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buffer.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated {
                buffered: self.buffer.len(),
            })
        }
    }
}

/// gRPC status codes, names as in the gRPC spec (`grpc/doc/statuscodes.md`).
pub const STATUS_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

pub fn status_name(code: u32) -> Option<&'static str> {
    STATUS_NAMES.get(code as usize).copied()
}

/// Parses a `grpc-status` header value: ASCII decimal.
pub fn parse_status(value: &[u8]) -> Option<u32> {
    if value.is_empty() || value.len() > 10 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Decodes a `grpc-message` value (percent-encoded UTF-8); invalid escapes are kept verbatim.
pub fn decode_message(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while let Some(&byte) = value.get(i) {
        let escaped = match (byte, value.get(i + 1), value.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) => match (hex_value(h), hex_value(l)) {
                (Some(h), Some(l)) => Some(h << 4 | l),
                _ => None,
            },
            _ => None,
        };
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                i += 3;
            }
            None => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A reusable gzip (RFC 1952) compressor: the deflate state is allocated once and reset per
/// message, which matters at tens of thousands of messages per second.
pub struct Gzip {
    deflate: Compress,
    crc: Crc,
}

const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

impl Default for Gzip {
    fn default() -> Gzip {
        Gzip::new()
    }
}

impl Gzip {
    pub fn new() -> Gzip {
        Gzip {
            deflate: Compress::new(Compression::fast(), false),
            crc: Crc::new(),
        }
    }

    /// Appends the gzip encoding of `input` to `out`.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.deflate.reset();
        self.crc.reset();
        self.crc.update(input);
        out.extend_from_slice(&GZIP_HEADER);
        out.reserve(input.len() / 2 + 64);
        let mut consumed = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(4096));
            }
            let before_in = self.deflate.total_in();
            let rest = input.get(consumed..).unwrap_or_default();
            let status = self
                .deflate
                .compress_vec(rest, out, FlushCompress::Finish)
                .expect("deflate of an in-memory buffer cannot fail");
            consumed += (self.deflate.total_in() - before_in) as usize;
            match status {
                Status::StreamEnd => break,
                Status::Ok | Status::BufError => continue,
            }
        }
        out.extend_from_slice(&self.crc.sum().to_le_bytes());
        out.extend_from_slice(&(input.len() as u32).to_le_bytes());
    }
}

/// Decompresses a gzip message, refusing more than `limit` bytes of output.
pub fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("bad gzip message: {e}"))?;
    if out.len() > limit {
        return Err(format!("gzip message inflates past {limit} bytes"));
    }
    Ok(out)
}

#[cfg(test)]
#[expect(
    clippy::indexing_slicing,
    reason = "tests index buffers they just built"
)]
mod tests {
    use super::*;

    #[test]
    fn frame_layout_is_flag_then_big_endian_length() {
        let mut out = Vec::new();
        encode_frame(false, b"abc", &mut out);
        assert_eq!(out, [0, 0, 0, 0, 3, b'a', b'b', b'c']);
        out.clear();
        encode_frame(true, &[7; 300], &mut out);
        assert_eq!(&out[..5], &[1, 0, 0, 1, 44]);
        assert_eq!(frame_header(true, 300), [1, 0, 0, 1, 44]);
        out.clear();
        encode_frame(false, b"", &mut out);
        assert_eq!(out, [0, 0, 0, 0, 0]);
    }

    #[test]
    fn decoder_handles_any_chunking() {
        let mut stream = Vec::new();
        encode_frame(false, b"first", &mut stream);
        encode_frame(true, b"", &mut stream);
        encode_frame(false, &[9; 1000], &mut stream);
        for chunk in [1, 2, 3, 5, 7, 64, stream.len()] {
            let mut decoder = FrameDecoder::new(4096);
            let mut frames = Vec::new();
            for piece in stream.chunks(chunk) {
                decoder.push(piece);
                while let Some(frame) = decoder.next_frame().expect("valid") {
                    frames.push(frame);
                }
            }
            decoder.finish().expect("nothing left over");
            assert_eq!(frames.len(), 3, "chunk {chunk}");
            assert_eq!(frames[0].message, b"first");
            assert!(frames[1].compressed);
            assert!(frames[1].message.is_empty());
            assert_eq!(frames[2].message.len(), 1000);
        }
    }

    #[test]
    fn decoder_rejects_bad_frames() {
        let mut decoder = FrameDecoder::new(10);
        decoder.push(&[2, 0, 0, 0, 0]);
        assert_eq!(decoder.next_frame(), Err(FrameError::BadFlag(2)));

        let mut decoder = FrameDecoder::new(10);
        decoder.push(&[0, 0, 0, 0, 11]);
        assert_eq!(
            decoder.next_frame(),
            Err(FrameError::TooLarge { len: 11, max: 10 })
        );

        let mut decoder = FrameDecoder::new(10);
        decoder.push(&[0, 0, 0, 0, 4, 1, 2]);
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(decoder.finish(), Err(FrameError::Truncated { buffered: 7 }));
    }

    #[test]
    fn status_parsing_and_names() {
        assert_eq!(parse_status(b"0"), Some(0));
        assert_eq!(parse_status(b"14"), Some(14));
        assert_eq!(parse_status(b""), None);
        assert_eq!(parse_status(b"-1"), None);
        assert_eq!(parse_status(b" 1"), None);
        assert_eq!(parse_status(b"99999999999"), None);
        assert_eq!(status_name(8), Some("RESOURCE_EXHAUSTED"));
        assert_eq!(status_name(16), Some("UNAUTHENTICATED"));
        assert_eq!(status_name(17), None);
    }

    #[test]
    fn grpc_message_is_percent_decoded() {
        assert_eq!(decode_message(b"rate%20limited"), "rate limited");
        assert_eq!(decode_message(b"caf%C3%A9"), "café");
        assert_eq!(decode_message(b"100%"), "100%");
        assert_eq!(decode_message(b"%zz%4"), "%zz%4");
    }

    #[test]
    fn gzip_round_trips_and_reuses_state() {
        let mut gzip = Gzip::new();
        for len in [0usize, 1, 100, 70_000, 300_000] {
            let input: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ (i / 7) as u8).collect();
            let mut out = Vec::new();
            gzip.compress(&input, &mut out);
            assert_eq!(gunzip(&out, len).expect("valid gzip"), input);
        }
        let mut out = Vec::new();
        gzip.compress(&[0; 1000], &mut out);
        assert!(gunzip(&out, 999).is_err(), "limit enforced");
        assert!(gunzip(b"not gzip", 100).is_err());
    }
}

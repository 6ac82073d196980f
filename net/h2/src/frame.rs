//! HTTP/2 frames (RFC 9113 4 and 6): a parser that never panics and never allocates, and
//! encoders.
//!
//! Every frame starts with a 9-octet header (RFC 9113 4.1):
//!
//! ```text
//! +-----------------------------------------------+
//! |                 Length (24)                   |
//! +---------------+---------------+---------------+
//! |   Type (8)    |   Flags (8)   |
//! +-+-------------+---------------+-------------------------------+
//! |R|                 Stream Identifier (31)                      |
//! +=+=============================================================+
//! |                   Frame Payload (Length octets)             ...
//! +---------------------------------------------------------------+
//! ```
//!
//! The payload layouts are drawn on the [`Frame`] variants. [`parse`] checks everything that
//! can be checked from one frame alone (sizes, stream 0 rules, padding) and leaves stream
//! state to the connection. Parsed frames borrow from the input buffer.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::error::{ConnectionError, ErrorCode, StreamError};

/// Octets in a frame header.
pub const FRAME_HEADER_BYTES: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE initial value and lower bound (RFC 9113 4.2, 6.5.2).
pub const FRAME_SIZE_DEFAULT: u32 = 1 << 14;
/// SETTINGS_MAX_FRAME_SIZE upper bound: the largest 24-bit length (RFC 9113 6.5.2).
pub const FRAME_SIZE_MAX: u32 = (1 << 24) - 1;
/// The largest flow-control window and WINDOW_UPDATE increment (RFC 9113 6.9.1).
pub const WINDOW_SIZE_MAX: u32 = (1 << 31) - 1;
/// Mask for the 31-bit stream identifier (the top bit is reserved, RFC 9113 4.1).
pub const STREAM_ID_MASK: u32 = (1 << 31) - 1;

/// Frame type codes (RFC 9113 6).
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;

    /// The RFC name of a frame type, for error messages.
    pub fn name(kind: u8) -> &'static str {
        match kind {
            DATA => "DATA",
            HEADERS => "HEADERS",
            PRIORITY => "PRIORITY",
            RST_STREAM => "RST_STREAM",
            SETTINGS => "SETTINGS",
            PUSH_PROMISE => "PUSH_PROMISE",
            PING => "PING",
            GOAWAY => "GOAWAY",
            WINDOW_UPDATE => "WINDOW_UPDATE",
            CONTINUATION => "CONTINUATION",
            _ => "unknown",
        }
    }
}

/// Frame flags (RFC 9113 6). Unused flags are ignored on receipt and never sent.
pub mod flags {
    /// DATA, HEADERS.
    pub const END_STREAM: u8 = 0x1;
    /// SETTINGS, PING.
    pub const ACK: u8 = 0x1;
    /// HEADERS, PUSH_PROMISE, CONTINUATION.
    pub const END_HEADERS: u8 = 0x4;
    /// DATA, HEADERS, PUSH_PROMISE.
    pub const PADDED: u8 = 0x8;
    /// HEADERS.
    pub const PRIORITY: u8 = 0x20;
}

/// The 9-octet frame header (RFC 9113 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length, 24 bits.
    pub length: u32,
    pub kind: u8,
    pub flags: u8,
    /// 31 bits; the reserved bit is dropped on parse ("MUST be ignored when receiving").
    pub stream_id: u32,
}

impl FrameHeader {
    pub fn parse(bytes: &[u8; FRAME_HEADER_BYTES]) -> FrameHeader {
        let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = *bytes;
        FrameHeader {
            length: u32::from_be_bytes([0, l0, l1, l2]),
            kind,
            flags,
            stream_id: u32::from_be_bytes([s0, s1, s2, s3]) & STREAM_ID_MASK,
        }
    }

    /// Appends the header. The reserved bit is sent unset.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        debug_assert!(self.length <= FRAME_SIZE_MAX, "length {}", self.length);
        debug_assert!(
            self.stream_id <= STREAM_ID_MASK,
            "stream {}",
            self.stream_id
        );
        let [_, l0, l1, l2] = self.length.to_be_bytes();
        dst.extend_from_slice(&[l0, l1, l2, self.kind, self.flags]);
        dst.extend_from_slice(&(self.stream_id & STREAM_ID_MASK).to_be_bytes());
    }
}

/// RFC 7540 priority fields, carried by PRIORITY frames and by HEADERS with the PRIORITY
/// flag. Deprecated by RFC 9113 5.3.2: parsed, checked for self-dependency, then ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    pub exclusive: bool,
    pub dependency: u32,
    /// Wire value; the weight is this plus one.
    pub weight: u8,
}

impl Priority {
    fn parse(bytes: &[u8; 5]) -> Priority {
        let [d0, d1, d2, d3, weight] = *bytes;
        let raw = u32::from_be_bytes([d0, d1, d2, d3]);
        Priority {
            exclusive: raw & !STREAM_ID_MASK != 0,
            dependency: raw & STREAM_ID_MASK,
            weight,
        }
    }

    fn encode(&self, dst: &mut Vec<u8>) {
        let exclusive = if self.exclusive { !STREAM_ID_MASK } else { 0 };
        dst.extend_from_slice(&((self.dependency & STREAM_ID_MASK) | exclusive).to_be_bytes());
        dst.push(self.weight);
    }
}

/// The parameters of a SETTINGS frame: 6 octets each, a 16-bit identifier then a 32-bit
/// value (RFC 9113 6.5.1).
///
/// Invariant: the length is a multiple of 6. The default is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SettingsParams<'a> {
    bytes: &'a [u8],
}

impl<'a> SettingsParams<'a> {
    /// None unless `bytes.len()` is a multiple of 6.
    pub fn from_bytes(bytes: &'a [u8]) -> Option<SettingsParams<'a>> {
        (bytes.len() % 6 == 0).then_some(SettingsParams { bytes })
    }

    /// (identifier, value) in wire order (RFC 9113 6.5.3: "processed in the order they
    /// appear").
    pub fn iter(&self) -> impl Iterator<Item = (u16, u32)> + 'a {
        self.bytes
            .chunks_exact(6)
            .filter_map(|chunk| chunk.first_chunk::<6>())
            .map(|&[i0, i1, v0, v1, v2, v3]| {
                (
                    u16::from_be_bytes([i0, i1]),
                    u32::from_be_bytes([v0, v1, v2, v3]),
                )
            })
    }

    pub fn len(&self) -> usize {
        self.bytes.len() / 6
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// One parsed frame, borrowing its payload from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// DATA (0x0, RFC 9113 6.1): `[Pad Length (8)] Data (..) Padding (..)`.
    Data {
        stream_id: u32,
        end_stream: bool,
        data: &'a [u8],
        /// Present when the PADDED flag was set.
        pad_len: Option<u8>,
    },
    /// HEADERS (0x1, RFC 9113 6.2): `[Pad Length (8)] [E (1) Stream Dependency (31)
    /// Weight (8)] Field Block Fragment (..) Padding (..)`.
    Headers {
        stream_id: u32,
        end_stream: bool,
        end_headers: bool,
        priority: Option<Priority>,
        fragment: &'a [u8],
        pad_len: Option<u8>,
    },
    /// PRIORITY (0x2, RFC 9113 6.3): `E (1) Stream Dependency (31) Weight (8)`.
    Priority { stream_id: u32, priority: Priority },
    /// RST_STREAM (0x3, RFC 9113 6.4): `Error Code (32)`.
    RstStream { stream_id: u32, code: ErrorCode },
    /// SETTINGS (0x4, RFC 9113 6.5): `(Identifier (16) Value (32))*`, on stream 0.
    Settings {
        ack: bool,
        params: SettingsParams<'a>,
    },
    /// PUSH_PROMISE (0x5, RFC 9113 6.6): `[Pad Length (8)] R (1) Promised Stream ID (31)
    /// Field Block Fragment (..) Padding (..)`. Servers reject it (RFC 9113 8.4).
    PushPromise {
        stream_id: u32,
        end_headers: bool,
        promised_stream_id: u32,
        fragment: &'a [u8],
        pad_len: Option<u8>,
    },
    /// PING (0x6, RFC 9113 6.7): `Opaque Data (64)`, on stream 0.
    Ping { ack: bool, payload: [u8; 8] },
    /// GOAWAY (0x7, RFC 9113 6.8): `R (1) Last-Stream-ID (31) Error Code (32) Additional
    /// Debug Data (..)`, on stream 0.
    GoAway {
        last_stream_id: u32,
        code: ErrorCode,
        debug_data: &'a [u8],
    },
    /// WINDOW_UPDATE (0x8, RFC 9113 6.9): `R (1) Window Size Increment (31)`.
    WindowUpdate { stream_id: u32, increment: u32 },
    /// CONTINUATION (0x9, RFC 9113 6.10): `Field Block Fragment (..)`.
    Continuation {
        stream_id: u32,
        end_headers: bool,
        fragment: &'a [u8],
    },
    /// Any other type: discarded by the connection (RFC 9113 5.5), kept whole here so
    /// that encoding a parsed frame reproduces it.
    Unknown {
        kind: u8,
        flags: u8,
        stream_id: u32,
        payload: &'a [u8],
    },
}

/// Why [`parse`] rejected a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The connection cannot go on (GOAWAY).
    Connection(ConnectionError),
    /// Only the frame's stream is affected (RST_STREAM); the frame, `consumed` octets
    /// including its header, is skipped and parsing can go on.
    Stream { error: StreamError, consumed: usize },
}

impl From<ConnectionError> for FrameError {
    fn from(error: ConnectionError) -> FrameError {
        FrameError::Connection(error)
    }
}

/// Parses one frame from the front of `buf`.
///
/// `Ok(None)`: `buf` holds no complete frame yet; feed more. `Ok(Some((frame, consumed)))`:
/// one frame of `consumed` octets (header included). A frame whose declared length exceeds
/// `max_frame_size` (our SETTINGS_MAX_FRAME_SIZE) is rejected as soon as its header is
/// complete, so a peer cannot make us buffer more than one frame of that size.
pub fn parse(buf: &[u8], max_frame_size: u32) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let Some(header_bytes) = buf.first_chunk::<FRAME_HEADER_BYTES>() else {
        return Ok(None);
    };
    let header = FrameHeader::parse(header_bytes);
    // RFC 9113 4.2: "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame
    // exceeds the size defined in SETTINGS_MAX_FRAME_SIZE". Any frame type can change
    // connection state as far as we know (unknown ones included), so this is a
    // connection error.
    if header.length > max_frame_size {
        return Err(ConnectionError::frame_size(format!(
            "{} frame of {} bytes exceeds SETTINGS_MAX_FRAME_SIZE of {}",
            kind::name(header.kind),
            header.length,
            max_frame_size
        ))
        .into());
    }
    let consumed = FRAME_HEADER_BYTES + header.length as usize;
    let Some(payload) = buf.get(FRAME_HEADER_BYTES..consumed) else {
        return Ok(None);
    };
    debug_assert_eq!(payload.len(), header.length as usize);
    match parse_payload(header, payload) {
        Ok(frame) => Ok(Some((frame, consumed))),
        Err(PayloadError::Connection(error)) => Err(FrameError::Connection(error)),
        Err(PayloadError::Stream(error)) => Err(FrameError::Stream { error, consumed }),
    }
}

enum PayloadError {
    Connection(ConnectionError),
    Stream(StreamError),
}

impl From<ConnectionError> for PayloadError {
    fn from(error: ConnectionError) -> PayloadError {
        PayloadError::Connection(error)
    }
}

fn parse_payload(header: FrameHeader, payload: &[u8]) -> Result<Frame<'_>, PayloadError> {
    let FrameHeader {
        length,
        kind,
        flags,
        stream_id,
    } = header;
    let name = kind::name(kind);
    let on_stream = |must_be_nonzero: bool| -> Result<(), ConnectionError> {
        match (must_be_nonzero, stream_id) {
            (true, 0) => Err(ConnectionError::protocol(format!(
                "{name} frame on stream 0; it must be associated with a stream"
            ))),
            (false, id) if id != 0 => Err(ConnectionError::protocol(format!(
                "{name} frame on stream {id}; it must be on stream 0"
            ))),
            _ => Ok(()),
        }
    };
    let frame = match kind {
        kind::DATA => {
            // RFC 9113 6.1: "If a DATA frame is received whose Stream Identifier field is
            // 0x00, the recipient MUST respond with a connection error (Section 5.4.1) of
            // type PROTOCOL_ERROR."
            on_stream(true)?;
            let (data, pad_len) = strip_padding(name, flags, payload)?;
            Frame::Data {
                stream_id,
                end_stream: flags & flags::END_STREAM != 0,
                data,
                pad_len,
            }
        }
        kind::HEADERS => {
            // RFC 9113 6.2: HEADERS on stream 0 is a connection PROTOCOL_ERROR.
            on_stream(true)?;
            let (rest, pad_len) = strip_padding(name, flags, payload)?;
            let (priority, fragment) = if flags & flags::PRIORITY != 0 {
                let (fields, fragment) = rest.split_first_chunk::<5>().ok_or_else(|| {
                    ConnectionError::frame_size(format!(
                        "HEADERS frame with the PRIORITY flag has {} bytes after padding, \
                         fewer than the 5 priority bytes",
                        rest.len()
                    ))
                })?;
                (Some(Priority::parse(fields)), fragment)
            } else {
                (None, rest)
            };
            Frame::Headers {
                stream_id,
                end_stream: flags & flags::END_STREAM != 0,
                end_headers: flags & flags::END_HEADERS != 0,
                priority,
                fragment,
                pad_len,
            }
        }
        kind::PRIORITY => {
            // RFC 9113 6.3: "If a PRIORITY frame is received with a stream identifier of
            // 0x00, the recipient MUST respond with a connection error".
            on_stream(true)?;
            // RFC 9113 6.3: "A PRIORITY frame with a length other than 5 octets MUST be
            // treated as a stream error (Section 5.4.2) of type FRAME_SIZE_ERROR."
            let fields = payload
                .first_chunk::<5>()
                .filter(|_| length == 5)
                .ok_or_else(|| {
                    PayloadError::Stream(StreamError::new(
                        stream_id,
                        ErrorCode::FrameSizeError,
                        format!("PRIORITY frame of {length} bytes; it must be 5"),
                    ))
                })?;
            Frame::Priority {
                stream_id,
                priority: Priority::parse(fields),
            }
        }
        kind::RST_STREAM => {
            // RFC 9113 6.4: RST_STREAM on stream 0 is a connection PROTOCOL_ERROR; "A
            // RST_STREAM frame with a length other than 4 octets MUST be treated as a
            // connection error (Section 5.4.1) of type FRAME_SIZE_ERROR."
            on_stream(true)?;
            let code = exactly::<4>(name, payload)?;
            Frame::RstStream {
                stream_id,
                code: ErrorCode::from_u32(u32::from_be_bytes(code)),
            }
        }
        kind::SETTINGS => {
            // RFC 9113 6.5: stream must be 0 (PROTOCOL_ERROR); an ACK with a payload and a
            // length that is not a multiple of 6 are FRAME_SIZE_ERRORs.
            on_stream(false)?;
            let ack = flags & flags::ACK != 0;
            if ack && length != 0 {
                return Err(ConnectionError::frame_size(format!(
                    "SETTINGS frame with ACK has a payload of {length} bytes; it must be empty"
                ))
                .into());
            }
            let params = SettingsParams::from_bytes(payload).ok_or_else(|| {
                ConnectionError::frame_size(format!(
                    "SETTINGS frame of {length} bytes is not a multiple of 6"
                ))
            })?;
            Frame::Settings { ack, params }
        }
        kind::PUSH_PROMISE => {
            on_stream(true)?;
            let (rest, pad_len) = strip_padding(name, flags, payload)?;
            let (promised, fragment) = rest.split_first_chunk::<4>().ok_or_else(|| {
                ConnectionError::frame_size(format!(
                    "PUSH_PROMISE frame has {} bytes after padding, fewer than the 4 bytes \
                     of the promised stream id",
                    rest.len()
                ))
            })?;
            Frame::PushPromise {
                stream_id,
                end_headers: flags & flags::END_HEADERS != 0,
                promised_stream_id: u32::from_be_bytes(*promised) & STREAM_ID_MASK,
                fragment,
                pad_len,
            }
        }
        kind::PING => {
            // RFC 9113 6.7: stream other than 0 -> PROTOCOL_ERROR; "Receipt of a PING frame
            // with a length field value other than 8 MUST be treated as a connection error
            // (Section 5.4.1) of type FRAME_SIZE_ERROR."
            on_stream(false)?;
            Frame::Ping {
                ack: flags & flags::ACK != 0,
                payload: exactly::<8>(name, payload)?,
            }
        }
        kind::GOAWAY => {
            // RFC 9113 6.8: stream other than 0 -> PROTOCOL_ERROR; shorter than its 8
            // mandatory bytes -> FRAME_SIZE_ERROR (RFC 9113 4.2).
            on_stream(false)?;
            let (fixed, debug_data) = payload.split_first_chunk::<8>().ok_or_else(|| {
                ConnectionError::frame_size(format!(
                    "GOAWAY frame of {length} bytes; it needs at least 8"
                ))
            })?;
            let [s0, s1, s2, s3, c0, c1, c2, c3] = *fixed;
            Frame::GoAway {
                last_stream_id: u32::from_be_bytes([s0, s1, s2, s3]) & STREAM_ID_MASK,
                code: ErrorCode::from_u32(u32::from_be_bytes([c0, c1, c2, c3])),
                debug_data,
            }
        }
        kind::WINDOW_UPDATE => {
            // RFC 9113 6.9: "A WINDOW_UPDATE frame with a length other than 4 octets MUST
            // be treated as a connection error (Section 5.4.1) of type FRAME_SIZE_ERROR."
            let increment = exactly::<4>(name, payload)?;
            Frame::WindowUpdate {
                stream_id,
                increment: u32::from_be_bytes(increment) & STREAM_ID_MASK,
            }
        }
        kind::CONTINUATION => {
            // RFC 9113 6.10: CONTINUATION on stream 0 is a connection PROTOCOL_ERROR.
            on_stream(true)?;
            Frame::Continuation {
                stream_id,
                end_headers: flags & flags::END_HEADERS != 0,
                fragment: payload,
            }
        }
        _ => Frame::Unknown {
            kind,
            flags,
            stream_id,
            payload,
        },
    };
    Ok(frame)
}

/// Splits off `[Pad Length] ... Padding` when the PADDED flag is set (RFC 9113 6.1, 6.2,
/// 6.6): "If the length of the padding is the length of the frame payload or greater, the
/// recipient MUST treat this as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
fn strip_padding<'a>(
    name: &str,
    frame_flags: u8,
    payload: &'a [u8],
) -> Result<(&'a [u8], Option<u8>), ConnectionError> {
    if frame_flags & flags::PADDED == 0 {
        return Ok((payload, None));
    }
    let Some((&pad_len, rest)) = payload.split_first() else {
        return Err(ConnectionError::frame_size(format!(
            "{name} frame with the PADDED flag has no Pad Length byte"
        )));
    };
    let body = rest
        .len()
        .checked_sub(usize::from(pad_len))
        .and_then(|body_len| rest.get(..body_len))
        .ok_or_else(|| {
            ConnectionError::protocol(format!(
                "{name} frame padding of {pad_len} bytes exceeds its payload of {} bytes",
                payload.len()
            ))
        })?;
    Ok((body, Some(pad_len)))
}

/// A fixed-size payload, else a connection FRAME_SIZE_ERROR.
fn exactly<const N: usize>(name: &str, payload: &[u8]) -> Result<[u8; N], ConnectionError> {
    <[u8; N]>::try_from(payload).map_err(|_| {
        ConnectionError::frame_size(format!(
            "{name} frame of {} bytes; it must be {N}",
            payload.len()
        ))
    })
}

/// Octets of padding plus the Pad Length byte.
fn padding_bytes(pad_len: Option<u8>) -> usize {
    pad_len.map_or(0, |pad| usize::from(pad) + 1)
}

impl Frame<'_> {
    /// The stream the frame is on (0 for connection-level frames).
    pub fn stream_id(&self) -> u32 {
        match *self {
            Frame::Data { stream_id, .. }
            | Frame::Headers { stream_id, .. }
            | Frame::Priority { stream_id, .. }
            | Frame::RstStream { stream_id, .. }
            | Frame::PushPromise { stream_id, .. }
            | Frame::WindowUpdate { stream_id, .. }
            | Frame::Continuation { stream_id, .. }
            | Frame::Unknown { stream_id, .. } => stream_id,
            Frame::Settings { .. } | Frame::Ping { .. } | Frame::GoAway { .. } => 0,
        }
    }

    /// The frame type code.
    pub fn kind(&self) -> u8 {
        match *self {
            Frame::Data { .. } => kind::DATA,
            Frame::Headers { .. } => kind::HEADERS,
            Frame::Priority { .. } => kind::PRIORITY,
            Frame::RstStream { .. } => kind::RST_STREAM,
            Frame::Settings { .. } => kind::SETTINGS,
            Frame::PushPromise { .. } => kind::PUSH_PROMISE,
            Frame::Ping { .. } => kind::PING,
            Frame::GoAway { .. } => kind::GOAWAY,
            Frame::WindowUpdate { .. } => kind::WINDOW_UPDATE,
            Frame::Continuation { .. } => kind::CONTINUATION,
            Frame::Unknown { kind, .. } => kind,
        }
    }

    /// Appends the frame, header included. Padding octets are zero (RFC 9113 6.1). The
    /// caller keeps the payload within the peer's SETTINGS_MAX_FRAME_SIZE.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        let stream_id = self.stream_id();
        let kind = self.kind();
        let header = |length: usize, frame_flags: u8, dst: &mut Vec<u8>| {
            debug_assert!(
                length <= FRAME_SIZE_MAX as usize,
                "payload of {length} bytes"
            );
            FrameHeader {
                length: length as u32,
                kind,
                flags: frame_flags,
                stream_id,
            }
            .encode(dst);
        };
        let flag = |on: bool, bit: u8| if on { bit } else { 0 };
        match *self {
            Frame::Data {
                end_stream,
                data,
                pad_len,
                ..
            } => {
                let frame_flags =
                    flag(end_stream, flags::END_STREAM) | flag(pad_len.is_some(), flags::PADDED);
                header(data.len() + padding_bytes(pad_len), frame_flags, dst);
                encode_padded(dst, pad_len, |dst| dst.extend_from_slice(data));
            }
            Frame::Headers {
                end_stream,
                end_headers,
                priority,
                fragment,
                pad_len,
                ..
            } => {
                let frame_flags = flag(end_stream, flags::END_STREAM)
                    | flag(end_headers, flags::END_HEADERS)
                    | flag(pad_len.is_some(), flags::PADDED)
                    | flag(priority.is_some(), flags::PRIORITY);
                let priority_bytes = if priority.is_some() { 5 } else { 0 };
                header(
                    fragment.len() + priority_bytes + padding_bytes(pad_len),
                    frame_flags,
                    dst,
                );
                encode_padded(dst, pad_len, |dst| {
                    if let Some(priority) = priority {
                        priority.encode(dst);
                    }
                    dst.extend_from_slice(fragment);
                });
            }
            Frame::Priority { priority, .. } => {
                header(5, 0, dst);
                priority.encode(dst);
            }
            Frame::RstStream { code, .. } => {
                header(4, 0, dst);
                dst.extend_from_slice(&code.to_u32().to_be_bytes());
            }
            Frame::Settings { ack, params } => {
                header(params.as_bytes().len(), flag(ack, flags::ACK), dst);
                dst.extend_from_slice(params.as_bytes());
            }
            Frame::PushPromise {
                end_headers,
                promised_stream_id,
                fragment,
                pad_len,
                ..
            } => {
                let frame_flags =
                    flag(end_headers, flags::END_HEADERS) | flag(pad_len.is_some(), flags::PADDED);
                header(
                    4 + fragment.len() + padding_bytes(pad_len),
                    frame_flags,
                    dst,
                );
                encode_padded(dst, pad_len, |dst| {
                    dst.extend_from_slice(&(promised_stream_id & STREAM_ID_MASK).to_be_bytes());
                    dst.extend_from_slice(fragment);
                });
            }
            Frame::Ping { ack, payload } => {
                header(8, flag(ack, flags::ACK), dst);
                dst.extend_from_slice(&payload);
            }
            Frame::GoAway {
                last_stream_id,
                code,
                debug_data,
            } => {
                header(8 + debug_data.len(), 0, dst);
                dst.extend_from_slice(&(last_stream_id & STREAM_ID_MASK).to_be_bytes());
                dst.extend_from_slice(&code.to_u32().to_be_bytes());
                dst.extend_from_slice(debug_data);
            }
            Frame::WindowUpdate { increment, .. } => {
                header(4, 0, dst);
                dst.extend_from_slice(&(increment & STREAM_ID_MASK).to_be_bytes());
            }
            Frame::Continuation {
                end_headers,
                fragment,
                ..
            } => {
                header(fragment.len(), flag(end_headers, flags::END_HEADERS), dst);
                dst.extend_from_slice(fragment);
            }
            Frame::Unknown {
                flags: frame_flags,
                payload,
                ..
            } => {
                header(payload.len(), frame_flags, dst);
                dst.extend_from_slice(payload);
            }
        }
    }
}

fn encode_padded(dst: &mut Vec<u8>, pad_len: Option<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    if let Some(pad) = pad_len {
        dst.push(pad);
    }
    body(dst);
    if let Some(pad) = pad_len {
        dst.resize(dst.len() + usize::from(pad), 0);
    }
}

/// Appends a SETTINGS frame (not an ACK) with `params` in order.
pub fn encode_settings(dst: &mut Vec<u8>, params: &[(u16, u32)]) {
    FrameHeader {
        length: (params.len() * 6) as u32,
        kind: kind::SETTINGS,
        flags: 0,
        stream_id: 0,
    }
    .encode(dst);
    for (id, value) in params {
        dst.extend_from_slice(&id.to_be_bytes());
        dst.extend_from_slice(&value.to_be_bytes());
    }
}

/// Appends the header of a DATA frame carrying `len` octets, unpadded; the caller appends
/// the data itself (so it can copy straight from its own buffer).
pub fn encode_data_header(dst: &mut Vec<u8>, stream_id: u32, len: usize, end_stream: bool) {
    debug_assert!(stream_id != 0);
    FrameHeader {
        length: len as u32,
        kind: kind::DATA,
        flags: if end_stream { flags::END_STREAM } else { 0 },
        stream_id,
    }
    .encode(dst);
}

#[cfg(test)]
#[expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;

    fn raw(kind: u8, frame_flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        FrameHeader {
            length: payload.len() as u32,
            kind,
            flags: frame_flags,
            stream_id,
        }
        .encode(&mut out);
        out.extend_from_slice(payload);
        out
    }

    fn connection_error(bytes: &[u8]) -> ConnectionError {
        match parse(bytes, FRAME_SIZE_DEFAULT) {
            Err(FrameError::Connection(error)) => error,
            other => panic!("expected a connection error, got {other:?}"),
        }
    }

    fn round_trip(frame: Frame<'_>) {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        let (parsed, consumed) = parse(&bytes, FRAME_SIZE_MAX).unwrap().unwrap();
        assert_eq!(consumed, bytes.len());
        assert_eq!(parsed, frame);
    }

    #[test]
    fn every_frame_type_round_trips() {
        let priority = Priority {
            exclusive: true,
            dependency: 3,
            weight: 15,
        };
        let params = [0, 4, 0, 0, 0, 1];
        let frames = [
            Frame::Data {
                stream_id: 1,
                end_stream: true,
                data: b"hello",
                pad_len: Some(3),
            },
            Frame::Data {
                stream_id: 1,
                end_stream: false,
                data: b"",
                pad_len: None,
            },
            Frame::Headers {
                stream_id: 5,
                end_stream: false,
                end_headers: true,
                priority: Some(priority),
                fragment: b"\x82\x86",
                pad_len: Some(0),
            },
            Frame::Priority {
                stream_id: 7,
                priority,
            },
            Frame::RstStream {
                stream_id: 1,
                code: ErrorCode::Cancel,
            },
            Frame::Settings {
                ack: false,
                params: SettingsParams::from_bytes(&params).unwrap(),
            },
            Frame::Settings {
                ack: true,
                params: SettingsParams::from_bytes(&[]).unwrap(),
            },
            Frame::PushPromise {
                stream_id: 1,
                end_headers: true,
                promised_stream_id: 2,
                fragment: b"\x82",
                pad_len: Some(2),
            },
            Frame::Ping {
                ack: true,
                payload: *b"01234567",
            },
            Frame::GoAway {
                last_stream_id: 9,
                code: ErrorCode::Unknown(0x77),
                debug_data: b"bye",
            },
            Frame::WindowUpdate {
                stream_id: 0,
                increment: WINDOW_SIZE_MAX,
            },
            Frame::Continuation {
                stream_id: 3,
                end_headers: false,
                fragment: b"abc",
            },
            Frame::Unknown {
                kind: 0xfa,
                flags: 0xff,
                stream_id: 11,
                payload: b"x",
            },
        ];
        for frame in frames {
            round_trip(frame);
        }
    }

    #[test]
    fn partial_frames_need_more_bytes() {
        let bytes = raw(kind::PING, 0, 0, b"12345678");
        for end in 0..bytes.len() {
            assert_eq!(parse(&bytes[..end], FRAME_SIZE_DEFAULT), Ok(None), "{end}");
        }
    }

    #[test]
    fn reserved_bit_is_ignored() {
        let mut bytes = raw(kind::WINDOW_UPDATE, 0, 1, &[0x80, 0, 0, 5]);
        bytes[5] |= 0x80;
        let (frame, _) = parse(&bytes, FRAME_SIZE_DEFAULT).unwrap().unwrap();
        assert_eq!(
            frame,
            Frame::WindowUpdate {
                stream_id: 1,
                increment: 5
            }
        );
    }

    #[test]
    fn oversized_frame_is_rejected_from_its_header() {
        let header = &raw(kind::DATA, 0, 1, &[0; 16_385])[..FRAME_HEADER_BYTES];
        let error = connection_error(header);
        assert_eq!(error.code, ErrorCode::FrameSizeError);
    }

    #[test]
    fn padding_errors() {
        // Pad Length equal to the payload length.
        let error = connection_error(&raw(kind::DATA, flags::PADDED, 1, &[3, 0, 0]));
        assert_eq!(error.code, ErrorCode::ProtocolError);
        // PADDED with no payload at all.
        let error = connection_error(&raw(kind::HEADERS, flags::PADDED, 1, &[]));
        assert_eq!(error.code, ErrorCode::FrameSizeError);
        // Padding eats into the priority fields.
        let error = connection_error(&raw(
            kind::HEADERS,
            flags::PADDED | flags::PRIORITY,
            1,
            &[1, 0, 0, 0, 0, 0],
        ));
        assert_eq!(error.code, ErrorCode::FrameSizeError);
        // Exactly all padding is fine: empty data.
        let bytes = raw(kind::DATA, flags::PADDED, 1, &[2, 0, 0]);
        let (frame, _) = parse(&bytes, 16_384).unwrap().unwrap();
        assert_eq!(
            frame,
            Frame::Data {
                stream_id: 1,
                end_stream: false,
                data: b"",
                pad_len: Some(2)
            }
        );
    }

    #[test]
    fn fixed_size_and_stream_zero_rules() {
        let cases: &[(u8, u8, u32, &[u8], ErrorCode)] = &[
            (kind::DATA, 0, 0, b"x", ErrorCode::ProtocolError),
            (kind::HEADERS, 0, 0, b"", ErrorCode::ProtocolError),
            (kind::PRIORITY, 0, 0, &[0; 5], ErrorCode::ProtocolError),
            (kind::RST_STREAM, 0, 0, &[0; 4], ErrorCode::ProtocolError),
            (kind::RST_STREAM, 0, 1, &[0; 3], ErrorCode::FrameSizeError),
            (kind::SETTINGS, 0, 1, &[], ErrorCode::ProtocolError),
            (kind::SETTINGS, 0, 0, &[0; 5], ErrorCode::FrameSizeError),
            (
                kind::SETTINGS,
                flags::ACK,
                0,
                &[0; 6],
                ErrorCode::FrameSizeError,
            ),
            (kind::PUSH_PROMISE, 0, 0, &[0; 4], ErrorCode::ProtocolError),
            (kind::PING, 0, 1, &[0; 8], ErrorCode::ProtocolError),
            (kind::PING, 0, 0, &[0; 7], ErrorCode::FrameSizeError),
            (kind::GOAWAY, 0, 1, &[0; 8], ErrorCode::ProtocolError),
            (kind::GOAWAY, 0, 0, &[0; 7], ErrorCode::FrameSizeError),
            (
                kind::WINDOW_UPDATE,
                0,
                0,
                &[0; 5],
                ErrorCode::FrameSizeError,
            ),
            (kind::CONTINUATION, 0, 0, b"", ErrorCode::ProtocolError),
        ];
        for &(frame_kind, frame_flags, stream, payload, code) in cases {
            let error = connection_error(&raw(frame_kind, frame_flags, stream, payload));
            assert_eq!(error.code, code, "{} {error:?}", kind::name(frame_kind));
        }
    }

    #[test]
    fn priority_of_wrong_length_is_a_stream_error() {
        let bytes = raw(kind::PRIORITY, 0, 3, &[0; 4]);
        match parse(&bytes, FRAME_SIZE_DEFAULT) {
            Err(FrameError::Stream { error, consumed }) => {
                assert_eq!(error.stream_id, 3);
                assert_eq!(error.code, ErrorCode::FrameSizeError);
                assert_eq!(consumed, bytes.len());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn settings_params_iterate_in_order() {
        let mut bytes = Vec::new();
        encode_settings(&mut bytes, &[(1, 10), (4, 20), (1, 30)]);
        let (frame, _) = parse(&bytes, FRAME_SIZE_DEFAULT).unwrap().unwrap();
        let Frame::Settings { ack: false, params } = frame else {
            panic!("{frame:?}")
        };
        assert_eq!(
            params.iter().collect::<Vec<_>>(),
            [(1, 10), (4, 20), (1, 30)]
        );
        assert_eq!(params.len(), 3);
    }
}

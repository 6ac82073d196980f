//! The server side of one HTTP/2 connection (RFC 9113), as a state machine fed with bytes.
//!
//! ```text
//!   socket bytes --recv()--> [preface] -> frame::parse -> on_frame -> streams, windows
//!                                                            |
//!                            poll_event() <-- events <-------+  (returns flow-control credit)
//!   app: send_headers / send_data / send_trailers / reset_stream / shutdown
//!                            |
//!   socket <--take_output()-- out (control frames, HEADERS) + DATA framed from the
//!                             per-stream send queues as windows allow
//! ```
//!
//! Code map (one `impl Connection` block per file; the state lives on [`Connection`] here):
//!
//! - `mod.rs`: [`Connection`], its public API and [`Event`].
//! - `config`: [`ServerConfig`], its defaults and their compile-time checks.
//! - `input`: the preface, the frame loop, dispatch of each frame, the one mapping from an
//!   error to GOAWAY or RST_STREAM; DATA, PRIORITY and RST_STREAM.
//! - `headers`: header blocks (HEADERS, CONTINUATION): HPACK decoding, new streams,
//!   trailers, the 431 answer.
//! - `control`: SETTINGS, PING, and GOAWAY on a connection error.
//! - `flow`: send and receive windows, WINDOW_UPDATE in and out.
//! - `stream`: the stream table, the closed-stream memory, stream state transitions.
//! - `flood`: the flood counters described below.
//! - `output`: DATA framed from the send queues; the RST_STREAM, WINDOW_UPDATE and header
//!   block writers.
//! - `encoder`: our HPACK encoder and its literal-only fallback.
//!
//! **Architecture Invariant:** no IO, no clock, no threads. Everything the connection does
//! is a function of the bytes fed to `recv` and the calls the application makes, so every
//! behaviour is testable by feeding bytes.
//!
//! **Architecture Invariant:** every header block is HPACK-decoded in arrival order, also for
//! streams that are refused, reset or ignored (RFC 9113 4.3), and every header block we send
//! is HPACK-encoded in the order it is written to the output.
//!
//! **Architecture Invariant:** memory is bounded by configuration: one partial frame of input
//! (at most `max_frame_size` + 9 bytes), one header block (`2 * max_header_list_bytes`),
//! streams (`max_concurrent_streams`), events (bounded by the receive windows, whose credit
//! only returns when events are taken), replies queued for a peer that does not read
//! (`max_control_frames_per_window`), and the closed-stream memory
//! ([`RECENTLY_CLOSED_MAX`]). Response bodies are held as the application hands them in.
//!
//! Flood defenses (RFC 9113 10.5). Without a clock, they count in frames:
//!
//! - A *flood window* is `flood_window_frames` received frames. Within one window at most
//!   `max_resets_per_window` streams may be reset by the client before their response ended
//!   (rapid reset, CVE-2023-44487) and at most `max_empty_frames_per_window` frames may carry
//!   nothing (DATA without data or END_STREAM, HEADERS/CONTINUATION with an empty fragment
//!   and no END_HEADERS, empty unknown frames, unsolicited SETTINGS ACKs; CVE-2019-9518).
//! - Replies the peer forces us to queue (PING ACK, SETTINGS ACK, RST_STREAM, 431 answers)
//!   are counted from one `take_output` to the next: more than
//!   `max_control_frames_per_window` of them means the peer is flooding us faster than it
//!   reads (PING flood CVE-2019-9512, SETTINGS flood CVE-2019-9515, reset flood
//!   CVE-2019-9514). A peer that keeps reading its output never trips this, so long-lived
//!   connections that PING now and then are fine.
//! - A header block may span at most `max_continuation_frames` CONTINUATION frames and
//!   `2 * max_header_list_bytes` octets (CONTINUATION flood, CVE-2024-27316); the decoded list
//!   is capped at `max_header_list_bytes` by the HPACK decoder (HPACK bomb).
//!
//! Each of these ends the connection with GOAWAY(ENHANCE_YOUR_CALM) and a debug string
//! naming the limit.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

mod config;
mod control;
mod encoder;
mod flood;
mod flow;
mod headers;
mod input;
mod output;
mod stream;

use std::collections::{HashMap, VecDeque};

use allegro_hpack::{Decoder, Encoder};

use crate::error::{ConnectionError, ErrorCode};
use crate::frame::{self, Frame};
use crate::settings::{self, Settings, INITIAL_WINDOW_SIZE_DEFAULT};

pub use config::ServerConfig;
use encoder::HeaderEncoder;
use flood::Flood;
use headers::HeaderBlock;
use output::{rst_stream, window_update, write_header_block};
use stream::{Closed, Stream};

/// The client connection preface (RFC 9113 3.4), followed by a SETTINGS frame.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How many closed streams are remembered, to tell a late frame on a closed stream (ignored,
/// or STREAM_CLOSED) from a frame on a stream that was never opened (PROTOCOL_ERROR).
pub const RECENTLY_CLOSED_MAX: usize = 256;

/// What the connection has for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete request header block. Pseudo-headers are validated (RFC 9113 8.3.1):
    /// `:method`, `:scheme` and `:path` present (CONNECT: `:authority` only), no `:status`,
    /// no unknown pseudo-headers, no pseudo-header after a regular one, lowercase names, no
    /// connection-specific headers, `te` only "trailers".
    Headers {
        stream_id: u32,
        method: String,
        /// Empty for CONNECT.
        path: String,
        authority: Option<String>,
        /// Regular headers in order, lowercase names; several `cookie` fields are joined
        /// with "; " (RFC 9113 8.2.3).
        headers: Vec<(String, Vec<u8>)>,
        /// The request has no body.
        end_stream: bool,
    },
    /// Request body bytes. Flow-control credit for them is returned to the peer when the
    /// event is taken by [`Connection::poll_event`], since the application buffers bodies
    /// itself. The last one may be empty with `end_stream`.
    Data {
        stream_id: u32,
        data: Vec<u8>,
        end_stream: bool,
    },
    /// Trailers on a request; they end the request.
    Trailers {
        stream_id: u32,
        headers: Vec<(String, Vec<u8>)>,
    },
    /// The peer reset the stream, or we did because of a stream error or a connection
    /// error: drop any work for it. Only sent for streams announced with `Headers`.
    StreamReset { stream_id: u32, code: ErrorCode },
}

/// One HTTP/2 server connection. See the module docs.
pub struct Connection {
    config: ServerConfig,
    phase: Phase,
    /// Set by the first connection error; the GOAWAY for it is queued.
    failed: Option<ConnectionError>,
    /// Bytes of a partial frame.
    inbuf: Vec<u8>,
    /// Frames queued for the socket, in order. DATA is framed at `take_output` time.
    out: Vec<u8>,
    events: VecDeque<PendingEvent>,
    decoder: Decoder,
    encoder: HeaderEncoder,
    /// The client's settings: what we honour when sending.
    peer: Settings,
    /// The client acknowledged our SETTINGS.
    settings_acked: bool,
    /// Streams in the open and half-closed states (RFC 9113 5.1), i.e. those counting toward
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    streams: HashMap<u32, Stream>,
    /// Streams with response output to frame, round robin. May hold ids of streams that
    /// are gone; `Stream::queued` says whether an id is in here.
    send_queue: VecDeque<u32>,
    recently_closed: VecDeque<(u32, Closed)>,
    /// The highest stream id the client opened; lower odd ids are closed (RFC 9113 5.1.1).
    max_stream_id: u32,
    /// The highest stream id passed to the application: the GOAWAY last stream id.
    last_processed_id: u32,
    /// A header block awaiting CONTINUATION frames.
    header_block: Option<HeaderBlock>,
    /// How many octets the peer may still send on the connection.
    conn_recv_window: i64,
    /// Octets consumed and not yet returned with WINDOW_UPDATE.
    conn_recv_unacked: u32,
    /// How many octets we may still send on the connection.
    conn_send_window: i64,
    goaway_sent: bool,
    goaway_received: bool,
    flood: Flood,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Matching the client preface; `matched` octets so far.
    Preface {
        matched: usize,
    },
    /// The preface matched; the next frame must be SETTINGS.
    FirstSettings,
    Open,
}

struct PendingEvent {
    event: Event,
    /// Flow-control octets to return when the event is taken.
    credit: u32,
}

impl Connection {
    /// A connection that has queued its preface: our SETTINGS (RFC 9113 3.4: "MUST be the
    /// first frame the server sends") and, when `connection_window_size` exceeds 65,535, a
    /// connection WINDOW_UPDATE raising our receive window to it.
    pub fn new(config: ServerConfig) -> Connection {
        config.check();
        let mut out = Vec::with_capacity(64);
        frame::encode_settings(
            &mut out,
            &[
                (settings::HEADER_TABLE_SIZE, config.header_table_size),
                (settings::ENABLE_PUSH, 0),
                (
                    settings::MAX_CONCURRENT_STREAMS,
                    config.max_concurrent_streams,
                ),
                (settings::INITIAL_WINDOW_SIZE, config.initial_window_size),
                (settings::MAX_FRAME_SIZE, config.max_frame_size),
                (settings::MAX_HEADER_LIST_SIZE, config.max_header_list_bytes),
            ],
        );
        let raise = config.connection_window_size - INITIAL_WINDOW_SIZE_DEFAULT;
        if raise > 0 {
            window_update(&mut out, 0, raise);
        }
        Connection {
            decoder: Decoder::new(config.header_table_size as usize),
            encoder: HeaderEncoder::Hpack(Encoder::new()),
            conn_recv_window: i64::from(config.connection_window_size),
            config,
            phase: Phase::Preface { matched: 0 },
            failed: None,
            inbuf: Vec::new(),
            out,
            events: VecDeque::new(),
            peer: Settings::default(),
            settings_acked: false,
            streams: HashMap::new(),
            send_queue: VecDeque::new(),
            recently_closed: VecDeque::new(),
            max_stream_id: 0,
            last_processed_id: 0,
            header_block: None,
            conn_recv_unacked: 0,
            conn_send_window: i64::from(INITIAL_WINDOW_SIZE_DEFAULT),
            goaway_sent: false,
            goaway_received: false,
            flood: Flood::default(),
        }
    }

    /// Feeds bytes read from the socket: checks the client preface first, then processes
    /// every complete frame and buffers a partial one.
    ///
    /// Returns `Err` only for a connection error, after queueing GOAWAY with its code, the
    /// last processed stream id and a debug string saying what was wrong; the caller then
    /// writes the remaining output and closes. Later calls return the same error.
    pub fn recv(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        match self.recv_inner(bytes) {
            Ok(()) => Ok(()),
            Err(error) => {
                self.fail(error.clone());
                Err(error)
            }
        }
    }

    /// The next event for the application. Taking a `Data` event returns its flow-control
    /// credit to the peer (WINDOW_UPDATE once half a window is consumed).
    pub fn poll_event(&mut self) -> Option<Event> {
        let PendingEvent { event, credit } = self.events.pop_front()?;
        if let Event::Data { stream_id, .. } = &event {
            self.release_credit(*stream_id, credit);
        }
        Some(event)
    }

    /// Sends the response header block: `:status` then `headers` (lowercase names), HPACK
    /// encoded, split into CONTINUATION frames if larger than the peer's frame size. A 1xx
    /// status may be followed by another `send_headers`. Ignored if the stream is gone (reset
    /// by the peer, or closed).
    pub fn send_headers(
        &mut self,
        stream_id: u32,
        status: u16,
        headers: &[(&str, &[u8])],
        end_stream: bool,
    ) {
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return;
        };
        debug_assert!((100..=999).contains(&status), "status {status}");
        debug_assert!(
            !stream.response_started && !stream.response_ended,
            "send_headers after the final response headers on stream {stream_id}"
        );
        if stream.response_started || stream.response_ended {
            return;
        }
        let informational = (100..200).contains(&status);
        debug_assert!(!(informational && end_stream), "1xx with END_STREAM");
        stream.response_started = !informational;
        stream.response_ended = end_stream;
        let status = status.to_string();
        let mut fields: Vec<(&[u8], &[u8])> = Vec::with_capacity(headers.len() + 1);
        fields.push((b":status", status.as_bytes()));
        for (name, value) in headers {
            debug_assert!(
                !name.bytes().any(|b| b.is_ascii_uppercase()),
                "header name {name:?} is not lowercase"
            );
            fields.push((name.as_bytes(), value));
        }
        let mut block = Vec::new();
        self.encoder.encode(&fields, &mut block);
        write_header_block(
            &mut self.out,
            stream_id,
            &block,
            end_stream,
            self.peer.max_frame_size,
        );
        if end_stream {
            self.on_local_end(stream_id);
        }
    }

    /// Queues response body bytes. They are framed by `take_output` as far as the stream and
    /// connection send windows and the peer's frame size allow; the rest waits for
    /// WINDOW_UPDATE. `end_stream` ends the response after these bytes. Ignored if the
    /// stream is gone.
    pub fn send_data(&mut self, stream_id: u32, data: &[u8], end_stream: bool) {
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return;
        };
        debug_assert!(
            stream.response_started && !stream.response_ended,
            "send_data on stream {stream_id} before send_headers or after the end"
        );
        if !stream.response_started || stream.response_ended {
            return;
        }
        if stream.send_pos > 0 && stream.send_pos >= stream.send_buf.len() / 2 {
            stream.send_buf.drain(..stream.send_pos);
            stream.send_pos = 0;
        }
        stream.send_buf.extend_from_slice(data);
        stream.response_ended = end_stream;
        self.enqueue(stream_id);
    }

    /// Queues trailers (HEADERS with END_STREAM), sent after all queued data of the stream.
    /// Ignored if the stream is gone.
    pub fn send_trailers(&mut self, stream_id: u32, headers: &[(&str, &[u8])]) {
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return;
        };
        debug_assert!(
            stream.response_started && !stream.response_ended,
            "send_trailers on stream {stream_id} before send_headers or after the end"
        );
        if !stream.response_started || stream.response_ended {
            return;
        }
        stream.trailers = Some(
            headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_vec()))
                .collect(),
        );
        stream.response_ended = true;
        self.enqueue(stream_id);
    }

    /// Resets a stream with RST_STREAM(`code`), dropping its queued output. With NO_ERROR on
    /// a response that is complete but still queued, the reset follows the END_STREAM
    /// instead: the RFC 9113 8.1 way to stop a request upload after answering it. Ignored if
    /// the stream is gone.
    pub fn reset_stream(&mut self, stream_id: u32, code: ErrorCode) {
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return;
        };
        if code == ErrorCode::NoError && stream.response_ended && !stream.local_closed {
            stream.reset_after_end = true;
            return;
        }
        self.streams.remove(&stream_id);
        rst_stream(&mut self.out, stream_id, code);
        self.remember_closed(stream_id, Closed::ResetByUs);
    }

    /// Graceful shutdown: queues GOAWAY(NO_ERROR) with the highest processed stream id.
    /// Streams opened after it are refused with RST_STREAM(REFUSED_STREAM); open ones
    /// finish. `wants_close` turns true once
    /// none is left.
    pub fn shutdown(&mut self) {
        if self.goaway_sent {
            return;
        }
        self.goaway_sent = true;
        Frame::GoAway {
            last_stream_id: self.last_processed_id,
            code: ErrorCode::NoError,
            debug_data: b"server shutting down",
        }
        .encode(&mut self.out);
    }

    /// Appends bytes to write to the socket: queued frames, then DATA framed from the
    /// response queues (up to about `max_output_buffer_bytes` per call). Call it again after
    /// writing until it appends nothing. When `dst` is empty the internal buffer is swapped
    /// in, not copied.
    pub fn take_output(&mut self, dst: &mut Vec<u8>) {
        if dst.is_empty() {
            std::mem::swap(dst, &mut self.out);
        } else {
            dst.append(&mut self.out);
        }
        debug_assert!(self.out.is_empty());
        self.flood.replies_since_drain = 0;
        if self.failed.is_none() {
            self.flush_streams(dst);
        }
    }

    /// True after a connection error, and after a GOAWAY (sent or received) once no stream
    /// is left: write the remaining output, then close.
    pub fn wants_close(&self) -> bool {
        self.failed.is_some()
            || ((self.goaway_sent || self.goaway_received) && self.streams.is_empty())
    }

    /// No stream is open or half-closed.
    pub fn is_idle(&self) -> bool {
        self.streams.is_empty()
    }

    /// Streams in the open or half-closed states.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// Octets queued for the socket and not yet taken (control frames and response HEADERS;
    /// DATA is framed when taken). The shell stops reading while this is high.
    pub fn output_pending_bytes(&self) -> usize {
        self.out.len()
    }

    /// `take_output` would append something now.
    pub fn wants_write(&self) -> bool {
        !self.out.is_empty()
            || (self.failed.is_none()
                && self.send_queue.iter().any(|id| {
                    self.streams.get(id).is_some_and(|s| {
                        if s.unsent_bytes() > 0 {
                            s.send_window > 0 && self.conn_send_window > 0
                        } else {
                            s.trailers.is_some() || (s.response_ended && !s.local_closed)
                        }
                    })
                }))
    }

    /// Response body octets queued on a stream and not yet framed.
    pub fn queued_send_bytes(&self, stream_id: u32) -> usize {
        self.streams.get(&stream_id).map_or(0, Stream::unsent_bytes)
    }

    /// The connection error that ended the connection, if any.
    pub fn error(&self) -> Option<&ConnectionError> {
        self.failed.as_ref()
    }
}

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

use std::collections::{HashMap, VecDeque};

use allegro_hpack::{Decoder, Encoder, Header, HpackError};

use crate::error::{ConnectionError, ErrorCode, H2Error, StreamError};
use crate::frame::{
    self, kind, Frame, FrameError, Priority, SettingsParams, FRAME_SIZE_DEFAULT, FRAME_SIZE_MAX,
    WINDOW_SIZE_MAX,
};
use crate::request::{self, printable};
use crate::settings::{self, Settings, HEADER_TABLE_SIZE_DEFAULT, INITIAL_WINDOW_SIZE_DEFAULT};

/// The client connection preface (RFC 9113 3.4), followed by a SETTINGS frame.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How many closed streams are remembered, to tell a late frame on a closed stream (ignored,
/// or STREAM_CLOSED) from a frame on a stream that was never opened (PROTOCOL_ERROR).
pub const RECENTLY_CLOSED_MAX: usize = 256;

/// Longest GOAWAY debug string we send.
const GOAWAY_DEBUG_BYTES_MAX: usize = 256;

/// Limits and advertised settings of a server connection. The defaults suit a gRPC ingest
/// server; see each field for what it bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we advertise and enforce: a HEADERS beyond it is
    /// refused with RST_STREAM(REFUSED_STREAM) (RFC 9113 5.1.2).
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE we advertise: the receive window of each stream.
    pub initial_window_size: u32,
    /// Our connection receive window, raised from 65,535 by a WINDOW_UPDATE sent right after
    /// our SETTINGS.
    pub connection_window_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE we advertise; larger frames are a FRAME_SIZE_ERROR. Must be
    /// within 16,384..=16,777,215.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce (decoded name + value + 32 per
    /// field). A request over it is answered with a 431 response; trailers over it reset the
    /// stream with ENHANCE_YOUR_CALM. The encoded block may be at most twice this.
    pub max_header_list_bytes: u32,
    /// SETTINGS_HEADER_TABLE_SIZE we advertise: the HPACK decoder's dynamic table bound.
    pub header_table_size: u32,
    /// Request body bytes delivered per stream. The DATA frame that crosses the limit is
    /// still delivered (so the application sees the overflow and can answer, e.g. gRPC
    /// RESOURCE_EXHAUSTED); any DATA after it resets the stream with ENHANCE_YOUR_CALM.
    pub max_request_body_bytes: usize,
    /// Streams the client may reset before their response ended, per flood window.
    pub max_resets_per_window: u32,
    /// Replies (PING/SETTINGS ACK, RST_STREAM, 431) queued between two `take_output` calls.
    pub max_control_frames_per_window: u32,
    /// Frames without content (see the module docs), per flood window.
    pub max_empty_frames_per_window: u32,
    /// CONTINUATION frames in one header block.
    pub max_continuation_frames: u32,
    /// Received frames per flood window.
    pub flood_window_frames: u32,
    /// DATA octets `take_output` frames per call (it may go over by one frame).
    pub max_output_buffer_bytes: usize,
}

impl ServerConfig {
    /// The defaults: 100 streams, 1 MiB stream / 4 MiB connection windows, 16 KiB frames,
    /// 16 KiB header lists, 16 MiB request bodies.
    pub const DEFAULT: ServerConfig = ServerConfig {
        max_concurrent_streams: 100,
        initial_window_size: 1 << 20,
        connection_window_size: 4 << 20,
        max_frame_size: FRAME_SIZE_DEFAULT,
        max_header_list_bytes: 16 << 10,
        header_table_size: HEADER_TABLE_SIZE_DEFAULT,
        max_request_body_bytes: 16 << 20,
        max_resets_per_window: 100,
        max_control_frames_per_window: 1_000,
        max_empty_frames_per_window: 100,
        max_continuation_frames: 32,
        flood_window_frames: 1_000,
        max_output_buffer_bytes: 1 << 20,
    };

    /// Panics on a configuration that breaks RFC 9113 ranges: a bug, not input.
    fn check(&self) {
        assert!(
            (FRAME_SIZE_DEFAULT..=FRAME_SIZE_MAX).contains(&self.max_frame_size),
            "max_frame_size {} outside 16384..=16777215",
            self.max_frame_size
        );
        assert!(self.initial_window_size <= WINDOW_SIZE_MAX);
        assert!(
            (INITIAL_WINDOW_SIZE_DEFAULT..=WINDOW_SIZE_MAX).contains(&self.connection_window_size),
            "connection_window_size {} outside 65535..=2^31-1",
            self.connection_window_size
        );
        assert!(self.max_header_list_bytes > 0);
        assert!(self.flood_window_frames > 0);
        assert!(self.max_output_buffer_bytes > 0);
    }
}

const _: () = {
    let c = ServerConfig::DEFAULT;
    assert!(c.max_frame_size >= FRAME_SIZE_DEFAULT && c.max_frame_size <= FRAME_SIZE_MAX);
    assert!(c.initial_window_size <= WINDOW_SIZE_MAX);
    assert!(c.connection_window_size >= INITIAL_WINDOW_SIZE_DEFAULT);
    assert!(c.connection_window_size <= WINDOW_SIZE_MAX);
    // A whole stream window fits in the connection window, so one stream can use its window.
    assert!(c.initial_window_size <= c.connection_window_size);
    // The header block cap (2x the list) holds at least one full-size HEADERS frame.
    assert!(2 * c.max_header_list_bytes >= FRAME_SIZE_DEFAULT);
    assert!(c.flood_window_frames > c.max_resets_per_window);
    assert!(c.flood_window_frames > c.max_empty_frames_per_window);
};

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig::DEFAULT
    }
}

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

/// How a stream left the stream map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    /// We sent RST_STREAM (or refused or ignored the stream): late frames are discarded
    /// (RFC 9113 5.1, closed: "An endpoint MUST minimally process and then discard any frames
    /// it receives in this state").
    ResetByUs,
    /// The client sent RST_STREAM.
    ResetByPeer,
    /// Both sides sent END_STREAM.
    Finished,
}

struct HeaderBlock {
    meta: BlockMeta,
    fragments: Vec<u8>,
    continuations: u32,
}

#[derive(Clone, Copy)]
struct BlockMeta {
    stream_id: u32,
    end_stream: bool,
    priority: Option<Priority>,
}

/// An open or half-closed stream.
struct Stream {
    /// The client sent END_STREAM: half-closed (remote).
    remote_closed: bool,
    /// A final (non-1xx) response HEADERS was sent.
    response_started: bool,
    /// The application ended the response; END_STREAM is queued or sent.
    response_ended: bool,
    /// END_STREAM is in the output: half-closed (local).
    local_closed: bool,
    /// `reset_stream(NO_ERROR)` came while the response was queued: send RST_STREAM(NO_ERROR)
    /// right after END_STREAM (RFC 9113 8.1).
    reset_after_end: bool,
    /// What the client may still send on this stream.
    recv_window: i64,
    recv_unacked: u32,
    /// What we may still send on this stream; negative after a SETTINGS decrease.
    send_window: i64,
    content_length: Option<u64>,
    body_bytes: u64,
    /// Response body not yet framed: `send_buf[send_pos..]`.
    send_buf: Vec<u8>,
    send_pos: usize,
    /// Trailers to send once the body is out.
    trailers: Option<Vec<(String, Vec<u8>)>>,
    /// The id is in `send_queue`.
    queued: bool,
}

impl Stream {
    fn unsent_bytes(&self) -> usize {
        debug_assert!(self.send_pos <= self.send_buf.len());
        self.send_buf.len() - self.send_pos
    }

    /// Output that `send_one` can frame now or once windows open.
    fn has_output(&self) -> bool {
        self.unsent_bytes() > 0
            || self.trailers.is_some()
            || (self.response_ended && !self.local_closed)
    }
}

#[derive(Default)]
struct Flood {
    frames_in_window: u32,
    resets_in_window: u32,
    empty_in_window: u32,
    replies_since_drain: u32,
}

enum SendOutcome {
    /// A frame was written and the stream has more to send.
    More,
    /// A frame was written and the stream has nothing more for now.
    Done,
    /// Nothing to send.
    Idle,
    BlockedOnStream,
    BlockedOnConnection,
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

    // ---------------------------------------------------------------- input

    fn recv_inner(&mut self, mut bytes: &[u8]) -> Result<(), ConnectionError> {
        if let Phase::Preface { matched } = self.phase {
            // RFC 9113 3.4: "Clients and servers MUST treat an invalid connection preface as
            // a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
            let expected = PREFACE.get(matched..).unwrap_or_default();
            let n = expected.len().min(bytes.len());
            let (head, rest) = bytes.split_at(n);
            if expected.get(..n) != Some(head) {
                return Err(ConnectionError::protocol(format!(
                    "invalid connection preface: got \"{}\"",
                    printable(head)
                )));
            }
            bytes = rest;
            if matched + n < PREFACE.len() {
                self.phase = Phase::Preface {
                    matched: matched + n,
                };
                return Ok(());
            }
            self.phase = Phase::FirstSettings;
        }
        let mut input = std::mem::take(&mut self.inbuf);
        let result = if input.is_empty() {
            self.process(bytes)
                .map(|used| input.extend_from_slice(bytes.get(used..).unwrap_or_default()))
        } else {
            input.extend_from_slice(bytes);
            self.process(&input).map(|used| {
                debug_assert!(used <= input.len());
                input.drain(..used.min(input.len()));
            })
        };
        // A partial frame never exceeds the largest frame we accept.
        debug_assert!(
            result.is_err()
                || input.len() < frame::FRAME_HEADER_BYTES + self.config.max_frame_size as usize
        );
        self.inbuf = input;
        result
    }

    /// Processes complete frames from `buf`; returns the octets consumed.
    fn process(&mut self, buf: &[u8]) -> Result<usize, ConnectionError> {
        let mut pos = 0;
        loop {
            let rest = buf.get(pos..).unwrap_or_default();
            match frame::parse(rest, self.config.max_frame_size) {
                Ok(None) => return Ok(pos),
                Ok(Some((frame, consumed))) => {
                    pos += consumed;
                    self.on_frame(frame)?;
                }
                Err(FrameError::Connection(error)) => return Err(error),
                Err(FrameError::Stream { error, consumed }) => {
                    pos += consumed;
                    self.on_malformed_frame(error)?;
                }
            }
        }
    }

    fn on_frame(&mut self, frame: Frame<'_>) -> Result<(), ConnectionError> {
        self.count_frame();
        if self.phase == Phase::FirstSettings {
            // RFC 9113 3.4: the preface "MUST be followed by a SETTINGS frame".
            if !matches!(frame, Frame::Settings { ack: false, .. }) {
                return Err(ConnectionError::protocol(format!(
                    "the connection preface must be followed by SETTINGS, got {}",
                    kind::name(frame.kind())
                )));
            }
            self.phase = Phase::Open;
        }
        if let Some(block) = &self.header_block {
            // RFC 9113 6.2: "A HEADERS frame without the END_HEADERS flag set MUST be
            // followed by a CONTINUATION frame for the same stream. A receiver MUST treat the
            // receipt of any other type of frame or a frame on a different stream as a
            // connection error (Section 5.4.1) of type PROTOCOL_ERROR." (Also 5.5 for
            // extension frames.)
            if !matches!(frame, Frame::Continuation { .. }) {
                return Err(ConnectionError::protocol(format!(
                    "{} frame on stream {} inside the header block of stream {}",
                    kind::name(frame.kind()),
                    frame.stream_id(),
                    block.meta.stream_id
                )));
            }
        }
        let result = match frame {
            Frame::Data {
                stream_id,
                end_stream,
                data,
                pad_len,
            } => self.on_data(stream_id, end_stream, data, pad_len),
            Frame::Headers {
                stream_id,
                end_stream,
                end_headers,
                priority,
                fragment,
                pad_len: _,
            } => self.on_headers(
                BlockMeta {
                    stream_id,
                    end_stream,
                    priority,
                },
                end_headers,
                fragment,
            ),
            Frame::Priority {
                stream_id,
                priority,
            } => self.on_priority(stream_id, priority),
            Frame::RstStream { stream_id, code } => self.on_rst_stream(stream_id, code),
            Frame::Settings { ack, params } => self.on_settings(ack, params),
            // RFC 9113 8.4: "A client cannot push. Thus, servers MUST treat the receipt of a
            // PUSH_PROMISE frame as a connection error (Section 5.4.1) of type
            // PROTOCOL_ERROR."
            Frame::PushPromise { stream_id, .. } => Err(ConnectionError::protocol(format!(
                "PUSH_PROMISE on stream {stream_id}: clients cannot push"
            ))
            .into()),
            Frame::Ping { ack, payload } => self.on_ping(ack, payload),
            Frame::GoAway { .. } => {
                // RFC 9113 6.8: "Receivers of a GOAWAY frame MUST NOT open additional
                // streams". The client's last stream id concerns server-initiated streams,
                // of which we have none; open streams finish.
                self.goaway_received = true;
                Ok(())
            }
            Frame::WindowUpdate {
                stream_id,
                increment,
            } => self.on_window_update(stream_id, increment),
            Frame::Continuation {
                stream_id,
                end_headers,
                fragment,
            } => self.on_continuation(stream_id, end_headers, fragment),
            // RFC 9113 5.5: "Implementations MUST discard frames that have unknown or
            // unsupported types."
            Frame::Unknown { payload, .. } => {
                if payload.is_empty() {
                    self.count_empty("empty frame of unknown type")
                        .map_err(H2Error::from)
                } else {
                    Ok(())
                }
            }
        };
        self.handle_error(result)
    }

    /// The one mapping from an error to the frame that answers it: a connection error
    /// propagates (the caller queues GOAWAY); a stream error queues RST_STREAM.
    fn handle_error(&mut self, result: Result<(), H2Error>) -> Result<(), ConnectionError> {
        match result {
            Ok(()) => Ok(()),
            Err(H2Error::Connection(error)) => Err(error),
            Err(H2Error::Stream(error)) => {
                self.reset_for_error(error);
                self.count_reply()
            }
        }
    }

    /// A frame the parser rejected with a stream error (a PRIORITY of the wrong length).
    fn on_malformed_frame(&mut self, error: StreamError) -> Result<(), ConnectionError> {
        self.count_frame();
        if let Some(block) = &self.header_block {
            return Err(ConnectionError::protocol(format!(
                "malformed frame on stream {} inside the header block of stream {}",
                error.stream_id, block.meta.stream_id
            )));
        }
        if self.phase == Phase::FirstSettings {
            return Err(ConnectionError::protocol(
                "the connection preface must be followed by SETTINGS",
            ));
        }
        // RFC 9113 6.4: "RST_STREAM frames MUST NOT be sent for a stream in the "idle"
        // state", so a stream error on an idle stream ends the connection instead (5.4.1:
        // "an endpoint MAY choose to treat a stream error as a connection error").
        if self.is_idle_stream(error.stream_id) {
            return Err(ConnectionError::new(
                error.code,
                format!("{} (on idle stream {})", error.reason, error.stream_id),
            ));
        }
        self.handle_error(Err(error.into()))
    }

    /// A client stream id that was never opened: even (server-initiated, never used by
    /// us) or above the highest opened (RFC 9113 5.1.1).
    fn is_idle_stream(&self, stream_id: u32) -> bool {
        stream_id % 2 == 0 || stream_id > self.max_stream_id
    }

    fn on_data(
        &mut self,
        stream_id: u32,
        end_stream: bool,
        data: &[u8],
        pad_len: Option<u8>,
    ) -> Result<(), H2Error> {
        // RFC 9113 6.9.1: "The entire DATA frame payload is included in flow control,
        // including the Pad Length and Padding fields if present."
        let flow_len = data.len() + pad_len.map_or(0, |pad| usize::from(pad) + 1);
        debug_assert!(flow_len <= FRAME_SIZE_MAX as usize);
        let flow = flow_len as u32;
        // RFC 9113 5.1, idle: "Receiving any frame other than HEADERS or PRIORITY on a stream
        // in this state MUST be treated as a connection error (Section 5.4.1) of type
        // PROTOCOL_ERROR."
        if self.is_idle_stream(stream_id) {
            return Err(
                ConnectionError::protocol(format!("DATA on idle stream {stream_id}")).into(),
            );
        }
        // RFC 9113 6.9: "A receiver that receives a flow-controlled frame MUST always account
        // for its contribution against the connection flow-control window".
        if i64::from(flow) > self.conn_recv_window {
            return Err(ConnectionError::flow_control(format!(
                "DATA frame of {flow} bytes exceeds the connection window of {}",
                self.conn_recv_window
            ))
            .into());
        }
        self.conn_recv_window -= i64::from(flow);
        if data.is_empty() && !end_stream {
            self.count_empty("DATA frame without data or END_STREAM")?;
        }
        let body_max = self.config.max_request_body_bytes as u64;
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            self.release_conn_credit(flow);
            return match self.closed_state(stream_id) {
                // RFC 9113 5.1, closed: frames after our RST_STREAM are discarded.
                Some(Closed::ResetByUs) => Ok(()),
                // RFC 9113 6.1: "If a DATA frame is received whose stream is not in the
                // "open" or "half-closed (local)" state, the recipient MUST respond with a
                // stream error (Section 5.4.2) of type STREAM_CLOSED."
                _ => Err(StreamError::new(
                    stream_id,
                    ErrorCode::StreamClosed,
                    format!("DATA on closed stream {stream_id}"),
                )
                .into()),
            };
        };
        if stream.remote_closed {
            // RFC 9113 5.1, half-closed (remote): "If an endpoint receives additional frames,
            // other than WINDOW_UPDATE, PRIORITY, or RST_STREAM, for a stream that is in this
            // state, it MUST respond with a stream error (Section 5.4.2) of type
            // STREAM_CLOSED."
            self.release_conn_credit(flow);
            return Err(StreamError::new(
                stream_id,
                ErrorCode::StreamClosed,
                format!("DATA on stream {stream_id} after END_STREAM"),
            )
            .into());
        }
        if i64::from(flow) > stream.recv_window {
            return Err(ConnectionError::flow_control(format!(
                "DATA frame of {flow} bytes exceeds the stream window of {} on stream {stream_id}",
                stream.recv_window
            ))
            .into());
        }
        stream.recv_window -= i64::from(flow);
        if stream.body_bytes > body_max {
            self.release_conn_credit(flow);
            return Err(StreamError::new(
                stream_id,
                ErrorCode::EnhanceYourCalm,
                format!("request body on stream {stream_id} exceeds {body_max} bytes"),
            )
            .into());
        }
        stream.body_bytes += data.len() as u64;
        let body_bytes = stream.body_bytes;
        // RFC 9113 8.1.1: "A request or response is also malformed if the value of a
        // content-length header field does not equal the sum of the DATA frame payload
        // lengths that form the content".
        if let Some(length) = stream.content_length {
            if body_bytes > length || (end_stream && body_bytes != length) {
                self.release_conn_credit(flow);
                return Err(StreamError::new(
                    stream_id,
                    ErrorCode::ProtocolError,
                    format!(
                        "content-length of {length} but {body_bytes} body bytes on stream \
                         {stream_id}"
                    ),
                )
                .into());
            }
        }
        stream.remote_closed = end_stream;
        if data.is_empty() && !end_stream {
            // Padding only: nothing to deliver, the credit goes back now.
            self.release_credit(stream_id, flow);
        } else {
            self.events.push_back(PendingEvent {
                event: Event::Data {
                    stream_id,
                    data: data.to_vec(),
                    end_stream,
                },
                credit: flow,
            });
        }
        if end_stream {
            self.remove_if_closed(stream_id);
        }
        Ok(())
    }

    fn on_headers(
        &mut self,
        meta: BlockMeta,
        end_headers: bool,
        fragment: &[u8],
    ) -> Result<(), H2Error> {
        // RFC 9113 5.1.1: "Streams initiated by a client MUST use odd-numbered stream
        // identifiers"; an even one names a server stream in the idle state (5.1).
        if meta.stream_id % 2 == 0 {
            return Err(ConnectionError::protocol(format!(
                "HEADERS on even-numbered stream {}; client streams are odd",
                meta.stream_id
            ))
            .into());
        }
        if end_headers {
            return self.on_header_block(meta, fragment);
        }
        if fragment.is_empty() {
            self.count_empty("HEADERS frame with an empty fragment and no END_HEADERS")?;
        }
        self.check_block_size(meta.stream_id, fragment.len())?;
        self.header_block = Some(HeaderBlock {
            meta,
            fragments: fragment.to_vec(),
            continuations: 0,
        });
        Ok(())
    }

    fn on_continuation(
        &mut self,
        stream_id: u32,
        end_headers: bool,
        fragment: &[u8],
    ) -> Result<(), H2Error> {
        // RFC 9113 6.10: "A CONTINUATION frame MUST be preceded by a HEADERS, PUSH_PROMISE or
        // CONTINUATION frame without the END_HEADERS flag set. A recipient that observes
        // violation of this rule MUST respond with a connection error (Section 5.4.1) of
        // type PROTOCOL_ERROR."
        // Every error below ends the connection, so the block need not be put back on them.
        let Some(mut block) = self.header_block.take() else {
            return Err(ConnectionError::protocol(format!(
                "CONTINUATION on stream {stream_id} without a preceding HEADERS"
            ))
            .into());
        };
        if block.meta.stream_id != stream_id {
            return Err(ConnectionError::protocol(format!(
                "CONTINUATION on stream {stream_id} inside the header block of stream {}",
                block.meta.stream_id
            ))
            .into());
        }
        // CVE-2024-27316: bound the frames and the octets of one header block.
        block.continuations += 1;
        if block.continuations > self.config.max_continuation_frames {
            return Err(ConnectionError::calm(format!(
                "header block on stream {stream_id} spans more than {} CONTINUATION frames",
                self.config.max_continuation_frames
            ))
            .into());
        }
        self.check_block_size(stream_id, block.fragments.len() + fragment.len())?;
        if fragment.is_empty() && !end_headers {
            self.count_empty("CONTINUATION frame with an empty fragment and no END_HEADERS")?;
        }
        block.fragments.extend_from_slice(fragment);
        if end_headers {
            self.on_header_block(block.meta, &block.fragments)
        } else {
            self.header_block = Some(block);
            Ok(())
        }
    }

    /// A header block may be twice `max_header_list_bytes` encoded (and no less than a
    /// default-size frame): we must hold all of it to decode it.
    fn check_block_size(&self, stream_id: u32, size: usize) -> Result<(), ConnectionError> {
        let max = (2 * self.config.max_header_list_bytes as usize).max(FRAME_SIZE_DEFAULT as usize);
        if size > max {
            return Err(ConnectionError::calm(format!(
                "header block of {size} bytes on stream {stream_id} exceeds the limit of {max}"
            )));
        }
        Ok(())
    }

    /// A complete header block: decode it (always, RFC 9113 4.3), then route it.
    fn on_header_block(&mut self, meta: BlockMeta, block: &[u8]) -> Result<(), H2Error> {
        let mut fields = Vec::new();
        let max_list = self.config.max_header_list_bytes as usize;
        let too_large = match self.decoder.decode(block, max_list, &mut fields) {
            Ok(()) => false,
            Err(HpackError::HeaderListTooLarge { .. }) => true,
            // RFC 9113 4.3: "A decoding error in a field block MUST be treated as a
            // connection error (Section 5.4.1) of type COMPRESSION_ERROR."
            Err(error) => {
                return Err(ConnectionError::new(
                    ErrorCode::CompressionError,
                    format!(
                        "HPACK decoding of the header block on stream {} failed: {error}",
                        meta.stream_id
                    ),
                )
                .into())
            }
        };
        let id = meta.stream_id;
        if id > self.max_stream_id {
            self.max_stream_id = id;
            return self.open_stream(meta, fields, too_large);
        }
        if self.streams.contains_key(&id) {
            return self.on_trailers(meta, fields, too_large);
        }
        match self.closed_state(id) {
            // RFC 9113 5.1, closed: minimally process (decode) and discard.
            Some(Closed::ResetByUs) => Ok(()),
            // RFC 9113 5.1, closed: "An endpoint MAY treat receipt of any other type of frame
            // on a closed stream as a connection error (Section 5.4.1) of type
            // STREAM_CLOSED"; we answer the stream only.
            Some(Closed::ResetByPeer | Closed::Finished) => Err(StreamError::new(
                id,
                ErrorCode::StreamClosed,
                format!("HEADERS on closed stream {id}"),
            )
            .into()),
            // RFC 9113 5.1.1: "The identifier of a newly established stream MUST be
            // numerically greater than all streams that the initiating endpoint has opened or
            // reserved. ... An endpoint that receives an unexpected stream identifier MUST
            // respond with a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
            None => Err(ConnectionError::protocol(format!(
                "HEADERS on stream {id}, not above the highest opened stream {}",
                self.max_stream_id
            ))
            .into()),
        }
    }

    fn open_stream(
        &mut self,
        meta: BlockMeta,
        fields: Vec<Header>,
        too_large: bool,
    ) -> Result<(), H2Error> {
        let id = meta.stream_id;
        // RFC 9113 6.8: after our GOAWAY "the sender will ignore frames sent on streams
        // initiated by the receiver if the stream has an identifier higher than the included
        // last stream identifier", and "Receivers of a GOAWAY frame MUST NOT open additional
        // streams". We refuse such streams explicitly: REFUSED_STREAM tells the client the
        // request was not processed and can be retried (RFC 9113 8.7).
        if self.goaway_sent || self.goaway_received {
            return Err(StreamError::new(
                id,
                ErrorCode::RefusedStream,
                format!("stream {id} refused: the connection is going away"),
            )
            .into());
        }
        // RFC 7540 5.3.1 (kept by h2spec): "A stream cannot depend on itself. An endpoint
        // MUST treat this as a stream error (Section 5.4.2) of type PROTOCOL_ERROR."
        if meta.priority.is_some_and(|p| p.dependency == id) {
            return Err(self_dependency(id));
        }
        // RFC 9113 5.1.2: "An endpoint that receives a HEADERS frame that causes its
        // advertised concurrent stream limit to be exceeded MUST treat this as a stream error
        // (Section 5.4.2) of type PROTOCOL_ERROR or REFUSED_STREAM."
        if self.streams.len() >= self.config.max_concurrent_streams as usize {
            return Err(StreamError::new(
                id,
                ErrorCode::RefusedStream,
                format!(
                    "stream {id} refused: {} streams open, limit {}",
                    self.streams.len(),
                    self.config.max_concurrent_streams
                ),
            )
            .into());
        }
        if too_large {
            return self.answer_header_list_too_large(id, meta.end_stream);
        }
        let request = request::validate_request(fields)
            .map_err(|reason| StreamError::new(id, ErrorCode::ProtocolError, reason))?;
        if meta.end_stream && request.content_length.is_some_and(|length| length != 0) {
            return Err(StreamError::new(
                id,
                ErrorCode::ProtocolError,
                "content-length above 0 on a request without a body",
            )
            .into());
        }
        let recv_window = self.local_initial_window();
        self.streams.insert(
            id,
            Stream {
                remote_closed: meta.end_stream,
                response_started: false,
                response_ended: false,
                local_closed: false,
                reset_after_end: false,
                recv_window,
                recv_unacked: 0,
                send_window: i64::from(self.peer.initial_window_size),
                content_length: request.content_length,
                body_bytes: 0,
                send_buf: Vec::new(),
                send_pos: 0,
                trailers: None,
                queued: false,
            },
        );
        debug_assert!(self.streams.len() <= self.config.max_concurrent_streams as usize);
        self.last_processed_id = id;
        self.events.push_back(PendingEvent {
            event: Event::Headers {
                stream_id: id,
                method: request.method,
                path: request.path,
                authority: request.authority,
                headers: request.headers,
                end_stream: meta.end_stream,
            },
            credit: 0,
        });
        Ok(())
    }

    /// RFC 9113 10.5.1: "A server that receives a larger field block than it is willing to
    /// handle can send an HTTP 431 (Request Header Fields Too Large) status code". The
    /// application never sees the request. If the client is still sending, RST_STREAM
    /// (NO_ERROR) follows the response (RFC 9113 8.1).
    fn answer_header_list_too_large(&mut self, id: u32, end_stream: bool) -> Result<(), H2Error> {
        let mut block = Vec::new();
        self.encoder.encode(&[(b":status", b"431")], &mut block);
        write_header_block(&mut self.out, id, &block, true, self.peer.max_frame_size);
        if end_stream {
            self.remember_closed(id, Closed::Finished);
        } else {
            rst_stream(&mut self.out, id, ErrorCode::NoError);
            self.remember_closed(id, Closed::ResetByUs);
        }
        self.last_processed_id = id;
        self.count_reply().map_err(H2Error::from)
    }

    fn on_trailers(
        &mut self,
        meta: BlockMeta,
        fields: Vec<Header>,
        too_large: bool,
    ) -> Result<(), H2Error> {
        let id = meta.stream_id;
        let Some(stream) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        // RFC 9113 5.1, half-closed (remote): frames other than WINDOW_UPDATE, PRIORITY or
        // RST_STREAM get a stream error of type STREAM_CLOSED.
        if stream.remote_closed {
            return Err(StreamError::new(
                id,
                ErrorCode::StreamClosed,
                format!("HEADERS on stream {id} after END_STREAM"),
            )
            .into());
        }
        if meta.priority.is_some_and(|p| p.dependency == id) {
            return Err(self_dependency(id));
        }
        // RFC 9113 8.1: "An endpoint that receives a HEADERS frame without the END_STREAM
        // flag set after receiving the HEADERS frame that opens a request ... MUST treat the
        // corresponding request or response as malformed (Section 8.1.1)."
        if !meta.end_stream {
            return Err(StreamError::new(
                id,
                ErrorCode::ProtocolError,
                format!("second HEADERS on stream {id} without END_STREAM"),
            )
            .into());
        }
        if too_large {
            return Err(StreamError::new(
                id,
                ErrorCode::EnhanceYourCalm,
                format!(
                    "trailers on stream {id} exceed {} bytes",
                    self.config.max_header_list_bytes
                ),
            )
            .into());
        }
        let trailers = request::validate_trailers(fields)
            .map_err(|reason| StreamError::new(id, ErrorCode::ProtocolError, reason))?;
        if let Some(length) = stream.content_length.filter(|&l| l != stream.body_bytes) {
            return Err(StreamError::new(
                id,
                ErrorCode::ProtocolError,
                format!(
                    "content-length of {length} but {} body bytes on stream {id}",
                    stream.body_bytes
                ),
            )
            .into());
        }
        stream.remote_closed = true;
        self.events.push_back(PendingEvent {
            event: Event::Trailers {
                stream_id: id,
                headers: trailers,
            },
            credit: 0,
        });
        self.remove_if_closed(id);
        Ok(())
    }

    fn on_priority(&mut self, stream_id: u32, priority: Priority) -> Result<(), H2Error> {
        // RFC 9113 6.3: "The PRIORITY frame can be sent on a stream in any state"; its
        // signal is deprecated (5.3.2) and ignored, but self-dependency is still an error.
        if priority.dependency != stream_id {
            return Ok(());
        }
        if self.is_idle_stream(stream_id) {
            // No RST_STREAM on an idle stream (RFC 9113 6.4): end the connection instead.
            return Err(ConnectionError::protocol(format!(
                "PRIORITY makes idle stream {stream_id} depend on itself"
            ))
            .into());
        }
        Err(self_dependency(stream_id))
    }

    fn on_rst_stream(&mut self, stream_id: u32, code: ErrorCode) -> Result<(), H2Error> {
        // RFC 9113 6.4: "If a RST_STREAM frame identifying an idle stream is received, the
        // recipient MUST treat this as a connection error (Section 5.4.1) of type
        // PROTOCOL_ERROR."
        if self.is_idle_stream(stream_id) {
            return Err(ConnectionError::protocol(format!(
                "RST_STREAM on idle stream {stream_id}"
            ))
            .into());
        }
        // Closed already: RFC 9113 5.1 allows late RST_STREAM. "To avoid looping, an
        // endpoint MUST NOT send a RST_STREAM in response to a RST_STREAM frame." (5.4.2)
        if self.streams.remove(&stream_id).is_none() {
            return Ok(());
        }
        self.remember_closed(stream_id, Closed::ResetByPeer);
        self.events.push_back(PendingEvent {
            event: Event::StreamReset { stream_id, code },
            credit: 0,
        });
        // Rapid reset (CVE-2023-44487): streams opened and cancelled before we answered.
        self.flood.resets_in_window += 1;
        if self.flood.resets_in_window > self.config.max_resets_per_window {
            return Err(ConnectionError::calm(format!(
                "client reset {} streams within {} frames (rapid reset)",
                self.flood.resets_in_window, self.config.flood_window_frames
            ))
            .into());
        }
        Ok(())
    }

    fn on_settings(&mut self, ack: bool, params: SettingsParams<'_>) -> Result<(), H2Error> {
        if ack {
            // RFC 9113 6.5.3: "Upon receiving a SETTINGS frame with the ACK flag set, the
            // sender of the altered settings can rely on the values ... having been applied."
            if self.settings_acked {
                // We send a single SETTINGS frame: a further ACK carries nothing.
                self.count_empty("unsolicited SETTINGS ACK")?;
            } else {
                self.settings_acked = true;
                self.on_settings_acked();
            }
            return Ok(());
        }
        // RFC 9113 6.5.3: "The values in the SETTINGS frame MUST be processed in the order
        // they appear".
        for (id, value) in params.iter() {
            let old_window = self.peer.initial_window_size;
            self.peer.apply(id, value)?;
            match id {
                settings::INITIAL_WINDOW_SIZE => {
                    self.adjust_send_windows(i64::from(value) - i64::from(old_window))?
                }
                settings::HEADER_TABLE_SIZE => self.encoder.set_peer_table_size(value),
                _ => {}
            }
        }
        // RFC 9113 6.5.3: "Once all values have been processed, the recipient MUST
        // immediately emit a SETTINGS frame with the ACK flag set."
        Frame::Settings {
            ack: true,
            params: SettingsParams::default(),
        }
        .encode(&mut self.out);
        self.count_reply()?;
        Ok(())
    }

    /// RFC 9113 6.9.2: "When the value of SETTINGS_INITIAL_WINDOW_SIZE changes, a receiver
    /// MUST adjust the size of all stream flow-control windows that it maintains by the
    /// difference between the new value and the old value." and "An endpoint MUST treat a
    /// change to SETTINGS_INITIAL_WINDOW_SIZE that causes any flow-control window to exceed
    /// the maximum size as a connection error (Section 5.4.1) of type FLOW_CONTROL_ERROR."
    fn adjust_send_windows(&mut self, delta: i64) -> Result<(), ConnectionError> {
        if delta == 0 {
            return Ok(());
        }
        let mut unblocked = Vec::new();
        for (&id, stream) in &mut self.streams {
            let was_blocked = stream.send_window <= 0;
            stream.send_window += delta;
            if stream.send_window > i64::from(WINDOW_SIZE_MAX) {
                return Err(ConnectionError::flow_control(format!(
                    "SETTINGS_INITIAL_WINDOW_SIZE change of {delta} makes the window of stream \
                     {id} {}, above 2^31-1",
                    stream.send_window
                )));
            }
            if was_blocked && stream.send_window > 0 {
                unblocked.push(id);
            }
        }
        unblocked.sort_unstable();
        for id in unblocked {
            self.enqueue(id);
        }
        Ok(())
    }

    /// Our SETTINGS now apply. Until then the client may have used the default stream
    /// window (RFC 9113 6.9.2), so a configured window below it only bites from here on.
    fn on_settings_acked(&mut self) {
        let shrink =
            i64::from(INITIAL_WINDOW_SIZE_DEFAULT) - i64::from(self.config.initial_window_size);
        if shrink > 0 {
            for stream in self.streams.values_mut() {
                stream.recv_window -= shrink;
            }
        }
    }

    /// The receive window a new stream starts with.
    fn local_initial_window(&self) -> i64 {
        let configured = i64::from(self.config.initial_window_size);
        if self.settings_acked {
            configured
        } else {
            configured.max(i64::from(INITIAL_WINDOW_SIZE_DEFAULT))
        }
    }

    fn on_ping(&mut self, ack: bool, payload: [u8; 8]) -> Result<(), H2Error> {
        // RFC 9113 6.7: "An endpoint MUST NOT respond to PING frames containing this flag."
        // We send no PINGs, so an ACK is dropped.
        if ack {
            return Ok(());
        }
        // RFC 9113 6.7: "Receivers of a PING frame that does not include an ACK flag MUST
        // send a PING frame with the ACK flag set in response, with an identical frame
        // payload."
        Frame::Ping { ack: true, payload }.encode(&mut self.out);
        self.count_reply()?;
        Ok(())
    }

    fn on_window_update(&mut self, stream_id: u32, increment: u32) -> Result<(), H2Error> {
        if stream_id == 0 {
            // RFC 9113 6.9: "errors on the connection flow-control window MUST be treated as
            // a connection error (Section 5.4.1)."
            if increment == 0 {
                return Err(ConnectionError::protocol(
                    "WINDOW_UPDATE with an increment of 0 on the connection",
                )
                .into());
            }
            // RFC 9113 6.9.1: "A sender MUST NOT allow a flow-control window to exceed 2^31-1
            // octets. ... for the connection, a GOAWAY frame with an error code of
            // FLOW_CONTROL_ERROR is sent."
            let window = self.conn_send_window + i64::from(increment);
            if window > i64::from(WINDOW_SIZE_MAX) {
                return Err(ConnectionError::flow_control(format!(
                    "WINDOW_UPDATE of {increment} makes the connection window {window}, above \
                     2^31-1"
                ))
                .into());
            }
            self.conn_send_window = window;
            return Ok(());
        }
        if self.is_idle_stream(stream_id) {
            return Err(ConnectionError::protocol(format!(
                "WINDOW_UPDATE on idle stream {stream_id}"
            ))
            .into());
        }
        // RFC 9113 6.9: a WINDOW_UPDATE on a half-closed (remote) or closed stream: "A
        // receiver MUST NOT treat this as an error".
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return Ok(());
        };
        // RFC 9113 6.9: "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a
        // flow-control window increment of 0 as a stream error (Section 5.4.2) of type
        // PROTOCOL_ERROR".
        if increment == 0 {
            return Err(StreamError::new(
                stream_id,
                ErrorCode::ProtocolError,
                format!("WINDOW_UPDATE with an increment of 0 on stream {stream_id}"),
            )
            .into());
        }
        // RFC 9113 6.9.1: "For streams, the sender sends a RST_STREAM with an error code of
        // FLOW_CONTROL_ERROR".
        let window = stream.send_window + i64::from(increment);
        if window > i64::from(WINDOW_SIZE_MAX) {
            return Err(StreamError::new(
                stream_id,
                ErrorCode::FlowControlError,
                format!("WINDOW_UPDATE makes the window of stream {stream_id} {window}"),
            )
            .into());
        }
        stream.send_window = window;
        if window > 0 {
            self.enqueue(stream_id);
        }
        Ok(())
    }

    // ---------------------------------------------------------------- bookkeeping

    /// Queues RST_STREAM for a stream error and forgets the stream.
    fn reset_for_error(&mut self, error: StreamError) {
        let id = error.stream_id;
        debug_assert!(!self.is_idle_stream(id), "RST_STREAM on idle stream {id}");
        // RFC 9113 5.4.2: "Normally, an endpoint SHOULD NOT send more than one RST_STREAM
        // frame for any stream."
        let known = self.streams.remove(&id).is_some();
        if !known && self.closed_state(id) == Some(Closed::ResetByUs) {
            return;
        }
        rst_stream(&mut self.out, id, error.code);
        self.remember_closed(id, Closed::ResetByUs);
        if known {
            self.events.push_back(PendingEvent {
                event: Event::StreamReset {
                    stream_id: id,
                    code: error.code,
                },
                credit: 0,
            });
        }
    }

    fn remember_closed(&mut self, stream_id: u32, how: Closed) {
        if self.recently_closed.len() >= RECENTLY_CLOSED_MAX {
            self.recently_closed.pop_front();
        }
        self.recently_closed.push_back((stream_id, how));
        debug_assert!(self.recently_closed.len() <= RECENTLY_CLOSED_MAX);
    }

    fn closed_state(&self, stream_id: u32) -> Option<Closed> {
        self.recently_closed
            .iter()
            .rev()
            .find(|(id, _)| *id == stream_id)
            .map(|&(_, how)| how)
    }

    fn remove_if_closed(&mut self, stream_id: u32) {
        if self
            .streams
            .get(&stream_id)
            .is_some_and(|s| s.remote_closed && s.local_closed)
        {
            self.streams.remove(&stream_id);
            self.remember_closed(stream_id, Closed::Finished);
        }
    }

    /// END_STREAM went into the output.
    fn on_local_end(&mut self, stream_id: u32) {
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return;
        };
        debug_assert!(stream.response_ended && !stream.local_closed);
        stream.local_closed = true;
        stream.send_buf = Vec::new();
        stream.send_pos = 0;
        if stream.reset_after_end {
            self.streams.remove(&stream_id);
            rst_stream(&mut self.out, stream_id, ErrorCode::NoError);
            self.remember_closed(stream_id, Closed::ResetByUs);
            return;
        }
        self.remove_if_closed(stream_id);
    }

    fn enqueue(&mut self, stream_id: u32) {
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return;
        };
        if !stream.queued && stream.has_output() {
            stream.queued = true;
            self.send_queue.push_back(stream_id);
        }
    }

    /// Returns `credit` octets consumed on a stream, with WINDOW_UPDATE once half a window
    /// has been consumed (RFC 9113 6.9.1: avoid "sending WINDOW_UPDATE frames with very
    /// small increments").
    fn release_credit(&mut self, stream_id: u32, credit: u32) {
        if credit == 0 || self.failed.is_some() {
            return;
        }
        self.release_conn_credit(credit);
        let half_window = (self.config.initial_window_size / 2).max(1);
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return;
        };
        // Half-closed (remote): the client sends no more, no credit needed (RFC 9113 5.1).
        if stream.remote_closed {
            return;
        }
        stream.recv_unacked += credit;
        if stream.recv_unacked >= half_window {
            let increment = std::mem::take(&mut stream.recv_unacked);
            stream.recv_window += i64::from(increment);
            debug_assert!(stream.recv_window <= i64::from(WINDOW_SIZE_MAX));
            window_update(&mut self.out, stream_id, increment);
        }
    }

    fn release_conn_credit(&mut self, credit: u32) {
        if credit == 0 || self.failed.is_some() {
            return;
        }
        self.conn_recv_unacked += credit;
        if self.conn_recv_unacked >= (self.config.connection_window_size / 2).max(1) {
            let increment = std::mem::take(&mut self.conn_recv_unacked);
            self.conn_recv_window += i64::from(increment);
            debug_assert!(self.conn_recv_window <= i64::from(self.config.connection_window_size));
            window_update(&mut self.out, 0, increment);
        }
    }

    fn count_frame(&mut self) {
        self.flood.frames_in_window += 1;
        if self.flood.frames_in_window >= self.config.flood_window_frames {
            self.flood.frames_in_window = 0;
            self.flood.resets_in_window = 0;
            self.flood.empty_in_window = 0;
        }
    }

    /// CVE-2019-9518: frames that carry nothing cost processing for no progress.
    fn count_empty(&mut self, what: &str) -> Result<(), ConnectionError> {
        self.flood.empty_in_window += 1;
        if self.flood.empty_in_window > self.config.max_empty_frames_per_window {
            return Err(ConnectionError::calm(format!(
                "{} frames without content within {} frames (last: {what})",
                self.flood.empty_in_window, self.config.flood_window_frames
            )));
        }
        Ok(())
    }

    /// A reply the peer made us queue (PING/SETTINGS ACK, RST_STREAM, 431).
    fn count_reply(&mut self) -> Result<(), ConnectionError> {
        self.flood.replies_since_drain += 1;
        if self.flood.replies_since_drain > self.config.max_control_frames_per_window {
            return Err(ConnectionError::calm(format!(
                "{} replies (PING/SETTINGS ACK, RST_STREAM) queued while {} bytes of output \
                 wait to be read",
                self.flood.replies_since_drain,
                self.out.len()
            )));
        }
        Ok(())
    }

    /// RFC 9113 5.4.1: "An endpoint that encounters a connection error SHOULD first send a
    /// GOAWAY frame (Section 6.8) with the stream identifier of the last stream that it
    /// successfully received from its peer."
    fn fail(&mut self, error: ConnectionError) {
        debug_assert!(self.failed.is_none());
        let mut debug: Vec<u8> = error
            .reason
            .bytes()
            .map(|b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b
                } else {
                    b'?'
                }
            })
            .collect();
        debug.truncate(GOAWAY_DEBUG_BYTES_MAX);
        Frame::GoAway {
            last_stream_id: self.last_processed_id,
            code: error.code,
            debug_data: &debug,
        }
        .encode(&mut self.out);
        let mut ids: Vec<u32> = self.streams.keys().copied().collect();
        ids.sort_unstable();
        for stream_id in ids {
            self.events.push_back(PendingEvent {
                event: Event::StreamReset {
                    stream_id,
                    code: error.code,
                },
                credit: 0,
            });
        }
        self.streams.clear();
        self.send_queue.clear();
        self.header_block = None;
        self.inbuf = Vec::new();
        self.goaway_sent = true;
        self.failed = Some(error);
    }

    // ---------------------------------------------------------------- output

    /// Frames queued response output into `dst`, round robin over streams, within the
    /// windows and about `max_output_buffer_bytes`.
    fn flush_streams(&mut self, dst: &mut Vec<u8>) {
        let start = dst.len();
        loop {
            let mut progress = false;
            for _ in 0..self.send_queue.len() {
                if dst.len() - start >= self.config.max_output_buffer_bytes {
                    return;
                }
                let Some(id) = self.send_queue.pop_front() else {
                    return;
                };
                match self.send_one(id, dst) {
                    SendOutcome::More => {
                        self.send_queue.push_back(id);
                        progress = true;
                    }
                    SendOutcome::Done => progress = true,
                    SendOutcome::Idle | SendOutcome::BlockedOnStream => {}
                    SendOutcome::BlockedOnConnection => self.send_queue.push_back(id),
                }
            }
            if !progress {
                return;
            }
        }
    }

    /// Frames the next piece of one stream's response.
    fn send_one(&mut self, id: u32, dst: &mut Vec<u8>) -> SendOutcome {
        let max_frame = self.peer.max_frame_size as usize;
        let Some(stream) = self.streams.get_mut(&id) else {
            return SendOutcome::Idle;
        };
        debug_assert!(stream.queued);
        let unsent = stream.unsent_bytes();
        if unsent > 0 {
            if stream.send_window <= 0 {
                stream.queued = false;
                return SendOutcome::BlockedOnStream;
            }
            if self.conn_send_window <= 0 {
                return SendOutcome::BlockedOnConnection;
            }
            // RFC 9113 6.9.1: "The sender MUST NOT send a flow-controlled frame with a length
            // that exceeds the space available in either of the flow-control windows".
            let window = stream.send_window.min(self.conn_send_window);
            let n = unsent
                .min(max_frame)
                .min(usize::try_from(window).unwrap_or(max_frame));
            debug_assert!(n > 0);
            let last = n == unsent && stream.response_ended && stream.trailers.is_none();
            let from = stream.send_pos;
            frame::encode_data_header(dst, id, n, last);
            dst.extend_from_slice(stream.send_buf.get(from..from + n).unwrap_or_default());
            stream.send_pos += n;
            stream.send_window -= n as i64;
            self.conn_send_window -= n as i64;
            if stream.send_pos == stream.send_buf.len() {
                stream.send_buf.clear();
                stream.send_pos = 0;
            }
            if last {
                stream.queued = false;
                self.on_local_end(id);
                return SendOutcome::Done;
            }
            if stream.has_output() {
                return SendOutcome::More;
            }
            stream.queued = false;
            return SendOutcome::Done;
        }
        stream.queued = false;
        if let Some(trailers) = stream.trailers.take() {
            let fields: Vec<(&[u8], &[u8])> = trailers
                .iter()
                .map(|(name, value)| (name.as_bytes(), value.as_slice()))
                .collect();
            let mut block = Vec::new();
            self.encoder.encode(&fields, &mut block);
            write_header_block(dst, id, &block, true, self.peer.max_frame_size);
            self.on_local_end(id);
            return SendOutcome::Done;
        }
        if stream.response_ended && !stream.local_closed {
            // RFC 9113 6.9.1: "Frames with zero length with the END_STREAM flag set (that
            // is, an empty DATA frame) MAY be sent if there is no available space in either
            // flow-control window."
            frame::encode_data_header(dst, id, 0, true);
            self.on_local_end(id);
            return SendOutcome::Done;
        }
        SendOutcome::Idle
    }
}

fn self_dependency(stream_id: u32) -> H2Error {
    StreamError::new(
        stream_id,
        ErrorCode::ProtocolError,
        format!("stream {stream_id} depends on itself"),
    )
    .into()
}

fn rst_stream(dst: &mut Vec<u8>, stream_id: u32, code: ErrorCode) {
    Frame::RstStream { stream_id, code }.encode(dst);
}

fn window_update(dst: &mut Vec<u8>, stream_id: u32, increment: u32) {
    debug_assert!(increment > 0 && increment <= WINDOW_SIZE_MAX);
    Frame::WindowUpdate {
        stream_id,
        increment,
    }
    .encode(dst);
}

/// Writes a header block as HEADERS plus as many CONTINUATION frames as the peer's frame
/// size needs (RFC 9113 4.3: "Field blocks MUST be transmitted as a contiguous sequence of
/// frames").
fn write_header_block(
    dst: &mut Vec<u8>,
    stream_id: u32,
    block: &[u8],
    end_stream: bool,
    max_frame_size: u32,
) {
    let mut chunks = block.chunks((max_frame_size as usize).max(1)).peekable();
    let first = chunks.next().unwrap_or_default();
    Frame::Headers {
        stream_id,
        end_stream,
        end_headers: chunks.peek().is_none(),
        priority: None,
        fragment: first,
        pad_len: None,
    }
    .encode(dst);
    while let Some(fragment) = chunks.next() {
        Frame::Continuation {
            stream_id,
            end_headers: chunks.peek().is_none(),
            fragment,
        }
        .encode(dst);
    }
}

/// Our HPACK encoder. RFC 9113 4.3.1: "The HPACK encoder at that endpoint can set the
/// dynamic table to any size up to the maximum value set by the decoder." When the client
/// advertises a table smaller than the 4,096 octets every connection starts with, we stop
/// using the dynamic table: one Dynamic Table Size Update to 0 (RFC 7541 6.3), then only
/// literals without indexing (RFC 7541 6.2.2).
enum HeaderEncoder {
    Hpack(Encoder),
    Literal { size_update_pending: bool },
}

impl HeaderEncoder {
    fn set_peer_table_size(&mut self, size: u32) {
        if size < HEADER_TABLE_SIZE_DEFAULT && matches!(self, HeaderEncoder::Hpack(_)) {
            *self = HeaderEncoder::Literal {
                size_update_pending: true,
            };
        }
    }

    fn encode(&mut self, fields: &[(&[u8], &[u8])], dst: &mut Vec<u8>) {
        match self {
            HeaderEncoder::Hpack(encoder) => encoder.encode(fields, dst),
            HeaderEncoder::Literal {
                size_update_pending,
            } => {
                if std::mem::take(size_update_pending) {
                    hpack_integer(dst, 0x20, 5, 0);
                }
                for (name, value) in fields {
                    dst.push(0x00);
                    hpack_integer(dst, 0x00, 7, name.len());
                    dst.extend_from_slice(name);
                    hpack_integer(dst, 0x00, 7, value.len());
                    dst.extend_from_slice(value);
                }
            }
        }
    }
}

/// RFC 7541 5.1 integer with an N-bit prefix; `flags` holds the bits above the prefix.
fn hpack_integer(dst: &mut Vec<u8>, flags: u8, prefix_bits: u32, value: usize) {
    debug_assert!((1..=8).contains(&prefix_bits));
    let prefix_max = (1usize << prefix_bits) - 1;
    if value < prefix_max {
        dst.push(flags | value as u8);
        return;
    }
    dst.push(flags | prefix_max as u8);
    let mut rest = value - prefix_max;
    while rest >= 0x80 {
        dst.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    dst.push(rest as u8);
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn hpack_integers() {
        // RFC 7541 C.1.1-C.1.3.
        let mut out = Vec::new();
        hpack_integer(&mut out, 0, 5, 10);
        assert_eq!(out, [10]);
        out.clear();
        hpack_integer(&mut out, 0, 5, 1337);
        assert_eq!(out, [31, 154, 10]);
        out.clear();
        hpack_integer(&mut out, 0, 8, 42);
        assert_eq!(out, [42]);
    }

    #[test]
    fn literal_encoder_starts_with_a_size_update() {
        let mut encoder = HeaderEncoder::Hpack(Encoder::new());
        encoder.set_peer_table_size(0);
        let mut out = Vec::new();
        encoder.encode(&[(b":status", b"200")], &mut out);
        assert_eq!(out, b"\x20\x00\x07:status\x03200");
        let mut decoder = Decoder::new(0);
        let mut fields = Vec::new();
        decoder.decode(&out, 1 << 10, &mut fields).unwrap();
        assert_eq!(fields.len(), 1);
        out.clear();
        encoder.encode(&[(b"a", b"b")], &mut out);
        assert_eq!(out, b"\x00\x01a\x01b");
    }

    #[test]
    fn default_config_is_valid() {
        ServerConfig::default().check();
    }
}

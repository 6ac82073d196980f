//! Stream states (RFC 9113 5.1): the stream table of open and half-closed streams, the
//! memory of recently closed ones, and the transitions between them.

use crate::error::{ErrorCode, StreamError};

use super::output::rst_stream;
use super::{Connection, Event, PendingEvent, RECENTLY_CLOSED_MAX};

/// How a stream left the stream map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Closed {
    /// We sent RST_STREAM (or refused or ignored the stream): late frames are discarded
    /// (RFC 9113 5.1, closed: "An endpoint MUST minimally process and then discard any frames
    /// it receives in this state").
    ResetByUs,
    /// The client sent RST_STREAM.
    ResetByPeer,
    /// Both sides sent END_STREAM.
    Finished,
}

/// An open or half-closed stream.
pub(super) struct Stream {
    /// The client sent END_STREAM: half-closed (remote).
    pub(super) remote_closed: bool,
    /// A final (non-1xx) response HEADERS was sent.
    pub(super) response_started: bool,
    /// The application ended the response; END_STREAM is queued or sent.
    pub(super) response_ended: bool,
    /// END_STREAM is in the output: half-closed (local).
    pub(super) local_closed: bool,
    /// `reset_stream(NO_ERROR)` came while the response was queued: send RST_STREAM(NO_ERROR)
    /// right after END_STREAM (RFC 9113 8.1).
    pub(super) reset_after_end: bool,
    /// What the client may still send on this stream.
    pub(super) recv_window: i64,
    pub(super) recv_unacked: u32,
    /// What we may still send on this stream; negative after a SETTINGS decrease.
    pub(super) send_window: i64,
    pub(super) content_length: Option<u64>,
    pub(super) body_bytes: u64,
    /// Response body not yet framed: `send_buf[send_pos..]`.
    pub(super) send_buf: Vec<u8>,
    pub(super) send_pos: usize,
    /// Trailers to send once the body is out.
    pub(super) trailers: Option<Vec<(String, Vec<u8>)>>,
    /// The id is in `send_queue`.
    pub(super) queued: bool,
}

impl Stream {
    pub(super) fn unsent_bytes(&self) -> usize {
        debug_assert!(self.send_pos <= self.send_buf.len());
        self.send_buf.len() - self.send_pos
    }

    /// Output that `send_one` can frame now or once windows open.
    pub(super) fn has_output(&self) -> bool {
        self.unsent_bytes() > 0
            || self.trailers.is_some()
            || (self.response_ended && !self.local_closed)
    }
}

impl Connection {
    /// A client stream id that was never opened: even (server-initiated, never used by
    /// us) or above the highest opened (RFC 9113 5.1.1).
    pub(super) fn is_idle_stream(&self, stream_id: u32) -> bool {
        stream_id % 2 == 0 || stream_id > self.max_stream_id
    }

    /// Queues RST_STREAM for a stream error and forgets the stream.
    pub(super) fn reset_for_error(&mut self, error: StreamError) {
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

    pub(super) fn remember_closed(&mut self, stream_id: u32, how: Closed) {
        if self.recently_closed.len() >= RECENTLY_CLOSED_MAX {
            self.recently_closed.pop_front();
        }
        self.recently_closed.push_back((stream_id, how));
        debug_assert!(self.recently_closed.len() <= RECENTLY_CLOSED_MAX);
    }

    pub(super) fn closed_state(&self, stream_id: u32) -> Option<Closed> {
        self.recently_closed
            .iter()
            .rev()
            .find(|(id, _)| *id == stream_id)
            .map(|&(_, how)| how)
    }

    pub(super) fn remove_if_closed(&mut self, stream_id: u32) {
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
    pub(super) fn on_local_end(&mut self, stream_id: u32) {
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

    pub(super) fn enqueue(&mut self, stream_id: u32) {
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return;
        };
        if !stream.queued && stream.has_output() {
            stream.queued = true;
            self.send_queue.push_back(stream_id);
        }
    }
}

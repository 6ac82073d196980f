//! Outgoing frames: DATA framed from the per-stream send queues, round robin within the
//! send windows (RFC 9113 6.9.1), and the writers of RST_STREAM, WINDOW_UPDATE and header
//! blocks (4.3).

use crate::error::ErrorCode;
use crate::frame::{self, Frame, WINDOW_SIZE_MAX};

use super::Connection;

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
    /// Frames queued response output into `dst`, round robin over streams, within the
    /// windows and about `max_output_buffer_bytes`.
    pub(super) fn flush_streams(&mut self, dst: &mut Vec<u8>) {
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

pub(super) fn rst_stream(dst: &mut Vec<u8>, stream_id: u32, code: ErrorCode) {
    Frame::RstStream { stream_id, code }.encode(dst);
}

pub(super) fn window_update(dst: &mut Vec<u8>, stream_id: u32, increment: u32) {
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
pub(super) fn write_header_block(
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

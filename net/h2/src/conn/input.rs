//! Incoming bytes: the client preface (RFC 9113 3.4), the frame loop, dispatch of each
//! frame to its handler, the one mapping from an error to GOAWAY or RST_STREAM (5.4), and
//! the stream frames DATA (6.1), PRIORITY (6.3) and RST_STREAM (6.4).

use crate::error::{ConnectionError, ErrorCode, H2Error, StreamError};
use crate::frame::{self, kind, Frame, FrameError, Priority, FRAME_SIZE_MAX};
use crate::request::printable;

use super::headers::{self_dependency, BlockMeta};
use super::stream::Closed;
use super::{Connection, Event, PendingEvent, Phase, PREFACE};

impl Connection {
    pub(super) fn recv_inner(&mut self, mut bytes: &[u8]) -> Result<(), ConnectionError> {
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
}

//! Header blocks (RFC 9113 4.3, 6.2, 6.10): HEADERS and CONTINUATION frames collected
//! within their limits, HPACK-decoded, and routed to a new stream (5.1.1, 5.1.2), to
//! trailers (8.1) or discarded; the 431 answer to a header list over the limit (10.5.1).

use allegro_hpack::{Header, HpackError};

use crate::error::{ConnectionError, ErrorCode, H2Error, StreamError};
use crate::frame::{Priority, FRAME_SIZE_DEFAULT};
use crate::request;

use super::output::{rst_stream, write_header_block};
use super::stream::{Closed, Stream};
use super::{Connection, Event, PendingEvent};

pub(super) struct HeaderBlock {
    pub(super) meta: BlockMeta,
    fragments: Vec<u8>,
    continuations: u32,
}

#[derive(Clone, Copy)]
pub(super) struct BlockMeta {
    pub(super) stream_id: u32,
    pub(super) end_stream: bool,
    pub(super) priority: Option<Priority>,
}

impl Connection {
    pub(super) fn on_headers(
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

    pub(super) fn on_continuation(
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
}

pub(super) fn self_dependency(stream_id: u32) -> H2Error {
    StreamError::new(
        stream_id,
        ErrorCode::ProtocolError,
        format!("stream {stream_id} depends on itself"),
    )
    .into()
}

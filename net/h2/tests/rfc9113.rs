//! Conformance tests grouped by RFC 9113 section, in the style of h2spec: each test drives a
//! `Connection` with hand-built frames and checks the frames it answers with. Each test
//! quotes the requirement it checks.

use allegro_h2::frame::{self, flags, kind, FrameHeader};
use allegro_h2::settings;
use allegro_h2::{Connection, ConnectionError, ErrorCode, Event, ServerConfig, PREFACE};
use allegro_hpack::{Decoder, Encoder};

// ------------------------------------------------------------------------- harness

/// An owned, decoded output frame.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Settings {
        ack: bool,
        params: Vec<(u16, u32)>,
    },
    Ping {
        ack: bool,
        payload: [u8; 8],
    },
    GoAway {
        last_stream_id: u32,
        code: ErrorCode,
        debug: String,
    },
    Rst {
        stream_id: u32,
        code: ErrorCode,
    },
    WindowUpdate {
        stream_id: u32,
        increment: u32,
    },
    /// A whole header block (HEADERS + CONTINUATION), decoded.
    Headers {
        stream_id: u32,
        end_stream: bool,
        fields: Vec<(String, String)>,
        /// Frames the block took.
        frames: usize,
    },
    Data {
        stream_id: u32,
        data: Vec<u8>,
        end_stream: bool,
    },
}

/// The client side of a test: a connection, an HPACK encoder for requests and a decoder for
/// responses.
struct Client {
    conn: Connection,
    encoder: Encoder,
    decoder: Decoder,
    /// A response header block awaiting CONTINUATION: (stream, end_stream, fragments, frames).
    partial: Option<(u32, bool, Vec<u8>, usize)>,
}

const REQUEST: [(&str, &str); 6] = [
    (":method", "POST"),
    (":scheme", "http"),
    (
        ":path",
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    ),
    (":authority", "localhost:4317"),
    ("content-type", "application/grpc"),
    ("te", "trailers"),
];

impl Client {
    /// A connection that has seen nothing yet.
    fn fresh(config: ServerConfig) -> Client {
        Client {
            conn: Connection::new(config),
            encoder: Encoder::new(),
            decoder: Decoder::new(4096),
            partial: None,
        }
    }

    /// Preface, an empty SETTINGS, and the ACK of ours; the server's preface is consumed.
    fn with(config: ServerConfig) -> Client {
        let mut client = Client::fresh(config);
        client.send(PREFACE).expect("preface");
        client.send(&settings(&[])).expect("settings");
        client.send(&settings_ack()).expect("settings ack");
        let out = client.frames();
        assert!(
            matches!(out.first(), Some(Out::Settings { ack: false, .. })),
            "{out:?}"
        );
        assert_eq!(
            out.last(),
            Some(&Out::Settings {
                ack: true,
                params: vec![]
            })
        );
        client
    }

    fn new() -> Client {
        Client::with(ServerConfig::default())
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        self.conn.recv(bytes)
    }

    fn send_ok(&mut self, bytes: &[u8]) {
        if let Err(error) = self.send(bytes) {
            panic!("unexpected connection error: {error}");
        }
    }

    /// Takes and decodes all output.
    fn frames(&mut self) -> Vec<Out> {
        let mut bytes = Vec::new();
        loop {
            let before = bytes.len();
            self.conn.take_output(&mut bytes);
            if bytes.len() == before {
                break;
            }
        }
        self.decode(&bytes)
    }

    /// Takes one batch of output (one `take_output` call).
    fn frames_once(&mut self) -> Vec<Out> {
        let mut bytes = Vec::new();
        self.conn.take_output(&mut bytes);
        self.decode(&bytes)
    }

    fn decode(&mut self, mut bytes: &[u8]) -> Vec<Out> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let (frame, consumed) = match frame::parse(bytes, frame::FRAME_SIZE_MAX) {
                Ok(Some(parsed)) => parsed,
                other => panic!("server output does not parse: {other:?}"),
            };
            bytes = &bytes[consumed..];
            use allegro_h2::frame::Frame;
            let decoded = match frame {
                Frame::Settings { ack, params } => Some(Out::Settings {
                    ack,
                    params: params.iter().collect(),
                }),
                Frame::Ping { ack, payload } => Some(Out::Ping { ack, payload }),
                Frame::GoAway {
                    last_stream_id,
                    code,
                    debug_data,
                } => Some(Out::GoAway {
                    last_stream_id,
                    code,
                    debug: String::from_utf8(debug_data.to_vec()).expect("ASCII debug data"),
                }),
                Frame::RstStream { stream_id, code } => Some(Out::Rst { stream_id, code }),
                Frame::WindowUpdate {
                    stream_id,
                    increment,
                } => Some(Out::WindowUpdate {
                    stream_id,
                    increment,
                }),
                Frame::Data {
                    stream_id,
                    end_stream,
                    data,
                    pad_len,
                } => {
                    assert_eq!(pad_len, None);
                    Some(Out::Data {
                        stream_id,
                        data: data.to_vec(),
                        end_stream,
                    })
                }
                Frame::Headers {
                    stream_id,
                    end_stream,
                    end_headers,
                    fragment,
                    ..
                } => {
                    assert!(self.partial.is_none(), "HEADERS inside a header block");
                    self.partial = Some((stream_id, end_stream, fragment.to_vec(), 1));
                    end_headers.then(|| self.finish_block())
                }
                Frame::Continuation {
                    stream_id,
                    end_headers,
                    fragment,
                } => {
                    let partial = self.partial.as_mut().expect("CONTINUATION without HEADERS");
                    assert_eq!(partial.0, stream_id);
                    partial.2.extend_from_slice(fragment);
                    partial.3 += 1;
                    end_headers.then(|| self.finish_block())
                }
                other => panic!("the server sent {other:?}"),
            };
            out.extend(decoded);
        }
        out
    }

    fn finish_block(&mut self) -> Out {
        let (stream_id, end_stream, block, frames) = self.partial.take().expect("block");
        let mut fields = Vec::new();
        self.decoder
            .decode(&block, 1 << 20, &mut fields)
            .expect("response header block decodes");
        Out::Headers {
            stream_id,
            end_stream,
            fields: fields
                .into_iter()
                .map(|h| {
                    (
                        String::from_utf8(h.name).expect("name"),
                        String::from_utf8(h.value).expect("value"),
                    )
                })
                .collect(),
            frames,
        }
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let fields: Vec<(&[u8], &[u8])> = fields
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        let mut block = Vec::new();
        self.encoder.encode(&fields, &mut block);
        block
    }

    /// A HEADERS frame carrying `fields` with END_HEADERS.
    fn headers(&mut self, stream_id: u32, fields: &[(&str, &str)], end_stream: bool) -> Vec<u8> {
        let block = self.block(fields);
        let end = if end_stream { flags::END_STREAM } else { 0 };
        raw(kind::HEADERS, flags::END_HEADERS | end, stream_id, &block)
    }

    /// The standard gRPC request HEADERS.
    fn request(&mut self, stream_id: u32, end_stream: bool) -> Vec<u8> {
        self.headers(stream_id, &REQUEST, end_stream)
    }

    /// Opens `stream_id` with a request and takes its `Headers` event.
    fn open(&mut self, stream_id: u32, end_stream: bool) {
        let frame = self.request(stream_id, end_stream);
        self.send_ok(&frame);
        let events = self.events();
        assert!(
            matches!(events.as_slice(), [Event::Headers { stream_id: id, .. }] if *id == stream_id),
            "{events:?}"
        );
    }

    /// Feeds `bytes`, which must cause a connection error with `code`; returns the GOAWAY
    /// debug string.
    fn expect_goaway(&mut self, bytes: &[u8], code: ErrorCode) -> String {
        let error = self.send(bytes).expect_err("a connection error");
        assert_eq!(error.code, code, "{error}");
        assert!(self.conn.wants_close());
        let out = self.frames();
        match out.last() {
            Some(Out::GoAway {
                code: sent, debug, ..
            }) => {
                assert_eq!(*sent, code);
                assert!(!debug.is_empty());
                assert!(debug.is_ascii());
                debug.clone()
            }
            other => panic!("expected GOAWAY({code}), got {other:?} in {out:?}"),
        }
    }

    /// Feeds `bytes`, which must cause exactly a RST_STREAM(`code`) on `stream_id`.
    fn expect_rst(&mut self, bytes: &[u8], stream_id: u32, code: ErrorCode) {
        self.send_ok(bytes);
        let out = self.frames();
        let rsts: Vec<_> = out
            .iter()
            .filter(|f| matches!(f, Out::Rst { .. }))
            .collect();
        assert_eq!(rsts, [&Out::Rst { stream_id, code }], "{out:?}");
        assert!(
            !out.iter().any(|f| matches!(f, Out::GoAway { .. })),
            "{out:?}"
        );
    }
}

fn raw(frame_kind: u8, frame_flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHeader {
        length: payload.len() as u32,
        kind: frame_kind,
        flags: frame_flags,
        stream_id,
    }
    .encode(&mut out);
    out.extend_from_slice(payload);
    out
}

/// A header block of literals without indexing (RFC 7541 6.2.2), never touching the
/// dynamic table; names and values shorter than 127 bytes.
fn literal_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in fields {
        assert!(name.len() < 127 && value.len() < 127);
        block.push(0x00);
        block.push(name.len() as u8);
        block.extend_from_slice(name.as_bytes());
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    block
}

fn settings(params: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_settings(&mut out, params);
    out
}

fn settings_ack() -> Vec<u8> {
    raw(kind::SETTINGS, flags::ACK, 0, &[])
}

fn ping(payload: &[u8; 8]) -> Vec<u8> {
    raw(kind::PING, 0, 0, payload)
}

fn data(stream_id: u32, bytes: &[u8], end_stream: bool) -> Vec<u8> {
    let end = if end_stream { flags::END_STREAM } else { 0 };
    raw(kind::DATA, end, stream_id, bytes)
}

fn rst(stream_id: u32, code: ErrorCode) -> Vec<u8> {
    raw(kind::RST_STREAM, 0, stream_id, &code.to_u32().to_be_bytes())
}

fn window_update(stream_id: u32, increment: u32) -> Vec<u8> {
    raw(kind::WINDOW_UPDATE, 0, stream_id, &increment.to_be_bytes())
}

fn priority(stream_id: u32, dependency: u32) -> Vec<u8> {
    let mut payload = dependency.to_be_bytes().to_vec();
    payload.push(15);
    raw(kind::PRIORITY, 0, stream_id, &payload)
}

fn continuation(stream_id: u32, fragment: &[u8], end_headers: bool) -> Vec<u8> {
    let end = if end_headers { flags::END_HEADERS } else { 0 };
    raw(kind::CONTINUATION, end, stream_id, fragment)
}

fn concat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

fn data_events(events: &[Event]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Data { data, .. } => Some(data.as_slice()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .concat()
}

fn window_updates(out: &[Out], stream: u32) -> u32 {
    out.iter()
        .filter_map(|f| match f {
            Out::WindowUpdate {
                stream_id,
                increment,
            } if *stream_id == stream => Some(*increment),
            _ => None,
        })
        .sum()
}

fn response_data(out: &[Out], stream: u32) -> Vec<u8> {
    out.iter()
        .filter_map(|f| match f {
            Out::Data {
                stream_id, data, ..
            } if *stream_id == stream => Some(data.as_slice()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .concat()
}

// ------------------------------------------------------------------------- 3.4 preface

#[test]
fn s3_4_server_preface_is_settings_first() {
    // "The server connection preface consists of a potentially empty SETTINGS frame
    // (Section 6.5) that MUST be the first frame the server sends in the HTTP/2 connection."
    let mut client = Client::fresh(ServerConfig::default());
    let out = client.frames();
    assert_eq!(
        out,
        [
            Out::Settings {
                ack: false,
                params: vec![
                    (settings::HEADER_TABLE_SIZE, 4096),
                    (settings::ENABLE_PUSH, 0),
                    (settings::MAX_CONCURRENT_STREAMS, 100),
                    (settings::INITIAL_WINDOW_SIZE, 1 << 20),
                    (settings::MAX_FRAME_SIZE, 16_384),
                    (settings::MAX_HEADER_LIST_SIZE, 16 << 10),
                ],
            },
            Out::WindowUpdate {
                stream_id: 0,
                increment: (4 << 20) - 65_535
            },
        ]
    );
}

#[test]
fn s3_4_client_settings_are_acknowledged() {
    // "The SETTINGS frames received from a peer as part of the connection preface MUST be
    // acknowledged (see Section 6.5.3) after sending the connection preface."
    let mut client = Client::fresh(ServerConfig::default());
    client.send_ok(&concat(&[
        PREFACE.to_vec(),
        settings(&[(settings::MAX_FRAME_SIZE, 20_000)]),
    ]));
    let out = client.frames();
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(
        out[2],
        Out::Settings {
            ack: true,
            params: vec![]
        }
    );
}

#[test]
fn s3_4_preface_may_arrive_byte_by_byte() {
    let mut client = Client::fresh(ServerConfig::default());
    let bytes = concat(&[PREFACE.to_vec(), settings(&[]), ping(b"12345678")]);
    for byte in bytes.chunks(1) {
        client.send_ok(byte);
    }
    let out = client.frames();
    assert!(
        out.contains(&Out::Ping {
            ack: true,
            payload: *b"12345678"
        }),
        "{out:?}"
    );
}

#[test]
fn s3_4_invalid_preface() {
    // "Clients and servers MUST treat an invalid connection preface as a connection error
    // (Section 5.4.1) of type PROTOCOL_ERROR."
    let mut client = Client::fresh(ServerConfig::default());
    client.expect_goaway(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        ErrorCode::ProtocolError,
    );
    let mut client = Client::fresh(ServerConfig::default());
    client.send_ok(&PREFACE[..10]);
    client.expect_goaway(b"XXXX", ErrorCode::ProtocolError);
}

#[test]
fn s3_4_preface_must_be_followed_by_settings() {
    // "This sequence MUST be followed by a SETTINGS frame (Section 6.5), which MAY be empty."
    let mut client = Client::fresh(ServerConfig::default());
    client.send_ok(PREFACE);
    let debug = client.expect_goaway(&ping(b"12345678"), ErrorCode::ProtocolError);
    assert!(debug.contains("SETTINGS"), "{debug}");
}

// ------------------------------------------------------------------------- 4 frames

#[test]
fn s4_1_unused_flags_and_reserved_bit_are_ignored() {
    // "Unused flags MUST be ignored on receipt" and the reserved bit "MUST be ignored when
    // receiving".
    let mut client = Client::new();
    let mut frame = raw(kind::PING, 0xfe, 0, b"abcdefgh");
    frame[5] |= 0x80;
    client.send_ok(&frame);
    assert_eq!(
        client.frames(),
        [Out::Ping {
            ack: true,
            payload: *b"abcdefgh"
        }]
    );
}

#[test]
fn s4_2_frame_larger_than_max_frame_size() {
    // "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame exceeds the size
    // defined in SETTINGS_MAX_FRAME_SIZE"
    let mut client = Client::new();
    client.open(1, false);
    let debug = client.expect_goaway(&data(1, &[0; 16_385], false), ErrorCode::FrameSizeError);
    assert!(debug.contains("16385"), "{debug}");
    // Detected from the header alone: nothing more needs to arrive.
    let mut client = Client::new();
    client.expect_goaway(
        &raw(kind::HEADERS, 0, 1, &[0; 20_000])[..9],
        ErrorCode::FrameSizeError,
    );
    let mut client = Client::new();
    client.expect_goaway(&raw(0xee, 0, 0, &[0; 16_385]), ErrorCode::FrameSizeError);
}

#[test]
fn s4_2_frame_of_max_frame_size_is_accepted() {
    // "All implementations MUST be capable of receiving and minimally processing frames up
    // to 2^14 octets in length"
    let mut client = Client::new();
    client.open(1, false);
    client.send_ok(&data(1, &[7; 16_384], true));
    assert_eq!(data_events(&client.events()).len(), 16_384);
}

#[test]
fn s4_2_larger_advertised_frame_size() {
    let mut client = Client::with(ServerConfig {
        max_frame_size: 65_536,
        ..ServerConfig::default()
    });
    client.open(1, false);
    client.send_ok(&data(1, &[7; 65_536], true));
    assert_eq!(data_events(&client.events()).len(), 65_536);
}

#[test]
fn s4_3_hpack_decoding_error_is_a_compression_error() {
    // "A decoding error in a field block MUST be treated as a connection error (Section
    // 5.4.1) of type COMPRESSION_ERROR."
    let mut client = Client::new();
    // Indexed field with index 0 (RFC 7541 6.1).
    let frame = raw(kind::HEADERS, flags::END_HEADERS, 1, &[0x80]);
    client.expect_goaway(&frame, ErrorCode::CompressionError);
}

#[test]
fn s4_3_refused_streams_keep_the_hpack_table_in_sync() {
    // "An endpoint receiving HEADERS, PUSH_PROMISE, or CONTINUATION frames needs to
    // reassemble field blocks and perform decompression even if the frames are to be
    // discarded."
    let mut client = Client::with(ServerConfig {
        max_concurrent_streams: 1,
        ..ServerConfig::default()
    });
    client.open(1, false);
    // Stream 3 is refused, but its block adds "x-tenant: acme" to the dynamic table
    // (literal with incremental indexing, new name: RFC 7541 6.2.1). The blocks here are
    // hand-encoded so that this is the only dynamic table entry.
    let mut block = literal_block(&REQUEST);
    block.extend_from_slice(b"\x40\x08x-tenant\x04acme");
    client.expect_rst(
        &raw(
            kind::HEADERS,
            flags::END_HEADERS | flags::END_STREAM,
            3,
            &block,
        ),
        3,
        ErrorCode::RefusedStream,
    );
    client.send_ok(&rst(1, ErrorCode::Cancel));
    client.events();
    // Stream 5 refers to that entry by index 62 (the newest dynamic entry).
    let mut block = literal_block(&REQUEST);
    block.push(0x80 | 62);
    client.send_ok(&raw(
        kind::HEADERS,
        flags::END_HEADERS | flags::END_STREAM,
        5,
        &block,
    ));
    let events = client.events();
    let Some(Event::Headers { headers, .. }) = events.first() else {
        panic!("{events:?}")
    };
    assert!(
        headers.contains(&("x-tenant".to_string(), b"acme".to_vec())),
        "{headers:?}"
    );
}

// ------------------------------------------------------------------------- 5.1 states

#[test]
fn s5_1_idle_stream_frames() {
    // "Receiving any frame other than HEADERS or PRIORITY on a stream in this state MUST be
    // treated as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    for frame in [
        data(1, b"x", false),
        rst(1, ErrorCode::Cancel),
        window_update(1, 100),
        continuation(1, b"", true),
    ] {
        let mut client = Client::new();
        client.expect_goaway(&frame, ErrorCode::ProtocolError);
    }
    // PRIORITY is allowed on an idle stream and does not open it.
    let mut client = Client::new();
    client.send_ok(&priority(9, 0));
    client.open(1, true);
    assert_eq!(client.conn.open_streams(), 1);
}

#[test]
fn s5_1_half_closed_remote() {
    // "If an endpoint receives additional frames, other than WINDOW_UPDATE, PRIORITY, or
    // RST_STREAM, for a stream that is in this state, it MUST respond with a stream error
    // (Section 5.4.2) of type STREAM_CLOSED."
    let mut client = Client::new();
    client.open(1, true);
    client.send_ok(&window_update(1, 10));
    client.send_ok(&priority(1, 0));
    assert!(client.frames().is_empty());
    client.expect_rst(&data(1, b"late", false), 1, ErrorCode::StreamClosed);
    assert_eq!(
        client.events(),
        [Event::StreamReset {
            stream_id: 1,
            code: ErrorCode::StreamClosed
        }]
    );

    let mut client = Client::new();
    client.open(1, true);
    let trailers = client.headers(1, &[("x", "y")], true);
    client.expect_rst(&trailers, 1, ErrorCode::StreamClosed);

    // RST_STREAM is allowed, and not answered.
    let mut client = Client::new();
    client.open(1, true);
    client.send_ok(&rst(1, ErrorCode::Cancel));
    assert!(client.frames().is_empty());
    assert_eq!(client.conn.open_streams(), 0);
}

#[test]
fn s5_1_closed_after_peer_reset() {
    // "An endpoint MAY treat receipt of any other type of frame on a closed stream as a
    // connection error (Section 5.4.1) of type STREAM_CLOSED" (h2spec 5.1: DATA or HEADERS
    // after RST_STREAM get STREAM_CLOSED); we answer the stream only.
    let mut client = Client::new();
    client.open(1, false);
    client.send_ok(&rst(1, ErrorCode::Cancel));
    client.expect_rst(&data(1, b"x", false), 1, ErrorCode::StreamClosed);

    let mut client = Client::new();
    client.open(1, false);
    client.send_ok(&rst(1, ErrorCode::Cancel));
    let headers = client.headers(1, &[("x", "y")], true);
    client.expect_rst(&headers, 1, ErrorCode::StreamClosed);
}

#[test]
fn s5_1_closed_after_both_end_streams() {
    // "A stream enters the "closed" state after an endpoint both sends and receives a frame
    // with an END_STREAM flag set."
    let mut client = Client::new();
    client.open(1, true);
    client.conn.send_headers(1, 200, &[], true);
    client.frames();
    assert!(client.conn.is_idle());
    client.send_ok(&window_update(1, 1));
    client.send_ok(&rst(1, ErrorCode::Cancel));
    assert!(
        client.frames().is_empty(),
        "late WINDOW_UPDATE and RST_STREAM are fine"
    );
    client.expect_rst(&data(1, b"x", true), 1, ErrorCode::StreamClosed);
}

#[test]
fn s5_1_frames_after_our_reset_are_discarded() {
    // "An endpoint MUST minimally process and then discard any frames it receives in this
    // state. ... Additionally, the content of DATA frames counts toward the connection
    // flow-control window."
    let mut client = Client::new();
    client.open(1, false);
    client.conn.reset_stream(1, ErrorCode::Cancel);
    assert_eq!(
        client.frames(),
        [Out::Rst {
            stream_id: 1,
            code: ErrorCode::Cancel
        }]
    );
    let chunk = vec![0u8; 16_384];
    for _ in 0..128 {
        client.send_ok(&data(1, &chunk, false));
    }
    let headers = client.headers(1, &[("x", "y")], true);
    client.send_ok(&headers);
    assert!(client.events().is_empty());
    let out = client.frames();
    assert!(!out.iter().any(|f| matches!(f, Out::Rst { .. })), "{out:?}");
    // 2 MiB discarded: half the 4 MiB connection window comes back.
    assert_eq!(window_updates(&out, 0), 2 << 20);
}

#[test]
fn s5_1_1_even_stream_id() {
    // "Streams initiated by a client MUST use odd-numbered stream identifiers"
    let mut client = Client::new();
    let frame = client.request(2, true);
    client.expect_goaway(&frame, ErrorCode::ProtocolError);
}

#[test]
fn s5_1_1_decreasing_stream_id() {
    // "The identifier of a newly established stream MUST be numerically greater than all
    // streams that the initiating endpoint has opened or reserved. ... An endpoint that
    // receives an unexpected stream identifier MUST respond with a connection error
    // (Section 5.4.1) of type PROTOCOL_ERROR."
    let mut client = Client::new();
    client.open(5, false);
    let frame = client.request(3, true);
    let debug = client.expect_goaway(&frame, ErrorCode::ProtocolError);
    assert!(debug.contains("stream 3"), "{debug}");
    assert!(
        matches!(
            client.events().as_slice(),
            [Event::StreamReset { stream_id: 5, .. }]
        ),
        "open streams are reset on a connection error"
    );
}

#[test]
fn s5_1_1_skipped_ids_are_closed() {
    // "That is, an endpoint may skip a stream identifier, with the effect being that the
    // skipped stream is immediately closed."
    let mut client = Client::new();
    client.open(5, false);
    client.expect_rst(&data(3, b"x", false), 3, ErrorCode::StreamClosed);
}

#[test]
fn s5_1_2_concurrent_stream_limit() {
    // "An endpoint that receives a HEADERS frame that causes its advertised concurrent
    // stream limit to be exceeded MUST treat this as a stream error (Section 5.4.2) of type
    // PROTOCOL_ERROR or REFUSED_STREAM."
    let mut client = Client::with(ServerConfig {
        max_concurrent_streams: 2,
        ..ServerConfig::default()
    });
    client.open(1, true);
    client.open(3, false);
    let frame = client.request(5, true);
    client.expect_rst(&frame, 5, ErrorCode::RefusedStream);
    assert!(
        client.events().is_empty(),
        "the application never sees a refused stream"
    );
    // A refused stream's DATA is discarded.
    client.send_ok(&data(5, b"x", true));
    assert!(client.frames().is_empty());
    // Closing a stream frees a slot.
    client.conn.send_headers(1, 200, &[], true);
    client.frames();
    client.open(7, true);
    assert_eq!(client.conn.open_streams(), 2);
}

#[test]
fn s5_3_1_stream_depending_on_itself() {
    // RFC 7540 5.3.1: "A stream cannot depend on itself. An endpoint MUST treat this as a
    // stream error (Section 5.4.2) of type PROTOCOL_ERROR."
    let mut client = Client::new();
    let mut payload = 1u32.to_be_bytes().to_vec();
    payload.push(255);
    payload.extend(client.block(&REQUEST));
    let frame = raw(
        kind::HEADERS,
        flags::END_HEADERS | flags::PRIORITY,
        1,
        &payload,
    );
    client.expect_rst(&frame, 1, ErrorCode::ProtocolError);
    assert!(client.events().is_empty());

    let mut client = Client::new();
    client.open(1, false);
    client.expect_rst(&priority(1, 1), 1, ErrorCode::ProtocolError);

    // On an idle stream there is no RST_STREAM to send (RFC 9113 6.4): connection error.
    let mut client = Client::new();
    client.expect_goaway(&priority(1, 1), ErrorCode::ProtocolError);
}

// ------------------------------------------------------------------------- 5.4, 5.5

#[test]
fn s5_4_stream_error_leaves_other_streams_alone() {
    // "A stream error is an error related to a specific stream that does not affect
    // processing of other streams."
    let mut client = Client::new();
    client.open(1, false);
    client.open(3, false);
    client.expect_rst(&window_update(1, 0), 1, ErrorCode::ProtocolError);
    client.send_ok(&data(3, b"still fine", true));
    let events = client.events();
    assert_eq!(
        events[0],
        Event::StreamReset {
            stream_id: 1,
            code: ErrorCode::ProtocolError
        }
    );
    assert_eq!(data_events(&events), b"still fine");
}

#[test]
fn s5_4_1_goaway_carries_last_stream_and_reason() {
    // "An endpoint that encounters a connection error SHOULD first send a GOAWAY frame
    // (Section 6.8) with the stream identifier of the last stream that it successfully
    // received from its peer."
    let mut client = Client::new();
    client.open(1, true);
    client.open(3, false);
    client.send(&data(3, &[0; 100], false)).expect("ok");
    let error = client
        .send(&raw(kind::PING, 0, 0, &[0; 6]))
        .expect_err("error");
    assert_eq!(error.code, ErrorCode::FrameSizeError);
    let out = client.frames();
    let Some(Out::GoAway {
        last_stream_id,
        code,
        debug,
    }) = out.last()
    else {
        panic!("{out:?}")
    };
    assert_eq!((*last_stream_id, *code), (3, ErrorCode::FrameSizeError));
    assert_eq!(debug, "PING frame of 6 bytes; it must be 8");
    // The connection stays failed.
    assert_eq!(client.send(&ping(b"12345678")), Err(error));
    assert!(client.conn.wants_close());
    assert!(client.frames().is_empty());
}

#[test]
fn s5_4_2_no_rst_stream_in_response_to_rst_stream() {
    // "To avoid looping, an endpoint MUST NOT send a RST_STREAM in response to a RST_STREAM
    // frame."
    let mut client = Client::new();
    client.open(1, false);
    client.send_ok(&rst(1, ErrorCode::Cancel));
    client.send_ok(&rst(1, ErrorCode::Cancel));
    assert!(client.frames().is_empty());
}

#[test]
fn s5_5_unknown_frames_are_discarded() {
    // "Implementations MUST discard frames that have unknown or unsupported types."
    let mut client = Client::new();
    client.send_ok(&raw(0xbb, 0xff, 0, b"hello"));
    client.send_ok(&raw(0xbb, 0, 7, b"hello"));
    client.send_ok(&ping(b"abcdefgh"));
    assert_eq!(
        client.frames(),
        [Out::Ping {
            ack: true,
            payload: *b"abcdefgh"
        }]
    );
    // "An endpoint that receives a SETTINGS frame with any unknown or unsupported identifier
    // MUST ignore that setting."
    client.send_ok(&settings(&[(0x99, 1)]));
    assert_eq!(
        client.frames(),
        [Out::Settings {
            ack: true,
            params: vec![]
        }]
    );
}

#[test]
fn s5_5_unknown_frame_inside_a_header_block() {
    // "However, extension frames that appear in the middle of a field block (Section 4.3)
    // are not permitted; these MUST be treated as a connection error (Section 5.4.1) of type
    // PROTOCOL_ERROR."
    let mut client = Client::new();
    let block = client.block(&REQUEST);
    client.send_ok(&raw(kind::HEADERS, 0, 1, &block));
    client.expect_goaway(&raw(0xbb, 0, 0, b"x"), ErrorCode::ProtocolError);
}

// ------------------------------------------------------------------------- 6.1 DATA

#[test]
fn s6_1_data_on_stream_zero() {
    // "If a DATA frame is received whose Stream Identifier field is 0x00, the recipient MUST
    // respond with a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    let mut client = Client::new();
    client.expect_goaway(&data(0, b"x", false), ErrorCode::ProtocolError);
}

#[test]
fn s6_1_padding_too_long() {
    // "If the length of the padding is the length of the frame payload or greater, the
    // recipient MUST treat this as a connection error (Section 5.4.1) of type
    // PROTOCOL_ERROR."
    let mut client = Client::new();
    client.open(1, false);
    let frame = raw(kind::DATA, flags::PADDED, 1, &[5, 1, 2, 3, 4]);
    client.expect_goaway(&frame, ErrorCode::ProtocolError);
}

#[test]
fn s6_1_padding_counts_toward_flow_control() {
    // "The entire DATA frame payload is included in flow control, including the Pad Length
    // and Padding fields if present."
    let mut client = Client::with(ServerConfig {
        initial_window_size: 65_535,
        connection_window_size: 65_535,
        ..ServerConfig::default()
    });
    client.open(1, false);
    // 10 data bytes + 1 pad length byte + 200 padding = 211 flow-controlled bytes.
    let mut payload = vec![200u8];
    payload.extend_from_slice(b"0123456789");
    payload.extend_from_slice(&[0; 200]);
    for _ in 0..155 {
        client.send_ok(&raw(kind::DATA, flags::PADDED, 1, &payload));
    }
    let events = client.events();
    assert_eq!(data_events(&events).len(), 1_550, "padding is stripped");
    let out = client.frames();
    // 155 * 211 = 32705 < 32767 (half window): no update yet. One more frame crosses it.
    assert_eq!(window_updates(&out, 0), 0, "{out:?}");
    client.send_ok(&raw(kind::DATA, flags::PADDED, 1, &payload));
    client.events();
    let out = client.frames();
    assert_eq!(window_updates(&out, 0), 156 * 211);
    assert_eq!(window_updates(&out, 1), 156 * 211);
}

// ------------------------------------------------------------------------- 6.2 HEADERS

#[test]
fn s6_2_headers_on_stream_zero() {
    // "If a HEADERS frame is received whose Stream Identifier field is 0x00, the recipient
    // MUST respond with a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    let mut client = Client::new();
    let frame = client.request(0, true);
    client.expect_goaway(&frame, ErrorCode::ProtocolError);
}

#[test]
fn s6_2_padded_headers_with_priority() {
    let mut client = Client::new();
    let mut payload = vec![3u8];
    payload.extend_from_slice(&[0x80, 0, 0, 0, 10]);
    payload.extend(client.block(&REQUEST));
    payload.extend_from_slice(&[0, 0, 0]);
    let frame_flags = flags::END_HEADERS | flags::END_STREAM | flags::PADDED | flags::PRIORITY;
    client.send_ok(&raw(kind::HEADERS, frame_flags, 1, &payload));
    let events = client.events();
    assert!(
        matches!(
            &events[..],
            [Event::Headers {
                stream_id: 1,
                end_stream: true,
                ..
            }]
        ),
        "{events:?}"
    );
}

#[test]
fn s6_2_padding_too_long() {
    // "If the length of the padding is the length of the frame payload or greater, the
    // recipient MUST treat this as a connection error (Section 5.4.1) of type
    // PROTOCOL_ERROR."
    let mut client = Client::new();
    let frame = raw(
        kind::HEADERS,
        flags::PADDED | flags::END_HEADERS,
        1,
        &[4, 0x82, 0, 0],
    );
    client.expect_goaway(&frame, ErrorCode::ProtocolError);
}

#[test]
fn s6_2_headers_without_end_headers_then_other_frame() {
    // "A HEADERS frame without the END_HEADERS flag set MUST be followed by a CONTINUATION
    // frame for the same stream. A receiver MUST treat the receipt of any other type of
    // frame or a frame on a different stream as a connection error (Section 5.4.1) of type
    // PROTOCOL_ERROR."
    for next in [
        ping(b"12345678"),
        priority(1, 0),
        data(1, b"x", false),
        settings(&[]),
    ] {
        let mut client = Client::new();
        let block = client.block(&REQUEST);
        client.send_ok(&raw(kind::HEADERS, 0, 1, &block));
        client.expect_goaway(&next, ErrorCode::ProtocolError);
    }
}

// ------------------------------------------------------------------------- 6.3 PRIORITY

#[test]
fn s6_3_priority() {
    // "If a PRIORITY frame is received with a stream identifier of 0x00, the recipient MUST
    // respond with a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    let mut client = Client::new();
    client.expect_goaway(&priority(0, 1), ErrorCode::ProtocolError);
    // "A PRIORITY frame with a length other than 5 octets MUST be treated as a stream error
    // (Section 5.4.2) of type FRAME_SIZE_ERROR."
    let mut client = Client::new();
    client.open(1, false);
    client.expect_rst(
        &raw(kind::PRIORITY, 0, 1, &[0; 4]),
        1,
        ErrorCode::FrameSizeError,
    );
    // "The PRIORITY frame can be sent on a stream in any state, including "idle" or
    // "closed"."
    client.send_ok(&priority(1, 0));
    client.send_ok(&priority(101, 0));
    assert!(client.frames().is_empty());
}

// ------------------------------------------------------------------------- 6.4 RST_STREAM

#[test]
fn s6_4_rst_stream() {
    // "If a RST_STREAM frame is received with a stream identifier of 0x00, the recipient
    // MUST treat this as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    let mut client = Client::new();
    client.expect_goaway(&rst(0, ErrorCode::Cancel), ErrorCode::ProtocolError);
    // "A RST_STREAM frame with a length other than 4 octets MUST be treated as a connection
    // error (Section 5.4.1) of type FRAME_SIZE_ERROR."
    let mut client = Client::new();
    client.open(1, false);
    client.expect_goaway(
        &raw(kind::RST_STREAM, 0, 1, &[0; 3]),
        ErrorCode::FrameSizeError,
    );
}

#[test]
fn s6_4_reset_by_peer_drops_the_stream() {
    // "After receiving a RST_STREAM on a stream, the receiver MUST NOT send additional
    // frames for that stream, except for PRIORITY."
    let mut client = Client::new();
    client.open(1, true);
    client.send_ok(&rst(1, ErrorCode::Cancel));
    assert_eq!(
        client.events(),
        [Event::StreamReset {
            stream_id: 1,
            code: ErrorCode::Cancel
        }]
    );
    client.conn.send_headers(1, 200, &[], false);
    client.conn.send_data(1, b"ignored", false);
    client.conn.send_trailers(1, &[("grpc-status", b"0")]);
    assert!(client.frames().is_empty());
}

// ------------------------------------------------------------------------- 6.5 SETTINGS

#[test]
fn s6_5_settings_frame_errors() {
    // "Receipt of a SETTINGS frame with the ACK flag set and a length field value other than
    // 0 MUST be treated as a connection error (Section 5.4.1) of type FRAME_SIZE_ERROR."
    let mut client = Client::new();
    client.expect_goaway(
        &raw(kind::SETTINGS, flags::ACK, 0, &[0; 6]),
        ErrorCode::FrameSizeError,
    );
    // "If an endpoint receives a SETTINGS frame whose Stream Identifier field is anything
    // other than 0x00, the endpoint MUST respond with a connection error (Section 5.4.1) of
    // type PROTOCOL_ERROR."
    let mut client = Client::new();
    client.expect_goaway(&raw(kind::SETTINGS, 0, 1, &[]), ErrorCode::ProtocolError);
    // "A SETTINGS frame with a length other than a multiple of 6 octets MUST be treated as a
    // connection error (Section 5.4.1) of type FRAME_SIZE_ERROR."
    let mut client = Client::new();
    client.expect_goaway(
        &raw(kind::SETTINGS, 0, 0, &[0; 5]),
        ErrorCode::FrameSizeError,
    );
}

#[test]
fn s6_5_2_setting_values() {
    // SETTINGS_ENABLE_PUSH: "Any value other than 0 or 1 MUST be treated as a connection
    // error (Section 5.4.1) of type PROTOCOL_ERROR."
    let mut client = Client::new();
    client.expect_goaway(
        &settings(&[(settings::ENABLE_PUSH, 2)]),
        ErrorCode::ProtocolError,
    );
    // SETTINGS_INITIAL_WINDOW_SIZE: "Values above the maximum flow-control window size of
    // 2^31-1 MUST be treated as a connection error (Section 5.4.1) of type
    // FLOW_CONTROL_ERROR."
    let mut client = Client::new();
    client.expect_goaway(
        &settings(&[(settings::INITIAL_WINDOW_SIZE, 1 << 31)]),
        ErrorCode::FlowControlError,
    );
    // SETTINGS_MAX_FRAME_SIZE: "Values outside this range MUST be treated as a connection
    // error (Section 5.4.1) of type PROTOCOL_ERROR."
    for value in [16_383, 1 << 24] {
        let mut client = Client::new();
        client.expect_goaway(
            &settings(&[(settings::MAX_FRAME_SIZE, value)]),
            ErrorCode::ProtocolError,
        );
    }
}

#[test]
fn s6_5_2_max_frame_size_is_honoured() {
    let mut client = Client::new();
    client.send_ok(&settings(&[
        (settings::MAX_FRAME_SIZE, 20_000),
        (settings::INITIAL_WINDOW_SIZE, 1 << 20),
    ]));
    client.send_ok(&window_update(0, 1 << 20));
    client.open(1, true);
    client.frames();
    client.conn.send_headers(1, 200, &[], false);
    client.conn.send_data(1, &[1; 50_000], true);
    let sizes: Vec<usize> = client
        .frames()
        .iter()
        .filter_map(|f| match f {
            Out::Data { data, .. } => Some(data.len()),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, [20_000, 20_000, 10_000]);
}

#[test]
fn s6_5_2_header_table_size_zero() {
    // SETTINGS_HEADER_TABLE_SIZE: "The encoder can select any size equal to or less than
    // this value". A client with a 0-octet table must get blocks that never index.
    let mut client = Client::new();
    client.decoder = Decoder::new(0);
    client.send_ok(&settings(&[(settings::HEADER_TABLE_SIZE, 0)]));
    client.open(1, true);
    client.open(3, true);
    client.frames();
    for id in [1, 3] {
        client
            .conn
            .send_headers(id, 200, &[("content-type", b"application/grpc")], true);
        let out = client.frames();
        let Some(Out::Headers { fields, .. }) = out.first() else {
            panic!("{out:?}")
        };
        assert_eq!(fields[0], (":status".to_string(), "200".to_string()));
        assert_eq!(
            fields[1],
            ("content-type".to_string(), "application/grpc".to_string())
        );
    }
}

#[test]
fn s6_5_3_settings_are_acknowledged_once_each() {
    // "Once all values have been processed, the recipient MUST immediately emit a SETTINGS
    // frame with the ACK flag set."
    let mut client = Client::new();
    client.send_ok(&concat(&[
        settings(&[(settings::ENABLE_PUSH, 0)]),
        settings(&[]),
    ]));
    assert_eq!(
        client.frames(),
        [
            Out::Settings {
                ack: true,
                params: vec![]
            },
            Out::Settings {
                ack: true,
                params: vec![]
            }
        ]
    );
}

// ------------------------------------------------------------------------- 6.6 - 6.8

#[test]
fn s6_6_push_promise_from_client() {
    // RFC 9113 8.4: "A client cannot push. Thus, servers MUST treat the receipt of a
    // PUSH_PROMISE frame as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    let mut client = Client::new();
    client.open(1, false);
    let frame = raw(
        kind::PUSH_PROMISE,
        flags::END_HEADERS,
        1,
        &[0, 0, 0, 2, 0x82],
    );
    client.expect_goaway(&frame, ErrorCode::ProtocolError);
}

#[test]
fn s6_7_ping() {
    // "Receivers of a PING frame that does not include an ACK flag MUST send a PING frame
    // with the ACK flag set in response, with an identical frame payload."
    let mut client = Client::new();
    client.send_ok(&ping(b"\x00\x01\x02\x03\x04\x05\x06\x07"));
    assert_eq!(
        client.frames(),
        [Out::Ping {
            ack: true,
            payload: *b"\x00\x01\x02\x03\x04\x05\x06\x07"
        }]
    );
    // "An endpoint MUST NOT respond to PING frames containing this flag."
    client.send_ok(&raw(kind::PING, flags::ACK, 0, b"abcdefgh"));
    assert!(client.frames().is_empty());
    // "If a PING frame is received with a Stream Identifier field value other than 0x00,
    // the recipient MUST respond with a connection error (Section 5.4.1) of type
    // PROTOCOL_ERROR."
    let mut client = Client::new();
    client.expect_goaway(
        &raw(kind::PING, 0, 1, b"abcdefgh"),
        ErrorCode::ProtocolError,
    );
    // "Receipt of a PING frame with a length field value other than 8 MUST be treated as a
    // connection error (Section 5.4.1) of type FRAME_SIZE_ERROR."
    let mut client = Client::new();
    client.expect_goaway(
        &raw(kind::PING, 0, 0, b"abcdefghi"),
        ErrorCode::FrameSizeError,
    );
}

#[test]
fn s6_8_goaway_from_client() {
    // "Receivers of a GOAWAY frame MUST NOT open additional streams on the connection";
    // streams already open finish.
    let mut client = Client::new();
    client.open(1, true);
    client.send_ok(&raw(kind::GOAWAY, 0, 0, &[0, 0, 0, 0, 0, 0, 0, 0]));
    assert!(!client.conn.wants_close());
    let frame = client.request(3, true);
    client.expect_rst(&frame, 3, ErrorCode::RefusedStream);
    client.conn.send_headers(1, 200, &[], true);
    client.frames();
    assert!(client.conn.wants_close());
    // "An endpoint MUST treat a GOAWAY frame with a stream identifier other than 0x00 as a
    // connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    let mut client = Client::new();
    client.expect_goaway(&raw(kind::GOAWAY, 0, 1, &[0; 8]), ErrorCode::ProtocolError);
}

#[test]
fn s6_8_graceful_shutdown() {
    // "The sender of a GOAWAY frame might gracefully shut down a connection by sending a
    // GOAWAY frame, maintaining the connection in an "open" state until all in-progress
    // streams complete." and "Once the GOAWAY is sent, the sender will ignore frames sent
    // on streams initiated by the receiver if the stream has an identifier higher than the
    // included last stream identifier." (RFC 9113 8.7: REFUSED_STREAM says so explicitly.)
    let mut client = Client::new();
    client.open(1, false);
    client.conn.shutdown();
    assert_eq!(
        client.frames(),
        [Out::GoAway {
            last_stream_id: 1,
            code: ErrorCode::NoError,
            debug: "server shutting down".into()
        }]
    );
    // A stream opened after the GOAWAY is refused; its DATA is discarded.
    let frame = client.request(3, false);
    client.expect_rst(&frame, 3, ErrorCode::RefusedStream);
    client.send_ok(&data(3, b"ignored", true));
    assert!(client.events().is_empty());
    assert!(client.frames().is_empty());
    client.send_ok(&data(1, b"body", true));
    assert_eq!(data_events(&client.events()), b"body");
    assert!(!client.conn.wants_close() && !client.conn.is_idle());
    client.conn.send_headers(1, 200, &[], false);
    client.conn.send_data(1, b"ok", true);
    let out = client.frames();
    assert_eq!(response_data(&out, 1), b"ok");
    assert!(client.conn.is_idle() && client.conn.wants_close());
}

// ------------------------------------------------------------------------- 6.9 flow control

#[test]
fn s6_9_window_update_errors() {
    // "A WINDOW_UPDATE frame with a length other than 4 octets MUST be treated as a
    // connection error (Section 5.4.1) of type FRAME_SIZE_ERROR."
    let mut client = Client::new();
    client.expect_goaway(
        &raw(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 1]),
        ErrorCode::FrameSizeError,
    );
    // "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a flow-control window
    // increment of 0 as a stream error (Section 5.4.2) of type PROTOCOL_ERROR; errors on the
    // connection flow-control window MUST be treated as a connection error"
    let mut client = Client::new();
    client.expect_goaway(&window_update(0, 0), ErrorCode::ProtocolError);
    let mut client = Client::new();
    client.open(1, false);
    client.expect_rst(&window_update(1, 0), 1, ErrorCode::ProtocolError);
}

#[test]
fn s6_9_1_send_window_overflow() {
    // "If a sender receives a WINDOW_UPDATE that causes a flow-control window to exceed this
    // maximum, it MUST terminate either the stream or the connection, as appropriate. For
    // streams, the sender sends a RST_STREAM with an error code of FLOW_CONTROL_ERROR; for
    // the connection, a GOAWAY frame with an error code of FLOW_CONTROL_ERROR is sent."
    let mut client = Client::new();
    client.send_ok(&window_update(0, (1 << 31) - 1 - 65_535));
    client.expect_goaway(&window_update(0, 1), ErrorCode::FlowControlError);

    let mut client = Client::new();
    client.open(1, false);
    client.send_ok(&window_update(1, (1 << 31) - 1 - 65_535));
    client.expect_rst(&window_update(1, 1), 1, ErrorCode::FlowControlError);
}

#[test]
fn s6_9_1_data_beyond_the_receive_window() {
    // "A receiver MAY respond with a stream error (Section 5.4.2) or connection error
    // (Section 5.4.1) of type FLOW_CONTROL_ERROR if it is unable to accept a frame."
    let mut client = Client::with(ServerConfig {
        initial_window_size: 65_535,
        connection_window_size: 65_535,
        ..ServerConfig::default()
    });
    client.open(1, false);
    for _ in 0..3 {
        client.send_ok(&data(1, &[0; 16_384], false));
    }
    // Events not taken: no credit went back. 49152 of 65535 used.
    let debug = client.expect_goaway(&data(1, &[0; 16_384], false), ErrorCode::FlowControlError);
    assert_eq!(
        debug,
        "DATA frame of 16384 bytes exceeds the connection window of 16383"
    );
}

#[test]
fn s6_9_1_stream_window_smaller_than_connection_window() {
    let mut client = Client::with(ServerConfig {
        initial_window_size: 20_000,
        ..ServerConfig::default()
    });
    client.open(1, false);
    client.send_ok(&data(1, &[0; 16_384], false));
    let debug = client.expect_goaway(&data(1, &[0; 16_384], false), ErrorCode::FlowControlError);
    assert!(
        debug.contains("stream window of 3616 on stream 1"),
        "{debug}"
    );
}

#[test]
fn s6_9_1_credit_returns_when_events_are_taken() {
    // "The receiver of a frame sends a WINDOW_UPDATE frame as it consumes data and frees up
    // space in flow-control windows. Separate WINDOW_UPDATE frames are sent for the stream-
    // and connection-level flow-control windows."
    let mut client = Client::new();
    client.open(1, false);
    for _ in 0..40 {
        client.send_ok(&data(1, &[0; 16_384], false));
    }
    assert!(client.frames().is_empty(), "nothing consumed yet");
    let events = client.events();
    assert_eq!(data_events(&events).len(), 40 * 16_384);
    let out = client.frames();
    // Stream window 1 MiB: an update per 512 KiB consumed; connection 4 MiB: none yet.
    assert_eq!(
        out,
        [Out::WindowUpdate {
            stream_id: 1,
            increment: 32 * 16_384
        }]
    );
    // The client can keep sending indefinitely as long as the events are taken.
    for _ in 0..400 {
        client.send_ok(&data(1, &[0; 16_384], false));
        client.events();
    }
    let out = client.frames();
    assert!(window_updates(&out, 0) >= 2 << 20, "{out:?}");
}

#[test]
fn s6_9_1_send_side_respects_windows() {
    // h2spec 6.9.1: with SETTINGS_INITIAL_WINDOW_SIZE 1 the server sends a DATA frame of
    // length 1. "The sender MUST NOT send a flow-controlled frame with a length that exceeds
    // the space available in either of the flow-control windows advertised by the
    // receiver."
    let mut client = Client::new();
    client.send_ok(&settings(&[(settings::INITIAL_WINDOW_SIZE, 1)]));
    client.open(1, true);
    client.frames();
    client.conn.send_headers(1, 200, &[], false);
    client.conn.send_data(1, b"hello", true);
    let out = client.frames();
    assert_eq!(
        out[1],
        Out::Data {
            stream_id: 1,
            data: b"h".to_vec(),
            end_stream: false
        }
    );
    assert_eq!(out.len(), 2);
    assert_eq!(client.conn.queued_send_bytes(1), 4);
    client.send_ok(&window_update(1, 10));
    assert_eq!(
        client.frames(),
        [Out::Data {
            stream_id: 1,
            data: b"ello".to_vec(),
            end_stream: true
        }]
    );
    assert!(client.conn.is_idle());
}

#[test]
fn s6_9_2_initial_window_size_change_adjusts_open_streams() {
    // "When the value of SETTINGS_INITIAL_WINDOW_SIZE changes, a receiver MUST adjust the
    // size of all stream flow-control windows that it maintains by the difference between
    // the new value and the old value." and "A sender MUST track the negative flow-control
    // window and MUST NOT send new flow-controlled frames until it receives WINDOW_UPDATE
    // frames that cause the flow-control window to become positive."
    let mut client = Client::new();
    client.send_ok(&window_update(0, 1 << 20));
    client.open(1, true);
    client.conn.send_headers(1, 200, &[], false);
    client.conn.send_data(1, &[9; 100_000], true);
    let out = client.frames();
    assert_eq!(response_data(&out, 1).len(), 65_535);
    // Shrink the initial window by 1000: the window is now -1000.
    client.send_ok(&settings(&[(settings::INITIAL_WINDOW_SIZE, 64_535)]));
    assert_eq!(
        client.frames(),
        [Out::Settings {
            ack: true,
            params: vec![]
        }]
    );
    client.send_ok(&window_update(1, 1_000));
    assert!(client.frames().is_empty(), "window back at 0");
    // Growing it sends the rest.
    client.send_ok(&settings(&[(settings::INITIAL_WINDOW_SIZE, 200_000)]));
    let out = client.frames();
    assert_eq!(response_data(&out, 1).len(), 100_000 - 65_535);
    assert!(matches!(
        out.last(),
        Some(Out::Data {
            end_stream: true,
            ..
        })
    ));
}

#[test]
fn s6_9_2_initial_window_size_change_overflow() {
    // "An endpoint MUST treat a change to SETTINGS_INITIAL_WINDOW_SIZE that causes any
    // flow-control window to exceed the maximum size as a connection error (Section 5.4.1)
    // of type FLOW_CONTROL_ERROR."
    let mut client = Client::new();
    client.open(1, false);
    client.send_ok(&window_update(1, (1 << 31) - 1 - 65_535));
    client.expect_goaway(
        &settings(&[(settings::INITIAL_WINDOW_SIZE, 65_536)]),
        ErrorCode::FlowControlError,
    );
}

#[test]
fn s6_9_3_data_sent_before_a_smaller_window_is_acknowledged() {
    // "the receiver MUST be prepared to receive data that exceeds this window size, since
    // the sender might send data that exceeds the lower limit prior to processing the
    // SETTINGS frame."
    let mut client = Client::fresh(ServerConfig {
        initial_window_size: 16_384,
        ..ServerConfig::default()
    });
    client.send_ok(&concat(&[PREFACE.to_vec(), settings(&[])]));
    let frame = client.request(1, false);
    client.send_ok(&frame);
    // Our SETTINGS is not acknowledged: the client may use the default 65,535 window.
    // (The events are not taken, so no credit goes back.)
    for _ in 0..3 {
        client.send_ok(&data(1, &[0; 16_384], false));
    }
    // Once it is acknowledged, the window is what we advertised less what was sent:
    // 16,384 - 49,152 < 0.
    client.send_ok(&settings_ack());
    client.frames();
    client.expect_goaway(&data(1, &[0; 100], false), ErrorCode::FlowControlError);
    let events = client.events();
    assert_eq!(data_events(&events).len(), 3 * 16_384);
}

// ------------------------------------------------------------------------- 6.10 CONTINUATION

#[test]
fn s6_10_header_block_across_continuations() {
    // "Any number of CONTINUATION frames can be sent, as long as the preceding frame is on
    // the same stream and is a HEADERS, PUSH_PROMISE, or CONTINUATION frame without the
    // END_HEADERS flag set."
    let mut client = Client::new();
    let block = client.block(&REQUEST);
    let (a, rest) = block.split_at(3);
    let (b, c) = rest.split_at(rest.len() / 2);
    client.send_ok(&concat(&[
        raw(kind::HEADERS, flags::END_STREAM, 1, a),
        continuation(1, b, false),
        continuation(1, c, true),
    ]));
    let events = client.events();
    let [Event::Headers {
        method,
        path,
        authority,
        headers,
        end_stream: true,
        ..
    }] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!(method, "POST");
    assert_eq!(path, REQUEST[2].1);
    assert_eq!(authority.as_deref(), Some("localhost:4317"));
    assert_eq!(
        headers,
        &[
            ("content-type".to_string(), b"application/grpc".to_vec()),
            ("te".to_string(), b"trailers".to_vec())
        ]
    );
}

#[test]
fn s6_10_continuation_errors() {
    // "A CONTINUATION frame MUST be preceded by a HEADERS, PUSH_PROMISE or CONTINUATION frame
    // without the END_HEADERS flag set. A recipient that observes violation of this rule
    // MUST respond with a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    let mut client = Client::new();
    client.open(1, false);
    client.expect_goaway(&continuation(1, b"", true), ErrorCode::ProtocolError);
    // "... or a frame on a different stream as a connection error (Section 5.4.1) of type
    // PROTOCOL_ERROR."
    let mut client = Client::new();
    let block = client.block(&REQUEST);
    client.send_ok(&raw(kind::HEADERS, 0, 1, &block));
    client.expect_goaway(&continuation(3, b"", true), ErrorCode::ProtocolError);
    // "If a CONTINUATION frame is received with a Stream Identifier field of 0x00, the
    // recipient MUST respond with a connection error (Section 5.4.1) of type
    // PROTOCOL_ERROR."
    let mut client = Client::new();
    client.expect_goaway(&continuation(0, b"", true), ErrorCode::ProtocolError);
}

// ------------------------------------------------------------------------- 8 HTTP semantics

#[test]
fn s8_1_trailers() {
    let mut client = Client::new();
    client.open(1, false);
    client.send_ok(&data(1, b"body", false));
    let trailers = client.headers(1, &[("x-checksum", "abc")], true);
    client.send_ok(&trailers);
    assert_eq!(
        client.events(),
        [
            Event::Data {
                stream_id: 1,
                data: b"body".to_vec(),
                end_stream: false
            },
            Event::Trailers {
                stream_id: 1,
                headers: vec![("x-checksum".to_string(), b"abc".to_vec())]
            }
        ]
    );
}

#[test]
fn s8_1_second_headers_without_end_stream() {
    // "An endpoint that receives a HEADERS frame without the END_STREAM flag set after
    // receiving the HEADERS frame that opens a request ... MUST treat the corresponding
    // request or response as malformed (Section 8.1.1)."
    let mut client = Client::new();
    client.open(1, false);
    let frame = client.headers(1, &[("x", "y")], false);
    client.expect_rst(&frame, 1, ErrorCode::ProtocolError);
    // "Trailers MUST NOT include pseudo-header fields" (8.1, 8.3).
    let mut client = Client::new();
    client.open(1, false);
    let frame = client.headers(1, &[(":path", "/")], true);
    client.expect_rst(&frame, 1, ErrorCode::ProtocolError);
}

#[test]
fn s8_1_1_content_length_mismatch() {
    // "A request or response is also malformed if the value of a content-length header field
    // does not equal the sum of the DATA frame payload lengths that form the content" and
    // "Malformed requests or responses that are detected MUST be treated as a stream error
    // (Section 5.4.2) of type PROTOCOL_ERROR."
    let mut with_length = REQUEST.to_vec();
    with_length.push(("content-length", "10"));
    // Fewer bytes than announced.
    let mut client = Client::new();
    let frame = client.headers(1, &with_length, false);
    client.send_ok(&frame);
    client.expect_rst(&data(1, b"short", true), 1, ErrorCode::ProtocolError);
    // More bytes than announced, spread over frames.
    let mut client = Client::new();
    let frame = client.headers(1, &with_length, false);
    client.send_ok(&frame);
    client.send_ok(&data(1, b"012345", false));
    client.expect_rst(&data(1, b"012345", false), 1, ErrorCode::ProtocolError);
    // No body at all.
    let mut client = Client::new();
    let frame = client.headers(1, &with_length, true);
    client.expect_rst(&frame, 1, ErrorCode::ProtocolError);
    // Exactly right.
    let mut client = Client::new();
    let frame = client.headers(1, &with_length, false);
    client.send_ok(&frame);
    client.send_ok(&data(1, b"0123456789", true));
    assert!(client.frames().is_empty());
}

#[test]
fn s8_2_and_8_3_malformed_requests() {
    // 8.2: "Field names MUST be converted to lowercase"; 8.2.1 field validity; 8.2.2: "Any
    // message containing connection-specific header fields MUST be treated as malformed";
    // 8.3: undefined pseudo-headers, pseudo-headers after regular fields, repeated
    // pseudo-headers; 8.3.1: "All HTTP/2 requests MUST include exactly one valid value for
    // the ":method", ":scheme", and ":path" pseudo-header fields" and ":path" "MUST NOT be
    // empty for "http" or "https" URIs". Each is a stream error of type PROTOCOL_ERROR.
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![(":scheme", "http"), (":path", "/")],
        vec![(":method", "GET"), (":path", "/")],
        vec![(":method", "GET"), (":scheme", "http")],
        vec![(":method", "GET"), (":scheme", "http"), (":path", "")],
        vec![
            (":method", "GET"),
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":status", "200"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":foo", "x"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "http"),
            ("accept", "*/*"),
            (":path", "/"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            ("Accept", "*/*"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            ("connection", "close"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            ("keep-alive", "5"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            ("upgrade", "h2c"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            ("transfer-encoding", "x"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            ("proxy-connection", "1"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            ("te", "gzip"),
        ],
        vec![
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            ("x", "a\r\nb: c"),
        ],
    ];
    for fields in cases {
        let mut client = Client::new();
        let frame = client.headers(1, &fields, true);
        client.expect_rst(&frame, 1, ErrorCode::ProtocolError);
        assert!(
            client.events().is_empty(),
            "{fields:?} reached the application"
        );
        // The connection goes on.
        client.open(3, true);
    }
}

#[test]
fn s8_2_3_cookie_crumbs_are_joined() {
    // "If there are multiple Cookie header fields after decompression, these MUST be
    // concatenated into a single octet string using the two-octet delimiter of 0x3b, 0x20
    // (the ASCII string "; ") before being passed into ... a generic HTTP server
    // application."
    let mut client = Client::new();
    let mut fields = REQUEST.to_vec();
    fields.extend([("cookie", "a=b"), ("cookie", "c=d")]);
    let frame = client.headers(1, &fields, true);
    client.send_ok(&frame);
    let events = client.events();
    let [Event::Headers { headers, .. }] = &events[..] else {
        panic!("{events:?}")
    };
    assert!(
        headers.contains(&("cookie".to_string(), b"a=b; c=d".to_vec())),
        "{headers:?}"
    );
}

// ------------------------------------------------------------------------- 10.5 floods

#[test]
fn s10_5_rapid_reset() {
    // CVE-2023-44487: streams opened and reset by the client in a loop. RFC 9113 10.5: "An
    // endpoint MAY treat activity that is suspicious as a connection error (Section 5.4.1)
    // of type ENHANCE_YOUR_CALM."
    let mut client = Client::new();
    let mut result = Ok(());
    let mut opened = 0;
    for i in 0..200u32 {
        let id = 2 * i + 1;
        let frame = client.request(id, false);
        result = client.send(&concat(&[frame, rst(id, ErrorCode::Cancel)]));
        client.events();
        client.frames();
        opened += 1;
        if result.is_err() {
            break;
        }
    }
    let error = result.expect_err("rapid reset detected");
    assert_eq!(error.code, ErrorCode::EnhanceYourCalm);
    assert_eq!(opened, 101, "the limit is 100 resets per 1000 frames");
    assert!(error.reason.contains("rapid reset"), "{}", error.reason);
}

#[test]
fn s10_5_resets_spread_out_are_fine() {
    let mut client = Client::new();
    for i in 0..300u32 {
        let id = 2 * i + 1;
        client.open(id, false);
        // Ten useful frames per reset keep it under 100 per 1000 frames.
        for _ in 0..9 {
            client.send_ok(&data(id, b"x", false));
        }
        client.send_ok(&rst(id, ErrorCode::Cancel));
        client.events();
    }
}

#[test]
fn s10_5_ping_flood_without_reading() {
    // RFC 9113 10.5: "An endpoint is required to respond to a PING frame." - a peer that
    // sends PINGs and does not read the answers must not make us queue without bound.
    let mut client = Client::new();
    let flood: Vec<u8> = (0..1_001u32).flat_map(|_| ping(b"pingpong")).collect();
    let debug = client.expect_goaway(&flood, ErrorCode::EnhanceYourCalm);
    assert!(debug.contains("1001 replies"), "{debug}");
}

#[test]
fn s10_5_pings_that_are_read_are_fine() {
    let mut client = Client::new();
    for _ in 0..5_000 {
        client.send_ok(&ping(b"pingpong"));
        assert_eq!(client.frames().len(), 1);
    }
}

#[test]
fn s10_5_settings_flood() {
    // RFC 9113 10.5: "Each SETTINGS frame requires acknowledgment."
    let mut client = Client::new();
    let flood: Vec<u8> = (0..1_001u32)
        .flat_map(|_| settings(&[(settings::ENABLE_PUSH, 0)]))
        .collect();
    client.expect_goaway(&flood, ErrorCode::EnhanceYourCalm);
}

#[test]
fn s10_5_empty_frame_flood() {
    // CVE-2019-9518. RFC 9113 10.5: "Large numbers of small or empty frames can be abused to
    // cause a peer to expend time processing frame headers."
    let mut client = Client::new();
    client.open(1, false);
    let flood: Vec<u8> = (0..101u32).flat_map(|_| data(1, b"", false)).collect();
    let debug = client.expect_goaway(&flood, ErrorCode::EnhanceYourCalm);
    assert!(debug.contains("without content"), "{debug}");
    // Empty unknown frames count too.
    let mut client = Client::new();
    let flood: Vec<u8> = (0..101u32).flat_map(|_| raw(0xbb, 0, 0, b"")).collect();
    client.expect_goaway(&flood, ErrorCode::EnhanceYourCalm);
}

#[test]
fn s10_5_continuation_flood() {
    // CVE-2024-27316: an endless header block of CONTINUATION frames.
    let mut client = Client::new();
    let block = client.block(&REQUEST);
    client.send_ok(&raw(kind::HEADERS, 0, 1, &block));
    for _ in 0..32 {
        client.send_ok(&continuation(1, b"\x00\x01a\x01b", false));
    }
    let debug = client.expect_goaway(
        &continuation(1, b"\x00\x01a\x01b", false),
        ErrorCode::EnhanceYourCalm,
    );
    assert!(debug.contains("CONTINUATION"), "{debug}");
    // A block larger than twice the header list limit, in few frames.
    let mut client = Client::new();
    client.send_ok(&raw(kind::HEADERS, 0, 1, &block));
    client.send_ok(&continuation(1, &[0; 16_384], false));
    let debug = client.expect_goaway(
        &continuation(1, &[0; 16_384], false),
        ErrorCode::EnhanceYourCalm,
    );
    assert!(debug.contains("exceeds the limit of 32768"), "{debug}");
}

#[test]
fn s10_5_1_header_list_too_large_gets_431() {
    // "A server that receives a larger field block than it is willing to handle can send an
    // HTTP 431 (Request Header Fields Too Large) status code [RFC6585]. ... The field block
    // MUST be processed to ensure a consistent connection state, unless the connection is
    // closed."
    let mut client = Client::with(ServerConfig {
        max_header_list_bytes: 8 << 10,
        ..ServerConfig::default()
    });
    let big = "v".repeat(3_000);
    let mut fields = REQUEST.to_vec();
    fields.extend([
        ("x-a", big.as_str()),
        ("x-b", big.as_str()),
        ("x-c", big.as_str()),
    ]);
    let frame = client.headers(1, &fields, false);
    client.send_ok(&frame);
    assert!(client.events().is_empty());
    let out = client.frames();
    assert_eq!(
        out,
        [
            Out::Headers {
                stream_id: 1,
                end_stream: true,
                fields: vec![(":status".into(), "431".into())],
                frames: 1
            },
            Out::Rst {
                stream_id: 1,
                code: ErrorCode::NoError
            }
        ]
    );
    // The body that was in flight is discarded; the connection goes on.
    client.send_ok(&data(1, b"body", true));
    client.open(3, true);
}

#[test]
fn s10_5_request_body_limit() {
    let mut client = Client::with(ServerConfig {
        max_request_body_bytes: 20_000,
        ..ServerConfig::default()
    });
    client.open(1, false);
    client.send_ok(&data(1, &[0; 16_000], false));
    // This frame crosses the limit and is still delivered, so the application can answer.
    client.send_ok(&data(1, &[0; 16_000], false));
    assert_eq!(data_events(&client.events()).len(), 32_000);
    client.expect_rst(&data(1, &[0; 10], false), 1, ErrorCode::EnhanceYourCalm);
    assert_eq!(
        client.events(),
        [Event::StreamReset {
            stream_id: 1,
            code: ErrorCode::EnhanceYourCalm
        }]
    );
}

// ------------------------------------------------------------------------- responses

#[test]
fn grpc_exchange_with_send_window_blocking() {
    // A unary gRPC call: HEADERS + DATA(END_STREAM) in; HEADERS, DATA, trailers out. The
    // 200 KB response exceeds the client's default 65,535-octet windows, so it goes out as
    // WINDOW_UPDATEs arrive, and the trailers follow the last byte.
    let mut client = Client::new();
    client.open(1, false);
    let message = b"\x00\x00\x00\x00\x05hello";
    client.send_ok(&data(1, message, true));
    assert_eq!(
        client.events(),
        [Event::Data {
            stream_id: 1,
            data: message.to_vec(),
            end_stream: true
        }]
    );
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    client
        .conn
        .send_headers(1, 200, &[("content-type", b"application/grpc")], false);
    client.conn.send_data(1, &body, false);
    client
        .conn
        .send_trailers(1, &[("grpc-status", b"0"), ("grpc-message", b"")]);
    let out = client.frames();
    assert_eq!(
        out[0],
        Out::Headers {
            stream_id: 1,
            end_stream: false,
            fields: vec![
                (":status".into(), "200".into()),
                ("content-type".into(), "application/grpc".into())
            ],
            frames: 1
        }
    );
    let mut received = response_data(&out, 1);
    assert_eq!(received.len(), 65_535, "blocked by both windows");
    assert!(out[1..].iter().all(|f| matches!(
        f,
        Out::Data {
            end_stream: false,
            ..
        }
    )));
    assert!(!client.conn.wants_write());
    // The stream window opens first: still blocked on the connection window.
    client.send_ok(&window_update(1, 1 << 20));
    assert!(client.frames().is_empty());
    let mut trailers = None;
    while trailers.is_none() {
        client.send_ok(&window_update(0, 30_000));
        for frame in client.frames() {
            match frame {
                Out::Data {
                    data, end_stream, ..
                } => {
                    assert!(!end_stream);
                    assert!(data.len() <= 30_000);
                    received.extend(data);
                }
                Out::Headers {
                    end_stream: true,
                    fields,
                    ..
                } => {
                    assert_eq!(received.len(), body.len(), "trailers after all data");
                    trailers = Some(fields);
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(received, body);
    assert_eq!(
        trailers.unwrap(),
        [
            ("grpc-status".to_string(), "0".to_string()),
            ("grpc-message".to_string(), String::new())
        ]
    );
    assert!(client.conn.is_idle());
    assert!(!client.conn.wants_close());
}

#[test]
fn responses_interleave_round_robin() {
    let mut client = Client::new();
    client.send_ok(&concat(&[
        settings(&[(settings::INITIAL_WINDOW_SIZE, 1 << 20)]),
        window_update(0, 1 << 20),
    ]));
    client.open(1, true);
    client.open(3, true);
    client.frames();
    for id in [1, 3] {
        client.conn.send_headers(id, 200, &[], false);
        client.conn.send_data(id, &vec![id as u8; 40_000], true);
    }
    let out = client.frames();
    let order: Vec<u32> = out
        .iter()
        .filter_map(|f| match f {
            Out::Data { stream_id, .. } => Some(*stream_id),
            _ => None,
        })
        .collect();
    assert_eq!(order, [1, 3, 1, 3, 1, 3]);
    assert_eq!(response_data(&out, 3), vec![3; 40_000]);
}

#[test]
fn large_response_headers_use_continuation() {
    // RFC 9113 4.3: "Field blocks MUST be transmitted as a contiguous sequence of frames,
    // with no interleaved frames of any other type or from any other stream."
    let mut client = Client::new();
    client.open(1, true);
    client.frames();
    let big: Vec<u8> = (0..40_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    client.conn.send_headers(1, 200, &[("x-big", &big)], true);
    let out = client.frames();
    let [Out::Headers {
        fields,
        frames,
        end_stream: true,
        ..
    }] = &out[..]
    else {
        panic!("{out:?}")
    };
    // Even Huffman-coded, 40,000 octets need more than one 16,384-octet frame.
    assert!(*frames >= 2, "{frames} frames");
    assert_eq!(fields[1].1.len(), 40_000);
}

#[test]
fn reset_no_error_after_a_queued_response() {
    // RFC 9113 8.1: "a server MAY request that the client abort transmission of a request
    // without error by sending a RST_STREAM with an error code of NO_ERROR after sending a
    // complete response (i.e., a frame with the END_STREAM flag set)."
    let mut client = Client::new();
    client.open(1, false);
    client.conn.send_headers(1, 413, &[], false);
    client.conn.send_data(1, b"too large", true);
    client.conn.reset_stream(1, ErrorCode::NoError);
    let out = client.frames();
    assert_eq!(response_data(&out, 1), b"too large");
    assert_eq!(
        out.last(),
        Some(&Out::Rst {
            stream_id: 1,
            code: ErrorCode::NoError
        })
    );
    assert!(client.conn.is_idle());
    // Other codes drop what is queued.
    let mut client = Client::new();
    client.open(1, false);
    client.conn.send_headers(1, 200, &[], false);
    client.conn.send_data(1, b"dropped", true);
    client.conn.reset_stream(1, ErrorCode::Cancel);
    let out = client.frames();
    assert!(response_data(&out, 1).is_empty());
    assert_eq!(
        out.last(),
        Some(&Out::Rst {
            stream_id: 1,
            code: ErrorCode::Cancel
        })
    );
}

#[test]
fn trailers_only_response_and_empty_end() {
    let mut client = Client::new();
    client.open(1, true);
    client.open(3, true);
    client.frames();
    client
        .conn
        .send_headers(1, 200, &[("grpc-status", b"5")], true);
    client.conn.send_headers(3, 200, &[], false);
    client.conn.send_data(3, b"", true);
    let out = client.frames();
    assert!(matches!(
        &out[0],
        Out::Headers {
            stream_id: 1,
            end_stream: true,
            ..
        }
    ));
    assert!(matches!(
        &out[1],
        Out::Headers {
            stream_id: 3,
            end_stream: false,
            ..
        }
    ));
    assert_eq!(
        out[2],
        Out::Data {
            stream_id: 3,
            data: vec![],
            end_stream: true
        }
    );
    assert!(client.conn.is_idle());
}

#[test]
fn take_output_is_bounded_per_call() {
    let mut client = Client::with(ServerConfig {
        max_output_buffer_bytes: 40_000,
        ..ServerConfig::default()
    });
    client.send_ok(&concat(&[
        settings(&[(settings::INITIAL_WINDOW_SIZE, 1 << 20)]),
        window_update(0, 1 << 20),
    ]));
    client.open(1, true);
    client.frames();
    client.conn.send_headers(1, 200, &[], false);
    client.conn.send_data(1, &[0; 200_000], true);
    let first = client.frames_once();
    let sent = response_data(&first, 1).len();
    assert!((40_000..40_000 + 16_384).contains(&sent), "{sent}");
    assert!(client.conn.wants_write());
    let rest = client.frames();
    assert_eq!(sent + response_data(&rest, 1).len(), 200_000);
}

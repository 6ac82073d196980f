//! Realistic inputs, built the way the load generator builds its traffic.
//!
//! - [`otlp_requests`]: `ExportTraceServiceRequest` bytes from the loadgen's templates
//!   (default shape: 10 traces of 10 spans per request, 8 attributes per span, some events
//!   and errors; about 430 bytes per span), stamped with fresh IDs and times.
//! - [`capture_h2_client`]: the exact bytes the `h2` crate's client writes for a run of
//!   Export calls (the loadgen's client code, against an `h2` crate server over an in-memory
//!   pipe), for the HPACK and frame benches.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use allegro_h2::frame::{self, Frame};
use allegro_loadgen::client::{self, ExportHeaders, Outcome};
use allegro_loadgen::model::Shape;
use allegro_loadgen::rng::Rng;
use allegro_loadgen::template::{RequestIds, TemplateSet};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Seed of every generated input, so that runs compare.
pub const SEED: u64 = 1;
/// A fixed "now" for the patched times (2025-10-09), so that runs compare.
const NOW_UNIX_NS: u64 = 1_760_000_000_000_000_000;
/// Bytes of the gRPC message prefix in the loadgen's frames.
const GRPC_PREFIX_BYTES: usize = allegro_loadgen::grpc::FRAME_HEADER_BYTES;

/// Export requests, one per template.
#[derive(Debug, Clone)]
pub struct OtlpRequests {
    /// gRPC frames: the 5-byte prefix, then the message.
    pub frames: Vec<Vec<u8>>,
    pub spans: u64,
    pub traces: u64,
}

impl OtlpRequests {
    /// The protobuf messages, without the gRPC prefix.
    pub fn messages(&self) -> impl Iterator<Item = &[u8]> {
        self.frames.iter().map(|frame| &frame[GRPC_PREFIX_BYTES..])
    }

    /// Bytes of all messages.
    pub fn message_bytes(&self) -> u64 {
        self.messages().map(|m| m.len() as u64).sum()
    }
}

/// `count` Export requests of the loadgen's default shape, with distinct random IDs.
pub fn otlp_requests(count: usize) -> OtlpRequests {
    let shape = Shape::default();
    let set = TemplateSet::build(&shape, count, SEED).expect("the default shape builds");
    let mut rng = Rng::new(SEED);
    let mut ids = RequestIds::default();
    let mut frames = Vec::with_capacity(count);
    let mut traces = 0u64;
    for template in &set.templates {
        let mut frame = Vec::new();
        template.patch_into(&mut frame, &mut ids, &mut rng, NOW_UNIX_NS);
        traces += template.trace_count() as u64;
        frames.push(frame);
    }
    OtlpRequests {
        frames,
        spans: set.spans(),
        traces,
    }
}

/// What the `h2` client wrote for a run of Export calls.
#[derive(Debug, Clone)]
pub struct H2Capture {
    /// Everything the client wrote, connection preface first.
    pub client_bytes: Vec<u8>,
    /// Export calls in the capture (each one HEADERS block and a body).
    pub requests: usize,
    /// The request header blocks, in order (HEADERS fragments; none needed CONTINUATION).
    pub header_blocks: Vec<Vec<u8>>,
}

/// The client connection preface (RFC 9113 3.4).
pub const PREFACE_BYTES: usize = 24;

/// Runs the loadgen's Export client (`allegro_loadgen::client::export`, with the loadgen's
/// headers and window sizes) over an in-memory pipe against an `h2` crate server that
/// answers like a gRPC server, sends every frame of `frames` once, in order, and records the
/// bytes the client wrote.
pub fn capture_h2_client(frames: &[Vec<u8>]) -> H2Capture {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let log = Arc::new(Mutex::new(Vec::new()));
    runtime.block_on(async {
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        tokio::spawn(serve_grpc(server_io));
        let tap = Tap {
            inner: client_io,
            log: log.clone(),
        };
        // The loadgen's settings (client.rs: STREAM_WINDOW_BYTES, CONNECTION_WINDOW_BYTES).
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(1 << 20)
            .initial_connection_window_size(1 << 24)
            .handshake::<_, Bytes>(tap)
            .await
            .expect("h2 handshake over a pipe");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let headers = ExportHeaders::new("127.0.0.1:4317", None, false, Duration::from_secs(10))
            .expect("loadgen headers");
        for frame in frames {
            let outcome = client::export(&send, &headers, Bytes::from(frame.clone())).await;
            assert_eq!(outcome, Outcome::Ok, "export over the pipe");
        }
    });
    let client_bytes = std::mem::take(&mut *log.lock().expect("tap log"));
    let header_blocks = request_header_blocks(&client_bytes);
    assert_eq!(
        header_blocks.len(),
        frames.len(),
        "one header block per export"
    );
    H2Capture {
        client_bytes,
        requests: frames.len(),
        header_blocks,
    }
}

/// The HEADERS fragments of a client byte stream (preface first).
fn request_header_blocks(client_bytes: &[u8]) -> Vec<Vec<u8>> {
    assert_eq!(
        &client_bytes[..PREFACE_BYTES],
        allegro_h2::PREFACE,
        "preface"
    );
    let mut rest = &client_bytes[PREFACE_BYTES..];
    let mut blocks = Vec::new();
    while !rest.is_empty() {
        let (parsed, consumed) = frame::parse(rest, frame::FRAME_SIZE_MAX)
            .expect("the h2 client writes valid frames")
            .expect("the capture ends on a frame boundary");
        if let Frame::Headers {
            fragment,
            end_headers,
            ..
        } = parsed
        {
            assert!(end_headers, "request headers fit one frame");
            blocks.push(fragment.to_vec());
        }
        rest = &rest[consumed..];
    }
    blocks
}

/// An `h2` crate server that reads each request body and answers like a gRPC server with an
/// empty `ExportTraceServiceResponse`.
async fn serve_grpc(io: tokio::io::DuplexStream) {
    let mut connection = h2::server::handshake(io).await.expect("server handshake");
    while let Some(accepted) = connection.accept().await {
        let Ok((request, mut respond)) = accepted else {
            return;
        };
        tokio::spawn(async move {
            let mut body = request.into_body();
            while let Some(chunk) = body.data().await {
                let Ok(chunk) = chunk else { return };
                let _ = body.flow_control().release_capacity(chunk.len());
            }
            let response = http::Response::builder()
                .status(200)
                .header("content-type", "application/grpc")
                .body(())
                .expect("response");
            let Ok(mut stream) = respond.send_response(response, false) else {
                return;
            };
            let _ = stream.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), false);
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            let _ = stream.send_trailers(trailers);
        });
    }
}

/// A pipe end that records what is written through it.
struct Tap {
    inner: tokio::io::DuplexStream,
    log: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for Tap {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tap {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = result {
            self.log
                .lock()
                .expect("tap log")
                .extend_from_slice(&buf[..written]);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_the_default_shape() {
        let requests = otlp_requests(2);
        assert_eq!(requests.spans, 200);
        assert_eq!(requests.traces, 20);
        let per_span = requests.message_bytes() as f64 / requests.spans as f64;
        assert!((200.0..1000.0).contains(&per_span), "{per_span} B/span");
    }

    #[test]
    fn capture_holds_one_header_block_per_export() {
        let requests = otlp_requests(3);
        let capture = capture_h2_client(&requests.frames);
        assert_eq!(capture.header_blocks.len(), 3);
        assert!(capture.client_bytes.len() as u64 > requests.message_bytes());
    }
}

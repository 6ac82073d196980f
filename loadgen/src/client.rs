//! The OTLP/gRPC Export client over h2c (HTTP/2 cleartext with prior knowledge), built on the
//! `h2` crate rather than tonic so every header and byte is ours.
//!
//! Request: `POST /opentelemetry.proto.collector.trace.v1.TraceService/Export`, headers
//! `content-type: application/grpc`, `te: trailers`, `grpc-timeout`, optionally
//! `grpc-encoding: gzip` and `x-scope-orgid`; one length-prefixed message, END_STREAM.
//! Response: HEADERS (`:status`), DATA (one `ExportTraceServiceResponse`), trailers with
//! `grpc-status`/`grpc-message` — or a trailers-only response carrying them in the HEADERS.
//! [`classify`] turns what came back into an [`Outcome`] without IO.

use crate::grpc;
use crate::limits;
use crate::stats::ErrorKind;
use bytes::Bytes;
use h2::client::SendRequest;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use std::time::Duration;
use tokio::net::TcpStream;

pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// HTTP/2 receive windows we advertise. Responses are tiny; these only matter for huge errors.
const STREAM_WINDOW_BYTES: u32 = 1 << 20;
const CONNECTION_WINDOW_BYTES: u32 = 1 << 24;

/// What one Export came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// `grpc-status: 0` with `partial_success.rejected_spans > 0`.
    Partial {
        rejected_spans: u64,
        message: String,
    },
    Failed {
        kind: ErrorKind,
        message: String,
        /// The HTTP/2 connection is unusable; reconnect before the next request.
        connection_dead: bool,
    },
}

fn failed(kind: ErrorKind, message: impl Into<String>) -> Outcome {
    Outcome::Failed {
        kind,
        message: message.into(),
        connection_dead: false,
    }
}

fn transport(error: h2::Error) -> Outcome {
    Outcome::Failed {
        kind: ErrorKind::Transport,
        message: error.to_string(),
        // RST_STREAM only kills the stream; anything else (GOAWAY, I/O, protocol) the connection.
        connection_dead: !error.is_reset(),
    }
}

/// The per-run constant parts of every Export request.
#[derive(Clone, Debug)]
pub struct ExportHeaders {
    uri: Uri,
    headers: HeaderMap,
}

impl ExportHeaders {
    pub fn new(
        endpoint: &str,
        tenant: Option<&str>,
        gzip: bool,
        timeout: Duration,
    ) -> Result<ExportHeaders, String> {
        let uri: Uri = format!("http://{endpoint}{EXPORT_PATH}")
            .parse()
            .map_err(|e| format!("bad --endpoint {endpoint:?}: {e}"))?;
        let mut headers = HeaderMap::new();
        let mut set = |name: &'static str, value: &str| -> Result<(), String> {
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("{name} value {value:?} is not a valid header value"))?;
            headers.insert(HeaderName::from_static(name), value);
            Ok(())
        };
        set("content-type", "application/grpc")?;
        set("te", "trailers")?;
        set(
            "user-agent",
            concat!("allegro-loadgen/", env!("CARGO_PKG_VERSION")),
        )?;
        set("grpc-accept-encoding", "gzip,identity")?;
        // grpc-timeout: at most 8 digits; milliseconds fit any sane timeout.
        let timeout_ms = timeout.as_millis().clamp(1, 99_999_999);
        set("grpc-timeout", &format!("{timeout_ms}m"))?;
        if gzip {
            set("grpc-encoding", "gzip")?;
        }
        if let Some(tenant) = tenant {
            set("x-scope-orgid", tenant)?;
        }
        Ok(ExportHeaders { uri, headers })
    }

    pub fn request(&self) -> Request<()> {
        let mut request = Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// Opens an h2c connection (prior knowledge) and spawns its driver task.
pub async fn connect(endpoint: &str) -> Result<SendRequest<Bytes>, String> {
    let tcp = TcpStream::connect(endpoint)
        .await
        .map_err(|e| format!("connect to {endpoint}: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("set TCP_NODELAY: {e}"))?;
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .handshake::<_, Bytes>(tcp)
        .await
        .map_err(|e| format!("HTTP/2 handshake with {endpoint}: {e}"))?;
    tokio::spawn(async move {
        // Errors surface on the streams; the driver just runs until the connection ends.
        let _ = connection.await;
    });
    Ok(send)
}

/// Sends one framed Export request and waits for the complete answer.
pub async fn export(send: &SendRequest<Bytes>, headers: &ExportHeaders, frame: Bytes) -> Outcome {
    let send = match send.clone().ready().await {
        Ok(send) => send,
        Err(e) => return transport(e),
    };
    let mut send = send;
    let (response, mut stream) = match send.send_request(headers.request(), false) {
        Ok(pair) => pair,
        Err(e) => return transport(e),
    };
    if let Err(e) = stream.send_data(frame, true) {
        return transport(e);
    }
    let response = match response.await {
        Ok(response) => response,
        Err(e) => return transport(e),
    };
    let (parts, mut body) = response.into_parts();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => return transport(e),
        };
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
        if data.len() > limits::RESPONSE_MESSAGE_BYTES_MAX + grpc::FRAME_HEADER_BYTES {
            return failed(ErrorKind::BadResponse, "response body too large");
        }
    }
    let trailers = match body.trailers().await {
        Ok(trailers) => trailers,
        Err(e) => return transport(e),
    };
    classify(
        parts.status.as_u16(),
        &parts.headers,
        trailers.as_ref(),
        &data,
    )
}

/// Interprets a complete gRPC response. Pure: no IO.
pub fn classify(
    http_status: u16,
    headers: &HeaderMap,
    trailers: Option<&HeaderMap>,
    body: &[u8],
) -> Outcome {
    // Trailers-only responses carry grpc-status in the HEADERS frame.
    let status_source = trailers
        .filter(|t| t.contains_key("grpc-status"))
        .unwrap_or(headers);
    let message = status_source
        .get("grpc-message")
        .map(|v| grpc::decode_message(v.as_bytes()))
        .unwrap_or_default();
    let Some(status) = status_source.get("grpc-status") else {
        if http_status != 200 {
            return failed(ErrorKind::Http, format!("HTTP status {http_status}"));
        }
        return failed(ErrorKind::BadResponse, "response without grpc-status");
    };
    let Some(code) = grpc::parse_status(status.as_bytes()) else {
        return failed(
            ErrorKind::UnknownStatus,
            format!(
                "unparsable grpc-status {:?}",
                String::from_utf8_lossy(status.as_bytes())
            ),
        );
    };
    if code != 0 {
        let kind = if grpc::status_name(code).is_some() {
            ErrorKind::Grpc(code)
        } else {
            ErrorKind::UnknownStatus
        };
        let text = if message.is_empty() {
            format!("grpc-status {code}")
        } else {
            message
        };
        return failed(kind, text);
    }
    if http_status != 200 {
        return failed(
            ErrorKind::Http,
            format!("HTTP status {http_status} with grpc-status 0"),
        );
    }
    let content_type = headers
        .get("content-type")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !content_type.starts_with(b"application/grpc") {
        return failed(
            ErrorKind::BadResponse,
            format!(
                "content-type {:?} is not application/grpc",
                String::from_utf8_lossy(content_type)
            ),
        );
    }
    let mut decoder = grpc::FrameDecoder::new(limits::RESPONSE_MESSAGE_BYTES_MAX);
    decoder.push(body);
    let frame = match decoder.next_frame() {
        Ok(Some(frame)) => frame,
        Ok(None) => {
            let why = match decoder.finish() {
                Err(e) => e.to_string(),
                Ok(()) => "grpc-status 0 without a response message".to_string(),
            };
            return failed(ErrorKind::BadResponse, why);
        }
        Err(e) => return failed(ErrorKind::BadResponse, e.to_string()),
    };
    match decoder.next_frame() {
        Ok(None) => {}
        Ok(Some(_)) => return failed(ErrorKind::BadResponse, "more than one response message"),
        Err(e) => return failed(ErrorKind::BadResponse, e.to_string()),
    }
    if let Err(e) = decoder.finish() {
        return failed(ErrorKind::BadResponse, e.to_string());
    }
    let message_bytes = if frame.compressed {
        let encoding = headers
            .get("grpc-encoding")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if encoding != b"gzip" {
            return failed(
                ErrorKind::BadResponse,
                "compressed response without grpc-encoding: gzip",
            );
        }
        match grpc::gunzip(&frame.message, limits::RESPONSE_MESSAGE_BYTES_MAX) {
            Ok(bytes) => bytes,
            Err(e) => return failed(ErrorKind::BadResponse, e),
        }
    } else {
        frame.message
    };
    let response = match ExportTraceServiceResponse::decode(message_bytes.as_slice()) {
        Ok(response) => response,
        Err(e) => return failed(ErrorKind::BadResponse, format!("undecodable response: {e}")),
    };
    match response.partial_success {
        Some(partial) if partial.rejected_spans > 0 => Outcome::Partial {
            rejected_spans: partial.rejected_spans as u64,
            message: partial.error_message,
        },
        _ => Outcome::Ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("valid"));
        }
        map
    }

    fn grpc_headers() -> HeaderMap {
        headers(&[("content-type", "application/grpc")])
    }

    fn ok_trailers() -> HeaderMap {
        headers(&[("grpc-status", "0")])
    }

    fn body(response: &ExportTraceServiceResponse) -> Vec<u8> {
        let mut out = Vec::new();
        grpc::encode_frame(false, &response.encode_to_vec(), &mut out);
        out
    }

    #[test]
    fn ok_with_empty_response() {
        let b = body(&ExportTraceServiceResponse::default());
        assert_eq!(b, [0, 0, 0, 0, 0]);
        assert_eq!(
            classify(200, &grpc_headers(), Some(&ok_trailers()), &b),
            Outcome::Ok
        );
    }

    #[test]
    fn partial_success_is_its_own_outcome() {
        let b = body(&ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 7,
                error_message: "too large".into(),
            }),
        });
        assert_eq!(
            classify(200, &grpc_headers(), Some(&ok_trailers()), &b),
            Outcome::Partial {
                rejected_spans: 7,
                message: "too large".into()
            }
        );
        let zero = body(&ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess::default()),
        });
        assert_eq!(
            classify(200, &grpc_headers(), Some(&ok_trailers()), &zero),
            Outcome::Ok
        );
    }

    #[test]
    fn gzip_response_is_inflated() {
        let message = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 2,
                error_message: String::new(),
            }),
        }
        .encode_to_vec();
        let mut zipped = Vec::new();
        grpc::Gzip::new().compress(&message, &mut zipped);
        let mut b = Vec::new();
        grpc::encode_frame(true, &zipped, &mut b);
        let h = headers(&[
            ("content-type", "application/grpc"),
            ("grpc-encoding", "gzip"),
        ]);
        assert!(matches!(
            classify(200, &h, Some(&ok_trailers()), &b),
            Outcome::Partial {
                rejected_spans: 2,
                ..
            }
        ));
        assert!(matches!(
            classify(200, &grpc_headers(), Some(&ok_trailers()), &b),
            Outcome::Failed {
                kind: ErrorKind::BadResponse,
                ..
            }
        ));
    }

    #[test]
    fn trailers_only_error_with_percent_encoded_message() {
        let h = headers(&[
            ("content-type", "application/grpc"),
            ("grpc-status", "8"),
            ("grpc-message", "rate%20limit%20exceeded"),
        ]);
        assert_eq!(
            classify(200, &h, None, &[]),
            failed(ErrorKind::Grpc(8), "rate limit exceeded")
        );
    }

    #[test]
    fn malformed_answers() {
        let ok_body = body(&ExportTraceServiceResponse::default());
        type Case = (u16, HeaderMap, Option<HeaderMap>, Vec<u8>, ErrorKind);
        let cases: Vec<Case> = vec![
            (503, HeaderMap::new(), None, vec![], ErrorKind::Http),
            (
                200,
                grpc_headers(),
                None,
                ok_body.clone(),
                ErrorKind::BadResponse,
            ),
            (
                200,
                grpc_headers(),
                Some(headers(&[("grpc-status", "x")])),
                vec![],
                ErrorKind::UnknownStatus,
            ),
            (
                200,
                grpc_headers(),
                Some(headers(&[("grpc-status", "42")])),
                vec![],
                ErrorKind::UnknownStatus,
            ),
            (
                200,
                grpc_headers(),
                Some(ok_trailers()),
                vec![],
                ErrorKind::BadResponse,
            ),
            (
                200,
                grpc_headers(),
                Some(ok_trailers()),
                vec![0, 0, 0, 0, 9, 1],
                ErrorKind::BadResponse,
            ),
            (
                200,
                grpc_headers(),
                Some(ok_trailers()),
                [ok_body.clone(), ok_body.clone()].concat(),
                ErrorKind::BadResponse,
            ),
            (
                200,
                grpc_headers(),
                Some(ok_trailers()),
                vec![0, 0, 0, 0, 1, 0xff],
                ErrorKind::BadResponse,
            ),
            (
                200,
                headers(&[("content-type", "text/html")]),
                Some(ok_trailers()),
                ok_body.clone(),
                ErrorKind::BadResponse,
            ),
            (
                500,
                grpc_headers(),
                Some(ok_trailers()),
                ok_body.clone(),
                ErrorKind::Http,
            ),
        ];
        for (i, (status, h, t, b, kind)) in cases.into_iter().enumerate() {
            match classify(status, &h, t.as_ref(), &b) {
                Outcome::Failed { kind: got, .. } => assert_eq!(got, kind, "case {i}"),
                other => panic!("case {i}: {other:?}"),
            }
        }
    }

    #[test]
    fn request_headers() {
        let h = ExportHeaders::new(
            "127.0.0.1:4317",
            Some("team-a"),
            true,
            Duration::from_secs(10),
        )
        .expect("valid");
        let request = h.request();
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri().path(), EXPORT_PATH);
        assert_eq!(request.uri().scheme_str(), Some("http"));
        let get = |name: &str| {
            request
                .headers()
                .get(name)
                .map(|v| v.to_str().expect("ascii"))
        };
        assert_eq!(get("content-type"), Some("application/grpc"));
        assert_eq!(get("te"), Some("trailers"));
        assert_eq!(get("grpc-encoding"), Some("gzip"));
        assert_eq!(get("x-scope-orgid"), Some("team-a"));
        assert_eq!(get("grpc-timeout"), Some("10000m"));
        let plain = ExportHeaders::new("h:1", None, false, Duration::from_secs(1)).expect("valid");
        assert!(plain.request().headers().get("grpc-encoding").is_none());
        assert!(plain.request().headers().get("x-scope-orgid").is_none());
        assert!(
            ExportHeaders::new("h:1", Some("bad\nvalue"), false, Duration::from_secs(1)).is_err()
        );
        assert!(ExportHeaders::new("not a host", None, false, Duration::from_secs(1)).is_err());
    }
}

//! A tiny HTTP/1.1 client: a sans-IO response parser ([`parse_head`], [`ChunkedDecoder`]) and a
//! keep-alive GET client ([`Client`]) around it for `verify` and `/ready` polling.
//!
//! Supported: `Content-Length`, `Transfer-Encoding: chunked` (extensions and trailers skipped),
//! read-until-close bodies, `Connection: close`/keep-alive, HTTP/1.0 answers, 1xx interim
//! responses (skipped). Limits: [`limits::HTTP_HEAD_BYTES_MAX`], [`limits::HTTP_BODY_BYTES_MAX`].

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::limits;
use std::fmt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest chunk-size or trailer line.
const CHUNK_LINE_BYTES_MAX: usize = 4096;

#[derive(Debug)]
pub enum HttpError {
    Io(std::io::Error),
    /// The peer closed the connection before the response was complete.
    Closed,
    Malformed(String),
    TooLarge(&'static str),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Io(e) => write!(f, "I/O error: {e}"),
            HttpError::Closed => write!(f, "connection closed before the response was complete"),
            HttpError::Malformed(what) => write!(f, "malformed HTTP response: {what}"),
            HttpError::TooLarge(what) => write!(f, "HTTP response {what} too large"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<std::io::Error> for HttpError {
    fn from(e: std::io::Error) -> HttpError {
        HttpError::Io(e)
    }
}

fn malformed(what: impl Into<String>) -> HttpError {
    HttpError::Malformed(what.into())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// No body (1xx, 204, 304).
    Empty,
    Length(usize),
    Chunked,
    /// HTTP/1.0 style: the body runs until the server closes the connection.
    UntilClose,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub body: BodyKind,
    /// Whether the connection may carry another request after this response.
    pub keep_alive: bool,
    /// Bytes of the status line and headers, including the blank line.
    pub head_bytes: usize,
    pub content_type: Option<String>,
}

fn find_crlf_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

fn trim(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

/// Parses a response head from the start of `buf`. `Ok(None)`: more bytes needed.
pub fn parse_head(buf: &[u8]) -> Result<Option<ResponseHead>, HttpError> {
    let Some(end) = find_crlf_crlf(buf) else {
        if buf.len() > limits::HTTP_HEAD_BYTES_MAX {
            return Err(HttpError::TooLarge("head"));
        }
        return Ok(None);
    };
    let head_bytes = end + 4;
    if head_bytes > limits::HTTP_HEAD_BYTES_MAX {
        return Err(HttpError::TooLarge("head"));
    }
    let text = std::str::from_utf8(buf.get(..end).unwrap_or_default())
        .map_err(|_| malformed("head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        other => return Err(malformed(format!("unsupported version {other:?}"))),
    };
    let code = parts.next().unwrap_or_default();
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!("bad status code {code:?}")));
    }
    let status: u16 = code.parse().map_err(|_| malformed("bad status code"))?;
    if !(100..=599).contains(&status) {
        return Err(malformed(format!("status {status} out of range")));
    }

    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut keep_alive = !http10;
    let mut content_type = None;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| malformed(format!("header line without colon: {line:?}")))?;
        if name.is_empty() || name.bytes().any(|b| b == b' ' || b == b'\t') {
            return Err(malformed(format!("bad header name {name:?}")));
        }
        let value = trim(value);
        if name.eq_ignore_ascii_case("content-length") {
            let len: usize = value
                .parse()
                .map_err(|_| malformed(format!("bad Content-Length {value:?}")))?;
            if content_length.is_some_and(|l| l != len) {
                return Err(malformed("conflicting Content-Length headers"));
            }
            content_length = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().map(trim).unwrap_or_default();
            if last.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else {
                return Err(malformed(format!(
                    "unsupported Transfer-Encoding {value:?}"
                )));
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_string());
        }
    }
    let body = if (100..200).contains(&status) || status == 204 || status == 304 {
        BodyKind::Empty
    } else if chunked {
        // RFC 9112 6.3: Transfer-Encoding overrides Content-Length.
        BodyKind::Chunked
    } else if let Some(len) = content_length {
        if len > limits::HTTP_BODY_BYTES_MAX {
            return Err(HttpError::TooLarge("body"));
        }
        BodyKind::Length(len)
    } else {
        keep_alive = false;
        BodyKind::UntilClose
    };
    Ok(Some(ResponseHead {
        status,
        body,
        keep_alive,
        head_bytes,
        content_type,
    }))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data { remaining: usize },
    DataEnd,
    Trailers,
    Done,
}

/// Incremental `Transfer-Encoding: chunked` decoder.
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: ChunkState,
    body_bytes: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> ChunkedDecoder {
        ChunkedDecoder::new()
    }
}

fn line_end(input: &[u8]) -> Result<Option<usize>, HttpError> {
    match input.windows(2).position(|w| w == b"\r\n") {
        Some(at) if at > CHUNK_LINE_BYTES_MAX => Err(HttpError::TooLarge("chunk line")),
        Some(at) => Ok(Some(at)),
        None if input.len() > CHUNK_LINE_BYTES_MAX => Err(HttpError::TooLarge("chunk line")),
        None => Ok(None),
    }
}

impl ChunkedDecoder {
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder {
            state: ChunkState::Size,
            body_bytes: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes as much of `input` as possible, appending body bytes to `out`. Returns how many
    /// input bytes were consumed; unconsumed bytes must be offered again with more appended.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, HttpError> {
        let mut pos = 0;
        loop {
            let rest = input.get(pos..).unwrap_or_default();
            match self.state {
                ChunkState::Done => return Ok(pos),
                ChunkState::Size => {
                    let Some(at) = line_end(rest)? else {
                        return Ok(pos);
                    };
                    let line = rest.get(..at).unwrap_or_default();
                    let size_text = line.split(|&b| b == b';').next().unwrap_or_default();
                    let size_text = std::str::from_utf8(size_text)
                        .map_err(|_| malformed("chunk size is not ASCII"))?;
                    let size_text = trim(size_text);
                    if size_text.is_empty() || size_text.len() > 15 {
                        return Err(malformed(format!("bad chunk size {size_text:?}")));
                    }
                    let size = usize::from_str_radix(size_text, 16)
                        .map_err(|_| malformed(format!("bad chunk size {size_text:?}")))?;
                    pos += at + 2;
                    self.state = if size == 0 {
                        ChunkState::Trailers
                    } else {
                        self.body_bytes = self
                            .body_bytes
                            .checked_add(size)
                            .filter(|&b| b <= limits::HTTP_BODY_BYTES_MAX)
                            .ok_or(HttpError::TooLarge("body"))?;
                        ChunkState::Data { remaining: size }
                    };
                }
                ChunkState::Data { remaining } => {
                    if rest.is_empty() {
                        return Ok(pos);
                    }
                    let take = remaining.min(rest.len());
                    out.extend_from_slice(rest.get(..take).unwrap_or_default());
                    pos += take;
                    self.state = if take == remaining {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data {
                            remaining: remaining - take,
                        }
                    };
                }
                ChunkState::DataEnd => {
                    let Some(crlf) = rest.get(..2) else {
                        return Ok(pos);
                    };
                    if crlf != b"\r\n" {
                        return Err(malformed("chunk data not followed by CRLF"));
                    }
                    pos += 2;
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let Some(at) = line_end(rest)? else {
                        return Ok(pos);
                    };
                    pos += at + 2;
                    if at == 0 {
                        self.state = ChunkState::Done;
                    }
                }
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// A keep-alive HTTP/1.1 client for one `host:port`. Not for concurrent use: one request at a
/// time, one connection, reconnecting when the server closes it.
pub struct Client {
    addr: String,
    stream: Option<TcpStream>,
    buffer: Vec<u8>,
}

const READ_CHUNK_BYTES: usize = 64 * 1024;

impl Client {
    pub fn new(addr: &str) -> Client {
        Client {
            addr: addr.to_string(),
            stream: None,
            buffer: Vec::new(),
        }
    }

    /// `GET path` with extra headers. Retries once on a fresh connection when a reused
    /// keep-alive connection turns out to be closed (GET is idempotent).
    pub async fn get(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response, HttpError> {
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: allegro-loadgen/{}\r\n",
            self.addr,
            env!("CARGO_PKG_VERSION")
        );
        for (name, value) in headers {
            request.push_str(name);
            request.push_str(": ");
            request.push_str(value);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        let reused = self.stream.is_some();
        match self.exchange(request.as_bytes()).await {
            Ok(response) => Ok(response),
            Err(HttpError::Closed) | Err(HttpError::Io(_)) if reused => {
                self.stream = None;
                self.exchange(request.as_bytes()).await
            }
            Err(e) => Err(e),
        }
    }

    async fn exchange(&mut self, request: &[u8]) -> Result<Response, HttpError> {
        let result = self.exchange_inner(request).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange_inner(&mut self, request: &[u8]) -> Result<Response, HttpError> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
            self.buffer.clear();
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(HttpError::Closed);
        };
        stream.write_all(request).await?;
        let buffer = &mut self.buffer;
        let head = loop {
            match parse_head(buffer)? {
                Some(head) if (100..200).contains(&head.status) => {
                    buffer.drain(..head.head_bytes);
                }
                Some(head) => {
                    buffer.drain(..head.head_bytes);
                    break head;
                }
                None => read_more(stream, buffer).await?,
            }
        };
        let mut body = Vec::new();
        match head.body {
            BodyKind::Empty => {}
            BodyKind::Length(len) => {
                while buffer.len() < len {
                    read_more(stream, buffer).await?;
                }
                body.extend(buffer.drain(..len));
            }
            BodyKind::Chunked => {
                let mut decoder = ChunkedDecoder::new();
                loop {
                    let used = decoder.decode(buffer, &mut body)?;
                    buffer.drain(..used);
                    if decoder.is_done() {
                        break;
                    }
                    read_more(stream, buffer).await?;
                }
            }
            BodyKind::UntilClose => loop {
                body.append(buffer);
                if body.len() > limits::HTTP_BODY_BYTES_MAX {
                    return Err(HttpError::TooLarge("body"));
                }
                match read_more(stream, buffer).await {
                    Ok(()) => {}
                    Err(HttpError::Closed) => break,
                    Err(e) => return Err(e),
                }
            },
        }
        if !head.keep_alive {
            self.stream = None;
            self.buffer.clear();
        }
        Ok(Response {
            status: head.status,
            content_type: head.content_type,
            body,
        })
    }
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<(), HttpError> {
    let start = buffer.len();
    buffer.resize(start + READ_CHUNK_BYTES, 0);
    let read = stream
        .read(buffer.get_mut(start..).unwrap_or_default())
        .await;
    let n = match read {
        Ok(n) => n,
        Err(e) => {
            buffer.truncate(start);
            return Err(e.into());
        }
    };
    buffer.truncate(start + n);
    if n == 0 {
        return Err(HttpError::Closed);
    }
    Ok(())
}

#[cfg(test)]
#[expect(
    clippy::indexing_slicing,
    reason = "tests index buffers they just built"
)]
mod tests {
    use super::*;

    fn head(text: &str) -> ResponseHead {
        parse_head(text.as_bytes())
            .expect("valid")
            .expect("complete")
    }

    #[test]
    fn content_length_response() {
        let text = "HTTP/1.1 200 OK\r\nContent-Type: application/protobuf\r\nContent-Length: 12\r\n\r\nbody";
        let h = head(text);
        assert_eq!(h.status, 200);
        assert_eq!(h.body, BodyKind::Length(12));
        assert!(h.keep_alive);
        assert_eq!(h.content_type.as_deref(), Some("application/protobuf"));
        assert_eq!(h.head_bytes, text.len() - "body".len());
    }

    #[test]
    fn connection_semantics() {
        assert!(
            !head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive
        );
        assert!(!head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
        assert!(
            head("HTTP/1.0 200 OK\r\nconnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n")
                .keep_alive
        );
        let h = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(h.body, BodyKind::UntilClose);
        assert!(!h.keep_alive);
    }

    #[test]
    fn bodyless_statuses_and_chunked_priority() {
        assert_eq!(
            head("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n").body,
            BodyKind::Empty
        );
        assert_eq!(head("HTTP/1.1 100 Continue\r\n\r\n").body, BodyKind::Empty);
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n").body,
            BodyKind::Chunked
        );
        assert_eq!(
            head("HTTP/1.1 404 Not Found\r\ncontent-length:  0 \r\n\r\n").body,
            BodyKind::Length(0)
        );
    }

    #[test]
    fn incomplete_and_malformed_heads() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n")
            .expect("ok")
            .is_none());
        for bad in [
            "HTTP/2 200 OK\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 abc OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        ] {
            assert!(parse_head(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let huge = vec![b'a'; limits::HTTP_HEAD_BYTES_MAX + 1];
        assert!(matches!(parse_head(&huge), Err(HttpError::TooLarge(_))));
    }

    #[test]
    fn chunked_body_in_any_split() {
        let wire = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        for split in 1..wire.len() {
            let mut decoder = ChunkedDecoder::new();
            let mut out = Vec::new();
            let mut pending: Vec<u8> = Vec::new();
            for piece in wire.chunks(split) {
                pending.extend_from_slice(piece);
                let used = decoder.decode(&pending, &mut out).expect("valid");
                pending.drain(..used);
                if decoder.is_done() {
                    break;
                }
            }
            assert!(decoder.is_done(), "split {split}");
            assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.");
        }
    }

    #[test]
    fn chunked_errors() {
        for bad in [
            &b"zz\r\n"[..],
            b"\r\n",
            b"3\r\nabcXY",
            b"fffffffffffffffff\r\n",
        ] {
            let mut decoder = ChunkedDecoder::new();
            assert!(decoder.decode(bad, &mut Vec::new()).is_err(), "{bad:?}");
        }
        let mut decoder = ChunkedDecoder::new();
        assert!(decoder
            .decode(&vec![b'1'; CHUNK_LINE_BYTES_MAX + 1], &mut Vec::new())
            .is_err());
    }

    #[tokio::test]
    async fn client_keeps_alive_and_reconnects() {
        use tokio::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let server = tokio::spawn(async move {
            let mut connections = 0;
            // Connection 1: two keep-alive answers (length, chunked), then close.
            // Connection 2: an until-close answer.
            while connections < 2 {
                let (mut socket, _) = listener.accept().await.expect("accept");
                connections += 1;
                let answers: Vec<&[u8]> = if connections == 1 {
                    vec![
                        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                    ]
                } else {
                    vec![b"HTTP/1.0 200 OK\r\n\r\nuntil close"]
                };
                for answer in answers {
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while find_crlf_crlf(&got).is_none() {
                        let n = socket.read(&mut buf).await.expect("read");
                        assert!(n > 0);
                        got.extend_from_slice(&buf[..n]);
                    }
                    assert!(got.starts_with(b"GET /x HTTP/1.1\r\n"));
                    socket.write_all(answer).await.expect("write");
                }
                // Dropping the socket closes it.
            }
        });
        let mut client = Client::new(&addr);
        let r = client
            .get("/x", &[("Accept", "application/protobuf")])
            .await
            .expect("first");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        let r = client
            .get("/x", &[])
            .await
            .expect("second, same connection");
        assert_eq!((r.status, r.body.as_slice()), (404, &b"abc"[..]));
        // The server closed connection 1; the client notices and reconnects once.
        let r = client.get("/x", &[]).await.expect("third, new connection");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"until close"[..]));
        server.await.expect("server");
    }
}

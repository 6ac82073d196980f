//! HTTP/1.1 server codec, sans-IO: bytes in, [`Request`]s out; [`Response`]s in, bytes out.
//!
//! The connection task owns a read buffer, calls [`parse_request`] after every read, drops
//! the bytes it reports as consumed (so pipelined requests parse one after another), and
//! writes each answer with [`write_response`]. Before any of that, [`h2_preface_check`] tells
//! it whether the peer speaks HTTP/2 with prior knowledge on the same port.
//!
//! What is accepted (RFC 9112), and what each refusal maps to ([`Http1Error::status`]):
//!
//! - request line `method SP request-target SP HTTP/1.x`; lines end in CRLF or a bare LF;
//!   empty lines before the request line are skipped (§2.2). Any other major version: 505.
//! - request-target in origin form (`/path?query`), absolute form (`http://host/path`), or
//!   `*` for `OPTIONS`; `%` escapes in the path must be well formed. Otherwise 400.
//! - header lines `name: value`, name a token with no space before the colon, no obs-fold
//!   (§5.2 allows rejecting it), no control characters in values: otherwise 400.
//!   More than `headers_count_max` fields, or a head over `head_bytes_max`: 431.
//! - HTTP/1.1 needs exactly one `Host` (§3.2): otherwise 400.
//! - the body is framed by `Content-Length` (several identical values allowed) or by
//!   `Transfer-Encoding: chunked` with extensions and trailers (read and dropped). Both at
//!   once, or `Transfer-Encoding` in HTTP/1.0, is faulty framing (§6.1, §6.3): 400. Any
//!   transfer coding other than a lone `chunked`: 501. A body over `body_bytes_max`, or
//!   chunk framing over [`CHUNK_FRAMING_BYTES_MAX`]: 413, as soon as it is known.
//! - keep-alive: HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
//!   `Connection: keep-alive` (§9.3).
//!
//! **Invariant:** no input makes the parser panic or read out of bounds; it never indexes,
//! and [`fuzz_parse`] exercises it.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::api::{Request, Response};
use std::fmt;

/// The request line and header fields together, in bytes.
pub const HEAD_BYTES_MAX: usize = 64 * 1024;
/// A request body, after removing the chunked framing.
pub const BODY_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Header fields in one request (and trailer fields after a chunked body).
pub const HEADERS_COUNT_MAX: usize = 100;
/// A chunk-size line with its extensions (Go's `net/http` uses the same bound).
pub const CHUNK_LINE_BYTES_MAX: usize = 4096;
/// Chunk-size lines and CRLFs of one chunked body together. Bounds the work of re-walking an
/// incomplete body on every read (the parser keeps no state between calls): a body of many
/// tiny chunks is refused with 413 instead of costing quadratic time. Clients chunk in KiBs,
/// so a 16 MiB body needs a few thousand chunks, well within this.
pub const CHUNK_FRAMING_BYTES_MAX: usize = 64 * 1024;
/// Hex digits in a chunk size: 16 fill a `u64`.
const CHUNK_SIZE_DIGITS_MAX: usize = 16;
/// Decimal digits in a `Content-Length`; 19 always fit a `u64`.
const CONTENT_LENGTH_DIGITS_MAX: usize = 19;

const _: () = assert!(CHUNK_LINE_BYTES_MAX <= HEAD_BYTES_MAX);
const _: () = assert!(CHUNK_LINE_BYTES_MAX <= CHUNK_FRAMING_BYTES_MAX);
const _: () = assert!(
    HEAD_BYTES_MAX >= 8 * 1024,
    "room for Grafana's request heads"
);

/// The HTTP/2 connection preface a client with prior knowledge sends first (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Per-connection limits; [`Limits::default`] takes the constants above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub head_bytes_max: usize,
    pub body_bytes_max: usize,
    pub headers_count_max: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            head_bytes_max: HEAD_BYTES_MAX,
            body_bytes_max: BODY_BYTES_MAX,
            headers_count_max: HEADERS_COUNT_MAX,
        }
    }
}

/// Why a request was refused. Each is a request error: answer with [`Http1Error::to_response`]
/// and close the connection, as the framing of anything after it cannot be trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Http1Error {
    /// Malformed syntax or framing; the text says what was wrong.
    BadRequest(&'static str),
    /// The head did not end within `head_bytes_max` (or the trailers overran it).
    HeadTooLarge,
    /// More than `headers_count_max` header (or trailer) fields.
    TooManyHeaders,
    /// The body is longer than `body_bytes_max`.
    BodyTooLarge,
    /// A transfer coding other than a lone `chunked`.
    UnsupportedTransferEncoding,
    /// An HTTP major version other than 1.
    UnsupportedVersion,
}

impl Http1Error {
    /// The one mapping from error to HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Http1Error::BadRequest(_) => 400,
            Http1Error::BodyTooLarge => 413,
            Http1Error::HeadTooLarge | Http1Error::TooManyHeaders => 431,
            Http1Error::UnsupportedTransferEncoding => 501,
            Http1Error::UnsupportedVersion => 505,
        }
    }

    /// The answer to send before closing, worded like Go's `net/http` server
    /// (`400 Bad Request: missing required Host header`). Send it with `keep_alive` false.
    pub fn to_response(&self) -> Response {
        let status = self.status();
        let body = format!("{status} {}: {self}", reason_phrase(status));
        Response {
            status,
            headers: vec![(
                "Content-Type".to_string(),
                "text/plain; charset=utf-8".to_string(),
            )],
            body: body.into_bytes(),
        }
    }
}

impl fmt::Display for Http1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Http1Error::BadRequest(reason) => f.write_str(reason),
            Http1Error::HeadTooLarge => f.write_str("request head too large"),
            Http1Error::TooManyHeaders => f.write_str("too many header fields"),
            Http1Error::BodyTooLarge => f.write_str("request body too large"),
            Http1Error::UnsupportedTransferEncoding => f.write_str("unsupported transfer encoding"),
            Http1Error::UnsupportedVersion => f.write_str("unsupported protocol version"),
        }
    }
}

impl std::error::Error for Http1Error {}

/// Whether the bytes so far are the HTTP/2 prior-knowledge preface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefaceCheck {
    /// A strict prefix of the preface (or nothing yet): read more.
    NeedMore,
    /// The full 24-byte preface: hand the connection to HTTP/2.
    IsH2,
    /// Anything else: HTTP/1.
    NotH2,
}

pub fn h2_preface_check(buf: &[u8]) -> PrefaceCheck {
    let compared = buf.len().min(H2_PREFACE.len());
    if buf.get(..compared) != H2_PREFACE.get(..compared) {
        PrefaceCheck::NotH2
    } else if compared == H2_PREFACE.len() {
        PrefaceCheck::IsH2
    } else {
        PrefaceCheck::NeedMore
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    Http10,
    Http11,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(usize),
    Chunked,
}

/// A parsed request head; `end` is the offset of the first body byte in the buffer.
struct Head {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    keep_alive: bool,
    expect_continue: bool,
    framing: Framing,
    end: usize,
}

impl Head {
    fn into_request(self, body: Vec<u8>) -> Request {
        Request {
            method: self.method,
            path: self.path,
            query: self.query,
            headers: self.headers,
            body,
            keep_alive: self.keep_alive,
        }
    }
}

/// Parses one request from the start of `buf`. `Ok(None)`: incomplete, read more and call
/// again with the same bytes plus the new ones. `Ok(Some((request, consumed)))`: the first
/// `consumed` bytes were this request; the rest may be the next one.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Option<(Request, usize)>, Http1Error> {
    let Some(head) = parse_head(buf, limits)? else {
        return Ok(None);
    };
    let body_start = head.end;
    match head.framing {
        Framing::None => Ok(Some((head.into_request(Vec::new()), body_start))),
        Framing::Length(length) => {
            let end = body_start
                .checked_add(length)
                .ok_or(Http1Error::BodyTooLarge)?;
            match buf.get(body_start..end) {
                None => Ok(None),
                Some(body) => Ok(Some((head.into_request(body.to_vec()), end))),
            }
        }
        Framing::Chunked => {
            let chunked = buf.get(body_start..).unwrap_or_default();
            // Walk the chunks once without copying to learn whether the body is complete, so
            // a large body arriving in many reads is not copied on every call.
            let Some(used) = walk_chunks(chunked, limits, None)? else {
                return Ok(None);
            };
            let mut body = Vec::new();
            let again = walk_chunks(chunked, limits, Some(&mut body))?;
            debug_assert_eq!(again, Some(used));
            Ok(Some((head.into_request(body), body_start + used)))
        }
    }
}

/// Whether to send `HTTP/1.1 100 Continue` now: the head at the start of `buf` is complete,
/// asks for it, announces a body, and no body byte has arrived yet. Call it after
/// [`parse_request`] returned `Ok(None)`, at most once per request.
pub fn expects_continue(buf: &[u8], limits: &Limits) -> bool {
    match parse_head(buf, limits) {
        Ok(Some(head)) => {
            head.expect_continue
                && head.framing != Framing::None
                && head.framing != Framing::Length(0)
                && buf.len() == head.end
        }
        _ => false,
    }
}

fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<Head>, Http1Error> {
    // RFC 9112 §2.2: ignore empty lines before the request line.
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let rest = buf.get(start..).unwrap_or_default();
    let Some(head_len) = find_head_end(rest) else {
        if buf.len() > limits.head_bytes_max {
            return Err(Http1Error::HeadTooLarge);
        }
        // Refuse what cannot become a request line early (a TLS handshake, say), rather
        // than waiting for `head_bytes_max` bytes.
        let method_so_far = rest.iter().take_while(|&&b| b != b' ');
        if method_so_far.clone().any(|&b| !is_tchar(b)) {
            return Err(Http1Error::BadRequest("malformed request line"));
        }
        return Ok(None);
    };
    let end = start + head_len;
    if end > limits.head_bytes_max {
        return Err(Http1Error::HeadTooLarge);
    }
    let head = rest.get(..head_len).unwrap_or_default();
    let mut lines = head.split(|&b| b == b'\n').map(strip_cr);

    let request_line = lines.next().unwrap_or(Ok(&[]))?;
    let (method, target, version) = parse_request_line(request_line)?;
    let (path, query) = parse_target(method, target)?;

    let mut headers = Vec::new();
    for line in lines {
        let line = line?;
        if line.is_empty() {
            break;
        }
        let (name, value) = parse_field_line(line)?;
        if headers.len() == limits.headers_count_max {
            return Err(Http1Error::TooManyHeaders);
        }
        headers.push((
            String::from_utf8_lossy(name).to_ascii_lowercase(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }

    let mut hosts = 0usize;
    let mut content_length: Option<&str> = None;
    let mut transfer_encodings = 0usize;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    for (name, value) in &headers {
        match name.as_str() {
            "host" => hosts += 1,
            "content-length" => {
                let value = value.trim_matches([' ', '\t']);
                match content_length {
                    Some(previous) if previous != value => {
                        return Err(Http1Error::BadRequest(
                            "multiple different Content-Length values",
                        ))
                    }
                    _ => content_length = Some(value),
                }
            }
            "transfer-encoding" => {
                transfer_encodings += 1;
                chunked = value.eq_ignore_ascii_case("chunked");
            }
            "connection" => {
                for token in value.split(',').map(|t| t.trim_matches([' ', '\t'])) {
                    close |= token.eq_ignore_ascii_case("close");
                    keep_alive_token |= token.eq_ignore_ascii_case("keep-alive");
                }
            }
            "expect" => expect_continue = value.eq_ignore_ascii_case("100-continue"),
            _ => {}
        }
    }
    if version == Version::Http11 && hosts == 0 {
        return Err(Http1Error::BadRequest("missing required Host header"));
    }
    if hosts > 1 {
        return Err(Http1Error::BadRequest("too many Host headers"));
    }
    let framing = if transfer_encodings > 0 {
        if version == Version::Http10 {
            return Err(Http1Error::BadRequest(
                "Transfer-Encoding in an HTTP/1.0 request",
            ));
        }
        if content_length.is_some() {
            return Err(Http1Error::BadRequest(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        if transfer_encodings > 1 || !chunked {
            return Err(Http1Error::UnsupportedTransferEncoding);
        }
        Framing::Chunked
    } else if let Some(text) = content_length {
        let length = parse_content_length(text)?;
        if length > limits.body_bytes_max {
            return Err(Http1Error::BodyTooLarge);
        }
        Framing::Length(length)
    } else {
        Framing::None
    };
    let keep_alive = match version {
        Version::Http11 => !close,
        Version::Http10 => keep_alive_token && !close,
    };
    Ok(Some(Head {
        method: String::from_utf8_lossy(method).into_owned(),
        path,
        query,
        headers,
        keep_alive,
        expect_continue: expect_continue && version == Version::Http11,
        framing,
        end,
    }))
}

/// The length of the head: up to and including the empty line (`\n\n` or `\n\r\n`).
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    let mut previous_newline: Option<usize> = None;
    for (index, &byte) in bytes.iter().enumerate() {
        if byte != b'\n' {
            continue;
        }
        if let Some(previous) = previous_newline {
            let between = bytes.get(previous + 1..index).unwrap_or_default();
            if between.is_empty() || between == b"\r" {
                return Some(index + 1);
            }
        }
        previous_newline = Some(index);
    }
    None
}

/// Drops the `\r` of a CRLF line ending; a CR anywhere else is an error.
fn strip_cr(line: &[u8]) -> Result<&[u8], Http1Error> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.contains(&b'\r') {
        return Err(Http1Error::BadRequest("bare CR in request head"));
    }
    Ok(line)
}

fn parse_request_line(line: &[u8]) -> Result<(&[u8], &[u8], Version), Http1Error> {
    const MALFORMED: Http1Error = Http1Error::BadRequest("malformed request line");
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(MALFORMED);
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(MALFORMED);
    }
    let target_ok = |b: u8| (0x21..=0x7e).contains(&b) || b >= 0x80;
    if target.is_empty() || !target.iter().all(|&b| target_ok(b)) {
        return Err(Http1Error::BadRequest("malformed request target"));
    }
    let version = match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            match (major, minor) {
                (b'1', b'0') => Version::Http10,
                (b'1', _) => Version::Http11,
                _ => return Err(Http1Error::UnsupportedVersion),
            }
        }
        _ => return Err(Http1Error::BadRequest("malformed HTTP version")),
    };
    Ok((method, target, version))
}

/// Splits the request target into the raw path and the raw query (without `?`).
fn parse_target(method: &[u8], target: &[u8]) -> Result<(String, String), Http1Error> {
    let origin: &[u8] = if target.first() == Some(&b'/') {
        target
    } else if target == b"*" {
        if method != b"OPTIONS" {
            return Err(Http1Error::BadRequest("'*' target is only for OPTIONS"));
        }
        target
    } else if let Some(after_scheme) = strip_prefix_ignore_case(target, b"http://")
        .or_else(|| strip_prefix_ignore_case(target, b"https://"))
    {
        // Absolute form (RFC 9112 §3.2.2): drop the authority, keep path and query.
        match after_scheme.iter().position(|&b| b == b'/' || b == b'?') {
            Some(at) => after_scheme.get(at..).unwrap_or_default(),
            None => b"/",
        }
    } else {
        return Err(Http1Error::BadRequest("malformed request target"));
    };
    let (path, query) = match origin.iter().position(|&b| b == b'?') {
        Some(at) => (
            origin.get(..at).unwrap_or_default(),
            origin.get(at + 1..).unwrap_or_default(),
        ),
        None => (origin, &[][..]),
    };
    let path = if path.is_empty() { &b"/"[..] } else { path };
    if !escapes_well_formed(path) {
        return Err(Http1Error::BadRequest("invalid URL escape in path"));
    }
    let text = |bytes: &[u8]| {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Http1Error::BadRequest("request target is not UTF-8"))
    };
    Ok((text(path)?, text(query)?))
}

fn strip_prefix_ignore_case<'a>(bytes: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = bytes.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        bytes.get(prefix.len()..)
    } else {
        None
    }
}

/// Every `%` is followed by two hex digits.
fn escapes_well_formed(path: &[u8]) -> bool {
    let mut bytes = path.iter();
    while let Some(&byte) = bytes.next() {
        if byte == b'%' {
            let high = bytes.next().is_some_and(u8::is_ascii_hexdigit);
            let low = bytes.next().is_some_and(u8::is_ascii_hexdigit);
            if !(high && low) {
                return false;
            }
        }
    }
    true
}

/// `name: value` with the value's surrounding whitespace removed.
fn parse_field_line(line: &[u8]) -> Result<(&[u8], &[u8]), Http1Error> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(Http1Error::BadRequest("obsolete line folding"));
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(Http1Error::BadRequest("header line without a colon"))?;
    let name = line.get(..colon).unwrap_or_default();
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(Http1Error::BadRequest("malformed header name"));
    }
    let value = line.get(colon + 1..).unwrap_or_default();
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let leading = value.iter().take_while(|b| is_space(b)).count();
    let value = value.get(leading..).unwrap_or_default();
    let trailing = value.iter().rev().take_while(|b| is_space(b)).count();
    let value = value.get(..value.len() - trailing).unwrap_or_default();
    let value_ok = |b: u8| b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80;
    if !value.iter().all(|&b| value_ok(b)) {
        return Err(Http1Error::BadRequest("control character in header value"));
    }
    Ok((name, value))
}

fn parse_content_length(text: &str) -> Result<usize, Http1Error> {
    const BAD: Http1Error = Http1Error::BadRequest("malformed Content-Length");
    if text.is_empty()
        || text.len() > CONTENT_LENGTH_DIGITS_MAX
        || !text.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(BAD);
    }
    let value: u64 = text.parse().map_err(|_| BAD)?;
    usize::try_from(value).map_err(|_| Http1Error::BodyTooLarge)
}

/// Walks a chunked body (RFC 9112 §7.1) at the start of `buf`, appending the data to `sink`
/// when given. `Ok(Some(used))`: complete, trailers included, in `used` bytes.
fn walk_chunks(
    buf: &[u8],
    limits: &Limits,
    mut sink: Option<&mut Vec<u8>>,
) -> Result<Option<usize>, Http1Error> {
    let mut position = 0usize;
    let mut total = 0usize;
    let mut framing = 0usize;
    loop {
        let rest = buf.get(position..).unwrap_or_default();
        let Some(line_len) = rest
            .iter()
            .take(CHUNK_LINE_BYTES_MAX)
            .position(|&b| b == b'\n')
        else {
            if rest.len() >= CHUNK_LINE_BYTES_MAX {
                return Err(Http1Error::BadRequest("chunk size line too long"));
            }
            return Ok(None);
        };
        let line = strip_cr(rest.get(..line_len).unwrap_or_default())?;
        let size = parse_chunk_size(line)?;
        position += line_len + 1;
        framing += line_len + 1;
        if size == 0 {
            break;
        }
        framing += 2;
        if framing > CHUNK_FRAMING_BYTES_MAX {
            return Err(Http1Error::BodyTooLarge);
        }
        total = total
            .checked_add(size)
            .filter(|&total| total <= limits.body_bytes_max)
            .ok_or(Http1Error::BodyTooLarge)?;
        let data_end = position + size;
        let Some(after) = buf.get(data_end..data_end + 2) else {
            return Ok(None);
        };
        if after != b"\r\n" {
            return Err(Http1Error::BadRequest("chunk data not followed by CRLF"));
        }
        if let Some(sink) = sink.as_deref_mut() {
            sink.extend_from_slice(buf.get(position..data_end).unwrap_or_default());
        }
        position = data_end + 2;
    }
    // Trailer section: header lines up to an empty line, read and dropped.
    let trailer_start = position;
    let mut trailers = 0usize;
    loop {
        let rest = buf.get(position..).unwrap_or_default();
        let room = limits
            .head_bytes_max
            .saturating_sub(position - trailer_start);
        let Some(line_len) = rest.iter().take(room).position(|&b| b == b'\n') else {
            if rest.len() >= room {
                return Err(Http1Error::HeadTooLarge);
            }
            return Ok(None);
        };
        let line = strip_cr(rest.get(..line_len).unwrap_or_default())?;
        position += line_len + 1;
        if line.is_empty() {
            return Ok(Some(position));
        }
        parse_field_line(line)?;
        trailers += 1;
        if trailers > limits.headers_count_max {
            return Err(Http1Error::TooManyHeaders);
        }
    }
}

/// `chunk-size [ chunk-ext ]`: hex digits, then optionally whitespace and `;` extensions.
fn parse_chunk_size(line: &[u8]) -> Result<usize, Http1Error> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(Http1Error::BadRequest("malformed chunk size"));
    }
    if digits > CHUNK_SIZE_DIGITS_MAX {
        return Err(Http1Error::BadRequest("chunk size too large"));
    }
    let size = line.iter().take(digits).fold(0u64, |size, &digit| {
        (size << 4) | u64::from(hex_value(digit))
    });
    let extension = line.get(digits..).unwrap_or_default();
    let extension = extension
        .get(
            extension
                .iter()
                .take_while(|&&b| b == b' ' || b == b'\t')
                .count()..,
        )
        .unwrap_or_default();
    if !extension.is_empty() && extension.first() != Some(&b';') {
        return Err(Http1Error::BadRequest("malformed chunk extension"));
    }
    if extension
        .iter()
        .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        return Err(Http1Error::BadRequest(
            "control character in chunk extension",
        ));
    }
    usize::try_from(size).map_err(|_| Http1Error::BodyTooLarge)
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Writes `resp` as an HTTP/1.1 response. The writer owns the framing headers: it always
/// writes `Content-Length` (except for 1xx, 204 and 304, which carry no body) and
/// `Connection: close` when the connection will close, `Connection: keep-alive` otherwise
/// (which an HTTP/1.0 keep-alive client needs, and 1.1 ignores). A `HEAD` answer has the
/// headers of the `GET` answer and no body. No `Date`: add one with [`http_date`] if wanted.
pub fn write_response(resp: &Response, keep_alive: bool, head_request: bool, dst: &mut Vec<u8>) {
    let status = resp.status;
    dst.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(dst, u64::from(status));
    dst.push(b' ');
    dst.extend_from_slice(reason_phrase(status).as_bytes());
    dst.extend_from_slice(b"\r\n");
    for (name, value) in &resp.headers {
        let framing = ["content-length", "connection", "transfer-encoding"]
            .iter()
            .any(|f| name.eq_ignore_ascii_case(f));
        let breaks_framing = name
            .bytes()
            .chain(value.bytes())
            .any(|b| b == b'\r' || b == b'\n');
        debug_assert!(
            !framing && !breaks_framing,
            "header {name:?} is the writer's or breaks framing"
        );
        if framing || breaks_framing {
            continue;
        }
        dst.extend_from_slice(name.as_bytes());
        dst.extend_from_slice(b": ");
        dst.extend_from_slice(value.as_bytes());
        dst.extend_from_slice(b"\r\n");
    }
    let has_body = !((100..200).contains(&status) || status == 204 || status == 304);
    debug_assert!(
        has_body || resp.body.is_empty(),
        "status {status} has no body"
    );
    if has_body {
        dst.extend_from_slice(b"Content-Length: ");
        push_decimal(dst, resp.body.len() as u64);
        dst.extend_from_slice(b"\r\n");
    }
    dst.extend_from_slice(if keep_alive {
        b"Connection: keep-alive\r\n"
    } else {
        b"Connection: close\r\n"
    });
    dst.extend_from_slice(b"\r\n");
    if has_body && !head_request {
        dst.extend_from_slice(&resp.body);
    }
}

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

fn push_decimal(dst: &mut Vec<u8>, value: u64) {
    let mut digits = [0u8; 20];
    let mut count = 0;
    let mut rest = value;
    loop {
        if let Some(slot) = digits.get_mut(count) {
            *slot = b'0' + (rest % 10) as u8;
        }
        count += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    dst.extend(digits.iter().take(count).rev());
}

/// The reason phrase of a status code (RFC 9110 §15), as Go's `http.StatusText`.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Request Entity Too Large",
        414 => "Request URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        499 => "Client Closed Request",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7) for a `Date` header.
pub fn http_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let seconds_of_day = unix_secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let weekday = DAYS.get((days % 7) as usize).copied().unwrap_or("Thu");
    let month_name = MONTHS.get((month - 1) as usize).copied().unwrap_or("Jan");
    format!(
        "{weekday}, {day:02} {month_name} {year:04} {:02}:{:02}:{:02} GMT",
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60
    )
}

/// Fuzz entry point: parses `data` as a stream of pipelined requests under small limits and
/// checks the parser's invariants (no panic, progress, limits kept, a strict prefix of a
/// complete request is incomplete), routes each request (the query API's parameter, TraceQL
/// and tag-name parsing: no IO) and writes an answer to each.
pub fn fuzz_parse(data: &[u8]) {
    let limits = Limits {
        head_bytes_max: 1024,
        body_bytes_max: 4096,
        headers_count_max: 16,
    };
    let _ = h2_preface_check(data);
    let mut rest = data;
    let mut out = Vec::new();
    loop {
        let _ = expects_continue(rest, &limits);
        match parse_request(rest, &limits) {
            Ok(Some((request, used))) => {
                assert!(
                    used > 0 && used <= rest.len(),
                    "consumed {used} of {}",
                    rest.len()
                );
                assert!(request.body.len() <= limits.body_bytes_max);
                assert!(request.headers.len() <= limits.headers_count_max);
                let prefix = rest.get(..used - 1).unwrap_or_default();
                assert!(
                    matches!(parse_request(prefix, &limits), Ok(None)),
                    "a strict prefix of a complete request parsed differently"
                );
                let _ = crate::api::route(
                    &request,
                    &crate::search_api::SearchLimits::default(),
                    &crate::metrics_api::MetricsLimits::default(),
                );
                let response = Response {
                    status: 200,
                    headers: Vec::new(),
                    body: request.body,
                };
                write_response(
                    &response,
                    request.keep_alive,
                    request.method == "HEAD",
                    &mut out,
                );
                rest = rest.get(used..).unwrap_or_default();
            }
            Ok(None) => break,
            Err(error) => {
                let response = error.to_response();
                write_response(&response, false, false, &mut out);
                break;
            }
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests index known data and fail loudly"
)]
mod tests {
    use super::*;

    fn parse(input: &str) -> Result<Option<(Request, usize)>, Http1Error> {
        parse_request(input.as_bytes(), &Limits::default())
    }

    fn parse_one(input: &str) -> Request {
        let (request, used) = parse(input).unwrap().expect("complete");
        assert_eq!(used, input.len());
        request
    }

    #[test]
    fn simple_get() {
        let request = parse_one(
            "GET /api/traces/abc?start=1&end=2 HTTP/1.1\r\nHost: localhost:3200\r\n\
             Accept: application/protobuf\r\nX-Empty:\r\n\r\n",
        );
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/api/traces/abc");
        assert_eq!(request.query, "start=1&end=2");
        assert_eq!(
            request.headers,
            vec![
                ("host".to_string(), "localhost:3200".to_string()),
                ("accept".to_string(), "application/protobuf".to_string()),
                ("x-empty".to_string(), String::new()),
            ]
        );
        assert!(request.body.is_empty());
        assert!(request.keep_alive);
    }

    #[test]
    fn keep_alive_rules() {
        let cases = [
            ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", true),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                false,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n",
                false,
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
                true,
            ),
            ("GET / HTTP/1.0\r\n\r\n", false),
            ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
            (
                "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
                false,
            ),
            ("GET / HTTP/1.9\r\nHost: a\r\n\r\n", true),
        ];
        for (input, keep_alive) in cases {
            assert_eq!(parse_one(input).keep_alive, keep_alive, "{input:?}");
        }
    }

    #[test]
    fn target_forms_and_line_endings() {
        let request =
            parse_one("GET http://example.com:3200/ready?x=1 HTTP/1.1\r\nHost: e\r\n\r\n");
        assert_eq!(
            (request.path.as_str(), request.query.as_str()),
            ("/ready", "x=1")
        );
        let request = parse_one("GET HTTP://example.com HTTP/1.1\r\nHost: e\r\n\r\n");
        assert_eq!(request.path, "/");
        let request = parse_one("GET https://example.com?q HTTP/1.1\r\nHost: e\r\n\r\n");
        assert_eq!((request.path.as_str(), request.query.as_str()), ("/", "q"));
        let request = parse_one("OPTIONS * HTTP/1.1\r\nHost: e\r\n\r\n");
        assert_eq!(request.path, "*");
        let request = parse_one("\r\n\r\nGET /a%20b HTTP/1.1\nHost: e\n\n");
        assert_eq!(request.path, "/a%20b");
        let request = parse_one("GET /x HTTP/1.1\r\nHost: e\r\nName:  spaced value \t\r\n\r\n");
        assert_eq!(request.headers[1].1, "spaced value");
    }

    #[test]
    fn pipelined_requests() {
        let stream = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n\
                      POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello\
                      POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
                      GET /d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n\
                      GET /e";
        let mut rest = stream.as_bytes();
        let mut seen = Vec::new();
        while let Some((request, used)) = parse_request(rest, &Limits::default()).unwrap() {
            seen.push((
                request.path,
                String::from_utf8(request.body).unwrap(),
                request.keep_alive,
            ));
            rest = &rest[used..];
        }
        assert_eq!(rest, b"GET /e");
        let expected = [
            ("/a", "", true),
            ("/b", "hello", true),
            ("/c", "abc", true),
            ("/d", "", false),
        ];
        let seen: Vec<_> = seen
            .iter()
            .map(|(p, b, k)| (p.as_str(), b.as_str(), *k))
            .collect();
        assert_eq!(seen, expected);
    }

    const CHUNKED: &str =
        "POST /api/search HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n\
                           5;name=value\r\nhello\r\n6 ; ext ;other=\"q\"\r\n world\r\n\
                           A\r\n0123456789\r\n0;last\r\nTrailer-One: x\r\nTrailer-Two:y\r\n\r\n";

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let request = parse_one(CHUNKED);
        assert_eq!(request.body, b"hello world0123456789");
        assert_eq!(request.method, "POST");
    }

    #[test]
    fn partial_input_at_every_split_point() {
        let inputs = [
            "GET /api/echo HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n",
            "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
            "GET / HTTP/1.0\n\n",
            CHUNKED,
        ];
        for input in inputs {
            let complete = parse_one(input);
            for split in 0..input.len() {
                let prefix = &input.as_bytes()[..split];
                assert!(
                    matches!(parse_request(prefix, &Limits::default()), Ok(None)),
                    "prefix of {split} bytes of {input:?}"
                );
            }
            // More bytes after a complete request do not change it.
            let mut longer = input.as_bytes().to_vec();
            longer.extend_from_slice(b"GET / HTTP/1.1\r\n");
            let (again, used) = parse_request(&longer, &Limits::default()).unwrap().unwrap();
            assert_eq!(used, input.len());
            assert_eq!(again.body, complete.body);
        }
    }

    fn check_error(input: &[u8], limits: &Limits, expected: Http1Error, status: u16) {
        let result = parse_request(input, limits);
        assert_eq!(
            result.as_ref().err(),
            Some(&expected),
            "{:?}",
            String::from_utf8_lossy(&input[..input.len().min(200)])
        );
        assert_eq!(expected.status(), status);
    }

    #[test]
    fn errors() {
        let small = Limits {
            head_bytes_max: 9 * 1024,
            body_bytes_max: 10,
            headers_count_max: 3,
        };
        let bad = Http1Error::BadRequest;
        let cases: Vec<(Vec<u8>, Http1Error, u16)> = vec![
            (b"GET /\r\n\r\n".to_vec(), bad("malformed request line"), 400),
            (b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), bad("malformed request line"), 400),
            (b"GET / HTTP/1.1 x\r\n\r\n".to_vec(), bad("malformed request line"), 400),
            (b"G(T / HTTP/1.1\r\n\r\n".to_vec(), bad("malformed request line"), 400),
            (b"\x16\x03\x01\x02\x00\x01".to_vec(), bad("malformed request line"), 400),
            (b"GET / HTTP/1\r\n\r\n".to_vec(), bad("malformed HTTP version"), 400),
            (b"GET / http/1.1\r\n\r\n".to_vec(), bad("malformed HTTP version"), 400),
            (b"GET / HTTP/2.0\r\n\r\n".to_vec(), Http1Error::UnsupportedVersion, 505),
            (b"GET / HTTP/0.9\r\n\r\n".to_vec(), Http1Error::UnsupportedVersion, 505),
            (b"GET ab HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), bad("malformed request target"), 400),
            (b"GET * HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), bad("'*' target is only for OPTIONS"), 400),
            (b"GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), bad("invalid URL escape in path"), 400),
            (b"GET /a%2 HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), bad("invalid URL escape in path"), 400),
            (b"GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), bad("request target is not UTF-8"), 400),
            (b"GET / HTTP/1.1\r\n\r\n".to_vec(), bad("missing required Host header"), 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(), bad("too many Host headers"), 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n".to_vec(), bad("obsolete line folding"), 400),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n".to_vec(), bad("malformed header name"), 400),
            (b"GET / HTTP/1.1\r\nHost a\r\n\r\n".to_vec(), bad("header line without a colon"), 400),
            (b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n".to_vec(), bad("control character in header value"), 400),
            (b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n".to_vec(), bad("bare CR in request head"), 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n".to_vec(), bad("malformed Content-Length"), 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n".to_vec(), bad("malformed Content-Length"), 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n".to_vec(), bad("malformed Content-Length"), 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n".to_vec(), bad("malformed Content-Length"), 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec(), bad("multiple different Content-Length values"), 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n".to_vec(), Http1Error::BodyTooLarge, 413),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n".to_vec(), bad("both Transfer-Encoding and Content-Length"), 400),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), bad("Transfer-Encoding in an HTTP/1.0 request"), 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(), Http1Error::UnsupportedTransferEncoding, 501),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), Http1Error::UnsupportedTransferEncoding, 501),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n".to_vec(), bad("malformed chunk size"), 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\n".to_vec(), bad("malformed chunk extension"), 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;\x01\r\n".to_vec(), bad("control character in chunk extension"), 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000001\r\n".to_vec(), bad("chunk size too large"), 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc".to_vec(), bad("chunk data not followed by CRLF"), 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n".to_vec(), Http1Error::BodyTooLarge, 413),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\n".to_vec(), Http1Error::BodyTooLarge, 413),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n".to_vec(), bad("header line without a colon"), 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\na: 1\r\nb: 2\r\nc: 3\r\nd: 4\r\n".to_vec(), Http1Error::TooManyHeaders, 431),
            (b"GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n".to_vec(), Http1Error::TooManyHeaders, 431),
        ];
        for (input, expected, status) in cases {
            check_error(&input, &small, expected, status);
        }
        // A head that does not end within the limit, complete or not.
        let mut long = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        long.resize(small.head_bytes_max + 1, b'x');
        check_error(&long, &small, Http1Error::HeadTooLarge, 431);
        long.extend_from_slice(b"\r\n\r\n");
        check_error(&long, &small, Http1Error::HeadTooLarge, 431);
        // A chunk line without an end.
        let mut endless =
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1".to_vec();
        endless.resize(endless.len() + CHUNK_LINE_BYTES_MAX, b'0');
        check_error(&endless, &small, bad("chunk size line too long"), 400);
        // Many tiny chunks: refused once their framing passes the bound.
        let mut tiny = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..CHUNK_FRAMING_BYTES_MAX / 5 + 1 {
            tiny.extend_from_slice(b"1\r\nx\r\n");
        }
        let generous = Limits {
            body_bytes_max: BODY_BYTES_MAX,
            ..small
        };
        check_error(&tiny, &generous, Http1Error::BodyTooLarge, 413);
        // Trailers that never end.
        let mut trailers =
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: ".to_vec();
        trailers.resize(trailers.len() + small.head_bytes_max, b't');
        check_error(&trailers, &small, Http1Error::HeadTooLarge, 431);
    }

    #[test]
    fn error_responses_read_like_go() {
        let response = Http1Error::BadRequest("missing required Host header").to_response();
        assert_eq!(response.status, 400);
        assert_eq!(
            response.body,
            b"400 Bad Request: missing required Host header"
        );
        let response = Http1Error::UnsupportedVersion.to_response();
        assert_eq!(
            response.body,
            b"505 HTTP Version Not Supported: unsupported protocol version"
        );
        assert_eq!(Http1Error::HeadTooLarge.to_response().status, 431);
        assert_eq!(
            Http1Error::UnsupportedTransferEncoding.to_response().status,
            501
        );
    }

    #[test]
    fn expect_continue() {
        let limits = Limits::default();
        let head =
            b"POST /p HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        assert!(expects_continue(head, &limits));
        let mut with_body = head.to_vec();
        with_body.push(b'a');
        assert!(!expects_continue(&with_body, &limits));
        assert!(!expects_continue(&head[..head.len() - 1], &limits));
        assert!(!expects_continue(
            b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n",
            &limits
        ));
    }

    #[test]
    fn writes_responses() {
        let response = Response {
            status: 200,
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: b"ready\n".to_vec(),
        };
        let mut out = Vec::new();
        write_response(&response, true, false, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 6\r\nConnection: keep-alive\r\n\r\nready\n"
        );
        let mut out = Vec::new();
        write_response(&response, false, true, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 6\r\nConnection: close\r\n\r\n"
        );
        let no_content = Response {
            status: 204,
            headers: vec![],
            body: vec![],
        };
        let mut out = Vec::new();
        write_response(&no_content, true, false, &mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n"
        );
        let mut out = Vec::new();
        let empty = Response {
            status: 404,
            headers: vec![("Vary".into(), "Accept-Encoding".into())],
            body: vec![],
        };
        write_response(&empty, true, false, &mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\nVary: Accept-Encoding\r\nContent-Length: 0\r\n\
              Connection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn a_written_request_round_trips_through_the_parser() {
        // The writer's output, read back as a request head, has the same framing.
        let mut out = Vec::new();
        let body = vec![b'z'; 1000];
        write_response(
            &Response {
                status: 200,
                headers: vec![],
                body: body.clone(),
            },
            true,
            false,
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        let as_request = text.replacen("HTTP/1.1 200 OK", "PUT /x HTTP/1.1\r\nHost: h", 1);
        assert_eq!(parse_one(&as_request).body, body);
    }

    #[test]
    fn dates() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(1_795_466_458), "Mon, 23 Nov 2026 20:40:58 GMT");
    }

    #[test]
    fn h2_preface() {
        assert_eq!(h2_preface_check(b""), PrefaceCheck::NeedMore);
        assert_eq!(
            h2_preface_check(b"PRI * HTTP/2.0\r\n"),
            PrefaceCheck::NeedMore
        );
        assert_eq!(h2_preface_check(H2_PREFACE), PrefaceCheck::IsH2);
        let mut more = H2_PREFACE.to_vec();
        more.extend_from_slice(&[0, 0, 0, 4]);
        assert_eq!(h2_preface_check(&more), PrefaceCheck::IsH2);
        assert_eq!(h2_preface_check(b"GET / HTTP/1.1\r\n"), PrefaceCheck::NotH2);
        assert_eq!(h2_preface_check(b"POST"), PrefaceCheck::NotH2);
        assert_eq!(h2_preface_check(b"PRI * HTTP/1.1"), PrefaceCheck::NotH2);
    }

    /// A deterministic stand-in for a fuzzer run: mutations of valid requests (byte flips,
    /// insertions, deletions, truncations, splices) through [`fuzz_parse`].
    #[test]
    fn fuzz_smoke() {
        let seeds: [&[u8]; 5] = [
            b"GET /api/traces/0123?start=1 HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.0\r\n\r\n",
            CHUNKED.as_bytes(),
            b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nbody",
            b"\r\nOPTIONS * HTTP/1.1\nHost: h\n\n",
            H2_PREFACE,
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"\r\n :;0123456789abcdefxGHTP/.%\t\x00\xff";
        for round in 0..20_000 {
            let seed = seeds[round % seeds.len()];
            let mut data = seed.to_vec();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % (data.len() + 1);
                let byte = alphabet[(next() as usize) % alphabet.len()];
                match next() % 5 {
                    0 if at < data.len() => data[at] = byte,
                    1 => data.insert(at, byte),
                    2 if at < data.len() => {
                        data.remove(at);
                    }
                    3 => data.truncate(at),
                    _ => {
                        let other = seeds[(next() as usize) % seeds.len()];
                        data.extend_from_slice(other);
                    }
                }
            }
            fuzz_parse(&data);
        }
    }
}

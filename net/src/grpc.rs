//! gRPC over our HTTP/2: status codes, length-prefixed message framing, `grpc-encoding`
//! (identity and gzip), `grpc-timeout`, and `grpc-message` percent-encoding. Sans-IO.
//!
//! A gRPC message on the wire (gRPC over HTTP/2, "Length-Prefixed-Message"):
//!
//! ```text
//! +------------+---------------------+-----------------+
//! | flag: u8   | length: u32 (BE)    | message bytes   |
//! | 0 = plain  |                     | (compressed per |
//! | 1 = compr. |                     |  grpc-encoding) |
//! +------------+---------------------+-----------------+
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use std::borrow::Cow;
use std::fmt;
use std::io::Read;
use std::time::Duration;

/// gRPC status codes (grpc/doc/statuscodes.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The status as the decimal text of the `grpc-status` trailer.
    pub fn as_header(self) -> &'static [u8] {
        const TEXTS: [&[u8]; 17] = [
            b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9", b"10", b"11", b"12", b"13",
            b"14", b"15", b"16",
        ];
        TEXTS.get(self as usize).copied().unwrap_or(b"2")
    }

    pub fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

/// A gRPC error status: the code and a message for `grpc-message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub message: String,
}

impl Status {
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

/// Bytes of the message prefix.
pub const PREFIX_BYTES: usize = 5;

/// `grpc-encoding` values we accept, in the order advertised in `grpc-accept-encoding`.
pub const ACCEPT_ENCODING: &str = "identity,gzip";

/// Message compression named by `grpc-encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

impl Encoding {
    /// Parses a `grpc-encoding` header value; absent means identity.
    pub fn parse(value: Option<&[u8]>) -> Result<Encoding, Status> {
        match value {
            None | Some(b"identity") | Some(b"") => Ok(Encoding::Identity),
            Some(b"gzip") => Ok(Encoding::Gzip),
            Some(other) => Err(Status::new(
                Code::Unimplemented,
                format!(
                    "grpc: Decompressor is not installed for grpc-encoding \"{}\"",
                    String::from_utf8_lossy(other)
                ),
            )),
        }
    }
}

/// Takes the one message of a unary request body and returns it decompressed (borrowed
/// from the body when it was not compressed: no copy on the ingest path).
/// `message_bytes_max` bounds both the wire length and the decompressed length.
pub fn decode_unary(
    body: &[u8],
    encoding: Encoding,
    message_bytes_max: usize,
) -> Result<Cow<'_, [u8]>, Status> {
    let Some((header, rest)) = body.split_first_chunk::<PREFIX_BYTES>() else {
        return Err(Status::new(
            Code::InvalidArgument,
            format!(
                "grpc: request body of {} bytes is shorter than the 5-byte message prefix",
                body.len()
            ),
        ));
    };
    let [flag, l0, l1, l2, l3] = *header;
    let length = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
    if length > message_bytes_max {
        return Err(Status::new(
            Code::ResourceExhausted,
            format!("grpc: received message larger than max ({length} vs. {message_bytes_max})"),
        ));
    }
    if rest.len() != length {
        return Err(Status::new(
            Code::InvalidArgument,
            if rest.len() < length {
                format!(
                    "grpc: message prefix says {length} bytes but the body holds {}",
                    rest.len()
                )
            } else {
                format!(
                    "grpc: unary request carries more than one message ({} bytes after a {length}-byte message)",
                    rest.len() - length
                )
            },
        ));
    }
    match (flag, encoding) {
        (0, _) => Ok(Cow::Borrowed(rest)),
        (1, Encoding::Gzip) => gunzip(rest, message_bytes_max).map(Cow::Owned),
        (1, Encoding::Identity) => Err(Status::new(
            Code::Internal,
            "grpc: compressed flag set with identity or empty encoding",
        )),
        (other, _) => Err(Status::new(
            Code::InvalidArgument,
            format!("grpc: invalid message compression flag {other}"),
        )),
    }
}

/// Decompresses a gzip message, refusing to inflate past `bytes_max` (a gzip bomb).
pub fn gunzip(compressed: &[u8], bytes_max: usize) -> Result<Vec<u8>, Status> {
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(bytes_max));
    let limit = u64::try_from(bytes_max)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut decoder = flate2::read::GzDecoder::new(compressed).take(limit);
    if let Err(err) = decoder.read_to_end(&mut out) {
        return Err(Status::new(
            Code::Internal,
            format!("grpc: failed to decompress the received message: {err}"),
        ));
    }
    if out.len() > bytes_max {
        return Err(Status::new(
            Code::ResourceExhausted,
            format!("grpc: received message after decompression larger than max {bytes_max}"),
        ));
    }
    Ok(out)
}

/// Frames one uncompressed message.
pub fn encode_message(message: &[u8], dst: &mut Vec<u8>) {
    dst.push(0);
    // Messages we send are far below 4 GiB.
    let length = u32::try_from(message.len()).unwrap_or(u32::MAX);
    dst.extend_from_slice(&length.to_be_bytes());
    dst.extend_from_slice(message);
}

/// Parses `grpc-timeout`: at most 8 ASCII digits and a unit (H M S m u n).
pub fn parse_timeout(value: &[u8]) -> Option<Duration> {
    let (unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let amount: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(amount.checked_mul(3600)?),
        b'M' => Duration::from_secs(amount.checked_mul(60)?),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Percent-encodes a status message for `grpc-message` (gRPC over HTTP/2: bytes outside
/// 0x20..=0x7E, and '%', are encoded).
pub fn percent_encode_message(message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b);
        } else {
            let [_, high, low] = percent_triplet(b);
            out.extend_from_slice(&[b'%', high, low]);
        }
    }
    out
}

/// `%XY` for one byte.
fn percent_triplet(b: u8) -> [u8; 3] {
    let digit = |nibble: u8| match nibble {
        0..=9 => b'0' + nibble,
        _ => b'A' + nibble - 10,
    };
    [b'%', digit(b >> 4), digit(b & 0x0f)]
}

/// Splits a gRPC `:path` (`/package.Service/Method`) into service and method.
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (service, method) = rest.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn framed(flag: u8, message: &[u8]) -> Vec<u8> {
        let mut out = vec![flag];
        out.extend_from_slice(&(message.len() as u32).to_be_bytes());
        out.extend_from_slice(message);
        out
    }

    #[test]
    fn unary_identity_and_gzip() {
        let body = framed(0, b"hello");
        assert_eq!(
            decode_unary(&body, Encoding::Identity, 100)
                .unwrap()
                .as_ref(),
            b"hello"
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello gzip").unwrap();
        let body = framed(1, &gz.finish().unwrap());
        assert_eq!(
            decode_unary(&body, Encoding::Gzip, 100).unwrap().as_ref(),
            b"hello gzip"
        );
    }

    #[test]
    fn unary_errors_say_what_was_wrong() {
        let short = decode_unary(&[0, 0], Encoding::Identity, 100).unwrap_err();
        assert_eq!(short.code, Code::InvalidArgument);
        let truncated =
            decode_unary(&framed(0, b"hello")[..7], Encoding::Identity, 100).unwrap_err();
        assert!(truncated.message.contains("says 5 bytes"), "{truncated}");
        let mut two = framed(0, b"a");
        two.extend(framed(0, b"b"));
        assert!(decode_unary(&two, Encoding::Identity, 100)
            .unwrap_err()
            .message
            .contains("more than one message"));
        let big = decode_unary(&framed(0, &[0; 50]), Encoding::Identity, 10).unwrap_err();
        assert_eq!(big.code, Code::ResourceExhausted);
        let bad_gzip = decode_unary(&framed(1, b"not gzip"), Encoding::Gzip, 100).unwrap_err();
        assert_eq!(bad_gzip.code, Code::Internal);
        let flag = decode_unary(&framed(7, b"x"), Encoding::Identity, 100).unwrap_err();
        assert_eq!(flag.code, Code::InvalidArgument);
    }

    #[test]
    fn gzip_bomb_is_bounded() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 10 << 20]).unwrap();
        let compressed = gz.finish().unwrap();
        assert!(compressed.len() < 64 << 10);
        let err = gunzip(&compressed, 1 << 20).unwrap_err();
        assert_eq!(err.code, Code::ResourceExhausted);
    }

    #[test]
    fn encodings() {
        assert_eq!(Encoding::parse(None).unwrap(), Encoding::Identity);
        assert_eq!(Encoding::parse(Some(b"gzip")).unwrap(), Encoding::Gzip);
        assert_eq!(
            Encoding::parse(Some(b"br")).unwrap_err().code,
            Code::Unimplemented
        );
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout(b"10S"), Some(Duration::from_secs(10)));
        assert_eq!(parse_timeout(b"250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_timeout(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_timeout(b"123456789S"), None);
        assert_eq!(parse_timeout(b"S"), None);
        assert_eq!(parse_timeout(b"10x"), None);
    }

    #[test]
    fn messages_and_paths() {
        assert_eq!(
            percent_encode_message("a 100% ü"),
            b"a 100%25 %C3%BC".to_vec()
        );
        assert_eq!(
            split_path("/opentelemetry.proto.collector.trace.v1.TraceService/Export"),
            Some((
                "opentelemetry.proto.collector.trace.v1.TraceService",
                "Export"
            ))
        );
        assert_eq!(split_path("/nope"), None);
        let mut out = Vec::new();
        encode_message(b"abc", &mut out);
        assert_eq!(out, [0, 0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(Code::Unavailable.as_header(), b"14");
    }
}

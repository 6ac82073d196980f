//! The receivers besides OTLP/gRPC, as the network edge sees them: which port serves which,
//! request bodies decompressed and bounded, tenants read, and each receiver's answer in its own
//! protocol's terms. Decoding is `allegro-receivers` (sans-IO); ingesting is
//! [`crate::ingest`], shared with OTLP/gRPC.
//!
//! | receiver (config key)                          | default port | transport          | module        |
//! |------------------------------------------------|--------------|--------------------|---------------|
//! | `otlp.protocols.http`                          | 4318         | HTTP/1.1, h2c      | [`otlp_http`] |
//! | `zipkin`                                       | 9411         | HTTP/1.1, h2c      | [`zipkin`]    |
//! | `jaeger.protocols.thrift_http`                 | 14268        | HTTP/1.1, h2c      | [`jaeger`]    |
//! | `jaeger.protocols.grpc`                        | 14250        | gRPC (HTTP/2)      | [`jaeger`]    |
//! | `jaeger.protocols.thrift_compact` / `_binary`  | 6831 / 6832  | UDP datagrams      | [`jaeger`]    |

pub mod jaeger;
pub mod otlp_http;
pub mod zipkin;

use std::io::Read;

use allegro_engine::Tenant;

use crate::api;
use crate::ingest::Receiver;
use crate::shared::Shared;

/// Answers one HTTP request to an HTTP receiver (gRPC and UDP receivers answer 404 here).
pub async fn handle_http(
    receiver: Receiver,
    request: api::Request,
    shared: &Shared,
) -> api::Response {
    match receiver {
        Receiver::OtlpHttp => otlp_http::handle(request, shared).await,
        Receiver::Zipkin => zipkin::handle(request, shared).await,
        Receiver::JaegerThriftHttp => jaeger::handle_thrift_http(request, shared).await,
        Receiver::OtlpGrpc
        | Receiver::JaegerGrpc
        | Receiver::JaegerThriftCompact
        | Receiver::JaegerThriftBinary => api::not_found(),
    }
}

/// Why a request body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// A `Content-Encoding` the receiver does not decode.
    UnsupportedEncoding(String),
    /// The compressed data is damaged.
    Corrupt(String),
    /// The (decompressed) body is larger than the limit.
    TooLarge { bytes_max: usize },
}

impl BodyError {
    pub fn http_status(&self) -> u16 {
        match self {
            BodyError::UnsupportedEncoding(_) | BodyError::Corrupt(_) => 400,
            BodyError::TooLarge { .. } => 413,
        }
    }

    pub fn message(&self) -> String {
        match self {
            BodyError::UnsupportedEncoding(encoding) => {
                format!(
                    "unsupported Content-Encoding: {encoding:?} (supported: gzip, deflate, zlib)"
                )
            }
            BodyError::Corrupt(err) => format!("cannot decompress the request body: {err}"),
            BodyError::TooLarge { bytes_max } => {
                format!("request body larger than {bytes_max} bytes")
            }
        }
    }
}

/// The request body with its `Content-Encoding` undone (`gzip`, and `deflate`/`zlib`, which the
/// Collector both reads as zlib), never inflated past `bytes_max` (a compression bomb).
pub fn decoded_body(request: &api::Request, bytes_max: usize) -> Result<Vec<u8>, BodyError> {
    let encoding = request
        .header("content-encoding")
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let limit = u64::try_from(bytes_max)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut out = Vec::new();
    let result = match encoding.as_str() {
        "" | "identity" => {
            if request.body.len() > bytes_max {
                return Err(BodyError::TooLarge { bytes_max });
            }
            return Ok(request.body.clone());
        }
        "gzip" | "x-gzip" => flate2::read::GzDecoder::new(request.body.as_slice())
            .take(limit)
            .read_to_end(&mut out),
        "deflate" | "zlib" => flate2::read::ZlibDecoder::new(request.body.as_slice())
            .take(limit)
            .read_to_end(&mut out),
        _ => return Err(BodyError::UnsupportedEncoding(encoding)),
    };
    if let Err(err) = result {
        return Err(BodyError::Corrupt(err.to_string()));
    }
    if out.len() > bytes_max {
        return Err(BodyError::TooLarge { bytes_max });
    }
    Ok(out)
}

/// The tenant of a receiver request: `X-Scope-OrgID` with `multitenancy_enabled`, else the
/// single tenant. `Err` holds the HTTP status (401 without the header, 400 when malformed)
/// and the reason.
pub fn tenant(request: &api::Request, shared: &Shared) -> Result<Tenant, (u16, String)> {
    if !shared.settings.multitenancy {
        return Ok(Tenant::single());
    }
    let Some(value) = request.header("x-scope-orgid") else {
        return Err((
            401,
            "no org id: multitenancy_enabled is true and the request has no X-Scope-OrgID header"
                .to_owned(),
        ));
    };
    Tenant::parse(value).map_err(|err| (400, format!("invalid X-Scope-OrgID {value:?}: {err}")))
}

/// The media type of `Content-Type`, lower-cased, without parameters.
pub fn media_type(request: &api::Request) -> String {
    request
        .header("content-type")
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// What every receiver that answers in plain text checks first: the method (POST only),
/// the tenant, and the body (decompressed within the message limit; a bad one is counted as
/// malformed for `receiver`). `Err` is the answer to send.
pub fn text_preamble(
    request: &api::Request,
    shared: &Shared,
    receiver: Receiver,
) -> Result<(Tenant, Vec<u8>), api::Response> {
    if request.method != "POST" {
        let mut response = text_error(405, "405 method not allowed, supported: [POST]", false);
        response
            .headers
            .push(("Allow".to_owned(), "POST".to_owned()));
        return Err(response);
    }
    let tenant =
        tenant(request, shared).map_err(|(status, message)| text_error(status, &message, false))?;
    let body = decoded_body(request, shared.settings.grpc_message_bytes_max).map_err(|err| {
        shared.metrics.receivers.count_malformed(receiver);
        text_error(err.http_status(), &err.message(), false)
    })?;
    Ok((tenant, body))
}

/// A plain-text error as Go's `http.Error` writes it (the message and a newline), with
/// `Retry-After` when the client should retry.
pub fn text_error(status: u16, message: &str, retry: bool) -> api::Response {
    let mut response = api::text_response(status, &format!("{message}\n"));
    response
        .headers
        .push(("X-Content-Type-Options".to_owned(), "nosniff".to_owned()));
    if retry {
        response.headers.push((
            "Retry-After".to_owned(),
            crate::ingest::RETRY_AFTER_SECS.to_string(),
        ));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn request(encoding: &str, body: Vec<u8>) -> api::Request {
        api::Request {
            method: "POST".to_owned(),
            path: "/".to_owned(),
            query: String::new(),
            headers: vec![("content-encoding".to_owned(), encoding.to_owned())],
            body,
            keep_alive: true,
        }
    }

    #[test]
    fn bodies_are_decompressed_within_the_limit() {
        let plain = b"hello receivers".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(&plain).unwrap();
        let zlib = zlib.finish().unwrap();
        assert_eq!(
            decoded_body(&request("", plain.clone()), 1 << 20),
            Ok(plain.clone())
        );
        assert_eq!(
            decoded_body(&request("gzip", gz.clone()), 1 << 20),
            Ok(plain.clone())
        );
        assert_eq!(
            decoded_body(&request("deflate", zlib.clone()), 1 << 20),
            Ok(plain.clone())
        );
        assert_eq!(
            decoded_body(&request("gzip", gz), 100),
            Err(BodyError::TooLarge { bytes_max: 100 })
        );
        assert_eq!(
            decoded_body(&request("", plain), 100),
            Err(BodyError::TooLarge { bytes_max: 100 })
        );
        assert!(matches!(
            decoded_body(&request("gzip", b"not gzip".to_vec()), 100),
            Err(BodyError::Corrupt(_))
        ));
        assert_eq!(
            decoded_body(&request("br", Vec::new()), 100),
            Err(BodyError::UnsupportedEncoding("br".to_owned()))
        );
    }
}

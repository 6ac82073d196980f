//! OTLP/HTTP (`POST /v1/traces`, `distributor.receivers.otlp.protocols.http`), per the OTLP
//! specification and as the Collector's OTLP receiver answers:
//!
//! - `Content-Type: application/x-protobuf` or `application/json` (the OTLP JSON mapping);
//!   anything else is 415. The answer is written in the request's encoding.
//! - `Content-Encoding: gzip`, `deflate`, `zlib`.
//! - 200 with an `ExportTraceServiceResponse` (partial success when spans were refused by
//!   `max_bytes_per_trace`); 400 with a `google.rpc.Status` for a body that is not a valid
//!   request; 429 (rate limit, memory) and 503 (shutting down, a failed write) with a
//!   `Status` and `Retry-After`: the retryable answers of the spec.
//! - CORS when `cors.allowed_origins` is set: preflights answered 204, allowed origins echoed.

use allegro_config::CorsConfig;
use allegro_receivers::otlp_json;
use prost::Message;

use crate::api;
use crate::grpc::Code;
use crate::ingest::{self, IngestError, Receiver};
use crate::receivers::{decoded_body, media_type, tenant};
use crate::shared::Shared;

/// The traces path (`traces_url_path` in the Collector, not configurable here).
pub const TRACES_PATH: &str = "/v1/traces";

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// `google.rpc.Status`, the body of an OTLP/HTTP error.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }
}

pub async fn handle(request: api::Request, shared: &Shared) -> api::Response {
    let cors = shared.settings.receivers.otlp_http_cors.as_ref();
    let origin = request.header("origin").map(str::to_owned);
    if let (Some(cors), Some(origin)) = (cors, origin.as_deref()) {
        if request.method == "OPTIONS" && request.header("access-control-request-method").is_some()
        {
            return preflight(cors, origin, &request);
        }
    }
    let mut response = export(request, shared).await;
    if let (Some(cors), Some(origin)) = (cors, origin) {
        response
            .headers
            .push(("Vary".to_owned(), "Origin".to_owned()));
        if origin_allowed(cors, &origin) {
            response
                .headers
                .push(("Access-Control-Allow-Origin".to_owned(), origin));
        }
    }
    response
}

async fn export(request: api::Request, shared: &Shared) -> api::Response {
    if request.path != TRACES_PATH {
        return api::not_found();
    }
    if request.method != "POST" {
        let mut response = api::text_response(405, "405 method not allowed, supported: [POST]");
        response
            .headers
            .push(("Allow".to_owned(), "POST".to_owned()));
        return response;
    }
    let encoding =
        match media_type(&request).as_str() {
            PROTOBUF => Encoding::Protobuf,
            JSON => Encoding::Json,
            _ => return api::text_response(
                415,
                "415 unsupported media type, supported: [application/json, application/x-protobuf]",
            ),
        };
    let tenant = match tenant(&request, shared) {
        Ok(tenant) => tenant,
        Err((status, message)) => {
            let code = if status == 401 {
                Code::Unauthenticated
            } else {
                Code::InvalidArgument
            };
            return status_response(encoding, status, code, &message, false);
        }
    };
    let body = match decoded_body(&request, shared.settings.grpc_message_bytes_max) {
        Ok(body) => body,
        Err(err) => {
            shared.metrics.receivers.count_malformed(Receiver::OtlpHttp);
            let code = if err.http_status() == 413 {
                Code::ResourceExhausted
            } else {
                Code::InvalidArgument
            };
            return status_response(encoding, err.http_status(), code, &err.message(), false);
        }
    };
    let message = match encoding {
        Encoding::Protobuf => body,
        Encoding::Json => match otlp_json::decode(&body) {
            Ok(request) => request.encode_to_vec(),
            Err(err) => {
                shared.metrics.receivers.count_malformed(Receiver::OtlpHttp);
                return status_response(
                    encoding,
                    400,
                    Code::InvalidArgument,
                    &format!("invalid OTLP JSON: {err}"),
                    false,
                );
            }
        },
    };
    match ingest::ingest(shared, &tenant, Receiver::OtlpHttp, &message, None).await {
        Ok(accepted) => {
            let body = match encoding {
                Encoding::Protobuf => ingest::encode_export_response(&accepted),
                Encoding::Json => otlp_json::encode_response(
                    i64::try_from(accepted.rejected_spans).unwrap_or(i64::MAX),
                    accepted.rejected_message.as_deref().unwrap_or(""),
                ),
            };
            api::Response {
                status: 200,
                headers: vec![(
                    "Content-Type".to_owned(),
                    encoding.content_type().to_owned(),
                )],
                body,
            }
        }
        Err(err) => error_response(encoding, &err),
    }
}

fn error_response(encoding: Encoding, err: &IngestError) -> api::Response {
    let status = err.grpc_status();
    status_response(
        encoding,
        err.http_status(),
        status.code,
        &status.message,
        err.retryable(),
    )
}

/// An error answer: a `google.rpc.Status` in the request's encoding.
fn status_response(
    encoding: Encoding,
    http_status: u16,
    code: Code,
    message: &str,
    retry: bool,
) -> api::Response {
    let body = match encoding {
        Encoding::Protobuf => RpcStatus {
            code: i32::from(code.as_u8()),
            message: message.to_owned(),
        }
        .encode_to_vec(),
        Encoding::Json => otlp_json::encode_status(i32::from(code.as_u8()), message),
    };
    let mut headers = vec![(
        "Content-Type".to_owned(),
        encoding.content_type().to_owned(),
    )];
    if retry {
        headers.push((
            "Retry-After".to_owned(),
            ingest::RETRY_AFTER_SECS.to_string(),
        ));
    }
    api::Response {
        status: http_status,
        headers,
        body,
    }
}

/// Whether `origin` matches `allowed_origins`: `*`, an exact origin (case-insensitive), or a
/// pattern with one `*` (`https://*.example.com`), as the Collector's CORS handler matches.
pub fn origin_allowed(cors: &CorsConfig, origin: &str) -> bool {
    let origin = origin.to_ascii_lowercase();
    cors.allowed_origins.iter().any(|allowed| {
        let allowed = allowed.to_ascii_lowercase();
        if allowed == "*" {
            return true;
        }
        match allowed.split_once('*') {
            None => allowed == origin,
            Some((prefix, suffix)) => {
                origin.len() >= prefix.len() + suffix.len()
                    && origin.starts_with(prefix)
                    && origin.ends_with(suffix)
            }
        }
    })
}

/// Headers a preflight may always ask for.
const ALWAYS_ALLOWED_HEADERS: [&str; 7] = [
    "accept",
    "accept-language",
    "content-language",
    "content-type",
    "content-encoding",
    "x-requested-with",
    "origin",
];

/// A CORS preflight (`OPTIONS` with `Access-Control-Request-Method`): 204, with the CORS
/// headers only when the origin, the method (POST) and every requested header are allowed.
fn preflight(cors: &CorsConfig, origin: &str, request: &api::Request) -> api::Response {
    let mut response = api::Response {
        status: 204,
        headers: vec![(
            "Vary".to_owned(),
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers".to_owned(),
        )],
        body: Vec::new(),
    };
    let method_ok = request
        .header("access-control-request-method")
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("POST"));
    let requested: Vec<String> = request
        .header("access-control-request-headers")
        .unwrap_or("")
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    let headers_ok = requested.iter().all(|h| {
        ALWAYS_ALLOWED_HEADERS.contains(&h.as_str())
            || cors
                .allowed_headers
                .iter()
                .any(|a| a == "*" || a.eq_ignore_ascii_case(h))
    });
    if !(origin_allowed(cors, origin) && method_ok && headers_ok) {
        return response;
    }
    response
        .headers
        .push(("Access-Control-Allow-Origin".to_owned(), origin.to_owned()));
    response
        .headers
        .push(("Access-Control-Allow-Methods".to_owned(), "POST".to_owned()));
    if !requested.is_empty() {
        response.headers.push((
            "Access-Control-Allow-Headers".to_owned(),
            requested.join(", "),
        ));
    }
    if let Some(max_age) = cors.max_age_secs {
        response
            .headers
            .push(("Access-Control-Max-Age".to_owned(), max_age.to_string()));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str]) -> CorsConfig {
        CorsConfig {
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            allowed_headers: vec!["X-Custom".to_owned()],
            max_age_secs: Some(60),
        }
    }

    #[test]
    fn origins_match_like_the_collector() {
        let c = cors(&["https://*.example.com", "http://localhost:3000"]);
        assert!(origin_allowed(&c, "https://app.example.com"));
        assert!(origin_allowed(&c, "HTTP://LOCALHOST:3000"));
        assert!(!origin_allowed(&c, "https://example.org"));
        assert!(!origin_allowed(&c, "http://localhost:3001"));
        assert!(origin_allowed(&cors(&["*"]), "https://anything"));
        assert!(!origin_allowed(&cors(&[]), "https://anything"));
    }

    fn preflight_request(method: &str, headers: &str) -> api::Request {
        api::Request {
            method: "OPTIONS".to_owned(),
            path: TRACES_PATH.to_owned(),
            query: String::new(),
            headers: vec![
                ("origin".to_owned(), "https://app.example.com".to_owned()),
                (
                    "access-control-request-method".to_owned(),
                    method.to_owned(),
                ),
                (
                    "access-control-request-headers".to_owned(),
                    headers.to_owned(),
                ),
            ],
            body: Vec::new(),
            keep_alive: true,
        }
    }

    #[test]
    fn preflights() {
        let c = cors(&["https://*.example.com"]);
        let ok = preflight(
            &c,
            "https://app.example.com",
            &preflight_request("POST", "content-type, x-custom"),
        );
        assert_eq!(ok.status, 204);
        assert_eq!(
            ok.header("access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(ok.header("access-control-allow-methods"), Some("POST"));
        assert_eq!(
            ok.header("access-control-allow-headers"),
            Some("content-type, x-custom")
        );
        assert_eq!(ok.header("access-control-max-age"), Some("60"));
        for (origin, method, headers) in [
            ("https://evil.org", "POST", "content-type"),
            ("https://app.example.com", "DELETE", "content-type"),
            ("https://app.example.com", "POST", "x-other"),
        ] {
            let refused = preflight(&c, origin, &preflight_request(method, headers));
            assert_eq!(refused.status, 204);
            assert_eq!(
                refused.header("access-control-allow-origin"),
                None,
                "{origin} {method} {headers}"
            );
        }
    }
}

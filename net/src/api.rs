//! The query port's API, independent of the transport: HTTP/1.1 ([`crate::http1`]) and
//! HTTP/2 requests that are not gRPC both become a [`Request`], [`route`] says what to do,
//! and the functions here build the [`Response`] Tempo 2.7.2 would send.
//!
//! Routing follows Tempo's gorilla/mux router: the path is matched percent-decoded; a path
//! that is not clean (`//`, `.`, `..`) is redirected (301) to its clean form; a variable like
//! `{traceID}` matches one non-empty segment, so a trailing slash is a 404. Unknown paths get
//! Go's `404 page not found`.
//!
//! | path                          | methods        | route                         |
//! |-------------------------------|----------------|-------------------------------|
//! | `/api/echo`, `/ready`, `/metrics`, `/api/traces/{id}`, `/api/v2/traces/{id}` | any (as Tempo) | `Echo`, `Ready`, `Metrics`, `TraceById` |
//! | `/api/status/buildinfo`, `/status/version` | GET, HEAD | `BuildInfo`, `StatusVersion` |
//! | `/flush`, `/shutdown`         | GET, POST      | `Flush`, `Shutdown`           |
//! | `/api/search`, `/api/search/tags`, `/api/v2/search/tags`, `/api/search/tag/{tag}/values`, `/api/v2/search/tag/{tag}/values`, `/api/metrics/summary` | any (as Tempo) | `Search` or an immediate error (`crate::search_api`) |
//! | `/api/metrics/query_range`, `/api/metrics/query` | any (as Tempo) | `MetricsQuery` or an immediate error (`crate::metrics_api`) |
//!
//! A known path with another method gets 405 with an empty body, as mux answers. Tempo
//! accepts any method on `/flush` and `/shutdown`; we do not, so a `HEAD` or `OPTIONS` probe
//! cannot stop the server.
//!
//! Errors are `text/plain`, never JSON, worded as Tempo words them.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::http_response::{
    go_http_error, go_parse_int64, go_quote, percent_decode, vary, APPLICATION_JSON, TEXT_UTF8,
};
use crate::otlp_json;
use crate::tempopb::{self, Trace};
use allegro_engine::ids::TraceId;
use std::borrow::Cow;

pub(crate) use crate::http_response::go_http_error_vary;
pub use crate::http_response::{accepts_gzip, gzip, query_get, Request, Response, GZIP_BYTES_MIN};

/// The Tempo version we answer as. Grafana reads `/api/status/buildinfo` to decide which
/// Tempo features it may use, so we report the Tempo release whose API we implement and name
/// Allegro in `revision`.
pub const TEMPO_COMPAT_VERSION: &str = "2.7.2";
/// `revision` in buildinfo and `/status/version`: `allegro-<crate version>`.
pub const REVISION: &str = concat!("allegro-", env!("CARGO_PKG_VERSION"));

const APPLICATION_PROTOBUF: &str = "application/protobuf";
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What to do with a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Route {
    Echo,
    Ready,
    BuildInfo,
    StatusVersion,
    Metrics,
    Flush,
    Shutdown,
    TraceById(TraceQuery),
    /// Search, tag names, tag values (`crate::search_api`).
    Search(crate::search_api::Call),
    /// A TraceQL metrics query (`crate::metrics_api`).
    MetricsQuery(crate::metrics_api::Call),
    /// Answered without touching the engine: a bad request, 404, 405, a redirect.
    Immediate(Response),
}

/// A valid trace-by-ID request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceQuery {
    pub trace_id: TraceId,
    /// `/api/v2/traces/{id}` rather than `/api/traces/{id}`.
    pub v2: bool,
    /// `Accept: application/protobuf` (exactly, as Tempo compares it).
    pub protobuf: bool,
    /// `start` and `end` in Unix seconds; absent, zero or negative mean unbounded.
    pub start_unix_secs: Option<u64>,
    pub end_unix_secs: Option<u64>,
    /// The client accepts `Content-Encoding: gzip`.
    pub accept_gzip: bool,
}

const ANY: &[&str] = &[];
const GET_HEAD: &[&str] = &["GET", "HEAD"];
const GET_POST: &[&str] = &["GET", "POST"];

/// Routes a request. Pure but for reading the clock (the default times of the metrics
/// paths): no IO, no state.
pub fn route(
    req: &Request,
    limits: &crate::search_api::SearchLimits,
    metrics: &crate::metrics_api::MetricsLimits,
) -> Route {
    if req.path == "*" {
        // Go's server answers `OPTIONS *` itself, with an empty 200.
        return Route::Immediate(if req.method == "OPTIONS" {
            Response::new(200, &[], Vec::new())
        } else {
            bad_request()
        });
    }
    let Some(path) = percent_decode(&req.path, false) else {
        return Route::Immediate(bad_request());
    };
    let clean = clean_path(&path);
    if clean != path {
        return Route::Immediate(moved_permanently(&clean, &req.query));
    }
    let (allowed, route) = match path.as_str() {
        "/api/echo" => (ANY, Route::Echo),
        "/ready" => (ANY, Route::Ready),
        "/metrics" => (ANY, Route::Metrics),
        "/api/status/buildinfo" => (GET_HEAD, Route::BuildInfo),
        "/status/version" => (GET_HEAD, Route::StatusVersion),
        "/flush" => (GET_POST, Route::Flush),
        "/shutdown" => (GET_POST, Route::Shutdown),
        other => {
            if let Some(query) = crate::metrics_api::route(req, other, metrics) {
                return match query {
                    Ok(call) => Route::MetricsQuery(call),
                    Err(response) => Route::Immediate(response),
                };
            }
            if let Some(search) = crate::search_api::route(req, other, limits) {
                return match search {
                    Ok(call) => Route::Search(call),
                    Err(response) => Route::Immediate(response),
                };
            }
            let (id, v2) = if let Some(id) = other.strip_prefix("/api/traces/") {
                (id, false)
            } else if let Some(id) = other.strip_prefix("/api/v2/traces/") {
                (id, true)
            } else {
                return Route::Immediate(not_found());
            };
            if id.is_empty() || id.contains('/') {
                return Route::Immediate(not_found());
            }
            return trace_route(req, id, v2);
        }
    };
    if allowed.is_empty() || allowed.contains(&req.method.as_str()) {
        route
    } else {
        Route::Immediate(method_not_allowed(allowed))
    }
}

/// Tempo's query frontend: parse the ID (`api.ParseTraceID`), then the parameters
/// (`api.ValidateAndSanitizeRequest`); either failing is a 400 with the error's text.
fn trace_route(req: &Request, id: &str, v2: bool) -> Route {
    let trace_id = match TraceId::parse_hex(id) {
        Ok(trace_id) => trace_id,
        Err(error) => return Route::Immediate(trace_bad_request(&error.to_string())),
    };
    let (start_unix_secs, end_unix_secs) = match trace_time_range(&req.query) {
        Ok(range) => range,
        Err(message) => return Route::Immediate(trace_bad_request(&message)),
    };
    Route::TraceById(TraceQuery {
        trace_id,
        v2,
        protobuf: req.header("accept") == Some(APPLICATION_PROTOBUF),
        start_unix_secs,
        end_unix_secs,
        accept_gzip: accepts_gzip(req),
    })
}

/// Tempo's `ValidateAndSanitizeRequest`, same checks, same order, same words: `mode`,
/// `blockStart`, `blockEnd` (UUIDs, validated and otherwise unused: we have no blocks to
/// name), `start`, `end` (`strconv.ParseInt`), then `start < end` when both are set.
/// With `mode=ingesters` Tempo looks at nothing else, and neither do we.
fn trace_time_range(query: &str) -> Result<(Option<u64>, Option<u64>), String> {
    let param = |key: &str| query_get(query, key).filter(|v| !v.is_empty());
    match param("mode").as_deref() {
        None | Some("all") | Some("blocks") => {}
        Some("ingesters") => return Ok((None, None)),
        Some(other) => return Err(format!("invalid value for mode {other}")),
    }
    if let Some(block_start) = param("blockStart") {
        parse_uuid(&block_start).map_err(|e| format!("invalid value for blockstart: {e}"))?;
    }
    if let Some(block_end) = param("blockEnd") {
        parse_uuid(&block_end).map_err(|e| format!("invalid value for blockEnd: {e}"))?;
    }
    let start = match param("start") {
        Some(text) => go_parse_int64(&text).map_err(|e| format!("invalid start: {e}"))?,
        None => 0,
    };
    let end = match param("end") {
        Some(text) => go_parse_int64(&text).map_err(|e| format!("invalid end: {e}"))?,
        None => 0,
    };
    if start != 0 && end != 0 && end <= start {
        return Err(format!(
            "http parameter start must be before end. received start={start} end={end}"
        ));
    }
    let bound = |secs: i64| u64::try_from(secs).ok().filter(|&s| s > 0);
    Ok((bound(start), bound(end)))
}

/// The answer to a trace-by-ID query. `trace` is the encoded `tempopb.Trace` (concatenated
/// field-1 `ResourceSpans`), `None` when the ID is unknown.
///
/// | found | v1 JSON | v1 protobuf | v2 JSON | v2 protobuf |
/// |-------|---------|-------------|---------|-------------|
/// | yes   | 200 `{"batches":[..]}` | 200 the bytes | 200 `{"trace":{"resourceSpans":[..]}}` | 200 `TraceByIDResponse` |
/// | no    | 404, empty | 404, empty | 200 `{"trace":{}}` | 200 `0a 00` (an empty trace) |
///
/// Every answer carries `Vary: Accept-Encoding`, and is gzipped from [`GZIP_BYTES_MIN`]
/// bytes when the client accepts it, JSON or protobuf, as Tempo's gzip handler does.
pub fn trace_response(q: &TraceQuery, trace: Option<&[u8]>) -> Response {
    let trace = trace.filter(|bytes| !bytes.is_empty());
    let mut response = if q.protobuf {
        match (trace, q.v2) {
            (None, false) => trace_not_found(),
            (Some(bytes), false) => trace_found(APPLICATION_PROTOBUF, bytes.to_vec()),
            (found, true) => trace_found(
                APPLICATION_PROTOBUF,
                tempopb::trace_by_id_response_bytes(found.unwrap_or_default()),
            ),
        }
    } else {
        let decoded = match trace {
            None => Trace::default(),
            Some(bytes) => match <Trace as prost::Message>::decode(bytes) {
                Ok(decoded) => decoded,
                Err(error) => {
                    let mut response = go_http_error(
                        500,
                        &format!("failed to decode stored trace {}: {error}", q.trace_id),
                    );
                    response.headers.push(vary());
                    return response;
                }
            },
        };
        match (decoded.batches.is_empty(), q.v2) {
            (true, false) => trace_not_found(),
            (false, false) => trace_found(APPLICATION_JSON, otlp_json::trace_v1_json(&decoded)),
            (_, true) => trace_found(APPLICATION_JSON, otlp_json::trace_v2_json(&decoded)),
        }
    };
    if q.accept_gzip {
        gzip(&mut response);
    }
    response
}

fn trace_found(content_type: &str, body: Vec<u8>) -> Response {
    Response::new(
        200,
        &[("Content-Type", content_type), ("Vary", "Accept-Encoding")],
        body,
    )
}

fn trace_not_found() -> Response {
    Response::new(404, &[("Vary", "Accept-Encoding")], Vec::new())
}

/// A 400 from the trace handlers: Tempo's frontend writes the error text as the body, with
/// no trailing newline, and Go sniffs the type.
fn trace_bad_request(message: &str) -> Response {
    Response::new(
        400,
        &[("Vary", "Accept-Encoding"), ("Content-Type", TEXT_UTF8)],
        message.as_bytes().to_vec(),
    )
}

/// `GET /api/echo`: `echo\n`.
pub fn echo_response() -> Response {
    go_http_error(200, "echo")
}

/// `GET /ready`: 200 `ready\n`, or 503 with `reason` (Tempo's words, e.g.
/// `Ingester not ready: waiting for 15s after being ready`) while starting or stopping.
pub fn ready_response(ready: bool, reason: &str) -> Response {
    if ready {
        go_http_error(200, "ready")
    } else {
        go_http_error(503, reason)
    }
}

/// `GET /api/status/buildinfo`, with Tempo's keys (and the newline of Go's `json.Encoder`);
/// see [`TEMPO_COMPAT_VERSION`].
pub fn buildinfo_response() -> Response {
    let body = format!(
        "{{\"version\":\"{TEMPO_COMPAT_VERSION}\",\"revision\":\"{REVISION}\",\"branch\":\"HEAD\",\
         \"buildUser\":\"\",\"buildDate\":\"\",\"goVersion\":\"\"}}\n"
    );
    Response::new(
        200,
        &[("Content-Type", APPLICATION_JSON)],
        body.into_bytes(),
    )
}

/// `GET /status/version`: the layout of Prometheus' `version.Print`, under Tempo's
/// `GET /status/version` heading, naming allegro.
pub fn status_version_response() -> Response {
    let body = format!(
        "GET /status/version\n\
         allegro, version {TEMPO_COMPAT_VERSION} (branch: HEAD, revision: {REVISION})\n  \
         build user:       \n  \
         build date:       \n  \
         go version:       \n  \
         platform:         {}\n  \
         tags:             unknown\n",
        platform()
    );
    Response::new(200, &[("Content-Type", "text/plain")], body.into_bytes())
}

/// `GOOS/GOARCH` spelling of the platform.
fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("{}/{arch}", std::env::consts::OS)
}

/// `GET /metrics` in the Prometheus text format.
pub fn metrics_response(body: String) -> Response {
    Response::new(
        200,
        &[("Content-Type", METRICS_CONTENT_TYPE)],
        body.into_bytes(),
    )
}

/// `/flush`: Tempo's ingester answers 204 once the flush is scheduled.
pub fn flush_response() -> Response {
    Response::new(204, &[], Vec::new())
}

/// `/shutdown`: Tempo's ingester acknowledges and shuts down in the background.
pub fn shutdown_response() -> Response {
    Response::new(
        200,
        &[("Content-Type", TEXT_UTF8)],
        b"shutdown job acknowledged".to_vec(),
    )
}

/// Go's `http.NotFound`: 404 `404 page not found\n`.
pub fn not_found() -> Response {
    go_http_error(404, "404 page not found")
}

/// gorilla/mux's answer to a known path with another method: 405, empty body. We add the
/// `Allow` header RFC 9110 §15.5.6 asks for.
pub fn method_not_allowed(allowed: &[&str]) -> Response {
    let allow = allowed.join(", ");
    Response::new(405, &[("Allow", allow.as_str())], Vec::new())
}

/// A plain-text answer, the text as given (no newline added); no `Content-Type` when empty.
pub fn text_response(status: u16, text: &str) -> Response {
    if text.is_empty() {
        return Response::new(status, &[], Vec::new());
    }
    Response::new(
        status,
        &[("Content-Type", TEXT_UTF8)],
        text.as_bytes().to_vec(),
    )
}

/// 500 with the error text, as Go's `http.Error`.
pub fn internal_error(message: &str) -> Response {
    go_http_error(500, message)
}

fn bad_request() -> Response {
    go_http_error(400, "400 Bad Request")
}

fn moved_permanently(clean_path: &str, raw_query: &str) -> Response {
    let mut location = escape_path(clean_path);
    if !raw_query.is_empty() {
        location.push('?');
        location.push_str(raw_query);
    }
    Response::new(301, &[("Location", location.as_str())], Vec::new())
}

/// gorilla/mux's `cleanPath`: Go's `path.Clean` on a rooted path, keeping a trailing slash.
fn clean_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut clean = String::with_capacity(path.len() + 1);
    for segment in &segments {
        clean.push('/');
        clean.push_str(segment);
    }
    if clean.is_empty() || path.ends_with('/') {
        clean.push('/');
    }
    clean
}

/// Go's path escaping (`url.URL.EscapedPath` without a raw path): unreserved characters and
/// `$&+,/:;=@` stay, everything else becomes `%XX`.
fn escape_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// google/uuid's `Parse`: the 36-character form, with `urn:uuid:` or braces, or 32 hex
/// digits; its error texts.
fn parse_uuid(text: &str) -> Result<(), Cow<'static, str>> {
    const FORMAT: &str = "invalid UUID format";
    let bytes = text.as_bytes();
    let hex_pairs_ok = |digits: &[u8]| digits.iter().all(u8::is_ascii_hexdigit);
    let dashed: &[u8] = match bytes.len() {
        32 => {
            return if hex_pairs_ok(bytes) {
                Ok(())
            } else {
                Err(FORMAT.into())
            }
        }
        36 => bytes,
        38 => bytes.get(1..37).unwrap_or_default(),
        45 => {
            let prefix = bytes.get(..9).unwrap_or_default();
            if !prefix.eq_ignore_ascii_case(b"urn:uuid:") {
                let prefix = String::from_utf8_lossy(prefix);
                return Err(format!("invalid urn prefix: {}", go_quote(&prefix)).into());
            }
            bytes.get(9..).unwrap_or_default()
        }
        length => return Err(format!("invalid UUID length: {length}").into()),
    };
    let dashes_ok = [8, 13, 18, 23]
        .iter()
        .all(|&at| dashed.get(at) == Some(&b'-'));
    let digits_ok = dashed
        .iter()
        .enumerate()
        .all(|(at, b)| [8, 13, 18, 23].contains(&at) || b.is_ascii_hexdigit());
    if dashes_ok && digits_ok {
        Ok(())
    } else {
        Err(FORMAT.into())
    }
}

/// Reading the Tempo captures in `shared/tempo-api` (see its README) for golden tests.
#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers fail loudly on a malformed capture"
)]
pub(crate) mod captures {
    use std::path::PathBuf;

    /// One capture: the request sent to Tempo 2.7.2 and its answer.
    pub struct Capture {
        pub method: String,
        pub path: String,
        pub query: String,
        pub request_headers: Vec<(String, String)>,
        pub status: u16,
        pub headers: Vec<(String, String)>,
        /// The whole body's size; `body` may be a prefix of it.
        pub body_bytes: usize,
        pub body: Vec<u8>,
    }

    impl Capture {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        pub fn is_complete(&self) -> bool {
            self.body.len() == self.body_bytes
        }
    }

    pub fn dir() -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/tempo-api");
        assert!(
            dir.is_dir(),
            "the Tempo 2.7.2 captures are missing: expected {} (shared/tempo-api beside the \
             workspace); the golden tests cannot run without them",
            dir.display()
        );
        dir
    }

    pub fn load(name: &str) -> Capture {
        let path = dir().join(name);
        let text = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("cannot read capture {}: {e}", path.display()));
        parse(&text).unwrap_or_else(|| panic!("malformed capture {}", path.display()))
    }

    fn parse(text: &[u8]) -> Option<Capture> {
        let marker = b"# body (first ";
        let body_line_at = text.windows(marker.len()).position(|w| w == marker)?;
        let head = std::str::from_utf8(&text[..body_line_at]).ok()?;
        let rest = &text[body_line_at..];
        let line_end = rest.iter().position(|&b| b == b'\n')?;
        let body_line = std::str::from_utf8(&rest[..line_end]).ok()?;
        let shown: usize = body_line[marker.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()?;
        let raw = &rest[line_end + 1..];
        let body = if body_line.contains("hex dump") {
            hex_dump(std::str::from_utf8(raw).ok()?)
        } else {
            raw.get(..shown)?.to_vec()
        };

        let mut capture = Capture {
            method: String::new(),
            path: String::new(),
            query: String::new(),
            request_headers: Vec::new(),
            status: 0,
            headers: Vec::new(),
            body_bytes: 0,
            body,
        };
        for line in head.lines() {
            if let Some(request) = line.strip_prefix("> ") {
                if let Some((name, value)) = request.split_once(": ") {
                    capture
                        .request_headers
                        .push((name.to_ascii_lowercase(), value.to_string()));
                } else {
                    let (method, url) = request.split_once(' ')?;
                    let after_scheme = url.split_once("://")?.1;
                    let target = &after_scheme[after_scheme.find('/')?..];
                    let (path, query) = target.split_once('?').unwrap_or((target, ""));
                    capture.method = method.to_string();
                    capture.path = path.to_string();
                    capture.query = query.to_string();
                }
            } else if let Some(status) = line.strip_prefix("< status: ") {
                capture.status = status.parse().ok()?;
            } else if let Some(header) = line.strip_prefix("< ") {
                let (name, value) = header.split_once(": ")?;
                capture.headers.push((name.to_string(), value.to_string()));
            } else if let Some(size) = line.strip_prefix("# body size: ") {
                capture.body_bytes = size.split(' ').next()?.parse().ok()?;
            }
        }
        Some(capture)
    }

    /// `00000000  0a c8 04 ... 65  ascii` lines to bytes: the 16 hex columns sit at fixed
    /// positions after the offset, so the ASCII column is never read as hex.
    pub fn hex_dump(text: &str) -> Vec<u8> {
        const HEX_COLUMNS: std::ops::Range<usize> = 10..10 + 16 * 3 - 1;
        let mut bytes = Vec::new();
        for line in text.lines() {
            let offset = &line[..line.len().min(8)];
            if offset.len() != 8 || !offset.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let hex = &line[HEX_COLUMNS.start.min(line.len())..HEX_COLUMNS.end.min(line.len())];
            for pair in hex.split_whitespace() {
                bytes.push(u8::from_str_radix(pair, 16).expect("hex byte"));
            }
        }
        bytes
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests index known data and fail loudly"
)]
mod tests {
    use super::captures::{self, Capture};
    use super::*;
    use std::io::Read as _;

    const STORED_TRACE_ID: &str = "0715762b08b73089607e391b01d54ad3";
    const OTHER_STORED_TRACE_ID: &str = "d55e17a93fac00476a4915096d2b8016";

    fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Request {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Request {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
            keep_alive: true,
        }
    }

    /// What the server shell does with a route, with a store that holds capture 05's trace
    /// under the two IDs the captures found.
    fn serve(req: &Request) -> Response {
        match route(
            req,
            &crate::search_api::SearchLimits::default(),
            &crate::metrics_api::MetricsLimits::default(),
        ) {
            Route::Echo => echo_response(),
            Route::Ready => ready_response(true, ""),
            Route::BuildInfo => buildinfo_response(),
            Route::StatusVersion => status_version_response(),
            Route::Metrics => metrics_response("up 1\n".to_string()),
            Route::Flush => flush_response(),
            Route::Shutdown => shutdown_response(),
            Route::TraceById(q) => {
                let stored = captures::load("05_trace_v1_protobuf.txt").body;
                let hex = q.trace_id.to_hex();
                let found = hex == STORED_TRACE_ID || hex == OTHER_STORED_TRACE_ID;
                trace_response(&q, found.then_some(stored.as_slice()))
            }
            Route::Search(_) | Route::MetricsQuery(_) => not_found(),
            Route::Immediate(response) => response,
        }
    }

    enum Body {
        /// Byte for byte (a prefix when the capture is truncated).
        Same,
        /// Tempo's body with these replacements: where we differ on purpose.
        Replaced(Vec<(&'static str, String)>),
        /// Only status and headers: the store does not hold that trace's bytes.
        NotCompared,
    }

    /// The golden check: replay the capture's request, compare status, the headers that
    /// matter, and the body.
    fn check(name: &str, body: Body) {
        let capture: Capture = captures::load(name);
        let headers: Vec<(&str, &str)> = capture
            .request_headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let target = if capture.query.is_empty() {
            capture.path.clone()
        } else {
            format!("{}?{}", capture.path, capture.query)
        };
        let response = serve(&request(&capture.method, &target, &headers));
        assert_eq!(response.status, capture.status, "{name}: status");
        for header in [
            "Content-Type",
            "Vary",
            "X-Content-Type-Options",
            "Content-Encoding",
        ] {
            assert_eq!(
                response.header(header),
                capture.header(header),
                "{name}: {header}"
            );
        }
        let expected: Cow<[u8]> = match body {
            Body::Same => Cow::Borrowed(&capture.body),
            Body::Replaced(replacements) => {
                assert!(capture.is_complete());
                let mut text = String::from_utf8(capture.body.clone()).unwrap();
                for (from, to) in replacements {
                    assert!(text.contains(from), "{name}: {from:?} not in the capture");
                    text = text.replace(from, &to);
                }
                Cow::Owned(text.into_bytes())
            }
            Body::NotCompared => return,
        };
        if capture.is_complete() {
            assert_eq!(
                String::from_utf8_lossy(&response.body),
                String::from_utf8_lossy(&expected),
                "{name}: body"
            );
            assert_eq!(response.body, expected.as_ref(), "{name}: body bytes");
        } else {
            assert_eq!(
                String::from_utf8_lossy(&response.body[..expected.len()]),
                String::from_utf8_lossy(&expected),
                "{name}: body prefix"
            );
            assert_eq!(response.body.len(), capture.body_bytes, "{name}: body size");
        }
    }

    #[test]
    fn golden_echo_ready_unknown_path() {
        check("01_echo.txt", Body::Same);
        check("02_ready.txt", Body::Same);
        check("58_unknown_path.txt", Body::Same);
    }

    #[test]
    fn golden_buildinfo_and_version() {
        check(
            "03_buildinfo.txt",
            Body::Replaced(vec![
                (
                    "\"revision\":\"b33945abd\"",
                    format!("\"revision\":\"{REVISION}\""),
                ),
                (
                    "\"goVersion\":\"go1.23.5\"",
                    "\"goVersion\":\"\"".to_string(),
                ),
            ]),
        );
        check(
            "60_status_version.txt",
            Body::Replaced(vec![
                ("tempo, version", "allegro, version".to_string()),
                ("revision: b33945abd", format!("revision: {REVISION}")),
                ("       go1.23.5", "       ".to_string()),
                ("linux/amd64", platform()),
            ]),
        );
    }

    #[test]
    fn golden_trace_found() {
        check("04_trace_v1_json.txt", Body::Same);
        check("05_trace_v1_protobuf.txt", Body::Same);
        check("06_trace_v2_json.txt", Body::Same);
        check("07_trace_v2_protobuf.txt", Body::Same);
        check("08_trace_v1_json_with_range.txt", Body::NotCompared);
        check("09_trace_v2_json_ok_trace.txt", Body::NotCompared);
    }

    #[test]
    fn golden_trace_not_found_and_malformed() {
        for name in [
            "45_trace_v1_unknown_id.txt",
            "46_trace_v2_unknown_id.txt",
            "47_trace_v1_malformed_id.txt",
            "48_trace_v2_malformed_id.txt",
            "49_trace_v1_too_long_id.txt",
            "50_trace_v1_short_id_padding.txt",
            "51_trace_v1_unknown_id_protobuf.txt",
        ] {
            check(name, Body::Same);
        }
    }

    #[test]
    fn captured_v1_and_v2_json_differ_only_in_the_wrapper() {
        let v1 = captures::load("08_trace_v1_json_with_range.txt");
        let v2 = captures::load("09_trace_v2_json_ok_trace.txt");
        assert!(v1.is_complete() && v2.is_complete());
        let inner = v1.body.strip_prefix(b"{\"batches\":").unwrap();
        let mut rewrapped = b"{\"trace\":{\"resourceSpans\":".to_vec();
        rewrapped.extend_from_slice(inner);
        rewrapped.push(b'}');
        assert_eq!(rewrapped, v2.body);
    }

    fn route_of(method: &str, target: &str) -> Route {
        route(
            &request(method, target, &[]),
            &crate::search_api::SearchLimits::default(),
            &crate::metrics_api::MetricsLimits::default(),
        )
    }

    fn immediate(method: &str, target: &str) -> Response {
        match route_of(method, target) {
            Route::Immediate(response) => response,
            other => panic!("{method} {target}: {other:?}"),
        }
    }

    #[test]
    fn routes() {
        assert_eq!(route_of("GET", "/api/echo"), Route::Echo);
        assert_eq!(route_of("POST", "/ready"), Route::Ready);
        assert_eq!(route_of("GET", "/metrics"), Route::Metrics);
        assert_eq!(route_of("HEAD", "/api/status/buildinfo"), Route::BuildInfo);
        assert_eq!(route_of("GET", "/status/version"), Route::StatusVersion);
        assert_eq!(route_of("POST", "/flush"), Route::Flush);
        assert_eq!(route_of("GET", "/shutdown"), Route::Shutdown);
        assert_eq!(route_of("GET", "/api/%65cho"), Route::Echo);
        let Route::TraceById(q) = route_of("GET", "/api/v2/traces/ABC?start=5") else {
            panic!("not a trace route")
        };
        assert_eq!(q.trace_id.to_hex(), "00000000000000000000000000000abc");
        assert!(q.v2 && !q.protobuf && !q.accept_gzip);
        assert_eq!((q.start_unix_secs, q.end_unix_secs), (Some(5), None));
    }

    #[test]
    fn methods() {
        let response = immediate("POST", "/api/status/buildinfo");
        assert_eq!(response.status, 405);
        assert!(response.body.is_empty());
        assert_eq!(response.header("Allow"), Some("GET, HEAD"));
        assert_eq!(immediate("HEAD", "/shutdown").status, 405);
        assert_eq!(
            immediate("DELETE", "/flush").header("Allow"),
            Some("GET, POST")
        );
        assert!(matches!(
            route_of("POST", "/api/traces/ab"),
            Route::TraceById(_)
        ));
        assert_eq!(immediate("OPTIONS", "*").status, 200);
        assert_eq!(immediate("GET", "*").status, 400);
    }

    #[test]
    fn paths_like_gorilla_mux() {
        for target in [
            "/api/traces/",
            "/api/traces/abc/",
            "/api/traces/abc/def",
            "/api/v2/traces",
            "/api/echo/",
            "/API/echo",
            "/",
        ] {
            let response = immediate("GET", target);
            assert_eq!(response.status, 404, "{target}");
            assert_eq!(response.body, b"404 page not found\n");
        }
        let redirect = immediate("GET", "//api/./traces/x/../abc?start=1");
        assert_eq!(redirect.status, 301);
        assert_eq!(redirect.header("Location"), Some("/api/traces/abc?start=1"));
        let redirect = immediate("GET", "/a/b/../c%20d/");
        assert_eq!(redirect.header("Location"), Some("/a/c%20d/"));
        assert_eq!(immediate("GET", "/api/%zzecho").status, 400);
        // mux matches the decoded path: an escaped slash is a slash.
        assert!(matches!(
            route_of("GET", "/api/traces%2Fabc"),
            Route::TraceById(_)
        ));
    }

    fn trace_error(target: &str) -> String {
        let response = immediate("GET", target);
        assert_eq!(response.status, 400, "{target}");
        assert_eq!(response.header("Content-Type"), Some(TEXT_UTF8));
        assert_eq!(response.header("Vary"), Some("Accept-Encoding"));
        String::from_utf8(response.body).unwrap()
    }

    #[test]
    fn trace_parameters_like_tempo() {
        let uuid = "0f9f8f8f-8f8f-8f8f-8f8f-8f8f8f8f8f8f";
        let cases = [
            ("start=abc", "invalid start: strconv.ParseInt: parsing \"abc\": invalid syntax"),
            ("start=1&end=x%0A", "invalid end: strconv.ParseInt: parsing \"x\\n\": invalid syntax"),
            ("start=%2B", "invalid start: strconv.ParseInt: parsing \"+\": invalid syntax"),
            (
                "start=9223372036854775808",
                "invalid start: strconv.ParseInt: parsing \"9223372036854775808\": value out of range",
            ),
            (
                "end=99999999999999999999x",
                "invalid end: strconv.ParseInt: parsing \"99999999999999999999x\": value out of range",
            ),
            ("start=1e3", "invalid start: strconv.ParseInt: parsing \"1e3\": invalid syntax"),
            (
                "start=1795466458&end=1795462798",
                "http parameter start must be before end. received start=1795466458 end=1795462798",
            ),
            ("start=5&end=5", "http parameter start must be before end. received start=5 end=5"),
            ("mode=fast", "invalid value for mode fast"),
            ("blockStart=abc", "invalid value for blockstart: invalid UUID length: 3"),
            (
                "blockEnd=0f9f8f8f-8f8f-8f8f-8f8f-8f8f8f8f8f8g",
                "invalid value for blockEnd: invalid UUID format",
            ),
            (
                "blockEnd=urx:uuid:0f9f8f8f-8f8f-8f8f-8f8f-8f8f8f8f8f8f",
                "invalid value for blockEnd: invalid urn prefix: \"urx:uuid:\"",
            ),
        ];
        for (query, expected) in cases {
            assert_eq!(
                trace_error(&format!("/api/traces/abc?{query}")),
                expected,
                "{query}"
            );
        }
        // The ID is checked before the parameters.
        assert_eq!(
            trace_error("/api/v2/traces/xyz?start=abc"),
            "trace IDs can only contain hex characters: invalid character 'x' at position 1"
        );
        let braced = format!("blockStart={uuid}&blockEnd={{{uuid}}}");
        let ok = [
            ("", (None, None)),
            ("start=10&end=20", (Some(10), Some(20))),
            ("start=&end=20", (None, Some(20))),
            ("start=%2B10&end=0", (Some(10), None)),
            ("start=-10&end=20", (None, Some(20))),
            ("start=20&end=10&mode=ingesters", (None, None)),
            ("mode=blocks&start=1;x=2", (None, None)),
            (braced.as_str(), (None, None)),
            ("blockStart=0f9f8f8f8f8f8f8f8f8f8f8f8f8f8f8f", (None, None)),
            ("start=1&start=junk", (Some(1), None)),
        ];
        for (query, range) in ok {
            let Route::TraceById(q) = route_of("GET", &format!("/api/traces/abc?{query}")) else {
                panic!("{query} was refused")
            };
            assert_eq!((q.start_unix_secs, q.end_unix_secs), range, "{query}");
        }
    }

    fn query(v2: bool, protobuf: bool, accept_gzip: bool) -> TraceQuery {
        TraceQuery {
            trace_id: TraceId::parse_hex(STORED_TRACE_ID).unwrap(),
            v2,
            protobuf,
            start_unix_secs: None,
            end_unix_secs: None,
            accept_gzip,
        }
    }

    #[test]
    fn unknown_ids() {
        let v2_protobuf = trace_response(&query(true, true, false), None);
        assert_eq!(v2_protobuf.status, 200);
        assert_eq!(v2_protobuf.body, [0x0a, 0x00]);
        assert_eq!(
            v2_protobuf.header("Content-Type"),
            Some(APPLICATION_PROTOBUF)
        );
        // An empty stored trace is not found either.
        let v1 = trace_response(&query(false, false, false), Some(&[]));
        assert_eq!(v1.status, 404);
        // Garbage in the store is a 500, not a panic.
        let broken = trace_response(&query(false, false, false), Some(&[0x0a, 0x05, 0x01]));
        assert_eq!(broken.status, 500);
        assert_eq!(broken.header("Vary"), Some("Accept-Encoding"));
    }

    #[test]
    fn gzip_when_accepted_and_large() {
        let stored = captures::load("05_trace_v1_protobuf.txt").body;
        let plain = trace_response(&query(false, false, false), Some(&stored));
        for (accept, v2, protobuf) in [
            ("gzip", false, false),
            ("deflate, gzip;q=0.5", true, false),
            ("GZIP", false, true),
        ] {
            let req = request("GET", "/api/traces/abc", &[("accept-encoding", accept)]);
            assert!(accepts_gzip(&req), "{accept}");
            let response = trace_response(&query(v2, protobuf, true), Some(&stored));
            assert_eq!(response.header("Content-Encoding"), Some("gzip"));
            assert_eq!(response.header("Vary"), Some("Accept-Encoding"));
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(response.body.as_slice())
                .read_to_end(&mut decoded)
                .unwrap();
            let expected = trace_response(&query(v2, protobuf, false), Some(&stored)).body;
            assert_eq!(decoded, expected);
            if !v2 && !protobuf {
                assert_eq!(decoded, plain.body);
            }
        }
        for accept in ["identity", "gzip;q=0", "br", "x-gzip"] {
            let req = request("GET", "/", &[("accept-encoding", accept)]);
            assert!(!accepts_gzip(&req), "{accept}");
        }
        // Small bodies stay plain.
        let small = trace_response(&query(true, false, true), None);
        assert_eq!(small.body, b"{\"trace\":{}}");
        assert_eq!(small.header("Content-Encoding"), None);
    }

    #[test]
    fn other_responses() {
        let not_ready = ready_response(
            false,
            "Ingester not ready: waiting for 15s after being ready",
        );
        assert_eq!(not_ready.status, 503);
        assert_eq!(
            not_ready.body,
            b"Ingester not ready: waiting for 15s after being ready\n"
        );
        let metrics = metrics_response("up 1\n".to_string());
        assert_eq!(metrics.header("Content-Type"), Some(METRICS_CONTENT_TYPE));
        assert_eq!(flush_response().status, 204);
        assert_eq!(shutdown_response().body, b"shutdown job acknowledged");
        assert_eq!(internal_error("boom").body, b"boom\n");
        assert_eq!(text_response(204, ""), flush_response());
        assert_eq!(
            text_response(401, "no org id\n").header("Content-Type"),
            Some(TEXT_UTF8)
        );
    }
}

//! Requests and responses of the HTTP ports, whatever the transport, and the small pieces of
//! Go's `net/http`, `net/url` and `strconv` that the query API (`api`), the search API
//! (`search_api`) and the metrics API (`metrics_api`) answer with: `http.Error`, Tempo's
//! plain and JSON answers with `Vary: Accept-Encoding`, the gzip handler, `url.ParseQuery`,
//! `strconv.ParseInt` and `strconv.Quote`, with their error texts.
//!
//! **Invariant:** this module imports none of `api`, `search_api`, `metrics_api`; they
//! import it (`api -> {search_api, metrics_api} -> http_response`, and `api ->
//! http_response`).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::io::Write as _;

/// Bodies at least this long are gzipped for clients that accept it: the default minimum of
/// the gzip handler Tempo wraps its query API in (NYTimes/gziphandler `DefaultMinSize`).
pub const GZIP_BYTES_MIN: usize = 1400;

pub(crate) const TEXT_UTF8: &str = "text/plain; charset=utf-8";
pub(crate) const APPLICATION_JSON: &str = "application/json";

/// One request, whatever the transport.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path as sent, percent-escapes and all, without the query.
    pub path: String,
    /// The raw query, after `?`, not decoded.
    pub query: String,
    /// Header fields in arrival order, names lower-case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the connection stays open after the answer (HTTP/1.x only).
    pub keep_alive: bool,
}

impl Request {
    /// The first value of a header; `name` must be lower-case.
    pub fn header(&self, name: &str) -> Option<&str> {
        debug_assert!(!name.bytes().any(|b| b.is_ascii_uppercase()));
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One response. Header names are in Go's canonical case (`Content-Type`); an HTTP/2 writer
/// lower-cases them. Framing headers (`Content-Length`, `Connection`) are the transport's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub(crate) fn new(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body,
        }
    }

    /// The first value of a header, matched ignoring case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) fn vary() -> (String, String) {
    ("Vary".to_string(), "Accept-Encoding".to_string())
}

/// A Tempo frontend error: the text as given, `Vary: Accept-Encoding`, sniffed
/// `text/plain; charset=utf-8`.
pub(crate) fn plain_vary(status: u16, text: &str) -> Response {
    Response::new(
        status,
        &[("Vary", "Accept-Encoding"), ("Content-Type", TEXT_UTF8)],
        text.as_bytes().to_vec(),
    )
}

/// [`go_http_error`] with `Vary: Accept-Encoding`.
pub(crate) fn go_http_error_vary(status: u16, text: &str) -> Response {
    let mut response = go_http_error(status, text);
    response.headers.insert(0, vary());
    response
}

/// A 200 JSON answer of the query API.
pub(crate) fn json_response(body: Vec<u8>) -> Response {
    Response::new(
        200,
        &[
            ("Content-Type", APPLICATION_JSON),
            ("Vary", "Accept-Encoding"),
        ],
        body,
    )
}

/// Go's `http.Error`: the text and a newline, `text/plain; charset=utf-8`, `nosniff`.
pub(crate) fn go_http_error(status: u16, text: &str) -> Response {
    let mut body = Vec::with_capacity(text.len() + 1);
    body.extend_from_slice(text.as_bytes());
    body.push(b'\n');
    Response::new(
        status,
        &[
            ("Content-Type", TEXT_UTF8),
            ("X-Content-Type-Options", "nosniff"),
        ],
        body,
    )
}

/// Whether the first `Accept-Encoding` accepts gzip with a non-zero q-value (as the gzip
/// handler Tempo uses parses it).
pub fn accepts_gzip(req: &Request) -> bool {
    let Some(header) = req.header("accept-encoding") else {
        return false;
    };
    header.split(',').any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .map(|q| q.parse::<f64>().unwrap_or(0.0))
            .next_back()
            .unwrap_or(1.0);
        name.eq_ignore_ascii_case("gzip") && q > 0.0
    })
}

/// Gzips the body in place (from [`GZIP_BYTES_MIN`] bytes, unless already encoded) and sets
/// `Content-Encoding: gzip`. Level 1: on a 2-core query path speed beats the last few
/// percent of size.
pub fn gzip(response: &mut Response) {
    if response.body.len() < GZIP_BYTES_MIN || response.header("content-encoding").is_some() {
        return;
    }
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(response.body.len() / 4),
        flate2::Compression::fast(),
    );
    let compressed = encoder
        .write_all(&response.body)
        .and_then(|()| encoder.finish());
    // Writing into a Vec cannot fail; if it somehow did, the plain body is still correct.
    if let Ok(compressed) = compressed {
        response.body = compressed;
        response
            .headers
            .push(("Content-Encoding".to_string(), "gzip".to_string()));
    }
}

/// Percent-decodes like Go's `url.PathUnescape` (`plus_is_space` false) or
/// `url.QueryUnescape` (true). `None` for a malformed escape. Invalid UTF-8 becomes U+FFFD.
pub(crate) fn percent_decode(text: &str, plus_is_space: bool) -> Option<String> {
    if !(text.contains('%') || (plus_is_space && text.contains('+'))) {
        return Some(text.to_string());
    }
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(byte) = bytes.next() {
        match byte {
            b'%' => {
                let high = hex_digit(bytes.next()?)?;
                let low = hex_digit(bytes.next()?)?;
                out.push((high << 4) | low);
            }
            b'+' if plus_is_space => out.push(b' '),
            other => out.push(other),
        }
    }
    Some(match String::from_utf8(out) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    })
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Go's `url.Values.Get` on `url.ParseQuery`: pairs split on `&`, a pair with `;` or a
/// malformed escape is dropped, the first value of `key` wins.
pub fn query_get(raw_query: &str, key: &str) -> Option<String> {
    raw_query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.contains(';'))
        .find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k, true)?;
            let v = percent_decode(v, true)?;
            (k == key).then_some(v)
        })
}

/// Go's `strconv.ParseInt(text, 10, 64)`, with its error text:
/// `strconv.ParseInt: parsing "x": invalid syntax` or `...: value out of range`.
pub(crate) fn go_parse_int64(text: &str) -> Result<i64, String> {
    let error = |what: &str| format!("strconv.ParseInt: parsing {}: {what}", go_quote(text));
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..).unwrap_or_default()),
        Some(b'+') => (false, text.get(1..).unwrap_or_default()),
        _ => (false, text),
    };
    if digits.is_empty() {
        return Err(error("invalid syntax"));
    }
    // Left to right as Go does: the first non-digit or the first overflow decides.
    let mut magnitude: u64 = 0;
    for byte in digits.bytes() {
        if !byte.is_ascii_digit() {
            return Err(error("invalid syntax"));
        }
        magnitude = magnitude
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(byte - b'0')))
            .ok_or_else(|| error("value out of range"))?;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
            .ok_or_else(|| error("value out of range"))
    } else {
        i64::try_from(magnitude).map_err(|_| error("value out of range"))
    }
}

/// Go's `strconv.Quote`, closely enough for error messages: `\"`, `\\`, the C escapes,
/// `\xNN` for other ASCII controls, `\uNNNN` for non-ASCII controls, spaces and format
/// characters; other characters as they are.
pub(crate) fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if !c.is_ascii()
                && (c.is_control()
                    || c.is_whitespace()
                    || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}')) =>
            {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_like_go() {
        assert_eq!(query_get("a=1&b=2", "b").as_deref(), Some("2"));
        assert_eq!(query_get("a=1&a=2", "a").as_deref(), Some("1"));
        assert_eq!(query_get("q=%7B+%7D", "q").as_deref(), Some("{ }"));
        assert_eq!(query_get("a%3Db=c", "a=b").as_deref(), Some("c"));
        assert_eq!(query_get("flag", "flag").as_deref(), Some(""));
        assert_eq!(query_get("a=%zz&a=2", "a").as_deref(), Some("2"));
        assert_eq!(query_get("a=1;b=2", "a"), None);
        assert_eq!(query_get("", "a"), None);
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(go_quote("\u{0}\u{7f}\u{7}"), "\"\\x00\\x7f\\a\"");
        assert_eq!(go_quote("é\u{a0}\u{200b}"), "\"é\\u00a0\\u200b\"");
    }
}

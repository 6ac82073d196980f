//! Request and trailer field validation (RFC 9113 8.1.1, 8.2, 8.3.1, 8.5).
//!
//! Pure functions from decoded fields to a validated request; an `Err` carries the reason a
//! message is malformed, which the connection answers with a stream error of type
//! PROTOCOL_ERROR (RFC 9113 8.1.1).

use allegro_hpack::Header;

/// A validated request header section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub method: String,
    /// Empty for CONNECT (RFC 9113 8.5).
    pub path: String,
    pub authority: Option<String>,
    /// Regular fields in order, names lowercase, `cookie` crumbs joined (RFC 9113 8.2.3).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The `content-length` value, if any.
    pub content_length: Option<u64>,
}

/// Validates a request header section (RFC 9113 8.3.1).
pub(crate) fn validate_request(fields: Vec<Header>) -> Result<Request, String> {
    let mut method = None;
    let mut scheme = None;
    let mut path = None;
    let mut authority = None;
    let mut regular = RegularFields::default();
    for field in fields {
        let Header { name, value, .. } = field;
        check_value(&name, &value)?;
        if name.first() == Some(&b':') {
            // RFC 9113 8.3: "All pseudo-header fields MUST appear in a field block before
            // all regular field lines."
            if !regular.headers.is_empty() || regular.cookie.is_some() {
                return Err(format!(
                    "pseudo-header {} after a regular header field",
                    printable(&name)
                ));
            }
            let slot = match name.as_slice() {
                b":method" => &mut method,
                b":scheme" => &mut scheme,
                b":path" => &mut path,
                b":authority" => &mut authority,
                // RFC 9113 8.3: "pseudo-header fields defined for responses MUST NOT
                // appear in requests" and "Endpoints MUST treat a request or response that
                // contains undefined or invalid pseudo-header fields as malformed".
                b":status" => return Err("response pseudo-header :status in a request".into()),
                _ => return Err(format!("unknown pseudo-header {}", printable(&name))),
            };
            // RFC 9113 8.3: "The same pseudo-header field name MUST NOT appear more than
            // once in a field block."
            if slot.is_some() {
                return Err(format!("repeated pseudo-header {}", printable(&name)));
            }
            *slot = Some(value);
        } else {
            regular.push(name, value)?;
        }
    }
    let Some(method) = method else {
        return Err("missing :method pseudo-header".into());
    };
    let method = utf8(":method", method)?;
    let authority = authority.map(|a| utf8(":authority", a)).transpose()?;
    let path = if method == "CONNECT" {
        // RFC 9113 8.5: "The ":scheme" and ":path" pseudo-header fields MUST be omitted."
        // and ":authority" carries the host and port.
        if scheme.is_some() || path.is_some() {
            return Err("CONNECT request with :scheme or :path".into());
        }
        if authority.is_none() {
            return Err("CONNECT request without :authority".into());
        }
        String::new()
    } else {
        // RFC 9113 8.3.1: "All HTTP/2 requests MUST include exactly one valid value for
        // the ":method", ":scheme", and ":path" pseudo-header fields, unless they are
        // CONNECT requests".
        let Some(scheme) = scheme else {
            return Err("missing :scheme pseudo-header".into());
        };
        let Some(path) = path else {
            return Err("missing :path pseudo-header".into());
        };
        // RFC 9113 8.3.1: ":path" "MUST NOT be empty for "http" or "https" URIs".
        if path.is_empty() && (scheme == b"http" || scheme == b"https") {
            return Err("empty :path pseudo-header".into());
        }
        utf8(":path", path)?
    };
    let content_length = regular.content_length;
    Ok(Request {
        method,
        path,
        authority,
        headers: regular.finish(),
        content_length,
    })
}

/// Validates a trailer section (RFC 9113 8.1): "Trailers MUST NOT include pseudo-header
/// fields", plus the field rules of 8.2.
pub(crate) fn validate_trailers(fields: Vec<Header>) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut regular = RegularFields::default();
    for field in fields {
        let Header { name, value, .. } = field;
        check_value(&name, &value)?;
        if name.first() == Some(&b':') {
            return Err(format!("pseudo-header {} in trailers", printable(&name)));
        }
        regular.push(name, value)?;
    }
    Ok(regular.finish())
}

#[derive(Default)]
struct RegularFields {
    headers: Vec<(String, Vec<u8>)>,
    /// Index into `headers` of the joined cookie field, and whether one was seen.
    cookie: Option<usize>,
    content_length: Option<u64>,
}

impl RegularFields {
    fn push(&mut self, name: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        check_name(&name)?;
        match name.as_slice() {
            // RFC 9113 8.2.2: "Any message containing connection-specific header fields
            // MUST be treated as malformed".
            b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding"
            | b"upgrade" => {
                return Err(format!(
                    "connection-specific header field {}",
                    printable(&name)
                ))
            }
            // RFC 9113 8.2.2: TE "MUST NOT contain any value other than "trailers"."
            b"te" if value != b"trailers" => {
                return Err(format!("te header field of \"{}\"", printable(&value)))
            }
            b"content-length" => {
                let length = parse_content_length(&value)?;
                if self.content_length.is_some_and(|seen| seen != length) {
                    return Err("conflicting content-length header fields".into());
                }
                self.content_length = Some(length);
            }
            b"cookie" => {
                // RFC 9113 8.2.3: cookie crumbs "MUST be concatenated into a single octet
                // string using the two-octet delimiter of 0x3b, 0x20 (the ASCII string
                // "; ") before being passed into ... a generic HTTP server application."
                if let Some((_, joined)) = self.cookie.and_then(|at| self.headers.get_mut(at)) {
                    joined.extend_from_slice(b"; ");
                    joined.extend_from_slice(&value);
                    return Ok(());
                }
                self.cookie = Some(self.headers.len());
            }
            _ => {}
        }
        // `check_name` admitted only visible ASCII, so this cannot fail.
        let name = String::from_utf8(name).map_err(|_| "non-ASCII header field name")?;
        self.headers.push((name, value));
        Ok(())
    }

    fn finish(self) -> Vec<(String, Vec<u8>)> {
        self.headers
    }
}

/// RFC 9113 8.2.1: "A field name MUST NOT contain characters in the ranges 0x00-0x20,
/// 0x41-0x5a, or 0x7f-0xff" and, except pseudo-headers, "MUST NOT include a colon".
fn check_name(name: &[u8]) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty header field name".into());
    }
    if name.iter().any(u8::is_ascii_uppercase) {
        return Err(format!("uppercase header field name {}", printable(name)));
    }
    if name.iter().any(|&b| b <= 0x20 || b >= 0x7f || b == b':') {
        return Err(format!("invalid header field name {}", printable(name)));
    }
    Ok(())
}

/// RFC 9113 8.2.1: "A field value MUST NOT contain the zero value (ASCII NUL, 0x00), line
/// feed (ASCII LF, 0x0a), or carriage return (ASCII CR, 0x0d) at any position" and "MUST
/// NOT start or end with an ASCII whitespace character (ASCII SP or HTAB, 0x20 or 0x09)."
fn check_value(name: &[u8], value: &[u8]) -> Result<(), String> {
    if value.iter().any(|&b| b == 0 || b == b'\n' || b == b'\r') {
        return Err(format!(
            "value of {} contains NUL, CR or LF",
            printable(name)
        ));
    }
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    if value.first().is_some_and(is_space) || value.last().is_some_and(is_space) {
        return Err(format!(
            "value of {} starts or ends with whitespace",
            printable(name)
        ));
    }
    Ok(())
}

fn parse_content_length(value: &[u8]) -> Result<u64, String> {
    let digits = std::str::from_utf8(value)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    digits
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| format!("invalid content-length \"{}\"", printable(value)))
}

fn utf8(what: &str, value: Vec<u8>) -> Result<String, String> {
    String::from_utf8(value).map_err(|_| format!("{what} is not valid UTF-8"))
}

/// Peer bytes for an error message: ASCII, control and non-ASCII bytes escaped, at most 64
/// bytes shown.
pub(crate) fn printable(bytes: &[u8]) -> String {
    const SHOWN_BYTES_MAX: usize = 64;
    let mut out: String = bytes
        .iter()
        .take(SHOWN_BYTES_MAX)
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    if bytes.len() > SHOWN_BYTES_MAX {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(list: &[(&str, &str)]) -> Vec<Header> {
        list.iter()
            .map(|(n, v)| Header {
                name: n.as_bytes().to_vec(),
                value: v.as_bytes().to_vec(),
                sensitive: false,
            })
            .collect()
    }

    const BASE: [(&str, &str); 4] = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/x"),
        (":authority", "a"),
    ];

    fn with(extra: &[(&str, &str)]) -> Vec<Header> {
        let mut list = BASE.to_vec();
        list.extend_from_slice(extra);
        fields(&list)
    }

    #[test]
    fn valid_request() {
        let request = validate_request(with(&[
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("cookie", "a=b"),
            ("x", "1"),
            ("cookie", "c=d"),
            ("content-length", "5"),
        ]))
        .expect("valid");
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/x");
        assert_eq!(request.authority.as_deref(), Some("a"));
        assert_eq!(request.content_length, Some(5));
        let cookie = request.headers.iter().find(|(n, _)| n == "cookie");
        assert_eq!(cookie.map(|(_, v)| v.as_slice()), Some(&b"a=b; c=d"[..]));
    }

    #[test]
    fn malformed_requests() {
        let cases: Vec<Vec<Header>> = vec![
            fields(&[(":scheme", "http"), (":path", "/")]),
            fields(&[(":method", "GET"), (":path", "/")]),
            fields(&[(":method", "GET"), (":scheme", "http")]),
            fields(&[(":method", "GET"), (":scheme", "http"), (":path", "")]),
            with(&[(":method", "GET")]),
            with(&[(":status", "200")]),
            with(&[(":foo", "bar")]),
            with(&[("x", "1"), (":authority", "b")]),
            with(&[("X-Upper", "1")]),
            with(&[("connection", "close")]),
            with(&[("keep-alive", "1")]),
            with(&[("proxy-connection", "1")]),
            with(&[("transfer-encoding", "chunked")]),
            with(&[("upgrade", "h2c")]),
            with(&[("te", "gzip")]),
            with(&[("content-length", "x")]),
            with(&[("content-length", "1"), ("content-length", "2")]),
            with(&[("bad name", "1")]),
            with(&[("x", "a\nb")]),
            with(&[("x", " a")]),
            with(&[("", "a")]),
            fields(&[(":method", "CONNECT"), (":authority", "a"), (":path", "/")]),
            fields(&[(":method", "CONNECT")]),
        ];
        for case in cases {
            let shown: Vec<_> = case.iter().map(|h| printable(&h.name)).collect();
            assert!(validate_request(case).is_err(), "{shown:?}");
        }
    }

    #[test]
    fn connect_and_trailers() {
        let request =
            validate_request(fields(&[(":method", "CONNECT"), (":authority", "h:1")])).unwrap();
        assert_eq!(request.path, "");
        assert!(validate_trailers(fields(&[("grpc-status", "0")])).is_ok());
        assert!(validate_trailers(fields(&[(":path", "/")])).is_err());
        assert!(validate_trailers(fields(&[("Grpc-Status", "0")])).is_err());
    }
}

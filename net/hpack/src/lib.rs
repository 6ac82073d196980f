//! HPACK (RFC 7541): header compression for HTTP/2. Sans-IO: bytes in, headers out.
//!
//! API contract (used by `allegro-h2`; keep these signatures):
//! - `Decoder::new(max_table_size)`, `Decoder::decode(block, max_header_list_bytes, &mut out)`
//! - `Encoder::new()`, `Encoder::encode(&headers, &mut dst)`

/// One decoded header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
    /// Encoded as "never indexed" (RFC 7541 6.2.3).
    pub sensitive: bool,
}

/// Why a header block could not be decoded. Every variant is a connection error of type
/// COMPRESSION_ERROR in HTTP/2, except `HeaderListTooLarge`, which the caller answers per
/// RFC 9113 10.5.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HpackError {
    Todo,
}

pub struct Decoder {}

impl Decoder {
    /// `max_table_size`: SETTINGS_HEADER_TABLE_SIZE we advertise (the upper bound for a
    /// dynamic table size update from the peer).
    pub fn new(max_table_size: usize) -> Self {
        let _ = max_table_size;
        Decoder {}
    }

    /// Decodes one complete header block (HEADERS + CONTINUATION fragments joined).
    /// Appends fields to `out`; fails once the decoded list exceeds `max_header_list_bytes`
    /// (sum of name + value + 32 per field, RFC 9113 6.5.2).
    pub fn decode(
        &mut self,
        block: &[u8],
        max_header_list_bytes: usize,
        out: &mut Vec<Header>,
    ) -> Result<(), HpackError> {
        let _ = (block, max_header_list_bytes, out);
        Err(HpackError::Todo)
    }
}

#[derive(Default)]
pub struct Encoder {}

impl Encoder {
    pub fn new() -> Self {
        Encoder {}
    }

    /// Encodes `headers` (name, value) into `dst`.
    pub fn encode(&mut self, headers: &[(&[u8], &[u8])], dst: &mut Vec<u8>) {
        let _ = (headers, dst);
    }
}

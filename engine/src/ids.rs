//! Typed IDs at the boundary: a trace ID is parsed once, here, and the engine never sees a
//! raw byte vector.

use std::fmt;

/// A 128-bit OpenTelemetry trace ID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

/// A 64-bit OpenTelemetry span ID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub [u8; 8]);

/// Why a trace ID given in a URL could not be parsed. The `Display` texts are Tempo's, word
/// for word: Grafana shows them to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceIdParseError {
    /// A character outside `[0-9a-fA-F]`; `position` is 1-based, counted in characters.
    NotHex { character: char, position: usize },
    /// More than 32 significant hex digits.
    TooLong,
}

impl fmt::Display for TraceIdParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceIdParseError::NotHex {
                character,
                position,
            } => write!(
                f,
                "trace IDs can only contain hex characters: invalid character '{character}' at position {position}"
            ),
            TraceIdParseError::TooLong => f.write_str("trace IDs can't be larger than 128 bits"),
        }
    }
}

impl std::error::Error for TraceIdParseError {}

impl TraceId {
    /// Parses a hex trace ID the way Tempo does: every character must be hex, an ID shorter
    /// than 32 digits is left-padded with zeros (a 64-bit Zipkin/Jaeger ID works), and more
    /// than 16 bytes is an error.
    pub fn parse_hex(text: &str) -> Result<TraceId, TraceIdParseError> {
        for (index, character) in text.chars().enumerate() {
            if !character.is_ascii_hexdigit() {
                return Err(TraceIdParseError::NotHex {
                    character,
                    position: index + 1,
                });
            }
        }
        // Every character is ASCII from here on, so byte indexing is character indexing.
        let digits = text.as_bytes();
        let byte_count = digits.len().div_ceil(2);
        if byte_count > 16 {
            return Err(TraceIdParseError::TooLong);
        }
        let mut id = [0u8; 16];
        // Walk from the last digit backwards, filling the ID from its last byte.
        for (digit_index_from_end, &digit) in digits.iter().rev().enumerate() {
            let nibble = hex_value(digit);
            let byte_index = 15 - digit_index_from_end / 2;
            if digit_index_from_end % 2 == 0 {
                id[byte_index] |= nibble;
            } else {
                id[byte_index] |= nibble << 4;
            }
        }
        Ok(TraceId(id))
    }

    /// A trace ID from wire bytes; `None` unless exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<TraceId> {
        <[u8; 16]>::try_from(bytes).ok().map(TraceId)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Lower-case, 32 hex digits.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

impl SpanId {
    /// A span ID from wire bytes; `None` unless exactly 8 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<SpanId> {
        <[u8; 8]>::try_from(bytes).ok().map(SpanId)
    }

    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({})", self.to_hex())
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({})", self.to_hex())
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => unreachable!("checked by the caller"),
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// A tenant ID: `X-Scope-OrgID`, or `single-tenant` when multitenancy is off. It is part of
/// every WAL record and of every path on disk, so it is validated like Tempo's (dskit)
/// tenant IDs: 1-150 characters from `[A-Za-z0-9!-_.*'()]`, and not `.` or `..`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(String);

/// The longest tenant ID accepted (dskit's limit).
pub const TENANT_BYTES_MAX: usize = 150;

/// The tenant used when `multitenancy_enabled` is false.
pub const SINGLE_TENANT: &str = "single-tenant";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantError {
    Empty,
    TooLong { bytes: usize },
    BadCharacter { character: char },
    Reserved,
}

impl fmt::Display for TenantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TenantError::Empty => f.write_str("no org id"),
            TenantError::TooLong { bytes } => write!(
                f,
                "tenant ID is too long: max {TENANT_BYTES_MAX} characters, got {bytes}"
            ),
            TenantError::BadCharacter { character } => {
                write!(f, "tenant ID '{character}' is not a supported character")
            }
            TenantError::Reserved => f.write_str("tenant ID is '.' or '..'"),
        }
    }
}

impl std::error::Error for TenantError {}

impl Tenant {
    pub fn parse(text: &str) -> Result<Tenant, TenantError> {
        if text.is_empty() {
            return Err(TenantError::Empty);
        }
        if text.len() > TENANT_BYTES_MAX {
            return Err(TenantError::TooLong { bytes: text.len() });
        }
        if text == "." || text == ".." {
            return Err(TenantError::Reserved);
        }
        for character in text.chars() {
            let ok = character.is_ascii_alphanumeric() || "!-_.*'()".contains(character);
            if !ok {
                return Err(TenantError::BadCharacter { character });
            }
        }
        Ok(Tenant(text.to_string()))
    }

    pub fn single() -> Tenant {
        Tenant(SINGLE_TENANT.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tenant({})", self.0)
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_short_ids_like_tempo() {
        let id = TraceId::parse_hex("0715762b08b73089607e391b01d54ad3").unwrap();
        assert_eq!(id.to_hex(), "0715762b08b73089607e391b01d54ad3");
        let short = TraceId::parse_hex("607e391b01d54ad3").unwrap();
        assert_eq!(short.to_hex(), "0000000000000000607e391b01d54ad3");
        let odd = TraceId::parse_hex("abc").unwrap();
        assert_eq!(odd.to_hex(), "00000000000000000000000000000abc");
        assert_eq!(
            TraceId::parse_hex("ABCDEF").unwrap().to_hex(),
            "00000000000000000000000000abcdef"
        );
    }

    #[test]
    fn rejects_with_tempos_texts() {
        assert_eq!(
            TraceId::parse_hex("not-a-trace-id")
                .unwrap_err()
                .to_string(),
            "trace IDs can only contain hex characters: invalid character 'n' at position 1"
        );
        assert_eq!(
            TraceId::parse_hex("zzzz").unwrap_err().to_string(),
            "trace IDs can only contain hex characters: invalid character 'z' at position 1"
        );
        assert_eq!(
            TraceId::parse_hex("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
                .unwrap_err()
                .to_string(),
            "trace IDs can't be larger than 128 bits"
        );
        assert_eq!(
            TraceId::parse_hex("ab-é").unwrap_err(),
            TraceIdParseError::NotHex {
                character: '-',
                position: 3
            }
        );
    }

    #[test]
    fn tenants() {
        assert!(Tenant::parse("team-a_1.prod").is_ok());
        assert_eq!(Tenant::parse(""), Err(TenantError::Empty));
        assert_eq!(Tenant::parse(".."), Err(TenantError::Reserved));
        assert!(matches!(
            Tenant::parse("a/b"),
            Err(TenantError::BadCharacter { character: '/' })
        ));
        assert!(Tenant::parse(&"x".repeat(151)).is_err());
    }
}

//! Our HPACK encoder: the `allegro-hpack` encoder, or literals only once the client
//! advertises a dynamic table smaller than the default (RFC 9113 4.3.1).

use allegro_hpack::Encoder;

use crate::settings::HEADER_TABLE_SIZE_DEFAULT;

/// Our HPACK encoder. RFC 9113 4.3.1: "The HPACK encoder at that endpoint can set the
/// dynamic table to any size up to the maximum value set by the decoder." When the client
/// advertises a table smaller than the 4,096 octets every connection starts with, we stop
/// using the dynamic table: one Dynamic Table Size Update to 0 (RFC 7541 6.3), then only
/// literals without indexing (RFC 7541 6.2.2).
pub(super) enum HeaderEncoder {
    Hpack(Encoder),
    Literal { size_update_pending: bool },
}

impl HeaderEncoder {
    pub(super) fn set_peer_table_size(&mut self, size: u32) {
        if size < HEADER_TABLE_SIZE_DEFAULT && matches!(self, HeaderEncoder::Hpack(_)) {
            *self = HeaderEncoder::Literal {
                size_update_pending: true,
            };
        }
    }

    pub(super) fn encode(&mut self, fields: &[(&[u8], &[u8])], dst: &mut Vec<u8>) {
        match self {
            HeaderEncoder::Hpack(encoder) => encoder.encode(fields, dst),
            HeaderEncoder::Literal {
                size_update_pending,
            } => {
                if std::mem::take(size_update_pending) {
                    hpack_integer(dst, 0x20, 5, 0);
                }
                for (name, value) in fields {
                    dst.push(0x00);
                    hpack_integer(dst, 0x00, 7, name.len());
                    dst.extend_from_slice(name);
                    hpack_integer(dst, 0x00, 7, value.len());
                    dst.extend_from_slice(value);
                }
            }
        }
    }
}

/// RFC 7541 5.1 integer with an N-bit prefix; `flags` holds the bits above the prefix.
fn hpack_integer(dst: &mut Vec<u8>, flags: u8, prefix_bits: u32, value: usize) {
    debug_assert!((1..=8).contains(&prefix_bits));
    let prefix_max = (1usize << prefix_bits) - 1;
    if value < prefix_max {
        dst.push(flags | value as u8);
        return;
    }
    dst.push(flags | prefix_max as u8);
    let mut rest = value - prefix_max;
    while rest >= 0x80 {
        dst.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    dst.push(rest as u8);
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use allegro_hpack::Decoder;

    use super::*;

    #[test]
    fn hpack_integers() {
        // RFC 7541 C.1.1-C.1.3.
        let mut out = Vec::new();
        hpack_integer(&mut out, 0, 5, 10);
        assert_eq!(out, [10]);
        out.clear();
        hpack_integer(&mut out, 0, 5, 1337);
        assert_eq!(out, [31, 154, 10]);
        out.clear();
        hpack_integer(&mut out, 0, 8, 42);
        assert_eq!(out, [42]);
    }

    #[test]
    fn literal_encoder_starts_with_a_size_update() {
        let mut encoder = HeaderEncoder::Hpack(Encoder::new());
        encoder.set_peer_table_size(0);
        let mut out = Vec::new();
        encoder.encode(&[(b":status", b"200")], &mut out);
        assert_eq!(out, b"\x20\x00\x07:status\x03200");
        let mut decoder = Decoder::new(0);
        let mut fields = Vec::new();
        decoder.decode(&out, 1 << 10, &mut fields).unwrap();
        assert_eq!(fields.len(), 1);
        out.clear();
        encoder.encode(&[(b"a", b"b")], &mut out);
        assert_eq!(out, b"\x00\x01a\x01b");
    }
}

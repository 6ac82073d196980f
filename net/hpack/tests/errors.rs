//! Malformed and hostile header blocks: each error case with its RFC 7541 rule, its message,
//! and what the decoder's state is afterwards.

use allegro_hpack::{Decoder, Encoder, Header, HpackError};

const LIST_BYTES_MAX: usize = 16 * 1024;

/// Decodes `block` with a fresh 4096-byte decoder and returns the error; `out` must be left
/// untouched.
fn decode_err(block: &[u8]) -> HpackError {
    decode_err_with(&mut Decoder::new(4096), block, LIST_BYTES_MAX)
}

fn decode_err_with(decoder: &mut Decoder, block: &[u8], list_bytes_max: usize) -> HpackError {
    let sentinel = Header {
        name: b"before".to_vec(),
        value: b"block".to_vec(),
        sensitive: false,
    };
    let mut out = vec![sentinel.clone()];
    let err = decoder
        .decode(block, list_bytes_max, &mut out)
        .expect_err("block must not decode");
    assert_eq!(out, [sentinel], "out changed by a failed block");
    err
}

fn decode_ok(decoder: &mut Decoder, block: &[u8]) -> Vec<Header> {
    let mut out = Vec::new();
    decoder
        .decode(block, LIST_BYTES_MAX, &mut out)
        .unwrap_or_else(|e| panic!("{block:02x?}: {e}"));
    out
}

/// RFC 7541 6.1: "The index value of 0 is not used. It MUST be treated as a decoding error
/// if found in an indexed header field representation."
#[test]
fn index_zero() {
    let err = decode_err(&[0x80]);
    assert_eq!(err, HpackError::ZeroIndex);
    assert_eq!(err.to_string(), "index 0 is not a valid table index");
    assert!(err.is_compression_error());
}

/// RFC 7541 2.3.3: "Indices strictly greater than the sum of the lengths of both tables
/// MUST be treated as a decoding error."
#[test]
fn index_past_table() {
    let err = decode_err(&[0xbe]); // 62 with an empty dynamic table
    assert_eq!(
        err,
        HpackError::IndexOutOfRange {
            index: 62,
            dynamic_len: 0
        }
    );
    // With one dynamic entry, 62 is valid and 63 is not; a literal's name index too.
    let mut decoder = Decoder::new(4096);
    decode_ok(&mut decoder, &[0x40, 0x01, b'a', 0x01, b'b']);
    assert_eq!(decode_ok(&mut decoder, &[0xbe])[0].name, b"a");
    let err = decode_err_with(&mut decoder, &[0x7f, 0x00, 0x01, b'x'], LIST_BYTES_MAX);
    assert_eq!(
        err,
        HpackError::IndexOutOfRange {
            index: 63,
            dynamic_len: 1
        }
    );
    assert_eq!(
        err.to_string(),
        "index 63 is past the end of the table (62 entries: 61 static, 1 dynamic)"
    );
    // A huge index is an error, not an overflow.
    assert!(matches!(
        decode_err(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x0e]),
        HpackError::IndexOutOfRange { .. }
    ));
}

/// RFC 7541 6.3: "The new maximum size MUST be lower than or equal to the limit determined
/// by the protocol using HPACK."
#[test]
fn size_update_above_limit() {
    // 4097 = 31 + 98 + (31 << 7)
    let err = decode_err(&[0x3f, 0xe2, 0x1f]);
    assert_eq!(
        err,
        HpackError::SizeUpdateTooLarge {
            size: 4097,
            limit: 4096
        }
    );
    assert_eq!(
        err.to_string(),
        "dynamic table size update to 4097 bytes exceeds our SETTINGS_HEADER_TABLE_SIZE of 4096"
    );
    // 4096 itself is fine, and so is 0.
    let mut decoder = Decoder::new(4096);
    assert!(decode_ok(&mut decoder, &[0x3f, 0xe1, 0x1f]).is_empty());
    assert!(decode_ok(&mut decoder, &[0x20]).is_empty());
    assert_eq!(decoder.dynamic_table_size_max(), 0);
}

/// RFC 7541 4.2: "This dynamic table size update MUST occur at the beginning of the first
/// header block following the change to the dynamic table size."
#[test]
fn size_update_after_field() {
    let err = decode_err(&[0x82, 0x20]);
    assert_eq!(err, HpackError::SizeUpdateAfterField);
    assert!(err.is_compression_error());
    // Several updates at the start are fine (RFC 7541 4.2 allows two in practice).
    let mut decoder = Decoder::new(4096);
    let out = decode_ok(&mut decoder, &[0x20, 0x3f, 0x45, 0x82]);
    assert_eq!(out.len(), 1);
    assert_eq!(decoder.dynamic_table_size_max(), 100);
}

/// RFC 7541 4.2: after we lower SETTINGS_HEADER_TABLE_SIZE the peer MUST signal it.
#[test]
fn size_update_required_after_lowering_the_limit() {
    let mut decoder = Decoder::new(4096);
    decode_ok(&mut decoder, &[0x40, 0x01, b'a', 0x01, b'b']);
    decoder.set_max_table_size(10);
    assert_eq!(decoder.dynamic_table_size(), 0, "shrunk at once");
    let err = decode_err_with(&mut decoder, &[0x82], LIST_BYTES_MAX);
    assert_eq!(err, HpackError::SizeUpdateMissing { limit: 10 });
    // A block that starts with an update within the new limit is accepted.
    let mut decoder = Decoder::new(4096);
    decoder.set_max_table_size(10);
    assert_eq!(decode_ok(&mut decoder, &[0x2a, 0x82]).len(), 1);
    assert_eq!(decoder.dynamic_table_size_max(), 10);
    // Raising the limit requires nothing.
    decoder.set_max_table_size(8192);
    assert_eq!(decode_ok(&mut decoder, &[0x82]).len(), 1);
}

#[test]
fn truncated_integer() {
    assert_eq!(decode_err(&[0xff]), HpackError::TruncatedInteger);
    assert_eq!(decode_err(&[0xff, 0x80]), HpackError::TruncatedInteger);
    assert_eq!(decode_err(&[0x40, 0xff]), HpackError::TruncatedInteger);
    // A literal whose string length is missing entirely.
    assert_eq!(decode_err(&[0x40]), HpackError::TruncatedInteger);
    assert_eq!(decode_err(&[0x04]), HpackError::TruncatedInteger);
    assert_eq!(
        decode_err(&[0xff]).to_string(),
        "header block ends in the middle of an integer"
    );
}

#[test]
fn integer_overflow() {
    assert_eq!(
        decode_err(&[0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
        HpackError::IntegerOverflow
    );
    assert_eq!(
        decode_err(&[0x3f, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        HpackError::IntegerOverflow
    );
    assert_eq!(
        HpackError::IntegerOverflow.to_string(),
        "integer is larger than 4294967295 or has more than 5 continuation bytes"
    );
}

/// A string length is checked against the block before anything is allocated for it.
#[test]
fn truncated_string() {
    let err = decode_err(&[0x40, 0x0a, b'a']);
    assert_eq!(
        err,
        HpackError::TruncatedString {
            len: 10,
            available: 1
        }
    );
    assert_eq!(
        err.to_string(),
        "string literal of 10 bytes but only 1 bytes are left in the header block"
    );
    // A 3.75 GiB string length in a 7-byte block.
    assert_eq!(
        decode_err(&[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0e]),
        HpackError::TruncatedString {
            len: 126 + 15 * (1 << 28),
            available: 0
        }
    );
    // Truncated value after a complete name.
    assert_eq!(
        decode_err(&[0x00, 0x01, b'a', 0x85, 0xff]),
        HpackError::TruncatedString {
            len: 5,
            available: 1
        }
    );
}

/// RFC 7541 5.2: "A padding strictly longer than 7 bits MUST be treated as a decoding
/// error. A padding not corresponding to the most significant bits of the code for the EOS
/// symbol MUST be treated as a decoding error."
#[test]
fn bad_huffman_padding() {
    // Value "0" (00000) padded with 000.
    assert_eq!(
        decode_err(&[0x00, 0x01, b'a', 0x81, 0x00]),
        HpackError::HuffmanPaddingNotOnes
    );
    // Value "a" (00011) padded with 11 ones.
    assert_eq!(
        decode_err(&[0x00, 0x01, b'a', 0x82, 0x1f, 0xff]),
        HpackError::HuffmanPaddingTooLong
    );
    // Huffman-coded name with bad padding.
    assert_eq!(
        decode_err(&[0x00, 0x81, 0x00, 0x00]),
        HpackError::HuffmanPaddingNotOnes
    );
    assert_eq!(
        HpackError::HuffmanPaddingTooLong.to_string(),
        "Huffman-coded string ends with more than 7 bits of padding"
    );
}

/// RFC 7541 5.2: "A Huffman-encoded string literal containing the EOS symbol MUST be treated
/// as a decoding error."
#[test]
fn eos_in_huffman_string() {
    assert_eq!(
        decode_err(&[0x00, 0x01, b'a', 0x84, 0xff, 0xff, 0xff, 0xff]),
        HpackError::HuffmanEos
    );
}

/// The list limit stops keeping fields as soon as it is exceeded; the block is still read
/// to its end so the table stays in sync, and the next block decodes normally.
#[test]
fn list_too_large() {
    let mut decoder = Decoder::new(4096);
    // ":method: GET" is 42 bytes; three of them are 126.
    let err = decode_err_with(&mut decoder, &[0x82, 0x82, 0x82], 125);
    assert_eq!(err, HpackError::HeaderListTooLarge { bytes_max: 125 });
    assert!(!err.is_compression_error());
    assert_eq!(
        err.to_string(),
        "header list exceeds 125 bytes (name + value + 32 per field)"
    );
    let mut out = Vec::new();
    assert_eq!(decoder.decode(&[0x82, 0x82, 0x82], 126, &mut out), Ok(()));
    assert_eq!(out.len(), 3);

    // A field over the limit that is also indexed still enters the table.
    let mut encoder = Encoder::new();
    let mut block = Vec::new();
    encoder.encode(&[(b"x-big", &[b'v'; 1000])], &mut block);
    let mut decoder = Decoder::new(4096);
    let err = decode_err_with(&mut decoder, &block, 100);
    assert_eq!(err, HpackError::HeaderListTooLarge { bytes_max: 100 });
    assert_eq!(decoder.dynamic_table().len(), 1);
    block.clear();
    encoder.encode(&[(b"x-big", &[b'v'; 1000]), (b"x-small", b"1")], &mut block);
    let out = decode_ok(&mut decoder, &block);
    assert_eq!(out[0].value.len(), 1000);
    assert_eq!(out[1].name, b"x-small");
}

/// An "HPACK bomb": one 4000-byte entry referenced thousands of times. The limit is
/// enforced per field, so the oversize list is never built.
#[test]
fn hpack_bomb_is_bounded() {
    let mut block = vec![0x40, 0x01, b'k', 0x7f, 0x80, 0x1e]; // value length 127 + 3840 = 3967
    block.extend(std::iter::repeat_n(b'v', 3967));
    block.extend(std::iter::repeat_n(0xbe, 100_000)); // index 62, again and again
    let mut decoder = Decoder::new(4096);
    let err = decode_err_with(&mut decoder, &block, LIST_BYTES_MAX);
    assert_eq!(
        err,
        HpackError::HeaderListTooLarge {
            bytes_max: LIST_BYTES_MAX
        }
    );
    assert_eq!(decoder.dynamic_table_size(), 1 + 3967 + 32);

    // Huffman expansion: 5-bit codes decode to 8/5 of the input, still bounded by the limit.
    let mut encoder = Encoder::new();
    let mut block = Vec::new();
    encoder.encode(&[(b"x", &vec![b'a'; 100_000])], &mut block);
    assert!(block.len() < 70_000);
    let err = decode_err_with(&mut Decoder::new(4096), &block, LIST_BYTES_MAX);
    assert_eq!(
        err,
        HpackError::HeaderListTooLarge {
            bytes_max: LIST_BYTES_MAX
        }
    );
}

/// RFC 7541 4.4: an entry larger than the table empties it and is not added.
#[test]
fn entry_larger_than_table_empties_it() {
    let mut decoder = Decoder::new(64);
    decode_ok(&mut decoder, &[0x40, 0x01, b'a', 0x01, b'b']);
    assert_eq!(decoder.dynamic_table_size(), 34);
    let mut block = vec![0x40, 0x01, b'c', 0x1f];
    block.extend([b'd'; 31]); // 1 + 31 + 32 = 64 fits exactly
    decode_ok(&mut decoder, &block);
    assert_eq!(decoder.dynamic_table_size(), 64);
    assert_eq!(decoder.dynamic_table().len(), 1);
    let mut block = vec![0x40, 0x01, b'c', 0x20];
    block.extend([b'd'; 32]); // 65 > 64
    let out = decode_ok(&mut decoder, &block);
    assert_eq!(out[0].value.len(), 32, "the field itself is still decoded");
    assert_eq!(decoder.dynamic_table_size(), 0);
    assert_eq!(decoder.dynamic_table().len(), 0);
}

#[test]
fn every_error_has_a_message() {
    let errors = [
        HpackError::TruncatedInteger,
        HpackError::IntegerOverflow,
        HpackError::TruncatedString {
            len: 1,
            available: 0,
        },
        HpackError::ZeroIndex,
        HpackError::IndexOutOfRange {
            index: 70,
            dynamic_len: 1,
        },
        HpackError::HuffmanEos,
        HpackError::HuffmanPaddingTooLong,
        HpackError::HuffmanPaddingNotOnes,
        HpackError::SizeUpdateTooLarge { size: 1, limit: 0 },
        HpackError::SizeUpdateAfterField,
        HpackError::SizeUpdateMissing { limit: 0 },
        HpackError::HeaderListTooLarge { bytes_max: 0 },
    ];
    for err in errors {
        let message = err.to_string();
        assert!(message.len() > 20, "{err:?}: {message}");
        assert_eq!(
            err.is_compression_error(),
            !matches!(err, HpackError::HeaderListTooLarge { .. })
        );
    }
}

//! The static Huffman code of RFC 7541 Appendix B, and a table-driven decoder.
//!
//! Encoding packs each byte's code MSB-first and pads the last octet with the most significant
//! bits of EOS (all ones).
//!
//! Decoding walks the code tree four bits at a time. The tree of a complete prefix code with
//! 257 leaves has exactly 256 internal nodes, so a decoder state is one `u8` (the internal
//! node reached so far; 0 is the root). For every state and nibble, [`TRANSITIONS`] holds the
//! next state and the symbol completed on the way, if any (the shortest code is 5 bits, so a
//! nibble completes at most one). Both the tree and the transition table are built by `const
//! fn` from [`CODES`] at compile time; a transcription error that breaks the prefix code
//! fails the build.
//!
//! RFC 7541 5.2: a string that contains EOS is an error, and so is padding longer than
//! 7 bits or padding that is not all ones. At the end of the input, the state tells which:
//! padding that is a prefix of EOS leaves the decoder on the all-ones path of the tree, at a
//! depth equal to the padding length ([`PADDING`]).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::HpackError;

/// Number of symbols: the 256 byte values and EOS.
pub(crate) const SYMBOLS: usize = 257;
/// The end-of-string symbol; never valid inside a string.
pub(crate) const EOS: usize = 256;
/// Shortest and longest code lengths in bits.
pub(crate) const CODE_BITS_MIN: u8 = 5;
pub(crate) const CODE_BITS_MAX: u8 = 30;
/// Padding is at most 7 bits (RFC 7541 5.2).
const PADDING_BITS_MAX: u32 = 7;

/// `(code, length in bits)` per symbol, code aligned to the LSB: RFC 7541 Appendix B.
#[rustfmt::skip]
pub(crate) const CODES: [(u32, u8); SYMBOLS] = [
    (0x1ff8, 13),     (0x7fffd8, 23),   (0xfffffe2, 28),  (0xfffffe3, 28), //   0..=3
    (0xfffffe4, 28),  (0xfffffe5, 28),  (0xfffffe6, 28),  (0xfffffe7, 28), //   4..=7
    (0xfffffe8, 28),  (0xffffea, 24),   (0x3ffffffc, 30), (0xfffffe9, 28), //   8..=11
    (0xfffffea, 28),  (0x3ffffffd, 30), (0xfffffeb, 28),  (0xfffffec, 28), //  12..=15
    (0xfffffed, 28),  (0xfffffee, 28),  (0xfffffef, 28),  (0xffffff0, 28), //  16..=19
    (0xffffff1, 28),  (0xffffff2, 28),  (0x3ffffffe, 30), (0xffffff3, 28), //  20..=23
    (0xffffff4, 28),  (0xffffff5, 28),  (0xffffff6, 28),  (0xffffff7, 28), //  24..=27
    (0xffffff8, 28),  (0xffffff9, 28),  (0xffffffa, 28),  (0xffffffb, 28), //  28..=31
    (0x14, 6),        (0x3f8, 10),      (0x3f9, 10),      (0xffa, 12),     //  32..=35 ' ' ! " #
    (0x1ff9, 13),     (0x15, 6),        (0xf8, 8),        (0x7fa, 11),     //  36..=39 $ % & '
    (0x3fa, 10),      (0x3fb, 10),      (0xf9, 8),        (0x7fb, 11),     //  40..=43 ( ) * +
    (0xfa, 8),        (0x16, 6),        (0x17, 6),        (0x18, 6),       //  44..=47 , - . /
    (0x0, 5),         (0x1, 5),         (0x2, 5),         (0x19, 6),       //  48..=51 0 1 2 3
    (0x1a, 6),        (0x1b, 6),        (0x1c, 6),        (0x1d, 6),       //  52..=55 4 5 6 7
    (0x1e, 6),        (0x1f, 6),        (0x5c, 7),        (0xfb, 8),       //  56..=59 8 9 : ;
    (0x7ffc, 15),     (0x20, 6),        (0xffb, 12),      (0x3fc, 10),     //  60..=63 < = > ?
    (0x1ffa, 13),     (0x21, 6),        (0x5d, 7),        (0x5e, 7),       //  64..=67 @ A B C
    (0x5f, 7),        (0x60, 7),        (0x61, 7),        (0x62, 7),       //  68..=71 D E F G
    (0x63, 7),        (0x64, 7),        (0x65, 7),        (0x66, 7),       //  72..=75 H I J K
    (0x67, 7),        (0x68, 7),        (0x69, 7),        (0x6a, 7),       //  76..=79 L M N O
    (0x6b, 7),        (0x6c, 7),        (0x6d, 7),        (0x6e, 7),       //  80..=83 P Q R S
    (0x6f, 7),        (0x70, 7),        (0x71, 7),        (0x72, 7),       //  84..=87 T U V W
    (0xfc, 8),        (0x73, 7),        (0xfd, 8),        (0x1ffb, 13),    //  88..=91 X Y Z [
    (0x7fff0, 19),    (0x1ffc, 13),     (0x3ffc, 14),     (0x22, 6),       //  92..=95 \ ] ^ _
    (0x7ffd, 15),     (0x3, 5),         (0x23, 6),        (0x4, 5),        //  96..=99 ` a b c
    (0x24, 6),        (0x5, 5),         (0x25, 6),        (0x26, 6),       // 100..=103 d e f g
    (0x27, 6),        (0x6, 5),         (0x74, 7),        (0x75, 7),       // 104..=107 h i j k
    (0x28, 6),        (0x29, 6),        (0x2a, 6),        (0x7, 5),        // 108..=111 l m n o
    (0x2b, 6),        (0x76, 7),        (0x2c, 6),        (0x8, 5),        // 112..=115 p q r s
    (0x9, 5),         (0x2d, 6),        (0x77, 7),        (0x78, 7),       // 116..=119 t u v w
    (0x79, 7),        (0x7a, 7),        (0x7b, 7),        (0x7ffe, 15),    // 120..=123 x y z {
    (0x7fc, 11),      (0x3ffd, 14),     (0x1ffd, 13),     (0xffffffc, 28), // 124..=127 | } ~
    (0xfffe6, 20),    (0x3fffd2, 22),   (0xfffe7, 20),    (0xfffe8, 20),   // 128..=131
    (0x3fffd3, 22),   (0x3fffd4, 22),   (0x3fffd5, 22),   (0x7fffd9, 23),  // 132..=135
    (0x3fffd6, 22),   (0x7fffda, 23),   (0x7fffdb, 23),   (0x7fffdc, 23),  // 136..=139
    (0x7fffdd, 23),   (0x7fffde, 23),   (0xffffeb, 24),   (0x7fffdf, 23),  // 140..=143
    (0xffffec, 24),   (0xffffed, 24),   (0x3fffd7, 22),   (0x7fffe0, 23),  // 144..=147
    (0xffffee, 24),   (0x7fffe1, 23),   (0x7fffe2, 23),   (0x7fffe3, 23),  // 148..=151
    (0x7fffe4, 23),   (0x1fffdc, 21),   (0x3fffd8, 22),   (0x7fffe5, 23),  // 152..=155
    (0x3fffd9, 22),   (0x7fffe6, 23),   (0x7fffe7, 23),   (0xffffef, 24),  // 156..=159
    (0x3fffda, 22),   (0x1fffdd, 21),   (0xfffe9, 20),    (0x3fffdb, 22),  // 160..=163
    (0x3fffdc, 22),   (0x7fffe8, 23),   (0x7fffe9, 23),   (0x1fffde, 21),  // 164..=167
    (0x7fffea, 23),   (0x3fffdd, 22),   (0x3fffde, 22),   (0xfffff0, 24),  // 168..=171
    (0x1fffdf, 21),   (0x3fffdf, 22),   (0x7fffeb, 23),   (0x7fffec, 23),  // 172..=175
    (0x1fffe0, 21),   (0x1fffe1, 21),   (0x3fffe0, 22),   (0x1fffe2, 21),  // 176..=179
    (0x7fffed, 23),   (0x3fffe1, 22),   (0x7fffee, 23),   (0x7fffef, 23),  // 180..=183
    (0xfffea, 20),    (0x3fffe2, 22),   (0x3fffe3, 22),   (0x3fffe4, 22),  // 184..=187
    (0x7ffff0, 23),   (0x3fffe5, 22),   (0x3fffe6, 22),   (0x7ffff1, 23),  // 188..=191
    (0x3ffffe0, 26),  (0x3ffffe1, 26),  (0xfffeb, 20),    (0x7fff1, 19),   // 192..=195
    (0x3fffe7, 22),   (0x7ffff2, 23),   (0x3fffe8, 22),   (0x1ffffec, 25), // 196..=199
    (0x3ffffe2, 26),  (0x3ffffe3, 26),  (0x3ffffe4, 26),  (0x7ffffde, 27), // 200..=203
    (0x7ffffdf, 27),  (0x3ffffe5, 26),  (0xfffff1, 24),   (0x1ffffed, 25), // 204..=207
    (0x7fff2, 19),    (0x1fffe3, 21),   (0x3ffffe6, 26),  (0x7ffffe0, 27), // 208..=211
    (0x7ffffe1, 27),  (0x3ffffe7, 26),  (0x7ffffe2, 27),  (0xfffff2, 24),  // 212..=215
    (0x1fffe4, 21),   (0x1fffe5, 21),   (0x3ffffe8, 26),  (0x3ffffe9, 26), // 216..=219
    (0xffffffd, 28),  (0x7ffffe3, 27),  (0x7ffffe4, 27),  (0x7ffffe5, 27), // 220..=223
    (0xfffec, 20),    (0xfffff3, 24),   (0xfffed, 20),    (0x1fffe6, 21),  // 224..=227
    (0x3fffe9, 22),   (0x1fffe7, 21),   (0x1fffe8, 21),   (0x7ffff3, 23),  // 228..=231
    (0x3fffea, 22),   (0x3fffeb, 22),   (0x1ffffee, 25),  (0x1ffffef, 25), // 232..=235
    (0xfffff4, 24),   (0xfffff5, 24),   (0x3ffffea, 26),  (0x7ffff4, 23),  // 236..=239
    (0x3ffffeb, 26),  (0x7ffffe6, 27),  (0x3ffffec, 26),  (0x3ffffed, 26), // 240..=243
    (0x7ffffe7, 27),  (0x7ffffe8, 27),  (0x7ffffe9, 27),  (0x7ffffea, 27), // 244..=247
    (0x7ffffeb, 27),  (0xffffffe, 28),  (0x7ffffec, 27),  (0x7ffffed, 27), // 248..=251
    (0x7ffffee, 27),  (0x7ffffef, 27),  (0x7fffff0, 27),  (0x3ffffee, 26), // 252..=255
    (0x3fffffff, 30),                                                      // 256 EOS
];

/// Internal nodes of the code tree: a complete prefix code with 257 leaves has 256.
const NODES: usize = SYMBOLS - 1;
/// A tree child that is a leaf: `LEAF | symbol`. Any other child is an internal node index;
/// 0 (the root, never a child) marks an unset child while the tree is built.
const LEAF: u16 = 0x8000;

/// `TREE[node][bit]`: the child of an internal node.
const TREE: [[u16; 2]; NODES] = build_tree();

#[expect(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: an index out of range fails the build, not a run"
)]
const fn build_tree() -> [[u16; 2]; NODES] {
    let mut tree = [[0u16; 2]; NODES];
    let mut nodes = 1; // the root
    let mut symbol = 0;
    while symbol < SYMBOLS {
        let (code, bits) = CODES[symbol];
        assert!(
            bits >= CODE_BITS_MIN && bits <= CODE_BITS_MAX,
            "code length out of range"
        );
        assert!(code >> bits == 0, "code wider than its length");
        let mut node = 0;
        let mut bit_index = bits as u32;
        while bit_index > 1 {
            bit_index -= 1;
            let bit = ((code >> bit_index) & 1) as usize;
            let child = tree[node][bit];
            if child == 0 {
                assert!(
                    nodes < NODES,
                    "more internal nodes than a complete code has"
                );
                tree[node][bit] = nodes as u16;
                node = nodes;
                nodes += 1;
            } else {
                assert!(
                    child & LEAF == 0,
                    "a code extends another code: not prefix-free"
                );
                node = child as usize;
            }
        }
        let bit = (code & 1) as usize;
        assert!(
            tree[node][bit] == 0,
            "a code is a prefix of another: not prefix-free"
        );
        tree[node][bit] = LEAF | symbol as u16;
        symbol += 1;
    }
    assert!(nodes == NODES, "wrong number of internal nodes");
    let mut node = 0;
    while node < NODES {
        assert!(
            tree[node][0] != 0 && tree[node][1] != 0,
            "code is not complete"
        );
        node += 1;
    }
    tree
}

/// One step of the decoder: the state after a nibble, and the symbol completed on the way.
#[derive(Clone, Copy)]
struct Transition {
    next: u8,
    symbol: u8,
    flags: u8,
}

/// `symbol` is valid: a byte was completed by this nibble.
const EMIT: u8 = 1;
/// The nibble completed EOS: the string is invalid.
const FAIL: u8 = 2;

/// `TRANSITIONS[state][nibble]`.
static TRANSITIONS: [[Transition; 16]; NODES] = build_transitions();

#[expect(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: an index out of range fails the build, not a run"
)]
const fn build_transitions() -> [[Transition; 16]; NODES] {
    let none = Transition {
        next: 0,
        symbol: 0,
        flags: 0,
    };
    let mut table = [[none; 16]; NODES];
    let mut state = 0;
    while state < NODES {
        let mut nibble = 0;
        while nibble < 16 {
            let mut node = state;
            let mut step = none;
            let mut bit_index = 4;
            while bit_index > 0 {
                bit_index -= 1;
                let child = TREE[node][(nibble >> bit_index) & 1];
                if child & LEAF == 0 {
                    node = child as usize;
                    continue;
                }
                let symbol = (child & !LEAF) as usize;
                if symbol == EOS {
                    step.flags = FAIL;
                    node = 0;
                    break;
                }
                assert!(step.flags & EMIT == 0, "two symbols in one nibble");
                step.flags = EMIT;
                step.symbol = symbol as u8;
                node = 0;
            }
            step.next = node as u8;
            table[state][nibble] = step;
            nibble += 1;
        }
        state += 1;
    }
    table
}

/// How a decoder state ends a string.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Padding {
    /// On the all-ones path at depth <= 7 (the root included): valid padding.
    Valid,
    /// On the all-ones path but deeper than 7 bits.
    TooLong,
    /// Off the all-ones path: the padding contains a zero bit (or a code is cut short).
    NotOnes,
}

/// `PADDING[state]`.
const PADDING: [Padding; NODES] = build_padding();

#[expect(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: an index out of range fails the build, not a run"
)]
const fn build_padding() -> [Padding; NODES] {
    let mut padding = [Padding::NotOnes; NODES];
    let mut node = 0;
    let mut depth = 0;
    loop {
        padding[node] = if depth <= PADDING_BITS_MAX {
            Padding::Valid
        } else {
            Padding::TooLong
        };
        let child = TREE[node][1];
        if child & LEAF != 0 {
            break;
        }
        node = child as usize;
        depth += 1;
    }
    padding
}

#[expect(
    clippy::indexing_slicing,
    reason = "state is a u8 < NODES = 256, nibble is masked to < 16"
)]
#[inline(always)]
fn transition(state: u8, nibble: u8) -> Transition {
    const _: () = assert!(NODES == u8::MAX as usize + 1);
    TRANSITIONS[usize::from(state)][usize::from(nibble & 0x0f)]
}

#[expect(clippy::indexing_slicing, reason = "state is a u8 < NODES = 256")]
fn padding(state: u8) -> Padding {
    PADDING[usize::from(state)]
}

/// Decodes `src`, appending the first `cap` decoded bytes to `dst`; returns the full decoded
/// length. A result above `cap` means `dst` holds only a prefix: the caller did not need the
/// bytes (they would exceed a limit) but the string was still validated to the end.
pub(crate) fn decode(src: &[u8], dst: &mut Vec<u8>, cap: usize) -> Result<usize, HpackError> {
    let mut state = 0u8;
    let mut len = 0usize;
    for &byte in src {
        for nibble in [byte >> 4, byte & 0x0f] {
            let step = transition(state, nibble);
            if step.flags & FAIL != 0 {
                return Err(HpackError::HuffmanEos);
            }
            if step.flags & EMIT != 0 {
                if len < cap {
                    dst.push(step.symbol);
                }
                len += 1;
            }
            state = step.next;
        }
    }
    match padding(state) {
        Padding::Valid => Ok(len),
        Padding::TooLong => Err(HpackError::HuffmanPaddingTooLong),
        Padding::NotOnes => Err(HpackError::HuffmanPaddingNotOnes),
    }
}

/// Upper bound on the decoded length of `encoded_len` Huffman-coded bytes (every code is at
/// least 5 bits).
pub(crate) fn decoded_len_max(encoded_len: usize) -> usize {
    encoded_len.saturating_mul(8) / usize::from(CODE_BITS_MIN)
}

#[expect(clippy::indexing_slicing, reason = "a u8 is < 256 < SYMBOLS")]
#[inline(always)]
fn code(byte: u8) -> (u32, u8) {
    CODES[usize::from(byte)]
}

/// Length in bytes of `src` once Huffman-coded, padding included.
pub(crate) fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src.iter().map(|&b| usize::from(code(b).1)).sum();
    bits.div_ceil(8)
}

/// Appends `src` Huffman-coded, padded with ones to an octet boundary.
pub(crate) fn encode(src: &[u8], dst: &mut Vec<u8>) {
    dst.reserve(encoded_len(src));
    // Invariant: fewer than 8 pending bits before each symbol, so at most 7 + 30 after it.
    let mut pending: u64 = 0;
    let mut pending_bits: u32 = 0;
    for &byte in src {
        let (code, bits) = code(byte);
        pending = (pending << bits) | u64::from(code);
        pending_bits += u32::from(bits);
        while pending_bits >= 8 {
            pending_bits -= 8;
            dst.push((pending >> pending_bits) as u8);
        }
    }
    if pending_bits > 0 {
        dst.push(((pending << (8 - pending_bits)) as u8) | (0xff >> pending_bits));
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn decode_vec(src: &[u8]) -> Result<Vec<u8>, HpackError> {
        let mut dst = Vec::new();
        let len = decode(src, &mut dst, usize::MAX)?;
        assert_eq!(len, dst.len());
        Ok(dst)
    }

    /// Kraft's equality: sum of 2^-len over all codes is exactly 1, so the code is complete
    /// (every bit string is a code or a prefix of one) and no symbol can be added or lost.
    #[test]
    fn kraft_sum_is_exactly_one() {
        let sum: u64 = CODES
            .iter()
            .map(|&(_, bits)| 1u64 << (CODE_BITS_MAX - bits))
            .sum();
        assert_eq!(sum, 1u64 << CODE_BITS_MAX);
    }

    #[test]
    fn lengths_in_range_and_eos_is_thirty_ones() {
        for (symbol, &(code, bits)) in CODES.iter().enumerate() {
            assert!(
                (CODE_BITS_MIN..=CODE_BITS_MAX).contains(&bits),
                "symbol {symbol}"
            );
            assert_eq!(
                code >> bits,
                0,
                "symbol {symbol}: code wider than {bits} bits"
            );
        }
        assert_eq!(CODES[EOS], (0x3fff_ffff, 30));
    }

    /// Appendix B is a canonical Huffman code: ordered by (length, symbol), each code is the
    /// previous one plus one, shifted left by the growth in length. This pins every code to
    /// its length, so a typo in either column fails here.
    #[test]
    fn codes_are_canonical() {
        let mut order: Vec<usize> = (0..SYMBOLS).collect();
        order.sort_by_key(|&s| (CODES[s].1, s));
        let (mut code, mut bits) = (0u32, CODES[order[0]].1);
        assert_eq!(CODES[order[0]].0, 0);
        for &symbol in &order[1..] {
            let (next_code, next_bits) = CODES[symbol];
            code = (code + 1) << (next_bits - bits);
            bits = next_bits;
            assert_eq!(next_code, code, "symbol {symbol}");
        }
        assert_eq!(order[SYMBOLS - 1], EOS);
    }

    #[test]
    fn tree_has_every_symbol_once() {
        let mut seen = [false; SYMBOLS];
        for children in TREE.iter() {
            for &child in children {
                if child & LEAF != 0 {
                    let symbol = usize::from(child & !LEAF);
                    assert!(!seen[symbol], "symbol {symbol} twice");
                    seen[symbol] = true;
                }
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    /// Strings from RFC 7541 C.4 and C.6.
    #[test]
    fn appendix_c_strings() {
        let cases: &[(&str, &str)] = &[
            ("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
            ("no-cache", "a8eb 1064 9cbf"),
            ("custom-key", "25a8 49e9 5ba9 7d7f"),
            ("custom-value", "25a8 49e9 5bb8 e8b4 bf"),
            ("302", "6402"),
            ("307", "640e ff"),
            ("private", "aec3 771a 4b"),
            (
                "Mon, 21 Oct 2013 20:13:21 GMT",
                "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
            ),
            (
                "Mon, 21 Oct 2013 20:13:22 GMT",
                "d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff",
            ),
            (
                "https://www.example.com",
                "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
            ),
            ("gzip", "9bd9 ab"),
            (
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
                "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 \
                 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
            ),
        ];
        for &(text, coded) in cases {
            let coded = hex(coded);
            let mut dst = Vec::new();
            encode(text.as_bytes(), &mut dst);
            assert_eq!(dst, coded, "encode {text:?}");
            assert_eq!(encoded_len(text.as_bytes()), coded.len());
            assert_eq!(
                decode_vec(&coded).unwrap(),
                text.as_bytes(),
                "decode {text:?}"
            );
        }
    }

    #[test]
    fn every_byte_round_trips() {
        for byte in 0..=255u8 {
            for len in [1, 2, 3, 7, 8] {
                let src = vec![byte; len];
                let mut dst = Vec::new();
                encode(&src, &mut dst);
                assert_eq!(dst.len(), encoded_len(&src));
                assert_eq!(decode_vec(&dst).unwrap(), src, "byte {byte} x {len}");
            }
        }
        let all: Vec<u8> = (0..=255).collect();
        let mut dst = Vec::new();
        encode(&all, &mut dst);
        assert_eq!(decode_vec(&dst).unwrap(), all);
    }

    #[test]
    fn empty_string() {
        let mut dst = Vec::new();
        encode(b"", &mut dst);
        assert!(dst.is_empty());
        assert_eq!(decode_vec(b"").unwrap(), b"");
    }

    #[test]
    fn eos_in_string_is_an_error() {
        // 30 ones (EOS) + 2 ones of padding.
        assert_eq!(decode_vec(&[0xff; 4]), Err(HpackError::HuffmanEos));
        // 'a' (00011) then EOS, then 1 bit of padding.
        let mut bits = Vec::new();
        push_bits(&mut bits, 0b00011, 5);
        push_bits(&mut bits, 0x3fff_ffff, 30);
        push_bits(&mut bits, 1, 1);
        assert_eq!(decode_vec(&pack(&bits)), Err(HpackError::HuffmanEos));
    }

    #[test]
    fn padding_errors() {
        // '0' (00000) + 000 padding: not a prefix of EOS.
        assert_eq!(decode_vec(&[0x00]), Err(HpackError::HuffmanPaddingNotOnes));
        // 'a' (00011) + 11 ones: all ones but longer than 7 bits.
        assert_eq!(
            decode_vec(&[0x1f, 0xff]),
            Err(HpackError::HuffmanPaddingTooLong)
        );
        // 8 ones alone: a full octet of padding.
        assert_eq!(decode_vec(&[0xff]), Err(HpackError::HuffmanPaddingTooLong));
        // 'a' + 111 padding is fine; 'a' + 110 is not.
        assert_eq!(decode_vec(&[0x1f]).unwrap(), b"a");
        assert_eq!(decode_vec(&[0x1e]), Err(HpackError::HuffmanPaddingNotOnes));
        // A 13-bit code ('\0' = 1111111111000) cut after 8 bits, padded with zero bits.
        assert_eq!(
            decode_vec(&[0xff, 0x00]),
            Err(HpackError::HuffmanPaddingNotOnes)
        );
    }

    #[test]
    fn padding_of_every_length_up_to_seven() {
        for padding_bits in 0..=7u32 {
            // '0' is 5 bits and 5 is coprime to 8, so some run of '0's ends exactly
            // `padding_bits` short of an octet boundary.
            let mut bits = Vec::new();
            let mut text = Vec::new();
            while bits.len() % 8 != (8 - padding_bits as usize) % 8 || bits.is_empty() {
                text.push(b'0');
                push_bits(&mut bits, 0, 5);
            }
            push_bits(&mut bits, (1 << padding_bits) - 1, padding_bits);
            assert_eq!(bits.len() % 8, 0);
            assert_eq!(
                decode_vec(&pack(&bits)).unwrap(),
                text,
                "{padding_bits} bits"
            );
        }
    }

    #[test]
    fn cap_limits_output_but_not_validation() {
        let mut coded = Vec::new();
        encode(b"hello world", &mut coded);
        let mut dst = Vec::new();
        assert_eq!(decode(&coded, &mut dst, 4), Ok(11));
        assert_eq!(dst, b"hell");
        let mut dst = Vec::new();
        assert_eq!(decode(&[0xff; 4], &mut dst, 0), Err(HpackError::HuffmanEos));
    }

    #[test]
    fn decoded_len_bound_holds() {
        // The densest string: all 5-bit codes.
        let src = vec![b'a'; 1000];
        assert!(decoded_len_max(encoded_len(&src)) >= src.len());
    }

    fn push_bits(bits: &mut Vec<bool>, value: u32, count: u32) {
        for i in (0..count).rev() {
            bits.push((value >> i) & 1 == 1);
        }
    }

    fn pack(bits: &[bool]) -> Vec<u8> {
        bits.chunks(8)
            .map(|chunk| {
                let mut byte = 0u8;
                for (i, &bit) in chunk.iter().enumerate() {
                    if bit {
                        byte |= 0x80 >> i;
                    }
                }
                byte
            })
            .collect()
    }
}

//! RFC 7541 Appendix C examples C.2 to C.6: decoded headers and the dynamic table (contents
//! and size) after every block. C.1 (integers) is in `src/integer.rs`, C.4/C.6 strings also
//! in `src/huffman.rs`.

use allegro_hpack::{Decoder, Header};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// One header block of an example: its bytes, the decoded list, and the dynamic table after
/// it (newest first) with its size.
struct Block<'a> {
    hex: &'a str,
    headers: &'a [(&'a str, &'a str)],
    table: &'a [(&'a str, &'a str)],
    table_size: usize,
}

fn check(decoder: &mut Decoder, block: &Block<'_>, sensitive: bool) {
    let mut out = Vec::new();
    decoder
        .decode(&hex(block.hex), usize::MAX, &mut out)
        .unwrap_or_else(|e| panic!("{}: {e}", block.hex));
    let expected: Vec<Header> = block
        .headers
        .iter()
        .map(|&(name, value)| Header {
            name: name.into(),
            value: value.into(),
            sensitive,
        })
        .collect();
    assert_eq!(out, expected, "headers of {}", block.hex);
    let table: Vec<(&[u8], &[u8])> = decoder.dynamic_table().collect();
    let expected: Vec<(&[u8], &[u8])> = block
        .table
        .iter()
        .map(|&(name, value)| (name.as_bytes(), value.as_bytes()))
        .collect();
    assert_eq!(table, expected, "table after {}", block.hex);
    assert_eq!(
        decoder.dynamic_table_size(),
        block.table_size,
        "size after {}",
        block.hex
    );
}

fn check_sequence(table_size: usize, blocks: &[Block<'_>]) {
    let mut decoder = Decoder::new(table_size);
    for block in blocks {
        check(&mut decoder, block, false);
    }
}

/// C.2.1 Literal Header Field with Indexing.
#[test]
fn c_2_1_literal_with_indexing() {
    let block = Block {
        hex: "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
        headers: &[("custom-key", "custom-header")],
        table: &[("custom-key", "custom-header")],
        table_size: 55,
    };
    check(&mut Decoder::new(4096), &block, false);
}

/// C.2.2 Literal Header Field without Indexing.
#[test]
fn c_2_2_literal_without_indexing() {
    let block = Block {
        hex: "040c 2f73 616d 706c 652f 7061 7468",
        headers: &[(":path", "/sample/path")],
        table: &[],
        table_size: 0,
    };
    check(&mut Decoder::new(4096), &block, false);
}

/// C.2.3 Literal Header Field Never Indexed: decoded as sensitive.
#[test]
fn c_2_3_literal_never_indexed() {
    let block = Block {
        hex: "1008 7061 7373 776f 7264 0673 6563 7265 74",
        headers: &[("password", "secret")],
        table: &[],
        table_size: 0,
    };
    check(&mut Decoder::new(4096), &block, true);
}

/// C.2.4 Indexed Header Field.
#[test]
fn c_2_4_indexed() {
    let block = Block {
        hex: "82",
        headers: &[(":method", "GET")],
        table: &[],
        table_size: 0,
    };
    check(&mut Decoder::new(4096), &block, false);
}

const REQUEST_1: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const REQUEST_2: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQUEST_3: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];
const REQUEST_TABLE_1: &[(&str, &str)] = &[(":authority", "www.example.com")];
const REQUEST_TABLE_2: &[(&str, &str)] = &[
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];
const REQUEST_TABLE_3: &[(&str, &str)] = &[
    ("custom-key", "custom-value"),
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];

/// C.3 Request Examples without Huffman Coding.
#[test]
fn c_3_requests_without_huffman() {
    check_sequence(
        4096,
        &[
            Block {
                hex: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                headers: REQUEST_1,
                table: REQUEST_TABLE_1,
                table_size: 57,
            },
            Block {
                hex: "8286 84be 5808 6e6f 2d63 6163 6865",
                headers: REQUEST_2,
                table: REQUEST_TABLE_2,
                table_size: 110,
            },
            Block {
                hex: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
                headers: REQUEST_3,
                table: REQUEST_TABLE_3,
                table_size: 164,
            },
        ],
    );
}

/// C.4 Request Examples with Huffman Coding.
#[test]
fn c_4_requests_with_huffman() {
    check_sequence(
        4096,
        &[
            Block {
                hex: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                headers: REQUEST_1,
                table: REQUEST_TABLE_1,
                table_size: 57,
            },
            Block {
                hex: "8286 84be 5886 a8eb 1064 9cbf",
                headers: REQUEST_2,
                table: REQUEST_TABLE_2,
                table_size: 110,
            },
            Block {
                hex: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
                headers: REQUEST_3,
                table: REQUEST_TABLE_3,
                table_size: 164,
            },
        ],
    );
}

const RESPONSE_1: &[(&str, &str)] = &[
    (":status", "302"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RESPONSE_2: &[(&str, &str)] = &[
    (":status", "307"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RESPONSE_3: &[(&str, &str)] = &[
    (":status", "200"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
    ("location", "https://www.example.com"),
    ("content-encoding", "gzip"),
    (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    ),
];
const RESPONSE_TABLE_1: &[(&str, &str)] = &[
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
    (":status", "302"),
];
const RESPONSE_TABLE_2: &[(&str, &str)] = &[
    (":status", "307"),
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
];
const RESPONSE_TABLE_3: &[(&str, &str)] = &[
    (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    ),
    ("content-encoding", "gzip"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
];

/// C.5 Response Examples without Huffman Coding (256-byte table: evictions).
#[test]
fn c_5_responses_without_huffman() {
    check_sequence(
        256,
        &[
            Block {
                hex: "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 \
                      3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 \
                      7777 2e65 7861 6d70 6c65 2e63 6f6d",
                headers: RESPONSE_1,
                table: RESPONSE_TABLE_1,
                table_size: 222,
            },
            Block {
                hex: "4803 3330 37c1 c0bf",
                headers: RESPONSE_2,
                table: RESPONSE_TABLE_2,
                table_size: 222,
            },
            Block {
                hex: "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 \
                      3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a \
                      584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 \
                      3630 303b 2076 6572 7369 6f6e 3d31",
                headers: RESPONSE_3,
                table: RESPONSE_TABLE_3,
                table_size: 215,
            },
        ],
    );
}

/// C.6 Response Examples with Huffman Coding (256-byte table: evictions).
#[test]
fn c_6_responses_with_huffman() {
    check_sequence(
        256,
        &[
            Block {
                hex: "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 \
                      66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
                headers: RESPONSE_1,
                table: RESPONSE_TABLE_1,
                table_size: 222,
            },
            Block {
                hex: "4883 640e ffc1 c0bf",
                headers: RESPONSE_2,
                table: RESPONSE_TABLE_2,
                table_size: 222,
            },
            Block {
                hex: "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a \
                      839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 \
                      72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
                headers: RESPONSE_3,
                table: RESPONSE_TABLE_3,
                table_size: 215,
            },
        ],
    );
}

/// The list limit counts name + value + 32 per field exactly: C.3.1 is 42 + 43 + 38 + 57.
#[test]
fn list_limit_is_exact_on_c_3_1() {
    let block = hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d");
    let list_bytes = 42 + 43 + 38 + 57;
    let mut out = Vec::new();
    assert_eq!(
        Decoder::new(4096).decode(&block, list_bytes, &mut out),
        Ok(())
    );
    assert_eq!(out.len(), 4);
    let mut out = Vec::new();
    assert!(Decoder::new(4096)
        .decode(&block, list_bytes - 1, &mut out)
        .is_err());
    assert!(out.is_empty());
}

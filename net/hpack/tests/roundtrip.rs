//! Encoder -> decoder round trips: fixed lists, binary data, every byte value through
//! Huffman, table size changes, and a property test over random header lists with a small
//! deterministic PRNG. After every block the decoder's dynamic table must equal the
//! encoder's.

use allegro_hpack::{Decoder, Encoder, Header, HpackError, ENTRY_OVERHEAD_BYTES};

fn header(name: &[u8], value: &[u8], sensitive: bool) -> Header {
    Header {
        name: name.to_vec(),
        value: value.to_vec(),
        sensitive,
    }
}

fn assert_in_sync(encoder: &Encoder, decoder: &Decoder) {
    assert!(
        encoder.dynamic_table().eq(decoder.dynamic_table()),
        "dynamic tables differ"
    );
    assert_eq!(encoder.dynamic_table_size(), decoder.dynamic_table_size());
    assert_eq!(
        encoder.dynamic_table_size_max(),
        decoder.dynamic_table_size_max()
    );
}

/// Encodes `headers` as one block, decodes it, and checks the list and the tables.
fn round_trip(encoder: &mut Encoder, decoder: &mut Decoder, headers: &[Header]) -> Vec<u8> {
    let mut block = Vec::new();
    encoder.encode_headers(headers, &mut block);
    let mut out = Vec::new();
    decoder
        .decode(&block, usize::MAX, &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out, headers);
    assert_in_sync(encoder, decoder);
    block
}

#[test]
fn simple_lists_round_trip_and_shrink() {
    let mut encoder = Encoder::new();
    let mut decoder = Decoder::new(4096);
    let list = [
        header(b":status", b"200", false),
        header(b"content-type", b"application/grpc", false),
        header(b"grpc-encoding", b"identity", false),
        header(b"x-custom", b"", false),
        header(b"", b"empty name", false),
    ];
    let first = round_trip(&mut encoder, &mut decoder, &list);
    let second = round_trip(&mut encoder, &mut decoder, &list);
    assert!(second.len() < first.len());
    assert_eq!(second.len(), list.len(), "one byte per field once indexed");
}

#[test]
fn binary_names_and_values() {
    let mut encoder = Encoder::new();
    let mut decoder = Decoder::new(4096);
    let all: Vec<u8> = (0..=255).collect();
    let reversed: Vec<u8> = (0..=255).rev().collect();
    let list = [
        header(&all, &reversed, false),
        header(b"x-bin", &all, false),
        header(&[0, 0, 0], &[0xff; 300], false),
        header(b"x-high", &[0x80, 0xfe, 0xff, 0x00, b'\r', b'\n'], true),
    ];
    round_trip(&mut encoder, &mut decoder, &list);
    round_trip(&mut encoder, &mut decoder, &list);
}

/// Every byte value, alone and in runs, through the Huffman coder (values of mostly short
/// codes are Huffman-coded; the encoder picks whichever is shorter, so force both by
/// prefixing runs of 'a').
#[test]
fn every_byte_through_huffman() {
    let mut encoder = Encoder::with_table_bytes_max(0);
    let mut decoder = Decoder::new(4096);
    for byte in 0..=255u8 {
        let mut value = vec![b'a'; 16];
        value.push(byte);
        value.extend([b'e'; 8]);
        value.push(byte);
        let list = [header(b"x", &value, false), header(&[byte], &[byte], false)];
        let block = round_trip(&mut encoder, &mut decoder, &list);
        // After the literal name "x" (without indexing), the value's H bit is set.
        let at = block
            .windows(3)
            .position(|w| w == [0x00, 0x01, b'x'])
            .unwrap();
        assert!(
            block[at + 3] & 0x80 != 0,
            "byte {byte}: value not Huffman-coded"
        );
    }
}

#[test]
fn sensitive_fields_stay_sensitive_and_unindexed() {
    let mut encoder = Encoder::new();
    let mut decoder = Decoder::new(4096);
    let list = [
        header(b"authorization", b"Bearer abc", true),
        header(b"x-secret", b"hunter2", true),
        header(b":status", b"200", true), // even a static match is sent as a literal
    ];
    round_trip(&mut encoder, &mut decoder, &list);
    assert_eq!(decoder.dynamic_table().len(), 0);
    // The default policy never indexes credentials.
    let mut block = Vec::new();
    encoder.encode(&[(b"authorization", b"Basic xyz")], &mut block);
    let mut out = Vec::new();
    decoder.decode(&block, usize::MAX, &mut out).unwrap();
    assert_eq!(out, [header(b"authorization", b"Basic xyz", true)]);
    assert_eq!(decoder.dynamic_table().len(), 0);
}

#[test]
fn block_api_grpc_response() {
    let mut encoder = Encoder::new();
    let mut decoder = Decoder::new(4096);
    for round in 0..3 {
        let mut dst = Vec::new();
        let mut block = encoder.block(&mut dst);
        block.status(200);
        block.field(b"content-type", b"application/grpc");
        block.field_without_indexing(b"grpc-accept-encoding", b"identity");
        block.field_never_indexed(b"x-token", b"t");
        let mut out = Vec::new();
        decoder.decode(&dst, usize::MAX, &mut out).unwrap();
        assert_eq!(
            out,
            [
                header(b":status", b"200", false),
                header(b"content-type", b"application/grpc", false),
                header(b"grpc-accept-encoding", b"identity", false),
                header(b"x-token", b"t", true),
            ]
        );
        assert_in_sync(&encoder, &decoder);
        if round > 0 {
            assert_eq!(&dst[..2], [0x88, 0x80 | 62]);
        }
    }
    let mut dst = Vec::new();
    encoder.block(&mut dst).status(503);
    let mut out = Vec::new();
    decoder.decode(&dst, usize::MAX, &mut out).unwrap();
    assert_eq!(out, [header(b":status", b"503", false)]);
}

/// SETTINGS_HEADER_TABLE_SIZE changes: the encoder signals them, the decoder enforces them.
#[test]
fn table_size_changes_stay_in_sync() {
    let mut encoder = Encoder::new();
    let mut decoder = Decoder::new(4096);
    let list = [
        header(b"x-one", b"1", false),
        header(b"x-two", b"2", false),
        header(b"x-three", b"3", false),
    ];
    round_trip(&mut encoder, &mut decoder, &list);
    for size in [80, 0, 4096, 40, 10_000, 100] {
        encoder.set_max_table_size(size);
        decoder.set_max_table_size(size);
        round_trip(&mut encoder, &mut decoder, &list);
        assert_eq!(decoder.dynamic_table_size_max(), size.min(4096));
    }
    // Down and back up between two blocks: the smallest size is signalled first.
    encoder.set_max_table_size(40);
    decoder.set_max_table_size(40);
    encoder.set_max_table_size(4096);
    decoder.set_max_table_size(4096);
    round_trip(&mut encoder, &mut decoder, &list);
    assert_eq!(decoder.dynamic_table_size_max(), 4096);
}

/// An encoder capped below the protocol default tells the decoder in its first block.
#[test]
fn small_encoder_table() {
    let mut encoder = Encoder::with_table_bytes_max(100);
    let mut decoder = Decoder::new(4096);
    let list = [header(b"x-a", b"1", false)];
    let block = round_trip(&mut encoder, &mut decoder, &list);
    assert_eq!(block[..2], [0x3f, 100 - 31]);
    assert_eq!(decoder.dynamic_table_size_max(), 100);
}

/// splitmix64: a small deterministic PRNG, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn bytes(&mut self, len: usize, alphabet: Option<&[u8]>) -> Vec<u8> {
        (0..len)
            .map(|_| match alphabet {
                Some(alphabet) => alphabet[self.below(alphabet.len())],
                None => self.next() as u8,
            })
            .collect()
    }
}

const NAMES: &[&[u8]] = &[
    b":status",
    b":method",
    b":path",
    b":authority",
    b"content-type",
    b"content-length",
    b"date",
    b"grpc-status",
    b"grpc-message",
    b"grpc-encoding",
    b"te",
    b"user-agent",
    b"accept-encoding",
    b"cache-control",
];
const VALUES: &[&[u8]] = &[
    b"200",
    b"GET",
    b"/",
    b"application/grpc",
    b"gzip, deflate",
    b"0",
    b"trailers",
    b"",
];

fn random_list(rng: &mut Rng, history: &mut Vec<Header>) -> Vec<Header> {
    let count = rng.below(20);
    let mut list = Vec::with_capacity(count);
    for _ in 0..count {
        if !history.is_empty() && rng.chance(3) {
            let old = history[rng.below(history.len())].clone();
            list.push(old);
            continue;
        }
        let name = match rng.below(4) {
            0 | 1 => NAMES[rng.below(NAMES.len())].to_vec(),
            2 => {
                let len = 1 + rng.below(20);
                rng.bytes(len, Some(b"abcdefghijklmnopqrstuvwxyz-0123456789"))
            }
            _ => {
                let len = rng.below(12);
                rng.bytes(len, None)
            }
        };
        if name == b"authorization" || name == b"proxy-authorization" {
            continue; // the policy would make them sensitive
        }
        let value = match rng.below(6) {
            0 => VALUES[rng.below(VALUES.len())].to_vec(),
            1 => {
                let len = rng.below(6);
                rng.bytes(len, Some(b"0123456789"))
            }
            2 => {
                let len = rng.below(80);
                rng.bytes(len, Some(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ/=;:. %-_"))
            }
            3 => {
                let len = rng.below(40);
                rng.bytes(len, None)
            }
            4 => {
                let len = rng.below(3000);
                rng.bytes(len, Some(b"xyz"))
            }
            _ => {
                let len = 4000 + rng.below(2000); // larger than a 4096-byte table
                rng.bytes(len, None)
            }
        };
        let h = Header {
            name,
            value,
            sensitive: rng.chance(8),
        };
        history.push(h.clone());
        list.push(h);
    }
    if history.len() > 64 {
        history.drain(..32);
    }
    list
}

fn list_bytes(list: &[Header]) -> usize {
    list.iter()
        .map(|h| h.name.len() + h.value.len() + ENTRY_OVERHEAD_BYTES)
        .sum()
}

#[test]
fn random_lists_round_trip() {
    let mut rng = Rng(0x5eed_0fa1_1e6d);
    let (mut blocks, mut too_large, mut fields) = (0, 0, 0);
    for connection in 0..24 {
        let cap = match connection % 4 {
            0 => 0,
            1 => 256,
            _ => 4096,
        };
        let mut encoder = Encoder::with_table_bytes_max(cap);
        let mut decoder = Decoder::new(4096);
        let mut history = Vec::new();
        for _ in 0..150 {
            if rng.chance(20) {
                let size = [0, 50, 256, 1000, 4096, 8192][rng.below(6)];
                encoder.set_max_table_size(size);
                decoder.set_max_table_size(size);
            }
            let list = random_list(&mut rng, &mut history);
            let mut block = Vec::new();
            if rng.chance(2) {
                encoder.encode_headers(&list, &mut block);
            } else {
                let mut b = encoder.block(&mut block);
                for h in &list {
                    if h.sensitive {
                        b.field_never_indexed(&h.name, &h.value);
                    } else if rng.chance(4) {
                        b.field_without_indexing(&h.name, &h.value);
                    } else {
                        b.field(&h.name, &h.value);
                    }
                }
            }
            // Sometimes a list limit just below or at the list's size.
            let size = list_bytes(&list);
            let limit = match rng.below(4) {
                0 if size > 0 => size - 1 - rng.below(size.min(100)),
                1 => size,
                _ => usize::MAX,
            };
            let mut out = vec![header(b"sentinel", b"", false)];
            match decoder.decode(&block, limit, &mut out) {
                Ok(()) => {
                    assert!(size <= limit);
                    assert_eq!(out[0].name, b"sentinel");
                    assert_eq!(out[1..], list[..]);
                    fields += list.len();
                }
                Err(HpackError::HeaderListTooLarge { bytes_max }) => {
                    assert_eq!(bytes_max, limit);
                    assert!(size > limit);
                    assert_eq!(out, [header(b"sentinel", b"", false)]);
                    too_large += 1;
                }
                Err(e) => panic!("connection {connection}: {e}"),
            }
            assert_in_sync(&encoder, &decoder);
            blocks += 1;
        }
    }
    assert_eq!(blocks, 24 * 150);
    assert!(too_large > 500, "{too_large} blocks over the list limit");
    assert!(fields > 10_000, "{fields} fields decoded");
}

//! Header block encoding.
//!
//! Per field, the encoder picks the shortest representation it knows without search:
//! 1. an exact match in the static table, then in the dynamic table: one indexed field
//!    (a single byte for the first 127 indices);
//! 2. otherwise a literal whose name is indexed when the static or dynamic table has it, with
//!    incremental indexing when the field is likely to repeat, and each string Huffman-coded
//!    when that is shorter.
//!
//! Indexing policy ([`BlockEncoder::field`]): credentials (`authorization`,
//! `proxy-authorization`) are sent never-indexed; fields whose values rarely repeat
//! (`content-length`, `date`, `grpc-message`, ...) are sent without indexing; everything else
//! is indexed when it takes at most half the table, so a connection's repeated response
//! fields (`content-type: application/grpc`, `grpc-status: 0`) cost one byte each after
//! their first use.

use crate::table::{entry_size, static_find, DynamicTable, STATIC_LEN};
use crate::{huffman, integer, Header, TABLE_BYTES_DEFAULT};

/// The largest dynamic table [`Encoder::new`] keeps, whatever the peer allows: bounds the
/// memory per connection.
pub const ENCODER_TABLE_BYTES_MAX: usize = TABLE_BYTES_DEFAULT;

// Size updates we emit must be integers every decoder accepts (ours: up to u32::MAX).
const _: () = assert!(ENCODER_TABLE_BYTES_MAX <= u32::MAX as usize);

/// Encodes header blocks for one peer, keeping the dynamic table the peer's decoder mirrors.
///
/// One `Encoder` per HTTP/2 connection direction; the blocks it produces must reach the
/// peer in the order they were encoded.
#[derive(Debug)]
pub struct Encoder {
    /// Mirrors the peer decoder's table; its maximum size is the last one we signalled.
    table: DynamicTable,
    /// Our own cap on the table size, below whatever the peer allows.
    table_bytes_max: usize,
    /// Size updates to emit at the start of the next block.
    pending_update: Option<PendingUpdate>,
}

/// Table size changes since the last block: RFC 7541 4.2 requires signalling the smallest
/// maximum size reached in between, then the final one.
#[derive(Debug, Clone, Copy)]
struct PendingUpdate {
    smallest: usize,
    last: usize,
}

/// How a field may use the dynamic table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Literal with incremental indexing when the field fits the policy.
    Index,
    WithoutIndexing,
    NeverIndexed,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// An encoder using a dynamic table of up to [`ENCODER_TABLE_BYTES_MAX`] bytes (less if
    /// the peer's SETTINGS_HEADER_TABLE_SIZE says so, see [`Encoder::set_max_table_size`]).
    pub fn new() -> Self {
        Self::with_table_bytes_max(ENCODER_TABLE_BYTES_MAX)
    }

    /// An encoder whose dynamic table never exceeds `table_bytes_max` bytes; 0 disables the
    /// dynamic table (every field is then static-indexed or literal). A value below the
    /// protocol default of 4096 is signalled by a size update at the start of the first
    /// block.
    pub fn with_table_bytes_max(table_bytes_max: usize) -> Self {
        let mut encoder = Encoder {
            // The peer's decoder starts at the protocol default until told otherwise.
            table: DynamicTable::new(TABLE_BYTES_DEFAULT),
            table_bytes_max,
            pending_update: None,
        };
        encoder.set_max_table_size(TABLE_BYTES_DEFAULT);
        encoder
    }

    /// Applies the peer's SETTINGS_HEADER_TABLE_SIZE. The table size we use becomes the
    /// smaller of that and our own cap; a change is signalled by a dynamic table size update
    /// at the start of the next block (two updates if the size went down and back up).
    pub fn set_max_table_size(&mut self, peer_max_table_size: usize) {
        let target = peer_max_table_size.min(self.table_bytes_max);
        match &mut self.pending_update {
            Some(pending) => {
                pending.smallest = pending.smallest.min(target);
                pending.last = target;
            }
            None if target != self.table.size_max() => {
                self.pending_update = Some(PendingUpdate {
                    smallest: target,
                    last: target,
                });
            }
            None => {}
        }
    }

    /// Sum of name + value + 32 over the dynamic table's entries.
    pub fn dynamic_table_size(&self) -> usize {
        self.table.size()
    }

    /// The dynamic table's maximum size as signalled to the peer so far (a pending size
    /// update applies at the start of the next block).
    pub fn dynamic_table_size_max(&self) -> usize {
        self.table.size_max()
    }

    /// The dynamic table's entries, newest (index 62) first.
    pub fn dynamic_table(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        self.table.iter()
    }

    /// Starts a header block appended to `dst`, emitting any pending size update first. Add
    /// fields with the [`BlockEncoder`] methods; the block is complete when it is dropped.
    pub fn block<'a>(&'a mut self, dst: &'a mut Vec<u8>) -> BlockEncoder<'a> {
        if let Some(pending) = self.pending_update.take() {
            if pending.smallest < pending.last {
                integer::encode(dst, 0x20, 5, pending.smallest);
                self.table.set_size_max(pending.smallest);
            }
            integer::encode(dst, 0x20, 5, pending.last);
            self.table.set_size_max(pending.last);
        }
        BlockEncoder {
            table: &mut self.table,
            dst,
        }
    }

    /// Encodes `headers` (name, value) as one header block appended to `dst`, with the
    /// indexing policy of [`BlockEncoder::field`].
    pub fn encode(&mut self, headers: &[(&[u8], &[u8])], dst: &mut Vec<u8>) {
        let mut block = self.block(dst);
        for &(name, value) in headers {
            block.field(name, value);
        }
    }

    /// Encodes `headers` as one header block appended to `dst`; fields marked `sensitive`
    /// are sent never-indexed (RFC 7541 6.2.3), the others as [`BlockEncoder::field`] does.
    pub fn encode_headers(&mut self, headers: &[Header], dst: &mut Vec<u8>) {
        let mut block = self.block(dst);
        for header in headers {
            if header.sensitive {
                block.field_never_indexed(&header.name, &header.value);
            } else {
                block.field(&header.name, &header.value);
            }
        }
    }
}

/// A header block being encoded; see [`Encoder::block`].
#[derive(Debug)]
pub struct BlockEncoder<'a> {
    table: &'a mut DynamicTable,
    dst: &'a mut Vec<u8>,
}

impl BlockEncoder<'_> {
    /// Fast path for `:status`: one byte for the codes in the static table (200, 204, 206,
    /// 304, 400, 404, 500), a short literal without indexing for the others.
    pub fn status(&mut self, status: u16) {
        let index = match status {
            200 => 8,
            204 => 9,
            206 => 10,
            304 => 11,
            400 => 12,
            404 => 13,
            500 => 14,
            _ => {
                let mut digits = [0u8; 5];
                let mut start = digits.len();
                let mut rest = status;
                loop {
                    start -= 1;
                    digits[start] = b'0' + (rest % 10) as u8;
                    rest /= 10;
                    if rest == 0 {
                        break;
                    }
                }
                self.literal(Mode::WithoutIndexing, 8, b":status", &digits[start..]);
                return;
            }
        };
        self.dst.push(0x80 | index);
    }

    /// Adds a field with the default indexing policy (see the module docs): credentials
    /// never-indexed, volatile fields without indexing, the rest indexed.
    pub fn field(&mut self, name: &[u8], value: &[u8]) {
        self.field_with(policy(name), name, value);
    }

    /// Adds a field that does not enter the dynamic table (it may still refer to it).
    pub fn field_without_indexing(&mut self, name: &[u8], value: &[u8]) {
        self.field_with(Mode::WithoutIndexing, name, value);
    }

    /// Adds a field as never-indexed (RFC 7541 6.2.3): its value is always sent as a literal
    /// and no intermediary may index it. For credentials and other secrets.
    pub fn field_never_indexed(&mut self, name: &[u8], value: &[u8]) {
        self.field_with(Mode::NeverIndexed, name, value);
    }

    fn field_with(&mut self, mode: Mode, name: &[u8], value: &[u8]) {
        let (static_full, static_name) = static_find(name, value);
        let (dynamic_full, dynamic_name) = self.table.find(name, value);
        if mode != Mode::NeverIndexed {
            let full = static_full.or(dynamic_full.map(|i| STATIC_LEN + 1 + i));
            if let Some(index) = full {
                integer::encode(self.dst, 0x80, 7, index);
                return;
            }
        }
        let name_index = static_name
            .or(dynamic_name.map(|i| STATIC_LEN + 1 + i))
            .unwrap_or(0);
        self.literal(mode, name_index, name, value);
    }

    fn literal(&mut self, mode: Mode, name_index: usize, name: &[u8], value: &[u8]) {
        let index = mode == Mode::Index && entry_size(name, value) <= self.table.size_max() / 2;
        let (flags, prefix_bits) = match mode {
            Mode::Index if index => (0x40, 6),
            Mode::Index | Mode::WithoutIndexing => (0x00, 4),
            Mode::NeverIndexed => (0x10, 4),
        };
        integer::encode(self.dst, flags, prefix_bits, name_index);
        if name_index == 0 {
            encode_string(self.dst, name);
        }
        encode_string(self.dst, value);
        if index {
            self.table.insert(name.to_vec(), value.to_vec());
        }
    }
}

/// The default indexing policy for a field name.
fn policy(name: &[u8]) -> Mode {
    match name {
        b"authorization" | b"proxy-authorization" => Mode::NeverIndexed,
        b"age" | b"content-length" | b"content-range" | b"date" | b"etag" | b"expires"
        | b"if-modified-since" | b"if-none-match" | b"last-modified" | b"location" | b"cookie"
        | b"set-cookie" | b"grpc-message" | b"grpc-timeout" => Mode::WithoutIndexing,
        _ => Mode::Index,
    }
}

/// Appends a string literal, Huffman-coded when that is shorter.
fn encode_string(dst: &mut Vec<u8>, s: &[u8]) {
    let huffman_len = huffman::encoded_len(s);
    if huffman_len < s.len() {
        integer::encode(dst, 0x80, 7, huffman_len);
        huffman::encode(s, dst);
    } else {
        integer::encode(dst, 0x00, 7, s.len());
        dst.extend_from_slice(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fast_path() {
        let mut encoder = Encoder::new();
        let mut dst = Vec::new();
        let mut block = encoder.block(&mut dst);
        block.status(200);
        block.status(404);
        block.status(302);
        block.status(7);
        assert_eq!(dst, [0x88, 0x8d, 0x08, 0x82, 0x64, 0x02, 0x08, 0x01, b'7']);
        assert_eq!(encoder.dynamic_table_size(), 0);
    }

    #[test]
    fn grpc_response_fields_become_one_byte() {
        let mut encoder = Encoder::new();
        let headers: &[(&[u8], &[u8])] =
            &[(b":status", b"200"), (b"content-type", b"application/grpc")];
        let trailers: &[(&[u8], &[u8])] = &[(b"grpc-status", b"0")];
        let mut first = Vec::new();
        encoder.encode(headers, &mut first);
        encoder.encode(trailers, &mut first);
        let mut second = Vec::new();
        encoder.encode(headers, &mut second);
        assert_eq!(second, [0x88, 0x80 | 63]); // content-type is now below grpc-status
        second.clear();
        encoder.encode(trailers, &mut second);
        assert_eq!(second, [0x80 | 62]);
    }

    #[test]
    fn policy_never_indexes_credentials() {
        let mut encoder = Encoder::new();
        let mut dst = Vec::new();
        encoder.encode(&[(b"authorization", b"secret")], &mut dst);
        assert_eq!(dst.first().map(|b| b & 0xf0), Some(0x10));
        assert_eq!(encoder.dynamic_table_size(), 0);
    }

    #[test]
    fn size_updates_smallest_then_last() {
        let mut encoder = Encoder::new();
        encoder.set_max_table_size(100);
        encoder.set_max_table_size(8192); // capped at 4096
        let mut dst = Vec::new();
        encoder.encode(&[], &mut dst);
        // 100 = 31 + 69; 4096 = 31 + 0x61 + (0x1f << 7)
        assert_eq!(dst, [0x3f, 69, 0x3f, 0xe1, 0x1f]);
        dst.clear();
        encoder.encode(&[], &mut dst);
        assert!(dst.is_empty(), "no update without a change");
        encoder.set_max_table_size(4096);
        encoder.encode(&[], &mut dst);
        assert!(dst.is_empty(), "no update when the size stays the same");
    }

    #[test]
    fn zero_table_never_indexes() {
        let mut encoder = Encoder::with_table_bytes_max(0);
        let mut dst = Vec::new();
        encoder.encode(&[(b"x-a", b"b")], &mut dst);
        assert_eq!(dst, [0x20, 0x00, 0x03, b'x', b'-', b'a', 0x01, b'b']);
        assert_eq!(encoder.dynamic_table_size_max(), 0);
    }
}

//! Header block decoding (RFC 7541 3, 6).
//!
//! Field representations, told apart by the high bits of their first octet:
//!
//! ```text
//! 1xxxxxxx  indexed field                      index: 7-bit prefix
//! 01xxxxxx  literal, incremental indexing       name index: 6-bit prefix (0: literal name)
//! 001xxxxx  dynamic table size update           new max size: 5-bit prefix
//! 0001xxxx  literal, never indexed              name index: 4-bit prefix (0: literal name)
//! 0000xxxx  literal, without indexing           name index: 4-bit prefix (0: literal name)
//!
//! string literal:  H|length (7-bit prefix) then `length` octets, Huffman-coded when H = 1
//! ```
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::table::{entry_size, static_entry, DynamicTable, ENTRY_OVERHEAD_BYTES, STATIC_LEN};
use crate::{huffman, integer, Header, HpackError};

/// Decodes header blocks from one peer, keeping its dynamic table between blocks.
///
/// One `Decoder` per HTTP/2 connection direction. After a [`HpackError`] other than
/// [`HpackError::HeaderListTooLarge`] the dynamic table may be out of sync with the peer's
/// encoder and the decoder must not be used again (the connection ends with
/// COMPRESSION_ERROR).
#[derive(Debug)]
pub struct Decoder {
    table: DynamicTable,
    /// The SETTINGS_HEADER_TABLE_SIZE we advertise: the largest size update we accept.
    table_size_limit: usize,
    /// Set when the limit was lowered below the table's maximum size: the next block must
    /// start with a size update (RFC 7541 4.2).
    size_update_required: bool,
}

/// How a literal field treats the dynamic table.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LiteralKind {
    IncrementalIndexing,
    WithoutIndexing,
    NeverIndexed,
}

/// The header-list budget of one block (RFC 9113 6.5.2 SETTINGS_MAX_HEADER_LIST_SIZE).
struct ListBudget {
    used: usize,
    bytes_max: usize,
    /// The list went over `bytes_max`: fields are no longer kept, only checked and indexed.
    over: bool,
    /// `out.len()` when the block started.
    out_start: usize,
}

impl ListBudget {
    /// Counts a field of `size` bytes against the budget; true when it may be appended to
    /// `out`. The first field over the limit drops what this block already appended.
    fn admit(&mut self, size: usize, out: &mut Vec<Header>) -> bool {
        if self.over {
            return false;
        }
        if size > self.bytes_max - self.used {
            self.over = true;
            out.truncate(self.out_start);
            return false;
        }
        self.used += size;
        assert!(self.used <= self.bytes_max);
        true
    }

    /// Longest string worth keeping for the list: name + value + 32 must fit what is left.
    fn string_cap(&self) -> usize {
        if self.over {
            0
        } else {
            (self.bytes_max - self.used).saturating_sub(ENTRY_OVERHEAD_BYTES)
        }
    }
}

/// A decoded string literal. `bytes` holds the whole string when `len` is at most the cap it
/// was decoded with; otherwise only a prefix (or nothing) was kept.
struct Literal {
    bytes: Vec<u8>,
    len: usize,
}

/// Where a literal field's name comes from.
enum Name {
    Indexed { index: usize, len: usize },
    Literal(Literal),
}

impl Decoder {
    /// A decoder whose peer may use a dynamic table of up to `max_table_size` bytes: the
    /// SETTINGS_HEADER_TABLE_SIZE we advertise (4096 unless our SETTINGS say otherwise).
    pub fn new(max_table_size: usize) -> Self {
        Decoder {
            table: DynamicTable::new(max_table_size),
            table_size_limit: max_table_size,
            size_update_required: false,
        }
    }

    /// Applies a new SETTINGS_HEADER_TABLE_SIZE of ours, once the peer has acknowledged it.
    ///
    /// Raising the limit lets the peer grow its table with a size update. Lowering it below
    /// the table's current maximum shrinks the table at once and obliges the peer to start
    /// its next header block with a size update no larger than the new limit; a block that
    /// does not is rejected with [`HpackError::SizeUpdateMissing`].
    pub fn set_max_table_size(&mut self, max_table_size: usize) {
        self.table_size_limit = max_table_size;
        if max_table_size < self.table.size_max() {
            self.table.set_size_max(max_table_size);
            self.size_update_required = true;
        }
    }

    /// The limit we advertise (the argument of `new` or the last `set_max_table_size`).
    pub fn max_table_size(&self) -> usize {
        self.table_size_limit
    }

    /// The dynamic table's current maximum size, as last set by the peer (at most
    /// [`Decoder::max_table_size`]).
    pub fn dynamic_table_size_max(&self) -> usize {
        self.table.size_max()
    }

    /// Sum of name + value + 32 over the dynamic table's entries.
    pub fn dynamic_table_size(&self) -> usize {
        self.table.size()
    }

    /// The dynamic table's entries, newest (index 62) first.
    pub fn dynamic_table(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        self.table.iter()
    }

    /// Decodes one complete header block (HEADERS + CONTINUATION fragments joined).
    ///
    /// Appends the fields to `out` in order. The decoded list may total at most
    /// `max_header_list_bytes`, counting name + value + 32 per field (RFC 9113 6.5.2).
    ///
    /// On error, `out` is left as it was. When the list goes over the limit, decoding stops
    /// keeping fields (the oversize list is never allocated) but still reads the block to
    /// its end so that the dynamic table stays in sync with the peer, then returns
    /// [`HpackError::HeaderListTooLarge`]: the stream fails, the connection can go on
    /// (RFC 9113 10.5.1). Any other error is a COMPRESSION_ERROR for the connection.
    pub fn decode(
        &mut self,
        block: &[u8],
        max_header_list_bytes: usize,
        out: &mut Vec<Header>,
    ) -> Result<(), HpackError> {
        let mut list = ListBudget {
            used: 0,
            bytes_max: max_header_list_bytes,
            over: false,
            out_start: out.len(),
        };
        let result = self.decode_block(block, &mut list, out);
        if result.is_err() {
            out.truncate(list.out_start);
        }
        result
    }

    fn decode_block(
        &mut self,
        mut input: &[u8],
        list: &mut ListBudget,
        out: &mut Vec<Header>,
    ) -> Result<(), HpackError> {
        let mut field_seen = false;
        while let Some(&first) = input.first() {
            if first & 0x80 != 0 {
                self.field_start(&mut field_seen)?;
                let index = integer::decode(&mut input, 7)?;
                let (name, value) = self.lookup(index)?;
                if list.admit(entry_size(name, value), out) {
                    out.push(Header {
                        name: name.to_vec(),
                        value: value.to_vec(),
                        sensitive: false,
                    });
                }
            } else if first & 0xe0 == 0x20 {
                if field_seen {
                    return Err(HpackError::SizeUpdateAfterField);
                }
                let size_max = integer::decode(&mut input, 5)?;
                if size_max > self.table_size_limit {
                    return Err(HpackError::SizeUpdateTooLarge {
                        size: size_max,
                        limit: self.table_size_limit,
                    });
                }
                self.table.set_size_max(size_max);
                self.size_update_required = false;
            } else {
                let (prefix_bits, kind) = if first & 0xc0 == 0x40 {
                    (6, LiteralKind::IncrementalIndexing)
                } else if first & 0xf0 == 0x10 {
                    (4, LiteralKind::NeverIndexed)
                } else {
                    (4, LiteralKind::WithoutIndexing)
                };
                self.field_start(&mut field_seen)?;
                self.decode_literal(&mut input, prefix_bits, kind, list, out)?;
            }
        }
        if list.over {
            return Err(HpackError::HeaderListTooLarge {
                bytes_max: list.bytes_max,
            });
        }
        Ok(())
    }

    /// Checks what must hold before the first field of a block.
    fn field_start(&self, field_seen: &mut bool) -> Result<(), HpackError> {
        if !*field_seen {
            if self.size_update_required {
                return Err(HpackError::SizeUpdateMissing {
                    limit: self.table_size_limit,
                });
            }
            *field_seen = true;
        }
        Ok(())
    }

    fn lookup(&self, index: usize) -> Result<(&[u8], &[u8]), HpackError> {
        let out_of_range = HpackError::IndexOutOfRange {
            index,
            dynamic_len: self.table.len(),
        };
        match index {
            0 => Err(HpackError::ZeroIndex),
            1..=STATIC_LEN => static_entry(index).ok_or(out_of_range),
            _ => self.table.get(index - STATIC_LEN - 1).ok_or(out_of_range),
        }
    }

    fn decode_literal(
        &mut self,
        input: &mut &[u8],
        prefix_bits: u32,
        kind: LiteralKind,
        list: &mut ListBudget,
        out: &mut Vec<Header>,
    ) -> Result<(), HpackError> {
        let indexing = kind == LiteralKind::IncrementalIndexing;
        // Keep a string only if the field could still join the list or the table; longer
        // strings are validated without being stored.
        let table_cap = if indexing {
            self.table.size_max().saturating_sub(ENTRY_OVERHEAD_BYTES)
        } else {
            0
        };
        let cap = list.string_cap().max(table_cap);

        let name_index = integer::decode(input, prefix_bits)?;
        let name = if name_index == 0 {
            Name::Literal(decode_string(input, cap)?)
        } else {
            let (name, _) = self.lookup(name_index)?;
            Name::Indexed {
                index: name_index,
                len: name.len(),
            }
        };
        let name_len = match &name {
            Name::Indexed { len, .. } => *len,
            Name::Literal(literal) => literal.len,
        };
        let value = decode_string(input, cap.saturating_sub(name_len))?;

        let size = name_len
            .saturating_add(value.len)
            .saturating_add(ENTRY_OVERHEAD_BYTES);
        let keep = list.admit(size, out);
        let index = indexing && size <= self.table.size_max();
        if !keep && !index {
            if indexing {
                // Too large for the table: inserting it empties the table (RFC 7541 4.4).
                self.table.clear();
            }
            return Ok(());
        }

        // Kept or indexed: name_len + value.len <= cap, so both strings were stored whole.
        let name = match name {
            Name::Literal(literal) => literal.bytes,
            Name::Indexed { index, .. } => self.lookup(index)?.0.to_vec(),
        };
        let value = value.bytes;
        assert_eq!(name.len(), name_len);
        assert_eq!(name.len() + value.len() + ENTRY_OVERHEAD_BYTES, size);

        let sensitive = kind == LiteralKind::NeverIndexed;
        if index {
            if keep {
                out.push(Header {
                    name: name.clone(),
                    value: value.clone(),
                    sensitive,
                });
            }
            self.table.insert(name, value);
        } else {
            if indexing {
                // Too large for the table: inserting it empties the table (RFC 7541 4.4).
                self.table.clear();
            }
            out.push(Header {
                name,
                value,
                sensitive,
            });
        }
        Ok(())
    }
}

/// Reads one string literal; keeps its bytes only if it is at most `cap` bytes long.
fn decode_string(input: &mut &[u8], cap: usize) -> Result<Literal, HpackError> {
    let huffman = input.first().is_some_and(|&b| b & 0x80 != 0);
    let len = integer::decode(input, 7)?;
    // Check the length against the input before allocating anything for it.
    let Some((raw, rest)) = input.split_at_checked(len) else {
        return Err(HpackError::TruncatedString {
            len,
            available: input.len(),
        });
    };
    *input = rest;
    if !huffman {
        let bytes = if len <= cap { raw.to_vec() } else { Vec::new() };
        return Ok(Literal { bytes, len });
    }
    let mut bytes = Vec::with_capacity(huffman::decoded_len_max(raw.len()).min(cap));
    let len = huffman::decode(raw, &mut bytes, cap)?;
    Ok(Literal { bytes, len })
}

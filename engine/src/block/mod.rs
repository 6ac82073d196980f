//! The block format: completed traces cut from the WAL into an immutable file, indexed by
//! trace ID only. The codec (`page`, `bloom`, `meta` and this module) is sans-IO: it turns
//! traces into bytes and bytes back into traces, and says what a damaged file means;
//! `store` is the thin IO edge (monoio files) that the shard calls.
//!
//! A block is a directory `<storage.trace.local.path>/<tenant>/<block-id>/` holding `data`
//! (below) and `meta.json` ([`BlockMeta`]). It is written under a temporary name, fsynced,
//! renamed and its parent directory fsynced, so a block directory with a `meta.json` is
//! always whole.
//!
//! ```text
//! data file:
//! offset  size  field
//!   0       6   magic              b"ALGBLK"
//!   6       1   version            BLOCK_FORMAT_VERSION = 2 (v2: columnar pages, no
//!                                  payload copy; v1 blocks are refused)
//!   7       1   reserved           0
//!   8       ..  pages              page_count pages (layout on `page`), traces sorted by
//!                                  trace ID across pages; a page holds whole traces
//!   ..   56*n   index              per page (IndexEntry): first_trace_id 16B, offset u64,
//!                                  length u32, trace_count u32, span_count u32,
//!                                  filter_words u32, min_start_unix_nanos u64,
//!                                  max_end_unix_nanos u64
//!   ..      ..  bloom              bloom_bytes bytes of little-endian u64 words
//!   ..      ..  page filters       per page, filter_words little-endian u64 words
//!                                  (`filter`: facts of its spans, for search)
//!   end-64  64  footer             (Footer) index_offset u64, page_count u32,
//!                                  bloom_bytes u32, bloom_hashes u32,
//!                                  filter_words u32 (all pages together),
//!                                  trace_count u64, span_count u64,
//!                                  index_crc32 u32 (crc32fast of index and bloom bytes),
//!                                  version u8, reserved 7B, footer_crc32 u32 (of the 52
//!                                  bytes before it), magic b"ALGBLKFT"
//! ```
//!
//! A lookup: bloom filter, binary search of the index for the last page whose first trace
//! ID is <= the ID, one positioned read of that page only, CRC check, binary search of its
//! `TRACE_IDS` column, then the other columns are decompressed and only that trace is
//! rebuilt. The index, the bloom filter (about 1.25 bytes per trace plus 56 per page) and
//! the page filters (64 B to 8 KiB per page) stay in memory.
//!
//! A search skips every page whose filter rules out what its query needs (see
//! `crate::scan`), then decodes only the columns its conditions read.
//!
//! Compatibility: blocks written before page filters had 0 in both `filter_words` fields
//! (they were reserved); their pages have no filter and are always read.
//!
//! Recovery policy: the footer, index and bloom filter are checked when a block is opened;
//! any damage there (or a `meta.json` that does not match the footer) makes the whole block
//! unreadable: it is reported and skipped. A page is checked when it is read; a damaged page
//! fails the lookups of the traces it holds, with an error naming the block and page, and
//! nothing else.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod bloom;
pub mod filter;
pub mod meta;
pub mod page;
pub mod store;

#[cfg(test)]
mod tests;

use std::fmt;

pub use bloom::Bloom;
pub use meta::BlockMeta;
pub use page::{PageBuilder, PageCursor, PageSummary, PageView};

use crate::ids::TraceId;

pub const BLOCK_MAGIC: [u8; 6] = *b"ALGBLK";
pub const FOOTER_MAGIC: [u8; 8] = *b"ALGBLKFT";
pub const BLOCK_FORMAT_VERSION: u8 = 2;
pub const BLOCK_HEADER_BYTES: usize = 8;
pub const FOOTER_BYTES: usize = 64;
/// first_trace_id, offset, length, trace_count, span_count, reserved, min_start, max_end.
pub const INDEX_ENTRY_BYTES: usize = 16 + 8 + 4 + 4 + 4 + 4 + 8 + 8;
/// A page is closed once its buffered columns (before compression) reach this many bytes (a
/// single larger trace makes a page of its own). Larger pages share their dictionary among
/// more spans (smaller blocks); smaller pages make a lookup decode less. A page of this size
/// holds one to two thousand of the loadgen's spans (~60 KiB after lz4) and a lookup in it
/// takes ~50 us (`cargo bench -p allegro-bench --bench blocks`); 256 KiB pages were ~8%
/// smaller on disk and twice as slow to look up in.
pub const PAGE_TARGET_BYTES: usize = 128 << 10;
/// Pages per block at most (bounds the index a reader allocates).
pub const PAGES_PER_BLOCK_MAX: u64 = 1 << 24;

const _: () = assert!(INDEX_ENTRY_BYTES == 56);
const _: () = assert!(FOOTER_BYTES == 8 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 1 + 7 + 4 + 8);
const _: () = assert!(PAGE_TARGET_BYTES <= page::PAGE_COLUMN_BYTES_MAX / 16);

/// Why block bytes did not decode. The message names the part that is damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockError {
    /// Fewer bytes than the structure needs.
    Truncated {
        what: &'static str,
        needed: u64,
        available: u64,
    },
    BadMagic {
        what: &'static str,
    },
    UnsupportedVersion {
        what: &'static str,
        version: u8,
    },
    Checksum {
        what: &'static str,
        stored: u32,
        computed: u32,
    },
    /// Checksummed bytes that do not make sense (a bug in a writer, or a format change).
    Malformed(String),
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::Truncated {
                what,
                needed,
                available,
            } => write!(
                f,
                "{what} truncated: needs {needed} bytes, {available} there"
            ),
            BlockError::BadMagic { what } => write!(f, "{what}: bad magic"),
            BlockError::UnsupportedVersion { what, version } => {
                write!(f, "{what}: unsupported format version {version}")
            }
            BlockError::Checksum {
                what,
                stored,
                computed,
            } => write!(
                f,
                "{what} checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            BlockError::Malformed(detail) => write!(f, "malformed: {detail}"),
        }
    }
}

impl std::error::Error for BlockError {}

/// A bounds-checked reader of little-endian fields.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Cursor<'a> {
        Cursor { bytes, at: 0, what }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], BlockError> {
        let end = self.at.checked_add(n);
        match end.and_then(|end| self.bytes.get(self.at..end)) {
            Some(slice) => {
                self.at += n;
                Ok(slice)
            }
            None => Err(BlockError::Truncated {
                what: self.what,
                needed: (self.at as u64).saturating_add(n as u64),
                available: self.bytes.len() as u64,
            }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BlockError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, BlockError> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, BlockError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, BlockError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.at)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
}

/// One page in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub first_trace_id: TraceId,
    pub offset: u64,
    pub length: u32,
    pub trace_count: u32,
    pub span_count: u32,
    /// Words of the page's filter (0: none).
    pub filter_words: u32,
    pub min_start_unix_nanos: u64,
    pub max_end_unix_nanos: u64,
}

/// The fixed-size end of a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    pub index_offset: u64,
    pub page_count: u32,
    pub bloom_bytes: u32,
    pub bloom_hashes: u32,
    /// Words of all page filters together.
    pub filter_words: u32,
    pub trace_count: u64,
    pub span_count: u64,
    pub index_crc32: u32,
    pub footer_crc32: u32,
}

impl Footer {
    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.index_offset.to_le_bytes());
        out.extend_from_slice(&self.page_count.to_le_bytes());
        out.extend_from_slice(&self.bloom_bytes.to_le_bytes());
        out.extend_from_slice(&self.bloom_hashes.to_le_bytes());
        out.extend_from_slice(&self.filter_words.to_le_bytes());
        out.extend_from_slice(&self.trace_count.to_le_bytes());
        out.extend_from_slice(&self.span_count.to_le_bytes());
        out.extend_from_slice(&self.index_crc32.to_le_bytes());
        out.push(BLOCK_FORMAT_VERSION);
        out.extend_from_slice(&[0; 7]);
        let crc = crc32fast::hash(out.get(start..).unwrap_or_default());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&FOOTER_MAGIC);
    }

    /// Decodes the last [`FOOTER_BYTES`] of a data file of `file_bytes` bytes, and checks
    /// that the index and bloom filter it describes fit before it.
    pub fn decode(bytes: &[u8], file_bytes: u64) -> Result<Footer, BlockError> {
        if bytes.len() != FOOTER_BYTES {
            return Err(BlockError::Truncated {
                what: "footer",
                needed: FOOTER_BYTES as u64,
                available: bytes.len() as u64,
            });
        }
        let mut cursor = Cursor::new(bytes, "footer");
        let covered = cursor.take(FOOTER_BYTES - 12)?;
        let stored = cursor.u32()?;
        if cursor.take(8)? != FOOTER_MAGIC {
            return Err(BlockError::BadMagic { what: "footer" });
        }
        let computed = crc32fast::hash(covered);
        if stored != computed {
            return Err(BlockError::Checksum {
                what: "footer",
                stored,
                computed,
            });
        }
        let mut cursor = Cursor::new(covered, "footer");
        let index_offset = cursor.u64()?;
        let page_count = cursor.u32()?;
        let bloom_bytes = cursor.u32()?;
        let bloom_hashes = cursor.u32()?;
        let filter_words = cursor.u32()?;
        let trace_count = cursor.u64()?;
        let span_count = cursor.u64()?;
        let index_crc32 = cursor.u32()?;
        let version = cursor.u8()?;
        if version != BLOCK_FORMAT_VERSION {
            return Err(BlockError::UnsupportedVersion {
                what: "block footer",
                version,
            });
        }
        let footer = Footer {
            index_offset,
            page_count,
            bloom_bytes,
            bloom_hashes,
            filter_words,
            trace_count,
            span_count,
            index_crc32,
            footer_crc32: stored,
        };
        let tail = footer.tail_bytes();
        if u64::from(page_count) > PAGES_PER_BLOCK_MAX
            || index_offset < BLOCK_HEADER_BYTES as u64
            || index_offset.checked_add(tail) != Some(file_bytes)
        {
            return Err(BlockError::Malformed(format!(
                "footer: index at {index_offset} with {page_count} pages and {bloom_bytes} bloom bytes does not fit a file of {file_bytes} bytes"
            )));
        }
        Ok(footer)
    }

    /// Bytes from `index_offset` to the end of the file.
    pub fn tail_bytes(&self) -> u64 {
        u64::from(self.page_count) * INDEX_ENTRY_BYTES as u64
            + u64::from(self.bloom_bytes)
            + u64::from(self.filter_words) * 8
            + FOOTER_BYTES as u64
    }
}

/// What a reader keeps of an open block: the page index and the bloom filter.
#[derive(Debug, Clone)]
pub struct BlockIndex {
    pub footer: Footer,
    pub pages: Vec<IndexEntry>,
    pub bloom: Bloom,
    /// Every page filter, in page order.
    filters: Vec<u64>,
    /// Where each page's filter starts in `filters`.
    filter_starts: Vec<usize>,
}

impl BlockIndex {
    /// Decodes the bytes from `footer.index_offset` to the end of the file (index, bloom
    /// filter, footer), checking the CRC and that pages lie between header and index in
    /// order.
    pub fn decode(footer: Footer, tail: &[u8]) -> Result<BlockIndex, BlockError> {
        if tail.len() as u64 != footer.tail_bytes() {
            return Err(BlockError::Truncated {
                what: "block index",
                needed: footer.tail_bytes(),
                available: tail.len() as u64,
            });
        }
        let covered_len = tail.len() - FOOTER_BYTES;
        let mut cursor = Cursor::new(tail, "block index");
        let covered = cursor.take(covered_len)?;
        let computed = crc32fast::hash(covered);
        if computed != footer.index_crc32 {
            return Err(BlockError::Checksum {
                what: "block index",
                stored: footer.index_crc32,
                computed,
            });
        }
        let mut cursor = Cursor::new(covered, "block index");
        let mut pages = Vec::with_capacity(footer.page_count as usize);
        let mut next_offset = BLOCK_HEADER_BYTES as u64;
        let mut traces = 0u64;
        for _ in 0..footer.page_count {
            let first_trace_id = TraceId(cursor.array()?);
            let entry = IndexEntry {
                first_trace_id,
                offset: cursor.u64()?,
                length: cursor.u32()?,
                trace_count: cursor.u32()?,
                span_count: cursor.u32()?,
                filter_words: cursor.u32()?,
                min_start_unix_nanos: cursor.u64()?,
                max_end_unix_nanos: cursor.u64()?,
            };
            let ascending = pages
                .last()
                .is_none_or(|last: &IndexEntry| last.first_trace_id < entry.first_trace_id);
            if entry.offset != next_offset
                || !ascending
                || entry.trace_count == 0
                || !filter::valid_words(entry.filter_words)
            {
                return Err(BlockError::Malformed(format!(
                    "index entry {} (offset {}, {} traces) out of order",
                    pages.len(),
                    entry.offset,
                    entry.trace_count
                )));
            }
            next_offset = entry.offset + u64::from(entry.length);
            traces += u64::from(entry.trace_count);
            pages.push(entry);
        }
        if next_offset != footer.index_offset || traces != footer.trace_count {
            return Err(BlockError::Malformed(format!(
                "pages end at {next_offset} with {traces} traces; the footer says {} and {}",
                footer.index_offset, footer.trace_count
            )));
        }
        let bloom = Bloom::decode(
            cursor.take(footer.bloom_bytes as usize)?,
            footer.bloom_hashes,
        )
        .ok_or_else(|| BlockError::Malformed("bloom filter shape".to_string()))?;
        let mut filter_starts = Vec::with_capacity(pages.len());
        let mut words = 0usize;
        for page in &pages {
            filter_starts.push(words);
            words += page.filter_words as usize;
        }
        if words != footer.filter_words as usize {
            return Err(BlockError::Malformed(format!(
                "page filters hold {words} words; the footer says {}",
                footer.filter_words
            )));
        }
        let filters = cursor
            .take(words * 8)?
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
            .collect();
        Ok(BlockIndex {
            footer,
            pages,
            bloom,
            filters,
            filter_starts,
        })
    }

    /// The page that would hold `trace_id`, or `None` when the bloom filter or the index
    /// rule it out.
    pub fn page_for(&self, trace_id: &TraceId) -> Option<(usize, IndexEntry)> {
        if !self.bloom.may_contain(trace_id) {
            return None;
        }
        let after = self
            .pages
            .partition_point(|page| page.first_trace_id <= *trace_id);
        let index = after.checked_sub(1)?;
        self.pages.get(index).map(|entry| (index, *entry))
    }

    /// Bytes this index holds in memory.
    pub fn memory_bytes(&self) -> usize {
        self.pages.len() * (std::mem::size_of::<IndexEntry>() + std::mem::size_of::<usize>())
            + self.bloom.byte_len()
            + self.filters.len() * 8
    }

    /// The filter of page `number` (empty: none, the page may hold anything).
    pub fn page_filter(&self, number: usize) -> &[u64] {
        let (Some(&start), Some(page)) = (self.filter_starts.get(number), self.pages.get(number))
        else {
            return &[];
        };
        self.filters
            .get(start..start + page.filter_words as usize)
            .unwrap_or_default()
    }
}

/// What a finished block holds, for its `meta.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockStats {
    pub trace_count: u64,
    pub span_count: u64,
    pub page_count: u64,
    pub min_start_unix_nanos: u64,
    pub max_end_unix_nanos: u64,
    pub payload_bytes: u64,
    pub data_bytes: u64,
    pub footer_crc32: u32,
}

/// Builds a data file from traces given in ascending trace-ID order.
pub struct BlockWriter {
    out: Vec<u8>,
    page: PageBuilder,
    pages: Vec<(PageSummary, u64, u32)>,
    trace_ids: Vec<TraceId>,
    payload_bytes: u64,
    last: Option<TraceId>,
    /// Bytes of the data file handed out by [`BlockWriter::take_written`] (`out` holds what
    /// follows them).
    taken: u64,
}

impl Default for BlockWriter {
    fn default() -> Self {
        BlockWriter::new()
    }
}

impl BlockWriter {
    pub fn new() -> BlockWriter {
        BlockWriter::with_capacity(1 << 20)
    }

    /// A writer whose data file has room for `bytes` before it grows.
    pub fn with_capacity(bytes: usize) -> BlockWriter {
        let mut out = Vec::with_capacity(bytes.max(BLOCK_HEADER_BYTES));
        out.extend_from_slice(&BLOCK_MAGIC);
        out.push(BLOCK_FORMAT_VERSION);
        out.push(0);
        BlockWriter {
            out,
            page: PageBuilder::new(),
            pages: Vec::new(),
            trace_ids: Vec::new(),
            payload_bytes: 0,
            last: None,
            taken: 0,
        }
    }

    /// Adds one trace: its payload is a run of `tempopb.Trace` field 1 (already assembled
    /// and de-duplicated by the caller). It is stored as columns and read back as prost
    /// would encode it (see `page`).
    pub fn add_trace(&mut self, trace_id: TraceId, payload: &[u8]) {
        self.admit(trace_id, payload.len());
        self.page.add(trace_id, payload);
        self.close_page_when_full();
    }

    /// Adds a trace from its stored payloads in order of arrival, as
    /// `add_trace(trace_id, &otlp::assemble_trace(payloads))` would (see
    /// [`PageBuilder::add_payloads`]).
    pub fn add_trace_payloads(&mut self, trace_id: TraceId, payloads: &[&[u8]]) {
        self.admit(trace_id, 0);
        let bytes = self.page.add_payloads(trace_id, payloads);
        self.payload_bytes += bytes as u64;
        self.close_page_when_full();
    }

    /// Copies the next trace of `cursor` (a columnar one) row by row: the data file is byte
    /// for byte the one `add_trace` of its rebuilt payload writes, but the trace's payload
    /// bytes are not known here: the caller accounts for them with
    /// [`BlockWriter::add_copied_payload_bytes`].
    pub fn copy_trace(&mut self, cursor: &mut PageCursor) -> Result<(), BlockError> {
        let trace_id = cursor
            .peek()
            .ok_or_else(|| BlockError::Malformed("copy past a page's last trace".to_string()))?;
        self.admit(trace_id, 0);
        cursor.copy_into(&mut self.page)?;
        self.close_page_when_full();
        Ok(())
    }

    /// Counts payload bytes of traces added with [`BlockWriter::copy_trace`] (a merge knows
    /// them from its sources' `meta.json`).
    pub fn add_copied_payload_bytes(&mut self, bytes: u64) {
        self.payload_bytes += bytes;
    }

    fn admit(&mut self, trace_id: TraceId, payload_bytes: usize) {
        assert!(
            self.last.is_none_or(|last| last < trace_id),
            "traces must be added in ascending ID order, once each"
        );
        self.last = Some(trace_id);
        self.trace_ids.push(trace_id);
        self.payload_bytes += payload_bytes as u64;
    }

    fn close_page_when_full(&mut self) {
        if self.page.raw_bytes() >= PAGE_TARGET_BYTES {
            self.close_page();
        }
    }

    pub fn trace_count(&self) -> usize {
        self.trace_ids.len()
    }

    /// Bytes written so far (compressed pages) plus what is buffered for the open page.
    pub fn approximate_bytes(&self) -> usize {
        self.taken as usize + self.out.len() + self.page.raw_bytes() / 4
    }

    /// The data file's next bytes (whole pages, the header first), once at least
    /// `min_bytes` are ready: a writer that streams the file to disk takes them as it goes,
    /// and [`BlockWriter::finish`] then returns only the rest. `None` while fewer are ready.
    pub fn take_written(&mut self, min_bytes: usize) -> Option<Vec<u8>> {
        if self.out.is_empty() || self.out.len() < min_bytes {
            return None;
        }
        let written = std::mem::replace(&mut self.out, Vec::with_capacity(min_bytes * 2));
        self.taken += written.len() as u64;
        Some(written)
    }

    fn close_page(&mut self) {
        if self.page.is_empty() {
            return;
        }
        let start = self.out.len();
        let summary = self.page.finish(&mut self.out);
        let length = u32::try_from(self.out.len() - start).expect("page under 4 GiB");
        let offset = self.taken + start as u64;
        self.pages.push((summary, offset, length));
    }

    /// The data file (what [`BlockWriter::take_written`] has not taken: all of it when
    /// nothing was taken) and what it holds.
    pub fn finish(mut self) -> (Vec<u8>, BlockStats) {
        self.close_page();
        assert!(self.pages.len() as u64 <= PAGES_PER_BLOCK_MAX);
        let index_start = self.out.len();
        let index_offset = self.taken + index_start as u64;
        let mut stats = BlockStats {
            trace_count: self.trace_ids.len() as u64,
            page_count: self.pages.len() as u64,
            payload_bytes: self.payload_bytes,
            min_start_unix_nanos: u64::MAX,
            ..BlockStats::default()
        };
        for (summary, offset, length) in &self.pages {
            self.out
                .extend_from_slice(summary.first_trace_id.as_bytes());
            self.out.extend_from_slice(&offset.to_le_bytes());
            self.out.extend_from_slice(&length.to_le_bytes());
            self.out
                .extend_from_slice(&summary.trace_count.to_le_bytes());
            self.out
                .extend_from_slice(&summary.span_count.to_le_bytes());
            self.out
                .extend_from_slice(&(summary.filter.len() as u32).to_le_bytes());
            self.out
                .extend_from_slice(&summary.min_start_unix_nanos.to_le_bytes());
            self.out
                .extend_from_slice(&summary.max_end_unix_nanos.to_le_bytes());
            stats.span_count += u64::from(summary.span_count);
            if summary.span_count > 0 {
                stats.min_start_unix_nanos =
                    stats.min_start_unix_nanos.min(summary.min_start_unix_nanos);
            }
            stats.max_end_unix_nanos = stats.max_end_unix_nanos.max(summary.max_end_unix_nanos);
        }
        if stats.min_start_unix_nanos == u64::MAX {
            stats.min_start_unix_nanos = 0;
        }
        let mut bloom = Bloom::with_capacity(self.trace_ids.len() as u64);
        for id in &self.trace_ids {
            bloom.insert(id);
        }
        bloom.encode(&mut self.out);
        let mut filter_words = 0u32;
        for (summary, _, _) in &self.pages {
            filter_words += summary.filter.len() as u32;
            for word in &summary.filter {
                self.out.extend_from_slice(&word.to_le_bytes());
            }
        }
        let index_crc32 = crc32fast::hash(self.out.get(index_start..).unwrap_or_default());
        let footer_start = self.out.len();
        let footer = Footer {
            index_offset,
            page_count: self.pages.len() as u32,
            bloom_bytes: u32::try_from(bloom.byte_len()).expect("bloom under 4 GiB"),
            bloom_hashes: bloom.hashes(),
            filter_words,
            trace_count: stats.trace_count,
            span_count: stats.span_count,
            index_crc32,
            footer_crc32: 0,
        };
        footer.encode(&mut self.out);
        let footer_bytes = self.out.get(footer_start..).unwrap_or_default();
        let file_bytes = self.taken + self.out.len() as u64;
        stats.footer_crc32 = Footer::decode(footer_bytes, file_bytes)
            .expect("the footer just written decodes")
            .footer_crc32;
        stats.data_bytes = file_bytes;
        (self.out, stats)
    }
}

/// Checks the header of a data file (its first [`BLOCK_HEADER_BYTES`]).
pub fn check_header(bytes: &[u8]) -> Result<(), BlockError> {
    let mut cursor = Cursor::new(bytes, "block header");
    if cursor.take(6)? != BLOCK_MAGIC {
        return Err(BlockError::BadMagic {
            what: "block header",
        });
    }
    let version = cursor.u8()?;
    if version != BLOCK_FORMAT_VERSION {
        return Err(BlockError::UnsupportedVersion {
            what: "block header",
            version,
        });
    }
    Ok(())
}

/// Opens a whole data file held in memory (tests, compaction of small blocks, fuzzing).
pub fn open_bytes(data: &[u8]) -> Result<BlockIndex, BlockError> {
    check_header(data)?;
    let footer_at = data
        .len()
        .checked_sub(FOOTER_BYTES)
        .ok_or(BlockError::Truncated {
            what: "block",
            needed: (BLOCK_HEADER_BYTES + FOOTER_BYTES) as u64,
            available: data.len() as u64,
        })?;
    let footer = Footer::decode(data.get(footer_at..).unwrap_or_default(), data.len() as u64)?;
    let tail = data
        .get(footer.index_offset as usize..)
        .ok_or(BlockError::Malformed("index offset".to_string()))?;
    BlockIndex::decode(footer, tail)
}

/// The bytes of page `entry` within a whole data file held in memory.
pub fn page_bytes<'a>(data: &'a [u8], entry: &IndexEntry) -> Result<&'a [u8], BlockError> {
    let start = usize::try_from(entry.offset).unwrap_or(usize::MAX);
    let end = start.saturating_add(entry.length as usize);
    data.get(start..end).ok_or(BlockError::Truncated {
        what: "page",
        needed: end as u64,
        available: data.len() as u64,
    })
}

/// Looks a trace up in a whole data file held in memory.
pub fn find_in_bytes(
    data: &[u8],
    index: &BlockIndex,
    trace_id: &TraceId,
) -> Result<Option<Vec<u8>>, BlockError> {
    let Some((_, entry)) = index.page_for(trace_id) else {
        return Ok(None);
    };
    PageView::decode(page_bytes(data, &entry)?)?.find_trace(trace_id)
}

/// Fuzz entry point: any bytes as a data file, and as a single page. Never panics; whatever
/// opens must also look up every trace it lists.
pub fn fuzz_block_read(data: &[u8]) {
    if let Ok(index) = open_bytes(data) {
        for entry in &index.pages {
            let Ok(bytes) = page_bytes(data, entry) else {
                continue;
            };
            if let Ok(page) = PageView::decode(bytes) {
                let _ = page.check_columns();
                if let Ok(traces) = page.traces() {
                    for (trace_id, payload) in traces {
                        let found = find_in_bytes(data, &index, &trace_id);
                        assert_eq!(found, Ok(Some(payload)), "a listed trace is found");
                    }
                }
            }
        }
        let _ = find_in_bytes(data, &index, &TraceId([0x42; 16]));
    }
    if let Ok(page) = PageView::decode(data) {
        let _ = page.check_columns();
        let _ = page.find_trace(&TraceId([0; 16]));
    }
    let _ = BlockMeta::from_json(data);
}

/// A new block ID: 32 hex digits in UUID form, from the clock, the shard and a counter.
pub fn new_block_id(shard: usize, counter: u64, unix_nanos: u64) -> String {
    let a = xxhash_rust::xxh3::xxh3_64_with_seed(&unix_nanos.to_le_bytes(), shard as u64);
    let b = xxhash_rust::xxh3::xxh3_64_with_seed(
        &counter.to_le_bytes(),
        u64::from(std::process::id()) ^ unix_nanos,
    );
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        hex.get(0..8).unwrap_or_default(),
        hex.get(8..12).unwrap_or_default(),
        hex.get(12..16).unwrap_or_default(),
        hex.get(16..20).unwrap_or_default(),
        hex.get(20..32).unwrap_or_default()
    )
}

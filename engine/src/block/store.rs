//! The IO edge of blocks: publishing a block directory and reading from an open block,
//! through monoio files (io_uring). Everything here is thin around the sans-IO codec in the
//! rest of `block`; the shard decides what to write and when.
//!
//! Publishing (crash-safe): `<tenant dir>/.tmp-<shard-dir>-<block-id>/` gets `data` and
//! `meta.json`, each written and fsynced; the temporary directory is fsynced, renamed to
//! `<tenant dir>/<block-id>/`, and the tenant directory is fsynced. A directory named like a
//! block ID therefore always holds a whole block; a `.tmp-` directory is debris of a crash
//! and is removed at startup by the shard that wrote it.

use std::path::{Path, PathBuf};

use super::{
    check_header, BlockIndex, BlockMeta, Footer, PageView, BLOCK_HEADER_BYTES, FOOTER_BYTES,
};
use crate::ids::{Tenant, TraceId};

pub const DATA_FILE: &str = "data";
pub const META_FILE: &str = "meta.json";
pub const TMP_PREFIX: &str = ".tmp-";

/// A published block, its index and bloom filter in memory, its data file open.
pub struct OpenBlock {
    pub meta: BlockMeta,
    pub index: BlockIndex,
    pub dir: PathBuf,
    file: monoio::fs::File,
    /// Set when a page failed its checksum: compaction leaves the block alone.
    pub damaged: std::cell::Cell<bool>,
}

/// The name of a temporary block directory: `.tmp-shard-001-of-004-<block id>`.
pub fn tmp_dir_name(shard_dir: &str, block_id: &str) -> String {
    format!("{TMP_PREFIX}{shard_dir}-{block_id}")
}

/// fsync of a directory, so that entries created, renamed or removed in it are durable.
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

/// A data file is written in pieces of this size, the writeback of each started at once
/// (`sync_file_range`, no device cache flush), then fsynced whole: a WAL write or fsync
/// queued behind a block's writeback then waits for one piece, not for the whole file
/// (measured: 30 MB written at once held WAL appends for 40-55 ms; an fsync per piece made
/// WAL fsyncs wait for each piece's cache flush).
pub const BLOCK_WRITE_CHUNK_BYTES: usize = 1 << 20;

/// Starts the writeback of `len` bytes at `offset` of `file` without waiting for it (and
/// without a device cache flush, which a WAL fsync would then queue behind): the final
/// fsync finds little left to write.
pub fn start_writeback(file: &impl std::os::fd::AsRawFd, offset: u64, len: usize) {
    // SAFETY: a valid open descriptor; the call reads no memory of ours.
    let result = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
    if result != 0 {
        log::debug!(
            "blocks: sync_file_range: {}",
            std::io::Error::last_os_error()
        );
    }
}

async fn write_file(path: &Path, bytes: Vec<u8>) -> std::io::Result<()> {
    use monoio::buf::IoBuf;
    let file = monoio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await?;
    let length = bytes.len();
    let mut bytes = bytes;
    let mut offset = 0usize;
    while offset < length {
        let end = length.min(offset + BLOCK_WRITE_CHUNK_BYTES);
        let (result, slice) = file
            .write_all_at(bytes.slice(offset..end), offset as u64)
            .await;
        result?;
        bytes = slice.into_inner();
        start_writeback(&file, offset as u64, end - offset);
        offset = end;
    }
    file.sync_all().await?;
    file.close().await
}

/// Writes and publishes a block under `tenant_dir`, returning its directory.
pub async fn publish(
    tenant_dir: &Path,
    shard_dir: &str,
    meta: &BlockMeta,
    data: Vec<u8>,
) -> std::io::Result<PathBuf> {
    assert_eq!(meta.data_bytes, data.len() as u64, "meta matches the data");
    let tmp = prepare_tmp(tenant_dir, shard_dir, &meta.block_id)?;
    write_file(&tmp.join(DATA_FILE), data).await?;
    publish_written(tenant_dir, &tmp, meta).await
}

/// Creates the empty temporary directory of block `block_id` under `tenant_dir` (removing
/// what an earlier attempt left there) and returns it: a writer that streams the data file
/// (compaction) writes it there, then calls [`publish_written`].
pub fn prepare_tmp(tenant_dir: &Path, shard_dir: &str, block_id: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(tenant_dir)?;
    let tmp = tenant_dir.join(tmp_dir_name(shard_dir, block_id));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir(&tmp)?;
    Ok(tmp)
}

/// Publishes the block in `tmp` (from [`prepare_tmp`]), whose data file is written and
/// fsynced: writes `meta.json`, fsyncs the directory and renames it to its block ID.
pub async fn publish_written(
    tenant_dir: &Path,
    tmp: &Path,
    meta: &BlockMeta,
) -> std::io::Result<PathBuf> {
    let written = std::fs::metadata(tmp.join(DATA_FILE))?.len();
    assert_eq!(meta.data_bytes, written, "meta matches the data file");
    write_file(&tmp.join(META_FILE), meta.to_json().into_bytes()).await?;
    sync_dir(tmp)?;
    let dir = tenant_dir.join(&meta.block_id);
    std::fs::rename(tmp, &dir)?;
    sync_dir(tenant_dir)?;
    Ok(dir)
}

/// Removes a block directory written by the shard named `shard_dir`, and makes the removal
/// durable. The directory is first renamed to its temporary name, in one step: a reader listing
/// the tenant directory sees the block whole or not at all, never a directory losing its files,
/// and a crash midway leaves debris that the writer's shard removes at startup.
pub fn remove_block(dir: &Path, shard_dir: &str) -> std::io::Result<()> {
    let (Some(parent), Some(block_id)) = (dir.parent(), dir.file_name()) else {
        return Err(std::io::Error::other(format!(
            "{} is not a block directory",
            dir.display()
        )));
    };
    let doomed = parent.join(tmp_dir_name(shard_dir, &block_id.to_string_lossy()));
    std::fs::rename(dir, &doomed)?;
    sync_dir(parent)?;
    std::fs::remove_dir_all(&doomed)?;
    sync_dir(parent)
}

async fn read_at(file: &monoio::fs::File, offset: u64, length: usize) -> std::io::Result<Vec<u8>> {
    let (result, buffer) = file.read_exact_at(vec![0u8; length], offset).await;
    result?;
    Ok(buffer)
}

impl OpenBlock {
    /// Opens the block in `dir`: reads and checks `meta.json`, the header, footer, index and
    /// bloom filter, and that they agree. Any failure is an error naming what is wrong.
    pub async fn open(dir: &Path, tenant: &Tenant) -> Result<OpenBlock, String> {
        let meta_bytes = std::fs::read(dir.join(META_FILE))
            .map_err(|err| format!("reading {META_FILE}: {err}"))?;
        let meta = BlockMeta::from_json(&meta_bytes)?;
        if meta.format_version != super::BLOCK_FORMAT_VERSION {
            return Err(format!(
                "unsupported block format version {}",
                meta.format_version
            ));
        }
        if &meta.tenant != tenant {
            return Err(format!("meta.json names tenant {}", meta.tenant));
        }
        if dir.file_name().and_then(|n| n.to_str()) != Some(meta.block_id.as_str()) {
            return Err(format!("meta.json names block {}", meta.block_id));
        }
        let path = dir.join(DATA_FILE);
        let file_bytes = std::fs::metadata(&path)
            .map_err(|err| format!("{DATA_FILE}: {err}"))?
            .len();
        if file_bytes != meta.data_bytes {
            return Err(format!(
                "{DATA_FILE} has {file_bytes} bytes, meta.json says {}",
                meta.data_bytes
            ));
        }
        if file_bytes < (BLOCK_HEADER_BYTES + FOOTER_BYTES) as u64 {
            return Err(format!("{DATA_FILE} is only {file_bytes} bytes"));
        }
        let file = monoio::fs::File::open(&path)
            .await
            .map_err(|err| format!("{DATA_FILE}: {err}"))?;
        let io = |err: std::io::Error| format!("reading {DATA_FILE}: {err}");
        let header = read_at(&file, 0, BLOCK_HEADER_BYTES).await.map_err(io)?;
        check_header(&header).map_err(|err| err.to_string())?;
        let footer_bytes = read_at(&file, file_bytes - FOOTER_BYTES as u64, FOOTER_BYTES)
            .await
            .map_err(io)?;
        let footer = Footer::decode(&footer_bytes, file_bytes).map_err(|err| err.to_string())?;
        if footer.footer_crc32 != meta.footer_crc32 {
            return Err("meta.json and the data footer disagree (footer_crc32)".to_string());
        }
        let tail_len = usize::try_from(footer.tail_bytes()).map_err(|_| "index too large")?;
        let tail = read_at(&file, footer.index_offset, tail_len)
            .await
            .map_err(io)?;
        let index = BlockIndex::decode(footer, &tail).map_err(|err| err.to_string())?;
        if index.footer.trace_count != meta.trace_count
            || index.pages.len() as u64 != meta.page_count
        {
            return Err("meta.json and the data index disagree (counts)".to_string());
        }
        Ok(OpenBlock {
            meta,
            index,
            dir: dir.to_path_buf(),
            file,
            damaged: std::cell::Cell::new(false),
        })
    }

    pub fn id(&self) -> &str {
        &self.meta.block_id
    }

    /// The payload of a trace, reading at most one page. The error names the block and page.
    pub async fn find(&self, trace_id: &TraceId) -> Result<Option<Vec<u8>>, String> {
        let Some((number, entry)) = self.index.page_for(trace_id) else {
            return Ok(None);
        };
        let bytes = read_at(&self.file, entry.offset, entry.length as usize)
            .await
            .map_err(|err| {
                format!(
                    "block {} page {number}: read failed: {err}",
                    self.meta.block_id
                )
            })?;
        let found = PageView::decode(&bytes).and_then(|page| page.find_trace(trace_id));
        found.map_err(|err| {
            self.damaged.set(true);
            format!(
                "block {} (tenant {}) page {number} at byte {}: {err}",
                self.meta.block_id, self.meta.tenant, entry.offset
            )
        })
    }

    /// The bytes of page `number` (checked when decoded: [`PageView::decode`]).
    pub async fn read_page_bytes(&self, number: usize) -> Result<Vec<u8>, String> {
        let Some(entry) = self.index.pages.get(number) else {
            return Err(format!("block {} has no page {number}", self.meta.block_id));
        };
        read_at(&self.file, entry.offset, entry.length as usize)
            .await
            .map_err(|err| format!("block {} page {number}: {err}", self.meta.block_id))
    }

    /// Marks the block damaged after a page failed to decode; the message names it.
    pub fn page_damaged(&self, number: usize, err: &super::BlockError) -> String {
        self.damaged.set(true);
        format!("block {} page {number}: {err}", self.meta.block_id)
    }

    /// The traces of page `number`, in ID order, rebuilt from its columns. The error names
    /// the block and page.
    pub async fn read_page(&self, number: usize) -> Result<Vec<(TraceId, Vec<u8>)>, String> {
        let Some(entry) = self.index.pages.get(number) else {
            return Err(format!("block {} has no page {number}", self.meta.block_id));
        };
        let bytes = read_at(&self.file, entry.offset, entry.length as usize)
            .await
            .map_err(|err| format!("block {} page {number}: {err}", self.meta.block_id))?;
        PageView::decode(&bytes)
            .and_then(|page| page.traces())
            .map_err(|err| {
                self.damaged.set(true);
                format!("block {} page {number}: {err}", self.meta.block_id)
            })
    }

    /// Every page's traces, in ID order: `(trace ID, payload)` where the payload is an
    /// encoded `tempopb.Trace` (a run of field-1 `ResourceSpans`). Holds the whole block in
    /// memory; [`OpenBlock::read_page`] reads one page at a time.
    pub async fn read_all(&self) -> Result<Vec<(TraceId, Vec<u8>)>, String> {
        let mut traces = Vec::with_capacity(self.meta.trace_count as usize);
        for number in 0..self.index.pages.len() {
            traces.extend(self.read_page(number).await?);
        }
        Ok(traces)
    }
}

//! `meta.json` of a block (sans-IO): a flat JSON object, written and read here without a
//! JSON library. Example:
//!
//! ```text
//! {"format":"allegro-block","format_version":1,
//!  "block_id":"8f1c...-....","tenant":"single-tenant","shard":0,"shards":2,
//!  "min_start_unix_nanos":1700000000000000000,"max_end_unix_nanos":1700000001000000000,
//!  "trace_count":1200,"span_count":9600,"page_count":3,
//!  "data_bytes":412345,"payload_bytes":2345678,"footer_crc32":1234567,
//!  "compaction_level":0,"compacted_from":[],"wal_segments":[3,4]}
//! ```
//!
//! `data_bytes` and `footer_crc32` tie the meta to its `data` file: a reader checks both
//! before it trusts either. `compacted_from` names the blocks a compaction merged (they are
//! deleted once this one is published; a restart that finds both deletes the sources).
//! `wal_segments` are the sequence numbers of the writer's WAL segments the block covers
//! (deleted once it is published; a restart that finds both deletes the segments).

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fmt::Write;

use crate::ids::Tenant;

pub const META_FORMAT: &str = "allegro-block";
/// The largest `meta.json` a reader accepts.
pub const META_BYTES_MAX: usize = 1 << 20;
/// Entries in `compacted_from` or `wal_segments` at most.
pub const META_LIST_LEN_MAX: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMeta {
    pub format_version: u8,
    pub block_id: String,
    pub tenant: Tenant,
    /// The shard that wrote the block, and the shard count it ran with.
    pub shard: u32,
    pub shards: u32,
    pub min_start_unix_nanos: u64,
    pub max_end_unix_nanos: u64,
    pub trace_count: u64,
    pub span_count: u64,
    pub page_count: u64,
    pub data_bytes: u64,
    pub payload_bytes: u64,
    pub footer_crc32: u32,
    pub compaction_level: u32,
    pub compacted_from: Vec<String>,
    pub wal_segments: Vec<u64>,
}

/// A block ID: lowercase hex digits and dashes, 1..=64 characters (so it is a safe
/// directory name).
pub fn is_valid_block_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
}

impl BlockMeta {
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(512);
        out.push('{');
        let _ = write!(out, "\"format\":\"{META_FORMAT}\"");
        let _ = write!(out, ",\"format_version\":{}", self.format_version);
        let _ = write!(out, ",\"block_id\":");
        push_string(&mut out, &self.block_id);
        let _ = write!(out, ",\"tenant\":");
        push_string(&mut out, self.tenant.as_str());
        let numbers: [(&str, u64); 11] = [
            ("shard", u64::from(self.shard)),
            ("shards", u64::from(self.shards)),
            ("min_start_unix_nanos", self.min_start_unix_nanos),
            ("max_end_unix_nanos", self.max_end_unix_nanos),
            ("trace_count", self.trace_count),
            ("span_count", self.span_count),
            ("page_count", self.page_count),
            ("data_bytes", self.data_bytes),
            ("payload_bytes", self.payload_bytes),
            ("footer_crc32", u64::from(self.footer_crc32)),
            ("compaction_level", u64::from(self.compaction_level)),
        ];
        for (name, value) in numbers {
            let _ = write!(out, ",\"{name}\":{value}");
        }
        out.push_str(",\"compacted_from\":[");
        for (i, id) in self.compacted_from.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_string(&mut out, id);
        }
        out.push_str("],\"wal_segments\":[");
        for (i, sequence) in self.wal_segments.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{sequence}");
        }
        out.push_str("]}\n");
        out
    }

    /// Parses and checks a `meta.json`. Unknown keys are ignored; a missing or malformed
    /// known key is an error naming it.
    pub fn from_json(bytes: &[u8]) -> Result<BlockMeta, String> {
        if bytes.len() > META_BYTES_MAX {
            return Err(format!(
                "meta.json is {} bytes, over {META_BYTES_MAX}",
                bytes.len()
            ));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| "meta.json is not UTF-8".to_string())?;
        let fields = parse_object(text)?;
        let get = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value)
                .ok_or_else(|| format!("meta.json: missing {name}"))
        };
        let string = |name: &str| match get(name)? {
            Json::String(s) => Ok(s.clone()),
            _ => Err(format!("meta.json: {name} is not a string")),
        };
        let number = |name: &str| match get(name)? {
            Json::Number(n) => Ok(*n),
            _ => Err(format!("meta.json: {name} is not an unsigned integer")),
        };
        let small = |name: &str| {
            u32::try_from(number(name)?).map_err(|_| format!("meta.json: {name} is too large"))
        };
        if string("format")? != META_FORMAT {
            return Err("meta.json: format is not allegro-block".to_string());
        }
        let format_version = u8::try_from(number("format_version")?)
            .map_err(|_| "meta.json: format_version is too large".to_string())?;
        let block_id = string("block_id")?;
        if !is_valid_block_id(&block_id) {
            return Err(format!(
                "meta.json: block_id {block_id:?} is not a block ID"
            ));
        }
        let tenant_text = string("tenant")?;
        let tenant =
            Tenant::parse(&tenant_text).map_err(|err| format!("meta.json: tenant: {err}"))?;
        let compacted_from = match get("compacted_from")? {
            Json::Array(items) => items
                .iter()
                .map(|item| match item {
                    Json::String(id) if is_valid_block_id(id) => Ok(id.clone()),
                    _ => Err("meta.json: compacted_from holds a non-ID".to_string()),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err("meta.json: compacted_from is not a list".to_string()),
        };
        let wal_segments = match get("wal_segments")? {
            Json::Array(items) => items
                .iter()
                .map(|item| match item {
                    Json::Number(n) => Ok(*n),
                    _ => Err("meta.json: wal_segments holds a non-number".to_string()),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err("meta.json: wal_segments is not a list".to_string()),
        };
        let meta = BlockMeta {
            format_version,
            block_id,
            tenant,
            shard: small("shard")?,
            shards: small("shards")?,
            min_start_unix_nanos: number("min_start_unix_nanos")?,
            max_end_unix_nanos: number("max_end_unix_nanos")?,
            trace_count: number("trace_count")?,
            span_count: number("span_count")?,
            page_count: number("page_count")?,
            data_bytes: number("data_bytes")?,
            payload_bytes: number("payload_bytes")?,
            footer_crc32: small("footer_crc32")?,
            compaction_level: small("compaction_level")?,
            compacted_from,
            wal_segments,
        };
        if meta.shards == 0 || meta.shard >= meta.shards {
            return Err(format!(
                "meta.json: shard {} of {} is impossible",
                meta.shard, meta.shards
            ));
        }
        Ok(meta)
    }
}

fn push_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Json {
    String(String),
    Number(u64),
    Array(Vec<Json>),
}

/// A flat object: string keys to strings, unsigned integers, or lists of those.
fn parse_object(text: &str) -> Result<Vec<(String, Json)>, String> {
    let mut p = Parser {
        bytes: text.as_bytes(),
        at: 0,
    };
    p.skip_ws();
    p.expect(b'{')?;
    let mut fields = Vec::new();
    p.skip_ws();
    if p.peek() == Some(b'}') {
        p.at += 1;
    } else {
        loop {
            p.skip_ws();
            let key = p.string()?;
            p.skip_ws();
            p.expect(b':')?;
            p.skip_ws();
            let value = p.value(true)?;
            if fields.len() >= 64 {
                return Err("meta.json: too many keys".to_string());
            }
            fields.push((key, value));
            p.skip_ws();
            match p.next() {
                Some(b',') => continue,
                Some(b'}') => break,
                _ => return Err(format!("meta.json: expected , or }} at byte {}", p.at)),
            }
        }
    }
    p.skip_ws();
    if p.at != p.bytes.len() {
        return Err(format!("meta.json: trailing bytes at {}", p.at));
    }
    Ok(fields)
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.next() == Some(byte) {
            Ok(())
        } else {
            Err(format!(
                "meta.json: expected {:?} at byte {}",
                byte as char,
                self.at.saturating_sub(1)
            ))
        }
    }

    fn value(&mut self, allow_array: bool) -> Result<Json, String> {
        match self.peek() {
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b'0'..=b'9') => {
                let mut n = 0u64;
                while let Some(d @ b'0'..=b'9') = self.peek() {
                    n = n
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(u64::from(d - b'0')))
                        .ok_or_else(|| format!("meta.json: number too large at {}", self.at))?;
                    self.at += 1;
                }
                Ok(Json::Number(n))
            }
            Some(b'[') if allow_array => {
                self.at += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    self.skip_ws();
                    if items.len() >= META_LIST_LEN_MAX {
                        return Err("meta.json: list too long".to_string());
                    }
                    items.push(self.value(false)?);
                    self.skip_ws();
                    match self.next() {
                        Some(b',') => continue,
                        Some(b']') => return Ok(Json::Array(items)),
                        _ => return Err(format!("meta.json: expected , or ] at {}", self.at)),
                    }
                }
            }
            _ => Err(format!("meta.json: unexpected value at byte {}", self.at)),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.at;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.at += 1;
            }
            let run = self
                .bytes
                .get(start..self.at)
                .and_then(|run| std::str::from_utf8(run).ok())
                .ok_or_else(|| "meta.json: bad string".to_string())?;
            out.push_str(run);
            match self.next() {
                Some(b'"') => return Ok(out),
                Some(b'\\') => match self.next() {
                    Some(b'"') => out.push('"'),
                    Some(b'\\') => out.push('\\'),
                    Some(b'/') => out.push('/'),
                    Some(b'n') => out.push('\n'),
                    Some(b't') => out.push('\t'),
                    Some(b'r') => out.push('\r'),
                    Some(b'u') => {
                        let hex = self
                            .bytes
                            .get(self.at..self.at + 4)
                            .and_then(|h| std::str::from_utf8(h).ok())
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                            .and_then(char::from_u32)
                            .ok_or_else(|| format!("meta.json: bad \\u escape at {}", self.at))?;
                        self.at += 4;
                        out.push(hex);
                    }
                    _ => return Err(format!("meta.json: bad escape at {}", self.at)),
                },
                _ => return Err(format!("meta.json: unterminated string at {}", self.at)),
            }
            if out.len() > META_BYTES_MAX {
                return Err("meta.json: string too long".to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BlockMeta {
        BlockMeta {
            format_version: 1,
            block_id: "0123abcd-ef".to_string(),
            tenant: Tenant::parse("team-a").expect("tenant"),
            shard: 1,
            shards: 4,
            min_start_unix_nanos: 1_700_000_000_000_000_000,
            max_end_unix_nanos: u64::MAX,
            trace_count: 3,
            span_count: 9,
            page_count: 1,
            data_bytes: 1234,
            payload_bytes: 4567,
            footer_crc32: u32::MAX,
            compaction_level: 2,
            compacted_from: vec!["aa".to_string(), "bb-cc".to_string()],
            wal_segments: vec![0, 7],
        }
    }

    #[test]
    fn round_trips() {
        let meta = sample();
        let json = meta.to_json();
        assert_eq!(BlockMeta::from_json(json.as_bytes()), Ok(meta));
        let mut empty = sample();
        empty.compacted_from.clear();
        empty.wal_segments.clear();
        assert_eq!(BlockMeta::from_json(empty.to_json().as_bytes()), Ok(empty));
    }

    #[test]
    fn errors_name_the_key() {
        let json = sample().to_json().replace("\"span_count\"", "\"spans\"");
        assert_eq!(
            BlockMeta::from_json(json.as_bytes()),
            Err("meta.json: missing span_count".to_string())
        );
        let json = sample().to_json().replace("0123abcd-ef", "../x");
        assert!(BlockMeta::from_json(json.as_bytes())
            .expect_err("bad id")
            .contains("block_id"));
        for bad in [
            "",
            "{",
            "{\"a\":}",
            "{\"a\":1",
            "[1]",
            "{\"a\":1} x",
            "{\"a\":99999999999999999999}",
        ] {
            assert!(BlockMeta::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}

//! Page filters (sans-IO): a small bloom filter per page over the *facts* its spans hold
//! (a service, a span name, a status, an attribute's string value, ...), kept in the block
//! index so a search skips pages without reading them.
//!
//! ```text
//! filter of one page: IndexEntry.filter_words little-endian u64 words (0 words: no filter,
//! the page may hold anything). bits = 64 * words, a power of two; each fact sets
//! FILTER_HASHES bits: h = xxh3_64(fact), bit_i = (lo32(h) + i * (hi32(h) | 1)) mod bits.
//! fact bytes: kind u8, then per part: length u32 LE, bytes (see `Fact::hash`).
//! ```
//!
//! Soundness is the one rule: a fact a page holds is always in its filter, so "not in the
//! filter" means "no span of the page has it". A page the builder cannot describe (a trace
//! stored raw) gets no filter.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

/// Bits set per fact. With ~10 bits per fact, 7 hashes give ~1% false positives.
pub const FILTER_HASHES: u32 = 7;
/// Bits per fact the builder aims for.
const BITS_PER_FACT: usize = 10;
/// Bounds of a page filter, in 64-bit words (64 B to 8 KiB).
pub const FILTER_WORDS_MIN: usize = 8;
pub const FILTER_WORDS_MAX: usize = 1024;

const _: () = assert!(FILTER_WORDS_MIN.is_power_of_two() && FILTER_WORDS_MAX.is_power_of_two());

/// A statement about one span of a page. Values are the strings as stored (UTF-8 bytes).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Fact<'a> {
    /// A resource attribute with a string value.
    ResourceAttr(&'a [u8], &'a [u8]),
    /// A resource attribute of this key, any value.
    ResourceKey(&'a [u8]),
    /// A span attribute with a string value.
    SpanAttr(&'a [u8], &'a [u8]),
    /// A span attribute of this key, any value.
    SpanKey(&'a [u8]),
    /// A non-empty span name.
    Name(&'a [u8]),
    /// TraceQL status: 0 unset (no Status, code 0 or an unknown code), 1 ok, 2 error.
    Status(u8),
    /// TraceQL kind: the OTLP kind, 0 for anything above 5.
    Kind(u8),
    /// A span of this service (a `service.name` string of its resource) with this status.
    ServiceStatus(&'a [u8], u8),
    /// A span of this service with this name.
    ServiceName(&'a [u8], &'a [u8]),
}

impl Fact<'_> {
    pub fn hash(&self) -> u64 {
        let mut bytes = Vec::with_capacity(64);
        let mut part = |p: &[u8]| {
            bytes.extend_from_slice(&(p.len() as u32).to_le_bytes());
            bytes.extend_from_slice(p);
        };
        let kind: u8 = match self {
            Fact::ResourceAttr(k, v) => {
                part(k);
                part(v);
                1
            }
            Fact::ResourceKey(k) => {
                part(k);
                2
            }
            Fact::SpanAttr(k, v) => {
                part(k);
                part(v);
                3
            }
            Fact::SpanKey(k) => {
                part(k);
                4
            }
            Fact::Name(n) => {
                part(n);
                5
            }
            Fact::Status(s) => {
                part(&[*s]);
                6
            }
            Fact::Kind(k) => {
                part(&[*k]);
                7
            }
            Fact::ServiceStatus(s, c) => {
                part(s);
                part(&[*c]);
                8
            }
            Fact::ServiceName(s, n) => {
                part(s);
                part(n);
                9
            }
        };
        bytes.insert(0, kind);
        xxhash_rust::xxh3::xxh3_64(&bytes)
    }
}

/// TraceQL's status of an OTLP status code (`None`: the span has no Status).
pub fn status_fact(code: Option<u8>) -> u8 {
    match code {
        Some(1) => 1,
        Some(2) => 2,
        _ => 0,
    }
}

/// TraceQL's kind of an OTLP kind.
pub fn kind_fact(kind: u8) -> u8 {
    if kind <= 5 {
        kind
    } else {
        0
    }
}

fn bit_positions(hash: u64, bits: u64) -> impl Iterator<Item = u64> {
    let lo = hash & 0xffff_ffff;
    let hi = (hash >> 32) | 1;
    (0..u64::from(FILTER_HASHES)).map(move |i| lo.wrapping_add(i.wrapping_mul(hi)) & (bits - 1))
}

/// Builds one page filter from fact hashes.
pub fn build(hashes: &[u64]) -> Vec<u64> {
    let wanted_bits = hashes.len().saturating_mul(BITS_PER_FACT);
    let words = wanted_bits
        .div_ceil(64)
        .next_power_of_two()
        .clamp(FILTER_WORDS_MIN, FILTER_WORDS_MAX);
    let mut filter = vec![0u64; words];
    let bits = (words * 64) as u64;
    for &hash in hashes {
        for bit in bit_positions(hash, bits) {
            if let Some(word) = filter.get_mut((bit / 64) as usize) {
                *word |= 1 << (bit % 64);
            }
        }
    }
    filter
}

/// Whether a filter (its words; empty: no filter) may hold the fact of `hash`.
pub fn may_contain(filter: &[u64], hash: u64) -> bool {
    if filter.is_empty() {
        return true;
    }
    let bits = (filter.len() * 64) as u64;
    bit_positions(hash, bits).all(|bit| {
        filter
            .get((bit / 64) as usize)
            .is_some_and(|word| word & (1 << (bit % 64)) != 0)
    })
}

/// A filter's word count is valid: 0 (none) or a power of two within the bounds.
pub fn valid_words(words: u32) -> bool {
    let words = words as usize;
    words == 0
        || (words.is_power_of_two() && (FILTER_WORDS_MIN..=FILTER_WORDS_MAX).contains(&words))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fact_added_is_found() {
        let facts: Vec<u64> = (0..500u32)
            .map(|i| Fact::SpanAttr(b"k", &i.to_le_bytes()).hash())
            .collect();
        let filter = build(&facts);
        assert!(valid_words(filter.len() as u32));
        assert!(facts.iter().all(|&h| may_contain(&filter, h)));
        let absent = (1000..11000u32)
            .filter(|i| may_contain(&filter, Fact::SpanAttr(b"k", &i.to_le_bytes()).hash()))
            .count();
        assert!(absent < 300, "{absent} false positives in 10000");
    }

    #[test]
    fn facts_of_different_kinds_differ() {
        let a = Fact::SpanAttr(b"service.name", b"x").hash();
        let b = Fact::ResourceAttr(b"service.name", b"x").hash();
        let c = Fact::SpanAttr(b"service.namex", b"").hash();
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn no_filter_holds_everything() {
        assert!(may_contain(&[], 42));
        assert!(valid_words(0));
        assert!(!valid_words(3));
        assert!(!valid_words(2048));
    }

    #[test]
    fn filters_stay_within_bounds() {
        assert_eq!(build(&[]).len(), FILTER_WORDS_MIN);
        let many: Vec<u64> = (0..100_000u64).collect();
        assert_eq!(build(&many).len(), FILTER_WORDS_MAX);
    }
}

//! The bloom filter on trace IDs of a block (sans-IO).
//!
//! `m` bits in little-endian u64 words, `k` probes by double hashing of two xxh3 hashes of the
//! trace ID: probe `i` is bit `(h1 + i * h2) mod m`. With [`BLOOM_BITS_PER_TRACE`] bits per
//! trace and [`BLOOM_HASHES`] probes the false-positive rate is about 1%.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::ids::TraceId;

/// Bits per trace: 9.6 bits give ~1% false positives with 7 probes; 10 leaves room.
pub const BLOOM_BITS_PER_TRACE: u64 = 10;
pub const BLOOM_HASHES: u32 = 7;
/// The largest filter a reader accepts: 2^32 bits (512 MiB), far above any block's.
pub const BLOOM_BYTES_MAX: u64 = 1 << 29;

const _: () = assert!(BLOOM_BITS_PER_TRACE * 10 >= 96);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bloom {
    words: Vec<u64>,
    hashes: u32,
}

fn probes(trace_id: &TraceId) -> (u64, u64) {
    let h1 = xxhash_rust::xxh3::xxh3_64_with_seed(trace_id.as_bytes(), 0x616c_6c65);
    // Odd, so that the probes of one key never collapse onto one bit when m is a power of two.
    let h2 = xxhash_rust::xxh3::xxh3_64_with_seed(trace_id.as_bytes(), 0x6772_6f21) | 1;
    (h1, h2)
}

impl Bloom {
    /// A filter sized for `traces` trace IDs (at least one word).
    pub fn with_capacity(traces: u64) -> Bloom {
        let bits = traces.saturating_mul(BLOOM_BITS_PER_TRACE).max(64);
        let words = bits.div_ceil(64);
        Bloom {
            words: vec![0; usize::try_from(words).unwrap_or(usize::MAX)],
            hashes: BLOOM_HASHES,
        }
    }

    fn bits(&self) -> u64 {
        self.words.len() as u64 * 64
    }

    pub fn insert(&mut self, trace_id: &TraceId) {
        let (h1, h2) = probes(trace_id);
        let bits = self.bits();
        for i in 0..u64::from(self.hashes) {
            let bit = h1.wrapping_add(i.wrapping_mul(h2)) % bits;
            if let Some(word) = self.words.get_mut((bit / 64) as usize) {
                *word |= 1 << (bit % 64);
            }
        }
    }

    /// False: the trace is certainly not in the block.
    pub fn may_contain(&self, trace_id: &TraceId) -> bool {
        let (h1, h2) = probes(trace_id);
        let bits = self.bits();
        (0..u64::from(self.hashes)).all(|i| {
            let bit = h1.wrapping_add(i.wrapping_mul(h2)) % bits;
            self.words
                .get((bit / 64) as usize)
                .is_some_and(|word| word & (1 << (bit % 64)) != 0)
        })
    }

    pub fn hashes(&self) -> u32 {
        self.hashes
    }

    pub fn byte_len(&self) -> usize {
        self.words.len() * 8
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        for word in &self.words {
            out.extend_from_slice(&word.to_le_bytes());
        }
    }

    /// `None` unless `bytes` is a whole number of words (at least one) and `hashes` is 1..=32.
    pub fn decode(bytes: &[u8], hashes: u32) -> Option<Bloom> {
        if bytes.is_empty()
            || !bytes.chunks_exact(8).remainder().is_empty()
            || !(1..=32).contains(&hashes)
        {
            return None;
        }
        if bytes.len() as u64 > BLOOM_BYTES_MAX {
            return None;
        }
        let words = bytes
            .chunks_exact(8)
            .map(|chunk| {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                u64::from_le_bytes(word)
            })
            .collect();
        Some(Bloom { words, hashes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u64) -> TraceId {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&i.to_le_bytes());
        bytes[8..].copy_from_slice(&(i ^ 0x5555).to_be_bytes());
        TraceId(bytes)
    }

    #[test]
    fn no_false_negatives_and_about_one_percent_false_positives() {
        let n = 20_000u64;
        let mut bloom = Bloom::with_capacity(n);
        for i in 0..n {
            bloom.insert(&id(i));
        }
        assert!((0..n).all(|i| bloom.may_contain(&id(i))));
        let false_positives = (n..n + 100_000)
            .filter(|&i| bloom.may_contain(&id(i)))
            .count();
        assert!(false_positives < 1_500, "{false_positives} of 100000");
        let mut bytes = Vec::new();
        bloom.encode(&mut bytes);
        assert_eq!(Bloom::decode(&bytes, bloom.hashes()), Some(bloom));
    }

    #[test]
    fn decode_refuses_bad_shapes() {
        assert_eq!(Bloom::decode(&[], 7), None);
        assert_eq!(Bloom::decode(&[0; 7], 7), None);
        assert_eq!(Bloom::decode(&[0; 8], 0), None);
        assert_eq!(Bloom::decode(&[0; 8], 33), None);
    }
}

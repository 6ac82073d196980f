//! Hashers for the engine's maps. std's SipHash costs more than the work around it on the
//! ingest path (it was ~5% of a loaded shard's CPU, on 16-byte trace IDs).
//!
//! - [`IdMap`] / [`IdSet`]: keys that come from the network (trace and span IDs), hashed
//!   with xxh3 under a seed drawn once per process, so a client cannot aim IDs at one bucket.
//! - [`PrehashedMap`]: `u64` keys that are already xxh3 digests (a page's dictionary); the
//!   hasher passes them through.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// A map keyed by IDs from the network.
pub type IdMap<K, V> = HashMap<K, V, IdHash>;
/// A set of IDs from the network.
pub type IdSet<K> = HashSet<K, IdHash>;
/// A map keyed by xxh3 digests.
pub type PrehashedMap<V> = HashMap<u64, V, Prehashed>;

fn process_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        std::collections::hash_map::RandomState::new().hash_one(0x0061_6c6c_6567_726f_u64)
    })
}

/// xxh3 with the process seed.
#[derive(Clone, Copy)]
pub struct IdHash {
    seed: u64,
}

impl Default for IdHash {
    fn default() -> Self {
        IdHash {
            seed: process_seed(),
        }
    }
}

impl BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher { state: self.seed }
    }
}

pub struct IdHasher {
    state: u64,
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.state
    }
    fn write(&mut self, bytes: &[u8]) {
        self.state = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.state);
    }
    // Array and slice keys write their length first: fold it in cheaply.
    fn write_usize(&mut self, value: usize) {
        self.state = self.state.rotate_left(5) ^ value as u64;
    }
}

/// Passes a `u64` key (already a digest) through.
#[derive(Clone, Copy, Default)]
pub struct Prehashed;

impl BuildHasher for Prehashed {
    type Hasher = PrehashedHasher;
    fn build_hasher(&self) -> PrehashedHasher {
        PrehashedHasher(0)
    }
}

pub struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are meant; anything else still hashes.
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TraceId;

    #[test]
    fn id_hash_is_stable_within_a_process_and_spreads() {
        let build = IdHash::default();
        let a = build.hash_one(TraceId([1; 16]));
        assert_eq!(a, IdHash::default().hash_one(TraceId([1; 16])));
        assert_ne!(a, build.hash_one(TraceId([2; 16])));
        let mut map: IdMap<TraceId, u32> = IdMap::default();
        for i in 0..1000u32 {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&i.to_le_bytes());
            map.insert(TraceId(id), i);
        }
        assert_eq!(map.len(), 1000);
        assert_eq!(
            map[&TraceId({
                let mut id = [0u8; 16];
                id[..4].copy_from_slice(&7u32.to_le_bytes());
                id
            })],
            7
        );
    }

    #[test]
    fn prehashed_passes_digests_through() {
        assert_eq!(Prehashed.hash_one(42u64), 42);
    }
}

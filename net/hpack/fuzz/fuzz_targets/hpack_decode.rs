//! Fuzzes the HPACK decoder (and, for blocks that decode, the encoder round trip).
//!
//! Run from `net/hpack/`: `cargo +nightly fuzz run hpack_decode`. Minimise a crash with
//! `cargo +nightly fuzz tmin hpack_decode <artifact>` and save the result under
//! `fuzz/regressions/` with a name that says what it exercises: `cargo test -p allegro-hpack`
//! replays every file there.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    allegro_hpack::fuzz_decode(data);
});

//! Arbitrary bytes through the zipkin decoders (`allegro_receivers::fuzz::zipkin`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    allegro_receivers::fuzz::zipkin(data);
});

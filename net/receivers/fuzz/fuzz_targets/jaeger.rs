//! Arbitrary bytes through the jaeger decoders (`allegro_receivers::fuzz::jaeger`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    allegro_receivers::fuzz::jaeger(data);
});

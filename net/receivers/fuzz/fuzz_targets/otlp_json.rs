//! Arbitrary bytes through the otlp_json decoders (`allegro_receivers::fuzz::otlp_json`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    allegro_receivers::fuzz::otlp_json(data);
});

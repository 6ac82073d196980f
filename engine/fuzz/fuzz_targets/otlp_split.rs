//! `split_export` on arbitrary bytes, then `assemble_trace` of what it accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    allegro_engine::otlp::fuzz_split(data);
});

//! The block reader on arbitrary bytes: as a data file (footer, index, bloom filter, every
//! page and column, every listed trace looked up), as a single page, and as `meta.json`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    allegro_engine::block::fuzz_block_read(data);
});

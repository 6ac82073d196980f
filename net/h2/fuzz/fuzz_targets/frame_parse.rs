//! The frame parser alone, with an encode/parse round trip of every frame it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| allegro_h2::fuzz_frame_parse(data));

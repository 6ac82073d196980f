//! A server connection fed arbitrary bytes after the preface.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| allegro_h2::fuzz_frames(data));

//! `replay_segment` on arbitrary bytes, checking the replay's invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    allegro_engine::wal::fuzz_replay(data);
});

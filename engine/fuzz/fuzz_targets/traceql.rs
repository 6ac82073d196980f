//! `traceql::compile`, the plan and the evaluator on any text, with the plan's soundness
//! checked on the generated corpus (`allegro_engine::scan::fuzz_query`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    allegro_engine::scan::fuzz_query(data);
});

//! Pipelined HTTP/1.1 requests through the parser and the query API's router
//! (`allegro_net::http1::fuzz_parse`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    allegro_net::http1::fuzz_parse(data);
});

//! `cargo bench -p allegro-bench --bench hpack`: see `allegro_bench::suites::hpack`.

fn main() {
    allegro_bench::bench_main("hpack", allegro_bench::suites::hpack::run);
}

//! `cargo bench -p allegro-bench --bench frames`: see `allegro_bench::suites::frames`.

fn main() {
    allegro_bench::bench_main("frames", allegro_bench::suites::frames::run);
}

//! `cargo bench -p allegro-bench --bench otlp`: see `allegro_bench::suites::otlp`.

fn main() {
    allegro_bench::bench_main("otlp", allegro_bench::suites::otlp::run);
}

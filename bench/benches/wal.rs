//! `cargo bench -p allegro-bench --bench wal`: see `allegro_bench::suites::wal`.

fn main() {
    allegro_bench::bench_main("wal", allegro_bench::suites::wal::run);
}

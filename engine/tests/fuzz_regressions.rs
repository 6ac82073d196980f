//! Replays every saved fuzz input (crashes once found, and seeds) through the fuzz entry
//! points, so that plain `cargo test` keeps them fixed.

use std::path::Path;

fn saved_inputs(target: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no inputs in {}", dir.display());
    paths
        .into_iter()
        .map(|path| {
            let data =
                std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            (path, data)
        })
        .collect()
}

fn replay_directory(target: &str, entry_point: fn(&[u8])) {
    for (path, data) in saved_inputs(target) {
        // Printed only when the test fails: names the input that crashed.
        eprintln!("replaying {}", path.display());
        entry_point(&data);
    }
}

/// A small deterministic fuzz run on stable: random mutations (bit flips, overwrites,
/// insertions, deletions, splices, truncations) of the saved inputs, through both entry
/// points. `cargo fuzz` goes much further; this keeps the basics checked in every test run.
fn mutate_saved_inputs(target: &str, iterations: usize) {
    let seeds: Vec<Vec<u8>> = saved_inputs(target)
        .into_iter()
        .map(|(_, data)| data)
        .collect();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as usize
    };
    for _ in 0..iterations {
        let mut data = seeds[next() % seeds.len()].clone();
        for _ in 0..1 + next() % 4 {
            if data.is_empty() {
                data.push(next() as u8);
            }
            let at = next() % data.len();
            match next() % 6 {
                0 => data[at] ^= 1 << (next() % 8),
                1 => data[at] = next() as u8,
                2 => data.insert(at, next() as u8),
                3 => {
                    data.remove(at);
                }
                4 => {
                    let other = &seeds[next() % seeds.len()];
                    let from = next() % (other.len() + 1);
                    let to = from + next() % (other.len() - from + 1);
                    data.splice(at..at, other[from..to].iter().copied());
                }
                _ => data.truncate(at),
            }
        }
        allegro_engine::otlp::fuzz_split(&data);
        allegro_engine::wal::fuzz_replay(&data);
        allegro_engine::block::fuzz_block_read(&data);
        allegro_engine::scan::fuzz_query(&data);
    }
}

#[test]
fn otlp_split_regressions() {
    replay_directory("otlp_split", allegro_engine::otlp::fuzz_split);
}

#[test]
fn wal_replay_regressions() {
    replay_directory("wal_replay", allegro_engine::wal::fuzz_replay);
}

#[test]
fn mutations_of_saved_inputs() {
    mutate_saved_inputs("otlp_split", 20_000);
    mutate_saved_inputs("wal_replay", 20_000);
    mutate_saved_inputs("block_read", 5_000);
    mutate_saved_inputs("traceql", 20_000);
}

#[test]
fn block_read_regressions() {
    replay_directory("block_read", allegro_engine::block::fuzz_block_read);
}

#[test]
fn traceql_regressions() {
    replay_directory("traceql", allegro_engine::scan::fuzz_query);
}

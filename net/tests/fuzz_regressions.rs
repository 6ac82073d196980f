//! Replays every saved input of the `http1` fuzz target (the captured Grafana/Tempo requests
//! as seeds, and crashes once found) through `allegro_net::http1::fuzz_parse`, then a small
//! deterministic run of mutations of them, so that plain `cargo test` keeps them fixed.

use std::path::Path;

fn saved_inputs() -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/http1");
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

#[test]
fn http1_regressions() {
    for (path, data) in saved_inputs() {
        eprintln!("replaying {}", path.display());
        allegro_net::http1::fuzz_parse(&data);
    }
}

/// Byte flips, overwrites with bytes that matter to the parsers (`%`, `=`, `&`, `{`, quotes),
/// insertions, deletions, splices and truncations of the saved inputs.
#[test]
fn mutations_of_saved_inputs() {
    let seeds: Vec<Vec<u8>> = saved_inputs().into_iter().map(|(_, data)| data).collect();
    let alphabet = b"%=&{}()\"\\ .:?/\r\n0123456789abcdefxyz|!~<>";
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as usize
    };
    for _ in 0..20_000 {
        let mut data = seeds[next() % seeds.len()].clone();
        for _ in 0..1 + next() % 4 {
            if data.is_empty() {
                data.push(alphabet[next() % alphabet.len()]);
            }
            let at = next() % data.len();
            match next() % 6 {
                0 => data[at] ^= 1 << (next() % 8),
                1 => data[at] = alphabet[next() % alphabet.len()],
                2 => data.insert(at, alphabet[next() % alphabet.len()]),
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
        allegro_net::http1::fuzz_parse(&data);
    }
}

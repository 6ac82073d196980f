//! Replays every saved fuzz input in `fuzz/regressions/` through [`fuzz_decode`], so a crash
//! once found stays fixed. Add minimised crash inputs there (see
//! `fuzz/fuzz_targets/hpack_decode.rs`).

use std::fs;
use std::path::{Path, PathBuf};

use allegro_hpack::fuzz_decode;

#[test]
fn replay_saved_fuzz_inputs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .filter(|path| {
            !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no saved inputs in {}", dir.display());
    for path in &paths {
        let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Printed only if a replay panics: names the input that did.
        eprintln!("replaying {}", path.display());
        fuzz_decode(&data);
    }
}

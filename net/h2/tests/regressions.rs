//! Replays every input kept in `fuzz/regressions/` through both fuzz entry points. Minimised
//! crash inputs go there (STYLE.md rule 10); none may panic.

use std::fs;
use std::path::Path;

#[test]
fn replay_fuzz_regressions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file() && path.file_name() != Some(".gitkeep".as_ref()))
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "no inputs in {}", dir.display());
    for path in entries {
        let input = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        allegro_h2::fuzz_frame_parse(&input);
        allegro_h2::fuzz_frames(&input);
    }
}

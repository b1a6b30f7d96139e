//! One fact, one place: ARNs and AWS service names are formatted and read only in
//! `crates/auditor/src/refs.rs`, so every partition gets its own (docs/design.md,
//! "Partitions"). This test reads the source of the auditor, the live crate and the CLI and
//! fails on a hand-written `arn:aws` or `amazonaws.com` anywhere else. Test code (files named
//! `tests.rs`, `tests/` folders, and everything after a `#[cfg(test)]` line) may spell them.
#![allow(
    clippy::indexing_slicing,
    clippy::expect_used,
    reason = "a test fails loudly on an unreadable tree"
)]

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source folder") {
        let path = entry.expect("readable entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "tests") {
                sources(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs")
            && path
                .file_name()
                // fake.rs is the live crate's in-memory AWS, compiled only for its tests
                // (`#[cfg(test)] mod fake;`).
                .is_some_and(|n| n != "tests.rs" && n != "refs.rs" && n != "fake.rs")
        {
            out.push(path);
        }
    }
}

#[test]
fn arns_and_service_names_are_spelled_only_in_refs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["crates/auditor/src", "crates/live/src", "src"] {
        sources(&root.join(dir), &mut files);
    }
    assert!(files.len() > 30, "only {} source files found", files.len());
    let live_lib = std::fs::read_to_string(root.join("crates/live/src/lib.rs")).expect("lib.rs");
    assert!(
        live_lib.contains("#[cfg(test)]\nmod fake;"),
        "fake.rs is skipped only because it is test code"
    );
    let mut offenders = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("readable source");
        for (i, line) in text.lines().enumerate() {
            if line.contains("#[cfg(test)]") {
                break;
            }
            if line.contains("arn:aws") || line.contains("amazonaws.com") {
                offenders.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "ARNs or service names spelled outside refs.rs:\n{}",
        offenders.join("\n")
    );
}

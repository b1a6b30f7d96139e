//! The snapshot parser (auditor::snapshot::Snapshot::from_text), as the CLI reads a
//! `--snapshot` file. A snapshot that parses is written back and read again, which must give
//! an equal snapshot (docs/design.md: "reading what it writes gives back an equal snapshot"),
//! and is swept, as `sweep` does.
#![no_main]

use auditor::snapshot::Snapshot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(snapshot) = Snapshot::from_text(text) {
        let written = snapshot.to_value();
        match Snapshot::from_value(&written) {
            Ok(again) => assert!(again == snapshot, "read back differs: {written}"),
            Err(e) => panic!("the writer's output does not read back: {e}\n{written}"),
        }
        let _ = auditor::sweep::sweep(&snapshot);
    }
});

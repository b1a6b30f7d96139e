//! The snapshot writer and reader are inverses: every snapshot the repository ships (the
//! examples and each scenario's snapshot, patch applied) read, written with
//! `Snapshot::to_value` and read again gives an equal typed snapshot, and writing is a fixed
//! point after the first round.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails loudly on a bad fixture"
)]

use std::path::{Path, PathBuf};

use auditor::json_patch;
use auditor::snapshot::Snapshot;
use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Reads `raw`, writes it, reads the result, and checks both equalities.
fn assert_round_trip(raw: &Value, what: &str) {
    let first = Snapshot::from_value(raw).unwrap_or_else(|e| panic!("{what}: {e}"));
    let written = first.to_value();
    let text = serde_json::to_string_pretty(&written).unwrap();
    let second = Snapshot::from_text(&text).unwrap_or_else(|e| panic!("{what} written: {e}"));
    assert_eq!(first, second, "{what}: read → write → read differs");
    assert_eq!(
        second.to_value(),
        written,
        "{what}: writing is not a fixed point"
    );
}

#[test]
fn examples_round_trip() {
    for name in ["kc-scenario.json", "kc-scenario-fixed.json"] {
        let raw = read_json(&repo_root().join("examples").join(name));
        assert_round_trip(&raw, name);
        // Not vacuous: the example has both accounts and their policies.
        let snap = Snapshot::from_value(&raw).unwrap();
        assert_eq!(snap.accounts.len(), 2, "{name}");
    }
}

#[test]
fn scenario_snapshots_round_trip() {
    let dir = repo_root().join("tests/scenarios");
    let mut checked = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for path in entries {
        let case = read_json(&path);
        let what = path.display().to_string();
        let mut raw = match case.get("snapshot") {
            Some(Value::String(rel)) => read_json(&repo_root().join(rel)),
            Some(inline) => inline.clone(),
            None => continue,
        };
        if let Some(p) = case.get("patch") {
            let ops = json_patch::parse_patch(p).unwrap_or_else(|e| panic!("{what}: {e}"));
            json_patch::apply(&mut raw, &ops).unwrap_or_else(|e| panic!("{what}: {e}"));
        }
        // Scenarios of invalid snapshots have nothing to round-trip.
        if Snapshot::from_value(&raw).is_err() {
            continue;
        }
        assert_round_trip(&raw, &what);
        checked += 1;
    }
    assert!(checked >= 100, "only {checked} scenario snapshots checked");
}

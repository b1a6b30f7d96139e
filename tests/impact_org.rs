//! Policy-change impact on a synthetic organization (`benches/synth::hub`): an edit of one
//! key's policy that drops its readers breaks exactly their reads, through the CLI; the
//! library diagnoses only the paths whose part of the snapshot changed, verifies each
//! reader's fix once, and agrees with a diagnosis on the whole snapshot. Debug build, 30
//! readers; the timed runs are `scripts/bench-impact` (docs/scaling.md, "Impact at scale").
#![allow(
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on a bad fixture or a misbehaving binary"
)]

#[path = "../benches/synth/mod.rs"]
mod synth;

use std::process::Command;

use auditor::diagnose::diagnose;
use auditor::event::adhoc_request;
use auditor::snapshot::Snapshot;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_s3-kms-auditor");
const READERS: usize = 30;

#[test]
fn a_key_policy_edit_at_a_hub_breaks_exactly_its_readers_through_the_cli() {
    // GIVEN the organization before and after the hub key's policy drops its readers,
    // written as the snapshot writer writes them
    let hub = synth::hub(READERS);
    let dir =
        std::env::temp_dir().join(format!("s3-kms-auditor-impact-org-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, doc: &Value| {
        let snap = Snapshot::from_value(doc).unwrap();
        let path = dir.join(name);
        std::fs::write(
            &path,
            serde_json::to_string(&auditor::snapshot::write::to_value(&snap)).unwrap(),
        )
        .unwrap();
        path
    };
    let before = write("before.json", &hub.before);
    let after = write("after.json", &hub.after);

    // WHEN the CLI compares them
    let out = Command::new(BIN)
        .arg("impact")
        .arg("--before")
        .arg(&before)
        .arg("--after")
        .arg(&after)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let impact: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));

    // THEN every reader's path to each listed object broke with KEY_POLICY_NO_ALLOW and a
    // verified fix, nothing else changed, and the exit code says a path broke
    let c = synth::check_hub(&hub.expected, &impact);
    assert!(c.wrong.is_empty(), "{c:#?}");
    assert_eq!(c.broken, READERS * 2);
    assert!(c.unchanged > 0, "{c:?}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn only_the_readers_paths_are_diagnosed_and_each_readers_fix_is_verified_once() {
    // GIVEN the same change
    let hub = synth::hub(READERS);
    let before = Snapshot::from_value(&hub.before).unwrap();
    let after = Snapshot::from_value(&hub.after).unwrap();

    // WHEN its impact is computed
    let (i, work) = auditor::impact::impact_counted(&before, &after);

    // THEN only the readers' groups (one reader on the hub bucket) are diagnosed — the
    // organization's other paths read nothing the edit touched — and each reader's two paths
    // share one fix, applied once
    assert_eq!(i.broken.len(), READERS * 2);
    assert_eq!(work.groups_diagnosed, READERS, "{work:?}");
    assert_eq!(work.paths_diagnosed, READERS * 2, "{work:?}");
    assert_eq!(work.distinct_fixes, READERS, "{work:?}");
    assert!(work.groups > work.groups_diagnosed, "{work:?}");

    // AND each broken path is what a diagnosis on the whole snapshot after says
    for p in &i.broken {
        let object = format!("arn:aws:s3:::{}/{}", p.bucket, p.object);
        let req = adhoc_request(&p.principal, &p.action, &object).unwrap();
        let whole = diagnose(&after, &req);
        let findings: Vec<_> = whole.blocking().cloned().collect();
        assert_eq!(p.findings, findings, "{}", p.principal);
        assert_eq!(p.fixes_verified, Some(whole.fixes_verified));
        assert!(whole.fixes_verified);
    }
}

//! The offline sweep of a synthetic organization (`benches/synth`): the CLI, reading one
//! snapshot file per account from a directory, finds exactly the planted breaks — every one
//! of them with its code, no other denied path, no one-sided request reported — and the
//! sweep's diagnosis of each path on the part of the snapshot the path reads is the
//! diagnosis on the whole snapshot. Debug build, 20 accounts; the timed runs are
//! `scripts/bench-sweep` (docs/scaling.md).
#![allow(
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on a bad fixture or a misbehaving binary"
)]

#[path = "../benches/synth/mod.rs"]
mod synth;

use std::path::PathBuf;
use std::process::Command;

use auditor::diagnose::{diagnose, Verdict};
use auditor::event::adhoc_request;
use auditor::snapshot::Snapshot;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_s3-kms-auditor");

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("s3-kms-auditor-org-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_sweep_of_a_synthetic_organization_finds_exactly_the_planted_breaks() {
    // GIVEN 20 accounts written one file per account, with breaks of every kind planted
    let org = synth::generate(&synth::Params::new(20));
    let kinds: std::collections::BTreeSet<&str> = org.expected["breaks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), synth::KINDS.len(), "{kinds:?}");
    assert!(!org.expected["one_sided"].as_array().unwrap().is_empty());
    let dir = temp_dir("accounts");
    let expected = dir.with_extension("expected.json");
    synth::write(&org, &dir, &expected).unwrap();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 20);

    // WHEN the CLI sweeps the directory
    let out = Command::new(BIN)
        .args(["sweep", "--snapshot"])
        .arg(&dir)
        .args(["--format", "json", "--quiet"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let sweep: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));

    // THEN exactly the planted breaks are denied, each with its code; nothing is unknown and
    // no one-sided request is reported; breaks exit 1; --quiet prints nothing on stderr
    let c = synth::check(&org.expected, &sweep);
    assert!(c.exact(), "{c:#?}");
    assert_eq!(c.found, c.planted);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = &sweep["summary"];
    assert_eq!(summary["accounts"], 20);
    assert_eq!(summary["paths"], sweep["paths"].as_array().unwrap().len());
    // Each curious role asks for every listed object of a private bucket.
    assert_eq!(
        summary["identity_only"],
        2 * org.expected["one_sided"].as_array().unwrap().len()
    );
    // Every path carries the fields of docs/impact-format.md's PATH, with one verdict.
    for p in sweep["paths"].as_array().unwrap() {
        for field in [
            "principal",
            "bucket",
            "object",
            "action",
            "verdict",
            "blocking",
            "must_act",
            "intended_by",
        ] {
            assert!(p.get(field).is_some(), "{field} missing in {p}");
        }
        if p["verdict"] == "denied" {
            assert!(!p["must_act"].as_array().unwrap().is_empty(), "{p}");
            assert!(p["fixes_verified"].is_boolean(), "{p}");
        }
    }
}

#[test]
fn each_path_diagnosed_on_its_part_of_the_snapshot_agrees_with_the_whole_snapshot() {
    // GIVEN the organization as one snapshot
    let org = synth::generate(&synth::Params::new(20));
    let mut whole = Snapshot::default();
    for (_, doc) in &org.accounts {
        whole
            .accounts
            .extend(Snapshot::from_value(doc).unwrap().accounts);
    }
    // WHEN swept (on two threads) THEN each path agrees with the whole snapshot
    let s = agrees_with_the_whole(&whole, "the synthetic organization");
    assert!(
        s.summary.denied > 0 && s.summary.allowed > 0,
        "{:?}",
        s.summary
    );
}

#[test]
fn the_example_and_impact_snapshots_agree_with_their_whole_snapshot_too() {
    // The hand-written snapshots: ACLs, object writers of another account, SCPs, grants,
    // managed policies, SSE-S3 objects.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = ["examples", "tests/impact", "tests/scenarios/base"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| !p.to_string_lossy().contains("change-"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    let mut denied = 0;
    for f in files {
        let snap = Snapshot::from_text(&std::fs::read_to_string(&f).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        denied += agrees_with_the_whole(&snap, &f.display().to_string())
            .summary
            .denied;
    }
    assert!(denied > 0);
}

/// Sweeps `whole` on two threads and checks that each path's verdict, blocking codes, fixes
/// and their verification are those of a diagnosis on the whole snapshot.
fn agrees_with_the_whole(whole: &Snapshot, what: &str) -> auditor::sweep::Sweep {
    let s = auditor::sweep::sweep_with(
        whole,
        auditor::sweep::Options {
            threads: 2,
            progress: None,
        },
    );
    for p in &s.paths {
        let arn = format!("arn:aws:s3:::{}/{}", p.bucket, p.object);
        let d = diagnose(
            whole,
            &adhoc_request(&p.principal, "s3:GetObject", &arn).unwrap(),
        );
        assert_eq!(d.verdict, p.verdict, "{what}: {p:?}");
        let codes: Vec<String> = d.blocking().map(|f| f.code.to_string()).collect();
        assert_eq!(codes, p.blocking, "{what}: {p:?}");
        let fixes: Vec<_> = d.blocking().map(|f| f.fix.clone()).collect();
        let swept: Vec<_> = p.findings.iter().map(|f| f.fix.clone()).collect();
        assert_eq!(fixes, swept, "{what}: {p:?}");
        if d.verdict == Verdict::Denied {
            assert_eq!(Some(d.fixes_verified), p.fixes_verified, "{what}: {p:?}");
        }
    }
    s
}

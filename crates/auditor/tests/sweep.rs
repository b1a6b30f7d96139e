//! The sweep over the example snapshots: every intended cross-account read path is found and
//! checked end to end, with its blocking causes and the traps around it.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test or benchmark fails loudly on a bad fixture"
)]

use std::path::Path;

use auditor::diagnose::Verdict;
use auditor::snapshot::Snapshot;
use auditor::sweep::sweep;
use serde_json::{json, Value};

fn load(rel: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn broken_example_has_one_blocked_path_with_both_causes() {
    let raw = load("examples/kc-scenario.json");
    let s = sweep(&Snapshot::from_value(&raw).unwrap());
    assert_eq!(s.paths.len(), 1);
    let p = &s.paths[0];
    assert_eq!(p.principal, "arn:aws:iam::444455556666:role/reader");
    assert_eq!(p.bucket, "doc-example-bucket");
    assert_eq!(p.verdict, Verdict::Denied);
    assert_eq!(
        p.blocking,
        vec!["KEY_POLICY_NO_ALLOW", "IDENTITY_POLICY_NO_ALLOW"]
    );
    assert!(s.has_blocking());
    let key = p
        .findings
        .iter()
        .find(|f| f.code.as_str() == "KEY_POLICY_NO_ALLOW")
        .unwrap();
    assert_eq!(p.must_act, vec!["111122223333", "444455556666"]);
    assert_eq!(p.fixes_verified, Some(true));
    assert_eq!(
        key.principal.as_deref(),
        Some("arn:aws:iam::444455556666:role/reader")
    );
    assert_eq!(key.bucket.as_deref(), Some("doc-example-bucket"));
    assert_eq!(key.fix.as_ref().unwrap().account, "111122223333");
}

#[test]
fn fixed_example_is_clean() {
    let raw = load("examples/kc-scenario-fixed.json");
    let s = sweep(&Snapshot::from_value(&raw).unwrap());
    assert_eq!(s.paths.len(), 1);
    assert_eq!(s.paths[0].verdict, Verdict::Allowed);
    assert!(!s.has_blocking());
}

#[test]
fn listed_objects_are_each_checked_and_aws_managed_objects_flagged() {
    let raw = load("tests/scenarios/base/kc-working.json");
    let s = sweep(&Snapshot::from_value(&raw).unwrap());
    let legacy = s
        .paths
        .iter()
        .find(|p| p.object == "legacy/2019-summary.csv")
        .unwrap();
    assert_eq!(legacy.blocking, vec!["AWS_MANAGED_KEY"]);
    let q1 = s
        .paths
        .iter()
        .find(|p| p.object == "reports/q1.csv")
        .unwrap();
    assert_eq!(q1.verdict, Verdict::Allowed);
}

#[test]
fn account_principal_expands_to_the_accounts_roles_and_key_grants_are_cross_checked() {
    let mut raw = load("examples/kc-scenario-fixed.json");
    // The bucket policy delegates to account B instead of naming the role.
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "DelegateToB", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::doc-example-bucket/*"}]});
    raw["accounts"]["111122223333"]["s3"]["doc-example-bucket"]["policy"] = policy;
    let s = sweep(&Snapshot::from_value(&raw).unwrap());
    assert!(
        s.paths
            .iter()
            .any(|p| p.principal == "arn:aws:iam::444455556666:role/reader"
                && p.verdict == Verdict::Allowed),
        "{:?}",
        s.paths
    );

    // Now the bucket grants a third account and the key still names B: both are reported.
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::777788889999:role/partner"}, "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::doc-example-bucket/reports/*"}]});
    raw["accounts"]["111122223333"]["s3"]["doc-example-bucket"]["policy"] = policy;
    let s = sweep(&Snapshot::from_value(&raw).unwrap());
    let partner = s
        .paths
        .iter()
        .find(|p| p.principal.contains("777788889999"))
        .unwrap();
    assert_eq!(partner.verdict, Verdict::Denied);
    assert!(partner
        .blocking
        .contains(&"KEY_POLICY_NO_ALLOW".to_string()));
    assert!(s
        .observations
        .iter()
        .any(|o| o.kind == "KEY_GRANT_WITHOUT_BUCKET_GRANT"
            && o.explanation.contains("444455556666")));
}

#[test]
fn a_reader_the_bucket_policy_leaves_out_is_reported_when_its_iam_and_the_key_name_the_bucket() {
    // GIVEN the working setup, whose key policy and the reader's IAM name the bucket, with a
    // bucket policy that grants only a partner (the most common break: the bucket grant
    // was forgotten)
    let mut raw = load("examples/kc-scenario-fixed.json");
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Partner", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::777788889999:role/partner"}, "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::doc-example-bucket/reports/*"}]});
    raw["accounts"]["111122223333"]["s3"]["doc-example-bucket"]["policy"] = policy;
    // WHEN swept
    let s = sweep(&Snapshot::from_value(&raw).unwrap());
    // THEN the reader's path is checked and denied by the bucket policy alone, intended by
    // the key policy and the reader's identity policy, and the bucket owner must act
    let reader = s
        .paths
        .iter()
        .find(|p| p.principal == "arn:aws:iam::444455556666:role/reader")
        .unwrap_or_else(|| panic!("the reader's path is missing: {:?}", s.paths));
    assert_eq!(reader.verdict, Verdict::Denied);
    assert_eq!(reader.blocking, vec!["BUCKET_POLICY_NO_ALLOW"]);
    assert_eq!(reader.must_act, vec!["111122223333"]);
    assert_eq!(reader.object, "reports/q1.csv");
    assert_eq!(reader.action, "s3:GetObject");
    assert!(
        reader
            .intended_by
            .iter()
            .any(|b| b.contains("AllowReaderDecryptViaS3"))
            && reader
                .intended_by
                .iter()
                .any(|b| b.contains("read-doc-example-bucket")),
        "{:?}",
        reader.intended_by
    );
    assert_eq!(reader.fixes_verified, Some(true));
    assert_eq!(s.summary.denied, 2, "{:?}", s.paths);

    // AND with the key grant gone too, only the reader's IAM asks for the bucket: the path
    // is one-sided, counted and not reported as broken
    raw["accounts"]["111122223333"]["kms"]
        ["arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"]["policy"]
        ["Statement"]
        .as_array_mut()
        .unwrap()
        .truncate(1);
    let s = sweep(&Snapshot::from_value(&raw).unwrap());
    assert!(
        s.paths
            .iter()
            .all(|p| !p.principal.contains("444455556666")),
        "{:?}",
        s.paths
    );
    assert_eq!(s.summary.identity_only, 1, "{:?}", s.summary);
}

#[test]
fn distinct_fixes_are_applied_once_and_threads_give_the_same_sweep() {
    // GIVEN the broken knowledge-center setup with several listed objects under one key,
    // all read by the same reader (one fix for all of them)
    let mut raw2 = load("tests/scenarios/base/kc-working.json");
    let key = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let objects = &mut raw2["accounts"]["111122223333"]["s3"]["doc-example-bucket"]["objects"];
    objects["reports/q2.csv"] = objects["reports/q1.csv"].clone();
    raw2["accounts"]["111122223333"]["kms"][key]["metadata"]["KeyState"] = json!("Disabled");
    raw2["accounts"]["111122223333"]["kms"][key]["metadata"]["Enabled"] = json!(false);
    let snap = Snapshot::from_value(&raw2).unwrap();
    let one = sweep(&snap);
    let denied: Vec<_> = one
        .paths
        .iter()
        .filter(|p| p.blocking.contains(&"KEY_NOT_USABLE".to_string()))
        .collect();
    assert!(denied.len() >= 2, "{:?}", one.paths);
    // THEN the paths that share the fix (enable the key) applied it once between them
    assert!(
        one.summary.distinct_fixes < one.summary.denied,
        "{:?}",
        one.summary
    );
    // AND two threads give exactly the same result
    let two = auditor::sweep::sweep_with(
        &snap,
        auditor::sweep::Options {
            threads: 2,
            progress: None,
        },
    );
    assert_eq!(one, two);
}

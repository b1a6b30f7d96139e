#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use serde_json::{json, Value};

use super::*;
use crate::diagnose::testing::working;
use crate::impact::{apply_change, impact};
use crate::report::sns::{impact_messages, impact_notification};

const A: &str = "111122223333";
const B: &str = "444455556666";
const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

/// The working setup with `extra` more roles in B like `reader`, and the bucket policy and
/// key policy naming B's account (so every role of B whose own policies read the bucket has
/// a path).
fn many_readers(extra: usize) -> Snapshot {
    let (_, mut raw) = working();
    let roles = raw["accounts"][B]["iam"]["RoleDetailList"]
        .as_array_mut()
        .unwrap();
    let reader = roles[0].clone();
    for i in 0..extra {
        let mut r = reader.clone();
        r["RoleName"] = json!(format!("reader{i:03}"));
        r["RoleId"] = json!(format!("AROA4444EXAMPLE{i:06}"));
        r["Arn"] = json!(format!("arn:aws:iam::{B}:role/reader{i:03}"));
        roles.push(r);
    }
    let root = json!(format!("arn:aws:iam::{B}:root"));
    let bucket = &mut raw["accounts"][A]["s3"]["doc-example-bucket"];
    bucket["policy"]["Statement"][0]["Principal"]["AWS"] = root.clone();
    let key = &mut raw["accounts"][A]["kms"][format!("arn:aws:kms:us-west-2:{A}:key/{KEY_ID}")];
    key["policy"]["Statement"][1]["Principal"]["AWS"] = root;
    Snapshot::from_value(&raw).expect("snapshot")
}

/// The key administrator drops the statement for B.
fn key_policy_edit() -> Value {
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Enable IAM User Permissions", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{A}:root")}, "Action": "kms:*", "Resource": "*"}]});
    json!({
        "eventSource": "kms.amazonaws.com",
        "eventName": "PutKeyPolicy",
        "awsRegion": "us-west-2",
        "recipientAccountId": A,
        "eventID": "e-500",
        "userIdentity": {"arn": format!("arn:aws:sts::{A}:assumed-role/admin/a"), "accountId": A},
        "requestParameters": {"keyId": KEY_ID, "policyName": "default", "policy": policy.to_string()},
    })
}

fn change_of(before: &Snapshot, ev: &Value) -> (Snapshot, Impact) {
    let (after, change) = apply_change(before, ev).expect("applies");
    let mut i = impact(before, &after);
    i.change = Some(change);
    (after, i)
}

/// `p` with role `reader` renamed `to` everywhere it is named: the principal, and each fix's
/// statement, patched policy, command and edits (what the diagnosis of `to` proposes).
fn renamed(p: &ImpactPath, to: &str) -> ImpactPath {
    let from = format!("arn:aws:iam::{B}:role/reader\"");
    let into = format!("arn:aws:iam::{B}:role/{to}\"");
    let swap = |v: &Value| -> Value {
        serde_json::from_str(&v.to_string().replace(&from, &into)).unwrap()
    };
    let mut out = p.clone();
    out.principal = format!("arn:aws:iam::{B}:role/{to}");
    for f in &mut out.findings {
        let fix = f.fix.as_mut().unwrap();
        fix.statement = fix.statement.as_ref().map(swap);
        fix.patched_policy = fix.patched_policy.as_ref().map(swap);
        fix.cli = fix.cli.replace(&from, &into);
        for e in &mut fix.edits {
            if let crate::diagnose::edit::Edit::ReplacePolicy { document, .. } = e {
                *document = swap(document);
            }
        }
    }
    out
}

#[test]
fn paths_broken_by_one_key_policy_edit_are_one_group_with_one_fix() {
    // GIVEN four principals of B reading the bucket (`reader`, two copies, and alice
    // through her group), allowed by a key policy statement naming B
    let before = many_readers(2);
    // WHEN the key administrator drops that statement
    let (after, i) = change_of(&before, &key_policy_edit());
    assert_eq!(i.broken.len(), 4, "{:?}", i.broken);
    // THEN one group, one fix (a statement naming the four) verified on each path
    let g = group_paths(&i, &after, MAX_GROUPS);
    assert_eq!(g.groups.len(), 1);
    let group = &g.groups[0];
    assert!(group.fix_combined, "{:?}", group.findings);
    assert_eq!(group.fix_restores, Some(4));
    let change = i.change.clone().unwrap();
    let messages = impact_messages(&i, &after, &change);
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].notification.subject,
        "BROKEN KEY_POLICY_NO_ALLOW | fix: 111122223333 | doc-example-bucket (4 paths) | PutKeyPolicy"
    );
}

#[test]
fn five_hundred_paths_broken_by_one_key_policy_edit_are_one_message() {
    // GIVEN 500 principals of B reading the bucket, allowed by a key policy statement naming
    // B, and the key administrator dropping it: the four paths diagnosed as above, and 496
    // more roles like `reader` whose diagnoses are `reader`'s with the role renamed (the
    // diagnosis of 500 paths is the impact tests' business; this is the grouping's)
    let (after, _) = apply_change(&many_readers(498), &key_policy_edit()).expect("applies");
    let mut i = change_of(&many_readers(2), &key_policy_edit()).1;
    let small = i.clone();
    let reader = small
        .broken
        .iter()
        .find(|p| p.principal.ends_with(":role/reader"))
        .unwrap();
    let mut broken = small.broken.clone();
    broken.extend((2..498).map(|n| renamed(reader, &format!("reader{n:03}"))));
    i.broken = broken;
    assert_eq!(i.broken.len(), 500);
    // THEN the 500 broken paths are one group, with one fix restoring every one of them
    let g = group_paths(&i, &after, MAX_GROUPS);
    assert_eq!(
        g.groups.len(),
        1,
        "{:?}",
        g.groups
            .iter()
            .map(|g| (&g.codes, g.paths.len()))
            .collect::<Vec<_>>()
    );
    assert!(g.beyond.is_empty());
    let group = &g.groups[0];
    assert_eq!(group.kind, ImpactKind::Broken);
    assert_eq!(group.codes, ["KEY_POLICY_NO_ALLOW"]);
    assert_eq!(group.must_act, [A]);
    assert_eq!(group.paths.len(), 500);
    assert!(group.fix_combined, "{:?}", group.findings);
    assert_eq!(group.fix_restores, Some(500));
    let fix = group.findings[0].fix.as_ref().expect("a fix");
    let principals = fix.statement.as_ref().unwrap()["Principal"]["AWS"]
        .as_array()
        .expect("one statement listing the principals")
        .len();
    assert_eq!(principals, 500);
    // AND one message, naming 10 paths and counting 490
    let change = i.change.clone().unwrap();
    let messages = impact_messages(&i, &after, &change);
    assert_eq!(messages.len(), 1);
    let n = &messages[0].notification;
    assert_eq!(messages[0].paths.len(), 500);
    assert_eq!(
        n.subject,
        "BROKEN KEY_POLICY_NO_ALLOW | fix: 111122223333 | doc-example-bucket (500 paths) | PutKeyPolicy"
    );
    let body: Value = serde_json::from_str(&n.message).expect("JSON");
    assert_eq!(body["kind"], "impact");
    assert_eq!(body["impact"], "broken");
    assert_eq!(body["path_count"], 500);
    assert_eq!(body["principal_account"], B);
    assert_eq!(body["resource_account"], A);
    assert_eq!(body["group"]["paths"].as_array().unwrap().len(), 10);
    assert_eq!(body["group"]["paths_not_named"], 490);
    assert_eq!(body["group"]["fix_restores"], 500);
    let text: Vec<&str> = body["text"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let named = text.iter().filter(|l| l.contains(" -> s3://")).count();
    assert_eq!(named, 10, "{text:#?}");
    assert!(text.iter().any(|l| l.contains("and 490 more")), "{text:#?}");
    assert!(
        text.iter()
            .any(|l| l.contains("restores all 500 paths (verified")),
        "{text:#?}"
    );
    assert!(n.size() < crate::report::sns::SNS_MAX_BYTES);
    assert!(n.attributes.len() <= 10);
}

/// A path moved `kind`-wise with `codes` blocking after (broken) or before (fixed).
fn path(principal: &str, kind: ImpactKind, codes: &[&str], must_act: &[&str]) -> ImpactPath {
    let codes: Vec<String> = codes.iter().map(|c| (*c).to_owned()).collect();
    let (vb, va) = match kind {
        ImpactKind::Broken => (Verdict::Allowed, Verdict::Denied),
        _ => (Verdict::Denied, Verdict::Allowed),
    };
    ImpactPath {
        principal: format!("arn:aws:iam::{B}:role/{principal}"),
        bucket: "doc-example-bucket".into(),
        object: "reports/q1.csv".into(),
        action: "s3:GetObject".into(),
        verdict_before: vb,
        verdict_after: va,
        blocking: if kind == ImpactKind::Broken {
            codes.clone()
        } else {
            Vec::new()
        },
        blocking_before: if kind == ImpactKind::Broken {
            Vec::new()
        } else {
            codes
        },
        must_act: must_act.iter().map(|a| (*a).to_owned()).collect(),
        intended_by: Vec::new(),
        findings: Vec::new(),
        fixes_verified: (kind == ImpactKind::Broken).then_some(false),
        fixes_unverified: None,
        error: None,
        probe_key: "reports/q1.csv".into(),
    }
}

fn impact_of(broken: Vec<ImpactPath>, fixed: Vec<ImpactPath>) -> Impact {
    Impact {
        change: None,
        broken,
        fixed,
        opened: Vec::new(),
        undecided: Vec::new(),
        unchanged: 0,
    }
}

#[test]
fn two_distinct_causes_are_two_groups_and_fixed_is_apart_from_broken() {
    let (snap, _) = working();
    let i = impact_of(
        vec![
            path("r1", ImpactKind::Broken, &["KEY_POLICY_NO_ALLOW"], &[A]),
            path("r2", ImpactKind::Broken, &["IAM_NO_ALLOW"], &[B]),
            path("r3", ImpactKind::Broken, &["KEY_POLICY_NO_ALLOW"], &[A]),
        ],
        vec![path("r4", ImpactKind::Fixed, &["KEY_POLICY_NO_ALLOW"], &[])],
    );
    let g = group_paths(&i, &snap, MAX_GROUPS);
    let shape: Vec<(ImpactKind, Vec<String>, usize)> = g
        .groups
        .iter()
        .map(|g| (g.kind, g.codes.clone(), g.paths.len()))
        .collect();
    // Broken first, the larger group first; the fixed path apart from the broken ones with
    // the same code.
    assert_eq!(
        shape,
        vec![
            (
                ImpactKind::Broken,
                vec!["KEY_POLICY_NO_ALLOW".to_owned()],
                2
            ),
            (ImpactKind::Broken, vec!["IAM_NO_ALLOW".to_owned()], 1),
            (ImpactKind::Fixed, vec!["KEY_POLICY_NO_ALLOW".to_owned()], 1),
        ]
    );
    let change = crate::impact::ChangeRef {
        event_source: "kms.amazonaws.com".into(),
        event_name: "PutKeyPolicy".into(),
        event_id: Some("e-2".into()),
        event_time: None,
        account: Some(A.into()),
        actor: None,
        changed: "key policy".into(),
    };
    let messages = impact_messages(&i, &snap, &change);
    assert_eq!(messages.len(), 3);
    let kinds: Vec<Option<ImpactKind>> = messages.iter().map(|m| m.impact).collect();
    assert_eq!(
        kinds,
        [
            Some(ImpactKind::Broken),
            Some(ImpactKind::Broken),
            Some(ImpactKind::Fixed)
        ]
    );
    // A group of one path is the one-path message, unchanged.
    let single = &i.broken[1];
    assert_eq!(
        messages[1].notification,
        impact_notification(ImpactKind::Broken, single, &change, Some(B), Some(A))
    );
}

#[test]
fn groups_beyond_the_cap_are_one_summary_counting_them() {
    let (snap, _) = working();
    // 13 causes (each its own acting account), 2 paths each.
    let mut broken = Vec::new();
    for i in 0..13 {
        let acct = format!("{:012}", 100_000_000_000_u64 + i);
        for r in ["a", "b"] {
            broken.push(path(
                &format!("{r}{i}"),
                ImpactKind::Broken,
                &["KEY_POLICY_NO_ALLOW"],
                &[&acct],
            ));
        }
    }
    let i = impact_of(broken, Vec::new());
    let change = crate::impact::ChangeRef {
        event_source: "kms.amazonaws.com".into(),
        event_name: "PutKeyPolicy".into(),
        event_id: None,
        event_time: None,
        account: Some(A.into()),
        actor: None,
        changed: "key policy".into(),
    };
    let messages = impact_messages(&i, &snap, &change);
    assert_eq!(messages.len(), MAX_GROUPS + 1);
    let summary = messages.last().unwrap();
    assert_eq!(summary.impact, None);
    assert_eq!(summary.paths.len(), 6);
    assert_eq!(
        summary.notification.subject,
        "IMPACT SUMMARY: 6 more paths in 3 groups | PutKeyPolicy"
    );
    let body: Value = serde_json::from_str(&summary.notification.message).unwrap();
    assert_eq!(body["kind"], "impact");
    assert_eq!(body["impact"], "summary");
    assert_eq!(body["groups"].as_array().unwrap().len(), 3);
    let counted: usize = messages.iter().map(|m| m.paths.len()).sum();
    assert_eq!(counted, 26, "every path is in exactly one message");
}

#[test]
fn a_subject_puts_the_bucket_before_the_change_and_cuts_cleanly() {
    // An SCP path: a long acting-account label and a long bucket name.
    let mut p = path(
        "a-rather-long-reader-role-name",
        ImpactKind::Broken,
        &["SCP_EXPLICIT_DENY"],
        &[],
    );
    p.must_act = vec![format!("management account of the organization of {B}")];
    p.bucket = "s3ka-reports-quarterly-finance-exports-2026".into();
    p.object = "reports/2026/q1/summary.csv".into();
    let change = crate::impact::ChangeRef {
        event_source: "organizations.amazonaws.com".into(),
        event_name: "AttachPolicy".into(),
        event_id: None,
        event_time: None,
        account: Some(A.into()),
        actor: None,
        changed: "organization policy".into(),
    };
    let n = impact_notification(ImpactKind::Broken, &p, &change, Some(B), None);
    // The object and the principal give way; verdict, code, acting account, bucket, change.
    assert_eq!(
        n.subject,
        "BROKEN SCP_EXPLICIT_DENY | fix: org mgmt of 444455556666 | s3ka-reports-quarterly... | AttachPolicy"
    );
    assert!(n.subject.len() < 100, "{}", n.subject);
    // A usual bucket name stays whole, with the object's prefix.
    p.bucket = "s3ka-reports-7".into();
    p.object = "q1/summary.csv".into();
    let n = impact_notification(ImpactKind::Broken, &p, &change, Some(B), None);
    assert_eq!(
        n.subject,
        "BROKEN SCP_EXPLICIT_DENY | fix: org mgmt of 444455556666 | s3ka-reports-7/q1/ | AttachPolicy"
    );
}

use serde_json::{json, Value};

use super::*;
use crate::diagnose::testing::working;

const KEY: &str = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const ROLE: &str = "arn:aws:iam::444455556666:role/reader";

/// A CloudTrail record of `event_name` from `source` with `params`.
fn record(source: &str, event_name: &str, account: &str, params: Value) -> Value {
    json!({
        "eventSource": format!("{source}.amazonaws.com"),
        "eventName": event_name,
        "awsRegion": "us-west-2",
        "recipientAccountId": account,
        "eventID": "e-1",
        "userIdentity": {"arn": "arn:aws:sts::111122223333:assumed-role/admin/a", "accountId": account},
        "requestParameters": params,
    })
}

fn key_policy_without_reader() -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Sid": "Enable IAM User Permissions", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}]})
    .to_string()
}

#[test]
fn the_working_setup_has_the_reader_path_and_no_change_changes_nothing() {
    let (snap, _) = working();
    let paths = paths::read_paths(&snap);
    assert!(
        paths
            .iter()
            .any(|p| p.principal == ROLE && p.bucket.name == "doc-example-bucket"),
        "{paths:?}"
    );
    let i = impact(&snap, &snap);
    assert!(i.unchanged >= 1);
    assert!(i.broken.is_empty() && i.fixed.is_empty() && i.opened.is_empty());
    assert!(!i.breaks());
}

#[test]
fn a_key_policy_edit_breaks_the_read_and_names_who_must_act() {
    let (snap, _) = working();
    let ev = record(
        "kms",
        "PutKeyPolicy",
        "111122223333",
        json!({"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "policyName": "default", "policy": key_policy_without_reader()}),
    );
    let (after, change) = apply_change(&snap, &ev).expect("applies");
    assert_eq!(change.changed, format!("key policy of {KEY}"));
    let i = impact(&snap, &after);
    let broken = i
        .broken
        .iter()
        .find(|p| p.principal == ROLE)
        .expect("the reader's path breaks");
    assert_eq!(broken.verdict_before, Verdict::Allowed);
    assert_eq!(broken.verdict_after, Verdict::Denied);
    assert!(
        broken.blocking.contains(&"KEY_POLICY_NO_ALLOW".to_owned()),
        "{broken:?}"
    );
    assert_eq!(broken.must_act, vec!["111122223333".to_owned()]);
    assert_eq!(broken.fixes_verified, Some(true));
    assert!(broken.findings.iter().all(|f| f.fix.is_some()));
}

#[test]
fn the_envelope_and_the_bare_record_apply_the_same_change() {
    let (snap, _) = working();
    let bare = record(
        "s3",
        "DeleteBucketPolicy",
        "111122223333",
        json!({"bucketName": "doc-example-bucket"}),
    );
    let envelope = json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.s3", "detail": bare.clone()});
    let (a, _) = apply_change(&snap, &bare).expect("bare");
    let (b, _) = apply_change(&snap, &envelope).expect("envelope");
    assert_eq!(a, b);
    assert!(a
        .bucket("doc-example-bucket")
        .is_some_and(|(_, b)| b.policy.is_none()));
}

#[test]
fn failed_and_unsupported_calls_are_refused_with_their_path() {
    let (snap, _) = working();
    let mut failed = record(
        "s3",
        "DeleteBucketPolicy",
        "111122223333",
        json!({"bucketName": "doc-example-bucket"}),
    );
    failed["errorCode"] = json!("AccessDenied");
    let err = apply_change(&snap, &failed).expect_err("failed call");
    assert_eq!(err.path(), "errorCode");
    assert!(err.message().contains("did not apply"), "{err}");

    let other = record("s3", "PutBucketTagging", "111122223333", json!({}));
    let err = apply_change(&snap, &other).expect_err("unsupported");
    assert_eq!(err.path(), "eventName");
    assert!(err.message().contains("kms:RevokeGrant"), "{err}");

    let missing = record(
        "iam",
        "AttachRolePolicy",
        "444455556666",
        json!({"roleName": "reader", "policyArn": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"}),
    );
    let err = apply_change(&snap, &missing).expect_err("no document");
    assert_eq!(err.path(), "requestParameters.policyArn");
    assert!(err.message().contains("is not in the snapshot"), "{err}");

    let bad_doc = record(
        "iam",
        "PutRolePolicy",
        "444455556666",
        json!({"roleName": "reader", "policyName": "p", "policyDocument": "{\"Statement\": [], \"Statement\": []}"}),
    );
    let err = apply_change(&snap, &bad_doc).expect_err("duplicate key");
    assert!(
        err.path().starts_with("requestParameters.policyDocument"),
        "{err}"
    );
}

#[test]
fn a_new_grant_to_a_principal_the_snapshot_cannot_see_is_undecided_not_opened() {
    let (snap, _) = working();
    let mut after = snap.clone();
    // Account 777788889999 gets an object read in the bucket policy and a grant on the key.
    let mut doc = after
        .bucket("doc-example-bucket")
        .and_then(|(_, b)| b.policy.as_ref())
        .map(|p| p.document.clone())
        .expect("bucket policy");
    if let Some(list) = doc["Statement"].as_array_mut() {
        list.push(json!({"Sid": "Partner", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::777788889999:role/partner"},
            "Action": "s3:GetObject", "Resource": "arn:aws:s3:::doc-example-bucket/*"}));
    }
    crate::diagnose::edit::Edit::PutBucketPolicy {
        account: "111122223333".into(),
        bucket: "doc-example-bucket".into(),
        document: doc,
    }
    .apply(&mut after)
    .expect("applies");
    let grant = crate::snapshot::KeyGrant::new(json!({"GrantId": "g-partner", "KeyId": KEY,
        "GranteePrincipal": "arn:aws:iam::777788889999:role/partner", "Operations": ["Decrypt"]}))
    .expect("grant");
    after
        .accounts
        .get_mut("111122223333")
        .and_then(|a| a.kms.get_mut(KEY))
        .expect("key")
        .grants
        .push(grant);
    let i = impact(&snap, &after);
    // The partner's own account is not in the snapshot, so its side is unknown: never
    // reported as opened without evidence.
    assert!(i.opened.is_empty(), "{i:?}");
    let partner: Vec<_> = i
        .undecided
        .iter()
        .filter(|p| p.principal.contains("777788889999"))
        .collect();
    assert_eq!(partner.len(), 1, "{i:?}");
    assert_eq!(partner[0].verdict_before, Verdict::Denied);
    assert_eq!(partner[0].verdict_after, Verdict::Unknown);
    assert!(partner[0]
        .intended_by
        .iter()
        .all(|s| s.ends_with("(after only)")));
}

#[test]
fn scheduling_the_key_for_deletion_breaks_the_read() {
    let (snap, _) = working();
    let ev = record(
        "kms",
        "ScheduleKeyDeletion",
        "111122223333",
        json!({"keyId": KEY, "pendingWindowInDays": 30}),
    );
    let (after, change) = apply_change(&snap, &ev).expect("applies");
    assert!(change.changed.ends_with("(PendingDeletion)"), "{change:?}");
    let i = impact(&snap, &after);
    let broken = i
        .broken
        .iter()
        .find(|p| p.principal == ROLE && p.object == "reports/q1.csv")
        .expect("the reader's path breaks");
    assert!(
        broken.blocking.contains(&"KEY_NOT_USABLE".to_owned()),
        "{broken:?}"
    );
}

#[test]
fn a_retired_grant_is_found_through_additional_event_data_and_resources() {
    let (mut snap, _) = working();
    let grant = crate::snapshot::KeyGrant::new(json!({"GrantId": "g-9", "KeyId": KEY,
        "GranteePrincipal": ROLE, "Operations": ["Decrypt"]}))
    .expect("grant");
    snap.accounts
        .get_mut("111122223333")
        .and_then(|a| a.kms.get_mut(KEY))
        .expect("key")
        .grants
        .push(grant);
    // ct-retire-grant: no requestParameters; the grant id in additionalEventData, the key in
    // resources.
    let mut ev = record("kms", "RetireGrant", "111122223333", Value::Null);
    ev["additionalEventData"] = json!({"grantId": "g-9"});
    ev["resources"] = json!([{"ARN": KEY, "type": "AWS::KMS::Key", "accountId": "111122223333"}]);
    let (after, change) = apply_change(&snap, &ev).expect("applies");
    assert_eq!(change.changed, format!("grant g-9 of key {KEY}"));
    let grants = |s: &Snapshot| s.accounts["111122223333"].kms[KEY].grants.len();
    assert_eq!(grants(&after), grants(&snap) - 1);
}

#[test]
fn deleting_the_readers_inline_policy_breaks_its_reads_and_put_user_policy_adds_one() {
    let (snap, _) = working();
    let ev = record(
        "iam",
        "DeleteRolePolicy",
        "444455556666",
        json!({"roleName": "reader", "policyName": "read-doc-example-bucket"}),
    );
    let i = impact_of_change(&snap, &ev).expect("applies");
    assert_eq!(
        i.change.as_ref().map(|c| c.changed.as_str()),
        Some("inline policy read-doc-example-bucket of role reader")
    );
    let broken = i
        .broken
        .iter()
        .find(|p| p.principal == ROLE && p.object == "reports/q1.csv")
        .expect("the reader's path breaks");
    assert!(
        broken
            .blocking
            .iter()
            .all(|c| c == "IDENTITY_POLICY_NO_ALLOW"),
        "{broken:?}"
    );
    assert_eq!(broken.must_act, vec!["444455556666".to_owned()]);
    assert!(broken
        .intended_by
        .iter()
        .any(|s| s.ends_with("(before only)")));

    let ev = record(
        "iam",
        "PutUserPolicy",
        "444455556666",
        json!({"userName": "alice", "policyName": "deny-all",
            "policyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\"}]}"}),
    );
    let (after, _) = apply_change(&snap, &ev).expect("applies");
    let alice = |s: &Snapshot| {
        s.accounts["444455556666"]
            .iam
            .as_ref()
            .and_then(|i| i.users.iter().find(|u| u.name == "alice"))
            .map(|u| u.inline_policies.len())
    };
    assert_eq!(alice(&after), alice(&snap).map(|n| n + 1));
}

#[test]
fn oversized_change_records_are_refused() {
    // A change record over 256 KB cannot have come from EventBridge; nor can a bucket policy
    // over 20 KB have been stored by S3.
    let (snap, _) = working();
    let mut big = record(
        "s3",
        "DeleteBucketPolicy",
        "111122223333",
        json!({"bucketName": "doc-example-bucket"}),
    );
    big["requestParameters"]["padding"] = json!("x".repeat(crate::limits::MAX_EVENT_BYTES));
    let err = apply_change(&snap, &big).expect_err("oversized record");
    assert_eq!(err.path(), "$");
    assert!(err.message().contains("262,144 bytes (256 KB)"), "{err}");
    let envelope = json!({"detail-type": "AWS API Call via CloudTrail", "detail": big});
    let err = apply_change(&snap, &envelope).expect_err("oversized envelope");
    assert_eq!(err.path(), "$");
    assert!(
        err.message()
            .starts_with("an EventBridge event of at least"),
        "{err}"
    );

    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": "s3:GetObject",
        "Resource": format!("arn:aws:s3:::doc-example-bucket/{}", "x".repeat(20_480))}]});
    let put = record(
        "s3",
        "PutBucketPolicy",
        "111122223333",
        json!({"bucketName": "doc-example-bucket", "bucketPolicy": policy}),
    );
    let err = apply_change(&snap, &put).expect_err("oversized bucket policy");
    assert!(
        err.message()
            .contains("over the 20,480 bytes AWS allows for a bucket policy"),
        "{err}"
    );
}

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

// ---------------------------------------------------------------------------------------------
// Live state: evaluate, compare with stored verdicts, index updates, snapshot merge, scope
// ---------------------------------------------------------------------------------------------

const A: &str = "111122223333";
const B: &str = "444455556666";

fn key_policy_change() -> Value {
    record(
        "kms",
        "PutKeyPolicy",
        A,
        json!({"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "policyName": "default", "policy": key_policy_without_reader()}),
    )
}

fn change_event(v: &Value) -> ChangeEvent {
    match crate::event::parse_events(v).expect("reads").pop() {
        Some(crate::event::EventOutcome::Change(c)) => *c,
        other => panic!("{other:?}"),
    }
}

fn index_of(account: &str, verdicts: &[state::PathVerdict]) -> state::PathIndex {
    let mut index = state::PathIndex::new(account);
    index.apply(verdicts, &Default::default(), Some("seed"));
    index
}

#[test]
fn stored_verdicts_decide_what_a_change_publishes() {
    let (snap, _) = working();
    let verdicts = state::evaluate(&snap);
    let reader = verdicts
        .iter()
        .find(|p| p.principal == ROLE && p.object == "reports/q1.csv")
        .expect("the reader's path is evaluated");
    assert_eq!(reader.verdict, Verdict::Allowed);
    assert_eq!(reader.principal_account.as_deref(), Some(B));
    assert_eq!(reader.resource_account.as_deref(), Some(A));
    let index = index_of(A, &verdicts);
    assert!(index.paths.iter().all(|p| p.touches(A)), "{index:?}");

    let (after, _) = apply_change(&snap, &key_policy_change()).expect("applies");
    let first = state::compare(&index, impact(&snap, &after));
    assert_eq!(first.broken.len(), 1, "{first:?}");
    assert_eq!(first.broken[0].verdict_before, Verdict::Allowed);

    // Once the index holds the new verdicts, the same comparison publishes nothing.
    let mut updated = index.clone();
    updated.apply(&state::evaluate(&after), &Default::default(), Some("e-1"));
    assert_eq!(updated.updated_by.as_deref(), Some("e-1"));
    let again = state::compare(&updated, impact(&snap, &after));
    assert!(again.broken.is_empty(), "{again:?}");
    assert_eq!(again.unchanged, first.unchanged + 1);
}

#[test]
fn index_updates_commute_and_drop_what_is_gone() {
    let (snap, _) = working();
    let verdicts = state::evaluate(&snap);
    let (one, two) = verdicts.split_at(1);
    let none = Default::default();
    let mut x = state::PathIndex::new(A);
    x.apply(one, &none, None);
    x.apply(two, &none, None);
    let mut y = state::PathIndex::new(A);
    y.apply(two, &none, None);
    y.apply(one, &none, None);
    assert_eq!(x.paths, y.paths, "two writers' updates, in either order");
    let gone = std::collections::BTreeSet::from([one[0].id()]);
    x.apply(&[], &gone, None);
    assert!(x.get(&one[0].id()).is_none());
    assert_eq!(x.paths.len(), y.paths.len() - 1);
    // Paths that do not touch the index's account are not recorded there.
    let mut other = state::PathIndex::new("999988887777");
    other.apply(&verdicts, &none, None);
    assert!(other.paths.is_empty());
}

#[test]
fn a_stored_index_round_trips_and_a_bad_one_is_named() {
    let (snap, _) = working();
    let index = index_of(A, &state::evaluate(&snap));
    let text = index.to_text();
    assert_eq!(state::PathIndex::parse(&text, "paths/x.json"), Ok(index));
    let newer = text.replacen("\"format\": 1", "\"format\": 99", 1);
    let e = state::PathIndex::parse(&newer, "paths/x.json").expect_err("newer format");
    assert!(
        e.to_string().starts_with("paths/x.json: $.format: 99"),
        "{e}"
    );
    let e = state::PathIndex::parse("{\"paths\": 3}", "paths/y.json").expect_err("garbage");
    assert!(
        e.to_string().starts_with("paths/y.json: not a path index"),
        "{e}"
    );
}

#[test]
fn fresh_reads_replace_stored_parts_and_keep_listed_objects() {
    let (snap, _) = working();
    let (mut fresh, _) = apply_change(&snap, &key_policy_change()).expect("applies");
    // The fresh read of the bucket listed no object.
    for account in fresh.accounts.values_mut() {
        for bucket in account.s3.values_mut() {
            bucket.objects.clear();
        }
    }
    let mut merged = snap.clone();
    state::merge_snapshot(&mut merged, &fresh);
    let key = |s: &crate::snapshot::Snapshot| {
        s.accounts[A].kms[KEY]
            .policy
            .as_ref()
            .map(|p| p.policy.statements.len())
    };
    assert_eq!(key(&merged), key(&fresh));
    assert_ne!(key(&merged), key(&snap));
    assert_eq!(
        merged.accounts[A].s3["doc-example-bucket"].objects.len(),
        snap.accounts[A].s3["doc-example-bucket"].objects.len()
    );
    // Laying the same reads over again changes nothing.
    let mut twice = merged.clone();
    state::merge_snapshot(&mut twice, &fresh);
    assert_eq!(twice, merged);
}

#[test]
fn the_scope_of_a_change_is_the_paths_it_can_alter() {
    use scope::{scope, Probe};
    let (snap, _) = working();
    let verdicts = state::evaluate(&snap);
    let reader_paths = |s: &scope::Scope| s.paths.iter().filter(|p| p.principal == ROLE).count();
    // A key → the buckets that use it.
    let s = scope(&change_event(&key_policy_change()), &snap, &verdicts);
    assert!(reader_paths(&s) >= 1, "{s:?}");
    assert!(s.paths.iter().all(|p| p.bucket == "doc-example-bucket"));
    // The reader role → its paths; another role → nothing.
    let role = |name: &str| {
        change_event(&record(
            "iam",
            "PutRolePolicy",
            B,
            json!({"roleName": name, "policyName": "p", "policyDocument": "{}"}),
        ))
    };
    let s = scope(&role("reader"), &snap, &verdicts);
    assert!(reader_paths(&s) >= 1 && s.paths.iter().all(|p| p.principal == ROLE));
    let s = scope(&role("unrelated"), &snap, &verdicts);
    assert!(s.paths.is_empty() && s.probes.is_empty(), "{s:?}");
    // A managed policy → the principals it is attached to.
    let policy = change_event(&record(
        "iam",
        "SetDefaultPolicyVersion",
        B,
        json!({"policyArn": "arn:aws:iam::444455556666:policy/reader-base", "versionId": "v2"}),
    ));
    let s = scope(&policy, &snap, &verdicts);
    assert!(reader_paths(&s) >= 1, "{s:?}");
    // A bucket without stored paths → the bucket, read as its owner.
    let bucket = change_event(&record(
        "s3",
        "PutBucketPolicy",
        A,
        json!({"bucketName": "doc-example-bucket", "bucketPolicy": {}}),
    ));
    let s = scope(&bucket, &snap, &[]);
    assert_eq!(
        s.probes.into_iter().collect::<Vec<Probe>>(),
        vec![scope::bucket_probe(
            A,
            "doc-example-bucket",
            Some("us-west-2")
        )]
    );
    // An SCP → every stored path.
    let scp = change_event(&record(
        "organizations",
        "UpdatePolicy",
        A,
        json!({"policyId": "p-1"}),
    ));
    assert_eq!(scope(&scp, &snap, &verdicts).paths.len(), verdicts.len());
}

#[test]
fn an_impact_message_says_what_broke_where_and_who_must_act() {
    use crate::report::sns::{impact_notification, notification, ImpactKind};
    let (snap, _) = working();
    let ev = key_policy_change();
    let (after, _) = apply_change(&snap, &ev).expect("applies");
    let i = impact(&snap, &after);
    let path = i
        .broken
        .iter()
        .find(|p| p.principal == ROLE)
        .expect("broken");
    let change = change_event(&ev).to_ref();
    let n = impact_notification(ImpactKind::Broken, path, &change, Some(B), Some(A));
    assert!(
        n.subject.starts_with(
            "BROKEN KEY_POLICY_NO_ALLOW | fix: 111122223333 | PutKeyPolicy | doc-example-bucket/"
        ),
        "{}",
        n.subject
    );
    assert!(n.subject.len() < 100 && n.subject.is_ascii());
    let attr = |name: &str| {
        n.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.string_value())
    };
    assert_eq!(attr("kind").as_deref(), Some("impact"));
    assert_eq!(attr("impact").as_deref(), Some("broken"));
    assert_eq!(attr("verdict").as_deref(), Some("denied"));
    assert_eq!(attr("change_event").as_deref(), Some("kms:PutKeyPolicy"));
    assert_eq!(attr("principal_account").as_deref(), Some(B));
    assert_eq!(attr("resource_account").as_deref(), Some(A));
    assert!(n.attributes.len() <= 10);
    let body: Value = serde_json::from_str(&n.message).expect("the body is JSON");
    assert_eq!(body["kind"], "impact");
    assert_eq!(body["change"]["event_id"], "e-1");
    assert_eq!(body["acting_accounts"], json!([A]));
    assert_eq!(body["path"]["fixes_verified"], true);
    assert!(body["text"].as_array().is_some_and(|l| l.iter().any(|x| x
        .as_str()
        .is_some_and(|t| t.contains("Fix: $ aws kms put-key-policy")))));
    // Diagnoses say which kind they are too.
    let d = crate::diagnose::diagnose(&after, &crate::diagnose::testing::read("aws"));
    let dn = notification(&d);
    assert!(dn
        .attributes
        .iter()
        .any(|a| a.name == "kind" && a.value.string_value() == "diagnosis"));
}

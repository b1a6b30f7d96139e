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

/// The vpce-perimeter SCP of the Organizations samples, as `describe-policy` prints it.
fn perimeter_scp() -> Value {
    json!({"Policy": {"PolicySummary": {"Id": "p-7h3k9x2m", "Name": "vpce-perimeter",
        "Type": "SERVICE_CONTROL_POLICY"},
        "Content": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"DenyOutsideCorporateVpce\",\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{\"StringNotEqualsIfExists\":{\"aws:SourceVpce\":\"vpce-0b5e4c3d2a1f09876\"},\"BoolIfExists\":{\"aws:ViaAWSService\":\"false\"}}}]}"}})
}

/// The working setup with what the sample change events under `events/` act on: a
/// `report-readers` group, a `workload-boundary` policy, no Block Public Access and ACLs
/// enabled on the bucket, and SCP chains of two levels (root, account) where the perimeter SCP is attached
/// to the bucket account only.
fn sample_targets() -> Snapshot {
    let (_, mut raw) = working();
    let full = json!({"Policy": {"PolicySummary": {"Id": "p-FullAWSAccess", "Name": "FullAWSAccess"},
        "Content": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}"}});
    let b = &mut raw["accounts"]["444455556666"];
    b["iam"]["GroupDetailList"]
        .as_array_mut()
        .expect("groups")
        .push(json!({"GroupName": "report-readers", "Path": "/",
            "Arn": "arn:aws:iam::444455556666:group/report-readers",
            "GroupPolicyList": [{"PolicyName": "read-reports", "PolicyDocument": {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::doc-example-bucket/*"}]}}]}));
    b["iam"]["Policies"]
        .as_array_mut()
        .expect("policies")
        .push(json!({"Arn": "arn:aws:iam::444455556666:policy/workload-boundary", "DefaultVersionId": "v1",
            "PolicyVersionList": [{"VersionId": "v1", "IsDefaultVersion": true, "Document": {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}}]}));
    b["organization"]["scp"] = json!([[full.clone()], [full.clone()]]);
    let a = &mut raw["accounts"]["111122223333"];
    a["organization"]["scp"] = json!([[full.clone()], [full, perimeter_scp()]]);
    if let Some(bucket) = a["s3"]["doc-example-bucket"].as_object_mut() {
        bucket.remove("public_access_block");
        // ACLs enabled, so that ACL changes are accepted as AWS accepts them.
        bucket.insert(
            "ownership_controls".into(),
            json!({"OwnershipControls": {"Rules": [{"ObjectOwnership": "ObjectWriter"}]}}),
        );
    }
    Snapshot::from_value(&raw).expect("sample targets")
}

fn read_event(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn reader_account(s: &Snapshot) -> &crate::snapshot::Iam {
    s.accounts["444455556666"].iam.as_ref().expect("iam")
}

#[test]
fn every_sample_change_event_is_classified_and_applies() {
    let snap = sample_targets();
    let bucket = |s: &Snapshot| s.bucket("doc-example-bucket").expect("bucket").1.clone();
    type Check = fn(&Snapshot, &Snapshot);
    let cases: Vec<(&str, &str, Check)> = vec![
        ("change-putbucketownershipcontrols.eventbridge.json",
         "Object Ownership of doc-example-bucket (BucketOwnerPreferred)",
         |_, a| assert_eq!(a.bucket("doc-example-bucket").and_then(|(_, b)| b.ownership),
             Some(crate::snapshot::ObjectOwnership::BucketOwnerPreferred))),
        ("change-putpublicaccessblock.eventbridge.json", "Block Public Access of doc-example-bucket",
         |b, a| {
             assert!(b.bucket("doc-example-bucket").is_some_and(|(_, x)| x.public_access_block.is_none()));
             let pab = a.bucket("doc-example-bucket").and_then(|(_, x)| x.public_access_block).expect("set");
             assert!(pab.block_public_acls && pab.ignore_public_acls && pab.block_public_policy && pab.restrict_public_buckets);
         }),
        ("change-putbucketacl.eventbridge.json", "ACL of doc-example-bucket",
         |_, a| {
             let grants = &a.bucket("doc-example-bucket").expect("bucket").1.acl_grants;
             assert_eq!(grants.len(), 2, "{grants:?}");
             assert!(grants.contains(&crate::snapshot::AclGrant {
                 grantee: crate::snapshot::Grantee::CanonicalUser {
                     id: "08d533ef40bb2cca86f4deb245dcb1aa2363817d431183a45eebb30e2ba6869d".into() },
                 permission: crate::snapshot::AclPermission::Read }), "{grants:?}");
         }),
        ("change-createalias.eventbridge.json", &*Box::leak(format!("alias alias/reports-2026 (now {KEY})").into_boxed_str()),
         |_, a| assert!(a.accounts["111122223333"].kms[KEY].aliases.contains(&"alias/reports-2026".to_owned()))),
        ("change-schedulekeydeletion.eventbridge.json", &*Box::leak(format!("state of key {KEY} (PendingDeletion)").into_boxed_str()),
         |_, a| assert_eq!(a.accounts["111122223333"].kms[KEY].metadata.key_state, crate::snapshot::KeyState::PendingDeletion)),
        ("change-attachgrouppolicy.eventbridge.json",
         "managed policy arn:aws:iam::444455556666:policy/reader-base of group analysts",
         |_, a| assert!(reader_account(a).group("analysts").expect("group").attached_policies
             .contains(&"arn:aws:iam::444455556666:policy/reader-base".to_owned()))),
        ("change-addusertogroup.eventbridge.json", "membership of user alice in group report-readers (added)",
         |_, a| assert!(reader_account(a).users.iter().any(|u| u.name == "alice" && u.groups.contains(&"report-readers".to_owned())))),
        ("change-putrolepermissionsboundary.eventbridge.json",
         "permissions boundary of role reader (arn:aws:iam::444455556666:policy/workload-boundary)",
         |_, a| assert_eq!(reader_account(a).roles.iter().find(|r| r.name == "reader").and_then(|r| r.permissions_boundary.as_deref()),
             Some("arn:aws:iam::444455556666:policy/workload-boundary"))),
        ("change-createpolicyversion.eventbridge.json",
         "default version of managed policy arn:aws:iam::444455556666:policy/reader-base (v2)",
         |_, a| {
             let m = &reader_account(a).managed_policies["arn:aws:iam::444455556666:policy/reader-base"];
             assert_eq!(m.default_version_id.as_deref(), Some("v2"));
             assert_eq!(m.document.as_ref().map(|d| d.document["Statement"][0]["Sid"].clone()), Some(json!("ListReports")));
         }),
        ("change-deleteuser.eventbridge.json", "user alice (deleted)",
         |b, a| {
             assert!(reader_account(b).users.iter().any(|u| u.name == "alice"));
             assert!(!reader_account(a).users.iter().any(|u| u.name == "alice"));
         }),
        ("change-attachpolicy-scp.eventbridge.json", "organization policy p-7h3k9x2m attached to 444455556666",
         |_, a| {
             let scp = &a.accounts["444455556666"].organization.as_ref().expect("org").scp;
             assert_eq!(scp.len(), 2);
             assert_eq!(scp[1].len(), 2);
             assert_eq!(scp[1][1].name, "SCP vpce-perimeter (p-7h3k9x2m)");
         }),
    ];
    for (file, changed, check) in cases {
        let event = read_event(file);
        let outcomes = crate::event::parse_events(&event).unwrap_or_else(|e| panic!("{file}: {e}"));
        let [crate::event::EventOutcome::Change(c)] = outcomes.as_slice() else {
            panic!("{file}: {outcomes:?}");
        };
        let (after, change) = apply_change(&snap, &event).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(change.event_name, c.event_name, "{file}");
        assert_eq!(change.changed, changed, "{file}");
        assert_ne!(after, snap, "{file} changed nothing");
        check(&snap, &after);
        // What the change leaves is a snapshot the one writer writes and the reader reads.
        let reread =
            Snapshot::from_value(&after.to_value()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(reread.to_value(), after.to_value(), "{file}");
    }
    let _ = bucket(&snap);
}

#[test]
fn the_perimeter_scp_attached_to_the_reader_account_breaks_its_read_and_detaching_restores_it() {
    let snap = sample_targets();
    let attached = impact_of_change(
        &snap,
        &read_event("change-attachpolicy-scp.eventbridge.json"),
    )
    .expect("applies");
    let broken = attached
        .broken
        .iter()
        .find(|p| p.principal == ROLE && p.object == "reports/q1.csv")
        .expect("the reader's path breaks");
    assert_eq!(broken.blocking, vec!["SCP_EXPLICIT_DENY".to_owned()]);
    let (after, _) = apply_change(
        &snap,
        &read_event("change-attachpolicy-scp.eventbridge.json"),
    )
    .expect("applies");
    let (restored, _) = apply_change(
        &after,
        &read_event("change-detachpolicy-scp.eventbridge.json"),
    )
    .expect("detaches");
    assert_eq!(restored.to_value(), snap.to_value());
    // Detaching what the account does not have is refused, as AWS refuses it.
    let err = apply_change(
        &snap,
        &read_event("change-detachpolicy-scp.eventbridge.json"),
    )
    .expect_err("not attached");
    assert_eq!(err.path(), "detail.requestParameters.targetId");
    assert!(err.message().contains("is not attached"), "{err}");
}

#[test]
fn a_boundary_without_s3_read_and_a_scheduled_deletion_break_the_read() {
    let snap = sample_targets();
    for (file, code, acting) in [
        (
            "change-putrolepermissionsboundary.eventbridge.json",
            "PERMISSIONS_BOUNDARY",
            "444455556666",
        ),
        (
            "change-schedulekeydeletion.eventbridge.json",
            "KEY_NOT_USABLE",
            "111122223333",
        ),
    ] {
        let i = impact_of_change(&snap, &read_event(file)).expect("applies");
        let broken = i
            .broken
            .iter()
            .find(|p| p.principal == ROLE && p.object == "reports/q1.csv")
            .unwrap_or_else(|| panic!("{file}: {i:?}"));
        assert!(
            broken.blocking.iter().any(|c| c.starts_with(code)),
            "{file}: {broken:?}"
        );
        assert!(
            broken.must_act.contains(&acting.to_owned()),
            "{file}: {broken:?}"
        );
    }
}

#[test]
fn records_that_lack_what_their_change_needs_are_refused_naming_it() {
    let snap = sample_targets();
    let detail = |file: &str| read_event(file)["detail"].clone();
    let mut cases: Vec<(Value, &str, &str)> = Vec::new();
    // A new default version whose document the record does not carry.
    let mut v = detail("change-createpolicyversion.eventbridge.json");
    v["requestParameters"]
        .as_object_mut()
        .expect("params")
        .remove("policyDocument");
    cases.push((
        v,
        "requestParameters.policyArn",
        "does not carry its document",
    ));
    // A default version the snapshot does not hold.
    let v = record(
        "iam",
        "SetDefaultPolicyVersion",
        "444455556666",
        json!({"policyArn": "arn:aws:iam::444455556666:policy/reader-base", "versionId": "v3"}),
    );
    cases.push((
        v,
        "requestParameters.versionId",
        "keeps only the default version (v1)",
    ));
    // An SCP update that carries no content anywhere.
    let v = record(
        "organizations",
        "UpdatePolicy",
        "555566667777",
        json!({"policyId": "p-7h3k9x2m", "name": "perimeter"}),
    );
    cases.push((v, "requestParameters.policyId", "carries no content"));
    // An OU the snapshot does not name.
    let v = record(
        "organizations",
        "AttachPolicy",
        "555566667777",
        json!({"policyId": "p-7h3k9x2m", "targetId": "ou-a1b2-c3d4e5f6"}),
    );
    cases.push((v, "requestParameters.targetId", "organizational unit"));
    // An alias that already exists.
    let v = record(
        "kms",
        "CreateAlias",
        "111122223333",
        json!({"aliasName": "alias/reports", "targetKeyId": KEY}),
    );
    cases.push((v, "requestParameters.aliasName", "already names key"));
    // A retirement by grant token.
    let v = record(
        "kms",
        "RetireGrant",
        "111122223333",
        json!({"keyId": KEY, "grantToken": "AQpAM2Rh..."}),
    );
    cases.push((v, "requestParameters.grantId", "cannot be identified"));
    for (event, path, needle) in cases {
        let err = apply_change(&snap, &event).expect_err(needle);
        assert_eq!(err.path(), path, "{err}");
        assert!(err.message().contains(needle), "{err}");
        if needle != "already names key" {
            assert!(err.message().contains("--after"), "{err}");
        }
    }
}

#[test]
fn the_other_calls_of_each_family_apply_as_aws_applies_them() {
    let snap = sample_targets();
    let apply = |source: &str, name: &str, account: &str, params: Value| {
        apply_change(&snap, &record(source, name, account, params))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let b = |s: &Snapshot| s.bucket("doc-example-bucket").expect("bucket").1.clone();
    // Deleting the default encryption leaves SSE-S3.
    let (a, c) = apply(
        "s3",
        "DeleteBucketEncryption",
        "111122223333",
        json!({"bucketName": "doc-example-bucket"}),
    );
    assert_eq!(
        b(&a).encryption.map(|e| e.algorithm),
        Some("AES256".to_owned())
    );
    assert!(c.changed.contains("SSE-S3"));
    let (a, _) = apply(
        "s3",
        "DeleteBucketOwnershipControls",
        "111122223333",
        json!({"bucketName": "doc-example-bucket"}),
    );
    assert_eq!(b(&a).ownership, None);
    let (a, _) = apply(
        "s3",
        "DeletePublicAccessBlock",
        "111122223333",
        json!({"bucketName": "doc-example-bucket"}),
    );
    assert_eq!(b(&a).public_access_block, None);
    // A canned ACL expands to the owner's grant and the public one.
    let (a, _) = apply(
        "s3",
        "PutBucketAcl",
        "111122223333",
        json!({"bucketName": "doc-example-bucket", "acl": [""], "x-amz-acl": ["public-read"]}),
    );
    let grants = b(&a).acl_grants;
    assert_eq!(grants.len(), 2);
    assert!(grants
        .iter()
        .any(|g| g.grantee.is_public() && g.permission == crate::snapshot::AclPermission::Read));
    // With ACLs disabled, an ACL granting others is one AWS refuses.
    let (enforced, _) = apply(
        "s3",
        "PutBucketOwnershipControls",
        "111122223333",
        json!({"bucketName": "doc-example-bucket",
            "OwnershipControls": {"Rule": {"ObjectOwnership": "BucketOwnerEnforced"}}}),
    );
    let err = apply_change(
        &enforced,
        &read_event("change-putbucketacl.eventbridge.json"),
    )
    .expect_err("ACLs disabled");
    assert!(err.message().contains("ACLs disabled"), "{err}");
    let (owner_only, _) = apply_change(
        &enforced,
        &record(
            "s3",
            "PutBucketAcl",
            "111122223333",
            json!({"bucketName": "doc-example-bucket", "x-amz-acl": ["private"]}),
        ),
    )
    .expect("owner only");
    assert_eq!(b(&owner_only).acl_grants.len(), 1);
    // A single-rule encryption body converted from XML, with a text boolean.
    let (a, _) = apply(
        "s3",
        "PutBucketEncryption",
        "111122223333",
        json!({"bucketName": "doc-example-bucket",
        "ServerSideEncryptionConfiguration": {"Rule": {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": "alias/reports"}, "BucketKeyEnabled": "true"}}}),
    );
    let e = b(&a).encryption.expect("encryption");
    assert_eq!(
        (e.kms_key_id.as_deref(), e.bucket_key_enabled),
        (Some("alias/reports"), true)
    );
    // Aliases move and go.
    let other = "arn:aws:kms:us-west-2:111122223333:key/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let (a, _) = apply(
        "kms",
        "UpdateAlias",
        "111122223333",
        json!({"aliasName": "alias/reports", "targetKeyId": other}),
    );
    assert!(!a.accounts["111122223333"].kms[KEY]
        .aliases
        .contains(&"alias/reports".to_owned()));
    assert!(a.accounts["111122223333"].kms[other]
        .aliases
        .contains(&"alias/reports".to_owned()));
    let (a, _) = apply(
        "kms",
        "DeleteAlias",
        "111122223333",
        json!({"aliasName": "alias/reports"}),
    );
    assert!(a.accounts["111122223333"].kms[KEY].aliases.is_empty());
    let (a, _) = apply(
        "kms",
        "CancelKeyDeletion",
        "111122223333",
        json!({"keyId": KEY}),
    );
    assert_eq!(
        a.accounts["111122223333"].kms[KEY].metadata.key_state,
        crate::snapshot::KeyState::Disabled
    );
    // Group policies, memberships, boundaries and deletions.
    let (a, _) = apply(
        "iam",
        "PutGroupPolicy",
        "444455556666",
        json!({"groupName": "analysts", "policyName": "x",
        "policyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\"}]}"}),
    );
    assert_eq!(
        reader_account(&a)
            .group("analysts")
            .expect("group")
            .inline_policies
            .len(),
        reader_account(&snap)
            .group("analysts")
            .expect("group")
            .inline_policies
            .len()
            + 1
    );
    let (a, _) = apply(
        "iam",
        "DeleteGroupPolicy",
        "444455556666",
        json!({"groupName": "report-readers", "policyName": "read-reports"}),
    );
    assert!(reader_account(&a)
        .group("report-readers")
        .expect("group")
        .inline_policies
        .is_empty());
    let (a, _) = apply(
        "iam",
        "RemoveUserFromGroup",
        "444455556666",
        json!({"groupName": "analysts", "userName": "alice"}),
    );
    assert!(reader_account(&a).users.iter().all(|u| u.groups.is_empty()));
    let (a, _) = apply(
        "iam",
        "DeleteRole",
        "444455556666",
        json!({"roleName": "reader"}),
    );
    assert!(reader_account(&a).roles.iter().all(|r| r.name != "reader"));
    let (with_boundary, _) = apply(
        "iam",
        "PutUserPermissionsBoundary",
        "444455556666",
        json!({"userName": "alice", "permissionsBoundary": "arn:aws:iam::444455556666:policy/workload-boundary"}),
    );
    let (a, _) = apply_change(
        &with_boundary,
        &record(
            "iam",
            "DeleteUserPermissionsBoundary",
            "444455556666",
            json!({"userName": "alice"}),
        ),
    )
    .expect("removes");
    assert_eq!(a.to_value(), snap.to_value());
    // A version that is not made the default changes nothing, and says so.
    let (a, c) = apply(
        "iam",
        "CreatePolicyVersion",
        "444455556666",
        json!({"policyArn":
        "arn:aws:iam::444455556666:policy/reader-base", "policyDocument": "{}", "setAsDefault": false}),
    );
    assert_eq!(a, snap);
    assert!(c.changed.contains("not the default"), "{c:?}");
    // Deleting a policy detached everywhere changes nothing; one the snapshot still lists goes.
    let (a, c) = apply(
        "organizations",
        "DeletePolicy",
        "555566667777",
        json!({"policyId": "p-0000000000"}),
    );
    assert_eq!(a, snap);
    assert!(c.changed.contains("lists it nowhere"), "{c:?}");
    let (a, _) = apply(
        "organizations",
        "DeletePolicy",
        "555566667777",
        json!({"policyId": "p-7h3k9x2m"}),
    );
    assert_eq!(
        a.accounts["111122223333"]
            .organization
            .as_ref()
            .expect("org")
            .scp[1]
            .len(),
        1
    );
    // An update of name only still carries the content in its response.
    let mut rename = record(
        "organizations",
        "UpdatePolicy",
        "555566667777",
        json!({"policyId": "p-7h3k9x2m", "name": "perimeter"}),
    );
    rename["responseElements"] =
        json!({"policy": {"content": perimeter_scp()["Policy"]["Content"]}});
    let (a, _) = apply_change(&snap, &rename).expect("applies");
    let perimeter = |s: &Snapshot| {
        s.accounts["111122223333"]
            .organization
            .as_ref()
            .expect("org")
            .scp[1][1]
            .document
            .clone()
    };
    assert_eq!(perimeter(&a), perimeter(&snap));
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
fn a_fresh_read_of_a_moved_alias_takes_it_off_the_stored_key() {
    let (mut snap, _) = working();
    let region = snap.accounts[A].kms[KEY].metadata.region.clone();
    snap.accounts
        .get_mut(A)
        .and_then(|a| a.kms.get_mut(KEY))
        .expect("the key")
        .aliases = vec!["alias/reports".into()];
    // The fresh read resolved the alias to another key of the account (UpdateAlias).
    let mut moved = snap.accounts[A].kms[KEY].clone();
    moved.metadata.key_id = "0000aaaa-0000-0000-0000-000000000000".into();
    moved.metadata.arn = KEY.replace(
        &snap.accounts[A].kms[KEY].metadata.key_id,
        &moved.metadata.key_id,
    );
    let mut fresh = crate::snapshot::Snapshot::default();
    fresh
        .accounts
        .entry(A.into())
        .or_default()
        .kms
        .insert(moved.metadata.arn.clone(), moved.clone());
    let mut merged = snap.clone();
    state::merge_snapshot(&mut merged, &fresh);
    let (_, resolved) = merged.key("alias/reports", &region, A).expect("resolves");
    assert_eq!(resolved.metadata.arn, moved.metadata.arn);
    assert!(merged.accounts[A].kms[KEY].aliases.is_empty());
}

#[test]
fn a_fresh_read_that_finds_the_default_encryption_alias_on_no_key_takes_it_off_the_stored_key() {
    let (mut snap, _) = working();
    let bucket = "doc-example-bucket";
    let region = snap.accounts[A].kms[KEY].metadata.region.clone();
    {
        let a = snap.accounts.get_mut(A).expect("A");
        a.kms.get_mut(KEY).expect("the key").aliases = vec!["alias/reports".into()];
        let enc =
            a.s3.get_mut(bucket)
                .and_then(|b| b.encryption.as_mut())
                .expect("default encryption");
        enc.algorithm = "aws:kms".into();
        enc.kms_key_id = Some("alias/reports".into());
    }
    assert!(snap.key("alias/reports", &region, A).is_some());
    // The fresh read (DeleteAlias): the bucket, whose default encryption still names the
    // alias, and no key holding it (DescribeKey found none).
    let mut fresh = crate::snapshot::Snapshot::default();
    fresh
        .accounts
        .entry(A.into())
        .or_default()
        .s3
        .insert(bucket.into(), snap.accounts[A].s3[bucket].clone());
    let mut merged = snap.clone();
    state::merge_snapshot(&mut merged, &fresh);
    assert!(merged.key("alias/reports", &region, A).is_none());
    assert!(merged.accounts[A].kms[KEY].aliases.is_empty());
    // The key itself stays: deleting an alias does not affect its key.
    assert!(merged.accounts[A].kms.contains_key(KEY));

    // A lookup that was refused says nothing: the alias stays.
    let mut refused = fresh.clone();
    refused
        .collection_errors
        .push(crate::snapshot::CollectionError {
            account: Some(A.into()),
            operation: "kms:DescribeKey".into(),
            resource: Some("alias/reports".into()),
            error: "AccessDeniedException".into(),
            message: None,
        });
    let mut kept = snap.clone();
    state::merge_snapshot(&mut kept, &refused);
    assert!(kept.key("alias/reports", &region, A).is_some());

    // An alias ARN of another account is not resolved in the bucket owner's: it stays too.
    let mut elsewhere = fresh.clone();
    let other = format!("arn:aws:kms:{region}:999988887777:alias/reports");
    elsewhere
        .accounts
        .get_mut(A)
        .and_then(|a| a.s3.get_mut(bucket))
        .and_then(|b| b.encryption.as_mut())
        .expect("default encryption")
        .kms_key_id = Some(other);
    let mut kept = snap.clone();
    state::merge_snapshot(&mut kept, &elsewhere);
    assert!(kept.key("alias/reports", &region, A).is_some());
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
            "BROKEN KEY_POLICY_NO_ALLOW | fix: 111122223333 | doc-example-bucket/reports/q1.csv | PutKeyPolicy"
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

/// The working setup with no listed object, the bucket policy granting B's account only
/// `reports/*`, and the reader's own policy naming objects by a pattern with a wildcard
/// bucket (`*/reports/*`, which names no bucket): the reader's only path is the key policy's
/// whole-bucket stand-in.
fn prefix_scoped(reader_resource: &str) -> Snapshot {
    let (_, mut raw) = working();
    let bucket = &mut raw["accounts"][A]["s3"]["doc-example-bucket"];
    bucket["objects"] = json!({});
    bucket["policy"]["Statement"][0]["Principal"]["AWS"] = json!(format!("arn:aws:iam::{B}:root"));
    bucket["policy"]["Statement"][0]["Resource"] =
        json!("arn:aws:s3:::doc-example-bucket/reports/*");
    raw["accounts"][B]["iam"]["RoleDetailList"][0]["RolePolicyList"][0]["PolicyDocument"]
        ["Statement"][0]["Resource"] = json!(reader_resource);
    Snapshot::from_value(&raw).expect("snapshot")
}

#[test]
fn a_stand_in_path_is_probed_under_the_prefix_the_bucket_policy_grants() {
    // GIVEN the key policy naming the reader, the bucket policy granting its account only
    // `reports/*`, and no object listed
    let snap = prefix_scoped("arn:aws:s3:::*/reports/*");
    // WHEN its paths are enumerated and evaluated
    let verdicts = state::evaluate(&snap);
    let reader = verdicts
        .iter()
        .find(|p| p.principal == ROLE)
        .expect("the reader's path");
    // THEN the reader's whole-bucket path is diagnosed on a key under `reports/` (where
    // both policies let it read), not on `example` (which the bucket policy does not grant)
    assert_eq!(reader.object, "*");
    assert_eq!(
        reader.probe,
        "arn:aws:s3:::doc-example-bucket/reports/example"
    );
    assert_eq!(reader.verdict, Verdict::Allowed, "{reader:?}");
}

#[test]
fn a_role_scoped_to_a_prefix_uses_its_accounts_bucket_grant() {
    // GIVEN the bucket policy granting B's account `reports/*` and the reader's own policy
    // naming `reports/*` of the bucket
    let snap = prefix_scoped("arn:aws:s3:::doc-example-bucket/reports/*");
    // THEN the bucket policy's grant to the account is one of the statements intending the
    // reader's path (the account principal stands for its roles whose policies name
    // objects of the bucket, by prefix too)
    let paths = paths::read_paths(&snap);
    let by_bucket_policy = paths.iter().any(|p| {
        p.principal == ROLE
            && p.object.shown == "reports/*"
            && p.source == paths::Source::BucketPolicy
    });
    assert!(by_bucket_policy, "{paths:#?}");
}

#[test]
fn an_scp_break_names_the_management_account_by_id_when_the_snapshot_has_it() {
    // GIVEN the sample targets, B's organization data naming its management account
    let mut raw = sample_targets().to_value();
    raw["accounts"][B]["organization"]["management_account"] = json!("555566667777");
    let snap = Snapshot::from_value(&raw).expect("snapshot");
    // WHEN the perimeter SCP is attached to B
    let i = impact_of_change(
        &snap,
        &read_event("change-attachpolicy-scp.eventbridge.json"),
    )
    .expect("applies");
    let broken = i
        .broken
        .iter()
        .find(|p| p.principal == ROLE && p.object == "reports/q1.csv")
        .expect("the reader's path breaks");
    // THEN the account that must act is the management account, by id, and the text says
    // what it is
    assert_eq!(broken.must_act, ["555566667777"]);
    let f = &broken.findings[0];
    assert_eq!(
        crate::diagnose::who_acts(f),
        "the organization's management account 555566667777"
    );
    assert_eq!(broken.fixes_verified, Some(true), "{broken:#?}");
    // AND the organization data survives the snapshot writer
    assert_eq!(
        Snapshot::from_value(&snap.to_value())
            .expect("reads back")
            .accounts[B]
            .organization
            .as_ref()
            .and_then(|o| o.management_account.as_deref()),
        Some("555566667777")
    );
}

/// (verdict before, verdict after, blocking codes before, the diagnosis after).
type Whole = (Verdict, Verdict, Vec<String>, crate::diagnose::Diagnosis);

/// The impact as it was computed before slices: every path of the union diagnosed with
/// [`crate::diagnose::diagnose`] on each whole snapshot. By id: (verdict before, verdict
/// after, blocking codes before, the diagnosis after).
fn whole_snapshot_verdicts(
    before: &Snapshot,
    after: &Snapshot,
) -> BTreeMap<(String, String, String), Whole> {
    let mut union: BTreeMap<(String, String, String), (paths::ReadPath, bool)> = BTreeMap::new();
    for p in paths::read_paths(before)
        .into_iter()
        .chain(paths::read_paths(after))
    {
        let id = (
            p.principal.clone(),
            p.bucket.name.clone(),
            p.object.shown.clone(),
        );
        let stand_in = p.stand_in;
        union.entry(id).or_insert((p, true)).1 &= stand_in;
    }
    let precise: Vec<(String, String)> = union
        .iter()
        .filter(|(_, (_, stand_in))| !stand_in)
        .map(|(id, _)| (id.0.clone(), id.1.clone()))
        .collect();
    union
        .into_iter()
        .filter(|(id, (_, stand_in))| !stand_in || !precise.contains(&(id.0.clone(), id.1.clone())))
        .filter_map(|(id, (p, _))| {
            let arn = p.bucket.object(p.object.key.as_str()).arn();
            let req = crate::event::adhoc_request(&p.principal, paths::ACTION, &arn).ok()?;
            let b = crate::diagnose::diagnose(before, &req);
            let a = crate::diagnose::diagnose(after, &req);
            let codes = b.blocking().map(|f| f.code.to_string()).collect();
            Some((id, (b.verdict, a.verdict, codes, a)))
        })
        .collect()
}

#[test]
fn impact_on_slices_is_impact_on_the_whole_snapshots() {
    // GIVEN every pair of the hand-written impact snapshots (either way round), and the
    // sample change events applied to the snapshot they act on
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut snaps = vec![root.join("examples/kc-scenario-fixed.json")];
    for entry in std::fs::read_dir(root.join("tests/impact")).expect("tests/impact") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("before-") || name.starts_with("after-") {
            snaps.push(path);
        }
    }
    let snaps: Vec<Snapshot> = snaps
        .iter()
        .map(|p| {
            Snapshot::from_text(&std::fs::read_to_string(p).expect("readable"))
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        })
        .collect();
    let mut pairs: Vec<(Snapshot, Snapshot)> = Vec::new();
    for b in &snaps {
        for a in &snaps {
            pairs.push((b.clone(), a.clone()));
        }
    }
    let targets = sample_targets();
    for entry in std::fs::read_dir(root.join("events")).expect("events") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("change-") {
            if let Ok((after, _)) = apply_change(&targets, &read_event(name)) {
                pairs.push((targets.clone(), after));
            }
        }
    }
    assert!(pairs.len() > 60, "{} pairs", pairs.len());

    let mut changed = 0;
    for (before, after) in &pairs {
        // WHEN the impact is computed on slices
        let (i, work) = impact_counted(before, after);
        // THEN every path has the verdicts, codes, findings and fix verification of the
        // whole-snapshot diagnoses, and the paths not reported are exactly those whose
        // verdict did not change
        let whole = whole_snapshot_verdicts(before, after);
        let reported: Vec<&ImpactPath> = i
            .broken
            .iter()
            .chain(&i.fixed)
            .chain(&i.opened)
            .chain(&i.undecided)
            .collect();
        for p in &reported {
            let id = (p.principal.clone(), p.bucket.clone(), p.object.clone());
            let (vb, va, codes_before, d) = whole.get(&id).expect("a diagnosable path");
            assert_eq!((p.verdict_before, p.verdict_after), (*vb, *va), "{id:?}");
            assert_eq!(&p.blocking_before, codes_before, "{id:?}");
            let findings: Vec<Finding> = d.blocking().cloned().collect();
            assert_eq!(p.findings, findings, "{id:?}");
            if *va == Verdict::Denied {
                assert_eq!(p.fixes_verified, Some(d.fixes_verified), "{id:?}");
                assert_eq!(p.fixes_unverified, d.fixes_unverified, "{id:?}");
            }
        }
        let moved = whole.values().filter(|(b, a, ..)| b != a).count();
        assert_eq!(reported.len(), moved);
        assert_eq!(i.unchanged, whole.len() - moved);
        assert!(work.paths_diagnosed <= whole.len());
        changed += moved;
    }
    assert!(changed > 20, "only {changed} paths changed verdict");
}

#[test]
fn paths_whose_slices_did_not_change_are_not_diagnosed_and_fixes_are_verified_once() {
    // GIVEN the working setup twice over: a copy of both accounts under other ids, with its
    // own bucket and keys, beside the original
    let (_, mut raw) = working();
    let copy = serde_json::to_string(&raw["accounts"])
        .expect("json")
        .replace("111122223333", "222233334444")
        .replace("444455556666", "777788889999")
        .replace("doc-example-bucket", "other-bucket")
        .replace("49494731170958d7", "59494731170958d7")
        .replace("08d533ef40bb2cca", "18d533ef40bb2cca");
    let copy: Value = serde_json::from_str(&copy).expect("json");
    for (id, account) in copy.as_object().expect("accounts") {
        raw["accounts"][id] = account.clone();
    }
    let snap = Snapshot::from_value(&raw).expect("two worlds");
    let (_, idle) = impact_counted(&snap, &snap);
    assert!(idle.groups >= 2 && idle.groups % 2 == 0, "{idle:?}");
    assert_eq!(idle.groups_diagnosed, 0, "nothing changed: {idle:?}");
    assert_eq!(idle.paths_diagnosed, 0, "{idle:?}");

    // WHEN the original key's policy drops the reader
    let ev = record(
        "kms",
        "PutKeyPolicy",
        "111122223333",
        json!({"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "policyName": "default", "policy": key_policy_without_reader()}),
    );
    let (after, _) = apply_change(&snap, &ev).expect("applies");
    let (i, work) = impact_counted(&snap, &after);

    // THEN the original reader's reads break; the copy's groups, whose slices hold none of
    // the original accounts, are counted unchanged without a diagnosis
    assert!(i.broken.iter().any(|p| p.principal == ROLE), "{i:?}");
    assert!(
        i.broken
            .iter()
            .all(|p| p.principal == ROLE && p.fixes_verified == Some(true)),
        "{i:?}"
    );
    assert_eq!(work.groups, idle.groups);
    assert!(work.groups_diagnosed >= 1, "{work:?}");
    assert!(work.groups_diagnosed <= work.groups / 2, "{work:?}");
    // Each diagnosed group verifies its denied paths' fixes in each snapshot at most once.
    assert!(work.distinct_fixes <= 2 * work.groups_diagnosed, "{work:?}");
}

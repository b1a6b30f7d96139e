use std::time::Duration;

use auditor::diagnose::{diagnose, Code, Verdict};
use auditor::event::{parse_events, EventOutcome, Request};
use auditor::snapshot::Snapshot;
use serde_json::Value;

use super::*;
use crate::fake::{kc_world, FakeAccounts, World, A, B, BUCKET, KEY_ARN, OBJECT};

const EVENT: &str =
    include_str!("../../../../events/s3-getobject-denied-cross-account.eventbridge.json");

fn request() -> Request {
    let v: Value = serde_json::from_str(EVENT).unwrap();
    match parse_events(&v).unwrap().pop() {
        Some(EventOutcome::Denied(r)) => *r,
        other => panic!("not a denial: {other:?}"),
    }
}

fn collector(world: World, ttl: u64) -> Collector<FakeAccounts> {
    // The function runs in a third account, so both A and B need a role session.
    Collector::new(
        FakeAccounts::new(world, "999988887777"),
        Cache::new(Duration::from_secs(ttl)),
        Options::default(),
    )
}

fn codes(snapshot: &Value) -> (Verdict, Vec<Code>) {
    let snap = Snapshot::from_value(snapshot).unwrap();
    let d = diagnose(&snap, &request());
    (d.verdict, d.blocking().map(|f| f.code).collect())
}

#[tokio::test]
async fn cold_collection_is_three_round_trips_deep() {
    // GIVEN the KC scenario with A's key policy lacking B, read from a third account
    let c = collector(kc_world(), 300);
    let meter = Meter::new();
    // WHEN the denied GetObject is collected
    let snapshot = c.collect(&request(), &meter).await.unwrap();
    // THEN assume-role, bucket/object/principal reads, key reads: 3 deep (the publish is 4th)
    let s = meter.stats();
    assert_eq!(s.depth, 3, "{s:?}");
    assert_eq!(s.by_operation.get("sts:AssumeRole"), Some(&2));
    assert_eq!(s.by_operation.get("kms:GetKeyPolicy"), Some(&1));
    assert_eq!(s.by_operation.get("iam:GetPolicyVersion"), Some(&1));
    assert_eq!(
        s.by_operation.get("iam:GetPolicy"),
        None,
        "ListPolicies gave the version"
    );
    // AND the snapshot is the offline format, complete enough to find the cause
    assert_eq!(
        codes(&snapshot),
        (Verdict::Denied, vec![Code::KeyPolicyNoAllow])
    );
    assert!(snapshot.get("collection_errors").is_none(), "{snapshot:#}");
    assert!(
        snapshot["accounts"][B]["iam"]["RoleDetailList"][0]["RolePolicyList"][0]["PolicyDocument"]
            .is_object(),
        "URL-encoded documents are decoded"
    );
    assert_eq!(
        snapshot["accounts"][A]["s3"][BUCKET]["objects"][OBJECT]["SSEKMSKeyId"],
        KEY_ARN
    );
}

#[tokio::test]
async fn warm_collection_reads_nothing_it_already_has() {
    let c = collector(kc_world(), 300);
    let first = c.collect(&request(), &Meter::new()).await.unwrap();
    let meter = Meter::new();
    let second = c.collect(&request(), &meter).await.unwrap();
    let s = meter.stats();
    assert_eq!((s.calls, s.depth), (0, 0), "{s:?}");
    assert!(s.cache_hits > 0);
    assert_eq!(codes(&first), codes(&second));
}

#[tokio::test]
async fn a_refused_read_is_a_gap_not_a_crash() {
    // GIVEN an auditor role in A without s3:GetObject (HeadObject) or kms:GetKeyPolicy
    let mut w = kc_world();
    w.denied.insert((A.into(), "s3:HeadObject".into()));
    w.denied.insert((A.into(), "kms:GetKeyPolicy".into()));
    let c = collector(w, 0);
    // WHEN collected
    let snapshot = c.collect(&request(), &Meter::new()).await.unwrap();
    // THEN both are recorded, and the diagnosis reports them instead of guessing
    let ops: Vec<&str> = snapshot["collection_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["s3:HeadObject", "kms:GetKeyPolicy"]);
    assert!(snapshot["accounts"][A]["kms"][KEY_ARN]
        .get("policy")
        .is_none());
    let snap = Snapshot::from_value(&snapshot).unwrap();
    let d = diagnose(&snap, &request());
    assert!(d
        .findings
        .iter()
        .any(|f| f.code == Code::MissingEvidence && f.explanation.contains("kms:GetKeyPolicy")));
}

#[tokio::test]
async fn an_unreadable_bucket_policy_leaves_the_bucket_out() {
    let mut w = kc_world();
    w.denied.insert((A.into(), "s3:GetBucketPolicy".into()));
    let snapshot = collector(w, 0)
        .collect(&request(), &Meter::new())
        .await
        .unwrap();
    assert!(snapshot["accounts"][A].get("s3").is_none(), "{snapshot:#}");
    let (verdict, blocking) = codes(&snapshot);
    assert_ne!(verdict, Verdict::Allowed);
    assert!(!blocking.contains(&Code::BucketPolicyNoAllow));
}

#[tokio::test]
async fn a_refused_assume_role_leaves_the_account_out() {
    let mut w = kc_world();
    w.denied.insert((B.into(), "sts:AssumeRole".into()));
    let snapshot = collector(w, 0)
        .collect(&request(), &Meter::new())
        .await
        .unwrap();
    assert!(snapshot["accounts"].get(B).is_none());
    assert_eq!(
        snapshot["collection_errors"][0]["operation"],
        "sts:AssumeRole"
    );
    assert_eq!(snapshot["collection_errors"][0]["account"], B);
}

#[tokio::test]
async fn no_answer_fails_the_collection() {
    let mut w = kc_world();
    w.unreachable.insert((A.into(), "kms:DescribeKey".into()));
    let e = collector(w, 0)
        .collect(&request(), &Meter::new())
        .await
        .unwrap_err();
    assert_eq!(e.operation, "kms:DescribeKey");
    assert_eq!(e.account, A);
}

#[test]
fn identities_behind_principal_arns() {
    let id = identity_of("arn:aws:sts::444455556666:assumed-role/reader/s1").unwrap();
    assert_eq!((id.kind, id.name.as_str()), (IdentityKind::Role, "reader"));
    let id = identity_of("arn:aws:iam::444455556666:role/team/reader").unwrap();
    assert_eq!(id.name, "reader");
    let id = identity_of("arn:aws:iam::444455556666:user/ops/alice").unwrap();
    assert_eq!((id.kind, id.name.as_str()), (IdentityKind::User, "alice"));
    assert_eq!(identity_of("arn:aws:iam::444455556666:root"), None);
}

#[test]
fn documents_are_decoded_once() {
    assert_eq!(decode(r#"{"a":1}"#), serde_json::json!({"a": 1}));
    assert_eq!(decode("%7B%22a%22%3A1%7D"), serde_json::json!({"a": 1}));
    assert_eq!(decode("nonsense"), serde_json::json!("nonsense"));
}

#[tokio::test]
async fn the_collected_snapshot_is_written_by_the_snapshot_writer_and_reads_back_equal() {
    // GIVEN the KC scenario, collected as typed values
    let c = collector(kc_world(), 0);
    let typed = c.collect_snapshot(&request(), &Meter::new()).await.unwrap();
    // WHEN written by the one writer and read back through the duplicate-checking reader
    let text = serde_json::to_string(&typed.to_value()).unwrap();
    let read = Snapshot::from_text(&text).unwrap();
    // THEN nothing was lost or changed on the way, and `collect` returns that document
    assert_eq!(read, typed);
    assert_eq!(
        c.collect(&request(), &Meter::new()).await.unwrap(),
        typed.to_value()
    );
    // (not vacuous: the caller's inline policies and A's key policy are in it)
    let role = &read.accounts[B].iam.as_ref().unwrap().roles[0];
    assert!(!role.inline_policies.is_empty());
    assert!(role.inline_policies.iter().all(|p| p.policy_name.is_some()));
    assert!(read.accounts[A].kms[KEY_ARN].policy.is_some());
}

#[tokio::test]
async fn a_policy_aws_returns_that_is_not_policy_json_is_a_gap() {
    // GIVEN a bucket policy whose statement repeats `Effect` (AWS would never store it)
    let mut w = kc_world();
    let bucket = w
        .accounts
        .get_mut(A)
        .unwrap()
        .buckets
        .get_mut(BUCKET)
        .unwrap();
    bucket.policy = Some(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}]}"#
            .into(),
    );
    // WHEN collected
    let snapshot = collector(w, 0)
        .collect(&request(), &Meter::new())
        .await
        .unwrap();
    // THEN the bucket is left out and the read is recorded as a gap naming the duplicate
    assert!(snapshot["accounts"][A].get("s3").is_none(), "{snapshot:#}");
    let gap = &snapshot["collection_errors"][0];
    assert_eq!(gap["operation"], "s3:GetBucketPolicy");
    assert_eq!(gap["error"], "InvalidDocument");
    assert!(
        gap["message"]
            .as_str()
            .unwrap()
            .contains("Statement[0].Effect"),
        "{gap}"
    );
}

/// A third account that wrote the object into A's bucket.
const WRITER: &str = "777788889999";

/// The KC world, except that the object was written by [`WRITER`] under `ObjectWriter`
/// ownership and its ACL grants only the writer.
fn foreign_object_world() -> World {
    let mut w = kc_world();
    let bucket = w
        .accounts
        .get_mut(A)
        .unwrap()
        .buckets
        .get_mut(BUCKET)
        .unwrap();
    bucket.ownership = Some("ObjectWriter".into());
    bucket
        .object_acls
        .insert(OBJECT.into(), crate::fake::owner_full_control(WRITER));
    // The key policy lets B decrypt, so the ownership is the only cause.
    let key = w
        .accounts
        .get_mut(A)
        .unwrap()
        .keys
        .get_mut(KEY_ARN)
        .unwrap();
    key.policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{A}:root")}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{B}:role/reader")}, "Action": "kms:Decrypt", "Resource": "*"}]})
    .to_string();
    w
}

#[tokio::test]
async fn an_object_another_account_owns_is_diagnosed_from_its_live_acl() {
    // GIVEN an object written by a third account under ObjectWriter ownership
    let c = collector(foreign_object_world(), 0);
    let meter = Meter::new();
    // WHEN collected
    let snapshot = c.collect(&request(), &meter).await.unwrap();
    // THEN the bucket ACL and the object's owner and grants are in the snapshot, in the shape
    // `get-bucket-acl` / `get-object-acl` print
    assert!(snapshot.get("collection_errors").is_none(), "{snapshot:#}");
    let b = &snapshot["accounts"][A]["s3"][BUCKET];
    assert_eq!(b["acl"]["Owner"]["ID"], crate::fake::canonical(A));
    assert_eq!(
        b["ownership_controls"]["OwnershipControls"]["Rules"][0]["ObjectOwnership"],
        "ObjectWriter"
    );
    let o = &b["objects"][OBJECT];
    assert_eq!(o["Owner"]["ID"], crate::fake::canonical(WRITER));
    assert_eq!(o["Grants"][0]["Permission"], "FULL_CONTROL");
    assert_eq!(o["SSEKMSKeyId"], KEY_ARN, "HeadObject is still read");
    // AND both reads were made side by side with the bucket's, at depth 2
    let s = meter.stats();
    assert_eq!(s.by_operation.get("s3:GetBucketAcl"), Some(&1));
    assert_eq!(s.by_operation.get("s3:GetObjectAcl"), Some(&1));
    assert_eq!(s.depth, 3, "{s:?}");
    // AND the canonical ids the check compares: A's from its bucket ACL, B's from ListBuckets
    assert_eq!(s.by_operation.get("s3:ListBuckets"), Some(&1));
    assert_eq!(
        snapshot["accounts"][A]["canonical_id"],
        crate::fake::canonical(A)
    );
    assert_eq!(
        snapshot["accounts"][B]["canonical_id"],
        crate::fake::canonical(B)
    );
    // AND the diagnosis names the ownership, as offline
    assert_eq!(
        codes(&snapshot),
        (Verdict::Denied, vec![Code::ObjectOwnerMismatch])
    );
}

#[tokio::test]
async fn an_object_acl_granting_the_caller_is_not_an_ownership_cause() {
    use auditor::snapshot::{AclGrant, AclPermission, Grantee};
    for (owner, extra_grant) in [(WRITER, true), (B, false)] {
        // GIVEN a foreign object whose ACL also grants B READ, or an object B wrote itself
        let mut w = foreign_object_world();
        let bucket = w
            .accounts
            .get_mut(A)
            .unwrap()
            .buckets
            .get_mut(BUCKET)
            .unwrap();
        let mut acl = crate::fake::owner_full_control(owner);
        if extra_grant {
            acl.grants.push(AclGrant {
                grantee: Grantee::CanonicalUser {
                    id: crate::fake::canonical(B),
                },
                permission: AclPermission::Read,
            });
        }
        bucket.object_acls.insert(OBJECT.into(), acl);
        // WHEN collected
        let snapshot = collector(w, 0)
            .collect(&request(), &Meter::new())
            .await
            .unwrap();
        // THEN B's canonical id was read, and the ACL grant is seen as B's: no ownership cause
        assert_eq!(
            snapshot["accounts"][B]["canonical_id"],
            crate::fake::canonical(B)
        );
        let (verdict, blocking) = codes(&snapshot);
        assert!(
            !blocking.contains(&Code::ObjectOwnerMismatch),
            "{owner}: {blocking:?}"
        );
        assert_eq!(verdict, Verdict::Allowed, "{owner}");
    }
}

#[tokio::test]
async fn without_the_object_switch_no_object_acl_is_read() {
    let c = Collector::new(
        FakeAccounts::new(foreign_object_world(), "999988887777"),
        Cache::new(Duration::from_secs(0)),
        Options { head_object: false },
    );
    let meter = Meter::new();
    let snapshot = c.collect(&request(), &meter).await.unwrap();
    let s = meter.stats();
    assert_eq!(s.by_operation.get("s3:GetObjectAcl"), None, "{s:?}");
    assert_eq!(s.by_operation.get("s3:GetBucketAcl"), Some(&1));
    assert!(snapshot["accounts"][A]["s3"][BUCKET]
        .get("objects")
        .is_none());
    // The ownership cannot be seen, so it is not claimed.
    assert!(!codes(&snapshot).1.contains(&Code::ObjectOwnerMismatch));
}

#[tokio::test]
async fn a_refused_object_acl_is_a_gap_and_no_ownership_claim() {
    let mut w = foreign_object_world();
    w.denied.insert((A.into(), "s3:GetObjectAcl".into()));
    let snapshot = collector(w, 300)
        .collect(&request(), &Meter::new())
        .await
        .unwrap();
    assert_eq!(
        snapshot["collection_errors"][0]["operation"],
        "s3:GetObjectAcl"
    );
    let o = &snapshot["accounts"][A]["s3"][BUCKET]["objects"][OBJECT];
    assert!(o.get("Owner").is_none(), "{o}");
    assert!(!codes(&snapshot).1.contains(&Code::ObjectOwnerMismatch));
}

const MGMT: &str = "210987654321";
const ORG: &str = "o-a1b2c3d4e5";
const OU: &str = "ou-ab12-cdef3456";
const ROOT: &str = "r-ab12";

fn described(id: &str, name: &str, kind: &str, doc: Value) -> Value {
    serde_json::json!({"Policy": {"PolicySummary": {"Id": id, "Name": name, "Type": kind},
        "Content": doc.to_string()}})
}

/// The KC world with A and B in one organization, B under an OU whose SCP denies
/// `s3:GetObject`, and the key policy fixed so that the SCP is the only cause.
fn org_world(reader: Option<&str>) -> World {
    let mut w = foreign_object_world();
    // Back to a bucket-owned object: only the SCP blocks.
    let bucket = w
        .accounts
        .get_mut(A)
        .unwrap()
        .buckets
        .get_mut(BUCKET)
        .unwrap();
    bucket.ownership = Some("BucketOwnerEnforced".into());
    for acct in [A, B] {
        w.accounts.get_mut(acct).unwrap().org = Some(crate::ports::OrgInfo {
            id: ORG.into(),
            management_account: MGMT.into(),
        });
    }
    let parent = |id: &str, is_root| {
        Some(crate::ports::OrgParent {
            id: id.into(),
            is_root,
        })
    };
    let (full, rcp_full) = (
        "p-FullAWSAccess".to_owned(),
        "p-RCPFullAWSAccess".to_owned(),
    );
    w.org_tree = BTreeMap::from([
        (
            ROOT.to_owned(),
            (None, vec![full.clone()], vec![rcp_full.clone()]),
        ),
        (
            OU.to_owned(),
            (
                parent(ROOT, true),
                vec![full.clone(), "p-denyget".into()],
                vec![rcp_full.clone()],
            ),
        ),
        (
            B.to_owned(),
            (
                parent(OU, false),
                vec![full.clone()],
                vec![rcp_full.clone()],
            ),
        ),
        (
            A.to_owned(),
            (
                parent(ROOT, true),
                vec![full.clone()],
                vec![rcp_full.clone()],
            ),
        ),
    ]);
    w.org_policies = BTreeMap::from([
        (
            full.clone(),
            described(
                &full,
                "FullAWSAccess",
                "SERVICE_CONTROL_POLICY",
                serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
            ),
        ),
        (
            rcp_full.clone(),
            described(
                &rcp_full,
                "RCPFullAWSAccess",
                "RESOURCE_CONTROL_POLICY",
                serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}),
            ),
        ),
        (
            "p-denyget".to_owned(),
            described(
                "p-denyget",
                "DenyObjectReads",
                "SERVICE_CONTROL_POLICY",
                serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "NoReads", "Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}]}),
            ),
        ),
    ]);
    w.org_reader = reader.map(str::to_owned);
    w
}

#[tokio::test]
async fn scps_read_from_the_management_account_name_the_deny() {
    // GIVEN an organization reader in the management account
    let c = collector(org_world(Some(MGMT)), 300);
    let meter = Meter::new();
    // WHEN collected
    let snapshot = c.collect(&request(), &meter).await.unwrap();
    // THEN B's SCP levels are root, OU, account, and the diagnosis names the OU's deny
    assert!(snapshot.get("collection_errors").is_none(), "{snapshot:#}");
    let scp = snapshot["accounts"][B]["organization"]["scp"]
        .as_array()
        .unwrap();
    assert_eq!(scp.len(), 3, "{scp:?}");
    assert_eq!(
        scp[1][1]["Policy"]["PolicySummary"]["Name"],
        "DenyObjectReads"
    );
    let rcp = snapshot["accounts"][A]["organization"]["rcp"]
        .as_array()
        .unwrap();
    assert_eq!(rcp.len(), 2, "A sits under the root: {rcp:?}");
    assert_eq!(
        codes(&snapshot),
        (Verdict::Denied, vec![Code::ScpExplicitDeny])
    );
    let snap = Snapshot::from_value(&snapshot).unwrap();
    let d = diagnose(&snap, &request());
    let f = d.blocking().next().unwrap();
    assert!(
        f.policy
            .as_deref()
            .unwrap_or("")
            .contains("DenyObjectReads"),
        "{f:?}"
    );
    // AND the management account's session, the walk and the descriptions were counted once
    let s = meter.stats();
    assert_eq!(
        s.by_operation.get("organizations:DescribePolicy"),
        Some(&3),
        "{s:?}"
    );
    // One ListParents per target below the root (A, B, the OU); the fake answers at once, so
    // A's walk has cached the root before B's reaches it.
    assert_eq!(s.by_operation.get("organizations:ListParents"), Some(&3));
    // AND the organization reads back equal through the snapshot's one writer and reader
    let typed = collector(org_world(Some(MGMT)), 0)
        .collect_snapshot(&request(), &Meter::new())
        .await
        .unwrap();
    let text = serde_json::to_string(&typed.to_value()).unwrap();
    assert_eq!(Snapshot::from_text(&text).unwrap(), typed);
    // WHEN collected again in the same container THEN nothing is read again
    let meter = Meter::new();
    let again = c.collect(&request(), &meter).await.unwrap();
    assert_eq!(meter.stats().calls, 0, "{:?}", meter.stats());
    assert_eq!(again, snapshot);
}

#[tokio::test]
async fn a_second_account_reuses_the_cached_levels_and_policies() {
    // GIVEN B's levels and policies already cached (collected once)
    let c = collector(org_world(Some(MGMT)), 300);
    c.collect(&request(), &Meter::new()).await.unwrap();
    // WHEN the organization entries of B alone are dropped (as a change to B would)
    c.cache().invalidate_where(|k| {
        k == "org/444455556666" || k == "orgtarget/o-a1b2c3d4e5/444455556666"
    });
    let meter = Meter::new();
    c.collect(&request(), &meter).await.unwrap();
    // THEN only B's own level is read again: the OU, root and every policy come from the cache
    let s = meter.stats();
    assert_eq!(
        s.by_operation.get("organizations:ListParents"),
        Some(&1),
        "{s:?}"
    );
    assert_eq!(
        s.by_operation.get("organizations:ListPoliciesForTarget"),
        Some(&2)
    );
    assert_eq!(s.by_operation.get("organizations:DescribePolicy"), None);
}

#[tokio::test]
async fn without_an_organization_reader_the_policies_stay_a_stated_gap() {
    let snapshot = collector(org_world(None), 0)
        .collect(&request(), &Meter::new())
        .await
        .unwrap();
    let gaps = snapshot["collection_errors"].as_array().unwrap();
    assert!(
        gaps.iter().all(|g| g["error"] == "NotCollected"),
        "{gaps:?}"
    );
    assert!(snapshot["accounts"][B]["organization"].get("scp").is_none());
    assert!(!codes(&snapshot).1.contains(&Code::ScpExplicitDeny));
}

#[tokio::test]
async fn a_refused_organization_read_is_a_gap_naming_where_to_read() {
    let mut w = org_world(Some(MGMT));
    w.denied
        .insert((MGMT.into(), "organizations:ListPoliciesForTarget".into()));
    let snapshot = collector(w, 0)
        .collect(&request(), &Meter::new())
        .await
        .unwrap();
    let gaps = snapshot["collection_errors"].as_array().unwrap();
    assert!(!gaps.is_empty());
    for g in gaps {
        assert_eq!(g["operation"], "organizations:ListPoliciesForTarget", "{g}");
        assert_eq!(g["error"], "AccessDenied");
        assert!(
            g["message"]
                .as_str()
                .unwrap()
                .contains("delegated administrator"),
            "{g}"
        );
    }
    assert!(snapshot["accounts"][B]["organization"].get("scp").is_none());
}

/// The sample request, as recorded through B's S3 endpoint `vpce-0b5e4c3d2a1f09876`.
fn request_through_endpoint() -> Request {
    let mut r = request();
    r.vpc_endpoint = Some(auditor::request::VpcEndpointRef {
        id: "vpce-0b5e4c3d2a1f09876".into(),
        account: Some(B.into()),
    });
    r
}

#[tokio::test]
async fn the_endpoint_a_record_names_is_read_in_its_owners_account() {
    // GIVEN the KC scenario fixed (A's key policy names B) and B's S3 gateway endpoint with a
    // data perimeter that allows only B's own buckets
    let mut w = kc_world();
    let key = w
        .accounts
        .get_mut(A)
        .and_then(|a| a.keys.get_mut(KEY_ARN))
        .unwrap();
    key.policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{A}:root")}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{B}:role/reader")}, "Action": "kms:Decrypt", "Resource": "*"}]})
    .to_string();
    let perimeter = serde_json::json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*",
        "Resource": "*", "Condition": {"StringEquals": {"s3:ResourceAccount": B}}}]});
    w.accounts.entry(B.into()).or_default().vpc_endpoints.insert(
        "vpce-0b5e4c3d2a1f09876".into(),
        serde_json::json!({"VpcEndpointId": "vpce-0b5e4c3d2a1f09876", "VpcId": "vpc-0d4e5f6a7b8c9d0e1",
            "OwnerId": B, "ServiceName": "com.amazonaws.us-west-2.s3", "VpcEndpointType": "Gateway",
            "PolicyDocument": perimeter.to_string()}),
    );
    let c = collector(w.clone(), 300);
    let meter = Meter::new();
    // WHEN the request through the endpoint is collected
    let snapshot = c
        .collect(&request_through_endpoint(), &meter)
        .await
        .unwrap();
    // THEN B's endpoint is read once, at depth 2, and is in the snapshot with its policy
    let s = meter.stats();
    assert_eq!(s.by_operation.get("ec2:DescribeVpcEndpoints"), Some(&1));
    assert_eq!(s.depth, 3, "{s:?}");
    let listed = &snapshot["accounts"][B]["vpc_endpoints"]["VpcEndpoints"][0];
    assert_eq!(
        listed["VpcEndpointId"], "vpce-0b5e4c3d2a1f09876",
        "{snapshot:#}"
    );
    // AND the diagnosis blames the endpoint policy
    let snap = Snapshot::from_value(&snapshot).unwrap();
    let d = diagnose(&snap, &request_through_endpoint());
    let blocking: Vec<Code> = d.blocking().map(|f| f.code).collect();
    assert_eq!(blocking, vec![Code::VpcEndpointPolicyNoAllow], "{d:#?}");

    // WHEN B refuses the read
    w.denied
        .insert((B.into(), "ec2:DescribeVpcEndpoints".into()));
    let snapshot = collector(w, 300)
        .collect(&request_through_endpoint(), &Meter::new())
        .await
        .unwrap();
    // THEN it is a recorded gap, the endpoint is not listed, and the verdict is not allowed
    let errors = snapshot["collection_errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["operation"] == "ec2:DescribeVpcEndpoints" && e["account"] == B),
        "{snapshot:#}"
    );
    assert!(snapshot["accounts"][B].get("vpc_endpoints").is_none());
    let snap = Snapshot::from_value(&snapshot).unwrap();
    assert_eq!(
        diagnose(&snap, &request_through_endpoint()).verdict,
        Verdict::Unknown
    );
}

#[tokio::test]
async fn a_request_through_an_access_point_reads_it_and_the_bucket_behind_it() {
    // GIVEN the KC world with an access point of A on the bucket, whose policy names B's
    // reader, and a request that names only the access point (no bucket)
    let mut world = kc_world();
    let ap_arn = format!("arn:aws:s3:us-west-2:{A}:accesspoint/reports-ap");
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{B}:role/reader")}, "Action": "s3:GetObject",
        "Resource": format!("{ap_arn}/object/*")}]});
    world
        .accounts
        .entry(A.into())
        .or_default()
        .access_points
        .insert(
            "reports-ap".into(),
            (
                crate::ports::AccessPointInfo {
                    bucket: BUCKET.into(),
                    network_origin: "Internet".into(),
                    arn: Some(ap_arn.clone()),
                    alias: Some("reports-ap-hrzrlukc5m36ft7okagglf3gmwluquse1b-s3alias".into()),
                    ..Default::default()
                },
                Some(policy.to_string()),
            ),
        );
    let c = collector(world, 300);
    let req = auditor::event::adhoc_request(
        &format!("arn:aws:sts::{B}:assumed-role/reader/s1"),
        "s3:GetObject",
        &format!("{ap_arn}/object/{OBJECT}"),
    )
    .unwrap();
    assert_eq!(req.bucket, None);
    let meter = Meter::new();
    // WHEN it is collected
    let snapshot = c.collect(&req, &meter).await.unwrap();
    // THEN the access point (with its policy) and the bucket behind it are in the snapshot
    let s = meter.stats();
    assert_eq!(s.by_operation.get("s3:GetAccessPoint"), Some(&1));
    assert_eq!(s.by_operation.get("s3:GetAccessPointPolicy"), Some(&1));
    assert_eq!(s.by_operation.get("s3:HeadObject"), Some(&1));
    let snap = Snapshot::from_value(&snapshot).unwrap();
    let (_, ap) = snap
        .access_point(A, "reports-ap")
        .expect("access point collected");
    assert_eq!(ap.bucket, BUCKET);
    assert!(ap.policy.is_some());
    assert!(snap.bucket(BUCKET).is_some(), "{snapshot:#}");
    assert!(snapshot.get("collection_errors").is_none(), "{snapshot:#}");
    // AND the diagnosis evaluates both sides: the reader's IAM policy names the bucket ARN,
    // not the access point's, and A's key policy lacks B
    let d = diagnose(&snap, &req);
    let mut got: Vec<Code> = d.blocking().map(|f| f.code).collect();
    got.sort();
    got.dedup();
    assert_eq!(d.verdict, Verdict::Denied);
    assert_eq!(
        got,
        vec![Code::IdentityPolicyNoAllow, Code::KeyPolicyNoAllow],
        "{d:#?}"
    );
}

#[tokio::test]
async fn a_refused_access_point_read_is_a_gap() {
    // GIVEN the member role of A lacks s3:GetAccessPoint
    let mut world = kc_world();
    world
        .denied
        .insert((A.to_owned(), "s3:GetAccessPoint".to_owned()));
    let c = collector(world, 300);
    let mut req = request();
    req.access_point = auditor::refs::AccessPointRef::parse(&format!(
        "arn:aws:s3:us-west-2:{A}:accesspoint/reports-ap"
    ))
    .map(|(r, _)| auditor::event::AccessPointUse::Arn(r));
    // WHEN collected
    let snapshot = c.collect(&req, &Meter::new()).await.unwrap();
    // THEN the refusal is a collection error naming the access point, and the diagnosis says
    // the access point was not seen
    let errors = snapshot["collection_errors"].as_array().unwrap();
    assert!(errors.iter().any(|e| e["operation"] == "s3:GetAccessPoint"
        && e["resource"]
            .as_str()
            .is_some_and(|r| r.ends_with(":accesspoint/reports-ap"))));
    let snap = Snapshot::from_value(&snapshot).unwrap();
    let d = diagnose(&snap, &req);
    assert_ne!(d.verdict, Verdict::Allowed);
    assert!(d
        .findings
        .iter()
        .any(|f| f.code == Code::MissingEvidence && f.explanation.contains("reports-ap")));
}

/// An SCP change's scope: a nested OU is walked down to its accounts, an updated policy's
/// targets are listed, and a refused list or no reader is said, not guessed.
#[tokio::test]
async fn the_scope_of_an_org_policy_change_walks_down_from_its_targets() {
    use auditor::impact::scope::{OrgReach, OrgTarget};

    const NESTED: &str = "ou-root-nested01";
    const C: &str = "777788889999";
    let mut w = org_world(Some(MGMT));
    // C under an OU nested in B's OU.
    let parent = |id: &str| {
        Some(crate::ports::OrgParent {
            id: id.into(),
            is_root: false,
        })
    };
    w.org_tree
        .insert(NESTED.into(), (parent(OU), vec!["p-nested".into()], vec![]));
    w.org_tree
        .insert(C.into(), (parent(NESTED), vec![], vec![]));
    let c = collector(w.clone(), 300);

    let on_ou = OrgReach {
        targets: [OrgTarget::Ou(OU.into())].into(),
        ..OrgReach::default()
    };
    let OrgScopeRead::Read { read, lists } = c.org_scope(&on_ou).await else {
        panic!("read");
    };
    assert_eq!(
        read.accounts_under,
        [B.to_owned(), C.to_owned()].into_iter().collect()
    );
    // Two lists per OU under the target (B's OU, the nested one); A under the root is not read.
    assert_eq!(lists, 4);

    // The policy attached to the nested OU: its target listed, then walked.
    let updated = OrgReach {
        policies: ["p-nested".to_owned()].into(),
        ..OrgReach::default()
    };
    let OrgScopeRead::Read { read, lists } = c.org_scope(&updated).await else {
        panic!("read");
    };
    assert_eq!(
        read.policy_targets,
        [OrgTarget::Ou(NESTED.into())].into_iter().collect()
    );
    assert_eq!(read.accounts_under, [C.to_owned()].into_iter().collect());
    assert_eq!(lists, 3);

    // A refused ListChildren is a failure the handler falls back on, naming the call.
    let mut refused = w.clone();
    refused
        .denied
        .insert((MGMT.to_owned(), "organizations:ListChildren".to_owned()));
    let got = collector(refused, 300).org_scope(&on_ou).await;
    assert!(
        matches!(
            got,
            OrgScopeRead::Failed {
                operation: "organizations:ListChildren",
                ..
            }
        ),
        "{got:?}"
    );
    // No organization reader configured.
    w.org_reader = None;
    assert_eq!(
        collector(w, 300).org_scope(&on_ou).await,
        OrgScopeRead::NotConfigured
    );
}

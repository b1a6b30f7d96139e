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

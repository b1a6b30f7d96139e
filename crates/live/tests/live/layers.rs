//! The layers the Lambda reads beyond the three policies of the knowledge-center scenario,
//! against the test server: ACLs and object ownership, and the organization's SCPs and RCPs
//! read through a role in the management account.
//!
//! What moto 5.2.5 cannot show, and where it is shown instead:
//! * ACL owners: moto answers every `GetBucketAcl` and `GetObjectAcl` with one fixed owner
//!   (`moto/s3/responses.py`, `_acl_to_dict`), whatever account wrote the object, so an object
//!   another account owns cannot be built here. These tests show that the reads are made and
//!   land in the snapshot; `crates/live/src/collect/tests.rs`
//!   (`an_object_another_account_owns_is_diagnosed_from_its_live_acl`) shows the collector
//!   path to `OBJECT_OWNER_MISMATCH` with the AWS behaviour.
//! * Organizations: moto keeps the organization in the management account's backend and
//!   answers `DescribeOrganization` in the member accounts it created; it does not enforce
//!   SCPs or RCPs (nor any IAM policy), so the denial is the sample event's, and the test holds
//!   the diagnosis to naming the policy. A delegated administrator cannot be emulated: moto
//!   answers `ListParents` only in the management account's backend.

use std::time::Duration;

use auditor::diagnose::diagnose;
use auditor::event::{parse_events, EventOutcome};
use auditor::snapshot::Snapshot;
use auditor_live::aws::{AwsAccounts, OrgAccess, RoleSpec};
use auditor_live::cache::Cache;
use auditor_live::collect::{Collector, Options};
use auditor_live::handler::diagnose_event;
use aws_sdk_organizations::types::PolicyType;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ObjectCannedAcl, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
};
use serde_json::{json, Value};

use crate::kc::{Cause, Kc};
use crate::support::{account_id, unique, Moto, EXTERNAL_ID, HOME, ROLE};

pub(crate) fn collector(m: &Moto, org: Option<OrgAccess>) -> Collector<AwsAccounts> {
    let accounts = AwsAccounts::new(
        m.base.clone(),
        Some(RoleSpec {
            name: ROLE.into(),
            external_id: Some(EXTERNAL_ID.into()),
            session_name: "s3-kms-auditor".into(),
        }),
        true,
    )
    .with_org_access(org);
    accounts.set_home_account(HOME);
    Collector::new(
        accounts,
        Cache::new(Duration::from_secs(300)),
        Options::default(),
    )
}

fn blocking(d: &Value) -> Vec<String> {
    d["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["blocking"] == true)
        .filter_map(|f| f["code"].as_str().map(str::to_owned))
        .collect()
}

/// The live diagnosis of `event`, after checking it equals the offline diagnosis of the
/// snapshot it collected; with the snapshot and the operations called.
async fn live(c: &Collector<AwsAccounts>, event: &Value) -> (Value, Value, Vec<String>, u32) {
    let report = diagnose_event(c, event).await.expect("diagnosed");
    assert_eq!(report.diagnosed.len(), 1);
    let d = &report.diagnosed[0];
    if std::env::var_os("S3KA_TEST_DUMP").is_some() {
        eprintln!("{:#}\n{:?}", d.snapshot, d.stats);
    }
    let snap = Snapshot::from_value(&d.snapshot).expect("the collected snapshot is valid");
    let Some(EventOutcome::Denied(req)) = parse_events(event).expect("event").pop() else {
        panic!("the sample is a denial");
    };
    let live = serde_json::to_value(&d.diagnosis).expect("json");
    assert_eq!(
        live,
        serde_json::to_value(diagnose(&snap, &req)).expect("json"),
        "live and offline differ"
    );
    let ops = d.stats.by_operation.keys().cloned().collect();
    (live, d.snapshot.clone(), ops, d.stats.depth)
}

#[tokio::test]
async fn bucket_and_object_acls_are_read_under_object_writer_ownership() {
    let m = Moto::connect("acls").await;
    let kc = Kc::build(&m, Cause::None).await;
    let bucket_owner = Moto::s3(&m.account(&kc.a).await);
    // GIVEN ObjectWriter ownership, and the object rewritten by another account with a
    // canned ACL of its choosing
    bucket_owner
        .put_bucket_ownership_controls()
        .bucket(&kc.bucket)
        .ownership_controls(
            OwnershipControls::builder()
                .rules(
                    OwnershipControlsRule::builder()
                        .object_ownership(ObjectOwnership::ObjectWriter)
                        .build()
                        .expect("rule"),
                )
                .build()
                .expect("controls"),
        )
        .send()
        .await
        .expect("ownership controls");
    let writer = Moto::s3(&m.account(&account_id()).await);
    writer
        .put_object()
        .bucket(&kc.bucket)
        .key("reports/q1.csv")
        .acl(ObjectCannedAcl::AuthenticatedRead)
        .body(ByteStream::from_static(b"quarter,revenue\nq1,90\n"))
        .send()
        .await
        .expect("put object as another account");
    // WHEN the denied read is diagnosed live
    let (_, snapshot, ops, _) = live(&collector(&m, None), &kc.event()).await;
    // THEN both ACLs were read and are in the snapshot as get-bucket-acl / get-object-acl print
    for op in ["s3:GetBucketAcl", "s3:GetObjectAcl", "s3:HeadObject"] {
        assert!(ops.iter().any(|o| o == op), "{op} not read: {ops:?}");
    }
    let b = &snapshot["accounts"][&kc.a]["s3"][&kc.bucket];
    assert!(b["acl"]["Owner"]["ID"].is_string(), "{b:#}");
    assert_eq!(
        b["ownership_controls"]["OwnershipControls"]["Rules"][0]["ObjectOwnership"],
        "ObjectWriter"
    );
    let o = &b["objects"]["reports/q1.csv"];
    assert!(o["Owner"]["ID"].is_string(), "{o:#}");
    let grants = o["Grants"].as_array().expect("grants");
    assert!(
        grants.iter().any(|g| g["Permission"] == "READ"
            && g["Grantee"]["URI"]
                .as_str()
                .is_some_and(|u| u.ends_with("/global/AuthenticatedUsers"))),
        "the writer's canned ACL is read: {grants:?}"
    );
    // moto gives every object the bucket's owner (see the module documentation), so the
    // ownership check finds nothing here.
    assert!(snapshot.get("collection_errors").is_none(), "{snapshot:#}");
}

/// An organization on the server: management account M, and A and B created in it, B under
/// an OU. Returns (M, root id, OU id, A, B).
pub(crate) async fn organization(m: &Moto) -> (String, String, String, String, String) {
    let mgmt = account_id();
    let org = aws_sdk_organizations::Client::new(&m.account(&mgmt).await);
    org.create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .expect("create organization");
    let root = org.list_roots().send().await.expect("roots").roots()[0]
        .id()
        .expect("root id")
        .to_owned();
    for t in [
        PolicyType::ServiceControlPolicy,
        PolicyType::ResourceControlPolicy,
    ] {
        org.enable_policy_type()
            .root_id(&root)
            .policy_type(t)
            .send()
            .await
            .expect("enable policy type");
    }
    let ou = org
        .create_organizational_unit()
        .parent_id(&root)
        .name(unique("readers"))
        .send()
        .await
        .expect("create OU")
        .organizational_unit()
        .and_then(|o| o.id())
        .expect("ou id")
        .to_owned();
    let mut members = Vec::new();
    for name in ["bucket-owner", "reader"] {
        let status = org
            .create_account()
            .account_name(name)
            .email(format!("{}@example.com", unique(name)))
            .send()
            .await
            .expect("create account");
        members.push(
            status
                .create_account_status()
                .and_then(|s| s.account_id())
                .expect("account id")
                .to_owned(),
        );
    }
    let (a, b) = (members[0].clone(), members[1].clone());
    org.move_account()
        .account_id(&b)
        .source_parent_id(&root)
        .destination_parent_id(&ou)
        .send()
        .await
        .expect("move account");
    (mgmt, root, ou, a, b)
}

/// Creates policy `name` and attaches it to `target`; returns its id.
pub(crate) async fn attach(
    m: &Moto,
    mgmt: &str,
    kind: PolicyType,
    name: &str,
    doc: Value,
    target: &str,
) -> String {
    let org = aws_sdk_organizations::Client::new(&m.account(mgmt).await);
    let id = org
        .create_policy()
        .name(name)
        .description("s3-kms-auditor test")
        .r#type(kind)
        .content(doc.to_string())
        .send()
        .await
        .expect("create policy")
        .policy()
        .and_then(|p| p.policy_summary())
        .and_then(|s| s.id())
        .expect("policy id")
        .to_owned();
    org.attach_policy()
        .policy_id(&id)
        .target_id(target)
        .send()
        .await
        .expect("attach policy");
    id
}

#[tokio::test]
async fn an_scp_on_the_callers_ou_is_read_from_the_management_account_and_named() {
    let m = Moto::connect("org_scp").await;
    let (mgmt, _root, ou, a, b) = organization(&m).await;
    let kc = Kc::build_in(&m, Cause::None, a, b).await;
    // GIVEN an SCP on B's OU denying object reads
    attach(
        &m,
        &mgmt,
        PolicyType::ServiceControlPolicy,
        "DenyObjectReads",
        json!({"Version": "2012-10-17", "Statement": [{"Sid": "NoObjectReads", "Effect": "Deny",
            "Action": "s3:GetObject", "Resource": "*"}]}),
        &ou,
    )
    .await;
    // WHEN diagnosed without an organization reader THEN the SCPs are a stated gap
    let (d, snapshot, _, _) = live(&collector(&m, None), &kc.event()).await;
    assert!(
        !blocking(&d).contains(&"SCP_EXPLICIT_DENY".to_owned()),
        "{d:#}"
    );
    assert!(
        snapshot["collection_errors"]
            .as_array()
            .expect("gaps")
            .iter()
            .any(|g| g["error"] == "NotCollected"),
        "{snapshot:#}"
    );
    // WHEN diagnosed with the org reader role in the management account
    let reader = format!("arn:aws:iam::{mgmt}:role/S3KmsAuditorOrgReader");
    let c = collector(&m, Some(OrgAccess::Role(reader)));
    let (d, snapshot, ops, depth) = live(&c, &kc.event()).await;
    // THEN B's levels are root, OU, account; the OU's level holds the deny; and the diagnosis
    // names it as the blocking cause
    assert!(snapshot.get("collection_errors").is_none(), "{snapshot:#}");
    let scp = snapshot["accounts"][&kc.b]["organization"]["scp"]
        .as_array()
        .expect("scp levels");
    assert_eq!(scp.len(), 3, "{scp:?}");
    assert!(scp[1]
        .as_array()
        .expect("level")
        .iter()
        .any(|p| p["Policy"]["PolicySummary"]["Name"] == "DenyObjectReads"));
    assert_eq!(blocking(&d), ["SCP_EXPLICIT_DENY"], "{d:#}");
    let first = &d["findings"][0];
    assert!(
        first["policy"]
            .as_str()
            .unwrap_or("")
            .contains("DenyObjectReads"),
        "{first:#}"
    );
    for op in [
        "organizations:ListParents",
        "organizations:ListPoliciesForTarget",
        "organizations:DescribePolicy",
    ] {
        assert!(ops.iter().any(|o| o == op), "{op} not read: {ops:?}");
    }
    eprintln!("cold collection with the organization's policies: {depth} round trips deep");
    // Member sessions and the org reader's (1), DescribeOrganization (2), B, the OU, the root
    // (3 to 5), DescribePolicy (6): at most 6, less when A's walk has cached the root by the
    // time B's reaches it; docs/live.md states this figure.
    assert!((5..=6).contains(&depth), "{depth}");
    // AND a warm container reads none of it again
    let report = diagnose_event(&c, &kc.event()).await.expect("warm");
    let s = &report.diagnosed[0].stats;
    assert!(
        !s.by_operation
            .keys()
            .any(|k| k.starts_with("organizations:")),
        "{s:?}"
    );
}

#[tokio::test]
async fn an_rcp_on_the_bucket_owners_account_is_read_and_named() {
    let m = Moto::connect("org_rcp").await;
    let (mgmt, _root, _ou, a, b) = organization(&m).await;
    let kc = Kc::build_in(&m, Cause::None, a.clone(), b).await;
    // GIVEN an RCP on A denying every object read of its buckets
    attach(
        &m,
        &mgmt,
        PolicyType::ResourceControlPolicy,
        "DenyObjectReadsOfA",
        json!({"Version": "2012-10-17", "Statement": [{"Sid": "NoObjectReads", "Effect": "Deny",
            "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}),
        &a,
    )
    .await;
    let reader = format!("arn:aws:iam::{mgmt}:role/S3KmsAuditorOrgReader");
    let (d, snapshot, _, _) =
        live(&collector(&m, Some(OrgAccess::Role(reader))), &kc.event()).await;
    let rcp = snapshot["accounts"][&a]["organization"]["rcp"]
        .as_array()
        .expect("rcp levels");
    assert_eq!(rcp.len(), 2, "A sits under the root: {rcp:?}");
    assert_eq!(blocking(&d), ["RCP_EXPLICIT_DENY"], "{d:#}");
}

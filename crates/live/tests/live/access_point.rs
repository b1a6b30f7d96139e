//! A read through an S3 access point, on the test server: the collector reads the access point
//! (`GetAccessPoint`, `GetAccessPointPolicy`) in its owner's account through the member role,
//! and the bucket behind it when the request names only the access point.
//!
//! What the server cannot show, so these tests do not claim it: moto serves S3 Control's
//! access point calls, but it neither routes object requests through an access point ARN or
//! alias nor enforces access point policies, network origins or bucket-policy delegation, so
//! the denial itself is not reproduced here (the offline scenarios
//! `tests/scenarios/*access-point*` cover those semantics, following AWS's documentation).
//! Its `AccessPointArn` always names `us-east-1` whatever the Region, and it never returns
//! `BucketAccountId`; the collector keeps an ARN only when it names the access point asked for.

use std::time::Duration;

use auditor::diagnose::{diagnose, Code};
use auditor::event::adhoc_request;
use auditor::snapshot::{NetworkOrigin, Snapshot};
use aws_sdk_s3control::config::endpoint::{Endpoint, EndpointFuture, Params, ResolveEndpoint};
use aws_sdk_s3control::types::VpcConfiguration;
use serde_json::json;

use crate::kc::{collector, Cause, Kc};
use crate::support::{unique, Moto, REGION};

/// The test server's own URL: S3 Control would put the account id in front of its host.
#[derive(Debug)]
struct Plain(String);

impl ResolveEndpoint for Plain {
    fn resolve_endpoint<'a>(&'a self, _: &'a Params) -> EndpointFuture<'a> {
        EndpointFuture::ready(Ok(Endpoint::builder().url(self.0.clone()).build()))
    }
}

async fn s3control(m: &Moto, account: &str) -> aws_sdk_s3control::Client {
    let cfg = m.account(account).await;
    aws_sdk_s3control::Client::from_conf(
        aws_sdk_s3control::config::Builder::from(&cfg)
            .endpoint_resolver(Plain(m.endpoint.clone()))
            .build(),
    )
}

#[tokio::test]
async fn a_read_through_an_access_point_collects_it_and_its_bucket() {
    let test = "a_read_through_an_access_point_collects_it_and_its_bucket";
    let m = Moto::connect(test).await;
    let kc = Kc::build(&m, Cause::None).await;
    let name = unique("ap").to_ascii_lowercase();
    let control = s3control(&m, &kc.a).await;
    control
        .create_access_point()
        .account_id(&kc.a)
        .name(&name)
        .bucket(&kc.bucket)
        .vpc_configuration(
            VpcConfiguration::builder()
                .vpc_id("vpc-0a1b2c3d4e5f60718")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateAccessPoint on the test server");
    let ap_arn = format!("arn:aws:s3:{REGION}:{}:accesspoint/{name}", kc.a);
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{}:role/reader", kc.b)},
        "Action": "s3:GetObject", "Resource": format!("{ap_arn}/object/*")}]});
    control
        .put_access_point_policy()
        .account_id(&kc.a)
        .name(&name)
        .policy(policy.to_string())
        .send()
        .await
        .expect("PutAccessPointPolicy on the test server");

    // The request names the access point only, as `--bucket <access point ARN>` does.
    let req = adhoc_request(
        &format!("arn:aws:sts::{}:assumed-role/reader/s1", kc.b),
        "s3:GetObject",
        &format!("{ap_arn}/object/reports/q1.csv"),
    )
    .unwrap();
    let c = collector(&m, Duration::from_secs(300));
    let meter = auditor_live::meter::Meter::new();
    let raw = c.collect(&req, &meter).await.expect("collected");
    assert!(
        raw["collection_errors"]
            .as_array()
            .is_none_or(|e| !e.iter().any(|e| e["operation"]
                .as_str()
                .is_some_and(|o| o.contains("AccessPoint")))),
        "{raw:#}"
    );
    let snap = Snapshot::from_value(&raw).expect("valid snapshot");
    let (_, ap) = snap
        .access_point(&kc.a, &name)
        .expect("the access point was read");
    assert_eq!(ap.bucket, kc.bucket);
    assert_eq!(ap.network_origin, NetworkOrigin::Vpc);
    assert_eq!(ap.vpc_id.as_deref(), Some("vpc-0a1b2c3d4e5f60718"));
    assert_eq!(
        ap.policy.as_ref().map(|p| &p.document),
        Some(&policy),
        "the access point policy as put"
    );
    assert!(
        snap.bucket(&kc.bucket).is_some(),
        "the bucket behind it: {raw:#}"
    );
    assert_eq!(
        meter.stats().by_operation.get("s3:GetAccessPoint"),
        Some(&1)
    );

    // The collected state diagnoses the read through the access point: an ad hoc request does
    // not say where it came from, so the VPC-only access point leaves the verdict open, and
    // the reader's IAM policy (on the bucket ARN in this scenario) does not cover the access
    // point ARN.
    let d = diagnose(&snap, &req);
    let blocking: Vec<Code> = d.blocking().map(|f| f.code).collect();
    assert!(blocking.contains(&Code::IdentityPolicyNoAllow), "{d:#?}");
    assert!(
        d.hops
            .iter()
            .any(|h| h.resource == format!("{ap_arn}/object/reports/q1.csv")),
        "{:?}",
        d.hops
    );
    assert!(d.findings.iter().any(
        |f| f.code == Code::MissingEvidence && f.explanation.contains("vpc-0a1b2c3d4e5f60718")
    ));
}

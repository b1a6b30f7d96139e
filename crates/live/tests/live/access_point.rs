//! A read through an S3 access point, on the test server: the collector reads the access point
//! (`GetAccessPoint`, `GetAccessPointPolicy`) in its owner's account through the member role,
//! and the bucket behind it when the request names only the access point.
//!
//! What the server cannot show, so these tests do not claim it: moto serves S3 Control's
//! access point calls, but it neither routes object requests through an access point ARN or
//! alias nor enforces access point policies, network origins or bucket-policy delegation, so
//! the denial itself is not reproduced here (the offline scenarios
//! `tests/scenarios/*access-point*` cover those semantics, following AWS's documentation).
//! Nor can the Rust SDK read its S3 Control answers: moto 5.2.5 wraps them in an
//! `<OperationResponse>` root element (`<GetAccessPointResponse>`) where the SDK's restXml
//! parser requires `<GetAccessPointResult>`, so every S3 Control read fails to decode. What the
//! server shows is therefore the collector's handling of a read it cannot use: one collection
//! error naming the access point, nothing invented in its place, and a diagnosis that says the
//! access point was not seen. The decoding of a real answer is covered by the collector's unit
//! tests with the in-memory AWS (`collect/tests.rs`).

use std::time::Duration;

use auditor::diagnose::{diagnose, Code, Verdict};
use auditor::event::adhoc_request;
use auditor::snapshot::Snapshot;
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
async fn a_read_through_an_access_point_the_server_cannot_describe_is_a_stated_gap() {
    let test = "a_read_through_an_access_point_the_server_cannot_describe_is_a_stated_gap";
    let m = Moto::connect(test).await;
    let kc = Kc::build(&m, Cause::None).await;
    let name = unique("ap").to_ascii_lowercase();
    let control = s3control(&m, &kc.a).await;
    let created = control
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
        .await;
    // The server creates it, but answers with a root element the SDK rejects (see above).
    if let Err(e) = &created {
        assert!(
            format!("{e:?}").contains("CreateAccessPointResponse"),
            "CreateAccessPoint failed otherwise: {e:?}"
        );
    }
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
        .expect("PutAccessPointPolicy on the test server (the access point exists)");

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
    // The read was made, in the access point owner's account, through the member role.
    assert_eq!(
        meter.stats().by_operation.get("s3:GetAccessPoint"),
        Some(&1)
    );
    let errors = raw["collection_errors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        errors.iter().any(|e| e["operation"] == "s3:GetAccessPoint"
            && e["account"] == kc.a.as_str()
            && e["resource"] == ap_arn.as_str()),
        "{raw:#}"
    );
    let snap = Snapshot::from_value(&raw).expect("valid snapshot");
    assert!(
        snap.access_point(&kc.a, &name).is_none(),
        "nothing is invented for the access point it could not read"
    );
    let d = diagnose(&snap, &req);
    assert_eq!(d.verdict, Verdict::Unknown, "{d:#?}");
    assert!(d
        .findings
        .iter()
        .any(|f| f.code == Code::MissingEvidence && f.explanation.contains(&name)));
}

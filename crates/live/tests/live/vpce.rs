//! The VPC endpoint layer on the test server: the working knowledge-center setup, read from
//! inside B's VPC through an S3 gateway endpoint whose policy is the classic data perimeter
//! (`s3:ResourceAccount` = B). The collector reads the endpoint with `ec2:DescribeVpcEndpoints`
//! in B, and the diagnosis blames the endpoint policy, addressed to B, with a verified fix.
//!
//! What the server cannot show: moto evaluates no policy (neither the endpoint's nor IAM), so
//! it cannot deny the read itself nor refuse `DescribeVpcEndpoints` to a role that lacks the
//! permission (tests/deploy.rs checks that the member role grants it); the record is the
//! sample event with `vpcEndpointId` / `vpcEndpointAccountId` added, as S3 writes them.

use std::time::Duration;

use auditor::diagnose::diagnose;
use auditor::event::{parse_events, EventOutcome};
use auditor::snapshot::Snapshot;
use auditor_live::handler::diagnose_event;
use aws_sdk_ec2::types::VpcEndpointType;
use serde_json::{json, Value};

use crate::kc::{collector, Cause, Kc};
use crate::support::{Moto, REGION};

/// Creates a VPC in `account` and an S3 gateway endpoint with `policy` (or EC2's default
/// when `None`); returns the endpoint id and the VPC id.
async fn gateway_endpoint(m: &Moto, account: &str, policy: Option<&Value>) -> (String, String) {
    let ec2 = aws_sdk_ec2::Client::new(&m.account(account).await);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.44.0.0/16")
        .send()
        .await
        .expect("create vpc")
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_owned();
    let mut req = ec2
        .create_vpc_endpoint()
        .vpc_id(&vpc)
        .vpc_endpoint_type(VpcEndpointType::Gateway)
        .service_name(format!("com.amazonaws.{REGION}.s3"));
    if let Some(p) = policy {
        req = req.policy_document(p.to_string());
    }
    let id = req
        .send()
        .await
        .expect("create vpc endpoint")
        .vpc_endpoint()
        .and_then(|e| e.vpc_endpoint_id())
        .expect("endpoint id")
        .to_owned();
    (id, vpc)
}

/// The sample event, as recorded through `endpoint` of `owner`.
fn through(kc: &Kc, endpoint: &str, owner: &str) -> Value {
    let mut event = kc.event();
    let detail = event
        .get_mut("detail")
        .and_then(Value::as_object_mut)
        .expect("EventBridge detail");
    detail.insert("vpcEndpointId".into(), json!(endpoint));
    detail.insert("vpcEndpointAccountId".into(), json!(owner));
    detail.insert("sourceIPAddress".into(), json!("10.44.7.19"));
    event
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

#[tokio::test]
async fn vpce_perimeter_policy_is_read_live_and_blamed_on_the_endpoint_owner() {
    let m = Moto::connect("vpce_perimeter").await;
    let kc = Kc::build(&m, Cause::None).await;
    let perimeter = json!({"Version": "2012-10-17", "Statement": [{"Sid": "OwnAccountBucketsOnly",
        "Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*",
        "Condition": {"StringEquals": {"s3:ResourceAccount": kc.b}}}]});
    let (endpoint, vpc) = gateway_endpoint(&m, &kc.b, Some(&perimeter)).await;
    let event = through(&kc, &endpoint, &kc.b);
    let collector = collector(&m, Duration::from_secs(300));
    let report = diagnose_event(&collector, &event).await.expect("diagnosed");
    assert_eq!(report.diagnosed.len(), 1);
    let live = &report.diagnosed[0];

    // What the server returns for the endpoint: the policy as the JSON string it was given,
    // the VPC and the owner.
    let listed = &live.snapshot["accounts"][kc.b.as_str()]["vpc_endpoints"]["VpcEndpoints"][0];
    assert_eq!(listed["VpcEndpointId"], endpoint.as_str(), "{listed:#}");
    assert_eq!(listed["VpcId"], vpc.as_str());
    assert_eq!(listed["OwnerId"], kc.b.as_str());
    let doc: Value = serde_json::from_str(listed["PolicyDocument"].as_str().expect("a string"))
        .expect("JSON policy");
    assert_eq!(doc, perimeter);
    assert!(
        live.snapshot.get("collection_errors").is_none(),
        "{:#}",
        live.snapshot
    );

    let d = serde_json::to_value(&live.diagnosis).expect("json");
    assert_eq!(d["verdict"], "denied", "{d:#}");
    assert_eq!(blocking(&d), ["VPC_ENDPOINT_POLICY_NO_ALLOW"]);
    assert_eq!(d["findings"][0]["account"], kc.b.as_str());
    assert_eq!(d["fixes_verified"], true);
    let cli = d["findings"][0]["fix"]["cli"].as_str().expect("cli");
    assert!(
        cli.starts_with(&format!(
            "aws ec2 modify-vpc-endpoint --region {REGION} --vpc-endpoint-id {endpoint}"
        )),
        "{cli}"
    );

    // The snapshot alone reproduces the diagnosis offline.
    let snap = Snapshot::from_value(&live.snapshot).expect("valid snapshot");
    let Some(EventOutcome::Denied(req)) = parse_events(&event).expect("event").pop() else {
        panic!("the sample is a denial");
    };
    assert_eq!(
        serde_json::to_value(diagnose(&snap, &req)).expect("json"),
        d,
        "live and offline differ"
    );
}

#[tokio::test]
async fn vpce_default_policy_allows_and_an_unknown_endpoint_is_a_stated_gap() {
    let m = Moto::connect("vpce_default").await;
    let kc = Kc::build(&m, Cause::None).await;
    let (endpoint, _) = gateway_endpoint(&m, &kc.b, None).await;
    let collector = collector(&m, Duration::from_secs(300));

    // EC2's default endpoint policy (full access): nothing blocks.
    let report = diagnose_event(&collector, &through(&kc, &endpoint, &kc.b))
        .await
        .expect("diagnosed");
    let d = serde_json::to_value(&report.diagnosed[0].diagnosis).expect("json");
    assert_eq!(d["verdict"], "allowed", "{d:#}");
    let seen = d["coverage"]
        .as_array()
        .expect("coverage")
        .iter()
        .find(|c| c["layer"] == "vpc_endpoint_policy")
        .expect("row");
    assert_eq!(seen["seen"], "seen");

    // An endpoint B does not have: EC2 answers InvalidVpcEndpointId.NotFound, the snapshot
    // lists B's endpoints without it, and the verdict is unknown, never allowed.
    let report = diagnose_event(&collector, &through(&kc, "vpce-0123456789abcdef0", &kc.b))
        .await
        .expect("diagnosed");
    let live = &report.diagnosed[0];
    let d = serde_json::to_value(&live.diagnosis).expect("json");
    assert_eq!(d["verdict"], "unknown", "{d:#}");
    assert_eq!(
        live.snapshot["accounts"][kc.b.as_str()]["vpc_endpoints"]["VpcEndpoints"],
        json!([]),
        "{:#}",
        live.snapshot
    );
    assert!(d.to_string().contains("not assumed to allow"), "{d:#}");
}

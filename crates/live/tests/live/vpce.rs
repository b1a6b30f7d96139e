//! The VPC endpoint layer on the test server: the working knowledge-center setup, read from
//! inside B's VPC through an S3 gateway endpoint whose policy is the classic data perimeter
//! (`s3:ResourceAccount` = B). The collector reads the endpoint with `ec2:DescribeVpcEndpoints`
//! in B, and the diagnosis blames the endpoint policy, addressed to B, with a verified fix.
//!
//! What the server cannot show: moto evaluates no policy (neither the endpoint's nor IAM), so
//! it cannot deny the read itself nor refuse `DescribeVpcEndpoints` to a role that lacks the
//! permission (tests/deploy.rs checks that the member role grants it); the record is the
//! sample event with `vpcEndpointId` / `vpcEndpointAccountId` added, as S3 writes them. The
//! VPC and its endpoint are created with EC2's Query API directly (`CreateVpc`,
//! `CreateVpcEndpoint`), as the collector reads them, without the EC2 SDK.

use std::time::{Duration, SystemTime};

use auditor::diagnose::diagnose;
use auditor::event::{parse_events, EventOutcome};
use auditor::snapshot::Snapshot;
use auditor_live::handler::diagnose_event;
use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use crate::kc::{collector, Cause, Kc};
use crate::support::{Moto, REGION};

/// One EC2 Query call on the test server with `cfg`'s credentials, signed as EC2 expects
/// (moto reads the account from the access key and the service from the credential scope; it
/// checks no signature): the answer's body. Fails the test on an error answer.
async fn ec2_query(m: &Moto, cfg: &SdkConfig, params: &[(&str, &str)]) -> String {
    let body = params
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
        .collect::<Vec<_>>()
        .join("&");
    let url = format!("{}/", m.endpoint.trim_end_matches('/'));
    let creds = cfg
        .credentials_provider()
        .expect("credentials")
        .provide_credentials()
        .await
        .expect("credentials");
    let identity = Identity::from(creds);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("ec2")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("signing parameters")
        .into();
    let form = "application/x-www-form-urlencoded";
    let signable = SignableRequest::new(
        "POST",
        url.as_str(),
        [("content-type", form)].into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
    let mut request = HttpRequest::new(SdkBody::from(body.clone()));
    request.set_method("POST").expect("method");
    request.set_uri(url.as_str()).expect("uri");
    request.headers_mut().insert("content-type", form);
    for h in instructions.into_parts().0 {
        request.headers_mut().insert(h.name(), h.value().to_owned());
    }
    let connector = aws_smithy_http_client::Connector::builder()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build();
    let response = connector
        .call(request)
        .await
        .expect("the test server answers");
    let status = response.status().as_u16();
    let bytes = ByteStream::new(response.into_body())
        .collect()
        .await
        .expect("body")
        .into_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert_eq!(status, 200, "{body}: {text}");
    text
}

/// The text of the first `<name>` element of `xml` (the ids these answers carry need no
/// unescaping).
fn element(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{name}> in {xml}"))
        + open.len();
    let end = xml[start..].find('<').expect("closing tag") + start;
    xml[start..end].to_owned()
}

/// Creates a VPC in `account` and an S3 gateway endpoint with `policy` (or EC2's default
/// when `None`), with EC2's Query API; returns the endpoint id and the VPC id.
async fn gateway_endpoint(m: &Moto, account: &str, policy: Option<&Value>) -> (String, String) {
    let cfg = m.account(account).await;
    let created = ec2_query(
        m,
        &cfg,
        &[
            ("Action", "CreateVpc"),
            ("Version", "2016-11-15"),
            ("CidrBlock", "10.44.0.0/16"),
        ],
    )
    .await;
    let vpc = element(&created, "vpcId");
    let service = format!("com.amazonaws.{REGION}.s3");
    let policy = policy.map(Value::to_string);
    let mut params = vec![
        ("Action", "CreateVpcEndpoint"),
        ("Version", "2016-11-15"),
        ("VpcId", vpc.as_str()),
        ("VpcEndpointType", "Gateway"),
        ("ServiceName", service.as_str()),
    ];
    if let Some(p) = &policy {
        params.push(("PolicyDocument", p.as_str()));
    }
    let created = ec2_query(m, &cfg, &params).await;
    (element(&created, "vpcEndpointId"), vpc)
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
    // the VPC and the owner. The endpoint exists only in B on the server, so reading it at all
    // shows the read went through B's member-role session.
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
    // EC2 answered (nothing there): not a failed read, so no gap is recorded, and the
    // endpoint's layer is not counted as seen.
    assert!(
        live.snapshot.get("collection_errors").is_none(),
        "{:#}",
        live.snapshot
    );
    let row = d["coverage"]
        .as_array()
        .expect("coverage")
        .iter()
        .find(|c| c["layer"] == "vpc_endpoint_policy")
        .expect("row");
    assert_ne!(row["seen"], "seen", "{row:#}");
}

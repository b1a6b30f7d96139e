//! The hand-written EC2 client without a server: the request it signs, the answers it reads,
//! its errors and its retries (through a scripted connector).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use aws_config::timeout::TimeoutConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::http::{HttpConnectorFuture, SharedHttpConnector};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use serde_json::json;

use super::*;
use crate::aws::{CountAttempts, Ec2Connector};

/// A `DescribeVpcEndpoints` answer in the shape of the EC2 API reference
/// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeVpcEndpoints.html,
/// API_VpcEndpoint.html): two endpoints, one interface and one gateway, with the nested lists
/// (`subnetIdSet`, `routeTableIdSet`, `groupSet`, `dnsEntrySet`, `tagSet`) whose own `item`s
/// are not endpoints, and policies as XML-escaped JSON.
const ANSWER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeVpcEndpointsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>5d0f6a3e-91c2-4b7e-a1d8-0c4e2f7b9a61</requestId>
    <vpcEndpointSet>
        <item>
            <vpcEndpointId>vpce-0a1b2c3d4e5f60718</vpcEndpointId>
            <vpcEndpointType>Interface</vpcEndpointType>
            <vpcId>vpc-0fedcba9876543210</vpcId>
            <serviceName>com.amazonaws.us-west-2.kms</serviceName>
            <state>available</state>
            <policyDocument>{&quot;Statement&quot;:[{&quot;Action&quot;:&quot;*&quot;,&quot;Effect&quot;:&quot;Allow&quot;,&quot;Principal&quot;:&quot;*&quot;,&quot;Resource&quot;:&quot;*&quot;}]}</policyDocument>
            <routeTableIdSet/>
            <subnetIdSet>
                <item>subnet-0123456789abcdef0</item>
            </subnetIdSet>
            <groupSet>
                <item>
                    <groupId>sg-0123456789abcdef0</groupId>
                    <groupName>default</groupName>
                </item>
            </groupSet>
            <ipAddressType>ipv4</ipAddressType>
            <dnsOptions>
                <dnsRecordIpType>ipv4</dnsRecordIpType>
            </dnsOptions>
            <privateDnsEnabled>true</privateDnsEnabled>
            <requesterManaged>false</requesterManaged>
            <networkInterfaceIdSet>
                <item>eni-0123456789abcdef0</item>
            </networkInterfaceIdSet>
            <dnsEntrySet>
                <item>
                    <dnsName>vpce-0a1b2c3d4e5f60718-4e8f2k1q.kms.us-west-2.vpce.amazonaws.com</dnsName>
                    <hostedZoneId>Z1YSA3EXCYUU9Z</hostedZoneId>
                </item>
            </dnsEntrySet>
            <creationTimestamp>2024-03-11T09:21:47.000Z</creationTimestamp>
            <tagSet>
                <item>
                    <key>Name</key>
                    <value>kms-endpoint</value>
                </item>
            </tagSet>
            <ownerId>444455556666</ownerId>
        </item>
        <item>
            <vpcEndpointId>vpce-0123456789abcdef0</vpcEndpointId>
            <vpcEndpointType>Gateway</vpcEndpointType>
            <vpcId>vpc-0fedcba9876543210</vpcId>
            <serviceName>com.amazonaws.us-west-2.s3</serviceName>
            <state>available</state>
            <policyDocument>{
  &quot;Version&quot;: &quot;2012-10-17&quot;,
  &quot;Statement&quot;: [{&quot;Sid&quot;: &quot;OwnAccountBucketsOnly&quot;, &quot;Effect&quot;: &quot;Allow&quot;, &quot;Principal&quot;: &quot;*&quot;,
    &quot;Action&quot;: &quot;s3:*&quot;, &quot;Resource&quot;: &quot;*&quot;,
    &quot;Condition&quot;: {&quot;StringEquals&quot;: {&quot;s3:ResourceAccount&quot;: &quot;444455556666&quot;},
      &quot;StringLike&quot;: {&quot;aws:userid&quot;: &quot;A&amp;B&lt;C&gt;*&quot;}}}]
}</policyDocument>
            <routeTableIdSet>
                <item>rtb-0123456789abcdef0</item>
            </routeTableIdSet>
            <subnetIdSet/>
            <groupSet/>
            <privateDnsEnabled>false</privateDnsEnabled>
            <requesterManaged>false</requesterManaged>
            <networkInterfaceIdSet/>
            <dnsEntrySet/>
            <creationTimestamp>2024-03-11T09:25:03.000Z</creationTimestamp>
            <tagSet/>
            <ownerId>444455556666</ownerId>
        </item>
    </vpcEndpointSet>
</DescribeVpcEndpointsResponse>"#;

const NOT_FOUND: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidVpcEndpointId.NotFound</Code><Message>The Vpc Endpoint Id 'vpce-0badbadbadbadbad0' does not exist</Message></Error></Errors><RequestID>0e1a7c52-3d5b-4f0e-9b8a-2c6d4e8f1a30</RequestID></Response>"#;

fn ec2_error(code: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>m</Message></Error></Errors><RequestID>r</RequestID></Response>"
    )
}

#[test]
fn the_answer_is_read_per_endpoint_and_field() {
    let gateway = endpoint_of(ANSWER, "vpce-0123456789abcdef0")
        .expect("readable")
        .expect("listed");
    let policy = gateway["PolicyDocument"].as_str().expect("a string");
    // The policy comes back as the JSON text it was given, unescaped.
    let doc: Value = serde_json::from_str(policy).expect("JSON");
    assert_eq!(
        doc["Statement"][0]["Condition"]["StringLike"]["aws:userid"],
        "A&B<C>*"
    );
    assert_eq!(
        doc["Statement"][0]["Condition"]["StringEquals"]["s3:ResourceAccount"],
        "444455556666"
    );
    let mut without_policy = gateway.clone();
    without_policy
        .as_object_mut()
        .expect("object")
        .remove("PolicyDocument");
    assert_eq!(
        without_policy,
        json!({
            "VpcEndpointId": "vpce-0123456789abcdef0",
            "VpcId": "vpc-0fedcba9876543210",
            "OwnerId": "444455556666",
            "ServiceName": "com.amazonaws.us-west-2.s3",
            "VpcEndpointType": "Gateway",
        })
    );

    // The other entry is read the same way, its nested lists skipped whole.
    let interface = endpoint_of(ANSWER, "vpce-0a1b2c3d4e5f60718")
        .expect("readable")
        .expect("listed");
    assert_eq!(interface["VpcEndpointType"], "Interface");
    assert_eq!(interface["ServiceName"], "com.amazonaws.us-west-2.kms");
    assert_eq!(
        interface["PolicyDocument"],
        r#"{"Statement":[{"Action":"*","Effect":"Allow","Principal":"*","Resource":"*"}]}"#
    );
    assert_eq!(interface.as_object().map(Map::len), Some(6));

    // The entry passes the snapshot's own reader of `describe-vpc-endpoints` entries.
    let e = auditor::snapshot::VpcEndpoint::from_value(&gateway).expect("a snapshot entry");
    assert_eq!(e.id, "vpce-0123456789abcdef0");

    // An id the set does not list (the route table's `item` is not an endpoint), an empty
    // set, and answers that are not DescribeVpcEndpoints answers.
    assert_eq!(endpoint_of(ANSWER, "rtb-0123456789abcdef0"), Ok(None));
    let empty = "<DescribeVpcEndpointsResponse><requestId>r</requestId><vpcEndpointSet/></DescribeVpcEndpointsResponse>";
    assert_eq!(endpoint_of(empty, "vpce-0123456789abcdef0"), Ok(None));
    assert!(endpoint_of(NOT_FOUND, "vpce-0123456789abcdef0").is_err());
    assert!(endpoint_of("not xml at all", "vpce-0123456789abcdef0").is_err());
    assert!(endpoint_of(
        "<DescribeVpcEndpointsResponse><vpcEndpointSet><item><vpcEndpointId><b/></vpcEndpointId></item></vpcEndpointSet></DescribeVpcEndpointsResponse>",
        "x"
    )
    .is_err());
}

#[test]
fn error_answers_mean_what_the_sdk_reads_errors_mean() {
    assert_eq!(
        error_of(400, NOT_FOUND),
        ReadError::Service {
            code: "InvalidVpcEndpointId.NotFound".into(),
            message: Some("The Vpc Endpoint Id 'vpce-0badbadbadbadbad0' does not exist".into()),
        }
    );
    assert!(matches!(
        error_of(403, &ec2_error("UnauthorizedOperation")),
        ReadError::Denied { code, .. } if code == "UnauthorizedOperation"
    ));
    // EC2 answers throttling with HTTP 503 and `RequestLimitExceeded`; the code alone decides.
    for (status, code) in [
        (503, "RequestLimitExceeded"),
        (400, "RequestLimitExceeded"),
        (400, "Throttling"),
        (500, "InternalError"),
    ] {
        assert!(
            matches!(error_of(status, &ec2_error(code)), ReadError::Transient { code: c, .. } if c == code),
            "{status} {code}"
        );
    }
    // A body that is not an EC2 error: the status decides.
    assert!(matches!(
        error_of(502, "<html>Bad Gateway</html>"),
        ReadError::Transient { code, .. } if code == "HTTP502"
    ));
    assert!(matches!(
        error_of(403, ""),
        ReadError::Denied { code, .. } if code == "AccessDenied"
    ));
}

#[test]
fn the_form_encodes_every_part() {
    assert_eq!(
        form(&[
            ("Action", "DescribeVpcEndpoints"),
            ("Version", VERSION),
            ("VpcEndpointId.1", "vpce-0123&x=1 ü")
        ]),
        "Action=DescribeVpcEndpoints&Version=2016-11-15&VpcEndpointId.1=vpce-0123%26x%3D1%20%C3%BC"
    );
}

/// 2024-03-11T09:21:47Z.
fn at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_710_148_907)
}

#[test]
fn requests_are_signed_for_ec2_in_the_region() {
    let session = Credentials::new(
        "ASIAEXAMPLE",
        "secret",
        Some("session-token".into()),
        None,
        "t",
    );
    let body = "Action=DescribeVpcEndpoints&Version=2016-11-15&VpcEndpointId.1=vpce-1";
    let url = "https://ec2.eu-west-1.amazonaws.com/";
    let r = signed_request(url, "eu-west-1", body, &session, at()).expect("signed");
    assert_eq!(r.method(), "POST");
    assert_eq!(r.uri(), url);
    assert_eq!(r.body().bytes(), Some(body.as_bytes()));
    let h = r.headers();
    assert_eq!(h.get("content-type"), Some(FORM));
    assert_eq!(h.get("x-amz-date"), Some("20240311T092147Z"));
    assert_eq!(h.get("x-amz-security-token"), Some("session-token"));
    let auth = h.get("authorization").expect("Authorization");
    assert!(
        auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20240311/eu-west-1/ec2/aws4_request, "
        ),
        "{auth}"
    );
    assert!(
        auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,"),
        "{auth}"
    );
    // The whole header, as an independent SigV4 signer (botocore's `SigV4Auth`, given the same
    // request, credentials and time) computes it.
    assert_eq!(
        auth,
        "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20240311/eu-west-1/ec2/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, \
         Signature=0e1c9aeee0bf127fa034e90f2cd1aaff62257e0314ae5cdc3d0acf848958f030"
    );

    // Long-term credentials: no token; another body, another signature.
    let plain = Credentials::new("AKIAEXAMPLE", "secret", None, None, "t");
    let r2 = signed_request(url, "eu-west-1", body, &plain, at()).expect("signed");
    assert!(!r2.headers().contains_key("x-amz-security-token"));
    assert_eq!(
        r2.headers().get("authorization"),
        Some(
            "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240311/eu-west-1/ec2/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=be66b3912eb14618b77d4a094454d7db262be24758305ab6cb2dbf21abc3941a"
        )
    );
    let r3 = signed_request(url, "eu-west-1", "Action=Other", &plain, at()).expect("signed");
    let sig = |r: &HttpRequest| {
        r.headers()
            .get("authorization")
            .and_then(|a| a.split("Signature=").nth(1).map(str::to_owned))
    };
    assert_ne!(sig(&r2), sig(&r3));
    assert!(signed_request("not a url", "eu-west-1", body, &plain, at()).is_err());
}

#[test]
fn backoff_is_jittered_under_the_exponential_cap() {
    let retry = RetryConfig::standard()
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_millis(350));
    let waits: Vec<Duration> = (0..50).map(|_| backoff(Some(&retry), 1)).collect();
    assert!(waits.iter().all(|w| *w < Duration::from_millis(100)));
    assert!(
        waits.windows(2).any(|w| w[0] != w[1]),
        "jitter varies: {waits:?}"
    );
    // Doubled per attempt, never above the cap.
    assert!((0..50).all(|_| backoff(Some(&retry), 2) < Duration::from_millis(200)));
    assert!((0..50).all(|_| backoff(Some(&retry), 9) <= Duration::from_millis(350)));
    assert!((0..50).any(|_| backoff(Some(&retry), 9) > Duration::from_millis(175)));
}

/// A connector that answers from a script and keeps the requests it was sent.
#[derive(Debug, Default)]
struct Scripted {
    answers: Mutex<VecDeque<(u16, String)>>,
    seen: Mutex<Vec<(String, Option<String>, String)>>,
}

#[derive(Debug, Clone)]
struct Shared(Arc<Scripted>);

impl HttpConnector for Shared {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        self.0.seen.lock().unwrap().push((
            request.uri().to_owned(),
            request.headers().get("authorization").map(str::to_owned),
            String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).into_owned(),
        ));
        let (status, body) = self
            .0
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .expect("a scripted answer");
        HttpConnectorFuture::ready(Ok(HttpResponse::new(
            StatusCode::try_from(status).unwrap(),
            SdkBody::from(body),
        )))
    }
}

fn clients(endpoint: Option<&str>, answers: &[(u16, &str)]) -> (Clients, Arc<Scripted>) {
    let script = Arc::new(Scripted::default());
    script
        .answers
        .lock()
        .unwrap()
        .extend(answers.iter().map(|(s, b)| (*s, (*b).to_owned())));
    let mut config = aws_config::SdkConfig::builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "ASIAEXAMPLE",
            "secret",
            Some("token".into()),
            None,
            "t",
        )))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(10))
                .build(),
        );
    if let Some(e) = endpoint {
        config = config.endpoint_url(e);
    }
    let http = Ec2Connector::default();
    http.set(SharedHttpConnector::new(Shared(script.clone())))
        .unwrap();
    (
        Clients::new(config.build(), false, CountAttempts::default(), 0, http),
        script,
    )
}

#[tokio::test]
async fn throttling_is_retried_and_every_attempt_counted() {
    let throttled = ec2_error("RequestLimitExceeded");
    let (c, script) = clients(None, &[(503, &throttled), (503, &throttled), (200, ANSWER)]);
    let ec2 = Ec2 {
        clients: &c,
        region: "us-west-2",
    };
    let got = ec2
        .describe_vpc_endpoints("vpce-0123456789abcdef0")
        .await
        .expect("answered on the third attempt")
        .expect("listed");
    assert_eq!(got["VpcEndpointType"], "Gateway");
    assert_eq!(c.attempts.0.load(Ordering::Relaxed), 3);
    let seen = script.seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    for (uri, auth, body) in seen.iter() {
        // No endpoint configured: the Regional endpoint of refs.rs.
        assert_eq!(uri, "https://ec2.us-west-2.amazonaws.com/");
        assert!(auth
            .as_deref()
            .is_some_and(|a| a.contains("/us-west-2/ec2/aws4_request")));
        assert_eq!(
            body,
            "Action=DescribeVpcEndpoints&Version=2016-11-15&VpcEndpointId.1=vpce-0123456789abcdef0"
        );
    }
}

#[tokio::test]
async fn persistent_throttling_is_a_failure_and_refusals_are_not_retried() {
    let throttled = ec2_error("RequestLimitExceeded");
    let (c, _) = clients(
        Some("http://127.0.0.1:4566"),
        &[(503, &throttled), (503, &throttled), (503, &throttled)],
    );
    let ec2 = Ec2 {
        clients: &c,
        region: "us-west-2",
    };
    let e = ec2.describe_vpc_endpoints("vpce-1").await.unwrap_err();
    assert!(e.is_failure(), "{e:?}");
    assert!(matches!(&e, ReadError::Transient { code, .. } if code == "RequestLimitExceeded"));
    assert_eq!(c.attempts.0.load(Ordering::Relaxed), 3);

    // Refused: one attempt, a stated gap rather than a failure.
    let (c, script) = clients(
        Some("http://127.0.0.1:4566/"),
        &[(403, &ec2_error("UnauthorizedOperation"))],
    );
    let ec2 = Ec2 {
        clients: &c,
        region: "us-west-2",
    };
    let e = ec2.describe_vpc_endpoints("vpce-1").await.unwrap_err();
    assert!(matches!(&e, ReadError::Denied { code, .. } if code == "UnauthorizedOperation"));
    assert!(!e.is_failure());
    assert_eq!(c.attempts.0.load(Ordering::Relaxed), 1);
    // A configured endpoint (the test server) replaces the Regional one.
    assert_eq!(script.seen.lock().unwrap()[0].0, "http://127.0.0.1:4566/");

    // No such endpoint: nothing there, not an error.
    let (c, _) = clients(None, &[(400, NOT_FOUND)]);
    let ec2 = Ec2 {
        clients: &c,
        region: "us-west-2",
    };
    assert_eq!(
        ec2.describe_vpc_endpoints("vpce-0badbadbadbadbad0").await,
        Ok(None)
    );

    // A success whose body is not an answer fails the read; it is never an empty list.
    let (c, _) = clients(None, &[(200, "<html>captive portal</html>")]);
    let ec2 = Ec2 {
        clients: &c,
        region: "us-west-2",
    };
    let e = ec2.describe_vpc_endpoints("vpce-1").await.unwrap_err();
    assert!(matches!(e, ReadError::Transport { .. }), "{e:?}");
}

use serde_json::{json, Value};

use super::*;

const A: &str = "111122223333";
const B: &str = "444455556666";
const SESSION: &str = "arn:aws:sts::444455556666:assumed-role/reader/etl-7";
const ROLE: &str = "arn:aws:iam::444455556666:role/team/reader";
const KEY: &str = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn session_identity() -> Value {
    json!({
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLEREADER0001:etl-7",
        "arn": SESSION,
        "accountId": B,
        "accessKeyId": "ASIAEXAMPLE",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEREADER0001", "arn": ROLE,
                              "accountId": B, "userName": "reader"},
            "attributes": {"creationDate": "2024-11-05T22:30:00Z", "mfaAuthenticated": "false"}
        }
    })
}

/// A denied cross-account GetObject as the caller's account records it.
fn get_object() -> Value {
    json!({
        "eventVersion": "1.10",
        "userIdentity": session_identity(),
        "eventTime": "2024-11-05T22:41:09Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-west-2",
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "[aws-cli/2.15.0]",
        "errorCode": "AccessDenied",
        "errorMessage": "Access Denied",
        "requestParameters": {"bucketName": "doc-example-bucket", "Host": "doc-example-bucket.s3.us-west-2.amazonaws.com",
                              "key": "reports/q1.csv"},
        "responseElements": null,
        "additionalEventData": {"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
                                "AuthenticationMethod": "AuthHeader"},
        "eventID": "11111111-0000-4000-8000-000000000001",
        "readOnly": true,
        "resources": [
            {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::doc-example-bucket/reports/q1.csv"},
            {"accountId": A, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::doc-example-bucket"}
        ],
        "eventType": "AwsApiCall",
        "managementEvent": false,
        "recipientAccountId": B,
        "sharedEventID": "22222222-0000-4000-8000-000000000002",
        "eventCategory": "Data",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256"}
    })
}

/// KMS Decrypt made by S3 on the reader's behalf, refused by the key policy.
fn decrypt_via_s3() -> Value {
    let mut identity = session_identity();
    identity["invokedBy"] = json!("s3.amazonaws.com");
    json!({
        "eventVersion": "1.10",
        "userIdentity": identity,
        "eventTime": "2024-11-05T22:41:09Z",
        "eventSource": "kms.amazonaws.com",
        "eventName": "Decrypt",
        "awsRegion": "us-west-2",
        "sourceIPAddress": "s3.amazonaws.com",
        "userAgent": "s3.amazonaws.com",
        "errorCode": "AccessDenied",
        "errorMessage": "not authorized",
        "requestParameters": {"encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                              "encryptionContext": {"aws:s3:arn": "arn:aws:s3:::doc-example-bucket/reports/q1.csv"}},
        "eventID": "33333333-0000-4000-8000-000000000003",
        "resources": [{"accountId": A, "type": "AWS::KMS::Key", "ARN": KEY}],
        "recipientAccountId": B,
        "eventCategory": "Management"
    })
}

fn one(v: &Value) -> Request {
    let outcomes = parse_events(v).unwrap();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    match outcomes.into_iter().next() {
        Some(EventOutcome::Denied(request)) => *request,
        other => panic!("expected a denied request, got {other:?}"),
    }
}

fn ctx<'a>(r: &'a Request, key: &str) -> Option<&'a str> {
    match r.context.get(key) {
        Some(ContextValue::Single(s)) => Some(s),
        Some(ContextValue::Multi(_)) => panic!("{key} is multivalued"),
        None => None,
    }
}

fn error(v: &Value) -> EventError {
    parse_events(v).unwrap_err()
}

#[test]
fn s3_get_object_requester_copy() {
    let r = one(&get_object());
    assert_eq!(r.action, "s3:GetObject");
    assert_eq!(r.principal, Principal::Arn(SESSION.into()));
    assert_eq!(r.principal_type, PrincipalType::AssumedRole);
    assert_eq!(r.principal_account.as_deref(), Some(B));
    assert_eq!(
        r.principal_id.as_deref(),
        Some("AROAEXAMPLEREADER0001:etl-7")
    );
    assert_eq!(r.role_arn.as_deref(), Some(ROLE));
    assert!(!r.role_arn_from_session);
    assert_eq!(r.principal_arn(), Some(ROLE));
    assert_eq!(
        r.resource.as_deref(),
        Some("arn:aws:s3:::doc-example-bucket/reports/q1.csv")
    );
    assert_eq!(r.bucket.as_deref(), Some("doc-example-bucket"));
    assert_eq!(r.object_key.as_deref(), Some("reports/q1.csv"));
    assert_eq!(r.resource_account.as_deref(), Some(A));
    assert!(!r.via_s3 && !r.bucket_key && !r.key_state_error);
    assert!(r.is_s3() && !r.is_kms());
    assert_eq!(r.kms_key_arn, None);
    let meta = r.event.as_ref().unwrap();
    assert_eq!(
        meta.event_id.as_deref(),
        Some("11111111-0000-4000-8000-000000000001")
    );
    assert_eq!(meta.event_name, "GetObject");
    assert_eq!(meta.event_source, "s3.amazonaws.com");
    assert_eq!(meta.aws_region.as_deref(), Some("us-west-2"));
    assert_eq!(meta.recipient_account.as_deref(), Some(B));
    assert_eq!(meta.error_code.as_deref(), Some("AccessDenied"));
    assert_eq!(meta.error_message.as_deref(), Some("Access Denied"));
    assert_eq!(
        meta.shared_event_id.as_deref(),
        Some("22222222-0000-4000-8000-000000000002")
    );
    assert_eq!(meta.vpc_endpoint_id, None);

    for (key, value) in [
        ("aws:SourceIp", "203.0.113.7"),
        ("aws:SecureTransport", "true"),
        ("aws:CurrentTime", "2024-11-05T22:41:09Z"),
        ("aws:EpochTime", "1730846469"),
        ("aws:RequestedRegion", "us-west-2"),
        ("aws:PrincipalArn", ROLE),
        ("aws:PrincipalAccount", B),
        ("aws:userid", "AROAEXAMPLEREADER0001:etl-7"),
        ("aws:PrincipalType", "AssumedRole"),
        ("aws:PrincipalIsAWSService", "false"),
        ("aws:ViaAWSService", "false"),
        ("aws:MultiFactorAuthPresent", "false"),
        ("aws:TokenIssueTime", "2024-11-05T22:30:00Z"),
        ("aws:ResourceAccount", A),
        ("aws:UserAgent", "[aws-cli/2.15.0]"),
        ("s3:ResourceAccount", A),
        ("s3:TlsVersion", "1.3"),
        ("s3:signatureversion", "AWS4-HMAC-SHA256"),
        ("s3:authType", "REST-HEADER"),
    ] {
        assert_eq!(ctx(&r, key), Some(value), "{key}");
    }
    for absent in [
        "aws:SourceVpce",
        "aws:username",
        "kms:ViaService",
        "s3:x-amz-server-side-encryption",
    ] {
        assert_eq!(ctx(&r, absent), None, "{absent}");
    }
    // TLS is shown by the record: nothing assumed.
    assert!(r.assumptions.is_empty(), "{:?}", r.assumptions);
}

#[test]
fn s3_owner_copy_without_arn_keeps_the_unique_id() {
    let mut v = get_object();
    v["userIdentity"] =
        json!({"type": "AWSAccount", "principalId": "AROAEXAMPLEREADER0001:etl-7", "accountId": B});
    v["recipientAccountId"] = json!(A);
    v.as_object_mut().unwrap().remove("tlsDetails");
    v["additionalEventData"]
        .as_object_mut()
        .unwrap()
        .remove("CipherSuite");
    let r = one(&v);
    assert_eq!(r.principal, Principal::Unknown);
    assert_eq!(r.principal.arn(), None);
    assert_eq!(r.principal_type, PrincipalType::AssumedRole);
    assert_eq!(
        r.principal_id.as_deref(),
        Some("AROAEXAMPLEREADER0001:etl-7")
    );
    assert_eq!(r.principal_account.as_deref(), Some(B));
    assert_eq!(r.role_arn, None);
    assert_eq!(ctx(&r, "aws:PrincipalArn"), None);
    assert_eq!(ctx(&r, "aws:userid"), Some("AROAEXAMPLEREADER0001:etl-7"));
    assert_eq!(ctx(&r, "aws:PrincipalAccount"), Some(B));
    assert_eq!(r.resource_account.as_deref(), Some(A));
    // No TLS evidence: unknown (tlsDetails is optional in CloudTrail), and said so.
    assert_eq!(ctx(&r, "aws:SecureTransport"), None);
    assert_eq!(r.secure_transport, None);
    assert_eq!(r.assumptions.len(), 1);
    assert!(r.assumptions[0].contains("aws:SecureTransport is left unknown"));
}

#[test]
fn resource_owner_from_the_recipient_when_resources_lack_it() {
    let mut v = get_object();
    v["userIdentity"] =
        json!({"type": "AWSAccount", "principalId": "AIDAEXAMPLEUSER", "accountId": B});
    v["recipientAccountId"] = json!(A);
    v["resources"] = json!([]);
    let r = one(&v);
    assert_eq!(r.principal_type, PrincipalType::User);
    assert_eq!(r.resource_account.as_deref(), Some(A));
    assert_eq!(ctx(&r, "aws:ResourceAccount"), Some(A));
    assert!(
        r.assumptions
            .iter()
            .any(|a| a.contains("received this copy")),
        "{:?}",
        r.assumptions
    );

    // In the caller's own copy the owner cannot be inferred.
    let mut v = get_object();
    v["resources"] = json!([]);
    let r = one(&v);
    assert_eq!(r.resource_account, None);
    assert_eq!(ctx(&r, "aws:ResourceAccount"), None);
    // The bucket and key come from requestParameters regardless.
    assert_eq!(
        r.resource.as_deref(),
        Some("arn:aws:s3:::doc-example-bucket/reports/q1.csv")
    );
}

#[test]
fn head_object_through_a_vpc_endpoint_with_version() {
    let mut v = get_object();
    v["eventName"] = json!("HeadObject");
    v["errorCode"] = json!("Forbidden");
    v["sourceIPAddress"] = json!("10.20.1.15");
    v["vpcEndpointId"] = json!("vpce-0a1b2c3d4e5f67890");
    v["requestParameters"]["versionId"] = json!("3HL4kqtJlcpXroDTDmjVBH40Nrjfkd");
    let r = one(&v);
    assert_eq!(r.action, "s3:GetObjectVersion");
    assert_eq!(
        r.version_id.as_deref(),
        Some("3HL4kqtJlcpXroDTDmjVBH40Nrjfkd")
    );
    assert_eq!(
        ctx(&r, "s3:VersionId"),
        Some("3HL4kqtJlcpXroDTDmjVBH40Nrjfkd")
    );
    assert_eq!(ctx(&r, "aws:SourceVpce"), Some("vpce-0a1b2c3d4e5f67890"));
    assert_eq!(ctx(&r, "aws:VpcSourceIp"), Some("10.20.1.15"));
    assert_eq!(ctx(&r, "aws:SourceIp"), None);
    assert_eq!(
        r.event.unwrap().vpc_endpoint_id.as_deref(),
        Some("vpce-0a1b2c3d4e5f67890")
    );
}

#[test]
fn put_object_with_encryption_headers() {
    let mut v = get_object();
    v["eventName"] = json!("PutObject");
    v["requestParameters"]["x-amz-server-side-encryption"] = json!("aws:kms");
    v["requestParameters"]["x-amz-server-side-encryption-aws-kms-key-id"] = json!(KEY);
    let r = one(&v);
    assert_eq!(r.action, "s3:PutObject");
    assert_eq!(r.kms_key_arn.as_deref(), Some(KEY));
    assert_eq!(r.kms_key_ref.as_deref(), Some(KEY));
    assert_eq!(ctx(&r, "s3:x-amz-server-side-encryption"), Some("aws:kms"));
    assert_eq!(
        ctx(&r, "s3:x-amz-server-side-encryption-aws-kms-key-id"),
        Some(KEY)
    );

    // An alias in the header is kept as the reference, not as a key ARN.
    v["requestParameters"]["x-amz-server-side-encryption-aws-kms-key-id"] = json!("alias/reports");
    let r = one(&v);
    assert_eq!(r.kms_key_arn, None);
    assert_eq!(r.kms_key_ref.as_deref(), Some("alias/reports"));
}

#[test]
fn multipart_upload_calls_are_put_object() {
    for name in [
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
    ] {
        let mut v = get_object();
        v["eventName"] = json!(name);
        let r = one(&v);
        assert_eq!(r.action, "s3:PutObject", "{name}");
        assert_eq!(
            r.resource.as_deref(),
            Some("arn:aws:s3:::doc-example-bucket/reports/q1.csv")
        );
    }
}

#[test]
fn copy_object_writes_the_destination_and_records_the_source() {
    let mut v = get_object();
    v["eventName"] = json!("CopyObject");
    v["requestParameters"]["key"] = json!("copies/q1.csv");
    v["requestParameters"]["x-amz-copy-source"] =
        json!("/source-bucket/in%20box/q1.csv?versionId=v9");
    let r = one(&v);
    assert_eq!(r.action, "s3:PutObject");
    assert_eq!(
        r.resource.as_deref(),
        Some("arn:aws:s3:::doc-example-bucket/copies/q1.csv")
    );
    assert_eq!(
        r.copy_source,
        Some(CopySource {
            bucket: "source-bucket".into(),
            key: "in box/q1.csv".into(),
            version_id: Some("v9".into()),
            account: None
        })
    );
}

#[test]
fn copy_source_forms() {
    assert_eq!(
        parse_copy_source("b/k"),
        Some(CopySource {
            bucket: "b".into(),
            key: "k".into(),
            version_id: None,
            account: None
        })
    );
    assert_eq!(parse_copy_source("b"), None);
    assert_eq!(
        parse_copy_source("arn:aws:s3:us-west-2:111122223333:accesspoint/ap/object/k"),
        None
    );
}

#[test]
fn kms_decrypt_via_s3_in_an_eventbridge_envelope() {
    let v = json!({
        "version": "0", "id": "44444444-0000-4000-8000-000000000004",
        "detail-type": "AWS API Call via CloudTrail", "source": "aws.kms",
        "account": B, "time": "2024-11-05T22:41:09Z", "region": "us-west-2", "resources": [],
        "detail": decrypt_via_s3()
    });
    let r = one(&v);
    assert_eq!(r.action, "kms:Decrypt");
    assert!(r.is_kms());
    assert_eq!(r.principal, Principal::Arn(SESSION.into()));
    assert_eq!(r.invoked_by.as_deref(), Some("s3.amazonaws.com"));
    assert!(r.via_s3);
    assert_eq!(r.resource.as_deref(), Some(KEY));
    assert_eq!(r.kms_key_arn.as_deref(), Some(KEY));
    assert_eq!(r.resource_account.as_deref(), Some(A));
    assert_eq!(r.bucket.as_deref(), Some("doc-example-bucket"));
    assert_eq!(r.object_key.as_deref(), Some("reports/q1.csv"));
    assert!(!r.bucket_key);
    assert_eq!(
        r.encryption_context.get("aws:s3:arn").map(String::as_str),
        Some("arn:aws:s3:::doc-example-bucket/reports/q1.csv")
    );
    assert_eq!(
        ctx(&r, "kms:ViaService"),
        Some("s3.us-west-2.amazonaws.com")
    );
    assert_eq!(ctx(&r, "kms:CallerAccount"), Some(B));
    assert_eq!(ctx(&r, "aws:ViaAWSService"), Some("true"));
    assert_eq!(
        ctx(&r, "kms:EncryptionContext:aws:s3:arn"),
        Some("arn:aws:s3:::doc-example-bucket/reports/q1.csv")
    );
    assert_eq!(
        r.context.get("kms:EncryptionContextKeys"),
        Some(&ContextValue::Multi(vec!["aws:s3:arn".into()]))
    );
    // The service name in sourceIPAddress is not an IP.
    assert_eq!(ctx(&r, "aws:SourceIp"), None);
    assert_eq!(ctx(&r, "aws:ResourceAccount"), Some(A));
    assert_eq!(ctx(&r, "aws:PrincipalArn"), Some(ROLE));
    // KMS is HTTPS-only: no TLS assumption for KMS records.
    assert!(r.assumptions.is_empty(), "{:?}", r.assumptions);
}

#[test]
fn kms_decrypt_with_a_bucket_key_and_no_resources() {
    let mut v = decrypt_via_s3();
    v["requestParameters"]["encryptionContext"]["aws:s3:arn"] =
        json!("arn:aws:s3:::doc-example-bucket");
    v.as_object_mut().unwrap().remove("resources");
    let r = one(&v);
    assert!(r.bucket_key);
    assert_eq!(r.bucket.as_deref(), Some("doc-example-bucket"));
    assert_eq!(r.object_key, None);
    assert_eq!(r.kms_key_arn, None);
    assert_eq!(r.resource, None);
    assert_eq!(r.resource_account, None);
    assert!(
        r.assumptions.iter().any(|a| a.contains("names no key")),
        "{:?}",
        r.assumptions
    );
}

#[test]
fn kms_state_errors_are_kept_and_flagged() {
    for code in [
        "DisabledException",
        "KMSInvalidStateException",
        "KMS.DisabledException",
    ] {
        let mut v = decrypt_via_s3();
        v["errorCode"] = json!(code);
        let r = one(&v);
        assert!(r.key_state_error, "{code}");
        assert_eq!(r.event.unwrap().error_code.as_deref(), Some(code));
    }
    let mut v = decrypt_via_s3();
    v["errorCode"] = json!("AccessDeniedException");
    assert!(!one(&v).key_state_error);
}

#[test]
fn anonymous_callers() {
    // KMS on behalf of an unsigned S3 request.
    let mut v = decrypt_via_s3();
    v["userIdentity"] = json!({"type": "Unknown", "invokedBy": "s3.amazonaws.com"});
    let r = one(&v);
    assert_eq!(r.principal, Principal::Anonymous);
    assert_eq!(r.principal_type, PrincipalType::Anonymous);
    assert!(r.via_s3);
    assert_eq!(ctx(&r, "aws:PrincipalAccount"), Some("anonymous"));
    assert_eq!(ctx(&r, "aws:userid"), Some("anonymous"));
    assert_eq!(ctx(&r, "aws:PrincipalType"), Some("Anonymous"));
    assert_eq!(ctx(&r, "aws:PrincipalArn"), None);
    assert_eq!(ctx(&r, "kms:CallerAccount"), None);

    // S3 records unsigned requests with the account id `anonymous`.
    let mut v = get_object();
    v["userIdentity"] = json!({"type": "AWSAccount", "principalId": "", "accountId": "anonymous"});
    let r = one(&v);
    assert_eq!(r.principal, Principal::Anonymous);
    assert_eq!(r.principal_account, None);
    assert_eq!(r.principal_id, None);
    assert_eq!(ctx(&r, "aws:PrincipalAccount"), Some("anonymous"));

    // An identity without a type is not taken for anonymous.
    v["userIdentity"] = json!({});
    let r = one(&v);
    assert_eq!(r.principal, Principal::Unknown);
    assert_eq!(r.principal_type, PrincipalType::Unknown);
    assert_eq!(ctx(&r, "aws:PrincipalAccount"), None);
}

#[test]
fn users_root_federated_and_services() {
    let mut v = get_object();
    v["userIdentity"] = json!({"type": "IAMUser", "principalId": "AIDAEXAMPLEALICE", "arn": "arn:aws:iam::444455556666:user/ops/alice",
                               "accountId": B, "userName": "alice"});
    let r = one(&v);
    assert_eq!(
        r.principal,
        Principal::Arn("arn:aws:iam::444455556666:user/ops/alice".into())
    );
    assert_eq!(r.principal_type, PrincipalType::User);
    assert_eq!(r.role_arn, None);
    assert_eq!(ctx(&r, "aws:username"), Some("alice"));
    assert_eq!(
        ctx(&r, "aws:PrincipalArn"),
        Some("arn:aws:iam::444455556666:user/ops/alice")
    );
    assert_eq!(ctx(&r, "aws:MultiFactorAuthPresent"), None);

    v["userIdentity"] = json!({"type": "Root", "principalId": B, "accountId": B});
    let r = one(&v);
    assert_eq!(
        r.principal,
        Principal::Arn("arn:aws:iam::444455556666:root".into())
    );
    assert_eq!(r.principal_type, PrincipalType::Account);
    assert_eq!(ctx(&r, "aws:PrincipalType"), Some("Account"));
    assert_eq!(ctx(&r, "aws:userid"), Some(B));

    v["awsRegion"] = json!("cn-north-1");
    let r = one(&v);
    assert_eq!(
        r.principal,
        Principal::Arn("arn:aws-cn:iam::444455556666:root".into())
    );
    assert_eq!(
        r.resource.as_deref(),
        Some("arn:aws-cn:s3:::doc-example-bucket/reports/q1.csv")
    );

    let mut v = get_object();
    v["userIdentity"] = json!({"type": "FederatedUser", "principalId": "444455556666:bob",
                               "arn": "arn:aws:sts::444455556666:federated-user/bob", "accountId": B});
    let r = one(&v);
    assert_eq!(r.principal_type, PrincipalType::FederatedUser);
    assert_eq!(
        ctx(&r, "aws:PrincipalArn"),
        Some("arn:aws:sts::444455556666:federated-user/bob")
    );

    v["userIdentity"] = json!({"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"});
    let r = one(&v);
    assert_eq!(
        r.principal,
        Principal::Service("cloudtrail.amazonaws.com".into())
    );
    assert_eq!(ctx(&r, "aws:PrincipalIsAWSService"), Some("true"));
    assert_eq!(
        ctx(&r, "aws:PrincipalServiceName"),
        Some("cloudtrail.amazonaws.com")
    );
    assert_eq!(ctx(&r, "aws:PrincipalType"), None);
}

#[test]
fn session_without_issuer_rebuilds_the_role_arn() {
    let mut v = get_object();
    v["userIdentity"] = json!({"type": "AssumedRole", "principalId": "AROAEXAMPLEREADER0001:etl-7",
                               "arn": SESSION, "accountId": B});
    let r = one(&v);
    assert_eq!(
        r.role_arn.as_deref(),
        Some("arn:aws:iam::444455556666:role/reader")
    );
    assert!(r.role_arn_from_session);
    assert_eq!(
        ctx(&r, "aws:PrincipalArn"),
        Some("arn:aws:iam::444455556666:role/reader")
    );
    assert_eq!(ctx(&r, "aws:MultiFactorAuthPresent"), None);
}

#[test]
fn generate_data_key_names_and_key_from_parameters() {
    for (name, action) in [
        ("GenerateDataKey", "kms:GenerateDataKey"),
        (
            "GenerateDataKeyWithoutPlaintext",
            "kms:GenerateDataKeyWithoutPlaintext",
        ),
        ("ReEncrypt", "kms:ReEncryptFrom"),
        ("Encrypt", "kms:Encrypt"),
    ] {
        let mut v = decrypt_via_s3();
        v["eventName"] = json!(name);
        v.as_object_mut().unwrap().remove("resources");
        v["requestParameters"]["keyId"] = json!(KEY);
        let r = one(&v);
        assert_eq!(r.action, action, "{name}");
        assert_eq!(r.kms_key_arn.as_deref(), Some(KEY));
        assert_eq!(r.resource_account.as_deref(), Some(A), "from the key ARN");
    }
    // A key id is a reference to resolve, not an ARN.
    let mut v = decrypt_via_s3();
    v["eventName"] = json!("GenerateDataKey");
    v.as_object_mut().unwrap().remove("resources");
    v["requestParameters"]["keyId"] = json!("1234abcd-12ab-34cd-56ef-1234567890ab");
    let r = one(&v);
    assert_eq!(r.kms_key_arn, None);
    assert_eq!(
        r.kms_key_ref.as_deref(),
        Some("1234abcd-12ab-34cd-56ef-1234567890ab")
    );
}

#[test]
fn direct_kms_call_is_not_via_s3() {
    let mut v = decrypt_via_s3();
    v["userIdentity"] = session_identity();
    v["sourceIPAddress"] = json!("198.51.100.4");
    v["userAgent"] = json!("aws-cli/2");
    v["requestParameters"] = json!({"keyId": KEY});
    let r = one(&v);
    assert!(!r.via_s3);
    assert_eq!(ctx(&r, "aws:ViaAWSService"), Some("false"));
    assert_eq!(ctx(&r, "kms:ViaService"), None);
    assert_eq!(ctx(&r, "aws:SourceIp"), Some("198.51.100.4"));
    assert!(r.encryption_context.is_empty());
    assert_eq!(r.context.get("kms:EncryptionContextKeys"), None);
}

#[test]
fn trail_log_file_skips_what_needs_no_diagnosis() {
    let mut ok = get_object();
    ok.as_object_mut().unwrap().remove("errorCode");
    let mut missing = get_object();
    missing["errorCode"] = json!("NoSuchKey");
    let mut policy_change = get_object();
    policy_change["eventName"] = json!("GetBucketPolicy");
    let v = json!({"Records": [ok, missing, policy_change, get_object()]});
    let outcomes = parse_events(&v).unwrap();
    assert_eq!(outcomes.len(), 4);
    let event_id = Some("11111111-0000-4000-8000-000000000001".to_owned());
    assert_eq!(
        outcomes[0],
        EventOutcome::Skipped {
            event_id: event_id.clone(),
            reason: SkipReason::Succeeded
        }
    );
    assert_eq!(
        outcomes[1],
        EventOutcome::Skipped {
            event_id: event_id.clone(),
            reason: SkipReason::NotAuthorizationError {
                error_code: "NoSuchKey".into()
            }
        }
    );
    assert_eq!(
        outcomes[2],
        EventOutcome::Skipped {
            event_id,
            reason: SkipReason::UnsupportedEvent {
                event_source: "s3.amazonaws.com".into(),
                event_name: "GetBucketPolicy".into()
            }
        }
    );
    assert!(matches!(&outcomes[3], EventOutcome::Denied(r) if r.action == "s3:GetObject"));
    assert_eq!(
        SkipReason::NotAuthorizationError {
            error_code: "NoSuchKey".into()
        }
        .to_string(),
        "`NoSuchKey` is not an authorization failure"
    );
}

#[test]
fn lookup_events_output_and_bare_arrays() {
    let v = json!({"Events": [{"EventId": "x", "EventName": "GetObject", "CloudTrailEvent": get_object().to_string()}]});
    assert_eq!(one(&v).action, "s3:GetObject");
    let v = json!([decrypt_via_s3(), get_object()]);
    let outcomes = parse_events(&v).unwrap();
    assert_eq!(outcomes.len(), 2);
    assert!(matches!(&outcomes[0], EventOutcome::Denied(r) if r.action == "kms:Decrypt"));

    let v = json!({"Events": [{"CloudTrailEvent": "{not json"}]});
    let err = error(&v);
    assert_eq!(err.path(), "Events[0].CloudTrailEvent");
    let mut bad = get_object();
    bad.as_object_mut().unwrap().remove("eventSource");
    let v = json!({"Events": [{"CloudTrailEvent": bad.to_string()}]});
    assert_eq!(error(&v).path(), "Events[0].CloudTrailEvent.eventSource");
}

#[test]
fn errors_name_the_path() {
    let mut bad = get_object();
    bad.as_object_mut().unwrap().remove("eventName");
    let v = json!({"Records": [get_object(), get_object(), bad]});
    let err = error(&v);
    assert_eq!(err.path(), "Records[2].eventName");
    assert_eq!(
        err.to_string(),
        "Records[2].eventName: missing required field"
    );

    let mut bad = decrypt_via_s3();
    bad["userIdentity"] = json!("reader");
    let v = json!({"detail-type": "AWS API Call via CloudTrail", "detail": bad});
    let err = error(&v);
    assert_eq!(err.path(), "detail.userIdentity");
    assert_eq!(err.message(), "expected an object, found a string");

    let v = json!({"detail-type": "Object Created", "detail": {}});
    let err = error(&v);
    assert_eq!(err.path(), "detail-type");
    assert!(err
        .message()
        .starts_with("`Object Created` is not a CloudTrail API call"));

    let mut bad = get_object();
    bad["requestParameters"] = Value::Null;
    bad["resources"] = json!([]);
    assert_eq!(error(&bad).path(), "requestParameters.bucketName");

    let mut bad = get_object();
    bad["eventTime"] = json!("yesterday");
    assert_eq!(
        error(&bad).to_string(),
        "eventTime: `yesterday` is not an ISO 8601 time such as `2025-06-02T09:14:03Z`"
    );

    let mut bad = get_object();
    bad.as_object_mut().unwrap().remove("userIdentity");
    assert_eq!(error(&bad).path(), "userIdentity");

    assert_eq!(error(&json!("GetObject")).path(), "$");

    // A successful record is not inspected beyond what classifies it.
    let mut ok = get_object();
    ok.as_object_mut().unwrap().remove("errorCode");
    ok["userIdentity"] = json!(1);
    assert!(matches!(
        parse_events(&ok).unwrap().as_slice(),
        [EventOutcome::Skipped {
            reason: SkipReason::Succeeded,
            ..
        }]
    ));
}

#[test]
fn bucket_and_key_from_resources_when_parameters_are_absent() {
    let mut v = get_object();
    v["requestParameters"] = Value::Null;
    let r = one(&v);
    assert_eq!(r.bucket.as_deref(), Some("doc-example-bucket"));
    assert_eq!(r.object_key.as_deref(), Some("reports/q1.csv"));
}

#[test]
fn outcomes_serialize_for_reports() {
    let v = serde_json::to_value(parse_events(&get_object()).unwrap()).unwrap();
    assert_eq!(v[0]["outcome"], "denied");
    assert_eq!(v[0]["principal"], SESSION);
    assert_eq!(v[0]["principal_type"], "AssumedRole");
    assert_eq!(v[0]["action"], "s3:GetObject");
    assert_eq!(v[0]["context"]["aws:PrincipalArn"], ROLE);
    let mut ok = get_object();
    ok.as_object_mut().unwrap().remove("errorCode");
    let v = serde_json::to_value(parse_events(&ok).unwrap()).unwrap();
    assert_eq!(v[0]["outcome"], "skipped");
    assert_eq!(v[0]["reason"]["kind"], "succeeded");
}

#[test]
fn adhoc_role_session_and_object() {
    let r = adhoc_request(
        SESSION,
        "s3:GetObject",
        "arn:aws:s3:::doc-example-bucket/reports/q1.csv",
    )
    .unwrap();
    assert_eq!(r.event, None);
    assert_eq!(r.principal, Principal::Arn(SESSION.into()));
    assert_eq!(r.principal_type, PrincipalType::AssumedRole);
    assert_eq!(r.principal_account.as_deref(), Some(B));
    assert_eq!(
        r.role_arn.as_deref(),
        Some("arn:aws:iam::444455556666:role/reader")
    );
    assert!(r.role_arn_from_session);
    assert_eq!(r.action, "s3:GetObject");
    assert_eq!(r.bucket.as_deref(), Some("doc-example-bucket"));
    assert_eq!(r.object_key.as_deref(), Some("reports/q1.csv"));
    assert_eq!(
        r.resource.as_deref(),
        Some("arn:aws:s3:::doc-example-bucket/reports/q1.csv")
    );
    assert_eq!(r.resource_account, None);
    assert_eq!(
        ctx(&r, "aws:PrincipalArn"),
        Some("arn:aws:iam::444455556666:role/reader")
    );
    assert_eq!(ctx(&r, "aws:PrincipalAccount"), Some(B));
    assert_eq!(ctx(&r, "aws:PrincipalType"), Some("AssumedRole"));
    assert_eq!(ctx(&r, "aws:SecureTransport"), Some("true"));
    assert_eq!(ctx(&r, "aws:CurrentTime"), None);
    assert!(r
        .assumptions
        .iter()
        .any(|a| a.starts_with("no event was given")));
}

#[test]
fn adhoc_other_principals_and_resources() {
    let r = adhoc_request(ROLE, "s3:GetObject", "s3://doc-example-bucket/a/b.csv").unwrap();
    assert_eq!(r.role_arn.as_deref(), Some(ROLE));
    assert!(!r.role_arn_from_session);
    assert_eq!(
        r.resource.as_deref(),
        Some("arn:aws:s3:::doc-example-bucket/a/b.csv")
    );

    // Only object operations are modelled: a bucket action is refused, not mis-evaluated.
    let err = adhoc_request(B, "s3:ListBucket", "arn:aws:s3:::doc-example-bucket").unwrap_err();
    assert_eq!(err.path(), "action");
    let err = adhoc_request(B, "s3:GetObject", "arn:aws:s3:::doc-example-bucket").unwrap_err();
    assert_eq!(err.path(), "resource");

    let r = adhoc_request(B, "s3:GetObject", "arn:aws:s3:::doc-example-bucket/k").unwrap();
    assert_eq!(
        r.principal,
        Principal::Arn("arn:aws:iam::444455556666:root".into())
    );
    assert_eq!(r.principal_type, PrincipalType::Account);
    assert_eq!(r.object_key.as_deref(), Some("k"));
    assert_eq!(ctx(&r, "aws:userid"), Some(B));

    // Every partition: the resource's partition is the request's, and a bare account id
    // becomes the root of that partition.
    let r = adhoc_request(B, "s3:GetObject", "arn:aws-cn:s3:::data/k").unwrap();
    assert_eq!(r.partition, crate::refs::Partition::AwsCn);
    assert_eq!(
        r.principal,
        Principal::Arn("arn:aws-cn:iam::444455556666:root".into())
    );
    assert_eq!(r.resource.as_deref(), Some("arn:aws-cn:s3:::data/k"));
    let r = adhoc_request(
        "arn:aws-us-gov:sts::444455556666:assumed-role/reader/s1",
        "s3:GetObject",
        "s3://data/k",
    )
    .unwrap();
    assert_eq!(r.partition, crate::refs::Partition::AwsUsGov);
    assert_eq!(r.resource.as_deref(), Some("arn:aws-us-gov:s3:::data/k"));
    assert_eq!(
        r.role_arn.as_deref(),
        Some("arn:aws-us-gov:iam::444455556666:role/reader")
    );
    let err = adhoc_request(
        "arn:aws-cn:sts::444455556666:assumed-role/reader/s1",
        "s3:GetObject",
        "arn:aws:s3:::data/k",
    )
    .unwrap_err();
    assert_eq!(err.path(), "resource");
    assert!(err.message().contains("never cross partitions"), "{err}");

    // HeadObject is authorized as s3:GetObject and is its own operation (no KMS hop).
    let r = adhoc_request(SESSION, "s3:HeadObject", "arn:aws:s3:::data/k").unwrap();
    assert_eq!(r.action, "s3:GetObject");
    assert_eq!(r.operation, crate::request::Operation::HeadObject);

    let r = adhoc_request("arn:aws:iam::444455556666:user/alice", "kms:Decrypt", KEY).unwrap();
    assert_eq!(r.principal_type, PrincipalType::User);
    assert_eq!(r.kms_key_arn.as_deref(), Some(KEY));
    assert_eq!(r.resource.as_deref(), Some(KEY));
    assert_eq!(r.resource_account.as_deref(), Some(A));
    assert_eq!(ctx(&r, "kms:CallerAccount"), Some(B));
    assert_eq!(ctx(&r, "aws:RequestedRegion"), Some("us-west-2"));
    assert_eq!(ctx(&r, "aws:ResourceAccount"), Some(A));

    let r = adhoc_request("anonymous", "s3:GetObject", "arn:aws:s3:::b/k").unwrap();
    assert_eq!(r.principal, Principal::Anonymous);
    assert_eq!(ctx(&r, "aws:PrincipalAccount"), Some("anonymous"));
}

#[test]
fn adhoc_errors_name_the_argument() {
    let err = adhoc_request("reader", "s3:GetObject", "arn:aws:s3:::b/k").unwrap_err();
    assert_eq!(err.path(), "principal");
    let err = adhoc_request(SESSION, "GetObject", "arn:aws:s3:::b/k").unwrap_err();
    assert_eq!(
        err.to_string(),
        "action: `GetObject` is not an IAM action such as `s3:GetObject`"
    );
    let err = adhoc_request(SESSION, "s3:GetObject", KEY).unwrap_err();
    assert_eq!(err.path(), "resource");
    let err = adhoc_request(SESSION, "kms:Decrypt", "arn:aws:s3:::b/k").unwrap_err();
    assert_eq!(err.path(), "resource");
    let err = adhoc_request(SESSION, "ec2:RunInstances", "arn:aws:s3:::b/k").unwrap_err();
    assert_eq!(err.path(), "action");
}

/// A sample under `events/`: the outcome expected for each record.
enum Expect {
    Skipped,
    /// A change record, with what it touches.
    Change(Vec<Touched>),
    Denied {
        action: &'static str,
        principal: &'static str,
        resource: &'static str,
        resource_account: &'static str,
    },
}

const READER: &str = "arn:aws:sts::444455556666:assumed-role/reader/s1";
const SAMPLE_KEY: &str =
    "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const Q1: &str = "arn:aws:s3:::doc-example-bucket/reports/q1.csv";

fn denied(
    action: &'static str,
    principal: &'static str,
    resource: &'static str,
    resource_account: &'static str,
) -> Expect {
    Expect::Denied {
        action,
        principal,
        resource,
        resource_account,
    }
}

fn key_change(arn: &str) -> Expect {
    Expect::Change(vec![Touched::Key {
        reference: arn.into(),
        arn: Some(arn.into()),
    }])
}

fn bucket_change(name: &str) -> Expect {
    Expect::Change(vec![Touched::Bucket { name: name.into() }])
}

fn samples() -> Vec<(&'static str, Vec<Expect>)> {
    vec![
        (
            "change-creategrant.eventbridge.json",
            vec![key_change(SAMPLE_KEY)],
        ),
        (
            "change-putbucketpolicy.eventbridge.json",
            vec![Expect::Change(vec![Touched::Bucket {
                name: "doc-example-bucket".into(),
            }])],
        ),
        // `keyId` is a bare id there: the ARN comes from `resources`.
        (
            "change-putkeypolicy.eventbridge.json",
            vec![Expect::Change(vec![Touched::Key {
                reference: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
                arn: Some(SAMPLE_KEY.into()),
            }])],
        ),
        (
            "change-putrolepolicy.eventbridge.json",
            vec![Expect::Change(vec![Touched::Role {
                name: "reader".into(),
            }])],
        ),
        (
            "change-detachrolepolicy.eventbridge.json",
            vec![Expect::Change(vec![Touched::Role {
                name: "reader".into(),
            }])],
        ),
        (
            "change-disablekey.eventbridge.json",
            vec![key_change(SAMPLE_KEY)],
        ),
        (
            "change-putbucketencryption.eventbridge.json",
            vec![Expect::Change(vec![Touched::Bucket {
                name: "doc-example-bucket".into(),
            }])],
        ),
        // The aliases of the account and Region, and the key the alias now names.
        (
            "change-updatealias.eventbridge.json",
            vec![Expect::Change(vec![
                Touched::Aliases,
                Touched::Key {
                    reference: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
                    arn: Some(SAMPLE_KEY.into()),
                },
            ])],
        ),
        (
            "change-updatepolicy-scp.eventbridge.json",
            vec![Expect::Change(vec![Touched::Organization {
                policy_id: "p-7h3k9x2m".into(),
                target: None,
            }])],
        ),
        (
            "change-putbucketownershipcontrols.eventbridge.json",
            vec![bucket_change("doc-example-bucket")],
        ),
        (
            "change-putpublicaccessblock.eventbridge.json",
            vec![bucket_change("doc-example-bucket")],
        ),
        (
            "change-putbucketacl.eventbridge.json",
            vec![bucket_change("doc-example-bucket")],
        ),
        (
            "change-createalias.eventbridge.json",
            vec![Expect::Change(vec![
                Touched::Aliases,
                Touched::Key {
                    reference: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
                    arn: Some(SAMPLE_KEY.into()),
                },
            ])],
        ),
        (
            "change-schedulekeydeletion.eventbridge.json",
            vec![key_change(SAMPLE_KEY)],
        ),
        (
            "change-attachgrouppolicy.eventbridge.json",
            vec![Expect::Change(vec![Touched::Group {
                name: "analysts".into(),
            }])],
        ),
        // Both the user and the group the membership changes.
        (
            "change-addusertogroup.eventbridge.json",
            vec![Expect::Change(vec![
                Touched::User {
                    name: "alice".into(),
                },
                Touched::Group {
                    name: "report-readers".into(),
                },
            ])],
        ),
        (
            "change-putrolepermissionsboundary.eventbridge.json",
            vec![Expect::Change(vec![Touched::Role {
                name: "reader".into(),
            }])],
        ),
        (
            "change-createpolicyversion.eventbridge.json",
            vec![Expect::Change(vec![Touched::ManagedPolicy {
                arn: "arn:aws:iam::444455556666:policy/reader-base".into(),
            }])],
        ),
        (
            "change-deleteuser.eventbridge.json",
            vec![Expect::Change(vec![Touched::User {
                name: "alice".into(),
            }])],
        ),
        (
            "change-attachpolicy-scp.eventbridge.json",
            vec![Expect::Change(vec![Touched::Organization {
                policy_id: "p-7h3k9x2m".into(),
                target: Some("444455556666".into()),
            }])],
        ),
        (
            "change-detachpolicy-scp.eventbridge.json",
            vec![Expect::Change(vec![Touched::Organization {
                policy_id: "p-7h3k9x2m".into(),
                target: Some("444455556666".into()),
            }])],
        ),
        (
            "kms-decrypt-denied-via-s3.eventbridge.json",
            vec![denied("kms:Decrypt", READER, SAMPLE_KEY, A)],
        ),
        (
            "kms-generatedatakey-denied-via-s3.cloudtrail.json",
            vec![denied("kms:GenerateDataKey", READER, SAMPLE_KEY, A)],
        ),
        (
            "s3-copyobject-denied.cloudtrail.json",
            vec![denied(
                "s3:PutObject",
                READER,
                "arn:aws:s3:::b-analytics-444455556666/imports/reports-q1.csv",
                B,
            )],
        ),
        (
            "s3-createmultipartupload-denied.cloudtrail.json",
            vec![denied(
                "s3:PutObject",
                READER,
                "arn:aws:s3:::doc-example-bucket/incoming/2026-03-02/bulk-export-0007.csv",
                A,
            )],
        ),
        (
            "s3-getobject-denied-cross-account.cloudtrail.json",
            vec![denied("s3:GetObject", READER, Q1, A)],
        ),
        (
            "s3-getobject-denied-cross-account.eventbridge.json",
            vec![denied("s3:GetObject", READER, Q1, A)],
        ),
        (
            "s3-getobject-denied-iam-user.cloudtrail.json",
            vec![denied(
                "s3:GetObject",
                "arn:aws:iam::444455556666:user/alice",
                Q1,
                A,
            )],
        ),
        (
            "s3-getobject-denied-kms.eventbridge.json",
            vec![denied("s3:GetObject", READER, Q1, A)],
        ),
        (
            "s3-getobject-denied-same-account.cloudtrail.json",
            vec![denied(
                "s3:GetObject",
                "arn:aws:sts::111122223333:assumed-role/batch/job-7",
                Q1,
                A,
            )],
        ),
        (
            "s3-headobject-denied.cloudtrail.json",
            vec![denied("s3:GetObject", READER, Q1, A)],
        ),
        (
            "s3-putobject-denied.eventbridge.json",
            vec![denied(
                "s3:PutObject",
                READER,
                "arn:aws:s3:::doc-example-bucket/incoming/2026-03-02/batch-0042.csv",
                A,
            )],
        ),
        (
            "trail-log-file.json",
            vec![
                denied("s3:GetObject", READER, Q1, A),
                Expect::Skipped,
                denied("kms:Decrypt", READER, SAMPLE_KEY, A),
            ],
        ),
    ]
}

fn events_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn read_sample(name: &str) -> Value {
    let text =
        std::fs::read_to_string(events_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_sample_event_parses_to_its_request() {
    for (name, expected) in samples() {
        let outcomes = parse_events(&read_sample(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(outcomes.len(), expected.len(), "{name}");
        for (outcome, expect) in outcomes.iter().zip(&expected) {
            match (outcome, expect) {
                (EventOutcome::Skipped { .. }, Expect::Skipped) => {}
                (EventOutcome::Change(c), Expect::Change(touches)) => {
                    assert_eq!(&c.touches, touches, "{name}");
                    assert!(c.account.as_deref().is_some_and(is_account_id), "{name}");
                    assert!(c.event_id.is_some(), "{name}");
                }
                (
                    EventOutcome::Denied(r),
                    Expect::Denied {
                        action,
                        principal,
                        resource,
                        resource_account,
                    },
                ) => {
                    assert_eq!(r.action, *action, "{name}");
                    assert_eq!(r.principal.arn(), Some(*principal), "{name}");
                    assert_eq!(r.resource.as_deref(), Some(*resource), "{name}");
                    assert_eq!(
                        r.resource_account.as_deref(),
                        Some(*resource_account),
                        "{name}"
                    );
                    assert_eq!(
                        ctx(r, "aws:ResourceAccount"),
                        Some(*resource_account),
                        "{name}"
                    );
                    assert!(r.context.contains_key("aws:CurrentTime"), "{name}");
                    assert!(r.context.contains_key("aws:PrincipalArn"), "{name}");
                }
                (other, _) => panic!("{name}: unexpected {other:?}"),
            }
        }
    }
}

#[test]
fn sample_events_hop_details() {
    let r = one(&read_sample("kms-decrypt-denied-via-s3.eventbridge.json"));
    assert!(r.via_s3);
    assert_eq!(r.bucket.as_deref(), Some("doc-example-bucket"));
    assert_eq!(r.object_key.as_deref(), Some("reports/q1.csv"));
    assert_eq!(
        ctx(&r, "kms:ViaService"),
        Some("s3.us-west-2.amazonaws.com")
    );

    let r = one(&read_sample(
        "kms-generatedatakey-denied-via-s3.cloudtrail.json",
    ));
    assert!(r.via_s3 && !r.bucket_key);
    assert_eq!(
        r.object_key.as_deref(),
        Some("incoming/2026-03-02/batch-0042.csv")
    );

    // The copy's source lives in another account than its destination.
    let r = one(&read_sample("s3-copyobject-denied.cloudtrail.json"));
    assert_eq!(
        r.copy_source,
        Some(CopySource {
            bucket: "doc-example-bucket".into(),
            key: "reports/q1.csv".into(),
            version_id: None,
            account: Some(A.into())
        })
    );

    let r = one(&read_sample("s3-getobject-denied-iam-user.cloudtrail.json"));
    assert_eq!(r.principal_type, PrincipalType::User);
    assert_eq!(r.role_arn, None);

    let r = one(&read_sample(
        "s3-getobject-denied-cross-account.cloudtrail.json",
    ));
    assert_eq!(
        r.role_arn.as_deref(),
        Some("arn:aws:iam::444455556666:role/reader")
    );
    assert_eq!(r.principal_account.as_deref(), Some(B));
}

/// Samples added later must at least parse, and each denied record must name what was
/// denied; their exact expectations belong in `samples()`.
#[test]
fn samples_not_yet_listed_still_parse() {
    let listed: Vec<&str> = samples().iter().map(|(name, _)| *name).collect();
    let mut seen = 0;
    for entry in std::fs::read_dir(events_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        seen += 1;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap()
            .to_owned();
        if listed.contains(&name.as_str()) {
            continue;
        }
        let outcomes = parse_events(&read_sample(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        for outcome in outcomes {
            if let EventOutcome::Denied(r) = outcome {
                assert!(!r.action.is_empty(), "{name}");
                assert!(r.resource.is_some() || r.bucket.is_some(), "{name}");
            }
        }
    }
    assert!(
        seen >= listed.len(),
        "samples listed in the test are missing from events/"
    );
}

#[test]
fn operations_are_set_by_the_parser_that_read_the_record() {
    let copy = read_sample("s3-copyobject-denied.cloudtrail.json");
    let r = one(&copy);
    assert_eq!(
        r.operation,
        Operation::CopyObject {
            source_bucket: "doc-example-bucket".into(),
            source_key: "reports/q1.csv".into(),
            multipart: false,
        }
    );
    // UploadPartCopy reads a source and writes a part of a multipart upload.
    let mut part = copy.clone();
    part["eventName"] = json!("UploadPartCopy");
    assert_eq!(
        one(&part).operation,
        Operation::CopyObject {
            source_bucket: "doc-example-bucket".into(),
            source_key: "reports/q1.csv".into(),
            multipart: true,
        }
    );
    let mut head = read_sample("s3-getobject-denied-cross-account.cloudtrail.json");
    assert_eq!(one(&head).operation, Operation::GetObject);
    head["eventName"] = json!("HeadObject");
    assert_eq!(one(&head).operation, Operation::HeadObject);
    let kms = one(&read_sample("kms-decrypt-denied-via-s3.eventbridge.json"));
    assert_eq!(
        kms.operation,
        Operation::KmsViaS3 {
            action: "kms:Decrypt".into()
        }
    );
}

#[test]
fn a_writes_encryption_headers_are_read() {
    let mut put = read_sample("s3-putobject-denied.eventbridge.json");
    let r = one(&put);
    assert_eq!(r.sse.as_deref(), Some("aws:kms"));
    assert_eq!(r.sse_bucket_key, None);
    put["detail"]["requestParameters"]["x-amz-server-side-encryption-bucket-key-enabled"] =
        json!("true");
    assert_eq!(one(&put).sse_bucket_key, Some(true));
    put["detail"]["requestParameters"]["x-amz-server-side-encryption"] = json!("AES256");
    assert_eq!(one(&put).sse.as_deref(), Some("AES256"));
}

/// A record of `event_name` from `service` carrying every request parameter a change of
/// [`CHANGE_EVENTS`] may name.
fn change_record(service: &str, event_name: &str) -> Value {
    json!({
        "eventVersion": "1.11",
        "userIdentity": {"type": "IAMUser", "accountId": A, "arn": "arn:aws:iam::111122223333:user/admin"},
        "eventTime": "2026-03-02T11:06:12Z",
        "eventSource": format!("{service}.amazonaws.com"),
        "eventName": event_name,
        "awsRegion": "us-west-2",
        "requestParameters": {
            "bucketName": "doc-example-bucket",
            "keyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
            "aliasName": "alias/reports",
            "targetKeyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
            "roleName": "reader",
            "userName": "ana",
            "groupName": "analysts",
            "policyArn": "arn:aws:iam::111122223333:policy/read-reports",
            "policyId": "p-7h3k9x2m"
        },
        "eventID": "22222222-0000-4000-8000-000000000002",
        "recipientAccountId": A
    })
}

#[test]
fn every_change_event_is_classified_and_a_failed_one_is_skipped() {
    assert_eq!(CHANGE_EVENTS.len(), 46);
    for (service, name) in CHANGE_EVENTS {
        let record = change_record(service, name);
        let outcomes = parse_events(&record).unwrap_or_else(|e| panic!("{name}: {e}"));
        let [EventOutcome::Change(c)] = outcomes.as_slice() else {
            panic!("{name}: {outcomes:?}");
        };
        assert_eq!(c.event_name, *name);
        assert_eq!(c.account.as_deref(), Some(A));
        assert!(!c.touches.is_empty(), "{name}");
        let expected_kind = match *service {
            "s3" => "bucket",
            "kms" if name.contains("Alias") => "aliases",
            "kms" => "key",
            "organizations" => "organization",
            _ if name.ends_with("PolicyVersion") => "managed_policy",
            _ if name.contains("Role") => "role",
            _ if name.contains("Group") => "group",
            _ => "user",
        };
        let kinds: Vec<Value> = c
            .touches
            .iter()
            .map(|t| serde_json::to_value(t).unwrap()["kind"].clone())
            .collect();
        assert!(kinds.contains(&json!(expected_kind)), "{name}: {kinds:?}");

        let mut failed = record.clone();
        failed["errorCode"] = json!("AccessDenied");
        assert_eq!(
            parse_events(&failed).unwrap(),
            vec![EventOutcome::Skipped {
                event_id: Some("22222222-0000-4000-8000-000000000002".into()),
                reason: SkipReason::ChangeFailed {
                    event_name: (*name).into(),
                    error_code: "AccessDenied".into(),
                },
            }],
            "{name}"
        );
    }
}

#[test]
fn change_touches_name_the_cached_resources() {
    let touches = |service: &str, name: &str| -> Vec<Touched> {
        match parse_events(&change_record(service, name)).unwrap().pop() {
            Some(EventOutcome::Change(c)) => c.touches,
            other => panic!("{name}: {other:?}"),
        }
    };
    // A bare key id, the Region and the account make the ARN.
    assert_eq!(
        touches("kms", "DisableKey"),
        vec![Touched::Key {
            reference: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            arn: Some(SAMPLE_KEY.into()),
        }]
    );
    assert_eq!(
        touches("kms", "UpdateAlias"),
        vec![
            Touched::Aliases,
            Touched::Key {
                reference: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
                arn: Some(SAMPLE_KEY.into()),
            }
        ]
    );
    assert_eq!(
        touches("iam", "AddUserToGroup"),
        vec![
            Touched::User { name: "ana".into() },
            Touched::Group {
                name: "analysts".into()
            }
        ]
    );
    assert_eq!(
        touches("iam", "SetDefaultPolicyVersion"),
        vec![Touched::ManagedPolicy {
            arn: "arn:aws:iam::111122223333:policy/read-reports".into()
        }]
    );
    assert_eq!(
        touches("iam", "PutUserPermissionsBoundary"),
        vec![Touched::User { name: "ana".into() }]
    );
    // RetireGrant may carry no request parameters: the key is in `resources`.
    let mut retire = change_record("kms", "RetireGrant");
    retire.as_object_mut().unwrap().remove("requestParameters");
    retire["resources"] = json!([{"accountId": A, "type": "AWS::KMS::Key", "ARN": SAMPLE_KEY}]);
    let Some(EventOutcome::Change(c)) = parse_events(&retire).unwrap().pop() else {
        panic!("RetireGrant");
    };
    assert_eq!(
        c.touches,
        vec![Touched::Key {
            reference: SAMPLE_KEY.into(),
            arn: Some(SAMPLE_KEY.into())
        }]
    );
    // A change record missing what it changed is an error with its path.
    let mut bare = change_record("s3", "PutBucketAcl");
    bare["requestParameters"] = json!({});
    let err = parse_events(&bare).unwrap_err();
    assert_eq!(err.path(), "requestParameters.bucketName");
    // In an envelope, like every other record.
    let envelope = json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.iam",
                          "detail": change_record("iam", "DeleteRole")});
    assert!(matches!(parse_events(&envelope).unwrap().as_slice(),
                     [EventOutcome::Change(c)] if c.touches == vec![Touched::Role { name: "reader".into() }]));
}

#[test]
fn oversized_events_are_refused_before_they_are_read() {
    // A record over 256 KB (EventBridge's event size limit) in a trail log file.
    let mut big = get_object();
    big["requestParameters"]["padding"] = json!("x".repeat(crate::limits::MAX_EVENT_BYTES));
    let v = json!({"Records": [get_object(), big.clone()]});
    let err = error(&v);
    assert_eq!(err.path(), "Records[1]");
    assert!(
        err.message()
            .starts_with("a CloudTrail record of at least 26"),
        "{err}"
    );
    assert!(
        err.message()
            .contains("over the 262,144 bytes (256 KB) of the largest event EventBridge accepts"),
        "{err}"
    );
    // The same record in an EventBridge envelope: the envelope is refused at its root.
    let v = json!({"detail-type": "AWS API Call via CloudTrail", "detail": big});
    assert_eq!(error(&v).path(), "$");
    // In lookup-events output the embedded text is refused before it is parsed.
    let v = json!({"Events": [{"CloudTrailEvent": big.to_string()}]});
    let err = error(&v);
    assert_eq!(err.path(), "Events[0].CloudTrailEvent");
    assert!(
        err.message().contains("AWS cannot have delivered it"),
        "{err}"
    );
    // A record just under the limit is read.
    let mut fits = get_object();
    let room = crate::limits::MAX_EVENT_BYTES - crate::limits::event_size(&fits) - 100;
    fits["requestParameters"]["padding"] = json!("x".repeat(room));
    assert_eq!(parse_events(&json!({"Records": [fits]})).unwrap().len(), 1);
}

#[test]
fn requests_through_an_access_point_by_arn_alias_or_hostname() {
    let ap_arn = "arn:aws:s3:us-west-2:111122223333:accesspoint/reports-ap";
    let ap = crate::refs::AccessPointRef::parse(ap_arn).unwrap().0;
    // `bucketName` is the access point ARN; the bucket comes from `resources`.
    let mut v = get_object();
    v["requestParameters"]["bucketName"] = json!(ap_arn);
    v["resources"]
        .as_array_mut()
        .unwrap()
        .push(json!({"accountId": A, "type": "AWS::S3::AccessPoint", "ARN": ap_arn}));
    let r = one(&v);
    assert_eq!(r.access_point, Some(AccessPointUse::Arn(ap.clone())));
    assert_eq!(r.bucket.as_deref(), Some("doc-example-bucket"));
    assert_eq!(r.object_key.as_deref(), Some("reports/q1.csv"));
    assert_eq!(r.resource_account.as_deref(), Some(A));
    // Only the access point is listed: the bucket is left to the snapshot, the resource is
    // the access point object ARN.
    v["resources"] = json!([{"accountId": A, "type": "AWS::S3::AccessPoint", "ARN": ap_arn}]);
    let r = one(&v);
    assert_eq!(r.bucket, None);
    assert_eq!(
        r.resource.as_deref(),
        Some("arn:aws:s3:us-west-2:111122223333:accesspoint/reports-ap/object/reports/q1.csv")
    );
    // An alias as the bucket name.
    let alias = "reports-ap-hrzrlukc5m36ft7okagglf3gmwluquse1b-s3alias";
    let mut v = get_object();
    v["requestParameters"]["bucketName"] = json!(alias);
    v["requestParameters"]["Host"] = json!(format!("{alias}.s3.us-west-2.amazonaws.com"));
    v["resources"] = json!([]);
    let r = one(&v);
    assert_eq!(r.access_point, Some(AccessPointUse::Alias(alias.into())));
    assert_eq!(r.bucket, None);
    // Only the hostname tells.
    let mut v = get_object();
    v["requestParameters"]["Host"] =
        json!("reports-ap-111122223333.s3-accesspoint.us-west-2.amazonaws.com");
    let r = one(&v);
    assert_eq!(r.access_point, Some(AccessPointUse::Arn(ap)));
    assert_eq!(r.bucket.as_deref(), Some("doc-example-bucket"));
    // A Multi-Region Access Point is neither: the bucket comes from `resources`.
    let mut v = get_object();
    v["requestParameters"]["bucketName"] =
        json!("arn:aws:s3::111122223333:accesspoint/mfzwi23gnjvgw.mrap");
    let r = one(&v);
    assert_eq!(r.access_point, None);
    assert_eq!(r.bucket.as_deref(), Some("doc-example-bucket"));
    assert!(r.assumptions.iter().any(|a| a.contains("Multi-Region")));
    // A plain bucket request has none.
    assert_eq!(one(&get_object()).access_point, None);
    // Neither a bucket nor an access point: still an error naming the field.
    let mut v = get_object();
    v["requestParameters"] = json!({"key": "k"});
    v["resources"] = json!([]);
    assert_eq!(
        error(&v).path(),
        "requestParameters.bucketName",
        "{:?}",
        error(&v)
    );
}

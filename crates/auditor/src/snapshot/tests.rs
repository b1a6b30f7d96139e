use serde_json::{json, Value};

use super::*;

const A: &str = "111122223333";
const B: &str = "444455556666";
const KEY_ARN: &str = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

fn bucket_policy() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "CrossAccountRead", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::444455556666:role/team/reader"},
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::doc-example-bucket/*"}]})
}

fn key_policy() -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "EnableIAM", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "AllowReaderDecrypt", "Effect": "Allow",
         "Principal": {"AWS": "arn:aws:iam::444455556666:role/team/reader"},
         "Action": "kms:Decrypt", "Resource": "*"}]})
}

fn reader_policy() -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::doc-example-bucket/*"},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY_ARN}]})
}

fn allow_all() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
}

fn rcp_full_access() -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]})
}

/// URL-encodes a document the way IAM returns it (RFC 3986, every reserved byte escaped).
fn url_encoded(doc: &Value) -> String {
    percent_encoding::utf8_percent_encode(&doc.to_string(), percent_encoding::NON_ALPHANUMERIC)
        .to_string()
}

/// The knowledge-center scenario, with a role path in B and a few extra IAM shapes.
fn kc() -> Value {
    json!({
      "description": "knowledge-center scenario",
      "accounts": {
        A: {
          "canonical_id": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
          "organization": {
            "id": "o-a1b2c3d4e5",
            "scp": [[{"Policy": {"PolicySummary": {"Id": "p-FullAWSAccess", "Name": "FullAWSAccess"},
                                 "Content": allow_all().to_string()}}],
                    [allow_all()]],
            "rcp": [[rcp_full_access().to_string()]]
          },
          "s3": {
            "doc-example-bucket": {
              "region": "us-west-2",
              "policy": bucket_policy(),
              "encryption": {"ServerSideEncryptionConfiguration": {"Rules": [
                  {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY_ARN},
                   "BucketKeyEnabled": false}]}},
              "ownership_controls": {"OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}},
              "public_access_block": {"PublicAccessBlockConfiguration": {"RestrictPublicBuckets": true, "BlockPublicPolicy": true}},
              "acl": {"Owner": {"ID": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},
                      "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},
                                  "Permission": "FULL_CONTROL"}]},
              "objects": {
                "reports/q1.csv": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KEY_ARN,
                                   "BucketKeyEnabled": false, "ContentLength": 1024,
                                   "Owner": {"ID": "other-canonical"},
                                   "Grants": [{"Grantee": {"URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                                               "Permission": "READ"}],
                                   "TagSet": [{"Key": "class", "Value": "internal"}]}
              },
              "request_payment": {"Payer": "BucketOwner"}
            }
          },
          "kms": {
            KEY_ARN: {
              "metadata": {"KeyMetadata": {"KeyId": KEY_ID, "Arn": KEY_ARN, "KeyManager": "CUSTOMER",
                                           "KeyState": "Enabled", "MultiRegion": false, "KeySpec": "SYMMETRIC_DEFAULT"}},
              "policy": {"Policy": key_policy().to_string(), "PolicyName": "default"},
              "grants": [],
              "aliases": ["alias/reports"]
            },
            "arn:aws:kms:us-west-2:111122223333:key/aaaa0000-0000-0000-0000-000000000000": {
              "metadata": {"KeyManager": "AWS", "KeyState": "Disabled"},
              "aliases": {"Aliases": [{"AliasName": "alias/aws/s3", "TargetKeyId": "aaaa0000-0000-0000-0000-000000000000"}]}
            },
            "arn:aws:kms:eu-west-1:111122223333:key/mrk-1": {
              "metadata": {"KeyManager": "CUSTOMER", "KeyState": "Frozen", "MultiRegion": true},
              "aliases": ["alias/reports"]
            }
          }
        },
        B: {
          "iam": {
            "RoleDetailList": [{
              "Path": "/team/", "RoleName": "reader", "RoleId": "AROAEXAMPLEREADER0001",
              "Arn": "arn:aws:iam::444455556666:role/team/reader",
              "AssumeRolePolicyDocument": url_encoded(&json!({"Version": "2012-10-17", "Statement": [
                  {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})),
              "RolePolicyList": [{"PolicyName": "ReadReports", "PolicyDocument": url_encoded(&reader_policy())}],
              "AttachedManagedPolicies": [
                  {"PolicyName": "ReadOnlyAccess", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
                  {"PolicyName": "team-common", "PolicyArn": "arn:aws:iam::444455556666:policy/team-common"}],
              "PermissionsBoundary": {"PermissionsBoundaryType": "Policy",
                                      "PermissionsBoundaryArn": "arn:aws:iam::444455556666:policy/boundary"},
              "Tags": [{"Key": "team", "Value": "analytics"}],
              "RoleLastUsed": {}
            }, {
              "Path": "/", "RoleName": "orphan-boundary", "Arn": "arn:aws:iam::444455556666:role/orphan-boundary",
              "PermissionsBoundary": {"PermissionsBoundaryArn": "arn:aws:iam::444455556666:policy/not-listed"}
            }],
            "UserDetailList": [{
              "Path": "/", "UserName": "alice", "UserId": "AIDAEXAMPLEALICE0001",
              "Arn": "arn:aws:iam::444455556666:user/alice",
              "UserPolicyList": [{"PolicyName": "own", "PolicyDocument": reader_policy().to_string()}],
              "GroupList": ["analysts", "ghosts"],
              "AttachedManagedPolicies": [{"PolicyName": "team-common", "PolicyArn": "arn:aws:iam::444455556666:policy/team-common"}]
            }],
            "GroupDetailList": [{
              "Path": "/", "GroupName": "analysts", "GroupId": "AGPAEXAMPLE", "Arn": "arn:aws:iam::444455556666:group/analysts",
              "GroupPolicyList": [{"PolicyName": "group-inline", "PolicyDocument": reader_policy()}],
              "AttachedManagedPolicies": [{"PolicyName": "team-common", "PolicyArn": "arn:aws:iam::444455556666:policy/team-common"}]
            }],
            "Policies": [{
              "PolicyName": "team-common", "Arn": "arn:aws:iam::444455556666:policy/team-common",
              "DefaultVersionId": "v2", "IsAttachable": true,
              "PolicyVersionList": [
                  {"Document": url_encoded(&allow_all()), "VersionId": "v2", "IsDefaultVersion": true},
                  {"Document": reader_policy(), "VersionId": "v1", "IsDefaultVersion": false}]
            }, {
              "PolicyName": "boundary", "Arn": "arn:aws:iam::444455556666:policy/boundary",
              "DefaultVersionId": "v3",
              "PolicyVersionList": [
                  {"Document": reader_policy(), "VersionId": "v1"},
                  {"Document": allow_all(), "VersionId": "v3"}]
            }],
            "IsTruncated": false
          }
        }
      }
    })
}

fn parse(v: &Value) -> Snapshot {
    Snapshot::from_value(v).unwrap()
}

fn error(v: &Value) -> SnapshotError {
    Snapshot::from_value(v).unwrap_err()
}

#[test]
fn kc_snapshot_parses_every_section() {
    let s = parse(&kc());
    assert_eq!(s.accounts.keys().collect::<Vec<_>>(), vec![A, B]);
    let a = s.account(A).unwrap();
    assert!(a.iam.is_none());
    let org = a.organization.as_ref().unwrap();
    assert_eq!(org.id.as_deref(), Some("o-a1b2c3d4e5"));
    assert_eq!(org.scp.len(), 2);
    assert_eq!(org.scp[0][0].name, "SCP FullAWSAccess (p-FullAWSAccess)");
    assert_eq!(
        org.scp[0][0].pointer,
        "/accounts/111122223333/organization/scp/0/0/Policy/Content"
    );
    assert_eq!(
        org.scp[1][0].name,
        "SCP #0 at level 1 above account 111122223333"
    );
    assert_eq!(org.rcp[0][0].document, rcp_full_access());
    assert!(!org.is_management_account);

    let (owner, bucket) = s.bucket("doc-example-bucket").unwrap();
    assert_eq!(owner, A);
    assert_eq!(bucket.region, "us-west-2");
    let policy = bucket.policy.as_ref().unwrap();
    assert_eq!(policy.name, "bucket policy of doc-example-bucket");
    assert_eq!(
        policy.pointer,
        "/accounts/111122223333/s3/doc-example-bucket/policy"
    );
    assert_eq!(policy.document, bucket_policy());
    assert_eq!(
        bucket.encryption,
        Some(DefaultEncryption {
            algorithm: "aws:kms".into(),
            kms_key_id: Some(KEY_ARN.into()),
            bucket_key_enabled: false
        })
    );
    assert_eq!(bucket.ownership, Some(ObjectOwnership::BucketOwnerEnforced));
    assert!(bucket.acls_disabled());
    assert_eq!(
        bucket.public_access_block,
        Some(PublicAccessBlock {
            block_public_acls: false,
            ignore_public_acls: false,
            block_public_policy: true,
            restrict_public_buckets: true
        })
    );
    assert_eq!(
        bucket.acl_owner_id.as_deref(),
        Some("79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be")
    );
    assert_eq!(bucket.acl_grants.len(), 1);
    assert_eq!(bucket.acl_grants[0].permission, AclPermission::FullControl);
    assert_eq!(bucket.request_payment.as_deref(), Some("BucketOwner"));
    assert_eq!(
        s.account_by_canonical_id(
            "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
        ),
        Some(A)
    );

    let object = &bucket.objects["reports/q1.csv"];
    assert_eq!(object.sse.as_deref(), Some("aws:kms"));
    assert_eq!(object.kms_key_id.as_deref(), Some(KEY_ARN));
    assert!(!object.bucket_key_enabled);
    assert_eq!(object.owner_id.as_deref(), Some("other-canonical"));
    assert_eq!(object.grants.len(), 1);
    assert!(object.grants[0].grantee.is_public());
    assert!(object.grants[0].permission.allows_read());
    assert_eq!(
        object.tags.get("class").map(String::as_str),
        Some("internal")
    );

    let key = &a.kms[KEY_ARN];
    assert_eq!(key.metadata.key_id, KEY_ID);
    assert_eq!(key.metadata.region, "us-west-2");
    assert_eq!(key.metadata.account, A);
    assert_eq!(key.metadata.key_manager, KeyManager::Customer);
    assert!(key.is_usable());
    assert!(!key.is_aws_managed());
    let key_policy_doc = key.policy.as_ref().unwrap();
    assert_eq!(key_policy_doc.name, format!("key policy of {KEY_ARN}"));
    assert_eq!(
        key_policy_doc.pointer,
        "/accounts/111122223333/kms/arn:aws:kms:us-west-2:111122223333:key~11234abcd-12ab-34cd-56ef-1234567890ab/policy/Policy"
    );
    assert_eq!(key_policy_doc.document, key_policy());
}

#[test]
fn aws_managed_keys_and_states() {
    let s = parse(&kc());
    let a = s.account(A).unwrap();
    let managed =
        &a.kms["arn:aws:kms:us-west-2:111122223333:key/aaaa0000-0000-0000-0000-000000000000"];
    assert!(managed.is_aws_managed());
    assert_eq!(managed.metadata.key_state, KeyState::Disabled);
    assert!(!managed.is_usable());
    assert!(managed.policy.is_none());
    assert_eq!(managed.aliases, vec!["alias/aws/s3"]);
    let replica = &a.kms["arn:aws:kms:eu-west-1:111122223333:key/mrk-1"];
    assert!(replica.metadata.multi_region);
    assert_eq!(replica.metadata.key_state, KeyState::Other("Frozen".into()));
    assert_eq!(replica.metadata.key_state.as_str(), "Frozen");

    // A key marked CUSTOMER but carrying an `aws/` alias still counts as AWS managed.
    let mut v = kc();
    v["accounts"][A]["kms"][KEY_ARN]["aliases"] = json!(["alias/aws/s3"]);
    assert!(parse(&v).account(A).unwrap().kms[KEY_ARN].is_aws_managed());
}

#[test]
fn key_lookup_by_arn_id_alias_and_alias_arn() {
    let s = parse(&kc());
    let by = |r: &str, region: &str, account: &str| {
        s.key(r, region, account)
            .map(|(acct, k)| (acct.to_owned(), k.metadata.arn.clone()))
    };
    let expected = Some((A.to_owned(), KEY_ARN.to_owned()));
    assert_eq!(by(KEY_ARN, "eu-west-1", B), expected);
    assert_eq!(by(KEY_ID, "us-west-2", A), expected);
    assert_eq!(by("alias/reports", "us-west-2", A), expected);
    assert_eq!(
        by(
            "arn:aws:kms:us-west-2:111122223333:alias/reports",
            "eu-west-1",
            B
        ),
        expected
    );
    // The same alias in another Region names another key.
    assert_eq!(
        by("alias/reports", "eu-west-1", A),
        Some((
            A.to_owned(),
            "arn:aws:kms:eu-west-1:111122223333:key/mrk-1".to_owned()
        ))
    );
    // Alias names and ids resolve in the caller's account, where this key is not.
    assert_eq!(by("alias/reports", "us-west-2", B), None);
    assert_eq!(by(KEY_ID, "us-west-2", B), None);
    assert_eq!(by("alias/missing", "us-west-2", A), None);
    assert_eq!(by("arn:aws:s3:::doc-example-bucket", "us-west-2", A), None);
}

#[test]
fn session_resolves_to_role_with_path() {
    let s = parse(&kc());
    let iam = s.account(B).unwrap().iam.as_ref().unwrap();
    let session = "arn:aws:sts::444455556666:assumed-role/reader/etl-run-1";
    let role = iam.role_for(session).unwrap();
    assert_eq!(role.path, "/team/");
    assert_eq!(role.id.as_deref(), Some("AROAEXAMPLEREADER0001"));
    let trust = role.trust_policy.as_ref().unwrap();
    assert_eq!(trust.name, "trust policy of role reader");
    assert_eq!(
        trust.pointer,
        "/accounts/444455556666/iam/RoleDetailList/0/AssumeRolePolicyDocument"
    );

    let p = s.principal_policies(session).unwrap();
    assert_eq!(p.kind, IdentityKind::Role);
    assert_eq!(p.arn, "arn:aws:iam::444455556666:role/team/reader");
    assert_eq!(p.unique_id, Some("AROAEXAMPLEREADER0001"));
    let names: Vec<&str> = p.identity.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "inline policy ReadReports of role reader",
            "arn:aws:iam::444455556666:policy/team-common"
        ]
    );
    // URL-encoded inline document decoded for fixes.
    assert_eq!(p.identity[0].document, reader_policy());
    assert_eq!(
        p.identity[0].pointer,
        "/accounts/444455556666/iam/RoleDetailList/0/RolePolicyList/0/PolicyDocument"
    );
    // The default version (v2, flagged) is used, not v1.
    assert_eq!(p.identity[1].document, allow_all());
    assert_eq!(
        p.identity[1].pointer,
        "/accounts/444455556666/iam/Policies/0/PolicyVersionList/0/Document"
    );
    assert_eq!(p.missing, vec!["arn:aws:iam::aws:policy/ReadOnlyAccess"]);
    assert_eq!(
        p.boundary_arn,
        Some("arn:aws:iam::444455556666:policy/boundary")
    );
    assert_eq!(p.tags.get("team").map(String::as_str), Some("analytics"));

    // The bare role ARN (with its path) resolves to the same role.
    let by_role = s
        .principal_policies("arn:aws:iam::444455556666:role/team/reader")
        .unwrap();
    assert_eq!(by_role.arn, p.arn);
    // A role of the same name in another account does not match.
    assert!(s
        .principal_policies("arn:aws:sts::111122223333:assumed-role/reader/x")
        .is_none());
    assert!(s
        .principal_policies("arn:aws:iam::444455556666:root")
        .is_none());
}

#[test]
fn managed_policy_default_version_by_id() {
    let s = parse(&kc());
    let iam = s.account(B).unwrap().iam.as_ref().unwrap();
    let boundary = &iam.managed_policies["arn:aws:iam::444455556666:policy/boundary"];
    assert_eq!(boundary.default_version_id.as_deref(), Some("v3"));
    assert_eq!(boundary.document.as_ref().unwrap().document, allow_all());
    let p = s
        .principal_policies("arn:aws:sts::444455556666:assumed-role/reader/s")
        .unwrap();
    assert_eq!(p.boundary.unwrap().document, allow_all());
}

#[test]
fn managed_policy_single_unflagged_version_and_ambiguity() {
    let mut v = kc();
    v["accounts"][B]["iam"]["Policies"][1] = json!({
        "Arn": "arn:aws:iam::444455556666:policy/boundary",
        "PolicyVersionList": [{"Document": reader_policy()}]});
    let s = parse(&v);
    let iam = s.account(B).unwrap().iam.as_ref().unwrap();
    let doc = iam.managed_policies["arn:aws:iam::444455556666:policy/boundary"]
        .document
        .as_ref()
        .unwrap();
    assert_eq!(doc.document, reader_policy());

    v["accounts"][B]["iam"]["Policies"][1]["PolicyVersionList"] = json!([{"Document": reader_policy(), "VersionId": "v1"}, {"Document": allow_all(), "VersionId": "v2"}]);
    let err = error(&v);
    assert_eq!(
        err.path(),
        "accounts.444455556666.iam.Policies[1].PolicyVersionList"
    );
    assert!(
        err.message().starts_with("no version is the default"),
        "{err}"
    );
}

#[test]
fn missing_boundary_document_is_not_no_boundary() {
    let s = parse(&kc());
    let p = s
        .principal_policies("arn:aws:iam::444455556666:role/orphan-boundary")
        .unwrap();
    assert!(p.boundary.is_none());
    assert_eq!(
        p.boundary_arn,
        Some("arn:aws:iam::444455556666:policy/not-listed")
    );
    assert_eq!(
        p.missing,
        vec!["arn:aws:iam::444455556666:policy/not-listed"]
    );
    assert!(p.identity.is_empty());
}

#[test]
fn user_gets_group_policies_once() {
    let s = parse(&kc());
    let p = s
        .principal_policies("arn:aws:iam::444455556666:user/alice")
        .unwrap();
    assert_eq!(p.kind, IdentityKind::User);
    assert_eq!(p.unique_id, Some("AIDAEXAMPLEALICE0001"));
    let names: Vec<&str> = p.identity.iter().map(|n| n.name.as_str()).collect();
    // team-common is attached to the user and to the group: listed once.
    assert_eq!(
        names,
        vec![
            "inline policy own of user alice",
            "arn:aws:iam::444455556666:policy/team-common",
            "inline policy group-inline of group analysts",
        ]
    );
    assert_eq!(p.identity[0].document, reader_policy());
    assert_eq!(p.missing, vec!["group ghosts"]);
    assert!(p.boundary_arn.is_none());
}

#[test]
fn policy_forms_all_parse_to_the_same_document() {
    for form in [
        bucket_policy(),
        Value::String(bucket_policy().to_string()),
        Value::String(url_encoded(&bucket_policy())),
        json!({"Policy": bucket_policy().to_string()}),
    ] {
        let mut v = kc();
        v["accounts"][A]["s3"]["doc-example-bucket"]["policy"] = form.clone();
        let s = parse(&v);
        let policy = s
            .bucket("doc-example-bucket")
            .unwrap()
            .1
            .policy
            .as_ref()
            .unwrap();
        assert_eq!(policy.document, bucket_policy(), "form {form}");
    }
    // `null` means no policy.
    let mut v = kc();
    v["accounts"][A]["s3"]["doc-example-bucket"]["policy"] = Value::Null;
    assert!(parse(&v)
        .bucket("doc-example-bucket")
        .unwrap()
        .1
        .policy
        .is_none());
}

#[test]
fn minimal_snapshot_and_bare_payload_shapes() {
    let v = json!({"accounts": {A: {"s3": {"b": {
        "region": "eu-west-1",
        "encryption": {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/reports"}, "BucketKeyEnabled": true}]},
        "ownership_controls": {"Rules": [{"ObjectOwnership": "ObjectWriter"}]},
        "public_access_block": {"IgnorePublicAcls": true},
        "request_payment": "Requester"
    }}}}});
    let s = parse(&v);
    let (_, b) = s.bucket("b").unwrap();
    assert_eq!(
        b.encryption.as_ref().unwrap().kms_key_id.as_deref(),
        Some("alias/reports")
    );
    assert!(b.encryption.as_ref().unwrap().bucket_key_enabled);
    assert_eq!(b.ownership, Some(ObjectOwnership::ObjectWriter));
    assert!(b.public_access_block.unwrap().ignore_public_acls);
    assert_eq!(b.request_payment.as_deref(), Some("Requester"));
    assert!(b.objects.is_empty());
    assert!(s.account(A).unwrap().organization.is_none());
    assert!(s.bucket("other").is_none());
    assert!(s.account(B).is_none());

    let empty = parse(&json!({"accounts": {}}));
    assert!(empty.accounts.is_empty());
}

#[test]
fn error_non_12_digit_account_id() {
    let err = error(&json!({"accounts": {"12345": {}}}));
    assert_eq!(err.path(), "accounts.12345");
    assert_eq!(
        err.to_string(),
        "accounts.12345: `12345` is not an account id (12 digits)"
    );
}

#[test]
fn error_unknown_wrapper_keys() {
    let mut v = kc();
    v["accounts"][A]["s3"]["doc-example-bucket"]["polcy"] = json!({});
    let err = error(&v);
    assert_eq!(
        err.path(),
        "accounts.111122223333.s3.doc-example-bucket.polcy"
    );
    assert_eq!(err.message(), "unknown key `polcy`; did you mean `policy`?");

    let mut v = kc();
    v["accounts"][A]["buckets"] = json!({});
    assert_eq!(error(&v).path(), "accounts.111122223333.buckets");

    let mut v = kc();
    v["accounts"][A]["kms"][KEY_ARN]["grant"] = json!([]);
    let err = error(&v);
    assert_eq!(
        err.path(),
        format!("accounts.111122223333.kms.{KEY_ARN}.grant")
    );
    assert_eq!(err.message(), "unknown key `grant`; did you mean `grants`?");

    let err = error(&json!({"acounts": {}}));
    assert_eq!(
        err.to_string(),
        "acounts: unknown key `acounts`; did you mean `accounts`?"
    );

    // Unknown keys inside AWS payloads are fine.
    let mut v = kc();
    v["accounts"][A]["s3"]["doc-example-bucket"]["objects"]["reports/q1.csv"]["NewAwsField"] =
        json!(1);
    v["accounts"][A]["kms"][KEY_ARN]["metadata"]["KeyMetadata"]["NewAwsField"] = json!(1);
    assert!(Snapshot::from_value(&v).is_ok());
}

#[test]
fn error_bad_policy_inside_bucket_names_the_statement() {
    let mut v = kc();
    v["accounts"][A]["s3"]["doc-example-bucket"]["policy"]["Statement"][0]["Effect"] =
        json!("Permit");
    let err = error(&v);
    assert_eq!(
        err.path(),
        "accounts.111122223333.s3.doc-example-bucket.policy.Statement[0].Effect"
    );
    assert!(err
        .to_string()
        .starts_with("accounts.111122223333.s3.doc-example-bucket.policy.Statement[0].Effect: "));
    // The engine's own path is not repeated in the message.
    assert!(!err.message().contains("Statement[0].Effect"), "{err}");
    assert!(err.message().contains("`Permit`"), "{err}");

    // A bucket policy is a resource policy: it must name a principal.
    let mut v = kc();
    v["accounts"][A]["s3"]["doc-example-bucket"]["policy"]["Statement"][0]
        .as_object_mut()
        .unwrap()
        .remove("Principal");
    assert_eq!(
        error(&v).path(),
        "accounts.111122223333.s3.doc-example-bucket.policy.Statement[0]"
    );
}

#[test]
fn error_bad_policy_in_iam_and_wrapped_forms() {
    let mut v = kc();
    let bad = json!({"Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        {"Effect": "Maybe", "Action": "s3:GetObject", "Resource": "*"}]});
    v["accounts"][B]["iam"]["RoleDetailList"][0]["RolePolicyList"][0]["PolicyDocument"] =
        Value::String(url_encoded(&bad));
    assert_eq!(
        error(&v).path(),
        "accounts.444455556666.iam.RoleDetailList[0].RolePolicyList[0].PolicyDocument.Statement[1].Effect"
    );
    let mut v = kc();
    let mut bad_key_policy = key_policy();
    bad_key_policy["Statement"][1]["Effect"] = json!("Maybe");
    v["accounts"][A]["kms"][KEY_ARN]["policy"] = json!({"Policy": bad_key_policy.to_string()});
    assert_eq!(
        error(&v).path(),
        format!("accounts.111122223333.kms.{KEY_ARN}.policy.Policy.Statement[1].Effect")
    );
    let mut v = kc();
    v["accounts"][A]["s3"]["doc-example-bucket"]["policy"] = json!(42);
    assert_eq!(
        error(&v).path(),
        "accounts.111122223333.s3.doc-example-bucket.policy"
    );
}

#[test]
fn error_key_listed_under_the_wrong_account_or_not_by_arn() {
    let mut v = kc();
    let entry = v["accounts"][A]["kms"][KEY_ARN].clone();
    v["accounts"][B]["kms"] = json!({KEY_ARN: entry.clone()});
    let err = error(&v);
    assert_eq!(err.path(), format!("accounts.444455556666.kms.{KEY_ARN}"));
    assert!(
        err.message().contains("belongs to account 111122223333"),
        "{err}"
    );

    let mut v = kc();
    v["accounts"][A]["kms"] = json!({"alias/reports": entry});
    assert!(error(&v).message().contains("is not a key ARN"));

    let mut v = kc();
    v["accounts"][A]["kms"][KEY_ARN]["metadata"]["KeyMetadata"]["KeyId"] = json!("other");
    assert_eq!(
        error(&v).path(),
        format!("accounts.111122223333.kms.{KEY_ARN}.metadata.KeyMetadata.KeyId")
    );

    let mut v = kc();
    v["accounts"][A]["kms"][KEY_ARN]["metadata"] = json!({"KeyState": "Enabled"});
    let err = error(&v);
    assert_eq!(
        err.path(),
        format!("accounts.111122223333.kms.{KEY_ARN}.metadata.KeyManager")
    );
    assert_eq!(err.message(), "missing required field");
}

#[test]
fn error_bucket_in_two_accounts_and_bad_values() {
    let mut v = kc();
    v["accounts"][B]["s3"] = json!({"doc-example-bucket": {"region": "us-west-2"}});
    let err = error(&v);
    assert_eq!(err.path(), "accounts.444455556666.s3.doc-example-bucket");
    assert!(
        err.message()
            .contains("also listed under account 111122223333"),
        "{err}"
    );

    let mut v = kc();
    v["accounts"][A]["s3"]["doc-example-bucket"]["region"] = json!("Oregon");
    assert_eq!(
        error(&v).path(),
        "accounts.111122223333.s3.doc-example-bucket.region"
    );

    let mut v = kc();
    v["accounts"][A]["s3"]["doc-example-bucket"]
        .as_object_mut()
        .unwrap()
        .remove("region");
    assert_eq!(
        error(&v).to_string(),
        "accounts.111122223333.s3.doc-example-bucket.region: missing required field"
    );

    let mut v = kc();
    v["accounts"][A]["s3"]["doc-example-bucket"]["objects"]["reports/q1.csv"]["BucketKeyEnabled"] =
        json!("no");
    let err = error(&v);
    assert_eq!(
        err.path(),
        r#"accounts.111122223333.s3.doc-example-bucket.objects["reports/q1.csv"].BucketKeyEnabled"#
    );
    assert_eq!(err.message(), "expected a boolean, found a string");

    let mut v = kc();
    v["accounts"][A]["s3"]["doc-example-bucket"]["ownership_controls"]["OwnershipControls"]
        ["Rules"][0]["ObjectOwnership"] = json!("Mine");
    assert!(error(&v)
        .message()
        .starts_with("`Mine` is not an Object Ownership setting"));

    let mut v = kc();
    v["accounts"][A]["s3"]["doc-example-bucket"]["acl"]["Grants"][0]["Permission"] = json!("ALL");
    assert_eq!(
        error(&v).path(),
        "accounts.111122223333.s3.doc-example-bucket.acl.Grants[0].Permission"
    );
}

#[test]
fn error_organization_shapes() {
    let mut v = kc();
    v["accounts"][A]["organization"]["scp"] = json!([[]]);
    let err = error(&v);
    assert_eq!(err.path(), "accounts.111122223333.organization.scp[0]");
    assert!(err.message().contains("FullAWSAccess"), "{err}");

    let mut v = kc();
    v["accounts"][A]["organization"]["id"] = json!("org-1");
    assert_eq!(error(&v).path(), "accounts.111122223333.organization.id");

    let mut v = kc();
    v["accounts"][A]["organization"]["scps"] = json!([]);
    assert_eq!(
        error(&v).message(),
        "unknown key `scps`; did you mean `scp`?"
    );
}

#[test]
fn error_role_arn_of_another_account() {
    let mut v = kc();
    v["accounts"][B]["iam"]["RoleDetailList"][0]["Arn"] =
        json!("arn:aws:iam::111122223333:role/team/reader");
    let err = error(&v);
    assert_eq!(
        err.path(),
        "accounts.444455556666.iam.RoleDetailList[0].Arn"
    );
    assert!(err
        .message()
        .contains("is not an ARN of account 444455556666"));
}

#[test]
fn pointers_let_a_patch_replace_the_document() {
    let mut v = kc();
    let s = parse(&v);
    let key = &s.account(A).unwrap().kms[KEY_ARN];
    let pointer = key.policy.as_ref().unwrap().pointer.clone();
    let mut patched = key.policy.as_ref().unwrap().document.clone();
    patched["Statement"].as_array_mut().unwrap().pop();
    crate::json_patch::apply(
        &mut v,
        &[crate::json_patch::PatchOp::Replace {
            path: pointer,
            value: patched.clone(),
        }],
    )
    .unwrap();
    let s = parse(&v);
    assert_eq!(
        s.account(A).unwrap().kms[KEY_ARN]
            .policy
            .as_ref()
            .unwrap()
            .document,
        patched
    );

    // The same works for an URL-encoded inline IAM document.
    let p = s
        .principal_policies("arn:aws:sts::444455556666:assumed-role/reader/s")
        .unwrap();
    let pointer = p.identity[0].pointer.clone();
    crate::json_patch::apply(
        &mut v,
        &[crate::json_patch::PatchOp::Replace {
            path: pointer,
            value: allow_all(),
        }],
    )
    .unwrap();
    let s = parse(&v);
    let p = s
        .principal_policies("arn:aws:sts::444455556666:assumed-role/reader/s")
        .unwrap();
    assert_eq!(p.identity[0].document, allow_all());
}

#[test]
fn identities_by_unique_id() {
    let s = parse(&kc());
    assert_eq!(
        s.identity_by_unique_id("AROAEXAMPLEREADER0001:etl-run-42"),
        Some((
            B,
            IdentityKind::Role,
            "arn:aws:iam::444455556666:role/team/reader"
        ))
    );
    assert_eq!(
        s.identity_by_unique_id("AIDAEXAMPLEALICE0001"),
        Some((
            B,
            IdentityKind::User,
            "arn:aws:iam::444455556666:user/alice"
        ))
    );
    assert_eq!(s.identity_by_unique_id("AROADELETEDROLE:x"), None);
    assert_eq!(s.identity_by_unique_id(":x"), None);
}

#[test]
fn collection_errors_are_read_and_checked() {
    // GIVEN a snapshot whose collector recorded one denied read
    let mut v = kc();
    v["collection_errors"] = json!([{
        "account": "111122223333", "operation": "s3:GetBucketPolicy",
        "resource": "arn:aws:s3:::doc-example-bucket", "error": "AccessDenied", "message": "Access Denied"
    }]);
    // WHEN it is parsed
    let s = parse(&v);
    // THEN the gap is kept as data
    assert_eq!(
        s.collection_errors,
        vec![CollectionError {
            account: Some("111122223333".into()),
            operation: "s3:GetBucketPolicy".into(),
            resource: Some("arn:aws:s3:::doc-example-bucket".into()),
            error: "AccessDenied".into(),
            message: Some("Access Denied".into()),
        }]
    );
    // AND a misspelt key or a missing operation is rejected with its path
    v["collection_errors"][0]["resourse"] = json!("x");
    assert_eq!(error(&v).path(), "collection_errors[0].resourse");
    let mut v = kc();
    v["collection_errors"] = json!([{"error": "AccessDenied"}]);
    assert_eq!(error(&v).path(), "collection_errors[0].operation");
}

/// A statement that says `Deny` and then `Allow`: `serde_json` keeps the last value.
const DENY_THEN_ALLOW: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}]}"#;

#[test]
fn duplicate_key_in_a_policy_object_is_rejected_with_its_path() {
    let text = kc().to_string();
    // serde_json writes members sorted, so the statement reads `..."Sid":"CrossAccountRead"}`.
    let needle = r#""Sid":"CrossAccountRead""#;
    assert_eq!(text.matches(needle).count(), 1);
    let text = text.replace(needle, &format!(r#"{needle},"Effect":"Deny""#));
    let err = Snapshot::from_text(&text).unwrap_err();
    assert_eq!(
        err.path(),
        "accounts.111122223333.s3.doc-example-bucket.policy.Statement[0].Effect"
    );
    assert!(err.message().starts_with("duplicate key `Effect`"), "{err}");
    // The same document without the duplicate is accepted by the same entry point.
    assert!(Snapshot::from_text(&kc().to_string()).is_ok());
}

#[test]
fn duplicate_key_in_a_policy_string_is_rejected_with_its_path() {
    let mut v = kc();
    v["accounts"][A]["s3"]["doc-example-bucket"]["policy"] = json!(DENY_THEN_ALLOW);
    let err = error(&v);
    assert_eq!(
        err.path(),
        "accounts.111122223333.s3.doc-example-bucket.policy.Statement[0].Effect"
    );
    assert!(err.message().starts_with("duplicate key `Effect`"), "{err}");

    // The `get-key-policy` output form, and a URL-encoded IAM document.
    let mut v = kc();
    v["accounts"][A]["kms"][KEY_ARN]["policy"] = json!({"Policy": DENY_THEN_ALLOW});
    assert_eq!(
        error(&v).path(),
        format!("accounts.111122223333.kms.{KEY_ARN}.policy.Policy.Statement[0].Effect")
    );
    let mut v = kc();
    let encoded =
        percent_encoding::utf8_percent_encode(DENY_THEN_ALLOW, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    v["accounts"][B]["iam"]["RoleDetailList"][0]["RolePolicyList"][0]["PolicyDocument"] =
        json!(encoded);
    assert_eq!(
        error(&v).path(),
        "accounts.444455556666.iam.RoleDetailList[0].RolePolicyList[0].PolicyDocument.Statement[0].Effect"
    );
}

#[test]
fn duplicate_keys_in_scp_session_and_wrapper_objects_are_rejected() {
    // An SCP given as `describe-policy` output whose `Content` string repeats a key.
    let mut v = kc();
    v["accounts"][A]["organization"]["scp"][1] = json!([{"PolicySummary": {"Name": "x"}, "Content": DENY_THEN_ALLOW.replace(r#""Principal":"*","#, "")}]);
    assert_eq!(
        error(&v).path(),
        "accounts.111122223333.organization.scp[1][0].Content.Statement[0].Effect"
    );
    // A session policy object, and two `region` keys of one bucket, found in the text.
    let mut v = kc();
    v["accounts"][B]["sessions"] = json!({
        "arn:aws:sts::444455556666:assumed-role/reader/s1": {"policy": "SESSION"}});
    let text = v.to_string().replace(
        r#""SESSION""#,
        &DENY_THEN_ALLOW.replace(r#""Principal":"*","#, ""),
    );
    assert_eq!(
        Snapshot::from_text(&text).unwrap_err().path(),
        "accounts.444455556666.sessions.arn:aws:sts::444455556666:assumed-role/reader/s1.policy.Statement[0].Effect"
    );
    let text = kc().to_string().replace(
        r#""region":"us-west-2""#,
        r#""region":"us-west-2","region":"eu-west-1""#,
    );
    let err = Snapshot::from_text(&text).unwrap_err();
    assert_eq!(
        err.path(),
        "accounts.111122223333.s3.doc-example-bucket.region"
    );
    // Not JSON at all.
    assert_eq!(Snapshot::from_text("{").unwrap_err().path(), "$");
}

#[test]
fn every_section_round_trips_through_the_writer() {
    let mut v = kc();
    v["accounts"][B]["sessions"] = json!({"arn:aws:sts::444455556666:assumed-role/reader/s1": {
        "policy": reader_policy().to_string(), "tags": {"team": "reports"}}});
    v["accounts"][A]["public_access_block"] =
        json!({"PublicAccessBlockConfiguration": {"IgnorePublicAcls": true}});
    v["collection_errors"] =
        json!([{"account": B, "operation": "iam:GetRole", "error": "AccessDenied"}]);
    let first = parse(&v);
    let written = first.to_value();
    let second = parse(&written);
    assert_eq!(first, second);
    // The forms policies were given in are kept: a string stays a string, `describe-policy`
    // output keeps the summary that names the SCP.
    assert_eq!(
        written["accounts"][A]["kms"][KEY_ARN]["policy"],
        v["accounts"][A]["kms"][KEY_ARN]["policy"]
    );
    assert_eq!(
        second.accounts[A].organization.as_ref().unwrap().scp[0][0].name,
        "SCP FullAWSAccess (p-FullAWSAccess)"
    );
    assert_eq!(
        written["accounts"][B]["iam"]["RoleDetailList"][0]["RolePolicyList"][0]["PolicyName"],
        "ReadReports"
    );
    assert_eq!(
        second.description.as_deref(),
        Some("knowledge-center scenario")
    );
}

#[test]
fn policy_equality_ignores_the_pointer_but_not_the_source() {
    let snap = parse(&kc());
    let policy = snap.accounts[A].s3["doc-example-bucket"]
        .policy
        .clone()
        .unwrap();
    let mut moved = policy.clone();
    moved.pointer = "/elsewhere".into();
    assert_eq!(policy, moved);
    let mut as_text = policy.clone();
    as_text.source = json!(bucket_policy().to_string());
    assert_ne!(policy, as_text);
}

#[test]
fn policies_and_grants_built_outside_a_document() {
    let p = NamedPolicy::inline(
        "role",
        "reader",
        "ReadReports",
        json!(url_encoded(&reader_policy())),
    )
    .unwrap();
    assert_eq!(p.name, "inline policy ReadReports of role reader");
    assert_eq!(p.policy_name.as_deref(), Some("ReadReports"));
    assert_eq!(p.document, reader_policy());
    let err =
        NamedPolicy::new("x", json!(DENY_THEN_ALLOW), iam_eval::PolicyKind::Resource).unwrap_err();
    assert_eq!(err.path(), "Statement[0].Effect");
    let grant = KeyGrant::new(
        json!({"GrantId": "g1", "GranteePrincipal": "arn:aws:iam::444455556666:role/reader",
        "Operations": ["Decrypt"], "KeyId": KEY_ARN}),
    )
    .unwrap();
    assert_eq!(grant.raw["GrantId"], "g1");
    assert!(KeyGrant::new(json!({"Operations": "Decrypt"})).is_err());
}

/// A policy document whose `Resource` list makes it at least `size` characters long.
fn padded(mut policy: Value, size: usize) -> Value {
    let statement = &mut policy["Statement"][0];
    statement["Resource"] = json!([
        "arn:aws:s3:::doc-example-bucket/*",
        format!("arn:aws:s3:::doc-example-bucket/{}", "x".repeat(size))
    ]);
    policy
}

#[test]
fn oversized_policies_are_refused_with_their_limit() {
    // Each kind is held to its own AWS limit (crate::limits), at the path of the document.
    type Set = Box<dyn Fn(&mut Value, usize)>;
    let cases: Vec<(Set, usize, &str, &str)> = vec![
        (
            Box::new(|v, n| v["accounts"][A]["s3"]["doc-example-bucket"]["policy"] = padded(bucket_policy(), n)),
            20_480,
            "accounts.111122223333.s3.doc-example-bucket.policy",
            "bucket policy of doc-example-bucket is ",
        ),
        (
            Box::new(|v, n| v["accounts"][A]["kms"][KEY_ARN]["policy"] = json!({"Policy": padded(key_policy(), n).to_string()})),
            32_768,
            "accounts.111122223333.kms.arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab.policy.Policy",
            "over the 32,768 bytes AWS allows for a KMS key policy",
        ),
        (
            Box::new(|v, n| v["accounts"][B]["iam"]["Policies"][0]["PolicyVersionList"] = json!([{"Document": url_encoded(&padded(reader_policy(), n)), "IsDefaultVersion": true}])),
            6_144,
            "accounts.444455556666.iam.Policies[0].PolicyVersionList[0].Document",
            "over the 6,144 characters AWS allows for a managed policy",
        ),
        (
            Box::new(|v, n| v["accounts"][A]["organization"]["scp"][0] = json!([padded(allow_all(), n)])),
            5_120,
            "accounts.111122223333.organization.scp[0][0]",
            "over the 5,120 characters AWS allows for a service control policy",
        ),
    ];
    for (set, limit, path, message) in cases {
        // At the limit (the padding leaves room for the rest of the document) it parses.
        let mut v = kc();
        set(&mut v, limit / 2);
        Snapshot::from_value(&v).unwrap();
        let mut v = kc();
        set(&mut v, limit);
        let err = error(&v);
        assert_eq!(err.path(), path, "{err}");
        assert!(err.message().contains(message), "{err}");
        assert!(
            err.message().contains(
                "AWS would have refused to store it, so this is not a copy of a real account"
            ),
            "{err}"
        );
    }
}

#[test]
fn inline_policies_are_bounded_together() {
    // Two role policies of 6,000 characters each are each under 10,240, but not together.
    let mut v = kc();
    let list = &mut v["accounts"][B]["iam"]["RoleDetailList"][0]["RolePolicyList"];
    *list = json!([
        {"PolicyName": "One", "PolicyDocument": padded(reader_policy(), 6_000)},
        {"PolicyName": "Two", "PolicyDocument": padded(reader_policy(), 6_000)}]);
    let err = error(&v);
    assert_eq!(
        err.path(),
        "accounts.444455556666.iam.RoleDetailList[0].RolePolicyList"
    );
    assert!(
        err.message()
            .starts_with("the inline policies of role reader are 12,"),
        "{err}"
    );
    assert!(
        err.message().contains(
            "over the 10,240 characters AWS allows for the inline policies of a role together"
        ),
        "{err}"
    );
    // One of them alone is fine.
    let mut v = kc();
    v["accounts"][B]["iam"]["RoleDetailList"][0]["RolePolicyList"] =
        json!([{"PolicyName": "One", "PolicyDocument": padded(reader_policy(), 6_000)}]);
    Snapshot::from_value(&v).unwrap();
}

#[test]
fn whitespace_does_not_count_towards_a_policy_limit() {
    // IAM does not count whitespace: a managed policy padded with 10,000 spaces inside a
    // string and pretty-printed is still under 6,144 characters.
    let mut v = kc();
    let mut doc = padded(reader_policy(), 10);
    doc["Statement"][0]["Sid"] = json!(" ".repeat(10_000));
    let text = serde_json::to_string_pretty(&doc).unwrap();
    assert!(text.len() > 10_000);
    v["accounts"][B]["iam"]["Policies"][0]["PolicyVersionList"] =
        json!([{"Document": text, "IsDefaultVersion": true}]);
    Snapshot::from_value(&v).unwrap();
}

#[test]
fn vpc_endpoints_are_read_in_describe_vpc_endpoints_shape_and_written_back() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#;
    let entry = serde_json::json!({"VpcEndpointId": "vpce-0b5e4c3d2a1f09876", "VpcId": "vpc-0d4e5f6a7b8c9d0e1",
        "OwnerId": "444455556666", "ServiceName": "com.amazonaws.us-west-2.s3",
        "VpcEndpointType": "Gateway", "State": "available", "PolicyDocument": doc});
    for value in [
        serde_json::json!({"VpcEndpoints": [entry.clone()]}),
        serde_json::json!([entry.clone()]),
    ] {
        let raw = serde_json::json!({"accounts": {"444455556666": {"vpc_endpoints": value}}});
        let snap = Snapshot::from_value(&raw).expect("valid snapshot");
        let (owner, e) = snap
            .vpc_endpoint("vpce-0b5e4c3d2a1f09876", None)
            .expect("endpoint listed");
        assert_eq!(owner, "444455556666");
        assert_eq!(e.vpc_id.as_deref(), Some("vpc-0d4e5f6a7b8c9d0e1"));
        let policy = e.policy.as_ref().expect("policy");
        assert!(
            policy.pointer.ends_with("/PolicyDocument"),
            "{}",
            policy.pointer
        );
        let written = snap.to_value();
        assert_eq!(
            written["accounts"]["444455556666"]["vpc_endpoints"]["VpcEndpoints"][0]
                ["PolicyDocument"],
            serde_json::json!(doc),
            "the policy is written back as the JSON string EC2 returns"
        );
        assert_eq!(Snapshot::from_value(&written).expect("reads back"), snap);
    }
    // An endpoint policy must name a Principal, and an endpoint is listed once.
    let bad = serde_json::json!({"accounts": {"444455556666": {"vpc_endpoints": {"VpcEndpoints": [
        {"VpcEndpointId": "vpce-1", "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}}]}}}});
    let err = Snapshot::from_value(&bad).expect_err("no Principal");
    assert!(
        err.path()
            .contains("vpc_endpoints.VpcEndpoints[0].PolicyDocument"),
        "{}",
        err.path()
    );
    let twice = serde_json::json!({"accounts": {"444455556666": {"vpc_endpoints": [
        {"VpcEndpointId": "vpce-1"}, {"VpcEndpointId": "vpce-1"}]}}});
    assert!(Snapshot::from_value(&twice).is_err());
}

#[test]
fn access_points_read_write_and_reject_what_aws_would_not_print() {
    let ap_policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::444455556666:role/team/reader"}, "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:us-west-2:111122223333:accesspoint/reports-ap/object/*"}]});
    let doc = json!({"accounts": {A: {"access_points": {"reports-ap": {
        "Name": "reports-ap", "Bucket": "doc-example-bucket", "NetworkOrigin": "VPC",
        "VpcConfiguration": {"VpcId": "vpc-0a1b2c3d4e5f60718"},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": true, "IgnorePublicAcls": true,
            "BlockPublicPolicy": true, "RestrictPublicBuckets": true},
        "CreationDate": "2026-01-12T10:00:00+00:00",
        "Alias": "reports-ap-hrzrlukc5m36ft7okagglf3gmwluquse1b-s3alias",
        "AccessPointArn": "arn:aws:s3:us-west-2:111122223333:accesspoint/reports-ap",
        "BucketAccountId": B,
        "Policy": ap_policy.to_string()}}}}});
    let snap = Snapshot::from_text(&doc.to_string()).unwrap();
    let (owner, ap) = snap.access_point(A, "reports-ap").unwrap();
    assert_eq!(owner, A);
    assert_eq!(ap.network_origin, NetworkOrigin::Vpc);
    assert_eq!(ap.vpc_id.as_deref(), Some("vpc-0a1b2c3d4e5f60718"));
    assert_eq!(ap.bucket_owner(A), B);
    assert!(ap.public_access_block.unwrap().restrict_public_buckets);
    assert_eq!(
        ap.policy.as_ref().unwrap().pointer,
        "/accounts/111122223333/access_points/reports-ap/Policy"
    );
    assert_eq!(
        snap.access_point_by_alias("reports-ap-hrzrlukc5m36ft7okagglf3gmwluquse1b-s3alias")
            .map(|(o, ap)| (o, ap.name.as_str())),
        Some((A, "reports-ap"))
    );
    // The writer's output reads back equal.
    let again = Snapshot::from_text(&snap.to_value().to_string()).unwrap();
    assert_eq!(again, snap);
    // What get-access-point never prints is an error with its path.
    for (field, value, path) in [
        ("NetworkOrigin", json!("Vpc"), "NetworkOrigin"),
        ("Name", json!("other"), "Name"),
        (
            "AccessPointArn",
            json!("arn:aws:s3:us-west-2:444455556666:accesspoint/reports-ap"),
            "AccessPointArn",
        ),
        ("BucketAccountId", json!("12"), "BucketAccountId"),
    ] {
        let mut bad = doc.clone();
        bad["accounts"][A]["access_points"]["reports-ap"][field] = value;
        let err = Snapshot::from_text(&bad.to_string()).unwrap_err();
        assert_eq!(
            err.path(),
            format!("accounts.111122223333.access_points.reports-ap.{path}"),
            "{err}"
        );
    }
    let mut bad = doc.clone();
    bad["accounts"][A]["access_points"]["reports-ap"]
        .as_object_mut()
        .unwrap()
        .remove("VpcConfiguration");
    assert!(Snapshot::from_text(&bad.to_string())
        .unwrap_err()
        .to_string()
        .contains("VpcConfiguration"));
    let mut bad = doc;
    bad["accounts"][A]["access_points"]["reports-ap"]
        .as_object_mut()
        .unwrap()
        .remove("Bucket");
    assert!(Snapshot::from_text(&bad.to_string()).is_err());
}

//! The knowledge-center scenario on the test server: account A owns a bucket whose objects are
//! encrypted under A's customer managed key; role `reader` in account B reads them. Each test
//! breaks exactly one thing, runs the live auditor on the sample event adapted to the
//! accounts, and holds it to the offline diagnosis of the snapshot it collected.

use std::time::Duration;

use auditor::diagnose::diagnose;
use auditor::event::{parse_events, EventOutcome};
use auditor::snapshot::Snapshot;
use auditor_live::aws::{AwsAccounts, RoleSpec, SnsPublisher};
use auditor_live::cache::Cache;
use auditor_live::collect::{Collector, Options};
use auditor_live::handler::{diagnose_event, handle};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, ObjectOwnership, OwnershipControls,
    OwnershipControlsRule, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use serde_json::{json, Value};

use crate::support::{account_id, unique, Inbox, Moto, EXTERNAL_ID, HOME, REGION, ROLE};

/// The one thing each test breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Nothing: the three policies line up.
    None,
    /// A's bucket policy names another role of B.
    BucketPolicy,
    /// A's key policy does not name B's role.
    KeyPolicy,
    /// B's IAM policy grants `s3:GetObject` on another bucket.
    IamS3,
    /// B's managed policy grants `kms:Encrypt`, not `kms:Decrypt`.
    IamKms,
    /// The object is encrypted under A's AWS managed `aws/s3` key.
    AwsManagedKey,
    /// Default encryption names the key by alias, and the object is under another key of A.
    AliasDefault,
    /// The key is disabled.
    DisabledKey,
}

/// The scenario as built on the server.
pub struct Kc {
    pub a: String,
    pub b: String,
    pub bucket: String,
    pub key_arn: String,
}

const SAMPLE: &str =
    include_str!("../../../../events/s3-getobject-denied-cross-account.eventbridge.json");

impl Kc {
    /// Builds the scenario with `cause` broken.
    pub async fn build(m: &Moto, cause: Cause) -> Kc {
        Kc::build_in(m, cause, account_id(), account_id()).await
    }

    /// Builds the scenario with `cause` broken in the given accounts (members of an
    /// organization, say).
    pub async fn build_in(m: &Moto, cause: Cause, a: String, b: String) -> Kc {
        let bucket = unique("s3ka-reports");
        let object = "reports/q1.csv".to_owned();
        let cfg_a = m.account(&a).await;
        let cfg_b = m.account(&b).await;
        let kms = aws_sdk_kms::Client::new(&cfg_a);
        let s3 = Moto::s3(&cfg_a);
        let iam_b = aws_sdk_iam::Client::new(&cfg_b);
        let reader = format!("arn:aws:iam::{b}:role/reader");

        // A's key, its policy naming B's role (unless that is the cause).
        let mut statements = vec![
            json!({"Sid": "Enable IAM User Permissions", "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{a}:root")}, "Action": "kms:*", "Resource": "*"}),
        ];
        if cause != Cause::KeyPolicy {
            statements.push(json!({"Sid": "AllowReaderDecryptViaS3", "Effect": "Allow",
                "Principal": {"AWS": reader}, "Action": "kms:Decrypt", "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": format!("s3.{REGION}.amazonaws.com")}}}));
        }
        let key_policy = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
        let key_arn = kms
            .create_key()
            .description("reports")
            .policy(&key_policy)
            .send()
            .await
            .expect("create key")
            .key_metadata()
            .and_then(|k| k.arn())
            .expect("key arn")
            .to_owned();
        let alias = format!("alias/{}", unique("reports"));
        kms.create_alias()
            .alias_name(&alias)
            .target_key_id(&key_arn)
            .send()
            .await
            .expect("create alias");

        // The bucket, its policy, default encryption and ownership controls.
        s3.create_bucket()
            .bucket(&bucket)
            .create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::UsWest2)
                    .build(),
            )
            .send()
            .await
            .expect("create bucket");
        let grantee = if cause == Cause::BucketPolicy {
            format!("arn:aws:iam::{b}:role/writer")
        } else {
            reader.clone()
        };
        let bucket_policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "CrossAccountRead",
            "Effect": "Allow", "Principal": {"AWS": grantee}, "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*")}]});
        s3.put_bucket_policy()
            .bucket(&bucket)
            .policy(bucket_policy.to_string())
            .send()
            .await
            .expect("put bucket policy");
        let default_key = if cause == Cause::AliasDefault {
            format!("arn:aws:kms:{REGION}:{a}:{alias}")
        } else {
            key_arn.clone()
        };
        s3.put_bucket_encryption()
            .bucket(&bucket)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(
                        ServerSideEncryptionRule::builder()
                            .apply_server_side_encryption_by_default(
                                ServerSideEncryptionByDefault::builder()
                                    .sse_algorithm(ServerSideEncryption::AwsKms)
                                    .kms_master_key_id(default_key)
                                    .build()
                                    .expect("default encryption"),
                            )
                            .bucket_key_enabled(false)
                            .build(),
                    )
                    .build()
                    .expect("encryption configuration"),
            )
            .send()
            .await
            .expect("put bucket encryption");
        s3.put_bucket_ownership_controls()
            .bucket(&bucket)
            .ownership_controls(
                OwnershipControls::builder()
                    .rules(
                        OwnershipControlsRule::builder()
                            .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                            .build()
                            .expect("rule"),
                    )
                    .build()
                    .expect("controls"),
            )
            .send()
            .await
            .expect("put ownership controls");

        // The object, under the key the cause calls for.
        let object_key = match cause {
            Cause::AwsManagedKey => kms
                .describe_key()
                .key_id("alias/aws/s3")
                .send()
                .await
                .expect("aws/s3 key")
                .key_metadata()
                .and_then(|k| k.arn())
                .expect("arn")
                .to_owned(),
            Cause::AliasDefault => {
                // An older key whose policy never named B.
                let old = json!({"Version": "2012-10-17", "Statement": [statements[0].clone()]});
                kms.create_key()
                    .description("reports (old)")
                    .policy(old.to_string())
                    .send()
                    .await
                    .expect("old key")
                    .key_metadata()
                    .and_then(|k| k.arn())
                    .expect("arn")
                    .to_owned()
            }
            _ => key_arn.clone(),
        };
        s3.put_object()
            .bucket(&bucket)
            .key(&object)
            .body(ByteStream::from_static(b"quarter,revenue\nq1,100\n"))
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&object_key)
            .send()
            .await
            .expect("put object");
        if cause == Cause::DisabledKey {
            // moto looks DisableKey up by key id only (AWS also takes the ARN).
            let key_id = key_arn.rsplit('/').next().unwrap_or(&key_arn);
            kms.disable_key()
                .key_id(key_id)
                .send()
                .await
                .expect("disable key");
        }

        // B's role: S3 inline, KMS through a customer managed policy.
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
        iam_b
            .create_role()
            .role_name("reader")
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .expect("create role");
        let s3_resource = if cause == Cause::IamS3 {
            "arn:aws:s3:::some-other-bucket/*".to_owned()
        } else {
            format!("arn:aws:s3:::{bucket}/*")
        };
        iam_b
            .put_role_policy()
            .role_name("reader")
            .policy_name("read-reports")
            .policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Action": "s3:GetObject", "Resource": s3_resource}]})
                .to_string(),
            )
            .send()
            .await
            .expect("put role policy");
        let kms_action = if cause == Cause::IamKms {
            "kms:Encrypt"
        } else {
            "kms:Decrypt"
        };
        let managed = iam_b
            .create_policy()
            .policy_name("decrypt-reports")
            .policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Action": kms_action, "Resource": key_arn}]})
                .to_string(),
            )
            .send()
            .await
            .expect("create policy")
            .policy()
            .and_then(|p| p.arn())
            .expect("policy arn")
            .to_owned();
        iam_b
            .attach_role_policy()
            .role_name("reader")
            .policy_arn(managed)
            .send()
            .await
            .expect("attach policy");
        Kc {
            a,
            b,
            bucket,
            key_arn,
        }
    }

    /// `events/s3-getobject-denied-cross-account.eventbridge.json` for these accounts.
    pub fn event(&self) -> Value {
        let text = SAMPLE
            .replace("111122223333", &self.a)
            .replace("444455556666", &self.b)
            .replace("doc-example-bucket", &self.bucket);
        serde_json::from_str(&text).expect("sample event")
    }
}

/// A collector reading every account through the auditor's role, as the Lambda does when
/// it runs in a third account.
pub fn collector(m: &Moto, ttl: Duration) -> Collector<AwsAccounts> {
    let accounts = AwsAccounts::new(
        m.base.clone(),
        Some(RoleSpec {
            name: ROLE.into(),
            external_id: Some(EXTERNAL_ID.into()),
            session_name: "s3-kms-auditor".into(),
        }),
        true,
    );
    accounts.set_home_account(HOME);
    Collector::new(accounts, Cache::new(ttl), Options::default())
}

fn codes(d: &Value, blocking: bool) -> Vec<String> {
    let mut out: Vec<String> = d["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["blocking"] == blocking)
        .filter_map(|f| f["code"].as_str().map(str::to_owned))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Runs one cause end to end and returns the published diagnosis.
async fn run(test: &str, cause: Cause) -> Option<Value> {
    let m = Moto::connect(test).await;
    let kc = Kc::build(&m, cause).await;
    let event = kc.event();
    let collector = collector(&m, Duration::from_secs(300));

    // Cold: collect and diagnose.
    let report = diagnose_event(&collector, &event).await.expect("diagnosed");
    assert_eq!(report.diagnosed.len(), 1);
    let live = &report.diagnosed[0];
    if std::env::var_os("S3KA_TEST_DUMP").is_some() {
        eprintln!("{:#}\n{:?}", live.snapshot, live.stats);
    }
    assert!(
        live.stats.depth <= 3,
        "cold collection deeper than 3 round trips (4 with the publish): {:?}",
        live.stats
    );
    assert!(
        live.snapshot.get("collection_errors").is_none(),
        "{:#}",
        live.snapshot
    );

    // The snapshot alone, through a file, reproduces the diagnosis offline.
    let file = std::env::temp_dir().join(format!("{}.snapshot.json", unique(test)));
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&live.snapshot).expect("json"),
    )
    .expect("write");
    let raw: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    let _ = std::fs::remove_file(&file);
    let snap = Snapshot::from_value(&raw).expect("the collected snapshot is valid");
    let Some(EventOutcome::Denied(req)) = parse_events(&event).expect("event").pop() else {
        panic!("the sample is a denial");
    };
    let offline = diagnose(&snap, &req);
    let live_json = serde_json::to_value(&live.diagnosis).expect("json");
    assert_eq!(
        live_json,
        serde_json::to_value(&offline).expect("json"),
        "live and offline differ"
    );

    // Warm: handle publishes from the container's cache; read the message back.
    let inbox = Inbox::new(&m).await;
    let publisher = SnsPublisher::new(&m.base, &inbox.topic_arn);
    let summary = handle(&collector, &publisher, &event)
        .await
        .expect("handled");
    assert_eq!(summary.published.len(), 1);
    let p = &summary.published[0];
    assert!(p.depth <= 2, "warm diagnosis deeper than 2: {p:?}");
    let envelope = inbox.next().await;
    let message: Value =
        serde_json::from_str(envelope["Message"].as_str().expect("Message")).expect("JSON body");
    let body = message["diagnosis"].clone();
    assert_eq!(body, live_json, "the published diagnosis is the diagnosis");
    let subject = envelope["Subject"].as_str().expect("Subject");
    assert!(subject.len() < 100);
    let verdict = body["verdict"]
        .as_str()
        .expect("verdict")
        .to_ascii_uppercase();
    assert!(
        subject.starts_with(&verdict) && subject.contains(&format!("{}/", kc.bucket)),
        "{subject}"
    );
    if !codes(&body, true).is_empty() {
        // Blocking findings come first; the first is the wall AWS hit, and the subject's code.
        let first = body["findings"][0]["code"].as_str().expect("code");
        assert!(subject.contains(first), "{subject}");
    }
    assert_eq!(message["subject"], subject);
    assert_eq!(message["verdict"], body["verdict"]);
    let attrs = &envelope["MessageAttributes"];
    assert_eq!(attrs["verdict"]["Value"], body["verdict"]);
    assert_eq!(attrs["principal_account"]["Value"], kc.b.as_str());
    assert_eq!(attrs["resource_account"]["Value"], kc.a.as_str());
    assert_eq!(attrs["confidence"]["Value"], body["confidence"]);
    assert_eq!(attrs["finding_codes"]["Type"], "String.Array");
    let listed: Value =
        serde_json::from_str(attrs["finding_codes"]["Value"].as_str().expect("codes"))
            .expect("array");
    let mut listed: Vec<String> = serde_json::from_value(listed).expect("strings");
    listed.sort();
    let mut all = codes(&body, true);
    all.extend(codes(&body, false));
    all.sort();
    assert_eq!(listed, all);
    Some(body)
}

#[tokio::test]
async fn kc_working_setup_is_allowed_with_low_confidence() {
    let Some(d) = run("kc_working", Cause::None).await else {
        return;
    };
    assert_eq!(d["verdict"], "allowed");
    assert_eq!(codes(&d, true), Vec::<String>::new());
    // AWS denied it, yet everything visible allows it: say so.
    assert_eq!(d["confidence"], "low");
}

#[tokio::test]
async fn kc_bucket_policy_names_another_role() {
    let Some(d) = run("kc_bucket_policy", Cause::BucketPolicy).await else {
        return;
    };
    assert_eq!(d["verdict"], "denied");
    assert_eq!(codes(&d, true), ["BUCKET_POLICY_NO_ALLOW"]);
    assert_eq!(d["fixes_verified"], true);
    let fix = &d["findings"][0]["fix"];
    assert!(
        fix["cli"]
            .as_str()
            .is_some_and(|c| c.contains("put-bucket-policy")),
        "{fix:#}"
    );
}

#[tokio::test]
async fn kc_key_policy_lacks_the_reader() {
    let Some(d) = run("kc_key_policy", Cause::KeyPolicy).await else {
        return;
    };
    assert_eq!(d["verdict"], "denied");
    assert_eq!(codes(&d, true), ["KEY_POLICY_NO_ALLOW"]);
    assert_eq!(d["findings"][0]["action"], "kms:Decrypt");
    assert_eq!(d["fixes_verified"], true);
    assert!(d["findings"][0]["fix"]["cli"]
        .as_str()
        .is_some_and(|c| c.contains("put-key-policy")));
}

#[tokio::test]
async fn kc_reader_iam_lacks_s3() {
    let Some(d) = run("kc_iam_s3", Cause::IamS3).await else {
        return;
    };
    assert_eq!(codes(&d, true), ["IDENTITY_POLICY_NO_ALLOW"]);
    assert_eq!(d["findings"][0]["action"], "s3:GetObject");
    assert_eq!(d["fixes_verified"], true);
}

#[tokio::test]
async fn kc_reader_iam_lacks_kms() {
    let Some(d) = run("kc_iam_kms", Cause::IamKms).await else {
        return;
    };
    assert_eq!(codes(&d, true), ["IDENTITY_POLICY_NO_ALLOW"]);
    assert_eq!(d["findings"][0]["action"], "kms:Decrypt");
    assert_eq!(d["fixes_verified"], true);
}

#[tokio::test]
async fn kc_object_under_aws_managed_key() {
    let Some(d) = run("kc_aws_managed", Cause::AwsManagedKey).await else {
        return;
    };
    assert_eq!(codes(&d, true), ["AWS_MANAGED_KEY"]);
    // No policy change can help.
    assert_eq!(d["fixes_verified"], false);
}

#[tokio::test]
async fn kc_default_encryption_by_alias() {
    let Some(d) = run("kc_alias_default", Cause::AliasDefault).await else {
        return;
    };
    assert_eq!(d["verdict"], "denied");
    assert!(
        codes(&d, true).contains(&"KEY_POLICY_NO_ALLOW".to_owned()),
        "{d:#}"
    );
    let advisory = codes(&d, false);
    assert!(
        advisory.contains(&"DEFAULT_ENCRYPTION_ALIAS".to_owned()),
        "{advisory:?}"
    );
    assert!(
        advisory.contains(&"OBJECT_KEY_NOT_DEFAULT".to_owned()),
        "{advisory:?}"
    );
}

#[tokio::test]
async fn kc_disabled_key() {
    let Some(d) = run("kc_disabled_key", Cause::DisabledKey).await else {
        return;
    };
    assert_eq!(codes(&d, true), ["KEY_NOT_USABLE"]);
}

const USER_SAMPLE: &str =
    include_str!("../../../../events/s3-getobject-denied-iam-user.cloudtrail.json");

#[tokio::test]
async fn kc_iam_user_policies_through_groups() {
    let m = Moto::connect("kc_iam_user").await;
    // GIVEN the scenario, and in B a user whose KMS permission comes through a group
    let kc = Kc::build(&m, Cause::KeyPolicy).await;
    let iam = aws_sdk_iam::Client::new(&m.account(&kc.b).await);
    iam.create_user().user_name("alice").send().await.unwrap();
    iam.put_user_policy()
        .user_name("alice")
        .policy_name("read-reports")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{}/*", kc.bucket)}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    iam.create_group()
        .group_name("readers")
        .send()
        .await
        .unwrap();
    iam.put_group_policy()
        .group_name("readers")
        .policy_name("decrypt-inline")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": "kms:Decrypt", "Resource": kc.key_arn}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    iam.attach_group_policy()
        .group_name("readers")
        .policy_arn(format!("arn:aws:iam::{}:policy/decrypt-reports", kc.b))
        .send()
        .await
        .unwrap();
    iam.add_user_to_group()
        .group_name("readers")
        .user_name("alice")
        .send()
        .await
        .unwrap();
    let event: Value = serde_json::from_str(
        &USER_SAMPLE
            .replace("111122223333", &kc.a)
            .replace("444455556666", &kc.b)
            .replace("doc-example-bucket", &kc.bucket),
    )
    .unwrap();
    // WHEN the user's denial is collected
    let collector = collector(&m, Duration::ZERO);
    let report = diagnose_event(&collector, &event).await.unwrap();
    let live = &report.diagnosed[0];
    // THEN the user, its group and the group's policies are in the snapshot
    let iam_doc = &live.snapshot["accounts"][kc.b.as_str()]["iam"];
    assert_eq!(
        iam_doc["UserDetailList"][0]["GroupList"],
        json!(["readers"])
    );
    assert_eq!(
        iam_doc["GroupDetailList"][0]["GroupPolicyList"][0]["PolicyName"],
        "decrypt-inline"
    );
    assert_eq!(iam_doc["Policies"].as_array().map(Vec::len), Some(1));
    assert!(
        live.snapshot.get("collection_errors").is_none(),
        "{:#}",
        live.snapshot
    );
    // AND the identity side passes, so only A's side blocks, as offline
    let raw = live.snapshot.clone();
    let snap = Snapshot::from_value(&raw).unwrap();
    let Some(EventOutcome::Denied(req)) = parse_events(&event).unwrap().pop() else {
        panic!("the sample is a denial");
    };
    let offline = diagnose(&snap, &req);
    assert_eq!(offline, live.diagnosis);
    let d = serde_json::to_value(&live.diagnosis).unwrap();
    assert_eq!(
        codes(&d, true),
        ["BUCKET_POLICY_NO_ALLOW", "KEY_POLICY_NO_ALLOW"]
    );
}

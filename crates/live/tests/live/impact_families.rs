//! Policy-change impact per change family, against the test server (issue 10), for the
//! families `impact.rs` does not cover: default encryption (a key B cannot use, the AWS
//! managed key) and the bucket policy's deletion,
//! Object Ownership / ACL / Block Public Access (`RestrictPublicBuckets` over a public policy), KMS aliases (moved, deleted) and the key's deletion schedule,
//! IAM groups and group membership, managed policy versions, permissions boundaries and role
//! deletion, SCPs on an OU and on the root (an OU narrowed to the stored accounts under it,
//! an updated SCP to those under its targets), an RCP, and a path opened to a third account.
//!
//! Each test applies the change on the server with the SDK, hands the handler the matching
//! CloudTrail record (a sample of `events/` adapted to the accounts, or, where `events/` has
//! none, the nearest sample renamed with the call's request parameters) and reads the message
//! back through SQS. Every change alters one path (or none), so each publishes at most one
//! message; the state is seeded first (`Rig`, `impact.rs`), as a deployment seeds it.
//!
//! What the server cannot show, and what the tests show instead:
//! * moto answers every `GetObjectAcl` with one fixed owner (`layers.rs`), so an object written
//!   by B under `ObjectWriter` cannot be built: the Object Ownership and ACL test shows that
//!   switching an A-owned object's bucket to `ObjectWriter` and granting a bucket ACL re-reads
//!   the path and publishes nothing (neither alters an object read by B).
//! * moto evaluates no policy (IAM, key, bucket, SCP, RCP, boundary): the verdicts are the
//!   auditor's, from the policies it reads back.
//! * moto stores the `KMSMasterKeyID` of default encryption as given and never resolves an
//!   alias; the auditor resolves it from `ListAliases` in the bucket owner's account, as S3
//!   does when it encrypts a new object.
//! * Organizations: moto 5.2.5 creates OUs, and accepts `RESOURCE_CONTROL_POLICY` policies and
//!   their attachments (`layers.rs`), so both the SCP (account, OU, root) and the RCP changes
//!   are applied there; it enforces neither. It answers `ListChildren` and
//!   `ListTargetsForPolicy` (the scope of an OU or an updated policy) in one page, so the
//!   paging of those lists is not exercised here.
//! * Block Public Access is the auditor's reading too: `RestrictPublicBuckets` takes a public
//!   bucket policy's grants away from other accounts
//!   (https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html),
//!   so it breaks a read that relied on a public statement and changes nothing for a policy
//!   naming one role of B, which is not public; both are shown.

use std::collections::BTreeSet;
use std::time::Duration;

use auditor::impact::scope::Probe;
use auditor::impact::state::{PathIndex, PathVerdict};
use auditor_live::aws::{AwsAccounts, OrgAccess, SnsPublisher};
use auditor_live::collect::Collector;
use auditor_live::handler::impact::seed;
use auditor_live::ports::StateStore;
use auditor_live::state;
use aws_sdk_organizations::types::PolicyType;
use aws_sdk_s3::types::{
    AccessControlPolicy, Grant, Grantee, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    Permission, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Type,
};
use serde_json::{json, Value};

use crate::impact::{state_bucket, Rig};
use crate::kc::{collector, Cause, Kc};
use crate::support::{account_id, unique, Inbox, Moto, REGION};

const PUT_BUCKET_POLICY: &str =
    include_str!("../../../../events/change-putbucketpolicy.eventbridge.json");
const PUT_BUCKET_ENCRYPTION: &str =
    include_str!("../../../../events/change-putbucketencryption.eventbridge.json");
const PUT_OWNERSHIP: &str =
    include_str!("../../../../events/change-putbucketownershipcontrols.eventbridge.json");
const PUT_BUCKET_ACL: &str =
    include_str!("../../../../events/change-putbucketacl.eventbridge.json");
const PUT_PUBLIC_ACCESS_BLOCK: &str =
    include_str!("../../../../events/change-putpublicaccessblock.eventbridge.json");
const CREATE_ALIAS: &str = include_str!("../../../../events/change-createalias.eventbridge.json");
const UPDATE_ALIAS: &str = include_str!("../../../../events/change-updatealias.eventbridge.json");
const DISABLE_KEY: &str = include_str!("../../../../events/change-disablekey.eventbridge.json");
const SCHEDULE_KEY_DELETION: &str =
    include_str!("../../../../events/change-schedulekeydeletion.eventbridge.json");
const ATTACH_GROUP_POLICY: &str =
    include_str!("../../../../events/change-attachgrouppolicy.eventbridge.json");
const ADD_USER_TO_GROUP: &str =
    include_str!("../../../../events/change-addusertogroup.eventbridge.json");
const CREATE_POLICY_VERSION: &str =
    include_str!("../../../../events/change-createpolicyversion.eventbridge.json");
const PUT_BOUNDARY: &str =
    include_str!("../../../../events/change-putrolepermissionsboundary.eventbridge.json");
const PUT_ROLE_POLICY: &str =
    include_str!("../../../../events/change-putrolepolicy.eventbridge.json");
const DETACH_ROLE_POLICY: &str =
    include_str!("../../../../events/change-detachrolepolicy.eventbridge.json");
const ATTACH_POLICY: &str =
    include_str!("../../../../events/change-attachpolicy-scp.eventbridge.json");
const DETACH_POLICY: &str =
    include_str!("../../../../events/change-detachpolicy-scp.eventbridge.json");
const UPDATE_POLICY: &str =
    include_str!("../../../../events/change-updatepolicy-scp.eventbridge.json");

/// The representative key a path on every object of the bucket (`*`) is diagnosed on: an
/// object not yet written, encrypted with the bucket's default key when it is.
const NEW_OBJECT: &str = "example";

impl Rig {
    /// The rig over a built scenario, its state seeded by the paths of `principals` to
    /// `object` (a key of the bucket) instead of the reader's path to `reports/q1.csv`.
    async fn seeded_on(
        m: Moto,
        kc: Kc,
        collector: Collector<AwsAccounts>,
        principals: &[String],
        object: &str,
    ) -> Rig {
        let inbox = Inbox::new(&m).await;
        let publisher = SnsPublisher::new(&m.base, &inbox.topic_arn);
        let store = state_bucket(&m).await;
        let probes: BTreeSet<Probe> = principals
            .iter()
            .map(|p| Probe {
                principal: p.clone(),
                object_arn: format!("arn:aws:s3:::{}/{object}", kc.bucket),
                bucket_owner: Some(kc.a.clone()),
            })
            .collect();
        let written = seed(&collector, &store, &probes).await.expect("seeded");
        assert!(written.contains(&kc.a), "{written:?}");
        Rig {
            m,
            kc,
            collector,
            publisher,
            inbox,
            store,
        }
    }

    /// `sample` adapted to the scenario, recorded as `event_name` with `params` as its
    /// request parameters (a sample of another call of the same service, for the calls
    /// `events/` has none of), under a fresh event id.
    fn call(&self, sample: &str, event_name: &str, params: Value) -> Value {
        let mut e = self.event(sample);
        e["detail"]["eventName"] = json!(event_name);
        e["detail"]["requestParameters"] = params;
        e["detail"]["responseElements"] = Value::Null;
        e["detail"]["eventID"] = json!(unique("event"));
        e["id"] = json!(unique("envelope"));
        e
    }

    /// The sample itself (its own call), with `edit` applied to its request parameters.
    fn sample_with(&self, sample: &str, edit: impl FnOnce(&mut Value)) -> Value {
        let mut e = self.event(sample);
        edit(&mut e["detail"]["requestParameters"]);
        e["detail"]["eventID"] = json!(unique("event"));
        e["id"] = json!(unique("envelope"));
        e
    }

    async fn kms(&self) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.m.account(&self.kc.a).await)
    }

    async fn iam_b(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.m.account(&self.kc.b).await)
    }

    async fn s3_a(&self) -> aws_sdk_s3::Client {
        Moto::s3(&self.m.account(&self.kc.a).await)
    }

    /// A key of A whose policy names only A (so no principal of B can use it); its ARN.
    async fn key_b_cannot_use(&self) -> String {
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Enable IAM User Permissions",
            "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{}:root", self.kc.a)},
            "Action": "kms:*", "Resource": "*"}]});
        self.kms()
            .await
            .create_key()
            .description("reports (A only)")
            .policy(policy.to_string())
            .send()
            .await
            .expect("create key")
            .key_metadata()
            .and_then(|k| k.arn())
            .expect("key arn")
            .to_owned()
    }

    /// Sets the bucket's default encryption to SSE-KMS under `key`.
    async fn default_key(&self, key: &str) {
        set_default_key(&self.s3_a().await, &self.kc.bucket, key).await;
    }

    /// The stored verdict of `principal`'s path to `object` in A's index.
    async fn stored(&self, principal: &str, object: &str) -> Option<PathVerdict> {
        let stored = self
            .store
            .get(&state::index_name(&self.kc.a))
            .await
            .expect("read")
            .expect("A's index");
        PathIndex::parse(&stored.body, "index")
            .expect("parses")
            .paths
            .into_iter()
            .find(|p| p.principal == principal && p.object == object)
    }

    /// Asserts the next message is an impact of `kind` on `principal`'s path to `object`,
    /// caused by `event_name`, naming `must_act` among the accounts that must act (with
    /// verified fixes); returns its body. [`Rig::expect_impact`] for any principal and object.
    async fn expect_path(
        &self,
        kind: &str,
        principal: &str,
        object: &str,
        event_name: &str,
        must_act: Option<&str>,
    ) -> Value {
        let (body, attributes, subject) = self.message().await;
        assert_eq!(body["kind"], "impact", "{body:#}");
        assert_eq!(body["impact"], kind, "{body:#}");
        assert_eq!(body["principal"], principal, "{body:#}");
        assert_eq!(body["bucket"], self.kc.bucket, "{body:#}");
        assert_eq!(body["object"], object, "{body:#}");
        assert_eq!(body["change"]["event_name"], event_name, "{body:#}");
        assert!(body["change"]["event_id"].is_string(), "{body:#}");
        assert_eq!(attributes["kind"]["Value"], "impact", "{attributes:#}");
        assert_eq!(attributes["impact"]["Value"], kind, "{attributes:#}");
        let principal_account = principal.split(':').nth(4).expect("an ARN");
        assert_eq!(
            attributes["principal_account"]["Value"], principal_account,
            "{attributes:#}"
        );
        assert_eq!(attributes["resource_account"]["Value"], self.kc.a);
        assert!(
            attributes["change_event"]["Value"]
                .as_str()
                .is_some_and(|v| v.ends_with(event_name)),
            "{attributes:#}"
        );
        assert!(
            subject.starts_with(&kind.to_ascii_uppercase()) && subject.contains(event_name),
            "{subject}"
        );
        if let Some(account) = must_act {
            let acting = body["acting_accounts"].as_array().expect("acting accounts");
            assert!(
                acting.iter().any(|a| a == account),
                "{account} must act: {body:#}"
            );
            let first = acting[0].as_str().expect("account");
            assert!(subject.contains(&format!("fix: {first}")), "{subject}");
            assert_eq!(body["path"]["fixes_verified"], true, "{body:#}");
        }
        body
    }
}

/// Sets `bucket`'s default encryption to SSE-KMS under `key` (an id, ARN or alias ARN).
async fn set_default_key(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) {
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::AwsKms)
                                .kms_master_key_id(key)
                                .build()
                                .expect("default encryption"),
                        )
                        .build(),
                )
                .build()
                .expect("encryption configuration"),
        )
        .send()
        .await
        .expect("put bucket encryption");
}

fn codes(body: &Value) -> Vec<String> {
    body["blocking_codes"]
        .as_array()
        .expect("blocking codes")
        .iter()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect()
}

/// The reader's paths on every object: the bucket's objects are not listed, so the path is
/// the bucket policy's `*`, diagnosed on a key not yet written, under the default key.
async fn on_new_objects(test: &str) -> Rig {
    let m = Moto::connect(test).await;
    let kc = Kc::build(&m, Cause::None).await;
    let c = collector(&m, Duration::from_secs(300));
    let reader = format!("arn:aws:iam::{}:role/reader", kc.b);
    Rig::seeded_on(m, kc, c, &[reader], NEW_OBJECT).await
}

#[tokio::test]
async fn impact_default_encryption_on_a_key_the_reader_cannot_use_breaks_new_objects() {
    // GIVEN the reader's path to new objects, allowed under the default key K
    let rig = on_new_objects("impact_fam_encryption").await;
    let reader = rig.reader();
    let before = rig
        .stored(&reader, "*")
        .await
        .expect("the path to * is seeded");
    assert_eq!(
        before.verdict,
        auditor::diagnose::Verdict::Allowed,
        "{before:?}"
    );
    // WHEN A's default encryption moves to a key whose policy names only A
    let k2 = rig.key_b_cannot_use().await;
    rig.default_key(&k2).await;
    let event = rig.sample_with(PUT_BUCKET_ENCRYPTION, |p| {
        p["ServerSideEncryptionConfiguration"]["Rule"]["ApplyServerSideEncryptionByDefault"]
            ["KMSMasterKeyID"] = json!(k2);
        p["ServerSideEncryptionConfiguration"]["Rule"]["BucketKeyEnabled"] = json!(false);
    });
    let s = rig.deliver(&event).await;
    // THEN the path to new objects is broken: the new key's policy is A's to fix
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    let body = rig
        .expect_path(
            "broken",
            &reader,
            "*",
            "PutBucketEncryption",
            Some(&rig.kc.a),
        )
        .await;
    assert!(
        codes(&body).iter().any(|c| c == "KEY_POLICY_NO_ALLOW"),
        "{body:#}"
    );
    rig.nothing_published().await;

    // WHEN the default encryption is deleted (S3 falls back to SSE-S3, which needs no key
    // permission: https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucketEncryption.html)
    rig.s3_a()
        .await
        .delete_bucket_encryption()
        .bucket(&rig.kc.bucket)
        .send()
        .await
        .expect("delete bucket encryption");
    let bucket = rig.kc.bucket.clone();
    let event = rig.call(
        PUT_BUCKET_ENCRYPTION,
        "DeleteBucketEncryption",
        json!({"bucketName": bucket, "encryption": [""]}),
    );
    let s = rig.deliver(&event).await;
    // THEN the path is fixed
    assert_eq!(s.impacts[0].fixed.len(), 1, "{s:?}");
    rig.expect_path("fixed", &reader, "*", "DeleteBucketEncryption", None)
        .await;
    rig.nothing_published().await;
}

#[tokio::test]
async fn impact_deleting_the_bucket_policy_breaks_the_reader() {
    let rig = Rig::seeded("impact_fam_delete_policy", Cause::None).await;
    rig.s3_a()
        .await
        .delete_bucket_policy()
        .bucket(&rig.kc.bucket)
        .send()
        .await
        .expect("delete bucket policy");
    let bucket = rig.kc.bucket.clone();
    let event = rig.call(
        PUT_BUCKET_POLICY,
        "DeleteBucketPolicy",
        json!({"bucketName": bucket, "policy": [""]}),
    );
    let s = rig.deliver(&event).await;
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    let body = rig
        .expect_impact("broken", "DeleteBucketPolicy", Some(&rig.kc.a))
        .await;
    assert!(
        codes(&body).iter().any(|c| c == "BUCKET_POLICY_NO_ALLOW"),
        "{body:#}"
    );
    rig.nothing_published().await;
}

#[tokio::test]
async fn impact_ownership_acl_and_public_access_block_changes_that_alter_no_path_publish_nothing() {
    let rig = Rig::seeded("impact_fam_bucket_settings", Cause::None).await;
    let s3 = rig.s3_a().await;
    let bucket = rig.kc.bucket.clone();
    // Object Ownership back to ObjectWriter: the object was written by A, A still owns it.
    s3.put_bucket_ownership_controls()
        .bucket(&bucket)
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
        .expect("put ownership controls");
    let ownership = rig.sample_with(PUT_OWNERSHIP, |p| {
        p["OwnershipControls"]["Rule"]["ObjectOwnership"] = json!("ObjectWriter");
    });
    // A bucket ACL granting READ (object listing, not object reads) to another canonical user.
    let owner = s3
        .get_bucket_acl()
        .bucket(&bucket)
        .send()
        .await
        .expect("get bucket acl")
        .owner()
        .cloned()
        .expect("owner");
    let owner_id = owner.id().expect("owner id").to_owned();
    let other = "08d533ef40bb2cca86f4deb245dcb1aa2363817d431183a45eebb30e2ba6869d";
    let grant = |id: &str, permission: Permission| {
        Grant::builder()
            .grantee(
                Grantee::builder()
                    .r#type(Type::CanonicalUser)
                    .id(id)
                    .build()
                    .expect("grantee"),
            )
            .permission(permission)
            .build()
    };
    s3.put_bucket_acl()
        .bucket(&bucket)
        .access_control_policy(
            AccessControlPolicy::builder()
                .owner(owner)
                .grants(grant(&owner_id, Permission::FullControl))
                .grants(grant(other, Permission::Read))
                .build(),
        )
        .send()
        .await
        .expect("put bucket acl");
    let acl = rig.sample_with(PUT_BUCKET_ACL, |p| {
        p["AccessControlPolicy"]["Owner"]["ID"] = json!(owner_id);
        p["AccessControlPolicy"]["AccessControlList"]["Grant"][0]["Grantee"]["ID"] =
            json!(owner_id);
    });
    // Block Public Access, all four settings: the bucket policy names one role, it is not
    // public, so nothing it grants is restricted.
    s3.put_public_access_block()
        .bucket(&bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .expect("put public access block");
    let pab = rig.sample_with(PUT_PUBLIC_ACCESS_BLOCK, |_| {});
    for (name, event) in [
        ("PutBucketOwnershipControls", ownership),
        ("PutBucketAcl", acl),
        ("PutPublicAccessBlock", pab),
    ] {
        let s = rig.deliver(&event).await;
        assert_eq!(s.impacts.len(), 1, "{name}: {s:?}");
        let i = &s.impacts[0];
        assert_eq!(i.event_name, name);
        assert!(!i.first_sight, "{name}: {s:?}");
        // The reader's path was re-read, and kept its verdict.
        assert!(i.probes >= 1, "{name}: {s:?}");
        assert!(i.unchanged >= 1, "{name}: {s:?}");
        assert!(i.published.is_empty(), "{name}: {s:?}");
        rig.nothing_published().await;
    }
    let path = rig
        .stored(&rig.reader(), "reports/q1.csv")
        .await
        .expect("the reader's path is still stored");
    assert_eq!(
        path.verdict,
        auditor::diagnose::Verdict::Allowed,
        "{path:?}"
    );
}

/// The reader's path to new objects (as [`on_new_objects`]) when default encryption names A's
/// key K by a new alias: the seeded path is allowed (the alias names K, whose policy names the
/// reader). Returns the rig, a KMS client of A, the alias name and the reader's role ARN.
async fn by_alias(test: &str, prefix: &str) -> (Rig, aws_sdk_kms::Client, String, String) {
    let m = Moto::connect(test).await;
    let kc = Kc::build(&m, Cause::None).await;
    let alias = format!("alias/{}", unique(prefix));
    let kms = aws_sdk_kms::Client::new(&m.account(&kc.a).await);
    kms.create_alias()
        .alias_name(&alias)
        .target_key_id(&kc.key_arn)
        .send()
        .await
        .expect("create alias");
    let alias_arn = format!("arn:aws:kms:{REGION}:{}:{alias}", kc.a);
    set_default_key(&Moto::s3(&m.account(&kc.a).await), &kc.bucket, &alias_arn).await;
    let c = collector(&m, Duration::from_secs(300));
    let reader = format!("arn:aws:iam::{}:role/reader", kc.b);
    let rig = Rig::seeded_on(m, kc, c, std::slice::from_ref(&reader), NEW_OBJECT).await;
    let before = rig.stored(&reader, "*").await.expect("seeded path");
    assert_eq!(
        before.verdict,
        auditor::diagnose::Verdict::Allowed,
        "{before:?}"
    );
    (rig, kms, alias, reader)
}

#[tokio::test]
async fn impact_moving_the_alias_default_encryption_names_breaks_and_moving_it_back_fixes() {
    // GIVEN default encryption naming A's key K by an alias, and the reader's path to new
    // objects seeded (allowed)
    let (rig, kms, alias, reader) = by_alias("impact_fam_alias", "fam-reports").await;

    // WHEN the alias is moved to a key whose policy names only A
    let k2 = rig.key_b_cannot_use().await;
    let k2_id = k2.rsplit('/').next().expect("key id").to_owned();
    kms.update_alias()
        .alias_name(&alias)
        .target_key_id(&k2_id)
        .send()
        .await
        .expect("update alias");
    let moved = rig.sample_with(UPDATE_ALIAS, |p| {
        p["aliasName"] = json!(alias);
        p["targetKeyId"] = json!(k2_id);
    });
    let s = rig.deliver(&moved).await;
    // THEN new objects are encrypted under the new key: the path breaks, A must act
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    let body = rig
        .expect_path("broken", &reader, "*", "UpdateAlias", Some(&rig.kc.a))
        .await;
    assert!(
        codes(&body).iter().any(|c| c == "KEY_POLICY_NO_ALLOW"),
        "{body:#}"
    );
    rig.nothing_published().await;

    // WHEN another alias is created for the new key: no bucket names it, nothing changes
    let other = format!("alias/{}", unique("fam-unused"));
    kms.create_alias()
        .alias_name(&other)
        .target_key_id(&k2_id)
        .send()
        .await
        .expect("create alias");
    let created = rig.sample_with(CREATE_ALIAS, |p| {
        p["aliasName"] = json!(other);
        p["targetKeyId"] = json!(k2_id);
    });
    let s = rig.deliver(&created).await;
    assert!(s.impacts[0].published.is_empty(), "{s:?}");
    assert!(
        s.impacts[0].probes >= 1,
        "the bucket's paths re-read: {s:?}"
    );
    rig.nothing_published().await;

    // WHEN the alias is moved back to K THEN the path is fixed
    let k_id = rig.key_id().to_owned();
    kms.update_alias()
        .alias_name(&alias)
        .target_key_id(&k_id)
        .send()
        .await
        .expect("update alias back");
    let back = rig.sample_with(UPDATE_ALIAS, |p| {
        p["aliasName"] = json!(alias);
        p["targetKeyId"] = json!(k_id);
    });
    let s = rig.deliver(&back).await;
    assert_eq!(s.impacts[0].fixed.len(), 1, "{s:?}");
    rig.expect_path("fixed", &reader, "*", "UpdateAlias", None)
        .await;
}

#[tokio::test]
async fn impact_key_deletion_scheduled_breaks_cancelled_stays_denied_and_enable_fixes() {
    let rig = Rig::seeded("impact_fam_key_deletion", Cause::None).await;
    let kms = rig.kms().await;
    // WHEN A schedules the key's deletion
    kms.schedule_key_deletion()
        .key_id(rig.key_id())
        .pending_window_in_days(7)
        .send()
        .await
        .expect("schedule key deletion");
    let scheduled = rig.sample_with(SCHEDULE_KEY_DELETION, |p| {
        p["pendingWindowInDays"] = json!(7);
    });
    let s = rig.deliver(&scheduled).await;
    // THEN the path breaks: a key pending deletion cannot decrypt
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    let body = rig
        .expect_impact("broken", "ScheduleKeyDeletion", Some(&rig.kc.a))
        .await;
    assert!(
        codes(&body).iter().any(|c| c == "KEY_NOT_USABLE"),
        "{body:#}"
    );
    rig.nothing_published().await;

    // WHEN the deletion is cancelled: the key is left disabled
    // (https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys-scheduling-key-deletion.html),
    // so the path stays denied and nothing is published
    kms.cancel_key_deletion()
        .key_id(rig.key_id())
        .send()
        .await
        .expect("cancel key deletion");
    let key_arn = rig.kc.key_arn.clone();
    let cancelled = rig.call(DISABLE_KEY, "CancelKeyDeletion", json!({"keyId": key_arn}));
    let s = rig.deliver(&cancelled).await;
    assert!(s.impacts[0].published.is_empty(), "{s:?}");
    assert!(s.impacts[0].probes >= 1, "{s:?}");
    rig.nothing_published().await;

    // WHEN the key is enabled THEN the path is fixed
    kms.enable_key()
        .key_id(rig.key_id())
        .send()
        .await
        .expect("enable key");
    let enabled = rig.call(DISABLE_KEY, "EnableKey", json!({"keyId": key_arn}));
    let s = rig.deliver(&enabled).await;
    assert_eq!(s.impacts[0].fixed.len(), 1, "{s:?}");
    rig.expect_impact("fixed", "EnableKey", None).await;
    rig.nothing_published().await;
}

/// The scenario with, in B, user `alice` reading the bucket (an inline S3 policy) and
/// decrypting through group `readers` (the managed policy `decrypt-reports` attached to it);
/// A's bucket and key policies name her. Her path is seeded.
async fn with_alice(test: &str) -> (Rig, String) {
    let m = Moto::connect(test).await;
    let kc = Kc::build(&m, Cause::None).await;
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
    let alice = format!("arn:aws:iam::{}:user/alice", kc.b);
    let reader = format!("arn:aws:iam::{}:role/reader", kc.b);
    let cfg_a = m.account(&kc.a).await;
    Moto::s3(&cfg_a)
        .put_bucket_policy()
        .bucket(&kc.bucket)
        .policy(
            json!({"Version": "2012-10-17", "Statement": [{"Sid": "CrossAccountRead",
                "Effect": "Allow", "Principal": {"AWS": [&reader, &alice]}, "Action": "s3:GetObject",
                "Resource": format!("arn:aws:s3:::{}/*", kc.bucket)}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    aws_sdk_kms::Client::new(&cfg_a)
        .put_key_policy()
        .key_id(kc.key_arn.rsplit('/').next().unwrap())
        .policy_name("default")
        .policy(
            json!({"Version": "2012-10-17", "Statement": [
                {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                 "Principal": {"AWS": format!("arn:aws:iam::{}:root", kc.a)}, "Action": "kms:*", "Resource": "*"},
                {"Sid": "AllowReadersDecryptViaS3", "Effect": "Allow",
                 "Principal": {"AWS": [&reader, &alice]}, "Action": "kms:Decrypt", "Resource": "*",
                 "Condition": {"StringEquals": {"kms:ViaService": format!("s3.{REGION}.amazonaws.com")}}}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let c = collector(&m, Duration::from_secs(300));
    let rig = Rig::seeded_on(m, kc, c, std::slice::from_ref(&alice), "reports/q1.csv").await;
    let path = rig.stored(&alice, "reports/q1.csv").await.expect("seeded");
    assert_eq!(
        path.verdict,
        auditor::diagnose::Verdict::Allowed,
        "{path:?}"
    );
    (rig, alice)
}

#[tokio::test]
async fn impact_group_policy_and_group_membership_of_a_reader_user() {
    let (rig, alice) = with_alice("impact_fam_groups").await;
    let iam = rig.iam_b().await;
    let managed = format!("arn:aws:iam::{}:policy/decrypt-reports", rig.kc.b);
    let object = "reports/q1.csv";
    let group_policy = |name: &str| {
        rig.call(
            ATTACH_GROUP_POLICY,
            name,
            json!({"groupName": "readers", "policyArn": managed}),
        )
    };
    let membership = |name: &str| {
        rig.call(
            ADD_USER_TO_GROUP,
            name,
            json!({"groupName": "readers", "userName": "alice"}),
        )
    };

    // WHEN the group loses the decrypt policy THEN alice's path breaks; B must act
    iam.detach_group_policy()
        .group_name("readers")
        .policy_arn(&managed)
        .send()
        .await
        .unwrap();
    let s = rig.deliver(&group_policy("DetachGroupPolicy")).await;
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    let body = rig
        .expect_path(
            "broken",
            &alice,
            object,
            "DetachGroupPolicy",
            Some(&rig.kc.b),
        )
        .await;
    assert!(
        codes(&body).iter().any(|c| c == "IDENTITY_POLICY_NO_ALLOW"),
        "{body:#}"
    );
    rig.nothing_published().await;

    // WHEN it is attached again THEN her path is fixed
    iam.attach_group_policy()
        .group_name("readers")
        .policy_arn(&managed)
        .send()
        .await
        .unwrap();
    let s = rig.deliver(&group_policy("AttachGroupPolicy")).await;
    assert_eq!(s.impacts[0].fixed.len(), 1, "{s:?}");
    rig.expect_path("fixed", &alice, object, "AttachGroupPolicy", None)
        .await;

    // WHEN she leaves the group THEN her path breaks again
    iam.remove_user_from_group()
        .group_name("readers")
        .user_name("alice")
        .send()
        .await
        .unwrap();
    let s = rig.deliver(&membership("RemoveUserFromGroup")).await;
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    rig.expect_path(
        "broken",
        &alice,
        object,
        "RemoveUserFromGroup",
        Some(&rig.kc.b),
    )
    .await;

    // WHEN she rejoins THEN it is fixed; the reader role's path was never touched
    iam.add_user_to_group()
        .group_name("readers")
        .user_name("alice")
        .send()
        .await
        .unwrap();
    let s = rig.deliver(&membership("AddUserToGroup")).await;
    assert_eq!(s.impacts[0].fixed.len(), 1, "{s:?}");
    rig.expect_path("fixed", &alice, object, "AddUserToGroup", None)
        .await;
    rig.nothing_published().await;
    let reader = rig
        .stored(&rig.reader(), object)
        .await
        .expect("the reader's path");
    assert_eq!(reader.verdict, auditor::diagnose::Verdict::Allowed);
}

#[tokio::test]
async fn impact_managed_policy_version_without_decrypt_breaks_and_the_old_default_fixes() {
    let rig = Rig::seeded("impact_fam_policy_version", Cause::None).await;
    let iam = rig.iam_b().await;
    let managed = format!("arn:aws:iam::{}:policy/decrypt-reports", rig.kc.b);
    // WHEN B publishes a new default version of the reader's managed policy that encrypts
    // but no longer decrypts
    let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "kms:Encrypt", "Resource": rig.kc.key_arn}]})
    .to_string();
    let version = iam
        .create_policy_version()
        .policy_arn(&managed)
        .policy_document(&doc)
        .set_as_default(true)
        .send()
        .await
        .expect("create policy version")
        .policy_version()
        .and_then(|v| v.version_id())
        .expect("version id")
        .to_owned();
    let mut created = rig.sample_with(CREATE_POLICY_VERSION, |p| {
        p["policyArn"] = json!(managed);
        p["policyDocument"] = json!(doc);
    });
    created["detail"]["responseElements"]["policyVersion"]["versionId"] = json!(version);
    let s = rig.deliver(&created).await;
    // THEN the reader's path breaks; B must act
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    let body = rig
        .expect_impact("broken", "CreatePolicyVersion", Some(&rig.kc.b))
        .await;
    assert!(
        codes(&body).iter().any(|c| c == "IDENTITY_POLICY_NO_ALLOW"),
        "{body:#}"
    );
    rig.nothing_published().await;

    // WHEN v1 is made the default again THEN the path is fixed
    iam.set_default_policy_version()
        .policy_arn(&managed)
        .version_id("v1")
        .send()
        .await
        .expect("set default policy version");
    let restored = rig.call(
        CREATE_POLICY_VERSION,
        "SetDefaultPolicyVersion",
        json!({"policyArn": managed, "versionId": "v1"}),
    );
    let s = rig.deliver(&restored).await;
    assert_eq!(s.impacts[0].fixed.len(), 1, "{s:?}");
    rig.expect_impact("fixed", "SetDefaultPolicyVersion", None)
        .await;
    rig.nothing_published().await;
}

#[tokio::test]
async fn impact_permissions_boundary_without_decrypt_breaks_and_removing_it_fixes() {
    let rig = Rig::seeded("impact_fam_boundary", Cause::None).await;
    let iam = rig.iam_b().await;
    // WHEN B sets a boundary on the reader that allows object reads but not kms:Decrypt
    let boundary = iam
        .create_policy()
        .policy_name("workload-boundary")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": "s3:GetObject", "Resource": "*"}]})
            .to_string(),
        )
        .send()
        .await
        .expect("create boundary policy")
        .policy()
        .and_then(|p| p.arn())
        .expect("arn")
        .to_owned();
    iam.put_role_permissions_boundary()
        .role_name("reader")
        .permissions_boundary(&boundary)
        .send()
        .await
        .expect("put role permissions boundary");
    let s = rig.deliver(&rig.sample_with(PUT_BOUNDARY, |_| {})).await;
    // THEN the path breaks; B must act
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    let body = rig
        .expect_impact("broken", "PutRolePermissionsBoundary", Some(&rig.kc.b))
        .await;
    assert_eq!(codes(&body), ["PERMISSIONS_BOUNDARY_NO_ALLOW"], "{body:#}");
    rig.nothing_published().await;

    // AND the reader's next denial is diagnosed from the new state (the boundary), not from
    // the role the warm cache held before the change
    let s = rig.deliver(&rig.kc.event()).await;
    assert_eq!(s.summary.published.len(), 1, "{s:?}");
    let codes_now = &s.summary.published[0].finding_codes;
    assert!(
        codes_now
            .iter()
            .any(|c| c == "PERMISSIONS_BOUNDARY_NO_ALLOW"),
        "{codes_now:?}"
    );
    let (body, _, _) = rig.message().await;
    assert_eq!(body["kind"], "diagnosis", "{body:#}");

    // WHEN the boundary is removed THEN the path is fixed
    iam.delete_role_permissions_boundary()
        .role_name("reader")
        .send()
        .await
        .expect("delete role permissions boundary");
    let removed = rig.call(
        PUT_BOUNDARY,
        "DeleteRolePermissionsBoundary",
        json!({"roleName": "reader"}),
    );
    let s = rig.deliver(&removed).await;
    assert_eq!(s.impacts[0].fixed.len(), 1, "{s:?}");
    rig.expect_impact("fixed", "DeleteRolePermissionsBoundary", None)
        .await;
    rig.nothing_published().await;
}

/// AWS deletes a role only once its inline policies are deleted and its managed policies
/// detached (https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteRole.html); each
/// of those is a change of its own. The path breaks at the first removal that denies it, and
/// that is the one message: the later removals and the deletion find it denied already.
#[tokio::test]
async fn impact_deleting_a_role_publishes_one_break_at_the_first_removal_and_nothing_after() {
    let rig = Rig::seeded("impact_fam_delete_role", Cause::None).await;
    let iam = rig.iam_b().await;
    // WHEN the reader's inline S3 policy is deleted THEN the path breaks (one message)
    iam.delete_role_policy()
        .role_name("reader")
        .policy_name("read-reports")
        .send()
        .await
        .expect("delete role policy");
    let deleted = rig.call(
        PUT_ROLE_POLICY,
        "DeleteRolePolicy",
        json!({"roleName": "reader", "policyName": "read-reports"}),
    );
    let s = rig.deliver(&deleted).await;
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    rig.expect_impact("broken", "DeleteRolePolicy", Some(&rig.kc.b))
        .await;
    rig.nothing_published().await;

    // WHEN its managed policy is detached and the role deleted THEN nothing more is published
    iam.detach_role_policy()
        .role_name("reader")
        .policy_arn(format!("arn:aws:iam::{}:policy/decrypt-reports", rig.kc.b))
        .send()
        .await
        .expect("detach");
    let s = rig
        .deliver(&rig.sample_with(DETACH_ROLE_POLICY, |_| {}))
        .await;
    assert!(s.impacts[0].published.is_empty(), "{s:?}");
    rig.nothing_published().await;
    iam.delete_role()
        .role_name("reader")
        .send()
        .await
        .expect("delete role");
    let gone = rig.call(PUT_ROLE_POLICY, "DeleteRole", json!({"roleName": "reader"}));
    let s = rig.deliver(&gone).await;
    assert!(s.impacts[0].published.is_empty(), "{s:?}");
    assert!(s.impacts[0].broken.is_empty(), "{s:?}");
    assert_eq!(s.impacts[0].probes, 1, "the role's one path re-read: {s:?}");
    rig.nothing_published().await;
    // A's bucket and key policies still name the role, so the path stays in the index, now
    // `unknown` (no caller to evaluate): denied → unknown is undecided, logged, not published.
    let after = rig
        .stored(&rig.reader(), "reports/q1.csv")
        .await
        .expect("still intended by A's policies");
    assert_eq!(
        after.verdict,
        auditor::diagnose::Verdict::Unknown,
        "{after:?}"
    );
}

/// The scenario in an organization (B under an OU, A under the root), the collector reading
/// its policies through the management account, and the reader's path seeded.
async fn in_organization(test: &str) -> (Rig, String, String, String) {
    let m = Moto::connect(test).await;
    let (mgmt, root, ou, a, b) = crate::layers::organization(&m).await;
    let kc = Kc::build_in(&m, Cause::None, a, b).await;
    let org_reader = format!("arn:aws:iam::{mgmt}:role/S3KmsAuditorOrgReader");
    let c = crate::layers::collector(&m, Some(OrgAccess::Role(org_reader)));
    (Rig::seeded_with(m, kc, c).await, mgmt, root, ou)
}

/// An Organizations record (made in the management account) naming `policy_id` and `target`.
fn org_event(rig: &Rig, sample: &str, mgmt: &str, policy_id: &str, target: &str) -> Value {
    let text = sample.replace("555566667777", mgmt);
    let mut e = rig.event(&text);
    e["detail"]["requestParameters"] = json!({"policyId": policy_id, "targetId": target});
    e["detail"]["eventID"] = json!(unique("event"));
    e
}

#[tokio::test]
async fn impact_scp_on_the_readers_ou_and_on_the_root_break_and_fix_the_readers_path() {
    let (rig, mgmt, root, ou) = in_organization("impact_fam_scp_ou_root").await;
    let org = aws_sdk_organizations::Client::new(&rig.m.account(&mgmt).await);
    let deny = json!({"Version": "2012-10-17", "Statement": [{"Sid": "NoObjectReads",
        "Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}]});
    // WHEN an SCP denying object reads is attached to B's OU
    let policy_id = crate::layers::attach(
        &rig.m,
        &mgmt,
        PolicyType::ServiceControlPolicy,
        "DenyObjectReadsOu",
        deny,
        &ou,
    )
    .await;
    let s = rig
        .deliver(&org_event(&rig, ATTACH_POLICY, &mgmt, &policy_id, &ou))
        .await;
    // THEN the accounts under the OU are reassessed, the reader's path breaks, and the
    // organization's management account must act
    assert_eq!(s.impacts.len(), 1, "{s:?}");
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    assert!(!s.impacts[0].stored.contains(&mgmt), "{s:?}");
    let body = rig.expect_impact("broken", "AttachPolicy", None).await;
    assert!(
        codes(&body).iter().any(|c| c == "SCP_EXPLICIT_DENY"),
        "{body:#}"
    );
    // named by its id (DescribeOrganization's MasterAccountId)
    assert_eq!(body["acting_accounts"], json!([mgmt]), "{body:#}");
    rig.nothing_published().await;

    // WHEN it is detached from the OU THEN the path is fixed
    org.detach_policy()
        .policy_id(&policy_id)
        .target_id(&ou)
        .send()
        .await
        .expect("detach from the OU");
    let s = rig
        .deliver(&org_event(&rig, DETACH_POLICY, &mgmt, &policy_id, &ou))
        .await;
    assert_eq!(s.impacts[0].fixed.len(), 1, "{s:?}");
    rig.expect_impact("fixed", "DetachPolicy", None).await;

    // WHEN it is attached to the root THEN the path breaks again
    org.attach_policy()
        .policy_id(&policy_id)
        .target_id(&root)
        .send()
        .await
        .expect("attach to the root");
    let s = rig
        .deliver(&org_event(&rig, ATTACH_POLICY, &mgmt, &policy_id, &root))
        .await;
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    let body = rig.expect_impact("broken", "AttachPolicy", None).await;
    assert!(
        body["change"]["changed"]
            .as_str()
            .is_some_and(|c| c.contains(&root)),
        "{body:#}"
    );
    rig.nothing_published().await;
}

#[tokio::test]
async fn impact_rcp_on_the_bucket_owners_account_breaks_the_read_and_detaching_it_fixes() {
    let (rig, mgmt, _root, _ou) = in_organization("impact_fam_rcp").await;
    // WHEN an RCP denying object reads of A's resources is attached to A
    let policy_id = crate::layers::attach(
        &rig.m,
        &mgmt,
        PolicyType::ResourceControlPolicy,
        "DenyObjectReadsOfA",
        json!({"Version": "2012-10-17", "Statement": [{"Sid": "NoObjectReads", "Effect": "Deny",
            "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}),
        &rig.kc.a,
    )
    .await;
    let a = rig.kc.a.clone();
    let s = rig
        .deliver(&org_event(&rig, ATTACH_POLICY, &mgmt, &policy_id, &a))
        .await;
    // THEN A's stored path is reassessed and broken; the organization must act on A's RCP
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    let body = rig.expect_impact("broken", "AttachPolicy", None).await;
    assert!(
        codes(&body).iter().any(|c| c == "RCP_EXPLICIT_DENY"),
        "{body:#}"
    );
    assert_eq!(body["acting_accounts"], json!([mgmt]), "{body:#}");
    rig.nothing_published().await;

    // WHEN it is detached THEN the path is fixed
    aws_sdk_organizations::Client::new(&rig.m.account(&mgmt).await)
        .detach_policy()
        .policy_id(&policy_id)
        .target_id(&a)
        .send()
        .await
        .expect("detach");
    let s = rig
        .deliver(&org_event(&rig, DETACH_POLICY, &mgmt, &policy_id, &a))
        .await;
    assert_eq!(s.impacts[0].fixed.len(), 1, "{s:?}");
    rig.expect_impact("fixed", "DetachPolicy", None).await;
    rig.nothing_published().await;
}

#[tokio::test]
async fn impact_a_bucket_policy_naming_a_role_of_a_third_account_opens_its_path() {
    // GIVEN role `analyst` in a third account C whose own policies ask for the bucket and
    // the key, a key policy that lets any principal decrypt through S3 (it names nobody, so
    // it intends no path), and a bucket policy naming only B's reader: the analyst is denied
    let m = Moto::connect("impact_fam_opened").await;
    let kc = Kc::build(&m, Cause::None).await;
    let c_account = account_id();
    let iam_c = aws_sdk_iam::Client::new(&m.account(&c_account).await);
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    iam_c
        .create_role()
        .role_name("analyst")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    iam_c
        .put_role_policy()
        .role_name("analyst")
        .policy_name("read-reports")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{}/*", kc.bucket)},
                {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": kc.key_arn}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let reader = format!("arn:aws:iam::{}:role/reader", kc.b);
    let analyst = format!("arn:aws:iam::{c_account}:role/analyst");
    aws_sdk_kms::Client::new(&m.account(&kc.a).await)
        .put_key_policy()
        .key_id(kc.key_arn.rsplit('/').next().unwrap())
        .policy_name("default")
        .policy(
            json!({"Version": "2012-10-17", "Statement": [
                {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                 "Principal": {"AWS": format!("arn:aws:iam::{}:root", kc.a)}, "Action": "kms:*", "Resource": "*"},
                {"Sid": "AnyoneDecryptsViaS3", "Effect": "Allow", "Principal": {"AWS": "*"},
                 "Action": "kms:Decrypt", "Resource": "*",
                 "Condition": {"StringEquals": {"kms:ViaService": format!("s3.{REGION}.amazonaws.com")}}}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let c = collector(&m, Duration::from_secs(300));
    let rig = Rig::seeded_on(
        m,
        kc,
        c,
        &[reader.clone(), analyst.clone()],
        "reports/q1.csv",
    )
    .await;
    let object = "reports/q1.csv";
    let seeded = rig.stored(&analyst, object).await.expect("analyst seeded");
    assert_eq!(
        seeded.verdict,
        auditor::diagnose::Verdict::Denied,
        "{seeded:?}"
    );

    // WHEN A's bucket policy names the analyst too
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "CrossAccountRead",
        "Effect": "Allow", "Principal": {"AWS": [&reader, &analyst]}, "Action": "s3:GetObject",
        "Resource": format!("arn:aws:s3:::{}/*", rig.kc.bucket)}]});
    rig.s3_a()
        .await
        .put_bucket_policy()
        .bucket(&rig.kc.bucket)
        .policy(policy.to_string())
        .send()
        .await
        .expect("put bucket policy");
    let event = rig.sample_with(PUT_BUCKET_POLICY, |p| p["bucketPolicy"] = policy);
    let s = rig.deliver(&event).await;
    // THEN the analyst's path is opened (the bucket's side did not intend it before), and
    // the reader's is unchanged
    assert_eq!(s.impacts[0].opened.len(), 1, "{s:?}");
    assert!(
        s.impacts[0].broken.is_empty() && s.impacts[0].fixed.is_empty(),
        "{s:?}"
    );
    let body = rig
        .expect_path("opened", &analyst, object, "PutBucketPolicy", None)
        .await;
    assert_eq!(body["verdict_before"], "denied", "{body:#}");
    assert_eq!(body["verdict"], "allowed", "{body:#}");
    rig.nothing_published().await;
}

#[tokio::test]
async fn impact_restrict_public_buckets_breaks_a_read_that_relied_on_a_public_policy() {
    // GIVEN a bucket policy that lets anyone read objects (public), the reader's own policies
    // and the key policy allowing the rest: the reader's path is allowed through the public
    // statement
    let m = Moto::connect("impact_fam_restrict_public").await;
    let kc = Kc::build(&m, Cause::None).await;
    Moto::s3(&m.account(&kc.a).await)
        .put_bucket_policy()
        .bucket(&kc.bucket)
        .policy(
            json!({"Version": "2012-10-17", "Statement": [{"Sid": "PublicRead", "Effect": "Allow",
                "Principal": "*", "Action": "s3:GetObject",
                "Resource": format!("arn:aws:s3:::{}/*", kc.bucket)}]})
            .to_string(),
        )
        .send()
        .await
        .expect("put public bucket policy");
    let c = collector(&m, Duration::from_secs(300));
    let reader = format!("arn:aws:iam::{}:role/reader", kc.b);
    let rig = Rig::seeded_on(m, kc, c, std::slice::from_ref(&reader), "reports/q1.csv").await;
    let object = "reports/q1.csv";
    let seeded = rig.stored(&reader, object).await.expect("seeded");
    assert_eq!(
        seeded.verdict,
        auditor::diagnose::Verdict::Allowed,
        "{seeded:?}"
    );

    // WHEN A turns RestrictPublicBuckets on: a public policy then grants nothing to other
    // accounts (https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html)
    let s3 = rig.s3_a().await;
    s3.put_public_access_block()
        .bucket(&rig.kc.bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(false)
                .ignore_public_acls(false)
                .block_public_policy(false)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .expect("put public access block");
    let restricted = rig.sample_with(PUT_PUBLIC_ACCESS_BLOCK, |p| {
        let c = &mut p["PublicAccessBlockConfiguration"];
        c["BlockPublicAcls"] = json!(false);
        c["IgnorePublicAcls"] = json!(false);
        c["BlockPublicPolicy"] = json!(false);
    });
    let s = rig.deliver(&restricted).await;
    // THEN the reader's path breaks, and A must act
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    let body = rig
        .expect_path(
            "broken",
            &reader,
            object,
            "PutPublicAccessBlock",
            Some(&rig.kc.a),
        )
        .await;
    assert!(
        codes(&body).iter().any(|c| c == "BLOCK_PUBLIC_ACCESS"),
        "{body:#}"
    );
    rig.nothing_published().await;

    // WHEN the setting is deleted THEN the path is fixed
    s3.delete_public_access_block()
        .bucket(&rig.kc.bucket)
        .send()
        .await
        .expect("delete public access block");
    let bucket = rig.kc.bucket.clone();
    let deleted = rig.call(
        PUT_PUBLIC_ACCESS_BLOCK,
        "DeletePublicAccessBlock",
        json!({"bucketName": bucket, "publicAccessBlock": [""]}),
    );
    let s = rig.deliver(&deleted).await;
    assert_eq!(s.impacts[0].fixed.len(), 1, "{s:?}");
    rig.expect_path("fixed", &reader, object, "DeletePublicAccessBlock", None)
        .await;
    rig.nothing_published().await;
}

#[tokio::test]
async fn impact_default_encryption_on_the_aws_managed_key_breaks_new_objects_for_good() {
    // GIVEN the reader's path to new objects, allowed under the default key K
    let rig = on_new_objects("impact_fam_encryption_aws_s3").await;
    let reader = rig.reader();
    // WHEN A's default encryption becomes SSE-KMS without a key: the AWS managed key aws/s3,
    // whose policy no one can change and which only its own account can use
    // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html)
    let s3 = rig.s3_a().await;
    s3.put_bucket_encryption()
        .bucket(&rig.kc.bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::AwsKms)
                                .build()
                                .expect("default encryption"),
                        )
                        .build(),
                )
                .build()
                .expect("encryption configuration"),
        )
        .send()
        .await
        .expect("put bucket encryption");
    let event = rig.sample_with(PUT_BUCKET_ENCRYPTION, |p| {
        let rule = &mut p["ServerSideEncryptionConfiguration"]["Rule"];
        rule["ApplyServerSideEncryptionByDefault"] = json!({"SSEAlgorithm": "aws:kms"});
        rule["BucketKeyEnabled"] = json!(false);
    });
    let s = rig.deliver(&event).await;
    // THEN the path to new objects breaks, blamed on the AWS managed key: no key policy
    // edit can restore it, so no fix is claimed as verified
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    let body = rig
        .expect_path("broken", &reader, "*", "PutBucketEncryption", None)
        .await;
    assert!(
        codes(&body).iter().any(|c| c == "AWS_MANAGED_KEY"),
        "{body:#}"
    );
    assert_ne!(body["path"]["fixes_verified"], true, "{body:#}");
    // A must act (change the default back to a customer managed key).
    assert_eq!(body["acting_accounts"], json!([rig.kc.a]), "{body:#}");
    rig.nothing_published().await;
}

/// Role `analyst` in account `c`, whose identity policy asks for the scenario's bucket and
/// key (a path of C to A's bucket that the bucket policy, naming only B's reader, denies).
async fn analyst_in(m: &Moto, kc: &Kc, c: &str) -> String {
    let iam_c = aws_sdk_iam::Client::new(&m.account(c).await);
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    iam_c
        .create_role()
        .role_name("analyst")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("create role");
    iam_c
        .put_role_policy()
        .role_name("analyst")
        .policy_name("read-reports")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{}/*", kc.bucket)},
                {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": kc.key_arn}]})
            .to_string(),
        )
        .send()
        .await
        .expect("put role policy");
    format!("arn:aws:iam::{c}:role/analyst")
}

#[tokio::test]
async fn impact_scp_on_an_ou_reassesses_only_the_stored_accounts_under_it() {
    // GIVEN an organization: A under the root, B (the reader) under an OU, and a third member
    // C under the root whose role `analyst` has a stored path to A's bucket; the collector
    // reads the organization through the management account, and both paths are seeded
    let m = Moto::connect("impact_fam_scp_narrowed").await;
    let (mgmt, _root, ou, a, b) = crate::layers::organization(&m).await;
    let org = aws_sdk_organizations::Client::new(&m.account(&mgmt).await);
    let c_account = org
        .create_account()
        .account_name("analytics")
        .email(format!("{}@example.com", unique("analytics")))
        .send()
        .await
        .expect("create account")
        .create_account_status()
        .and_then(|s| s.account_id())
        .expect("account id")
        .to_owned();
    let kc = Kc::build_in(&m, Cause::None, a, b).await;
    let analyst = analyst_in(&m, &kc, &c_account).await;
    let org_reader = format!("arn:aws:iam::{mgmt}:role/S3KmsAuditorOrgReader");
    let collector = crate::layers::collector(&m, Some(OrgAccess::Role(org_reader)));
    let reader = format!("arn:aws:iam::{}:role/reader", kc.b);
    let object = "reports/q1.csv";
    let rig = Rig::seeded_on(m, kc, collector, &[reader.clone(), analyst.clone()], object).await;
    // C's stored state: its versions (S3 ETags) say whether anything rewrote it.
    let c_versions = || async {
        let mut out = Vec::new();
        for name in [
            state::snapshot_name(&c_account),
            state::index_name(&c_account),
        ] {
            let got = rig
                .store
                .get(&name)
                .await
                .expect("read")
                .expect("C's state");
            out.push(got.version);
        }
        out
    };
    let c_before = c_versions().await;
    assert!(
        rig.stored(&analyst, object).await.is_some(),
        "C's path is in A's index"
    );

    // WHEN an SCP denying object reads is attached to B's OU
    let deny = json!({"Version": "2012-10-17", "Statement": [{"Sid": "NoObjectReads",
        "Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}]});
    let policy_id = crate::layers::attach(
        &rig.m,
        &mgmt,
        PolicyType::ServiceControlPolicy,
        "DenyObjectReadsNarrowed",
        deny,
        &ou,
    )
    .await;
    let s = rig
        .deliver(&org_event(&rig, ATTACH_POLICY, &mgmt, &policy_id, &ou))
        .await;
    // THEN only B's path is re-read (one probe, not C's), it breaks, and C's state is not
    // rewritten: the OU was expanded to the accounts under it (ListChildren)
    let i = &s.impacts[0];
    assert_eq!(i.probes, 1, "{s:?}");
    assert_eq!(
        i.broken,
        [(reader.clone(), rig.kc.bucket.clone(), object.to_owned())]
    );
    assert!(!i.stored.contains(&c_account), "{s:?}");
    assert!(i.stored.contains(&rig.kc.b), "{s:?}");
    assert_eq!(c_versions().await, c_before, "C's state was rewritten");
    rig.expect_path("broken", &reader, object, "AttachPolicy", None)
        .await;
    rig.nothing_published().await;

    // WHEN the SCP attached to B's OU is updated to deny something no path needs
    let harmless = json!({"Version": "2012-10-17", "Statement": [{"Sid": "NoBucketDeletion",
        "Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}]});
    org.update_policy()
        .policy_id(&policy_id)
        .content(harmless.to_string())
        .send()
        .await
        .expect("update policy");
    let mut update = rig.event(&UPDATE_POLICY.replace("555566667777", &mgmt));
    update["detail"]["requestParameters"] =
        json!({"policyId": policy_id, "content": harmless.to_string()});
    update["detail"]["eventID"] = json!(unique("event"));
    let s = rig.deliver(&update).await;
    // THEN the policy's targets (ListTargetsForPolicy: the OU) reach B alone: B's path is
    // fixed, C's is neither re-read nor rewritten
    let i = &s.impacts[0];
    assert_eq!(i.probes, 1, "{s:?}");
    assert_eq!(
        i.fixed,
        [(reader.clone(), rig.kc.bucket.clone(), object.to_owned())]
    );
    assert!(!i.stored.contains(&c_account), "{s:?}");
    assert_eq!(c_versions().await, c_before, "C's state was rewritten");
    rig.expect_path("fixed", &reader, object, "UpdatePolicy", None)
        .await;
    rig.nothing_published().await;
}

#[tokio::test]
async fn impact_deleting_the_alias_default_encryption_names_leaves_new_objects_keyless() {
    // GIVEN default encryption naming A's key K by an alias, and the reader's path to new
    // objects seeded (allowed)
    let (rig, kms, alias, reader) = by_alias("impact_fam_alias_deleted", "fam-deleted").await;
    let alias_arn = format!("arn:aws:kms:{REGION}:{}:{alias}", rig.kc.a);

    // WHEN A deletes the alias (default encryption still names it)
    kms.delete_alias()
        .alias_name(&alias)
        .send()
        .await
        .expect("delete alias");
    let deleted = rig.call(UPDATE_ALIAS, "DeleteAlias", json!({"aliasName": alias}));
    let s = rig.deliver(&deleted).await;
    // THEN the bucket's paths are re-read, and the stored snapshot no longer resolves the
    // alias to K: KMS has no key under it, so S3 can encrypt no new object with it. The
    // snapshot records no "alias not found" fact (a lookup that finds nothing leaves no
    // trace), so the diagnosis names the key as missing evidence and the path is no longer
    // allowed but undecided: logged, not published.
    assert!(s.impacts[0].probes >= 1, "{s:?}");
    assert!(
        s.impacts[0].broken.is_empty() && s.impacts[0].fixed.is_empty(),
        "{s:?}"
    );
    let after = rig.stored(&reader, "*").await.expect("path kept");
    assert_eq!(
        after.verdict,
        auditor::diagnose::Verdict::Unknown,
        "{after:?}"
    );
    let stored = rig
        .store
        .get(&state::snapshot_name(&rig.kc.a))
        .await
        .expect("read")
        .expect("A's snapshot");
    let snap =
        auditor::snapshot::Snapshot::from_value(&serde_json::from_str(&stored.body).expect("json"))
            .expect("snapshot");
    assert!(snap.key(&alias_arn, REGION, &rig.kc.a).is_none());
    assert!(
        snap.accounts[&rig.kc.a]
            .kms
            .get(&rig.kc.key_arn)
            .is_some_and(|k| !k.aliases.contains(&alias)),
        "K is kept without the alias"
    );
    rig.nothing_published().await;
}

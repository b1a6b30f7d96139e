//! Policy-change impact against the test server (issue 10): per change family, the change
//! is applied on the server, the matching change event is delivered to the handler, and the
//! message read back through an SQS queue subscribed to the topic names the broken or fixed
//! path, the change and the account that must act. The state lives in a bucket of the
//! auditor's account on the same server.
//!
//! The first change seen for an account builds its state and publishes nothing (there is
//! nothing to compare with), so every test first seeds the reader's path to the scenario's
//! object (`handler::impact::seed`); `impact_first_sight_builds_state_and_publishes_nothing`
//! shows a change on an account without state.
//!
//! What the server cannot show: S3 answers two conditional writes racing on one key with
//! `409 ConditionalRequestConflict` on AWS; moto checks `If-Match` / `If-None-Match` and
//! answers `412`, which the race test provokes deterministically (both writers read before
//! either writes). moto does not enforce SCPs (`layers.rs`): the SCP test shows the
//! auditor's verdict from the policies it reads, not a denial by the server.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use auditor::diagnose::Verdict;
use auditor::impact::scope::Probe;
use auditor::impact::state::{PathIndex, PathVerdict};
use auditor::snapshot::Snapshot;
use auditor_live::aws::{AwsAccounts, OrgAccess, S3StateStore, SnsPublisher};
use auditor_live::collect::Collector;
use auditor_live::handler::impact::{handle_with_state, seed, ImpactSummary};
use auditor_live::ports::{Read, StateStore, Stored, WriteIf, Written};
use auditor_live::state::{self, Update};
use aws_sdk_organizations::types::PolicyType;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use serde_json::{json, Value};

use crate::kc::{collector, Cause, Kc};
use crate::support::{unique, Inbox, Moto};

const PUT_BUCKET_POLICY: &str =
    include_str!("../../../../events/change-putbucketpolicy.eventbridge.json");
const PUT_KEY_POLICY: &str =
    include_str!("../../../../events/change-putkeypolicy.eventbridge.json");
const PUT_ROLE_POLICY: &str =
    include_str!("../../../../events/change-putrolepolicy.eventbridge.json");
const DETACH_ROLE_POLICY: &str =
    include_str!("../../../../events/change-detachrolepolicy.eventbridge.json");
const CREATE_GRANT: &str = include_str!("../../../../events/change-creategrant.eventbridge.json");
const REVOKE_GRANT: &str = include_str!("../../../../events/change-revokegrant.eventbridge.json");
const DISABLE_KEY: &str = include_str!("../../../../events/change-disablekey.eventbridge.json");
const ATTACH_POLICY: &str =
    include_str!("../../../../events/change-attachpolicy-scp.eventbridge.json");
const DETACH_POLICY: &str =
    include_str!("../../../../events/change-detachpolicy-scp.eventbridge.json");

/// A state bucket in the auditor's account.
pub(crate) async fn state_bucket(m: &Moto) -> S3StateStore {
    let name = unique("s3ka-state");
    Moto::s3(&m.base)
        .create_bucket()
        .bucket(&name)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::UsWest2)
                .build(),
        )
        .send()
        .await
        .expect("create state bucket");
    S3StateStore::new(&m.base, &name, true)
}

/// The scenario, the handler's parts, and a queue on the topic.
pub(crate) struct Rig {
    pub(crate) m: Moto,
    pub(crate) kc: Kc,
    pub(crate) collector: Collector<AwsAccounts>,
    pub(crate) publisher: SnsPublisher,
    pub(crate) inbox: Inbox,
    pub(crate) store: S3StateStore,
}

impl Rig {
    /// The scenario with `cause` broken, its state seeded by the bucket's own policy event.
    pub(crate) async fn seeded(test: &str, cause: Cause) -> Rig {
        let m = Moto::connect(test).await;
        let kc = Kc::build(&m, cause).await;
        let collector = collector(&m, Duration::from_secs(300));
        Rig::seeded_with(m, kc, collector).await
    }

    /// [`Rig::seeded`] over a built scenario and collector.
    pub(crate) async fn seeded_with(m: Moto, kc: Kc, collector: Collector<AwsAccounts>) -> Rig {
        let inbox = Inbox::new(&m).await;
        let publisher = SnsPublisher::new(&m.base, &inbox.topic_arn);
        let store = state_bucket(&m).await;
        let rig = Rig {
            m,
            kc,
            collector,
            publisher,
            inbox,
            store,
        };
        // The reader's path to the scenario's object, as a deployment seeds it.
        let probe = Probe {
            principal: rig.reader(),
            object_arn: format!("arn:aws:s3:::{}/reports/q1.csv", rig.kc.bucket),
            bucket_owner: Some(rig.kc.a.clone()),
        };
        let written = seed(&rig.collector, &rig.store, &BTreeSet::from([probe]))
            .await
            .expect("seeded");
        assert_eq!(written.len(), 2, "both accounts: {written:?}");
        rig
    }

    pub(crate) fn reader(&self) -> String {
        format!("arn:aws:iam::{}:role/reader", self.kc.b)
    }

    pub(crate) fn key_id(&self) -> &str {
        self.kc.key_arn.rsplit('/').next().expect("key id")
    }

    pub(crate) fn bucket_policy(&self, role: &str) -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Sid": "CrossAccountRead",
            "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{}:role/{role}", self.kc.b)},
            "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{}/*", self.kc.bucket)}]})
    }

    /// A sample change event adapted to the scenario.
    pub(crate) fn event(&self, sample: &str) -> Value {
        let text = sample
            .replace("111122223333", &self.kc.a)
            .replace("444455556666", &self.kc.b)
            .replace("doc-example-bucket", &self.kc.bucket)
            .replace("reader-read-reports", "decrypt-reports")
            .replace("1234abcd-12ab-34cd-56ef-1234567890ab", self.key_id());
        serde_json::from_str(&text).expect("sample change event")
    }

    pub(crate) async fn deliver(&self, event: &Value) -> ImpactSummary {
        handle_with_state(&self.collector, &self.publisher, &self.store, event)
            .await
            .expect("handled")
    }

    /// The next message: its body and attributes.
    pub(crate) async fn message(&self) -> (Value, Value, String) {
        let envelope = self.inbox.next().await;
        let body: Value =
            serde_json::from_str(envelope["Message"].as_str().expect("message")).expect("body");
        let subject = envelope["Subject"].as_str().unwrap_or_default().to_owned();
        (body, envelope["MessageAttributes"].clone(), subject)
    }

    /// Asserts the next message is an impact of `kind` on the reader's path, caused by
    /// `event_name`, naming `must_act`; returns its body.
    pub(crate) async fn expect_impact(
        &self,
        kind: &str,
        event_name: &str,
        must_act: Option<&str>,
    ) -> Value {
        let (body, attributes, subject) = self.message().await;
        assert_eq!(body["kind"], "impact", "{body:#}");
        assert_eq!(body["impact"], kind, "{body:#}");
        assert_eq!(body["principal"], self.reader(), "{body:#}");
        assert_eq!(body["bucket"], self.kc.bucket, "{body:#}");
        assert_eq!(body["change"]["event_name"], event_name, "{body:#}");
        assert!(body["change"]["event_id"].is_string(), "{body:#}");
        assert!(body["change"]["actor"].is_string(), "{body:#}");
        assert!(body["change"]["event_time"].is_string(), "{body:#}");
        assert_eq!(attributes["kind"]["Value"], "impact", "{attributes:#}");
        assert_eq!(attributes["impact"]["Value"], kind, "{attributes:#}");
        assert_eq!(attributes["principal_account"]["Value"], self.kc.b);
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
        // A subject over SNS's 100 characters ends cut, with the bucket's name begun.
        let cut = subject
            .strip_suffix("...")
            .and_then(|s| s.rsplit(' ').next())
            .filter(|c| c.len() >= 8);
        assert!(
            subject.contains(&self.kc.bucket) || cut.is_some_and(|c| self.kc.bucket.starts_with(c)),
            "{subject}"
        );
        if let Some(account) = must_act {
            assert!(
                body["acting_accounts"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|a| a == account)),
                "{account} must act: {body:#}"
            );
            assert!(subject.contains(&format!("fix: {account}")), "{subject}");
            assert_eq!(body["path"]["fixes_verified"], true, "{body:#}");
        }
        body
    }

    pub(crate) async fn nothing_published(&self) {
        let got = self.inbox.try_next(2).await;
        assert!(got.is_none(), "nothing should be published: {got:?}");
    }
}

#[tokio::test]
async fn impact_bucket_policy_change_breaks_the_reader_and_an_unrelated_change_says_nothing() {
    let rig = Rig::seeded("impact_bucket_policy", Cause::None).await;
    // The bucket owner points the grant at another role of B.
    let writer_policy = rig.bucket_policy("writer");
    Moto::s3(&rig.m.account(&rig.kc.a).await)
        .put_bucket_policy()
        .bucket(&rig.kc.bucket)
        .policy(writer_policy.to_string())
        .send()
        .await
        .expect("put bucket policy");
    let mut event = rig.event(PUT_BUCKET_POLICY);
    event["detail"]["requestParameters"]["bucketPolicy"] = writer_policy;
    let s = rig.deliver(&event).await;
    assert!(!s.impacts[0].first_sight, "{s:?}");
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    let body = rig
        .expect_impact("broken", "PutBucketPolicy", Some(&rig.kc.a))
        .await;
    assert!(
        body["blocking_codes"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c == "BUCKET_POLICY_NO_ALLOW")),
        "{body:#}"
    );
    // The writer has no identity policy for the bucket: the new grant opens nothing.
    rig.nothing_published().await;

    // The same event again: the stored verdict is already `denied`.
    let s = rig.deliver(&event).await;
    assert!(s.impacts[0].published.is_empty(), "{s:?}");
    // An unrelated change: another role of B gets an inline policy.
    let iam = aws_sdk_iam::Client::new(&rig.m.account(&rig.kc.b).await);
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    iam.create_role()
        .role_name("auditor-unrelated")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("create role");
    let mut unrelated = rig.event(PUT_ROLE_POLICY);
    unrelated["detail"]["requestParameters"]["roleName"] = json!("auditor-unrelated");
    let s = rig.deliver(&unrelated).await;
    assert_eq!(s.impacts.len(), 1, "{s:?}");
    assert!(!s.impacts[0].first_sight, "B's state was built with A's");
    assert_eq!(
        s.impacts[0].probes, 0,
        "nothing of the role is in scope: {s:?}"
    );
    assert!(s.impacts[0].published.is_empty(), "{s:?}");
    rig.nothing_published().await;
}

#[tokio::test]
async fn impact_bucket_policy_naming_the_reader_fixes_what_the_key_policy_intended() {
    // The bucket policy names B's writer; B's reader asks for the bucket in its own policy
    // and the key policy names it. Naming it in the bucket policy is a fix, not an opening:
    // the bucket's side (its key policy) intended the path before (docs/impact-format.md).
    let rig = Rig::seeded("impact_bucket_fix", Cause::BucketPolicy).await;
    let reader_policy = rig.bucket_policy("reader");
    Moto::s3(&rig.m.account(&rig.kc.a).await)
        .put_bucket_policy()
        .bucket(&rig.kc.bucket)
        .policy(reader_policy.to_string())
        .send()
        .await
        .expect("put bucket policy");
    let mut event = rig.event(PUT_BUCKET_POLICY);
    event["detail"]["requestParameters"]["bucketPolicy"] = reader_policy;
    let s = rig.deliver(&event).await;
    assert_eq!(s.impacts[0].fixed.len(), 1, "{s:?}");
    assert!(s.impacts[0].opened.is_empty(), "{s:?}");
    let body = rig.expect_impact("fixed", "PutBucketPolicy", None).await;
    assert_eq!(body["verdict_before"], "denied");
    assert_eq!(body["verdict"], "allowed");
}

#[tokio::test]
async fn impact_key_policy_change_then_the_denial_it_causes_is_diagnosed_from_the_new_state() {
    let rig = Rig::seeded("impact_key_policy", Cause::None).await;
    // The key administrator drops the reader's statement.
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
         "Principal": {"AWS": format!("arn:aws:iam::{}:root", rig.kc.a)}, "Action": "kms:*", "Resource": "*"}]});
    aws_sdk_kms::Client::new(&rig.m.account(&rig.kc.a).await)
        .put_key_policy()
        .key_id(rig.key_id())
        .policy_name("default")
        .policy(policy.to_string())
        .send()
        .await
        .expect("put key policy");
    let mut event = rig.event(PUT_KEY_POLICY);
    event["detail"]["requestParameters"]["policy"] = json!(policy.to_string());
    let s = rig.deliver(&event).await;
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    let body = rig
        .expect_impact("broken", "PutKeyPolicy", Some(&rig.kc.a))
        .await;
    assert!(
        body["blocking_codes"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c == "KEY_POLICY_NO_ALLOW")),
        "{body:#}"
    );

    // The reader's next GetObject is denied: its diagnosis reads the new key policy.
    let s = rig.deliver(&rig.kc.event()).await;
    assert_eq!(s.summary.published.len(), 1, "{s:?}");
    let codes = &s.summary.published[0].finding_codes;
    assert!(
        codes.iter().any(|c| c == "KEY_POLICY_NO_ALLOW"),
        "{codes:?}"
    );
    let (body, attributes, _) = rig.message().await;
    assert_eq!(body["kind"], "diagnosis");
    assert_eq!(attributes["kind"]["Value"], "diagnosis");
}

#[tokio::test]
async fn impact_grant_fixes_then_its_revocation_breaks() {
    // The key policy does not name the reader: the path is denied until a grant.
    let rig = Rig::seeded("impact_grant", Cause::KeyPolicy).await;
    let kms = aws_sdk_kms::Client::new(&rig.m.account(&rig.kc.a).await);
    let grant_id = kms
        .create_grant()
        .key_id(rig.key_id())
        .grantee_principal(rig.reader())
        .operations(aws_sdk_kms::types::GrantOperation::Decrypt)
        .send()
        .await
        .expect("create grant")
        .grant_id()
        .expect("grant id")
        .to_owned();
    let mut created = rig.event(CREATE_GRANT);
    created["detail"]["responseElements"] = json!({"grantId": grant_id});
    let s = rig.deliver(&created).await;
    assert_eq!(s.impacts[0].fixed.len(), 1, "{s:?}");
    let body = rig.expect_impact("fixed", "CreateGrant", None).await;
    assert_eq!(body["verdict"], "allowed");
    assert_eq!(body["verdict_before"], "denied");

    kms.revoke_grant()
        .key_id(rig.key_id())
        .grant_id(&grant_id)
        .send()
        .await
        .expect("revoke grant");
    let mut revoked = rig.event(REVOKE_GRANT);
    revoked["detail"]["requestParameters"]["grantId"] = json!(grant_id);
    let s = rig.deliver(&revoked).await;
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    rig.expect_impact("broken", "RevokeGrant", Some(&rig.kc.a))
        .await;
}

#[tokio::test]
async fn impact_iam_detach_breaks_and_put_role_policy_fixes() {
    let rig = Rig::seeded("impact_iam", Cause::None).await;
    let iam = aws_sdk_iam::Client::new(&rig.m.account(&rig.kc.b).await);
    iam.detach_role_policy()
        .role_name("reader")
        .policy_arn(format!("arn:aws:iam::{}:policy/decrypt-reports", rig.kc.b))
        .send()
        .await
        .expect("detach");
    let s = rig.deliver(&rig.event(DETACH_ROLE_POLICY)).await;
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    let body = rig
        .expect_impact("broken", "DetachRolePolicy", Some(&rig.kc.b))
        .await;
    assert!(
        body["blocking_codes"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c == "IDENTITY_POLICY_NO_ALLOW")),
        "{body:#}"
    );

    // B's administrator puts the decrypt permission back as an inline policy.
    let inline = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "kms:Decrypt", "Resource": rig.kc.key_arn}]});
    iam.put_role_policy()
        .role_name("reader")
        .policy_name("decrypt-inline")
        .policy_document(inline.to_string())
        .send()
        .await
        .expect("put role policy");
    let s = rig.deliver(&rig.event(PUT_ROLE_POLICY)).await;
    assert_eq!(s.impacts[0].fixed.len(), 1, "{s:?}");
    rig.expect_impact("fixed", "PutRolePolicy", None).await;
}

#[tokio::test]
async fn impact_disable_key_breaks_and_a_failed_change_publishes_nothing() {
    let rig = Rig::seeded("impact_disable_key", Cause::None).await;
    // A DisableKey that failed: nothing changed, nothing is assessed.
    let mut failed = rig.event(DISABLE_KEY);
    failed["detail"]["errorCode"] = json!("AccessDeniedException");
    let s = rig.deliver(&failed).await;
    assert!(s.impacts.is_empty(), "{s:?}");
    assert_eq!(s.summary.skipped.len(), 1, "{s:?}");
    rig.nothing_published().await;

    aws_sdk_kms::Client::new(&rig.m.account(&rig.kc.a).await)
        .disable_key()
        .key_id(rig.key_id())
        .send()
        .await
        .expect("disable key");
    let s = rig.deliver(&rig.event(DISABLE_KEY)).await;
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    let body = rig
        .expect_impact("broken", "DisableKey", Some(&rig.kc.a))
        .await;
    assert!(
        body["blocking_codes"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c == "KEY_NOT_USABLE")),
        "{body:#}"
    );
}

#[tokio::test]
async fn impact_first_sight_builds_state_and_publishes_nothing() {
    let m = Moto::connect("impact_first_sight").await;
    let kc = Kc::build(&m, Cause::None).await;
    let rig = Rig {
        collector: collector(&m, Duration::from_secs(300)),
        inbox: Inbox::new(&m).await,
        store: state_bucket(&m).await,
        publisher: SnsPublisher::new(&m.base, "arn:aws:sns:us-west-2:123456789012:unused"),
        m,
        kc,
    };
    let rig = Rig {
        publisher: SnsPublisher::new(&rig.m.base, &rig.inbox.topic_arn),
        ..rig
    };
    // The bucket policy as it stands: the account has no state yet.
    let mut event = rig.event(PUT_BUCKET_POLICY);
    event["detail"]["requestParameters"]["bucketPolicy"] = rig.bucket_policy("reader");
    let s = rig.deliver(&event).await;
    assert_eq!(s.impacts.len(), 1, "{s:?}");
    assert!(s.impacts[0].first_sight, "{s:?}");
    assert!(s.impacts[0].published.is_empty(), "{s:?}");
    rig.nothing_published().await;
    // The state now holds the bucket policy's path (read through the bucket as its owner,
    // then the reader's side).
    let stored = rig
        .store
        .get(&state::index_name(&rig.kc.a))
        .await
        .expect("read")
        .expect("index built");
    let index = PathIndex::parse(&stored.body, "index").expect("parses");
    assert!(
        index.paths.iter().any(|p| p.principal == rig.reader()),
        "{index:?}"
    );
    // A second delivery is no longer first sight, and nothing changed.
    let s = rig.deliver(&event).await;
    assert!(!s.impacts[0].first_sight, "{s:?}");
    assert!(s.impacts[0].published.is_empty(), "{s:?}");
}

#[tokio::test]
async fn impact_state_is_what_the_offline_cli_reads() {
    let rig = Rig::seeded("impact_state_offline", Cause::None).await;
    let a = rig.kc.a.clone();
    let snap = rig
        .store
        .get(&state::snapshot_name(&a))
        .await
        .expect("read")
        .expect("snapshot stored");
    let parsed = Snapshot::from_text(&snap.body).expect("the stored snapshot parses");
    assert!(parsed.bucket(&rig.kc.bucket).is_some());
    let index = rig
        .store
        .get(&state::index_name(&a))
        .await
        .expect("read")
        .expect("index stored");
    let index = PathIndex::parse(&index.body, "index").expect("index parses");
    let path = index
        .paths
        .iter()
        .find(|p| p.principal == rig.reader())
        .expect("the reader's path is indexed");
    assert_eq!(path.verdict, Verdict::Allowed, "{path:?}");
    // The stored verdict is the offline diagnosis of the stored snapshot.
    let req = auditor::event::adhoc_request(&path.principal, "s3:GetObject", &path.probe)
        .expect("request");
    assert_eq!(
        auditor::diagnose::diagnose(&parsed, &req).verdict,
        path.verdict
    );
    // B's state holds the same path (it touches B as the principal's account).
    let b_index = rig
        .store
        .get(&state::index_name(&rig.kc.b))
        .await
        .expect("read")
        .expect("B's index stored");
    let b_index = PathIndex::parse(&b_index.body, "index").expect("parses");
    assert!(b_index.paths.iter().any(|p| p.principal == rig.reader()));
}

/// A store whose first `get`s wait for one another: both writers read the same version
/// before either writes, so one of them must lose the conditional write.
struct Lockstep {
    inner: S3StateStore,
    barrier: Arc<tokio::sync::Barrier>,
    waited: std::sync::atomic::AtomicU32,
}

impl StateStore for Lockstep {
    async fn get(&self, name: &str) -> Read<Option<Stored>> {
        let got = self.inner.get(name).await;
        // The first two reads of the index meet here.
        if name.starts_with("paths/")
            && self
                .waited
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                < 2
        {
            self.barrier.wait().await;
        }
        got
    }

    async fn put(&self, name: &str, body: &str, condition: &WriteIf) -> Read<Written> {
        self.inner.put(name, body, condition).await
    }
}

fn verdict(principal: &str, bucket: &str, account: &str) -> PathVerdict {
    PathVerdict {
        principal: principal.into(),
        bucket: bucket.into(),
        object: "*".into(),
        action: "s3:GetObject".into(),
        probe: format!("arn:aws:s3:::{bucket}/example"),
        verdict: Verdict::Allowed,
        blocking: Vec::new(),
        must_act: Vec::new(),
        principal_account: Some("444455556666".into()),
        resource_account: Some(account.into()),
        advisories: Vec::new(),
    }
}

#[tokio::test]
async fn impact_state_race_two_concurrent_updates_of_one_account_both_survive() {
    let m = Moto::connect("impact_race").await;
    let store = Lockstep {
        inner: state_bucket(&m).await,
        barrier: Arc::new(tokio::sync::Barrier::new(2)),
        waited: std::sync::atomic::AtomicU32::new(0),
    };
    let account = "111122223333";
    // The index exists (a later change, not the first sight).
    let seeded = state::update(
        &store.inner,
        account,
        Update {
            fresh: &Snapshot::default(),
            forget: (None, None),
            verdicts: &[],
            gone: &Default::default(),
            event_id: Some("seed"),
        },
    )
    .await
    .expect("seed");
    assert_eq!(seeded, 0);
    let one = [verdict(
        "arn:aws:iam::444455556666:role/one",
        "bucket-one",
        account,
    )];
    let two = [verdict(
        "arn:aws:iam::444455556666:role/two",
        "bucket-two",
        account,
    )];
    let empty = Snapshot::default();
    let gone = Default::default();
    let update = |verdicts, id| Update {
        fresh: &empty,
        forget: (None, None),
        verdicts,
        gone: &gone,
        event_id: Some(id),
    };
    let (a, b) = tokio::join!(
        state::update(&store, account, update(&one, "change-one")),
        state::update(&store, account, update(&two, "change-two")),
    );
    let (a, b) = (a.expect("first update"), b.expect("second update"));
    assert!(
        a + b >= 1,
        "both read the same version, so one write must have lost and retried"
    );
    let stored = store
        .inner
        .get(&state::index_name(account))
        .await
        .expect("read")
        .expect("stored");
    let index = PathIndex::parse(&stored.body, "index").expect("parses");
    let principals: Vec<&str> = index.paths.iter().map(|p| p.principal.as_str()).collect();
    assert!(
        principals.contains(&"arn:aws:iam::444455556666:role/one")
            && principals.contains(&"arn:aws:iam::444455556666:role/two"),
        "both updates survive: {principals:?}"
    );
    // The server does refuse a stale write (what the retry rests on).
    let stale = store
        .inner
        .put(
            &state::index_name(account),
            "{}",
            &WriteIf::Version("\"0000\"".into()),
        )
        .await
        .expect("answered");
    assert_eq!(stale, Written::Conflict);
    let exists = store
        .inner
        .put(&state::index_name(account), "{}", &WriteIf::Absent)
        .await
        .expect("answered");
    assert_eq!(exists, Written::Conflict);
}

#[tokio::test]
async fn impact_scp_on_the_readers_account_breaks_the_path_and_detaching_it_fixes_it() {
    // GIVEN the scenario's accounts in an organization, the collector reading its policies
    // through the management account, and the reader's path seeded (allowed)
    let m = Moto::connect("impact_scp").await;
    let (mgmt, _root, _ou, a, b) = crate::layers::organization(&m).await;
    let kc = Kc::build_in(&m, Cause::None, a, b).await;
    let org_reader = format!("arn:aws:iam::{mgmt}:role/S3KmsAuditorOrgReader");
    let c = crate::layers::collector(&m, Some(OrgAccess::Role(org_reader)));
    let rig = Rig::seeded_with(m, kc, c).await;
    // WHEN the management account attaches an SCP denying object reads to B, and the
    // AttachPolicy record (made in the management account) reaches the handler
    let policy_id = crate::layers::attach(
        &rig.m,
        &mgmt,
        PolicyType::ServiceControlPolicy,
        "DenyObjectReads",
        json!({"Version": "2012-10-17", "Statement": [{"Sid": "NoObjectReads", "Effect": "Deny",
            "Action": "s3:GetObject", "Resource": "*"}]}),
        &rig.kc.b,
    )
    .await;
    let org_event = |sample: &str| {
        let text = sample
            .replace("555566667777", &mgmt)
            .replace("p-7h3k9x2m", &policy_id);
        rig.event(&text)
    };
    let s = rig.deliver(&org_event(ATTACH_POLICY)).await;
    // THEN B's stored path is reassessed, not the management account's (it has none)
    assert_eq!(s.impacts.len(), 1, "{s:?}");
    assert_eq!(s.impacts[0].account.as_deref(), Some(mgmt.as_str()));
    assert!(!s.impacts[0].first_sight, "{s:?}");
    assert_eq!(s.impacts[0].broken.len(), 1, "{s:?}");
    assert!(!s.impacts[0].stored.contains(&mgmt), "{s:?}");
    // AND one message names the broken path, the change, the SCP and the account to act
    let body = rig.expect_impact("broken", "AttachPolicy", None).await;
    assert!(
        body["blocking_codes"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c == "SCP_EXPLICIT_DENY")),
        "{body:#}"
    );
    let acting: Vec<&str> = body["acting_accounts"]
        .as_array()
        .expect("acting accounts")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    eprintln!(
        "SCP broken path: acting accounts {acting:?} (management {mgmt}), fixes verified {}",
        body["path"]["fixes_verified"]
    );
    // The fix is the organization's to make: detach or amend the SCP in the management
    // account, named by the id DescribeOrganization gives (`MasterAccountId`).
    assert_eq!(acting, [mgmt.as_str()], "{body:#}");
    assert_eq!(body["path"]["fixes_verified"], true, "{body:#}");
    let subject = body["subject"].as_str().unwrap_or_default();
    assert!(subject.contains(&format!("fix: {mgmt} | ")), "{subject}");
    assert!(
        body["text"].as_array().is_some_and(|l| l.iter().any(|t| t
            .as_str()
            .is_some_and(|t| t.contains(&format!(
                "the organization's management account {mgmt} must act"
            ))))),
        "{body:#}"
    );
    rig.nothing_published().await;

    // WHEN the SCP is detached and the DetachPolicy record arrives
    aws_sdk_organizations::Client::new(&rig.m.account(&mgmt).await)
        .detach_policy()
        .policy_id(&policy_id)
        .target_id(&rig.kc.b)
        .send()
        .await
        .expect("detach policy");
    let s = rig.deliver(&org_event(DETACH_POLICY)).await;
    // THEN the path is fixed
    assert_eq!(s.impacts[0].fixed.len(), 1, "{s:?}");
    rig.expect_impact("fixed", "DetachPolicy", None).await;
    rig.nothing_published().await;
}

#[tokio::test]
async fn impact_one_key_policy_edit_breaking_three_readers_is_one_message_naming_them() {
    // GIVEN three reader roles of B (the scenario's `reader`, `reader2`, `reader3`), each
    // with its own policies for the bucket and key, named by the bucket policy and the key
    // policy, their paths seeded (allowed)
    let m = Moto::connect("impact_grouped").await;
    let kc = Kc::build(&m, Cause::None).await;
    let collector = collector(&m, Duration::from_secs(300));
    let iam = aws_sdk_iam::Client::new(&m.account(&kc.b).await);
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let readers: Vec<String> = ["reader", "reader2", "reader3"]
        .iter()
        .map(|r| format!("arn:aws:iam::{}:role/{r}", kc.b))
        .collect();
    for role in ["reader2", "reader3"] {
        iam.create_role()
            .role_name(role)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .expect("create role");
        iam.put_role_policy()
            .role_name(role)
            .policy_name("read-reports")
            .policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{}/*", kc.bucket)}]})
                .to_string(),
            )
            .send()
            .await
            .expect("put role policy");
        iam.attach_role_policy()
            .role_name(role)
            .policy_arn(format!("arn:aws:iam::{}:policy/decrypt-reports", kc.b))
            .send()
            .await
            .expect("attach policy");
    }
    let cfg_a = m.account(&kc.a).await;
    let bucket_policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "CrossAccountRead",
        "Effect": "Allow", "Principal": {"AWS": readers}, "Action": "s3:GetObject",
        "Resource": format!("arn:aws:s3:::{}/*", kc.bucket)}]});
    Moto::s3(&cfg_a)
        .put_bucket_policy()
        .bucket(&kc.bucket)
        .policy(bucket_policy.to_string())
        .send()
        .await
        .expect("put bucket policy");
    let admin = json!({"Sid": "Enable IAM User Permissions", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{}:root", kc.a)}, "Action": "kms:*", "Resource": "*"});
    let key_id = kc.key_arn.rsplit('/').next().expect("key id").to_owned();
    let kms = aws_sdk_kms::Client::new(&cfg_a);
    kms.put_key_policy()
        .key_id(&key_id)
        .policy_name("default")
        .policy(
            json!({"Version": "2012-10-17", "Statement": [admin.clone(),
                {"Sid": "AllowReadersDecryptViaS3", "Effect": "Allow",
                 "Principal": {"AWS": readers}, "Action": "kms:Decrypt", "Resource": "*",
                 "Condition": {"StringEquals": {"kms:ViaService": "s3.us-west-2.amazonaws.com"}}}]})
            .to_string(),
        )
        .send()
        .await
        .expect("put key policy");
    let rig = Rig::seeded_with(m, kc, collector).await;
    let probes: BTreeSet<Probe> = readers
        .iter()
        .map(|r| Probe {
            principal: r.clone(),
            object_arn: format!("arn:aws:s3:::{}/reports/q1.csv", rig.kc.bucket),
            bucket_owner: Some(rig.kc.a.clone()),
        })
        .collect();
    seed(&rig.collector, &rig.store, &probes)
        .await
        .expect("seeded");
    // WHEN one key-policy edit removes B
    let policy = json!({"Version": "2012-10-17", "Statement": [admin]});
    kms.put_key_policy()
        .key_id(&key_id)
        .policy_name("default")
        .policy(policy.to_string())
        .send()
        .await
        .expect("put key policy");
    let mut event = rig.event(PUT_KEY_POLICY);
    event["detail"]["requestParameters"]["policy"] = json!(policy.to_string());
    let s = rig.deliver(&event).await;
    // THEN the three paths break, and exactly one message says so, naming them
    assert_eq!(s.impacts[0].broken.len(), 3, "{s:?}");
    assert_eq!(s.impacts[0].published.len(), 1, "{s:?}");
    let (body, attributes, subject) = rig.message().await;
    eprintln!("grouped subject: {subject}");
    assert_eq!(
        subject,
        format!(
            "BROKEN KEY_POLICY_NO_ALLOW | fix: {} | {} (3 paths) | PutKeyPolicy",
            rig.kc.a, rig.kc.bucket
        )
    );
    assert_eq!(body["kind"], "impact", "{body:#}");
    assert_eq!(body["impact"], "broken", "{body:#}");
    assert_eq!(body["path_count"], 3, "{body:#}");
    assert_eq!(body["change"]["event_name"], "PutKeyPolicy", "{body:#}");
    assert_eq!(body["acting_accounts"], json!([rig.kc.a]), "{body:#}");
    let mut named: Vec<String> = body["principals"]
        .as_array()
        .expect("principals")
        .iter()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    named.sort();
    assert_eq!(named, readers, "{body:#}");
    assert_eq!(attributes["kind"]["Value"], "impact", "{attributes:#}");
    assert_eq!(attributes["path_count"]["Value"], "3", "{attributes:#}");
    assert_eq!(attributes["principal_account"]["Value"], rig.kc.b);
    assert_eq!(attributes["resource_account"]["Value"], rig.kc.a);
    // One fix for the three: a key-policy statement naming every reader, verified on each.
    assert_eq!(body["group"]["fix_combined"], true, "{body:#}");
    assert_eq!(body["group"]["fix_restores"], 3, "{body:#}");
    let fix = &body["group"]["findings"][0]["fix"];
    assert!(
        readers
            .iter()
            .all(|r| fix["cli"].as_str().is_some_and(|c| c.contains(r.as_str()))),
        "{fix:#}"
    );
    rig.nothing_published().await;
}

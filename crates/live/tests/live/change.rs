//! Change events against a warm container: a change the handler is told about drops the
//! cached state it touches, so the next diagnosis of the same denial reads the new state;
//! without the change event the warm cache keeps answering from the old state (the cache
//! lives for its time-to-live: README, "Deploy"). `handle` publishes nothing for a change;
//! the impact messages come from `handler::impact::handle_with_state` (tests in `impact.rs`).

use std::time::Duration;

use auditor_live::aws::{AwsAccounts, SnsPublisher};
use auditor_live::collect::Collector;
use auditor_live::handler::{handle, Summary};
use serde_json::{json, Value};

use crate::kc::{collector, Cause, Kc};
use crate::support::{Inbox, Moto, REGION};

const PUT_KEY_POLICY: &str =
    include_str!("../../../../events/change-putkeypolicy.eventbridge.json");
const PUT_ROLE_POLICY: &str =
    include_str!("../../../../events/change-putrolepolicy.eventbridge.json");

/// A sample change event adapted to the scenario's accounts, bucket and key.
fn change_event(sample: &str, kc: &Kc) -> Value {
    let key_id = kc.key_arn.rsplit('/').next().expect("key id");
    let text = sample
        .replace("111122223333", &kc.a)
        .replace("444455556666", &kc.b)
        .replace("doc-example-bucket", &kc.bucket)
        .replace("1234abcd-12ab-34cd-56ef-1234567890ab", key_id);
    serde_json::from_str(&text).expect("sample change event")
}

/// Handles `event` and returns the summary.
async fn deliver(
    collector: &Collector<AwsAccounts>,
    publisher: &SnsPublisher,
    event: &Value,
) -> Summary {
    handle(collector, publisher, event).await.expect("handled")
}

/// The one published diagnosis of a denial: its verdict and finding codes, and its cache hits.
fn diagnosis(summary: &Summary) -> (String, Vec<String>, u32) {
    assert_eq!(summary.published.len(), 1, "{summary:?}");
    let p = &summary.published[0];
    (
        p.verdict.as_str().unwrap_or_default().to_owned(),
        p.finding_codes.clone(),
        p.cache_hits,
    )
}

/// A change delivered publishes nothing and reports what it dropped.
fn acknowledged(summary: &Summary) -> Vec<String> {
    assert!(summary.published.is_empty(), "{summary:?}");
    assert!(summary.error_reported.is_none(), "{summary:?}");
    assert!(summary.ignored.is_none(), "{summary:?}");
    assert_eq!(summary.changes.len(), 1, "{summary:?}");
    summary.changes[0].invalidated.clone()
}

#[tokio::test]
async fn a_key_policy_change_reaches_the_next_diagnosis_in_a_warm_container() {
    let m = Moto::connect("change_key_policy").await;
    let kc = Kc::build(&m, Cause::KeyPolicy).await;
    let denial = kc.event();
    let collector = collector(&m, Duration::from_secs(300));
    let inbox = Inbox::new(&m).await;
    let publisher = SnsPublisher::new(&m.base, &inbox.topic_arn);

    // Cold: the key policy does not name the reader.
    let (verdict, codes, _) = diagnosis(&deliver(&collector, &publisher, &denial).await);
    assert_eq!(verdict, "denied");
    assert!(
        codes.contains(&"KEY_POLICY_NO_ALLOW".to_owned()),
        "{codes:?}"
    );
    inbox.next().await;

    // The key administrator adds the reader (as in the sample change event).
    let reader = format!("arn:aws:iam::{}:role/reader", kc.b);
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
         "Principal": {"AWS": format!("arn:aws:iam::{}:root", kc.a)}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "AllowReaderDecryptViaS3", "Effect": "Allow", "Principal": {"AWS": reader},
         "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": format!("s3.{REGION}.amazonaws.com")}}}]});
    let kms = aws_sdk_kms::Client::new(&m.account(&kc.a).await);
    let key_id = kc.key_arn.rsplit('/').next().expect("key id");
    kms.put_key_policy()
        .key_id(key_id)
        .policy_name("default")
        .policy(policy.to_string())
        .send()
        .await
        .expect("put key policy");

    // Control: without the change event the warm cache still answers with the old policy.
    let (verdict, codes, hits) = diagnosis(&deliver(&collector, &publisher, &denial).await);
    assert_eq!(verdict, "denied", "{codes:?}");
    assert!(
        codes.contains(&"KEY_POLICY_NO_ALLOW".to_owned()),
        "{codes:?}"
    );
    assert!(hits > 0, "the second diagnosis was answered from the cache");
    inbox.next().await;

    // The change event drops the key's cached state and publishes nothing.
    let dropped =
        acknowledged(&deliver(&collector, &publisher, &change_event(PUT_KEY_POLICY, &kc)).await);
    assert!(
        dropped.contains(&format!("key/{}", kc.key_arn)),
        "{dropped:?}"
    );
    assert!(
        dropped
            .iter()
            .all(|k| !k.starts_with("bucket/") && !k.starts_with("iam/")),
        "only KMS entries: {dropped:?}"
    );
    assert!(
        inbox.try_next(2).await.is_none(),
        "a change publishes nothing"
    );

    // The same denial now sees the new key policy: the cause is gone.
    let (verdict, codes, _) = diagnosis(&deliver(&collector, &publisher, &denial).await);
    assert!(
        !codes.contains(&"KEY_POLICY_NO_ALLOW".to_owned()),
        "{codes:?}"
    );
    assert_eq!(verdict, "allowed", "{codes:?}");
}

#[tokio::test]
async fn a_role_policy_change_reaches_the_next_diagnosis_in_a_warm_container() {
    let m = Moto::connect("change_role_policy").await;
    let kc = Kc::build(&m, Cause::IamS3).await;
    let denial = kc.event();
    let collector = collector(&m, Duration::from_secs(300));
    let inbox = Inbox::new(&m).await;
    let publisher = SnsPublisher::new(&m.base, &inbox.topic_arn);

    let (_, codes, _) = diagnosis(&deliver(&collector, &publisher, &denial).await);
    assert!(
        codes.contains(&"IDENTITY_POLICY_NO_ALLOW".to_owned()),
        "{codes:?}"
    );

    // B's administrator points the reader's inline policy at the right bucket.
    let iam = aws_sdk_iam::Client::new(&m.account(&kc.b).await);
    iam.put_role_policy()
        .role_name("reader")
        .policy_name("read-reports")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{}/*", kc.bucket)}]})
            .to_string(),
        )
        .send()
        .await
        .expect("put role policy");

    let (_, codes, _) = diagnosis(&deliver(&collector, &publisher, &denial).await);
    assert!(
        codes.contains(&"IDENTITY_POLICY_NO_ALLOW".to_owned()),
        "the warm cache answers from the old state: {codes:?}"
    );

    let dropped =
        acknowledged(&deliver(&collector, &publisher, &change_event(PUT_ROLE_POLICY, &kc)).await);
    assert!(
        dropped.contains(&format!("iam/{}/role/reader", kc.b)),
        "{dropped:?}"
    );

    let (verdict, codes, _) = diagnosis(&deliver(&collector, &publisher, &denial).await);
    assert!(
        !codes.contains(&"IDENTITY_POLICY_NO_ALLOW".to_owned()),
        "{codes:?}"
    );
    assert_eq!(verdict, "allowed", "{codes:?}");
}

#[tokio::test]
async fn a_failed_change_and_an_unrelated_event_publish_nothing_and_drop_nothing() {
    let m = Moto::connect("change_failed").await;
    let kc = Kc::build(&m, Cause::KeyPolicy).await;
    let denial = kc.event();
    let collector = collector(&m, Duration::from_secs(300));
    let inbox = Inbox::new(&m).await;
    let publisher = SnsPublisher::new(&m.base, &inbox.topic_arn);
    let (_, codes, _) = diagnosis(&deliver(&collector, &publisher, &denial).await);
    assert!(
        codes.contains(&"KEY_POLICY_NO_ALLOW".to_owned()),
        "{codes:?}"
    );
    inbox.next().await;

    // The key policy really changes on the server, but the recorded call failed...
    let kms = aws_sdk_kms::Client::new(&m.account(&kc.a).await);
    let key_id = kc.key_arn.rsplit('/').next().expect("key id");
    let open = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]});
    kms.put_key_policy()
        .key_id(key_id)
        .policy_name("default")
        .policy(open.to_string())
        .send()
        .await
        .expect("put key policy");
    let mut failed = change_event(PUT_KEY_POLICY, &kc);
    failed["detail"]["errorCode"] = json!("AccessDeniedException");
    failed["detail"]["errorMessage"] = json!("not authorized to perform kms:PutKeyPolicy");
    let summary = deliver(&collector, &publisher, &failed).await;
    assert!(
        summary.published.is_empty() && summary.changes.is_empty(),
        "{summary:?}"
    );
    assert!(summary.error_reported.is_none(), "{summary:?}");
    assert_eq!(summary.skipped.len(), 1, "{summary:?}");
    assert!(
        summary.skipped[0].reason.contains("AccessDeniedException"),
        "{summary:?}"
    );

    // ...and an event of another kind is ignored.
    let other = json!({"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
        "account": kc.a, "region": REGION, "detail": {"instance-id": "i-1", "state": "running"}});
    let summary = deliver(&collector, &publisher, &other).await;
    assert!(summary.ignored.is_some(), "{summary:?}");
    assert!(
        summary.published.is_empty() && summary.changes.is_empty(),
        "{summary:?}"
    );
    assert!(inbox.try_next(2).await.is_none(), "nothing was published");

    // Neither dropped the cached key: the denial is still answered with the old policy.
    let (_, codes, hits) = diagnosis(&deliver(&collector, &publisher, &denial).await);
    assert!(
        codes.contains(&"KEY_POLICY_NO_ALLOW".to_owned()),
        "{codes:?}"
    );
    assert!(hits > 0);
}

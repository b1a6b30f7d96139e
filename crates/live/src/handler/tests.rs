use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::cache::Cache;
use crate::collect::Options;
use crate::fake::{kc_world, FakeAccounts, FakePublisher};

const EVENT: &str =
    include_str!("../../../../events/s3-getobject-denied-cross-account.eventbridge.json");

fn collector() -> Collector<FakeAccounts> {
    Collector::new(
        FakeAccounts::new(kc_world(), "999988887777"),
        Cache::new(Duration::from_secs(300)),
        Options::default(),
    )
}

#[tokio::test]
async fn a_denial_is_published_within_the_round_trip_budget() {
    let c = collector();
    let p = FakePublisher::default();
    let event: Value = serde_json::from_str(EVENT).unwrap();
    let cold = handle(&c, &p, &event).await.unwrap();
    let warm = handle(&c, &p, &event).await.unwrap();
    assert_eq!(cold.published.len(), 1);
    assert_eq!(cold.published[0].verdict, "denied");
    assert!(cold.published[0].depth <= 4, "{:?}", cold.published[0]);
    assert!(warm.published[0].depth <= 2, "{:?}", warm.published[0]);
    assert_eq!(warm.published[0].api_calls, 1, "only the publish");
    let sent = p.sent.lock().unwrap();
    assert_eq!(sent.len(), 2);
    // The triage subject: verdict, first blocking code, the account that must act.
    assert!(
        sent[0].subject.starts_with("DENIED ") && sent[0].subject.contains(" | fix: "),
        "{}",
        sent[0].subject
    );
}

#[tokio::test]
async fn other_events_are_ignored() {
    let p = FakePublisher::default();
    let event = json!({"version": "0", "id": "e-1", "detail-type": "Object Created", "source": "aws.s3", "detail": {}});
    let s = handle(&collector(), &p, &event).await.unwrap();
    assert!(s.ignored.is_some_and(|r| r.contains("Object Created")));
    assert!(p.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn records_that_need_no_diagnosis_are_skipped() {
    let p = FakePublisher::default();
    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["detail"].as_object_mut().unwrap().remove("errorCode");
    let s = handle(&collector(), &p, &event).await.unwrap();
    assert!(s.published.is_empty());
    assert_eq!(s.skipped.len(), 1);
}

#[tokio::test]
async fn an_unreadable_event_is_reported_on_the_topic() {
    let p = FakePublisher::default();
    let event = json!({"detail-type": "AWS API Call via CloudTrail", "id": "e-2", "detail": {"eventSource": 3}});
    let s = handle(&collector(), &p, &event).await.unwrap();
    assert_eq!(s.error_reported.as_deref(), Some("msg-1"));
    let sent = p.sent.lock().unwrap();
    assert!(sent[0].subject.starts_with("ERROR"));
}

#[tokio::test]
async fn a_failed_publish_is_an_error_with_a_stable_type() {
    let p = FakePublisher {
        fail: true,
        ..FakePublisher::default()
    };
    let event: Value = serde_json::from_str(EVENT).unwrap();
    let e = handle(&collector(), &p, &event).await.unwrap_err();
    assert_eq!(e.error_type(), "PublishFailed");
}

#[cfg(feature = "lambda")]
#[tokio::test]
async fn failures_reach_lambda_with_their_error_type() {
    let p = FakePublisher {
        fail: true,
        ..FakePublisher::default()
    };
    let event: Value = serde_json::from_str(EVENT).unwrap();
    let e = handle(&collector(), &p, &event).await.unwrap_err();
    let d = lambda_runtime::Diagnostic::from(e);
    assert_eq!(d.error_type, "PublishFailed");
    assert!(d.error_message.starts_with("publishing to SNS failed"));
}

fn collector_of(world: crate::fake::World) -> Collector<FakeAccounts> {
    Collector::new(
        FakeAccounts::new(world, "999988887777"),
        Cache::new(Duration::from_secs(300)),
        Options::default(),
    )
}

fn blocking(body: &Value) -> Vec<String> {
    let mut out: Vec<String> = body["diagnosis"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["blocking"] == true)
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

fn codes(p: &Published) -> Vec<&str> {
    p.finding_codes.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn a_persistent_throttle_fails_the_invocation_and_publishes_no_verdict() {
    use crate::fake::B;
    // GIVEN B's managed policy (the one granting kms:Decrypt) throttled through every retry
    let mut world = kc_world();
    world
        .throttled
        .insert((B.to_owned(), "iam:GetPolicyVersion".to_owned()));
    let c = collector_of(world);
    let p = FakePublisher::default();
    let event: Value = serde_json::from_str(EVENT).unwrap();
    // WHEN the denial is handled
    let e = handle(&c, &p, &event).await.unwrap_err();
    // THEN the invocation fails, naming the read, so Lambda retries it (then the DLQ) ...
    assert_eq!(e.error_type(), "CollectionFailed");
    let text = e.to_string();
    assert!(
        text.contains("iam:GetPolicyVersion") && text.contains("Throttling"),
        "{text}"
    );
    // ... and no verdict (no IDENTITY_POLICY_NO_ALLOW for a policy never read) was published
    assert!(p.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_auditors_own_access_denied_is_evidence_with_lowered_confidence() {
    use crate::fake::B;
    // GIVEN the same read refused to the auditor instead of throttled
    let mut world = kc_world();
    world
        .denied
        .insert((B.to_owned(), "iam:GetPolicyVersion".to_owned()));
    let c = collector_of(world);
    let p = FakePublisher::default();
    let event: Value = serde_json::from_str(EVENT).unwrap();
    let s = handle(&c, &p, &event).await.unwrap();
    // THEN a diagnosis is published, saying what is missing, with lowered confidence, and
    // the cause the fault-free diagnosis finds (A's key policy) still blocks
    let clean = handle(&collector(), &FakePublisher::default(), &event)
        .await
        .unwrap();
    assert_eq!(s.published.len(), 1);
    let got = codes(&s.published[0]);
    assert!(got.contains(&"MISSING_EVIDENCE"), "{got:?}");
    for code in codes(&clean.published[0]) {
        assert!(got.contains(&code), "{code} lost: {got:?}");
    }
    let body: Value = serde_json::from_str(&p.sent.lock().unwrap()[0].message).unwrap();
    assert_ne!(body["diagnosis"]["confidence"], "high", "{body:#}");
    // AND the policy it could not read is not blamed: the blocking causes are the fault-free
    // ones (no IDENTITY_POLICY_NO_ALLOW for kms:Decrypt, which that policy grants)
    let clean_p = FakePublisher::default();
    handle(&collector(), &clean_p, &event).await.unwrap();
    let clean_body: Value = serde_json::from_str(&clean_p.sent.lock().unwrap()[0].message).unwrap();
    assert_eq!(blocking(&body), blocking(&clean_body), "{body:#}");
}

/// A trail log file with the sample record, and a second record (its own event id) by a
/// role of `account`.
fn two_records(account: &str) -> Value {
    let event: Value = serde_json::from_str(EVENT).unwrap();
    let first = event["detail"].clone();
    let second: Value = serde_json::from_str(
        &first
            .to_string()
            .replace(crate::fake::B, account)
            .replace(first["eventID"].as_str().unwrap(), "second-record-id"),
    )
    .unwrap();
    json!({"Records": [first, second]})
}

#[tokio::test]
async fn a_record_that_fails_beside_a_published_one_is_reported_not_retried() {
    // GIVEN two records; the second's caller account is throttled through every retry
    let c_acct = "777788889999";
    let mut world = kc_world();
    world
        .throttled
        .insert((c_acct.to_owned(), "iam:GetRole".to_owned()));
    let c = collector_of(world);
    let p = FakePublisher::default();
    let s = handle(&c, &p, &two_records(c_acct)).await.unwrap();
    // THEN the first is published, the second gets a "could not diagnose" report naming the
    // read, and the invocation succeeds (a retry would publish the first again)
    assert_eq!(s.published.len(), 1);
    assert_eq!(s.reported.len(), 1);
    assert_eq!(s.reported[0].operation, "iam:GetRole");
    assert_eq!(s.reported[0].event_id.as_deref(), Some("second-record-id"));
    let sent = p.sent.lock().unwrap();
    assert_eq!(sent.len(), 2);
    let body: Value = serde_json::from_str(&sent[1].message).unwrap();
    assert_eq!(body["verdict"], "error");
    assert_eq!(body["event_id"], "second-record-id");
    assert!(body["error"]
        .as_str()
        .is_some_and(|e| e.contains("iam:GetRole") && e.contains("Throttling")));
}

#[tokio::test]
async fn a_retry_after_a_failed_publish_publishes_only_what_is_missing() {
    // GIVEN two diagnosable records, and a topic that fails after the first message
    let c = collector();
    let event = two_records(crate::fake::B);
    let p = FakePublisher {
        fail_after: Some(1),
        ..FakePublisher::default()
    };
    let e = handle(&c, &p, &event).await.unwrap_err();
    assert_eq!(e.error_type(), "PublishFailed");
    assert_eq!(p.sent.lock().unwrap().len(), 1);
    // WHEN Lambda retries the event in the same container, with the topic back
    let p2 = FakePublisher::default();
    let s = handle(&c, &p2, &event).await.unwrap();
    // THEN only the second record is published; the first is accounted as already published
    assert_eq!(s.published.len(), 1);
    assert_eq!(s.published[0].event_id.as_deref(), Some("second-record-id"));
    assert_eq!(s.already_published.len(), 1);
    assert_eq!(p2.sent.lock().unwrap().len(), 1);
}

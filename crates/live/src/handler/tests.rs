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

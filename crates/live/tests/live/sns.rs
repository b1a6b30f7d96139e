//! The SNS publish against the test server: what subscribers receive, and which subscription
//! filter policies the message satisfies, on attributes and on the body
//! (`FilterPolicyScope: MessageBody`).
//!
//! What moto cannot show: AWS delivers message attributes only when the message structure is
//! String (<https://docs.aws.amazon.com/sns/latest/dg/sns-message-attributes.html>), while
//! moto delivers them with `MessageStructure: json` too, so no test here could catch a return
//! to the JSON structure; `notification_is_published_with_the_string_structure` pins it on the
//! request instead. Nor can moto show an e-mail as a mailbox renders it, or enforce the queue
//! policy that lets a topic send to a queue on AWS.

use auditor::diagnose::{diagnose, Diagnosis};
use auditor::event::{parse_events, EventOutcome};
use auditor::report::sns::{notification, SNS_MAX_BYTES};
use auditor::snapshot::Snapshot;
use auditor_live::aws::SnsPublisher;
use auditor_live::ports::Publisher;
use serde_json::{json, Value};

use crate::support::{Inbox, Moto};

/// The README's example, diagnosed offline: denied by the key policy and the reader's IAM.
fn kc_diagnosis() -> Diagnosis {
    let raw: Value =
        serde_json::from_str(include_str!("../../../../examples/kc-scenario.json")).unwrap();
    let snap = Snapshot::from_value(&raw).unwrap();
    let event: Value = serde_json::from_str(include_str!(
        "../../../../events/s3-getobject-denied-cross-account.eventbridge.json"
    ))
    .unwrap();
    let Some(EventOutcome::Denied(req)) = parse_events(&event).unwrap().pop() else {
        panic!("the sample is a denial");
    };
    diagnose(&snap, &req)
}

/// The filter policies README.md documents (section *Subscribe to the findings*); each must
/// appear there verbatim.
const KEY_TEAM_ATTRIBUTES: &str = r#"{"verdict": ["denied"], "finding_codes": ["KEY_POLICY_NO_ALLOW", "KEY_POLICY_EXPLICIT_DENY", "KEY_NOT_USABLE", "AWS_MANAGED_KEY"]}"#;
const ACCOUNT_BODY: &str = r#"{"verdict": ["denied"], "acting_accounts": ["111122223333"], "complete": [true], "bucket": ["doc-example-bucket"]}"#;

#[tokio::test]
async fn sns_subscribers_receive_subject_json_body_and_attributes() {
    let m = Moto::require("sns_subscribers_receive").await;
    let inbox = Inbox::new(&m).await;
    let d = kc_diagnosis();
    let n = notification(&d);
    let id = SnsPublisher::new(&m.base, &inbox.topic_arn)
        .publish(&n)
        .await
        .expect("published");
    assert!(!id.is_empty());

    let envelope = inbox.next().await;
    assert_eq!(envelope["Subject"], n.subject.as_str());
    assert_eq!(
        envelope["Subject"],
        "DENIED KEY_POLICY_NO_ALLOW +1 | fix: 111122223333 | doc-example-bucket/reports/"
    );
    let body: Value =
        serde_json::from_str(envelope["Message"].as_str().expect("Message")).expect("JSON body");
    assert_eq!(body["diagnosis"], serde_json::to_value(&d).unwrap());
    assert_eq!(body["verdict"], "denied");
    assert_eq!(
        body["text"][0]
            .as_str()
            .map(|l| l.starts_with("DENIED: 2 causes")),
        Some(true)
    );
    let attrs = &envelope["MessageAttributes"];
    assert_eq!(attrs["verdict"]["Value"], "denied");
    assert_eq!(attrs["complete"]["Value"], "true");
    assert_eq!(attrs["acting_accounts"]["Type"], "String.Array");
    let acting: Value =
        serde_json::from_str(attrs["acting_accounts"]["Value"].as_str().expect("value")).unwrap();
    assert_eq!(acting, json!(["111122223333", "444455556666"]));
}

#[tokio::test]
async fn sns_filter_policies_match_on_attributes_and_on_the_body() {
    // The policies are the README's: keep them documented.
    let readme = include_str!("../../../../README.md");
    for policy in [KEY_TEAM_ATTRIBUTES, ACCOUNT_BODY] {
        assert!(
            readme.contains(policy),
            "README.md no longer shows {policy}"
        );
    }
    let m = Moto::require("sns_filter_policies").await;
    // GIVEN one topic with a plain subscription and filtered ones
    let all = Inbox::new(&m).await;
    let topic = Some(all.topic_arn.as_str());
    let by_attributes =
        Inbox::subscribed(&m, topic, &[("FilterPolicy", KEY_TEAM_ATTRIBUTES)]).await;
    let by_attributes_miss = Inbox::subscribed(
        &m,
        topic,
        &[("FilterPolicy", r#"{"verdict": ["allowed"]}"#)],
    )
    .await;
    let by_body = Inbox::subscribed(
        &m,
        topic,
        &[
            ("FilterPolicyScope", "MessageBody"),
            ("FilterPolicy", ACCOUNT_BODY),
        ],
    )
    .await;
    let by_body_miss = Inbox::subscribed(
        &m,
        topic,
        &[
            ("FilterPolicyScope", "MessageBody"),
            (
                "FilterPolicy",
                r#"{"blocking_codes": ["SCP_EXPLICIT_DENY"]}"#,
            ),
        ],
    )
    .await;
    // The body's own fields (`key_prefix` is no attribute): proof that the scope is honoured.
    let prefix = r#"{"key_prefix": ["reports/"]}"#;
    let body_only = Inbox::subscribed(
        &m,
        topic,
        &[
            ("FilterPolicyScope", "MessageBody"),
            ("FilterPolicy", prefix),
        ],
    )
    .await;
    let body_only_on_attributes = Inbox::subscribed(&m, topic, &[("FilterPolicy", prefix)]).await;
    // WHEN the example's diagnosis is published
    let n = notification(&kc_diagnosis());
    SnsPublisher::new(&m.base, &all.topic_arn)
        .publish(&n)
        .await
        .expect("published");
    // THEN the matching subscriptions receive it and the others do not
    for (what, inbox) in [
        ("plain", &all),
        ("attributes", &by_attributes),
        ("body", &by_body),
        ("body-only field", &body_only),
    ] {
        let envelope = inbox.try_next(20).await;
        let subject = envelope
            .as_ref()
            .and_then(|e| e["Subject"].as_str().map(str::to_owned));
        assert_eq!(
            subject.as_deref(),
            Some(n.subject.as_str()),
            "{what} subscription"
        );
    }
    for (what, inbox) in [
        ("attributes", &by_attributes_miss),
        ("body", &by_body_miss),
        (
            "body field on the attribute scope",
            &body_only_on_attributes,
        ),
    ] {
        let got = inbox.try_next(2).await;
        assert!(got.is_none(), "the {what} filter should not match: {got:?}");
    }
}

#[tokio::test]
async fn sns_accepts_a_trimmed_oversized_diagnosis() {
    let m = Moto::require("sns_trimmed").await;
    let inbox = Inbox::new(&m).await;
    // GIVEN a diagnosis whose patched policies alone exceed the SNS limit
    let mut d = kc_diagnosis();
    let huge = json!({"Statement": [{"Sid": "x".repeat(SNS_MAX_BYTES)}]});
    for f in d.findings.iter_mut() {
        if let Some(fix) = f.fix.as_mut() {
            fix.patched_policy = Some(huge.clone());
        }
    }
    let n = notification(&d);
    assert!(!n.trimmed.is_empty());
    // WHEN it is published THEN the server takes it
    let publisher = SnsPublisher::new(&m.base, &inbox.topic_arn);
    let published = publisher.publish(&n).await;
    assert!(published.is_ok(), "{published:?}");
    // AND the server does check the limit: the same message untrimmed is refused
    let mut untrimmed = n.clone();
    untrimmed.message = json!({ "diagnosis": d }).to_string();
    assert!(untrimmed.size() > SNS_MAX_BYTES);
    let refused = publisher.publish(&untrimmed).await;
    assert!(
        refused.is_err(),
        "the server took {} bytes",
        untrimmed.size()
    );
}

#[test]
fn notification_is_published_with_the_string_structure() {
    // The server cannot tell (see the module comment): pin the request's code instead.
    let source = include_str!("../../src/aws/sns.rs");
    let code: String = source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !code.contains("message_structure"),
        "the publish must leave MessageStructure unset"
    );
}

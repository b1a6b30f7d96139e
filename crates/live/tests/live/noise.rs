//! Noise control against the test server: the state in a DynamoDB table shared by two handler
//! instances (as two concurrent Lambda containers share it), the messages read back through an
//! SQS queue subscribed to the topic.
//!
//! moto evaluates DynamoDB condition expressions (`attribute_not_exists`, comparisons, `OR`)
//! and rejects a failed one with `ConditionalCheckFailedException`, as DynamoDB does; the
//! first test would publish twice if it did not. moto does not make two simultaneous
//! conditional writes to one item atomic, which DynamoDB does: the instances take turns (see
//! `burst`). moto does not expire items by TTL; nothing
//! here waits for it (the store never relies on deletion: it compares times itself).

use std::time::Duration;

use auditor_live::aws::{DynamoStore, SnsPublisher};
use auditor_live::handler::noise::{handle_noisy, scheduled_run, Noise, NoiseConfig, NoisySummary};
use auditor_live::noise_store::{MemoryStore, NoiseStore};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use serde_json::{json, Value};

use crate::kc::{collector, Cause, Kc};
use crate::support::{unique, Inbox, Moto};

/// 2026-03-02T09:14:03Z, the sample's time.
const T0: u64 = 1_772_442_843;

/// A table as template.yaml declares it: partition key `pk`, on demand, TTL on `expires_at`.
pub async fn table(m: &Moto) -> String {
    let ddb = aws_sdk_dynamodb::Client::new(&m.base);
    let name = unique("s3ka-noise");
    ddb.create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table");
    ddb.update_time_to_live()
        .table_name(&name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("TTL");
    name
}

fn denial(kc: &Kc, id: &str) -> Value {
    let mut e = kc.event();
    e["detail"]["eventID"] = json!(id);
    e
}

/// The JSON body of a message the queue received.
fn body(envelope: &Value) -> Value {
    serde_json::from_str(envelope["Message"].as_str().expect("Message")).expect("JSON body")
}

/// Every message on the queue, until it stays empty for a few polls.
async fn drain(inbox: &Inbox) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(m) = inbox.try_next(3).await {
        out.push(body(&m));
    }
    out
}

fn totals(runs: &[NoisySummary]) -> (usize, usize) {
    (
        runs.iter().map(|s| s.base.published.len()).sum(),
        runs.iter().map(|s| s.repeats.len()).sum(),
    )
}

/// Sends `n` identical denials through two instances, alternately (even ones to the first).
///
/// One after the other, not at the same instant: moto does not serialise concurrent
/// conditional writes to one item (measured with 8 simultaneous `UpdateItem`s conditioned on
/// `attribute_not_exists`: 1 trial in 20 had two winners), while DynamoDB applies each
/// conditional write atomically, so the second of two simultaneous claims fails its condition
/// ("Condition expressions", DynamoDB Developer Guide,
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html>).
/// What the server can show is shown: the second instance's first denial meets the first's
/// claim in the table, fails the condition and is counted.
async fn burst<S: NoiseStore>(
    m: &Moto,
    kc: &Kc,
    publisher: &SnsPublisher,
    one: &Noise<S>,
    two: &Noise<S>,
    n: usize,
) -> Vec<NoisySummary> {
    let (c1, c2) = (
        collector(m, Duration::from_secs(300)),
        collector(m, Duration::from_secs(300)),
    );
    let mut out = Vec::new();
    for i in 0..n {
        let e = denial(kc, &format!("burst-{i}"));
        let (c, noise) = if i % 2 == 0 { (&c1, one) } else { (&c2, two) };
        out.push(
            handle_noisy(c, publisher, noise, &e, T0 + i as u64)
                .await
                .expect("handled"),
        );
    }
    out
}

#[tokio::test]
async fn two_instances_sharing_the_table_publish_a_burst_once_and_the_next_alert_carries_the_count()
{
    let m = Moto::connect("noise_shared_table").await;
    let kc = Kc::build(&m, Cause::KeyPolicy).await;
    let inbox = Inbox::new(&m).await;
    let publisher = SnsPublisher::new(&m.base, &inbox.topic_arn);
    let table = table(&m).await;
    let instance = || {
        Noise::new(
            NoiseConfig::default(),
            DynamoStore::new(&m.base, &table),
            &inbox.topic_arn,
            Duration::from_secs(300),
        )
    };
    let (one, two) = (instance(), instance());

    let runs = burst(&m, &kc, &publisher, &one, &two, 20).await;
    let (published, repeats) = totals(&runs);
    assert_eq!((published, repeats), (1, 19), "one alert, the rest counted");
    // Each instance diagnosed once: the second's first denial was diagnosed and counted, every
    // later one was counted from the pre-key without collecting.
    let diagnosed = runs
        .iter()
        .flat_map(|s| &s.repeats)
        .filter(|r| r.diagnosed)
        .count();
    assert_eq!(diagnosed, 1, "{runs:?}");
    assert!(
        runs[1].repeats[0].diagnosed,
        "the second instance's first denial met the first's claim in the table"
    );
    let messages = drain(&inbox).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let alert = &messages[0];
    assert_eq!(alert["verdict"], "denied");
    assert!(
        alert["problem"].get("suppressed_repeats").is_none(),
        "{alert}"
    );

    // The window has ended: the next occurrence, on either instance, alerts with the count.
    let later = handle_noisy(
        &collector(&m, Duration::from_secs(300)),
        &publisher,
        &two,
        &denial(&kc, "after-window"),
        T0 + 3600,
    )
    .await
    .expect("handled");
    assert_eq!(later.base.published.len(), 1, "{later:?}");
    let messages = drain(&inbox).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let next = &messages[0];
    assert_eq!(next["problem"]["id"], alert["problem"]["id"]);
    assert_eq!(next["problem"]["suppressed_repeats"], 19);
    assert_eq!(next["problem"]["first_seen"], "2026-03-02T09:14:03Z");
    assert_eq!(next["problem"]["last_seen"], "2026-03-02T09:14:22Z");
}

#[tokio::test]
async fn without_a_table_each_instance_keeps_its_own_window() {
    // The in-memory fallback (docs/live.md): one alert per problem per container.
    let m = Moto::connect("noise_memory").await;
    let kc = Kc::build(&m, Cause::KeyPolicy).await;
    let inbox = Inbox::new(&m).await;
    let publisher = SnsPublisher::new(&m.base, &inbox.topic_arn);
    let instance = || {
        Noise::new(
            NoiseConfig::default(),
            MemoryStore::new(),
            &inbox.topic_arn,
            Duration::from_secs(300),
        )
    };
    let (one, two) = (instance(), instance());
    let runs = burst(&m, &kc, &publisher, &one, &two, 10).await;
    assert_eq!(totals(&runs), (2, 8), "one alert per instance");
    assert_eq!(drain(&inbox).await.len(), 2);
    // Within one instance the next alert carries its own count.
    let later = handle_noisy(
        &collector(&m, Duration::from_secs(300)),
        &publisher,
        &one,
        &denial(&kc, "after-window"),
        T0 + 3600,
    )
    .await
    .expect("handled");
    assert_eq!(later.base.published.len(), 1);
    let messages = drain(&inbox).await;
    assert_eq!(messages[0]["problem"]["suppressed_repeats"], 4);
}

#[tokio::test]
async fn a_fixed_problem_is_resolved_once_by_the_scheduled_run() {
    let m = Moto::connect("noise_resolution").await;
    let kc = Kc::build(&m, Cause::KeyPolicy).await;
    let inbox = Inbox::new(&m).await;
    let publisher = SnsPublisher::new(&m.base, &inbox.topic_arn);
    let table = table(&m).await;
    let noise = Noise::new(
        NoiseConfig::default(),
        DynamoStore::new(&m.base, &table),
        &inbox.topic_arn,
        Duration::ZERO,
    );
    // No cache: every re-check reads the current state.
    let c = collector(&m, Duration::ZERO);
    handle_noisy(&c, &publisher, &noise, &denial(&kc, "e-1"), T0)
        .await
        .expect("handled");
    handle_noisy(&c, &publisher, &noise, &denial(&kc, "e-2"), T0 + 10)
        .await
        .expect("handled");
    let alert = drain(&inbox).await;
    assert_eq!(alert.len(), 1);

    // Still broken at the re-check: it stays open, nothing published.
    let run = scheduled_run(&c, &publisher, &noise, T0 + 900)
        .await
        .expect("run");
    assert_eq!((run.rechecked.len(), run.resolved.len()), (1, 0), "{run:?}");
    assert!(drain(&inbox).await.is_empty());

    // A's key administrator lets B's reader decrypt through S3.
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{}:root", kc.a)}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{}:role/reader", kc.b)},
         "Action": "kms:Decrypt", "Resource": "*"}]});
    let kms = aws_sdk_kms::Client::new(&m.account(&kc.a).await);
    kms.put_key_policy()
        .key_id(kc.key_arn.rsplit('/').next().unwrap())
        .policy_name("default")
        .policy(policy.to_string())
        .send()
        .await
        .expect("put key policy");

    let run = scheduled_run(&c, &publisher, &noise, T0 + 1800)
        .await
        .expect("run");
    assert_eq!(run.resolved.len(), 1, "{run:?}");
    let resolved = drain(&inbox).await;
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    let r = &resolved[0];
    assert_eq!(r["verdict"], "resolved");
    assert_eq!(r["problem"]["id"], alert[0]["problem"]["id"]);
    assert_eq!(r["problem"]["original_subject"], alert[0]["subject"]);
    assert!(r["problem"]["original_message_id"].is_string(), "{r}");
    assert_eq!(r["occurrences"], 2);
    assert!(
        r["changed"][0]
            .as_str()
            .unwrap()
            .starts_with(&format!("KEY_POLICY_NO_ALLOW@{}", kc.a)),
        "{r}"
    );
    // Closed: the next run neither re-checks nor resolves it again.
    let run = scheduled_run(&c, &publisher, &noise, T0 + 2700)
        .await
        .expect("run");
    assert!(
        run.rechecked.is_empty() && run.resolved.is_empty(),
        "{run:?}"
    );
    assert!(drain(&inbox).await.is_empty());
}

#[tokio::test]
async fn beyond_the_rate_limit_the_scheduled_run_publishes_one_summary() {
    let m = Moto::connect("noise_rate_limit").await;
    let kc = Kc::build(&m, Cause::KeyPolicy).await;
    let inbox = Inbox::new(&m).await;
    let publisher = SnsPublisher::new(&m.base, &inbox.topic_arn);
    let table = table(&m).await;
    let instance = || {
        Noise::new(
            NoiseConfig {
                rate_limit: 1,
                ..NoiseConfig::default()
            },
            DynamoStore::new(&m.base, &table),
            &inbox.topic_arn,
            Duration::from_secs(300),
        )
    };
    let (one, two) = (instance(), instance());
    let c = collector(&m, Duration::from_secs(300));
    let mut held = 0;
    for i in 0..4u64 {
        // Four prefixes: four distinct problems, across both instances in the same minute.
        let mut e = denial(&kc, &format!("e-{i}"));
        e["detail"]["requestParameters"]["key"] = json!(format!("p{i}/x.csv"));
        let noise = if i % 2 == 0 { &one } else { &two };
        let s = handle_noisy(&c, &publisher, noise, &e, T0 + i)
            .await
            .expect("handled");
        held += s.held.len();
    }
    assert_eq!(held, 3, "the topic's limit is shared through the table");
    assert_eq!(drain(&inbox).await.len(), 1);
    let run = scheduled_run(&c, &publisher, &one, T0 + 60)
        .await
        .expect("run");
    assert_eq!((run.summaries.len(), run.summarised), (1, 3), "{run:?}");
    let summary = drain(&inbox).await;
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0]["verdict"], "summary");
    assert_eq!(summary[0]["problem_count"], 3);
    let run = scheduled_run(&c, &publisher, &two, T0 + 120)
        .await
        .expect("run");
    assert!(run.summaries.is_empty(), "summarised once: {run:?}");
}

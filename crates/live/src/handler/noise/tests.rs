//! Noise control over the in-memory accounts and the in-memory store (the fallback without a
//! table). The same flows against DynamoDB on the test server, with two instances sharing the
//! table, are in tests/live/noise.rs.

use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::cache::Cache;
use crate::collect::Options;
use crate::fake::{kc_world, FakeAccounts, FakePublisher, World, A, B, KEY_ARN};
use crate::noise_store::MemoryStore;

const EVENT: &str =
    include_str!("../../../../../events/s3-getobject-denied-cross-account.eventbridge.json");
const TOPIC: &str = "arn:aws:sns:us-west-2:999988887777:findings";
/// 2026-03-02T09:14:03Z, the sample's time.
const T0: u64 = 1_772_442_843;

fn collector(world: World) -> Collector<FakeAccounts> {
    Collector::new(
        FakeAccounts::new(world, "999988887777"),
        Cache::new(Duration::from_secs(300)),
        Options::default(),
    )
}

fn noise(config: NoiseConfig) -> Noise<MemoryStore> {
    Noise::new(config, MemoryStore::new(), TOPIC, Duration::from_secs(300))
}

fn event(id: &str, key: &str) -> Value {
    let mut e: Value = serde_json::from_str(EVENT).unwrap();
    e["detail"]["eventID"] = json!(id);
    e["detail"]["requestParameters"]["key"] = json!(key);
    e
}

/// A's key policy lets B's reader decrypt through S3: the sample's cause fixed.
fn fixed_world() -> World {
    let mut w = kc_world();
    let key = w
        .accounts
        .get_mut(A)
        .unwrap()
        .keys
        .get_mut(KEY_ARN)
        .unwrap();
    key.policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{A}:root")}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{B}:role/reader")}, "Action": "kms:Decrypt", "Resource": "*"}]})
    .to_string();
    w
}

fn body(n: &auditor::report::sns::Notification) -> Value {
    serde_json::from_str(&n.message).unwrap()
}

#[tokio::test]
async fn a_burst_costs_one_diagnosis_and_one_alert_and_the_next_alert_carries_the_count() {
    let c = collector(kc_world());
    let p = FakePublisher::default();
    let n = noise(NoiseConfig::default());
    let mut diagnosed = 0;
    for i in 0..50 {
        let s = handle_noisy(
            &c,
            &p,
            &n,
            &event(&format!("e-{i}"), "reports/q1.csv"),
            T0 + i,
        )
        .await
        .unwrap();
        diagnosed += s.base.published.len() + s.repeats.iter().filter(|r| r.diagnosed).count();
        if i > 0 {
            assert_eq!(s.repeats.len(), 1, "{s:?}");
            assert!(
                !s.repeats[0].diagnosed,
                "known from the pre-key: nothing collected"
            );
        }
    }
    assert_eq!(diagnosed, 1, "one diagnosis for the burst");
    assert_eq!(p.sent.lock().unwrap().len(), 1, "one alert");
    // Another object under the same prefix, another session: the same problem, a repeat.
    let mut other = event("e-other", "reports/q2.csv");
    other["detail"]["userIdentity"]["arn"] =
        json!(format!("arn:aws:sts::{B}:assumed-role/reader/s2"));
    let s = handle_noisy(&c, &p, &n, &other, T0 + 60).await.unwrap();
    assert_eq!(s.repeats.len(), 1, "{s:?}");
    assert!(
        s.repeats[0].diagnosed,
        "a new pre-key is diagnosed, then counted"
    );
    // The window ends: the next occurrence alerts with the 50 repeats.
    let s = handle_noisy(&c, &p, &n, &event("e-next", "reports/q1.csv"), T0 + 3600)
        .await
        .unwrap();
    assert_eq!(s.base.published.len(), 1, "{s:?}");
    let sent = p.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    let first = body(&sent[0]);
    let next = body(&sent[1]);
    assert_eq!(first["problem"]["id"], next["problem"]["id"]);
    assert!(first["problem"].get("suppressed_repeats").is_none());
    assert_eq!(next["problem"]["suppressed_repeats"], 50);
    assert_eq!(next["problem"]["first_seen"], "2026-03-02T09:14:03Z");
    assert_eq!(next["problem"]["last_seen"], "2026-03-02T09:15:03Z");
    assert_eq!(next["verdict"], "denied");
}

#[tokio::test]
async fn two_containers_without_a_table_each_publish_once() {
    // The documented weakness of the fallback: the window is per container.
    let p = FakePublisher::default();
    let (c1, c2) = (collector(kc_world()), collector(kc_world()));
    let (n1, n2) = (noise(NoiseConfig::default()), noise(NoiseConfig::default()));
    for i in 0..10 {
        let e = event(&format!("e-{i}"), "reports/q1.csv");
        if i % 2 == 0 {
            handle_noisy(&c1, &p, &n1, &e, T0 + i).await.unwrap();
        } else {
            handle_noisy(&c2, &p, &n2, &e, T0 + i).await.unwrap();
        }
    }
    assert_eq!(p.sent.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn aws_service_probes_are_muted_by_default_and_counted_in_the_digest() {
    let c = collector(kc_world());
    let p = FakePublisher::default();
    let n = noise(NoiseConfig::default());
    let mut e = event("e-config", "reports/q1.csv");
    e["detail"]["userIdentity"] = json!({
        "type": "AssumedRole",
        "principalId": "AROA1111EXAMPLECONFIG:AWSConfig-Describe",
        "arn": format!("arn:aws:sts::{A}:assumed-role/AWSServiceRoleForConfig/AWSConfig-Describe"),
        "accountId": A,
        "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROA1111EXAMPLECONFIG",
            "arn": format!("arn:aws:iam::{A}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"),
            "accountId": A, "userName": "AWSServiceRoleForConfig"}}
    });
    for i in 0..3 {
        let s = handle_noisy(&c, &p, &n, &e, T0 + i).await.unwrap();
        assert_eq!(s.muted.len(), 1, "{s:?}");
        assert_eq!(s.muted[0].by, "default:aws-config");
        assert!(s.base.published.is_empty());
    }
    assert!(p.sent.lock().unwrap().is_empty(), "nothing published");
    // The next day's scheduled run publishes the digest, once.
    let s = handle_noisy(&c, &p, &n, &json!({"s3ka": "scheduled-run"}), T0 + 86_400)
        .await
        .unwrap();
    assert!(s.scheduled.as_ref().unwrap().digest.is_some(), "{s:?}");
    let again = handle_noisy(&c, &p, &n, &json!({"s3ka": "scheduled-run"}), T0 + 86_460)
        .await
        .unwrap();
    assert!(
        again.scheduled.unwrap().digest.is_none(),
        "one digest a day"
    );
    let sent = p.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]
            .subject
            .starts_with("DIGEST 2026-03-02: 3 denials suppressed by rule"),
        "{}",
        sent[0].subject
    );
    assert_eq!(body(&sent[0])["counters"]["default:aws-config"], 3);
}

#[tokio::test]
async fn configured_rules_apply_until_they_expire_and_then_say_so() {
    let rules = format!(
        r#"[{{"id": "reader-known", "principal": "arn:aws:iam::{B}:role/reader", "owner": "data-team", "expires": "2026-03-02"}},
           {{"id": "key-policy-known", "code": "KEY_POLICY_NO_ALLOW", "account": "{A}", "owner": "security", "expires": "2026-03-01"}}]"#
    );
    let config =
        NoiseConfig::from_lookup(|k| (k == "S3KA_SUPPRESSIONS").then(|| rules.clone())).unwrap();
    let c = collector(kc_world());
    let p = FakePublisher::default();
    let n = noise(config);
    // On its last day the principal rule applies (before any diagnosis); the code rule has
    // expired the day before and says so.
    let s = handle_noisy(&c, &p, &n, &event("e-1", "reports/q1.csv"), T0)
        .await
        .unwrap();
    assert_eq!(s.muted.len(), 1, "{s:?}");
    assert_eq!(s.muted[0].by, "rule:reader-known");
    assert!(p.sent.lock().unwrap().is_empty());
    // The day after, both have expired: the denial is alerted, and the digest names them.
    let s = handle_noisy(&c, &p, &n, &event("e-2", "reports/q1.csv"), T0 + 86_400)
        .await
        .unwrap();
    assert!(s.muted.is_empty(), "{s:?}");
    assert_eq!(s.base.published.len(), 1, "{s:?}");
    assert_eq!(s.expired_rules, ["reader-known", "key-policy-known"]);
    let run = handle_noisy(
        &c,
        &p,
        &n,
        &json!({"s3ka": "scheduled-run"}),
        T0 + 2 * 86_400,
    )
    .await
    .unwrap();
    assert!(run.scheduled.unwrap().digest.is_some());
    let sent = p.sent.lock().unwrap().clone();
    let digest = body(sent.last().unwrap());
    assert_eq!(
        digest["expired_rules"],
        json!(["key-policy-known", "reader-known"])
    );
    assert!(
        sent.last().unwrap().subject.contains("2 expired rules"),
        "{}",
        sent.last().unwrap().subject
    );
}

#[tokio::test]
async fn beyond_the_rate_limit_problems_wait_for_one_worst_first_summary() {
    let config = NoiseConfig {
        rate_limit: 2,
        ..NoiseConfig::default()
    };
    let c = collector(kc_world());
    let p = FakePublisher::default();
    let n = noise(config);
    let mut held = 0;
    for i in 0..6 {
        // Six prefixes: six distinct problems.
        let s = handle_noisy(
            &c,
            &p,
            &n,
            &event(&format!("e-{i}"), &format!("p{i}/x.csv")),
            T0 + i,
        )
        .await
        .unwrap();
        held += s.held.len();
    }
    assert_eq!(p.sent.lock().unwrap().len(), 2, "the limit");
    assert_eq!(held, 4);
    // Held problems are claimed: their repeats are counted, not alerted again.
    let s = handle_noisy(&c, &p, &n, &event("e-r", "p5/y.csv"), T0 + 10)
        .await
        .unwrap();
    assert_eq!(s.repeats.len(), 1, "{s:?}");
    let run = handle_noisy(&c, &p, &n, &json!({"s3ka": "scheduled-run"}), T0 + 60)
        .await
        .unwrap()
        .scheduled
        .unwrap();
    assert_eq!((run.summaries.len(), run.summarised), (1, 4), "{run:?}");
    let sent = p.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 3);
    let summary = body(&sent[2]);
    assert_eq!(summary["verdict"], "summary");
    assert_eq!(summary["problem_count"], 4);
    assert!(
        sent[2]
            .subject
            .starts_with("SUMMARY: 4 problems (4 denied)"),
        "{}",
        sent[2].subject
    );
    // Summarised once: the next run has nothing to summarise.
    let run = handle_noisy(&c, &p, &n, &json!({"s3ka": "scheduled-run"}), T0 + 120)
        .await
        .unwrap()
        .scheduled
        .unwrap();
    assert!(run.summaries.is_empty(), "{run:?}");
}

#[tokio::test]
async fn an_open_problem_is_resolved_once_when_nothing_blocks() {
    let broken = collector(kc_world());
    let p = FakePublisher::default();
    let n = noise(NoiseConfig::default());
    handle_noisy(&broken, &p, &n, &event("e-1", "reports/q1.csv"), T0)
        .await
        .unwrap();
    handle_noisy(&broken, &p, &n, &event("e-2", "reports/q1.csv"), T0 + 5)
        .await
        .unwrap();
    // Still broken at the re-check: nothing published, the problem stays open.
    let run = scheduled_run(&broken, &p, &n, T0 + 900).await.unwrap();
    assert_eq!(run.rechecked.len(), 1, "{run:?}");
    assert!(run.resolved.is_empty());
    assert_eq!(p.sent.lock().unwrap().len(), 1);
    // The key policy is fixed: the next re-check resolves it, referring to the alert.
    let fixed = collector(fixed_world());
    let run = scheduled_run(&fixed, &p, &n, T0 + 1800).await.unwrap();
    assert_eq!(run.resolved.len(), 1, "{run:?}");
    let sent = p.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    let alert = body(&sent[0]);
    let resolved = body(&sent[1]);
    assert_eq!(resolved["verdict"], "resolved");
    assert_eq!(resolved["problem"]["id"], alert["problem"]["id"]);
    assert_eq!(resolved["problem"]["original_message_id"], "msg-1");
    assert_eq!(resolved["occurrences"], 2);
    assert!(
        resolved["changed"][0]
            .as_str()
            .unwrap()
            .starts_with("KEY_POLICY_NO_ALLOW@111122223333"),
        "{resolved}"
    );
    // Closed: later runs say nothing more.
    let run = scheduled_run(&fixed, &p, &n, T0 + 3600).await.unwrap();
    assert!(
        run.rechecked.is_empty() && run.resolved.is_empty(),
        "{run:?}"
    );
    assert_eq!(p.sent.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn the_window_ending_with_repeats_is_flushed_by_the_scheduled_run() {
    let c = collector(kc_world());
    let p = FakePublisher::default();
    let n = noise(NoiseConfig::default());
    for i in 0..4 {
        handle_noisy(
            &c,
            &p,
            &n,
            &event(&format!("e-{i}"), "reports/q1.csv"),
            T0 + i,
        )
        .await
        .unwrap();
    }
    let run = scheduled_run(&c, &p, &n, T0 + 3600).await.unwrap();
    assert_eq!(run.flushed.len(), 1, "{run:?}");
    let sent = p.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert_eq!(body(&sent[1])["problem"]["suppressed_repeats"], 3);
}

#[tokio::test]
async fn a_failed_publish_gives_the_claim_back() {
    let c = collector(kc_world());
    let n = noise(NoiseConfig::default());
    let failing = FakePublisher {
        fail: true,
        ..FakePublisher::default()
    };
    let e = handle_noisy(&c, &failing, &n, &event("e-1", "reports/q1.csv"), T0)
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "PublishFailed");
    // Lambda's retry publishes it.
    let p = FakePublisher::default();
    let s = handle_noisy(&c, &p, &n, &event("e-1", "reports/q1.csv"), T0 + 1)
        .await
        .unwrap();
    assert_eq!(s.base.published.len(), 1, "{s:?}");
}

#[test]
fn settings_are_checked() {
    let get = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let c = NoiseConfig::from_lookup(get(&[])).unwrap();
    assert_eq!(c, NoiseConfig::default());
    let c = NoiseConfig::from_lookup(get(&[
        ("S3KA_TABLE_NAME", "t"),
        ("S3KA_DEDUP_WINDOW_SECONDS", "60"),
        ("S3KA_RATE_LIMIT_PER_MINUTE", "0"),
        ("S3KA_DEFAULT_SUPPRESSIONS", "false"),
    ]))
    .unwrap();
    assert_eq!(
        (c.table.as_deref(), c.window, c.rate_limit, c.rules.defaults),
        (Some("t"), 60, 0, false)
    );
    for (pairs, var) in [
        (
            &[("S3KA_DEDUP_WINDOW_SECONDS", "1h")][..],
            "S3KA_DEDUP_WINDOW_SECONDS",
        ),
        (
            &[("S3KA_DEFAULT_SUPPRESSIONS", "maybe")][..],
            "S3KA_DEFAULT_SUPPRESSIONS",
        ),
        (
            &[("S3KA_SUPPRESSIONS", r#"[{"id": "x"}]"#)][..],
            "S3KA_SUPPRESSIONS",
        ),
    ] {
        let e = NoiseConfig::from_lookup(get(pairs)).unwrap_err();
        assert_eq!(e.var, var, "{e}");
    }
}

/// A trail log file with the sample record and a second one (its own event id) by a role of
/// `account`.
fn two_records(account: &str) -> Value {
    let first = event("e-1", "reports/q1.csv")["detail"].clone();
    let second: Value = serde_json::from_str(
        &first
            .to_string()
            .replace(B, account)
            .replace("\"e-1\"", "\"second-record-id\""),
    )
    .unwrap();
    json!({"Records": [first, second]})
}

#[tokio::test]
async fn a_record_that_fails_beside_an_alerted_one_is_reported_under_noise_control() {
    // GIVEN two records; the second's caller account is throttled through every retry
    let other = "777788889999";
    let mut world = kc_world();
    world
        .throttled
        .insert((other.to_owned(), "iam:GetRole".to_owned()));
    let c = collector(world);
    let p = FakePublisher::default();
    let n = noise(NoiseConfig::default());
    let s = handle_noisy(&c, &p, &n, &two_records(other), T0)
        .await
        .unwrap();
    // THEN the first is alerted, the second gets a "could not diagnose" report naming the read
    assert_eq!(s.base.published.len(), 1, "{s:?}");
    assert_eq!(s.base.reported.len(), 1, "{s:?}");
    assert_eq!(s.base.reported[0].operation, "iam:GetRole");
    assert_eq!(
        s.base.reported[0].event_id.as_deref(),
        Some("second-record-id")
    );
    let sent = p.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert!(body(&sent[0])["problem"]["id"].is_string());
    let report = body(&sent[1]);
    assert_eq!(report["verdict"], "error");
    assert_eq!(report["event_id"], "second-record-id");
    assert!(report["error"]
        .as_str()
        .is_some_and(|e| e.contains("iam:GetRole") && e.contains("Throttling")));
    // A repeat of the first beside a failing second: the repeat is an outcome, so the failure
    // is reported again rather than failing the invocation.
    let mut again = two_records(other);
    again["Records"][0]["eventID"] = json!("e-1b");
    again["Records"][1]["eventID"] = json!("second-record-id-b");
    let s = handle_noisy(&c, &p, &n, &again, T0 + 5).await.unwrap();
    assert_eq!((s.repeats.len(), s.base.reported.len()), (1, 1), "{s:?}");
}

#[tokio::test]
async fn when_no_record_can_be_diagnosed_the_invocation_fails_under_noise_control() {
    // GIVEN the only record's managed policy read throttled through every retry
    let mut world = kc_world();
    world
        .throttled
        .insert((B.to_owned(), "iam:GetPolicyVersion".to_owned()));
    let c = collector(world);
    let p = FakePublisher::default();
    let n = noise(NoiseConfig::default());
    let e = handle_noisy(&c, &p, &n, &event("e-1", "reports/q1.csv"), T0)
        .await
        .unwrap_err();
    // THEN the invocation fails (Lambda retries, then the DLQ), naming the read; nothing
    // is published and no problem is claimed, so the retry alerts it
    assert_eq!(e.error_type(), "CollectionFailed");
    assert!(e.to_string().contains("iam:GetPolicyVersion"), "{e}");
    assert!(p.sent.lock().unwrap().is_empty());
    let s = handle_noisy(
        &collector(kc_world()),
        &p,
        &n,
        &event("e-1", "reports/q1.csv"),
        T0 + 60,
    )
    .await
    .unwrap();
    assert_eq!(s.base.published.len(), 1, "{s:?}");
}

/// A successful change record of `service` in account `account`.
fn change(service: &str, name: &str, account: &str, params: Value) -> Value {
    json!({
        "eventVersion": "1.09", "eventID": format!("change-{name}"),
        "eventSource": format!("{service}.amazonaws.com"), "eventName": name,
        "awsRegion": "us-west-2", "recipientAccountId": account,
        "eventTime": "2026-03-02T09:30:00Z",
        "userIdentity": {"type": "Root", "accountId": account},
        "requestParameters": params,
    })
}

#[tokio::test]
async fn a_change_that_touches_an_open_problem_resolves_it_and_an_unrelated_one_does_not() {
    let p = FakePublisher::default();
    let n = noise(NoiseConfig::default());
    handle_noisy(
        &collector(kc_world()),
        &p,
        &n,
        &event("e-1", "reports/q1.csv"),
        T0,
    )
    .await
    .unwrap();
    assert_eq!(p.sent.lock().unwrap().len(), 1, "the alert");
    // The fix is in place (the fake's world), but the changes below do not touch the
    // problem: another bucket, another role of the caller's account, a key of a third account.
    let fixed = collector(fixed_world());
    for unrelated in [
        change(
            "s3",
            "PutBucketPolicy",
            A,
            json!({"bucketName": "another-bucket"}),
        ),
        change("iam", "PutRolePolicy", B, json!({"roleName": "writer"})),
        change(
            "kms",
            "PutKeyPolicy",
            "777788889999",
            json!({"keyId": "arn:aws:kms:us-west-2:777788889999:key/other"}),
        ),
    ] {
        let s = handle_noisy(&fixed, &p, &n, &unrelated, T0 + 60)
            .await
            .unwrap();
        assert_eq!(s.base.changes.len(), 1, "{s:?}");
        assert!(s.change_recheck.is_none(), "{s:?}");
    }
    assert_eq!(p.sent.lock().unwrap().len(), 1, "nothing published");
    // The key policy change itself: the problem is re-checked at once and resolved.
    let s = handle_noisy(
        &fixed,
        &p,
        &n,
        &change("kms", "PutKeyPolicy", A, json!({"keyId": KEY_ARN})),
        T0 + 120,
    )
    .await
    .unwrap();
    let run = s.change_recheck.expect("re-checked");
    assert_eq!((run.rechecked.len(), run.resolved.len()), (1, 1), "{run:?}");
    let sent = p.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    let (alert, resolved) = (body(&sent[0]), body(&sent[1]));
    assert_eq!(resolved["verdict"], "resolved");
    assert_eq!(resolved["problem"]["id"], alert["problem"]["id"]);
    assert_eq!(resolved["problem"]["original_message_id"], "msg-1");
    // Closed: the same change again has nothing open to re-check.
    let s = handle_noisy(
        &fixed,
        &p,
        &n,
        &change("kms", "PutKeyPolicy", A, json!({"keyId": KEY_ARN})),
        T0 + 180,
    )
    .await
    .unwrap();
    assert!(s.change_recheck.is_none(), "{s:?}");
    assert_eq!(p.sent.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_change_to_the_callers_role_rechecks_the_problem_and_keeps_it_open_while_it_blocks() {
    let c = collector(kc_world());
    let p = FakePublisher::default();
    let n = noise(NoiseConfig::default());
    handle_noisy(&c, &p, &n, &event("e-1", "reports/q1.csv"), T0)
        .await
        .unwrap();
    let s = handle_noisy(
        &c,
        &p,
        &n,
        &change("iam", "PutRolePolicy", B, json!({"roleName": "reader"})),
        T0 + 60,
    )
    .await
    .unwrap();
    let run = s.change_recheck.expect("re-checked");
    assert_eq!(run.rechecked.len(), 1, "{run:?}");
    assert!(run.resolved.is_empty(), "still blocked by A's key policy");
    assert_eq!(p.sent.lock().unwrap().len(), 1);
}

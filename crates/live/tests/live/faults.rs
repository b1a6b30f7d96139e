//! The live auditor under faults, measured from outside: the fault proxy (`proxy.rs`) sits
//! between the SDK clients and the test server, and its own record (requests, their timing,
//! connections accepted) is what these tests hold the function to, not the function's meter.
//!
//! * a read throttled through every retry fails the invocation and publishes no verdict;
//! * a cold diagnosis is at most 4 sequential round trips with the publish, judged from wall
//!   time and request overlap under a fixed added latency; warm invocations open no new
//!   connection; the meter's retries match the retries the proxy saw;
//! * 200+ events with 20% faults: every event accounted for, no diagnosis other than the
//!   fault-free one; and through `handle_noisy` with its DynamoDB table behind the proxy and
//!   Lambda's retries: each problem alerted once, the repeats counted.
//!
//! The server (moto) checks no signatures or permissions, so the auditor's own AccessDenied
//! is tested with in-memory accounts (`crates/live/src/handler/tests.rs`), not here.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use auditor::report::sns::Notification;
use auditor_live::aws::{
    retry_config, shared_http_client, timeout_config, AwsAccounts, DynamoStore, RoleSpec,
    SnsPublisher,
};
use auditor_live::cache::Cache;
use auditor_live::collect::{Collector, Options};
use auditor_live::handler::noise::{handle_noisy, Noise, NoiseConfig, NoisySummary};
use auditor_live::handler::{handle, Summary};
use auditor_live::ports::{Publisher, ReadError};
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use serde_json::Value;

use crate::kc::{Cause, Kc};
use crate::proxy::{depth, peak_overlap, Fault, Plan, Proxy};
use crate::support::{Inbox, Moto, EXTERNAL_ID, HOME, REGION, ROLE};

/// The production SDK settings (adaptive retries, 3 attempts, the timeouts, one shared HTTP
/// client), pointed at `endpoint`. The back-off starts at 20 ms instead of 1 s so that the
/// test runs in seconds; the retry decisions are the production ones.
pub async fn sdk(endpoint: &str) -> SdkConfig {
    sdk_with(
        endpoint,
        retry_config(3).with_initial_backoff(Duration::from_millis(20)),
    )
    .await
}

/// [`sdk`] with another retry policy.
pub async fn sdk_with(endpoint: &str, retry: RetryConfig) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "test",
        )))
        .http_client(shared_http_client())
        .retry_config(retry)
        .timeout_config(timeout_config())
        .load()
        .await
}

/// The tests of this module run one at a time: their timings and the proxy's view must not
/// include another test's traffic.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A collector like the Lambda's (a third account, the member role everywhere).
pub fn collector(base: &SdkConfig, ttl: Duration) -> Collector<AwsAccounts> {
    let accounts = AwsAccounts::new(
        base.clone(),
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

/// Publishes through SNS and keeps what was published, by record event id.
pub struct Recording {
    pub inner: SnsPublisher,
    pub sent: Mutex<Vec<Notification>>,
}

impl Recording {
    pub fn new(base: &SdkConfig, topic_arn: &str) -> Recording {
        Recording {
            inner: SnsPublisher::new(base, topic_arn),
            sent: Mutex::new(Vec::new()),
        }
    }

    /// The published bodies, parsed.
    pub fn bodies(&self) -> Vec<Value> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|n| serde_json::from_str(&n.message).unwrap())
            .collect()
    }
}

impl Publisher for Recording {
    async fn publish(&self, n: &Notification) -> Result<String, ReadError> {
        let id = self.inner.publish(n).await?;
        self.sent.lock().unwrap().push(n.clone());
        Ok(id)
    }
}

/// The scenario's event with fresh record and envelope ids (a new occurrence of the same
/// denial).
fn occurrence(kc: &Kc, n: usize) -> Value {
    let mut e = kc.event();
    e["id"] = Value::from(format!("envelope-{n}-{}", kc.bucket));
    e["detail"]["eventID"] = Value::from(format!("record-{n}-{}", kc.bucket));
    e
}

#[tokio::test]
async fn a_read_throttled_through_every_retry_fails_the_invocation_with_no_verdict() {
    let _serial = SERIAL.lock().await;
    let m = Moto::connect("faults_throttled").await;
    // GIVEN the scenario whose only fault is A's key policy; B's managed policy (granting
    // kms:Decrypt) is throttled on every attempt
    let kc = Kc::build(&m, Cause::KeyPolicy).await;
    let proxy = Proxy::start(
        &m.endpoint,
        Plan {
            always: vec![("iam:GetPolicyVersion".into(), Fault::Throttle)],
            ..Plan::default()
        },
        7,
        true,
    )
    .await;
    let base = sdk(&proxy.endpoint).await;
    let inbox = Inbox::new(&m).await;
    let publisher = Recording::new(&base, &inbox.topic_arn);
    let collector = collector(&base, Duration::from_secs(300));
    // WHEN the denial is handled
    let err = handle(&collector, &publisher, &kc.event())
        .await
        .expect_err("a persistent throttle must fail the invocation");
    // THEN the invocation fails naming the read and the error, after the SDK's retries.
    // Adaptive mode paces retries after a throttle (in a new container, down to half a token
    // a second, five tokens a retry), so the last attempt may be cut by the 25 s operation
    // timeout instead: either way the read got no answer, and says so.
    assert_eq!(err.error_type(), "CollectionFailed");
    let text = err.to_string();
    assert!(
        text.contains("iam:GetPolicyVersion")
            && (text.contains("Throttling") || text.contains("operation timeout")),
        "{text}"
    );
    let log = proxy.take_log();
    let tries = log
        .iter()
        .filter(|s| s.op == "iam:GetPolicyVersion")
        .count();
    assert!(
        (2..=3).contains(&tries),
        "the SDK retried the throttle: {tries} attempts"
    );
    // AND nothing was published: no IDENTITY_POLICY_NO_ALLOW for the unread policy
    assert!(publisher.sent.lock().unwrap().is_empty());
    assert!(!log.iter().any(|s| s.op == "sns:Publish"));
    // WHEN Lambda retries it and the throttle has passed
    proxy.set_plan(Plan::default());
    let s = handle(&collector, &publisher, &kc.event()).await.unwrap();
    // THEN the one diagnosis published is the right one
    assert_eq!(s.published.len(), 1);
    assert_eq!(s.published[0].finding_codes, ["KEY_POLICY_NO_ALLOW"]);
    assert_eq!(publisher.sent.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_cold_diagnosis_is_four_round_trips_on_reused_connections() {
    let _serial = SERIAL.lock().await;
    let m = Moto::connect("faults_depth").await;
    let kc = Kc::build(&m, Cause::KeyPolicy).await;
    let inbox = Inbox::new(&m).await;
    let event = kc.event();
    // The server's own time, without added latency: a cold diagnosis in a new container.
    let plain = Proxy::start(&m.endpoint, Plan::default(), 3, false).await;
    let plain_base = sdk(&plain.endpoint).await;
    let plain_pub = Recording::new(&plain_base, &inbox.topic_arn);
    // The first run also pays for the server setting up its state for these accounts: the
    // second is the server's time.
    let mut server_time = Duration::MAX;
    for _ in 0..2 {
        let started = Instant::now();
        handle(
            &collector(&plain_base, Duration::from_secs(300)),
            &plain_pub,
            &event,
        )
        .await
        .unwrap();
        server_time = server_time.min(started.elapsed());
    }
    let latency = Duration::from_millis(1000);
    let proxy = Proxy::start(
        &m.endpoint,
        Plan {
            latency,
            ..Plan::default()
        },
        11,
        true,
    )
    .await;
    let base = sdk(&proxy.endpoint).await;
    let publisher = Recording::new(&base, &inbox.topic_arn);
    let collector = collector(&base, Duration::from_secs(300));

    // Cold.
    let started = Instant::now();
    let cold = handle(&collector, &publisher, &event).await.unwrap();
    let wall = started.elapsed();
    let log = proxy.take_log();
    let cold_connections = proxy.connections();
    let d = depth(&log);
    let overlap = peak_overlap(&log);
    eprintln!(
        "cold: {} requests, depth {d} (from the proxy), wall {wall:?} at {latency:?} per request, peak overlap {overlap}, {cold_connections} TCP connections; meter: {:?}",
        log.len(),
        cold.published[0]
    );
    assert_eq!(cold.published.len(), 1);
    assert!(
        d <= 4,
        "cold diagnosis is {d} sequential round trips: {log:#?}"
    );
    // Each sequential round trip adds the latency once, however many requests it holds:
    // the time added over the server's own is 4 latencies, not 5 (nor 21).
    let added = wall.saturating_sub(server_time);
    eprintln!("server time {server_time:?}; added by the latency {added:?}");
    assert!(
        added < latency * 9 / 2,
        "the latency added {added:?}: 5 or more round trips of {latency:?}"
    );
    assert!(
        added > latency * 7 / 2,
        "the latency added {added:?}: fewer than 4 round trips?"
    );
    // The meter's depth and calls agree with the outside view.
    assert_eq!(cold.published[0].depth as usize, d);
    assert_eq!(cold.published[0].api_calls as usize, log.len());
    // One connection per request in flight at most, not one per request.
    assert!(
        cold_connections as usize <= overlap,
        "{cold_connections} connections for at most {overlap} requests at once ({} requests)",
        log.len()
    );
    assert!((cold_connections as usize) < log.len());

    // Warm: the same event, then another object of the bucket: no new connection.
    let warm = handle(&collector, &publisher, &event).await.unwrap();
    let mut other = event.clone();
    other["detail"]["requestParameters"]["key"] = Value::from("reports/q2.csv");
    let warm2 = handle(&collector, &publisher, &other).await.unwrap();
    let log = proxy.take_log();
    eprintln!(
        "warm: {} requests, {} new connections",
        log.len(),
        proxy.connections() - cold_connections
    );
    assert_eq!(warm.published[0].api_calls, 1, "the publish only");
    assert!(warm2.published[0].depth <= 2, "{:?}", warm2.published[0]);
    // The meter's calls are the requests the proxy saw.
    assert_eq!(
        (warm.published[0].api_calls + warm2.published[0].api_calls) as usize,
        log.len(),
        "{log:#?}"
    );
    assert!(log.iter().all(|x| x.conn <= cold_connections));
    assert_eq!(
        proxy.connections(),
        cold_connections,
        "warm invocations reuse the pooled connections"
    );

    // Retries show in the meter, as the proxy sees them: one throttled attempt of the key
    // policy read, cold in a new container.
    proxy.set_plan(Plan {
        once: vec![("kms:GetKeyPolicy".into(), Fault::Throttle)],
        ..Plan::default()
    });
    let fresh = self::collector(&base, Duration::from_secs(300));
    let s = handle(&fresh, &publisher, &event).await.unwrap();
    let log = proxy.take_log();
    let retried: Vec<_> = log.iter().filter(|x| x.op == "kms:GetKeyPolicy").collect();
    assert_eq!(retried.len(), 2);
    assert_eq!(retried[0].fault, Some(Fault::Throttle));
    assert_eq!(s.published[0].retries, 1, "{:?}", s.published[0]);
    assert_eq!(s.published[0].finding_codes, ["KEY_POLICY_NO_ALLOW"]);
}

/// How one event ended, over Lambda's attempts (1 + 2 retries, as `template.yaml` sets).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    Published,
    Reported,
    Ignored,
    DeadLetter(String),
}

fn ending(s: &Summary) -> Vec<Ending> {
    let mut out = Vec::new();
    out.extend(s.published.iter().map(|_| Ending::Published));
    out.extend(s.already_published.iter().map(|_| Ending::Published));
    out.extend(s.reported.iter().map(|_| Ending::Reported));
    out.extend(s.error_reported.iter().map(|_| Ending::Reported));
    out.extend(s.ignored.iter().map(|_| Ending::Ignored));
    out
}

/// Blocking codes, all codes and confidence of a diagnosis.
fn facts(d: &Value) -> (Vec<String>, Vec<String>, String, String) {
    let findings = d["findings"].as_array().cloned().unwrap_or_default();
    let code = |f: &Value| f["code"].as_str().unwrap_or_default().to_owned();
    let mut blocking: Vec<String> = findings
        .iter()
        .filter(|f| f["blocking"] == true)
        .map(code)
        .collect();
    blocking.sort();
    let mut all: Vec<String> = findings.iter().map(code).collect();
    all.sort();
    (
        blocking,
        all,
        d["verdict"].as_str().unwrap_or_default().to_owned(),
        d["confidence"].as_str().unwrap_or_default().to_owned(),
    )
}

fn rank(confidence: &str) -> u8 {
    match confidence {
        "high" => 3,
        "medium" => 2,
        _ => 1,
    }
}

#[tokio::test]
async fn twenty_percent_faults_lose_no_event_and_change_no_diagnosis() {
    let _serial = SERIAL.lock().await;
    let m = Moto::connect("faults_twenty_percent").await;
    // GIVEN four scenarios, and 240 occurrences of their denials (mostly repeats)
    let mut scenarios = Vec::new();
    for cause in [
        Cause::KeyPolicy,
        Cause::BucketPolicy,
        Cause::IamKms,
        Cause::None,
    ] {
        scenarios.push(Kc::build(&m, cause).await);
    }
    let events: Vec<(usize, Value)> = (0..240)
        .map(|n| {
            (
                n % scenarios.len(),
                occurrence(&scenarios[n % scenarios.len()], n),
            )
        })
        .collect();
    let inbox = Inbox::new(&m).await;

    // The fault-free run, through the same proxy without faults.
    let clean_proxy = Proxy::start(&m.endpoint, Plan::default(), 1, false).await;
    let clean_base = sdk(&clean_proxy.endpoint).await;
    let clean_pub = Recording::new(&clean_base, &inbox.topic_arn);
    let clean_collector = collector(&clean_base, Duration::from_secs(300));
    let mut expected: BTreeMap<usize, Value> = BTreeMap::new();
    for (s, e) in &events {
        let summary = handle(&clean_collector, &clean_pub, e).await.unwrap();
        assert_eq!(summary.published.len(), 1);
        expected
            .entry(*s)
            .or_insert_with(|| clean_pub.bodies().last().unwrap()["diagnosis"].clone());
    }

    eprintln!("fault-free run: {} events", events.len());
    // WHEN the same events go through a proxy that faults 20% of requests, each invocation
    // retried by "Lambda" up to twice when it fails, in a new container every 60 events
    let proxy = Proxy::start(
        &m.endpoint,
        Plan {
            rate: 0.2,
            ..Plan::default()
        },
        0x5eed,
        false,
    )
    .await;
    // The production retry classification and attempts, without adaptive mode's client-side
    // rate limiter: after throttling answers it paces a client down to half a request per
    // second, the point of it against AWS, but a 20% fault rate (8% throttling) then stretches
    // this run from seconds to six minutes (measured).
    let base = sdk_with(
        &proxy.endpoint,
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(20)),
    )
    .await;
    let publisher = Recording::new(&base, &inbox.topic_arn);
    let started = Instant::now();
    let mut endings: Vec<Ending> = Vec::new();
    // What each event published, over all its invocations.
    let mut messages: Vec<Vec<Value>> = Vec::new();
    let mut failed_invocations = 0;
    let mut retries_metered = 0;
    let mut collector = collector(&base, Duration::from_secs(300));
    for (n, (_, e)) in events.iter().enumerate() {
        if n % 60 == 0 {
            collector = self::collector(&base, Duration::from_secs(300));
        }
        let before = publisher.sent.lock().unwrap().len();
        let mut end = None;
        for _attempt in 0..3 {
            match handle(&collector, &publisher, e).await {
                Ok(s) => {
                    retries_metered += s.published.iter().map(|p| p.retries).sum::<u32>();
                    let got = ending(&s);
                    // THEN each invocation that succeeds ends the event exactly one way
                    assert_eq!(got.len(), 1, "event {n}: {s:?}");
                    end = got.into_iter().next();
                    break;
                }
                Err(err) => {
                    failed_invocations += 1;
                    // A failure names what failed; it is never a verdict.
                    end = Some(Ending::DeadLetter(err.to_string()));
                }
            }
        }
        endings.push(end.expect("one ending"));
        messages.push(publisher.bodies().split_off(before));
    }
    let duration = started.elapsed();

    // THEN every event is accounted for
    assert_eq!(endings.len(), events.len());
    let count = |k: fn(&Ending) -> bool| endings.iter().filter(|e| k(e)).count();
    let published = count(|e| *e == Ending::Published);
    let reported = count(|e| *e == Ending::Reported);
    let dead = count(|e| matches!(e, Ending::DeadLetter(_)));
    eprintln!(
        "{} events with 20% faults: {published} published, {reported} reported, {dead} to the dead-letter queue; {failed_invocations} failed invocations retried; proxy: {} requests, {} faulted; SDK retries in the meters of published diagnoses: {retries_metered}; {duration:?}",
        events.len(),
        proxy.requests(),
        proxy.faults(),
    );
    assert_eq!(published + reported + dead, events.len());
    assert!(proxy.faults() > 0, "the proxy injected faults");
    for (n, ((s, _), (end, sent))) in events.iter().zip(endings.iter().zip(&messages)).enumerate() {
        // AND nothing was published twice, and a dead-lettered event published nothing
        match end {
            Ending::DeadLetter(_) => assert!(sent.is_empty(), "event {n}: {sent:?}"),
            _ => assert_eq!(sent.len(), 1, "event {n} published {} times", sent.len()),
        }
        let Some(d) = sent.first().and_then(|b| b.get("diagnosis")) else {
            continue;
        };
        // AND its diagnosis is the fault-free one, or differs only by MISSING_EVIDENCE with
        // a confidence no higher: no false allowed, no false blocking cause
        let (wb, wall, wv, wc) = facts(&expected[s]);
        let (gb, gall, gv, gc) = facts(d);
        assert_eq!(gb, wb, "event {n}: blocking causes differ");
        assert!(
            gv == wv || gv == "unknown",
            "event {n}: verdict {gv} instead of {wv}"
        );
        assert!(
            wall.iter().all(|c| gall.contains(c)),
            "event {n}: {gall:?} lacks some of {wall:?}"
        );
        let extra: Vec<&String> = gall.iter().filter(|c| !wall.contains(c)).collect();
        assert!(
            extra.iter().all(|c| *c == "MISSING_EVIDENCE"),
            "event {n}: {extra:?}"
        );
        assert!(
            rank(&gc) <= rank(&wc),
            "event {n}: confidence {gc} above {wc}"
        );
    }
    // Retries happened and were counted by the meters.
    assert!(retries_metered > 0);
}

/// How one event ended through `handle_noisy`, over Lambda's attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoisyEnding {
    Alerted,
    Repeat,
    Reported,
    DeadLetter,
}

fn noisy_ending(s: &NoisySummary) -> Vec<NoisyEnding> {
    let mut out = Vec::new();
    out.extend(s.base.published.iter().map(|_| NoisyEnding::Alerted));
    out.extend(
        s.base
            .already_published
            .iter()
            .map(|_| NoisyEnding::Alerted),
    );
    out.extend(s.repeats.iter().map(|_| NoisyEnding::Repeat));
    out.extend(s.base.reported.iter().map(|_| NoisyEnding::Reported));
    out.extend(s.base.error_reported.iter().map(|_| NoisyEnding::Reported));
    out
}

/// Noise control as the Lambda builds it with a table, the window longer than the test and a
/// rate limit the test never reaches (so that nothing is held for a summary).
fn noise_on(base: &SdkConfig, table: &str, topic: &str) -> Noise<DynamoStore> {
    Noise::new(
        NoiseConfig {
            table: Some(table.to_owned()),
            window: 30 * 86_400,
            rate_limit: 100_000,
            ..NoiseConfig::default()
        },
        DynamoStore::new(base, table),
        topic,
        Duration::from_secs(300),
    )
}

/// The alerts (messages carrying a `problem`) among published bodies.
fn alerts(bodies: &[Value]) -> Vec<&Value> {
    bodies
        .iter()
        .filter(|b| b.get("problem").is_some())
        .collect()
}

#[tokio::test]
async fn twenty_percent_faults_with_retries_alert_each_problem_once() {
    let _serial = SERIAL.lock().await;
    let m = Moto::connect("faults_twenty_percent_noisy").await;
    // 2026-03-02T09:14:03Z; each event one second after the previous.
    const T0: u64 = 1_772_442_843;
    // GIVEN four scenarios, and 240 occurrences of their denials (mostly repeats)
    let mut scenarios = Vec::new();
    for cause in [
        Cause::KeyPolicy,
        Cause::BucketPolicy,
        Cause::IamKms,
        Cause::None,
    ] {
        scenarios.push(Kc::build(&m, cause).await);
    }
    let events: Vec<Value> = (0..240)
        .map(|n| occurrence(&scenarios[n % scenarios.len()], n))
        .collect();
    let inbox = Inbox::new(&m).await;

    // The fault-free run through `handle_noisy`, with its own fresh table.
    let clean_proxy = Proxy::start(&m.endpoint, Plan::default(), 1, false).await;
    let clean_base = sdk(&clean_proxy.endpoint).await;
    let clean_pub = Recording::new(&clean_base, &inbox.topic_arn);
    let clean_collector = collector(&clean_base, Duration::from_secs(300));
    let clean_table = crate::noise::table(&m).await;
    let clean_noise = noise_on(&clean_base, &clean_table, &inbox.topic_arn);
    for (n, e) in events.iter().enumerate() {
        let s = handle_noisy(&clean_collector, &clean_pub, &clean_noise, e, T0 + n as u64)
            .await
            .unwrap();
        assert_eq!(noisy_ending(&s).len(), 1, "clean event {n}: {s:?}");
    }
    // Problem id -> its fault-free diagnosis.
    let clean_bodies = clean_pub.bodies();
    let mut expected: BTreeMap<String, Value> = BTreeMap::new();
    for b in alerts(&clean_bodies) {
        let id = b["problem"]["id"].as_str().unwrap().to_owned();
        assert!(
            expected.insert(id, b["diagnosis"].clone()).is_none(),
            "the fault-free run alerted a problem twice"
        );
    }
    assert_eq!(expected.len(), scenarios.len(), "one problem per scenario");

    // WHEN the same events go through a proxy that faults 20% of requests (the SDK clients of
    // the collector, SNS and DynamoDB alike), each failed invocation retried by "Lambda" up to
    // twice, in a new container (collector and noise memo; the table is shared) every 60
    let proxy = Proxy::start(
        &m.endpoint,
        Plan {
            rate: 0.2,
            ..Plan::default()
        },
        0x5eed,
        false,
    )
    .await;
    // Standard retries, not adaptive: see the test above.
    let base = sdk_with(
        &proxy.endpoint,
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(20)),
    )
    .await;
    let table = crate::noise::table(&m).await;
    let publisher = Recording::new(&base, &inbox.topic_arn);
    let started = Instant::now();
    let mut endings: Vec<NoisyEnding> = Vec::new();
    let mut failed_invocations = 0;
    // Events whose alert was published by an attempt that then failed (a later read or write
    // of the table got no answer): the retry counted them as repeats, it did not publish again.
    let mut published_then_failed = 0;
    // Repeats as the successful invocations counted them.
    let mut repeats_counted = 0;
    let mut collector = collector(&base, Duration::from_secs(300));
    let mut noise = noise_on(&base, &table, &inbox.topic_arn);
    for (n, e) in events.iter().enumerate() {
        if n % 60 == 0 {
            collector = self::collector(&base, Duration::from_secs(300));
            noise = noise_on(&base, &table, &inbox.topic_arn);
        }
        let before = publisher.sent.lock().unwrap().len();
        let mut end = NoisyEnding::DeadLetter;
        for _attempt in 0..3 {
            match handle_noisy(&collector, &publisher, &noise, e, T0 + n as u64).await {
                Ok(s) => {
                    repeats_counted += s.repeats.len();
                    let got = noisy_ending(&s);
                    // THEN each invocation that succeeds ends the event exactly one way
                    assert_eq!(got.len(), 1, "event {n}: {s:?}");
                    assert!(s.held.is_empty() && s.muted.is_empty(), "event {n}: {s:?}");
                    end = got[0];
                    break;
                }
                Err(_) => failed_invocations += 1,
            }
        }
        let sent = publisher.bodies().split_off(before);
        let mine = alerts(&sent).len();
        assert!(mine <= 1, "event {n} alerted {mine} times: {sent:?}");
        if mine == 1 && end != NoisyEnding::Alerted {
            assert_ne!(end, NoisyEnding::Reported, "event {n}: {sent:?}");
            published_then_failed += 1;
            end = NoisyEnding::Alerted;
        }
        endings.push(end);
    }
    let duration = started.elapsed();

    let count = |k: NoisyEnding| endings.iter().filter(|e| **e == k).count();
    let (alerted, repeats, reported, dead) = (
        count(NoisyEnding::Alerted),
        count(NoisyEnding::Repeat),
        count(NoisyEnding::Reported),
        count(NoisyEnding::DeadLetter),
    );
    eprintln!(
        "{} events with 20% faults through handle_noisy (DynamoDB store behind the proxy): {alerted} alerted, {repeats} repeats, {reported} reported, {dead} to the dead-letter queue; {failed_invocations} failed invocations retried ({published_then_failed} after their alert was published); proxy: {} requests, {} faulted; {duration:?}",
        events.len(),
        proxy.requests(),
        proxy.faults(),
    );
    // THEN every event is accounted for
    assert_eq!(alerted + repeats + reported + dead, events.len());
    assert!(proxy.faults() > 0, "the proxy injected faults");
    assert!(
        failed_invocations > 0,
        "some invocations needed Lambda's retry"
    );

    // AND each problem of the fault-free run was alerted exactly once, and no other
    let bodies = publisher.bodies();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for b in alerts(&bodies) {
        let id = b["problem"]["id"].as_str().unwrap().to_owned();
        *seen.entry(id.clone()).or_default() += 1;
        let want = expected
            .get(&id)
            .unwrap_or_else(|| panic!("problem {id} is not one of the fault-free run's"));
        // AND its diagnosis is the fault-free one, or differs only by MISSING_EVIDENCE with a
        // confidence no higher
        let (wb, wall, wv, wc) = facts(want);
        let (gb, gall, gv, gc) = facts(&b["diagnosis"]);
        assert_eq!(gb, wb, "problem {id}: blocking causes differ");
        assert!(
            gv == wv || gv == "unknown",
            "problem {id}: verdict {gv} instead of {wv}"
        );
        assert!(
            wall.iter().all(|c| gall.contains(c)),
            "problem {id}: {gall:?} lacks some of {wall:?}"
        );
        let extra: Vec<&String> = gall.iter().filter(|c| !wall.contains(c)).collect();
        assert!(
            extra.iter().all(|c| *c == "MISSING_EVIDENCE"),
            "problem {id}: {extra:?}"
        );
        assert!(
            rank(&gc) <= rank(&wc),
            "problem {id}: confidence {gc} above {wc}"
        );
    }
    assert!(
        seen.values().all(|c| *c == 1),
        "a problem was alerted more than once: {seen:?}"
    );
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    assert_eq!(alerted, expected.len());

    // AND the counts the table kept agree: after the window, one more occurrence of each
    // (fault-free) alerts again carrying the repeats counted. An attempt that counted its
    // repeat and then failed is counted again by its retry, so the table may hold up to one
    // more per failed invocation, never fewer than the invocations reported.
    let after = Recording::new(&clean_base, &inbox.topic_arn);
    let fresh = self::collector(&clean_base, Duration::from_secs(300));
    let later_noise = noise_on(&clean_base, &table, &inbox.topic_arn);
    let later = T0 + 31 * 86_400;
    for (i, kc) in scenarios.iter().enumerate() {
        let s = handle_noisy(
            &fresh,
            &after,
            &later_noise,
            &occurrence(kc, 1000 + i),
            later,
        )
        .await
        .unwrap();
        assert_eq!(s.base.published.len(), 1, "{s:?}");
    }
    let carried: u64 = after
        .bodies()
        .iter()
        .map(|b| b["problem"]["suppressed_repeats"].as_u64().unwrap_or(0))
        .sum();
    eprintln!(
        "repeats carried by the next alerts: {carried}; counted by invocations: {repeats_counted}"
    );
    assert!(
        carried >= repeats_counted as u64
            && carried <= (repeats_counted + failed_invocations) as u64,
        "carried {carried}, counted {repeats_counted}, failed invocations {failed_invocations}"
    );
}

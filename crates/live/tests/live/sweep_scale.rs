//! The measurement behind docs/scaling.md, "The live sweep", run on demand (it is
//! `#[ignore]`d):
//!
//! ```sh
//! scripts/test -p auditor-live --test live sweep_scale -- --ignored --nocapture
//! ```
//!
//! A synthetic organization on the test server — a ring of [`ACCOUNTS`] accounts, each with B
//! buckets under its own customer managed key, every bucket granted by bucket policy and key
//! policy to the previous account's `reader` role, whose identity policy names each of them —
//! is swept through the real queue and the worker, once for each B of [`BUCKETS`]. Every AWS
//! call of the sweep (the member accounts' reads, the state store, the queue, the topic) goes
//! through the test proxy (`proxy.rs`), which counts them per service as the requests were
//! signed: the count is taken outside the code it measures. The queue is drained one message
//! per invocation (the template's default `SweepBatchSize` of 1), so each message's requests,
//! their sequential round trips (`proxy::depth`) and its wall time are its own.
//!
//! It prints, per B, the calls per account by service and operation, and the fitted cost of
//! one more bucket; it asserts only that the counts are consistent (calls grow linearly with
//! the buckets, an account's one key costs four KMS calls whatever B, each evaluation reads
//! three snapshots in the ring), never a time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use auditor_live::aws::{S3StateStore, SnsPublisher, SqsQueue};
use auditor_live::sweep::{self, SweepConfig, Worker};
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use serde_json::{json, Value};

use crate::kc::collector;
use crate::proxy::{by_service, depth, Plan, Proxy};
use crate::support::{account_id, unique, Inbox, Moto, HOME, REGION};
use crate::sweep::encrypt_with;

/// Accounts in the ring.
const ACCOUNTS: usize = 5;
/// Buckets per account, one sweep each.
const BUCKETS: [usize; 3] = [1, 5, 20];

async fn create_bucket(s3: &aws_sdk_s3::Client, name: &str) {
    s3.create_bucket()
        .bucket(name)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::UsWest2)
                .build(),
        )
        .send()
        .await
        .expect("create bucket");
}

/// The ring with `per` buckets per account; returns the accounts.
async fn ring(m: &Moto, per: usize) -> Vec<String> {
    let accounts: Vec<String> = (0..ACCOUNTS).map(|_| account_id()).collect();
    let buckets: Vec<Vec<String>> = (0..ACCOUNTS)
        .map(|_| (0..per).map(|_| unique("s3ka-scale")).collect())
        .collect();
    for i in 0..ACCOUNTS {
        let me = &accounts[i];
        let prev = &accounts[(i + ACCOUNTS - 1) % ACCOUNTS];
        let next = (i + 1) % ACCOUNTS;
        let cfg = m.account(me).await;
        let reader_prev = format!("arn:aws:iam::{prev}:role/reader");
        let key_arn = aws_sdk_kms::Client::new(&cfg)
            .create_key()
            .policy(
                json!({"Version": "2012-10-17", "Statement": [
                    {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{me}:root")}, "Action": "kms:*", "Resource": "*"},
                    {"Sid": "ReaderDecrypt", "Effect": "Allow", "Principal": {"AWS": reader_prev}, "Action": "kms:Decrypt", "Resource": "*"}]})
                .to_string(),
            )
            .send()
            .await
            .expect("create key")
            .key_metadata()
            .and_then(|k| k.arn())
            .expect("key arn")
            .to_owned();
        let s3 = Moto::s3(&cfg);
        for bucket in &buckets[i] {
            create_bucket(&s3, bucket).await;
            s3.put_bucket_policy()
                .bucket(bucket)
                .policy(
                    json!({"Version": "2012-10-17", "Statement": [{"Sid": "RingRead", "Effect": "Allow",
                        "Principal": {"AWS": reader_prev}, "Action": "s3:GetObject",
                        "Resource": format!("arn:aws:s3:::{bucket}/*")}]})
                    .to_string(),
                )
                .send()
                .await
                .expect("bucket policy");
            encrypt_with(&s3, bucket, &key_arn).await;
        }
        let iam = aws_sdk_iam::Client::new(&cfg);
        iam.create_role()
            .role_name("reader")
            .assume_role_policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
                .to_string(),
            )
            .send()
            .await
            .expect("create role");
        let objects: Vec<String> = buckets[next]
            .iter()
            .map(|b| format!("arn:aws:s3:::{b}/*"))
            .collect();
        iam.put_role_policy()
            .role_name("reader")
            .policy_name("read-next")
            .policy_document(
                json!({"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": objects},
                    {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": format!("arn:aws:kms:{REGION}:{}:key/*", accounts[next])}]})
                .to_string(),
            )
            .send()
            .await
            .expect("role policy");
    }
    accounts
}

/// What the messages of one phase did, summed.
#[derive(Default, Debug)]
struct PhaseTotals {
    messages: usize,
    wall: Duration,
    depth_max: usize,
    depth_sum: usize,
}

/// One sweep of the ring with `per` buckets per account: calls per service and operation
/// (summed over the sweep), and the collect and evaluate phases' totals.
struct Measured {
    calls: BTreeMap<String, (usize, BTreeMap<String, usize>)>,
    collect: PhaseTotals,
    evaluate: PhaseTotals,
    wall: Duration,
    /// SQS messages received and deleted by the event source (the test's driver stands in
    /// for it, outside the proxy).
    delivered: usize,
    /// State store reads of account snapshots (`accounts/<id>.json`).
    snapshot_reads: usize,
}

async fn measure(m: &Moto, per: usize, n: u32) -> Measured {
    let accounts = ring(m, per).await;
    let proxy = Proxy::start(&m.endpoint, Plan::default(), 1, true).await;
    let proxied = Moto {
        endpoint: proxy.endpoint.clone(),
        base: m.base.to_builder().endpoint_url(&proxy.endpoint).build(),
    };
    let inbox = Inbox::new(m).await;
    let publisher = SnsPublisher::new(&proxied.base, &inbox.topic_arn);
    let state_bucket = unique("s3ka-state");
    create_bucket(&Moto::s3(&m.base), &state_bucket).await;
    let store = S3StateStore::new(&proxied.base, &state_bucket, true);
    let sqs = aws_sdk_sqs::Client::new(&m.base);
    let url = sqs
        .create_queue()
        .queue_name(unique("s3ka-scale"))
        .send()
        .await
        .expect("queue")
        .queue_url()
        .expect("url")
        .to_owned();
    let queue = SqsQueue::new(&proxied.base, &url);
    let config = SweepConfig {
        queue_url: Some(url.clone()),
        accounts: accounts.clone(),
        organizations: false,
        max_receive: 3,
    };
    let collector = collector(&proxied, Duration::from_secs(300));
    let worker = Worker {
        collector: &collector,
        publisher: &publisher,
        queue: &queue,
        store: &store,
        config: &config,
        region: REGION,
    };
    let event = json!({"version": "0", "id": format!("5ca1e{n:03}-aaaa-bbbb-cccc-0123456789ab"),
        "detail-type": "Scheduled Event", "source": "aws.events", "account": HOME,
        "time": format!("2026-12-03T18:{n:02}:00Z"), "region": REGION,
        "resources": [format!("arn:aws:events:{REGION}:{HOME}:rule/s3ka-sweep")], "detail": {}});
    let (id, time) = sweep::sweep_start(&event).expect("a sweep start");
    proxy.take_log();
    let started = Instant::now();
    let mut log = Vec::new();
    sweep::plan(
        collector.accounts(),
        HOME,
        &queue,
        &store,
        &config,
        (&id, &time),
    )
    .await
    .expect("planned");
    log.extend(proxy.take_log());
    let (mut collect, mut evaluate) = (PhaseTotals::default(), PhaseTotals::default());
    let mut delivered = 0;
    let mut idle = 0;
    while idle < 2 {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(1)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let Some(msg) = out.messages().first() else {
            idle += 1;
            continue;
        };
        idle = 0;
        delivered += 1;
        let body: Value = serde_json::from_str(msg.body().expect("body")).expect("sweep message");
        let record = json!({"messageId": msg.message_id(), "receiptHandle": msg.receipt_handle(),
            "body": msg.body(), "attributes": {"ApproximateReceiveCount": "1"},
            "eventSource": "aws:sqs", "awsRegion": REGION});
        let t = Instant::now();
        let outcome = worker.handle(&json!({ "Records": [record] })).await;
        let wall = t.elapsed();
        assert!(outcome.batch_item_failures.is_empty(), "{:?}", outcome.done);
        let seen = proxy.take_log();
        let phase = if body["phase"] == "collect" {
            &mut collect
        } else {
            &mut evaluate
        };
        phase.messages += 1;
        phase.wall += wall;
        let d = depth(&seen);
        phase.depth_max = phase.depth_max.max(d);
        phase.depth_sum += d;
        log.extend(seen);
        sqs.delete_message()
            .queue_url(&url)
            .receipt_handle(msg.receipt_handle().expect("handle"))
            .send()
            .await
            .expect("delete");
    }
    let wall = started.elapsed();
    assert_eq!(
        (collect.messages, evaluate.messages),
        (ACCOUNTS, ACCOUNTS),
        "every account collected and evaluated"
    );
    let snapshot_reads = log
        .iter()
        .filter(|s| {
            s.op.starts_with(&format!("s3:GET /{state_bucket}/accounts/"))
        })
        .count();
    Measured {
        snapshot_reads,
        calls: by_service(&log, &state_bucket),
        collect,
        evaluate,
        wall,
        delivered,
    }
}

fn per_account(m: &Measured, service: &str) -> f64 {
    m.calls.get(service).map_or(0, |c| c.0) as f64 / ACCOUNTS as f64
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement, run on demand: see docs/scaling.md, The live sweep"]
async fn sweep_scale() {
    let m = Moto::connect("sweep_scale").await;
    let mut runs = Vec::new();
    for (n, per) in BUCKETS.iter().enumerate() {
        runs.push((*per, measure(&m, *per, n as u32 + 10).await));
    }
    let services: Vec<String> = {
        let mut s: Vec<String> = runs
            .iter()
            .flat_map(|(_, r)| r.calls.keys().cloned())
            .collect();
        s.sort();
        s.dedup();
        s
    };
    println!(
        "calls per account by service, {ACCOUNTS}-account ring (each run its own organization):"
    );
    print!("| service |");
    for (per, _) in &runs {
        print!(" B = {per} |");
    }
    println!(" per extra bucket | per account at B = 0 |");
    let (first, last) = (&runs[0], &runs[runs.len() - 1]);
    let span = (last.0 - first.0) as f64;
    let mut fitted = BTreeMap::new();
    for s in &services {
        print!("| {s} |");
        for (_, r) in &runs {
            print!(" {:.1} |", per_account(r, s));
        }
        let slope = (per_account(&last.1, s) - per_account(&first.1, s)) / span;
        let base = per_account(&first.1, s) - slope * first.0 as f64;
        println!(" {slope:.2} | {base:.2} |");
        fitted.insert(s.clone(), (slope, base));
    }
    for (per, r) in &runs {
        println!("B = {per}: operations per sweep of {ACCOUNTS} accounts:");
        for (s, (n, ops)) in &r.calls {
            println!("  {s} {n}: {ops:?}");
        }
        println!(
            "B = {per}: sweep wall {:.2} s; collect {:.0} ms per account (round trips {:.1} mean, {} max); evaluate {:.0} ms per account (round trips {:.1} mean, {} max); {} queue deliveries",
            r.wall.as_secs_f64(),
            r.collect.wall.as_secs_f64() * 1000.0 / r.collect.messages as f64,
            r.collect.depth_sum as f64 / r.collect.messages as f64,
            r.collect.depth_max,
            r.evaluate.wall.as_secs_f64() * 1000.0 / r.evaluate.messages as f64,
            r.evaluate.depth_sum as f64 / r.evaluate.messages as f64,
            r.evaluate.depth_max,
            r.delivered
        );
    }
    // Consistency, not speed: the middle run lies on the line through the ends for every
    // service (each bucket costs the same number of calls), a bucket costs member-account S3
    // calls, and every evaluation read three snapshots (itself and its two ring neighbours).
    let (mid_per, mid) = &runs[1];
    // KMS: one key per account, read once (four calls) however many buckets use it — the
    // buckets read side by side wait for the first read of their key.
    for (per, r) in &runs {
        assert_eq!(
            per_account(r, "kms"),
            4.0,
            "B = {per}: {:?}",
            r.calls.get("kms")
        );
    }
    for s in &services {
        let (slope, base) = fitted[s];
        let predicted = base + slope * *mid_per as f64;
        let got = per_account(mid, s);
        assert!(
            (predicted - got).abs() < 1e-9,
            "{s}: {got} calls per account at B = {mid_per}, the line through B = {} and B = {} gives {predicted}",
            first.0,
            last.0
        );
    }
    assert!(fitted["s3"].0 >= 1.0, "{fitted:?}");
    for (per, r) in &runs {
        // Each snapshot read once by its collect's conditional write, then by three
        // evaluations.
        assert_eq!(r.snapshot_reads, ACCOUNTS + 3 * ACCOUNTS, "B = {per}");
    }
}

//! The organization sweep against the test server: a simulated organization of twenty
//! accounts in a ring (account i's role `reader` reads account i+1's bucket, through i+1's
//! bucket policy, key policy and its own identity policies), swept through a real SQS queue
//! and the worker, with the messages delivered in the SQS event shape Lambda uses.
//!
//! What it holds the sweep to (issue 11, "Done when"):
//! * every account's snapshot is stored, and the pure evaluation of the stored snapshots
//!   (what `sweep --snapshot DIR` reads) gives exactly the verdicts the workers recorded;
//! * the first sweep publishes one summary per account with a denied path (four planted key
//!   policies that leave the reader out) and a completion message;
//! * a second sweep with nothing changed publishes only the completion message;
//! * one injected break (a bucket policy deleted) publishes exactly one summary, naming the
//!   broken path;
//! * one account's default encryption switched to a key alias publishes exactly one summary,
//!   with the new advisory and no path change, and the next sweep nothing;
//! * each evaluation reads only the stored snapshots its account's paths involve: counted at
//!   a proxy in front of the state store, three per account in the ring (itself and its two
//!   neighbours), not twenty.
//!
//! moto accepts any `AssumeRole` (trust policies and the ExternalId are not checked) and does
//! not enforce the policies; the verdicts here are the auditor's own evaluation of what it read.

use std::collections::BTreeMap;
use std::time::Duration;

use auditor::diagnose::Verdict;
use auditor::impact::org::compose;
use auditor::impact::state::{evaluate, PathIndex, PathVerdict};
use auditor::snapshot::Snapshot;
use auditor_live::aws::{AwsAccounts, RoleSpec, S3StateStore, SnsPublisher, SqsQueue};
use auditor_live::cache::Cache;
use auditor_live::collect::{Collector, Options};
use auditor_live::ports::{StateList, StateStore};
use auditor_live::sweep::{self, Done, SweepConfig, Worker};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use serde_json::{json, Value};

use crate::kc::collector;
use crate::proxy::{Plan, Proxy};
use crate::support::{account_id, unique, Inbox, Moto, EXTERNAL_ID, HOME, REGION, ROLE};

const ACCOUNTS: usize = 20;

/// Accounts whose key policy leaves the previous account's reader out: a denied path each.
fn planted(i: usize) -> bool {
    i.is_multiple_of(5)
}

struct Org {
    accounts: Vec<String>,
    buckets: Vec<String>,
}

async fn build(m: &Moto) -> Org {
    let accounts: Vec<String> = (0..ACCOUNTS).map(|_| account_id()).collect();
    let buckets: Vec<String> = (0..ACCOUNTS).map(|_| unique("s3ka-org")).collect();
    for i in 0..ACCOUNTS {
        let me = &accounts[i];
        let prev = &accounts[(i + ACCOUNTS - 1) % ACCOUNTS];
        let next = (i + 1) % ACCOUNTS;
        let cfg = m.account(me).await;
        let kms = aws_sdk_kms::Client::new(&cfg);
        let s3 = Moto::s3(&cfg);
        let iam = aws_sdk_iam::Client::new(&cfg);
        let reader_prev = format!("arn:aws:iam::{prev}:role/reader");
        let mut statements = vec![json!({"Sid": "Admin", "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{me}:root")}, "Action": "kms:*", "Resource": "*"})];
        if !planted(i) {
            statements.push(json!({"Sid": "ReaderDecrypt", "Effect": "Allow",
                "Principal": {"AWS": reader_prev}, "Action": "kms:Decrypt", "Resource": "*"}));
        }
        let key_arn = kms
            .create_key()
            .policy(json!({"Version": "2012-10-17", "Statement": statements}).to_string())
            .send()
            .await
            .expect("create key")
            .key_metadata()
            .and_then(|k| k.arn())
            .expect("key arn")
            .to_owned();
        let bucket = &buckets[i];
        s3.create_bucket()
            .bucket(bucket)
            .create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::UsWest2)
                    .build(),
            )
            .send()
            .await
            .expect("create bucket");
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
        // The reader of this account reads the next account's bucket.
        let next_bucket = &buckets[next];
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
        iam.put_role_policy()
            .role_name("reader")
            .policy_name("read-next")
            .policy_document(
                json!({"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{next_bucket}/*")},
                    {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": format!("arn:aws:kms:{REGION}:{}:key/*", accounts[next])}]})
                .to_string(),
            )
            .send()
            .await
            .expect("role policy");
    }
    Org { accounts, buckets }
}

/// Every message on `queue` delivered to the worker in batches of five, as Lambda's event
/// source mapping would, until the queue stays empty; returns what the messages did.
async fn drain<W: Fn(Value) -> F, F: std::future::Future<Output = sweep::BatchOutcome>>(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    allow_failures: bool,
    work: W,
) -> Vec<Done> {
    let mut done = Vec::new();
    let mut idle = 0;
    while idle < 2 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(5)
            .wait_time_seconds(1)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive");
        let messages = out.messages();
        if messages.is_empty() {
            idle += 1;
            continue;
        }
        idle = 0;
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let count = m
                    .attributes()
                    .and_then(|a| {
                        a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                    })
                    .cloned()
                    .unwrap_or_else(|| "1".into());
                json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(),
                    "body": m.body(), "attributes": {"ApproximateReceiveCount": count},
                    "eventSource": "aws:sqs", "awsRegion": REGION})
            })
            .collect();
        let outcome = work(json!({ "Records": records })).await;
        if !allow_failures {
            assert!(
                outcome.batch_item_failures.is_empty(),
                "failed messages: {:?}",
                outcome.done
            );
        }
        // Failed messages are deleted too: with the test's maxReceiveCount of 1, SQS would
        // move them to the dead-letter queue instead of delivering them again.
        for m in messages {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().expect("handle"))
                .send()
                .await
                .expect("delete");
        }
        done.extend(outcome.done);
    }
    done
}

/// Every published message on the inbox, until it stays empty.
async fn published(inbox: &Inbox) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(m) = inbox.try_next(3).await {
        let body: Value =
            serde_json::from_str(m["Message"].as_str().expect("message")).expect("body");
        out.push(body);
    }
    out
}

fn schedule_event(n: u32) -> Value {
    json!({"version": "0", "id": format!("5f3c{n:04}-aaaa-bbbb-cccc-0123456789ab"),
        "detail-type": "Scheduled Event", "source": "aws.events", "account": HOME,
        "time": format!("2026-12-03T15:{n:02}:00Z"), "region": REGION,
        "resources": [format!("arn:aws:events:{REGION}:{HOME}:rule/s3ka-sweep")], "detail": {}})
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organization_sweep_stores_every_account_and_publishes_only_what_changed() {
    let m = Moto::connect("sweep").await;
    let org = build(&m).await;
    let inbox = Inbox::new(&m).await;
    let publisher = SnsPublisher::new(&m.base, &inbox.topic_arn);
    let state_bucket = unique("s3ka-state");
    Moto::s3(&m.base)
        .create_bucket()
        .bucket(&state_bucket)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::UsWest2)
                .build(),
        )
        .send()
        .await
        .expect("state bucket");
    // The state store behind a proxy: its reads are counted from outside the worker.
    let proxy = Proxy::start(&m.endpoint, Plan::default(), 1, true).await;
    let proxied = m.base.to_builder().endpoint_url(&proxy.endpoint).build();
    let store = S3StateStore::new(&proxied, &state_bucket, true);
    let snapshot_reads = |log: &[crate::proxy::Seen]| {
        let prefix = format!("s3:GET /{state_bucket}/accounts/");
        log.iter().filter(|s| s.op.starts_with(&prefix)).count()
    };
    let sqs = aws_sdk_sqs::Client::new(&m.base);
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("s3ka-sweep"))
        .send()
        .await
        .expect("queue")
        .queue_url()
        .expect("url")
        .to_owned();
    let queue = SqsQueue::new(&m.base, &queue_url);
    let config = SweepConfig {
        queue_url: Some(queue_url.clone()),
        accounts: org.accounts.clone(),
        organizations: false,
        max_receive: 3,
    };
    let collector = collector(&m, Duration::from_secs(300));
    let worker = Worker {
        collector: &collector,
        publisher: &publisher,
        queue: &queue,
        store: &store,
        config: &config,
        region: REGION,
    };
    let run = |n: u32| {
        let (worker, sqs, queue_url, config) = (&worker, &sqs, &queue_url, &config);
        let collector = &collector;
        let (queue, store) = (&queue, &store);
        async move {
            let (id, time) = sweep::sweep_start(&schedule_event(n)).expect("a sweep start");
            let planned = sweep::plan(
                collector.accounts(),
                HOME,
                queue,
                store,
                config,
                (&id, &time),
            )
            .await
            .expect("planned");
            assert_eq!(planned.enqueued, ACCOUNTS, "{planned:?}");
            let done = drain(
                sqs,
                queue_url,
                false,
                |e| async move { worker.handle(&e).await },
            )
            .await;
            (id, done)
        }
    };

    // First sweep: every account stored; one summary per planted denial.
    proxy.take_log();
    let (first, done) = run(1).await;
    // Each account's snapshot is read once by its collect (the conditional write reads it
    // first) and once by each evaluation that involves it: in the ring, its own and its two
    // neighbours'. Every evaluation reading every stored snapshot would be 20 + 20 x 20.
    let reads = snapshot_reads(&proxy.take_log());
    assert_eq!(
        reads,
        ACCOUNTS + 3 * ACCOUNTS,
        "snapshot reads of the first sweep"
    );
    let collected = done
        .iter()
        .filter(|d| matches!(d, Done::Collected { .. }))
        .count();
    let evaluated = done
        .iter()
        .filter(|d| matches!(d, Done::Evaluated { .. }))
        .count();
    assert_eq!((collected, evaluated), (ACCOUNTS, ACCOUNTS), "{done:?}");
    let messages = published(&inbox).await;
    let summaries: Vec<&Value> = messages.iter().filter(|b| b["kind"] == "sweep").collect();
    let completions: Vec<&Value> = messages
        .iter()
        .filter(|b| b["kind"] == "sweep_complete")
        .collect();
    let mut summarised: Vec<String> = summaries
        .iter()
        .map(|b| b["account"].as_str().unwrap().to_owned())
        .collect();
    summarised.sort();
    let mut expected: Vec<String> = (0..ACCOUNTS)
        .filter(|i| planted(*i))
        .map(|i| org.accounts[i].clone())
        .collect();
    expected.sort();
    assert_eq!(summarised, expected, "{messages:#?}");
    for s in &summaries {
        let text = s["text"].as_array().unwrap();
        assert!(
            text.iter()
                .any(|l| l.as_str().unwrap().starts_with("DENIED reader")),
            "{s:#}"
        );
        assert!(
            s["finding_codes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == "KEY_POLICY_NO_ALLOW"),
            "{s:#}"
        );
    }
    assert_eq!(completions.len(), 1, "{messages:#?}");
    let totals = &completions[0]["sweep"];
    assert_eq!(totals["planned"], ACCOUNTS, "{totals:#}");
    assert_eq!(totals["swept"], ACCOUNTS, "{totals:#}");
    assert_eq!(totals["failed"], json!([]), "{totals:#}");
    assert_eq!(totals["denied"], expected.len(), "{totals:#}");
    assert!(first.starts_with("20261203T150100Z-5f3c0001"), "{first}");

    // The stored snapshots reproduce the recorded verdicts offline.
    let mut docs = BTreeMap::new();
    let mut recorded: BTreeMap<(String, String, String), PathVerdict> = BTreeMap::new();
    for a in &org.accounts {
        let text = store
            .get(&format!("accounts/{a}.json"))
            .await
            .unwrap()
            .expect("snapshot stored")
            .body;
        let snap = Snapshot::from_text(&text).expect("stored snapshot reads back");
        assert!(
            snap.account(a)
                .is_some_and(|x| !x.s3.is_empty() && x.iam.is_some()),
            "{a}"
        );
        docs.insert(a.clone(), snap);
        let index = store
            .get(&format!("paths/{a}.json"))
            .await
            .unwrap()
            .expect("index stored")
            .body;
        for p in PathIndex::parse(&index, a).unwrap().paths {
            recorded.insert(p.id(), p);
        }
    }
    let offline: BTreeMap<_, _> = evaluate(&compose(&docs))
        .into_iter()
        .map(|p| (p.id(), p))
        .collect();
    assert_eq!(offline.len(), recorded.len());
    for (id, p) in &offline {
        let r = &recorded[id];
        assert_eq!((r.verdict, &r.blocking), (p.verdict, &p.blocking), "{id:?}");
    }
    // The offline sweep (what `s3-kms-auditor sweep --snapshot DIR` runs on the downloaded
    // `accounts/` directory) checks the paths the bucket policies intend: each has the verdict
    // and blocking codes the workers recorded.
    let swept = auditor::sweep::sweep(&compose(&docs));
    assert_eq!(swept.paths.len(), ACCOUNTS, "{:?}", swept.summary);
    for p in &swept.paths {
        let id = (p.principal.clone(), p.bucket.clone(), p.object.clone());
        let r = recorded
            .get(&id)
            .unwrap_or_else(|| panic!("not recorded: {id:?}"));
        assert_eq!((r.verdict, &r.blocking), (p.verdict, &p.blocking), "{id:?}");
    }
    let denied = offline
        .values()
        .filter(|p| p.verdict == Verdict::Denied)
        .count();
    assert_eq!(denied, expected.len());
    assert!(offline.len() >= ACCOUNTS, "{}", offline.len());
    let marks = store
        .list(&format!("sweeps/{first}/collected/"))
        .await
        .unwrap();
    assert_eq!(marks.len(), ACCOUNTS);

    // Second sweep, nothing changed: only the completion.
    let (_, _) = run(2).await;
    let messages = published(&inbox).await;
    let kinds: Vec<&str> = messages
        .iter()
        .map(|b| b["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["sweep_complete"], "{messages:#?}");
    assert_eq!(messages[0]["sweep"]["broken"], 0);

    // One injected break: account 3's bucket policy deleted.
    let cfg = m.account(&org.accounts[3]).await;
    Moto::s3(&cfg)
        .delete_bucket_policy()
        .bucket(&org.buckets[3])
        .send()
        .await
        .expect("delete bucket policy");
    let (_, _) = run(3).await;
    let messages = published(&inbox).await;
    let summaries: Vec<&Value> = messages.iter().filter(|b| b["kind"] == "sweep").collect();
    assert_eq!(summaries.len(), 1, "{messages:#?}");
    let s = summaries[0];
    assert_eq!(s["account"], org.accounts[3].as_str());
    assert_eq!(s["changes"], json!(["broken"]), "{s:#}");
    assert!(s["subject"].as_str().unwrap().contains("BROKEN"), "{s:#}");
    let broken = &s["account_sweep"]["changes"][0]["path"];
    assert_eq!(
        broken["principal"],
        format!("arn:aws:iam::{}:role/reader", org.accounts[2])
    );
    assert_eq!(broken["bucket"], org.buckets[3].as_str());
    let completions: Vec<&Value> = messages
        .iter()
        .filter(|b| b["kind"] == "sweep_complete")
        .collect();
    assert_eq!(completions.len(), 1);
    assert_eq!(completions[0]["sweep"]["broken"], 1);

    // A new advisory: account 7's default encryption names its key by an alias. Readers in
    // account 6 still read (the alias resolves in the bucket's account), so no path changes;
    // the summary tells the advisory, once.
    let cfg = m.account(&org.accounts[7]).await;
    let kms = aws_sdk_kms::Client::new(&cfg);
    let key_id = kms
        .list_keys()
        .send()
        .await
        .expect("list keys")
        .keys()
        .first()
        .and_then(|k| k.key_id())
        .expect("account 7's key")
        .to_owned();
    kms.create_alias()
        .alias_name("alias/ring-data")
        .target_key_id(&key_id)
        .send()
        .await
        .expect("alias");
    encrypt_with(&Moto::s3(&cfg), &org.buckets[7], "alias/ring-data").await;
    let (_, _) = run(4).await;
    let messages = published(&inbox).await;
    let summaries: Vec<&Value> = messages.iter().filter(|b| b["kind"] == "sweep").collect();
    assert_eq!(summaries.len(), 1, "{messages:#?}");
    let s = summaries[0];
    assert_eq!(s["account"], org.accounts[7].as_str());
    assert_eq!(s["changes"], json!(["advisory"]), "{s:#}");
    assert_eq!(
        s["account_sweep"]["advisories"],
        json!([{"code": "DEFAULT_ENCRYPTION_ALIAS", "bucket": org.buckets[7], "paths": 1}]),
        "{s:#}"
    );
    assert!(
        s["subject"]
            .as_str()
            .unwrap()
            .starts_with("SWEEP ADVISORY 1"),
        "{s:#}"
    );
    // And the next sweep, nothing changed, tells nothing again.
    let (_, _) = run(5).await;
    let messages = published(&inbox).await;
    let kinds: Vec<&str> = messages
        .iter()
        .map(|b| b["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["sweep_complete"], "{messages:#?}");
}

/// Sets `bucket`'s default encryption to SSE-KMS with `key` (an ARN or an alias).
pub(crate) async fn encrypt_with(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) {
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
                                .expect("default"),
                        )
                        .build(),
                )
                .build()
                .expect("encryption"),
        )
        .send()
        .await
        .expect("bucket encryption");
}

/// The sweep's plumbing in the home account: a topic read back through a queue, the state
/// bucket, the sweep queue.
async fn plumbing(m: &Moto) -> (Inbox, S3StateStore, aws_sdk_sqs::Client, String) {
    let inbox = Inbox::new(m).await;
    let state_bucket = unique("s3ka-state");
    Moto::s3(&m.base)
        .create_bucket()
        .bucket(&state_bucket)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::UsWest2)
                .build(),
        )
        .send()
        .await
        .expect("state bucket");
    let store = S3StateStore::new(&m.base, &state_bucket, true);
    let sqs = aws_sdk_sqs::Client::new(&m.base);
    let url = sqs
        .create_queue()
        .queue_name(unique("s3ka-sweep"))
        .send()
        .await
        .expect("queue")
        .queue_url()
        .expect("url")
        .to_owned();
    (inbox, store, sqs, url)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_planner_lists_the_organization_and_a_failed_account_is_named_not_lost() {
    let m = Moto::connect("sweep planner").await;
    let (inbox, store, sqs, url) = plumbing(&m).await;
    let publisher = SnsPublisher::new(&m.base, &inbox.topic_arn);
    let queue = SqsQueue::new(&m.base, &url);
    let collector = collector(&m, Duration::from_secs(300));

    // Organizations mode: the planner enqueues exactly the ACTIVE accounts ListAccounts gives
    // (the test server keeps one organization per management account across tests).
    let org = aws_sdk_organizations::Client::new(&m.base);
    let _ = org
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await;
    for n in 0..2 {
        org.create_account()
            .account_name(unique("member"))
            .email(format!("{}@example.com", unique(&format!("m{n}"))))
            .send()
            .await
            .expect("create account");
    }
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = org
            .list_accounts()
            .set_next_token(token)
            .send()
            .await
            .expect("list accounts");
        listed.extend(
            page.accounts()
                .iter()
                .filter_map(|a| a.id().map(str::to_owned)),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert!(listed.len() >= 3, "{listed:?}");
    let config = SweepConfig {
        queue_url: Some(url.clone()),
        accounts: Vec::new(),
        organizations: true,
        max_receive: 1,
    };
    let (id, time) = sweep::sweep_start(&schedule_event(40)).expect("sweep start");
    let planned = sweep::plan(
        collector.accounts(),
        HOME,
        &queue,
        &store,
        &config,
        (&id, &time),
    )
    .await
    .expect("planned");
    assert_eq!(planned.enqueued, listed.len(), "{planned:?}");
    // Planning the same schedule event again (Lambda's retry) enqueues nothing.
    let again = sweep::plan(
        collector.accounts(),
        HOME,
        &queue,
        &store,
        &config,
        (&id, &time),
    )
    .await
    .expect("planned again");
    assert_eq!(again.enqueued, 0);
    let mut bodies = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        if out.messages().is_empty() {
            break;
        }
        for msg in out.messages() {
            let body: Value = serde_json::from_str(msg.body().unwrap()).unwrap();
            bodies.push(body["account"].as_str().unwrap().to_owned());
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(msg.receipt_handle().unwrap())
                .send()
                .await
                .expect("delete");
        }
    }
    bodies.sort();
    listed.sort();
    assert_eq!(bodies, listed);

    // A configured list with an account that cannot be reached: its worker's AWS calls get
    // no answer (a collector pointed at a closed port stands in for an unreachable member
    // role). It fails on its last receive, the sweep still completes, and the completion
    // message names it.
    let (good, bad) = (account_id(), account_id());
    let config = SweepConfig {
        queue_url: Some(url.clone()),
        accounts: vec![good.clone(), bad.clone()],
        organizations: false,
        max_receive: 1,
    };
    let worker = Worker {
        collector: &collector,
        publisher: &publisher,
        queue: &queue,
        store: &store,
        config: &config,
        region: REGION,
    };
    let dead = m
        .base
        .to_builder()
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let unreachable = AwsAccounts::new(
        dead,
        Some(RoleSpec {
            name: ROLE.into(),
            external_id: Some(EXTERNAL_ID.into()),
            session_name: "s3-kms-auditor".into(),
        }),
        true,
    );
    unreachable.set_home_account(HOME);
    let unreachable = Collector::new(unreachable, Cache::new(Duration::ZERO), Options::default());
    let bad_worker = Worker {
        collector: &unreachable,
        ..worker
    };
    let (id, time) = sweep::sweep_start(&schedule_event(41)).expect("sweep start");
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
    // And a message that is not the sweep's: reported failed, never dropped silently.
    sqs.send_message()
        .queue_url(&url)
        .message_body("{\"hello\": 1}")
        .send()
        .await
        .expect("send stray");
    let done = drain(&sqs, &url, true, |e| {
        let (worker, bad_worker, bad) = (&worker, &bad_worker, &bad);
        async move {
            // One record at a time, each to the worker that can (or cannot) reach its account.
            let mut out = sweep::BatchOutcome::default();
            for r in e["Records"].as_array().unwrap() {
                let w = if r["body"].as_str().unwrap().contains(bad.as_str()) {
                    bad_worker
                } else {
                    worker
                };
                let one = w.handle(&json!({ "Records": [r] })).await;
                out.batch_item_failures.extend(one.batch_item_failures);
                out.done.extend(one.done);
            }
            out
        }
    })
    .await;
    let failed: Vec<&str> = done
        .iter()
        .filter_map(|d| match d {
            Done::Failed { error, .. } => Some(error.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 2, "{done:?}");
    assert!(failed.contains(&"not a sweep message"), "{failed:?}");
    let messages = published(&inbox).await;
    let completion = messages
        .iter()
        .find(|b| b["kind"] == "sweep_complete")
        .unwrap_or_else(|| panic!("no completion: {messages:#?}"));
    let totals = &completion["sweep"];
    assert_eq!(totals["planned"], 2, "{totals:#}");
    assert_eq!(totals["swept"], 1, "{totals:#}");
    assert_eq!(totals["failed"][0][0], bad.as_str(), "{totals:#}");
    assert!(
        totals["failed"][0][1]
            .as_str()
            .unwrap()
            .starts_with("collect phase"),
        "{totals:#}"
    );
    assert!(
        completion["subject"].as_str().unwrap().contains("1 failed"),
        "{completion:#}"
    );
}

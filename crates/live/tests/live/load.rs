//! The load benchmark (issue 12, point 8): not a timed test, run by hand.
//!
//! ```sh
//! scripts/test -p auditor-live --test live load_burst -- --ignored --nocapture
//! ```
//!
//! It drives the handler, in one "container" (one collector, one cache, as the Lambda keeps
//! them), with a burst of AccessDenied events against the test server through the proxy
//! (no faults; it counts the AWS calls from outside): three scenarios, two objects each (one
//! of them missing), every event a new occurrence (its own ids), so most are repeats of six
//! denials. `S3KA_LOAD_EVENTS` sets the burst size (default 10,000). It reports events per
//! second, AWS calls per event, messages published, and the process's memory: its peak
//! (`VmHWM`) and its resident size before, after one burst and after a second one, which must
//! not have grown (nothing accumulates per event).

use std::time::{Duration, Instant};

use auditor_live::aws::SnsPublisher;
use auditor_live::handler::handle;
use serde_json::Value;

use crate::faults::{collector, sdk};
use crate::kc::{Cause, Kc};
use crate::proxy::{Plan, Proxy};
use crate::support::{unique, Moto};

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a memory field")
}

#[tokio::test]
#[ignore = "a benchmark: run by hand (see the module documentation)"]
async fn load_burst_of_denials() {
    let m = Moto::connect("load").await;
    let n: usize = std::env::var("S3KA_LOAD_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut scenarios = Vec::new();
    for cause in [Cause::KeyPolicy, Cause::IamKms, Cause::None] {
        scenarios.push(Kc::build(&m, cause).await);
    }
    // A topic with no subscriber: the publish is the function's cost, not the delivery's.
    let topic = aws_sdk_sns::Client::new(&m.base)
        .create_topic()
        .name(unique("s3ka-load"))
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    let proxy = Proxy::start(&m.endpoint, Plan::default(), 1, false).await;
    let base = sdk(&proxy.endpoint).await;
    let publisher = SnsPublisher::new(&base, &topic);
    let collector = collector(&base, Duration::from_secs(300));
    let event = |i: usize| -> Value {
        let kc = &scenarios[i % scenarios.len()];
        let mut e = kc.event();
        e["id"] = Value::from(format!("load-envelope-{i}"));
        e["detail"]["eventID"] = Value::from(format!("load-record-{i}"));
        if (i / scenarios.len()) % 2 == 1 {
            e["detail"]["requestParameters"]["key"] = Value::from("reports/missing.csv");
        }
        e
    };
    // Warm-up: the cold diagnoses, and the process's steady state.
    for i in 0..60 {
        handle(&collector, &publisher, &event(i)).await.unwrap();
    }
    let rss_before = status_kib("VmRSS:");
    let mut rss_after = Vec::new();
    for round in 0..2 {
        // The second burst, a fifth of the first, only shows whether memory keeps growing.
        let n = if round == 0 { n } else { n / 5 };
        let requests = proxy.requests();
        let started = Instant::now();
        let mut published = 0usize;
        for i in 0..n {
            let s = handle(&collector, &publisher, &event(60 + round * 1_000_000 + i))
                .await
                .unwrap();
            published += s.published.len();
            if (i + 1) % 1000 == 0 {
                eprintln!(
                    "  {} events, {:.1?}, {} calls, VmRSS {:.1} MiB",
                    i + 1,
                    started.elapsed(),
                    proxy.requests() - requests,
                    status_kib("VmRSS:") as f64 / 1024.0
                );
            }
        }
        let took = started.elapsed();
        let calls = proxy.requests() - requests;
        rss_after.push(status_kib("VmRSS:"));
        eprintln!(
            "burst {}: {n} events in {took:.2?}: {:.0} events/s, {:.2} AWS calls per event ({calls} calls), {published} messages published; VmHWM {:.1} MiB, VmRSS before {:.1} MiB, after {:.1} MiB",
            round + 1,
            n as f64 / took.as_secs_f64(),
            calls as f64 / n as f64,
            status_kib("VmHWM:") as f64 / 1024.0,
            rss_before as f64 / 1024.0,
            rss_after[round] as f64 / 1024.0,
        );
        assert_eq!(
            published, n,
            "every denial published (no deduplication yet)"
        );
    }
    // Nothing kept per event: a second burst leaves the process where the first did (within
    // allocator noise).
    let growth = rss_after[1].saturating_sub(rss_after[0]);
    assert!(
        growth < 8 * 1024,
        "resident memory grew by {growth} KiB over the second burst"
    );
}

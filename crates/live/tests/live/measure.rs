//! The measurement behind docs/live-measurements.md, run on demand (it is `#[ignore]`d):
//!
//! ```sh
//! cargo build --release -p auditor-live --bin auditor-lambda
//! S3KA_MEASURE_BIN=target/release/auditor-lambda \
//!   scripts/test -p auditor-live --test live measure -- --ignored --nocapture
//! ```
//!
//! * cold start: from `exec` of the binary to its `initialized` log line (runtime, tracing,
//!   configuration, SDK configuration and clients), with credentials and Region in the
//!   environment so that nothing goes to the network; 20 runs;
//! * the example scenario (KC, key policy lacking B) through the Runtime API, cold then warm:
//!   the function's own report of AWS calls and round-trip depth;
//! * peak memory: the function process's high-water mark (`VmHWM`) after both invocations.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

use crate::kc::{Cause, Kc};
use crate::runtime_api::{free_port, invoke, start_emulator, Guard};
use crate::support::{unique, Inbox, Moto, EXTERNAL_ID, REGION, ROLE};

fn binary() -> String {
    std::env::var("S3KA_MEASURE_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_auditor-lambda").to_owned())
}

fn function(bin: &str, port: u16, topic: &str, endpoint: &str) -> Command {
    let mut c = Command::new(bin);
    c.env_clear()
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{port}/.rt"),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("S3KA_TOPIC_ARN", topic)
        .env("S3KA_ROLE_NAME", ROLE)
        .env("S3KA_EXTERNAL_ID", EXTERNAL_ID)
        .env("S3KA_ENDPOINT_URL", endpoint)
        .env("S3KA_MAX_ATTEMPTS", "1");
    c
}

fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::test]
#[ignore = "a measurement, run on demand: see docs/live-measurements.md"]
async fn measure() {
    let m = Moto::connect("measure").await;
    let bin = binary();
    println!("binary: {bin}");

    // Cold start, 20 times: exec to `initialized`, and the function's own init_ms.
    let (mut wall, mut init) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let closed = free_port();
        let started = Instant::now();
        let mut child = function(
            &bin,
            closed,
            "arn:aws:sns:us-west-2:123456789012:none",
            &m.endpoint,
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = lines
            .find_map(|l| l.ok().filter(|l| l.contains("initialized")))
            .expect("an `initialized` line");
        wall.push(started.elapsed().as_secs_f64() * 1000.0);
        let v: Value = serde_json::from_str(&line).expect("JSON log");
        init.push(v["fields"]["init_ms"].as_f64().unwrap_or(f64::NAN));
        let _ = child.kill();
        let _ = child.wait();
    }
    println!(
        "cold start (exec to initialized), 20 runs: median {:.1} ms, max {:.1} ms; in-process init median {:.1} ms, max {:.1} ms",
        median(wall.clone()),
        wall.iter().copied().fold(0.0, f64::max),
        median(init.clone()),
        init.iter().copied().fold(0.0, f64::max)
    );

    // The example scenario through the Runtime API, cold then warm.
    let kc = Kc::build(&m, Cause::KeyPolicy).await;
    let inbox = Inbox::new(&m).await;
    let port = free_port();
    let _emulator = start_emulator(port);
    let log = std::env::temp_dir().join(format!("{}.log", unique("s3ka-measure")));
    let f = Guard(
        function(&bin, port, &inbox.topic_arn, &m.endpoint)
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("function"),
    );
    let pid = f.0.id();
    // A second object of the same bucket, for a warm diagnosis that still needs HeadObject.
    let s3 = Moto::s3(&m.account(&kc.a).await);
    s3.put_object()
        .bucket(&kc.bucket)
        .key("reports/q2.csv")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"q2"))
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .ssekms_key_id(&kc.key_arn)
        .send()
        .await
        .expect("second object");
    let other_object: Value = serde_json::from_str(
        &kc.event()
            .to_string()
            .replace("reports/q1.csv", "reports/q2.csv"),
    )
    .expect("event");
    let cold = invoke(port, &kc.event());
    let warm = invoke(port, &kc.event());
    let warm_other = invoke(port, &other_object);
    let peak = peak_kib(pid);
    for (name, s) in [
        ("cold", &cold),
        ("warm, same event", &warm),
        ("warm, another object of the bucket", &warm_other),
    ] {
        let p = &s["published"][0];
        println!(
            "{name}: verdict {}, {} AWS calls, depth {}, {} ms (against the local server), calls {}",
            p["verdict"], p["api_calls"], p["depth"], p["duration_ms"], p["calls_by_operation"]
        );
    }
    println!(
        "peak memory (VmHWM of the function after both invocations): {:.1} MiB",
        peak.unwrap_or(0) as f64 / 1024.0
    );
    let _ = std::fs::remove_file(&log);
    assert!(cold["published"][0]["depth"]
        .as_u64()
        .is_some_and(|d| d <= 4));
    assert!(warm["published"][0]["depth"]
        .as_u64()
        .is_some_and(|d| d <= 2));
}

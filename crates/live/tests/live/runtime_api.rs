//! The compiled Lambda binary, driven through the Lambda Runtime API: cargo-lambda's emulator
//! serves the API (`cargo lambda watch --only-lambda-apis`), the binary cargo built for this
//! test polls it as it would in Lambda, and `cargo lambda invoke` sends the events.
//!
//! The emulator is asked not to build the function itself: the binary under test is exactly
//! the one `cargo test` built, and the test does not start a second build.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::kc::{Cause, Kc};
use crate::support::{unique, Inbox, Moto, EXTERNAL_ID, REGION, ROLE};

/// Kills the process when the test ends, however it ends.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts cargo-lambda's Runtime API emulator on `port` (APIs only: the binary under test is
/// the one cargo already built) and waits until it accepts connections.
pub(crate) fn start_emulator(port: u16) -> Guard {
    let guard = Guard(
        Command::new("cargo")
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cargo lambda watch"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the emulator did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    guard
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn cargo_lambda_available() -> bool {
    Command::new("cargo")
        .args(["lambda", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn invoke(port: u16, event: &Value) -> Value {
    let file = std::env::temp_dir().join(format!("{}.event.json", unique("s3ka-invoke")));
    std::fs::write(&file, event.to_string()).expect("write event");
    let out = Command::new("cargo")
        .args([
            "lambda",
            "invoke",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
        ])
        .arg(port.to_string())
        .arg("--data-file")
        .arg(&file)
        .arg("_")
        .output()
        .expect("cargo lambda invoke");
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "invoke failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the function's response is JSON")
}

#[tokio::test]
async fn the_lambda_binary_diagnoses_and_publishes_through_the_runtime_api() {
    let m = Moto::connect("runtime_api").await;
    if !cargo_lambda_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "cargo-lambda is required in CI (scripts/test installs it from requirements-dev.txt)"
        );
        eprintln!("SKIPPED runtime_api: `cargo lambda` is not on PATH (scripts/test provides it)");
        return;
    }
    // GIVEN the KC scenario with A's key policy lacking B, and a topic read through a queue
    let kc = Kc::build(&m, Cause::KeyPolicy).await;
    let inbox = Inbox::new(&m).await;
    // AND the Runtime API emulator with the compiled function polling it
    let port = free_port();
    let _emulator = start_emulator(port);
    let log = std::env::temp_dir().join(format!("{}.log", unique("s3ka-lambda")));
    let log_file = std::fs::File::create(&log).expect("log file");
    let _function = Guard(
        Command::new(env!("CARGO_BIN_EXE_auditor-lambda"))
            .env_clear()
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
            .env("S3KA_TOPIC_ARN", &inbox.topic_arn)
            .env("S3KA_ROLE_NAME", ROLE)
            .env("S3KA_EXTERNAL_ID", EXTERNAL_ID)
            .env("S3KA_ENDPOINT_URL", &m.endpoint)
            .env("S3KA_MAX_ATTEMPTS", "1")
            .stdout(log_file)
            .stderr(Stdio::null())
            .spawn()
            .expect("the Lambda binary"),
    );

    // WHEN the denial arrives as its EventBridge event
    let summary = invoke(port, &kc.event());
    // THEN the function answers with what it published, within the round-trip budget
    let p = &summary["published"][0];
    assert_eq!(p["verdict"], "denied", "{summary:#}");
    assert_eq!(p["finding_codes"][0], "KEY_POLICY_NO_ALLOW");
    assert!(p["depth"].as_u64().is_some_and(|d| d <= 4), "{p:#}");
    // AND subscribers get the diagnosis with its filter attributes
    let envelope = inbox.next().await;
    assert_eq!(envelope["MessageAttributes"]["verdict"]["Value"], "denied");
    let body: Value =
        serde_json::from_str(envelope["Message"].as_str().expect("Message")).expect("JSON");
    assert_eq!(
        body["diagnosis"]["findings"][0]["code"],
        "KEY_POLICY_NO_ALLOW"
    );
    assert_eq!(body["blocking_codes"][0], "KEY_POLICY_NO_ALLOW");

    // WHEN an event of another kind arrives, THEN it is ignored, and says why
    let other = serde_json::json!({"version": "0", "id": "e-other", "detail-type": "Object Created",
        "source": "aws.s3", "account": kc.a, "time": "2026-03-02T09:14:03Z", "region": REGION,
        "resources": [], "detail": {}});
    let ignored = invoke(port, &other);
    assert!(ignored["ignored"]
        .as_str()
        .is_some_and(|r| r.contains("Object Created")));

    // WHEN a CloudTrail event cannot be read, THEN an error report reaches the topic
    let broken = serde_json::json!({"version": "0", "id": "e-broken", "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.s3", "detail": {"eventSource": 42}});
    let reported = invoke(port, &broken);
    assert!(reported["error_reported"].is_string(), "{reported:#}");
    let envelope = inbox.next().await;
    assert_eq!(envelope["MessageAttributes"]["verdict"]["Value"], "error");

    // AND the function logged one JSON line per diagnosis with its cost
    let logs = std::fs::read_to_string(&log).expect("logs");
    let _ = std::fs::remove_file(&log);
    let line: Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "diagnosis published")
        .expect("a 'diagnosis published' log line");
    let f = &line["fields"];
    assert_eq!(f["verdict"], "denied");
    for k in [
        "event_id",
        "finding_codes",
        "api_calls",
        "depth",
        "duration_ms",
        "message_id",
    ] {
        assert!(!f[k].is_null(), "log field `{k}` missing: {line}");
    }
}

#[test]
fn a_bad_configuration_stops_the_container_before_any_event() {
    // GIVEN a function whose topic ARN is misspelt (no server is needed: it never gets that far)
    let out = Command::new(env!("CARGO_BIN_EXE_auditor-lambda"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("AWS_REGION", REGION)
        .env(
            "S3KA_TOPIC_ARN",
            "arn:aws:sqs:us-west-2:123456789012:not-a-topic",
        )
        .output()
        .expect("the Lambda binary");
    // THEN it exits at init, naming the variable, in a JSON log line
    assert!(!out.status.success());
    let logs = String::from_utf8_lossy(&out.stdout);
    let line: Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "invalid configuration")
        .unwrap_or_else(|| panic!("no 'invalid configuration' line in {logs}"));
    assert!(line["fields"]["error"]
        .as_str()
        .is_some_and(|e| e.contains("S3KA_TOPIC_ARN")));
}

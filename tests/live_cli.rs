//! `diagnose --live` and `snapshot` against the AWS-compatible server started by
//! `scripts/test`: what `snapshot --out` writes must make `diagnose --snapshot` print exactly
//! what `diagnose --live` printed. Fails when no server is set: run it through scripts/test.

#![allow(
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly when the server or the binary misbehaves"
)]

use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_s3-kms-auditor");
const EVENT: &str = "events/s3-getobject-denied-cross-account.eventbridge.json";

/// The server's endpoint; without it the test fails (scripts/test starts the server).
fn endpoint() -> String {
    match std::env::var("S3KA_TEST_ENDPOINT") {
        Ok(e) if !e.is_empty() => e,
        _ => panic!("S3KA_TEST_ENDPOINT is not set: run the tests through scripts/test, which starts the AWS-compatible server"),
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env_remove("AWS_PROFILE")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-west-2")
        .output()
        .expect("the binary runs")
}

#[test]
fn live_needs_an_event() {
    let out = run(&["diagnose", "--live"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--event"));
}

#[test]
fn snapshot_out_reproduces_diagnose_live() {
    let endpoint = endpoint();
    let dir = std::env::temp_dir().join(format!("s3ka-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_file = dir.join("snapshot.json");
    let out_path = out_file.to_str().unwrap();
    let aws = [
        "--endpoint-url",
        endpoint.as_str(),
        "--assume-role",
        "s3-kms-auditor-read",
        "--external-id",
        "s3ka-test-external-id",
    ];

    // WHEN the event's state is collected into a file
    let mut args = vec!["snapshot", "--event", EVENT, "--out", out_path];
    args.extend(aws);
    let snap = run(&args);
    assert_eq!(
        snap.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&snap.stderr)
    );
    assert!(String::from_utf8_lossy(&snap.stderr).contains("AWS calls"));
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert!(written["accounts"].is_object());

    // THEN diagnosing the file offline prints what the live diagnosis prints
    let mut args = vec!["diagnose", "--live", "--event", EVENT, "--format", "json"];
    args.extend(aws);
    let live = run(&args);
    let offline = run(&[
        "diagnose",
        "--snapshot",
        out_path,
        "--event",
        EVENT,
        "--format",
        "json",
    ]);
    assert_eq!(live.status.code(), offline.status.code());
    let live: Value = serde_json::from_slice(&live.stdout).unwrap();
    let offline: Value = serde_json::from_slice(&offline.stdout).unwrap();
    assert_eq!(live, offline);
    // The sample's bucket does not exist on the server: the gap is reported, not guessed.
    assert_eq!(live["verdict"], "unknown");
    assert!(live["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["code"] == "MISSING_EVIDENCE"
            && f["explanation"].as_str().unwrap().contains("NoSuchBucket")));
    let _ = std::fs::remove_dir_all(&dir);
}

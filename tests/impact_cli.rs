//! The command-line contract of `s3-kms-auditor impact` (docs/impact-format.md): one
//! hand-written case per kind of change under `tests/impact/` (a key-policy edit, a
//! bucket-policy edit, an IAM detach, an SCP deny, a grant revoke, a disabled key, changes
//! that break nothing, a change that opens a path), each both as two snapshots (`--after`)
//! and as the recorded change (`--change`); the exit codes (0 nothing broke, 1 a path broke,
//! 2 bad input, 3 undecided), and the README's worked example. Every test runs the real
//! binary.

// A test fails by panicking; the helpers outside `#[test]` functions do so on purpose.
#![allow(
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on a bad fixture or a misbehaving binary"
)]

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_s3-kms-auditor");

const ROLE: &str = "arn:aws:iam::444455556666:role/reader";
const BUCKET_ACCOUNT: &str = "111122223333";
const CALLER_ACCOUNT: &str = "444455556666";
const FIXED: &str = "examples/kc-scenario-fixed.json";

/// What one run of the binary produced.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

fn run(args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `impact --before BEFORE --change EVENT --format json`.
fn with_change(before: &str, event: &str) -> Run {
    run(&[
        "impact", "--before", before, "--change", event, "--format", "json",
    ])
}

/// `impact --before BEFORE --after AFTER --format json`.
fn with_after(before: &str, after: &str) -> Run {
    run(&[
        "impact", "--before", before, "--after", after, "--format", "json",
    ])
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The one broken path of the reader, with its documented fields checked.
fn reader_broken(r: &Run) -> Value {
    assert_eq!(r.code, 1, "a broken path exits 1: {r:?}");
    let out = r.json();
    let broken = out["broken"].as_array().expect("broken is a list");
    assert_eq!(broken.len(), 1, "{out:#}");
    let p = broken[0].clone();
    assert_eq!(p["principal"], ROLE);
    assert_eq!(p["bucket"], "doc-example-bucket");
    assert_eq!(p["object"], "reports/q1.csv");
    assert_eq!(p["action"], "s3:GetObject");
    assert_eq!(p["verdict_before"], "allowed");
    assert_eq!(p["verdict_after"], "denied");
    assert_eq!(p["fixes_verified"], true, "{p:#}");
    assert!(
        p["findings"]
            .as_array()
            .is_some_and(|f| !f.is_empty() && f.iter().all(|f| f["fix"]["cli"].is_string())),
        "every blocking finding carries its fix: {p:#}"
    );
    assert_eq!(out["fixed"], serde_json::json!([]));
    assert_eq!(out["opened"], serde_json::json!([]));
    p
}

#[test]
fn impact_key_policy_edit_breaks_the_read_and_the_key_owner_must_act() {
    let r = with_change(
        FIXED,
        "tests/impact/change-putkeypolicy-drops-reader.cloudtrail.json",
    );
    let p = reader_broken(&r);
    assert_eq!(strs(&p["blocking"]), ["KEY_POLICY_NO_ALLOW"]);
    assert_eq!(strs(&p["must_act"]), [BUCKET_ACCOUNT]);
    let change = &r.json()["change"];
    assert_eq!(change["event_name"], "PutKeyPolicy");
    assert_eq!(change["event_id"], "b4f1d8e2-3a6c-4e97-8d05-1c7e9a2b6f38");
    assert!(
        change["changed"]
            .as_str()
            .is_some_and(|c| c.starts_with("key policy of arn:aws:kms:us-west-2:111122223333:key/")),
        "{change:#}"
    );
}

#[test]
fn impact_bucket_policy_edit_breaks_the_read() {
    let r = with_after(FIXED, "tests/impact/after-bucket-policy-deny.json");
    let p = reader_broken(&r);
    assert_eq!(strs(&p["blocking"]), ["BUCKET_POLICY_EXPLICIT_DENY"]);
    assert_eq!(strs(&p["must_act"]), [BUCKET_ACCOUNT]);
    assert_eq!(
        r.json()["change"],
        Value::Null,
        "two snapshots: no change record"
    );
}

#[test]
fn impact_iam_detach_breaks_the_read_and_the_caller_account_must_act() {
    let r = with_change(
        "tests/impact/before-managed-read.json",
        "events/change-detachrolepolicy.eventbridge.json",
    );
    let p = reader_broken(&r);
    assert_eq!(
        strs(&p["blocking"]),
        ["IDENTITY_POLICY_NO_ALLOW", "IDENTITY_POLICY_NO_ALLOW"],
        "both hops lose the caller's allow: {p:#}"
    );
    assert_eq!(strs(&p["must_act"]), [CALLER_ACCOUNT]);
    assert!(
        strs(&p["intended_by"]).contains(
            &"arn:aws:iam::444455556666:policy/reader-read-reports statement 0 (Sid ReadReports) (before only)"
        ),
        "{p:#}"
    );
}

#[test]
fn impact_scp_deny_breaks_the_read_and_names_the_management_account() {
    let r = with_change(
        "tests/impact/before-described-scp.json",
        "events/change-updatepolicy-scp.eventbridge.json",
    );
    let p = reader_broken(&r);
    assert_eq!(strs(&p["blocking"]), ["SCP_EXPLICIT_DENY"]);
    let must_act = strs(&p["must_act"]);
    assert_eq!(must_act.len(), 1, "{p:#}");
    assert!(
        must_act[0].contains("management account") && must_act[0].contains(CALLER_ACCOUNT),
        "{must_act:?}"
    );
    assert_eq!(
        r.json()["change"]["changed"],
        "content of organization policy p-7h3k9x2m"
    );
}

#[test]
fn impact_grant_revoke_breaks_the_read() {
    let r = with_change(
        "tests/impact/before-grant.json",
        "events/change-revokegrant.eventbridge.json",
    );
    let p = reader_broken(&r);
    assert_eq!(strs(&p["blocking"]), ["KEY_POLICY_NO_ALLOW"]);
    assert_eq!(strs(&p["must_act"]), [BUCKET_ACCOUNT]);
    assert!(
        strs(&p["intended_by"])
            .iter()
            .any(|s| s.starts_with("grant ea4abf69") && s.ends_with("(before only)")),
        "{p:#}"
    );
}

#[test]
fn impact_disabled_key_breaks_the_read() {
    let r = with_change(FIXED, "events/change-disablekey.eventbridge.json");
    let p = reader_broken(&r);
    assert!(strs(&p["blocking"]).contains(&"KEY_NOT_USABLE"), "{p:#}");
}

#[test]
fn impact_changes_that_break_nothing_exit_0() {
    for event in [
        "events/change-putrolepolicy.eventbridge.json",
        "events/change-putbucketpolicy.eventbridge.json",
        "events/change-putkeypolicy.eventbridge.json",
    ] {
        let r = with_change(FIXED, event);
        assert_eq!(r.code, 0, "{event}: {r:?}");
        let out = r.json();
        for list in ["broken", "fixed", "opened"] {
            assert_eq!(out[list], serde_json::json!([]), "{event}: {list}");
        }
        assert!(
            out["unchanged"].as_u64().is_some_and(|n| n >= 1),
            "{event}: {out:#}"
        );
        assert!(out["change"]["event_name"].is_string(), "{event}");
    }
    let r = with_after(FIXED, FIXED);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["broken"], serde_json::json!([]));
}

#[test]
fn impact_a_new_grant_opens_a_path() {
    let r = with_after(
        "tests/impact/before-auditor.json",
        "tests/impact/after-auditor-granted.json",
    );
    assert_eq!(r.code, 0, "opening a path breaks nothing: {r:?}");
    let out = r.json();
    let opened = out["opened"].as_array().expect("opened");
    assert_eq!(opened.len(), 1, "{out:#}");
    let p = &opened[0];
    assert_eq!(p["principal"], "arn:aws:iam::444455556666:role/auditor");
    assert_eq!(p["verdict_before"], "denied");
    assert_eq!(p["verdict_after"], "allowed");
    assert_eq!(
        strs(&p["blocking_before"]),
        ["BUCKET_POLICY_NO_ALLOW", "KEY_POLICY_NO_ALLOW"]
    );
    assert_eq!(p["blocking"], serde_json::json!([]));
    assert_eq!(
        p["must_act"],
        serde_json::json!([]),
        "nothing blocks: {p:#}"
    );
    assert_eq!(out["fixed"], serde_json::json!([]));
    assert_eq!(out["broken"], serde_json::json!([]));
    assert_eq!(
        out["unchanged"], 1,
        "the reader's path is unchanged: {out:#}"
    );
}

#[test]
fn impact_text_names_the_broken_path_and_who_must_act() {
    let r = run(&[
        "impact",
        "--before",
        FIXED,
        "--change",
        "tests/impact/change-putkeypolicy-drops-reader.cloudtrail.json",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("1 broken, 0 fixed, 0 opened"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!(
            "BROKEN {ROLE} → s3://doc-example-bucket/reports/q1.csv (s3:GetObject: allowed → denied)"
        )),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("KEY_POLICY_NO_ALLOW [kms:Decrypt] — account 111122223333 must act"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("$ aws kms put-key-policy"),
        "{}",
        r.stdout
    );
}

fn assert_bad_input(r: &Run, needles: &[&str]) {
    assert_eq!(r.code, 2, "bad input exits 2: {r:?}");
    assert!(r.stdout.is_empty(), "nothing on stdout: {}", r.stdout);
    for n in needles {
        assert!(r.stderr.contains(n), "stderr lacks `{n}`:\n{}", r.stderr);
    }
}

#[test]
fn impact_refuses_a_failed_call() {
    let file = "tests/impact/change-deletebucketpolicy-failed.cloudtrail.json";
    let r = with_change(FIXED, file);
    assert_bad_input(&r, &[file, "errorCode", "AccessDenied", "did not apply"]);
}

#[test]
fn impact_names_what_the_snapshot_lacks_for_a_change() {
    let file = "tests/impact/change-attachrolepolicy-aws-managed.cloudtrail.json";
    let r = with_change(FIXED, file);
    assert_bad_input(
        &r,
        &[
            file,
            "requestParameters.policyArn",
            "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
            "is not in the snapshot",
        ],
    );
}

#[test]
fn impact_refuses_a_record_that_is_not_a_change() {
    let file = "events/s3-getobject-denied-cross-account.cloudtrail.json";
    let r = with_change(FIXED, file);
    assert_bad_input(&r, &[file, "eventName", "GetObject", "s3:PutBucketPolicy"]);
}

#[test]
fn impact_bad_snapshot_names_the_file() {
    let r = with_after(FIXED, "tests/impact/no-such-file.json");
    assert_bad_input(&r, &["tests/impact/no-such-file.json", "cannot read"]);
    let r = with_change(
        "events/change-putkeypolicy.eventbridge.json",
        "events/change-disablekey.eventbridge.json",
    );
    assert_bad_input(
        &r,
        &["events/change-putkeypolicy.eventbridge.json", "unknown key"],
    );
}

#[test]
fn impact_needs_after_or_change_but_not_both() {
    let r = run(&["impact", "--before", FIXED]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--after"), "{}", r.stderr);
    let r = run(&[
        "impact",
        "--before",
        FIXED,
        "--after",
        FIXED,
        "--change",
        "events/change-disablekey.eventbridge.json",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
}

#[test]
fn impact_help_documents_its_exit_codes() {
    let r = run(&["impact", "--help"]);
    assert_eq!(r.code, 0, "{r:?}");
    for needle in [
        "0  no read path broke",
        "1  a read path broke",
        "2  bad input",
        "3  nothing broke, but",
    ] {
        assert!(r.stdout.contains(needle), "lacks {needle:?}:\n{}", r.stdout);
    }
}

#[test]
fn readme_impact_example_is_what_the_binary_prints() {
    // GIVEN the command and the output shown under `## Before you deploy: impact`
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let section = readme
        .find("## Before you deploy: impact")
        .expect("README.md lacks `## Before you deploy: impact`");
    let rest = &readme[section..];
    let command = rest
        .lines()
        .find(|l| l.starts_with("cargo run --no-default-features -- impact "))
        .expect("the section shows its command");
    let args: Vec<&str> = command
        .split_once(" -- ")
        .map(|(_, a)| a.split_whitespace().collect())
        .unwrap_or_default();
    let open = rest.find("```text\n").expect("a ```text block") + "```text\n".len();
    let len = rest[open..].find("```").expect("the block is closed");
    let shown = &rest[open..open + len];
    // WHEN the binary runs it
    let r = run(&args);
    // THEN it breaks the reader's path, and prints exactly the block
    assert_eq!(r.code, 1, "the README's example breaks a path: {r:?}");
    assert_eq!(
        shown, r.stdout,
        "README.md `## Before you deploy: impact` no longer shows what the binary prints"
    );
}

#[test]
fn impact_a_new_grant_fixes_a_path_the_bucket_policy_intends() {
    let r = with_change(
        "tests/impact/before-no-key-grant.json",
        "events/change-creategrant.eventbridge.json",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.json();
    let fixed = out["fixed"].as_array().expect("fixed");
    assert_eq!(fixed.len(), 1, "{out:#}");
    assert_eq!(fixed[0]["principal"], ROLE);
    assert_eq!(strs(&fixed[0]["blocking_before"]), ["KEY_POLICY_NO_ALLOW"]);
    assert_eq!(fixed[0]["blocking"], serde_json::json!([]));
    assert!(
        strs(&fixed[0]["intended_by"])
            .iter()
            .any(|s| s.starts_with("grant ea4abf69") && s.ends_with("(after only)")),
        "{:#}",
        fixed[0]
    );
    assert_eq!(
        out["opened"],
        serde_json::json!([]),
        "the bucket policy intended it: fixed, not opened"
    );
}

// The same cases the other way round: each change the tests above give as a record, given
// as the snapshot after it (`--after`), and the ones given as two snapshots, as a record
// (`--change`). Both must say the same.

#[test]
fn impact_key_policy_edit_as_two_snapshots_breaks_the_read() {
    let r = with_after(FIXED, "tests/impact/after-key-policy-drops-reader.json");
    let p = reader_broken(&r);
    assert_eq!(strs(&p["blocking"]), ["KEY_POLICY_NO_ALLOW"]);
    assert_eq!(strs(&p["must_act"]), [BUCKET_ACCOUNT]);
    assert_eq!(r.json()["change"], Value::Null);
}

#[test]
fn impact_bucket_policy_edit_as_a_record_breaks_the_read() {
    let r = with_change(
        FIXED,
        "tests/impact/change-putbucketpolicy-deny-outside.cloudtrail.json",
    );
    let p = reader_broken(&r);
    assert_eq!(strs(&p["blocking"]), ["BUCKET_POLICY_EXPLICIT_DENY"]);
    assert_eq!(strs(&p["must_act"]), [BUCKET_ACCOUNT]);
    let change = &r.json()["change"];
    assert_eq!(change["event_name"], "PutBucketPolicy");
    assert_eq!(change["changed"], "bucket policy of doc-example-bucket");
    assert_eq!(change["account"], BUCKET_ACCOUNT);
}

#[test]
fn impact_iam_detach_as_two_snapshots_breaks_the_read() {
    let r = with_after(
        "tests/impact/before-managed-read.json",
        "tests/impact/after-managed-read-detached.json",
    );
    let p = reader_broken(&r);
    assert_eq!(
        strs(&p["blocking"]),
        ["IDENTITY_POLICY_NO_ALLOW", "IDENTITY_POLICY_NO_ALLOW"]
    );
    assert_eq!(strs(&p["must_act"]), [CALLER_ACCOUNT]);
}

#[test]
fn impact_scp_deny_as_two_snapshots_breaks_the_read() {
    let r = with_after(
        "tests/impact/before-described-scp.json",
        "tests/impact/after-described-scp-deny.json",
    );
    let p = reader_broken(&r);
    assert_eq!(strs(&p["blocking"]), ["SCP_EXPLICIT_DENY"]);
    let must_act = strs(&p["must_act"]);
    assert_eq!(must_act.len(), 1, "{p:#}");
    assert!(
        must_act[0].contains("management account") && must_act[0].contains(CALLER_ACCOUNT),
        "{must_act:?}"
    );
}

#[test]
fn impact_grant_revoke_as_two_snapshots_breaks_the_read() {
    let r = with_after(
        "tests/impact/before-grant.json",
        "tests/impact/after-grant-revoked.json",
    );
    let p = reader_broken(&r);
    assert_eq!(strs(&p["blocking"]), ["KEY_POLICY_NO_ALLOW"]);
    assert_eq!(strs(&p["must_act"]), [BUCKET_ACCOUNT]);
}

#[test]
fn impact_a_change_that_breaks_nothing_as_two_snapshots_exits_0() {
    let r = with_after(FIXED, "tests/impact/after-key-admin-describe.json");
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.json();
    for list in ["broken", "fixed", "opened", "undecided"] {
        assert_eq!(out[list], serde_json::json!([]), "{list}: {out:#}");
    }
    assert_eq!(out["unchanged"], 1, "the reader's path is checked: {out:#}");
}

#[test]
fn impact_a_bucket_policy_grant_as_a_record_opens_a_path() {
    // SSE-S3 objects: the bucket policy is the only resource-side gate, so one change opens
    // the auditor's read.
    let r = with_change(
        "tests/impact/before-auditor-sse-s3.json",
        "tests/impact/change-putbucketpolicy-grants-auditor.cloudtrail.json",
    );
    assert_eq!(r.code, 0, "opening a path breaks nothing: {r:?}");
    let out = r.json();
    let opened = out["opened"].as_array().expect("opened");
    assert_eq!(opened.len(), 1, "{out:#}");
    let p = &opened[0];
    assert_eq!(p["principal"], "arn:aws:iam::444455556666:role/auditor");
    assert_eq!(p["bucket"], "doc-example-bucket");
    assert_eq!(p["object"], "reports/q1.csv");
    assert_eq!(p["verdict_before"], "denied");
    assert_eq!(p["verdict_after"], "allowed");
    assert_eq!(strs(&p["blocking_before"]), ["BUCKET_POLICY_NO_ALLOW"]);
    assert_eq!(p["blocking"], serde_json::json!([]));
    assert_eq!(p["must_act"], serde_json::json!([]));
    assert_eq!(out["broken"], serde_json::json!([]));
    assert_eq!(out["fixed"], serde_json::json!([]));
    assert_eq!(
        out["unchanged"], 1,
        "the reader's path is unchanged: {out:#}"
    );
    assert_eq!(out["change"]["event_name"], "PutBucketPolicy");
}

/// The sample records of the families added to `--change` (events/), applied to the fixed
/// scenario: what each breaks, and the exit code.
#[test]
fn impact_sample_changes_of_every_family_apply_from_the_command_line() {
    for (event, code, broken_codes) in [
        (
            "events/change-schedulekeydeletion.eventbridge.json",
            1,
            vec!["KEY_NOT_USABLE"],
        ),
        ("events/change-createalias.eventbridge.json", 0, vec![]),
        (
            "events/change-putbucketencryption.eventbridge.json",
            0,
            vec![],
        ),
        (
            "events/change-putpublicaccessblock.eventbridge.json",
            0,
            vec![],
        ),
        (
            "events/change-putbucketownershipcontrols.eventbridge.json",
            0,
            vec![],
        ),
        (
            "events/change-createpolicyversion.eventbridge.json",
            0,
            vec![],
        ),
    ] {
        let r = with_change(FIXED, event);
        assert_eq!(r.code, code, "{event}: {r:?}");
        let out = r.json();
        let broken = out["broken"].as_array().expect("broken");
        if broken_codes.is_empty() {
            assert!(broken.is_empty(), "{event}: {out:#}");
        } else {
            assert_eq!(broken.len(), 1, "{event}: {out:#}");
            assert_eq!(broken[0]["principal"], ROLE, "{event}");
            for c in &broken_codes {
                assert!(strs(&broken[0]["blocking"]).contains(c), "{event}: {out:#}");
            }
            assert_eq!(strs(&broken[0]["must_act"]), [BUCKET_ACCOUNT], "{event}");
        }
        assert!(out["change"]["changed"].is_string(), "{event}");
    }
    // What the fixed scenario cannot express is refused, naming it.
    for (event, needles) in [
        (
            "events/change-attachgrouppolicy.eventbridge.json",
            vec!["group `analysts`", "is not in the snapshot"],
        ),
        (
            "events/change-putbucketacl.eventbridge.json",
            vec!["ACLs disabled", "BucketOwnerEnforced"],
        ),
        (
            "events/change-deleteuser.eventbridge.json",
            vec!["user `alice`", "is not in the snapshot"],
        ),
        (
            "events/change-addusertogroup.eventbridge.json",
            vec!["group `report-readers`", "is not in the snapshot"],
        ),
        (
            "events/change-putrolepermissionsboundary.eventbridge.json",
            vec!["workload-boundary", "is not in the snapshot"],
        ),
        (
            "events/change-attachpolicy-scp.eventbridge.json",
            vec!["requestParameters.targetId"],
        ),
    ] {
        let r = with_change(FIXED, event);
        let mut all = vec![event];
        all.extend(needles);
        assert_bad_input(&r, &all);
    }
}

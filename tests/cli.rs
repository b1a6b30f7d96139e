//! The command-line contracts of `s3-kms-auditor explain`, `diagnose` and `sweep`: exit
//! codes (0 allowed, 1 denied, 2 bad input, 3 unknown), the JSON fields callers rely on, what
//! the text report must say, the README's sample output, quiet ends on a closed pipe, and
//! error messages that name the file and the JSON path. Every test runs the real binary.

// A test fails by panicking; the helpers outside `#[test]` functions do so on purpose.
#![allow(
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on a bad fixture or a misbehaving binary"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use iam_eval::Json;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_s3-kms-auditor");

const SESSION: &str = "arn:aws:sts::444455556666:assumed-role/reader/s1";
const ROLE: &str = "arn:aws:iam::444455556666:role/reader";
const BUCKET_ACCOUNT: &str = "111122223333";
const CALLER_ACCOUNT: &str = "444455556666";
const OBJECT: &str = "arn:aws:s3:::doc-example-bucket/reports/q1.csv";
const KEY: &str = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const SNAPSHOT: &str = "examples/kc-scenario.json";
const SNAPSHOT_FIXED: &str = "examples/kc-scenario-fixed.json";
const EVENT: &str = "events/s3-getobject-denied-cross-account.cloudtrail.json";
const BAD_EFFECT_PATH: &str =
    "accounts.111122223333.s3.doc-example-bucket.policy.Statement[0].Effect";

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

    fn assert_no_panic(&self, what: &str) {
        assert!(
            !self.stderr.contains("panicked"),
            "{what} panicked:\n{}",
            self.stderr
        );
        assert!(
            (0..=3).contains(&self.code),
            "{what} exited with {} (killed by a signal or an unexpected code):\n{}",
            self.code,
            self.stderr
        );
    }
}

fn run<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
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

/// A path inside the repository.
fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Writes `contents` to a fresh file under the system temp directory and returns its path.
fn temp_file(name: &str, contents: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("s3-kms-auditor-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
    let path = dir.join(format!("{n}-{name}"));
    std::fs::write(&path, contents).unwrap_or_else(|e| panic!("cannot write {path:?}: {e}"));
    path
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

fn read_json(rel: &str) -> Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

/// Writes JSON back to text keeping every member, duplicates included (serde_json would keep
/// only the last of two duplicate keys, and the duplicate-key cases need both).
fn write_json(j: &Json, out: &mut String) {
    match j {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(n),
        Json::String(s) => out.push_str(&Value::String(s.clone()).to_string()),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_json(v, out);
            }
            out.push('}');
        }
    }
}

/// The `input` object of an engine corpus case, written to a temp file (duplicates kept), and
/// the case's `expect`.
fn corpus_input(case: &Path) -> (PathBuf, Value) {
    let text = std::fs::read_to_string(case).unwrap_or_else(|e| panic!("{case:?}: {e}"));
    let raw = Json::parse(&text).unwrap_or_else(|e| panic!("{case:?} is not JSON: {e}"));
    let input = raw
        .get("input")
        .unwrap_or_else(|| panic!("{case:?} has no input"));
    let mut out = String::new();
    write_json(input, &mut out);
    let expect = raw.get("expect").map(Json::to_value).unwrap_or(Value::Null);
    let name = case
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input.json".into());
    (temp_file(&name, &out), expect)
}

fn corpus(rel: &str) -> PathBuf {
    repo(&format!("crates/iam-eval/tests/corpus/{rel}"))
}

fn corpus_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            corpus_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
}

fn explain(input: &Path, format: &str) -> Run {
    run([
        "explain".as_ref(),
        "--input".as_ref(),
        input.as_os_str(),
        "--format".as_ref(),
        format.as_ref(),
    ])
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, found {v}"))
        .iter()
        .map(|x| {
            x.as_str()
                .unwrap_or_else(|| panic!("expected a string, found {x}"))
        })
        .collect()
}

/// `(layer, policy, index, sid, effect)` of each deciding statement, sorted.
fn statements(out: &Value) -> Vec<(String, String, u64, String, String)> {
    let mut v: Vec<_> = out["statements"]
        .as_array()
        .unwrap_or_else(|| panic!("statements is not an array: {out}"))
        .iter()
        .map(|s| {
            (
                s["layer"].as_str().unwrap_or_default().to_owned(),
                s["policy"].as_str().unwrap_or_default().to_owned(),
                s["index"].as_u64().unwrap_or(u64::MAX),
                s["sid"].as_str().unwrap_or_default().to_owned(),
                s["effect"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn st(
    layer: &str,
    policy: &str,
    index: u64,
    sid: &str,
    effect: &str,
) -> (String, String, u64, String, String) {
    (
        layer.into(),
        policy.into(),
        index,
        sid.into(),
        effect.into(),
    )
}

// ======================================================================================
// explain: JSON output
// ======================================================================================

#[test]
fn explain_json_allowed_kc_kms_hop() {
    let (input, _) = corpus_input(&corpus("kc-scenario/working-kms-hop-allowed.json"));
    let r = explain(&input, "json");
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.json();
    assert_eq!(out["decision"], "Allowed");
    assert_eq!(out["denied_by"], json!([]));
    assert_eq!(out["explicit_denies"], json!([]));
    assert_eq!(out["missing_allows"], json!([]));
    assert_eq!(out["unknown_context_keys"], json!([]));
    assert_eq!(out["granted_by"], "identity_policy");
    assert_eq!(out["notes"], json!([]));
    assert_eq!(
        statements(&out),
        vec![
            st(
                "identity",
                "identity[0]",
                1,
                "DecryptDocExampleKey",
                "Allow"
            ),
            st("resource", "resource", 1, "AllowReaderDecrypt", "Allow"),
        ]
    );
}

#[test]
fn explain_json_echoes_the_request_with_derived_context() {
    let (input, _) = corpus_input(&corpus("kc-scenario/working-kms-hop-allowed.json"));
    let out = explain(&input, "json").json();
    let req = &out["request"];
    assert_eq!(req["principal"], SESSION);
    assert_eq!(req["action"], "kms:Decrypt");
    assert_eq!(req["resource"], KEY);
    assert_eq!(req["resource_account"], BUCKET_ACCOUNT);
    let ctx = &req["context"];
    // Given keys are kept...
    assert_eq!(ctx["kms:ViaService"], "s3.us-west-2.amazonaws.com");
    // ...and the keys that follow from the request are derived.
    assert_eq!(ctx["aws:PrincipalArn"], ROLE);
    assert_eq!(ctx["aws:PrincipalAccount"], CALLER_ACCOUNT);
    assert_eq!(ctx["aws:PrincipalType"], "AssumedRole");
    assert_eq!(ctx["aws:ResourceAccount"], BUCKET_ACCOUNT);
    assert_eq!(ctx["kms:CallerAccount"], CALLER_ACCOUNT);
}

#[test]
fn explain_json_given_context_value_wins_over_derived() {
    let input = temp_file(
        "given-wins.json",
        &json!({
            "request": {
                "principal": SESSION,
                "action": "s3:GetObject",
                "resource": OBJECT,
                "resource_account": BUCKET_ACCOUNT,
                "context": { "aws:PrincipalAccount": "999999999999" }
            }
        })
        .to_string(),
    );
    let out = explain(&input, "json").json();
    assert_eq!(
        out["request"]["context"]["aws:PrincipalAccount"],
        "999999999999"
    );
}

#[test]
fn explain_json_implicit_deny_by_key_policy() {
    let (input, _) = corpus_input(&corpus(
        "kc-scenario/key-policy-missing-b-statement-kms-hop-denied.json",
    ));
    let r = explain(&input, "json");
    assert_eq!(r.code, 1, "{r:?}");
    let out = r.json();
    assert_eq!(out["decision"], "ImplicitlyDenied");
    assert_eq!(out["denied_by"], json!(["resource"]));
    assert_eq!(out["missing_allows"], json!(["resource"]));
    assert_eq!(out["explicit_denies"], json!([]));
    assert_eq!(out["unknown_context_keys"], json!([]));
    assert_eq!(out["granted_by"], Value::Null);
    // Not an explicit deny: the statements that decided are the allows that matched.
    assert_eq!(
        statements(&out),
        vec![st(
            "identity",
            "identity[0]",
            1,
            "DecryptDocExampleKey",
            "Allow"
        )]
    );
    // The key policy's own statement is reported as a near miss, with the reason.
    let near: Vec<&Value> = out["near_misses"]
        .as_array()
        .map(|a| a.iter().filter(|n| n["layer"] == "resource").collect())
        .unwrap_or_default();
    assert!(
        near.iter()
            .any(|n| n["sid"] == "EnableIAMPolicies" && n["miss"]["reason"] == "principal"),
        "near_misses: {}",
        out["near_misses"]
    );
}

#[test]
fn explain_json_explicit_deny_names_the_deny_statement() {
    let (input, _) = corpus_input(&corpus(
        "accounts/cross-account-identity-explicit-deny-beats-both-allows.json",
    ));
    let r = explain(&input, "json");
    assert_eq!(r.code, 1, "{r:?}");
    let out = r.json();
    assert_eq!(out["decision"], "ExplicitlyDenied");
    assert_eq!(out["denied_by"], json!(["identity"]));
    assert_eq!(out["explicit_denies"], json!(["identity"]));
    assert_eq!(
        statements(&out),
        vec![st(
            "identity",
            "identity[0]",
            1,
            "DenyQuarterlyReports",
            "Deny"
        )]
    );
}

#[test]
fn explain_json_reports_unknown_context_keys() {
    let (input, _) = corpus_input(&corpus(
        "appendix-a/t11-key-policy-sourcevpce-condition-absent-on-fas-hop.json",
    ));
    let r = explain(&input, "json");
    assert_eq!(r.code, 1, "{r:?}");
    let out = r.json();
    assert_eq!(out["decision"], "ImplicitlyDenied");
    assert_eq!(out["denied_by"], json!(["resource"]));
    assert_eq!(out["unknown_context_keys"], json!(["aws:SourceVpce"]));
    assert!(
        out["near_misses"]
            .as_array()
            .is_some_and(|a| a.iter().any(|n| {
                n["sid"] == "AllowAccountBDecrypt"
                    && n["miss"]["reason"] == "condition"
                    && n["miss"]["key"] == "aws:SourceVpce"
                    && n["miss"]["key_absent"] == true
            })),
        "near_misses: {}",
        out["near_misses"]
    );
}

#[test]
fn explain_json_every_denied_layer_is_listed() {
    // Cross-account with neither side allowing: both layers block.
    let (input, _) = corpus_input(&corpus("accounts/cross-account-neither-side-allows.json"));
    let r = explain(&input, "json");
    assert_eq!(r.code, 1, "{r:?}");
    let out = r.json();
    assert_eq!(out["decision"], "ImplicitlyDenied");
    let mut layers = strs(&out["denied_by"]);
    layers.sort_unstable();
    assert_eq!(layers, vec!["identity", "resource"]);
}

#[test]
fn explain_json_accepts_url_encoded_policy_and_notes_assumed_account() {
    // An IAM-API style URL-encoded document, and a resource without an account in its ARN.
    let doc = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Sid%22%3A%22Read%22%2C%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3AGetObject%22%2C%22Resource%22%3A%22arn%3Aaws%3As3%3A%3A%3Adoc-example-bucket%2F*%22%7D%5D%7D";
    let input = temp_file(
        "url-encoded.json",
        &json!({
            "request": { "principal": "arn:aws:iam::111122223333:user/alice", "action": "s3:GetObject", "resource": OBJECT },
            "policies": { "identity": [doc] }
        })
        .to_string(),
    );
    let r = explain(&input, "json");
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.json();
    assert_eq!(out["decision"], "Allowed");
    assert_eq!(
        statements(&out),
        vec![st("identity", "identity[0]", 0, "Read", "Allow")]
    );
    assert!(
        out["notes"]
            .as_array()
            .is_some_and(|a| a.iter().any(|n| n["code"] == "RESOURCE_ACCOUNT_ASSUMED")),
        "notes: {}",
        out["notes"]
    );
}

#[test]
fn explain_json_kms_grant_allows() {
    let (input, _) = corpus_input(&corpus("grants/grant-alone-suffices-cross-account.json"));
    let r = explain(&input, "json");
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.json();
    assert_eq!(out["decision"], "Allowed");
    assert_eq!(out["granted_by"], "grant");
}

// ======================================================================================
// explain: text output
// ======================================================================================

#[test]
fn explain_text_allowed_names_decision_and_statements() {
    let (input, _) = corpus_input(&corpus("kc-scenario/working-kms-hop-allowed.json"));
    let r = explain(&input, "text");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("ALLOWED"), "{}", r.stdout);
    for needle in [
        SESSION,
        KEY,
        "cross-account (444455556666 → 111122223333)",
        "Sid `AllowReaderDecrypt`",
        "Sid `DecryptDocExampleKey`",
    ] {
        assert!(
            r.stdout.contains(needle),
            "missing {needle:?} in:\n{}",
            r.stdout
        );
    }
}

#[test]
fn explain_text_is_the_default_format() {
    let (input, _) = corpus_input(&corpus("kc-scenario/working-kms-hop-allowed.json"));
    let with_flag = explain(&input, "text");
    let default = run(["explain".as_ref(), "--input".as_ref(), input.as_os_str()]);
    assert_eq!(default.code, 0);
    assert_eq!(default.stdout, with_flag.stdout);
}

#[test]
fn explain_text_implicit_deny_names_layer_and_statement() {
    let (input, _) = corpus_input(&corpus(
        "kc-scenario/key-policy-missing-b-statement-kms-hop-denied.json",
    ));
    let r = explain(&input, "text");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.starts_with("DENIED (implicitly"), "{}", r.stdout);
    for needle in [
        "Blocked by:",
        "- resource: no statement in the resource-based policy allows kms:Decrypt",
        "Sid `EnableIAMPolicies`",
        "its Principal does not match this caller",
    ] {
        assert!(
            r.stdout.contains(needle),
            "missing {needle:?} in:\n{}",
            r.stdout
        );
    }
}

#[test]
fn explain_text_explicit_deny_names_layer_and_statement() {
    let (input, _) = corpus_input(&corpus(
        "accounts/cross-account-identity-explicit-deny-beats-both-allows.json",
    ));
    let r = explain(&input, "text");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.starts_with("DENIED (explicitly"), "{}", r.stdout);
    for needle in [
        "- identity: an explicit Deny in the identity-based policies",
        "Deny in identity[0] (identity), statement 1 Sid `DenyQuarterlyReports`",
    ] {
        assert!(
            r.stdout.contains(needle),
            "missing {needle:?} in:\n{}",
            r.stdout
        );
    }
}

#[test]
fn explain_text_lists_unknown_context_keys() {
    let (input, _) = corpus_input(&corpus(
        "appendix-a/t11-key-policy-sourcevpce-condition-absent-on-fas-hop.json",
    ));
    let r = explain(&input, "text");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("did not supply") && r.stdout.contains("aws:SourceVpce"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "condition `StringEquals` on `aws:SourceVpce` fails because the key is absent"
        ),
        "{}",
        r.stdout
    );
}

/// The fenced block of `lang` that follows the first occurrence of `marker` in `doc`.
fn fenced_after<'a>(doc: &'a str, marker: &str, lang: &str) -> &'a str {
    let start = doc
        .find(marker)
        .unwrap_or_else(|| panic!("docs/explain-format.md lacks {marker:?}"));
    let open = format!("```{lang}\n");
    let rest = &doc[start..];
    let body = rest
        .find(&open)
        .map(|i| &rest[i + open.len()..])
        .unwrap_or_else(|| panic!("no ```{lang} block after {marker:?}"));
    let end = body
        .find("```")
        .unwrap_or_else(|| panic!("unclosed block after {marker:?}"));
    &body[..end]
}

#[test]
fn explain_documented_example_matches_the_binary() {
    // docs/explain-format.md shows a complete input and the output it produces; keep them true.
    let doc = read("docs/explain-format.md");
    let input = temp_file(
        "kms-hop.json",
        fenced_after(&doc, "`kms-hop.json`:", "json"),
    );
    let json_out = explain(&input, "json");
    assert_eq!(json_out.code, 1, "{json_out:?}");
    let documented: Value = serde_json::from_str(fenced_after(
        &doc,
        "--format json` exits with 1 and prints:",
        "json",
    ))
    .unwrap_or_else(|e| panic!("the documented JSON output is not JSON: {e}"));
    assert_eq!(
        json_out.json(),
        documented,
        "docs/explain-format.md shows stale JSON output"
    );

    let text_out = explain(&input, "text");
    assert_eq!(text_out.code, 1, "{text_out:?}");
    let documented = fenced_after(
        &doc,
        "explain --input kms-hop.json` exits with 1 and prints:",
        "text",
    );
    for line in documented
        .lines()
        .filter(|l| l.starts_with("DENIED") || l.starts_with("ALLOWED") || l.starts_with("  - "))
    {
        assert!(
            text_out.stdout.contains(line),
            "docs/explain-format.md shows a line the binary no longer prints: {line:?}\n{}",
            text_out.stdout
        );
    }
}

// ======================================================================================
// explain: bad input → exit 2, message names the file and the JSON path
// ======================================================================================

/// Asserts exit 2, nothing on stdout, and every needle (plus the file path) on stderr.
fn assert_bad_input(r: &Run, file: &Path, needles: &[&str]) {
    r.assert_no_panic("bad input");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.is_empty(), "stdout should be empty: {}", r.stdout);
    let path = file.display().to_string();
    assert!(
        r.stderr.contains(&path),
        "stderr does not name {path}:\n{}",
        r.stderr
    );
    for n in needles {
        assert!(r.stderr.contains(n), "stderr lacks {n:?}:\n{}", r.stderr);
    }
}

#[test]
fn explain_invalid_json_is_bad_input() {
    let f = temp_file("truncated.json", "{\"request\": {\"principal\": ");
    let r = explain(&f, "json");
    assert_bad_input(&r, &f, &["not valid JSON", "line 1"]);
}

#[test]
fn explain_unknown_operator_names_its_path() {
    let f = temp_file(
        "unknown-operator.json",
        &json!({
            "request": { "principal": SESSION, "action": "s3:GetObject", "resource": OBJECT },
            "policies": { "identity": [ {
                "Version": "2012-10-17",
                "Statement": [ {
                    "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                    "Condition": { "StringLik": { "aws:PrincipalTag/team": "data*" } }
                } ]
            } ] }
        })
        .to_string(),
    );
    let r = explain(&f, "text");
    assert_bad_input(
        &r,
        &f,
        &[
            "policies.identity[0].Statement[0].Condition.StringLik",
            "unknown condition operator",
        ],
    );
}

#[test]
fn explain_duplicate_key_names_the_object() {
    // Written by hand: a JSON serializer cannot produce duplicate keys.
    let f = temp_file(
        "duplicate-key.json",
        r#"{"request": {"principal": "arn:aws:sts::444455556666:assumed-role/reader/s1",
                        "action": "s3:GetObject", "resource": "arn:aws:s3:::doc-example-bucket/reports/q1.csv"},
            "policies": {"resource": {"Version": "2012-10-17", "Statement": [
              {"Effect": "Allow", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}}}"#,
    );
    let r = explain(&f, "json");
    assert_bad_input(
        &r,
        &f,
        &["policies.resource.Statement[0]", "duplicate key `Effect`"],
    );
}

#[test]
fn explain_missing_principal_names_its_path() {
    let f = temp_file(
        "missing-principal.json",
        &json!({ "request": { "action": "s3:GetObject", "resource": OBJECT } }).to_string(),
    );
    let r = explain(&f, "json");
    assert_bad_input(&r, &f, &["request.principal", "missing `principal`"]);
}

#[test]
fn explain_unreadable_principal_names_its_path() {
    let f = temp_file(
        "bad-principal.json",
        &json!({ "request": { "principal": "reader", "action": "s3:GetObject", "resource": OBJECT } })
            .to_string(),
    );
    let r = explain(&f, "json");
    assert_bad_input(
        &r,
        &f,
        &["request.principal", "`reader` is not a principal"],
    );
}

#[test]
fn explain_bad_scp_level_names_its_path() {
    let f = temp_file(
        "bad-scp.json",
        &json!({
            "request": { "principal": SESSION, "action": "s3:GetObject", "resource": OBJECT },
            "policies": { "scp": [ [
                { "Version": "2012-10-17", "Statement": [ { "Effect": "Allow", "Action": "*", "Resource": "*" } ] },
                { "Version": "2012-10-17", "Statement": [ { "Effect": "Permit", "Action": "*", "Resource": "*" } ] }
            ] ] }
        })
        .to_string(),
    );
    let r = explain(&f, "json");
    assert_bad_input(
        &r,
        &f,
        &["policies.scp[0][1].Statement[0].Effect", "`Permit`"],
    );
}

#[test]
fn explain_missing_file_is_bad_input() {
    let f = std::env::temp_dir().join(format!(
        "s3-kms-auditor-cli-{}-does-not-exist.json",
        std::process::id()
    ));
    let r = explain(&f, "json");
    assert_bad_input(&r, &f, &["cannot read"]);
}

#[test]
fn explain_every_invalid_corpus_case_is_rejected_with_its_path() {
    let mut files = Vec::new();
    corpus_files(&corpus("invalid"), &mut files);
    assert!(
        files.len() >= 10,
        "expected the invalid corpus, found {}",
        files.len()
    );
    for case in files {
        let (input, expect) = corpus_input(&case);
        let want = expect["error_path"]
            .as_str()
            .unwrap_or_else(|| panic!("{case:?}: expect.error_path missing"));
        let r = explain(&input, "json");
        let _ = std::fs::remove_file(&input);
        r.assert_no_panic(&case.display().to_string());
        assert_eq!(r.code, 2, "{case:?}: {r:?}");
        let file = input.display().to_string();
        // The path is printed as `FILE: PATH: message` (no path segment for the root).
        let prefix = if want.is_empty() {
            format!("{file}: ")
        } else {
            format!("{file}: {want}: ")
        };
        assert!(
            r.stderr.contains(&prefix),
            "{case:?}: stderr lacks {prefix:?}:\n{}",
            r.stderr
        );
    }
}

#[test]
fn explain_exit_code_follows_the_decision_on_the_whole_corpus() {
    // Not a second corpus runner: checks only that the CLI never panics, that the exit code
    // is 0 exactly when the JSON decision is Allowed, and that the decision is the expected one.
    let mut files = Vec::new();
    corpus_files(&corpus(""), &mut files);
    assert!(
        files.len() >= 250,
        "expected the engine corpus, found {}",
        files.len()
    );
    for case in files {
        let (input, expect) = corpus_input(&case);
        if expect.get("error_path").is_some() {
            continue;
        }
        let r = explain(&input, "json");
        let _ = std::fs::remove_file(&input);
        r.assert_no_panic(&case.display().to_string());
        let out = r.json();
        assert_eq!(out["decision"], expect["decision"], "{case:?}");
        let want_code = if out["decision"] == "Allowed" { 0 } else { 1 };
        assert_eq!(r.code, want_code, "{case:?}: {}", r.stderr);
    }
}

// ======================================================================================
// diagnose: the knowledge-center scenario
// ======================================================================================

fn diagnose_event(snapshot: &str, event: &str, format: &str) -> Run {
    run([
        "diagnose",
        "--snapshot",
        snapshot,
        "--event",
        event,
        "--format",
        format,
    ])
}

#[test]
fn diagnose_text_kc_scenario() {
    let r = diagnose_event(SNAPSHOT, EVENT, "text");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.starts_with("DENIED"), "{}", r.stdout);
    let first = r.stdout.lines().next().unwrap_or_default();
    assert!(first.contains(SESSION), "first line: {first}");
    for needle in [
        "KEY_POLICY_NO_ALLOW",
        "IDENTITY_POLICY_NO_ALLOW",
        "account 111122223333 must act",
        "account 444455556666 must act",
        "aws kms put-key-policy",
        "aws iam put-role-policy --role-name reader",
        "AWS stops at the first wall: KEY_POLICY_NO_ALLOW",
        "Fixes verified by re-evaluation: yes",
    ] {
        assert!(
            r.stdout.contains(needle),
            "missing {needle:?} in:\n{}",
            r.stdout
        );
    }
    // The key policy's owner comes first: that is the wall AWS hits first.
    let key = r.stdout.find("KEY_POLICY_NO_ALLOW [").unwrap_or(usize::MAX);
    let iam = r.stdout.find("IDENTITY_POLICY_NO_ALLOW [").unwrap_or(0);
    assert!(key < iam, "findings out of order:\n{}", r.stdout);
}

#[test]
fn diagnose_json_kc_scenario_has_the_documented_shape() {
    let r = diagnose_event(SNAPSHOT, EVENT, "json");
    assert_eq!(r.code, 1, "{r:?}");
    let out = r.json();
    assert_eq!(out["verdict"], "denied");
    assert_eq!(out["principal"], SESSION);
    assert_eq!(out["principal_account"], CALLER_ACCOUNT);
    assert_eq!(out["resource_account"], BUCKET_ACCOUNT);
    assert_eq!(out["fixes_verified"], true);
    assert_eq!(out["confidence"], "high");
    assert!(
        out["assumptions"].is_array(),
        "assumptions: {}",
        out["assumptions"]
    );

    assert_eq!(
        out["hops"],
        json!([
            { "action": "s3:GetObject", "resource": OBJECT, "decision": "Allowed", "denied_by": [] },
            { "action": "kms:Decrypt", "resource": KEY, "decision": "ImplicitlyDenied", "denied_by": ["resource", "identity"] }
        ])
    );

    let findings = out["findings"].as_array().cloned().unwrap_or_default();
    let summary: Vec<(&str, bool, &str, &str)> = findings
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap_or_default(),
                f["blocking"].as_bool().unwrap_or_default(),
                f["action"].as_str().unwrap_or_default(),
                f["account"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("KEY_POLICY_NO_ALLOW", true, "kms:Decrypt", BUCKET_ACCOUNT),
            (
                "IDENTITY_POLICY_NO_ALLOW",
                true,
                "kms:Decrypt",
                CALLER_ACCOUNT
            ),
        ]
    );
    for f in &findings {
        assert!(
            f["explanation"].as_str().is_some_and(|e| e.len() > 40),
            "explanation: {f}"
        );
        let fix = &f["fix"];
        assert_eq!(
            fix["account"], f["account"],
            "the account at fault makes the fix: {f}"
        );
        assert!(fix["statement"].is_object(), "fix.statement: {fix}");
        assert!(
            fix["patched_policy"].is_object(),
            "fix.patched_policy: {fix}"
        );
        assert!(
            fix["cli"].as_str().is_some_and(|c| c.starts_with("aws ")),
            "fix.cli: {fix}"
        );
    }

    // Key policy fix: least privilege — the role, not the account; kms:ViaService for S3.
    let key_fix = &findings[0]["fix"];
    let added = &key_fix["statement"];
    assert_eq!(added["Effect"], "Allow");
    assert_eq!(added["Action"], "kms:Decrypt");
    assert_eq!(added["Principal"]["AWS"], ROLE);
    assert_eq!(
        added["Condition"]["StringEquals"]["kms:ViaService"],
        "s3.us-west-2.amazonaws.com"
    );
    // The patched policy keeps what was there and adds the statement.
    let patched = key_fix["patched_policy"]["Statement"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        patched
            .iter()
            .any(|s| s["Sid"] == "Enable IAM User Permissions"),
        "{patched:?}"
    );
    assert!(patched.iter().any(|s| s == added), "{patched:?}");
    let cli = key_fix["cli"].as_str().unwrap_or_default();
    assert!(cli.starts_with("aws kms put-key-policy"), "{cli}");
    assert!(
        cli.contains(KEY) && cli.contains("--region us-west-2"),
        "{cli}"
    );

    // Identity fix: on the key ARN (not an alias, not `*`), applied in the caller's account.
    let iam_fix = &findings[1]["fix"];
    assert_eq!(iam_fix["statement"]["Action"], "kms:Decrypt");
    assert_eq!(iam_fix["statement"]["Resource"], KEY);
    let cli = iam_fix["cli"].as_str().unwrap_or_default();
    assert!(
        cli.starts_with("aws iam put-role-policy --role-name reader"),
        "{cli}"
    );
}

#[test]
fn diagnose_fixed_snapshot_is_allowed() {
    let r = diagnose_event(SNAPSHOT_FIXED, EVENT, "json");
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.json();
    assert_eq!(out["verdict"], "allowed");
    assert!(
        out["findings"]
            .as_array()
            .is_some_and(|a| a.iter().all(|f| f["blocking"] == false)),
        "findings: {}",
        out["findings"]
    );
    for hop in out["hops"].as_array().cloned().unwrap_or_default() {
        assert_eq!(hop["decision"], "Allowed", "{hop}");
    }
    let text = diagnose_event(SNAPSHOT_FIXED, EVENT, "text");
    assert_eq!(text.code, 0, "{text:?}");
    assert!(text.stdout.starts_with("ALLOWED"), "{}", text.stdout);
}

#[test]
fn diagnose_ad_hoc_request_matches_the_event() {
    let adhoc = run([
        "diagnose",
        "--snapshot",
        SNAPSHOT,
        "--principal",
        SESSION,
        "--action",
        "s3:GetObject",
        "--resource",
        OBJECT,
        "--format",
        "json",
    ]);
    assert_eq!(adhoc.code, 1, "{adhoc:?}");
    let adhoc = adhoc.json();
    let event = diagnose_event(SNAPSHOT, EVENT, "json").json();
    for k in [
        "verdict",
        "principal",
        "principal_account",
        "resource_account",
        "hops",
        "findings",
        "fixes_verified",
    ] {
        assert_eq!(
            adhoc[k], event[k],
            "`{k}` differs between the ad hoc request and the event"
        );
    }
}

#[test]
fn diagnose_eventbridge_envelope_matches_the_cloudtrail_record() {
    let eb = diagnose_event(
        SNAPSHOT,
        "events/s3-getobject-denied-cross-account.eventbridge.json",
        "json",
    );
    assert_eq!(eb.code, 1, "{eb:?}");
    let eb = eb.json();
    let ct = diagnose_event(SNAPSHOT, EVENT, "json").json();
    assert_eq!(eb["findings"], ct["findings"]);
    assert_eq!(eb["hops"], ct["hops"]);
}

#[test]
fn diagnose_trail_log_file_diagnoses_each_denied_record() {
    let trail = read_json("events/trail-log-file.json");
    let records = trail["Records"].as_array().cloned().unwrap_or_default();
    let denied: Vec<String> = records
        .iter()
        .filter(|r| r.get("errorCode").is_some_and(|c| !c.is_null()))
        .filter_map(|r| r["eventID"].as_str().map(str::to_owned))
        .collect();
    let succeeded: Vec<String> = records
        .iter()
        .filter(|r| r.get("errorCode").is_none_or(Value::is_null))
        .filter_map(|r| r["eventID"].as_str().map(str::to_owned))
        .collect();
    assert!(
        denied.len() >= 2,
        "the sample should hold several denied records"
    );

    let r = diagnose_event(SNAPSHOT, "events/trail-log-file.json", "json");
    assert_eq!(r.code, 1, "{r:?}");
    let out = r.json();
    let diagnoses = out["diagnoses"].as_array().cloned().unwrap_or_default();
    let ids: Vec<String> = diagnoses
        .iter()
        .map(|d| {
            d["event"]["event_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, denied, "one diagnosis per denied record, in order");
    for d in &diagnoses {
        assert_eq!(d["verdict"], "denied", "{d}");
        assert_eq!(d["principal"], SESSION);
        assert!(
            d["findings"].as_array().is_some_and(|f| !f.is_empty()),
            "{d}"
        );
    }
    // Successful records are skipped, and said so on stderr.
    for id in &succeeded {
        assert!(
            r.stderr.contains(id.as_str()) && r.stderr.contains("skipped"),
            "{}",
            r.stderr
        );
    }

    let text = diagnose_event(SNAPSHOT, "events/trail-log-file.json", "text");
    assert_eq!(text.code, 1);
    let verdict_lines = text
        .stdout
        .lines()
        .filter(|l| l.starts_with("DENIED"))
        .count();
    assert_eq!(verdict_lines, denied.len(), "{}", text.stdout);
}

#[test]
fn diagnose_kms_event_invoked_by_s3() {
    let r = diagnose_event(
        SNAPSHOT,
        "events/kms-decrypt-denied-via-s3.eventbridge.json",
        "json",
    );
    assert_eq!(r.code, 1, "{r:?}");
    let out = r.json();
    assert_eq!(out["verdict"], "denied");
    let codes: Vec<&str> = out["findings"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["code"].as_str()).collect())
        .unwrap_or_default();
    assert!(codes.contains(&"KEY_POLICY_NO_ALLOW"), "{codes:?}");
    assert!(
        out["hops"].as_array().is_some_and(|h| h
            .iter()
            .any(|h| h["action"] == "kms:Decrypt" && h["resource"] == KEY)),
        "{}",
        out["hops"]
    );
}

#[test]
fn diagnose_change_events_have_nothing_to_diagnose() {
    let mut n = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(repo("events"))
        .unwrap_or_else(|e| panic!("events/: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.starts_with("change-") {
            continue;
        }
        n += 1;
        let rel = format!("events/{name}");
        let r = diagnose_event(SNAPSHOT, &rel, "text");
        assert_eq!(r.code, 0, "{rel}: {r:?}");
        assert!(
            r.stdout.contains("nothing to diagnose") && r.stdout.contains(&rel),
            "{rel}: {}",
            r.stdout
        );
    }
    assert!(n >= 1, "no change-* event in events/");
}

// ======================================================================================
// diagnose: bad input
// ======================================================================================

/// The example snapshot with the bucket policy's first statement given an invalid `Effect`;
/// `as_string` keeps the policy as a JSON string (as in the example), otherwise an object.
fn snapshot_with_bad_effect(as_string: bool) -> PathBuf {
    let mut snap = read_json(SNAPSHOT);
    let policy = &mut snap["accounts"][BUCKET_ACCOUNT]["s3"]["doc-example-bucket"]["policy"];
    let mut doc: Value = match &*policy {
        Value::String(s) => {
            serde_json::from_str(s).unwrap_or_else(|e| panic!("bucket policy: {e}"))
        }
        other => other.clone(),
    };
    doc["Statement"][0]["Effect"] = json!("Permit");
    *policy = if as_string {
        Value::String(doc.to_string())
    } else {
        doc
    };
    let name = if as_string {
        "bad-effect-string.json"
    } else {
        "bad-effect-object.json"
    };
    temp_file(name, &snap.to_string())
}

#[test]
fn diagnose_malformed_snapshot_policy_object_names_file_and_path() {
    let f = snapshot_with_bad_effect(false);
    let r = run([
        "diagnose".as_ref(),
        "--snapshot".as_ref(),
        f.as_os_str(),
        "--event".as_ref(),
        EVENT.as_ref(),
    ]);
    assert_bad_input(&r, &f, &[BAD_EFFECT_PATH, "`Permit`"]);
}

#[test]
fn diagnose_malformed_snapshot_policy_string_names_file_and_path() {
    let f = snapshot_with_bad_effect(true);
    let r = run([
        "diagnose".as_ref(),
        "--snapshot".as_ref(),
        f.as_os_str(),
        "--event".as_ref(),
        EVENT.as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    assert_bad_input(&r, &f, &[BAD_EFFECT_PATH, "`Permit`"]);
}

#[test]
fn diagnose_snapshot_policy_with_duplicate_effect_is_bad_input() {
    // `"Effect": "Deny", "Effect": "Allow"` must not be read as Allow (the last value), in a
    // policy given as an object or as a JSON string.
    for as_string in [false, true] {
        let bad = std::fs::read_to_string(snapshot_with_bad_effect(as_string))
            .unwrap_or_else(|e| panic!("{e}"));
        let (permit, twice) = if as_string {
            (
                r#"\"Effect\":\"Permit\""#,
                r#"\"Effect\":\"Deny\",\"Effect\":\"Allow\""#,
            )
        } else {
            (
                r#""Effect":"Permit""#,
                r#""Effect":"Deny","Effect":"Allow""#,
            )
        };
        assert_eq!(bad.matches(permit).count(), 1, "{as_string}");
        let f = temp_file("duplicate-effect.json", &bad.replace(permit, twice));
        let r = run([
            "diagnose".as_ref(),
            "--snapshot".as_ref(),
            f.as_os_str(),
            "--event".as_ref(),
            EVENT.as_ref(),
        ]);
        assert_bad_input(&r, &f, &[BAD_EFFECT_PATH, "duplicate key `Effect`"]);
    }
}

#[test]
fn diagnose_snapshot_with_invalid_account_id_names_the_path() {
    let f = temp_file(
        "bad-account.json",
        r#"{"accounts": {"not-an-account": {}}}"#,
    );
    let r = run([
        "diagnose".as_ref(),
        "--snapshot".as_ref(),
        f.as_os_str(),
        "--event".as_ref(),
        EVENT.as_ref(),
    ]);
    assert_bad_input(&r, &f, &["accounts.not-an-account"]);
}

#[test]
fn diagnose_event_without_event_name_names_file_and_path() {
    let mut ev = read_json(EVENT);
    if let Some(o) = ev.as_object_mut() {
        o.remove("eventName");
    }
    let f = temp_file("no-event-name.json", &ev.to_string());
    let r = run([
        "diagnose".as_ref(),
        "--snapshot".as_ref(),
        SNAPSHOT.as_ref(),
        "--event".as_ref(),
        f.as_os_str(),
    ]);
    assert_bad_input(&r, &f, &["eventName", "missing"]);
}

#[test]
fn diagnose_eventbridge_without_event_name_names_the_detail_path() {
    let mut ev = read_json("events/s3-getobject-denied-cross-account.eventbridge.json");
    if let Some(o) = ev["detail"].as_object_mut() {
        o.remove("eventName");
    }
    let f = temp_file("eb-no-event-name.json", &ev.to_string());
    let r = run([
        "diagnose".as_ref(),
        "--snapshot".as_ref(),
        SNAPSHOT.as_ref(),
        "--event".as_ref(),
        f.as_os_str(),
    ]);
    assert_bad_input(&r, &f, &["detail.eventName"]);
}

#[test]
fn diagnose_trail_record_without_event_name_names_the_record() {
    let mut trail = read_json("events/trail-log-file.json");
    if let Some(o) = trail["Records"][1].as_object_mut() {
        o.remove("eventName");
    }
    let f = temp_file("trail-no-event-name.json", &trail.to_string());
    let r = run([
        "diagnose".as_ref(),
        "--snapshot".as_ref(),
        SNAPSHOT.as_ref(),
        "--event".as_ref(),
        f.as_os_str(),
    ]);
    assert_bad_input(&r, &f, &["Records[1].eventName"]);
}

#[test]
fn diagnose_event_that_is_not_json_is_bad_input() {
    let f = temp_file("not-json.json", "{\"eventName\": ");
    let r = run([
        "diagnose".as_ref(),
        "--snapshot".as_ref(),
        SNAPSHOT.as_ref(),
        "--event".as_ref(),
        f.as_os_str(),
    ]);
    assert_bad_input(&r, &f, &["not valid JSON"]);
}

#[test]
fn diagnose_missing_snapshot_file_is_bad_input() {
    let f = std::env::temp_dir().join(format!(
        "s3-kms-auditor-cli-{}-no-snapshot.json",
        std::process::id()
    ));
    let r = run([
        "diagnose".as_ref(),
        "--snapshot".as_ref(),
        f.as_os_str(),
        "--event".as_ref(),
        EVENT.as_ref(),
    ]);
    assert_bad_input(&r, &f, &["cannot read"]);
}

#[test]
fn diagnose_without_event_or_request_is_bad_input() {
    let r = run(["diagnose", "--snapshot", SNAPSHOT]);
    r.assert_no_panic("diagnose without a request");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--event"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

#[test]
fn diagnose_with_partial_ad_hoc_request_is_bad_input() {
    let r = run(["diagnose", "--snapshot", SNAPSHOT, "--principal", SESSION]);
    r.assert_no_panic("diagnose with --principal only");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("--action") && r.stderr.contains("--resource"),
        "{}",
        r.stderr
    );
}

#[test]
fn diagnose_with_event_and_ad_hoc_request_is_bad_input() {
    let r = run([
        "diagnose",
        "--snapshot",
        SNAPSHOT,
        "--event",
        EVENT,
        "--principal",
        SESSION,
        "--action",
        "s3:GetObject",
        "--resource",
        OBJECT,
    ]);
    r.assert_no_panic("diagnose with both an event and an ad hoc request");
    assert_eq!(r.code, 2, "{r:?}");
}

// ======================================================================================
// Never a panic
// ======================================================================================

#[test]
fn no_event_sample_makes_diagnose_panic() {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(repo("events"))
        .unwrap_or_else(|e| panic!("events/: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    entries.sort();
    assert!(entries.len() >= 5, "expected the event samples");
    for event in &entries {
        for snapshot in [SNAPSHOT, SNAPSHOT_FIXED] {
            for format in ["text", "json"] {
                let r = run([
                    "diagnose".as_ref(),
                    "--snapshot".as_ref(),
                    snapshot.as_ref(),
                    "--event".as_ref(),
                    event.as_os_str(),
                    "--format".as_ref(),
                    format.as_ref(),
                ]);
                let what = format!("{} with {snapshot} ({format})", event.display());
                r.assert_no_panic(&what);
                assert_ne!(
                    r.code, 2,
                    "{what}: a shipped sample is valid input:\n{}",
                    r.stderr
                );
                if format == "json" && !r.stdout.starts_with("nothing to diagnose") {
                    r.json();
                }
            }
        }
    }
}

#[test]
fn hostile_inputs_never_panic() {
    let events = [
        "{}",
        "[]",
        "null",
        "\"text\"",
        "42",
        r#"{"Records": []}"#,
        r#"{"Records": [1, null, {}]}"#,
        r#"{"detail-type": "AWS API Call via CloudTrail", "detail": {}}"#,
        r#"{"detail-type": "AWS API Call via CloudTrail", "detail": null}"#,
        r#"{"eventName": "GetObject", "eventSource": "s3.amazonaws.com", "errorCode": "AccessDenied"}"#,
        r#"{"eventName": "GetObject", "eventSource": "s3.amazonaws.com", "errorCode": "AccessDenied", "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role"}, "requestParameters": {"bucketName": "", "key": ""}}"#,
        r#"{"eventName": "Decrypt", "eventSource": "kms.amazonaws.com", "errorCode": "AccessDenied", "userIdentity": {"type": "AWSService", "invokedBy": "s3.amazonaws.com"}, "resources": [{"ARN": 7}]}"#,
    ];
    for (i, ev) in events.iter().enumerate() {
        let f = temp_file(&format!("hostile-event-{i}.json"), ev);
        let r = run([
            "diagnose".as_ref(),
            "--snapshot".as_ref(),
            SNAPSHOT.as_ref(),
            "--event".as_ref(),
            f.as_os_str(),
        ]);
        r.assert_no_panic(&format!("event {ev}"));
    }
    let snapshots = [
        "{}",
        "[]",
        r#"{"accounts": {}}"#,
        r#"{"accounts": null}"#,
        r#"{"accounts": {"111122223333": null}}"#,
        r#"{"accounts": {"111122223333": {"s3": {"doc-example-bucket": {"policy": "%7B"}}}}}"#,
        r#"{"accounts": {"111122223333": {"s3": {"doc-example-bucket": {"objects": {"reports/q1.csv": {"SSEKMSKeyId": 3}}}}}}}"#,
        r#"{"accounts": {"111122223333": {"kms": {"not-an-arn": {}}}}}"#,
        r#"{"accounts": {"111122223333": {"iam": {"RoleDetailList": [{}]}}}}"#,
    ];
    for (i, snap) in snapshots.iter().enumerate() {
        let f = temp_file(&format!("hostile-snapshot-{i}.json"), snap);
        let r = run([
            "diagnose".as_ref(),
            "--snapshot".as_ref(),
            f.as_os_str(),
            "--event".as_ref(),
            EVENT.as_ref(),
        ]);
        r.assert_no_panic(&format!("snapshot {snap}"));
        let r = run([
            "diagnose".as_ref(),
            "--snapshot".as_ref(),
            f.as_os_str(),
            "--principal".as_ref(),
            SESSION.as_ref(),
            "--action".as_ref(),
            "kms:Decrypt".as_ref(),
            "--resource".as_ref(),
            KEY.as_ref(),
        ]);
        r.assert_no_panic(&format!("snapshot {snap} (ad hoc)"));
    }
    let inputs = [
        "{}",
        "[]",
        r#"{"request": {}}"#,
        r#"{"request": {"principal": "*", "action": "s3:GetObject", "resource": "x"}}"#,
        r#"{"request": {"principal": "arn:aws:iam::111122223333:root", "action": "kms:Decrypt", "resource": "*"}, "policies": {"grants": [{}]}}"#,
        r#"{"request": {"principal": "arn:aws:sts::111122223333:assumed-role/r/s", "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k"}, "policies": {"identity": ["%"], "scp": [[]], "rcp": [[null]]}}"#,
        r#"{"request": {"principal": "arn:aws:sts::111122223333:assumed-role/r/s", "action": "s3:GetObject", "resource": "arn:aws:s3:::b/${aws:username}"}, "policies": {"identity": [{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/${aws:username}${*}${?}${$}${"}}]}}"#,
    ];
    for (i, input) in inputs.iter().enumerate() {
        let f = temp_file(&format!("hostile-input-{i}.json"), input);
        for format in ["text", "json"] {
            let r = explain(&f, format);
            r.assert_no_panic(&format!("explain {input}"));
        }
    }
}

#[test]
fn diagnose_adhoc_rejects_actions_and_resources_it_does_not_model() {
    // GIVEN an action the diagnosis does not model, or a bucket ARN for an object action
    // WHEN it is diagnosed ad hoc
    // THEN the CLI refuses (exit 2) instead of silently evaluating something else.
    let principal = "arn:aws:sts::444455556666:assumed-role/reader/s1";
    let r = run([
        "diagnose",
        "--snapshot",
        "examples/kc-scenario.json",
        "--principal",
        principal,
        "--action",
        "s3:DeleteObject",
        "--resource",
        "arn:aws:s3:::doc-example-bucket/reports/q1.csv",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("s3:DeleteObject"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    let r = run([
        "diagnose",
        "--snapshot",
        "examples/kc-scenario.json",
        "--principal",
        principal,
        "--action",
        "s3:GetObject",
        "--resource",
        "arn:aws:s3:::doc-example-bucket",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("object ARN"), "{}", r.stderr);
}

#[test]
fn explain_anonymous_read_is_granted_by_the_resource_policy() {
    // GIVEN an anonymous caller and a public bucket policy
    let input = temp_file(
        "anonymous.json",
        r#"{"request":{"principal":"anonymous","action":"s3:GetObject","resource":"arn:aws:s3:::b/k","resource_account":"111122223333"},
            "policies":{"resource":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}}}"#,
    );
    // WHEN explained THEN it is allowed by the resource policy, not by identity policies
    let r = explain(&input, "json");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["granted_by"], "resource_policy_direct");
}

// ======================================================================================
// exit codes: 3 for unknown, the same rules for sweep
// ======================================================================================

/// The working knowledge-center snapshot without the key policy (GetKeyPolicy refused): the
/// verdict is `unknown`.
fn snapshot_without_key_policy() -> PathBuf {
    let mut snap = read_json("tests/scenarios/base/kc-working.json");
    let key = snap["accounts"][BUCKET_ACCOUNT]["kms"][KEY]
        .as_object_mut()
        .unwrap_or_else(|| panic!("kc-working.json lacks the key {KEY}"));
    assert!(key.remove("policy").is_some(), "the key had a policy");
    temp_file("no-key-policy.json", &snap.to_string())
}

#[test]
fn diagnose_unknown_verdict_exits_3() {
    // GIVEN a snapshot that lacks the key policy, so nothing visible blocks but the verdict
    // cannot be decided
    let snap = snapshot_without_key_policy();
    // WHEN it is diagnosed, in either format
    let json_run = run([
        "diagnose",
        "--snapshot",
        snap.to_str().unwrap(),
        "--event",
        EVENT,
        "--format",
        "json",
    ]);
    // THEN the exit code is 3, neither 0 (allowed) nor 1 (blocking)
    assert_eq!(json_run.json()["verdict"], "unknown", "{json_run:?}");
    assert_eq!(
        json_run.json()["findings"]
            .as_array()
            .map(|f| f.iter().filter(|f| f["blocking"] == true).count()),
        Some(0)
    );
    assert_eq!(json_run.code, 3, "{json_run:?}");
    let text_run = run([
        "diagnose",
        "--snapshot",
        snap.to_str().unwrap(),
        "--event",
        EVENT,
    ]);
    assert_eq!(text_run.code, 3, "{text_run:?}");
    assert!(
        text_run.stdout.starts_with("UNKNOWN"),
        "{}",
        text_run.stdout
    );
}

#[test]
fn diagnose_blocking_wins_over_unknown_across_records() {
    // GIVEN a trail log file with the same denied record twice, diagnosed against a snapshot
    // where it is unknown, then against one where it is denied
    let record = read_json(EVENT);
    let log = temp_file(
        "two-records.json",
        &json!({ "Records": [record.clone(), record] }).to_string(),
    );
    let unknown = snapshot_without_key_policy();
    let r = run([
        "diagnose",
        "--snapshot",
        unknown.to_str().unwrap(),
        "--event",
        log.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 3, "{r:?}");
    let r = run([
        "diagnose",
        "--snapshot",
        SNAPSHOT,
        "--event",
        log.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1, "{r:?}");
}

#[test]
fn sweep_exit_codes_follow_the_same_rules() {
    // Blocking paths: 1.
    let r = run(["sweep", "--snapshot", SNAPSHOT]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("DENIED"), "{}", r.stdout);
    // Everything readable: 0.
    let r = run(["sweep", "--snapshot", SNAPSHOT_FIXED, "--format", "json"]);
    let paths = r.json()["paths"].as_array().cloned().unwrap_or_default();
    assert!(!paths.is_empty(), "{r:?}");
    assert!(paths.iter().all(|p| p["verdict"] == "allowed"), "{r:?}");
    assert_eq!(r.code, 0, "{r:?}");
    // Nothing blocks but a path cannot be decided: 3. (Without the legacy object, whose AWS
    // managed key blocks whatever the key policy says.)
    let mut snap: Value =
        serde_json::from_str(&std::fs::read_to_string(snapshot_without_key_policy()).unwrap())
            .unwrap();
    let objects = snap["accounts"][BUCKET_ACCOUNT]["s3"]["doc-example-bucket"]["objects"]
        .as_object_mut()
        .expect("listed objects");
    assert!(objects.remove("legacy/2019-summary.csv").is_some());
    let snap = temp_file("sweep-unknown.json", &snap.to_string());
    let r = run([
        "sweep",
        "--snapshot",
        snap.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let out = r.json();
    let verdicts: Vec<&str> = out["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["verdict"].as_str())
        .collect();
    assert!(verdicts.contains(&"unknown"), "{verdicts:?}");
    assert!(!verdicts.contains(&"denied"), "{verdicts:?}");
    assert_eq!(r.code, 3, "{r:?}");
}

#[test]
fn help_documents_every_exit_code() {
    for args in [
        vec!["--help"],
        vec!["diagnose", "--help"],
        vec!["sweep", "--help"],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 0, "{r:?}");
        for needle in [
            "0  nothing blocks",
            "1  blocking findings",
            "2  bad input",
            "3  unknown",
        ] {
            assert!(
                r.stdout.contains(needle),
                "{args:?} lacks {needle:?}:\n{}",
                r.stdout
            );
        }
    }
}

// ======================================================================================
// a closed pipe (`... | head`) ends quietly with the command's normal code
// ======================================================================================

/// A pipe whose reading end is already closed, as `| head` leaves it once head has exited:
/// `true` holds the only reading end, and has exited before the auditor starts.
fn closed_pipe() -> Stdio {
    let mut reader = Command::new("true")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `true`: {e}"));
    let writer = reader.stdin.take().expect("the pipe's writing end");
    let status = reader.wait().expect("`true` exits");
    assert!(status.success());
    Stdio::from(writer)
}

#[test]
fn output_to_a_closed_pipe_ends_quietly_with_the_normal_code() {
    let kc = [
        "diagnose",
        "--snapshot",
        SNAPSHOT,
        "--event",
        "events/s3-getobject-denied-cross-account.eventbridge.json",
    ];
    let mut kc_json = kc.to_vec();
    kc_json.extend(["--format", "json"]);
    let fixed = ["diagnose", "--snapshot", SNAPSHOT_FIXED, "--event", EVENT];
    let kms_hop = temp_file(
        "kms-hop.json",
        fenced_after(&read("docs/explain-format.md"), "`kms-hop.json`:", "json"),
    );
    let explain = vec!["explain", "--input", kms_hop.to_str().unwrap()];
    let cases: Vec<Vec<&str>> = vec![
        kc.to_vec(),
        kc_json,
        fixed.to_vec(),
        vec!["sweep", "--snapshot", SNAPSHOT],
        explain,
        vec!["--help"],
    ];
    for args in cases {
        // GIVEN what the command prints and returns with a reader
        let normal = run(&args);
        assert!(
            !normal.stdout.is_empty(),
            "{args:?} printed nothing: {normal:?}"
        );
        assert!((0..=3).contains(&normal.code), "{args:?}: {normal:?}");
        // WHEN its reader is gone before it writes
        let out = Command::new(BIN)
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
        // THEN it ends with the same code and says nothing
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(normal.code),
            "{args:?} on a closed pipe; stderr:\n{stderr}"
        );
        assert!(
            stderr.is_empty(),
            "{args:?} on a closed pipe wrote to stderr:\n{stderr}"
        );
    }
}

// ======================================================================================
// the README's sample output
// ======================================================================================

/// The fenced block under `## What you get` in README.md: (offset of its first line, text).
fn readme_sample(readme: &str) -> (usize, &str) {
    let section = readme
        .find("## What you get")
        .unwrap_or_else(|| panic!("README.md lacks `## What you get`"));
    let open = readme[section..]
        .find("```\n")
        .map(|i| section + i + 4)
        .unwrap_or_else(|| panic!("no fenced block under `## What you get`"));
    let len = readme[open..]
        .find("```")
        .unwrap_or_else(|| panic!("unclosed fenced block under `## What you get`"));
    (open, &readme[open..open + len])
}

/// Whether `real` is what `shown` shows: equal, or, when `shown` has `…`, the text around each
/// `…` in order, the first piece at the start and the last at the end.
fn shows(shown: &str, real: &str) -> bool {
    if !shown.contains('…') {
        return shown == real;
    }
    let pieces: Vec<&str> = shown.split('…').collect();
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !real.starts_with(first) || real.len() < first.len() + last.len() || !real.ends_with(last) {
        return false;
    }
    let mut rest = &real[first.len()..real.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    true
}

#[test]
fn readme_wildcard_matching_is_strict_outside_the_ellipses() {
    assert!(shows("DENIED: 2 causes", "DENIED: 2 causes"));
    assert!(!shows("DENIED: 2 causes", "DENIED: 3 causes"));
    assert!(shows(
        "$ aws kms put-key-policy …'{…}'",
        "$ aws kms put-key-policy --key-id k --policy '{\"a\":1}'"
    ));
    assert!(!shows(
        "$ aws kms put-key-policy …'{…}'",
        "$ aws kms create-grant --policy '{}'"
    ));
    assert!(!shows(
        "1. KEY_POLICY_NO_ALLOW … account 111122223333 must act",
        "1. KEY_POLICY_NO_ALLOW [kms:Decrypt] — account 444455556666 must act"
    ));
    assert!(!shows("a…b…c", "acb"));
    assert!(shows("a…b…c", "a-b-c"));
}

#[test]
fn readme_sample_output_is_what_the_binary_prints() {
    // GIVEN the README's first command and the output it shows under `## What you get`
    let readme = read("README.md");
    let command = readme
        .lines()
        .find(|l| l.starts_with("cargo run --no-default-features -- diagnose "))
        .unwrap_or_else(|| panic!("README.md lacks its first command"));
    let args: Vec<&str> = command
        .split_once(" -- ")
        .map(|(_, a)| a.split_whitespace().collect())
        .unwrap_or_default();
    // WHEN the binary runs it
    let r = run(&args);
    assert_eq!(r.code, 1, "the README's example is a denial: {r:?}");
    let (offset, shown) = readme_sample(&readme);
    if std::env::var_os("S3KA_BLESS").is_some() {
        // Regenerate: the block becomes the exact output.
        let updated = format!(
            "{}{}{}",
            &readme[..offset],
            r.stdout,
            &readme[offset + shown.len()..]
        );
        std::fs::write(repo("README.md"), updated).expect("write README.md");
        eprintln!("README.md: `## What you get` rewritten from the binary's output");
        return;
    }
    // THEN every line of the block shows the line the binary prints (`…` elides), and no
    // line is missing or extra. Regenerate with `S3KA_BLESS=1 cargo test --test cli readme`.
    let shown: Vec<&str> = shown.lines().collect();
    let real: Vec<&str> = r.stdout.lines().collect();
    for (i, (s, l)) in shown.iter().zip(&real).enumerate() {
        assert!(
            shows(s, l),
            "README.md `## What you get`, line {} of the block no longer matches the binary:\n  README: {s}\n  binary: {l}\n(regenerate with S3KA_BLESS=1 cargo test --test cli readme)",
            i + 1
        );
    }
    assert_eq!(
        shown.len(),
        real.len(),
        "README.md `## What you get` has {} lines, the binary prints {}:\n{}",
        shown.len(),
        real.len(),
        r.stdout
    );
}

// Size bounds (docs/design.md, *Size bounds*): oversized input is refused with exit 2 and a
// message naming the file and the limit, before it is parsed. Oversized files are generated
// here, in the temp directory: sparse where the size alone matters.
// ======================================================================================

/// A sparse file of `len` bytes (no disk space used): only its metadata is ever read.
fn sparse_file(name: &str, len: u64) -> PathBuf {
    let path = temp_file(name, "");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(len))
        .unwrap_or_else(|e| panic!("cannot size {path:?}: {e}"));
    path
}

fn assert_refused(r: &Run, file: &Path, needles: &[&str]) {
    r.assert_no_panic("an oversized input");
    assert_eq!(r.code, 2, "{r:?}");
    let file = file.display().to_string();
    assert!(r.stderr.contains(&file), "names the file {file}: {r:?}");
    for n in needles {
        assert!(r.stderr.contains(n), "says `{n}`: {r:?}");
    }
}

#[test]
fn input_files_over_the_default_bound_are_refused_before_reading() {
    let over = 64 * 1024 * 1024 + 1;
    let snap = sparse_file("huge-snapshot.json", over);
    let needles = [
        "the file is 67,108,865 bytes, over the 67,108,864 bytes an input file may have",
        "--max-input-bytes",
    ];
    let r = run(["sweep".as_ref(), "--snapshot".as_ref(), snap.as_os_str()]);
    assert_refused(&r, &snap, &needles);
    let r = run([
        "impact".as_ref(),
        "--before".as_ref(),
        repo(SNAPSHOT).as_os_str(),
        "--after".as_ref(),
        snap.as_os_str(),
    ]);
    assert_refused(&r, &snap, &needles);
    let event = sparse_file("huge-event.json", over);
    let r = run([
        "diagnose".as_ref(),
        "--snapshot".as_ref(),
        repo(SNAPSHOT).as_os_str(),
        "--event".as_ref(),
        event.as_os_str(),
    ]);
    assert_refused(&r, &event, &needles);
    let input = sparse_file("huge-explain.json", over);
    let r = explain(&input, "text");
    assert_refused(&r, &input, &needles);
}

#[test]
fn max_input_bytes_moves_the_bound() {
    let text = read(SNAPSHOT);
    let size = text.len();
    // Below the file's size: refused, with the bound named.
    let low = (size - 1).to_string();
    let r = run([
        "sweep",
        "--snapshot",
        SNAPSHOT,
        "--max-input-bytes",
        low.as_str(),
    ]);
    assert_refused(
        &r,
        Path::new(SNAPSHOT),
        &[&format!("bytes, over the {} bytes", thousands(size - 1))],
    );
    // At the file's size: read as without the flag.
    let exact = size.to_string();
    let bounded = run([
        "sweep",
        "--snapshot",
        SNAPSHOT,
        "--max-input-bytes",
        exact.as_str(),
    ]);
    let default = run(["sweep", "--snapshot", SNAPSHOT]);
    assert_ne!(bounded.code, 2, "{bounded:?}");
    assert_eq!(bounded.code, default.code);
    assert_eq!(bounded.stdout, default.stdout);
    // Raised above the default: a file over 64 MiB is read (and then fails as what it is,
    // 64 MiB of zero bytes: not JSON).
    let snap = sparse_file("raised.json", 64 * 1024 * 1024 + 1);
    let r = run([
        "sweep".as_ref(),
        "--snapshot".as_ref(),
        snap.as_os_str(),
        "--max-input-bytes".as_ref(),
        "70000000".as_ref(),
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("not valid JSON"), "{r:?}");
    assert!(!r.stderr.contains("over the"), "{r:?}");
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let groups: Vec<&str> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|g| std::str::from_utf8(g).unwrap())
        .collect();
    groups.join(",")
}

/// The knowledge-center snapshot with `edit` applied, written to a temp file.
fn edited_snapshot(name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let mut v = read_json(SNAPSHOT);
    edit(&mut v);
    temp_file(name, &serde_json::to_string(&v).unwrap())
}

#[test]
fn oversized_policies_in_a_snapshot_are_refused() {
    let padding = format!("arn:aws:s3:::doc-example-bucket/{}", "x".repeat(20_480));
    let snap = edited_snapshot("big-bucket-policy.json", |v| {
        let policy = &mut v["accounts"][BUCKET_ACCOUNT]["s3"]["doc-example-bucket"]["policy"];
        // The example holds the policy as `get-bucket-policy` prints it: a JSON string.
        if let Some(text) = policy.as_str() {
            *policy = serde_json::from_str(text).unwrap();
        }
        policy["Statement"][0]["Resource"] = json!([padding]);
    });
    let r = run(["sweep".as_ref(), "--snapshot".as_ref(), snap.as_os_str()]);
    assert_refused(
        &r,
        &snap,
        &[
            "accounts.111122223333.s3.doc-example-bucket.policy: bucket policy of doc-example-bucket is",
            "over the 20,480 bytes AWS allows for a bucket policy",
            "https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-iam-policies.html",
        ],
    );
    // The same document as an SCP: 5,120 characters.
    let padding = format!("arn:aws:s3:::doc-example-bucket/{}", "x".repeat(5_120));
    let snap = edited_snapshot("big-scp.json", |v| {
        let scp = &mut v["accounts"][BUCKET_ACCOUNT]["organization"]["scp"][0][0];
        scp["Statement"][0]["Resource"] = json!([padding]);
    });
    let r = run(["sweep".as_ref(), "--snapshot".as_ref(), snap.as_os_str()]);
    assert_refused(
        &r,
        &snap,
        &[
            "accounts.111122223333.organization.scp[0][0]",
            "over the 5,120 characters AWS allows for a service control policy",
        ],
    );
}

#[test]
fn oversized_event_records_are_refused() {
    let mut record = read_json(EVENT);
    if let Some(records) = record.get_mut("Records") {
        record = records[0].take();
    }
    record["requestParameters"]["padding"] = json!("x".repeat(256 * 1024));
    let event = temp_file(
        "big-record.json",
        &serde_json::to_string(&json!({ "Records": [record] })).unwrap(),
    );
    let r = run([
        "diagnose".as_ref(),
        "--snapshot".as_ref(),
        repo(SNAPSHOT).as_os_str(),
        "--event".as_ref(),
        event.as_os_str(),
    ]);
    assert_refused(
        &r,
        &event,
        &[
            "Records[0]: a CloudTrail record of at least",
            "over the 262,144 bytes (256 KB) of the largest event EventBridge accepts",
        ],
    );
}

#[test]
fn oversized_explain_policies_are_a_warning() {
    let (input, _) = corpus_input(&corpus("kc-scenario/working-kms-hop-allowed.json"));
    let expected = explain(&input, "json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&input).unwrap()).unwrap();
    let identity = &mut v["policies"]["identity"][0]["Statement"];
    identity.as_array_mut().unwrap().push(
        json!({"Sid": "Padding", "Effect": "Deny", "Action": "s3:PutObject",
                     "Resource": format!("arn:aws:s3:::other/{}", "x".repeat(10_240))}),
    );
    let big = temp_file("big-explain.json", &serde_json::to_string(&v).unwrap());
    let r = explain(&big, "json");
    r.assert_no_panic("explain");
    // The decision is the same; the warning is on stderr.
    assert_eq!(r.code, expected.code, "{r:?}");
    assert_eq!(r.json()["decision"], expected.json()["decision"]);
    assert!(
        r.stderr.contains(&format!(
            "warning: {}: policies.identity[0] is",
            big.display()
        )),
        "{r:?}"
    );
    assert!(
        r.stderr.contains(
            "over the 10,240 characters AWS allows for the inline policies of a role together"
        ),
        "{r:?}"
    );
    assert!(!expected.stderr.contains("warning"), "{expected:?}");
}

// ======================================================================================
// sweep: the paths of impact, per-account snapshot directories
// ======================================================================================

#[test]
fn sweep_reports_a_reader_whose_iam_and_key_grant_name_the_bucket_the_bucket_policy_leaves_out() {
    // GIVEN the working setup with a bucket policy that grants only a partner: the reader's
    // IAM and the key policy still name the bucket
    let mut snap = read_json(SNAPSHOT_FIXED);
    snap["accounts"][BUCKET_ACCOUNT]["s3"]["doc-example-bucket"]["policy"] = json!({
        "Version": "2012-10-17", "Statement": [{"Sid": "Partner", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::777788889999:role/partner"}, "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::doc-example-bucket/reports/*"}]});
    let file = temp_file("bucket-policy-leaves-reader-out.json", &snap.to_string());
    // WHEN swept
    let r = run([
        "sweep".as_ref(),
        "--snapshot".as_ref(),
        file.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    // THEN the reader's path is reported, denied by the bucket policy, with the fields of an
    // impact PATH and the bucket owner as the account that must act
    assert_eq!(r.code, 1, "{r:?}");
    let out = r.json();
    let reader = out["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["principal"] == ROLE)
        .unwrap_or_else(|| panic!("no path of the reader: {out:#}"))
        .clone();
    assert_eq!(reader["verdict"], "denied");
    assert_eq!(reader["bucket"], "doc-example-bucket");
    assert_eq!(reader["object"], "reports/q1.csv");
    assert_eq!(reader["action"], "s3:GetObject");
    assert_eq!(reader["blocking"], json!(["BUCKET_POLICY_NO_ALLOW"]));
    assert_eq!(reader["must_act"], json!([BUCKET_ACCOUNT]));
    assert_eq!(reader["fixes_verified"], true);
    let by = reader["intended_by"].to_string();
    assert!(
        by.contains("AllowReaderDecryptViaS3") && by.contains("read-doc-example-bucket"),
        "{by}"
    );
    assert_eq!(
        reader["findings"][0]["fix"]["account"], BUCKET_ACCOUNT,
        "{reader:#}"
    );
    assert_eq!(out["summary"]["denied"], 2, "{out:#}");
    assert_eq!(out["summary"]["accounts"], 2);
}

/// `snap` split into one file per account, named `<account-id>.json`, in a fresh directory.
fn per_account_dir(name: &str, snap: &Value) -> PathBuf {
    let dir = temp_file(name, "").with_extension("d");
    std::fs::create_dir_all(&dir).unwrap();
    for (id, account) in snap["accounts"].as_object().unwrap() {
        let one = json!({"accounts": {id.clone(): account.clone()}});
        std::fs::write(dir.join(format!("{id}.json")), one.to_string()).unwrap();
    }
    dir
}

#[test]
fn sweep_of_a_directory_of_per_account_snapshots_is_the_sweep_of_the_whole() {
    // GIVEN the knowledge-center snapshot, whole and split one account per file
    let whole = run(["sweep", "--snapshot", SNAPSHOT, "--format", "json"]);
    let dir = per_account_dir("kc-accounts", &read_json(SNAPSHOT));
    // WHEN the directory is swept
    let r = run([
        "sweep".as_ref(),
        "--snapshot".as_ref(),
        dir.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    // THEN the paths and the exit code are those of the whole snapshot
    assert_eq!(r.code, whole.code, "{r:?}");
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["paths"], whole.json()["paths"]);
    assert!(!r.json()["paths"].as_array().unwrap().is_empty());
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

#[test]
fn sweep_refuses_an_account_two_files_describe_naming_both() {
    let snap = read_json(SNAPSHOT);
    let dir = per_account_dir("dup-accounts", &snap);
    // A second file that describes the bucket account again.
    let again = json!({"accounts": {BUCKET_ACCOUNT: snap["accounts"][BUCKET_ACCOUNT].clone()}});
    std::fs::write(dir.join("extra.json"), again.to_string()).unwrap();
    let r = run(["sweep".as_ref(), "--snapshot".as_ref(), dir.as_os_str()]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(&format!("{BUCKET_ACCOUNT}.json"))
            && r.stderr.contains("extra.json")
            && r.stderr
                .contains(&format!("account {BUCKET_ACCOUNT} is also described by")),
        "{}",
        r.stderr
    );
}

#[test]
fn sweep_refuses_a_file_named_for_an_account_it_does_not_describe() {
    let snap = read_json(SNAPSHOT);
    let dir = per_account_dir("misnamed", &snap);
    std::fs::rename(
        dir.join(format!("{CALLER_ACCOUNT}.json")),
        dir.join("999988887777.json"),
    )
    .unwrap();
    let r = run(["sweep".as_ref(), "--snapshot".as_ref(), dir.as_os_str()]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("999988887777.json")
            && r.stderr.contains("named for account 999988887777"),
        "{}",
        r.stderr
    );
    // A bad file in the directory is named with its JSON path, as a single file would be.
    let dir = per_account_dir("bad-effect", &snap);
    let mut bad = read_json(SNAPSHOT);
    bad["accounts"]
        .as_object_mut()
        .unwrap()
        .remove(CALLER_ACCOUNT);
    bad["accounts"][BUCKET_ACCOUNT]["s3"]["doc-example-bucket"]["policy"] = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]});
    std::fs::write(dir.join(format!("{BUCKET_ACCOUNT}.json")), bad.to_string()).unwrap();
    let r = run(["sweep".as_ref(), "--snapshot".as_ref(), dir.as_os_str()]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(&format!("{BUCKET_ACCOUNT}.json")) && r.stderr.contains(BAD_EFFECT_PATH),
        "{}",
        r.stderr
    );
}

#[test]
fn sweep_takes_each_account_from_its_own_file_and_parts_only_when_none_exists() {
    // GIVEN the per-account directory as the live state store writes it: the caller's file
    // also keeps a stale part of the bucket account (the other side of a path it saw), here
    // without the bucket's policy
    let snap = read_json(SNAPSHOT);
    let whole = run(["sweep", "--snapshot", SNAPSHOT, "--format", "json"]);
    let dir = per_account_dir("state-store-parts", &snap);
    let mut stale = snap["accounts"][BUCKET_ACCOUNT].clone();
    stale["s3"]["doc-example-bucket"]
        .as_object_mut()
        .unwrap()
        .remove("policy");
    let caller_file = json!({"accounts": {
        CALLER_ACCOUNT: snap["accounts"][CALLER_ACCOUNT].clone(),
        BUCKET_ACCOUNT: stale.clone(),
    }});
    std::fs::write(
        dir.join(format!("{CALLER_ACCOUNT}.json")),
        caller_file.to_string(),
    )
    .unwrap();
    // WHEN the directory is swept
    let r = run([
        "sweep".as_ref(),
        "--snapshot".as_ref(),
        dir.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    // THEN the bucket account comes from its own file: the paths are those of the whole
    assert_eq!(r.code, whole.code, "{r:?}");
    assert_eq!(r.json()["paths"], whole.json()["paths"]);

    // WHEN the bucket account's own file is missing
    std::fs::remove_file(dir.join(format!("{BUCKET_ACCOUNT}.json"))).unwrap();
    let r = run([
        "sweep".as_ref(),
        "--snapshot".as_ref(),
        dir.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    // THEN the part the caller's file keeps is used, rather than the account being lost or
    // the directory refused: both accounts are swept, and without the bucket policy that
    // intended the reader's path, the path is no longer checked
    assert_ne!(r.code, 2, "{r:?}");
    let out = r.json();
    assert_eq!(out["summary"]["accounts"], 2, "{out:#}");
    assert_ne!(out["paths"], whole.json()["paths"], "{out:#}");
}

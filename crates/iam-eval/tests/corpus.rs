//! Runs every case under `tests/corpus/**.json` (format: `docs/corpus-format.md`): the
//! `input` is evaluated as `s3-kms-auditor explain` would, and the decision, the blocking
//! layers, and (where given) the unknown context keys, deciding Sids, grant path, service rules
//! and warnings must equal `expect`. Unknown keys in a case are errors. Adding a case means
//! adding a file.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on a bad fixture"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use iam_eval::{authorize, ExplainInput, Json};
use serde::Deserialize;

fn case_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            case_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
}

/// A corpus case. Unknown keys are errors, here and in `expect`, so that a misspelt
/// expectation fails the run instead of silently checking nothing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[allow(dead_code, reason = "required for readers; not compared")]
    description: String,
    #[serde(default)]
    #[allow(dead_code, reason = "documentation for readers; not compared")]
    spec: Option<String>,
    #[allow(
        dead_code,
        reason = "re-read from the raw text so that duplicate keys are kept"
    )]
    input: serde_json::Value,
    expect: Expect,
}

/// What a case expects; see docs/corpus-format.md.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    decision: Option<String>,
    denied_by: Option<BTreeSet<String>>,
    unknown_context_keys: Option<BTreeSet<String>>,
    deciding_sids: Option<BTreeSet<String>>,
    /// `null` (no grant path) is an expectation too, hence the double option.
    #[serde(default, deserialize_with = "present")]
    granted_by: Option<serde_json::Value>,
    service_rules: Option<BTreeSet<String>>,
    warnings: Option<BTreeSet<String>>,
    error_path: Option<String>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// The `code` of every entry of a list-valued field of the serialized evaluation (an absent
/// field counts as empty).
fn codes(ev: &serde_json::Value, field: &str) -> BTreeSet<String> {
    ev.get(field)
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.get("code").and_then(|c| c.as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks one case given as text; `Err` describes the mismatch.
fn check_text(text: &str) -> Result<(), String> {
    let case: Case = serde_json::from_str(text).map_err(|e| format!("bad case: {e}"))?;
    let expect = case.expect;
    // Parse the input from its own text so that duplicate keys inside it are seen.
    let raw = Json::parse(text).map_err(|e| e.to_string())?;
    let input_json = raw.get("input").ok_or("missing input")?;
    let parsed = ExplainInput::from_json(input_json);
    if let Some(want_path) = &expect.error_path {
        return match parsed {
            Err(e) if e.path() == want_path => Ok(()),
            Err(e) => Err(format!(
                "error at `{}` ({e}), expected path `{want_path}`",
                e.path()
            )),
            Ok(_) => Err(format!(
                "input accepted, expected an error at `{want_path}`"
            )),
        };
    }
    let input = parsed.map_err(|e| format!("input rejected: {e}"))?;
    let ev = authorize(&input.request, &input.policy_set());
    let json = serde_json::to_value(&ev).map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    let want_decision = expect.decision.ok_or("missing expect.decision")?;
    let got_decision = format!("{:?}", ev.decision);
    if got_decision != want_decision {
        problems.push(format!("decision {got_decision}, expected {want_decision}"));
    }
    let want_layers = expect.denied_by.ok_or("missing expect.denied_by")?;
    let got_layers: BTreeSet<String> = ev.denied_by.iter().map(|l| l.as_str().to_owned()).collect();
    if want_layers != got_layers {
        problems.push(format!(
            "denied_by {got_layers:?}, expected {want_layers:?}"
        ));
    }
    if let Some(want) = expect.unknown_context_keys {
        // Exact spelling: the keys are reported as the policy spells them.
        let got: BTreeSet<String> = ev.unknown_context_keys.iter().cloned().collect();
        if want != got {
            problems.push(format!("unknown_context_keys {got:?}, expected {want:?}"));
        }
    }
    if let Some(want) = expect.deciding_sids {
        let got: BTreeSet<String> = ev
            .statements
            .iter()
            .filter_map(|s| s.sid.map(str::to_owned))
            .collect();
        if want != got {
            problems.push(format!("deciding_sids {got:?}, expected {want:?}"));
        }
    }
    if let Some(want) = expect.granted_by {
        let got = json.get("granted_by").cloned().unwrap_or_default();
        if want != got {
            problems.push(format!("granted_by {got}, expected {want}"));
        }
    }
    for (field, want) in [
        ("service_rules", expect.service_rules),
        ("warnings", expect.warnings),
    ] {
        if let Some(want) = want {
            let got = codes(&json, field);
            if want != got {
                problems.push(format!("{field} {got:?}, expected {want:?}"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Checks one case file.
fn check(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    check_text(&text)
}

#[test]
fn misspelt_expectations_are_rejected() {
    let case = |expect: &str| {
        format!(
            r#"{{"description": "d", "input": {{"request": {{"principal": "arn:aws:iam::111122223333:user/a",
               "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k"}}}}, "expect": {expect}}}"#
        )
    };
    // The well-formed case passes, so the failures below are due to the misspelt key alone.
    assert_eq!(
        check_text(&case(
            r#"{"decision": "ImplicitlyDenied", "denied_by": ["identity"]}"#
        )),
        Ok(())
    );
    let err = check_text(&case(
        r#"{"decision": "ImplicitlyDenied", "denied_by": ["identity"], "deciding_sid": ["X"]}"#,
    ))
    .unwrap_err();
    assert!(err.contains("deciding_sid"), "{err}");
    let err = check_text(&format!(
        "{{\"descripton\": \"d\", {}",
        case(r#"{"decision": "ImplicitlyDenied", "denied_by": ["identity"]}"#)
            .trim_start()
            .trim_start_matches('{')
    ))
    .unwrap_err();
    assert!(err.contains("descripton"), "{err}");
}

#[test]
fn corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files = Vec::new();
    case_files(&root, &mut files);
    // The corpus is the engine's specification; losing files silently must fail the build.
    assert!(
        files.len() >= 250,
        "only {} corpus cases found under {}",
        files.len(),
        root.display()
    );
    let mut failures = Vec::new();
    for f in &files {
        if let Err(e) = check(f) {
            failures.push(format!(
                "{}: {e}",
                f.strip_prefix(&root).unwrap_or(f).display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    eprintln!("{} corpus cases passed", files.len());
}

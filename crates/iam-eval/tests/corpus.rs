//! Runs every case under `tests/corpus/**.json` (format: `docs/corpus-format.md`): the
//! `input` is evaluated as `s3-kms-auditor explain` would, and the decision, the blocking
//! layers, and (where given) the unknown context keys and deciding Sids must equal `expect`.
//! Adding a case means adding a file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on a bad fixture"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use iam_eval::{authorize, ExplainInput, Json};

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

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks one case; `Err` describes the mismatch.
fn check(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let case: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("case is not JSON: {e}"))?;
    let allowed = ["description", "spec", "input", "expect"];
    for k in case.as_object().ok_or("case is not an object")?.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!("unknown case key `{k}`"));
        }
    }
    case.get("description")
        .and_then(|d| d.as_str())
        .ok_or("missing description")?;
    let expect = case.get("expect").ok_or("missing expect")?;
    // Parse the input from its own text so that duplicate keys inside it are seen.
    let raw = Json::parse(&text).map_err(|e| e.to_string())?;
    let input_json = raw.get("input").ok_or("missing input")?;
    let parsed = ExplainInput::from_json(input_json);
    if let Some(want_path) = expect.get("error_path").and_then(|p| p.as_str()) {
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
    let mut problems = Vec::new();
    let want_decision = expect
        .get("decision")
        .and_then(|d| d.as_str())
        .ok_or("missing expect.decision")?;
    let got_decision = format!("{:?}", ev.decision);
    if got_decision != want_decision {
        problems.push(format!("decision {got_decision}, expected {want_decision}"));
    }
    let want_layers: BTreeSet<String> =
        strings(expect.get("denied_by").ok_or("missing expect.denied_by")?)
            .into_iter()
            .collect();
    let got_layers: BTreeSet<String> = ev.denied_by.iter().map(|l| l.as_str().to_owned()).collect();
    if want_layers != got_layers {
        problems.push(format!(
            "denied_by {got_layers:?}, expected {want_layers:?}"
        ));
    }
    if let Some(keys) = expect.get("unknown_context_keys") {
        let want: BTreeSet<String> = strings(keys).iter().map(|k| k.to_lowercase()).collect();
        let got: BTreeSet<String> = ev
            .unknown_context_keys
            .iter()
            .map(|k| k.to_lowercase())
            .collect();
        if want != got {
            problems.push(format!("unknown_context_keys {got:?}, expected {want:?}"));
        }
    }
    if let Some(sids) = expect.get("deciding_sids") {
        let want: BTreeSet<String> = strings(sids).into_iter().collect();
        let got: BTreeSet<String> = ev
            .statements
            .iter()
            .filter_map(|s| s.sid.map(str::to_owned))
            .collect();
        if want != got {
            problems.push(format!("deciding_sids {got:?}, expected {want:?}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
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

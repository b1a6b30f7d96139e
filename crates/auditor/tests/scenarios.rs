//! The scenario corpus (`tests/scenarios/*.json` at the repository root, format in
//! `docs/scenario-format.md`): each case is a snapshot (a base file plus an RFC 6902 patch, or
//! inline), an event or ad hoc request, and the expected verdict and findings.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on a bad fixture"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use auditor::diagnose::{diagnose, Code};
use auditor::event::{adhoc_request, parse_events, EventOutcome};
use auditor::json_patch;
use auditor::snapshot::Snapshot;
use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(v: &Value, what: &str) -> Result<Value, String> {
    match v {
        Value::String(path) => {
            let text = std::fs::read_to_string(repo_root().join(path))
                .map_err(|e| format!("{what} `{path}`: {e}"))?;
            serde_json::from_str(&text).map_err(|e| format!("{what} `{path}`: {e}"))
        }
        other => Ok(other.clone()),
    }
}

fn codes(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

struct Outcome {
    codes: BTreeSet<String>,
}

fn check(path: &Path, seen: &mut BTreeSet<String>) -> Result<(), String> {
    let case: Value =
        serde_json::from_str(&std::fs::read_to_string(path).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let allowed = [
        "description",
        "checklist",
        "snapshot",
        "patch",
        "event",
        "request",
        "translate",
        "expect",
    ];
    for k in case.as_object().ok_or("not an object")?.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!("unknown key `{k}`"));
        }
    }
    let translate = case.get("translate").map(Translation::parse).transpose()?;
    let mut raw = load(case.get("snapshot").ok_or("missing snapshot")?, "snapshot")?;
    if let Some(p) = case.get("patch") {
        let ops = json_patch::parse_patch(p).map_err(|e| format!("patch: {e}"))?;
        json_patch::apply(&mut raw, &ops).map_err(|e| format!("patch: {e}"))?;
    }
    if let Some(t) = &translate {
        raw = t.apply(&raw)?;
    }
    let snap = Snapshot::from_value(&raw).map_err(|e| format!("snapshot: {e}"))?;
    let query = match (case.get("event"), case.get("request")) {
        (Some(e), None) => {
            let mut ev = load(e, "event")?;
            if let Some(t) = &translate {
                ev = t.apply(&ev)?;
            }
            let outcomes = parse_events(&ev).map_err(|e| format!("event: {e}"))?;
            let denied: Vec<_> = outcomes
                .into_iter()
                .filter_map(|o| match o {
                    EventOutcome::Denied(d) => Some(d),
                    EventOutcome::Change(_) | EventOutcome::Skipped { .. } => None,
                })
                .collect();
            let [one] = denied.as_slice() else {
                return Err(format!(
                    "event: expected one denied record, found {}",
                    denied.len()
                ));
            };
            (**one).clone()
        }
        (None, Some(r)) => {
            let r = match &translate {
                Some(t) => t.apply(r)?,
                None => r.clone(),
            };
            let s = |k: &str| {
                r.get(k)
                    .and_then(Value::as_str)
                    .ok_or(format!("request.{k} missing"))
            };
            adhoc_request(s("principal")?, s("action")?, s("resource")?)
                .map_err(|e| format!("request: {e}"))?
        }
        _ => return Err("give exactly one of `event` and `request`".into()),
    };
    let d = diagnose(&snap, &query);
    let expect = case.get("expect").ok_or("missing expect")?;
    // A misspelt key must not switch an assertion off.
    const EXPECT_KEYS: [&str; 10] = [
        "verdict",
        "blocking",
        "first",
        "advisory",
        "fixes_verified",
        "confidence",
        "hops",
        "operation",
        "contains",
        "absent",
    ];
    for k in expect.as_object().ok_or("expect is not an object")?.keys() {
        if !EXPECT_KEYS.contains(&k.as_str()) {
            return Err(format!("unknown expect key `{k}`"));
        }
    }
    let mut problems = Vec::new();
    let output = serde_json::to_string(&d).map_err(|e| e.to_string())?;
    if let Some(hops) = expect.get("hops") {
        let got: Vec<Value> = d
            .hops
            .iter()
            .map(|h| serde_json::json!([h.action, h.decision]))
            .collect();
        if &Value::Array(got.clone()) != hops {
            problems.push(format!("hops {got:?}, expected {hops}"));
        }
    }
    if let Some(op) = expect.get("operation") {
        let got = serde_json::to_value(&d.operation).map_err(|e| e.to_string())?;
        if &got != op {
            problems.push(format!("operation {got}, expected {op}"));
        }
    }
    for text in codes(expect.get("contains")) {
        if !output.contains(&text) {
            problems.push(format!("the diagnosis does not mention `{text}`"));
        }
    }
    for text in codes(expect.get("absent")) {
        if output.contains(&text) {
            problems.push(format!("the diagnosis mentions `{text}`"));
        }
    }
    let verdict = serde_json::to_value(d.verdict).map_err(|e| e.to_string())?;
    if Some(&verdict) != expect.get("verdict") {
        problems.push(format!(
            "verdict {verdict}, expected {}",
            expect.get("verdict").unwrap_or(&Value::Null)
        ));
    }
    let got_blocking: BTreeSet<String> = d.blocking().map(|f| f.code.to_string()).collect();
    let want_blocking = codes(expect.get("blocking"));
    if got_blocking != want_blocking {
        problems.push(format!(
            "blocking {got_blocking:?}, expected {want_blocking:?}"
        ));
    }
    if let Some(first) = expect.get("first").and_then(Value::as_str) {
        let got = d
            .blocking()
            .next()
            .map(|f| f.code.to_string())
            .unwrap_or_default();
        if got != first {
            problems.push(format!("first {got}, expected {first}"));
        }
    }
    let all: BTreeSet<String> = d.findings.iter().map(|f| f.code.to_string()).collect();
    for a in codes(expect.get("advisory")) {
        if !all.contains(&a) {
            problems.push(format!("advisory {a} missing (got {all:?})"));
        }
    }
    if let Some(v) = expect.get("fixes_verified").and_then(Value::as_bool) {
        if v != d.fixes_verified {
            problems.push(format!("fixes_verified {}, expected {v}", d.fixes_verified));
        }
    }
    // Verified fixes must be exactly the printed ones: apply each printed patch in order to a
    // copy of the snapshot; nothing may block afterwards.
    if d.fixes_verified {
        let mut fixed = raw.clone();
        for f in d.blocking() {
            let patch = Value::Array(f.fix.as_ref().map(|x| x.patch.clone()).unwrap_or_default());
            let ops = json_patch::parse_patch(&patch).map_err(|e| format!("fix patch: {e}"))?;
            json_patch::apply(&mut fixed, &ops)
                .map_err(|e| format!("fix patch of {}: {e}", f.code))?;
        }
        let again = diagnose(
            &Snapshot::from_value(&fixed).map_err(|e| format!("fixed snapshot: {e}"))?,
            &query,
        );
        let left: Vec<String> = again.blocking().map(|f| f.code.to_string()).collect();
        if !left.is_empty() {
            problems.push(format!(
                "after the printed fixes, still blocked by {left:?}"
            ));
        }
        // Fixes to one policy are cumulative: the last one printed for a document holds every
        // earlier change to it, so its command alone also works.
        let mut last: std::collections::BTreeMap<String, Value> = std::collections::BTreeMap::new();
        for f in d.blocking() {
            for op in f.fix.as_ref().map(|x| x.patch.clone()).unwrap_or_default() {
                if let (Some(p), Some(v)) =
                    (op.get("path").and_then(Value::as_str), op.get("value"))
                {
                    if let Some(prev) = last.get(p) {
                        for st in prev
                            .get("Statement")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            if st.get("Sid").is_some()
                                && !v
                                    .get("Statement")
                                    .and_then(Value::as_array)
                                    .is_some_and(|a| {
                                        a.iter().any(|x| x.get("Sid") == st.get("Sid"))
                                    })
                            {
                                problems.push(format!("the fix for {} drops statement {} added by an earlier fix to {p}", f.code, st.get("Sid").unwrap_or(&Value::Null)));
                            }
                        }
                    }
                    last.insert(p.to_owned(), v.clone());
                }
            }
        }
    }
    if let Some(c) = expect.get("confidence") {
        let got = serde_json::to_value(d.confidence).map_err(|e| e.to_string())?;
        if &got != c {
            problems.push(format!("confidence {got}, expected {c}"));
        }
    }
    // Every blocking finding names its hop, the account that must act, and (unless nothing
    // can be changed by policy) a fix addressed to an account.
    for f in d.blocking() {
        if f.action.is_none() || f.account.is_none() || f.explanation.is_empty() {
            problems.push(format!("{} lacks action, account or explanation", f.code));
        }
        if f.fix
            .as_ref()
            .is_none_or(|x| x.account.is_empty() || x.cli.is_empty())
        {
            problems.push(format!(
                "{} has no fix with an account and a command",
                f.code
            ));
        }
    }
    let out = Outcome { codes: all };
    seen.extend(out.codes);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// A twin of a case in another partition: every ARN, Region and service name of the
/// snapshot, the event and the request is rewritten, and the verdict and codes must not
/// change (docs/scenario-format.md, `translate`).
struct Translation {
    partition: String,
    region: String,
}

impl Translation {
    fn parse(v: &Value) -> Result<Translation, String> {
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or(format!("translate.{k} missing"))
        };
        for k in v.as_object().ok_or("translate is not an object")?.keys() {
            if k != "partition" && k != "region" {
                return Err(format!("unknown translate key `{k}`"));
            }
        }
        Ok(Translation {
            partition: s("partition")?,
            region: s("region")?,
        })
    }

    fn apply(&self, v: &Value) -> Result<Value, String> {
        let text = serde_json::to_string(v).map_err(|e| e.to_string())?;
        let suffix = if self.partition == "aws-cn" {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        let text = text
            .replace("arn:aws:", &format!("arn:{}:", self.partition))
            .replace("us-west-2", &self.region)
            .replace("amazonaws.com", suffix);
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }
}

#[test]
fn scenarios() {
    let dir = repo_root().join("tests/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 60,
        "only {} scenarios in {}",
        files.len(),
        dir.display()
    );
    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    for f in &files {
        if let Err(e) = check(f, &mut seen) {
            failures.push(format!(
                "{}: {e}",
                f.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !seen.contains(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "finding codes no scenario produces: {missing:?}"
    );
    eprintln!("{} scenarios passed", files.len());
}

//! Fix verification: apply the fixes to a copy of the snapshot and diagnose again.
//!
//! Fixes are applied in rounds: each round applies the fixes the current state calls for
//! (one per policy document, since two fixes may rewrite the same document), re-reads the
//! snapshot and diagnoses again, until nothing blocks or a round changes nothing.

use serde_json::Value;

use super::{hops, Query, Verdict};
use crate::json_patch;
use crate::snapshot::Snapshot;

const MAX_ROUNDS: usize = 8;

/// Whether applying every proposed fix leaves nothing blocking.
pub(super) fn verify(raw: &Value, query: &Query, d: &super::Diagnosis) -> bool {
    if d.verdict != Verdict::Denied {
        return false;
    }
    let mut doc = raw.clone();
    let mut current = d.clone();
    for _ in 0..MAX_ROUNDS {
        let blocking: Vec<_> = current.blocking().collect();
        if blocking.is_empty() {
            return current.verdict != Verdict::Denied;
        }
        // A blocking finding without a snapshot patch cannot be verified.
        if blocking
            .iter()
            .any(|f| f.fix.as_ref().is_none_or(|x| x.patch.is_empty()))
        {
            return false;
        }
        let mut touched: Vec<String> = Vec::new();
        let mut applied = false;
        for f in &blocking {
            let Some(fix) = &f.fix else { continue };
            let paths: Vec<String> = fix
                .patch
                .iter()
                .filter_map(|p| p.get("path").and_then(Value::as_str).map(str::to_owned))
                .collect();
            if paths.iter().any(|p| touched.iter().any(|t| t == p)) {
                continue;
            }
            let Ok(ops) = json_patch::parse_patch(&Value::Array(fix.patch.clone())) else {
                return false;
            };
            if json_patch::apply(&mut doc, &ops).is_err() {
                return false;
            }
            touched.extend(paths);
            applied = true;
        }
        if !applied {
            return false;
        }
        let Ok(snap) = Snapshot::from_value(&doc) else {
            return false;
        };
        current = hops::run(&snap, &doc, query, true);
    }
    false
}

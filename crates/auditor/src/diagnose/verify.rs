//! Fix verification: apply the fixes to a copy of the snapshot and diagnose again.
//!
//! Every printed fix is applied in order (fixes to one document are cumulative), the snapshot
//! is read again and the request diagnosed again: nothing may block then. The check verifies
//! exactly the printed fixes, nothing found later.

use serde_json::Value;

use super::{run, Request, Verdict};
use crate::json_patch;
use crate::snapshot::Snapshot;

/// One round: the verdict must follow from exactly the fixes the report prints.
const MAX_ROUNDS: usize = 1;

/// Whether applying every proposed fix leaves nothing blocking.
pub(super) fn verify(raw: &Value, request: &Request, d: &super::Diagnosis) -> bool {
    if d.verdict != Verdict::Denied {
        return false;
    }
    let mut doc = raw.clone();
    let mut current = d.clone();
    for _ in 0..=MAX_ROUNDS {
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
        // Fixes to the same document are cumulative (each starts from the previous one's
        // result), so applying every patch in order applies exactly what the report prints.
        for f in &blocking {
            let Some(fix) = &f.fix else { continue };
            let Ok(ops) = json_patch::parse_patch(&Value::Array(fix.patch.clone())) else {
                return false;
            };
            if json_patch::apply(&mut doc, &ops).is_err() {
                return false;
            }
        }
        let Ok(snap) = Snapshot::from_value(&doc) else {
            return false;
        };
        current = run::run(&snap, &doc, request, true);
    }
    false
}

//! Fix verification: apply the fixes' typed edits to a clone of the snapshot and diagnose
//! again: nothing may block then. The check verifies exactly the printed fixes (fixes to one
//! document are cumulative, so applying them in order applies what the report prints), and
//! says why when it cannot.

use std::fmt;

use super::edit::Edit;
use super::findings::Code;
use super::{run, Diagnosis, Request, Verdict};
use crate::snapshot::Snapshot;

/// Why the fixes of a diagnosis were not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverified {
    /// Nothing blocks: there is nothing to verify.
    NothingBlocks,
    /// A blocking cause has no fix that can be expressed as a snapshot change (re-encrypting
    /// objects, a key whose material must be re-imported, a caller outside the snapshot).
    NoSnapshotChange(Code),
    /// An edit could not be applied to the snapshot.
    EditFailed {
        /// The finding whose fix failed.
        code: Code,
        /// Why.
        why: String,
    },
    /// With every fix applied, these causes still block.
    StillBlocked(Vec<Code>),
    /// With every fix applied nothing blocks, but evidence is missing: the request is not
    /// shown to be allowed.
    Incomplete,
}

impl fmt::Display for Unverified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unverified::NothingBlocks => f.write_str("nothing blocks, so there is no fix to verify"),
            Unverified::NoSnapshotChange(code) => write!(
                f,
                "the fix for {code} is not a change to the snapshot (it re-encrypts objects or acts outside the accounts shown), so it cannot be re-evaluated"
            ),
            Unverified::EditFailed { code, why } => {
                write!(f, "the fix for {code} could not be applied to the snapshot: {why}")
            }
            Unverified::Incomplete => f.write_str(
                "with every fix applied nothing blocks, but evidence the snapshot lacks leaves the verdict unknown",
            ),
            Unverified::StillBlocked(codes) => {
                let list: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
                write!(
                    f,
                    "with every fix applied the request is still blocked by {}",
                    list.join(", ")
                )
            }
        }
    }
}

/// The fixes of a diagnosis: each blocking code with its edits.
type Fixes = Vec<(Code, Vec<Edit>)>;

/// Snapshots with a set of fixes applied, kept by the fixes' edits, so that diagnoses on
/// one snapshot that propose the same fixes (every object of one bucket read by one
/// principal, every reader blocked by one disabled key) clone the snapshot and apply the
/// edits once. A cache serves one snapshot: its entries are copies of the snapshot the first
/// diagnosis passed in.
#[derive(Debug, Default)]
pub struct FixCache {
    /// (the blocking codes with their edits, the snapshot they make or why it cannot be made).
    /// A list, not a map: edits hold JSON documents, which have no order or hash, and a
    /// sweep keeps one cache per group of accounts, where few distinct fixes meet.
    fixed: Vec<(Fixes, Result<Snapshot, Unverified>)>,
    /// How many distinct fixes were applied (cache misses).
    applied: usize,
}

impl FixCache {
    /// How many distinct sets of fixes were applied to a copy of the snapshot.
    pub fn distinct_fixes(&self) -> usize {
        self.applied
    }
}

/// Whether applying every proposed fix to a clone of `snapshot` leaves nothing blocking; the
/// fixed clone is taken from `cache` when the same fixes were applied before.
pub(super) fn verify(
    snapshot: &Snapshot,
    request: &Request,
    d: &Diagnosis,
    cache: &mut FixCache,
) -> Result<(), Unverified> {
    if d.verdict != Verdict::Denied {
        return Err(Unverified::NothingBlocks);
    }
    let mut fixes: Fixes = Vec::new();
    for f in d.blocking() {
        let edits = f
            .fix
            .as_ref()
            .map(|x| x.edits.as_slice())
            .unwrap_or_default();
        if edits.is_empty() {
            return Err(Unverified::NoSnapshotChange(f.code));
        }
        fixes.push((f.code, edits.to_vec()));
    }
    let at = match cache.fixed.iter().position(|(k, _)| *k == fixes) {
        Some(at) => at,
        None => {
            let made = apply(snapshot, &fixes);
            cache.applied += 1;
            cache.fixed.push((fixes, made));
            cache.fixed.len() - 1
        }
    };
    let fixed = match cache.fixed.get(at) {
        Some((_, Ok(fixed))) => fixed,
        Some((_, Err(why))) => return Err(why.clone()),
        None => return Err(Unverified::NothingBlocks),
    };
    let again = run::run(fixed, request, false);
    let left: Vec<Code> = again.blocking().map(|f| f.code).collect();
    match again.verdict {
        Verdict::Allowed => Ok(()),
        Verdict::Unknown if left.is_empty() => Err(Unverified::Incomplete),
        _ => Err(Unverified::StillBlocked(left)),
    }
}

/// A clone of `snapshot` with every fix's edits applied in order.
fn apply(snapshot: &Snapshot, fixes: &[(Code, Vec<Edit>)]) -> Result<Snapshot, Unverified> {
    let mut fixed = snapshot.clone();
    for (code, edits) in fixes {
        for e in edits {
            e.apply(&mut fixed).map_err(|e| Unverified::EditFailed {
                code: *code,
                why: e.to_string(),
            })?;
        }
    }
    Ok(fixed)
}

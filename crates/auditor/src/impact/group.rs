//! Few messages per change: the paths one change moved the same way are one alert.
//!
//! A key-policy edit that drops an account's readers breaks every path of every reader, for
//! the same cause, with the same account to act and the same policy to restore. A platform
//! team wants one message saying so, not one per path. [`group_paths`] sorts a change's
//! broken, opened and fixed paths into groups sharing
//!
//! * the way the verdict moved ([`ImpactKind`]),
//! * the codes (blocking after the change; for fixed and opened paths, those that blocked
//!   before),
//! * the accounts that must act,
//! * whether each path's own fixes were verified, and the policies they change,
//!
//! and gives each group one fix: the paths' fixes combined into one statement listing every
//! principal (or resource) when they differ in that element only
//! (`crate::diagnose::combine`), else the worst path's. The group's fix is applied to a copy of
//! the snapshot after the change and every path of the group re-evaluated: the group says on
//! how many paths it restores the read.
//!
//! Groups are ordered broken, opened, fixed, then larger first; at most `max_groups` are kept
//! for messages of their own, the rest ([`Grouped::beyond`]) are counted in one summary.
//!
//! The noise module's rate limiter and summary (`crate::noise::messages`) are not reused:
//! they batch distinct diagnoses arriving over minutes, keyed by a problem identity kept in
//! a table across invocations, and publish with `kind: diagnosis`. Grouping here is within
//! one change, needs no state, and must keep `kind: impact` so impact filters still match.
//! What they share — worst first, a clipped subject, the size budget — is the SNS module's.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{paths, Impact, ImpactPath};
use crate::diagnose::{combine, verdict_of, Finding, Verdict};
use crate::event::adhoc_request;
use crate::refs::{BucketRef, Partition};
use crate::snapshot::Snapshot;

/// At most this many groups of one change get a message of their own.
pub const MAX_GROUPS: usize = 10;

/// A group's message names this many paths; the rest are counted.
pub const NAMED_PATHS: usize = 10;

/// Which way a path's verdict moved (docs/impact-format.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImpactKind {
    /// Allowed before, denied after.
    Broken,
    /// Denied before, allowed after, on a path the bucket's side intended.
    Fixed,
    /// Denied before, allowed after, on a path the bucket's side did not intend.
    Opened,
    /// A verdict that became, or stopped being, `unknown`.
    Undecided,
}

impl ImpactKind {
    /// `broken`, `fixed`, `opened` or `undecided`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImpactKind::Broken => "broken",
            ImpactKind::Fixed => "fixed",
            ImpactKind::Opened => "opened",
            ImpactKind::Undecided => "undecided",
        }
    }

    /// Broken first (an outage), then opened (an exposure), then fixed.
    fn severity(self) -> u8 {
        match self {
            ImpactKind::Broken => 0,
            ImpactKind::Opened => 1,
            ImpactKind::Fixed => 2,
            ImpactKind::Undecided => 3,
        }
    }
}

/// Paths of one change that moved the same way for the same cause.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathGroup {
    /// Which way their verdicts moved.
    pub kind: ImpactKind,
    /// The blocking codes after the change (broken); those that blocked before (fixed,
    /// opened).
    pub codes: Vec<String>,
    /// The accounts that must act (broken paths).
    pub must_act: Vec<String>,
    /// The paths, worst first: a path whose own fixes were not verified, then paths on a
    /// listed object (a read that exists) before prefixes, then by principal, bucket and
    /// object.
    pub paths: Vec<ImpactPath>,
    /// The blocking findings of the worst path, each with the group's fix.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// Whether the fixes are the paths' own fixes combined into one (else the worst path's).
    pub fix_combined: bool,
    /// On how many of the paths the group's fixes, applied to a copy of the snapshot after the
    /// change, restore the read (re-evaluated); `None` when there is no fix to apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix_restores: Option<usize>,
}

impl PathGroup {
    /// The group's single path, when it has one.
    pub fn single(&self) -> Option<&ImpactPath> {
        match self.paths.as_slice() {
            [p] => Some(p),
            _ => None,
        }
    }
}

/// A change's groups: those with a message of their own, and the rest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grouped {
    /// At most `max_groups`, broken first, larger first.
    pub groups: Vec<PathGroup>,
    /// The groups beyond, counted in one summary.
    pub beyond: Vec<PathGroup>,
}

/// What makes two paths one group.
type GroupKey = (u8, Vec<String>, Vec<String>, Option<bool>, Vec<String>);

/// The broken, opened and fixed paths of `impact` in groups (see the module documentation);
/// `after` is the snapshot after the change, on which the groups' fixes are verified.
pub fn group_paths(impact: &Impact, after: &Snapshot, max_groups: usize) -> Grouped {
    let mut by_key: BTreeMap<GroupKey, (ImpactKind, Vec<ImpactPath>)> = BTreeMap::new();
    let lists = [
        (ImpactKind::Broken, &impact.broken),
        (ImpactKind::Opened, &impact.opened),
        (ImpactKind::Fixed, &impact.fixed),
    ];
    for (kind, list) in lists {
        for p in list {
            let codes = if kind == ImpactKind::Broken {
                p.blocking.clone()
            } else {
                p.blocking_before.clone()
            };
            let fixes: Vec<String> = p
                .findings
                .iter()
                .map(|f| {
                    f.fix
                        .as_ref()
                        .map(|x| format!("{} {}", x.account, x.artifact))
                        .unwrap_or_default()
                })
                .collect();
            let key = (
                kind.severity(),
                codes,
                p.must_act.clone(),
                p.fixes_verified,
                fixes,
            );
            by_key
                .entry(key)
                .or_insert_with(|| (kind, Vec::new()))
                .1
                .push(p.clone());
        }
    }
    let mut groups: Vec<(GroupKey, ImpactKind, Vec<ImpactPath>)> = by_key
        .into_iter()
        .map(|(k, (kind, paths))| (k, kind, paths))
        .collect();
    groups.sort_by(|a, b| {
        (a.0 .0, std::cmp::Reverse(a.2.len()), &a.0).cmp(&(
            b.0 .0,
            std::cmp::Reverse(b.2.len()),
            &b.0,
        ))
    });
    let mut out = Grouped::default();
    for (i, (key, kind, mut list)) in groups.into_iter().enumerate() {
        list.sort_by(|a, b| rank(a).cmp(&rank(b)));
        let mut g = PathGroup {
            kind,
            codes: key.1,
            must_act: key.2,
            paths: list,
            findings: Vec::new(),
            fix_combined: false,
            fix_restores: None,
        };
        if i < max_groups {
            fix_group(&mut g, after);
            out.groups.push(g);
        } else {
            out.beyond.push(g);
        }
    }
    out
}

/// Worst first (see [`PathGroup::paths`]).
fn rank(p: &ImpactPath) -> (bool, bool, &str, &str, &str) {
    (
        p.fixes_verified != Some(false),
        p.object.ends_with('*'),
        p.principal.as_str(),
        p.bucket.as_str(),
        p.object.as_str(),
    )
}

/// The group's findings with one fix each, and on how many paths they restore the read.
fn fix_group(g: &mut PathGroup, after: &Snapshot) {
    let Some(worst) = g.paths.first() else {
        return;
    };
    g.findings = worst.findings.clone();
    if g.paths.len() > 1 {
        let mut combined = Vec::new();
        for (i, f) in worst.findings.iter().enumerate() {
            let fixes: Option<Vec<&crate::diagnose::Fix>> = g
                .paths
                .iter()
                .map(|p| {
                    p.findings
                        .get(i)
                        .filter(|x| x.code == f.code)
                        .and_then(|x| x.fix.as_ref())
                })
                .collect();
            match fixes.and_then(|list| combine(&list, after)) {
                Some(fix) => {
                    let mut f = f.clone();
                    f.fix = Some(fix);
                    combined.push(f);
                }
                None => break,
            }
        }
        if combined.len() == worst.findings.len() && !combined.is_empty() {
            g.fix_combined = combined
                .iter()
                .zip(&worst.findings)
                .any(|(c, w)| c.fix != w.fix);
            g.findings = combined;
        }
    }
    if g.kind != ImpactKind::Broken {
        return;
    }
    let edits: Vec<&crate::diagnose::edit::Edit> = g
        .findings
        .iter()
        .flat_map(|f| f.fix.iter().flat_map(|x| x.edits.iter()))
        .collect();
    if edits.is_empty() || g.findings.iter().any(|f| f.fix.is_none()) {
        return;
    }
    let mut fixed = after.clone();
    if edits.iter().any(|e| e.apply(&mut fixed).is_err()) {
        g.fix_restores = Some(0);
        return;
    }
    let restored = g
        .paths
        .iter()
        .filter(|p| {
            let partition = after.bucket(&p.bucket).map_or_else(
                || Partition::of_arn(&p.principal).unwrap_or(Partition::Aws),
                |(_, b)| Partition::of_region(&b.region),
            );
            let arn = BucketRef::new(partition, p.bucket.as_str())
                .object(p.probe_key.as_str())
                .arn();
            adhoc_request(&p.principal, paths::ACTION, &arn)
                .is_ok_and(|req| verdict_of(&fixed, &req) == Verdict::Allowed)
        })
        .count();
    g.fix_restores = Some(restored);
}

#[cfg(test)]
mod tests;

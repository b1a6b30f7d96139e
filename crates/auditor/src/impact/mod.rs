//! Policy-change impact: which read paths a change breaks, fixes or opens.
//!
//! A read path is (principal, bucket, object or prefix, `s3:GetObject`) that some policy in
//! either account intends: the bucket policy, the key policy or a grant of a key the bucket
//! uses, or the caller's identity policies naming the bucket (see `paths.rs`). [`impact`]
//! takes the union of the paths the snapshots before and after intend, diagnoses each in both
//! with [`crate::diagnose::diagnose`], and sorts the paths whose verdict changed:
//!
//! * `broken`: allowed before, denied after — with the blocking findings, the accounts that
//!   must act and the fixes that restore the path, verified as in every diagnosis;
//! * `fixed`: denied before, allowed after, on a path the bucket's side (bucket policy, key
//!   policy or grant) already intended before;
//! * `opened`: denied before, allowed after, on a path the bucket's side did not intend
//!   before (a new grant to a principal outside the bucket's account; the caller's own
//!   identity policy asking for access does not make a path intended);
//! * `undecided`: a verdict that became or stopped being `unknown`.
//!
//! Paths whose verdict did not change are only counted (`unchanged`). The format is
//! docs/impact-format.md.

mod change;
pub mod group;
pub mod org;
pub(crate) mod paths;
pub mod scope;
pub mod state;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::diagnose::{diagnose, Finding, Verdict};
use crate::event::adhoc_request;
use crate::snapshot::Snapshot;

pub use change::{
    apply_change, ChangeError, ChangeEvent, ChangeRef, Touched, CHANGE_EVENTS, SUPPORTED,
};
pub(crate) use change::{is_change_event, read_change};
pub use group::{group_paths, Grouped, ImpactKind, PathGroup};

/// One read path whose verdict changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImpactPath {
    /// The principal: a role ARN for role sessions, a user ARN, or an account root standing
    /// in for an account the snapshot does not describe.
    pub principal: String,
    /// The bucket.
    pub bucket: String,
    /// The object key, or a prefix ending in `*` when the snapshot lists no object under it.
    pub object: String,
    /// The operation, `s3:GetObject`.
    pub action: String,
    /// The verdict before the change.
    pub verdict_before: Verdict,
    /// The verdict after it.
    pub verdict_after: Verdict,
    /// Blocking finding codes after the change.
    pub blocking: Vec<String>,
    /// Blocking finding codes before it.
    pub blocking_before: Vec<String>,
    /// The accounts that must act on the blocking findings after the change: account ids, or
    /// `management account of the organization of <id>` for an SCP or RCP.
    pub must_act: Vec<String>,
    /// The policies that intend the path, each marked with the snapshot(s) it is in.
    pub intended_by: Vec<String>,
    /// The blocking findings after the change, each with its fix.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// Whether applying every fix to a copy of the snapshot after leaves the path allowed
    /// (set when the path is denied after the change).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixes_verified: Option<bool>,
    /// Why the fixes could not be verified, when they were not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixes_unverified: Option<String>,
    /// Why the path could not be diagnosed (verdict `unknown`), when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The key the path was diagnosed on: `object`, or a representative key under its prefix.
    #[serde(skip)]
    pub probe_key: String,
}

/// The impact of a change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Impact {
    /// The change record applied (`--change`), or `null` for two snapshots.
    pub change: Option<ChangeRef>,
    /// Allowed before, denied after.
    pub broken: Vec<ImpactPath>,
    /// Denied before, allowed after, on a path the bucket's side intended before.
    pub fixed: Vec<ImpactPath>,
    /// Denied before, allowed after, on a path the bucket's side did not intend before.
    pub opened: Vec<ImpactPath>,
    /// A verdict that became, or stopped being, `unknown`.
    pub undecided: Vec<ImpactPath>,
    /// Paths whose verdict did not change.
    pub unchanged: usize,
}

impl Impact {
    /// Whether the change broke a path.
    pub fn breaks(&self) -> bool {
        !self.broken.is_empty()
    }
}

/// A path of the union, with where it is intended.
struct Union {
    principal: String,
    bucket: crate::refs::BucketRef,
    object: paths::PathObject,
    before: Vec<String>,
    after: Vec<String>,
    resource_side_before: bool,
    stand_in: bool,
}

/// The impact of going from `before` to `after`.
pub fn impact(before: &Snapshot, after: &Snapshot) -> Impact {
    let mut union: BTreeMap<(String, String, String), Union> = BTreeMap::new();
    for (in_after, snap) in [(false, before), (true, after)] {
        for p in paths::read_paths(snap) {
            let key = (
                p.principal.clone(),
                p.bucket.name.clone(),
                p.object.shown.clone(),
            );
            let entry = union.entry(key).or_insert_with(|| Union {
                principal: p.principal.clone(),
                bucket: p.bucket.clone(),
                object: p.object.clone(),
                before: Vec::new(),
                after: Vec::new(),
                resource_side_before: false,
                stand_in: p.stand_in,
            });
            entry.stand_in &= p.stand_in;
            entry.resource_side_before |= !in_after && p.resource_side;
            let list = if in_after {
                &mut entry.after
            } else {
                &mut entry.before
            };
            if !list.contains(&p.intended_by) {
                list.push(p.intended_by);
            }
        }
    }
    // A whole-bucket stand-in adds nothing when the principal has a precise path there.
    let precise: Vec<(String, String)> = union
        .values()
        .filter(|u| !u.stand_in)
        .map(|u| (u.principal.clone(), u.bucket.name.clone()))
        .collect();
    union.retain(|_, u| {
        !u.stand_in || !precise.contains(&(u.principal.clone(), u.bucket.name.clone()))
    });

    let mut out = Impact {
        change: None,
        broken: Vec::new(),
        fixed: Vec::new(),
        opened: Vec::new(),
        undecided: Vec::new(),
        unchanged: 0,
    };
    for u in union.into_values() {
        let object_arn = u.bucket.object(u.object.key.as_str()).arn();
        let request = adhoc_request(&u.principal, paths::ACTION, &object_arn);
        let (d_before, d_after) = match &request {
            Ok(req) => (Some(diagnose(before, req)), Some(diagnose(after, req))),
            Err(_) => (None, None),
        };
        let verdict = |d: &Option<crate::diagnose::Diagnosis>| {
            d.as_ref().map_or(Verdict::Unknown, |d| d.verdict)
        };
        let (vb, va) = (verdict(&d_before), verdict(&d_after));
        // A path that cannot be diagnosed at all is reported, not counted as unchanged.
        if vb == va && request.is_ok() {
            out.unchanged += 1;
            continue;
        }
        let codes = |d: &Option<crate::diagnose::Diagnosis>| -> Vec<String> {
            d.as_ref()
                .map(|d| d.blocking().map(|f| f.code.to_string()).collect())
                .unwrap_or_default()
        };
        let findings: Vec<Finding> = d_after
            .as_ref()
            .map(|d| d.blocking().cloned().collect())
            .unwrap_or_default();
        let mut must_act: Vec<String> = findings.iter().filter_map(acting_account).collect();
        must_act.sort();
        must_act.dedup();
        let mark = |list: &[String], other: &[String], only: &str| -> Vec<String> {
            list.iter()
                .map(|s| {
                    if other.contains(s) {
                        s.clone()
                    } else {
                        format!("{s} ({only})")
                    }
                })
                .collect()
        };
        let mut intended_by = mark(&u.before, &u.after, "before only");
        intended_by.extend(
            mark(&u.after, &u.before, "after only")
                .into_iter()
                .filter(|s| !u.before.iter().any(|b| b == s)),
        );
        let denied_after = va == Verdict::Denied;
        let path = ImpactPath {
            principal: u.principal,
            bucket: u.bucket.name.clone(),
            object: u.object.shown,
            action: paths::ACTION.to_owned(),
            verdict_before: vb,
            verdict_after: va,
            blocking: codes(&d_after),
            blocking_before: codes(&d_before),
            must_act,
            intended_by,
            findings,
            fixes_verified: d_after
                .as_ref()
                .filter(|_| denied_after)
                .map(|d| d.fixes_verified),
            fixes_unverified: d_after
                .as_ref()
                .filter(|_| denied_after)
                .and_then(|d| d.fixes_unverified.clone()),
            error: request.err().map(|e| e.to_string()),
            probe_key: u.object.key,
        };
        match (vb, va) {
            (Verdict::Allowed, Verdict::Denied) => out.broken.push(path),
            (Verdict::Denied, Verdict::Allowed) if !u.resource_side_before => out.opened.push(path),
            (Verdict::Denied, Verdict::Allowed) => out.fixed.push(path),
            _ => out.undecided.push(path),
        }
    }
    out
}

/// The impact of the change recorded in `event` (see [`apply_change`]) on `before`, with
/// the change named in [`Impact::change`].
pub fn impact_of_change(
    before: &Snapshot,
    event: &serde_json::Value,
) -> Result<Impact, ChangeError> {
    let (after, change) = apply_change(before, event)?;
    let mut out = impact(before, &after);
    out.change = Some(change);
    Ok(out)
}

/// Who must act on a finding: the fix's account id, else the id of the account whose
/// configuration is at fault; for SCPs and RCPs, whose fix names the organization's
/// management account rather than an id, that name.
pub(crate) fn acting_account(f: &Finding) -> Option<String> {
    match &f.fix {
        Some(x) if !x.account.is_empty() => Some(x.account.clone()),
        _ => f.account.clone().filter(|a| crate::refs::is_account_id(a)),
    }
}

/// The impact as text: a summary line, then each changed path with its causes and fixes.
pub fn render_text(i: &Impact) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if let Some(c) = &i.change {
        let _ = writeln!(
            out,
            "Change: {} {} — {}{}",
            c.event_source,
            c.event_name,
            c.changed,
            c.actor
                .as_deref()
                .map(|a| format!(" (by {a})"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(
        out,
        "{} broken, {} fixed, {} opened, {} undecided, {} unchanged",
        i.broken.len(),
        i.fixed.len(),
        i.opened.len(),
        i.undecided.len(),
        i.unchanged
    );
    let sections: [(&str, &[ImpactPath]); 4] = [
        ("BROKEN", &i.broken),
        ("FIXED", &i.fixed),
        ("OPENED", &i.opened),
        ("UNDECIDED", &i.undecided),
    ];
    for (label, list) in sections {
        for p in list {
            let verdict = |v: Verdict| match v {
                Verdict::Allowed => "allowed",
                Verdict::Denied => "denied",
                Verdict::Unknown => "unknown",
            };
            let _ = writeln!(
                out,
                "\n{label} {} → s3://{}/{} ({}: {} → {})",
                p.principal,
                p.bucket,
                p.object,
                p.action,
                verdict(p.verdict_before),
                verdict(p.verdict_after)
            );
            write_path_detail(
                &mut out,
                PathDetail {
                    intended_by: &p.intended_by,
                    error: p.error.as_deref(),
                    findings: &p.findings,
                    fixes_verified: p.fixes_verified,
                    fixes_unverified: p.fixes_unverified.as_deref(),
                },
            );
        }
    }
    out
}

#[cfg(test)]
mod tests;

/// What the text reports of impact and sweep say under a path's heading.
pub(crate) struct PathDetail<'a> {
    pub intended_by: &'a [String],
    pub error: Option<&'a str>,
    pub findings: &'a [Finding],
    pub fixes_verified: Option<bool>,
    pub fixes_unverified: Option<&'a str>,
}

/// The lines under a path's heading: which statements intend it, why it was not checked,
/// each blocking finding with who must act and its fix, and whether the fixes were verified.
/// One renderer for `impact` and `sweep`, so the two reports read alike.
pub(crate) fn write_path_detail(out: &mut String, p: PathDetail<'_>) {
    use std::fmt::Write as _;
    for by in p.intended_by {
        let _ = writeln!(out, "  intended by {by}");
    }
    if let Some(e) = p.error {
        let _ = writeln!(out, "  not checked: {e}");
    }
    for f in p.findings {
        let _ = writeln!(
            out,
            "  {} [{}] — {} must act",
            f.code,
            f.action.as_deref().unwrap_or("-"),
            crate::diagnose::who_acts(f)
        );
        let _ = writeln!(out, "    {}", f.explanation);
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "    $ {}", fix.cli);
        }
    }
    match (p.fixes_verified, p.fixes_unverified) {
        (Some(true), _) => {
            let _ = writeln!(out, "  Fixes verified by re-evaluation: yes");
        }
        (Some(false), why) => {
            let _ = writeln!(
                out,
                "  Fixes verified by re-evaluation: no{}",
                why.map(|w| format!(" — {w}")).unwrap_or_default()
            );
        }
        (None, _) => {}
    }
}

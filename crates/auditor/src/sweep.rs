//! Sweep: every cross-account read path a snapshot intends, checked end to end.
//!
//! The paths are those of the change-impact check (`impact/paths.rs`, the one enumeration):
//! intended by the bucket policy, by the key policy or a grant of a key the bucket uses, or
//! by the caller's identity policies naming the bucket. A path is **checked** — diagnosed as
//! a `GetObject` by its principal, with every blocking cause and a verified fix — when the
//! bucket policy intends it, or when both the key side and the caller's identity policies
//! do (the reader whose IAM and key grant name the bucket while the bucket policy leaves it
//! out). A path only one other side intends (a key policy granting an account none of whose
//! principals asks for the bucket; an identity policy asking for a bucket whose owner grants
//! nothing) is counted (`summary.key_only`, `summary.identity_only`), not reported as broken: nobody on the bucket's
//! side and the caller's side agreed on it.
//!
//! At organization scale (docs/scaling.md) the snapshot is indexed once; the paths of one
//! principal on one bucket are diagnosed on a snapshot of only what they read (the caller,
//! the bucket, its keys: `impact::slice`), made once, so the cost of a path does not grow with
//! the organization; each distinct set of fixes is applied once per group
//! ([`crate::diagnose::FixCache`]). Groups are spread over threads.
//!
//! The sweep also reports the traps that hold no matter who reads: default encryption by
//! alias or with the AWS managed key (advisories of the paths), key policies granting
//! accounts that no bucket policy grants, and bucket grants that name no object.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use iam_eval::principal::PolicyPrincipal;
use iam_eval::Effect;

use crate::diagnose::{Finding, FixCache, Verdict};
use crate::impact::paths::{self, Index, Intended, Source};
use crate::impact::slice::slice;
use crate::snapshot::Snapshot;

pub use crate::impact::paths::PathObject;

/// One read path and its outcome: the fields of a path in docs/impact-format.md, with one
/// verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Path {
    /// The principal: a role ARN for role sessions, a user ARN, or an account root standing
    /// in for an account the snapshot does not describe.
    pub principal: String,
    /// The bucket.
    pub bucket: String,
    /// The object key, or a prefix ending in `*` when the snapshot lists no object under it.
    pub object: String,
    /// The operation, `s3:GetObject`.
    pub action: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Blocking finding codes.
    pub blocking: Vec<String>,
    /// The accounts that must act on the blocking findings: account ids, or `management
    /// account of the organization of <id>` for an SCP or RCP.
    pub must_act: Vec<String>,
    /// The statements and grants that intend the path.
    pub intended_by: Vec<String>,
    /// The blocking findings, each with its fix.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// When denied: whether applying every fix to a copy of the snapshot allows the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixes_verified: Option<bool>,
    /// Why the fixes could not be verified, when they were not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixes_unverified: Option<String>,
    /// Why the path could not be checked (verdict `unknown`), when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Something worth knowing that is not tied to one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observation {
    /// A stable name for the kind of observation.
    pub kind: &'static str,
    /// The account it concerns.
    pub account: String,
    /// What was seen.
    pub explanation: String,
}

/// The counts of a sweep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Accounts in the snapshot.
    pub accounts: usize,
    /// Buckets in the snapshot.
    pub buckets: usize,
    /// KMS keys in the snapshot.
    pub keys: usize,
    /// Roles and users in the snapshot.
    pub principals: usize,
    /// Paths checked.
    pub paths: usize,
    /// Checked paths allowed.
    pub allowed: usize,
    /// Checked paths denied (broken).
    pub denied: usize,
    /// Checked paths whose verdict is unknown.
    pub unknown: usize,
    /// Paths only a key policy or grant intends (the key names a principal, whose identity
    /// policies do not name the bucket, and the bucket policy does not grant it): not
    /// checked. A key shared by several buckets counts once per bucket.
    pub key_only: usize,
    /// Paths only the caller's identity policies intend (the bucket's side grants nothing):
    /// not checked.
    pub identity_only: usize,
    /// Distinct sets of fixes applied to verify the fixes of the denied paths.
    pub distinct_fixes: usize,
}

/// The sweep's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sweep {
    /// The counts.
    pub summary: Summary,
    /// Every path checked, by bucket, principal and object.
    pub paths: Vec<Path>,
    /// Advisory findings of the paths (default encryption by alias, ...), each once per
    /// bucket, with the first principal it was seen for.
    pub advisories: Vec<Finding>,
    /// Observations not tied to a path.
    pub observations: Vec<Observation>,
}

impl Sweep {
    /// Whether any path is blocked.
    pub fn has_blocking(&self) -> bool {
        self.paths.iter().any(|p| p.verdict == Verdict::Denied)
    }

    /// Whether any path's verdict is unknown.
    pub fn has_unknown(&self) -> bool {
        self.paths.iter().any(|p| p.verdict == Verdict::Unknown)
    }
}

/// A progress callback: (stage, done, to do).
pub type Report<'a> = dyn Fn(&str, usize, usize) + Sync + 'a;

/// How to run a sweep.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// Threads to diagnose on (at least one).
    pub threads: usize,
    /// Called with ([`STAGE_PATHS`], paths checked, paths to check) as groups of paths
    /// finish, from any thread.
    pub progress: Option<&'a Report<'a>>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            threads: 1,
            progress: None,
        }
    }
}

/// The stage a sweep reports its progress in.
pub const STAGE_PATHS: &str = "paths checked";

/// Sweeps a snapshot on one thread.
pub fn sweep(snap: &Snapshot) -> Sweep {
    sweep_with(snap, Options::default())
}

/// Sweeps a snapshot.
pub fn sweep_with(snap: &Snapshot, options: Options<'_>) -> Sweep {
    let index = Index::new(snap);
    let (raw, objectless) = paths::enumerate(&index);
    let (checked, one_sided): (Vec<Intended>, Vec<Intended>) =
        paths::merge(raw).into_iter().partition(Intended::checked);

    let total = checked.len();
    let threads = options.threads.max(1);
    let report = |stage: &str, done: usize, total: usize| {
        if let Some(progress) = options.progress {
            progress(stage, done, total);
        }
    };

    // Paths of one principal on one bucket are diagnosed on one snapshot of only what they
    // read (see `impact::slice`), where each distinct set of fixes is applied once.
    let mut groups: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, p) in checked.iter().enumerate() {
        groups
            .entry((p.principal.as_str(), p.bucket.name.as_str()))
            .or_default()
            .push(i);
    }
    let groups: Vec<Vec<usize>> = groups.into_values().collect();
    let finished = AtomicUsize::new(0);
    let diagnosed: Vec<(Vec<(usize, Checked)>, usize)> = par_map(
        &groups,
        threads,
        16,
        |_| {},
        |members| {
            let Some(first) = members.first().and_then(|&i| checked.get(i)) else {
                return (Vec::new(), 0);
            };
            let scope = slice(
                &index,
                &first.principal,
                Some(&first.owner),
                &first.bucket.name,
            );
            let mut cache = FixCache::default();
            let out: Vec<(usize, Checked)> = members
                .iter()
                .filter_map(|&i| checked.get(i).map(|p| (i, check(&scope, p, &mut cache))))
                .collect();
            let now = finished.fetch_add(members.len(), Ordering::Relaxed) + members.len();
            report(STAGE_PATHS, now, total);
            (out, cache.distinct_fixes())
        },
    );
    let mut results: Vec<Option<Checked>> = Vec::new();
    results.resize_with(total, || None);
    let mut distinct = 0;
    for (list, fixes) in diagnosed {
        distinct += fixes;
        for (i, c) in list {
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(c);
            }
        }
    }

    let mut out = Sweep {
        summary: Summary {
            accounts: snap.accounts.len(),
            buckets: snap.accounts.values().map(|a| a.s3.len()).sum(),
            keys: snap.accounts.values().map(|a| a.kms.len()).sum(),
            principals: snap
                .accounts
                .values()
                .filter_map(|a| a.iam.as_ref())
                .map(|i| i.roles.len() + i.users.len())
                .sum(),
            key_only: one_sided
                .iter()
                .filter(|p| p.sources.contains(&Source::Key))
                .count(),
            identity_only: one_sided
                .iter()
                .filter(|p| p.sources.contains(&Source::Identity))
                .count(),
            distinct_fixes: distinct,
            ..Summary::default()
        },
        paths: Vec::with_capacity(total),
        advisories: Vec::new(),
        observations: Vec::new(),
    };
    let mut seen_advisories = BTreeSet::new();
    for c in results.into_iter().flatten() {
        for f in c.advisories {
            let key = (f.code, f.bucket.clone(), f.explanation.clone());
            if seen_advisories.insert(key) {
                out.advisories.push(f);
            }
        }
        match c.path.verdict {
            Verdict::Allowed => out.summary.allowed += 1,
            Verdict::Denied => out.summary.denied += 1,
            Verdict::Unknown => out.summary.unknown += 1,
        }
        out.paths.push(c.path);
    }
    out.summary.paths = out.paths.len();
    for o in objectless {
        let obs = Observation {
            kind: "GRANT_NAMES_NO_OBJECT",
            account: o.owner.clone(),
            explanation: format!(
                "{} of bucket `{}` allows s3:GetObject to {}, but its Resource names no object of the bucket (only the bucket itself, say): it grants no object read.",
                o.statement, o.bucket, o.principal
            ),
        };
        if !out.observations.contains(&obs) {
            out.observations.push(obs);
        }
    }
    key_observations(snap, &mut out);
    out
}

/// One path's outcome and the advisories seen on it.
struct Checked {
    path: Path,
    advisories: Vec<Finding>,
}

/// Diagnoses one path, with fixes verified against `cache`.
fn check(slice: &Snapshot, p: &Intended, cache: &mut FixCache) -> Checked {
    match crate::impact::slice::diagnose_path(slice, &p.principal, &p.bucket, &p.object.key, cache)
    {
        Ok(d) => outcome(p, d),
        Err(e) => {
            // Never a dropped path: say why it was not checked.
            let mut path = base(p, Verdict::Unknown);
            path.error = Some(e.to_string());
            Checked {
                path,
                advisories: Vec::new(),
            }
        }
    }
}

/// A path with the outcome of its diagnosis.
fn outcome(p: &Intended, d: crate::diagnose::Diagnosis) -> Checked {
    let mut path = base(p, d.verdict);
    if d.verdict == Verdict::Denied {
        path.fixes_verified = Some(d.fixes_verified);
        path.fixes_unverified = d.fixes_unverified;
    }
    let mut advisories = Vec::new();
    for mut f in d.findings {
        f.principal = Some(p.principal.clone());
        f.bucket = Some(p.bucket.name.clone());
        if f.blocking {
            path.blocking.push(f.code.to_string());
            if let Some(a) = crate::impact::acting_account(&f) {
                path.must_act.push(a);
            }
            path.findings.push(f);
        } else {
            advisories.push(f);
        }
    }
    path.must_act.sort();
    path.must_act.dedup();
    Checked { path, advisories }
}

/// A path with a verdict and nothing else yet.
fn base(p: &Intended, verdict: Verdict) -> Path {
    Path {
        principal: p.principal.clone(),
        bucket: p.bucket.name.clone(),
        object: p.object.shown.clone(),
        action: paths::ACTION.to_owned(),
        verdict,
        blocking: Vec::new(),
        must_act: Vec::new(),
        intended_by: p.intended_by.clone(),
        findings: Vec::new(),
        fixes_verified: None,
        fixes_unverified: None,
        error: None,
    }
}

/// `f` of every item, in order, on `threads` threads taking `chunk` items at a time;
/// `done` is told how many items are finished after each chunk.
fn par_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    chunk: usize,
    done: impl Fn(usize) + Sync,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Vec<R>)>> = Mutex::new(Vec::new());
    let work = || loop {
        let start = next.fetch_add(chunk, Ordering::Relaxed);
        let Some(part) = items.get(start..(start + chunk).min(items.len())) else {
            break;
        };
        if part.is_empty() {
            break;
        }
        let out: Vec<R> = part.iter().map(&f).collect();
        results
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((start, out));
        done(finished.fetch_add(part.len(), Ordering::Relaxed) + part.len());
    };
    let threads = threads.clamp(1, items.len().div_ceil(chunk.max(1)).max(1));
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }
    let mut parts = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    parts.sort_by_key(|(start, _)| *start);
    parts.into_iter().flat_map(|(_, out)| out).collect()
}

/// The account a resource-policy principal belongs to, when it names one.
fn principal_account(p: &PolicyPrincipal) -> Option<String> {
    match p {
        PolicyPrincipal::Account(a)
        | PolicyPrincipal::AccountIn { account: a, .. }
        | PolicyPrincipal::Role { account: a, .. }
        | PolicyPrincipal::User { account: a, .. } => Some(a.clone()),
        PolicyPrincipal::Session(arn) => crate::refs::Arn::parse(arn).map(|a| a.account.to_owned()),
        _ => None,
    }
}

/// The (bucket owner, account) pairs of every account a bucket policy allows an object read.
fn bucket_grants(snap: &Snapshot) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (owner, account) in &snap.accounts {
        for bucket in account.s3.values() {
            let Some(policy) = &bucket.policy else {
                continue;
            };
            for st in &policy.policy.statements {
                let reads = st
                    .action
                    .entries
                    .iter()
                    .any(|a| a.is_match_lower("s3", "getobject"))
                    != st.action.not;
                let Some(spec) = st
                    .principal
                    .as_ref()
                    .filter(|p| st.effect == Effect::Allow && !p.not && reads)
                else {
                    continue;
                };
                for p in &spec.entries {
                    if let Some(a) = principal_account(p) {
                        out.insert((owner.clone(), a));
                    }
                }
            }
        }
    }
    out
}

/// Key policies that grant an external account which no bucket policy of the key's account
/// grants: a sign that one of the three policies was fixed and the others forgotten.
fn key_observations(snap: &Snapshot, out: &mut Sweep) {
    let granted = bucket_grants(snap);
    let mut seen = BTreeSet::new();
    for (owner, account) in &snap.accounts {
        for key in account.kms.values() {
            let Some(policy) = &key.policy else { continue };
            for st in &policy.policy.statements {
                let decrypts = st
                    .action
                    .entries
                    .iter()
                    .any(|a| a.is_match_lower("kms", "decrypt"))
                    != st.action.not;
                let Some(spec) = st
                    .principal
                    .as_ref()
                    .filter(|p| st.effect == Effect::Allow && !p.not && decrypts)
                else {
                    continue;
                };
                for p in &spec.entries {
                    let Some(ext) = principal_account(p) else {
                        continue;
                    };
                    if ext == *owner || granted.contains(&(owner.clone(), ext.clone())) {
                        continue;
                    }
                    if !seen.insert((key.metadata.arn.clone(), ext.clone())) {
                        continue;
                    }
                    out.observations.push(Observation {
                        kind: "KEY_GRANT_WITHOUT_BUCKET_GRANT",
                        account: owner.clone(),
                        explanation: format!(
                            "The key policy of `{}` lets account {ext} decrypt, but no bucket policy of account {owner} grants {ext} an object read: either a bucket grant is missing, or the key grant is left over and can be removed.",
                            key.metadata.arn
                        ),
                    });
                }
            }
        }
    }
}

/// The sweep as text: a summary line, one line per path, then the blocking causes of each
/// denied path with their fixes, then what was noticed along the way.
pub fn render_text(s: &Sweep) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let n = &s.summary;
    let _ = writeln!(
        out,
        "{} cross-account read path{} checked, {} blocked, {} unknown ({} account{}, {} bucket{}; not checked: {} intended only by a key policy or grant, {} only by the caller's identity policies)",
        n.paths,
        if n.paths == 1 { "" } else { "s" },
        n.denied,
        n.unknown,
        n.accounts,
        if n.accounts == 1 { "" } else { "s" },
        n.buckets,
        if n.buckets == 1 { "" } else { "s" },
        n.key_only,
        n.identity_only,
    );
    for p in &s.paths {
        let v = match p.verdict {
            Verdict::Denied => "DENIED ",
            Verdict::Allowed => "ALLOWED",
            Verdict::Unknown => "UNKNOWN",
        };
        let codes = if p.blocking.is_empty() {
            String::new()
        } else {
            format!("  [{}]", p.blocking.join(", "))
        };
        let _ = writeln!(
            out,
            "  {v} {} → s3://{}/{}{codes}",
            p.principal, p.bucket, p.object
        );
    }
    for p in s.paths.iter().filter(|p| p.verdict != Verdict::Allowed) {
        let _ = writeln!(out, "\n{} → s3://{}/{}", p.principal, p.bucket, p.object);
        crate::impact::write_path_detail(
            &mut out,
            crate::impact::PathDetail {
                intended_by: &p.intended_by,
                error: p.error.as_deref(),
                findings: &p.findings,
                fixes_verified: p.fixes_verified,
                fixes_unverified: p.fixes_unverified.as_deref(),
            },
        );
    }
    if !s.advisories.is_empty() || !s.observations.is_empty() {
        let _ = writeln!(out, "\nAlso noticed:");
        let mut seen = BTreeSet::new();
        for f in &s.advisories {
            if seen.insert((f.code, f.explanation.clone())) {
                let _ = writeln!(out, "  - {}: {}", f.code, f.explanation);
            }
        }
        for o in &s.observations {
            let _ = writeln!(out, "  - {}: {}", o.kind, o.explanation);
        }
    }
    out
}

//! The pure parts of the organization sweep (issue 11, docs/live.md "Organization sweep"):
//!
//! * [`replace_account`]: a freshly collected account laid over its stored snapshot — the
//!   account's own entry replaced whole (a deleted bucket or role disappears), the other
//!   accounts' parts the change-impact state keeps left as they are;
//! * [`compose`]: the organization as the sweep sees it, from every account's stored snapshot
//!   (each account's own entry, plus the keys of other accounts its buckets use);
//! * [`evaluate_touching`]: the verdict of every read path touching one account, both ways
//!   (its buckets read by others, its principals reading others' buckets);
//! * [`compare_sweep`]: what changed since the previous sweep, worst first.
//!
//! Everything here is a function of its inputs, so the Lambda and the offline tools agree.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::state::{evaluate_where, PathId, PathIndex, PathVerdict};
use crate::diagnose::Verdict;
use crate::snapshot::Snapshot;

/// Lays `fresh` (everything collected for `account`) over `stored`: the account's own entry
/// is replaced whole; keys of other accounts that `fresh` read (a bucket's default key owned
/// elsewhere) replace the stored ones; the account's collection errors are the fresh ones.
pub fn replace_account(stored: &mut Snapshot, fresh: &Snapshot, account: &str) {
    let own = fresh.accounts.get(account).cloned().unwrap_or_default();
    stored.accounts.insert(account.to_owned(), own);
    for (id, other) in fresh.accounts.iter().filter(|(id, _)| *id != account) {
        let entry = stored.accounts.entry(id.clone()).or_default();
        for (arn, key) in &other.kms {
            entry.kms.insert(arn.clone(), key.clone());
        }
    }
    let fresh_accounts: BTreeSet<Option<&str>> =
        fresh.accounts.keys().map(|a| Some(a.as_str())).collect();
    stored.collection_errors.retain(|e| {
        e.account.as_deref() != Some(account) && !fresh_accounts.contains(&e.account.as_deref())
    });
    for e in &fresh.collection_errors {
        if !stored.collection_errors.contains(e) {
            stored.collection_errors.push(e.clone());
        }
    }
    stored.description = fresh.description.clone();
}

/// The organization from the stored snapshots, by account: each document gives its own
/// account's entry whole, and the keys it holds of other accounts where the owner's own
/// document does not hold them. Collection errors of each account come from its document.
pub fn compose(documents: &BTreeMap<String, Snapshot>) -> Snapshot {
    let mut out = Snapshot {
        description: Some(format!(
            "Organization sweep state of s3-kms-auditor: {} accounts",
            documents.len()
        )),
        ..Snapshot::default()
    };
    for (id, doc) in documents {
        if let Some(own) = doc.accounts.get(id) {
            out.accounts.insert(id.clone(), own.clone());
        }
        for e in &doc.collection_errors {
            let about_own = e.account.as_deref().is_none_or(|a| a == id);
            if about_own && !out.collection_errors.contains(e) {
                out.collection_errors.push(e.clone());
            }
        }
    }
    for (id, doc) in documents {
        for (other, entry) in doc.accounts.iter().filter(|(o, _)| *o != id) {
            let target = out.accounts.entry(other.clone()).or_default();
            for (arn, key) in &entry.kms {
                target.kms.entry(arn.clone()).or_insert_with(|| key.clone());
            }
        }
    }
    out
}

/// The verdict of every read path of `org` touching `account`: those of its principals and
/// those on its buckets.
pub fn evaluate_touching(org: &Snapshot, account: &str) -> Vec<PathVerdict> {
    evaluate_where(org, |principal, owner| {
        principal == Some(account) || owner == Some(account)
    })
}

/// How a path changed since the previous sweep, in the order a reader needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepChangeKind {
    /// Allowed at the previous sweep, denied now; or a new path that is denied.
    Broken,
    /// Denied now, at the account's first sweep (nothing to compare with).
    Denied,
    /// A new path that is allowed: someone outside the bucket's account can now read.
    Opened,
    /// Denied at the previous sweep, allowed now.
    Fixed,
    /// A verdict that became or stopped being `unknown`.
    Undecided,
    /// No policy intends the path any more.
    Gone,
}

impl SweepChangeKind {
    /// Its name in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            SweepChangeKind::Broken => "broken",
            SweepChangeKind::Denied => "denied",
            SweepChangeKind::Opened => "opened",
            SweepChangeKind::Fixed => "fixed",
            SweepChangeKind::Undecided => "undecided",
            SweepChangeKind::Gone => "gone",
        }
    }
}

/// One path that changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepChange {
    /// How.
    pub kind: SweepChangeKind,
    /// The verdict at the previous sweep, when the path was known.
    pub before: Option<Verdict>,
    /// The path now (for a gone path: as it was).
    pub path: PathVerdict,
}

/// What one account's sweep found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountSweep {
    /// The sweep.
    pub sweep: String,
    /// The account.
    pub account: String,
    /// No index was stored: the account's first sweep.
    pub first_sight: bool,
    /// Paths touching the account.
    pub paths: usize,
    /// Of those, denied now.
    pub denied: usize,
    /// The changes this account reports, worst first.
    pub changes: Vec<SweepChange>,
}

impl AccountSweep {
    /// Whether there is anything to tell.
    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
    }

    /// How many changes of `kind`.
    pub fn count(&self, kind: SweepChangeKind) -> usize {
        self.changes.iter().filter(|c| c.kind == kind).count()
    }
}

/// What changed for `account` between its stored index (`previous`, `None` at its first
/// sweep) and the verdicts of this sweep (`now`, every path touching the account).
///
/// A path between two accounts is in both accounts' indexes; it is reported by one of them
/// only — the one `reports(path)` names (the sweep: the bucket owner, or the principal's
/// account when the bucket owner is not swept) — so that one broken path is one line in one
/// message.
pub fn compare_sweep(
    sweep: &str,
    account: &str,
    previous: Option<&PathIndex>,
    now: &[PathVerdict],
    reports: impl Fn(&PathVerdict) -> bool,
) -> AccountSweep {
    let before: BTreeMap<PathId, &PathVerdict> = previous
        .map(|i| i.paths.iter().map(|p| (p.id(), p)).collect())
        .unwrap_or_default();
    let now_ids: BTreeSet<PathId> = now.iter().map(PathVerdict::id).collect();
    let mut changes = Vec::new();
    for p in now.iter().filter(|p| reports(p)) {
        let was = before.get(&p.id()).map(|b| b.verdict);
        let kind = match (previous.is_some(), was, p.verdict) {
            (false, _, Verdict::Denied) => Some(SweepChangeKind::Denied),
            (false, _, _) => None,
            (true, None, Verdict::Denied) | (true, Some(Verdict::Allowed), Verdict::Denied) => {
                Some(SweepChangeKind::Broken)
            }
            (true, None, Verdict::Allowed) => Some(SweepChangeKind::Opened),
            (true, Some(Verdict::Denied), Verdict::Allowed) => Some(SweepChangeKind::Fixed),
            (true, Some(a), b) if a != b => Some(SweepChangeKind::Undecided),
            (true, None, Verdict::Unknown) => Some(SweepChangeKind::Undecided),
            _ => None,
        };
        if let Some(kind) = kind {
            changes.push(SweepChange {
                kind,
                before: was,
                path: p.clone(),
            });
        }
    }
    if let Some(prev) = previous {
        for p in prev.paths.iter().filter(|p| reports(p)) {
            if !now_ids.contains(&p.id()) {
                changes.push(SweepChange {
                    kind: SweepChangeKind::Gone,
                    before: Some(p.verdict),
                    path: p.clone(),
                });
            }
        }
    }
    changes.sort_by_key(|c| (c.kind, c.path.id()));
    AccountSweep {
        sweep: sweep.to_owned(),
        account: account.to_owned(),
        first_sight: previous.is_none(),
        paths: now.len(),
        denied: now.iter().filter(|p| p.verdict == Verdict::Denied).count(),
        changes,
    }
}

/// The index of `account` after a sweep: exactly the paths touching it now.
pub fn swept_index(account: &str, now: &[PathVerdict], sweep: &str) -> PathIndex {
    let mut index = PathIndex::new(account);
    index.apply(now, &BTreeSet::new(), Some(sweep));
    index
}

/// The counts of a finished sweep, for its completion message.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SweepTotals {
    /// The sweep.
    pub sweep: String,
    /// When it started (the schedule's time).
    pub started: String,
    /// Accounts planned.
    pub planned: usize,
    /// Accounts collected and evaluated.
    pub swept: usize,
    /// Accounts that failed after their retries (their messages are in the dead-letter
    /// queue), with the phase and error.
    pub failed: Vec<(String, String)>,
    /// Path evaluations (a path between two swept accounts is counted once per side).
    pub paths_checked: usize,
    /// Paths denied now, counted by the accounts that report them.
    pub denied: usize,
    /// Broken paths reported by this sweep.
    pub broken: usize,
    /// Accounts whose summary was published.
    pub changed_accounts: usize,
    /// Seconds from the schedule's time to the last account.
    pub duration_seconds: f64,
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use crate::snapshot::{Account, Bucket, CollectionError};

    fn path(principal_account: &str, owner: &str, bucket: &str, verdict: Verdict) -> PathVerdict {
        PathVerdict {
            principal: format!("arn:aws:iam::{principal_account}:role/reader"),
            bucket: bucket.into(),
            object: "*".into(),
            action: "s3:GetObject".into(),
            probe: format!("arn:aws:s3:::{bucket}/example"),
            verdict,
            blocking: if verdict == Verdict::Denied {
                vec!["KMS_KEY_POLICY_NO_ALLOW".into()]
            } else {
                Vec::new()
            },
            must_act: Vec::new(),
            principal_account: Some(principal_account.into()),
            resource_account: Some(owner.into()),
        }
    }

    const A: &str = "111111111111";
    const B: &str = "222222222222";

    #[test]
    fn the_bucket_owner_reports_each_change_worst_first_and_nothing_when_nothing_changed() {
        let before = vec![
            path(B, A, "kept", Verdict::Allowed),
            path(B, A, "breaks", Verdict::Allowed),
            path(B, A, "heals", Verdict::Denied),
            path(B, A, "goes", Verdict::Allowed),
            path(A, B, "theirs", Verdict::Allowed),
        ];
        let previous = swept_index(A, &before, "s1");
        let now = vec![
            path(B, A, "kept", Verdict::Allowed),
            path(B, A, "breaks", Verdict::Denied),
            path(B, A, "heals", Verdict::Allowed),
            path(B, A, "new", Verdict::Allowed),
            // B owns this bucket: B's summary reports it, not A's.
            path(A, B, "theirs", Verdict::Denied),
        ];
        let owner = |p: &PathVerdict| p.resource_account.as_deref() == Some(A);
        let s = compare_sweep("s2", A, Some(&previous), &now, owner);
        let kinds: Vec<(SweepChangeKind, &str)> = s
            .changes
            .iter()
            .map(|c| (c.kind, c.path.bucket.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (SweepChangeKind::Broken, "breaks"),
                (SweepChangeKind::Opened, "new"),
                (SweepChangeKind::Fixed, "heals"),
                (SweepChangeKind::Gone, "goes"),
            ]
        );
        assert_eq!((s.paths, s.denied), (5, 2));
        let again = compare_sweep("s3", A, Some(&swept_index(A, &now, "s2")), &now, owner);
        assert!(!again.changed(), "{again:?}");
    }

    #[test]
    fn a_first_sweep_reports_only_denied_paths() {
        let now = vec![
            path(B, A, "ok", Verdict::Allowed),
            path(B, A, "no", Verdict::Denied),
        ];
        let s = compare_sweep("s1", A, None, &now, |_| true);
        assert!(s.first_sight);
        assert_eq!(s.changes.len(), 1);
        assert_eq!(s.changes[0].kind, SweepChangeKind::Denied);
        assert_eq!(s.changes[0].path.bucket, "no");
    }

    fn bucket() -> Bucket {
        Bucket {
            region: "us-west-2".into(),
            policy: None,
            encryption: None,
            ownership: None,
            public_access_block: None,
            acl_owner_id: None,
            acl_grants: Vec::new(),
            objects: BTreeMap::new(),
            request_payment: None,
        }
    }

    #[test]
    fn a_fresh_account_replaces_its_own_entry_whole_and_compose_takes_each_owners_entry() {
        let mut stored = Snapshot::default();
        let mut old = Account::default();
        old.s3.insert("deleted-since".into(), bucket());
        stored.accounts.insert(A.into(), old);
        // A foreign part the change-impact state keeps (B's stale bucket): left alone here,
        // ignored by compose.
        let mut stale_b = Account::default();
        stale_b.s3.insert("stale".into(), bucket());
        stored.accounts.insert(B.into(), stale_b);
        stored.collection_errors.push(CollectionError {
            account: Some(A.into()),
            operation: "s3:GetBucketPolicy".into(),
            resource: None,
            error: "AccessDenied".into(),
            message: None,
        });
        let mut fresh = Snapshot::default();
        let mut now = Account::default();
        now.s3.insert("current".into(), bucket());
        fresh.accounts.insert(A.into(), now);
        replace_account(&mut stored, &fresh, A);
        let a = &stored.accounts[A];
        assert_eq!(a.s3.keys().collect::<Vec<_>>(), ["current"]);
        assert!(stored.collection_errors.is_empty());
        assert!(stored.accounts[B].s3.contains_key("stale"));

        let mut b_doc = Snapshot::default();
        let mut b = Account::default();
        b.s3.insert("b-bucket".into(), bucket());
        b_doc.accounts.insert(B.into(), b);
        let docs = BTreeMap::from([(A.to_owned(), stored), (B.to_owned(), b_doc)]);
        let org = compose(&docs);
        assert_eq!(org.accounts[A].s3.keys().collect::<Vec<_>>(), ["current"]);
        assert_eq!(org.accounts[B].s3.keys().collect::<Vec<_>>(), ["b-bucket"]);
    }
}

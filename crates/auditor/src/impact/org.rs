//! The pure parts of the organization sweep (issue 11, docs/live.md "Organization sweep"):
//!
//! * [`replace_account`]: a freshly collected account laid over its stored snapshot — the
//!   account's own entry replaced whole (a deleted bucket or role disappears), the other
//!   accounts' parts the change-impact state keeps left as they are;
//! * [`compose`]: the organization as the sweep sees it, from every account's stored snapshot
//!   (each account's own entry, plus the keys of other accounts its buckets use);
//! * [`evaluate_touching`]: the verdict of every read path touching one account, both ways
//!   (its buckets read by others, its principals reading others' buckets);
//! * [`compare_sweep`]: what changed since the previous sweep, worst first;
//! * [`footprint`] and [`neighbours`]: which stored accounts the evaluation of one account
//!   reads, so that a sweep of N accounts reads about N times the accounts each one touches
//!   rather than N² snapshots.
//!
//! Everything here is a function of its inputs, so the Lambda and the offline tools agree.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use iam_eval::policy::Policy;
use iam_eval::principal::PolicyPrincipal;

use super::state::{evaluate_where, PathId, PathIndex, PathVerdict};
use crate::diagnose::Verdict;
use crate::refs::{self, Arn};
use crate::snapshot::{Grantee, Snapshot};

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

/// What one account's stored document names of the organization: what the sweep needs to
/// know, without reading the document again, to find the accounts a path touching the
/// account can involve ([`neighbours`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Footprint {
    /// The account's buckets.
    #[serde(default)]
    pub buckets: BTreeSet<String>,
    /// The account's canonical user id.
    #[serde(default)]
    pub canonical_id: Option<String>,
    /// Accounts named as principals by its bucket policies and by the policies and grants
    /// of every key the document holds (its own and the other accounts' keys its buckets use).
    #[serde(default)]
    pub principals: BTreeSet<String>,
    /// Accounts whose resources its buckets depend on: the owners of the keys the document
    /// holds or its buckets and objects name.
    #[serde(default)]
    pub resources: BTreeSet<String>,
    /// Buckets named (without wildcards) by S3 ARNs in its IAM policies.
    #[serde(default)]
    pub bucket_names: BTreeSet<String>,
    /// Canonical user ids its buckets' and objects' owners and ACL grants name.
    #[serde(default)]
    pub canonical_ids: BTreeSet<String>,
}

/// The footprint of `account` in its stored document `doc`. It may name more than the paths
/// need (a bucket ARN in a `Deny`, a `NotPrincipal`): [`neighbours`] then reads a snapshot too
/// many, never one too few.
pub fn footprint(doc: &Snapshot, account: &str) -> Footprint {
    let mut out = Footprint::default();
    let principals_of = |policy: &Policy, out: &mut Footprint| {
        for st in &policy.statements {
            for p in st.principal.iter().flat_map(|s| &s.entries) {
                match p {
                    PolicyPrincipal::Account(a)
                    | PolicyPrincipal::AccountIn { account: a, .. }
                    | PolicyPrincipal::User { account: a, .. }
                    | PolicyPrincipal::Role { account: a, .. } => {
                        out.principals.insert(a.clone());
                    }
                    PolicyPrincipal::Session(arn) => {
                        if let Some(a) = Arn::parse(arn) {
                            out.principals.insert(a.account.to_owned());
                        }
                    }
                    PolicyPrincipal::CanonicalUser(id) => {
                        out.canonical_ids.insert(id.clone());
                    }
                    _ => {}
                }
            }
        }
    };
    let owner_of = |reference: &str| Arn::parse(reference).map(|a| a.account.to_owned());
    for (id, entry) in &doc.accounts {
        if id != account && !entry.kms.is_empty() {
            out.resources.insert(id.clone());
        }
        for key in entry.kms.values() {
            if let Some(p) = &key.policy {
                principals_of(&p.policy, &mut out);
            }
            for g in &key.grants {
                if let Some(a) = Arn::parse(&g.grant.grantee) {
                    out.principals.insert(a.account.to_owned());
                }
            }
        }
    }
    let Some(own) = doc.accounts.get(account) else {
        return out;
    };
    out.canonical_id.clone_from(&own.canonical_id);
    for (name, bucket) in &own.s3 {
        out.buckets.insert(name.clone());
        if let Some(p) = &bucket.policy {
            principals_of(&p.policy, &mut out);
        }
        out.resources
            .extend(bucket.key_references().filter_map(owner_of));
        let grants = bucket
            .acl_grants
            .iter()
            .chain(bucket.objects.values().flat_map(|o| &o.grants));
        for g in grants {
            if let Grantee::CanonicalUser { id } = &g.grantee {
                out.canonical_ids.insert(id.clone());
            }
        }
        let owners = bucket
            .acl_owner_id
            .iter()
            .chain(bucket.objects.values().filter_map(|o| o.owner_id.as_ref()));
        out.canonical_ids.extend(owners.cloned());
    }
    if let Some(iam) = &own.iam {
        let documents = iam
            .roles
            .iter()
            .flat_map(|r| &r.inline_policies)
            .chain(iam.users.iter().flat_map(|u| &u.inline_policies))
            .chain(iam.groups.iter().flat_map(|g| &g.inline_policies))
            .chain(
                iam.managed_policies
                    .values()
                    .filter_map(|m| m.document.as_ref()),
            );
        for np in documents {
            s3_bucket_names(&np.document, &mut out.bucket_names);
        }
    }
    out.principals.remove(account);
    out.resources.remove(account);
    out
}

/// The buckets S3 ARNs anywhere in a policy document name (wildcards name none in
/// particular).
fn s3_bucket_names(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            if let Some((_, bucket, _)) = refs::parse_s3_arn(s) {
                if !bucket.contains(['*', '?']) {
                    out.insert(bucket.to_owned());
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| s3_bucket_names(x, out)),
        Value::Object(o) => o.values().for_each(|x| s3_bucket_names(x, out)),
        _ => {}
    }
}

/// For every account of `footprints` (every stored account, by id), the stored accounts its
/// evaluation must read so that [`evaluate_touching`] on their [`compose`] gives the paths
/// touching it exactly as on every stored account:
///
/// * the account itself;
/// * the accounts it names (principals of its bucket and key policies and grants, the owners
///   of the keys its buckets use, of the buckets its IAM policies name, of the canonical ids
///   its buckets name) — the other side of the paths on its buckets, and of the paths of its
///   principals it asks for;
/// * the accounts that name it as a principal or name one of its buckets in their IAM
///   policies — the other side of the paths of its principals;
/// * and the accounts those depend on for their buckets (key owners, object writers), which
///   the diagnosis of a path on their buckets reads.
///
/// A key one document holds a copy of is the same key in every document holding it when the
/// copies were read in one sweep. Collector gaps of accounts left out do not reach the
/// account's paths, as in the offline sweep's per-path scope (docs/scaling.md).
pub fn neighbours(footprints: &BTreeMap<String, Footprint>) -> BTreeMap<String, BTreeSet<String>> {
    let mut bucket_owner: BTreeMap<&str, &str> = BTreeMap::new();
    let mut canonical: BTreeMap<&str, &str> = BTreeMap::new();
    for (id, f) in footprints {
        for b in &f.buckets {
            bucket_owner.insert(b.as_str(), id.as_str());
        }
        if let Some(c) = &f.canonical_id {
            canonical.insert(c.as_str(), id.as_str());
        }
    }
    // The accounts each footprint names, resolved.
    let names = |f: &Footprint, resources_only: bool| -> BTreeSet<String> {
        let mut out: BTreeSet<String> = f.resources.clone();
        out.extend(
            f.canonical_ids
                .iter()
                .filter_map(|c| canonical.get(c.as_str()))
                .map(|a| (*a).to_owned()),
        );
        if !resources_only {
            out.extend(f.principals.iter().cloned());
            out.extend(
                f.bucket_names
                    .iter()
                    .filter_map(|b| bucket_owner.get(b.as_str()))
                    .map(|a| (*a).to_owned()),
            );
        }
        out
    };
    let named: BTreeMap<&str, BTreeSet<String>> = footprints
        .iter()
        .map(|(id, f)| (id.as_str(), names(f, false)))
        .collect();
    // Who names whom as the reader's side: a principal, or the owner of a bucket it asks for.
    let mut named_by: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (id, f) in footprints {
        let readers = f.principals.iter().map(String::as_str).chain(
            f.bucket_names
                .iter()
                .filter_map(|b| bucket_owner.get(b.as_str()).copied()),
        );
        for other in readers {
            named_by.entry(other).or_default().insert(id.as_str());
        }
    }
    footprints
        .keys()
        .map(|id| {
            let mut first: BTreeSet<String> = BTreeSet::from([id.clone()]);
            if let Some(n) = named.get(id.as_str()) {
                first.extend(n.iter().cloned());
            }
            if let Some(by) = named_by.get(id.as_str()) {
                first.extend(by.iter().map(|a| (*a).to_owned()));
            }
            let mut all = first.clone();
            for other in &first {
                if let Some(f) = footprints.get(other) {
                    all.extend(names(f, true));
                }
            }
            // Only stored accounts can be read.
            all.retain(|a| footprints.contains_key(a));
            (id.clone(), all)
        })
        .collect()
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
    /// Advisories on the account's buckets that other accounts read, new since the previous
    /// sweep (all of them at the account's first sweep).
    pub advisories: Vec<SweepAdvisory>,
}

/// An advisory finding on a bucket read from other accounts (default encryption by alias,
/// with the AWS managed key, ...): a trap that does not block the reads today.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SweepAdvisory {
    /// The finding code (`DEFAULT_ENCRYPTION_ALIAS`).
    pub code: String,
    /// The bucket.
    pub bucket: String,
    /// The paths of other accounts on the bucket whose diagnosis reports it.
    pub paths: usize,
}

impl AccountSweep {
    /// Whether there is anything to tell.
    pub fn changed(&self) -> bool {
        !self.changes.is_empty() || !self.advisories.is_empty()
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
    // Advisories by (code, bucket): new when no path of the previous index on the bucket had
    // the code.
    let seen: BTreeSet<(&str, &str)> = previous
        .iter()
        .flat_map(|i| &i.paths)
        .filter(|p| reports(p))
        .flat_map(|p| p.advisories.iter().map(|c| (c.as_str(), p.bucket.as_str())))
        .collect();
    let mut advisories: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for p in now.iter().filter(|p| reports(p)) {
        for c in &p.advisories {
            *advisories
                .entry((c.as_str(), p.bucket.as_str()))
                .or_default() += 1;
        }
    }
    let advisories: Vec<SweepAdvisory> = advisories
        .into_iter()
        .filter(|(k, _)| !seen.contains(k))
        .map(|((code, bucket), paths)| SweepAdvisory {
            code: code.to_owned(),
            bucket: bucket.to_owned(),
            paths,
        })
        .collect();
    AccountSweep {
        sweep: sweep.to_owned(),
        account: account.to_owned(),
        first_sight: previous.is_none(),
        paths: now.len(),
        denied: now.iter().filter(|p| p.verdict == Verdict::Denied).count(),
        changes,
        advisories,
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
            advisories: Vec::new(),
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

    /// Each account's stored document: its own entry only, as the sweep's collect stores it
    /// for an account whose buckets use only its own keys.
    fn documents(snap: &Snapshot) -> BTreeMap<String, Snapshot> {
        snap.accounts
            .iter()
            .map(|(id, entry)| {
                let mut doc = Snapshot::default();
                doc.accounts.insert(id.clone(), entry.clone());
                (id.clone(), doc)
            })
            .collect()
    }

    const KC_A: &str = "111122223333";
    const KC_B: &str = "444455556666";
    const C: &str = "777788889999";

    /// The knowledge-center organization (A's bucket read by B's reader) and an account C
    /// that has nothing to do with either.
    fn kc_and_a_stranger() -> Snapshot {
        let (mut snap, raw) = crate::diagnose::testing::working();
        let text = raw
            .to_string()
            .replace(KC_B, C)
            .replace("b-analytics", "c-analytics")
            .replace("doc-example-bucket", "c-elsewhere")
            .replace("08d533ef40bb", "0c0c0c0c0c0c");
        let copy = Snapshot::from_text(&text).unwrap();
        snap.accounts.insert(C.into(), copy.accounts[C].clone());
        snap
    }

    #[test]
    fn an_account_reads_only_the_accounts_its_paths_touch_and_gets_the_same_verdicts() {
        let snap = kc_and_a_stranger();
        let docs = documents(&snap);
        let prints: BTreeMap<String, Footprint> = docs
            .iter()
            .map(|(id, d)| (id.clone(), footprint(d, id)))
            .collect();
        // A's bucket policy and key policy name B's reader; B's reader names A's bucket.
        assert!(prints[KC_A].principals.contains(KC_B), "{:?}", prints[KC_A]);
        assert!(
            prints[KC_B].bucket_names.contains("doc-example-bucket"),
            "{:?}",
            prints[KC_B]
        );
        let reads = neighbours(&prints);
        assert_eq!(
            reads[KC_A],
            BTreeSet::from([KC_A.to_owned(), KC_B.to_owned()])
        );
        assert_eq!(
            reads[KC_B],
            BTreeSet::from([KC_A.to_owned(), KC_B.to_owned()])
        );
        assert_eq!(reads[C], BTreeSet::from([C.to_owned()]));
        let whole = compose(&docs);
        for (account, needed) in &reads {
            let part: BTreeMap<String, Snapshot> = docs
                .iter()
                .filter(|(id, _)| needed.contains(*id))
                .map(|(id, d)| (id.clone(), d.clone()))
                .collect();
            let narrow = evaluate_touching(&compose(&part), account);
            assert_eq!(narrow, evaluate_touching(&whole, account), "{account}");
        }
        assert!(!evaluate_touching(&whole, KC_A).is_empty());
    }

    #[test]
    fn a_footprint_round_trips_through_its_json() {
        let (snap, _) = crate::diagnose::testing::working();
        let f = footprint(&snap, KC_A);
        let text = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<Footprint>(&text).unwrap(), f);
        assert!(f.buckets.contains("doc-example-bucket"));
        assert!(f.canonical_id.is_some());
    }

    #[test]
    fn a_new_advisory_on_a_bucket_read_across_accounts_is_told_once() {
        let (before, _) = crate::diagnose::testing::working();
        let mut after = before.clone();
        // Default encryption with the AWS managed key (SSE-KMS without a key id): readers in
        // other accounts cannot decrypt what is written from now on.
        let bucket = after
            .accounts
            .get_mut(KC_A)
            .and_then(|a| a.s3.get_mut("doc-example-bucket"))
            .unwrap();
        bucket.encryption.as_mut().unwrap().kms_key_id = None;
        let owner = |p: &PathVerdict| p.resource_account.as_deref() == Some(KC_A);
        let was = evaluate_touching(&before, KC_A);
        let aws_managed = "DEFAULT_ENCRYPTION_AWS_MANAGED_KEY";
        assert!(
            was.iter()
                .all(|p| !p.advisories.iter().any(|c| c == aws_managed)),
            "{was:?}"
        );
        let now = evaluate_touching(&after, KC_A);
        assert!(
            now.iter()
                .any(|p| p.advisories.iter().any(|c| c == aws_managed)),
            "{now:?}"
        );
        let s = compare_sweep(
            "s2",
            KC_A,
            Some(&swept_index(KC_A, &was, "s1")),
            &now,
            owner,
        );
        assert!(s.changed(), "{s:?}");
        let codes: Vec<(&str, &str)> = s
            .advisories
            .iter()
            .map(|a| (a.code.as_str(), a.bucket.as_str()))
            .collect();
        assert_eq!(codes, [(aws_managed, "doc-example-bucket")], "{s:?}");
        // No path's verdict changed: the advisory is the whole message.
        assert!(s.changes.is_empty(), "{:?}", s.changes);
        let text = crate::report::sns::sweep_text(&s);
        assert!(
            text.contains("ADVISORY DEFAULT_ENCRYPTION_AWS_MANAGED_KEY on s3://doc-example-bucket"),
            "{text}"
        );
        // The next sweep with nothing changed tells nothing; the index kept the advisory.
        let again = compare_sweep(
            "s3",
            KC_A,
            Some(&swept_index(KC_A, &now, "s2")),
            &now,
            owner,
        );
        assert!(!again.changed(), "{again:?}");
        // The bucket's advisory is told by its owner only.
        let b = compare_sweep(
            "s2",
            KC_B,
            Some(&swept_index(KC_B, &was, "s1")),
            &now,
            |p| p.resource_account.as_deref() == Some(KC_B),
        );
        assert!(b.advisories.is_empty(), "{b:?}");
    }
}

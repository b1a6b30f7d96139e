//! The state the live auditor keeps per account, and the pure operations on it.
//!
//! Per account it stores two documents (docs/impact-format.md, "Live state"):
//!
//! * the **snapshot** it last saw, in the project's own snapshot format (written by
//!   `snapshot/write.rs`), holding everything the account's read paths depend on — the other
//!   account's side of each path included, so that `diagnose --snapshot` reproduces every
//!   stored verdict offline;
//! * the **path index** ([`PathIndex`]): the verdict of every read path touching the account
//!   (as its principal's account or its bucket's owner), with the PATH fields of the impact
//!   format.
//!
//! A change re-collects only its scope (`scope.rs`); [`merge_snapshot`] lays the fresh parts
//! over the stored snapshot, [`evaluate`] gives the verdict of every path the result intends,
//! [`compare`] keeps the impact's paths whose verdict differs from the stored one, and
//! [`PathIndex::apply`] records the new verdicts. Every step is a pure function of its
//! inputs, so a writer that lost a conditional-write race re-reads and applies it again.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{paths, slice, Impact, ImpactPath};
use crate::diagnose::{Code, FixCache, Verdict};
use crate::refs::Arn;
use crate::snapshot::{Account, Iam, Snapshot};

/// The version of the path index document.
pub const INDEX_FORMAT: u32 = 1;

/// A stored document that cannot be read, with its name and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct StateError {
    /// The document (`paths/111122223333.json`).
    pub name: String,
    /// What is wrong, with the line and column the JSON reader gives.
    pub message: String,
}

/// The stored verdict of one read path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathVerdict {
    /// The principal (a role ARN for role sessions).
    pub principal: String,
    /// The bucket.
    pub bucket: String,
    /// The object key, or a prefix ending in `*`.
    pub object: String,
    /// The operation, `s3:GetObject`.
    pub action: String,
    /// The object ARN the verdict was evaluated on (a representative key for a prefix): what
    /// the collector re-reads for this path.
    pub probe: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The blocking finding codes.
    pub blocking: Vec<String>,
    /// The accounts that must act on them.
    pub must_act: Vec<String>,
    /// The principal's account.
    pub principal_account: Option<String>,
    /// The bucket owner's account.
    pub resource_account: Option<String>,
    /// The advisory finding codes of the path's diagnosis about the bucket and its keys
    /// (`DEFAULT_ENCRYPTION_ALIAS`, `DEFAULT_ENCRYPTION_AWS_MANAGED_KEY`, ...): traps that do
    /// not block the read today. Collector gaps (`MISSING_EVIDENCE`) are left out: they show as
    /// an `unknown` verdict. Absent from indexes written before it was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advisories: Vec<String>,
}

/// A path's identity: principal, bucket, object (as shown).
pub type PathId = (String, String, String);

impl PathVerdict {
    /// Its identity.
    pub fn id(&self) -> PathId {
        (
            self.principal.clone(),
            self.bucket.clone(),
            self.object.clone(),
        )
    }

    /// Whether the path touches `account`, as its principal's account or its bucket's owner.
    pub fn touches(&self, account: &str) -> bool {
        self.principal_account.as_deref() == Some(account)
            || self.resource_account.as_deref() == Some(account)
    }
}

/// The verdicts of every read path touching one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathIndex {
    /// [`INDEX_FORMAT`].
    pub format: u32,
    /// The account.
    pub account: String,
    /// The `eventID` of the last change that updated it.
    pub updated_by: Option<String>,
    /// The paths, sorted by identity.
    pub paths: Vec<PathVerdict>,
}

impl PathIndex {
    /// An empty index of `account`.
    pub fn new(account: &str) -> PathIndex {
        PathIndex {
            format: INDEX_FORMAT,
            account: account.to_owned(),
            updated_by: None,
            paths: Vec::new(),
        }
    }

    /// Reads a stored index; `name` names it in errors. A newer format is refused rather
    /// than misread.
    pub fn parse(text: &str, name: &str) -> Result<PathIndex, StateError> {
        let index: PathIndex = serde_json::from_str(text).map_err(|e| StateError {
            name: name.to_owned(),
            message: format!("not a path index: {e}"),
        })?;
        if index.format > INDEX_FORMAT {
            return Err(StateError {
                name: name.to_owned(),
                message: format!(
                    "$.format: {} is newer than this auditor reads ({INDEX_FORMAT})",
                    index.format
                ),
            });
        }
        Ok(index)
    }

    /// The document, pretty-printed.
    pub fn to_text(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A stored path by identity.
    pub fn get(&self, id: &PathId) -> Option<&PathVerdict> {
        self.paths.iter().find(|p| &p.id() == id)
    }

    /// Records `verdicts` (those touching the index's account) and drops the paths of
    /// `gone` (no longer intended by any policy). Applying the same update twice, or after
    /// another writer's update of other paths, leaves both.
    pub fn apply(
        &mut self,
        verdicts: &[PathVerdict],
        gone: &BTreeSet<PathId>,
        event: Option<&str>,
    ) {
        let mut by_id: BTreeMap<PathId, PathVerdict> =
            self.paths.drain(..).map(|p| (p.id(), p)).collect();
        for id in gone {
            by_id.remove(id);
        }
        for v in verdicts.iter().filter(|v| v.touches(&self.account)) {
            by_id.insert(v.id(), v.clone());
        }
        self.paths = by_id.into_values().collect();
        if event.is_some() {
            self.updated_by = event.map(str::to_owned);
        }
    }
}

/// The verdict of every read path `snap` intends (`paths.rs`), one per identity; a
/// whole-bucket stand-in is dropped where the principal has a precise path in that bucket,
/// as in [`super::impact`].
pub fn evaluate(snap: &Snapshot) -> Vec<PathVerdict> {
    evaluate_where(snap, |_, _| true)
}

/// [`evaluate`], for the paths `keep(principal account, bucket owner)` accepts only: the
/// others are enumerated but never diagnosed (an organization sweep evaluates, per account,
/// the paths touching it).
pub fn evaluate_where(
    snap: &Snapshot,
    keep: impl Fn(Option<&str>, Option<&str>) -> bool,
) -> Vec<PathVerdict> {
    let index = paths::Index::new(snap);
    let owner_of = |bucket: &str| index.bucket(bucket).map(|(owner, _)| owner);
    let mut by_id: BTreeMap<PathId, paths::ReadPath> = BTreeMap::new();
    for p in paths::enumerate(&index).0 {
        let principal_account = Arn::parse(&p.principal).map(|a| a.account);
        if !keep(principal_account, owner_of(&p.bucket.name)) {
            continue;
        }
        let id = (
            p.principal.clone(),
            p.bucket.name.clone(),
            p.object.shown.clone(),
        );
        by_id.entry(id).or_insert(p);
    }
    let precise: BTreeSet<(String, String)> = by_id
        .values()
        .filter(|p| !p.stand_in)
        .map(|p| (p.principal.clone(), p.bucket.name.clone()))
        .collect();
    // Ordered by principal then bucket: the paths of one principal on one bucket are
    // consecutive and are diagnosed on one slice of the snapshot, with one fix cache
    // (`slice.rs`, as the sweep and `impact` do).
    let mut group: Option<(String, String, Snapshot, FixCache)> = None;
    let mut out = Vec::new();
    for p in by_id
        .into_values()
        .filter(|p| !p.stand_in || !precise.contains(&(p.principal.clone(), p.bucket.name.clone())))
    {
        let same = group.as_ref().is_some_and(|(principal, bucket, ..)| {
            *principal == p.principal && *bucket == p.bucket.name
        });
        let (_, _, cut, cache) = match group.as_mut().filter(|_| same) {
            Some(g) => g,
            None => group.insert((
                p.principal.clone(),
                p.bucket.name.clone(),
                slice::slice(
                    &index,
                    &p.principal,
                    owner_of(&p.bucket.name),
                    &p.bucket.name,
                ),
                FixCache::default(),
            )),
        };
        let probe = p.bucket.object(p.object.key.as_str()).arn();
        let (verdict, blocking, must_act, advisories) =
            match slice::diagnose_path(cut, &p.principal, &p.bucket, &p.object.key, cache) {
                Ok(d) => {
                    let blocking: Vec<String> = d.blocking().map(|f| f.code.to_string()).collect();
                    let mut must_act: Vec<String> =
                        d.blocking().filter_map(super::acting_account).collect();
                    must_act.sort();
                    must_act.dedup();
                    let mut advisories: Vec<String> = d
                        .findings
                        .iter()
                        .filter(|f| !f.blocking && f.code != Code::MissingEvidence)
                        .map(|f| f.code.to_string())
                        .collect();
                    advisories.sort();
                    advisories.dedup();
                    (d.verdict, blocking, must_act, advisories)
                }
                Err(_) => (Verdict::Unknown, Vec::new(), Vec::new(), Vec::new()),
            };
        out.push(PathVerdict {
            principal_account: Arn::parse(&p.principal).map(|a| a.account.to_owned()),
            resource_account: owner_of(&p.bucket.name).map(str::to_owned),
            principal: p.principal,
            bucket: p.bucket.name,
            object: p.object.shown,
            action: paths::ACTION.to_owned(),
            probe,
            verdict,
            blocking,
            must_act,
            advisories,
        });
    }
    out
}

/// The impact's paths whose verdict after differs from the stored one: a path the stored
/// index already holds with the new verdict (the state saw it before this change) publishes
/// nothing. Where the index has the path, its verdict is the one before.
pub fn compare(stored: &PathIndex, mut impact: Impact) -> Impact {
    let keep = |p: &mut ImpactPath| -> bool {
        let id = (p.principal.clone(), p.bucket.clone(), p.object.clone());
        match stored.get(&id) {
            Some(s) if s.verdict == p.verdict_after => false,
            Some(s) => {
                p.verdict_before = s.verdict;
                true
            }
            None => true,
        }
    };
    let mut moved = 0;
    for list in [
        &mut impact.broken,
        &mut impact.fixed,
        &mut impact.opened,
        &mut impact.undecided,
    ] {
        let before = list.len();
        list.retain_mut(&keep);
        moved += before - list.len();
    }
    impact.unchanged += moved;
    impact
}

/// Lays `fresh` (what a change's scope re-collected) over `base` (the stored snapshot):
/// each bucket's configuration, key, role, user, group, managed policy and organization that
/// `fresh` holds replaces the stored one; what `fresh` did not read is kept. A bucket's
/// listed objects are the union (the fresh read of one object does not forget the others).
pub fn merge_snapshot(base: &mut Snapshot, fresh: &Snapshot) {
    for (id, f) in &fresh.accounts {
        let b = base.accounts.entry(id.clone()).or_default();
        merge_account(b, f);
    }
    // An alias the fresh read looked up and found on no key was deleted (`DeleteAlias`): it is
    // no longer on the key the stored snapshot had it on, so the merged snapshot no longer
    // resolves it, as KMS no longer does.
    for (account, region, alias) in aliases_found_nowhere(fresh) {
        if let Some(a) = base.accounts.get_mut(account) {
            for k in a.kms.values_mut().filter(|k| k.metadata.region == region) {
                k.aliases.retain(|x| x != alias);
            }
        }
    }
    // A read that failed before and was made again: only the fresh outcome counts.
    let fresh_ops: BTreeSet<(Option<&str>, &str, Option<&str>)> = fresh
        .collection_errors
        .iter()
        .map(|e| {
            (
                e.account.as_deref(),
                e.operation.as_str(),
                e.resource.as_deref(),
            )
        })
        .collect();
    base.collection_errors.retain(|e| {
        !fresh_ops.contains(&(
            e.account.as_deref(),
            e.operation.as_str(),
            e.resource.as_deref(),
        ))
    });
    for e in &fresh.collection_errors {
        if !base.collection_errors.contains(e) {
            base.collection_errors.push(e.clone());
        }
    }
}

/// The aliases that the default encryption of a freshly read bucket names in its owner's
/// account and that the same read found on no key, the lookup answered (no `kms:DescribeKey`
/// gap for it): (account, Region, `alias/name`). The collector resolves every alias a bucket's
/// default encryption names (`DescribeKey`, `crates/live/src/collect.rs` `key_by_alias`), so
/// an alias found on no key is one KMS no longer has. An alias ARN of another account is not
/// resolved there and says nothing.
fn aliases_found_nowhere(fresh: &Snapshot) -> Vec<(&str, &str, &str)> {
    let mut out = Vec::new();
    for (owner, account) in &fresh.accounts {
        for bucket in account.s3.values() {
            let Some(reference) = bucket
                .encryption
                .as_ref()
                .and_then(|e| e.kms_key_id.as_deref())
            else {
                continue;
            };
            let Some((alias_account, region, alias)) =
                Snapshot::alias_of(reference, &bucket.region, owner)
            else {
                continue;
            };
            let refused = fresh.collection_errors.iter().any(|e| {
                e.operation == "kms:DescribeKey" && e.resource.as_deref() == Some(reference)
            });
            let found = fresh.key(reference, &bucket.region, owner).is_some();
            if alias_account == owner && !refused && !found {
                out.push((alias_account, region, alias));
            }
        }
    }
    out
}

fn merge_account(b: &mut Account, f: &Account) {
    if f.organization.is_some() {
        b.organization.clone_from(&f.organization);
    }
    if let Some(fi) = &f.iam {
        match &mut b.iam {
            Some(bi) => merge_iam(bi, fi),
            None => b.iam = Some(fi.clone()),
        }
    }
    for (name, fb) in &f.s3 {
        let mut bucket = fb.clone();
        if let Some(old) = b.s3.get(name) {
            for (k, o) in &old.objects {
                bucket.objects.entry(k.clone()).or_insert_with(|| o.clone());
            }
        }
        b.s3.insert(name.clone(), bucket);
    }
    for (arn, k) in &f.kms {
        // An alias names one key of its account and Region: found on a freshly read key, it
        // is no longer on the key the stored snapshot had it on (`UpdateAlias` moved it).
        for other in b.kms.values_mut() {
            if other.metadata.arn != *arn && other.metadata.region == k.metadata.region {
                other.aliases.retain(|a| !k.aliases.contains(a));
            }
        }
        b.kms.insert(arn.clone(), k.clone());
    }
    if f.canonical_id.is_some() {
        b.canonical_id.clone_from(&f.canonical_id);
    }
    if f.public_access_block.is_some() {
        b.public_access_block.clone_from(&f.public_access_block);
    }
    for (arn, s) in &f.sessions {
        b.sessions.insert(arn.clone(), s.clone());
    }
}

fn merge_iam(b: &mut Iam, f: &Iam) {
    for r in &f.roles {
        b.roles.retain(|x| x.arn != r.arn);
        b.roles.push(r.clone());
    }
    for u in &f.users {
        b.users.retain(|x| x.arn != u.arn);
        b.users.push(u.clone());
    }
    for g in &f.groups {
        b.groups.retain(|x| x.name != g.name);
        b.groups.push(g.clone());
    }
    for (arn, p) in &f.managed_policies {
        b.managed_policies.insert(arn.clone(), p.clone());
    }
}

/// Removes the roles and users named `deleted` (`DeleteRole`, `DeleteUser`) from `snap`'s
/// account `account`: a fresh read finds nothing to lay over them.
pub fn forget_principal(
    snap: &mut Snapshot,
    account: &str,
    role: Option<&str>,
    user: Option<&str>,
) {
    let Some(iam) = snap.accounts.get_mut(account).and_then(|a| a.iam.as_mut()) else {
        return;
    };
    if let Some(r) = role {
        iam.roles.retain(|x| x.name != r);
    }
    if let Some(u) = user {
        iam.users.retain(|x| x.name != u);
    }
}

/// The accounts a set of paths touches.
pub fn accounts_of(paths: &[PathVerdict]) -> BTreeSet<String> {
    paths
        .iter()
        .flat_map(|p| [p.principal_account.clone(), p.resource_account.clone()])
        .flatten()
        .collect()
}

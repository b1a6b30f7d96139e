//! What a change can have altered, in read paths: the scope the live auditor re-collects.
//!
//! * a bucket → the paths to that bucket;
//! * a key → the paths to the buckets whose default key or listed objects use it;
//! * the aliases of an account and Region → the paths to buckets of that account there
//!   (which key an alias names may have moved);
//! * a role or user → that principal's paths; a group → the paths of its members;
//! * a managed policy → the paths of every principal it is attached to (directly or through
//!   a group);
//! * an SCP or RCP → every stored path given (the live handler passes the paths of the
//!   accounts the policy reaches: `crates/live/src/handler/impact.rs`).
//!
//! Each path is re-collected through a [`Probe`]: the request the collector reads for it.
//! A bucket change on an account with no stored path also probes the bucket as its owner,
//! so that the bucket policy's new paths are found.

use std::collections::BTreeSet;

use super::state::PathVerdict;
use super::{ChangeEvent, Touched};
use crate::refs::{account_root, Arn, BucketRef, Partition};
use crate::snapshot::Snapshot;

/// One request the collector reads: a principal reading an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Probe {
    /// The principal (a role, user or account root ARN).
    pub principal: String,
    /// The object ARN.
    pub object_arn: String,
    /// The bucket owner's account, which the collector reads the bucket in.
    pub bucket_owner: Option<String>,
}

impl Probe {
    /// The probe that re-reads a stored path.
    pub fn of(p: &PathVerdict) -> Probe {
        Probe {
            principal: p.principal.clone(),
            object_arn: p.probe.clone(),
            bucket_owner: p.resource_account.clone(),
        }
    }
}

/// The scope of a change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The stored paths the change may have altered.
    pub paths: Vec<PathVerdict>,
    /// What to re-collect: the probes of those paths, plus discovery probes.
    pub probes: BTreeSet<Probe>,
}

/// The scope of `change` over the stored snapshot and path index of its account.
pub fn scope(change: &ChangeEvent, stored: &Snapshot, paths: &[PathVerdict]) -> Scope {
    let account = change.account.as_deref();
    let region = change.region.as_deref();
    let mut out = Scope::default();
    let mut take = |p: &PathVerdict| {
        if !out.paths.contains(p) {
            out.paths.push(p.clone());
            out.probes.insert(Probe::of(p));
        }
    };
    for t in &change.touches {
        match t {
            Touched::Bucket { name } => {
                paths
                    .iter()
                    .filter(|p| &p.bucket == name)
                    .for_each(&mut take);
            }
            Touched::Key { reference, arn } => {
                let buckets = buckets_using(stored, arn.as_deref().unwrap_or(reference));
                paths
                    .iter()
                    .filter(|p| buckets.contains(&p.bucket))
                    .for_each(&mut take);
            }
            Touched::Aliases => {
                for p in paths {
                    let here = stored.bucket(&p.bucket).is_some_and(|(owner, b)| {
                        account.is_none_or(|a| a == owner) && region.is_none_or(|r| r == b.region)
                    });
                    if here {
                        take(p);
                    }
                }
            }
            Touched::Role { name } => principal_paths(paths, account, "role", name, &mut take),
            Touched::User { name } => principal_paths(paths, account, "user", name, &mut take),
            Touched::Group { name } => {
                for user in members(stored, account, name) {
                    principal_paths(paths, account, "user", &user, &mut take);
                }
            }
            Touched::ManagedPolicy { arn } => {
                for principal in attached_to(stored, arn) {
                    paths
                        .iter()
                        .filter(|p| p.principal == principal)
                        .for_each(&mut take);
                }
            }
            Touched::Organization { .. } => paths.iter().for_each(&mut take),
        }
    }
    // A bucket change: the bucket itself, read as its owner, finds paths its new policy
    // intends even when none were stored.
    for t in &change.touches {
        if let (Touched::Bucket { name }, Some(owner)) = (t, account) {
            if !out
                .probes
                .iter()
                .any(|p| bucket_of(&p.object_arn) == Some(name.as_str()))
            {
                out.probes.insert(bucket_probe(owner, name, region));
            }
        }
    }
    out
}

/// The probe that reads bucket `name` of `owner` as the owner's account.
pub fn bucket_probe(owner: &str, name: &str, region: Option<&str>) -> Probe {
    let partition = region.map_or(Partition::Aws, Partition::of_region);
    Probe {
        principal: account_root(partition, owner),
        object_arn: BucketRef::new(partition, name).object("example").arn(),
        bucket_owner: Some(owner.to_owned()),
    }
}

fn bucket_of(object_arn: &str) -> Option<&str> {
    crate::refs::s3_arn(object_arn).map(|(b, _)| b)
}

/// The paths of the role or user `name` of `account`.
fn principal_paths(
    paths: &[PathVerdict],
    account: Option<&str>,
    kind: &str,
    name: &str,
    take: &mut impl FnMut(&PathVerdict),
) {
    for p in paths {
        let Some(arn) = Arn::parse(&p.principal) else {
            continue;
        };
        let same_account = account.is_none_or(|a| a == arn.account);
        let named = arn
            .resource
            .split_once('/')
            .is_some_and(|(k, rest)| k == kind && rest.rsplit('/').next() == Some(name));
        if same_account && named {
            take(p);
        }
    }
}

/// The buckets whose default encryption or listed objects use the key `reference`.
fn buckets_using(snap: &Snapshot, reference: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let target = |r: &str, region: &str, owner: &str| {
        snap.key(r, region, owner)
            .map(|(_, k)| k.metadata.arn.clone())
            .or_else(|| Some(r.to_owned()))
    };
    let wanted = crate::refs::kms_key_arn(reference)
        .and_then(|(region, owner, _)| target(reference, region, owner))
        .unwrap_or_else(|| reference.to_owned());
    for (owner, account) in &snap.accounts {
        for (name, bucket) in &account.s3 {
            let default = bucket
                .encryption
                .as_ref()
                .and_then(|e| e.kms_key_id.as_deref());
            let uses = default
                .into_iter()
                .chain(
                    bucket
                        .objects
                        .values()
                        .filter_map(|o| o.kms_key_id.as_deref()),
                )
                .any(|r| {
                    target(r, &bucket.region, owner).as_deref() == Some(wanted.as_str())
                        || r == reference
                });
            if uses {
                out.insert(name.clone());
            }
        }
    }
    out
}

/// The users of `account` in group `group`.
fn members(snap: &Snapshot, account: Option<&str>, group: &str) -> Vec<String> {
    snap.accounts
        .iter()
        .filter(|(id, _)| account.is_none_or(|a| a == id.as_str()))
        .filter_map(|(_, a)| a.iam.as_ref())
        .flat_map(|iam| iam.users.iter())
        .filter(|u| u.groups.iter().any(|g| g == group))
        .map(|u| u.name.clone())
        .collect()
}

/// The roles and users the managed policy `arn` is attached to, directly or through a group.
fn attached_to(snap: &Snapshot, arn: &str) -> Vec<String> {
    let mut out = Vec::new();
    for iam in snap.accounts.values().filter_map(|a| a.iam.as_ref()) {
        let groups: Vec<&str> = iam
            .groups
            .iter()
            .filter(|g| g.attached_policies.iter().any(|p| p == arn))
            .map(|g| g.name.as_str())
            .collect();
        for r in &iam.roles {
            if r.attached_policies.iter().any(|p| p == arn) {
                out.push(r.arn.clone());
            }
        }
        for u in &iam.users {
            let via_group = u.groups.iter().any(|g| groups.contains(&g.as_str()));
            if via_group || u.attached_policies.iter().any(|p| p == arn) {
                out.push(u.arn.clone());
            }
        }
    }
    out
}

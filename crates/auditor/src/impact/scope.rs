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
//!   accounts the policy reaches: [`org_reach`] says what to read of the organization, and
//!   [`reached_accounts`] which stored accounts that comes to; the reads are
//!   `crates/live/src/collect/org.rs`).
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
            let uses = bucket.key_references().any(|r| {
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

/// A root, OU or account of an organization, as `targetId` and `ListTargetsForPolicy` name
/// them ([Organizations API: AttachPolicy](https://docs.aws.amazon.com/organizations/latest/APIReference/API_AttachPolicy.html)).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum OrgTarget {
    /// A member account (12 digits).
    Account(String),
    /// An organizational unit (`ou-…`).
    Ou(String),
    /// The root (`r-…`), above every account.
    Root(String),
}

impl OrgTarget {
    /// The target an id names; `None` for an id of no known shape.
    pub fn parse(id: &str) -> Option<OrgTarget> {
        if iam_eval::principal::is_account_id(id) {
            Some(OrgTarget::Account(id.to_owned()))
        } else if id.starts_with("ou-") {
            Some(OrgTarget::Ou(id.to_owned()))
        } else if id.starts_with("r-") {
            Some(OrgTarget::Root(id.to_owned()))
        } else {
            None
        }
    }
}

/// What an SCP or RCP change reaches, as far as its record says: the targets it names, and
/// the policies whose targets are still to be listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgReach {
    /// The roots, OUs and accounts the policy was attached to or detached from.
    pub targets: BTreeSet<OrgTarget>,
    /// Policies changed wherever they are attached (`UpdatePolicy`): their targets are
    /// listed (`ListTargetsForPolicy`) and added to `targets`.
    pub policies: BTreeSet<String>,
    /// A target id of no known shape: nothing can be narrowed, every stored account is
    /// reached.
    pub unknown_target: bool,
}

impl OrgReach {
    /// Whether the reach needs no organization read: it names only accounts (or nothing).
    pub fn is_accounts_only(&self) -> bool {
        self.policies.is_empty()
            && !self.unknown_target
            && self
                .targets
                .iter()
                .all(|t| matches!(t, OrgTarget::Account(_)))
    }

    /// Whether the reach includes the root, so every account of the organization.
    pub fn has_root(&self) -> bool {
        self.unknown_target || self.targets.iter().any(|t| matches!(t, OrgTarget::Root(_)))
    }

    /// The OUs whose accounts (recursively, through nested OUs) are reached.
    pub fn ous(&self) -> impl Iterator<Item = &str> {
        self.targets.iter().filter_map(|t| match t {
            OrgTarget::Ou(id) => Some(id.as_str()),
            _ => None,
        })
    }
}

/// What an SCP or RCP change reaches before the organization is read; `None` for any other
/// change.
///
/// * `AttachPolicy` / `DetachPolicy`: the `targetId` (an account, an OU, the root);
/// * `UpdatePolicy`: every target the policy is attached to, still to be listed;
/// * `DeletePolicy`: nothing. AWS deletes only a policy detached from every root, OU and
///   account ([DeletePolicy](https://docs.aws.amazon.com/organizations/latest/APIReference/API_DeletePolicy.html)),
///   so the detachments (each its own `DetachPolicy` record) already changed what it reached.
pub fn org_reach(change: &ChangeEvent) -> Option<OrgReach> {
    let mut out = OrgReach::default();
    let mut any = false;
    for t in &change.touches {
        let Touched::Organization { policy_id, target } = t else {
            continue;
        };
        any = true;
        match (change.event_name.as_str(), target.as_deref()) {
            ("DeletePolicy", _) => {}
            (_, Some(id)) => match OrgTarget::parse(id) {
                Some(t) => {
                    out.targets.insert(t);
                }
                None => out.unknown_target = true,
            },
            (_, None) => {
                out.policies.insert(policy_id.clone());
            }
        }
    }
    any.then_some(out)
}

/// The stored accounts an organization change reaches.
///
/// `read` is what the organization said, when it was read: the targets of the policies
/// `reach` lists (`ListTargetsForPolicy`) and the accounts under the OUs among all targets
/// (`ListChildren`, recursively). Without it (no organization reader, or a refused read) an
/// OU, a policy's targets, or an unknown target reaches every stored account, as does the
/// root (above every account) in any case; accounts named outright are reached either way.
/// Only accounts with stored state are returned: the others have no verdict to compare with.
pub fn reached_accounts(
    reach: &OrgReach,
    read: Option<&OrgRead>,
    stored: &BTreeSet<String>,
) -> BTreeSet<String> {
    let listed_root = read.is_some_and(|r| {
        r.policy_targets
            .iter()
            .any(|t| matches!(t, OrgTarget::Root(_)))
    });
    let needs_read = !reach.is_accounts_only();
    if reach.has_root() || listed_root || (needs_read && read.is_none()) {
        return stored.clone();
    }
    let named = reach
        .targets
        .iter()
        .chain(read.iter().flat_map(|r| r.policy_targets.iter()))
        .filter_map(|t| match t {
            OrgTarget::Account(id) => Some(id),
            _ => None,
        });
    let under = read.iter().flat_map(|r| r.accounts_under.iter());
    named
        .chain(under)
        .filter(|a| stored.contains(*a))
        .cloned()
        .collect()
}

/// What the organization said of an [`OrgReach`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgRead {
    /// The targets of the policies `OrgReach::policies` (`ListTargetsForPolicy`).
    pub policy_targets: BTreeSet<OrgTarget>,
    /// The accounts under every OU among the targets, through nested OUs.
    pub accounts_under: BTreeSet<String>,
}

#[cfg(test)]
mod org_tests {
    use std::collections::BTreeSet;

    use super::{org_reach, reached_accounts, OrgReach, OrgRead, OrgTarget};
    use crate::impact::{ChangeEvent, Touched};

    const B: &str = "444455556666";
    const C: &str = "777788889999";
    const D: &str = "123456789012";

    fn change(event_name: &str, target: Option<&str>) -> ChangeEvent {
        ChangeEvent {
            event_id: None,
            event_source: "organizations.amazonaws.com".into(),
            event_name: event_name.into(),
            account: Some("555566667777".into()),
            region: Some("us-east-1".into()),
            touches: vec![Touched::Organization {
                policy_id: "p-examplepolicy".into(),
                target: target.map(str::to_owned),
            }],
            actor: None,
            event_time: None,
        }
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    fn reach(event_name: &str, target: Option<&str>) -> OrgReach {
        org_reach(&change(event_name, target)).expect("an organization change")
    }

    #[test]
    fn target_ids_are_told_apart_by_shape() {
        assert_eq!(OrgTarget::parse(B), Some(OrgTarget::Account(B.into())));
        assert_eq!(
            OrgTarget::parse("ou-ab12-cd34ef56"),
            Some(OrgTarget::Ou("ou-ab12-cd34ef56".into()))
        );
        assert_eq!(
            OrgTarget::parse("r-ab12"),
            Some(OrgTarget::Root("r-ab12".into()))
        );
        assert_eq!(OrgTarget::parse("12345"), None);
    }

    #[test]
    fn an_account_target_reaches_that_account_without_reading_the_organization() {
        let r = reach("AttachPolicy", Some(B));
        assert!(r.is_accounts_only());
        let stored = set(&[B, C]);
        assert_eq!(reached_accounts(&r, None, &stored), set(&[B]));
        // An account with no stored state has nothing to compare with.
        assert!(reached_accounts(&reach("DetachPolicy", Some(D)), None, &stored).is_empty());
    }

    #[test]
    fn an_ou_target_reaches_the_stored_accounts_under_it_when_the_organization_is_read() {
        let r = reach("AttachPolicy", Some("ou-ab12-cd34ef56"));
        assert!(!r.is_accounts_only() && !r.has_root());
        assert_eq!(r.ous().collect::<Vec<_>>(), ["ou-ab12-cd34ef56"]);
        let read = OrgRead {
            policy_targets: BTreeSet::new(),
            // D is under the OU but has no stored state.
            accounts_under: set(&[B, D]),
        };
        let stored = set(&[B, C]);
        assert_eq!(reached_accounts(&r, Some(&read), &stored), set(&[B]));
        // Without the organization's answer, every stored account.
        assert_eq!(reached_accounts(&r, None, &stored), stored);
    }

    #[test]
    fn the_root_reaches_every_stored_account_with_or_without_a_read() {
        let r = reach("DetachPolicy", Some("r-ab12"));
        assert!(r.has_root());
        let stored = set(&[B, C]);
        assert_eq!(
            reached_accounts(&r, Some(&OrgRead::default()), &stored),
            stored
        );
        assert_eq!(reached_accounts(&r, None, &stored), stored);
        // An id of no known shape cannot be narrowed either.
        let odd = reach("AttachPolicy", Some("something-else"));
        assert!(odd.unknown_target);
        assert_eq!(
            reached_accounts(&odd, Some(&OrgRead::default()), &stored),
            stored
        );
    }

    #[test]
    fn an_updated_policy_reaches_the_accounts_of_its_listed_targets() {
        let r = reach("UpdatePolicy", None);
        assert_eq!(r.policies, set(&["p-examplepolicy"]));
        assert!(r.targets.is_empty() && !r.is_accounts_only());
        let stored = set(&[B, C, D]);
        // Attached to C directly and to an OU holding B.
        let read = OrgRead {
            policy_targets: [
                OrgTarget::Account(C.into()),
                OrgTarget::Ou("ou-ab12-cd34ef56".into()),
            ]
            .into(),
            accounts_under: set(&[B]),
        };
        assert_eq!(reached_accounts(&r, Some(&read), &stored), set(&[B, C]));
        // Attached to the root: everything.
        let at_root = OrgRead {
            policy_targets: [OrgTarget::Root("r-ab12".into())].into(),
            accounts_under: BTreeSet::new(),
        };
        assert_eq!(reached_accounts(&r, Some(&at_root), &stored), stored);
        // Attached nowhere: nothing.
        assert!(reached_accounts(&r, Some(&OrgRead::default()), &stored).is_empty());
        // The organization unread: every stored account.
        assert_eq!(reached_accounts(&r, None, &stored), stored);
    }

    #[test]
    fn a_deleted_policy_reaches_nothing_since_aws_deletes_only_detached_ones() {
        let r = reach("DeletePolicy", None);
        assert_eq!(r, OrgReach::default());
        assert!(r.is_accounts_only());
        assert!(reached_accounts(&r, None, &set(&[B, C])).is_empty());
    }

    #[test]
    fn other_changes_have_no_organization_reach() {
        let mut c = change("PutBucketPolicy", None);
        c.touches = vec![Touched::Bucket { name: "b".into() }];
        assert_eq!(org_reach(&c), None);
    }
}

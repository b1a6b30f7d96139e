//! The part of a snapshot one read path reads, and the diagnosis of a path on it: the one
//! way `sweep` and `impact` diagnose a path at organization scale (docs/scaling.md, "How it
//! stays linear").
//!
//! A path of one principal on one bucket reads the caller's account (only the caller), the
//! bucket's account and the keys its objects use ([`slice`]); diagnosing it on that slice
//! instead of the whole snapshot keeps the cost of a path flat as the organization grows, and
//! verifying its fixes clones the slice, not the organization. Paths of one principal on one
//! bucket share a slice and a [`FixCache`], so each distinct set of fixes is applied once.

use std::collections::BTreeMap;

use crate::diagnose::{diagnose_cached, Diagnosis, FixCache};
use crate::event::{adhoc_request, EventError};
use crate::refs::BucketRef;
use crate::request::Request;
use crate::snapshot::{Account, Iam, Role, Snapshot, User};

use super::paths::{Index, ACTION};

/// The `GetObject` of `principal` on `key` of `bucket`: the request of a path.
pub(crate) fn request(
    principal: &str,
    bucket: &BucketRef,
    key: &str,
) -> Result<Request, EventError> {
    adhoc_request(principal, ACTION, &bucket.object(key).arn())
}

/// The request of a path ([`request`]) diagnosed on `slice` (made by [`slice`] for the
/// principal and the bucket), with its fixes verified against `cache` (which must only ever
/// see `slice`); an error when the principal and object make no request.
pub(crate) fn diagnose_path(
    slice: &Snapshot,
    principal: &str,
    bucket: &BucketRef,
    key: &str,
    cache: &mut FixCache,
) -> Result<Diagnosis, EventError> {
    Ok(diagnose_cached(
        slice,
        &request(principal, bucket, key)?,
        cache,
    ))
}

/// The part of the snapshot a diagnosis of `principal` reading `bucket` (owned by `owner`)
/// reads: the caller's account with only the caller (its role or user, the user's groups and
/// the managed policies they attach), the bucket and every key in its owner's account, the
/// keys of other accounts its default encryption and its listed objects name, the account
/// whose canonical id owns a listed object, each account's organization, Block Public Access
/// and canonical id; and the reads a collector could not make in those accounts or in no
/// account in particular (a gap in one account says nothing about a path between two
/// others). The cost of a path then does not grow with the organization, and cloning it for
/// fixes is cheap.
pub(crate) fn slice(
    index: &Index<'_>,
    principal: &str,
    owner: Option<&str>,
    bucket: &str,
) -> Snapshot {
    let snap = index.snap;
    let mut out = Snapshot::default();
    let shell = |a: &Account| Account {
        organization: a.organization.clone(),
        iam: a.iam.as_ref().map(|_| Iam::default()),
        s3: BTreeMap::new(),
        kms: BTreeMap::new(),
        canonical_id: a.canonical_id.clone(),
        public_access_block: a.public_access_block,
        sessions: BTreeMap::new(),
        // Small, and read by the coverage table even when no request names an endpoint.
        vpc_endpoints: a.vpc_endpoints.clone(),
        // The sweep follows direct bucket paths; access points are not on them.
        access_points: BTreeMap::new(),
    };
    if let Some(caller) = crate::refs::Arn::parse(principal).map(|a| a.account.to_owned()) {
        if let Some(a) = snap.account(&caller) {
            let mut slim = shell(a);
            slim.sessions = a.sessions.clone();
            slim.iam = a.iam.as_ref().map(|iam| only_caller(iam, principal));
            out.accounts.insert(caller, slim);
        }
    }
    if let Some((owner, account)) = owner.and_then(|o| snap.accounts.get_key_value(o)) {
        if let Some((name, bucket)) = account.s3.get_key_value(bucket) {
            for reference in bucket.key_references() {
                if let Some((key_owner, key)) = snap.key(reference, &bucket.region, owner) {
                    if let Some(a) = snap.account(key_owner) {
                        out.accounts
                            .entry(key_owner.to_owned())
                            .or_insert_with(|| shell(a))
                            .kms
                            .insert(key.metadata.arn.clone(), key.clone());
                    }
                }
            }
            for id in bucket
                .objects
                .values()
                .filter_map(|o| o.owner_id.as_deref())
            {
                if let Some((writer, a)) = index
                    .account_by_canonical_id(id)
                    .and_then(|w| snap.accounts.get_key_value(w))
                {
                    out.accounts
                        .entry(writer.clone())
                        .or_insert_with(|| shell(a));
                }
            }
            let at_owner = out
                .accounts
                .entry(owner.clone())
                .or_insert_with(|| shell(account));
            at_owner.s3.insert(name.clone(), bucket.clone());
            // Every key of the owner: a fix may name one (re-encrypting objects of an AWS
            // managed key under a customer managed key the owner already has).
            at_owner.kms.extend(
                account
                    .kms
                    .iter()
                    .map(|(arn, key)| (arn.clone(), key.clone())),
            );
        }
    }
    out.collection_errors = snap
        .collection_errors
        .iter()
        .filter(|e| match &e.account {
            Some(a) => out.accounts.contains_key(a),
            None => true,
        })
        .cloned()
        .collect();
    out
}

/// An account's IAM with only the role or user `principal` names, the groups of a user, and
/// the managed policies they attach or take as a boundary. The role or user keeps its
/// position in its list (the roles or users before it are empty stand-ins that match no
/// name or ARN), because a fix's patch names it by position (`RoleDetailList/7`).
fn only_caller(iam: &Iam, principal: &str) -> Iam {
    let mut out = Iam::default();
    let mut managed: Vec<&String> = Vec::new();
    let role = iam.role_for(principal).and_then(|r| {
        let at = iam.roles.iter().position(|x| std::ptr::eq(x, r))?;
        Some((at, r))
    });
    let user = iam.user_for(principal).and_then(|u| {
        let at = iam.users.iter().position(|x| std::ptr::eq(x, u))?;
        Some((at, u))
    });
    if let Some((at, r)) = role {
        managed.extend(&r.attached_policies);
        managed.extend(&r.permissions_boundary);
        out.roles = (0..at)
            .map(|_| Role {
                path: String::new(),
                name: String::new(),
                id: None,
                arn: String::new(),
                inline_policies: Vec::new(),
                attached_policies: Vec::new(),
                permissions_boundary: None,
                tags: BTreeMap::new(),
                trust_policy: None,
            })
            .collect();
        out.roles.push(r.clone());
    } else if let Some((at, u)) = user {
        managed.extend(&u.attached_policies);
        managed.extend(&u.permissions_boundary);
        for g in iam.groups.iter().filter(|g| u.groups.contains(&g.name)) {
            managed.extend(&g.attached_policies);
            out.groups.push(g.clone());
        }
        out.users = (0..at)
            .map(|_| User {
                path: String::new(),
                name: String::new(),
                id: None,
                arn: String::new(),
                inline_policies: Vec::new(),
                attached_policies: Vec::new(),
                permissions_boundary: None,
                tags: BTreeMap::new(),
                groups: Vec::new(),
            })
            .collect();
        out.users.push(u.clone());
    }
    for arn in managed {
        if let Some(m) = iam.managed_policies.get(arn) {
            out.managed_policies.insert(arn.clone(), m.clone());
        }
    }
    out
}

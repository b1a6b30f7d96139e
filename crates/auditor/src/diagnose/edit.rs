//! The changes fixes make, typed: applied to a cloned [`Snapshot`] to verify a fix, and
//! rendered as RFC 6902 patches of the snapshot document for the report (so a person or a
//! pipeline can apply exactly what was verified to the snapshot file).

use std::fmt;

use serde_json::{json, Value};

use iam_eval::PolicyKind;

use crate::json_patch::pointer;
use crate::snapshot::{
    write, AclGrant, DefaultEncryption, KeyGrant, KeyState, ManagedPolicy, NamedPolicy,
    ObjectOwnership, PublicAccessBlock, Snapshot,
};

/// Who holds an inline IAM policy or attached managed policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InlineHolder {
    /// A role (`RoleDetailList[].RolePolicyList`).
    Role,
    /// A user (`UserDetailList[].UserPolicyList`).
    User,
    /// A group (`GroupDetailList[].GroupPolicyList`), whose policies apply to every member.
    Group,
}

/// The level of an account's SCP or RCP chain an organization policy is attached at. The
/// snapshot lists the levels root first and the account last (docs/snapshot-format.md); the
/// OUs between them are not named, so an attachment to an OU cannot be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgLevel {
    /// The organization root: the first level of every member account.
    Root,
    /// The account itself: the last level (the chain must list at least two levels).
    Account,
}

/// One change to the snapshot.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// Replace the document of the policy found at `pointer` (a bucket, key, IAM, session,
    /// SCP or RCP policy already in the snapshot).
    ReplacePolicy {
        /// The policy's place in the snapshot document.
        pointer: String,
        /// The new document.
        document: Value,
    },
    /// Give a bucket that has no policy one.
    PutBucketPolicy {
        /// The bucket owner.
        account: String,
        /// The bucket.
        bucket: String,
        /// The policy.
        document: Value,
    },
    /// Add an inline policy to a role or user.
    AddInlinePolicy {
        /// The account of the role or user.
        account: String,
        /// Role or user.
        holder: InlineHolder,
        /// The role or user name.
        holder_name: String,
        /// `PolicyName` of the new policy (never one the holder already has).
        policy_name: String,
        /// The policy.
        document: Value,
    },
    /// Enable a key (`Disabled` or `PendingDeletion` after cancellation).
    EnableKey {
        /// The key owner.
        account: String,
        /// The key ARN.
        key_arn: String,
    },
    /// Object Ownership `BucketOwnerEnforced`.
    EnforceBucketOwner {
        /// The bucket owner.
        account: String,
        /// The bucket.
        bucket: String,
    },
    /// Remove a bucket's policy (S3 `DeleteBucketPolicy`).
    DeleteBucketPolicy {
        /// The bucket owner.
        account: String,
        /// The bucket.
        bucket: String,
    },
    /// Set a key's policy, whether or not the snapshot has the old one (KMS `PutKeyPolicy`).
    PutKeyPolicy {
        /// The key owner.
        account: String,
        /// The key ARN.
        key_arn: String,
        /// The policy.
        document: Value,
    },
    /// Put a key in another state (KMS `DisableKey`: `Disabled`; `ScheduleKeyDeletion`:
    /// `PendingDeletion`; `CancelKeyDeletion`: `Disabled`).
    SetKeyState {
        /// The key owner.
        account: String,
        /// The key ARN.
        key_arn: String,
        /// The new state.
        state: KeyState,
    },
    /// Add a grant to a key (KMS `CreateGrant`).
    AddGrant {
        /// The key owner.
        account: String,
        /// The key ARN.
        key_arn: String,
        /// The grant as a `ListGrants` entry.
        grant: Value,
    },
    /// Remove a grant from a key (KMS `RevokeGrant`, `RetireGrant`).
    RemoveGrant {
        /// The key owner.
        account: String,
        /// The key ARN.
        key_arn: String,
        /// `GrantId` of the grant.
        grant_id: String,
    },
    /// Remove an inline policy from a role or user (IAM `DeleteRolePolicy`,
    /// `DeleteUserPolicy`).
    RemoveInlinePolicy {
        /// The account of the role or user.
        account: String,
        /// Role or user.
        holder: InlineHolder,
        /// The role or user name.
        holder_name: String,
        /// `PolicyName` of the policy.
        policy_name: String,
    },
    /// Attach a managed policy the snapshot has the document of to a role or user (IAM
    /// `AttachRolePolicy`, `AttachUserPolicy`).
    AttachManagedPolicy {
        /// The account of the role or user.
        account: String,
        /// Role or user.
        holder: InlineHolder,
        /// The role or user name.
        holder_name: String,
        /// The managed policy ARN.
        policy_arn: String,
    },
    /// Detach a managed policy from a role or user (IAM `DetachRolePolicy`,
    /// `DetachUserPolicy`).
    DetachManagedPolicy {
        /// The account of the role or user.
        account: String,
        /// Role or user.
        holder: InlineHolder,
        /// The role or user name.
        holder_name: String,
        /// The managed policy ARN.
        policy_arn: String,
    },
    /// Set the policy of a VPC endpoint (EC2 `ModifyVpcEndpoint --policy-document`).
    SetVpcEndpointPolicy {
        /// The account that owns the endpoint.
        account: String,
        /// `vpce-…`.
        vpc_endpoint_id: String,
        /// Where the endpoint's `PolicyDocument` sits in the snapshot document (the endpoint
        /// is an entry of a list, so only the reader knows its index).
        pointer: String,
        /// The new policy.
        document: Value,
    },
    /// Set an access point's policy, whether or not it has one (S3 Control
    /// `PutAccessPointPolicy`).
    PutAccessPointPolicy {
        /// The access point's owner.
        account: String,
        /// The access point name.
        name: String,
        /// The policy.
        document: Value,
    },
    /// Give an access point the `Internet` network origin. An access point's network origin
    /// cannot be changed, so the command deletes it and creates it again under the same name
    /// for the same bucket (S3 Control `DeleteAccessPoint` + `CreateAccessPoint`); its policy is
    /// put back by the same command.
    RecreateAccessPointInternet {
        /// The access point's owner.
        account: String,
        /// The access point name.
        name: String,
    },
    /// Replace the content of an SCP or RCP wherever it is attached (Organizations
    /// `UpdatePolicy`). Policies are matched by the `PolicySummary.Id` of the
    /// `describe-policy` output the snapshot holds them as.
    UpdateOrgPolicy {
        /// `p-…`.
        policy_id: String,
        /// The new content.
        document: Value,
    },
    /// Set a bucket's default encryption (S3 `PutBucketEncryption`; `DeleteBucketEncryption`
    /// leaves SSE-S3, the base level every bucket has).
    SetBucketEncryption {
        /// The bucket owner.
        account: String,
        /// The bucket.
        bucket: String,
        /// The new default encryption.
        encryption: DefaultEncryption,
    },
    /// Set or remove a bucket's Object Ownership (S3 `PutBucketOwnershipControls`,
    /// `DeleteBucketOwnershipControls`).
    SetObjectOwnership {
        /// The bucket owner.
        account: String,
        /// The bucket.
        bucket: String,
        /// The new setting; `None` removes it.
        ownership: Option<ObjectOwnership>,
    },
    /// Set or remove a bucket's Block Public Access configuration (S3 `PutPublicAccessBlock`,
    /// `DeletePublicAccessBlock`).
    SetBucketPublicAccessBlock {
        /// The bucket owner.
        account: String,
        /// The bucket.
        bucket: String,
        /// The new configuration; `None` removes it.
        config: Option<PublicAccessBlock>,
    },
    /// Replace a bucket's ACL (S3 `PutBucketAcl`).
    SetBucketAcl {
        /// The bucket owner.
        account: String,
        /// The bucket.
        bucket: String,
        /// `Owner.ID` of the new ACL (kept from the old one when the request gives none).
        owner_id: Option<String>,
        /// The new grants.
        grants: Vec<AclGrant>,
    },
    /// Point an alias at a key, or remove it (KMS `CreateAlias`, `UpdateAlias`,
    /// `DeleteAlias`). An alias names one key of its account and Region.
    SetAlias {
        /// The account of the alias.
        account: String,
        /// Its Region.
        region: String,
        /// `alias/…`.
        alias: String,
        /// The key ARN it now names; `None` deletes it.
        key_arn: Option<String>,
    },
    /// Add a user to a group or remove it (IAM `AddUserToGroup`, `RemoveUserFromGroup`).
    SetGroupMembership {
        /// The account of the user and group.
        account: String,
        /// The user name.
        user: String,
        /// The group name.
        group: String,
        /// Whether the user is a member afterwards.
        member: bool,
    },
    /// Set or remove the permissions boundary of a role or user (IAM
    /// `Put/DeleteRolePermissionsBoundary`, `Put/DeleteUserPermissionsBoundary`).
    SetPermissionsBoundary {
        /// The account of the role or user.
        account: String,
        /// Role or user.
        holder: InlineHolder,
        /// The role or user name.
        holder_name: String,
        /// The managed policy used as the boundary (its document must be in the snapshot);
        /// `None` removes the boundary.
        policy_arn: Option<String>,
    },
    /// Make `document` the default version of a customer managed policy (IAM
    /// `CreatePolicyVersion` with `setAsDefault`).
    SetDefaultPolicyVersion {
        /// The account of the policy.
        account: String,
        /// The policy ARN.
        policy_arn: String,
        /// The version id, when known (`v2`).
        version_id: Option<String>,
        /// The document of that version.
        document: Value,
    },
    /// Delete a role or user with everything attached to it (IAM `DeleteRole`, `DeleteUser`).
    DeleteIdentity {
        /// The account of the role or user.
        account: String,
        /// Role or user.
        holder: InlineHolder,
        /// The role or user name.
        name: String,
    },
    /// Attach an SCP or RCP the snapshot holds (listed anywhere as `describe-policy` output
    /// with that id) at a level of an account's chain (Organizations `AttachPolicy`).
    AttachOrgPolicy {
        /// The account whose chain changes.
        account: String,
        /// The level.
        level: OrgLevel,
        /// `p-…`.
        policy_id: String,
    },
    /// Detach an SCP or RCP from a level of an account's chain (Organizations `DetachPolicy`).
    DetachOrgPolicy {
        /// The account whose chain changes.
        account: String,
        /// The level.
        level: OrgLevel,
        /// `p-…`.
        policy_id: String,
    },
    /// Remove an SCP or RCP from every level it is listed at (Organizations `DeletePolicy`,
    /// which AWS only accepts once the policy is detached everywhere).
    DeleteOrgPolicy {
        /// `p-…`.
        policy_id: String,
    },
}

/// Why an edit could not be applied to the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditError(String);

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The element rules of the policy at `pointer`: resource policies (bucket, key, RCP) carry a
/// `Principal`; the others do not.
fn kind_at(pointer: &str) -> PolicyKind {
    let parts: Vec<&str> = pointer.split('/').collect();
    match (parts.get(3).copied(), parts.get(4).copied()) {
        (Some("s3" | "kms" | "access_points"), _) | (Some("organization"), Some("rcp")) => {
            PolicyKind::Resource
        }
        _ => PolicyKind::Identity,
    }
}

/// Every policy of the snapshot, mutably.
fn policies_mut(snap: &mut Snapshot) -> impl Iterator<Item = &mut NamedPolicy> {
    snap.accounts.values_mut().flat_map(|a| {
        let buckets = a.s3.values_mut().filter_map(|b| b.policy.as_mut()).chain(
            a.access_points
                .values_mut()
                .filter_map(|ap| ap.policy.as_mut()),
        );
        let keys = a.kms.values_mut().filter_map(|k| k.policy.as_mut());
        let sessions = a.sessions.values_mut().filter_map(|s| s.policy.as_mut());
        let org = a
            .organization
            .iter_mut()
            .flat_map(|o| o.scp.iter_mut().chain(o.rcp.iter_mut()).flatten());
        let iam = a.iam.iter_mut().flat_map(|i| {
            let roles = i
                .roles
                .iter_mut()
                .flat_map(|r| r.inline_policies.iter_mut());
            let users = i
                .users
                .iter_mut()
                .flat_map(|u| u.inline_policies.iter_mut());
            let groups = i
                .groups
                .iter_mut()
                .flat_map(|g| g.inline_policies.iter_mut());
            let managed = i
                .managed_policies
                .values_mut()
                .filter_map(|m| m.document.as_mut());
            roles.chain(users).chain(groups).chain(managed)
        });
        buckets.chain(keys).chain(sessions).chain(org).chain(iam)
    })
}

/// The bucket an edit changes.
fn bucket_mut<'s>(
    snap: &'s mut Snapshot,
    account: &str,
    bucket: &str,
) -> Result<&'s mut crate::snapshot::Bucket, EditError> {
    snap.accounts
        .get_mut(account)
        .and_then(|a| a.s3.get_mut(bucket))
        .ok_or_else(|| {
            EditError(format!(
                "bucket `{bucket}` of account {account} is not in the snapshot"
            ))
        })
}

/// The key an edit changes.
fn key_mut<'s>(
    snap: &'s mut Snapshot,
    account: &str,
    key_arn: &str,
) -> Result<&'s mut crate::snapshot::Key, EditError> {
    snap.accounts
        .get_mut(account)
        .and_then(|a| a.kms.get_mut(key_arn))
        .ok_or_else(|| EditError(format!("key `{key_arn}` is not in the snapshot")))
}

/// The IAM data of an account, mutably.
fn iam_mut<'s>(
    snap: &'s mut Snapshot,
    account: &str,
) -> Result<&'s mut crate::snapshot::Iam, EditError> {
    snap.accounts
        .get_mut(account)
        .and_then(|a| a.iam.as_mut())
        .ok_or_else(|| {
            EditError(format!(
                "the IAM data of account {account} is not in the snapshot"
            ))
        })
}

/// Refuses a managed policy whose document the snapshot lacks: attaching it, or making it a
/// boundary, would change permissions in a way the snapshot cannot show.
fn require_managed_document(
    snap: &Snapshot,
    account: &str,
    policy_arn: &str,
) -> Result<(), EditError> {
    let has_document = snap
        .account(account)
        .and_then(|a| a.iam.as_ref())
        .and_then(|i| i.managed_policies.get(policy_arn))
        .is_some_and(|m| m.document.is_some());
    if has_document {
        Ok(())
    } else {
        Err(EditError(format!(
            "the document of managed policy `{policy_arn}` is not in the snapshot (list it under `iam.Policies` of account {account} with its default version)"
        )))
    }
}

/// An SCP or RCP with policy id `id` listed anywhere in the snapshot, and whether it is an RCP.
fn org_policy_by_id(snap: &Snapshot, id: &str) -> Option<(NamedPolicy, bool)> {
    snap.accounts
        .values()
        .filter_map(|a| a.organization.as_ref())
        .find_map(|o| {
            let scp = o.scp.iter().flatten().map(|p| (p, false));
            let rcp = o.rcp.iter().flatten().map(|p| (p, true));
            scp.chain(rcp)
                .find(|(p, _)| org_policy_id(&p.source) == Some(id))
                .map(|(p, rcp)| (p.clone(), rcp))
        })
}

/// The SCP (or RCP) levels of an account, mutably.
fn org_levels_mut<'s>(
    snap: &'s mut Snapshot,
    account: &str,
    rcp: bool,
) -> Result<&'s mut Vec<Vec<NamedPolicy>>, EditError> {
    let org = snap
        .accounts
        .get_mut(account)
        .and_then(|a| a.organization.as_mut())
        .ok_or_else(|| {
            EditError(format!(
                "the organization data of account {account} is not in the snapshot"
            ))
        })?;
    Ok(if rcp { &mut org.rcp } else { &mut org.scp })
}

/// The policies of one level of a chain, mutably.
fn level_mut<'s>(
    levels: &'s mut [Vec<NamedPolicy>],
    level: OrgLevel,
    account: &str,
) -> Result<(usize, &'s mut Vec<NamedPolicy>), EditError> {
    let count = levels.len();
    let at = match level {
        OrgLevel::Root => levels.first_mut().map(|l| (0, l)),
        // With one level, root and account are the same list and the account's own
        // attachments cannot be told apart.
        OrgLevel::Account if count >= 2 => levels.last_mut().map(|l| (count - 1, l)),
        OrgLevel::Account => None,
    };
    at.ok_or_else(|| {
        EditError(format!(
            "the snapshot lists {count} level(s) of organization policies above account {account}, so it cannot say which are attached to {}",
            match level {
                OrgLevel::Root => "the root",
                OrgLevel::Account => "the account itself (root first, account last: at least two levels)",
            }
        ))
    })
}

/// A bucket field as the one writer writes it after an edit: added (replacing the old
/// value), or removed when the edit took it away.
fn bucket_field_patch(
    before: &Snapshot,
    after: &Snapshot,
    account: &str,
    bucket: &str,
    field: &str,
) -> Vec<Value> {
    let get = |s: &Snapshot| {
        s.account(account)
            .and_then(|a| a.s3.get(bucket))
            .map(write::bucket)
            .and_then(|b| b.get(field).cloned())
    };
    let path = bucket_pointer(account, bucket, field);
    match (get(before), get(after)) {
        (_, Some(v)) => vec![json!({"op": "add", "path": path, "value": v})],
        (Some(_), None) => vec![json!({"op": "remove", "path": path})],
        (None, None) => Vec::new(),
    }
}

/// A role, user or group entry as the one writer writes it after an edit: replaced at its
/// place in its list, or removed when the edit deleted it.
fn identity_patch(
    before: &Snapshot,
    after: &Snapshot,
    account: &str,
    holder: InlineHolder,
    name: &str,
) -> Vec<Value> {
    let Some((index, _, _)) = holder_at(before, account, holder, name) else {
        return Vec::new();
    };
    let (list, _) = holder.keys();
    let path = pointer(["accounts", account, "iam", list, &index.to_string()]);
    let iam = after.account(account).and_then(|a| a.iam.as_ref());
    let written = iam.and_then(|i| match holder {
        InlineHolder::Role => i.roles.iter().find(|r| r.name == name).map(write::role),
        InlineHolder::User => i.users.iter().find(|u| u.name == name).map(write::user),
        InlineHolder::Group => i.groups.iter().find(|g| g.name == name).map(write::group),
    });
    match written {
        Some(v) => vec![json!({"op": "replace", "path": path, "value": v})],
        None => vec![json!({"op": "remove", "path": path})],
    }
}

/// `/accounts/<account>/s3/<bucket>/<field>`.
pub(super) fn bucket_pointer(account: &str, bucket: &str, field: &str) -> String {
    pointer(["accounts", account, "s3", bucket, field])
}

/// `/accounts/<account>/access_points/<name>/<field>`.
pub(super) fn access_point_pointer(account: &str, name: &str, field: &str) -> String {
    pointer(["accounts", account, "access_points", name, field])
}

/// The access point an edit changes.
fn access_point_mut<'s>(
    snap: &'s mut Snapshot,
    account: &str,
    name: &str,
) -> Result<&'s mut crate::snapshot::AccessPoint, EditError> {
    snap.accounts
        .get_mut(account)
        .and_then(|a| a.access_points.get_mut(name))
        .ok_or_else(|| {
            EditError(format!(
                "access point `{name}` of account {account} is not in the snapshot"
            ))
        })
}

/// `/accounts/<account>/kms/<key ARN>/<field>`.
pub(super) fn key_pointer(account: &str, arn: &str, field: &str) -> String {
    pointer(["accounts", account, "kms", arn, field])
}

impl InlineHolder {
    /// `role` or `user`, as IAM names the holder.
    fn noun(self) -> &'static str {
        match self {
            InlineHolder::Role => "role",
            InlineHolder::User => "user",
            InlineHolder::Group => "group",
        }
    }

    /// The list of `get-account-authorization-details` the holder is in, and the key of its
    /// inline policies.
    fn keys(self) -> (&'static str, &'static str) {
        match self {
            InlineHolder::Role => ("RoleDetailList", "RolePolicyList"),
            InlineHolder::User => ("UserDetailList", "UserPolicyList"),
            InlineHolder::Group => ("GroupDetailList", "GroupPolicyList"),
        }
    }
}

/// The inline and attached policies of a role or user, mutably.
fn holder_mut<'a>(
    snap: &'a mut Snapshot,
    account: &str,
    holder: InlineHolder,
    name: &str,
) -> Result<(&'a mut Vec<NamedPolicy>, &'a mut Vec<String>), EditError> {
    let iam = snap
        .accounts
        .get_mut(account)
        .and_then(|a| a.iam.as_mut())
        .ok_or_else(|| {
            EditError(format!(
                "the IAM data of account {account} is not in the snapshot"
            ))
        })?;
    let found = match holder {
        InlineHolder::Role => iam
            .roles
            .iter_mut()
            .find(|r| r.name == name)
            .map(|r| (&mut r.inline_policies, &mut r.attached_policies)),
        InlineHolder::User => iam
            .users
            .iter_mut()
            .find(|u| u.name == name)
            .map(|u| (&mut u.inline_policies, &mut u.attached_policies)),
        InlineHolder::Group => iam
            .groups
            .iter_mut()
            .find(|g| g.name == name)
            .map(|g| (&mut g.inline_policies, &mut g.attached_policies)),
    };
    found.ok_or_else(|| {
        EditError(format!(
            "{} `{name}` of account {account} is not in the snapshot",
            holder.noun()
        ))
    })
}

/// The position of a role or user in its list, and its inline policy names and attached
/// policy ARNs, for rendering patches.
fn holder_at<'a>(
    snap: &'a Snapshot,
    account: &str,
    holder: InlineHolder,
    name: &str,
) -> Option<(usize, Vec<&'a str>, &'a [String])> {
    let iam = snap.account(account)?.iam.as_ref()?;
    match holder {
        InlineHolder::Role => iam
            .roles
            .iter()
            .enumerate()
            .find(|(_, r)| r.name == name)
            .map(|(i, r)| {
                let names = r
                    .inline_policies
                    .iter()
                    .map(|p| p.policy_name.as_deref().unwrap_or_default())
                    .collect();
                (i, names, r.attached_policies.as_slice())
            }),
        InlineHolder::User => iam
            .users
            .iter()
            .enumerate()
            .find(|(_, u)| u.name == name)
            .map(|(i, u)| {
                let names = u
                    .inline_policies
                    .iter()
                    .map(|p| p.policy_name.as_deref().unwrap_or_default())
                    .collect();
                (i, names, u.attached_policies.as_slice())
            }),
        InlineHolder::Group => iam
            .groups
            .iter()
            .enumerate()
            .find(|(_, g)| g.name == name)
            .map(|(i, g)| {
                let names = g
                    .inline_policies
                    .iter()
                    .map(|p| p.policy_name.as_deref().unwrap_or_default())
                    .collect();
                (i, names, g.attached_policies.as_slice())
            }),
    }
}

/// The policy id (`PolicySummary.Id`) of an SCP or RCP held as `describe-policy` output.
pub(crate) fn org_policy_id(source: &Value) -> Option<&str> {
    source
        .get("Policy")
        .unwrap_or(source)
        .get("PolicySummary")?
        .get("Id")?
        .as_str()
}

/// Every SCP and RCP of the snapshot with policy id `id`, mutably, with its element rules.
fn org_policies_mut<'a>(
    snap: &'a mut Snapshot,
    id: &'a str,
) -> impl Iterator<Item = (&'a mut NamedPolicy, PolicyKind)> + 'a {
    snap.accounts
        .values_mut()
        .filter_map(|a| a.organization.as_mut())
        .flat_map(|o| {
            let scps = o
                .scp
                .iter_mut()
                .flatten()
                .map(|p| (p, PolicyKind::Identity));
            let rcps = o
                .rcp
                .iter_mut()
                .flatten()
                .map(|p| (p, PolicyKind::Resource));
            scps.chain(rcps)
        })
        .filter(move |(p, _)| org_policy_id(&p.source) == Some(id))
}

/// The VPC endpoint an edit changes.
fn endpoint_mut<'s>(
    snap: &'s mut Snapshot,
    account: &str,
    id: &str,
) -> Result<&'s mut crate::snapshot::VpcEndpoint, EditError> {
    snap.accounts
        .get_mut(account)
        .and_then(|a| a.vpc_endpoints.as_mut())
        .and_then(|list| list.iter_mut().find(|e| e.id == id))
        .ok_or_else(|| {
            EditError(format!(
                "VPC endpoint `{id}` of account {account} is not in the snapshot"
            ))
        })
}

impl Edit {
    /// Applies the edit to a snapshot (a clone, when verifying).
    pub fn apply(&self, snap: &mut Snapshot) -> Result<(), EditError> {
        let missing = |what: String| EditError(format!("{what} is not in the snapshot"));
        match self {
            Edit::ReplacePolicy { pointer, document } => {
                let np = policies_mut(snap)
                    .find(|p| &p.pointer == pointer)
                    .ok_or_else(|| missing(format!("the policy at `{pointer}`")))?;
                let mut fresh =
                    NamedPolicy::new(np.name.clone(), document.clone(), kind_at(pointer)).map_err(
                        |e| {
                            EditError(format!(
                                "the new document of {} does not parse: {e}",
                                np.name
                            ))
                        },
                    )?;
                fresh.pointer = np.pointer.clone();
                fresh.policy_name = np.policy_name.clone();
                *np = fresh;
            }
            Edit::PutBucketPolicy {
                account,
                bucket,
                document,
            } => {
                let b = bucket_mut(snap, account, bucket)?;
                // Held to S3's 20 KB limit (crate::limits): AWS would refuse a larger one.
                let mut np = NamedPolicy::bucket_policy(bucket, document.clone())
                    .map_err(|e| EditError(format!("the new bucket policy does not parse: {e}")))?;
                np.pointer = bucket_pointer(account, bucket, "policy");
                b.policy = Some(np);
            }
            Edit::AddInlinePolicy {
                account,
                holder,
                holder_name,
                policy_name,
                document,
            } => {
                let (list, _) = holder_mut(snap, account, *holder, holder_name)?;
                // Held to the inline limit of its holder (crate::limits).
                let np =
                    NamedPolicy::inline(holder.noun(), holder_name, policy_name, document.clone())
                        .map_err(|e| {
                            EditError(format!("the new inline policy does not parse: {e}"))
                        })?;
                list.push(np);
            }
            Edit::EnableKey { account, key_arn } => {
                let k = key_mut(snap, account, key_arn)?;
                k.metadata.key_state = KeyState::Enabled;
            }
            Edit::EnforceBucketOwner { account, bucket } => {
                let b = bucket_mut(snap, account, bucket)?;
                b.ownership = Some(ObjectOwnership::BucketOwnerEnforced);
            }
            Edit::DeleteBucketPolicy { account, bucket } => {
                let b = bucket_mut(snap, account, bucket)?;
                b.policy = None;
            }
            Edit::PutAccessPointPolicy {
                account,
                name,
                document,
            } => {
                let ap = access_point_mut(snap, account, name)?;
                let mut np =
                    NamedPolicy::access_point_policy(name, document.clone()).map_err(|e| {
                        EditError(format!("the new access point policy does not parse: {e}"))
                    })?;
                np.pointer = access_point_pointer(account, name, "Policy");
                ap.policy = Some(np);
            }
            Edit::RecreateAccessPointInternet { account, name } => {
                let ap = access_point_mut(snap, account, name)?;
                ap.network_origin = crate::snapshot::NetworkOrigin::Internet;
                ap.vpc_id = None;
            }
            Edit::PutKeyPolicy {
                account,
                key_arn,
                document,
            } => {
                let k = key_mut(snap, account, key_arn)?;
                let mut np = NamedPolicy::key_policy(key_arn, document.clone())
                    .map_err(|e| EditError(format!("the new key policy does not parse: {e}")))?;
                np.pointer = key_pointer(account, key_arn, "policy");
                k.policy = Some(np);
            }
            Edit::SetKeyState {
                account,
                key_arn,
                state,
            } => {
                let k = key_mut(snap, account, key_arn)?;
                k.metadata.key_state = state.clone();
            }
            Edit::AddGrant {
                account,
                key_arn,
                grant,
            } => {
                let k = key_mut(snap, account, key_arn)?;
                let g = KeyGrant::new(grant.clone())
                    .map_err(|e| EditError(format!("the new grant does not parse: {e}")))?;
                k.grants.push(g);
            }
            Edit::RemoveGrant {
                account,
                key_arn,
                grant_id,
            } => {
                let k = key_mut(snap, account, key_arn)?;
                let before = k.grants.len();
                k.grants
                    .retain(|g| g.grant.grant_id.as_deref() != Some(grant_id.as_str()));
                if k.grants.len() == before {
                    return Err(missing(format!("grant `{grant_id}` of key `{key_arn}`")));
                }
            }
            Edit::RemoveInlinePolicy {
                account,
                holder,
                holder_name,
                policy_name,
            } => {
                let (inline, _) = holder_mut(snap, account, *holder, holder_name)?;
                let before = inline.len();
                inline.retain(|p| p.policy_name.as_deref() != Some(policy_name.as_str()));
                if inline.len() == before {
                    return Err(missing(format!(
                        "inline policy `{policy_name}` of {} `{holder_name}`",
                        holder.noun()
                    )));
                }
            }
            Edit::AttachManagedPolicy {
                account,
                holder,
                holder_name,
                policy_arn,
            } => {
                require_managed_document(snap, account, policy_arn)?;
                let (_, attached) = holder_mut(snap, account, *holder, holder_name)?;
                if !attached.contains(policy_arn) {
                    attached.push(policy_arn.clone());
                }
            }
            Edit::DetachManagedPolicy {
                account,
                holder,
                holder_name,
                policy_arn,
            } => {
                let (_, attached) = holder_mut(snap, account, *holder, holder_name)?;
                let before = attached.len();
                attached.retain(|a| a != policy_arn);
                if attached.len() == before {
                    return Err(EditError(format!(
                        "managed policy `{policy_arn}` is not attached to {} `{holder_name}` in the snapshot",
                        holder.noun()
                    )));
                }
            }
            Edit::SetVpcEndpointPolicy {
                account,
                vpc_endpoint_id,
                document,
                ..
            } => {
                endpoint_mut(snap, account, vpc_endpoint_id)?
                    .set_policy(document.clone())
                    .map_err(|e| {
                        EditError(format!("the new VPC endpoint policy does not parse: {e}"))
                    })?;
            }
            Edit::UpdateOrgPolicy {
                policy_id,
                document,
            } => {
                let mut found = false;
                for (np, kind) in org_policies_mut(snap, policy_id) {
                    let mut fresh = NamedPolicy::new(np.name.clone(), document.clone(), kind)
                        .map_err(|e| {
                            EditError(format!(
                                "the new content of {} does not parse: {e}",
                                np.name
                            ))
                        })?;
                    // Keep the `describe-policy` summary that names the policy.
                    let mut source = np.source.clone();
                    let described = match source.get_mut("Policy") {
                        Some(inner) => inner,
                        None => &mut source,
                    };
                    if let Some(obj) = described.as_object_mut() {
                        obj.insert("Content".into(), Value::String(document.to_string()));
                    }
                    fresh.source = source;
                    fresh.pointer = np.pointer.clone();
                    *np = fresh;
                    found = true;
                }
                if !found {
                    return Err(EditError(format!(
                        "no SCP or RCP with policy id `{policy_id}` is in the snapshot (an organization policy is recognised by the `PolicySummary.Id` of the `describe-policy` output it is listed as)"
                    )));
                }
            }
            Edit::SetBucketEncryption {
                account,
                bucket,
                encryption,
            } => {
                bucket_mut(snap, account, bucket)?.encryption = Some(encryption.clone());
            }
            Edit::SetObjectOwnership {
                account,
                bucket,
                ownership,
            } => {
                bucket_mut(snap, account, bucket)?.ownership = *ownership;
            }
            Edit::SetBucketPublicAccessBlock {
                account,
                bucket,
                config,
            } => {
                bucket_mut(snap, account, bucket)?.public_access_block = *config;
            }
            Edit::SetBucketAcl {
                account,
                bucket,
                owner_id,
                grants,
            } => {
                let b = bucket_mut(snap, account, bucket)?;
                if owner_id.is_some() {
                    b.acl_owner_id = owner_id.clone();
                }
                b.acl_grants = grants.clone();
            }
            Edit::SetAlias {
                account,
                region,
                alias,
                key_arn,
            } => {
                let keys = &mut snap
                    .accounts
                    .get_mut(account)
                    .ok_or_else(|| missing(format!("account {account}")))?
                    .kms;
                if let Some(arn) = key_arn {
                    if !keys.contains_key(arn) {
                        return Err(missing(format!("key `{arn}`")));
                    }
                }
                for (arn, key) in keys.iter_mut() {
                    if &key.metadata.region != region {
                        continue;
                    }
                    key.aliases.retain(|a| a != alias);
                    if key_arn.as_deref() == Some(arn.as_str()) {
                        key.aliases.push(alias.clone());
                    }
                }
            }
            Edit::SetGroupMembership {
                account,
                user,
                group,
                member,
            } => {
                let iam = iam_mut(snap, account)?;
                if *member && iam.group(group).is_none() {
                    return Err(missing(format!(
                        "group `{group}` of account {account} (its policies are what membership gives)"
                    )));
                }
                let u = iam
                    .users
                    .iter_mut()
                    .find(|u| &u.name == user)
                    .ok_or_else(|| missing(format!("user `{user}` of account {account}")))?;
                let is_member = u.groups.contains(group);
                match (*member, is_member) {
                    (true, false) => u.groups.push(group.clone()),
                    (false, true) => u.groups.retain(|g| g != group),
                    (false, false) => {
                        return Err(EditError(format!(
                            "user `{user}` is not in group `{group}` in the snapshot"
                        )))
                    }
                    (true, true) => {}
                }
            }
            Edit::SetPermissionsBoundary {
                account,
                holder,
                holder_name,
                policy_arn,
            } => {
                if let Some(arn) = policy_arn {
                    require_managed_document(snap, account, arn)?;
                }
                let iam = iam_mut(snap, account)?;
                let slot = match holder {
                    InlineHolder::Role => iam
                        .roles
                        .iter_mut()
                        .find(|r| &r.name == holder_name)
                        .map(|r| &mut r.permissions_boundary),
                    InlineHolder::User => iam
                        .users
                        .iter_mut()
                        .find(|u| &u.name == holder_name)
                        .map(|u| &mut u.permissions_boundary),
                    InlineHolder::Group => {
                        return Err(EditError(
                            "a group has no permissions boundary; only roles and users do".into(),
                        ))
                    }
                };
                let slot = slot.ok_or_else(|| {
                    missing(format!(
                        "{} `{holder_name}` of account {account}",
                        holder.noun()
                    ))
                })?;
                *slot = policy_arn.clone();
            }
            Edit::SetDefaultPolicyVersion {
                account,
                policy_arn,
                version_id,
                document,
            } => {
                let np = NamedPolicy::managed(policy_arn, document.clone()).map_err(|e| {
                    EditError(format!(
                        "the new version of managed policy `{policy_arn}` does not parse: {e}"
                    ))
                })?;
                let iam = iam_mut(snap, account)?;
                let entry = iam
                    .managed_policies
                    .entry(policy_arn.clone())
                    .or_insert_with(|| ManagedPolicy {
                        arn: policy_arn.clone(),
                        name: None,
                        default_version_id: None,
                        document: None,
                    });
                entry.default_version_id = version_id.clone().or(entry.default_version_id.take());
                entry.document = Some(np);
            }
            Edit::DeleteIdentity {
                account,
                holder,
                name,
            } => {
                let iam = iam_mut(snap, account)?;
                let before = iam.roles.len() + iam.users.len();
                match holder {
                    InlineHolder::Role => iam.roles.retain(|r| &r.name != name),
                    InlineHolder::User => iam.users.retain(|u| &u.name != name),
                    InlineHolder::Group => {
                        return Err(EditError(
                            "deleting a group is not a change this tool applies".into(),
                        ))
                    }
                }
                if iam.roles.len() + iam.users.len() == before {
                    return Err(missing(format!(
                        "{} `{name}` of account {account}",
                        holder.noun()
                    )));
                }
            }
            Edit::AttachOrgPolicy {
                account,
                level,
                policy_id,
            } => {
                let (policy, is_rcp) = org_policy_by_id(snap, policy_id).ok_or_else(|| {
                    EditError(format!(
                        "no SCP or RCP with policy id `{policy_id}` is in the snapshot, so its content is unknown (list it, as `describe-policy` output, wherever it is attached)"
                    ))
                })?;
                let kind = if is_rcp { "rcp" } else { "scp" };
                let levels = org_levels_mut(snap, account, is_rcp)?;
                let (index, list) = level_mut(levels, *level, account)?;
                if list
                    .iter()
                    .any(|p| org_policy_id(&p.source) == Some(policy_id.as_str()))
                {
                    return Err(EditError(format!(
                        "policy `{policy_id}` is already attached at that level of account {account}; AWS refuses a second attachment"
                    )));
                }
                let mut policy = policy;
                policy.pointer = pointer([
                    "accounts",
                    account,
                    "organization",
                    kind,
                    &index.to_string(),
                    &list.len().to_string(),
                ]);
                list.push(policy);
            }
            Edit::DetachOrgPolicy {
                account,
                level,
                policy_id,
            } => {
                let is_rcp = org_policy_by_id(snap, policy_id).is_some_and(|(_, rcp)| rcp);
                let levels = org_levels_mut(snap, account, is_rcp)?;
                let (_, list) = level_mut(levels, *level, account)?;
                let before = list.len();
                list.retain(|p| org_policy_id(&p.source) != Some(policy_id.as_str()));
                if list.len() == before {
                    return Err(EditError(format!(
                        "policy `{policy_id}` is not attached at that level of account {account} in the snapshot"
                    )));
                }
                if list.is_empty() {
                    return Err(EditError(format!(
                        "detaching `{policy_id}` would leave a level of account {account} without a policy; AWS refuses to detach the last one"
                    )));
                }
            }
            Edit::DeleteOrgPolicy { policy_id } => {
                for account in snap.accounts.values_mut() {
                    let Some(org) = account.organization.as_mut() else {
                        continue;
                    };
                    for list in org.scp.iter_mut().chain(org.rcp.iter_mut()) {
                        list.retain(|p| org_policy_id(&p.source) != Some(policy_id.as_str()));
                        if list.is_empty() {
                            return Err(EditError(format!(
                                "deleting `{policy_id}` would leave a level without a policy; AWS only deletes a policy that is detached everywhere, and never detaches the last one"
                            )));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The edit as RFC 6902 operations on the snapshot document `snap` was read from (or
    /// written as).
    pub fn patch(&self, snap: &Snapshot) -> Vec<Value> {
        match self {
            Edit::ReplacePolicy { pointer, document } => {
                vec![json!({"op": "replace", "path": pointer, "value": document})]
            }
            Edit::PutBucketPolicy {
                account,
                bucket,
                document,
            } => vec![
                json!({"op": "add", "path": bucket_pointer(account, bucket, "policy"), "value": document}),
            ],
            Edit::AddInlinePolicy {
                account,
                holder,
                holder_name,
                policy_name,
                document,
            } => {
                let (list, inline_key) = holder.keys();
                let Some((index, names, _)) = holder_at(snap, account, *holder, holder_name) else {
                    return Vec::new();
                };
                let has_inline = !names.is_empty();
                let entry = json!({"PolicyName": policy_name, "PolicyDocument": document});
                let base = pointer(["accounts", account, "iam", list, &index.to_string()]);
                vec![if has_inline {
                    json!({"op": "add", "path": format!("{base}/{inline_key}/-"), "value": entry})
                } else {
                    json!({"op": "add", "path": format!("{base}/{inline_key}"), "value": [entry]})
                }]
            }
            Edit::EnableKey { account, key_arn } => vec![json!({"op": "add",
                "path": format!("{}/KeyState", key_pointer(account, key_arn, "metadata")), "value": "Enabled"})],
            Edit::EnforceBucketOwner { account, bucket } => vec![json!({"op": "add",
                "path": bucket_pointer(account, bucket, "ownership_controls"),
                "value": {"OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}}})],
            Edit::DeleteBucketPolicy { account, bucket } => {
                vec![json!({"op": "remove", "path": bucket_pointer(account, bucket, "policy")})]
            }
            Edit::PutAccessPointPolicy {
                account,
                name,
                document,
            } => vec![
                json!({"op": "add", "path": access_point_pointer(account, name, "Policy"), "value": document}),
            ],
            Edit::RecreateAccessPointInternet { account, name } => {
                let mut ops = vec![
                    json!({"op": "add", "path": access_point_pointer(account, name, "NetworkOrigin"), "value": "Internet"}),
                ];
                let has_vpc = snap
                    .access_point(account, name)
                    .is_some_and(|(_, ap)| ap.vpc_id.is_some());
                if has_vpc {
                    ops.push(json!({"op": "remove", "path": access_point_pointer(account, name, "VpcConfiguration")}));
                }
                ops
            }
            Edit::PutKeyPolicy {
                account,
                key_arn,
                document,
            } => vec![
                json!({"op": "add", "path": key_pointer(account, key_arn, "policy"), "value": document}),
            ],
            Edit::SetKeyState {
                account,
                key_arn,
                state,
            } => vec![json!({"op": "add",
                "path": format!("{}/KeyState", key_pointer(account, key_arn, "metadata")), "value": state.as_str()})],
            Edit::AddGrant {
                account,
                key_arn,
                grant,
            } => {
                let first = snap
                    .account(account)
                    .and_then(|a| a.kms.get(key_arn))
                    .and_then(|k| k.grants.first());
                match first {
                    None => vec![
                        json!({"op": "add", "path": key_pointer(account, key_arn, "grants"), "value": [grant]}),
                    ],
                    // After the grants listed, wherever the list sits (`grants` or `grants/Grants`).
                    Some(g) => match g.pointer.rsplit_once('/') {
                        Some((list, _)) if !g.pointer.is_empty() => {
                            vec![json!({"op": "add", "path": format!("{list}/-"), "value": grant})]
                        }
                        _ => Vec::new(),
                    },
                }
            }
            Edit::RemoveGrant {
                account,
                key_arn,
                grant_id,
            } => snap
                .account(account)
                .and_then(|a| a.kms.get(key_arn))
                .and_then(|k| {
                    k.grants
                        .iter()
                        .find(|g| g.grant.grant_id.as_deref() == Some(grant_id.as_str()))
                })
                .filter(|g| !g.pointer.is_empty())
                .map(|g| vec![json!({"op": "remove", "path": g.pointer})])
                .unwrap_or_default(),
            Edit::RemoveInlinePolicy {
                account,
                holder,
                holder_name,
                policy_name,
            } => {
                let Some((index, names, _)) = holder_at(snap, account, *holder, holder_name) else {
                    return Vec::new();
                };
                let Some(at) = names.iter().position(|n| n == policy_name) else {
                    return Vec::new();
                };
                let (list, inline_key) = holder.keys();
                vec![
                    json!({"op": "remove", "path": pointer(["accounts", account, "iam", list, &index.to_string(), inline_key, &at.to_string()])}),
                ]
            }
            Edit::AttachManagedPolicy {
                account,
                holder,
                holder_name,
                policy_arn,
            } => {
                let Some((index, _, attached)) = holder_at(snap, account, *holder, holder_name)
                else {
                    return Vec::new();
                };
                if attached.contains(policy_arn) {
                    return Vec::new();
                }
                let (list, _) = holder.keys();
                let base = pointer([
                    "accounts",
                    account,
                    "iam",
                    list,
                    &index.to_string(),
                    "AttachedManagedPolicies",
                ]);
                let entry = json!({"PolicyArn": policy_arn});
                vec![if attached.is_empty() {
                    json!({"op": "add", "path": base, "value": [entry]})
                } else {
                    json!({"op": "add", "path": format!("{base}/-"), "value": entry})
                }]
            }
            Edit::DetachManagedPolicy {
                account,
                holder,
                holder_name,
                policy_arn,
            } => {
                let Some((index, _, attached)) = holder_at(snap, account, *holder, holder_name)
                else {
                    return Vec::new();
                };
                let Some(at) = attached.iter().position(|a| a == policy_arn) else {
                    return Vec::new();
                };
                let (list, _) = holder.keys();
                vec![
                    json!({"op": "remove", "path": pointer(["accounts", account, "iam", list, &index.to_string(), "AttachedManagedPolicies", &at.to_string()])}),
                ]
            }
            Edit::SetVpcEndpointPolicy {
                pointer, document, ..
            } => vec![json!({"op": "add", "path": pointer, "value": document})],
            Edit::UpdateOrgPolicy {
                policy_id,
                document,
            } => snap
                .accounts
                .values()
                .filter_map(|a| a.organization.as_ref())
                .flat_map(|o| o.scp.iter().chain(o.rcp.iter()).flatten())
                .filter(|p| org_policy_id(&p.source) == Some(policy_id.as_str()))
                // `describe-policy` gives the content as a string; so does the typed edit.
                .map(|p| json!({"op": "replace", "path": p.pointer, "value": document.to_string()}))
                .collect(),
            Edit::SetBucketEncryption {
                account, bucket, ..
            } => bucket_field_patch(snap, &self.applied(snap), account, bucket, "encryption"),
            Edit::SetObjectOwnership {
                account, bucket, ..
            } => bucket_field_patch(
                snap,
                &self.applied(snap),
                account,
                bucket,
                "ownership_controls",
            ),
            Edit::SetBucketPublicAccessBlock {
                account, bucket, ..
            } => bucket_field_patch(
                snap,
                &self.applied(snap),
                account,
                bucket,
                "public_access_block",
            ),
            Edit::SetBucketAcl {
                account, bucket, ..
            } => bucket_field_patch(snap, &self.applied(snap), account, bucket, "acl"),
            Edit::SetAlias { account, .. } => {
                let after = self.applied(snap);
                let aliases = |s: &Snapshot, arn: &str| {
                    s.account(account)
                        .and_then(|a| a.kms.get(arn))
                        .map(write::key)
                        .and_then(|k| k.get("aliases").cloned())
                };
                snap.account(account)
                    .map(|a| a.kms.keys().collect::<Vec<_>>())
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|arn| {
                        let path = key_pointer(account, arn, "aliases");
                        match (aliases(snap, arn), aliases(&after, arn)) {
                            (old, Some(new)) if old.as_ref() != Some(&new) => {
                                Some(json!({"op": "add", "path": path, "value": new}))
                            }
                            (Some(_), None) => Some(json!({"op": "remove", "path": path})),
                            _ => None,
                        }
                    })
                    .collect()
            }
            Edit::SetGroupMembership { account, user, .. } => {
                identity_patch(snap, &self.applied(snap), account, InlineHolder::User, user)
            }
            Edit::SetPermissionsBoundary {
                account,
                holder,
                holder_name,
                ..
            } => identity_patch(snap, &self.applied(snap), account, *holder, holder_name),
            Edit::DeleteIdentity {
                account,
                holder,
                name,
            } => identity_patch(snap, &self.applied(snap), account, *holder, name),
            Edit::SetDefaultPolicyVersion { account, .. } => {
                let after = self.applied(snap);
                match after.account(account).and_then(|a| a.iam.as_ref()) {
                    Some(iam) => vec![json!({"op": "add",
                        "path": pointer(["accounts", account, "iam", "Policies"]),
                        "value": iam.managed_policies.values().map(write::managed_policy).collect::<Vec<_>>()})],
                    None => Vec::new(),
                }
            }
            Edit::AttachOrgPolicy { .. }
            | Edit::DetachOrgPolicy { .. }
            | Edit::DeleteOrgPolicy { .. } => {
                let after = self.applied(snap);
                after
                    .accounts
                    .iter()
                    .filter(|(id, a)| {
                        snap.account(id).map(|b| &b.organization) != Some(&a.organization)
                    })
                    .filter_map(|(id, a)| {
                        a.organization.as_ref().map(|o| {
                            json!({"op": "add",
                                "path": pointer(["accounts", id, "organization"]),
                                "value": write::organization(o)})
                        })
                    })
                    .collect()
            }
        }
    }

    /// A copy of `snap` with the edit applied (unchanged when it does not apply), for
    /// patches rendered from what the one writer writes.
    fn applied(&self, snap: &Snapshot) -> Snapshot {
        let mut after = snap.clone();
        if self.apply(&mut after).is_err() {
            return snap.clone();
        }
        after
    }

    /// The document this edit leaves at a policy's place, for fixes that build on it.
    pub(super) fn rewrites(&self) -> Option<(String, &Value)> {
        match self {
            Edit::ReplacePolicy { pointer, document } => Some((pointer.clone(), document)),
            Edit::PutBucketPolicy {
                account,
                bucket,
                document,
            } => Some((bucket_pointer(account, bucket, "policy"), document)),
            Edit::SetVpcEndpointPolicy {
                pointer, document, ..
            } => Some((pointer.clone(), document)),
            Edit::PutAccessPointPolicy {
                account,
                name,
                document,
            } => Some((access_point_pointer(account, name, "Policy"), document)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::working;
    use super::*;

    const BUCKET_POLICY: &str = "/accounts/111122223333/s3/doc-example-bucket/policy";

    #[test]
    fn a_replaced_policy_is_parsed_and_keeps_its_place() {
        let (mut snap, _) = working();
        let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}]});
        Edit::ReplacePolicy {
            pointer: BUCKET_POLICY.into(),
            document: doc.clone(),
        }
        .apply(&mut snap)
        .expect("applies");
        let (_, b) = snap.bucket("doc-example-bucket").expect("bucket");
        let np = b.policy.as_ref().expect("policy");
        assert_eq!(np.document, doc);
        assert_eq!(np.pointer, BUCKET_POLICY);
        assert_eq!(np.policy.statements.len(), 1);
    }

    #[test]
    fn edits_that_cannot_apply_say_why() {
        let (mut snap, _) = working();
        let err = Edit::ReplacePolicy {
            pointer: "/accounts/1/s3/nope/policy".into(),
            document: json!({}),
        }
        .apply(&mut snap)
        .unwrap_err();
        assert!(err.to_string().contains("not in the snapshot"), "{err}");
        let err = Edit::ReplacePolicy {
            pointer: BUCKET_POLICY.into(),
            document: json!({"Statement": [{"Effect": "Maybe"}]}),
        }
        .apply(&mut snap)
        .unwrap_err();
        assert!(err.to_string().contains("does not parse"), "{err}");
    }

    #[test]
    fn the_rendered_patch_does_to_the_document_what_the_edit_does_to_the_snapshot() {
        let (snap, raw) = working();
        let edits = [
            Edit::AddInlinePolicy {
                account: "444455556666".into(),
                holder: InlineHolder::Role,
                holder_name: "reader".into(),
                policy_name: "extra".into(),
                document: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}),
            },
            Edit::EnableKey {
                account: "111122223333".into(),
                key_arn:
                    "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                        .into(),
            },
            Edit::EnforceBucketOwner {
                account: "111122223333".into(),
                bucket: "doc-example-bucket".into(),
            },
        ];
        let mut typed = snap.clone();
        let mut doc = raw.clone();
        for e in &edits {
            e.apply(&mut typed).expect("applies");
            let ops = crate::json_patch::parse_patch(&Value::Array(e.patch(&snap))).expect("patch");
            crate::json_patch::apply(&mut doc, &ops).expect("patch applies");
        }
        let reread = Snapshot::from_value(&doc).expect("patched snapshot");
        assert_eq!(reread.to_value(), typed.to_value());
    }

    /// The working setup with what the change edits act on: a grant, an SCP held as
    /// `describe-policy` output, a second managed policy of the reader account.
    fn with_change_targets() -> (Snapshot, Value) {
        let (_, mut raw) = working();
        let key = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        raw["accounts"]["111122223333"]["kms"][key]["grants"] = json!([{
            "GrantId": "g-1", "KeyId": key, "GranteePrincipal": "arn:aws:iam::444455556666:role/reader",
            "Operations": ["Decrypt"]}]);
        raw["accounts"]["444455556666"]["organization"]["scp"] = json!([[{"Policy": {
            "PolicySummary": {"Id": "p-allowall", "Name": "FullAWSAccess"},
            "Content": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}"}}]]);
        let policies = raw["accounts"]["444455556666"]["iam"]["Policies"]
            .as_array_mut()
            .expect("Policies");
        policies.push(json!({"Arn": "arn:aws:iam::444455556666:policy/extra", "DefaultVersionId": "v1",
            "PolicyVersionList": [{"VersionId": "v1", "IsDefaultVersion": true,
            "Document": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}}]}));
        let snap = Snapshot::from_value(&raw).expect("snapshot");
        (snap, raw)
    }

    #[test]
    fn change_edits_patch_the_document_as_they_edit_the_snapshot() {
        let (snap, raw) = with_change_targets();
        let key = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let deny = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}]});
        let role = |s: &str| (InlineHolder::Role, "reader".to_owned(), s.to_owned());
        let edits = vec![
            Edit::DeleteBucketPolicy {
                account: "111122223333".into(),
                bucket: "doc-example-bucket".into(),
            },
            Edit::PutKeyPolicy {
                account: "111122223333".into(),
                key_arn: key.into(),
                document: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}]}),
            },
            Edit::SetKeyState {
                account: "111122223333".into(),
                key_arn: key.into(),
                state: KeyState::PendingDeletion,
            },
            Edit::AddGrant {
                account: "111122223333".into(),
                key_arn: key.into(),
                grant: json!({"GrantId": "g-2", "KeyId": key, "GranteePrincipal": "arn:aws:iam::444455556666:role/other", "Operations": ["Decrypt"]}),
            },
            Edit::RemoveGrant {
                account: "111122223333".into(),
                key_arn: key.into(),
                grant_id: "g-1".into(),
            },
            {
                let (holder, holder_name, policy_name) = role("read-doc-example-bucket");
                Edit::RemoveInlinePolicy {
                    account: "444455556666".into(),
                    holder,
                    holder_name,
                    policy_name,
                }
            },
            {
                let (holder, holder_name, policy_arn) =
                    role("arn:aws:iam::444455556666:policy/extra");
                Edit::AttachManagedPolicy {
                    account: "444455556666".into(),
                    holder,
                    holder_name,
                    policy_arn,
                }
            },
            {
                let (holder, holder_name, policy_arn) =
                    role("arn:aws:iam::444455556666:policy/reader-base");
                Edit::DetachManagedPolicy {
                    account: "444455556666".into(),
                    holder,
                    holder_name,
                    policy_arn,
                }
            },
            Edit::UpdateOrgPolicy {
                policy_id: "p-allowall".into(),
                document: deny.clone(),
            },
        ];
        for e in &edits {
            let mut typed = snap.clone();
            e.apply(&mut typed)
                .unwrap_or_else(|err| panic!("{e:?}: {err}"));
            assert_ne!(typed.to_value(), snap.to_value(), "{e:?} changed nothing");
            let patch = e.patch(&snap);
            assert!(!patch.is_empty(), "{e:?} renders no patch");
            let ops = crate::json_patch::parse_patch(&Value::Array(patch)).expect("patch");
            let mut doc = raw.clone();
            crate::json_patch::apply(&mut doc, &ops).unwrap_or_else(|err| panic!("{e:?}: {err}"));
            let reread = Snapshot::from_value(&doc).expect("patched snapshot");
            assert_eq!(reread.to_value(), typed.to_value(), "{e:?}");
        }
        // The updated SCP keeps its name and now denies.
        let mut typed = snap.clone();
        edits[8].apply(&mut typed).expect("applies");
        let scp = &typed.accounts["444455556666"]
            .organization
            .as_ref()
            .expect("org")
            .scp[0][0];
        assert_eq!(scp.name, "SCP FullAWSAccess (p-allowall)");
        assert_eq!(scp.document, deny);
    }

    #[test]
    fn bucket_key_iam_and_organization_edits_patch_the_document_as_they_edit_the_snapshot() {
        let (_, mut raw) = with_change_targets();
        let b = &mut raw["accounts"]["444455556666"];
        let allow_all = b["organization"]["scp"][0][0].clone();
        let perimeter = json!({"Policy": {"PolicySummary": {"Id": "p-perimeter", "Name": "perimeter"},
            "Content": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Action\":\"s3:*\",\"Resource\":\"*\"}]}"}});
        b["organization"]["scp"] = json!([[allow_all.clone()], [allow_all, perimeter]]);
        let snap = Snapshot::from_value(&raw).expect("snapshot");
        let key = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let (a, bkt) = ("111122223333".to_owned(), "doc-example-bucket".to_owned());
        let reader = "444455556666".to_owned();
        let edits = vec![
            Edit::SetBucketEncryption {
                account: a.clone(),
                bucket: bkt.clone(),
                encryption: DefaultEncryption {
                    algorithm: "AES256".into(),
                    kms_key_id: None,
                    bucket_key_enabled: false,
                },
            },
            Edit::SetObjectOwnership {
                account: a.clone(),
                bucket: bkt.clone(),
                ownership: None,
            },
            Edit::SetObjectOwnership {
                account: a.clone(),
                bucket: bkt.clone(),
                ownership: Some(ObjectOwnership::ObjectWriter),
            },
            Edit::SetBucketPublicAccessBlock {
                account: a.clone(),
                bucket: bkt.clone(),
                config: None,
            },
            Edit::SetBucketAcl {
                account: a.clone(),
                bucket: bkt.clone(),
                owner_id: None,
                grants: Vec::new(),
            },
            Edit::SetAlias {
                account: a.clone(),
                region: "us-west-2".into(),
                alias: "alias/reports".into(),
                key_arn: None,
            },
            Edit::SetAlias {
                account: a.clone(),
                region: "us-west-2".into(),
                alias: "alias/new".into(),
                key_arn: Some(key.into()),
            },
            Edit::SetGroupMembership {
                account: reader.clone(),
                user: "alice".into(),
                group: "analysts".into(),
                member: false,
            },
            Edit::SetPermissionsBoundary {
                account: reader.clone(),
                holder: InlineHolder::Role,
                holder_name: "reader".into(),
                policy_arn: Some("arn:aws:iam::444455556666:policy/extra".into()),
            },
            Edit::SetDefaultPolicyVersion {
                account: reader.clone(),
                policy_arn: "arn:aws:iam::444455556666:policy/extra".into(),
                version_id: Some("v2".into()),
                document: json!({"Version": "2012-10-17", "Statement": []}),
            },
            Edit::DeleteIdentity {
                account: reader.clone(),
                holder: InlineHolder::User,
                name: "alice".into(),
            },
            Edit::AddInlinePolicy {
                account: reader.clone(),
                holder: InlineHolder::Group,
                holder_name: "analysts".into(),
                policy_name: "more".into(),
                document: json!({"Version": "2012-10-17", "Statement": []}),
            },
            Edit::AttachManagedPolicy {
                account: reader.clone(),
                holder: InlineHolder::Group,
                holder_name: "analysts".into(),
                policy_arn: "arn:aws:iam::444455556666:policy/extra".into(),
            },
            Edit::AttachOrgPolicy {
                account: reader.clone(),
                level: OrgLevel::Root,
                policy_id: "p-perimeter".into(),
            },
            Edit::DetachOrgPolicy {
                account: reader.clone(),
                level: OrgLevel::Account,
                policy_id: "p-perimeter".into(),
            },
        ];
        for e in &edits {
            let mut typed = snap.clone();
            e.apply(&mut typed)
                .unwrap_or_else(|err| panic!("{e:?}: {err}"));
            assert_ne!(typed.to_value(), snap.to_value(), "{e:?} changed nothing");
            let patch = e.patch(&snap);
            assert!(!patch.is_empty(), "{e:?} renders no patch");
            let ops = crate::json_patch::parse_patch(&Value::Array(patch)).expect("patch");
            let mut doc = raw.clone();
            crate::json_patch::apply(&mut doc, &ops).unwrap_or_else(|err| panic!("{e:?}: {err}"));
            let reread = Snapshot::from_value(&doc).expect("patched snapshot");
            assert_eq!(reread.to_value(), typed.to_value(), "{e:?}");
        }
        // What AWS refuses, the edits refuse.
        for (edit, needle) in [
            (
                Edit::DetachOrgPolicy {
                    account: reader.clone(),
                    level: OrgLevel::Root,
                    policy_id: "p-allowall".into(),
                },
                "AWS refuses to detach the last one",
            ),
            (
                Edit::AttachOrgPolicy {
                    account: reader.clone(),
                    level: OrgLevel::Account,
                    policy_id: "p-perimeter".into(),
                },
                "already attached",
            ),
            (
                Edit::SetPermissionsBoundary {
                    account: reader.clone(),
                    holder: InlineHolder::Role,
                    holder_name: "reader".into(),
                    policy_arn: Some("arn:aws:iam::aws:policy/PowerUserAccess".into()),
                },
                "is not in the snapshot",
            ),
            (
                Edit::SetGroupMembership {
                    account: reader.clone(),
                    user: "alice".into(),
                    group: "nobody".into(),
                    member: true,
                },
                "group `nobody`",
            ),
        ] {
            let mut typed = snap.clone();
            let err = edit.apply(&mut typed).expect_err("must fail");
            assert!(err.to_string().contains(needle), "{edit:?}: {err}");
        }
    }

    #[test]
    fn change_edits_that_cannot_apply_name_what_is_missing() {
        let (snap, _) = with_change_targets();
        let cases = [
            (Edit::AttachManagedPolicy { account: "444455556666".into(), holder: InlineHolder::Role,
                holder_name: "reader".into(), policy_arn: "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess".into() },
             "the document of managed policy `arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess` is not in the snapshot"),
            (Edit::DetachManagedPolicy { account: "444455556666".into(), holder: InlineHolder::Role,
                holder_name: "reader".into(), policy_arn: "arn:aws:iam::444455556666:policy/extra".into() },
             "is not attached to role `reader`"),
            (Edit::RemoveGrant { account: "111122223333".into(),
                key_arn: "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab".into(), grant_id: "nope".into() },
             "grant `nope`"),
            (Edit::RemoveInlinePolicy { account: "444455556666".into(), holder: InlineHolder::User,
                holder_name: "nobody".into(), policy_name: "x".into() },
             "user `nobody` of account 444455556666 is not in the snapshot"),
            (Edit::UpdateOrgPolicy { policy_id: "p-other".into(), document: json!({}) },
             "no SCP or RCP with policy id `p-other`"),
        ];
        for (edit, needle) in cases {
            let mut typed = snap.clone();
            let err = edit.apply(&mut typed).expect_err("must fail");
            assert!(err.to_string().contains(needle), "{edit:?}: {err}");
        }
    }
}

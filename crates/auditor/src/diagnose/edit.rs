//! The changes fixes make, typed: applied to a cloned [`Snapshot`] to verify a fix, and
//! rendered as RFC 6902 patches of the snapshot document for the report (so a person or a
//! pipeline can apply exactly what was verified to the snapshot file).

use std::fmt;

use serde_json::{json, Value};

use iam_eval::PolicyKind;

use crate::json_patch::pointer;
use crate::snapshot::{KeyState, NamedPolicy, ObjectOwnership, Snapshot};

/// Who holds an inline IAM policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InlineHolder {
    /// A role (`RoleDetailList[].RolePolicyList`).
    Role,
    /// A user (`UserDetailList[].UserPolicyList`).
    User,
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
        (Some("s3" | "kms"), _) | (Some("organization"), Some("rcp")) => PolicyKind::Resource,
        _ => PolicyKind::Identity,
    }
}

/// Every policy of the snapshot, mutably.
fn policies_mut(snap: &mut Snapshot) -> impl Iterator<Item = &mut NamedPolicy> {
    snap.accounts.values_mut().flat_map(|a| {
        let buckets = a.s3.values_mut().filter_map(|b| b.policy.as_mut());
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

/// `/accounts/<account>/s3/<bucket>/<field>`.
pub(super) fn bucket_pointer(account: &str, bucket: &str, field: &str) -> String {
    pointer(["accounts", account, "s3", bucket, field])
}

/// `/accounts/<account>/kms/<key ARN>/<field>`.
pub(super) fn key_pointer(account: &str, arn: &str, field: &str) -> String {
    pointer(["accounts", account, "kms", arn, field])
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
                let b = snap
                    .accounts
                    .get_mut(account)
                    .and_then(|a| a.s3.get_mut(bucket))
                    .ok_or_else(|| missing(format!("bucket `{bucket}` of account {account}")))?;
                let mut np = NamedPolicy::new(
                    format!("bucket policy of {bucket}"),
                    document.clone(),
                    PolicyKind::Resource,
                )
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
                let iam = snap
                    .accounts
                    .get_mut(account)
                    .and_then(|a| a.iam.as_mut())
                    .ok_or_else(|| missing(format!("the IAM data of account {account}")))?;
                let (list, kind) = match holder {
                    InlineHolder::Role => (
                        iam.roles
                            .iter_mut()
                            .find(|r| &r.name == holder_name)
                            .map(|r| &mut r.inline_policies),
                        "role",
                    ),
                    InlineHolder::User => (
                        iam.users
                            .iter_mut()
                            .find(|u| &u.name == holder_name)
                            .map(|u| &mut u.inline_policies),
                        "user",
                    ),
                };
                let list = list.ok_or_else(|| missing(format!("{kind} `{holder_name}`")))?;
                let mut np = NamedPolicy::new(
                    format!("inline policy {policy_name} of {kind} {holder_name}"),
                    document.clone(),
                    PolicyKind::Identity,
                )
                .map_err(|e| EditError(format!("the new inline policy does not parse: {e}")))?;
                np.policy_name = Some(policy_name.clone());
                list.push(np);
            }
            Edit::EnableKey { account, key_arn } => {
                let k = snap
                    .accounts
                    .get_mut(account)
                    .and_then(|a| a.kms.get_mut(key_arn))
                    .ok_or_else(|| missing(format!("key `{key_arn}`")))?;
                k.metadata.key_state = KeyState::Enabled;
            }
            Edit::EnforceBucketOwner { account, bucket } => {
                let b = snap
                    .accounts
                    .get_mut(account)
                    .and_then(|a| a.s3.get_mut(bucket))
                    .ok_or_else(|| missing(format!("bucket `{bucket}` of account {account}")))?;
                b.ownership = Some(ObjectOwnership::BucketOwnerEnforced);
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
                let (list, inline_key) = match holder {
                    InlineHolder::Role => ("RoleDetailList", "RolePolicyList"),
                    InlineHolder::User => ("UserDetailList", "UserPolicyList"),
                };
                let iam = snap.account(account).and_then(|a| a.iam.as_ref());
                let index = iam.and_then(|i| match holder {
                    InlineHolder::Role => i.roles.iter().position(|r| &r.name == holder_name),
                    InlineHolder::User => i.users.iter().position(|u| &u.name == holder_name),
                });
                let has_inline = iam.is_some_and(|i| match holder {
                    InlineHolder::Role => i
                        .roles
                        .iter()
                        .any(|r| &r.name == holder_name && !r.inline_policies.is_empty()),
                    InlineHolder::User => i
                        .users
                        .iter()
                        .any(|u| &u.name == holder_name && !u.inline_policies.is_empty()),
                });
                let Some(index) = index else {
                    return Vec::new();
                };
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
        }
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
}

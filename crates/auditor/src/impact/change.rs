//! A recorded policy change, applied to a copy of a snapshot the way AWS applies it.
//!
//! The change is one CloudTrail record, bare or in an EventBridge envelope (the shapes
//! [`crate::event`] reads), of a call that changes what a read path depends on. Its
//! `requestParameters` carry the new document (a JSON string, or for S3 an object) or the
//! names and ARNs of what was attached, detached, revoked or disabled. The shapes follow the
//! AWS pages "Logging Amazon S3 API calls using AWS CloudTrail", "Logging AWS KMS API calls
//! with AWS CloudTrail" (ct-revoke-grant, ct-retire-grant, ct-put-key-policy), "Logging IAM
//! and AWS STS API calls with AWS CloudTrail" and "Logging AWS Organizations API calls with
//! AWS CloudTrail". The edits themselves are those of [`crate::diagnose::edit`], the ones
//! fixes are verified with.
//!
//! A change the snapshot cannot express (a managed policy whose document it lacks, a role it
//! does not list) is an error naming what is missing, never a silent no-op; so is a call that
//! failed (`errorCode`), which AWS did not apply.

use iam_eval::Json;
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use crate::diagnose::edit::{Edit, InlineHolder};
use crate::event::CLOUDTRAIL_DETAIL_TYPE;
use crate::reader::{reject_duplicate_keys, Node, PathError};
use crate::refs::{is_account_id, is_service_name, key_arn, kms_key_arn, Partition};
use crate::snapshot::{KeyState, Snapshot};

/// A change record that cannot be applied, with the JSON path of the offending value
/// (`detail.requestParameters.roleName`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{path}: {message}")]
pub struct ChangeError {
    path: String,
    message: String,
}

impl ChangeError {
    /// The JSON path of the offending value (`$` for the document itself).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong with it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<PathError> for ChangeError {
    fn from(e: PathError) -> ChangeError {
        ChangeError {
            path: e.path,
            message: e.message,
        }
    }
}

/// The change an impact report is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeRef {
    /// `eventSource`.
    pub event_source: String,
    /// `eventName`.
    pub event_name: String,
    /// `eventID`, when the record has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// `eventTime`, when the record has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    /// The account the change was made in (`recipientAccountId`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Who made it (`userIdentity.arn`), when the record says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// What changed, in words (`bucket policy of doc-example-bucket`).
    pub changed: String,
}

/// The calls `--change` applies, as `eventSource` service and `eventName`.
pub const SUPPORTED: &[(&str, &str)] = &[
    ("s3", "PutBucketPolicy"),
    ("s3", "DeleteBucketPolicy"),
    ("kms", "PutKeyPolicy"),
    ("kms", "CreateGrant"),
    ("kms", "RevokeGrant"),
    ("kms", "RetireGrant"),
    ("kms", "DisableKey"),
    ("kms", "EnableKey"),
    ("kms", "ScheduleKeyDeletion"),
    ("kms", "CancelKeyDeletion"),
    ("iam", "PutRolePolicy"),
    ("iam", "DeleteRolePolicy"),
    ("iam", "AttachRolePolicy"),
    ("iam", "DetachRolePolicy"),
    ("iam", "PutUserPolicy"),
    ("iam", "DeleteUserPolicy"),
    ("iam", "AttachUserPolicy"),
    ("iam", "DetachUserPolicy"),
    ("organizations", "UpdatePolicy"),
];

/// Applies the change recorded in `event` (a CloudTrail record, an EventBridge envelope, or
/// a trail log file holding exactly one record) to a copy of `before`.
pub fn apply_change(
    before: &Snapshot,
    event: &Value,
) -> Result<(Snapshot, ChangeRef), ChangeError> {
    let root = Node::root(event);
    let record = one_record(&root)?;
    // A record AWS cannot have delivered (over 256 KB) is refused, as by the event parser.
    crate::event::check_event_size(&record, "a CloudTrail record")?;
    let (edits, change) = edits_for(before, &record)?;
    let mut after = before.clone();
    for (edit, at) in &edits {
        edit.apply(&mut after)
            .map_err(|e| ChangeError::from(at.err(e.to_string())))?;
    }
    Ok((after, change))
}

/// The record inside an envelope or a one-record trail log file.
fn one_record<'a>(root: &Node<'a>) -> Result<Node<'a>, PathError> {
    let map = root.obj()?;
    if map.contains_key("detail-type") || map.contains_key("detail") {
        let detail_type = root.req("detail-type")?;
        if detail_type.str()? != CLOUDTRAIL_DETAIL_TYPE {
            return Err(detail_type.err(format!(
                "`{}` is not a CloudTrail API call; expected `{CLOUDTRAIL_DETAIL_TYPE}`",
                detail_type.str()?
            )));
        }
        crate::event::check_event_size(root, "an EventBridge event")?;
        return root.req("detail");
    }
    if map.contains_key("Records") {
        let records = root.req("Records")?;
        let mut items = records.arr()?;
        if items.len() != 1 {
            return Err(records.err(format!(
                "holds {} records; give exactly one change",
                items.len()
            )));
        }
        return Ok(items.remove(0));
    }
    Ok(root.clone())
}

/// A policy document given in a change: a JSON object, or a JSON string (duplicate keys are
/// rejected, as in snapshots).
fn document(node: &Node<'_>) -> Result<Value, PathError> {
    match node.v {
        Value::Object(_) => Ok(node.v.clone()),
        Value::String(text) => {
            let json = Json::parse(text)
                .map_err(|e| node.err(format!("the policy document is not valid JSON: {e}")))?;
            reject_duplicate_keys(&json, &node.loc)?;
            let v = json.to_value();
            if v.is_object() {
                Ok(v)
            } else {
                Err(node.err("the policy document is not a JSON object"))
            }
        }
        _ => Err(node.err(format!(
            "expected a policy document (an object or a JSON string), found {}",
            crate::reader::kind(node.v)
        ))),
    }
}

/// The `ListGrants` entry a `CreateGrant` record describes (ct-creategrant): the request's
/// grantee, operations, constraints, name and retiring principal, and the grant id AWS
/// returned.
fn grant_entry(record: &Node<'_>, params: &Node<'_>, key_arn: &str) -> Result<Value, PathError> {
    let mut entry = serde_json::Map::new();
    entry.insert("KeyId".into(), Value::String(key_arn.to_owned()));
    let grant_id = match record.get("responseElements")? {
        Some(r) => r.opt_str("grantId")?,
        None => None,
    };
    let grant_id =
        grant_id.ok_or_else(|| {
            record.loc.key("responseElements").key("grantId").err(
                "the record gives no grant id, so a later RevokeGrant could not find the grant",
            )
        })?;
    entry.insert("GrantId".into(), Value::String(grant_id));
    entry.insert(
        "GranteePrincipal".into(),
        Value::String(params.req_str("granteePrincipal")?),
    );
    let operations = params.str_list("operations")?;
    if operations.is_empty() {
        return Err(params.loc.key("operations").err("a grant needs operations"));
    }
    entry.insert("Operations".into(), serde_json::json!(operations));
    for (from, to) in [("name", "Name"), ("retiringPrincipal", "RetiringPrincipal")] {
        if let Some(v) = params.opt_str(from)? {
            entry.insert(to.into(), Value::String(v));
        }
    }
    if let Some(c) = params.get("constraints")? {
        let mut constraints = serde_json::Map::new();
        for (from, to) in [
            ("encryptionContextSubset", "EncryptionContextSubset"),
            ("encryptionContextEquals", "EncryptionContextEquals"),
        ] {
            if let Some(v) = c.get(from)? {
                v.obj()?;
                constraints.insert(to.into(), v.v.clone());
            }
        }
        entry.insert("Constraints".into(), Value::Object(constraints));
    }
    Ok(Value::Object(entry))
}

type Edits = Vec<(Edit, crate::reader::Loc)>;

/// The service of a record's `eventSource` among those whose changes the tool reads.
fn change_service(event_source: &str) -> Option<&'static str> {
    ["s3", "kms", "iam", "organizations"]
        .into_iter()
        .find(|s| is_service_name(event_source, s))
}

/// The account a change was made in: `recipientAccountId`, else `userIdentity.accountId`.
fn record_account(record: &Node<'_>) -> Result<Option<String>, PathError> {
    Ok(match record.opt_str("recipientAccountId")? {
        Some(a) => Some(a),
        None => match record.get("userIdentity")? {
            Some(u) => u.opt_str("accountId")?,
            None => None,
        },
    }
    .filter(|a| is_account_id(a)))
}

/// The value naming the key a KMS change acts on: `requestParameters.keyId`, or for a
/// RetireGrant without request parameters, the first of `resources` (ct-retire-grant).
fn key_node<'a>(record: &Node<'a>) -> Result<Node<'a>, PathError> {
    let from_params = match record.get("requestParameters")? {
        Some(p) => p.get("keyId")?,
        None => None,
    };
    match from_params {
        Some(k) => Ok(k),
        None => match record.get("resources")? {
            Some(r) => r
                .arr()?
                .into_iter()
                .next()
                .map(|first| first.req("ARN"))
                .transpose()?
                .ok_or_else(|| r.err("lists no resource")),
            None => record.req("requestParameters")?.req("keyId"),
        },
    }
}

fn edits_for(snap: &Snapshot, record: &Node<'_>) -> Result<(Edits, ChangeRef), PathError> {
    record.obj()?;
    let event_name = record.req_str("eventName")?;
    let event_source = record.req_str("eventSource")?;
    let service = change_service(&event_source);
    let supported = SUPPORTED
        .iter()
        .any(|(s, n)| Some(*s) == service && *n == event_name);
    if !supported {
        return Err(record.loc.key("eventName").err(format!(
            "`{event_name}` from `{event_source}` is not a change this tool can apply; it applies {}",
            SUPPORTED
                .iter()
                .map(|(s, n)| format!("{s}:{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if let Some(code) = record.opt_str("errorCode")? {
        let message = record
            .opt_str("errorMessage")?
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        return Err(record.loc.key("errorCode").err(format!(
            "the {event_name} call failed with `{code}`{message}: AWS did not apply it, so there is no change to assess"
        )));
    }
    let account = record_account(record)?;
    let region = record.opt_str("awsRegion")?.unwrap_or_default();
    let actor = match record.get("userIdentity")? {
        Some(u) => u.opt_str("arn")?,
        None => None,
    };
    let params = || record.req("requestParameters");
    let need_account = || {
        account.clone().ok_or_else(|| {
            record
                .loc
                .key("recipientAccountId")
                .err("the record names no account (recipientAccountId or userIdentity.accountId)")
        })
    };
    let (edits, changed): (Edits, String) = match (service, event_name.as_str()) {
        (Some("s3"), "PutBucketPolicy" | "DeleteBucketPolicy") => {
            let p = params()?;
            let name_node = p.req("bucketName")?;
            let bucket = name_node.str()?.to_owned();
            let Some((owner, _)) = snap.bucket(&bucket) else {
                return Err(name_node.err(format!("bucket `{bucket}` is not in the snapshot")));
            };
            let owner = owner.to_owned();
            let edit = if event_name == "PutBucketPolicy" {
                // CloudTrail records the new policy as the object `bucketPolicy`.
                let doc = document(&p.req("bucketPolicy")?)?;
                Edit::PutBucketPolicy {
                    account: owner,
                    bucket: bucket.clone(),
                    document: doc,
                }
            } else {
                Edit::DeleteBucketPolicy {
                    account: owner,
                    bucket: bucket.clone(),
                }
            };
            (
                vec![(edit, name_node.loc.clone())],
                format!("bucket policy of {bucket}"),
            )
        }
        (Some("kms"), _) => {
            let key_account = need_account()?;
            let key_node = key_node(record)?;
            let reference = key_node.str()?;
            let Some((owner, key)) = snap.key(reference, &region, &key_account) else {
                return Err(key_node.err(format!(
                    "key `{reference}` is not in the snapshot (looked up in {region} of account {key_account})"
                )));
            };
            let (account, key_arn) = (owner.to_owned(), key.metadata.arn.clone());
            let at = key_node.loc.clone();
            match event_name.as_str() {
                "PutKeyPolicy" => {
                    let doc = document(&params()?.req("policy")?)?;
                    (
                        vec![(
                            Edit::PutKeyPolicy {
                                account,
                                key_arn: key_arn.clone(),
                                document: doc,
                            },
                            at,
                        )],
                        format!("key policy of {key_arn}"),
                    )
                }
                "DisableKey" | "ScheduleKeyDeletion" | "CancelKeyDeletion" => {
                    // A key scheduled for deletion is `PendingDeletion`; cancelling the
                    // deletion leaves it `Disabled` (AWS KMS Developer Guide, "Deleting AWS
                    // KMS keys").
                    let state = if event_name == "ScheduleKeyDeletion" {
                        KeyState::PendingDeletion
                    } else {
                        KeyState::Disabled
                    };
                    let changed = format!("state of key {key_arn} ({})", state.as_str());
                    (
                        vec![(
                            Edit::SetKeyState {
                                account,
                                key_arn,
                                state,
                            },
                            at,
                        )],
                        changed,
                    )
                }
                "CreateGrant" => {
                    let grant = grant_entry(record, &params()?, &key_arn)?;
                    let grantee = grant
                        .get("GranteePrincipal")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    (
                        vec![(
                            Edit::AddGrant {
                                account,
                                key_arn: key_arn.clone(),
                                grant,
                            },
                            at,
                        )],
                        format!("new grant of key {key_arn} to {grantee}"),
                    )
                }
                "EnableKey" => (
                    vec![(
                        Edit::EnableKey {
                            account,
                            key_arn: key_arn.clone(),
                        },
                        at,
                    )],
                    format!("state of key {key_arn} (enabled)"),
                ),
                _ => {
                    // RevokeGrant names the grant in requestParameters; RetireGrant in
                    // additionalEventData (ct-retire-grant).
                    let from_params = match record.get("requestParameters")? {
                        Some(p) => p.get("grantId")?,
                        None => None,
                    };
                    let from_extra = match record.get("additionalEventData")? {
                        Some(x) => x.get("grantId")?,
                        None => None,
                    };
                    let Some(grant_node) = from_params.or(from_extra) else {
                        return Err(record.loc.key("requestParameters").key("grantId").err(
                            "the record names no grant id (a grant retired by its token cannot be identified)",
                        ));
                    };
                    let grant_id = grant_node.str()?.to_owned();
                    (
                        vec![(
                            Edit::RemoveGrant {
                                account,
                                key_arn: key_arn.clone(),
                                grant_id: grant_id.clone(),
                            },
                            grant_node.loc.clone(),
                        )],
                        format!("grant {grant_id} of key {key_arn}"),
                    )
                }
            }
        }
        (Some("iam"), name) => {
            let account = need_account()?;
            let p = params()?;
            let (holder, holder_key) = if name.ends_with("RolePolicy") {
                (InlineHolder::Role, "roleName")
            } else {
                (InlineHolder::User, "userName")
            };
            let holder_node = p.req(holder_key)?;
            let holder_name = holder_node.str()?.to_owned();
            let noun = if holder == InlineHolder::Role {
                "role"
            } else {
                "user"
            };
            let at = holder_node.loc.clone();
            if name.starts_with("Attach") || name.starts_with("Detach") {
                let arn_node = p.req("policyArn")?;
                let policy_arn = arn_node.str()?.to_owned();
                let edit = if name.starts_with("Attach") {
                    Edit::AttachManagedPolicy {
                        account,
                        holder,
                        holder_name: holder_name.clone(),
                        policy_arn: policy_arn.clone(),
                    }
                } else {
                    Edit::DetachManagedPolicy {
                        account,
                        holder,
                        holder_name: holder_name.clone(),
                        policy_arn: policy_arn.clone(),
                    }
                };
                (
                    vec![(edit, arn_node.loc.clone())],
                    format!("managed policy {policy_arn} of {noun} {holder_name}"),
                )
            } else {
                let policy_name = p.req_str("policyName")?;
                let has = snap
                    .account(&account)
                    .and_then(|a| a.iam.as_ref())
                    .is_some_and(|i| match holder {
                        InlineHolder::Role => i.roles.iter().any(|r| {
                            r.name == holder_name
                                && r.inline_policies
                                    .iter()
                                    .any(|x| x.policy_name.as_deref() == Some(&policy_name))
                        }),
                        InlineHolder::User => i.users.iter().any(|u| {
                            u.name == holder_name
                                && u.inline_policies
                                    .iter()
                                    .any(|x| x.policy_name.as_deref() == Some(&policy_name))
                        }),
                    });
                let remove = Edit::RemoveInlinePolicy {
                    account: account.clone(),
                    holder,
                    holder_name: holder_name.clone(),
                    policy_name: policy_name.clone(),
                };
                let mut edits = Vec::new();
                if name.starts_with("Put") {
                    // PutRolePolicy replaces a policy of that name, or adds one.
                    let doc = document(&p.req("policyDocument")?)?;
                    if has {
                        edits.push((remove, at.clone()));
                    }
                    edits.push((
                        Edit::AddInlinePolicy {
                            account,
                            holder,
                            holder_name: holder_name.clone(),
                            policy_name: policy_name.clone(),
                            document: doc,
                        },
                        at,
                    ));
                } else {
                    edits.push((remove, at));
                }
                (
                    edits,
                    format!("inline policy {policy_name} of {noun} {holder_name}"),
                )
            }
        }
        (Some("organizations"), "UpdatePolicy") => {
            let p = params()?;
            let id_node = p.req("policyId")?;
            let policy_id = id_node.str()?.to_owned();
            match p.get("content")? {
                Some(content) => (
                    vec![(
                        Edit::UpdateOrgPolicy {
                            policy_id: policy_id.clone(),
                            document: document(&content)?,
                        },
                        id_node.loc.clone(),
                    )],
                    format!("content of organization policy {policy_id}"),
                ),
                // A new name or description changes no permission.
                None => (
                    Vec::new(),
                    format!("name or description of organization policy {policy_id} (the content is unchanged)"),
                ),
            }
        }
        _ => {
            return Err(record.loc.key("eventName").err(format!(
                "`{event_name}` from `{event_source}` is not supported"
            )))
        }
    };
    let change = ChangeRef {
        event_source,
        event_name,
        event_id: record.opt_str("eventID")?,
        event_time: record.opt_str("eventTime")?,
        account,
        actor,
        changed,
    };
    Ok((edits, change))
}

/// The calls that can change an S3/KMS read path and that the live function listens for, as
/// `eventSource` service and `eventName`: bucket policy, default encryption, Object
/// Ownership, Block Public Access and ACL; key policy, grants, key state and aliases; the
/// identity policies, permissions boundaries and group memberships of IAM principals; and
/// the SCPs and RCPs of an organization. Every entry is read by [`read_change`]; the
/// EventBridge rules of template.yaml list exactly these (tests/deploy.rs).
pub const CHANGE_EVENTS: &[(&str, &str)] = &[
    ("s3", "PutBucketPolicy"),
    ("s3", "DeleteBucketPolicy"),
    ("s3", "PutBucketEncryption"),
    ("s3", "DeleteBucketEncryption"),
    ("s3", "PutBucketOwnershipControls"),
    ("s3", "DeleteBucketOwnershipControls"),
    ("s3", "PutPublicAccessBlock"),
    ("s3", "DeletePublicAccessBlock"),
    ("s3", "PutBucketAcl"),
    ("kms", "PutKeyPolicy"),
    ("kms", "CreateGrant"),
    ("kms", "RevokeGrant"),
    ("kms", "RetireGrant"),
    ("kms", "DisableKey"),
    ("kms", "EnableKey"),
    ("kms", "ScheduleKeyDeletion"),
    ("kms", "CancelKeyDeletion"),
    ("kms", "CreateAlias"),
    ("kms", "UpdateAlias"),
    ("kms", "DeleteAlias"),
    ("iam", "PutRolePolicy"),
    ("iam", "DeleteRolePolicy"),
    ("iam", "AttachRolePolicy"),
    ("iam", "DetachRolePolicy"),
    ("iam", "PutUserPolicy"),
    ("iam", "DeleteUserPolicy"),
    ("iam", "AttachUserPolicy"),
    ("iam", "DetachUserPolicy"),
    ("iam", "PutGroupPolicy"),
    ("iam", "DeleteGroupPolicy"),
    ("iam", "AttachGroupPolicy"),
    ("iam", "DetachGroupPolicy"),
    ("iam", "CreatePolicyVersion"),
    ("iam", "SetDefaultPolicyVersion"),
    ("iam", "PutRolePermissionsBoundary"),
    ("iam", "DeleteRolePermissionsBoundary"),
    ("iam", "PutUserPermissionsBoundary"),
    ("iam", "DeleteUserPermissionsBoundary"),
    ("iam", "AddUserToGroup"),
    ("iam", "RemoveUserFromGroup"),
    ("iam", "DeleteRole"),
    ("iam", "DeleteUser"),
    ("organizations", "AttachPolicy"),
    ("organizations", "DetachPolicy"),
    ("organizations", "UpdatePolicy"),
    ("organizations", "DeletePolicy"),
];

/// A resource whose state a change alters, as the collector caches it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Touched {
    /// A bucket's policy, encryption, ownership, Block Public Access or ACL.
    Bucket {
        /// The bucket name.
        name: String,
    },
    /// A key's policy, grants or state.
    Key {
        /// The key as the record names it (`keyId`: an id or an ARN).
        reference: String,
        /// Its ARN, when the record gives it or its id, Region and account make it.
        #[serde(skip_serializing_if = "Option::is_none")]
        arn: Option<String>,
    },
    /// The aliases of the change's account and Region (which key an alias names).
    Aliases,
    /// An IAM role: its policies, boundary, or existence.
    Role {
        /// The role name.
        name: String,
    },
    /// An IAM user: its policies, boundary, groups, or existence.
    User {
        /// The user name.
        name: String,
    },
    /// An IAM group's policies (and so those of every member).
    Group {
        /// The group name.
        name: String,
    },
    /// A managed policy's default version (and so every principal it is attached to).
    ManagedPolicy {
        /// The policy ARN.
        arn: String,
    },
    /// The organization's SCPs or RCPs, which may apply to any member account.
    Organization {
        /// The policy id (`p-...`).
        policy_id: String,
    },
}

/// A successful change that can alter an S3/KMS read path, and what it touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeEvent {
    /// `eventID`, when the record has one.
    pub event_id: Option<String>,
    /// `eventSource`.
    pub event_source: String,
    /// `eventName`.
    pub event_name: String,
    /// The account the change was made in (`recipientAccountId`, else
    /// `userIdentity.accountId`).
    pub account: Option<String>,
    /// `awsRegion`.
    pub region: Option<String>,
    /// What it changed.
    pub touches: Vec<Touched>,
    /// Who made it (`userIdentity.arn`), when the record says.
    pub actor: Option<String>,
    /// `eventTime`, when the record has one.
    pub event_time: Option<String>,
}

impl ChangeEvent {
    /// The change as impact reports name it, with what it changed in words
    /// (`bucket doc-example-bucket`, `role reader`).
    pub fn to_ref(&self) -> ChangeRef {
        let changed: Vec<String> = self
            .touches
            .iter()
            .map(|t| match t {
                Touched::Bucket { name } => format!("bucket {name}"),
                Touched::Key { reference, arn } => {
                    format!("key {}", arn.as_deref().unwrap_or(reference))
                }
                Touched::Aliases => "the aliases of the account and Region".to_owned(),
                Touched::Role { name } => format!("role {name}"),
                Touched::User { name } => format!("user {name}"),
                Touched::Group { name } => format!("group {name}"),
                Touched::ManagedPolicy { arn } => format!("managed policy {arn}"),
                Touched::Organization { policy_id } => format!("organization policy {policy_id}"),
            })
            .collect();
        ChangeRef {
            event_source: self.event_source.clone(),
            event_name: self.event_name.clone(),
            event_id: self.event_id.clone(),
            event_time: self.event_time.clone(),
            account: self.account.clone(),
            actor: self.actor.clone(),
            changed: changed.join(", "),
        }
    }
}

/// Whether `eventName` from `eventSource` is one of [`CHANGE_EVENTS`].
pub(crate) fn is_change_event(event_source: &str, event_name: &str) -> bool {
    let service = change_service(event_source);
    CHANGE_EVENTS
        .iter()
        .any(|(s, n)| Some(*s) == service && *n == event_name)
}

/// What a successful change record of [`CHANGE_EVENTS`] touches. The request parameters
/// named are those of the CloudTrail pages the module documentation cites; the key is found
/// as [`apply_change`] finds it.
pub(crate) fn read_change(record: &Node<'_>) -> Result<ChangeEvent, PathError> {
    let event_name = record.req_str("eventName")?;
    let event_source = record.req_str("eventSource")?;
    let account = record_account(record)?;
    let region = record.opt_str("awsRegion")?;
    let params = || record.req("requestParameters");
    let name = |key: &str| params()?.req_str(key);
    let mut touches = Vec::new();
    match (change_service(&event_source), event_name.as_str()) {
        (Some("s3"), _) => touches.push(Touched::Bucket {
            name: name("bucketName")?,
        }),
        (Some("kms"), "CreateAlias" | "UpdateAlias" | "DeleteAlias") => {
            touches.push(Touched::Aliases);
            if let Some(target) = params()?.opt_str("targetKeyId")? {
                let arn = key_arn_of(&target, None, account.as_deref(), region.as_deref());
                touches.push(Touched::Key {
                    reference: target,
                    arn,
                });
            }
        }
        (Some("kms"), _) => {
            let reference = key_node(record)?.str()?.to_owned();
            // The record's `resources` gives the key ARN even when `keyId` is a bare id.
            let listed = match record.get("resources")? {
                Some(r) => match r.arr()?.into_iter().next() {
                    Some(first) => first.opt_str("ARN")?,
                    None => None,
                },
                None => None,
            };
            let arn = key_arn_of(
                &reference,
                listed.as_deref(),
                account.as_deref(),
                region.as_deref(),
            );
            touches.push(Touched::Key { reference, arn });
        }
        (Some("iam"), n) => {
            if n.ends_with("PolicyVersion") {
                touches.push(Touched::ManagedPolicy {
                    arn: name("policyArn")?,
                });
            } else if n.contains("Role") {
                touches.push(Touched::Role {
                    name: name("roleName")?,
                });
            } else if n.contains("Group") {
                // AddUserToGroup and RemoveUserFromGroup name both.
                if n.contains("User") {
                    touches.push(Touched::User {
                        name: name("userName")?,
                    });
                }
                touches.push(Touched::Group {
                    name: name("groupName")?,
                });
            } else {
                touches.push(Touched::User {
                    name: name("userName")?,
                });
            }
        }
        (Some("organizations"), _) => touches.push(Touched::Organization {
            policy_id: name("policyId")?,
        }),
        _ => {
            return Err(record.loc.key("eventName").err(format!(
                "`{event_name}` from `{event_source}` is not a change this tool reads"
            )))
        }
    }
    let actor = match record.get("userIdentity")? {
        Some(u) => u.opt_str("arn")?,
        None => None,
    };
    Ok(ChangeEvent {
        event_id: record.opt_str("eventID")?,
        event_source,
        event_name,
        account,
        region,
        touches,
        actor,
        event_time: record.opt_str("eventTime")?,
    })
}

/// A key's ARN: the one the record lists, the reference itself when it is an ARN, or one
/// made from a bare key id, the Region and the account. Alias names give none.
fn key_arn_of(
    reference: &str,
    listed: Option<&str>,
    account: Option<&str>,
    region: Option<&str>,
) -> Option<String> {
    if let Some(arn) = listed.filter(|a| kms_key_arn(a).is_some()) {
        return Some(arn.to_owned());
    }
    if kms_key_arn(reference).is_some() {
        return Some(reference.to_owned());
    }
    let bare_id = !reference.is_empty() && !reference.contains(':') && !reference.contains('/');
    match (bare_id, account, region) {
        (true, Some(account), Some(region)) => Some(key_arn(
            Partition::of_region(region),
            region,
            account,
            reference,
        )),
        _ => None,
    }
}

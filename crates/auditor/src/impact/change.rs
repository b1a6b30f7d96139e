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

use crate::diagnose::edit::{Edit, InlineHolder, OrgLevel};
use crate::event::CLOUDTRAIL_DETAIL_TYPE;
use crate::reader::{reject_duplicate_keys, Node, PathError};
use crate::refs::{is_account_id, is_service_name, key_arn, kms_key_arn, s3_group_uri, Partition};
use crate::snapshot::{
    AclGrant, AclPermission, DefaultEncryption, Grantee, KeyState, ObjectOwnership,
    PublicAccessBlock, Snapshot,
};

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

/// The calls `--change` applies, as `eventSource` service and `eventName`: every one of
/// [`CHANGE_EVENTS`]. A record that does not carry what its change needs (a new default
/// policy version without its document, an SCP attached to an OU the snapshot does not name)
/// is refused with what is missing.
pub const SUPPORTED: &[(&str, &str)] = CHANGE_EVENTS;

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
    let ctx = Ctx {
        snap,
        record,
        event_name: &event_name,
        account: account.clone(),
        region,
    };
    let (edits, changed): (Edits, String) = match service {
        Some("s3") => s3_edits(&ctx)?,
        Some("kms") => kms_edits(&ctx)?,
        Some("iam") => iam_edits(&ctx)?,
        Some("organizations") => org_edits(&ctx)?,
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

/// What every family's reader needs from the record.
struct Ctx<'s, 'a> {
    snap: &'s Snapshot,
    record: &'s Node<'a>,
    event_name: &'s str,
    account: Option<String>,
    region: String,
}

/// The advice every refusal for want of evidence ends with.
const USE_AFTER: &str =
    "collect a snapshot after the change and compare with `impact --before … --after …`";

impl<'a> Ctx<'_, 'a> {
    fn params(&self) -> Result<Node<'a>, PathError> {
        self.record.req("requestParameters")
    }

    fn account(&self) -> Result<String, PathError> {
        self.account.clone().ok_or_else(|| {
            self.record
                .loc
                .key("recipientAccountId")
                .err("the record names no account (recipientAccountId or userIdentity.accountId)")
        })
    }

    /// `responseElements.<outer>.<inner>`, when the record has it.
    fn response(&self, outer: &str, inner: &str) -> Result<Option<Node<'a>>, PathError> {
        match self.record.get("responseElements")? {
            Some(r) if r.v.is_object() => match r.get(outer)? {
                Some(o) if o.v.is_object() => o.get(inner),
                _ => Ok(None),
            },
            _ => Ok(None),
        }
    }
}

/// An XML element CloudTrail converted to JSON: one child is an object, several an array.
fn xml_list<'a>(node: &Node<'a>) -> Result<Vec<Node<'a>>, PathError> {
    if node.v.is_array() {
        node.arr()
    } else {
        node.obj()?;
        Ok(vec![node.clone()])
    }
}

/// A boolean of a converted XML body: `true`, or the text `"true"`.
fn xml_bool(node: &Node<'_>, key: &str) -> Result<bool, PathError> {
    match node.get(key)? {
        None => Ok(false),
        Some(n) => match n.v {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(n.err(format!(
                "expected true or false, found {}",
                crate::reader::kind(n.v)
            ))),
        },
    }
}

/// A request header CloudTrail records as a one-element list (`"x-amz-acl": ["public-read"]`)
/// or a string.
fn header(params: &Node<'_>, key: &str) -> Result<Option<String>, PathError> {
    match params.get(key)? {
        None => Ok(None),
        Some(n) => match n.v {
            Value::String(s) => Ok(Some(s.clone())),
            Value::Array(items) => match items.as_slice() {
                [Value::String(s)] => Ok(Some(s.clone())),
                _ => Err(n.err("expected one header value")),
            },
            _ => Err(n.err(format!(
                "expected a header value, found {}",
                crate::reader::kind(n.v)
            ))),
        },
    }
}

/// S3 bucket configuration calls. CloudTrail records the request body converted from XML
/// ("CloudTrail log file entries for Amazon S3",
/// https://docs.aws.amazon.com/AmazonS3/latest/userguide/cloudtrail-logging-understanding-s3-entries.html):
/// the root element (`ServerSideEncryptionConfiguration`, `OwnershipControls`,
/// `PublicAccessBlockConfiguration`, `AccessControlPolicy`) is a member of
/// `requestParameters`, a repeated child (`Rule`, `Grant`) an object or an array.
fn s3_edits(ctx: &Ctx<'_, '_>) -> Result<(Edits, String), PathError> {
    let p = ctx.params()?;
    let name_node = p.req("bucketName")?;
    let bucket = name_node.str()?.to_owned();
    let Some((owner, current)) = ctx.snap.bucket(&bucket) else {
        return Err(name_node.err(format!("bucket `{bucket}` is not in the snapshot")));
    };
    let account = owner.to_owned();
    let at = name_node.loc.clone();
    let (edit, changed) = match ctx.event_name {
        "PutBucketPolicy" => (
            // CloudTrail records the new policy as the object `bucketPolicy`.
            Edit::PutBucketPolicy {
                account,
                bucket: bucket.clone(),
                document: document(&p.req("bucketPolicy")?)?,
            },
            format!("bucket policy of {bucket}"),
        ),
        "DeleteBucketPolicy" => (
            Edit::DeleteBucketPolicy {
                account,
                bucket: bucket.clone(),
            },
            format!("bucket policy of {bucket} (deleted)"),
        ),
        "PutBucketEncryption" => {
            let config = p.req("ServerSideEncryptionConfiguration")?;
            let rules = match config.get("Rule")? {
                Some(r) => r,
                None => config.req("Rules")?,
            };
            let rule = xml_list(&rules)?
                .into_iter()
                .next()
                .ok_or_else(|| rules.err("holds no rule"))?;
            let default = rule.req("ApplyServerSideEncryptionByDefault")?;
            let encryption = DefaultEncryption {
                algorithm: default.req_str("SSEAlgorithm")?,
                kms_key_id: default.opt_str("KMSMasterKeyID")?,
                bucket_key_enabled: xml_bool(&rule, "BucketKeyEnabled")?,
            };
            let changed = format!(
                "default encryption of {bucket} ({}{})",
                encryption.algorithm,
                encryption
                    .kms_key_id
                    .as_deref()
                    .map(|k| format!(" with {k}"))
                    .unwrap_or_default()
            );
            (
                Edit::SetBucketEncryption {
                    account,
                    bucket,
                    encryption,
                },
                changed,
            )
        }
        // Deleting the configuration leaves SSE-S3, the base level of every bucket
        // (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucketEncryption.html).
        "DeleteBucketEncryption" => (
            Edit::SetBucketEncryption {
                account,
                bucket: bucket.clone(),
                encryption: DefaultEncryption {
                    algorithm: "AES256".into(),
                    kms_key_id: None,
                    bucket_key_enabled: false,
                },
            },
            format!("default encryption of {bucket} (deleted: SSE-S3)"),
        ),
        "PutBucketOwnershipControls" => {
            let controls = p.req("OwnershipControls")?;
            let rules = match controls.get("Rule")? {
                Some(r) => r,
                None => controls.req("Rules")?,
            };
            let rule = xml_list(&rules)?
                .into_iter()
                .next()
                .ok_or_else(|| rules.err("holds no rule"))?;
            let value = rule.req("ObjectOwnership")?;
            let text = value.str()?;
            let ownership = ObjectOwnership::from_aws(text).ok_or_else(|| {
                value.err(format!(
                    "`{text}` is not an Object Ownership setting; expected `BucketOwnerEnforced`, `BucketOwnerPreferred` or `ObjectWriter`"
                ))
            })?;
            (
                Edit::SetObjectOwnership {
                    account,
                    bucket: bucket.clone(),
                    ownership: Some(ownership),
                },
                format!("Object Ownership of {bucket} ({text})"),
            )
        }
        "DeleteBucketOwnershipControls" => (
            Edit::SetObjectOwnership {
                account,
                bucket: bucket.clone(),
                ownership: None,
            },
            format!("Object Ownership of {bucket} (deleted: ACLs apply)"),
        ),
        "PutPublicAccessBlock" => {
            let c = p.req("PublicAccessBlockConfiguration")?;
            let config = PublicAccessBlock {
                block_public_acls: xml_bool(&c, "BlockPublicAcls")?,
                ignore_public_acls: xml_bool(&c, "IgnorePublicAcls")?,
                block_public_policy: xml_bool(&c, "BlockPublicPolicy")?,
                restrict_public_buckets: xml_bool(&c, "RestrictPublicBuckets")?,
            };
            (
                Edit::SetBucketPublicAccessBlock {
                    account,
                    bucket: bucket.clone(),
                    config: Some(config),
                },
                format!("Block Public Access of {bucket}"),
            )
        }
        "DeletePublicAccessBlock" => (
            Edit::SetBucketPublicAccessBlock {
                account,
                bucket: bucket.clone(),
                config: None,
            },
            format!("Block Public Access of {bucket} (deleted)"),
        ),
        "PutBucketAcl" => {
            let owner_id = current.acl_owner_id.clone().or_else(|| {
                ctx.snap
                    .account(&account)
                    .and_then(|a| a.canonical_id.clone())
            });
            let (owner_id, grants) = acl_of(&p, owner_id)?;
            // With ACLs disabled, S3 accepts only an ACL that gives the owner full control
            // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html).
            let owner_only = grants.iter().all(|g| {
                g.permission == AclPermission::FullControl
                    && matches!(&g.grantee, Grantee::CanonicalUser { id } if Some(id) == owner_id.as_ref())
            });
            if current.acls_disabled() && !owner_only {
                return Err(name_node.err(format!(
                    "bucket `{bucket}` has ACLs disabled (Object Ownership `BucketOwnerEnforced`) in the snapshot; AWS refuses an ACL that grants anyone but the owner, so the snapshot is not the state the change was made in"
                )));
            }
            (
                Edit::SetBucketAcl {
                    account,
                    bucket: bucket.clone(),
                    owner_id,
                    grants,
                },
                format!("ACL of {bucket}"),
            )
        }
        other => {
            return Err(ctx
                .record
                .loc
                .key("eventName")
                .err(format!("`{other}` from S3 is not supported")))
        }
    };
    Ok((vec![(edit, at)], changed))
}

/// The ACL a `PutBucketAcl` record sets: the `AccessControlPolicy` body, a canned ACL
/// (`x-amz-acl`) or grant headers (`x-amz-grant-*`), the three ways the API takes
/// (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketAcl.html). `owner` is the
/// bucket owner's canonical id, which canned ACLs grant `FULL_CONTROL`.
fn acl_of(
    p: &Node<'_>,
    owner: Option<String>,
) -> Result<(Option<String>, Vec<AclGrant>), PathError> {
    if let Some(policy) = p.get("AccessControlPolicy")? {
        let owner_id = match policy.get("Owner")? {
            Some(o) => o.opt_str("ID")?,
            None => None,
        };
        let mut grants = Vec::new();
        if let Some(list) = policy.get("AccessControlList")? {
            if let Some(items) = list.get("Grant")? {
                for g in xml_list(&items)? {
                    grants.push(acl_grant(&g)?);
                }
            }
        }
        return Ok((owner_id.or(owner), grants));
    }
    let owner_grant = |owner: &Option<String>| -> Result<AclGrant, PathError> {
        let id = owner.clone().ok_or_else(|| {
            p.err(format!(
                "the bucket owner's canonical id is not in the snapshot (`canonical_id` of the account or `acl.Owner.ID` of the bucket), so the owner's grant of the new ACL cannot be written: {USE_AFTER}"
            ))
        })?;
        Ok(AclGrant {
            grantee: Grantee::CanonicalUser { id },
            permission: AclPermission::FullControl,
        })
    };
    let group = |path: &str, permission| AclGrant {
        grantee: Grantee::Group {
            uri: s3_group_uri(path),
        },
        permission,
    };
    if let Some(canned) = header(p, "x-amz-acl")? {
        // The canned ACLs of a bucket
        // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/acl-overview.html#canned-acl).
        let mut grants = vec![owner_grant(&owner)?];
        match canned.as_str() {
            "private" | "bucket-owner-read" | "bucket-owner-full-control" => {}
            "public-read" => grants.push(group("global/AllUsers", AclPermission::Read)),
            "public-read-write" => {
                grants.push(group("global/AllUsers", AclPermission::Read));
                grants.push(group("global/AllUsers", AclPermission::Write));
            }
            "authenticated-read" => {
                grants.push(group("global/AuthenticatedUsers", AclPermission::Read))
            }
            "log-delivery-write" => {
                grants.push(group("s3/LogDelivery", AclPermission::Write));
                grants.push(group("s3/LogDelivery", AclPermission::ReadAcp));
            }
            other => {
                return Err(p.loc.key("x-amz-acl").err(format!(
                    "`{other}` is not a canned ACL this tool can expand for a bucket: {USE_AFTER}"
                )))
            }
        }
        return Ok((owner, grants));
    }
    let mut grants = Vec::new();
    let mut any = false;
    for (key, permission) in [
        ("x-amz-grant-full-control", AclPermission::FullControl),
        ("x-amz-grant-read", AclPermission::Read),
        ("x-amz-grant-write", AclPermission::Write),
        ("x-amz-grant-read-acp", AclPermission::ReadAcp),
        ("x-amz-grant-write-acp", AclPermission::WriteAcp),
    ] {
        let Some(value) = header(p, key)? else {
            continue;
        };
        any = true;
        // `id="…", uri="…", emailAddress="…"`, comma-separated.
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (kind, quoted) = item.split_once('=').ok_or_else(|| {
                p.loc
                    .key(key)
                    .err(format!("`{item}` is not `type=\"value\"`"))
            })?;
            let v = quoted.trim().trim_matches('"').to_owned();
            let grantee = match kind.trim() {
                "id" => Grantee::CanonicalUser { id: v },
                "uri" => Grantee::Group { uri: v },
                "emailAddress" => Grantee::Email { address: v },
                other => {
                    return Err(p.loc.key(key).err(format!(
                        "`{other}` is not a grantee type; expected `id`, `uri` or `emailAddress`"
                    )))
                }
            };
            grants.push(AclGrant {
                grantee,
                permission,
            });
        }
    }
    if !any {
        return Err(p.err(format!(
            "the record carries no ACL (no `AccessControlPolicy`, `x-amz-acl` or `x-amz-grant-*`): {USE_AFTER}"
        )));
    }
    Ok((owner, grants))
}

/// One `Grant` of a recorded `AccessControlPolicy`: the grantee's type is the XML attribute
/// `xsi:type`.
fn acl_grant(g: &Node<'_>) -> Result<AclGrant, PathError> {
    let grantee = g.req("Grantee")?;
    let kind = match grantee.opt_str("xsi:type")? {
        Some(k) => Some(k),
        None => grantee.opt_str("Type")?,
    };
    let grantee_value = match kind.as_deref() {
        Some("CanonicalUser") => Grantee::CanonicalUser {
            id: grantee.req_str("ID")?,
        },
        Some("Group") => Grantee::Group {
            uri: grantee.req_str("URI")?,
        },
        Some("AmazonCustomerByEmail") => Grantee::Email {
            address: grantee.req_str("EmailAddress")?,
        },
        _ => {
            return Err(grantee
                .loc
                .key("xsi:type")
                .err("expected `CanonicalUser`, `Group` or `AmazonCustomerByEmail`"))
        }
    };
    let permission_node = g.req("Permission")?;
    let permission = match permission_node.str()? {
        "FULL_CONTROL" => AclPermission::FullControl,
        "READ" => AclPermission::Read,
        "WRITE" => AclPermission::Write,
        "READ_ACP" => AclPermission::ReadAcp,
        "WRITE_ACP" => AclPermission::WriteAcp,
        other => return Err(permission_node.err(format!("`{other}` is not an ACL permission"))),
    };
    Ok(AclGrant {
        grantee: grantee_value,
        permission,
    })
}

/// KMS calls: key policy, grants, key state and aliases ("Logging AWS KMS API calls with AWS
/// CloudTrail", https://docs.aws.amazon.com/kms/latest/developerguide/logging-using-cloudtrail.html).
fn kms_edits(ctx: &Ctx<'_, '_>) -> Result<(Edits, String), PathError> {
    let key_account = ctx.account()?;
    let region = ctx.region.as_str();
    if ctx.event_name.ends_with("Alias") {
        let p = ctx.params()?;
        let alias_node = p.req("aliasName")?;
        let alias = alias_node.str()?.to_owned();
        let named = ctx
            .snap
            .key(&alias, region, &key_account)
            .map(|(_, k)| k.metadata.arn.clone());
        let target = if ctx.event_name == "DeleteAlias" {
            None
        } else {
            let t = p.req("targetKeyId")?;
            let reference = t.str()?;
            let Some((_, key)) = ctx.snap.key(reference, region, &key_account) else {
                return Err(t.err(format!(
                    "key `{reference}` is not in the snapshot (looked up in {region} of account {key_account})"
                )));
            };
            Some(key.metadata.arn.clone())
        };
        // AWS refuses CreateAlias for an alias that exists and UpdateAlias or DeleteAlias
        // for one that does not: a record that contradicts the snapshot is refused.
        match (ctx.event_name, &named) {
            ("CreateAlias", Some(old)) => {
                return Err(alias_node.err(format!(
                    "`{alias}` already names key {old} in the snapshot; AWS refuses to create an alias that exists, so the snapshot is not the state the change was made in"
                )))
            }
            ("UpdateAlias" | "DeleteAlias", None) => {
                return Err(alias_node.err(format!(
                    "`{alias}` names no key of {region} in account {key_account} in the snapshot; AWS refuses to {} an alias that does not exist",
                    if ctx.event_name == "DeleteAlias" { "delete" } else { "update" }
                )))
            }
            _ => {}
        }
        let changed = match &target {
            Some(arn) => format!("alias {alias} (now {arn})"),
            None => format!("alias {alias} (deleted)"),
        };
        return Ok((
            vec![(
                Edit::SetAlias {
                    account: key_account,
                    region: region.to_owned(),
                    alias,
                    key_arn: target,
                },
                alias_node.loc.clone(),
            )],
            changed,
        ));
    }
    let record = ctx.record;
    let key_node = key_node(record)?;
    let reference = key_node.str()?;
    let Some((owner, key)) = ctx.snap.key(reference, region, &key_account) else {
        return Err(key_node.err(format!(
            "key `{reference}` is not in the snapshot (looked up in {region} of account {key_account})"
        )));
    };
    let (account, key_arn) = (owner.to_owned(), key.metadata.arn.clone());
    let at = key_node.loc.clone();
    Ok(match ctx.event_name {
        "PutKeyPolicy" => {
            let doc = document(&ctx.params()?.req("policy")?)?;
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
            // A key scheduled for deletion is `PendingDeletion`; cancelling the deletion
            // leaves it `Disabled` (AWS KMS Developer Guide, "Deleting AWS KMS keys").
            let state = if ctx.event_name == "ScheduleKeyDeletion" {
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
            let grant = grant_entry(record, &ctx.params()?, &key_arn)?;
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
                return Err(record.loc.key("requestParameters").key("grantId").err(format!(
                    "the record names no grant id (a grant retired by its token cannot be identified): {USE_AFTER}"
                )));
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
    })
}

/// IAM calls ("Logging IAM and AWS STS API calls with AWS CloudTrail",
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/cloudtrail-integration.html): the
/// request parameters are the API's, camel-cased (`roleName`, `policyArn`,
/// `permissionsBoundary`, `setAsDefault`).
fn iam_edits(ctx: &Ctx<'_, '_>) -> Result<(Edits, String), PathError> {
    let account = ctx.account()?;
    let p = ctx.params()?;
    let name = ctx.event_name;
    let one = |edit: Edit, at: &crate::reader::Loc, changed: String| {
        Ok((vec![(edit, at.clone())], changed))
    };
    match name {
        "AddUserToGroup" | "RemoveUserFromGroup" => {
            let user_node = p.req("userName")?;
            let user = user_node.str()?.to_owned();
            let group = p.req_str("groupName")?;
            let member = name == "AddUserToGroup";
            let changed = format!(
                "membership of user {user} in group {group} ({})",
                if member { "added" } else { "removed" }
            );
            return one(
                Edit::SetGroupMembership {
                    account,
                    user,
                    group,
                    member,
                },
                &user_node.loc,
                changed,
            );
        }
        "CreatePolicyVersion" | "SetDefaultPolicyVersion" => {
            return policy_version_edits(ctx, &p, account);
        }
        _ => {}
    }
    let (holder, holder_key) = if name.contains("Role") {
        (InlineHolder::Role, "roleName")
    } else if name.contains("Group") {
        (InlineHolder::Group, "groupName")
    } else {
        (InlineHolder::User, "userName")
    };
    let holder_node = p.req(holder_key)?;
    let holder_name = holder_node.str()?.to_owned();
    let noun = match holder {
        InlineHolder::Role => "role",
        InlineHolder::User => "user",
        InlineHolder::Group => "group",
    };
    let at = holder_node.loc.clone();
    if name == "DeleteRole" || name == "DeleteUser" {
        // AWS deletes a role or user only once its policies are gone (those removals are
        // changes of their own); the state after is the principal gone with everything.
        return one(
            Edit::DeleteIdentity {
                account,
                holder,
                name: holder_name.clone(),
            },
            &at,
            format!("{noun} {holder_name} (deleted)"),
        );
    }
    if name.ends_with("PermissionsBoundary") {
        let policy_arn = if name.starts_with("Put") {
            Some(p.req_str("permissionsBoundary")?)
        } else {
            None
        };
        let changed = format!(
            "permissions boundary of {noun} {holder_name} ({})",
            policy_arn.as_deref().unwrap_or("removed")
        );
        let at = match p.get("permissionsBoundary")? {
            Some(n) => n.loc,
            None => at,
        };
        return one(
            Edit::SetPermissionsBoundary {
                account,
                holder,
                holder_name,
                policy_arn,
            },
            &at,
            changed,
        );
    }
    if name.starts_with("Attach") || name.starts_with("Detach") {
        let arn_node = p.req("policyArn")?;
        let policy_arn = arn_node.str()?.to_owned();
        let changed = format!("managed policy {policy_arn} of {noun} {holder_name}");
        let edit = if name.starts_with("Attach") {
            Edit::AttachManagedPolicy {
                account,
                holder,
                holder_name,
                policy_arn,
            }
        } else {
            Edit::DetachManagedPolicy {
                account,
                holder,
                holder_name,
                policy_arn,
            }
        };
        return one(edit, &arn_node.loc, changed);
    }
    // Put/Delete{Role,User,Group}Policy.
    let policy_name = p.req_str("policyName")?;
    let has = ctx
        .snap
        .account(&account)
        .and_then(|a| a.iam.as_ref())
        .is_some_and(|i| {
            let lists: Vec<&Vec<crate::snapshot::NamedPolicy>> = match holder {
                InlineHolder::Role => i
                    .roles
                    .iter()
                    .filter(|r| r.name == holder_name)
                    .map(|r| &r.inline_policies)
                    .collect(),
                InlineHolder::User => i
                    .users
                    .iter()
                    .filter(|u| u.name == holder_name)
                    .map(|u| &u.inline_policies)
                    .collect(),
                InlineHolder::Group => i
                    .groups
                    .iter()
                    .filter(|g| g.name == holder_name)
                    .map(|g| &g.inline_policies)
                    .collect(),
            };
            lists
                .iter()
                .flat_map(|l| l.iter())
                .any(|x| x.policy_name.as_deref() == Some(&policy_name))
        });
    let remove = Edit::RemoveInlinePolicy {
        account: account.clone(),
        holder,
        holder_name: holder_name.clone(),
        policy_name: policy_name.clone(),
    };
    let mut edits = Vec::new();
    if name.starts_with("Put") {
        // Put…Policy replaces a policy of that name, or adds one.
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
    Ok((
        edits,
        format!("inline policy {policy_name} of {noun} {holder_name}"),
    ))
}

/// `CreatePolicyVersion` and `SetDefaultPolicyVersion`. The snapshot keeps only the default
/// version of a managed policy, so a change of default is applied when the record carries
/// the document that becomes the default, and refused otherwise.
fn policy_version_edits(
    ctx: &Ctx<'_, '_>,
    p: &Node<'_>,
    account: String,
) -> Result<(Edits, String), PathError> {
    let arn_node = p.req("policyArn")?;
    let policy_arn = arn_node.str()?.to_owned();
    let current = ctx
        .snap
        .account(&account)
        .and_then(|a| a.iam.as_ref())
        .and_then(|i| i.managed_policies.get(&policy_arn));
    if ctx.event_name == "SetDefaultPolicyVersion" {
        let version_node = p.req("versionId")?;
        let version = version_node.str()?.to_owned();
        let current_version = current.and_then(|m| m.default_version_id.clone());
        if current_version.as_deref() == Some(version.as_str())
            && current.is_some_and(|m| m.document.is_some())
        {
            return Ok((
                Vec::new(),
                format!("default version of managed policy {policy_arn} ({version}, already the default in the snapshot: nothing changes)"),
            ));
        }
        return Err(version_node.err(format!(
            "the record names version {version} of {policy_arn} but not its document, and the snapshot keeps only the default version ({}): {USE_AFTER}",
            current_version.as_deref().unwrap_or("none listed")
        )));
    }
    let set_as_default = match p.get("setAsDefault")? {
        None => false,
        Some(n) => match n.v {
            Value::Bool(b) => *b,
            Value::String(s) => s.eq_ignore_ascii_case("true"),
            _ => return Err(n.err("expected true or false")),
        },
    };
    let version_id = match ctx.response("policyVersion", "versionId")? {
        Some(v) => Some(v.str()?.to_owned()),
        None => None,
    };
    if !set_as_default {
        return Ok((
            Vec::new(),
            format!(
                "new version {} of managed policy {policy_arn}, not the default (every permission is unchanged)",
                version_id.as_deref().unwrap_or("(unnamed)")
            ),
        ));
    }
    let Some(doc_node) = p.get("policyDocument")? else {
        return Err(arn_node.loc.err(format!(
            "the record sets a new default version of {policy_arn} but does not carry its document (`requestParameters.policyDocument`): {USE_AFTER}"
        )));
    };
    let doc = document(&doc_node)?;
    let changed = format!(
        "default version of managed policy {policy_arn} ({})",
        version_id.as_deref().unwrap_or("new")
    );
    Ok((
        vec![(
            Edit::SetDefaultPolicyVersion {
                account,
                policy_arn,
                version_id,
                document: doc,
            },
            doc_node.loc,
        )],
        changed,
    ))
}

/// Organizations calls on SCPs and RCPs ("Logging AWS Organizations API calls with AWS
/// CloudTrail",
/// https://docs.aws.amazon.com/organizations/latest/userguide/orgs_cloudtrail-integration.html).
/// The snapshot lists each account's chain root first and account last, without naming the
/// OUs between: attachments to the root and to an account can be placed, an OU's cannot.
fn org_edits(ctx: &Ctx<'_, '_>) -> Result<(Edits, String), PathError> {
    let p = ctx.params()?;
    let id_node = p.req("policyId")?;
    let policy_id = id_node.str()?.to_owned();
    let at = id_node.loc.clone();
    match ctx.event_name {
        "UpdatePolicy" => {
            // The request carries `content` when it changes; the response always carries
            // the policy as it now is.
            let content = match p.get("content")? {
                Some(c) => Some(c),
                None => ctx.response("policy", "content")?,
            };
            let Some(content) = content else {
                return Err(at.err(format!(
                    "the record carries no content for {policy_id} (neither `requestParameters.content` nor `responseElements.policy.content`): {USE_AFTER}"
                )));
            };
            Ok((
                vec![(
                    Edit::UpdateOrgPolicy {
                        policy_id: policy_id.clone(),
                        document: document(&content)?,
                    },
                    at,
                )],
                format!("content of organization policy {policy_id}"),
            ))
        }
        "DeletePolicy" => {
            let listed = ctx.snap.accounts.values().any(|a| {
                a.organization.as_ref().is_some_and(|o| {
                    o.scp.iter().chain(o.rcp.iter()).flatten().any(|np| {
                        crate::diagnose::edit::org_policy_id(&np.source) == Some(policy_id.as_str())
                    })
                })
            });
            if !listed {
                return Ok((
                    Vec::new(),
                    format!("organization policy {policy_id} (deleted; the snapshot lists it nowhere, so no path changes)"),
                ));
            }
            Ok((
                vec![(
                    Edit::DeleteOrgPolicy {
                        policy_id: policy_id.clone(),
                    },
                    at,
                )],
                format!("organization policy {policy_id} (deleted; AWS deletes only a detached policy, so it is removed wherever the snapshot lists it)"),
            ))
        }
        _ => {
            let attach = ctx.event_name == "AttachPolicy";
            let target_node = p.req("targetId")?;
            let target = target_node.str()?.to_owned();
            let (level, accounts) = if is_account_id(&target) {
                if ctx
                    .snap
                    .account(&target)
                    .and_then(|a| a.organization.as_ref())
                    .is_none()
                {
                    return Err(target_node.err(format!(
                        "account {target} and its organization policies are not in the snapshot"
                    )));
                }
                (OrgLevel::Account, vec![target.clone()])
            } else if target.starts_with("r-") {
                (OrgLevel::Root, root_members(ctx.snap, &target_node)?)
            } else {
                return Err(target_node.err(format!(
                    "`{target}` is an organizational unit (or an unknown target); the snapshot lists each account's policies by level without naming the OUs, so the accounts under it are unknown: {USE_AFTER}"
                )));
            };
            let edits = accounts
                .into_iter()
                .map(|account| {
                    let edit = if attach {
                        Edit::AttachOrgPolicy {
                            account,
                            level,
                            policy_id: policy_id.clone(),
                        }
                    } else {
                        Edit::DetachOrgPolicy {
                            account,
                            level,
                            policy_id: policy_id.clone(),
                        }
                    };
                    (edit, target_node.loc.clone())
                })
                .collect();
            Ok((
                edits,
                format!(
                    "organization policy {policy_id} {} {target}",
                    if attach {
                        "attached to"
                    } else {
                        "detached from"
                    }
                ),
            ))
        }
    }
}

/// The accounts under the organization root: every account with organization data, all
/// naming the same organization (a snapshot of two organizations cannot say whose root the
/// record's `r-…` is).
fn root_members(snap: &Snapshot, target: &Node<'_>) -> Result<Vec<String>, PathError> {
    let members: Vec<(&String, Option<&str>)> = snap
        .accounts
        .iter()
        .filter_map(|(id, a)| a.organization.as_ref().map(|o| (id, o.id.as_deref())))
        .collect();
    let mut orgs: Vec<Option<&str>> = members.iter().map(|(_, o)| *o).collect();
    orgs.sort();
    orgs.dedup();
    if members.is_empty() {
        return Err(target.err("no account of the snapshot has organization data"));
    }
    if orgs.len() > 1 {
        return Err(target.err(format!(
            "the snapshot's accounts belong to different organizations ({}), so the root this record names is ambiguous: {USE_AFTER}",
            orgs.iter().map(|o| o.unwrap_or("unnamed")).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(members.into_iter().map(|(id, _)| id.clone()).collect())
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
        /// What `AttachPolicy` or `DetachPolicy` named (`targetId`: an account id, an OU
        /// `ou-...` or the root `r-...`); `None` for `UpdatePolicy` and `DeletePolicy`, which
        /// reach every target the policy is attached to.
        target: Option<String>,
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
                Touched::Organization {
                    policy_id,
                    target: Some(t),
                } => format!("organization policy {policy_id} on {t}"),
                Touched::Organization { policy_id, .. } => {
                    format!("organization policy {policy_id}")
                }
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
            // https://docs.aws.amazon.com/organizations/latest/APIReference/API_AttachPolicy.html
            target: params()?.opt_str("targetId")?,
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

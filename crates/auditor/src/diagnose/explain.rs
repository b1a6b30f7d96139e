//! Words: every sentence the diagnosis writes into a finding or an assumption, in one module,
//! so that wording is reviewed in one place and a new finding adds its text here.

use std::fmt::Display;

use iam_eval::authorize::Miss;
use iam_eval::{Evaluation, Layer};

use super::findings::Code;
use super::fix::Target;
use super::Confidence;
use crate::request::{AwsDenial, DeniedPolicyType};

fn near_miss_text(ev: &Evaluation<'_>, layer: Layer) -> String {
    let mut parts = Vec::new();
    // Only Allow statements are near misses of a missing allow.
    for n in ev
        .near_misses
        .iter()
        .filter(|n| n.statement.layer == layer && n.statement.effect == iam_eval::Effect::Allow)
        .take(4)
    {
        let sid = n
            .statement
            .sid
            .map(|s| format!(" (Sid `{s}`)"))
            .unwrap_or_default();
        let why = match &n.miss {
            Miss::Resource => "its Resource does not cover this ARN".to_owned(),
            Miss::AliasArn => "it names the key by its alias ARN, and an alias ARN in an IAM policy authorizes the alias only, never the key: name the key ARN".to_owned(),
            Miss::Principal => "its Principal does not name this caller".to_owned(),
            Miss::Condition {
                operator,
                key,
                key_absent: true,
            } => format!(
                "its condition `{operator} {key}` fails: the key is absent from this request"
            ),
            Miss::Condition {
                operator,
                key,
                key_absent: false,
            } => format!("its condition `{operator} {key}` is false for this request"),
        };
        parts.push(format!(
            "statement {}{sid} of {} matches the action, but {why}",
            n.statement.index, n.statement.policy
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" Closest: {}.", parts.join("; "))
    }
}

/// The explanation paragraph for a finding reported by the engine for one layer.
#[expect(
    clippy::too_many_arguments,
    reason = "the words of one finding: who, what, where, which layer"
)]
pub(super) fn explain_layer(
    code: Code,
    layer: &Layer,
    explicit: bool,
    caller: &str,
    action: &str,
    resource: &str,
    account: &str,
    ev: &Evaluation<'_>,
    tgt: &Target,
) -> String {
    let denies: Vec<String> = ev
        .statements
        .iter()
        .filter(|s| s.layer == *layer)
        .map(|s| {
            format!(
                "statement {}{} of {}",
                s.index,
                s.sid.map(|x| format!(" (Sid `{x}`)")).unwrap_or_default(),
                s.policy
            )
        })
        .collect();
    if explicit {
        let what = match layer {
            Layer::Resource => match tgt {
                Target::Bucket { bucket, .. } => format!("the bucket policy of `{bucket}`"),
                Target::AccessPoint { name, .. } => format!("the access point policy of `{name}`"),
                Target::Key { arn, .. } => format!("the key policy of `{arn}`"),
            },
            Layer::Identity => format!("an identity-based policy of `{caller}`"),
            Layer::PermissionsBoundary => "the permissions boundary".into(),
            Layer::Session => "the session policy".into(),
            Layer::Scp => format!("a service control policy over account {account}"),
            Layer::Rcp => format!("a resource control policy over account {account}"),
            Layer::VpcEndpoint => format!(
                "the policy of the VPC endpoint the request came through (account {account})"
            ),
        };
        return format!("{action} on `{resource}` is explicitly denied by {what}: {}. An explicit deny wins over every allow.", denies.join(", "));
    }
    let nm = near_miss_text(ev, *layer);
    match code {
        Code::BucketPolicyNoAllow => format!("No statement in the bucket policy allows `{caller}` to {action} `{resource}`. A caller from another account needs the bucket policy (account {account}) to name it, its role or its account.{nm}"),
        Code::AccessPointPolicyNoAllow => format!("No statement in the access point policy (account {account}) allows `{caller}` to {action} `{resource}`. A request through an access point needs the access point policy to allow it (for a caller of another account; one of the access point's own account may be allowed by its IAM policy instead), and the access point policy names the access point object ARN, not the bucket ARN.{nm}"),
        Code::BucketPolicyNoAccessPointDelegation => format!("The request came through an access point, and the bucket policy (account {account}) allows neither `{caller}` nor the access point to {action} `{resource}`. S3 authorizes a request through an access point against the access point policy and the bucket policy both; a bucket usually delegates with a statement for `Principal: *` conditioned on `s3:DataAccessPointAccount` (or `s3:DataAccessPointArn` for an access point another account owns).{nm}"),
        Code::KeyPolicyNoAllow => {
            let Target::Key { arn, .. } = tgt else { return String::new() };
            format!("The key policy of `{arn}` (account {account}) allows neither `{caller}` (or its role) nor its account to use {action}, and no grant does. Unless the key policy allows it, IAM policies cannot grant use of a KMS key.{nm}")
        }
        Code::IdentityPolicyNoAllow => format!("No identity-based policy of `{caller}` (account {account}) allows {action} on `{resource}`. {}{nm}",
            if action.starts_with("kms:") { "For a key in another account the caller's own IAM policy must allow the action on the key's ARN (not an alias ARN), even when the key policy names the role." } else { "Across accounts, the caller's own account must allow the action as well as the resource's policy." }),
        Code::PermissionsBoundaryNoAllow => format!("The permissions boundary of `{caller}` does not allow {action} on `{resource}`; a boundary caps what identity policies can grant.{nm}"),
        Code::SessionPolicyNoAllow => format!("The session policy of `{caller}` does not allow {action}; session policies cap the session's permissions.{nm}"),
        Code::ScpNoAllow => format!("Some level of the service control policies over account {account} (root, OUs, account) allows no {action}: SCPs must allow an action at every level.{nm}"),
        Code::RcpExplicitDeny => format!("A resource control policy over account {account} blocks {action} on `{resource}`."),
        Code::VpcEndpointPolicyNoAllow => format!("The request came through a VPC endpoint whose policy (account {account}, which owns the endpoint) allows no {action} on `{resource}` for `{caller}`. An endpoint policy filters every request that travels through the endpoint, whatever the bucket and IAM policies allow: the same request from outside the VPC is not filtered by it. A data perimeter that allows only buckets of the endpoint's own account (`s3:ResourceAccount`) is the usual cause for a cross-account read.{nm}"),
        _ => format!("{action} on `{resource}` is not allowed.{nm}"),
    }
}

pub(super) fn not_sse_kms_object(other: impl Display) -> String {
    format!(
        "The object is encrypted with `{other}`, not SSE-KMS: S3 makes no KMS request to read it."
    )
}

pub(super) fn write_not_sse_kms_header(alg: impl Display) -> String {
    format!("The request asks for `{alg}` encryption (x-amz-server-side-encryption), not SSE-KMS: S3 makes no KMS request for this write, whatever the bucket default.")
}

pub(super) fn write_kms_without_key_id(alg: impl Display, requester: impl Display) -> String {
    format!("The request asks for `{alg}` without a key id: S3 then uses the AWS managed key `aws/s3` of account {requester}, not the bucket default.")
}

pub(super) fn bucket_missing(bucket: impl Display, hint: impl Display) -> String {
    format!("Bucket `{bucket}` is not in the snapshot: its policy, encryption and key were not evaluated.{hint}")
}

pub(super) fn object_maybe_missing(
    key: impl Display,
    caller: impl Display,
    bucket: impl Display,
) -> String {
    format!("Object `{key}` is not listed in the snapshot. If it does not exist, S3 answers 403 AccessDenied, not 404 NoSuchKey, because `{caller}` may not s3:ListBucket `{bucket}`: check the key's spelling (keys are case-sensitive) before changing policies.")
}

pub(super) fn default_key_assumed(what: impl Display, key: impl Display) -> String {
    format!("The metadata of {what} is not in the snapshot: it is assumed to be encrypted with the bucket's default key `{key}`. Objects written before the default changed, or by writers naming another key, may use a different key (HeadObject shows the real one).")
}

pub(super) fn no_object_metadata(what: impl Display, bucket: impl Display) -> String {
    format!("No HeadObject metadata for {what} in bucket `{bucket}`: the key that actually encrypted it is unknown, so the bucket default was assumed.")
}

pub(super) fn default_sse_s3_assumed(what: impl Display) -> String {
    format!("The metadata of {what} is not in the snapshot; the bucket default (SSE-S3) is assumed, so no KMS request is made.")
}

pub(super) fn no_encryption_data(what: impl Display) -> String {
    format!("The metadata of {what} and the bucket's default encryption are not in the snapshot; S3's default (SSE-S3) is assumed, so no KMS request is made.")
}

pub(super) fn verdict_depends_on_tls(
    decision: impl std::fmt::Debug,
    statements: impl Display,
) -> String {
    format!("The verdict depends on whether the request came over TLS, which the record does not show (no `tlsDetails`): over plain HTTP it is {decision:?}{statements}. Check the caller's endpoint (https://) before changing policies.")
}

pub(super) fn block_public_access(
    bucket: impl Display,
    owner: impl Display,
    caller: impl Display,
) -> String {
    format!("Bucket `{bucket}` has Block Public Access `RestrictPublicBuckets` on (bucket or account level) and its policy is public (a `Principal: \"*\"` grant without a fixed-value condition such as `aws:PrincipalOrgID`). S3 then ignores the public grants for every caller outside account {owner}, so `{caller}` gets nothing from them; S3 reports it as an explicit deny in a resource-based policy.")
}

pub(super) fn object_owner_mismatch(
    key: impl Display,
    writer: impl Display,
    owner: impl Display,
    ownership: impl Display,
    caller: impl Display,
) -> String {
    format!("Object `{key}` is owned by another account ({writer}) than the bucket owner {owner}: Object Ownership is `{ownership}`, and the object was written without `bucket-owner-full-control`. A bucket-policy Allow applies only to objects the bucket owner owns, and the object's ACL grants `{caller}` no READ.")
}

pub(super) fn default_encryption_alias(
    bucket: impl Display,
    alias: impl Display,
    key_arn: impl Display,
) -> String {
    format!("Default encryption of `{bucket}` names the key by alias (`{alias}`). KMS resolves an alias in the requester's account, so objects written by other accounts are encrypted with their own key (or fail), and AWS's own pages disagree on this point. Name the key by its full key ARN: `aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration '{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"aws:kms\",\"KMSMasterKeyID\":\"{key_arn}\"}}}}]}}'`.")
}

pub(super) fn default_encryption_aws_managed(bucket: impl Display, how: impl Display) -> String {
    format!("Default encryption of `{bucket}` uses the AWS managed key `aws/s3`{how}. New objects are then unreadable from any other account; use a customer managed key named by its key ARN.")
}

pub(super) fn object_key_not_default(
    key: impl Display,
    obj_resolved: impl Display,
    default_key: impl Display,
) -> String {
    format!("Object `{key}` is encrypted with `{obj_resolved}`, not with the bucket's default key `{default_key}`: it was written before the default changed or by a writer naming another key. Permissions on the default key do not help for this object.")
}

pub(super) fn stand_in_unparsable(e: impl Display) -> String {
    format!("Internal error: the stand-in key policy does not parse ({e}); the key side of the KMS hop was not evaluated.")
}

pub(super) fn kms_record_from_s3(action: impl Display, bucket: impl Display) -> String {
    format!("This record is S3's request to KMS ({action}) on behalf of the caller: S3 had already authorized the caller's request to bucket `{bucket}`, so only the KMS hop is evaluated.")
}

pub(super) fn kms_record_key_unknown(bucket: impl Display) -> String {
    format!("The record names no key and bucket `{bucket}` is not in the snapshot: the key S3 used cannot be determined, so the KMS hop was not evaluated.")
}

pub(super) fn key_region_mismatch(
    key_arn: impl Display,
    region: impl Display,
    bucket_region: impl Display,
) -> String {
    format!("Key `{key_arn}` is in {region} but bucket is in {bucket_region}: S3 uses only keys in the bucket's Region (it treats multi-Region keys as single-Region keys). KMS answers as if the key did not exist.")
}

pub(super) fn key_not_usable(key_arn: impl Display, key_state: impl Display) -> String {
    format!("Key `{key_arn}` is in state `{key_state}`: KMS refuses every cryptographic request with it (DisabledException / KMSInvalidStateException) whatever the policies say.")
}

pub(super) fn aws_managed_key(
    key_arn: impl Display,
    key_account: impl Display,
    caller: impl Display,
    caller_account: impl Display,
) -> String {
    format!("The object is encrypted with `{key_arn}`, an AWS managed key (`aws/s3`) of account {key_account}. Its key policy cannot be edited and allows only principals of account {key_account} calling through S3, so no policy change lets `{caller}` (account {caller_account}) decrypt it. The objects must be re-encrypted under a customer managed key.")
}

pub(super) fn key_policy_missing(key_arn: impl Display, caller: impl Display) -> String {
    format!("The key policy of `{key_arn}` is not in the snapshot (not collected, or GetKeyPolicy was refused): the key side of the KMS hop is unknown. Causes in the caller's account are still reported; whether the key policy allows `{caller}` is not.")
}

pub(super) fn aws_managed_key_by_alias(key_account: impl Display, caller: impl Display) -> String {
    format!("The object is encrypted with the AWS managed key `aws/s3` of account {key_account}. Its key policy cannot be edited and allows only principals of account {key_account} calling through S3, so `{caller}` can never decrypt it. Re-encrypt the objects under a customer managed key.")
}

pub(super) fn key_missing(
    key_ref: impl Display,
    key_account: impl Display,
    action: impl Display,
    alias_note: impl Display,
) -> String {
    format!("Key `{key_ref}` is not in the snapshot (account {key_account}): the KMS hop ({action}) was not evaluated.{alias_note} Add the key's DescribeKey, GetKeyPolicy and ListGrants output.")
}

pub(super) fn key_not_usable_direct(key_arn: impl Display, key_state: impl Display) -> String {
    format!(
        "Key `{key_arn}` is in state `{key_state}`: KMS refuses cryptographic requests with it."
    )
}

pub(super) fn collection_gap(
    what: impl Display,
    whose: impl Display,
    error: impl Display,
    message: impl Display,
) -> String {
    format!("The collector could not read {what}{whose} ({error}{message}). The diagnosis ran without it: a policy or setting it would have shown may hide or invent a cause. Grant the auditor's read role that permission, or add the data to the snapshot by hand.")
}

pub(super) fn no_organization_data(id: impl Display) -> String {
    format!("Account {id} has no `organization` data in the snapshot: it was evaluated as not under any SCP.")
}

pub(super) fn boundary_missing(boundary: impl Display, principal: impl Display) -> String {
    format!("The permissions boundary `{boundary}` of `{principal}` is not in the snapshot; it was not evaluated (add its document under `Policies`).")
}

pub(super) fn attached_policies_missing(arn: impl Display, missing: impl Display) -> String {
    format!("Policies attached to `{arn}` are not in the snapshot and were not evaluated: {missing}. If one of them allows the request the verdict may change; if one denies it, a cause may be missing.")
}

pub(super) fn principal_not_in_iam(arn: impl Display, id: impl Display) -> String {
    format!("`{arn}` is not in account {id}'s IAM data (GetAccountAuthorizationDetails); its identity policies were not evaluated. Was the role or user deleted, or the snapshot taken before it existed?")
}

pub(super) fn iam_data_missing(id: impl Display, arn: impl Display) -> String {
    format!("Account {id}'s IAM data is not in the snapshot; the identity policies of `{arn}` were not evaluated.")
}

pub(super) fn no_bucket() -> String {
    "The request names no bucket; nothing on the S3 side can be evaluated.".into()
}

pub(super) fn head_object_no_kms() -> String {
    "HeadObject makes no KMS request (unless ChecksumMode is ENABLED on an object with a checksum), so only the S3 hop was evaluated.".into()
}

pub(super) fn write_not_sse_kms() -> String {
    "The write is not SSE-KMS (no encryption header, and the bucket default is not SSE-KMS): no KMS request is made.".into()
}

pub(super) fn bpa_fix_note() -> String {
    "The added statement names the caller, so it is not public and RestrictPublicBuckets does not void it. Turning RestrictPublicBuckets off instead would expose the bucket.".into()
}

pub(super) fn kms_event_names_no_key() -> String {
    "The KMS event names no key (failed KMS calls often omit `resources`); the key hop cannot be evaluated.".into()
}

pub(super) fn federated_user() -> String {
    "The caller is an STS federated user: its permissions are the intersection of the IAM user's policies and the session policy passed to GetFederationToken, which no snapshot holds.".into()
}

pub(super) fn caller_resolved_by_id(id: impl Display, arn: impl Display) -> String {
    format!("The record names the caller only by its unique id `{id}`; it was resolved to `{arn}` through the snapshot's IAM data.")
}

pub(super) fn caller_unidentified(label: impl Display) -> String {
    format!("The caller `{label}` cannot be identified: a resource owner's copy of a cross-account record (userIdentity type AWSAccount) carries only the account and a unique id, and no account in the snapshot has that id. Use the caller's copy of the event (same sharedEventID) from the caller's account, or add that account's IAM data.")
}

/// `needs`: what the caller's account must allow ("s3:GetObject on `…` and kms:Decrypt on
/// `…`"), empty when nothing was evaluated.
pub(super) fn caller_account_missing(account: &str, needs: &str, caller: impl Display) -> String {
    let must = if needs.is_empty() {
        String::new()
    } else {
        format!(" For the request to succeed, account {account} must also allow {needs} for `{caller}`, and nothing there may deny it.")
    };
    format!("Account {account} (the caller's) is not in the snapshot: its identity policies, permissions boundaries and SCPs were not evaluated, and the verdict covers the resource side only.{must}")
}

/// What AWS's AccessDenied message says, in a sentence the next two functions complete.
pub(super) fn aws_message(denial: &AwsDenial) -> String {
    let words = denial.policy_type.as_words();
    match denial.explicit {
        Some(true) => format!("AWS's error message says the request was denied by an explicit deny in a {words}"),
        Some(false) => format!("AWS's error message says the request was denied because no {words} allows it"),
        None => format!("AWS's error message says the request was denied by (or for want of an allow in) a {words}"),
    }
}

pub(super) fn message_agrees(said: &str, code: Code) -> String {
    format!("{said}; the diagnosis agrees ({code}), which raises its confidence.")
}

pub(super) fn message_disagrees(said: &str, ours: &str, kind: DeniedPolicyType) -> String {
    let unseen = if kind == DeniedPolicyType::VpcEndpoint {
        " (a VPC endpoint policy is evaluated only when the record names the endpoint and the snapshot lists it under `vpc_endpoints`)"
    } else {
        ""
    };
    format!("{said}, but the diagnosis finds {ours}. The snapshot may be older than the denial, or miss the policy AWS applied{unseen}: confidence is low until they agree.")
}

pub(super) fn allowed_but_denied() -> String {
    "AWS denied this request, yet every policy in the snapshot allows it: the cause lies in something a snapshot cannot show — a session policy, the policy of a VPC endpoint the record does not name, an SCP or RCP of an organization not in the snapshot, a missing object (403 without s3:ListBucket), or a change made after the denial (IAM and KMS changes take up to minutes to propagate).".into()
}

pub(super) fn confidence_lowered(level: Confidence, why: &str) -> String {
    let level = match level {
        Confidence::Low => "low",
        _ => "medium",
    };
    format!("Confidence lowered to {level}: {why}.")
}

pub(super) fn key_state_error_not_in_snapshot() -> String {
    "The record shows a key-state error (DisabledException or KMSInvalidStateException), but the key is usable in the snapshot: it was re-enabled after the denial, or the snapshot is older than the record. Check the key's state history (CloudTrail DisableKey, ScheduleKeyDeletion) before changing policies.".into()
}

pub(super) fn endpoint_not_in_snapshot(id: &str, owner: Option<&str>, collected: bool) -> String {
    let whose = owner.map_or_else(String::new, |a| format!(" (account {a})"));
    let why = if collected {
        "the snapshot lists that account's VPC endpoints, but not this one: it was created or changed after the snapshot, or belongs to another account"
    } else {
        "the snapshot holds no VPC endpoints for that account (`vpc_endpoints` not collected)"
    };
    format!("The request came through VPC endpoint `{id}`{whose}, whose policy filters it, but {why}. Its policy was not evaluated and is not assumed to allow: read it with `aws ec2 describe-vpc-endpoints --vpc-endpoint-ids {id}` in the account that owns it, and add it to the snapshot.")
}

pub(super) fn endpoint_artifact(id: &str) -> String {
    format!("policy of VPC endpoint {id}")
}

pub(super) fn endpoint_fix_note(id: &str, owner: &str) -> String {
    format!("Only account {owner}, which owns VPC endpoint {id}, can change its policy; the change applies to every request through the endpoint, from every workload in the VPC. Policy changes take a few minutes to take effect.")
}

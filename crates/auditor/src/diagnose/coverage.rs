//! Which policy layers the diagnosis saw and which it could not (docs/design.md,
//! "Confidence"): when nothing visible blocks, the cause of a real denial lies in a layer the
//! snapshot lacks, and the user needs the list of what is left to check.
//!
//! One table, [`LAYERS`]: a layer is added by one line naming it and the check that tells
//! whether this request met it and whether the snapshot showed it.

use serde::Serialize;

use iam_eval::{Caller, CallerKind};

use super::{Hop, Request};
use crate::snapshot::Snapshot;

/// Whether a layer was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Seen {
    /// The snapshot holds it, and the diagnosis evaluated it.
    Seen,
    /// It applies (or may apply) to this request, but the snapshot does not hold it.
    NotSeen,
    /// It plays no part in this request.
    NotApplicable,
}

/// One layer of the table, as this diagnosis met it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerCoverage {
    /// Stable name (`vpc_endpoint_policy`).
    pub layer: &'static str,
    /// Seen, not seen, or not applicable.
    pub seen: Seen,
    /// Why, in words (what to collect when not seen).
    pub why: String,
}

/// What the checks read.
pub(super) struct Probe<'a> {
    pub snap: &'a Snapshot,
    pub req: &'a Request,
    pub caller: &'a Caller,
    pub caller_account: Option<&'a str>,
    pub resource_account: Option<&'a str>,
    pub identity_known: bool,
    pub hops: &'a [Hop],
}

type Check = fn(&Probe<'_>) -> (Seen, String);

/// The layers, in AWS's order, with what a person calls them and their check. Add a layer
/// here (and nowhere else) to have it reported.
const LAYERS: &[(&str, &str, Check)] = &[
    ("rcp", "resource control policies", rcp),
    ("scp", "service control policies", scp),
    ("vpc_endpoint_policy", "VPC endpoint policy", vpc_endpoint),
    ("access_point_policy", "access point policy", access_point),
    ("bucket_policy", "bucket policy", bucket_policy),
    ("acls", "bucket and object ACLs", acls),
    ("key_policy", "key policy and grants", key_policy),
    ("identity_policies", "identity-based policies", identity),
    ("permissions_boundary", "permissions boundary", boundary),
    ("session_policy", "session policy", session),
];

/// Every layer of the table for this request.
pub(super) fn coverage(p: &Probe<'_>) -> Vec<LayerCoverage> {
    LAYERS
        .iter()
        .map(|(layer, _, check)| {
            let (seen, why) = check(p);
            LayerCoverage { layer, seen, why }
        })
        .collect()
}

/// What a person calls a layer of the table.
pub(super) fn label(layer: &str) -> &'static str {
    LAYERS
        .iter()
        .find(|(l, _, _)| *l == layer)
        .map_or("", |(_, label, _)| label)
}

fn seen(why: &str) -> (Seen, String) {
    (Seen::Seen, why.to_owned())
}

fn not_seen(why: String) -> (Seen, String) {
    (Seen::NotSeen, why)
}

fn not_applicable(why: &str) -> (Seen, String) {
    (Seen::NotApplicable, why.to_owned())
}

fn has_identity(p: &Probe<'_>) -> bool {
    !matches!(p.caller.kind, CallerKind::Service | CallerKind::Anonymous)
}

fn org_layer(account: Option<&str>, p: &Probe<'_>, what: &str) -> (Seen, String) {
    let Some(a) = account else {
        return not_seen(format!("the account whose {what} apply is unknown"));
    };
    match p.snap.account(a).map(|x| x.organization.as_ref()) {
        None => not_seen(format!("account {a} is not in the snapshot")),
        Some(None) => not_seen(format!("the organization of account {a} was not read (a member account cannot read its {what}; collect them from the management account)")),
        Some(Some(o)) if o.is_management_account => {
            not_applicable("the management account is not under them")
        }
        Some(Some(_)) => seen("read from the organization"),
    }
}

fn rcp(p: &Probe<'_>) -> (Seen, String) {
    org_layer(p.resource_account, p, "RCPs")
}

fn scp(p: &Probe<'_>) -> (Seen, String) {
    if !has_identity(p) {
        return not_applicable("the caller belongs to no member account");
    }
    org_layer(p.caller_account, p, "SCPs")
}

fn vpc_endpoint(p: &Probe<'_>) -> (Seen, String) {
    let Some(r) = &p.req.vpc_endpoint else {
        if p.req.event.is_none() {
            return not_seen("a request given on the command line does not say whether it came through a VPC endpoint".into());
        }
        return not_applicable("the record shows no VPC endpoint");
    };
    match p.snap.vpc_endpoint(&r.id, r.account.as_deref()) {
        Some(_) => seen("the endpoint the record names is in the snapshot"),
        None => not_seen(format!(
            "the record names endpoint {}, which the snapshot does not list",
            r.id
        )),
    }
}

fn access_point(p: &Probe<'_>) -> (Seen, String) {
    use crate::request::AccessPointUse;
    match &p.req.access_point {
        None => not_applicable("the request names a bucket, not an access point"),
        Some(AccessPointUse::Arn(r)) => match p.snap.access_point(&r.account, &r.name) {
            Some(_) => seen("the access point the request names is in the snapshot"),
            None => not_seen(format!(
                "the request names access point {}, which the snapshot does not list",
                r.arn()
            )),
        },
        Some(AccessPointUse::Alias(alias)) => match p.snap.access_point_by_alias(alias) {
            Some(_) => seen("the access point the alias stands for is in the snapshot"),
            None => not_seen(format!(
                "the request names access point alias {alias}, which no access point in the snapshot has"
            )),
        },
    }
}

fn bucket_policy(p: &Probe<'_>) -> (Seen, String) {
    match p.req.bucket.as_deref() {
        None => not_applicable("the request reaches no bucket"),
        Some(b) if p.snap.bucket(b).is_some() => seen("the bucket is in the snapshot"),
        Some(b) => not_seen(format!("bucket {b} is not in the snapshot")),
    }
}

fn acls(p: &Probe<'_>) -> (Seen, String) {
    let Some(b) = p.req.bucket.as_deref() else {
        return not_applicable("the request reaches no bucket");
    };
    let Some((_, bucket)) = p.snap.bucket(b) else {
        return not_seen(format!("bucket {b} is not in the snapshot"));
    };
    if bucket.acls_disabled() {
        return not_applicable("Object Ownership is BucketOwnerEnforced: ACLs are disabled");
    }
    let object = p
        .req
        .object_key
        .as_deref()
        .and_then(|k| bucket.objects.get(k));
    match object {
        Some(o) if o.owner_id.is_some() => seen("the object's owner and ACL are in the snapshot"),
        _ => not_seen("the object's owner and ACL were not read (get-object-acl), so an object written by another account cannot be recognised".into()),
    }
}

fn key_policy(p: &Probe<'_>) -> (Seen, String) {
    let kms: Vec<&Hop> = p
        .hops
        .iter()
        .filter(|h| h.action.starts_with("kms:"))
        .collect();
    if kms.is_empty() {
        return not_applicable("no KMS request on this request's path");
    }
    if kms.iter().any(|h| h.decision == "NotEvaluated") {
        not_seen("the key (or which key encrypted the object) is not in the snapshot".into())
    } else {
        seen("the key is in the snapshot")
    }
}

fn identity(p: &Probe<'_>) -> (Seen, String) {
    if !has_identity(p) {
        return not_applicable("the caller has no identity-based policies");
    }
    if p.identity_known {
        seen("the caller's IAM data is in the snapshot")
    } else {
        not_seen("the caller's IAM data is not in the snapshot".into())
    }
}

fn boundary(p: &Probe<'_>) -> (Seen, String) {
    if !has_identity(p) || p.caller.kind == CallerKind::Root {
        return not_applicable("no permissions boundary can apply to this caller");
    }
    if p.identity_known {
        seen("read with the caller's IAM data")
    } else {
        not_seen("the caller's IAM data is not in the snapshot".into())
    }
}

fn session(p: &Probe<'_>) -> (Seen, String) {
    match p.caller.kind {
        CallerKind::AssumedRole => {
            let recorded = p
                .caller_account
                .and_then(|a| p.snap.account(a))
                .is_some_and(|a| a.sessions.contains_key(&p.caller.arn));
            if recorded {
                seen("the session's AssumeRole record is in the snapshot")
            } else {
                not_seen("the session's AssumeRole record is not in the snapshot (`sessions`): a policy passed when the session was created would cap it".into())
            }
        }
        CallerKind::FederatedUser => not_seen(
            "a federated user's session policy is not in the snapshot unless recorded".into(),
        ),
        _ => not_applicable("the caller is not a session"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{read, working};
    use super::*;

    #[test]
    fn every_layer_is_reported_once_and_an_ad_hoc_request_leaves_the_endpoint_unseen() {
        let (snap, _) = working();
        let req = read("aws");
        let d = super::super::diagnose(&snap, &req);
        let names: Vec<&str> = d.coverage.iter().map(|c| c.layer).collect();
        let table: Vec<&str> = LAYERS.iter().map(|(l, _, _)| *l).collect();
        assert_eq!(names, table);
        let vpce = d
            .coverage
            .iter()
            .find(|c| c.layer == "vpc_endpoint_policy")
            .map(|c| c.seen);
        assert_eq!(vpce, Some(Seen::NotSeen));
        let bucket = d
            .coverage
            .iter()
            .find(|c| c.layer == "bucket_policy")
            .map(|c| c.seen);
        assert_eq!(bucket, Some(Seen::Seen));
        let text = super::super::render_text(&d);
        assert!(text.contains("Not seen, left to check:"), "{text}");
        assert!(text.contains("VPC endpoint policy ("), "{text}");
        assert_eq!(label("vpc_endpoint_policy"), "VPC endpoint policy");
    }
}

//! The VPC endpoint policy layer: which endpoint a request came through, what the snapshot
//! knows of it, and the fix to its policy (EC2 `ModifyVpcEndpoint --policy-document`).
//!
//! The policy of the endpoint a request travelled through must allow the caller's request,
//! and a Deny in it denies
//! (<https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html>). It
//! applies to the request the caller sent through it — the S3 hop, or a KMS call the caller
//! made directly through a KMS endpoint — and never to S3's forward request to KMS, which does
//! not travel through the caller's VPC (docs/design.md, "The two hops").

use iam_eval::{ContextValue, Named, PolicySet};
use serde_json::{json, Value};

use super::edit::Edit;
use super::explain;
use super::findings::{Code, Fix};
use super::fix::{compact, object_scope, sid_for, with_statement, FixContext};
use super::outcome::Outcome;
use super::run::Ctx;
use super::Confidence;
use crate::snapshot::VpcEndpoint;

/// The endpoint of the request, found in the snapshot.
#[derive(Clone, Copy)]
pub(super) struct SeenEndpoint<'s> {
    /// The account that owns the endpoint (and must change its policy).
    pub owner: &'s str,
    /// The endpoint.
    pub endpoint: &'s VpcEndpoint,
}

impl<'s> SeenEndpoint<'s> {
    /// The endpoint's policy as an engine layer (`None`: no policy, full access).
    pub(super) fn named(&self) -> Option<Named<'s>> {
        self.endpoint.policy.as_ref().map(|p| Named {
            name: p.name.as_str(),
            policy: &p.policy,
        })
    }

    /// Puts the endpoint's policy into a hop's policy set.
    pub(super) fn apply<'a>(&self, set: &mut PolicySet<'a>)
    where
        's: 'a,
    {
        set.vpc_endpoint = self.named();
    }
}

impl<'s> Ctx<'s> {
    /// The endpoint the request came through, when the record names one and the snapshot
    /// lists it. An endpoint the snapshot lacks is a stated gap: the verdict cannot be
    /// `allowed` while its policy is unseen.
    pub(super) fn request_endpoint(&self, action: &str) -> (Option<SeenEndpoint<'s>>, Outcome) {
        let mut out = Outcome::default();
        let Some(r) = &self.req.vpc_endpoint else {
            return (None, out);
        };
        if let Some((listed_in, endpoint)) = self.snap.vpc_endpoint(&r.id, r.account.as_deref()) {
            let owner = endpoint.owner_id.as_deref().unwrap_or(listed_in);
            return (Some(SeenEndpoint { owner, endpoint }), out);
        }
        let owner = r
            .account
            .as_deref()
            .or(self.req.principal_account.as_deref());
        let collected = owner
            .and_then(|a| self.snap.account(a))
            .is_some_and(|a| a.vpc_endpoints.is_some());
        out.advisory(
            Code::MissingEvidence,
            Some(action),
            owner,
            explain::endpoint_not_in_snapshot(&r.id, owner, collected),
        );
        out.incomplete = true;
        out.cap(
            Confidence::Medium,
            "the request came through a VPC endpoint whose policy is not in the snapshot",
        );
        (None, out)
    }

    /// Adds the keys a request through `e` carries that the record does not show:
    /// `aws:SourceVpc` (the endpoint's VPC). `aws:SourceVpce` comes from the record.
    pub(super) fn endpoint_context(e: Option<SeenEndpoint<'_>>, ctx: &mut iam_eval::Context) {
        if let Some(vpc) = e.and_then(|e| e.endpoint.vpc_id.clone()) {
            ctx.insert_if_absent("aws:SourceVpc", ContextValue::Single(vpc));
        }
        if let Some(e) = e {
            ctx.insert_if_absent(
                "aws:SourceVpce",
                ContextValue::Single(e.endpoint.id.clone()),
            );
        }
    }
}

/// `aws ec2 modify-vpc-endpoint` setting `doc` as the endpoint's policy, in the endpoint's
/// Region when its service name shows it.
fn modify_command(e: &VpcEndpoint, doc: &Value) -> String {
    let region = e
        .service_name
        .as_deref()
        .and_then(crate::refs::service_name_region)
        .map(|r| format!(" --region {r}"))
        .unwrap_or_default();
    format!(
        "aws ec2 modify-vpc-endpoint{region} --vpc-endpoint-id {} --policy-document '{}'",
        e.id,
        compact(doc)
    )
}

/// The typed edit and the command that set `doc` as the policy of the endpoint.
pub(super) fn set_policy(owner: &str, e: &VpcEndpoint, doc: &Value) -> (Edit, String) {
    (
        Edit::SetVpcEndpointPolicy {
            account: owner.to_owned(),
            vpc_endpoint_id: e.id.clone(),
            pointer: e.policy_pointer(),
            document: doc.clone(),
        },
        modify_command(e, doc),
    )
}

/// The fix for `VPC_ENDPOINT_POLICY_NO_ALLOW`: an Allow for the caller's role (or user) and
/// this action on the object's prefix. It names the caller with `aws:PrincipalArn` under
/// `Principal: "*"`, the form AWS documents for gateway endpoints (where an account
/// principal would match the root user only), which interface endpoints read the same way.
pub(super) fn grant(fc: &FixContext<'_>, seen: SeenEndpoint<'_>) -> Option<Fix> {
    let e = seen.endpoint;
    let principal = fc
        .principal_arn
        .map_or_else(|| fc.caller.arn.clone(), str::to_owned);
    let mut st = json!({"Sid": sid_for(fc.action), "Effect": "Allow", "Principal": "*",
        "Action": fc.action, "Resource": object_scope(fc.resource)});
    if fc.caller.account.is_some() {
        if let Some(o) = st.as_object_mut() {
            o.insert(
                "Condition".into(),
                json!({"ArnEquals": {"aws:PrincipalArn": principal}}),
            );
        }
    }
    let current = e.policy.as_ref().map(|np| {
        fc.rewritten
            .borrow()
            .get(&np.pointer)
            .cloned()
            .unwrap_or_else(|| np.document.clone())
    });
    let doc = with_statement(current.as_ref(), st.clone());
    let (edit, cli) = set_policy(seen.owner, e, &doc);
    Some(Fix {
        account: seen.owner.to_owned(),
        artifact: explain::endpoint_artifact(&e.id),
        statement: Some(st),
        patched_policy: Some(doc),
        cli,
        notes: vec![explain::endpoint_fix_note(&e.id, seen.owner)],
        edits: vec![edit],
        patch: Vec::new(),
    })
}

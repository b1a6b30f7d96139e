//! Block Public Access as S3 applies it to one resource policy (a bucket policy or an access
//! point policy) for one request: with `RestrictPublicBuckets` on the resource or on its
//! owner's account, the policy's public statements grant nothing to callers of other accounts
//! (docs/design.md, "Block Public Access and object ownership";
//! https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html).
//! The bucket side (s3.rs) and the access point side (access_point.rs) both judge it here.

use iam_eval::{authorize, Evaluation, Layer, Named, Policy, PolicySet, Request};

use super::findings::StatementInfo;
use super::run::Ctx;
use crate::snapshot::{NamedPolicy, PublicAccessBlock};

/// A resource policy without the statements Block Public Access leaves out of force.
pub(super) struct PublicStrip {
    /// Indexes of the public statements taken out.
    public: Vec<usize>,
    /// The policy as S3 applies it to this caller.
    copy: Policy,
}

impl PublicStrip {
    /// The policy as it applies to the caller, or `None` when Block Public Access changes
    /// nothing: no `RestrictPublicBuckets`, a caller of the owner's own account, or no
    /// public statement.
    pub(super) fn new(policy: Option<&NamedPolicy>, restrict: bool, cross: bool) -> Option<Self> {
        if !(restrict && cross) {
            return None;
        }
        let p = policy?;
        let public = public_statements(&p.policy);
        if public.is_empty() {
            return None;
        }
        let mut copy = p.policy.clone();
        copy.statements.retain(|s| !public.contains(&s.index));
        Some(PublicStrip { public, copy })
    }

    /// Evaluates `req` with the stripped policy in place of the resource policy of `set`.
    /// Returns the evaluation S3 makes, and whether Block Public Access is what took the
    /// resource policy's allow away (`full`, the evaluation with every statement, had it).
    pub(super) fn authorize<'a>(
        &'a self,
        req: &Request,
        set: &PolicySet<'a>,
        name: &'a str,
        full: &Evaluation<'a>,
    ) -> (Evaluation<'a>, bool) {
        let stripped = PolicySet {
            resource: Some(Named {
                name,
                policy: &self.copy,
            }),
            ..set.clone()
        };
        let ev = authorize(req, &stripped);
        let blocks = ev.missing_allows.contains(&Layer::Resource)
            && !full.missing_allows.contains(&Layer::Resource);
        (ev, blocks)
    }

    /// The public statements of `policy` (the policy this strip was made from), as a
    /// finding names them.
    pub(super) fn statements(&self, policy: &NamedPolicy) -> Vec<StatementInfo> {
        self.public
            .iter()
            .map(|i| StatementInfo {
                policy: policy.name.clone(),
                index: *i,
                sid: policy
                    .policy
                    .statements
                    .iter()
                    .find(|s| s.index == *i)
                    .and_then(|s| s.sid.clone()),
            })
            .collect()
    }
}

impl Ctx<'_> {
    /// Whether `RestrictPublicBuckets` is on for a resource of `owner` whose own setting is
    /// `own`: either setting is enough.
    pub(super) fn restricts_public(&self, own: Option<PublicAccessBlock>, owner: &str) -> bool {
        own.is_some_and(|p| p.restrict_public_buckets)
            || self
                .snap
                .account(owner)
                .and_then(|a| a.public_access_block)
                .is_some_and(|p| p.restrict_public_buckets)
    }
}

/// Indexes of the Allow statements S3 considers public: `Principal: "*"` (or `AWS: "*"`)
/// without a condition restricting them to fixed values (docs/design.md, "Block Public Access and object ownership").
fn public_statements(policy: &Policy) -> Vec<usize> {
    const RESTRICTING: &[&str] = &[
        "aws:principalorgid",
        "aws:principalaccount",
        "aws:principalarn",
        "aws:sourceip",
        "aws:sourcearn",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceowner",
        "aws:sourceaccount",
        "aws:userid",
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
        "s3:dataaccesspointarn",
        "s3:dataaccesspointaccount",
    ];
    policy
        .statements
        .iter()
        .filter(|s| s.effect == iam_eval::Effect::Allow)
        .filter(|s| {
            s.principal.as_ref().is_some_and(|p| {
                !p.not
                    && p.entries
                        .iter()
                        .any(|e| matches!(e, iam_eval::principal::PolicyPrincipal::Everyone))
            })
        })
        .filter(|s| {
            !s.conditions.iter().any(|c| {
                RESTRICTING.contains(&c.key_lower())
                    && c.has_fixed_values()
                    && (c.key_lower() != "aws:sourceip" || c.has_narrow_public_ip_ranges())
            })
        })
        .map(|s| s.index)
        .collect()
}

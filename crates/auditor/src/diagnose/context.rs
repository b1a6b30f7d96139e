//! The request context policies see on each hop: the caller's direct request, and S3's
//! forward access session to KMS.

use iam_eval::{Context, ContextValue};

use super::caller::CallerSide;
use super::run::Ctx;

impl Ctx<'_> {
    /// The request context for the caller's direct request.
    pub(super) fn base_context(&self, side: &CallerSide<'_>) -> Context {
        let mut ctx = Context::new();
        for (k, v) in &self.req.context {
            ctx.insert(k, v.clone());
        }
        if let Some(arn) = &side.principal_arn {
            ctx.insert_if_absent("aws:PrincipalArn", ContextValue::Single(arn.clone()));
        }
        if let Some(org) = &side.org_id {
            ctx.insert_if_absent("aws:PrincipalOrgID", ContextValue::Single(org.clone()));
        }
        for (k, v) in &side.tags {
            ctx.insert_if_absent(
                &format!("aws:PrincipalTag/{k}"),
                ContextValue::Single(v.clone()),
            );
        }
        ctx
    }

    /// The context S3's forward access session carries to KMS (docs/design.md, "The two hops"): the caller's
    /// principal keys, `aws:ViaAWSService = true`, `kms:ViaService` = S3's Regional endpoint name,
    /// the encryption context, and no network keys.
    pub(super) fn fas_context(
        &self,
        side: &CallerSide<'_>,
        region: &str,
        context_arn: &str,
    ) -> Context {
        let base = self.base_context(side);
        let mut ctx = Context::new();
        let has_vpce = base.contains("aws:SourceVpce");
        for (k, v) in base.iter() {
            let lower = k.to_lowercase();
            let keep = lower.starts_with("aws:principal")
                || lower.starts_with("aws:requesttag")
                || matches!(
                    lower.as_str(),
                    "aws:userid"
                        | "aws:username"
                        | "aws:currenttime"
                        | "aws:epochtime"
                        | "aws:multifactorauthpresent"
                        | "aws:multifactorauthage"
                        | "aws:tokenissuetime"
                        | "aws:sourceidentity"
                        | "aws:requestedregion"
                        | "aws:federatedprovider"
                )
                || (lower == "aws:sourceip" && !has_vpce);
            if keep {
                ctx.insert(k, v.clone());
            }
        }
        let single = |s: &str| ContextValue::Single(s.to_owned());
        ctx.insert("aws:ViaAWSService", single("true"));
        ctx.insert("aws:PrincipalIsAWSService", single("false"));
        ctx.insert(
            "kms:ViaService",
            ContextValue::Single(self.req.partition.service_endpoint("s3", region)),
        );
        ctx.insert("kms:EncryptionContext:aws:s3:arn", single(context_arn));
        ctx.insert(
            "kms:EncryptionContextKeys",
            ContextValue::Multi(vec!["aws:s3:arn".into()]),
        );
        ctx
    }

    /// `aws:ResourceOrgID` of the account owning the resource being authorized (present
    /// whenever that account is in an organization; AWS global condition context keys).
    pub(super) fn resource_org(&self, ctx: &mut Context, account: &str) {
        if let Some(org) = self
            .snap
            .account(account)
            .and_then(|a| a.organization.as_ref())
            .and_then(|o| o.id.clone())
        {
            ctx.insert("aws:ResourceOrgID", ContextValue::Single(org));
        }
    }
}

#[cfg(test)]
mod tests {
    use iam_eval::Caller;

    use super::super::testing::{read, working};
    use super::*;

    #[test]
    fn the_forward_access_session_carries_the_callers_keys_and_s3s_endpoint() {
        let (snap, _) = working();
        for (partition, endpoint) in [
            ("aws", "s3.us-west-2.amazonaws.com"),
            ("aws-cn", "s3.us-west-2.amazonaws.com.cn"),
        ] {
            let req = read(partition);
            let ctx = Ctx::for_test(&snap, &req).expect("context");
            let caller = Caller::parse(&format!(
                "arn:{partition}:sts::444455556666:assumed-role/reader/s1"
            ))
            .expect("caller");
            let (side, _) = ctx.caller_side(caller);
            let fas = ctx.fas_context(&side, "us-west-2", "arn:aws:s3:::doc-example-bucket/k");
            let single = |k: &str| match fas.get(k) {
                Some(ContextValue::Single(v)) => Some(v.clone()),
                _ => None,
            };
            assert_eq!(single("kms:ViaService").as_deref(), Some(endpoint));
            assert_eq!(single("aws:ViaAWSService").as_deref(), Some("true"));
            assert_eq!(
                single("aws:PrincipalAccount").as_deref(),
                Some("444455556666")
            );
            // The caller's transport is not S3's: S3 calls KMS over its own connection.
            assert_eq!(single("aws:SecureTransport"), None);
            assert_eq!(
                single("kms:EncryptionContext:aws:s3:arn").as_deref(),
                Some("arn:aws:s3:::doc-example-bucket/k")
            );
        }
    }
}

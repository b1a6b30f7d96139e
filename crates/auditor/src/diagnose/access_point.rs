//! Requests through an S3 access point (docs/design.md, "Access points"): S3 authorizes them
//! against the access point policy, on the access point object ARN, **and** against the bucket
//! policy, on the bucket object ARN ("Configuring IAM policies for using access points",
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-points-policies.html>). A
//! VPC-origin access point refuses requests from outside its VPC
//! (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-points-vpc.html>).
//!
//! This step evaluates the access point's side; `s3.rs` evaluates the bucket's side of the same
//! hop with the access point's condition keys in the context.

use iam_eval::{authorize, Context, ContextValue, Layer, Named};

use super::bpa::PublicStrip;
use super::caller::CallerSide;
use super::findings::Code;
use super::fix::{self, Target};
use super::layers::{layer_rank, HopKind};
use super::outcome::{Outcome, RANK_EXPLICIT};
use super::run::{Ctx, LayerEval};
use super::s3::S3Hop;
use super::{Confidence, Operation};
use crate::refs::AccessPointRef;
use crate::request::AccessPointUse;
use crate::snapshot::{AccessPoint, NetworkOrigin};

/// The access point a hop goes through: its reference and, when the snapshot has it, what
/// `get-access-point` says of it.
#[derive(Clone)]
pub(super) struct Via<'s> {
    /// The access point's ARN parts (owner, Region, name).
    pub reference: AccessPointRef,
    /// The access point as the snapshot holds it.
    pub ap: Option<&'s AccessPoint>,
}

impl<'s> Ctx<'s> {
    /// The request's access point, resolved in the snapshot where it can be: by owner and
    /// name for an ARN, by `Alias` for an alias (`None` for an alias the snapshot lacks).
    pub(super) fn access_point(&self) -> Option<Via<'s>> {
        match self.req.access_point.as_ref()? {
            AccessPointUse::Arn(r) => Some(Via {
                reference: r.clone(),
                ap: self
                    .snap
                    .access_point(&r.account, &r.name)
                    .map(|(_, ap)| ap),
            }),
            AccessPointUse::Alias(alias) => {
                let (owner, ap) = self.snap.access_point_by_alias(alias)?;
                let region = self
                    .snap
                    .bucket(&ap.bucket)
                    .map(|(_, b)| b.region.clone())
                    .unwrap_or_default();
                Some(Via {
                    reference: ap.reference(owner, self.req.partition, &region),
                    ap: Some(ap),
                })
            }
        }
    }

    /// The bucket the request acts on: the one the record names, else the one behind its
    /// access point.
    pub(super) fn request_bucket(&self) -> Option<String> {
        self.req.bucket.clone().or_else(|| {
            self.access_point()
                .and_then(|v| v.ap.map(|ap| ap.bucket.clone()))
        })
    }

    /// What the request's access point gives nothing about: an alias the snapshot does not
    /// list, so neither the access point nor its bucket is known.
    pub(super) fn unresolved_alias(&self) -> Outcome {
        let mut out = Outcome::default();
        match &self.req.access_point {
            Some(AccessPointUse::Alias(alias)) if self.access_point().is_none() => {
                out.gap(
                    None,
                    None,
                    format!("The request names access point alias `{alias}`, and no access point of the snapshot has that `Alias`: add the access point (`aws s3control get-access-point`) of the account that owns it."),
                    Some((Confidence::Low, "the access point is not in the snapshot")),
                );
            }
            // Named by ARN, but neither the record nor the snapshot says which bucket is
            // behind it.
            Some(AccessPointUse::Arn(r)) if self.request_bucket().is_none() => {
                out.gap(
                    None,
                    Some(&r.account),
                    format!("The request went through access point `{}`, which the snapshot does not list, and the record does not name the bucket behind it: add `aws s3control get-access-point --account-id {} --name {}` (and its policy) to the snapshot.", r.arn(), r.account, r.name),
                    Some((Confidence::Low, "the access point is not in the snapshot")),
                );
            }
            _ => {}
        }
        out
    }

    /// The access point this hop goes through: the request's, when the hop is on the bucket
    /// behind it (never the source read of a copy, whose request names the destination).
    pub(super) fn via_access_point(&self, hop: &S3Hop<'_, 's>) -> Option<Via<'s>> {
        let copy_source =
            matches!(self.req.operation, Operation::CopyObject { .. }) && hop.band < 200;
        if copy_source {
            return None;
        }
        let via = self.access_point()?;
        let same_bucket = match via.ap {
            Some(ap) => ap.bucket == hop.bucket,
            None => self.req.bucket.as_deref() == Some(hop.bucket),
        };
        same_bucket.then_some(via)
    }

    /// The condition keys S3 sets on a request through an access point, for the bucket
    /// policy's evaluation (and the access point policy's).
    pub(super) fn access_point_context(via: &Via<'_>, ctx: &mut Context) {
        ctx.insert(
            "s3:DataAccessPointArn",
            ContextValue::Single(via.reference.arn()),
        );
        ctx.insert(
            "s3:DataAccessPointAccount",
            ContextValue::Single(via.reference.account.clone()),
        );
        if let Some(ap) = via.ap {
            ctx.insert(
                "s3:AccessPointNetworkOrigin",
                ContextValue::Single(ap.network_origin.as_str().to_owned()),
            );
        }
    }

    /// The access point's side of the S3 hop: its network origin, its policy (with its own
    /// Block Public Access), evaluated on the access point object ARN.
    pub(super) fn access_point_side(
        &self,
        side: &CallerSide<'s>,
        hop: &S3Hop<'_, 's>,
        via: &Via<'s>,
    ) -> Outcome {
        let mut out = Outcome::default();
        let action = hop.action;
        let owner = via.reference.account.as_str();
        let resource = via.reference.object_arn(hop.key);
        let Some(ap) = via.ap else {
            out.push_hop(action, &resource, None);
            out.gap(
                Some(action),
                Some(owner),
                format!("The request went through access point `{}`, which the snapshot does not list: its policy and network origin were not checked. Add `aws s3control get-access-point` and `get-access-point-policy` of account {owner}.", via.reference.arn()),
                Some((Confidence::Low, "the access point is not in the snapshot")),
            );
            return out;
        };
        let tgt = Target::AccessPoint {
            account: owner.to_owned(),
            name: ap.name.clone(),
            bucket: ap.bucket.clone(),
            object: resource.clone(),
        };
        out.merge(self.network_origin(action, owner, ap, hop.band, &tgt));
        let mut ctx = self.base_context(side);
        ctx.insert(
            "aws:ResourceAccount",
            ContextValue::Single(owner.to_owned()),
        );
        ctx.insert("s3:ResourceAccount", ContextValue::Single(owner.to_owned()));
        Self::access_point_context(via, &mut ctx);
        // A request through a VPC endpoint names the access point, so the endpoint policy is
        // judged here. Its gap, when the snapshot lacks it, is reported once by the bucket's
        // side (s3.rs).
        let (endpoint, _) = self.request_endpoint(action);
        Self::endpoint_context(endpoint, &mut ctx);
        let req = match Self::request(side, action, &resource, Some(owner), ctx) {
            Ok(r) => r,
            Err(e) => {
                out.unevaluated(action, &resource, Some(owner), &e.to_string());
                return out;
            }
        };
        let named = ap.policy.as_ref().map(|p| Named {
            name: p.name.as_str(),
            policy: &p.policy,
        });
        let mut set = self.policy_set(side, named, &[]);
        if let Some(e) = endpoint {
            e.apply(&mut set);
        }
        let ev_full = authorize(&req, &set);
        // The access point's own Block Public Access (on by default): with
        // RestrictPublicBuckets, its policy's public statements grant nothing to other
        // accounts, as on a bucket (bpa.rs).
        let cross = side.account.as_deref() != Some(owner);
        let strip = PublicStrip::new(
            ap.policy.as_ref(),
            self.restricts_public(ap.public_access_block, owner),
            cross,
        );
        let (ev, bpa_blocks) = match (&strip, &ap.policy) {
            (Some(strip), Some(p)) => strip.authorize(&req, &set, &p.name, &ev_full),
            _ => (ev_full, false),
        };
        out.push_hop(action, &resource, Some(&ev));
        if !side.identity_known {
            out.required_identity
                .push((action.to_owned(), resource.clone()));
        }
        let skip: &[Code] = if bpa_blocks {
            &[Code::AccessPointPolicyNoAllow]
        } else {
            &[]
        };
        let mut found = self.layer_findings(
            side,
            &LayerEval {
                req: &req,
                ev: &ev,
                action,
                resource: &resource,
                tgt: &tgt,
                resource_policy: ap.policy.as_ref(),
                rcp: &[],
                band: hop.band,
                hop: HopKind::AccessPoint,
                skip,
                vpc_endpoint: endpoint,
            },
        );
        if bpa_blocks {
            let grantee = side
                .principal_arn
                .clone()
                .unwrap_or_else(|| side.caller.arn.clone());
            let mut f = self.blocking(
                Code::BlockPublicAccess,
                action,
                owner,
                format!("The access point policy of `{}` allows `{resource}` only through public statements, and Block Public Access (RestrictPublicBuckets, on the access point or account {owner}) makes public statements grant nothing to callers of other accounts such as `{}`.", ap.name, side.caller.arn),
                hop.band + RANK_EXPLICIT + layer_rank(Layer::Resource),
                &tgt,
            );
            if let Some(p) = ap.policy.as_ref() {
                f.policy = Some(p.name.clone());
                f.statements = strip
                    .as_ref()
                    .map(|strip| strip.statements(p))
                    .unwrap_or_default();
            }
            if self.with_fixes {
                let current = ap
                    .policy
                    .as_ref()
                    .and_then(|np| self.rewritten.borrow().get(&np.pointer).cloned());
                let mut grant = fix::access_point_grant(
                    ap.policy.as_ref(),
                    current.as_ref(),
                    owner,
                    &ap.name,
                    &grantee,
                    action,
                    &resource,
                );
                grant.notes.push("The new statement names the caller, so it is not public and Block Public Access leaves it in force.".into());
                self.remember(Some(&mut grant));
                f.fix = Some(grant);
            }
            found.push(f);
        }
        out.findings.extend(found);
        out.merge(self.engine_notes(&ev, owner));
        out
    }

    /// A VPC-origin access point refuses every request that does not come from its VPC. The
    /// record shows a VPC endpoint (`vpcEndpointId`) but not its VPC, so a request through an
    /// endpoint is checked only when the context carries `aws:SourceVpc`.
    fn network_origin(
        &self,
        action: &str,
        owner: &str,
        ap: &AccessPoint,
        band: u32,
        tgt: &Target,
    ) -> Outcome {
        let mut out = Outcome::default();
        if ap.network_origin != NetworkOrigin::Vpc {
            return out;
        }
        let vpc = ap.vpc_id.as_deref().unwrap_or_default();
        let source_vpc = self
            .req
            .context
            .get("aws:SourceVpc")
            .and_then(|v| v.values().first().cloned());
        let endpoint = self
            .req
            .event
            .as_ref()
            .and_then(|e| e.vpc_endpoint_id.clone());
        let from = match (source_vpc, endpoint, &self.req.event) {
            (Some(v), _, _) if v == vpc => return out,
            (Some(v), _, _) => format!("from VPC `{v}`"),
            (None, Some(e), _) => {
                out.gap(
                    Some(action),
                    Some(owner),
                    format!("Access point `{}` accepts requests only from VPC `{vpc}`. The request came through VPC endpoint `{e}`, but the record does not say which VPC that endpoint is in: check that `{e}` belongs to `{vpc}` (`aws ec2 describe-vpc-endpoints --vpc-endpoint-ids {e}`).", ap.name),
                    Some((Confidence::Medium, "the VPC of the request's endpoint is not known")),
                );
                return out;
            }
            (None, None, None) => {
                out.gap(
                    Some(action),
                    Some(owner),
                    format!("Access point `{}` accepts requests only from VPC `{vpc}`, and an ad hoc request does not say where it comes from.", ap.name),
                    Some((Confidence::Medium, "the request's network is not known")),
                );
                return out;
            }
            (None, None, Some(_)) => {
                "over the internet (the record shows no VPC endpoint)".to_owned()
            }
        };
        out.findings.push(self.blocking(
            Code::AccessPointNetworkOrigin,
            action,
            owner,
            format!("Access point `{}` has network origin `VPC` (`{vpc}`): S3 rejects every request through it that does not come from that VPC, whatever the policies say, and this request came {from}. Send the request from VPC `{vpc}` (through an S3 endpoint there), or use an access point with network origin `Internet`.", ap.name),
            band + RANK_EXPLICIT,
            tgt,
        ));
        out
    }
}

//! The KMS side: S3's forward access session to KMS for the caller, a KMS record S3 made,
//! and KMS calls the caller made directly.

use serde_json::json;

use iam_eval::{authorize, Layer, Named, Policy};

use super::caller::CallerSide;
use super::explain;
use super::findings::Code;
use super::fix::Target;
use super::layers::{layer_rank, HopKind};
use super::outcome::{Outcome, RANK_IMPLICIT, RANK_KEY_EXISTS, RANK_KEY_STATE};
use super::run::{Ctx, LayerEval};
use super::Confidence;
use crate::refs;
use crate::snapshot::{Key, NamedPolicy};

/// One KMS hop made by S3 for the caller.
#[derive(Clone, Copy)]
pub(super) struct KmsHop<'a> {
    /// The account in which an alias or a bare key id resolves.
    pub resolve_account: &'a str,
    /// The bucket's Region: S3 uses only keys of that Region.
    pub bucket_region: &'a str,
    /// The key as named: key ARN, alias, alias ARN or key id.
    pub key_ref: &'a str,
    /// `kms:Decrypt`, `kms:GenerateDataKey`.
    pub action: &'a str,
    /// The `aws:s3:arn` encryption context: the object ARN, or the bucket ARN with a
    /// Bucket Key.
    pub context_arn: &'a str,
    /// The rank band of the hop.
    pub band: u32,
}

/// A policy the diagnosis stands in for one the snapshot lacks. It is a constant of this
/// module; should it ever fail to parse, that is said as a gap, never swallowed.
fn stand_in(
    out: &mut Outcome,
    action: &str,
    account: &str,
    document: &serde_json::Value,
) -> Option<Policy> {
    match Policy::from_value(document) {
        Ok(p) => Some(p),
        Err(e) => {
            out.gap(
                Some(action),
                Some(account),
                explain::stand_in_unparsable(&e),
                Some((Confidence::Low, "internal error")),
            );
            None
        }
    }
}

/// Without the real key policy, key-side causes would be invented by the stand-in document:
/// only the caller's side is reported.
fn key_side_unknown(k: &Key) -> &'static [Code] {
    if k.policy.is_some() || k.is_aws_managed() {
        &[]
    } else {
        &[Code::KeyPolicyNoAllow, Code::KeyPolicyExplicitDeny]
    }
}

/// The key policy a KMS hop is evaluated against: the snapshot's, else the stand-in.
fn key_resource<'a>(k: &'a Key, stand: Option<&'a (&'static str, Policy)>) -> Option<Named<'a>> {
    match (&k.policy, stand) {
        (Some(p), _) => Some(Named {
            name: p.name.as_str(),
            policy: &p.policy,
        }),
        (None, Some((name, policy))) => Some(Named { name, policy }),
        (None, None) => None,
    }
}

impl<'s> Ctx<'s> {
    /// When the snapshot lacks a key's policy: the fixed policy of an AWS managed key, or a
    /// stand-in that lets the caller's side be evaluated alone (the gap is stated and key-side
    /// causes are not invented). `None` when the snapshot has the policy.
    fn stand_in_key_policy(
        &self,
        out: &mut Outcome,
        side: &CallerSide<'s>,
        k: &Key,
        key_account: &str,
        action: &str,
    ) -> Option<(&'static str, Policy)> {
        if k.policy.is_some() {
            return None;
        }
        if k.is_aws_managed() {
            // The fixed policy of aws/s3: principals of the owning account, through S3.
            let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": "*"}, "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": key_account,
                "kms:ViaService": self.req.partition.service_endpoint("s3", &k.metadata.region)}}}]});
            return stand_in(out, action, key_account, &doc)
                .map(|p| ("aws/s3 key policy (AWS managed)", p));
        }
        out.advisory(
            Code::MissingEvidence,
            Some(action),
            Some(key_account),
            explain::key_policy_missing(&k.metadata.arn, &side.caller.arn),
        );
        out.cap(Confidence::Low, "key policy missing");
        out.incomplete = true;
        let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": refs::account_root(self.req.partition, key_account)}, "Action": "kms:*", "Resource": "*"}]});
        stand_in(out, action, key_account, &doc).map(|p| ("(key policy not in the snapshot)", p))
    }

    /// S3's own call to KMS for the caller, as a KMS record shows it: that S3 made the call
    /// proves the S3 hop passed, so only the KMS hop is evaluated, with the key and the
    /// encryption context of the record (the object ARN, or the bucket ARN with a Bucket
    /// Key). Returns the bucket owner (or the key owner when the bucket is unknown).
    pub(super) fn kms_via_s3(
        &self,
        side: &CallerSide<'s>,
        action: &str,
    ) -> (Outcome, Option<String>) {
        let mut out = Outcome::default();
        let bucket = self.req.bucket.clone().unwrap_or_default();
        let key = self.req.object_key.clone();
        out.assumptions
            .push(explain::kms_record_from_s3(action, &bucket));
        let found = self.snap.bucket(&bucket);
        let owner = found
            .map(|(o, _)| o.to_owned())
            .or_else(|| self.req.resource_account.clone());
        let region = found
            .map(|(_, b)| b.region.clone())
            .or_else(|| self.req.event.as_ref().and_then(|e| e.aws_region.clone()))
            .unwrap_or_default();
        let context_arn = self
            .req
            .encryption_context
            .get("aws:s3:arn")
            .cloned()
            .unwrap_or_else(|| {
                self.bucket_ref(&bucket)
                    .objects_arn(key.as_deref().unwrap_or("*"))
            });
        // The key: the record's, else the object's metadata, else the bucket default.
        let key_ref = match self.named_key() {
            Some(k) => Some(k.to_owned()),
            None => match found {
                Some((o, b)) => {
                    let from_object = key
                        .as_deref()
                        .and_then(|k| b.objects.get(k))
                        .and_then(|obj| obj.kms_key_id.clone());
                    match from_object {
                        Some(k) => Some(k),
                        None => {
                            let o = o.to_owned();
                            let (o, k) = self.assumed_default_key(&o, &bucket, b, key.as_deref());
                            out.merge(o);
                            k.map(|(k, _)| k)
                        }
                    }
                }
                None => None,
            },
        };
        let Some(key_ref) = key_ref else {
            out.incomplete = true;
            out.advisory(
                Code::MissingEvidence,
                Some(action),
                owner.as_deref(),
                explain::kms_record_key_unknown(&bucket),
            );
            out.cap(Confidence::Low, "the key of the KMS request is unknown");
            return (out, owner);
        };
        // Aliases and bare key ids resolve in the account of the request's resource owner:
        // the bucket owner for reads, the writer for writes (KMS resolves them in the
        // requester's account for writes made through S3).
        let resolve = if action.eq_ignore_ascii_case("kms:Decrypt") {
            owner.clone()
        } else {
            side.account.clone().or_else(|| owner.clone())
        }
        .unwrap_or_default();
        out.merge(self.kms_hop(
            side,
            &KmsHop {
                resolve_account: &resolve,
                bucket_region: &region,
                key_ref: &key_ref,
                action,
                context_arn: &context_arn,
                band: 100,
            },
        ));
        (out, owner.or_else(|| self.req.resource_account.clone()))
    }

    /// The KMS hop S3 makes for the caller (a forward access session) on the key
    /// `hop.key_ref`, for an object in a bucket of `hop.bucket_region`; aliases and key ids
    /// resolve in `hop.resolve_account`.
    pub(super) fn kms_hop(&self, side: &CallerSide<'s>, hop: &KmsHop<'_>) -> Outcome {
        let KmsHop {
            resolve_account,
            bucket_region,
            key_ref,
            action,
            context_arn,
            band,
        } = *hop;
        let mut out = Outcome::default();
        let Some((key_account, k)) = self.snap.key(key_ref, bucket_region, resolve_account) else {
            return self.key_missing(side, hop);
        };
        let key_account = key_account.to_owned();
        let key_arn = k.metadata.arn.clone();
        let tgt = Target::Key {
            account: key_account.clone(),
            arn: key_arn.clone(),
            region: k.metadata.region.clone(),
            object: Some(context_arn.to_owned()),
        };
        let caller_account = side.account.clone().unwrap_or_default();
        let mut stop = false;
        if k.metadata.region != bucket_region {
            let f = self.blocking(
                Code::KeyRegionMismatch,
                action,
                &key_account,
                explain::key_region_mismatch(&key_arn, &k.metadata.region, bucket_region),
                band + RANK_KEY_EXISTS,
                &tgt,
            );
            out.findings.push(f);
            stop = true;
        }
        if !k.is_usable() {
            let f = self.blocking(
                Code::KeyNotUsable,
                action,
                &key_account,
                explain::key_not_usable(&key_arn, k.metadata.key_state.as_str()),
                band + RANK_KEY_STATE,
                &tgt,
            );
            out.findings.push(f);
        }
        if k.is_aws_managed() && key_account != caller_account {
            let f = self.blocking(
                Code::AwsManagedKey,
                action,
                &key_account,
                explain::aws_managed_key(&key_arn, &key_account, &side.caller.arn, &caller_account),
                band + RANK_IMPLICIT + layer_rank(Layer::Resource),
                &tgt,
            );
            out.findings.push(f);
            out.push_hop(action, &key_arn, None);
            return out;
        }
        if stop {
            out.push_hop(action, &key_arn, None);
            return out;
        }
        let mut ctx = self.fas_context(side, bucket_region, context_arn);
        ctx.remove("aws:ResourceAccount");
        self.resource_org(&mut ctx, &key_account);
        let req = match Self::request(side, action, &key_arn, Some(&key_account), ctx) {
            Ok(req) => req,
            Err(e) => {
                out.unevaluated(action, &key_arn, Some(&key_account), &e.to_string());
                return out;
            }
        };
        // RCPs do not apply to AWS managed keys.
        let rcp: &[Vec<NamedPolicy>] = if k.is_aws_managed() {
            &[]
        } else {
            self.rcp_of(&key_account)
        };
        let stand = self.stand_in_key_policy(&mut out, side, k, &key_account, action);
        let resource = key_resource(k, stand.as_ref());
        let mut set = self.policy_set(side, resource, rcp);
        set.grants = k.grants.iter().map(|g| &g.grant).collect();
        let ev = authorize(&req, &set);
        out.push_hop(action, &key_arn, Some(&ev));
        if !side.identity_known {
            out.required_identity
                .push((action.to_owned(), key_arn.clone()));
        }
        let found = self.layer_findings(
            side,
            &LayerEval {
                req: &req,
                ev: &ev,
                action,
                resource: &key_arn,
                tgt: &tgt,
                resource_policy: k.policy.as_ref(),
                rcp,
                band,
                hop: HopKind::Kms,
                skip: key_side_unknown(k),
                // S3's request to KMS does not travel through the caller's VPC endpoint.
                vpc_endpoint: None,
            },
        );
        // Without the real key policy, a key-side cause would be invented by the stand-in
        // document: keep only what the caller's side shows.
        let key_policy_known = k.policy.is_some() || k.is_aws_managed();
        out.findings.extend(found.into_iter().filter(|f| {
            key_policy_known
                || !matches!(f.code, Code::KeyPolicyNoAllow | Code::KeyPolicyExplicitDeny)
        }));
        out.merge(self.engine_notes(&ev, &key_account));
        out
    }

    fn key_missing(&self, side: &CallerSide<'_>, hop: &KmsHop<'_>) -> Outcome {
        let KmsHop {
            resolve_account,
            key_ref,
            action,
            context_arn,
            band,
            ..
        } = *hop;
        let mut out = Outcome::default();
        let aws_managed = key_ref.contains("alias/aws/");
        let key_account = iam_eval::arn::Arn::parse(key_ref)
            .map(|a| a.account.to_owned())
            .unwrap_or_else(|| resolve_account.to_owned());
        let caller_account = side.account.clone().unwrap_or_default();
        if aws_managed && key_account != caller_account {
            let tgt = Target::Key {
                account: key_account.clone(),
                arn: key_ref.to_owned(),
                region: String::new(),
                object: (!context_arn.is_empty()).then(|| context_arn.to_owned()),
            };
            let f = self.blocking(
                Code::AwsManagedKey,
                action,
                &key_account,
                explain::aws_managed_key_by_alias(&key_account, &side.caller.arn),
                band + RANK_IMPLICIT + layer_rank(Layer::Resource),
                &tgt,
            );
            out.findings.push(f);
            out.push_hop(action, key_ref, None);
            return out;
        }
        out.incomplete = true;
        out.push_hop(action, key_ref, None);
        let alias_note = if key_ref.contains("alias/") && !key_ref.starts_with("arn:") {
            format!(" It is named by alias, which KMS resolves in the requester's account ({resolve_account}) — for a cross-account writer that is usually not the key the bucket owner meant.")
        } else {
            String::new()
        };
        out.advisory(
            Code::MissingEvidence,
            Some(action),
            Some(&key_account),
            explain::key_missing(key_ref, &key_account, action, &alias_note),
        );
        out.cap(Confidence::Low, "the object's key is not in the snapshot");
        out
    }

    /// A KMS call made by the principal directly (no S3 in between).
    pub(super) fn direct_kms(
        &self,
        side: &CallerSide<'s>,
        action: &str,
    ) -> (Outcome, Option<String>) {
        let mut out = Outcome::default();
        let Some(key_ref) = self.named_key().map(str::to_owned) else {
            out.incomplete = true;
            out.advisory(
                Code::MissingEvidence,
                Some(action),
                None,
                explain::kms_event_names_no_key(),
            );
            return (out, None);
        };
        let region = iam_eval::arn::Arn::parse(&key_ref)
            .map(|a| a.region.to_owned())
            .unwrap_or_default();
        let acct = side.account.clone().unwrap_or_default();
        let Some((key_account, k)) = self.snap.key(&key_ref, &region, &acct) else {
            let hop = KmsHop {
                resolve_account: &acct,
                bucket_region: &region,
                key_ref: &key_ref,
                action,
                context_arn: "",
                band: 100,
            };
            return (self.key_missing(side, &hop), None);
        };
        let key_account = key_account.to_owned();
        let tgt = Target::Key {
            account: key_account.clone(),
            arn: k.metadata.arn.clone(),
            region: k.metadata.region.clone(),
            object: None,
        };
        if !k.is_usable() {
            let f = self.blocking(
                Code::KeyNotUsable,
                action,
                &key_account,
                explain::key_not_usable_direct(&k.metadata.arn, k.metadata.key_state.as_str()),
                100 + RANK_KEY_STATE,
                &tgt,
            );
            out.findings.push(f);
        }
        let mut ctx = self.base_context(side);
        self.resource_org(&mut ctx, &key_account);
        // A direct call through a KMS VPC endpoint is filtered by that endpoint's policy.
        let (endpoint, gap) = self.request_endpoint(action);
        out.merge(gap);
        Self::endpoint_context(endpoint, &mut ctx);
        let req = match Self::request(side, action, &k.metadata.arn, Some(&key_account), ctx) {
            Ok(req) => req,
            Err(e) => {
                out.unevaluated(action, &k.metadata.arn, Some(&key_account), &e.to_string());
                return (out, Some(key_account));
            }
        };
        let rcp: &[Vec<NamedPolicy>] = if k.is_aws_managed() {
            &[]
        } else {
            self.rcp_of(&key_account)
        };
        let stand = self.stand_in_key_policy(&mut out, side, k, &key_account, action);
        let resource = key_resource(k, stand.as_ref());
        let mut set = self.policy_set(side, resource, rcp);
        set.grants = k.grants.iter().map(|g| &g.grant).collect();
        if let Some(e) = endpoint {
            e.apply(&mut set);
        }
        let ev = authorize(&req, &set);
        out.push_hop(action, &k.metadata.arn, Some(&ev));
        let found = self.layer_findings(
            side,
            &LayerEval {
                req: &req,
                ev: &ev,
                action,
                resource: &k.metadata.arn,
                tgt: &tgt,
                resource_policy: k.policy.as_ref(),
                rcp,
                band: 100,
                hop: HopKind::Kms,
                skip: key_side_unknown(k),
                vpc_endpoint: endpoint,
            },
        );
        // Without the real key policy, a key-side cause would be invented by the stand-in.
        let key_policy_known = k.policy.is_some() || k.is_aws_managed();
        out.findings.extend(found.into_iter().filter(|f| {
            key_policy_known
                || !matches!(f.code, Code::KeyPolicyNoAllow | Code::KeyPolicyExplicitDeny)
        }));
        (out, Some(key_account))
    }
}

#[cfg(test)]
mod tests {
    use iam_eval::Caller;

    use super::super::testing::{read, working};
    use super::*;

    fn kms_outcome(bucket_region: &str, partition_arn: &str) -> (Outcome, Outcome) {
        let (snap, _) = working();
        let req = read("aws");
        let ctx = Ctx::for_test(&snap, &req).expect("context");
        let caller = Caller::parse(partition_arn).expect("caller");
        let (side, _) = ctx.caller_side(caller);
        let hop = KmsHop {
            resolve_account: "111122223333",
            bucket_region,
            key_ref: "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            action: "kms:Decrypt",
            context_arn: "arn:aws:s3:::doc-example-bucket/reports/q1.csv",
            band: 100,
        };
        let same = ctx.kms_hop(&side, &hop);
        let managed = ctx.kms_hop(
            &side,
            &KmsHop {
                key_ref: "alias/aws/s3",
                ..hop
            },
        );
        (same, managed)
    }

    #[test]
    fn the_kms_hop_of_the_working_setup_is_allowed() {
        let (out, _) = kms_outcome(
            "us-west-2",
            "arn:aws:sts::444455556666:assumed-role/reader/s1",
        );
        assert_eq!(out.hops.len(), 1);
        assert_eq!(out.hops[0].decision, "Allowed");
        assert!(
            out.findings.iter().all(|f| !f.blocking),
            "{:?}",
            out.findings
        );
    }

    #[test]
    fn a_key_in_another_region_blocks_before_any_policy() {
        let (out, _) = kms_outcome(
            "eu-west-1",
            "arn:aws:sts::444455556666:assumed-role/reader/s1",
        );
        assert_eq!(out.hops[0].decision, "NotEvaluated");
        let codes: Vec<Code> = out
            .findings
            .iter()
            .filter(|f| f.blocking)
            .map(|f| f.code)
            .collect();
        assert_eq!(codes, [Code::KeyRegionMismatch]);
    }

    #[test]
    fn another_accounts_aws_managed_key_is_never_usable() {
        let (_, managed) = kms_outcome(
            "us-west-2",
            "arn:aws:sts::444455556666:assumed-role/reader/s1",
        );
        let codes: Vec<Code> = managed
            .findings
            .iter()
            .filter(|f| f.blocking)
            .map(|f| f.code)
            .collect();
        // The aws/s3 key of account A is either in the snapshot (AWS_MANAGED_KEY) or
        // recognised by its alias (AWS_MANAGED_KEY as well): never a policy fix.
        assert_eq!(codes, [Code::AwsManagedKey]);
    }
}

//! The S3 side of a request: the object read or write (the S3 hop), what the bucket's
//! encryption says about the key, and the plan that leads to the KMS hop.

use iam_eval::{authorize, ContextValue, Decision, Layer, Named};

use super::bpa::PublicStrip;
use super::caller::CallerSide;
use super::explain;
use super::findings::{Code, StatementInfo};
use super::fix::{self, Target};
use super::kms::KmsHop;
use super::layers::{layer_rank, HopKind};
use super::outcome::{Outcome, RANK_EXPLICIT, RANK_IMPLICIT};
use super::run::{Ctx, LayerEval};
use super::{Confidence, Operation};
use crate::refs;
use crate::snapshot::{Bucket, Key};

/// One S3 hop: the caller's request on an object of a bucket of the snapshot.
#[derive(Clone, Copy)]
pub(super) struct S3Hop<'a, 's> {
    /// The bucket owner.
    pub owner: &'a str,
    /// The bucket name.
    pub bucket: &'a str,
    /// The bucket as the snapshot holds it.
    pub b: &'s Bucket,
    /// `s3:GetObject`, `s3:GetObjectVersion`, `s3:PutObject`.
    pub action: &'a str,
    /// The object ARN (or `bucket/*` when the key is unknown).
    pub object_arn: &'a str,
    /// The object key, when known.
    pub key: Option<&'a str>,
    /// The rank band of the hop (100 per hop).
    pub band: u32,
}

impl<'s> Ctx<'s> {
    pub(super) fn no_bucket(&self) -> (Outcome, Option<String>) {
        let mut out = Outcome {
            incomplete: true,
            ..Outcome::default()
        };
        out.advisory(Code::MissingEvidence, None, None, explain::no_bucket());
        (out, None)
    }

    /// A read: the S3 hop, then (except for HeadObject) the KMS hop on the object's key.
    /// `named_key`: whether a key the request names may stand for the object's (not for a
    /// copy source, whose request headers name the destination's key). Returns the bucket
    /// owner.
    pub(super) fn object_read(
        &self,
        side: &CallerSide<'s>,
        bucket: &str,
        key: Option<&str>,
        named_key: bool,
        band: u32,
    ) -> (Outcome, Option<String>) {
        let mut out = Outcome::default();
        let head = self.req.operation == Operation::HeadObject;
        let Some((owner, b)) = self.snap.bucket(bucket) else {
            return self.bucket_missing(side, bucket, self.req.read_action(), key);
        };
        let owner = owner.to_owned();
        let bucket_ref = self.bucket_ref(bucket);
        let object_arn = bucket_ref.objects_arn(key.unwrap_or("*"));
        let object = key.and_then(|k| b.objects.get(k));
        out.merge(self.s3_hop(
            side,
            &S3Hop {
                owner: &owner,
                bucket,
                b,
                action: self.req.read_action(),
                object_arn: &object_arn,
                key,
                band,
            },
        ));
        out.merge(self.encryption_advisories(&owner, bucket, b, key));
        // A missing object answers 403 to HEAD as to GET without s3:ListBucket.
        if let Some(k) = key.filter(|k| !b.objects.contains_key(*k)) {
            out.merge(self.missing_object_note(side, &owner, bucket, b, k));
        }
        if head {
            out.assumptions.push(explain::head_object_no_kms());
            return (out, Some(owner));
        }
        // The key that actually encrypted the object: object metadata first, then the key the
        // event names, then (as a stated assumption) the bucket default.
        let key_ref = match object {
            Some(o) => match o.sse.as_deref() {
                Some("aws:kms") | Some("aws:kms:dsse") => {
                    o.kms_key_id.clone().map(|k| (k, o.bucket_key_enabled))
                }
                Some(other) => {
                    out.assumptions.push(explain::not_sse_kms_object(other));
                    return (out, Some(owner));
                }
                None => None,
            },
            None => None,
        };
        let key_ref = match key_ref {
            Some(k) => Some(k),
            None => match self.named_key().filter(|_| named_key) {
                Some(k) => Some((k.to_owned(), self.bucket_key_hint().unwrap_or(false))),
                None => {
                    let (o, k) = self.assumed_default_key(&owner, bucket, b, key);
                    out.merge(o);
                    k
                }
            },
        };
        let Some((key_ref, bucket_key)) = key_ref else {
            return (out, Some(owner));
        };
        let bucket_key = self.bucket_key_hint().unwrap_or(bucket_key);
        let context_arn = if bucket_key {
            bucket_ref.arn()
        } else {
            object_arn.clone()
        };
        out.merge(self.kms_hop(
            side,
            &KmsHop {
                resolve_account: &owner,
                bucket_region: &b.region,
                key_ref: &key_ref,
                action: "kms:Decrypt",
                context_arn: &context_arn,
                band: band + 100,
            },
        ));
        (out, Some(owner))
    }

    /// A write: the S3 hop (`s3:PutObject`), then `kms:GenerateDataKey` (and `kms:Decrypt` for
    /// multipart uploads) on the write key, when the object will be SSE-KMS.
    pub(super) fn object_write(
        &self,
        side: &CallerSide<'s>,
        bucket: &str,
        key: Option<&str>,
        band: u32,
    ) -> (Outcome, Option<String>) {
        let mut out = Outcome::default();
        let Some((owner, b)) = self.snap.bucket(bucket) else {
            return self.bucket_missing(side, bucket, "s3:PutObject", key);
        };
        let owner = owner.to_owned();
        let bucket_ref = self.bucket_ref(bucket);
        let object_arn = bucket_ref.objects_arn(key.unwrap_or("*"));
        out.merge(self.s3_hop(
            side,
            &S3Hop {
                owner: &owner,
                bucket,
                b,
                action: "s3:PutObject",
                object_arn: &object_arn,
                key,
                band,
            },
        ));
        out.merge(self.encryption_advisories(&owner, bucket, b, None));
        // The write key (PutObject API reference, x-amz-server-side-encryption): the request
        // header decides; `aws:kms` without a key id means the AWS managed key `aws/s3`; with
        // no header the bucket default applies. Aliases and bare key ids resolve in the
        // requester's account.
        let requester = side.account.clone().unwrap_or_else(|| owner.clone());
        // The request's Bucket Key header wins over the bucket default's setting.
        let default_bucket_key = self
            .req
            .sse_bucket_key
            .unwrap_or_else(|| b.encryption.as_ref().is_some_and(|e| e.bucket_key_enabled));
        let sse = self.req.sse.as_deref();
        let (key_ref, bucket_key) = match (sse, self.named_key(), &b.encryption) {
            (Some(alg), _, _) if !alg.starts_with("aws:kms") => {
                out.assumptions.push(explain::write_not_sse_kms_header(alg));
                (None, false)
            }
            (_, Some(k), _) => (Some(k.to_owned()), default_bucket_key),
            (Some(alg), None, _) => {
                out.assumptions
                    .push(explain::write_kms_without_key_id(alg, &requester));
                (Some("alias/aws/s3".to_owned()), default_bucket_key)
            }
            (None, None, Some(enc)) if enc.algorithm.starts_with("aws:kms") => (
                Some(
                    enc.kms_key_id
                        .clone()
                        .unwrap_or_else(|| "alias/aws/s3".to_owned()),
                ),
                default_bucket_key,
            ),
            (None, None, _) => {
                out.assumptions.push(explain::write_not_sse_kms());
                (None, false)
            }
        };
        let Some(key_ref) = key_ref else {
            return (out, Some(owner));
        };
        let context_arn = if bucket_key {
            bucket_ref.arn()
        } else {
            object_arn
        };
        let hop = KmsHop {
            resolve_account: &requester,
            bucket_region: &b.region,
            key_ref: &key_ref,
            action: "kms:GenerateDataKey",
            context_arn: &context_arn,
            band: band + 100,
        };
        out.merge(self.kms_hop(side, &hop));
        // A multipart upload (also one built by UploadPartCopy) has S3 decrypt the data key
        // for each part.
        let multipart = matches!(
            self.req.operation,
            Operation::MultipartUpload
                | Operation::CopyObject {
                    multipart: true,
                    ..
                }
        );
        if multipart {
            out.merge(self.kms_hop(
                side,
                &KmsHop {
                    action: "kms:Decrypt",
                    band: band + 150,
                    ..hop
                },
            ));
        }
        (out, Some(owner))
    }

    fn bucket_missing(
        &self,
        side: &CallerSide<'s>,
        bucket: &str,
        action: &str,
        key: Option<&str>,
    ) -> (Outcome, Option<String>) {
        let mut out = Outcome {
            incomplete: true,
            ..Outcome::default()
        };
        let owner = self.req.resource_account.clone();
        let object_arn = self.bucket_ref(bucket).objects_arn(key.unwrap_or("*"));
        // The bucket owner's side is unknown: evaluate the caller's side alone, as if the
        // bucket policy allowed, so that causes in the caller's account are still found.
        match (&owner, side.identity_known) {
            (Some(o), true) => {
                let ctx = self.base_context(side);
                let built = Self::request(side, action, &object_arn, Some(o), ctx);
                if let Err(e) = &built {
                    out.unevaluated(action, &object_arn, Some(o), &e.to_string());
                }
                if let Ok(req) = built {
                    let resource = Some(Named {
                        name: "(bucket policy not in the snapshot, assumed to allow)",
                        policy: &self.assumed.rcp_full_access,
                    });
                    let set = self.policy_set(side, resource, &[]);
                    let ev = authorize(&req, &set);
                    out.push_hop(action, &object_arn, Some(&ev));
                    let tgt = Target::Bucket {
                        account: o.clone(),
                        bucket: bucket.to_owned(),
                        region: String::new(),
                        object: object_arn.clone(),
                    };
                    let mut found = self.layer_findings(
                        side,
                        &LayerEval {
                            req: &req,
                            ev: &ev,
                            action,
                            resource: &object_arn,
                            tgt: &tgt,
                            resource_policy: None,
                            rcp: &[],
                            band: 0,
                            hop: HopKind::S3,
                            skip: &[Code::BucketPolicyNoAllow, Code::BucketPolicyExplicitDeny],
                            vpc_endpoint: None,
                        },
                    );
                    found.retain(|f| {
                        f.code != Code::BucketPolicyNoAllow
                            && f.code != Code::BucketPolicyExplicitDeny
                    });
                    out.findings.extend(found);
                }
            }
            _ => out.push_hop(action, &object_arn, None),
        }
        out.advisory(
            Code::MissingEvidence,
            Some(action),
            owner.as_deref(),
            explain::bucket_missing(
                bucket,
                owner
                    .as_ref()
                    .map(|o| format!(" It belongs to account {o}; add that account's `s3` data."))
                    .unwrap_or_default(),
            ),
        );
        out.cap(Confidence::Low, "the bucket is not in the snapshot");
        (out, owner)
    }

    /// An object the snapshot does not list may not exist at all: without `s3:ListBucket`
    /// S3 then answers 403 AccessDenied instead of 404 NoSuchKey (docs/checklist.md, C01), which no policy
    /// change will cure.
    fn missing_object_note(
        &self,
        side: &CallerSide<'s>,
        owner: &str,
        bucket: &str,
        b: &'s Bucket,
        key: &str,
    ) -> Outcome {
        let mut out = Outcome::default();
        let ctx = self.base_context(side);
        let Ok(req) = Self::request(
            side,
            "s3:ListBucket",
            &self.bucket_ref(bucket).arn(),
            Some(owner),
            ctx,
        ) else {
            return out;
        };
        let resource = b.policy.as_ref().map(|p| Named {
            name: p.name.as_str(),
            policy: &p.policy,
        });
        let set = self.policy_set(side, resource, self.rcp_of(owner));
        if authorize(&req, &set).decision != Decision::Allowed {
            out.advisory(
                Code::MissingEvidence,
                Some("s3:GetObject"),
                Some(owner),
                explain::object_maybe_missing(key, &side.caller.arn, bucket),
            );
        }
        out
    }

    /// Which key the bucket default names, stated as an assumption.
    pub(super) fn assumed_default_key(
        &self,
        owner: &str,
        bucket: &str,
        b: &Bucket,
        key: Option<&str>,
    ) -> (Outcome, Option<(String, bool)>) {
        let mut out = Outcome::default();
        let what = match key {
            Some(k) => format!("object `{k}`"),
            None => "the object".to_owned(),
        };
        match &b.encryption {
            Some(enc) if enc.algorithm.starts_with("aws:kms") => {
                let k = enc
                    .kms_key_id
                    .clone()
                    .unwrap_or_else(|| "alias/aws/s3".to_owned());
                out.assumptions
                    .push(explain::default_key_assumed(&what, &k));
                out.advisory(
                    Code::MissingEvidence,
                    Some("kms:Decrypt"),
                    Some(owner),
                    explain::no_object_metadata(&what, bucket),
                );
                out.cap(
                    Confidence::Medium,
                    "object metadata missing; default key assumed",
                );
                (out, Some((k, enc.bucket_key_enabled)))
            }
            Some(_) => {
                out.assumptions.push(explain::default_sse_s3_assumed(&what));
                out.cap(Confidence::Medium, "object metadata missing");
                (out, None)
            }
            None => {
                out.assumptions.push(explain::no_encryption_data(&what));
                out.cap(
                    Confidence::Medium,
                    "object metadata and default encryption missing",
                );
                (out, None)
            }
        }
    }

    /// The S3 hop: the caller's request for `hop.action` on the object, evaluated against
    /// the bucket policy, the caller's policies, SCPs and RCPs, Block Public Access and
    /// object ownership.
    fn s3_hop(&self, side: &CallerSide<'s>, hop: &S3Hop<'_, 's>) -> Outcome {
        let S3Hop {
            owner,
            bucket,
            b,
            action,
            object_arn,
            key,
            band,
        } = *hop;
        let mut out = Outcome::default();
        // Through an access point, the access point's side is evaluated first, and the
        // bucket's side below sees the access point's condition keys (docs/design.md,
        // "Access points").
        let via = self.via_access_point(hop);
        if let Some(v) = &via {
            out.merge(self.access_point_side(side, hop, v));
        }
        let mut ctx = self.base_context(side);
        // The VPC endpoint the caller's request came through (its policy filters this hop).
        let (endpoint, gap) = self.request_endpoint(action);
        out.merge(gap);
        Self::endpoint_context(endpoint, &mut ctx);
        if let Some(v) = &via {
            Self::access_point_context(v, &mut ctx);
        }
        // The owner of this hop's bucket, not the record's resource: a CopyObject reads one
        // bucket and writes another.
        ctx.insert(
            "aws:ResourceAccount",
            ContextValue::Single(owner.to_owned()),
        );
        ctx.insert("s3:ResourceAccount", ContextValue::Single(owner.to_owned()));
        if let Some(org) = self
            .snap
            .account(owner)
            .and_then(|a| a.organization.as_ref())
            .and_then(|o| o.id.clone())
        {
            ctx.insert_if_absent("aws:ResourceOrgID", ContextValue::Single(org));
        }
        if action.starts_with("s3:GetObject") {
            if let Some(o) = key.and_then(|k| b.objects.get(k)) {
                for (k, v) in &o.tags {
                    ctx.insert_if_absent(
                        &format!("s3:ExistingObjectTag/{k}"),
                        ContextValue::Single(v.clone()),
                    );
                }
            }
        }
        // When the record cannot tell whether TLS was used, the same request over plain HTTP,
        // to find out whether the verdict depends on it.
        let over_http = (!ctx.contains("aws:SecureTransport"))
            .then(|| {
                let mut http = ctx.clone();
                http.insert("aws:SecureTransport", ContextValue::Single("false".into()));
                Self::request(side, action, object_arn, Some(owner), http).ok()
            })
            .flatten();
        let req = match Self::request(side, action, object_arn, Some(owner), ctx) {
            Ok(req) => req,
            Err(e) => {
                out.unevaluated(action, object_arn, Some(owner), &e.to_string());
                return out;
            }
        };
        let rcp = self.rcp_of(owner);
        let cross = side.account.as_deref() != Some(owner);
        // Block Public Access: with RestrictPublicBuckets, public statements grant nothing to
        // other accounts, so they are left out of the evaluation (bpa.rs).
        let strip = PublicStrip::new(
            b.policy.as_ref(),
            self.restricts_public(b.public_access_block, owner),
            cross,
        );
        let resource = b.policy.as_ref().map(|p| Named {
            name: p.name.as_str(),
            policy: &p.policy,
        });
        let mut set = self.policy_set(side, resource, rcp);
        // Through an access point, the endpoint policy was evaluated on the access point's
        // side, against the access point ARN the request named (access_point.rs).
        let endpoint_here = if via.is_none() { endpoint } else { None };
        if let Some(e) = endpoint_here {
            e.apply(&mut set);
        }
        if via.is_some() && cross {
            // The caller's own policies were judged on the access point ARN; across accounts
            // the bucket's side is the bucket policy (and the owner's RCPs) alone.
            set.identity = vec![Named {
                name: "(identity policies, judged on the access point)",
                policy: &self.assumed.identity_allow_all,
            }];
            set.permissions_boundary = None;
            set.session = None;
            set.scp = Vec::new();
        }
        let ev_full = authorize(&req, &set);
        let (ev, bpa_blocks) = match (&strip, &b.policy) {
            (Some(strip), Some(p)) => strip.authorize(&req, &set, &p.name, &ev_full),
            _ => (ev_full, false),
        };
        out.push_hop(action, object_arn, Some(&ev));
        if let Some(http) = &over_http {
            let ev_http = authorize(http, &set);
            if ev_http.decision != ev.decision {
                let statements: Vec<String> = ev_http
                    .statements
                    .iter()
                    .map(|st| match st.sid {
                        Some(sid) => {
                            format!("statement {} (Sid `{sid}`) of {}", st.index, st.policy)
                        }
                        None => format!("statement {} of {}", st.index, st.policy),
                    })
                    .collect();
                out.advisory(
                    Code::MissingEvidence,
                    Some(action),
                    Some(owner),
                    explain::verdict_depends_on_tls(
                        ev_http.decision,
                        &if statements.is_empty() {
                            String::new()
                        } else {
                            format!(" by {}", statements.join(", "))
                        },
                    ),
                );
                // The verdict rests on evidence the record lacks: not `allowed`.
                out.incomplete = true;
                out.cap(
                    Confidence::Medium,
                    "the verdict depends on aws:SecureTransport, which the record does not show",
                );
            }
        }
        if !side.identity_known {
            out.required_identity
                .push((action.to_owned(), object_arn.to_owned()));
        }
        let tgt = Target::Bucket {
            account: owner.to_owned(),
            bucket: bucket.to_owned(),
            region: b.region.clone(),
            object: object_arn.to_owned(),
        };
        // An object another account owns (ACLs enabled): the bucket policy does not cover it,
        // so a missing bucket-policy allow is not the cause; the ownership check below is.
        let foreign_object = key.and_then(|k| b.objects.get(k)).is_some_and(|o| {
            let bucket_owner_id = b.acl_owner_id.clone().or_else(|| {
                self.snap
                    .account(owner)
                    .and_then(|a| a.canonical_id.clone())
            });
            !b.acls_disabled()
                && o.owner_id.is_some()
                && bucket_owner_id.is_some()
                && o.owner_id != bucket_owner_id
        });
        let mut skip: Vec<Code> = Vec::new();
        if bpa_blocks || foreign_object {
            skip.extend([
                Code::BucketPolicyNoAllow,
                Code::BucketPolicyNoAccessPointDelegation,
            ]);
        }
        if via.is_some() {
            // Reported once, from the access point's side of the hop.
            skip.extend(CALLER_CODES);
        }
        let mut found = self.layer_findings(
            side,
            &LayerEval {
                req: &req,
                ev: &ev,
                action,
                resource: object_arn,
                tgt: &tgt,
                resource_policy: b.policy.as_ref(),
                rcp,
                band,
                hop: if via.is_some() {
                    HopKind::BucketViaAccessPoint
                } else {
                    HopKind::S3
                },
                skip: &skip,
                vpc_endpoint: endpoint_here,
            },
        );
        if bpa_blocks {
            let p = b.policy.as_ref();
            let statements: Vec<StatementInfo> = p
                .zip(strip.as_ref())
                .map(|(p, strip)| strip.statements(p))
                .unwrap_or_default();
            found.retain(|f| {
                f.code != Code::BucketPolicyNoAllow
                    && f.code != Code::BucketPolicyNoAccessPointDelegation
            });
            let grantee = side
                .principal_arn
                .clone()
                .unwrap_or_else(|| side.caller.arn.clone());
            let current = b
                .policy
                .as_ref()
                .and_then(|np| self.rewritten.borrow().get(&np.pointer).cloned());
            let bpa_fix = fix::bucket_grant(
                b.policy.as_ref(),
                current.as_ref(),
                owner,
                bucket,
                &grantee,
                action,
                object_arn,
            );
            let mut bpa = self.blocking(
                Code::BlockPublicAccess,
                action,
                owner,
                explain::block_public_access(bucket, owner, &side.caller.arn),
                band + RANK_EXPLICIT + layer_rank(Layer::Resource),
                &tgt,
            );
            bpa.policy = p.map(|p| p.name.clone());
            bpa.statements = statements;
            found.push(bpa);
            if self.with_fixes {
                if let Some(f) = found.last_mut() {
                    let mut bpa_fix = bpa_fix;
                    bpa_fix.notes.push(explain::bpa_fix_note());
                    self.remember(Some(&mut bpa_fix));
                    f.fix = Some(bpa_fix);
                }
            }
        }
        // Object ownership: a bucket-policy Allow covers only objects the bucket owner owns
        // (docs/design.md, "Block Public Access and object ownership"); another account's object needs its own ACL grant.
        if let Some(o) = key.and_then(|k| b.objects.get(k)) {
            let bucket_owner_id = b.acl_owner_id.clone().or_else(|| {
                self.snap
                    .account(owner)
                    .and_then(|a| a.canonical_id.clone())
            });
            if let (false, Some(oid), Some(bid)) =
                (b.acls_disabled(), &o.owner_id, &bucket_owner_id)
            {
                if oid != bid {
                    let caller_canon = side
                        .account
                        .as_deref()
                        .and_then(|a| self.snap.account(a))
                        .and_then(|a| a.canonical_id.clone());
                    // The stricter of the bucket and account settings applies.
                    let ignore_public = b.public_access_block.is_some_and(|p| p.ignore_public_acls)
                        || self
                            .snap
                            .account(owner)
                            .and_then(|a| a.public_access_block)
                            .is_some_and(|p| p.ignore_public_acls);
                    let acl_grants = o.grants.iter().any(|g| {
                        g.permission.allows_read()
                            && match &g.grantee {
                                crate::snapshot::Grantee::CanonicalUser { id } => {
                                    Some(id) == caller_canon.as_ref()
                                }
                                grantee => grantee.is_public() && !ignore_public,
                            }
                    });
                    found.retain(|f| {
                        f.code != Code::BucketPolicyNoAllow
                            && f.code != Code::BucketPolicyNoAccessPointDelegation
                    });
                    if acl_grants && !found.iter().any(|f| f.blocking) {
                        // The object's ACL grants the read the bucket policy cannot: the hop
                        // is allowed although the engine, which sees no ACLs, denied it.
                        if let Some(h) = out.hops.last_mut() {
                            h.decision = "Allowed".into();
                            h.denied_by.clear();
                        }
                    }
                    if !acl_grants {
                        let writer = self.snap.account_by_canonical_id(oid).map(str::to_owned);
                        found.push(
                            self.blocking(
                                Code::ObjectOwnerMismatch,
                                action,
                                owner,
                                explain::object_owner_mismatch(
                                    key.unwrap_or(""),
                                    writer.unwrap_or_else(|| format!("canonical id {oid}")),
                                    owner,
                                    b.ownership
                                        .map_or("ObjectWriter (no ownership controls)", |x| {
                                            x.as_str()
                                        }),
                                    &side.caller.arn,
                                ),
                                band + RANK_IMPLICIT + layer_rank(Layer::Resource),
                                &tgt,
                            ),
                        );
                    }
                }
            }
        }
        out.findings.extend(found);
        out.merge(self.engine_notes(&ev, owner));
        out
    }

    /// Advisory findings about the bucket's default encryption and the object's key.
    fn encryption_advisories(
        &self,
        owner: &str,
        bucket: &str,
        b: &Bucket,
        key: Option<&str>,
    ) -> Outcome {
        let mut out = Outcome::default();
        let Some(enc) = &b.encryption else { return out };
        if !enc.algorithm.starts_with("aws:kms") {
            return out;
        }
        let default_key = enc.kms_key_id.clone();
        match &default_key {
            Some(k) if k.starts_with("alias/") || k.contains(":alias/") => {
                out.advisory(
                    Code::DefaultEncryptionAlias,
                    None,
                    Some(owner),
                    explain::default_encryption_alias(
                        bucket,
                        k,
                        refs::key_arn(self.req.partition, &b.region, owner, "<key-id>"),
                    ),
                );
                out.cap(Confidence::Medium, "default encryption names an alias");
            }
            _ => {}
        }
        let default_resolved = match &default_key {
            Some(k) => self.snap.key(k, &b.region, owner).map(|(_, key)| key),
            None => self
                .snap
                .key("alias/aws/s3", &b.region, owner)
                .map(|(_, key)| key),
        };
        let aws_managed_default = default_key.is_none()
            || default_key
                .as_deref()
                .is_some_and(|k| k.contains("alias/aws/"))
            || default_resolved.is_some_and(Key::is_aws_managed);
        if aws_managed_default {
            out.advisory(
                Code::DefaultEncryptionAwsManagedKey,
                None,
                Some(owner),
                explain::default_encryption_aws_managed(
                    bucket,
                    if default_key.is_none() {
                        " (SSE-KMS with no key id)"
                    } else {
                        ""
                    },
                ),
            );
        }
        if let (Some(k), Some(def)) = (key.and_then(|k| b.objects.get(k)), default_resolved) {
            if let Some(obj_key) = &k.kms_key_id {
                let obj_resolved = self
                    .snap
                    .key(obj_key, &b.region, owner)
                    .map(|(_, key)| key.metadata.arn.clone())
                    .unwrap_or_else(|| obj_key.clone());
                if obj_resolved != def.metadata.arn {
                    out.advisory(
                        Code::ObjectKeyNotDefault,
                        None,
                        Some(owner),
                        explain::object_key_not_default(
                            key.unwrap_or(""),
                            &obj_resolved,
                            &def.metadata.arn,
                        ),
                    );
                }
            }
        }
        out
    }
}

/// The codes of the caller's own layers, which a request through an access point meets on the
/// access point's side of the hop.
const CALLER_CODES: [Code; 8] = [
    Code::IdentityPolicyNoAllow,
    Code::IdentityPolicyExplicitDeny,
    Code::PermissionsBoundaryNoAllow,
    Code::PermissionsBoundaryExplicitDeny,
    Code::SessionPolicyNoAllow,
    Code::SessionPolicyExplicitDeny,
    Code::ScpNoAllow,
    Code::ScpExplicitDeny,
];

#[cfg(test)]
mod tests {
    use iam_eval::Caller;

    use serde_json::Value;

    use super::super::testing::{read, working};
    use super::*;

    fn hop_outcome(patch: impl FnOnce(&mut Value)) -> Outcome {
        let (_, mut raw) = working();
        patch(&mut raw);
        let snap = crate::snapshot::Snapshot::from_value(&raw).unwrap_or_default();
        let req = read("aws");
        let ctx = Ctx::for_test(&snap, &req).expect("context");
        let caller =
            Caller::parse("arn:aws:sts::444455556666:assumed-role/reader/s1").expect("caller");
        let (side, _) = ctx.caller_side(caller);
        let (owner, b) = snap.bucket("doc-example-bucket").expect("bucket");
        ctx.s3_hop(
            &side,
            &S3Hop {
                owner,
                bucket: "doc-example-bucket",
                b,
                action: "s3:GetObject",
                object_arn: "arn:aws:s3:::doc-example-bucket/reports/q1.csv",
                key: Some("reports/q1.csv"),
                band: 0,
            },
        )
    }

    #[test]
    fn the_s3_hop_of_the_working_setup_is_allowed() {
        let out = hop_outcome(|_| {});
        assert_eq!(out.hops.len(), 1);
        assert_eq!(out.hops[0].decision, "Allowed");
        assert!(
            out.findings.iter().all(|f| !f.blocking),
            "{:?}",
            out.findings
        );
    }

    #[test]
    fn a_bucket_policy_deny_is_a_blocking_finding_for_the_bucket_owner() {
        let out = hop_outcome(|raw| {
            if let Some(Value::Array(st)) =
                raw.pointer_mut("/accounts/111122223333/s3/doc-example-bucket/policy/Statement")
            {
                st.push(serde_json::json!({"Effect": "Deny", "Principal": "*",
                    "Action": "s3:GetObject", "Resource": "arn:aws:s3:::doc-example-bucket/reports/*"}));
            }
        });
        assert_eq!(out.hops[0].decision, "ExplicitlyDenied");
        let f: Vec<_> = out.findings.iter().filter(|f| f.blocking).collect();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, Code::BucketPolicyExplicitDeny);
        assert_eq!(f[0].account.as_deref(), Some("111122223333"));
        assert!(f[0].fix.is_some());
    }
}

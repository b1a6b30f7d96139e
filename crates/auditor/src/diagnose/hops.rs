//! Evaluating each hop against the snapshot and turning the engine's answers into findings.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use iam_eval::{
    authorize, Caller, CallerKind, Context, ContextValue, Decision, Evaluation, Layer, Named,
    Policy, PolicySet, Request as EvalRequest,
};

use super::findings::{Code, Finding, StatementInfo};
use super::fix::{self, FixContext, Target};
use super::{Confidence, Diagnosis, EventRef, Hop, Operation, Request, Verdict};
use crate::refs::{self, BucketRef, Partition};
use crate::snapshot::{Bucket, Key, NamedPolicy, Snapshot};

/// Ranks: the order AWS meets the walls. Each hop gets a band of 100.
const RANK_KEY_EXISTS: u32 = 1;
const RANK_KEY_STATE: u32 = 2;
const RANK_EXPLICIT: u32 = 10;
const RANK_IMPLICIT: u32 = 30;
const RANK_ADVISORY: u32 = 10_000;

fn layer_rank(layer: Layer) -> u32 {
    match layer {
        Layer::Rcp => 0,
        Layer::Scp => 1,
        Layer::Resource => 2,
        Layer::Identity => 3,
        Layer::PermissionsBoundary => 4,
        Layer::Session => 5,
    }
}

/// Everything known about the caller's side (account B).
struct CallerSide<'s> {
    caller: Caller,
    account: Option<String>,
    /// The caller's identity policies are known (IAM data found, or root).
    identity_known: bool,
    identity: Vec<&'s NamedPolicy>,
    boundary: Option<&'s NamedPolicy>,
    /// The session policy, when the session's creation is in the snapshot.
    session: Option<&'s NamedPolicy>,
    /// `aws:PrincipalArn` with the role path when known.
    principal_arn: Option<String>,
    tags: BTreeMap<String, String>,
    scp: Vec<Vec<&'s NamedPolicy>>,
    org_id: Option<String>,
}

/// The synthetic documents used where the snapshot is silent.
struct Assumed {
    /// Stands in for unknown identity policies so that the visible side is evaluated alone.
    identity_allow_all: Policy,
    /// `RCPFullAWSAccess`, attached at every level and impossible to detach.
    rcp_full_access: Policy,
}

impl Assumed {
    fn new() -> Option<Assumed> {
        Some(Assumed {
            identity_allow_all: Policy::from_value(&json!({"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
            .ok()?,
            rcp_full_access: Policy::from_value(&json!({"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}))
            .ok()?,
        })
    }
}

/// The state of one diagnosis run.
pub(super) struct Run<'s> {
    snap: &'s Snapshot,
    raw: &'s Value,
    req: &'s Request,
    with_fixes: bool,
    pub findings: Vec<Finding>,
    pub assumptions: Vec<String>,
    pub hops: Vec<Hop>,
    caps: Vec<(Confidence, String)>,
    incomplete: bool,
    /// Hops whose identity side was assumed (caller's account not in the snapshot): what the
    /// caller's IAM must allow.
    required_identity: Vec<(String, String)>,
    caller_account_missing: Option<String>,
    /// Documents rewritten by the fixes proposed so far (see `FixContext::rewritten`).
    rewritten: std::cell::RefCell<BTreeMap<String, Value>>,
}

/// Runs the diagnosis (without fix verification).
pub(super) fn run(snap: &Snapshot, raw: &Value, req: &Request, with_fixes: bool) -> Diagnosis {
    let mut r = Run {
        snap,
        raw,
        req,
        with_fixes,
        findings: Vec::new(),
        assumptions: Vec::new(),
        hops: Vec::new(),
        caps: Vec::new(),
        incomplete: false,
        required_identity: Vec::new(),
        caller_account_missing: None,
        rewritten: std::cell::RefCell::new(BTreeMap::new()),
    };
    r.collection_gaps();
    r.assumptions.extend(req.assumptions.iter().cloned());
    let caller = match Caller::parse(req.principal.arn().unwrap_or_default()) {
        Ok(c) => Ok(c),
        // A resource owner's copy of a cross-account record carries only the principal id:
        // find the role or user it belongs to in the snapshot.
        Err(e) => match req
            .principal_id
            .as_deref()
            .and_then(|id| resolve_unique_id(snap, id))
        {
            Some(arn) => {
                r.assumptions.push(format!("The record names the caller only by its unique id `{}`; it was resolved to `{arn}` through the snapshot's IAM data.", req.principal_id.as_deref().unwrap_or("")));
                Caller::parse(&arn)
            }
            None => Err(e),
        },
    };
    let Ok(caller) = caller else {
        r.incomplete = true;
        r.advisory(
            Code::MissingEvidence,
            None,
            None,
            format!(
                "The caller `{}` cannot be identified: a resource owner's copy of a cross-account record (userIdentity type AWSAccount) carries only the account and a unique id, and no account in the snapshot has that id. Use the caller's copy of the event (same sharedEventID) from the caller's account, or add that account's IAM data.",
                req.principal_label()
            ),
        );
        return r.finish(None, None);
    };
    let Some(assumed) = Assumed::new() else {
        r.incomplete = true;
        return r.finish(caller.account.clone(), None);
    };
    let side = r.caller_side(caller);
    let principal_account = side.account.clone();
    // The hop plan of each operation (docs/design.md, "Hop plans").
    let resource_account = match &req.operation {
        Operation::CopyObject {
            source_bucket,
            source_key,
        } => {
            // The source is read with its own key: the request's encryption headers name
            // the destination's.
            let src = r.object_read(&side, &assumed, source_bucket, Some(source_key), false, 0);
            if let Some(b) = req.bucket.as_deref() {
                r.object_write(&side, &assumed, b, req.object_key.as_deref(), 200);
            }
            src
        }
        Operation::GetObject | Operation::HeadObject => match req.bucket.as_deref() {
            Some(b) => r.object_read(&side, &assumed, b, req.object_key.as_deref(), true, 0),
            None => r.no_bucket(),
        },
        Operation::PutObject | Operation::MultipartUpload => match req.bucket.as_deref() {
            Some(b) => r.object_write(&side, &assumed, b, req.object_key.as_deref(), 0),
            None => r.no_bucket(),
        },
        Operation::KmsViaS3 { action } => r.kms_via_s3(&side, &assumed, action),
        Operation::Kms { action } => r.direct_kms(&side, &assumed, action),
    };
    r.finish(principal_account, resource_account)
}

impl<'s> Run<'s> {
    fn cap(&mut self, c: Confidence, why: impl Into<String>) {
        self.caps.push((c, why.into()));
    }

    fn advisory(
        &mut self,
        code: Code,
        action: Option<&str>,
        account: Option<&str>,
        explanation: String,
    ) {
        let f = Finding::new(code, action, account, explanation, RANK_ADVISORY);
        if !self
            .findings
            .iter()
            .any(|x| x.code == f.code && x.explanation == f.explanation)
        {
            self.findings.push(f);
        }
    }

    /// Reads the collector could not make. What they would have returned is absent from the
    /// snapshot, and absent can read as "nothing there" (no bucket policy, no SCP), so each
    /// gap is reported and the verdict cannot be `allowed` on the evidence at hand.
    fn collection_gaps(&mut self) {
        let snap = self.snap;
        for e in &snap.collection_errors {
            let what = match &e.resource {
                Some(r) => format!("`{}` on `{r}`", e.operation),
                None => format!("`{}`", e.operation),
            };
            let whose = match &e.account {
                Some(a) => format!(" in account {a}"),
                None => String::new(),
            };
            let message = e
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            self.advisory(
                Code::MissingEvidence,
                None,
                e.account.as_deref(),
                format!(
                    "The collector could not read {what}{whose} ({}{message}). The diagnosis ran without it: a policy or setting it would have shown may hide or invent a cause. Grant the auditor's read role that permission, or add the data to the snapshot by hand.",
                    e.error
                ),
            );
            self.incomplete = true;
            self.cap(
                Confidence::Medium,
                "the collector could not read everything it needed",
            );
        }
    }

    fn no_bucket(&mut self) -> Option<String> {
        self.incomplete = true;
        self.advisory(
            Code::MissingEvidence,
            None,
            None,
            "The request names no bucket; nothing on the S3 side can be evaluated.".into(),
        );
        None
    }

    fn caller_side(&mut self, caller: Caller) -> CallerSide<'s> {
        let account = caller.account.clone();
        let acct = account.as_deref().and_then(|a| self.snap.account(a));
        let mut side = CallerSide {
            principal_arn: caller.principal_arn().map(str::to_owned),
            caller,
            account: account.clone(),
            identity_known: false,
            identity: Vec::new(),
            boundary: None,
            session: None,
            tags: BTreeMap::new(),
            scp: Vec::new(),
            org_id: None,
        };
        let Some(a) = acct else {
            self.incomplete = true;
            self.caller_account_missing = account.clone();
            self.cap(
                Confidence::Medium,
                "the caller's account is not in the snapshot",
            );
            return side;
        };
        let id = account.unwrap_or_default();
        match &a.organization {
            Some(org) => {
                side.org_id = org.id.clone();
                if !org.is_management_account {
                    side.scp = org.scp.iter().map(|l| l.iter().collect()).collect();
                }
            }
            None => {
                self.assumptions.push(format!(
                    "Account {id} has no `organization` data in the snapshot: it was evaluated as not under any SCP."
                ));
                self.cap(Confidence::Medium, "SCPs of the caller's account unknown");
            }
        }
        match side.caller.kind {
            CallerKind::Root => side.identity_known = true,
            CallerKind::AssumedRole | CallerKind::User => {
                let arn = side.caller.arn.clone();
                match self.snap.principal_policies(&arn) {
                    Some(pp) => {
                        side.identity_known = true;
                        side.identity = pp.identity.clone();
                        side.boundary = pp.boundary;
                        side.principal_arn = Some(pp.arn.to_owned());
                        side.tags = pp.tags.clone();
                        if pp.boundary.is_none() {
                            if let Some(b) = pp.boundary_arn {
                                self.advisory(Code::MissingEvidence, None, Some(&id), format!(
                                    "The permissions boundary `{b}` of `{}` is not in the snapshot; it was not evaluated (add its document under `Policies`).", pp.arn));
                                self.cap(
                                    Confidence::Medium,
                                    "permissions boundary document missing",
                                );
                            }
                        }
                        if !pp.missing.is_empty() {
                            self.advisory(Code::MissingEvidence, None, Some(&id), format!(
                                "Policies attached to `{}` are not in the snapshot and were not evaluated: {}. If one of them allows the request the verdict may change; if one denies it, a cause may be missing.",
                                pp.arn, pp.missing.join(", ")));
                            self.cap(
                                Confidence::Medium,
                                "attached policies missing from the snapshot",
                            );
                        }
                    }
                    None => {
                        self.incomplete = true;
                        let has_iam = a.iam.is_some();
                        self.advisory(Code::MissingEvidence, None, Some(&id), if has_iam {
                            format!("`{arn}` is not in account {id}'s IAM data (GetAccountAuthorizationDetails); its identity policies were not evaluated. Was the role or user deleted, or the snapshot taken before it existed?")
                        } else {
                            format!("Account {id}'s IAM data is not in the snapshot; the identity policies of `{arn}` were not evaluated.")
                        });
                        self.cap(
                            Confidence::Low,
                            "the caller's identity policies are unknown",
                        );
                    }
                }
            }
            CallerKind::FederatedUser => {
                self.incomplete = true;
                self.advisory(Code::MissingEvidence, None, Some(&id), "The caller is an STS federated user: its permissions are the intersection of the IAM user's policies and the session policy passed to GetFederationToken, which no snapshot holds.".into());
                self.cap(Confidence::Low, "federated user permissions unknown");
            }
            CallerKind::Service | CallerKind::Anonymous => side.identity_known = true,
        }
        if let Some(arn) = &side.principal_arn {
            side.caller.set_role_arn(arn);
        }
        side.caller.canonical_id = a.canonical_id.clone();
        // Session tags override role tags of the same key.
        if let Some(sess) = a.sessions.get(&side.caller.arn) {
            side.session = sess.policy.as_ref();
            for (k, v) in &sess.tags {
                side.tags.insert(k.clone(), v.clone());
            }
        }
        side
    }

    /// The request context for the caller's direct request.
    fn base_context(&self, side: &CallerSide<'_>) -> Context {
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

    fn policy_set<'a>(
        &self,
        side: &'a CallerSide<'s>,
        assumed: &'a Assumed,
        resource: Option<Named<'a>>,
        rcp: &'a [Vec<NamedPolicy>],
    ) -> PolicySet<'a>
    where
        's: 'a,
    {
        let named = |p: &&'a NamedPolicy| Named {
            name: p.name.as_str(),
            policy: &p.policy,
        };
        let identity = if side.identity_known {
            side.identity.iter().map(named).collect()
        } else {
            vec![Named {
                name: "(identity policies not in the snapshot, assumed to allow)",
                policy: &assumed.identity_allow_all,
            }]
        };
        let mut rcp_levels: Vec<Vec<Named<'a>>> = Vec::new();
        for level in rcp {
            let mut l: Vec<Named<'a>> = level
                .iter()
                .map(|p| Named {
                    name: p.name.as_str(),
                    policy: &p.policy,
                })
                .collect();
            l.push(Named {
                name: "RCPFullAWSAccess",
                policy: &assumed.rcp_full_access,
            });
            rcp_levels.push(l);
        }
        PolicySet {
            identity,
            resource,
            permissions_boundary: side.boundary.map(|p| Named {
                name: p.name.as_str(),
                policy: &p.policy,
            }),
            session: side.session.map(|p| Named {
                name: p.name.as_str(),
                policy: &p.policy,
            }),
            scp: side
                .scp
                .iter()
                .map(|l| l.iter().map(named).collect())
                .collect(),
            rcp: rcp_levels,
            grants: Vec::new(),
        }
    }

    /// A request by the caller, carrying what the snapshot knows of it beyond its ARN.
    fn request(
        side: &CallerSide<'_>,
        action: &str,
        resource: &str,
        account: Option<&str>,
        ctx: Context,
    ) -> Result<EvalRequest, iam_eval::ParseError> {
        EvalRequest::new(&side.caller.arn, action, resource, account, ctx)
            .map(|r| r.with_canonical_id(side.caller.canonical_id.clone()))
    }

    /// `aws:ResourceOrgID` of the account owning the resource being authorized (present
    /// whenever that account is in an organization, spec §1.5).
    fn resource_org(&self, ctx: &mut Context, account: &str) {
        if let Some(org) = self
            .snap
            .account(account)
            .and_then(|a| a.organization.as_ref())
            .and_then(|o| o.id.clone())
        {
            ctx.insert("aws:ResourceOrgID", ContextValue::Single(org));
        }
    }

    /// RCP levels of the account owning a resource (none for management accounts).
    fn rcp_of(&self, account: &str) -> &'s [Vec<NamedPolicy>] {
        match self
            .snap
            .account(account)
            .and_then(|a| a.organization.as_ref())
        {
            Some(org) if !org.is_management_account => &org.rcp,
            _ => &[],
        }
    }

    fn push_hop(&mut self, action: &str, resource: &str, ev: Option<&Evaluation<'_>>) {
        self.hops.push(Hop {
            action: action.to_owned(),
            resource: resource.to_owned(),
            decision: ev.map_or_else(
                || "NotEvaluated".to_owned(),
                |e| format!("{:?}", e.decision),
            ),
            denied_by: ev
                .map(|e| e.denied_by.iter().map(|l| l.as_str().to_owned()).collect())
                .unwrap_or_default(),
            unknown_context_keys: ev
                .map(|e| e.unknown_context_keys.clone())
                .unwrap_or_default(),
        });
    }

    /// A read: the S3 hop, then (except for HeadObject) the KMS hop on the object's key.
    /// `named_key`: whether a key the request names may stand for the object's (not for a
    /// copy source, whose request headers name the destination's key). Returns the bucket
    /// owner.
    fn object_read(
        &mut self,
        side: &CallerSide<'s>,
        assumed: &Assumed,
        bucket: &str,
        key: Option<&str>,
        named_key: bool,
        band: u32,
    ) -> Option<String> {
        let head = self.req.operation == Operation::HeadObject;
        let Some((owner, b)) = self.snap.bucket(bucket) else {
            return self.bucket_missing(side, assumed, bucket, self.req.read_action(), key);
        };
        let owner = owner.to_owned();
        let bucket_ref = self.bucket_ref(bucket);
        let object_arn = bucket_ref.objects_arn(key.unwrap_or("*"));
        let object = key.and_then(|k| b.objects.get(k));
        self.s3_hop(
            side,
            assumed,
            &owner,
            bucket,
            b,
            self.req.read_action(),
            &object_arn,
            key,
            band,
        );
        self.encryption_advisories(&owner, bucket, b, key);
        if head {
            self.assumptions.push("HeadObject makes no KMS request (unless ChecksumMode is ENABLED on an object with a checksum), so only the S3 hop was evaluated.".into());
            return Some(owner);
        }
        if let Some(k) = key.filter(|k| !b.objects.contains_key(*k)) {
            self.missing_object_note(side, assumed, &owner, bucket, b, k);
        }
        // The key that actually encrypted the object: object metadata first, then the key the
        // event names, then (as a stated assumption) the bucket default.
        let key_ref = match object {
            Some(o) => match o.sse.as_deref() {
                Some("aws:kms") | Some("aws:kms:dsse") => {
                    o.kms_key_id.clone().map(|k| (k, o.bucket_key_enabled))
                }
                Some(other) => {
                    self.assumptions.push(format!("The object is encrypted with `{other}`, not SSE-KMS: S3 makes no KMS request to read it."));
                    return Some(owner);
                }
                None => None,
            },
            None => None,
        };
        let key_ref = match key_ref {
            Some(k) => Some(k),
            None => match self.named_key().filter(|_| named_key) {
                Some(k) => Some((k.to_owned(), self.bucket_key_hint().unwrap_or(false))),
                None => self.assumed_default_key(&owner, bucket, b, key),
            },
        };
        let Some((key_ref, bucket_key)) = key_ref else {
            return Some(owner);
        };
        let bucket_key = self.bucket_key_hint().unwrap_or(bucket_key);
        let context_arn = if bucket_key {
            bucket_ref.arn()
        } else {
            object_arn.clone()
        };
        self.kms_hop(
            side,
            assumed,
            &owner,
            &b.region,
            &key_ref,
            "kms:Decrypt",
            &context_arn,
            band + 100,
        );
        Some(owner)
    }

    /// The partition-qualified reference to a bucket of this request.
    fn bucket_ref(&self, bucket: &str) -> BucketRef {
        BucketRef::new(self.req.partition, bucket)
    }

    /// The key the request names (a KMS record's key, PutObject's key header).
    fn named_key(&self) -> Option<&'s str> {
        self.req
            .kms_key_arn
            .as_deref()
            .or(self.req.kms_key_ref.as_deref())
    }

    /// Whether a KMS record made by S3 shows a Bucket Key (its `aws:s3:arn` context names
    /// the bucket); `None` when the request does not tell.
    fn bucket_key_hint(&self) -> Option<bool> {
        (self.req.via_s3 && !self.req.encryption_context.is_empty()).then_some(self.req.bucket_key)
    }

    /// S3's own call to KMS for the caller, as a KMS record shows it: that S3 made the call
    /// proves the S3 hop passed, so only the KMS hop is evaluated, with the key and the
    /// encryption context of the record (the object ARN, or the bucket ARN with a Bucket
    /// Key). Returns the bucket owner (or the key owner when the bucket is unknown).
    fn kms_via_s3(
        &mut self,
        side: &CallerSide<'s>,
        assumed: &Assumed,
        action: &str,
    ) -> Option<String> {
        let bucket = self.req.bucket.clone().unwrap_or_default();
        let key = self.req.object_key.clone();
        self.assumptions.push(format!(
            "This record is S3's request to KMS ({action}) on behalf of the caller: S3 had already authorized the caller's request to bucket `{bucket}`, so only the KMS hop is evaluated."
        ));
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
                            self.assumed_default_key(&o, &bucket, b, key.as_deref())
                                .map(|(k, _)| k)
                        }
                    }
                }
                None => None,
            },
        };
        let Some(key_ref) = key_ref else {
            self.incomplete = true;
            self.advisory(Code::MissingEvidence, Some(action), owner.as_deref(), format!(
                "The record names no key and bucket `{bucket}` is not in the snapshot: the key S3 used cannot be determined, so the KMS hop was not evaluated."));
            self.cap(Confidence::Low, "the key of the KMS request is unknown");
            return owner;
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
        self.kms_hop(
            side,
            assumed,
            &resolve,
            &region,
            &key_ref,
            action,
            &context_arn,
            100,
        );
        owner.or_else(|| self.req.resource_account.clone())
    }

    /// A write: the S3 hop (`s3:PutObject`), then `kms:GenerateDataKey` (and `kms:Decrypt` for
    /// multipart uploads) on the write key, when the object will be SSE-KMS.
    fn object_write(
        &mut self,
        side: &CallerSide<'s>,
        assumed: &Assumed,
        bucket: &str,
        key: Option<&str>,
        band: u32,
    ) -> Option<String> {
        let Some((owner, b)) = self.snap.bucket(bucket) else {
            return self.bucket_missing(side, assumed, bucket, "s3:PutObject", key);
        };
        let owner = owner.to_owned();
        let bucket_ref = self.bucket_ref(bucket);
        let object_arn = bucket_ref.objects_arn(key.unwrap_or("*"));
        self.s3_hop(
            side,
            assumed,
            &owner,
            bucket,
            b,
            "s3:PutObject",
            &object_arn,
            key,
            band,
        );
        self.encryption_advisories(&owner, bucket, b, None);
        // The write key (PutObject API reference, x-amz-server-side-encryption): the request
        // header decides; `aws:kms` without a key id means the AWS managed key `aws/s3`; with
        // no header the bucket default applies. Aliases and bare key ids resolve in the
        // requester's account.
        let requester = side.account.clone().unwrap_or_else(|| owner.clone());
        let default_bucket_key = b.encryption.as_ref().is_some_and(|e| e.bucket_key_enabled);
        let sse = self.req.sse.as_deref();
        let (key_ref, bucket_key) = match (sse, self.named_key(), &b.encryption) {
            (Some(alg), _, _) if !alg.starts_with("aws:kms") => {
                self.assumptions.push(format!("The request asks for `{alg}` encryption (x-amz-server-side-encryption), not SSE-KMS: S3 makes no KMS request for this write, whatever the bucket default."));
                (None, false)
            }
            (_, Some(k), _) => (Some(k.to_owned()), default_bucket_key),
            (Some(alg), None, _) => {
                self.assumptions.push(format!("The request asks for `{alg}` without a key id: S3 then uses the AWS managed key `aws/s3` of account {requester}, not the bucket default."));
                (Some("alias/aws/s3".to_owned()), default_bucket_key)
            }
            (None, None, Some(enc)) if enc.algorithm.starts_with("aws:kms") => (
                Some(
                    enc.kms_key_id
                        .clone()
                        .unwrap_or_else(|| "alias/aws/s3".to_owned()),
                ),
                enc.bucket_key_enabled,
            ),
            (None, None, _) => {
                self.assumptions.push("The write is not SSE-KMS (no encryption header, and the bucket default is not SSE-KMS): no KMS request is made.".into());
                (None, false)
            }
        };
        let Some(key_ref) = key_ref else {
            return Some(owner);
        };
        let context_arn = if bucket_key {
            bucket_ref.arn()
        } else {
            object_arn
        };
        self.kms_hop(
            side,
            assumed,
            &requester,
            &b.region,
            &key_ref,
            "kms:GenerateDataKey",
            &context_arn,
            band + 100,
        );
        if self.req.operation == Operation::MultipartUpload {
            self.kms_hop(
                side,
                assumed,
                &requester,
                &b.region,
                &key_ref,
                "kms:Decrypt",
                &context_arn,
                band + 150,
            );
        }
        Some(owner)
    }

    fn bucket_missing(
        &mut self,
        side: &CallerSide<'s>,
        assumed: &Assumed,
        bucket: &str,
        action: &str,
        key: Option<&str>,
    ) -> Option<String> {
        self.incomplete = true;
        let owner = self.req.resource_account.clone();
        let object_arn = self.bucket_ref(bucket).objects_arn(key.unwrap_or("*"));
        // The bucket owner's side is unknown: evaluate the caller's side alone, as if the
        // bucket policy allowed, so that causes in the caller's account are still found.
        match (&owner, side.identity_known) {
            (Some(o), true) => {
                let ctx = self.base_context(side);
                if let Ok(req) = Self::request(side, action, &object_arn, Some(o), ctx) {
                    let resource = Some(Named {
                        name: "(bucket policy not in the snapshot, assumed to allow)",
                        policy: &assumed.rcp_full_access,
                    });
                    let set = self.policy_set(side, assumed, resource, &[]);
                    let ev = authorize(&req, &set);
                    self.push_hop(action, &object_arn, Some(&ev));
                    let tgt = Target::Bucket {
                        account: o.clone(),
                        bucket: bucket.to_owned(),
                        region: String::new(),
                    };
                    let mut found = self.layer_findings(
                        side,
                        &req,
                        &ev,
                        action,
                        &object_arn,
                        &tgt,
                        None,
                        &[],
                        0,
                        false,
                    );
                    found.retain(|f| {
                        f.code != Code::BucketPolicyNoAllow
                            && f.code != Code::BucketPolicyExplicitDeny
                    });
                    self.findings.extend(found);
                }
            }
            _ => self.push_hop(action, &object_arn, None),
        }
        self.advisory(Code::MissingEvidence, Some(action), owner.as_deref(), format!(
            "Bucket `{bucket}` is not in the snapshot: its policy, encryption and key were not evaluated.{}",
            owner.as_ref().map(|o| format!(" It belongs to account {o}; add that account's `s3` data.")).unwrap_or_default()));
        self.cap(Confidence::Low, "the bucket is not in the snapshot");
        owner
    }

    /// An object the snapshot does not list may not exist at all: without `s3:ListBucket`
    /// S3 then answers 403 AccessDenied instead of 404 NoSuchKey (spec C01), which no policy
    /// change will cure.
    fn missing_object_note(
        &mut self,
        side: &CallerSide<'s>,
        assumed: &Assumed,
        owner: &str,
        bucket: &str,
        b: &'s Bucket,
        key: &str,
    ) {
        let ctx = self.base_context(side);
        let Ok(req) = Self::request(
            side,
            "s3:ListBucket",
            &self.bucket_ref(bucket).arn(),
            Some(owner),
            ctx,
        ) else {
            return;
        };
        let resource = b.policy.as_ref().map(|p| Named {
            name: p.name.as_str(),
            policy: &p.policy,
        });
        let set = self.policy_set(side, assumed, resource, self.rcp_of(owner));
        if authorize(&req, &set).decision != Decision::Allowed {
            self.advisory(Code::MissingEvidence, Some("s3:GetObject"), Some(owner), format!(
                "Object `{key}` is not listed in the snapshot. If it does not exist, S3 answers 403 AccessDenied, not 404 NoSuchKey, because `{}` may not s3:ListBucket `{bucket}`: check the key's spelling (keys are case-sensitive) before changing policies.",
                side.caller.arn));
        }
    }

    /// Which key the bucket default names, stated as an assumption.
    fn assumed_default_key(
        &mut self,
        owner: &str,
        bucket: &str,
        b: &Bucket,
        key: Option<&str>,
    ) -> Option<(String, bool)> {
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
                self.assumptions.push(format!(
                    "The metadata of {what} is not in the snapshot: it is assumed to be encrypted with the bucket's default key `{k}`. Objects written before the default changed, or by writers naming another key, may use a different key (HeadObject shows the real one)."));
                self.advisory(Code::MissingEvidence, Some("kms:Decrypt"), Some(owner), format!(
                    "No HeadObject metadata for {what} in bucket `{bucket}`: the key that actually encrypted it is unknown, so the bucket default was assumed."));
                self.cap(
                    Confidence::Medium,
                    "object metadata missing; default key assumed",
                );
                Some((k, enc.bucket_key_enabled))
            }
            Some(_) => {
                self.assumptions.push(format!("The metadata of {what} is not in the snapshot; the bucket default (SSE-S3) is assumed, so no KMS request is made."));
                self.cap(Confidence::Medium, "object metadata missing");
                None
            }
            None => {
                self.assumptions.push(format!("The metadata of {what} and the bucket's default encryption are not in the snapshot; S3's default (SSE-S3) is assumed, so no KMS request is made."));
                self.cap(
                    Confidence::Medium,
                    "object metadata and default encryption missing",
                );
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn s3_hop(
        &mut self,
        side: &CallerSide<'s>,
        assumed: &Assumed,
        owner: &str,
        bucket: &str,
        b: &'s Bucket,
        action: &str,
        object_arn: &str,
        key: Option<&str>,
        band: u32,
    ) {
        let mut ctx = self.base_context(side);
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
        let Ok(req) = Self::request(side, action, object_arn, Some(owner), ctx) else {
            self.incomplete = true;
            return;
        };
        let rcp = self.rcp_of(owner);
        let cross = side.account.as_deref() != Some(owner);
        // Block Public Access: with RestrictPublicBuckets, public statements grant nothing to
        // other accounts (spec §4.8), so they are left out of the evaluation.
        let restrict = b
            .public_access_block
            .is_some_and(|p| p.restrict_public_buckets)
            || self
                .snap
                .account(owner)
                .and_then(|a| a.public_access_block)
                .is_some_and(|p| p.restrict_public_buckets);
        let public_sids: Vec<usize> = b
            .policy
            .as_ref()
            .map(|p| public_statements(&p.policy))
            .unwrap_or_default();
        let stripped = if restrict && cross && !public_sids.is_empty() {
            b.policy.as_ref().map(|p| {
                let mut copy = p.policy.clone();
                copy.statements.retain(|s| !public_sids.contains(&s.index));
                copy
            })
        } else {
            None
        };
        let resource = b.policy.as_ref().map(|p| Named {
            name: p.name.as_str(),
            policy: &p.policy,
        });
        let set = self.policy_set(side, assumed, resource, rcp);
        let ev_full = authorize(&req, &set);
        let mut bpa_blocks = false;
        let ev = match (&stripped, &b.policy) {
            (Some(copy), Some(p)) => {
                let set2 = PolicySet {
                    resource: Some(Named {
                        name: p.name.as_str(),
                        policy: copy,
                    }),
                    ..set.clone()
                };
                let ev2 = authorize(&req, &set2);
                bpa_blocks = ev2.missing_allows.contains(&Layer::Resource)
                    && !ev_full.missing_allows.contains(&Layer::Resource);
                ev2
            }
            _ => ev_full,
        };
        self.push_hop(action, object_arn, Some(&ev));
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
                self.advisory(Code::MissingEvidence, Some(action), Some(owner), format!(
                    "The verdict depends on whether the request came over TLS, which the record does not show (no `tlsDetails`): over plain HTTP it is {:?}{}. Check the caller's endpoint (https://) before changing policies.",
                    ev_http.decision,
                    if statements.is_empty() { String::new() } else { format!(" by {}", statements.join(", ")) }));
                self.cap(
                    Confidence::Medium,
                    "the verdict depends on aws:SecureTransport, which the record does not show",
                );
            }
        }
        if !side.identity_known {
            self.required_identity
                .push((action.to_owned(), object_arn.to_owned()));
        }
        let tgt = Target::Bucket {
            account: owner.to_owned(),
            bucket: bucket.to_owned(),
            region: b.region.clone(),
        };
        let mut found = self.layer_findings(
            side,
            &req,
            &ev,
            action,
            object_arn,
            &tgt,
            b.policy.as_ref(),
            rcp,
            band,
            false,
        );
        if bpa_blocks {
            let p = b.policy.as_ref();
            let statements: Vec<StatementInfo> = p
                .map(|p| {
                    public_sids
                        .iter()
                        .map(|i| StatementInfo {
                            policy: p.name.clone(),
                            index: *i,
                            sid: p
                                .policy
                                .statements
                                .iter()
                                .find(|s| s.index == *i)
                                .and_then(|s| s.sid.clone()),
                        })
                        .collect()
                })
                .unwrap_or_default();
            found.retain(|f| f.code != Code::BucketPolicyNoAllow);
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
            found.push(self.blocking(Code::BlockPublicAccess, action, owner, p.map(|p| p.name.clone()), statements, format!(
                "Bucket `{bucket}` has Block Public Access `RestrictPublicBuckets` on (bucket or account level) and its policy is public (a `Principal: \"*\"` grant without a fixed-value condition such as `aws:PrincipalOrgID`). S3 then ignores the public grants for every caller outside account {owner}, so `{}` gets nothing from them; S3 reports it as an explicit deny in a resource-based policy.",
                side.caller.arn), band + RANK_EXPLICIT + layer_rank(Layer::Resource), &tgt));
            if self.with_fixes {
                if let Some(f) = found.last_mut() {
                    let mut bpa_fix = bpa_fix;
                    bpa_fix.notes.push("The added statement names the caller, so it is not public and RestrictPublicBuckets does not void it. Turning RestrictPublicBuckets off instead would expose the bucket.".into());
                    self.remember(Some(&bpa_fix));
                    f.fix = Some(bpa_fix);
                }
            }
        }
        // Object ownership: a bucket-policy Allow covers only objects the bucket owner owns
        // (spec §4.8); another account's object needs its own ACL grant.
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
                    found.retain(|f| f.code != Code::BucketPolicyNoAllow);
                    if !acl_grants {
                        let writer = self.snap.account_by_canonical_id(oid).map(str::to_owned);
                        found.push(self.blocking(Code::ObjectOwnerMismatch, action, owner, None, Vec::new(), format!(
                            "Object `{}` is owned by another account ({}) than the bucket owner {owner}: Object Ownership is `{}`, and the object was written without `bucket-owner-full-control`. A bucket-policy Allow applies only to objects the bucket owner owns, and the object's ACL grants `{}` no READ.",
                            key.unwrap_or(""), writer.unwrap_or_else(|| format!("canonical id {oid}")),
                            b.ownership.map_or("ObjectWriter (no ownership controls)", |x| x.as_str()), side.caller.arn),
                            band + RANK_IMPLICIT + layer_rank(Layer::Resource), &tgt));
                    }
                }
            }
        }
        self.findings.extend(found);
        self.engine_notes(&ev, owner);
    }

    /// The KMS hop S3 makes for the caller (a forward access session) on the key `key_ref`,
    /// for an object in a bucket of `bucket_region`; aliases and key ids resolve in
    /// `resolve_account`.
    #[expect(
        clippy::too_many_arguments,
        reason = "one hop's inputs; folded into a struct by the hops rework"
    )]
    fn kms_hop(
        &mut self,
        side: &CallerSide<'s>,
        assumed: &Assumed,
        resolve_account: &str,
        bucket_region: &str,
        key_ref: &str,
        action: &str,
        context_arn: &str,
        band: u32,
    ) {
        let Some((key_account, k)) = self.snap.key(key_ref, bucket_region, resolve_account) else {
            self.key_missing(side, key_ref, resolve_account, action, band);
            return;
        };
        let key_account = key_account.to_owned();
        let key_arn = k.metadata.arn.clone();
        let tgt = Target::Key {
            account: key_account.clone(),
            arn: key_arn.clone(),
            region: k.metadata.region.clone(),
        };
        let caller_account = side.account.clone().unwrap_or_default();
        let mut stop = false;
        if k.metadata.region != bucket_region {
            let f = self.blocking(Code::KeyRegionMismatch, action, &key_account, None, Vec::new(), format!(
                "Key `{key_arn}` is in {} but bucket is in {bucket_region}: S3 uses only keys in the bucket's Region (it treats multi-Region keys as single-Region keys). KMS answers as if the key did not exist.",
                k.metadata.region), band + RANK_KEY_EXISTS, &tgt);
            self.findings.push(f);
            stop = true;
        }
        if !k.is_usable() {
            let f = self.blocking(Code::KeyNotUsable, action, &key_account, None, Vec::new(), format!(
                "Key `{key_arn}` is in state `{}`: KMS refuses every cryptographic request with it (DisabledException / KMSInvalidStateException) whatever the policies say.",
                k.metadata.key_state.as_str()), band + RANK_KEY_STATE, &tgt);
            self.findings.push(f);
        }
        if k.is_aws_managed() && key_account != caller_account {
            let f = self.blocking(Code::AwsManagedKey, action, &key_account, None, Vec::new(), format!(
                "The object is encrypted with `{key_arn}`, an AWS managed key (`aws/s3`) of account {key_account}. Its key policy cannot be edited and allows only principals of account {key_account} calling through S3, so no policy change lets `{}` (account {caller_account}) decrypt it. The objects must be re-encrypted under a customer managed key.",
                side.caller.arn), band + RANK_IMPLICIT + layer_rank(Layer::Resource), &tgt);
            self.findings.push(f);
            self.push_hop(action, &key_arn, None);
            return;
        }
        if stop {
            self.push_hop(action, &key_arn, None);
            return;
        }
        let mut ctx = self.fas_context(side, bucket_region, context_arn);
        ctx.remove("aws:ResourceAccount");
        self.resource_org(&mut ctx, &key_account);
        let Ok(req) = Self::request(side, action, &key_arn, Some(&key_account), ctx) else {
            self.incomplete = true;
            return;
        };
        // RCPs do not apply to AWS managed keys.
        let rcp: &[Vec<NamedPolicy>] = if k.is_aws_managed() {
            &[]
        } else {
            self.rcp_of(&key_account)
        };
        let unknown_policy;
        let resource = match &k.policy {
            Some(p) => Some(Named {
                name: p.name.as_str(),
                policy: &p.policy,
            }),
            None if k.is_aws_managed() => {
                // The fixed policy of aws/s3: principals of the owning account, through S3.
                unknown_policy = Policy::from_value(&json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Principal": {"AWS": "*"}, "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                    "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": key_account.clone(),
                    "kms:ViaService": self.req.partition.service_endpoint("s3", &k.metadata.region)}}}]})).ok();
                unknown_policy.as_ref().map(|p| Named {
                    name: "aws/s3 key policy (AWS managed)",
                    policy: p,
                })
            }
            None => {
                self.advisory(Code::MissingEvidence, Some(action), Some(&key_account), format!(
                    "The key policy of `{key_arn}` is not in the snapshot (not collected, or GetKeyPolicy was refused): the key side of the KMS hop is unknown. Causes in the caller's account are still reported; whether the key policy allows `{}` is not.", side.caller.arn));
                self.cap(Confidence::Low, "key policy missing");
                self.incomplete = true;
                unknown_policy = Policy::from_value(&json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Principal": {"AWS": refs::account_root(self.req.partition, &key_account)}, "Action": "kms:*", "Resource": "*"}]})).ok();
                unknown_policy.as_ref().map(|p| Named {
                    name: "(key policy not in the snapshot)",
                    policy: p,
                })
            }
        };
        let mut set = self.policy_set(side, assumed, resource, rcp);
        set.grants = k.grants.iter().map(|g| &g.grant).collect();
        let ev = authorize(&req, &set);
        self.push_hop(action, &key_arn, Some(&ev));
        if !side.identity_known {
            self.required_identity
                .push((action.to_owned(), key_arn.clone()));
        }
        let found = self.layer_findings(
            side,
            &req,
            &ev,
            action,
            &key_arn,
            &tgt,
            k.policy.as_ref(),
            rcp,
            band,
            true,
        );
        // Without the real key policy, a key-side cause would be invented by the stand-in
        // document: keep only what the caller's side shows.
        let key_policy_known = k.policy.is_some() || k.is_aws_managed();
        self.findings.extend(found.into_iter().filter(|f| {
            key_policy_known
                || !matches!(f.code, Code::KeyPolicyNoAllow | Code::KeyPolicyExplicitDeny)
        }));
        self.engine_notes(&ev, &key_account);
    }

    fn key_missing(
        &mut self,
        side: &CallerSide<'_>,
        key_ref: &str,
        resolve_account: &str,
        action: &str,
        band: u32,
    ) {
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
            };
            let f = self.blocking(Code::AwsManagedKey, action, &key_account, None, Vec::new(), format!(
                "The object is encrypted with the AWS managed key `aws/s3` of account {key_account}. Its key policy cannot be edited and allows only principals of account {key_account} calling through S3, so `{}` can never decrypt it. Re-encrypt the objects under a customer managed key.",
                side.caller.arn), band + RANK_IMPLICIT + layer_rank(Layer::Resource), &tgt);
            self.findings.push(f);
            self.push_hop(action, key_ref, None);
            return;
        }
        self.incomplete = true;
        self.push_hop(action, key_ref, None);
        let alias_note = if key_ref.contains("alias/") && !key_ref.starts_with("arn:") {
            format!(" It is named by alias, which KMS resolves in the requester's account ({resolve_account}) — for a cross-account writer that is usually not the key the bucket owner meant.")
        } else {
            String::new()
        };
        self.advisory(Code::MissingEvidence, Some(action), Some(&key_account), format!(
            "Key `{key_ref}` is not in the snapshot (account {key_account}): the KMS hop ({action}) was not evaluated.{alias_note} Add the key's DescribeKey, GetKeyPolicy and ListGrants output."));
        self.cap(Confidence::Low, "the object's key is not in the snapshot");
    }

    /// The context S3's forward access session carries to KMS (spec §1.6): the caller's
    /// principal keys, `aws:ViaAWSService = true`, `kms:ViaService` = S3's Regional endpoint name,
    /// the encryption context, and no network keys.
    fn fas_context(&self, side: &CallerSide<'_>, region: &str, context_arn: &str) -> Context {
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

    /// A KMS call made by the principal directly (no S3 in between).
    fn direct_kms(
        &mut self,
        side: &CallerSide<'s>,
        assumed: &Assumed,
        action: &str,
    ) -> Option<String> {
        let Some(key_ref) = self.named_key().map(str::to_owned) else {
            self.incomplete = true;
            self.advisory(Code::MissingEvidence, Some(action), None, "The KMS event names no key (failed KMS calls often omit `resources`); the key hop cannot be evaluated.".into());
            return None;
        };
        let region = iam_eval::arn::Arn::parse(&key_ref)
            .map(|a| a.region.to_owned())
            .unwrap_or_default();
        let acct = side.account.clone().unwrap_or_default();
        let Some((key_account, k)) = self.snap.key(&key_ref, &region, &acct) else {
            self.key_missing(side, &key_ref, &acct, action, 100);
            return None;
        };
        let key_account = key_account.to_owned();
        let tgt = Target::Key {
            account: key_account.clone(),
            arn: k.metadata.arn.clone(),
            region: k.metadata.region.clone(),
        };
        if !k.is_usable() {
            let f = self.blocking(
                Code::KeyNotUsable,
                action,
                &key_account,
                None,
                Vec::new(),
                format!(
                    "Key `{}` is in state `{}`: KMS refuses cryptographic requests with it.",
                    k.metadata.arn,
                    k.metadata.key_state.as_str()
                ),
                100 + RANK_KEY_STATE,
                &tgt,
            );
            self.findings.push(f);
        }
        let mut ctx = self.base_context(side);
        self.resource_org(&mut ctx, &key_account);
        let Ok(req) = Self::request(side, action, &k.metadata.arn, Some(&key_account), ctx) else {
            return Some(key_account);
        };
        let rcp: &[Vec<NamedPolicy>] = if k.is_aws_managed() {
            &[]
        } else {
            self.rcp_of(&key_account)
        };
        let resource = k.policy.as_ref().map(|p| Named {
            name: p.name.as_str(),
            policy: &p.policy,
        });
        let mut set = self.policy_set(side, assumed, resource, rcp);
        set.grants = k.grants.iter().map(|g| &g.grant).collect();
        let ev = authorize(&req, &set);
        self.push_hop(action, &k.metadata.arn, Some(&ev));
        let found = self.layer_findings(
            side,
            &req,
            &ev,
            action,
            &k.metadata.arn.clone(),
            &tgt,
            k.policy.as_ref(),
            rcp,
            100,
            true,
        );
        self.findings.extend(found);
        Some(key_account)
    }

    fn engine_notes(&mut self, ev: &Evaluation<'_>, account: &str) {
        for n in &ev.notes {
            match n {
                iam_eval::authorize::Note::OrphanedPrincipalId { policy, index, id } => {
                    self.advisory(Code::OrphanedPrincipalId, None, Some(account), format!(
                        "{policy} statement {index} names `{id}`: the unique id AWS shows once the principal it named was deleted. It matches nobody, not even a principal re-created with the same name. Re-save the policy with the principal's ARN."));
                }
                iam_eval::authorize::Note::NotPrincipalIncomplete { .. }
                | iam_eval::authorize::Note::EveryoneGrantSkipsCeiling => {
                    self.cap(
                        Confidence::Medium,
                        "the verdict rests on a rule AWS documents only partly",
                    );
                }
                iam_eval::authorize::Note::ResourceAccountAssumed => {}
            }
        }
        if !ev.unknown_context_keys.is_empty() && ev.decision != Decision::Allowed {
            self.cap(
                Confidence::Medium,
                "condition keys absent from the request were consulted",
            );
        }
    }

    /// Findings for every blocking layer of one hop.
    #[allow(clippy::too_many_arguments)]
    fn layer_findings(
        &self,
        side: &CallerSide<'_>,
        req: &EvalRequest,
        ev: &Evaluation<'_>,
        action: &str,
        resource: &str,
        tgt: &Target,
        resource_policy: Option<&NamedPolicy>,
        rcp: &[Vec<NamedPolicy>],
        band: u32,
        kms: bool,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        let caller_account = side.account.clone().unwrap_or_default();
        let resource_account = tgt.account().to_owned();
        for (explicit, layers) in [(true, &ev.explicit_denies), (false, &ev.missing_allows)] {
            for layer in layers.iter() {
                let code = match (layer, explicit, kms) {
                    (Layer::Identity, true, _) => Code::IdentityPolicyExplicitDeny,
                    (Layer::Identity, false, _) => Code::IdentityPolicyNoAllow,
                    (Layer::PermissionsBoundary, true, _) => Code::PermissionsBoundaryExplicitDeny,
                    (Layer::PermissionsBoundary, false, _) => Code::PermissionsBoundaryNoAllow,
                    (Layer::Session, true, _) => Code::SessionPolicyExplicitDeny,
                    (Layer::Session, false, _) => Code::SessionPolicyNoAllow,
                    (Layer::Scp, true, _) => Code::ScpExplicitDeny,
                    (Layer::Scp, false, _) => Code::ScpNoAllow,
                    // RCPFullAWSAccess is always attached: only denies can block.
                    (Layer::Rcp, _, _) => Code::RcpExplicitDeny,
                    (Layer::Resource, true, false) => Code::BucketPolicyExplicitDeny,
                    (Layer::Resource, false, false) => Code::BucketPolicyNoAllow,
                    (Layer::Resource, true, true) => Code::KeyPolicyExplicitDeny,
                    (Layer::Resource, false, true) => Code::KeyPolicyNoAllow,
                };
                let account = match layer {
                    Layer::Identity | Layer::PermissionsBoundary | Layer::Session | Layer::Scp => {
                        caller_account.clone()
                    }
                    Layer::Resource | Layer::Rcp => resource_account.clone(),
                };
                let statements: Vec<StatementInfo> = if explicit {
                    ev.statements
                        .iter()
                        .filter(|s| s.layer == *layer)
                        .map(|s| StatementInfo {
                            policy: s.policy.to_owned(),
                            index: s.index,
                            sid: s.sid.map(str::to_owned),
                        })
                        .collect()
                } else {
                    ev.near_misses
                        .iter()
                        .filter(|n| n.statement.layer == *layer)
                        .map(|n| StatementInfo {
                            policy: n.statement.policy.to_owned(),
                            index: n.statement.index,
                            sid: n.statement.sid.map(str::to_owned),
                        })
                        .collect()
                };
                let policy = match layer {
                    Layer::Resource => resource_policy.map(|p| p.name.clone()),
                    _ => statements.first().map(|s| s.policy.clone()),
                };
                let explanation = super::report::explain_layer(
                    code,
                    layer,
                    explicit,
                    &side.caller.arn,
                    action,
                    resource,
                    &account,
                    ev,
                    tgt,
                );
                let rank =
                    band + if explicit {
                        RANK_EXPLICIT
                    } else {
                        RANK_IMPLICIT
                    } + layer_rank(*layer);
                let mut f = Finding::new(code, Some(action), Some(&account), explanation, rank);
                f.policy = policy;
                f.statements = statements;
                if self.with_fixes {
                    let fc = FixContext {
                        raw: self.raw,
                        caller: &side.caller,
                        principal_arn: side.principal_arn.as_deref(),
                        caller_account: &caller_account,
                        action,
                        resource,
                        target: tgt,
                        resource_policy,
                        identity: &side.identity,
                        boundary: side.boundary,
                        session: side.session,
                        scp: &side.scp,
                        rcp,
                        req,
                        ev,
                        layer: *layer,
                        explicit,
                        fas: kms && !matches!(self.req.operation, Operation::Kms { .. }),
                        rewritten: &self.rewritten,
                    };
                    f.fix = fix::build(code, &fc);
                    self.remember(f.fix.as_ref());
                }
                out.push(f);
            }
        }
        out
    }

    /// Records the documents a fix rewrites, so that the next fix to the same document starts
    /// from them.
    fn remember(&self, fix: Option<&super::findings::Fix>) {
        let Some(fix) = fix else { return };
        for op in &fix.patch {
            if let (Some(path), Some(value)) =
                (op.get("path").and_then(Value::as_str), op.get("value"))
            {
                if op.get("op").and_then(Value::as_str) == Some("replace")
                    || value.get("Statement").is_some()
                {
                    self.rewritten
                        .borrow_mut()
                        .insert(path.to_owned(), value.clone());
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn blocking(
        &self,
        code: Code,
        action: &str,
        account: &str,
        policy: Option<String>,
        statements: Vec<StatementInfo>,
        explanation: String,
        rank: u32,
        tgt: &Target,
    ) -> Finding {
        let mut f = Finding::new(code, Some(action), Some(account), explanation, rank);
        f.policy = policy;
        f.statements = statements;
        if self.with_fixes {
            let object = self
                .req
                .bucket
                .as_deref()
                .map(|b| (b, self.req.object_key.as_deref()));
            f.fix = fix::build_special(code, self.snap, self.raw, object, action, tgt);
        }
        f
    }

    /// Advisory findings about the bucket's default encryption and the object's key.
    fn encryption_advisories(&mut self, owner: &str, bucket: &str, b: &Bucket, key: Option<&str>) {
        let Some(enc) = &b.encryption else { return };
        if !enc.algorithm.starts_with("aws:kms") {
            return;
        }
        let default_key = enc.kms_key_id.clone();
        match &default_key {
            Some(k) if k.starts_with("alias/") || k.contains(":alias/") => {
                self.advisory(Code::DefaultEncryptionAlias, None, Some(owner), format!(
                    "Default encryption of `{bucket}` names the key by alias (`{k}`). KMS resolves an alias in the requester's account, so objects written by other accounts are encrypted with their own key (or fail), and AWS's own pages disagree on this point. Name the key by its full key ARN: `aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration '{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"aws:kms\",\"KMSMasterKeyID\":\"{}\"}}}}]}}'`.", refs::key_arn(self.req.partition, &b.region, owner, "<key-id>")));
                self.cap(Confidence::Medium, "default encryption names an alias");
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
            self.advisory(Code::DefaultEncryptionAwsManagedKey, None, Some(owner), format!(
                "Default encryption of `{bucket}` uses the AWS managed key `aws/s3`{}. New objects are then unreadable from any other account; use a customer managed key named by its key ARN.",
                if default_key.is_none() { " (SSE-KMS with no key id)" } else { "" }));
        }
        if let (Some(k), Some(def)) = (key.and_then(|k| b.objects.get(k)), default_resolved) {
            if let Some(obj_key) = &k.kms_key_id {
                let obj_resolved = self
                    .snap
                    .key(obj_key, &b.region, owner)
                    .map(|(_, key)| key.metadata.arn.clone())
                    .unwrap_or_else(|| obj_key.clone());
                if obj_resolved != def.metadata.arn {
                    self.advisory(Code::ObjectKeyNotDefault, None, Some(owner), format!(
                        "Object `{}` is encrypted with `{obj_resolved}`, not with the bucket's default key `{}`: it was written before the default changed or by a writer naming another key. Permissions on the default key do not help for this object.",
                        key.unwrap_or(""), def.metadata.arn));
                }
            }
        }
    }

    fn finish(
        mut self,
        principal_account: Option<String>,
        resource_account: Option<String>,
    ) -> Diagnosis {
        if let Some(b) = self.caller_account_missing.clone() {
            let statements: Vec<Value> = self
                .required_identity
                .iter()
                .map(|(action, resource)| {
                    let res = if action.starts_with("s3:") {
                        fix::object_scope(resource)
                    } else {
                        resource.clone()
                    };
                    json!({"Effect": "Allow", "Action": action, "Resource": res})
                })
                .collect();
            let doc = json!({"Version": "2012-10-17", "Statement": statements});
            let needs = self
                .required_identity
                .iter()
                .map(|(a, r)| format!("{a} on `{r}`"))
                .collect::<Vec<_>>()
                .join(" and ");
            let explanation = format!(
                "Account {b} (the caller's) is not in the snapshot: its identity policies, permissions boundaries and SCPs were not evaluated, and the verdict covers the resource side only.{}",
                if needs.is_empty() { String::new() } else { format!(" For the request to succeed, account {b} must also allow {needs} for `{}`, and nothing there may deny it.", self.req.principal_label()) });
            let mut f = Finding::new(
                Code::MissingEvidence,
                None,
                Some(&b),
                explanation,
                RANK_ADVISORY,
            );
            if !self.required_identity.is_empty() {
                f.fix = Some(super::findings::Fix {
                    account: b.clone(),
                    artifact: "identity policy of the caller (what its account must grant)".into(),
                    statement: Some(doc.clone()),
                    patched_policy: None,
                    cli: format!("aws iam put-role-policy --role-name <role> --policy-name s3-kms-auditor-access --policy-document '{}'   # in account {b}", serde_json::to_string(&doc).unwrap_or_default()),
                    notes: vec!["Not verified: the caller's account is not in the snapshot.".into()],
                    patch: Vec::new(),
                });
            }
            self.findings.push(f);
        }
        self.findings
            .sort_by(|a, b| a.rank.cmp(&b.rank).then(a.code.cmp(&b.code)));
        let blocking = self.findings.iter().any(|f| f.blocking);
        let verdict = if blocking {
            Verdict::Denied
        } else if self.incomplete {
            Verdict::Unknown
        } else {
            Verdict::Allowed
        };
        let mut confidence = self
            .caps
            .iter()
            .map(|(c, _)| *c)
            .min()
            .unwrap_or(Confidence::High);
        super::evidence::reconcile_hops(&mut self.hops, &self.findings);
        // AWS's enhanced AccessDenied message names the policy type that denied: the
        // diagnosis is checked against it.
        if let Some(denial) = self.req.denial {
            let said = format!(
                "AWS's error message says the request was denied {} {} {}",
                match denial.explicit {
                    Some(true) => "by an explicit deny in",
                    Some(false) => "because no",
                    None => "by (or for want of an allow in)",
                },
                if denial.explicit == Some(false) {
                    ""
                } else {
                    "a"
                },
                denial.policy_type.as_words(),
            )
            .replace("  ", " ");
            let said = if denial.explicit == Some(false) {
                format!("{said} allows it")
            } else {
                said
            };
            match super::evidence::check_denial(denial, self.findings.iter().filter(|f| f.blocking))
            {
                super::evidence::DenialCheck::Agrees(code) => {
                    confidence = match confidence {
                        Confidence::Low => Confidence::Medium,
                        _ => Confidence::High,
                    };
                    self.assumptions.push(format!(
                        "{said}; the diagnosis agrees ({code}), which raises its confidence."
                    ));
                }
                super::evidence::DenialCheck::Disagrees => {
                    confidence = Confidence::Low;
                    let found: Vec<String> = self
                        .findings
                        .iter()
                        .filter(|f| f.blocking)
                        .map(|f| f.code.to_string())
                        .collect();
                    let ours = if found.is_empty() {
                        "no blocking cause".to_owned()
                    } else {
                        found.join(", ")
                    };
                    self.advisory(Code::MissingEvidence, None, None, format!(
                        "{said}, but the diagnosis finds {ours}. The snapshot may be older than the denial, or miss the policy AWS applied{}: confidence is low until they agree.",
                        if denial.policy_type == crate::request::DeniedPolicyType::VpcEndpoint { " (VPC endpoint policies are not collected)" } else { "" }));
                }
            }
        }
        if verdict == Verdict::Allowed {
            if let Some(ev) = &self.req.event {
                if ev.error_code.is_some() {
                    confidence = Confidence::Low;
                    self.assumptions.push("AWS denied this request, yet every policy in the snapshot allows it: the cause lies in something a snapshot cannot show — a session policy, a VPC endpoint policy, an SCP or RCP of an organization not in the snapshot, a missing object (403 without s3:ListBucket), or a change made after the denial (IAM and KMS changes take up to minutes to propagate).".into());
                }
            }
        }
        for (c, why) in &self.caps {
            if *c < Confidence::High {
                let text = format!(
                    "Confidence lowered to {}: {why}.",
                    match c {
                        Confidence::Low => "low",
                        _ => "medium",
                    }
                );
                if !self.assumptions.contains(&text) {
                    self.assumptions.push(text);
                }
            }
        }
        Diagnosis {
            verdict,
            principal: self.req.principal_label(),
            principal_account,
            resource_account,
            operation: self.req.operation.clone(),
            hops: self.hops,
            findings: self.findings,
            fixes_verified: false,
            confidence,
            assumptions: self.assumptions,
            event: self.req.event.as_ref().map(EventRef::of),
        }
    }
}

/// The ARN of the principal a unique id (`AROA…:session`, `AIDA…`) denotes.
fn resolve_unique_id(snap: &Snapshot, id: &str) -> Option<String> {
    let (account, kind, arn) = snap.identity_by_unique_id(id)?;
    match kind {
        crate::snapshot::IdentityKind::User => Some(arn.to_owned()),
        crate::snapshot::IdentityKind::Role => {
            let role = arn.rsplit('/').next()?;
            let session = id.split_once(':').map_or("unknown-session", |(_, s)| s);
            Some(refs::session_arn(
                Partition::of_arn(arn).unwrap_or_default(),
                account,
                role,
                session,
            ))
        }
    }
}

/// Indexes of the Allow statements S3 considers public: `Principal: "*"` (or `AWS: "*"`)
/// without a condition restricting them to fixed values (spec §4.8).
pub(super) fn public_statements(policy: &Policy) -> Vec<usize> {
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

//! One diagnosis run: the read-only context every step shares ([`Ctx`]), the plan of hops
//! for the request's operation, and the fold of every step's [`Outcome`] into the
//! [`Diagnosis`].

use std::collections::BTreeMap;

use serde_json::{json, Value};

use iam_eval::{
    Caller, Context, Decision, Evaluation, Layer, Named, Policy, PolicySet, Request as EvalRequest,
};

use super::caller::{resolve_unique_id, CallerSide};
use super::explain;
use super::findings::{Code, Finding, Fix, StatementInfo};
use super::fix::{self, FixContext, Target};
use super::layers::{actor, code_for, layer_rank, Actor, HopKind};
use super::outcome::{Outcome, RANK_ADVISORY, RANK_EXPLICIT, RANK_IMPLICIT};
use super::{Confidence, Diagnosis, EventRef, Operation, Request, Verdict};
use crate::refs::BucketRef;
use crate::snapshot::{NamedPolicy, Snapshot};

/// The synthetic documents used where the snapshot is silent.
pub(super) struct Assumed {
    /// Stands in for unknown identity policies so that the visible side is evaluated alone.
    pub identity_allow_all: Policy,
    /// `RCPFullAWSAccess`, attached at every level and impossible to detach.
    pub rcp_full_access: Policy,
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

/// What every step of one diagnosis reads: the snapshot, the request, and the fixes proposed
/// so far. Steps return [`Outcome`] values; nothing here accumulates findings.
pub(super) struct Ctx<'s> {
    pub snap: &'s Snapshot,
    pub req: &'s Request,
    pub with_fixes: bool,
    pub assumed: Assumed,
    /// Documents rewritten by the fixes proposed so far (see `FixContext::rewritten`).
    pub rewritten: std::cell::RefCell<BTreeMap<String, Value>>,
    /// The snapshot with the fixes proposed so far applied (made on the first fix): each
    /// fix's patch is rendered against it, so patches applied in order compose.
    pub applied: std::cell::RefCell<Option<Snapshot>>,
}

#[cfg(test)]
impl<'s> Ctx<'s> {
    /// A context for unit tests of single steps.
    pub(super) fn for_test(snap: &'s Snapshot, req: &'s Request) -> Option<Ctx<'s>> {
        Some(Ctx {
            snap,
            req,
            with_fixes: true,
            assumed: Assumed::new()?,
            rewritten: std::cell::RefCell::new(BTreeMap::new()),
            applied: std::cell::RefCell::new(None),
        })
    }
}

/// One hop's evaluation, as the layer table turns it into findings.
#[derive(Clone, Copy)]
pub(super) struct LayerEval<'a> {
    pub req: &'a EvalRequest,
    pub ev: &'a Evaluation<'a>,
    pub action: &'a str,
    pub resource: &'a str,
    pub tgt: &'a Target,
    pub resource_policy: Option<&'a NamedPolicy>,
    pub rcp: &'a [Vec<NamedPolicy>],
    pub band: u32,
    pub hop: HopKind,
    /// Codes not to report on this hop (a check outside the engine replaces them, or the
    /// stand-in document would invent them); their fixes are never built, so they cannot
    /// leak into the fixes that follow.
    pub skip: &'a [Code],
    /// The VPC endpoint the hop's request came through, when the snapshot lists it (only
    /// the caller's own request travels through it).
    pub vpc_endpoint: Option<super::vpce::SeenEndpoint<'a>>,
}

/// The accounts of the diagnosis.
#[derive(Default)]
struct Accounts {
    principal: Option<String>,
    resource: Option<String>,
    /// The caller's account, when it is not in the snapshot.
    caller_missing: Option<String>,
    /// The layers seen and not seen.
    coverage: Vec<super::coverage::LayerCoverage>,
}

/// Runs the diagnosis (without fix verification).
pub(super) fn run(snap: &Snapshot, req: &Request, with_fixes: bool) -> Diagnosis {
    let Some(assumed) = Assumed::new() else {
        // The stand-in documents are constants; failing to build them is a bug, reported as
        // an unknown verdict rather than a panic.
        let mut out = Outcome::default();
        out.gap(
            None,
            None,
            "internal error: the stand-in policies did not parse".into(),
            Some((Confidence::Low, "internal error")),
        );
        return finish_without_ctx(req, out);
    };
    let r = Ctx {
        snap,
        req,
        with_fixes,
        assumed,
        rewritten: std::cell::RefCell::new(BTreeMap::new()),
        applied: std::cell::RefCell::new(None),
    };
    let mut out = r.collection_gaps();
    out.merge(r.unresolved_alias());
    out.assumptions.extend(req.assumptions.iter().cloned());
    // The engine reads a principal ARN, `anonymous` or a service principal name; a caller the
    // record does not identify is resolved through its unique id below.
    let named = match &req.principal {
        crate::request::Principal::Unknown => String::new(),
        known => known.to_string(),
    };
    let caller = match Caller::parse(&named) {
        Ok(c) => Ok(c),
        // A resource owner's copy of a cross-account record carries only the principal id:
        // find the role or user it belongs to in the snapshot.
        Err(e) => match req
            .principal_id
            .as_deref()
            .and_then(|id| resolve_unique_id(snap, id))
        {
            Some(arn) => {
                out.assumptions.push(explain::caller_resolved_by_id(
                    req.principal_id.as_deref().unwrap_or(""),
                    &arn,
                ));
                Caller::parse(&arn)
            }
            None => Err(e),
        },
    };
    let Ok(caller) = caller else {
        out.gap(
            None,
            None,
            explain::caller_unidentified(req.principal_label()),
            None,
        );
        return r.finish(out, Accounts::default());
    };
    let (side, caller_out) = r.caller_side(caller);
    out.merge(caller_out);
    let principal_account = side.account.clone();
    // The hop plan of each operation (docs/design.md, "Hop plans").
    let resource_account: (Outcome, Option<String>) = match &req.operation {
        Operation::CopyObject {
            source_bucket,
            source_key,
            ..
        } => {
            // The source is read with its own key: the request's encryption headers name
            // the destination's.
            let (read, src) = r.object_read(&side, source_bucket, Some(source_key), false, 0);
            out.merge(read);
            if let Some(b) = r.request_bucket() {
                out.merge(r.object_write(&side, &b, req.object_key.as_deref(), 200).0);
            }
            (Outcome::default(), src)
        }
        Operation::GetObject | Operation::HeadObject => match r.request_bucket() {
            Some(b) => r.object_read(&side, &b, req.object_key.as_deref(), true, 0),
            None => r.no_bucket(),
        },
        Operation::PutObject | Operation::MultipartUpload => match r.request_bucket() {
            Some(b) => r.object_write(&side, &b, req.object_key.as_deref(), 0),
            None => r.no_bucket(),
        },
        Operation::KmsViaS3 { action } => r.kms_via_s3(&side, action),
        Operation::Kms { action } => r.direct_kms(&side, action),
    };
    let (plan, resource_account) = resource_account;
    out.merge(plan);
    let caller_missing = (!side.in_snapshot).then(|| side.account.clone()).flatten();
    let coverage = super::coverage::coverage(&super::coverage::Probe {
        snap,
        req,
        caller: &side.caller,
        caller_account: side.account.as_deref(),
        resource_account: resource_account.as_deref(),
        identity_known: side.identity_known,
        hops: &out.hops,
    });
    r.finish(
        out,
        Accounts {
            principal: principal_account,
            resource: resource_account,
            caller_missing,
            coverage,
        },
    )
}

/// The diagnosis when no step could run.
fn finish_without_ctx(req: &Request, out: Outcome) -> Diagnosis {
    Diagnosis {
        verdict: Verdict::Unknown,
        principal: req.principal_label(),
        principal_account: req.principal_account.clone(),
        resource_account: req.resource_account.clone(),
        operation: req.operation.clone(),
        hops: out.hops,
        findings: out.findings,
        fixes_verified: false,
        fixes_unverified: None,
        confidence: Confidence::Low,
        assumptions: out.assumptions,
        coverage: Vec::new(),
        event: req.event.as_ref().map(EventRef::of),
    }
}

impl<'s> Ctx<'s> {
    pub(super) fn policy_set<'a>(
        &'a self,
        side: &'a CallerSide<'s>,
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
            let mut known: Vec<Named<'a>> = side.identity.iter().map(named).collect();
            if side.identity_partial {
                // An unread attached policy may allow what the others do not: assume it does,
                // so only the policies read can deny, and no missing allow is blamed on it.
                known.push(Named {
                    name: "(attached policies not in the snapshot, assumed to allow)",
                    policy: &self.assumed.identity_allow_all,
                });
            }
            known
        } else {
            vec![Named {
                name: "(identity policies not in the snapshot, assumed to allow)",
                policy: &self.assumed.identity_allow_all,
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
                policy: &self.assumed.rcp_full_access,
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
            // Set by the S3 hop when the request came through a VPC endpoint.
            vpc_endpoint: None,
            grants: Vec::new(),
        }
    }

    /// A request by the caller, carrying what the snapshot knows of it beyond its ARN.
    pub(super) fn request(
        side: &CallerSide<'_>,
        action: &str,
        resource: &str,
        account: Option<&str>,
        ctx: Context,
    ) -> Result<EvalRequest, iam_eval::ParseError> {
        EvalRequest::new(&side.caller.arn, action, resource, account, ctx)
            .map(|r| r.with_canonical_id(side.caller.canonical_id.clone()))
    }

    /// RCP levels of the account owning a resource (none for management accounts).
    pub(super) fn rcp_of(&self, account: &str) -> &'s [Vec<NamedPolicy>] {
        match self
            .snap
            .account(account)
            .and_then(|a| a.organization.as_ref())
        {
            Some(org) if !org.is_management_account => &org.rcp,
            _ => &[],
        }
    }

    /// The partition-qualified reference to a bucket of this request.
    pub(super) fn bucket_ref(&self, bucket: &str) -> BucketRef {
        BucketRef::new(self.req.partition, bucket)
    }

    /// The key the request names (a KMS record's key, PutObject's key header).
    pub(super) fn named_key(&self) -> Option<&'s str> {
        self.req
            .kms_key_arn
            .as_deref()
            .or(self.req.kms_key_ref.as_deref())
    }

    /// Whether a KMS record made by S3 shows a Bucket Key (its `aws:s3:arn` context names
    /// the bucket); `None` when the request does not tell.
    pub(super) fn bucket_key_hint(&self) -> Option<bool> {
        (self.req.via_s3 && !self.req.encryption_context.is_empty()).then_some(self.req.bucket_key)
    }

    /// Records the documents a fix rewrites, so that the next fix to the same document starts
    /// from them, and renders its edits as a patch of the snapshot document.
    pub(super) fn remember(&self, fix: Option<&mut Fix>) {
        let Some(fix) = fix else { return };
        let mut applied = self.applied.borrow_mut();
        let current = applied.get_or_insert_with(|| self.snap.clone());
        fix.patch = fix
            .edits
            .iter()
            .flat_map(|e| {
                let patch = e.patch(current);
                // A failing edit is reported by the verification; the patch is still printed.
                let _ = e.apply(current);
                patch
            })
            .collect();
        for e in &fix.edits {
            if let Some((pointer, document)) = e.rewrites() {
                self.rewritten
                    .borrow_mut()
                    .insert(pointer, document.clone());
            }
        }
    }

    /// A blocking finding found outside the engine's layers (key state, Region, AWS managed
    /// key, object ownership, Block Public Access), with its special fix.
    pub(super) fn blocking(
        &self,
        code: Code,
        action: &str,
        account: &str,
        explanation: String,
        rank: u32,
        tgt: &Target,
    ) -> Finding {
        let mut f = Finding::new(code, Some(action), Some(account), explanation, rank);
        if self.with_fixes {
            // The object of this hop (a CopyObject's source read is not its destination).
            let hop_object = match tgt {
                Target::Bucket { object, .. } => Some(object.as_str()),
                Target::Key { object, .. } => object.as_deref(),
                Target::AccessPoint { .. } => None,
            };
            let object = hop_object
                .and_then(crate::refs::parse_s3_arn)
                .map(|(_, b, k)| (b, k.filter(|k| *k != "*")))
                .or_else(|| {
                    self.req
                        .bucket
                        .as_deref()
                        .map(|b| (b, self.req.object_key.as_deref()))
                });
            f.fix = fix::build_special(code, self.snap, self.req.partition, object, action, tgt);
            self.remember(f.fix.as_mut());
        }
        f
    }

    pub(super) fn engine_notes(&self, ev: &Evaluation<'_>, account: &str) -> Outcome {
        let mut out = Outcome::default();
        for n in &ev.notes {
            match n {
                iam_eval::authorize::Note::OrphanedPrincipalId { policy, index, id } => {
                    out.advisory(Code::OrphanedPrincipalId, None, Some(account), format!(
                        "{policy} statement {index} names `{id}`: the unique id AWS shows once the principal it named was deleted. It matches nobody, not even a principal re-created with the same name. Re-save the policy with the principal's ARN."));
                }
                iam_eval::authorize::Note::NotPrincipalIncomplete { .. }
                | iam_eval::authorize::Note::EveryoneGrantSkipsCeiling => {
                    out.cap(
                        Confidence::Medium,
                        "the verdict rests on a rule AWS documents only partly",
                    );
                }
                iam_eval::authorize::Note::ResourceAccountAssumed => {}
            }
        }
        if !ev.unknown_context_keys.is_empty() && ev.decision != Decision::Allowed {
            out.cap(
                Confidence::Medium,
                "condition keys absent from the request were consulted",
            );
        }
        out
    }

    /// Findings for every blocking layer of one hop.
    pub(super) fn layer_findings(&self, side: &CallerSide<'_>, e: &LayerEval<'_>) -> Vec<Finding> {
        let LayerEval {
            req,
            ev,
            action,
            resource,
            tgt,
            resource_policy,
            rcp,
            band,
            hop,
            skip,
            vpc_endpoint,
        } = *e;
        let mut out = Vec::new();
        let caller_account = side.account.clone().unwrap_or_default();
        let resource_account = tgt.account().to_owned();
        for (explicit, layers) in [(true, &ev.explicit_denies), (false, &ev.missing_allows)] {
            for layer in layers.iter() {
                let code = code_for(*layer, explicit, hop);
                if skip.contains(&code) {
                    continue;
                }
                let account = match actor(*layer) {
                    Actor::Caller => caller_account.clone(),
                    Actor::ResourceOwner => resource_account.clone(),
                    Actor::EndpointOwner => vpc_endpoint
                        .map(|e| e.owner.to_owned())
                        .or_else(|| {
                            self.req
                                .vpc_endpoint
                                .as_ref()
                                .and_then(|r| r.account.clone())
                        })
                        .unwrap_or_else(|| caller_account.clone()),
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
                    Layer::VpcEndpoint => vpc_endpoint
                        .and_then(|e| e.endpoint.policy.as_ref())
                        .map(|p| p.name.clone()),
                    _ => statements.first().map(|s| s.policy.clone()),
                };
                let explanation = super::explain::explain_layer(
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
                        snap: self.snap,
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
                        fas: hop == HopKind::Kms
                            && !matches!(self.req.operation, Operation::Kms { .. }),
                        vpc_endpoint,
                        rewritten: &self.rewritten,
                    };
                    f.fix = fix::build(code, &fc);
                    self.remember(f.fix.as_mut());
                }
                out.push(f);
            }
        }
        out
    }

    /// Folds the outcomes into the diagnosis: the caller's account's obligations when it is
    /// not in the snapshot, the ranking, the verdict, the checks against the record, and the
    /// confidence.
    fn finish(&self, mut out: Outcome, accounts: Accounts) -> Diagnosis {
        let Accounts {
            principal,
            resource,
            caller_missing,
            coverage,
        } = accounts;
        if let Some(b) = caller_missing {
            let statements: Vec<Value> = out
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
            let needs = out
                .required_identity
                .iter()
                .map(|(a, r)| format!("{a} on `{r}`"))
                .collect::<Vec<_>>()
                .join(" and ");
            let explanation =
                explain::caller_account_missing(&b, &needs, self.req.principal_label());
            let mut f = Finding::new(
                Code::MissingEvidence,
                None,
                Some(&b),
                explanation,
                RANK_ADVISORY,
            );
            if !out.required_identity.is_empty() {
                f.fix = Some(super::findings::Fix {
                    account: b.clone(),
                    artifact: "identity policy of the caller (what its account must grant)".into(),
                    statement: Some(doc.clone()),
                    patched_policy: None,
                    cli: format!("aws iam put-role-policy --role-name <role> --policy-name s3-kms-auditor-access --policy-document '{}'   # in account {b}", serde_json::to_string(&doc).unwrap_or_default()),
                    notes: vec!["Not verified: the caller's account is not in the snapshot.".into()],
                    edits: Vec::new(),
                    patch: Vec::new(),
                });
            }
            out.findings.push(f);
        }
        out.findings
            .sort_by(|a, b| a.rank.cmp(&b.rank).then(a.code.cmp(&b.code)));
        let blocking = out.findings.iter().any(|f| f.blocking);
        let verdict = if blocking {
            Verdict::Denied
        } else if out.incomplete {
            Verdict::Unknown
        } else {
            Verdict::Allowed
        };
        let mut confidence = out
            .caps
            .iter()
            .map(|(c, _)| *c)
            .min()
            .unwrap_or(Confidence::High);
        // A key-state error in the record (DisabledException, KMSInvalidStateException) that
        // the snapshot does not show: the key changed state since, or the snapshot is older.
        if self.req.key_state_error && !out.findings.iter().any(|f| f.code == Code::KeyNotUsable) {
            out.advisory(
                Code::MissingEvidence,
                None,
                self.req.resource_account.as_deref(),
                explain::key_state_error_not_in_snapshot(),
            );
            confidence = confidence.min(Confidence::Medium);
        }
        super::evidence::reconcile_hops(&mut out.hops, &out.findings);
        // AWS's enhanced AccessDenied message names the policy type that denied: the
        // diagnosis is checked against it.
        if let Some(denial) = &self.req.denial {
            let said = explain::aws_message(denial);
            match super::evidence::check_denial(denial, out.findings.iter().filter(|f| f.blocking))
            {
                super::evidence::DenialCheck::Agrees(code) => {
                    // Agreement lifts a low confidence one step; it never overrides a cap
                    // that missing evidence set.
                    if confidence == Confidence::Low {
                        confidence = Confidence::Medium;
                    }
                    out.assumptions.push(explain::message_agrees(&said, code));
                }
                super::evidence::DenialCheck::Disagrees => {
                    confidence = Confidence::Low;
                    let found: Vec<String> = out
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
                    out.advisory(
                        Code::MissingEvidence,
                        None,
                        None,
                        explain::message_disagrees(&said, &ours, denial.policy_type),
                    );
                }
            }
        }
        if verdict == Verdict::Allowed {
            if let Some(ev) = &self.req.event {
                if ev.error_code.is_some() {
                    confidence = Confidence::Low;
                    out.assumptions.push(explain::allowed_but_denied());
                }
            }
        }
        for (c, why) in &out.caps {
            if *c < Confidence::High {
                let text = explain::confidence_lowered(*c, why);
                if !out.assumptions.contains(&text) {
                    out.assumptions.push(text);
                }
            }
        }
        Diagnosis {
            verdict,
            principal: self.req.principal_label(),
            principal_account: principal,
            resource_account: resource,
            operation: self.req.operation.clone(),
            hops: out.hops,
            findings: out.findings,
            fixes_verified: false,
            fixes_unverified: None,
            confidence,
            assumptions: out.assumptions,
            coverage,
            event: self.req.event.as_ref().map(EventRef::of),
        }
    }
}

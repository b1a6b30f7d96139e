//! The caller's side (account B): its identity policies, boundary, session policy, SCPs,
//! tags and organization, as the snapshot shows them, and what is missing.

use std::collections::BTreeMap;

use iam_eval::{Caller, CallerKind};

use super::explain;
use super::findings::Code;
use super::outcome::Outcome;
use super::run::Ctx;
use super::Confidence;
use crate::refs::{self, Partition};
use crate::snapshot::{NamedPolicy, Snapshot};

/// Everything known about the caller's side (account B).
pub(super) struct CallerSide<'s> {
    pub caller: Caller,
    pub account: Option<String>,
    /// The caller's identity policies are known (IAM data found, or root).
    pub identity_known: bool,
    pub identity: Vec<&'s NamedPolicy>,
    /// Some attached policies are missing from the snapshot (the collector could not read
    /// them): what they allow is unknown, so a missing allow is never concluded.
    pub identity_partial: bool,
    pub boundary: Option<&'s NamedPolicy>,
    /// The session policy, when the session's creation is in the snapshot.
    pub session: Option<&'s NamedPolicy>,
    /// `aws:PrincipalArn` with the role path when known.
    pub principal_arn: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub scp: Vec<Vec<&'s NamedPolicy>>,
    pub org_id: Option<String>,
    /// The caller's account is in the snapshot.
    pub in_snapshot: bool,
}

impl<'s> Ctx<'s> {
    /// Reads the collector could not make. What they would have returned is absent from the
    /// snapshot, and absent can read as "nothing there" (no bucket policy, no SCP), so each
    /// gap is reported and the verdict cannot be `allowed` on the evidence at hand.
    pub(super) fn collection_gaps(&self) -> Outcome {
        let mut out = Outcome::default();
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
            out.advisory(
                Code::MissingEvidence,
                None,
                e.account.as_deref(),
                explain::collection_gap(&what, &whose, &e.error, &message),
            );
            out.incomplete = true;
            out.cap(
                Confidence::Medium,
                "the collector could not read everything it needed",
            );
        }
        out
    }

    pub(super) fn caller_side(&self, caller: Caller) -> (CallerSide<'s>, Outcome) {
        let mut out = Outcome::default();
        let account = caller.account.clone();
        let acct = account.as_deref().and_then(|a| self.snap.account(a));
        let mut side = CallerSide {
            principal_arn: caller.principal_arn().map(str::to_owned),
            caller,
            account: account.clone(),
            identity_known: false,
            identity: Vec::new(),
            identity_partial: false,
            boundary: None,
            session: None,
            tags: BTreeMap::new(),
            scp: Vec::new(),
            org_id: None,
            in_snapshot: acct.is_some(),
        };
        let Some(a) = acct else {
            out.incomplete = true;
            out.cap(
                Confidence::Medium,
                "the caller's account is not in the snapshot",
            );
            return (side, out);
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
                out.assumptions.push(explain::no_organization_data(&id));
                out.cap(Confidence::Medium, "SCPs of the caller's account unknown");
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
                                out.advisory(
                                    Code::MissingEvidence,
                                    None,
                                    Some(&id),
                                    explain::boundary_missing(b, pp.arn),
                                );
                                out.cap(
                                    Confidence::Medium,
                                    "permissions boundary document missing",
                                );
                            }
                        }
                        if !pp.missing.is_empty() {
                            side.identity_partial = true;
                            out.incomplete = true;
                            out.advisory(
                                Code::MissingEvidence,
                                None,
                                Some(&id),
                                explain::attached_policies_missing(pp.arn, pp.missing.join(", ")),
                            );
                            out.cap(
                                Confidence::Medium,
                                "attached policies missing from the snapshot",
                            );
                        }
                    }
                    None => {
                        out.incomplete = true;
                        let has_iam = a.iam.is_some();
                        out.advisory(
                            Code::MissingEvidence,
                            None,
                            Some(&id),
                            if has_iam {
                                explain::principal_not_in_iam(&arn, &id)
                            } else {
                                explain::iam_data_missing(&id, &arn)
                            },
                        );
                        out.cap(
                            Confidence::Low,
                            "the caller's identity policies are unknown",
                        );
                    }
                }
            }
            CallerKind::FederatedUser => {
                out.incomplete = true;
                out.advisory(
                    Code::MissingEvidence,
                    None,
                    Some(&id),
                    explain::federated_user(),
                );
                out.cap(Confidence::Low, "federated user permissions unknown");
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
        (side, out)
    }
}

/// The ARN of the principal a unique id (`AROA…:session`, `AIDA…`) denotes.
pub(super) fn resolve_unique_id(snap: &Snapshot, id: &str) -> Option<String> {
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

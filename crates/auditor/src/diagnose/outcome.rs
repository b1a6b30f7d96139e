//! What one step of the diagnosis found, returned as a value and folded into the diagnosis
//! by [`super::run`]: hops, findings, assumptions and what lowers confidence.

use iam_eval::Evaluation;

use super::findings::{Code, Finding};
use super::{Confidence, Hop};

/// Ranks: the order AWS meets the walls. Each hop gets a band of 100.
pub(super) const RANK_KEY_EXISTS: u32 = 1;
pub(super) const RANK_KEY_STATE: u32 = 2;
pub(super) const RANK_EXPLICIT: u32 = 10;
pub(super) const RANK_IMPLICIT: u32 = 30;
pub(super) const RANK_ADVISORY: u32 = 10_000;

/// The findings and facts of one step (a hop, a plan, the caller's side).
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// Hops evaluated, in the order AWS evaluates them.
    pub hops: Vec<Hop>,
    /// Findings, blocking and advisory.
    pub findings: Vec<Finding>,
    /// What was assumed where evidence was missing.
    pub assumptions: Vec<String>,
    /// Confidence caps with their reasons.
    pub caps: Vec<(Confidence, String)>,
    /// Evidence needed for a verdict is missing.
    pub incomplete: bool,
    /// What the caller's IAM must allow when its account is not in the snapshot:
    /// (action, resource) per hop evaluated with an assumed identity side.
    pub required_identity: Vec<(String, String)>,
}

impl Outcome {
    /// Lowers the confidence to at most `c`, saying why.
    pub fn cap(&mut self, c: Confidence, why: impl Into<String>) {
        self.caps.push((c, why.into()));
    }

    /// An advisory finding (once per code and text).
    pub fn advisory(
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

    /// A missing piece of evidence: an advisory `MISSING_EVIDENCE`, the verdict cannot be
    /// `allowed`, and confidence is capped.
    pub fn gap(
        &mut self,
        action: Option<&str>,
        account: Option<&str>,
        explanation: String,
        cap: Option<(Confidence, &str)>,
    ) {
        self.incomplete = true;
        self.advisory(Code::MissingEvidence, action, account, explanation);
        if let Some((c, why)) = cap {
            self.cap(c, why);
        }
    }

    /// A hop whose request could not be put to the engine (a principal or resource the engine
    /// cannot read): not evaluated, and said why — never a silent `unknown`.
    pub fn unevaluated(&mut self, action: &str, resource: &str, account: Option<&str>, why: &str) {
        self.push_hop(action, resource, None);
        self.gap(
            Some(action),
            account,
            format!("The {action} request on `{resource}` could not be evaluated: {why}."),
            Some((Confidence::Low, "a hop could not be evaluated")),
        );
    }

    /// Records a hop as the engine evaluated it (`None`: not evaluated).
    pub fn push_hop(&mut self, action: &str, resource: &str, ev: Option<&Evaluation<'_>>) {
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

    /// Folds another step's outcome into this one.
    pub fn merge(&mut self, other: Outcome) {
        self.hops.extend(other.hops);
        for f in other.findings {
            let dup = !f.blocking
                && self
                    .findings
                    .iter()
                    .any(|x| x.code == f.code && x.explanation == f.explanation);
            if !dup {
                self.findings.push(f);
            }
        }
        for a in other.assumptions {
            if !self.assumptions.contains(&a) {
                self.assumptions.push(a);
            }
        }
        self.caps.extend(other.caps);
        self.incomplete |= other.incomplete;
        self.required_identity.extend(other.required_identity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_blocking_findings_and_drops_repeated_advisories() {
        let mut a = Outcome::default();
        a.advisory(Code::MissingEvidence, None, None, "same".into());
        let mut b = Outcome::default();
        b.advisory(Code::MissingEvidence, None, None, "same".into());
        b.findings.push(Finding::new(
            Code::KeyPolicyNoAllow,
            Some("kms:Decrypt"),
            Some("111122223333"),
            "x".into(),
            130,
        ));
        b.gap(None, None, "other".into(), Some((Confidence::Low, "why")));
        a.merge(b);
        assert_eq!(a.findings.len(), 3);
        assert!(a.incomplete);
        assert_eq!(a.caps, vec![(Confidence::Low, "why".to_owned())]);
    }

    #[test]
    fn a_hop_that_cannot_be_evaluated_says_why() {
        let mut out = Outcome::default();
        out.unevaluated(
            "kms:Decrypt",
            "arn:aws:kms:us-west-2:1:key/k",
            Some("1"),
            "the resource is not an ARN",
        );
        assert_eq!(out.hops.len(), 1);
        assert_eq!(out.hops[0].decision, "NotEvaluated");
        assert!(out.incomplete);
        assert_eq!(out.findings[0].code, Code::MissingEvidence);
        assert!(out.findings[0]
            .explanation
            .contains("the resource is not an ARN"));
    }
}

//! The two-hop diagnosis: from a denied request and an account snapshot to every blocking
//! cause, the account that must act, and a fix verified by re-evaluation.
//!
//! A read of an SSE-KMS object is authorized twice (docs/design.md, "The two hops"): S3 authorizes the caller for
//! `s3:GetObject`, then calls KMS as the same caller (a forward access session) for
//! `kms:Decrypt` on the key that actually encrypted the object. AWS stops at the first wall;
//! the diagnosis evaluates both hops regardless and reports every cause, ranked in the order
//! AWS would hit them, so fixing one never reveals an unannounced next one.

mod access_point;
mod bpa;
mod caller;
mod combine;
mod context;
pub mod coverage;
pub mod edit;
mod evidence;
mod explain;
pub mod findings;
mod fix;
mod kms;
mod layers;
mod outcome;
mod report;
mod run;
mod s3;
pub mod verify;
mod vpce;

use serde::Serialize;

pub use findings::{Code, Finding, Fix, StatementInfo};
pub use report::render_text;
pub use verify::FixCache;

pub(crate) use combine::combine;

use crate::request::EventMeta;
pub use crate::request::{Operation, Request};
use crate::snapshot::Snapshot;

/// Provenance of a request taken from CloudTrail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRef {
    /// `eventID`.
    pub event_id: Option<String>,
    /// `eventTime`.
    pub event_time: Option<String>,
    /// `eventSource`.
    pub event_source: Option<String>,
    /// `eventName`.
    pub event_name: Option<String>,
    /// `recipientAccountId`: whose trail recorded it.
    pub recipient_account: Option<String>,
    /// `errorCode`.
    pub error_code: Option<String>,
    /// `errorMessage`.
    pub error_message: Option<String>,
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// At least one blocking cause.
    Denied,
    /// Nothing blocks with the evidence at hand.
    Allowed,
    /// Nothing blocks on the visible side, but evidence needed for a verdict is missing.
    Unknown,
}

/// How much the verdict can be trusted (docs/design.md, "Confidence").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// Key inputs unknown.
    Low,
    /// One input unknown, or an undocumented rule on the path.
    Medium,
    /// Every policy on the decisive path known.
    High,
}

/// One authorization hop as evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// `s3:GetObject`, `kms:Decrypt`, ...
    pub action: String,
    /// The ARN authorized.
    pub resource: String,
    /// `Allowed`, `ImplicitlyDenied`, `ExplicitlyDenied`, or `NotEvaluated` (evidence missing).
    pub decision: String,
    /// Blocking layers.
    pub denied_by: Vec<String>,
    /// Condition keys the hop's statements consulted that the request did not carry.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_context_keys: Vec<String>,
}

/// The diagnosis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    /// `denied`, `allowed` or `unknown`.
    pub verdict: Verdict,
    /// The caller.
    pub principal: String,
    /// The caller's account.
    pub principal_account: Option<String>,
    /// The bucket owner (or key owner for direct KMS calls).
    pub resource_account: Option<String>,
    /// The operation.
    pub operation: Operation,
    /// Each hop in the order AWS evaluates them.
    pub hops: Vec<Hop>,
    /// Blocking findings first (in the order AWS would hit them), then advisory ones.
    pub findings: Vec<Finding>,
    /// Whether applying every fix to a copy of the snapshot and diagnosing again leaves
    /// nothing blocking.
    pub fixes_verified: bool,
    /// Why the fixes could not be verified, when the request is denied and they were not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixes_unverified: Option<String>,
    /// Confidence.
    pub confidence: Confidence,
    /// What the diagnosis assumed where evidence was missing.
    pub assumptions: Vec<String>,
    /// Which policy layers the diagnosis saw and which it could not, for this request: what
    /// is left to check when nothing visible blocks (omitted when it could not tell).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub coverage: Vec<coverage::LayerCoverage>,
    /// The event diagnosed, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<EventRef>,
}

impl Diagnosis {
    /// The blocking findings.
    pub fn blocking(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.blocking)
    }
}

/// Diagnoses `request` against `snapshot`: every blocking cause, and fixes verified by
/// applying their edits to a clone of the snapshot and diagnosing again.
pub fn diagnose(snapshot: &Snapshot, request: &Request) -> Diagnosis {
    diagnose_cached(snapshot, request, &mut FixCache::default())
}

/// [`diagnose`], verifying fixes against `cache`: diagnoses of many requests on one snapshot
/// (a sweep) apply each distinct set of fixes to a clone of the snapshot once. The cache must
/// only ever see `snapshot`.
pub fn diagnose_cached(snapshot: &Snapshot, request: &Request, cache: &mut FixCache) -> Diagnosis {
    let mut d = run::run(snapshot, request, true);
    match verify::verify(snapshot, request, &d, cache) {
        Ok(()) => d.fixes_verified = true,
        Err(why) => {
            d.fixes_verified = false;
            if d.verdict == Verdict::Denied {
                d.fixes_unverified = Some(why.to_string());
            }
        }
    }
    d
}

/// The verdict on `request` without proposing or verifying fixes: what a fix is checked
/// against once it has been applied to a copy of the snapshot.
pub(crate) fn verdict_of(snapshot: &Snapshot, request: &Request) -> Verdict {
    run::run(snapshot, request, false).verdict
}

impl EventRef {
    /// The provenance of a request read from CloudTrail.
    pub fn of(meta: &EventMeta) -> EventRef {
        EventRef {
            event_id: meta.event_id.clone(),
            event_time: meta.event_time.clone(),
            event_source: Some(meta.event_source.clone()),
            event_name: Some(meta.event_name.clone()),
            recipient_account: meta.recipient_account.clone(),
            error_code: meta.error_code.clone(),
            error_message: meta.error_message.clone(),
        }
    }
}

/// Who must act on a finding, in words: "account 111122223333", or the organization's
/// management account for SCPs and RCPs.
pub fn who_acts(f: &Finding) -> String {
    let who = f.fix.as_ref().map_or_else(
        || f.account.clone().unwrap_or_default(),
        |x| x.account.clone(),
    );
    let org_policy = matches!(
        f.code,
        Code::ScpNoAllow | Code::ScpExplicitDeny | Code::RcpExplicitDeny
    );
    if crate::refs::is_account_id(&who) && org_policy {
        format!("the organization's management account {who}")
    } else if crate::refs::is_account_id(&who) {
        format!("account {who}")
    } else {
        who
    }
}

#[cfg(test)]
pub(super) mod testing {
    //! A snapshot and requests for unit tests of single steps.
    use serde_json::Value;

    use crate::event::adhoc_request;
    use crate::request::Request;
    use crate::snapshot::Snapshot;

    /// The working knowledge-center setup (reads allowed on both hops).
    pub fn working() -> (Snapshot, Value) {
        let raw: Value = serde_json::from_str(include_str!(
            "../../../../tests/scenarios/base/kc-working.json"
        ))
        .unwrap_or(Value::Null);
        let snap = Snapshot::from_value(&raw).unwrap_or_default();
        (snap, raw)
    }

    /// The reader's GetObject of `reports/q1.csv`.
    pub fn read(partition: &str) -> Request {
        let (p, r) = if partition == "aws" {
            (
                "arn:aws:sts::444455556666:assumed-role/reader/s1".to_owned(),
                "arn:aws:s3:::doc-example-bucket/reports/q1.csv".to_owned(),
            )
        } else {
            (
                format!("arn:{partition}:sts::444455556666:assumed-role/reader/s1"),
                format!("arn:{partition}:s3:::doc-example-bucket/reports/q1.csv"),
            )
        };
        match adhoc_request(&p, "s3:GetObject", &r) {
            Ok(r) => r,
            Err(e) => panic!("test request: {e}"),
        }
    }
}

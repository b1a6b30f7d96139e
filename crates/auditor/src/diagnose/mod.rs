//! The two-hop diagnosis: from a denied request and an account snapshot to every blocking
//! cause, the account that must act, and a fix verified by re-evaluation.
//!
//! A read of an SSE-KMS object is authorized twice (spec §1.6): S3 authorizes the caller for
//! `s3:GetObject`, then calls KMS as the same caller (a forward access session) for
//! `kms:Decrypt` on the key that actually encrypted the object. AWS stops at the first wall;
//! the diagnosis evaluates both hops regardless and reports every cause, ranked in the order
//! AWS would hit them, so fixing one never reveals an unannounced next one.

pub mod findings;
mod fix;
mod hops;
mod report;
mod verify;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use iam_eval::ContextValue;

pub use findings::{Code, Finding, Fix, StatementInfo};
pub use report::render_text;

use crate::snapshot::Snapshot;

/// What was attempted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// `GetObject`: `s3:GetObject`, then `kms:Decrypt` on the object's key.
    GetObject,
    /// `HeadObject`: `s3:GetObject` only (no KMS call).
    HeadObject,
    /// `PutObject`: `s3:PutObject`, then `kms:GenerateDataKey` on the write key.
    PutObject,
    /// Multipart upload: `s3:PutObject`, then `kms:GenerateDataKey` and `kms:Decrypt`.
    MultipartUpload,
    /// `CopyObject`: read of the source (both hops) and write of the destination (both hops).
    CopyObject {
        /// Source bucket.
        source_bucket: String,
        /// Source key.
        source_key: String,
    },
    /// A KMS call made directly by the principal (not through S3).
    Kms {
        /// `kms:Decrypt`, `kms:GenerateDataKey`, ...
        action: String,
    },
}

/// The request to diagnose.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The caller: session, role, user, root or federated-user ARN.
    pub principal: String,
    /// What was attempted.
    pub operation: Operation,
    /// The bucket (absent for direct KMS calls).
    pub bucket: Option<String>,
    /// The object key.
    pub object_key: Option<String>,
    /// A key the event names (KMS events; PutObject's SSE header).
    pub kms_key: Option<String>,
    /// Whether the event shows a Bucket Key (encryption context = bucket ARN).
    pub bucket_key: Option<bool>,
    /// The resource owner, when the event names it.
    pub resource_account: Option<String>,
    /// Context keys from the event (network, time, region, MFA...).
    pub context: BTreeMap<String, ContextValue>,
    /// Where the query came from.
    pub event: Option<EventRef>,
    /// `userIdentity.principalId` (`AROA…:session`, `AIDA…`): resolves the caller when the
    /// record (a resource owner's copy) carries no ARN.
    pub principal_id: Option<String>,
    /// What the event parser derived rather than read, carried into the report.
    pub assumptions: Vec<String>,
    /// The read names a version (`versionId`): S3 authorizes `s3:GetObjectVersion`.
    pub versioned: bool,
}

impl Query {
    /// The S3 action a read of the object is authorized as.
    pub fn read_action(&self) -> &'static str {
        if self.versioned {
            "s3:GetObjectVersion"
        } else {
            "s3:GetObject"
        }
    }
}

/// Provenance of a query taken from CloudTrail.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// At least one blocking cause.
    Denied,
    /// Nothing blocks with the evidence at hand.
    Allowed,
    /// Nothing blocks on the visible side, but evidence needed for a verdict is missing.
    Unknown,
}

/// How much the verdict can be trusted (spec §7.3).
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
    /// Confidence.
    pub confidence: Confidence,
    /// What the diagnosis assumed where evidence was missing.
    pub assumptions: Vec<String>,
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

/// Diagnoses `query` against `snapshot`, whose JSON document is `raw` (the base that fixes
/// are applied to for verification).
pub fn diagnose(snapshot: &Snapshot, raw: &Value, query: &Query) -> Diagnosis {
    let mut d = hops::run(snapshot, raw, query, true);
    d.fixes_verified = verify::verify(raw, query, &d);
    d
}

impl Query {
    /// The query for a request parsed from CloudTrail (or given ad hoc).
    pub fn from_denied(req: &crate::event::DeniedRequest) -> Query {
        use crate::event::Principal;
        let principal = match &req.principal {
            Principal::Arn(a) => a.clone(),
            Principal::Anonymous => "anonymous".to_owned(),
            Principal::Service(s) => s.clone(),
            Principal::Unknown => format!(
                "unknown principal {} of account {}",
                req.principal_id.as_deref().unwrap_or("?"),
                req.principal_account.as_deref().unwrap_or("?")
            ),
        };
        let event_name = req
            .event
            .as_ref()
            .map(|e| e.event_name.as_str())
            .unwrap_or("");
        let kms_on_behalf_of_s3 = req.is_kms() && req.via_s3 && req.bucket.is_some();
        let operation = match event_name {
            "GetObject" => Operation::GetObject,
            "HeadObject" => Operation::HeadObject,
            "PutObject" => Operation::PutObject,
            "CreateMultipartUpload"
            | "UploadPart"
            | "UploadPartCopy"
            | "CompleteMultipartUpload"
                if event_name != "UploadPartCopy" || req.copy_source.is_none() =>
            {
                Operation::MultipartUpload
            }
            // A part copied from another object reads that object (both hops) before the
            // multipart write, like CopyObject.
            "CopyObject" | "UploadPartCopy" => match &req.copy_source {
                Some(src) => Operation::CopyObject {
                    source_bucket: src.bucket.clone(),
                    source_key: src.key.clone(),
                },
                None => Operation::PutObject,
            },
            _ if kms_on_behalf_of_s3 && req.action.eq_ignore_ascii_case("kms:Decrypt") => {
                Operation::GetObject
            }
            _ if kms_on_behalf_of_s3 => Operation::PutObject,
            _ if req.is_kms() => Operation::Kms {
                action: req.action.clone(),
            },
            _ if req.action.eq_ignore_ascii_case("s3:PutObject") => Operation::PutObject,
            _ => Operation::GetObject,
        };
        Query {
            principal,
            operation,
            bucket: req.bucket.clone(),
            object_key: req.object_key.clone(),
            kms_key: req.kms_key_arn.clone().or_else(|| req.kms_key_ref.clone()),
            bucket_key: (req.via_s3 && !req.encryption_context.is_empty())
                .then_some(req.bucket_key),
            resource_account: req.resource_account.clone(),
            context: req.context.clone(),
            principal_id: req.principal_id.clone(),
            versioned: req.action.eq_ignore_ascii_case("s3:GetObjectVersion")
                || req.version_id.is_some() && req.action.eq_ignore_ascii_case("s3:GetObject"),
            assumptions: req.assumptions.clone(),
            event: req.event.as_ref().map(|e| EventRef {
                event_id: e.event_id.clone(),
                event_time: e.event_time.clone(),
                event_source: Some(e.event_source.clone()),
                event_name: Some(e.event_name.clone()),
                recipient_account: e.recipient_account.clone(),
                error_code: e.error_code.clone(),
                error_message: e.error_message.clone(),
            }),
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
    if who.len() == 12 && who.bytes().all(|b| b.is_ascii_digit()) {
        format!("account {who}")
    } else {
        who
    }
}

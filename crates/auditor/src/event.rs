//! From CloudTrail to the request that was denied.
//!
//! Accepted inputs: one CloudTrail record (as in a trail log file or `LookupEvents`), an
//! EventBridge envelope (`"detail-type": "AWS API Call via CloudTrail"`, the record in
//! `detail`), a trail log file (`{"Records": [...]}`), `aws cloudtrail lookup-events` output
//! (`{"Events": [{"CloudTrailEvent": "<record as a string>"}]}`), or a JSON array of records.
//!
//! Each record becomes an [`EventOutcome`]: the denied request it describes, a change that
//! can alter a read path ([`ChangeEvent`], one of [`CHANGE_EVENTS`], with what it touches),
//! or the reason it was skipped (the call succeeded, the operation is not one this tool
//! diagnoses, the error is not an authorization failure, the change failed). The request carries the principal, the IAM action, the
//! resource and its owner, and the request context a policy would see, derived from what the
//! record shows. Anything derived rather than read is stated in
//! [`Request::assumptions`]. Keys that only the snapshot knows (`aws:PrincipalOrgID`,
//! `aws:PrincipalTag/*`, `aws:ResourceOrgID`, the role path of a session) are left to the
//! diagnosis (docs/design.md, "Evidence from the record").
//!
//! A record, or an EventBridge envelope, larger than [`limits::MAX_EVENT_BYTES`] (256 KB, the
//! largest event EventBridge accepts) is refused with its path before it is read further: AWS
//! cannot have delivered it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use iam_eval::ContextValue;
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

pub use crate::impact::{ChangeEvent, Touched, CHANGE_EVENTS};
use crate::limits::{self, thousands};
use crate::reader::{Node, PathError};
use crate::refs::{
    self as arn, is_account_id, is_service_name, AccessPointRef, Arn, BucketRef, Partition,
};
pub use crate::request::{
    AccessPointUse, AwsDenial, CopySource, EventMeta, Operation, Principal, PrincipalType, Request,
};

/// An event that cannot be read, with the JSON path of the offending value
/// (`detail.userIdentity`, `Records[2].eventName`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{path}: {message}")]
pub struct EventError {
    path: String,
    message: String,
}

impl EventError {
    /// The JSON path of the offending value (`$` for the document itself; for ad hoc
    /// requests, the argument: `principal`, `action` or `resource`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong with it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<PathError> for EventError {
    fn from(e: PathError) -> EventError {
        EventError {
            path: e.path,
            message: e.message,
        }
    }
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum EventOutcome {
    /// An authorization failure this tool can diagnose.
    Denied(Box<Request>),
    /// A successful change that can alter a read path (bucket policy, key policy, grant,
    /// key state, alias, identity policy, SCP...): what it touches.
    Change(Box<ChangeEvent>),
    /// A record that needs no diagnosis.
    Skipped {
        /// `eventID`, when the record has one.
        event_id: Option<String>,
        /// Why it was skipped.
        reason: SkipReason,
    },
}

/// Why a record needs no diagnosis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SkipReason {
    /// The call succeeded (no `errorCode`).
    Succeeded,
    /// The call failed for a reason other than authorization (`NoSuchKey`, throttling...).
    NotAuthorizationError {
        /// The record's `errorCode`.
        error_code: String,
    },
    /// A change of [`CHANGE_EVENTS`] that failed: AWS did not apply it.
    ChangeFailed {
        /// `eventName`.
        event_name: String,
        /// The record's `errorCode`.
        error_code: String,
    },
    /// The operation is not an S3 object read or write, or a KMS cryptographic operation.
    UnsupportedEvent {
        /// `eventSource`.
        event_source: String,
        /// `eventName`.
        event_name: String,
    },
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::Succeeded => write!(f, "the call succeeded"),
            SkipReason::NotAuthorizationError { error_code } => {
                write!(f, "`{error_code}` is not an authorization failure")
            }
            SkipReason::ChangeFailed {
                event_name,
                error_code,
            } => write!(
                f,
                "the {event_name} call failed with `{error_code}`: AWS did not apply it"
            ),
            SkipReason::UnsupportedEvent {
                event_source,
                event_name,
            } => write!(
                f,
                "`{event_name}` from `{event_source}` is not an operation this tool diagnoses"
            ),
        }
    }
}

pub(crate) const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";

/// Reads every record of a CloudTrail record, EventBridge envelope, trail log file,
/// `lookup-events` output or array of records.
pub fn parse_events(v: &Value) -> Result<Vec<EventOutcome>, EventError> {
    parse_any(&Node::root(v)).map_err(EventError::from)
}

fn parse_any(root: &Node<'_>) -> Result<Vec<EventOutcome>, PathError> {
    if root.v.is_array() {
        return root.arr()?.iter().map(parse_record).collect();
    }
    let map = root.obj()?;
    if map.contains_key("Records") {
        return root
            .req("Records")?
            .arr()?
            .iter()
            .map(parse_record)
            .collect();
    }
    if map.contains_key("detail-type") || map.contains_key("detail") {
        let detail_type = root.req("detail-type")?;
        if detail_type.str()? != CLOUDTRAIL_DETAIL_TYPE {
            return Err(detail_type.err(format!(
                "`{}` is not a CloudTrail API call; expected `{CLOUDTRAIL_DETAIL_TYPE}`",
                detail_type.str()?
            )));
        }
        check_event_size(root, "an EventBridge event")?;
        return Ok(vec![parse_record(&root.req("detail")?)?]);
    }
    if map.contains_key("Events") && !map.contains_key("eventName") {
        let mut out = Vec::new();
        for item in root.req("Events")?.arr()? {
            let embedded = item.req("CloudTrailEvent")?;
            // lookup-events prints each record as a JSON string.
            let parsed = match embedded.v {
                Value::String(text) => {
                    // Bounded before it is parsed: the text is at least as long as the record.
                    if text.len() > limits::MAX_EVENT_BYTES {
                        return Err(
                            embedded.err(oversized_event("a CloudTrail record", text.len()))
                        );
                    }
                    serde_json::from_str::<Value>(text).map_err(|e| {
                        embedded.err(format!("the embedded record is not valid JSON: {e}"))
                    })?
                }
                other => other.clone(),
            };
            out.push(parse_record(&Node {
                v: &parsed,
                loc: embedded.loc.clone(),
            })?);
        }
        return Ok(out);
    }
    Ok(vec![parse_record(root)?])
}

/// The families of records this tool diagnoses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// GetObject, HeadObject.
    S3Read,
    /// PutObject and the multipart-upload calls.
    S3Write,
    /// CopyObject, UploadPartCopy: a write of the destination, with a source to read.
    S3Copy,
    /// A KMS cryptographic operation, with its IAM action.
    Kms(&'static str),
}

fn kind(event_source: &str, event_name: &str) -> Option<Kind> {
    // China's records may name the service with its own DNS suffix.
    let service = if is_service_name(event_source, "s3") {
        "s3"
    } else if is_service_name(event_source, "kms") {
        "kms"
    } else {
        return None;
    };
    match (service, event_name) {
        ("s3", "GetObject" | "HeadObject") => Some(Kind::S3Read),
        (
            "s3",
            "PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload",
        ) => Some(Kind::S3Write),
        ("s3", "CopyObject" | "UploadPartCopy") => Some(Kind::S3Copy),
        ("kms", "Decrypt") => Some(Kind::Kms("kms:Decrypt")),
        ("kms", "Encrypt") => Some(Kind::Kms("kms:Encrypt")),
        ("kms", "GenerateDataKey") => Some(Kind::Kms("kms:GenerateDataKey")),
        ("kms", "GenerateDataKeyWithoutPlaintext") => {
            Some(Kind::Kms("kms:GenerateDataKeyWithoutPlaintext"))
        }
        ("kms", "GenerateDataKeyPair") => Some(Kind::Kms("kms:GenerateDataKeyPair")),
        ("kms", "GenerateDataKeyPairWithoutPlaintext") => {
            Some(Kind::Kms("kms:GenerateDataKeyPairWithoutPlaintext"))
        }
        // ReEncrypt needs ReEncryptFrom on the source key and ReEncryptTo on the destination;
        // the record does not say which was refused, so the source side is diagnosed.
        ("kms", "ReEncrypt") => Some(Kind::Kms("kms:ReEncryptFrom")),
        _ => None,
    }
}

/// `Some(key_state_error)` for authorization failures, `None` for other errors. S3 reports
/// the KMS hop's errors with a `KMS.` prefix.
fn authorization_failure(error_code: &str) -> Option<bool> {
    match error_code.strip_prefix("KMS.").unwrap_or(error_code) {
        "AccessDenied" | "AccessDeniedException" | "Forbidden" => Some(false),
        "DisabledException" | "KMSInvalidStateException" => Some(true),
        _ => None,
    }
}

/// Refuses an event over [`limits::MAX_EVENT_BYTES`].
pub(crate) fn check_event_size(node: &Node<'_>, what: &str) -> Result<(), PathError> {
    let size = limits::event_size(node.v);
    if size > limits::MAX_EVENT_BYTES {
        return Err(node.err(oversized_event(what, size)));
    }
    Ok(())
}

fn oversized_event(what: &str, size: usize) -> String {
    format!(
        "{what} of at least {} bytes, over the {} bytes (256 KB) of the largest event EventBridge accepts (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html): AWS cannot have delivered it",
        thousands(size),
        thousands(limits::MAX_EVENT_BYTES)
    )
}

fn parse_record(node: &Node<'_>) -> Result<EventOutcome, PathError> {
    node.obj()?;
    check_event_size(node, "a CloudTrail record")?;
    let event_name = node.req_str("eventName")?;
    let event_source = node.req_str("eventSource")?;
    let event_id = node.opt_str("eventID")?;
    if crate::impact::is_change_event(&event_source, &event_name) {
        if let Some(error_code) = node.opt_str("errorCode")? {
            return Ok(EventOutcome::Skipped {
                event_id,
                reason: SkipReason::ChangeFailed {
                    event_name,
                    error_code,
                },
            });
        }
        return Ok(EventOutcome::Change(Box::new(crate::impact::read_change(
            node,
        )?)));
    }
    let Some(error_code) = node.opt_str("errorCode")? else {
        return Ok(EventOutcome::Skipped {
            event_id,
            reason: SkipReason::Succeeded,
        });
    };
    let Some(key_state_error) = authorization_failure(&error_code) else {
        return Ok(EventOutcome::Skipped {
            event_id,
            reason: SkipReason::NotAuthorizationError { error_code },
        });
    };
    let Some(op) = kind(&event_source, &event_name) else {
        return Ok(EventOutcome::Skipped {
            event_id,
            reason: SkipReason::UnsupportedEvent {
                event_source,
                event_name,
            },
        });
    };
    let meta = EventMeta {
        event_id,
        event_time: node.opt_str("eventTime")?,
        event_name,
        event_source,
        aws_region: node.opt_str("awsRegion")?,
        recipient_account: node.opt_str("recipientAccountId")?,
        error_code: Some(error_code),
        error_message: node.opt_str("errorMessage")?,
        shared_event_id: node.opt_str("sharedEventID")?,
        vpc_endpoint_id: node.opt_str("vpcEndpointId")?,
        source_ip_address: node.opt_str("sourceIPAddress")?,
        user_agent: node.opt_str("userAgent")?,
    };
    let identity = Identity::parse(&node.req("userIdentity")?, meta.aws_region.as_deref())?;
    let resources = Resources::parse(node)?;
    let params = node.get("requestParameters")?;
    let partition = identity.partition(meta.aws_region.as_deref());
    let mut request = Request {
        partition,
        operation: Operation::GetObject,
        event: None,
        key_state_error,
        principal: identity.principal.clone(),
        principal_type: identity.principal_type,
        principal_account: identity.account.clone(),
        principal_id: identity.principal_id.clone(),
        role_arn: identity.role_arn.clone(),
        role_arn_from_session: identity.role_arn_from_session,
        invoked_by: identity.invoked_by.clone(),
        action: String::new(),
        resource: None,
        bucket: None,
        object_key: None,
        version_id: None,
        copy_source: None,
        access_point: None,
        kms_key_arn: None,
        kms_key_ref: None,
        resource_account: None,
        via_s3: false,
        bucket_key: false,
        encryption_context: BTreeMap::new(),
        context: BTreeMap::new(),
        sse: None,
        sse_bucket_key: None,
        secure_transport: None,
        denial: meta.error_message.as_deref().and_then(AwsDenial::parse),
        vpc_endpoint: match &meta.vpc_endpoint_id {
            Some(id) => Some(crate::request::VpcEndpointRef {
                id: id.clone(),
                account: node
                    .opt_str("vpcEndpointAccountId")?
                    .filter(|a| is_account_id(a)),
            }),
            None => None,
        },
        assumptions: Vec::new(),
    };
    match op {
        Kind::S3Read | Kind::S3Write | Kind::S3Copy => {
            fill_s3(
                &mut request,
                op,
                &meta.event_name,
                node,
                params.as_ref(),
                &resources,
                partition,
            )?;
        }
        Kind::Kms(action) => {
            request.action = action.to_owned();
            fill_kms(&mut request, &meta, params.as_ref(), &resources)?;
            request.operation = if request.via_s3 && request.bucket.is_some() {
                Operation::KmsViaS3 {
                    action: action.to_owned(),
                }
            } else {
                Operation::Kms {
                    action: action.to_owned(),
                }
            };
        }
    }
    if request.resource_account.is_none() {
        request.resource_account =
            owner_from_recipient(&meta, request.principal_account.as_deref());
        if let Some(owner) = &request.resource_account {
            request.assumptions.push(format!(
                "the resource owner is taken to be {owner}, the account that received this copy of the record (CloudTrail delivers cross-account records only to the caller and the resource owner)"
            ));
        }
    }
    build_context(&mut request, &meta, &identity, node)?;
    request.event = Some(meta);
    Ok(EventOutcome::Denied(Box::new(request)))
}

/// A record delivered to an account other than the caller's was delivered to the resource
/// owner.
fn owner_from_recipient(meta: &EventMeta, principal_account: Option<&str>) -> Option<String> {
    let recipient = meta.recipient_account.as_deref()?;
    match principal_account {
        Some(caller) if caller != recipient && is_account_id(recipient) => {
            Some(recipient.to_owned())
        }
        _ => None,
    }
}

/// The caller as `userIdentity` describes it.
#[derive(Debug, Clone)]
struct Identity {
    principal: Principal,
    principal_type: PrincipalType,
    account: Option<String>,
    principal_id: Option<String>,
    role_arn: Option<String>,
    role_arn_from_session: bool,
    invoked_by: Option<String>,
    user_name: Option<String>,
    /// `sessionContext.attributes.mfaAuthenticated`, for temporary credentials.
    mfa: Option<String>,
    /// `sessionContext.attributes.creationDate`.
    token_issue_time: Option<String>,
}

impl Identity {
    fn parse(node: &Node<'_>, region: Option<&str>) -> Result<Identity, PathError> {
        node.obj()?;
        let kind = node.opt_str("type")?;
        let arn = node.opt_str("arn")?.filter(|a| !a.is_empty());
        let account = node.opt_str("accountId")?.filter(|a| !a.is_empty());
        let principal_id = node.opt_str("principalId")?.filter(|p| !p.is_empty());
        let invoked_by = node.opt_str("invokedBy")?;
        let user_name = node.opt_str("userName")?;
        let mut issuer_arn = None;
        let mut mfa = None;
        let mut token_issue_time = None;
        if let Some(session) = node.get("sessionContext")? {
            if let Some(issuer) = session.get("sessionIssuer")? {
                issuer_arn = issuer.opt_str("arn")?;
            }
            if let Some(attributes) = session.get("attributes")? {
                mfa = match attributes.get("mfaAuthenticated")? {
                    None => None,
                    Some(n) => Some(match n.v {
                        Value::Bool(b) => b.to_string(),
                        _ => n.str()?.to_owned(),
                    }),
                };
                token_issue_time = attributes.opt_str("creationDate")?;
            }
        }

        // S3 records unsigned requests as an `AWSAccount` whose account id is `anonymous`.
        let anonymous_account = account.as_deref() == Some("anonymous");
        let account = account.filter(|a| a != "anonymous");

        let (principal, principal_type) = match (kind.as_deref(), &arn) {
            _ if anonymous_account => (Principal::Anonymous, PrincipalType::Anonymous),
            (Some("AWSService"), _) => (
                Principal::Service(
                    invoked_by
                        .clone()
                        .unwrap_or_else(|| "unknown service".to_owned()),
                ),
                PrincipalType::AwsService,
            ),
            (Some("Root"), None) => match &account {
                Some(acct) => (
                    Principal::Arn(arn::account_root(
                        Partition::of_region(region.unwrap_or_default()),
                        acct,
                    )),
                    PrincipalType::Account,
                ),
                None => (Principal::Unknown, PrincipalType::Account),
            },
            (_, Some(a)) => (Principal::Arn(a.clone()), PrincipalType::of_arn(a)),
            // A resource owner's copy: the caller is named only by its unique id.
            (Some("AWSAccount"), None) => (
                Principal::Unknown,
                principal_id
                    .as_deref()
                    .map_or(PrincipalType::Unknown, PrincipalType::of_unique_id),
            ),
            // S3 and KMS write `Unknown` with no identity for unsigned requests; a record
            // with no `type` at all is not assumed anonymous.
            (Some("Unknown"), None) if principal_id.is_none() && account.is_none() => {
                (Principal::Anonymous, PrincipalType::Anonymous)
            }
            (Some("AssumedRole"), None) => (Principal::Unknown, PrincipalType::AssumedRole),
            (Some("IAMUser"), None) => (Principal::Unknown, PrincipalType::User),
            (Some("FederatedUser"), None) => (Principal::Unknown, PrincipalType::FederatedUser),
            (_, None) => (Principal::Unknown, PrincipalType::Unknown),
        };

        let account = account.or_else(|| {
            principal
                .arn()
                .and_then(Arn::parse)
                .map(|a| a.account.to_owned())
                .filter(|a| is_account_id(a))
        });

        let (role_arn, role_arn_from_session) = match (&principal, principal_type) {
            _ if issuer_arn.is_some() => (issuer_arn, false),
            (Principal::Arn(a), PrincipalType::AssumedRole) => match arn::role_of_session(a) {
                Some(role) => (Some(role), true),
                // A role ARN (type `Role`, or an ad hoc request) is its own role.
                None => (Some(a.clone()), false),
            },
            _ => (None, false),
        };

        Ok(Identity {
            principal,
            principal_type,
            account,
            principal_id,
            role_arn,
            role_arn_from_session,
            invoked_by,
            user_name,
            mfa,
            token_issue_time,
        })
    }

    /// The partition for ARNs the record does not carry: the caller's, else the Region's.
    fn partition(&self, region: Option<&str>) -> Partition {
        self.principal
            .arn()
            .or(self.role_arn.as_deref())
            .and_then(Partition::of_arn)
            .unwrap_or_else(|| Partition::of_region(region.unwrap_or_default()))
    }
}

/// One `resources[]` entry.
#[derive(Debug, Default)]
struct ResourceEntry {
    kind: Option<String>,
    arn: Option<String>,
    account: Option<String>,
}

/// `resources[]`: ARNs and owners by type (`AWS::S3::Object`, `AWS::S3::Bucket`,
/// `AWS::KMS::Key`).
#[derive(Debug, Default)]
struct Resources {
    entries: Vec<ResourceEntry>,
}

impl Resources {
    fn parse(record: &Node<'_>) -> Result<Resources, PathError> {
        let Some(list) = record.get("resources")? else {
            return Ok(Resources::default());
        };
        let mut entries = Vec::new();
        for item in list.arr()? {
            entries.push(ResourceEntry {
                kind: item.opt_str("type")?,
                arn: item.opt_str("ARN")?,
                account: item.opt_str("accountId")?,
            });
        }
        Ok(Resources { entries })
    }

    fn first(&self, kind: &str) -> Option<&ResourceEntry> {
        self.entries
            .iter()
            .find(|e| e.kind.as_deref() == Some(kind))
    }

    /// The ARN of the first entry of `kind`.
    fn arn(&self, kind: &str) -> Option<&str> {
        self.first(kind).and_then(|e| e.arn.as_deref())
    }

    /// The owner recorded for the entry of `kind` whose ARN is `arn`. Matched by ARN because
    /// a CopyObject record lists both buckets, each with its own owner.
    fn account_of(&self, kind: &str, arn: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.kind.as_deref() == Some(kind) && e.arn.as_deref() == Some(arn))
            .and_then(|e| e.account.as_deref())
    }

    /// The owner of the bucket `bucket` (from its bucket or object entry).
    fn bucket_owner(&self, partition: Partition, bucket: &str, key: Option<&str>) -> Option<&str> {
        let bucket = BucketRef::new(partition, bucket);
        self.account_of("AWS::S3::Bucket", &bucket.arn())
            .or_else(|| {
                let object = bucket.object(key?);
                self.account_of("AWS::S3::Object", &object.arn())
            })
    }
}

fn fill_s3(
    request: &mut Request,
    op: Kind,
    event_name: &str,
    record: &Node<'_>,
    params: Option<&Node<'_>>,
    resources: &Resources,
    partition: Partition,
) -> Result<(), PathError> {
    let param = |key: &str| -> Result<Option<String>, PathError> {
        match params {
            Some(p) => p.opt_str(key),
            None => Ok(None),
        }
    };
    let from_object_arn = resources.arn("AWS::S3::Object").and_then(arn::s3_arn);
    // A request through an access point: the record lists the access point ARN in
    // `resources` (`AWS::S3::AccessPoint`), and `bucketName` may be the access point's ARN or
    // alias rather than a bucket (docs/design.md, "Access points").
    let named = param("bucketName")?;
    let mut access_point = resources
        .arn("AWS::S3::AccessPoint")
        .and_then(AccessPointRef::parse)
        .map(|(r, _)| AccessPointUse::Arn(r));
    let mut bucket_named = None;
    let mut key_in_arn = None;
    if let Some(text) = named {
        match AccessPointRef::parse(&text) {
            Some((r, key)) => {
                key_in_arn = key.map(str::to_owned);
                access_point.get_or_insert(AccessPointUse::Arn(r));
            }
            None if arn::is_access_point_alias(&text) => {
                access_point.get_or_insert(AccessPointUse::Alias(text));
            }
            // Another ARN (a Multi-Region Access Point, an Outposts access point) is no bucket
            // name: the bucket can only come from `resources`.
            None if Arn::parse(&text).is_some() => {
                request.assumptions.push(format!(
                    "the request names `{text}`, which is neither a bucket nor an access point of a Region (Multi-Region Access Points are not modelled); the bucket is taken from the record's `resources`"
                ));
            }
            None => bucket_named = Some(text),
        }
    }
    if access_point.is_none() {
        if let Some(host) = param("Host")? {
            if let Some((name, account, region)) = arn::access_point_host(&host) {
                access_point = Some(AccessPointUse::Arn(AccessPointRef {
                    partition,
                    region: region.to_owned(),
                    account: account.to_owned(),
                    name: name.to_owned(),
                }));
            }
        }
    }
    let bucket = bucket_named
        .or_else(|| {
            resources
                .arn("AWS::S3::Bucket")
                .and_then(arn::s3_arn)
                .map(|(b, _)| b.to_owned())
        })
        .or_else(|| from_object_arn.map(|(b, _)| b.to_owned()));
    if bucket.is_none() && access_point.is_none() {
        return Err(record.loc.key("requestParameters").key("bucketName").err(
            "missing required field: the record names the bucket neither here nor in `resources`",
        ));
    }
    let key = param("key")?
        .or(key_in_arn)
        .or_else(|| from_object_arn.and_then(|(_, k)| k).map(str::to_owned))
        .or_else(|| {
            resources
                .arn("AWS::S3::Object")
                .and_then(AccessPointRef::parse)
                .and_then(|(_, k)| k.map(str::to_owned))
        });
    let Some(key) = key else {
        return Err(record.loc.key("requestParameters").key("key").err(
            "missing required field: the record names the object neither here nor in `resources`",
        ));
    };
    let version_id = param("versionId")?;
    request.action = match (op, &version_id) {
        (Kind::S3Read, Some(_)) => "s3:GetObjectVersion",
        (Kind::S3Read, None) => "s3:GetObject",
        _ => "s3:PutObject",
    }
    .to_owned();
    if op == Kind::S3Copy {
        if let Some(source) = param("x-amz-copy-source")? {
            request.copy_source = parse_copy_source(&source).map(|mut src| {
                src.account = resources
                    .bucket_owner(partition, &src.bucket, Some(&src.key))
                    .map(str::to_owned);
                src
            });
            if request.copy_source.is_none() {
                request.assumptions.push(format!(
                    "the copy source `{source}` is not in the `bucket/key` form; the read of the source is not diagnosed"
                ));
            }
        }
    }
    request.operation = match (event_name, &request.copy_source) {
        ("HeadObject", _) => Operation::HeadObject,
        ("GetObject", _) => Operation::GetObject,
        ("CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload", _) => {
            Operation::MultipartUpload
        }
        ("CopyObject" | "UploadPartCopy", Some(src)) => Operation::CopyObject {
            source_bucket: src.bucket.clone(),
            source_key: src.key.clone(),
            multipart: event_name == "UploadPartCopy",
        },
        // A part copied from an unreadable source is diagnosed as the write it also is.
        ("UploadPartCopy", None) => Operation::MultipartUpload,
        _ => Operation::PutObject,
    };
    request.sse = param("x-amz-server-side-encryption")?;
    request.sse_bucket_key = param("x-amz-server-side-encryption-bucket-key-enabled")?
        .map(|v| v.eq_ignore_ascii_case("true"));
    if let Some(key_ref) = param("x-amz-server-side-encryption-aws-kms-key-id")? {
        if arn::kms_key_arn(&key_ref).is_some() {
            request.kms_key_arn = Some(key_ref.clone());
        }
        request.kms_key_ref = Some(key_ref);
    }
    match (&bucket, &access_point) {
        (Some(bucket), _) => {
            request.resource = Some(BucketRef::new(partition, bucket).object(&key).arn());
            request.resource_account = resources
                .bucket_owner(partition, bucket, Some(&key))
                .map(str::to_owned);
        }
        (None, Some(AccessPointUse::Arn(ap))) => {
            request.resource = Some(ap.object_arn(Some(&key)));
        }
        (None, _) => {}
    }
    request.bucket = bucket;
    request.access_point = access_point;
    request.object_key = Some(key);
    request.version_id = version_id;
    Ok(())
}

/// `x-amz-copy-source`: `bucket/key` or `/bucket/key`, URL-encoded, optionally with
/// `?versionId=`.
fn parse_copy_source(text: &str) -> Option<CopySource> {
    let text = text.strip_prefix('/').unwrap_or(text);
    let (path, version_id) = match text.split_once("?versionId=") {
        Some((p, v)) => (p, Some(v.to_owned())),
        None => (text, None),
    };
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    let (bucket, key) = decoded.split_once('/')?;
    if bucket.is_empty() || key.is_empty() || bucket.starts_with("arn:") {
        return None;
    }
    Some(CopySource {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id,
        account: None,
    })
}

fn fill_kms(
    request: &mut Request,
    meta: &EventMeta,
    params: Option<&Node<'_>>,
    resources: &Resources,
) -> Result<(), PathError> {
    let key_id = match params {
        Some(p) => p.opt_str("keyId")?,
        None => None,
    };
    let from_resources = resources.arn("AWS::KMS::Key").map(str::to_owned);
    request.kms_key_arn = from_resources.clone().or_else(|| {
        key_id
            .as_deref()
            .filter(|k| arn::kms_key_arn(k).is_some())
            .map(str::to_owned)
    });
    request.kms_key_ref = key_id.or_else(|| from_resources.clone());
    request.resource = request.kms_key_arn.clone();
    request.resource_account = from_resources
        .as_deref()
        .and_then(|key| resources.account_of("AWS::KMS::Key", key))
        .map(str::to_owned)
        .or_else(|| {
            request
                .kms_key_arn
                .as_deref()
                .and_then(arn::kms_key_arn)
                .map(|(_, account, _)| account.to_owned())
        });

    if let Some(context) = params
        .map(|p| p.get("encryptionContext"))
        .transpose()?
        .flatten()
    {
        for (name, value) in context.members()? {
            let text = match value.v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            request.encryption_context.insert(name.to_owned(), text);
        }
    }
    let s3_arn = request.encryption_context.get("aws:s3:arn").cloned();
    let by_s3 = |v: &Option<String>| v.as_deref().is_some_and(|t| is_service_name(t, "s3"));
    request.via_s3 = by_s3(&request.invoked_by)
        || by_s3(&meta.source_ip_address)
        || by_s3(&meta.user_agent)
        || s3_arn.is_some();
    if let Some(s3_arn) = s3_arn {
        match arn::s3_arn(&s3_arn) {
            Some((bucket, key)) => {
                request.bucket = Some(bucket.to_owned());
                request.object_key = key.map(str::to_owned);
                // With a Bucket Key, S3 puts the bucket ARN in the context, not the object's.
                request.bucket_key = key.is_none();
            }
            None => request.assumptions.push(format!(
                "the `aws:s3:arn` encryption context `{s3_arn}` is not a bucket or object ARN"
            )),
        }
    }
    if request.kms_key_arn.is_none() {
        request.assumptions.push(
            "the record names no key (S3 passes a ciphertext); the key is the one that encrypted the object".to_owned(),
        );
    }
    Ok(())
}

fn single(value: impl Into<String>) -> ContextValue {
    ContextValue::Single(value.into())
}

fn build_context(
    request: &mut Request,
    meta: &EventMeta,
    identity: &Identity,
    record: &Node<'_>,
) -> Result<(), PathError> {
    let mut ctx = BTreeMap::new();
    add_principal_keys(&mut ctx, request, identity);

    let ip = meta
        .source_ip_address
        .as_deref()
        .filter(|text| text.parse::<IpAddr>().is_ok());
    match (&meta.vpc_endpoint_id, ip) {
        // Through a VPC endpoint, policies see the private address as aws:VpcSourceIp and
        // aws:SourceIp is absent.
        (Some(vpce), ip) => {
            ctx.insert("aws:SourceVpce".to_owned(), single(vpce));
            if let Some(ip) = ip {
                ctx.insert("aws:VpcSourceIp".to_owned(), single(ip));
            }
        }
        (None, Some(ip)) => {
            ctx.insert("aws:SourceIp".to_owned(), single(ip));
        }
        (None, None) => {}
    }

    let tls = record.get("tlsDetails")?;
    request.secure_transport = secure_transport(request, record, tls.is_some())?;
    if let Some(secure) = request.secure_transport {
        ctx.insert(
            "aws:SecureTransport".to_owned(),
            single(if secure { "true" } else { "false" }),
        );
    }

    if let Some(time) = &meta.event_time {
        let parsed = chrono::DateTime::parse_from_rfc3339(time).map_err(|_| {
            record.loc.key("eventTime").err(format!(
                "`{time}` is not an ISO 8601 time such as `2025-06-02T09:14:03Z`"
            ))
        })?;
        ctx.insert("aws:CurrentTime".to_owned(), single(time));
        ctx.insert(
            "aws:EpochTime".to_owned(),
            single(parsed.timestamp().to_string()),
        );
    }
    if let Some(region) = &meta.aws_region {
        ctx.insert("aws:RequestedRegion".to_owned(), single(region));
    }
    if let Some(agent) = &meta.user_agent {
        ctx.insert("aws:UserAgent".to_owned(), single(agent));
    }

    if request.is_s3() {
        add_s3_keys(&mut ctx, request, record, tls.as_ref())?;
    } else {
        add_kms_keys(&mut ctx, request, meta, request.partition);
    }
    request.context = ctx;
    Ok(())
}

/// The value of `aws:SecureTransport`, from what the record shows (docs/design.md, "Evidence
/// from the record"):
/// * KMS records: true — KMS endpoints accept HTTPS only;
/// * `tlsDetails`, or `additionalEventData.CipherSuite`: true — the record shows TLS;
/// * neither: unknown (`None`). CloudTrail lists `tlsDetails` as optional ("CloudTrail record
///   contents"), so its absence does not prove plain HTTP; policies testing the key see it
///   absent, and the diagnosis says when the verdict depends on it.
fn secure_transport(
    request: &mut Request,
    record: &Node<'_>,
    has_tls_details: bool,
) -> Result<Option<bool>, PathError> {
    if request.is_kms() {
        return Ok(Some(true));
    }
    let cipher = match record.get("additionalEventData")? {
        Some(extra) if extra.v.is_object() => extra.get("CipherSuite")?.is_some(),
        _ => false,
    };
    if has_tls_details || cipher {
        return Ok(Some(true));
    }
    request.assumptions.push(
        "the record does not show whether the request came over TLS (no `tlsDetails` or cipher suite): aws:SecureTransport is left unknown".to_owned(),
    );
    Ok(None)
}

fn add_principal_keys(
    ctx: &mut BTreeMap<String, ContextValue>,
    request: &Request,
    identity: &Identity,
) {
    let anonymous = request.principal == Principal::Anonymous;
    if let Some(arn) = request.principal_arn() {
        ctx.insert("aws:PrincipalArn".to_owned(), single(arn));
    }
    match (&request.principal_account, anonymous) {
        (_, true) => {
            ctx.insert("aws:PrincipalAccount".to_owned(), single("anonymous"));
        }
        (Some(account), false) => {
            ctx.insert("aws:PrincipalAccount".to_owned(), single(account));
        }
        (None, false) => {}
    }
    match (&request.principal_id, anonymous) {
        (_, true) => {
            ctx.insert("aws:userid".to_owned(), single("anonymous"));
        }
        (Some(id), false) => {
            ctx.insert("aws:userid".to_owned(), single(id));
        }
        (None, false) => {}
    }
    if let Some(kind) = request.principal_type.context_value() {
        ctx.insert("aws:PrincipalType".to_owned(), single(kind));
    }
    if request.principal_type == PrincipalType::User {
        if let Some(name) = &identity.user_name {
            ctx.insert("aws:username".to_owned(), single(name));
        }
    }
    match &request.principal {
        Principal::Service(name) => {
            ctx.insert("aws:PrincipalIsAWSService".to_owned(), single("true"));
            ctx.insert("aws:PrincipalServiceName".to_owned(), single(name));
        }
        Principal::Arn(_) | Principal::Unknown => {
            ctx.insert("aws:PrincipalIsAWSService".to_owned(), single("false"));
        }
        Principal::Anonymous => {}
    }
    if let Some(mfa) = &identity.mfa {
        ctx.insert("aws:MultiFactorAuthPresent".to_owned(), single(mfa));
    }
    if let Some(time) = &identity.token_issue_time {
        ctx.insert("aws:TokenIssueTime".to_owned(), single(time));
    }
    if let Some(account) = &request.resource_account {
        ctx.insert("aws:ResourceAccount".to_owned(), single(account));
    }
}

fn add_s3_keys(
    ctx: &mut BTreeMap<String, ContextValue>,
    request: &Request,
    record: &Node<'_>,
    tls: Option<&Node<'_>>,
) -> Result<(), PathError> {
    ctx.insert("aws:ViaAWSService".to_owned(), single("false"));
    if let Some(account) = &request.resource_account {
        ctx.insert("s3:ResourceAccount".to_owned(), single(account));
    }
    if let Some(version) = &request.version_id {
        ctx.insert("s3:VersionId".to_owned(), single(version));
    }
    if let Some(params) = record.get("requestParameters")? {
        for header in [
            "x-amz-server-side-encryption",
            "x-amz-server-side-encryption-aws-kms-key-id",
            "x-amz-acl",
        ] {
            if let Some(value) = params.opt_str(header)? {
                ctx.insert(format!("s3:{header}"), single(value));
            }
        }
    }
    if let Some(version) = tls.map(|t| t.opt_str("tlsVersion")).transpose()?.flatten() {
        // `TLSv1.3` in the record; policies compare `s3:TlsVersion` numerically (`1.2`).
        let number = version.strip_prefix("TLSv").unwrap_or(&version);
        ctx.insert("s3:TlsVersion".to_owned(), single(number));
    }
    if let Some(extra) = record.get("additionalEventData")? {
        if extra.v.is_object() {
            match extra.opt_str("SignatureVersion")?.as_deref() {
                Some("SigV4") => {
                    ctx.insert("s3:signatureversion".to_owned(), single("AWS4-HMAC-SHA256"));
                }
                Some("SigV2") => {
                    ctx.insert("s3:signatureversion".to_owned(), single("AWS"));
                }
                _ => {}
            }
            match extra.opt_str("AuthenticationMethod")?.as_deref() {
                Some("AuthHeader") => {
                    ctx.insert("s3:authType".to_owned(), single("REST-HEADER"));
                }
                Some("QueryString") => {
                    ctx.insert("s3:authType".to_owned(), single("REST-QUERY-STRING"));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn add_kms_keys(
    ctx: &mut BTreeMap<String, ContextValue>,
    request: &Request,
    meta: &EventMeta,
    partition: Partition,
) {
    let via = if request.via_s3 { "true" } else { "false" };
    ctx.insert("aws:ViaAWSService".to_owned(), single(via));
    if let Some(account) = &request.principal_account {
        ctx.insert("kms:CallerAccount".to_owned(), single(account));
    }
    if request.via_s3 {
        if let Some(region) = &meta.aws_region {
            ctx.insert(
                "kms:ViaService".to_owned(),
                single(partition.service_endpoint("s3", region)),
            );
        }
    }
    for (name, value) in &request.encryption_context {
        ctx.insert(format!("kms:EncryptionContext:{name}"), single(value));
    }
    if !request.encryption_context.is_empty() {
        ctx.insert(
            "kms:EncryptionContextKeys".to_owned(),
            ContextValue::Multi(request.encryption_context.keys().cloned().collect()),
        );
    }
}

/// A request given on the command line (`--principal ARN --action s3:GetObject --resource
/// <object ARN>`) instead of an event.
///
/// `principal` is a principal ARN (role session, role, user, root, federated user), a bare
/// account id (its root) or `anonymous`; `resource` an S3 object ARN of any partition, an
/// `s3://bucket/key` URL, or a KMS key or alias ARN. Errors name the argument as their path.
pub fn adhoc_request(principal: &str, action: &str, resource: &str) -> Result<Request, EventError> {
    adhoc(principal, action, resource).map_err(EventError::from)
}

fn adhoc(principal_text: &str, action: &str, resource: &str) -> Result<Request, PathError> {
    let mut assumptions = vec![
        "no event was given: the time, source IP, VPC endpoint, MFA and session-tag keys are absent".to_owned(),
    ];
    let Some((service, name)) = action.split_once(':') else {
        return Err(PathError::new(
            "action",
            format!("`{action}` is not an IAM action such as `s3:GetObject`"),
        ));
    };
    let well_formed =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !well_formed(service) || !well_formed(name) {
        return Err(PathError::new(
            "action",
            format!("`{action}` is not an IAM action such as `s3:GetObject`"),
        ));
    }
    let service = service.to_ascii_lowercase();
    // The S3 operations the diagnosis models, with the IAM action each is authorized as.
    let (operation, iam_action) = match (service.as_str(), name.to_ascii_lowercase().as_str()) {
        ("s3", "getobject") => (Operation::GetObject, "s3:GetObject".to_owned()),
        ("s3", "getobjectversion") => (Operation::GetObject, "s3:GetObjectVersion".to_owned()),
        // HeadObject is authorized as s3:GetObject and makes no KMS request.
        ("s3", "headobject") => (Operation::HeadObject, "s3:GetObject".to_owned()),
        ("s3", "putobject") => (Operation::PutObject, "s3:PutObject".to_owned()),
        ("s3", _) => {
            return Err(PathError::new(
                "action",
                format!("`{action}`: the diagnosis covers s3:GetObject, s3:GetObjectVersion, s3:HeadObject, s3:PutObject and kms: actions"),
            ))
        }
        ("kms", _) => (
            Operation::Kms {
                action: action.to_owned(),
            },
            action.to_owned(),
        ),
        (other, _) => {
            return Err(PathError::new(
                "action",
                format!(
                    "`{action}` is a `{other}` action; only `s3` and `kms` actions can be diagnosed"
                ),
            ))
        }
    };

    // The partition: the resource's when it is an ARN, else the principal's.
    let principal_partition = if principal_text.starts_with("arn:") {
        match Partition::of_arn(principal_text) {
            Some(p) => Some(p),
            None => {
                return Err(PathError::new(
                    "principal",
                    format!("`{principal_text}` is not in a partition the auditor knows (aws, aws-cn, aws-us-gov)"),
                ))
            }
        }
    } else {
        None
    };
    let resource_partition = if resource.starts_with("arn:") {
        match Partition::of_arn(resource) {
            Some(p) => Some(p),
            None => {
                return Err(PathError::new(
                    "resource",
                    format!("`{resource}` is not an ARN in a partition the auditor knows (aws, aws-cn, aws-us-gov)"),
                ))
            }
        }
    } else {
        None
    };
    if let (Some(p), Some(r)) = (principal_partition, resource_partition) {
        if p != r {
            return Err(PathError::new(
                "resource",
                format!("`{resource}` is in partition `{r}` but the principal is in `{p}`: requests never cross partitions"),
            ));
        }
    }
    let partition = resource_partition
        .or(principal_partition)
        .unwrap_or_default();

    let (principal, principal_type) = if principal_text == "anonymous" {
        (Principal::Anonymous, PrincipalType::Anonymous)
    } else if is_account_id(principal_text) {
        (
            Principal::Arn(arn::account_root(partition, principal_text)),
            PrincipalType::Account,
        )
    } else {
        let kind = PrincipalType::of_arn(principal_text);
        if kind == PrincipalType::Unknown {
            return Err(PathError::new(
                "principal",
                format!(
                    "`{principal_text}` is not a principal ARN (role session, role, user, root or federated user), an account id or `anonymous`"
                ),
            ));
        }
        (Principal::Arn(principal_text.to_owned()), kind)
    };
    let (role_arn, role_arn_from_session) = match (&principal, principal_type) {
        (Principal::Arn(a), PrincipalType::AssumedRole) => match arn::role_of_session(a) {
            Some(role) => {
                assumptions.push(format!(
                    "the role behind the session is taken to be {role} (a session ARN does not show the role path; the snapshot can)"
                ));
                (Some(role), true)
            }
            None => {
                assumptions.push(format!(
                    "the request is evaluated as made by a session of {a}"
                ));
                (Some(a.clone()), false)
            }
        },
        _ => (None, false),
    };
    let principal_account = principal
        .arn()
        .and_then(Arn::parse)
        .map(|a| a.account.to_owned())
        .filter(|a| is_account_id(a));

    let mut request = Request {
        partition,
        operation,
        event: None,
        key_state_error: false,
        principal,
        principal_type,
        principal_account,
        principal_id: None,
        role_arn,
        role_arn_from_session,
        invoked_by: None,
        action: iam_action,
        resource: None,
        bucket: None,
        object_key: None,
        version_id: None,
        copy_source: None,
        access_point: None,
        kms_key_arn: None,
        kms_key_ref: None,
        resource_account: None,
        via_s3: false,
        bucket_key: false,
        encryption_context: BTreeMap::new(),
        context: BTreeMap::new(),
        sse: None,
        sse_bucket_key: None,
        secure_transport: Some(true),
        denial: None,
        vpc_endpoint: None,
        assumptions,
    };

    let through_access_point = AccessPointRef::parse(resource)
        .filter(|_| service == "s3")
        .and_then(|(ap, key)| Some((ap, key?)));
    if let Some((ap, key)) = through_access_point {
        // An object through an access point: the bucket behind it comes from the snapshot.
        request.resource = Some(ap.object_arn(Some(key)));
        request.object_key = Some(key.to_owned());
        request.access_point = Some(AccessPointUse::Arn(ap));
    } else if service == "s3" {
        let object = match resource.strip_prefix("s3://") {
            Some(rest) => rest
                .split_once('/')
                .filter(|(b, k)| !b.is_empty() && !k.is_empty()),
            None => arn::parse_s3_arn(resource).and_then(|(_, b, k)| Some((b, k?))),
        };
        let Some((bucket, key)) = object.filter(|(_, k)| !k.is_empty()) else {
            return Err(PathError::new(
                "resource",
                format!(
                    "`{resource}` is not an S3 object ARN such as `{}` (or `s3://bucket/key`): {action} acts on an object",
                    BucketRef::new(partition, "bucket").object("key").arn()
                ),
            ));
        };
        request.resource = Some(BucketRef::new(partition, bucket).object(key).arn());
        request.bucket = Some(bucket.to_owned());
        request.object_key = Some(key.to_owned());
    } else {
        let key = Arn::parse(resource).filter(|a| {
            a.service == "kms"
                && is_account_id(a.account)
                && (a.resource.starts_with("key/") || a.resource.starts_with("alias/"))
        });
        let Some(key) = key else {
            return Err(PathError::new(
                "resource",
                format!(
                    "`{resource}` is not a KMS key or alias ARN such as `{}`",
                    arn::key_arn(
                        partition,
                        partition.example_region(),
                        "111122223333",
                        "<key-id>"
                    )
                ),
            ));
        };
        if key.resource.starts_with("key/") {
            request.kms_key_arn = Some(resource.to_owned());
            request.resource = Some(resource.to_owned());
        }
        request.kms_key_ref = Some(resource.to_owned());
        request.resource_account = Some(key.account.to_owned());
        request
            .context
            .insert("aws:RequestedRegion".to_owned(), single(key.region));
    }

    let is_kms = request.is_kms();
    let ctx = &mut request.context;
    if let Some(arn) = request.role_arn.as_deref().or(request.principal.arn()) {
        ctx.insert("aws:PrincipalArn".to_owned(), single(arn));
    }
    match (&request.principal, &request.principal_account) {
        (Principal::Anonymous, _) => {
            ctx.insert("aws:PrincipalAccount".to_owned(), single("anonymous"));
            ctx.insert("aws:userid".to_owned(), single("anonymous"));
        }
        (_, Some(account)) => {
            ctx.insert("aws:PrincipalAccount".to_owned(), single(account));
            ctx.insert("aws:PrincipalIsAWSService".to_owned(), single("false"));
        }
        (_, None) => {}
    }
    if request.principal_type == PrincipalType::Account {
        if let Some(account) = &request.principal_account {
            // Root's aws:userid is its account id.
            ctx.insert("aws:userid".to_owned(), single(account));
        }
    }
    if let Some(kind) = request.principal_type.context_value() {
        ctx.insert("aws:PrincipalType".to_owned(), single(kind));
    }
    ctx.insert("aws:SecureTransport".to_owned(), single("true"));
    ctx.insert("aws:ViaAWSService".to_owned(), single("false"));
    if let Some(account) = &request.resource_account {
        ctx.insert("aws:ResourceAccount".to_owned(), single(account));
    }
    if is_kms {
        if let Some(account) = &request.principal_account {
            ctx.insert("kms:CallerAccount".to_owned(), single(account));
        }
    }
    request.assumptions.push(
        "aws:SecureTransport is taken as true: a request described on the command line is assumed to use HTTPS, as the AWS SDKs and CLI do"
            .to_owned(),
    );
    Ok(request)
}

#[cfg(test)]
mod tests;

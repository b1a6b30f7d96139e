//! The capabilities the collector needs, one small trait each, in the collector's terms.
//!
//! The SDK implementations live in [`crate::aws`]; tests implement them with in-memory fakes.
//! Every read answers in one of three ways:
//!
//! * a value, where "nothing there" is a value too (`Ok(None)`: no bucket policy, no
//!   encryption configuration, no such object);
//! * [`ReadError::Denied`] or [`ReadError::Service`]: AWS answered, but not with the data.
//!   The collector records the gap in the snapshot (`collection_errors`) and goes on;
//! * [`ReadError::Transient`] (throttling, a 5xx) or [`ReadError::Transport`] (no answer at
//!   all: a timeout, a reset connection): the SDK has already retried it (adaptive retry mode,
//!   bounded time). It says nothing about the account, so it is never recorded as a gap: the
//!   record's diagnosis fails, and the handler fails the invocation (Lambda retries it, then
//!   the dead-letter queue) or publishes a "could not diagnose" report.

use std::collections::BTreeMap;
use std::future::Future;

use auditor::notify::Notification;
use auditor::snapshot::AclGrant;
use serde_json::Value;

/// Why a read returned nothing usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// AWS refused the auditor (`AccessDenied` and its relatives, or HTTP 403).
    #[error("{code}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Denied {
        /// The error code.
        code: String,
        /// The error message.
        message: Option<String>,
    },
    /// AWS answered with another error.
    #[error("{code}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Service {
        /// The error code.
        code: String,
        /// The error message.
        message: Option<String>,
    },
    /// AWS asked the auditor to come back later: throttling, or a server-side error (HTTP 5xx),
    /// still there after the SDK's retries.
    #[error("{code} (transient, still failing after retries){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Transient {
        /// The error code (`ThrottlingException`, `SlowDown`, `HTTP503`...).
        code: String,
        /// The error message.
        message: Option<String>,
    },
    /// No answer: connection, timeout, or a response that could not be read.
    #[error("no answer from AWS: {message}")]
    Transport {
        /// What went wrong.
        message: String,
    },
}

impl ReadError {
    /// Whether this is a failure to get an answer (transient or no answer) rather than an
    /// answer: such a read decides nothing and must never become evidence.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            ReadError::Transient { .. } | ReadError::Transport { .. }
        )
    }
}

/// The answer to one read.
pub type Read<T> = Result<T, ReadError>;

/// The bucket's default encryption rule (`GetBucketEncryption`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionRule {
    /// `SSEAlgorithm`.
    pub algorithm: String,
    /// `KMSMasterKeyID`, exactly as configured.
    pub kms_key_id: Option<String>,
    /// `BucketKeyEnabled`.
    pub bucket_key_enabled: bool,
}

/// Block Public Access flags (`GetPublicAccessBlock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublicAccessFlags {
    /// `BlockPublicAcls`.
    pub block_public_acls: bool,
    /// `IgnorePublicAcls`.
    pub ignore_public_acls: bool,
    /// `BlockPublicPolicy`.
    pub block_public_policy: bool,
    /// `RestrictPublicBuckets`.
    pub restrict_public_buckets: bool,
}

/// What `HeadObject` says about encryption.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectHead {
    /// `ServerSideEncryption`.
    pub sse: Option<String>,
    /// `SSEKMSKeyId`.
    pub kms_key_id: Option<String>,
    /// `BucketKeyEnabled`.
    pub bucket_key_enabled: bool,
    /// `VersionId`.
    pub version_id: Option<String>,
}

/// An access control list: `GetBucketAcl` or `GetObjectAcl` output.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Acl {
    /// `Owner.ID`: the canonical user id of the bucket's or object's owner.
    pub owner_id: Option<String>,
    /// `Grants`.
    pub grants: Vec<AclGrant>,
}

/// `DescribeKey`'s `KeyMetadata`, as far as the diagnosis needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// `Arn`.
    pub arn: String,
    /// `KeyId`.
    pub key_id: String,
    /// `KeyManager`: `AWS` or `CUSTOMER`.
    pub key_manager: String,
    /// `KeyState`.
    pub key_state: String,
    /// `MultiRegion`.
    pub multi_region: bool,
}

/// Which IAM identity a read is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IdentityKind {
    /// A role (the issuer of a role session).
    Role,
    /// An IAM user.
    User,
    /// An IAM group (of a user).
    Group,
}

/// `GetRole` / `GetUser` / `GetGroup` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityInfo {
    /// `Arn`, with the path.
    pub arn: String,
    /// `Path`.
    pub path: String,
    /// `RoleId` / `UserId` / `GroupId`.
    pub id: Option<String>,
    /// `PermissionsBoundary.PermissionsBoundaryArn`.
    pub permissions_boundary: Option<String>,
    /// `Tags`.
    pub tags: Vec<(String, String)>,
    /// A role's trust policy, decoded.
    pub trust_policy: Option<String>,
}

/// A managed policy as `ListPolicies` / `GetPolicy` describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersionRef {
    /// `PolicyName`.
    pub name: Option<String>,
    /// `DefaultVersionId`.
    pub default_version: String,
}

/// The attached managed policies of an account with their default versions
/// (`ListPolicies` with `OnlyAttached`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttachedPolicies {
    /// By policy ARN.
    pub by_arn: BTreeMap<String, PolicyVersionRef>,
    /// Whether the listing is complete (the collector asks `GetPolicy` for ARNs it lacks).
    pub complete: bool,
}

/// `DescribeOrganization`, when the account is in one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgInfo {
    /// `Id`.
    pub id: String,
    /// `MasterAccountId`.
    pub management_account: String,
}

/// The two kinds of organization policy that decide authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrgPolicyType {
    /// `SERVICE_CONTROL_POLICY`: limits the principals of the accounts below.
    Scp,
    /// `RESOURCE_CONTROL_POLICY`: limits the resources of the accounts below.
    Rcp,
}

impl OrgPolicyType {
    /// The `Filter` value of `ListPoliciesForTarget`.
    pub fn as_aws(self) -> &'static str {
        match self {
            OrgPolicyType::Scp => "SERVICE_CONTROL_POLICY",
            OrgPolicyType::Rcp => "RESOURCE_CONTROL_POLICY",
        }
    }
}

/// One parent of an account or OU (`ListParents`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgParent {
    /// `Id`: `ou-…` or `r-…`.
    pub id: String,
    /// Whether it is the root (`Type` `ROOT`), where the walk up ends.
    pub is_root: bool,
}

/// S3 bucket and object reads in the bucket owner's account.
pub trait BucketReads: Send + Sync {
    /// `GetBucketLocation`, normalised (`us-east-1` for the empty constraint).
    fn bucket_region(
        &self,
        region: &str,
        bucket: &str,
    ) -> impl Future<Output = Read<String>> + Send;
    /// `GetBucketPolicy`; `None` when the bucket has none.
    fn bucket_policy(
        &self,
        region: &str,
        bucket: &str,
    ) -> impl Future<Output = Read<Option<String>>> + Send;
    /// `GetBucketEncryption`; `None` when there is no configuration.
    fn bucket_encryption(
        &self,
        region: &str,
        bucket: &str,
    ) -> impl Future<Output = Read<Option<EncryptionRule>>> + Send;
    /// `GetBucketOwnershipControls`; `None` when there are none.
    fn ownership_controls(
        &self,
        region: &str,
        bucket: &str,
    ) -> impl Future<Output = Read<Option<String>>> + Send;
    /// `GetPublicAccessBlock` (bucket level); `None` when not configured.
    fn public_access_block(
        &self,
        region: &str,
        bucket: &str,
    ) -> impl Future<Output = Read<Option<PublicAccessFlags>>> + Send;
    /// `HeadObject`; `None` when there is no such object.
    fn head_object(
        &self,
        region: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> impl Future<Output = Read<Option<ObjectHead>>> + Send;
    /// `ListBuckets` (one bucket at most): `Owner.ID`, the account's canonical user id, which
    /// ACL grants name.
    fn canonical_id(&self) -> impl Future<Output = Read<String>> + Send;
    /// `GetBucketAcl`: the bucket owner's canonical id and the bucket's grants.
    fn bucket_acl(&self, region: &str, bucket: &str) -> impl Future<Output = Read<Acl>> + Send;
    /// `GetObjectAcl`: the object owner's canonical id and the object's grants (no content
    /// access needed); `None` when there is no such object.
    fn object_acl(
        &self,
        region: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> impl Future<Output = Read<Option<Acl>>> + Send;
}

/// What `GetAccessPoint` says of an access point, in the collector's terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessPointInfo {
    /// `Bucket`.
    pub bucket: String,
    /// `BucketAccountId`.
    pub bucket_account_id: Option<String>,
    /// `NetworkOrigin`: `Internet` or `VPC`.
    pub network_origin: String,
    /// `VpcConfiguration.VpcId`.
    pub vpc_id: Option<String>,
    /// `PublicAccessBlockConfiguration`.
    pub public_access_block: Option<PublicAccessFlags>,
    /// `Alias`.
    pub alias: Option<String>,
    /// `AccessPointArn`.
    pub arn: Option<String>,
}

/// S3 Control reads of the access points an account owns.
pub trait AccessPointReads: Send + Sync {
    /// `GetAccessPoint`; `None` when there is no such access point.
    fn access_point(
        &self,
        region: &str,
        name: &str,
    ) -> impl Future<Output = Read<Option<AccessPointInfo>>> + Send;
    /// `GetAccessPointPolicy`; `None` when the access point has no policy.
    fn access_point_policy(
        &self,
        region: &str,
        name: &str,
    ) -> impl Future<Output = Read<Option<String>>> + Send;
}

/// KMS reads in the key owner's account.
pub trait KeyReads: Send + Sync {
    /// `DescribeKey` by key ARN, alias name or alias ARN; `None` when not found.
    fn describe_key(
        &self,
        region: &str,
        key: &str,
    ) -> impl Future<Output = Read<Option<KeyInfo>>> + Send;
    /// `GetKeyPolicy` (policy name `default`).
    fn key_policy(&self, region: &str, key: &str) -> impl Future<Output = Read<String>> + Send;
    /// `ListGrants`, each entry in the shape the API returns it (PascalCase JSON).
    fn grants(&self, region: &str, key: &str) -> impl Future<Output = Read<Vec<Value>>> + Send;
    /// `ListAliases` for the key: alias names.
    fn aliases(&self, region: &str, key: &str) -> impl Future<Output = Read<Vec<String>>> + Send;
}

/// IAM reads in the caller's account. Documents are returned decoded (IAM URL-encodes them).
pub trait IdentityReads: Send + Sync {
    /// `GetRole` / `GetUser` / `GetGroup`; `None` when the identity does not exist.
    fn identity(
        &self,
        kind: IdentityKind,
        name: &str,
    ) -> impl Future<Output = Read<Option<IdentityInfo>>> + Send;
    /// `List{Role,User,Group}Policies`: inline policy names.
    fn inline_policy_names(
        &self,
        kind: IdentityKind,
        name: &str,
    ) -> impl Future<Output = Read<Vec<String>>> + Send;
    /// `Get{Role,User,Group}Policy`: one inline policy document.
    fn inline_policy(
        &self,
        kind: IdentityKind,
        name: &str,
        policy: &str,
    ) -> impl Future<Output = Read<String>> + Send;
    /// `ListAttached{Role,User,Group}Policies`: managed policy ARNs.
    fn attached_policies(
        &self,
        kind: IdentityKind,
        name: &str,
    ) -> impl Future<Output = Read<Vec<String>>> + Send;
    /// `ListGroupsForUser`: group names.
    fn groups_for_user(&self, user: &str) -> impl Future<Output = Read<Vec<String>>> + Send;
    /// `ListPolicies` (`OnlyAttached`): every managed policy attached in the account, with
    /// its default version, so documents can be fetched without a `GetPolicy` each.
    fn attached_policy_versions(&self) -> impl Future<Output = Read<AttachedPolicies>> + Send;
    /// `GetPolicy`: a managed policy's default version.
    fn policy(&self, arn: &str) -> impl Future<Output = Read<PolicyVersionRef>> + Send;
    /// `GetPolicyVersion`: a managed policy's document.
    fn policy_version(&self, arn: &str, version: &str)
        -> impl Future<Output = Read<String>> + Send;
}

/// AWS Organizations reads.
pub trait OrgReads: Send + Sync {
    /// `DescribeOrganization`; `None` when the account is in no organization.
    fn organization(&self) -> impl Future<Output = Read<Option<OrgInfo>>> + Send;
    /// `ListParents` (every page): the parent of an account or OU. Only the management
    /// account or a delegated administrator may call it.
    fn parents(&self, child: &str) -> impl Future<Output = Read<Vec<OrgParent>>> + Send;
    /// `ListPoliciesForTarget` (every page): the ids of the policies of one type attached
    /// directly to a root, OU or account.
    fn policies_for_target(
        &self,
        target: &str,
        kind: OrgPolicyType,
    ) -> impl Future<Output = Read<Vec<String>>> + Send;
    /// `DescribePolicy`, in the shape the API returns it (`{"Policy": {"PolicySummary":
    /// {...}, "Content": "..."}}`), which the snapshot holds as it is.
    fn describe_policy(&self, id: &str) -> impl Future<Output = Read<Value>> + Send;
    /// `ListChildren` (every page): the ids of the accounts, or of the OUs, directly under a
    /// root or OU. Only the management account or a delegated administrator may call it.
    fn children(
        &self,
        parent: &str,
        kind: OrgChildType,
    ) -> impl Future<Output = Read<Vec<String>>> + Send;
    /// `ListTargetsForPolicy` (every page): the ids of the roots, OUs and accounts a policy
    /// is attached to.
    fn targets_for_policy(&self, policy: &str) -> impl Future<Output = Read<Vec<String>>> + Send;
}

/// The two kinds of child `ListChildren` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgChildType {
    /// `ACCOUNT`.
    Account,
    /// `ORGANIZATIONAL_UNIT`.
    Ou,
}

/// EC2 reads in the account that owns a VPC endpoint.
pub trait NetworkReads: Send + Sync {
    /// `DescribeVpcEndpoints` for one endpoint id: the entry as the API returns it
    /// (`VpcEndpointId`, `VpcId`, `OwnerId`, `ServiceName`, `VpcEndpointType`,
    /// `PolicyDocument` as a JSON string); `None` when the account has no such endpoint.
    fn vpc_endpoint(
        &self,
        region: &str,
        id: &str,
    ) -> impl Future<Output = Read<Option<Value>>> + Send;
}

/// Every read the collector makes in one account.
pub trait AccountReads:
    BucketReads + AccessPointReads + KeyReads + IdentityReads + OrgReads + NetworkReads
{
}
impl<T: BucketReads + AccessPointReads + KeyReads + IdentityReads + OrgReads + NetworkReads>
    AccountReads for T
{
}

/// Access to the accounts involved in a request.
pub trait Accounts: Send + Sync {
    /// The reads of one account.
    type Reader: AccountReads;
    /// The reader for `account`: this account's own credentials, or a session of the
    /// configured read-only role (cached until shortly before it expires).
    fn reader(&self, account: &str) -> impl Future<Output = Read<Access<Self::Reader>>> + Send;
    /// HTTP attempts made so far by every client of these accounts, retries included (0 when
    /// the implementation does not count them). The collector reports the difference over a
    /// diagnosis, so that retries show in its numbers.
    fn attempts(&self) -> u64 {
        0
    }

    /// The reader for the organization's policies (the management account or a delegated
    /// administrator), when one is configured; `None` leaves SCPs and RCPs a stated gap.
    fn org_reader(&self) -> impl Future<Output = Option<Read<Access<Self::Reader>>>> + Send {
        async { None }
    }
}

/// A reader, and whether getting it took an `AssumeRole` call.
#[derive(Debug, Clone)]
pub struct Access<R> {
    /// The reads of the account.
    pub reader: R,
    /// Whether an `sts:AssumeRole` call was made to get it (counted as one round trip).
    pub assumed_role: bool,
}

/// Where notifications go.
pub trait Publisher: Send + Sync {
    /// Publishes one notification; returns the message id.
    fn publish(
        &self,
        notification: &Notification,
    ) -> impl Future<Output = Result<String, ReadError>> + Send;
}

/// A stored document and the version it was read at (S3: its `ETag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The document.
    pub body: String,
    /// The version to make a write conditional on.
    pub version: String,
}

/// How a write is conditioned, so that concurrent writers never lose each other's update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteIf {
    /// Only if nothing is stored yet (S3 `If-None-Match: *`).
    Absent,
    /// Only if the stored version is still this one (S3 `If-Match: <ETag>`).
    Version(String),
}

/// The outcome of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Stored; the new version.
    Done(String),
    /// Another writer got there first (S3 `412 PreconditionFailed`, or `409
    /// ConditionalRequestConflict` for a write racing another on the same key): re-read, re-apply,
    /// retry.
    Conflict,
}

/// The auditor's state store: one document per name (`accounts/<id>.json`,
/// `paths/<id>.json`), read with its version and written conditionally.
pub trait StateStore: Send + Sync {
    /// The document `name` and its version; `None` when nothing is stored.
    fn get(&self, name: &str) -> impl Future<Output = Read<Option<Stored>>> + Send;
    /// Writes `body` as `name` when `condition` holds.
    fn put(
        &self,
        name: &str,
        body: &str,
        condition: &WriteIf,
    ) -> impl Future<Output = Read<Written>> + Send;
}

/// One role, user or group as `GetAccountAuthorizationDetails` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailedIdentity {
    /// `RoleName` / `UserName` / `GroupName`.
    pub name: String,
    /// `Arn`, `Path`, id, boundary, tags, and a role's trust policy (decoded).
    pub info: IdentityInfo,
    /// Inline policies: (name, document as IAM returns it).
    pub inline: Vec<(String, String)>,
    /// Attached managed policy ARNs.
    pub attached: Vec<String>,
    /// A user's groups.
    pub groups: Vec<String>,
}

/// A managed policy as `GetAccountAuthorizationDetails` describes it: its default version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailedPolicy {
    /// `Arn`.
    pub arn: String,
    /// `PolicyName`.
    pub name: Option<String>,
    /// `DefaultVersionId`.
    pub default_version: String,
    /// The default version's document, as IAM returns it.
    pub document: Option<String>,
}

/// `GetAccountAuthorizationDetails`, every page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthorizationDetails {
    /// Roles.
    pub roles: Vec<DetailedIdentity>,
    /// Users.
    pub users: Vec<DetailedIdentity>,
    /// Groups.
    pub groups: Vec<DetailedIdentity>,
    /// Managed policies (customer managed, and the AWS managed ones attached in the account).
    pub policies: Vec<DetailedPolicy>,
}

/// The whole-account reads an organization sweep makes (issue 11), beside the per-request
/// reads of [`AccountReads`].
pub trait Inventory: Send + Sync {
    /// `ListBuckets`, every page: the account's buckets, each with its Region when the
    /// listing gives it (`BucketRegion`).
    fn list_buckets(
        &self,
        region: &str,
    ) -> impl Future<Output = Read<Vec<(String, Option<String>)>>> + Send;
    /// `GetAccountAuthorizationDetails`, every page.
    fn authorization_details(&self) -> impl Future<Output = Read<AuthorizationDetails>> + Send;
    /// Organizations `ListAccounts`, every page: the ids of the `ACTIVE` accounts. Answered
    /// only in the management account or a delegated administrator.
    fn list_accounts(&self) -> impl Future<Output = Read<Vec<String>>> + Send;
}

/// The queue an organization sweep fans out over.
pub trait Queue: Send + Sync {
    /// `SendMessageBatch` of at most ten (id, body) entries; returns the ids of the entries
    /// that failed (to be sent again).
    fn send_batch(
        &self,
        entries: &[(String, String)],
    ) -> impl Future<Output = Read<Vec<String>>> + Send;
}

/// Listing the state store (organization sweeps count and read what the workers stored).
pub trait StateList: Send + Sync {
    /// The names under `prefix`, every page.
    fn list(&self, prefix: &str) -> impl Future<Output = Read<Vec<String>>> + Send;
}

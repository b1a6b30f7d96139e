//! Findings: the stable vocabulary subscribers filter on, and the fix attached to each.

use serde::Serialize;
use serde_json::Value;

/// A finding code. These strings are part of the public output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(
    missing_docs,
    reason = "each code is documented in docs/scenario-format.md and explained by every finding it names"
)]
pub enum Code {
    // Blocking.
    IdentityPolicyNoAllow,
    IdentityPolicyExplicitDeny,
    PermissionsBoundaryNoAllow,
    PermissionsBoundaryExplicitDeny,
    SessionPolicyNoAllow,
    SessionPolicyExplicitDeny,
    ScpNoAllow,
    ScpExplicitDeny,
    RcpExplicitDeny,
    VpcEndpointPolicyNoAllow,
    VpcEndpointPolicyExplicitDeny,
    BucketPolicyNoAllow,
    BucketPolicyExplicitDeny,
    ObjectOwnerMismatch,
    BlockPublicAccess,
    KeyPolicyNoAllow,
    KeyPolicyExplicitDeny,
    AwsManagedKey,
    KeyNotUsable,
    KeyRegionMismatch,
    AccessPointPolicyNoAllow,
    AccessPointPolicyExplicitDeny,
    AccessPointNetworkOrigin,
    BucketPolicyNoAccessPointDelegation,
    // Advisory.
    DefaultEncryptionAlias,
    DefaultEncryptionAwsManagedKey,
    ObjectKeyNotDefault,
    MissingEvidence,
    OrphanedPrincipalId,
}

impl Code {
    /// The code as printed (`KEY_POLICY_NO_ALLOW`).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::IdentityPolicyNoAllow => "IDENTITY_POLICY_NO_ALLOW",
            Code::IdentityPolicyExplicitDeny => "IDENTITY_POLICY_EXPLICIT_DENY",
            Code::PermissionsBoundaryNoAllow => "PERMISSIONS_BOUNDARY_NO_ALLOW",
            Code::PermissionsBoundaryExplicitDeny => "PERMISSIONS_BOUNDARY_EXPLICIT_DENY",
            Code::SessionPolicyNoAllow => "SESSION_POLICY_NO_ALLOW",
            Code::SessionPolicyExplicitDeny => "SESSION_POLICY_EXPLICIT_DENY",
            Code::ScpNoAllow => "SCP_NO_ALLOW",
            Code::ScpExplicitDeny => "SCP_EXPLICIT_DENY",
            Code::RcpExplicitDeny => "RCP_EXPLICIT_DENY",
            Code::VpcEndpointPolicyNoAllow => "VPC_ENDPOINT_POLICY_NO_ALLOW",
            Code::VpcEndpointPolicyExplicitDeny => "VPC_ENDPOINT_POLICY_EXPLICIT_DENY",
            Code::BucketPolicyNoAllow => "BUCKET_POLICY_NO_ALLOW",
            Code::BucketPolicyExplicitDeny => "BUCKET_POLICY_EXPLICIT_DENY",
            Code::ObjectOwnerMismatch => "OBJECT_OWNER_MISMATCH",
            Code::BlockPublicAccess => "BLOCK_PUBLIC_ACCESS",
            Code::KeyPolicyNoAllow => "KEY_POLICY_NO_ALLOW",
            Code::KeyPolicyExplicitDeny => "KEY_POLICY_EXPLICIT_DENY",
            Code::AwsManagedKey => "AWS_MANAGED_KEY",
            Code::KeyNotUsable => "KEY_NOT_USABLE",
            Code::KeyRegionMismatch => "KEY_REGION_MISMATCH",
            Code::AccessPointPolicyNoAllow => "ACCESS_POINT_POLICY_NO_ALLOW",
            Code::AccessPointPolicyExplicitDeny => "ACCESS_POINT_POLICY_EXPLICIT_DENY",
            Code::AccessPointNetworkOrigin => "ACCESS_POINT_NETWORK_ORIGIN",
            Code::BucketPolicyNoAccessPointDelegation => "BUCKET_POLICY_NO_ACCESS_POINT_DELEGATION",
            Code::DefaultEncryptionAlias => "DEFAULT_ENCRYPTION_ALIAS",
            Code::DefaultEncryptionAwsManagedKey => "DEFAULT_ENCRYPTION_AWS_MANAGED_KEY",
            Code::ObjectKeyNotDefault => "OBJECT_KEY_NOT_DEFAULT",
            Code::MissingEvidence => "MISSING_EVIDENCE",
            Code::OrphanedPrincipalId => "ORPHANED_PRINCIPAL_ID",
        }
    }

    /// Whether the code blocks the request (the others are advisory).
    pub fn is_blocking(self) -> bool {
        !matches!(
            self,
            Code::DefaultEncryptionAlias
                | Code::DefaultEncryptionAwsManagedKey
                | Code::ObjectKeyNotDefault
                | Code::MissingEvidence
                | Code::OrphanedPrincipalId
        )
    }

    /// Every code, for documentation and coverage tests.
    pub const ALL: [Code; 29] = [
        Code::IdentityPolicyNoAllow,
        Code::IdentityPolicyExplicitDeny,
        Code::PermissionsBoundaryNoAllow,
        Code::PermissionsBoundaryExplicitDeny,
        Code::SessionPolicyNoAllow,
        Code::SessionPolicyExplicitDeny,
        Code::ScpNoAllow,
        Code::ScpExplicitDeny,
        Code::RcpExplicitDeny,
        Code::VpcEndpointPolicyNoAllow,
        Code::VpcEndpointPolicyExplicitDeny,
        Code::BucketPolicyNoAllow,
        Code::BucketPolicyExplicitDeny,
        Code::ObjectOwnerMismatch,
        Code::BlockPublicAccess,
        Code::KeyPolicyNoAllow,
        Code::KeyPolicyExplicitDeny,
        Code::AwsManagedKey,
        Code::KeyNotUsable,
        Code::KeyRegionMismatch,
        Code::AccessPointPolicyNoAllow,
        Code::AccessPointPolicyExplicitDeny,
        Code::AccessPointNetworkOrigin,
        Code::BucketPolicyNoAccessPointDelegation,
        Code::DefaultEncryptionAlias,
        Code::DefaultEncryptionAwsManagedKey,
        Code::ObjectKeyNotDefault,
        Code::MissingEvidence,
        Code::OrphanedPrincipalId,
    ];
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The statement a finding is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementInfo {
    /// The policy's name (or ARN).
    pub policy: String,
    /// Statement index in the document.
    pub index: usize,
    /// `Sid`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// One cause (blocking) or observation (advisory).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The code.
    pub code: Code,
    /// Whether it blocks the request.
    pub blocking: bool,
    /// The hop's action (`s3:GetObject`, `kms:Decrypt`), when the finding is about one hop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The account whose configuration is at fault (or holds the evidence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The policy involved (name or ARN), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The statements involved (the denying ones, or the near misses).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<StatementInfo>,
    /// A paragraph a person can act on.
    pub explanation: String,
    /// The change that removes this cause, for blocking findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<Fix>,
    /// Sweep only: the principal of the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Sweep only: the bucket of the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Position in the order AWS would hit the walls (lower first).
    #[serde(skip)]
    pub rank: u32,
}

impl Finding {
    /// A finding without a fix, principal or bucket (those are attached later).
    pub fn new(
        code: Code,
        action: Option<&str>,
        account: Option<&str>,
        explanation: String,
        rank: u32,
    ) -> Finding {
        Finding {
            code,
            blocking: code.is_blocking(),
            action: action.map(str::to_owned),
            account: account.map(str::to_owned),
            policy: None,
            statements: Vec::new(),
            explanation,
            fix: None,
            principal: None,
            bucket: None,
            rank,
        }
    }
}

/// A concrete change, addressed to the account that must make it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fix {
    /// The account that must act (for SCPs and RCPs: the organization's management account,
    /// named as such).
    pub account: String,
    /// What to change (`key policy of <key ARN>`).
    pub artifact: String,
    /// The least-privilege statement to add, when the fix is a statement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<Value>,
    /// The whole patched policy, where the current one is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patched_policy: Option<Value>,
    /// The AWS CLI command(s) that apply it.
    pub cli: String,
    /// Extra steps or caveats, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The typed changes to the snapshot that verify the fix; empty when the fix cannot be
    /// expressed as a snapshot change (re-encrypting objects, say).
    #[serde(skip)]
    pub edits: Vec<super::edit::Edit>,
    /// The same changes as an RFC 6902 patch of the snapshot document.
    #[serde(skip)]
    pub patch: Vec<Value>,
}

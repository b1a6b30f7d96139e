//! S3 buckets and objects: the wrapper keys are ours, each value is the output of one S3 read
//! API (`GetBucketPolicy`, `GetBucketEncryption`, `GetBucketAcl`, `HeadObject`, ...).

use std::collections::BTreeMap;

use iam_eval::PolicyKind;

use super::policy::{bucket_policy_name, parse_policy, NamedPolicy};
use crate::limits::PolicyLimit;
use crate::reader::{Node, PathError};

/// One bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// The bucket's Region (`region`), which fixes `kms:ViaService` and where its key must be.
    pub region: String,
    /// The bucket policy (`policy`).
    pub policy: Option<NamedPolicy>,
    /// Default encryption (`encryption`, `GetBucketEncryption` output).
    pub encryption: Option<DefaultEncryption>,
    /// Object Ownership (`ownership_controls`, `GetBucketOwnershipControls` output).
    pub ownership: Option<ObjectOwnership>,
    /// Bucket-level Block Public Access (`public_access_block`).
    pub public_access_block: Option<PublicAccessBlock>,
    /// The bucket owner's canonical id (`acl.Owner.ID`).
    pub acl_owner_id: Option<String>,
    /// The bucket ACL's grants (`acl.Grants`).
    pub acl_grants: Vec<AclGrant>,
    /// Objects by key (`objects`, `HeadObject` output plus `GetObjectAcl`'s `Owner`/`Grants`).
    pub objects: BTreeMap<String, Object>,
    /// `Requester` or `BucketOwner` (`request_payment`, `GetBucketRequestPayment` output).
    pub request_payment: Option<String>,
}

/// The bucket's default encryption rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultEncryption {
    /// `SSEAlgorithm`: `AES256`, `aws:kms` or `aws:kms:dsse`.
    pub algorithm: String,
    /// `KMSMasterKeyID` exactly as configured: key ARN, key id, alias name or alias ARN.
    pub kms_key_id: Option<String>,
    /// `BucketKeyEnabled`.
    pub bucket_key_enabled: bool,
}

/// The Object Ownership setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectOwnership {
    /// ACLs disabled; the bucket owner owns every object.
    BucketOwnerEnforced,
    /// The bucket owner owns objects uploaded with `bucket-owner-full-control`.
    BucketOwnerPreferred,
    /// The writer owns the object.
    ObjectWriter,
}

impl ObjectOwnership {
    /// The setting named as AWS spells it (`BucketOwnerEnforced`, ...), if it is one.
    pub fn from_aws(text: &str) -> Option<ObjectOwnership> {
        match text {
            "BucketOwnerEnforced" => Some(ObjectOwnership::BucketOwnerEnforced),
            "BucketOwnerPreferred" => Some(ObjectOwnership::BucketOwnerPreferred),
            "ObjectWriter" => Some(ObjectOwnership::ObjectWriter),
            _ => None,
        }
    }

    /// The setting as AWS spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectOwnership::BucketOwnerEnforced => "BucketOwnerEnforced",
            ObjectOwnership::BucketOwnerPreferred => "BucketOwnerPreferred",
            ObjectOwnership::ObjectWriter => "ObjectWriter",
        }
    }
}

/// A Block Public Access configuration (bucket or account level); unset flags are `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublicAccessBlock {
    /// `BlockPublicAcls`.
    pub block_public_acls: bool,
    /// `IgnorePublicAcls`.
    pub ignore_public_acls: bool,
    /// `BlockPublicPolicy`.
    pub block_public_policy: bool,
    /// `RestrictPublicBuckets`.
    pub restrict_public_buckets: bool,
}

/// One object, as far as the snapshot knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Object {
    /// `ServerSideEncryption`: `AES256`, `aws:kms`, `aws:kms:dsse`; `None` when unknown.
    pub sse: Option<String>,
    /// `SSEKMSKeyId`: the key that actually encrypted the object.
    pub kms_key_id: Option<String>,
    /// `BucketKeyEnabled`: the encryption context is then the bucket ARN.
    pub bucket_key_enabled: bool,
    /// `Owner.ID` from `GetObjectAcl`.
    pub owner_id: Option<String>,
    /// `Grants` from `GetObjectAcl`.
    pub grants: Vec<AclGrant>,
    /// `VersionId`.
    pub version_id: Option<String>,
    /// `TagSet` from `GetObjectTagging` (`s3:ExistingObjectTag/*`).
    pub tags: BTreeMap<String, String>,
}

/// One ACL grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclGrant {
    /// Who is granted.
    pub grantee: Grantee,
    /// What is granted.
    pub permission: AclPermission,
}

/// An ACL grantee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    /// `Type: CanonicalUser` with its `ID`.
    CanonicalUser {
        /// Canonical user id.
        id: String,
    },
    /// `Type: Group` with its `URI` (`.../global/AllUsers`, `.../global/AuthenticatedUsers`).
    Group {
        /// Group URI.
        uri: String,
    },
    /// `Type: AmazonCustomerByEmail`.
    Email {
        /// Email address.
        address: String,
    },
}

impl Grantee {
    /// Whether the grant makes the resource public (AllUsers or AuthenticatedUsers), which
    /// `IgnorePublicAcls` neutralizes.
    pub fn is_public(&self) -> bool {
        match self {
            Grantee::Group { uri } => {
                uri.ends_with("/global/AllUsers") || uri.ends_with("/global/AuthenticatedUsers")
            }
            Grantee::CanonicalUser { .. } | Grantee::Email { .. } => false,
        }
    }
}

/// An ACL permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclPermission {
    /// `FULL_CONTROL`.
    FullControl,
    /// `READ`.
    Read,
    /// `WRITE`.
    Write,
    /// `READ_ACP`.
    ReadAcp,
    /// `WRITE_ACP`.
    WriteAcp,
}

impl AclPermission {
    /// The permission as AWS spells it (`FULL_CONTROL`, `READ`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AclPermission::FullControl => "FULL_CONTROL",
            AclPermission::Read => "READ",
            AclPermission::Write => "WRITE",
            AclPermission::ReadAcp => "READ_ACP",
            AclPermission::WriteAcp => "WRITE_ACP",
        }
    }

    /// Whether the permission lets the grantee read object data (`READ` or `FULL_CONTROL`).
    pub fn allows_read(self) -> bool {
        matches!(self, AclPermission::Read | AclPermission::FullControl)
    }
}

const BUCKET_KEYS: &[&str] = &[
    "region",
    "policy",
    "encryption",
    "ownership_controls",
    "public_access_block",
    "acl",
    "objects",
    "request_payment",
];

impl Bucket {
    pub(crate) fn parse(node: &Node<'_>, name: &str) -> Result<Bucket, PathError> {
        node.only_keys(BUCKET_KEYS)?;
        let region_node = node.req("region")?;
        let region = region_node.str()?.to_owned();
        if !is_region(&region) {
            return Err(region_node.err(format!(
                "`{region}` is not a Region name such as `us-west-2`"
            )));
        }
        let policy = match node.get("policy")? {
            Some(p) => Some(parse_policy(
                &p,
                PolicyKind::Resource,
                bucket_policy_name(name),
                Some(PolicyLimit::BucketPolicy),
            )?),
            None => None,
        };
        let encryption = node
            .get("encryption")?
            .map(|n| parse_encryption(&n))
            .transpose()?;
        let ownership = node
            .get("ownership_controls")?
            .map(|n| parse_ownership(&n))
            .transpose()?;
        let public_access_block = node
            .get("public_access_block")?
            .map(|n| parse_public_access_block(&n))
            .transpose()?;
        let (acl_owner_id, acl_grants) = match node.get("acl")? {
            Some(acl) => (owner_id(&acl)?, parse_grants(&acl)?),
            None => (None, Vec::new()),
        };
        let mut objects = BTreeMap::new();
        if let Some(list) = node.get("objects")? {
            for (key, object) in list.members()? {
                objects.insert(key.to_owned(), parse_object(&object)?);
            }
        }
        let request_payment = match node.get("request_payment")? {
            None => None,
            Some(n) if n.v.is_string() => Some(n.str()?.to_owned()),
            Some(n) => Some(n.req_str("Payer")?),
        };
        if let Some(payer) = &request_payment {
            if payer != "Requester" && payer != "BucketOwner" {
                return Err(node.loc.key("request_payment").err(format!(
                    "`{payer}` is not a payer; expected `Requester` or `BucketOwner`"
                )));
            }
        }
        Ok(Bucket {
            region,
            policy,
            encryption,
            ownership,
            public_access_block,
            acl_owner_id,
            acl_grants,
            objects,
            request_payment,
        })
    }

    /// Whether objects of this bucket are always owned by the bucket owner (ACLs disabled).
    pub fn acls_disabled(&self) -> bool {
        self.ownership == Some(ObjectOwnership::BucketOwnerEnforced)
    }

    /// Every KMS key reference this bucket's objects can be under, as written: the default
    /// encryption's key (new objects), then the key of each recorded object. References are
    /// resolved by [`Snapshot::key`](super::Snapshot::key) (ids, ARNs, aliases).
    pub fn key_references(&self) -> impl Iterator<Item = &str> {
        self.encryption
            .iter()
            .filter_map(|e| e.kms_key_id.as_deref())
            .chain(
                self.objects
                    .values()
                    .filter_map(|o| o.kms_key_id.as_deref()),
            )
    }
}

/// `us-west-2`, `us-gov-east-1`, `cn-north-1`, `ap-southeast-4`: lowercase words joined by
/// hyphens and ending in a number.
pub(crate) fn is_region(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let Some((last, words)) = parts.split_last() else {
        return false;
    };
    words.len() >= 2
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
}

/// Steps through the top-level wrapper AWS prints (`{"PublicAccessBlockConfiguration": ..}`)
/// when present, so both the CLI output and its inner object are accepted.
fn inner<'a>(node: &Node<'a>, wrapper: &str) -> Result<Node<'a>, PathError> {
    Ok(node.get(wrapper)?.unwrap_or_else(|| node.clone()))
}

fn parse_encryption(node: &Node<'_>) -> Result<DefaultEncryption, PathError> {
    let config = inner(node, "ServerSideEncryptionConfiguration")?;
    let rules = config.req("Rules")?.arr()?;
    let Some(rule) = rules.first() else {
        return Err(config.loc.key("Rules").err("expected at least one rule"));
    };
    let default = rule.req("ApplyServerSideEncryptionByDefault")?;
    Ok(DefaultEncryption {
        algorithm: default.req_str("SSEAlgorithm")?,
        kms_key_id: default.opt_str("KMSMasterKeyID")?,
        bucket_key_enabled: rule.bool_or("BucketKeyEnabled", false)?,
    })
}

fn parse_ownership(node: &Node<'_>) -> Result<ObjectOwnership, PathError> {
    let controls = inner(node, "OwnershipControls")?;
    let rules = controls.req("Rules")?.arr()?;
    let Some(rule) = rules.first() else {
        return Err(controls.loc.key("Rules").err("expected one rule"));
    };
    let value = rule.req("ObjectOwnership")?;
    let text = value.str()?;
    ObjectOwnership::from_aws(text).ok_or_else(|| value.err(format!(
        "`{text}` is not an Object Ownership setting; expected `BucketOwnerEnforced`, `BucketOwnerPreferred` or `ObjectWriter`"
    )))
}

pub(crate) fn parse_public_access_block(node: &Node<'_>) -> Result<PublicAccessBlock, PathError> {
    let config = inner(node, "PublicAccessBlockConfiguration")?;
    Ok(PublicAccessBlock {
        block_public_acls: config.bool_or("BlockPublicAcls", false)?,
        ignore_public_acls: config.bool_or("IgnorePublicAcls", false)?,
        block_public_policy: config.bool_or("BlockPublicPolicy", false)?,
        restrict_public_buckets: config.bool_or("RestrictPublicBuckets", false)?,
    })
}

fn owner_id(node: &Node<'_>) -> Result<Option<String>, PathError> {
    match node.get("Owner")? {
        Some(owner) => owner.opt_str("ID"),
        None => Ok(None),
    }
}

fn parse_grants(node: &Node<'_>) -> Result<Vec<AclGrant>, PathError> {
    let Some(list) = node.get("Grants")? else {
        return Ok(Vec::new());
    };
    list.arr()?.iter().map(parse_grant).collect()
}

fn parse_grant(node: &Node<'_>) -> Result<AclGrant, PathError> {
    let grantee = node.req("Grantee")?;
    let kind = grantee.opt_str("Type")?;
    let grantee_value = match kind.as_deref() {
        Some("CanonicalUser") => Grantee::CanonicalUser { id: grantee.req_str("ID")? },
        Some("Group") => Grantee::Group { uri: grantee.req_str("URI")? },
        Some("AmazonCustomerByEmail") => Grantee::Email { address: grantee.req_str("EmailAddress")? },
        // Hand-written grants often leave out `Type`; the identifying field says it all.
        None if grantee.get("ID")?.is_some() => Grantee::CanonicalUser { id: grantee.req_str("ID")? },
        None if grantee.get("URI")?.is_some() => Grantee::Group { uri: grantee.req_str("URI")? },
        None => return Err(grantee.loc.key("Type").err("missing required field")),
        Some(other) => {
            return Err(grantee.loc.key("Type").err(format!(
                "`{other}` is not a grantee type; expected `CanonicalUser`, `Group` or `AmazonCustomerByEmail`"
            )))
        }
    };
    let permission_node = node.req("Permission")?;
    let permission = match permission_node.str()? {
        "FULL_CONTROL" => AclPermission::FullControl,
        "READ" => AclPermission::Read,
        "WRITE" => AclPermission::Write,
        "READ_ACP" => AclPermission::ReadAcp,
        "WRITE_ACP" => AclPermission::WriteAcp,
        other => {
            return Err(permission_node.err(format!(
                "`{other}` is not an ACL permission; expected `FULL_CONTROL`, `READ`, `WRITE`, `READ_ACP` or `WRITE_ACP`"
            )))
        }
    };
    Ok(AclGrant {
        grantee: grantee_value,
        permission,
    })
}

fn parse_object(node: &Node<'_>) -> Result<Object, PathError> {
    let mut tags = BTreeMap::new();
    if let Some(list) = node.get("TagSet")? {
        for tag in list.arr()? {
            tags.insert(
                tag.req_str("Key")?,
                tag.opt_str("Value")?.unwrap_or_default(),
            );
        }
    }
    Ok(Object {
        sse: node.opt_str("ServerSideEncryption")?,
        kms_key_id: node.opt_str("SSEKMSKeyId")?,
        bucket_key_enabled: node.bool_or("BucketKeyEnabled", false)?,
        owner_id: owner_id(node)?,
        grants: parse_grants(node)?,
        version_id: node.opt_str("VersionId")?,
        tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names() {
        for ok in [
            "us-west-2",
            "us-gov-east-1",
            "cn-north-1",
            "ap-southeast-4",
            "eu-central-2",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "us-west",
            "uswest2",
            "US-WEST-2",
            "us--2",
            "2",
            "us-west-2a",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    #[test]
    fn public_grantees() {
        let all = Grantee::Group {
            uri: "http://acs.amazonaws.com/groups/global/AllUsers".into(),
        };
        let log = Grantee::Group {
            uri: "http://acs.amazonaws.com/groups/s3/LogDelivery".into(),
        };
        assert!(all.is_public());
        assert!(!log.is_public());
        assert!(!Grantee::CanonicalUser { id: "x".into() }.is_public());
    }
}

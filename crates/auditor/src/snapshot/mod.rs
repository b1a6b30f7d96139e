//! The account snapshot: the complete offline picture the diagnosis reads.
//!
//! The wrapper keys (`accounts`, `organization`, `iam`, `s3`, `kms`, and the per-bucket and
//! per-key keys) are ours and are checked strictly: an unknown key is an error, because a
//! typo such as `polcy` would otherwise silently drop a policy and change the verdict. Every
//! value under them keeps the shape an AWS read API returns (PascalCase), so CLI output can be
//! pasted in; unknown keys inside those payloads are ignored, because AWS adds fields.
//!
//! ```json
//! { "description": "optional free text",
//!   "accounts": { "111122223333": {
//!     "canonical_id": "…", "organization": {…}, "public_access_block": {…},
//!     "iam": <get-account-authorization-details>,
//!     "s3":  { "<bucket>": { "region": "us-west-2", "policy": …, "encryption": …,
//!                            "ownership_controls": …, "public_access_block": …, "acl": …,
//!                            "objects": { "<key>": <head-object + get-object-acl> },
//!                            "request_payment": … } },
//!     "kms": { "<key ARN>": { "metadata": …, "policy": …, "grants": […], "aliases": […] } },
//!     "vpc_endpoints": <describe-vpc-endpoints> } } }
//! ```
//!
//! | key | value |
//! | --- | --- |
//! | `canonical_id` | the account's canonical user id (`s3api list-buckets` → `Owner.ID`) |
//! | `organization` | `{"id": "o-…", "scp": [[P…]…], "rcp": [[P…]…], "is_management_account": false, "management_account": "…"}`; one inner list per level, root first, account last; each `P` a document or `organizations describe-policy` output |
//! | `public_access_block` | `s3control get-public-access-block` output (account level) |
//! | `iam` | `iam get-account-authorization-details` output |
//! | bucket `region` | required, e.g. `us-west-2` |
//! | bucket `policy`, key `policy` | a document: object, JSON string, URL-encoded string, or `get-bucket-policy` / `get-key-policy` output |
//! | `encryption` | `get-bucket-encryption` output |
//! | `ownership_controls` | `get-bucket-ownership-controls` output |
//! | bucket `public_access_block` | `get-public-access-block` output |
//! | `acl` | `get-bucket-acl` output |
//! | `objects` | object key → `head-object` output, plus `Owner`/`Grants` (`get-object-acl`) and `TagSet` (`get-object-tagging`) |
//! | `request_payment` | `get-bucket-request-payment` output, or `"Requester"` / `"BucketOwner"` |
//! | `kms` keys | listed by key ARN, in the account of the ARN |
//! | `metadata` | `describe-key` output (`KeyManager` and `KeyState` required) |
//! | `grants` | `list-grants` output or its `Grants` list |
//! | `aliases` | alias names, or `list-aliases` output |
//! | `vpc_endpoints` | `ec2 describe-vpc-endpoints` output or its `VpcEndpoints` list (`VpcEndpointId` required; `PolicyDocument` a document or JSON string) |
//! | `access_points` | access point name → `s3control get-access-point` output plus `Policy` (`get-access-point-policy`) |
//! | `collection_errors` (top level) | `[{"account", "operation", "resource", "error", "message"}]`: reads a collector could not make; each becomes a `MISSING_EVIDENCE` finding |
//!
//! Files are read with [`Snapshot::from_text`], which rejects a key given twice anywhere
//! (`docs/snapshot-format.md`, "Duplicate keys"); [`write`] is the one writer of the format,
//! and reading what it writes gives back an equal snapshot.
//!
//! Everything may be absent: the other account is often not ours to read. The model keeps
//! "absent" distinct from "empty" wherever the diagnosis must lower its confidence (an
//! unknown account, IAM data not collected, a managed policy listed without its document).

mod access_point;
mod iam;
mod kms;
mod org;
mod policy;
mod s3;
mod vpce;
pub mod write;

use std::collections::BTreeMap;

use iam_eval::Json;
use serde_json::Value;
use thiserror::Error;

pub use self::access_point::{AccessPoint, NetworkOrigin};
pub use self::iam::{Group, Iam, IdentityKind, ManagedPolicy, PrincipalPolicies, Role, User};
pub use self::kms::{Key, KeyGrant, KeyManager, KeyMetadata, KeyState};
pub use self::org::Organization;
pub use self::policy::NamedPolicy;
pub use self::s3::{
    AclGrant, AclPermission, Bucket, DefaultEncryption, Grantee, Object, ObjectOwnership,
    PublicAccessBlock,
};

pub use self::vpce::VpcEndpoint;

use self::kms::KeyRef;

/// A policy document as a JSON object, decoded from a JSON string or a URL-encoded JSON string
/// if it is held that way (as IAM returns it); `None` when it is neither an object nor such a
/// string.
pub fn decode_policy_document(v: &Value) -> Option<Value> {
    policy::decode_document(v)
}
use crate::arn::{is_account_id, Arn};
use crate::reader::{reject_duplicate_keys, Loc, Node, PathError};

/// A snapshot that cannot be used, with the JSON path of the offending value
/// (`accounts.111122223333.s3.doc-example-bucket.policy.Statement[0].Effect`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{path}: {message}")]
pub struct SnapshotError {
    path: String,
    message: String,
}

impl From<PathError> for SnapshotError {
    fn from(e: PathError) -> SnapshotError {
        SnapshotError {
            path: e.path,
            message: e.message,
        }
    }
}

impl SnapshotError {
    /// The JSON path of the offending value; `$` for the document itself.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong with it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The parsed snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// `description`: free text (what the snapshot shows, who collected it when).
    pub description: Option<String>,
    /// Accounts by 12-digit id.
    pub accounts: BTreeMap<String, Account>,
    /// Reads a collector attempted and could not make (`collection_errors`): each is a gap in
    /// the snapshot that looks like "absent" but is not "nothing there".
    pub collection_errors: Vec<CollectionError>,
}

/// One read the collector could not make, kept so the diagnosis can say what it did not see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionError {
    /// The account the read was addressed to, when known.
    pub account: Option<String>,
    /// The API call as `service:Operation` (`s3:GetBucketPolicy`, `s3:HeadObject`,
    /// `iam:GetRolePolicy`, `sts:AssumeRole`).
    pub operation: String,
    /// What was being read (a bucket, object, key or role ARN), when there was one.
    pub resource: Option<String>,
    /// The error code AWS returned (`AccessDenied`), or the collector's own reason.
    pub error: String,
    /// The error message, when there was one.
    pub message: Option<String>,
}

/// What the snapshot knows about one account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Account {
    /// The organization the account belongs to, when known.
    pub organization: Option<Organization>,
    /// IAM (`get-account-authorization-details`), when readable.
    pub iam: Option<Iam>,
    /// Buckets owned by the account, by name.
    pub s3: BTreeMap<String, Bucket>,
    /// KMS keys owned by the account, by key ARN.
    pub kms: BTreeMap<String, Key>,
    /// The account's canonical user id, which ACLs and `Owner.ID` use.
    pub canonical_id: Option<String>,
    /// Account-level Block Public Access (`s3control get-public-access-block`), combined
    /// with each bucket's own setting (the stricter wins).
    pub public_access_block: Option<PublicAccessBlock>,
    /// Role sessions whose creation was recorded (the `AssumeRole` CloudTrail record): their
    /// session policy and session tags, by session ARN.
    pub sessions: BTreeMap<String, Session>,
    /// The account's VPC endpoints (`ec2 describe-vpc-endpoints`), when they were read;
    /// `None` when not collected (docs/snapshot-format.md, `vpc_endpoints`).
    pub vpc_endpoints: Option<Vec<VpcEndpoint>>,
    /// S3 access points owned by the account, by name (`access_points`: `s3control
    /// get-access-point` output with `get-access-point-policy`'s `Policy`).
    pub access_points: BTreeMap<String, AccessPoint>,
}

/// What an `AssumeRole` call attached to one session (from its CloudTrail record's
/// `requestParameters`): the inline session policy and the session tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The inline session policy (`policy`), with any managed session policies
    /// (`policyArns`) merged by the user as further statements.
    pub policy: Option<NamedPolicy>,
    /// Session tags (`tags`: `[{"key": ..., "value": ...}]` or `{"k": "v"}`).
    pub tags: BTreeMap<String, String>,
}

const TOP_KEYS: &[&str] = &["accounts", "description", "collection_errors"];
const COLLECTION_ERROR_KEYS: &[&str] = &["account", "operation", "resource", "error", "message"];
const ACCOUNT_KEYS: &[&str] = &[
    "organization",
    "iam",
    "s3",
    "kms",
    "canonical_id",
    "public_access_block",
    "sessions",
    "vpc_endpoints",
    "access_points",
];

impl Snapshot {
    /// Parses and validates snapshot text (a `--snapshot` file). The text is read through
    /// the engine's duplicate-preserving [`Json`], so an object that gives a key twice
    /// anywhere (a policy's `"Effect": "Deny", "Effect": "Allow"`, two `policy` keys of one
    /// bucket) is rejected with its path instead of silently keeping the last value.
    pub fn from_text(text: &str) -> Result<Snapshot, SnapshotError> {
        let json = Json::parse(text).map_err(|e| SnapshotError {
            path: "$".to_owned(),
            message: format!("not valid JSON: {e}"),
        })?;
        Snapshot::from_json(&json)
    }

    /// Parses and validates a snapshot held as duplicate-preserving JSON (a snapshot embedded
    /// in another input that was parsed with [`Json::parse`]); duplicate keys anywhere are
    /// rejected with their path, as in [`Snapshot::from_text`].
    pub fn from_json(json: &Json) -> Result<Snapshot, SnapshotError> {
        reject_duplicate_keys(json, &Loc::default())?;
        Snapshot::from_value(&json.to_value())
    }

    /// Parses and validates a snapshot document that is already a `serde_json::Value`.
    /// Such a value cannot hold duplicate keys any more (the parser kept the last one), so
    /// only policies stored as strings are still checked for them: read files with
    /// [`Snapshot::from_text`].
    pub fn from_value(v: &Value) -> Result<Snapshot, SnapshotError> {
        Snapshot::parse(v).map_err(SnapshotError::from)
    }

    fn parse(v: &Value) -> Result<Snapshot, PathError> {
        let root = Node::root(v);
        root.only_keys(TOP_KEYS)?;
        let mut snapshot = Snapshot {
            description: root.opt_str("description")?,
            ..Snapshot::default()
        };
        for (id, node) in root.req("accounts")?.members()? {
            if !is_account_id(id) {
                return Err(node.err(format!("`{id}` is not an account id (12 digits)")));
            }
            snapshot
                .accounts
                .insert(id.to_owned(), Account::parse(&node, id)?);
        }
        if let Some(list) = root.get("collection_errors")? {
            for item in list.arr()? {
                snapshot
                    .collection_errors
                    .push(CollectionError::parse(&item)?);
            }
        }
        snapshot.check_unique_buckets(v)?;
        Ok(snapshot)
    }

    /// Bucket names are global, so two accounts cannot both own one.
    fn check_unique_buckets(&self, v: &Value) -> Result<(), PathError> {
        let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
        for (account, data) in &self.accounts {
            for bucket in data.s3.keys() {
                if let Some(first) = owners.insert(bucket, account) {
                    let loc = Node::root(v)
                        .loc
                        .key("accounts")
                        .key(account)
                        .key("s3")
                        .key(bucket);
                    return Err(loc.err(format!(
                        "bucket `{bucket}` is also listed under account {first}; bucket names are global"
                    )));
                }
            }
        }
        Ok(())
    }

    /// An account by id.
    pub fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.get(id)
    }

    /// A bucket by name, with the id of the account that owns it.
    pub fn bucket(&self, name: &str) -> Option<(&str, &Bucket)> {
        self.accounts
            .iter()
            .find_map(|(id, a)| a.s3.get(name).map(|b| (id.as_str(), b)))
    }

    /// The alias a key reference names, with the account and Region KMS resolves it in:
    /// `alias/name` in `default_account` and `default_region`, an alias ARN in its own;
    /// `None` for a key ARN or a bare key id. Returns (account, Region, `alias/name`).
    pub fn alias_of<'r>(
        reference: &'r str,
        default_region: &'r str,
        default_account: &'r str,
    ) -> Option<(&'r str, &'r str, &'r str)> {
        match KeyRef::parse(reference)? {
            KeyRef::AliasArn {
                region,
                account,
                alias,
            } => Some((account, region, alias)),
            KeyRef::Alias(alias) => Some((default_account, default_region, alias)),
            KeyRef::KeyArn { .. } | KeyRef::KeyId(_) => None,
        }
    }

    /// A key by key ARN, alias ARN, `alias/name` or bare key id, with its account id. Alias
    /// names and bare ids are resolved in `default_region` of `default_account`, the way KMS
    /// resolves them in the caller's account.
    pub fn key(
        &self,
        reference: &str,
        default_region: &str,
        default_account: &str,
    ) -> Option<(&str, &Key)> {
        // Key ids are matched within a Region because multi-Region keys share their id.
        let (region, account, by_alias, name) = match KeyRef::parse(reference)? {
            KeyRef::KeyArn {
                region,
                account,
                key_id,
            } => (region, account, false, key_id),
            KeyRef::AliasArn {
                region,
                account,
                alias,
            } => (region, account, true, alias),
            KeyRef::Alias(alias) => (default_region, default_account, true, alias),
            KeyRef::KeyId(key_id) => (default_region, default_account, false, key_id),
        };
        let (id, data) = self.accounts.get_key_value(account)?;
        data.kms
            .values()
            .filter(|k| k.metadata.region == region)
            .find(|k| {
                if by_alias {
                    k.aliases.iter().any(|a| a == name)
                } else {
                    k.metadata.key_id == name
                }
            })
            .map(|k| (id.as_str(), k))
    }

    /// The VPC endpoint `id` (`vpce-…`) with the account whose snapshot lists it: looked up
    /// in `account` first (the record's `vpcEndpointAccountId`), then in every account.
    pub fn vpc_endpoint(&self, id: &str, account: Option<&str>) -> Option<(&str, &VpcEndpoint)> {
        fn find<'a>(
            id: &str,
            (acct, a): (&'a String, &'a Account),
        ) -> Option<(&'a str, &'a VpcEndpoint)> {
            a.vpc_endpoints
                .iter()
                .flatten()
                .find(|e| e.id == id)
                .map(|e| (acct.as_str(), e))
        }
        account
            .and_then(|acct| self.accounts.get_key_value(acct))
            .and_then(|x| find(id, x))
            .or_else(|| self.accounts.iter().find_map(|x| find(id, x)))
    }

    /// An access point by owner and name, with its owner's id.
    pub fn access_point(&self, account: &str, name: &str) -> Option<(&str, &AccessPoint)> {
        let (id, data) = self.accounts.get_key_value(account)?;
        data.access_points.get(name).map(|ap| (id.as_str(), ap))
    }

    /// The access point whose `Alias` is `alias`, with its owner's id (aliases are unique).
    pub fn access_point_by_alias(&self, alias: &str) -> Option<(&str, &AccessPoint)> {
        self.accounts.iter().find_map(|(id, a)| {
            a.access_points
                .values()
                .find(|ap| ap.alias.as_deref() == Some(alias))
                .map(|ap| (id.as_str(), ap))
        })
    }

    /// The account whose canonical id is `canonical_id`.
    pub fn account_by_canonical_id(&self, canonical_id: &str) -> Option<&str> {
        self.accounts
            .iter()
            .find(|(_, a)| a.canonical_id.as_deref() == Some(canonical_id))
            .map(|(id, _)| id.as_str())
    }

    /// The role or user a unique id (`AROA…:session`, `AIDA…`) belongs to, searched in every
    /// account's IAM data: the account id, the kind and the ARN. `None` when no account in
    /// the snapshot has it (not collected, or the principal was deleted).
    pub fn identity_by_unique_id(&self, principal_id: &str) -> Option<(&str, IdentityKind, &str)> {
        self.accounts.iter().find_map(|(id, a)| {
            let (kind, arn) = a.iam.as_ref()?.identity_by_unique_id(principal_id)?;
            Some((id.as_str(), kind, arn))
        })
    }

    /// The IAM policies of a role session, role or user, looked up in the account of its
    /// ARN (see [`Iam::principal_policies`]).
    pub fn principal_policies(&self, principal_arn: &str) -> Option<PrincipalPolicies<'_>> {
        let account = Arn::parse(principal_arn)?.account;
        self.accounts
            .get(account)?
            .iam
            .as_ref()?
            .principal_policies(principal_arn)
    }
}

impl CollectionError {
    fn parse(node: &Node<'_>) -> Result<CollectionError, PathError> {
        node.only_keys(COLLECTION_ERROR_KEYS)?;
        let account = node.opt_str("account")?;
        if let Some(id) = &account {
            if !is_account_id(id) {
                return Err(node
                    .loc
                    .key("account")
                    .err(format!("`{id}` is not an account id (12 digits)")));
            }
        }
        Ok(CollectionError {
            account,
            operation: node.req_str("operation")?,
            resource: node.opt_str("resource")?,
            error: node.req_str("error")?,
            message: node.opt_str("message")?,
        })
    }
}

impl Account {
    fn parse(node: &Node<'_>, id: &str) -> Result<Account, PathError> {
        node.only_keys(ACCOUNT_KEYS)?;
        let organization = node
            .get("organization")?
            .map(|n| Organization::parse(&n, id))
            .transpose()?;
        let iam = node.get("iam")?.map(|n| Iam::parse(&n, id)).transpose()?;
        let mut s3 = BTreeMap::new();
        if let Some(buckets) = node.get("s3")? {
            for (name, bucket) in buckets.members()? {
                s3.insert(name.to_owned(), Bucket::parse(&bucket, name)?);
            }
        }
        let mut kms = BTreeMap::new();
        if let Some(keys) = node.get("kms")? {
            for (arn, key) in keys.members()? {
                kms.insert(arn.to_owned(), Key::parse(&key, arn, id)?);
            }
        }
        let canonical_id = node.opt_str("canonical_id")?;
        let public_access_block = node
            .get("public_access_block")?
            .map(|n| s3::parse_public_access_block(&n))
            .transpose()?;
        let mut sessions = BTreeMap::new();
        if let Some(list) = node.get("sessions")? {
            for (arn, session) in list.members()? {
                session.only_keys(&["policy", "tags"])?;
                let policy = session
                    .get("policy")?
                    .map(|p| {
                        policy::parse_policy(
                            &p,
                            iam_eval::PolicyKind::Identity,
                            format!("session policy of {arn}"),
                            Some(crate::limits::PolicyLimit::SessionPolicy),
                        )
                    })
                    .transpose()?;
                let mut tags = BTreeMap::new();
                if let Some(t) = session.get("tags")? {
                    match t.v {
                        Value::Array(_) => {
                            for tag in t.arr()? {
                                let key = tag
                                    .opt_str("key")?
                                    .or(tag.opt_str("Key")?)
                                    .ok_or_else(|| tag.err("a session tag needs `key`"))?;
                                let value = tag
                                    .opt_str("value")?
                                    .or(tag.opt_str("Value")?)
                                    .unwrap_or_default();
                                tags.insert(key, value);
                            }
                        }
                        _ => {
                            for (k, v) in t.members()? {
                                tags.insert(k.to_owned(), v.str()?.to_owned());
                            }
                        }
                    }
                }
                sessions.insert(arn.to_owned(), Session { policy, tags });
            }
        }
        let vpc_endpoints = node
            .get("vpc_endpoints")?
            .map(|n| VpcEndpoint::parse_all(&n))
            .transpose()?;
        let mut access_points = BTreeMap::new();
        if let Some(list) = node.get("access_points")? {
            for (name, ap) in list.members()? {
                access_points.insert(name.to_owned(), AccessPoint::parse(&ap, name, id)?);
            }
        }
        Ok(Account {
            organization,
            iam,
            s3,
            kms,
            canonical_id,
            public_access_block,
            sessions,
            vpc_endpoints,
            access_points,
        })
    }
}

#[cfg(test)]
mod tests;

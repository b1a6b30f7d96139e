//! In-memory accounts for unit tests: the ports implemented over plain maps, with reads that
//! can be refused one by one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use auditor::notify::Notification;
use serde_json::{json, Value};

use crate::ports::{
    Access, AccessPointInfo, AccessPointReads, Accounts, Acl, AttachedPolicies, BucketReads,
    EncryptionRule, IdentityInfo, IdentityKind, IdentityReads, KeyInfo, KeyReads, NetworkReads,
    ObjectHead, OrgChildType, OrgInfo, OrgParent, OrgPolicyType, OrgReads, PolicyVersionRef,
    PublicAccessFlags, Publisher, Read, ReadError,
};

pub const A: &str = "111122223333";
pub const B: &str = "444455556666";
pub const BUCKET: &str = "doc-example-bucket";
pub const OBJECT: &str = "reports/q1.csv";
pub const KEY_ARN: &str =
    "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

#[derive(Debug, Clone, Default)]
pub struct Bucket {
    pub region: String,
    pub policy: Option<String>,
    pub encryption: Option<EncryptionRule>,
    pub objects: BTreeMap<String, ObjectHead>,
    /// `ObjectOwnership`; `None` answers `OwnershipControlsNotFoundError`.
    pub ownership: Option<String>,
    pub acl: Acl,
    /// `GetObjectAcl` by object key.
    pub object_acls: BTreeMap<String, Acl>,
}

/// The canonical id the fake gives account `account`.
pub fn canonical(account: &str) -> String {
    format!("{account:0>64}")
}

#[derive(Debug, Clone)]
pub struct Key {
    pub info: KeyInfo,
    pub policy: String,
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Role {
    pub info: Option<IdentityInfo>,
    pub inline: BTreeMap<String, String>,
    pub attached: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Account {
    pub buckets: BTreeMap<String, Bucket>,
    pub keys: BTreeMap<String, Key>,
    pub roles: BTreeMap<String, Role>,
    /// Managed policies: ARN → (default version, document).
    pub policies: BTreeMap<String, (String, String)>,
    pub org: Option<OrgInfo>,
    /// VPC endpoints by id, as `describe-vpc-endpoints` entries.
    pub vpc_endpoints: BTreeMap<String, Value>,
    /// Access points by name: what `GetAccessPoint` answers, and the policy.
    pub access_points: BTreeMap<String, (AccessPointInfo, Option<String>)>,
}

/// A target's parent, SCP ids and RCP ids.
pub type OrgTarget = (Option<OrgParent>, Vec<String>, Vec<String>);

#[derive(Debug, Clone, Default)]
pub struct World {
    pub accounts: BTreeMap<String, Account>,
    /// (account, operation) pairs that answer AccessDenied.
    pub denied: BTreeSet<(String, String)>,
    /// (account, operation) pairs that get no answer.
    pub unreachable: BTreeSet<(String, String)>,
    /// (account, operation) pairs throttled through every retry.
    pub throttled: BTreeSet<(String, String)>,
    /// The account whose credentials read the organization's policies, if configured.
    pub org_reader: Option<String>,
    /// Organization targets (account, OU, root id) → parent, SCP ids, RCP ids.
    pub org_tree: BTreeMap<String, OrgTarget>,
    /// `DescribePolicy` output by policy id.
    pub org_policies: BTreeMap<String, Value>,
}

/// The knowledge-center scenario with one fault: A's key policy does not name B.
pub fn kc_world() -> World {
    let mut a = Account::default();
    a.buckets.insert(
        BUCKET.into(),
        Bucket {
            region: "us-west-2".into(),
            policy: Some(json!({"Version": "2012-10-17", "Statement": [{"Sid": "CrossAccountRead", "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{B}:role/reader")}, "Action": "s3:GetObject",
                "Resource": format!("arn:aws:s3:::{BUCKET}/*")}]}).to_string()),
            encryption: Some(EncryptionRule {
                algorithm: "aws:kms".into(),
                kms_key_id: Some(KEY_ARN.into()),
                bucket_key_enabled: false,
            }),
            objects: BTreeMap::from([(
                OBJECT.to_owned(),
                ObjectHead {
                    sse: Some("aws:kms".into()),
                    kms_key_id: Some(KEY_ARN.into()),
                    bucket_key_enabled: false,
                    version_id: None,
                },
            )]),
            ownership: Some("BucketOwnerEnforced".into()),
            acl: owner_full_control(A),
            object_acls: BTreeMap::from([(OBJECT.to_owned(), owner_full_control(A))]),
        },
    );
    a.keys.insert(
        KEY_ARN.into(),
        Key {
            info: KeyInfo {
                arn: KEY_ARN.into(),
                key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
                key_manager: "CUSTOMER".into(),
                key_state: "Enabled".into(),
                multi_region: false,
            },
            policy: json!({"Version": "2012-10-17", "Statement": [{"Sid": "Enable IAM User Permissions",
                "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{A}:root")}, "Action": "kms:*", "Resource": "*"}]})
            .to_string(),
            aliases: vec!["alias/reports".into()],
        },
    );
    let mut b = Account::default();
    let managed = format!("arn:aws:iam::{B}:policy/decrypt-reports");
    b.roles.insert(
        "reader".into(),
        Role {
            info: Some(IdentityInfo {
                arn: format!("arn:aws:iam::{B}:role/reader"),
                path: "/".into(),
                id: Some("AROA4444EXAMPLEREADER".into()),
                permissions_boundary: None,
                tags: Vec::new(),
                trust_policy: None,
            }),
            inline: BTreeMap::from([(
                "read-reports".to_owned(),
                // IAM hands inline documents out URL-encoded.
                percent_encoding::utf8_percent_encode(
                    &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                        "Resource": format!("arn:aws:s3:::{BUCKET}/*")}]}).to_string(),
                    percent_encoding::NON_ALPHANUMERIC,
                )
                .to_string(),
            )]),
            attached: vec![managed.clone()],
        },
    );
    b.policies.insert(
        managed,
        (
            "v2".into(),
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY_ARN}]})
                .to_string(),
        ),
    );
    World {
        accounts: BTreeMap::from([(A.to_owned(), a), (B.to_owned(), b)]),
        ..World::default()
    }
}

/// The default ACL: the owner, with `FULL_CONTROL`.
pub fn owner_full_control(account: &str) -> Acl {
    Acl {
        owner_id: Some(canonical(account)),
        grants: vec![auditor::snapshot::AclGrant {
            grantee: auditor::snapshot::Grantee::CanonicalUser {
                id: canonical(account),
            },
            permission: auditor::snapshot::AclPermission::FullControl,
        }],
    }
}

/// Accounts over a shared world; `home` is read without a session.
#[derive(Debug)]
pub struct FakeAccounts {
    pub world: Arc<World>,
    pub home: String,
    sessions: Mutex<BTreeSet<String>>,
}

impl FakeAccounts {
    pub fn new(world: World, home: &str) -> FakeAccounts {
        FakeAccounts {
            world: Arc::new(world),
            home: home.to_owned(),
            sessions: Mutex::new(BTreeSet::new()),
        }
    }
}

impl Accounts for FakeAccounts {
    type Reader = FakeReader;

    async fn org_reader(&self) -> Option<Read<Access<FakeReader>>> {
        let account = self.world.org_reader.clone()?;
        Some(self.reader(&account).await)
    }

    async fn reader(&self, account: &str) -> Read<Access<FakeReader>> {
        let reader = FakeReader {
            world: self.world.clone(),
            account: account.to_owned(),
        };
        if account == self.home {
            return Ok(Access {
                reader,
                assumed_role: false,
            });
        }
        reader.check("sts:AssumeRole")?;
        let new = self
            .sessions
            .lock()
            .map(|mut s| s.insert(account.to_owned()))
            .unwrap_or(true);
        Ok(Access {
            reader,
            assumed_role: new,
        })
    }
}

#[derive(Debug, Clone)]
pub struct FakeReader {
    world: Arc<World>,
    account: String,
}

impl FakeReader {
    fn check(&self, op: &str) -> Read<()> {
        let k = (self.account.clone(), op.to_owned());
        if self.world.unreachable.contains(&k) {
            return Err(ReadError::Transport {
                message: "connection refused".into(),
            });
        }
        if self.world.throttled.contains(&k) {
            return Err(ReadError::Transient {
                code: "Throttling".into(),
                message: Some("Rate exceeded".into()),
            });
        }
        if self.world.denied.contains(&k) {
            return Err(ReadError::Denied {
                code: "AccessDenied".into(),
                message: Some(format!("not authorized to perform: {op}")),
            });
        }
        Ok(())
    }

    fn account(&self) -> Account {
        self.world
            .accounts
            .get(&self.account)
            .cloned()
            .unwrap_or_default()
    }

    fn bucket(&self, bucket: &str) -> Read<Bucket> {
        self.account()
            .buckets
            .get(bucket)
            .cloned()
            .ok_or(ReadError::Denied {
                code: "AccessDenied".into(),
                message: Some("the expected bucket owner does not own it".into()),
            })
    }

    fn key(&self, key: &str) -> Option<Key> {
        let acct = self.account();
        let arn = acct
            .keys
            .values()
            .find(|k| {
                k.info.arn == key
                    || k.aliases
                        .iter()
                        .any(|a| a == key || key.ends_with(&format!(":{a}")))
            })
            .map(|k| k.info.arn.clone())?;
        acct.keys.get(&arn).cloned()
    }
}

impl AccessPointReads for FakeReader {
    async fn access_point(&self, _: &str, name: &str) -> Read<Option<AccessPointInfo>> {
        self.check("s3:GetAccessPoint")?;
        Ok(self
            .account()
            .access_points
            .get(name)
            .map(|(ap, _)| ap.clone()))
    }
    async fn access_point_policy(&self, _: &str, name: &str) -> Read<Option<String>> {
        self.check("s3:GetAccessPointPolicy")?;
        match self.account().access_points.get(name) {
            Some((_, policy)) => Ok(policy.clone()),
            None => Err(ReadError::Service {
                code: "NoSuchAccessPoint".into(),
                message: None,
            }),
        }
    }
}

impl BucketReads for FakeReader {
    async fn bucket_region(&self, _: &str, bucket: &str) -> Read<String> {
        self.check("s3:GetBucketLocation")?;
        Ok(self.bucket(bucket)?.region)
    }
    async fn bucket_policy(&self, _: &str, bucket: &str) -> Read<Option<String>> {
        self.check("s3:GetBucketPolicy")?;
        Ok(self.bucket(bucket)?.policy)
    }
    async fn bucket_encryption(&self, _: &str, bucket: &str) -> Read<Option<EncryptionRule>> {
        self.check("s3:GetBucketEncryption")?;
        Ok(self.bucket(bucket)?.encryption)
    }
    async fn ownership_controls(&self, _: &str, bucket: &str) -> Read<Option<String>> {
        self.check("s3:GetBucketOwnershipControls")?;
        Ok(self.bucket(bucket)?.ownership)
    }
    async fn public_access_block(&self, _: &str, bucket: &str) -> Read<Option<PublicAccessFlags>> {
        self.check("s3:GetPublicAccessBlock")?;
        self.bucket(bucket)?;
        Ok(None)
    }
    async fn head_object(
        &self,
        _: &str,
        bucket: &str,
        key: &str,
        _: Option<&str>,
    ) -> Read<Option<ObjectHead>> {
        self.check("s3:HeadObject")?;
        Ok(self.bucket(bucket)?.objects.get(key).cloned())
    }
    async fn canonical_id(&self) -> Read<String> {
        self.check("s3:ListBuckets")?;
        Ok(canonical(&self.account))
    }
    async fn bucket_acl(&self, _: &str, bucket: &str) -> Read<Acl> {
        self.check("s3:GetBucketAcl")?;
        Ok(self.bucket(bucket)?.acl)
    }
    async fn object_acl(
        &self,
        _: &str,
        bucket: &str,
        key: &str,
        _: Option<&str>,
    ) -> Read<Option<Acl>> {
        self.check("s3:GetObjectAcl")?;
        Ok(self.bucket(bucket)?.object_acls.get(key).cloned())
    }
}

impl KeyReads for FakeReader {
    async fn describe_key(&self, _: &str, key: &str) -> Read<Option<KeyInfo>> {
        self.check("kms:DescribeKey")?;
        Ok(self.key(key).map(|k| k.info))
    }
    async fn key_policy(&self, _: &str, key: &str) -> Read<String> {
        self.check("kms:GetKeyPolicy")?;
        self.key(key).map(|k| k.policy).ok_or(ReadError::Service {
            code: "NotFoundException".into(),
            message: None,
        })
    }
    async fn grants(&self, _: &str, _: &str) -> Read<Vec<Value>> {
        self.check("kms:ListGrants")?;
        Ok(Vec::new())
    }
    async fn aliases(&self, _: &str, key: &str) -> Read<Vec<String>> {
        self.check("kms:ListAliases")?;
        Ok(self.key(key).map(|k| k.aliases).unwrap_or_default())
    }
}

impl IdentityReads for FakeReader {
    async fn identity(&self, _: IdentityKind, name: &str) -> Read<Option<IdentityInfo>> {
        self.check("iam:GetRole")?;
        Ok(self.account().roles.get(name).and_then(|r| r.info.clone()))
    }
    async fn inline_policy_names(&self, _: IdentityKind, name: &str) -> Read<Vec<String>> {
        self.check("iam:ListRolePolicies")?;
        Ok(self
            .account()
            .roles
            .get(name)
            .map(|r| r.inline.keys().cloned().collect())
            .unwrap_or_default())
    }
    async fn inline_policy(&self, _: IdentityKind, name: &str, policy: &str) -> Read<String> {
        self.check("iam:GetRolePolicy")?;
        let doc = self
            .account()
            .roles
            .get(name)
            .and_then(|r| r.inline.get(policy).cloned())
            .unwrap_or_default();
        // The SDK implementation decodes; so must every implementation of the port.
        Ok(percent_encoding::percent_decode_str(&doc)
            .decode_utf8_lossy()
            .into_owned())
    }
    async fn attached_policies(&self, _: IdentityKind, name: &str) -> Read<Vec<String>> {
        self.check("iam:ListAttachedRolePolicies")?;
        Ok(self
            .account()
            .roles
            .get(name)
            .map(|r| r.attached.clone())
            .unwrap_or_default())
    }
    async fn groups_for_user(&self, _: &str) -> Read<Vec<String>> {
        self.check("iam:ListGroupsForUser")?;
        Ok(Vec::new())
    }
    async fn attached_policy_versions(&self) -> Read<AttachedPolicies> {
        self.check("iam:ListPolicies")?;
        Ok(AttachedPolicies {
            by_arn: self
                .account()
                .policies
                .iter()
                .map(|(arn, (v, _))| {
                    (
                        arn.clone(),
                        PolicyVersionRef {
                            name: None,
                            default_version: v.clone(),
                        },
                    )
                })
                .collect(),
            complete: true,
        })
    }
    async fn policy(&self, arn: &str) -> Read<PolicyVersionRef> {
        self.check("iam:GetPolicy")?;
        let (v, _) = self
            .account()
            .policies
            .get(arn)
            .cloned()
            .unwrap_or_default();
        Ok(PolicyVersionRef {
            name: None,
            default_version: v,
        })
    }
    async fn policy_version(&self, arn: &str, _: &str) -> Read<String> {
        self.check("iam:GetPolicyVersion")?;
        Ok(self
            .account()
            .policies
            .get(arn)
            .map(|(_, d)| d.clone())
            .unwrap_or_default())
    }
}

impl OrgReads for FakeReader {
    async fn organization(&self) -> Read<Option<OrgInfo>> {
        self.check("organizations:DescribeOrganization")?;
        Ok(self.account().org)
    }
    async fn parents(&self, child: &str) -> Read<Vec<OrgParent>> {
        self.check("organizations:ListParents")?;
        Ok(self
            .world
            .org_tree
            .get(child)
            .and_then(|(p, _, _)| p.clone())
            .into_iter()
            .collect())
    }
    async fn policies_for_target(&self, target: &str, kind: OrgPolicyType) -> Read<Vec<String>> {
        self.check("organizations:ListPoliciesForTarget")?;
        let (_, scp, rcp) = self.world.org_tree.get(target).cloned().unwrap_or_default();
        Ok(if kind == OrgPolicyType::Scp { scp } else { rcp })
    }
    async fn describe_policy(&self, id: &str) -> Read<Value> {
        self.check("organizations:DescribePolicy")?;
        self.world
            .org_policies
            .get(id)
            .cloned()
            .ok_or(ReadError::Service {
                code: "PolicyNotFoundException".into(),
                message: None,
            })
    }
    async fn children(&self, parent: &str, kind: OrgChildType) -> Read<Vec<String>> {
        self.check("organizations:ListChildren")?;
        Ok(self
            .world
            .org_tree
            .iter()
            .filter(|(_, (p, _, _))| p.as_ref().is_some_and(|p| p.id == parent))
            .filter(|(id, _)| (kind == OrgChildType::Ou) == id.starts_with("ou-"))
            .map(|(id, _)| id.clone())
            .collect())
    }
    async fn targets_for_policy(&self, policy: &str) -> Read<Vec<String>> {
        self.check("organizations:ListTargetsForPolicy")?;
        Ok(self
            .world
            .org_tree
            .iter()
            .filter(|(_, (_, scp, rcp))| scp.iter().chain(rcp).any(|p| p == policy))
            .map(|(id, _)| id.clone())
            .collect())
    }
}

impl NetworkReads for FakeReader {
    async fn vpc_endpoint(&self, _region: &str, id: &str) -> Read<Option<Value>> {
        self.check("ec2:DescribeVpcEndpoints")?;
        Ok(self.account().vpc_endpoints.get(id).cloned())
    }
}

/// Keeps what it is asked to publish; fails when `fail` is set, or once `fail_after`
/// messages were sent.
#[derive(Debug, Default)]
pub struct FakePublisher {
    pub sent: Mutex<Vec<Notification>>,
    pub fail: bool,
    pub fail_after: Option<usize>,
}

impl Publisher for FakePublisher {
    async fn publish(&self, n: &Notification) -> Result<String, ReadError> {
        if self.fail {
            return Err(ReadError::Transport {
                message: "timeout".into(),
            });
        }
        let mut sent = self.sent.lock().map_err(|_| ReadError::Transport {
            message: "poisoned".into(),
        })?;
        if self.fail_after.is_some_and(|n| sent.len() >= n) {
            return Err(ReadError::Transient {
                code: "Throttling".into(),
                message: None,
            });
        }
        sent.push(n.clone());
        Ok(format!("msg-{}", sent.len()))
    }
}

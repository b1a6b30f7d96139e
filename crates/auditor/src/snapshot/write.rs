//! The one writer of the snapshot format (`docs/snapshot-format.md`): a typed [`Snapshot`]
//! to the JSON document that [`Snapshot::from_text`] reads back.
//!
//! Reading and writing are inverses on the typed model: for every snapshot `s` the reader
//! accepts, reading `to_value(&s)` gives a snapshot equal to `s`. Policy documents are
//! written exactly as they were given ([`NamedPolicy::source`]); every other payload is
//! written with the fields the model keeps, in the shape the AWS CLI prints. Payload fields
//! the reader ignores (an object's `ContentLength`, a role's `CreateDate`) are not part of
//! the model and are not written.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::Account;
use super::{
    AclGrant, Bucket, CollectionError, DefaultEncryption, Grantee, Group, Iam, Key, KeyMetadata,
    ManagedPolicy, NamedPolicy, Object, ObjectOwnership, Organization, PublicAccessBlock, Role,
    Session, Snapshot, User,
};

impl Snapshot {
    /// The snapshot as the JSON document of `docs/snapshot-format.md`; see [`to_value`].
    pub fn to_value(&self) -> Value {
        to_value(self)
    }
}

/// Writes `snapshot` as the JSON document of `docs/snapshot-format.md`.
pub fn to_value(snapshot: &Snapshot) -> Value {
    let mut doc = Map::new();
    if let Some(d) = &snapshot.description {
        doc.insert("description".into(), json!(d));
    }
    let accounts: Map<String, Value> = snapshot
        .accounts
        .iter()
        .map(|(id, a)| (id.clone(), account(a)))
        .collect();
    doc.insert("accounts".into(), Value::Object(accounts));
    if !snapshot.collection_errors.is_empty() {
        doc.insert(
            "collection_errors".into(),
            snapshot
                .collection_errors
                .iter()
                .map(collection_error)
                .collect(),
        );
    }
    Value::Object(doc)
}

/// Inserts `key` when `value` is there.
fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), v);
    }
}

fn collection_error(e: &CollectionError) -> Value {
    let mut v = Map::new();
    put(&mut v, "account", e.account.as_ref().map(|a| json!(a)));
    v.insert("operation".into(), json!(e.operation));
    put(&mut v, "resource", e.resource.as_ref().map(|r| json!(r)));
    v.insert("error".into(), json!(e.error));
    put(&mut v, "message", e.message.as_ref().map(|m| json!(m)));
    Value::Object(v)
}

fn account(a: &Account) -> Value {
    let mut v = Map::new();
    put(
        &mut v,
        "canonical_id",
        a.canonical_id.as_ref().map(|c| json!(c)),
    );
    put(
        &mut v,
        "public_access_block",
        a.public_access_block.as_ref().map(public_access_block),
    );
    put(
        &mut v,
        "organization",
        a.organization.as_ref().map(organization),
    );
    put(&mut v, "iam", a.iam.as_ref().map(iam));
    if !a.s3.is_empty() {
        let buckets: Map<String, Value> =
            a.s3.iter().map(|(n, b)| (n.clone(), bucket(b))).collect();
        v.insert("s3".into(), Value::Object(buckets));
    }
    if !a.kms.is_empty() {
        let keys: Map<String, Value> = a.kms.iter().map(|(n, k)| (n.clone(), key(k))).collect();
        v.insert("kms".into(), Value::Object(keys));
    }
    if !a.sessions.is_empty() {
        let sessions: Map<String, Value> = a
            .sessions
            .iter()
            .map(|(arn, s)| (arn.clone(), session(s)))
            .collect();
        v.insert("sessions".into(), Value::Object(sessions));
    }
    if let Some(list) = &a.vpc_endpoints {
        let endpoints: Vec<Value> = list.iter().map(super::VpcEndpoint::to_value).collect();
        v.insert("vpc_endpoints".into(), json!({"VpcEndpoints": endpoints}));
    }
    if !a.access_points.is_empty() {
        let aps: Map<String, Value> = a
            .access_points
            .iter()
            .map(|(n, ap)| (n.clone(), ap.to_value()))
            .collect();
        v.insert("access_points".into(), Value::Object(aps));
    }
    Value::Object(v)
}

fn session(s: &Session) -> Value {
    let mut v = Map::new();
    put(
        &mut v,
        "policy",
        s.policy.as_ref().map(|p| p.source.clone()),
    );
    if !s.tags.is_empty() {
        let tags: Vec<Value> = s
            .tags
            .iter()
            .map(|(k, val)| json!({"key": k, "value": val}))
            .collect();
        v.insert("tags".into(), Value::Array(tags));
    }
    Value::Object(v)
}

pub(crate) fn organization(o: &Organization) -> Value {
    let levels = |levels: &[Vec<NamedPolicy>]| -> Value {
        levels
            .iter()
            .map(|level| level.iter().map(|p| p.source.clone()).collect::<Value>())
            .collect()
    };
    let mut v = Map::new();
    put(&mut v, "id", o.id.as_ref().map(|i| json!(i)));
    v.insert(
        "is_management_account".into(),
        json!(o.is_management_account),
    );
    put(
        &mut v,
        "management_account",
        o.management_account.as_ref().map(|m| json!(m)),
    );
    if !o.scp.is_empty() {
        v.insert("scp".into(), levels(&o.scp));
    }
    if !o.rcp.is_empty() {
        v.insert("rcp".into(), levels(&o.rcp));
    }
    Value::Object(v)
}

/// `get-account-authorization-details` output.
fn iam(i: &Iam) -> Value {
    json!({
        "RoleDetailList": i.roles.iter().map(role).collect::<Vec<_>>(),
        "UserDetailList": i.users.iter().map(user).collect::<Vec<_>>(),
        "GroupDetailList": i.groups.iter().map(group).collect::<Vec<_>>(),
        "Policies": i.managed_policies.values().map(managed_policy).collect::<Vec<_>>(),
    })
}

fn inline_list(policies: &[NamedPolicy]) -> Value {
    policies
        .iter()
        .map(|p| json!({"PolicyName": p.policy_name.clone().unwrap_or_default(), "PolicyDocument": p.source}))
        .collect()
}

fn attached_list(arns: &[String]) -> Value {
    arns.iter().map(|a| json!({"PolicyArn": a})).collect()
}

fn tag_list(tags: &BTreeMap<String, String>) -> Value {
    tags.iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect()
}

/// The fields roles and users share.
#[expect(
    clippy::too_many_arguments,
    reason = "the fields of a RoleDetailList/UserDetailList entry, written in one place"
)]
fn principal(
    name_key: &str,
    id_key: &str,
    inline_key: &str,
    path: &str,
    name: &str,
    id: Option<&String>,
    arn: &str,
    inline: &[NamedPolicy],
    attached: &[String],
    boundary: Option<&String>,
    tags: &BTreeMap<String, String>,
) -> Map<String, Value> {
    let mut v = Map::new();
    v.insert("Path".into(), json!(path));
    v.insert(name_key.into(), json!(name));
    put(&mut v, id_key, id.map(|i| json!(i)));
    v.insert("Arn".into(), json!(arn));
    v.insert(inline_key.into(), inline_list(inline));
    v.insert("AttachedManagedPolicies".into(), attached_list(attached));
    put(
        &mut v,
        "PermissionsBoundary",
        boundary.map(|b| json!({"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": b})),
    );
    v.insert("Tags".into(), tag_list(tags));
    v
}

pub(crate) fn role(r: &Role) -> Value {
    let mut v = principal(
        "RoleName",
        "RoleId",
        "RolePolicyList",
        &r.path,
        &r.name,
        r.id.as_ref(),
        &r.arn,
        &r.inline_policies,
        &r.attached_policies,
        r.permissions_boundary.as_ref(),
        &r.tags,
    );
    put(
        &mut v,
        "AssumeRolePolicyDocument",
        r.trust_policy.as_ref().map(|p| p.source.clone()),
    );
    Value::Object(v)
}

pub(crate) fn user(u: &User) -> Value {
    let mut v = principal(
        "UserName",
        "UserId",
        "UserPolicyList",
        &u.path,
        &u.name,
        u.id.as_ref(),
        &u.arn,
        &u.inline_policies,
        &u.attached_policies,
        u.permissions_boundary.as_ref(),
        &u.tags,
    );
    v.insert("GroupList".into(), json!(u.groups));
    Value::Object(v)
}

pub(crate) fn group(g: &Group) -> Value {
    let mut v = Map::new();
    v.insert("Path".into(), json!(g.path));
    v.insert("GroupName".into(), json!(g.name));
    put(&mut v, "GroupId", g.id.as_ref().map(|i| json!(i)));
    put(&mut v, "Arn", g.arn.as_ref().map(|a| json!(a)));
    v.insert("GroupPolicyList".into(), inline_list(&g.inline_policies));
    v.insert(
        "AttachedManagedPolicies".into(),
        attached_list(&g.attached_policies),
    );
    Value::Object(v)
}

/// A `Policies` entry: only the default version is kept, so it is the only one written.
pub(crate) fn managed_policy(p: &ManagedPolicy) -> Value {
    let mut v = Map::new();
    v.insert("Arn".into(), json!(p.arn));
    put(&mut v, "PolicyName", p.name.as_ref().map(|n| json!(n)));
    put(
        &mut v,
        "DefaultVersionId",
        p.default_version_id.as_ref().map(|d| json!(d)),
    );
    if let Some(doc) = &p.document {
        let mut version = Map::new();
        version.insert("Document".into(), doc.source.clone());
        put(
            &mut version,
            "VersionId",
            p.default_version_id.as_ref().map(|d| json!(d)),
        );
        version.insert("IsDefaultVersion".into(), json!(true));
        v.insert(
            "PolicyVersionList".into(),
            Value::Array(vec![Value::Object(version)]),
        );
    }
    Value::Object(v)
}

pub(crate) fn bucket(b: &Bucket) -> Value {
    let mut v = Map::new();
    v.insert("region".into(), json!(b.region));
    put(
        &mut v,
        "policy",
        b.policy.as_ref().map(|p| p.source.clone()),
    );
    put(&mut v, "encryption", b.encryption.as_ref().map(encryption));
    put(
        &mut v,
        "ownership_controls",
        b.ownership.map(ownership_controls),
    );
    put(
        &mut v,
        "public_access_block",
        b.public_access_block.as_ref().map(public_access_block),
    );
    if b.acl_owner_id.is_some() || !b.acl_grants.is_empty() {
        v.insert(
            "acl".into(),
            Value::Object(owner_and_grants(b.acl_owner_id.as_ref(), &b.acl_grants)),
        );
    }
    put(
        &mut v,
        "request_payment",
        b.request_payment.as_ref().map(|p| json!(p)),
    );
    if !b.objects.is_empty() {
        let objects: Map<String, Value> = b
            .objects
            .iter()
            .map(|(k, o)| (k.clone(), object(o)))
            .collect();
        v.insert("objects".into(), Value::Object(objects));
    }
    Value::Object(v)
}

/// `get-bucket-encryption` output.
fn encryption(e: &DefaultEncryption) -> Value {
    let mut default = Map::new();
    default.insert("SSEAlgorithm".into(), json!(e.algorithm));
    put(
        &mut default,
        "KMSMasterKeyID",
        e.kms_key_id.as_ref().map(|k| json!(k)),
    );
    json!({"ServerSideEncryptionConfiguration": {"Rules": [
        {"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": e.bucket_key_enabled}
    ]}})
}

/// `get-bucket-ownership-controls` output.
fn ownership_controls(o: ObjectOwnership) -> Value {
    json!({"OwnershipControls": {"Rules": [{"ObjectOwnership": o.as_str()}]}})
}

/// `get-public-access-block` (bucket) or `s3control get-public-access-block` (account) output.
fn public_access_block(p: &PublicAccessBlock) -> Value {
    json!({"PublicAccessBlockConfiguration": {
        "BlockPublicAcls": p.block_public_acls,
        "IgnorePublicAcls": p.ignore_public_acls,
        "BlockPublicPolicy": p.block_public_policy,
        "RestrictPublicBuckets": p.restrict_public_buckets,
    }})
}

/// `Owner` and `Grants`, as `get-bucket-acl` and `get-object-acl` print them.
fn owner_and_grants(owner: Option<&String>, grants: &[AclGrant]) -> Map<String, Value> {
    let mut v = Map::new();
    put(&mut v, "Owner", owner.map(|id| json!({"ID": id})));
    if !grants.is_empty() {
        v.insert("Grants".into(), grants.iter().map(acl_grant).collect());
    }
    v
}

fn acl_grant(g: &AclGrant) -> Value {
    let grantee = match &g.grantee {
        Grantee::CanonicalUser { id } => json!({"Type": "CanonicalUser", "ID": id}),
        Grantee::Group { uri } => json!({"Type": "Group", "URI": uri}),
        Grantee::Email { address } => {
            json!({"Type": "AmazonCustomerByEmail", "EmailAddress": address})
        }
    };
    json!({"Grantee": grantee, "Permission": g.permission.as_str()})
}

/// `head-object` output with `get-object-acl`'s `Owner`/`Grants` and
/// `get-object-tagging`'s `TagSet` merged in.
fn object(o: &Object) -> Value {
    let mut v = owner_and_grants(o.owner_id.as_ref(), &o.grants);
    put(
        &mut v,
        "ServerSideEncryption",
        o.sse.as_ref().map(|s| json!(s)),
    );
    put(
        &mut v,
        "SSEKMSKeyId",
        o.kms_key_id.as_ref().map(|k| json!(k)),
    );
    v.insert("BucketKeyEnabled".into(), json!(o.bucket_key_enabled));
    put(&mut v, "VersionId", o.version_id.as_ref().map(|x| json!(x)));
    if !o.tags.is_empty() {
        v.insert("TagSet".into(), tag_list(&o.tags));
    }
    Value::Object(v)
}

pub(crate) fn key(k: &Key) -> Value {
    let mut v = Map::new();
    v.insert("metadata".into(), key_metadata(&k.metadata));
    put(
        &mut v,
        "policy",
        k.policy.as_ref().map(|p| p.source.clone()),
    );
    // An empty list and an absent one read the same (no grants, no aliases).
    if !k.grants.is_empty() {
        v.insert(
            "grants".into(),
            k.grants.iter().map(|g| g.raw.clone()).collect(),
        );
    }
    if !k.aliases.is_empty() {
        v.insert("aliases".into(), json!(k.aliases));
    }
    Value::Object(v)
}

/// `describe-key`'s `KeyMetadata`, with the fields the model keeps.
fn key_metadata(m: &KeyMetadata) -> Value {
    json!({
        "KeyId": m.key_id,
        "Arn": m.arn,
        "KeyManager": m.key_manager.as_str(),
        "KeyState": m.key_state.as_str(),
        "MultiRegion": m.multi_region,
    })
}

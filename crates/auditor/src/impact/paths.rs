//! The read paths a snapshot intends: (principal, bucket, object or prefix, operation) that
//! some policy in either account names — the bucket policy, the key policy or a grant of a
//! key the bucket's objects are encrypted with, or the caller's identity policies naming the
//! bucket. Only principals outside the bucket's account are paths. This is the one
//! enumeration of paths: `impact` compares their verdicts before and after a change, `sweep`
//! checks them all.
//!
//! What the enumeration looks up again and again (the owner of a bucket by name) is indexed
//! once per snapshot ([`Index`]), so that an organization of a thousand accounts is
//! enumerated in time proportional to its policies, not to their square.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use iam_eval::policy::{ResourceEntry, Statement};
use iam_eval::principal::PolicyPrincipal;
use iam_eval::Effect;

use crate::refs::{self, Arn, BucketRef, Partition};
use crate::snapshot::{Bucket, Key, NamedPolicy, Snapshot};

/// The object of a path: the key a request is diagnosed on, and the object as the path names
/// it (the same key when the snapshot lists the object, else the granted prefix ending in
/// `*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PathObject {
    /// The key diagnosed.
    pub key: String,
    /// The listed key, or the granted pattern (`reports/*`).
    pub shown: String,
}

/// Which side of the read intends a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Source {
    /// A bucket policy statement.
    BucketPolicy,
    /// A key policy statement or a grant of a key the bucket uses.
    Key,
    /// An identity policy of the caller.
    Identity,
}

/// One read path and the policy that intends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadPath {
    /// The principal; a role rather than one of its sessions.
    pub principal: String,
    /// The account that owns the bucket.
    pub owner: String,
    /// The bucket.
    pub bucket: BucketRef,
    /// The object.
    pub object: PathObject,
    /// The policy statement or grant that intends the path.
    pub intended_by: String,
    /// Which side intends it.
    pub source: Source,
    /// Whether the bucket's side intends it (bucket policy, key policy, grant) rather than
    /// only the caller's identity policies.
    pub resource_side: bool,
    /// A whole-bucket stand-in (a key policy or grant of a bucket whose objects are not
    /// listed), dropped when a more precise path of the same principal and bucket exists.
    pub stand_in: bool,
}

/// A bucket policy statement that allows an object read to a principal of another account
/// but whose `Resource` names no object of the bucket (only the bucket ARN, say): it grants
/// no object read, and the sweep says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Objectless {
    /// The principal it names.
    pub principal: String,
    /// The bucket owner.
    pub owner: String,
    /// The bucket.
    pub bucket: String,
    /// The statement.
    pub statement: String,
}

/// The operation every path is checked for.
pub(crate) const ACTION: &str = "s3:GetObject";

/// The lookups the enumeration repeats, made once per snapshot.
pub(crate) struct Index<'s> {
    /// The snapshot.
    pub snap: &'s Snapshot,
    /// Bucket name → owning account.
    bucket_owner: HashMap<&'s str, &'s str>,
    /// Canonical user id → account.
    canonical: HashMap<&'s str, &'s str>,
}

impl<'s> Index<'s> {
    /// Indexes `snap`.
    pub fn new(snap: &'s Snapshot) -> Index<'s> {
        let mut bucket_owner = HashMap::new();
        let mut canonical = HashMap::new();
        for (id, account) in &snap.accounts {
            for name in account.s3.keys() {
                // The first account holding the name, as `Snapshot::bucket` finds it.
                bucket_owner.entry(name.as_str()).or_insert(id.as_str());
            }
            if let Some(c) = &account.canonical_id {
                canonical.insert(c.as_str(), id.as_str());
            }
        }
        Index {
            snap,
            bucket_owner,
            canonical,
        }
    }

    /// A bucket by name, with its owner.
    pub fn bucket(&self, name: &str) -> Option<(&'s str, &'s Bucket)> {
        let owner = *self.bucket_owner.get(name)?;
        let bucket = self.snap.account(owner)?.s3.get(name)?;
        Some((owner, bucket))
    }

    /// The account whose canonical user id is `id`.
    pub fn account_by_canonical_id(&self, id: &str) -> Option<&'s str> {
        self.canonical.get(id).copied()
    }
}

/// Every read path `snap` intends (a bucket policy statement that names no object intends
/// none).
#[cfg(test)]
pub(crate) fn read_paths(snap: &Snapshot) -> Vec<ReadPath> {
    enumerate(&Index::new(snap)).0
}

/// Every read path the indexed snapshot intends, and the bucket policy statements that
/// allow an object read but name no object.
pub(crate) fn enumerate(index: &Index<'_>) -> (Vec<ReadPath>, Vec<Objectless>) {
    let mut out = Vec::new();
    let mut objectless = Vec::new();
    bucket_policy_paths(index, &mut out, &mut objectless);
    key_paths(index, &mut out);
    identity_paths(index, &mut out);
    (out, objectless)
}

/// One path with every policy that intends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Intended {
    /// The principal.
    pub principal: String,
    /// The bucket owner.
    pub owner: String,
    /// The bucket.
    pub bucket: BucketRef,
    /// The object.
    pub object: PathObject,
    /// The statements and grants that intend it, in the order found.
    pub intended_by: Vec<String>,
    /// The sides that intend it.
    pub sources: Vec<Source>,
}

/// The paths of `paths` merged by (bucket, principal, object), each with every policy that
/// intends it; a whole-bucket stand-in is dropped when the principal has a precise path on
/// the bucket (as `impact` does).
pub(crate) fn merge(paths: Vec<ReadPath>) -> Vec<Intended> {
    let mut by: BTreeMap<(String, String, String), (Intended, bool)> = BTreeMap::new();
    for p in paths {
        let key = (
            p.bucket.name.clone(),
            p.principal.clone(),
            p.object.shown.clone(),
        );
        let (entry, stand_in) = by.entry(key).or_insert_with(|| {
            (
                Intended {
                    principal: p.principal.clone(),
                    owner: p.owner.clone(),
                    bucket: p.bucket.clone(),
                    object: p.object.clone(),
                    intended_by: Vec::new(),
                    sources: Vec::new(),
                },
                p.stand_in,
            )
        });
        *stand_in &= p.stand_in;
        if !entry.intended_by.contains(&p.intended_by) {
            entry.intended_by.push(p.intended_by);
        }
        if !entry.sources.contains(&p.source) {
            entry.sources.push(p.source);
        }
    }
    let precise: std::collections::HashSet<(String, String)> = by
        .iter()
        .filter(|(_, (_, stand_in))| !stand_in)
        .map(|((bucket, principal, _), _)| (bucket.clone(), principal.clone()))
        .collect();
    by.into_iter()
        .filter(|((bucket, principal, _), (_, stand_in))| {
            !stand_in || !precise.contains(&(bucket.clone(), principal.clone()))
        })
        .map(|(_, (p, _))| p)
        .collect()
}

impl Intended {
    /// Whether the path is checked (its verdict reported): the bucket policy intends it, or
    /// both the key side and the caller's identity policies do. A path only one other side
    /// intends (a key policy naming a principal whose IAM does not ask for the bucket; an
    /// identity policy asking for a bucket whose owner grants nothing) is not a path anyone on
    /// both sides agreed on. (The live path index, `state::evaluate`, still records every
    /// enumerated path, one-sided ones included: the change-impact check compares them.)
    pub fn checked(&self) -> bool {
        self.sources.contains(&Source::BucketPolicy)
            || (self.sources.contains(&Source::Key) && self.sources.contains(&Source::Identity))
    }
}

/// How a path names the statement that intends it: `<policy> statement <index> (Sid <sid>)`.
pub(crate) fn statement_label(policy: &str, st: &Statement) -> String {
    match st.sid.as_deref() {
        Some(sid) => format!("{policy} statement {} (Sid {sid})", st.index),
        None => format!("{policy} statement {}", st.index),
    }
}

/// A session ARN's role (the path is the role's, whichever session reads); other ARNs as
/// they are.
fn as_role(principal: &str) -> String {
    refs::role_of_session(principal).unwrap_or_else(|| principal.to_owned())
}

/// Whether a statement allows `service:name` (honouring `NotAction`).
fn allows(st: &Statement, service: &str, name: &str) -> bool {
    st.effect == Effect::Allow
        && st
            .action
            .entries
            .iter()
            .any(|a| a.is_match_lower(service, name))
            != st.action.not
}

/// Paths intended by bucket policy statements that allow an object read to principals of
/// another account, in the order of accounts, buckets, statements and principals.
fn bucket_policy_paths(
    index: &Index<'_>,
    out: &mut Vec<ReadPath>,
    objectless: &mut Vec<Objectless>,
) {
    let snap = index.snap;
    for (owner, account) in &snap.accounts {
        for (bucket_name, bucket) in &account.s3 {
            let Some(policy) = &bucket.policy else {
                continue;
            };
            for st in &policy.policy.statements {
                let Some(spec) = st
                    .principal
                    .as_ref()
                    .filter(|p| !p.not && allows(st, "s3", "getobject"))
                else {
                    continue;
                };
                let granted_by = statement_label(&policy.name, st);
                // The bucket's partition follows its Region.
                let bucket_ref = BucketRef::new(Partition::of_region(&bucket.region), bucket_name);
                let objects = objects_matching(
                    index,
                    owner,
                    &bucket_ref,
                    &statement_resources(&policy.document, st.index),
                );
                for p in &spec.entries {
                    for principal in principals_for(snap, p, owner, &bucket_ref) {
                        if objects.is_empty() {
                            objectless.push(Objectless {
                                principal: as_role(&principal),
                                owner: owner.clone(),
                                bucket: bucket_name.clone(),
                                statement: granted_by.clone(),
                            });
                        }
                        for object in &objects {
                            out.push(ReadPath {
                                principal: as_role(&principal),
                                owner: owner.clone(),
                                bucket: bucket_ref.clone(),
                                object: object.clone(),
                                intended_by: granted_by.clone(),
                                source: Source::BucketPolicy,
                                resource_side: true,
                                stand_in: false,
                            });
                        }
                    }
                }
            }
        }
    }
}

/// The principals a policy principal stands for on a cross-account read path: a role, user
/// or session of another account as named; an account principal for the account's roles and
/// users whose identity policies reach the bucket, or — when the snapshot does not describe
/// the account's IAM — its root as a stand-in.
fn principals_for(
    snap: &Snapshot,
    p: &PolicyPrincipal,
    owner: &str,
    bucket: &BucketRef,
) -> Vec<String> {
    match p {
        PolicyPrincipal::Role { account, arn, .. } | PolicyPrincipal::User { account, arn, .. }
            if account != owner =>
        {
            vec![arn.clone()]
        }
        PolicyPrincipal::Session(arn) => match Arn::parse(arn) {
            Some(a) if a.account != owner => vec![arn.clone()],
            _ => Vec::new(),
        },
        PolicyPrincipal::Account(account) | PolicyPrincipal::AccountIn { account, .. }
            if account != owner =>
        {
            let Some(iam) = snap.account(account).and_then(|a| a.iam.as_ref()) else {
                return vec![refs::account_root(bucket.partition, account)];
            };
            // Delegation: the account's own principals whose identity policies reach the
            // bucket. None reaching it is no path: nobody in the account uses the grant.
            let object = bucket.objects_arn("*");
            let example = bucket.objects_arn("x");
            let reaches = |st: &Statement| {
                allows(st, "s3", "getobject")
                    && st.resource.as_ref().is_some_and(|r| {
                        !r.not
                            && r.entries.iter().any(|e| match e {
                                ResourceEntry::Any => true,
                                ResourceEntry::Arn(p) => {
                                    p.is_match(&object) || p.is_match(&example)
                                }
                                _ => false,
                            })
                    })
            };
            iam.roles
                .iter()
                .map(|r| &r.arn)
                .chain(iam.users.iter().map(|u| &u.arn))
                .filter(|arn| {
                    iam.principal_policies(arn).is_some_and(|pp| {
                        pp.identity.iter().any(|np| {
                            np.policy
                                .statements
                                .iter()
                                .any(|st| reaches(st) || names_objects_of(np, st, bucket))
                        })
                    })
                })
                .cloned()
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Whether statement `st` of `np` allows an object read on objects of `bucket` it names by
/// prefix (the object ARNs of `bucket/reports/*`): a role scoped to a prefix still uses the
/// bucket's grant to its account.
fn names_objects_of(np: &NamedPolicy, st: &Statement, bucket: &BucketRef) -> bool {
    let prefix = bucket.objects_arn("");
    allows(st, "s3", "getobject")
        && st.resource.as_ref().is_some_and(|r| !r.not)
        && statement_resources(&np.document, st.index)
            .iter()
            .any(|r| r.starts_with(&prefix))
}

/// A key to diagnose a path on, from the object part of the resource that grants it:
/// `reports/*` → `reports/example`, `2026-??.csv` → `2026-xx.csv`.
fn representative_key(pattern: &str) -> String {
    pattern.replace('*', "example").replace('?', "x")
}

/// The key a whole-bucket stand-in path of `principal` (a key policy or grant, which scopes
/// no object) is diagnosed on: the read that can happen is where the bucket policy and the
/// principal's own policies point. A key under the first object prefix the bucket policy
/// grants the principal (by name, by its account, or to everyone), else the first its
/// identity policies grant on the bucket; `example` when neither names a prefix. Diagnosing
/// `example` when only `reports/*` is granted would report a denial nobody meets.
fn stand_in_key(index: &Index<'_>, owner: &str, bucket: &BucketRef, principal: &str) -> String {
    let prefix = bucket.objects_arn("");
    let account = Arn::parse(principal).map(|a| a.account);
    let mut granted: Vec<String> = Vec::new();
    let bucket_policy = index
        .snap
        .account(owner)
        .and_then(|a| a.s3.get(&bucket.name))
        .and_then(|b| b.policy.as_ref());
    if let Some(policy) = bucket_policy {
        for st in &policy.policy.statements {
            let names = st
                .principal
                .as_ref()
                .filter(|p| !p.not && allows(st, "s3", "getobject"))
                .is_some_and(|spec| spec.entries.iter().any(|e| covers(e, principal, account)));
            if names {
                granted.extend(statement_resources(&policy.document, st.index));
            }
        }
    }
    let identity = account
        .and_then(|a| index.snap.account(a))
        .and_then(|a| a.iam.as_ref())
        .and_then(|iam| iam.principal_policies(principal));
    if let Some(pp) = identity {
        for np in &pp.identity {
            for st in &np.policy.statements {
                if allows(st, "s3", "getobject") && st.resource.as_ref().is_some_and(|r| !r.not) {
                    granted.extend(statement_resources(&np.document, st.index));
                }
            }
        }
    }
    granted
        .iter()
        .filter_map(|r| r.strip_prefix(&prefix))
        .find(|rest| !rest.is_empty() && !rest.starts_with(['*', '?']))
        .map_or_else(|| "example".to_owned(), representative_key)
}

/// Whether a policy principal names `principal` (a role or user ARN of `account`).
fn covers(p: &PolicyPrincipal, principal: &str, account: Option<&str>) -> bool {
    match p {
        PolicyPrincipal::Everyone => true,
        PolicyPrincipal::Account(a) | PolicyPrincipal::AccountIn { account: a, .. } => {
            Some(a.as_str()) == account
        }
        PolicyPrincipal::Role { arn, .. } | PolicyPrincipal::User { arn, .. } => arn == principal,
        PolicyPrincipal::Session(arn) => as_role(arn) == principal,
        _ => false,
    }
}

/// The `Resource` strings of statement `index` of a policy document.
fn statement_resources(document: &Value, index: usize) -> Vec<String> {
    match document.get("Statement") {
        Some(Value::Array(a)) => a.get(index).and_then(|s| s.get("Resource")).cloned(),
        Some(obj @ Value::Object(_)) if index == 0 => obj.get("Resource").cloned(),
        _ => None,
    }
    .map(|r| match r {
        Value::String(s) => vec![s],
        Value::Array(a) => a
            .into_iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    })
    .unwrap_or_default()
}

/// The listed objects of `bucket` that resource patterns (`Resource` entries) cover, or one
/// representative key under the first object prefix they grant (`example` under a pattern
/// that covers every object of the bucket, such as `*`); empty when they name no object of
/// the bucket.
fn objects_matching(
    index: &Index<'_>,
    owner: &str,
    bucket: &BucketRef,
    resources: &[String],
) -> Vec<PathObject> {
    let patterns: Vec<iam_eval::arn::ArnPattern> = resources
        .iter()
        .filter_map(|r| {
            if r == "*" {
                iam_eval::arn::ArnPattern::parse_resource("arn:*")
            } else {
                // Resource elements: a trailing `*` crosses colons.
                iam_eval::arn::ArnPattern::parse_resource(r)
            }
        })
        .collect();
    let listed: Vec<PathObject> = index
        .snap
        .account(owner)
        .and_then(|a| a.s3.get(&bucket.name))
        .map(|b| {
            b.objects
                .keys()
                .filter(|k| patterns.iter().any(|p| p.is_match(&bucket.objects_arn(k))))
                .map(|k| PathObject {
                    key: k.clone(),
                    shown: k.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    if !listed.is_empty() {
        return listed;
    }
    // A representative key under the granted prefix.
    let prefix = bucket.objects_arn("");
    let example = resources
        .iter()
        .find_map(|r| {
            r.strip_prefix(&prefix).map(|rest| PathObject {
                key: representative_key(rest),
                shown: rest.to_owned(),
            })
        })
        .filter(|o| !o.key.is_empty())
        .or_else(|| {
            // A pattern that covers every object of the bucket without naming it (`*`, or
            // every object of every bucket).
            let any = bucket.objects_arn("example");
            patterns
                .iter()
                .any(|p| p.is_match(&any))
                .then(|| PathObject {
                    key: "example".into(),
                    shown: "*".into(),
                })
        });
    example.map(|o| vec![o]).unwrap_or_default()
}

/// The keys a bucket's objects are encrypted with: its default encryption key and the keys
/// of its listed objects, each with the listed objects it encrypts.
fn bucket_keys<'a>(
    snap: &'a Snapshot,
    owner: &str,
    bucket: &'a Bucket,
) -> Vec<(&'a str, &'a Key, Vec<String>)> {
    let mut out: Vec<(&str, &Key, Vec<String>)> = Vec::new();
    let mut add = |reference: &str, object: Option<&String>| {
        let Some((key_owner, key)) = snap.key(reference, &bucket.region, owner) else {
            return;
        };
        let at = match out
            .iter()
            .position(|(_, k, _)| k.metadata.arn == key.metadata.arn)
        {
            Some(i) => i,
            None => {
                out.push((key_owner, key, Vec::new()));
                out.len() - 1
            }
        };
        if let (Some(o), Some(entry)) = (object, out.get_mut(at)) {
            entry.2.push(o.clone());
        }
    };
    if let Some(id) = bucket
        .encryption
        .as_ref()
        .and_then(|e| e.kms_key_id.as_ref())
    {
        add(id, None);
    }
    for (name, object) in &bucket.objects {
        if let Some(id) = &object.kms_key_id {
            add(id, Some(name));
        }
    }
    out
}

/// Paths intended by the key policy or a grant of a key a bucket uses.
fn key_paths(index: &Index<'_>, out: &mut Vec<ReadPath>) {
    let snap = index.snap;
    for (owner, account) in &snap.accounts {
        for (bucket_name, bucket) in &account.s3 {
            let bucket_ref = BucketRef::new(Partition::of_region(&bucket.region), bucket_name);
            for (_, key, encrypted) in bucket_keys(snap, owner, bucket) {
                let objects: Vec<(PathObject, bool)> = if encrypted.is_empty() {
                    vec![(
                        PathObject {
                            key: "example".into(),
                            shown: "*".into(),
                        },
                        true,
                    )]
                } else {
                    encrypted
                        .iter()
                        .map(|k| {
                            (
                                PathObject {
                                    key: k.clone(),
                                    shown: k.clone(),
                                },
                                false,
                            )
                        })
                        .collect()
                };
                let mut principals: Vec<(String, String)> = Vec::new();
                if let Some(policy) = &key.policy {
                    for st in &policy.policy.statements {
                        let Some(spec) = st
                            .principal
                            .as_ref()
                            .filter(|p| !p.not && allows(st, "kms", "decrypt"))
                        else {
                            continue;
                        };
                        let by = statement_label(&policy.name, st);
                        for p in &spec.entries {
                            for principal in principals_for(snap, p, owner, &bucket_ref) {
                                principals.push((principal, by.clone()));
                            }
                        }
                    }
                }
                for g in &key.grants {
                    let decrypts = g.grant.operations.iter().any(|o| o == "Decrypt");
                    let foreign = Arn::parse(&g.grant.grantee).is_some_and(|a| a.account != owner);
                    if decrypts && foreign {
                        let id = g.grant.grant_id.as_deref().unwrap_or("?");
                        principals.push((
                            g.grant.grantee.clone(),
                            format!("grant {id} of key {}", key.metadata.arn),
                        ));
                    }
                }
                for (principal, by) in principals {
                    let principal = as_role(&principal);
                    for (object, stand_in) in &objects {
                        let object = if *stand_in {
                            PathObject {
                                key: stand_in_key(index, owner, &bucket_ref, &principal),
                                shown: object.shown.clone(),
                            }
                        } else {
                            object.clone()
                        };
                        out.push(ReadPath {
                            principal: principal.clone(),
                            owner: owner.clone(),
                            bucket: bucket_ref.clone(),
                            object,
                            intended_by: by.clone(),
                            source: Source::Key,
                            resource_side: true,
                            stand_in: *stand_in,
                        });
                    }
                }
            }
        }
    }
}

/// Paths intended by identity policies of roles and users that name an object of a bucket
/// of another account (a `Resource` of `*` names no bucket, and intends no path).
fn identity_paths(index: &Index<'_>, out: &mut Vec<ReadPath>) {
    for (account_id, account) in &index.snap.accounts {
        let Some(iam) = &account.iam else { continue };
        let arns = iam
            .roles
            .iter()
            .map(|r| &r.arn)
            .chain(iam.users.iter().map(|u| &u.arn));
        for arn in arns {
            let Some(pp) = iam.principal_policies(arn) else {
                continue;
            };
            for np in &pp.identity {
                for st in &np.policy.statements {
                    let names_objects = st.resource.as_ref().is_some_and(|r| {
                        !r.not && r.entries.iter().any(|e| matches!(e, ResourceEntry::Arn(_)))
                    });
                    if !allows(st, "s3", "getobject") || !names_objects {
                        continue;
                    }
                    let by = statement_label(&np.name, st);
                    let resources = statement_resources(&np.document, st.index);
                    for resource in &resources {
                        let Some((partition, bucket_name, Some(_))) = refs::parse_s3_arn(resource)
                        else {
                            continue;
                        };
                        // Wildcards in the bucket name name no bucket in particular.
                        if bucket_name.contains(['*', '?']) {
                            continue;
                        }
                        let Some((owner, _)) = index.bucket(bucket_name) else {
                            continue;
                        };
                        if owner == account_id {
                            continue;
                        }
                        let bucket_ref = BucketRef::new(partition, bucket_name);
                        let objects = objects_matching(
                            index,
                            owner,
                            &bucket_ref,
                            std::slice::from_ref(resource),
                        );
                        for object in objects {
                            out.push(ReadPath {
                                principal: arn.clone(),
                                owner: owner.to_owned(),
                                bucket: bucket_ref.clone(),
                                object,
                                intended_by: by.clone(),
                                source: Source::Identity,
                                resource_side: false,
                                stand_in: false,
                            });
                        }
                    }
                }
            }
        }
    }
}

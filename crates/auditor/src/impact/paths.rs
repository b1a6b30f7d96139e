//! The read paths a snapshot intends: (principal, bucket, object or prefix, operation) that
//! some policy in either account names — the bucket policy (through
//! [`crate::sweep::bucket_policy_paths`], the sweep's own enumeration), the key policy or a
//! grant of a key the bucket's objects are encrypted with, or the caller's identity policies
//! naming the bucket. Only principals outside the bucket's account are paths, as in the sweep.

use iam_eval::policy::ResourceEntry;
use iam_eval::Effect;

use crate::refs::{self, Arn, BucketRef, Partition};
use crate::snapshot::{Bucket, Key, Snapshot};
use crate::sweep::{self, PathObject};

/// One read path and the policy that intends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadPath {
    /// The principal; a role rather than one of its sessions.
    pub principal: String,
    /// The bucket.
    pub bucket: BucketRef,
    /// The object.
    pub object: PathObject,
    /// The policy statement or grant that intends the path.
    pub intended_by: String,
    /// Whether the bucket's side intends it (bucket policy, key policy, grant) rather than
    /// only the caller's identity policies.
    pub resource_side: bool,
    /// A whole-bucket stand-in (a key policy or grant of a bucket whose objects are not
    /// listed), dropped when a more precise path of the same principal and bucket exists.
    pub stand_in: bool,
}

/// The operation every path is checked for.
pub(crate) const ACTION: &str = "s3:GetObject";

/// Every read path `snap` intends.
pub(crate) fn read_paths(snap: &Snapshot) -> Vec<ReadPath> {
    let mut out = Vec::new();
    for p in sweep::bucket_policy_paths(snap) {
        // A statement that names no object (only the bucket ARN) intends no object read.
        let Some(object) = p.object else { continue };
        out.push(ReadPath {
            principal: as_role(&p.principal),
            bucket: p.bucket,
            object,
            intended_by: p.granted_by,
            resource_side: true,
            stand_in: false,
        });
    }
    key_paths(snap, &mut out);
    identity_paths(snap, &mut out);
    out
}

/// A session ARN's role (the path is the role's, whichever session reads); other ARNs as
/// they are.
fn as_role(principal: &str) -> String {
    refs::role_of_session(principal).unwrap_or_else(|| principal.to_owned())
}

/// Whether a statement allows `service:name` (honouring `NotAction`).
fn allows(st: &iam_eval::policy::Statement, service: &str, name: &str) -> bool {
    st.effect == Effect::Allow
        && st
            .action
            .entries
            .iter()
            .any(|a| a.is_match_lower(service, name))
            != st.action.not
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
fn key_paths(snap: &Snapshot, out: &mut Vec<ReadPath>) {
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
                        let by = sweep::statement_label(&policy.name, st);
                        for p in &spec.entries {
                            for principal in sweep::principals_for(snap, p, owner, &bucket_ref) {
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
                    for (object, stand_in) in &objects {
                        out.push(ReadPath {
                            principal: as_role(&principal),
                            bucket: bucket_ref.clone(),
                            object: object.clone(),
                            intended_by: by.clone(),
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
fn identity_paths(snap: &Snapshot, out: &mut Vec<ReadPath>) {
    for (account_id, account) in &snap.accounts {
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
                    let sid = st
                        .sid
                        .as_deref()
                        .map(|s| format!(" (Sid {s})"))
                        .unwrap_or_default();
                    let by = format!("{} statement {}{sid}", np.name, st.index);
                    let resources = sweep::statement_resources(&np.document, st.index);
                    for resource in &resources {
                        let Some((partition, bucket_name, Some(_))) = refs::parse_s3_arn(resource)
                        else {
                            continue;
                        };
                        // Wildcards in the bucket name name no bucket in particular.
                        if bucket_name.contains(['*', '?']) {
                            continue;
                        }
                        let Some((owner, _)) = snap.bucket(bucket_name) else {
                            continue;
                        };
                        if owner == account_id {
                            continue;
                        }
                        let bucket_ref = BucketRef::new(partition, bucket_name);
                        let objects = sweep::objects_matching(
                            snap,
                            owner,
                            &bucket_ref,
                            std::slice::from_ref(resource),
                        );
                        for object in objects {
                            out.push(ReadPath {
                                principal: arn.clone(),
                                bucket: bucket_ref.clone(),
                                object,
                                intended_by: by.clone(),
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

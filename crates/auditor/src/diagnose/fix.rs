//! Fixes: the least-privilege change that removes one cause, addressed to the account that
//! must make it, as a statement, the whole patched policy, the AWS CLI command, and the typed
//! snapshot edits ([`Edit`]) used to verify it (rendered as a JSON patch for the report).

use serde_json::{json, Map, Value};

use iam_eval::{authorize, Caller, CallerKind, Evaluation, Layer, Named, PolicySet, Request};

use super::edit::{Edit, InlineHolder};
use super::findings::{Code, Fix};
use crate::snapshot::{NamedPolicy, Snapshot};

/// What a hop authorized, for addressing fixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// An object in a bucket.
    Bucket {
        account: String,
        bucket: String,
        region: String,
        /// The ARN of the object (or `bucket/*`) the hop concerns.
        object: String,
    },
    /// An object through an access point (the access point policy's side of the S3 hop).
    AccessPoint {
        /// The access point's owner.
        account: String,
        /// The access point name.
        name: String,
        /// The bucket behind it.
        bucket: String,
        /// The access point object ARN (`…:accesspoint/<name>/object/<key>`) the hop concerns.
        object: String,
    },
    /// A KMS key.
    Key {
        account: String,
        arn: String,
        region: String,
        /// The object or bucket ARN of the encryption context (S3's hop), when there is one:
        /// which object a re-encryption fix must rewrite.
        object: Option<String>,
    },
}

impl Target {
    pub(super) fn account(&self) -> &str {
        match self {
            Target::Bucket { account, .. }
            | Target::AccessPoint { account, .. }
            | Target::Key { account, .. } => account,
        }
    }
}

/// Everything a fix for an engine-reported layer needs.
pub(super) struct FixContext<'a> {
    pub snap: &'a Snapshot,
    pub caller: &'a Caller,
    pub principal_arn: Option<&'a str>,
    pub caller_account: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    pub target: &'a Target,
    pub resource_policy: Option<&'a NamedPolicy>,
    pub identity: &'a [&'a NamedPolicy],
    pub boundary: Option<&'a NamedPolicy>,
    pub session: Option<&'a NamedPolicy>,
    pub scp: &'a [Vec<&'a NamedPolicy>],
    pub rcp: &'a [Vec<NamedPolicy>],
    pub req: &'a Request,
    pub ev: &'a Evaluation<'a>,
    pub layer: Layer,
    pub explicit: bool,
    /// The hop is S3's forward access session to KMS.
    pub fas: bool,
    /// The VPC endpoint the hop's request came through, when the snapshot lists it.
    pub vpc_endpoint: Option<super::vpce::SeenEndpoint<'a>>,
    /// Documents already rewritten by earlier fixes of this diagnosis, by pointer: a second
    /// fix to the same policy starts from the first one's result, so the printed commands
    /// can be run in order and the last one holds every change.
    pub rewritten: &'a std::cell::RefCell<std::collections::BTreeMap<String, Value>>,
}

impl FixContext<'_> {
    /// The document a fix to `np` starts from.
    fn current(&self, np: &NamedPolicy) -> Value {
        self.rewritten
            .borrow()
            .get(&np.pointer)
            .cloned()
            .unwrap_or_else(|| np.document.clone())
    }
}

/// The principal a new statement should name: the role (with its path) for sessions, the
/// user, or the account root.
fn grantee(caller: &Caller, principal_arn: Option<&str>) -> String {
    match caller.kind {
        CallerKind::Root => caller.arn.clone(),
        _ => principal_arn.map_or_else(|| caller.arn.clone(), str::to_owned),
    }
}

/// The narrowest resource that still serves the request's neighbours: the object's "folder"
/// (`bucket/reports/*`), or the object itself when it sits at the top.
pub(super) fn object_scope(resource: &str) -> String {
    match resource.rsplit_once('/') {
        Some((dir, _)) if dir.contains(":::") && dir.matches('/').count() >= 1 => {
            format!("{dir}/*")
        }
        _ => resource.to_owned(),
    }
}

/// A `Sid` (alphanumeric) for statements the auditor proposes.
pub(super) fn sid_for(action: &str) -> String {
    let mut name = String::new();
    for part in action.split(':') {
        let mut chars = part.chars().filter(char::is_ascii_alphanumeric);
        if let Some(c) = chars.next() {
            name.push(c.to_ascii_uppercase());
            name.extend(chars);
        }
    }
    format!("S3KmsAuditorAllow{name}")
}

pub(super) fn compact(v: &Value) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .replace('\'', "'\\''")
}

/// `document` with `Statement` as an array and `st` appended; a statement already there (the
/// same statement from an earlier fix) is not added twice, and a `Sid` already taken gets a
/// numbered suffix, since `Sid`s must be unique within a policy.
pub(super) fn with_statement(document: Option<&Value>, st: Value) -> Value {
    let mut doc = document
        .cloned()
        .unwrap_or_else(|| json!({"Version": "2012-10-17", "Statement": []}));
    let stmts = match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(other) => vec![other.clone()],
        None => Vec::new(),
    };
    let mut stmts = stmts;
    if !stmts.contains(&st) {
        stmts.push(with_free_sid(&stmts, st));
    }
    if let Some(o) = doc.as_object_mut() {
        o.insert("Statement".into(), Value::Array(stmts));
    }
    doc
}

/// `st` with a `Sid` no statement of `stmts` has (a numbered suffix when taken).
fn with_free_sid(stmts: &[Value], mut st: Value) -> Value {
    let sid_taken = |sid: &str| {
        stmts
            .iter()
            .any(|x| x.get("Sid").and_then(Value::as_str) == Some(sid))
    };
    if let Some(sid) = st.get("Sid").and_then(Value::as_str).map(str::to_owned) {
        if sid_taken(&sid) {
            let free = (2..)
                .map(|n| format!("{sid}{n}"))
                .find(|s| !sid_taken(s))
                .unwrap_or(sid);
            if let Some(o) = st.as_object_mut() {
                o.insert("Sid".into(), Value::String(free));
            }
        }
    }
    st
}

/// Who changes an SCP or RCP that applies to `account`: its organization's management account
/// by id when the snapshot has it (`organization.management_account`, read from
/// `DescribeOrganization`), else named as such.
fn org_management(snap: &Snapshot, account: &str) -> String {
    snap.account(account)
        .and_then(|a| a.organization.as_ref())
        .and_then(|o| o.management_account.clone())
        .unwrap_or_else(|| format!("management account of the organization of {account}"))
}

/// The CLI command that writes `doc` as the policy `np` (by its place in the snapshot).
fn put_command(snap: &Snapshot, np: &NamedPolicy, doc: &Value, target: Option<&Target>) -> String {
    let p = &np.pointer;
    let json = compact(doc);
    let parts: Vec<&str> = p.split('/').collect();
    // /accounts/<id>/s3/<bucket>/policy
    if parts.get(3) == Some(&"s3") {
        let bucket = parts
            .get(4)
            .map(|b| b.replace("~1", "/").replace("~0", "~"))
            .unwrap_or_default();
        return format!("aws s3api put-bucket-policy --bucket {bucket} --policy '{json}'");
    }
    // /accounts/<id>/access_points/<name>/Policy
    if parts.get(3) == Some(&"access_points") {
        let unescape = |t: &&str| t.replace("~1", "/").replace("~0", "~");
        let account = parts.get(2).map(unescape).unwrap_or_default();
        let name = parts.get(4).map(unescape).unwrap_or_default();
        return access_point_policy_command(&account, &name, doc);
    }
    if parts.get(3) == Some(&"kms") {
        if let Some(Target::Key { arn, region, .. }) = target {
            return format!("aws kms put-key-policy --region {region} --key-id {arn} --policy-name default --policy '{json}'");
        }
    }
    if parts.get(3) == Some(&"sessions") {
        return format!("aws sts assume-role --role-arn <role ARN> --role-session-name <session name> --policy '{json}'   # re-create the session with this policy");
    }
    if parts.get(3) == Some(&"organization") {
        return format!("aws organizations update-policy --policy-id <id of this policy> --content '{json}'   # from the organization's management account");
    }
    // IAM: an inline policy of a role, user or group, or a managed policy version.
    let holder = snap
        .accounts
        .values()
        .filter_map(|a| a.iam.as_ref())
        .find_map(|iam| {
            let has = |list: &[NamedPolicy]| list.iter().any(|x| x.pointer == *p);
            iam.roles
                .iter()
                .find(|r| has(&r.inline_policies))
                .map(|r| ("role", r.name.as_str()))
                .or_else(|| {
                    iam.users
                        .iter()
                        .find(|u| has(&u.inline_policies))
                        .map(|u| ("user", u.name.as_str()))
                })
                .or_else(|| {
                    iam.groups
                        .iter()
                        .find(|g| has(&g.inline_policies))
                        .map(|g| ("group", g.name.as_str()))
                })
        });
    if let (Some((kind, holder)), Some(name)) = (holder, np.policy_name.as_deref()) {
        return format!("aws iam put-{kind}-policy --{kind}-name {holder} --policy-name {name} --policy-document '{json}'");
    }
    format!(
        "aws iam create-policy-version --policy-arn {} --policy-document '{json}' --set-as-default",
        np.name
    )
}

/// Replaces the document of a policy already in the snapshot.
fn replace(np: &NamedPolicy, document: Value) -> Edit {
    Edit::ReplacePolicy {
        pointer: np.pointer.clone(),
        document,
    }
}

/// A fix for a layer the engine reported.
pub(super) fn build(code: Code, fc: &FixContext<'_>) -> Option<Fix> {
    if fc.explicit {
        return explicit_deny(code, fc);
    }
    let grantee = grantee(fc.caller, fc.principal_arn);
    match code {
        Code::BucketPolicyNoAllow => {
            let Target::Bucket {
                account, bucket, ..
            } = fc.target
            else {
                return None;
            };
            // A bucket without a policy may already have been given one by an earlier fix.
            let current = match fc.resource_policy {
                Some(np) => Some(fc.current(np)),
                None => fc
                    .rewritten
                    .borrow()
                    .get(&super::edit::bucket_pointer(account, bucket, "policy"))
                    .cloned(),
            };
            Some(bucket_grant(
                fc.resource_policy,
                current.as_ref(),
                account,
                bucket,
                &grantee,
                fc.action,
                fc.resource,
            ))
        }
        Code::KeyPolicyNoAllow => {
            let Target::Key {
                account,
                arn,
                region,
                ..
            } = fc.target
            else {
                return None;
            };
            let mut st = json!({"Sid": sid_for(fc.action), "Effect": "Allow", "Principal": {"AWS": grantee},
                "Action": fc.action, "Resource": "*"});
            let via = fc
                .req
                .context
                .get("kms:ViaService")
                .and_then(|v| v.values().first().cloned());
            if fc.fas {
                if let Some(via) = via {
                    if let Some(o) = st.as_object_mut() {
                        o.insert(
                            "Condition".into(),
                            json!({"StringEquals": {"kms:ViaService": via}}),
                        );
                    }
                }
            }
            let mut notes = vec![format!(
                "Only account {account}, which owns the key, can change its key policy."
            )];
            let (patched, patch, cli) = match fc.resource_policy {
                Some(np) => {
                    let doc = with_statement(Some(&fc.current(np)), st.clone());
                    let cli = format!("aws kms put-key-policy --region {region} --key-id {arn} --policy-name default --policy '{}'", compact(&doc));
                    (Some(doc.clone()), vec![replace(np, doc)], cli)
                }
                None => {
                    notes.push("The current key policy is not in the snapshot: add the statement to it (get-key-policy), never replace the whole policy with this one statement.".into());
                    (None, Vec::new(), format!("aws kms get-key-policy --region {region} --key-id {arn} --policy-name default --output text > key-policy.json   # add the statement, then: aws kms put-key-policy --region {region} --key-id {arn} --policy-name default --policy file://key-policy.json"))
                }
            };
            // Cross-account use needs the caller's IAM policy too: say so only when this
            // evaluation shows it missing (or could not see it), never when it already allows.
            if fc.caller_account != account {
                let identity_blocks = fc.ev.missing_allows.contains(&Layer::Identity)
                    || fc.ev.explicit_denies.contains(&Layer::Identity);
                let identity_unknown = fc.identity.is_empty()
                    && !matches!(
                        fc.caller.kind,
                        CallerKind::Root | CallerKind::Service | CallerKind::Anonymous
                    );
                if identity_blocks {
                    notes.push(format!("Account {} must also allow {} on this key ARN in the caller's IAM policy (cross-account use needs both); that is a separate finding.", fc.caller_account, fc.action));
                } else if identity_unknown {
                    notes.push(format!("Account {} must also allow {} on this key ARN in the caller's IAM policy (cross-account use needs both); its policies are not in the snapshot, so this was not checked.", fc.caller_account, fc.action));
                }
            }
            Some(Fix {
                account: account.clone(),
                artifact: format!("key policy of {arn}"),
                statement: Some(st),
                patched_policy: patched,
                cli,
                notes,
                edits: patch,
                patch: Vec::new(),
            })
        }
        Code::AccessPointPolicyNoAllow => {
            let Target::AccessPoint { account, name, .. } = fc.target else {
                return None;
            };
            let current = match fc.resource_policy {
                Some(np) => Some(fc.current(np)),
                None => fc
                    .rewritten
                    .borrow()
                    .get(&super::edit::access_point_pointer(account, name, "Policy"))
                    .cloned(),
            };
            Some(access_point_grant(
                fc.resource_policy,
                current.as_ref(),
                account,
                name,
                &grantee,
                fc.action,
                fc.resource,
            ))
        }
        Code::BucketPolicyNoAccessPointDelegation => delegation_grant(fc),
        Code::IdentityPolicyNoAllow => identity_grant(fc, &grantee),
        Code::VpcEndpointPolicyNoAllow => super::vpce::grant(fc, fc.vpc_endpoint?),
        Code::PermissionsBoundaryNoAllow => {
            let np = fc.boundary?;
            let st = json!({"Sid": sid_for(fc.action), "Effect": "Allow", "Action": fc.action, "Resource": scoped(fc)});
            let doc = with_statement(Some(&fc.current(np)), st.clone());
            Some(Fix { account: fc.caller_account.to_owned(), artifact: format!("permissions boundary {}", np.name), statement: Some(st),
                cli: put_command(fc.snap, np, &doc, Some(fc.target)), patched_policy: Some(doc.clone()),
                notes: vec!["A permissions boundary caps every role or user it is attached to; check the other principals that share it.".into()],
                edits: vec![replace(np, doc)], patch: Vec::new() })
        }
        Code::SessionPolicyNoAllow => {
            let np = fc.session?;
            let st = json!({"Sid": sid_for(fc.action), "Effect": "Allow", "Action": fc.action, "Resource": scoped(fc)});
            let doc = with_statement(Some(&fc.current(np)), st.clone());
            Some(Fix { account: fc.caller_account.to_owned(), artifact: np.name.clone(), statement: Some(st),
                cli: session_command(fc, &doc), patched_policy: Some(doc.clone()),
                notes: vec!["A session policy is fixed when the session is created: whoever calls AssumeRole (a pipeline, an SDK client, an identity broker) must pass the new policy, and existing sessions keep the old one until they expire.".into()],
                edits: vec![replace(np, doc)], patch: Vec::new() })
        }
        Code::ScpNoAllow => {
            // The first level (root → account) where no SCP allows the action.
            let level = (0..fc.scp.len()).find(|i| {
                let set = PolicySet {
                    scp: vec![fc
                        .scp
                        .get(*i)
                        .map(|l| {
                            l.iter()
                                .map(|p| Named {
                                    name: p.name.as_str(),
                                    policy: &p.policy,
                                })
                                .collect()
                        })
                        .unwrap_or_default()],
                    ..PolicySet::default()
                };
                authorize(fc.req, &set).missing_allows.contains(&Layer::Scp)
            })?;
            let np = fc.scp.get(level)?.first()?;
            let st = json!({"Sid": sid_for(fc.action), "Effect": "Allow", "Action": fc.action, "Resource": "*"});
            let doc = with_statement(Some(&fc.current(np)), st.clone());
            Some(Fix {
                account: org_management(fc.snap, fc.caller_account),
                artifact: format!("SCP {} (level {level} from the root)", np.name),
                statement: Some(st),
                cli: put_command(fc.snap, np, &doc, None),
                patched_policy: Some(doc.clone()),
                notes: vec![format!(
                    "SCPs filter: {} must be allowed at every level from the root to account {}.",
                    fc.action, fc.caller_account
                )],
                edits: vec![replace(np, doc)],
                patch: Vec::new(),
            })
        }
        _ => None,
    }
}

fn scoped(fc: &FixContext<'_>) -> String {
    match fc.target {
        Target::Bucket { .. } => object_scope(fc.resource),
        Target::AccessPoint { .. } => access_point_object_scope(fc.resource),
        Target::Key { arn, .. } => arn.clone(),
    }
}

/// Adds an Allow for the grantee to the bucket policy (a named principal, so the grant is not
/// "public" under Block Public Access).
pub(super) fn bucket_grant(
    policy: Option<&NamedPolicy>,
    current: Option<&Value>,
    account: &str,
    bucket: &str,
    grantee: &str,
    action: &str,
    resource: &str,
) -> Fix {
    let st = json!({"Sid": sid_for(action), "Effect": "Allow", "Principal": {"AWS": grantee},
        "Action": action, "Resource": object_scope(resource)});
    let doc = with_statement(current.or(policy.map(|p| &p.document)), st.clone());
    let patch = match policy {
        Some(p) => replace(p, doc.clone()),
        None => Edit::PutBucketPolicy {
            account: account.to_owned(),
            bucket: bucket.to_owned(),
            document: doc.clone(),
        },
    };
    Fix {
        account: account.to_owned(),
        artifact: format!("bucket policy of {bucket}"),
        statement: Some(st),
        cli: format!(
            "aws s3api put-bucket-policy --bucket {bucket} --policy '{}'",
            compact(&doc)
        ),
        patched_policy: Some(doc.clone()),
        notes: vec![format!(
            "Only account {account}, which owns the bucket, can change its policy."
        )],
        edits: vec![patch],
        patch: Vec::new(),
    }
}

/// `aws s3control put-access-point-policy` for `doc`.
fn access_point_policy_command(account: &str, name: &str, doc: &Value) -> String {
    format!(
        "aws s3control put-access-point-policy --account-id {account} --name {name} --policy '{}'",
        compact(doc)
    )
}

/// The narrowest access point object resource that still serves the request's neighbours:
/// `…/accesspoint/<name>/object/reports/*` for `reports/q1.csv`, the object itself at the top.
fn access_point_object_scope(resource: &str) -> String {
    match resource.split_once("/object/") {
        Some((ap, key)) => match key.rsplit_once('/') {
            Some((dir, _)) => format!("{ap}/object/{dir}/*"),
            None => resource.to_owned(),
        },
        None => resource.to_owned(),
    }
}

/// Adds an Allow for the grantee to the access point policy, on the access point object ARN
/// (the resource S3 evaluates an access point policy on).
pub(super) fn access_point_grant(
    policy: Option<&NamedPolicy>,
    current: Option<&Value>,
    account: &str,
    name: &str,
    grantee: &str,
    action: &str,
    resource: &str,
) -> Fix {
    let st = json!({"Sid": sid_for(action), "Effect": "Allow", "Principal": {"AWS": grantee},
        "Action": action, "Resource": access_point_object_scope(resource)});
    let doc = with_statement(current.or(policy.map(|p| &p.document)), st.clone());
    let edit = match policy {
        Some(p) => replace(p, doc.clone()),
        None => Edit::PutAccessPointPolicy {
            account: account.to_owned(),
            name: name.to_owned(),
            document: doc.clone(),
        },
    };
    Fix {
        account: account.to_owned(),
        artifact: format!("access point policy of {name}"),
        statement: Some(st),
        cli: access_point_policy_command(account, name, &doc),
        patched_policy: Some(doc.clone()),
        notes: vec![
            format!("Only account {account}, which owns the access point, can change its policy."),
            "The access point policy names resources by the access point ARN (`…:accesspoint/<name>/object/<key>`), never by the bucket ARN.".into(),
        ],
        edits: vec![edit],
        patch: Vec::new(),
    }
}

/// The bucket policy statement that lets the bucket's access points decide: `Principal: *`
/// with `s3:DataAccessPointAccount` = the bucket owner ("Delegating access control to access
/// points", <https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-points-policies.html>),
/// or, for an access point another account owns, `s3:DataAccessPointArn` = that access point,
/// so the bucket owner delegates to it alone.
fn delegation_grant(fc: &FixContext<'_>) -> Option<Fix> {
    let Target::Bucket {
        account, bucket, ..
    } = fc.target
    else {
        return None;
    };
    let ctx_value = |key: &str| {
        fc.req
            .context
            .get(key)
            .and_then(|v| v.values().first().cloned())
    };
    let ap_account = ctx_value("s3:DataAccessPointAccount")?;
    let ap_arn = ctx_value("s3:DataAccessPointArn")?;
    let condition = if &ap_account == account {
        json!({"StringEquals": {"s3:DataAccessPointAccount": account}})
    } else {
        json!({"StringEquals": {"s3:DataAccessPointArn": ap_arn}})
    };
    let st = json!({"Sid": "S3KmsAuditorDelegateToAccessPoints", "Effect": "Allow",
        "Principal": {"AWS": "*"}, "Action": fc.action, "Resource": object_scope(fc.resource),
        "Condition": condition});
    let current = match fc.resource_policy {
        Some(np) => Some(fc.current(np)),
        None => fc
            .rewritten
            .borrow()
            .get(&super::edit::bucket_pointer(account, bucket, "policy"))
            .cloned(),
    };
    let doc = with_statement(
        current.as_ref().or(fc.resource_policy.map(|p| &p.document)),
        st.clone(),
    );
    let edit = match fc.resource_policy {
        Some(p) => replace(p, doc.clone()),
        None => Edit::PutBucketPolicy {
            account: account.clone(),
            bucket: bucket.clone(),
            document: doc.clone(),
        },
    };
    let whom = if &ap_account == account {
        format!("the access points of account {account}")
    } else {
        format!("access point `{ap_arn}` (account {ap_account})")
    };
    Some(Fix {
        account: account.clone(),
        artifact: format!("bucket policy of {bucket}"),
        statement: Some(st),
        cli: format!(
            "aws s3api put-bucket-policy --bucket {bucket} --policy '{}'",
            compact(&doc)
        ),
        patched_policy: Some(doc.clone()),
        notes: vec![
            format!("The statement delegates {} on the bucket's objects to {whom}: the access point policy then decides who may use it. It is not a public grant, because the condition pins it to access points.", fc.action),
            format!("Only account {account}, which owns the bucket, can change its policy."),
        ],
        edits: vec![edit],
        patch: Vec::new(),
    })
}

/// A new inline policy on the caller's role or user.
fn identity_grant(fc: &FixContext<'_>, _grantee: &str) -> Option<Fix> {
    let st = json!({"Sid": sid_for(fc.action), "Effect": "Allow", "Action": fc.action, "Resource": scoped(fc)});
    let doc = json!({"Version": "2012-10-17", "Statement": [st.clone()]});
    let base_name = format!(
        "s3-kms-auditor-{}",
        fc.action.replace(':', "-").to_lowercase()
    );
    let account = fc.caller_account;
    let iam = fc.snap.account(account).and_then(|a| a.iam.as_ref());
    // put-role-policy replaces an inline policy of the same name: never reuse one.
    let taken: Vec<&str> = iam
        .into_iter()
        .flat_map(|i| {
            i.roles
                .iter()
                .flat_map(|r| r.inline_policies.iter())
                .chain(i.users.iter().flat_map(|u| u.inline_policies.iter()))
        })
        .filter_map(|p| p.policy_name.as_deref())
        .collect();
    let policy_name = (1..)
        .map(|n| {
            if n == 1 {
                base_name.clone()
            } else {
                format!("{base_name}-{n}")
            }
        })
        .find(|n| !taken.contains(&n.as_str()))
        .unwrap_or(base_name);
    let (holder, name, cli) = match fc.caller.kind {
        CallerKind::AssumedRole => {
            let role = fc.caller.role_name.clone()?;
            (InlineHolder::Role, role.clone(), format!("aws iam put-role-policy --role-name {role} --policy-name {policy_name} --policy-document '{}'", compact(&doc)))
        }
        CallerKind::User => {
            let user = fc.caller.name.clone()?;
            (InlineHolder::User, user.clone(), format!("aws iam put-user-policy --user-name {user} --policy-name {policy_name} --policy-document '{}'", compact(&doc)))
        }
        _ => return None,
    };
    // Verifiable only when the role or user is in the snapshot.
    let known = iam.is_some_and(|i| match holder {
        InlineHolder::Role => i.roles.iter().any(|r| r.name == name),
        InlineHolder::User => i.users.iter().any(|u| u.name == name),
        InlineHolder::Group => i.groups.iter().any(|g| g.name == name),
    });
    let edits = if known {
        vec![Edit::AddInlinePolicy {
            account: account.to_owned(),
            holder,
            holder_name: name.clone(),
            policy_name,
            document: doc.clone(),
        }]
    } else {
        Vec::new()
    };
    let what = if fc.caller.kind == CallerKind::AssumedRole {
        "role"
    } else {
        "user"
    };
    Some(Fix {
        account: account.to_owned(),
        artifact: format!("identity policies of {what} {name}"),
        statement: Some(st),
        patched_policy: Some(doc),
        cli,
        notes: vec![format!(
            "Or add the statement to a policy {name} already has; account {account} owns it."
        )],
        edits,
        patch: Vec::new(),
    })
}

fn session_command(fc: &FixContext<'_>, doc: &Value) -> String {
    let role = fc.principal_arn.unwrap_or("<role ARN>");
    let session = fc
        .caller
        .session_name
        .as_deref()
        .unwrap_or("<session name>");
    format!(
        "aws sts assume-role --role-arn {role} --role-session-name {session} --policy '{}'",
        compact(doc)
    )
}

/// Every place a policy named `name` can come from in this hop.
fn find_policy<'a>(fc: &'a FixContext<'a>, layer: Layer, name: &str) -> Option<&'a NamedPolicy> {
    match layer {
        Layer::Resource => fc.resource_policy.filter(|p| p.name == name),
        Layer::Identity => fc.identity.iter().copied().find(|p| p.name == name),
        Layer::PermissionsBoundary => fc.boundary.filter(|p| p.name == name),
        Layer::Scp => fc.scp.iter().flatten().copied().find(|p| p.name == name),
        Layer::Rcp => fc.rcp.iter().flatten().find(|p| p.name == name),
        Layer::Session => fc.session.filter(|p| p.name == name),
        Layer::VpcEndpoint => fc
            .vpc_endpoint
            .and_then(|e| e.endpoint.policy.as_ref())
            .filter(|p| p.name == name),
    }
}

const NETWORK_KEYS: &[&str] = &[
    "aws:sourcevpce",
    "aws:sourcevpc",
    "aws:vpcsourceip",
    "aws:sourceip",
    "aws:vpceaccount",
    "aws:vpceorgid",
    "aws:vpceorgpaths",
];

/// A fix for an explicit deny: the narrowest exemption that lifts it for this request.
fn explicit_deny(code: Code, fc: &FixContext<'_>) -> Option<Fix> {
    let denies: Vec<_> = fc
        .ev
        .statements
        .iter()
        .filter(|s| s.layer == fc.layer)
        .collect();
    let first = denies.first()?;
    let np = find_policy(fc, fc.layer, first.policy)?;
    let mut doc = fc.current(np);
    let grantee = grantee(fc.caller, fc.principal_arn);
    let mut notes = Vec::new();
    for s in &denies {
        if s.policy != first.policy {
            continue;
        }
        let Some(st) = np.policy.statements.iter().find(|x| x.index == s.index) else {
            continue;
        };
        let Some(target) = statement_mut(&mut doc, s.index) else {
            continue;
        };
        let sid = s.sid.map(|x| format!(" (Sid `{x}`)")).unwrap_or_default();
        // The carve-out fits only a guard on a key this hop does not carry (VPC keys on S3's
        // call to KMS, or aws:SourceIp after a VPC endpoint); an IP guard the hop can satisfy
        // must not be switched off for every service-made call.
        let network = st
            .conditions
            .iter()
            .any(|c| NETWORK_KEYS.contains(&c.key_lower()) && fc.req.context.get(&c.key).is_none());
        if fc.fas && network {
            // The guard is meant for the caller's own network path; S3's call to KMS on the
            // caller's behalf carries no VPC keys. Exempt calls made through AWS services.
            add_condition(
                target,
                "Bool",
                "aws:ViaAWSService",
                Value::String("false".into()),
            );
            notes.push(format!("Statement {}{sid} denies unless the request comes from a given network, but S3's request to KMS carries no VPC keys. The added `Bool aws:ViaAWSService false` keeps the guard for direct calls and exempts S3 acting for the caller.", s.index));
        } else if st.principal.as_ref().is_some_and(|p| p.not) {
            let mut extra = vec![Value::String(crate::refs::account_root(
                crate::refs::Partition::of_arn(&fc.caller.arn).unwrap_or_default(),
                fc.caller_account,
            ))];
            if let Some(role) = fc.principal_arn {
                extra.push(Value::String(role.to_owned()));
            }
            if fc.caller.kind == CallerKind::AssumedRole {
                extra.push(Value::String(fc.caller.arn.clone()));
            }
            add_not_principal(target, extra);
            notes.push(format!("Statement {}{sid} is a NotPrincipal deny: a role session is exempt only when the account, the role and the session are all listed. Better: replace it with `Principal: \"*\"` and an `ArnNotEquals aws:PrincipalArn` condition.", s.index));
        } else {
            add_condition(
                target,
                "ArnNotEquals",
                "aws:PrincipalArn",
                Value::String(grantee.clone()),
            );
            notes.push(format!("Statement {}{sid} denies this request on purpose or by accident; the change exempts `{grantee}` only. If the deny is a deliberate guard, change the caller instead.", s.index));
        }
        let why = st
            .conditions
            .iter()
            .map(|c| {
                let v = fc
                    .req
                    .context
                    .get(&c.key)
                    .map(|v| format!("`{}`", v.values().join(", ")))
                    .unwrap_or_else(|| "absent".into());
                format!("`{} {}` (request value: {v})", c.operator_text, c.key)
            })
            .collect::<Vec<_>>();
        if !why.is_empty() {
            notes.push(format!(
                "Statement {}{sid} applied because its conditions held: {}.",
                s.index,
                why.join("; ")
            ));
        }
    }
    let account = match fc.layer {
        Layer::Scp => org_management(fc.snap, fc.caller_account),
        Layer::Rcp => org_management(fc.snap, fc.target.account()),
        Layer::Resource => fc.target.account().to_owned(),
        _ => fc.caller_account.to_owned(),
    };
    let _ = code;
    // An endpoint policy is changed through EC2, by the account that owns the endpoint.
    if let Some(seen) = fc.vpc_endpoint.filter(|_| fc.layer == Layer::VpcEndpoint) {
        let (edit, cli) = super::vpce::set_policy(seen.owner, seen.endpoint, &doc);
        notes.push(super::explain::endpoint_fix_note(
            &seen.endpoint.id,
            seen.owner,
        ));
        return Some(Fix {
            account: seen.owner.to_owned(),
            artifact: np.name.clone(),
            statement: None,
            cli,
            patched_policy: Some(doc),
            notes,
            edits: vec![edit],
            patch: Vec::new(),
        });
    }
    Some(Fix {
        account,
        artifact: np.name.clone(),
        statement: None,
        cli: put_command(fc.snap, np, &doc, Some(fc.target)),
        patched_policy: Some(doc.clone()),
        notes,
        edits: vec![replace(np, doc)],
        patch: Vec::new(),
    })
}

fn statement_mut(doc: &mut Value, index: usize) -> Option<&mut Map<String, Value>> {
    match doc.get_mut("Statement")? {
        Value::Array(a) => a.get_mut(index)?.as_object_mut(),
        Value::Object(o) if index == 0 => Some(o),
        _ => None,
    }
}

fn add_condition(st: &mut Map<String, Value>, op: &str, key: &str, value: Value) {
    let cond = st.entry("Condition").or_insert_with(|| json!({}));
    let Some(cond) = cond.as_object_mut() else {
        return;
    };
    let block = cond.entry(op).or_insert_with(|| json!({}));
    let Some(block) = block.as_object_mut() else {
        return;
    };
    match block.get_mut(key) {
        Some(Value::Array(a)) => a.push(value),
        Some(existing) => {
            let old = existing.clone();
            *existing = Value::Array(vec![old, value]);
        }
        None => {
            block.insert(key.to_owned(), value);
        }
    }
}

fn add_not_principal(st: &mut Map<String, Value>, extra: Vec<Value>) {
    let np = st.entry("NotPrincipal").or_insert_with(|| json!({}));
    let Some(np) = np.as_object_mut() else { return };
    let aws = np.entry("AWS").or_insert_with(|| json!([]));
    let mut list = match aws.take() {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        other => vec![other],
    };
    for e in extra {
        if !list.contains(&e) {
            list.push(e);
        }
    }
    *aws = Value::Array(list);
}

/// Fixes for causes outside the policy layers.
pub(super) fn build_special(
    code: Code,
    snap: &Snapshot,
    partition: crate::refs::Partition,
    object: Option<(&str, Option<&str>)>,
    action: &str,
    tgt: &Target,
) -> Option<Fix> {
    let bucket = object.map_or("<bucket>", |(b, _)| b);
    let copy = match object {
        Some((b, Some(k))) => format!("aws s3 cp s3://{b}/{k} s3://{b}/{k}"),
        _ => format!("aws s3 cp s3://{bucket}/<prefix> s3://{bucket}/<prefix> --recursive"),
    };
    match (code, tgt) {
        (Code::KeyNotUsable, Target::Key { account, arn, region, .. }) => {
            let state = snap.account(account).and_then(|a| a.kms.get(arn)).map(|k| k.metadata.key_state.as_str().to_owned()).unwrap_or_default();
            let state = state.as_str();
            let enable = format!("aws kms enable-key --region {region} --key-id {arn}");
            let (cli, can_patch, why) = match state {
                "Disabled" => (enable, true, "it was disabled"),
                "PendingDeletion" => (format!("aws kms cancel-key-deletion --region {region} --key-id {arn} && {enable}"), true, "it is scheduled for deletion (cancelling leaves it disabled, hence the enable)"),
                "PendingImport" => (format!("aws kms get-parameters-for-import --region {region} --key-id {arn} --wrapping-algorithm RSAES_OAEP_SHA_256 --wrapping-key-spec RSA_4096   # then wrap the key material and: aws kms import-key-material --region {region} --key-id {arn} --encrypted-key-material fileb://EncryptedKeyMaterial.bin --import-token fileb://ImportToken.bin --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE"), false, "its imported key material is missing or expired: only re-importing the same material makes existing ciphertexts readable again"),
                "Unavailable" => ("aws kms connect-custom-key-store --custom-key-store-id <the key's CustomKeyStoreId>".to_owned(), false, "its custom key store is disconnected"),
                _ => (format!("aws kms describe-key --region {region} --key-id {arn}   # wait for the key to leave `{state}`"), false, "it is in a transitional state"),
            };
            let edits = if can_patch {
                vec![Edit::EnableKey { account: account.clone(), key_arn: arn.clone() }]
            } else {
                Vec::new()
            };
            Some(Fix { account: account.clone(), artifact: format!("key {arn}"), statement: None, patched_policy: None, cli,
                notes: vec![format!("The key is `{state}`: {why}. Only account {account} can change its state; if it was made unusable on purpose, the objects it protects stay unreadable.")],
                edits, patch: Vec::new() })
        }
        (Code::AwsManagedKey, Target::Key { account, region, .. }) => {
            let cmk = snap.account(account).and_then(|a| a.kms.values().find(|k| !k.is_aws_managed() && k.is_usable() && (region.is_empty() || k.metadata.region == *region)).map(|k| k.metadata.arn.clone()))
                .unwrap_or_else(|| crate::refs::key_arn(partition, if region.is_empty() { "<bucket-region>" } else { region }, account, "<customer-managed-key-id>"));
            Some(Fix { account: account.clone(), artifact: "encryption of the affected objects and the bucket default".into(), statement: None, patched_policy: None,
                cli: format!("{copy} --sse aws:kms --sse-kms-key-id {cmk} && aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration '{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"aws:kms\",\"KMSMasterKeyID\":\"{cmk}\"}},\"BucketKeyEnabled\":true}}]}}'"),
                notes: vec![
                    "No policy change can help: the key policy of an AWS managed key is read-only.".into(),
                    format!("Re-encrypt the objects in place under a customer managed key of account {account} (a copy onto itself with SSE-KMS), then make that key, named by its key ARN, the bucket default."),
                    "Then grant the reader kms:Decrypt in that key's policy (with kms:ViaService) and in the reader's IAM policy.".into(),
                ], edits: Vec::new(), patch: Vec::new() })
        }
        (Code::KeyRegionMismatch, Target::Key { account, .. }) => Some(Fix { account: account.clone(), artifact: "the object's encryption key".into(), statement: None, patched_policy: None,
            cli: format!("{copy} --sse aws:kms --sse-kms-key-id <key ARN in the bucket's Region>"),
            notes: vec!["Re-encrypt the object with a key in the bucket's Region; a multi-Region replica is a separate key with its own policy.".into()], edits: Vec::new(), patch: Vec::new() }),
        (Code::ObjectOwnerMismatch, Target::Bucket { account, bucket, .. }) => Some(Fix { account: account.clone(), artifact: format!("Object Ownership of {bucket}"), statement: None, patched_policy: None,
            cli: format!("aws s3api put-bucket-ownership-controls --bucket {bucket} --ownership-controls 'Rules=[{{ObjectOwnership=BucketOwnerEnforced}}]'"),
            notes: vec![
                "BucketOwnerEnforced makes the bucket owner own every object and disables ACLs, so the bucket policy governs them all.".into(),
                "Before switching, move any access granted only by ACLs into the bucket policy. Alternatively the object's writer re-uploads it with --acl bucket-owner-full-control.".into(),
            ],
            edits: vec![Edit::EnforceBucketOwner { account: account.clone(), bucket: bucket.clone() }], patch: Vec::new() }),
        (Code::AccessPointNetworkOrigin, Target::AccessPoint { account, name, bucket, .. }) => {
            let ap = snap.access_point(account, name).map(|(_, ap)| ap);
            let bucket_account = ap
                .and_then(|ap| ap.bucket_account_id.as_deref())
                .map(|id| format!(" --bucket-account-id {id}"))
                .unwrap_or_default();
            let mut cli = format!("aws s3control delete-access-point --account-id {account} --name {name} && aws s3control create-access-point --account-id {account} --name {name} --bucket {bucket}{bucket_account}");
            if let Some(p) = ap.and_then(|ap| ap.policy.as_ref()) {
                cli.push_str(" && ");
                cli.push_str(&access_point_policy_command(account, name, &p.document));
            }
            Some(Fix { account: account.clone(), artifact: format!("network origin of access point {name}"), statement: None, patched_policy: None, cli,
                notes: vec![
                    "An access point's network origin is fixed when it is created: the command re-creates it with network origin `Internet` under the same name and puts its policy back. Its alias changes, so callers that use the alias must take the new one.".into(),
                    "Often the better fix is on the caller's side: send the request from the access point's VPC, through an S3 endpoint there; a VPC-only access point is usually deliberate.".into(),
                ],
                edits: vec![Edit::RecreateAccessPointInternet { account: account.clone(), name: name.clone() }], patch: Vec::new() })
        }
        _ => {
            let _ = action;
            None
        }
    }
}

//! Sweep: every cross-account read path the bucket policies intend, checked end to end.
//!
//! For each bucket-policy statement that allows an object read to a principal of another
//! account, the sweep diagnoses a `GetObject` by that principal (or, for an account
//! principal, by each role and user of that account whose identity policies reach the bucket;
//! by the account root as a stand-in when the account is not in the snapshot) on the listed
//! objects the statement covers, or on a representative key. It also reports the traps of the
//! knowledge-center scenario that hold no matter who reads: default encryption by alias or
//! with the AWS managed key, and key policies granting accounts that no bucket policy grants.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use iam_eval::principal::PolicyPrincipal;
use iam_eval::Effect;

use crate::diagnose::{diagnose, Finding, Verdict};
use crate::event::adhoc_request;
use crate::refs::{self, BucketRef, Partition};
use crate::snapshot::Snapshot;

/// One read path and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Path {
    /// The principal tested.
    pub principal: String,
    /// The bucket.
    pub bucket: String,
    /// The object tested.
    pub object: String,
    /// Why this principal is on the path (the statement that grants it).
    pub granted_by: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Blocking finding codes.
    pub blocking: Vec<String>,
    /// Why the path could not be checked (verdict `unknown`), when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Something worth knowing that is not tied to one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observation {
    /// A stable name for the kind of observation.
    pub kind: &'static str,
    /// The account it concerns.
    pub account: String,
    /// What was seen.
    pub explanation: String,
}

/// The sweep's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sweep {
    /// Blocking and advisory findings of every path, each with its principal and bucket.
    pub findings: Vec<Finding>,
    /// Every path checked.
    pub paths: Vec<Path>,
    /// Observations not tied to a path.
    pub observations: Vec<Observation>,
}

impl Sweep {
    /// Whether any path is blocked.
    pub fn has_blocking(&self) -> bool {
        self.findings.iter().any(|f| f.blocking)
    }
}

/// One read path a bucket policy intends: who may read which objects of which bucket, and
/// the statement that says so. [`sweep`] checks each; `impact` compares their verdicts
/// before and after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntendedPath {
    /// The principal (role, user or session ARN, or an account root standing in for an
    /// account the snapshot does not describe).
    pub principal: String,
    /// The account that owns the bucket.
    pub owner: String,
    /// The bucket, in its partition.
    pub bucket: BucketRef,
    /// The object tested, or `None` when the statement names no object the sweep can test.
    pub object: Option<PathObject>,
    /// Why this principal is on the path (the statement that grants it).
    pub granted_by: String,
}

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

/// Every cross-account object-read path the bucket policies of a snapshot intend, in the
/// order of accounts, buckets, statements and principals.
pub fn bucket_policy_paths(snap: &Snapshot) -> Vec<IntendedPath> {
    let mut out = Vec::new();
    for (owner, account) in &snap.accounts {
        for (bucket_name, bucket) in &account.s3 {
            let Some(policy) = &bucket.policy else {
                continue;
            };
            for st in &policy.policy.statements {
                if st.effect != Effect::Allow {
                    continue;
                }
                let reads = st
                    .action
                    .entries
                    .iter()
                    .any(|a| a.is_match_lower("s3", "getobject"))
                    != st.action.not;
                let Some(spec) = st.principal.as_ref().filter(|p| !p.not && reads) else {
                    continue;
                };
                let granted_by = statement_label(&policy.name, st);
                // The bucket's partition follows its Region.
                let bucket_ref = BucketRef::new(Partition::of_region(&bucket.region), bucket_name);
                let objects = objects_for(snap, owner, &bucket_ref, &policy.document, st.index);
                for p in &spec.entries {
                    for principal in principals_for(snap, p, owner, &bucket_ref) {
                        let path = |object: Option<PathObject>| IntendedPath {
                            principal: principal.clone(),
                            owner: owner.clone(),
                            bucket: bucket_ref.clone(),
                            object,
                            granted_by: granted_by.clone(),
                        };
                        if objects.is_empty() {
                            out.push(path(None));
                        }
                        out.extend(objects.iter().map(|o| path(Some(o.clone()))));
                    }
                }
            }
        }
    }
    out
}

/// Sweeps a snapshot.
pub fn sweep(snap: &Snapshot) -> Sweep {
    let mut out = Sweep {
        findings: Vec::new(),
        paths: Vec::new(),
        observations: Vec::new(),
    };
    let mut granted_accounts: BTreeSet<(String, String)> = BTreeSet::new(); // (owner, grantee account)
    for path in bucket_policy_paths(snap) {
        if let Some(acct) = iam_eval::arn::Arn::parse(&path.principal).map(|a| a.account.to_owned())
        {
            granted_accounts.insert((path.owner.clone(), acct));
        }
        match &path.object {
            // Never a dropped path: say why it was not checked.
            None => out.paths.push(Path {
                principal: path.principal.clone(),
                bucket: path.bucket.name.clone(),
                object: String::new(),
                granted_by: path.granted_by.clone(),
                verdict: Verdict::Unknown,
                blocking: Vec::new(),
                error: Some("the statement's Resource names no object of this bucket the sweep can test (no listed object matches it, and it has no object prefix)".into()),
            }),
            Some(object) => check_path(
                snap,
                &path.principal,
                &path.bucket.object(object.key.as_str()),
                &path.granted_by,
                &mut out,
            ),
        }
    }
    key_observations(snap, &granted_accounts, &mut out);
    out.findings.sort_by(|a, b| {
        (!a.blocking, &a.bucket, &a.principal, a.rank).cmp(&(
            !b.blocking,
            &b.bucket,
            &b.principal,
            b.rank,
        ))
    });
    out
}

/// How a path names the statement that intends it: `<policy> statement <index> (Sid <sid>)`.
pub(crate) fn statement_label(policy: &str, st: &iam_eval::policy::Statement) -> String {
    match st.sid.as_deref() {
        Some(sid) => format!("{policy} statement {} (Sid {sid})", st.index),
        None => format!("{policy} statement {}", st.index),
    }
}

/// The principals a policy principal stands for on a cross-account read path.
pub(crate) fn principals_for(
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
        PolicyPrincipal::Session(arn) => match iam_eval::arn::Arn::parse(arn) {
            Some(a) if a.account != owner => vec![arn.clone()],
            _ => Vec::new(),
        },
        PolicyPrincipal::Account(account) | PolicyPrincipal::AccountIn { account, .. }
            if account != owner =>
        {
            // Delegation: the account's own principals whose identity policies reach the bucket.
            let mut found = Vec::new();
            if let Some(iam) = snap.account(account).and_then(|a| a.iam.as_ref()) {
                let object = bucket.objects_arn("*");
                let example = bucket.objects_arn("x");
                let names = iam
                    .roles
                    .iter()
                    .map(|r| r.arn.clone())
                    .chain(iam.users.iter().map(|u| u.arn.clone()));
                for arn in names {
                    let Some(pp) = iam.principal_policies(&arn) else {
                        continue;
                    };
                    let mentions = pp.identity.iter().any(|np| {
                        np.policy.statements.iter().any(|s| {
                            s.effect == Effect::Allow
                                && s.action
                                    .entries
                                    .iter()
                                    .any(|a| a.is_match_lower("s3", "getobject"))
                                    != s.action.not
                                && s.resource.as_ref().is_some_and(|r| {
                                    !r.not
                                        && r.entries.iter().any(|e| match e {
                                            iam_eval::policy::ResourceEntry::Any => true,
                                            iam_eval::policy::ResourceEntry::Arn(p) => {
                                                p.is_match(&object) || p.is_match(&example)
                                            }
                                            _ => false,
                                        })
                                })
                        })
                    });
                    if mentions {
                        found.push(arn);
                    }
                }
            }
            if found.is_empty() {
                found.push(refs::account_root(bucket.partition, account));
            }
            found
        }
        _ => Vec::new(),
    }
}

/// The listed objects a statement covers, or one representative key.
fn objects_for(
    snap: &Snapshot,
    owner: &str,
    bucket: &BucketRef,
    document: &Value,
    index: usize,
) -> Vec<PathObject> {
    objects_matching(snap, owner, bucket, &statement_resources(document, index))
}

/// The `Resource` strings of statement `index` of a policy document.
pub(crate) fn statement_resources(document: &Value, index: usize) -> Vec<String> {
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
/// representative key under the first object prefix they grant; empty when they name no
/// object of the bucket.
pub(crate) fn objects_matching(
    snap: &Snapshot,
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
    let listed: Vec<PathObject> = snap
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
                key: rest.replace('*', "example").replace('?', "x"),
                shown: rest.to_owned(),
            })
        })
        .filter(|o| !o.key.is_empty());
    example.map(|o| vec![o]).unwrap_or_default()
}

fn check_path(
    snap: &Snapshot,
    principal: &str,
    object: &refs::ObjectRef,
    granted_by: &str,
    out: &mut Sweep,
) {
    let bucket = object.bucket.name.as_str();
    let key = object.key.clone().unwrap_or_default();
    let req = match adhoc_request(principal, "s3:GetObject", &object.arn()) {
        Ok(req) => req,
        Err(e) => {
            // Never a dropped path: say why it was not checked.
            out.paths.push(Path {
                principal: principal.to_owned(),
                bucket: bucket.to_owned(),
                object: key,
                granted_by: granted_by.to_owned(),
                verdict: Verdict::Unknown,
                blocking: Vec::new(),
                error: Some(e.to_string()),
            });
            return;
        }
    };
    let d = diagnose(snap, &req);
    out.paths.push(Path {
        principal: principal.to_owned(),
        bucket: bucket.to_owned(),
        object: key,
        granted_by: granted_by.to_owned(),
        verdict: d.verdict,
        blocking: d.blocking().map(|f| f.code.to_string()).collect(),
        error: None,
    });
    for mut f in d.findings {
        f.principal = Some(principal.to_owned());
        f.bucket = Some(bucket.to_owned());
        let dup = out.findings.iter().any(|g| {
            g.code == f.code
                && g.principal == f.principal
                && g.bucket == f.bucket
                && g.action == f.action
                && g.explanation == f.explanation
        });
        if !dup {
            out.findings.push(f);
        }
    }
}

/// Key policies that grant an external account which no bucket policy of the key's account
/// grants: a sign that one of the three policies was fixed and the others forgotten.
fn key_observations(snap: &Snapshot, granted: &BTreeSet<(String, String)>, out: &mut Sweep) {
    for (owner, account) in &snap.accounts {
        for key in account.kms.values() {
            let Some(policy) = &key.policy else { continue };
            for st in &policy.policy.statements {
                let decrypts = st
                    .action
                    .entries
                    .iter()
                    .any(|a| a.is_match_lower("kms", "decrypt"))
                    != st.action.not;
                let Some(spec) = st
                    .principal
                    .as_ref()
                    .filter(|p| st.effect == Effect::Allow && !p.not && decrypts)
                else {
                    continue;
                };
                for p in &spec.entries {
                    let ext = match p {
                        PolicyPrincipal::Account(a)
                        | PolicyPrincipal::AccountIn { account: a, .. }
                        | PolicyPrincipal::Role { account: a, .. }
                        | PolicyPrincipal::User { account: a, .. } => a.clone(),
                        _ => continue,
                    };
                    if ext == *owner || granted.contains(&(owner.clone(), ext.clone())) {
                        continue;
                    }
                    let obs = Observation {
                        kind: "KEY_GRANT_WITHOUT_BUCKET_GRANT",
                        account: owner.clone(),
                        explanation: format!(
                            "The key policy of `{}` lets account {ext} decrypt, but no bucket policy of account {owner} grants {ext} an object read: either a bucket grant is missing, or the key grant is left over and can be removed.",
                            key.metadata.arn
                        ),
                    };
                    if !out.observations.contains(&obs) {
                        out.observations.push(obs);
                    }
                }
            }
        }
    }
}

/// The sweep as text: one line per path, then the blocking causes with their fixes.
pub fn render_text(s: &Sweep) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let blocked = s
        .paths
        .iter()
        .filter(|p| p.verdict == Verdict::Denied)
        .count();
    let _ = writeln!(
        out,
        "{} cross-account read path{} checked, {blocked} blocked",
        s.paths.len(),
        if s.paths.len() == 1 { "" } else { "s" }
    );
    for p in &s.paths {
        let v = match p.verdict {
            Verdict::Denied => "DENIED ",
            Verdict::Allowed => "ALLOWED",
            Verdict::Unknown => "UNKNOWN",
        };
        let codes = if p.blocking.is_empty() {
            String::new()
        } else {
            format!("  [{}]", p.blocking.join(", "))
        };
        let _ = writeln!(
            out,
            "  {v} {} → s3://{}/{}{codes}",
            p.principal, p.bucket, p.object
        );
    }
    for f in s.findings.iter().filter(|f| f.blocking) {
        let _ = writeln!(
            out,
            "\n{} [{}] {} → {} — {} must act",
            f.code,
            f.action.as_deref().unwrap_or("-"),
            f.principal.as_deref().unwrap_or("?"),
            f.bucket.as_deref().unwrap_or("?"),
            crate::diagnose::who_acts(f)
        );
        let _ = writeln!(out, "  {}", f.explanation);
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "  $ {}", fix.cli);
        }
    }
    let advisory: Vec<_> = s.findings.iter().filter(|f| !f.blocking).collect();
    if !advisory.is_empty() || !s.observations.is_empty() {
        let _ = writeln!(out, "\nAlso noticed:");
        let mut seen = BTreeSet::new();
        for f in advisory {
            if seen.insert((f.code, f.explanation.clone())) {
                let _ = writeln!(out, "  - {}: {}", f.code, f.explanation);
            }
        }
        for o in &s.observations {
            let _ = writeln!(out, "  - {}: {}", o.kind, o.explanation);
        }
    }
    out
}

//! A synthetic organization for the sweep benchmark (`benches/sweep_org.rs`,
//! `scripts/bench-sweep`) and its test (`tests/sweep_org.rs`): N accounts, each with
//! buckets encrypted under its own customer managed key, roles that read its own buckets,
//! and reader roles in other accounts granted its buckets by bucket policy, key policy or
//! KMS grant (by role or by delegation to the account). Some grants are broken on purpose,
//! one kind after another, and the breaks are written down; some roles ask for buckets
//! nobody granted them (one-sided, not breaks). Deterministic: the same parameters give the
//! same organization.
//!
//! The files are in the project's snapshot format, one account per file, written through
//! the snapshot writer (`auditor::snapshot::write`), as the state store holds them.

#![allow(
    dead_code,
    reason = "the benchmark and the test each use part of the generator"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{json, Value};

/// The kinds of planted breaks, each with the blocking code the sweep must report.
pub const KINDS: [(&str, &str); 5] = [
    ("key_policy_missing_reader", "KEY_POLICY_NO_ALLOW"),
    ("bucket_policy_missing_reader", "BUCKET_POLICY_NO_ALLOW"),
    ("iam_missing_kms_decrypt", "IDENTITY_POLICY_NO_ALLOW"),
    ("key_disabled", "KEY_NOT_USABLE"),
    ("aws_managed_key_cross_account", "AWS_MANAGED_KEY"),
];

const REGION: &str = "us-east-1";

/// The shape of the organization.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Accounts.
    pub accounts: usize,
    /// Shared buckets per account (each encrypted under the account's key).
    pub buckets: usize,
    /// Listed objects per bucket.
    pub objects: usize,
    /// Grants of each account's buckets to readers in other accounts.
    pub grants: usize,
    /// One grant in this many is broken.
    pub break_every: usize,
    /// One grant in this many comes with a role that asks for a bucket nobody granted.
    pub decoy_every: usize,
}

impl Params {
    /// The default shape for `accounts` accounts.
    pub fn new(accounts: usize) -> Params {
        Params {
            accounts,
            buckets: 4,
            objects: 2,
            grants: 3,
            break_every: 7,
            decoy_every: 11,
        }
    }
}

/// A generated organization: each account's snapshot document, and what the sweep must find.
pub struct Org {
    /// (account id, snapshot document with that account only).
    pub accounts: Vec<(String, Value)>,
    /// `{"breaks": [{"principal", "bucket", "kind", "code"}], "one_sided": [...], "grants": N}`.
    pub expected: Value,
}

fn account_id(i: usize) -> String {
    format!("{:012}", 100_000_000_000u64 + i as u64)
}

fn canonical_id(i: usize) -> String {
    format!("{:064x}", 0x5eed_0000_u64 + i as u64)
}

fn key_arn(i: usize, n: usize) -> String {
    format!(
        "arn:aws:kms:{REGION}:{}:key/{:08x}-0000-4000-8000-{n:012x}",
        account_id(i),
        i
    )
}

fn aws_s3_key_arn(i: usize) -> String {
    key_arn(i, 0xa75)
}

fn role_arn(i: usize, name: &str) -> String {
    format!("arn:aws:iam::{}:role/{name}", account_id(i))
}

fn bucket_name(i: usize, what: &str) -> String {
    format!("org{i:05}-{what}")
}

/// One grant of a bucket of `owner` to a reader role in `reader`.
struct Grant {
    owner: usize,
    reader: usize,
    /// The bucket.
    bucket: String,
    /// The key that encrypts it.
    key: String,
    /// The reader role's name.
    role: String,
    /// 0: bucket and key policy name the role; 1: the bucket policy names the reader's
    /// account (delegation); 2: a KMS grant instead of a key policy statement.
    style: usize,
    /// The planted break, an index into [`KINDS`].
    broken: Option<usize>,
}

/// What one account holds while the organization is built.
#[derive(Default)]
struct Acct {
    roles: Vec<Value>,
    /// Bucket name → (key ARN, policy statements granting readers).
    buckets: BTreeMap<String, (String, Vec<Value>)>,
    /// Key ARN → (state, extra key policy statements, grants, AWS managed).
    keys: BTreeMap<String, (String, Vec<Value>, Vec<Value>, bool)>,
}

/// FNV-1a, for role ids that differ by name.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn role(i: usize, name: &str, policies: Vec<(String, Vec<Value>)>) -> Value {
    json!({
        "Path": "/",
        "RoleName": name,
        "RoleId": format!("AROA{:05}{:012X}", i, fnv(name) & 0xFFFF_FFFF_FFFF),
        "Arn": role_arn(i, name),
        "CreateDate": "2026-01-05T10:00:00+00:00",
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{}:root", account_id(i))}, "Action": "sts:AssumeRole"}]},
        "InstanceProfileList": [],
        "RolePolicyList": policies.into_iter().map(|(name, statements)| json!({
            "PolicyName": name,
            "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
        })).collect::<Vec<_>>(),
        "AttachedManagedPolicies": [],
        "Tags": [],
    })
}

/// Generates the organization.
pub fn generate(p: &Params) -> Org {
    let n = p.accounts;
    let mut accts: Vec<Acct> = (0..n).map(|_| Acct::default()).collect();
    for (i, a) in accts.iter_mut().enumerate() {
        a.keys.insert(
            key_arn(i, 1),
            ("Enabled".into(), Vec::new(), Vec::new(), false),
        );
        a.keys.insert(
            aws_s3_key_arn(i),
            ("Enabled".into(), Vec::new(), Vec::new(), true),
        );
        for b in 0..p.buckets {
            a.buckets.insert(
                bucket_name(i, &format!("data-{b}")),
                (key_arn(i, 1), Vec::new()),
            );
        }
        // A bucket nobody outside the account is granted.
        a.buckets
            .insert(bucket_name(i, "private"), (key_arn(i, 1), Vec::new()));
        // The account's own application reads its own buckets: no cross-account path.
        a.roles.push(role(
            i,
            "app",
            vec![(
                "read-own-buckets".into(),
                vec![
                    json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{}*/*", bucket_name(i, ""))}),
                    json!({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn(i, 1)}),
                ],
            )],
        ));
    }

    let mut grants = Vec::new();
    let mut breaks = Vec::new();
    let mut one_sided = Vec::new();
    for owner in 0..n {
        let mut readers = BTreeSet::new();
        for g in 0..p.grants {
            let serial = owner * p.grants + g;
            // A distinct reader account per grant of one owner, spread over the organization.
            let mut reader = (owner + 1 + g * 13) % n;
            while reader == owner || readers.contains(&reader) {
                reader = (reader + 1) % n;
                if readers.len() + 1 >= n {
                    break;
                }
            }
            if reader == owner {
                continue;
            }
            readers.insert(reader);
            let broken = (serial % p.break_every == p.break_every - 1)
                .then(|| (serial / p.break_every) % KINDS.len());
            let mut style = serial % 3;
            let (bucket, key) = match broken {
                Some(3) => {
                    // A dedicated bucket under a dedicated key, disabled.
                    let key = key_arn(owner, 0x100 + g);
                    accts[owner].keys.insert(
                        key.clone(),
                        ("Disabled".into(), Vec::new(), Vec::new(), false),
                    );
                    let bucket = bucket_name(owner, &format!("archive-{g}"));
                    accts[owner]
                        .buckets
                        .insert(bucket.clone(), (key.clone(), Vec::new()));
                    (bucket, key)
                }
                Some(4) => {
                    // A dedicated bucket encrypted with the AWS managed key `aws/s3`.
                    let key = aws_s3_key_arn(owner);
                    let bucket = bucket_name(owner, &format!("legacy-{g}"));
                    accts[owner]
                        .buckets
                        .insert(bucket.clone(), (key.clone(), Vec::new()));
                    style = 0;
                    (bucket, key)
                }
                _ => (
                    bucket_name(owner, &format!("data-{}", g % p.buckets)),
                    key_arn(owner, 1),
                ),
            };
            if broken == Some(2) && style == 2 {
                // A KMS grant needs no IAM permission: break the IAM side of a key policy grant.
                style = 0;
            }
            grants.push(Grant {
                owner,
                reader,
                bucket,
                key,
                role: format!("reader-{owner:05}-{g}"),
                style,
                broken,
            });
            if serial % p.decoy_every == 5 {
                // A role that asks for the owner's private bucket, which nobody granted.
                let name = format!("curious-{owner:05}-{g}");
                let private = bucket_name(owner, "private");
                accts[reader].roles.push(role(
                    reader,
                    &name,
                    vec![(
                        format!("read-{private}"),
                        vec![json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{private}/*")})],
                    )],
                ));
                one_sided.push(json!({"principal": role_arn(reader, &name), "bucket": private}));
            }
        }
    }

    for (serial, gr) in grants.iter().enumerate() {
        let reader_arn = role_arn(gr.reader, &gr.role);
        let kind = gr.broken;
        // The bucket side.
        if kind != Some(1) {
            let principal = if gr.style == 1 {
                format!("arn:aws:iam::{}:root", account_id(gr.reader))
            } else {
                reader_arn.clone()
            };
            if let Some((_, statements)) = accts[gr.owner].buckets.get_mut(&gr.bucket) {
                statements.push(json!({"Sid": format!("Read{serial}"), "Effect": "Allow",
                    "Principal": {"AWS": principal}, "Action": "s3:GetObject",
                    "Resource": format!("arn:aws:s3:::{}/*", gr.bucket)}));
            }
        }
        // The key side (nothing to grant on an AWS managed key: its policy is fixed).
        if kind != Some(0) && kind != Some(4) {
            if let Some((_, statements, key_grants, _)) = accts[gr.owner].keys.get_mut(&gr.key) {
                if gr.style == 2 {
                    key_grants.push(json!({
                        "KeyId": gr.key,
                        "GrantId": format!("{:064x}", 0x6a_0000 + serial),
                        "Name": format!("read-{}", gr.bucket),
                        "CreationDate": "2026-01-05T10:00:00+00:00",
                        "GranteePrincipal": reader_arn,
                        "IssuingAccount": format!("arn:aws:iam::{}:root", account_id(gr.owner)),
                        "Operations": ["Decrypt"],
                    }));
                } else {
                    statements.push(json!({"Sid": format!("Decrypt{serial}"), "Effect": "Allow",
                        "Principal": {"AWS": reader_arn}, "Action": "kms:Decrypt", "Resource": "*",
                        "Condition": {"StringEquals": {"kms:ViaService": format!("s3.{REGION}.amazonaws.com")}}}));
                }
            }
        }
        // The reader's side.
        let mut statements = vec![json!({"Effect": "Allow", "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{}/*", gr.bucket)})];
        if kind != Some(2) {
            statements
                .push(json!({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": gr.key}));
        }
        accts[gr.reader].roles.push(role(
            gr.reader,
            &gr.role,
            vec![(format!("read-{}", gr.bucket), statements)],
        ));
        if let Some(k) = kind {
            let (name, code) = KINDS[k];
            breaks.push(
                json!({"principal": reader_arn, "bucket": gr.bucket, "kind": name, "code": code}),
            );
        }
    }

    let accounts = accts
        .into_iter()
        .enumerate()
        .map(|(i, a)| (account_id(i), account_document(i, a, p)))
        .collect();
    Org {
        accounts,
        expected: json!({"grants": grants.len(), "breaks": breaks, "one_sided": one_sided}),
    }
}

/// One account's snapshot document.
fn account_document(i: usize, a: Acct, p: &Params) -> Value {
    let id = account_id(i);
    let canonical = canonical_id(i);
    let full = |principal: bool| {
        let mut st = json!({"Effect": "Allow", "Action": "*", "Resource": "*"});
        if principal {
            st["Principal"] = json!("*");
        }
        json!({"Version": "2012-10-17", "Statement": [st]})
    };
    let mut s3 = serde_json::Map::new();
    for (name, (key, statements)) in a.buckets {
        let mut policy_statements = statements;
        policy_statements.push(json!({"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*",
            "Action": "s3:*", "Resource": [format!("arn:aws:s3:::{name}"), format!("arn:aws:s3:::{name}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}));
        let aws_managed = key == aws_s3_key_arn(i);
        let default = if aws_managed {
            json!({"SSEAlgorithm": "aws:kms"})
        } else {
            json!({"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key})
        };
        let objects: serde_json::Map<String, Value> = (0..p.objects)
            .map(|o| {
                (
                    format!("reports/part-{o}.csv"),
                    json!({"ContentLength": 1024, "ServerSideEncryption": "aws:kms",
                        "SSEKMSKeyId": key, "BucketKeyEnabled": false,
                        "Owner": {"ID": canonical}}),
                )
            })
            .collect();
        s3.insert(
            name,
            json!({
                "region": REGION,
                "policy": {"Version": "2012-10-17", "Statement": policy_statements},
                "encryption": {"ServerSideEncryptionConfiguration": {"Rules": [
                    {"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": false}]}},
                "ownership_controls": {"OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}},
                "objects": objects,
            }),
        );
    }
    let mut kms = serde_json::Map::new();
    for (arn, (state, statements, grants, aws_managed)) in a.keys {
        let key_id = arn.rsplit('/').next().unwrap_or_default().to_owned();
        let policy = if aws_managed {
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "*"},
                 "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                 "Resource": "*",
                 "Condition": {"StringEquals": {"kms:CallerAccount": id, "kms:ViaService": format!("s3.{REGION}.amazonaws.com")}}}]})
        } else {
            let mut all = vec![
                json!({"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{id}:root")}, "Action": "kms:*", "Resource": "*"}),
            ];
            all.extend(statements);
            json!({"Version": "2012-10-17", "Statement": all})
        };
        kms.insert(
            arn.clone(),
            json!({
                "metadata": {"AWSAccountId": id, "KeyId": key_id, "Arn": arn, "Enabled": state == "Enabled",
                    "KeyState": state, "KeyManager": if aws_managed { "AWS" } else { "CUSTOMER" },
                    "KeyUsage": "ENCRYPT_DECRYPT", "KeySpec": "SYMMETRIC_DEFAULT", "MultiRegion": false},
                "policy": policy,
                "grants": grants,
                "aliases": if aws_managed { json!(["alias/aws/s3"]) } else { json!([format!("alias/org{i:05}-data")]) },
            }),
        );
    }
    json!({"accounts": {id.clone(): {
        "canonical_id": canonical,
        "organization": {"id": "o-synth00000", "scp": [[full(false)]], "rcp": [[full(true)]]},
        "iam": {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": a.roles, "Policies": []},
        "s3": s3,
        "kms": kms,
    }}})
}

/// Writes each account to `<dir>/<account-id>.json` through the snapshot reader and writer
/// (so the files are what the state store would hold), and the expected breaks to
/// `expected`; returns the number of bytes written.
pub fn write(org: &Org, dir: &Path, expected: &Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let mut bytes = 0u64;
    for (id, doc) in &org.accounts {
        let snap = auditor::snapshot::Snapshot::from_value(doc)
            .map_err(|e| std::io::Error::other(format!("account {id}: {e}")))?;
        let text = serde_json::to_string(&auditor::snapshot::write::to_value(&snap))?;
        bytes += text.len() as u64;
        std::fs::write(dir.join(format!("{id}.json")), text)?;
    }
    std::fs::write(expected, serde_json::to_string_pretty(&org.expected)?)?;
    Ok(bytes)
}

/// What a sweep found against what was planted.
#[derive(Debug, Default)]
pub struct Check {
    /// Denied (principal, bucket) pairs.
    pub found: usize,
    /// Planted breaks.
    pub planted: usize,
    /// Planted and not found (or found without the planted code).
    pub missing: Vec<String>,
    /// Found and not planted.
    pub false_breaks: Vec<String>,
    /// Paths whose verdict is unknown.
    pub unknown: usize,
    /// One-sided requests that were reported as paths.
    pub one_sided_reported: Vec<String>,
    /// Paths checked.
    pub paths: usize,
}

impl Check {
    /// Found exactly what was planted, and nothing undecided.
    pub fn exact(&self) -> bool {
        self.missing.is_empty()
            && self.false_breaks.is_empty()
            && self.unknown == 0
            && self.one_sided_reported.is_empty()
    }
}

/// Compares the JSON output of `sweep --format json` with the expected breaks.
pub fn check(expected: &Value, sweep: &Value) -> Check {
    let mut out = Check::default();
    let paths = sweep["paths"].as_array().cloned().unwrap_or_default();
    out.paths = paths.len();
    let mut found: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut reported = BTreeSet::new();
    for p in &paths {
        let pair = (
            p["principal"].as_str().unwrap_or_default().to_owned(),
            p["bucket"].as_str().unwrap_or_default().to_owned(),
        );
        reported.insert(pair.clone());
        match p["verdict"].as_str() {
            Some("denied") => {
                let codes = found.entry(pair).or_default();
                for c in p["blocking"].as_array().into_iter().flatten() {
                    codes.insert(c.as_str().unwrap_or_default().to_owned());
                }
            }
            Some("unknown") => out.unknown += 1,
            _ => {}
        }
    }
    let planted: BTreeMap<(String, String), String> = expected["breaks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            (
                (
                    b["principal"].as_str().unwrap_or_default().to_owned(),
                    b["bucket"].as_str().unwrap_or_default().to_owned(),
                ),
                b["code"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.found = found.len();
    out.planted = planted.len();
    for (pair, code) in &planted {
        if !found.get(pair).is_some_and(|codes| codes.contains(code)) {
            out.missing
                .push(format!("{} → {} ({code})", pair.0, pair.1));
        }
    }
    for pair in found.keys() {
        if !planted.contains_key(pair) {
            out.false_breaks.push(format!("{} → {}", pair.0, pair.1));
        }
    }
    for o in expected["one_sided"].as_array().into_iter().flatten() {
        let pair = (
            o["principal"].as_str().unwrap_or_default().to_owned(),
            o["bucket"].as_str().unwrap_or_default().to_owned(),
        );
        if reported.contains(&pair) {
            out.one_sided_reported
                .push(format!("{} → {}", pair.0, pair.1));
        }
    }
    out
}

/// A policy change at one hub of an organization, for the impact benchmark
/// (`benches/impact_org.rs`, `scripts/bench-impact`) and its test (`tests/impact_org.rs`).
pub struct Hub {
    /// The organization before the change, every account in one snapshot document.
    pub before: Value,
    /// The same after the change.
    pub after: Value,
    /// `{"readers": [role ARN], "bucket": name, "objects": N, "code": "KEY_POLICY_NO_ALLOW",
    /// "accounts": N}`: every path of each reader on the bucket's listed objects must break
    /// with the code, and nothing else may change.
    pub expected: Value,
}

/// An organization of `readers / 10` accounts (at least 3) as [`generate`] makes them, and
/// one more account, the hub, with a bucket every reader role reads, the readers spread ten
/// to an account (its bucket policy and its key's policy each grant the readers' accounts in
/// one statement; each reader's identity policy names the bucket and the key). The change is an edit of the hub key's policy that drops the readers' statement:
/// every reader's reads break, every other path stays as it was.
pub fn hub(readers: usize) -> Hub {
    let p = Params::new((readers / 10).max(3));
    let org = generate(&p);
    let at = p.accounts;
    let key = key_arn(at, 1);
    let bucket = bucket_name(at, "shared");
    let arns: Vec<String> = (0..readers)
        .map(|r| role_arn(r % p.accounts, &format!("hub-reader-{r:05}")))
        .collect();
    // AWS caps a bucket policy at 20 KB and a key policy at 32 KB: both name the readers'
    // accounts (delegation), whose readers' identity policies name the bucket and the key.
    let reader_accounts: Vec<String> = (0..p.accounts.min(readers))
        .map(|i| format!("arn:aws:iam::{}:root", account_id(i)))
        .collect();
    let hub_account = |with_key_grant: bool| {
        let mut a = Acct::default();
        a.buckets.insert(
            bucket.clone(),
            (
                key.clone(),
                vec![json!({"Sid": "HubReaders", "Effect": "Allow",
                    "Principal": {"AWS": reader_accounts}, "Action": "s3:GetObject",
                    "Resource": format!("arn:aws:s3:::{bucket}/*")})],
            ),
        );
        let statements = if with_key_grant {
            vec![json!({"Sid": "HubReadersDecrypt", "Effect": "Allow",
                "Principal": {"AWS": reader_accounts}, "Action": "kms:Decrypt", "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": format!("s3.{REGION}.amazonaws.com")}}})]
        } else {
            Vec::new()
        };
        a.keys.insert(
            key.clone(),
            ("Enabled".into(), statements, Vec::new(), false),
        );
        account_document(at, a, &p)
    };
    let mut accounts = serde_json::Map::new();
    for (_, doc) in org.accounts {
        if let Some(map) = doc["accounts"].as_object() {
            accounts.extend(map.clone());
        }
    }
    for (r, arn) in arns.iter().enumerate() {
        let name = arn.rsplit('/').next().unwrap_or_default();
        let reader = role(
            r % p.accounts,
            name,
            vec![(
                format!("read-{bucket}"),
                vec![
                    json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{bucket}/*")}),
                    json!({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key}),
                ],
            )],
        );
        if let Some(list) = accounts
            .get_mut(&account_id(r % p.accounts))
            .and_then(|a| a["iam"]["RoleDetailList"].as_array_mut())
        {
            list.push(reader);
        }
    }
    let with = |hub: Value| {
        let mut all = accounts.clone();
        if let Some(map) = hub["accounts"].as_object() {
            all.extend(map.clone());
        }
        json!({"description": format!("synthetic organization: {} accounts and a hub bucket read by {readers} roles", p.accounts + 1),
            "accounts": all})
    };
    Hub {
        before: with(hub_account(true)),
        after: with(hub_account(false)),
        expected: json!({"readers": arns, "bucket": bucket, "objects": p.objects,
            "code": "KEY_POLICY_NO_ALLOW", "accounts": p.accounts + 1}),
    }
}

/// What an impact found against what the hub change must break.
#[derive(Debug, Default)]
pub struct HubCheck {
    /// Broken paths.
    pub broken: usize,
    /// Paths that must break.
    pub expected: usize,
    /// What is wrong, if anything.
    pub wrong: Vec<String>,
    /// Paths unchanged.
    pub unchanged: usize,
}

/// Compares the JSON output of `impact --format json` with the hub change's expected breaks.
pub fn check_hub(expected: &Value, impact: &Value) -> HubCheck {
    let readers: BTreeSet<&str> = expected["readers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let objects = expected["objects"].as_u64().unwrap_or_default() as usize;
    let code = expected["code"].as_str().unwrap_or_default();
    let bucket = expected["bucket"].as_str().unwrap_or_default();
    let mut out = HubCheck {
        expected: readers.len() * objects,
        unchanged: impact["unchanged"].as_u64().unwrap_or_default() as usize,
        ..HubCheck::default()
    };
    let mut seen = BTreeSet::new();
    for p in impact["broken"].as_array().into_iter().flatten() {
        out.broken += 1;
        let principal = p["principal"].as_str().unwrap_or_default();
        let id = format!("{principal} → {}/{}", p["bucket"], p["object"]);
        let has_code = p["blocking"]
            .as_array()
            .is_some_and(|b| b.iter().any(|c| c == code));
        if !readers.contains(principal) || p["bucket"] != bucket {
            out.wrong.push(format!("not planted: {id}"));
        } else if !has_code || p["fixes_verified"] != true {
            out.wrong
                .push(format!("without {code} or a verified fix: {id}"));
        }
        seen.insert(principal.to_owned());
    }
    for list in ["fixed", "opened", "undecided"] {
        let n = impact[list].as_array().map_or(0, Vec::len);
        if n > 0 {
            out.wrong.push(format!("{n} {list} paths"));
        }
    }
    if out.broken != out.expected || seen.len() != readers.len() {
        out.wrong.push(format!(
            "{} broken paths of {} readers, {} expected of {}",
            out.broken,
            seen.len(),
            out.expected,
            readers.len()
        ));
    }
    out
}

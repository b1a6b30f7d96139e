//! Deployment checks: the templates against the code they deploy.
//!
//! * **Permissions.** Every AWS call in `crates/live/src` is found by name (the operation
//!   names of the SDK crates the live crate depends on, read from their sources, and those of
//!   its own clients, [`HAND_WRITTEN`]), mapped to
//!   its IAM action by [`OPERATIONS`], and must be granted to the right role: the reads to the
//!   member role (`templates/member-role.yaml`) and to the function's role (`template.yaml`,
//!   for the function's own account), `sts:AssumeRole` and `sns:Publish` to the function's role
//!   only. An SDK call missing from the table fails the test, so a new call cannot slip in
//!   unmapped. In the other direction nothing broader may be granted: no wildcard in an action,
//!   no `s3:*`, no `kms:Decrypt`, no action the code does not call apart from
//!   [`PLATFORM_ACTIONS`], no `NotAction`/`NotResource`, no managed policies, `Resource: "*"`
//!   only where the API knows no other resource, and `s3:GetObject` only behind the
//!   `ObjectMetadata` condition (off by default) — except on the objects of the stack's state
//!   bucket, where the function's role alone reads and writes (`s3:PutObject` and
//!   `s3:ListBucket` nowhere else).
//! * **Triggers.** The EventBridge patterns of `template.yaml` and
//!   `templates/event-forwarding.yaml` are identical, and each event name and error code in
//!   them is one the function diagnoses (`auditor::event::parse_events`), and the other way
//!   round over a list of candidates: the template never declares a trigger the code ignores,
//!   nor misses one it handles.
//! * **Change triggers.** The change rules (one per service, for successful calls only) list
//!   exactly the calls `auditor::event::CHANGE_EVENTS` names, each read as a change by
//!   `parse_events`, and the forwarding template's change rules are the same.
//! * **Environment.** The variables the template sets are ones `crates/live` reads.
//!
//! The checks take template text, so the tests at the end run them on modified copies to show
//! that they fail when a permission is removed or widened.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails loudly on a missing or malformed file"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use Scope::{Auditor, Free, ObjectRead, OrgRead, Read, State};

// ---------------------------------------------------------------------------------------------
// The mapping table
// ---------------------------------------------------------------------------------------------

/// Who needs a permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// A read of an account's state: the member role, and the function's role for its own
    /// account.
    Read,
    /// A read that also exposes object content (`HeadObject` needs `s3:GetObject`): both roles,
    /// but only behind the `ObjectMetadata` condition.
    ObjectRead,
    /// Only the function's role (assume the member role, publish the findings).
    Auditor,
    /// Only the function's role, on the stack's state bucket only.
    State,
    /// The organization's SCPs and RCPs, readable only in the management account or a
    /// delegated administrator: the org reader role (`templates/org-reader.yaml`), and the
    /// function's role behind the `OrgReadsSelf` condition (it runs there itself). Never the
    /// member role.
    OrgRead,
    /// Needs no permission.
    Free,
}

/// SDK operation (the client's snake_case method), the IAM action it needs (whose prefix is
/// also the `aws-sdk-*` crate that has the operation), and who needs it.
///
/// A new SDK call in `crates/live/src` fails `every_aws_call_in_the_live_crate_is_mapped`
/// until it is added here, and then fails the role checks until the templates grant it.
#[rustfmt::skip]
const OPERATIONS: &[(&str, &str, Scope)] = &[
    // aws/s3.rs
    ("get_bucket_location",           "s3:GetBucketLocation",                 Read),
    ("get_bucket_policy",             "s3:GetBucketPolicy",                   Read),
    ("get_bucket_encryption",         "s3:GetEncryptionConfiguration",        Read),
    ("get_bucket_ownership_controls", "s3:GetBucketOwnershipControls",        Read),
    ("get_public_access_block",       "s3:GetBucketPublicAccessBlock",        Read),
    ("head_object",                   "s3:GetObject",                         ObjectRead),
    ("get_object_acl",                "s3:GetObjectAcl",                      ObjectRead),
    ("get_bucket_acl",                "s3:GetBucketAcl",                      Read),
    ("list_buckets",                  "s3:ListAllMyBuckets",                  Read),
    // aws/s3control.rs: S3 Control operations are authorized as `s3:` actions.
    ("get_access_point",              "s3:GetAccessPoint",                    Read),
    ("get_access_point_policy",       "s3:GetAccessPointPolicy",              Read),
    // aws/kms.rs
    ("describe_key",                  "kms:DescribeKey",                      Read),
    ("get_key_policy",                "kms:GetKeyPolicy",                     Read),
    ("list_grants",                   "kms:ListGrants",                       Read),
    ("list_aliases",                  "kms:ListAliases",                      Read),
    // aws/iam.rs
    ("get_role",                      "iam:GetRole",                          Read),
    ("get_user",                      "iam:GetUser",                          Read),
    ("get_group",                     "iam:GetGroup",                         Read),
    ("list_role_policies",            "iam:ListRolePolicies",                 Read),
    ("list_user_policies",            "iam:ListUserPolicies",                 Read),
    ("list_group_policies",           "iam:ListGroupPolicies",                Read),
    ("get_role_policy",               "iam:GetRolePolicy",                    Read),
    ("get_user_policy",               "iam:GetUserPolicy",                    Read),
    ("get_group_policy",              "iam:GetGroupPolicy",                   Read),
    ("list_attached_role_policies",   "iam:ListAttachedRolePolicies",         Read),
    ("list_attached_user_policies",   "iam:ListAttachedUserPolicies",         Read),
    ("list_attached_group_policies",  "iam:ListAttachedGroupPolicies",        Read),
    ("list_groups_for_user",          "iam:ListGroupsForUser",                Read),
    ("list_policies",                 "iam:ListPolicies",                     Read),
    ("get_policy",                    "iam:GetPolicy",                        Read),
    ("get_policy_version",            "iam:GetPolicyVersion",                 Read),
    // aws/org.rs
    ("describe_organization",         "organizations:DescribeOrganization",   Read),
    ("list_parents",                  "organizations:ListParents",            OrgRead),
    ("list_policies_for_target",      "organizations:ListPoliciesForTarget",  OrgRead),
    ("describe_policy",               "organizations:DescribePolicy",         OrgRead),
    ("list_children",                 "organizations:ListChildren",           OrgRead),
    ("list_targets_for_policy",       "organizations:ListTargetsForPolicy",   OrgRead),
    // aws/ec2.rs
    ("describe_vpc_endpoints",        "ec2:DescribeVpcEndpoints",             Read),
    // aws/mod.rs. STS answers GetCallerIdentity whatever the policies say; the CLI calls it.
    ("assume_role",                   "sts:AssumeRole",                       Auditor),
    ("get_caller_identity",           "sts:GetCallerIdentity",                Free),
    // aws/sns.rs
    ("publish",                       "sns:Publish",                          Auditor),
    // aws/inventory.rs: the organization sweep's whole-account reads (and list_buckets, above)
    // and its account list
    ("get_account_authorization_details", "iam:GetAccountAuthorizationDetails", Read),
    ("list_accounts",                 "organizations:ListAccounts",           Auditor),
    // aws/sqs.rs: the sweep's fan-out
    ("send_message_batch",            "sqs:SendMessage",                      Auditor),
    // aws/state.rs: the state bucket
    ("get_object",                    "s3:GetObject",                         State),
    ("put_object",                    "s3:PutObject",                         State),
    ("list_objects_v2",               "s3:ListBucket",                        State),
    // aws/dynamo.rs: noise control's state, in the function's own table.
    ("update_item",                   "dynamodb:UpdateItem",                  Auditor),
    ("get_item",                      "dynamodb:GetItem",                     Auditor),
    ("scan",                          "dynamodb:Scan",                        Auditor),
];

/// Actions the function's role holds that no code calls: Lambda itself uses them with the
/// execution role.
const PLATFORM_ACTIONS: &[(&str, &str)] = &[
    ("logs:CreateLogStream", "Lambda writes the function's logs"),
    ("logs:PutLogEvents", "Lambda writes the function's logs"),
    (
        "sqs:SendMessage",
        "Lambda sends failed invocations to the on-failure destination",
    ),
    (
        "sqs:ReceiveMessage",
        "Lambda's event source mapping polls the sweep queue",
    ),
    (
        "sqs:DeleteMessage",
        "Lambda's event source mapping deletes the sweep messages handled",
    ),
    (
        "sqs:GetQueueAttributes",
        "Lambda's event source mapping reads the sweep queue's attributes",
    ),
];

/// Actions whose API has no resource type: IAM only accepts `Resource: "*"` for them.
const STAR_RESOURCE_ACTIONS: &[&str] = &[
    "s3:ListAllMyBuckets",
    "kms:ListAliases",
    "iam:GetAccountAuthorizationDetails",
    "organizations:ListAccounts",
    "iam:ListPolicies",
    "organizations:DescribeOrganization",
    "ec2:DescribeVpcEndpoints",
];

/// Never granted, whatever the code calls.
const FORBIDDEN_ACTIONS: &[&str] = &["s3:*", "kms:Decrypt", "kms:*", "iam:*", "sts:*"];

/// Methods named like an SDK operation that are not SDK calls, with the reason. Empty today.
const NOT_SDK_CALLS: &[(&str, &str, &str)] = &[];

/// AWS operations the live crate calls through a client of its own instead of an SDK crate:
/// (the method, named as the SDK's would be; the service; the file that defines it).
/// `aws/ec2.rs` speaks EC2's Query API for `DescribeVpcEndpoints` rather than build the EC2
/// SDK (docs/live.md, "VPC endpoints"). Their calls are found and mapped like SDK calls, so
/// they need their row in [`OPERATIONS`] and their grant in the templates.
const HAND_WRITTEN: &[(&str, &str, &str)] = &[(
    "describe_vpc_endpoints",
    "ec2",
    "crates/live/src/aws/ec2.rs",
)];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Finding the SDK calls
// ---------------------------------------------------------------------------------------------

/// One call site.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Site {
    file: String,
    line: usize,
}

/// An SDK operation the code calls, with where.
#[derive(Debug, Clone)]
struct Call {
    op: String,
    service: String,
    action: String,
    scope: Scope,
    sites: Vec<Site>,
}

/// Rust source with comments, string and char literals blanked (newlines kept, so offsets and
/// line numbers still match the file).
fn strip(src: &str) -> Vec<char> {
    let c: Vec<char> = src.chars().collect();
    let mut out = c.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for ch in out.iter_mut().take(to).skip(from) {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
    };
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            let end = c[i..]
                .iter()
                .position(|&x| x == '\n')
                .map_or(c.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if c[i] == '/' && next == Some('*') {
            let (mut depth, mut j) = (1, i + 2);
            while j < c.len() && depth > 0 {
                if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if c[i] == 'r'
            && matches!(next, Some('"' | '#'))
            && !ident_char(c.get(i.wrapping_sub(1)))
        {
            // Raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (0..hashes).all(|h| c.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            blank(&mut out, i, j);
            i = j;
        } else if c[i] == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            blank(&mut out, i, (j + 1).min(c.len()));
            i = j + 1;
        } else if c[i] == '\'' {
            // A char literal ('x', '\n', '\u{..}'); otherwise a lifetime, left alone.
            if next == Some('\\') {
                let end = c[i + 2..]
                    .iter()
                    .position(|&x| x == '\'')
                    .map_or(c.len(), |p| i + 3 + p);
                blank(&mut out, i, end);
                i = end;
            } else if c.get(i + 2) == Some(&'\'') {
                blank(&mut out, i, i + 3);
                i += 3;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

fn ident_char(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
}

/// Blanks the items under `#[cfg(test)]` (a test module, function or impl).
fn drop_test_items(code: &mut [char]) {
    let text: String = code.iter().collect();
    let starts: Vec<usize> = text.match_indices("#[cfg(test)]").map(|(i, _)| i).collect();
    // Work on char offsets: the stripped text is ASCII where it matters, but be exact.
    let byte_to_char: BTreeMap<usize, usize> = text
        .char_indices()
        .enumerate()
        .map(|(ci, (bi, _))| (bi, ci))
        .collect();
    for b in starts.into_iter().rev() {
        let start = byte_to_char[&b];
        let mut j = start;
        let mut depth = 0usize;
        let mut end = None;
        while j < code.len() {
            match code[j] {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = Some(j + 1);
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = Some(j + 1);
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        let end = end.unwrap_or(code.len());
        for ch in code.iter_mut().take(end).skip(start) {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
    }
}

/// The identifiers of the method chain that ends just before `dot` (`self.iam().list_policies`
/// gives `["iam", "self"]`, nearest first), to tell which client an ambiguous name is called on.
fn chain_before(code: &[char], dot: usize) -> Vec<String> {
    let mut names = Vec::new();
    let mut j = dot;
    loop {
        // j points at a '.' (or the first ':' of '::'); step over it and whitespace.
        while j > 0 && (code[j - 1].is_whitespace() || code[j - 1] == '?') {
            j -= 1;
        }
        if j == 0 {
            break;
        }
        if code[j - 1] == ')' || code[j - 1] == ']' {
            let (open, close) = if code[j - 1] == ')' {
                ('(', ')')
            } else {
                ('[', ']')
            };
            let mut depth = 0;
            while j > 0 {
                j -= 1;
                if code[j] == close {
                    depth += 1;
                } else if code[j] == open {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
            }
            while j > 0 && code[j - 1].is_whitespace() {
                j -= 1;
            }
        }
        let end = j;
        while j > 0 && ident_char(Some(&code[j - 1])) {
            j -= 1;
        }
        if j == end {
            break;
        }
        names.push(code[j..end].iter().collect());
        while j > 0 && code[j - 1].is_whitespace() {
            j -= 1;
        }
        if j > 0 && code[j - 1] == '.' {
            j -= 1;
        } else if j > 1 && code[j - 1] == ':' && code[j - 2] == ':' {
            j -= 2;
        } else {
            break;
        }
    }
    names
}

/// The service a chain names, if any (`iam`, `kms(..)`, `sts`, `org()`...).
fn service_hint(chain: &[String]) -> Option<String> {
    chain.iter().find_map(|n| {
        let n = n.trim_start_matches("aws_sdk_");
        match n {
            "s3" | "s3control" | "kms" | "iam" | "sts" | "sns" | "dynamodb" | "ec2" => {
                Some(n.to_owned())
            }
            "org" | "organizations" => Some("organizations".to_owned()),
            _ => None,
        }
    })
}

/// Every `.name(` and `::name(` in `code` whose name is an SDK operation, with its line and
/// the service its chain names.
fn method_calls(
    code: &[char],
    universe: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<(String, usize, Option<String>)> {
    let mut found = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < code.len() {
        if code[i] == '\n' {
            line += 1;
        }
        let after_sep = code[i] == '.' || (code[i] == ':' && i > 0 && code[i - 1] == ':');
        if after_sep {
            let mut j = i + 1;
            while j < code.len() && code[j].is_whitespace() {
                j += 1;
            }
            let s = j;
            while j < code.len() && ident_char(Some(&code[j])) {
                j += 1;
            }
            let name: String = code[s..j].iter().collect();
            let mut k = j;
            while k < code.len() && code[k].is_whitespace() {
                k += 1;
            }
            // `.name(` or a turbofish `.name::<T>(`; `a::name::b` is a path (a module named
            // like an operation: `aws_sigv4::sign::v4`), not a call.
            let turbofish = code.get(k) == Some(&':')
                && code.get(k + 1) == Some(&':')
                && code.iter().skip(k + 2).find(|c| !c.is_whitespace()) == Some(&'<');
            let is_call = code.get(k) == Some(&'(') || turbofish;
            if is_call && universe.contains_key(&name) {
                let dot = if code[i] == ':' { i - 1 } else { i };
                found.push((name, line, service_hint(&chain_before(code, dot))));
            }
        }
        i += 1;
    }
    found
}

/// The SDK operations of the `aws-sdk-*` crates `crates/live` depends on (not its
/// dev-dependencies), by snake_case name, with the services that have them. Read from the
/// crates' sources (`src/operation/<name>/`), at the versions in `Cargo.lock`; and the
/// operations of the crate's own clients ([`HAND_WRITTEN`]).
fn sdk_universe() -> BTreeMap<String, BTreeSet<String>> {
    let manifest = read("crates/live/Cargo.toml");
    let mut section = String::new();
    let mut crates = BTreeSet::new();
    for l in manifest.lines() {
        let t = l.trim();
        if t.starts_with('[') {
            section = t.to_owned();
        } else if section == "[dependencies]" && t.starts_with("aws-sdk-") {
            let name = t.split([' ', '=']).next().unwrap_or_default();
            crates.insert(name.to_owned());
        }
    }
    assert!(
        !crates.is_empty(),
        "crates/live/Cargo.toml names no aws-sdk-* dependency"
    );
    let lock = read("Cargo.lock");
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("neither CARGO_HOME nor HOME is set");
    let registries: Vec<PathBuf> = fs::read_dir(cargo_home.join("registry/src"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    let mut universe: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for krate in &crates {
        let versions: Vec<&str> = lock
            .split("[[package]]")
            .filter(|p| p.contains(&format!("\nname = \"{krate}\"\n")))
            .filter_map(|p| {
                p.lines()
                    .find_map(|l| l.strip_prefix("version = \"")?.strip_suffix('"'))
            })
            .collect();
        assert!(!versions.is_empty(), "{krate} is not in Cargo.lock");
        let service = krate.trim_start_matches("aws-sdk-").to_owned();
        let mut seen = false;
        for v in versions {
            for reg in &registries {
                let ops = reg.join(format!("{krate}-{v}/src/operation"));
                let Ok(entries) = fs::read_dir(&ops) else {
                    continue;
                };
                for e in entries.flatten() {
                    if e.path().is_dir() {
                        universe
                            .entry(e.file_name().to_string_lossy().into_owned())
                            .or_default()
                            .insert(service.clone());
                        seen = true;
                    }
                }
            }
        }
        assert!(
            seen,
            "the sources of {krate} are not under {}/registry/src: run `cargo fetch` (the test reads the SDK's operation names from them)",
            cargo_home.display()
        );
    }
    for (op, service, _) in HAND_WRITTEN {
        universe
            .entry((*op).to_owned())
            .or_default()
            .insert((*service).to_owned());
    }
    universe
}

/// The live crate's Rust files, without test files.
fn live_sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "tests") {
                    walk(&p, out);
                }
            } else if p.extension().is_some_and(|x| x == "rs")
                && p.file_stem().is_some_and(|s| s != "tests")
            {
                out.push(p);
            }
        }
    }
    let base = root().join("crates/live/src");
    let mut files = Vec::new();
    walk(&base, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// The SDK calls in `sources`, mapped through [`OPERATIONS`]; or what could not be mapped.
fn sdk_calls(
    sources: &[(String, String)],
    universe: &BTreeMap<String, BTreeSet<String>>,
) -> Result<Vec<Call>, Vec<String>> {
    let mut calls: BTreeMap<(String, String), Call> = BTreeMap::new();
    let mut problems = Vec::new();
    for (file, src) in sources {
        let mut code = strip(src);
        drop_test_items(&mut code);
        for (op, line, hint) in method_calls(&code, universe) {
            if NOT_SDK_CALLS
                .iter()
                .any(|(f, m, _)| file.ends_with(f) && *m == op)
            {
                continue;
            }
            let services = &universe[&op];
            let service = match &hint {
                Some(svc) if services.contains(svc) => svc.clone(),
                // Called on something that names no client: the name must belong to one service.
                _ if services.len() == 1 => services.iter().next().cloned().unwrap_or_default(),
                _ => {
                    problems.push(format!(
                        "{file}:{line}: `{op}` is an operation of {services:?}; call it on a client the chain names (`self.iam()`, `kms`...) so the check knows which"
                    ));
                    continue;
                }
            };
            let row = OPERATIONS.iter().find(|(o, action, _)| {
                *o == op && action.split(':').next() == Some(iam_prefix(&service))
            });
            let Some((_, action, scope)) = row else {
                problems.push(format!(
                    "{file}:{line}: `{op}` ({service}) is an AWS call missing from OPERATIONS in tests/deploy.rs: add its IAM action, then grant it in the templates"
                ));
                continue;
            };
            calls
                .entry((service.clone(), op.clone()))
                .or_insert_with(|| Call {
                    op: op.clone(),
                    service: service.clone(),
                    action: (*action).to_owned(),
                    scope: *scope,
                    sites: Vec::new(),
                })
                .sites
                .push(Site {
                    file: file.clone(),
                    line,
                });
        }
    }
    if problems.is_empty() {
        Ok(calls.into_values().collect())
    } else {
        Err(problems)
    }
}

/// The IAM service prefix of an SDK crate's operations: S3 Control's are `s3:` actions.
fn iam_prefix(service: &str) -> &str {
    match service {
        "s3control" => "s3",
        other => other,
    }
}

fn live_calls() -> Vec<Call> {
    match sdk_calls(&live_sources(), &sdk_universe()) {
        Ok(c) => c,
        Err(p) => panic!("unmapped AWS calls:\n  {}", p.join("\n  ")),
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the templates
// ---------------------------------------------------------------------------------------------

/// A CloudFormation YAML template as JSON, short-form tags (`!Ref`, `!Sub`, `!If`...) turned
/// into their long form.
fn template(text: &str) -> Value {
    let y: serde_norway::Value =
        serde_norway::from_str(text).unwrap_or_else(|e| panic!("YAML: {e}"));
    to_json(y)
}

fn to_json(y: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match y {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(s) => Value::Array(s.into_iter().map(to_json).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let k = match to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let v = to_json(t.value);
            match tag {
                "Ref" => json!({ "Ref": v }),
                "Condition" => json!({ "Condition": v }),
                "GetAtt" => match v {
                    Value::String(s) => {
                        let (res, attr) = s.split_once('.').unwrap_or((&s, ""));
                        json!({ "Fn::GetAtt": [res, attr] })
                    }
                    other => json!({ "Fn::GetAtt": other }),
                },
                other => {
                    let mut m = Map::new();
                    m.insert(format!("Fn::{other}"), v);
                    Value::Object(m)
                }
            }
        }
    }
}

/// One statement of a role's policies, with the conditions (`Fn::If`) it is granted under.
#[derive(Debug, Clone)]
struct Grant {
    sid: String,
    effect: String,
    actions: Vec<String>,
    resource: Value,
    condition: Option<Value>,
    guards: Vec<String>,
    problems: Vec<String>,
}

/// The statements of a policy document, through `Fn::If` (both branches, `AWS::NoValue`
/// dropped).
fn statements(v: &Value, guards: &[String], out: &mut Vec<Grant>) {
    match v {
        Value::Array(items) => {
            for i in items {
                statements(i, guards, out);
            }
        }
        Value::Object(m) if m.contains_key("Fn::If") => {
            let args = m["Fn::If"].as_array().cloned().unwrap_or_default();
            let cond = args
                .first()
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned();
            for (k, branch) in args.iter().skip(1).enumerate() {
                let g = if k == 0 {
                    cond.clone()
                } else {
                    format!("!{cond}")
                };
                let mut gs = guards.to_vec();
                gs.push(g);
                statements(branch, &gs, out);
            }
        }
        Value::Object(m) if m.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue") => {}
        Value::Object(m) => {
            let mut problems = Vec::new();
            let actions = match m.get("Action") {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|x| match x {
                        Value::String(s) => Some(s.clone()),
                        other => {
                            problems.push(format!("an action is not a literal string: {other}"));
                            None
                        }
                    })
                    .collect(),
                Some(other) => {
                    problems.push(format!("`Action` is not a literal list: {other}"));
                    Vec::new()
                }
                None => Vec::new(),
            };
            for k in ["NotAction", "NotResource", "NotPrincipal"] {
                if m.contains_key(k) {
                    problems.push(format!("`{k}` grants everything else; list what is needed"));
                }
            }
            out.push(Grant {
                sid: m
                    .get("Sid")
                    .and_then(Value::as_str)
                    .unwrap_or("(no Sid)")
                    .to_owned(),
                effect: m
                    .get("Effect")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned(),
                actions,
                resource: m.get("Resource").cloned().unwrap_or(Value::Null),
                condition: m.get("Condition").cloned(),
                guards: guards.to_vec(),
                problems,
            });
        }
        _ => {}
    }
}

/// The grants of role `name` in template `t`, and the problems no grant can fix (managed
/// policies, separate policy resources).
fn role_grants(t: &Value, name: &str) -> (Vec<Grant>, Vec<String>) {
    let mut problems = Vec::new();
    let resources = t["Resources"].as_object().cloned().unwrap_or_default();
    let Some(role) = resources.get(name) else {
        return (Vec::new(), vec![format!("no resource `{name}`")]);
    };
    let props = &role["Properties"];
    if props.get("ManagedPolicyArns").is_some() {
        problems.push(format!(
            "{name}: managed policies grant what this check cannot see; use inline policies"
        ));
    }
    if props.get("PermissionsBoundary").is_some() {
        problems.push(format!("{name}: unexpected permissions boundary"));
    }
    let mut grants = Vec::new();
    let policies = props
        .get("Policies")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    let mut docs = Vec::new();
    statements_of_policies(&policies, &mut docs);
    for d in docs {
        statements(&d["Statement"], &[], &mut grants);
    }
    for (id, r) in &resources {
        let ty = r["Type"].as_str().unwrap_or_default();
        if matches!(
            ty,
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" | "AWS::IAM::RolePolicy"
        ) {
            problems.push(format!(
                "{id}: {ty} resources are not checked; put the statements in the role's Policies"
            ));
        }
    }
    (grants, problems)
}

fn statements_of_policies(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| statements_of_policies(i, out)),
        Value::Object(m) if m.contains_key("Fn::If") => {
            for b in m["Fn::If"].as_array().into_iter().flatten().skip(1) {
                statements_of_policies(b, out);
            }
        }
        Value::Object(m) => {
            if let Some(d) = m.get("PolicyDocument") {
                out.push(d.clone());
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// The role checks
// ---------------------------------------------------------------------------------------------

/// Which role a spec is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoleKind {
    /// `templates/member-role.yaml` MemberRole.
    Member,
    /// `template.yaml` AuditorRole.
    Auditor,
    /// `templates/org-reader.yaml` OrgReaderRole.
    OrgReader,
}

/// What one role must, and may, hold.
struct RoleSpec<'a> {
    label: &'a str,
    /// Needed actions, each with the call sites behind it.
    needed: BTreeMap<String, Vec<String>>,
    /// Actions that must only be granted under the `ObjectMetadata` condition.
    guarded: BTreeSet<String>,
    /// Actions that must only be granted under the named condition.
    conditional: BTreeMap<String, String>,
    /// Actions allowed though no code calls them, with why.
    platform: BTreeMap<String, String>,
}

fn spec<'a>(label: &'a str, calls: &[Call], role: RoleKind) -> RoleSpec<'a> {
    let auditor = role == RoleKind::Auditor;
    let mut needed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut guarded = BTreeSet::new();
    let mut conditional = BTreeMap::new();
    for c in calls {
        let wanted = match (c.scope, role) {
            (Scope::OrgRead, RoleKind::OrgReader) => true,
            (_, RoleKind::OrgReader) => false,
            (Scope::Read, _) => true,
            (Scope::ObjectRead, _) => {
                guarded.insert(c.action.clone());
                true
            }
            (Scope::Auditor | Scope::State, _) => auditor,
            (Scope::OrgRead, RoleKind::Auditor) => {
                conditional.insert(c.action.clone(), "OrgReadsSelf".to_owned());
                true
            }
            (Scope::OrgRead, _) => false,
            (Scope::Free, _) => false,
        };
        if wanted {
            let sites = c
                .sites
                .iter()
                .map(|s| format!("{}:{} {}", s.file, s.line, c.op));
            needed.entry(c.action.clone()).or_default().extend(sites);
        }
    }
    let platform = if auditor {
        PLATFORM_ACTIONS
            .iter()
            .map(|(a, why)| ((*a).to_owned(), (*why).to_owned()))
            .collect()
    } else {
        BTreeMap::new()
    };
    RoleSpec {
        label,
        needed,
        guarded,
        conditional,
        platform,
    }
}

/// Every problem with role `role` of template text `text` against `spec`.
fn check_role(text: &str, role: &str, spec: &RoleSpec<'_>) -> Vec<String> {
    let t = template(text);
    let (grants, mut problems) = role_grants(&t, role);
    let label = spec.label;
    let mut granted: BTreeMap<String, Vec<&Grant>> = BTreeMap::new();
    for g in &grants {
        problems.extend(g.problems.iter().map(|p| format!("{label} {}: {p}", g.sid)));
        if g.effect != "Allow" {
            continue;
        }
        for a in &g.actions {
            granted.entry(a.clone()).or_default().push(g);
            if a.contains('*') || a.contains('?') {
                problems.push(format!("{label} {}: `{a}` is a wildcard action", g.sid));
            }
            if FORBIDDEN_ACTIONS.contains(&a.as_str()) {
                problems.push(format!("{label} {}: `{a}` must never be granted", g.sid));
            }
            if !spec.needed.contains_key(a) && !spec.platform.contains_key(a) {
                problems.push(format!(
                    "{label} {}: `{a}` is granted but this role needs it for no call",
                    g.sid
                ));
            }
            if g.resource == json!("*") && !STAR_RESOURCE_ACTIONS.contains(&a.as_str()) {
                problems.push(format!(
                    "{label} {}: `{a}` on `Resource: \"*\"`; name the resources",
                    g.sid
                ));
            }
        }
    }
    for (action, sites) in &spec.needed {
        let Some(gs) = granted.get(action) else {
            problems.push(format!(
                "{label}: `{action}` is not granted; the code calls it at {}",
                sites.join(", ")
            ));
            continue;
        };
        // Behind the switch, and on this account's objects only.
        let guarded_ok = |g: &&Grant| {
            // The state bucket's objects are the auditor's own documents, not content.
            on_state_bucket(g)
                || g.guards == ["ObjectMetadata"]
                    && g.condition.as_ref().is_some_and(|c| {
                        c["StringEquals"]["s3:ResourceAccount"]
                            == json!({ "Ref": "AWS::AccountId" })
                    })
        };
        if spec.guarded.contains(action) {
            // The state bucket's grant is checked by check_auditor_resources.
            if let Some(g) = gs.iter().find(|g| !guarded_ok(g) && !on_state_bucket(g)) {
                problems.push(format!(
                    "{label} {}: `{action}` also reads object content; grant it only under `!If [ObjectMetadata, ...]` with `s3:ResourceAccount` = this account, not {:?}",
                    g.sid, g.guards
                ));
            }
        } else if let Some(guard) = spec.conditional.get(action) {
            if let Some(g) = gs.iter().find(|g| g.guards != [guard.clone()]) {
                problems.push(format!(
                    "{label} {}: grant `{action}` only under `!If [{guard}, ...]`, not {:?}",
                    g.sid, g.guards
                ));
            }
        } else if !gs.iter().any(|g| g.guards.is_empty()) {
            problems.push(format!(
                "{label}: `{action}` is only granted conditionally ({:?})",
                gs[0].guards
            ));
        }
    }
    for (action, _) in spec.platform.iter() {
        if !granted.contains_key(action) {
            problems.push(format!(
                "{label}: `{action}` is missing ({})",
                spec.platform[action]
            ));
        }
    }
    problems
}

/// Whether a grant is on the objects of the stack's state bucket, and only on them.
fn on_state_bucket(g: &Grant) -> bool {
    g.resource == json!({ "Fn::Sub": "${StateBucket.Arn}/*" }) && g.guards.is_empty()
}

/// The checks that depend on what a grant is for, not only its action.
fn check_auditor_resources(text: &str) -> Vec<String> {
    let t = template(text);
    let (grants, _) = role_grants(&t, "AuditorRole");
    let mut problems = Vec::new();
    for g in grants.iter().filter(|g| g.effect == "Allow") {
        for a in &g.actions {
            match a.as_str() {
                "sts:AssumeRole" => {
                    // The member role by name, or (behind OrgReaderRole) the org reader role
                    // the deployer names.
                    let ok = g.resource["Fn::Sub"]
                        .as_str()
                        .is_some_and(|s| s.ends_with(":role/${MemberRoleName}"))
                        || (g.guards == ["OrgReaderRole"]
                            && g.resource == json!({ "Ref": "OrganizationPolicyAccess" }));
                    if !ok {
                        problems.push(format!("AuditorRole {}: sts:AssumeRole must be on the member role name only, not {}", g.sid, g.resource));
                    }
                }
                "sns:Publish" if g.resource != json!({ "Ref": "FindingsTopic" }) => {
                    problems.push(format!(
                        "AuditorRole {}: sns:Publish must be on FindingsTopic only",
                        g.sid
                    ));
                }
                "s3:PutObject" if !on_state_bucket(g) => {
                    problems.push(format!(
                        "AuditorRole {}: s3:PutObject must be on the state bucket's objects only",
                        g.sid
                    ));
                }
                "s3:ListBucket"
                    if g.resource != json!({ "Fn::GetAtt": ["StateBucket", "Arn"] }) =>
                {
                    problems.push(format!(
                        "AuditorRole {}: s3:ListBucket must be on the state bucket only",
                        g.sid
                    ));
                }
                "sqs:SendMessage"
                    if g.resource != json!({ "Fn::GetAtt": ["DeadLetterQueue", "Arn"] })
                        && g.resource != json!({ "Fn::GetAtt": ["SweepQueue", "Arn"] }) =>
                {
                    problems.push(format!(
                        "AuditorRole {}: sqs:SendMessage must be on DeadLetterQueue or SweepQueue only",
                        g.sid
                    ));
                }
                "sqs:ReceiveMessage" | "sqs:DeleteMessage" | "sqs:GetQueueAttributes"
                    if g.resource != json!({ "Fn::GetAtt": ["SweepQueue", "Arn"] }) =>
                {
                    problems.push(format!(
                        "AuditorRole {}: {a} must be on SweepQueue only",
                        g.sid
                    ));
                }
                _ => {}
            }
        }
    }
    problems
}

/// The member role is assumable only by the auditor's role, with the ExternalId.
fn check_member_trust(text: &str) -> Vec<String> {
    check_trust(text, "MemberRole")
}

/// Role `role` is assumable only by the auditor's role, with the ExternalId.
fn check_trust(text: &str, role: &str) -> Vec<String> {
    let t = template(text);
    let doc = &t["Resources"][role]["Properties"]["AssumeRolePolicyDocument"];
    let mut grants = Vec::new();
    statements(&doc["Statement"], &[], &mut grants);
    let mut problems = Vec::new();
    let stmts = doc["Statement"].as_array().cloned().unwrap_or_default();
    if stmts.len() != 1 || grants.len() != 1 {
        problems.push("the member role's trust policy must have exactly one statement".to_owned());
    }
    for s in &stmts {
        let principal = &s["Principal"];
        let ok_principal = principal.as_object().is_some_and(|p| p.len() == 1)
            && principal["AWS"]["Fn::Sub"].as_str()
                == Some("arn:${AWS::Partition}:iam::${AuditorAccountId}:role/${AuditorRoleName}");
        if !ok_principal {
            problems.push(format!(
                "the member role must trust the auditor's role only, not {principal}"
            ));
        }
        if s["Action"] != json!("sts:AssumeRole") {
            problems.push(format!(
                "the member role's trust must allow sts:AssumeRole only, not {}",
                s["Action"]
            ));
        }
        if s["Condition"]["StringEquals"]["sts:ExternalId"] != json!({ "Ref": "ExternalId" }) {
            problems.push(
                "the member role's trust must require the ExternalId (StringEquals sts:ExternalId)"
                    .to_owned(),
            );
        }
    }
    problems
}

/// The `ObjectMetadata` condition is a parameter that defaults to "false".
fn check_object_switch(text: &str, parameter: &str) -> Vec<String> {
    let t = template(text);
    let mut problems = Vec::new();
    if t["Conditions"]["ObjectMetadata"] != json!({ "Fn::Equals": [{ "Ref": parameter }, "true"] })
    {
        problems.push(format!(
            "condition ObjectMetadata must be `!Equals [!Ref {parameter}, \"true\"]`"
        ));
    }
    if t["Parameters"][parameter]["Default"] != json!("false") {
        problems.push(format!("parameter {parameter} must default to \"false\""));
    }
    problems
}

fn assert_no_problems(what: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

#[test]
fn every_aws_call_in_the_live_crate_is_mapped() {
    let calls = live_calls();
    assert!(
        calls.iter().any(|c| c.op == "get_bucket_policy")
            && calls.iter().any(|c| c.op == "assume_role"),
        "the scan found too little; is crates/live/src where the SDK is called? {calls:?}"
    );
    println!("AWS calls in crates/live/src and the IAM actions behind them:");
    for c in &calls {
        let sites: Vec<String> = c
            .sites
            .iter()
            .map(|s| format!("{}:{}", s.file, s.line))
            .collect();
        println!(
            "  {:<16} {:<32} {:<38} {:?}  {}",
            c.service,
            c.op,
            c.action,
            c.scope,
            sites.join(" ")
        );
    }
}

#[test]
fn hand_written_clients_define_and_call_their_operations() {
    let calls = live_calls();
    for (op, service, file) in HAND_WRITTEN {
        let code: String = strip(&read(file)).into_iter().collect();
        assert!(
            code.contains(&format!("fn {op}(")),
            "{file} defines no `{op}`: update HAND_WRITTEN"
        );
        assert!(
            calls.iter().any(|c| c.op == *op && c.service == *service),
            "`{op}` ({service}) is never called in crates/live/src: update HAND_WRITTEN"
        );
    }
}

#[test]
fn member_role_grants_exactly_the_reads_the_collector_makes() {
    let calls = live_calls();
    let text = read("templates/member-role.yaml");
    assert_no_problems(
        "member role",
        &check_role(
            &text,
            "MemberRole",
            &spec("MemberRole", &calls, RoleKind::Member),
        ),
    );
    assert_no_problems("member role trust", &check_member_trust(&text));
    assert_no_problems(
        "member role object switch",
        &check_object_switch(&text, "AllowObjectMetadataRead"),
    );
}

#[test]
fn auditor_role_grants_exactly_what_the_function_uses() {
    let calls = live_calls();
    let text = read("template.yaml");
    assert_no_problems(
        "auditor role",
        &check_role(
            &text,
            "AuditorRole",
            &spec("AuditorRole", &calls, RoleKind::Auditor),
        ),
    );
    assert_no_problems("auditor role resources", &check_auditor_resources(&text));
    assert_no_problems(
        "auditor object switch",
        &check_object_switch(&text, "ReadObjectMetadata"),
    );
    // The function learns the switch from the same parameter that guards s3:GetObject.
    let t = template(&text);
    let env = &t["Resources"]["AuditorFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        env["S3KA_HEAD_OBJECT"],
        json!({ "Ref": "ReadObjectMetadata" })
    );
}

#[test]
fn org_reader_role_grants_exactly_the_organization_reads() {
    let calls = live_calls();
    let text = read("templates/org-reader.yaml");
    assert_no_problems(
        "org reader role",
        &check_role(
            &text,
            "OrgReaderRole",
            &spec("OrgReaderRole", &calls, RoleKind::OrgReader),
        ),
    );
    assert_no_problems("org reader trust", &check_trust(&text, "OrgReaderRole"));
    // The function is told where to read them by the parameter that grants the access.
    let t = template(&read("template.yaml"));
    let env = &t["Resources"]["AuditorFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        env["S3KA_ORG_ACCESS"],
        json!({ "Ref": "OrganizationPolicyAccess" })
    );
    assert_eq!(
        t["Parameters"]["OrganizationPolicyAccess"]["Default"],
        json!(""),
        "off unless the deployer says where the organization's policies are read"
    );
    // Widening or dropping a read fails the check.
    let p = check_role(
        &edit(
            &text,
            "organizations:DescribePolicy",
            "organizations:Describe*",
        ),
        "OrgReaderRole",
        &spec("OrgReaderRole", &calls, RoleKind::OrgReader),
    );
    assert_flags(&p, "`organizations:Describe*` is a wildcard action");
    let member = read("templates/member-role.yaml");
    let p = check_role(
        &edit(
            &member,
            "Action: organizations:DescribeOrganization",
            "Action: [organizations:DescribeOrganization, organizations:ListParents]",
        ),
        "MemberRole",
        &spec("MemberRole", &calls, RoleKind::Member),
    );
    assert_flags(
        &p,
        "`organizations:ListParents` is granted but this role needs it for no call",
    );
}

#[test]
fn every_role_in_the_templates_is_checked() {
    // A role added to a template must be added here, with what it may hold.
    let known: &[(&str, &str)] = &[
        ("template.yaml", "AuditorRole"),
        ("templates/member-role.yaml", "MemberRole"),
        ("templates/event-forwarding.yaml", "ForwardingRole"),
        ("templates/org-reader.yaml", "OrgReaderRole"),
    ];
    for file in [
        "template.yaml",
        "templates/member-role.yaml",
        "templates/event-forwarding.yaml",
        "templates/org-reader.yaml",
    ] {
        let t = template(&read(file));
        for (id, r) in t["Resources"].as_object().unwrap() {
            if r["Type"] == "AWS::IAM::Role" {
                assert!(
                    known.contains(&(file, id.as_str())),
                    "{file}: role {id} is not checked by tests/deploy.rs"
                );
            }
        }
    }
    // The forwarding role only puts events on the auditor's bus.
    let text = read("templates/event-forwarding.yaml");
    let (grants, problems) = role_grants(&template(&text), "ForwardingRole");
    assert_no_problems("forwarding role", &problems);
    let actions: Vec<&str> = grants
        .iter()
        .flat_map(|g| g.actions.iter().map(String::as_str))
        .collect();
    assert_eq!(actions, ["events:PutEvents"]);
    assert_eq!(
        grants[0].resource,
        json!({ "Fn::Sub": "arn:${AWS::Partition}:events:${AuditorRegion}:${AuditorAccountId}:event-bus/default" })
    );
}

#[test]
fn the_templates_agree_on_names_and_defaults() {
    let main = template(&read("template.yaml"));
    let member = template(&read("templates/member-role.yaml"));
    for p in ["MemberRoleName", "AuditorRoleName"] {
        assert_eq!(
            main["Parameters"][p]["Default"], member["Parameters"][p]["Default"],
            "{p}"
        );
    }
    assert_eq!(
        main["Parameters"]["ExternalId"]["AllowedPattern"],
        member["Parameters"]["ExternalId"]["AllowedPattern"]
    );
    assert_eq!(
        main["Resources"]["AuditorRole"]["Properties"]["RoleName"],
        json!({ "Ref": "AuditorRoleName" }),
        "the member role's trust names the auditor's role: its name must be the parameter"
    );
}

// ---------------------------------------------------------------------------------------------
// Triggers
// ---------------------------------------------------------------------------------------------

/// Whether a pattern delivers change events: only successful calls (`errorCode` absent),
/// where the AccessDenied rules list error codes.
fn is_change_pattern(pattern: &Value) -> bool {
    pattern["detail"]["errorCode"] == json!([{"exists": false}])
}

/// The function's events that start and run the organization sweep (crates/live/src/sweep.rs).
const SWEEP_EVENTS: &[&str] = &["SweepSchedule", "SweepWork"];

/// Problems with the sweep's declaration: a schedule (sweep_start reads EventBridge's
/// `Scheduled Event`), an SQS event source reporting failures per message with a concurrency
/// bound, a visibility timeout of at least six times the function's timeout (AWS's advice for
/// an SQS event source), and a dead-letter queue after the same number of receives the
/// function is told is the last.
fn check_sweep(text: &str) -> Vec<String> {
    let t = template(text);
    let mut problems = Vec::new();
    let f = &t["Resources"]["AuditorFunction"]["Properties"];
    let schedule = &f["Events"]["SweepSchedule"];
    if schedule["Type"] != "Schedule" {
        problems.push("SweepSchedule must be a Schedule event".to_owned());
    }
    let work = &f["Events"]["SweepWork"];
    if work["Type"] != "SQS" {
        problems.push("SweepWork must be an SQS event".to_owned());
    }
    let p = &work["Properties"];
    if p["Queue"] != json!({"Fn::GetAtt": ["SweepQueue", "Arn"]}) {
        problems.push("SweepWork must read SweepQueue".to_owned());
    }
    if p["FunctionResponseTypes"] != json!(["ReportBatchItemFailures"]) {
        problems.push(
            "SweepWork must report failures per message (ReportBatchItemFailures)".to_owned(),
        );
    }
    if p["ScalingConfig"]["MaximumConcurrency"].is_null() || p["BatchSize"].is_null() {
        problems
            .push("SweepWork must set BatchSize and ScalingConfig.MaximumConcurrency".to_owned());
    }
    let q = &t["Resources"]["SweepQueue"]["Properties"];
    let timeout = f["Timeout"].as_u64().unwrap_or(0);
    let visibility = q["VisibilityTimeout"].as_u64().unwrap_or(0);
    if timeout == 0 || visibility < 6 * timeout {
        problems.push(format!(
            "SweepQueue's VisibilityTimeout ({visibility}) must be at least six times the function's Timeout ({timeout})"
        ));
    }
    let redrive = &q["RedrivePolicy"];
    if redrive["deadLetterTargetArn"] != json!({"Fn::GetAtt": ["SweepDeadLetterQueue", "Arn"]}) {
        problems.push("SweepQueue must redrive to SweepDeadLetterQueue".to_owned());
    }
    let env = &f["Environment"]["Variables"];
    if redrive["maxReceiveCount"].is_null()
        || redrive["maxReceiveCount"] != env["S3KA_SWEEP_MAX_RECEIVE"]
    {
        problems.push("S3KA_SWEEP_MAX_RECEIVE must be the queue's maxReceiveCount".to_owned());
    }
    if env["S3KA_SWEEP_QUEUE_URL"] != json!({"Ref": "SweepQueue"}) {
        problems.push("S3KA_SWEEP_QUEUE_URL must be SweepQueue".to_owned());
    }
    if env["S3KA_STATE_BUCKET"] != json!({"Ref": "StateBucket"}) {
        problems.push("S3KA_STATE_BUCKET must be StateBucket".to_owned());
    }
    problems
}

#[test]
fn the_sweep_is_declared_as_the_code_runs_it() {
    let text = read("template.yaml");
    assert_no_problems("template.yaml sweep", &check_sweep(&text));
    let broken = edit(
        &text,
        "FunctionResponseTypes: [ReportBatchItemFailures]",
        "FunctionResponseTypes: []",
    );
    assert!(!check_sweep(&broken).is_empty());
    let broken = edit(&text, "VisibilityTimeout: 720", "VisibilityTimeout: 300");
    assert!(check_sweep(&broken).iter().any(|p| p.contains("six times")));
}

/// The function's AccessDenied rules in template.yaml: source → (state, pattern).
fn function_rules(t: &Value) -> BTreeMap<String, (String, Value)> {
    function_rules_of(t, false)
}

/// The function's EventBridge rules in template.yaml, AccessDenied or change rules: source →
/// (state, pattern).
fn function_rules_of(t: &Value, changes: bool) -> BTreeMap<String, (String, Value)> {
    let events = t["Resources"]["AuditorFunction"]["Properties"]["Events"]
        .as_object()
        .unwrap();
    let mut out = BTreeMap::new();
    for (id, e) in events {
        // The organization sweep's schedule and queue (checked by
        // `the_sweep_is_declared_as_the_code_runs_it`), and noise control's scheduled run
        // (by `the_schedule_sends_the_scheduled_runs_input`).
        if SWEEP_EVENTS.contains(&id.as_str()) || id == "NoiseSchedule" {
            continue;
        }
        assert_eq!(
            e["Type"], "EventBridgeRule",
            "{id}: only EventBridge rules are expected"
        );
        let p = &e["Properties"];
        if is_change_pattern(&p["Pattern"]) != changes {
            continue;
        }
        let source = p["Pattern"]["source"][0].as_str().unwrap().to_owned();
        let state = p["State"].as_str().unwrap_or("ENABLED").to_owned();
        assert!(
            out.insert(source.clone(), (state, p["Pattern"].clone()))
                .is_none(),
            "two rules for {source}"
        );
    }
    out
}

/// The forwarding AccessDenied rules: source → (state, pattern).
fn forwarding_rules(t: &Value) -> BTreeMap<String, (String, Value)> {
    forwarding_rules_of(t, false)
}

/// The forwarding rules, AccessDenied or change rules: source → (state, pattern).
fn forwarding_rules_of(t: &Value, changes: bool) -> BTreeMap<String, (String, Value)> {
    let mut out = BTreeMap::new();
    for r in t["Resources"].as_object().unwrap().values() {
        if r["Type"] == "AWS::Events::Rule"
            && is_change_pattern(&r["Properties"]["EventPattern"]) == changes
        {
            let p = &r["Properties"];
            let source = p["EventPattern"]["source"][0].as_str().unwrap().to_owned();
            out.insert(
                source,
                (
                    p["State"].as_str().unwrap_or("ENABLED").to_owned(),
                    p["EventPattern"].clone(),
                ),
            );
        }
    }
    out
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect()
}

/// Whether the function diagnoses `event_name` from `source` failing with `code`: a sample
/// event of that service, renamed, through `auditor::event::parse_events`.
fn diagnosed(source: &str, event_name: &str, code: &str) -> bool {
    let sample = match (source, event_name) {
        ("aws.s3", "HeadObject") => "events/s3-headobject-denied.cloudtrail.json",
        ("aws.s3", "CopyObject" | "UploadPartCopy") => {
            "events/s3-copyobject-denied.cloudtrail.json"
        }
        ("aws.s3", "PutObject" | "UploadPart" | "CompleteMultipartUpload") => {
            "events/s3-putobject-denied.eventbridge.json"
        }
        ("aws.s3", "CreateMultipartUpload") => {
            "events/s3-createmultipartupload-denied.cloudtrail.json"
        }
        ("aws.s3", _) => "events/s3-getobject-denied-cross-account.eventbridge.json",
        ("aws.kms", _) => "events/kms-decrypt-denied-via-s3.eventbridge.json",
        _ => panic!("no sample for {source}"),
    };
    let mut v: Value = serde_json::from_str(&read(sample)).unwrap();
    let record = if v.get("detail").is_some() {
        &mut v["detail"]
    } else {
        &mut v
    };
    record["eventName"] = json!(event_name);
    record["errorCode"] = json!(code);
    match auditor::event::parse_events(&v) {
        Ok(outcomes) => outcomes
            .iter()
            .any(|o| matches!(o, auditor::event::EventOutcome::Denied(_))),
        // An event the parser rejects is reported on the topic, not ignored.
        Err(_) => true,
    }
}

/// Event names and error codes a rule could plausibly list; the rules must list exactly those
/// the function diagnoses.
const S3_NAME_CANDIDATES: &[&str] = &[
    "GetObject",
    "HeadObject",
    "PutObject",
    "CopyObject",
    "CreateMultipartUpload",
    "UploadPart",
    "UploadPartCopy",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "GetObjectAcl",
    "PutObjectAcl",
    "GetObjectAttributes",
    "GetObjectTagging",
    "DeleteObject",
    "RestoreObject",
    "SelectObjectContent",
    "ListObjects",
    "ListObjectsV2",
    "GetBucketPolicy",
    "PutBucketPolicy",
];
const KMS_NAME_CANDIDATES: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "ReEncrypt",
    "CreateGrant",
    "DescribeKey",
    "GetKeyPolicy",
    "ListGrants",
    "Sign",
    "Verify",
    "GenerateMac",
    "VerifyMac",
    "GenerateRandom",
    "PutKeyPolicy",
];
/// The error codes each service records for a refused call (S3 reports the KMS hop's
/// errors with a `KMS.` prefix), and some it records for other failures.
const S3_CODE_CANDIDATES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "Forbidden",
    "KMS.AccessDeniedException",
    "KMS.DisabledException",
    "KMS.KMSInvalidStateException",
    "NoSuchKey",
    "NoSuchBucket",
    "KMS.NotFoundException",
    "SlowDown",
    "InvalidObjectState",
    "PreconditionFailed",
];
const KMS_CODE_CANDIDATES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "DisabledException",
    "KMSInvalidStateException",
    "NotFoundException",
    "InvalidCiphertextException",
    "IncorrectKeyException",
    "ThrottlingException",
    "KeyUnavailableException",
    "InvalidKeyUsageException",
];

fn check_triggers(main_text: &str, forwarding_text: &str) -> Vec<String> {
    let main = function_rules(&template(main_text));
    let fwd = forwarding_rules(&template(forwarding_text));
    let mut problems = Vec::new();
    if main.keys().collect::<Vec<_>>() != ["aws.kms", "aws.s3"] {
        problems.push(format!(
            "template.yaml rules are for {:?}; expected aws.kms and aws.s3",
            main.keys()
        ));
    }
    for (source, (state, pattern)) in &main {
        match fwd.get(source) {
            Some((fstate, fpattern)) if fpattern == pattern && fstate == state => {}
            Some(_) => problems.push(format!(
                "{source}: the forwarding rule's pattern or state differs from template.yaml's"
            )),
            None => problems.push(format!(
                "{source}: templates/event-forwarding.yaml does not forward it"
            )),
        }
        if state != "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS" {
            problems.push(format!(
                "{source}: state {state} may drop read-only events (Decrypt is one)"
            ));
        }
        if pattern["detail-type"] != json!(["AWS API Call via CloudTrail"]) {
            problems.push(format!(
                "{source}: detail-type must be exactly the CloudTrail API call"
            ));
        }
        let service = source.trim_start_matches("aws.");
        if pattern["detail"]["eventSource"] != json!([format!("{service}.amazonaws.com")]) {
            problems.push(format!(
                "{source}: eventSource must be {service}.amazonaws.com"
            ));
        }
        let names = strings(&pattern["detail"]["eventName"]);
        let codes = strings(&pattern["detail"]["errorCode"]);
        let (name_candidates, code_candidates) = match source.as_str() {
            "aws.s3" => (S3_NAME_CANDIDATES, S3_CODE_CANDIDATES),
            _ => (KMS_NAME_CANDIDATES, KMS_CODE_CANDIDATES),
        };
        for n in &names {
            for c in &codes {
                if !diagnosed(source, n, c) {
                    problems.push(format!(
                        "{source}: the rule sends {n}/{c}, which the function ignores"
                    ));
                }
            }
        }
        let first_code = codes.first().map_or("AccessDenied", String::as_str);
        for n in name_candidates {
            let handled = diagnosed(source, n, first_code);
            if handled != names.iter().any(|x| x == n) {
                problems.push(if handled {
                    format!("{source}: the function diagnoses {n} but no rule delivers it")
                } else {
                    format!("{source}: the rule delivers {n}, which the function ignores")
                });
            }
        }
        let first_name = names.first().map_or("GetObject", String::as_str);
        for c in code_candidates {
            let handled = diagnosed(source, first_name, c);
            if handled != codes.iter().any(|x| x == c) {
                problems.push(if handled {
                    format!(
                        "{source}: the function diagnoses errorCode {c} but no rule delivers it"
                    )
                } else {
                    format!("{source}: the rule delivers errorCode {c}, which the function ignores")
                });
            }
        }
    }
    problems
}

#[test]
fn event_rules_deliver_exactly_what_the_function_diagnoses() {
    assert_no_problems(
        "event rules",
        &check_triggers(
            &read("template.yaml"),
            &read("templates/event-forwarding.yaml"),
        ),
    );
}

/// A successful record of `event_name` from `service` naming everything a change may name,
/// through `auditor::event::parse_events`: whether the function reads it as a change.
fn read_as_change(service: &str, event_name: &str) -> bool {
    let record = json!({
        "eventSource": format!("{service}.amazonaws.com"), "eventName": event_name,
        "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
        "userIdentity": {"type": "Root", "accountId": "111122223333"},
        "requestParameters": {"bucketName": "b", "keyId": "k", "aliasName": "alias/a",
            "roleName": "r", "userName": "u", "groupName": "g",
            "policyArn": "arn:aws:iam::111122223333:policy/p", "policyId": "p-1"},
    });
    matches!(
        auditor::event::parse_events(&record).as_deref(),
        Ok([auditor::event::EventOutcome::Change(_)])
    )
}

/// The change rules of both templates against `auditor::event::CHANGE_EVENTS`: one rule per
/// service, listing exactly that service's changes, for successful calls only, and the
/// forwarding template's rule identical to the function's.
fn check_change_rules(main_text: &str, forwarding_text: &str) -> Vec<String> {
    let main = function_rules_of(&template(main_text), true);
    let fwd = forwarding_rules_of(&template(forwarding_text), true);
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (service, name) in auditor::event::CHANGE_EVENTS {
        expected
            .entry(format!("aws.{service}"))
            .or_default()
            .insert((*name).to_owned());
    }
    let mut problems = Vec::new();
    if main.keys().collect::<Vec<_>>() != expected.keys().collect::<Vec<_>>() {
        problems.push(format!(
            "template.yaml change rules are for {:?}; the code reads changes of {:?}",
            main.keys(),
            expected.keys()
        ));
    }
    for (source, (state, pattern)) in &main {
        match fwd.get(source) {
            Some((fstate, fpattern)) if fpattern == pattern && fstate == state => {}
            Some(_) => problems.push(format!(
                "{source}: the forwarding change rule's pattern or state differs from template.yaml's"
            )),
            None => problems.push(format!(
                "{source}: templates/event-forwarding.yaml does not forward its changes"
            )),
        }
        if state == "DISABLED" {
            problems.push(format!("{source}: the change rule is disabled"));
        }
        if pattern["detail-type"] != json!(["AWS API Call via CloudTrail"]) {
            problems.push(format!(
                "{source}: detail-type must be exactly the CloudTrail API call"
            ));
        }
        let service = source.trim_start_matches("aws.");
        if pattern["detail"]["eventSource"] != json!([format!("{service}.amazonaws.com")]) {
            problems.push(format!(
                "{source}: eventSource must be {service}.amazonaws.com"
            ));
        }
        let names: BTreeSet<String> = strings(&pattern["detail"]["eventName"])
            .into_iter()
            .collect();
        let wanted = expected.get(source).cloned().unwrap_or_default();
        for n in names.difference(&wanted) {
            problems.push(format!(
                "{source}: the change rule delivers {n}, which the code does not read as a change"
            ));
        }
        for n in wanted.difference(&names) {
            problems.push(format!(
                "{source}: the code reads {n} as a change but no rule delivers it"
            ));
        }
        for n in &names {
            if !read_as_change(service, n) {
                problems.push(format!(
                    "{source}: parse_events does not read {n} as a change"
                ));
            }
        }
    }
    for source in fwd.keys() {
        if !main.contains_key(source) {
            problems.push(format!(
                "{source}: forwarded as a change, but template.yaml has no rule for it"
            ));
        }
    }
    problems
}

#[test]
fn change_rules_deliver_exactly_the_changes_the_function_reads() {
    assert_no_problems(
        "change rules",
        &check_change_rules(
            &read("template.yaml"),
            &read("templates/event-forwarding.yaml"),
        ),
    );
}

#[test]
fn a_change_rule_that_differs_from_the_code_fails_the_check() {
    let main = read("template.yaml");
    let fwd = read("templates/event-forwarding.yaml");
    assert!(check_change_rules(&main, &fwd).is_empty());
    // A change the code reads, dropped from both templates.
    let p = check_change_rules(
        &edit(&main, "PutBucketAcl]", "PutBucketCors]"),
        &edit(&fwd, "PutBucketAcl]", "PutBucketCors]"),
    );
    assert_flags(
        &p,
        "aws.s3: the code reads PutBucketAcl as a change but no rule delivers it",
    );
    assert_flags(
        &p,
        "aws.s3: the change rule delivers PutBucketCors, which the code does not read",
    );
    // The forwarding template drifting from the function's rule.
    let p = check_change_rules(&main, &edit(&fwd, "AddUserToGroup, ", ""));
    assert_flags(
        &p,
        "aws.iam: the forwarding change rule's pattern or state differs",
    );
    // A family without a rule.
    let p = check_change_rules(
        &edit(&main, "source: [aws.organizations]", "source: [aws.sso]"),
        &fwd,
    );
    assert_flags(&p, "template.yaml change rules are for");
}

// ---------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------

/// The `S3KA_*` names the live crate mentions as string literals (what `config.rs` and the
/// Lambda's `main` read).
fn variables_read() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, src) in live_sources() {
        for part in src.split('"').skip(1).step_by(2) {
            if part.starts_with("S3KA_")
                && part
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            {
                out.insert(part.to_owned());
            }
        }
    }
    out
}

/// The schedule's input is the one `handle_noisy` recognises (crates/live/src/handler/noise.rs,
/// `SCHEDULED_INPUT`), and the noise table has its TTL and encryption.
#[test]
fn the_schedule_sends_the_scheduled_runs_input() {
    let t = template(&read("template.yaml"));
    let e = &t["Resources"]["AuditorFunction"]["Properties"]["Events"]["NoiseSchedule"];
    assert_eq!(e["Type"], "Schedule");
    let input: Value = serde_json::from_str(e["Properties"]["Input"].as_str().unwrap()).unwrap();
    let source = read("crates/live/src/handler/noise.rs");
    let constant = source
        .split("pub const SCHEDULED_INPUT: &str = r#\"")
        .nth(1)
        .and_then(|r| r.split("\"#;").next())
        .expect("SCHEDULED_INPUT in handler/noise.rs");
    assert_eq!(input, serde_json::from_str::<Value>(constant).unwrap());
    let table = &t["Resources"]["NoiseTable"]["Properties"];
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        table["TimeToLiveSpecification"]["AttributeName"],
        "expires_at"
    );
    assert_eq!(table["TimeToLiveSpecification"]["Enabled"], true);
    assert_eq!(table["SSESpecification"]["SSEEnabled"], true);
    let dynamo = read("crates/live/src/aws/dynamo.rs");
    assert!(
        dynamo.contains("\"expires_at\""),
        "the TTL attribute the store writes"
    );
    assert!(
        dynamo.contains(".key(\"pk\""),
        "the partition key the store uses"
    );
}

#[test]
fn the_template_sets_only_variables_the_function_reads() {
    let read_vars = variables_read();
    assert!(
        read_vars.contains("S3KA_TOPIC_ARN"),
        "config.rs no longer reads S3KA_TOPIC_ARN? {read_vars:?}"
    );
    let t = template(&read("template.yaml"));
    let env = t["Resources"]["AuditorFunction"]["Properties"]["Environment"]["Variables"]
        .as_object()
        .unwrap();
    for k in env.keys() {
        assert!(
            read_vars.contains(k),
            "template.yaml sets {k}, which crates/live does not read ({read_vars:?})"
        );
    }
    for k in [
        "S3KA_TOPIC_ARN",
        "S3KA_ROLE_NAME",
        "S3KA_EXTERNAL_ID",
        "S3KA_HEAD_OBJECT",
    ] {
        assert!(env.contains_key(k), "template.yaml must set {k}");
    }
}

// ---------------------------------------------------------------------------------------------
// The checks fail when they should
// ---------------------------------------------------------------------------------------------

/// `text` with `from` replaced by `to`, which must occur.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the template no longer contains {from:?}; update this test"
    );
    text.replacen(from, to, 1)
}

fn member_problems(text: &str) -> Vec<String> {
    let calls = live_calls();
    let mut p = check_role(
        text,
        "MemberRole",
        &spec("MemberRole", &calls, RoleKind::Member),
    );
    p.extend(check_member_trust(text));
    p
}

fn auditor_problems(text: &str) -> Vec<String> {
    let calls = live_calls();
    let mut p = check_role(
        text,
        "AuditorRole",
        &spec("AuditorRole", &calls, RoleKind::Auditor),
    );
    p.extend(check_auditor_resources(text));
    p
}

fn assert_flags(problems: &[String], needle: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "expected a problem mentioning {needle:?}, got:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn removing_a_needed_permission_fails_the_check() {
    let member = read("templates/member-role.yaml");
    assert!(member_problems(&member).is_empty());
    let p = member_problems(&edit(&member, ", kms:ListGrants]", "]"));
    assert_flags(
        &p,
        "`kms:ListGrants` is not granted; the code calls it at crates/live/src/aws/kms.rs",
    );
    let p = member_problems(&edit(
        &member,
        "                  - iam:ListGroupsForUser\n",
        "",
    ));
    assert_flags(&p, "`iam:ListGroupsForUser` is not granted");
    let auditor = read("template.yaml");
    assert!(auditor_problems(&auditor).is_empty());
    let p = auditor_problems(&edit(
        &auditor,
        "                Action: sns:Publish\n",
        "                Action: sns:GetTopicAttributes\n",
    ));
    assert_flags(&p, "`sns:Publish` is not granted");
    let p = auditor_problems(&edit(
        &auditor,
        "                Action: sts:AssumeRole\n                Resource",
        "                Action: sts:GetSessionToken\n                Resource",
    ));
    // What is left is the org reader's grant, behind its condition: not enough.
    assert_flags(
        &p,
        "`sts:AssumeRole` is only granted conditionally ([\"OrgReaderRole\"])",
    );
    let p = auditor_problems(&edit(
        &auditor,
        "Action: [s3:GetObject, s3:PutObject]\n",
        "Action: [s3:GetObject]\n",
    ));
    assert_flags(
        &p,
        "`s3:PutObject` is not granted; the code calls it at crates/live/src/aws/state.rs",
    );
}

#[test]
fn widening_a_permission_fails_the_check() {
    let member = read("templates/member-role.yaml");
    let widen = |from: &str, to: &str| member_problems(&edit(&member, from, to));
    assert_flags(
        &widen(", kms:ListGrants]", ", kms:ListGrants, kms:Decrypt]"),
        "`kms:Decrypt` must never be granted",
    );
    assert_flags(
        &widen(
            "                  - s3:GetBucketPolicy\n",
            "                  - s3:*\n",
        ),
        "`s3:*` is a wildcard action",
    );
    assert_flags(
        &widen(
            "                  - iam:GetRole\n",
            "                  - iam:Get*\n",
        ),
        "`iam:Get*` is a wildcard action",
    );
    assert_flags(
        &widen(
            "                  - s3:GetBucketPolicy\n",
            "                  - s3:GetBucketPolicy\n                  - s3:ListBucket\n",
        ),
        "`s3:ListBucket` is granted but this role needs it for no call",
    );
    // s3:GetObject outside the ObjectMetadata switch.
    assert_flags(
        &widen(
            "                  - s3:GetBucketLocation\n",
            "                  - s3:GetBucketLocation\n                  - s3:GetObject\n",
        ),
        "grant it only under `!If [ObjectMetadata, ...]`",
    );
    assert_flags(
        &widen(
            "Resource: !Sub arn:${AWS::Partition}:kms:*:${AWS::AccountId}:key/*",
            "Resource: \"*\"",
        ),
        "`kms:DescribeKey` on `Resource: \"*\"`",
    );
    assert_flags(&widen("                Effect: Allow\n                Action:\n                  - s3:GetBucketLocation", "                Effect: Allow\n                NotAction: iam:*\n                Action:\n                  - s3:GetBucketLocation"), "`NotAction` grants everything else");
    assert_flags(&widen("      MaxSessionDuration: 3600\n", "      MaxSessionDuration: 3600\n      ManagedPolicyArns: [arn:aws:iam::aws:policy/ReadOnlyAccess]\n"), "managed policies");
    // The trust policy: anyone in the auditor account, or no ExternalId.
    assert_flags(
        &widen("role/${AuditorRoleName}", "root"),
        "must trust the auditor's role only",
    );
    assert_flags(
        &widen("\"sts:ExternalId\"", "\"sts:RoleSessionName\""),
        "must require the ExternalId",
    );
    // The function's role: sts:AssumeRole on any role, publish anywhere.
    let auditor = read("template.yaml");
    assert_flags(
        &auditor_problems(&edit(
            &auditor,
            "iam::*:role/${MemberRoleName}",
            "iam::*:role/*",
        )),
        "sts:AssumeRole must be on the member role name only",
    );
    assert_flags(
        &auditor_problems(&edit(
            &auditor,
            "Action: sns:Publish\n                Resource: !Ref FindingsTopic",
            "Action: sns:Publish\n                Resource: \"*\"",
        )),
        "`sns:Publish` on `Resource: \"*\"`",
    );
    // The state store: writes anywhere but the state bucket, or reads of any object.
    assert_flags(
        &auditor_problems(&edit(
            &auditor,
            "Action: [s3:GetObject, s3:PutObject]\n                Resource: !Sub ${StateBucket.Arn}/*",
            "Action: [s3:GetObject, s3:PutObject]\n                Resource: !Sub arn:${AWS::Partition}:s3:::*/*",
        )),
        "s3:PutObject must be on the state bucket's objects only",
    );
    assert_flags(
        &auditor_problems(&edit(
            &auditor,
            "Action: [s3:GetObject, s3:PutObject]\n                Resource: !Sub ${StateBucket.Arn}/*",
            "Action: [s3:GetObject, s3:PutObject]\n                Resource: !Sub arn:${AWS::Partition}:s3:::*/*",
        )),
        "grant it only under `!If [ObjectMetadata, ...]`",
    );
    assert_flags(
        &auditor_problems(&edit(
            &auditor,
            "Action: s3:ListBucket\n                Resource: !GetAtt StateBucket.Arn",
            "Action: s3:ListBucket\n                Resource: !Sub arn:${AWS::Partition}:s3:::*",
        )),
        "s3:ListBucket must be on the state bucket only",
    );
}

#[test]
fn an_unmapped_or_ambiguous_sdk_call_fails_the_scan() {
    let universe = sdk_universe();
    let file = |src: &str| vec![("crates/live/src/aws/new.rs".to_owned(), src.to_owned())];
    // A call the table does not know.
    let p = sdk_calls(
        &file("async fn f(r: &R) { r.s3(\"x\").put_bucket_policy().bucket(\"b\").send().await; }"),
        &universe,
    )
    .unwrap_err();
    assert_flags(&p, "crates/live/src/aws/new.rs:1: `put_bucket_policy` (s3) is an AWS call missing from OPERATIONS");
    // A name two services share, on a receiver that says neither.
    let p = sdk_calls(
        &file("fn f(c: &C) {\n  c.list_tags_for_resource().send();\n}"),
        &universe,
    )
    .unwrap_err();
    assert_flags(&p, "new.rs:2: `list_tags_for_resource` is an operation of");
    // list_policies exists in IAM and Organizations: the chain says which.
    let calls = sdk_calls(
        &file("fn f(r: &R) { r.iam().list_policies().send(); }"),
        &universe,
    )
    .unwrap();
    assert_eq!(calls[0].action, "iam:ListPolicies");
    let p = sdk_calls(
        &file("fn f(r: &R) { r.org().list_policies().send(); }"),
        &universe,
    )
    .unwrap_err();
    assert_flags(&p, "`list_policies` (organizations) is an AWS call missing");
    // Comments, strings and test code are not calls.
    let quiet = "// r.put_bucket_policy()\n/* r.decrypt() */\nconst S: &str = \".decrypt(\";\nfn g<'a>(x: &'a str) -> char { 'x' }\n#[cfg(test)]\nmod tests { fn t(r: &R) { r.decrypt().send(); } }\n";
    assert!(sdk_calls(&file(quiet), &universe).unwrap().is_empty());
    // A module path named like an operation is not a call.
    assert!(sdk_calls(&file("use aws_sigv4::sign::v4;\n"), &universe)
        .unwrap()
        .is_empty());
    // Turbofish and path calls count.
    let p = sdk_calls(
        &file("fn f() { aws_sdk_kms::Client::decrypt(&c); }"),
        &universe,
    )
    .unwrap_err();
    assert_flags(&p, "`decrypt` (kms) is an AWS call missing");
    let p = sdk_calls(
        &file("fn f(r: &R) { r.kms(\"x\").decrypt:: <u8>(); }"),
        &universe,
    )
    .unwrap_err();
    assert_flags(&p, "`decrypt` (kms) is an AWS call missing");
}

#[test]
fn a_trigger_the_function_does_not_handle_fails_the_check() {
    let main = read("template.yaml");
    let fwd = read("templates/event-forwarding.yaml");
    assert!(check_triggers(&main, &fwd).is_empty());
    // A KMS call the parser ignores.
    let added = "eventName: [Decrypt, Encrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext, GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext, ReEncrypt, Sign]";
    let from = "eventName: [Decrypt, Encrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext, GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext, ReEncrypt]";
    let p = check_triggers(&edit(&main, from, added), &edit(&fwd, from, added));
    assert_flags(
        &p,
        "the rule sends Sign/AccessDenied, which the function ignores",
    );
    // A handled call the rule drops.
    let p = check_triggers(
        &edit(&main, "HeadObject, ", ""),
        &edit(&fwd, "HeadObject, ", ""),
    );
    assert_flags(
        &p,
        "the function diagnoses HeadObject but no rule delivers it",
    );
    // The forwarding template drifting from the function's rules.
    let p = check_triggers(&main, &edit(&fwd, "HeadObject, ", ""));
    assert_flags(&p, "aws.s3: the forwarding rule's pattern or state differs");
    // A KMS rule that may drop read-only events.
    let p = check_triggers(&edit(&main, "            State: ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS\n            Pattern:\n              source: [aws.kms]", "            State: ENABLED\n            Pattern:\n              source: [aws.kms]"), &fwd);
    assert_flags(&p, "aws.kms: state ENABLED may drop read-only events");
}

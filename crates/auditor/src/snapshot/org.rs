//! AWS Organizations: the organization id and the SCPs and RCPs that apply to an account.

use iam_eval::PolicyKind;
use serde_json::Value;

use super::policy::{parse_policy, NamedPolicy};
use super::SnapshotError;
use crate::limits::PolicyLimit;
use crate::reader::{Node, PathError};

/// The organization an account belongs to, and the policies it inherits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Organization {
    /// `o-…`, the value of `aws:PrincipalOrgID` / `aws:ResourceOrgID`.
    pub id: Option<String>,
    /// SCPs by level, from the root through each OU to the account: every level must allow
    /// (an allow at one level does not carry to the next).
    pub scp: Vec<Vec<NamedPolicy>>,
    /// RCPs by level, in the same order.
    pub rcp: Vec<Vec<NamedPolicy>>,
    /// Whether this is the management account, which SCPs and RCPs never restrict.
    pub is_management_account: bool,
    /// The management account's id (`MasterAccountId` of `DescribeOrganization`), when known:
    /// the account that must change an SCP or RCP.
    pub management_account: Option<String>,
}

const ORG_KEYS: &[&str] = &[
    "id",
    "scp",
    "rcp",
    "is_management_account",
    "management_account",
];

impl Organization {
    pub(crate) fn parse(node: &Node<'_>, account: &str) -> Result<Organization, PathError> {
        node.only_keys(ORG_KEYS)?;
        let id = node.opt_str("id")?;
        if let Some(id) = &id {
            let valid = id.strip_prefix("o-").is_some_and(|rest| {
                rest.len() >= 10
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
            if !valid {
                return Err(node.loc.key("id").err(format!(
                    "`{id}` is not an organization id such as `o-a1b2c3d4e5`"
                )));
            }
        }
        let management_account = node.opt_str("management_account")?;
        if let Some(m) = &management_account {
            if !crate::refs::is_account_id(m) {
                return Err(node
                    .loc
                    .key("management_account")
                    .err(format!("`{m}` is not a 12-digit account id")));
            }
        }
        Ok(Organization {
            id,
            management_account,
            scp: parse_levels(node, "scp", "SCP", account)?,
            rcp: parse_levels(node, "rcp", "RCP", account)?,
            is_management_account: node.bool_or("is_management_account", false)?,
        })
    }
}

impl NamedPolicy {
    /// An SCP (`scp` true) or RCP as `organizations describe-policy` returns it
    /// (`{"Policy": {"PolicySummary": {...}, "Content": "..."}}`), named as the snapshot reader
    /// names it, so that a collected organization reads back equal.
    pub fn org_policy(scp: bool, described: Value) -> Result<NamedPolicy, SnapshotError> {
        let kind = if scp { "SCP" } else { "RCP" };
        // The position only names a policy without a summary, which describe-policy always has.
        parse_org_policy(&Node::root(&described), kind, "", 0, 0).map_err(SnapshotError::from)
    }
}

fn parse_levels(
    node: &Node<'_>,
    key: &str,
    kind: &str,
    account: &str,
) -> Result<Vec<Vec<NamedPolicy>>, PathError> {
    let Some(levels) = node.get(key)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (depth, level) in levels.arr()?.iter().enumerate() {
        let policies = level.arr()?;
        if policies.is_empty() {
            // AWS keeps at least one policy attached at every level (FullAWSAccess /
            // RCPFullAWSAccess by default); an empty level would read as "deny everything".
            return Err(level.err(format!(
                "a level lists no {kind}; AWS keeps at least one attached at every level (list the `{}` policy where it applies)",
                if kind == "SCP" { "FullAWSAccess" } else { "RCPFullAWSAccess" }
            )));
        }
        let mut parsed = Vec::new();
        for (position, entry) in policies.iter().enumerate() {
            parsed.push(parse_org_policy(entry, kind, account, depth, position)?);
        }
        out.push(parsed);
    }
    Ok(out)
}

/// An SCP or RCP: a policy document (object or string), or `describe-policy` output
/// (`{"Policy": {"PolicySummary": {...}, "Content": "..."}}`, with or without the outer
/// `Policy`), whose summary gives the policy a name.
fn parse_org_policy(
    node: &Node<'_>,
    kind: &str,
    account: &str,
    depth: usize,
    position: usize,
) -> Result<NamedPolicy, PathError> {
    // SCPs follow identity-policy rules (no `Principal`); RCPs are resource policies.
    let (policy_kind, limit) = if kind == "SCP" {
        (PolicyKind::Identity, PolicyLimit::Scp)
    } else {
        (PolicyKind::Resource, PolicyLimit::Rcp)
    };
    let described = if node.v.is_object() && node.get("Statement")?.is_none() {
        Some(node.get("Policy")?.unwrap_or_else(|| node.clone()))
    } else {
        None
    };
    let Some(described) = described else {
        let name = format!("{kind} #{position} at level {depth} above account {account}");
        return parse_policy(node, policy_kind, name, Some(limit));
    };
    let summary = described.get("PolicySummary")?;
    let summary_name = summary
        .as_ref()
        .map(|s| s.opt_str("Name"))
        .transpose()?
        .flatten();
    let summary_id = summary
        .as_ref()
        .map(|s| s.opt_str("Id"))
        .transpose()?
        .flatten();
    let name = match (summary_name, summary_id) {
        (Some(n), Some(i)) => format!("{kind} {n} ({i})"),
        (Some(n), None) => format!("{kind} {n}"),
        (None, Some(i)) => format!("{kind} {i}"),
        (None, None) => format!("{kind} #{position} at level {depth} above account {account}"),
    };
    let mut named = parse_policy(&described.req("Content")?, policy_kind, name, Some(limit))?;
    // The summary names the policy: keep the whole entry so the writer gives it back.
    named.source = node.v.clone();
    Ok(named)
}

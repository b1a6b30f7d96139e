//! AWS Organizations: whether the account is in an organization, and which; from the
//! management account or a delegated administrator, the SCPs and RCPs that apply to an
//! account (`ListParents`, `ListPoliciesForTarget`, `DescribePolicy`); for the scope of an
//! SCP or RCP change, the accounts under an OU (`ListChildren`) and where a policy is attached
//! (`ListTargetsForPolicy`). Lists follow `NextToken` to the last page.

use aws_sdk_organizations::types::{ChildType, ParentType, PolicyType};
use serde_json::{json, Map, Value};

use super::{none_if, read_error, AwsReader};
use crate::ports::{OrgChildType, OrgInfo, OrgParent, OrgPolicyType, OrgReads, Read};

/// The most `ListParents` / `ListPoliciesForTarget` pages read for one target: far above
/// what AWS returns (an account has one parent; at most 5 SCPs and 5 RCPs attach to a target,
/// Organizations quotas), so a server that never ends its list cannot stall the collection.
const MAX_PAGES: usize = 50;

/// The most `ListChildren` / `ListTargetsForPolicy` pages read for one parent or policy: at
/// most 20 entries a page, and an organization holds at most 10,000 accounts by default
/// (Organizations quotas), so 500 pages always reach the end of an honest list.
const MAX_LIST_PAGES: usize = 500;

impl OrgReads for AwsReader {
    async fn organization(&self) -> Read<Option<OrgInfo>> {
        let got = self
            .org()
            .describe_organization()
            .send()
            .await
            .map_err(read_error);
        let Some(out) = none_if(got, &["AWSOrganizationsNotInUseException"])? else {
            return Ok(None);
        };
        Ok(out.organization().map(|o| OrgInfo {
            id: o.id().unwrap_or_default().to_owned(),
            management_account: o.master_account_id().unwrap_or_default().to_owned(),
        }))
    }

    async fn parents(&self, child: &str) -> Read<Vec<OrgParent>> {
        let client = self.org();
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = client
                .list_parents()
                .child_id(child)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(read_error)?;
            out.extend(page.parents().iter().filter_map(|p| {
                Some(OrgParent {
                    id: p.id()?.to_owned(),
                    is_root: p.r#type() == Some(&ParentType::Root),
                })
            }));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn policies_for_target(&self, target: &str, kind: OrgPolicyType) -> Read<Vec<String>> {
        let client = self.org();
        let filter = match kind {
            OrgPolicyType::Scp => PolicyType::ServiceControlPolicy,
            OrgPolicyType::Rcp => PolicyType::ResourceControlPolicy,
        };
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = client
                .list_policies_for_target()
                .target_id(target)
                .filter(filter.clone())
                .set_next_token(token.take())
                .send()
                .await
                .map_err(read_error)?;
            out.extend(
                page.policies()
                    .iter()
                    .filter_map(|p| p.id().map(str::to_owned)),
            );
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn describe_policy(&self, id: &str) -> Read<Value> {
        let out = self
            .org()
            .describe_policy()
            .policy_id(id)
            .send()
            .await
            .map_err(read_error)?;
        let policy = out.policy();
        let mut summary = Map::new();
        if let Some(s) = policy.and_then(|p| p.policy_summary()) {
            for (k, v) in [
                ("Id", s.id()),
                ("Arn", s.arn()),
                ("Name", s.name()),
                ("Description", s.description()),
                ("Type", s.r#type().map(PolicyType::as_str)),
            ] {
                if let Some(v) = v {
                    summary.insert(k.into(), json!(v));
                }
            }
            summary.insert("AwsManaged".into(), json!(s.aws_managed()));
        }
        Ok(json!({"Policy": {
            "PolicySummary": summary,
            "Content": policy.and_then(|p| p.content()).unwrap_or_default(),
        }}))
    }

    async fn children(&self, parent: &str, kind: OrgChildType) -> Read<Vec<String>> {
        let client = self.org();
        let child_type = match kind {
            OrgChildType::Account => ChildType::Account,
            OrgChildType::Ou => ChildType::OrganizationalUnit,
        };
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let page = client
                .list_children()
                .parent_id(parent)
                .child_type(child_type.clone())
                .set_next_token(token.take())
                .send()
                .await
                .map_err(read_error)?;
            out.extend(
                page.children()
                    .iter()
                    .filter_map(|c| c.id().map(str::to_owned)),
            );
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn targets_for_policy(&self, policy: &str) -> Read<Vec<String>> {
        let client = self.org();
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let page = client
                .list_targets_for_policy()
                .policy_id(policy)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(read_error)?;
            out.extend(
                page.targets()
                    .iter()
                    .filter_map(|t| t.target_id().map(str::to_owned)),
            );
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }
}

//! The whole-account reads of an organization sweep: every bucket (`ListBuckets`), every IAM
//! identity and customer managed policy (`GetAccountAuthorizationDetails`), and the accounts
//! of the organization (`ListAccounts`). Every list follows its pages to the end.

use aws_sdk_iam::types::EntityType;
use aws_sdk_organizations::types::AccountState;

use super::iam::{decoded, tags};
use super::{read_error, AwsReader};
use crate::ports::{
    AuthorizationDetails, DetailedIdentity, DetailedPolicy, IdentityInfo, Inventory, Read,
};

/// `ListBuckets` page size (the API's maximum is 10,000).
const BUCKET_PAGE: i32 = 1000;
/// `GetAccountAuthorizationDetails` page size (the API's maximum).
const IAM_PAGE: i32 = 1000;
/// `ListAccounts` page size (the API's maximum is 20).
const ACCOUNT_PAGE: i32 = 20;

fn inline(list: &[aws_sdk_iam::types::PolicyDetail]) -> Vec<(String, String)> {
    list.iter()
        .filter_map(|p| Some((p.policy_name()?.to_owned(), p.policy_document()?.to_owned())))
        .collect()
}

fn attached(list: &[aws_sdk_iam::types::AttachedPolicy]) -> Vec<String> {
    list.iter()
        .filter_map(|p| p.policy_arn().map(str::to_owned))
        .collect()
}

impl Inventory for AwsReader {
    async fn list_buckets(&self, region: &str) -> Read<Vec<(String, Option<String>)>> {
        let s3 = self.s3(region);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = s3.list_buckets().max_buckets(BUCKET_PAGE);
            if let Some(t) = &token {
                req = req.continuation_token(t);
            }
            let page = req.send().await.map_err(read_error)?;
            out.extend(page.buckets().iter().filter_map(|b| {
                let region = b
                    .bucket_region()
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned);
                b.name().map(|n| (n.to_owned(), region))
            }));
            match page.continuation_token().filter(|t| !t.is_empty()) {
                Some(t) if token.as_deref() != Some(t) => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    async fn authorization_details(&self) -> Read<AuthorizationDetails> {
        let iam = self.iam();
        let mut out = AuthorizationDetails::default();
        let mut marker: Option<String> = None;
        loop {
            // AWS managed policies are left out (there are over a thousand); the collector
            // reads the default version of those attached in the account.
            let mut req = iam
                .get_account_authorization_details()
                .filter(EntityType::Role)
                .filter(EntityType::User)
                .filter(EntityType::Group)
                .filter(EntityType::LocalManagedPolicy)
                .max_items(IAM_PAGE);
            if let Some(m) = &marker {
                req = req.marker(m);
            }
            let page = req.send().await.map_err(read_error)?;
            for r in page.role_detail_list() {
                let (Some(name), Some(arn)) = (r.role_name(), r.arn()) else {
                    continue;
                };
                out.roles.push(DetailedIdentity {
                    name: name.to_owned(),
                    info: IdentityInfo {
                        arn: arn.to_owned(),
                        path: r.path().unwrap_or("/").to_owned(),
                        id: r.role_id().map(str::to_owned),
                        permissions_boundary: r
                            .permissions_boundary()
                            .and_then(|b| b.permissions_boundary_arn())
                            .map(str::to_owned),
                        tags: tags(r.tags()),
                        trust_policy: r.assume_role_policy_document().map(decoded),
                    },
                    inline: inline(r.role_policy_list()),
                    attached: attached(r.attached_managed_policies()),
                    groups: Vec::new(),
                });
            }
            for u in page.user_detail_list() {
                let (Some(name), Some(arn)) = (u.user_name(), u.arn()) else {
                    continue;
                };
                out.users.push(DetailedIdentity {
                    name: name.to_owned(),
                    info: IdentityInfo {
                        arn: arn.to_owned(),
                        path: u.path().unwrap_or("/").to_owned(),
                        id: u.user_id().map(str::to_owned),
                        permissions_boundary: u
                            .permissions_boundary()
                            .and_then(|b| b.permissions_boundary_arn())
                            .map(str::to_owned),
                        tags: tags(u.tags()),
                        trust_policy: None,
                    },
                    inline: inline(u.user_policy_list()),
                    attached: attached(u.attached_managed_policies()),
                    groups: u.group_list().to_vec(),
                });
            }
            for g in page.group_detail_list() {
                let (Some(name), Some(arn)) = (g.group_name(), g.arn()) else {
                    continue;
                };
                out.groups.push(DetailedIdentity {
                    name: name.to_owned(),
                    info: IdentityInfo {
                        arn: arn.to_owned(),
                        path: g.path().unwrap_or("/").to_owned(),
                        id: g.group_id().map(str::to_owned),
                        permissions_boundary: None,
                        tags: Vec::new(),
                        trust_policy: None,
                    },
                    inline: inline(g.group_policy_list()),
                    attached: attached(g.attached_managed_policies()),
                    groups: Vec::new(),
                });
            }
            for p in page.policies() {
                let (Some(arn), Some(version)) = (p.arn(), p.default_version_id()) else {
                    continue;
                };
                let document = p
                    .policy_version_list()
                    .iter()
                    .find(|v| v.is_default_version() || v.version_id() == Some(version))
                    .and_then(|v| v.document())
                    .map(decoded);
                out.policies.push(DetailedPolicy {
                    arn: arn.to_owned(),
                    name: p.policy_name().map(str::to_owned),
                    default_version: version.to_owned(),
                    document,
                });
            }
            match page.marker().filter(|_| page.is_truncated()) {
                Some(m) => marker = Some(m.to_owned()),
                None => return Ok(out),
            }
        }
    }

    async fn list_accounts(&self) -> Read<Vec<String>> {
        let org = self.org();
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = org.list_accounts().max_results(ACCOUNT_PAGE);
            if let Some(t) = &token {
                req = req.next_token(t);
            }
            let page = req.send().await.map_err(read_error)?;
            for a in page.accounts() {
                // `State` replaces the deprecated `Status`; an account without it (an older
                // server) counts as active.
                let active = a.state().is_none_or(|s| *s == AccountState::Active);
                if let (true, Some(id)) = (active, a.id()) {
                    out.push(id.to_owned());
                }
            }
            match page.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(out),
            }
        }
    }
}

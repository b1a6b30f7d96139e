//! A whole account, for the organization sweep: every bucket with its configuration and the
//! keys it uses (with their policies and grants), every role, user and group with their
//! policies, and the organization — the same chains as a diagnosis, started from listings
//! instead of from a request.
//!
//! ```text
//! depth 1  sts:AssumeRole (skipped for the function's own account)
//! depth 2  ListBuckets · GetAccountAuthorizationDetails (every page) · DescribeOrganization
//! depth 3  per bucket, BUCKETS_AT_ONCE at a time: location, policy, encryption, ownership,
//!          public access block; AWS managed policies attached in the account: GetPolicy
//! depth 4  the keys the buckets use: DescribeKey, GetKeyPolicy, ListGrants, ListAliases;
//!          the AWS managed policies' documents
//! ```

use auditor::snapshot::{Group, Iam, NamedPolicy, Role, Snapshot, User};
use futures_util::future::join_all;

use super::{answer, assemble, decode, gap, invalid, CollectError, Collector, Fragment, Reader};
use crate::meter::Meter;
use crate::ports::{Accounts, AuthorizationDetails, DetailedIdentity, Inventory, ReadError};

/// Buckets read side by side: each is five reads at once, so this bounds one account's S3
/// calls in flight (S3 allows thousands of requests per second per prefix; the limit keeps a
/// sweep of many accounts polite to the account's other users of the API).
const BUCKETS_AT_ONCE: usize = 8;

impl<A: Accounts> Collector<A>
where
    A::Reader: Inventory,
{
    /// Reads the whole of `account` (see the module documentation). A role that cannot be
    /// assumed fails the collection (the sweep retries it, and counts the account failed),
    /// rather than storing an account that looks empty.
    pub async fn collect_account(
        &self,
        account: &str,
        region: &str,
        meter: &Meter,
    ) -> Result<Snapshot, CollectError> {
        let (reader, depth) = match self.access(account, meter).await? {
            Ok(r) => r,
            Err(Fragment::Gap(e)) => {
                return Err(CollectError {
                    operation: e.operation,
                    account: account.to_owned(),
                    source: ReadError::Denied {
                        code: e.error,
                        message: e.message,
                    },
                })
            }
            Err(_) => {
                return Err(CollectError {
                    operation: "sts:AssumeRole".into(),
                    account: account.to_owned(),
                    source: ReadError::Service {
                        code: "NoSession".into(),
                        message: None,
                    },
                })
            }
        };
        let r = Reader {
            reader: &reader,
            account,
            depth,
        };
        let d = depth + 1;
        meter.call("s3:ListBuckets", d);
        meter.call("iam:GetAccountAuthorizationDetails", d);
        let (org, buckets, details) = tokio::join!(
            self.organization(r, meter),
            reader.list_buckets(region),
            reader.authorization_details(),
        );
        let mut fragments = org?;
        let buckets = answer(buckets, account, "s3:ListBuckets")?;
        let details = answer(details, account, "iam:GetAccountAuthorizationDetails")?;
        let iam = async {
            match details {
                Ok(d) => self.account_iam(r, d, meter).await,
                Err(e) => Ok(vec![gap(
                    account,
                    "iam:GetAccountAuthorizationDetails",
                    None,
                    &e,
                )]),
            }
        };
        let bucket_reads = async {
            let names = match buckets {
                Ok(n) => n,
                Err(e) => return Ok(vec![gap(account, "s3:ListBuckets", None, &e)]),
            };
            let mut out = Vec::new();
            for chunk in names.chunks(BUCKETS_AT_ONCE) {
                let r = Reader { depth: d, ..r };
                // Each bucket is read in its own Region when the listing names it: S3 answers
                // a request for a bucket of another Region with a redirect.
                let got = join_all(chunk.iter().map(|(b, in_region)| {
                    let region = in_region.as_deref().unwrap_or(region);
                    Box::pin(self.bucket_and_object(r, region, b, None, None, None, meter))
                }))
                .await;
                for chain in got {
                    out.extend(chain?);
                }
            }
            Ok::<_, CollectError>(out)
        };
        let (iam, bucket_fragments) = tokio::join!(iam, bucket_reads);
        fragments.extend(iam?);
        fragments.extend(bucket_fragments?);
        Ok(assemble(
            format!("Collected live by s3-kms-auditor's organization sweep: account {account}"),
            fragments,
        ))
    }

    /// The account's IAM from `GetAccountAuthorizationDetails`, with the documents of the AWS
    /// managed policies attached in it (which the listing leaves out).
    async fn account_iam(
        &self,
        r: Reader<'_, A::Reader>,
        details: AuthorizationDetails,
        meter: &Meter,
    ) -> Result<Vec<Fragment>, CollectError> {
        let account = r.account;
        let mut out = Vec::new();
        let mut iam = Iam::default();
        let inline = |kind: &str, who: &DetailedIdentity| -> Result<Vec<NamedPolicy>, ReadError> {
            who.inline
                .iter()
                .map(|(name, doc)| {
                    NamedPolicy::inline(kind, &who.name, name, decode(doc)).map_err(invalid)
                })
                .collect()
        };
        for role in &details.roles {
            let policies = match inline("role", role) {
                Ok(p) => p,
                Err(e) => {
                    // Without all its policies the role would read as allowed or denied
                    // wrongly: leave it out, with the gap.
                    out.push(gap(account, "iam:GetRolePolicy", Some(&role.info.arn), &e));
                    continue;
                }
            };
            let trust_policy = match role
                .info
                .trust_policy
                .as_deref()
                .map(|t| NamedPolicy::trust_policy(&role.name, decode(t)))
                .transpose()
            {
                Ok(t) => t,
                Err(e) => {
                    out.push(gap(
                        account,
                        "iam:GetRole",
                        Some(&role.info.arn),
                        &invalid(e),
                    ));
                    None
                }
            };
            iam.roles.push(Role {
                path: role.info.path.clone(),
                name: role.name.clone(),
                id: role.info.id.clone(),
                arn: role.info.arn.clone(),
                inline_policies: policies,
                attached_policies: role.attached.clone(),
                permissions_boundary: role.info.permissions_boundary.clone(),
                tags: role.info.tags.iter().cloned().collect(),
                trust_policy,
            });
        }
        for user in &details.users {
            let policies = match inline("user", user) {
                Ok(p) => p,
                Err(e) => {
                    out.push(gap(account, "iam:GetUserPolicy", Some(&user.info.arn), &e));
                    continue;
                }
            };
            iam.users.push(User {
                path: user.info.path.clone(),
                name: user.name.clone(),
                id: user.info.id.clone(),
                arn: user.info.arn.clone(),
                inline_policies: policies,
                attached_policies: user.attached.clone(),
                permissions_boundary: user.info.permissions_boundary.clone(),
                tags: user.info.tags.iter().cloned().collect(),
                groups: user.groups.clone(),
            });
        }
        for group in &details.groups {
            let policies = match inline("group", group) {
                Ok(p) => p,
                Err(e) => {
                    out.push(gap(
                        account,
                        "iam:GetGroupPolicy",
                        Some(&group.info.arn),
                        &e,
                    ));
                    continue;
                }
            };
            iam.groups.push(Group {
                path: group.info.path.clone(),
                name: group.name.clone(),
                id: group.info.id.clone(),
                arn: Some(group.info.arn.clone()),
                inline_policies: policies,
                attached_policies: group.attached.clone(),
            });
        }
        for p in &details.policies {
            let Some(doc) = &p.document else { continue };
            match NamedPolicy::managed(&p.arn, decode(doc)) {
                Ok(document) => {
                    iam.managed_policies.insert(
                        p.arn.clone(),
                        auditor::snapshot::ManagedPolicy {
                            arn: p.arn.clone(),
                            name: p.name.clone(),
                            default_version_id: Some(p.default_version.clone()),
                            document: Some(document),
                        },
                    );
                }
                Err(e) => out.push(gap(
                    account,
                    "iam:GetAccountAuthorizationDetails",
                    Some(&p.arn),
                    &invalid(e),
                )),
            }
        }
        // Attached or boundary policies the listing did not describe: AWS managed ones.
        let mut missing: Vec<String> = details
            .roles
            .iter()
            .chain(&details.users)
            .chain(&details.groups)
            .flat_map(|w| w.attached.iter().chain(w.info.permissions_boundary.iter()))
            .filter(|arn| !iam.managed_policies.contains_key(*arn))
            .cloned()
            .collect();
        missing.sort();
        missing.dedup();
        let got = join_all(missing.iter().map(|arn| {
            Box::pin(self.managed_policy(r.reader, account, arn, None, r.depth + 1, meter))
        }))
        .await;
        for (arn, p) in missing.iter().zip(got) {
            match p? {
                Ok(p) => {
                    iam.managed_policies.insert(arn.clone(), p);
                }
                Err(e) => out.push(gap(account, "iam:GetPolicyVersion", Some(arn), &e)),
            }
        }
        out.push(Fragment::Iam {
            account: account.to_owned(),
            iam,
        });
        Ok(out)
    }
}

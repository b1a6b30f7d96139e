//! The SCPs and RCPs that apply to an account, read where Organizations answers: the
//! management account or a delegated administrator ([`Accounts::org_reader`]).
//!
//! From the account up to the root, each target (account, OUs, root) costs one round trip:
//! `ListParents` and `ListPoliciesForTarget` for both types side by side; then one more for
//! `DescribePolicy` of every policy not yet known. Each target's parent and policy ids, and each
//! policy by id, are cached per organization, so a second account under the same OU reads only
//! its own level, and a warm container reads nothing
//! ([Organizations API: ListParents](https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListParents.html),
//! [ListPoliciesForTarget](https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListPoliciesForTarget.html)).

use std::collections::{BTreeMap, BTreeSet};

use auditor::impact::scope::{OrgReach, OrgRead, OrgTarget};
use auditor::snapshot::NamedPolicy;
use futures_util::future::join_all;

use super::{answer, gap, invalid, CollectError, Collector, Fragment};
use crate::keys;
use crate::meter::Meter;
use crate::ports::{Access, Accounts, OrgChildType, OrgParent, OrgPolicyType, OrgReads, ReadError};

/// Levels above an account: at most five of OUs under the root (Organizations quotas), the
/// root and the account; a walk longer than this is a loop the server made.
const MAX_LEVELS: usize = 8;

/// What the organization's policies came to.
pub(super) enum OrgLevels {
    /// No reader for the organization is configured.
    NotConfigured,
    /// SCP and RCP levels, root first (`[]` for a type not enabled in the organization).
    Read {
        scp: Vec<Vec<NamedPolicy>>,
        rcp: Vec<Vec<NamedPolicy>>,
    },
    /// A read was refused: the gaps to record.
    Gaps(Vec<Fragment>),
}

/// One root, OU or account, as the cache keeps it.
#[derive(Debug, Clone)]
struct Target {
    parent: Option<OrgParent>,
    scp: Vec<String>,
    rcp: Vec<String>,
}

impl<A: Accounts> Collector<A> {
    /// Opens the organization reader's session beside the member accounts' (depth 1), so that
    /// the walk up the organization does not wait for it after `DescribeOrganization`. A
    /// failure is left for [`Collector::org_levels`] to report.
    pub(super) async fn warm_org_reader(&self, meter: &Meter) {
        match self.accounts.org_reader().await {
            Some(Ok(Access {
                assumed_role: false,
                ..
            }))
            | None => {}
            Some(_) => {
                meter.call("sts:AssumeRole", 1);
            }
        }
    }

    /// The SCP and RCP levels over `account` in organization `org`; reads start at `depth`.
    pub(super) async fn org_levels(
        &self,
        org: &str,
        account: &str,
        depth: u32,
        meter: &Meter,
    ) -> Result<OrgLevels, CollectError> {
        let Some(got) = self.accounts.org_reader().await else {
            return Ok(OrgLevels::NotConfigured);
        };
        let (reader, mut d) = match answer(got, account, "sts:AssumeRole")? {
            Ok(Access {
                reader,
                assumed_role,
            }) => {
                let d = if assumed_role {
                    meter.call("sts:AssumeRole", depth + 1)
                } else {
                    depth
                };
                (reader, d)
            }
            Err(e) => {
                meter.call("sts:AssumeRole", depth + 1);
                return Ok(OrgLevels::Gaps(vec![gap(
                    account,
                    "sts:AssumeRole",
                    None,
                    &organization_reader(e),
                )]));
            }
        };
        // From the account up: (target id, what is attached to it).
        let mut path: Vec<Target> = Vec::new();
        let mut current = OrgParent {
            id: account.to_owned(),
            is_root: false,
        };
        let mut reached_root = false;
        for _ in 0..MAX_LEVELS {
            let cache_key = keys::org_target(org, &current.id);
            let target = match self.cached::<Target>(&cache_key, meter) {
                Some(t) => t,
                None => {
                    let level = d + 1;
                    let parents = async {
                        if current.is_root {
                            return Ok(Vec::new());
                        }
                        meter.call("organizations:ListParents", level);
                        reader.parents(&current.id).await
                    };
                    meter.call("organizations:ListPoliciesForTarget", level);
                    meter.call("organizations:ListPoliciesForTarget", level);
                    let (parents, scp, rcp) = tokio::join!(
                        parents,
                        reader.policies_for_target(&current.id, OrgPolicyType::Scp),
                        reader.policies_for_target(&current.id, OrgPolicyType::Rcp),
                    );
                    let op = "organizations:ListPoliciesForTarget";
                    let (parents, scp, rcp) = (
                        answer(parents, account, "organizations:ListParents")?,
                        answer(scp, account, op)?,
                        answer(rcp, account, op)?,
                    );
                    let mut gaps = Vec::new();
                    for (op, e) in [
                        ("organizations:ListParents", parents.as_ref().err()),
                        (op, scp.as_ref().err()),
                        (op, rcp.as_ref().err()),
                    ] {
                        if let Some(e) = e {
                            let g = gap(
                                account,
                                op,
                                Some(&current.id),
                                &organization_reader(e.clone()),
                            );
                            if let Fragment::Gap(ce) = &g {
                                if gaps
                                    .iter()
                                    .any(|x| matches!(x, Fragment::Gap(y) if y == ce))
                                {
                                    continue;
                                }
                            }
                            gaps.push(g);
                        }
                    }
                    let (Ok(parents), Ok(scp), Ok(rcp)) = (parents, scp, rcp) else {
                        return Ok(OrgLevels::Gaps(gaps));
                    };
                    d = level;
                    let t = Target {
                        parent: parents.into_iter().next(),
                        scp,
                        rcp,
                    };
                    self.cache.put(cache_key, t.clone());
                    t
                }
            };
            let parent = target.parent.clone();
            let is_root = current.is_root;
            path.push(target);
            match parent {
                Some(p) if !is_root => current = p,
                _ => {
                    reached_root = is_root;
                    break;
                }
            }
        }
        if !reached_root {
            return Ok(OrgLevels::Gaps(vec![gap(
                account,
                "organizations:ListParents",
                Some(account),
                &ReadError::Service {
                    code: "IncompletePath".into(),
                    message: Some(format!(
                        "the walk from account {account} up did not reach the organization root within {MAX_LEVELS} levels"
                    )),
                },
            )]));
        }
        path.reverse();
        // Every policy id on the path, each described once.
        let ids: BTreeSet<&str> = path
            .iter()
            .flat_map(|t| t.scp.iter().chain(t.rcp.iter()))
            .map(String::as_str)
            .collect();
        let mut policies: BTreeMap<String, NamedPolicy> = BTreeMap::new();
        let mut missing = Vec::new();
        for id in ids {
            match self.cached::<NamedPolicy>(&keys::org_policy(org, id), meter) {
                Some(p) => {
                    policies.insert(id.to_owned(), p);
                }
                None => missing.push(id),
            }
        }
        let scp_ids: BTreeSet<&str> = path
            .iter()
            .flat_map(|t| t.scp.iter())
            .map(String::as_str)
            .collect();
        let described = join_all(missing.iter().map(|id| {
            meter.call("organizations:DescribePolicy", d + 1);
            let reader = &reader;
            async move { (*id, reader.describe_policy(id).await) }
        }))
        .await;
        let mut gaps = Vec::new();
        for (id, got) in described {
            let got = answer(got, account, "organizations:DescribePolicy")?;
            // An id on both lists cannot happen: a policy has one type.
            let parsed =
                got.and_then(|v| NamedPolicy::org_policy(scp_ids.contains(id), v).map_err(invalid));
            match parsed {
                Ok(p) => {
                    self.cache.put(keys::org_policy(org, id), p.clone());
                    policies.insert(id.to_owned(), p);
                }
                Err(e) => gaps.push(gap(
                    account,
                    "organizations:DescribePolicy",
                    Some(id),
                    &organization_reader(e),
                )),
            }
        }
        if !gaps.is_empty() {
            return Ok(OrgLevels::Gaps(gaps));
        }
        let levels = |pick: fn(&Target) -> &Vec<String>| -> Vec<Vec<NamedPolicy>> {
            let levels: Vec<Vec<NamedPolicy>> = path
                .iter()
                .map(|t| {
                    pick(t)
                        .iter()
                        .filter_map(|id| policies.get(id).cloned())
                        .collect()
                })
                .collect();
            // A level without a policy of the type means the type is not enabled in the
            // organization (disabling it detaches every policy of the type,
            // https://docs.aws.amazon.com/organizations/latest/userguide/disable-policy-type.html),
            // so none applies.
            if levels.iter().any(Vec::is_empty) {
                Vec::new()
            } else {
                levels
            }
        };
        Ok(OrgLevels::Read {
            scp: levels(|t| &t.scp),
            rcp: levels(|t| &t.rcp),
        })
    }
}

/// A refused Organizations read, saying where the reads were made.
fn organization_reader(e: ReadError) -> ReadError {
    match e {
        ReadError::Denied { code, message } => ReadError::Denied {
            code,
            message: Some(format!(
                "{}; SCPs and RCPs are readable only from the management account or a delegated administrator (docs/live.md, \"SCPs and RCPs\"); they were not evaluated",
                message.unwrap_or_else(|| "refused".into())
            )),
        },
        other => other,
    }
}

/// What the organization said of an SCP or RCP change's reach ([`Collector::org_scope`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgScopeRead {
    /// No reader for the organization is configured (`S3KA_ORG_ACCESS` unset).
    NotConfigured,
    /// The organization answered.
    Read {
        /// The policies' targets and the accounts under the OUs among the targets.
        read: OrgRead,
        /// List calls made (each of every page).
        lists: usize,
    },
    /// A read got no usable answer.
    Failed {
        /// The operation (`organizations:ListChildren`, ...).
        operation: &'static str,
        /// What it answered.
        error: ReadError,
    },
}

impl<A: Accounts> Collector<A> {
    /// Reads what `reach` needs of the organization, through the organization reader: the
    /// targets of the policies it lists (`ListTargetsForPolicy`), then the accounts under every
    /// OU among all targets, walking down through nested OUs (`ListChildren` of both child
    /// types, side by side, one level at a time).
    ///
    /// Walking down from the OU costs two lists per OU under it (20 children a page), whatever
    /// the size of the organization; walking up from each stored account (`ListParents` per
    /// account, then per OU) costs at least one call per stored account, which for an
    /// organization of 1,000 stored accounts and an OU of 10 is 1,000 calls against 2. The
    /// root needs no walk: it is above every account.
    /// ([ListChildren](https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListChildren.html),
    /// [ListTargetsForPolicy](https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListTargetsForPolicy.html)).
    pub async fn org_scope(&self, reach: &OrgReach) -> OrgScopeRead {
        let reader = match self.accounts.org_reader().await {
            None => return OrgScopeRead::NotConfigured,
            Some(Err(error)) => {
                return OrgScopeRead::Failed {
                    operation: "sts:AssumeRole",
                    error,
                }
            }
            Some(Ok(Access { reader, .. })) => reader,
        };
        let mut read = OrgRead::default();
        let mut lists = 0;
        let listed = join_all(reach.policies.iter().map(|p| reader.targets_for_policy(p))).await;
        for got in listed {
            lists += 1;
            match got {
                Ok(ids) => read
                    .policy_targets
                    .extend(ids.iter().filter_map(|id| OrgTarget::parse(id))),
                Err(error) => {
                    return OrgScopeRead::Failed {
                        operation: "organizations:ListTargetsForPolicy",
                        error,
                    }
                }
            }
        }
        let at_root = reach.has_root()
            || read
                .policy_targets
                .iter()
                .any(|t| matches!(t, OrgTarget::Root(_)));
        let mut frontier: BTreeSet<String> = if at_root {
            BTreeSet::new()
        } else {
            reach
                .targets
                .iter()
                .chain(read.policy_targets.iter())
                .filter_map(|t| match t {
                    OrgTarget::Ou(id) => Some(id.clone()),
                    _ => None,
                })
                .collect()
        };
        let mut seen: BTreeSet<String> = frontier.clone();
        // OUs nest at most five deep under the root (Organizations quotas); a deeper walk is
        // a loop the server made.
        for _ in 0..MAX_LEVELS {
            if frontier.is_empty() {
                break;
            }
            let got = join_all(frontier.iter().map(|ou| async {
                tokio::join!(
                    reader.children(ou, OrgChildType::Account),
                    reader.children(ou, OrgChildType::Ou),
                )
            }))
            .await;
            let mut next = BTreeSet::new();
            for (accounts, ous) in got {
                lists += 2;
                let (accounts, ous) = match (accounts, ous) {
                    (Ok(a), Ok(o)) => (a, o),
                    (Err(error), _) | (_, Err(error)) => {
                        return OrgScopeRead::Failed {
                            operation: "organizations:ListChildren",
                            error,
                        }
                    }
                };
                read.accounts_under.extend(accounts);
                next.extend(ous.into_iter().filter(|o| seen.insert(o.clone())));
            }
            frontier = next;
        }
        OrgScopeRead::Read { read, lists }
    }
}

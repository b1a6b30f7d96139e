//! The cache's key scheme, one place: how the collector names what it caches, and which of
//! those names a change touches.
//!
//! | key                                   | holds                                              |
//! |---------------------------------------|----------------------------------------------------|
//! | `org/{account}`                       | the account's organization                         |
//! | `orgtarget/{org}/{target}`            | a root, OU or account: its parent, SCP and RCP ids |
//! | `orgpolicy/{org}/{policy id}`         | an SCP or RCP (`DescribePolicy`)                   |
//! | `bucket/{account}/{bucket}`           | policy, encryption, ownership, public access block |
//! | `object/{account}/{bucket}/{key}?{v}` | the object's metadata (HeadObject)                 |
//! | `key/{key ARN}`                       | metadata, policy, grants, aliases of a key         |
//! | `alias/{account}/{region}/{ref}`      | DescribeKey of an alias or bare id (state included)|
//! | `iam/{account}/{role,user}/{name}`    | the principal's IAM, with its users' groups        |
//! | `attached/{account}`                  | attached managed policies and default versions     |
//! | `policy/{ARN}/{version}`              | a managed policy version (immutable)               |
//! | `canonical/{account}`                 | the account's canonical user id (immutable)        |
//!
//! A change (`auditor::event::ChangeEvent`) drops every entry whose state it may have
//! altered ([`touched_by`]); a policy version's document never changes once created (IAM
//! User Guide, "Versioning IAM policies"), so `policy/` entries are never dropped: a new
//! default version reaches the cache through `attached/` and `iam/`.

use auditor::event::{ChangeEvent, Touched};
use auditor::refs::kms_key_arn;

pub(crate) fn org(account: &str) -> String {
    format!("org/{account}")
}

pub(crate) fn org_target(org: &str, target: &str) -> String {
    format!("orgtarget/{org}/{target}")
}

pub(crate) fn org_policy(org: &str, policy: &str) -> String {
    format!("orgpolicy/{org}/{policy}")
}

pub(crate) fn bucket(account: &str, bucket: &str) -> String {
    format!("bucket/{account}/{bucket}")
}

pub(crate) fn object(account: &str, bucket: &str, key: &str, version: Option<&str>) -> String {
    format!("object/{account}/{bucket}/{key}?{}", version.unwrap_or(""))
}

pub(crate) fn key(arn: &str) -> String {
    format!("key/{arn}")
}

pub(crate) fn alias(account: &str, region: &str, reference: &str) -> String {
    format!("alias/{account}/{region}/{reference}")
}

pub(crate) fn iam(account: &str, kind: &str, name: &str) -> String {
    format!("iam/{account}/{kind}/{name}")
}

pub(crate) fn attached(account: &str) -> String {
    format!("attached/{account}")
}

pub(crate) fn canonical(account: &str) -> String {
    format!("canonical/{account}")
}

pub(crate) fn policy(arn: &str, version: &str) -> String {
    format!("policy/{arn}/{version}")
}

/// Whether the change may have altered what the entry `key` holds. Without the change's
/// account (a record with neither `recipientAccountId` nor `userIdentity.accountId`), the
/// entries of every account are candidates.
pub fn touched_by(change: &ChangeEvent, key: &str) -> bool {
    let account = change.account.as_deref();
    let region = change.region.as_deref();
    let same = |a: &str| account.is_none_or(|c| c == a);
    let (kind, rest) = key.split_once('/').unwrap_or((key, ""));
    let is_iam = change.touches.iter().any(|t| {
        matches!(
            t,
            Touched::Role { .. }
                | Touched::User { .. }
                | Touched::Group { .. }
                | Touched::ManagedPolicy { .. }
        )
    });
    let is_kms = change
        .touches
        .iter()
        .any(|t| matches!(t, Touched::Key { .. } | Touched::Aliases));
    match kind {
        // Organization policies apply across accounts the cache does not map to the
        // organization: every account's entry goes.
        "org" | "orgtarget" => change
            .touches
            .iter()
            .any(|t| matches!(t, Touched::Organization { .. })),
        // A policy's content changes only through UpdatePolicy (or goes with DeletePolicy),
        // both naming it; attaching or detaching it changes the `orgtarget/` entries.
        "orgpolicy" => {
            let id = rest.split_once('/').map_or("", |(_, p)| p);
            change.touches.iter().any(
                |t| matches!(t, Touched::Organization { policy_id, .. } if policy_id == id || policy_id.is_empty()),
            )
        }
        "bucket" => {
            // Bucket names are unique within a partition: the owner need not be known.
            let name = rest.split_once('/').map_or("", |(_, b)| b);
            change
                .touches
                .iter()
                .any(|t| matches!(t, Touched::Bucket { name: n } if n == name))
        }
        "key" => {
            let Some((key_region, key_account, _)) = kms_key_arn(rest) else {
                return is_kms;
            };
            change.touches.iter().any(|t| match t {
                Touched::Key { arn: Some(arn), .. } => arn == rest,
                // A key named only by alias: any key of that account and Region.
                Touched::Key { arn: None, .. } | Touched::Aliases => {
                    same(key_account) && region.is_none_or(|r| r == key_region)
                }
                _ => false,
            })
        }
        // DescribeKey answers by alias hold the key's state and target.
        "alias" => {
            let mut parts = rest.splitn(3, '/');
            let (a, r) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            is_kms && same(a) && region.is_none_or(|x| x == r)
        }
        "iam" => {
            let mut parts = rest.splitn(3, '/');
            let (a, holder, name) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            same(a)
                && change.touches.iter().any(|t| match t {
                    Touched::Role { name: n } => holder == "role" && n == name,
                    Touched::User { name: n } => holder == "user" && n == name,
                    // A user's entry carries its groups' policies.
                    Touched::Group { name: n } => {
                        holder == "user" || (holder == "group" && n == name)
                    }
                    // Any principal may have the policy attached.
                    Touched::ManagedPolicy { .. } => true,
                    _ => false,
                })
        }
        // Which policies are attached, and their default versions.
        "attached" => is_iam && same(rest),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use auditor::event::{parse_events, EventOutcome};
    use serde_json::{json, Value};

    use super::*;

    const KEY: &str = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn change(source: &str, name: &str, params: Value) -> ChangeEvent {
        let record = json!({
            "eventSource": format!("{source}.amazonaws.com"), "eventName": name,
            "awsRegion": "us-west-2", "recipientAccountId": "111122223333",
            "userIdentity": {"type": "Root", "accountId": "111122223333"},
            "requestParameters": params,
        });
        match parse_events(&record).unwrap().pop() {
            Some(EventOutcome::Change(c)) => *c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_change_touches_exactly_the_entries_it_may_have_altered() {
        let entries = [
            org("111122223333"),
            bucket("111122223333", "reports"),
            bucket("111122223333", "reports-logs"),
            object("111122223333", "reports", "q1.csv", None),
            key(KEY),
            key("arn:aws:kms:us-west-2:111122223333:key/other"),
            key("arn:aws:kms:eu-west-1:111122223333:key/other"),
            alias("111122223333", "us-west-2", "alias/reports"),
            iam("111122223333", "role", "reader"),
            iam("111122223333", "role", "writer"),
            iam("111122223333", "user", "ana"),
            iam("444455556666", "role", "reader"),
            attached("111122223333"),
            policy("arn:aws:iam::111122223333:policy/p", "v1"),
            org_target("o-a1b2c3d4e5", "ou-ab12-cdef3456"),
            org_policy("o-a1b2c3d4e5", "p-1"),
            org_policy("o-a1b2c3d4e5", "p-2"),
        ];
        let hit = |c: &ChangeEvent| -> Vec<&str> {
            entries
                .iter()
                .filter(|k| touched_by(c, k))
                .map(String::as_str)
                .collect()
        };
        assert_eq!(
            hit(&change(
                "s3",
                "PutBucketPolicy",
                json!({"bucketName": "reports"})
            )),
            ["bucket/111122223333/reports"]
        );
        assert_eq!(
            hit(&change("kms", "PutKeyPolicy", json!({"keyId": KEY}))),
            [
                key(KEY),
                alias("111122223333", "us-west-2", "alias/reports")
            ]
        );
        assert_eq!(
            hit(&change(
                "kms",
                "DeleteAlias",
                json!({"aliasName": "alias/reports"})
            )),
            [
                key(KEY),
                key("arn:aws:kms:us-west-2:111122223333:key/other"),
                alias("111122223333", "us-west-2", "alias/reports")
            ]
        );
        assert_eq!(
            hit(&change(
                "iam",
                "PutRolePolicy",
                json!({"roleName": "reader"})
            )),
            ["iam/111122223333/role/reader", "attached/111122223333"]
        );
        assert_eq!(
            hit(&change("iam", "PutGroupPolicy", json!({"groupName": "g"}))),
            ["iam/111122223333/user/ana", "attached/111122223333"]
        );
        assert_eq!(
            hit(&change(
                "iam",
                "SetDefaultPolicyVersion",
                json!({"policyArn": "arn:aws:iam::111122223333:policy/p"})
            )),
            [
                "iam/111122223333/role/reader",
                "iam/111122223333/role/writer",
                "iam/111122223333/user/ana",
                "attached/111122223333"
            ]
        );
        assert_eq!(
            hit(&change(
                "organizations",
                "UpdatePolicy",
                json!({"policyId": "p-1"})
            )),
            [
                "org/111122223333",
                "orgtarget/o-a1b2c3d4e5/ou-ab12-cdef3456",
                "orgpolicy/o-a1b2c3d4e5/p-1"
            ]
        );
        // Attaching p-2 changes which policies apply (the `orgtarget/` entries); p-2's own
        // entry goes too, which costs one DescribePolicy.
        assert_eq!(
            hit(&change(
                "organizations",
                "AttachPolicy",
                json!({"policyId": "p-2", "targetId": "ou-ab12-cdef3456"})
            )),
            [
                "org/111122223333",
                "orgtarget/o-a1b2c3d4e5/ou-ab12-cdef3456",
                "orgpolicy/o-a1b2c3d4e5/p-2"
            ]
        );
    }
}

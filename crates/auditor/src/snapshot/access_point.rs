//! S3 access points of an account (`accounts.<id>.access_points.<name>`): the output of
//! `aws s3control get-access-point` with the `Policy` of `get-access-point-policy` beside it,
//! so both reads can be pasted into one object (docs/snapshot-format.md, "Access points").

use iam_eval::PolicyKind;
use serde_json::Value;

use super::policy::{parse_policy, NamedPolicy};
use super::s3::{parse_public_access_block, PublicAccessBlock};
use crate::reader::{Node, PathError};
use crate::refs::{AccessPointRef, Partition};

/// Where requests through an access point may come from (`NetworkOrigin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkOrigin {
    /// `Internet`: any network, subject to the policies.
    Internet,
    /// `VPC`: only requests from the access point's VPC (`VpcConfiguration.VpcId`); S3
    /// rejects every other request made through it.
    Vpc,
}

impl NetworkOrigin {
    /// The origin as AWS spells it, also the value of `s3:AccessPointNetworkOrigin`.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkOrigin::Internet => "Internet",
            NetworkOrigin::Vpc => "VPC",
        }
    }
}

/// One access point, as `get-access-point` (+ `get-access-point-policy`) shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessPoint {
    /// `Name`: the key it is listed under.
    pub name: String,
    /// `Bucket`: the bucket it serves.
    pub bucket: String,
    /// `BucketAccountId`: the bucket's owner, when another account owns it (a cross-account
    /// access point); `None` when the output does not say.
    pub bucket_account_id: Option<String>,
    /// `NetworkOrigin`.
    pub network_origin: NetworkOrigin,
    /// `VpcConfiguration.VpcId`, for a VPC-origin access point.
    pub vpc_id: Option<String>,
    /// `PublicAccessBlockConfiguration`: the access point's own Block Public Access.
    pub public_access_block: Option<PublicAccessBlock>,
    /// `Alias` (`<name>-<suffix>-s3alias`).
    pub alias: Option<String>,
    /// `AccessPointArn`, which also gives the Region.
    pub arn: Option<String>,
    /// `Policy` (`get-access-point-policy`); `None` when the access point has none.
    pub policy: Option<NamedPolicy>,
}

/// The keys the reader looks at; AWS's other output fields (`CreationDate`, `Endpoints`,
/// `BucketAccountId` aside) are ignored like every payload field the model does not keep.
const NAME: &str = "Name";

impl AccessPoint {
    pub(super) fn parse(
        node: &Node<'_>,
        name: &str,
        account: &str,
    ) -> Result<AccessPoint, PathError> {
        node.obj()?;
        if let Some(given) = node.opt_str(NAME)? {
            if given != name {
                return Err(node.loc.key(NAME).err(format!(
                    "`{given}` differs from the key `{name}` the access point is listed under"
                )));
            }
        }
        let network_origin = match node.opt_str("NetworkOrigin")?.as_deref() {
            None | Some("Internet") => NetworkOrigin::Internet,
            Some("VPC") => NetworkOrigin::Vpc,
            Some(other) => {
                return Err(node
                    .loc
                    .key("NetworkOrigin")
                    .err(format!("`{other}` is neither `Internet` nor `VPC`")))
            }
        };
        let vpc_id = match node.get("VpcConfiguration")? {
            Some(v) => v.opt_str("VpcId")?,
            None => None,
        };
        if network_origin == NetworkOrigin::Vpc && vpc_id.is_none() {
            return Err(node.loc.key("VpcConfiguration").err(
                "a VPC-origin access point needs `VpcConfiguration.VpcId`: without it no request could be checked against its VPC",
            ));
        }
        let bucket_account_id = node.opt_str("BucketAccountId")?;
        if let Some(id) = &bucket_account_id {
            if !crate::refs::is_account_id(id) {
                return Err(node
                    .loc
                    .key("BucketAccountId")
                    .err(format!("`{id}` is not an account id (12 digits)")));
            }
        }
        let arn = node.opt_str("AccessPointArn")?;
        if let Some(text) = &arn {
            let parsed = AccessPointRef::parse(text)
                .filter(|(r, key)| key.is_none() && r.name == name && r.account == account);
            if parsed.is_none() {
                return Err(node.loc.key("AccessPointArn").err(format!(
                    "`{text}` is not the ARN of access point `{name}` of account {account}"
                )));
            }
        }
        let policy = match node.get("Policy")? {
            Some(p) if !p.v.is_null() => Some(parse_policy(
                &p,
                PolicyKind::Resource,
                access_point_policy_name(name),
                None,
            )?),
            _ => None,
        };
        Ok(AccessPoint {
            name: name.to_owned(),
            bucket: node.req_str("Bucket")?,
            bucket_account_id,
            network_origin,
            vpc_id,
            public_access_block: node
                .get("PublicAccessBlockConfiguration")?
                .map(|n| parse_public_access_block(&n))
                .transpose()?,
            alias: node.opt_str("Alias")?,
            arn,
            policy,
        })
    }

    /// The access point as a reference, in `partition` when its ARN is not recorded
    /// (`region` then stands for the bucket's Region, where an access point must be).
    pub fn reference(&self, account: &str, partition: Partition, region: &str) -> AccessPointRef {
        self.arn
            .as_deref()
            .and_then(AccessPointRef::parse)
            .map(|(r, _)| r)
            .unwrap_or_else(|| AccessPointRef {
                partition,
                region: region.to_owned(),
                account: account.to_owned(),
                name: self.name.clone(),
            })
    }

    /// The bucket's owner: `BucketAccountId`, else the access point's own account.
    pub fn bucket_owner<'a>(&'a self, account: &'a str) -> &'a str {
        self.bucket_account_id.as_deref().unwrap_or(account)
    }

    /// The `get-access-point` (+ `Policy`) object the writer emits.
    pub(super) fn to_value(&self) -> Value {
        let mut v = serde_json::Map::new();
        v.insert(NAME.into(), Value::String(self.name.clone()));
        v.insert("Bucket".into(), Value::String(self.bucket.clone()));
        if let Some(id) = &self.bucket_account_id {
            v.insert("BucketAccountId".into(), Value::String(id.clone()));
        }
        v.insert(
            "NetworkOrigin".into(),
            Value::String(self.network_origin.as_str().to_owned()),
        );
        if let Some(vpc) = &self.vpc_id {
            v.insert(
                "VpcConfiguration".into(),
                serde_json::json!({ "VpcId": vpc }),
            );
        }
        if let Some(p) = &self.public_access_block {
            v.insert(
                "PublicAccessBlockConfiguration".into(),
                serde_json::json!({
                    "BlockPublicAcls": p.block_public_acls,
                    "IgnorePublicAcls": p.ignore_public_acls,
                    "BlockPublicPolicy": p.block_public_policy,
                    "RestrictPublicBuckets": p.restrict_public_buckets,
                }),
            );
        }
        if let Some(alias) = &self.alias {
            v.insert("Alias".into(), Value::String(alias.clone()));
        }
        if let Some(arn) = &self.arn {
            v.insert("AccessPointArn".into(), Value::String(arn.clone()));
        }
        if let Some(p) = &self.policy {
            v.insert("Policy".into(), p.source.clone());
        }
        Value::Object(v)
    }
}

/// The human name of an access point policy.
pub(crate) fn access_point_policy_name(name: &str) -> String {
    format!("access point policy of {name}")
}

impl NamedPolicy {
    /// An access point's policy (`get-access-point-policy`), named as the snapshot reader
    /// names it.
    pub fn access_point_policy(
        name: &str,
        source: Value,
    ) -> Result<NamedPolicy, super::SnapshotError> {
        NamedPolicy::new(access_point_policy_name(name), source, PolicyKind::Resource)
    }
}

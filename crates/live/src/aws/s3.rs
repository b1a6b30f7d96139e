//! S3 reads: bucket configuration and object metadata, always with `ExpectedBucketOwner`, so
//! a bucket is never attributed to the wrong account.

use auditor::snapshot::{AclGrant, AclPermission, Grantee};
use aws_sdk_s3::types::{BucketLocationConstraint, Grant, Owner};

use super::{none_if, read_error, AwsReader};
use crate::ports::{
    Acl, BucketReads, EncryptionRule, ObjectHead, PublicAccessFlags, Read, ReadError,
};

impl BucketReads for AwsReader {
    async fn bucket_region(&self, region: &str, bucket: &str) -> Read<String> {
        let out = self
            .s3(region)
            .get_bucket_location()
            .bucket(bucket)
            .expected_bucket_owner(&self.account)
            .send()
            .await
            .map_err(read_error)?;
        // The empty constraint is us-east-1, and `EU` the legacy name of eu-west-1.
        Ok(match out.location_constraint() {
            None => "us-east-1".to_owned(),
            Some(BucketLocationConstraint::Eu) => "eu-west-1".to_owned(),
            Some(c) if c.as_str().is_empty() => "us-east-1".to_owned(),
            Some(c) => c.as_str().to_owned(),
        })
    }

    async fn bucket_policy(&self, region: &str, bucket: &str) -> Read<Option<String>> {
        let got = self
            .s3(region)
            .get_bucket_policy()
            .bucket(bucket)
            .expected_bucket_owner(&self.account)
            .send()
            .await
            .map_err(read_error)
            .map(|o| o.policy().map(str::to_owned));
        Ok(none_if(got, &["NoSuchBucketPolicy"])?.flatten())
    }

    async fn bucket_encryption(&self, region: &str, bucket: &str) -> Read<Option<EncryptionRule>> {
        let got = self
            .s3(region)
            .get_bucket_encryption()
            .bucket(bucket)
            .expected_bucket_owner(&self.account)
            .send()
            .await
            .map_err(read_error);
        let Some(out) = none_if(got, &["ServerSideEncryptionConfigurationNotFoundError"])? else {
            return Ok(None);
        };
        let rule = out
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first());
        Ok(rule.and_then(|r| {
            let d = r.apply_server_side_encryption_by_default()?;
            Some(EncryptionRule {
                algorithm: d.sse_algorithm().as_str().to_owned(),
                kms_key_id: d.kms_master_key_id().map(str::to_owned),
                bucket_key_enabled: r.bucket_key_enabled().unwrap_or(false),
            })
        }))
    }

    async fn ownership_controls(&self, region: &str, bucket: &str) -> Read<Option<String>> {
        let got = self
            .s3(region)
            .get_bucket_ownership_controls()
            .bucket(bucket)
            .expected_bucket_owner(&self.account)
            .send()
            .await
            .map_err(read_error);
        let Some(out) = none_if(got, &["OwnershipControlsNotFoundError"])? else {
            return Ok(None);
        };
        Ok(out
            .ownership_controls()
            .and_then(|c| c.rules().first())
            .map(|r| r.object_ownership().as_str().to_owned()))
    }

    async fn public_access_block(
        &self,
        region: &str,
        bucket: &str,
    ) -> Read<Option<PublicAccessFlags>> {
        let got = self
            .s3(region)
            .get_public_access_block()
            .bucket(bucket)
            .expected_bucket_owner(&self.account)
            .send()
            .await
            .map_err(read_error);
        let Some(out) = none_if(got, &["NoSuchPublicAccessBlockConfiguration"])? else {
            return Ok(None);
        };
        Ok(out
            .public_access_block_configuration()
            .map(|c| PublicAccessFlags {
                block_public_acls: c.block_public_acls().unwrap_or(false),
                ignore_public_acls: c.ignore_public_acls().unwrap_or(false),
                block_public_policy: c.block_public_policy().unwrap_or(false),
                restrict_public_buckets: c.restrict_public_buckets().unwrap_or(false),
            }))
    }

    async fn head_object(
        &self,
        region: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Read<Option<ObjectHead>> {
        let got = self
            .s3(region)
            .head_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .expected_bucket_owner(&self.account)
            .send()
            .await
            .map_err(read_error)
            .map(|o| ObjectHead {
                sse: o.server_side_encryption().map(|s| s.as_str().to_owned()),
                kms_key_id: o.ssekms_key_id().map(str::to_owned),
                bucket_key_enabled: o.bucket_key_enabled().unwrap_or(false),
                version_id: o.version_id().map(str::to_owned),
            });
        none_if(got, &["NotFound", "NoSuchKey"])
    }

    async fn canonical_id(&self) -> Read<String> {
        let region = self
            .clients
            .config
            .region()
            .map(|r| r.as_ref().to_owned())
            .unwrap_or_else(|| "us-east-1".to_owned());
        let out = self
            .s3(&region)
            .list_buckets()
            .max_buckets(1)
            .send()
            .await
            .map_err(read_error)?;
        out.owner()
            .and_then(Owner::id)
            .map(str::to_owned)
            .ok_or_else(|| ReadError::Service {
                code: "NoOwner".into(),
                message: Some("ListBuckets returned no Owner.ID".into()),
            })
    }

    async fn bucket_acl(&self, region: &str, bucket: &str) -> Read<Acl> {
        let out = self
            .s3(region)
            .get_bucket_acl()
            .bucket(bucket)
            .expected_bucket_owner(&self.account)
            .send()
            .await
            .map_err(read_error)?;
        acl(out.owner(), out.grants())
    }

    async fn object_acl(
        &self,
        region: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Read<Option<Acl>> {
        let got = self
            .s3(region)
            .get_object_acl()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .expected_bucket_owner(&self.account)
            .send()
            .await
            .map_err(read_error)
            .and_then(|o| acl(o.owner(), o.grants()));
        none_if(got, &["NotFound", "NoSuchKey", "NoSuchVersion"])
    }
}

/// An ACL in the snapshot's terms; a grantee type or permission this version does not know is
/// a value the snapshot cannot hold (the collector records it as a gap).
fn acl(owner: Option<&Owner>, grants: &[Grant]) -> Read<Acl> {
    let unknown = |what: String| ReadError::Service {
        code: "InvalidDocument".into(),
        message: Some(format!(
            "AWS returned a value the snapshot cannot hold: {what}"
        )),
    };
    let mut out = Vec::new();
    for g in grants {
        let (Some(grantee), Some(permission)) = (g.grantee(), g.permission()) else {
            continue;
        };
        let permission = match permission.as_str() {
            "FULL_CONTROL" => AclPermission::FullControl,
            "READ" => AclPermission::Read,
            "WRITE" => AclPermission::Write,
            "READ_ACP" => AclPermission::ReadAcp,
            "WRITE_ACP" => AclPermission::WriteAcp,
            other => return Err(unknown(format!("ACL permission `{other}`"))),
        };
        let text = |v: Option<&str>| v.unwrap_or_default().to_owned();
        let grantee = match grantee.r#type().as_str() {
            "CanonicalUser" => Grantee::CanonicalUser {
                id: text(grantee.id()),
            },
            "Group" => Grantee::Group {
                uri: text(grantee.uri()),
            },
            "AmazonCustomerByEmail" => Grantee::Email {
                address: text(grantee.email_address()),
            },
            other => return Err(unknown(format!("ACL grantee type `{other}`"))),
        };
        out.push(AclGrant {
            grantee,
            permission,
        });
    }
    Ok(Acl {
        owner_id: owner.and_then(Owner::id).map(str::to_owned),
        grants: out,
    })
}

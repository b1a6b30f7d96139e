//! S3 Control reads: the access points the account owns (`GetAccessPoint`,
//! `GetAccessPointPolicy`), addressed with the account's own id as S3 Control requires.

use aws_sdk_s3control::config::endpoint::{Endpoint, EndpointFuture, Params, ResolveEndpoint};

use super::{none_if, read_error, AwsReader};
use crate::ports::{AccessPointInfo, AccessPointReads, PublicAccessFlags, Read};

impl AccessPointReads for AwsReader {
    async fn access_point(&self, region: &str, name: &str) -> Read<Option<AccessPointInfo>> {
        let got = self
            .s3control(region)
            .get_access_point()
            .account_id(&self.account)
            .name(name)
            .send()
            .await
            .map_err(read_error);
        let Some(out) = none_if(got, &["NoSuchAccessPoint"])? else {
            return Ok(None);
        };
        Ok(Some(AccessPointInfo {
            bucket: out.bucket().unwrap_or_default().to_owned(),
            bucket_account_id: out.bucket_account_id().map(str::to_owned),
            network_origin: out
                .network_origin()
                .map_or_else(|| "Internet".to_owned(), |o| o.as_str().to_owned()),
            vpc_id: out.vpc_configuration().map(|v| v.vpc_id().to_owned()),
            public_access_block: out.public_access_block_configuration().map(|p| {
                PublicAccessFlags {
                    block_public_acls: p.block_public_acls().unwrap_or(false),
                    ignore_public_acls: p.ignore_public_acls().unwrap_or(false),
                    block_public_policy: p.block_public_policy().unwrap_or(false),
                    restrict_public_buckets: p.restrict_public_buckets().unwrap_or(false),
                }
            }),
            alias: out.alias().map(str::to_owned),
            arn: out.access_point_arn().map(str::to_owned),
        }))
    }

    async fn access_point_policy(&self, region: &str, name: &str) -> Read<Option<String>> {
        let got = self
            .s3control(region)
            .get_access_point_policy()
            .account_id(&self.account)
            .name(name)
            .send()
            .await
            .map_err(read_error)
            .map(|o| o.policy().map(str::to_owned));
        Ok(none_if(got, &["NoSuchAccessPointPolicy"])?.flatten())
    }
}

/// The configured endpoint as it is, for an AWS-compatible test server (see
/// `AwsReader::s3control`).
#[derive(Debug)]
pub(super) struct PlainEndpoint(pub(super) String);

impl ResolveEndpoint for PlainEndpoint {
    fn resolve_endpoint<'a>(&'a self, _: &'a Params) -> EndpointFuture<'a> {
        EndpointFuture::ready(Ok(Endpoint::builder().url(self.0.clone()).build()))
    }
}

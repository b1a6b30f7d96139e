//! EC2 reads: the VPC endpoint a request came through, with its policy. The SDK call is
//! built only with the `vpc-endpoints` feature; without it the read answers `NotCollected`,
//! which the collector records as a gap (the endpoint is then never assumed to allow).

#[cfg(feature = "vpc-endpoints")]
use serde_json::Map;
use serde_json::Value;

use super::AwsReader;
#[cfg(feature = "vpc-endpoints")]
use super::{none_if, read_error};
#[cfg(not(feature = "vpc-endpoints"))]
use crate::ports::ReadError;
use crate::ports::{NetworkReads, Read};

#[cfg(not(feature = "vpc-endpoints"))]
impl NetworkReads for AwsReader {
    async fn vpc_endpoint(&self, _region: &str, id: &str) -> Read<Option<Value>> {
        Err(ReadError::Service {
            code: "NotCollected".into(),
            message: Some(format!(
                "VPC endpoint {id} was not read: this build of the auditor lacks the `vpc-endpoints` feature (ec2:DescribeVpcEndpoints)"
            )),
        })
    }
}

#[cfg(feature = "vpc-endpoints")]
impl NetworkReads for AwsReader {
    async fn vpc_endpoint(&self, region: &str, id: &str) -> Read<Option<Value>> {
        let got = self
            .ec2(region)
            .describe_vpc_endpoints()
            .vpc_endpoint_ids(id)
            .send()
            .await
            .map_err(read_error);
        // EC2 answers an id the account does not have with this error rather than an empty
        // list (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html).
        let Some(out) = none_if(got, &["InvalidVpcEndpointId.NotFound"])? else {
            return Ok(None);
        };
        let Some(e) = out
            .vpc_endpoints()
            .iter()
            .find(|e| e.vpc_endpoint_id() == Some(id))
        else {
            return Ok(None);
        };
        // The entry in the shape `aws ec2 describe-vpc-endpoints` prints it, as far as the
        // snapshot keeps it (docs/snapshot-format.md, `vpc_endpoints`).
        let mut v = Map::new();
        let mut put = |k: &str, val: Option<&str>| {
            if let Some(val) = val {
                v.insert(k.to_owned(), Value::String(val.to_owned()));
            }
        };
        put("VpcEndpointId", e.vpc_endpoint_id());
        put("VpcId", e.vpc_id());
        put("OwnerId", e.owner_id());
        put("ServiceName", e.service_name());
        put("VpcEndpointType", e.vpc_endpoint_type().map(|t| t.as_str()));
        put("PolicyDocument", e.policy_document());
        Ok(Some(Value::Object(v)))
    }
}

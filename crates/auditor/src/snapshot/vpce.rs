//! VPC endpoints of an account, as `aws ec2 describe-vpc-endpoints` prints them: the policy of
//! the endpoint a request travelled through filters that request
//! (<https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html>).
//!
//! The account key `vpc_endpoints` holds the command's output (`{"VpcEndpoints": [...]}`) or
//! its list. Its presence means "the endpoints of this account were read": an endpoint a
//! record names that is not listed is then a gap the diagnosis states, never an endpoint
//! without a policy.

use serde_json::{json, Map, Value};

use super::policy::{self, NamedPolicy};
use crate::limits::PolicyLimit;
use crate::reader::{Node, PathError};

/// One VPC endpoint (an entry of `describe-vpc-endpoints` → `VpcEndpoints`). Equality leaves
/// `pointer` out, as [`NamedPolicy`]'s does: a bare list and the command's output read back
/// as the same endpoints.
#[derive(Debug, Clone)]
pub struct VpcEndpoint {
    /// `VpcEndpointId` (`vpce-…`), what a CloudTrail record's `vpcEndpointId` names.
    pub id: String,
    /// `VpcId`: the value of `aws:SourceVpc` for requests through the endpoint.
    pub vpc_id: Option<String>,
    /// `OwnerId`: the account that owns the endpoint, and so its policy.
    pub owner_id: Option<String>,
    /// `ServiceName` (`com.amazonaws.us-west-2.s3`).
    pub service_name: Option<String>,
    /// `VpcEndpointType`: `Gateway`, `Interface`, `GatewayLoadBalancer`, ...
    pub endpoint_type: Option<String>,
    /// `PolicyDocument` (a JSON string in the API's output). `None`: no policy, which AWS
    /// treats as full access.
    pub policy: Option<NamedPolicy>,
    /// RFC 6901 pointer of the entry in the snapshot document, so a fix can set its policy.
    pub pointer: String,
}

impl PartialEq for VpcEndpoint {
    fn eq(&self, other: &VpcEndpoint) -> bool {
        self.id == other.id
            && self.vpc_id == other.vpc_id
            && self.owner_id == other.owner_id
            && self.service_name == other.service_name
            && self.endpoint_type == other.endpoint_type
            && self.policy == other.policy
    }
}

/// What a person calls an endpoint's policy.
pub(crate) fn policy_name(id: &str) -> String {
    format!("VPC endpoint policy of {id}")
}

impl VpcEndpoint {
    /// Parses the account's `vpc_endpoints` value: `describe-vpc-endpoints` output or its
    /// `VpcEndpoints` list.
    pub(super) fn parse_all(node: &Node<'_>) -> Result<Vec<VpcEndpoint>, PathError> {
        let list = match node.v {
            Value::Array(_) => node.clone(),
            _ => {
                node.only_keys(&["VpcEndpoints", "NextToken"])?;
                node.req("VpcEndpoints")?
            }
        };
        let mut out: Vec<VpcEndpoint> = Vec::new();
        for item in list.arr()? {
            let e = VpcEndpoint::parse(&item)?;
            if out.iter().any(|x| x.id == e.id) {
                return Err(item.err(format!("VPC endpoint `{}` is listed twice", e.id)));
            }
            out.push(e);
        }
        Ok(out)
    }

    /// One entry of `describe-vpc-endpoints` read outside a snapshot document (a collector's
    /// read); its pointer is empty until the snapshot is written and read back.
    pub fn from_value(v: &Value) -> Result<VpcEndpoint, super::SnapshotError> {
        let mut e = VpcEndpoint::parse(&Node::root(v)).map_err(super::SnapshotError::from)?;
        e.pointer = String::new();
        if let Some(p) = e.policy.as_mut() {
            p.pointer = String::new();
        }
        Ok(e)
    }

    fn parse(node: &Node<'_>) -> Result<VpcEndpoint, PathError> {
        let id = node.req_str("VpcEndpointId")?;
        let policy = node
            .get("PolicyDocument")?
            .map(|p| {
                policy::parse_policy(
                    &p,
                    iam_eval::PolicyKind::Resource,
                    policy_name(&id),
                    Some(PolicyLimit::VpcEndpointPolicy),
                )
            })
            .transpose()?;
        Ok(VpcEndpoint {
            vpc_id: node.opt_str("VpcId")?,
            owner_id: node.opt_str("OwnerId")?,
            service_name: node.opt_str("ServiceName")?,
            endpoint_type: node.opt_str("VpcEndpointType")?,
            policy,
            pointer: node.loc.pointer(),
            id,
        })
    }

    /// The entry as `describe-vpc-endpoints` prints it (the writer's half of the format).
    pub(super) fn to_value(&self) -> Value {
        let mut v = Map::new();
        v.insert("VpcEndpointId".into(), json!(self.id));
        let fields = [
            ("VpcId", &self.vpc_id),
            ("OwnerId", &self.owner_id),
            ("ServiceName", &self.service_name),
            ("VpcEndpointType", &self.endpoint_type),
        ];
        for (k, val) in fields {
            if let Some(s) = val {
                v.insert(k.into(), json!(s));
            }
        }
        if let Some(p) = &self.policy {
            v.insert("PolicyDocument".into(), p.source.clone());
        }
        Value::Object(v)
    }

    /// A new policy for the endpoint (EC2 `ModifyVpcEndpoint --policy-document`), held to
    /// the endpoint-policy limit.
    pub fn set_policy(&mut self, document: Value) -> Result<(), super::SnapshotError> {
        let mut np = NamedPolicy::new(
            policy_name(&self.id),
            document,
            iam_eval::PolicyKind::Resource,
        )?;
        if let Err(e) = PolicyLimit::VpcEndpointPolicy.check(&np.document) {
            return Err(super::SnapshotError {
                path: "$".into(),
                message: format!("{} is {e}", np.name),
            });
        }
        np.pointer = self.policy_pointer();
        self.policy = Some(np);
        Ok(())
    }

    /// Where the endpoint's `PolicyDocument` sits in the snapshot document.
    pub fn policy_pointer(&self) -> String {
        format!("{}/PolicyDocument", self.pointer)
    }
}

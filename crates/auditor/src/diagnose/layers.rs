//! The table from an engine layer that blocks a hop to the finding code, the account that
//! must act and the rank: one place, so adding a layer or a code touches one match.

use iam_eval::Layer;

use super::findings::Code;

/// The order AWS meets the layers within one hop: RCPs and SCPs, the VPC endpoint policy,
/// then the resource policy, identity policies, the permissions boundary and the session
/// policy.
pub(super) fn layer_rank(layer: Layer) -> u32 {
    match layer {
        Layer::Rcp => 0,
        Layer::Scp => 1,
        Layer::VpcEndpoint => 2,
        Layer::Resource => 3,
        Layer::Identity => 4,
        Layer::PermissionsBoundary => 5,
        Layer::Session => 6,
    }
}

/// Which hop a layer blocked: the S3 hop (the bucket policy is the resource policy) or a
/// KMS hop (the key policy is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HopKind {
    /// `s3:*` on an object.
    S3,
    /// `kms:*` on a key.
    Kms,
    /// `s3:*` on an object through an access point, against the access point policy (the
    /// resource policy of this evaluation).
    AccessPoint,
    /// `s3:*` on an object through an access point, against the bucket policy: a missing
    /// allow means the bucket does not delegate to the access point.
    BucketViaAccessPoint,
}

/// The code for a layer that blocks a hop, explicitly (a Deny) or for want of an Allow.
pub(super) fn code_for(layer: Layer, explicit: bool, hop: HopKind) -> Code {
    match (layer, explicit, hop) {
        (Layer::Identity, true, _) => Code::IdentityPolicyExplicitDeny,
        (Layer::Identity, false, _) => Code::IdentityPolicyNoAllow,
        (Layer::PermissionsBoundary, true, _) => Code::PermissionsBoundaryExplicitDeny,
        (Layer::PermissionsBoundary, false, _) => Code::PermissionsBoundaryNoAllow,
        (Layer::Session, true, _) => Code::SessionPolicyExplicitDeny,
        (Layer::Session, false, _) => Code::SessionPolicyNoAllow,
        (Layer::Scp, true, _) => Code::ScpExplicitDeny,
        (Layer::Scp, false, _) => Code::ScpNoAllow,
        // RCPFullAWSAccess is always attached: only denies can block.
        (Layer::Rcp, _, _) => Code::RcpExplicitDeny,
        (Layer::VpcEndpoint, true, _) => Code::VpcEndpointPolicyExplicitDeny,
        (Layer::VpcEndpoint, false, _) => Code::VpcEndpointPolicyNoAllow,
        (Layer::Resource, true, HopKind::S3 | HopKind::BucketViaAccessPoint) => {
            Code::BucketPolicyExplicitDeny
        }
        (Layer::Resource, false, HopKind::S3) => Code::BucketPolicyNoAllow,
        (Layer::Resource, false, HopKind::BucketViaAccessPoint) => {
            Code::BucketPolicyNoAccessPointDelegation
        }
        (Layer::Resource, true, HopKind::AccessPoint) => Code::AccessPointPolicyExplicitDeny,
        (Layer::Resource, false, HopKind::AccessPoint) => Code::AccessPointPolicyNoAllow,
        (Layer::Resource, true, HopKind::Kms) => Code::KeyPolicyExplicitDeny,
        (Layer::Resource, false, HopKind::Kms) => Code::KeyPolicyNoAllow,
    }
}

/// Whose account must change a layer's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Actor {
    /// The caller's account: identity policies, boundary, session policy, SCPs.
    Caller,
    /// The resource owner's account: the resource policy, RCPs.
    ResourceOwner,
    /// The account that owns the VPC endpoint the request came through.
    EndpointOwner,
}

/// Whose policy a layer is.
pub(super) fn actor(layer: Layer) -> Actor {
    match layer {
        Layer::Identity | Layer::PermissionsBoundary | Layer::Session | Layer::Scp => Actor::Caller,
        Layer::Resource | Layer::Rcp => Actor::ResourceOwner,
        Layer::VpcEndpoint => Actor::EndpointOwner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYERS: [Layer; 7] = [
        Layer::Rcp,
        Layer::Scp,
        Layer::VpcEndpoint,
        Layer::Resource,
        Layer::Identity,
        Layer::PermissionsBoundary,
        Layer::Session,
    ];

    #[test]
    fn every_layer_maps_to_a_blocking_code() {
        for layer in LAYERS {
            for explicit in [true, false] {
                for hop in [
                    HopKind::S3,
                    HopKind::Kms,
                    HopKind::AccessPoint,
                    HopKind::BucketViaAccessPoint,
                ] {
                    let code = code_for(layer, explicit, hop);
                    assert!(code.is_blocking(), "{layer:?} {explicit} {hop:?}");
                }
            }
        }
    }

    #[test]
    fn the_resource_layer_is_the_bucket_or_the_key_policy() {
        assert_eq!(
            code_for(Layer::Resource, false, HopKind::S3),
            Code::BucketPolicyNoAllow
        );
        assert_eq!(
            code_for(Layer::Resource, true, HopKind::Kms),
            Code::KeyPolicyExplicitDeny
        );
        assert_eq!(
            code_for(Layer::Identity, true, HopKind::Kms),
            Code::IdentityPolicyExplicitDeny
        );
        assert_eq!(
            code_for(Layer::Resource, false, HopKind::AccessPoint),
            Code::AccessPointPolicyNoAllow
        );
        assert_eq!(
            code_for(Layer::Resource, true, HopKind::AccessPoint),
            Code::AccessPointPolicyExplicitDeny
        );
        assert_eq!(
            code_for(Layer::Resource, false, HopKind::BucketViaAccessPoint),
            Code::BucketPolicyNoAccessPointDelegation
        );
        assert_eq!(
            code_for(Layer::Resource, true, HopKind::BucketViaAccessPoint),
            Code::BucketPolicyExplicitDeny
        );
        // An RCP can only deny.
        assert_eq!(
            code_for(Layer::Rcp, false, HopKind::S3),
            Code::RcpExplicitDeny
        );
    }

    #[test]
    fn ranks_follow_aws_order_and_the_right_account_acts() {
        let ranks: Vec<u32> = LAYERS.iter().map(|l| layer_rank(*l)).collect();
        assert_eq!(ranks, [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(actor(Layer::Scp), Actor::Caller);
        assert_eq!(actor(Layer::Session), Actor::Caller);
        assert_eq!(actor(Layer::Resource), Actor::ResourceOwner);
        assert_eq!(actor(Layer::Rcp), Actor::ResourceOwner);
        assert_eq!(actor(Layer::VpcEndpoint), Actor::EndpointOwner);
        assert_eq!(
            code_for(Layer::VpcEndpoint, true, HopKind::S3),
            Code::VpcEndpointPolicyExplicitDeny
        );
        assert_eq!(
            code_for(Layer::VpcEndpoint, false, HopKind::S3),
            Code::VpcEndpointPolicyNoAllow
        );
    }
}

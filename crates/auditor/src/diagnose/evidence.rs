//! What the record itself says, held against the diagnosis: AWS's enhanced AccessDenied
//! message (the policy type that denied and whether the deny was explicit), and the hop
//! decisions that must agree with the blocking findings on each hop.

use super::findings::{Code, Finding};
use super::Hop;
use crate::refs::AccessPointRef;
use crate::request::{AwsDenial, DeniedPolicyType};

/// The policy type and explicitness AWS would name for a blocking code; `None` for codes
/// AWS does not report as a policy decision (a key in another Region, a disabled key).
pub(crate) fn denial_kind(code: Code) -> Option<(DeniedPolicyType, bool)> {
    use DeniedPolicyType as T;
    Some(match code {
        Code::IdentityPolicyExplicitDeny => (T::Identity, true),
        Code::IdentityPolicyNoAllow => (T::Identity, false),
        Code::PermissionsBoundaryExplicitDeny => (T::PermissionsBoundary, true),
        Code::PermissionsBoundaryNoAllow => (T::PermissionsBoundary, false),
        Code::SessionPolicyExplicitDeny => (T::Session, true),
        Code::SessionPolicyNoAllow => (T::Session, false),
        Code::ScpExplicitDeny => (T::Scp, true),
        Code::ScpNoAllow => (T::Scp, false),
        Code::RcpExplicitDeny => (T::Rcp, true),
        Code::VpcEndpointPolicyExplicitDeny => (T::VpcEndpoint, true),
        Code::VpcEndpointPolicyNoAllow => (T::VpcEndpoint, false),
        Code::BucketPolicyExplicitDeny
        | Code::KeyPolicyExplicitDeny
        | Code::AccessPointPolicyExplicitDeny => (T::Resource, true),
        // S3 reports Block Public Access voiding a public grant as an explicit deny in a
        // resource-based policy.
        Code::BlockPublicAccess => (T::Resource, true),
        Code::BucketPolicyNoAllow
        | Code::KeyPolicyNoAllow
        | Code::AccessPointPolicyNoAllow
        | Code::BucketPolicyNoAccessPointDelegation
        | Code::ObjectOwnerMismatch
        | Code::AwsManagedKey => (T::Resource, false),
        // S3 refuses a request from outside a VPC-origin access point's VPC before any
        // policy is read; AWS documents no policy type for that refusal.
        Code::KeyNotUsable
        | Code::KeyRegionMismatch
        | Code::AccessPointNetworkOrigin
        | Code::DefaultEncryptionAlias
        | Code::DefaultEncryptionAwsManagedKey
        | Code::ObjectKeyNotDefault
        | Code::MissingEvidence
        | Code::OrphanedPrincipalId => return None,
    })
}

/// How the diagnosis compares with what AWS's message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DenialCheck {
    /// A blocking finding is of the kind the message names.
    Agrees(Code),
    /// No blocking finding is.
    Disagrees,
}

/// Compares the blocking findings with the message's policy type (and explicitness, when
/// the message states it). KMS's message for a missing key ("the resource does not exist in
/// this Region, no resource-based policies allow access, or …") also covers a key in another
/// Region.
pub(crate) fn check_denial<'a>(
    denial: &AwsDenial,
    blocking: impl IntoIterator<Item = &'a Finding>,
) -> DenialCheck {
    // Only findings on the action the message names (when it names one) can agree with it.
    let on_action = |f: &&Finding| match (&denial.action, &f.action) {
        (Some(said), Some(ours)) => said.eq_ignore_ascii_case(ours),
        _ => true,
    };
    for f in blocking.into_iter().filter(on_action) {
        let agrees = match denial_kind(f.code) {
            Some((kind, explicit)) => {
                kind == denial.policy_type && denial.explicit.is_none_or(|e| e == explicit)
            }
            None => {
                f.code == Code::KeyRegionMismatch
                    && denial.policy_type == DeniedPolicyType::Resource
                    && denial.explicit.is_none()
            }
        };
        if agrees {
            return DenialCheck::Agrees(f.code);
        }
    }
    DenialCheck::Disagrees
}

/// The label a blocking cause that is not a policy layer adds to `hops[].denied_by`.
fn non_policy_label(code: Code) -> Option<&'static str> {
    match code {
        Code::BlockPublicAccess => Some("block_public_access"),
        Code::ObjectOwnerMismatch => Some("object_ownership"),
        Code::KeyNotUsable => Some("key_state"),
        Code::KeyRegionMismatch => Some("key_region"),
        Code::AwsManagedKey => Some("aws_managed_key"),
        Code::AccessPointNetworkOrigin => Some("access_point_network_origin"),
        _ => None,
    }
}

/// Makes each hop's decision agree with the blocking findings on it: a hop the engine
/// allowed (or could not evaluate) but that object ownership, Block Public Access or the
/// key's state blocks is reported as denied, with the cause in `denied_by`. Each hop of a
/// plan has its own action, so findings are matched to hops by action.
pub(crate) fn reconcile_hops(hops: &mut [Hop], findings: &[Finding]) {
    // A request through an access point has two S3 evaluations with one action: the access
    // point's side and the bucket's side (docs/design.md, "Access points").
    let is_access_point_hop = |h: &Hop| AccessPointRef::parse(&h.resource).is_some();
    let through_access_point = hops.iter().any(is_access_point_hop);
    for hop in hops.iter_mut() {
        let ap_side = is_access_point_hop(hop);
        let on_hop: Vec<&Finding> = findings
            .iter()
            .filter(|f| {
                f.blocking
                    && f.action
                        .as_deref()
                        .is_some_and(|a| a.eq_ignore_ascii_case(&hop.action))
                    && (!through_access_point || on_side(f.code, ap_side))
            })
            .collect();
        if on_hop.is_empty() {
            continue;
        }
        for f in &on_hop {
            if let Some(label) = non_policy_label(f.code) {
                if !hop.denied_by.iter().any(|d| d == label) {
                    hop.denied_by.push(label.to_owned());
                }
            }
        }
        if hop.decision == "Allowed" || hop.decision == "NotEvaluated" {
            let explicit = on_hop
                .iter()
                .any(|f| denial_kind(f.code).is_some_and(|(_, explicit)| explicit));
            hop.decision = if explicit {
                "ExplicitlyDenied"
            } else {
                "ImplicitlyDenied"
            }
            .to_owned();
        }
    }
}

/// Whether a cause found on an S3 hop through an access point belongs to the access point's
/// side (`ap_side`) or the bucket's: the caller's own layers are judged on the access point.
fn on_side(code: Code, ap_side: bool) -> bool {
    match code {
        Code::AccessPointPolicyNoAllow
        | Code::AccessPointPolicyExplicitDeny
        | Code::AccessPointNetworkOrigin
        | Code::IdentityPolicyNoAllow
        | Code::IdentityPolicyExplicitDeny
        | Code::PermissionsBoundaryNoAllow
        | Code::PermissionsBoundaryExplicitDeny
        | Code::SessionPolicyNoAllow
        | Code::SessionPolicyExplicitDeny
        | Code::ScpNoAllow
        | Code::ScpExplicitDeny => ap_side,
        Code::BucketPolicyNoAllow
        | Code::BucketPolicyExplicitDeny
        | Code::BucketPolicyNoAccessPointDelegation
        | Code::ObjectOwnerMismatch
        | Code::RcpExplicitDeny => !ap_side,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(code: Code, action: &str) -> Finding {
        Finding::new(code, Some(action), Some("111122223333"), String::new(), 0)
    }

    #[test]
    fn every_blocking_code_has_a_kind_or_a_reason_not_to() {
        for code in Code::ALL.iter().copied() {
            if code.is_blocking()
                && !matches!(
                    code,
                    Code::KeyNotUsable | Code::KeyRegionMismatch | Code::AccessPointNetworkOrigin
                )
            {
                assert!(denial_kind(code).is_some(), "{code}");
            }
            if !code.is_blocking() {
                assert_eq!(denial_kind(code), None, "{code}");
            }
        }
    }

    #[test]
    fn the_message_agrees_or_disagrees() {
        let explicit_resource = AwsDenial {
            action: None,
            policy_type: DeniedPolicyType::Resource,
            explicit: Some(true),
        };
        let bucket_deny = finding(Code::BucketPolicyExplicitDeny, "s3:GetObject");
        let identity = finding(Code::IdentityPolicyNoAllow, "s3:GetObject");
        assert_eq!(
            check_denial(&explicit_resource, [&identity, &bucket_deny]),
            DenialCheck::Agrees(Code::BucketPolicyExplicitDeny)
        );
        assert_eq!(
            check_denial(&explicit_resource, [&identity]),
            DenialCheck::Disagrees
        );
        // An implicit message does not agree with an explicit finding of the same type.
        let no_allow = AwsDenial {
            action: None,
            policy_type: DeniedPolicyType::Resource,
            explicit: Some(false),
        };
        assert_eq!(
            check_denial(&no_allow, [&bucket_deny]),
            DenialCheck::Disagrees
        );
        // KMS's either-way message covers a key in another Region.
        let kms = AwsDenial {
            action: Some("kms:Decrypt".into()),
            policy_type: DeniedPolicyType::Resource,
            explicit: None,
        };
        let region = finding(Code::KeyRegionMismatch, "kms:Decrypt");
        assert_eq!(
            check_denial(&kms, [&region]),
            DenialCheck::Agrees(Code::KeyRegionMismatch)
        );
        // A finding on another action than the one AWS names does not agree.
        let s3_side = AwsDenial {
            action: Some("s3:GetObject".into()),
            policy_type: DeniedPolicyType::Identity,
            explicit: Some(false),
        };
        let kms_identity = finding(Code::IdentityPolicyNoAllow, "kms:Decrypt");
        assert_eq!(
            check_denial(&s3_side, [&kms_identity]),
            DenialCheck::Disagrees
        );
    }

    #[test]
    fn a_hop_blocked_outside_the_engine_is_not_reported_allowed() {
        let mut hops = vec![
            Hop {
                action: "s3:GetObject".into(),
                resource: "arn:aws:s3:::b/k".into(),
                decision: "Allowed".into(),
                denied_by: Vec::new(),
                unknown_context_keys: Vec::new(),
            },
            Hop {
                action: "kms:Decrypt".into(),
                resource: "arn:aws:kms:us-west-2:111122223333:key/k".into(),
                decision: "Allowed".into(),
                denied_by: Vec::new(),
                unknown_context_keys: Vec::new(),
            },
        ];
        reconcile_hops(
            &mut hops,
            &[
                finding(Code::ObjectOwnerMismatch, "s3:GetObject"),
                finding(Code::DefaultEncryptionAlias, "kms:Decrypt"),
            ],
        );
        assert_eq!(hops[0].decision, "ImplicitlyDenied");
        assert_eq!(hops[0].denied_by, ["object_ownership"]);
        // An advisory finding does not change a hop.
        assert_eq!(hops[1].decision, "Allowed");
        reconcile_hops(
            &mut hops,
            &[finding(Code::BlockPublicAccess, "s3:GetObject")],
        );
        assert_eq!(hops[0].decision, "ImplicitlyDenied");
        assert_eq!(
            hops[0].denied_by,
            ["object_ownership", "block_public_access"]
        );
    }
}

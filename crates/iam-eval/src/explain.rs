//! Human-readable explanations of an [`Evaluation`]: what decided, what blocks, what to look at.

use std::fmt::Write as _;

use crate::authorize::{Decision, Evaluation, GrantPath, Layer, Miss, Note, ServiceRule, Warning};
use crate::request::Request;

/// What each layer is called in prose.
pub fn layer_name(layer: Layer) -> &'static str {
    match layer {
        Layer::Rcp => "resource control policies (RCPs)",
        Layer::Scp => "service control policies (SCPs)",
        Layer::VpcEndpoint => "the VPC endpoint policy",
        Layer::Resource => "the resource-based policy",
        Layer::Identity => "the identity-based policies",
        Layer::PermissionsBoundary => "the permissions boundary",
        Layer::Session => "the session policy",
    }
}

/// Renders the evaluation as text a person can act on.
pub fn render_text(req: &Request, ev: &Evaluation<'_>) -> String {
    let mut out = String::new();
    let verdict = match ev.decision {
        Decision::Allowed => "ALLOWED",
        Decision::ImplicitlyDenied => "DENIED (implicitly: no policy allows it)",
        Decision::ExplicitlyDenied => "DENIED (explicitly: a Deny statement applies)",
    };
    let _ = writeln!(out, "{verdict}");
    let _ = writeln!(out, "  principal: {}", req.caller.arn);
    let _ = writeln!(out, "  action:    {}", req.action);
    let _ = writeln!(out, "  resource:  {}", req.resource);
    let cross = match (&req.resource_account, &req.caller.account) {
        (Some(r), Some(c)) if r != c => format!("cross-account ({c} → {r})"),
        (Some(r), Some(_)) => format!("same account ({r})"),
        (None, Some(c)) => format!("resource account unknown (evaluated as same account, {c})"),
        _ => "account relationship unknown".to_owned(),
    };
    let _ = writeln!(out, "  accounts:  {cross}");

    let cross_account =
        matches!((&req.resource_account, &req.caller.account), (Some(r), Some(c)) if r != c);
    if ev.decision == Decision::Allowed {
        let how = match ev.granted_by {
            Some(GrantPath::ResourcePolicyDirect) => "the resource-based policy grants this principal directly",
            Some(GrantPath::ResourcePolicyRole) => "the resource-based policy grants the role (boundary and session policy still apply)",
            Some(GrantPath::IdentityPolicy) if cross_account => "the resource-based policy allows this caller (or its account) and its own identity-based policies allow it, as a cross-account request needs",
            Some(GrantPath::IdentityPolicy) if req.is_kms_key() => "the key policy enables IAM policies for the caller's account, and an identity-based policy allows it",
            Some(GrantPath::IdentityPolicy) => "an identity-based policy allows it, and nothing in the resource-based policy is needed in the same account",
            Some(GrantPath::Grant) => "a KMS grant allows it",
            Some(GrantPath::RootUser) => "the root user has full access to its own account's resources",
            Some(GrantPath::ResourcePolicyAccount) => "the resource-based policy allows the caller's account, and the caller is that account's root user, which needs no identity-based policy",
            None => "every required layer allows it",
        };
        let _ = writeln!(out, "\nWhy: {how}.");
    } else {
        let _ = writeln!(out, "\nBlocked by:");
        for layer in &ev.denied_by {
            let explicit = ev.explicit_denies.contains(layer);
            let _ = writeln!(
                out,
                "  - {}: {}",
                layer.as_str(),
                if explicit {
                    format!("an explicit Deny in {}", layer_name(*layer))
                } else {
                    format!(
                        "no statement in {} allows {} for this principal",
                        layer_name(*layer),
                        req.action
                    )
                }
            );
            for rule in &ev.service_rules {
                match rule {
                    ServiceRule::KmsOperationNotCrossAccount { action }
                        if *layer == Layer::Resource =>
                    {
                        let _ = writeln!(
                            out,
                            "      KMS rule: {action} cannot be used on a key from another account, whatever the key policy and IAM policies say; only the cryptographic operations, CreateGrant, DescribeKey, GetKeyRotationStatus, GetPublicKey, ListGrants, RetireGrant and RevokeGrant can. Call it from the key's own account."
                        );
                    }
                    ServiceRule::KmsOperationNotCrossAccount { .. } => {}
                }
            }
            if !explicit {
                for nm in ev
                    .near_misses
                    .iter()
                    .filter(|n| n.statement.layer == *layer)
                {
                    let sid = nm
                        .statement
                        .sid
                        .map(|s| format!(" (Sid `{s}`)"))
                        .unwrap_or_default();
                    let why = match &nm.miss {
                        Miss::Resource => "its Resource does not match".to_owned(),
                        Miss::AliasArn => "it names the key by alias ARN, which authorizes the alias, never the key: use the key ARN".to_owned(),
                        Miss::Principal => "its Principal does not match this caller".to_owned(),
                        Miss::Condition {
                            operator,
                            key,
                            key_absent,
                        } => {
                            if *key_absent {
                                format!("condition `{operator}` on `{key}` fails because the key is absent from the request")
                            } else {
                                format!("condition `{operator}` on `{key}` is false")
                            }
                        }
                    };
                    let _ = writeln!(
                        out,
                        "      {} statement {}{sid} ({:?}) matches the action but not the request: {why}",
                        nm.statement.policy, nm.statement.index, nm.statement.effect
                    );
                }
            }
        }
    }
    if !ev.statements.is_empty() {
        let _ = writeln!(out, "\nStatements that decided:");
        for s in &ev.statements {
            let sid = s.sid.map(|x| format!(" Sid `{x}`")).unwrap_or_default();
            let _ = writeln!(
                out,
                "  - {:?} in {} ({}), statement {}{sid}",
                s.effect,
                s.policy,
                s.layer.as_str(),
                s.index
            );
        }
    }
    if !ev.unknown_context_keys.is_empty() {
        let _ = writeln!(
            out,
            "\nContext keys the request did not supply (evaluated as absent; supply them for a firmer answer):\n  {}",
            ev.unknown_context_keys.join(", ")
        );
    }
    for warning in &ev.warnings {
        let text = match warning {
            Warning::VariableOutsideResourcePart { policy, index, entry } => format!(
                "{policy} statement {index}: `{entry}` has a policy variable before the fifth colon, where AWS does not substitute variables; the entry is literal text and matches no real resource. Variables work only in the resource part of an ARN."
            ),
        };
        let _ = writeln!(out, "\nWarning: {text}");
    }
    for note in &ev.notes {
        let text = match note {
            Note::OrphanedPrincipalId { policy, index, id } => format!(
                "{policy} statement {index} names `{id}`, the unique id of a deleted principal; it matches nobody. Re-save the policy with the principal's ARN."
            ),
            Note::NotPrincipalIncomplete { policy, index } => format!(
                "{policy} statement {index} is a NotPrincipal deny that lists only part of the caller's identity chain (account, role, session); AWS may deny in that case."
            ),
            Note::ResourceAccountAssumed => {
                "the resource account is unknown; the request was evaluated as same-account.".to_owned()
            }
            Note::EveryoneGrantSkipsCeiling => "access rests on a same-account `Principal: \"*\"` grant bypassing a boundary or session policy, which AWS documents only for the aws:PrincipalArn form.".to_owned(),
        };
        let _ = writeln!(out, "\nNote: {text}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorize::authorize;
    use crate::input::ExplainInput;

    fn explain(input: &str) -> String {
        let input = ExplainInput::parse(input).expect("test input parses");
        let ev = authorize(&input.request, &input.policy_set());
        render_text(&input.request, &ev)
    }

    #[test]
    fn kms_cross_account_rule_is_named() {
        let text = explain(
            r#"{"request": {"principal": "arn:aws:sts::444455556666:assumed-role/reader/s1",
                 "action": "kms:PutKeyPolicy",
                 "resource": "arn:aws:kms:us-west-2:111122223333:key/k"},
                "policies": {
                 "identity": [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}],
                 "resource": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                   "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": "kms:*", "Resource": "*"}]}}}"#,
        );
        assert!(text.starts_with("DENIED"), "{text}");
        assert!(
            text.contains(
                "KMS rule: kms:PutKeyPolicy cannot be used on a key from another account"
            ),
            "{text}"
        );
    }

    #[test]
    fn misplaced_variable_is_a_warning() {
        let text = explain(
            r#"{"request": {"principal": "arn:aws:sts::111122223333:assumed-role/app/s1",
                 "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k", "resource_account": "111122223333"},
                "policies": {"identity": [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                  "Action": "s3:GetObject", "Resource": "arn:aws:s3:${aws:RequestedRegion}::b/*"}]}]}}"#,
        );
        assert!(
            text.contains("Warning: identity[0] statement 0: `arn:aws:s3:${aws:RequestedRegion}::b/*` has a policy variable before the fifth colon"),
            "{text}"
        );
    }
}

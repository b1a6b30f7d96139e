//! Words: the explanation of each finding and the text report an on-call engineer reads first.

use std::fmt::Write as _;

use iam_eval::authorize::Miss;
use iam_eval::{Evaluation, Layer};

use super::findings::Code;
use super::fix::Target;
use super::{Diagnosis, Verdict};

fn near_miss_text(ev: &Evaluation<'_>, layer: Layer) -> String {
    let mut parts = Vec::new();
    // Only Allow statements are near misses of a missing allow.
    for n in ev
        .near_misses
        .iter()
        .filter(|n| n.statement.layer == layer && n.statement.effect == iam_eval::Effect::Allow)
        .take(4)
    {
        let sid = n
            .statement
            .sid
            .map(|s| format!(" (Sid `{s}`)"))
            .unwrap_or_default();
        let why = match &n.miss {
            Miss::Resource => "its Resource does not cover this ARN".to_owned(),
            Miss::AliasArn => "it names the key by its alias ARN, and an alias ARN in an IAM policy authorizes the alias only, never the key: name the key ARN".to_owned(),
            Miss::Principal => "its Principal does not name this caller".to_owned(),
            Miss::Condition {
                operator,
                key,
                key_absent: true,
            } => format!(
                "its condition `{operator} {key}` fails: the key is absent from this request"
            ),
            Miss::Condition {
                operator,
                key,
                key_absent: false,
            } => format!("its condition `{operator} {key}` is false for this request"),
        };
        parts.push(format!(
            "statement {}{sid} of {} matches the action, but {why}",
            n.statement.index, n.statement.policy
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" Closest: {}.", parts.join("; "))
    }
}

/// The explanation paragraph for a finding reported by the engine for one layer.
#[expect(
    clippy::too_many_arguments,
    reason = "the words of one finding: who, what, where, which layer"
)]
pub(super) fn explain_layer(
    code: Code,
    layer: &Layer,
    explicit: bool,
    caller: &str,
    action: &str,
    resource: &str,
    account: &str,
    ev: &Evaluation<'_>,
    tgt: &Target,
) -> String {
    let denies: Vec<String> = ev
        .statements
        .iter()
        .filter(|s| s.layer == *layer)
        .map(|s| {
            format!(
                "statement {}{} of {}",
                s.index,
                s.sid.map(|x| format!(" (Sid `{x}`)")).unwrap_or_default(),
                s.policy
            )
        })
        .collect();
    if explicit {
        let what = match layer {
            Layer::Resource => match tgt {
                Target::Bucket { bucket, .. } => format!("the bucket policy of `{bucket}`"),
                Target::Key { arn, .. } => format!("the key policy of `{arn}`"),
            },
            Layer::Identity => format!("an identity-based policy of `{caller}`"),
            Layer::PermissionsBoundary => "the permissions boundary".into(),
            Layer::Session => "the session policy".into(),
            Layer::Scp => format!("a service control policy over account {account}"),
            Layer::Rcp => format!("a resource control policy over account {account}"),
        };
        return format!("{action} on `{resource}` is explicitly denied by {what}: {}. An explicit deny wins over every allow.", denies.join(", "));
    }
    let nm = near_miss_text(ev, *layer);
    match code {
        Code::BucketPolicyNoAllow => format!("No statement in the bucket policy allows `{caller}` to {action} `{resource}`. A caller from another account needs the bucket policy (account {account}) to name it, its role or its account.{nm}"),
        Code::KeyPolicyNoAllow => {
            let Target::Key { arn, .. } = tgt else { return String::new() };
            format!("The key policy of `{arn}` (account {account}) allows neither `{caller}` (or its role) nor its account to use {action}, and no grant does. Unless the key policy allows it, IAM policies cannot grant use of a KMS key.{nm}")
        }
        Code::IdentityPolicyNoAllow => format!("No identity-based policy of `{caller}` (account {account}) allows {action} on `{resource}`. {}{nm}",
            if action.starts_with("kms:") { "For a key in another account the caller's own IAM policy must allow the action on the key's ARN (not an alias ARN), even when the key policy names the role." } else { "Across accounts, the caller's own account must allow the action as well as the resource's policy." }),
        Code::PermissionsBoundaryNoAllow => format!("The permissions boundary of `{caller}` does not allow {action} on `{resource}`; a boundary caps what identity policies can grant.{nm}"),
        Code::SessionPolicyNoAllow => format!("The session policy of `{caller}` does not allow {action}; session policies cap the session's permissions.{nm}"),
        Code::ScpNoAllow => format!("Some level of the service control policies over account {account} (root, OUs, account) allows no {action}: SCPs must allow an action at every level.{nm}"),
        Code::RcpExplicitDeny => format!("A resource control policy over account {account} blocks {action} on `{resource}`."),
        _ => format!("{action} on `{resource}` is not allowed.{nm}"),
    }
}

/// The text report: the verdict in one line, then each cause with its fix, the account that
/// must act and the commands.
pub fn render_text(d: &Diagnosis) -> String {
    let mut out = String::new();
    let blocking: Vec<_> = d.blocking().collect();
    let headline = match d.verdict {
        Verdict::Denied => format!(
            "DENIED: {} cause{} block{} {} ({} confidence)",
            blocking.len(),
            if blocking.len() == 1 { "" } else { "s" },
            if blocking.len() == 1 { "s" } else { "" },
            d.principal,
            confidence(d)
        ),
        Verdict::Allowed => format!(
            "ALLOWED: nothing in the snapshot blocks {} ({} confidence)",
            d.principal,
            confidence(d)
        ),
        Verdict::Unknown => format!(
            "UNKNOWN: nothing visible blocks {}, but evidence is missing ({} confidence)",
            d.principal,
            confidence(d)
        ),
    };
    let _ = writeln!(out, "{headline}");
    for h in &d.hops {
        let by = if h.denied_by.is_empty() {
            String::new()
        } else {
            format!(" by {}", h.denied_by.join(", "))
        };
        let _ = writeln!(
            out,
            "  {:<20} {:<16}{by}  {}",
            h.action, h.decision, h.resource
        );
    }
    if let (Some(first), true) = (blocking.first(), blocking.len() > 1) {
        let _ = writeln!(
            out,
            "\nAWS stops at the first wall: {} ({}), and reports only that one. Fix them all: fixing one alone still leaves the request denied.",
            first.code,
            first.action.as_deref().unwrap_or("")
        );
    }
    for (i, f) in blocking.iter().enumerate() {
        let _ = writeln!(
            out,
            "\n{}. {} [{}] — {} must act",
            i + 1,
            f.code,
            f.action.as_deref().unwrap_or("-"),
            crate::diagnose::who_acts(f)
        );
        let _ = writeln!(out, "   {}", f.explanation);
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "   Fix ({}):", fix.artifact);
            if let Some(st) = &fix.statement {
                let _ = writeln!(
                    out,
                    "     add statement: {}",
                    serde_json::to_string(st).unwrap_or_default()
                );
            }
            for n in &fix.notes {
                let _ = writeln!(out, "     - {n}");
            }
            let _ = writeln!(out, "     $ {}", fix.cli);
        }
    }
    let advisory: Vec<_> = d.findings.iter().filter(|f| !f.blocking).collect();
    if !advisory.is_empty() {
        let _ = writeln!(out, "\nAlso noticed:");
        for f in advisory {
            let _ = writeln!(out, "  - {}: {}", f.code, f.explanation);
        }
    }
    if d.verdict == Verdict::Denied {
        let _ = writeln!(
            out,
            "\nFixes verified by re-evaluation: {}",
            if d.fixes_verified {
                "yes — with all of them applied the request is allowed".to_owned()
            } else {
                format!(
                    "no — {}",
                    d.fixes_unverified
                        .as_deref()
                        .unwrap_or("some causes cannot be fixed by a policy change")
                )
            }
        );
    }
    if !d.assumptions.is_empty() {
        let _ = writeln!(out, "\nAssumptions:");
        for a in &d.assumptions {
            let _ = writeln!(out, "  - {a}");
        }
    }
    if let Some(e) = &d.event {
        let _ = writeln!(
            out,
            "\nEvent: {} {} at {} (eventID {}, recorded in {})",
            e.event_source.as_deref().unwrap_or("?"),
            e.event_name.as_deref().unwrap_or("?"),
            e.event_time.as_deref().unwrap_or("?"),
            e.event_id.as_deref().unwrap_or("?"),
            e.recipient_account.as_deref().unwrap_or("?")
        );
    }
    out
}

fn confidence(d: &Diagnosis) -> &'static str {
    match d.confidence {
        super::Confidence::High => "high",
        super::Confidence::Medium => "medium",
        super::Confidence::Low => "low",
    }
}

//! What makes two denials the same problem.
//!
//! A problem is (principal, bucket, object prefix, operation, blocking codes with the account
//! that must act on each). The principal of a role session is its role, so that every session
//! of a retrying job is one problem; the object key counts by its prefix, as the notification
//! subject shows it. Two denials with the same identity need the same fix, so one alert per
//! window is enough.
//!
//! The blocking codes are known only after a diagnosis. The [`PreKey`] is what the event alone
//! gives (principal, bucket, full key, operation): a warm container that has diagnosed a
//! pre-key recently knows its problem without collecting again.

use serde::Serialize;

use crate::diagnose::Diagnosis;
use crate::report::sns::{acting_account, key_prefix};
use crate::request::Request;

/// A problem's identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ProblemKey {
    /// The role for role sessions, else the principal ARN, service or label.
    pub principal: String,
    /// The bucket, when the request names one.
    pub bucket: Option<String>,
    /// The object key's prefix (up to its last `/`).
    pub prefix: Option<String>,
    /// The operation: the record's `eventName`, else the IAM action.
    pub operation: String,
    /// `CODE@account` for each blocking finding, sorted and without duplicates (`CODE` alone
    /// when no account must act).
    pub blocking: Vec<String>,
}

/// The principal a problem is filed under: the role of a session (`aws:PrincipalArn`), the
/// ARN of another principal, the service, or the label of an unidentified caller.
pub fn principal_of(req: &Request) -> String {
    req.principal_arn()
        .map(str::to_owned)
        .unwrap_or_else(|| req.principal_label())
}

fn operation_of(req: &Request) -> String {
    req.event
        .as_ref()
        .map(|e| e.event_name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| req.action.clone())
}

impl ProblemKey {
    /// The identity of the problem `d` found for `req`.
    pub fn of(req: &Request, d: &Diagnosis) -> ProblemKey {
        let mut blocking: Vec<String> = d
            .blocking()
            .map(|f| match acting_account(f) {
                Some(a) => format!("{}@{a}", f.code.as_str()),
                None => f.code.as_str().to_owned(),
            })
            .collect();
        blocking.sort();
        blocking.dedup();
        ProblemKey {
            principal: principal_of(req),
            bucket: req.bucket.clone(),
            prefix: req
                .object_key
                .as_deref()
                .filter(|k| !k.is_empty())
                .map(|k| key_prefix(k).to_owned()),
            operation: operation_of(req),
            blocking,
        }
    }

    /// The identity as one line, for logs and messages.
    pub fn label(&self) -> String {
        format!(
            "{} | {}/{} | {} | {}",
            self.principal,
            self.bucket.as_deref().unwrap_or("-"),
            self.prefix.as_deref().unwrap_or(""),
            self.operation,
            if self.blocking.is_empty() {
                "nothing blocks".to_owned()
            } else {
                self.blocking.join(",")
            }
        )
    }

    /// A stable id (`p-` and 32 hex digits): two FNV-1a hashes of the fields, each
    /// length-prefixed so that no two identities share their text. Stable across builds and
    /// instances, unlike `std`'s hasher, since instances share it through the table.
    pub fn id(&self) -> String {
        let mut text = String::new();
        for part in [
            Some(self.principal.as_str()),
            self.bucket.as_deref(),
            self.prefix.as_deref(),
            Some(self.operation.as_str()),
        ] {
            push_part(&mut text, part);
        }
        for b in &self.blocking {
            push_part(&mut text, Some(b));
        }
        format!(
            "p-{:016x}{:016x}",
            fnv1a(text.as_bytes(), 0xcbf2_9ce4_8422_2325),
            fnv1a(text.as_bytes(), 0x6c62_272e_07bb_0142)
        )
    }
}

fn push_part(out: &mut String, part: Option<&str>) {
    match part {
        Some(p) => out.push_str(&format!("{}:{p};", p.len())),
        None => out.push_str("-;"),
    }
}

fn fnv1a(bytes: &[u8], basis: u64) -> u64 {
    bytes.iter().fold(basis, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What the event gives before any diagnosis: principal (the role for sessions), bucket, full
/// object key, operation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PreKey(String);

impl PreKey {
    /// The pre-key of `req`.
    pub fn of(req: &Request) -> PreKey {
        let mut text = String::new();
        push_part(&mut text, Some(&principal_of(req)));
        push_part(&mut text, req.bucket.as_deref());
        push_part(&mut text, req.object_key.as_deref());
        push_part(&mut text, Some(&operation_of(req)));
        push_part(
            &mut text,
            req.kms_key_arn.as_deref().or(req.kms_key_ref.as_deref()),
        );
        PreKey(text)
    }

    /// The pre-key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::{Code, Finding};
    use crate::noise::window::tests::test_diagnosis;
    use crate::request::Principal;

    fn req(session: &str, key: &str) -> Request {
        crate::event::adhoc_request(
            &format!("arn:aws:sts::444455556666:assumed-role/reader/{session}"),
            "s3:GetObject",
            &format!("arn:aws:s3:::doc-example-bucket/{key}"),
        )
        .unwrap()
    }

    fn diagnosis(codes: &[(Code, &str)]) -> Diagnosis {
        let findings = codes
            .iter()
            .map(|(c, a)| {
                let mut f = Finding::new(*c, None, Some(a), String::new(), 0);
                f.blocking = true;
                f
            })
            .collect();
        test_diagnosis(findings)
    }

    #[test]
    fn sessions_of_one_role_and_keys_under_one_prefix_are_one_problem() {
        let d = diagnosis(&[
            (Code::KeyPolicyNoAllow, "111122223333"),
            (Code::IdentityPolicyNoAllow, "444455556666"),
        ]);
        let d2 = diagnosis(&[
            (Code::IdentityPolicyNoAllow, "444455556666"),
            (Code::KeyPolicyNoAllow, "111122223333"),
        ]);
        let a = ProblemKey::of(&req("s1", "reports/a.csv"), &d);
        let b = ProblemKey::of(&req("s2", "reports/b.csv"), &d2);
        assert_eq!(a, b);
        assert_eq!(a.id(), b.id());
        assert_eq!(a.principal, "arn:aws:iam::444455556666:role/reader");
        assert_eq!(a.prefix.as_deref(), Some("reports/"));
        assert_eq!(
            a.blocking,
            [
                "IDENTITY_POLICY_NO_ALLOW@444455556666",
                "KEY_POLICY_NO_ALLOW@111122223333"
            ]
        );
        assert!(a.id().starts_with("p-") && a.id().len() == 34, "{}", a.id());
        // Another prefix, another code or another account is another problem.
        let c = ProblemKey::of(&req("s1", "other/a.csv"), &d);
        assert_ne!(a.id(), c.id());
        let e = ProblemKey::of(
            &req("s1", "reports/a.csv"),
            &diagnosis(&[(Code::KeyPolicyNoAllow, "111122223333")]),
        );
        assert_ne!(a.id(), e.id());
        assert!(a.label().contains("reports/"), "{}", a.label());
    }

    #[test]
    fn the_pre_key_keeps_the_full_key_and_ignores_the_session() {
        assert_eq!(
            PreKey::of(&req("s1", "reports/a.csv")),
            PreKey::of(&req("s2", "reports/a.csv"))
        );
        assert_ne!(
            PreKey::of(&req("s1", "reports/a.csv")),
            PreKey::of(&req("s1", "reports/b.csv"))
        );
        let mut svc = req("s1", "k");
        svc.role_arn = None;
        svc.principal = Principal::Service("config.example".into());
        assert!(PreKey::of(&svc).as_str().contains("config.example"));
    }
}

//! Suppression rules: denials that are expected and are counted instead of alerted.
//!
//! **Default suppressions** cover AWS's own principals that probe buckets and keys as a matter
//! of course and are denied where the owner never granted them access (each is matched by its
//! service principal, calling as itself, or by its service-linked role):
//!
//! | name | service | service-linked role | AWS documentation |
//! | --- | --- | --- | --- |
//! | `aws-config` | `config` | `AWSServiceRoleForConfig` | <https://docs.aws.amazon.com/config/latest/developerguide/using-service-linked-roles-config.html> |
//! | `amazon-macie` | `macie` | `AWSServiceRoleForAmazonMacie` | <https://docs.aws.amazon.com/macie/latest/user/service-linked-roles.html> |
//! | `access-analyzer` | `access-analyzer` | `AWSServiceRoleForAccessAnalyzer` | <https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-using-service-linked-roles.html> |
//! | `trusted-advisor` | `trustedadvisor` | `AWSServiceRoleForTrustedAdvisor` | <https://docs.aws.amazon.com/awssupport/latest/user/using-service-linked-roles-ta.html> |
//! | `cloudfront-origin-access` | `cloudfront` (origin access control) | origin access identities (`iam::cloudfront:user/...`) | <https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-restricting-access-to-s3.html> |
//! | `s3-service` | `s3` calling as itself (replication's and other checks S3 makes on its own behalf) | — | <https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication.html> |
//!
//! **Configured suppressions** are a JSON array of rules; each names at least one of
//! `principal` (a pattern with `*`, matched against the principal ARN, its role ARN and the
//! service name), `bucket` (a pattern), `code` (a blocking finding code) and `account` (the
//! caller's or the resource owner's account), and must have an `owner` (who to ask) and an
//! `expires` date (`YYYY-MM-DD`, the last day it applies, UTC). An expired rule stops applying
//! and says so: the caller logs it and counts it for the digest.

use serde::Deserialize;
use serde_json::Value;

use crate::refs::{is_cloudfront_oai, is_service_name, role_path_and_name};
use crate::request::{Principal, Request};

/// AWS services whose expected denials are suppressed by default: name, service, role name.
const DEFAULTS: &[(&str, &str, Option<&str>)] = &[
    ("aws-config", "config", Some("AWSServiceRoleForConfig")),
    (
        "amazon-macie",
        "macie",
        Some("AWSServiceRoleForAmazonMacie"),
    ),
    (
        "access-analyzer",
        "access-analyzer",
        Some("AWSServiceRoleForAccessAnalyzer"),
    ),
    (
        "trusted-advisor",
        "trustedadvisor",
        Some("AWSServiceRoleForTrustedAdvisor"),
    ),
    ("cloudfront-origin-access", "cloudfront", None),
    ("s3-service", "s3", None),
];

/// One configured suppression.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A name for logs and the digest.
    pub id: String,
    /// Principal pattern (`*` matches any run of characters).
    #[serde(default)]
    pub principal: Option<String>,
    /// Bucket pattern.
    #[serde(default)]
    pub bucket: Option<String>,
    /// A blocking finding code.
    #[serde(default)]
    pub code: Option<String>,
    /// The caller's or the resource owner's account.
    #[serde(default)]
    pub account: Option<String>,
    /// Who owns the rule.
    pub owner: String,
    /// Last day the rule applies (`YYYY-MM-DD`, UTC).
    pub expires: String,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A configuration that cannot be used, with the JSON path at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {path}: {message}")]
pub struct RulesError {
    /// Where the rules came from.
    pub source_name: String,
    /// The JSON path (`$[2].expires`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// The rules in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Whether the default suppressions apply.
    pub defaults: bool,
    /// Configured rules.
    pub configured: Vec<Rule>,
}

/// Why a denial is suppressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suppression {
    /// A default suppression (its name).
    Default(&'static str),
    /// A configured rule (its id).
    Rule(String),
}

impl Suppression {
    /// The digest counter it is counted under: `default:<name>` or `rule:<id>`.
    pub fn counter(&self) -> String {
        match self {
            Suppression::Default(n) => format!("default:{n}"),
            Suppression::Rule(id) => format!("rule:{id}"),
        }
    }
}

/// The result of checking a denial against the rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Check {
    /// The suppression that applies, if any.
    pub suppressed: Option<Suppression>,
    /// Configured rules that would have matched but have expired (they no longer apply).
    pub expired: Vec<String>,
}

impl Rules {
    /// Parses a JSON array of rules; `source_name` names where it came from in errors.
    pub fn parse(text: &str, source_name: &str, defaults: bool) -> Result<Rules, RulesError> {
        let err = |path: String, message: String| RulesError {
            source_name: source_name.to_owned(),
            path,
            message,
        };
        let value: Value =
            serde_json::from_str(text).map_err(|e| err("$".into(), format!("not JSON: {e}")))?;
        let Value::Array(items) = value else {
            return Err(err("$".into(), "expected an array of rules".into()));
        };
        let mut configured = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let rule: Rule =
                serde_json::from_value(item).map_err(|e| err(format!("$[{i}]"), e.to_string()))?;
            if rule.principal.is_none()
                && rule.bucket.is_none()
                && rule.code.is_none()
                && rule.account.is_none()
            {
                return Err(err(
                    format!("$[{i}]"),
                    "a rule must name at least one of `principal`, `bucket`, `code`, `account`"
                        .into(),
                ));
            }
            if rule.owner.trim().is_empty() {
                return Err(err(format!("$[{i}].owner"), "must not be empty".into()));
            }
            if !is_date(&rule.expires) {
                return Err(err(
                    format!("$[{i}].expires"),
                    format!("`{}` is not a date such as `2026-12-31`", rule.expires),
                ));
            }
            if configured.iter().any(|r: &Rule| r.id == rule.id) {
                return Err(err(
                    format!("$[{i}].id"),
                    format!("`{}` is used twice", rule.id),
                ));
            }
            configured.push(rule);
        }
        Ok(Rules {
            defaults,
            configured,
        })
    }

    /// Checks a denial before its diagnosis: the default suppressions, and the configured
    /// rules that need no finding code. `today` is `YYYY-MM-DD` (UTC).
    pub fn check_early(&self, req: &Request, today: &str) -> Check {
        if self.defaults {
            if let Some(name) = default_match(req) {
                return Check {
                    suppressed: Some(Suppression::Default(name)),
                    expired: Vec::new(),
                };
            }
        }
        self.check_configured(req, None, today)
    }

    /// Checks a diagnosed denial: every configured rule, with the blocking codes.
    pub fn check(&self, req: &Request, blocking_codes: &[String], today: &str) -> Check {
        self.check_configured(req, Some(blocking_codes), today)
    }

    fn check_configured(&self, req: &Request, codes: Option<&[String]>, today: &str) -> Check {
        let mut out = Check::default();
        for r in &self.configured {
            let code_ok = match (&r.code, codes) {
                (None, _) => true,
                (Some(_), None) => continue,
                (Some(c), Some(codes)) => codes.iter().any(|x| x == c),
            };
            if !(code_ok && matches(r, req)) {
                continue;
            }
            if r.expires.as_str() < today {
                out.expired.push(r.id.clone());
            } else if out.suppressed.is_none() {
                out.suppressed = Some(Suppression::Rule(r.id.clone()));
            }
        }
        out
    }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

fn matches(r: &Rule, req: &Request) -> bool {
    let principal_ok = r.principal.as_deref().is_none_or(|p| {
        let mut names = vec![req.principal.to_string()];
        names.extend(req.role_arn.clone());
        names.iter().any(|n| glob(p, n))
    });
    let bucket_ok = r
        .bucket
        .as_deref()
        .is_none_or(|p| req.bucket.as_deref().is_some_and(|b| glob(p, b)));
    let account_ok = r.account.as_deref().is_none_or(|a| {
        req.principal_account.as_deref() == Some(a) || req.resource_account.as_deref() == Some(a)
    });
    principal_ok && bucket_ok && account_ok
}

/// `*` matches any run of characters (including none); everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return pattern == text;
    };
    if parts.len() == 1 {
        return pattern == text;
    }
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let middle = parts.get(1..parts.len() - 1).unwrap_or_default();
    for m in middle {
        match rest.find(m) {
            Some(i) => rest = rest.get(i + m.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn default_match(req: &Request) -> Option<&'static str> {
    let role_name = req
        .role_arn
        .as_deref()
        .and_then(role_path_and_name)
        .map(|(_, n)| n);
    for (name, service, role) in DEFAULTS {
        if let Principal::Service(s) = &req.principal {
            if is_service_name(s, service) {
                return Some(name);
            }
        }
        if let (Some(role), Some(actual)) = (role, role_name) {
            if actual.eq_ignore_ascii_case(role) {
                return Some(name);
            }
        }
    }
    if req.principal.arn().is_some_and(is_cloudfront_oai) {
        return Some("cloudfront-origin-access");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::adhoc_request;

    fn req(principal: &str, bucket: &str) -> Request {
        adhoc_request(
            principal,
            "s3:GetObject",
            &format!("arn:aws:s3:::{bucket}/k"),
        )
        .unwrap()
    }

    const RULES: &str = r#"[
        {"id": "batch-retry", "principal": "arn:aws:iam::444455556666:role/batch-*", "owner": "data-team", "expires": "2026-12-31", "reason": "known, ticket DATA-12"},
        {"id": "old", "bucket": "legacy-*", "owner": "ops", "expires": "2026-01-01"},
        {"id": "no-key-policy", "code": "KEY_POLICY_NO_ALLOW", "account": "111122223333", "owner": "sec", "expires": "2027-01-01"}
    ]"#;

    #[test]
    fn defaults_suppress_aws_service_probes() {
        let rules = Rules {
            defaults: true,
            configured: Vec::new(),
        };
        let mut config = req(
            "arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForConfig/s",
            "b",
        );
        config.role_arn = Some(
            "arn:aws:iam::111122223333:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig".into(),
        );
        assert_eq!(
            rules.check_early(&config, "2026-06-01").suppressed,
            Some(Suppression::Default("aws-config"))
        );
        let mut cloudfront = req("arn:aws:iam::111122223333:root", "b");
        cloudfront.principal = Principal::Service("cloudfront.amazonaws.com".into());
        assert_eq!(
            rules.check_early(&cloudfront, "2026-06-01").suppressed,
            Some(Suppression::Default("cloudfront-origin-access"))
        );
        let oai = req(
            "arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity E2QWRUHEXAMPLE",
            "b",
        );
        assert_eq!(
            rules
                .check_early(&oai, "2026-06-01")
                .suppressed
                .map(|s| s.counter()),
            Some("default:cloudfront-origin-access".into())
        );
        let person = req("arn:aws:sts::444455556666:assumed-role/reader/s", "b");
        assert_eq!(rules.check_early(&person, "2026-06-01"), Check::default());
        let off = Rules {
            defaults: false,
            configured: Vec::new(),
        };
        assert_eq!(off.check_early(&config, "2026-06-01"), Check::default());
    }

    #[test]
    fn configured_rules_match_by_pattern_code_and_account_until_they_expire() {
        let rules = Rules::parse(RULES, "S3KA_SUPPRESSIONS", false).unwrap();
        let batch = req(
            "arn:aws:sts::444455556666:assumed-role/batch-nightly/s",
            "data",
        );
        assert_eq!(
            rules.check_early(&batch, "2026-06-01").suppressed,
            Some(Suppression::Rule("batch-retry".into()))
        );
        // The last day still applies; the day after, it says it expired.
        assert!(rules.check_early(&batch, "2026-12-31").suppressed.is_some());
        let after = rules.check_early(&batch, "2027-01-01");
        assert_eq!(after.suppressed, None);
        assert_eq!(after.expired, ["batch-retry"]);
        let legacy = req(
            "arn:aws:sts::444455556666:assumed-role/reader/s",
            "legacy-logs",
        );
        let c = rules.check_early(&legacy, "2026-06-01");
        assert_eq!((c.suppressed, c.expired), (None, vec!["old".to_owned()]));
        // A code rule waits for the diagnosis.
        let reader = req("arn:aws:sts::444455556666:assumed-role/reader/s", "data");
        assert_eq!(rules.check_early(&reader, "2026-06-01").suppressed, None);
        let mut owned = reader.clone();
        owned.resource_account = Some("111122223333".into());
        assert_eq!(
            rules
                .check(&owned, &["KEY_POLICY_NO_ALLOW".into()], "2026-06-01")
                .suppressed,
            Some(Suppression::Rule("no-key-policy".into()))
        );
        assert_eq!(
            rules
                .check(&owned, &["BUCKET_POLICY_NO_ALLOW".into()], "2026-06-01")
                .suppressed,
            None
        );
    }

    #[test]
    fn bad_rules_name_the_path() {
        for (text, path) in [
            ("{}", "$"),
            (
                r#"[{"id": "a", "owner": "o", "expires": "2026-01-01"}]"#,
                "$[0]",
            ),
            (
                r#"[{"id": "a", "bucket": "b", "owner": " ", "expires": "2026-01-01"}]"#,
                "$[0].owner",
            ),
            (
                r#"[{"id": "a", "bucket": "b", "owner": "o", "expires": "soon"}]"#,
                "$[0].expires",
            ),
            (r#"[{"id": "a", "bucket": "b", "owner": "o"}]"#, "$[0]"),
            (
                r#"[{"id": "a", "bucket": "b", "owner": "o", "expires": "2026-01-01", "x": 1}]"#,
                "$[0]",
            ),
        ] {
            let e = Rules::parse(text, "S3KA_SUPPRESSIONS", true).unwrap_err();
            assert_eq!(e.path, path, "{text}: {e}");
            assert!(e.to_string().starts_with("S3KA_SUPPRESSIONS: "), "{e}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob("a*", "abc"));
        assert!(glob("*c", "abc"));
        assert!(glob("a*c", "abc"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXc"));
        assert!(glob("*", ""));
        assert!(glob("abc", "abc"));
        assert!(!glob("abc", "abcd"));
        assert!(!glob("ab*ab", "ab"));
    }
}

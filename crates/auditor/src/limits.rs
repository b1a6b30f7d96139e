//! Size bounds on input, in one place: the CLI's file readers, the event parser and the
//! snapshot's policy parser all take their numbers from here (docs/design.md, *Size bounds*).
//!
//! The bounds are AWS's own wherever AWS has one:
//!
//! * an event: 256 KB, the largest event EventBridge accepts
//!   (<https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html>, "The
//!   maximum size for a PutEvents event entry is 256 KB");
//! * a policy: the documented limit for its kind ([`PolicyLimit`], each variant cites its page);
//! * a whole input file (snapshot, event file, explain input): no AWS limit exists, so a
//!   generous [`DEFAULT_MAX_INPUT_BYTES`] that the CLI's `--max-input-bytes` raises.
//!
//! Sizes are measured on the parsed JSON value by [`json_size`], which is a *lower bound* of
//! every way AWS may count the text it stored (whitespace dropped, escapes decoded, a number
//! counted as one character): a document this module calls oversized is one AWS would have
//! refused however it counts, and a document near the limit is never refused wrongly.

use std::fmt;

use serde_json::Value;

/// The largest event EventBridge accepts, in bytes (256 KB): a CloudTrail record or an
/// EventBridge event above it cannot have been delivered by AWS.
/// <https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html>
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// The default bound on one input file the CLI reads (snapshot, event or trail log file,
/// explain input), checked on the file's metadata before it is read: 64 MiB, generous for the
/// snapshot of a large account (`get-account-authorization-details` of thousands of roles is a
/// few MiB) and a trail log file. `--max-input-bytes` raises it.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// How AWS counts a policy's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// UTF-8 bytes.
    Bytes,
    /// Characters (IAM and Organizations count characters).
    Characters,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::Characters => "characters",
        }
    }
}

/// A kind of policy with a documented size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyLimit {
    /// A bucket policy: 20 KB.
    /// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-iam-policies.html>
    /// ("Bucket policies are limited to 20 KB in size").
    BucketPolicy,
    /// A KMS key policy: 32 KB (32,768 bytes), not adjustable.
    /// <https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html> and
    /// <https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html>.
    KeyPolicy,
    /// A customer managed policy (also as a permissions boundary): 6,144 characters, not
    /// counting whitespace. <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html>
    ManagedPolicy,
    /// All inline policies of one role together: 10,240 characters (IAM quotas page).
    RoleInline,
    /// All inline policies of one user together: 2,048 characters (IAM quotas page).
    UserInline,
    /// All inline policies of one group together: 5,120 characters (IAM quotas page).
    GroupInline,
    /// A role's trust policy: 2,048 characters by default, adjustable to at most 8,192 (IAM
    /// quotas page, "Role trust policy length"). A snapshot does not say what the account's
    /// quota is, so only the most any account can have is a bound.
    TrustPolicy,
    /// A session policy: "The plaintext that you use for both inline and managed session
    /// policies can't exceed 2,048 characters".
    /// <https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html>
    SessionPolicy,
    /// A service control policy: 5,120 characters.
    /// <https://docs.aws.amazon.com/organizations/latest/userguide/orgs_reference_limits.html>
    Scp,
    /// A resource control policy: 5,120 characters (same page as [`PolicyLimit::Scp`]).
    Rcp,
    /// A VPC endpoint policy: 20,480 characters, whitespace included (counted here without
    /// it, as every limit: a lower bound).
    /// <https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html>
    VpcEndpointPolicy,
}

const IAM_QUOTAS: &str =
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html";
const ORG_QUOTAS: &str =
    "https://docs.aws.amazon.com/organizations/latest/userguide/orgs_reference_limits.html";

impl PolicyLimit {
    /// The largest size AWS stores.
    pub fn max(self) -> usize {
        match self {
            PolicyLimit::BucketPolicy => 20 * 1024,
            PolicyLimit::KeyPolicy => 32 * 1024,
            PolicyLimit::ManagedPolicy => 6_144,
            PolicyLimit::RoleInline => 10_240,
            PolicyLimit::UserInline | PolicyLimit::SessionPolicy => 2_048,
            PolicyLimit::GroupInline | PolicyLimit::Scp | PolicyLimit::Rcp => 5_120,
            PolicyLimit::TrustPolicy => 8_192,
            PolicyLimit::VpcEndpointPolicy => 20_480,
        }
    }

    /// What the limit counts.
    pub fn unit(self) -> Unit {
        match self {
            PolicyLimit::BucketPolicy | PolicyLimit::KeyPolicy => Unit::Bytes,
            _ => Unit::Characters,
        }
    }

    /// What the limit applies to, for messages.
    pub fn what(self) -> &'static str {
        match self {
            PolicyLimit::BucketPolicy => "a bucket policy",
            PolicyLimit::KeyPolicy => "a KMS key policy",
            PolicyLimit::ManagedPolicy => "a managed policy",
            PolicyLimit::RoleInline => "the inline policies of a role together",
            PolicyLimit::UserInline => "the inline policies of a user together",
            PolicyLimit::GroupInline => "the inline policies of a group together",
            PolicyLimit::TrustPolicy => "a role trust policy (the most a quota increase allows)",
            PolicyLimit::SessionPolicy => "a session policy",
            PolicyLimit::Scp => "a service control policy",
            PolicyLimit::Rcp => "a resource control policy",
            PolicyLimit::VpcEndpointPolicy => "a VPC endpoint policy",
        }
    }

    /// The AWS documentation page that states the limit.
    pub fn source(self) -> &'static str {
        match self {
            PolicyLimit::BucketPolicy => {
                "https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-iam-policies.html"
            }
            PolicyLimit::KeyPolicy => {
                "https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html"
            }
            PolicyLimit::ManagedPolicy
            | PolicyLimit::RoleInline
            | PolicyLimit::UserInline
            | PolicyLimit::GroupInline
            | PolicyLimit::TrustPolicy => IAM_QUOTAS,
            PolicyLimit::SessionPolicy => {
                "https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html"
            }
            PolicyLimit::Scp | PolicyLimit::Rcp => ORG_QUOTAS,
            PolicyLimit::VpcEndpointPolicy => {
                "https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html"
            }
        }
    }

    /// The size of `document` as this limit counts it (a lower bound, see [`json_size`];
    /// whitespace is never counted).
    pub fn measure(self, document: &Value) -> usize {
        json_size(document, self.unit(), false)
    }

    /// `Err` with the measured size when `size` is over the limit.
    pub fn check_size(self, size: usize) -> Result<(), Oversize> {
        if size > self.max() {
            Err(Oversize { size, limit: self })
        } else {
            Ok(())
        }
    }

    /// [`PolicyLimit::measure`] then [`PolicyLimit::check_size`].
    pub fn check(self, document: &Value) -> Result<(), Oversize> {
        self.check_size(self.measure(document))
    }
}

/// A policy over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversize {
    /// The measured size (a lower bound of AWS's count).
    pub size: usize,
    /// The limit it exceeds.
    pub limit: PolicyLimit,
}

impl fmt::Display for Oversize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = self.limit.unit().name();
        write!(
            f,
            "{} {unit} without whitespace, over the {} {unit} AWS allows for {} ({})",
            thousands(self.size),
            thousands(self.limit.max()),
            self.limit.what(),
            self.limit.source()
        )
    }
}

/// A lower bound of the length of `v` written as JSON, in `unit`: structural characters, keys
/// and string contents as they decode (an escape counts as the character it stands for), a
/// number as one character, `true`/`false`/`null` as written. With `whitespace == false`,
/// whitespace inside strings is not counted either (IAM "doesn't count white space"); outside
/// strings it never is. No text AWS could have stored for `v` is shorter.
pub fn json_size(v: &Value, unit: Unit, whitespace: bool) -> usize {
    let text = |s: &str| -> usize {
        let counted = s.chars().filter(|c| whitespace || !c.is_whitespace());
        match unit {
            Unit::Bytes => counted.map(char::len_utf8).sum(),
            Unit::Characters => counted.count(),
        }
    };
    match v {
        Value::Null | Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(_) => 1,
        Value::String(s) => text(s).saturating_add(2),
        Value::Array(items) => items
            .iter()
            .map(|i| json_size(i, unit, whitespace).saturating_add(1))
            .fold(2, usize::saturating_add)
            .saturating_sub(usize::from(!items.is_empty())),
        Value::Object(members) => members
            .iter()
            .map(|(k, v)| {
                // "key": value,
                text(k)
                    .saturating_add(4)
                    .saturating_add(json_size(v, unit, whitespace))
            })
            .fold(2, usize::saturating_add)
            .saturating_sub(usize::from(!members.is_empty())),
    }
}

/// The size of an event (a CloudTrail record or an EventBridge envelope), in bytes.
pub fn event_size(v: &Value) -> usize {
    json_size(v, Unit::Bytes, true)
}

/// An integer with its digits grouped by thousands: `12345` as `12,345`.
pub fn thousands(n: impl fmt::Display) -> String {
    let digits = n.to_string();
    let groups: Vec<String> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|g| String::from_utf8_lossy(g).into_owned())
        .collect();
    groups.join(",")
}

/// The oversized policies of an `explain` input (docs/explain-format.md), as
/// `(JSON path, what is wrong)`. The explain input is written by hand, so these are
/// warnings, not errors (docs/design.md, *Size bounds*): identity policies are held to the
/// largest identity limit (a role's inline policies, 10,240 characters) because the input does
/// not say whether a policy is inline or managed, and the resource policy to the limit of the
/// service the request calls (a bucket policy for `s3:`, a key policy for `kms:`).
pub fn explain_warnings(input: &Value) -> Vec<(String, Oversize)> {
    let mut out = Vec::new();
    let Some(policies) = input.get("policies") else {
        return out;
    };
    let action = input
        .get("request")
        .and_then(|r| r.get("action"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let resource_limit = if action.starts_with("kms:") {
        PolicyLimit::KeyPolicy
    } else {
        PolicyLimit::BucketPolicy
    };
    let mut check = |path: String, doc: &Value, limit: PolicyLimit| {
        let doc = crate::snapshot::decode_policy_document(doc).unwrap_or_else(|| doc.clone());
        if let Err(e) = limit.check(&doc) {
            out.push((path, e));
        }
    };
    let single = [
        ("resource", resource_limit),
        ("permissions_boundary", PolicyLimit::ManagedPolicy),
        ("session", PolicyLimit::SessionPolicy),
        ("vpc_endpoint", PolicyLimit::VpcEndpointPolicy),
    ];
    for (key, limit) in single {
        if let Some(doc) = policies.get(key).filter(|d| !d.is_null()) {
            check(format!("policies.{key}"), doc, limit);
        }
    }
    if let Some(Value::Array(items)) = policies.get("identity") {
        for (i, doc) in items.iter().enumerate() {
            check(
                format!("policies.identity[{i}]"),
                doc,
                PolicyLimit::RoleInline,
            );
        }
    }
    for (key, limit) in [("scp", PolicyLimit::Scp), ("rcp", PolicyLimit::Rcp)] {
        if let Some(Value::Array(levels)) = policies.get(key) {
            for (l, level) in levels.iter().enumerate() {
                if let Value::Array(items) = level {
                    for (i, doc) in items.iter().enumerate() {
                        check(format!("policies.{key}[{l}][{i}]"), doc, limit);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_size_is_the_compact_length_for_plain_documents() {
        let v = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "kms:Decrypt"]}, true, null, false]});
        let compact = serde_json::to_string(&v).unwrap();
        assert_eq!(json_size(&v, Unit::Bytes, true), compact.len());
        assert_eq!(json_size(&v, Unit::Characters, false), compact.len());
        assert_eq!(json_size(&json!([]), Unit::Bytes, true), 2);
        assert_eq!(json_size(&json!({}), Unit::Bytes, true), 2);
    }

    #[test]
    fn json_size_is_a_lower_bound() {
        // Whitespace inside strings is left out when asked, a number is one character, and a
        // non-ASCII character is one character but two bytes.
        let v = json!({"a b": "x y", "n": 12345, "é": "é"});
        let compact = serde_json::to_string(&v).unwrap();
        assert_eq!(json_size(&v, Unit::Bytes, true), compact.len() - 4);
        assert_eq!(json_size(&v, Unit::Bytes, false), compact.len() - 6);
        assert_eq!(
            json_size(&v, Unit::Characters, true),
            compact.chars().count() - 4
        );
    }

    #[test]
    fn limits_are_the_documented_ones() {
        assert_eq!(PolicyLimit::BucketPolicy.max(), 20_480);
        assert_eq!(PolicyLimit::KeyPolicy.max(), 32_768);
        assert_eq!(PolicyLimit::ManagedPolicy.max(), 6_144);
        assert_eq!(PolicyLimit::RoleInline.max(), 10_240);
        assert_eq!(PolicyLimit::UserInline.max(), 2_048);
        assert_eq!(PolicyLimit::GroupInline.max(), 5_120);
        assert_eq!(PolicyLimit::Scp.max(), 5_120);
        assert_eq!(PolicyLimit::Rcp.max(), 5_120);
        assert_eq!(PolicyLimit::SessionPolicy.max(), 2_048);
        assert_eq!(PolicyLimit::TrustPolicy.max(), 8_192);
        assert_eq!(MAX_EVENT_BYTES, 262_144);
    }

    #[test]
    fn check_names_size_limit_and_page() {
        let doc = json!({"Statement": "x".repeat(20_480)});
        let err = PolicyLimit::BucketPolicy.check(&doc).unwrap_err();
        assert_eq!(err.size, 20_480 + 16);
        assert_eq!(
            err.to_string(),
            "20,496 bytes without whitespace, over the 20,480 bytes AWS allows for a bucket policy (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-iam-policies.html)"
        );
        assert_eq!(PolicyLimit::KeyPolicy.check(&doc), Ok(()));
        // Exactly at the limit is allowed.
        assert_eq!(PolicyLimit::Scp.check_size(5_120), Ok(()));
        assert!(PolicyLimit::Scp.check_size(5_121).is_err());
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0u32), "0");
        assert_eq!(thousands(999u32), "999");
        assert_eq!(thousands(1_000u32), "1,000");
        assert_eq!(thousands(262_144u32), "262,144");
        assert_eq!(thousands(67_108_864u64), "67,108,864");
    }

    #[test]
    fn explain_warnings_use_the_request_service() {
        let big = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "x".repeat(25_000)}]});
        let s3 = json!({"request": {"action": "s3:GetObject"}, "policies": {"resource": big, "identity": [big], "scp": [[{}, big]]}});
        let warnings = explain_warnings(&s3);
        let paths: Vec<_> = warnings.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "policies.resource",
                "policies.identity[0]",
                "policies.scp[0][1]"
            ]
        );
        assert_eq!(warnings[0].1.limit, PolicyLimit::BucketPolicy);
        let kms = json!({"request": {"action": "kms:Decrypt"}, "policies": {"resource": big}});
        // 25,000 bytes fit in a key policy.
        assert!(explain_warnings(&kms).is_empty());
    }
}

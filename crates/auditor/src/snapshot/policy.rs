//! Policy documents inside the snapshot: parsing through the engine, human names, pointers.

use iam_eval::{Json, Policy, PolicyKind};
use serde_json::Value;

use super::SnapshotError;
use crate::limits::PolicyLimit;
use crate::reader::{reject_duplicate_keys, Node, PathError};

/// A parsed policy document with a human name and its place in the snapshot.
///
/// `source` is the fact; `policy` and `document` are what it says, and `name` and `pointer`
/// say where it sits. Two policies are equal when they hold the same `source` under the same
/// name: `pointer` locates the policy in one particular JSON text, and is left out of the
/// comparison so that a snapshot equals itself written and read back.
#[derive(Debug, Clone)]
pub struct NamedPolicy {
    /// What a person calls it: `bucket policy of doc-example-bucket`, `inline policy
    /// ReadReports of role reader`, or the managed policy ARN.
    pub name: String,
    /// The checked policy.
    pub policy: Policy,
    /// RFC 6901 JSON Pointer of the document inside the snapshot, so a fix can replace it
    /// (with a JSON object; the document may have been stored as a string). Empty for a
    /// policy built with [`NamedPolicy::new`] until the snapshot is written and read back.
    pub pointer: String,
    /// The document as a JSON object, decoded from a string or URL-encoded string if it was
    /// stored that way: the base a fix patches.
    pub document: Value,
    /// The value exactly as the snapshot holds it at the policy's key (`policy`,
    /// `PolicyDocument`, `Document`, `AssumeRolePolicyDocument`, an SCP/RCP level entry): an
    /// object, a JSON string, a URL-encoded string, or the `get-bucket-policy`,
    /// `get-key-policy` or `describe-policy` output it was pasted as. The writer
    /// ([`super::write`]) writes it back unchanged.
    pub source: Value,
    /// `PolicyName` of an inline policy (`RolePolicyList`, `UserPolicyList`,
    /// `GroupPolicyList`); `None` for every other policy.
    pub policy_name: Option<String>,
}

impl PartialEq for NamedPolicy {
    fn eq(&self, other: &NamedPolicy) -> bool {
        // `pointer` is left out on purpose (see the type's documentation).
        self.name == other.name
            && self.source == other.source
            && self.policy_name == other.policy_name
            && self.policy == other.policy
            && self.document == other.document
    }
}

impl NamedPolicy {
    /// A policy that was not read from a snapshot document (a collector builds it from an AWS
    /// read): `source` in any form a snapshot accepts, checked under the element rules of
    /// `kind`. Errors carry the JSON path inside `source` (`$` for the value itself). No size
    /// limit applies (the constructors below apply their kind's).
    pub fn new(
        name: impl Into<String>,
        source: Value,
        kind: PolicyKind,
    ) -> Result<NamedPolicy, SnapshotError> {
        parse_policy(&Node::root(&source), kind, name.into(), None).map_err(SnapshotError::from)
    }

    fn limited(
        name: String,
        source: Value,
        kind: PolicyKind,
        limit: PolicyLimit,
    ) -> Result<NamedPolicy, SnapshotError> {
        parse_policy(&Node::root(&source), kind, name, Some(limit)).map_err(SnapshotError::from)
    }

    /// An inline policy of a role, user or group (`owner_kind` is `role`, `user` or `group`),
    /// named as the snapshot reader names it.
    pub fn inline(
        owner_kind: &str,
        owner: &str,
        policy_name: &str,
        source: Value,
    ) -> Result<NamedPolicy, SnapshotError> {
        let mut named = NamedPolicy::limited(
            inline_name(owner_kind, owner, policy_name),
            source,
            PolicyKind::Identity,
            inline_limit(owner_kind),
        )?;
        named.policy_name = Some(policy_name.to_owned());
        Ok(named)
    }

    /// A bucket's policy (`get-bucket-policy`), named as the snapshot reader names it.
    pub fn bucket_policy(bucket: &str, source: Value) -> Result<NamedPolicy, SnapshotError> {
        NamedPolicy::limited(
            bucket_policy_name(bucket),
            source,
            PolicyKind::Resource,
            PolicyLimit::BucketPolicy,
        )
    }

    /// A key's policy (`get-key-policy`), named as the snapshot reader names it.
    pub fn key_policy(key_arn: &str, source: Value) -> Result<NamedPolicy, SnapshotError> {
        NamedPolicy::limited(
            key_policy_name(key_arn),
            source,
            PolicyKind::Resource,
            PolicyLimit::KeyPolicy,
        )
    }

    /// A role's trust policy (`AssumeRolePolicyDocument`), named as the reader names it.
    pub fn trust_policy(role: &str, source: Value) -> Result<NamedPolicy, SnapshotError> {
        NamedPolicy::limited(
            trust_policy_name(role),
            source,
            PolicyKind::Resource,
            PolicyLimit::TrustPolicy,
        )
    }

    /// The default version's document of a managed policy, named by the policy ARN.
    pub fn managed(policy_arn: &str, source: Value) -> Result<NamedPolicy, SnapshotError> {
        NamedPolicy::limited(
            policy_arn.to_owned(),
            source,
            PolicyKind::Identity,
            PolicyLimit::ManagedPolicy,
        )
    }
}

/// The limit on the inline policies of a `role`, `user` or `group` (all of them together).
pub(crate) fn inline_limit(owner_kind: &str) -> PolicyLimit {
    match owner_kind {
        "user" => PolicyLimit::UserInline,
        "group" => PolicyLimit::GroupInline,
        _ => PolicyLimit::RoleInline,
    }
}

/// The human name of an inline policy.
pub(crate) fn inline_name(owner_kind: &str, owner: &str, policy_name: &str) -> String {
    format!("inline policy {policy_name} of {owner_kind} {owner}")
}

/// The human name of a bucket policy.
pub(crate) fn bucket_policy_name(bucket: &str) -> String {
    format!("bucket policy of {bucket}")
}

/// The human name of a key policy.
pub(crate) fn key_policy_name(key_arn: &str) -> String {
    format!("key policy of {key_arn}")
}

/// The human name of a role's trust policy.
pub(crate) fn trust_policy_name(role: &str) -> String {
    format!("trust policy of role {role}")
}

/// Parses a policy value in any of the forms AWS output uses: a JSON object, a JSON string,
/// a URL-encoded JSON string, or the `{"Policy": ...}` wrapper printed by `get-bucket-policy`
/// and `get-key-policy`. `kind` applies the element rules of the place the document was found
/// (a bucket or key policy needs `Principal`, an identity policy must not have one).
///
/// A document over `limit` is an error before the engine parses it: AWS refuses to store such
/// a policy, so a snapshot that holds one is not a copy of an account (docs/design.md, *Size
/// bounds*).
pub(crate) fn parse_policy(
    node: &Node<'_>,
    kind: PolicyKind,
    name: String,
    limit: Option<PolicyLimit>,
) -> Result<NamedPolicy, PathError> {
    let source = node.v.clone();
    let node = unwrap_get_policy_output(node)?;
    if let Some(limit) = limit {
        if let Some(document) = decode_document(node.v) {
            limit.check(&document).map_err(|e| {
                node.err(format!(
                    "{name} is {e}; AWS would have refused to store it, so this is not a copy of a real account"
                ))
            })?;
        }
    }
    if let Value::String(text) = node.v {
        // A document stored as a string was not seen by the snapshot's own duplicate check;
        // check it the same way so both forms fail with the same path.
        if let Some(json) = decode_text(text) {
            reject_duplicate_keys(&json, &node.loc)?;
        }
    }
    let policy = Policy::parse(&Json::from_value(node.v), kind).map_err(|e| {
        let message = e.to_string();
        // The engine's Display already starts with its path; keep only the message so the
        // path is not printed twice once it is qualified with ours.
        let prefix = format!("{}: ", e.path());
        let message = message
            .strip_prefix(&prefix)
            .map(str::to_owned)
            .unwrap_or(message);
        node.loc.err_below(e.path(), message)
    })?;
    let document = decode_document(node.v)
        .ok_or_else(|| node.err("the policy document is not JSON, nor URL-encoded JSON"))?;
    Ok(NamedPolicy {
        name,
        policy,
        pointer: node.loc.pointer(),
        document,
        source,
        policy_name: None,
    })
}

/// `get-bucket-policy` prints `{"Policy": "<document>"}` and `get-key-policy` adds
/// `"PolicyName"`; users paste that output as is, so look through it.
fn unwrap_get_policy_output<'a>(node: &Node<'a>) -> Result<Node<'a>, PathError> {
    if let Value::Object(map) = node.v {
        if !map.contains_key("Statement") && map.contains_key("Policy") {
            node.only_keys(&["Policy", "PolicyName"])?;
            return node.req("Policy");
        }
    }
    Ok(node.clone())
}

/// Document text as duplicate-preserving JSON: plain JSON, or URL-encoded JSON (IAM returns
/// documents URL-encoded per RFC 3986, so `+` is not a space). `None` when it is neither;
/// the engine then reports why.
fn decode_text(text: &str) -> Option<Json> {
    Json::parse(text).ok().or_else(|| {
        let decoded = percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .ok()?;
        Json::parse(&decoded).ok()
    })
}

/// The document as a JSON value: objects as they are, strings parsed as JSON or, failing
/// that, percent-decoded first (IAM returns documents URL-encoded per RFC 3986, so `+` is
/// not a space).
pub(crate) fn decode_document(v: &Value) -> Option<Value> {
    match v {
        Value::Object(_) => Some(v.clone()),
        Value::String(text) => serde_json::from_str::<Value>(text)
            .ok()
            .or_else(|| {
                let decoded = percent_encoding::percent_decode_str(text)
                    .decode_utf8()
                    .ok()?;
                serde_json::from_str::<Value>(&decoded).ok()
            })
            .filter(Value::is_object),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn decodes_objects_strings_and_url_encoded_strings() {
        let doc = json!({"Version": "2012-10-17", "Statement": []});
        assert_eq!(decode_document(&doc), Some(doc.clone()));
        assert_eq!(
            decode_document(&Value::String(doc.to_string())),
            Some(doc.clone())
        );
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(decode_document(&json!(encoded)), Some(doc));
        assert_eq!(decode_document(&json!("[1]")), None);
        assert_eq!(decode_document(&json!(3)), None);
    }

    #[test]
    fn percent_in_a_json_string_document_is_kept() {
        let doc = json!({"Statement": [{"Sid": "a%20b"}]});
        assert_eq!(decode_document(&Value::String(doc.to_string())), Some(doc));
    }
}

//! Policy documents inside the snapshot: parsing through the engine, human names, pointers.

use iam_eval::{Json, Policy, PolicyKind};
use serde_json::Value;

use crate::reader::{reject_duplicate_keys, Node, PathError};

/// A parsed policy document with a human name and its place in the snapshot.
#[derive(Debug, Clone)]
pub struct NamedPolicy {
    /// What a person calls it: `bucket policy of doc-example-bucket`, `inline policy
    /// ReadReports of role reader`, or the managed policy ARN.
    pub name: String,
    /// The checked policy.
    pub policy: Policy,
    /// RFC 6901 JSON Pointer of the document inside the snapshot, so a fix can replace it
    /// (with a JSON object; the document may have been stored as a string).
    pub pointer: String,
    /// The document as a JSON object, decoded from a string or URL-encoded string if it was
    /// stored that way: the base a fix patches.
    pub document: Value,
}

/// Parses a policy value in any of the forms AWS output uses: a JSON object, a JSON string,
/// a URL-encoded JSON string, or the `{"Policy": ...}` wrapper printed by `get-bucket-policy`
/// and `get-key-policy`. `kind` applies the element rules of the place the document was found
/// (a bucket or key policy needs `Principal`, an identity policy must not have one).
pub(crate) fn parse_policy(
    node: &Node<'_>,
    kind: PolicyKind,
    name: String,
) -> Result<NamedPolicy, PathError> {
    let node = unwrap_get_policy_output(node)?;
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

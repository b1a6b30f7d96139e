//! A cursor over a `serde_json::Value` that knows where it is, so that every error names the
//! exact JSON path (`accounts.111122223333.s3.b.policy`, `Records[2].eventName`) and every
//! policy knows its JSON Pointer inside the snapshot. Shared by the snapshot and event
//! parsers, whose public errors are built from [`PathError`].

use std::collections::HashSet;

use iam_eval::Json;
use serde_json::{Map, Value};

use crate::json_patch;

/// A problem at a JSON path; converted into the public error of each parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathError {
    pub(crate) path: String,
    pub(crate) message: String,
}

impl PathError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> PathError {
        PathError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// One step from a value to a child.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// A location inside the snapshot document.
#[derive(Debug, Clone, Default)]
pub(crate) struct Loc {
    segs: Vec<Seg>,
}

impl Loc {
    pub(crate) fn key(&self, key: &str) -> Loc {
        let mut segs = self.segs.clone();
        segs.push(Seg::Key(key.to_owned()));
        Loc { segs }
    }

    pub(crate) fn index(&self, index: usize) -> Loc {
        let mut segs = self.segs.clone();
        segs.push(Seg::Index(index));
        Loc { segs }
    }

    /// The dotted JSON path, `accounts.111122223333.s3.doc-example-bucket.policy`; keys that
    /// would be ambiguous in that syntax (object keys with `.`, brackets, quotes or spaces) are
    /// written as `objects["reports/q1.csv"]`. The document itself is `$`.
    pub(crate) fn path(&self) -> String {
        let mut out = String::new();
        for seg in &self.segs {
            match seg {
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
                Seg::Key(k) if is_plain(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Seg::Key(k) => {
                    let quoted = serde_json::to_string(k).unwrap_or_else(|_| format!("\"{k}\""));
                    out.push_str(&format!("[{quoted}]"));
                }
            }
        }
        if out.is_empty() {
            "$".to_owned()
        } else {
            out
        }
    }

    /// The RFC 6901 JSON Pointer of this location.
    pub(crate) fn pointer(&self) -> String {
        json_patch::pointer(self.segs.iter().map(|s| match s {
            Seg::Key(k) => k.clone(),
            Seg::Index(i) => i.to_string(),
        }))
    }

    /// An error at this location.
    pub(crate) fn err(&self, message: impl Into<String>) -> PathError {
        PathError::new(self.path(), message)
    }

    /// An error at `rest` below this location (`rest` is a path relative to here, as the
    /// engine reports it: `Statement[0].Effect`).
    pub(crate) fn err_below(&self, rest: &str, message: impl Into<String>) -> PathError {
        let base = self.path();
        let path = if rest.is_empty() {
            base
        } else if base == "$" {
            rest.to_owned()
        } else if rest.starts_with('[') {
            format!("{base}{rest}")
        } else {
            format!("{base}.{rest}")
        };
        PathError::new(path, message)
    }
}

fn is_plain(key: &str) -> bool {
    !key.is_empty()
        && !key
            .chars()
            .any(|c| matches!(c, '.' | '[' | ']' | '"' | '\'') || c.is_whitespace())
}

/// A value together with its location.
#[derive(Debug, Clone)]
pub(crate) struct Node<'a> {
    pub(crate) v: &'a Value,
    pub(crate) loc: Loc,
}

impl<'a> Node<'a> {
    pub(crate) fn root(v: &'a Value) -> Node<'a> {
        Node {
            v,
            loc: Loc::default(),
        }
    }

    pub(crate) fn err(&self, message: impl Into<String>) -> PathError {
        self.loc.err(message)
    }

    pub(crate) fn obj(&self) -> Result<&'a Map<String, Value>, PathError> {
        self.v
            .as_object()
            .ok_or_else(|| self.err(format!("expected an object, found {}", kind(self.v))))
    }

    pub(crate) fn arr(&self) -> Result<Vec<Node<'a>>, PathError> {
        let items = self
            .v
            .as_array()
            .ok_or_else(|| self.err(format!("expected an array, found {}", kind(self.v))))?;
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| Node {
                v,
                loc: self.loc.index(i),
            })
            .collect())
    }

    /// The members of an object, in key order.
    pub(crate) fn members(&self) -> Result<Vec<(&'a str, Node<'a>)>, PathError> {
        Ok(self
            .obj()?
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    Node {
                        v,
                        loc: self.loc.key(k),
                    },
                )
            })
            .collect())
    }

    /// A member; `null` counts as absent because AWS output uses both for "not set".
    pub(crate) fn get(&self, key: &str) -> Result<Option<Node<'a>>, PathError> {
        Ok(match self.obj()?.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(Node {
                v,
                loc: self.loc.key(key),
            }),
        })
    }

    pub(crate) fn req(&self, key: &str) -> Result<Node<'a>, PathError> {
        self.get(key)?
            .ok_or_else(|| self.loc.key(key).err("missing required field"))
    }

    pub(crate) fn str(&self) -> Result<&'a str, PathError> {
        self.v
            .as_str()
            .ok_or_else(|| self.err(format!("expected a string, found {}", kind(self.v))))
    }

    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<String>, PathError> {
        self.get(key)?
            .map(|n| n.str().map(str::to_owned))
            .transpose()
    }

    pub(crate) fn req_str(&self, key: &str) -> Result<String, PathError> {
        self.req(key)?.str().map(str::to_owned)
    }

    pub(crate) fn bool_or(&self, key: &str, default: bool) -> Result<bool, PathError> {
        match self.get(key)? {
            None => Ok(default),
            Some(n) => {
                n.v.as_bool()
                    .ok_or_else(|| n.err(format!("expected a boolean, found {}", kind(n.v))))
            }
        }
    }

    /// A list of strings; absent is empty.
    pub(crate) fn str_list(&self, key: &str) -> Result<Vec<String>, PathError> {
        match self.get(key)? {
            None => Ok(Vec::new()),
            Some(n) => n
                .arr()?
                .into_iter()
                .map(|item| item.str().map(str::to_owned))
                .collect(),
        }
    }

    /// Rejects members outside `allowed`: used on our own wrapper objects, where an unknown
    /// key is almost always a typo that would otherwise silently drop a policy.
    pub(crate) fn only_keys(&self, allowed: &[&str]) -> Result<(), PathError> {
        for key in self.obj()?.keys() {
            if !allowed.contains(&key.as_str()) {
                let hint = match closest(key, allowed) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => format!(
                        "expected one of {}",
                        allowed
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                return Err(self
                    .loc
                    .key(key)
                    .err(format!("unknown key `{key}`; {hint}")));
            }
        }
        Ok(())
    }
}

/// Rejects a JSON object that gives one key twice, anywhere below `loc`: `serde_json::Value`
/// would silently keep the last value (a statement with `"Effect": "Deny", "Effect": "Allow"`
/// would read as `Allow`), so the document is ambiguous and must be fixed by its author. The
/// error names the path of the second occurrence (`...policy.Statement[0].Effect`).
pub(crate) fn reject_duplicate_keys(json: &Json, loc: &Loc) -> Result<(), PathError> {
    match json {
        Json::Object(members) => {
            let mut seen: HashSet<&str> = HashSet::with_capacity(members.len());
            for (key, value) in members {
                let at = loc.key(key);
                if !seen.insert(key.as_str()) {
                    return Err(at.err(format!(
                        "duplicate key `{key}`: an object may give each key once (JSON parsers disagree on which value wins)"
                    )));
                }
                reject_duplicate_keys(value, &at)?;
            }
            Ok(())
        }
        Json::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| reject_duplicate_keys(item, &loc.index(i))),
        Json::Null | Json::Bool(_) | Json::Number(_) | Json::String(_) => Ok(()),
    }
}

/// A short name of the JSON type, for error messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The allowed key within edit distance 2 of `key` (case-insensitive), if exactly one is.
fn closest<'k>(key: &str, allowed: &[&'k str]) -> Option<&'k str> {
    let key = key.to_lowercase();
    let mut best: Option<(usize, &'k str)> = None;
    for candidate in allowed {
        let d = edit_distance(&key, &candidate.to_lowercase());
        let better = match best {
            None => true,
            Some((best_distance, _)) => d < best_distance,
        };
        if d <= 2 && better {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev
                .get(j)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(usize::from(ca != *cb));
            let delete = prev
                .get(j + 1)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let insert = cur.get(j).copied().unwrap_or(usize::MAX).saturating_add(1);
            cur.push(substitute.min(delete).min(insert));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_quote_ambiguous_keys() {
        let loc = Loc::default()
            .key("accounts")
            .key("111122223333")
            .key("s3")
            .key("my.bucket")
            .key("objects")
            .key("reports/q1.csv")
            .key("Grants")
            .index(0);
        assert_eq!(
            loc.path(),
            r#"accounts.111122223333.s3["my.bucket"].objects["reports/q1.csv"].Grants[0]"#
        );
        assert_eq!(
            loc.pointer(),
            "/accounts/111122223333/s3/my.bucket/objects/reports~1q1.csv/Grants/0"
        );
        assert_eq!(Loc::default().path(), "$");
        assert_eq!(Loc::default().pointer(), "");
    }

    #[test]
    fn err_below_joins_engine_paths() {
        let loc = Loc::default().key("policy");
        assert_eq!(
            loc.err_below("Statement[0].Effect", "m").path,
            "policy.Statement[0].Effect"
        );
        assert_eq!(loc.err_below("[1]", "m").path, "policy[1]");
        assert_eq!(loc.err_below("", "m").path, "policy");
        assert_eq!(Loc::default().err_below("Statement", "m").path, "Statement");
    }

    #[test]
    fn unknown_keys_suggest_the_nearest() {
        let v = json!({"polcy": {}});
        let err = Node::root(&v).only_keys(&["policy", "region"]).unwrap_err();
        assert_eq!(
            err,
            PathError::new("polcy", "unknown key `polcy`; did you mean `policy`?")
        );
        let v = json!({"zzz": {}});
        let err = Node::root(&v).only_keys(&["policy", "region"]).unwrap_err();
        assert_eq!(
            err.message,
            "unknown key `zzz`; expected one of `policy`, `region`"
        );
    }

    #[test]
    fn null_members_are_absent() {
        let v = json!({"a": null, "b": "x"});
        let n = Node::root(&v);
        assert!(n.get("a").unwrap().is_none());
        assert_eq!(n.opt_str("b").unwrap().as_deref(), Some("x"));
        assert_eq!(
            n.req("a").unwrap_err(),
            PathError::new("a", "missing required field")
        );
    }

    #[test]
    fn duplicate_keys_are_rejected_at_their_path() {
        let j = Json::parse(r#"{"a": [{"x": 1}, {"y": 1, "z": {"q": 1, "q": 2}}]}"#).unwrap();
        let err = reject_duplicate_keys(&j, &Loc::default().key("doc")).unwrap_err();
        assert_eq!(err.path, "doc.a[1].z.q");
        assert!(
            err.message.starts_with("duplicate key `q`"),
            "{}",
            err.message
        );
        let same_key_in_two_objects = Json::parse(r#"{"a": {"k": 1}, "b": {"k": 1}}"#).unwrap();
        assert_eq!(
            reject_duplicate_keys(&same_key_in_two_objects, &Loc::default()),
            Ok(())
        );
    }

    #[test]
    fn edit_distance_counts_operations() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}

//! JSON Patch (RFC 6902) `add`, `remove` and `replace` over JSON Pointers (RFC 6901).
//!
//! Fixes are expressed as patches against the snapshot document: the diagnosis names the
//! pointer of a policy inside the snapshot (`NamedPolicy::pointer`), the fix replaces it, and
//! the verifier applies the patch to a copy of the snapshot and diagnoses again. The same
//! patches let the scenario corpus derive variants of one snapshot.
//!
//! Only the three operations a fix needs are supported; `move`, `copy` and `test` are
//! rejected by name rather than ignored, so a patch never half-applies silently.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

/// One RFC 6902 operation, serialized as `{"op": "add", "path": "/a/b", "value": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum PatchOp {
    /// Adds `value` at `path`: sets an object member (replacing it if present), inserts
    /// into an array before the given index, or appends with the index `-`.
    Add {
        /// JSON Pointer of the target location.
        path: String,
        /// The value to add.
        value: Value,
    },
    /// Removes the value at `path`, which must exist.
    Remove {
        /// JSON Pointer of the value to remove.
        path: String,
    },
    /// Replaces the value at `path`, which must exist.
    Replace {
        /// JSON Pointer of the value to replace.
        path: String,
        /// The new value.
        value: Value,
    },
}

impl PatchOp {
    /// The operation's JSON Pointer.
    pub fn path(&self) -> &str {
        match self {
            PatchOp::Add { path, .. }
            | PatchOp::Remove { path }
            | PatchOp::Replace { path, .. } => path,
        }
    }

    /// The operation's name as spelled in RFC 6902.
    pub fn name(&self) -> &'static str {
        match self {
            PatchOp::Add { .. } => "add",
            PatchOp::Remove { .. } => "remove",
            PatchOp::Replace { .. } => "replace",
        }
    }
}

/// Why a pointer could not be parsed or a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PatchError {
    /// The pointer is not valid RFC 6901 syntax.
    #[error("invalid JSON pointer `{pointer}`: {reason}")]
    InvalidPointer {
        /// The pointer as given.
        pointer: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A location the operation needs does not exist.
    #[error("`{op}` at `{pointer}`: nothing at `{missing}`")]
    NotFound {
        /// The operation name.
        op: &'static str,
        /// The operation's pointer.
        pointer: String,
        /// The shortest prefix of the pointer that does not exist.
        missing: String,
    },
    /// A pointer segment cannot address the value it is applied to.
    #[error("`{op}` at `{pointer}`: {reason}")]
    BadTarget {
        /// The operation name.
        op: &'static str,
        /// The operation's pointer.
        pointer: String,
        /// Why the segment does not fit the value.
        reason: String,
    },
    /// A patch document is not a list of supported operations.
    #[error("invalid patch operation {index}: {reason}")]
    InvalidOperation {
        /// Index of the operation in the patch.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// Builds a JSON Pointer from unescaped segments, escaping `~` as `~0` and `/` as `~1`.
///
/// `pointer(["accounts", "111122223333", "s3", "a/b"])` is `/accounts/111122223333/s3/a~1b`;
/// no segments give the empty pointer, which addresses the whole document.
pub fn pointer<I, S>(segments: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for segment in segments {
        out.push('/');
        out.push_str(&escape(segment.as_ref()));
    }
    out
}

/// Escapes one pointer segment (`~` → `~0`, `/` → `~1`).
pub fn escape(segment: &str) -> String {
    // `~` must be escaped first so that the `~` introduced by `~1` is not escaped again.
    segment.replace('~', "~0").replace('/', "~1")
}

/// Splits a JSON Pointer into unescaped segments.
pub fn parse_pointer(pointer: &str) -> Result<Vec<String>, PatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(PatchError::InvalidPointer {
            pointer: pointer.to_owned(),
            reason: "a non-empty pointer must start with `/`".to_owned(),
        });
    };
    rest.split('/')
        .map(|raw| {
            unescape(raw).ok_or_else(|| PatchError::InvalidPointer {
                pointer: pointer.to_owned(),
                reason: format!("segment `{raw}` has a `~` not followed by `0` or `1`"),
            })
        })
        .collect()
}

fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Reads a patch document (a JSON array of operations).
pub fn parse_patch(v: &Value) -> Result<Vec<PatchOp>, PatchError> {
    let Value::Array(items) = v else {
        return Err(PatchError::InvalidOperation {
            index: 0,
            reason: "a patch must be an array of operations".to_owned(),
        });
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            serde_json::from_value(item.clone()).map_err(|e| PatchError::InvalidOperation {
                index,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Applies every operation in order. The patch is atomic (RFC 6902 §5): when one operation
/// fails, `doc` is left exactly as it was.
pub fn apply(doc: &mut Value, ops: &[PatchOp]) -> Result<(), PatchError> {
    let mut work = doc.clone();
    for op in ops {
        apply_op(&mut work, op)?;
    }
    *doc = work;
    Ok(())
}

/// Applies one operation. On error `doc` is unchanged: every check happens before the
/// single mutation.
pub fn apply_op(doc: &mut Value, op: &PatchOp) -> Result<(), PatchError> {
    let name = op.name();
    let pointer_text = op.path();
    let segments = parse_pointer(pointer_text)?;
    let Some((last, parents)) = segments.split_last() else {
        // The empty pointer addresses the whole document.
        return match op {
            PatchOp::Add { value, .. } | PatchOp::Replace { value, .. } => {
                *doc = value.clone();
                Ok(())
            }
            PatchOp::Remove { .. } => Err(PatchError::BadTarget {
                op: name,
                pointer: String::new(),
                reason: "the whole document cannot be removed".to_owned(),
            }),
        };
    };

    let mut parent = &mut *doc;
    for (depth, segment) in parents.iter().enumerate() {
        let next = match parent {
            Value::Object(map) => map.get_mut(segment.as_str()),
            Value::Array(items) => match array_index(segment) {
                Some(i) => items.get_mut(i),
                None => {
                    return Err(bad_index(name, pointer_text, segment));
                }
            },
            _ => None,
        };
        parent = next.ok_or_else(|| PatchError::NotFound {
            op: name,
            pointer: pointer_text.to_owned(),
            missing: pointer(segments.iter().take(depth + 1)),
        })?;
    }

    let not_found = || PatchError::NotFound {
        op: name,
        pointer: pointer_text.to_owned(),
        missing: pointer_text.to_owned(),
    };
    match parent {
        Value::Object(map) => match op {
            PatchOp::Add { value, .. } => {
                map.insert(last.clone(), value.clone());
                Ok(())
            }
            PatchOp::Remove { .. } => map.remove(last.as_str()).map(|_| ()).ok_or_else(not_found),
            PatchOp::Replace { value, .. } => {
                let slot = map.get_mut(last.as_str()).ok_or_else(not_found)?;
                *slot = value.clone();
                Ok(())
            }
        },
        Value::Array(items) => {
            if let PatchOp::Add { value, .. } = op {
                // `-` names the position after the last element (append); an index equal to
                // the length is also accepted by RFC 6902 for `add`.
                let index = if last == "-" {
                    items.len()
                } else {
                    array_index(last).ok_or_else(|| bad_index(name, pointer_text, last))?
                };
                if index > items.len() {
                    return Err(PatchError::BadTarget {
                        op: name,
                        pointer: pointer_text.to_owned(),
                        reason: format!("index {index} is beyond the array length {}", items.len()),
                    });
                }
                items.insert(index, value.clone());
                return Ok(());
            }
            let index = array_index(last).ok_or_else(|| bad_index(name, pointer_text, last))?;
            if index >= items.len() {
                return Err(not_found());
            }
            match op {
                PatchOp::Remove { .. } => {
                    items.remove(index);
                }
                PatchOp::Replace { value, .. } | PatchOp::Add { value, .. } => {
                    if let Some(slot) = items.get_mut(index) {
                        *slot = value.clone();
                    }
                }
            }
            Ok(())
        }
        other => Err(PatchError::BadTarget {
            op: name,
            pointer: pointer_text.to_owned(),
            reason: format!(
                "`{}` is {}, which has no members",
                pointer(parents),
                kind(other)
            ),
        }),
    }
}

/// A pointer segment as an array index: decimal digits without leading zeros (RFC 6901 §4).
fn array_index(segment: &str) -> Option<usize> {
    let digits_only = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = segment.len() > 1 && segment.starts_with('0');
    if digits_only && !leading_zero {
        segment.parse().ok()
    } else {
        None
    }
}

fn bad_index(op: &'static str, pointer: &str, segment: &str) -> PatchError {
    PatchError::BadTarget {
        op,
        pointer: pointer.to_owned(),
        reason: format!("`{segment}` is not an array index"),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn add(path: &str, value: Value) -> PatchOp {
        PatchOp::Add {
            path: path.to_owned(),
            value,
        }
    }

    fn replace(path: &str, value: Value) -> PatchOp {
        PatchOp::Replace {
            path: path.to_owned(),
            value,
        }
    }

    fn remove(path: &str) -> PatchOp {
        PatchOp::Remove {
            path: path.to_owned(),
        }
    }

    #[test]
    fn pointer_escapes_tilde_before_slash() {
        assert_eq!(pointer(["a/b", "m~n", "~1"]), "/a~1b/m~0n/~01");
        assert_eq!(pointer(Vec::<String>::new()), "");
    }

    #[test]
    fn parse_pointer_round_trips_escapes() {
        let segments = parse_pointer("/a~1b/m~0n/~01/").unwrap();
        assert_eq!(segments, vec!["a/b", "m~n", "~1", ""]);
        assert_eq!(pointer(&segments), "/a~1b/m~0n/~01/");
    }

    #[test]
    fn parse_pointer_rejects_bad_syntax() {
        let err = parse_pointer("a/b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid JSON pointer `a/b`: a non-empty pointer must start with `/`"
        );
        let err = parse_pointer("/a~2").unwrap_err();
        assert!(err.to_string().contains("segment `a~2`"), "{err}");
    }

    #[test]
    fn add_sets_member_inserts_and_appends() {
        let mut doc = json!({"Statement": [{"Sid": "A"}, {"Sid": "C"}]});
        apply(
            &mut doc,
            &[
                add("/Statement/1", json!({"Sid": "B"})),
                add("/Statement/-", json!({"Sid": "D"})),
                add("/Version", json!("2012-10-17")),
            ],
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"Version": "2012-10-17",
                   "Statement": [{"Sid": "A"}, {"Sid": "B"}, {"Sid": "C"}, {"Sid": "D"}]})
        );
    }

    #[test]
    fn add_at_array_length_appends() {
        let mut doc = json!([1]);
        apply_op(&mut doc, &add("/1", json!(2))).unwrap();
        assert_eq!(doc, json!([1, 2]));
        let err = apply_op(&mut doc, &add("/5", json!(3))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`add` at `/5`: index 5 is beyond the array length 2"
        );
    }

    #[test]
    fn replace_and_remove_with_escaped_keys() {
        let mut doc = json!({"s3": {"a/b": {"policy": 1}, "m~n": 2}});
        apply(
            &mut doc,
            &[
                replace("/s3/a~1b/policy", json!({"x": 1})),
                remove("/s3/m~0n"),
            ],
        )
        .unwrap();
        assert_eq!(doc, json!({"s3": {"a/b": {"policy": {"x": 1}}}}));
    }

    #[test]
    fn replace_root() {
        let mut doc = json!({"a": 1});
        apply_op(&mut doc, &replace("", json!([1]))).unwrap();
        assert_eq!(doc, json!([1]));
        let err = apply_op(&mut doc, &remove("")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`remove` at ``: the whole document cannot be removed"
        );
    }

    #[test]
    fn remove_array_element_shifts() {
        let mut doc = json!({"l": [1, 2, 3]});
        apply_op(&mut doc, &remove("/l/0")).unwrap();
        assert_eq!(doc, json!({"l": [2, 3]}));
    }

    #[test]
    fn missing_targets_name_the_missing_prefix() {
        let mut doc = json!({"a": {"b": 1}});
        let err = apply_op(&mut doc, &replace("/a/c", json!(2))).unwrap_err();
        assert_eq!(err.to_string(), "`replace` at `/a/c`: nothing at `/a/c`");
        let err = apply_op(&mut doc, &add("/x/y/z", json!(2))).unwrap_err();
        assert_eq!(err.to_string(), "`add` at `/x/y/z`: nothing at `/x`");
        let err = apply_op(&mut doc, &remove("/a/b/c")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`remove` at `/a/b/c`: `/a/b` is a number, which has no members"
        );
    }

    #[test]
    fn array_indexes_must_be_canonical() {
        let mut doc = json!({"l": [1, 2]});
        let err = apply_op(&mut doc, &replace("/l/01", json!(0))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`replace` at `/l/01`: `01` is not an array index"
        );
        let err = apply_op(&mut doc, &remove("/l/-")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`remove` at `/l/-`: `-` is not an array index"
        );
        let err = apply_op(&mut doc, &remove("/l/2")).unwrap_err();
        assert_eq!(err.to_string(), "`remove` at `/l/2`: nothing at `/l/2`");
    }

    #[test]
    fn failed_patch_leaves_document_unchanged() {
        let mut doc = json!({"a": 1});
        let err = apply(&mut doc, &[replace("/a", json!(2)), remove("/nope")]).unwrap_err();
        assert!(matches!(err, PatchError::NotFound { .. }));
        assert_eq!(doc, json!({"a": 1}));
    }

    #[test]
    fn patch_documents_round_trip_through_serde() {
        let v = json!([{"op": "add", "path": "/a", "value": 1}, {"op": "remove", "path": "/b"}]);
        let ops = parse_patch(&v).unwrap();
        assert_eq!(ops, vec![add("/a", json!(1)), remove("/b")]);
        assert_eq!(serde_json::to_value(&ops).unwrap(), v);
        let err = parse_patch(&json!([{"op": "move", "from": "/a", "path": "/b"}])).unwrap_err();
        assert!(
            matches!(err, PatchError::InvalidOperation { index: 0, .. }),
            "{err}"
        );
    }
}

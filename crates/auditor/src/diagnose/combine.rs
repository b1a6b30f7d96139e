//! One fix for many paths: when a change breaks the reads of several principals (or of
//! several prefixes) for the same cause, each path's diagnosis proposes a statement naming
//! its own principal (or resource) in the same policy. A change alert should carry one fix
//! that restores them all: the statements are combined into one whose `Principal` (or
//! `Resource`) lists every path's, which grants exactly the union of what the separate
//! statements grant — only one element may differ, so no principal gains a resource another
//! path asked for. Whether the combined fix restores each path is then checked by
//! re-evaluation, like every fix (`crate::impact::group`).

use serde_json::Value;

use super::edit::Edit;
use super::findings::Fix;
use super::fix::compact;
use crate::snapshot::Snapshot;

/// The statement elements a combined fix may list several values of.
const MERGEABLE: &[&str] = &["Principal", "Resource"];

/// The fix restoring every path whose fix is one of `fixes` (one blocking cause, each path's
/// own fix): `fixes` itself when they are all the same command, else one statement listing
/// every path's principal or resource, when the fixes add a statement to the same policy and
/// differ in that element only. `None` when they cannot be combined.
pub(crate) fn combine(fixes: &[&Fix], snap: &Snapshot) -> Option<Fix> {
    let first = *fixes.first()?;
    if fixes.iter().all(|f| f.cli == first.cli) {
        return Some(first.clone());
    }
    let [edit] = first.edits.as_slice() else {
        return None;
    };
    let patched = first.patched_policy.as_ref()?;
    let st0 = first.statement.as_ref()?.as_object()?;
    let mut field: Option<&str> = None;
    let mut values: Vec<Value> = Vec::new();
    for f in fixes {
        let same_target = f.account == first.account
            && f.artifact == first.artifact
            && f.edits.len() == 1
            && f.edits.first().is_some_and(|e| same_policy(e, edit));
        if !same_target {
            return None;
        }
        let st = f.statement.as_ref()?.as_object()?;
        let keys = st0.keys().chain(st.keys()).filter(|k| k.as_str() != "Sid");
        for k in keys {
            if st0.get(k) == st.get(k) {
                continue;
            }
            if !MERGEABLE.contains(&k.as_str()) || field.is_some_and(|x| x != k) {
                return None;
            }
            field = Some(MERGEABLE.iter().find(|m| **m == k)?);
        }
    }
    let field = field?;
    for f in fixes {
        let v = f.statement.as_ref()?.get(field)?;
        for item in listed(field, v)? {
            if !values.contains(&item) {
                values.push(item);
            }
        }
    }
    let merged_value = if field == "Principal" {
        serde_json::json!({ "AWS": values })
    } else {
        Value::Array(values)
    };
    let mut statement = first.statement.clone()?;
    if let Some(o) = statement.as_object_mut() {
        o.insert(field.to_owned(), merged_value.clone());
    }
    // The statement as the patched policy holds it (its `Sid` may carry a suffix).
    let mut doc = patched.clone();
    let list = doc.get_mut("Statement")?.as_array_mut()?;
    let at = list
        .iter()
        .position(|s| same_but_sid(s, first.statement.as_ref()))?;
    let placed = list.get_mut(at)?.as_object_mut()?;
    placed.insert(field.to_owned(), merged_value);
    let old_json = compact(patched);
    if !first.cli.contains(&old_json) {
        return None;
    }
    let new_edit = with_document(edit, patched, doc.clone())?;
    let mut notes = first.notes.clone();
    notes.push(format!(
        "One statement for the {} paths this change affected in the same way: its `{field}` lists each path's.",
        fixes.len()
    ));
    Some(Fix {
        account: first.account.clone(),
        artifact: first.artifact.clone(),
        statement: Some(statement),
        cli: first.cli.replace(&old_json, &compact(&doc)),
        notes,
        patch: new_edit.patch(snap),
        edits: vec![new_edit],
        patched_policy: Some(doc),
    })
}

/// The values of a `Principal` of AWS principals, or of a `Resource`.
fn listed(field: &str, v: &Value) -> Option<Vec<Value>> {
    let v = if field == "Principal" {
        let o = v.as_object()?;
        if o.len() != 1 {
            return None;
        }
        o.get("AWS")?
    } else {
        v
    };
    match v {
        Value::String(_) => Some(vec![v.clone()]),
        Value::Array(a) if a.iter().all(Value::is_string) => Some(a.clone()),
        _ => None,
    }
}

fn same_but_sid(a: &Value, b: Option<&Value>) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("Sid");
        }
        v
    };
    b.is_some_and(|b| strip(a) == strip(b))
}

/// Whether two edits write the same policy.
fn same_policy(a: &Edit, b: &Edit) -> bool {
    match (a, b) {
        (Edit::ReplacePolicy { pointer: x, .. }, Edit::ReplacePolicy { pointer: y, .. }) => x == y,
        (
            Edit::PutBucketPolicy {
                account: a1,
                bucket: b1,
                ..
            },
            Edit::PutBucketPolicy {
                account: a2,
                bucket: b2,
                ..
            },
        ) => a1 == a2 && b1 == b2,
        (
            Edit::PutKeyPolicy {
                account: a1,
                key_arn: k1,
                ..
            },
            Edit::PutKeyPolicy {
                account: a2,
                key_arn: k2,
                ..
            },
        ) => a1 == a2 && k1 == k2,
        _ => false,
    }
}

/// `edit` writing `new` instead of `old` (the document it writes must be `old`).
fn with_document(edit: &Edit, old: &Value, new: Value) -> Option<Edit> {
    let mut out = edit.clone();
    let doc = match &mut out {
        Edit::ReplacePolicy { document, .. }
        | Edit::PutBucketPolicy { document, .. }
        | Edit::PutKeyPolicy { document, .. } => document,
        _ => return None,
    };
    if doc != old {
        return None;
    }
    *doc = new;
    Some(out)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests")]
mod tests {
    use serde_json::json;

    use super::*;

    fn fix(principal: &str, resource: &str) -> Fix {
        let current = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Admin", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}]});
        let st = json!({"Sid": "S3KmsAuditorAllowDecrypt", "Effect": "Allow",
            "Principal": {"AWS": principal}, "Action": "kms:Decrypt", "Resource": resource});
        let doc = super::super::fix::with_statement(Some(&current), st.clone());
        Fix {
            account: "111122223333".into(),
            artifact: "key policy of k".into(),
            statement: Some(st),
            cli: format!("aws kms put-key-policy --policy '{}'", compact(&doc)),
            notes: Vec::new(),
            edits: vec![Edit::ReplacePolicy {
                pointer: "/accounts/111122223333/kms/k/policy".into(),
                document: doc.clone(),
            }],
            patch: Vec::new(),
            patched_policy: Some(doc),
        }
    }

    #[test]
    fn statements_differing_in_the_principal_become_one_listing_every_principal() {
        let (a, b) = (
            fix("arn:aws:iam::444455556666:role/r1", "*"),
            fix("arn:aws:iam::444455556666:role/r2", "*"),
        );
        let c = combine(&[&a, &b, &a], &Snapshot::default()).expect("combined");
        let want = json!({"AWS": ["arn:aws:iam::444455556666:role/r1", "arn:aws:iam::444455556666:role/r2"]});
        assert_eq!(c.statement.as_ref().unwrap()["Principal"], want);
        let doc = c.patched_policy.as_ref().unwrap();
        assert_eq!(doc["Statement"].as_array().unwrap().len(), 2);
        assert_eq!(doc["Statement"][1]["Principal"], want);
        assert!(
            c.cli.contains("role/r2") && c.cli.contains("role/r1"),
            "{}",
            c.cli
        );
        let Edit::ReplacePolicy { document, .. } = &c.edits[0] else {
            panic!("{:?}", c.edits)
        };
        assert_eq!(document, doc);
    }

    #[test]
    fn statements_differing_in_two_elements_are_not_combined() {
        // r1 on a/* and r2 on b/* combined would give r1 b/*: not the same grants.
        let (a, b) = (
            fix("arn:aws:iam::444455556666:role/r1", "a/*"),
            fix("arn:aws:iam::444455556666:role/r2", "b/*"),
        );
        assert!(combine(&[&a, &b], &Snapshot::default()).is_none());
        // The same fix twice is that fix.
        assert_eq!(combine(&[&a, &a], &Snapshot::default()).as_ref(), Some(&a));
    }
}

//! The request context: condition keys and their values.
//!
//! Key names are case-insensitive (`aws:SourceIP` ≡ `AWS:SourceIp`), including the embedded
//! tag and encryption-context names, so keys are stored lowercased; the spelling given is kept
//! for output (encryption-context names are compared exactly by KMS grants).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The value of one context key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ContextValue {
    /// A single-valued key.
    Single(String),
    /// A multivalued key (may be empty).
    Multi(Vec<String>),
}

impl ContextValue {
    /// The values as a slice-like iterator (one for `Single`).
    pub fn values(&self) -> &[String] {
        match self {
            ContextValue::Single(s) => std::slice::from_ref(s),
            ContextValue::Multi(v) => v,
        }
    }

    /// Whether the value counts as null for the `Null` operator: an empty string or an empty
    /// list.
    pub fn is_null(&self) -> bool {
        match self {
            ContextValue::Single(s) => s.is_empty(),
            ContextValue::Multi(v) => v.is_empty(),
        }
    }
}

/// The request context.
///
/// Entries are kept in a vector sorted by lowercased key: contexts hold a dozen keys or so,
/// and a binary search over a contiguous slice is several times cheaper per condition than a
/// B-tree walk (a lookup happens for every condition of every applicable statement).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Context {
    // INVARIANT: sorted by the lowercased key (the first field), no duplicates.
    entries: Vec<(String, String, ContextValue)>,
}

impl std::fmt::Debug for Context {
    /// Same shape as when the entries were a map from lowercased key to (spelling, value).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Entries<'a>(&'a [(String, String, ContextValue)]);
        impl std::fmt::Debug for Entries<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_map()
                    .entries(
                        self.0
                            .iter()
                            .map(|(lower, key, value)| (lower, (key, value))),
                    )
                    .finish()
            }
        }
        f.debug_struct("Context")
            .field("entries", &Entries(&self.entries))
            .finish()
    }
}

impl Context {
    /// An empty context.
    pub fn new() -> Context {
        Context::default()
    }

    fn find(&self, lower_key: &str) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|(k, _, _)| k.as_str().cmp(lower_key))
    }

    /// Sets `key` (any case) to `value`, replacing an earlier value.
    pub fn insert(&mut self, key: &str, value: ContextValue) {
        let lower = key.to_lowercase();
        match self.find(&lower) {
            Ok(i) => {
                if let Some(e) = self.entries.get_mut(i) {
                    *e = (lower, key.to_owned(), value);
                }
            }
            Err(i) => self.entries.insert(i, (lower, key.to_owned(), value)),
        }
    }

    /// Sets `key` only when it has no value yet (derived keys never override given ones).
    pub fn insert_if_absent(&mut self, key: &str, value: ContextValue) {
        let lower = key.to_lowercase();
        if let Err(i) = self.find(&lower) {
            self.entries.insert(i, (lower, key.to_owned(), value));
        }
    }

    /// Removes `key` (any case).
    pub fn remove(&mut self, key: &str) {
        if let Ok(i) = self.find(&key.to_lowercase()) {
            self.entries.remove(i);
        }
    }

    /// The value of a key given in lowercase.
    #[inline]
    pub fn get_lower(&self, lower_key: &str) -> Option<&ContextValue> {
        // A request context holds a dozen keys or so: a scan that compares lengths first
        // (so that few keys reach a byte comparison) beats the binary search there.
        if self.entries.len() <= 32 {
            return self
                .entries
                .iter()
                .find(|(k, _, _)| k == lower_key)
                .map(|(_, _, v)| v);
        }
        let i = self.find(lower_key).ok()?;
        self.entries.get(i).map(|(_, _, v)| v)
    }

    /// The value of a key in any case.
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        self.get_lower(&key.to_lowercase())
    }

    /// Whether the key has a value.
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Every key (as spelled when inserted) with its value, ordered by lowercased name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ContextValue)> {
        self.entries.iter().map(|(_, k, v)| (k.as_str(), v))
    }

    /// The encryption context carried by the request, read from the
    /// `kms:EncryptionContext:<name>` keys, with names as spelled.
    pub fn encryption_context(&self) -> BTreeMap<String, String> {
        const PREFIX: &str = "kms:encryptioncontext:";
        self.entries
            .iter()
            .filter(|(lower, _, _)| lower.starts_with(PREFIX))
            .filter_map(|(_, key, value)| {
                let name = key.get(PREFIX.len()..)?;
                match value {
                    ContextValue::Single(v) => Some((name.to_owned(), v.clone())),
                    ContextValue::Multi(_) => None,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive() {
        let mut c = Context::new();
        c.insert("AWS:SourceIP", ContextValue::Single("1.2.3.4".into()));
        assert!(c.get("aws:sourceip").is_some());
        assert!(c.get("aws:SourceIp").is_some());
    }

    #[test]
    fn derived_never_overrides() {
        let mut c = Context::new();
        c.insert("aws:PrincipalAccount", ContextValue::Single("1".into()));
        c.insert_if_absent("aws:principalaccount", ContextValue::Single("2".into()));
        assert_eq!(
            c.get("aws:PrincipalAccount"),
            Some(&ContextValue::Single("1".into()))
        );
    }

    #[test]
    fn encryption_context_keeps_spelling() {
        let mut c = Context::new();
        c.insert(
            "kms:EncryptionContext:aws:s3:arn",
            ContextValue::Single("arn:aws:s3:::b/k".into()),
        );
        let ec = c.encryption_context();
        assert_eq!(
            ec.get("aws:s3:arn").map(String::as_str),
            Some("arn:aws:s3:::b/k")
        );
    }
}

//! The per-container cache: what one invocation read, kept for the next ones for a while.
//!
//! A warm Lambda container handles many events; most name the same bucket, key and role. The
//! cache holds typed snapshot fragments (never errors) by a key naming the account and resource,
//! for a time-to-live after which they are read again. Invalidation by change events
//! (`PutBucketPolicy`, `PutKeyPolicy`, ...) goes through [`Cache::invalidate_where`], with the
//! key scheme of `crate::keys`.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Entry = (Instant, Arc<dyn Any + Send + Sync>);

/// A time-bounded map of snapshot fragments of any type (a bucket, a key, an account's IAM).
pub struct Cache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.entries.lock().map(|e| e.len()).unwrap_or_default();
        f.debug_struct("Cache")
            .field("ttl", &self.ttl)
            .field("entries", &len)
            .finish()
    }
}

impl Cache {
    /// A cache whose entries live for `ttl`; a zero `ttl` caches nothing.
    pub fn new(ttl: Duration) -> Cache {
        Cache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the cache keeps anything (a zero time-to-live keeps nothing).
    pub fn keeps(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// The fragment stored under `key`, if it is younger than the time-to-live and of type `T`.
    pub fn get<T: Any + Clone>(&self, key: &str) -> Option<T> {
        let entries = self.entries.lock().ok()?;
        let (at, v) = entries.get(key)?;
        if at.elapsed() >= self.ttl {
            return None;
        }
        v.downcast_ref::<T>().cloned()
    }

    /// Stores a fragment.
    pub fn put<T: Any + Send + Sync>(&self, key: String, value: T) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            entries.insert(key, (Instant::now(), Arc::new(value)));
        }
    }

    /// Drops every fragment whose key satisfies `touched`; returns their keys, sorted.
    pub fn invalidate_where(&self, touched: impl Fn(&str) -> bool) -> Vec<String> {
        let mut dropped = Vec::new();
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|k, _| {
                let drop = touched(k);
                if drop {
                    dropped.push(k.clone());
                }
                !drop
            });
        }
        dropped.sort();
        dropped
    }

    /// Drops every fragment whose key starts with `prefix` (`bucket/111122223333/`).
    pub fn invalidate_prefix(&self, prefix: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|k, _| !k.starts_with(prefix));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    #[test]
    fn entries_expire_and_can_be_invalidated() {
        let c = Cache::new(Duration::from_secs(60));
        c.put("bucket/1/b".into(), json!(1));
        c.put("key/1/k".into(), json!(2));
        assert_eq!(c.get("bucket/1/b"), Some(json!(1)));
        c.invalidate_prefix("bucket/");
        assert_eq!(c.get::<Value>("bucket/1/b"), None);
        assert_eq!(c.get("key/1/k"), Some(json!(2)));
        assert_eq!(c.get::<String>("key/1/k"), None, "another type is a miss");
        let off = Cache::new(Duration::ZERO);
        off.put("k".into(), json!(1));
        assert_eq!(off.get::<Value>("k"), None);
    }
}

//! Counting AWS calls and the depth of their dependency chain, per diagnosis.
//!
//! Depth is the number of sequential round trips on the longest chain: a read made once the
//! answers it depends on are in has the depth of the deepest of them plus one. Calls made
//! side by side share a depth. The collector states each call's depth; the meter keeps the
//! totals that the logs report and the tests hold to the budget (cold ≤ 4 with the publish,
//! warm ≤ 2).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

/// The calls of one diagnosis.
#[derive(Debug, Default)]
pub struct Meter {
    inner: Mutex<Stats>,
}

/// What one diagnosis cost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// AWS API calls made.
    pub calls: u32,
    /// Round-trip depth: the longest chain of calls that had to wait for one another.
    pub depth: u32,
    /// Calls by operation (`s3:GetBucketPolicy`: 1).
    pub by_operation: BTreeMap<String, u32>,
    /// Reads answered from the per-container cache.
    pub cache_hits: u32,
    /// HTTP attempts beyond the calls: the SDK's retries (of throttling, 5xx answers,
    /// timeouts, dropped connections). Counted by the clients themselves, not stated by the
    /// collector.
    pub retries: u32,
}

impl Meter {
    /// A meter with nothing counted.
    pub fn new() -> Meter {
        Meter::default()
    }

    /// Records one call of `operation` made at `depth`, and returns `depth` for chaining.
    pub fn call(&self, operation: &str, depth: u32) -> u32 {
        if let Ok(mut s) = self.inner.lock() {
            s.calls += 1;
            s.depth = s.depth.max(depth);
            *s.by_operation.entry(operation.to_owned()).or_default() += 1;
        }
        depth
    }

    /// Records a read answered from the cache.
    pub fn hit(&self) {
        if let Ok(mut s) = self.inner.lock() {
            s.cache_hits += 1;
        }
    }

    /// Records the HTTP attempts the clients made for this diagnosis: whatever exceeds the
    /// calls are retries.
    pub fn attempts(&self, attempts: u64) {
        if let Ok(mut s) = self.inner.lock() {
            let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
            s.retries = attempts.saturating_sub(s.calls);
        }
    }

    /// The totals so far.
    pub fn stats(&self) -> Stats {
        self.inner.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_the_deepest_call_and_calls_are_counted_by_operation() {
        let m = Meter::new();
        m.call("sts:AssumeRole", 1);
        m.call("s3:GetBucketPolicy", 2);
        m.call("s3:HeadObject", 2);
        m.call("kms:DescribeKey", 3);
        m.hit();
        let s = m.stats();
        assert_eq!((s.calls, s.depth, s.cache_hits), (4, 3, 1));
        assert_eq!(s.by_operation.get("s3:HeadObject"), Some(&1));
        assert_eq!(s.retries, 0);
        m.attempts(7);
        assert_eq!(m.stats().retries, 3, "7 attempts for 4 calls: 3 retries");
    }
}

//! Noise control for the live auditor, purely: what makes two denials the same problem, when
//! a repeat is suppressed and counted, which denials are expected and muted by rule, how a
//! burst beyond the rate limit is batched into a worst-first summary, and the messages that
//! carry repeats, resolutions and the daily digest.
//!
//! Nothing here reads a clock or a table: callers pass the time (seconds since the Unix
//! epoch) and the stored state, and get decisions and notifications back. The live crate
//! keeps the state (a DynamoDB table, or memory) and applies the same rules there with
//! conditional writes (docs/live.md, "Noise control").
//!
//! * [`identity`]: a problem's identity ([`ProblemKey`]) and the pre-key an event gives
//!   before any diagnosis ([`PreKey`]).
//! * [`window`]: the dedup window: publish, or suppress and count ([`decide`]).
//! * [`rules`]: default suppressions for AWS's own expected denials, and configured ones
//!   with owner and expiry.
//! * [`messages`]: the rate limiter's minute buckets, the worst-first summary, the
//!   "resolved" message and the digest.

pub mod identity;
pub mod messages;
pub mod rules;
pub mod window;

pub use identity::{PreKey, ProblemKey};
pub use window::{decide, Decision, ProblemState, Repeats};

/// `YYYY-MM-DD` (UTC) of `secs` since the epoch: the day of a digest, and what rule expiry
/// dates are compared with.
pub fn day_of(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "9999-12-31".into())
}

/// RFC 3339 (UTC, seconds) of `secs` since the epoch, for messages.
pub fn timestamp(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_timestamps_are_utc() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(1_764_806_399), "2025-12-03");
        assert_eq!(day_of(1_764_806_400), "2025-12-04");
        assert_eq!(timestamp(1_764_806_400), "2025-12-04T00:00:00Z");
    }
}

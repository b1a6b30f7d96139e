//! The dedup window: the first occurrence of a problem publishes; repeats within the window
//! after an alert are suppressed and counted; the next alert (or the flush when the window
//! ends with repeats pending) carries their count with first and last seen.
//!
//! The live crate's DynamoDB store applies exactly these rules with conditional writes (the
//! alert is claimed only if no alert went out within the window), so that two instances that
//! see the same burst publish once. Times are seconds since the Unix epoch.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::timestamp;

/// What is kept per problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProblemState {
    /// First occurrence ever (or since the problem last closed).
    pub first_seen: u64,
    /// Latest occurrence.
    pub last_seen: u64,
    /// When the last alert went out; `None` before the first.
    pub alerted_at: Option<u64>,
    /// Repeats suppressed since the last alert.
    pub suppressed: u64,
    /// Occurrences in all, alerted or not.
    pub occurrences: u64,
    /// Alerted and not resolved.
    pub open: bool,
}

/// Repeats a message reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Repeats {
    /// How many were suppressed since the previous alert.
    pub count: u64,
    /// The problem's first occurrence.
    pub first_seen: u64,
    /// The latest suppressed occurrence.
    pub last_seen: u64,
}

impl Repeats {
    /// The `problem` field of a message (`auditor::report::sns::with_problem`).
    pub fn problem_field(id: &str, label: &str, repeats: Option<Repeats>) -> Value {
        match repeats {
            Some(r) => json!({
                "id": id,
                "identity": label,
                "suppressed_repeats": r.count,
                "first_seen": timestamp(r.first_seen),
                "last_seen": timestamp(r.last_seen),
            }),
            None => json!({ "id": id, "identity": label }),
        }
    }
}

/// What to do with an occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Publish; `repeats` are those suppressed since the previous alert, if any.
    Publish {
        /// Carried in the message.
        repeats: Option<Repeats>,
    },
    /// A repeat within the window: counted, not published.
    Suppress,
}

/// Whether an alert went out for `state` within `window` seconds before `now`.
pub fn alerted_within(state: &ProblemState, now: u64, window: u64) -> bool {
    state.open
        && state
            .alerted_at
            .is_some_and(|at| now < at.saturating_add(window))
}

/// The decision for an occurrence at `now`, and the state after it.
pub fn decide(state: Option<&ProblemState>, now: u64, window: u64) -> (Decision, ProblemState) {
    let Some(s) = state else {
        return (
            Decision::Publish { repeats: None },
            ProblemState {
                first_seen: now,
                last_seen: now,
                alerted_at: Some(now),
                suppressed: 0,
                occurrences: 1,
                open: true,
            },
        );
    };
    let mut next = s.clone();
    next.last_seen = now.max(s.last_seen);
    next.occurrences = s.occurrences.saturating_add(1);
    if alerted_within(s, now, window) {
        next.suppressed = s.suppressed.saturating_add(1);
        return (Decision::Suppress, next);
    }
    let repeats = carried(s);
    if !s.open {
        // A closed problem that comes back is new again.
        next.first_seen = now;
    }
    next.alerted_at = Some(now);
    next.suppressed = 0;
    next.open = true;
    (Decision::Publish { repeats }, next)
}

/// The repeats an alert after `state` carries.
pub fn carried(state: &ProblemState) -> Option<Repeats> {
    (state.suppressed > 0).then_some(Repeats {
        count: state.suppressed,
        first_seen: state.first_seen,
        last_seen: state.last_seen,
    })
}

/// Whether the window of an open problem has ended with repeats not yet reported: the
/// scheduled run then publishes them (with a fresh diagnosis) instead of waiting for the next
/// occurrence, which may never come.
pub fn flush_due(state: &ProblemState, now: u64, window: u64) -> Option<Repeats> {
    if state.open && state.suppressed > 0 && !alerted_within(state, now, window) {
        carried(state)
    } else {
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::diagnose::{Confidence, Diagnosis, Finding, Operation, Verdict};

    pub(crate) fn test_diagnosis(findings: Vec<Finding>) -> Diagnosis {
        Diagnosis {
            verdict: if findings.iter().any(|f| f.blocking) {
                Verdict::Denied
            } else {
                Verdict::Allowed
            },
            principal: "arn:aws:sts::444455556666:assumed-role/reader/s1".into(),
            principal_account: Some("444455556666".into()),
            resource_account: Some("111122223333".into()),
            operation: Operation::GetObject,
            hops: Vec::new(),
            findings,
            fixes_verified: true,
            fixes_unverified: None,
            confidence: Confidence::High,
            assumptions: Vec::new(),
            coverage: Vec::new(),
            event: None,
        }
    }

    const HOUR: u64 = 3600;

    #[test]
    fn first_publishes_repeats_are_counted_and_the_next_alert_carries_them() {
        let (d, s) = decide(None, 1000, HOUR);
        assert_eq!(d, Decision::Publish { repeats: None });
        let (d, s) = decide(Some(&s), 1010, HOUR);
        assert_eq!(d, Decision::Suppress);
        let (d, s) = decide(Some(&s), 1020, HOUR);
        assert_eq!(d, Decision::Suppress);
        assert_eq!((s.suppressed, s.occurrences, s.last_seen), (2, 3, 1020));
        assert_eq!(
            flush_due(&s, 1000 + HOUR - 1, HOUR),
            None,
            "window still open"
        );
        assert_eq!(
            flush_due(&s, 1000 + HOUR, HOUR),
            Some(Repeats {
                count: 2,
                first_seen: 1000,
                last_seen: 1020
            })
        );
        let (d, s) = decide(Some(&s), 1000 + HOUR, HOUR);
        assert_eq!(
            d,
            Decision::Publish {
                repeats: Some(Repeats {
                    count: 2,
                    first_seen: 1000,
                    last_seen: 1020
                })
            }
        );
        assert_eq!(
            (s.suppressed, s.alerted_at, s.first_seen),
            (0, Some(1000 + HOUR), 1000)
        );
        assert_eq!(
            flush_due(&s, 1000 + 3 * HOUR, HOUR),
            None,
            "nothing pending"
        );
    }

    #[test]
    fn a_closed_problem_that_returns_alerts_at_once() {
        let (_, mut s) = decide(None, 1000, HOUR);
        s.open = false;
        let (d, s) = decide(Some(&s), 1001, HOUR);
        assert_eq!(d, Decision::Publish { repeats: None });
        assert!(s.open);
        assert_eq!(s.first_seen, 1001);
    }

    #[test]
    fn the_problem_field_names_count_and_times() {
        let v = Repeats::problem_field(
            "p-1",
            "x",
            Some(Repeats {
                count: 4,
                first_seen: 0,
                last_seen: 60,
            }),
        );
        assert_eq!(v["suppressed_repeats"], 4);
        assert_eq!(v["first_seen"], "1970-01-01T00:00:00Z");
        assert_eq!(v["last_seen"], "1970-01-01T00:01:00Z");
        assert!(Repeats::problem_field("p-1", "x", None)
            .get("suppressed_repeats")
            .is_none());
    }
}
